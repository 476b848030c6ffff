#!/usr/bin/env bash
# GPU benchmarks + correctness check in one command, under 5 minutes on an H100/H200-class GPU:
#
#   bash bench/gpu.sh            # full: check (toy-clip, ViT-B/16), ViT-B/16 steps at batch 36 and 256 vs the seed
#                                # design, BMA share, FLOP/s vs bf16 peak, eval images/s, then torch.compile at 256
#   bash bench/gpu.sh --quick    # ~1 minute: fewer repeats, no torch.compile, toy-clip check only
#
# Installs nothing: it needs the project's requirements (requirements.txt) and a CUDA build of torch already
# installed. Extra arguments go to `python -m bench gpu` (e.g. --peak-tflops 989 for an unlisted GPU,
# --no-compile). Output: the tables on stdout, JSON in bench/results/gpu[-quick].json (written after every
# section, so a run cut short by the time limit keeps what it measured). Paste the stdout into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

python - <<'EOF' || exit 2
import importlib.util, sys
missing = [m for m in ("torch", "open_clip", "numpy", "scipy", "safetensors") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"bench/gpu.sh: missing {', '.join(missing)}; install the project's requirements first "
             "(python -m pip install -r requirements.txt with a CUDA build of torch)")
import torch
if not torch.cuda.is_available():
    sys.exit(f"bench/gpu.sh: torch {torch.__version__} sees no CUDA device (CUDA build: {torch.version.cuda})")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}", flush=True)
EOF

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit,driver_version --format=csv,noheader 2>/dev/null || true
# 285 s: the whole command stays under 5 minutes even if something hangs; the JSON keeps finished sections
exec timeout --signal=INT --kill-after=10 285 python -m bench gpu "$@"
