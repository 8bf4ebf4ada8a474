#!/usr/bin/env bash
# DNSSEC validation of forwarded answers (docs/security.md): NSD on loopback serves zones signed here
# with ldns-keygen/ldns-signzone (example.test with NSEC, nsec3.test with NSEC3, an unsigned child
# delegated without DS, and other.test outside every anchor); the proxy validates with the generated
# KSK as trust anchor (a DS file for example.test, a DNSKEY file for nsec3.test). Secure answers get AD,
# denials are proven, a record changed after signing / expired signatures / stripped signatures are
# SERVFAIL, +cd passes the tampered record, and a proxy without --dnssec-validate never sets AD.
source "$(dirname "$0")/../lib/common.sh"

for tool in nsd ldns-keygen ldns-signzone dig; do
	command -v "$tool" >/dev/null || { echo "skip: $tool missing (scripts/setup.sh test)"; exit 77; }
done

Z=$AEGIS_TMP/zones
mkdir -p "$Z"
cd "$Z" || exit 1

# ---- zones, keys, signatures ----
cat >example.test.zone <<'EOF'
$ORIGIN example.test.
$TTL 300
@ IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
www IN A 192.0.2.1
tampered IN A 192.0.2.2
expired IN A 192.0.2.3
stripped IN A 192.0.2.4
fresh IN A 192.0.2.5
alias IN CNAME www
*.wild IN A 192.0.2.60
*.wc IN CNAME www
dn IN DNAME example.test.
unsigned IN NS ns.example.test.
EOF
cat >unsigned.example.test.zone <<'EOF'
$ORIGIN unsigned.example.test.
$TTL 300
@ IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 300
@ IN NS ns.example.test.
www IN A 192.0.2.50
EOF
cat >nsec3.test.zone <<'EOF'
$ORIGIN nsec3.test.
$TTL 300
@ IN SOA ns.nsec3.test. admin.nsec3.test. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
www IN A 192.0.2.30
*.wild IN A 192.0.2.61
unsigned IN NS ns.nsec3.test.
EOF
cat >unsigned.nsec3.test.zone <<'EOF'
$ORIGIN unsigned.nsec3.test.
$TTL 300
@ IN SOA ns.nsec3.test. admin.nsec3.test. 1 3600 600 86400 300
@ IN NS ns.nsec3.test.
www IN A 192.0.2.31
EOF
cat >other.test.zone <<'EOF'
$ORIGIN other.test.
$TTL 300
@ IN SOA ns.other.test. admin.other.test. 1 3600 600 86400 300
@ IN NS ns
ns IN A 127.0.0.1
www IN A 192.0.2.40
EOF
ksk=$(ldns-keygen -a ECDSAP256SHA256 -k example.test) && zsk=$(ldns-keygen -a ECDSAP256SHA256 example.test) &&
	ldns-signzone -o example.test example.test.zone "$zsk" "$ksk" &&
	ldns-signzone -o example.test -f expired.signed -i 20190101000000 -e 20200101000000 example.test.zone "$zsk" "$ksk" &&
	k3=$(ldns-keygen -a ECDSAP256SHA256 -k nsec3.test) &&
	ldns-signzone -n -o nsec3.test nsec3.test.zone "$k3" || { fail "signing the test zones"; finish; exit 1; }
cp "$ksk.ds" anchor-example.ds
cp "$k3.key" anchor-nsec3.key
# After signing: one record changed, one set of signatures replaced by expired ones, one removed.
sig_line() { grep -P "^$1\.\t[0-9]+\tIN\tRRSIG\tA " "$2"; }
expired_sig=$(sig_line expired.example.test expired.signed)
python3 - example.test.zone.signed "$expired_sig" <<'PY'
import re, sys
path, expired = sys.argv[1], sys.argv[2]
out = []
for line in open(path):
    if line.startswith("tampered.example.test.") and "\tA\t192.0.2.2" in line:
        line = line.replace("192.0.2.2", "192.0.2.99")
    elif re.match(r"expired\.example\.test\.\t\d+\tIN\tRRSIG\tA ", line):
        line = expired + "\n"
    elif re.match(r"stripped\.example\.test\.\t\d+\tIN\tRRSIG\tA ", line):
        continue
    out.append(line)
