"""The run checkpoint format, written and read only here (safetensors; nothing is ever unpickled).

``checkpoints/last.safetensors`` (resumable): the image tower as ``visual.<key>``, AdamW's tensor state as
``opt.<param id>.<key>``, each checkpointed average as ``avg.<name>.<key>``; metadata ``meta`` is JSON with ``step``,
``opt`` (AdamW's non-tensor state) and ``averages`` (name -> that average's counters).
``checkpoints/result.safetensors``: the method's output image-tower weights under their own keys; metadata
``method`` and ``what`` = ``visual``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .averages import Averages
from .io import load_safetensors, save_safetensors
from .reasons import BAD_CHECKPOINT, RunFailed

VISUAL, OPT, AVG = "visual.", "opt.", "avg."


class CheckpointError(RunFailed):
    """A checkpoint that cannot be read (truncated, foreign or pickled bytes): one line, the folder untouched."""

    def __init__(self, path: Path, error: Exception):
        first = str(error).splitlines()[0] if str(error) else "?"
        super().__init__(BAD_CHECKPOINT, {"path": str(path), "error": f"{type(error).__name__}: {first}"})


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, meta = {}, {}
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{OPT}{pid}.{k}"] = v
            else:
                meta[f"{pid}.{k}"] = v
    return tensors, meta


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in _strip(tensors, OPT).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(path: Path, step: int, visual: torch.nn.Module, opt: torch.optim.Optimizer | None,
                    averages: Averages) -> None:
    """Everything a resume needs after ``step`` optimiser steps, written atomically."""
    tensors = {f"{VISUAL}{k}": v for k, v in visual.state_dict().items()}
    meta: dict = {"step": step}
    if opt is not None:
        opt_tensors, meta["opt"] = _optimizer_tensors(opt)
        tensors.update(opt_tensors)
    meta["averages"] = {}
    for name, average in averages.checkpointed().items():
        tensors.update({f"{AVG}{name}.{k}": v for k, v in average.state_tensors().items()})
        meta["averages"][name] = average.state()
    save_safetensors(tensors, path, metadata={"meta": json.dumps(meta)})


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(meta, tensors) of a checkpoint; :class:`CheckpointError` when it is not a readable one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["meta"])
        return meta, load_safetensors(path)
    except Exception as e:  # noqa: BLE001 - truncated, foreign or pickled bytes: never unpickled, one message
        raise CheckpointError(path, e) from None


def load_checkpoint(path: Path, visual: torch.nn.Module, opt: torch.optim.Optimizer | None,
                    averages: Averages) -> int:
    """Restore a run from ``path`` in place; returns the number of optimiser steps it holds."""
    meta, tensors = read_checkpoint(path)
    visual.load_state_dict(_strip(tensors, VISUAL))
    if opt is not None:
        _load_optimizer(opt, tensors)
    for name, average in averages.checkpointed().items():
        average.load_state(meta["averages"][name], _strip(tensors, f"{AVG}{name}."))
    return int(meta["step"])


def read_weight_sets(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """(last image-tower weights, name -> averaged weights) of a checkpoint, averages in name order."""
    meta, tensors = read_checkpoint(path)
    names = sorted(meta.get("averages", {}))
    return _strip(tensors, VISUAL), {n: _strip(tensors, f"{AVG}{n}.") for n in names}


def save_result(path: Path, weights: dict[str, torch.Tensor], method: str) -> None:
    save_safetensors(weights, path, metadata={"method": method, "what": "visual"})


def load_result(path: Path) -> dict[str, torch.Tensor]:
    """The method's output weights of a finished run (``load_state_dict`` of an image tower)."""
    try:
        return load_safetensors(path)
    except Exception as e:  # noqa: BLE001 - same one-line refusal as a damaged checkpoint
        raise CheckpointError(path, e) from None
