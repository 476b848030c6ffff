"""The checkpoint format (core/checkpoint.py) on a tiny module: a round trip restores weights, optimiser state and
averages exactly; damaged or foreign files are refused with one line and never unpickled."""

import pickle

import pytest
import torch

from core.averages import Averages
from core.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_result,
    read_weight_sets,
    save_checkpoint,
    save_result,
)
from core.clipood import BetaMovingAverage, ExponentialMovingAverage, WiseFT


def _parts(seed: int, steps: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    theta0 = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    averages = Averages({"bma": BetaMovingAverage(model, 10, 0.5), "ema": ExponentialMovingAverage(model, 0.8),
                         "bma:0.1": BetaMovingAverage(model, 10, 0.1), "wiseft": WiseFT(theta0, 0.5)})
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        averages.update(model)
    return model, opt, averages


def test_round_trip_restores_weights_optimiser_and_averages(tmp_path):
    path = tmp_path / "last.safetensors"
    model, opt, averages = _parts(0, steps=3)
    save_checkpoint(path, 3, model, opt, averages)
    fresh, fresh_opt, fresh_avg = _parts(1, steps=0)
    assert load_checkpoint(path, fresh, fresh_opt, fresh_avg) == 3
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    for name in ("bma", "ema", "bma:0.1"):
        assert fresh_avg[name].t == 3 and fresh_avg[name].state() == averages[name].state()
        for k, v in averages[name].module.state_dict().items():
            assert torch.equal(fresh_avg[name].module.state_dict()[k], v), (name, k)
    for pid, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(fresh_opt.state_dict()["state"][pid][k]), torch.as_tensor(v)), k
    # the next step after a resume equals the next step of the run that never stopped
    x = torch.randn(5, 4)
    for m, o, a in ((model, opt, averages), (fresh, fresh_opt, fresh_avg)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
        a.update(m)
    assert torch.equal(model[0].weight, fresh[0].weight)
    assert torch.equal(averages["bma"].module[0].weight, fresh_avg["bma"].module[0].weight)


def test_keys_and_weight_sets_keep_the_saved_layout(tmp_path):
    """Runs saved before this module existed load: visual.*, opt.<id>.*, avg.<name>.* (a name may hold a dot)."""
    from safetensors.torch import load_file

    path = tmp_path / "last.safetensors"
    model, opt, averages = _parts(0, steps=2)
    save_checkpoint(path, 2, model, opt, averages)
    keys = set(load_file(path))
    assert {"visual.0.weight", "visual.1.bias", "avg.bma.0.weight", "avg.ema.1.weight", "avg.bma:0.1.0.bias",
            "opt.0.exp_avg", "opt.0.step"} <= keys
    assert not any(k.startswith("avg.wiseft.") for k in keys)  # WiSE-FT needs no saved state
    last, sets = read_weight_sets(path)
    assert list(sets) == ["bma", "bma:0.1", "ema"] and torch.equal(last["0.weight"], model[0].weight)
    assert torch.equal(sets["bma:0.1"]["0.weight"], averages["bma:0.1"].module[0].weight)


def test_result_round_trip(tmp_path):
    model, *_ = _parts(0, steps=0)
    save_result(tmp_path / "result.safetensors", model.state_dict(), "clipood")
    assert torch.equal(load_result(tmp_path / "result.safetensors")["0.weight"], model[0].weight)


class _Marker:
    def __reduce__(self):
        return (print, ("UNPICKLED",))


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage" * 50, "pickle", "truncated", "no-meta"])
def test_a_bad_file_is_refused_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "last.safetensors"
    model, opt, averages = _parts(0, steps=1)
    save_checkpoint(path, 1, model, opt, averages)
    if content == "pickle":
        path.write_bytes(pickle.dumps({"visual.0.weight": _Marker()}))
    elif content == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif content == "no-meta":
        save_result(path, model.state_dict(), "finetune")
    else:
        path.write_bytes(content)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, model, opt, averages)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "not a readable safetensors checkpoint" in msg
    assert e.value.code == "bad_checkpoint" and e.value.detail["path"] == str(path)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded
    assert "UNPICKLED" not in capsys.readouterr().out
    with pytest.raises(CheckpointError):
        load_result(tmp_path / "missing.safetensors")
