"""Finish reasons as codes plus details (core/reasons.py): core's own wording names no front end's controls; the
command line and the Studio each word the action for themselves."""

import pytest

from core import reasons
from core.cli import finish_text

DETAILS = {
    reasons.STOPPED: {"step": 3, "total": 8},
    reasons.TIME_LIMIT: {"step": 3, "total": 8, "max_seconds": 7.5},
    reasons.NAN_LOSS: {"loss": "nan", "step": 4, "lr_value": 0.001, "checkpoint_step": 2},
    reasons.OUT_OF_MEMORY: {"batch_size": 8, "suggested": 4},
    reasons.DISK_FULL: {"path": "runs/r/checkpoints/last.safetensors", "checkpoint_step": 2},
    reasons.BAD_CHECKPOINT: {"path": "runs/r/checkpoints/last.safetensors", "error": "SafetensorError: x"},
    reasons.NOT_A_RUN: {"path": "runs/nope"},
    reasons.NO_CUDA: {},
    reasons.FINISHED: {},
}


@pytest.mark.parametrize("code", list(DETAILS))
def test_core_words_name_no_flag(code):
    text = reasons.word(code, DETAILS[code])
    assert text and "--" not in text and "\n" not in text


def test_each_front_end_words_the_action():
    cli = {c: finish_text(c, d) for c, d in DETAILS.items()}
    assert cli[reasons.STOPPED] == "stopped by the user at step 3/8; resume with --resume"
    assert "lower --lr (now 0.001)" in cli[reasons.NAN_LOSS] and "step 2" in cli[reasons.NAN_LOSS]
    assert cli[reasons.OUT_OF_MEMORY] == "CUDA out of memory at batch size 8: try --batch-size 4"
    assert cli[reasons.NOT_A_RUN] == "--resume: runs/nope is not a run folder (no config.json)"
    assert "use --device auto or cpu" in cli[reasons.NO_CUDA]
    assert "7.5 s" in cli[reasons.TIME_LIMIT]
    pytest.importorskip("gradio")
    from app.render import APP_WORDS

    app = reasons.word(reasons.STOPPED, DETAILS[reasons.STOPPED], APP_WORDS)
    assert app == "stopped by the user at step 3/8; press Resume to continue from the checkpoint"


def test_message_codes_and_old_runs_fall_back():
    assert reasons.word(reasons.INVALID, {"message": "bad value"}) == "bad value"
    assert reasons.word("", {}, fallback="stopped; resume with --resume") == "stopped; resume with --resume"
    e = reasons.RunFailed(reasons.OUT_OF_MEMORY, DETAILS[reasons.OUT_OF_MEMORY])
    assert str(e) == "CUDA out of memory at batch size 8: try a batch size of 4" and e.code == "out_of_memory"
