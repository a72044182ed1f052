#!/usr/bin/env bash
# Regenerates the face-api.js reference fixtures (tests/faceapi/fixtures/) in one command:
# installs the pinned npm deps into tests/faceapi/node_modules, makes sure
# weights/fetch-face-models.sh has fetched face-api, and runs make_reference.mjs (~1.5 minutes on
# 2 cores; tfjs CPU backend, single-threaded, deterministic).
#
#   tests/faceapi/run.sh            # regenerate fixtures/
#   tests/faceapi/run.sh --verify   # regenerate into a temp dir and compare byte for byte with
#                                   # fixtures/ (exit 1 when they differ)
#
# Needs Node.js >= 18 with npm, and the npm registry reachable on the first run.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

command -v node >/dev/null || { echo "Node.js >= 18 is needed (node not found)" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || { echo "Node.js >= 18 is needed (found $(node -v))" >&2; exit 1; }

"$ROOT/weights/fetch-face-models.sh"

# npm deps, pinned by package.json (exact versions) and package-lock.json (integrity hashes).
if ! (cd "$HERE" && node -e 'require.resolve("jpeg-js"); require.resolve("pngjs/package.json")' 2>/dev/null) \
   || ! (cd "$HERE" && npm ls --silent >/dev/null 2>&1); then
  echo "installing the pinned npm deps into tests/faceapi/node_modules..."
  if ! (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error); then
    echo "npm ci failed (is the npm registry reachable?)" >&2
    exit 1
  fi
fi

case "${1:-}" in
  --verify)
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    node "$HERE/make_reference.mjs" --out "$tmp"
    if diff -r "$HERE/fixtures" "$tmp" >/dev/null; then
      echo "OK: regenerated fixtures are byte-identical to tests/faceapi/fixtures"
    else
      echo "MISMATCH: regenerated fixtures differ from tests/faceapi/fixtures:" >&2
      diff -rq "$HERE/fixtures" "$tmp" >&2 || true
      exit 1
    fi
    ;;
  "")
    node "$HERE/make_reference.mjs"
    ;;
  *)
    echo "usage: $0 [--verify]" >&2
    exit 2
    ;;
esac
