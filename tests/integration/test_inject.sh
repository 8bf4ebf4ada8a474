#!/usr/bin/env bash
# aegis-inject end to end (docs/inject.md, docs/deploy.md):
#
#  1. the webhook over HTTPS (a test CA and server certificate made here with the openssl CLI), driven with
#     curl over HTTP/1.1 and HTTP/2: every AdmissionReview fixture of tests/fixtures/inject/ is posted and
#     its patch applied with python3-jsonpatch (an independent RFC 6902 implementation) to the request's
#     pod, which must then hold exactly the expected containers, init containers, volumes and annotations;
#  2. bad requests (malformed JSON, wrong kind or version, huge bodies, wrong method or path) get clean
#     errors and the server keeps serving; TLS below 1.2 is refused; a new certificate is picked up without
#     a restart and a broken one is refused while the old one keeps serving;
#  3. `aegisctl inject` produces the same pod template as the webhook;
#  4. deploy/: every manifest is valid YAML, the webhook selects by the namespace label, the Services,
#     ports and the ConfigMap agree with the programs, a bad config stops aegis-inject at start-up;
#  5. as root: the injected pod runs in a pod made of network namespaces (tests/lib/pod.sh) -- its init
#     container's command applies the capture, its sidecar's command (as UID 1337) answers the app's DNS
#     through it, and the sidecar's readiness probe (httpGet from the node to the status port 15021, which
#     the capture leaves alone) passes.
#
# Env: AEGIS_BIN (the programs), AEGIS_SRC_DIR (the checkout).
. "$(dirname "$0")/../lib/common.sh"
SRC=$AEGIS_SRC_DIR
FIX=$SRC/tests/fixtures/inject
T=$AEGIS_TMP

# Debian's interpreter: python3-jsonpatch and python3-yaml come from scripts/setup.sh, whatever python3
# is first on PATH.
PY=/usr/bin/python3
for tool in curl openssl "$PY"; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing: run scripts/setup.sh test"; exit 1; }
done
"$PY" -c 'import jsonpatch, yaml' 2>/dev/null || { echo "FAIL: python3-jsonpatch/python3-yaml missing: run scripts/setup.sh test"; exit 1; }
for b in aegis-inject aegisctl; do
	[ -x "$AEGIS_BIN/$b" ] || { echo "FAIL: $AEGIS_BIN/$b not built"; exit 1; }
done

# ---- certificates (openssl CLI) ----
mkcert() { # mkcert DIR CN: a CA and a server certificate for localhost/127.0.0.1 in DIR
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=test-ca" \
		-keyout "$1/ca.key" -out "$1/ca.crt" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
			-keyout "$1/tls.key" -out "$1/tls.csr" 2>/dev/null &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$1/ext" &&
		openssl x509 -req -in "$1/tls.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
			-extfile "$1/ext" -out "$1/tls.crt" 2>/dev/null
}
mkcert "$T/pki1" aegis-inject-one || { echo "FAIL: openssl could not make the test certificates"; exit 1; }
mkcert "$T/pki2" aegis-inject-two
mkdir -p "$T/live"
cp "$T/pki1/tls.crt" "$T/pki1/tls.key" "$T/live/"

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
start_bg inject "$AEGIS_BIN/aegis-inject" --listen "127.0.0.1:$PORT" --cert "$T/live/tls.crt" \
	--key "$T/live/tls.key" --config "$SRC/deploy/config/inject.yaml" --reload-interval 1
INJECT_PID=$LAST_PID
CURL=(curl -sS --max-time 10 --cacert "$T/pki1/ca.crt")
for _ in $(seq 1 100); do
	"${CURL[@]}" -o /dev/null "$URL/healthz" 2>/dev/null && break
	sleep 0.1
done
expect_eq "GET /healthz over HTTP/1.1" "$("${CURL[@]}" --http1.1 -w ' %{http_code} %{http_version}' "$URL/healthz")" "ok
 200 1.1"
expect_eq "GET /readyz over h2 (ALPN)" "$("${CURL[@]}" --http2 -w ' %{http_code} %{http_version}' "$URL/readyz")" "ok
 200 2"
expect_eq "API server style path with ?timeout=10s" \
	"$("${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary @"$FIX/pod-opted-out.json" "$URL/inject?timeout=10s")" "200"

