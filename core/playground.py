"""Zero-shot classification of one image among any class names, under several weight sets of the same CLIP.

The Studio's Playground: the text tower is frozen in every method, so one set of class text features serves the
zero-shot model and every fine-tuned image tower; probabilities are ``softmax(logit_scale * cos(f, t_k))``.
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F

from .data.pipeline import ImagePipeline

MAX_CLASSES = 64
MAX_NAME_CHARS = 60


class PlaygroundError(ValueError):
    """Bad playground input; the message says what to fix."""


def parse_class_names(text: str) -> list[str]:
    """Class names from free text (commas or new lines), stripped, de-duplicated in order; 2..64 names."""
    names: list[str] = []
    for part in re.split(r"[,\n;]", text or ""):
        name = " ".join(part.split())
        if name and name.lower() not in (n.lower() for n in names):
            if len(name) > MAX_NAME_CHARS:
                raise PlaygroundError(f"class name too long (max {MAX_NAME_CHARS} characters): {name[:20]}...")
            names.append(name)
    if len(names) < 2:
        raise PlaygroundError("type at least two class names, separated by commas")
    if len(names) > MAX_CLASSES:
        raise PlaygroundError(f"at most {MAX_CLASSES} class names (got {len(names)})")
    return names


def image_tensor(image) -> torch.Tensor:
    """uint8 CHW tensor from a PIL image, an HWC/HW numpy array or a CHW uint8 tensor."""
    if isinstance(image, torch.Tensor):
        return image
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise PlaygroundError(f"expected an RGB image, got an array of shape {a.shape}")
        if a.dtype != np.uint8:
            a = np.clip(a * (255 if a.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        return torch.from_numpy(np.ascontiguousarray(a[..., :3])).permute(2, 0, 1)
    if hasattr(image, "convert"):
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    raise PlaygroundError("no image: upload one or pick one from the dataset")


@torch.no_grad()
def class_probabilities(visuals: dict[str, torch.nn.Module], pipeline: ImagePipeline, image,
                        text_features: torch.Tensor, logit_scale: float) -> dict[str, np.ndarray]:
    """Per weight set (name -> image tower): the (K,) class probabilities of one image."""
    x = image_tensor(image)
    out = {}
    for name, visual in visuals.items():
        device = next(visual.parameters()).device
        inp = pipeline.normalise(pipeline.raw([x]).to(device))
        f = F.normalize(visual(inp).float(), dim=-1)
        logits = logit_scale * f @ text_features.to(device).float().t()
        out[name] = logits.softmax(-1)[0].cpu().numpy()
    return out
