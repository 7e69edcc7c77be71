#!/usr/bin/env bash
# The GPU check (issue: GPU path): run from the repository root on a machine with a CUDA GPU.
# Uses the installed seqmodel, or the source tree when it is not installed. On a machine
# without a GPU it runs a small CPU fallback and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import seqmodel" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 scripts/gpu_check.py "$@"
