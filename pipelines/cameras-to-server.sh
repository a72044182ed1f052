#!/usr/bin/env bash
# Several camera-style pipelines restoring on one inference server: starts `gfpgan serve` on
# loopback (or uses SERVER=host:port, any KServe v2 gRPC endpoint: gfpgan serve, Triton,
# KServe), then runs CAMERAS gst-launch processes at the same time, each a generated camera
# (the bundled sample clip with its own faces and seed, paced by the clock at FPS) through
# `facerestore server=...` to a fakesink. Prints each camera's frames per second and the
# server's batching from its /metrics.
#
#   pipelines/cameras-to-server.sh [CAMERAS]
#   env: FRAMES=50 SIZE=640x360 FPS=25 FACES=1 SERVER= HTTP= (the server's HTTP address, for
#        /metrics) MAX_BATCH=8 MAX_DELAY=5 (for the server started here), LOCAL=1 (the same
#        cameras with local networks instead, for comparison), SERVER_TIMEOUT=10000 (ms; a
#        server slower than that fails the camera's stream), FACERESTORE_OPTS
set -euo pipefail
. "$(dirname "$0")/env.sh"
CAMERAS="${1:-4}" FRAMES="${FRAMES:-50}" SIZE="${SIZE:-640x360}" FPS="${FPS:-25}" FACES="${FACES:-1}"
w="${SIZE%x*}" h="${SIZE#*x}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -z "${SERVER:-}" ] && [ "${LOCAL:-0}" != 1 ]; then
  http=$(free_port) grpc=$(free_port)
  "$root/target/release/gfpgan" serve --weights "$WEIGHTS" --device "${DEVICE:-cpu}" \
    --listen "127.0.0.1:$http" --grpc-listen "127.0.0.1:$grpc" \
    --max-batch "${MAX_BATCH:-8}" --max-delay "${MAX_DELAY:-5}" --face-models "$FACE_MODELS" \
    >"$work/serve.out" 2>"$work/serve.err" &
  pids+=($!)
  for _ in $(seq 1 600); do grep -q '^READY' "$work/serve.out" && break; sleep 0.2; done
  grep -q '^READY' "$work/serve.out" || { cat "$work/serve.err" >&2; exit 1; }
  SERVER="127.0.0.1:$grpc" HTTP="127.0.0.1:$http"
fi
if [ "${LOCAL:-0}" = 1 ]; then
  target="$FACERESTORE"
  echo "$CAMERAS cameras, each with its own local network ($WEIGHTS on ${DEVICE:-cpu})"
else
  target="facerestore server=$SERVER server-timeout=${SERVER_TIMEOUT:-10000} face-models=$FACE_MODELS ${FACERESTORE_OPTS:-}"
  echo "$CAMERAS cameras restoring on $SERVER"
fi

for k in $(seq 1 "$CAMERAS"); do
  mkdir -p "$work/cam$k"
  "$root/target/release/gfpgan" clip "$root"/weights/face-api/demo/sample{1,2,3,4,5,6}.jpg -o "$work/cam$k" \
    --width "$w" --height "$h" --faces "$FACES" --frames "$FRAMES" --seed "$k" 2>/dev/null
done
start=$(date +%s.%N)
cams=()
for k in $(seq 1 "$CAMERAS"); do
  ( t0=$(date +%s.%N)
    gst-launch-1.0 -q multifilesrc location="$work/cam$k/%05d.png" caps="image/png,framerate=$FPS/1" ! pngdec ! \
      videoconvert ! video/x-raw,format=RGBx ! clocksync ! $target ! fakesink >"$work/cam$k.log" 2>&1 ||
      { echo "camera $k: failed: $(grep -m1 -i error "$work/cam$k.log")"; exit 1; }
    t1=$(date +%s.%N)
    echo "camera $k: $FRAMES frames in $(printf %.1f "$(echo "$t1 - $t0" | bc -l)") s =" \
      "$(printf %.2f "$(echo "$FRAMES / ($t1 - $t0)" | bc -l)") fps" ) &
  cams+=($!)
done
failed=0
for p in "${cams[@]}"; do wait "$p" || failed=$((failed + 1)); done
secs=$(echo "$(date +%s.%N) - $start" | bc -l)
echo "all cameras: $((CAMERAS * FRAMES)) frames in $(printf %.1f "$secs") s"
if [ -n "${HTTP:-}" ]; then
  curl -s "http://$HTTP/metrics" | awk '
    /^gfpgan_faces_total/ { faces = $2 }
    /^gfpgan_batch_faces_sum/ { s = $2 } /^gfpgan_batch_faces_count/ { n = $2 }
    /^gfpgan_requests_total.*ModelInfer/ && /code="200"/ { ok += $2 }
    /^gfpgan_requests_total.*ModelInfer/ && !/code="200"/ { bad += $2 }
    END { printf "server: %d infer requests answered (%d failed), %d faces, %d passes of %.2f faces on average\n", ok, bad, faces, n, (n ? s / n : 0) }'
fi
[ "$failed" = 0 ] || { echo "$failed camera(s) failed" >&2; exit 1; }
