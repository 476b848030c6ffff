"""The evaluator's module cache (core/evaluator.py) stays bounded, and hits return the features computed once."""

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
