#!/usr/bin/env bash
# Serving on this machine, loopback only, every run bounded:
#  1. the network in process (`gfpgan bench`, batches of BATCH) against the same network behind
#     `gfpgan serve` under load (`gfpgan bench-serve`: CLIENTS gRPC clients for DURATION seconds, one face
#     per request, every answer checked against its request): faces/s, requests/s, latency, the
#     passes the dynamic batching formed;
#  2. the element's frames per second restoring locally against restoring on a server, one
#     camera and CAMERAS cameras (pipelines/cameras-to-server.sh).
#
#   benches/serve.sh [WEIGHTS]   env: BATCH=4 CLIENTS="1 4 8" DURATION=30 CAMERAS=4 FRAMES=10
#                                     SIZE=640x360 ELEMENT=1 (0: skip part 2)
# WEIGHTS defaults to weights/random-512.safetensors (full size; made by setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS="${1:-weights/random-512.safetensors}" BATCH="${BATCH:-4}" CLIENTS="${CLIENTS:-1 4 8}"
DURATION="${DURATION:-30}" CAMERAS="${CAMERAS:-4}" FRAMES="${FRAMES:-10}" SIZE="${SIZE:-640x360}"
cargo build --release --workspace --quiet
BIN=target/release/gfpgan
[ -f "$WEIGHTS" ] || "$BIN" init-random "$WEIGHTS"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; weights $WEIGHTS (random weights: faces come out as noise)"

echo "== in process: gfpgan bench --batch $BATCH =="
"$BIN" bench --weights "$WEIGHTS" --batch "$BATCH" --iters 3 2>&1 | tail -3
for c in $CLIENTS; do
  echo "== through gfpgan serve: $c client(s), $DURATION s, max-batch $BATCH =="
  "$BIN" bench-serve --weights "$WEIGHTS" --clients "$c" --seconds "$DURATION" --max-batch "$BATCH" \
    --max-queue 64 --distinct 8 2>/dev/null
done

[ "${ELEMENT:-1}" = 1 ] || exit 0
export WEIGHTS FRAMES SIZE FACERESTORE_OPTS="batch-size=$BATCH"
for n in 1 "$CAMERAS"; do
  echo "== element, $n camera(s), local network(s) =="
  LOCAL=1 pipelines/cameras-to-server.sh "$n" 2>/dev/null
  echo "== element, $n camera(s), one gfpgan serve on loopback =="
  # This CPU restores about a face a second: a queue of several cameras' faces takes longer
  # than the element's default 10 s server-timeout.
  MAX_BATCH="$BATCH" SERVER_TIMEOUT=300000 pipelines/cameras-to-server.sh "$n" 2>/dev/null
done
