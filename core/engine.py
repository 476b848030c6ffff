"""The training run: a generator of typed events (see ``core/events.py``).

Only the image tower trains; class text features are computed once from prompt templates; the temperature is the
model's own logit scale. Every method goes through this one loop; averages (BMA, EMA, WiSE-FT) are tracked on the
side. On CUDA: bf16 autocast, fp32 master weights, fused AdamW; on CPU: fp32 (``precision`` forces either). Data
order and augmentation are seeded per step, so a resumed run replays exactly what an uninterrupted one does.
"""

from __future__ import annotations

import copy
import errno
import gc
import math
import os
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .clipood import BetaMovingAverage, ExponentialMovingAverage, interpolate_weights
from .config import RunConfig, resolve
from .data import make_splits, open_dataset
from .data.cache import eval_images
from .data.pipeline import ImagePipeline
from .data.splits import Splits, harmonic_mean
from .events import CheckpointEvent, EvalEvent, FinishEvent, StartEvent, StepEvent
from .features import class_text_features
from .io import load_safetensors, save_safetensors
from .methods import METHODS
from .models import load_clip
from .runstore import RunStore
from .sampling import batch_indices, make_sampler  # noqa: F401 - batch_indices re-exported
from .schedule import cosine_lr
from .step import make_optimizer, optimiser_step, result_key, result_weights, step_loss, use_bf16
from .world.scenes import stable_seed

_TEXT_CACHE: dict[tuple, torch.Tensor] = {}


class RunFailed(RuntimeError):
    """A run stopped for a reason the user can act on (message says what)."""


def pick_device(name: str = "auto") -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RunFailed("--device cuda was asked for but no CUDA device is available; use --device auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def text_features_cached(bundle, classes: list[str], templates, ensemble: bool, device) -> torch.Tensor:
    key = (bundle.model_id, bundle.pretrained, tuple(classes), tuple(templates), ensemble, str(device))
    if key not in _TEXT_CACHE:
        _TEXT_CACHE[key] = class_text_features(bundle.model, bundle.tokenizer, [c.replace("_", " ") for c in classes],
                                               templates, device, ensemble)
    return _TEXT_CACHE[key]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # this rank's device (cuda:LOCAL_RANK under torchrun)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    """torchrun: each rank on its own GPU (LOCAL_RANK -> set_device, NCCL), gloo on CPU; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(device=device)
    import torch.distributed as dist

    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), device)


def agreed_stop(dist_info: _Dist, user_stop: bool, past_deadline: bool) -> tuple[bool, bool]:
    """(user stop, deadline) as every rank sees them: one rank's stop or deadline stops all ranks at the same step,
    so none is left blocking in an all-reduce the others have left."""
    if dist_info.world <= 1:
        return user_stop, past_deadline
    import torch.distributed as dist

    flags = torch.tensor([float(user_stop), float(past_deadline)], device=dist_info.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0].item()), bool(flags[1].item())


