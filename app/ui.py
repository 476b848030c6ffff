"""The Studio as one ``gr.Blocks``: Data, Train, Margins, Embeddings, Compare, Playground and Learn tabs.

``build_app(options)`` builds it; ``launch(demo, ...)`` serves it with the queue bounded, the theme, the CSS and the
small script that forwards clicks on the embedding map. Training events (a run, a resume, the teaching pair) share
one queue slot (``concurrency_id="train"``, limit 1); inspection events share another (limit 2); everything else is
cheap. Per-session state lives in ``gr.State`` / ``gr.BrowserState`` or in the session registry, never in globals.
"""

from __future__ import annotations

import logging
import threading

import gradio as gr

from . import text, uploads
from .context import AppContext
from .options import AppOptions
from .views import compare, data, embeddings, learn, lesson, margins, playground, train

log = logging.getLogger("clipood.app")

CSS = """
.clipood-progress {position: relative; height: 26px; border-radius: 6px; background: #eef2f7; overflow: hidden;}
.clipood-progress-fill {position: absolute; left: 0; top: 0; bottom: 0; transition: width .4s;}
.clipood-progress span {position: relative; padding-left: 10px; line-height: 26px; font-size: 13px;
  font-variant-numeric: tabular-nums;}
#train-status p {margin: 2px 0;}
"""

# Forward plotly clicks on the embedding map to the hidden text box #emb-point (plotly's own event API; the
# plot element is re-created by gradio on some updates, so binding is re-checked every second).
HEAD = """
<script>
(function () {
  function bind() {
    const gd = document.querySelector('#emb-plot .js-plotly-plot');
    if (!gd || gd.__clipoodBound || typeof gd.on !== 'function') return;
    gd.__clipoodBound = true;
    gd.on('plotly_click', function (ev) {
      const p = ev && ev.points && ev.points[0];
      if (!p || p.customdata === undefined || p.customdata === null) return;
      const input = document.querySelector('#emb-point textarea, #emb-point input');
      if (!input) return;
      input.value = String(p.customdata) + ':' + Date.now();
      input.dispatchEvent(new Event('input', {bubbles: true}));
      input.dispatchEvent(new Event('change', {bubbles: true}));
    });
  }
  setInterval(bind, 1000);
})();
</script>
"""


def warm_up(ctx: AppContext) -> threading.Thread:
    """Background: render the default data, load the default model, measure its zero-shot accuracy (so the first
    curve point of a default run shows at once) and compile UMAP. Failures only log."""

    def work():
        try:
            from core.explore import zeroshot_reference

            from .runner import remember_zeroshot

            cfg = ctx.default_config()  # (evaluating it also renders the default data once for every view)
            for kind, acc in zeroshot_reference(cfg).items():
                remember_zeroshot(cfg.to_dict(), acc, kind)
            from core.explore import base_model

            base_model(cfg.model)
            from .projection import warm_up as umap_warm_up

            umap_warm_up()
            log.info("warm-up done")
        except Exception as e:  # noqa: BLE001 - warm-up is an optimisation only
            log.warning("warm-up failed: %s", e)

    t = threading.Thread(target=work, name="clipood-warmup", daemon=True)
    t.start()
    return t


