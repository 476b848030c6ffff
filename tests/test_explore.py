"""The computations the Studio shows (core/explore.py, core/playground.py, app/projection.py), on the tiny model."""

import threading

import numpy as np
import pytest
import torch

from core.clipood import beta_weights
from core.data import open_dataset
from core.engine import run_to_end
from core.explore import (
    RESULT,
    ZEROSHOT,
    RunModels,
    average_shares,
    beta_schedule,
    colour_shortcut,
    dataset_overview,
    eval_sample,
    sample_mosaic,
    text_similarity,
)
from core.playground import PlaygroundError, class_probabilities, parse_class_names
from core.world.scenes import SHORTCUT_COLOUR

TINY = {"shots": 4, "eval_per": 3}


def test_beta_schedule_matches_the_engine_weights():
    s = beta_schedule(50, 0.5)
    assert np.allclose(s["density"], beta_weights(50, 0.5).numpy())
    assert s["weights"].sum() == pytest.approx(1.0) and len(s["step"]) == 51


def test_average_shares():
    end = average_shares(100, 0.1, 100)
    w = beta_weights(100, 0.1)
    assert end["zeroshot"] == pytest.approx(float(w[0] / w.sum()))
    assert end["zeroshot"] + end["latest"] + end["between"] == pytest.approx(1.0)
    start = average_shares(100, 0.1, 0)
    assert start["zeroshot"] == pytest.approx(1.0) and start["latest"] == 0.0
    early = average_shares(100, 0.1, 5)
    assert early["zeroshot"] > end["zeroshot"] and early["latest_steps"] == 5


def test_overview_mosaic_shortcut():
    ov = dataset_overview("toy-shapes", "domain_shift", data_options=TINY)
    assert ov.roles["photo"] == "source" and ov.roles["sketch"] == "target"
    assert set(ov.split_domains["train"]) == {"photo", "cartoon"}
    assert sum(ov.split_domains["ood"].values()) == 4 * 16 * 3
    mosaic, rows, cols = sample_mosaic(ov.table, ["sketch", "photo"], cell=16)
    assert mosaic.shape == (2 * 16, 16 * 16, 3) and rows == ["sketch", "photo"] and len(cols) == 16
    m, colours = colour_shortcut(ov.table, ov.splits.train)
    assert m.shape == (16, len(colours)) and np.allclose(m.sum(1), 1)
    assert np.mean([m[k, SHORTCUT_COLOUR[k]] for k in range(16)]) > 0.6  # colour_bias 0.9: the diagonal dominates
    flat = dataset_overview("toy-shapes", "domain_shift", data_options={**TINY, "colour_bias": 0.0})
    m0, _ = colour_shortcut(flat.table, flat.splits.train)
    assert np.mean([m0[k, SHORTCUT_COLOUR[k]] for k in range(16)]) < 0.5


def test_eval_sample_is_stratified():
    t = open_dataset("toy-shapes", **TINY)
    idx = eval_sample(t, 96, seed=0)
    assert len(idx) == 96 and len(set(idx.tolist())) == 96 and t.is_test[idx].all()
    cells = {(int(t.domain_ids[i]), int(t.labels[i])) for i in idx}
    assert len(cells) == 96  # one per (domain, class) before any cell gets a second
    assert len(eval_sample(t, 10_000)) == int(t.is_test.sum())


