"""The paper's protocol as one resumable sweep, aggregated into its table format next to the published numbers.

Domain shift: leave-one-domain-out (every domain is the target once) x seeds; a dataset's number is the mean over
targets of ``result.ood``, reported as mean ± std over seeds. Open class: one run per dataset x seed, ``base``,
``new``, ``hm``. Each run has its own folder; a finished one is skipped, an interrupted one resumed from its
checkpoint (or restarted if it never wrote one), so rerunning the same command after a crash finishes the sweep.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from .config import RunConfig

PAPER_RESULTS = Path(__file__).resolve().parent / "official" / "paper_results.json"
PROTOCOLS = ("domain_shift", "open_class")


def paper_results() -> dict:
    return json.loads(PAPER_RESULTS.read_text())


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in s).strip("_")[:60] or "x"


def plan(protocol: str, datasets: list[str], seeds: int, base: RunConfig) -> list[tuple[str, str, str, RunConfig]]:
    """(run id, dataset, target or "", config) of every run of the sweep."""
    from .data import open_dataset

    jobs = []
    for ds in datasets:
        targets = [""]
        if protocol == "domain_shift":
            targets = open_dataset(ds, seed=0, **base.data_options).domains
        for t in targets:
            for seed in range(seeds):
                kw = dict(dataset=ds, setting=protocol, seed=seed)
                if t:
                    kw.update(targets=[t], sources=[d for d in targets if d != t])
                rid = "-".join(x for x in (_slug(ds), _slug(t), f"s{seed}") if x)
                jobs.append((rid, ds, t, dataclasses.replace(base, **kw)))
    return jobs


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "summary.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def run_one(run: Path, cfg: RunConfig, log=print) -> dict:
    """Run (or finish) one sweep run; a done run is read back, not rerun."""
    from .engine import run_to_end

    if _status(run) == "done":
        return json.loads((run / "summary.json").read_text())
    if run.exists() and (run / "checkpoints" / "last.safetensors").exists():
        log(f"resuming {run.name}")
        return run_to_end(cfg, run, resume=True)
    if run.exists():
        shutil.rmtree(run)  # died before its first checkpoint: nothing to keep
    log(f"running {run.name}")
    return run_to_end(cfg, run)


def run_sweep(protocol: str, datasets: list[str], seeds: int, base: RunConfig, out: Path,
              max_runs: int | None = None, log=print) -> dict:
    """Run what is missing (at most ``max_runs`` now), then aggregate everything finished."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(protocol, datasets, seeds, base)
    started = 0
    for rid, _, _, cfg in jobs:
        if _status(out / rid) == "done":
            continue
        if max_runs is not None and started >= max_runs:
            break
        run_one(out / rid, cfg, log)
        started += 1
    table = aggregate(protocol, jobs, out)
    (out / "sweep.json").write_text(json.dumps(table, indent=2))
    (out / "table.md").write_text(to_markdown(protocol, table))
    return table


def _mean_std(xs: list[float]) -> list[float]:
    """Mean and sample std (ddof 1; 0 for a single seed), rounded like the paper's tables."""
    a = np.asarray(xs, dtype=float)
    return [round(float(a.mean()), 2), round(float(a.std(ddof=1)) if len(a) > 1 else 0.0, 2)]


def _per_seed(protocol: str, runs: list[dict]) -> dict[int, dict[str, float]]:
    keys = ("ood",) if protocol == "domain_shift" else ("base", "new", "hm")
    by_seed: dict[int, list[dict]] = {}
    for s in runs:
        by_seed.setdefault(s["config"]["seed"], []).append(s["result"])
    return {seed: {k: float(np.mean([r[k] for r in rs])) for k in keys} for seed, rs in by_seed.items()}


def aggregate(protocol: str, jobs, out: Path) -> dict:
    """Per dataset: mean ± std over seeds of the per-seed number (domain shift: mean over targets first)."""
    paper = paper_results()[protocol]
    table = {"protocol": protocol, "metric": paper["metric"], "datasets": {}}
    for ds in dict.fromkeys(j[1] for j in jobs):
        mine = [j for j in jobs if j[1] == ds]
        done = [json.loads((out / j[0] / "summary.json").read_text()) for j in mine if _status(out / j[0]) == "done"]
        row = {"runs_done": len(done), "runs_planned": len(mine), "paper": paper.get(ds)}
        if len(done) == len(mine):
            per_seed = _per_seed(protocol, done)
            keys = next(iter(per_seed.values()))
            row["ours"] = {k: _mean_std([v[k] for v in per_seed.values()]) for k in keys}
            row["seeds"] = len(per_seed)
        table["datasets"][ds] = row
    return table


