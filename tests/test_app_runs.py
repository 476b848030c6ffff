"""The app's run plumbing without a server: run ids resolved inside the runs root only, signed browser run lists,
per-session state, and a streamed run that is never lost when its consumer leaves early."""

import os
import threading
import time

import pytest

from app.context import AppContext
from app.options import AppOptions, Defaults
from app.runner import stream_run
from app.runs import RunAccessError, RunIndex
from app.session import Sessions
from core.config import resolve
from core.runstore import RunStore


def fake_run(root, rid):
    d = root / rid
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"method": "clipood"}')
    return d


def test_run_index_refuses_anything_but_its_own_folders(tmp_path):
    root = tmp_path / "runs"
    idx = RunIndex(root)
    fake_run(root, "20260101-000000-a")
    outside = fake_run(tmp_path / "elsewhere", "secret-run")
    os.symlink(outside, root / "linked-run")
    assert idx.visible() == ["20260101-000000-a"]
    assert idx.path("20260101-000000-a") == root.resolve() / "20260101-000000-a"
    for bad in ("linked-run", "../elsewhere/secret-run", "/etc", "..", ".", "a/b", "", "x" * 200, "nope"):
        with pytest.raises(RunAccessError):
            idx.path(bad)


def test_private_index_lists_only_own_runs(tmp_path):
    root = tmp_path / "runs"
    for rid in ("r-1", "r-2"):
        fake_run(root, rid)
    idx = RunIndex(root, shared=False)
    assert idx.visible() == [] and idx.visible(["r-2", "../r-1", "missing"]) == ["r-2"]
    with pytest.raises(RunAccessError):
        idx.path("r-1", own=["r-2"])


def test_browser_tokens_are_signed(tmp_path):
    ctx = AppContext(AppOptions(runs_dir=tmp_path / "runs", shared_runs=False, warmup=False))
    tokens = ctx.remember([], "r-1")
    tokens = ctx.remember(tokens, "r-2")
    assert ctx.verified(tokens) == ["r-1", "r-2"]
    assert ctx.verified(["r-1", "r-1~" + "0" * 24, 5, None, "~"]) == []
    other = AppContext(AppOptions(runs_dir=tmp_path / "other", warmup=False))  # another server's secret
    assert other.verified(tokens) == []
    again = AppContext(AppOptions(runs_dir=tmp_path / "runs", warmup=False))  # same runs dir after a restart
    assert again.verified(tokens) == ["r-1", "r-2"]


def test_sessions_are_separate():
    s = Sessions(capacity=3)
    a, b = s.get("a"), s.get("b")
    a.begin("run-a")
    assert b.active is None and not b.stop.is_set() and s.active_runs() == {"run-a"}
    for k in "cdef":
        s.get(k)
    assert s.get("a") is a  # an active session is never evicted
    s.drop("a")
    assert a.stop.is_set()  # a closed tab stops its run


