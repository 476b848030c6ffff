"""Server options: caps on what a visitor may ask for, the defaults the forms start from, where runs live.

The caps are the server's, not the user's: a public Space sets them low (``--max-steps`` etc. in ``app.py``), a GPU
workstation high. Every cap is checked before a run starts, with a message naming the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.config import defaults_for
from core.data.toy import TOY_DEFAULTS
from core.models import TOY_CLIP_DIR

# Averages tracked on the side of a run for the what-if plot: BMA at beta 0.1, 1, 4 (plus the run's own beta), the EMA
# and WiSE-FT at alpha 0.5 (its ends, alpha 0 and 1, are the zero-shot and final weights). Each extra average is
# evaluated with the others (the final, full evaluation dominates), so the set is kept small: on the embedded default
# these five add about half of a plain run's CPU time.
WHATIF_TRACK = ("bma:0.1", "bma:1.0", "bma:4.0", "ema", "wiseft")


def on_spaces() -> bool:
    return os.environ.get("SYSTEM") == "spaces" or bool(os.environ.get("SPACE_ID"))


def default_model() -> str:
    """``toy-clip`` once its weights exist, else the random ``tiny-random`` (development before pre-training)."""
    return "toy-clip" if (TOY_CLIP_DIR / "open_clip_model.safetensors").is_file() else "tiny-random"


@dataclass(frozen=True)
class Caps:
    max_steps: int = 3000
    max_batch: int = 256
    max_shots: int = 512
    max_eval_per: int = 100
    max_seconds: float | None = None  # wall-time cap per run (stops as cancelled, resumable)
    max_embed_points: int = 2000
    queue_size: int = 16  # waiting events across all queues
    max_upload_mb: int = 50  # per uploaded file (gradio refuses larger uploads before our code sees them)
    max_runs_gb: float | None = None  # disk quota of the runs folder: the oldest finished runs are deleted first
    # hub datasets on a public server (no local paths): streamed, at most this many images per (class, domain) and
    # rows read, kept in memory; nothing of the dataset is written to the server's disk
    max_hub_per_class_domain: int = 100
    max_hub_rows: int = 50_000
    max_dataset_pixels: int | None = None  # pixels an uploaded/folder dataset may decode to (None: core's default)
    max_cache_gb: float | None = None  # unpacked zips + eval tensors (None: core's default quota)
    upload_ttl_s: int | None = 86_400  # gradio deletes uploads and outputs this old (delete_cache); None: never
    max_upload_cache_mb: int | None = None  # and the oldest beyond this many MB, at once


# What a public Space gets unless app.py is told otherwise (issue 17): one visitor can hold the training slot for at
# most 10 minutes, the runs folder plus the caches stay within 20 GB, an upload lives an hour, a dataset decodes to at
# most 2 Gpx (about 10 s of one core).
SPACE_CAPS = dict(max_seconds=600.0, max_runs_gb=20.0, max_cache_gb=4.0, upload_ttl_s=3600, max_upload_cache_mb=2000,
                  max_dataset_pixels=2_000_000_000)


@dataclass(frozen=True)
class Defaults:
    """What the forms show on first load (the embedded default: toy-shapes + toy-clip)."""

    dataset: str = "toy-shapes"
    model: str = field(default_factory=default_model)
    method: str = "clipood"
    setting: str = "domain_shift"
    # None: core's for this model, data and setting (``defaults_for``), resolved once in __post_init__
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lam: float | None = None
    beta: float | None = None
    seed: int = 0
    colour_bias: float = float(TOY_DEFAULTS["colour_bias"])
    shots: int = int(TOY_DEFAULTS["shots"])
    eval_per: int = int(TOY_DEFAULTS["eval_per"])
    whatif: bool = False  # five more models in the final evaluation (about 12 s on 2 cores); the lesson turns it on
    embed_points: int = 2000

    resolved_for: tuple | None = field(default=None, repr=False, compare=False)  # (dataset, model, setting)

    def __post_init__(self):
        """Fill steps, batch, lr, λ and β from core for this model, data and setting. They are resolved once, so
        ``replace(d, setting=...)`` (or model, dataset) would keep the old ones: that raises; build a new Defaults."""
        key = (self.dataset, self.model, self.setting)
        if self.resolved_for not in (None, key):
            raise ValueError(f"Defaults were resolved for {self.resolved_for}: build Defaults(setting="
                             f"{self.setting!r}, model=..., dataset=...) instead of replacing them")
        core = defaults_for(*key)
        for name, kind in (("steps", int), ("batch_size", int), ("lr", float), ("lam", float), ("beta", float)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, kind(core[name]))
        object.__setattr__(self, "resolved_for", key)


@dataclass(frozen=True)
class AppOptions:
    runs_dir: Path = Path("runs")
    caps: Caps = field(default_factory=Caps)
    defaults: Defaults = field(default_factory=Defaults)
    shared_runs: bool = True  # list every saved run (local use); False: only this browser's runs (public Space)
    allow_local_paths: bool = True  # allow folder:PATH datasets typed by the user (never on a public Space)
    warmup: bool = True  # pre-load the default model, data, zero-shot accuracy and UMAP's JIT in the background
    min_yield_s: float = 2.0  # at most one streamed update per this many seconds (plus one per evaluation)
