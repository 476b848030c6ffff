"""Procedural renderer of the toy-shapes world: batched torch on CPU or GPU.

Each shape is drawn once into a signed-distance-field (SDF) atlas. Every image warps its shape's SDF with its own
affine transform (one ``grid_sample`` call for the batch), and each render style turns the SDF in pixel units into
pixels: anti-aliased fills, wobbly outlines, bevel shading, glow. Deterministic given a ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt

SHAPES = (
    "circle", "square", "triangle", "star", "heart", "cross", "ring", "diamond",
    "hexagon", "crescent", "arrow", "semicircle", "pentagon", "cloud", "lightning bolt", "drop",
)
COLOURS = {
    "red": (0.86, 0.12, 0.12), "orange": (0.96, 0.52, 0.08), "yellow": (0.97, 0.86, 0.12),
    "green": (0.16, 0.66, 0.22), "blue": (0.14, 0.32, 0.88), "purple": (0.55, 0.20, 0.72),
    "pink": (0.96, 0.48, 0.70), "brown": (0.50, 0.30, 0.14), "cyan": (0.12, 0.78, 0.84),
    "gray": (0.52, 0.52, 0.52),
}
COLOUR_NAMES = tuple(COLOURS)
STYLES = ("photo", "sketch", "cartoon", "painting", "pixel", "infrared")
SIZES = ("small", "medium", "big")
SIZE_SCALE = ((0.30, 0.42), (0.42, 0.55), (0.55, 0.68))
ATLAS = 256


def _polygon(n: int, r: float, rot: float = -math.pi / 2, c=(0.0, 0.0)) -> list[tuple[float, float]]:
    return [(c[0] + r * math.cos(rot + 2 * math.pi * i / n), c[1] + r * math.sin(rot + 2 * math.pi * i / n))
            for i in range(n)]


# Shapes that are one fixed polygon (canvas units, [-1, 1]).
_FIXED_POLYGONS = {
    "square": [(-0.78, -0.78), (0.78, -0.78), (0.78, 0.78), (-0.78, 0.78)],
    "diamond": [(0, -0.95), (0.62, 0), (0, 0.95), (-0.62, 0)],
    "arrow": [(-0.9, -0.22), (0.15, -0.22), (0.15, -0.6), (0.92, 0), (0.15, 0.6), (0.15, 0.22), (-0.9, 0.22)],
    "lightning bolt": [(0.15, -0.95), (-0.55, 0.1), (-0.05, 0.1), (-0.25, 0.95), (0.55, -0.15), (0.05, -0.15),
                       (0.3, -0.95)],
}


def _star_points() -> list[tuple[float, float]]:
    """A five-pointed star: ten vertices alternating between outer and inner radius."""
    pts = []
    for i in range(10):
        r = 0.95 if i % 2 == 0 else 0.4
        a = -math.pi / 2 + math.pi * i / 5
        pts.append((r * math.cos(a), r * math.sin(a) + 0.05))
    return pts


def _draw_shape(name: str, size: int) -> np.ndarray:
    """Binary mask of one shape on a size x size canvas, in units where the canvas spans [-1, 1]."""
    img = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(img)

    def px(pts):
        return [((x + 1) * size / 2, (y + 1) * size / 2) for x, y in pts]

    def ell(cx, cy, rx, ry, fill=255):
        d.ellipse(px([(cx - rx, cy - ry), (cx + rx, cy + ry)]), fill=fill)

    if name in _FIXED_POLYGONS:
        d.polygon(px(_FIXED_POLYGONS[name]), fill=255)
    elif name == "circle":
        ell(0, 0, 0.9, 0.9)
    elif name == "triangle":
        d.polygon(px(_polygon(3, 0.95, c=(0, 0.15))), fill=255)
    elif name == "star":
        d.polygon(px(_star_points()), fill=255)
    elif name == "heart":
        ell(-0.42, -0.32, 0.45, 0.45)
        ell(0.42, -0.32, 0.45, 0.45)
        d.polygon(px([(-0.85, -0.15), (0.85, -0.15), (0.0, 0.85)]), fill=255)
    elif name == "cross":
        d.polygon(px([(-0.28, -0.9), (0.28, -0.9), (0.28, 0.9), (-0.28, 0.9)]), fill=255)
        d.polygon(px([(-0.9, -0.28), (0.9, -0.28), (0.9, 0.28), (-0.9, 0.28)]), fill=255)
    elif name == "ring":
        ell(0, 0, 0.9, 0.9)
        ell(0, 0, 0.5, 0.5, fill=0)
    elif name == "hexagon":
        d.polygon(px(_polygon(6, 0.9, rot=0.0)), fill=255)
    elif name == "crescent":
        ell(0, 0, 0.85, 0.85)
        ell(0.38, -0.12, 0.7, 0.7, fill=0)
    elif name == "semicircle":
        d.pieslice(px([(-0.9, -0.6), (0.9, 1.2)]), 180, 360, fill=255)
    elif name == "pentagon":
        d.polygon(px(_polygon(5, 0.92, c=(0, 0.06))), fill=255)
    elif name == "cloud":
        for cx, cy, r in ((-0.5, 0.15, 0.38), (0.0, -0.15, 0.5), (0.5, 0.12, 0.4), (0.0, 0.3, 0.35)):
            ell(cx, cy, r, r)
        d.polygon(px([(-0.5, 0.2), (0.5, 0.2), (0.5, 0.52), (-0.5, 0.52)]), fill=255)
    elif name == "drop":
        ell(0, 0.3, 0.58, 0.58)
        d.polygon(px([(0, -0.95), (0.52, 0.08), (-0.52, 0.08)]), fill=255)
    else:
        raise ValueError(f"unknown shape {name!r}")
    return np.asarray(img) > 127


@lru_cache(maxsize=1)
def sdf_atlas() -> torch.Tensor:
    """(n_shapes, 1, ATLAS, ATLAS) signed distance (negative inside) in canvas units ([-1, 1] spans the canvas)."""
    out = []
    for name in SHAPES:
        big = _draw_shape(name, ATLAS * 2)
        mask = big.reshape(ATLAS, 2, ATLAS, 2).mean(axis=(1, 3)) > 0.5
        sdf = distance_transform_edt(~mask) - distance_transform_edt(mask)
        out.append(sdf.astype(np.float32) / (ATLAS / 2))
    return torch.from_numpy(np.stack(out))[:, None]


@dataclass
class SceneParams:
    """Everything random about a batch of scenes except per-style texture noise."""

    shape: torch.Tensor  # (B,) long
    colour: torch.Tensor  # (B,) long
    size: torch.Tensor  # (B,) long, index into SIZES
    style: torch.Tensor  # (B,) long
    scale: torch.Tensor  # (B,)
    pos: torch.Tensor  # (B, 2) centre in [-1, 1]
    angle: torch.Tensor  # (B,) radians
    aspect: torch.Tensor  # (B,)

    def __len__(self) -> int:
        return int(self.shape.numel())

    def index(self, idx) -> SceneParams:
        return SceneParams(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


def sample_scenes(shape: torch.Tensor, style: torch.Tensor, colour: torch.Tensor, gen: torch.Generator) -> SceneParams:
    """Random size, position, rotation and aspect for given shapes, styles and colours."""
    b = shape.numel()
    size = torch.randint(0, 3, (b,), generator=gen)
    lo = torch.tensor([s[0] for s in SIZE_SCALE])[size]
    hi = torch.tensor([s[1] for s in SIZE_SCALE])[size]
    scale = lo + (hi - lo) * torch.rand(b, generator=gen)
    room = (1.0 - scale).clamp(min=0.0) * 0.85
    pos = (torch.rand(b, 2, generator=gen) * 2 - 1) * room[:, None]
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(20)
    aspect = 0.88 + 0.24 * torch.rand(b, generator=gen)
    return SceneParams(shape, colour, size, style, scale, pos, angle, aspect)


def _smooth_noise(b: int, h: int, cells: int, gen: torch.Generator, ch: int = 1) -> torch.Tensor:
    n = torch.rand(b, ch, cells, cells, generator=gen) * 2 - 1
    return F.interpolate(n, size=(h, h), mode="bicubic", align_corners=False)


def _octaves(b: int, h: int, gen: torch.Generator, ch: int = 1) -> torch.Tensor:
    return sum(_smooth_noise(b, h, c, gen, ch) * w for c, w in ((3, 0.55), (6, 0.3), (12, 0.15)))


def _sdf_pixels(p: SceneParams, h: int, offset: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1, h, h) signed distance in output pixels at each pixel (negative inside the object)."""
    b = len(p)
    cos, sin = torch.cos(p.angle), torch.sin(p.angle)
    sx = p.scale * p.aspect
    sy = p.scale / p.aspect
    # output coords u -> atlas coords a = R^-1 (u - c) / s
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = sin / sx
    theta[:, 1, 0] = -sin / sy
    theta[:, 1, 1] = cos / sy
    c = p.pos if offset is None else p.pos + offset
    theta[:, :, 2] = -(theta[:, :, :2] @ c[:, :, None])[:, :, 0]
    grid = F.affine_grid(theta, (b, 1, h, h), align_corners=False)
    atlas = sdf_atlas()[p.shape]
    s = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="border", align_corners=False)
    outside = (grid.abs() - 1).clamp(min=0).norm(dim=-1)[:, None]
    return (s + outside) * p.scale[:, None, None, None] * (h / 2)


