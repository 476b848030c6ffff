"""The averages collection (core/averages.py): which averages a run keeps, and BMA, EMA and WiSE-FT behind one
interface (update after each step, ``averaged`` for the output, a module to evaluate)."""

import copy

import pytest
import torch

from core.averages import Averages, AverageSpec, average_specs, parse_spec
from core.clipood import BetaMovingAverage, ExponentialMovingAverage, WiseFT, beta_weights, interpolate_weights

CFG = {"method": "clipood", "track": [], "beta": 0.5, "ema_decay": 0.9, "wiseft_alpha": 0.5}


def test_specs_put_the_method_average_first_and_name_non_default_values():
    assert average_specs(CFG) == [AverageSpec("bma", "bma", 0.5)]
    cfg = {**CFG, "method": "wiseft", "track": ["bma", "wiseft", "bma:0.1", "ema:0.9", "wiseft:0.25", "bma:0.5"]}
    assert average_specs(cfg) == [AverageSpec("wiseft", "wiseft", 0.5), AverageSpec("bma", "bma", 0.5),
                                  AverageSpec("bma:0.1", "bma", 0.1), AverageSpec("ema", "ema", 0.9),
                                  AverageSpec("wiseft:0.25", "wiseft", 0.25)]
    assert average_specs({**CFG, "method": "finetune"}) == []
    with pytest.raises(ValueError, match="unknown average 'swa'"):
        parse_spec("swa", CFG)


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def test_collection_updates_every_average_and_returns_the_bma_share():
    model = _model()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    avgs = Averages.for_run({**CFG, "track": ["ema", "wiseft", "bma:0.1"]}, model, theta0, total_steps=4)
    assert list(avgs) == ["bma", "ema", "wiseft", "bma:0.1"] and len(avgs) == 4
    assert isinstance(avgs["wiseft"], WiseFT) and isinstance(avgs["ema"], ExponentialMovingAverage)
    assert list(avgs.checkpointed()) == ["bma", "ema", "bma:0.1"]
    with torch.no_grad():
        model.weight.add_(1.0)
    w = beta_weights(4, 0.5)
    assert avgs.update(model) == pytest.approx(float(w[1] / w.sum()))
    assert avgs["bma"].t == avgs["bma:0.1"].t == avgs["ema"].t == 1
    assert Averages({"bma:0.1": BetaMovingAverage(model, 4, 0.1)}).update(model) is None  # only "bma" reports


def test_wiseft_is_an_average_like_the_others():
    model = _model()
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    avgs = Averages({"wiseft": WiseFT(theta0, 0.25), "ema": ExponentialMovingAverage(model, 0.5)})
    with torch.no_grad():
        model.weight.add_(2.0)
    avgs.update(model)
    out = avgs["wiseft"].averaged(model.state_dict())
    assert torch.allclose(out["weight"], theta0["weight"] + 0.5)
    assert torch.equal(out["bias"], interpolate_weights(theta0, model.state_dict(), 0.25)["bias"])
    scratch = copy.deepcopy(model)
    assert avgs.module("wiseft", model, scratch) is scratch and torch.allclose(scratch.weight, out["weight"])
    assert avgs.module("ema", model, scratch) is avgs["ema"].module
    assert torch.allclose(avgs["ema"].averaged()["weight"], theta0["weight"] + 1.0)


def test_bma_restart_starts_a_new_schedule_from_the_current_average():
    model = _model()
    bma = BetaMovingAverage(model, 2, 0.5)
    bma.update(model)
    bma.update(model)
    with pytest.raises(RuntimeError):
        bma.update(model)
    held = bma.module.weight.clone()
    bma.restart()
    assert bma.t == 0 and bma.weight_sum == pytest.approx(float(bma.weights[0]))
    assert torch.equal(bma.module.weight, held)
    bma.update(model)
    assert bma.t == 1
