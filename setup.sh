#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs the system packages, builds the library
# and the CLI, fetches the official weights (when github.com is reachable) and the face-api.js
# models and sample photos, and restores the faces of two sample photos into out/.
# (The GStreamer element and its sample clip come next.)
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential pkg-config curl ca-certificates python3 python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs (rustc 1.92 or newer)" >&2; exit 1; }

cargo build --release
GFPGAN=target/release/gfpgan
# The face-api.js models (landmarks, expressions, identity) and the face crops the tests use.
tests/faceapi/run.sh

weights=weights/GFPGANv1.4.pth
if ! weights/fetch.sh v1.4; then
  weights=weights/random-512.safetensors
  echo
  echo "*** The official weights are not available here; running the sample with RANDOM weights"
  echo "*** ($weights): the pipeline runs end to end, but the faces come out as noise."
  [ -f "$weights" ] || "$GFPGAN" init-random "$weights"
fi

"$GFPGAN" inspect "$weights"
"$GFPGAN" restore weights/face-api/demo/sample1.jpg weights/face-api/demo/sample3.jpg -o out --weights "$weights"
echo "restored photos written to out/ (originals: weights/face-api/demo/)"
