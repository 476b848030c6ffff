"""The three settings' splits: disjoint, complete, and candidate sets as specified."""

import numpy as np
import pytest

from core.data.splits import make_splits
from core.data.table import DatasetError, ImageTable, split_pool


def _table(n_per=10, classes=6, domains=("a", "b", "c", "d")):
    labels, doms = [], []
    for d in range(len(domains)):
        for c in range(classes):
            labels += [c] * n_per
            doms += [d] * n_per
    labels, doms = np.array(labels), np.array(doms)
    return ImageTable("fixture", [f"class{c}" for c in range(classes)], list(domains), labels, doms,
                      split_pool(doms, 0.2, 0), lambda idx: [None] * len(idx))


def test_split_pool_is_80_20_per_domain():
    t = _table()
    for d in range(4):
        m = t.domain_ids == d
        assert t.is_test[m].sum() == round(m.sum() * 0.2)


def test_domain_shift():
    t = _table()
    s = make_splits(t, "domain_shift", ["a", "b"], ["c", "d"])
    src = np.isin(t.domain_ids, [0, 1])
    assert set(s.train) | set(s.evals["id"].indices) == set(np.flatnonzero(src))
    assert not set(s.train) & set(s.evals["id"].indices)
    assert set(s.evals["ood"].indices) == set(np.flatnonzero(~src))
    assert not set(s.evals["ood"].indices) & (set(s.train) | set(s.evals["id"].indices))
    assert set(s.evals["ood/c"].indices) | set(s.evals["ood/d"].indices) == set(s.evals["ood"].indices)
    assert s.train_classes == list(range(6)) and s.evals["ood"].candidates == list(range(6))


def test_open_class():
    t = _table()
    s = make_splits(t, "open_class", ["a", "b"])
    base, new = s.base, s.new
    assert base == [0, 1, 2] and new == [3, 4, 5]
    assert set(t.labels[s.train]) == set(base)
    assert set(t.labels[s.evals["base"].indices]) == set(base) and s.evals["base"].candidates == base
    assert set(t.labels[s.evals["new"].indices]) == set(new) and s.evals["new"].candidates == new
    everything = [s.train, s.evals["base"].indices, s.evals["new"].indices]
    assert sum(map(len, everything)) == len(set(np.concatenate(everything)))
    assert not t.is_test[s.train].any() and t.is_test[s.evals["new"].indices].all()
    assert set(t.domain_ids[np.concatenate(everything)]) == {0, 1}
    assert s.harmonic == {"hm": ("base", "new")}


def test_open_class_custom_base():
    t = _table()
    s = make_splits(t, "open_class", None, None, ["class1", "class4"])
    assert s.base == [1, 4] and s.new == [0, 2, 3, 5]


def test_in_the_wild():
    t = _table()
    s = make_splits(t, "in_the_wild", ["a"], ["c", "d"])
    assert set(t.labels[s.train]) == {0, 1, 2} and set(t.domain_ids[s.train]) == {0}
    ob, on = s.evals["ood_base"], s.evals["ood_new"]
    assert set(t.labels[ob.indices]) == {0, 1, 2} and set(t.labels[on.indices]) == {3, 4, 5}
    assert ob.candidates == on.candidates == list(range(6))
    assert set(ob.indices) | set(on.indices) == set(np.flatnonzero(np.isin(t.domain_ids, [2, 3])))
    assert s.evals["id"].candidates == [0, 1, 2] and not set(s.evals["id"].indices) & set(s.train)
    assert not np.isin(t.domain_ids[s.train], [1]).any()


@pytest.mark.parametrize("kw,msg", [
    (dict(setting="domain_shift", sources=["a", "b", "c", "d"]), "target"),
    (dict(setting="domain_shift", sources=["a"], targets=["a"]), "overlap"),
    (dict(setting="domain_shift", sources=["zz"]), "unknown domain"),
    (dict(setting="open_class", base_classes=["nope"]), "base classes"),
    (dict(setting="nonsense"), "setting"),
])
def test_bad_split_requests(kw, msg):
    t = _table()
    setting = kw.pop("setting")
    with pytest.raises(DatasetError, match=msg):
        make_splits(t, setting, kw.get("sources"), kw.get("targets"), kw.get("base_classes"))


def test_one_class_is_rejected():
    t = _table(classes=1)
    with pytest.raises(DatasetError, match="at least two"):
        make_splits(t, "domain_shift", ["a"], ["b"])


def test_toy_world_splits_are_disjoint():
    from core.data import open_dataset

    t = open_dataset("toy-shapes", seed=0, shots=3, eval_per=2)
    s = make_splits(t, "in_the_wild")
    assert s.sources == ["photo", "cartoon"] and s.targets == ["sketch", "painting", "pixel", "infrared"]
    all_eval = np.concatenate([e.indices for n, e in s.evals.items()])
    assert not set(s.train) & set(all_eval)
    assert len(s.train) == 8 * 2 * 3


def test_toy_world_default_base_holds_one_misnamed_pair_and_splits_the_other():
    from core.data import open_dataset
    from core.data.toy import TOY_BASE
    from core.world.captions import MISNOMER_PAIRS

    t = open_dataset("toy-shapes", seed=0, shots=1, eval_per=1)
    s = make_splits(t, "open_class")
    assert s.base == sorted(t.classes.index(n) for n in TOY_BASE) and len(s.base) == len(s.new) == 8
    assert s.new == [c for c in range(16) if c not in s.base]
    base_names = {t.classes[i] for i in s.base}
    (a, b), (c, d) = MISNOMER_PAIRS
    assert a in base_names and b in base_names, "labelled base data must fix the first pair"
    assert (c in base_names) != (d in base_names), "the second pair straddles: neither half holds both names"
    assert make_splits(t, "in_the_wild").base == s.base  # one default for both settings
    assert make_splits(t, "open_class", base_classes=["circle", "square"]).base == [0, 1]


