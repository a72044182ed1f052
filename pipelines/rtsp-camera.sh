#!/usr/bin/env bash
# A network camera (RTSP) restored to a window, live: late frames pass through unrestored.
# usage: pipelines/rtsp-camera.sh rtsp://user:pass@camera/stream
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 RTSP_URL" >&2; exit 2; }
source "$(dirname "$0")/env.sh"
# shellcheck disable=SC2086
exec gst-launch-1.0 rtspsrc location="$1" latency=200 ! decodebin ! videoconvert ! \
  $FACERESTORE live-policy=passthrough ! videoconvert ! autovideosink
