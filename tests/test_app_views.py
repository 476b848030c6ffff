"""The views' wiring (app/views/): handlers found in the built Blocks by the component and event that trigger them,
called as Gradio would call them."""

import gradio as gr
import pytest

from app.options import AppOptions, Caps
from app.ui import build_app
from core.config import defaults_for


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_app(AppOptions(runs_dir=tmp_path_factory.mktemp("runs"), warmup=False))


def _handler(demo, label: str, kind, event: str, elem_id: str | None = None):
    """The one function ``event`` of the block (``kind`` with ``label``, or with ``elem_id``) triggers."""
    block = next(b for b in demo.blocks.values() if isinstance(b, kind) and (
        b.elem_id == elem_id if elem_id else b.label == label))
    fns = [f for f in demo.fns.values() if (block._id, event) in [tuple(t) for t in f.targets]]
    assert len(fns) == 1, f"{label or elem_id}.{event}: {len(fns)} handlers"
    return fns[0]


def test_choosing_a_setting_brings_cores_defaults_for_it(demo):
    """The toy world's settings train with their own lr, λ, steps and batch: picking the setting must put core's
    values in the form (as picking a model does), or a Studio run would not be the default the story measures."""
    fn = _handler(demo, "Setting", gr.Radio, "input")
    assert [o.label.split(" (")[0] for o in fn.outputs] == ["Learning rate", "λ", "Steps", "Batch", "β"]
    for setting in ("domain_shift", "open_class", "in_the_wild"):
        hp = defaults_for("toy-shapes", "toy-clip", setting)
        got = [u["value"] for u in fn.fn("toy-clip", "toy-shapes", setting)]
        assert got == [hp["lr"], hp["lam"], hp["steps"], hp["batch_size"], hp["beta"]], setting
    ds, oc, iw = (defaults_for(setting=s) for s in ("domain_shift", "open_class", "in_the_wild"))
    assert oc["lr"] != ds["lr"] and ds["batch_size"] != iw["batch_size"]
    # A per-domain paper recipe's batch is per source domain; the form's box is images per step, so it is left alone.
    hp = defaults_for("pacs", "ViT-B-16", "domain_shift")
    got = fn.fn("ViT-B-16", "pacs", "domain_shift")
    assert hp["sampler"] == "per_domain" and got[3] == gr.skip() and "value" not in got[3]
    steps = min(hp["steps"], Caps().max_steps)
    assert [u["value"] for i, u in enumerate(got) if i != 3] == [hp["lr"], hp["lam"], steps, hp["beta"]]


def test_lesson_reset_puts_every_training_field_back_to_cores_default(demo):
    """Reset restores λ, β, learning rate, steps and batch (β was left as the user set it)."""
    fn = _handler(demo, "", gr.Button, "click", elem_id="lesson-reset")
    got = {o.label.split(" (")[0]: v for o, v in zip(fn.outputs[1:], fn.fn()[1:]) if o.label}
    hp = defaults_for("toy-shapes", "toy-clip", "domain_shift")
    assert (got["λ"], got["β"], got["Learning rate"], got["Steps"], got["Batch"]) == (
        hp["lam"], hp["beta"], hp["lr"], hp["steps"], hp["batch_size"])


def test_the_data_preview_says_what_the_split_scan_measured_on_the_chosen_split(demo):
    """Picking sources or base classes the split scan measured brings its verdict (from the committed JSON) into the
    Data view's message; a split it did not measure (other world knobs) says nothing about it."""
    from app import text
    from core.split_scan import measured_checks

    preview = _handler(demo, "", gr.Button, "click", elem_id="data-preview").fn
    others = ["sketch", "painting", "pixel", "infrared"]
    msg = preview("toy-shapes", "", None, "domain_shift", ["photo", "cartoon"], others, [], 0.9, 64, 30)[3]
    assert text.split_verdict(measured_checks("domain_shift")) in msg
    pixel = ["sketch", "cartoon", "painting", "infrared"]
    msg = preview("toy-shapes", "", None, "domain_shift", ["photo", "pixel"], pixel, [], 0.9, 64, 30)[3]
    want = measured_checks("domain_shift", ["photo", "pixel"], pixel)
    assert want is not None and text.split_verdict(want) in msg
    assert ("does **not** hold" in msg) is (not all(ok for _, ok, _ in want))
    assert measured_checks("domain_shift", ["photo", "pixel"], pixel, data_options={"colour_bias": 0.0}) != want
    msg = preview("toy-shapes", "", None, "domain_shift", ["photo", "cartoon"], others, [], 0.9, 8, 30)[3]
    assert "Split scan" not in msg  # 8 shots: not a split the scan measured
