"""The trainer step (``core/step.py``) on a tiny module: loss, update, averages and result weights, in milliseconds."""

import pytest
import torch
import torch.nn.functional as F

from core.averages import Averages
from core.clipood import BetaMovingAverage, ExponentialMovingAverage, WiseFT, beta_weights
from core.methods import METHODS
from core.schedule import cosine_lr
from core.step import (
    NonFiniteLoss,
    Trainer,
    make_optimizer,
    optimiser_step,
    result_key,
    result_weights,
    step_loss,
    use_bf16,
)


def _toy(seed=0, k=5, d=8, n=16):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(6, d)
    with torch.no_grad():
        model.weight.copy_(torch.randn(d, 6, generator=g))
        model.bias.copy_(torch.randn(d, generator=g))
    x = torch.randn(n, 6, generator=g)
    text = F.normalize(torch.randn(k, d, generator=g), dim=-1)
    y = torch.randint(0, k, (n,), generator=g)
    return model, x, y, text


@pytest.mark.parametrize("lam", [0.0, 0.2, 0.7])
def test_step_loss_is_mms_with_the_given_lambda(lam):
    model, x, y, t = _toy()
    cos = F.normalize(model(x), dim=-1) @ t.t()
    ref = F.cross_entropy(30.0 * (cos + lam * (1 - t[y] @ t.t())), y)  # margin on every non-target class
    got = step_loss(model, x, y, t, lam, 30.0, amp=False)
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    assert got.dtype == torch.float32 and got.requires_grad
    if lam:
        assert got.item() > step_loss(model, x, y, t, 0.0, 30.0, amp=False).item()


def test_step_loss_uses_the_logit_scale():
    model, x, y, t = _toy(1)
    assert step_loss(model, x, y, t, 0.2, 10.0, False).item() != pytest.approx(
        step_loss(model, x, y, t, 0.2, 40.0, False).item(), rel=1e-3)


def test_optimiser_step_sets_lr_updates_weights_and_every_average():
    model, x, y, t = _toy(2)
    before = model.weight.detach().clone()
    opt = make_optimizer(model.parameters(), lr=0.5, weight_decay=0.0, device=torch.device("cpu"))
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    averages = Averages({"bma": BetaMovingAverage(model, 4, 0.5), "ema": ExponentialMovingAverage(model, 0.9),
                         "wiseft": WiseFT(theta0, 0.5)})
    share = optimiser_step(step_loss(model, x, y, t, 0.2, 30.0, False), model, opt, 1e-2, averages)
    assert all(g["lr"] == 1e-2 for g in opt.param_groups)
    delta = (model.weight.detach() - before).abs()
    assert delta.max().item() == pytest.approx(1e-2, rel=1e-3), "Adam's first step moves weights by the lr"
    w = beta_weights(4, 0.5)
    assert share == pytest.approx(float(w[1] / w.sum()))
    expected_bma = (w[0] * before.double() + w[1] * model.weight.detach().double()) / (w[0] + w[1])
    assert torch.allclose(averages["bma"].module.weight.double(), expected_bma, atol=1e-6)
    assert torch.allclose(averages["ema"].module.weight, 0.9 * before + 0.1 * model.weight.detach(), atol=1e-6)
    assert averages["bma"].t == 1 and averages["ema"].t == 1


def test_optimiser_step_without_bma_returns_none_and_applies_weight_decay():
    model, x, y, t = _toy(3)
    opt = make_optimizer(model.parameters(), lr=0.1, weight_decay=0.5, device=torch.device("cpu"))
    assert opt.param_groups[0]["weight_decay"] == 0.5 and isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == 0.1 and not opt.param_groups[0]["fused"]
    assert optimiser_step(step_loss(model, x, y, t, 0.0, 30.0, False), model, opt, 1e-3, Averages()) is None


def test_result_key_of_every_method():
    keys = {name: result_key(m.result) for name, m in METHODS.items()}
    assert keys["zeroshot"] is None
    assert keys["finetune"] == keys["mms"] == "current"
    assert keys["clipood"] == keys["bma"] == "bma" and keys["ema"] == "ema" and keys["wiseft"] == "wiseft"


