#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine, then the suite itself (this is the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium"
fi
python -m pip install -q -r requirements-dev.txt
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1 GRADIO_ANALYTICS_ENABLED=False
python -m pytest -q -p no:cacheprovider --timeout=900 "$@"
