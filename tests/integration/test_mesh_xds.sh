#!/usr/bin/env bash
# Mesh routing over xDS (docs/xds.md, docs/mesh.md): three pods made of network namespaces (tests/lib/pod.sh),
# each with aegis-proxy --mesh following aegis-xds (run in the node namespace) instead of reading files.
#
#   pod A (client)   10.253.0.2   the harness's pod
#   pod B (v1)       10.253.1.2   reviews v1 (EndpointSlice endpoint; labels from its pod's WorkloadEntry)
#   pod C (v2)       10.253.2.2   reviews v2
#
# Checks: the routing table arrives over xDS (aegisctl proxy-config routes/endpoints show the subsets and
# the endpoints' labels picked them); with a 100/0 VirtualService every connection from A to
# reviews.default.svc.cluster.local:9080 (the VIP 10.96.10.11) lands on v1; the VirtualService changed to
# 0/100 on aegis-xds's disk is pushed over xDS and new connections land on v2; the DNS name answers the VIP.
#
# Every wait is a bounded poll. Needs root; exit 77 = skipped.
set -uo pipefail

SRC=${AEGIS_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/pod.sh"
. "$SRC/tests/lib/mesh_pods.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: test_mesh_xds needs root (network namespaces and iptables)"
	exit 77
fi
mesh_require ip openssl setpriv timeout dig "$POD_PYTHON"
mesh_require_bins aegis-xds aegisctl
XDS=$POD_BIN/aegis-xds
CTL=$POD_BIN/aegisctl

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }

# ---- topology: pods B and C beside the harness's pod A, routed by the node namespace ----
mesh_pods_create x b c

# ---- certificates and the control plane's configuration tree ----
mesh_certs b c
mkdir -p "$RUN/xds/east"
printf 'name: east\nnetwork: net-east\nlocality: us-east1/us-east1-a\n' >"$RUN/xds/east/cluster.yaml"

# mesh_yaml W1 W2: reviews as a Kubernetes Service whose EndpointSlice lists pods B and C; their labels and
# service accounts come from the pods' WorkloadEntries (by targetRef name); a VirtualService splits W1/W2.
mesh_yaml() {
	cat <<EOF
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.10.11
  ports:
  - {name: http, port: 9080, protocol: TCP, targetPort: 9080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-abc12
  namespace: default
  labels: {kubernetes.io/service-name: reviews}
addressType: IPv4
ports:
- {name: http, port: 9080, protocol: TCP}
endpoints:
- addresses: [10.253.1.2]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: reviews-v1-pod, namespace: default}
- addresses: [10.253.2.2]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: reviews-v2-pod, namespace: default}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1-pod, namespace: default}
spec:
  address: 10.253.1.2
  labels: {app: reviews, version: v1}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2-pod, namespace: default}
spec:
  address: 10.253.2.2
  labels: {app: reviews, version: v2}
  serviceAccount: reviews
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  tcp:
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v1}
      weight: $1
    - destination: {host: reviews.default.svc.cluster.local, subset: v2}
      weight: $2
EOF
}
mesh_yaml 100 0 >"$RUN/xds/east/mesh.yaml"
chmod -R a+rX "$RUN"

