"""Screenshots of every main view of CLIPood Studio, made by driving a real browser (Playwright + Chromium).

    python scripts/screenshots.py                      # embedded default, writes docs/img/*.png
    python scripts/screenshots.py --url http://127.0.0.1:7860 --out /tmp/shots

Without ``--url`` it starts the app itself on a free loopback port with a throw-away runs folder. Uses the system
Chromium (``/usr/bin/chromium``, Debian's ``chromium`` package); never downloads a browser. The same ``tour()``
drives the end-to-end test (``tests/test_app_browser.py``), which also checks that the curves update.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
VIEWS = ("data", "train", "margins", "embeddings", "compare", "playground", "learn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs_dir: Path, warm: bool = False, **defaults):
    """Build and launch the app on loopback; returns (demo, url). ``warm``: wait for the background warm-up first,
    as a visitor arriving after ``python app.py`` has settled would."""
    sys.path.insert(0, str(ROOT))
    from app.options import AppOptions, Defaults
    from app.ui import build_app, launch, warm_up

    demo = build_app(AppOptions(runs_dir=runs_dir, defaults=Defaults(**defaults), warmup=False,
                                min_yield_s=0.3))
    if warm:
        warm_up(demo.ctx).join()
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url


def plot_traces(page, elem_id: str) -> list[dict]:
    """Name and point count of each trace of the plotly figure inside #elem_id (empty until drawn)."""
    return page.evaluate(
        """(id) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
                     if (!gd || !gd.data) return [];
                     return gd.data.map(t => ({name: t.name || '', n: (t.x && t.x.length) || 0,
                                               y: t.y ? Array.from(t.y).slice(-1)[0] : null})); }""", elem_id)


def wait_plot(page, elem_id: str, min_traces: int = 1, timeout_s: float = 60) -> list[dict]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        tr = plot_traces(page, elem_id)
        if len(tr) >= min_traces:
            return tr
        page.wait_for_timeout(250)
    raise TimeoutError(f"#{elem_id} did not draw {min_traces} trace(s) in {timeout_s:.0f} s")


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(400)


def shot(page, out: Path | None, name: str) -> Path | None:
    if out is None:
        return None
    out.mkdir(parents=True, exist_ok=True)
    p = out / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    return p


