"""Where the app's GPU-bound calls run. On a Hugging Face ZeroGPU Space (``SPACES_ZERO_GPU=true`` and the ``spaces``
package importable) each of them runs inside ``@spaces.GPU``, a forked worker that holds a GPU for the call:

* :func:`events`: the engine's event stream (a training run), at most :data:`RUN_S` seconds of run, asking for
  :data:`RUN_S` + :data:`RUN_MARGIN_S` of GPU;
* :func:`embed`: the image features of the embedding map's points (:data:`EMBED_S`);
* :func:`classify`: the Playground's class probabilities (:data:`CLASSIFY_S`).

Everywhere else (a CPU Space, a dedicated GPU, a laptop) the decorators are the identity and everything runs in the
app's own process. The durations are what a visitor without an account can get: ZeroGPU refuses a call that asks for
more than the visitor's remaining daily quota, 2 minutes without an account (5 min is the most one call may ask).

Arguments and results cross a process boundary on ZeroGPU, so they are plain data (configs, paths, arrays, image
towers), never objects holding locks. In the forked worker a ``threading.Event`` of the app process cannot be seen,
so on ZeroGPU Stop works through the queue's cancellation (closing the stream); the run still ends with a checkpoint
up to its last completed step, and it stops itself at :data:`RUN_S` seconds, before the GPU is taken away.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np
import torch

from core.engine import train
from core.explore import RunModels
from core.playground import class_probabilities

ZERO_GPU_QUOTA_S = 120  # a visitor without an account gets 2 min of ZeroGPU a day; an account 5 min
RUN_MARGIN_S = 20  # checkpoint + final evaluation after the run's own time cap
RUN_S = ZERO_GPU_QUOTA_S - RUN_MARGIN_S  # a run on ZeroGPU stops itself after this many seconds
EMBED_S = 30  # load a run's weights and embed at most 2,000 images
CLASSIFY_S = 20  # one image under at most 4 image towers


def zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def _spaces():
    """The ``spaces`` module on a ZeroGPU Space, else None (also when the package is not installed)."""
    if not zero_gpu():
        return None
    try:
        import spaces
    except ImportError:
        return None
    return spaces


def on_gpu(duration):
    """``@spaces.GPU(duration=duration)`` on a ZeroGPU Space, the identity elsewhere (decided at import)."""
    spaces = _spaces()
    return (lambda fn: fn) if spaces is None else spaces.GPU(duration=duration)


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _run_duration(cfg, run_dir, resume=False) -> int:
    """Seconds of GPU a run asks for: its own time cap (at most :data:`RUN_S`) plus the margin."""
    return int(min(cfg.max_seconds or RUN_S, RUN_S)) + RUN_MARGIN_S


@on_gpu(_run_duration)
def _events(cfg, run_dir: Path, resume: bool = False):
    yield from train(cfg, run_dir, threading.Event(), resume)


_ENGINE = threading.Lock()


def _one_at_a_time(gen):
    """Hold the process-wide engine lock while ``gen`` runs: the queue frees its slot when a stream is closed, but a
    stopped run is still drained (checkpoint and summary) on a thread; the next run waits for it, so two runs never
    share the device."""
    with _ENGINE:
        yield from gen


def events(cfg, run_dir: Path, stop: threading.Event, resume: bool = False):
    """The engine's event stream: in this process (``stop`` works within one step) or, on ZeroGPU, on the GPU, where
    the run is capped at :data:`RUN_S` seconds so that it ends (resumable) inside the GPU time it asked for."""
    if _spaces() is not None:
        cfg = dataclasses.replace(cfg, max_seconds=min(cfg.max_seconds or RUN_S, RUN_S))
        return _events(cfg, run_dir, resume)
    return _one_at_a_time(train(cfg, run_dir, stop, resume))


@on_gpu(EMBED_S)
def _embed(run_dir: Path | None, config, weights: str, indices) -> np.ndarray:
    rm = RunModels.open(run_dir, _device()) if run_dir is not None else RunModels(config, device=_device())
    return rm.embed(weights, indices)


def embed(rm: RunModels, weights: str, indices) -> np.ndarray:
    """Image features of the table rows ``indices`` under the weight set ``weights`` of ``rm`` (the embedding map).
    On ZeroGPU the worker opens the run again on the GPU (``rm`` itself holds a lock and stays here)."""
    if _spaces() is None:
        return rm.embed(weights, indices)
    return _embed(rm.store.dir if rm.store is not None else None, rm.config, weights, np.asarray(indices))


@on_gpu(CLASSIFY_S)
def classify(visuals: dict, pipeline, image, text_features, logit_scale: float) -> dict[str, np.ndarray]:
    """:func:`core.playground.class_probabilities` on this process's device (the GPU inside a ZeroGPU worker)."""
    if _spaces() is not None and torch.cuda.is_available():  # the worker's own copies; never the shared base model
        visuals = {k: v.to("cuda") for k, v in visuals.items()}
    return class_probabilities(visuals, pipeline, image, text_features, logit_scale)
