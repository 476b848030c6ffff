"""Abuse mode of the load test (issue 17): hostile visitors among normal ones on a public-Space server.

The attackers upload a zip of pixel bombs (Data preview, embeddings, a short run), a 1.1 MB zip holding one 1 GiB
entry, a zip of 40,000 one-byte entries, a 2,000-class dataset (Margins, Embeddings, Data), twenty 49 MB files to
gradio's upload route, a hub id naming a server folder, a non-ASCII browser token, and a max-steps run that only the
wall-time cap stops (90 s here, 600 s on a real Space). Normal visitors start and stop short runs meanwhile; those
that do not stop must finish. The report gives the server's peak RSS
(``ru_maxrss`` of this process: server and clients together, so an upper bound) and the disk of the zip/eval cache,
gradio's upload cache and the runs folder before, at their peak and after.

    python scripts/load_test.py --abuse --out bench/results/load_abuse.json
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

RSS_LIMIT_MB = 3000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _png(size, mode="RGB", colour=0) -> bytes:
    from PIL import Image

    b = io.BytesIO()
    Image.new(mode, size, colour).save(b, "PNG")
    return b.getvalue()


def make_zips(d: Path) -> dict[str, Path]:
    """The attack files (generated, never committed) and one normal dataset zip."""
    out = {}
    bomb = _png((7000, 7000), "1")
    with zipfile.ZipFile(d / "bombs.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(16):
            zf.writestr(f"{('photo', 'sketch')[i % 2]}/{'xy'[(i // 2) % 2]}/{i}.png", bomb)
    out["bombs"] = d / "bombs.zip"
    with zipfile.ZipFile(d / "gib.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("photo/x/0.png", _png((8, 8)))
        with zf.open("sketch/y/zero.png", "w", force_zip64=True) as w:
            block = bytes(1 << 20)
            for _ in range(1024):
                w.write(block)
    out["gib"] = d / "gib.zip"
    with zipfile.ZipFile(d / "many.zip", "w") as zf:
        for i in range(40_000):
            zf.writestr(f"{('photo', 'sketch')[i % 2]}/{'xy'[(i // 2) % 2]}/{i}.png", b"x")
    out["many"] = d / "many.zip"
    tile = _png((8, 8), colour=(90, 10, 10))
    with zipfile.ZipFile(d / "classes.zip", "w") as zf:
        for c in range(2000):
            for dom in ("photo", "sketch"):
                zf.writestr(f"{dom}/class{c:04d}/0.png", tile)
    out["classes"] = d / "classes.zip"
    return out


def _data(dataset="toy-shapes", path="", upload=None):
    return [dataset, path, upload, "domain_shift", ["photo"], ["sketch"], [], 0.9, 4, 3]


def _attempt(name: str, fn) -> dict:
    """Run one attack; its outcome is what the server answered (an error message is a refusal, as intended)."""
    t0 = time.perf_counter()
    try:
        said, refused = str(fn())[:300], False
    except Exception as e:  # noqa: BLE001 - a refusal is a result
        said, refused = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300], True
    return {"attack": name, "refused": refused, "said": said, "seconds": round(time.perf_counter() - t0, 1)}


def attacks(url: str, zips: dict[str, Path], tmp: Path) -> list[dict]:
    from gradio_client import Client, handle_file

    c = Client(url, verbose=False)
    up = {k: handle_file(str(v)) for k, v in zips.items()}
    bomb, classes = _data("zip:", "", up["bombs"]), _data("zip:", "", up["classes"])

    def uploads_49mb():
        import httpx

        blob = bytearray(os.urandom(49 << 20))
        for i in range(20):
            blob[:8] = i.to_bytes(8, "little")
            r = httpx.post(url.rstrip("/") + "/gradio_api/upload",
                           files={"files": (f"u{i}.zip", bytes(blob), "application/zip")}, timeout=120)
            r.raise_for_status()
        return "20 uploads accepted"

    def run(data, **kw):
        job = c.submit(*data, "tiny-random", "clipood", 0.3, 0.5, 1e-5, kw.get("steps", 2), kw.get("batch", 8), 0,
                       False, kw.get("browser_runs", []), api_name="/train")
        job.result(timeout=1800)
        return job.outputs()[-1][0].splitlines()[0]

    return [
        _attempt("pixel bombs: data preview", lambda: c.predict(*bomb, api_name="/preview_data")[3]),
        _attempt("pixel bombs: embeddings", lambda: c.predict("__zeroshot__", "zero-shot", "class", 300, "PCA",
                                                              False, [], "tiny-random", *bomb,
                                                              api_name="/embeddings")[1]),
        _attempt("pixel bombs: a run", lambda: run(bomb)),
        _attempt("1 GiB entry", lambda: c.predict(*_data("zip:", "", up["gib"]), api_name="/preview_data")[3]),
        _attempt("40k one-byte entries", lambda: c.predict(*_data("zip:", "", up["many"]),
                                                           api_name="/preview_data")[3]),
        _attempt("2,000 classes: margins", lambda: c.predict("tiny-random", "", 0.3, *classes,
                                                             api_name="/margins")["plot"][:0] + "drawn"),
        _attempt("2,000 classes: embeddings", lambda: c.predict("__zeroshot__", "zero-shot", "class", 300, "PCA",
                                                                False, [], "tiny-random", *classes,
                                                                api_name="/embeddings")[1]),
        _attempt("2,000 classes: data preview", lambda: c.predict(*classes, api_name="/preview_data")[3]),
        _attempt("20 x 49 MB uploads", uploads_49mb),
        _attempt("hub id naming a server folder", lambda: c.predict(*_data("hf:", "core/data"),
                                                                    api_name="/preview_data")[3]),
        _attempt("non-ASCII browser token", lambda: run(_data(), browser_runs=["é~x"])),
        _attempt("max-steps run", lambda: run(_data(), steps=50_000, batch=256)),
    ]


class Sampler:
    """Samples the disk of the cache, upload cache and runs folder (and RSS) every second; keeps the peaks."""

    def __init__(self, demo, runs: Path):
        from app import uploads
        from app.runs import folder_bytes
        from core.data import quota

        self.probes = {"cache": quota.usage, "uploads": lambda: uploads.usage(demo),
                       "runs": lambda: folder_bytes(runs)}
        self.before = self.now()
        self.peak = dict(self.before)
        self.rss_before = _rss_mb()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def now(self) -> dict:
        return {k: f() for k, f in self.probes.items()}

    def _loop(self):
        while not self.stop.wait(1.0):
            for k, v in self.now().items():
                self.peak[k] = max(self.peak[k], v)


def abuse_test(sessions: int = 4, steps: int = 8, settle_s: float = 30.0) -> dict:
    """Attackers and ``sessions`` normal visitors at once on a Space-mode server; the report of both."""
    from load_test import _how_to_stop, _session

    from app.options import SPACE_CAPS, AppOptions, Caps, Defaults
    from app.ui import build_app, launch
    from core.data import quota

    tmp = Path(tempfile.mkdtemp(prefix="clipood-abuse-"))
    os.environ["CLIPOOD_CACHE"] = str(tmp / "cache")
    zips = make_zips(tmp)
    caps = Caps(**{**SPACE_CAPS, "max_seconds": 90.0, "max_cache_gb": 1.0, "max_upload_cache_mb": 200},
                max_steps=50_000, max_batch=256)
    demo = build_app(AppOptions(runs_dir=tmp / "runs", caps=caps, shared_runs=False, allow_local_paths=False,
                                warmup=False, min_yield_s=0.3,
                                defaults=Defaults(model="tiny-random", shots=4, eval_per=3, steps=steps,
                                                  batch_size=8)))
    _, url, _ = launch(demo, port=None, prevent_thread_lock=True, quiet=True)
    sampler = Sampler(demo, tmp / "runs")
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=sessions + 1) as pool:
            bad = pool.submit(attacks, url, zips, tmp)
            normal = list(pool.map(lambda i: _session(url, i, steps, _how_to_stop(i, 3), 1800), range(sessions)))
            attacked = bad.result()
        time.sleep(settle_s)  # the upload sweeper runs every 5 s; cache trims happen as datasets are opened
    finally:
        sampler.stop.set()
        after = sampler.now()
        with contextlib.redirect_stdout(sys.stderr):  # (gradio prints "Closing server"; stdout is the report)
            demo.close()
    quotas = {"cache": quota.quota(), "uploads": caps.max_upload_cache_mb << 20, "runs": None}
    disk = {k: {"before": sampler.before[k], "peak": sampler.peak[k], "after": after[k], "quota": quotas[k]}
            for k in after}
    peak = _peak_mb()
    report = {"mode": "abuse", "caps": {k: getattr(caps, k) for k in ("max_seconds", "max_cache_gb",
                                                                      "max_upload_cache_mb", "max_dataset_pixels",
                                                                      "upload_ttl_s", "max_runs_gb")},
              "wall_s": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak),
              "rss_before_mb": round(sampler.rss_before), "rss_after_mb": round(_rss_mb()), "disk_bytes": disk,
              "attacks": attacked, "normal_sessions": normal,
              "checks": {"peak_rss_under_3gb": peak < RSS_LIMIT_MB,
                         "caches_back_within_quota": all(v["after"] <= v["quota"] for v in disk.values()
                                                         if v["quota"]),
                         "normal_runs_finished": all(r["error"] is None and (r["stop"] or r["status"] == "Finished")
                                                     for r in normal)}}
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return report