class _Evaluator:
    """Fixed eval images (uint8 at model size, in memory) and per-split candidate classifiers."""

    def __init__(self, table, splits: Splits, pipeline: ImagePipeline, text: torch.Tensor, device, subsample: int,
                 seed: int, amp: bool | None = None):
        self.pipeline, self.device, self.text = pipeline, device, text
        self.amp = (torch.device(device).type == "cuda") if amp is None else amp
        self.splits = splits
        all_idx = np.unique(np.concatenate([s.indices for s in splits.evals.values()]))
        self.pos = {int(i): k for k, i in enumerate(all_idx)}
        self.images = eval_images(table, all_idx, pipeline)  # uint8 at model size; disk-cached for real data
        self.labels = torch.as_tensor(table.labels[all_idx])
        self.sub = {}
        for name, s in splits.evals.items():
            parent = name.split("/")[0]
            if "/" in name and parent in self.sub:  # per-domain curves come from the parent's subsample
                self.sub[name] = np.intersect1d(self.sub[parent], s.indices)
                if len(self.sub[name]):
                    continue
            rng = np.random.default_rng(stable_seed("eval-subsample", seed, name))
            keep = s.indices[rng.permutation(len(s.indices))[:subsample]] if len(s.indices) > subsample else s.indices
            self.sub[name] = np.sort(keep)

    @torch.no_grad()
    def features(self, visual: torch.nn.Module, rows: np.ndarray, batch: int = 256) -> torch.Tensor:
        out = []
        for i in range(0, len(rows), batch):
            x = self.pipeline.normalise(self.images[rows[i:i + batch]].to(self.device))
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                f = visual(x)
            out.append(F.normalize(f.float(), dim=-1))
        return torch.cat(out)

    @torch.no_grad()
    def accuracy(self, visual: torch.nn.Module | None, full: bool,
                 all_features: torch.Tensor | None = None) -> dict[str, float]:
        """Accuracy per split; ``all_features`` (features of every eval row) skips the embedding pass."""
        chosen = {n: (s.indices if full else self.sub[n]) for n, s in self.splits.evals.items()}
        union = np.unique(np.concatenate(list(chosen.values())))
        rows = np.asarray([self.pos[int(i)] for i in union])
        if all_features is not None:
            feats = all_features[torch.as_tensor(rows)].to(self.device).float()
        else:
            visual.eval()
            feats = self.features(visual, rows)
        where = {int(i): k for k, i in enumerate(union)}
        acc = {}
        for name, idx in chosen.items():
            s = self.splits.evals[name]
            f = feats[[where[int(i)] for i in idx]]
            cand = torch.as_tensor(s.candidates, device=f.device)
            pred = cand[(f @ self.text[cand].t()).argmax(-1)].cpu()
            labels = self.labels[[self.pos[int(i)] for i in idx]]
            acc[name] = round(100.0 * (pred == labels).float().mean().item(), 4)
        for name, (a, b) in self.splits.harmonic.items():
            acc[name] = round(harmonic_mean(acc[a], acc[b]), 4)
        return acc


def zeroshot_features(evaluator: _Evaluator, visual, table, cfg: RunConfig, bundle) -> torch.Tensor:
    """Zero-shot image features of every eval row (fp16 on CPU), disk-cached for tables with a fingerprint."""
    from .data.cache import PREPROCESS_VERSION, cache_root, key_of

    def compute():
        return evaluator.features(visual.eval(), np.arange(len(evaluator.images))).half().cpu()

    fp = (table.info or {}).get("fingerprint")
    root = cache_root()
    if not fp or root is None:
        return compute()
    rows = sorted(evaluator.pos)
    key = key_of("zeroshot-features", fp, rows, bundle.model_id, bundle.pretrained, bundle.image_size,
                 PREPROCESS_VERSION, str(evaluator.device.type), "bf16" if evaluator.amp else "fp32")
    path = root / "zeroshot" / f"{key}.safetensors"
    if path.is_file():
        try:
            f = load_safetensors(path)["features"]
            if f.shape[0] == len(rows):
                return f
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    f = compute()
    try:
        save_safetensors({"features": f}, path, metadata={"model": bundle.model_id})
    except OSError:
        pass
    return f


def _opt_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, meta = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                meta[f"{pid}.{k}"] = v
    return tensors, meta


