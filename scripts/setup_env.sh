#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv with pinned versions.
# Re-runs are cheap: the install is skipped while the requirement files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
PY=$(bash scripts/find_python311.sh)
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
