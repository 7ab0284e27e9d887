#!/usr/bin/env bash
# The GPU check: one command that measures the full model on a GPU machine and writes its figures
# to OUTDIR (at most 8 files: gpu_check.log, summary.json and one JSON per measuring step).
#
#   bash tools/gpu_check.sh OUTDIR          on the GPU machine (python3 with CUDA torch, no
#                                           internet), after `bash tools/gpu_wheels.sh` here
#   bash tools/gpu_check.sh --cpu OUTDIR    the same steps with the miniature on the CPU, in
#                                           the current Python ($PYTHON, default python3): the
#                                           tests run this so the script cannot rot
#
# Steps, most important first, each under its own timeout and all inside GLIMPSE_GPU_CHECK_BUDGET_S
# (default 470 s): bench float16 with 1 and 4 samples (+ accuracy, load, start-up of serve
# --preload); the golden tests on the device in float32 with TF32 off; one HTTP generation; bench
# bfloat16; low-memory mode; --channels-last; --compile reduce-overhead. A failed step is recorded
# and the next one runs; the script exits 1 if any step failed or was skipped for lack of time.
set -u

usage() { echo "usage: bash tools/gpu_check.sh [--cpu] OUTDIR" >&2; exit 2; }
CPU_MODE=${GLIMPSE_GPU_CHECK_CPU:-0}
OUT_ARG=""
for arg in "$@"; do
    case $arg in
        --cpu) CPU_MODE=1 ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) [[ -z $OUT_ARG ]] || usage; OUT_ARG=$arg ;;
    esac
done
[[ -n $OUT_ARG ]] || usage

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
mkdir -p "$OUT_ARG" || exit 2
OUT=$(cd "$OUT_ARG" && pwd)
LOG=$OUT/gpu_check.log
STEPS=$(mktemp)            # the steps' record, read by the summary (kept out of OUTDIR)
trap 'rm -f "$STEPS"' EXIT
exec > >(tee -a "$LOG") 2>&1
export PYTHONUNBUFFERED=1
BUDGET_S=${GLIMPSE_GPU_CHECK_BUDGET_S:-470}
START=$SECONDS

if [[ $CPU_MODE == 1 ]]; then
    PY=${PYTHON:-python3}
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
    DEVICE=cpu
    CONFIG=configs/tiny.yaml
    STEPS_N=1
    SAMPLES=1
    ROUNDS=(--warmup 0 --repeats 1)
    # half precision is very slow on a CPU: the CPU mode runs the same steps in float32 and checks
    # the accuracy of bfloat16 alone
    FP16=float32
    BF16=float32
    ACCURACY=(--accuracy-precisions bfloat16)
else
    PY=python3
    DEVICE=cuda
    CONFIG=configs/syncdreamer.yaml
    STEPS_N=50
    SAMPLES=1,4
    ROUNDS=(--warmup 1 --repeats 3)
    FP16=float16
    BF16=bfloat16
    ACCURACY=(--accuracy-precisions float16,bfloat16)
    # the server's pure-Python needs, carried as wheels; torch and numpy are the machine's own
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu_check: no wheels in .whl/; run 'bash tools/gpu_wheels.sh' on a machine with PyPI first"
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || { echo "gpu_check: installing the wheels from .whl/ failed"; exit 2; }
    export PYTHONPATH=$ROOT:/tmp/site
fi

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ), mode $([[ $CPU_MODE == 1 ]] && echo cpu || echo gpu), budget ${BUDGET_S} s"
if [[ $CPU_MODE != 1 ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "nvidia-smi failed"
fi
"$PY" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| cuda available', torch.cuda.is_available(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

# step NAME TIMEOUT_S JSON_FILE_OR_EMPTY COMMAND...: run COMMAND under the smaller of TIMEOUT_S and
# what is left of the budget; record its status, seconds and JSON file for the summary.
step() {
    local name=$1 limit=$2 json=$3
    shift 3
    local left=$(( BUDGET_S - (SECONDS - START) ))
    (( limit > left )) && limit=$left
    if (( limit < 20 )); then
        echo "== $name: SKIPPED, ${left} s of the budget left"
        printf '%s\tskipped\t0\t%s\n' "$name" "$json" >>"$STEPS"
        return
    fi
    echo "== $name (timeout ${limit} s): $*"
    local began=$SECONDS status
    timeout --kill-after=15 "$limit" "$@"
    local rc=$?
    case $rc in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status=failed ;;
    esac
    if [[ $status == ok && -n $json && ! -s $OUT/$json ]]; then status=failed; fi
    echo "== $name: $status (exit $rc, $(( SECONDS - began )) s)"
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( SECONDS - began ))" "$json" >>"$STEPS"
}

BENCH=("$PY" -m inference_server bench --config "$CONFIG" --device "$DEVICE" --steps "$STEPS_N" "${ROUNDS[@]}")

# 1. the default: float16, 1 and 4 samples, with the half-precision accuracy, load and start-up
step bench_fp16 240 bench_fp16.json \
    "${BENCH[@]}" --precision "$FP16" "${ACCURACY[@]}" --samples "$SAMPLES" --json "$OUT/bench_fp16.json"
# 2. the golden comparison on the device, float32, TF32 off (tests/ldm/conftest.py)
step golden 90 "" \
    env GLIMPSE_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -m golden tests/ldm/test_golden.py tests/ldm/test_vae_clip.py
# 3. one generation as the add-on makes it: HTTP, submit to the last view written
step http 120 http_generation.json \
    "$PY" tools/http_generation.py --json "$OUT/http_generation.json" --steps "$STEPS_N" -- \
    --config "$CONFIG" --random-weights --device "$DEVICE" --precision "$FP16"
# 4. bfloat16
step bench_bf16 100 bench_bf16.json \
    "${BENCH[@]}" --precision "$BF16" --samples "$SAMPLES" --no-accuracy --no-startup \
    --json "$OUT/bench_bf16.json"
# 5. the low-memory mode (CLIP and VAE wait on the CPU, four views per UNet call)
step bench_low_memory 80 bench_low_memory.json \
    "${BENCH[@]}" --precision "$FP16" --samples 1 --low-memory --no-accuracy --no-startup \
    --json "$OUT/bench_low_memory.json"
# 6. channels-last against the default of step 1
step bench_channels_last 70 bench_channels_last.json \
    "${BENCH[@]}" --precision "$FP16" --samples 1 --channels-last --no-accuracy --no-startup \
    --json "$OUT/bench_channels_last.json"
# 7. torch.compile with CUDA graphs, last: its compilation may take the rest of the budget
step bench_compile 200 bench_compile.json \
    "${BENCH[@]}" --precision "$FP16" --samples 1 --compile reduce-overhead --no-accuracy --no-startup \
    --json "$OUT/bench_compile.json"

echo "== summary ($(( SECONDS - START )) s in all)"
"$PY" tools/gpu_check_summary.py "$OUT" "$STEPS"