# ---- 1. every fixture, patch applied with python3-jsonpatch ----
cat >"$T/check.py" <<'PY'
import base64, json, sys, jsonpatch
review, response, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), json.loads(sys.argv[3])
req, resp = review["request"], response["response"]
errs = []
def check(what, got, exp):
    if got != exp:
        errs.append("%s: got %r, want %r" % (what, got, exp))
check("apiVersion/kind", (response["apiVersion"], response["kind"]), ("admission.k8s.io/v1", "AdmissionReview"))
check("uid echoed", resp["uid"], req["uid"])
check("allowed", resp["allowed"], want.get("allowed", True))
check("warnings", len(resp.get("warnings", [])), want.get("warnings", 0))
if "status" in want:
    check("status code", resp.get("status", {}).get("code"), want["status"])
pod = req["object"]
if want.get("patched"):
    check("patchType", resp.get("patchType"), "JSONPatch")
    ops = json.loads(base64.b64decode(resp["patch"]))
    pod = jsonpatch.JsonPatch(ops).apply(pod)
    spec = pod["spec"]
    names = lambda key: [c["name"] for c in spec.get(key, [])]
    check("containers", names("containers"), want["containers"])
    check("initContainers", names("initContainers"), want["init"])
    check("volumes", names("volumes"), want["volumes"])
    check("annotations", pod["metadata"].get("annotations", {}), want["annotations"])
    init = [c for c in spec["initContainers"] if c["name"] == "aegis-init"][0]
    check("init command", init["command"] + init["args"], ["aegis-iptables"] + want["args"])
    check("init capabilities", init["securityContext"]["capabilities"]["add"], ["NET_ADMIN", "NET_RAW"])
    proxy = [c for c in spec["containers"] if c["name"] == "aegis-proxy"][0]
    sc = proxy["securityContext"]
    check("sidecar uid/gid", (sc["runAsUser"], sc["runAsGroup"]), (1337, 1337))
    check("sidecar env", [e["name"] for e in proxy["env"]], ["POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT", "INSTANCE_IP"])
    check("readiness probe", sorted(proxy["readinessProbe"]), ["failureThreshold", "httpGet", "initialDelaySeconds", "periodSeconds", "timeoutSeconds"])
    check("readiness probe port", proxy["readinessProbe"]["httpGet"], {"path": "/healthz/ready", "port": 15021})
    json.dump(pod, open(sys.argv[4], "w"))
else:
    check("no patch", "patch" in resp, False)
print("; ".join(errs) if errs else "ok")
PY
post() { # post FILE OUT [curl args...]: POST FILE to /inject, body in OUT, prints the status
	local f=$1 out=$2
	shift 2
	"${CURL[@]}" "$@" -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$f" \
		"$URL/inject"
}
ANN='{"aegis.io/status":"injected"}'
declare -A WANT=(
	[pod-plain]='{"patched":true,"containers":["reviews","aegis-proxy"],"init":["aegis-init"],"volumes":["kube-api-access-x7k2p","aegis-certs"],"annotations":'$ANN',"args":["apply","--exclude-inbound-ports=15021"]}'
	[pod-init-containers]='{"patched":true,"containers":["reviews","aegis-proxy"],"init":["migrate","wait-db","aegis-init"],"volumes":["kube-api-access-x7k2p","aegis-certs"],"annotations":{"aegis.io/capture-dns":"resolv","aegis.io/exclude-outbound-ports":"5432, 6379","aegis.io/exclude-inbound-ports":"9090","kubectl.kubernetes.io/restartedAt":"2026-11-20T10:00:00Z","aegis.io/status":"injected"},"args":["apply","--capture-dns=resolv","--exclude-outbound-ports=5432,6379","--exclude-inbound-ports=9090,15021"]}'
	[pod-bare]='{"patched":true,"containers":["reviews","aegis-proxy"],"init":["aegis-init"],"volumes":["aegis-certs"],"annotations":'$ANN',"args":["apply","--exclude-inbound-ports=15021"]}'
	[pod-opted-out]='{}'
	[pod-injected]='{}'
	[pod-hostnetwork]='{"warnings":1}'
	[not-a-pod]='{"warnings":1}'
	[pod-bad-annotation]='{"allowed":false,"status":400}'
)
for name in pod-plain pod-init-containers pod-bare pod-opted-out pod-injected pod-hostnetwork not-a-pod \
	pod-bad-annotation; do
	for proto in http1.1 http2; do
		code=$(post "$FIX/$name.json" "$T/$name.$proto.out" "--$proto")
		expect_eq "$name over $proto: HTTP status" "$code" 200
		expect_eq "$name over $proto: patched pod" \
			"$("$PY" "$T/check.py" "$FIX/$name.json" "$T/$name.$proto.out" "${WANT[$name]}" "$T/$name.pod.json" 2>&1)" ok
	done
	expect_eq "$name: HTTP/1.1 and h2 answers are identical" "$(cmp -s "$T/$name.http1.1.out" "$T/$name.http2.out" && echo same)" same
