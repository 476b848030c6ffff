"""Accuracy per split, as every run, ``python -m core eval`` and the Studio's zero-shot reference compute it.

Each split is scored on its own images among its own candidate classes (frozen class text features, cosine argmax,
no margin, no temperature). The eval images are decoded once (uint8 at model size, disk-cached for real data);
intermediate evaluations use a fixed, seeded subsample per split, the final one every image.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from .data.cache import eval_images
from .data.pipeline import ImagePipeline
from .data.splits import Splits, harmonic_mean
from .features import class_text_features
from .io import load_safetensors, save_safetensors
from .lru import LRU
from .world.scenes import stable_seed

# Images per forward pass when evaluating: on 2 CPU cores 64 is about 15 % faster than 256 (the activations stay in
# cache; measured with the embedded model, 2,880 images: 2.3 s against 2.7 s); an accelerator wants larger batches.
EVAL_BATCH = {"cpu": 64}
EVAL_BATCH_ACCELERATOR = 256
TEXT_CACHE_SIZE = 8  # class text features of the last few (model, classes, templates) a process used
_TEXT_CACHE = LRU(TEXT_CACHE_SIZE)


def text_features_cached(bundle, classes: list[str], templates, ensemble: bool, device) -> torch.Tensor:
    """Class text features (names with '_' read as spaces), from a small LRU: a second run on the same data and
    model skips the text tower."""
    key = (bundle.model_id, bundle.pretrained, tuple(classes), tuple(templates), ensemble, str(device))
    return _TEXT_CACHE.get(key, lambda: class_text_features(
        bundle.model, bundle.tokenizer, [c.replace("_", " ") for c in classes], templates, device, ensemble))


def image_features(visual: torch.nn.Module, x: torch.Tensor, amp: bool) -> torch.Tensor:
    """L2-normalised fp32 features of a normalised image batch (bf16 autocast when ``amp``): what every evaluation
    and every embedding of a run's weights computes, so both see the same features."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        f = visual(x)
    return F.normalize(f.float(), dim=-1)


@torch.no_grad()
def embed_rows(visual: torch.nn.Module, images: torch.Tensor, rows: np.ndarray, pipeline: ImagePipeline,
               device: torch.device, amp: bool, batch: int | None = None) -> torch.Tensor:
    """L2-normalised fp32 features of uint8 ``images[rows]`` (bf16 autocast when ``amp``), ``batch`` at a time
    (default: the device's ``EVAL_BATCH``)."""
    batch = batch or EVAL_BATCH.get(device.type, EVAL_BATCH_ACCELERATOR)
    out = []
    for i in range(0, len(rows), batch):
        out.append(image_features(visual, pipeline.normalise(images[rows[i:i + batch]].to(device)), amp))
    return torch.cat(out)


def _subsamples(splits: Splits, subsample: int, seed: int) -> dict[str, np.ndarray]:
    """A fixed, seeded subsample of each split; per-domain splits draw from their parent's when they overlap."""
    sub: dict[str, np.ndarray] = {}
    for name, s in splits.evals.items():
        parent = name.split("/")[0]
        if "/" in name and parent in sub:
            sub[name] = np.intersect1d(sub[parent], s.indices)
            if len(sub[name]):
                continue
        rng = np.random.default_rng(stable_seed("eval-subsample", seed, name))
        keep = s.indices[rng.permutation(len(s.indices))[:subsample]] if len(s.indices) > subsample else s.indices
        sub[name] = np.sort(keep)
    return sub


