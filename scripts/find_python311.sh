#!/usr/bin/env bash
# Prints the Python 3.11 that the project's environments are made with: GLIMPSE_PYTHON if set,
# else python3.11 or python3 from PATH when it is 3.11. The bpy builds (5.0.1 and the LTS ones)
# exist only for 3.11. Exits 1 with what to do when there is none.
set -euo pipefail
if [ -n "${GLIMPSE_PYTHON:-}" ]; then echo "$GLIMPSE_PYTHON"; exit 0; fi
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2]==(3,11) else 1)'; then
    echo "$cand"; exit 0
  fi
done
echo "error: Python 3.11 is needed (bpy, Blender as a module, exists only for 3.11)." >&2
echo "       Install python3.11 or set GLIMPSE_PYTHON=/path/to/python3.11." >&2
exit 1
