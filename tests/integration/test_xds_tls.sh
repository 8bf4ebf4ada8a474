#!/usr/bin/env bash
# xDS over mutual TLS (docs/xds.md, "xDS over mTLS"): aegis-xds --tls-listen --cert-dir with certificates from
# scripts/make-certs.sh, and aegis-proxy --xds-tls.
#
#  - a proxy with a workload certificate of the mesh's CA gets the config (DNS answers, ready);
#  - a proxy whose certificate (and root) come from another CA is refused: logged, not ready;
#  - a plaintext client (a proxy without --xds-tls) to the TLS port gets nothing: not ready;
#  - a proxy expecting another server identity (--xds-server-id) refuses the server: logged, not ready;
#  - openssl s_client without a client certificate is refused; with one it sees aegis-xds's SPIFFE ID;
#  - rotation: the refused proxy's files replaced by good ones (as a Secret update does) are picked up
#    without a restart; aegis-xds's own replaced certificate is served to new connections.
source "$(dirname "$0")/../lib/common.sh"

PROBE=$AEGIS_BIN/xds_probe
[ -x "$PROBE" ] || PROBE=${AEGIS_BUILD_DIR:-$(dirname "$AEGIS_BIN")}/tests/xds_probe
MK="$AEGIS_SRC_DIR/scripts/make-certs.sh"
C="$AEGIS_TMP/certs"
{
	bash "$MK" ca "$C/ca" && bash "$MK" ca "$C/evil-ca" --name "evil CA" &&
		bash "$MK" workload "$C/ca" "$C/xds" aegis-system aegis-xds &&
		bash "$MK" workload "$C/ca" "$C/good" default productpage &&
		bash "$MK" workload "$C/evil-ca" "$C/evil" default productpage
} >/dev/null 2>&1 || { fail "make-certs.sh"; finish; exit 1; }
chmod -R a+rX "$C" # the proxy reads them as UID 1337 after dropping root

TLS_PORT=$(free_port)
PLAIN_PORT=$(free_port)
start_bg xds "$AEGIS_BIN/aegis-xds" --config-root "$AEGIS_SRC_DIR/examples/mesh" --listen "127.0.0.1:$PLAIN_PORT" \
	--tls-listen "127.0.0.1:$TLS_PORT" --cert-dir "$C/xds" --state-file "$AEGIS_TMP/vips"
