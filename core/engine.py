"""The training run: a generator of typed events (see ``core/events.py``).

Only the image tower trains; class text features are computed once from prompt templates; the temperature is the
model's own logit scale. Every method goes through this one loop; averages (BMA, EMA, WiSE-FT) are tracked on the
side. On CUDA: bf16 autocast, fp32 master weights, fused AdamW; on CPU: fp32 (``precision`` forces either). Data
order and augmentation are seeded per step, so a resumed run replays exactly what an uninterrupted one does.

The parts: :class:`~core.runstate.RunState` (what the run has done), :class:`~core.averages.Averages`,
``core/checkpoint.py`` (the file format), :class:`~core.evaluator.SplitEvaluator` and the trainer step
(:class:`~core.step.Trainer`). :class:`Run` holds them for one run; :func:`_loop` orchestrates.
"""

from __future__ import annotations

import copy
import errno
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from . import reasons
from .averages import Averages
from .checkpoint import load_checkpoint, save_checkpoint, save_result
from .config import RunConfig, resolve
from .data import make_splits, open_dataset
from .distributed import agreed_stop, init_distributed, mean_loss, wrap_for_step
from .evaluator import SplitEvaluator, text_features_cached, zeroshot_features
from .events import CheckpointEvent, EvalEvent, Event, FinishEvent, StartEvent, StepEvent
from .methods import METHODS
from .models import load_clip
from .reasons import RunFailed
from .runstate import RunState
from .runstore import RunStore
from .sampling import batch_indices, make_sampler  # noqa: F401 - batch_indices re-exported
from .step import NonFiniteLoss, Trainer, make_optimizer, result_key, result_weights, use_bf16
from .world.scenes import stable_seed

__all__ = ["RunFailed", "pick_device", "prepare", "run_to_end", "train"]


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RunFailed(reasons.NO_CUDA)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def prepare(cfg: RunConfig, device):
    """Model, data table, splits, pipeline and class text features of a resolved config."""
    bundle = load_clip(cfg.model, cfg.pretrained, device)
    table = open_dataset(cfg.dataset, seed=cfg.seed, sources=cfg.sources, **cfg.data_options)
    splits = make_splits(table, cfg.setting, cfg.sources, cfg.targets, cfg.base_classes)
    pipeline = bundle.pipeline()  # the model's own eval geometry (open_clip's preprocess cfg)
    text = text_features_cached(bundle, table.classes, table.templates, cfg.ensemble, device)
    return bundle, table, splits, pipeline, text


