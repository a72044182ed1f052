#!/usr/bin/env bash
# Fetches NIQE's pristine-model parameters, weights/niqe_pris_params.npz (never committed: see
# /.gitignore), from BasicSR 1.4.2's source distribution on PyPI, pinned by sha256.
#
#   weights/fetch-niqe.sh          # fetch + verify (skips when already present and valid)
#   weights/fetch-niqe.sh --force  # fetch again
#
# Source: basicsr 1.4.2 (https://github.com/XPixelGroup/BasicSR), file
#   basicsr/metrics/niqe_pris_params.npz of the sdist basicsr-1.4.2.tar.gz on PyPI.
# Licence: BasicSR is Apache License 2.0 (LICENSE.txt in the same sdist). The values are the
#   parameters of the official NIQE MATLAB release (modelparameters.mat: mu_prisparam,
#   cov_prisparam), converted by BasicSR, plus the 7x7 Gaussian window (equal, within 1.4e-17, to
#   MATLAB's fspecial('gaussian', 7, 7/6)).
#
# Contents (an uncompressed zip: all members "stored", no deflate; each member a .npy v1.0 file
# with a 128-byte header, little-endian float64 '<f8'):
#   mu_pris_param.npy    (1, 36)   C order
#   cov_pris_param.npy   (36, 36)  Fortran order (the matrix is exactly symmetric)
#   gaussian_window.npy  (7, 7)    Fortran order (exactly symmetric; sums to 1 within 1e-15)
#
# Needs only curl, tar (with gzip) and sha256sum.
# Exit status: 0 when weights/niqe_pris_params.npz is present and verified, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")"

URL="https://files.pythonhosted.org/packages/86/41/00a6b000f222f0fa4c6d9e1d6dcc9811a374cabb8abb9d408b77de39648c/basicsr-1.4.2.tar.gz"
SDIST_SHA256="b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87"
MEMBER="basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
OUT="niqe_pris_params.npz"
OUT_SHA256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"

for tool in curl tar sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-niqe.sh: '$tool' is needed" >&2; exit 1; }
done

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ "${1:-}" != "--force" ] && [ -f "$OUT" ] && [ "$(sha_of "$OUT")" = "$OUT_SHA256" ]; then
  echo "$OUT: present and valid"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "downloading basicsr-1.4.2.tar.gz from $URL"
if ! curl -fL --retry 2 --connect-timeout 20 -sS -o "$TMP/basicsr.tar.gz" "$URL"; then
  cat >&2 <<MSG
could not download the BasicSR 1.4.2 source distribution (no access to files.pythonhosted.org?).
  On a machine that has access, download
    $URL
  (sha256 $SDIST_SHA256) and extract $MEMBER
  to $(pwd)/$OUT (sha256 $OUT_SHA256).
MSG
  exit 1
fi

got="$(sha_of "$TMP/basicsr.tar.gz")"
if [ "$got" != "$SDIST_SHA256" ]; then
  echo "basicsr-1.4.2.tar.gz: sha256 $got, expected $SDIST_SHA256; not used" >&2
  exit 1
fi

if ! tar -xzf "$TMP/basicsr.tar.gz" -O "$MEMBER" >"$TMP/$OUT"; then
  echo "basicsr-1.4.2.tar.gz has no $MEMBER" >&2
  exit 1
fi
got="$(sha_of "$TMP/$OUT")"
if [ "$got" != "$OUT_SHA256" ]; then
  echo "$OUT: sha256 $got, expected $OUT_SHA256; not installed" >&2
  exit 1
fi
mv "$TMP/$OUT" "$OUT"
echo "$OUT: downloaded and valid, sha256 $OUT_SHA256"
