"""Correctness check for an accelerator: the engine's step on the device equals the CPU fp32 step within bf16
tolerance on the same weights and batch, and the BMA update is the same arithmetic on both.

Checks (each a number, its tolerance and pass/fail):

* ``loss``: the engine's loss (bf16 autocast on the device) vs fp32 on CPU, same weights and batch;
* ``grad_cosine``: cosine similarity of the flattened image-tower gradients;
* ``loss_trajectory``: the worst per-step loss difference over a few engine steps (AdamW, same batch);
* ``bma_trajectory``: cosine and norm ratio of the BMA displacement (average minus start) after those steps;
* ``bma_update``: the foreach BMA update on the device vs CPU fed identical weights (fp32 round-off only);
* ``seed_loss``: the seed design's fp16 loss vs our fp32 CPU loss (the benchmark's baseline computes the same
  thing we do).

On a CPU-only machine ``--device cpu --amp`` runs the same code with bf16 autocast on the CPU (what the tests use).
"""

from __future__ import annotations

import copy
import math

import torch

from core.clipood import BetaMovingAverage

from .seed_design import SeedStep
from .steps import OursStep, build_visual, step_loss, synthetic_batch

# bf16 keeps 8 significant bits: ~0.4 % per rounding; a deep tower's loss moves by a few tenths of a percent
LOSS_RTOL, LOSS_ATOL = 0.01, 0.05
GRAD_COS_MIN = 0.98
TRAJ_COS_MIN, TRAJ_NORM_TOL = 0.9, 0.15
BMA_RTOL = 1e-5
SEED_RTOL, SEED_ATOL = 0.05, 0.05


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().float().reshape(-1).cpu() for t in tensors])


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= atol + rtol * abs(b)


