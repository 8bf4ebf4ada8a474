#!/usr/bin/env bash
# The real aegis-proxy on the example mesh, asked with dig (UDP) and kdig (TCP): every kind of table name,
# the answer rules (NODATA, CNAME for search-suffixed names, wildcard, SRV, PTR, TC, BADVERS, FORMERR),
# SIGHUP and file-change reloads, a rejected reload keeping the last good table, and a bad file stopping
# start-up with its file and line.
source "$(dirname "$0")/../lib/common.sh"

PORT=$(free_port)
MESH="$AEGIS_TMP/mesh"
cp -r "$AEGIS_SRC_DIR/examples/mesh" "$MESH"
# No nameserver: this test covers the answers without a forwarder (test_forwarding.sh covers forwarding).
cat >"$AEGIS_TMP/resolv.conf" <<RC
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
RC

start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$MESH" --namespace default --cluster east \
	--resolv-conf "$AEGIS_TMP/resolv.conf" --dns-listen "127.0.0.1:$PORT" --dns-listen "[::1]:$PORT" \
	--admin "127.0.0.1:$(free_port)"
PROXY=$LAST_PID
wait_dns "$PORT" reviews.default.svc.cluster.local || { cat "$AEGIS_TMP/proxy.log"; fail "proxy did not start"; finish; exit 1; }

