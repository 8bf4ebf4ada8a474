#!/usr/bin/env bash
# HBONE against an HTTP/2 implementation that is not ours (docs/mesh.md, "Interoperability"): Python's h2
# (hyper-h2, Debian's python3-h2), over mutual TLS with the standard library's ssl module, in both roles.
# No ztunnel can run on this offline machine; h2 is an independent implementation of HTTP/2 (framing, HPACK,
# flow control, stream states), so it catches what our nghttp2 pair would agree on wrongly with itself. Its
# header validation is off: h2 4.1 wants :scheme and :path on every request, CONNECT included, which RFC
# 9113 8.5 forbids; the scripts check the pseudo-headers themselves.
#
#   pod A   10.253.0.2   aegis-proxy --mesh (HBONE) and the capture rules: the client side
#   pod B   10.253.1.2   aegis-proxy --mesh and server.py (greets "HELLO v1b", echoes, "BYE <n>")
#   pod C   10.253.2.2   h2peer.py: an h2 server on 15008 with pod C's certificate (sa/reviews), no Aegis
#
# 1. h2 as the client of our 15008 (pod B), from the node: CONNECT to the pod's address (200, ALPN h2, the
#    application's greeting, DATA sent before the 200 delivered in order, half-close both ways, END_STREAM
#    after "BYE"); 20 CONNECT streams at once on one connection; 400 for another pod's address; 503 where
#    nothing listens.
# 2. h2 as the peer of our outbound pool: pod A's application connects to the VIP of a service whose
#    endpoint is pod C; the h2 server sees CONNECT with :authority 10.253.2.2:9080 and no other
#    pseudo-header, pod A's SPIFFE ID in its client certificate, ALPN h2, the application's first bytes
#    before it answers (early bytes), END_STREAM on the application's half-close; the application gets the
#    echo and the end. 20 sequential connections share one TLS connection (one handshake at pod C).
#
# Needs root and python3-h2 (scripts/setup.sh test); exit 77 = skipped.
set -uo pipefail

