"""Compare view: saved runs overlaid (curves + results table), and one click for the classic teaching pair:
``finetune`` vs ``clipood`` on the embedded default with the same seed, streamed side by side."""

from __future__ import annotations

import dataclasses

import gradio as gr

from core.config import resolve

from .. import figures, render, text
from ..context import USER_ERRORS, AppContext, user_error
from ..records import RunRecord
from ..runner import stream_run
from .train import MAX_BROWSER_RUNS, TrainView


def _label(rec: RunRecord) -> str:
    return f"{rec.method} · {rec.run_id[-6:] if rec.run_id else '?'} (seed {rec.config.get('seed')})"


def build(ctx: AppContext, train: TrainView, browser_runs: gr.BrowserState):
    gr.Markdown(text.COMPARE_INTRO)
    with gr.Row():
        runs = gr.Dropdown([], multiselect=True, max_choices=8, label="Runs to compare", scale=4,
                           allow_custom_value=True,  # ids are checked by the run index
                           elem_id="compare-runs")
        all_splits = gr.Checkbox(value=False, label="per-target splits too", scale=1)
        refresh_btn = gr.Button("Refresh list", scale=1, size="sm")
    with gr.Row():
        pair_btn = gr.Button("Run the teaching pair: fine-tune vs CLIPood (same seed)", variant="primary",
                             elem_id="compare-pair")
        pair_stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    status = gr.Markdown(elem_id="compare-status")
    plot = gr.Plot(figures.compare_curves([]), label="Runs overlaid", elem_id="compare-plot")
    table = gr.Dataframe(label="Saved runs", interactive=False, elem_id="compare-table")

    def compare(run_ids, per_target, browser_runs_, request: gr.Request):
        """Overlay the chosen saved runs (their result weights per split) and tabulate them."""
        try:
            recs = [ctx.record(r, request, browser_runs_) for r in (run_ids or [])]
        except USER_ERRORS as e:
            raise user_error(e) from None
        splits = recs[0].split_names(main_only=not per_target) if recs else None
        return figures.compare_curves([(_label(r), r) for r in recs], splits), render.runs_table(recs)

    def refresh(browser_runs_, request: gr.Request):
        return gr.update(choices=ctx.run_choices(request, browser_runs_))

    def teaching_pair(seed, browser_runs_, request: gr.Request):
        """Fine-tune, then CLIPood, on the embedded default with one seed; both stream into the overlay."""
        sess = ctx.sessions.get(request.session_hash)
        if not sess.idle.is_set():
            raise gr.Error("A run of this tab is still going: stop it first.")
        try:
            base = ctx.default_config()
            base = dataclasses.replace(base, seed=int(seed or 0), track=["bma"])
        except USER_ERRORS as e:
            raise user_error(e) from None
        done: list[RunRecord] = []
        runs_ = list(browser_runs_ or [])
        for method in ("finetune", "clipood"):
            cfg = resolve(dataclasses.replace(base, method=method, lam=None))
            try:
                run_id, run_dir = ctx.runs.new(cfg.method, cfg.dataset)
            except USER_ERRORS as e:
                raise user_error(e) from None
            runs_ = ctx.remember(runs_, run_id, MAX_BROWSER_RUNS)
            sess.begin(run_id)
            for rec, changed in stream_run(cfg, run_dir, sess.stop, min_interval=1.0, on_done=sess.end):
                shown = done + [rec]
                msg = (f"Run {len(done) + 1}/2: **{method}** · step {rec.step}/{rec.total_steps} · {rec.status}")
                yield (figures.compare_curves([(_label(r), r) for r in shown]),
                       render.runs_table(shown) if changed & {"init", "finish"} else gr.skip(), msg,
                       gr.update(choices=ctx.run_choices(request, runs_), value=[r.run_id for r in shown])
                       if changed & {"start", "finish"} else gr.skip(), runs_)
            done.append(rec)
            if rec.status != "done":
                break

    def stop_pair(request: gr.Request):
        sess = ctx.sessions.get(request.session_hash)
        if sess.active:
            sess.stop.set()
            return "Stopping after the current step…"
        return "Nothing to stop."

    outs = [plot, table, status, runs, browser_runs]
    runs.change(compare, [runs, all_splits, browser_runs], [plot, table], api_name="compare")
    all_splits.change(compare, [runs, all_splits, browser_runs], [plot, table], api_visibility="private")
    refresh_btn.click(refresh, [browser_runs], [runs], api_visibility="private")
    pair_event = pair_btn.click(teaching_pair, [train.seed, browser_runs], outs, api_name="teaching_pair",
                                concurrency_id="train", concurrency_limit=1, show_progress="minimal",
                                show_progress_on=[status])
    pair_stop.click(stop_pair, None, [status], queue=False, api_visibility="private", cancels=[pair_event])
    train.stop.click(None, None, None, cancels=[pair_event], api_visibility="private")
    return runs, refresh
