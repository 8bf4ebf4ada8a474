#!/usr/bin/env bash
# --dns-workers: table-hit qps with each worker capped at 50% of a core, 1 worker against W workers.
#
#   bench/workers.sh [ROUNDS] [WORKERS...]      (default: 3 rounds, workers 1 2)
#
# For each worker count W, alternating over ROUNDS rounds: aegis-proxy --config bench/out/gen/aegis-10000
# --dns-workers W, pinned to core 1 (PIN=0,1: both cores) and put in a cgroup (v1 cpu controller) with a quota of W x 50 ms per
# 100 ms; bench/loadgen on core 0 sends from 16 source ports (so SO_REUSEPORT spreads queries over the
# workers), 64 queries in flight, for 8 s. Prints qps per round and the median, plus each worker's share
# (aegis_dns_worker_queries_total). This machine has 2 cores and the load needs one, so the W workers
# share core 1: what this shows is that capacity follows the CPU granted across workers (the point of
# "W x 50%"), not scaling onto idle cores. Needs root (cgroup), loadgen and the 10k table (bench/run.sh
# makes both). Server and load run at nice $NICE (default -10, as bench/run.sh: ahead of other work on a
# shared machine). Every process is stopped by PID; the cgroup is removed on exit. Not part of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
WORKERS=("${@:-1 2}")
[ $# -gt 0 ] || WORKERS=(1 2)
NICE=${NICE:--10}
PIN=${PIN:-1} # cores for aegis-proxy (taskset list): PIN=0,1 lets the workers use both cores
BIN=${AEGIS_BIN:-build-mem-bench/bin}
[ -x "$BIN/aegis-proxy" ] || BIN=build-bench/bin
LOADGEN=${LOADGEN:-bench/out/bin/loadgen}
GEN=bench/out/gen
[ -x "$LOADGEN" ] || gcc -O2 -Wall -Wextra -o "$LOADGEN" bench/loadgen.c
[ -d "$GEN/aegis-10000" ] || { echo "no $GEN/aegis-10000: run bench/run.sh first" >&2; exit 1; }
CG=/sys/fs/cgroup/cpu/aegis-workers-$$
mkdir "$CG"
TMP=$(mktemp -d /tmp/aegis-workers.XXXXXX)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
port=$((27000 + RANDOM % 2000))
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A QPS=()
echo "aegis-proxy from $BIN on cores $PIN, 10000 names, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
	for w in "${WORKERS[@]}"; do
		port=$((port + 3))
		nice -n "$NICE" taskset -c "$PIN" "$BIN/aegis-proxy" --config "$GEN/aegis-10000" --dns-workers "$w" --resolv-conf /dev/null \
			--dns-listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" --user "$(id -u)" --no-watch \
			--log-level warn >"$TMP/proxy.log" 2>&1 &
		PID=$!
		for _ in $(seq 1 600); do
			dig @127.0.0.1 -p "$port" +short +tries=1 +time=1 svc-1.bench.example.com 2>/dev/null | grep -q . && break
			sleep 0.1
		done
		echo 100000 >"$CG/cpu.cfs_period_us"
		echo $((w * 50000)) >"$CG/cpu.cfs_quota_us"
		echo "$PID" >"$CG/cgroup.procs"
		out=$(nice -n "$NICE" taskset -c 0 "$LOADGEN" -s 127.0.0.1 -p "$port" -d "$GEN/queries-10000.txt" -n 1000 -l 8 -w "${WINDOW:-64}" -S 16)
		q=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' <<<"$out" | cut -d. -f1)
		lost=$(sed -n 's/.*Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
		shares=$(curl -s --max-time 5 "http://127.0.0.1:$((port + 1))/stats/prometheus" |
			sed -n 's/^aegis_dns_worker_queries_total{worker="\([0-9]*\)"} \([0-9]*\)$/w\1=\2/p' | tr '\n' ' ')
		echo "round $r: $w worker(s), quota $((w * 50))% of a core: $q qps, lost $lost ${shares:+(per worker: $shares)}"
		QPS[$w]="${QPS[$w]:-} $q"
		echo "$PID" >/sys/fs/cgroup/cpu/cgroup.procs
		kill "$PID"; wait "$PID" 2>/dev/null || true
		PID=
	done
done
base=$(median <<<"${QPS[${WORKERS[0]}]}")
for w in "${WORKERS[@]}"; do
	m=$(median <<<"${QPS[$w]}")
	echo "median: $w worker(s) at $((w * 50))%: $m qps ($(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2f", a / b}')x ${WORKERS[0]} worker(s))"
done
