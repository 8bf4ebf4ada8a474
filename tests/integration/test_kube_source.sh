#!/usr/bin/env bash
# aegis-xds --kubernetes against a scripted HTTPS API server (tests/lib/kube_apiserver.py replaying
# tests/fixtures/kube/basic), serving a real aegis-proxy over ADS, checked with dig:
# a listed Service and ServiceEntry answer; watch ADDED / MODIFIED / DELETED add, change and remove a
# name; a bookmark advances the resourceVersion, so after a dropped connection the watch resumes from the
# bookmark's version; an ERROR 410 event and an HTTP 410 both make the source list again; the bearer
# token from the kubeconfig is sent; an invalid object is left out and logged, the rest served.
source "$(dirname "$0")/../lib/common.sh"

FIX="$AEGIS_SRC_DIR/tests/fixtures/kube/basic"
T="$AEGIS_TMP"
command -v openssl >/dev/null || { echo "openssl CLI missing"; exit 77; }

# Certificates for the peer: a CA and a server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=test-kube-ca" \
	-keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kube-apiserver" \
	-keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext.cnf"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
	-extfile "$T/ext.cnf" -out "$T/srv.pem" 2>/dev/null

start_bg apiserver python3 "$AEGIS_SRC_DIR/tests/lib/kube_apiserver.py" --scenario "$FIX" --cert "$T/srv.pem" \
	--key "$T/srv.key" --port-file "$T/api.port" --log "$T/requests.jsonl"
for _ in $(seq 1 100); do [ -s "$T/api.port" ] && break; sleep 0.05; done
API=$(cat "$T/api.port")
API_URL="https://127.0.0.1:$API"
release() { curl -s --cacert "$T/ca.pem" "$API_URL/_control/release?gate=$1" >/dev/null; }

cat >"$T/kubeconfig" <<YAML
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: replay
  cluster:
    server: $API_URL/
    certificate-authority: ca.pem
contexts:
- name: test
  context: {cluster: replay, user: reader, namespace: aegis-system}
users:
- name: reader
  user:
    token: test-token-123
YAML

XDS_PORT=$(free_port); DNS=$(free_port); ADMIN=$(free_port)
start_bg xds "$AEGIS_BIN/aegis-xds" --kubernetes --kubeconfig "$T/kubeconfig" --cluster-name test1 \
	--cluster-network test1=net1 --cluster-locality test1=region1/zone-a --listen "127.0.0.1:$XDS_PORT" \
	--debounce-ms 50 --kube-backoff-ms 100:1000 --log-level debug
XDS_PID=$LAST_PID
start_bg proxy "$AEGIS_BIN/aegis-proxy" --xds-address "127.0.0.1:$XDS_PORT" --namespace default --cluster test1 \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$DNS" --admin "127.0.0.1:$ADMIN"

