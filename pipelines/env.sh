# Sourced by the pipeline scripts: finds the plugin and the default model files.
# Override with WEIGHTS=..., DEVICE=cuda, FACE_MODELS=..., GST_PLUGIN_PATH=..., FACERESTORE_OPTS="batch-size=8 ..."
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$root/target/release}"
if [ -z "${WEIGHTS:-}" ]; then
  for w in "$root/weights/GFPGANv1.4.pth" "$root/weights/GFPGANv1.3.pth" "$root/weights/random-512.safetensors"; do
    [ -f "$w" ] && { WEIGHTS="$w"; break; }
  done
fi
[ -n "${WEIGHTS:-}" ] || { echo "no weights: run weights/fetch.sh v1.4 (or ./setup.sh), or set WEIGHTS=" >&2; exit 1; }
case "$WEIGHTS" in *random*) echo "note: $WEIGHTS holds RANDOM weights; faces come out as noise" >&2 ;; esac
FACE_MODELS="${FACE_MODELS:-$root/weights/face-api/model}"
[ -d "$FACE_MODELS" ] || { echo "no face models in $FACE_MODELS: run weights/fetch-face-models.sh" >&2; exit 1; }
[ -f "$GST_PLUGIN_PATH/libgstgfpgan.so" ] || { echo "no libgstgfpgan.so in $GST_PLUGIN_PATH: run cargo build --release" >&2; exit 1; }
FACERESTORE="facerestore weights=$WEIGHTS face-models=$FACE_MODELS device=${DEVICE:-cpu} ${FACERESTORE_OPTS:-}"
