"""Exploring data, models and finished runs, read-only: what the Studio (or a notebook) shows beside training.

Everything here is plain numbers out (numpy arrays, dicts, lists): the Beta schedule and the share of the running
average held by each end, dataset overviews (sample mosaics by domain x class, images per split and domain, the
class-colour shortcut of the toy world), class text geometry (similarity, MMS margins), stratified evaluation
samples, a run's weight sets (zero-shot, final, every tracked average, result) and image embeddings under them.
Nothing here trains or writes; no UI package is imported (projections to 2-D live in ``app/projection.py``).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_result, read_weight_sets
from .clipood import beta_weights
from .config import RunConfig, resolve
from .data import make_splits, open_dataset
from .data.images import rows_per_batch
from .data.pipeline import ImagePipeline
from .data.splits import Splits
from .data.table import ImageTable
from .evaluator import image_features
from .lru import LRU
from .models import ClipBundle, load_clip
from .runstore import RunStore
from .step import use_bf16

# ----------------------------------------------------------------------------------------------- the Beta schedule


def beta_schedule(total_steps: int, beta: float) -> dict[str, np.ndarray]:
    """The BMA weighting of a run: ``density`` (the Beta(beta, beta) pdf at the T+1 bin midpoints, which is what
    the engine weighs step t with) and ``weights`` (the same, normalised to sum 1) for t = 0..T."""
    dens = beta_weights(int(total_steps), float(beta)).numpy()
    return {"step": np.arange(len(dens)), "density": dens, "weights": dens / dens.sum()}


def average_shares(total_steps: int, beta: float, step: int, latest_frac: float = 0.1) -> dict[str, float]:
    """Who holds the running Beta average after ``step`` optimiser steps (it averages steps 0..step).

    ``zeroshot``: the share of the pre-trained weights (t = 0); ``latest``: the share of the latest
    ``latest_frac`` of the run's steps (at least one step, never t = 0); ``between``: the rest. Sums to 1.
    """
    w = beta_weights(int(total_steps), float(beta)).numpy()
    t = int(min(max(step, 0), total_steps))
    held = w[: t + 1]
    total = float(held.sum())
    k = min(t, max(1, int(round(latest_frac * total_steps))))
    zs = float(held[0]) / total
    latest = float(held[t + 1 - k: t + 1].sum()) / total if k else 0.0
    return {"zeroshot": zs, "latest": latest, "between": max(0.0, 1.0 - zs - latest), "latest_steps": k, "step": t}


# --------------------------------------------------------------------------------------------------- the data side

MAX_VIEW_CLASSES = 64  # a per-class view (mosaic, margins, embedding map, playground) draws at most this many
MAX_VIEW_DOMAINS = 16


def view_classes(classes: list[str], cap: int = MAX_VIEW_CLASSES, seed: int = 0) -> tuple[list[int], str]:
    """Indices (label order) of at most ``cap`` classes a view draws, and a note saying so ('' when all fit): a
    2,000-class dataset would cost a quadratic figure and thousands of decoded images otherwise."""
    k = len(classes)
    if k <= cap:
        return list(range(k)), ""
    keep = np.sort(np.random.default_rng(seed).choice(k, cap, replace=False))
    return keep.tolist(), f"showing {cap} of {k} classes (a fixed random sample)"


def load_batched(table: ImageTable, indices, fn) -> list:
    """``fn(images)`` over byte-sized batches of ``table`` rows (decoded images never pile up), results joined."""
    indices = np.asarray(indices, dtype=np.int64)
    step = rows_per_batch()
    out: list = []
    for i in range(0, len(indices), step):
        out.extend(fn(table.load(indices[i:i + step])))
    return out


@dataclass
class DataOverview:
    table: ImageTable
    splits: Splits
    roles: dict[str, str]  # domain -> "source" | "target" | "unused"
    split_domains: dict[str, dict[str, int]]  # split name -> domain -> images
    per_domain: dict[str, int] = field(default_factory=dict)


def dataset_overview(dataset: str, setting: str, sources: list[str] | None = None, targets: list[str] | None = None,
                     base_classes: list[str] | None = None, data_options: dict | None = None,
                     seed: int = 0) -> DataOverview:
    """Open a dataset as a run would and describe its splits; raises ``DatasetError`` with a clear message."""
    table = open_dataset(dataset, seed=seed, sources=sources, **(data_options or {}))
    splits = make_splits(table, setting, sources, targets, base_classes)
    roles = {d: ("source" if d in splits.sources else "target" if d in splits.targets else "unused")
             for d in table.domains}
    named = {"train": splits.train, **{k: v.indices for k, v in splits.evals.items()}}
    split_domains = {}
    for name, idx in named.items():
        counts = np.bincount(table.domain_ids[idx], minlength=len(table.domains))
        split_domains[name] = {d: int(counts[i]) for i, d in enumerate(table.domains) if counts[i]}
    per_domain = {d: int((table.domain_ids == i).sum()) for i, d in enumerate(table.domains)}
    return DataOverview(table, splits, roles, split_domains, per_domain)


def _to_uint8_hwc(images: list, size: int) -> np.ndarray:
    x = ImagePipeline(size, (0, 0, 0), (1, 1, 1)).raw(images)  # uint8 (B, 3, S, S), centre crop
    return x.permute(0, 2, 3, 1).numpy()


def sample_mosaic(table: ImageTable, domains: list[str] | None = None, classes: list[str] | None = None,
                  cell: int = 48, seed: int = 0, pool: str = "test") -> tuple[np.ndarray, list[str], list[str]]:
    """One image per (domain, class): a uint8 (rows*cell, cols*cell, 3) mosaic, its row (domain) and column
    (class) names. Drawn from the evaluation pool (``pool="test"``), else any image; empty cells stay grey."""
    domains = list(domains or table.domains)[:MAX_VIEW_DOMAINS]
    classes = list(classes or [table.classes[i] for i in view_classes(table.classes)[0]])[:MAX_VIEW_CLASSES]
    rng = np.random.default_rng(seed)
    mosaic = np.full((len(domains) * cell, len(classes) * cell, 3), 200, dtype=np.uint8)
    picks, where = [], []
    for r, d in enumerate(domains):
        di = table.domains.index(d)
        for c, name in enumerate(classes):
            ci = table.classes.index(name)
            m = (table.domain_ids == di) & (table.labels == ci)
            if pool == "test" and (m & table.is_test).any():
                m = m & table.is_test
            idx = np.flatnonzero(m)
            if len(idx):
                picks.append(int(rng.choice(idx)))
                where.append((r, c))
    if picks:
        tiles = load_batched(table, picks, lambda ims: list(_to_uint8_hwc(ims, cell)))
        for (r, c), tile in zip(where, tiles):
            mosaic[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = tile
    return mosaic, domains, classes


def load_images(table: ImageTable, indices, size: int | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) images of a table (resized and centre-cropped to ``size`` when given)."""
    imgs = table.load(np.asarray(indices))
    if size is None:
        first = imgs[0]
        size = int(first.shape[-1]) if isinstance(first, torch.Tensor) else min(first.size)
    return _to_uint8_hwc(imgs, size)


