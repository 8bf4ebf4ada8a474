#!/usr/bin/env bash
# Forwarding through the real aegis-proxy to scripted upstreams on loopback (tests/lib/dnspeer.py):
# names that are not mesh names go upstream over the client's transport, repeats come from the cache with
# TTLs counting down, stub zones go to their own server, failures are SERVFAIL (never NXDOMAIN) within the
# deadline, serve-stale answers while the upstream is down, and mesh names never leave the proxy.
source "$(dirname "$0")/../lib/common.sh"

UP1=$(free_port)
UP2=$(free_port)
PORT=$(free_port)
cat >"$AEGIS_TMP/zone1.json" <<'JSON'
{"www.example.test": {"A": ["192.0.2.80"], "AAAA": ["2001:db8::80"], "MX": [[10, "mail.example.test"]],
  "TXT": ["hello from upstream"]},
 "big.example.test": {"TXT": ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
  "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
  "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"]},
 "slow.example.test": {"A": ["192.0.2.81"], "mode": "drop"}}
JSON
cat >"$AEGIS_TMP/zone2.json" <<'JSON'
{"db.company.local": {"A": ["10.0.0.42"]}}
JSON
echo normal >"$AEGIS_TMP/mode1"
start_bg peer1 python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP1" --zone "$AEGIS_TMP/zone1.json" \
	--mode-file "$AEGIS_TMP/mode1" --counts "$AEGIS_TMP/counts1" --ttl 300 --lifetime 300
PEER1=$LAST_PID
start_bg peer2 python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP2" --zone "$AEGIS_TMP/zone2.json" \
	--counts "$AEGIS_TMP/counts2" --lifetime 300
wait_dns "$UP1" www.example.test || { fail "upstream peer did not start"; finish; exit 1; }
wait_dns "$UP2" db.company.local || { fail "stub peer did not start"; finish; exit 1; }

start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east --namespace default \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$PORT" --admin "127.0.0.1:$(free_port)" \
	--upstream "127.0.0.1:$UP1" --stub-zone "company.local=127.0.0.1:$UP2" \
	--upstream-timeout 300 --upstream-deadline 1500 --serve-stale 600 --cache-max-ttl 300
PROXY=$LAST_PID
wait_dns "$PORT" reviews.default.svc.cluster.local || { cat "$AEGIS_TMP/proxy.log"; fail "proxy did not start"; finish; exit 1; }

q() { dig @127.0.0.1 -p "$PORT" +tries=1 +time=3 "$@"; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
count() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["names"].get(sys.argv[2], 0))' "$1" "$2" 2>/dev/null || echo 0; }
total() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$1" 2>/dev/null || echo 0; }

expect_eq "forward A over UDP" "$(q +short www.example.test A)" "192.0.2.80"
expect_eq "forward AAAA" "$(q +short www.example.test AAAA)" "2001:db8::80"
expect_eq "forward MX" "$(q +short www.example.test MX)" "10 mail.example.test."
expect_eq "forward TXT over TCP" "$(kdig @127.0.0.1 -p "$PORT" +tcp +short +retry=0 +timeout=3 www.example.test TXT)" '"hello from upstream"'
expect_eq "upstream NXDOMAIN passed through" "$(status nosuch.example.test A)" "NXDOMAIN"

# The cache: the repeat does not reach the upstream, and its TTL has counted down.
before=$(count "$AEGIS_TMP/counts1" www.example.test/A)
sleep 2
ttl=$(q +noall +answer www.example.test A | awk '{print $2}')
after=$(count "$AEGIS_TMP/counts1" www.example.test/A)
expect_eq "cache hit does not go upstream" "$after" "$before"
if [ -n "$ttl" ] && [ "$ttl" -lt 300 ] && [ "$ttl" -ge 290 ]; then pass "cached TTL counts down ($ttl)"; else fail "cached TTL counts down: got [$ttl]"; fi

