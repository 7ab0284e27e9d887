#!/usr/bin/env bash
# Creates (once) one environment per Blender LTS release pinned in constraints-lts.txt
# (.venv-bpy42, .venv-bpy45), holding only bpy and its own dependencies, pinned by the same file:
# the compatibility test (tests/addon/blender/test_lts_versions.py) runs Blender in them as a
# child process, while the server and pytest stay in .venv. Re-runs are cheap: an environment is
# left alone while constraints-lts.txt is unchanged (its stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(bash scripts/find_python311.sh)
stamp_src=$(sha256sum constraints-lts.txt | cut -c1-16)
for bpy_pin in $(grep -E '^bpy==' constraints-lts.txt); do
  version=${bpy_pin#bpy==}
  venv=.venv-bpy$(echo "$version" | cut -d. -f1,2 | tr -d .)
  if [ -f "$venv/.glimpse-stamp" ] && [ "$(cat "$venv/.glimpse-stamp")" = "$stamp_src" ]; then
    continue
  fi
  echo "[setup] creating $venv with $bpy_pin (first run only: downloads about 350 MB)" >&2
  rm -rf "$venv"  # a half-made or outdated environment is made again from nothing
  "$PY" -m venv "$venv"
  # The file's other lines pin bpy's dependencies (numpy<2 above all); its bpy lines would conflict.
  grep -vE '^bpy==' constraints-lts.txt > "$venv/constraints.txt"
  "$venv/bin/python" -m pip install -q "$bpy_pin" -c "$venv/constraints.txt" >&2
  echo "$stamp_src" > "$venv/.glimpse-stamp"
  echo "[setup] $venv ready" >&2
done