def colour_shortcut(table: ImageTable, indices) -> tuple[np.ndarray, list[str]] | None:
    """For the toy world: the fraction of images of each class drawn in each colour among ``indices`` (rows: classes,
    columns: colours), or None for datasets without a colour record. A bright diagonal is the shortcut."""
    colours = table.info.get("colours")
    if colours is None:
        return None
    from .world.render import COLOUR_NAMES

    idx = np.asarray(indices)
    m = np.zeros((len(table.classes), len(COLOUR_NAMES)))
    np.add.at(m, (table.labels[idx], np.asarray(colours)[idx]), 1)
    m = m / np.maximum(m.sum(1, keepdims=True), 1)
    return m, list(COLOUR_NAMES)


def eval_sample(table: ImageTable, n: int = 2000, seed: int = 0, domains: list[str] | None = None,
                classes: list[int] | None = None) -> np.ndarray:
    """Up to ``n`` indices of the evaluation pool (of ``classes`` if given), stratified over (domain, class) cells
    (round-robin)."""
    dom_ids = [table.domains.index(d) for d in (domains or table.domains)]
    rng = np.random.default_rng(seed)
    cells = []
    for d in dom_ids:
        for c in (range(len(table.classes)) if classes is None else classes):
            idx = np.flatnonzero((table.domain_ids == d) & (table.labels == c) & table.is_test)
            if len(idx):
                cells.append(list(rng.permutation(idx)))
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(c) for c in cells):
        for c in cells:
            if depth < len(c) and len(out) < n:
                out.append(int(c[depth]))
        depth += 1
    return np.sort(np.asarray(out, dtype=np.int64))


