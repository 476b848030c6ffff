"""End-to-end runs on a tiny random open_clip config and the small toy world: events, run folder, summary."""

import json
import threading

import pytest
import torch

from core.engine import run_to_end, train
from core.events import EvalEvent, FinishEvent, StartEvent, StepEvent
from core.methods import METHODS

SUMMARY_KEYS = {"status", "config", "zeroshot", "final", "result"}


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_end_to_end(method, tiny_cfg, tmp_path):
    cfg = tiny_cfg(method=method, steps=4, eval_every=2, checkpoint_every=2)
    events = list(train(cfg, tmp_path / "run"))
    kinds = [e.kind for e in events]
    assert isinstance(events[0], StartEvent) and isinstance(events[-1], FinishEvent)
    assert events[-1].status == "done", events[-1].reason
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == ([1, 2, 3, 4] if METHODS[method].trains else [])
    assert "eval" in kinds
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary) and summary["status"] == "done"
    assert set(summary["final"]) >= {"id", "ood"} and set(summary["result"]) >= {"id", "ood"}
    # an accuracy is a count over the split's images: tiny data has 3 images per (class, domain), 16 classes,
    # 2 source and 4 target styles, so each value is a whole number of images out of 96 (id), 192 (ood), 48 (ood/x)
    for split, acc in summary["result"].items():
        n = {"id": 96, "ood": 192}.get(split, 48)
        assert 0.0 <= acc <= 100.0 and abs(acc * n / 100 - round(acc * n / 100)) < 1e-2, (split, acc)
    cfg_saved = json.loads((run / "config.json").read_text())
    assert cfg_saved["method"] == method and cfg_saved["steps"] == (4 if METHODS[method].trains else 0)
    lines = (run / "events.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == kinds
    if METHODS[method].trains:
        assert (run / "checkpoints" / "last.safetensors").exists()
        assert (run / "checkpoints" / "result.safetensors").exists()
    if METHODS[method].margin:
        assert cfg_saved["lam"] > 0
    else:
        assert cfg_saved["lam"] == 0


def test_settings_produce_their_splits(tiny_cfg, tmp_path):
    s = run_to_end(tiny_cfg(setting="open_class", steps=2), tmp_path / "oc")
    assert set(s["result"]) == {"base", "new", "hm"}
    s = run_to_end(tiny_cfg(setting="in_the_wild", steps=2), tmp_path / "iw")
    assert set(s["result"]) == {"id", "ood_base", "ood_new", "total", "hm"}


def test_training_moves_weights_and_bma_lags(tiny_cfg, tmp_path):
    from safetensors.torch import load_file

    from core.models import load_clip

    run_to_end(tiny_cfg(method="clipood", steps=6, lr=1e-3), tmp_path / "r")
    z = load_clip("tiny-random").model.visual.state_dict()
    last = {k[len("visual."):]: v for k, v in load_file(tmp_path / "r/checkpoints/last.safetensors").items()
            if k.startswith("visual.")}
    bma = load_file(tmp_path / "r/checkpoints/result.safetensors")
    k = "conv1.weight"
    d_last = (last[k] - z[k]).norm()
    d_bma = (bma[k] - z[k]).norm()
    assert d_last > 0 and 0 < d_bma < d_last


def test_same_seed_same_metrics(tiny_cfg, tmp_path):
    a = run_to_end(tiny_cfg(steps=4, lr=1e-3), tmp_path / "a")
    b = run_to_end(tiny_cfg(steps=4, lr=1e-3), tmp_path / "b")
    ea = [json.loads(x) for x in (tmp_path / "a/events.jsonl").read_text().splitlines()]
    eb = [json.loads(x) for x in (tmp_path / "b/events.jsonl").read_text().splitlines()]
    la = [e["loss"] for e in ea if e["kind"] == "step"]
    lb = [e["loss"] for e in eb if e["kind"] == "step"]
    assert la == lb and a["result"] == b["result"]


def test_cancel_within_one_step_keeps_run(tiny_cfg, tmp_path):
    stop = threading.Event()
    seen = []
    for ev in train(tiny_cfg(steps=50, eval_every=0, checkpoint_every=0), tmp_path / "c", stop):
        seen.append(ev)
        if isinstance(ev, StepEvent) and ev.step == 3:
            stop.set()
    steps = [e.step for e in seen if isinstance(e, StepEvent)]
    assert steps == [1, 2, 3]
    assert seen[-1].status == "cancelled"
    s = json.loads((tmp_path / "c/summary.json").read_text())
    assert s["status"] == "cancelled" and s["steps_done"] == 3 and s["last_checkpoint_step"] == 3
    assert (tmp_path / "c/checkpoints/last.safetensors").exists()


def test_resume_equals_uninterrupted(tiny_cfg, tmp_path):
    cfg = tiny_cfg(method="clipood", steps=8, lr=1e-3, eval_every=2, checkpoint_every=2, track=["ema", "wiseft"])
    full = run_to_end(cfg, tmp_path / "full")
    stop = threading.Event()
    for ev in train(cfg, tmp_path / "part", stop):
        if isinstance(ev, StepEvent) and ev.step == 5:
            stop.set()
    assert json.loads((tmp_path / "part/summary.json").read_text())["status"] == "cancelled"
    resumed = run_to_end(cfg, tmp_path / "part", resume=True)
    assert resumed["status"] == "done"
    assert resumed["result"] == full["result"] and resumed["final"] == full["final"]
    assert resumed["tracked"] == full["tracked"]
    from safetensors.torch import load_file

    a = load_file(tmp_path / "full/checkpoints/result.safetensors")
    b = load_file(tmp_path / "part/checkpoints/result.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_killed_run_without_summary(tiny_cfg, tmp_path):
    """A run whose generator is abandoned mid-way (as after SIGKILL) still resumes from its last checkpoint."""
    cfg = tiny_cfg(steps=6, checkpoint_every=2, eval_every=0)
    gen = train(cfg, tmp_path / "k")
    for ev in gen:
        if isinstance(ev, StepEvent) and ev.step == 3:
            break  # no more code of the run executes; the folder is as a crash leaves it (plus a summary)
    (tmp_path / "k/summary.json").unlink(missing_ok=True)
    s = run_to_end(cfg, tmp_path / "k", resume=True)
    assert s["status"] == "done" and s["steps_done"] == 6


def test_nan_loss_fails_clearly_and_keeps_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    import core.step as step

    real = step.margin_metric_softmax_loss
    calls = {"n": 0}

    def poisoned(*a, **k):  # fault injection: the 4th step's loss is NaN
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(step, "margin_metric_softmax_loss", poisoned)
    events = list(train(tiny_cfg(steps=6, checkpoint_every=2, eval_every=0), tmp_path / "n"))
    fin = events[-1]
    assert fin.status == "failed" and fin.code == "nan_loss" and "step 4" in fin.reason
    lr = fin.summary["config"]["lr"]
    assert fin.detail == {"loss": "nan", "step": 4, "lr_value": lr, "checkpoint_step": 2}
    assert "--" not in fin.reason and f"lower the learning rate (now {lr:g})" in fin.reason  # core names no flag
    assert [e.step for e in events if isinstance(e, StepEvent)] == [1, 2, 3]
    s = json.loads((tmp_path / "n/summary.json").read_text())
    assert s["status"] == "failed" and s["last_checkpoint_step"] == 2
    assert (tmp_path / "n/checkpoints/last.safetensors").exists()


def test_failed_run_keeps_config(tiny_cfg, tmp_path):
    events = list(train(tiny_cfg(dataset="toy-shapes", sources=["nowhere"]), tmp_path / "f"))
    assert events[-1].status == "failed" and "nowhere" in events[-1].reason
    assert (tmp_path / "f/config.json").exists()
    assert json.loads((tmp_path / "f/summary.json").read_text())["status"] == "failed"


def test_eval_events_cover_tracked_averages(tiny_cfg, tmp_path):
    # beta 0.5 given: bma:0.1 must be an average of its own, whatever the toy world's default beta (equal ones merge)
    evs = [e for e in train(tiny_cfg(method="finetune", steps=4, eval_every=2, beta=0.5,
                                     track=["bma", "ema", "wiseft", "bma:0.1"]), tmp_path / "t")
           if isinstance(e, EvalEvent)]
    final = evs[-1]
    assert final.full and set(final.accuracy) == {"current", "bma", "ema", "wiseft", "bma:0.1"}
    inter = [e for e in evs if not e.full and e.step == 2][0]
    assert set(inter.accuracy) == {"current", "bma"}  # what-if averages: final evaluation only (default)
    evs = [e for e in train(tiny_cfg(method="finetune", steps=4, eval_every=2, beta=0.5, track=["ema", "bma:0.1"],
                                     track_eval="all"), tmp_path / "t2") if isinstance(e, EvalEvent)]
    inter = [e for e in evs if not e.full and e.step == 2][0]
    assert set(inter.accuracy) == {"current", "ema", "bma:0.1"}


def test_zero_shot_features_are_cached_for_real_data(tiny_cfg, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for d in ("art", "photo"):
        for c in ("cat", "dog"):
            (root / d / c).mkdir(parents=True)
            for i in range(5):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / d / c / f"{i}.png")
    monkeypatch.setenv("CLIPOOD_CACHE", str(tmp_path / "cache"))
    cfg = tiny_cfg(dataset=f"folder:{root}", steps=2, data_options={}, sources=["photo"], targets=["art"])
    a = run_to_end(cfg, tmp_path / "a")
    cached = list((tmp_path / "cache" / "zeroshot").glob("*.safetensors"))
    assert a["status"] == "done" and len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    b = run_to_end(cfg, tmp_path / "b")
    assert b["zeroshot"] == a["zeroshot"] and cached[0].stat().st_mtime_ns == stamp


def test_closing_the_stream_after_finish_keeps_done(tiny_cfg, tmp_path):
    gen = train(tiny_cfg(steps=2, eval_every=0), tmp_path / "d")
    for ev in gen:
        if isinstance(ev, FinishEvent):
            break
    gen.close()
    assert json.loads((tmp_path / "d/summary.json").read_text())["status"] == "done"


def test_bf16_precision_on_cpu_trains_close_to_fp32(tiny_cfg, tmp_path):
    """--precision bf16 really autocasts on a CPU (the losses differ from fp32) and stays close to it."""
    losses = {}
    for prec in ("fp32", "bf16"):
        evs = list(train(tiny_cfg(steps=4, eval_every=0, precision=prec), tmp_path / prec))
        assert evs[-1].status == "done"
        losses[prec] = [e.loss for e in evs if isinstance(e, StepEvent)]
    assert losses["fp32"] != losses["bf16"]
    assert all(abs(a - b) < 0.05 * abs(a) for a, b in zip(losses["fp32"], losses["bf16"])), losses


def test_full_grid_curves_evaluate_zero_shot_once_and_its_curve_point_is_the_final_value(tiny_cfg, monkeypatch):
    """With every image in every evaluation (the Studio on the embedded world), the zero-shot curve point is the full
    zero-shot evaluation: computed once (one embedding pass fewer than with a real subsample, the same schedule
    otherwise), and the same numbers as the run's final zero-shot."""
    from core.config import EVERY_IMAGE
    from core.evaluator import SplitEvaluator

    passes = []
    real = SplitEvaluator.features
    monkeypatch.setattr(SplitEvaluator, "features", lambda self, *a, **k: passes.append(1) or real(self, *a, **k))
    events = list(train(tiny_cfg(eval_subsample=EVERY_IMAGE)))
    full_passes = len(passes)
    evals = [e for e in events if isinstance(e, EvalEvent)]
    first, final_zs = evals[0], [e for e in evals if e.full and "zeroshot" in e.accuracy][-1]
    assert first.step == 0 and first.accuracy["zeroshot"] == final_zs.accuracy["zeroshot"]
    assert events[-1].summary["zeroshot_full_eval"] is True
    passes.clear()
    list(train(tiny_cfg(eval_subsample=4)))  # a real subsample: its own zero-shot curve point, the full one at the end
    assert full_passes == len(passes) - 1, (full_passes, len(passes))