short() { dig @127.0.0.1 -p "$DNS" +tries=1 +time=2 +short "$1" "${2:-A}" | tr '\n' ' ' | sed 's/ $//'; }
rcode() { dig @127.0.0.1 -p "$DNS" +tries=1 +time=2 "$1" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
# wait_for DESCRIPTION COMMAND...: retries for up to 10 s
wait_for() {
	local d=$1; shift
	for _ in $(seq 1 200); do "$@" && { pass "$d"; return 0; }; sleep 0.05; done
	fail "$d"
	return 1
}
answers() { [ "$(short "$1")" == "$2" ]; }
# Not in the table: forwarded, and with no upstream (--resolv-conf /dev/null) not answered with an address.
gone() { [ -z "$(short "$1")" ] && [ "$(rcode "$1")" != "NOERROR" ]; }
saw() { grep -q "$1" "$T/requests.jsonl"; }

wait_for "a listed Service is answered" answers reviews.default.svc.cluster.local 10.96.0.10
wait_for "a listed ServiceEntry is answered" answers api.example.com 192.0.2.10
expect_match "the kubeconfig's bearer token is sent" "$(grep -o '"auth": "[^"]*"' "$T/requests.jsonl" | sort -u | tr '\n' ' ')" '^"auth": "Bearer test-token-123" $'
expect_match "the first watch starts from the list's resourceVersion with bookmarks" \
	"$(grep '"path": "/api/v1/services"' "$T/requests.jsonl" | grep -o '"query": "watch[^"]*"' | head -1)" \
	'resourceVersion=100&allowWatchBookmarks=true'
wait_for "the ratings name is not in the table yet" gone ratings.default.svc.cluster.local

release add
wait_for "watch ADDED adds a name" answers ratings.default.svc.cluster.local 10.96.0.20
release modify
wait_for "watch MODIFIED changes its address" answers ratings.default.svc.cluster.local 10.96.0.21
release delete
wait_for "watch DELETED removes it" gone ratings.default.svc.cluster.local
release bookmark
sleep 0.3
release drop
wait_for "after a dropped connection the watch resumes from the bookmark's resourceVersion (110)" \
	saw '"query": "watch=1&resourceVersion=110&'
wait_for "the resumed watch delivers events" answers details.default.svc.cluster.local 10.96.0.30
expect_eq "no relist after the drop (one services list so far)" \
	"$(grep -c '"path": "/api/v1/services", "query": "limit' "$T/requests.jsonl")" "1"

release expire
wait_for "an ERROR 410 event makes the source list again" answers relisted.default.svc.cluster.local 10.96.0.40
wait_for "the relist replaces the set (details gone)" gone details.default.svc.cluster.local
wait_for "the watch after the relist starts from its resourceVersion (200)" saw '"query": "watch=1&resourceVersion=200&'

release gone
wait_for "an HTTP 410 on the watch makes the source list again" answers after-gone.default.svc.cluster.local 10.96.0.50
wait_for "and watch from the new list's version (300)" saw '"query": "watch=1&resourceVersion=300&'
expect_eq "three services lists in all" "$(grep -c '"path": "/api/v1/services", "query": "limit' "$T/requests.jsonl")" "3"
expect_eq "reviews still answered" "$(short reviews.default.svc.cluster.local)" "10.96.0.10"

expect_match "the invalid ServiceEntry is logged and left out" \
	"$(grep 'kubernetes object rejected' "$AEGIS_TMP/xds.log" | head -1)" 'default/bad-host'
expect_match "a kind the server lacks (404) is retried" \
	"$(grep -c '"path": "/apis/networking.istio.io/v1/workloadentries", "query": "limit' "$T/requests.jsonl")" '^[2-9]'
expect_match "pods are listed (subset labels, service accounts)" \
	"$(grep '"kubernetes list"' "$AEGIS_TMP/xds.log" | grep '"Pod"' | head -1)" '"objects":2'

# A kubeconfig that cannot be used is fatal at start-up, with the reason.
printf 'apiVersion: v1\nkind: Config\ncurrent-context: nope\n' >"$T/bad-kubeconfig"
"$AEGIS_BIN/aegis-xds" --kubernetes --kubeconfig "$T/bad-kubeconfig" --listen "127.0.0.1:$(free_port)" \
	>/dev/null 2>"$T/bad.err"
expect_eq "a bad kubeconfig stops start-up (exit 1)" "$?" "1"
expect_match "with the reason" "$(cat "$T/bad.err")" 'context "nope" not found'

# SIGTERM stops the watch threads (blocked in curl or in a back-off) and exits 0; under
# -DAEGIS_SANITIZE the log must hold no sanitizer report (leaks included).
kill -TERM "$XDS_PID"
t0=$(date +%s)
wait "$XDS_PID"
expect_eq "aegis-xds exits 0 on SIGTERM" "$?" "0"
expect_match "within 5 s" "$(( $(date +%s) - t0 ))" '^[0-5]$'
expect_eq "no sanitizer report" "$(grep -c -E 'Sanitizer|runtime error' "$AEGIS_TMP/xds.log")" "0"
finish