open(path, "w").write("".join(out))
PY
expect_match "tampered record in the served zone" "$(grep '^tampered.example.test.' example.test.zone.signed)" "192\.0\.2\.99"
expect_match "expired signature in the served zone" "$(sig_line expired.example.test example.test.zone.signed)" " 20200101000000 "
expect_eq "stripped signature gone from the served zone" "$(sig_line stripped.example.test example.test.zone.signed)" ""

# ---- the authoritative peer ----
NSD_PORT=$(free_port)
cat >nsd.conf <<EOF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "$Z"
    database: ""
    zonelistfile: "$Z/zone.list"
    xfrdfile: "$Z/xfrd.state"
    xfrdir: "$Z"
    pidfile: "$Z/nsd.pid"
    logfile: "$Z/nsd.log"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.test
    zonefile: "$Z/example.test.zone.signed"
zone:
    name: unsigned.example.test
    zonefile: "$Z/unsigned.example.test.zone"
zone:
    name: nsec3.test
    zonefile: "$Z/nsec3.test.zone.signed"
zone:
    name: unsigned.nsec3.test
    zonefile: "$Z/unsigned.nsec3.test.zone"
zone:
    name: other.test
    zonefile: "$Z/other.test.zone"
EOF
start_bg nsd nsd -d -c "$Z/nsd.conf"
wait_dns "$NSD_PORT" www.example.test || { cat "$AEGIS_TMP/nsd.log" "$Z/nsd.log"; fail "nsd did not start"; finish; exit 1; }

# ---- usage errors: no anchor, bad anchor file (file:line) ----
"$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --resolv-conf /dev/null --dnssec-validate \
	--upstream "127.0.0.1:$NSD_PORT" >"$AEGIS_TMP/noanchor.out" 2>&1
expect_eq "--dnssec-validate without --trust-anchor is a usage error" "$?" "2"
expect_match "no-anchor message" "$(cat "$AEGIS_TMP/noanchor.out")" "needs at least one --trust-anchor"
printf 'example.test. 3600 IN DS 29991 13 2 00aa\n; comment\nexample.test. IN A 192.0.2.1\n' >"$Z/bad.anchor"
timeout 20 "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --resolv-conf /dev/null \
	--dns-listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" --user 0 \
	--upstream "127.0.0.1:$NSD_PORT" --dnssec-validate --trust-anchor "$Z/bad.anchor" >"$AEGIS_TMP/bad.out" 2>&1
expect_eq "bad trust anchor file stops start-up" "$?" "1"
expect_match "bad anchor reported with file:line" "$(cat "$AEGIS_TMP/bad.out")" "bad\.anchor:3: trust anchor record is not DS or DNSKEY"

# ---- the validating proxy ----
PORT=$(free_port)
ADMIN=$(free_port)
start_bg proxy "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east --namespace default \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" \
	--upstream "127.0.0.1:$NSD_PORT" --upstream-timeout 2000 --upstream-deadline 10000 \
	--dnssec-validate --trust-anchor "$Z/anchor-example.ds" --trust-anchor "$Z/anchor-nsec3.key"
PROXY=$LAST_PID
wait_dns "$PORT" reviews.default.svc.cluster.local || { cat "$AEGIS_TMP/proxy.log"; fail "proxy did not start"; finish; exit 1; }

