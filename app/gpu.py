"""Optional ZeroGPU: on a Hugging Face Space with ``SPACES_ZERO_GPU=true`` and the ``spaces`` package installed, the
engine's event stream runs inside ``@spaces.GPU`` (a forked worker that holds the GPU until the stream ends).
Everywhere else this module is a no-op and the engine runs in the app's own process.

In the forked worker a ``threading.Event`` of the app process cannot be seen, so on ZeroGPU Stop works through the
queue's cancellation (closing the stream); the run still ends with a checkpoint up to its last completed step.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.engine import train


def zero_gpu() -> bool:
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def _duration(cfg, run_dir, resume=False) -> int:
    """Seconds of GPU to ask for: the run's wall-time cap if it has one, else a classroom-sized 120 s."""
    return int(min(cfg.max_seconds or 120, 300)) + 30


def _events(cfg, run_dir: Path, resume: bool = False):
    yield from train(cfg, run_dir, threading.Event(), resume)


if zero_gpu():  # pragma: no cover - only on a ZeroGPU Space
    import spaces

    _events = spaces.GPU(duration=_duration)(_events)


_ENGINE = threading.Lock()


def _one_at_a_time(gen):
    """Hold the process-wide engine lock while ``gen`` runs: the queue frees its slot when a stream is closed, but a
    stopped run is still drained (checkpoint and summary) on a thread; the next run waits for it, so two runs never
    share the device."""
    with _ENGINE:
        yield from gen


def events(cfg, run_dir: Path, stop: threading.Event, resume: bool = False):
    """The engine's event stream: in this process (``stop`` works within one step) or, on ZeroGPU, on the GPU."""
    if zero_gpu():  # pragma: no cover
        return _events(cfg, run_dir, resume)
    return _one_at_a_time(train(cfg, run_dir, stop, resume))