def wait_for(cond, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_consumer_leaving_early_stops_the_run_and_keeps_it(tiny_cfg, tmp_path):
    cfg = resolve(tiny_cfg(steps=400, eval_every=100, checkpoint_every=100))
    done = threading.Event()
    stop = threading.Event()
    gen = stream_run(cfg, tmp_path / "r", stop, min_interval=0.0, on_done=done.set)
    rec, changed = next(gen)
    assert changed == {"init"} and rec.total_steps == 400
    while rec.step < 3:
        rec, changed = next(gen)
    gen.close()  # the browser went away (Stop with cancels=, closed tab)
    assert stop.is_set()
    assert wait_for(done.is_set)
    s = RunStore(tmp_path / "r").read_summary()
    assert s["status"] == "cancelled" and 3 <= s["steps_done"] < 400
    assert RunStore(tmp_path / "r").last_checkpoint.is_file()


def test_closing_after_the_finish_keeps_done(tiny_cfg, tmp_path):
    cfg = resolve(tiny_cfg(steps=3))
    done = threading.Event()
    gen = stream_run(cfg, tmp_path / "r", threading.Event(), min_interval=0.0, on_done=done.set)
    for _rec, changed in gen:
        if "finish" in changed:
            break
    gen.close()  # consumer stops right after the finish event
    assert wait_for(done.is_set)
    assert RunStore(tmp_path / "r").read_summary()["status"] == "done"


def test_a_run_left_stopping_finishes_before_the_next_one_starts(tiny_cfg, tmp_path, monkeypatch):
    """The queue frees its slot when a stream is closed, while the run is still drained (checkpoint, summary) on a
    thread: the next run must wait for it, so two runs never share the device."""
    import core.checkpoint as checkpoint

    real = checkpoint.save_safetensors
    monkeypatch.setattr(checkpoint, "save_safetensors", lambda *a, **k: (time.sleep(0.5), real(*a, **k))[1])
    cfg = resolve(tiny_cfg(steps=400, eval_every=0, checkpoint_every=0))
    a_done = threading.Event()
    a = stream_run(cfg, tmp_path / "a", threading.Event(), min_interval=0.0, on_done=a_done.set)
    for _rec, changed in a:
        if "step" in changed:
            break
    a.close()  # the page went away: run A stops and writes its (slow) checkpoint on a drain thread
    b = stream_run(cfg, tmp_path / "b", threading.Event(), min_interval=0.0)
    for _rec, changed in b:
        if "start" in changed:
            break
    s = RunStore(tmp_path / "a").read_summary()
    assert s is not None and s["status"] == "cancelled"  # A was completely done before B started
    b.close()
    assert wait_for(a_done.is_set)


def test_a_disk_quota_evicts_the_oldest_finished_runs_first(tmp_path):
    from app.runs import RunStorageFull

    root = tmp_path / "runs"
    ids = ("20260101-000000-a", "20260101-120000-cli", "20260102-000000-b", "20260103-000000-c", "20260104-000000-d")
    for rid in ids:
        (fake_run(root, rid) / "weights.bin").write_bytes(b"\0" * 100_000)
    (root / ids[1] / "events.jsonl").write_text("{}\n")  # unfinished, log just written: a CLI run going elsewhere
    (root / ids[2] / "summary.json").write_text('{"status": "done"}')
    (root / ids[3] / "events.jsonl").write_text("{}\n")  # unfinished and quiet for long: interrupted
    old = time.time() - 3600
    os.utime(root / ids[3] / "events.jsonl", (old, old))
    going = {ids[0]}  # streamed by a session of this server
    idx = RunIndex(root, max_bytes=520_000, active=lambda: going)
    assert idx.make_room() == []  # 500 kB: under the quota, nothing goes (then down to 90 % of it: 468 kB)
    (root / ids[4] / "more.bin").write_bytes(b"\0" * 100_000)  # 600 kB now
    rid, path = idx.new("clipood", "toy-shapes")
    assert not (root / ids[2]).exists() and not (root / ids[3]).exists()  # oldest not going: finished, interrupted
    assert all((root / r).is_dir() for r in (ids[0], ids[1], ids[4]))
    assert path.parent == root.resolve() and not path.exists()
    going |= {ids[4]}
    idx.max_bytes = 100_000  # everything left is going: a new run is refused with a message
    with pytest.raises(RunStorageFull, match="storage is full"):
        idx.new("clipood", "toy-shapes")
    assert RunIndex(root).make_room() == []  # no quota (local use): never deletes anything


def _app_script():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("app_script", Path(__file__).resolve().parent.parent / "app.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_server_options_on_a_space_are_the_public_ones(monkeypatch, capsys):
    script = _app_script()
    monkeypatch.setenv("SYSTEM", "spaces")
    a = script.parse_args([])
    assert a.private_runs and not a.allow_local_paths and a.max_runs_gb == 20.0 and a.max_upload_mb == 50
    monkeypatch.delenv("SYSTEM")
    monkeypatch.delenv("SPACE_ID", raising=False)
    a = script.parse_args([])
    assert not a.private_runs and a.allow_local_paths and a.max_runs_gb is None
    for bad in (["--max-runs-gb", "0"], ["--max-upload-mb", "-1"], ["--max-steps", "0"]):
        with pytest.raises(SystemExit) as e:
            script.parse_args(bad)
        assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err


def test_public_servers_stream_hub_datasets_with_caps():
    """A visitor's hub dataset on a public server is streamed and capped (no whole-dataset download to the
    server's disk); locally it is read as the preset says."""
    from app.configure import DataChoice, build_config
    from app.options import Caps

    kw = dict(model="tiny-random", method="clipood", steps=5, batch_size=8, lr=1e-4, lam=0.2, beta=0.5, seed=0,
              whatif=False)
    public = AppOptions(allow_local_paths=False, warmup=False, caps=Caps(max_hub_per_class_domain=7,
                                                                         max_hub_rows=99))
    for dataset, path in (("hf:", "someone/huge-images"), ("pacs", "")):
        cfg = build_config(DataChoice(dataset=dataset, path=path), opts=public, **kw)
        assert cfg.data_options["streaming"] is True
        assert cfg.data_options["max_per_class_domain"] == 7 and cfg.data_options["max_rows"] == 99
        local = build_config(DataChoice(dataset=dataset, path=path), opts=AppOptions(warmup=False), **kw)
        assert "streaming" not in local.data_options
    toy = build_config(DataChoice(), opts=public, **kw)
    assert "streaming" not in toy.data_options
    dn = build_config(DataChoice(dataset="domainnet"), opts=AppOptions(allow_local_paths=False, warmup=False), **kw)
    # (the server's default cap is 100; the preset's own, 10, is lower and stays)
    assert dn.data_options["max_per_class_domain"] == 10


@pytest.mark.parametrize("setting", ["open_class", "in_the_wild"])
def test_untouched_form_trains_the_same_base_classes_as_the_cli(setting, tmp_path):
    """The form pre-ticks core's default base classes (alternating on toy-shapes), not a copy of its own."""
    from core.config import RunConfig, resolve
    from core.data import make_splits, open_dataset

    opts = AppOptions(runs_dir=tmp_path / "runs", warmup=False, defaults=Defaults(setting=setting))
    form_base = AppContext(opts).initial_choice()[4]
    cfg = resolve(RunConfig(setting=setting, data_options={"shots": 1, "eval_per": 1}))
    table = open_dataset(cfg.dataset, seed=0, sources=cfg.sources, **cfg.data_options)
    cli = make_splits(table, setting, cfg.sources, cfg.targets, cfg.base_classes)
    assert form_base == [table.classes[i] for i in cli.base]
    assert form_base != table.classes[: len(table.classes) // 2], "toy-shapes alternates its base classes"


def test_caches_over_the_quota_do_not_block_runs_when_nothing_is_going(tmp_path):
    """Caches count against the quota, but only runs still going can make a new run wait (caches have a sweeper)."""
    root = tmp_path / "runs"
    (fake_run(root, "20260101-000000-a") / "summary.json").write_text('{"status": "done"}')
    idx = RunIndex(root, max_bytes=1_000, extra_bytes=lambda: 10_000)
    rid, _ = idx.new("clipood", "toy-shapes")
    assert not (root / "20260101-000000-a").exists() and rid


# What decides a run's training; the app adds only its own run-keeping fields (tracked averages, caps, subsample).
TRAINING_FIELDS = ("dataset", "model", "pretrained", "setting", "method", "lr", "lam", "beta", "steps", "batch_size",
                   "warmup_frac", "sampler", "ema_decay", "augment", "ensemble", "weight_decay", "wiseft_alpha",
                   "seed", "recipe", "precision")


@pytest.mark.parametrize("setting", ["domain_shift", "open_class", "in_the_wild"])
def test_untouched_form_is_the_cli_default_config(setting, tmp_path):
    """Start on a fresh page trains exactly what `python -m core train --setting S` trains (core owns the defaults)."""
    from dataclasses import replace

    from core.cli import build_parser, config_from_args
    from core.data import make_splits, open_dataset
    from core.data.registry import DATASETS

    opts = AppOptions(runs_dir=tmp_path / "runs", warmup=False, defaults=Defaults(setting=setting))
    app_cfg = AppContext(opts).default_config()
    cli_cfg = resolve(config_from_args(build_parser().parse_args(["train", "--setting", setting])))
    assert {f: getattr(app_cfg, f) for f in TRAINING_FIELDS} == {f: getattr(cli_cfg, f) for f in TRAINING_FIELDS}
    builder_defaults = DATASETS[cli_cfg.dataset].defaults
    assert {**builder_defaults, **app_cfg.data_options} == {**builder_defaults, **cli_cfg.data_options}

    def splits(c):
        t = open_dataset(c.dataset, seed=c.seed, sources=c.sources, shots=1, eval_per=1)
        s = make_splits(t, c.setting, c.sources, c.targets, c.base_classes)
        return s.sources, s.targets, s.base, s.new

    assert splits(app_cfg) == splits(cli_cfg)
    other = "open_class" if setting != "open_class" else "domain_shift"
    with pytest.raises(ValueError, match=r"build Defaults\(setting="):  # it would keep this setting's steps and batch
        replace(opts.defaults, setting=other)


def test_run_lists_mark_a_failed_run_and_show_its_label(tmp_path, tiny_cfg):
    """Issue 15, bug 5: a failed run (a model that cannot load offline) stayed in every run list with no mark."""
    from core.engine import train

    ctx = AppContext(AppOptions(runs_dir=tmp_path / "runs", warmup=False))
    rid, d = ctx.runs.new("clipood", "toy-shapes")
    events = [e.to_dict() for e in train(tiny_cfg(model="no-such-model-xyz"), d)]
    assert events[-1]["status"] == "failed"
    (label, value), = ctx.run_choices(None, [])
    assert value == rid and label.startswith("✗ FAILED")
    assert ctx.runs.set_label(rid, "  a\x00b" + "x" * 80) == "ab" + "x" * 38  # (printable, at most 40)
    ctx.runs.set_label(rid, "broken one")
    assert "“broken one”" in ctx.run_choices(None, [])[0][0]
    assert ctx.runs.record(rid).label == "broken one"
    ctx.runs.set_label(rid, "")
    assert ctx.runs.record(rid).label == ""


def test_a_studio_run_takes_cores_curve_subsample_and_keeps_full_evaluations_apart(tmp_path):
    """Issue 16: the app's config takes core's fixed curve subsample (``RunConfig.eval_subsample``, the CLI's) for
    every dataset, the embedded world included. On a grid no larger than it every point is every image (one line; the
    step-0 point is the full zero-shot value); on the default grid the lines are the subsample and the final full
    evaluations are separate points, which the record says."""
    from app.configure import DataChoice, build_config
    from app.records import RunRecord
    from core.config import RunConfig
    from core.engine import train

    opts = AppOptions(runs_dir=tmp_path / "runs", warmup=False)

    def run(choice: DataChoice, name: str) -> RunRecord:
        cfg = build_config(choice, model="tiny-random", method="clipood", steps=4, batch_size=8, lr=1e-4, lam=0.3,
                           beta=0.5, seed=0, whatif=False, opts=opts)
        assert cfg.eval_subsample == RunConfig.eval_subsample
        return RunRecord.from_events([e.to_dict() for e in train(cfg, tmp_path / name)])

    small = run(DataChoice(shots=4, eval_per=3), "small")
    assert small.curve_images() is None
    _, first, full = small.curve("zeroshot", "ood")
    assert full == [False] and first == [small.zeroshot["ood"]]  # a step-0 point on the same images as the final one
    default_grid = run(DataChoice(shots=4), "default-grid")
    assert default_grid.curve_images() == RunConfig.eval_subsample
    steps, _, full = default_grid.curve("current", "ood")
    assert full[-1] and not any(full[:-1]) and steps[-1] == 4  # the end: every image, apart from the lines


def test_teaching_comparison_bars_are_each_methods_change_against_zero_shot(tmp_path, tiny_cfg):
    """Issue 15, the three-way teaching run: fine-tune (tracking WiSE-FT) and CLIPood; each bar is a method's output
    minus zero-shot per main split, read from the runs' own summaries."""
    from app import figures
    from app.records import RunRecord, teaching_changes, teaching_configs
    from core.engine import train

    recs = {}
    configs = teaching_configs(tiny_cfg(eval_every=3), seed=0)  # the Compare button's runs: what the bars read
    assert [c.method for c in configs] == ["finetune", "clipood"] and all(c.eval_every == 0 for c in configs)
    for cfg in configs:
        recs[cfg.method] = RunRecord.from_events([e.to_dict() for e in train(cfg, tmp_path / cfg.method)])
    ft, co = recs["finetune"].summary, recs["clipood"].summary
    changes = teaching_changes(recs)
    assert list(changes) == ["fine-tune", "WiSE-FT", "CLIPood"]
    for split in ("id", "ood"):
        assert changes["fine-tune"][split] == pytest.approx(ft["final"][split] - ft["zeroshot"][split], abs=0.01)
        assert changes["WiSE-FT"][split] == pytest.approx(ft["tracked"]["wiseft"][split] - ft["zeroshot"][split],
                                                          abs=0.01)
        assert changes["CLIPood"][split] == pytest.approx(co["result"][split] - co["zeroshot"][split], abs=0.01)
    fig = figures.teaching_bars(changes)
    assert [t.name for t in fig.data] == list(changes) and all(t.type == "bar" for t in fig.data)
    assert list(fig.data[2].y) == [changes["CLIPood"][s] for s in ("id", "ood")]
    # each bar reads its own model: moving one model's accuracy moves its bar and no other
    for path, bar in ((("final",), "fine-tune"), (("tracked", "wiseft"), "WiSE-FT")):
        acc = recs["finetune"].summary
        for key in path:
            acc = acc[key]
        for split in list(acc):
            acc[split] += 7.0
        moved = teaching_changes(recs)
        assert all(moved[b][s] == pytest.approx(changes[b][s] + 7.0 * (b == bar), abs=0.01)
                   for b in ("fine-tune", "WiSE-FT") for s in ("id", "ood")), (bar, moved)
        changes = moved
    recs["clipood"].finish["status"] = "failed"  # an unfinished run gives no bar, never a made-up one
    assert list(teaching_changes(recs)) == ["fine-tune", "WiSE-FT"]