q() { dig @127.0.0.1 -p "$PORT" +tries=1 +time=2 "$@"; }
short() { q +short "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
flags() { q "$@" | sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p'; }
answer() { q +noall +answer "$@" | tr -s ' \t' ' '; }
last() { q +short "$@" | tail -1; }
tcp_short() { kdig @127.0.0.1 -p "$PORT" +tcp +short +retry=0 +timeout=2 "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }

# Kubernetes services (local cluster first), over UDP, TCP and IPv6 transport.
expect_eq "A for a ClusterIP service" "$(short reviews.default.svc.cluster.local A)" "10.96.10.11"
expect_eq "A over TCP (kdig)" "$(tcp_short reviews.default.svc.cluster.local A)" "10.96.10.11"
expect_eq "A over ::1" "$(dig @::1 -p "$PORT" +short reviews.default.svc.cluster.local A)" "10.96.10.11"
expect_eq "answers are authoritative" "$(flags reviews.default.svc.cluster.local A)" "qr aa rd ra"
expect_eq "TTL 30" "$(answer reviews.default.svc.cluster.local A)" "reviews.default.svc.cluster.local. 30 IN A 10.96.10.11"
expect_eq "dual-stack service AAAA" "$(short ratings.default.svc.cluster.local AAAA)" "fd00:10:96::12"
expect_eq "NODATA for the other family" "$(status reviews.default.svc.cluster.local AAAA)" "NOERROR"
expect_eq "NODATA has no answer" "$(short reviews.default.svc.cluster.local AAAA)" ""
expect_eq "service only in the other cluster" "$(short details.default.svc.cluster.local A)" "10.97.10.14"
expect_eq "clusterset.local name" "$(short reviews.default.svc.clusterset.local A)" "10.96.10.11"
expect_eq "case is kept (0x20)" "$(q +noall +answer ReViews.Default.SVC.cluster.local A | awk '{print $1}')" "ReViews.Default.SVC.cluster.local."

# Headless service and its pods.
expect_eq "headless: ready endpoints" "$(short db.shop.svc.cluster.local A)" "10.244.2.31 10.244.2.32"
expect_eq "headless pod name" "$(short db-0.db.shop.svc.cluster.local A)" "10.244.2.31"

# ServiceEntries.
expect_eq "ServiceEntry with addresses" "$(short legacy.company.internal A)" "192.0.2.10"
expect_eq "ServiceEntry v6 address" "$(short legacy.company.internal AAAA)" "2001:db8::10"
expect_match "auto-allocated VIP" "$(short api.example.com A)" '^240\.240\.[0-9]+\.[0-9]+$'
expect_match "auto-allocated v6 VIP" "$(short api.example.com AAAA)" '^2001:2::'
WILD=$(q +noall +answer En.Wikipedia.org A)
expect_match "wildcard answers the asked name" "$WILD" '^En\.Wikipedia\.org\.'
expect_eq "no '*' in a wildcard answer" "$(grep -c '\*' <<<"$WILD")" "0"
expect_eq "wildcard does not cover its parent" "$(status wikipedia.org A)" "REFUSED"

# Search suffixes and short forms: CNAME to the table name, then its records.
S=$(answer api.example.com.default.svc.cluster.local A)
expect_match "search-suffixed external name: CNAME" "$S" '^api\.example\.com\.default\.svc\.cluster\.local\. 30 IN CNAME api\.example\.com\.'
expect_match "search-suffixed external name: A" "$S" $'\napi\\.example\\.com\\. 30 IN A 240\\.240\\.'
expect_eq "short name via search list" "$(answer reviews.default.default.svc.cluster.local A)" \
	"reviews.default.default.svc.cluster.local. 30 IN CNAME reviews.default.svc.cluster.local.
reviews.default.svc.cluster.local. 30 IN A 10.96.10.11"
expect_eq "bare short name (namespace)" "$(last reviews A)" "10.96.10.11"
expect_eq "svc.ns short form" "$(last cart.shop A)" "10.96.20.21"
expect_eq "svc.ns.svc short form" "$(last cart.shop.svc A)" "10.96.20.21"
expect_eq "dig +search resolves a short name" "$(dig @127.0.0.1 -p "$PORT" +search +short reviews A 2>/dev/null | tail -1)" "10.96.10.11"

# SRV and PTR.
expect_eq "SRV for a ServiceEntry port" "$(short _https._tcp.api.example.com SRV | awk '{print $3, $4}')" "443 api.example.com."
expect_eq "SRV for a Service port" "$(short _http._tcp.reviews.default.svc.cluster.local SRV | awk '{print $3, $4}')" \
	"9080 reviews.default.svc.cluster.local."
expect_eq "PTR for a ClusterIP" "$(q +short -x 10.96.10.11)" "reviews.default.svc.cluster.local."
expect_eq "PTR for a v6 address" "$(q +short -x 2001:db8::10)" "legacy.company.internal."

# Not table names, with no upstream configured: REFUSED (never NXDOMAIN, which clients would cache).
expect_eq "non-mesh name" "$(status www.example.org A)" "REFUSED"
expect_eq "other type for a table name" "$(status reviews.default.svc.cluster.local MX)" "REFUSED"

# EDNS and sizes.
expect_match "OPT echoed" "$(q +edns=0 reviews.default.svc.cluster.local A)" 'EDNS: version: 0, flags:; udp: 1232'
expect_eq "BADVERS for EDNS version 1" "$(status +edns=1 +noednsnegotiation reviews.default.svc.cluster.local A)" "BADVERS"
cat >"$MESH/east/big.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: big, namespace: default}
spec:
  hosts: [big.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  addresses:
$(for i in $(seq 1 60); do echo "  - 203.0.113.$i"; done)
YAML
kill -HUP "$PROXY"
for _ in $(seq 1 50); do [ -n "$(q +short +tcp big.example.com A)" ] && break; sleep 0.1; done
expect_eq "reload on SIGHUP" "$(q +short +tcp big.example.com A | wc -l)" "60"
expect_match "TC on a large UDP answer" "$(flags +noedns +ignore big.example.com A)" '\btc\b'
expect_eq "large answer complete over TCP" "$(tcp_short big.example.com A | wc -w)" "60"
expect_eq "dig retries over TCP after TC" "$(q +noedns +short big.example.com A | wc -l)" "60"

# Garbage and malformed queries: FORMERR or silence, and the proxy lives on.
python3 - "$PORT" <<'PY'
import socket, sys, os
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
s.sendto(bytes.fromhex('beef01000000000000000000'), ('127.0.0.1', port))   # no question
d, _ = s.recvfrom(512)
assert d[:2] == b'\xbe\xef' and d[3] & 0xf == 1, d.hex()
for i in range(300):                                                       # random bytes
    s.sendto(os.urandom(i % 64), ('127.0.0.1', port))
print("formerr-ok")
PY
[ $? -eq 0 ] && pass "FORMERR for a query without a question" || fail "FORMERR for a query without a question"
expect_eq "alive after garbage" "$(short reviews.default.svc.cluster.local A)" "10.96.10.11"

# Pipelined TCP queries on one connection.
python3 - "$PORT" <<'PY' && pass "pipelined TCP queries" || fail "pipelined TCP queries"
import socket, struct, sys
port = int(sys.argv[1])
def q(i, name):
    labels = b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\0'
    m = struct.pack('>HHHHHH', i, 0x0100, 1, 0, 0, 0) + labels + struct.pack('>HH', 1, 1)
    return struct.pack('>H', len(m)) + m
c = socket.create_connection(('127.0.0.1', port), timeout=2)
c.sendall(b''.join(q(i, 'reviews.default.svc.cluster.local') for i in range(20)))
ids = set()
buf = b''
while len(ids) < 20:
    buf += c.recv(65535)
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack('>H', buf[:2])[0]:
        n = struct.unpack('>H', buf[:2])[0]; ids.add(struct.unpack('>H', buf[2:4])[0]); buf = buf[2 + n:]
assert ids == set(range(20)), ids
PY

# File-change reload (inotify) and a rejected reload that keeps the last good table.
sed -i 's/10.96.20.21/10.96.20.99/' "$MESH/east/shop.yaml"
for _ in $(seq 1 50); do [ "$(short cart.shop.svc.cluster.local A)" == "10.96.20.99" ] && break; sleep 0.1; done
expect_eq "reload on file change" "$(short cart.shop.svc.cluster.local A)" "10.96.20.99"
printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: bad}\nspec:\n  hosts: [ok.example.com]\n  ports: [{number: 99999, name: x}]\n' >"$MESH/east/bad.yaml"
for _ in $(seq 1 50); do grep -q 'reload rejected' "$AEGIS_TMP/proxy.log" && break; sleep 0.1; done
expect_match "bad reload is logged with file and line" "$(grep 'reload rejected' "$AEGIS_TMP/proxy.log" | tail -1)" 'bad\.yaml:[0-9]+'
expect_eq "last good table still served" "$(short cart.shop.svc.cluster.local A)" "10.96.20.99"
expect_eq "proxy still running" "$(kill -0 "$PROXY" 2>/dev/null && echo yes)" "yes"

# A bad file stops start-up with file:line and a non-zero exit.
OUT=$("$AEGIS_BIN/aegis-proxy" --config "$MESH/east/bad.yaml" --dns-listen "127.0.0.1:$(free_port)" 2>&1)
RC=$?
expect_eq "bad file: non-zero exit" "$RC" "1"
expect_match "bad file: file and line in the message" "$OUT" 'bad\.yaml:6'
OUT=$("$AEGIS_BIN/aegis-proxy" --bogus 2>&1); RC=$?
expect_eq "unknown flag: usage exit code" "$RC" "2"

finish
