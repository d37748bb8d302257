#!/usr/bin/env bash
# Starts a throwaway iotad and measures it from outside with iotad-load:
# fan-out, logins, voice and idle memory. Output goes to stdout; the numbers
# in docs/BENCHMARKS.md come from here. Arguments pick steps (fanout, login,
# voice, idle); none runs them all. SERVE_FLAGS adds flags to iotad serve;
# SENDERS picks the closed-loop fan-out runs (default "1 4 16"), PEERS the
# voice runs (default "10 25 50").
set -euo pipefail
steps=" ${*:-fanout login voice idle} "
want() { [[ $steps == *" $1 "* ]]; }
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/iotad" ./cmd/iotad
go build -o "$work/iotad-load" ./cmd/iotad-load
addr=127.0.0.1:19840
admin=127.0.0.1:19841
# The protocol's per-socket, per-user and per-address limits are lifted:
# the load comes from one address, thousands of sockets, and senders post
# as fast as they are answered.
"$work/iotad" serve --pprof --data "$work/data" --addr $addr --media-addr $addr --admin-addr $admin \
  --login-rate 1e6 --login-burst 1000000 --request-rate 1e6 --request-burst 1000000 \
  --user-request-rate 1e6 --user-request-burst 1000000 \
  --max-connections-per-addr 0 --max-unauthenticated-per-addr 0 --max-connections-per-user 0 \
  --send-queue 4096 --log-level warn ${SERVE_FLAGS:-} > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://$addr/healthz" >/dev/null && break; sleep 0.1; done
invite=$("$work/iotad" invite create --data "$work/data" --uses 1000000 2>/dev/null)
token=$("$work/iotad" token create --data "$work/data" --uses 1000000 2>/dev/null)
# Prometheus writes large counters as floats (1.234567e+06): awk makes them integers for $(( )).
metric() { curl -s "http://$admin/metrics" | awk -v m="$1" '$1 == m {printf "%.0f\n", $2}'; }
load() {
  echo "$ iotad-load $*"
  local f0 w0 f1 w1
  f0=$(metric iotad_frames_out_total) w0=$(metric iotad_writes_total)
  "$work/iotad-load" "$@" --pid $pid
  f1=$(metric iotad_frames_out_total) w1=$(metric iotad_writes_total)
  awk -v f=$((f1 - f0)) -v w=$((w1 - w0)) 'BEGIN { if (w > 0) printf "server frames out=%d writes=%d frames per write=%.2f\n", f, w, f / w }'
  echo
}
if want fanout; then
  for s in ${SENDERS:-1 4 16}; do load fanout --url ws://$addr/ --invite "$invite" --members 1000 --senders $s --duration 10s; done
  load fanout --url ws://$addr/ --invite "$invite" --members 1000 --senders 4 --rate 50 --duration 10s
  load fanout --url ws://$addr/ --invite "$invite" --members 100 --senders 10 --duration 10s
fi
if want login; then
  load login --url ws://$addr/ --invite "$invite" --members 64 --workers 8 --duration 10s
fi
if want voice; then
  for n in ${PEERS:-10 25 50}; do load voice --url ws://$addr/ --invite "$invite" --peers $n --duration 10s; done
fi
if want idle; then
  echo "\$ iotad-load idle --sockets 2000 (Iota sockets)"
  "$work/iotad-load" idle --url ws://$addr/ --admin-url http://$admin --token "$token" --sockets 2000
fi