q() { dig @127.0.0.1 -p "$PORT" +tries=1 +time=8 "$@"; }
flags() { q "$@" | sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p'; }
status() { q "$@" | sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
has_ad() { if [[ " $(flags "$@") " == *" ad "* ]]; then echo ad; else echo no-ad; fi; }
metric() { curl -s "http://127.0.0.1:$ADMIN/stats/prometheus" | awk -v m="$1" '$1 == m {print $2}'; }

out=$(q +dnssec www.example.test A)
expect_match "secure answer with +dnssec has AD" "$(echo "$out" | sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p')" "(^| )ad( |$)"
expect_match "secure answer with +dnssec carries its RRSIG" "$out" "RRSIG[[:space:]]+A 13 3"
out=$(q +nodnssec +adflag www.example.test A)
expect_match "secure answer with +adflag (no DO) has AD" "$(echo "$out" | sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p')" "(^| )ad( |$)"
expect_eq "RRSIGs stripped without DO" "$(echo "$out" | grep -c RRSIG)" "0"
expect_eq "secure answer data" "$(q +short www.example.test A)" "192.0.2.1"
out=$(q +noedns +noadflag www.example.test A)
expect_eq "no OPT record for a client without EDNS" "$(echo "$out" | grep -c 'OPT PSEUDOSECTION')" "0"
expect_match "answer without EDNS still correct" "$out" "192\.0\.2\.1"
out=$(q +nodnssec nosuch2.example.test A)
expect_eq "no NSEC/RRSIG in a denial without DO" "$(echo "$out" | grep -cE '[[:space:]](NSEC|RRSIG)[[:space:]]')" "0"
expect_match "denial without DO keeps its SOA" "$out" "SOA"
expect_eq "secure answer over TCP" "$(has_ad +tcp +dnssec www.example.test AAAA)" "ad"
expect_eq "no AD when the client asked with neither DO nor AD" "$(has_ad +noadflag www.example.test A)" "no-ad"
expect_eq "cached secure answer keeps AD" "$(has_ad +dnssec www.example.test A)" "ad"
expect_eq "CNAME chain secure" "$(has_ad +dnssec alias.example.test A)" "ad"
expect_eq "wildcard expansion (NSEC proof) answered" "$(q +short x.wild.example.test A)" "192.0.2.60"
expect_eq "wildcard expansion (NSEC proof) secure" "$(has_ad +dnssec y.wild.example.test A)" "ad"
expect_eq "wildcard expansion (NSEC3 proof) secure" "$(has_ad +dnssec y.wild.nsec3.test A)" "ad"
expect_eq "wildcard CNAME to a signed name secure" "$(has_ad +dnssec z.wc.example.test A)" "ad"
expect_match "DNAME with synthesised CNAME answered" "$(q +short www.dn.example.test A)" "192\.0\.2\.1"
expect_eq "DNAME with synthesised CNAME secure" "$(has_ad +dnssec www.dn.example.test A)" "ad"
expect_eq "NXDOMAIN (NSEC) status" "$(status +dnssec nosuch.example.test A)" "NXDOMAIN"
expect_eq "NXDOMAIN proven by NSEC is secure" "$(has_ad +dnssec nosuch.example.test A)" "ad"
expect_eq "NODATA proven by NSEC is secure" "$(has_ad +dnssec www.example.test TXT)" "ad"
expect_eq "NSEC3 zone answer secure (DNSKEY anchor)" "$(has_ad +dnssec www.nsec3.test A)" "ad"
expect_eq "NXDOMAIN proven by NSEC3 status" "$(status +dnssec nosuch.nsec3.test A)" "NXDOMAIN"
expect_eq "NXDOMAIN proven by NSEC3 is secure" "$(has_ad +dnssec nosuch.nsec3.test A)" "ad"

expect_eq "tampered record is SERVFAIL" "$(status +dnssec tampered.example.test A)" "SERVFAIL"
expect_match "bogus SERVFAIL carries Extended DNS Error 6" "$(q +dnssec tampered.example.test A)" '; EDE: 6 \(DNSSEC Bogus\)'
expect_eq "tampered record is SERVFAIL again (not cached as good)" "$(status tampered.example.test A)" "SERVFAIL"
expect_eq "expired signature is SERVFAIL" "$(status +dnssec expired.example.test A)" "SERVFAIL"
expect_eq "stripped signature is SERVFAIL" "$(status +dnssec stripped.example.test A)" "SERVFAIL"
expect_eq "+cd passes the tampered record" "$(q +cd +short tampered.example.test A)" "192.0.2.99"
expect_eq "+cd answer has no AD" "$(has_ad +cd +dnssec tampered.example.test A)" "no-ad"
# CD answers are stored unvalidated: even a secure name never gets AD from them, fresh or cached.
expect_eq "+cd on a secure name: no AD" "$(has_ad +cd +dnssec www.example.test MX)" "no-ad"
expect_eq "+cd on a secure name: no AD from the cache either" "$(has_ad +cd +dnssec www.example.test MX)" "no-ad"
expect_eq "the same name without CD: AD" "$(has_ad +dnssec www.example.test MX)" "ad"

expect_eq "insecure delegation answered" "$(q +short www.unsigned.example.test A)" "192.0.2.50"
expect_eq "insecure delegation has no AD" "$(has_ad +dnssec www.unsigned.example.test A)" "no-ad"
expect_eq "insecure delegation (NSEC3 proof) answered" "$(q +short www.unsigned.nsec3.test A)" "192.0.2.31"
expect_eq "insecure delegation (NSEC3 proof) has no AD" "$(has_ad +dnssec www.unsigned.nsec3.test A)" "no-ad"
expect_eq "name outside the anchors answered" "$(q +short www.other.test A)" "192.0.2.40"
expect_eq "name outside the anchors has no AD" "$(has_ad +dnssec www.other.test A)" "no-ad"
expect_match "mesh table answer is authoritative" "$(flags +dnssec reviews.default.svc.cluster.local A)" "(^| )aa( |$)"
expect_eq "mesh table answer has no AD" "$(has_ad +dnssec reviews.default.svc.cluster.local A)" "no-ad"

# A warm key cache validates a new name without any DNSKEY/DS query.
fetches=$(metric aegis_dnssec_fetches_total)
expect_eq "fresh name validated secure" "$(has_ad +dnssec fresh.example.test A)" "ad"
expect_eq "warm key cache: no DNSKEY/DS fetch for a new name" "$(metric aegis_dnssec_fetches_total)" "$fetches"

bogus=$(metric 'aegis_dnssec_validations_total{result="bogus"}')
secure=$(metric 'aegis_dnssec_validations_total{result="secure"}')
insecure=$(metric 'aegis_dnssec_validations_total{result="insecure"}')
indet=$(metric 'aegis_dnssec_validations_total{result="indeterminate"}')
if [ "${bogus:-0}" -ge 4 ]; then pass "bogus counted ($bogus)"; else fail "bogus counted: [$bogus]"; fi
if [ "${secure:-0}" -ge 8 ]; then pass "secure counted ($secure)"; else fail "secure counted: [$secure]"; fi
if [ "${insecure:-0}" -ge 3 ]; then pass "insecure counted ($insecure)"; else fail "insecure counted: [$insecure]"; fi
if [ "${indet:-0}" -ge 1 ]; then pass "indeterminate counted ($indet)"; else fail "indeterminate counted: [$indet]"; fi
expect_eq "bogus logged once per name/type" "$(grep -c '"dnssec bogus answer: SERVFAIL".*"name":"tampered.example.test."' "$AEGIS_TMP/proxy.log")" "1"
expect_match "bogus log gives the reason" "$(grep '"name":"expired.example.test."' "$AEGIS_TMP/proxy.log")" "signature expired"
expect_match "stripped log gives the reason" "$(grep '"name":"stripped.example.test."' "$AEGIS_TMP/proxy.log")" "missing signatures"

# ---- validation off: the same answers pass, and AD never appears ----
PORT2=$(free_port)
start_bg proxy-off "$AEGIS_BIN/aegis-proxy" --config "$AEGIS_SRC_DIR/examples/mesh" --cluster east --namespace default \
	--resolv-conf /dev/null --dns-listen "127.0.0.1:$PORT2" --admin "127.0.0.1:$(free_port)" \
	--upstream "127.0.0.1:$NSD_PORT"
wait_dns "$PORT2" reviews.default.svc.cluster.local || { cat "$AEGIS_TMP/proxy-off.log"; fail "second proxy did not start"; finish; exit 1; }
q2() { dig @127.0.0.1 -p "$PORT2" +tries=1 +time=8 "$@"; }
off_flags=$(q2 +dnssec www.example.test A | sed -n 's/.*;; flags: \([a-z ]*\);.*/\1/p')
if [[ " $off_flags " == *" ad "* ]]; then fail "validation off: AD set ($off_flags)"; else pass "validation off: no AD ($off_flags)"; fi
expect_eq "validation off: tampered record passes" "$(q2 +short tampered.example.test A)" "192.0.2.99"

# A clean stop of the validating proxy: under ASan+UBSan any leak or error report lands in its log.
kill -TERM "$PROXY"
for _ in $(seq 1 300); do kill -0 "$PROXY" 2>/dev/null || break; sleep 0.1; done
wait "$PROXY" 2>/dev/null
expect_eq "validating proxy stopped cleanly" "$?" "0"
expect_eq "no sanitizer report" "$(grep -cE 'AddressSanitizer|LeakSanitizer|runtime error' "$AEGIS_TMP/proxy.log")" "0"

finish
