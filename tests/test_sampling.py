"""Which rows each optimiser step sees (``core/sampling.py``): seeded epoch permutations, pooled or per domain."""

import numpy as np
import pytest

from core.sampling import batch_indices, make_sampler


def _order(seed, n=20, b=8, steps=5, stream=""):
    return np.concatenate([batch_indices(n, b, k, seed, stream) for k in range(steps)])


def test_batch_order_is_a_seeded_permutation_per_epoch():
    n = 20
    a, b = _order(0), _order(1)
    assert (a != b).any(), "different seeds must give different batch orders"
    assert (a == _order(0)).all(), "the same seed gives the same order"
    for o in (a, b):
        assert sorted(o[:n]) == list(range(n)) and sorted(o[n:2 * n]) == list(range(n)), "every epoch covers the pool"
    assert (a[:n] != a[n:2 * n]).any(), "each epoch is a new permutation"


def test_each_step_continues_where_the_last_one_stopped():
    n, b = 10, 4
    flat = np.concatenate([batch_indices(n, b, k, 3) for k in range(5)])
    assert len(flat) == 20 and all(len(batch_indices(n, b, k, 3)) == b for k in range(5))
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))


def test_streams_and_batch_sizes_are_independent():
    assert (_order(0, stream="domain0") != _order(0, stream="domain1")).any()
    assert (_order(0, stream="") != _order(0, stream="domain0")).any()
    assert len(batch_indices(3, 7, 0, 0)) == 7, "a batch larger than the pool wraps into the next epochs"
    assert set(batch_indices(3, 7, 0, 0)) == {0, 1, 2}


def test_pooled_sampler_maps_positions_to_rows():
    train = np.arange(500, 520)
    sample = make_sampler(train, np.zeros(20, dtype=int), 8, seed=4)
    assert (sample(2) == train[batch_indices(20, 8, 2, 4)]).all()
    assert (sample(0) != make_sampler(train, np.zeros(20, dtype=int), 8, seed=5)(0)).any()


def test_per_domain_sampler_is_seeded_and_balanced():
    train = np.arange(40)
    domains = np.array([0] * 30 + [1] * 10)
    a = make_sampler(train, domains, 4, seed=0, kind="per_domain")
    b = make_sampler(train, domains, 4, seed=1, kind="per_domain")
    assert (a(0)[:4] < 30).all() and (a(0)[4:] >= 30).all()
    assert any((a(k) != b(k)).any() for k in range(3))
    assert (a(1)[4:] == 30 + batch_indices(10, 4, 1, 0, "domain1")).all()


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler(np.arange(4), np.zeros(4, dtype=int), 2, 0, kind="shuffled")


def test_order_keys_are_stable_so_saved_runs_resume_on_the_same_batches():
    """A run folder replays its batches on --resume, also one written by an earlier version: the pooled order is the
    permutation seeded by ("epoch", seed, epoch), a per-domain stream's by ("epoch", seed, stream, epoch)."""
    from core.world.scenes import stable_seed

    perm = np.random.default_rng(stable_seed("epoch", 7, 0)).permutation(12)
    assert (batch_indices(12, 5, 0, 7) == perm[:5]).all()
    perm_d = np.random.default_rng(stable_seed("epoch", 7, "domain1", 0)).permutation(12)
    assert (batch_indices(12, 5, 0, 7, "domain1") == perm_d[:5]).all()
