#!/usr/bin/env bash
# Memory of the facerestore element over a long run: a looped generated clip with drifting faces
# (tracks come and go as faces are missed and found again), restored with WEIGHTS, for FRAMES
# frames; the resident set size is sampled every few seconds and printed with the peak.
#
#   benches/element_rss.sh [WEIGHTS]    env: FRAMES=5000 SIZE=640x360 FACES=2 DEVICE=cpu
# (WEIGHTS defaults to the 64 px test checkpoint so that 5,000 frames finish in minutes on a CPU;
# memory per face of the 512 network is in BENCHMARKS.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS="${1:-tests/fixtures/a64.pth}" FRAMES="${FRAMES:-5000}" SIZE="${SIZE:-640x360}" FACES="${FACES:-2}"
w="${SIZE%x*}" h="${SIZE#*x}"
cargo build --release --workspace --quiet
export GST_PLUGIN_PATH="$PWD/target/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/png" "$work/raw"
target/release/gfpgan clip weights/face-api/demo/sample{1,2,3,4,5,6}.jpg -o "$work/png" --width "$w" --height "$h" \
  --faces "$FACES" --frames 100 --motion 40 2>/dev/null
gst-launch-1.0 -q multifilesrc location="$work/png/%05d.png" caps=image/png,framerate=25/1 ! pngdec ! \
  videoconvert ! video/x-raw,format=RGBx ! multifilesink location="$work/raw/%05d.raw"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $FRAMES frames of $SIZE, $FACES faces; weights $WEIGHTS"
/usr/bin/time -f "peak RSS %M KiB, %e s" gst-launch-1.0 -q \
  multifilesrc location="$work/raw/%05d.raw" loop=true num-buffers="$FRAMES" \
  caps="video/x-raw,format=RGBx,width=$w,height=$h,framerate=25/1" ! \
  facerestore weights="$WEIGHTS" face-models=weights/face-api/model device="${DEVICE:-cpu}" ! fakesink &
pid=$!
sleep 1
gst="$(pgrep -P "$pid" gst-launch-1.0 || echo "$pid")"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  rss="$(awk '/VmRSS/ {print $2}' "/proc/$gst/status" 2>/dev/null || true)"
  [ -n "$rss" ] && echo "t=$(( $(date +%s) - start ))s RSS ${rss} KiB"
  sleep "${EVERY:-10}"
done
wait "$pid"