def _fill(d: torch.Tensor, soft: float = 0.5) -> torch.Tensor:
    return (0.5 - d / (2 * soft)).clamp(0, 1)


def _line(d: torch.Tensor, width: float) -> torch.Tensor:
    return (width / 2 + 0.5 - d.abs()).clamp(0, 1)


def _rgb(p: SceneParams) -> torch.Tensor:
    table = torch.tensor(list(COLOURS.values()))
    return table[p.colour][:, :, None, None]


def _render_photo(p, h, gen):
    b = len(p)
    d = _sdf_pixels(p, h)
    tint = torch.rand(b, 3, 1, 1, generator=gen) * 0.5 + 0.35
    bg = (tint + 0.22 * _octaves(b, h, gen, 3)).clamp(0, 1)
    shadow = _fill(_sdf_pixels(p, h, offset=torch.full((b, 2), 0.08)) - 1.0, soft=2.0)
    bg = bg * (1 - 0.45 * shadow)
    depth = (-d / (0.25 * p.scale[:, None, None, None] * h)).clamp(0, 1)
    yy = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    light = 0.75 + 0.35 * depth.sqrt() - 0.15 * yy
    obj = (_rgb(p) * light).clamp(0, 1)
    a = _fill(d)
    img = bg * (1 - a) + obj * a
    return (img + 0.03 * torch.randn(img.shape, generator=gen)).clamp(0, 1)


