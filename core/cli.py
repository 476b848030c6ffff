"""Command line: ``python -m core train|eval|list|bench|sweep``. Bad values exit 2 with one line naming the option."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path

from .config import (
    BETA_BY_SETTING,
    PRECISIONS,
    REAL_HPARAMS,
    RECIPE_CHOICES,
    STORY_PRECISION,
    TOY_HPARAMS,
    ConfigError,
    RunConfig,
    toy_by_setting,
)
from .data.splits import SETTINGS
from .methods import AVERAGES, METHODS
from .reasons import word
from .recipes import SAMPLERS
from .split_scan import FAMILY_IDS, HALVES

# How the command line words a run's end (core/reasons.py codes): the actions name this tool's options.
CLI_WORDS = {"resume": "resume with --resume", "lr": "--lr", "batch_size_word": "--batch-size",
             "resume_option": "--resume: ", "device": "--device"}


def finish_text(code: str, detail: dict, reason: str = "") -> str:
    """A finish or failure reason in the command line's words (``reason``: a run saved before codes existed)."""
    return word(code, detail, CLI_WORDS, fallback=reason)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _toy(name: str) -> str:
    """A toy default for a help text: one value, or its value in each setting where they differ."""
    by = toy_by_setting(name)
    if len(set(by.values())) == 1:
        return f"{next(iter(by.values())):g}"
    return "by setting " + ", ".join(f"{k} {v:g}" for k, v in by.items())


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _kv(s: str) -> tuple[str, object]:
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    k, v = s.split("=", 1)
    try:
        val = json.loads(v)
    except json.JSONDecodeError:
        val = v
    return k.strip(), val


