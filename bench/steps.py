"""Training-step benchmarks: our CLIPood step vs the seed code's step design, BMA cost, FLOP/s.

*Our step* is the engine's own code, ``core.step.Trainer.step``: ``step_loss`` (bf16 autocast on CUDA,
``margin_metric_softmax_loss``), the loss read back every step on CPU and every 10th on CUDA, then ``optimiser_step``
(AdamW from ``make_optimizer``, ``BetaMovingAverage.update`` with foreach ops).
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Callable

import torch

from core import step as engine_step
from core.averages import Averages
from core.clipood import BetaMovingAverage, margin_metric_softmax_loss

from .common import median, paired, paired_ratio, spread, sync, time_calls
from .seed_design import SeedStep

step_loss = engine_step.step_loss
STEP_CODE_PATH = "core.step.Trainer.step (step_loss, optimiser_step) + core.step.make_optimizer"

# image-tower configs (open_clip); text towers are not needed for a step
PAPER_BATCHES = (36, 256)


def tower_config(arch: str) -> dict:
    if arch == "toy-clip":
        from core.world.pretrain import TOY_CLIP_CFG

        return copy.deepcopy(TOY_CLIP_CFG)
    if arch == "tiny-random":
        from core.models import TINY_RANDOM_CFG

        return copy.deepcopy(TINY_RANDOM_CFG)
    import open_clip

    cfg = open_clip.get_model_config(arch)
    if cfg is None:
        raise ValueError(f"unknown architecture {arch!r}")
    return cfg


def build_visual(arch: str, seed: int = 0, cast_dtype: torch.dtype | None = None) -> torch.nn.Module:
    """A randomly initialised image tower (fp32, CPU). ``cast_dtype=float16`` builds OpenAI-CLIP-style fp32
    LayerNorms (cast to fp32 and back), as the seed design's fp16 model needs."""
    import open_clip
    from open_clip import model as ocm

    cfg = tower_config(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vcfg = ocm.CLIPVisionCfg(**cfg["vision_cfg"]) if isinstance(cfg["vision_cfg"], dict) else cfg["vision_cfg"]
        if hasattr(ocm, "_build_vision_tower"):
            v = ocm._build_vision_tower(cfg["embed_dim"], vcfg, cfg.get("quick_gelu", False), cast_dtype)
        else:  # pragma: no cover - older/newer open_clip
            v = open_clip.CLIP(**cfg, cast_dtype=cast_dtype).visual
    return v.float()


def image_size(visual: torch.nn.Module) -> int:
    s = visual.image_size
    return int(s if isinstance(s, int) else s[0])


def embed_dim(visual: torch.nn.Module) -> int:
    return int(visual.output_dim)


def synthetic_batch(visual: torch.nn.Module, batch: int, classes: int, device, seed: int = 0):
    """Normalised-looking images, labels and L2-normalised text features (the same for every contender)."""
    g = torch.Generator().manual_seed(seed)
    s = image_size(visual)
    x = torch.randn(batch, 3, s, s, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    t = torch.nn.functional.normalize(torch.randn(classes, embed_dim(visual), generator=g), dim=-1)
    return x.to(device), y.to(device), t.to(device)


class OursStep:
    """The engine's training step on one model. Knobs default to the engine's choices for ``device``; the
    non-default settings are the variants the CPU table reports (fused/foreach AdamW, bf16, torch.compile)."""

    def __init__(self, visual: torch.nn.Module, text: torch.Tensor, lam: float, logit_scale: float, lr: float,
                 weight_decay: float = 0.1, beta: float = 0.5, total_steps: int = 5000, warmup_frac: float = 0.0,
                 amp: bool | None = None, fused: bool | None = None, foreach: bool | None = None,
                 compile: bool = False):
        dev = next(visual.parameters()).device
        self.device = dev
        self.visual = visual.float()
        for p in self.visual.parameters():
            p.requires_grad_(True)
        self.amp = (dev.type == "cuda") if amp is None else amp
        if fused is None and foreach is None:
            self.opt = engine_step.make_optimizer(self.visual.parameters(), lr, weight_decay, dev)
        else:  # a variant the CPU table reports
            self.opt = torch.optim.AdamW(self.visual.parameters(), lr=lr, weight_decay=weight_decay,
                                         fused=bool(fused), foreach=foreach)
        self.averages = Averages({"bma": BetaMovingAverage(self.visual, total_steps, beta)})
        self.model = torch.compile(self.visual) if compile else self.visual
        self.text = text
        self.trainer = engine_step.Trainer(self.model, self.visual, self.opt, self.averages, text, lam,
                                           float(logit_scale), self.amp, lr, total_steps,
                                           int(round(warmup_frac * total_steps)))
        self.i = 0
        self.last_loss: float | None = None

    def _restart_full_average(self) -> None:
        bma = self.averages["bma"]
        if bma.t >= bma.total_steps:  # the benchmark runs past T: a new schedule from the current average
            bma.restart()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        """The engine's step (raises ``core.step.NonFiniteLoss``, a FloatingPointError, on a NaN loss)."""
        self._restart_full_average()
        out = self.trainer.step(self.i % self.trainer.total, x, y)
        if out.loss is not None:
            self.last_loss = out.loss
        self.i += 1
        return self.last_loss

    def bma_update(self) -> None:
        self._restart_full_average()
        self.averages["bma"].update(self.visual)


# variants measured on CPU (name -> OursStep keyword arguments); "ours" is the engine as it is
CPU_VARIANTS: dict[str, dict] = {
    "ours": {},
    "ours+fused-adamw": {"fused": True},
    "ours+foreach-adamw": {"foreach": True},
    "ours+bf16-autocast": {"amp": True},
    "ours+compile": {"compile": True},
}


def train_flops(visual: torch.nn.Module, x, y, text, lam: float, logit_scale: float, amp: bool) -> int:
    """FLOPs of one training step's forward + backward, counted by ``torch.utils.flop_counter.FlopCounterMode``
    (2 FLOPs per multiply-add; matmul, linear, conv and attention kernels; the optimiser, norms and element-wise
    ops are not counted). ``visual``'s gradients are cleared afterwards."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        if x.device.type == "meta":  # no autocast on meta; the FLOP count does not depend on the dtype
            loss = margin_metric_softmax_loss(visual(x).float(), text, y, lam, logit_scale)
        else:
            loss = step_loss(visual, x, y, text, lam, logit_scale, amp)
        loss.backward()
    visual.zero_grad(set_to_none=True)
    return int(fc.get_total_flops())


def _free(device) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def compare_steps(arch: str, device: str | torch.device, batch: int, *, variants: dict[str, dict] | None = None,
                  seed_half: bool | None = None, extra_seed_half: bool = False, classes: int = 16,
                  lam: float = 0.3, lr: float = 1e-5, calls: int = 5, warmup: int = 3, repeats: int = 5,
                  bma_calls: int = 20, flops: bool = False, include_seed: bool = True) -> dict:
    """Our step (and variants) vs the seed design on the same initial weights, batch and data, in alternating
    blocks. Returns a dict with one row per contender plus the BMA-update cost of ours and of the seed design."""
    device = torch.device(device)
    variants = variants if variants is not None else {"ours": {}}
    seed_half = (device.type == "cuda") if seed_half is None else seed_half
    base = build_visual(arch, seed=0)
    x, y, text = synthetic_batch(base, batch, classes, device)
    state = base.state_dict()
    contenders: dict[str, object] = {}
    compile_s: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, kw in variants.items():
        v = copy.deepcopy(base).to(device)
        try:
            contenders[name] = OursStep(v, text, lam, 100.0, lr, **kw)
            if kw.get("compile"):
                t0 = time.perf_counter()
                contenders[name].step(x, y)
                sync(device)
                compile_s[name] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - a variant that cannot run here is reported, not fatal
            errors[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            contenders.pop(name, None)

    def seed_model(half: bool) -> SeedStep:
        sv = build_visual(arch, seed=0, cast_dtype=torch.float16 if half else None)
        sv.load_state_dict(state)
        return SeedStep(sv.to(device), text, lam, 100.0, lr=lr, half=half)

    if include_seed:
        contenders["seed"] = seed_model(seed_half)
        if extra_seed_half and not seed_half:
            contenders["seed-as-written(fp16)"] = seed_model(True)
    base_name = "seed" if include_seed else "ours"

    runners: dict[str, Callable[[], object]] = {n: (lambda c=c: c.step(x, y)) for n, c in contenders.items()}
    times = paired(runners, calls=calls, warmup=warmup, repeats=repeats, device=device)
    rows = []
    for name, ts in times.items():
        sec = median(ts)
        rows.append({"name": name, "images_per_s": batch / sec, "ms_per_step": 1000 * sec,
                     f"speedup_vs_{base_name}": paired_ratio(times[base_name], ts), "spread": spread(ts),
                     "compile_s": compile_s.get(name)})
    for name, err in errors.items():
        rows.append({"name": name, "error": err})
    out = {"arch": arch, "device": str(device), "batch": batch, "classes": classes,
           "seed_weights": ("fp16 (+fp32 casts)" if seed_half else "fp32 (casts are no-ops)") if include_seed
           else None,
           "threads": torch.get_num_threads(), "calls_per_block": calls, "warmup_calls": warmup,
           "repeats": repeats, "rows": rows, "step_code_path": STEP_CODE_PATH}

    # BMA update alone, as a fraction of the step it belongs to (same process, right after the steps)
    ours = contenders.get("ours")
    if ours is not None:
        t_step = median(times["ours"])
        if include_seed:
            t_bma = time_calls(ours.bma_update, calls=bma_calls, warmup=3, repeats=repeats, device=device)
            seed = contenders["seed"]
            t_loop = time_calls(seed.bma_update, calls=bma_calls, warmup=3, repeats=repeats, device=device)
            n_params = sum(p.numel() for p in ours.visual.parameters())
            out["bma"] = {"params": n_params, "ours_ms": 1000 * median(t_bma),
                          "ours_fraction_of_step": median(t_bma) / t_step,
                          "seed_loop_ms": 1000 * median(t_loop),
                          "seed_loop_fraction_of_seed_step": median(t_loop) / median(times["seed"]),
                          "speedup_vs_seed_loop": median(t_loop) / median(t_bma)}
        if flops:
            f = train_flops(ours.visual, x, y, text, lam, 100.0, ours.amp)
            out["flops_per_step"] = f
            out["flops_per_image"] = f / batch
            out["achieved_tflops"] = f / t_step / 1e12
            out["flop_source"] = ("torch.utils.flop_counter.FlopCounterMode over forward + backward of the image "
                                  "tower at this batch (2 FLOPs per multiply-add; matmul/linear/conv/attention)")
    del contenders, runners
    _free(device)
    return out


def thread_sweep(arch: str, batch: int, threads: list[int], **kw) -> list[dict]:
    """Ours vs seed at each torch thread count (CPU)."""
    before = torch.get_num_threads()
    res = []
    try:
        for n in threads:
            torch.set_num_threads(n)
            r = compare_steps(arch, "cpu", batch, **kw)
            res.append({"threads": n, **{k: r[k] for k in ("rows",)}})
    finally:
        torch.set_num_threads(before)
    return res


def row(result: dict, name: str) -> dict:
    for r in result["rows"]:
        if r["name"] == name:
            return r
    raise KeyError(name)
