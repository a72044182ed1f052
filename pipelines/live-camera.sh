#!/usr/bin/env bash
# A live camera restored to a window. With live-policy=passthrough, frames the restoration
# cannot finish in time go out unrestored instead of piling up (use DEVICE=cuda for real time).
# usage: pipelines/live-camera.sh [/dev/video0]
set -euo pipefail
source "$(dirname "$0")/env.sh"
# shellcheck disable=SC2086
exec gst-launch-1.0 v4l2src device="${1:-/dev/video0}" ! videoconvert ! \
  $FACERESTORE live-policy=passthrough ! videoconvert ! autovideosink
