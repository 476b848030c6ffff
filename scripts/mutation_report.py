"""Mutation score from mutmut's own output: killed / (mutants - skipped - equivalent). A mutant no selected test runs
("no tests") counts as surviving. Survivors are listed; equivalent ones with their reason
(tests/mutation_equivalents.txt: ``mutant name: why no test can tell it apart``).

    python scripts/mutation_report.py STATS SURVIVORS EQUIVALENTS OUT
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def parse_survivors(text: str) -> dict[str, str]:
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


def main(stats_path: str, survivors_path: str, equivalents_path: str, out_path: str) -> int:
    stats = json.loads(Path(stats_path).read_text())
    left = parse_survivors(Path(survivors_path).read_text())
    equivalent = parse_equivalents(Path(equivalents_path))
    tested = stats["total"] - stats["skipped"]
    killed = stats["killed"] + stats["timeout"]
    open_ = ("survived", "no tests")
    eq = sorted(n for n, s in left.items() if s in open_ and n in equivalent)
    live = sorted(n for n, s in left.items() if s in open_ and n not in equivalent)
    score = 100.0 * killed / max(1, tested - len(eq))
    report = {"command": "bash scripts/mutation.sh", "stats": stats, "tested": tested, "killed": killed,
              "score_pct": round(score, 1), "raw_score_pct": round(100.0 * killed / max(1, tested), 1),
              "equivalent": {n: {"why": equivalent[n], "diff": diff_of(n)} for n in eq},
              "surviving": {n: {"status": left[n], "diff": diff_of(n)} for n in live},
              "other": {n: s for n, s in left.items() if s not in (*open_, "killed")}}
    Path(out_path).write_text(json.dumps(report, indent=2) + "\n")
    print(f"mutation score {score:.1f} % ({killed} killed of {tested} tested, {len(eq)} equivalent, "
          f"{len(live)} surviving)")
    for n in live:
        print(f"  surviving: {n}")
    return 0 if score >= 90 else 1


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
