"""Data-parallel training: torchrun with 2 CPU processes (gloo) matches a single-process run; only rank 0 writes."""

import json
import os
import subprocess
import sys

from conftest import ROOT

ARGS = ["train", "--model", "tiny-random", "--steps", "4", "--batch-size", "8", "--lr", "1e-3", "--data", "shots=4",
        "--data", "eval_per=2", "--eval-every", "0", "--checkpoint-every", "2", "--quiet", "--device", "cpu"]


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