def test_result_weights_of_every_kind():
    model, *_ = _toy(4)
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    bma = BetaMovingAverage(model, 2, 0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    bma.update(model)
    last = model.state_dict()
    assert result_weights("zeroshot", theta0, last, Averages()) is theta0
    assert result_weights("last", theta0, last, Averages()) is last
    wise = result_weights("wiseft", theta0, last, Averages({"wiseft": WiseFT(theta0, 0.25)}))
    assert torch.allclose(wise["weight"], theta0["weight"] + 0.25)
    assert torch.equal(result_weights("bma", theta0, last, Averages({"bma": bma}))["weight"], bma.module.weight)


@pytest.mark.parametrize("precision,device,units,expected", [
    ("auto", "cpu", False, False), ("auto", "cpu", True, True), ("auto", "cuda", False, True),
    ("auto", "meta", True, False), ("bf16", "cpu", False, True), ("fp32", "cuda", True, False),
    ("fp32", "cpu", True, False)])
def test_use_bf16(precision, device, units, expected, monkeypatch):
    """auto: CUDA, or a CPU whose bf16 units were detected; bf16/fp32 force either on any device."""
    import core.step

    class Cfg:
        pass

    monkeypatch.setattr(core.step, "cpu_bf16_units", lambda: units)
    c = Cfg()
    c.precision = precision
    assert use_bf16(c, torch.device(device)) is expected


def test_wiseft_entry_does_not_stop_the_other_averages():
    model, x, y, t = _toy(5)
    opt = make_optimizer(model.parameters(), lr=0.1, weight_decay=0.0, device=torch.device("cpu"))
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    averages = Averages({"wiseft": WiseFT(theta0, 0.5), "ema": ExponentialMovingAverage(model, 0.5),
                         "bma": BetaMovingAverage(model, 3, 0.5)})
    share = optimiser_step(step_loss(model, x, y, t, 0.0, 30.0, False), model, opt, 1e-2, averages)
    assert averages["ema"].t == 1 and averages["bma"].t == 1 and share is not None


def _trainer(model, t, total=6, lr=0.1, warmup=2, averages=None):
    opt = make_optimizer(model.parameters(), lr=lr, weight_decay=0.0, device=torch.device("cpu"))
    return Trainer(model, model, opt, averages or Averages({"bma": BetaMovingAverage(model, total, 0.5)}), t, 0.3,
                   30.0, False, lr, total, warmup)


def test_trainer_step_takes_the_scheduled_lr_and_returns_loss_and_share():
    model, x, y, t = _toy(6)
    trainer = _trainer(model, t)
    expected_loss = step_loss(model, x, y, t, 0.3, 30.0, False).item()
    w = beta_weights(6, 0.5)
    for step in range(3):
        out = trainer.step(step, x, y)
        assert out.lr == pytest.approx(cosine_lr(0.1, step, 6, 2)) and out.lr == trainer.opt.param_groups[0]["lr"]
        assert out.bma_weight == pytest.approx(float(w[step + 1] / w.sum()))
        if step == 0:
            assert out.loss == pytest.approx(expected_loss, rel=1e-6)
    assert trainer.averages["bma"].t == 3


def test_trainer_refuses_a_nan_loss_before_the_update():
    model, x, y, t = _toy(7)
    trainer = _trainer(model, t)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLoss) as e:
        trainer.step(4, x * float("nan"), y)
    assert e.value.step == 5 and e.value.loss != e.value.loss  # NaN
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trainer.averages["bma"].t == 0


@pytest.mark.parametrize("device,step,reads", [("cpu", 3, True), ("meta", 3, False), ("meta", 10, True),
                                               ("meta", 5, True)])
def test_trainer_reads_the_loss_every_step_on_cpu_else_every_tenth_and_the_last(device, step, reads):
    model, _, _, t = _toy(8)
    trainer = _trainer(model, t.to(device))
    assert trainer.reads_loss(step) is reads


def test_trainer_step_leaves_the_loss_unread_off_the_cadence_and_names_a_bad_loss(monkeypatch):
    """Off the read-back cadence (CUDA: not every step) a step returns no loss and runs no finite check; the
    NonFiniteLoss message says the value and the 1-based step."""
    model, x, y, t = _toy(9)
    trainer = _trainer(model, t)
    monkeypatch.setattr(Trainer, "reads_loss", lambda self, step: step % 2 == 0)
    assert trainer.step(0, x, y).loss is not None
    assert trainer.step(1, x * float("nan"), y).loss is None  # not read back: not checked on this step
    assert str(NonFiniteLoss(float("nan"), 7)) == "loss became nan at step 7"


def _attention_ops(amp: bool) -> set[str]:
    """The attention ops a training forward + backward of an attention layer runs on CPU (torch's profiler)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    model = lambda x: attn(x, x, x, need_weights=False)[0].mean(1)  # noqa: E731
    x, y, text = torch.randn(4, 5, 16), torch.tensor([0, 1, 2, 0]), F.normalize(torch.randn(3, 16), dim=-1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_loss(model, x, y, text, 0.2, 10.0, amp).backward()
    return {e.key for e in prof.key_averages() if "attention" in e.key}


def test_a_bf16_training_step_on_cpu_runs_the_math_attention_kernel():
    """On CPU under bf16 autocast the step's attention is the math kernel (its backward is plain matmuls; the fused
    CPU kernel's backward was the slowest op of an embedded-model step); without autocast torch chooses."""
    assert not any("flash" in k for k in _attention_ops(amp=True)), _attention_ops(amp=True)
    assert any("flash" in k for k in _attention_ops(amp=False)), _attention_ops(amp=False)
