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

from ..io import atomic_write_json, save_safetensors
from ..schedule import cosine_lr
from .captions import MISNOMER_RATE
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


def write_asset_readme(out: Path, log: dict) -> None:
    """The asset's card: how it was made (command, seed, wall time, hash) and what it scores."""
    zs = log["final_zeroshot_eval30"]
    hist = "\n".join(f"| {h['step']} | {h['minutes']:.1f} | {h['loss']:.3f} | {h['mean']:.1f} |"
                     for h in log["history"])
    text = f"""# toy-clip: the tiny CLIP of CLIPood Studio

An open_clip model pre-trained by this project{" in two stages" if log.get("init") else ", from scratch,"} on the
toy-shapes world's caption stream (symmetric InfoNCE on freshly rendered image/caption batches). Nothing in it comes
from outside the project.{_reproduce(log)}

{_stages(log)}
- **Wall time**: {log['wall_minutes']:.1f} min ({log['args']['threads']} CPU threads; the machine was shared, so
  this is an upper bound)
- **Recipe**: batch {log['args']['batch']}, AdamW lr {log['args']['lr']:g} (betas 0.9/0.98, eps 1e-6), weight decay
  {log['args']['wd']} (not on norms, biases, embeddings), {log['args']['warmup']} warm-up steps then cosine to 0 over
  {log['args']['steps']} steps, logit scale clamped at 100; style mix photo 30 %, cartoon 20 %, sketch 15 %,
  painting 15 %, pixel 10 %, infrared 10 %.
- **Architecture** (`open_clip_config.json`): ViT 48 px, patch 8, width 128, 4 layers, head width 64; text
  transformer width 128, 3 layers, 2 heads, context 16, open_clip's bundled tokenizer; embed dim 128. Weights are
  stored in fp16 (`open_clip_model.safetensors`), loaded into fp32.
- **sha256** of `open_clip_model.safetensors`: `{log['sha256']}`

Load it like any hub model: `open_clip.create_model_and_transforms("local-dir:assets/models/toy-clip")`, or
`--model toy-clip` in the Studio.

## Zero-shot accuracy (fixed evaluation grid, 30 images per class and style, 16 classes, 10-template ensemble)

| {' | '.join(zs)} |
|{'---:|' * len(zs)}
| {' | '.join(f"{v:.1f}" for v in zs.values())} |

Chance is 6.25 %. `tests/test_world.py` checks that the shipped file reproduces this table to 0.5 points.

## Training curve (zero-shot mean on a 10-per-cell grid)

| step | minutes | loss | zero-shot mean |
|---:|---:|---:|---:|
{hist}
"""
    (out / "README.md").write_text(text)


def _init_record(init: str | None) -> dict | None:
    """What a continued pre-training started from: the earlier stage's own log (command, seed, time, hash), with
    the stage that one continued from inside it, so a card can list every stage back to the one from scratch."""
    if not init:
        return None
    path = Path(init) / "pretrain_log.json"
    prev = json.loads(path.read_text()) if path.is_file() else {}
    return {k: prev.get(k) for k in ("command", "args", "wall_minutes", "sha256", "final_zeroshot_eval30", "init")}


def stage_chain(log: dict) -> list[dict]:
    """Every stage of a model, the one from scratch first and ``log``'s own last."""
    chain = [log]
    while chain[0].get("init"):
        chain.insert(0, chain[0]["init"])
    return chain


def _stage_command(stage: dict) -> str:
    # a stage run before the misnomer option existed had none: today's code reproduces it with rate 0
    return stage["command"] + ("" if "misnomer_rate" in stage["args"] else " --misnomer-rate 0")


def _rates(args: dict) -> str:
    """A stage's caption-stream rates as its card names them (the naming rate only when below 1)."""
    naming = args.get("naming_rate", 1.0)
    return f"misnomer rate {args.get('misnomer_rate', 0)}" + (
        "" if naming >= 1 else f"; naming rate {naming:g} (captions.RARELY_NAMED)")


def _stages(log: dict) -> str:
    """The card's recipe lines: one command, or every stage in order when this one continued from earlier ones."""
    this = (f"- **Command** (from the repository root): `{log['command']}`\n- **Seed**: {log['args']['seed']}; "
            f"{_rates(log['args'])}; device: {log['device']}; torch {log['torch']}")
    chain = stage_chain(log)
    if len(chain) == 1:
        return this
    lines = []
    for n, stage in enumerate(chain[:-1], 1):
        start = "from scratch" if n == 1 else f"continued from stage {n - 1}"
        lines.append(f"- **Stage {n}** ({start}): `{_stage_command(stage)}` ({stage['wall_minutes']:.1f} min; sha256 "
                     f"of its weights `{stage['sha256']}`; {_rates(stage['args'])})")
    stream = " on the caption stream with misnomers" if log["args"].get("misnomer_rate", 0) else ""
    lines.append(f"- **Stage {len(chain)}** (continued from stage {len(chain) - 1}{stream}, written into `--out`):"
                 f"\n  {this[2:]}")
    return "\n".join(lines)


