#!/usr/bin/env bash
# The DNS security controls of docs/security.md against the real aegis-proxy. Each check fails without
# its control: the source ACL (a captured pod query is answered, a query from the node through a veth is
# REFUSED, --allow-source admits it), the listen-address guards (DNS and admin refuse non-loopback
# without their flag), rate limiting (drops and TC slips beyond the burst), the blocklist (NXDOMAIN,
# REFUSED, reload on file change and SIGHUP, a bad reload keeps the last good list, a bad file stops
# start-up with file:line), the audit query log (JSON lines with every field, sampling) and the
# privilege drop (UID/GID 1337, CapEff 0, or CAP_NET_ADMIN alone with --so-mark).
# Needs root (namespaces, privilege drop): exit 77 (skipped) otherwise.
source "$(dirname "$0")/../lib/common.sh"
if [ "$(id -u)" -ne 0 ]; then
	echo "skip: needs root"
	exit 77
fi
MESH=$AEGIS_SRC_DIR/examples/mesh
MESHNAME=reviews.default.svc.cluster.local

UP=$(free_port)
cat >"$AEGIS_TMP/zone.json" <<'JSON'
{"www.example.test": {"A": ["192.0.2.80"]}, "ok.ads.example": {"A": ["192.0.2.81"]},
 "blocked.example": {"A": ["192.0.2.82"]}}
JSON
start_bg peer python3 "$AEGIS_SRC_DIR/tests/lib/dnspeer.py" --port "$UP" --zone "$AEGIS_TMP/zone.json" --lifetime 300
wait_dns "$UP" www.example.test || { fail "upstream peer did not start"; finish; exit 1; }

# start_proxy NAME PORT ADMIN [FLAGS...]: the proxy on 127.0.0.1:PORT; sets LAST_PID.
start_proxy() {
	local name=$1 port=$2 admin=$3
	shift 3
	start_bg "$name" "$AEGIS_BIN/aegis-proxy" --config "$MESH" --cluster east --namespace default \
		--resolv-conf /dev/null --dns-listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
		--upstream "127.0.0.1:$UP" "$@"
	wait_dns "$port" "$MESHNAME" || { cat "$AEGIS_TMP/$name.log"; fail "proxy $name did not start"; return 1; }
}
status_of() { sed -n 's/.*status: \([A-Z]*\).*/\1/p'; }
metric() { curl -s "http://127.0.0.1:$1/stats/prometheus" | awk -v m="$2" '$1 == m {print $2}'; }
# proc_field PID FIELD: a /proc/PID/status field, whitespace squeezed.
proc_field() { awk -v f="$2:" '$1 == f {$1=""; sub(/^ /, ""); print}' "/proc/$1/status"; }

# ---- listen-address guards ----
"$AEGIS_BIN/aegis-proxy" --config "$MESH" --dns-listen 0.0.0.0:1053 >/dev/null 2>"$AEGIS_TMP/guard1.err"
rc=$?
expect_eq "non-loopback --dns-listen refused without flag (exit 2)" "$rc" "2"
expect_match "  ... with a message naming the flag" "$(cat "$AEGIS_TMP/guard1.err")" "allow-non-loopback-listen"
"$AEGIS_BIN/aegis-proxy" --config "$MESH" --admin 0.0.0.0:15999 >/dev/null 2>"$AEGIS_TMP/guard2.err"
expect_eq "non-loopback --admin refused without flag (exit 2)" "$?" "2"

# ---- privileges, blocklist, audit log: one proxy ----
BL=$AEGIS_TMP/block.rules
cat >"$BL" <<'EOF'
# test rules
blocked.example
*.ads.example
!ok.ads.example
EOF
P1=$(free_port)
A1=$(free_port)
start_proxy p1 "$P1" "$A1" --blocklist "$BL" --query-log "$AEGIS_TMP/query.log" || { finish; exit 1; }
PID1=$LAST_PID
q1() { dig @127.0.0.1 -p "$P1" +tries=1 +time=2 "$@"; }

