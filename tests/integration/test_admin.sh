#!/usr/bin/env bash
# The admin endpoint of a real aegis-proxy on the example mesh, driven with curl and aegisctl: every
# endpoint (status codes, filters, content types), promtool on /stats/prometheus, the log level changed
# over POST /logging and visible in the log, every aegisctl subcommand in every output format, and the
# loopback-only rule for --admin.
source "$(dirname "$0")/../lib/common.sh"

PORT=$(free_port)
APORT=$(free_port)
ADMIN="127.0.0.1:$APORT"
CTL="$AEGIS_BIN/aegisctl"
cat >"$AEGIS_TMP/resolv.conf" <<RC
nameserver 127.0.0.1
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
RC

start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --namespace default --cluster east \
	--resolv-conf "$AEGIS_TMP/resolv.conf" --dns-listen "127.0.0.1:$PORT" --admin "$ADMIN"
PROXY=$LAST_PID
for _ in $(seq 1 100); do curl -s -o /dev/null "http://$ADMIN/healthz/ready" && break; sleep 0.1; done
wait_dns "$PORT" reviews.default.svc.cluster.local || { cat "$AEGIS_TMP/proxy.log"; fail "proxy did not start"; finish; exit 1; }

get() { curl -s --max-time 5 "http://$ADMIN$1"; }
code() { curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@"; }
jqp() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# Readiness: the file source loads synchronously, so the proxy is ready at once (the 503 before the first
# table is covered by tests/unit/test_admin.c, test_sections_ready_flips).
expect_eq "ready: 200" "$(code "http://$ADMIN/healthz/ready")" "200"
expect_eq "ready: body" "$(get /healthz/ready)" "ready"
expect_match "admin listening is logged" "$(grep 'admin listening' "$AEGIS_TMP/proxy.log")" "\"addr\":\"$ADMIN\""

# /config_dump: every section, @type, filters, errors.
ALL=$(get /config_dump)
expect_eq "config_dump sections" "$(jqp "' '.join(c['@type'].split('.')[-1] for c in d['configs'])" <<<"$ALL")" \
	"ServerConfigDump DnsConfigDump SearchConfigDump ConfigConfigDump ListenersConfigDump UpstreamsConfigDump CacheConfigDump"
expect_eq "content type json" "$(curl -s -o /dev/null -w '%{content_type}' "http://$ADMIN/config_dump")" "application/json"
DNS=$(get '/config_dump?resource=dns')
expect_eq "resource filter: one section" "$(jqp "len(d['configs'])" <<<"$DNS")" "1"
expect_eq "dns: table_names = names listed" "$(jqp "d['configs'][0]['table_names'] == len(d['configs'][0]['names'])" <<<"$DNS")" "True"
expect_eq "dns: reviews address" \
	"$(jqp "[n['addresses'] for n in d['configs'][0]['names'] if n['name']=='reviews.default.svc.cluster.local.'][0]" <<<"$DNS")" \
	"['10.96.10.11']"
expect_eq "dns: wildcard node" \
	"$(jqp "[n['kind'] for n in d['configs'][0]['names'] if n['name']=='*.wikipedia.org.'][0]" <<<"$DNS")" "wildcard"
expect_match "dns: SRV node" "$(jqp "[n['srv'] for n in d['configs'][0]['names'] if n['kind']=='srv'][0]" <<<"$DNS")" "'port': "
F=$(get '/config_dump?resource=dns&name=cart')
expect_eq "name filter (substring)" "$(jqp "sorted(set('cart' in n['name'] for n in d['configs'][0]['names']))" <<<"$F")" "[True]"
F=$(get '/config_dump?resource=dns&name=Legacy.Company.Internal.')
expect_eq "name filter (a trailing dot: exact, any case)" "$(jqp "[n['name'] for n in d['configs'][0]['names']]" <<<"$F")" \
	"['legacy.company.internal.']"
expect_eq "search section" "$(get '/config_dump?resource=search' | jqp "d['configs'][0]['suffixes']")" \
	"['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']"
expect_eq "config section: version 1" "$(get '/config_dump?resource=config' | jqp "d['configs'][0]['version']")" "1"
expect_eq "listeners section" "$(get '/config_dump?resource=listeners' | jqp "[l['address'] for l in d['configs'][0]['listeners']]")" \
	"['127.0.0.1:$PORT', '$ADMIN']"
expect_eq "upstreams section: the resolv.conf nameserver" \
	"$(get '/config_dump?resource=upstreams' | jqp "[(u['address'], u['zone'], u['health']) for u in d['configs'][0]['servers']]")" \
	"[('127.0.0.1:53', '.', 'up')]"
expect_eq "cache section" "$(get '/config_dump?resource=cache' | jqp "sorted(k for k in d['configs'][0] if k.endswith('entries'))")" \
	"['negative_entries', 'positive_entries']"
expect_eq "unknown section: 404" "$(code "http://$ADMIN/config_dump?resource=xds")" "404"
expect_eq "unknown path: 404" "$(code "http://$ADMIN/nope")" "404"
expect_eq "DELETE: 405" "$(code -X DELETE "http://$ADMIN/config_dump")" "405"
expect_match "405 has Allow" "$(curl -s -D - -o /dev/null -X DELETE "http://$ADMIN/config_dump")" 'Allow: GET, HEAD'
expect_eq "bad escape: 400" "$(code "http://$ADMIN/config_dump?resource=%zz")" "400"
expect_eq "header over 8 KiB: 431" "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "http://$ADMIN/healthz/ready")" "431"
expect_eq "body over 64 KiB: 413" "$(head -c 70000 /dev/zero | code -X POST --data-binary @- "http://$ADMIN/logging?level=info")" "413"

# Keep-alive: curl reuses one connection for two URLs.
REUSE=$(curl -sv "http://$ADMIN/healthz/ready" "http://$ADMIN/healthz/ready" 2>&1 | grep -c 'Re-using existing connection')
expect_eq "keep-alive reuses the connection" "$REUSE" "1"

# /stats/prometheus: promtool's linter, and the expected families.
dig @127.0.0.1 -p "$PORT" +short reviews.default.svc.cluster.local A >/dev/null
kdig @127.0.0.1 -p "$PORT" +tcp +short +retry=0 reviews.default.svc.cluster.local A >/dev/null
get /stats/prometheus >"$AEGIS_TMP/metrics.txt"
PROMOUT=$(promtool check metrics <"$AEGIS_TMP/metrics.txt" 2>&1); PROMRC=$?
expect_eq "promtool check metrics passes" "$PROMRC:$PROMOUT" "0:"
M=$(cat "$AEGIS_TMP/metrics.txt")
expect_match "requests: joint series (udp, A, NOERROR, table)" "$M" \
	$'\naegis_dns_requests_total\\{transport="udp",type="A",rcode="NOERROR",source="table"\\} [1-9]'
expect_match "requests: joint series (tcp, A, NOERROR, table)" "$M" \
	$'\naegis_dns_requests_total\\{transport="tcp",type="A",rcode="NOERROR",source="table"\\} [1-9]'
expect_match "queries received by transport (udp)" "$M" $'\naegis_dns_queries_received_total\\{transport="udp"\\} [1-9]'
expect_match "queries received by transport (tcp)" "$M" $'\naegis_dns_queries_received_total\\{transport="tcp"\\} [1-9]'
expect_match "answer latency histogram counts the queries" "$M" $'\naegis_dns_answer_duration_seconds_count [2-9]'
expect_match "table names gauge" "$M" $'\naegis_dns_table_names [1-9][0-9]*\n'
expect_match "config version" "$M" $'\naegis_config_version 1\n'
expect_match "build info" "$M" 'aegis_build_info\{version="[0-9.]+"\} 1'
expect_match "upstream health gauge" "$M" 'aegis_upstream_server_up\{server="127\.0\.0\.1:53",zone="\."\} 1'
expect_match "cache entries gauge" "$M" 'aegis_cache_entries\{kind="positive"\} [0-9]+'
expect_eq "metrics content type" "$(curl -s -o /dev/null -w '%{content_type}' "http://$ADMIN/stats/prometheus")" \
	"text/plain; version=0.0.4; charset=utf-8"

# /logging: GET shows, a GET with a level is refused, POST changes it and the debug lines appear.
expect_eq "logging level" "$(get /logging)" "level: info"
expect_eq "GET cannot change the level" "$(code "http://$ADMIN/logging?level=debug")" "405"
expect_eq "POST changes the level" "$(curl -s -X POST "http://$ADMIN/logging?level=debug")" "level: debug"
expect_eq "bad level: 400" "$(code -X POST "http://$ADMIN/logging?level=loud")" "400"
get /healthz/ready >/dev/null
for _ in $(seq 1 20); do grep -q '"msg":"admin request"' "$AEGIS_TMP/proxy.log" && break; sleep 0.1; done
expect_match "level change logged" "$(grep 'log level changed' "$AEGIS_TMP/proxy.log")" '"from":"info","to":"debug"'
expect_match "debug lines now in the log" "$(grep '"level":"debug"' "$AEGIS_TMP/proxy.log" | tail -1)" '"msg":"admin request"'
curl -s -X POST "http://$ADMIN/logging?level=info" >/dev/null

# /dns/lookup answers from the table without a packet.
L=$(get '/dns/lookup?name=api.example.com.default.svc.cluster.local&type=A')
expect_eq "lookup: alias through the search list" "$(jqp "(d['match'], d['rcode'], [a['type'] for a in d['answer']])" <<<"$L")" \
	"('alias', 'NOERROR', ['CNAME', 'A'])"
expect_eq "lookup: PTR from an address" "$(get '/dns/lookup?name=10.96.10.11' | jqp "d['answer'][0]['data']")" \
	"reviews.default.svc.cluster.local."
expect_eq "lookup: forwarded name" "$(get '/dns/lookup?name=www.example.org' | jqp "d['forwarded']")" "True"
expect_eq "lookup: bad type 400" "$(code "http://$ADMIN/dns/lookup?name=x&type=NOPE")" "400"
expect_eq "lookup: no name 400" "$(code "http://$ADMIN/dns/lookup")" "400"
expect_eq "lookup agrees with dig" "$(get '/dns/lookup?name=ratings.default.svc.cluster.local&type=AAAA' | jqp "d['answer'][0]['data']")" \
	"$(dig @127.0.0.1 -p "$PORT" +short ratings.default.svc.cluster.local AAAA)"

# aegisctl: every subcommand and output format.
T=$("$CTL" proxy-config dns --admin "$ADMIN")
expect_match "pc dns: table header" "$(head -1 <<<"$T")" '^NAME +KIND +ADDRESSES'
expect_match "pc dns: a row" "$T" $'\nreviews\\.default\\.svc\\.cluster\\.local\\. +host +10\\.96\\.10\\.11'
HDR=$(head -1 <<<"$T"); ROW=$(grep '^reviews.default.svc.cluster.local. ' <<<"$T")
expect_eq "pc dns: columns aligned" "$(awk -v h="$HDR" 'BEGIN{print index(h, "KIND")}')" \
	"$(awk -v r="$ROW" 'BEGIN{print index(r, "host")}')"
expect_eq "pc dns -o json is the dump" "$("$CTL" pc dns --admin "$ADMIN" -o json | jqp "d['configs'][0]['@type']")" \
	"type.aegis.io/aegis.admin.v1.DnsConfigDump"
Y=$("$CTL" proxy-config dns --admin "$ADMIN" -o yaml)
expect_eq "pc dns -o yaml parses to the same data" \
	"$(python3 -c 'import sys,yaml,json; print(yaml.safe_load(sys.argv[1]) == json.loads(sys.argv[2]))' "$Y" "$(get '/config_dump?resource=dns')")" "True"
for s in search config listeners server upstreams cache; do
	for o in table json yaml; do
		OUT=$("$CTL" proxy-config "$s" --admin "$ADMIN" -o "$o" 2>&1); RC=$?
		expect_eq "pc $s -o $o exits 0" "$RC" "0"
		[ "$o" = json ] && expect_eq "pc $s -o json valid" "$(jqp "len(d['configs'])" <<<"$OUT")" "1"
		[ "$o" = yaml ] && expect_eq "pc $s -o yaml valid" \
			"$(python3 -c 'import sys,yaml; print(len(yaml.safe_load(sys.stdin)["configs"]))' <<<"$OUT")" "1"
	done
done
expect_match "pc search table" "$("$CTL" pc search --admin "$ADMIN")" 'suffixes +default\.svc\.cluster\.local,svc\.cluster\.local,cluster\.local'
expect_match "pc config table" "$("$CTL" pc config --admin "$ADMIN")" $'\nversion +1\n'
expect_match "pc upstreams table" "$("$CTL" pc upstreams --admin "$ADMIN")" $'^ADDRESS +ZONE +HEALTH .*\n127\\.0\\.0\\.1:53 +\\. +up '

A=$("$CTL" proxy-config all --admin "$ADMIN")
expect_eq "pc all: every section" "$(grep '^== ' <<<"$A" | tr '\n' ' ')" "== server == == dns == == search == == config == == listeners == == upstreams == == cache == "
expect_eq "pc all -o yaml" "$("$CTL" pc all --admin "$ADMIN" -o yaml | python3 -c 'import sys,yaml; print(len(yaml.safe_load(sys.stdin)["configs"]))')" "7"
for s in xds routes clusters endpoints secrets; do
	OUT=$("$CTL" proxy-config "$s" --admin "$ADMIN" 2>&1); RC=$?
	expect_eq "pc $s: not available, exit 3" "$RC:$OUT" "3:aegisctl: not available in this proxy (section $s)"
done
OUT=$("$CTL" proxy-config bogus --admin "$ADMIN" 2>&1); RC=$?
expect_eq "pc unknown section: usage exit 2" "$RC" "2"
OUT=$("$CTL" proxy-config dns --admin "$ADMIN" -o xml 2>&1); RC=$?
expect_eq "bad -o: usage exit 2" "$RC" "2"
OUT=$("$CTL" proxy-config dns --admin "127.0.0.1:$(free_port)" 2>&1); RC=$?
expect_eq "unreachable admin: exit 1" "$RC" "1"
expect_match "unreachable admin: message" "$OUT" 'cannot connect to the proxy admin'

L=$("$CTL" lookup api.example.com.default.svc.cluster.local --admin "$ADMIN")
expect_match "lookup: dig-like header" "$L" 'status: NOERROR, source: table, match: alias'
expect_match "lookup: answer lines" "$L" $'ANSWER SECTION:\napi\\.example\\.com\\.default\\.svc\\.cluster\\.local\\.\t30\tIN\tCNAME\tapi\\.example\\.com\\.\napi\\.example\\.com\\.\t30\tIN\tA\t240\\.240\\.'
expect_match "lookup SRV" "$("$CTL" lookup _https._tcp.api.example.com SRV --admin "$ADMIN")" $'\tSRV\t0 [0-9]+ 443 api\\.example\\.com\\.'
expect_match "lookup forwarded" "$("$CTL" lookup www.example.org --admin "$ADMIN")" 'forwards this query upstream'
expect_eq "lookup -o json" "$("$CTL" lookup legacy.company.internal AAAA --admin "$ADMIN" -o json | jqp "d['answer'][0]['data']")" "2001:db8::10"
expect_match "lookup -o yaml" "$("$CTL" lookup legacy.company.internal --admin "$ADMIN" -o yaml)" 'data: 192\.0\.2\.10'
OUT=$("$CTL" lookup x.example NOPE --admin "$ADMIN" 2>&1); RC=$?
expect_eq "lookup bad type: exit 1" "$RC:$OUT" "1:aegisctl: lookup failed: unknown record type"

V=$("$CTL" version --admin "$ADMIN")
expect_match "version: client" "$V" '^client version: [0-9]+\.[0-9]+\.[0-9]+'
expect_match "version: proxy" "$V" $'\nproxy version: [0-9]+\\.[0-9]+\\.[0-9]+ \\(admin '"$ADMIN"'\)'


expect_eq "proxy still running" "$(kill -0 "$PROXY" 2>/dev/null && echo yes)" "yes"

# --admin must be loopback unless explicitly allowed.
OUT=$("$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --dns-listen "127.0.0.1:$(free_port)" \
	--admin "0.0.0.0:$(free_port)" 2>&1); RC=$?
expect_eq "non-loopback admin refused: exit 2" "$RC" "2"
expect_match "non-loopback admin refused: message" "$OUT" 'loopback'
P2=$(free_port); A2=$(free_port)
start_bg proxy2 "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east --dns-listen "127.0.0.1:$P2" \
	--admin "0.0.0.0:$A2" --admin-allow-non-loopback
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$A2/healthz/ready" && break; sleep 0.1; done
expect_eq "non-loopback admin with the flag" "$(code "http://127.0.0.1:$A2/healthz/ready")" "200"
kill "$LAST_PID" 2>/dev/null
OUT=$("$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --dns-listen "127.0.0.1:$(free_port)" \
	--admin "$ADMIN" 2>&1); RC=$?
expect_eq "admin port in use: exit 1" "$RC" "1"
expect_match "admin port in use: logged" "$OUT" 'cannot listen \(admin\)'

finish
