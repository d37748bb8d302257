#!/usr/bin/env bash
# systemd-analyze verify on scripts/iotad.service, alone and with the
# low-ports drop-in. verify wants ExecStart's binary to exist, so a copy of
# the unit points at an iotad built into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
  apt-get update && apt-get install -y --no-install-recommends systemd
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/iotad" ./cmd/iotad
mkdir -p "$tmp/units/iotad.service.d"
sed "s|/usr/local/bin/iotad|$tmp/iotad|" scripts/iotad.service >"$tmp/units/iotad.service"
grep -q "ExecStart=$tmp/iotad serve" "$tmp/units/iotad.service"
# verify prints warnings and exits 0 for some problems: any output fails.
check() {
  out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$@" 2>&1) || { echo "$out"; exit 1; }
  if [ -n "$out" ]; then echo "systemd-analyze verify:"; echo "$out"; exit 1; fi
}
check "$tmp/units/iotad.service"
cp scripts/iotad-low-ports.conf "$tmp/units/iotad.service.d/low-ports.conf"
SYSTEMD_UNIT_PATH="$tmp/units:" check "$tmp/units/iotad.service"
echo "systemd units verified"
