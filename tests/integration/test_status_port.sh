#!/usr/bin/env bash
# The status port (--status-listen, docs/admin.md): what the kubelet's probes reach from outside the pod.
# It answers GET/HEAD /healthz/ready (503 until the first config, then 200) and /healthz/live, and nothing
# else (the admin's /config_dump, /stats/prometheus, /logging and /dns/lookup are 404 there), while the
# admin endpoint keeps serving everything on loopback. Bad --status-listen values stop start-up.
source "$(dirname "$0")/../lib/common.sh"

XDS_PORT=$(free_port)
DNS=$(free_port); ADMIN=$(free_port); STATUS=$(free_port)
MESH="$AEGIS_TMP/mesh"
cp -r "$AEGIS_SRC_DIR/examples/mesh" "$MESH"

code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@"; }
body() { curl -s --max-time 5 "$@"; }

# Started before its control plane: alive, not ready.
start_bg proxy "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$XDS_PORT" --namespace default --cluster east \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$DNS" --admin "127.0.0.1:$ADMIN" \
	--status-listen "0.0.0.0:$STATUS"
PROXY=$LAST_PID
for _ in $(seq 1 $((300 * AEGIS_SLOW))); do
	[ "$(code "http://127.0.0.1:$STATUS/healthz/live")" = 200 ] && break
	sleep 0.1
done
expect_eq "status port: live while waiting for config" "$(code "http://127.0.0.1:$STATUS/healthz/live")" "200"
expect_eq "status port: not ready before the first config" "$(code "http://127.0.0.1:$STATUS/healthz/ready")" "503"
expect_match "status port: the reason" "$(body "http://127.0.0.1:$STATUS/healthz/ready")" "^not ready"
expect_match "status port listens on the wildcard address" \
	"$(grep -o '"msg":"status listening","addr":"[^"]*"' "$AEGIS_TMP/proxy.log")" "0\.0\.0\.0:$STATUS"

start_bg xds "$AEGIS_BIN/aegis-xds" --config-root "$MESH" --listen "127.0.0.1:$XDS_PORT" --state-file "$AEGIS_TMP/vips"
for _ in $(seq 1 $((300 * AEGIS_SLOW))); do
	[ "$(code "http://127.0.0.1:$STATUS/healthz/ready")" = 200 ] && break
	sleep 0.1
done
expect_eq "status port: ready after the first config" "$(code "http://127.0.0.1:$STATUS/healthz/ready")" "200"
expect_eq "status port: ready body" "$(body "http://127.0.0.1:$STATUS/healthz/ready")" "ready"
expect_eq "status port: HEAD ready" "$(code -I "http://127.0.0.1:$STATUS/healthz/ready")" "200"
expect_eq "status port: live body" "$(body "http://127.0.0.1:$STATUS/healthz/live")" "live"
for path in / /config_dump /stats/prometheus /logging "/dns/lookup?name=reviews.default.svc.cluster.local"; do
	expect_eq "status port: $path is not served" "$(code "http://127.0.0.1:$STATUS$path")" "404"
done
expect_eq "status port: POST /logging is not served" \
	"$(code -X POST "http://127.0.0.1:$STATUS/logging?level=debug")" "404"
expect_eq "status port: the log level did not change" "$(body "http://127.0.0.1:$ADMIN/logging")" "level: info"
expect_eq "status port: POST ready is 405" "$(code -X POST "http://127.0.0.1:$STATUS/healthz/ready")" "405"
# The admin endpoint is unchanged and still serves everything, on loopback.
expect_eq "admin: ready" "$(code "http://127.0.0.1:$ADMIN/healthz/ready")" "200"
expect_eq "admin: live" "$(code "http://127.0.0.1:$ADMIN/healthz/live")" "200"
expect_eq "admin: config_dump" "$(code "http://127.0.0.1:$ADMIN/config_dump")" "200"

# Start-up errors: a bad address, and a port already taken (fatal, like the admin's).
out=$("$AEGIS_BIN/aegis-proxy" --xds-address 127.0.0.1:1 --status-listen nonsense:x 2>&1)
expect_eq "bad --status-listen: usage error" "$?" "2"
expect_match "bad --status-listen: message" "$out" "bad --status-listen"
start_bg taken "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$XDS_PORT" --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" --status-listen "127.0.0.1:$STATUS"
TAKEN=$LAST_PID
for _ in $(seq 1 $((100 * AEGIS_SLOW))); do kill -0 "$TAKEN" 2>/dev/null || break; sleep 0.1; done
wait "$TAKEN"
expect_eq "status port in use: start-up fails" "$?" "1"
kill -0 "$PROXY" && pass "the first proxy is still running"

# Clean shutdown: no sanitizer report (ASan/UBSan builds).
for pid in "${AEGIS_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
for pid in "${AEGIS_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
expect_eq "no sanitizer report" "$(cat "$AEGIS_TMP"/*.log | grep -c 'Sanitizer\|runtime error')" "0"

finish