class Run:
    """One run's parts: where it writes, what it has done (``state``) and, once :meth:`build` ran, its model,
    data, averages, optimiser and evaluator. Rank 0 evaluates and writes; other ranks only train."""

    def __init__(self, cfg: RunConfig, store: RunStore | None, resume: bool):
        self.cfg, self.store, self.resume = cfg, store, resume
        self.dist = init_distributed(pick_device(cfg.device))
        self.device = self.dist.device
        self.writer = store if (store is not None and self.dist.main) else None
        self.state = RunState(cfg)

    # -- output ---------------------------------------------------------------------------------------------------
    def emit(self, ev: Event) -> Event:
        if self.writer is not None:
            self.writer.append_event(ev.to_dict(), durable=not isinstance(ev, StepEvent))
        if isinstance(ev, FinishEvent):
            self.state.finished = True
        return ev

    def write_summary(self, status: str, code: str, detail: dict | None = None, **results) -> dict:
        s = self.state.summary(status, code, detail, **results)
        if self.writer is not None:
            self.writer.write_summary(s)
        return s

    def finish(self, status: str, code: str, detail: dict | None = None, **results) -> FinishEvent:
        s = self.write_summary(status, code, detail, **results)
        return self.emit(FinishEvent(status, s["reason"], s, code, s["detail"]))

    # -- parts ----------------------------------------------------------------------------------------------------
    def build(self) -> None:
        """Load model and data, set up averages and optimiser, and restore the last checkpoint on resume."""
        cfg, main = self.cfg, self.dist.main
        torch.manual_seed(cfg.seed)
        self.bundle, self.table, self.splits, self.pipeline, self.text = prepare(cfg, self.device)
        self.visual = self.bundle.model.visual.float()
        for p in self.visual.parameters():
            p.requires_grad_(cfg.steps > 0)
        self.theta0 = {k: v.detach().clone() for k, v in self.visual.state_dict().items()}
        self.evaluator = SplitEvaluator(self.table, self.splits, self.pipeline, self.text, self.device,
                                        cfg.eval_subsample, cfg.seed, use_bf16(cfg, self.device)) if main else None
        self.scratch = copy.deepcopy(self.visual).eval() if main else None
        self.opt = make_optimizer(self.visual.parameters(), cfg.lr, cfg.weight_decay, self.device) \
            if cfg.steps > 0 else None
        self.averages = Averages.for_run(cfg.to_dict(), self.visual, self.theta0, cfg.steps) if main else Averages()
        if self.resume and self.store is not None and self.store.last_checkpoint.exists():
            start = load_checkpoint(self.store.last_checkpoint, self.visual, self.opt, self.averages)
            self.state.step, self.state.ckpt_step = start, (start or None)

    def trainer(self) -> Trainer:
        cfg, splits = self.cfg, self.splits
        return Trainer(wrap_for_step(self.visual, self.dist) if cfg.steps > 0 else self.visual, self.visual,
                       self.opt, self.averages, self.text[splits.train_classes].to(self.device), cfg.lam,
                       self.bundle.logit_scale, use_bf16(cfg, self.device), cfg.lr, cfg.steps,
                       int(round(cfg.warmup_frac * cfg.steps)), lambda loss: mean_loss(self.dist, loss))

    def batches(self):
        """``batch(step) -> (images, labels, images in the step over all ranks)``: this rank's share of the seeded
        batch, augmented with the step's own seed; labels index the training classes."""
        cfg, table, splits, dist = self.cfg, self.table, self.splits, self.dist
        sample = make_sampler(splits.train, table.domain_ids[splits.train], cfg.batch_size, cfg.seed, cfg.sampler)
        label_map = torch.full((len(table.classes),), -1, dtype=torch.long)
        label_map[splits.train_classes] = torch.arange(len(splits.train_classes))

        def batch(step: int):
            idx = sample(step)
            if dist.world > 1:
                idx = idx[dist.rank::dist.world]
            gen = torch.Generator().manual_seed(stable_seed("augment", cfg.seed, step))
            x = self.pipeline.train_batch(table.load(idx), gen, cfg.augment).to(self.device, non_blocking=True)
            y = label_map[torch.as_tensor(table.labels[idx])].to(self.device)
            return x, y, len(idx) * dist.world

        return batch

    # -- evaluation and checkpoints ------------------------------------------------------------------------------
    def evaluate(self, full: bool) -> dict[str, dict[str, float]]:
        """Accuracy of the current weights and of every average (extra ones only at the end unless asked)."""
        own = {METHODS[self.cfg.method].result, "bma"}
        acc = {"current": self.evaluator.accuracy(self.visual, full)}
        for name in self.averages:
            if full or self.cfg.track_eval != "final" or name in own:
                acc[name] = self.evaluator.accuracy(self.averages.module(name, self.visual, self.scratch), full)
        return acc

    def zeroshot_curve_point(self) -> EvalEvent:
        """Step 0 of the curves: the zero-shot weights on the subsample, as every model's first point. When the
        subsample is every image (``EVERY_IMAGE``) this is the full zero-shot evaluation itself,
        done once: the end of the run reuses it."""
        if self.evaluator.subsample_is_full():
            zs = dict(self.full_zeroshot())
            return EvalEvent(0, {"zeroshot": zs, **{n: dict(zs) for n in ["current", *self.averages]}}, False)
        self.scratch.load_state_dict(self.theta0)
        zs = self.evaluator.accuracy(self.scratch, False)
        self.state.zeroshot = zs  # until the full evaluation at the end
        return EvalEvent(0, {"zeroshot": zs, **{n: dict(zs) for n in ["current", *self.averages]}}, False)

    def full_zeroshot(self) -> dict[str, float]:
        """Zero-shot accuracy on the full splits (once, at the end, so the first curve point comes sooner)."""
        if not self.state.zeroshot_full:
            self.scratch.load_state_dict(self.theta0)
            feats = zeroshot_features(self.evaluator, self.scratch, self.table, self.bundle)
            self.state.zeroshot = self.evaluator.accuracy(None, True, feats)
            self.state.zeroshot_full = True
        return self.state.zeroshot

    def checkpoint(self, step: int) -> Iterator[Event]:
        if self.writer is None:
            return
        save_checkpoint(self.writer.last_checkpoint, step, self.visual, self.opt, self.averages)
        self.state.ckpt_step = step
        yield self.emit(CheckpointEvent(step, str(self.writer.last_checkpoint)))

    def start_event(self) -> StartEvent:
        return StartEvent(str(self.writer.dir) if self.writer else None, self.cfg.to_dict(), self.cfg.steps,
                          self.state.step, self.splits.describe(), self.table.classes, str(self.device),
                          self.bundle.logit_scale)

    def stop_reason(self, stop: threading.Event, step: int) -> tuple[str, dict] | None:
        """(code, detail) when the user or the time limit stops the run before ``step`` (agreed by all ranks)."""
        cfg = self.cfg
        deadline = (self.state.t_start + cfg.max_seconds) if cfg.max_seconds else None
        user, late = agreed_stop(self.dist, stop.is_set(), deadline is not None and time.time() > deadline)
        if user:
            return reasons.STOPPED, {"step": step, "total": cfg.steps}
        if late:
            return reasons.TIME_LIMIT, {"step": step, "total": cfg.steps, "max_seconds": cfg.max_seconds}
        return None


