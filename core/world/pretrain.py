"""Pre-train the tiny CLIP (``toy-clip``) on the toy world's caption stream; writes an open_clip ``local-dir:`` folder.

    python -m core.world.pretrain --out assets/models/toy-clip --steps 2400 --seed 0

Contrastive (symmetric InfoNCE) on freshly rendered (image, caption) batches, CPU or CUDA. The committed asset is the
output of exactly this command; ``pretrain_log.json`` beside it records the command, seed, wall time and the
zero-shot table measured at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..schedule import cosine_lr
from ..io import atomic_write_json, save_safetensors
from .scenes import caption_batch, stable_seed

TOY_CLIP_CFG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 48, "patch_size": 8, "width": 128, "layers": 4, "head_width": 64},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 3},
}
TOY_PREPROCESS = {"size": 48, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic",
                  "resize_mode": "shortest"}


def build_model(cfg: dict = TOY_CLIP_CFG):
    import open_clip

    return open_clip.CLIP(**cfg)


def write_local_dir(model: torch.nn.Module, out: Path, cfg: dict = TOY_CLIP_CFG, dtype=torch.float16) -> str:
    """Write an open_clip local-dir folder; returns the sha256 of the weights file."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "open_clip_config.json", {"model_cfg": cfg, "preprocess_cfg": TOY_PREPROCESS})
    state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    save_safetensors(state, out / "open_clip_model.safetensors")
    return hashlib.sha256((out / "open_clip_model.safetensors").read_bytes()).hexdigest()


def _param_groups(model: torch.nn.Module, wd: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name or "token_embedding" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.world.pretrain", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default="assets/models/toy-clip", help="output local-dir folder")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--device", default="auto", help="auto|cpu|cuda")
    ap.add_argument("--save-at", type=int, nargs="*", default=[], help="also keep checkpoints at these steps")
    ap.add_argument("--eval-every", type=int, default=400)
    args = ap.parse_args(argv)

    from .zeroshot import zeroshot_table

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(args.seed)
    import open_clip

    model = build_model().to(device)
    tokenizer = open_clip.SimpleTokenizer(context_length=TOY_CLIP_CFG["text_cfg"]["context_length"])
    opt = torch.optim.AdamW(_param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(stable_seed("pretrain", args.seed))
    rng = np.random.default_rng(args.seed)
    mean = torch.tensor(TOY_PREPROCESS["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(TOY_PREPROCESS["std"], device=device).view(1, 3, 1, 1)
    out = Path(args.out)
    log = {"command": "python -m core.world.pretrain " + " ".join(argv if argv is not None else sys.argv[1:]),
           "args": vars(args), "device": str(device), "torch": torch.__version__, "history": []}
    amp = device.type == "cuda"
    t0 = time.time()
    for step in range(1, args.steps + 1):
        lr = args.lr * step / args.warmup if step <= args.warmup else cosine_lr(
            args.lr, step - args.warmup, args.steps - args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        imgs, caps = caption_batch(args.batch, gen, rng)
        x = ((imgs.to(device) - mean) / std)
        tok = tokenizer(caps).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            fi, ft, scale = model(x, tok)
            logits = scale * fi.float() @ ft.float().t()
            target = torch.arange(len(caps), device=device)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == 1:
            el = time.time() - t0
            print(f"step {step}/{args.steps} loss {loss.item():.3f} lr {lr:.2e} scale {model.logit_scale.exp().item():.1f}"
                  f" {el / 60:.1f} min", flush=True)
        if step % args.eval_every == 0 or step == args.steps:
            table = zeroshot_table(model.eval(), device, per=10)
            model.train()
            log["history"].append({"step": step, "loss": float(loss.item()), "minutes": (time.time() - t0) / 60,
                                   **table})
            print(f"  zero-shot @ {step}: " + " ".join(f"{k} {v:.1f}" for k, v in table.items()), flush=True)
            atomic_write_json(out / "pretrain_log.json", log)
        if step in args.save_at:
            write_local_dir(model, out / "checkpoints" / f"step{step}")
    log["wall_minutes"] = (time.time() - t0) / 60
    model.eval()
    sha = write_local_dir(model, out)
    log["sha256"] = sha
    log["final_zeroshot_eval30"] = zeroshot_table(model, device, per=30)
    atomic_write_json(out / "pretrain_log.json", log)
    print(json.dumps({"sha256": sha, "wall_minutes": log["wall_minutes"], **log["final_zeroshot_eval30"]}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
