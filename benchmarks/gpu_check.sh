#!/usr/bin/env bash
# One-shot GPU check on a fresh machine (python3 present, network only to PyPI), < 8 minutes:
# venv (or pip --user), torch/torchvision/spikingjelly pins + this repo, nvidia-smi, then the
# throughput benchmark (resnet18 vgg11 ei_net, batch 64, T=4, CUDA) and bench_stdp --quick.
#   bash benchmarks/gpu_check.sh            # from anywhere; runs in the repo root
# Env: PYTHON (default python3), VENV (default /tmp/eicil-gpu-venv, outside the repo),
#      OUT (default /tmp/eicil-gpu-bench; the device runner sets it):
#      throughput.json lands there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-/tmp/eicil-gpu-venv}
OUT=${OUT:-/tmp/eicil-gpu-bench}
T0=$SECONDS

step() {  # step LIMIT_S CMD...: run with a hard time limit, say how long it took
    local limit=$1; shift
    echo "=== [$((SECONDS - T0))s] $* (limit ${limit}s)"
    local t=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    echo "=== done in $((SECONDS - t))s"
}

PKGS=(torch==2.14.1 torchvision==0.29.1 spikingjelly==2.0.0 -e .)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"  # a venv left half-made by a missing ensurepip has python but no pip
    "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 || true
fi
if "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    PY="$VENV/bin/python"
    step 250 "$PY" -m pip install -q "${PKGS[@]}"
else
    echo "venv unavailable (no ensurepip?): installing with pip --user"
    rm -rf "$VENV"
    PY="$PYTHON"
    USER_FLAGS=(--user)  # PEP 668 distributions refuse --user installs unless told otherwise
    if "$PY" -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        USER_FLAGS+=(--break-system-packages)
    fi
    export PATH="$HOME/.local/bin:$PATH"
    step 250 "$PY" -m pip install -q "${USER_FLAGS[@]}" "${PKGS[@]}"
fi
step 20 "$PY" -c "import torch, spikingjelly, eicil; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available())"

step 10 nvidia-smi

mkdir -p "$OUT"
step 110 "$PY" benchmarks/bench_throughput.py --models resnet18 vgg11 ei_net --batch-size 64 --timesteps 4 \
    --device cuda --json "$OUT/throughput.json"
step 80 "$PY" benchmarks/bench_stdp.py --quick
echo "=== all done in $((SECONDS - T0))s"
