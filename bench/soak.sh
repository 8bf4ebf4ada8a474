#!/usr/bin/env bash
# Soak (issue 10; docs/hardening.md "Soak"): aegis-proxy following aegis-xds, forwarding to a local Knot,
# under a steady load at a fraction of its measured capacity, while the control plane pushes and the
# upstream flaps. Not part of CI (it takes DURATION plus about a minute).
#
#   bench/soak.sh                       10 minutes at 80% of capacity
#   SOAK_SECONDS=60 bench/soak.sh       a short run
#
# 1. Capacity, under the soak's own conditions (the load generator, Knot, aegis-xds and this script share
#    the machine with the proxy): first the closed-loop figure (bench/loadgen, 256 in flight, for
#    SOAK_CAPACITY_SECONDS (10) with the soak's query mix, after a warm-up pass, upstream up), which
#    saturates the proxy and the load generator; then paced trials of SOAK_CAPACITY_SECONDS each, starting
#    there and 15 % lower each time, until one has no lost query and no answer other than NOERROR. That
#    rate is the capacity.
# 2. Soak: bench/loadgen -Q (paced, open loop; dnsperf cannot offer the rates the proxy sustains) at
#    SOAK_LOAD_PCT (80) % of that for SOAK_SECONDS (600), with the mix: half table hits
#    (SOAK_SERVICES ServiceEntries from aegis-xds), half forwarded names (SOAK_FORWARD_NAMES names under a
#    Knot wildcard with a 5 s TTL, so the cache keeps going upstream). Every SOAK_PUSH_SECONDS (30) a
#    ServiceEntry is replaced in aegis-xds's config root (an xDS push; its new name must answer within
#    10 s); every SOAK_FLAP_SECONDS (60) Knot is stopped for SOAK_DOWN_SECONDS (10), then started again.
#    Every 10 s: the proxy's RSS, open descriptors (/proc/PID/fd), and its error counters.
# 3. Summary: first/last/max RSS, fd min/max, counters over the soak, the load's lost queries and rcodes.
#
# Environment: AEGIS_BIN (default build/bin), SOAK_PROXY_ARGS (more aegis-proxy flags, split on spaces;
# default "--serve-stale 600": a pod's DNS should ride out upstream flaps with stale data), SOAK_PORT (first of 5 loopback ports, default 26500),
# SOAK_OUT (keeps the samples, logs and summary; default a temporary directory, removed unless set).
# Needs knotd, gcc, curl, dig (scripts/setup.sh bench). Runs as root or not.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${SOAK_SECONDS:-600}
CAP_S=${SOAK_CAPACITY_SECONDS:-10}
PCT=${SOAK_LOAD_PCT:-80}
PUSH_S=${SOAK_PUSH_SECONDS:-30}
FLAP_S=${SOAK_FLAP_SECONDS:-60}
DOWN_S=${SOAK_DOWN_SECONDS:-10}
SERVICES=${SOAK_SERVICES:-1000}
FWD_NAMES=${SOAK_FORWARD_NAMES:-10000}
BIN=${AEGIS_BIN:-build/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
P0=${SOAK_PORT:-26500}
XDS_PORT=$P0 DNS_PORT=$((P0 + 1)) ADMIN_PORT=$((P0 + 2)) UP_PORT=$((P0 + 3))
for tool in knotd gcc curl dig; do
	command -v $tool >/dev/null || { echo "soak: $tool missing (scripts/setup.sh bench)" >&2; exit 2; }
done
[ -x "$BIN/aegis-proxy" ] && [ -x "$BIN/aegis-xds" ] || { echo "soak: no $BIN/aegis-proxy (scripts/build.sh)" >&2; exit 2; }

OUT=${SOAK_OUT:-}
TMP=$(mktemp -d /tmp/aegis-soak.XXXXXX)
[ -n "$OUT" ] || OUT=$TMP/out
mkdir -p "$OUT"
PIDS=()
KNOT=
cleanup() {
	[ -n "$KNOT" ] && kill "$KNOT" 2>/dev/null && wait "$KNOT" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

# ---- upstream: Knot, authoritative for fwd.test with a wildcard (every forwarded name exists) ----
mkdir -p "$TMP/knot"
cat >"$TMP/knot/fwd.test.zone" <<'EOF'
$TTL 5
@ IN SOA ns.fwd.test. admin.fwd.test. 1 3600 600 86400 5
@ IN NS ns.fwd.test.
ns IN A 192.0.2.53
* IN A 192.0.2.1
EOF
cat >"$TMP/knot/knot.conf" <<EOF
server:
    rundir: "$TMP/knot"
    listen: 127.0.0.1@$UP_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$TMP/knot/db"
template:
  - id: default
    storage: "$TMP/knot"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: fwd.test
    file: "$TMP/knot/fwd.test.zone"
EOF
knot_start() {
	knotd -c "$TMP/knot/knot.conf" >>"$OUT/knot.log" 2>&1 &
	KNOT=$!
	for _ in $(seq 1 100); do
		dig @127.0.0.1 -p "$UP_PORT" +tries=1 +time=1 +short probe.fwd.test 2>/dev/null | grep -q 192.0.2.1 && return 0
		sleep 0.1
	done
	echo "soak: knotd did not answer" >&2
	return 1
}
knot_stop() {
	kill "$KNOT" 2>/dev/null && wait "$KNOT" 2>/dev/null
	KNOT=
}

# ---- control plane: aegis-xds over a config root with SERVICES ServiceEntries ----
CFG=$TMP/root/c1
mkdir -p "$CFG"
printf 'name: c1\nnetwork: n1\nlocality: r1/z1\n' >"$CFG/cluster.yaml"
for ((i = 0; i < SERVICES; i++)); do
	printf -- '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: svc-%d, namespace: soak}\nspec: {hosts: [svc-%d.soak.example.com], addresses: [10.%d.%d.%d], ports: [{number: 80, name: http}], resolution: STATIC, endpoints: [{address: 10.200.%d.%d}]}\n' \
		"$i" "$i" $((100 + i / 65536)) $((i / 256 % 256)) $((i % 256)) $((i / 256 % 256)) $((i % 256))
done >"$CFG/services.yaml"
push_file() { # push_file N: the rotating ServiceEntry push-N
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: push, namespace: soak}\nspec: {hosts: [push-%d.soak.example.com], addresses: [10.250.%d.%d], ports: [{number: 80, name: http}]}\n' \
		"$1" $(($1 / 256 % 256)) $(($1 % 256)) >"$CFG/push.yaml.tmp"
	mv "$CFG/push.yaml.tmp" "$CFG/push.yaml"
}
push_file 0

# ---- the query mix: table hits and forwarded names, interleaved ----
for ((i = 0; i < FWD_NAMES; i++)); do
	echo "svc-$((i % SERVICES)).soak.example.com A"
	echo "host-$i.fwd.test A"
done >"$TMP/queries"
gcc -O2 -o "$TMP/loadgen" bench/loadgen.c || exit 1

knot_start || exit 1
"$BIN/aegis-xds" --config-root "$TMP/root" --listen "127.0.0.1:$XDS_PORT" --state-file "$TMP/vips" \
	--log-level warn >"$OUT/xds.log" 2>&1 &
XDS=$!
PIDS+=("$XDS")
"$BIN/aegis-proxy" --xds-address "127.0.0.1:$XDS_PORT" --namespace soak --cluster c1 --resolv-conf /dev/null \
	--upstream "127.0.0.1:$UP_PORT" --dns-listen "127.0.0.1:$DNS_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
	--user "$(id -u)" --log-level warn ${SOAK_PROXY_ARGS---serve-stale 600} >"$OUT/proxy.log" 2>&1 &
PROXY=$!
PIDS+=("$PROXY")
answer() { dig @127.0.0.1 -p "$DNS_PORT" +short +tries=1 +time=1 "$1" 2>/dev/null | head -1; }
wait_answer() { # NAME WANT SECONDS -> 0 when NAME answers WANT within SECONDS
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(answer "$1")" == "$2" ] && return 0
		sleep 0.2
	done
	return 1
}
wait_answer push-0.soak.example.com 10.250.0.0 60 || { echo "soak: the proxy never got the config" >&2; exit 1; }
wait_answer host-0.fwd.test 192.0.2.1 30 || { echo "soak: forwarding does not work" >&2; exit 1; }

metrics() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/stats/prometheus"; }
# The error counters: one number each (summed over labels), in this order.
COUNTERS=(aegis_upstream_server_failures_total aegis_upstream_servfail_total aegis_upstream_local_errors_total
	aegis_upstream_overload_total aegis_upstream_rejected_answers_total aegis_dns_dropped_total
	aegis_xds_nacks_total aegis_config_reload_failures_total)
counters() {
	metrics | awk -v names="${COUNTERS[*]}" '
		BEGIN { n = split(names, k, " ") }
		/^#/ { next }
		{ name = $1; sub(/\{.*/, "", name); v[name] += $NF }
		END { for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), v[k[i]]; print "" }'
}
servfails() { metrics | awk '/^aegis_dns_requests_total/ && /SERVFAIL/ { s += $NF } END { print s + 0 }'; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# ---- 1. capacity ----
"$TMP/loadgen" -s 127.0.0.1 -p "$DNS_PORT" -d "$TMP/queries" -n 1 >/dev/null 2>&1 # warm the cache
"$TMP/loadgen" -s 127.0.0.1 -p "$DNS_PORT" -d "$TMP/queries" -l "$CAP_S" >"$OUT/capacity.txt" 2>&1
CLOSED=$(awk '/Queries per second/ {printf "%d", $4}' "$OUT/capacity.txt")
[ -n "$CLOSED" ] && [ "$CLOSED" -gt 0 ] || { echo "soak: no capacity figure"; cat "$OUT/capacity.txt"; exit 1; }
log "closed loop: $CLOSED qps (loadgen, ${CAP_S} s, $(grep -m1 'Queries lost' "$OUT/capacity.txt" | tr -s ' '))"
# clean FILE: 0 when a loadgen run lost nothing and every answer was NOERROR
clean() {
	awk '/Queries lost:/ {lost = $3} /Response codes:/ {for (i = 3; i <= NF; i += 3) if ($i != "NOERROR") bad += $(i + 1)}
		END {exit !(lost == 0 && bad == 0)}' "$1"
}
CAP=$CLOSED
for trial in $(seq 12); do
	"$TMP/loadgen" -s 127.0.0.1 -p "$DNS_PORT" -d "$TMP/queries" -l "$CAP_S" -n 1000000 -Q "$CAP" -t 5000 \
		-w 65536 >"$OUT/trial$trial.txt" 2>&1
	log "paced trial $trial at $CAP qps: $(grep -m1 'Queries lost' "$OUT/trial$trial.txt" | tr -s ' ')," \
		"$(grep -m1 'Response codes' "$OUT/trial$trial.txt" | tr -s ' ')"
	clean "$OUT/trial$trial.txt" && break
	[ "$trial" = 12 ] && { log "soak: no clean rate found"; exit 1; }
	CAP=$((CAP * 85 / 100))
done
RATE=$((CAP * PCT / 100))
log "capacity: $CAP qps (the highest clean paced rate)"
log "soak: ${DURATION} s at $RATE qps ($PCT %), push every ${PUSH_S} s, upstream down ${DOWN_S} s every ${FLAP_S} s"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# The kernel's count of UDP datagrams dropped because a socket's receive buffer was full (all sockets:
# on a quiet machine, this run's).
rcvbuf_errors() { awk '/^Udp:/ && ++n == 2 {print $6}' /proc/net/snmp; }
# The drops counted on the proxy's own UDP sockets (/proc/net/udp's last column, matched by inode).
proxy_udp_drops() {
	ls -l "/proc/$PROXY/fd" 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\]/\1/p' |
		awk 'NR == FNR {mine[$1] = 1; next} FNR > 1 && ($10 in mine) {d += $13} END {print d + 0}' - /proc/net/udp /proc/net/udp6
}

# ---- 2. soak ----
rb0=$(rcvbuf_errors)
pd0=$(proxy_udp_drops)
c0=($(counters))
sf0=$(servfails)
# A query unanswered after 5 s is lost (dnsperf's default); the window holds 5 s of in-flight queries.
"$TMP/loadgen" -s 127.0.0.1 -p "$DNS_PORT" -d "$TMP/queries" -Q "$RATE" -l "$DURATION" -n 1000000 -t 5000 -w 65536 \
	>"$OUT/load.txt" 2>&1 &
LOAD=$!
PIDS+=("$LOAD")
echo "t_s rss_kb fds xds_rss_kb ${COUNTERS[*]} dns_servfail" >"$OUT/samples.txt"
start=$(date +%s)
pushes=0 pushes_ok=0 push_ms=() flaps=0 down_until=0
for ((t = 1; t <= DURATION; t++)); do
	# Tick once a second, on the wall clock (the work below takes time under load).
	while [ "$(date +%s)" -lt $((start + t)) ]; do sleep 0.1; done
	if [ "$down_until" -gt 0 ] && [ "$t" -ge "$down_until" ]; then
		knot_start || log "knotd did not restart"
		down_until=0
	fi
	if ((t % FLAP_S == FLAP_S / 2)) && [ $((t + DOWN_S)) -lt "$DURATION" ]; then
		knot_stop
		flaps=$((flaps + 1))
		down_until=$((t + DOWN_S))
	fi
	if ((t % PUSH_S == 0)) && [ "$t" -lt "$DURATION" ]; then
		pushes=$((pushes + 1))
		t0=$(date +%s%3N)
		push_file "$pushes"
		if wait_answer "push-$pushes.soak.example.com" "10.250.$((pushes / 256 % 256)).$((pushes % 256))" 10; then
			pushes_ok=$((pushes_ok + 1))
			push_ms+=($(($(date +%s%3N) - t0)))
		else
			log "push $pushes not answered within 10 s"
		fi
	fi
	if ((t % 10 == 0)); then
		line="$t $(rss_kb "$PROXY") $(fds "$PROXY") $(rss_kb "$XDS") $(counters) $(servfails)"
		echo "$line" >>"$OUT/samples.txt"
		echo "  $line"
	fi
	kill -0 "$PROXY" 2>/dev/null || { log "aegis-proxy died"; break; }
done
[ -z "$KNOT" ] && knot_start
wait "$LOAD"
c1=($(counters))
sf1=$(servfails)

# ---- 3. summary ----
alive=yes
kill -0 "$PROXY" 2>/dev/null || alive=no
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); proxy alive: $alive"
awk 'NR > 1 { if (n == 0) first = $2; last = $2; if ($2 > max) max = $2; if (min_fd == "" || $3 < min_fd) min_fd = $3;
	if ($3 > max_fd) max_fd = $3; n++ }
	END { printf "RSS (kB): first %d, last %d, max %d; fds: min %d, max %d; %d samples\n", first, last, max, min_fd, max_fd, n }' \
	"$OUT/samples.txt" | tee -a "$OUT/summary.txt"
for i in "${!COUNTERS[@]}"; do
	log "  ${COUNTERS[$i]}: +$((c1[i] - c0[i]))"
done
log "  SERVFAIL answers: +$((sf1 - sf0)) (the push probes' included: a push name asked before the push" \
	"applies is forwarded, and Knot refuses it; the load's own are in its response codes below)"
log "  UDP receive-buffer drops (kernel): +$(($(rcvbuf_errors) - rb0)) on all sockets," \
	"+$(($(proxy_udp_drops) - pd0)) on the proxy's listener (its upstream sockets come and go)"
med=$(printf '%s\n' "${push_ms[@]:-}" | grep . | sort -n | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : "-")}')
log "xDS pushes: $pushes_ok of $pushes answered within 10 s (median ${med} ms); upstream flaps: $flaps x ${DOWN_S} s"
grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency|Latency StdDev' \
	"$OUT/load.txt" | sed 's/^ */  load: /' | tee -a "$OUT/summary.txt"
[ -n "${SOAK_OUT:-}" ] && echo "samples, logs and summary in $OUT"
[ "$alive" = yes ]