SRC=${AEGIS_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/pod.sh"
. "$SRC/tests/lib/mesh_pods.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: test_hbone_interop needs root (network namespaces and iptables)"
	exit 77
fi
mesh_require ip openssl setpriv timeout curl "$POD_PYTHON"
if ! "$POD_PYTHON" -c 'import h2.connection' 2>/dev/null; then
	echo "FAIL: python3-h2 is missing: run scripts/setup.sh test" >&2
	exit 1
fi

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

mesh_pods_create i b c
mesh_certs b c
cat >"$RUN/mesh.yaml" <<'EOF'
# Pod C's endpoint is served by h2peer.py on its 15008.
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: interop
  namespace: default
spec:
  hosts:
  - interop.default.svc.cluster.local
  addresses:
  - 10.96.10.72
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - number: 9080
    name: tcp
    protocol: TCP
  endpoints:
  - address: 10.253.2.2
    serviceAccount: reviews
EOF
chmod 0644 "$RUN/mesh.yaml"
mesh_write_server_py
mesh_write_first_py

# ---- the h2 programs ----
cat >"$RUN/h2common.py" <<'EOF'
import socket, ssl

def tls_context(certs, server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(certs + "/cert-chain.pem", certs + "/key.pem")
    ctx.load_verify_locations(certs + "/root-cert.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # SPIFFE identities are URI SANs: checked by the caller
    ctx.set_alpn_protocols(["h2"])
    return ctx

def spiffe_of(sock):
    for kind, value in sock.getpeercert().get("subjectAltName", ()):
        if kind == "URI":
            return value
    return ""
EOF

cat >"$RUN/h2client.py" <<'EOF'
# h2client.py HOST PORT CERTDIR MODE: h2 as an HBONE client of HOST:PORT. Prints one line.
#   one AUTHORITY: CONNECT, then at once (before any answer) DATA "early-" ; after the 200 "late", then
#                  END_STREAM; prints "alpn=.. status=.. got=<everything received, escaped> ended=<bool>"
#   many AUTHORITY N: N CONNECT streams at once, each sends its number and ends; prints
#                  "alpn=.. ok=<streams whose echo came back whole and ended>"
#   status AUTHORITY: CONNECT only; prints "alpn=.. status=.."
import socket, sys, time
import h2.config, h2.connection, h2.events
sys.path.insert(0, sys.path[0])
from h2common import tls_context
host, port, certs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
authority = sys.argv[5]
s = tls_context(certs, False).wrap_socket(socket.create_connection((host, port), 5))
s.settimeout(10)
# h2 4.1 wants :scheme and :path on every request, which RFC 9113 8.5 forbids on a CONNECT: its own header
# validation is off (this script checks what it needs); framing, HPACK, flow control and stream states stay
# h2's.
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                                            validate_outbound_headers=False))
conn.initiate_connection()

def connect(early=None):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
    if early:
        conn.send_data(sid, early)
    return sid

streams = {}
if mode == "one":
    streams[connect(b"early-")] = {"status": None, "got": b"", "ended": False}
elif mode == "many":
    for i in range(int(sys.argv[6])):
        streams[connect()] = {"status": None, "got": b"", "ended": False, "n": b"stream-%d" % i}
else:
    streams[connect()] = {"status": None, "got": b"", "ended": False}
s.sendall(conn.data_to_send())

deadline = time.time() + 15
while time.time() < deadline and not all(st["ended"] or (st["status"] not in (None, "200"))
                                         for st in streams.values()):
    data = s.recv(65536)
    if not data:
        break
    for ev in conn.receive_data(data):
        st = streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            st["status"] = dict(ev.headers).get(":status")
            if st["status"] == "200" and mode == "one":
                conn.send_data(ev.stream_id, b"late", end_stream=True)
            elif st["status"] == "200" and mode == "many":
                conn.send_data(ev.stream_id, st["n"], end_stream=True)
        elif isinstance(ev, h2.events.DataReceived):
            st["got"] += ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            st["ended"] = st["ended"] or "reset"
    s.sendall(conn.data_to_send())
alpn = s.selected_alpn_protocol()
if mode == "one":
    st = next(iter(streams.values()))
    print("alpn=%s status=%s got=%r ended=%s" % (alpn, st["status"], st["got"].decode(), st["ended"]))
elif mode == "many":
    good = sum(1 for st in streams.values() if st["status"] == "200" and st["ended"] is True
               and st["got"] == b"HELLO v1b\n" + st["n"] + b"BYE %d\n" % len(st["n"]))
    print("alpn=%s ok=%d" % (alpn, good))
else:
    print("alpn=%s status=%s" % (alpn, next(iter(streams.values()))["status"]))
EOF

cat >"$RUN/h2peer.py" <<'EOF'
# h2peer.py PORT CERTDIR READYFILE LOG: h2 as the peer sidecar of an HBONE client. Every CONNECT: waits up
# to 1 s for the client's first DATA before answering 200 (so early bytes show), echoes everything, and on
# END_STREAM sends "BYE <n>" and ends its side. Appends one line per stream to LOG:
#   "conn=<k> spiffe=<client id> alpn=<p> headers=<pseudo-headers in order> authority=<a>
#    early=<bytes received before the 200> total=<bytes> ended=<bool>"
import socket, sys, threading, time
import h2.config, h2.connection, h2.events
sys.path.insert(0, sys.path[0])
from h2common import tls_context, spiffe_of
port, certs, ready, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = tls_context(certs, True)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(64)
open(ready, "w").close()
lock = threading.Lock()
nconn = [0]

def serve(raw):
    with lock:
        nconn[0] += 1
        k = nconn[0]
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except OSError:
        raw.close()
        return
    s.settimeout(0.05)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8",
                                                                validate_inbound_headers=False))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    streams = {}
    spiffe, alpn = spiffe_of(s), s.selected_alpn_protocol()
    idle_since = time.time()
    while time.time() - idle_since < 20:
        try:
            data = s.recv(65536)
            if not data:
                break
            idle_since = time.time()
            events = conn.receive_data(data)
        except socket.timeout:
            events = []
        except OSError:
            break
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                streams[ev.stream_id] = {"headers": [n for n, _ in ev.headers if n.startswith(":")],
                                         "authority": dict(ev.headers).get(":authority"),
                                         "method": dict(ev.headers).get(":method"),
                                         "t0": time.time(), "answered": False, "early": 0, "total": 0}
            elif isinstance(ev, h2.events.DataReceived):
                st = streams[ev.stream_id]
                st["total"] += len(ev.data)
                if not st["answered"]:
                    st["early"] += len(ev.data)
                    st.setdefault("held", b"")
                    st["held"] += ev.data
                else:
                    conn.send_data(ev.stream_id, ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                streams[ev.stream_id]["ended"] = True
        for sid, st in list(streams.items()):
            if not st["answered"] and (st["early"] > 0 or time.time() - st["t0"] > 1):
                st["answered"] = True
                if st["method"] != "CONNECT":
                    conn.send_headers(sid, [(":status", "400")], end_stream=True)
                    continue
                conn.send_headers(sid, [(":status", "200")])
                if st.get("held"):
                    conn.send_data(sid, st.pop("held"))
            if st["answered"] and st.get("ended") and not st.get("done"):
                st["done"] = True
                conn.send_data(sid, b"BYE %d\n" % st["total"], end_stream=True)
                with lock, open(log, "a") as f:
                    f.write("conn=%d spiffe=%s alpn=%s headers=%s authority=%s early=%d total=%d ended=True\n"
                            % (k, spiffe, alpn, ",".join(st["headers"]), st["authority"], st["early"],
                               st["total"]))
        out = conn.data_to_send()
        if out:
            s.sendall(out)
    s.close()

while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

chmod 0644 "$RUN"/*.py

# ---- start: pod B (Aegis and its application), pod C (the h2 peer), pod A (Aegis) ----
POD_NS=${NS[b]} pod_spawn app-b pod "$POD_PYTHON" "$RUN/server.py" v1b "$RUN/app-b.ready"
# shellcheck disable=SC2046
POD_NS=${NS[b]} pod_spawn proxy-b proxy $(mesh_proxy_cmd b 1000 --drain-timeout 0)
POD_NS=${NS[c]} pod_spawn h2peer pod "$POD_PYTHON" "$RUN/h2peer.py" 15008 "$RUN/certs-c" "$RUN/h2peer.ready" \
	"$RUN/h2peer.log"
# shellcheck disable=SC2046
pod_spawn proxy-a proxy $(mesh_proxy_cmd a 1000 --mesh-transport hbone --drain-timeout 0)
mesh_wait_ready a b || exit 1
pod_wait_file "$RUN/app-b.ready" 30 || { bad "app b did not start"; exit 1; }
pod_wait_file "$RUN/h2peer.ready" 30 || { bad "the h2 peer did not start"; exit 1; }
pod_apply_rules >/dev/null || { bad "aegis-iptables apply in pod a"; exit 1; }
in_pod b "$POD_IPTABLES" apply >/dev/null || { bad "aegis-iptables apply in pod b"; exit 1; }
ok "pods: A and B with aegis-proxy --mesh (HBONE), C with the h2 peer"

# ---- 1. h2 as the client of our 15008 ----
h2c() { timeout 30 ip netns exec "$NODE_NS" "$POD_PYTHON" "$RUN/h2client.py" 10.253.1.2 15008 "$RUN/certs-a" "$@"; }
out=$(h2c one 10.253.1.2:9080)
want="alpn=h2 status=200 got='HELLO v1b\\nearly-lateBYE 10\\n' ended=True"
if [ "$out" = "$want" ]; then
	ok "h2 client: CONNECT 200, ALPN h2, DATA sent before the 200 delivered first, half-close both ways ($out)"
else
	bad "h2 client, one stream: '$out' (want '$want')"
fi
out=$(h2c many 10.253.1.2:9080 20)
if [ "$out" = "alpn=h2 ok=20" ]; then ok "h2 client: 20 CONNECT streams at once on one connection, every echo whole"; else bad "h2 client, 20 streams: $out"; fi
out=$(h2c status 10.253.2.2:9080)
if [ "$out" = "alpn=h2 status=400" ]; then ok "h2 client: another pod's address is 400"; else bad "h2 client, foreign address: $out"; fi
out=$(h2c status 10.253.1.2:9999)
if [ "$out" = "alpn=h2 status=503" ]; then ok "h2 client: nothing listening is 503"; else bad "h2 client, no listener: $out"; fi

# ---- 2. h2 as the peer of our outbound pool ----
good=$(timeout 60 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/first.py" 10.96.10.72 9080 20)
lines=$(grep -c . "$RUN/h2peer.log" 2>/dev/null || echo 0)
first=$(head -1 "$RUN/h2peer.log" 2>/dev/null)
echo "h2 peer saw: $first"
if [ "$good" = 20 ] && [ "$lines" = 20 ]; then
	ok "outbound to the h2 peer: 20 connections, every echo and end back"
else
	bad "outbound to the h2 peer: $good of 20 good, $lines streams logged ($(tail -3 "$RUN/proxy-a.log"))"
fi
if [ "$(grep -c '^conn=1 spiffe=spiffe://cluster.local/ns/default/sa/productpage alpn=h2 headers=:method,:authority authority=10.253.2.2:9080 ' "$RUN/h2peer.log")" = 20 ]; then
	ok "the h2 peer saw CONNECT with :authority 10.253.2.2:9080 only, pod A's SPIFFE ID, ALPN h2, all 20 on one connection"
else
	bad "what the h2 peer saw: $(sort "$RUN/h2peer.log" | uniq -c | head -3)"
fi
early=$(grep -c ' early=[1-9]' "$RUN/h2peer.log")
if [ "$early" = 20 ]; then
	ok "early bytes: $early of 20 streams brought the application's first bytes before the peer answered"
else
	bad "early bytes reached the h2 peer before its answer on $early of 20 streams"
fi

# ---- the proxies end at once on SIGTERM (--drain-timeout 0; under ASan/UBSan: no report in their logs) ----
for p in a b; do pod_stop "proxy-$p"; done
if grep -lE "Sanitizer|runtime error" "$RUN"/proxy-*.log; then
	bad "sanitizer reports: $(grep -hE -A5 'Sanitizer|runtime error' "$RUN"/proxy-*.log | head -40)"
else
	ok "the proxies exited without a sanitizer report"
fi

echo "hbone interop: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