class _Pace:
    """Images per second and time left, for the step events."""

    def __init__(self, start: int, total: int, t_start: float):
        self.start, self.total, self.t_start = start, total, t_start
        self.t_loop, self.images = time.time(), 0

    def event(self, step: int, images: int, loss: float | None, lr: float, bma_weight: float | None) -> StepEvent:
        self.images += images
        elapsed = time.time() - self.t_loop
        eta = elapsed / (step - self.start) * (self.total - step)
        return StepEvent(step, self.total, loss, lr, bma_weight, round(self.images / max(elapsed, 1e-9), 2),
                         round(time.time() - self.t_start, 3), round(eta, 3))


def _due(every: int, step: int, total: int) -> bool:
    return bool(every) and step % every == 0 and step != total


def _loop(run: Run, stop: threading.Event) -> Iterator[Event]:
    """Train from the run's current step to the end, evaluating and checkpointing on schedule; then finish."""
    cfg, state, main, total = run.cfg, run.state, run.dist.main, run.cfg.steps
    run.build()
    yield run.emit(run.start_event())
    if main and state.step == 0 and total > 0 and cfg.eval_every:
        yield run.emit(run.zeroshot_curve_point())
    trainer, batch, pace = run.trainer(), run.batches(), _Pace(state.step, total, state.t_start)
    for step in range(state.step, total):
        why = run.stop_reason(stop, step)
        if why is not None:
            if main and state.ckpt_step != step and total > 0:
                yield from run.checkpoint(step)
            yield run.finish("cancelled", *why)
            return
        x, y, images = batch(step)
        out = trainer.step(step, x, y)
        state.step = step + 1
        if main:
            yield run.emit(pace.event(step + 1, images, out.loss, out.lr, out.bma_weight))
        if main and _due(cfg.eval_every, step + 1, total):
            state.last_eval = run.evaluate(False)
            yield run.emit(EvalEvent(step + 1, state.last_eval, False))
        if main and _due(cfg.checkpoint_every, step + 1, total):
            yield from run.checkpoint(step + 1)
    if not main:
        yield FinishEvent("done", reasons.word(reasons.RANK_DONE, {"rank": run.dist.rank}), {}, reasons.RANK_DONE,
                          {"rank": run.dist.rank})
        return
    yield from _final(run)