class SplitEvaluator:
    """Fixed eval images (uint8 at model size, in memory) and each split's candidate classifier."""

    def __init__(self, table, splits: Splits, pipeline: ImagePipeline, text: torch.Tensor, device, subsample: int,
                 seed: int, amp: bool | None = None):
        self.pipeline, self.device, self.text = pipeline, torch.device(device), text
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.splits = splits
        all_idx = np.unique(np.concatenate([s.indices for s in splits.evals.values()]))
        self.pos = {int(i): k for k, i in enumerate(all_idx)}
        self.images = eval_images(table, all_idx, pipeline)  # uint8 at model size; disk-cached for real data
        self.labels = torch.as_tensor(table.labels[all_idx])
        self.sub = _subsamples(splits, subsample, seed)

    def subsample_is_full(self) -> bool:
        """Whether an intermediate evaluation sees every image of every split (then it is a full one)."""
        return all(len(self.sub[n]) == len(s.indices) for n, s in self.splits.evals.items())

    def features(self, visual: torch.nn.Module, rows: np.ndarray, batch: int | None = None) -> torch.Tensor:
        return embed_rows(visual, self.images, rows, self.pipeline, self.device, self.amp, batch)

    @torch.no_grad()
    def accuracy(self, visual: torch.nn.Module | None, full: bool,
                 all_features: torch.Tensor | None = None) -> dict[str, float]:
        """Accuracy per split; ``all_features`` (features of every eval row) skips the embedding pass."""
        chosen = {n: (s.indices if full else self.sub[n]) for n, s in self.splits.evals.items()}
        union = np.unique(np.concatenate(list(chosen.values())))
        rows = np.asarray([self.pos[int(i)] for i in union])
        if all_features is not None:
            feats = all_features[torch.as_tensor(rows)].to(self.device).float()
        else:
            visual.eval()
            feats = self.features(visual, rows)
        where = {int(i): k for k, i in enumerate(union)}
        acc = {}
        for name, idx in chosen.items():
            s = self.splits.evals[name]
            f = feats[[where[int(i)] for i in idx]]
            cand = torch.as_tensor(s.candidates, device=f.device)
            pred = cand[(f @ self.text[cand].t()).argmax(-1)].cpu()
            labels = self.labels[[self.pos[int(i)] for i in idx]]
            acc[name] = round(100.0 * (pred == labels).float().mean().item(), 4)
        for name, (a, b) in self.splits.harmonic.items():
            acc[name] = round(harmonic_mean(acc[a], acc[b]), 4)
        return acc


# What a run's zero-shot accuracy (and its zero-shot models) depends on: the one key every cache of it uses.
ZEROSHOT_FIELDS = ("model", "pretrained", "dataset", "setting", "sources", "targets", "base_classes", "ensemble",
                   "seed", "precision")


def zeroshot_key(cfg: dict) -> tuple:
    """Everything the zero-shot result of a run config (as a dict) depends on, hashable."""
    return tuple(repr(cfg.get(k)) for k in ZEROSHOT_FIELDS) + (repr(sorted((cfg.get("data_options") or {}).items())),)


ZEROSHOT_CACHE_SIZE = 8  # zero-shot features of the last few (eval images, weights) a process evaluated
_ZEROSHOT_CACHE = LRU(ZEROSHOT_CACHE_SIZE)


def content_hash(tensors) -> str:
    """sha256 of the bytes of some tensors (in order): a key that cannot go stale while the process runs."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def zeroshot_features(evaluator: SplitEvaluator, visual, table, bundle) -> torch.Tensor:
    """Zero-shot image features of every eval row (fp16 on CPU). Kept in memory, keyed by the content of the eval
    images and of the weights, so a second run of the same data and model (the Studio's next run, the warm-up's)
    skips the pass; also disk-cached for tables with a fingerprint."""
    pipe = evaluator.pipeline
    key = (content_hash([evaluator.images, pipe.mean, pipe.std]), content_hash(visual.state_dict().values()),
           pipe.size, str(evaluator.device.type), evaluator.amp)
    return _ZEROSHOT_CACHE.get(key, lambda: _zeroshot_features_stored(evaluator, visual, table, bundle))


def _zeroshot_features_stored(evaluator: SplitEvaluator, visual, table, bundle) -> torch.Tensor:
    """Disk-cached for tables with a fingerprint, else computed."""
    from .data.cache import PREPROCESS_VERSION, cache_root, key_of

    def compute():
        return evaluator.features(visual.eval(), np.arange(len(evaluator.images))).half().cpu()

    fp = (table.info or {}).get("fingerprint")
    root = cache_root()
    if not fp or root is None:
        return compute()
    rows = sorted(evaluator.pos)
    key = key_of("zeroshot-features", fp, rows, bundle.model_id, bundle.pretrained, bundle.image_size,
                 PREPROCESS_VERSION, str(evaluator.device.type), "bf16" if evaluator.amp else "fp32")
    path = root / "zeroshot" / f"{key}.safetensors"
    if path.is_file():
        try:
            f = load_safetensors(path)["features"]
            if f.shape[0] == len(rows):
                return f
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    f = compute()
    try:
        save_safetensors({"features": f}, path, metadata={"model": bundle.model_id})
    except OSError:
        pass
    return f
