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
# PostgreSQL, the store tests' second backend (Debian's postgresql; the
# tests fail in CI without it, IOTAD_PG_REQUIRED): a throwaway cluster in a
# temp directory, listening on a unix socket there and nowhere else.
# PostgreSQL refuses to run as root, so as root it runs as the package's
# postgres user; fsync is off, as nothing of it outlives the run.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update && apt-get install -y --no-install-recommends postgresql
	else
		sudo apt-get update && sudo apt-get install -y --no-install-recommends postgresql
	fi
fi
PG_BIN=$(pg_bin)
pg_as() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
PG_DIR=$(mktemp -d /tmp/iotad-pg.XXXXXX)
if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; fi
pg_stop() {
	pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
}
trap pg_stop EXIT
pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >/dev/null
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
	-o "-c listen_addresses='' -c unix_socket_directories=$PG_DIR -c fsync=off -c max_connections=300" start >/dev/null
export IOTAD_TEST_PG="postgres://postgres@/postgres?host=$PG_DIR"
export IOTAD_PG_REQUIRED=1
go test -race -count=1 -timeout 20m ./...
# The socket-level suite once more with PostgreSQL under it (the store
# tests above already ran on both).
IOTAD_TEST_DB=postgres go test -race -count=1 -timeout 20m ./api/
# Allocation counts, which mean nothing under the race detector.
go test -count=1 -run 'NotAllocate' ./api/
# The systemd unit and its low-ports drop-in (systemd installed if missing).
bash scripts/verify-unit.sh
# The web client's own tests (its crypto against the shared vectors).
node --test web/test/crypto.test.js
# The web client in a real Chromium (installed by the script if missing).
bash scripts/browser-test.sh
