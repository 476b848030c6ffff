"""The three evaluation settings as exact index splits over an :class:`ImageTable`.

- ``domain_shift``: train = train pool of the sources; ``id`` = test pool of the sources; ``ood`` = every image of
  the targets (also ``ood/<domain>``). All classes are candidates.
- ``open_class`` (base classes: ``base_classes``, else the table's ``default_base``, else the first ceil(K/2) in
  label order, as CoOp's ``subsample_classes``): train = train pool of the base classes; ``base`` = test pool of
  base classes among base names; ``new`` = test pool of new classes among new names; ``hm`` = their harmonic mean.
  Domains: the sources.
- ``in_the_wild`` (base: the first floor(K/2) classes, as the official ``converter_domainbed.py``): train = train
  pool of the base classes in the sources; ``id`` = test pool of the base classes in the sources (base names);
  ``ood_base`` / ``ood_new`` = every image of the targets among all class names; ``total`` = both together; ``hm``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .table import DatasetError, ImageTable

SETTINGS = ("domain_shift", "open_class", "in_the_wild")


@dataclass
class EvalSplit:
    indices: np.ndarray
    candidates: list[int]  # class indices the prediction is made among


@dataclass
class Splits:
    setting: str
    train: np.ndarray
    train_classes: list[int]  # candidate classes of the training loss
    evals: dict[str, EvalSplit]
    harmonic: dict[str, tuple[str, str]] = field(default_factory=dict)  # derived name -> (a, b)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    base: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)

    def describe(self) -> dict[str, int]:
        return {"train": len(self.train), **{k: len(v.indices) for k, v in self.evals.items()}}


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _domain_ids(table: ImageTable, names: list[str], what: str) -> list[int]:
    out = []
    for n in names:
        if n not in table.domains:
            raise DatasetError(f"{what}: unknown domain {n!r} in {table.name}; domains are {', '.join(table.domains)}")
        out.append(table.domains.index(n))
    return out


def resolve_domains(table: ImageTable, setting: str, sources: list[str] | None,
                    targets: list[str] | None) -> tuple[list[str], list[str]]:
    if setting == "open_class":
        src = list(sources or table.default_sources or table.domains)
        return src, []
    src = list(sources or table.default_sources or table.domains[:-1])
    tgt = list(targets or ([d for d in table.default_targets if d not in src] or
                           [d for d in table.domains if d not in src]))
    if set(src) & set(tgt):
        raise DatasetError(f"sources and targets overlap: {sorted(set(src) & set(tgt))}")
    if not tgt:
        raise DatasetError(f"{setting} needs at least one target domain not among the sources")
    return src, tgt


def default_base_count(k: int, setting: str) -> int:
    """Base classes by default: ceil(K/2) for open class (KaiyangZhou/CoOp datasets/oxford_pets.py:163,
    ``m = math.ceil(n / 2)``), floor(K/2) in the wild (thuml/CLIPood converter_domainbed.py:26,
    ``keys[:int((1 - open_ratio) * len(keys))]`` with ``open_ratio=0.5``, engine.py:94)."""
    return -(-k // 2) if setting == "open_class" else k // 2


def default_base_classes(table: ImageTable, setting: str) -> list[str]:
    """The base classes a run uses when none are given: the table's own choice, else :func:`default_base_count` in
    label order. The Studio's form starts from exactly these, so a form run and a CLI run train the same classes."""
    if table.default_base:
        return list(table.default_base)
    return list(table.classes[: default_base_count(len(table.classes), setting)])


def resolve_classes(table: ImageTable, base: list[str] | None,
                    setting: str = "open_class") -> tuple[list[int], list[int]]:
    k = len(table.classes)
    if base:
        unknown = [b for b in base if b not in table.classes]
        if unknown:
            raise DatasetError(f"base classes not in {table.name}: {unknown}")
        b = sorted(table.classes.index(x) for x in base)
    else:
        b = list(range(default_base_count(k, setting)))
    n = [c for c in range(k) if c not in b]
    if not b or not n:
        raise DatasetError("open-class settings need at least one base and one new class")
    return b, n


def make_splits(table: ImageTable, setting: str, sources: list[str] | None = None, targets: list[str] | None = None,
                base_classes: list[str] | None = None) -> Splits:
    if setting not in SETTINGS:
        raise DatasetError(f"setting must be one of {', '.join(SETTINGS)} (got {setting!r})")
    if len(table.classes) < 2:
        raise DatasetError(f"{table.name} has {len(table.classes)} class(es); at least two are needed")
    src, tgt = resolve_domains(table, setting, sources, targets)
    src_ids = _domain_ids(table, src, "sources")
    tgt_ids = _domain_ids(table, tgt, "targets")
    in_src = np.isin(table.domain_ids, src_ids)
    in_tgt = np.isin(table.domain_ids, tgt_ids)
    train_pool, test_pool = ~table.is_test, table.is_test
    all_classes = list(range(len(table.classes)))

    if setting == "domain_shift":
        evals = {"id": EvalSplit(np.flatnonzero(in_src & test_pool), all_classes),
                 "ood": EvalSplit(np.flatnonzero(in_tgt), all_classes)}
        for d in tgt_ids:
            evals[f"ood/{table.domains[d]}"] = EvalSplit(np.flatnonzero(table.domain_ids == d), all_classes)
        s = Splits(setting, np.flatnonzero(in_src & train_pool), all_classes, evals, sources=src, targets=tgt)
    else:
        base, new = resolve_classes(table, base_classes or default_base_classes(table, setting), setting)
        is_base = np.isin(table.labels, base)
        if setting == "open_class":
            evals = {"base": EvalSplit(np.flatnonzero(in_src & test_pool & is_base), base),
                     "new": EvalSplit(np.flatnonzero(in_src & test_pool & ~is_base), new)}
            s = Splits(setting, np.flatnonzero(in_src & train_pool & is_base), base, evals,
                       harmonic={"hm": ("base", "new")}, sources=src, base=base, new=new)
        else:
            evals = {"id": EvalSplit(np.flatnonzero(in_src & test_pool & is_base), base),
                     "ood_base": EvalSplit(np.flatnonzero(in_tgt & is_base), all_classes),
                     "ood_new": EvalSplit(np.flatnonzero(in_tgt & ~is_base), all_classes),
                     "total": EvalSplit(np.flatnonzero(in_tgt), all_classes)}  # DISAM's Base/New/Total
            s = Splits(setting, np.flatnonzero(in_src & train_pool & is_base), base, evals,
                       harmonic={"hm": ("ood_base", "ood_new")}, sources=src, targets=tgt, base=base, new=new)
    if len(s.train) == 0:
        raise DatasetError(f"{table.name}: the training split of {setting} is empty (sources {src})")
    for name, ev in s.evals.items():
        if len(ev.indices) == 0:
            raise DatasetError(f"{table.name}: evaluation split {name!r} of {setting} is empty")
    return s