expect_eq "privileges: UIDs are 1337" "$(proc_field "$PID1" Uid)" "1337 1337 1337 1337"
expect_eq "privileges: GIDs are 1337" "$(proc_field "$PID1" Gid)" "1337 1337 1337 1337"
expect_eq "privileges: no supplementary groups" "$(proc_field "$PID1" Groups)" ""
expect_eq "privileges: CapEff is empty" "$(proc_field "$PID1" CapEff)" "0000000000000000"
expect_eq "privileges: CapPrm is empty" "$(proc_field "$PID1" CapPrm)" "0000000000000000"
expect_eq "privileges: CapBnd is empty" "$(proc_field "$PID1" CapBnd)" "0000000000000000"
expect_eq "privileges: no_new_privs" "$(proc_field "$PID1" NoNewPrivs)" "1"
expect_match "privileges: drop logged" "$(cat "$AEGIS_TMP/p1.log")" '"msg":"privileges dropped","uid":1337'
expect_eq "privileges: metric" "$(metric "$A1" aegis_process_privileges_dropped)" "1"

expect_eq "blocklist: exact rule NXDOMAIN" "$(q1 blocked.example A | status_of)" "NXDOMAIN"
expect_match "blocklist: the answer says why (Extended DNS Error 15)" "$(q1 blocked.example A)" '; EDE: 15 \(Blocked\)'
expect_eq "blocklist: no EDE without EDNS" "$(q1 +noedns blocked.example A | grep -c 'EDE:')" "0"
expect_eq "blocklist: subtree rule covers the apex" "$(q1 ads.example A | status_of)" "NXDOMAIN"
expect_eq "blocklist: subtree rule, any depth, any case" "$(q1 X.Y.Ads.Example A | status_of)" "NXDOMAIN"
expect_eq "blocklist: exception answered from upstream" "$(q1 +short ok.ads.example A)" "192.0.2.81"
expect_eq "blocklist: other names untouched" "$(q1 +short www.example.test A)" "192.0.2.80"
expect_eq "blocklist: over TCP too" "$(q1 +tcp blocked.example A | status_of)" "NXDOMAIN"
expect_eq "blocklist: counter" "$(metric "$A1" aegis_policy_blocked_total)" "6"

# Reload on file change (written to a new file and renamed in, as config management does).
printf 'www.example.test\n' >"$BL.new" && mv "$BL.new" "$BL"
for _ in $(seq $((50 * ${AEGIS_SLOW:-1}))); do
	[ "$(q1 www.example.test A | status_of)" = NXDOMAIN ] && break
	sleep 0.1
done
expect_eq "blocklist: reload on file change blocks the new name" "$(q1 www.example.test A | status_of)" "NXDOMAIN"
expect_eq "blocklist: ... and drops the old rules" "$(q1 +short blocked.example A)" "192.0.2.82"
# A bad reload keeps the last good list and says where the mistake is.
printf 'good.example\nbad rule here\n' >"$BL.new" && mv "$BL.new" "$BL"
for _ in $(seq $((50 * ${AEGIS_SLOW:-1}))); do
	grep -q 'blocklist reload rejected' "$AEGIS_TMP/p1.log" && break
	sleep 0.1
done
expect_match "blocklist: bad reload logged with file:line" "$(grep 'reload rejected' "$AEGIS_TMP/p1.log" | head -1)" 'block\.rules:2:'
expect_eq "blocklist: last good list still applied" "$(q1 www.example.test A | status_of)" "NXDOMAIN"
expect_eq "blocklist: reload failure counted" "$(metric "$A1" aegis_policy_blocklist_reload_failures_total)" "1"
# SIGHUP reloads too (the watcher is not involved: same content, new inode not needed).
printf '*.hup.example\n' >"$BL"
kill -HUP "$PID1"
for _ in $(seq $((50 * ${AEGIS_SLOW:-1}))); do
	[ "$(q1 a.hup.example A | status_of)" = NXDOMAIN ] && break
	sleep 0.1
done
expect_eq "blocklist: reload on SIGHUP" "$(q1 a.hup.example A | status_of)" "NXDOMAIN"
expect_eq "blocklist: mesh table still answers after reloads" "$(q1 +short "$MESHNAME" A)" "10.96.10.11"

# The audit log: every answer so far, one JSON object per line with every field.
sleep 0.3 # one flush period
LOGTXT=$(cat "$AEGIS_TMP/query.log")
expect_match "query log: table answer" "$LOGTXT" '"client":"127\.0\.0\.1:[0-9]+","name":"reviews\.default\.svc\.cluster\.local\.","type":"A","rcode":"NOERROR","latency_us":[0-9]+,"source":"table"'
expect_match "query log: upstream answer" "$LOGTXT" '"name":"ok\.ads\.example\.","type":"A","rcode":"NOERROR","latency_us":[0-9]+,"source":"upstream"'
expect_match "query log: blocked answer" "$LOGTXT" '"name":"blocked\.example\.","type":"A","rcode":"NXDOMAIN","latency_us":[0-9]+,"source":"policy"'
expect_eq "query log: every line is JSON" "$(python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]; print("ok")' "$AEGIS_TMP/query.log" 2>&1)" "ok"
expect_eq "query log: lines counted" "$(metric "$A1" aegis_query_log_lines_total)" "$(wc -l <"$AEGIS_TMP/query.log")"

