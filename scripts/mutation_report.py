"""Mutation score from mutmut's own per-mutant results: killed / (mutants - skipped - equivalent). A mutant that no
selected test runs ("no tests") counts as surviving. Equivalent mutants are listed with their reason
(tests/mutation_equivalents.txt: ``mutant name: why no test can tell it apart``).

    python scripts/mutation_report.py RESULTS EQUIVALENTS OUT.json [README.md]

RESULTS is the output of ``mutmut results --all true``; with README.md, the block between its mutation markers is
replaced by the summary.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

START, END = "<!-- mutation:start -->", "<!-- mutation:end -->"
KILLED = ("killed", "timeout")


def parse_results(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            out[name] = status
    return out


def parse_equivalents(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(":", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): why.strip() for name, why in pairs}


def diff_of(name: str) -> str:
    r = subprocess.run([sys.executable, "-m", "mutmut", "show", name], capture_output=True, text=True)
    return "\n".join(x for x in r.stdout.splitlines() if x.startswith(("-", "+")) and not x.startswith(("---", "+++")))


def module_of(name: str) -> str:
    return "core/" + name.split(".x")[0].removeprefix("core.").replace(".", "/") + ".py"


def summarise(results: dict[str, str], equivalent: dict[str, str]) -> dict:
    counted = {n: s for n, s in results.items() if s != "skipped" and n not in equivalent}
    killed = sum(s in KILLED for s in counted.values())
    per_module = collections.defaultdict(lambda: [0, 0])
    for n, s in counted.items():
        per_module[module_of(n)][0] += s in KILLED
        per_module[module_of(n)][1] += 1
    return {"command": "bash scripts/mutation.sh", "mutants": len(results),
            "status_counts": dict(collections.Counter(results.values())), "equivalent_count": len(equivalent),
            "killed": killed, "counted": len(counted), "score_pct": round(100.0 * killed / max(1, len(counted)), 1),
            "per_module": {m: {"killed": k, "counted": c} for m, (k, c) in sorted(per_module.items())},
            "surviving": {n: {"status": s, "diff": diff_of(n)} for n, s in sorted(counted.items()) if s not in KILLED},
            "equivalent": {n: {"why": w, "diff": diff_of(n)} for n, w in sorted(equivalent.items()) if n in results}}


def markdown(r: dict) -> str:
    rows = "\n".join(f"| `{m}` | {v['killed']} / {v['counted']} |" for m, v in r["per_module"].items())
    left = ", ".join(f"`{n}` ({v['status']})" for n, v in r["surviving"].items()) or "none"
    eq = "; ".join(f"`{n}`: {v['why']}" for n, v in r["equivalent"].items()) or "none"
    return (f"**Mutation score: {r['score_pct']} %** ({r['killed']} of {r['counted']} mutants killed; "
            f"{r['equivalent_count']} equivalent ones not counted), from `{r['command']}` with mutmut 3.8.1 over the "
            "fast unit tests (`[tool.mutmut]` in pyproject.toml); every number here is in "
            "`bench/results/mutation.json`.\n\n| module | killed / mutants |\n| --- | ---: |\n" + rows
            + f"\n\nSurviving: {left}.\n\nEquivalent (with the reason no test can tell them apart): {eq}.")


def main(results_path: str, equivalents_path: str, out_path: str, readme: str | None = None) -> int:
    r = summarise(parse_results(Path(results_path).read_text()), parse_equivalents(Path(equivalents_path)))
    Path(out_path).write_text(json.dumps(r, indent=2) + "\n")
    md = markdown(r)
    print(md)
    if readme:
        p = Path(readme)
        text = p.read_text()
        if START in text and END in text:
            p.write_text(text[:text.index(START) + len(START)] + "\n" + md + "\n" + text[text.index(END):])
    return 0 if r["score_pct"] >= 90 else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