def add_run_options(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    g = p.add_argument_group("run")
    g.add_argument("--dataset", default=d.dataset, help="dataset id (python -m core list datasets)")
    g.add_argument("--model", default=d.model, help="model id: registry name, open_clip name, local-dir:PATH, "
                   "hf-hub:org/repo (python -m core list models)")
    g.add_argument("--pretrained", default=None, help="open_clip pretrained tag (default: the registry's tag)")
    g.add_argument("--setting", default=d.setting, choices=SETTINGS)
    g.add_argument("--sources", type=_csv, default=None, help="comma-separated source domains (default: dataset's)")
    g.add_argument("--targets", type=_csv, default=None, help="comma-separated target domains (default: the rest)")
    g.add_argument("--base-classes", type=_csv, default=None,
                   help="comma-separated base classes (default: first half in label order)")
    g.add_argument("--method", default=d.method, choices=list(METHODS))
    g.add_argument("--steps", type=int, default=None,
                   help=f"optimiser steps (default: toy {_toy('steps')}, real {REAL_HPARAMS['steps']})")
    g.add_argument("--batch-size", type=int, default=None, help="images per step, or per source domain with "
                   f"--sampler per_domain (default: the recipe's; toy {_toy('batch_size')})")
    g.add_argument("--lr", type=float, default=None,
                   help=f"AdamW learning rate (default: toy {_toy('lr')}, real {REAL_HPARAMS['lr']:g})")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--warmup-frac", type=float, default=None, help="fraction of steps of linear warm-up "
                   f"(default: toy {TOY_HPARAMS['warmup_frac']}, real {REAL_HPARAMS['warmup_frac']})")
    g.add_argument("--lam", type=float, default=None, help="MMS margin strength (mms/clipood; default: toy "
                   f"{_toy('lam')}, real {REAL_HPARAMS['lam']}; forced to 0 for other methods)")
    g.add_argument("--beta", type=float, default=None,
                   help=f"BMA Beta(beta, beta) (default: toy {_toy('beta')}, real by setting {BETA_BY_SETTING})")
    g.add_argument("--ema-decay", type=float, default=None,
                   help="EMA decay (default: a horizon of a fifth of the run, 1 - 5/steps: 0.99 at 500 steps)")
    g.add_argument("--wiseft-alpha", type=float, default=d.wiseft_alpha)
    g.add_argument("--track", type=_csv, default=[],
                   help=f"extra averages to track on the same trajectory: {', '.join(AVERAGES)}, bma:<beta>")
    g.add_argument("--track-eval", default=d.track_eval, choices=["all", "final"],
                   help="evaluate the --track averages at every evaluation or only at the end")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    g.add_argument("--augment", default=None, choices=["on", "off"],
                   help="train augmentation RandomResizedCrop(0.7-1)+flip (default: real on, toy off)")
    g.add_argument("--ensemble", default=None, choices=["on", "off"],
                   help="prompt-template ensemble for the text classifier (default: toy on, real off)")
    g.add_argument("--eval-every", type=int, default=None, help="steps between evaluations (default steps/4)")
    g.add_argument("--eval-subsample", type=int, default=d.eval_subsample,
                   help="images per split in intermediate evaluations (the final one is full)")
    g.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints (default steps/5)")
    g.add_argument("--data", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option, repeatable, e.g. --data colour_bias=0.5 --data shots=32")
    g.add_argument("--max-seconds", type=float, default=None, help="stop (resumable) after this wall time")
    g.add_argument("--recipe", default=None, choices=list(RECIPE_CHOICES),
                   help="paper: the official scripts.sh values for (setting, dataset), each with its source "
                   "(core/recipes.py); ours: this project's defaults. Default: paper where one exists")
    g.add_argument("--sampler", default=None, choices=list(SAMPLERS),
                   help="per_domain: --batch-size images from every source domain, concatenated (the official "
                   "loader); pooled: --batch-size images from the union (default: the recipe's)")
    g.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16"],
                   help="bf16 autocast: auto = on CUDA and on a CPU with bf16 units (detected); bf16/fp32 force it")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    onoff = {"on": True, "off": False, None: None}
    return RunConfig(
        dataset=a.dataset, model=a.model, pretrained=a.pretrained, setting=a.setting, sources=a.sources,
        targets=a.targets, base_classes=a.base_classes, method=a.method, steps=a.steps, batch_size=a.batch_size,
        lr=a.lr, weight_decay=a.weight_decay, warmup_frac=a.warmup_frac, lam=a.lam, beta=a.beta,
        ema_decay=a.ema_decay, wiseft_alpha=a.wiseft_alpha, track=a.track, track_eval=a.track_eval,
        seed=a.seed, device=a.device,
        augment=onoff[a.augment], ensemble=onoff[a.ensemble], eval_every=a.eval_every,
        eval_subsample=a.eval_subsample, checkpoint_every=a.checkpoint_every, data_options=dict(a.data),
        max_seconds=a.max_seconds, precision=a.precision, recipe=a.recipe, sampler=a.sampler)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m core", description="CLIPood Studio engine: fine-tune CLIP the CLIPood way.",
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    t = sub.add_parser("train", help="run one training config (default: CLIPood on toy-shapes with toy-clip)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_run_options(t)
    t.add_argument("--out", default="runs", help="folder that receives the run folder")
    t.add_argument("--run-id", default=None, help="name of the run folder (default: time-method-dataset-random)")
    t.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    t.add_argument("--check", action="store_true",
                   help="validate the options, print the resolved config as JSON and exit without training")
    e = sub.add_parser("eval", help="evaluate a model (zero-shot) or a run's result weights",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_run_options(e)
    e.add_argument("--run", default=None, metavar="RUN_DIR",
                   help="evaluate this run's checkpoints/result.safetensors with its config")
    e.add_argument("--json", action="store_true")
    ls = sub.add_parser("list", help="list models, datasets or methods")
    ls.add_argument("what", choices=["models", "datasets", "methods"])
    b = sub.add_parser("bench", help="benchmarks (story: the toy world's method table)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    bsub = b.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    st = bsub.add_parser("story", help="every method in the three settings on toy-shapes, several seeds",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    st.add_argument("--seeds", type=int, default=3)
    st.add_argument("--settings", type=_csv, default=list(SETTINGS))
    st.add_argument("--out", default="bench/results/story.json")
    st.add_argument("--readme", default=None, help="also replace the story table in this README")
    _add_knob_flags(st)
    st.add_argument("--precision", choices=PRECISIONS, default=STORY_PRECISION,
                    help="every run's precision: fp32 by default, so the committed table reproduces on any CPU (auto "
                         "follows this CPU's bf16 units)")
    st.add_argument("--no-alt", action="store_true", help="skip the other source/target and base/new splits")
    st.add_argument("--alt-seeds", type=int, default=1, help="seeds for each other split (the first N of --seeds)")
    sp = bsub.add_parser("splits", help="the story's ordering checks on every source pair (shortcut on and off), "
                         "DomainBed's leave-one-style-out protocol and random base halves",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--halves", type=int, default=HALVES, help="how many random base halves (drawn with a fixed seed)")
    sp.add_argument("--out", default="bench/results/splits.json")
    sp.add_argument("--readme", default=None, help="also replace the splits table in this README")
    sp.add_argument("--families", type=_csv, default=None, metavar="IDS",
                    help=f"only these families ({', '.join(FAMILY_IDS)}), e.g. --families loo; every one without it")
    sp.add_argument("--compare", nargs="+", default=None, metavar="JSON",
                    help="no runs: print these saved scans side by side (with --readme, into its compare block)")
    _add_knob_flags(sp)
    from .sweep import add_sweep_parser

    add_sweep_parser(sub)
    return p


def _add_knob_flags(p: argparse.ArgumentParser) -> None:
    """The flags with which a bench tries other hyperparameters or another world than the defaults."""
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--model", default=None, help="model id instead of toy-clip (experiments)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lam", type=float, default=None)
    p.add_argument("--beta", type=float, default=None, help="BMA beta in every setting instead of each one's default")
    p.add_argument("--data", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="toy-shapes option instead of its default, e.g. --data colour_bias=0.5")


def format_table(rows: dict[str, dict[str, float]]) -> str:
    cols: list[str] = []
    for r in rows.values():
        cols += [c for c in r if c not in cols]
    w = max([len(k) for k in rows] + [8])
    lines = [" " * w + "".join(f"{c:>14}" for c in cols)]
    for name, r in rows.items():
        lines.append(f"{name:<{w}}" + "".join(f"{r[c]:>14.2f}" if c in r else f"{'-':>14}" for c in cols))
    return "\n".join(lines)


def _bar(ev) -> str:
    frac = ev.step / max(1, ev.total_steps)
    n = int(frac * 30)
    eta = int(ev.eta_s)
    loss = f"{ev.loss:.4f}" if ev.loss is not None else "  -   "
    return (f"\r[{'#' * n}{'.' * (30 - n)}] {ev.step}/{ev.total_steps} loss {loss} {ev.images_per_s:.0f} img/s "
            f"ETA {eta // 60:02d}:{eta % 60:02d} ")


def precheck(cfg: RunConfig) -> None:
    """Fail fast (exit 2) on a bad config, dataset or model id before a run folder is made."""
    from .config import resolve
    from .data.registry import check_dataset_spec
    from .models import resolve as resolve_model

    resolve(cfg)
    check_dataset_spec(cfg.dataset)
    resolve_model(cfg.model, cfg.pretrained)


def _new_run(a) -> tuple[RunConfig, Path | None]:
    """The config and the fresh run folder of ``train`` without ``--resume`` (checked before anything is made;
    no folder with ``--check``)."""
    from .runstore import check_run_id, new_run_id

    cfg = config_from_args(a)
    precheck(cfg)
    if a.check:
        return cfg, None
    try:
        run_id = check_run_id(a.run_id) if a.run_id else new_run_id(cfg.method, cfg.dataset)
    except ValueError as e:
        raise ConfigError("run_id", str(e)) from None
    run_dir = Path(a.out) / run_id
    if run_dir.exists():
        raise ConfigError("run_id", f"{run_dir} already exists; pick another --run-id or use --resume")
    return cfg, run_dir


def cmd_train(a) -> int:
    from .engine import RunFailed, train

    if a.resume:
        run_dir, cfg = Path(a.resume), RunConfig()
    else:
        cfg, run_dir = _new_run(a)
        if run_dir is None:
            from .config import resolve

            print(json.dumps(resolve(cfg).to_dict(), indent=2))
            return 0
    stop = threading.Event()
    last = None
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel worker: rank 0 reports
        a.quiet = True
    tty = sys.stderr.isatty()
    try:
        for ev in train(cfg, run_dir, stop, resume=bool(a.resume)):
            last = ev
            if ev.kind == "start" and not a.quiet:
                print(f"run folder: {ev.run_dir}\ndevice {ev.device}, {ev.total_steps} steps, splits {ev.splits}",
                      file=sys.stderr)
            elif ev.kind == "step" and not a.quiet and (tty or ev.step % 50 == 0 or ev.step == ev.total_steps):
                print(_bar(ev), end="" if tty else "\n", file=sys.stderr, flush=True)
            elif ev.kind == "eval" and not ev.full and not a.quiet and not tty:
                print("  eval @", ev.step, {k: v.get(next(iter(v)), None) for k, v in ev.accuracy.items()},
                      file=sys.stderr)
    except KeyboardInterrupt:
        stop.set()
        print("\ninterrupted: the run folder keeps its checkpoint; continue with --resume", file=sys.stderr)
        return 130
    except RunFailed as e:
        print(f"error: {finish_text(e.code, e.detail, str(e))}", file=sys.stderr)
        return 1
    if tty and not a.quiet:
        print(file=sys.stderr)
    s = last.summary if last is not None and last.kind == "finish" else {}
    if last is None or last.kind != "finish":
        return 1
    if int(os.environ.get("RANK", "0")) != 0:
        return 0 if last.status == "done" else 1
    if s.get("zeroshot"):
        print(format_table({"zero-shot": s["zeroshot"], "final": s.get("final") or {},
                            f"result ({s['config']['method']})": s.get("result") or {}}))
    print(f"status: {last.status} ({finish_text(last.code, last.detail, last.reason)}); run folder: {run_dir}")
    if a.json:
        print(json.dumps(s, indent=2))
    return 0 if last.status == "done" else 1


def cmd_eval(a) -> int:
    from .evaluate import evaluate_run, evaluate_zeroshot

    if a.run:
        res = evaluate_run(Path(a.run))
    else:
        res = evaluate_zeroshot(config_from_args(a))
    print(format_table(res))
    if a.json:
        print(json.dumps(res, indent=2))
    return 0


def cmd_list(a) -> int:
    if a.what == "methods":
        for m in METHODS.values():
            print(f"{m.name:10} {m.description}")
    elif a.what == "models":
        from .models import list_models

        for m in list_models():
            tag = f" (pretrained: {m.pretrained})" if m.pretrained else ""
            print(f"{m.name:14} {m.description}{tag}")
        print("also: any open_clip model name with --pretrained TAG, local-dir:PATH, hf-hub:org/repo")
    else:
        from .data.registry import list_datasets

        for d in list_datasets():
            print(f"{d.name + ('PATH' if d.name.endswith(':') else ''):28} {d.description}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    try:
        if a.cmd == "train":
            return cmd_train(a)
        if a.cmd == "eval":
            return cmd_eval(a)
        if a.cmd == "list":
            return cmd_list(a)
        if a.cmd == "sweep":
            from .sweep import main as sweep_main

            return sweep_main(a)
        if a.cmd == "bench":
            from .split_scan import main as splits_main
            from .story import main as story_main

            return (splits_main if a.bench == "splits" else story_main)(a)
    except ConfigError as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from .data.table import DatasetError
        from .models import ModelLoadError

        if isinstance(e, (DatasetError, ModelLoadError)):
            print(f"{p.prog}: error: {e}", file=sys.stderr)
            return 2
        raise
    return 0


__all__ = ["main", "build_parser", "config_from_args", "format_table", "dataclasses"]