# ---- block answer REFUSED, sampling, SO_MARK keeps CAP_NET_ADMIN alone ----
P2=$(free_port)
A2=$(free_port)
printf 'blocked.example\n' >"$AEGIS_TMP/b2.rules"
start_proxy p2 "$P2" "$A2" --blocklist "$AEGIS_TMP/b2.rules" --block-answer refused --so-mark 7 \
	--query-log "$AEGIS_TMP/sampled.log" --query-log-sample 0.1 || { finish; exit 1; }
PID2=$LAST_PID
expect_eq "blocklist: --block-answer refused" "$(dig @127.0.0.1 -p "$P2" +tries=1 +time=2 blocked.example | status_of)" "REFUSED"
expect_eq "privileges: --so-mark keeps CAP_NET_ADMIN only" "$(proc_field "$PID2" CapEff)" "0000000000001000"
expect_eq "privileges: --so-mark, still UID 1337" "$(proc_field "$PID2" Uid)" "1337 1337 1337 1337"
expect_eq "so-mark: forwarding works with the kept capability" "$(dig @127.0.0.1 -p "$P2" +short +tries=1 +time=2 www.example.test)" "192.0.2.80"
for i in $(seq 1 200); do echo "$MESHNAME"; done >"$AEGIS_TMP/names"
dig @127.0.0.1 -p "$P2" +tries=1 +time=1 -f "$AEGIS_TMP/names" >/dev/null 2>&1
sleep 0.3
n=$(wc -l <"$AEGIS_TMP/sampled.log")
if [ "$n" -ge 2 ] && [ "$n" -le 60 ]; then pass "query log: 10% sample of 200 answers ($n lines)"; else fail "query log: 10% sample of 200 answers: $n lines"; fi

# ---- rate limiting ----
# blast PORT N NAME: N queries from one socket as fast as possible; prints "answered truncated".
blast() {
	python3 - "$@" <<'PY'
import socket, struct, sys
port, n, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
qn = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
for i in range(n):
    s.send(struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + qn + struct.pack("!HH", 1, 1))
s.settimeout(0.5)
ok = tc = 0
try:
    while True:
        d = s.recv(4096)
        if d[2] & 0x02:
            tc += 1
        else:
            ok += 1
except socket.timeout:
    pass
print(ok, tc)
PY
}
P3=$(free_port)
A3=$(free_port)
start_proxy p3 "$P3" "$A3" --rrl-qps 5 --rrl-burst 10 --rrl-slip 2 || { finish; exit 1; }
read -r ok tc < <(blast "$P3" 100 "$MESHNAME")
# The start-up probe (wait_dns, same address) took one token already.
if [ "$ok" -ge 8 ] && [ "$ok" -le 13 ]; then pass "rrl: answers capped at the burst ($ok of 100)"; else fail "rrl: answers capped at the burst: $ok of 100"; fi
if [ "$tc" -ge 40 ] && [ "$tc" -le 50 ]; then pass "rrl: every 2nd limited query slips with TC=1 ($tc)"; else fail "rrl: slips: $tc"; fi
expect_match "rrl: drops counted" "$(metric "$A3" aegis_policy_rrl_dropped_total)" '^(4[0-9]|50)$'
expect_match "rrl: slips counted" "$(metric "$A3" aegis_policy_rrl_slipped_total)" '^(4[0-9]|50)$'
expect_eq "rrl: TCP is not limited" "$(dig @127.0.0.1 -p "$P3" +tcp +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
sleep 1.2 # 5 qps: the bucket refills
read -r ok tc < <(blast "$P3" 3 "$MESHNAME")
expect_eq "rrl: answers again after the bucket refills" "$ok $tc" "3 0"

