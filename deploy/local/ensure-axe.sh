#!/usr/bin/env bash
# The browser tests check the pages with axe-core, a pinned copy installed from the
# npm registry into tests/browser/axe/ (git-ignored). The tests inject it from that
# file; the browser never fetches it. Install it once; change AXE_VERSION to upgrade.
set -eu
AXE_VERSION="4.10.2"
DIR="$(cd "$(dirname "$0")/../.." && pwd)/tests/browser/axe"
FILE="$DIR/node_modules/axe-core/axe.min.js"
if [ -f "$FILE" ] && grep -q "\"version\": \"$AXE_VERSION\"" "$DIR/node_modules/axe-core/package.json"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: axe-core $AXE_VERSION is missing and the accessibility checks will fail." >&2
  exit 0
fi
mkdir -p "$DIR"
npm install --silent --no-audit --no-fund --no-save --prefix "$DIR" "axe-core@$AXE_VERSION" >/dev/null
test -f "$FILE"