# Ten identical concurrent misses make one upstream query.
digs=()
for i in $(seq 1 10); do q +short dedup.example.test A >/dev/null & digs+=($!); done
wait "${digs[@]}"
expect_eq "in-flight dedup" "$(count "$AEGIS_TMP/counts1" dedup.example.test/A)" "1"

# Stub zone goes to its own server.
expect_eq "stub zone routed" "$(q +short db.company.local A)" "10.0.0.42"
expect_eq "stub zone not sent to the default upstream" "$(count "$AEGIS_TMP/counts1" db.company.local/A)" "0"

# A truncated UDP answer for a TCP client is retried over TCP.
expect_eq "large answer over TCP" "$(kdig @127.0.0.1 -p "$PORT" +tcp +short +retry=0 +timeout=3 big.example.test TXT | wc -l)" "6"

# Mesh names never go upstream.
t0=$(total "$AEGIS_TMP/counts1")
q +short reviews.default.svc.cluster.local A >/dev/null
q +short api.example.com.default.svc.cluster.local A >/dev/null
expect_eq "mesh names are not forwarded" "$(total "$AEGIS_TMP/counts1")" "$t0"

# A server that never answers: SERVFAIL within the deadline, not NXDOMAIN.
start=$(date +%s%N)
st=$(status slow.example.test A)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "timeout gives SERVFAIL" "$st" "SERVFAIL"
if [ "$ms" -le 2500 ]; then pass "SERVFAIL within the deadline (${ms} ms)"; else fail "SERVFAIL took ${ms} ms"; fi
echo refused >"$AEGIS_TMP/mode1"
REFOUT=$(dig @127.0.0.1 -p "$PORT" +tries=1 +time=3 refused.example.test A)
expect_eq "REFUSED upstream gives SERVFAIL" "$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$REFOUT")" "SERVFAIL"
expect_match "... with Extended DNS Error 22" "$REFOUT" '; EDE: 22 \(No Reachable Authority\)'

# Upstream down: cached names still answer; serve-stale keeps them past expiry; new names SERVFAIL.
kill "$PEER1"; wait "$PEER1" 2>/dev/null
expect_eq "upstream gone: new name SERVFAIL" "$(status other.example.test A)" "SERVFAIL"
expect_eq "upstream gone: cached name still answers" "$(q +short www.example.test A)" "192.0.2.80"
expect_eq "proxy alive" "$(kill -0 "$PROXY" 2>/dev/null && echo yes)" "yes"

# Serve-stale (RFC 8767): with TTLs capped at 1 s, an expired entry is still answered (TTL 30) while every
# upstream is down; without --serve-stale the same situation is SERVFAIL.
UP3=$(free_port)
start_bg peer3 python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP3" --zone "$AEGIS_TMP/zone1.json" --lifetime 300
PEER3=$LAST_PID
wait_dns "$UP3" www.example.test || fail "peer3 did not start"
for flags in "--serve-stale 600" ""; do
	P=$(free_port)
	start_bg "proxy-stale$P" "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --resolv-conf /dev/null \
		--dns-listen "127.0.0.1:$P" --admin "127.0.0.1:$(free_port)" --upstream "127.0.0.1:$UP3" \
		--upstream-timeout 200 --upstream-deadline 600 --cache-max-ttl 1 $flags
	wait_dns "$P" reviews.default.svc.cluster.local || fail "stale proxy did not start"
	dig @127.0.0.1 -p "$P" +short www.example.test A >/dev/null
	echo "$flags" >"$AEGIS_TMP/flags$P"
