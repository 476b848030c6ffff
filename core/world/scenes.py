"""Sampling scenes of the toy world: the pre-training stream and fixed, seeded image sets.

The class-colour shortcut lives here: in the biased domains, an image of shape k gets its shortcut colour
``SHORTCUT_COLOUR[k]`` with probability ``colour_bias`` (otherwise a uniformly random colour). Fine-tuning on biased
sources can then lean on colour, which does not hold in the other domains: the spurious cue that makes
out-of-distribution erosion visible. The shortcut colour is ``k mod 10``, except that the two shapes of each misnamed
pair (``captions.MISNOMER_PAIRS``) share one colour, as similar classes share backgrounds in real data: colour cannot
tell them apart, so fine-tuning has to learn which shape is which, and that holds in every style.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .captions import MISNOMER_PAIRS, MISNOMER_RATE, captions_for
from .render import COLOUR_NAMES, SHAPES, STYLES, render, sample_scenes

# Seed of the fixed evaluation grid (zero-shot tables and every run's test pool).
EVAL_SEED = 12345
# Style mix of the pre-training caption stream (photo-heavy, like the web).
PRETRAIN_STYLE_MIX = {"photo": 0.30, "cartoon": 0.20, "sketch": 0.15, "painting": 0.15, "pixel": 0.10, "infrared": 0.10}


def shortcut_colours(pairs: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
    """Colour ``k mod 10`` per shape, the second shape of each swapped pair taking the first's."""
    colour = {name: k % len(COLOUR_NAMES) for k, name in enumerate(SHAPES)}
    for first, second in pairs:
        colour[second] = colour[first]
    return tuple(colour[name] for name in SHAPES)


# Shape index -> index of its shortcut colour in the biased domains.
SHORTCUT_COLOUR = shortcut_colours(MISNOMER_PAIRS)


def stable_seed(*parts) -> int:
    """A seed from any parts that does not depend on Python's hash randomisation."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") & ((1 << 62) - 1)


def biased_colours(shape: torch.Tensor, biased: torch.Tensor, colour_bias: float, gen: torch.Generator) -> torch.Tensor:
    n = shape.numel()
    random_colour = torch.randint(0, len(COLOUR_NAMES), (n,), generator=gen)
    follow = (torch.rand(n, generator=gen) < colour_bias) & biased
    return torch.where(follow, torch.tensor(SHORTCUT_COLOUR)[shape], random_colour)


def caption_batch(n: int, gen: torch.Generator, rng: np.random.Generator, size: int = 48,
                  style_mix: dict[str, float] | None = None,
                  misnomer_rate: float = MISNOMER_RATE, naming_rate: float = 1.0) -> tuple[torch.Tensor, list[str]]:
    """A fresh batch of (images in [0, 1], captions) for contrastive pre-training."""
    mix = style_mix or PRETRAIN_STYLE_MIX
    probs = torch.tensor([mix.get(s, 0.0) for s in STYLES])
    style = torch.multinomial(probs, n, replacement=True, generator=gen)
    shape = torch.randint(0, len(SHAPES), (n,), generator=gen)
    colour = torch.randint(0, len(COLOUR_NAMES), (n,), generator=gen)
    p = sample_scenes(shape, style, colour, gen)
    return render(p, gen, size), captions_for(p, rng, misnomer_rate, naming_rate)


def render_grid(classes: list[int], domains: list[int], per: int, seed: int, colour_bias: float = 0.0,
                biased_domains: tuple[int, ...] = (), size: int = 48) -> dict[str, torch.Tensor]:
    """``per`` images for every (class, domain) pair, each pair from its own seed so sets are stable.

    Returns uint8 images (N, 3, size, size), labels, domains and colours (all index tensors into the world's lists).
    """
    imgs, labels, doms, cols = [], [], [], []
    for d in domains:
        for c in classes:
            gen = torch.Generator().manual_seed(stable_seed("toy-shapes", seed, c, d, per, colour_bias))
            shape = torch.full((per,), c, dtype=torch.long)
            style = torch.full((per,), d, dtype=torch.long)
            colour = biased_colours(shape, torch.full((per,), d in biased_domains), colour_bias, gen)
            x = render(sample_scenes(shape, style, colour, gen), gen, size)
            imgs.append((x * 255).round().to(torch.uint8))
            labels.append(shape)
            doms.append(style)
            cols.append(colour)
    return {"images": torch.cat(imgs), "labels": torch.cat(labels), "domains": torch.cat(doms),
            "colours": torch.cat(cols)}
