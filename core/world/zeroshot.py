"""Zero-shot accuracy of a CLIP on the world's fixed evaluation grid, per style (used while pre-training)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..features import class_text_features
from .captions import TOY_TEMPLATES
from .render import SHAPES, STYLES
from .scenes import EVAL_SEED, render_grid


@torch.no_grad()
def zeroshot_table(model, device, per: int = 30, size: int = 48) -> dict[str, float]:
    import open_clip

    tok = open_clip.SimpleTokenizer(context_length=model.context_length)
    text = class_text_features(model, tok, list(SHAPES), TOY_TEMPLATES, device)
    grid = render_grid(list(range(len(SHAPES))), list(range(len(STYLES))), per, EVAL_SEED, size=size)
    x = (grid["images"].float() / 255 - 0.5) / 0.25
    preds = []
    for i in range(0, len(x), 512):
        f = F.normalize(model.encode_image(x[i:i + 512].to(device)).float(), dim=-1)
        preds.append((f @ text.t()).argmax(-1).cpu())
    correct = (torch.cat(preds) == grid["labels"]).float()
    table = {s: 100 * correct[grid["domains"] == i].mean().item() for i, s in enumerate(STYLES)}
    table["mean"] = sum(table.values()) / len(STYLES)
    return table
