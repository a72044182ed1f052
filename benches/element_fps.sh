#!/usr/bin/env bash
# Frames per second of the facerestore element on generated clips (faces from the bundled
# photos, drifting, shaken, degraded), read from raw frames in memory-sized files so that decoding
# costs nothing: detection + tracking alone (no weights), and with restoration; beside it, the
# official PyTorch network's own time for one 512 face, measured in the same run, which bounds
# what any per-frame use of it can reach.
#
#   benches/element_fps.sh [WEIGHTS]     (default bench-data/gfpgan512_random.pth or weights/random-512.safetensors)
#   env: SIZES="1280x720 1920x1080" FACES="1 4 8" TRACK_FRAMES=100 RESTORE_FRAMES=5 DEVICE=cpu
#        ENGINE=auto|candle|nhwc (the element's engine), PEER=0 skips the PyTorch figure
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS="${1:-}"
if [ -z "$WEIGHTS" ]; then
  for w in bench-data/gfpgan512_random.pth weights/random-512.safetensors; do [ -f "$w" ] && { WEIGHTS="$w"; break; }; done
fi
[ -n "$WEIGHTS" ] || { target/release/gfpgan init-random weights/random-512.safetensors; WEIGHTS=weights/random-512.safetensors; }
SIZES="${SIZES:-1280x720 1920x1080}" FACES="${FACES:-1 4 8}"
TRACK_FRAMES="${TRACK_FRAMES:-100}" RESTORE_FRAMES="${RESTORE_FRAMES:-5}" DEVICE="${DEVICE:-cpu}" ENGINE="${ENGINE:-auto}"
cargo build --release --workspace --quiet
export GST_PLUGIN_PATH="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seconds from PLAYING to EOS as gst-launch reports them: model loading happens before, and the
# sink does not preroll (async=false), so every frame is inside the measured time.
run_secs() {
  gst-launch-1.0 "$@" 2>&1 | sed -n 's/^Execution ended after \([0-9]*\):\([0-9]*\):\([0-9.]*\)$/\1 \2 \3/p' |
    awk '{ printf "%.3f", $1 * 3600 + $2 * 60 + $3 }'
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; device $DEVICE; engine $ENGINE; weights $WEIGHTS"
printf "%-10s %5s %8s | %16s | %22s\n" size faces detected "track only, fps" "with restoration, fps"
for size in $SIZES; do
  w="${size%x*}" h="${size#*x}"
  for faces in $FACES; do
    rm -rf "$work/png" "$work/raw" && mkdir -p "$work/png" "$work/raw"
    target/release/gfpgan clip weights/face-api/demo/sample{1,2,3,4,5,6}.jpg -o "$work/png" \
      --width "$w" --height "$h" --faces "$faces" --frames 50 2>/dev/null
    detected="$(target/release/gfpgan analyze "$work/png/00000.png" | grep -o '"box"' | wc -l)"
    gst-launch-1.0 -q multifilesrc location="$work/png/%05d.png" caps=image/png,framerate=25/1 ! pngdec ! \
      videoconvert ! video/x-raw,format=RGBx ! multifilesink location="$work/raw/%05d.raw"
    src="multifilesrc location=$work/raw/%05d.raw loop=true caps=video/x-raw,format=RGBx,width=$w,height=$h,framerate=25/1"
    t_track="$(run_secs $src num-buffers="$TRACK_FRAMES" ! facerestore face-models=weights/face-api/model ! fakesink async=false)"
    t_rest="$(run_secs $src num-buffers="$RESTORE_FRAMES" ! facerestore weights="$WEIGHTS" device="$DEVICE" engine="$ENGINE" \
      face-models=weights/face-api/model batch-size="$faces" ! fakesink async=false)"
    printf "%-10s %5s %8s | %16s | %22s\n" "$size" "$faces" "$detected" \
      "$(awk -v n="$TRACK_FRAMES" -v t="$t_track" 'BEGIN { printf "%.2f", n / t }')" \
      "$(awk -v n="$RESTORE_FRAMES" -v t="$t_rest" 'BEGIN { printf "%.3f", n / t }')"
  done
done

if [ "${PEER:-1}" != 0 ]; then
  PY="$(tests/parity/setup.sh)"
  mkdir -p bench-data
  [ -f bench-data/gfpgan512_random.pth ] || "$PY" tests/parity/bench_torch.py make bench-data --faces 4
  echo "peer, same run: the official PyTorch GFP-GAN network alone, one 512 face per pass:"
  "$PY" tests/parity/bench_torch.py time --weights bench-data/gfpgan512_random.pth --input bench-data/faces.npy \
    --batch 1 --iters 2 --threads "$(nproc)"
fi
