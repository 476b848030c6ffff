"""The trainer step: forward + MMS loss, the optimiser update with every weight average, and which weights a method
returns. The engine's loop calls these and so does the benchmark (``bench/steps.py``), so both time the same code.
"""

from __future__ import annotations

import torch

from .clipood import interpolate_weights, margin_metric_softmax_loss


def use_bf16(cfg, device: torch.device) -> bool:
    """bf16 autocast for the forward passes: on CUDA by default; on a CPU only when asked (``precision="bf16"``, about
    1.3x on a bf16-capable CPU, see BENCHMARKS.md), because the embedded world's published numbers are fp32 ones."""
    return cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")


def make_optimizer(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """Fused AdamW on CUDA (one kernel for all parameters); torch's default elsewhere (fused is noise-level on CPU)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def step_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, text: torch.Tensor, lam: float,
              logit_scale: float, amp: bool) -> torch.Tensor:
    """Forward (bf16 autocast when ``amp``) and the MMS loss in fp32. No host sync: the caller decides when."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        feats = model(x)
    return margin_metric_softmax_loss(feats.float(), text, y, lam, logit_scale)


def optimiser_step(loss: torch.Tensor, visual: torch.nn.Module, opt: torch.optim.Optimizer, lr: float,
                   averages: dict) -> float | None:
    """One update: lr, backward, AdamW, then every weight average. Returns the BMA weight of this step (or None).

    Kept apart from :func:`step_loss` so the finite-loss check sits between them and a NaN never reaches the weights.
    """
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    bma_w = None
    for name, a in averages.items():
        if isinstance(a, tuple):
            continue  # WiSE-FT: computed from theta0 and the final weights
        w = a.update(visual)
        if name == "bma":
            bma_w = w
    return bma_w


def result_key(method_result: str) -> str | None:
    """Which evaluated model is a method's result: None for zero-shot, ``current`` for the last weights, else the
    name of its average (bma, ema, wiseft)."""
    return {"zeroshot": None, "last": "current"}.get(method_result, method_result)


def result_weights(method_result: str, theta0: dict, last: dict, averages: dict) -> dict[str, torch.Tensor]:
    """The image-tower weights a method outputs: the last weights, WiSE-FT's interpolation of zero-shot and last,
    or the named running average."""
    key = result_key(method_result)
    if key is None:
        return theta0
    if key == "current":
        return last
    if method_result == "wiseft":
        return interpolate_weights(theta0, last, averages["wiseft"][1])
    return averages[key].module.state_dict()
