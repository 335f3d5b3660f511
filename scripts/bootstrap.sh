#!/usr/bin/env bash
# Creates the project's virtualenv and installs mlkit with its whole stack.
# Usage: scripts/bootstrap.sh [VENV_DIR]   (default .venv). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"

find_python() {
    for cand in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$cand" ] || continue
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    return 1
}

if [ ! -x "$venv/bin/python" ]; then
    py=$(find_python) || {
        echo "mlkit needs Python 3.11 or newer. Install it (e.g. 'brew install python@3.11' or pyenv) or set PYTHON=/path/to/python3.11." >&2
        exit 2
    }
    echo "Creating virtualenv $venv with $py ($("$py" --version))"
    "$py" -m venv "$venv"
fi
pip="$venv/bin/python -m pip"
$pip install --quiet --upgrade pip
$pip install --quiet -e '.[dev]'

# tflite-support's metadata writers work with modern protobuf but the package pins
# protobuf<4, so pip cannot resolve it: install it without dependencies, and only where
# a wheel exists (x86_64, Python <= 3.11). libusb-package supplies the libusb it loads.
if "$venv/bin/python" - <<'PY'
import platform, sys
ok = platform.machine().lower() in ("x86_64", "amd64") and sys.version_info < (3, 12)
sys.exit(0 if ok else 1)
PY
then
    $pip install --quiet --no-deps tflite-support==0.4.4 libusb-package importlib_resources pybind11 sounddevice \
        || echo "warning: tflite-support could not be installed; TFLite exports will carry no embedded metadata." >&2
else
    echo "note: no tflite-support wheel for this platform; TFLite exports will carry labels and a JSON side file instead of embedded metadata."
fi
touch "$venv/.installed"
