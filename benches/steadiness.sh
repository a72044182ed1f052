#!/usr/bin/env bash
# How steady restored video is, measured by `gfpgan eval-video` (flicker, landmark jitter,
# identity consistency inside the faces tracked on the input), on a synthetic clip with moving
# faces and camera shake: the facerestore element itself (gst-launch, lossless PNG frames in and
# out) with temporal-smoothing 0.5 and 0, then `gfpgan flicker` for the same clip, which adds the
# official per-frame recipe (detect + align every frame, fresh noise) from the same code paths.
#
#   benches/steadiness.sh [WEIGHTS] [OUT_DIR]   (defaults: weights/random-512.safetensors, bench-data/steadiness)
#   env: FRAMES=40 SIZE=640x360 FACES=2
# With random weights the restored faces are noise: the numbers measure steadiness, not quality.
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS="${1:-weights/random-512.safetensors}"
OUT="${2:-bench-data/steadiness}"
FRAMES="${FRAMES:-40}" SIZE="${SIZE:-640x360}" FACES="${FACES:-2}"
W="${SIZE%x*}" H="${SIZE#*x}"
GFPGAN=target/release/gfpgan
[ -f "$WEIGHTS" ] || "$GFPGAN" init-random "$WEIGHTS"
export GST_PLUGIN_PATH="$PWD/target/release"
photos=(weights/face-api/demo/sample1.jpg weights/face-api/demo/sample3.jpg)
clip=(--width "$W" --height "$H" --frames "$FRAMES" --faces "$FACES")
rm -rf "$OUT" && mkdir -p "$OUT"

"$GFPGAN" clip "${photos[@]}" "${clip[@]}" -o "$OUT/input"
for s in 0.5 0; do
  mkdir -p "$OUT/element-$s"
  start=$(date +%s)
  gst-launch-1.0 -q multifilesrc location="$OUT/input/%05d.png" caps=image/png,framerate=25/1 ! pngdec \
    ! videoconvert ! facerestore weights="$WEIGHTS" face-models=weights/face-api/model temporal-smoothing=$s \
    ! videoconvert ! pngenc compression-level=1 ! multifilesink location="$OUT/element-$s/%05d.png"
  echo "== the element, temporal-smoothing=$s ($(( $(date +%s) - start )) s)"
  "$GFPGAN" eval-video "$OUT/input" "$OUT/element-$s" --json "$OUT/element-$s.json"
done
echo "== gfpgan flicker (the element's engine in-process, and the per-frame recipe)"
"$GFPGAN" flicker "${photos[@]}" "${clip[@]}" --weights "$WEIGHTS"