def _fmt(ms) -> str:
    return f"{ms[0]:.1f} ± {ms[1]:.1f}" if isinstance(ms, list) else (f"{ms:.1f}" if ms is not None else "-")


def to_markdown(protocol: str, table: dict) -> str:
    sources = paper_results()["sources"]
    cols = ["ood"] if protocol == "domain_shift" else ["base", "new", "hm"]
    head = "| dataset | runs | " + " | ".join(f"ours {c}" for c in cols) + " | " + \
        " | ".join(f"paper {c}" for c in cols) + " | source |"
    lines = [head, "|" + " --- |" * (3 + 2 * len(cols))]
    for ds, row in table["datasets"].items():
        ours = row.get("ours") or {}
        p = row.get("paper") or {}
        pv = p.get("paper")
        paper_cells = [_fmt(pv)] if protocol == "domain_shift" else [_fmt((pv or {}).get(c)) for c in cols]
        lines.append(f"| {ds} | {row['runs_done']}/{row['runs_planned']} | "
                     + " | ".join(_fmt(ours.get(c)) for c in cols) + " | " + " | ".join(paper_cells)
                     + f" | {p.get('source', '-')} |")
    used = sorted({r["paper"]["source"] for r in table["datasets"].values() if r.get("paper")})
    notes = [f"- {k}: {sources[k]}" for k in used]
    head = f"Metric: {table['metric']}. Ours: mean ± std (ddof 1) over seeds."
    return "\n".join([head, "", *lines, "", *notes]) + "\n"


DEFAULT_DATASETS = {"domain_shift": ["pacs", "vlcs", "office-home", "terra-incognita", "domainnet"],
                    "open_class": ["caltech101", "oxford-pets", "flowers102", "food101", "dtd", "eurosat"]}


def add_sweep_parser(sub) -> None:
    from .cli import _csv, _kv

    sw = sub.add_parser("sweep", help="the paper's protocol: every run, resumable, aggregated next to the paper's "
                        "numbers")
    sw.add_argument("--protocol", choices=PROTOCOLS, default="domain_shift",
                    help="domain_shift: leave-one-domain-out x seeds; open_class: one run per dataset x seed")
    sw.add_argument("--datasets", type=_csv, default=None,
                    help=f"default: {DEFAULT_DATASETS} (DomainBed folders need --data root=...)")
    sw.add_argument("--seeds", type=int, default=3)
    sw.add_argument("--out", default=None, help="sweep folder (default: sweeps/<protocol>)")
    sw.add_argument("--max-runs", type=int, default=None, help="start at most this many runs now (then aggregate)")
    for flag, typ in (("--model", str), ("--pretrained", str), ("--method", str), ("--recipe", str),
                      ("--sampler", str), ("--device", str), ("--steps", int), ("--batch-size", int),
                      ("--lr", float), ("--eval-every", int), ("--checkpoint-every", int)):
        sw.add_argument(flag, type=typ, default=None, help="as for train (default: the recipe's)")
    sw.add_argument("--data", type=_kv, action="append", default=[], metavar="KEY=VALUE")


def main(a) -> int:
    opts = {k: getattr(a, k) for k in ("model", "pretrained", "method", "recipe", "sampler", "device", "steps",
                                       "batch_size", "lr", "eval_every", "checkpoint_every")
            if getattr(a, k) is not None}
    base = RunConfig(model=opts.pop("model", "ViT-B-16"), data_options=dict(a.data), **opts)
    out = Path(a.out or f"sweeps/{a.protocol}")
    table = run_sweep(a.protocol, a.datasets or DEFAULT_DATASETS[a.protocol], a.seeds, base, out, a.max_runs)
    print(to_markdown(a.protocol, table))
    missing = sum(r["runs_planned"] - r["runs_done"] for r in table["datasets"].values())
    print(f"{out}: {'complete' if not missing else f'{missing} runs left; run the same command again'}")
    return 0
