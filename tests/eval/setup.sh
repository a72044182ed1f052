#!/usr/bin/env bash
# Creates the Python environment that computes the golden image-quality metrics with BasicSR's own
# code (tests/eval/golden.py) and makes the test pairs (tests/eval/make_pairs.py): pinned torch
# (BasicSR's metric modules import it and NIQE's MATLAB-style imresize runs on it), numpy, scipy,
# OpenCV, Pillow, and basicsr 1.4.2 without its dependencies (only its metric modules are imported;
# see golden.py); for tests/eval/lpips_reference.py also lpips 0.1.4 without its dependencies, and
# those of its dependencies not listed above: torchvision 0.29.2 (the newest on PyPI; needs
# torch>=2.14; lpips builds its AlexNet from torchvision.models), tqdm (imported by lpips'
# __init__), and safetensors (writes the linear-head fixture). Prints the venv's python path. Not
# needed for the tests, which use the committed tests/fixtures/eval/*.json (and *.safetensors).
#   "$(tests/eval/setup.sh)" tests/eval/golden.py
#   "$(tests/eval/setup.sh)" tests/eval/lpips_reference.py
set -euo pipefail
VENV="${GFPGAN_EVAL_VENV:-$HOME/.cache/gfpgan-eval/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
want = {"torch": "2.15.0", "numpy": "2.3.5", "scipy": "1.17.1", "opencv-python-headless": "4.13.0.92",
        "pillow": "13.0.0", "basicsr": "1.4.2", "lpips": "0.1.4", "torchvision": "0.29.2",
        "tqdm": "4.70.1", "safetensors": "0.8.0"}
assert all(m.version(k) == v for k, v in want.items())
import torch, numpy, scipy, cv2, PIL, torchvision, lpips, safetensors
PY
then
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.15.0 "setuptools>=77" numpy==2.3.5 \
    scipy==1.17.1 opencv-python-headless==4.13.0.92 pillow==13.0.0 >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps basicsr==1.4.2 >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps lpips==0.1.4 torchvision==0.29.2 \
    tqdm==4.70.1 safetensors==0.8.0 >&2
fi
echo "$VENV/bin/python"
