#!/usr/bin/env bash
# Small faces at surveillance distance (BENCHMARKS.md, "Small faces"): tracking alone (detection,
# landmarks, tracking; no restoration) on clips of 16-40 px faces made from the face-api demo
# photos and the rustface group photo (moving, on a still noisy and JPEG-compressed picture),
# at 1280x720 and 1920x1080 with 1, 4 and 8 faces: the window search (now the default) against
# detecting whole frames at the same smallest size (before). Then how far the landmarks of
# small faces drift from those of the same faces at full size, without and with mirrored landmarks.
#
#   benches/small_faces.sh            env: SIZES="1280x720 1920x1080" FACES="1 4 8" FRAMES=150
#                                          BEFORE=1 (0 skips the slow whole-frame runs)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-1280x720 1920x1080}" FACES="${FACES:-1 4 8}" FRAMES="${FRAMES:-150}" BEFORE="${BEFORE:-1}"
GROUP=$(ls ~/.cargo/registry/src/*/rustface-0.1.7/test.png | head -1)
DEMO=weights/face-api/demo
PHOTOS="$DEMO/sample1.jpg $DEMO/sample2.jpg $DEMO/sample3.jpg $DEMO/sample4.jpg $DEMO/sample5.jpg $DEMO/sample6.jpg $GROUP"
cargo build --release --quiet
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-unset}"
for size in $SIZES; do
  w=${size%x*} h=${size#*x}
  for n in $FACES; do
    for search in windows full-frame; do
      [ "$search" = full-frame ] && [ "$BEFORE" = 0 ] && continue
      flag=; [ "$search" = full-frame ] && flag=--full-frame
      # The whole-frame runs take seconds per pass: fewer frames, same recall definition.
      frames=$FRAMES; [ "$search" = full-frame ] && frames=$((FRAMES / 3))
      target/release/gfpgan bench-tracking $PHOTOS --width "$w" --height "$h" --faces "$n" --face-size 16-40 \
        --frames "$frames" --fps 30 --motion 20 --jitter 0 --min-face-size 16 --steady-after 1 $flag >/dev/null
    done
  done
done
target/release/gfpgan bench-landmarks $PHOTOS --face-sizes 16,20,24,32,48,64
target/release/gfpgan bench-landmarks $PHOTOS --face-sizes 16,20,24,32,48,64 --mirror-landmarks
