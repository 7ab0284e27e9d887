#!/usr/bin/env bash
# Download into .whl/ the wheels that the GPU machine lacks (Python 3.12, manylinux x86_64, no
# internet there), so tools/gpu_check.sh can install them with pip --no-index. Run it here, on a
# machine with access to PyPI, from the repository root: `bash tools/gpu_wheels.sh`.
#
# Only what the server needs beyond what that machine's image holds (torch, numpy, pillow,
# safetensors, pyyaml, tqdm... are there and are never carried). Versions come from
# constraints.txt; the settings packages and opentelemetry-api (which fastapi imports) take the
# version given here while constraints.txt does not name them.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
# name as constraints.txt spells it; a name missing there takes the version given after '='
PACKAGES=(pydantic pydantic_core fastapi starlette uvicorn annotated-types typing-inspection
          typing_extensions omegaconf h11 click anyio annotated-doc
          opentelemetry-api=1.45.2 pydantic-settings=2.16.3 python-dotenv=1.2.4)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64
           manylinux_2_35_x86_64)
LIMIT_MIB=30

pinned() {  # pinned NAME[=FALLBACK] -> NAME==VERSION from constraints.txt (case and -/_ insensitive)
    local name=${1%%=*} fallback=""
    [[ $1 == *=* ]] && fallback=${1#*=}
    local key version
    key=$(echo "$name" | tr 'A-Z_' 'a-z-')
    version=$(awk -F'==' -v key="$key" '{n=tolower($1); gsub("_", "-", n)} n==key {print $2}' constraints.txt)
    version=${version:-$fallback}
    if [[ -z $version ]]; then
        echo "gpu_wheels: $name has no version in constraints.txt; pin it there" >&2
        exit 1
    fi
    echo "$name==$version"
}

requirements=()
for package in "${PACKAGES[@]}"; do
    requirements+=("$(pinned "$package")")
done

rm -rf "$WHEELS"
mkdir -p "$WHEELS"
platform_flags=()
for platform in "${PLATFORMS[@]}"; do
    platform_flags+=(--platform "$platform")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platform_flags[@]}" -d "$WHEELS" "${requirements[@]}"

count=$(ls "$WHEELS"/*.whl | wc -l)
if (( count != ${#requirements[@]} )); then
    echo "gpu_wheels: expected ${#requirements[@]} wheels, got $count in $WHEELS" >&2
    exit 1
fi
size_kib=$(du -sk "$WHEELS" | cut -f1)
if (( size_kib > LIMIT_MIB * 1024 )); then
    echo "gpu_wheels: $WHEELS holds $((size_kib / 1024)) MiB, over the $LIMIT_MIB MiB limit" >&2
    exit 1
fi
ls -1 "$WHEELS"
echo "gpu_wheels: $count wheels, $((size_kib / 1024 + 1)) MiB at most, in $WHEELS"
