"""Serve CLIPood Studio: ``python app.py [--host 127.0.0.1] [--port 7860] [--share] [--runs-dir runs]``.

Builds the app (``app/ui.py``) and launches it; nothing else lives here. On a Hugging Face Space (``SYSTEM=spaces``)
saved runs are private to each browser and local folder paths are refused unless told otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from core.hardware import spin_openmp_workers

spin_openmp_workers()  # before anything imports torch: OpenMP reads it once (core/hardware.py says why)

try:  # ZeroGPU needs `spaces` imported before anything touches CUDA; a no-op where it is not installed
    import spaces  # noqa: F401
except ImportError:
    pass


def parse_args(argv=None) -> argparse.Namespace:
    from app.options import SPACE_CAPS, Caps, on_spaces

    caps, space = Caps(), (SPACE_CAPS if on_spaces() else {})
    p = argparse.ArgumentParser(description="CLIPood Studio")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to bind (GRADIO_SERVER_NAME, which a Space sets to 0.0.0.0 behind its proxy; "
                        "use 0.0.0.0 only behind a proxy)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="open a public gradio.live link (off by default)")
    p.add_argument("--runs-dir", default=os.environ.get("CLIPOOD_RUNS_DIR", "runs"), help="where runs are saved")
    p.add_argument("--private-runs", action=argparse.BooleanOptionalAction, default=on_spaces(),
                   help="list only the runs each browser started (default: on for a Space)")
    p.add_argument("--allow-local-paths", action=argparse.BooleanOptionalAction, default=not on_spaces(),
                   help="let users type server folder paths as datasets (default: off for a Space)")
    p.add_argument("--max-steps", type=int, default=caps.max_steps)
    p.add_argument("--max-batch", type=int, default=caps.max_batch)
    p.add_argument("--max-seconds", type=float, default=space.get("max_seconds", caps.max_seconds),
                   help="wall-time cap per run (default: 600 on a Space, none elsewhere)")
    p.add_argument("--queue-size", type=int, default=caps.queue_size)
    p.add_argument("--max-upload-mb", type=int, default=caps.max_upload_mb, help="largest upload accepted")
    p.add_argument("--max-runs-gb", type=float, default=space.get("max_runs_gb"),
                   help="disk quota of the runs folder plus the caches; the oldest finished runs are deleted to make "
                        "room (default: 20 on a Space, none elsewhere)")
    p.add_argument("--max-cache-gb", type=float, default=space.get("max_cache_gb"),
                   help="quota of the unpacked-zip and eval cache, least recently used first (default: 4 on a Space, "
                        "16 elsewhere)")
    p.add_argument("--upload-ttl-s", type=int, default=space.get("upload_ttl_s", caps.upload_ttl_s),
                   help="delete uploads older than this (default: 3600 on a Space, a day elsewhere)")
    p.add_argument("--no-warmup", action="store_true", help="skip the background warm-up")
    a = p.parse_args(argv)
    for name in ("max_steps", "max_batch", "max_seconds", "queue_size", "max_upload_mb", "max_runs_gb",
                 "max_cache_gb", "upload_ttl_s"):
        v = getattr(a, name)
        if v is not None and not v > 0:
            p.error(f"--{name.replace('_', '-')} must be > 0 (got {v})")
    return a


def options_summary(opts, space: bool) -> dict:
    """The resolved server options as one JSON-able dict (printed at start: a Space's log shows what it serves)."""
    return {"space": space, "runs_dir": str(opts.runs_dir), "private_runs": not opts.shared_runs,
            "allow_local_paths": opts.allow_local_paths, "caps": dataclasses.asdict(opts.caps)}


def main(argv=None) -> int:
    a = parse_args(argv)
    from pathlib import Path

    from app.options import SPACE_CAPS, AppOptions, Caps, on_spaces
    from app.ui import build_app, launch

    space = SPACE_CAPS if on_spaces() else {}
    caps = Caps(max_steps=a.max_steps, max_batch=a.max_batch, max_seconds=a.max_seconds, queue_size=a.queue_size,
                max_upload_mb=a.max_upload_mb, max_runs_gb=a.max_runs_gb, max_cache_gb=a.max_cache_gb,
                upload_ttl_s=a.upload_ttl_s, max_upload_cache_mb=space.get("max_upload_cache_mb"),
                max_dataset_pixels=space.get("max_dataset_pixels"))
    opts = AppOptions(runs_dir=Path(a.runs_dir), caps=caps, shared_runs=not a.private_runs,
                      allow_local_paths=a.allow_local_paths, warmup=not a.no_warmup)
    print("CLIPood Studio options: " + json.dumps(options_summary(opts, space=on_spaces())), flush=True)
    launch(build_app(opts), host=a.host, port=a.port, share=a.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
