#!/usr/bin/env bash
# The browser tests drive the distribution's Chromium (not a downloaded one)
# with the playwright package from requirements-dev.txt. Install it once.
set -eu
CHROMIUM="${CHATVAKT_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x "$CHROMIUM" ] && exit 0
echo "Chromium is not installed at $CHROMIUM; the browser tests will be skipped." >&2
exit 0
