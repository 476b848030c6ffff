"""Guards of the method itself: what one engine run computes is recomputed here from first principles.

Each test re-derives a quantity (the step-1 loss, the learning rate of every step, the averaged result weights, the
per-split accuracies) from the public pieces (data table, splits, model, formulas written out again here) and
compares it with what the run logged or saved. A refactor of the run loop that trains a different method fails here.
"""

import json
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from scipy.stats import beta as beta_dist

from core.config import resolve
from core.engine import batch_indices, prepare, train
from core.events import CheckpointEvent, FinishEvent, StepEvent
from core.models import load_clip
from core.world.scenes import stable_seed


def _steps(run_dir):
    return [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["kind"] == "step"]


def _first_batch_losses(cfg):
    """(MMS loss, plain CE loss) of optimiser step 0, rebuilt from the data table and the zero-shot weights."""
    cfg = resolve(cfg)
    bundle, table, splits, pipeline, text = prepare(cfg, torch.device("cpu"))
    visual = load_clip(cfg.model).model.visual.float().eval()
    idx = splits.train[batch_indices(len(splits.train), cfg.batch_size, 0, cfg.seed)]
    gen = torch.Generator().manual_seed(stable_seed("augment", cfg.seed, 0))
    x = pipeline.train_batch(table.load(idx), gen, cfg.augment)
    classes = list(splits.train_classes)
    y = torch.as_tensor([classes.index(int(c)) for c in table.labels[idx]])
    t = text[classes].float()
    with torch.no_grad():
        cos = F.normalize(visual(x).float(), dim=-1) @ t.t()
    margins = cfg.lam * (1 - t @ t.t())[y]  # lam * (1 - cos(t_y, t_k)); zero on the target class
    mms = F.cross_entropy(bundle.logit_scale * (cos - cfg.lam + margins), y)
    ce = F.cross_entropy(bundle.logit_scale * cos, y)
    return mms.item(), ce.item(), cfg


@pytest.mark.parametrize("setting", ["domain_shift", "open_class"])
def test_clipood_step_loss_is_the_margin_metric_softmax_of_its_batch(setting, tiny_cfg, tmp_path):
    """Seed 3, not 0: the batch order must come from the run's seed."""
    cfg = tiny_cfg(method="clipood", setting=setting, steps=2, seed=3, lam=0.5, eval_every=0, checkpoint_every=0)
    list(train(cfg, tmp_path / "r"))
    logged = _steps(tmp_path / "r")[0]["loss"]
    mms, ce, _ = _first_batch_losses(cfg)
    assert abs(mms - ce) > 1e-3, "the margins must change the loss on this batch"
    assert logged == pytest.approx(mms, abs=2e-5), f"step-1 loss {logged} is not MMS ({mms}); plain CE is {ce}"


def test_finetune_step_loss_is_plain_cross_entropy(tiny_cfg, tmp_path):
    cfg = tiny_cfg(method="finetune", steps=1, seed=2, eval_every=0, checkpoint_every=0)
    list(train(cfg, tmp_path / "r"))
    mms, ce, rcfg = _first_batch_losses(cfg)
    assert rcfg.lam == 0 and _steps(tmp_path / "r")[0]["loss"] == pytest.approx(ce, abs=2e-5)


