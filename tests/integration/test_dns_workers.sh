#!/usr/bin/env bash
# --dns-workers 2: two threads, each with its own loop and SO_REUSEPORT sockets, answer one address.
# Queries from many source ports (the kernel spreads them over the workers by the 4-tuple) are all
# answered, both workers answer some (per-worker counters on /stats/prometheus, and the summed counter
# equals their sum), a table swap (the config file replaced) reaches every worker, forwarding works from
# every worker (each has its own upstream), TCP works, and SIGTERM stops every thread.
source "$(dirname "$0")/../lib/common.sh"

UP=$(free_port)
PORT=$(free_port)
APORT=$(free_port)
ADMIN=127.0.0.1:$APORT
cat >"$AEGIS_TMP/zone.json" <<'JSON'
{"www.example.test": {"A": ["192.0.2.80"]}}
JSON
start_bg peer python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP" --zone "$AEGIS_TMP/zone.json" \
	--counts "$AEGIS_TMP/counts" --lifetime 300
wait_dns "$UP" www.example.test || { fail "upstream peer did not start"; finish; exit 1; }

mkdir -p "$AEGIS_TMP/conf"
entry() { # address -> the ServiceEntry file, replaced atomically (as a ConfigMap update does)
	printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: probe, namespace: w}\nspec: {hosts: [probe.workers.test], addresses: [%s], ports: [{number: 80, name: http}]}\n' "$1" >"$AEGIS_TMP/entry.tmp"
	mv "$AEGIS_TMP/entry.tmp" "$AEGIS_TMP/conf/probe.yaml"
}
entry 10.1.0.1

start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_TMP/conf" --dns-workers 2 --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$PORT" --admin "$ADMIN" --upstream "127.0.0.1:$UP" --user "$(id -u)"
PROXY=$LAST_PID
wait_dns "$PORT" probe.workers.test || { cat "$AEGIS_TMP/proxy.log"; fail "proxy did not start"; finish; exit 1; }

