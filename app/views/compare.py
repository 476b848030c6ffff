"""Compare view: saved runs overlaid (curves + results table), and one click for the teaching comparison:
``finetune`` (which also tracks WiSE-FT) and ``clipood`` on the embedded default with the same seed, one after the
other and evaluated at their ends only, then a bar chart of each method's change against zero-shot per split."""

from __future__ import annotations

import gradio as gr

from .. import figures, render, text
from ..context import USER_ERRORS, AppContext, user_error
from ..records import RunRecord, run_labels, teaching_changes, teaching_configs
from ..runner import stream_run
from .train import MAX_BROWSER_RUNS, TrainView


def labelled(recs: list[RunRecord]) -> list[tuple[str, RunRecord]]:
    """(legend name, record): the user's label and what differs between the runs, never a bare hash."""
    return list(zip(run_labels(recs), recs))


def build(ctx: AppContext, train: TrainView, browser_runs: gr.BrowserState):
    gr.Markdown(text.COMPARE_INTRO)
    with gr.Row():
        runs = gr.Dropdown([], multiselect=True, max_choices=8, label="Runs to compare", scale=4,
                           allow_custom_value=True,  # ids are checked by the run index
                           elem_id="compare-runs")
        all_splits = gr.Checkbox(value=False, label="per-target splits too", scale=1)
        refresh_btn = gr.Button("Refresh list", scale=1, size="sm")
    with gr.Row():
        pair_btn = gr.Button("Run the teaching comparison: fine-tune, CLIPood and WiSE-FT (same seed)",
                             variant="primary", elem_id="compare-pair")
        pair_stop = gr.Button("Stop", variant="stop", elem_id="compare-stop")
    with gr.Row():
        label_run = gr.Dropdown([], label="Run to name", scale=3, allow_custom_value=True, elem_id="compare-label-run")
        label_text = gr.Textbox(label="Its label (shown in legends and run lists)", scale=3, max_length=40,
                                elem_id="compare-label")
        label_btn = gr.Button("Set label", scale=1, size="sm", elem_id="compare-label-set")
    status = gr.Markdown(elem_id="compare-status")
    plot = gr.Plot(figures.compare_curves([]), label="Runs overlaid", elem_id="compare-plot")
    table = gr.Dataframe(label="Saved runs", interactive=False, wrap=True, elem_id="compare-table")
    bars = gr.Plot(figures.teaching_bars({}), label="Teaching comparison", elem_id="compare-bars")

    def compare(run_ids, per_target, browser_runs_, request: gr.Request):
        """Overlay the chosen saved runs (their result weights per split) and tabulate them."""
        try:
            recs = [ctx.record(r, request, browser_runs_) for r in (run_ids or [])]
        except USER_ERRORS as e:
            raise user_error(e) from None
        splits = recs[0].split_names(main_only=not per_target) if recs else None
        return figures.compare_curves(labelled(recs), splits), render.runs_table(recs)

    def refresh(browser_runs_, request: gr.Request):
        choices = ctx.run_choices(request, browser_runs_)
        return gr.update(choices=choices), gr.update(choices=choices)

    def set_label(run_id, label, run_ids, per_target, browser_runs_, request: gr.Request):
        """Name a run; the list, the legend and the table show the name."""
        if not run_id:
            raise gr.Error("Run to name: pick a run first.")
        try:
            ctx.runs.set_label(run_id, label, ctx.own_runs(request, browser_runs_))
        except (*USER_ERRORS, OSError) as e:
            raise user_error(e) from None
        choices = ctx.run_choices(request, browser_runs_)
        plot_, table_ = compare(run_ids, per_target, browser_runs_, request)
        return gr.update(choices=choices), gr.update(choices=choices), plot_, table_

    def teaching_pair(seed, browser_runs_, request: gr.Request):
        """Fine-tune, then CLIPood, on the embedded default with one seed; both stream into the overlay."""
        sess = ctx.sessions.get(request.session_hash)
        if not sess.idle.is_set():
            raise gr.Error("A run of this tab is still going: stop it first.")
        try:
            configs = teaching_configs(ctx.default_config(), int(seed or 0))
        except USER_ERRORS as e:
            raise user_error(e) from None
        done: list[RunRecord] = []
        runs_ = list(browser_runs_ or [])
        for cfg in configs:
            method = cfg.method
            try:
                run_id, run_dir = ctx.runs.new(cfg.method, cfg.dataset)
            except USER_ERRORS as e:
                raise user_error(e) from None
            runs_ = ctx.remember(runs_, run_id, MAX_BROWSER_RUNS)
            sess.begin(run_id)
            for rec, changed in stream_run(cfg, run_dir, sess.stop, min_interval=ctx.options.min_yield_s,
                                           on_done=sess.end):
                shown = done + [rec]
                msg = (f"Run {len(done) + 1}/2: **{method}** · step {rec.step}/{rec.total_steps} · {rec.status}")
                last = method == "clipood" and "finish" in changed
                yield (figures.compare_curves(labelled(shown)),
                       render.runs_table(shown) if changed & {"init", "finish"} else gr.skip(), msg,
                       gr.update(choices=ctx.run_choices(request, runs_), value=[r.run_id for r in shown])
                       if changed & {"start", "finish"} else gr.skip(), runs_,
                       figures.teaching_bars(teaching_changes({r.method: r for r in shown})) if last else gr.skip())
            done.append(rec)
            if rec.status != "done":
                break

    def stop_pair(request: gr.Request):
        sess = ctx.sessions.get(request.session_hash)
        if sess.active:
            sess.stop.set()
            return "Stopping after the current step…"
        return "Nothing to stop."

    outs = [plot, table, status, runs, browser_runs, bars]
    runs.change(compare, [runs, all_splits, browser_runs], [plot, table], api_name="compare")
    all_splits.change(compare, [runs, all_splits, browser_runs], [plot, table], api_visibility="private")
    refresh_btn.click(refresh, [browser_runs], [runs, label_run], api_visibility="private")
    label_btn.click(set_label, [label_run, label_text, runs, all_splits, browser_runs], [runs, label_run, plot, table],
                    api_name="label_run")
    pair_event = pair_btn.click(teaching_pair, [train.seed, browser_runs], outs, api_name="teaching_pair",
                                concurrency_id="train", concurrency_limit=1, show_progress="minimal",
                                show_progress_on=[status])
    pair_stop.click(stop_pair, None, [status], queue=False, api_visibility="private", cancels=[pair_event])
    train.stop.click(None, None, None, cancels=[pair_event], api_visibility="private")
    return (runs, label_run), refresh