def _expected_lr(base, step, total, warmup):
    """Linear warm-up over ``warmup`` steps, then half a cosine from ``base`` to 0 over the remaining steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (1 + math.cos(math.pi * (step - warmup) / (total - warmup))) / 2


def test_every_step_lr_follows_warmup_then_cosine(tiny_cfg, tmp_path):
    cfg = tiny_cfg(steps=10, warmup_frac=0.3, lr=2e-3, eval_every=0, checkpoint_every=0)
    list(train(cfg, tmp_path / "r"))
    lrs = [e["lr"] for e in _steps(tmp_path / "r")]
    expected = [_expected_lr(2e-3, s, 10, 3) for s in range(10)]
    assert lrs == pytest.approx(expected, rel=1e-9), f"logged {lrs}, schedule {expected}"
    assert lrs[0] < lrs[2] and lrs[3] == pytest.approx(2e-3) and lrs[-1] < lrs[4]


def test_the_logged_lr_is_the_one_the_optimiser_used(tiny_cfg, tmp_path):
    """Adam's first update moves every weight by lr * sign(grad) (no weight decay): the step size reveals the lr."""
    cfg = tiny_cfg(steps=10, warmup_frac=0.5, lr=1e-2, weight_decay=0.0, eval_every=0, checkpoint_every=0)
    stop = threading.Event()
    for ev in train(cfg, tmp_path / "r", stop):
        if isinstance(ev, StepEvent):
            stop.set()
    lr0 = _steps(tmp_path / "r")[0]["lr"]
    assert lr0 == pytest.approx(1e-2 / 5)
    z = load_clip(cfg.model).model.visual.state_dict()["conv1.weight"]
    w1 = load_file(tmp_path / "r/checkpoints/last.safetensors")["visual.conv1.weight"]
    moved = (w1 - z).abs()
    moved = moved[moved > 0]
    assert moved.median().item() == pytest.approx(lr0, rel=0.02)