def tour(page, url: str, out: Path | None, steps: int | None = None, run_timeout_s: float = 240,
         log=print, pair: bool = False) -> dict:
    """Open the app, start a run and watch its curves update, then visit every view (the Embeddings view shows the
    run's result weights). ``pair``: also run the teaching pair in the Compare view. Returns observations."""
    seen: dict = {"progress": [], "acc_points": [], "loss_points": []}
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url)
    wait_plot(page, "data-grid", 2, 120)
    seen["data_counts"] = wait_plot(page, "data-counts", 1)
    shot(page, out, "data")
    log("data view ok")
    open_tab(page, "Lesson")
    shot(page, out, "lesson")
    log("lesson view ok")

    open_tab(page, "Train")
    whatif = page.locator("#train-whatif-box input")  # (off by default; the tour shows the what-if plot too)
    if not whatif.is_checked():
        whatif.check()
    if steps is not None:
        box = page.locator("#train-steps input")
        box.fill(str(steps))
        box.press("Tab")
    t0 = time.time()
    page.locator("#train-start").click()
    first_curve = None
    deadline = time.time() + run_timeout_s
    while time.time() < deadline:
        prog = text_of(page, "train-progress").strip()
        acc = plot_traces(page, "train-acc")
        loss = plot_traces(page, "train-loss")
        npts = sum(t["n"] for t in acc if t["name"] != "zero-shot")
        if first_curve is None and acc:
            first_curve = time.time() - t0
        if not seen["progress"] or seen["progress"][-1] != prog:
            seen["progress"].append(prog)
        seen["acc_points"].append(npts)
        seen["loss_points"].append(sum(t["n"] for t in loss if t["name"] == "loss"))
        if "Finished" in text_of(page, "train-status") or "Failed" in text_of(page, "train-status"):
            break
        page.wait_for_timeout(300)
    seen["first_curve_s"] = first_curve
    seen["run_s"] = time.time() - t0
    seen["status"] = text_of(page, "train-status")
    page.wait_for_timeout(800)
    seen["progress"].append(text_of(page, "train-progress").strip())  # (the last update may land with the status)
    seen["acc_traces"] = plot_traces(page, "train-acc")
    seen["whatif_traces"] = plot_traces(page, "train-whatif")
    shot(page, out, "train")
    log(f"train view ok: first curve {first_curve}s, run {seen['run_s']:.1f}s")

    open_tab(page, "Margins")
    page.locator("#margins-go").click()
    seen["margins"] = wait_plot(page, "margins-plot", 2)
    shot(page, out, "margins")
    log("margins view ok")

    open_tab(page, "Embeddings")
    page.wait_for_timeout(800)
    page.locator("#emb-run input").click()
    page.get_by_role("option").nth(1).click()  # the run just made (the first option is the zero-shot model)
    page.wait_for_function("() => !document.querySelector('#emb-weights input').value.startsWith('zero-shot')",
                           timeout=60000)
    seen["emb_weights"] = page.locator("#emb-weights input").input_value()
    page.locator("#emb-draw").click()
    t1 = time.time()
    seen["embeddings"] = wait_plot(page, "emb-plot", 2, 180)
    seen["embeddings_s"] = time.time() - t1
    page.wait_for_function("() => { const gd = document.querySelector('#emb-plot .js-plotly-plot');"
                           " return gd && gd.__clipoodBound; }", timeout=10000)
    page.evaluate("""() => { const gd = document.querySelector('#emb-plot .js-plotly-plot');
                            gd.emit('plotly_click', {points: [{customdata: 0}]}); }""")
    page.wait_for_function("() => document.querySelector('#emb-info').innerText.includes('predicted')",
                           timeout=30000)
    seen["emb_info"] = text_of(page, "emb-info")
    shot(page, out, "embeddings")
    log("embeddings view ok")

    open_tab(page, "Compare")
    page.wait_for_timeout(800)
    if pair:
        page.locator("#compare-pair").click()
        page.wait_for_function("() => { const t = document.querySelector('#compare-status').innerText;"
                               " return t.includes('Run 2/2') && t.includes('done'); }", timeout=1800 * 1000)
        page.wait_for_timeout(1500)
    else:
        page.locator("#compare-runs input").click()
        page.get_by_role("option").first.click()
        page.keyboard.press("Escape")
    seen["compare"] = wait_plot(page, "compare-plot", 2)
    shot(page, out, "compare")
    log("compare view ok")

    open_tab(page, "Playground")
    page.wait_for_timeout(800)
    page.locator("#pg-pick").click()
    page.wait_for_function("() => document.querySelector('#pg-message').innerText.includes('Picked')",
                           timeout=30000)
    page.locator("#pg-runs input").click()
    page.get_by_role("option").first.click()
    page.keyboard.press("Escape")
    page.locator("#pg-go").click()
    page.wait_for_function("() => document.querySelector('#pg-message').innerText.includes('zero-shot:')",
                           timeout=60000)
    seen["playground"] = wait_plot(page, "pg-plot", 2)
    shot(page, out, "playground")
    log("playground view ok")

    open_tab(page, "Learn")
    page.wait_for_timeout(500)
    seen["learn"] = text_of(page, "learn-text")
    shot(page, out, "learn")
    log("learn view ok")
    return seen


def browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default=None, help="an already running Studio (default: start one)")
    p.add_argument("--out", default=str(ROOT / "docs" / "img"))
    p.add_argument("--steps", type=int, default=None, help="steps of the demo run (default: the app's default)")
    p.add_argument("--no-pair", action="store_true", help="skip the teaching pair in the Compare view (faster)")
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = None
    url = a.url
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            demo, url = start_app(Path(tmp) / "runs", warm=True)
        try:
            with sync_playwright() as pw:
                b = browser(pw)
                page = b.new_page()
                seen = tour(page, url, Path(a.out), a.steps, run_timeout_s=1200, pair=not a.no_pair)
                b.close()
            print(f"first curve point {seen['first_curve_s']:.2f} s after Start, run {seen['run_s']:.1f} s, "
                  f"embeddings {seen['embeddings_s']:.1f} s; screenshots in {a.out}")
        finally:
            if demo is not None:
                demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
