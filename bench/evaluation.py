"""Evaluation throughput: images/s of embedding an eval split with the engine's own ``SplitEvaluator``, and the cost of
the class text features, which the engine computes once per (model, classes, templates) and then reuses."""

from __future__ import annotations

import time

import numpy as np
import torch

from core import engine, evaluator
from core.config import RunConfig, resolve
from core.data.pipeline import ImagePipeline
from core.features import class_text_features

from .common import median, spread, time_calls


def embedded_eval(model_id: str, repeats: int = 5, warmup: int = 1, max_rows: int | None = None,
                  device: str = "cpu", data_options: dict | None = None) -> dict:
    """The embedded default (toy-shapes eval grid) through ``SplitEvaluator.features`` and ``.accuracy``."""
    cfg = resolve(RunConfig(model=model_id, device=device, data_options=dict(data_options or {})))
    dev = engine.pick_device(cfg.device)
    evaluator._TEXT_CACHE.clear()
    t0 = time.perf_counter()
    bundle, table, splits, pipeline, text = engine.prepare(cfg, dev)
    t_prepare = time.perf_counter() - t0
    classes = [c.replace("_", " ") for c in table.classes]
    t0 = time.perf_counter()
    class_text_features(bundle.model, bundle.tokenizer, classes, table.templates, dev, cfg.ensemble)
    t_text = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluator.text_features_cached(bundle, table.classes, table.templates, cfg.ensemble, dev)
    t_text_cached = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = evaluator.SplitEvaluator(table, splits, pipeline, text, dev, cfg.eval_subsample, cfg.seed)
    t_build = time.perf_counter() - t0
    visual = bundle.model.visual.float().eval()
    rows = np.arange(len(ev.images))
    if max_rows is not None:
        rows = rows[:max_rows]
    ts = time_calls(lambda: ev.features(visual, rows), calls=1, warmup=warmup, repeats=repeats, device=dev)
    t_full = time_calls(lambda: ev.accuracy(visual, True), calls=1, warmup=0, repeats=max(1, repeats // 2), device=dev)
    t_sub = time_calls(lambda: ev.accuracy(visual, False), calls=1, warmup=0, repeats=repeats, device=dev)
    n_sub = len(np.unique(np.concatenate(list(ev.sub.values()))))
    batch = evaluator.EVAL_BATCH.get(dev.type, evaluator.EVAL_BATCH_ACCELERATOR)  # what ``features`` used
    return {"model": model_id, "device": str(dev), "images": int(len(rows)), "batch": batch,
            "images_per_s": len(rows) / median(ts), "spread": spread(ts),
            "full_accuracy_pass_s": median(t_full), "full_eval_images": int(len(ev.images)),
            "curve_point_accuracy_s": median(t_sub), "curve_point_images": int(n_sub),
            "text_features_s": t_text, "text_features_cached_s": t_text_cached,
            "text_classes": len(classes), "text_templates": len(table.templates) if cfg.ensemble else 1,
            "prepare_s": t_prepare, "evaluator_build_s": t_build, "repeats": repeats}


def synthetic_eval(arch: str, device: str, images: int = 2048, batch: int = 256, repeats: int = 5,
                   warmup: int = 1, classes: int = 65) -> dict:
    out = _synthetic_eval(arch, device, images, batch, repeats, warmup, classes)
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return out


def _synthetic_eval(arch: str, device: str, images: int, batch: int, repeats: int, warmup: int, classes: int) -> dict:
    """A random-init open_clip model (e.g. ViT-B-16) through ``embed_rows`` (the loop of ``SplitEvaluator.features``)
    on random uint8 images, plus
    the class text features of ``classes`` names with one template, computed once."""
    import open_clip

    dev = torch.device(device)
    if arch in ("toy-clip", "tiny-random"):  # the project's own configs (not registered with open_clip)
        from .steps import tower_config

        cfg = tower_config(arch)
        model = open_clip.CLIP(**cfg).to(dev).eval()
        tok = open_clip.SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    else:
        model = open_clip.create_model(arch, pretrained=None).to(dev).eval()
        tok = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = int(size if isinstance(size, int) else size[0])
    pipeline = ImagePipeline(size, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    amp = dev.type == "cuda"  # what a run with precision "auto" uses
    pixels = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    rows = np.arange(images)
    visual = model.visual.float().eval()
    ts = time_calls(lambda: evaluator.embed_rows(visual, pixels, rows, pipeline, dev, amp, batch), calls=1,
                    warmup=warmup, repeats=repeats, device=dev)
    names = [f"class {i}" for i in range(classes)]
    t_text = time_calls(lambda: class_text_features(model, tok, names, ["a photo of a {}."], dev, False), calls=1,
                        warmup=1, repeats=3, device=dev)
    out = {"arch": arch, "device": str(dev), "images": images, "batch": batch, "images_per_s": images / median(ts),
           "spread": spread(ts), "text_features_s": median(t_text), "text_classes": classes, "repeats": repeats,
           "includes": "uint8 host->device copy, normalisation, bf16 autocast on CUDA, L2 normalise"}
    return out


def world_render(batch: int = 384, calls: int = 3, warmup: int = 1, repeats: int = 5, size: int = 48) -> dict:
    """Images/s of the embedded world's renderer: the pre-training caption stream (all six styles mixed) and the
    fixed eval grid (one class and style per call, as ``render_grid`` draws it)."""
    from core.world.scenes import caption_batch, render_grid

    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    stream = time_calls(lambda: caption_batch(batch, gen, rng, size), calls, warmup, repeats)
    grid_n = 16 * 6 * max(1, batch // 96)
    grid = time_calls(lambda: render_grid(list(range(16)), list(range(6)), max(1, batch // 96), seed=1, size=size),
                      1, warmup, repeats)
    return {"batch": batch, "size": size, "threads": torch.get_num_threads(),
            "stream_images_per_s": batch / median(stream), "stream_spread": spread(stream),
            "grid_images": grid_n, "grid_images_per_s": grid_n / median(grid), "grid_spread": spread(grid)}
