"""Data-parallel training: torchrun with 2 CPU processes (gloo) matches a single-process run; only rank 0 writes."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

ARGS = ["train", "--model", "tiny-random", "--steps", "4", "--batch-size", "8", "--lr", "1e-3", "--data", "shots=4",
        "--data", "eval_per=2", "--eval-every", "0", "--checkpoint-every", "2", "--quiet", "--device", "cpu",
        "--precision", "fp32"]  # (bf16 autocast, on a CPU with bf16 units, would round the two runs differently)


def _losses(run):
    return [json.loads(x)["loss"] for x in (run / "events.jsonl").read_text().splitlines()
            if json.loads(x)["kind"] == "step"]


def test_two_process_gloo_matches_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "core", *ARGS, "--out", str(tmp_path), "--run-id", "single"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                          "-m", "core", *ARGS, "--out", str(tmp_path / "ddp"), "--run-id", "ddp"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == ["ddp"]  # rank 1 wrote nothing of its own
    s = json.loads((tmp_path / "ddp/ddp/summary.json").read_text())
    assert s["status"] == "done" and s["steps_done"] == 4
    a, b = _losses(tmp_path / "single"), _losses(tmp_path / "ddp/ddp")
    assert len(a) == len(b) == 4
    assert all(abs(x - y) < 1e-4 for x, y in zip(a, b)), (a, b)


RANK_SCRIPT = """
import json, os, sys, threading
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from core.config import RunConfig
from core.engine import train


class StopAfter(threading.Event):
    '''A stop button pressed on this rank only, after the engine has looked at it {n} times.'''
    calls = 0

    def is_set(self):
        self.calls += 1
        return self.calls > {n}


rank = int(os.environ["RANK"])
cfg = RunConfig(model="tiny-random", steps=8, batch_size=4, lr=1e-3, data_options={{"shots": 4, "eval_per": 2}},
                eval_every=0, checkpoint_every=0, device="cpu")
stop = StopAfter() if rank == {stopper} else threading.Event()
last = None
for ev in train(cfg, {run!r}, stop):
    last = ev
print(json.dumps({{"rank": rank, "status": last.status, "reason": last.reason}}))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(tmp_path, stopper: int, n: int):
    run = tmp_path / "run"
    script = RANK_SCRIPT.format(root=str(ROOT), n=n, stopper=stopper, run=str(run))
    base = {**os.environ, "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port())}
    logs = [(open(tmp_path / f"rank{r}.out", "w+"), open(tmp_path / f"rank{r}.err", "w+")) for r in (0, 1)]
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=o, stderr=e, text=True,
                              env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}) for r, (o, e) in enumerate(logs)]
    outs = []
    try:
        for p, (o, e) in zip(procs, logs):
            p.wait(timeout=300)  # a rank left blocking in an all-reduce would time out here
            o.seek(0), e.seek(0)
            assert p.returncode == 0, e.read()[-3000:]
            outs.append(json.loads(o.read().strip().splitlines()[-1]))
    finally:
        for p, (o, e) in zip(procs, logs):
            if p.poll() is None:
                p.kill()
            o.close(), e.close()
    return run, outs


@pytest.mark.parametrize("stopper", [1, 0])
def test_a_stop_seen_by_one_rank_stops_every_rank_at_the_same_step(tmp_path, stopper):
    run, outs = _two_ranks(tmp_path, stopper=stopper, n=3)
    assert [o["status"] for o in outs] == ["cancelled", "cancelled"]
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "cancelled" and s["steps_done"] == 3 and "stopped by the user at step 3/8" in s["reason"]
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["kind"] == "checkpoint"] == [3]  # one checkpoint, by rank 0
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.safetensors"]
    assert max(e["step"] for e in events if e["kind"] == "step") == 3
