"""The run config: one dataclass, validated with messages that name the field, saved beside every run.

Fields left ``None`` are resolved (:func:`resolve`) from the dataset, model, setting and method defaults, and the
resolved config is what ``config.json`` holds, so a run folder alone reproduces the run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .data.splits import SETTINGS
from .methods import AVERAGES, METHODS
from .recipes import (  # noqa: F401 - the toy/real defaults are re-exported for the CLI and the app
    BETA_BY_SETTING,
    REAL_HPARAMS,
    SAMPLERS,
    TOY_HPARAMS,
    Recipe,
    ema_decay_for,
    find,
    ours,
    toy_by_setting,
)

RECIPE_CHOICES = ("paper", "ours")


class ConfigError(ValueError):
    """A bad config value; ``field`` names the option."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"--{field_name.replace('_', '-')}: {message}")
        self.field = field_name


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
# `python -m core bench story` runs in fp32 unless told: "auto" follows the CPU's bf16 units, so a table measured in
# bf16 could not be rerun as it was on a CPU without them (its reproduce test would differ by more than noise).
STORY_PRECISION = "fp32"


@dataclass
class RunConfig:
    dataset: str = "toy-shapes"
    model: str = "toy-clip"
    pretrained: str | None = None
    setting: str = "domain_shift"
    sources: list[str] | None = None
    targets: list[str] | None = None
    base_classes: list[str] | None = None
    method: str = "clipood"
    steps: int | None = None
    batch_size: int | None = None  # per source domain with sampler per_domain, else per step
    lr: float | None = None
    weight_decay: float = 0.1  # the official main.py:123 default (recipes._COMMON)
    warmup_frac: float | None = None
    lam: float | None = None
    beta: float | None = None
    ema_decay: float | None = None  # default: horizon of a fifth of the run (recipes.ema_decay_for)
    wiseft_alpha: float = 0.5
    track: list[str] = field(default_factory=list)  # extra averages: bma, ema, wiseft, bma:<beta>
    track_eval: str = "final"  # evaluate extra averages at every evaluation ("all") or only at the end ("final")
    seed: int = 0
    device: str = "auto"
    augment: bool | None = None
    ensemble: bool | None = None  # prompt-template ensemble for the text classifier
    eval_every: int | None = None  # steps between evaluations (0 = only at the end; default steps // CURVE_SEGMENTS)
    # max images per split for intermediate evaluations (final is always full); on the embedded world's grid
    # (2,880 images) the curves' six passes then cost about one full pass (issue 16: the Studio run's budget)
    eval_subsample: int = 240
    checkpoint_every: int | None = None
    data_options: dict = field(default_factory=dict)  # dataset knobs, e.g. colour_bias, shots, eval_per
    max_seconds: float | None = None  # stop (as cancelled, resumable) after this wall time
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on a CPU with bf16 units, else fp32; or force one
    recipe: str | None = None  # paper (official scripts.sh values) | ours; default: paper where one exists
    sampler: str | None = None  # pooled | per_domain (batch_size images from each source domain, concatenated)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(unknown[0], f"unknown option (known: {', '.join(sorted(names))})")
        return cls(**d)

    @classmethod
    def from_saved(cls, d: dict) -> RunConfig:
        """A run folder's config.json; one saved before recipes and samplers existed drew pooled batches."""
        return cls.from_dict({"sampler": "pooled", "recipe": "ours", **d})


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ConfigError(name, msg)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _one_of(value, choices, name: str) -> None:
    _check(isinstance(value, str) and value in choices, name, f"must be one of {', '.join(choices)} (got {value!r})")