done
kill "$PEER3"; wait "$PEER3" 2>/dev/null
sleep 2
for f in "$AEGIS_TMP"/flags*; do
	P=${f##*flags}
	A=$(dig @127.0.0.1 -p "$P" +tries=1 +time=3 +noall +answer www.example.test A | awk '{print $2, $5}')
	if [ -n "$(tr -d "\n" <"$f")" ]; then
		expect_eq "serve-stale answers an expired entry with TTL 30" "$A" "30 192.0.2.80"
	else
		expect_eq "without serve-stale an expired entry is SERVFAIL" \
			"$(dig @127.0.0.1 -p "$P" +tries=1 +time=3 www.example.test A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')" "SERVFAIL"
	fi
done

# The client-response timer (RFC 8767 section 5): the upstream is up but silent. Without the timer the
# expired entry would wait for the 2.5 s try timeout and dig (+time=2) would give up; with it the stale
# answer comes after 300 ms, and the upstream query goes on and refreshes the cache once the peer answers.
UP4=$(free_port)
echo normal >"$AEGIS_TMP/mode4"
start_bg peer4 python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP4" --zone "$AEGIS_TMP/zone1.json" \
	--mode-file "$AEGIS_TMP/mode4" --lifetime 300
wait_dns "$UP4" www.example.test || fail "peer4 did not start"
P=$(free_port)
PA=$(free_port)
start_bg proxy-timer "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$P" --admin "127.0.0.1:$PA" --upstream "127.0.0.1:$UP4" \
	--upstream-timeout 2500 --upstream-deadline 6000 --cache-max-ttl 1 --serve-stale 600 --stale-answer-timeout 300
wait_dns "$P" reviews.default.svc.cluster.local || fail "timer proxy did not start"
dig @127.0.0.1 -p "$P" +short www.example.test A >/dev/null
sleep 1.5
echo drop >"$AEGIS_TMP/mode4"
A=$(dig @127.0.0.1 -p "$P" +tries=1 +time=2 +noall +answer www.example.test A | awk '{print $2, $5}')
expect_eq "stale-answer-timeout: a silent upstream's expired entry answered stale (TTL 30)" "$A" "30 192.0.2.80"
expect_match "stale-answer-timeout: marked with Extended DNS Error 3" \
	"$(dig @127.0.0.1 -p "$P" +tries=1 +time=2 www.example.test A)" '; EDE: 3 \(Stale Answer\)'
expect_match "stale-answer-timeout: counted" \
	"$(curl -s --max-time 3 "http://127.0.0.1:$PA/stats/prometheus" | awk '$1 == "aegis_upstream_stale_timeouts_total" {print $2}')" '^[1-9]'
echo normal >"$AEGIS_TMP/mode4"
ok=0
for _ in $(seq 40); do # the retry after the 2.5 s try timeout refreshes the entry: TTL 1 or 0, not 30
	ttl=$(dig @127.0.0.1 -p "$P" +tries=1 +time=2 +noall +answer www.example.test A | awk '{print $2}')
	[ "$ttl" = 0 ] || [ "$ttl" = 1 ] && { ok=1; break; }
	sleep 0.25
done
expect_eq "stale-answer-timeout: the upstream query went on and refreshed the cache" "$ok" "1"

# ---- a forwarding loop: the proxy is its own upstream ----
# Its query comes back to its own listener from the port it was sent from, which is how a loop is told
# apart from a client that happens to use the same ID (docs/forwarding.md): SERVFAIL at once, counted.
LP=$(free_port)
LA=$(free_port)
start_bg proxy-loop "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$LP" --admin "127.0.0.1:$LA" --upstream "127.0.0.1:$LP" \
	--upstream-timeout 2000 --upstream-deadline 4000
wait_dns "$LP" reviews.default.svc.cluster.local || fail "loop proxy did not start"
expect_eq "loop: SERVFAIL" "$(dig @127.0.0.1 -p "$LP" +tries=1 +time=5 loop.example.test A |
	sed -n 's/.*status: \([A-Z]*\).*/\1/p')" "SERVFAIL"
expect_match "loop: counted (aegis_upstream_loops_total)" \
	"$(curl -s "http://127.0.0.1:$LA/stats/prometheus" | awk '$1 == "aegis_upstream_loops_total" {print $2}')" '^[1-9]'
expect_match "loop: logged" "$(cat "$AEGIS_TMP/proxy-loop.log")" 'forwarding loop'

finish
