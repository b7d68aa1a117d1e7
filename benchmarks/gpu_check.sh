#!/usr/bin/env bash
# The whole GPU check of issue 25 in one visit to a machine with one CUDA GPU, in under 10 minutes:
#   1. what the machine has (nvidia-smi, the torch build, CUDA seen from torch);
#   2. cnnlab installed from this checkout (editable, without touching torch or fetching anything);
#   3. the tests marked `gpu` (tests/runtime/test_device.py: training with AMP, fp16 + GradScaler,
#      fast_inference, a GPU run evaluated, explained and exported, resumed on the CPU, segmentation);
#   4. benchmarks/gpu_speed.py (ResNet-18 CIFAR training and inference img/s, cnnlab vs plain fp32 eager).
# Results go to $OUT (the device machine's return folder) or benchmarks/results/: gpu_check.log,
# pytest_gpu.txt, gpu_speed.json. Exit status: 0 all passed, 1 a step failed, 3 no usable CUDA torch.
#
#   bash benchmarks/gpu_check.sh            # from anywhere; PYTHON=/path/to/python to choose the interpreter
#   DEVICE=cpu BENCH_ARGS="--steps 2 --warmup 1 --batch-size 8 --infer-batch 8 --rounds 1" \
#     bash benchmarks/gpu_check.sh          # a dry run of every step on a machine without a GPU
#
# The device machine has no internet: nothing is downloaded. The torch installed there is used as it is;
# if it has no CUDA the script says so and stops (a CUDA wheel must be installed there beforehand).
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS="${OUT:-benchmarks/results}"
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_check.log"
: >"$LOG"
say() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$LOG"; }
STATUS=0
DEVICE="${DEVICE:-cuda}"
BENCH_ARGS="${BENCH_ARGS:---compile}"
STARTED=$(date +%s)

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=$(command -v python3 || command -v python); fi
say "python: $PY ($($PY --version 2>&1))"

# 1. The machine.
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee -a "$LOG"
else
  say "no nvidia-smi on this machine"
fi
if ! DEVICE="$DEVICE" $PY - <<'EOF' 2>&1 | tee -a "$LOG"; then
import os
import sys
import torch
print(f"torch {torch.__version__}, built with CUDA {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}")
if os.environ["DEVICE"] == "cpu":
    print("DEVICE=cpu: a dry run (the gpu tests skip)")
elif not torch.backends.cuda.is_built():
    print("this torch build has no CUDA (a CPU-only wheel): install a CUDA build of torch here first")
    sys.exit(3)
elif not torch.cuda.is_available():
    print("torch has CUDA but sees no GPU: check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES")
    sys.exit(3)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB")
EOF
  say "no usable CUDA torch: stopping (nothing was measured)"
  exit 3
fi

# 2. cnnlab from this checkout: editable, no dependencies (offline: torch and the rest stay as installed).
FOUND=$($PY -c "import cnnlab, os; print(os.path.realpath(cnnlab.__file__))" 2>/dev/null)
if [[ "$FOUND" == "$(realpath src)"/* ]]; then
  say "cnnlab from this checkout is installed already"
elif $PY -m pip install --no-deps --no-build-isolation --no-index -q -e . >>"$LOG" 2>&1; then
  say "cnnlab installed (editable, --no-deps)"
else
  say "pip could not install cnnlab (offline, no setuptools?): using PYTHONPATH=src"
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
MISSING=$($PY - <<'EOF'
import importlib.util
needed = ["numpy", "PIL", "yaml", "typer", "rich", "matplotlib", "pytest", "onnx", "onnxruntime", "onnxscript", "uvicorn", "fastapi"]
print(" ".join(m for m in needed if importlib.util.find_spec(m) is None))
EOF
)
[ -n "$MISSING" ] && say "missing packages (tests that need them fail or skip): $MISSING"
$PY -c "import cnnlab; print('cnnlab', cnnlab.__version__)" 2>&1 | tee -a "$LOG" || { say "cnnlab does not import"; exit 1; }
$PY -m cnnlab.cli.app info --device "$DEVICE" 2>&1 | tee -a "$LOG"

# 3. The gpu tests (-o addopts= drops the project's doctest collection; only the gpu-marked tests run).
say "pytest -m gpu"
timeout 240 $PY -m pytest -o addopts= -p no:cacheprovider --import-mode=importlib -m gpu -rA -q \
  tests/runtime/test_device.py >"$RESULTS/pytest_gpu.txt" 2>&1
CODE=$?
tail -n 30 "$RESULTS/pytest_gpu.txt" | tee -a "$LOG"
if [ $CODE -ne 0 ]; then say "gpu tests failed (exit $CODE): see pytest_gpu.txt"; STATUS=1; fi

# 4. The benchmark: training img/s (with compile), inference at batch 256, share of the matmul peak.
say "benchmarks/gpu_speed.py"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
timeout 300 $PY benchmarks/gpu_speed.py --device "$DEVICE" $BENCH_ARGS --out "$RESULTS/gpu_speed.json" 2>&1 | tee -a "$LOG"
CODE=${PIPESTATUS[0]}
if [ $CODE -ne 0 ]; then say "benchmark failed (exit $CODE)"; STATUS=1; fi

say "done in $(( $(date +%s) - STARTED )) s, status $STATUS; results in $RESULTS"
exit $STATUS
