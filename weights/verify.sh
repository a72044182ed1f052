#!/usr/bin/env bash
# Checks that weights files load as complete GFPGANv1Clean checkpoints and prints what they hold.
#   weights/verify.sh weights/GFPGANv1.4.pth [more files]
set -uo pipefail
GFPGAN_BIN="${GFPGAN_BIN:-$(dirname "$0")/../target/release/gfpgan}"
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
[ -x "$GFPGAN_BIN" ] || (cd "$(dirname "$0")/.." && cargo build --release --quiet) || exit 1
status=0
for f in "$@"; do
  if "$GFPGAN_BIN" inspect "$f"; then
    echo "sha256: $(sha256sum "$f" | cut -d' ' -f1)"
  else
    status=1
  fi
done
exit $status
