#!/usr/bin/env bash
# Everything that needs a GPU, in one go, on a machine with an NVIDIA GPU:
#   device   the GPU, driver, NVRTC and Python facts
#   tests    the CUDA test suites: tests/backends (runtime, renderer, matmul kernels) and every
#            cuda variant of the lowering sweep, fusion, control flow, jit of grad/vmap per
#            numpy function, the training workloads, threads (8 x 200 calls of one program),
#            donation and damaged cached cubins (TINYJAX_CUDA_STRICT=1: a missing
#            driver is an error, not a run of skips)
#   mnist    examples/mnist1d.py on the cuda device (needs the mnist1d package)
#   bench    python3 bench/run.py --device cuda (JAX and PyTorch as peers)
# Each part writes its log to $GPU_REPORT_DIR (default bench/results/gpu, whose README
# summarises the last run).
#
#   bash scripts/gpu_check.sh                 # every part
#   bash scripts/gpu_check.sh tests mnist     # a selection
#   bash scripts/gpu_check.sh tests -- -x -k softmax   # extra pytest arguments after --
set -u
cd "$(dirname "$0")/.."
DIR=${GPU_REPORT_DIR:-bench/results/gpu}
mkdir -p "$DIR"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

parts=()
extra=()  # test paths and pytest options: a tests part of just those
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in */*|-*) extra+=("$1") ;; *) parts+=("$1") ;; esac; shift
done
[ "${1:-}" = "--" ] && shift
extra+=("$@")
if [ ${#parts[@]} -eq 0 ]; then
  if [ ${#extra[@]} -gt 0 ]; then parts=(device tests); else parts=(device tests mnist bench); fi
fi
status=0

run_part() {  # name, command...: the command's output goes to the terminal and $DIR/name.txt
  local name=$1; shift
  echo "== $name: $*"
  { echo "\$ $*"; echo "# $(date -u '+%Y-%m-%d %H:%M UTC')"; "$@" 2>&1; echo "# exit status $?"; } \
    | tee "$DIR/$name.txt"
  local rc
  rc=$(tail -1 "$DIR/$name.txt" | awk '{print $NF}')
  [ "$rc" = "0" ] || status=1
}

for part in "${parts[@]}"; do
  case $part in
    device)
      run_part device bash -c "nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total \
--format=csv,noheader; $PY - <<'PY'
import sys, time, numpy
t = time.perf_counter()
import tinyjax
from tinyjax.backends.cuda.driver import driver, nvrtc
d = driver(); lib = nvrtc()
print(f'python {sys.version.split()[0]}, numpy {numpy.__version__}; {tinyjax.devices(\"gpu\")}: '
      f'{d.name} {d.arch}; nvrtc {lib._name}; driver init {time.perf_counter() - t:.2f} s')
PY" ;;
    tests)
      if [ ${#extra[@]} -gt 0 ] && [[ "${extra[0]}" == */* ]]; then
        targets=("${extra[@]}")
      else
        targets=(tests/backends tests/compiler tests/test_dispatch.py
                 tests/numpy/test_transform_sweep.py tests/test_workloads_jit.py
                 tests/test_threads.py tests/api/test_donation.py
                 -k "cuda or test_dispatch" "${extra[@]}")
      fi
      run_part tests env TINYJAX_CUDA_STRICT=1 timeout 560 "$PY" -m pytest -q -rs \
        -p no:cacheprovider "${targets[@]}" ;;
    mnist)
      run_part mnist env TINYJAX_DEVICE=cuda timeout 560 "$PY" examples/mnist1d.py
      # keep the progress bar's line every 1000 steps, not every redraw
      tr '\r' '\n' < "$DIR/mnist.txt" | grep -E '^[$#]|000/|model|^(mlp|cnn) +[0-9]|saved' \
        | sed 's/\[[#.]*\] *//' > "$DIR/mnist.tmp" && mv "$DIR/mnist.tmp" "$DIR/mnist.txt" ;;
    bench)
      run_part bench timeout 580 "$PY" bench/run.py --device cuda --budget "${BENCH_BUDGET:-540}" ;;
    *) echo "unknown part '$part' (device, tests, mnist, bench)"; exit 2 ;;
  esac
done
exit $status
