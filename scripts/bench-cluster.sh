#!/usr/bin/env bash
# Fan-out CPU per delivery on one machine: one node alone (no NATS), then
# one, two and three nodes joined by NATS (scripts/cluster.sh), members
# spread evenly over the nodes. The server CPU is the sum over the nodes and
# nats-server. Numbers go to docs/BENCHMARKS.md ("Nodes joined by NATS").
# MEMBERS (default 1000), SENDERS (default 4), DURATION (default 10s),
# COUNTS (default "1 2 3"), RATE (messages per second over all senders;
# default 0: each sender posts again when answered, so the machine's
# throughput sets the rate, and with it how long each socket's runs are),
# STAGGER=1 (with RATE: the senders post in turn, not all at each tick).
set -euo pipefail
cd "$(dirname "$0")/.."
members=${MEMBERS:-1000} senders=${SENDERS:-4} duration=${DURATION:-10s} rate=${RATE:-0} stagger=${STAGGER:+--stagger}
work=$(mktemp -d)
cl=
# SIGTERM, not SIGINT: a background job ignores SIGINT.
trap '[[ -n $cl ]] && kill $cl 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/iotad" ./cmd/iotad
go build -o "$work/iotad-load" ./cmd/iotad-load
# As in bench-load.sh: the load comes from one address and posts as fast as
# it is answered, so the protocol's limits are lifted.
lift="--login-rate 1e6 --login-burst 1000000 --request-rate 1e6 --request-burst 1000000
  --user-request-rate 1e6 --user-request-burst 1000000 --max-connections-per-addr 0
  --max-unauthenticated-per-addr 0 --max-connections-per-user 0 --send-queue 4096 --log-level warn"
run() { # label urls pids
  echo "== $1"
  echo "\$ iotad-load fanout --url $2 --members $members --senders $senders --rate $rate $stagger --duration $duration --pid $3"
  "$work/iotad-load" fanout --url "$2" --invite "$invite" --members "$members" --senders "$senders" \
    --rate "$rate" $stagger --duration "$duration" --pid "$3" --channel general
  echo
}

# One node alone, as bench-load.sh runs it.
"$work/iotad" serve --data "$work/alone" --addr 127.0.0.1:19840 --media-addr 127.0.0.1:19840 \
  --admin-addr 127.0.0.1:19841 --sync normal $lift > "$work/alone.log" 2>&1 &
alone=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:19840/healthz >/dev/null && break; sleep 0.1; done
invite=$("$work/iotad" invite create --data "$work/alone" --uses 1000000 2>/dev/null)
run "1 node, no NATS" ws://127.0.0.1:19840/ $alone
kill $alone; wait $alone 2>/dev/null || true

for n in ${COUNTS:-1 2 3}; do
  rm -rf "$work/data"
  NODES=$n DATA="$work/data" CLUSTER_UP="$work/up" SERVE_FLAGS="$lift" bash scripts/cluster.sh > "$work/cluster.out" 2>&1 &
  cl=$!
  for _ in $(seq 600); do grep -q "cluster up" "$work/cluster.out" 2>/dev/null && break; sleep 0.2; done
  grep -q "cluster up" "$work/cluster.out" || { cat "$work/cluster.out"; exit 1; }
  invite=$("$work/iotad" invite create --data "$work/data" --uses 1000000 2>/dev/null)
  urls=$(paste -sd, "$work/up.urls")
  pids=$(paste -sd, "$work/up.pids")
  run "$n node(s) joined by NATS" "$urls" "$pids"
  kill $cl; wait $cl 2>/dev/null || true
  cl=
done
