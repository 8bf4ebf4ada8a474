#!/usr/bin/env bash
# TLS-peer rows of the fault matrix (docs/hardening.md) against the proxy's inbound listener (15006,
# docs/mesh.md): in a private network namespace, `iptables -t nat OUTPUT` redirects connections to the
# application port 9443 to 15006 (except the proxy's own, UID 1337), so every client below is "a peer
# sidecar" as far as the proxy can tell. Faults: a peer that stalls mid-handshake (a TLS record header and
# then nothing), one that sends garbage after the first byte, one with an expired certificate. Each is
# refused with a log line and a counter, and a good mTLS peer is relayed to the application meanwhile.
# Bounded: 8 stalled + 8 garbage + 4 expired connections, ~15 s. Needs root (exit 77 otherwise).
source "$(dirname "$0")/../lib/common.sh"
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (network namespace, iptables)"
	exit 77
fi
NS=aegis-tlsf-$$
ip netns add "$NS" || { fail "cannot create $NS"; finish; exit 1; }
del_ns() { ip netns del "$NS" 2>/dev/null; }
AEGIS_CLEANUPS+=(del_ns)
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns iptables -t nat -A OUTPUT -p tcp -d 127.0.0.1 --dport 9443 -m owner ! --uid-owner 1337 \
	-j REDIRECT --to-ports 15006 || { fail "iptables in $NS"; finish; exit 1; }

C=$AEGIS_TMP/certs
bash "$AEGIS_SRC_DIR/scripts/make-certs.sh" ca "$C/ca" >/dev/null 2>&1
bash "$AEGIS_SRC_DIR/scripts/make-certs.sh" workload "$C/ca" "$C/proxy" default reviews >/dev/null 2>&1
bash "$AEGIS_SRC_DIR/scripts/make-certs.sh" workload "$C/ca" "$C/good" default web >/dev/null 2>&1
bash "$AEGIS_SRC_DIR/scripts/make-certs.sh" workload "$C/ca" "$C/expired" default web --expired >/dev/null 2>&1
chmod -R a+rX "$C"
[ -f "$C/expired/cert-chain.pem" ] || { fail "make-certs.sh"; finish; exit 1; }

# The application: an echo server on 9443 (bounded: 60 s, 64 connections).
cat >"$AEGIS_TMP/echo.py" <<'PY'
import socket, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9443)); s.listen(64); s.settimeout(1)
def serve(c):
    c.settimeout(10)
    try:
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    except OSError: pass
    c.close()
end = time.time() + 60; n = 0
while time.time() < end and n < 64:
    try: c, _ = s.accept()
    except socket.timeout: continue
    n += 1; threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
start_bg app ip netns exec "$NS" /usr/bin/python3 "$AEGIS_TMP/echo.py"
PORT=15053
ADMIN=15000
start_bg proxy ip netns exec "$NS" "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east \
	--namespace default --resolv-conf /dev/null --dns-listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" \
	--mesh --cert-dir "$C/proxy" --inbound-listen 127.0.0.1:15006 --outbound-listen 127.0.0.1:15001
PROXY=$LAST_PID
for _ in $(seq 1 100); do
	in_ns dig @127.0.0.1 -p "$PORT" +tries=1 +time=1 reviews.default.svc.cluster.local >/dev/null 2>&1 && break
	sleep 0.1
done

# client.py MODE N: MODE good|expired|garbage|stall; prints one word per connection.
cat >"$AEGIS_TMP/client.py" <<'PY'
import os, socket, ssl, sys, time
mode, n, certs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = []
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", 9443), timeout=8)
    if mode in ("good", "expired"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.load_verify_locations(certs + "/ca/root-cert.pem")
        ctx.load_cert_chain(certs + "/%s/cert-chain.pem" % mode, certs + "/%s/key.pem" % mode)
        try:
            t = ctx.wrap_socket(s)
            t.sendall(b"ping %d" % i)
            out.append("echo" if t.recv(100) == b"ping %d" % i else "wrong")
            t.close()
        except (ssl.SSLError, OSError) as e:
            out.append("refused")
    elif mode == "garbage":
        # Deterministic garbage (random bytes can spell a long record and wait for the rest): an invalid
        # handshake message type in a well-formed record, or an impossible record version and length.
        s.sendall(b"\x16\x03\x01\x00\x10" + b"\xff" * 16 if i % 2 else b"\x16" + b"\xfe" * 300)
        try:
            out.append("closed" if s.recv(100) is not None else "?")
        except OSError:
            out.append("closed")
        s.close()
    else:  # stall: a TLS record header, then silence; held open until the proxy gives up
        s.sendall(b"\x16\x03\x01")
        socks.append(s)
if mode == "stall":
    t0 = time.time()
    for s in socks:
        try:
            s.settimeout(max(0.1, 8 - (time.time() - t0)))
            out.append("closed" if s.recv(100) == b"" else "data")
        except socket.timeout:
            out.append("open")
        except OSError:
            out.append("closed")
print(" ".join(out))
PY
client() { timeout 30 ip netns exec "$NS" /usr/bin/python3 "$AEGIS_TMP/client.py" "$1" "$2" "$C"; }
metric() { in_ns curl -s --max-time 3 "http://127.0.0.1:$ADMIN/stats/prometheus" | awk -v m="$1" '$1 == m {print $2}'; }

expect_eq "baseline: a good mTLS peer is relayed" "$(client good 2)" "echo echo"
ok0=$(metric aegis_mtls_handshakes_total)

# Stalled handshakes run in the background while good peers keep being served.
client stall 8 >"$AEGIS_TMP/stall.out" &
STALL=$!
AEGIS_PIDS+=("$STALL")
sleep 0.5
expect_eq "during 8 stalled handshakes: a good peer is relayed" "$(client good 1)" "echo"
expect_eq "garbage after the first byte: 8 connections closed" "$(client garbage 8)" \
	"closed closed closed closed closed closed closed closed"
expect_eq "expired certificate: 4 peers refused" "$(client expired 4)" "refused refused refused refused"
wait "$STALL"
expect_eq "stalled handshakes: closed by the proxy's 5 s limit" "$(cat "$AEGIS_TMP/stall.out")" \
	"closed closed closed closed closed closed closed closed"
expect_eq "after the faults: a good peer is relayed" "$(client good 2)" "echo echo"

L=$AEGIS_TMP/proxy.log
expect_eq "stall: log lines (inbound timed out, stage handshake)" \
	"$(grep '"inbound timed out"' "$L" | grep -c '"stage":"handshake"')" "8"
expect_eq "garbage: log lines (mtls handshake failed)" "$(grep -c '"mtls handshake failed"' "$L")" "8"
expect_eq "expired: log lines" "$(grep -c 'certificate expired' "$L")" "4"
expect_eq "expired: counter" "$(metric 'aegis_mtls_handshake_failures_total{reason="expired"}')" "4"
expect_eq "garbage: counter (reason=error)" "$(metric 'aegis_mtls_handshake_failures_total{reason="error"}')" "8"
expect_eq "refusals counted (aegis_mesh_inbound_refused_total)" "$(metric aegis_mesh_inbound_refused_total)" "20"
expect_eq "good handshakes counted" "$(($(metric aegis_mtls_handshakes_total) - ok0))" "3"
expect_eq "proxy alive" "$(kill -0 "$PROXY" 2>/dev/null && echo yes)" "yes"
expect_match "DNS still answered" "$(in_ns dig @127.0.0.1 -p "$PORT" +short reviews.default.svc.cluster.local)" '^10\.96\.10\.11$'
finish