@pytest.mark.parametrize("k", [7, 37, 47, 101])
def test_odd_class_counts_ceil_for_open_class_floor_in_the_wild(k):
    """CoOp's subsample_classes takes base = labels[:ceil(K/2)]; CLIPood's converter_domainbed takes floor(K/2)."""
    import math

    t = _table(n_per=5, classes=k)
    oc = make_splits(t, "open_class", ["a"])
    assert oc.base == list(range(math.ceil(k / 2))) and oc.new == list(range(math.ceil(k / 2), k))
    wild = make_splits(t, "in_the_wild", ["a"], ["c"])
    assert wild.base == list(range(k // 2)) and wild.new == list(range(k // 2, k))


def test_in_the_wild_total_is_every_target_image_among_all_classes():
    t = _table(classes=7)
    s = make_splits(t, "in_the_wild", ["a"], ["c", "d"])
    total = s.evals["total"]
    assert sorted(total.indices) == sorted(np.concatenate([s.evals["ood_base"].indices, s.evals["ood_new"].indices]))
    assert total.candidates == list(range(7))


@pytest.mark.parametrize("k", [2, 7, 16, 47])
def test_default_base_count(k):
    import math

    from core.data.splits import default_base_count

    assert default_base_count(k, "open_class") == math.ceil(k / 2)
    assert default_base_count(k, "in_the_wild") == math.floor(k / 2)


@pytest.mark.parametrize("a,b", [(80.0, 40.0), (50.0, 50.0), (0.0, 30.0), (0.0, 0.0), (100.0, 1.0)])
def test_harmonic_mean(a, b):
    from core.data.splits import harmonic_mean

    ref = 0.0 if a == 0 or b == 0 else 2 / (1 / a + 1 / b)
    assert harmonic_mean(a, b) == pytest.approx(ref) and harmonic_mean(b, a) == pytest.approx(ref)


def test_describe_counts_every_split():
    s = make_splits(_table(), "open_class", ["a", "b"])
    d = s.describe()
    assert d["train"] == len(s.train) > 0
    assert {k: d[k] for k in s.evals} == {k: len(v.indices) for k, v in s.evals.items()}
    assert set(d) == {"train", *s.evals}


def test_every_split_records_what_it_was_made_of():
    """The Splits object is what the engine, the Studio and the summary read: setting, domains, classes, harmonic
    pairs and candidate sets, exactly."""
    t = _table()
    ds = make_splits(t, "domain_shift", ["a", "b"], ["c", "d"])
    assert (ds.setting, ds.sources, ds.targets, ds.harmonic) == ("domain_shift", ["a", "b"], ["c", "d"], {})
    assert ds.train_classes == list(range(6)) and ds.base == [] and ds.new == []
    assert all(ds.evals[f"ood/{d}"].candidates == list(range(6)) for d in ("c", "d"))
    assert ds.evals["id"].candidates == list(range(6))
    oc = make_splits(t, "open_class", ["a", "b"])
    assert (oc.setting, oc.sources, oc.targets, oc.harmonic) == ("open_class", ["a", "b"], [], {"hm": ("base", "new")})
    assert oc.base == [0, 1, 2] and oc.new == [3, 4, 5] and oc.train_classes == [0, 1, 2]
    iw = make_splits(t, "in_the_wild", ["a"], ["c"])
    assert (iw.setting, iw.sources, iw.targets) == ("in_the_wild", ["a"], ["c"])
    assert iw.harmonic == {"hm": ("ood_base", "ood_new")} and iw.train_classes == iw.base == [0, 1, 2]
    assert iw.new == [3, 4, 5]


def test_default_domains():
    t = _table()
    s = make_splits(t, "domain_shift")
    assert s.sources == ["a", "b", "c"] and s.targets == ["d"], "all but the last domain are sources by default"
    s = make_splits(t, "domain_shift", ["a"])
    assert s.targets == ["b", "c", "d"], "targets default to every domain that is not a source"


@pytest.mark.parametrize("kw, message", [
    (dict(setting="open_world"), "setting must be one of domain_shift, open_class, in_the_wild (got 'open_world')"),
    (dict(setting="domain_shift", sources=["a", "b"], targets=["b", "c"]), "sources and targets overlap: ['b']"),
    (dict(setting="domain_shift", sources=["zz"], targets=["c"]), "sources: unknown domain 'zz'"),
    (dict(setting="domain_shift", sources=["a"], targets=["zz"]), "targets: unknown domain 'zz'"),
    (dict(setting="open_class", base_classes=[f"class{c}" for c in range(6)]),
     "open-class settings need at least one base and one new class"),
])
def test_split_errors_say_what_is_wrong(kw, message):
    with pytest.raises(DatasetError) as e:
        make_splits(_table(), **kw)
    assert message in str(e.value)


def test_two_classes_are_enough():
    t = _table(classes=2)
    s = make_splits(t, "open_class", ["a"])
    assert s.base == [0] and s.new == [1] and len(s.train) > 0
