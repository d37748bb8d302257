#!/usr/bin/env bash
# Measures this tree against another commit, side by side: each round runs
# every shape once on each build, alternating, so that both see the same
# machine. The server is pinned to core 0 and the load tool to core 1 when
# taskset exists. Prints each round and, per shape, the medians and their
# ratio (this tree ÷ base): the numbers issue 14 asks for.
#
#   bash scripts/bench-compare.sh [BASE] [SHAPE...]
#
# BASE is a commit (default 88f1163, the build issue 14 measures against).
# SHAPES: login fan50 fan1000 room100 voice10 voice25 voice50 (default all),
# and join (10,000 members join a community: server CPU per join; only
# when named).
# ROUNDS (default 3) and DURATION (default 10s) tune the runs; KEEP=1 leaves
# the load tool's output and the last server log in /tmp (load.log, serve.log).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-88f1163}
shift || true
shapes=${*:-login fan50 fan1000 room100 voice10 voice25 voice50}
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	git worktree remove --force "$work/base-tree" 2>/dev/null || true
	if [ -n "${KEEP:-}" ]; then cp "$work/load.log" "$work/serve.log" /tmp/ 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/this" "$work/base"
go build -o "$work/this/" ./cmd/iotad ./cmd/iotad-load
git worktree add --detach -q "$work/base-tree" "$base"
# Both load tools read the server's CPU the same way, this tree's (in
# nanoseconds, where older ones counted 10 ms ticks), when the base's reader
# is the same function. The base's own tool drives its logins and calls.
if grep -q '^func ProcessCPU(pid int) (time.Duration, error)' "$work/base-tree/internal/load/cpu.go" 2>/dev/null; then
	cp internal/load/cpu.go internal/load/cpu_linux.go internal/load/cpu_other.go "$work/base-tree/internal/load/"
fi
(cd "$work/base-tree" && go build -o "$work/base/" ./cmd/iotad ./cmd/iotad-load)

# Arrays, not a function: a function run with & would be a subshell, and
# $! its pid rather than the server's.
core0=() core1=()
if command -v taskset >/dev/null; then core0=(taskset -c 0) core1=(taskset -c 1); fi

# Each build's serve flags, read once. Not piped into grep -q: under
# pipefail the help's writer, cut off by grep's early exit, would fail the
# test now and then.
declare -A helps
for b in this base; do helps[$work/$b]=$("$work/$b/iotad" serve --help 2>&1 || true); done
# has BUILD FLAG says whether BUILD's serve takes --FLAG.
has() { grep -qE "^\s+-$2( |$)" <<<"${helps[$1]}"; }

# Every build gets the limits lifted that it has flags for: the load comes
# from one address and senders post as fast as they are answered.
flags_for() {
	local f=(--login-rate 1e6 --login-burst 1000000 --request-rate 1e6 --request-burst 1000000 --send-queue 4096)
	has "$1" user-request-rate && f+=(--user-request-rate 1e6 --user-request-burst 1000000)
	for cap in max-connections-per-addr max-unauthenticated-per-addr max-connections-per-user; do
		has "$1" $cap && f+=(--$cap 0)
	done
	has "$1" admin-addr && f+=(--admin-addr=)
	echo "${f[@]}"
}

port=19860
# run BUILD SHAPE sets res to the shape's figure for BUILD (CPU µs per
# login, join, delivery or forwarded packet) and the p99 or loss beside it.
run() {
	local b=$1 shape=$2 data out invite
	port=$((port + 1))
	data="$work/data-$port"
	# shellcheck disable=SC2046
	"${core0[@]}" "$b/iotad" serve --data "$data" --addr 127.0.0.1:$port --media-addr 127.0.0.1:$port \
		--log-level warn $(flags_for "$b") >"$work/serve.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
	invite=$("$b/iotad" invite create --data "$data" --uses 1000000 2>/dev/null)
	local url=ws://127.0.0.1:$port/ load=("${core1[@]}" "$b/iotad-load")
	# The rooms are driven by this tree's load tool for both builds, so
	# that one generator measures both; its members log in with version 1
	# to a build from before login version 2 (no --legacy-login flag).
	local fan=("${core1[@]}" "$work/this/iotad-load" fanout --url $url --invite "$invite" --duration "$duration" --pid $pid)
	has "$b" legacy-login || fan+=(--legacy-login)
	case $shape in
	login) out=$("${load[@]}" login --url $url --invite "$invite" --members 64 --workers 8 --duration "$duration" --pid $pid) ;;
	fan50) out=$("${fan[@]}" --members 1000 --senders 4 --rate 50) ;;
	fan1000) out=$("${fan[@]}" --members 1000 --senders 10 --rate 1000) ;;
	room100) out=$("${fan[@]}" --members 100 --senders 10 --rate 100) ;;
	join) out=$("${fan[@]}" --members 10000 --senders 1 --rate 1 --duration 1ms | grep 'per join') ;;
	voice*) out=$("${load[@]}" voice --url $url --invite "$invite" --peers "${shape#voice}" --duration "$duration" --pid $pid) ;;
	esac
	echo "$out" >>"$work/load.log"
	kill $pid && wait $pid 2>/dev/null || true
	pid=
	rm -rf "$data"
	local cpu extra
	cpu=$(grep -o 'per [a-z ]*=[0-9.]*µs' <<<"$out" | grep -o '[0-9.]*' | tail -1 || true)
	extra=$(grep -o -E 'p99=[^ ]*|loss=[^ ]*' <<<"$out" | tr '\n' ' ' || true)
	res="${cpu:-?} $extra"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A got
for r in $(seq "$rounds"); do
	for shape in $shapes; do
		for b in this base; do
			run "$work/$b" "$shape"
			echo "round $r $shape $b: ${res%% *} µs ${res#* }"
			got[$shape.$b]+="${res%% *}"$'\n'
		done
	done
done
echo
echo "shape: median µs this / base = ratio (base $base, $rounds rounds of $duration)"
for shape in $shapes; do
	t=$(printf %s "${got[$shape.this]}" | median)
	o=$(printf %s "${got[$shape.base]}" | median)
	awk -v s="$shape" -v t="$t" -v o="$o" 'BEGIN {printf "%s: %s / %s = %.2f\n", s, t, o, t / o}'
done
