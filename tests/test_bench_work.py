"""bench.work: a run's floating-point work, counted on the run itself and split by the event it led to."""

import dataclasses

import pytest

from bench.work import floor_s, run_gflop

pytestmark = pytest.mark.slow  # trains (tiny runs, seconds)


def test_training_work_grows_with_steps_and_evaluation_work_with_evaluations(tmp_path, tiny_cfg):
    from core.config import resolve
    from core.explore import zeroshot_reference

    base = tiny_cfg(steps=2, eval_every=0, checkpoint_every=0)
    zeroshot_reference(resolve(base))  # the zero-shot pass is kept per process: none of the runs below pays for it
    two = run_gflop(base, tmp_path / "two")
    four = run_gflop(dataclasses.replace(base, steps=4), tmp_path / "four")
    evaluated = run_gflop(dataclasses.replace(base, steps=4, eval_every=2), tmp_path / "evaluated")
    assert two["training"] > 0 and two["evaluation"] > 0
    assert four["training"] == pytest.approx(2 * two["training"], rel=1e-6)  # every step is the same batch shape
    assert four["evaluation"] == pytest.approx(two["evaluation"], rel=1e-6)  # the same passes at the end
    # one more curve point (step 2) is one more pass of the current model, and no training work
    assert evaluated["training"] == pytest.approx(four["training"], rel=1e-6)
    assert evaluated["evaluation"] > four["evaluation"] * 1.2


def test_floor_is_work_over_rate():
    assert floor_s(2000.0, 100.0) == 20.0
    assert floor_s(2000.0, 200.0) < floor_s(2000.0, 100.0)
