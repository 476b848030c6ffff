"""The one translation from form values to a :class:`core.config.RunConfig`, with the server's caps and messages
that name the field as the form labels it. Every rejection is a :class:`FormError` with a one-line message."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from core.config import ConfigError, RunConfig, resolve
from core.data.registry import DATASETS, SCHEMES, dataset_option_names, list_datasets
from core.data.toy import TOY_DEFAULTS

from .options import WHATIF_TRACK, AppOptions

LABELS = {"dataset": "Dataset", "model": "Model", "method": "Method", "setting": "Setting", "sources": "Source domains",
          "targets": "Target domains", "base_classes": "Base classes", "steps": "Steps", "batch_size": "Batch size",
          "lr": "Learning rate", "lam": "λ (margin)", "beta": "β (BMA)", "seed": "Seed", "track": "What-if averages",
          "data_options": "Dataset options", "shots": "Shots", "eval_per": "Eval images per cell",
          "colour_bias": "Colour shortcut", "max_seconds": "Time limit", "eval_every": "Eval every",
          "eval_subsample": "Eval subsample"}


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class FormError(ValueError):
    """A form value the server will not run; the message names the field as the form shows it."""


@dataclass
class DataChoice:
    dataset: str = "toy-shapes"
    path: str = ""  # for scheme datasets (folder:, zip:...): the typed path or the uploaded file
    uploaded: bool = False  # ``path`` is a file the visitor uploaded (gradio's upload cache), not a typed path
    setting: str = "domain_shift"
    sources: list[str] | None = None
    targets: list[str] | None = None
    base_classes: list[str] | None = None
    colour_bias: float = TOY_DEFAULTS["colour_bias"]
    shots: int = TOY_DEFAULTS["shots"]
    eval_per: int = TOY_DEFAULTS["eval_per"]


def _num(name: str, value, kind=float, lo=None, hi=None, cap_note: str = ""):
    if value is None or value == "":
        raise FormError(f"{LABELS.get(name, name)}: enter a value")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise FormError(f"{LABELS.get(name, name)}: {value!r} is not a number") from None
    if not math.isfinite(f):
        raise FormError(f"{LABELS.get(name, name)}: must be a finite number (got {value})")
    if kind is int and not f.is_integer():
        raise FormError(f"{LABELS.get(name, name)}: must be a whole number (got {value})")
    v = int(f) if kind is int else f
    if lo is not None and v < lo:
        raise FormError(f"{LABELS.get(name, name)}: must be at least {lo} (got {v})")
    if hi is not None and v > hi:
        raise FormError(f"{LABELS.get(name, name)}: {v} is more than {cap_note or 'allowed'} ({hi})")
    return v


def dataset_spec(d: DataChoice, opts: AppOptions) -> str:
    """The dataset id a run config carries: a registered name, or a scheme prefix plus the path/upload."""
    list_datasets()  # registers presets and schemes
    if d.dataset in DATASETS:
        return d.dataset
    if d.dataset in SCHEMES:
        path = (d.path or "").strip()
        if not path:
            raise FormError(f"Dataset: {d.dataset}… needs a path, a hub id or an uploaded file")
        if not opts.allow_local_paths:
            if d.dataset == "folder:":
                raise FormError("Dataset: local folders are disabled on this server; upload a zip instead")
            if d.dataset == "zip:" and not d.uploaded:
                raise FormError("Dataset: upload the zip; paths of files on this server are disabled here")
            if d.dataset == "hf:" and not HUB_ID.match(path):
                raise FormError(f"Dataset: {path!r} is not a hub id (owner/name); local paths are disabled here")
        return d.dataset + path
    raise FormError(f"Dataset: unknown dataset {d.dataset!r}")


def check_domains(d: DataChoice) -> None:
    """Messages for domain/class choices the splits cannot be made from."""
    if d.sources is not None and not d.sources:
        raise FormError("Source domains: pick at least one domain to fine-tune on")
    if d.setting in ("domain_shift", "in_the_wild"):
        if d.targets is not None and not d.targets:
            raise FormError("Target domains: pick at least one target domain, or there is no shift to measure")
        both = sorted(set(d.sources or []) & set(d.targets or []))
        if both:
            raise FormError(f"Target domains: {', '.join(both)} is also a source; a domain is either seen or unseen")
    if d.setting in ("open_class", "in_the_wild") and d.base_classes is not None and not d.base_classes:
        raise FormError("Base classes: pick at least one base class to fine-tune on")


def data_options(d: DataChoice, opts: AppOptions) -> dict:
    caps = opts.caps
    out = {"colour_bias": _num("colour_bias", d.colour_bias, float, 0.0, 1.0),
           "shots": _num("shots", d.shots, int, 1, caps.max_shots, "this server's cap"),
           "eval_per": _num("eval_per", d.eval_per, int, 1, caps.max_eval_per, "this server's cap")}
    entry = DATASETS.get(d.dataset)
    if (d.dataset == "hf:" or (entry is not None and entry.kind == "hub")) and not opts.allow_local_paths:
        # a public server never downloads a whole hub dataset to its disk: streamed, capped (a preset's own lower
        # cap stays)
        preset = (entry.defaults if entry is not None else {}).get("max_per_class_domain")
        cap = min(x for x in (caps.max_hub_per_class_domain, preset) if x)
        out.update(streaming=True, max_per_class_domain=cap, max_rows=caps.max_hub_rows, hub_only=True)
    if d.dataset in ("zip:", "folder:") and caps.max_dataset_pixels:
        out["max_dataset_pixels"] = caps.max_dataset_pixels
    accepted = dataset_option_names(d.dataset)  # the toy knobs mean nothing to a folder or hub dataset
    return {k: v for k, v in out.items() if k in accepted}


def used_split(d: DataChoice) -> dict:
    """The sources, targets and base classes a run of ``d``'s setting uses (None: the dataset's own): open class has
    no targets and domain shift no base classes, whatever the hidden pickers hold."""
    return {"sources": d.sources or None,
            "targets": (d.targets or None) if d.setting != "open_class" else None,
            "base_classes": (d.base_classes or None) if d.setting != "domain_shift" else None}


def build_config(d: DataChoice, *, model: str, method: str, steps, batch_size, lr, lam, beta, seed, whatif: bool,
                 opts: AppOptions) -> RunConfig:
    """A resolved, capped run config from the form; raises :class:`FormError` with a field-named message."""
    caps = opts.caps
    check_domains(d)
    steps = _num("steps", steps, int, 1, caps.max_steps, "this server's cap")
    batch = _num("batch_size", batch_size, int, 1, caps.max_batch, "this server's cap")
    track = ["bma"] + (list(WHATIF_TRACK) if whatif else [])
    cfg = RunConfig(dataset=dataset_spec(d, opts), model=model, setting=d.setting, **used_split(d), method=method,
                    steps=steps, batch_size=batch, sampler="pooled", lr=_num("lr", lr, float),
                    lam=_num("lam", lam, float), beta=_num("beta", beta, float), seed=_num("seed", seed, int, 0),
                    track=track, data_options=data_options(d, opts), max_seconds=caps.max_seconds)
    try:
        return resolve(cfg)
    except ConfigError as e:
        msg = str(e).split(": ", 1)[-1]
        raise FormError(f"{LABELS.get(e.field, e.field)}: {msg}") from None

