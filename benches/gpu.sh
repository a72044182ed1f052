#!/usr/bin/env bash
# GPU side of the speed benchmark, for one run on a GPU machine that has PyTorch but no Rust:
# gfpgan-rs (candle, CUDA) beside the official PyTorch forward, eager and torch.compile'd, on the
# same GPU, the same random full-size checkpoint and the same faces, at batch 1, 4 and 16, in
# f32 (TF32 allowed), f16 and bf16; every output's error against PyTorch's f32 output.
#
# Prepare on the development machine (no GPU needed):
#   source <(../shared/cuda/prepare-toolchain.sh) && cargo build --release --features cuda
#   mkdir -p .whl && python3 -m pip download --no-deps -d .whl gfpgan==1.3.8   (pure Python)
# then run this there with target/release/gfpgan and .whl carried:
#   benches/gpu.sh [ITERS]      (env: BATCHES="1 4 16" DTYPES="f32 f16 bf16" COMPILE=1)
set -uo pipefail
cd "$(dirname "$0")/.."
ITERS="${1:-10}" BATCHES="${BATCHES:-1 4 16}" DTYPES="${DTYPES:-f32 f16 bf16}"
PY="${PYTHON:-python3}"
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/gfpgan-site .whl/*.whl && export PYTHONPATH=/tmp/gfpgan-site
fi
# candle loads the CUDA libraries at run time: those of PyTorch's wheels and the driver's.
NV="$("$PY" -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia"
export LD_LIBRARY_PATH="$(ls -d "$NV"/cu13/lib "$NV"/*/lib 2>/dev/null | tr '\n' ':')/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
DATA=bench-data
mkdir -p "$DATA"
[ -f "$DATA/gfpgan512_random.pth" ] || "$PY" tests/parity/bench_torch.py make "$DATA" --faces 16
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "machine: $(nproc) cores; $ITERS timed passes after warm-up; outputs compared with PyTorch f32 eager"

err() { # max abs difference of $1 against $2, relative to $2's magnitude
  "$PY" -c "import sys, numpy as np; a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); e = np.abs(a - b).max()
print(f'    max abs error vs pytorch f32: {e:.3g} ({e / np.abs(b).max():.3g} of the output magnitude)')" "$1" "$2"
}

for batch in $BATCHES; do
  ref="$DATA/gpu_torch_f32_b$batch.npy"
  "$PY" tests/parity/bench_torch.py time --weights "$DATA/gfpgan512_random.pth" --input "$DATA/faces.npy" \
    --batch "$batch" --iters "$ITERS" --device cuda --dtype f32 --output "$ref"
  for dtype in $DTYPES; do
    torch_dtype="$dtype"; [ "$dtype" = f32 ] && torch_dtype=tf32
    out="$DATA/gpu_torch_${torch_dtype}_b$batch.npy"
    "$PY" tests/parity/bench_torch.py time --weights "$DATA/gfpgan512_random.pth" --input "$DATA/faces.npy" \
      --batch "$batch" --iters "$ITERS" --device cuda --dtype "$torch_dtype" --output "$out" && err "$out" "$ref"
    if [ "${COMPILE:-1}" = 1 ]; then
      "$PY" tests/parity/bench_torch.py time --weights "$DATA/gfpgan512_random.pth" --input "$DATA/faces.npy" \
        --batch "$batch" --iters "$ITERS" --device cuda --dtype "$torch_dtype" --compile
    fi
    out="$DATA/gpu_rs_${dtype}_b$batch.npy"
    target/release/gfpgan bench --weights "$DATA/gfpgan512_random.pth" --input "$DATA/faces.npy" --device cuda \
      --dtype "$dtype" --batch "$batch" --iters "$ITERS" --output "$out" && err "$out" "$ref"
  done
done