mesh_write_server_py
mesh_write_client_py
chmod 0644 "$RUN"/*.py

# ---- start: capture rules first (as the init container runs before the sidecar), aegis-xds in the node,
# servers, proxies following it ----
pod_apply_rules >/dev/null || { bad "aegis-iptables apply in pod a"; exit 1; }
for p in b c; do
	in_pod "$p" "$POD_IPTABLES" apply >/dev/null || { bad "aegis-iptables apply in pod $p"; exit 1; }
done
pod_spawn xds node "$XDS" --config-root "$RUN/xds" --listen 0.0.0.0:15010 --debounce-ms 50
declare -A GW=([a]=$NODE_ADDR [b]=10.253.1.1 [c]=10.253.2.1)
proxy_cmd() { # proxy_cmd POD
	echo "$POD_PROXY" --xds-address "${GW[$1]}:15010" --mesh --cert-dir "$RUN/certs-$1" --namespace default \
		--cluster east --dns-listen 127.0.0.1:15053 --resolv-conf "$POD_RESOLV" --mesh-connect-timeout 1000
}
for p in b c; do
	POD_NS=${NS[$p]} pod_spawn "app-$p" pod "$POD_PYTHON" "$RUN/server.py" "v${PODS[$p]}" "$RUN/app-$p.ready"
	# shellcheck disable=SC2046
	POD_NS=${NS[$p]} pod_spawn "proxy-$p" proxy $(proxy_cmd "$p")
done
# shellcheck disable=SC2046
pod_spawn proxy-a proxy $(proxy_cmd a)
applied() { grep -c '"xds config applied".*"route_vips":[1-9]' "$RUN/proxy-$1.log" 2>/dev/null; }
wait_applied() { # wait_applied POD N: until the proxy applied N configs with routes (30 s)
	local i
	for i in $(seq 300); do
		[ "$(applied "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
for p in a b c; do
	if ! wait_applied "$p" 1; then
		bad "proxy in pod $p got no routes over xDS: $(tail -5 "$RUN/proxy-$p.log"); xds: $(tail -3 "$RUN/xds.log")"
		exit 1
	fi
done
for p in b c; do pod_wait_file "$RUN/app-$p.ready" 10 || { bad "app $p did not start"; exit 1; }; done
ok "three pods with aegis-proxy --mesh --xds-address, routes received over xDS"

# ---- 1. the state that came over xDS ----
RV=reviews.default.svc.cluster.local
out=$(in_pod a "$CTL" pc routes)
if echo "$out" | grep -Eq "^10\.96\.10\.11:9080 +$RV .*v1 100%,v2 0%"; then ok "proxy-config routes: VIP -> service, 100/0"; else bad "routes: $out"; fi
out=$(in_pod a "$CTL" pc endpoints)
if echo "$out" | grep -Eq "^10\.253\.1\.2:9080 +[A-Z]+ +OK +outbound\|9080\|v1\|$RV" &&
	echo "$out" | grep -Eq "^10\.253\.2\.2:9080 +[A-Z]+ +OK +outbound\|9080\|v2\|$RV" &&
	[ "$(echo "$out" | grep -c "outbound|9080|v[12]|")" = 2 ]; then
	ok "proxy-config endpoints: each pod in its subset (labels carried over xDS)"
else
	bad "endpoints: $out"
fi
out=$(in_pod a "$CTL" pc clusters -o json)
if echo "$out" | "$POD_PYTHON" -c '
import json, sys
d = json.load(sys.stdin)["configs"][0]
ids = {e["endpoint"]: e.get("identity", "") for c in d["clusters"] for e in c["endpoints"]}
sys.exit(0 if any("sa/reviews" in v for v in ids.values()) else 1)' 2>/dev/null; then
	ok "proxy-config clusters: endpoints expect the service account reviews (carried over xDS)"
else
	bad "clusters json: $(echo "$out" | head -c 600)"
fi
ans=$(in_pod a dig +short +time=2 +tries=3 @127.0.0.1 -p 15053 $RV A)
if [ "$ans" = 10.96.10.11 ]; then ok "DNS over xDS: $RV -> $ans"; else bad "dig $RV: '$ans'"; fi

# ---- 2. 100/0: every connection to v1 ----
res=$(timeout 90 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 40 10.96.10.11 9080)
read -r v1 v2 fails _ <<<"$res"
echo "100/0: v1=$v1 v2=$v2 failures=$fails"
if [ "${v1:-0}" = 40 ] && [ "${v2:-1}" = 0 ] && [ "${fails:-1}" = 0 ]; then ok "100/0 sends every connection to v1"; else bad "100/0: $res"; fi

# ---- 3. the VirtualService changes on the control plane: 0/100 reaches the proxies over xDS ----
mesh_yaml 0 100 >"$RUN/mesh.yaml.new"
chmod 0644 "$RUN/mesh.yaml.new"
mv "$RUN/mesh.yaml.new" "$RUN/xds/east/mesh.yaml"
if wait_applied a 2; then ok "the update reached pod A over xDS"; else bad "no second config in pod A: $(tail -3 "$RUN/proxy-a.log")"; fi
out=$(in_pod a "$CTL" pc routes)
if echo "$out" | grep -Eq "^10\.96\.10\.11:9080 +$RV .*v1 0%,v2 100%"; then ok "proxy-config routes: 0/100"; else bad "routes after update: $out"; fi
res=$(timeout 90 ip netns exec "$POD_NS" "$POD_PYTHON" "$RUN/client.py" 40 10.96.10.11 9080)
read -r v1 v2 fails _ <<<"$res"
echo "0/100: v1=$v1 v2=$v2 failures=$fails"
if [ "${v1:-1}" = 0 ] && [ "${v2:-0}" = 40 ] && [ "${fails:-1}" = 0 ]; then ok "0/100 moves new connections to v2"; else bad "0/100: $res"; fi
if grep -q '"xds config rejected' "$RUN/proxy-a.log"; then bad "a config was rejected: $(grep -m1 rejected "$RUN/proxy-a.log")"; else ok "no config rejected"; fi

# Clean shutdown: no sanitizer report (ASan/UBSan builds) from the proxies or the control plane.
for n in proxy-a proxy-b proxy-c xds; do pod_stop "$n"; done
if grep -l 'Sanitizer\|runtime error' "$RUN"/proxy-?.log "$RUN/xds.log" 2>/dev/null; then
	bad "sanitizer report: $(grep -h -A30 'Sanitizer\|runtime error' "$RUN"/proxy-?.log "$RUN/xds.log" 2>/dev/null | head -60)"
else
	ok "no sanitizer report"
fi

echo "mesh over xds: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