def _render_sketch(p, h, gen):
    b = len(p)
    paper = 0.93 + 0.04 * _smooth_noise(b, h, 8, gen)
    bg = paper.expand(b, 3, h, h) * torch.tensor([1.0, 0.98, 0.93]).view(1, 3, 1, 1)
    d = _sdf_pixels(p, h)
    ink = torch.zeros(b, 1, h, h)
    for _ in range(2):
        wob = d + 1.1 * _smooth_noise(b, h, 10, gen)
        ink = torch.maximum(ink, 0.85 * _line(wob, 0.9))
    xx = torch.arange(h).view(1, 1, 1, h).float()
    yy = torch.arange(h).view(1, 1, h, 1).float()
    hatch_on = (torch.rand(b, 1, 1, 1, generator=gen) < 0.5).float()
    hatch = ((torch.sin((xx + yy) * 1.3) > 0.55).float() * _fill(d + 1.0)) * hatch_on * 0.45
    ink = torch.maximum(ink, hatch)
    coloured = (torch.rand(b, 1, 1, 1, generator=gen) < 0.5).float()
    pencil = coloured * (_rgb(p) * 0.8) + (1 - coloured) * torch.full((b, 3, 1, 1), 0.18)
    img = bg * (1 - ink) + pencil * ink
    return (img + 0.02 * torch.randn(img.shape, generator=gen)).clamp(0, 1)


def _render_cartoon(p, h, gen):
    b = len(p)
    pastel = 0.75 + 0.25 * torch.rand(b, 3, 1, 1, generator=gen)
    pastel2 = 0.75 + 0.25 * torch.rand(b, 3, 1, 1, generator=gen)
    split = (torch.rand(b, 1, 1, 1, generator=gen) < 0.5).float()
    yy = torch.linspace(-1, 1, h).view(1, 1, h, 1)
    bg = pastel + split * (yy > 0.2).float() * (pastel2 - pastel)
    bg = bg.expand(b, 3, h, h)
    d = _sdf_pixels(p, h)
    col = (_rgb(p) * 1.1).clamp(0, 1)
    a = _fill(d)
    img = bg * (1 - a) + col * a
    hl_off = torch.stack([-0.35 * p.scale, -0.35 * p.scale], dim=1)
    hl = _fill(_sdf_pixels(SceneParams(**{**p.__dict__, "scale": p.scale * 0.18}), h, offset=hl_off))
    img = img * (1 - 0.6 * hl * a) + 0.6 * hl * a
    line = _line(d, 2.2)
    return (img * (1 - line)).clamp(0, 1)


