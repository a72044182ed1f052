#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs the system packages, builds the library
# and the CLI, fetches the official weights (when github.com is reachable) and the face-api.js
# models and sample photos, renders the sample clip (faces from the photos, drifting, shaken,
# degraded) and restores it with the GStreamer element into out/sample-restored.mp4.
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential pkg-config curl ca-certificates python3 python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs (rustc 1.92 or newer)" >&2; exit 1; }

cargo build --release --workspace
GFPGAN=target/release/gfpgan
# The face-api.js models (landmarks, expressions, identity) and the face crops the tests use.
tests/faceapi/run.sh
# NIQE's pristine model for `gfpgan eval` and the tests (from BasicSR's source distribution on
# PyPI); the sample below does not need it.
weights/fetch-niqe.sh || echo "*** weights/niqe_pris_params.npz not fetched: gfpgan eval and its tests need it"

weights=weights/GFPGANv1.4.pth
if ! weights/fetch.sh v1.4; then
  weights=weights/random-512.safetensors
  echo
  echo "*** The official weights are not available here; running the sample with RANDOM weights"
  echo "*** ($weights): the pipeline runs end to end, but the faces come out as noise."
  [ -f "$weights" ] || "$GFPGAN" init-random "$weights"
fi

"$GFPGAN" inspect "$weights"
mkdir -p out
"$GFPGAN" restore weights/face-api/demo/sample1.jpg weights/face-api/demo/sample3.jpg -o out --weights "$weights"

# The main job: a video file through the facerestore element (pipelines/restore-file.sh).
pipelines/sample-clip.sh out/sample.mp4 --width 640 --height 360 --faces 2 --frames 40
WEIGHTS="$weights" pipelines/restore-file.sh out/sample.mp4 out/sample-restored.mp4
echo
echo "restored photos: out/*.png (originals in weights/face-api/demo/)"
echo "sample clip: out/sample.mp4 -> restored: out/sample-restored.mp4"
echo "more pipelines (camera, side by side, RTSP): pipelines/README.md"
