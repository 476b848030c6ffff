"""Learn view: MMS and BMA with their formulas, linked to what the other views show."""

from __future__ import annotations

import gradio as gr

from .. import text

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def build(measured: str, beyond: str = "") -> None:
    """``measured``: what the story benchmark measured (``text.measured_story``, read once by the app); ``beyond``:
    where the split scan found the ordering holds (``text.measured_splits``)."""
    said = "\n\n".join(x for x in (measured, beyond) if x)
    gr.Markdown(text.LEARN + (f"\n\n### Measured\n{said}" if said else ""), latex_delimiters=LATEX,
                elem_id="learn-text")
