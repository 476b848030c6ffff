"""A fabricated warm Hugging Face cache: random weights of the right shapes saved exactly where ``hf_hub_download``
looks for an open_clip pretrained tag, so the real download path runs offline (``HF_HUB_OFFLINE=1``)."""

from pathlib import Path

import torch


def fabricate_open_clip_cache(cache: Path, model: str, tag: str) -> Path:
    """Write ``models--org--repo/{refs/main, snapshots/<rev>/<file>}`` for ``model``/``tag``; returns the file."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME
    from safetensors.torch import save_file

    cfg = open_clip.get_pretrained_cfg(model, tag)
    repo, filename = cfg["hf_hub"].rstrip("/").rsplit("/", 1) if not cfg["hf_hub"].endswith("/") else \
        (cfg["hf_hub"].rstrip("/"), HF_SAFE_WEIGHTS_NAME)
    if filename.endswith((".bin", ".pth", ".pt")):
        filename = HF_SAFE_WEIGHTS_NAME
    rev = "0" * 40
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(rev)
    target = folder / "snapshots" / rev / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m = open_clip.create_model(model, force_quick_gelu=bool(cfg.get("quick_gelu")))
    save_file({k: v.half().contiguous() for k, v in m.state_dict().items()}, str(target))
    return target
