"""A re-creation of the official CLIPood code's training-step *design*, for side-by-side timing only.

What the official code (thuml/CLIPood ``main.py`` + ``engine.py``, HEAD; see ``docs/method.md``, sections
"Precision" and "Sharp edges of the official code") does per step, and what is reproduced here:

* the image tower holds **fp16** Linear/Conv/attention weights and projections (OpenAI CLIP's ``convert_weights``;
  LayerNorms, class and positional embeddings stay fp32), the input is cast to the conv weight's dtype (the
  ``x.type(self.conv1.weight.dtype)`` patch the README asks for) and the loss is computed from fp16 features;
* the MMS loss in its subtraction form, ``loss.item()`` and a top-1 accuracy ``.item()`` every step (host syncs);
* ``optimizer.zero_grad(); loss.backward()``, then ``convert_models_to_fp32`` (every parameter and gradient cast to
  fp32 with a Python loop), ``AdamW.step()``, ``convert_weights`` back to fp16, ``CosineAnnealingLR.step()``;
* the moving average (``GeneralMovingAverage``): a Beta pdf from scipy per step and a Python loop over parameters
  doing ``avg.data = (avg + r * p) / (1 + r)`` (three kernels and one allocation per parameter), on an fp16 copy.

Choices, all in the seed design's favour or neutral: ``zero_grad`` uses the installed torch's default
(``set_to_none=True``, fewer kernels than the 1.13 default); AdamW uses its single-tensor loop (``foreach=False``,
the default of the PyTorch 1.13 the paper used; ``foreach=None`` picks the newer default); cuDNN flags are as in
``main.py`` (deterministic and benchmark) but only around the seed step. ``half=False`` keeps the weights fp32 (the
casts become no-ops): the CPU baseline, since fp16 matmuls on a CPU are an accident of the official code (it calls
``convert_weights`` on any device), not a design anyone would run; ``half=True`` on CPU measures that accident.

This file is written from the description above; no code of the official repository is copied.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def convert_weights_fp16(model: nn.Module) -> None:
    """OpenAI CLIP's ``convert_weights``: Conv/Linear weights and biases, attention in-projections and the ``proj`` /
    ``text_projection`` parameters to fp16, in place through ``.data`` (LayerNorm and embeddings untouched)."""

    def one(layer: nn.Module) -> None:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            layer.weight.data = layer.weight.data.half()
            if layer.bias is not None:
                layer.bias.data = layer.bias.data.half()
        if isinstance(layer, nn.MultiheadAttention):
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "bias_k", "bias_v"):
                t = getattr(layer, attr, None)
                if t is not None:
                    t.data = t.data.half()
        for name in ("text_projection", "proj"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                t.data = t.data.half()

    model.apply(one)


def convert_models_to_fp32(model: nn.Module) -> None:
    """CLIPood's ``convert_models_to_fp32``: every parameter and its gradient to fp32, one Python step each."""
    for p in model.parameters():
        p.data = p.data.float()
        p.grad.data = p.grad.data.float()


class LoopMovingAverage:
    """The official ``GeneralMovingAverage``: weight from a callable per step, Python loop over parameters."""

    def __init__(self, model: nn.Module, weight_func):
        self.model = model
        self.weight_func = weight_func
        self.iter = 0
        self.weight = weight_func(self.iter)
        self.weight_sum = self.weight
        self.moving_avg = copy.deepcopy(model)
        for p in self.moving_avg.parameters():
            p.requires_grad = False

    def update(self) -> None:
        self.iter += 1
        self.weight = self.weight_func(self.iter)
        r = self.weight / self.weight_sum
        for avg, p in zip(self.moving_avg.parameters(), self.model.parameters()):
            avg.data = (avg + r * p) / (1 + r)
        self.weight_sum += self.weight


def beta_weight_func(total_iter: int, beta: float):
    """``scipy.stats.beta(beta, beta).pdf((it + 0.5) / (total_iter + 1))``, as ``main.py`` builds it."""
    from scipy import stats

    dist = stats.beta(beta, beta)
    return lambda it: dist.pdf((it + 0.5) / (total_iter + 1))


def top1(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy in % (the official ``utils.accuracy`` with ``topk=(1,)``: topk, compare, sum)."""
    with torch.no_grad():
        _, pred = logits.topk(1, 1, True, True)
        return pred.t().eq(labels[None]).flatten().sum(dtype=torch.float32) * (100.0 / labels.size(0))


class SeedStep:
    """One model trained with the official step design. ``visual`` is taken over (converted in place)."""

    def __init__(self, visual: nn.Module, text: torch.Tensor, lam: float, temperature: float, lr: float = 1e-5,
                 weight_decay: float = 0.1, beta: float = 0.5, total_iter: int = 5000, half: bool = True,
                 foreach: bool | None = False):
        self.model = visual
        self.half = half
        if half:
            convert_weights_fp16(self.model)
        self.model.eval()  # "Freeze all Norm Layers"
        for p in self.model.parameters():
            p.requires_grad_(True)
        # the official text features come out of the fp16 text tower
        self.text = text.half() if half else text.float()
        self.lam, self.temperature = lam, float(temperature)
        self.bma = LoopMovingAverage(self.model, beta_weight_func(total_iter, beta))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay, foreach=foreach)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, total_iter)
        self.cuda = next(self.model.parameters()).is_cuda
        self.last_loss = float("nan")

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        conv = getattr(self.model, "conv1", None)
        return x.type(conv.weight.dtype) if conv is not None else x

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        flags = torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=True) if self.cuda else None
        if flags is not None:
            flags.__enter__()
        try:
            f = self.model(self._input(x))
            f = f / f.norm(dim=-1, keepdim=True)
            f = f - self.lam * self.text[labels]
            y = self.temperature * (f @ self.text.T)
            loss = F.cross_entropy(y, labels)
            acc = top1(y, labels)
            self.last_loss = loss.item()  # host sync before backward, every step
            acc.item()
            self.opt.zero_grad()
            loss.backward()
            convert_models_to_fp32(self.model)
            self.opt.step()
            if self.half:
                convert_weights_fp16(self.model)
            self.sched.step()
            self.bma.update()
        finally:
            if flags is not None:
                flags.__exit__(None, None, None)
        return self.last_loss

    def bma_update(self) -> None:
        self.bma.update()