def upload_lifetime(ttl_s: int | None) -> tuple[int, int] | None:
    """gradio's ``delete_cache=(every, age)``: uploads and saved outputs older than ``ttl_s`` go, checked often."""
    return None if ttl_s is None else (max(1, min(300, ttl_s // 4)), int(ttl_s))


def build_app(options: AppOptions | None = None) -> gr.Blocks:
    ctx = AppContext(options or AppOptions())
    with gr.Blocks(title=text.TITLE, analytics_enabled=False,
                   delete_cache=upload_lifetime(ctx.caps.upload_ttl_s)) as demo:
        current_run = gr.State(None)
        browser_runs = gr.BrowserState([], storage_key="clipood-studio-runs", secret=ctx.browser_secret)
        measured = text.measured_story()  # (the committed story JSON, read once: the header and Learn say it)
        gr.Markdown(f"# {text.TITLE}\n{text.SUBTITLE}\n\n<small>{measured}</small>")
        with gr.Tabs(elem_id="tabs", selected="data") as tabs:  # (the lesson is the first tab; the page opens on Data)
            with gr.Tab("Lesson", id="lesson", elem_id="tab-lesson"):
                lesson_view = lesson.build()
            with gr.Tab("Data", id="data", elem_id="tab-data"):
                data_view = data.build(ctx)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train_view = train.build(ctx, data_view, current_run, browser_runs)
            with gr.Tab("Margins", id="margins", elem_id="tab-margins") as margins_tab:
                margins_arrive = margins.build(ctx, data_view, train_view)
            with gr.Tab("Embeddings", id="embeddings", elem_id="tab-embeddings") as emb_tab:
                emb_run, emb_refresh, emb_arrive = embeddings.build(ctx, data_view, train_view, browser_runs)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as cmp_tab:
                cmp_runs, cmp_refresh = compare.build(ctx, train_view, browser_runs)
            with gr.Tab("Playground", id="playground", elem_id="tab-playground") as pg_tab:
                (pg_runs, pg_domain), pg_refresh = playground.build(ctx, data_view, train_view, browser_runs)
            with gr.Tab("Learn", id="learn", elem_id="tab-learn"):
                learn.build(measured, text.measured_splits())

        lesson.wire(ctx, lesson_view, tabs, data_view, train_view)
        # (no empty panels: Margins and Embeddings draw with their defaults when first opened)
        margins_tab.select(*margins_arrive, api_visibility="private", concurrency_id="inspect")
        emb_tab.select(emb_refresh, [browser_runs], [emb_run], api_visibility="private"
                       ).then(*emb_arrive, api_visibility="private", concurrency_id="inspect")
        cmp_tab.select(cmp_refresh, [browser_runs], list(cmp_runs), api_visibility="private")
        pg_tab.select(pg_refresh, [browser_runs, *data_view.inputs], [pg_runs, pg_domain], api_visibility="private")

        def on_load(request: gr.Request, runs, *values):
            """Fill the data pickers, and reopen this browser's latest run (after a reload or a restart)."""
            fill = data_view.fill(*[values[i] for i in (0, 1, 2, 3, 7, 8, 9)])
            ctx.sessions.get(request.session_hash)
            mine = ctx.verified(runs)
            latest = next((r for r in reversed(mine) if r in ctx.runs.visible(mine)), None)
            shown = train_view.show_run(latest, runs, request)
            return (*fill, *shown)

        demo.load(on_load, [browser_runs, *data_view.inputs],
                  [data_view.sources, data_view.targets, data_view.base, data_view.path, data_view.upload,
                   data_view.colour_bias, data_view.message, *train_view.outputs], api_visibility="private"
                  ).then(data_view.preview, data_view.inputs,
                         [data_view.grid, data_view.counts, data_view.shortcut, data_view.message],
                         api_visibility="private")
        def on_unload(request: gr.Request):
            """Tab closed or reloaded: stop its run (checkpoint kept, resumable) and forget the session."""
            ctx.sessions.drop(getattr(request, "session_hash", None))

        demo.unload(on_unload)
    demo.ctx = ctx  # for tests and scripts
    ctx.disk_users.append(lambda: uploads.usage(demo))
    if ctx.caps.max_upload_cache_mb:
        uploads.start_sweeper(demo, ctx.caps.max_upload_cache_mb << 20)
    if ctx.options.warmup:
        warm_up(ctx)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Serve with a bounded queue and no file access beyond what gradio itself needs (no ``allowed_paths``)."""
    caps = demo.ctx.caps
    demo.queue(max_size=caps.queue_size, default_concurrency_limit=2)
    return demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=prevent_thread_lock,
                       quiet=quiet, show_error=False, max_file_size=f"{caps.max_upload_mb}mb",
                       enable_monitoring=False,
                       run_history=False,  # (runs are saved server-side; no figures piling up in localStorage)
                       theme=gr.themes.Soft(), css=CSS, head=HEAD, footer_links=["gradio", "settings"])