# ---- source ACL in a pod: what a REDIRECTed query looks like, and a non-pod source ----
source "$AEGIS_SRC_DIR/tests/lib/pod.sh"
trap - EXIT
AEGIS_CLEANUPS+=(pod_teardown)
pod_find_bins
POD_BIN=$AEGIS_BIN
POD_IPTABLES=$AEGIS_BIN/aegis-iptables
POD_PROXY=$AEGIS_BIN/aegis-proxy
pod_init && pod_create || { fail "pod namespaces"; finish; exit 1; }
trap aegis_cleanup EXIT
# The proxy listens on the pod's loopbacks (the capture target) and on the pod IP (for the node tests).
pod_spawn proxy pod "$POD_PROXY" --config "$MESH" --cluster east --namespace default --resolv-conf "$POD_RESOLV" \
	--dns-listen 127.0.0.1:15053 --dns-listen "[::1]:15053" --dns-listen "$POD_ADDR:15053" \
	--allow-non-loopback-listen --query-log "$POD_RUN/proxy/query.log" --admin 127.0.0.1:15000
pod_wait_dns pod 127.0.0.1 15053 "$MESHNAME"
# The node is another host: its queries to the pod IP are refused (before capture: the inbound capture
# rules would send its TCP to 15006).
ACLOUT=$(node_exec dig @"$POD_ADDR" -p 15053 +tries=1 +time=2 "$MESHNAME")
expect_eq "acl: query from outside the pod REFUSED" "$(status_of <<<"$ACLOUT")" "REFUSED"
expect_match "acl: with Extended DNS Error 18" "$ACLOUT" '; EDE: 18 \(Prohibited\)'
expect_eq "acl: ... over TCP too" "$(node_exec dig @"$POD_ADDR" -p 15053 +tcp +tries=1 +time=2 "$MESHNAME" | status_of)" "REFUSED"
expect_eq "acl: denial counted" "$(pod_exec curl -s http://127.0.0.1:15000/stats/prometheus | awk '$1 == "aegis_policy_acl_denied_total" {print $2}')" "2"
expect_eq "acl: the pod's own address is allowed" "$(pod_exec dig @"$POD_ADDR" -p 15053 +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
pod_apply_rules >"$POD_RUN/apply.log" 2>&1 || { cat "$POD_RUN/apply.log"; fail "aegis-iptables apply"; }
# The application asks its resolv.conf nameserver (the node); iptables sends it to the proxy.
expect_eq "acl: captured pod query answered" "$(pod_exec dig @"$NODE_ADDR" +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
expect_eq "acl: captured pod query over IPv6 answered" "$(pod_exec dig @"$NODE_ADDR6" +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
expect_eq "acl: captured pod query over TCP answered" "$(pod_exec dig @"$NODE_ADDR" +tcp +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
sleep 0.3
# The finding docs/security.md records: a REDIRECTed query keeps the pod IP as its source (only the
# destination becomes 127.0.0.1 / ::1), so a loopback-only ACL would refuse the pod's own traffic.
expect_match "acl: a captured query's source is the pod IP, not loopback" \
	"$(cat "$POD_RUN/proxy/query.log")" "\"client\":\"$POD_ADDR:[0-9]+\""
expect_match "acl: ... also over IPv6" "$(cat "$POD_RUN/proxy/query.log")" "\"client\":\"\\[$POD_ADDR6\\]:[0-9]+\""
pod_stop proxy
pod_clean_rules >/dev/null 2>&1
# --allow-source admits the node; --deny-action drop sends nothing to anyone else.
pod_spawn proxy2 pod "$POD_PROXY" --config "$MESH" --cluster east --namespace default --resolv-conf "$POD_RESOLV" \
	--dns-listen "$POD_ADDR:15053" --allow-non-loopback-listen --allow-source "$NODE_ADDR/32" --admin 127.0.0.1:15000
pod_wait_dns node "$POD_ADDR" 15053 "$MESHNAME"
expect_eq "acl: --allow-source admits the node" "$(node_exec dig @"$POD_ADDR" -p 15053 +short +tries=1 +time=2 "$MESHNAME")" "10.96.10.11"
pod_stop proxy2
pod_spawn proxy3 pod "$POD_PROXY" --config "$MESH" --cluster east --namespace default --resolv-conf "$POD_RESOLV" \
	--dns-listen "$POD_ADDR:15053" --allow-non-loopback-listen --deny-action drop --admin 127.0.0.1:15000
pod_wait_dns pod "$POD_ADDR" 15053 "$MESHNAME"
out=$(node_exec dig @"$POD_ADDR" -p 15053 +tries=1 +time=1 "$MESHNAME" 2>&1)
expect_match "acl: --deny-action drop sends nothing" "$out" "timed out|no servers could be reached"
pod_stop proxy3

finish
