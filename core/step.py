"""The trainer step: forward + MMS loss, the optimiser update with every weight average, and which weights a method
returns. The engine's loop runs :class:`Trainer` and so does the benchmark (``bench/steps.py``), so both time the
same code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .averages import Averages
from .clipood import margin_metric_softmax_loss
from .hardware import cpu_bf16_units
from .schedule import cosine_lr


def use_bf16(cfg, device: torch.device) -> bool:
    """bf16 autocast for the forward passes: ``precision="auto"`` turns it on for CUDA and for a CPU with bf16 matrix
    units (detected in /proc/cpuinfo: AVX512-BF16, AMX-BF16, ARM BF16); ``"bf16"`` / ``"fp32"`` force either."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and cpu_bf16_units())


def make_optimizer(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """Fused AdamW on CUDA (one kernel for all parameters); torch's default elsewhere (fused is noise-level on CPU)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def training_attention(device: torch.device, amp: bool):
    """The attention kernel of a training forward (its backward follows it): on CPU under bf16 autocast the math
    kernel, elsewhere torch's choice. In a profile of an embedded-model step the fused CPU kernel's backward was its
    slowest op; in a scratch A/B the math kernel made the step 20 % faster in bf16 and no faster in fp32 (so fp32 keeps
    torch's choice)."""
    return sdpa_kernel([SDPBackend.MATH]) if device.type == "cpu" and amp else contextlib.nullcontext()


def step_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, text: torch.Tensor, lam: float,
              logit_scale: float, amp: bool) -> torch.Tensor:
    """Forward (bf16 autocast when ``amp``) and the MMS loss in fp32. No host sync: the caller decides when."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp), training_attention(x.device, amp):
        feats = model(x)
    return margin_metric_softmax_loss(feats.float(), text, y, lam, logit_scale)


def optimiser_step(loss: torch.Tensor, visual: torch.nn.Module, opt: torch.optim.Optimizer, lr: float,
                   averages: Averages) -> float | None:
    """One update: lr, backward, AdamW, then every weight average. Returns the BMA weight of this step (or None).

    Kept apart from :func:`step_loss` so the finite-loss check sits between them and a NaN never reaches the weights.
    """
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return averages.update(visual)


class NonFiniteLoss(FloatingPointError):
    """The loss of a step was NaN or infinite; raised before the update, so the weights never see it."""

    def __init__(self, loss: float, step: int):
        super().__init__(f"loss became {loss} at step {step}")
        self.loss, self.step = loss, step


@dataclass
class StepResult:
    loss: float | None  # None on steps the loss is not read back (CUDA: every 10th step, and the last)
    lr: float
    bma_weight: float | None


@dataclass
class Trainer:
    """One optimiser step as a run takes it: the lr of the schedule, :func:`step_loss`, the finite-loss check at the
    read-back cadence (every step on CPU; every 10th and the last on CUDA, where a read-back stalls the GPU), then
    :func:`optimiser_step`. ``model`` is what the forward runs through (``visual`` itself, or its DDP wrapper)."""

    model: torch.nn.Module
    visual: torch.nn.Module
    opt: torch.optim.Optimizer
    averages: Averages
    text: torch.Tensor
    lam: float
    logit_scale: float
    amp: bool
    base_lr: float
    total: int
    warmup: int = 0
    read_loss: Callable[[torch.Tensor], float] = torch.Tensor.item  # the DDP mean under torchrun

    def reads_loss(self, step: int) -> bool:
        return self.text.device.type == "cpu" or step % 10 == 0 or step == self.total - 1

    def step(self, step: int, x: torch.Tensor, y: torch.Tensor) -> StepResult:
        """Optimiser step ``step`` (0-based) on batch ``(x, y)``; :class:`NonFiniteLoss` before a bad update."""
        lr = cosine_lr(self.base_lr, step, self.total, self.warmup)
        loss = step_loss(self.model, x, y, self.text, self.lam, self.logit_scale, self.amp)
        value = None
        if self.reads_loss(step):
            value = self.read_loss(loss)
            if not math.isfinite(value):
                raise NonFiniteLoss(value, step + 1)
        return StepResult(value, lr, optimiser_step(loss, self.visual, self.opt, lr, self.averages))


def result_key(method_result: str) -> str | None:
    """Which evaluated model is a method's result: None for zero-shot, ``current`` for the last weights, else the
    name of its average (bma, ema, wiseft)."""
    return {"zeroshot": None, "last": "current"}.get(method_result, method_result)


def result_weights(method_result: str, theta0: dict, last: dict, averages: Averages) -> dict[str, torch.Tensor]:
    """The image-tower weights a method outputs: the zero-shot ones, the last ones, or its average's (WiSE-FT's
    interpolation of zero-shot and last, or a running average)."""
    key = result_key(method_result)
    if key is None:
        return theta0
    if key == "current":
        return last
    return averages[key].averaged(last)