def check(device: str = "cuda", arch: str = "toy-clip", batch: int = 16, steps: int = 3, amp: bool | None = None,
          classes: int = 16, lam: float = 0.3, lr: float = 1e-4, beta: float = 0.5, seed_check: bool = True,
          seed_half: bool | None = None) -> dict:
    dev = torch.device(device)
    amp = (dev.type == "cuda") if amp is None else amp
    base = build_visual(arch, seed=0)
    x, y, text = synthetic_batch(base, batch, classes, "cpu", seed=1)
    theta0 = _flat(p for p in base.parameters())
    cpu = OursStep(copy.deepcopy(base), text, lam, 100.0, lr, total_steps=max(steps, 10), beta=beta, amp=False)
    acc = OursStep(copy.deepcopy(base).to(dev), text.to(dev), lam, 100.0, lr, total_steps=max(steps, 10), beta=beta,
                   amp=amp)
    xd, yd = x.to(dev), y.to(dev)
    res: dict = {"device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                 "arch": arch, "batch": batch, "steps": steps, "amp_bf16": amp, "checks": []}

    def add(name: str, value, ok: bool, tol: str) -> None:
        res["checks"].append({"name": name, "value": value, "tolerance": tol, "pass": bool(ok)})

    # same weights, same batch: loss and gradients
    l_cpu = step_loss(cpu.visual, x, y, text, lam, 100.0, False)
    l_cpu.backward()
    g_cpu = _flat(p.grad for p in cpu.visual.parameters())
    l_acc = step_loss(acc.visual, xd, yd, acc.text, lam, 100.0, amp)
    l_acc.backward()
    g_acc = _flat(p.grad for p in acc.visual.parameters())
    cpu.visual.zero_grad(set_to_none=True)
    acc.visual.zero_grad(set_to_none=True)
    lc, la = l_cpu.item(), l_acc.item()
    add("loss", {"cpu_fp32": lc, "device": la}, _close(la, lc, LOSS_RTOL, LOSS_ATOL),
        f"|d| <= {LOSS_ATOL} + {LOSS_RTOL}*|cpu|")
    gc = _cos(g_acc, g_cpu)
    add("grad_cosine", gc, gc >= GRAD_COS_MIN, f">= {GRAD_COS_MIN}")

    # a few engine steps on both
    worst, pairs = 0.0, []
    ok = True
    for _ in range(steps):
        with torch.no_grad():
            a = step_loss(cpu.visual, x, y, text, lam, 100.0, False).item()
            b = step_loss(acc.visual, xd, yd, acc.text, lam, 100.0, amp).item()
        pairs.append([a, b])
        ok &= _close(b, a, LOSS_RTOL, LOSS_ATOL)
        worst = max(worst, abs(a - b))
        cpu.step(x, y)
        acc.step(xd, yd)
    add("loss_trajectory", {"per_step_cpu_device": pairs, "max_abs_diff": worst}, ok,
        f"each step |d| <= {LOSS_ATOL} + {LOSS_RTOL}*|cpu|")
    d_cpu = _flat(cpu.averages["bma"].module.parameters()) - theta0
    d_acc = _flat(acc.averages["bma"].module.parameters()) - theta0
    cos = _cos(d_acc, d_cpu)
    nr = float(d_acc.norm() / d_cpu.norm()) if float(d_cpu.norm()) > 0 else float("nan")
    add("bma_trajectory", {"cosine": cos, "norm_ratio": nr},
        cos >= TRAJ_COS_MIN and abs(nr - 1) <= TRAJ_NORM_TOL, f"cosine >= {TRAJ_COS_MIN}, |norm ratio - 1| <= "
        f"{TRAJ_NORM_TOL}")

    # BMA arithmetic alone: identical inputs on both devices
    g = torch.Generator().manual_seed(2)
    m_cpu = copy.deepcopy(base)
    bma_cpu = BetaMovingAverage(m_cpu, 5, beta)
    bma_acc = BetaMovingAverage(copy.deepcopy(base).to(dev), 5, beta)
    m_acc = copy.deepcopy(base).to(dev)
    with torch.no_grad():
        for _ in range(5):
            for p, q in zip(m_cpu.parameters(), m_acc.parameters()):
                p.add_(torch.randn(p.shape, generator=g) * 0.01)
                q.copy_(p)
            w1 = bma_cpu.update(m_cpu)
            w2 = bma_acc.update(m_acc)
    a_cpu, a_acc = _flat(bma_cpu.module.parameters()), _flat(bma_acc.module.parameters())
    rel = float((a_cpu - a_acc).abs().max() / a_cpu.abs().max())
    add("bma_update", {"max_rel_diff": rel, "weight_cpu": w1, "weight_device": w2},
        rel <= BMA_RTOL and abs(w1 - w2) <= 1e-12, f"max|d|/max|avg| <= {BMA_RTOL}, same step weight")

    # the seed design computes the same loss (fp16 on an accelerator)
    if seed_check:
        half = (dev.type == "cuda") if seed_half is None else seed_half
        sv = build_visual(arch, seed=0, cast_dtype=torch.float16 if half else None)
        sv.load_state_dict(base.state_dict())
        seed = SeedStep(sv.to(dev), text.to(dev), lam, 100.0, lr=lr, half=half)
        ls = seed.step(xd, yd)
        add("seed_loss", {"cpu_fp32": lc, "seed_design": ls, "seed_weights": "fp16" if half else "fp32"},
            _close(ls, lc, SEED_RTOL, SEED_ATOL), f"|d| <= {SEED_ATOL} + {SEED_RTOL}*|cpu|")
    res["pass"] = all(c["pass"] for c in res["checks"])
    return res


def format_check(res: dict) -> str:
    lines = [f"correctness on {res['device_name']} ({res['arch']}, batch {res['batch']}, "
             f"bf16 autocast {'on' if res['amp_bf16'] else 'off'}) vs CPU fp32:"]
    for c in res["checks"]:
        v = c["value"]
        if isinstance(v, dict):
            v = ", ".join(f"{k} {x:.6g}" if isinstance(x, float) else f"{k} {x}" for k, x in v.items()
                          if not isinstance(x, list))
        elif isinstance(v, float):
            v = f"{v:.6g}"
        lines.append(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['name']:<16} {v}   (tolerance: {c['tolerance']})")
    lines.append(f"  => {'PASS' if res['pass'] else 'FAIL'}")
    return "\n".join(lines)
