"""Frozen text classifiers and batched image features: what every method and view evaluates with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def class_text_features(model, tokenizer, classnames: list[str], templates: list[str] | tuple[str, ...],
                        device: torch.device | str = "cpu", ensemble: bool = True) -> torch.Tensor:
    """(n_classes, dim) L2-normalised text features; with ``ensemble`` the mean over templates (renormalised),
    otherwise the first template only."""
    temps = list(templates) if ensemble else list(templates)[:1]
    out = []
    for name in classnames:
        tok = tokenizer([t.format(name) for t in temps]).to(device)
        f = F.normalize(model.encode_text(tok).float(), dim=-1).mean(0)
        out.append(F.normalize(f, dim=-1))
    return torch.stack(out)