for _ in $(seq 1 $((100 * AEGIS_SLOW))); do grep -q '"tls":"mutual"' "$AEGIS_TMP/xds.log" && break; sleep 0.1; done
expect_match "aegis-xds: TLS listener with its identity" \
	"$(grep -o '"msg":"xds mutual TLS","identity":"[^"]*"' "$AEGIS_TMP/xds.log")" 'sa/aegis-xds"$'

declare -A DNS ADMIN
start_proxy() { # start_proxy NAME ARGS...
	local name=$1
	shift
	DNS[$name]=$(free_port)
	ADMIN[$name]=$(free_port)
	start_bg "$name" "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$TLS_PORT" --namespace default --cluster east \
		--resolv-conf /dev/null --dns-listen "127.0.0.1:${DNS[$name]}" --admin "127.0.0.1:${ADMIN[$name]}" "$@"
}
ready() { curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://127.0.0.1:${ADMIN[$1]}/healthz/ready"; }
wait_ready() { # wait_ready NAME SECONDS: until 200 or the bound
	for _ in $(seq 1 $((10 * $2 * AEGIS_SLOW))); do
		[ "$(ready "$1")" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}
wait_log() { # wait_log NAME REGEX SECONDS
	for _ in $(seq 1 $((10 * $3 * AEGIS_SLOW))); do
		grep -Eq "$2" "$AEGIS_TMP/$1.log" && return 0
		sleep 0.1
	done
	return 1
}

start_proxy good --xds-tls --cert-dir "$C/good"
start_proxy evil --xds-tls --cert-dir "$C/evil"
start_proxy plain
start_proxy wrongid --xds-tls --cert-dir "$C/good" --xds-server-id spiffe://cluster.local/ns/istio-system/sa/istiod
wait_ready good 30 && pass "mTLS client with the mesh CA's certificate: ready" || fail "good proxy not ready: $(tail -3 "$AEGIS_TMP/good.log")"
expect_eq "mTLS client: the config arrived (DNS answer)" \
	"$(dig @127.0.0.1 -p "${DNS[good]}" +tries=2 +time=2 +short reviews.default.svc.cluster.local A)" "10.96.10.11"
expect_match "mTLS client: its identity logged" "$(grep -o '"msg":"xds: mutual TLS","identity":"[^"]*"' "$AEGIS_TMP/good.log")" 'sa/productpage"$'

# The refused ones: give them the time the good one needed plus two reconnect attempts.
wait_log evil 'certificate verify failed' 20 && pass "certificate from another CA: handshake refused and logged" ||
	fail "evil proxy: no handshake failure logged: $(tail -3 "$AEGIS_TMP/evil.log")"
wait_log wrongid '"xds server refused: wrong identity"' 20 && pass "unexpected server identity: refused and logged" ||
	fail "wrongid proxy: $(tail -3 "$AEGIS_TMP/wrongid.log")"
sleep 1
for n in evil plain wrongid; do
	expect_eq "$n proxy: not ready" "$(ready "$n")" "503"
	expect_eq "$n proxy: no config applied" "$(grep -c '"xds config applied"' "$AEGIS_TMP/$n.log")" "0"
done
wait_log xds 'wrong version number|Handshake failed' 10 && pass "aegis-xds logs the failed handshakes" ||
	fail "aegis-xds logged no failed handshake"
expect_eq "plaintext xds_probe to the TLS port: nothing" \
	"$(timeout 10 "$PROBE" --address "127.0.0.1:$TLS_PORT" --duration-ms 3000 2>/dev/null | grep -c '^END')" "0"
expect_match "plaintext xds_probe to the plaintext port still works" \
	"$(timeout 20 "$PROBE" --address "127.0.0.1:$PLAIN_PORT" --duration-ms 3000 2>/dev/null | grep -c '^END')" '^[1-9]'

# openssl s_client: the server wants a client certificate, and presents aegis-xds's SPIFFE ID.
sc() { timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -alpn h2 -CAfile "$C/ca/root-cert.pem" "$@" </dev/null 2>&1; }
out=$(sc -cert "$C/good/cert-chain.pem" -key "$C/good/key.pem")
expect_match "s_client with a client certificate: verified" "$out" 'Verify return code: 0 \(ok\)'
serial1=$(sc -cert "$C/good/cert-chain.pem" -key "$C/good/key.pem" -showcerts | openssl x509 -noout -serial -ext subjectAltName 2>/dev/null)
expect_match "s_client: the server certificate is aegis-xds's" "$serial1" 'URI:spiffe://cluster.local/ns/aegis-system/sa/aegis-xds'
# TLS 1.3: the client finishes before the server checks its (missing) certificate; the server then
# drops the connection and logs the failed handshake.
before=$(grep -c 'Handshake failed' "$AEGIS_TMP/xds.log")
out=$( (echo; sleep 1) | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -alpn h2 -CAfile "$C/ca/root-cert.pem" 2>&1)
expect_match "s_client without a client certificate: dropped" "$out" 'unexpected eof|alert certificate required|alert handshake failure'
for _ in $(seq 1 $((50 * AEGIS_SLOW))); do [ "$(grep -c 'Handshake failed' "$AEGIS_TMP/xds.log")" -gt "$before" ] && break; sleep 0.1; done
after=$(grep -c 'Handshake failed' "$AEGIS_TMP/xds.log")
[ "$after" -gt "$before" ] && pass "aegis-xds logged the refused handshake ($before -> $after)" || fail "no new handshake failure in aegis-xds's log"

# Rotation, client side: the refused proxy's files replaced by the mesh CA's (make-certs renames, as a
# Secret update does); the certificate provider re-reads them and the next reconnect succeeds.
bash "$MK" workload "$C/ca" "$C/evil" default productpage >/dev/null 2>&1 && chmod -R a+rX "$C/evil"
wait_ready evil 60 && pass "rotated client certificate picked up without a restart" ||
	fail "evil proxy still not ready after rotation: $(tail -3 "$AEGIS_TMP/evil.log")"
# Rotation, server side: a new aegis-xds certificate is served to new connections.
bash "$MK" workload "$C/ca" "$C/xds" aegis-system aegis-xds >/dev/null 2>&1
serial2=$serial1
for _ in $(seq 1 $((150 * AEGIS_SLOW))); do
	serial2=$(sc -cert "$C/good/cert-chain.pem" -key "$C/good/key.pem" | openssl x509 -noout -serial -ext subjectAltName 2>/dev/null)
	[ -n "$serial2" ] && [ "$serial2" != "$serial1" ] && break
	sleep 0.2
done
if [ -n "$serial2" ] && [ "$serial2" != "$serial1" ]; then pass "rotated server certificate served to new connections"; else fail "server certificate not rotated: $serial2"; fi
expect_eq "the good proxy is still ready" "$(ready good)" "200"

# Start-up errors are fatal and clear.
out=$("$AEGIS_BIN/aegis-xds" --config-root "$AEGIS_SRC_DIR/examples/mesh" --listen none --tls-listen 127.0.0.1:0 --cert-dir "$AEGIS_TMP/nope" 2>&1)
expect_eq "aegis-xds: missing --cert-dir files: exit 1" "$?" "1"
expect_match "aegis-xds: ... names the files" "$out" 'cert-chain.pem'
out=$("$AEGIS_BIN/aegis-xds" --config-root "$AEGIS_SRC_DIR/examples/mesh" --tls-listen 127.0.0.1:0 2>&1)
expect_eq "aegis-xds: --tls-listen without --cert-dir: usage" "$?" "2"
out=$("$AEGIS_BIN/aegis-proxy" --xds-address 127.0.0.1:1 --xds-tls 2>&1)
expect_eq "aegis-proxy: --xds-tls without --cert-dir: usage" "$?" "2"
start_bg badcerts "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$TLS_PORT" --xds-tls --cert-dir "$AEGIS_TMP/nope" \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)"
BAD=$LAST_PID
for _ in $(seq 1 $((100 * AEGIS_SLOW))); do kill -0 "$BAD" 2>/dev/null || break; sleep 0.1; done
wait "$BAD"
expect_eq "aegis-proxy: unreadable --cert-dir with --xds-tls: exit 1" "$?" "1"
expect_match "aegis-proxy: ... logged" "$(cat "$AEGIS_TMP/badcerts.log")" 'xds: cannot load the TLS certificate'

# Clean shutdown: no sanitizer report (ASan/UBSan builds).
for pid in "${AEGIS_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
for pid in "${AEGIS_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
expect_eq "no sanitizer report" "$(cat "$AEGIS_TMP"/*.log | grep -c 'Sanitizer\|runtime error')" "0"
grep -h -A30 'Sanitizer\|runtime error' "$AEGIS_TMP"/*.log | head -60

finish