# -------------------------------------------------------------------------------------------------- the model side

BUNDLE_CACHE_SIZE = 2  # pre-trained CLIPs kept loaded for the Studio's views
_BUNDLES = LRU(BUNDLE_CACHE_SIZE)


def unseen_class_words(model: str, class_names: list[str]) -> list[str]:
    """Words of ``class_names`` a model pre-trained on the toy world never read (empty for any other model, whose
    pre-training we do not know word by word)."""
    from .models import pretrained_on_toy_world
    from .world.captions import unseen_words

    return unseen_words(class_names) if pretrained_on_toy_world(model) else []


def base_model(model: str, pretrained: str | None = None, device: str | torch.device = "cpu") -> ClipBundle:
    """A loaded pre-trained CLIP shared read-only between callers (an LRU of ``BUNDLE_CACHE_SIZE``): never train
    or modify it."""
    return _BUNDLES.get((model, pretrained, str(device)), lambda: load_clip(model, pretrained, device))


@torch.no_grad()
def text_features(bundle: ClipBundle, classes: list[str], templates, ensemble: bool = True) -> torch.Tensor:
    """(K, D) L2-normalised class text features (names with '_' read as spaces)."""
    from .features import class_text_features

    device = next(bundle.model.parameters()).device
    return class_text_features(bundle.model, bundle.tokenizer, [c.replace("_", " ") for c in classes],
                               tuple(templates), device, ensemble)


def text_similarity(bundle: ClipBundle, classes: list[str], templates=("a photo of a {}.",),
                    ensemble: bool = True) -> np.ndarray:
    """(K, K) cosine similarity of the class text features; the MMS margin is ``lam * (1 - similarity)``."""
    t = text_features(bundle, classes, templates, ensemble)
    return (t @ t.t()).clamp(-1, 1).cpu().numpy()


