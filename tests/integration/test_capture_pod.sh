#!/usr/bin/env bash
# End-to-end capture tests in a pod made of network namespaces (tests/lib/pod.sh, docs/capture.md).
#
# Part 1 proves the rules with a stand-in DNS responder (tests/lib/dns_standin.py) running as UID 1337 in the
# pod on 127.0.0.1/::1:15053, and a second one in the node namespace on the resolv.conf nameserver: real
# resolvers (dig, glibc getent, musl, Python) reach the pod listener, the proxy's UID is not captured, the
# conntrack zones close the UDP race, apply is idempotent and clean restores direct resolution.
# Part 2 runs the same resolvers against the real aegis-proxy; it is skipped only while the binary is absent.
#
# Needs root (CI runs it as root). Env: AEGIS_BIN (the programs), AEGIS_SRC_DIR (the checkout).
set -uo pipefail

SRC=${AEGIS_SRC_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/lib/pod.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: test_capture_pod needs root (network namespaces and iptables)"
	exit 77
fi
for tool in ip iptables-save ip6tables-save dig getent setpriv "$POD_PYTHON"; do
	if ! command -v "$tool" >/dev/null; then
		echo "FAIL: $tool is missing: run scripts/setup.sh test" >&2
		exit 1
	fi
done
pod_find_bins
if [ ! -x "$POD_IPTABLES" ]; then
	echo "FAIL: $POD_IPTABLES not built" >&2
	exit 1
fi

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
# expect NAME WANT GOT: GOT must contain WANT.
expect() {
	if [[ "$3" == *"$2"* ]]; then ok "$1"; else bad "$1: wanted '$2', got '$3'"; fi
}
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: wanted '$2', got '$3'"; fi
}

DIG=(dig +time=2 +tries=1)
POD_ANSWER=198.51.100.1  # the pod stand-in (where captured queries end up)
NODE_ANSWER=192.0.2.53   # the node responder (what an uncaptured query reaches)

pod_init || exit 1
pod_create || { echo "FAIL: cannot create the pod" >&2; exit 1; }
echo "pod $POD_NS, node $NODE_NS, scratch $POD_RUN"

pod_start_standin upstream node "$NODE_ANSWER" "$NODE_ADDR:53" "[$NODE_ADDR6]:53" || exit 1
start_pod_standin() {
	pod_start_standin standin proxy "$POD_ANSWER" 127.0.0.1:15053 "[::1]:15053" -- \
		--accept 127.0.0.1:15001 --accept "[::1]:15001" --accept 0.0.0.0:15006
}
start_pod_standin || exit 1

# musl client, built now with Debian's musl-tools when present.
MUSL=""
if command -v musl-gcc >/dev/null; then
	if musl-gcc -static -O2 -o "$POD_RUN/musl_resolve" "$SRC/tests/lib/musl_resolve.c" 2>"$POD_RUN/musl.log"; then
		MUSL=$POD_RUN/musl_resolve
	else
		bad "musl-gcc could not build tests/lib/musl_resolve.c: $(cat "$POD_RUN/musl.log")"
	fi
else
	echo "SKIP: musl resolver checks: musl-gcc not installed (Debian package musl-tools)"
fi

addrs_py() { # Python's getaddrinfo, sorted unique addresses
	pod_exec "$POD_PYTHON" -c 'import socket,sys
print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, proto=socket.IPPROTO_TCP)})))' "$1" 2>&1
}
tcp_greeting() { # WHERE ADDR PORT: the first line a TCP connect gets, or the error
	local where=$1
	shift
	"$where" "$POD_PYTHON" -c 'import socket,sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)
    print(s.recv(100).decode().strip())
except OSError as e:
    print("error:", e.__class__.__name__)' "$@" 2>&1
}
aegis_rules() { pod_exec "$1" | grep -c AEGIS; }

# ---------------------------------------------------------------- errors before any rule exists
out=$(pod_exec_proxy "$POD_IPTABLES" apply 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ "$out" == *CAP_NET_ADMIN* ]] && ok "apply without CAP_NET_ADMIN fails and says so" ||
	bad "apply without CAP_NET_ADMIN: rc $rc, '$out'"
