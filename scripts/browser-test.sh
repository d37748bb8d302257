#!/usr/bin/env bash
# The web client's end-to-end tests in a real Chromium. Installs Debian's
# chromium when it is missing (apt-get, as root) and playwright-core from
# npm at the version web/test/e2e/package-lock.json pins; never downloads
# a browser build of its own. Fails rather than skips when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
# certutil (libnss3-tools) puts the TLS test's CA into Chromium's NSS
# database; openssl makes that CA; sqlite3 dates messages back for the
# test of day dividers; the emoji font makes the emoji picker's
# screenshots show emoji rather than empty boxes.
if ! command -v chromium >/dev/null 2>&1 || ! command -v certutil >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 || ! command -v sqlite3 >/dev/null 2>&1 ||
  [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
  echo "installing Debian's chromium, libnss3-tools, openssl, sqlite3 and fonts-noto-color-emoji" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends chromium fonts-liberation libnss3-tools openssl sqlite3 fonts-noto-color-emoji >/dev/null
fi
(cd web/test/e2e && npm ci --no-audit --no-fund --silent)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/iotad" ./cmd/iotad
export IOTAD_BIN="$work/iotad" CHROMIUM="$(command -v chromium)"
export SCREENSHOTS="${SCREENSHOTS:-$PWD/test-output/screenshots}"
node --test --test-concurrency=1 web/test/e2e/app.test.js web/test/e2e/layout.test.js web/test/e2e/impersonation.test.js web/test/e2e/insecure.test.js web/test/e2e/tls.test.js web/test/e2e/search.test.js web/test/e2e/unread.test.js web/test/e2e/files.test.js web/test/e2e/messages.test.js web/test/e2e/members.test.js web/test/e2e/private.test.js
