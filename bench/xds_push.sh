#!/usr/bin/env bash
# xDS push costs, aegis-xds -> aegis-proxy over loopback (issue 5):
#  1. full push of N ServiceEntries: time from aegis-xds start to the proxy's first answer from the new
#     table, and peak RSS (VmHWM) of both processes;
#  2. one-resource update among N: time from a file rename in the config tree to the new answer (median
#     of ROUNDS), state-of-the-world and delta;
#  3. a dnsperf load at a fixed rate running through updates (one every UPDATE_S seconds): queries lost and
#     response codes (must be 0 lost, all NOERROR).
# Needs bench/run.sh's generated tables (bench/out/gen/aegis-N). Usage: bench/xds_push.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("${@:-10000 100000}")
[ $# -gt 0 ] || SIZES=(10000 100000)
ROUNDS=${ROUNDS:-5}
LOAD_QPS=${LOAD_QPS:-10000}
LOAD_S=${LOAD_S:-20}
UPDATE_S=${UPDATE_S:-2}
BIN=${AEGIS_BIN:-build-bench/bin}
[ -x "$BIN/aegis-xds" ] || BIN=build/bin
TMP=$(mktemp -d /tmp/aegis-xdsbench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
ms() { date +%s%3N; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
answer() { dig @127.0.0.1 -p "$1" +short +tries=1 +time=1 "$2" 2>/dev/null | head -1; }
wait_for() { # port name want timeout_s -> ms waited, or "timeout"
	local t0 deadline
	t0=$(ms); deadline=$((t0 + $4 * 1000))
	while [ "$(ms)" -lt "$deadline" ]; do
		[ "$(answer "$1" "$2")" == "$3" ] && { echo $(($(ms) - t0)); return 0; }
		sleep 0.01
	done
	echo timeout
}
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

port=25500
for n in "${SIZES[@]}"; do
	gen=bench/out/gen/aegis-$n
	[ -d "$gen" ] || { echo "no $gen: run bench/run.sh (with --big for 100k) first" >&2; continue; }
	for mode in sotw delta; do
		port=$((port + 10))
		root=$TMP/root-$n-$mode
		mkdir -p "$root/c1"
		printf 'name: c1\nnetwork: n1\nlocality: r1/z1\n' >"$root/c1/cluster.yaml"
		cp "$gen"/*.yaml "$root/c1/"
		printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: probe, namespace: bench}\nspec: {hosts: [probe.bench.example.com], addresses: [10.250.0.1], ports: [{number: 80, name: http}]}\n' >"$root/c1/zz-probe.yaml"
		flag=""; [ "$mode" == delta ] && flag=--xds-delta
		taskset -c 1 "$BIN/aegis-proxy" --xds-address "127.0.0.1:$port" $flag --resolv-conf /dev/null --user 0 \
			--dns-listen "127.0.0.1:$((port + 1))" --admin "127.0.0.1:$((port + 2))" --log-level warn \
			>"$TMP/proxy-$n-$mode.log" 2>&1 &
		proxy=$!; PIDS+=("$proxy")
		sleep 0.5
		t0=$(ms)
		taskset -c 1 "$BIN/aegis-xds" --config-root "$root" --listen "127.0.0.1:$port" --state-file "$TMP/vips-$n-$mode" \
			--log-level warn >"$TMP/xds-$n-$mode.log" 2>&1 &
		xds=$!; PIDS+=("$xds")
		first=$(wait_for $((port + 1)) probe.bench.example.com 10.250.0.1 120)
		full=$([ "$first" == timeout ] && echo timeout || echo $(($(ms) - t0)))
		# One resource changed among n: a new probe file renamed into place (as kubectl/ConfigMaps do).
		lat=""
		for r in $(seq 1 "$ROUNDS"); do
			printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: probe, namespace: bench}\nspec: {hosts: [probe.bench.example.com], addresses: [10.250.1.%d], ports: [{number: 80, name: http}]}\n' "$r" >"$root/probe.tmp"
			t1=$(ms)
			mv "$root/probe.tmp" "$root/c1/zz-probe.yaml"
			w=$(wait_for $((port + 1)) probe.bench.example.com "10.250.1.$r" 60)
			[ "$w" == timeout ] && lat="$lat timeout" || lat="$lat $(($(ms) - t1))"
		done
		# dnsperf through updates.
		awk 'NR <= 20000' bench/out/gen/queries-"$n".txt >"$TMP/q.txt" 2>/dev/null || cp bench/out/gen/queries-10000.txt "$TMP/q.txt"
		taskset -c 0 dnsperf -s 127.0.0.1 -p $((port + 1)) -d "$TMP/q.txt" -Q "$LOAD_QPS" -l "$LOAD_S" -t 2 \
			>"$TMP/dnsperf.out" 2>&1 &
		dp=$!
		k=0
		while kill -0 "$dp" 2>/dev/null; do
			k=$((k + 1))
			printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: probe, namespace: bench}\nspec: {hosts: [probe.bench.example.com], addresses: [10.250.2.%d], ports: [{number: 80, name: http}]}\n' $((k % 250)) >"$root/probe.tmp"
			mv "$root/probe.tmp" "$root/c1/zz-probe.yaml"
			sleep "$UPDATE_S"
		done
		wait "$dp" || true
		lost=$(awk '/Queries lost:/ {print $3 " " $4}' "$TMP/dnsperf.out")
		sent=$(awk '/Queries sent:/ {print $3}' "$TMP/dnsperf.out")
		rcodes=$(awk -F: '/Response codes:/ {gsub(/^ +/, "", $2); print $2}' "$TMP/dnsperf.out")
		printf '%-7s %-5s full push %6s ms | one update median %5s ms (%s) | peak RSS xds %6s MiB proxy %6s MiB | load %s queries, %s updates: lost %s, %s\n' \
			"$n" "$mode" "$full" "$(echo "$lat" | median)" "$(echo $lat | tr ' ' ',')" "$(hwm "$xds")" "$(hwm "$proxy")" \
			"$sent" "$k" "$lost" "$rcodes"
		kill "$xds" "$proxy"; wait "$xds" "$proxy" 2>/dev/null || true
	done
done
