#!/usr/bin/env bash
# Before (left) and after (right) in one picture: to a window, or to an mp4 when OUTPUT is given.
# usage: pipelines/side-by-side.sh INPUT [OUTPUT.mp4]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 INPUT [OUTPUT.mp4]" >&2; exit 2; }
source "$(dirname "$0")/env.sh"
# The input's width, read from the negotiated caps of its first decoded frame.
width="$(gst-launch-1.0 -v filesrc location="$1" ! decodebin ! videoconvert ! fakesink num-buffers=1 2>/dev/null |
  sed -n 's/.*fakesink0.GstPad:sink: caps = .*width=(int)\([0-9]*\).*/\1/p' | head -n1)"
[ -n "$width" ] || { echo "$1: no video stream found" >&2; exit 1; }
if [ $# -ge 2 ]; then
  sink="videoconvert ! x264enc ! h264parse ! mp4mux ! filesink location=$2"
else
  sink="videoconvert ! autovideosink"
fi
# shellcheck disable=SC2086
exec gst-launch-1.0 -e compositor name=mix sink_1::xpos="$width" ! $sink \
  filesrc location="$1" ! decodebin ! videoconvert ! tee name=t \
  t. ! queue max-size-buffers=0 max-size-time=0 max-size-bytes=0 ! mix.sink_0 \
  t. ! queue ! $FACERESTORE ! videoconvert ! mix.sink_1
