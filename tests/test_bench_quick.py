"""The benchmark suite's quick path on tiny sizes: every section runs, the JSON has its schema, and every ratio
and rate is a positive finite number. No timing thresholds: timings belong in BENCHMARKS.md, not in tests."""

import dataclasses
import json
import math

import pytest
from conftest import TINY_DATA


@pytest.fixture(autouse=True)
def one_thread():
    """No timing is asserted here, and 2 threads on a busy 2-core machine make tiny ops 100x slower (OpenMP
    spin-waits): run these tests (and the runs they spawn) on one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pos(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _common_schema(d: dict, suite: str) -> None:
    assert d["schema"] == 1 and d["suite"] == suite
    for k in ("quick", "command", "started", "plan", "machine", "sections", "errors", "targets", "wall_s"):
        assert k in d, k
    assert not d["errors"], d["errors"]
    for k in ("cpu", "torch", "logical_cpus", "torch_threads"):
        assert k in d["machine"], k
    assert d["targets"], "no targets evaluated"
    for t in d["targets"]:
        assert set(t) >= {"name", "value", "target", "met", "note"}
        assert t["met"] in (True, False, None)
        assert _pos(t["value"]) or t["value"] == 0, t


def _step_schema(r: dict) -> None:
    assert r["rows"] and {x["name"] for x in r["rows"]} >= {"ours", "seed"}
    for x in r["rows"]:
        assert "error" not in x, x
        for k in ("images_per_s", "ms_per_step", "speedup_vs_seed"):
            assert _pos(x[k]), (x["name"], k, x[k])
    b = r["bma"]
    for k in ("ours_ms", "ours_fraction_of_step", "seed_loop_ms", "seed_loop_fraction_of_seed_step",
              "speedup_vs_seed_loop"):
        assert _pos(b[k]), (k, b[k])
    assert b["params"] > 0


def test_cpu_suite_quick_tiny(tmp_path):
    from bench.suite import QUICK_CPU, print_cpu, run_cpu

    plan = dataclasses.replace(
        QUICK_CPU, arch="tiny-random", batch=8, calls=1, warmup=1, repeats=2, model="tiny-random",
        data_options=dict(TINY_DATA), eval_repeats=1, latency_repeats=2, latency_steps=4, default_run_steps=2,
        umap_points=60, umap_warm=1, umap_cached_cold=False, umap_fresh_cache=False,
        render_batch=96, render_repeats=2)
    out = tmp_path / "cpu.json"
    d = run_cpu(out, quick=True, plan=plan, command="test")
    on_disk = json.loads(out.read_text())
    assert on_disk["sections"].keys() == d["sections"].keys()
    _common_schema(on_disk, "cpu")
    s = on_disk["sections"]
    assert set(s) == {"step", "first_events", "default_run", "eval", "umap", "render"}
    _step_schema(s["step"]["main"])
    assert s["step"]["main"]["step_code_path"].startswith("core.step.Trainer.step")  # the engine's own step
    assert _pos(s["render"]["stream_images_per_s"]) and _pos(s["render"]["grid_images_per_s"])
    assert _pos(s["eval"]["images_per_s"]) and _pos(s["eval"]["text_features_s"])
    fe = s["first_events"]
    # the full zero-shot evaluation now comes at the end of a run: the first curve point is the subsample one
    for k in ("start_s", "first_curve_eval_s", "first_step_s", "first_curve_point_s"):
        assert _pos(fe["cold"][k]) and _pos(fe["warm"][k]), k
    assert fe["cold"]["text_feature_computations"] <= 1
    assert fe["warm_text_feature_computations"] == [0]  # computed once, then reused
    dr = s["default_run"]
    assert dr["steps"] == 2 and _pos(dr["wall_s"]) and _pos(dr["peak_rss_mb"])
    assert _pos(dr["estimated_default_wall_s"])
    um = s["umap"]
    assert _pos(um["warm_s"]) and _pos(um["cold_s"]) and _pos(um["peak_rss_mb"])
    text = print_cpu(on_disk)
    assert "Targets (issue 6)" in text and "ours" in text


def test_gpu_suite_code_paths_on_cpu(tmp_path):
    """The GPU suite's code (check, steps at two batches with FLOP counts, eval, targets, table) on the CPU."""
    from bench.suite import QUICK_GPU, print_gpu, run_gpu

    plan = dataclasses.replace(QUICK_GPU, arch="tiny-random", batches=(4, 8), classes=5, calls=1, warmup=1,
                               repeats=2, eval_images=16, check=(("tiny-random", 4),), check_steps=2,
                               peak_tflops=1.0, compile_batch=8,
                               compile_variant={"foreach": True})  # the section's code, without compiling
    d = run_gpu(tmp_path / "gpu.json", quick=True, plan=plan, command="test", device="cpu")
    on_disk = json.loads((tmp_path / "gpu.json").read_text())
    _common_schema(on_disk, "gpu")
    s = on_disk["sections"]
    # on the CPU both sides of the check run the same fp32 code, so every comparison must hold
    assert s["check_tiny-random"]["pass"] is True, s["check_tiny-random"]["checks"]
    for b in (4, 8):
        r = s[f"step_b{b}"]
        _step_schema(r)
        assert _pos(r["flops_per_step"]) and _pos(r["mfu"]) and _pos(r["achieved_tflops"])
    assert _pos(s["eval"]["images_per_s"])
    comp = s["compile_b8"]
    assert "bma" not in comp and all(_pos(x["speedup_vs_ours"]) for x in comp["rows"])
    assert "Targets (issue 6)" in print_gpu(d)


def test_check_passes_on_cpu_bf16():
    from bench.check import check

    r = check("cpu", "tiny-random", batch=4, steps=2, amp=True, classes=5, seed_half=True)
    assert r["pass"], r["checks"]
    assert {c["name"] for c in r["checks"]} == {"loss", "grad_cosine", "loss_trajectory", "bma_trajectory",
                                                 "bma_update", "seed_loss"}


@pytest.mark.parametrize("name,expected", [("NVIDIA H100 80GB HBM3", 989.4), ("NVIDIA H100 PCIe", 756.0),
                                           ("NVIDIA H200", 989.4), ("NVIDIA H200 NVL", 835.0),
                                           ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA GeForce RTX 4090", None)])
def test_peak_table(name, expected):
    from bench.hardware import bf16_peak_tflops

    assert bf16_peak_tflops(name)[0] == expected


def test_seed_design_converts_like_openai_clip():
    """fp16 Linear/Conv/attention weights and proj; LayerNorms and embeddings stay fp32; a step keeps that."""
    import torch

    from bench.seed_design import SeedStep
    from bench.steps import build_visual, synthetic_batch

    v = build_visual("tiny-random", cast_dtype=torch.float16)
    x, y, t = synthetic_batch(v, 4, 5, "cpu")
    s = SeedStep(v, t, 0.3, 100.0, half=True)
    loss = s.step(x, y)
    assert math.isfinite(loss)
    dt = {n: p.dtype for n, p in v.named_parameters()}
    assert dt["conv1.weight"] == torch.float16 and dt["proj"] == torch.float16
    assert dt["ln_pre.weight"] == torch.float32 and dt["class_embedding"] == torch.float32
    assert all(p.dtype == torch.float16 for n, p in s.bma.moving_avg.named_parameters() if n == "proj")
