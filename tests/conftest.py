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
                    checkpoint_every=3)
        base.update(kw)
        return RunConfig(**base)

    return make
