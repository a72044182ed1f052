#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs the system packages, builds the library
# and the CLI, fetches the official weights (when github.com is reachable), and runs the network
# on a sample batch of faces, timing it. (Photos and video arrive with the face pipeline and the
# GStreamer element; this script will run them on the bundled sample clip.)
set -euo pipefail
cd "$(dirname "$0")"

packages=(build-essential pkg-config curl ca-certificates python3 python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "Rust is needed: https://rustup.rs (rustc 1.92 or newer)" >&2; exit 1; }

cargo build --release
GFPGAN=target/release/gfpgan

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
"$GFPGAN" bench --weights "$weights" --batch 1 --iters 1 --output out/restored_faces.npy
echo "restored faces written to out/restored_faces.npy"
