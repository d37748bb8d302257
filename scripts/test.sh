#!/usr/bin/env bash
# The whole test suite, as README.md gives it and CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The ACME test server the TLS tests get a certificate from (Debian's
# pebble; TestACMEFromPebble starts it on loopback, and fails in CI
# without it).
if ! command -v pebble >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update && apt-get install -y --no-install-recommends pebble
	else
		sudo apt-get update && sudo apt-get install -y --no-install-recommends pebble
	fi
fi
export PEBBLE_REQUIRED=1
go test -race -count=1 -timeout 20m ./...
# The systemd unit and its low-ports drop-in (systemd installed if missing).
bash scripts/verify-unit.sh
# The web client's own tests (its crypto against the shared vectors).
node --test web/test/crypto.test.js
# The web client in a real Chromium (installed by the script if missing).
bash scripts/browser-test.sh
