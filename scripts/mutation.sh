#!/usr/bin/env bash
# Mutation testing of the method's code (core/clipood.py, schedule, step, sampling, splits) with mutmut, configured
# in pyproject.toml. Writes bench/results/mutation.json (score, survivors, the equivalent ones with their reasons).
#   bash scripts/mutation.sh            # fresh run (about 20-40 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
rm -rf mutants
python -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" > /dev/null 2>&1 || true  # its progress UI is not a log
python -m mutmut export-cicd-stats
python -m mutmut results > mutants/survivors.txt
python scripts/mutation_report.py mutants/mutmut-cicd-stats.json mutants/survivors.txt tests/mutation_equivalents.txt \
  bench/results/mutation.json
