#!/usr/bin/env bash
# Renders the bundled sample clip (faces from the face-api.js demo photos, drifting, with camera
# shake and GFP-GAN's degradation) and encodes it to H.264 mp4.
# usage: pipelines/sample-clip.sh OUTPUT.mp4 [gfpgan clip options, e.g. --faces 4 --frames 100]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTPUT.mp4 [clip options]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"; shift
mkdir -p "$(dirname "$out")"
frames="$(mktemp -d)"
trap 'rm -rf "$frames"' EXIT
"$root/target/release/gfpgan" clip "$root"/weights/face-api/demo/sample{1,2,3,4,5,6}.jpg -o "$frames" "$@"
gst-launch-1.0 -q multifilesrc location="$frames/%05d.png" caps="image/png,framerate=25/1" ! pngdec ! \
  videoconvert ! x264enc ! h264parse ! mp4mux ! filesink location="$out"
echo "sample clip -> $out"
