#!/usr/bin/env bash
# Creates the Python environment for the KServe v2 / Open Inference Protocol interop tests
# (tests/serve/): the official Triton client (tritonclient 2.73.0, HTTP and gRPC), PyTriton 0.7.0
# (its wheel bundles a real tritonserver binary; it needs numpy<2, hence numpy 1.26.4), a torch that
# runs with numpy 1.x, safetensors, and gfpgan 1.3.8 without its dependencies (only its two
# architecture files are imported, through tests/parity/official_arch.py). Prints the venv's
# python path on stdout, everything else on stderr. Not needed for the Rust tests.
#   PY="$(tests/serve/setup.sh)"
#   "$PY" tests/serve/triton_gfpgan.py --weights tests/fixtures/a64.pth &
#   "$PY" tests/serve/tritonclient_check.py --http 127.0.0.1:8000 --grpc 127.0.0.1:8001 \
#       --weights tests/fixtures/a64.pth --model gfpgan
set -euo pipefail
VENV="${GFPGAN_SERVE_VENV:-$HOME/.cache/gfpgan-serve/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
want = {"tritonclient": "2.73.0", "nvidia-pytriton": "0.7.0", "numpy": "1.26.4", "torch": "2.15.0",
        "safetensors": "0.8.0", "gfpgan": "1.3.8"}
assert all(m.version(k) == v for k, v in want.items())
import torch, numpy, safetensors.torch, tritonclient.http, tritonclient.grpc, pytriton.triton
PY
then
  "$VENV/bin/pip" install -q --disable-pip-version-check "tritonclient[http,grpc]==2.73.0" \
    nvidia-pytriton==0.7.0 numpy==1.26.4 torch==2.15.0 safetensors==0.8.0 "setuptools>=77" packaging >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gfpgan==1.3.8 >&2
fi
echo "$VENV/bin/python"
