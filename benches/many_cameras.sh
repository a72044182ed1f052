#!/usr/bin/env bash
# Many cameras on one machine: N facerestore elements in one gst-launch process (one network
# shared, passes mixing cameras) against N gst-launch processes of one element each; peak RSS
# (GNU time) and faces per second. Then the library's bench-streams in one process, a shared
# network against a network per stream (what each element loading its own copy amounted to).
#
#   benches/many_cameras.sh [WEIGHTS]   env: COUNTS="1 2 4 8" FRAMES=3 FACES=1 SIZE=640x360 DEVICE=cpu
#                                            ELEMENTS=1 (0: skip the gst-launch runs) BATCH=4
#                                            LIBRARY=1 (0: skip the bench-streams runs)
# WEIGHTS defaults to weights/random-512.safetensors (full size; made by setup.sh). Each frame
# holds FACES faces; every camera gets its own clip.
set -euo pipefail
cd "$(dirname "$0")/.."
WEIGHTS="${1:-weights/random-512.safetensors}" COUNTS="${COUNTS:-1 2 4 8}" FRAMES="${FRAMES:-3}"
SIZE="${SIZE:-640x360}" DEVICE="${DEVICE:-cpu}" FACES="${FACES:-1}"
w="${SIZE%x*}" h="${SIZE#*x}"
BIN="${GFPGAN:-target/release/gfpgan}"
[ -n "${GFPGAN:-}" ] || cargo build --release --workspace --quiet
[ -f "$WEIGHTS" ] || "$BIN" init-random "$WEIGHTS"
photos=(weights/face-api/demo/sample{1,2,3,4,5,6}.jpg)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $FRAMES frames of $SIZE per camera, $FACES face(s) each; weights $WEIGHTS on $DEVICE"

if [ "${ELEMENTS:-1}" = 1 ]; then
  export GST_PLUGIN_PATH="$PWD/target/release"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  max=$(echo $COUNTS | tr ' ' '\n' | sort -n | tail -1)
  for k in $(seq 1 "$max"); do
    mkdir -p "$work/png$k" "$work/raw$k"
    "$BIN" clip "${photos[@]}" -o "$work/png$k" --width "$w" --height "$h" --faces "$FACES" --frames "$FRAMES" \
      --motion 8 --seed "$k" 2>/dev/null
    gst-launch-1.0 -q multifilesrc location="$work/png$k/%05d.png" caps=image/png,framerate=25/1 ! pngdec ! \
      videoconvert ! video/x-raw,format=RGBx ! multifilesink location="$work/raw$k/%05d.raw"
  done
  branch() { # camera k: its raw frames through an element to a fakesink
    echo "multifilesrc location=$work/raw$1/%05d.raw num-buffers=$FRAMES" \
      "caps=video/x-raw,format=RGBx,width=$w,height=$h,framerate=25/1 ! facerestore weights=$WEIGHTS" \
      "face-models=weights/face-api/model device=$DEVICE detection-interval=1 ${BATCH:+batch-size=$BATCH} ! fakesink"
  }
  for n in $COUNTS; do
    pipeline=""
    for k in $(seq 1 "$n"); do pipeline="$pipeline $(branch "$k")"; done
    /usr/bin/time -f "%M %e" -o "$work/one" gst-launch-1.0 -q $pipeline
    read -r kib secs <"$work/one"
    echo "elements: $n in one process: peak RSS $((kib / 1024)) MiB, $secs s, $(echo "$n * $FRAMES * $FACES / $secs" | bc -l | cut -c1-5) faces/s"
    start=$(date +%s.%N)
    for k in $(seq 1 "$n"); do
      /usr/bin/time -f "%M %e" -o "$work/sep$k" gst-launch-1.0 -q $(branch "$k") &
    done
    wait
    secs=$(echo "$(date +%s.%N) - $start" | bc -l)
    kib=$(for k in $(seq 1 "$n"); do cat "$work/sep$k"; done | awk '{s += $1} END {print s}')
    echo "elements: $n in $n processes: peak RSS summed $((kib / 1024)) MiB, $(printf %.1f "$secs") s," \
      "$(echo "$n * $FRAMES * $FACES / $secs" | bc -l | cut -c1-5) faces/s"
  done
fi

bench() { # bench-streams with the clip above and "$@"
  "$BIN" bench-streams "${photos[@]}" --width "$w" --height "$h" --frames "$FRAMES" --faces "$FACES" --motion 8 \
    --weights "$WEIGHTS" --device "$DEVICE" ${BATCH:+--batch-size $BATCH} "$@"
}
[ "${LIBRARY:-1}" = 1 ] || exit 0
lib="$(mktemp -d)"
for n in $COUNTS; do
  for networks in shared per-stream; do
    bench --streams "$n" --networks "$networks" 2>&1 >/dev/null | sed "s/^/library: /"
    [ "$n" = 1 ] && break
  done
  [ "$n" = 1 ] && continue
  # The same cameras as separate processes (each its own clip seed, as in one process).
  rm -f "$lib"/p*.json
  for k in $(seq 1 "$n"); do bench --streams 1 --seed "$((k - 1))" >"$lib/p$k.json" 2>/dev/null & done
  wait
  python3 - "$n" "$lib" <<'PY'
import json, sys, glob
runs = [json.load(open(f)) for f in glob.glob(sys.argv[2] + "/p*.json")]
faces, secs = sum(r["faces_restored"] for r in runs), max(r["seconds"] for r in runs)
rss = sum(r["peak_rss_mib"] for r in runs)
print(f"library: {sys.argv[1]} processes of 1 stream: {faces} faces in {secs:.1f} s = {faces / secs:.2f} faces/s; "
      f"peak RSS summed {rss:.0f} MiB")
PY
done
rm -rf "$lib"