done
# The injected pod, sent again (a reinvocation), is left alone.
"$PY" -c "import json,sys; r=json.load(open('$FIX/pod-plain.json')); r['request']['object']=json.load(open('$T/pod-plain.pod.json')); json.dump(r, open('$T/again.json','w'))"
expect_eq "an injected pod is not injected again" "$(post "$T/again.json" "$T/again.out" >/dev/null; "$PY" "$T/check.py" "$T/again.json" "$T/again.out" '{}' /dev/null)" ok

# ---- 2. bad requests, TLS, certificate reload ----
printf 'x%.0s' $(seq 1 100) >/dev/null
"$PY" -c "import sys; sys.stdout.write('{\"a\":\"' + 'x' * (3 << 20) + '\"}')" >"$T/huge.json"
for proto in http1.1 http2; do
	expect_eq "malformed JSON ($proto) is 400" "$(post "$FIX/malformed.json" "$T/m.out" "--$proto")" 400
	expect_match "malformed JSON ($proto) says why" "$(cat "$T/m.out")" '"error":"request body is not JSON'
	expect_eq "AdmissionReview v1beta1 ($proto) is 400" "$(post "$FIX/review-v1beta1.json" "$T/b.out" "--$proto")" 400
	expect_eq "no request.uid ($proto) is 400" "$(post "$FIX/review-no-uid.json" "$T/u.out" "--$proto")" 400
	expect_eq "a 3 MiB body ($proto) is 413" "$(post "$T/huge.json" "$T/h.out" "--$proto")" 413
	expect_eq "GET /inject ($proto) is 405" "$("${CURL[@]}" "--$proto" -o /dev/null -w '%{http_code}' "$URL/inject")" 405
	expect_eq "unknown path ($proto) is 404" "$("${CURL[@]}" "--$proto" -o /dev/null -w '%{http_code}' "$URL/nope")" 404
done
expect_eq "a 3 MiB chunked body is 413" "$(post "$T/huge.json" "$T/c.out" --http1.1 -H 'Transfer-Encoding: chunked')" 413
expect_eq "a 3 MiB body with Expect: 100-continue is 413 before the upload" \
	"$(post "$T/huge.json" "$T/e.out" --http1.1 -H 'Expect: 100-continue')" 413
expect_eq "a body with Expect: 100-continue is served" \
	"$(post "$FIX/pod-plain.json" "$T/e2.out" --http1.1 -H 'Expect: 100-continue')" 200
printf 'GARBAGE / HTTP/9.9\r\n\r\n' >"$T/garbage"
expect_match "garbage request line gets a 400" \
	"$(openssl s_client -quiet -connect "127.0.0.1:$PORT" -alpn http/1.1 <"$T/garbage" 2>/dev/null | head -1)" '^HTTP/1.1 400'
if "${CURL[@]}" --tlsv1.0 --tls-max 1.1 -o /dev/null "$URL/healthz" 2>/dev/null; then
	fail "TLS 1.1 was accepted"
else
	pass "TLS 1.1 is refused"
fi
expect_eq "still serving after the bad requests" "$("${CURL[@]}" "$URL/healthz")" ok