def test_parse_class_names():
    assert parse_class_names("cat, dog\n cat ,  big   bird") == ["cat", "dog", "big bird"]
    for bad in ("", "cat", ", ,"):
        with pytest.raises(PlaygroundError):
            parse_class_names(bad)
    with pytest.raises(PlaygroundError):
        parse_class_names(",".join(f"c{i}" for i in range(100)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from core.config import RunConfig

    run_dir = tmp_path_factory.mktemp("runs") / "r1"
    cfg = RunConfig(model="tiny-random", steps=4, batch_size=8, data_options=dict(TINY), eval_every=2,
                    checkpoint_every=2, track=["bma", "ema"])
    s = run_to_end(cfg, run_dir, threading.Event())
    assert s["status"] == "done"
    return run_dir


def test_zeroshot_reference_is_what_the_run_reports(tmp_path):
    """The app shows this reference before the engine's own zero-shot evaluation: it must be the same numbers
    (toy-clip, so accuracies differ by split and subsample; a small subsample so it differs from the full split)."""
    from core.config import RunConfig
    from core.explore import zeroshot_reference
    from core.models import TOY_CLIP_DIR
    from core.runstore import RunStore

    if not (TOY_CLIP_DIR / "open_clip_model.safetensors").is_file():
        pytest.skip("toy-clip weights are not built")
    cfg = RunConfig(model="toy-clip", steps=1, batch_size=4, data_options=dict(TINY), eval_every=1,
                    eval_subsample=20, track=["bma"])
    run_to_end(cfg, tmp_path / "r", threading.Event())
    ref = zeroshot_reference(cfg)
    zs = [e for e in RunStore(tmp_path / "r").read_events() if e["kind"] == "eval" and e["step"] == 0]
    sub = next(e["accuracy"]["zeroshot"] for e in zs if not e["full"])
    full = next(e["accuracy"]["zeroshot"] for e in zs if e["full"])
    assert sub != full  # the check below can tell them apart
    assert ref["subsample"] == pytest.approx(sub) and ref["full"] == pytest.approx(full)


def test_the_warm_up_reference_leaves_the_runs_zero_shot_features_computed(tmp_path):
    """Issue 16: the Studio's warm-up (``zeroshot_reference``) embeds the eval images once, and a run of the same
    config finds those zero-shot features instead of a second pass (one cache entry, not two)."""
    from core import evaluator
    from core.config import RunConfig
    from core.explore import zeroshot_reference

    cfg = RunConfig(model="tiny-random", steps=1, batch_size=4, data_options=dict(TINY), eval_every=1,
                    eval_subsample=10**9, track=["bma"])
    evaluator._ZEROSHOT_CACHE.clear()
    ref = zeroshot_reference(cfg)
    assert len(evaluator._ZEROSHOT_CACHE) == 1
    s = run_to_end(cfg, tmp_path / "r", threading.Event())
    assert len(evaluator._ZEROSHOT_CACHE) == 1 and s["zeroshot"] == pytest.approx(ref["full"])


def test_run_models_weight_sets(tiny_run):
    rm = RunModels.open(tiny_run)
    names = rm.available()
    assert names[0] == ZEROSHOT and {"final", "bma", "ema", RESULT} <= set(names)
    idx = eval_sample(rm.table, 20)
    zs, fin = rm.embed(ZEROSHOT, idx), rm.embed("final", idx)
    assert zs.shape == fin.shape == (20, 32)
    assert np.allclose(np.linalg.norm(zs, axis=1), 1, atol=1e-5)
    assert not np.allclose(zs, fin)  # fine-tuned weights really differ
    assert np.allclose(rm.embed(RESULT, idx), rm.embed("bma", idx), atol=1e-6)  # clipood's result is its BMA
    assert rm.predict(zs).shape == (20,)
    before = {k: v.clone() for k, v in rm.bundle.model.visual.state_dict().items()}
    rm.visual("final")
    assert all(torch.equal(before[k], v) for k, v in rm.bundle.model.visual.state_dict().items())  # shared model
    with pytest.raises(KeyError):
        rm.visual("nope")


def test_zero_shot_only_models_and_probabilities(tiny_cfg):
    rm = RunModels(tiny_cfg(method="zeroshot", steps=0))
    assert rm.available() == [ZEROSHOT]
    img = rm.table.load(np.array([0]))[0]
    sim = text_similarity(rm.bundle, ["cat", "dog", "car"])
    assert sim.shape == (3, 3) and np.allclose(np.diag(sim), 1, atol=1e-5)
    from core.explore import text_features

    tf = text_features(rm.bundle, ["circle", "square", "star"], rm.table.templates)
    probs = class_probabilities({"zs": rm.visual(ZEROSHOT)}, rm.pipeline, img.permute(1, 2, 0).numpy(), tf,
                                rm.bundle.logit_scale)
    assert probs["zs"].shape == (3,) and probs["zs"].sum() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(PlaygroundError):
        class_probabilities({"zs": rm.visual(ZEROSHOT)}, rm.pipeline, None, tf, 1.0)


def test_projection_shapes_and_text_placement():
    pytest.importorskip("umap")
    from app.projection import place_texts, project

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    lab = np.repeat(np.arange(3), 30)
    f = centres[lab] + 0.05 * rng.normal(size=(90, 16))
    f = (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)
    for method in ("pca", "umap"):
        xy = project(f, method, key=("t", method))
        assert xy.shape == (90, 2) and np.isfinite(xy).all()
        assert project(f, method, key=("t", method)) is xy  # cached
        txt = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        pos = place_texts(f, xy, txt, k=5)
        for c in range(3):  # each class text lands among its own images
            own = xy[lab == c].mean(0)
            others = [np.linalg.norm(pos[c] - xy[lab == o].mean(0)) for o in range(3) if o != c]
            assert np.linalg.norm(pos[c] - own) < min(others)
