#!/usr/bin/env bash
# Fetches the face-api.js models and demo photos that the face-net parity fixtures are made from:
# the npm package @vladmandic/face-api@1.7.15 (MIT), pinned by the sha256 of its tarball, unpacked
# into weights/face-api/ (never committed: the folder carries its own `*` .gitignore).
#
#   weights/fetch-face-models.sh          # fetch + verify (skips when already done)
#   weights/fetch-face-models.sh --force  # fetch again
#
# Afterwards:
#   weights/face-api/model/*.json, *.bin   TF.js weights manifests and shards
#   weights/face-api/demo/sample{1..6}.jpg  demo photos
#   weights/face-api/dist/face-api.esm.js   face-api bundled with tfjs (used by tests/faceapi)
#
# Needs npm (only to download the tarball from the npm registry) and sha256sum, tar.
# Exit status: 0 when the package is present and verified, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")"

PKG="@vladmandic/face-api"
VERSION="1.7.15"
TARBALL="vladmandic-face-api-${VERSION}.tgz"
TARBALL_SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
DEST="face-api"
STAMP="$DEST/.verified-$VERSION"

# The files the parity fixtures use, checked after unpacking (and on every run).
FILE_SHA256="
5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8  model/face_expression_model-weights_manifest.json
9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d  model/face_expression_model.bin
ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9  model/face_landmark_68_model-weights_manifest.json
4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b  model/face_landmark_68_model.bin
9a1a5dd19fd814fd5095c3cb58f8e0d3193b8c5b9a6715b30a69d559aea31ad4  model/face_landmark_68_tiny_model-weights_manifest.json
b98e9f2f7da76f8a6dda9741a36ed485b224b889d552de2b2c1bb16217f67bfc  model/face_landmark_68_tiny_model.bin
cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b  model/face_recognition_model-weights_manifest.json
b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589  model/face_recognition_model.bin
888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955  model/ssd_mobilenetv1_model-weights_manifest.json
2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8  model/ssd_mobilenetv1_model.bin
5d1af4849ac48d5b985f4a9b16010c512353ddd6fcc63d50fd0bc9e9e64296e5  model/tiny_face_detector_model-weights_manifest.json
b7503ce7df31039b1c43316a9b865cab6a70dd748cc602d3fa28b551503c3871  model/tiny_face_detector_model.bin
74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f  model/age_gender_model-weights_manifest.json
49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa  model/age_gender_model.bin
8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51  demo/sample1.jpg
7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691  demo/sample2.jpg
8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936  demo/sample3.jpg
729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc  demo/sample4.jpg
6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938  demo/sample5.jpg
9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87  demo/sample6.jpg
"

verify_files() {
  (cd "$DEST" && printf '%s\n' "$FILE_SHA256" | sed '/^$/d' | sha256sum --quiet --check -)
}

force=0
[ "${1:-}" = "--force" ] && force=1

mkdir -p "$DEST"
# Everything in weights/face-api/ stays out of git, whatever the top-level .gitignore says.
[ -f "$DEST/.gitignore" ] || printf '*\n' > "$DEST/.gitignore"

if [ "$force" = 0 ] && [ -f "$STAMP" ] && verify_files >/dev/null 2>&1; then
  echo "$PKG@$VERSION: present in weights/$DEST and verified"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ -f "$DEST/$TARBALL" ] && [ "$force" = 0 ] && \
   [ "$(sha256sum "$DEST/$TARBALL" | cut -d' ' -f1)" = "$TARBALL_SHA256" ]; then
  echo "$PKG@$VERSION: reusing weights/$DEST/$TARBALL"
  cp "$DEST/$TARBALL" "$tmp/$TARBALL"
else
  command -v npm >/dev/null || { echo "npm is needed to fetch $PKG@$VERSION (install Node.js >= 18)" >&2; exit 1; }
  echo "fetching $PKG@$VERSION from the npm registry (npm pack, ~13 MB)..."
  if ! (cd "$tmp" && npm pack --loglevel=error --fetch-retries=1 "$PKG@$VERSION" >"$tmp/pack.log" 2>&1); then
    grep -m4 "error" "$tmp/pack.log" >&2 || true
    cat >&2 <<MSG

could not fetch $PKG@$VERSION: the npm registry is unreachable from here (or npm is misconfigured).
  On a machine that can reach it, run
    npm pack $PKG@$VERSION
  (sha256 $TARBALL_SHA256),
  copy $TARBALL to $(pwd)/$DEST/ and run this script again.
MSG
    exit 1
  fi
fi

got="$(sha256sum "$tmp/$TARBALL" | cut -d' ' -f1)"
if [ "$got" != "$TARBALL_SHA256" ]; then
  echo "checksum mismatch for $TARBALL: expected $TARBALL_SHA256, got $got" >&2
  exit 1
fi

# Unpack fresh (package/ prefix stripped), keeping the tarball for later re-verification.
find "$DEST" -mindepth 1 -maxdepth 1 ! -name .gitignore ! -name "$TARBALL" -exec rm -rf {} +
tar -xzf "$tmp/$TARBALL" -C "$DEST" --strip-components=1 --no-same-owner
cp -f "$tmp/$TARBALL" "$DEST/$TARBALL"
if ! verify_files; then
  echo "unpacked files do not match the pinned checksums" >&2
  exit 1
fi
touch "$STAMP"
echo "$PKG@$VERSION: unpacked into weights/$DEST and verified (tarball sha256 $TARBALL_SHA256)"