serial() { openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null; }
expect_match "serves the first certificate" "$(serial)" 'aegis-inject-one'
# A broken pair (certificate of one, key of the other) is refused; the old one keeps serving.
cp "$T/pki2/tls.crt" "$T/live/tls.crt.new" && mv "$T/live/tls.crt.new" "$T/live/tls.crt"
sleep 2.5
expect_match "a mismatched pair is rejected and logged" "$(cat "$T/inject.log")" 'certificate reload rejected'
expect_match "the old certificate keeps serving" "$(serial)" 'aegis-inject-one'
# The Kubernetes way: both files replaced (here by rename), picked up without a restart.
cp "$T/pki2/tls.key" "$T/live/tls.key.new" && mv "$T/live/tls.key.new" "$T/live/tls.key"
for _ in $(seq 1 50); do [[ "$(serial)" == *aegis-inject-two* ]] && break; sleep 0.1; done
expect_match "a new certificate is served without a restart" "$(serial)" 'aegis-inject-two'
expect_eq "requests verify against the new CA" \
	"$(curl -sS --max-time 5 --cacert "$T/pki2/ca.crt" "$URL/healthz")" ok
expect_eq "aegis-inject is still the same process" "$(kill -0 "$INJECT_PID" && echo alive)" alive
CURL=(curl -sS --max-time 10 --cacert "$T/pki2/ca.crt")

# ---- 3. aegisctl inject: the same pod template as the webhook ----
"$AEGIS_BIN/aegisctl" inject -f "$FIX/deployment.yaml" >"$T/dep.yaml" 2>"$T/dep.err"
expect_eq "aegisctl inject -f deployment.yaml exits 0" "$?" 0
"$PY" - "$FIX/deployment.yaml" "$T/review.json" <<'PY'
import json, sys, yaml
dep = list(yaml.safe_load_all(open(sys.argv[1])))[0]
tmpl = dep["spec"]["template"]
json.dump({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "ctl", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
    "namespace": "shop", "object": tmpl}}, open(sys.argv[2], "w"))
PY
# The webhook must use the same config as aegisctl's default (built in) for the comparison: the deploy
# config equals the built-in one (checked below), so the running server is fine.
post "$T/review.json" "$T/review.out" >/dev/null
expect_eq "aegisctl's template equals the webhook's patch applied by python3-jsonpatch" "$("$PY" - "$T/dep.yaml" "$T/review.json" "$T/review.out" <<'PY'
import base64, json, sys, yaml, jsonpatch
docs = list(yaml.safe_load_all(open(sys.argv[1])))
src = list(yaml.safe_load_all(open(sys.argv[1].replace("dep.yaml", "dep.yaml"))))
review, resp = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
want = jsonpatch.JsonPatch(json.loads(base64.b64decode(resp["response"]["patch"]))).apply(review["request"]["object"])
got = docs[0]["spec"]["template"]
print("ok" if got == want and len(docs) == 2 and docs[1]["kind"] == "Service" else "differ: %s" % json.dumps(got)[:300])
PY
)" ok
expect_eq "aegisctl inject -o json matches its YAML" "$("$AEGIS_BIN/aegisctl" inject -f "$FIX/deployment.yaml" -o json |
	"$PY" -c "
import json,sys,yaml
objs=[]; dec=json.JSONDecoder(); s=sys.stdin.read(); i=0
while i < len(s):
    s2=s[i:].lstrip()
    if not s2: break
    o,n=dec.raw_decode(s2); objs.append(o); i=len(s)-len(s2)+n
print('ok' if objs==list(yaml.safe_load_all(open('$T/dep.yaml'))) else 'differ')")" ok
expect_eq "aegisctl inject of its own output changes nothing" \
	"$("$AEGIS_BIN/aegisctl" inject -f "$T/dep.yaml" 2>/dev/null | cmp -s - "$T/dep.yaml" && echo same)" same
out=$(cat "$FIX/pod.yaml" | "$AEGIS_BIN/aegisctl" inject -f - | "$PY" -c "import sys,yaml; p=yaml.safe_load(sys.stdin); print([c['name'] for c in p['spec']['containers']], p['spec']['initContainers'][0]['args'])")
expect_eq "aegisctl inject -f - (a Pod from stdin)" "$out" "['sleep', 'aegis-proxy'] ['apply', '--exclude-inbound-ports=15021']"
"$PY" -c "import json,yaml; p=json.load(open('$FIX/pod-bad-annotation.json'))['request']['object']; p['apiVersion']='v1'; print(yaml.safe_dump(p))" >"$T/bad.yaml"
"$AEGIS_BIN/aegisctl" inject -f "$T/bad.yaml" >"$T/bad.out" 2>"$T/bad.err"
expect_eq "aegisctl inject of a bad annotation exits 1" "$?" 1
expect_match "... and names the annotation" "$(cat "$T/bad.err")" 'aegis.io/exclude-outbound-ports'
"$PY" -c "import json,yaml; p=json.load(open('$FIX/pod-opted-out.json'))['request']['object']; print(yaml.safe_dump(p))" >"$T/out.yaml"
"$AEGIS_BIN/aegisctl" inject -f "$T/out.yaml" >"$T/optout.out" 2>"$T/optout.err"
expect_match "aegisctl inject says why an opted-out pod is left alone" "$(cat "$T/optout.err")" 'not injected: opted out'
printf 'a: [1\n' >"$T/broken.yaml"
expect_match "aegisctl inject of broken YAML names file:line" "$("$AEGIS_BIN/aegisctl" inject -f "$T/broken.yaml" 2>&1)" 'broken.yaml:2:1: YAML'

