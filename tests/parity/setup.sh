#!/usr/bin/env bash
# Creates the Python environment that runs the official GFP-GAN architecture (for fixtures and
# benchmarks): pinned torch, and gfpgan 1.3.8 without its dependencies (only its two
# architecture files are imported; see official_arch.py). Prints the venv's python path.
# Not needed for the tests, which use the committed fixtures.
set -euo pipefail
VENV="${GFPGAN_PARITY_VENV:-$HOME/.cache/gfpgan-parity/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import importlib.util as u, torch, safetensors.torch, numpy; assert u.find_spec('gfpgan')" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.15.0 "setuptools>=77" numpy==2.3.5 safetensors==0.7.0 packaging >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps gfpgan==1.3.8 >&2
fi
echo "$VENV/bin/python"