def _final(run: Run) -> Iterator[Event]:
    """Full evaluation of zero-shot, last weights and every average; the result weights; the finish event."""
    cfg, state, total = run.cfg, run.state, run.cfg.steps
    zs = run.full_zeroshot()
    yield run.emit(EvalEvent(0, {"zeroshot": zs}, True))
    acc = {"current": zs}
    if total > 0:
        acc = run.evaluate(True)
        yield run.emit(EvalEvent(total, acc, True))
    key = result_key(METHODS[cfg.method].result)
    result = state.zeroshot if key is None else acc[key]
    state.tracked = {k: v for k, v in acc.items() if k != "current"}
    if run.writer is not None and total > 0:
        yield from run.checkpoint(total)
        weights = result_weights(METHODS[cfg.method].result, run.theta0, run.visual.state_dict(), run.averages)
        save_result(run.writer.result_checkpoint, weights, cfg.method)
        yield run.emit(CheckpointEvent(total, str(run.writer.result_checkpoint)))
    yield run.finish("done", reasons.FINISHED, final=acc["current"], result=result)


def failure_reason(e: BaseException, cfg: RunConfig, ckpt_step: int | None) -> tuple[str, dict]:
    """(code, detail) of an exception that ended a run."""
    if isinstance(e, RunFailed):
        return e.code, e.detail
    if isinstance(e, NonFiniteLoss):
        return reasons.NAN_LOSS, {"loss": str(e.loss), "step": e.step, "lr_value": cfg.lr, "checkpoint_step": ckpt_step}
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return reasons.OUT_OF_MEMORY, {"batch_size": cfg.batch_size, "suggested": max(1, cfg.batch_size // 2)}
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return reasons.DISK_FULL, {"path": getattr(e, "filename", None) or "the run folder",
                                   "checkpoint_step": ckpt_step}
    if isinstance(e, ValueError):
        return reasons.INVALID, {"message": str(e)}
    return reasons.ERROR, {"message": f"{type(e).__name__}: {e}"}


def _failed(run: Run, e: Exception, tb_text: str) -> FinishEvent:
    """A failed run keeps its files: error.txt, a summary and a finish event, each as far as the disk allows."""
    code, detail = failure_reason(e, run.cfg, run.state.ckpt_step)
    if isinstance(e, torch.cuda.OutOfMemoryError):
        e.__traceback__ = None  # (frames hold the batch's tensors)
        gc.collect()
        torch.cuda.empty_cache()
    try:  # the run folder may be unwritable (disk full): the failure is still reported
        if run.writer is not None:
            (run.writer.dir / "error.txt").write_text(tb_text)
        s = run.write_summary("failed", code, detail)
    except OSError:
        s = run.state.summary("failed", code, detail)
    ev = FinishEvent("failed", s["reason"], s, code, s["detail"])
    try:
        run.emit(ev)
    except OSError:
        run.state.finished = True
    return ev


def train(config: RunConfig, run_dir: Path | str | None = None, stop: threading.Event | None = None,
          resume: bool = False) -> Iterator:
    """Run one config, yielding events; the run folder (if given) receives everything needed to reproduce it.

    ``resume=True`` continues the run in ``run_dir`` from its last complete checkpoint (its config.json wins).
    """
    import traceback

    store = RunStore(Path(run_dir)) if run_dir is not None else None
    if resume:
        if store is None or not store.config_path.exists():
            raise RunFailed(reasons.NOT_A_RUN, {"path": str(run_dir)})
        config = RunConfig.from_saved(store.read_config())
    run = Run(resolve(config), store, resume)
    if run.writer is not None and not resume:
        run.writer.dir.mkdir(parents=True, exist_ok=True)
        run.writer.write_config(run.cfg.to_dict())
    try:
        yield from _loop(run, stop or threading.Event())
    except GeneratorExit:
        if run.writer is not None and not run.state.finished:
            run.write_summary("cancelled", reasons.CLOSED)
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes a failed run that keeps its files
        yield _failed(run, e, traceback.format_exc())


def run_to_end(config: RunConfig, run_dir=None, stop=None, resume=False) -> dict:
    """Consume a run and return its summary (convenience for scripts and tests)."""
    last = None
    for ev in train(config, run_dir, stop, resume):
        last = ev
    return last.summary if isinstance(last, FinishEvent) else {}
