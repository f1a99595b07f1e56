#!/usr/bin/env bash
# The report-of-concern tests read the PDF back (pdftotext, pdfinfo) and render
# its first page (pdftoppm): Debian's poppler-utils. Install it once.
set -eu
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
fi
command -v pdftotext >/dev/null 2>&1 && exit 0
echo "poppler-utils is not installed; the PDF text checks will be skipped." >&2
exit 0
