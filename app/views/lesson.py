"""Lesson view: a numbered path through the other views for a teacher in front of a class. Each step opens its
view and sets the form (presets from ``text.LESSON_STEPS``); *Shortcut on/off* and *Reset* set the form only. The
buttons are built first (the tab comes first) and wired once every other view exists."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .. import text
from ..context import AppContext
from .data import DataView
from .train import TrainView


@dataclass
class LessonView:
    steps: list[gr.Button]
    shortcut_on: gr.Button
    shortcut_off: gr.Button
    reset: gr.Button


def build() -> LessonView:
    gr.Markdown(text.LESSON_INTRO)
    steps = []
    for k, (title, body, _, _) in enumerate(text.LESSON_STEPS, 1):
        with gr.Row(equal_height=True):
            steps.append(gr.Button(f"Go: step {k}", size="sm", scale=0, min_width=110, elem_id=f"lesson-go-{k}"))
            gr.Markdown(f"**{k}. {title}.** {body}")
    with gr.Row():
        on = gr.Button("Shortcut on", size="sm", elem_id="lesson-shortcut-on")
        off = gr.Button("Shortcut off", size="sm", elem_id="lesson-shortcut-off")
        reset = gr.Button("Reset the form to the default", size="sm", variant="stop", elem_id="lesson-reset")
    return LessonView(steps, on, off, reset)


def form_fields(data: DataView, train: TrainView) -> dict[str, gr.components.Component]:
    """The form fields a preset or Reset may set, by the names of ``app.options.Defaults``."""
    return {"dataset": data.dataset, "setting": data.setting, "colour_bias": data.colour_bias, "shots": data.shots,
            "eval_per": data.eval_per, "model": train.model, "method": train.method, "lam": train.lam,
            "lr": train.lr, "beta": train.beta, "steps": train.steps, "batch_size": train.batch, "seed": train.seed,
            "whatif": train.whatif}


def preset_values(ctx: AppContext, presets: dict) -> dict:
    """Field -> value of a step's presets (``"default"`` reads the form's default)."""
    return {k: getattr(ctx.defaults, k) if v == "default" else v for k, v in presets.items()}


def wire(ctx: AppContext, view: LessonView, tabs: gr.Tabs, data: DataView, train: TrainView) -> None:
    fields = form_fields(data, train)
    names = list(fields)
    outs = [tabs, *fields.values()]

    def apply(tab: str | None, values: dict):
        return (gr.Tabs(selected=tab) if tab else gr.skip(),
                *(values[n] if n in values else gr.skip() for n in names))

    for button, (_, _, tab, presets) in zip(view.steps, text.LESSON_STEPS):
        button.click(lambda tab=tab, presets=presets: apply(tab, preset_values(ctx, presets)), None, outs,
                     api_visibility="private")
    view.shortcut_on.click(lambda: apply("data", preset_values(ctx, {"colour_bias": "default"})), None, outs,
                           api_visibility="private")
    view.shortcut_off.click(lambda: apply("data", {"colour_bias": 0.0}), None, outs, api_visibility="private")
    view.reset.click(lambda: apply(None, {n: getattr(ctx.defaults, n) for n in names}), None, outs,
                     api_visibility="private")