def _load_opt(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def _avg_specs(cfg: RunConfig) -> list[tuple[str, str, float]]:
    """(display name, kind, parameter) of every average the run keeps."""
    method = METHODS[cfg.method]
    specs = []
    if method.result in ("bma", "ema", "wiseft"):
        specs.append(method.result)
    specs += [t for t in cfg.track if t not in specs]
    out = []
    for s in specs:
        kind, _, arg = s.partition(":")
        default = {"bma": cfg.beta, "ema": cfg.ema_decay, "wiseft": cfg.wiseft_alpha}[kind]
        val = float(arg) if arg else default
        name = kind if not arg or val == default else f"{kind}:{arg}"
        if name not in [o[0] for o in out]:
            out.append((name, kind, val))
    return out


def train(config: RunConfig, run_dir: Path | str | None = None, stop: threading.Event | None = None,
          resume: bool = False) -> Iterator:
    """Run one config, yielding events; the run folder (if given) receives everything needed to reproduce it.

    ``resume=True`` continues the run in ``run_dir`` from its last complete checkpoint (its config.json wins).
    """
    store = RunStore(Path(run_dir)) if run_dir is not None else None
    if resume:
        if store is None or not store.config_path.exists():
            raise RunFailed(f"--resume: {run_dir} is not a run folder (no config.json)")
        config = RunConfig.from_saved(store.read_config())
    cfg = resolve(config)
    stop = stop or threading.Event()
    device = pick_device(cfg.device)
    dist_info = _init_distributed(device)
    device = dist_info.device
    writer = store if (store is not None and dist_info.main) else None
    if writer is not None and not resume:
        writer.dir.mkdir(parents=True, exist_ok=True)
        writer.write_config(cfg.to_dict())
    t_start = time.time()
    state = {"step": 0, "last_eval": {}, "zeroshot": {}, "tracked": {}, "ckpt_step": None}

    def emit(ev):
        if writer is not None:
            writer.append_event(ev.to_dict())
        if isinstance(ev, FinishEvent):
            state["finished"] = True  # closing the stream after this must not rewrite the summary
        return ev

    def summary(status: str, reason: str, final=None, result=None, write: bool = True) -> dict:
        s = {"status": status, "reason": reason, "config": cfg.to_dict(), "zeroshot": state["zeroshot"],
             "final": final if final is not None else state["last_eval"].get("current", {}),
             "result": result if result is not None else {}, "tracked": state["tracked"],
             "zeroshot_full_eval": bool(state.get("zeroshot_full")), "steps_done": state["step"],
             "total_steps": cfg.steps, "wall_s": round(time.time() - t_start, 3),
             "last_checkpoint_step": state["ckpt_step"]}
        if writer is not None and write:
            writer.write_summary(s)
        return s

    try:
        yield from _run(cfg, device, dist_info, store, writer, stop, resume, state, emit, summary, t_start)
    except GeneratorExit:
        if writer is not None and not state.get("finished"):
            summary("cancelled", "the consumer closed the event stream")
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes a failed run that keeps its files
        reason = str(e) if isinstance(e, (RunFailed, ValueError)) else f"{type(e).__name__}: {e}"
        tb_text = traceback.format_exc()
        if isinstance(e, torch.cuda.OutOfMemoryError):
            e.__traceback__ = None  # (frames hold the batch's tensors)
            gc.collect()
            torch.cuda.empty_cache()
            reason = (f"CUDA out of memory at batch size {cfg.batch_size}: try --batch-size "
                      f"{max(1, cfg.batch_size // 2)}")
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
            reason = (f"disk full while writing {getattr(e, 'filename', None) or 'the run folder'}: free some space "
                      f"and resume; the last complete checkpoint (step {state['ckpt_step']}) is intact")
        try:  # the run folder may be unwritable (disk full): the failure is still reported
            if writer is not None:
                (writer.dir / "error.txt").write_text(tb_text)
            s = summary("failed", reason)
        except OSError:
            s = summary("failed", reason, write=False)
        ev = FinishEvent("failed", reason, s)
        try:
            emit(ev)
        except OSError:
            state["finished"] = True
        yield ev


def prepare(cfg: RunConfig, device):
    """Model, data table, splits, pipeline and class text features of a resolved config."""
    bundle = load_clip(cfg.model, cfg.pretrained, device)
    table = open_dataset(cfg.dataset, seed=cfg.seed, sources=cfg.sources, **cfg.data_options)
    splits = make_splits(table, cfg.setting, cfg.sources, cfg.targets, cfg.base_classes)
    pipeline = bundle.pipeline()  # the model's own eval geometry (open_clip's preprocess cfg)
    text = text_features_cached(bundle, table.classes, table.templates, cfg.ensemble, device)
    return bundle, table, splits, pipeline, text


def _run(cfg, device, dist_info, store, writer, stop, resume, state, emit, summary, t_start):
    torch.manual_seed(cfg.seed)
    method = METHODS[cfg.method]
    bundle, table, splits, pipeline, text = prepare(cfg, device)
    logit_scale = bundle.logit_scale
    visual = bundle.model.visual.float()
    for p in visual.parameters():
        p.requires_grad_(cfg.steps > 0)
    theta0 = {k: v.detach().clone() for k, v in visual.state_dict().items()}
    amp = use_bf16(cfg, device)
    evaluator = _Evaluator(table, splits, pipeline, text, device, cfg.eval_subsample, cfg.seed, amp) \
        if dist_info.main else None
    scratch = copy.deepcopy(visual).eval() if dist_info.main else None
    train_text = text[splits.train_classes]
    label_map = torch.full((len(table.classes),), -1, dtype=torch.long)
    label_map[splits.train_classes] = torch.arange(len(splits.train_classes))
    total = cfg.steps

    opt = None
    if total > 0:
        opt = make_optimizer(visual.parameters(), cfg.lr, cfg.weight_decay, device)
    averages = {}
    if dist_info.main:
        for name, kind, val in _avg_specs(cfg):
            if kind == "bma":
                averages[name] = BetaMovingAverage(visual, total, val)
            elif kind == "ema":
                averages[name] = ExponentialMovingAverage(visual, val)
            else:
                averages[name] = ("wiseft", val)

    start = 0
    if resume and store is not None and store.last_checkpoint.exists():
        start = _load_checkpoint(store, visual, opt, averages)  # every rank reads the same file
    state["step"] = start
    state["ckpt_step"] = start if start else None

    yield emit(StartEvent(str(writer.dir) if writer else None, cfg.to_dict(), total, start, splits.describe(),
                          table.classes, str(device), logit_scale))

    own = {METHODS[cfg.method].result, "bma"}

    def eval_models(full: bool) -> dict[str, dict[str, float]]:
        acc = {"current": evaluator.accuracy(visual, full)}
        for name, a in averages.items():
            if not full and cfg.track_eval == "final" and name not in own:
                continue  # extra (what-if) averages: final evaluation only
            if isinstance(a, tuple):
                scratch.load_state_dict(interpolate_weights(theta0, visual.state_dict(), a[1]))
                acc[name] = evaluator.accuracy(scratch, full)
            else:
                acc[name] = evaluator.accuracy(a.module, full)
        return acc

    def full_zeroshot() -> dict[str, float]:
        """Zero-shot accuracy on the full splits (computed once, at the end: the first curve point comes sooner)."""
        if not state.get("zeroshot_full"):
            scratch.load_state_dict(theta0)
            feats = zeroshot_features(evaluator, scratch, table, cfg, bundle)
            state["zeroshot"] = evaluator.accuracy(None, True, feats)
            state["zeroshot_full"] = True
        return state["zeroshot"]

    if dist_info.main and start == 0 and total > 0 and cfg.eval_every:
        scratch.load_state_dict(theta0)
        zs_sub = evaluator.accuracy(scratch, False)
        state["zeroshot"] = zs_sub  # until the full evaluation at the end
        yield emit(EvalEvent(0, {"zeroshot": zs_sub, **{n: dict(zs_sub) for n in ["current", *averages]}}, False))

    model_for_step = visual
    if dist_info.world > 1 and total > 0:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model_for_step = DDP(visual, device_ids=[device.index] if device.type == "cuda" else None)

    warmup = int(round(cfg.warmup_frac * total))
    sample = make_sampler(splits.train, table.domain_ids[splits.train], cfg.batch_size, cfg.seed, cfg.sampler)
    t_loop = time.time()
    images_seen = 0
    deadline = (t_start + cfg.max_seconds) if cfg.max_seconds else None
    text_dev = train_text.to(device)
    for step in range(start, total):
        user_stop, late = agreed_stop(dist_info, stop.is_set(), deadline is not None and time.time() > deadline)
        if user_stop or late:
            why = "stopped by the user" if user_stop else f"time limit of {cfg.max_seconds:g} s reached"
            if dist_info.main and state["ckpt_step"] != step and total > 0:
                yield from _checkpoint(writer, visual, opt, averages, step, state, emit)
            s = summary("cancelled", why + f" at step {step}/{total}; resume with --resume")
            yield emit(FinishEvent("cancelled", s["reason"], s))
            return
        lr = cosine_lr(cfg.lr, step, total, warmup)
        idx = sample(step)
        if dist_info.world > 1:
            idx = idx[dist_info.rank::dist_info.world]
        gen = torch.Generator().manual_seed(stable_seed("augment", cfg.seed, step))
        x = pipeline.train_batch(table.load(idx), gen, cfg.augment).to(device, non_blocking=True)
        y = label_map[torch.as_tensor(table.labels[idx])].to(device)
        loss = step_loss(model_for_step, x, y, text_dev, cfg.lam, logit_scale, amp)
        check = device.type == "cpu" or step % 10 == 0 or step == total - 1
        loss_val = None
        if check:
            if dist_info.world > 1:
                import torch.distributed as dist

                lt = loss.detach().clone()
                dist.all_reduce(lt)
                loss_val = lt.item() / dist_info.world
            else:
                loss_val = loss.item()
            if not math.isfinite(loss_val):
                raise RunFailed(f"loss became {loss_val} at step {step + 1}: lower --lr (now {cfg.lr:g}); the last "
                                f"good checkpoint (step {state['ckpt_step']}) is kept")
        bma_w = optimiser_step(loss, visual, opt, lr, averages)
        state["step"] = step + 1
        images_seen += len(idx) * dist_info.world
        el = time.time() - t_loop
        ips = images_seen / max(el, 1e-9)
        done = step + 1 - start
        eta = el / done * (total - step - 1)
        if dist_info.main:
            yield emit(StepEvent(step + 1, total, loss_val, lr, bma_w, round(ips, 2), round(time.time() - t_start, 3),
                                 round(eta, 3)))
        last = step + 1 == total
        if dist_info.main and cfg.eval_every and (step + 1) % cfg.eval_every == 0 and not last:
            acc = eval_models(False)
            state["last_eval"] = acc
            yield emit(EvalEvent(step + 1, acc, False))
        if dist_info.main and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and not last:
            yield from _checkpoint(writer, visual, opt, averages, step + 1, state, emit)

    if not dist_info.main:
        yield FinishEvent("done", f"rank {dist_info.rank} finished (rank 0 writes the run)", {})
        return
    # final evaluation on the full splits
    zs = full_zeroshot()
    yield emit(EvalEvent(0, {"zeroshot": zs}, True))
    if total > 0:
        acc = eval_models(True)
        yield emit(EvalEvent(total, acc, True))
    else:
        acc = {"current": zs}
    final = acc["current"]
    res_key = result_key(method.result)
    result = state["zeroshot"] if res_key is None else acc[res_key]
    state["tracked"] = {k: v for k, v in acc.items() if k != "current"}
    if writer is not None and total > 0:
        yield from _checkpoint(writer, visual, opt, averages, total, state, emit)
        res_weights = result_weights(method.result, theta0, visual.state_dict(), averages)
        save_safetensors(res_weights, writer.result_checkpoint, metadata={"method": cfg.method, "what": "visual"})
        yield emit(CheckpointEvent(total, str(writer.result_checkpoint)))
    s = summary("done", "finished", final=final, result=result)
    yield emit(FinishEvent("done", "finished", s))


def _checkpoint(writer, visual, opt, averages, step, state, emit):
    if writer is None:
        return
    tensors = {f"visual.{k}": v for k, v in visual.state_dict().items()}
    meta = {"step": step}
    if opt is not None:
        ot, om = _opt_tensors(opt)
        tensors.update(ot)
        meta["opt"] = om
    avg_meta = {}
    for name, a in averages.items():
        if isinstance(a, tuple):
            continue
        tensors.update({f"avg.{name}.{k}": v for k, v in a.state_tensors().items()})
        avg_meta[name] = a.state()
    meta["averages"] = avg_meta
    import json

    save_safetensors(tensors, writer.last_checkpoint, metadata={"meta": json.dumps(meta)})
    state["ckpt_step"] = step
    yield emit(CheckpointEvent(step, str(writer.last_checkpoint)))


def _load_checkpoint(writer, visual, opt, averages) -> int:
    import json

    from safetensors import safe_open

    path = writer.last_checkpoint
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["meta"])
        tensors = load_safetensors(path)
    except Exception as e:  # noqa: BLE001 - truncated, foreign or pickled bytes: never unpickled, one message
        raise RunFailed(f"cannot resume: {path} is not a readable safetensors checkpoint "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else '?'}); the run folder is left "
                        "as it was") from None
    visual.load_state_dict({k[len("visual."):]: v for k, v in tensors.items() if k.startswith("visual.")})
    if opt is not None:
        _load_opt(opt, tensors)
    for name, a in averages.items():
        if isinstance(a, tuple):
            continue
        pre = f"avg.{name}."
        a.load_state(meta["averages"][name], {k[len(pre):]: v for k, v in tensors.items() if k.startswith(pre)})
    return int(meta["step"])


def run_to_end(config: RunConfig, run_dir=None, stop=None, resume=False) -> dict:
    """Consume a run and return its summary (convenience for scripts and tests)."""
    last = None
    for ev in train(config, run_dir, stop, resume):
        last = ev
    return last.summary if isinstance(last, FinishEvent) else {}
