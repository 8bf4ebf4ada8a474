#!/usr/bin/env bash
# Memory-limit row of the fault matrix (docs/hardening.md): a client floods the proxy with 20,000 unique
# names whose upstream answers are ~1 KiB each (20 MiB of answers, over twice the positive cache's 8 MiB
# byte budget, with --cache-size far above the count so that bytes, not entries, are the binding limit).
# The cache must stay within its bytes (aegis_cache_bytes <= 8 MiB + 2 MiB negative) and evict
# (aegis_cache_evictions_total), the process RSS must stay bounded, and answers keep coming. Bounded:
# 20,000 queries at most 256 in flight, ~20-40 s.
source "$(dirname "$0")/../lib/common.sh"
UP=$(free_port)
PORT=$(free_port)
ADMIN=$(free_port)
T=$(printf 'x%.0s' $(seq 1 250))
printf '{"*": {"A": ["192.0.2.80"], "TXT": ["%s", "%s", "%s", "%s"]}}\n' "$T" "$T" "$T" "$T" >"$AEGIS_TMP/zone.json"
start_bg peer python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP" --zone "$AEGIS_TMP/zone.json" --lifetime 300
wait_dns "$UP" www.example.test || { fail "upstream peer did not start"; finish; exit 1; }
start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east --namespace default \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" --upstream "127.0.0.1:$UP" \
	--cache-size 1000000
PROXY=$LAST_PID
wait_dns "$PORT" reviews.default.svc.cluster.local || { fail "proxy did not start"; finish; exit 1; }
# metric PREFIX: the sum of every sample whose name{labels} starts with PREFIX (positive + negative cache).
metric() {
	curl -s --max-time 3 "http://127.0.0.1:$ADMIN/stats/prometheus" |
		awk -v m="$1" 'index($1, m) == 1 {s += $2} END {printf "%d\n", s}'
}
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$PROXY"/status; }
rss0=$(rss_kb)

# The flood: TXT queries with EDNS 4096 for f<i>.flood.test, at most 256 outstanding, 20,000 in all.
cat >"$AEGIS_TMP/flood.py" <<'PY'
import socket, struct, sys, time, select
port, total = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.connect(("127.0.0.1", port))
def q(i):
    name = b"".join(bytes([len(l)]) + l for l in (b"f%d" % i, b"flood", b"test")) + b"\0"
    opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0)
    return struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 1) + name + struct.pack("!HH", 16, 1) + opt
sent = got = big = 0
deadline = time.time() + 90
while got < total and time.time() < deadline:
    while sent < total and sent - got < 256:
        s.send(q(sent)); sent += 1
    r, _, _ = select.select([s], [], [], 0.5)
    if not r:
        got = sent  # count the lost ones and move on (bounded: the deadline)
        continue
    while True:
        try:
            d = s.recv(65535, socket.MSG_DONTWAIT)
        except BlockingIOError:
            break
        got += 1
        big += len(d) > 900
print(sent, big)
PY
res=$(timeout 120 /usr/bin/python3 "$AEGIS_TMP/flood.py" "$PORT" 20000)
sent=${res% *}
big=${res#* }
echo "# sent $sent queries, $big full (~1 KiB) answers received"
expect_eq "flood: 20000 unique names sent" "$sent" "20000"
expect_match "flood: answers received (>= 90%)" "$big" '^(1[89][0-9]{3}|20000)$'
bytes=$(metric "aegis_cache_bytes")
entries=$(metric "aegis_cache_entries")
echo "# aegis_cache_bytes $bytes, aegis_cache_entries $entries, RSS ${rss0} kB -> $(rss_kb) kB"
expect_match "cache bytes within 8 MiB + 2 MiB" "$([ "${bytes%.*}" -le $((10 * 1048576)) ] && echo yes)" yes
expect_match "cache bytes used (> 4 MiB)" "$([ "${bytes%.*}" -gt $((4 * 1048576)) ] && echo yes)" yes
expect_match "evictions reported (aegis_cache_evictions_total)" "$(metric aegis_cache_evictions_total)" '^[1-9]'
# The cache's own bound is the check above; RSS is the process-level view of it. Under AddressSanitizer
# freed memory sits in a quarantine (256 MiB by default) and every allocation carries redzones, so an ASan
# build gets ASan's allowance on top.
rss_cap_kb=40960
# (not `ldd | grep -q`: under pipefail, grep's early exit gives ldd a SIGPIPE and the test a false "no")
case "$(ldd "$AEGIS_BIN/aegis-proxy" 2>/dev/null)" in *libasan*) rss_cap_kb=$((rss_cap_kb + 262144)) ;; esac
expect_match "RSS growth under $((rss_cap_kb / 1024)) MiB" "$([ $(($(rss_kb) - rss0)) -lt "$rss_cap_kb" ] && echo yes)" yes
expect_eq "mesh names still answered" "$(dig @127.0.0.1 -p "$PORT" +short reviews.default.svc.cluster.local)" "10.96.10.11"
expect_match "forwarding still works" "$(dig @127.0.0.1 -p "$PORT" +short +bufsize=4096 after.flood.test TXT | head -c 5)" '^"x'
finish
