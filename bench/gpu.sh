#!/usr/bin/env bash
# GPU benchmark (issue 15): the seed's Table 1 setting (PW encoder of a patch-encoder model,
# 100 batches of 32 real patches, PyTorch CUDA vs ONNX Runtime CUDA EP fp32 / fp16) and
# `psirel predict --device cuda` of the default model end to end; prints one JSON.
#
#   bench/gpu.sh                          # 100,000-point scene, own small models, bench/results/gpu
#   bench/gpu.sh --points 1000000 --model DIR --patch-model DIR --out bench/results/gpu.json
#
# Needs an NVIDIA GPU, torch built with CUDA and onnxruntime-gpu in the project's environment
# (PYTHON, default .venv/bin/python); downloads nothing. Options: bench/gpu_bench.py --help.
# Exit 2, with one line, when there is no usable GPU.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python3)"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench/gpu.sh: no NVIDIA GPU here (nvidia-smi lists none); run it on a GPU machine" >&2
    exit 2
fi
cd "$root"
exec "$python" "$here/gpu_bench.py" "$@"