# ---- 4. deploy/ ----
expect_eq "deploy/: manifests" "$("$PY" - "$SRC/deploy" <<'PY'
import glob, sys, yaml
errs, objs = [], {}
for f in sorted(glob.glob(sys.argv[1] + "/*.yaml")):
    for d in yaml.safe_load_all(open(f)):
        if not d:
            continue
        for k in ("apiVersion", "kind", "metadata"):
            if k not in d:
                errs.append("%s: a document without %s" % (f, k))
        objs[(d["kind"], d["metadata"]["name"])] = d
def need(cond, msg):
    if not cond:
        errs.append(msg)
need(("Namespace", "aegis-system") in objs, "namespace aegis-system")
need(objs[("Namespace", "aegis-system")]["metadata"].get("labels", {}).get("aegis-injection") != "enabled", "aegis-system must not be injected")
wh = objs[("MutatingWebhookConfiguration", "aegis-inject")]["webhooks"][0]
need(wh["namespaceSelector"] == {"matchLabels": {"aegis-injection": "enabled"}}, "namespaceSelector")
need(wh["objectSelector"]["matchExpressions"] == [{"key": "aegis.io/inject", "operator": "NotIn", "values": ["false"]}], "objectSelector")
need(wh["sideEffects"] == "None" and wh["admissionReviewVersions"] == ["v1"], "sideEffects/admissionReviewVersions")
need(wh["failurePolicy"] in ("Fail", "Ignore"), "failurePolicy")
need(wh["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}], "rules")
svc = wh["clientConfig"]["service"]
need((svc["namespace"], svc["name"], svc["path"], svc["port"]) == ("aegis-system", "aegis-inject", "/inject", 443), "clientConfig")
isvc = objs[("Service", "aegis-inject")]["spec"]["ports"][0]
idep = objs[("Deployment", "aegis-inject")]["spec"]["template"]["spec"]
c = idep["containers"][0]
need(isvc["port"] == 443 and isvc["targetPort"] == c["ports"][0]["containerPort"], "Service 443 -> container port")
args = c["args"]
need(args[args.index("--listen") + 1].endswith(":%d" % c["ports"][0]["containerPort"]), "--listen port")
need(c["command"] == ["aegis-inject"] and "--cert" in args and "--key" in args and "--config" in args, "inject args")
need(objs[("Deployment", "aegis-inject")]["spec"]["template"]["metadata"]["labels"].get("aegis.io/inject") == "false", "inject pods opt out")
xsvc = sorted(p["port"] for p in objs[("Service", "aegis-xds")]["spec"]["ports"])
need(xsvc == [15010, 15012], "aegis-xds ports %s" % xsvc)
xc = objs[("Deployment", "aegis-xds")]["spec"]["template"]["spec"]["containers"][0]
need(xc["command"] == ["aegis-xds"] and "--config-root" in xc["args"], "aegis-xds args")
need(objs[("ServiceAccount", "aegis-xds")] and objs[("ServiceAccount", "aegis-inject")], "service accounts")
rules = objs[("ClusterRole", "aegis-xds")]["rules"]
groups = {g for r in rules for g in r["apiGroups"]}
need(groups == {"networking.istio.io", "", "discovery.k8s.io"}, "ClusterRole groups %s" % groups)
need(all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules), "ClusterRole is read-only")
cm = objs[("ConfigMap", "aegis-inject")]["data"]["config.yaml"]
need(cm == open(sys.argv[1] + "/config/inject.yaml").read(), "ConfigMap config.yaml differs from deploy/config/inject.yaml")
print("; ".join(errs) if errs else "ok")
PY
)" ok
"$PY" -c "import yaml; print(list(yaml.safe_load_all(open('$SRC/deploy/30-aegis-inject.yaml')))[0]['data']['config.yaml'], end='')" >"$T/cm.yaml"
expect_eq "the ConfigMap's config loads in aegis-inject (--check-config)" \
	"$("$AEGIS_BIN/aegis-inject" --check-config --config "$T/cm.yaml" >/dev/null && echo ok)" ok
