#!/usr/bin/env bash
# Creates the Python environment that writes the training-gradient fixtures
# (tests/train/make_grad_fixtures.py): the venv of tests/eval/setup.sh (pinned torch, torchvision
# for roi_align, numpy, safetensors, basicsr 1.4.2 without its dependencies) plus gfpgan 1.3.8
# without its dependencies (only its architecture files are loaded, by path; see the script).
# Prints the venv's python path. Not needed for the tests, which use the committed
# tests/fixtures/train/*.safetensors.
#   "$(tests/train/setup.sh)" tests/train/make_grad_fixtures.py
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="$("$HERE/../eval/setup.sh")"
if ! "$PY" -c "import importlib.metadata as m; assert m.version('gfpgan') == '1.3.8'" 2>/dev/null; then
  "$(dirname "$PY")/pip" install -q --disable-pip-version-check --no-deps gfpgan==1.3.8 >&2
fi
echo "$PY"
