"""MMS, Beta weights, BMA, EMA and WiSE-FT against closed forms."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import beta as beta_dist

from core.clipood import (
    BetaMovingAverage,
    ExponentialMovingAverage,
    beta_weights,
    interpolate_weights,
    margin_matrix,
    margin_metric_softmax_loss,
)


def _setup(n=12, k=7, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, generator=g) * 3
    t = F.normalize(torch.randn(k, d, generator=g), dim=-1)
    y = torch.randint(0, k, (n,), generator=g)
    return f, t, y


def test_mms_lam0_is_clip_cross_entropy():
    f, t, y = _setup()
    ref = F.cross_entropy(26.0 * F.normalize(f, dim=-1) @ t.t(), y)
    assert torch.allclose(margin_metric_softmax_loss(f, t, y, 0.0, 26.0), ref, atol=1e-6)


@pytest.mark.parametrize("lam", [0.1, 0.3, 1.0])
def test_mms_equals_explicit_margin_form(lam):
    f, t, y = _setup(seed=1)
    scale = 100.0
    cos = F.normalize(f, dim=-1) @ t.t()
    margin = lam * (1 - t[y] @ t.t())  # zero on the target
    logits = scale * (cos + margin)
    ref = F.cross_entropy(logits, y)
    assert torch.allclose(margin_metric_softmax_loss(f, t, y, lam, scale), ref, atol=1e-4)
    # and the subtraction form of the official code
    sub = scale * ((F.normalize(f, dim=-1) - lam * t[y]) @ t.t())
    assert torch.allclose(margin_metric_softmax_loss(f, t, y, lam, scale), F.cross_entropy(sub, y), atol=1e-4)


def test_mms_margin_raises_loss_and_is_scale_invariant_in_features():
    f, t, y = _setup(seed=2)
    assert margin_metric_softmax_loss(f, t, y, 0.3, 50.0) > margin_metric_softmax_loss(f, t, y, 0.0, 50.0)
    assert torch.allclose(margin_metric_softmax_loss(f, t, y, 0.3, 50.0),
                          margin_metric_softmax_loss(7 * f, t, y, 0.3, 50.0), atol=1e-5)


def test_margin_matrix():
    _, t, _ = _setup()
    m = margin_matrix(t, 0.3)
    assert torch.allclose(m.diagonal(), torch.zeros(len(t)), atol=1e-6)
    assert torch.allclose(m, m.t()) and (m >= -1e-6).all() and (m <= 0.6 + 1e-6).all()


@pytest.mark.parametrize("T,b", [(0, 0.5), (1, 0.5), (10, 0.5), (500, 0.1), (37, 1.0), (100, 2.0)])
def test_beta_weights_closed_form(T, b):
    w = beta_weights(T, b)
    x = (torch.arange(T + 1, dtype=torch.float64) + 0.5) / (T + 1)
    ref = torch.tensor(beta_dist.pdf(x.numpy(), b, b))
    assert w.shape == (T + 1,)
    assert torch.allclose(w, ref, rtol=1e-9)


@pytest.mark.parametrize("T,b", [(5000, 0.5), (500, 0.1), (9, 2.0), (18, 0.5)])
def test_average_shares_at_the_end_from_the_density(T, b):
    from core.explore import average_shares

    w = beta_dist.pdf((np.arange(T + 1) + 0.5) / (T + 1), b, b)
    w = w / w.sum()
    k = max(1, round(T / 10))
    s = average_shares(T, b, T)
    assert s["zeroshot"] == pytest.approx(w[0], rel=1e-9) and s["latest_steps"] == k
    assert s["latest"] == pytest.approx(w[-k:].sum(), rel=1e-9)
    assert s["between"] == pytest.approx(w[1:-k].sum(), rel=1e-7)
    assert (s["zeroshot"] > 1 / (T + 1)) == (b < 1), "a U-shaped Beta puts more than a uniform share on t = 0"


@pytest.mark.parametrize("T,b", [(1, 0.5), (7, 0.5), (50, 0.1), (20, 1.0), (30, 3.0)])
def test_bma_equals_weighted_average(T, b):
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3))
    states = [{k: v.clone().double() for k, v in m.state_dict().items()}]
    bma = BetaMovingAverage(m, T, b)
    for _ in range(T):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        bma.update(m)
        states.append({k: v.clone().double() for k, v in m.state_dict().items()})
    w = beta_weights(T, b)
    for k, v in bma.module.state_dict().items():
        ref = sum(w[t] * states[t][k] for t in range(T + 1)) / w.sum()
        assert torch.allclose(v.double(), ref, atol=1e-5), k
    with pytest.raises(RuntimeError):
        bma.update(m)


def test_bma_starts_at_zero_shot_and_is_fp32():
    m = torch.nn.Linear(3, 3).half()
    bma = BetaMovingAverage(m, 5, 0.5)
    assert all(v.dtype == torch.float32 for v in bma.module.state_dict().values())
    assert torch.allclose(bma.module.weight, m.weight.float())


def _resumed_average_matches(make, before: int, after: int):
    """An average saved after ``before`` steps and loaded into a fresh one continues exactly as the original."""
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 2)
    a = make(m)
    for _ in range(before):
        with torch.no_grad():
            m.weight.add_(1.0)
        a.update(m)
    b = make(torch.nn.Linear(4, 2))
    b.load_state(a.state(), a.state_tensors())
    for _ in range(after):
        with torch.no_grad():
            m.weight.add_(1.0)
        a.update(m)
        b.update(m)
    assert torch.equal(a.module.weight, b.module.weight)
    return a, b


def test_bma_state_roundtrip():
    _resumed_average_matches(lambda m: BetaMovingAverage(m, 10, 0.5), 4, 3)


def test_ema_closed_form():
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = ExponentialMovingAverage(m, 0.9)
    vals = [1.0, 2.0, 3.0]
    for v in vals:
        with torch.no_grad():
            m.weight.fill_(v)
        ema.update(m)
    ref = 0.0
    for v in vals:
        ref = 0.9 * ref + 0.1 * v
    assert math.isclose(ema.module.weight[0, 0].item(), ref, rel_tol=1e-6)


def test_wiseft_interpolation():
    a = {"w": torch.zeros(3), "n": torch.tensor([1])}
    b = {"w": torch.ones(3) * 4, "n": torch.tensor([2])}
    out = interpolate_weights(a, b, 0.25)
    assert torch.allclose(out["w"], torch.ones(3))
    assert out["n"].item() == 2
    assert torch.equal(interpolate_weights(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_weights(a, b, 1.0)["w"], b["w"])


def test_margin_matrix_normalises_the_text_features():
    _, t, _ = _setup(seed=3)
    assert torch.allclose(margin_matrix(3.0 * t, 0.3), margin_matrix(t, 0.3), atol=1e-6)


def test_bma_refuses_a_state_of_another_schedule():
    m = torch.nn.Linear(2, 2)
    saved = BetaMovingAverage(m, 10, 0.5)
    for other in (BetaMovingAverage(m, 11, 0.5), BetaMovingAverage(m, 10, 0.6)):
        with pytest.raises(ValueError, match="BMA state was saved for another schedule"):
            other.load_state(saved.state(), saved.state_tensors())


@pytest.mark.parametrize("decay,ok", [(0.0, True), (0.5, True), (0.999, True), (1.0, False), (1.5, False),
                                      (-0.1, False)])
def test_ema_decay_range(decay, ok):
    m = torch.nn.Linear(2, 1)
    if ok:
        ema = ExponentialMovingAverage(m, decay)
        with torch.no_grad():
            m.weight.add_(1.0)
        ema.update(m)
        assert torch.allclose(ema.module.weight, decay * (m.weight - 1.0) + (1 - decay) * m.weight, atol=1e-6)
    else:
        with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
            ExponentialMovingAverage(m, decay)


def test_ema_state_roundtrip():
    a, b = _resumed_average_matches(lambda m: ExponentialMovingAverage(m, 0.8), 3, 1)
    assert a.state() == {"t": 4, "decay": 0.8} and b.t == 4


def test_beta_weights_refuse_bad_arguments():
    with pytest.raises(ValueError, match=r"^total_steps must be >= 0$"):
        beta_weights(-1, 0.5)
    for b in (0.0, -0.5):
        with pytest.raises(ValueError, match=r"^beta must be > 0$"):
            beta_weights(10, b)


def test_error_messages_exactly():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"^decay must be in \[0, 1\)$"):
        ExponentialMovingAverage(m, 1.0)
    saved = BetaMovingAverage(m, 10, 0.5)
    with pytest.raises(ValueError, match=r"^BMA state was saved for another schedule$"):
        BetaMovingAverage(m, 9, 0.5).load_state(saved.state(), saved.state_tensors())


def test_averaged_copies_are_frozen_fp32():
    m = torch.nn.Linear(3, 2)
    for avg in (BetaMovingAverage(m, 3, 0.5), ExponentialMovingAverage(m, 0.9)):
        assert not any(p.requires_grad for p in avg.module.parameters())
        assert avg.module is not m and not avg.module.training


def test_bma_restart_runs_the_schedule_again_from_the_current_average():
    """``restart`` (a benchmark that runs past T steps) makes the current average the new t = 0: the next T updates
    equal a fresh BMA whose zero-shot end is that average, and the (T+1)-th is refused again."""
    torch.manual_seed(2)
    m = torch.nn.Linear(4, 3)
    bma = BetaMovingAverage(m, 3, 0.5)
    for _ in range(3):
        with torch.no_grad():
            m.weight.add_(0.5)
        bma.update(m)
    bma.restart()
    w = beta_weights(3, 0.5)
    assert bma.t == 0 and bma.weight_sum == pytest.approx(float(w[0]))
    fresh = BetaMovingAverage(bma.module, 3, 0.5)
    for _ in range(3):
        with torch.no_grad():
            m.weight.add_(-0.25)
        assert bma.update(m) == pytest.approx(fresh.update(m))
    assert torch.allclose(bma.module.weight, fresh.module.weight, atol=1e-6)
    with pytest.raises(RuntimeError):
        bma.update(m)
