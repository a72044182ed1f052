#!/usr/bin/env bash
# The official tritonclient (HTTP binary, HTTP JSON, gRPC; FP32 and UINT8) against `gfpgan serve`
# on loopback, light enough for CI: no PyTorch; the reference is the committed official output
# of tests/fixtures/a64_io.safetensors (see tritonclient_check.py --reference). .ci/run runs it
# after the tests; tests/serve/run.sh does the full set (a real Triton, the official model live).
# Makes a small venv (tritonclient, numpy, safetensors; about 200 MB) the first time.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${GFPGAN_TRITONCLIENT_VENV:-$HOME/.cache/gfpgan-tritonclient/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -c "import tritonclient.http, tritonclient.grpc, safetensors, numpy" 2>/dev/null ||
  "$VENV/bin/pip" install -q --disable-pip-version-check "tritonclient[http,grpc]==2.73.0" numpy==1.26.4 \
    safetensors==0.8.0
BIN="${GFPGAN:-target/debug/gfpgan}"
[ -x "$BIN" ] || cargo build -q --bin gfpgan
port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(port) grpc=$(port)
log="$(mktemp -d)"
"$BIN" serve --weights tests/fixtures/a64.pth --listen "127.0.0.1:$http" --grpc-listen "127.0.0.1:$grpc" \
  >"$log/out" 2>"$log/err" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$log"' EXIT
for _ in $(seq 1 300); do grep -q '^READY' "$log/out" && break; kill -0 $server 2>/dev/null || break; sleep 0.2; done
grep -q '^READY' "$log/out" || { cat "$log/err" >&2; exit 1; }
"$VENV/bin/python" tests/serve/tritonclient_check.py --http "127.0.0.1:$http" --grpc "127.0.0.1:$grpc" \
  --reference tests/fixtures/a64_io.safetensors --model gfpgan --uint8
