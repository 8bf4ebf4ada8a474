#!/usr/bin/env bash
# aegis-xds serving the example mesh to two real aegis-proxy (one state-of-the-world, one delta): both give
# the same answers as the file source; a changed file reaches both within a bounded time; an invalid
# resource is NACKed (visible in /config_dump) while the old answer keeps being served; killing and
# restarting aegis-xds leaves the proxies answering, and they resubscribe.
source "$(dirname "$0")/../lib/common.sh"

XDS_PORT=$(free_port)
MESH="$AEGIS_TMP/mesh"
cp -r "$AEGIS_SRC_DIR/examples/mesh" "$MESH"
P1=$(free_port); A1=$(free_port); P2=$(free_port); A2=$(free_port); PF=$(free_port)

start_proxy() { # name dns admin extra...
	local name=$1 dns=$2 admin=$3; shift 3
	start_bg "$name" "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$XDS_PORT" --namespace default --cluster east \
		--resolv-conf /dev/null --dns-listen "127.0.0.1:$dns" --admin "127.0.0.1:$admin" "$@"
}
ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz/ready"; }
short() { dig @127.0.0.1 -p "$1" +tries=1 +time=2 +short "$2" "${3:-A}" | tr '\n' ' ' | sed 's/ $//'; }
# until NAME answers WANT on PORT, at most 10 s; prints the milliseconds it took
wait_answer() {
	local port=$1 name=$2 want=$3 start
	start=$(date +%s%N)
	for _ in $(seq 1 200); do
		[ "$(short "$port" "$name")" == "$want" ] && { echo $(( ($(date +%s%N) - start) / 1000000 )); return 0; }
		sleep 0.05
	done
	echo timeout; return 1
}

# The proxies start before the control plane: not ready, and mesh names get SERVFAIL meanwhile.
start_proxy sotw "$P1" "$A1"
start_proxy delta "$P2" "$A2" --xds-delta
wait_dns "$P1" www.example.org || fail "sotw proxy did not start"
expect_eq "not ready before the first config" "$(ready "$A1")" "503"
expect_eq "mesh name before the first config: SERVFAIL" \
	"$(dig @127.0.0.1 -p "$P1" +tries=1 +time=2 reviews.default.svc.cluster.local | sed -n 's/.*status: \([A-Z]*\).*/\1/p')" "SERVFAIL"

start_bg xds "$AEGIS_BIN/aegis-xds" --config-root "$MESH" --listen "127.0.0.1:$XDS_PORT" --state-file "$AEGIS_TMP/vips"
XDS=$LAST_PID
for p in "$P1" "$P2"; do
	t=$(wait_answer "$p" reviews.default.svc.cluster.local 10.96.10.11)
	expect_match "first config reaches the proxy on $p (${t} ms)" "$t" '^[0-9]+$'
done
expect_eq "ready after the first config" "$(ready "$A1")" "200"

# Same answers as the file source.
start_bg files "$AEGIS_BIN/aegis-proxy" --config "$MESH" --namespace default --cluster east --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$PF" --admin "127.0.0.1:$(free_port)" --no-watch
wait_dns "$PF" reviews.default.svc.cluster.local || fail "file proxy did not start"

# The xDS client is a module (lib/aegis/aegis-ads-client.so) that only --xds-address loads: the file-mode
# proxy maps no gRPC; a missing module stops start-up with its path and a hint.
# Sanitizer builds link gRPC into aegis-proxy itself (proxy/CMakeLists.txt says why): nothing to check.
if ldd "$AEGIS_BIN/aegis-proxy" | grep -q 'libgrpc'; then
	pass "file mode maps no gRPC: not checked, this aegis-proxy links it (sanitizer build)"
else
	expect_eq "file mode maps no gRPC" "$(grep -c 'libgrpc' "/proc/$LAST_PID/maps")" "0"
fi
expect_match "xDS mode maps the client module and gRPC" "$(grep -Eo 'aegis-ads-client\.so|libgrpc\.so' \
	"/proc/$(pgrep -f -- "--dns-listen 127.0.0.1:$P1" | head -1)/maps" | sort -u | tr '\n' ' ')" \
	'aegis-ads-client\.so libgrpc\.so'
rc=0
AEGIS_ADS_MODULE=$AEGIS_TMP/missing.so timeout $((20 * AEGIS_SLOW)) "$AEGIS_BIN/aegis-proxy" \
	--xds-address "127.0.0.1:$XDS_PORT" --resolv-conf /dev/null --dns-listen "127.0.0.1:$(free_port)" \
	--admin "127.0.0.1:$(free_port)" 2>"$AEGIS_TMP/nomodule.log" || rc=$?
expect_eq "missing xDS client module: start-up fails" "$rc" "1"
expect_match "missing xDS client module: path and hint logged" "$(cat "$AEGIS_TMP/nomodule.log")" \
	'cannot load the xds client module.*missing\.so.*AEGIS_ADS_MODULE'
