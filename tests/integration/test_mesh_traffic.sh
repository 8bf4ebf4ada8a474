#!/usr/bin/env bash
# Mesh traffic end to end (docs/mesh.md): four pods made of network namespaces (tests/lib/pod.sh), each with
# aegis-proxy --mesh and the capture rules of aegis-iptables, certificates from scripts/make-certs.sh. The
# proxies use the legacy direct transport (--mesh-transport direct: mTLS to <endpoint>:<port>, the peer's
# 15006); test_mesh_hbone.sh covers the default, HBONE.
#
#   pod A (client)   10.253.0.2   fd53:ae61::2     the harness's pod; its node namespace routes between the pods
#   pod B (v1)       10.253.1.2   fd00:253:1::2    reviews v1, service account reviews
#   pod C (v2)       10.253.2.2   fd00:253:2::2    reviews v2
#   pod D (v1)       10.253.3.2   fd00:253:3::2    reviews v1, killed half-way (the dead endpoint)
#
# Checks: 1,000 connections from A to reviews.default.svc.cluster.local:9080 (the VIP 10.96.10.11) split 90/10
# between v1 and v2 within statistical bounds; the bytes on A's veth are TLS (a raw-socket capture in the
# node namespace never sees the plaintext marker the client sends, and does see it on a passthrough
# connection); a peer presenting the wrong identity is refused; a certificate rotation during a long
# transfer keeps it alive; a dead endpoint is ejected and traffic moves to the live one. IPv6 (section 1c):
# 100 connections from A to the IPv6 VIP of reviews6 ([fd00:10:96::11]:9080, endpoints B and C at their
# IPv6 addresses, 50/50) go through ip6tables, IP6T_SO_ORIGINAL_DST and direct mTLS to the peers' [::]:15006,
# all answered within the split's bounds, as IPv6 TLS on the veth; IPv6 passthrough to the node is unchanged.
#
# Every load is bounded in count and time. Needs root; exit 77 = skipped.
set -uo pipefail

