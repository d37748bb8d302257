#!/usr/bin/env bash
# The whole test suite, as README.md gives it and CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -race -count=1 -timeout 20m ./...
# The systemd unit and its low-ports drop-in (systemd installed if missing).
bash scripts/verify-unit.sh
# The web client's own tests (its crypto against the shared vectors).
node --test web/test/crypto.test.js
# The web client in a real Chromium (installed by the script if missing).
bash scripts/browser-test.sh