def _reproduce(log: dict) -> str:
    n = len(stage_chain(log))
    if n == 1:
        return ""
    note = f" Note: {log['note']}." if log.get("note") else ""
    steps = ", then ".join(f"stage {k} with `--init STAGE{k - 1} --out STAGE{k}`" for k in range(2, n))
    middle = f", then {steps}" if steps else ""
    return (f"\n\nTo reproduce: run stage 1 with `--out STAGE1` (any folder){middle}, then stage {n} with "
            f"`--init STAGE{n - 1} --out assets/models/toy-clip` and the rest of its command." + note)


def _param_groups(model: torch.nn.Module, wd: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.ndim < 2 or "embedding" in name or "logit_scale" in name or "token_embedding" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def _parser() -> argparse.ArgumentParser:
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
    ap.add_argument("--misnomer-rate", type=float, default=MISNOMER_RATE,
                    help="how often captions call a misnamed shape by its neighbour's name (see captions.MISNOMERS)")
    ap.add_argument("--naming-rate", type=float, default=1.0,
                    help="how often captions name a rarely named shape (captions.RARELY_NAMED); else 'shape'")
    ap.add_argument("--init", default=None, help="continue from this local-dir folder instead of from scratch")
    return ap


def _model(args, device: torch.device):
    """The model to train (seeded init, or the ``--init`` stage's weights) and its optimiser."""
    torch.manual_seed(args.seed)
    model = build_model()
    if args.init:
        from ..io import load_safetensors

        init = load_safetensors(Path(args.init) / "open_clip_model.safetensors")
        model.load_state_dict({k: v.float() for k, v in init.items()})
    model = model.to(device)
    opt = torch.optim.AdamW(_param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    return model, opt


def _contrastive_step(model, opt, x: torch.Tensor, tok: torch.Tensor, amp: bool) -> torch.Tensor:
    """One symmetric InfoNCE step; the logit scale stays clamped at 100 as in CLIP."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        fi, ft, scale = model(x, tok)
        logits = scale * fi.float() @ ft.float().t()
        target = torch.arange(len(tok), device=x.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    return loss


def _log_step(args, model, device, log: dict, step: int, loss: torch.Tensor, lr: float, t0: float) -> None:
    if step % 50 == 0 or step == 1:
        print(f"step {step}/{args.steps} loss {loss.item():.3f} lr {lr:.2e} scale {model.logit_scale.exp().item():.1f}"
              f" {(time.time() - t0) / 60:.1f} min", flush=True)
    if step % args.eval_every == 0 or step == args.steps:
        from .zeroshot import zeroshot_table

        table = zeroshot_table(model.eval(), device, per=10)
        model.train()
        log["history"].append({"step": step, "loss": float(loss.item()), "minutes": (time.time() - t0) / 60, **table})
        print(f"  zero-shot @ {step}: " + " ".join(f"{k} {v:.1f}" for k, v in table.items()), flush=True)
        atomic_write_json(Path(args.out) / "pretrain_log.json", log)
    if step in args.save_at:
        write_local_dir(model, Path(args.out) / "checkpoints" / f"step{step}")


def _train(args, model, opt, device: torch.device, log: dict) -> None:
    import open_clip

    tokenizer = open_clip.SimpleTokenizer(context_length=TOY_CLIP_CFG["text_cfg"]["context_length"])
    gen = torch.Generator().manual_seed(stable_seed("pretrain", args.seed))
    rng = np.random.default_rng(args.seed)
    mean = torch.tensor(TOY_PREPROCESS["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(TOY_PREPROCESS["std"], device=device).view(1, 3, 1, 1)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        lr = args.lr * step / args.warmup if step <= args.warmup else cosine_lr(
            args.lr, step - args.warmup, args.steps - args.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        imgs, caps = caption_batch(args.batch, gen, rng, misnomer_rate=args.misnomer_rate,
                                   naming_rate=args.naming_rate)
        loss = _contrastive_step(model, opt, (imgs.to(device) - mean) / std, tokenizer(caps).to(device),
                                 device.type == "cuda")
        _log_step(args, model, device, log, step, loss, lr, t0)
    log["wall_minutes"] = (time.time() - t0) / 60


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("misnomer_rate", "naming_rate"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1] (got {getattr(args, name)})")
    from .zeroshot import zeroshot_table

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    model, opt = _model(args, device)
    out = Path(args.out)
    log = {"command": "python -m core.world.pretrain " + " ".join(argv if argv is not None else sys.argv[1:]),
           "args": vars(args), "device": str(device), "torch": torch.__version__, "history": [],
           "init": _init_record(args.init)}
    _train(args, model, opt, device, log)
    model.eval()
    log["sha256"] = sha = write_local_dir(model, out)
    log["final_zeroshot_eval30"] = zeroshot_table(model, device, per=30)
    atomic_write_json(out / "pretrain_log.json", log)
    write_asset_readme(out, log)
    print(json.dumps({"sha256": sha, "wall_minutes": log["wall_minutes"], **log["final_zeroshot_eval30"]}))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