out=$(pod_exec unshare -m sh -c 'mount -t tmpfs tmpfs /usr/sbin && mount -t tmpfs tmpfs /usr/bin 2>/dev/null;
	exec "$0" apply' "$POD_IPTABLES" 2>&1)
rc=$?
[ $rc -ne 0 ] && [[ "$out" == *"iptables not found"* ]] && ok "apply without iptables fails and says so" ||
	bad "apply without iptables: rc $rc, '$out'"
expect_eq "no rules after the failed attempts" 0 "$(aegis_rules iptables-save)"

# ---------------------------------------------------------------- part 1: capture with the stand-in
if ! pod_apply_rules >"$POD_RUN/apply.log" 2>&1; then
	bad "aegis-iptables apply: $(cat "$POD_RUN/apply.log")"
	exit 1
fi
ok "aegis-iptables apply"

n0=$(pod_count upstream)
expect "dig UDP to the nameserver is captured" "$POD_ANSWER" \
	"$(pod_exec "${DIG[@]}" +short "@$NODE_ADDR" reviews.default.svc.cluster.local 2>&1)"
t0=$(pod_count standin tcp)
expect "dig +tcp to the nameserver is captured" "$POD_ANSWER" \
	"$(pod_exec "${DIG[@]}" +tcp +short "@$NODE_ADDR" reviews.default.svc.cluster.local 2>&1)"
expect_eq "the TCP query reached the listener over TCP" $((t0 + 1)) "$(pod_count standin tcp)"
expect "dig over IPv6 to the node is captured (ip6tables)" "$POD_ANSWER" \
	"$(pod_exec "${DIG[@]}" +short "@$NODE_ADDR6" reviews.default.svc.cluster.local 2>&1)"
expect "glibc getent hosts (search list, ndots:5)" "$POD_ANSWER" "$(pod_exec getent hosts reviews 2>&1)"
expect "glibc getent hosts takes the first search suffix" "reviews.$POD_K8S_NS.svc.cluster.local" \
	"$(pod_exec getent hosts reviews 2>&1)"
expect "glibc getent ahosts (A+AAAA on one socket)" "$POD_ANSWER" "$(pod_exec getent ahosts reviews 2>&1)"
expect "Python socket.getaddrinfo" "$POD_ANSWER" "$(addrs_py reviews)"
if [ -n "$MUSL" ]; then
	expect "musl getaddrinfo" "$POD_ANSWER" "$(pod_exec "$MUSL" reviews 2>&1)"
	expect "musl getaddrinfo, FQDN" "$POD_ANSWER" "$(pod_exec "$MUSL" -4 api.example.com 2>&1)"
fi
expect_eq "no application query reached the node" "$n0" "$(pod_count upstream)"

# The proxy's own UID is never captured: its query reaches the node responder.
expect "a query by UID 1337 is not captured" "$NODE_ANSWER" \
	"$(pod_exec_proxy "${DIG[@]}" +short "@$NODE_ADDR" upstream.example 2>&1)"
expect_eq "the node responder counted it" $((n0 + 1)) "$(pod_count upstream)"
expect "a TCP query by UID 1337 is not captured" "$NODE_ANSWER" \
	"$(pod_exec_proxy "${DIG[@]}" +tcp +short "@$NODE_ADDR" upstream.example 2>&1)"

# Outbound and inbound TCP.
expect "outbound TCP goes to 15001" "aegis-accept 127.0.0.1:15001" "$(tcp_greeting pod_exec "$NODE_ADDR" 80)"
expect "outbound TCP over IPv6 goes to 15001" "aegis-accept ::1:15001" "$(tcp_greeting pod_exec "$NODE_ADDR6" 80)"
expect "outbound TCP of UID 1337 is not captured" "error: ConnectionRefusedError" \
	"$(tcp_greeting pod_exec_proxy "$NODE_ADDR" 80)"
expect "loopback TCP is not captured" "error: ConnectionRefusedError" "$(tcp_greeting pod_exec 127.0.0.1 8080)"
expect "inbound TCP goes to 15006" "aegis-accept $POD_ADDR:15006" "$(tcp_greeting node_exec "$POD_ADDR" 8080)"
expect "inbound TCP to HBONE 15008 is not captured" "error: ConnectionRefusedError" \
	"$(tcp_greeting node_exec "$POD_ADDR" 15008)"

# The UDP conntrack race: the same 5-tuple used first by the application (redirected) and then by the proxy,
# or the other way round. With zones each side has its own conntrack entry; without, the second flow
# inherits the first one's NAT decision (dig -b fixes the source port to force the reuse).
race() { # PORT FIRST SECOND: answers seen by the first and the second sender
	local port=$1 a b
	a=$("$2" "${DIG[@]}" +short -b "$POD_ADDR#$port" "@$NODE_ADDR" race-first.example 2>&1)
	b=$("$3" "${DIG[@]}" +short -b "$POD_ADDR#$port" "@$NODE_ADDR" race-second.example 2>&1)
	echo "$a / $b"
}
expect_eq "zones: app then proxy on one tuple: the proxy still reaches upstream" \
	"$POD_ANSWER / $NODE_ANSWER" "$(race 40001 pod_exec pod_exec_proxy)"
expect_eq "zones: proxy then app on one tuple: the app is still captured" \
	"$NODE_ANSWER / $POD_ANSWER" "$(race 40002 pod_exec_proxy pod_exec)"

# Idempotence: a second apply leaves exactly one set of rules.
r4=$(aegis_rules iptables-save)
r6=$(aegis_rules ip6tables-save)
pod_apply_rules >/dev/null 2>&1 && ok "second apply" || bad "second apply failed"
expect_eq "applying twice leaves one set of IPv4 rules" "$r4" "$(aegis_rules iptables-save)"
expect_eq "applying twice leaves one set of IPv6 rules" "$r6" "$(aegis_rules ip6tables-save)"
expect_eq "one jump from nat OUTPUT" 1 "$(pod_exec iptables-save -t nat | grep -c '^-A OUTPUT -j AEGIS_OUTPUT')"
[ "$r4" -gt 0 ] && [ "$r6" -gt 0 ] && ok "rules present in both families ($r4, $r6)" || bad "no rules ($r4, $r6)"

# Without zones the race is real (this is why the zones exist; if the kernel ever stops reproducing it, this
# test says so rather than passing silently).
pod_apply_rules --dns-conntrack-zones off >/dev/null 2>&1 || bad "apply --dns-conntrack-zones off"
expect_eq "no raw rules without zones" 0 "$(pod_exec iptables-save -t raw | grep -c AEGIS)"
expect_eq "no zones: the proxy's query on the app's tuple loops back to the listener" \
	"$POD_ANSWER / $POD_ANSWER" "$(race 40003 pod_exec pod_exec_proxy)"
expect_eq "no zones: the app's query on the proxy's tuple bypasses the capture" \
	"$NODE_ANSWER / $NODE_ANSWER" "$(race 40004 pod_exec_proxy pod_exec)"

# resolv mode: only the nameservers of resolv.conf are captured.
pod_apply_rules --capture-dns=resolv --resolv-conf "$POD_RESOLV" >/dev/null 2>&1 || bad "apply --capture-dns=resolv"
expect "resolv mode: the resolv.conf nameserver is captured" "$POD_ANSWER" "$(pod_exec getent hosts reviews 2>&1)"
expect "resolv mode: another server is not captured" "$NODE_ANSWER" \
	"$(pod_exec "${DIG[@]}" +short "@$NODE_ADDR6" other.example 2>&1)"
expect "resolv mode, zones: app then proxy on one tuple" "$POD_ANSWER / $NODE_ANSWER" \
	"$(race 40005 pod_exec pod_exec_proxy)"

# clean removes every rule and restores direct resolution.
pod_clean_rules >/dev/null 2>&1 && ok "aegis-iptables clean" || bad "aegis-iptables clean failed"
expect_eq "no IPv4 rules after clean" 0 "$(aegis_rules iptables-save)"
expect_eq "no IPv6 rules after clean" 0 "$(aegis_rules ip6tables-save)"
n1=$(pod_count upstream)
expect "after clean, glibc resolves through the node" "$NODE_ANSWER" "$(pod_exec getent hosts reviews 2>&1)"
[ "$(pod_count upstream)" -gt "$n1" ] && ok "after clean, the node responder counted the query" ||
	bad "after clean, the node responder saw nothing"
expect "after clean, outbound TCP is not captured" "error: ConnectionRefusedError" \
	"$(tcp_greeting pod_exec "$NODE_ADDR" 80)"

# The legacy backend, and auto-detection of the backend that already holds the rules.
if command -v iptables-legacy-save >/dev/null && pod_exec iptables-legacy-save >/dev/null 2>&1; then
	pod_apply_rules --backend legacy >/dev/null 2>&1 && ok "apply --backend legacy" || bad "apply --backend legacy"
	[ "$(aegis_rules iptables-legacy-save)" -gt 0 ] && ok "legacy rules installed" || bad "no legacy rules"
	expect "legacy backend: glibc is captured" "$POD_ANSWER" "$(pod_exec getent hosts reviews 2>&1)"
	out=$(pod_clean_rules 2>&1)
	expect "auto-detection picks legacy when only legacy holds rules" "backend legacy" "$out"
	expect_eq "clean removed the legacy rules" 0 "$(aegis_rules iptables-legacy-save)"
else
	echo "SKIP: legacy backend checks: iptables-legacy is not usable here"
fi
pod_stop standin

# ---------------------------------------------------------------- part 2: the real aegis-proxy
proxy_part() {
	if ! "$POD_PROXY" --help >/dev/null 2>&1; then
		bad "aegis-proxy --help fails"
		return
	fi
	# shellcheck disable=SC2046
	pod_spawn proxy proxy $(pod_proxy_cmd)
	local got
	pod_wait_dns pod 127.0.0.1 15053 reviews.default.svc.cluster.local
	got=$(pod_exec "${DIG[@]}" +short -p 15053 @127.0.0.1 reviews.default.svc.cluster.local 2>/dev/null)
	if [[ "$got" != *10.96.10.11* ]]; then
		bad "aegis-proxy does not answer reviews.default.svc.cluster.local with 10.96.10.11 ('$got'); log:"
		sed 's/^/    /' "$POD_RUN/proxy.log" | tail -20
		return
	fi
	ok "aegis-proxy answers on 127.0.0.1:15053"
	pod_apply_rules >/dev/null 2>&1 && ok "apply (proxy)" || { bad "apply (proxy)"; return; }

	local vip=10.96.10.11
	expect "proxy: glibc short name via the search list" "$vip" "$(pod_exec getent hosts reviews 2>&1)"
	expect "proxy: glibc reviews.default" "$vip" "$(pod_exec getent hosts reviews.default 2>&1)"
	expect "proxy: glibc FQDN" "$vip" "$(pod_exec getent hosts reviews.default.svc.cluster.local 2>&1)"
	expect "proxy: glibc ahosts" "$vip" "$(pod_exec getent ahosts reviews 2>&1)"
	expect "proxy: dig +search" "$vip" "$(pod_exec "${DIG[@]}" +short +search reviews 2>&1)"
	expect "proxy: dig FQDN to the nameserver" "$vip" \
		"$(pod_exec "${DIG[@]}" +short "@$NODE_ADDR" reviews.default.svc.cluster.local 2>&1)"
	expect "proxy: dig +tcp" "$vip" \
		"$(pod_exec "${DIG[@]}" +tcp +short "@$NODE_ADDR" reviews.default.svc.cluster.local 2>&1)"
	expect "proxy: Python getaddrinfo" "$vip" "$(addrs_py reviews)"
	if [ -n "$MUSL" ]; then
		expect "proxy: musl short name" "$vip" "$(pod_exec "$MUSL" -4 reviews 2>&1)"
		expect "proxy: musl FQDN" "$vip" "$(pod_exec "$MUSL" -4 reviews.default.svc.cluster.local 2>&1)"
	fi
	local w
	w=$(pod_exec "${DIG[@]}" +short en.wikipedia.org 2>&1)
	[[ "$w" =~ (^|[[:space:]])240\.240\.[0-9]+\.[0-9]+ ]] && ok "proxy: wildcard en.wikipedia.org -> $w" ||
		bad "proxy: wildcard en.wikipedia.org: wanted 240.240.0.0/16, got '$w'"

	# A name outside the mesh: forwarded upstream (the node responder) once forwarding exists; the proxy's
	# upstream query runs as UID 1337, so the node counter proves it was not captured back (no loop).
	local n2 ext status
	n2=$(pod_count upstream)
	ext=$(pod_exec "${DIG[@]}" "@$NODE_ADDR" external.example 2>&1)
	status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$ext")
	if [ "$status" = NOERROR ] && [[ "$ext" == *"$NODE_ANSWER"* ]]; then
		ok "proxy: external name forwarded to the node responder"
		[ "$(pod_count upstream)" -gt "$n2" ] && ok "proxy: its upstream query reached the node (not captured)" ||
			bad "proxy: upstream counter did not move"
	else
		bad "proxy: external.example not forwarded to the node responder (status '${status:-none}', answer '$ext')"
	fi
}
proxy_part

echo "test_capture_pod: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