SRC=${AEGIS_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/pod.sh"
. "$SRC/tests/lib/mesh_pods.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: test_mesh_traffic needs root (network namespaces and iptables)"
	exit 77
fi
mesh_require ip openssl setpriv timeout "$POD_PYTHON"

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# ---- topology: pods B, C, D beside the harness's pod A, routed by the node namespace ----
mesh_pods_create m b c d

# ---- certificates, configuration and helper programs, where UID 1337 can read them ----
MK=$SRC/scripts/make-certs.sh
mesh_certs b c d
bash "$MK" ca "$RUN/ca-evil" --name evil-ca >/dev/null || exit 1
chmod -R a+rX "$RUN"
cp "$SRC/tests/fixtures/mesh/mesh.yaml" "$RUN/mesh.yaml"
chmod 0644 "$RUN/mesh.yaml"

mesh_write_server_py

mesh_write_client_py

mesh_write_long_py

mesh_write_sniff_py
chmod 0644 "$RUN"/*.py

# ---- start: servers, proxies, capture rules ----
proxy_cmd() { mesh_proxy_cmd "$1" 500 --mesh-transport direct; } # proxy_cmd POD
for p in b c d; do
	name=$p
	case $p in b) name=v1b ;; c) name=v2 ;; d) name=v1d ;; esac
	POD_NS=${NS[$p]} pod_spawn "app-$p" pod "$POD_PYTHON" "$RUN/server.py" "$name" "$RUN/app-$p.ready"
	# shellcheck disable=SC2046
	POD_NS=${NS[$p]} pod_spawn "proxy-$p" proxy $(proxy_cmd "$p")
done
# shellcheck disable=SC2046
pod_spawn proxy-a proxy $(proxy_cmd a)
mesh_wait_ready a b c d || exit 1
for p in b c d; do pod_wait_file "$RUN/app-$p.ready" 10 || { bad "app $p did not start"; exit 1; }; done
pod_apply_rules >/dev/null || { bad "aegis-iptables apply in pod a"; exit 1; }
for p in b c d; do
	in_pod "$p" "$POD_IPTABLES" apply >/dev/null || { bad "aegis-iptables apply in pod $p"; exit 1; }
done
ok "four pods with aegis-proxy --mesh and capture rules"

# A plaintext server on the node (a non-mesh destination) for the passthrough check: the pods' application.
pod_spawn plain node "$POD_PYTHON" "$RUN/server.py" v1b "$RUN/plain.ready" 7000
pod_wait_file "$RUN/plain.ready" 10 || bad "plain server did not start"

# ---- 1. 90/10 over 1,000 connections, with a capture on A's veth ----
MARKER="AEGIS-PLAINTEXT-MARKER-$POD_ID"
pod_spawn sniff node "$POD_PYTHON" "$RUN/sniff.py" veth0 150 "$MARKER" "$RUN/sniff.out"
pod_wait_file "$RUN/sniff.out.ready" 10 || bad "sniffer did not start"
res=$(timeout 150 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 1000 10.96.10.11 9080 "$MARKER")
read -r v1 v2 fails _ _ <<<"$res"
echo "1000 connections: v1=$v1 v2=$v2 failures=$fails"
if [ "${fails:-1}" -eq 0 ] && [ "$((v1 + v2))" -eq 1000 ]; then ok "1000 connections through the mesh"; else bad "connections: $res"; fi
# v2 ~ Binomial(1000, 0.1): sd 9.5; 60..140 is beyond 4 sd on either side.
if [ "${v2:-0}" -ge 60 ] && [ "${v2:-0}" -le 140 ]; then ok "90/10 split (v2 = $v2)"; else bad "90/10 split: v2 = $v2"; fi
# Passthrough: a destination that is no mesh service reaches the node unchanged (and the marker is seen).
res=$(timeout 20 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 3 "$NODE_ADDR" 7000 "$MARKER")
read -r pv1 _ pfail _ _ <<<"$res"
if [ "$pv1" = 3 ] && [ "$pfail" = 0 ]; then ok "non-mesh destination passed through"; else bad "passthrough: $res"; fi
sleep 0.5
pod_stop sniff
if [ -s "$RUN/sniff.out" ]; then
	read -r pk tls hits _ <"$RUN/sniff.out"
	echo "capture on veth0: $pk packets, $tls with TLS application records, $hits with the marker"
	# The only marker hits are the 3 passthrough connections (a few packets each, both directions).
	if [ "$tls" -gt 1000 ] && [ "$hits" -ge 3 ] && [ "$hits" -le 12 ]; then
		ok "mesh bytes on the veth are TLS; the marker appears only in passthrough traffic"
	else
		bad "capture: packets=$pk tls=$tls marker=$hits"
	fi
else
	bad "the sniffer wrote nothing"
fi

# ---- 1b. the state behind it: aegisctl proxy-config and /stats/prometheus of pod A (docs/admin.md) ----
CTL=$POD_BIN/aegisctl
mesh_scrape a "$RUN/metrics-a.txt"
if PROMOUT=$(promtool check metrics <"$RUN/metrics-a.txt" 2>&1); then ok "promtool check metrics (pod A, after traffic)"; else bad "promtool: $PROMOUT"; fi
RV=reviews.default.svc.cluster.local
c1=$(mesh_metric "$RUN/metrics-a.txt" "aegis_mesh_cluster_connections_total{cluster=\"outbound|9080|v1|$RV\",service=\"$RV\",port=\"9080\",subset=\"v1\"}")
c2=$(mesh_metric "$RUN/metrics-a.txt" "aegis_mesh_cluster_connections_total{cluster=\"outbound|9080|v2|$RV\",service=\"$RV\",port=\"9080\",subset=\"v2\"}")
hs=$(mesh_metric "$RUN/metrics-a.txt" aegis_mtls_handshakes_total)
rs=$(mesh_metric "$RUN/metrics-a.txt" aegis_mtls_handshakes_resumed_total)
if [ "$c1" = "$v1" ] && [ "$c2" = "$v2" ] && [ "$hs" -ge 1000 ]; then
	ok "metrics: connections by subset v1=$c1 v2=$c2 match the clients' counts; $hs mTLS handshakes"
else
	bad "metrics: v1=$c1/$v1 v2=$c2/$v2 handshakes=$hs"
fi
# Direct mTLS resumes: after the first connection to each of the 3 endpoints, the rest reuse a ticket
# (aegis_mtls_resume; every resumed peer still passed the identity check counted above).
if [ "$rs" -ge "$((hs * 9 / 10))" ] && [ "$rs" -lt "$hs" ]; then
	ok "metrics: $rs of $hs handshakes were TLS session resumptions"
else
	bad "metrics: resumed handshakes $rs of $hs"
fi
out=$(in_pod a "$CTL" pc routes)
if echo "$out" | grep -Eq "^10\.96\.10\.11:9080 +$RV .*v1 90%,v2 10%"; then ok "proxy-config routes: VIP -> service, 90/10"; else bad "routes: $out"; fi
out=$(in_pod a "$CTL" pc clusters)
if echo "$out" | grep -Eq "^$RV +9080 +v1 +outbound +ISTIO_MUTUAL +2/2 +$v1\b" &&
	echo "$out" | grep -Eq "^$RV +9080 +v2 +outbound +ISTIO_MUTUAL +1/1 +$v2\b"; then
	ok "proxy-config clusters: subsets, endpoints, connections"
else
	bad "clusters: $out"
fi
out=$(in_pod a "$CTL" pc endpoints)
if [ "$(echo "$out" | grep -Ec "^10\.253\.[123]\.2:9080 +[A-Z]+ +OK +outbound\|9080\|v[12]\|$RV")" = 3 ]; then
	ok "proxy-config endpoints: three endpoints, none ejected"
else
	bad "endpoints: $out"
fi
out=$(in_pod a "$CTL" pc secrets)
if echo "$out" | grep -Eq "^default +Cert Chain +ACTIVE +true +[0-9A-F]+ .*spiffe://cluster.local/ns/default/sa/productpage" &&
	echo "$out" | grep -Eq "^ROOTCA +CA +ACTIVE +true" && echo "$out" | grep -Eq "^rotations +0"; then
	ok "proxy-config secrets: workload certificate, root CA, no rotation yet"
else
	bad "secrets: $out"
fi
in_pod a "$CTL" pc clusters -o json >"$RUN/clusters.json"
if "$POD_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1]))["configs"][0]; assert d["clusters"][0]["endpoints"][0]["endpoint"]' "$RUN/clusters.json"; then
	ok "proxy-config clusters -o json carries the endpoints"
else
	bad "clusters json"
fi

# ---- 1c. IPv6 over the direct transport (fixture service reviews6): pod A's application connects to the
# IPv6 VIP [fd00:10:96::11]:9080, whose endpoints are pods B (v1) and C (v2) at their IPv6 addresses, split
# 50/50. ip6tables sends it to [::1]:15001, the proxy reads IP6T_SO_ORIGINAL_DST and opens mTLS to
# [fd00:253:<n>::2]:9080, which the peer's ip6tables send to its [::]:15006, which hands the bytes to
# [::1]:9080. The veth sees IPv6 TLS and never the marker, except in 3 passthrough connections to the
# node's [fd53:ae61::1]:7000 (a destination that is no VIP, reached unchanged). ----
V6VIP=fd00:10:96::11
N6=${AEGIS_MESH_CONNECTIONS6:-100}
mesh_scrape b "$RUN/metrics-b6-0.txt"
mesh_scrape a "$RUN/metrics-a6-0.txt"
rm -f "$RUN/sniff.out" "$RUN/sniff.out.ready"
pod_spawn sniff6 node "$POD_PYTHON" "$RUN/sniff.py" veth0 150 "$MARKER" "$RUN/sniff.out"
pod_wait_file "$RUN/sniff.out.ready" 10 || bad "sniffer did not start"
res=$(timeout 60 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" "$N6" "$V6VIP" 9080 "$MARKER")
pres=$(timeout 20 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 3 "$NODE_ADDR6" 7000 "$MARKER")
sleep 0.5
pod_stop sniff6
mesh_scrape a "$RUN/metrics-a6.txt"
mesh_scrape b "$RUN/metrics-b6.txt"
read -r v61 v62 f6 _ _ <<<"$res"
echo "IPv6: $N6 connections to [$V6VIP]:9080: v1=$v61 v2=$v62 failures=$f6"
if [ "${f6:-1}" = 0 ] && [ "$((v61 + v62))" = "$N6" ]; then
	ok "IPv6: $N6 connections to [$V6VIP]:9080 over direct mTLS, each answered by a v1 or v2 server"
else
	bad "IPv6 connections: $res; pod A log: $(grep -E 'connect failed|refused|no route' "$RUN/proxy-a.log" | tail -3)"
fi
# Pod B's inbound listener took its share as mTLS (over IPv6: B has no other v1 traffic meanwhile).
bm0=$(mesh_metric "$RUN/metrics-b6-0.txt" 'aegis_mesh_inbound_connections_total{kind="mtls"}')
bm1=$(mesh_metric "$RUN/metrics-b6.txt" 'aegis_mesh_inbound_connections_total{kind="mtls"}')
hs0=$(mesh_metric "$RUN/metrics-a6-0.txt" aegis_mtls_handshakes_total)
hs1=$(mesh_metric "$RUN/metrics-a6.txt" aegis_mtls_handshakes_total)
if [ "$((bm1 - bm0))" = "$v61" ] && [ "$((hs1 - hs0))" -ge "$N6" ]; then
	ok "IPv6: pod B's inbound listener took $((bm1 - bm0)) mTLS connections (the client's v1 count); pod A made $((hs1 - hs0)) handshakes"
else
	bad "IPv6: B inbound mtls $bm0 -> $bm1 (client v1 $v61), A handshakes $hs0 -> $hs1"
fi
mesh_check_ipv6 "$N6" "$v62" "$pres" "$RUN/metrics-a6-0.txt" "$RUN/metrics-a6.txt"

# ---- 2. wrong identity: the imposter ServiceEntry expects sa/ratings, pod B presents sa/reviews ----
res=$(timeout 20 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 3 10.96.10.50 9080 x)
read -r iv1 _ ifail _ _ <<<"$res"
if [ "$iv1" = 0 ] && [ "$ifail" = 3 ] && grep -q 'wrong identity' "$RUN/proxy-a.log"; then
	ok "a peer with the wrong identity is refused ($(grep -m1 -o '"peer":"[^"]*"' "$RUN/proxy-a.log"))"
else
	bad "wrong identity: $res"
fi
# A peer whose certificate another CA signed: pod B's proxy restarted with an evil-CA certificate.
bash "$MK" workload "$RUN/ca-evil" "$RUN/certs-evil" default reviews && chmod -R a+rX "$RUN/certs-evil"
pod_stop proxy-b
# shellcheck disable=SC2046
POD_NS=${NS[b]} pod_spawn proxy-b-evil proxy $(proxy_cmd evil)
sleep 1
res=$(timeout 30 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 40 10.96.10.11 9080 x)
read -r ev1 ev2 efail eb ed <<<"$res"
if [ "$eb" = 0 ] && grep -q 'untrusted certificate' "$RUN/proxy-a.log"; then
	ok "a peer from another CA is refused (v1 via B: $eb, via D: $ed, v2: $ev2, failed: $efail)"
else
	bad "untrusted peer: $res"
fi
pod_stop proxy-b-evil
# shellcheck disable=SC2046
POD_NS=${NS[b]} pod_spawn proxy-b2 proxy $(proxy_cmd b)
for i in $(seq 50); do grep -q '"aegis-proxy ready"' "$RUN/proxy-b2.log" 2>/dev/null && break; sleep 0.1; done

# ---- 3. certificate rotation during a long transfer ----
timeout 60 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/long.py" 10.96.10.11 9080 6 "$RUN/long.out" &
LONG=$!
pod_wait_file "$RUN/long.out.started" 10
sleep 1
bash "$MK" workload "$RUN/ca" "$RUN/certs-a" default productpage-rotated && chmod -R a+rX "$RUN/certs-a"
wait "$LONG"
if grep -q ' ok' "$RUN/long.out" 2>/dev/null && grep -q '"certificate rotated"' "$RUN/proxy-a.log"; then
	ok "rotation during a long transfer: the transfer completed ($(cat "$RUN/long.out"))"
else
	bad "rotation: $(cat "$RUN/long.out" 2>/dev/null), rotated log: $(grep -c 'certificate rotated' "$RUN/proxy-a.log")"
fi
res=$(timeout 30 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 20 10.96.10.11 9080 x)
read -r _ _ rfail _ _ <<<"$res"
if [ "$rfail" = 0 ]; then ok "new connections after the rotation"; else bad "after rotation: $res"; fi

# ---- 4. a dead endpoint is ejected and its traffic moves ----
pod_stop proxy-d
pod_stop app-d
res=$(timeout 60 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 200 10.96.10.11 9080 x)
read -r dv1 dv2 dfail db dd <<<"$res"
echo "after killing pod D: v1=$dv1 (B $db, D $dd) v2=$dv2 failures=$dfail"
if [ "$dfail" = 0 ] && [ "$dd" = 0 ] && [ "$db" -gt 150 ] && grep -q '"endpoint ejected' "$RUN/proxy-a.log"; then
	ok "dead endpoint ejected; v1 traffic moved to pod B with no failed connection (retries)"
else
	bad "dead endpoint: $res; ejected log lines: $(grep -c 'endpoint ejected' "$RUN/proxy-a.log")"
fi
ejections=$(grep -c '"endpoint ejected' "$RUN/proxy-a.log")
if [ "$ejections" -eq 1 ]; then ok "ejected once (no connect attempts while ejected)"; else bad "ejections: $ejections"; fi

# ---- 5. the rotation and the ejection as the admin shows them ----
mesh_scrape a "$RUN/metrics-a2.txt"
rot=$(mesh_metric "$RUN/metrics-a2.txt" aegis_mtls_certificate_rotations_total)
ej=$(mesh_metric "$RUN/metrics-a2.txt" aegis_mesh_outlier_ejections_total)
ejd=$(mesh_metric "$RUN/metrics-a2.txt" "aegis_mesh_endpoint_ejected{cluster=\"outbound|9080|v1|$RV\",endpoint=\"10.253.3.2:9080\"}")
untr=$(mesh_metric "$RUN/metrics-a2.txt" 'aegis_mtls_handshake_failures_total{reason="untrusted"}')
wid=$(mesh_metric "$RUN/metrics-a2.txt" 'aegis_mtls_handshake_failures_total{reason="wrong_identity"}')
if [ "$rot" -ge 1 ] && [ "$ej" = 1 ] && [ "$ejd" = 1 ] && [ "$untr" -ge 1 ] && [ "$wid" -ge 3 ]; then
	ok "metrics: rotations=$rot ejections=$ej (D ejected) failures untrusted=$untr wrong_identity=$wid"
else
	bad "metrics after faults: rotations=$rot ejections=$ej d_ejected=$ejd untrusted=$untr wrong_id=$wid"
fi
if PROMOUT=$(promtool check metrics <"$RUN/metrics-a2.txt" 2>&1); then ok "promtool check metrics (after faults)"; else bad "promtool: $PROMOUT"; fi
out=$(in_pod a "$CTL" pc endpoints)
if echo "$out" | grep -Eq "^10\.253\.3\.2:9080 +[A-Z]+ +EJECTED" && echo "$out" | grep -Eq "^10\.253\.1\.2:9080 +[A-Z]+ +OK +outbound\|9080\|v1"; then
	ok "proxy-config endpoints: D ejected, B not"
else
	bad "endpoints after ejection: $out"
fi
out=$(in_pod a "$CTL" pc clusters)
if echo "$out" | grep -Eq "^$RV +9080 +v1 +outbound +ISTIO_MUTUAL +1/2 "; then
	ok "proxy-config clusters: v1 has 1 of 2 endpoints usable (D ejected)"
else
	bad "clusters after ejection: $out"
fi
out=$(in_pod a "$CTL" pc secrets)
if echo "$out" | grep -q "sa/productpage-rotated" && echo "$out" | grep -Eq "^rotations +[1-9]"; then
	ok "proxy-config secrets: the rotated identity and the rotation count"
else
	bad "secrets after rotation: $out"
fi

echo "mesh traffic: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