@torch.no_grad()
def embed_images(visual: torch.nn.Module, pipeline: ImagePipeline, images: list, batch: int = 256,
                 amp: bool = False) -> np.ndarray:
    """(N, D) L2-normalised image features of a list of images (uint8 CHW tensors or PIL); bf16 autocast when
    ``amp`` (as the run that made the weights evaluated them)."""
    device = next(visual.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = pipeline.normalise(pipeline.raw(images[i:i + batch]).to(device))
        out.append(image_features(visual, x, amp).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def zeroshot_reference(cfg: RunConfig, device: str | torch.device = "cpu") -> dict[str, dict[str, float]]:
    """The zero-shot accuracy a run of ``cfg`` will report: ``subsample`` (its step-0 curve point, on the same fixed
    subsample as its intermediate evaluations) and ``full`` (the full splits, reported at the end)."""
    from .engine import prepare
    from .evaluator import SplitEvaluator, zeroshot_features

    cfg, device = resolve(cfg), torch.device(device)
    bundle, table, splits, pipeline, text = prepare(cfg, device)
    ev = SplitEvaluator(table, splits, pipeline, text, device, cfg.eval_subsample, cfg.seed, use_bf16(cfg, device))
    # one pass over every eval image, through the engine's own zero-shot cache: a run of this config started later
    # (the Studio's first, after the warm-up) finds its zero-shot features there
    visual = bundle.model.visual.float().eval()
    feats = zeroshot_features(ev, visual, table, bundle)
    full = ev.accuracy(None, True, feats)
    return {"subsample": full if ev.subsample_is_full() else ev.accuracy(visual, False), "full": full}


# ---------------------------------------------------------------------------------------------------- a run's side

ZEROSHOT = "zero-shot"
FINAL = "final"
RESULT = "result"


class RunModels:
    """A run's data and weight sets: ``zero-shot`` (pre-trained), ``final`` (the last checkpoint's fine-tuned
    weights), one entry per average kept in the last checkpoint (``bma``, ``ema``, ``bma:0.1``...) and ``result``
    (the method's output, written when the run finished). Without a run folder, only the zero-shot model of a
    config. Loads safetensors only."""

    def __init__(self, config: RunConfig, store: RunStore | None = None, device: str | torch.device = "cpu"):
        self.store = store
        self.config = c = resolve(config)
        self.device = torch.device(device)
        self.bundle = base_model(c.model, c.pretrained, self.device)
        self.table = open_dataset(c.dataset, seed=c.seed, sources=c.sources, **c.data_options)
        self.splits = make_splits(self.table, c.setting, c.sources, c.targets, c.base_classes)
        self.pipeline = ImagePipeline(self.bundle.image_size, self.bundle.mean, self.bundle.std)
        self.text = text_features(self.bundle, self.table.classes, self.table.templates, c.ensemble)
        self._weights: dict[str, dict[str, torch.Tensor]] | None = None
        self._visuals: dict[str, torch.nn.Module] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, run_dir: Path | str, device: str | torch.device = "cpu") -> RunModels:
        """The models of a saved run folder (its config.json decides model and data)."""
        store = RunStore(Path(run_dir))
        if not store.config_path.is_file():
            raise FileNotFoundError(f"{Path(run_dir).name} is not a run (no config.json)")
        return cls(RunConfig.from_dict(store.read_config()), store, device)

    def _load_weights(self) -> dict[str, dict[str, torch.Tensor]]:
        if self._weights is None:
            w: dict[str, dict[str, torch.Tensor]] = {}
            if self.store is not None and self.store.last_checkpoint.is_file():
                w[FINAL], averages = read_weight_sets(self.store.last_checkpoint)
                w.update(averages)
            if self.store is not None and self.store.result_checkpoint.is_file():
                w[RESULT] = load_result(self.store.result_checkpoint)
            self._weights = w
        return self._weights

    def available(self) -> list[str]:
        """Weight sets this run can show, zero-shot first."""
        return [ZEROSHOT, *self._load_weights()]

    def visual(self, name: str) -> torch.nn.Module:
        """The image tower under weight set ``name`` (a private copy; the shared base model is untouched)."""
        with self._lock:
            if name not in self._visuals:
                if name == ZEROSHOT:
                    self._visuals[name] = self.bundle.model.visual
                else:
                    weights = self._load_weights()
                    if name not in weights:
                        raise KeyError(f"this run has no {name!r} weights (it has {', '.join(self.available())})")
                    v = copy.deepcopy(self.bundle.model.visual).float()
                    v.load_state_dict(weights[name])
                    self._visuals[name] = v.eval()
            return self._visuals[name]

    def embed(self, name: str, indices) -> np.ndarray:
        visual = self.visual(name)
        amp = use_bf16(self.config, self.device)  # the run's own precision: features as its evaluations saw them
        parts = load_batched(self.table, indices, lambda ims: [embed_images(visual, self.pipeline, ims, amp=amp)])
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted class index of each embedded image among all classes."""
        return (torch.as_tensor(features) @ self.text.cpu().t()).argmax(-1).numpy()

