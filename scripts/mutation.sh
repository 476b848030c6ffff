#!/usr/bin/env bash
# Mutation testing of the method's code (core/clipood.py, schedule, step, sampling, splits) with mutmut, configured
# in pyproject.toml. Writes bench/results/mutation.json and the README's mutation block.
#   bash scripts/mutation.sh            # a fresh run: about 15-25 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
rm -rf mutants
python -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" > mutants.log 2>&1 || true  # progress UI, not a log
python -m mutmut results --all true > mutants/results.txt
python scripts/mutation_report.py mutants/results.txt tests/mutation_equivalents.txt bench/results/mutation.json \
  README.md
