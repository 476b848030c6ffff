"""What a run has done so far, in one place: the summary (``summary.json`` and the finish event) is written from it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .config import RunConfig
from .reasons import word


@dataclass
class RunState:
    config: RunConfig
    t_start: float = field(default_factory=time.time)
    step: int = 0  # optimiser steps done
    ckpt_step: int | None = None  # step of the last complete checkpoint
    last_eval: dict = field(default_factory=dict)  # model name -> split -> accuracy, latest evaluation
    zeroshot: dict = field(default_factory=dict)  # split -> accuracy (the subsample until the full evaluation)
    zeroshot_full: bool = False
    tracked: dict = field(default_factory=dict)  # average name -> split -> accuracy, final evaluation
    finished: bool = False  # a finish event went out: closing the stream must not rewrite the summary

    def summary(self, status: str, code: str, detail: dict | None = None, final: dict | None = None,
                result: dict | None = None) -> dict:
        """The run's summary: the same keys whether it finished, stopped or failed."""
        detail = dict(detail or {})
        return {"status": status, "reason": word(code, detail), "config": self.config.to_dict(),
                "zeroshot": self.zeroshot,
                "final": final if final is not None else self.last_eval.get("current", {}),
                "result": result if result is not None else {}, "tracked": self.tracked,
                "zeroshot_full_eval": self.zeroshot_full, "steps_done": self.step,
                "total_steps": self.config.steps, "wall_s": round(time.time() - self.t_start, 3),
                "last_checkpoint_step": self.ckpt_step, "code": code, "detail": detail}
