"""The CLIPood method as pure units: margin metric softmax (MMS), Beta weights, and weight averages.

Formulas follow the official code (thuml/CLIPood ``engine.py``, ``main.py``): ``docs/method.md`` gives each one with
its source line and where we differ. Every average answers ``update(model)`` after each optimiser step and
``averaged(last)`` for its output; BMA and EMA keep fp32 master copies updated with ``torch._foreach_*`` ops (no
per-parameter Python arithmetic) and are checkpointed; WiSE-FT needs only the zero-shot and the last weights.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F


def mms_logits(image_features: torch.Tensor, text_features: torch.Tensor, labels: torch.Tensor, lam: float,
               logit_scale: float | torch.Tensor) -> torch.Tensor:
    """``logit_scale * (f_hat - lam * t_y) . t_k`` for every class k (the official code's subtraction form)."""
    f = F.normalize(image_features.float(), dim=-1)
    t = text_features.float()
    logits = f @ t.t()
    if lam:
        logits = logits - lam * (t @ t.t())[labels]
    return logit_scale * logits


def margin_metric_softmax_loss(image_features: torch.Tensor, text_features: torch.Tensor, labels: torch.Tensor,
                               lam: float, logit_scale: float | torch.Tensor) -> torch.Tensor:
    """Cross-entropy with margin ``lam * (1 - cos(t_y, t_k))`` on each non-target class k; ``lam = 0`` is plain
    CLIP-logit cross-entropy. ``text_features`` must be L2-normalised; image features are normalised here."""
    return F.cross_entropy(mms_logits(image_features, text_features, labels, lam, logit_scale), labels)


def margin_matrix(text_features: torch.Tensor, lam: float) -> torch.Tensor:
    """(K, K) class-adaptive margins ``lam * (1 - cos(t_i, t_j))``; zero on the diagonal."""
    t = F.normalize(text_features.float(), dim=-1)
    return lam * (1 - t @ t.t())


def beta_weights(total_steps: int, beta: float) -> torch.Tensor:
    """The T+1 BMA weights ``BetaPDF(beta, beta)((t + 0.5) / (T + 1))`` for t = 0..T (float64, unnormalised)."""
    if total_steps < 0:
        raise ValueError("total_steps must be >= 0")
    if beta <= 0:
        raise ValueError("beta must be > 0")
    x = (torch.arange(total_steps + 1, dtype=torch.float64) + 0.5) / (total_steps + 1)
    log_b = math.lgamma(beta) * 2 - math.lgamma(2 * beta)
    return torch.exp((beta - 1) * (torch.log(x) + torch.log1p(-x)) - log_b)


def _float_params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in module.state_dict().values() if p.is_floating_point()]


class _WeightAverage:
    """An fp32 copy of a module's floating-point state, updated in place with foreach ops."""

    def __init__(self, model: torch.nn.Module):
        self.module = copy.deepcopy(model).float().eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._avg = _float_params(self.module)

    @torch.no_grad()
    def _sources(self, model: torch.nn.Module) -> list[torch.Tensor]:
        src = [p for p in model.state_dict().values() if p.is_floating_point()]
        if len(src) != len(self._avg):
            raise ValueError("model does not match the averaged module")
        return [s.float() if s.dtype != torch.float32 else s for s in src]

    checkpointed = True  # its state goes into the run's checkpoint (core/checkpoint.py)

    def averaged(self, last: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The averaged weights (``last``, the current model's, is not needed: the average is kept)."""
        return self.module.state_dict()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.module.state_dict().items()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(tensors)
        self._avg = _float_params(self.module)


class BetaMovingAverage(_WeightAverage):
    """Running ``sum_t w_t theta_t / sum_t w_t`` over t = 0..T with Beta weights; t = 0 is the model as given.

    Call :meth:`update` after each optimiser step (T times). ``module`` is the averaged model for evaluation.
    """

    def __init__(self, model: torch.nn.Module, total_steps: int, beta: float):
        super().__init__(model)
        self.beta = float(beta)
        self.total_steps = int(total_steps)
        self.weights = beta_weights(total_steps, beta)
        self.t = 0  # number of updates so far; the average holds steps 0..t
        self.weight_sum = float(self.weights[0])

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> float:
        """Fold in the current weights as step t+1; returns that step's normalised share of the final average."""
        if self.t >= self.total_steps:
            raise RuntimeError(f"BetaMovingAverage already holds all {self.total_steps} steps")
        self.t += 1
        w = float(self.weights[self.t])
        new_sum = self.weight_sum + w
        torch._foreach_mul_(self._avg, self.weight_sum / new_sum)
        torch._foreach_add_(self._avg, self._sources(model), alpha=w / new_sum)
        self.weight_sum = new_sum
        return w / float(self.weights.sum())

    def restart(self) -> None:
        """Start the schedule again from the current average as its t = 0 (a benchmark that runs past T steps)."""
        self.t, self.weight_sum = 0, float(self.weights[0])

    def state(self) -> dict:
        return {"t": self.t, "weight_sum": self.weight_sum, "beta": self.beta, "total_steps": self.total_steps}

    def load_state(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        if state["total_steps"] != self.total_steps or state["beta"] != self.beta:
            raise ValueError("BMA state was saved for another schedule")
        self.t, self.weight_sum = int(state["t"]), float(state["weight_sum"])
        self.load_state_tensors(tensors)


class ExponentialMovingAverage(_WeightAverage):
    """``ema <- decay * ema + (1 - decay) * theta`` after each step, starting from the model as given."""

    def __init__(self, model: torch.nn.Module, decay: float):
        super().__init__(model)
        if not 0.0 <= decay < 1.0:
            raise ValueError("decay must be in [0, 1)")
        self.decay = float(decay)
        self.t = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.t += 1
        torch._foreach_lerp_(self._avg, self._sources(model), 1.0 - self.decay)

    def state(self) -> dict:
        return {"t": self.t, "decay": self.decay}

    def load_state(self, state: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.t = int(state["t"])
        self.load_state_tensors(tensors)


@torch.no_grad()
def interpolate_weights(theta_0: dict[str, torch.Tensor], theta_1: dict[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """WiSE-FT: ``alpha * theta_1 + (1 - alpha) * theta_0`` for floating tensors (others from ``theta_1``)."""
    if theta_0.keys() != theta_1.keys():
        raise ValueError("state dicts differ in keys")
    out = {}
    for k, v1 in theta_1.items():
        v0 = theta_0[k]
        out[k] = torch.lerp(v0.float(), v1.float(), alpha).to(v1.dtype) if v1.is_floating_point() else v1.clone()
    return out


class WiseFT:
    """WiSE-FT as an average like the others: ``alpha * theta_last + (1 - alpha) * theta_0``, computed from the
    zero-shot weights and the last ones when asked, so there is nothing to update or to checkpoint."""

    checkpointed = False

    def __init__(self, theta_0: dict[str, torch.Tensor], alpha: float):
        self.theta_0, self.alpha = theta_0, float(alpha)

    def update(self, model: torch.nn.Module) -> None:
        """Nothing to fold in: the interpolation only needs the final weights."""

    def averaged(self, last: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return interpolate_weights(self.theta_0, last, self.alpha)
