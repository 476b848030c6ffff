"""Images to model inputs: resize/crop, the paper's train augmentation, normalisation. Deterministic by seed.

Accepts uint8 CHW tensors (the toy world) and PIL images (files, hub datasets) alike.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _to_tensor(img) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _resize_center(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the short side to ``size`` then centre-crop (CLIP's eval transform)."""
    c, h, w = x.shape
    if (h, w) != (size, size):
        s = size / min(h, w)
        nh, nw = max(size, round(h * s)), max(size, round(w * s))
        x = F.interpolate(x[None].float(), size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)[0]
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[:, top:top + size, left:left + size]
    return x.float()


def _random_resized_crop(x: torch.Tensor, size: int, gen: torch.Generator, scale=(0.7, 1.0),
                         ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    c, h, w = x.shape
    area = h * w
    for _ in range(10):
        a = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(1, generator=gen).item())
        logr = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(1, generator=gen).item()
        r = math.exp(logr)
        cw, ch = int(round(math.sqrt(a * r))), int(round(math.sqrt(a / r)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            crop = x[:, top:top + ch, left:left + cw].float()
            return F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True)[0]
    return _resize_center(x, size)


def _open_clip_geometry(size: int, interpolation: str, resize_mode: str):
    """The resize/crop steps of open_clip's own eval transform (everything before ToTensor + Normalize), so a real
    image reaches the model exactly as ``open_clip.create_model_and_transforms`` would feed it."""
    from open_clip.transform import image_transform

    steps = image_transform(size, is_train=False, resize_mode=resize_mode, interpolation=interpolation).transforms
    return [t for t in steps if type(t).__name__ not in ("MaybeConvertMode", "MaybeToTensor", "ToTensor",
                                                          "Normalize")]


class ImagePipeline:
    """Model-specific preprocessing; ``augment`` switches on RandomResizedCrop(0.7-1) + horizontal flip.

    PIL images (real data) go through open_clip's eval geometry for the model (interpolation, resize mode);
    uint8 tensors (the toy world) through an equivalent torch resize.
    """

    def __init__(self, image_size: int, mean, std, interpolation: str = "bicubic", resize_mode: str = "shortest"):
        self.size = int(image_size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255
        self.interpolation, self.resize_mode = interpolation, resize_mode
        self._geometry = None

    def _raw_one(self, im) -> torch.Tensor:
        if isinstance(im, torch.Tensor):
            return _resize_center(im, self.size).round().clamp(0, 255).to(torch.uint8)
        if self._geometry is None:
            self._geometry = _open_clip_geometry(self.size, self.interpolation, self.resize_mode)
        for t in self._geometry:
            im = t(im)
        return _to_tensor(im)

    def raw(self, images: list) -> torch.Tensor:
        """uint8 (B, 3, S, S) at the model's size, no augmentation (cacheable)."""
        return torch.stack([self._raw_one(im) for im in images])

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean.to(x.device)) / self.std.to(x.device)

    def train_batch(self, images: list, gen: torch.Generator | None, augment: bool) -> torch.Tensor:
        if not augment or gen is None:
            return self.normalise(self.raw(images))
        out = []
        for im in images:
            x = _random_resized_crop(_to_tensor(im), self.size, gen)
            if torch.rand(1, generator=gen).item() < 0.5:
                x = x.flip(-1)
            out.append(x)
        return self.normalise(torch.stack(out))