def _render_painting(p, h, gen):
    b = len(p)
    canvas = 0.55 + 0.3 * torch.rand(b, 3, 1, 1, generator=gen)
    streak = F.avg_pool2d(torch.rand(b, 3, h, h + 8, generator=gen), (1, 9), stride=1)
    bg = (canvas + 0.18 * (streak - 0.5) + 0.12 * _octaves(b, h, gen, 3)).clamp(0, 1)
    d = _sdf_pixels(p, h) + 2.2 * _smooth_noise(b, h, 6, gen)
    brush = F.avg_pool2d(torch.rand(b, 1, h + 8, h, generator=gen), (9, 1), stride=1)
    col = (_rgb(p) * (0.85 + 0.4 * (brush - 0.5))).clamp(0, 1)
    a = _fill(d, soft=1.2)
    img = bg * (1 - a) + col * a
    img = F.avg_pool2d(F.pad(img, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return img.clamp(0, 1)


def _render_pixel(p, h, gen):
    b = len(p)
    lo = h // 3
    d = _sdf_pixels(p, lo * 3)
    d = F.avg_pool2d(d, 3) / 3.0
    bg = (0.3 + 0.6 * torch.rand(b, 3, 1, 1, generator=gen)).expand(b, 3, lo, lo)
    checker = ((torch.arange(lo).view(1, 1, lo, 1) // 4 + torch.arange(lo).view(1, 1, 1, lo) // 4) % 2).float()
    bg = bg * (0.9 + 0.1 * checker)
    a = (d < 0).float()
    img = bg * (1 - a) + _rgb(p) * a
    img = torch.round(img * 3) / 3
    return F.interpolate(img, size=(h, h), mode="nearest")


_THERMAL = torch.tensor([[0.0, 0.0, 0.05], [0.35, 0.0, 0.55], [0.85, 0.1, 0.25], [1.0, 0.6, 0.0], [1.0, 1.0, 0.85]])


def _render_infrared(p, h, gen):
    b = len(p)
    d = _sdf_pixels(p, h)
    body = _fill(d, soft=1.5)
    glow = torch.exp(-d.clamp(min=0) / (1.5 + 2.5 * torch.rand(b, 1, 1, 1, generator=gen)))
    heat = 0.15 + 0.12 * _octaves(b, h, gen) + 0.35 * glow + 0.45 * body
    heat = heat + 0.12 * (-d / h).clamp(0, 1) * 4 * body
    heat = heat.clamp(0, 1)
    grey = (torch.rand(b, 1, 1, 1, generator=gen) < 0.35).float()
    pos = heat[:, 0] * (len(_THERMAL) - 1)
    i0 = pos.floor().long().clamp(0, len(_THERMAL) - 2)
    t = (pos - i0)[..., None]
    thermal = (_THERMAL[i0] * (1 - t) + _THERMAL[i0 + 1] * t).permute(0, 3, 1, 2)
    img = grey * heat.expand(b, 3, h, h) + (1 - grey) * thermal
    return (img + 0.03 * torch.randn(img.shape, generator=gen)).clamp(0, 1)


_STYLE_FN = {
    "photo": _render_photo, "sketch": _render_sketch, "cartoon": _render_cartoon,
    "painting": _render_painting, "pixel": _render_pixel, "infrared": _render_infrared,
}


def render(p: SceneParams, gen: torch.Generator, size: int = 48) -> torch.Tensor:
    """(B, 3, size, size) float images in [0, 1]. Styles are rendered group by group in a fixed order."""
    out = torch.empty(len(p), 3, size, size)
    for si, style in enumerate(STYLES):
        idx = (p.style == si).nonzero().flatten()
        if idx.numel():
            out[idx] = _STYLE_FN[style](p.index(idx), size, gen)
    return out