# fanout NAME WANT [DEADLINE_S]: from 64 sockets (64 source ports), each asks NAME/A until it gets WANT
# (retrying on timeouts and other answers) or the deadline passes; prints how many sockets got WANT.
cat >"$AEGIS_TMP/fanout.py" <<'PY'
import random, select, socket, struct, sys, time
port, name, want = int(sys.argv[1]), sys.argv[2], sys.argv[3]
deadline = time.monotonic() + float(sys.argv[4])
def query(qid):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)
def first_a(msg):
    an = struct.unpack(">H", msg[6:8])[0]
    i = 12
    while msg[i]:
        i += msg[i] + 1
    i += 5
    for _ in range(an):
        if msg[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while msg[i]:
                i += msg[i] + 1
            i += 1
        typ, _cls, _ttl, rdlen = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if typ == 1 and rdlen == 4:
            return ".".join(str(b) for b in msg[i:i + 4])
        i += rdlen
    return None
socks = []
for _ in range(64):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    socks.append(s)
done = set()
while len(done) < len(socks) and time.monotonic() < deadline:
    ids = {}
    for k, s in enumerate(socks):
        if k not in done:
            ids[k] = random.randrange(65536)
            s.sendto(query(ids[k]), ("127.0.0.1", port))
    until = min(deadline, time.monotonic() + 1.0)
    while len(ids) and time.monotonic() < until:
        r, _, _ = select.select([socks[k] for k in ids], [], [], max(0.0, until - time.monotonic()))
        for s in r:
            k = socks.index(s)
            msg = s.recv(4096)
            if k in ids and struct.unpack(">H", msg[:2])[0] == ids[k]:
                if first_a(msg) == want:
                    done.add(k)
                del ids[k]
    if len(done) < len(socks):
        time.sleep(0.05)
print(len(done))
PY
fanout() { python3 "$AEGIS_TMP/fanout.py" "$PORT" "$1" "$2" "${3:-30}"; }
metric() { # name worker -> value (0 when absent)
	curl -s --max-time 5 "http://$ADMIN/stats/prometheus" | sed -n "s/^$1{worker=\"$2\"} \([0-9]*\)$/\1/p" | head -1 | grep . || echo 0
}

expect_eq "64 source ports all answered from the table" "$(fanout probe.workers.test 10.1.0.1)" "64"
q0=$(metric aegis_dns_worker_queries_total 0)
q1=$(metric aegis_dns_worker_queries_total 1)
expect_match "worker 0 answered some ($q0)" "$q0" '^[1-9][0-9]*$'
expect_match "worker 1 answered some ($q1)" "$q1" '^[1-9][0-9]*$'
expect_eq "no third worker" "$(metric aegis_dns_worker_queries_total 2)" "0"
udp=$(curl -s --max-time 5 "http://$ADMIN/stats/prometheus" | sed -n 's/^aegis_dns_queries_received_total{transport="udp"} \([0-9]*\)$/\1/p')
tcp=$(curl -s --max-time 5 "http://$ADMIN/stats/prometheus" | sed -n 's/^aegis_dns_queries_received_total{transport="tcp"} \([0-9]*\)$/\1/p')
# The summed counter is read a moment after the per-worker ones: nothing else queries meanwhile.
expect_eq "summed counter = worker 0 + worker 1" "$((udp + tcp))" "$((q0 + q1))"

# A table swap reaches every worker: every source port sees the new address.
s0=$(metric aegis_dns_worker_table_swaps_total 0)
s1=$(metric aegis_dns_worker_table_swaps_total 1)
entry 10.1.0.2
expect_eq "after the file changed, all 64 source ports get the new address" \
	"$(fanout probe.workers.test 10.1.0.2 30)" "64"
expect_match "worker 0 swapped again" "$(metric aegis_dns_worker_table_swaps_total 0)" "^$((s0 + 1))$|^$((s0 + 2))$"
expect_match "worker 1 swapped again" "$(metric aegis_dns_worker_table_swaps_total 1)" "^$((s1 + 1))$|^$((s1 + 2))$"

# Forwarding from every worker (each has its own forwarder and cache).
b0=$(metric aegis_dns_worker_queries_total 0)
b1=$(metric aegis_dns_worker_queries_total 1)
expect_eq "forwarded name answered on all 64 source ports" "$(fanout www.example.test 192.0.2.80)" "64"
[ "$(metric aegis_dns_worker_queries_total 0)" -gt "$b0" ] && [ "$(metric aegis_dns_worker_queries_total 1)" -gt "$b1" ] &&
	pass "both workers took forwarded queries" || fail "both workers took forwarded queries"

# TCP through the workers' listeners.
ok=0
for _ in $(seq 1 8); do
	[ "$(kdig @127.0.0.1 -p "$PORT" +tcp +short +retry=0 +timeout=3 probe.workers.test A)" == 10.1.0.2 ] && ok=$((ok + 1))
done
expect_eq "TCP answers" "$ok" "8"

# Shutdown joins the workers: the process exits on SIGTERM.
kill -TERM "$PROXY"
for _ in $(seq 1 300); do kill -0 "$PROXY" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PROXY" 2>/dev/null; then fail "proxy did not exit on SIGTERM"; else
	wait "$PROXY"; expect_eq "clean exit" "$?" "0"
fi
grep -q '"msg":"dns workers"' "$AEGIS_TMP/proxy.log" && pass "workers logged" || fail "no dns workers log line"

# The single-loop controls are refused with workers, at option parsing (usage error, exit 2).
out=$("$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --dns-workers 2 --dnssec-validate --trust-anchor /dev/null \
	--dns-listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" --resolv-conf /dev/null 2>&1)
expect_eq "workers + --dnssec-validate: usage error" "$?" "2"
expect_match "workers + --dnssec-validate: says why" "$out" 'dns-workers above 1 does not work'
finish
