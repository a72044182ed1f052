#!/usr/bin/env bash
# Times the candle GFP-GAN and the official PyTorch forward side by side on this machine's CPU:
# same run, same full-size random checkpoint (released v1.3/v1.4 configuration), same faces, same
# thread count; then checks that both produced the same faces. The first engine's line is followed
# by this machine's matrix-product peak and the share of it the engine reached.
#
#   benches/cpu_vs_pytorch.sh [BATCH] [ITERS]      (defaults: 1 3; ENGINES="nhwc candle", THREADS=nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH="${1:-1}" ITERS="${2:-3}" THREADS="${THREADS:-$(nproc)}"
DATA=bench-data
PY="$(tests/parity/setup.sh)"
cargo build --release --quiet
[ -f "$DATA/gfpgan512_random.pth" ] || "$PY" tests/parity/bench_torch.py make "$DATA" --faces 4
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $THREADS; batch $BATCH; $ITERS timed passes after a warm-up"
peak=--peak # the machine's matrix-product peak, measured once, beside the first engine
for engine in ${ENGINES:-nhwc candle}; do
  RAYON_NUM_THREADS="$THREADS" target/release/gfpgan bench --weights "$DATA/gfpgan512_random.pth" --engine "$engine" \
    --input "$DATA/faces.npy" --batch "$BATCH" --iters "$ITERS" --output "$DATA/out_$engine.npy" $peak
  peak=
done
"$PY" tests/parity/bench_torch.py time --weights "$DATA/gfpgan512_random.pth" --input "$DATA/faces.npy" \
  --batch "$BATCH" --iters "$ITERS" --threads "$THREADS" --output "$DATA/out_torch.npy"
"$PY" - "$DATA" ${ENGINES:-nhwc candle} <<'PYEOF'
import sys
import numpy as np
ref = np.load(f"{sys.argv[1]}/out_torch.npy")
for engine in sys.argv[2:]:
    err = np.abs(np.load(f"{sys.argv[1]}/out_{engine}.npy") - ref).max()
    print(f"{engine} vs pytorch on the full-size checkpoint: max abs difference {err:.3g} "
          f"({err / np.abs(ref).max():.3g} of the output's magnitude)")
PYEOF
