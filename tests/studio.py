"""Serving the Studio on loopback for API tests (gradio_client): one place for the port, the tiny defaults and the
output positions of the ``/train`` endpoint."""

import re
import socket

from app.options import AppOptions, Caps, Defaults
from app.records import model_label
from app.ui import build_app, launch
from core.config import defaults_for

# The accuracy plot's name for a default run's BMA curve: its beta is core's toy-world default, never a copy.
DEFAULT_BMA = model_label("bma", {"beta": defaults_for(model="tiny-random")["beta"]})
TINY = dict(model="tiny-random", shots=4, eval_per=3, steps=6, batch_size=8)
STATUS, PROGRESS, ACC, LOSS, BETA, WHATIF, RESULTS, BROWSER_RUNS, PICKER = range(9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(runs_dir, caps: Caps | None = None, **opts):
    demo = build_app(AppOptions(runs_dir=runs_dir, defaults=Defaults(**TINY), warmup=False, min_yield_s=0.2,
                                caps=caps or Caps(max_steps=2000, max_batch=64), **opts))
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url


def train_args(**kw):
    args = dict(data_upload=None, browser_runs=[], steps=6, batch_size=8, shots=4, eval_per=3, model="tiny-random")
    args.update(kw)
    return args


def run_id_of(outputs) -> str:
    for out in outputs:
        m = re.search(r"run `([^`]+)`", out[STATUS])
        if m:
            return m.group(1)
    raise AssertionError("no run id in the streamed status")
