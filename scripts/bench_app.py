"""Latency benchmark of the Studio on the embedded default, through its API (what a browser waits for, minus
drawing): first curve point after Start, a default run end to end, and the Embeddings view for 2,000 points.

    python scripts/bench_app.py                 # toy-clip (tiny-random if its weights are missing)
    python scripts/bench_app.py --out bench.json --steps 500 --no-whatif

Targets (issue 5, 2-core CPU): first curve point <= 2 s after Start, default run <= 60 s, embeddings <= 5 s once
warm. The app is started in-process with its background warm-up (as ``python app.py`` does) and the script waits
for that warm-up before measuring, like a visitor arriving a minute after the Space woke up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="default: the app's default (500)")
    p.add_argument("--no-whatif", action="store_true", help="run without the what-if averages")
    p.add_argument("--points", type=int, default=2000)
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    a = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import torch
    from gradio_client import Client

    from app.options import AppOptions, Defaults
    from app.ui import build_app, launch, warm_up
    from bench.space import first_point_and_run, free_port

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    d = Defaults()
    res: dict = {"model": d.model, "cpu_threads": torch.get_num_threads(), "device": "cpu" if not
                 torch.cuda.is_available() else torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        demo = build_app(AppOptions(runs_dir=Path(tmp) / "runs", warmup=False))
        res["build_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        warm_up(demo.ctx).join()
        res["warmup_s"] = round(time.perf_counter() - t0, 2)
        _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
        try:
            c = Client(url, verbose=False)
            args = dict(data_upload=None, browser_runs=[], whatif=not a.no_whatif)
            if a.steps:
                args["steps"] = a.steps
            res["default_run"] = first_point_and_run(c, args)
            data = ["toy-shapes", "", None, "domain_shift", ["photo", "cartoon"],
                    ["sketch", "painting", "pixel", "infrared"], [], d.colour_bias, d.shots, d.eval_per]
            runs = sorted(p.name for p in (Path(tmp) / "runs").iterdir() if p.is_dir())
            emb = {}
            for weights in ("zero-shot", "final", "result"):
                t0 = time.perf_counter()
                c.predict(runs[-1], weights, "class", a.points, "UMAP", False, [], d.model, *data,
                          api_name="/embeddings")
                emb[weights] = round(time.perf_counter() - t0, 2)
            res["embeddings_s"] = emb
        finally:
            demo.close()
    print(json.dumps(res, indent=2))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
