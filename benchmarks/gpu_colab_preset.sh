#!/usr/bin/env bash
# The colab preset on a GPU: float32 vs mixed_float16 vs mixed_bfloat16, XLA on.
#
#   bash benchmarks/gpu_colab_preset.sh            # about 2-4 minutes on an H100
#   STEPS=100 bash benchmarks/gpu_colab_preset.sh  # shorter
#
# Runs under TensorFlow where it is installed (Colab), else under JAX (Keras'
# backend-agnostic model; no TensorFlow import on that path). Prints a header, then
# one JSON line per precision: img_s, step_ms, achieved_tflops, the matmul peak of
# that dtype measured in the same run, and mfu (model FLOP utilisation). Feed the
# img_s figures into helpers/timing.py's MEASURED table, labelled with the device.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -z "${KERAS_BACKEND:-}" ]; then
    if "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('tensorflow') is None)"; then
        export KERAS_BACKEND=tensorflow
    else
        export KERAS_BACKEND=jax
    fi
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
start=$(date +%s)
"$PY" benchmarks/train_throughput.py --preset colab \
    --precision "${PRECISIONS:-float32,mixed_float16,mixed_bfloat16}" --jit on \
    --steps "${STEPS:-300}" --warmup "${WARMUP:-20}" --rounds "${ROUNDS:-2}" "$@"
echo "gpu_colab_preset took $(( $(date +%s) - start )) s"
