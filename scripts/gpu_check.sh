#!/usr/bin/env bash
# Run the CUDA device tests on a GPU machine (the `run` tool's): device facts, then
# tests/devices/test_cuda.py with TINYJAX_CUDA_STRICT=1 (fails if libcuda is missing
# rather than skipping everything).
set -u
cd "$(dirname "$0")/.."
echo "== device"; nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>&1 | head -4
echo "== python"; python3 -c 'import sys, numpy; print(sys.version.split()[0], "numpy", numpy.__version__)'
python3 - <<'PY'
import time
t = time.perf_counter()
from tinyjax.devices.cuda_driver import driver, nvrtc, _nvrtc_candidates
d = driver(); lib = nvrtc()
print(f"driver: {d.name} {d.arch}; nvrtc: {lib._name}; init {time.perf_counter() - t:.2f}s")
PY
echo "== tests"
TINYJAX_CUDA_STRICT=1 timeout 400 python3 -m pytest -q -rs -p no:cacheprovider tests/devices/test_cuda.py "$@" 2>&1 | tail -80
rc=${PIPESTATUS[0]}
echo "== rc=$rc"
exit $rc
