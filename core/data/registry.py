"""One registry of datasets: built-in worlds, hub presets and path schemes (``folder:PATH``, ``zip:PATH``...).

``open_dataset(spec, **options)`` returns an :class:`ImageTable`. Schemes and presets register themselves here;
options a builder does not know are ignored so one run config can carry them all.
"""

from __future__ import annotations

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


def open_dataset(spec: str, **options) -> ImageTable:
    check_dataset_spec(spec)
    if spec in DATASETS:
        entry = DATASETS[spec]
        return entry.build(**{**entry.defaults, **{k: v for k, v in options.items() if v is not None}})
    for prefix, entry in SCHEMES.items():
        if spec.startswith(prefix):
            path = spec[len(prefix):]
            if not path:
                raise DatasetError(f"dataset {spec!r}: give a path after {prefix!r}")
            opts = {k: v for k, v in options.items() if v is not None}
            if "path" in opts:  # would collide with the scheme's own path
                raise DatasetError(f"dataset {spec!r} already names its path; drop --data path=...")
            return entry.build(path=path, **opts)
    names = ", ".join(list(DATASETS) + [f"{p}PATH" for p in SCHEMES])
    raise DatasetError(f"unknown dataset {spec!r}: use one of {names} (python -m core list datasets)")
