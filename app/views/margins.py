"""Margins view: the class-adaptive MMS margin matrix ``lam * (1 - cos(t_i, t_j))`` beside the text similarity.
Needs only the text tower, so it works before any training; moving λ redraws without touching the model."""

from __future__ import annotations

import gradio as gr
import numpy as np

from core.explore import base_model, text_similarity, unseen_class_words, view_classes
from core.playground import parse_class_names

from .. import figures, text
from ..context import USER_ERRORS, AppContext, user_error
from .data import DataView, overview
from .train import TrainView


def build(ctx: AppContext, data: DataView, train: TrainView) -> None:
    d = ctx.defaults
    gr.Markdown(text.MARGINS_INTRO)
    with gr.Row():
        classes = gr.Textbox(label="Classes (comma-separated; empty = the dataset's classes)", scale=3,
                             elem_id="margins-classes")
        lam = gr.Slider(0, 2, value=d.lam, step=0.05, label="λ", scale=2, elem_id="margins-lam")
        go_btn = gr.Button("Show margins", variant="primary", scale=1, elem_id="margins-go")
    plot = gr.Plot(label="Margins and text similarity", elem_id="margins-plot")
    sim_state = gr.State(None)  # this session's {"classes": [...], "sim": [[...]]}

    def compute(model, classes_text, lam_value, *data_values):
        """Class text features of the chosen model -> similarity (kept per session) -> margin heatmaps."""
        try:
            table = overview(ctx, ctx.data_choice(*data_values)).table
            note = ""
            if (classes_text or "").strip():
                names = parse_class_names(classes_text)
            else:  # a 2,000-class dataset: a sample, not a 2,000 x 2,000 figure
                keep, note = view_classes(table.classes)
                names = [table.classes[i] for i in keep]
            sim = text_similarity(base_model(model), names, table.templates)
            warn = text.unseen_warning(model, unseen_class_words(model, names))
            note = "; ".join(x for x in (note, warn) if x)
        except USER_ERRORS as e:
            raise user_error(e) from None
        state = {"classes": names, "sim": sim.tolist(), "note": note}
        return figures.margins(sim, names, lam_value, note=note), state

    def redraw(state, lam_value):
        if not state:
            return gr.skip()
        return figures.margins(np.asarray(state["sim"]), state["classes"], lam_value, note=state.get("note", ""))

    def arrive(state, model, classes_text, lam_value, *data_values):
        """On opening the tab: the dataset's classes at once (no empty panel); a problem is said in the panel."""
        if state:
            return gr.skip(), gr.skip()
        try:
            return compute(model, classes_text, lam_value, *data_values)
        except gr.Error as e:
            return figures.empty_figure(f"⚠️ {e.message}", "Margins"), None

    go_btn.click(compute, [train.model, classes, lam, *data.inputs], [plot, sim_state], api_name="margins",
                 concurrency_id="inspect", concurrency_limit=2)
    lam.input(redraw, [sim_state, lam], [plot], trigger_mode="always_last", api_visibility="private")
    return arrive, [sim_state, train.model, classes, lam, *data.inputs], [plot, sim_state]