expect_eq "the deploy config is the built-in default (aegisctl inject without --config matches the cluster)" \
	"$(cmp -s <("$AEGIS_BIN/aegis-inject" --check-config --config "$T/cm.yaml") <("$AEGIS_BIN/aegis-inject" --check-config) && echo same)" same
printf 'image: x\nproxy:\n  argz: []\n' >"$T/badcfg.yaml"
out=$("$AEGIS_BIN/aegis-inject" --listen 127.0.0.1:0 --cert "$T/live/tls.crt" --key "$T/live/tls.key" --config "$T/badcfg.yaml" 2>&1)
expect_eq "a bad config stops aegis-inject (exit 1)" "$?" 1
expect_match "... with file:line:column" "$out" 'badcfg.yaml:3:3: unknown key .argz.'
out=$("$AEGIS_BIN/aegis-inject" --listen 127.0.0.1:0 --cert "$T/pki1/tls.crt" --key "$T/pki2/tls.key" 2>&1)
expect_match "a mismatched certificate stops aegis-inject at start-up" "$out" 'cannot load key.*mismatch|key does not match'
expect_eq "deploy/webhook-cert.sh makes a chain for the Service name" "$(bash "$SRC/deploy/webhook-cert.sh" --dry-run --out "$T/wc" >/dev/null &&
	openssl verify -CAfile "$T/wc/ca.crt" -verify_hostname aegis-inject.aegis-system.svc "$T/wc/tls.crt" 2>&1)" "$T/wc/tls.crt: OK"
# The Dockerfile cannot be built here (no Docker engine); its build scripts can be checked.
expect_eq "Dockerfile's scripts parse and the runtime package list resolves" "$(bash -n "$SRC/scripts/setup.sh" &&
	bash "$SRC/deploy/image/runtime-packages.sh" "$AEGIS_BIN/aegis-inject" "$AEGIS_BIN/aegisctl" | grep -cx 'libjansson4\|libyaml-0-2\|libssl3\|libnghttp2-14')" 4

# ---- 5. the injected pod in a pod made of network namespaces ----
if [ "$(id -u)" -ne 0 ] || [ ! -x "$AEGIS_BIN/aegis-iptables" ] || [ ! -x "$AEGIS_BIN/aegis-proxy" ] || ! command -v dig >/dev/null; then
	echo "skip - pod run (needs root, aegis-iptables, aegis-proxy, dig)"
else
	# The cluster config with the only differences a netns pod needs: the mesh from files instead of
	# aegis-xds (no control plane runs here) and a certificate directory that exists.
	mkdir -p "$T/certs"
	chmod 0755 "$T" "$T/certs"
	"$PY" - "$SRC/deploy/config/inject.yaml" "$T/pod-config.yaml" "$SRC/examples/mesh" "$T/certs" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
a = c["proxy"]["args"]
i = a.index("--xds-address"); a[i:i + 2] = ["--config", sys.argv[3]]
i = a.index("--cert-dir"); a[i + 1] = sys.argv[4]
c["certificates"]["mountPath"] = sys.argv[4]
yaml.safe_dump(c, open(sys.argv[2], "w"))
PY
	"$AEGIS_BIN/aegisctl" inject -f "$FIX/pod.yaml" --config "$T/pod-config.yaml" -o json >"$T/runpod.json"
	"$PY" - "$T/runpod.json" "$T/run" <<'PY'
import json, os, re, sys
pod = json.load(open(sys.argv[1]))
env = {"POD_NAMESPACE": pod["metadata"].get("namespace", "default"), "POD_NAME": pod["metadata"]["name"]}
expand = lambda s: re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), s)  # the kubelet's $(VAR)
os.makedirs(sys.argv[2], exist_ok=True)
def out(name, words):
    open(os.path.join(sys.argv[2], name), "w").write("\0".join(expand(w) for w in words))
