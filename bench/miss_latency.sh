#!/usr/bin/env bash
# The forwarder's miss path: the latency Aegis adds to a query that goes upstream, measured against the
# same query sent straight to the upstream. NSD serves the benchmark zone on loopback; dnsperf sends the
# same queries at a fixed rate (below saturation, so latency is not queueing) first directly to NSD, then
# through aegis-proxy --no-cache (every query a miss: one upstream round trip each), alternating for
# several rounds. Needs the tables from bench/run.sh (bench/out/gen) and the bench packages.
#   bench/miss_latency.sh [ROUNDS] [QPS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
QPS=${2:-5000}
SECS=${3:-8}
GEN=bench/out/gen
[ -f "$GEN/bench.example.com-10000.zone" ] || { echo "run bench/run.sh first (it generates $GEN)" >&2; exit 1; }
BIN=${AEGIS_BIN:-build-bench/bin}
[ -x "$BIN/aegis-proxy" ] || BIN=build/bin
TMP=$(mktemp -d /tmp/aegis-miss.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; [ -n "${KEEP:-}" ] && echo "kept $TMP" || rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

NSD_PORT=25408
AEGIS_PORT=25409
cat >"$TMP/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$TMP"
    database: ""
    zonelistfile: "$TMP/zone.list"
    xfrdfile: "$TMP/xfrd.state"
    xfrdir: "$TMP"
    pidfile: "$TMP/nsd.pid"
    logfile: "$TMP/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.example.com
    zonefile: "$PWD/$GEN/bench.example.com-10000.zone"
CONF
taskset -c 1 nsd -d -c "$TMP/nsd.conf" >"$TMP/nsd.out" 2>&1 &
PIDS+=($!)
mkdir -p "$TMP/empty"
taskset -c 1 "$BIN/aegis-proxy" --config "$TMP/empty" --resolv-conf /dev/null --no-cache --user 0 \
	--dns-listen "127.0.0.1:$AEGIS_PORT" --admin 127.0.0.1:25410 --upstream "127.0.0.1:$NSD_PORT" \
	--log-level warn >"$TMP/aegis.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
	dig @127.0.0.1 -p "$AEGIS_PORT" +short +tries=1 +time=1 svc-1.bench.example.com >/dev/null 2>&1 && break
	sleep 0.1
done

# dnsperf -v prints one line per answered query ending with its latency; medians and percentiles are
# robust against the stalls a shared machine adds, where the mean is not.
run() { # port -> "p50_us p90_us p99_us lost"
	taskset -c 0 dnsperf -s 127.0.0.1 -p "$1" -d "$GEN/queries-10000.txt" -Q "$QPS" -c 1 -l "$SECS" -t 2 -v \
		>"$TMP/dp.out" 2>&1
	local lost
	lost=$(awk '/Queries lost:/ {print $3}' "$TMP/dp.out")
	awk '/^> / {print $NF * 1e6}' "$TMP/dp.out" | sort -n | awk -v lost="$lost" '
		{v[NR] = $1} END {printf "%.1f %.1f %.1f %s\n", v[int(NR * .5) + 1], v[int(NR * .9) + 1], v[int(NR * .99) + 1], lost}'
}
printf '%-6s %-24s %-24s %s\n' round "direct p50/p90/p99 us" "via aegis p50/p90/p99 us" "added p50 / p90 us"
for r in $(seq 1 "$ROUNDS"); do
	read -r d50 d90 d99 dl <<<"$(run $NSD_PORT)"
	read -r a50 a90 a99 al <<<"$(run $AEGIS_PORT)"
	printf '%-6s %-24s %-24s %s / %s (lost %s/%s)\n' "$r" "$d50/$d90/$d99" "$a50/$a90/$a99" \
		"$(awk -v a="$a50" -v d="$d50" 'BEGIN {printf "%.1f", a - d}')" \
		"$(awk -v a="$a90" -v d="$d90" 'BEGIN {printf "%.1f", a - d}')" "$dl" "$al"
done
