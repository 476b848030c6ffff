import inspect
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(2)

TINY_DATA = {"shots": 4, "eval_per": 3}


@pytest.fixture
def tiny_cfg():
    from core.config import RunConfig

    def make(**kw):
        base = dict(model="tiny-random", steps=6, batch_size=8, data_options=dict(TINY_DATA), eval_every=3,
                    checkpoint_every=3, precision="fp32")  # the same numbers on CPUs with and without bf16 units
        base.update(kw)
        return RunConfig(**base)

    return make


# Test tiers (README, "Development"): `pytest -m fast` is the quick loop; CI runs everything. A module's tier is set
# here or by its own `pytestmark`; a test that starts a Python process is `subprocess` wherever it lives (read from
# its source, so the mark cannot drift from what the test does).
MODULE_TIERS = {"test_app_browser": "browser", "test_ddp": "torchrun", "test_load": "load",
                # modules whose tests train, serve the app or read real-data fixtures (seconds each)
                **dict.fromkeys(("test_app_api", "test_app_limits", "test_app_runs", "test_bench_quick", "test_cli",
                                 "test_engine", "test_engine_method", "test_explore", "test_models", "test_real_data",
                                 "test_reliability", "test_security", "test_space", "test_sweep", "test_world",
                                 "test_images", "test_evaluator", "test_runstore"), "slow")}
SLOW_TIERS = ("browser", "subprocess", "torchrun", "load", "slow")
_SPAWNS = ("subprocess.", "sys.executable", "Popen(")


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = MODULE_TIERS.get(item.module.__name__.rsplit(".", 1)[-1])
        if tier:
            item.add_marker(tier)
        fn = getattr(item, "function", None)
        if fn is not None and any(s in inspect.getsource(fn) for s in _SPAWNS):
            item.add_marker("subprocess")
        if not any(item.get_closest_marker(t) for t in SLOW_TIERS):
            item.add_marker("fast")
