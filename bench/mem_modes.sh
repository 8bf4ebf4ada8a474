#!/usr/bin/env bash
# What aegis-proxy's memory is made of, in both configuration modes, at one table size: --config (files)
# and --xds-address (aegis-xds on loopback serving the same ServiceEntries: the production mode, since a
# real sidecar always runs xDS). For each: start the proxy, wait for its first table answer, send 20k
# table queries, then print bench/smaps.py's breakdown (shared clean vs private, per library) and VmHWM.
#
#   bench/mem_modes.sh [N] [extra aegis-proxy flags...]     (N = 10000 by default)
#
# Needs bench/out/gen/aegis-N (bench/run.sh makes it) and aegis-proxy/aegis-xds in $AEGIS_BIN (default
# build-mem-bench/bin, else build-bench/bin, else build/bin). Loopback only; every process it starts is
# stopped by PID on exit. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
shift || true
EXTRA=("$@")
BIN=${AEGIS_BIN:-build-mem-bench/bin}
[ -x "$BIN/aegis-proxy" ] || BIN=build-bench/bin
[ -x "$BIN/aegis-proxy" ] || BIN=build/bin
GEN=bench/out/gen/aegis-$N
[ -d "$GEN" ] || { echo "no $GEN: run bench/run.sh (or bench/gen_tables.py --names $N --out bench/out/gen --aegis-only)" >&2; exit 1; }
TMP=$(mktemp -d /tmp/aegis-memmodes.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
port=$((26000 + RANDOM % 2000))
answer() { dig @127.0.0.1 -p "$1" +short +tries=1 +time=1 "$2" 2>/dev/null | head -1; }
wait_answer() { # port name -> 0 once answered (up to 120 s)
	for _ in $(seq 1 1200); do
		[ -n "$(answer "$1" "$2")" ] && return 0
		sleep 0.1
	done
	return 1
}
load() { # port: 20k table queries, bounded in time
	head -20000 "bench/out/gen/queries-$N.txt" >"$TMP/q.txt" 2>/dev/null || head -20000 bench/out/gen/queries-10000.txt >"$TMP/q.txt"
	if command -v dnsperf >/dev/null; then
		dnsperf -s 127.0.0.1 -p "$1" -d "$TMP/q.txt" -n 1 -l 20 -Q 20000 >/dev/null 2>&1 || true
	fi
}
report() { # pid label
	/usr/bin/python3 bench/smaps.py "$1" --label "$2"
	awk '/VmHWM|VmRSS/ {printf "%s %s kB  ", $1, $2} END {print ""}' "/proc/$1/status"
	echo
}
echo "aegis-proxy from $BIN, $N names, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes')"
echo

# --- files
"$BIN/aegis-proxy" --config "$GEN" --dns-listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" \
	--resolv-conf /dev/null --user "$(id -u)" --log-level warn --no-watch "${EXTRA[@]}" >"$TMP/files.log" 2>&1 &
pf=$!; PIDS+=("$pf")
wait_answer "$port" svc-1.bench.example.com || { echo "file mode: no answer" >&2; cat "$TMP/files.log" >&2; exit 1; }
load "$port"
report "$pf" "files (--config), $N names"
kill "$pf"; wait "$pf" 2>/dev/null || true

# --- xDS
port=$((port + 10))
root=$TMP/root
mkdir -p "$root/c1"
printf 'name: c1\nnetwork: n1\nlocality: r1/z1\n' >"$root/c1/cluster.yaml"
cp "$GEN"/*.yaml "$root/c1/"
"$BIN/aegis-xds" --config-root "$root" --listen "127.0.0.1:$((port + 2))" --state-file "$TMP/vips" \
	--log-level warn >"$TMP/xds.log" 2>&1 &
PIDS+=($!)
"$BIN/aegis-proxy" --xds-address "127.0.0.1:$((port + 2))" --dns-listen "127.0.0.1:$port" \
	--admin "127.0.0.1:$((port + 1))" --resolv-conf /dev/null --user "$(id -u)" --log-level warn \
	"${EXTRA[@]}" >"$TMP/xds-proxy.log" 2>&1 &
px=$!; PIDS+=("$px")
wait_answer "$port" svc-1.bench.example.com || { echo "xds mode: no answer" >&2; cat "$TMP/xds-proxy.log" >&2; exit 1; }
load "$port"
report "$px" "xds (--xds-address), $N names"
