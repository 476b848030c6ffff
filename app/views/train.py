"""Train view: hyper-parameters, Start / Stop / Resume, and the live run: progress, accuracy curves, loss, the Beta
schedule with the current step, what-if-beta after the run, the results table; saved runs can be reopened."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import gradio as gr

from core.config import RunConfig
from core.explore import average_shares, beta_schedule
from core.methods import METHODS

from .. import export, figures, render, text
from ..context import USER_ERRORS, AppContext, user_error
from ..records import RunRecord
from ..runner import stream_run
from .data import DataView, overview

MAX_BROWSER_RUNS = 50


@lru_cache(maxsize=16)
def _schedule(total: int, beta: float) -> dict:
    return beta_schedule(total, beta)


def beta_figure(rec: RunRecord | None):
    if rec is None or not rec.config or not rec.total_steps:
        return figures.empty_figure("The Beta schedule of the run appears here.", "Beta moving average schedule",
                                    "beta")
    beta, total = float(rec.config["beta"]), int(rec.total_steps)
    return figures.beta_schedule(_schedule(total, beta), average_shares(total, beta, rec.step), rec.step, beta)


def render_run(rec: RunRecord | None, changed: set[str] | None = None, note: str = "") -> tuple:
    """(status, progress, accuracy, loss, beta, what-if, results); unchanged parts are skipped while streaming."""
    every = changed is None or "init" in changed

    def when(*kinds):
        return every or bool(changed & set(kinds))

    if rec is None:
        return (render.status_markdown(None, note), render.progress_html(None),
                figures.accuracy_curves(RunRecord()), figures.loss_curve(RunRecord()), beta_figure(None),
                figures.whatif(RunRecord()), render.results_table(None))
    return (render.status_markdown(rec, note), render.progress_html(rec),
            figures.accuracy_curves(rec) if when("start", "eval", "finish") else gr.skip(),
            figures.loss_curve(rec) if when("step", "finish") else gr.skip(),
            beta_figure(rec) if when("start", "step", "finish") else gr.skip(),
            figures.whatif(rec) if when("finish") else gr.skip(),
            render.results_table(rec) if when("finish") else gr.skip())


@dataclass
class TrainView:
    model: gr.Dropdown
    method: gr.Dropdown
    lam: gr.Slider
    beta: gr.Slider
    lr: gr.Number
    steps: gr.Number
    batch: gr.Number
    seed: gr.Number
    whatif: gr.Checkbox
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    run_picker: gr.Dropdown
    outputs: list  # render_run outputs + current run + browser runs + run picker
    start_event: object = None
    resume_event: object = None
    show_run: object = None  # (run_id, browser runs, request) -> outputs: a saved run as it stands on disk


def build(ctx: AppContext, data: DataView, current_run: gr.State, browser_runs: gr.BrowserState) -> TrainView:
    d, caps = ctx.defaults, ctx.caps
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            gr.Markdown(text.TRAIN_INTRO)
            model = gr.Dropdown(ctx.model_choices(), value=d.model, label="Model", elem_id="train-model")
            method = gr.Dropdown([(f"{m.name} — {m.description}", m.name) for m in METHODS.values()],
                                 value=d.method, label="Method", elem_id="train-method")
            lam = gr.Slider(0, 2, value=d.lam, step=0.05, label="λ (margin)", info=text.LAM_HELP)
            beta = gr.Slider(0.05, 5, value=d.beta, step=0.05, label="β (BMA)", info=text.BETA_HELP)
            lr = gr.Number(value=d.lr, label="Learning rate")
            with gr.Row():
                # (no minimum/maximum here: the form check names the field and the server's cap)
                steps = gr.Number(value=min(d.steps, caps.max_steps), precision=0,
                                  label=f"Steps (≤ {caps.max_steps})", elem_id="train-steps")
                batch = gr.Number(value=d.batch_size, precision=0, label=f"Batch (≤ {caps.max_batch})")
                seed = gr.Number(value=d.seed, precision=0, label="Seed")
            whatif = gr.Checkbox(value=d.whatif, label="Track what-if averages (β, α, EMA)", info=text.WHATIF_HELP,
                                 elem_id="train-whatif-box")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="train-start")
                stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
                resume = gr.Button("Resume", elem_id="train-resume")
            with gr.Accordion("Saved runs", open=False):
                run_picker = gr.Dropdown([], label="Reopen a saved run", elem_id="train-run-picker",
                                         allow_custom_value=True)  # ids are checked by the run index
                open_btn = gr.Button("Open", size="sm")
            with gr.Accordion("Export the shown run", open=False):
                export_btn = gr.Button("Export: run folder (zip), metrics (CSV), figures (HTML)", size="sm",
                                       elem_id="train-export")
                export_files = gr.File(label="Files", file_count="multiple", interactive=False,
                                       elem_id="train-export-files")
        with gr.Column(scale=3):
            status = gr.Markdown(render.status_markdown(None), elem_id="train-status")
            progress = gr.HTML(render.progress_html(None), elem_id="train-progress")
            acc_plot = gr.Plot(figures.accuracy_curves(RunRecord()), label="Accuracy", elem_id="train-acc")
            with gr.Row():
                loss_plot = gr.Plot(figures.loss_curve(RunRecord()), label="Loss", elem_id="train-loss")
                beta_plot = gr.Plot(beta_figure(None), label="Beta schedule", elem_id="train-beta")
            whatif_plot = gr.Plot(figures.whatif(RunRecord()), label="What-if", elem_id="train-whatif")
            results = gr.Dataframe(render.results_table(None), label="Results: zero-shot vs final vs result",
                                   interactive=False, wrap=True, elem_id="train-results")
    outputs = [status, progress, acc_plot, loss_plot, beta_plot, whatif_plot, results, current_run, browser_runs,
               run_picker]
    view = TrainView(model, method, lam, beta, lr, steps, batch, seed, whatif, start, stop, resume, run_picker,
                     outputs)

    def stream(sess, cfg, run_dir, run_id, runs, request, resume=False, prior=None):
        sess.begin(run_id)
        runs = ctx.remember(runs, run_id, MAX_BROWSER_RUNS)
        for rec, changed in stream_run(cfg, run_dir, sess.stop, resume, ctx.options.min_yield_s, prior,
                                       on_done=sess.end):
            edge = bool(changed & {"start", "finish"})  # (the run folder exists from "start" on)
            picker = gr.update(choices=ctx.run_choices(request, runs), value=run_id) if edge else gr.skip()
            yield (*render_run(rec, changed), run_id, runs if "init" in changed else gr.skip(), picker)

    def start_run(dataset, data_path, data_upload, setting, sources, targets, base_classes, colour_bias, shots,
                  eval_per, model, method, lam, beta, lr, steps, batch_size, seed, whatif, browser_runs,
                  request: gr.Request):
        """Validate the form, create the run folder and stream the run."""
        sess = ctx.sessions.get(request.session_hash)
        if not sess.idle.is_set():
            raise gr.Error("A run of this tab is still going (or stopping): stop it or wait for it to finish.")
        try:
            data_ = ctx.data_choice(dataset, data_path, data_upload, setting, sources, targets, base_classes,
                                    colour_bias, shots, eval_per)
            cfg = ctx.build_config(data_, model=model, method=method, steps=steps, batch_size=batch_size, lr=lr,
                                   lam=lam, beta=beta, seed=seed, whatif=bool(whatif))
            overview(ctx, data_, cfg.seed)  # the splits can be made (no empty split, a base and a new class...)
            run_id, run_dir = ctx.runs.new(cfg.method, cfg.dataset)  # (may evict old runs under a disk quota)
        except USER_ERRORS as e:
            raise user_error(e) from None
        yield from stream(sess, cfg, run_dir, run_id, browser_runs, request)

    def picked_run(run_id, runs, request: gr.Request, none_picked: str):
        """The picked run's record and folder (resume and export), or a one-line error: none picked, or not one of
        this visitor's runs."""
        if not run_id:
            raise gr.Error(none_picked)
        try:
            return ctx.record_and_dir(run_id, request, runs)
        except USER_ERRORS as e:
            raise user_error(e) from None

    def resume_run(run_id, runs, request: gr.Request):
        """Continue a stopped run from its last checkpoint (its saved config decides everything)."""
        sess = ctx.sessions.get(request.session_hash)
        if not sess.idle.is_set():
            raise gr.Error("A run of this tab is still going: stop it first.")
        rec, run_dir = picked_run(run_id, runs, request, "Open a stopped run first (Saved runs → Open), then Resume.")
        if rec.status not in ("cancelled", "interrupted"):
            raise gr.Error(f"Run {run_id} is {rec.status}; only a stopped or interrupted run can be resumed.")
        cfg = RunConfig.from_dict(rec.config)
        yield from stream(sess, cfg, run_dir, run_id, runs, request, resume=True, prior=rec)

    def stop_run(request: gr.Request):
        """Ask the session's run to stop (takes effect within one step; a checkpoint is kept)."""
        sess = ctx.sessions.get(request.session_hash)
        if sess.active is None:
            return "Nothing to stop."
        sess.stop.set()
        return f"Stopping run `{sess.active}` after the current step…"

    def show_run(run_id, runs, request: gr.Request):
        """A saved run as it stands on disk (waits briefly for a stopping run to write its checkpoint)."""
        ctx.sessions.get(request.session_hash).idle.wait(timeout=30)
        if not run_id:
            return (*render_run(None), None, gr.skip(), gr.update(choices=ctx.run_choices(request, runs)))
        try:
            rec = ctx.record(run_id, request, runs)
        except USER_ERRORS as e:
            raise user_error(e) from None
        return (*render_run(rec), run_id, gr.skip(), gr.update(choices=ctx.run_choices(request, runs), value=run_id))

    def export_run(run_id, runs, request: gr.Request):
        """The shown run as a zip of its folder, its metrics as CSV and its figures as one interactive HTML page."""
        rec, run_dir = picked_run(run_id, runs, request,
                                  "Export: start a run or open a saved one first (Saved runs → Open).")
        out = Path(tempfile.mkdtemp(prefix="clipood-export-"))
        figs = {"Accuracy": figures.accuracy_curves(rec), "Loss": figures.loss_curve(rec),
                "Beta schedule": beta_figure(rec), "What-if": figures.whatif(rec)}
        return [str(export.run_zip(run_dir, out / f"{run_id}.zip")),
                str(export.metrics_csv(rec, out / f"{run_id}-metrics.csv")),
                str(export.figures_html(figs, out / f"{run_id}-figures.html", f"CLIPood Studio · run {run_id}"))]

    def defaults_changed(model_, dataset_, setting_):
        """A new model or setting brings core's lr, λ, steps, batch and β for it (the toy world's are per setting, as
        a paper recipe's are). The form's batch is images per step (it trains pooled): a per-domain recipe's batch
        counts each source domain's share, so it leaves the box as it is."""
        hp = ctx.hparams_for(model_, dataset_, setting_)
        batch = gr.update(value=min(hp["batch_size"], caps.max_batch)) if hp["sampler"] == "pooled" else gr.skip()
        steps_ = gr.update(value=min(hp["steps"], caps.max_steps))
        return gr.update(value=hp["lr"]), gr.update(value=hp["lam"]), steps_, batch, gr.update(value=hp["beta"])

    def method_changed(method_):
        m = METHODS[method_]
        return gr.update(interactive=m.margin, info=text.LAM_HELP if m.margin else "this method trains with λ = 0")

    train_inputs = data.inputs + [model, method, lam, beta, lr, steps, batch, seed, whatif, browser_runs]
    view.start_event = start.click(start_run, train_inputs, outputs, api_name="train", concurrency_id="train",
                                   concurrency_limit=1, show_progress="minimal", show_progress_on=[status])
    view.resume_event = resume.click(resume_run, [current_run, browser_runs], outputs, api_name="resume",
                                     concurrency_id="train", concurrency_limit=1, show_progress="minimal",
                                     show_progress_on=[status])
    stop.click(stop_run, None, [status], api_name="stop", queue=False,
               cancels=[view.start_event, view.resume_event]
               ).then(show_run, [current_run, browser_runs], outputs, api_visibility="private")
    export_btn.click(export_run, [current_run, browser_runs], [export_files], api_name="export_run")
    open_btn.click(show_run, [run_picker, browser_runs], outputs, api_name="open_run")
    run_picker.input(show_run, [run_picker, browser_runs], outputs, api_visibility="private")
    for trigger in (model, data.setting):
        trigger.input(defaults_changed, [model, data.dataset, data.setting], [lr, lam, steps, batch, beta],
                      api_visibility="private")
    method.change(method_changed, [method], [lam], api_visibility="private")
    view.show_run = show_run
    return view
