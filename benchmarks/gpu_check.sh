#!/usr/bin/env bash
# The prepared GPU check of issue 20 (benchmarks/gpu_check.py): one command, one JSON.
#
#   benchmarks/gpu_check.sh [gpu_check options]      # e.g. --parts b,c or --budget a=240
#
# On a lent GPU machine (no registry there): first, here, benchmarks/gpu_check_wheels.sh fills
# .whl/; then the device call carries [".whl"] and runs this. It installs the carried wheels
# into /tmp/site (and builds the carried source archives there), puts the repository and that
# folder on PYTHONPATH, runs `python -m benchmarks.gpu_check --out "${OUT:-benchmarks/results}/gpu_check.json"`
# and prints where the results went. The parts keep to their time budgets (450 s in all by
# default), so the whole check ends inside 8 minutes on one H100.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/site}

if compgen -G ".whl/*.whl" >/dev/null; then
  echo "[gpu_check.sh] installing $(ls .whl | wc -l) carried packages into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl || { echo "error: installing .whl/*.whl failed" >&2; exit 1; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"  # jupyter-book, jupyter
  for archive in .whl/*.tar.gz; do  # source only (compiled parts): built with this machine's tools
    [ -e "$archive" ] || continue
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
      --upgrade --target "$SITE" "$archive" \
      || echo "[gpu_check.sh] warning: could not build $archive; what imports it will fail" >&2
  done
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

RESULTS="${OUT:-benchmarks/results}/gpu_check.json"
"$PYTHON" -m benchmarks.gpu_check --out "$RESULTS" "$@"
rc=$?
echo "[gpu_check.sh] results: $RESULTS $(ls "${RESULTS%.json}"_*.log 2>/dev/null | tr "\n" " ")(exit $rc)"
exit $rc