init = [c for c in pod["spec"]["initContainers"] if c["name"] == "aegis-init"][0]
proxy = [c for c in pod["spec"]["containers"] if c["name"] == "aegis-proxy"][0]
out("init", init["command"] + init["args"])
out("proxy", proxy["command"] + proxy["args"])
g = proxy["readinessProbe"]["httpGet"]
open(os.path.join(sys.argv[2], "probe"), "w").write("%s %s" % (g["port"], g["path"]))
PY
	out=$(
		. "$SRC/tests/lib/pod.sh"
		pod_find_bins
		fails=0
		r() { if [ "$1" = "$2" ]; then echo "ok - $3"; else echo "FAIL - $3: got [$1], want [$2]"; fails=$((fails + 1)); fi; }
		mapfile -d '' INIT <"$T/run/init"
		mapfile -d '' PROXY <"$T/run/proxy"
		read -r PROBE_PORT PROBE_PATH <"$T/run/probe"
		# The kubelet's httpGet: from the node to the pod IP, through the pod's capture rules.
		probe() { node_exec curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$POD_ADDR:$PROBE_PORT$PROBE_PATH"; }
		r "${INIT[*]}" "aegis-iptables apply --exclude-inbound-ports=$PROBE_PORT" \
			"init container runs aegis-iptables apply, the probe port kept out of inbound capture"
		pod_init && pod_create || { echo "FAIL - pod_create"; exit 1; }
		pod_start_standin upstream node 192.0.2.53 "$NODE_ADDR:53" >/dev/null || { echo "FAIL - standin"; exit 1; }
		# The init container: its command, resolved from the image's PATH (here AEGIS_BIN), as root.
		pod_exec "$POD_BIN/${INIT[0]}" "${INIT[@]:1}" >"$POD_RUN/init.log" 2>&1
		r "$?" 0 "the init container's command applies the capture"
		r "$(pod_exec iptables-save -t nat | grep -c 'REDIRECT --to-ports 15053')" 2 "DNS capture rules are in the pod"
		# Before the sidecar runs, the readiness probe fails.
		r "$(probe)" 000 "readiness probe fails while the sidecar is down"
		pod_spawn proxy proxy "$POD_BIN/${PROXY[0]}" "${PROXY[@]:1}"
		for _ in $(seq 1 300); do [ "$(probe)" = 200 ] && break; sleep 0.1; done
		r "$(probe)" 200 "the sidecar's readiness probe (httpGet from the node to the status port) passes"
		r "$(node_exec curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$POD_ADDR:$PROBE_PORT/config_dump")" 404 \
			"the status port serves no admin page"
		r "$(node_exec curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$POD_ADDR:15000/healthz/ready")" 000 \
			"the admin port is not reachable from outside the pod"
		ans=$(pod_exec dig +short +time=2 +tries=2 reviews.default.svc.cluster.local A)
		r "$ans" 10.96.10.11 "the app's DNS is answered by the injected sidecar through the capture"
		ans=$(pod_exec dig +short +time=2 +tries=2 x.example A)
		r "$ans" 192.0.2.53 "a non-mesh name is forwarded upstream by the sidecar"
		[ "$fails" -eq 0 ] || cat "$POD_RUN/proxy.log" "$POD_RUN/init.log" | tail -20
		exit "$fails"
	)
	echo "$out"
	AEGIS_PASSES=$((AEGIS_PASSES + $(grep -c '^ok - ' <<<"$out")))
	AEGIS_FAILS=$((AEGIS_FAILS + $(grep -c '^FAIL - ' <<<"$out")))
fi

kill "$INJECT_PID" 2>/dev/null
wait "$INJECT_PID" 2>/dev/null
expect_match "aegis-inject stops cleanly on SIGTERM" "$(tail -1 "$T/inject.log")" '"msg":"stopped"'
expect_eq "aegis-inject logged no error besides the deliberate reload failure" \
	"$(grep '"level":"error"' "$T/inject.log" | grep -vc 'certificate reload rejected')" 0
expect_eq "no sanitizer report from aegis-inject (ASan/UBSan builds)" \
	"$(grep -c 'Sanitizer\|runtime error' "$T/inject.log")" 0
finish
