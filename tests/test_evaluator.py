"""Module caches stay bounded (core/evaluator.py, core/lru.py), and a hit returns what was computed once."""

import torch

from core import evaluator
from core.models import load_clip


def test_text_feature_cache_is_a_bounded_lru():
    bundle = load_clip("tiny-random")
    evaluator._TEXT_CACHE.clear()
    first = evaluator.text_features_cached(bundle, ["cat", "dog"], ["a photo of a {}."], False, "cpu")
    for i in range(evaluator.TEXT_CACHE_SIZE + 3):
        evaluator.text_features_cached(bundle, [f"class{i}", "dog"], ["a photo of a {}."], False, "cpu")
        evaluator.text_features_cached(bundle, ["cat", "dog"], ["a photo of a {}."], False, "cpu")  # kept fresh
    assert len(evaluator._TEXT_CACHE) == evaluator.TEXT_CACHE_SIZE
    again = evaluator.text_features_cached(bundle, ["cat", "dog"], ["a photo of a {}."], False, "cpu")
    assert again is first and again.shape[0] == 2
    assert torch.allclose(again.norm(dim=-1), torch.ones(2))
    oldest = (bundle.model_id, bundle.pretrained, ("class0", "dog"), ("a photo of a {}.",), False, "cpu")
    assert oldest not in evaluator._TEXT_CACHE


def test_lru_keeps_the_most_recent_and_computes_a_miss_once():
    from core.lru import LRU

    calls = []
    cache = LRU(2)
    for key in ["a", "b", "a", "c", "a", "b"]:
        assert cache.get(key, lambda k=key: calls.append(k) or k.upper()) == key.upper()
    assert calls == ["a", "b", "c", "b"] and len(cache) == 2 and "a" in cache and "c" not in cache
    cache.clear()
    assert len(cache) == 0


def test_the_studio_model_cache_is_bounded():
    from core import explore

    assert isinstance(explore._BUNDLES, type(evaluator._TEXT_CACHE)) and explore._BUNDLES.size == 2


def test_core_eval_scores_a_run_in_the_precision_it_trained_with(tmp_path):
    """``python -m core eval --run`` builds its evaluator from the run's saved config, precision included."""
    import json

    from core.config import RunConfig, resolve
    from core.evaluate import _evaluator

    cfg = resolve(RunConfig(model="tiny-random", steps=0, method="zeroshot", precision="bf16",
                            data_options={"shots": 2, "eval_per": 2}))
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    saved = RunConfig.from_saved(json.loads((tmp_path / "config.json").read_text()))
    assert _evaluator(saved)[1].amp is True  # bf16 autocast on this CPU, as the run trained
    assert _evaluator(RunConfig(**{**saved.to_dict(), "precision": "fp32"}))[1].amp is False


def test_zeroshot_key_names_what_zero_shot_depends_on_and_nothing_else():
    """One key for every cache of a zero-shot result: training knobs do not change it, data and model do."""
    from core.config import RunConfig
    from core.evaluator import zeroshot_key

    base = RunConfig().to_dict()
    for k, v in (("lr", 1.0), ("steps", 7), ("method", "finetune"), ("lam", 0.5), ("track", ["ema"])):
        assert zeroshot_key({**base, k: v}) == zeroshot_key(base), k
    for k, v in (("model", "tiny-random"), ("data_options", {"colour_bias": 0.0}), ("sources", ["sketch"]),
                 ("precision", "bf16"), ("ensemble", False), ("base_classes", ["circle"])):
        assert zeroshot_key({**base, k: v}) != zeroshot_key(base), k


def test_zero_shot_features_are_kept_for_the_same_images_and_weights_only():
    """A second run on the same data and model skips the zero-shot pass; other weights or other images do not."""
    from core.config import RunConfig, resolve
    from core.engine import prepare

    cfg = resolve(RunConfig(model="tiny-random", steps=0, method="zeroshot", data_options={"shots": 2, "eval_per": 2}))
    bundle, table, splits, pipeline, text = prepare(cfg, torch.device("cpu"))
    ev = evaluator.SplitEvaluator(table, splits, pipeline, text, "cpu", cfg.eval_subsample, cfg.seed, False)
    passes = []
    embed = ev.features
    ev.features = lambda visual, rows, batch=None: passes.append(len(rows)) or embed(visual, rows, batch)
    visual = bundle.model.visual.float().eval()
    evaluator._ZEROSHOT_CACHE.clear()
    first = evaluator.zeroshot_features(ev, visual, table, bundle)
    again = evaluator.zeroshot_features(ev, visual, table, bundle)
    assert again is first and passes == [len(ev.images)]
    with torch.no_grad():
        next(visual.parameters()).add_(1e-3)  # other weights: computed anew, and they differ
    moved = evaluator.zeroshot_features(ev, visual, table, bundle)
    assert len(passes) == 2 and not torch.equal(moved, first)
    ev.images = ev.images.flip(0)  # other images: computed anew
    evaluator.zeroshot_features(ev, visual, table, bundle)
    assert len(passes) == 3
