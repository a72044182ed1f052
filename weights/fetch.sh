#!/usr/bin/env bash
# Downloads the official GFP-GAN checkpoints from the TencentARC/GFPGAN GitHub releases into
# weights/ and checks that each loads with the complete GFPGANv1Clean tensor set.
#
#   weights/fetch.sh            # GFPGANv1.4.pth
#   weights/fetch.sh v1.3 v1.4  # several
#
# Exit status: 0 when every requested file is present and valid, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")"
GFPGAN_BIN="${GFPGAN_BIN:-../target/release/gfpgan}"
RELEASES="https://github.com/TencentARC/GFPGAN/releases/download"

url_for() {
  case "$1" in
    v1.3) echo "$RELEASES/v1.3.0/GFPGANv1.3.pth" ;;
    v1.4) echo "$RELEASES/v1.3.0/GFPGANv1.4.pth" ;;
    *) return 1 ;;
  esac
}

if [ ! -x "$GFPGAN_BIN" ]; then
  echo "building the gfpgan CLI (cargo build --release) to verify the downloads..." >&2
  (cd .. && cargo build --release --quiet) || exit 1
fi

status=0
for version in "${@:-v1.4}"; do
  url="$(url_for "$version")" || { echo "unknown version '$version' (use v1.3 or v1.4)" >&2; status=1; continue; }
  file="GFPGAN${version}.pth"
  if [ -f "$file" ] && "$GFPGAN_BIN" inspect "$file" >/dev/null 2>&1; then
    echo "$file: present and valid"
    continue
  fi
  echo "downloading $file from $url"
  if ! curl -fL --progress-bar --retry 2 --connect-timeout 20 -o "$file.part" "$url"; then
    rm -f "$file.part"
    cat >&2 <<MSG
could not download $file (no network access to github.com from here?).
  On a machine that has access, download
    $url
  copy it to $(pwd)/$file, then check it with
    weights/verify.sh weights/$file
MSG
    status=1
    continue
  fi
  if "$GFPGAN_BIN" inspect "$file.part" >/dev/null; then
    mv "$file.part" "$file"
    echo "$file: downloaded and valid, sha256 $(sha256sum "$file" | cut -d' ' -f1)"
  else
    echo "$file: the download does not load as a GFPGANv1Clean checkpoint (kept as $file.part)" >&2
    status=1
  fi
done
exit $status
