"""Learn view: MMS and BMA with their formulas, linked to what the other views show."""

from __future__ import annotations

import gradio as gr

from .. import text

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def build() -> None:
    gr.Markdown(text.LEARN, latex_delimiters=LATEX, elem_id="learn-text")
