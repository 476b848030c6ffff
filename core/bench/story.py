"""The story benchmark: every method in the three settings on the embedded world, several seeds.

    python -m core bench story --seeds 3 --readme README.md

Two runs per (setting, seed) cover all seven methods: a ``finetune`` run that also tracks BMA, EMA and WiSE-FT on
its trajectory, and a ``clipood`` run whose last weights are ``mms``. Default hyperparameters throughout. Prints a
markdown table (mean ± std over seeds) and the checks the embedded world must pass, and writes JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..config import RunConfig
from ..engine import run_to_end

METRICS = {"domain_shift": ("id", "ood"), "open_class": ("base", "new", "hm"),
           "in_the_wild": ("id", "ood_base", "ood_new", "hm")}
ROWS = ("zeroshot", "finetune", "wiseft", "ema", "mms", "bma", "clipood")
START, END = "<!-- story:start -->", "<!-- story:end -->"


def run_setting(setting: str, seed: int, steps: int | None, out: Path) -> dict[str, dict[str, float]]:
    ft = run_to_end(RunConfig(setting=setting, method="finetune", seed=seed, steps=steps, eval_every=0,
                              checkpoint_every=0, track=["bma", "ema", "wiseft"]), out / f"{setting}-{seed}-ft")
    co = run_to_end(RunConfig(setting=setting, method="clipood", seed=seed, steps=steps, eval_every=0,
                              checkpoint_every=0), out / f"{setting}-{seed}-clipood")
    for s in (ft, co):
        if s.get("status") != "done":
            raise RuntimeError(f"{setting} seed {seed}: run {s.get('status')}: {s.get('reason')}")
    return {"zeroshot": ft["zeroshot"], "finetune": ft["final"], "wiseft": ft["tracked"]["wiseft"],
            "ema": ft["tracked"]["ema"], "bma": ft["tracked"]["bma"], "mms": co["final"], "clipood": co["result"]}


def zeroshot_domains() -> dict[str, float]:
    import torch

    from ..models import load_clip
    from ..world.zeroshot import zeroshot_table

    b = load_clip("toy-clip")
    return zeroshot_table(b.model, torch.device("cpu"), per=30)


def checks(res: dict, zs_domains: dict[str, float]) -> list[tuple[str, bool, str]]:
    out = []
    doms = {k: v for k, v in zs_domains.items() if k != "mean"}
    out.append(("zero-shot above chance (6.25 %) in every domain, by >= 2x",
                all(v >= 12.5 for v in doms.values()), ", ".join(f"{k} {v:.1f}" for k, v in doms.items())))
    out.append(("zero-shot mean below 90 %", zs_domains["mean"] < 90, f"{zs_domains['mean']:.1f}"))

    def per_seed(setting, row, metric):
        return [r[row][metric] for r in res.get(setting, [])]

    def all_seeds(name, setting, a, b, metric, margin):
        xa, xb = per_seed(setting, a, metric), per_seed(setting, b, metric)
        if not xa:
            return
        diffs = [x - y for x, y in zip(xa, xb)]
        out.append((name, all(d >= margin for d in diffs), "per seed: " + ", ".join(f"{d:+.1f}" for d in diffs)))

    all_seeds("finetune ID >= zero-shot ID + 5 (domain shift)", "domain_shift", "finetune", "zeroshot", "id", 5)
    all_seeds("clipood OOD >= finetune OOD + 2 (domain shift)", "domain_shift", "clipood", "finetune", "ood", 2)
    all_seeds("clipood new >= finetune new + 2 (open class)", "open_class", "clipood", "finetune", "new", 2)
    all_seeds("clipood OOD HM >= finetune OOD HM + 2 (in the wild)", "in_the_wild", "clipood", "finetune", "hm", 2)
    return out


def markdown(res: dict, zs_domains: dict, chk: list, seeds: int, wall: float, cmd: str) -> str:
    lines = [f"Measured with `{cmd}` ({seeds} seeds, default hyperparameters, {wall / 60:.1f} min on this machine). "
             "Accuracy in %, mean ± std over seeds.", ""]
    head, sub = ["method"], ["---"]
    for setting, ms in METRICS.items():
        if setting in res:
            head += [f"{setting} {m}" for m in ms]
            sub += ["---:"] * len(ms)
    lines += ["| " + " | ".join(head) + " |", "| " + " | ".join(sub) + " |"]
    for row in ROWS:
        cells = [f"`{row}`"]
        for setting, ms in METRICS.items():
            if setting not in res:
                continue
            for m in ms:
                xs = [r[row][m] for r in res[setting]]
                sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                cells.append(f"{statistics.mean(xs):.1f} ± {sd:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Zero-shot per domain (unbiased eval grid, 30 per class and domain): "
              + ", ".join(f"{k} {v:.1f}" for k, v in zs_domains.items()), "", "Checks:", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {name} ({detail})" for name, ok, detail in chk]
    return "\n".join(lines)


def main(a) -> int:
    t0 = time.time()
    seeds = list(range(a.seeds))
    res: dict[str, list] = {}
    out = Path(a.out)
    partial = out.with_suffix(".partial.json")
    if partial.exists():  # continue an interrupted benchmark of the same command
        res = json.loads(partial.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for setting in a.settings:
            for seed in seeds:
                if len(res.get(setting, [])) > seed:
                    continue
                t = time.time()
                res.setdefault(setting, []).append(run_setting(setting, seed, a.steps, Path(tmp)))
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps(res))
                print(f"{setting} seed {seed}: {time.time() - t:.0f} s "
                      + json.dumps({k: v for k, v in res[setting][-1].items() if k in ('finetune', 'clipood')}),
                      file=sys.stderr, flush=True)
    zs = zeroshot_domains()
    chk = checks(res, zs)
    wall = time.time() - t0
    cmd = "python -m core bench story --seeds " + str(a.seeds) + (f" --steps {a.steps}" if a.steps else "")
    md = markdown(res, zs, chk, a.seeds, wall, cmd)
    print(md)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    out.write_text(json.dumps({"command": cmd, "wall_s": wall, "results": res, "zeroshot_domains": zs,
                               "checks": [{"name": n, "pass": ok, "detail": d} for n, ok, d in chk]}, indent=2))
    if a.readme:
        p = Path(a.readme)
        text = p.read_text()
        if START in text and END in text:
            text = text[:text.index(START) + len(START)] + "\n" + md + "\n" + text[text.index(END):]
            p.write_text(text)
    return 0 if all(ok for _, ok, _ in chk) else 1
