#!/usr/bin/env bash
# Starts a local iotad cluster: nats-server (JetStream on, built from the
# module in go.mod) and NODES iotad nodes (default 3) on one machine, on one
# shared store, and prints their addresses. Ctrl-C (or SIGTERM) stops it all.
#
#   bash scripts/cluster.sh                      # SQLite: the nodes share DATA/iotad.db
#   DB=postgres://… bash scripts/cluster.sh      # PostgreSQL: passed to every node as --db
#
# DATA (default: a temp dir, removed at exit) is the data directory all nodes
# share: the SQLite file, the community and Iota keys, the ticket secret; the
# first node holds its admin socket, so `iotad … --data DATA` CLI commands
# go through it and reach every node. BASE (default 19850) is the first
# node's port: node i listens on BASE+i (TCP, and UDP for media), its admin
# listener on BASE+100+i; NATS on BASE+200. SERVE_FLAGS adds flags to every
# node. docs/SCALING.md explains what each part does.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-3}
base=${BASE:-19850}
keep=${DATA:+1}
data=${DATA:-$(mktemp -d)}
bin=$(mktemp -d)
pids=()
cleanup() {
  # Nodes first, NATS (pids[0]) last, so the nodes' last events still go out.
  if ((${#pids[@]} > 1)); then
    kill "${pids[@]:1}" 2>/dev/null || true
    wait "${pids[@]:1}" 2>/dev/null || true
  fi
  if ((${#pids[@]} > 0)); then kill "${pids[0]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$bin"
  [[ -n $keep ]] || rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
go build -o "$bin/iotad" ./cmd/iotad
go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2
mkdir -p "$data"
nats="nats://127.0.0.1:$((base + 200))"
"$bin/nats-server" -js -a 127.0.0.1 -p $((base + 200)) -sd "$data/nats" > "$data/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$((base + 200))) 2>/dev/null && break; sleep 0.1; done
[[ -s $data/ticket.secret ]] || { head -c 32 /dev/urandom | base64 > "$data/ticket.secret"; chmod 600 "$data/ticket.secret"; }
db=()
[[ -n ${DB:-} ]] && db=(--db "$DB")
urls=()
for i in $(seq 0 $((nodes - 1))); do
  port=$((base + i))
  "$bin/iotad" serve --data "$data" "${db[@]}" --addr 127.0.0.1:$port --public-addr 127.0.0.1:$port \
    --media-addr 127.0.0.1:$port --admin-addr 127.0.0.1:$((base + 100 + i)) --sync normal \
    --nats "$nats" --node-id "node-$i" --ticket-secret-file "$data/ticket.secret" \
    ${SERVE_FLAGS:-} > "$data/node-$i.out" 2> "$data/node-$i.log" &
  pids+=($!)
  # One at a time: the first start makes the community and its invites,
  # the others find them.
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "node-$i did not start:"; cat "$data/node-$i.log"; exit 1; }
  urls+=("ws://127.0.0.1:$port/")
  echo "node-$i  pid ${pids[-1]}  http://127.0.0.1:$port/  (community socket ws://127.0.0.1:$port/, metrics http://127.0.0.1:$((base + 100 + i))/metrics)"
done
echo "nats     pid ${pids[0]}  $nats"
echo "data     $data  (logs: node-N.log, nats.log)"
cat "$data/node-0.out"
echo "cluster up: ${urls[*]}"
if [[ -n ${CLUSTER_UP:-} ]]; then
  # For scripts: write the pids and addresses, then keep running.
  printf '%s\n' "${pids[@]}" > "$CLUSTER_UP.pids"
  printf '%s\n' "${urls[@]}" > "$CLUSTER_UP.urls"
fi
wait
