#!/usr/bin/env bash
# Restores the faces of a video file into an H.264 mp4 (video only; audio is not carried over).
# usage: pipelines/restore-file.sh INPUT OUTPUT.mp4
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 INPUT OUTPUT.mp4" >&2; exit 2; }
source "$(dirname "$0")/env.sh"
mkdir -p "$(dirname "$2")"
# shellcheck disable=SC2086
exec gst-launch-1.0 -e filesrc location="$1" ! decodebin ! videoconvert ! $FACERESTORE \
  ! videoconvert ! x264enc speed-preset=medium ! h264parse ! mp4mux ! filesink location="$2"
