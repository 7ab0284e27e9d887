#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv with pinned versions.
# Re-runs are cheap: the install is skipped while the requirement files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=${GLIMPSE_PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2]==(3,11) else 1)'; then PY=$cand; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "error: Python 3.11 is needed (bpy==5.0.1, Blender 5.0 as a module, exists only for 3.11)." >&2
  echo "       Install python3.11 or set GLIMPSE_PYTHON=/path/to/python3.11." >&2
  exit 1
fi
stamp_src=$(cat pyproject.toml requirements-server.txt constraints.txt | sha256sum | cut -c1-16)
if [ -f "$VENV/.glimpse-stamp" ] && [ "$(cat "$VENV/.glimpse-stamp")" = "$stamp_src" ]; then
  exit 0
fi
echo "[setup] creating $VENV with $($PY --version) (first run only, about a minute)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >&2
# torch==2.13.0 resolves to the CPU build here; a user with a GPU installs a CUDA torch (docs/troubleshooting.md, docs/installation.md).
# The project itself, editable, with every extra the tests and the demo use.
"$VENV/bin/python" -m pip install -q -e ".[dev]" -c constraints.txt >&2
echo "$stamp_src" > "$VENV/.glimpse-stamp"
echo "[setup] environment ready in $VENV" >&2
