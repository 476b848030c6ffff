"""One registry of datasets: built-in worlds, hub presets and path schemes (``folder:PATH``, ``zip:PATH``...).

``open_dataset(spec, **options)`` returns an :class:`ImageTable`. Schemes and presets register themselves here.
Each entry names the functions whose parameters are its options (``option_source``); an option none of them takes is
refused with the list of known ones, so a typo (``colour_biass=0``) never runs silently with the default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from .table import DatasetError, ImageTable
from .toy import TOY_DEFAULTS, build_toy_shapes


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str
    build: Callable[..., ImageTable]
    kind: str = "world"  # world | hub | scheme
    defaults: dict = field(default_factory=dict)
    option_source: tuple[Callable, ...] = ()  # functions whose parameters are the options (default: build)

    def option_names(self) -> set[str]:
        names: set[str] = set()
        for fn in self.option_source or (self.build,):
            names |= {n for n, p in inspect.signature(fn).parameters.items()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        return names - {"path", "repo"}  # given by the spec itself


# Options every run passes; a dataset whose builder does not take one simply does not get it.
CONTEXT_OPTIONS = ("seed", "sources")


DATASETS: dict[str, DatasetEntry] = {}
SCHEMES: dict[str, DatasetEntry] = {}  # prefix (e.g. "folder:") -> entry whose build takes path=...


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    table = SCHEMES if entry.name.endswith(":") else DATASETS
    if entry.name in table:
        raise ValueError(f"dataset {entry.name!r} already registered")
    table[entry.name] = entry
    return entry


register_dataset(DatasetEntry(
    "toy-shapes", "procedural shapes in 6 render styles with a class-colour shortcut in the sources (offline)",
    build_toy_shapes, "world", dict(TOY_DEFAULTS)))


def list_datasets() -> list[DatasetEntry]:
    _load_plugins()
    return list(DATASETS.values()) + list(SCHEMES.values())


def _load_plugins() -> None:
    """Import modules that register real-data presets and schemes (kept lazy: they pull in `datasets`/PIL)."""
    import importlib

    for mod in ("core.data.real",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def check_dataset_spec(spec: str) -> None:
    """Raise :class:`DatasetError` unless ``spec`` names a registered dataset or a known scheme with a path."""
    _load_plugins()
    if spec in DATASETS:
        return
    for prefix in SCHEMES:
        if spec.startswith(prefix):
            if not spec[len(prefix):]:
                raise DatasetError(f"dataset {spec!r}: give a path after {prefix!r}")
            return
    names = ", ".join(list(DATASETS) + [f"{p}PATH" for p in SCHEMES])
    raise DatasetError(f"unknown dataset {spec!r}: use one of {names} (python -m core list datasets)")


def entry_for(spec: str) -> DatasetEntry:
    """The registry entry behind a dataset spec (a name, or a scheme prefix with its path)."""
    check_dataset_spec(spec)
    if spec in DATASETS:
        return DATASETS[spec]
    return next(entry for prefix, entry in SCHEMES.items() if spec.startswith(prefix))


def dataset_option_names(spec: str) -> set[str]:
    """The options ``spec`` (a dataset, or a scheme prefix such as ``folder:``) accepts: what a front end may pass."""
    _load_plugins()
    return (SCHEMES[spec] if spec in SCHEMES else entry_for(spec)).option_names()


def _checked_options(spec: str, entry: DatasetEntry, options: dict) -> dict:
    known = entry.option_names()
    opts = {k: v for k, v in options.items() if v is not None and (k in known or k not in CONTEXT_OPTIONS)}
    unknown = sorted(k for k in opts if k not in known and k != "path")
    if unknown:
        raise DatasetError(f"dataset {spec!r} has no option {unknown[0]!r}; its options are "
                           f"{', '.join(sorted(known - set(CONTEXT_OPTIONS)))}")
    return opts


def open_dataset(spec: str, **options) -> ImageTable:
    entry = entry_for(spec)
    opts = _checked_options(spec, entry, options)
    if spec in DATASETS:
        return entry.build(**{**entry.defaults, **opts})
    prefix = next(p for p in SCHEMES if spec.startswith(p))
    if "path" in opts:  # would collide with the scheme's own path
        raise DatasetError(f"dataset {spec!r} already names its path; drop --data path=...")
    return entry.build(path=spec[len(prefix):], **opts)