def test_seeds_change_results_and_repeat_exactly(tiny_cfg, tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        list(train(tiny_cfg(steps=3, seed=seed, lr=1e-3, eval_every=0), tmp_path / name))
        runs[name] = [e["loss"] for e in _steps(tmp_path / name)]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


def _trajectory(cfg, run_dir):
    """Run with a checkpoint after every step; returns theta_0..theta_T of the image tower and the run folder."""
    thetas = [load_clip(cfg.model).model.visual.float().state_dict()]
    for ev in train(cfg, run_dir):
        if isinstance(ev, CheckpointEvent) and ev.path.endswith("last.safetensors"):
            st = load_file(ev.path)
            thetas.append({k[len("visual."):]: v for k, v in st.items() if k.startswith("visual.")})
        if isinstance(ev, FinishEvent):
            assert ev.status == "done", ev.reason
    return thetas


def _close(a: dict, b: dict, what: str, atol=1e-6):
    for k, v in a.items():
        if v.is_floating_point():
            assert torch.allclose(v.float(), b[k].float(), atol=atol, rtol=1e-5), f"{what}: {k} differs"


@pytest.mark.parametrize("method,beta", [("clipood", 0.5), ("bma", 2.0)])
def test_bma_result_is_the_beta_weighted_mean_of_every_step(method, beta, tiny_cfg, tmp_path):
    steps = 5
    cfg = tiny_cfg(method=method, steps=steps, beta=beta, lr=3e-3, checkpoint_every=1, eval_every=0,
                   track=["ema", "wiseft"], ema_decay=0.7)
    thetas = _trajectory(cfg, tmp_path / "r")
    assert len(thetas) == steps + 1
    w = beta_dist.pdf((np.arange(steps + 1) + 0.5) / (steps + 1), beta, beta)
    w = w / w.sum()
    expected = {k: sum(float(w[t]) * thetas[t][k].double() for t in range(steps + 1)) for k in thetas[0]}
    result = load_file(tmp_path / "r/checkpoints/result.safetensors")
    _close(expected, result, f"{method} result")
    assert not torch.allclose(result["conv1.weight"], thetas[-1]["conv1.weight"])
    decay = json.loads((tmp_path / "r/config.json").read_text())["ema_decay"]  # the run's resolved decay
    assert 0 < decay < 1
    ema = thetas[0]
    for t in range(1, steps + 1):
        ema = {k: decay * ema[k].double() + (1 - decay) * thetas[t][k].double() for k in ema}
    last = load_file(tmp_path / "r/checkpoints/last.safetensors")
    _close(ema, {k[len("avg.ema."):]: v for k, v in last.items() if k.startswith("avg.ema.")}, "ema")


def test_wiseft_result_interpolates_zeroshot_and_final(tiny_cfg, tmp_path):
    cfg = tiny_cfg(method="wiseft", steps=3, lr=3e-3, wiseft_alpha=0.3, checkpoint_every=1, eval_every=0)
    thetas = _trajectory(cfg, tmp_path / "r")
    expected = {k: 0.7 * thetas[0][k].double() + 0.3 * thetas[-1][k].double() for k in thetas[0]}
    _close(expected, load_file(tmp_path / "r/checkpoints/result.safetensors"), "wiseft result")


def test_finetune_result_is_the_last_weights(tiny_cfg, tmp_path):
    cfg = tiny_cfg(method="finetune", steps=3, lr=3e-3, checkpoint_every=1, eval_every=0)
    thetas = _trajectory(cfg, tmp_path / "r")
    _close(thetas[-1], load_file(tmp_path / "r/checkpoints/result.safetensors"), "finetune result", atol=0)


def _accuracy_by_hand(cfg, visual_state=None):
    """Per-split top-1 (%) recomputed: each split's own images, predicted among its own candidate class names."""
    cfg = resolve(cfg)
    bundle, table, splits, pipeline, _ = prepare(cfg, torch.device("cpu"))
    model = load_clip(cfg.model).model.float().eval()
    if visual_state is not None:
        model.visual.load_state_dict(visual_state)
    out = {}
    for name, split in splits.evals.items():
        names = [table.classes[c] for c in split.candidates]
        from core.features import class_text_features

        t = class_text_features(model, bundle.tokenizer, names, table.templates, "cpu", cfg.ensemble)
        with torch.no_grad():
            f = F.normalize(model.visual(pipeline.normalise(pipeline.raw(table.load(split.indices)))), dim=-1)
        pred = np.asarray(split.candidates)[(f @ t.t()).argmax(-1).numpy()]
        out[name] = 100.0 * float((pred == table.labels[split.indices]).mean())
        assert set(np.unique(table.labels[split.indices])) <= set(split.candidates), name
    return out, splits


@pytest.mark.parametrize("setting", ["domain_shift", "open_class", "in_the_wild"])
def test_each_split_is_scored_on_its_own_images_and_class_names(setting, tiny_cfg, tmp_path):
    cfg = tiny_cfg(method="finetune", setting=setting, steps=2, lr=3e-3, eval_every=0,
                   data_options={"shots": 4, "eval_per": 4})
    summary = None
    for ev in train(cfg, tmp_path / "r"):
        summary = ev.summary if isinstance(ev, FinishEvent) else summary
    zs, splits = _accuracy_by_hand(cfg)
    res, _ = _accuracy_by_hand(cfg, load_file(tmp_path / "r/checkpoints/result.safetensors"))
    for name in splits.evals:
        assert summary["zeroshot"][name] == pytest.approx(zs[name], abs=1e-3), f"zero-shot {name}"
        assert summary["result"][name] == pytest.approx(res[name], abs=1e-3), f"result {name}"
    if setting == "open_class":
        assert not set(splits.evals["base"].candidates) & set(splits.evals["new"].candidates)
    assert not set(splits.train) & set(np.concatenate([s.indices for s in splits.evals.values()]))


def test_only_the_image_tower_trains(tiny_cfg, tmp_path):
    cfg = resolve(tiny_cfg(method="clipood", steps=3, lr=1e-2, eval_every=0))
    fresh = load_clip(cfg.model).model
    text_before = {k: v.clone() for k, v in fresh.state_dict().items() if not k.startswith("visual.")}
    _, _, _, _, text_feats = prepare(cfg, torch.device("cpu"))
    feats_before = text_feats.clone()
    list(train(cfg, tmp_path / "r"))
    after = load_clip(cfg.model).model.state_dict()
    for k, v in text_before.items():
        assert torch.equal(after[k], v), f"{k} changed: only the image tower may train"
    _, _, _, _, text_after = prepare(cfg, torch.device("cpu"))
    assert torch.equal(text_after, feats_before) and not text_after.requires_grad
    saved = load_file(tmp_path / "r/checkpoints/last.safetensors")
    assert {k.split(".")[0] for k in saved} <= {"visual", "opt", "avg"}
    moved = saved["visual.conv1.weight"] - fresh.visual.state_dict()["conv1.weight"]
    assert moved.abs().max() > 0