def validate(c: RunConfig) -> None:
    """Every field, type first (a config can come from a JSON file): a bad one raises ConfigError naming it."""
    _one_of(c.method, METHODS, "method")
    _one_of(c.setting, SETTINGS, "setting")
    _one_of(c.device, DEVICES, "device")
    _one_of(c.track_eval, ("all", "final"), "track_eval")
    _one_of(c.precision, PRECISIONS, "precision")
    if c.recipe is not None:
        _one_of(c.recipe, RECIPE_CHOICES, "recipe")
    if c.sampler is not None:
        _one_of(c.sampler, SAMPLERS, "sampler")
    _check(c.pretrained is None or isinstance(c.pretrained, str), "pretrained", "must be a tag or a file name")
    for name in ("augment", "ensemble"):
        _check(getattr(c, name) is None or isinstance(getattr(c, name), bool), name, "must be true or false")
    _check(isinstance(c.dataset, str) and c.dataset.strip() != "", "dataset", "must be a dataset id")
    _check(isinstance(c.model, str) and c.model.strip() != "", "model", "must be a model id")
    for name in ("steps",):
        v = getattr(c, name)
        _check(v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10_000_000), name,
               f"must be an integer >= 0 (got {v!r})")
    _check(c.batch_size is None or (isinstance(c.batch_size, int) and not isinstance(c.batch_size, bool)
                                    and 1 <= c.batch_size <= 65536),
           "batch_size", f"must be an integer in [1, 65536] (got {c.batch_size!r})")
    _check(c.lr is None or (_finite(c.lr) and 0 < c.lr <= 1), "lr", f"must be in (0, 1] (got {c.lr!r})")
    _check(_finite(c.weight_decay) and 0 <= c.weight_decay <= 10, "weight_decay", "must be in [0, 10]")
    _check(c.warmup_frac is None or (_finite(c.warmup_frac) and 0 <= c.warmup_frac < 1), "warmup_frac",
           "must be in [0, 1)")
    _check(c.lam is None or (_finite(c.lam) and 0 <= c.lam <= 2), "lam", f"must be in [0, 2] (got {c.lam!r})")
    _check(c.beta is None or (_finite(c.beta) and 0 < c.beta <= 100), "beta", f"must be in (0, 100] (got {c.beta!r})")
    _check(c.ema_decay is None or (_finite(c.ema_decay) and 0 <= c.ema_decay < 1), "ema_decay", "must be in [0, 1)")
    _check(_finite(c.wiseft_alpha) and 0 <= c.wiseft_alpha <= 1, "wiseft_alpha", "must be in [0, 1]")
    _check(isinstance(c.seed, int) and not isinstance(c.seed, bool) and 0 <= c.seed < 2**31, "seed",
           "must be an integer in [0, 2^31)")
    _check(isinstance(c.eval_subsample, int) and c.eval_subsample >= 1, "eval_subsample", "must be >= 1")
    for name in ("eval_every", "checkpoint_every"):
        v = getattr(c, name)
        _check(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0), name, "must be >= 0")
    _check(c.max_seconds is None or (_finite(c.max_seconds) and c.max_seconds > 0), "max_seconds", "must be > 0")
    _check(isinstance(c.track, list), "track", "must be a list")
    for t in c.track:
        kind, _, arg = str(t).partition(":")
        _check(kind in AVERAGES, "track", f"entries must be one of {', '.join(AVERAGES)} or bma:<beta> (got {t!r})")
        if arg:
            try:
                val = float(arg)
            except ValueError:
                val = float("nan")
            _check(kind in ("bma", "wiseft", "ema") and math.isfinite(val) and val > 0, "track",
                   f"bad value in {t!r}: bma:<beta>, ema:<decay> or wiseft:<alpha>")
    for name in ("sources", "targets", "base_classes"):
        v = getattr(c, name)
        _check(v is None or (isinstance(v, list) and all(isinstance(x, str) and x for x in v)), name,
               "must be a list of names")
    _check(isinstance(c.data_options, dict), "data_options", "must be a mapping")


def is_toy(c: RunConfig) -> bool:
    return c.model in ("toy-clip", "tiny-random") or c.dataset == "toy-shapes"


def pick_recipe(c: RunConfig) -> tuple[str, Recipe]:
    """(name, recipe): the official one for (setting, dataset) with a real CLIP unless ``--recipe ours``."""
    paper = None if is_toy(c) else find(c.setting, c.dataset)
    if c.recipe == "paper" and paper is None:
        from .recipes import available

        why = "the embedded world has none" if is_toy(c) else f"none for {c.setting} on {c.dataset!r}"
        raise ConfigError("recipe", f"paper: {why}; paper recipes exist for {', '.join(available())} "
                                    "(use --recipe ours)")
    if paper is not None and c.recipe != "ours":
        return "paper", paper
    return "ours", ours(is_toy(c), c.setting)


# A run's curves have this many segments by default: zero-shot, three intermediate points and the end. Each
# intermediate point evaluates two models (the current weights and BMA) on a fixed subsample of each split
# (``RunConfig.eval_subsample`` images per split; the final evaluation is always every image).
CURVE_SEGMENTS = 4
EVERY_IMAGE = 2**31 - 1  # an eval_subsample no split reaches: every evaluation uses every image


def defaults_for(dataset: str = "toy-shapes", model: str = "toy-clip", setting: str = "domain_shift") -> dict:
    """What a run of (dataset, model, setting) trains with when nothing is given: ``resolve`` of an untouched
    CLIPood config, so the form defaults every front end reads and the values a run gets are one computation
    (DomainBed's hparams_registry, in spirit)."""
    r = resolve(RunConfig(dataset=dataset, model=model, setting=setting, method="clipood"))
    keys = ("lr", "lam", "beta", "steps", "batch_size", "warmup_frac", "sampler", "recipe", "ema_decay")
    return {k: getattr(r, k) for k in keys}


def resolve(c: RunConfig) -> RunConfig:
    """Fill every ``None`` from the recipe (paper or ours); the result is complete, validated and names its recipe."""
    validate(c)
    r = dataclasses.replace(c)
    r.recipe, rec = pick_recipe(c)
    method = METHODS[c.method]
    for name in ("lr", "warmup_frac", "augment", "ensemble", "beta", "batch_size", "sampler"):
        if getattr(r, name) is None:
            setattr(r, name, rec.get(name))
    if r.steps is None:
        r.steps = rec.get("steps") if method.trains else 0
    if not method.trains:
        r.steps = 0
    r.lam = (rec.get("lam") if method.margin else 0.0) if r.lam is None else r.lam
    if not method.margin:
        r.lam = 0.0
    if r.ema_decay is None:
        r.ema_decay = ema_decay_for(r.steps)
    if r.eval_every is None:
        r.eval_every = max(1, r.steps // CURVE_SEGMENTS) if r.steps else 0
    if r.checkpoint_every is None:
        r.checkpoint_every = max(1, r.steps // 5) if r.steps else 0
    r.track = [str(t) for t in r.track]
    validate(r)
    if method.margin and r.lam == 0:
        same = "bma" if r.method == "clipood" else "finetune"
        raise ConfigError("lam", f"method {r.method} needs lam > 0 (lam = 0 is {same})")
    return r
