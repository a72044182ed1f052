#!/usr/bin/env bash
# The interoperability checks against code nobody here wrote, on loopback only:
#  1. a real Triton Inference Server (nvidia-pytriton's bundled tritonserver) serving the
#     official PyTorch GFPGANv1Clean on tests/fixtures/a64.pth:
#     - the official tritonclient (HTTP binary, HTTP JSON, gRPC) against it;
#     - our gRPC client against it, compared with the library's restoration (tests/serve.rs);
#     - the GStreamer element offloading to it, compared with its local restoration
#       (plugins/gfpgan/tests/offload.rs);
#  2. `gfpgan serve` on the same checkpoint, with the official tritonclient (FP32 and UINT8).
# Needs the venv of tests/serve/setup.sh (about 1.5 min and 5.7 GB the first time) and a built
# `target/release/gfpgan`. Not part of the test command: see BENCHMARKS.md for the last run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="$(tests/serve/setup.sh)"
W=tests/fixtures/a64.pth
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# Waits for a server's READY line on the file it writes to.
wait_ready() {
  for _ in $(seq 1 600); do grep -q '^READY' "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "no READY line in $1" >&2; return 1
}
log="$(mktemp -d)"

echo "== Triton (official PyTorch GFPGANv1Clean) =="
th=$(free_port); tg=$(free_port); tm=$(free_port)
"$PY" tests/serve/triton_gfpgan.py --weights "$W" --http-port "$th" --grpc-port "$tg" --metrics-port "$tm" \
  >"$log/triton.out" 2>"$log/triton.err" &
pids+=($!)
wait_ready "$log/triton.out"
"$PY" tests/serve/tritonclient_check.py --http "127.0.0.1:$th" --grpc "127.0.0.1:$tg" --weights "$W" --model gfpgan
export GFPGAN_TRITON_GRPC="127.0.0.1:$tg"
cargo test -q --release --test serve -- --ignored --nocapture triton 2>&1 | grep -E "Triton|test result|panicked"
cargo test -q --release -p gst-plugin-gfpgan --test offload -- --ignored --nocapture triton 2>&1 | grep -E "element on Triton|test result|panicked"
kill -TERM "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

echo "== gfpgan serve =="
sh=$(free_port); sg=$(free_port)
target/release/gfpgan serve --weights "$W" --listen "127.0.0.1:$sh" --grpc-listen "127.0.0.1:$sg" \
  >"$log/serve.out" 2>"$log/serve.err" &
pids+=($!)
wait_ready "$log/serve.out"
"$PY" tests/serve/tritonclient_check.py --http "127.0.0.1:$sh" --grpc "127.0.0.1:$sg" --weights "$W" --model gfpgan --uint8
echo "interop: all passed"
