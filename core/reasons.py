"""Why a run ended, as a code plus details; each front end words the action for itself.

Core never names a front end's controls (a CLI flag, a button): a message template here has slots such as
``{resume}`` or ``{lr}`` that the caller fills from its own vocabulary (``NEUTRAL`` here, ``CLI_WORDS`` in
``core/cli.py``, the Studio's in ``app/render.py``). The summary and the finish event keep the code, the details and
the neutral wording, so an old reader that shows ``reason`` still reads a sentence.
"""

from __future__ import annotations

FINISHED = "finished"
STOPPED = "stopped"  # step, total
TIME_LIMIT = "time_limit"  # step, total, max_seconds
CLOSED = "closed"  # the consumer closed the event stream
RANK_DONE = "rank_done"  # rank
NAN_LOSS = "nan_loss"  # loss (as text: JSON has no NaN), step, lr_value, checkpoint_step
OUT_OF_MEMORY = "out_of_memory"  # batch_size, suggested
DISK_FULL = "disk_full"  # path, checkpoint_step
BAD_CHECKPOINT = "bad_checkpoint"  # path, error
NOT_A_RUN = "not_a_run"  # path
NO_CUDA = "no_cuda"
INVALID = "invalid"  # message (a bad value found while running)
ERROR = "error"  # message (anything else)

_TEMPLATES = {
    FINISHED: "finished",
    STOPPED: "stopped by the user at step {step}/{total}; {resume}",
    TIME_LIMIT: "time limit of {max_seconds:g} s reached at step {step}/{total}; {resume}",
    CLOSED: "the consumer closed the event stream",
    RANK_DONE: "rank {rank} finished (rank 0 writes the run)",
    NAN_LOSS: "loss became {loss} at step {step}: lower {lr} (now {lr_value:g}); the last good checkpoint "
              "(step {checkpoint_step}) is kept",
    OUT_OF_MEMORY: "CUDA out of memory at batch size {batch_size}: try {batch_size_word} {suggested}",
    DISK_FULL: "disk full while writing {path}: free some space and resume; the last complete checkpoint "
               "(step {checkpoint_step}) is intact",
    BAD_CHECKPOINT: "cannot resume: {path} is not a readable safetensors checkpoint ({error}); the run folder is left "
                    "as it was",
    NOT_A_RUN: "{resume_option}{path} is not a run folder (no config.json)",
    NO_CUDA: "{device} cuda was asked for but no CUDA device is available; use {device} auto or cpu",
}

NEUTRAL = {"resume": "it can be resumed from its last checkpoint", "lr": "the learning rate",
           "batch_size_word": "a batch size of", "resume_option": "", "device": "device"}


def word(code: str, detail: dict, words: dict | None = None, fallback: str = "") -> str:
    """The sentence for ``code`` with ``detail``, the actions named in ``words`` (a front end's vocabulary).

    An unknown code (a run saved before codes existed) or a message-only one gives ``detail["message"]`` or
    ``fallback``.
    """
    template = _TEMPLATES.get(code)
    if template is None:
        return str(detail.get("message") or fallback)
    return template.format(**{**NEUTRAL, **(words or {}), **detail})


class RunFailed(RuntimeError):
    """A run stopped for a reason the user can act on: ``code`` and ``detail`` say which, ``str()`` in neutral
    words."""

    def __init__(self, code: str, detail: dict | None = None):
        self.code, self.detail = code, dict(detail or {})
        super().__init__(word(code, self.detail))
