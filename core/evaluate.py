"""Stand-alone evaluation: a model's zero-shot accuracy, or a finished run's result weights, per split.

A run is evaluated as it was trained: its saved config decides model, data and precision (bf16 autocast or fp32).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .checkpoint import load_result
from .config import RunConfig, resolve
from .engine import pick_device, prepare
from .evaluator import SplitEvaluator
from .runstore import RunStore
from .step import use_bf16


def _evaluator(cfg: RunConfig):
    cfg = resolve(cfg)
    device = pick_device(cfg.device)
    bundle, table, splits, pipeline, text = prepare(cfg, device)
    ev = SplitEvaluator(table, splits, pipeline, text, device, cfg.eval_subsample, cfg.seed, use_bf16(cfg, device))
    return bundle, ev


def evaluate_zeroshot(cfg: RunConfig) -> dict[str, dict[str, float]]:
    bundle, ev = _evaluator(dataclasses.replace(cfg, method="zeroshot", steps=0))
    return {"zero-shot": ev.accuracy(bundle.model.visual, full=True)}


def evaluate_run(run_dir: Path) -> dict[str, dict[str, float]]:
    store = RunStore(run_dir)
    if not store.config_path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json)")
    cfg = RunConfig.from_saved(store.read_config())
    bundle, ev = _evaluator(cfg)
    out = {"zero-shot": ev.accuracy(bundle.model.visual, full=True)}
    if store.result_checkpoint.exists():
        bundle.model.visual.load_state_dict(load_result(store.result_checkpoint))
        out[f"result ({cfg.method})"] = ev.accuracy(bundle.model.visual, full=True)
    return out