same=0; total=0
for n in reviews.default.svc.cluster.local ratings.default.svc.cluster.local details.default.svc.cluster.local \
	reviews.default.svc.clusterset.local db.shop.svc.cluster.local db-1.db.shop.svc.cluster.local \
	cart.shop legacy.company.internal en.wikipedia.org api.example.com.default.svc.cluster.local \
	reviews details.west.global reviews.default.west.global; do
	for t in A AAAA; do
		f=$(short "$PF" "$n" "$t" | tr ' ' '\n' | sort | tr '\n' ' ')
		for p in "$P1" "$P2"; do
			x=$(short "$p" "$n" "$t" | tr ' ' '\n' | sort | tr '\n' ' ')
			total=$((total + 1))
			if [ "$f" == "$x" ]; then same=$((same + 1)); else echo "  differs: $n $t on $p: xds [$x] files [$f]"; fi
		done
	done
done
expect_eq "xDS answers equal the file source's ($total checks)" "$same" "$total"
expect_match "SRV over xDS" "$(short "$P2" _http._tcp.reviews.default.svc.cluster.local SRV)" '9080 reviews\.default\.svc\.cluster\.local\.'

# A changed file reaches both proxies.
sed -i 's/10.96.20.21/10.96.20.77/' "$MESH/east/shop.yaml"
for p in "$P1" "$P2"; do
	t=$(wait_answer "$p" cart.shop.svc.cluster.local 10.96.20.77)
	expect_match "file change reaches $p (${t} ms)" "$t" '^[0-9]+$'
done

# An invalid resource is reported and skipped: the last good config keeps serving.
cat >"$MESH/east/broken.yaml" <<'YAML'
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: broken, namespace: default}
spec:
  hosts: [broken.example.com]
  addresses: [not-an-ip]
YAML
sleep 1
expect_eq "invalid file: old answers still served" "$(short "$P1" cart.shop.svc.cluster.local)" "10.96.20.77"
expect_match "invalid file reported by aegis-xds" "$(cat "$AEGIS_TMP/xds.log")" 'broken\.yaml'
rm "$MESH/east/broken.yaml"

# An invalid resource on the wire (aegis-xds serves <root>/_raw/<Kind>/*.pb as they are, for tests): a
# ServiceEntry without hosts. Both proxies NACK it with the reason, visible in /config_dump, and keep
# answering from the last good table.
mkdir -p "$MESH/_raw/ServiceEntry"
printf '\x12\x0810.0.0.1' >"$MESH/_raw/ServiceEntry/bad.pb"
for a in "$A1" "$A2"; do
	D=""
	for _ in $(seq 1 100); do
		D=$(curl -s "http://127.0.0.1:$a/config_dump?resource=xds")
		[[ "$D" == *'"last": "NACK"'* ]] && break
		sleep 0.1
	done
	expect_match "NACK with its reason in /config_dump (admin $a)" "$D" '"last": "NACK"[^}]*"error": "[^"]*no hosts'
done
expect_eq "after the NACK: last good table still served (sotw)" "$(short "$P1" cart.shop.svc.cluster.local)" "10.96.20.77"
expect_eq "after the NACK: last good table still served (delta)" "$(short "$P2" cart.shop.svc.cluster.local)" "10.96.20.77"
rm -rf "$MESH/_raw"

# Kill the control plane: answers continue from the last table; after a restart the proxies resubscribe
# and see changes made meanwhile.
kill -9 "$XDS"; wait "$XDS" 2>/dev/null
expect_eq "control plane gone: sotw still answers" "$(short "$P1" reviews.default.svc.cluster.local)" "10.96.10.11"
expect_eq "control plane gone: delta still answers" "$(short "$P2" reviews.default.svc.cluster.local)" "10.96.10.11"
expect_eq "control plane gone: still ready" "$(ready "$A1")" "200"
sed -i 's/10.96.20.77/10.96.20.78/' "$MESH/east/shop.yaml"
start_bg xds2 "$AEGIS_BIN/aegis-xds" --config-root "$MESH" --listen "127.0.0.1:$XDS_PORT" --state-file "$AEGIS_TMP/vips"
for p in "$P1" "$P2"; do
	t=$(wait_answer "$p" cart.shop.svc.cluster.local 10.96.20.78)
	expect_match "resubscribed after restart on $p (${t} ms)" "$t" '^[0-9]+$'
done
expect_eq "VIPs stable across a control-plane restart" "$(short "$P1" api.example.com)" "$(short "$PF" api.example.com)"

# The xDS state is visible in /config_dump.
D=$(curl -s "http://127.0.0.1:$A2/config_dump?resource=xds")
expect_match "config_dump shows delta mode" "$D" '"mode": "delta"'
expect_match "config_dump shows ACKs" "$D" '"last": "ACK"'

finish
