"""The split scan: does the story's ordering hold beyond the default split, and where not, how far off?

The story benchmark (``core/story.py``) measures the default split over seeds and a few chosen other splits. This
scan measures whole families, one seed each, so the answer does not hang on which other split someone picked:

- domain shift on every pair of source styles (the other four styles are the targets);
- the same pairs with the colour shortcut off (``colour_bias`` 0), which isolates what the shortcut does;
- DomainBed's own protocol, as the paper measures domain shift: each style held out once with the other five as
  sources, one run per held-out style, checked on the mean over the six (``leave_one_out``);
- open class and in the wild on ``HALVES`` base halves drawn at random with a fixed seed (``HALF_SEED``), fixed
  before any of them was measured.

Each split gets the story's ordering checks (``story.ordering_checks``); the markdown is a table of which hold.

    python -m core bench splits --readme README.md

The same flags as ``bench story`` (``--lr``, ``--lam``, ``--beta``, ``--steps``, ``--model``, ``--data``) and
``--families`` test a change of world or hyperparameters on whole families before it becomes a default, e.g.
``python -m core bench splits --families loo --data colour_bias=0.8 --out /tmp/loo.json``. The committed JSON
(``COMMITTED``, which the README and the Studio quote as "default hyperparameters") only takes a scan of every
family with the defaults. ``--compare A.json B.json ...`` prints saved scans side by side without running anything
(with ``--readme``, into the README's compare block).
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from .config import ConfigError
from .data.toy import TOY_BASE, TOY_DEFAULTS, TOY_SOURCES
from .story import checks_as_json, flag_args, ordering_checks, overrides, resumable, run_all, write_block
from .world.render import SHAPES, STYLES

HALVES = 6
PARTS = "parts"  # a split that is a protocol of several runs (held-out style -> overrides), checked on their mean
LEAVE_ONE_OUT = "each style held out once, the other five the sources"
HALF_SEED = 2026
START, END = "<!-- splits:start -->", "<!-- splits:end -->"
# Short column names for the checks' full names (story.ordering_checks), in the order the table prints them.
SHORT = {
    "domain shift OOD: finetune >= zero-shot + 2": "FT ≥ ZS+2",
    "domain shift OOD: clipood >= finetune + 2": "CLIPood ≥ FT+2",
    "finetune below zero-shot on a target where zero-shot is strong (>= its mean over targets)":
        "FT < ZS on a strong target",
    "clipood >= zero-shot - 1 on every target": "CLIPood ≥ ZS−1 every target",
    "open class base: finetune >= zero-shot + 5": "base FT ≥ ZS+5",
    "open class base: clipood >= finetune - 1": "base CLIPood ≥ FT−1",
    "open class new: finetune <= zero-shot - 2": "new FT ≤ ZS−2",
    "open class new: clipood >= zero-shot - 1": "new CLIPood ≥ ZS−1",
    "in the wild HM: clipood >= zero-shot + 2": "wild HM CLIPood ≥ ZS+2",
    "in the wild HM: clipood >= finetune + 2": "wild HM CLIPood ≥ FT+2",
}


def source_pairs() -> dict[str, dict]:
    """Every pair of styles as the domain-shift sources, the other four as targets: name -> setting -> overrides."""
    return {"+".join(pair): _domain_shift(list(pair)) for pair in itertools.combinations(STYLES, 2)}


def _domain_shift(sources: list[str]) -> dict:
    """Domain shift with these sources and every other style as a target: setting -> overrides."""
    return {"domain_shift": {"sources": sources, "targets": [s for s in STYLES if s not in sources]}}


def without_shortcut(splits: dict[str, dict]) -> dict[str, dict]:
    """The same splits with the colour shortcut off (``colour_bias`` 0): what is left when fine-tuning has no
    shortcut to learn."""
    return {name: {s: {**o, "data_options": {"colour_bias": 0.0}} for s, o in by.items()}
            for name, by in splits.items()}


def leave_one_out() -> dict[str, dict]:
    """DomainBed's leave-one-domain-out runs (the paper's domain-shift protocol): held-out style -> setting ->
    overrides, the other five styles the sources. Official code: ``converter_domainbed.py:51-53`` trains on every
    domain not in ``--targets`` and tests on the target; ``scripts.sh:2-5`` runs each domain of a dataset as target."""
    return {t: _domain_shift([s for s in STYLES if s != t]) for t in STYLES}


def held_out_mean(parts: dict[str, dict]) -> dict[str, dict[str, float]]:
    """One row set from single-target runs (held-out style -> rows): each method's accuracy on each held-out style as
    ``ood/<style>``, their mean as ``ood`` (DomainBed's number) and the mean in-distribution accuracy as ``id``."""
    methods = next(iter(parts.values()))
    rows = {m: {f"ood/{t}": r[m]["ood"] for t, r in parts.items()} for m in methods}
    for m, row in rows.items():
        row["ood"] = sum(row[f"ood/{t}"] for t in parts) / len(parts)
        row["id"] = sum(r[m]["id"] for r in parts.values()) / len(parts)
    return rows


def base_halves(n: int = HALVES, seed: int = HALF_SEED) -> dict[str, dict]:
    """``n`` random halves of the classes as the base classes (open class and in the wild), in label order."""
    rng = random.Random(seed)
    halves = [sorted(rng.sample(list(SHAPES), len(SHAPES) // 2), key=SHAPES.index) for _ in range(n)]
    return {", ".join(h): {s: {"base_classes": h} for s in ("open_class", "in_the_wild")} for h in halves}


def is_default(by_setting: dict) -> bool:
    """Whether a scanned split is the world's default one (the story's)."""
    over = next(iter(by_setting.values()))
    return "data_options" not in over and (over.get("sources") == list(TOY_SOURCES)
                                           or over.get("base_classes") == list(TOY_BASE))


def _cell(ok: bool, detail: str) -> str:
    value = detail.removeprefix("per seed: ")
    return ("✓" if ok else "✗") + (f" {value}" if len(value) <= 6 else "")


def family_table(title: str, family: dict) -> list[str]:
    """One row per split: each check ✓/✗ (with its margin where it is one number), and whether all hold."""
    if not family:
        return []
    names = [n for n, _, _ in next(iter(family.values()))["checks"]]
    lines = [f"| {title} | " + " | ".join(SHORT.get(n, n) for n in names) + " | all |",
             "|---|" + "---|" * (len(names) + 1)]
    for split, v in family.items():
        cells = [_cell(ok, d) for _, ok, d in v["checks"]]
        label = f"{split} (default)" if v.get("default") else split
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {'**yes**' if held(v) else 'no'} |")
    return lines


def held(v: dict) -> bool:
    """Whether every check of a scanned split held."""
    return all(ok for _, ok, _ in v["checks"])


# Family -> what its table's first column holds and what the summary line counts.
FAMILIES = {"sources": ("sources (domain shift)", "source pairs"),
            "sources, shortcut off": ("sources, shortcut off (domain shift)",
                                      "source pairs with the colour shortcut off (`--data colour_bias=0`)"),
            "leave one out": ("held out (domain shift, DomainBed's protocol)",
                              "runs of DomainBed's protocol (each style held out once, checked on the mean)"),
            "bases": ("base classes (open class, in the wild)", "random base halves (open class and in the wild)")}


# --families ids (short, no commas) -> family keys.
FAMILY_IDS = {"sources": "sources", "shortcut-off": "sources, shortcut off", "loo": "leave one out",
              "bases": "bases"}


def all_families(halves: int = HALVES) -> dict[str, dict]:
    """Every family the scan measures: family key -> split name -> setting -> overrides (or a protocol's parts)."""
    return {"sources": source_pairs(), "sources, shortcut off": without_shortcut(source_pairs()),
            "leave one out": {LEAVE_ONE_OUT: {PARTS: leave_one_out()}}, "bases": base_halves(halves)}


def markdown(report: dict) -> str:
    fams = {k: report["families"][k] for k in FAMILIES if k in report["families"]}
    knobs = "flags as in the command" if report.get("flags") else "default hyperparameters"
    lines = [f"Measured with `{report['command']}` (seed {report['seed']}, {knobs}, "
             f"{report['precision']} runs, {report['wall_s'] / 60:.1f} min on this machine). Each number is the "
             "difference its check tests, in points, as in the story's check lines (for new FT ≤ ZS−2: zero-shot "
             "minus fine-tune); the per-target checks show only whether they hold.", "",
             "Every check of the story's ordering holds:"]
    lines += [f"- on {sum(held(v) for v in f.values())} of {len(f)} {FAMILIES[k][1]}" for k, f in fams.items()]
    for k, f in fams.items():
        lines += [""] + family_table(FAMILIES[k][0], f)
    return "\n".join(lines)


def scan(families: dict[str, dict], seed: int, over: dict, tmp: Path, saved: dict, save) -> dict:
    """Run every split of every family (one seed), reusing what ``saved`` already holds."""
    def run(key: str, by_setting: dict) -> dict:
        print(f"split {key}", file=sys.stderr, flush=True)
        return run_all(list(by_setting), [seed], {s: merged(over, o) for s, o in by_setting.items()}, tmp, save,
                       saved.setdefault(key, {}))

    out = {}
    for fam, splits in families.items():
        out[fam] = {}
        for name, by_setting in splits.items():
            if PARTS in by_setting:  # one protocol of several runs, checked on their mean
                parts = {t: run(f"{fam}/{name}/{t}", p)["domain_shift"][0] for t, p in by_setting[PARTS].items()}
                res, default = {"domain_shift": [held_out_mean(parts)]}, False
            else:
                res, default = run(f"{fam}/{name}", by_setting), is_default(by_setting)
            out[fam][name] = {"results": res, "checks": ordering_checks(res), "default": default}
    return out


def merged(over: dict, split: dict) -> dict:
    """One run's overrides: the scan's flags, then the split's; toy-shapes options merge key by key, so a family's
    ``colour_bias`` 0 keeps the other ``--data`` options."""
    data = {**over.get("data_options", {}), **split.get("data_options", {})}
    return {**over, **split, **({"data_options": data} if data else {})}


def chosen(ids: list[str] | None, halves: int) -> dict[str, dict]:
    """The families ``--families`` names (every family without it)."""
    keys = family_keys(ids)
    return {k: v for k, v in all_families(halves).items() if k in keys}


def family_keys(ids: list[str] | None) -> list[str]:
    """The family keys ``--families`` ids name, in the scan's order (every family without ids)."""
    unknown = [i for i in ids or () if i not in FAMILY_IDS]
    if unknown:
        raise ConfigError("families", f"no split family {unknown[0]!r}; choose from {', '.join(FAMILY_IDS)}")
    return [k for k in FAMILIES if not ids or k in {FAMILY_IDS[i] for i in ids}]


COMPARE_START, COMPARE_END = "<!-- splits-compare:start -->", "<!-- splits-compare:end -->"


def compare(paths: list[str], ids: list[str] | None) -> str:
    """One table of saved scans side by side (no runs): per scan and split of each chosen family, its checks; each
    row named by the flags its scan ran with. How a world or hyperparameter change moves the ordering."""
    reports = [_saved_scan(path) for path in paths]
    keys = [k for k in family_keys(ids) if all(k in r["families"] for r in reports)]
    if not keys:
        raise ConfigError("compare", "these scans share no family; give scans of the same family (--families)")
    cmd = f"python -m core bench splits --compare {' '.join(paths)}" + (f" --families {','.join(ids)}" if ids else "")
    seeds = ", ".join(sorted({str(r["seed"]) for r in reports}))
    lines = [f"Compared with `{cmd}` from the scans' saved JSON (seed {seeds}; each row names the flags its scan ran "
             "with, the numbers are the differences the checks test, in points)."]
    for k in keys:
        fams = {_row_label(r, n, len(r["families"][k])): v for r in reports for n, v in r["families"][k].items()}
        lines += [""] + family_table(FAMILIES[k][0], fams)
    return "\n".join(lines)


def _saved_scan(path: str) -> dict:
    try:
        return load(Path(path))
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError("compare", f"{path} is not a saved split scan (python -m core bench splits --out FILE "
                                     "writes one)") from None


def _row_label(report: dict, split: str, n_splits: int) -> str:
    """A compared row: the flags its scan ran with (or "defaults"), and the split when its family has several."""
    knobs = " ".join(report.get("flags") or []) or "defaults"
    return knobs if n_splits == 1 else f"{knobs}: {split}"


def main(a) -> int:
    ids = getattr(a, "families", None)
    if getattr(a, "compare", None):
        md = compare(a.compare, ids)
        print(md)
        if a.readme:
            write_block(Path(a.readme), md, COMPARE_START, COMPARE_END)
        return 0
    t0, out, over, flags = time.time(), Path(a.out), overrides(a), flag_args(a)
    if (flags or ids) and (out.resolve() == COMMITTED.resolve() or a.readme):
        raise ConfigError("out", f"{COMMITTED.name} and the README's scan table hold the scan of every family with "
                                 "the defaults; write a scan of some families or other hyperparameters elsewhere "
                                 "(--out FILE, no --readme)")
    families = chosen(ids, a.halves)
    saved, save, partial = resumable(out)  # continue an interrupted scan
    with tempfile.TemporaryDirectory() as tmp:
        fams = scan(families, a.seed, over, Path(tmp), saved, save)
    command = " ".join(["python -m core bench splits --seed", str(a.seed), "--halves", str(a.halves),
                        *(["--families", ",".join(ids)] if ids else []), *flags])
    report = {"command": command, "seed": a.seed, "precision": over["precision"], "flags": flags, "families": fams,
              "wall_s": time.time() - t0}
    md = markdown(report)
    print(md)
    write(report, out, a.readme, md)
    partial.unlink(missing_ok=True)
    return 0


def write(report: dict, out: Path, readme: str | None, md: str) -> None:
    data = {**report, "families": {k: {n: {**v, "checks": checks_as_json(v["checks"])} for n, v in f.items()}
                                   for k, f in report["families"].items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    if readme:
        write_block(Path(readme), md, START, END)


COMMITTED = Path(__file__).resolve().parent.parent / "bench" / "results" / "splits.json"


def committed_summary(path: Path = COMMITTED) -> dict[str, list[str]] | None:
    """Family -> the splits where every check held, and ``<family>_total`` -> every split scanned, from the committed
    scan (None without its JSON): what the Studio says about the lesson beyond the default split."""
    try:
        fams = load(path)["families"]
    except (OSError, ValueError, KeyError):
        return None
    return {**{k: [n for n, v in f.items() if held(v)] for k, f in fams.items()},
            **{f"{k}_total": list(f) for k, f in fams.items()}}


def scanned_name(setting: str, sources: list[str] | None, targets: list[str] | None,
                 base_classes: list[str] | None, data_options: dict | None) -> tuple[str, str] | None:
    """(family, split name) under which the scan measured the toy-shapes split a run with these choices uses, None
    if it did not (other world knobs, targets that are not all the other styles, or sources and base both changed)."""
    opts = {**TOY_DEFAULTS, **(data_options or {})}
    if any(opts[k] != v for k, v in TOY_DEFAULTS.items() if k != "colour_bias"):
        return None
    src = sorted(sources or TOY_SOURCES, key=STYLES.index)
    rest = [s for s in STYLES if s not in src]
    if sorted(targets or rest, key=STYLES.index) != rest:
        return None
    bias = float(opts["colour_bias"])
    if setting == "domain_shift" and len(src) == 2:
        fam = {float(TOY_DEFAULTS["colour_bias"]): "sources", 0.0: "sources, shortcut off"}.get(bias)
        return (fam, "+".join(src)) if fam else None
    if setting != "domain_shift" and src == list(TOY_SOURCES) and bias == TOY_DEFAULTS["colour_bias"]:
        return "bases", ", ".join(sorted(base_classes or TOY_BASE, key=SHAPES.index))
    return None


def measured_checks(setting: str, sources: list[str] | None = None, targets: list[str] | None = None,
                    base_classes: list[str] | None = None, data_options: dict | None = None,
                    path: Path = COMMITTED) -> list[tuple[str, bool, str]] | None:
    """The committed scan's checks for ``setting`` on exactly the toy-shapes split a run with these choices uses, or
    None when the scan did not measure it: what the Studio says about the split a user picks."""
    found = scanned_name(setting, sources, targets, base_classes, data_options)
    try:
        entry = load(path)["families"][found[0]][found[1]] if found else None
    except (OSError, ValueError, KeyError):
        return None
    return ordering_checks({setting: entry["results"][setting]}) if entry else None


def load(path: Path) -> dict:
    """A committed scan with its checks back as (name, ok, detail) tuples, as ``markdown`` takes them."""
    data = json.loads(Path(path).read_text())
    for f in data["families"].values():
        for v in f.values():
            v["checks"] = [(c["name"], c["pass"], c["detail"]) for c in v["checks"]]
    return data
