#!/usr/bin/env bash
# Several pods for the mesh tests (test_mesh_traffic, test_mesh_hbone, test_mesh_xds), on top of pod.sh:
# the harness's pod A (10.253.0.2 and fd53:ae61::2) plus pods B, C, ... at 10.253.<n>.2 and fd00:253:<n>::2,
# each its own network namespace joined to the node namespace by a veth (10.253.<n>.1 and fd00:253:<n>::1
# on the node side), the node forwarding between them in both families; every pod's default routes (IPv4
# and IPv6) point to the node. Everything is removed by pod.sh's teardown (pod_defer), even when a test fails.
#
#   . tests/lib/pod.sh; . tests/lib/mesh_pods.sh
#   mesh_require ip openssl ...      tools and the built programs, or exit 1 with the reason
#   mesh_require_bins aegis-xds ...  further programs of the build ($POD_BIN)
#   mesh_pods_create PREFIX b c d    pod_init + pod_create + the extra pods; sets RUN, NS[p], PODS[p]=n,
#                                    POD6[p] (the pod's IPv6 address; POD6[a] is pod.sh's POD_ADDR6)
#   in_pod b CMD...                  runs CMD in pod b (a = the harness's pod)
#   mesh_certs b c d                 a CA in $RUN/ca; $RUN/certs-a (default/productpage) and
#                                    $RUN/certs-<p> (default/reviews) for each pod named
#   mesh_write_server_py             $RUN/server.py: the pods' application (see below)
#   mesh_write_long_py               $RUN/long.py: one long-lived bulk connection (see below)
#   mesh_write_client_py             $RUN/client.py: N sequential request/response connections (see below)
#   mesh_proxy_cmd POD MS [EXTRA...] the command line of POD's aegis-proxy on $RUN/mesh.yaml (files mode,
#                                    --mesh, $RUN/certs-<POD>, --mesh-connect-timeout MS), for pod_spawn
#   mesh_wait_ready POD...           until each POD's proxy logged "aegis-proxy ready" (30 s); else says so
#   mesh_write_first_py              $RUN/first.py: N sequential connections whose client speaks first (below)
#   mesh_metric FILE 'name{labels}'  a value from a /stats/prometheus scrape (0 when absent)
#   mesh_scrape POD FILE             POD's /stats/prometheus into FILE
#   mesh_check_ipv6 ...              the IPv6 checks test_mesh_hbone and test_mesh_traffic share (below)
#   mesh_write_sniff_py              $RUN/sniff.py: a raw capture that counts TLS records and a marker

# mesh_require TOOL...: each tool on PATH, and aegis-iptables and aegis-proxy built.
mesh_require() {
	local tool b
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			echo "FAIL: $tool is missing: run scripts/setup.sh test" >&2
			exit 1
		fi
	done
	pod_find_bins
	for b in "$POD_IPTABLES" "$POD_PROXY"; do
		if [ ! -x "$b" ]; then
			echo "FAIL: $b not built" >&2
			exit 1
		fi
	done
}

# mesh_require_bins NAME...: programs of the same build (after mesh_require).
mesh_require_bins() {
	local b
	for b in "$@"; do
		if [ ! -x "$POD_BIN/$b" ]; then
			echo "FAIL: $POD_BIN/$b not built" >&2
			exit 1
		fi
	done
}

declare -A PODS
declare -A NS
declare -A POD6

# mesh_pods_create PREFIX POD...: this run's pod A and node (pod.sh) and one namespace per further pod,
# named aegis-<PREFIX><pod>-<id>, numbered 1, 2, ... in the order given.
mesh_pods_create() {
	local prefix=$1 p n=0 ns
	shift
	pod_init || exit 1
	pod_create || {
		echo "FAIL: cannot create the pod" >&2
		exit 1
	}
	RUN=$POD_RUN
	echo "pods under id $POD_ID, scratch $RUN"
	node_exec sysctl -qw net.ipv4.ip_forward=1
	node_exec sysctl -qw net.ipv6.conf.all.forwarding=1
	pod_exec ip route add default via "$NODE_ADDR"
	pod_exec ip -6 route add default via "$NODE_ADDR6"
	POD6[a]=$POD_ADDR6
	for p in "$@"; do
		n=$((n + 1))
		PODS[$p]=$n
		ns=aegis-$prefix$p-$POD_ID
		NS[$p]=$ns
		ip netns add "$ns" || {
			echo "FAIL: cannot create $ns"
			exit 1
		}
		pod_defer "ip netns pids $ns 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del $ns"
		ip -n "$ns" link set lo up
		ip -n "$ns" link add eth0 type veth peer name "veth$n" netns "$NODE_NS"
		ip -n "$ns" addr add "10.253.$n.2/30" dev eth0
		ip -n "$NODE_NS" addr add "10.253.$n.1/30" dev "veth$n"
		# nodad: usable at once (duplicate address detection would keep them tentative for a second).
		ip -n "$ns" -6 addr add "fd00:253:$n::2/64" dev eth0 nodad
		ip -n "$NODE_NS" -6 addr add "fd00:253:$n::1/64" dev "veth$n" nodad
		POD6[$p]=fd00:253:$n::2
		ip -n "$ns" link set eth0 up
		ip -n "$NODE_NS" link set "veth$n" up
		ip -n "$ns" route add default via "10.253.$n.1"
		ip -n "$ns" -6 route add default via "fd00:253:$n::1"
	done
}

# in_pod a|b|c|... CMD...
in_pod() {
	local p=$1
	shift
	if [ "$p" = a ]; then ip netns exec "$POD_NS" "$@"; else ip netns exec "${NS[$p]}" "$@"; fi
}

# mesh_write_first_py: $RUN/first.py, a client that speaks first: `first.py HOST PORT N [GREETING]` makes N
# sequential connections, each: write "first-<i>\n" at once, half-close, read to the end; prints how many
# got exactly GREETING (default none; "HELLO v2\n" is server.py's "v2") + the echo + "BYE <len>\n".
mesh_write_first_py() {
	cat >"$RUN/first.py" <<'EOF'
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
greeting = sys.argv[4].encode().decode("unicode_escape").encode() if len(sys.argv) > 4 else b""
good = 0
for i in range(n):
    try:
        c = socket.create_connection((host, port), 5)
        c.settimeout(5)
        msg = b"first-%d\n" % i
        c.sendall(msg)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        good += got == greeting + msg + b"BYE %d\n" % len(msg)
        c.close()
    except OSError:
        pass
print(good)
EOF
	chmod 0644 "$RUN/first.py"
}

# mesh_proxy_cmd POD MS [EXTRA...]: POD's aegis-proxy with the routes of $RUN/mesh.yaml (no file watch), its
# certificates $RUN/certs-POD, DNS on 127.0.0.1:15053 and a mesh connect timeout of MS ms; one word each.
mesh_proxy_cmd() {
	local p=$1 ms=$2
	shift 2
	echo "$POD_PROXY" --config "$RUN/mesh.yaml" --mesh --cert-dir "$RUN/certs-$p" --namespace default \
		--dns-listen 127.0.0.1:15053 --resolv-conf "$POD_RESOLV" --mesh-connect-timeout "$ms" --no-watch "$@"
}

# mesh_wait_ready POD...: waits until each POD's proxy (pod_spawn name proxy-POD) logged that it is ready,
# at most 30 s each; otherwise prints the log's tail and returns 1.
mesh_wait_ready() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < 300; i++)); do
			grep -q '"aegis-proxy ready"' "$RUN/proxy-$p.log" 2>/dev/null && break
			sleep 0.1
		done
		if ! grep -q '"aegis-proxy ready"' "$RUN/proxy-$p.log" 2>/dev/null; then
			echo "FAIL: proxy in pod $p did not start: $(tail -5 "$RUN/proxy-$p.log" 2>/dev/null)"
			return 1
		fi
	done
}

# mesh_certs POD...: the test CA and workload certificates, readable by UID 1337.
mesh_certs() {
	local mk=$POD_SRC_DIR/scripts/make-certs.sh p
	bash "$mk" ca "$RUN/ca" >/dev/null || {
		echo "FAIL: make-certs ca"
		exit 1
	}
	bash "$mk" workload "$RUN/ca" "$RUN/certs-a" default productpage >/dev/null || exit 1
	for p in "$@"; do
		bash "$mk" workload "$RUN/ca" "$RUN/certs-$p" default reviews >/dev/null || exit 1
	done
	chmod -R a+rX "$RUN"
}

# mesh_write_server_py: the application of pods B, C, ...: `server.py NAME READYFILE [PORT]` greets each
# connection with "HELLO NAME", echoes until the client's FIN, then answers "BYE <bytes received>" (so
# that half-close is visible end to end). It listens on the dual-stack wildcard [::] (IPv4 too): the
# sidecar hands IPv6 connections to [::1]:PORT, as a real application must listen in both families to be
# reached in both.
mesh_write_server_py() {
	cat >"$RUN/server.py" <<'EOF'
import socket, sys, threading
name = sys.argv[1]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 9080
ls = socket.socket(socket.AF_INET6); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
ls.bind(("::", port)); ls.listen(512)
open(sys.argv[2], "w").close()
def serve(c):
    try:
        c.sendall(b"HELLO " + name.encode() + b"\n")
        total = 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            total += len(d)
            c.sendall(d)
        c.sendall(b"BYE %d\n" % total)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
}

# mesh_write_long_py: $RUN/long.py, a client of server.py that streams for a while (see its header).
mesh_write_long_py() {
	cat >"$RUN/long.py" <<'EOF'
# long.py HOST PORT SECONDS OUT: one connection sending 64 KiB chunks for SECONDS, reading the echo; writes
# "sent received ok" to OUT.
import socket, sys, time, threading
host, port, secs, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.create_connection((host, port), 3)
s.settimeout(10)
f = s.makefile("rb")
f.readline()
chunk = b"L" * 65536
got = [0]
def reader():
    try:
        while True:
            d = f.read1(65536)
            if not d:
                break
            got[0] += len(d)
    except OSError:
        pass
t = threading.Thread(target=reader); t.start()
sent = 0
end = time.time() + secs
open(out + ".started", "w").close()
try:
    while time.time() < end:
        s.sendall(chunk); sent += len(chunk)
        time.sleep(0.02)
    s.shutdown(socket.SHUT_WR)
except OSError as e:
    print("send error", e)
t.join(15)
ok = got[0] == sent + len(b"BYE %d\n" % sent)  # the whole echo, then server.py's "BYE <sent>"
open(out, "w").write("%d %d %s\n" % (sent, got[0], "ok" if ok else "short"))
EOF
}

# mesh_write_client_py: $RUN/client.py, the client of server.py used by every mesh test:
# `client.py N HOST PORT [MARKER]` makes N sequential connections, each: read the greeting, send MARKER
# (default "ping"), shut down the write side (half-close), read the exact echo and "BYE <len>". A
# connection counts for the server that greeted it: names starting with "v1" for subset v1, with "v2"
# for v2; anything else, a short echo or a missing BYE is a failure. Prints "v1 v2 failures v1b v1d"
# (the last two: pods b and d of test_mesh_traffic, both v1). At most 120 s, then the rest fail.
mesh_write_client_py() {
	cat >"$RUN/client.py" <<'EOF'
import socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
marker = sys.argv[4].encode() if len(sys.argv) > 4 else b"ping"
counts = {}
fail = 0
deadline = time.time() + 120
for i in range(n):
    if time.time() > deadline:
        fail += n - i
        break
    try:
        s = socket.create_connection((host, port), 3)
        s.settimeout(5)
        f = s.makefile("rb")
        hello = f.readline().split()
        s.sendall(marker)
        s.shutdown(socket.SHUT_WR)
        echo = f.read(len(marker))
        bye = f.readline()
        s.close()
        who = hello[1].decode() if len(hello) == 2 else ""
        if who[:2] in ("v1", "v2") and echo == marker and bye == b"BYE %d\n" % len(marker):
            counts[who] = counts.get(who, 0) + 1
        else:
            fail += 1
    except OSError:
        fail += 1
sub = lambda p: sum(c for w, c in counts.items() if w.startswith(p))
print(sub("v1"), sub("v2"), fail, counts.get("v1b", 0), counts.get("v1d", 0))
EOF
}

# mesh_write_sniff_py: $RUN/sniff.py, run in the node namespace on a pod's veth: `sniff.py IFACE SECONDS
# MARKER OUT` captures (AF_PACKET) until SECONDS or SIGTERM and writes "packets tls_records marker_hits
# tls_records_ipv6" to OUT (the last: frames of EtherType 0x86dd carrying a TLS application record);
# OUT.ready once the socket is bound.
mesh_write_sniff_py() {
	cat >"$RUN/sniff.py" <<'EOF'
import signal, socket, sys, time
iface, secs, marker, out = sys.argv[1], float(sys.argv[2]), sys.argv[3].encode(), sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind((iface, 0)); s.settimeout(0.2)
open(out + ".ready", "w").close()
pk = tls = hits = tls6 = 0
end = [time.time() + secs]
def stop(*_):
    end[0] = 0
signal.signal(signal.SIGTERM, stop)
while time.time() < end[0]:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    pk += 1
    if marker in d:
        hits += 1
    if b"\x17\x03\x03" in d:
        tls += 1
        tls6 += d[12:14] == b"\x86\xdd"
open(out, "w").write("%d %d %d %d\n" % (pk, tls, hits, tls6))
EOF
}

# mesh_metric FILE 'name{labels}': the value of that sample in a /stats/prometheus scrape, 0 when absent.
mesh_metric() {
	awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$1"
}

# mesh_scrape POD FILE: POD's /stats/prometheus (its admin port, 15000) into FILE.
mesh_scrape() {
	in_pod "$1" curl -s --max-time 5 http://127.0.0.1:15000/stats/prometheus >"$2"
}

# mesh_check_ipv6 N V2 PRES A0 A1: what both transports must show after N connections from pod A to the
# IPv6 VIP split 50/50 between v1 and v2 (V2 of them reached v2), with 3 connections to a non-mesh node
# address made meanwhile (PRES: that client's "v1 v2 fail ..." line) and pod A's metrics scraped before
# (A0) and after (A1): the split within 4 standard deviations, the passthrough counted and unchanged, and
# $RUN/sniff.out (mesh_write_sniff_py) showing IPv6 TLS on the veth with the plaintext marker only in the
# passthrough connections. Calls the test's ok/bad.
mesh_check_ipv6() {
	local n=$1 v2=$2 pres=$3 a0=$4 a1=$5 lo hi pv1 pf pt0 pt1 pk tls hits tls6
	# v2 ~ Binomial(n, 0.5): sd sqrt(n)/2; bounds 4 sd (+2) on either side.
	lo=$(awk -v n="$n" 'BEGIN { printf "%d", n / 2 - 2 * sqrt(n) - 2 }')
	hi=$(awk -v n="$n" 'BEGIN { printf "%d", n / 2 + 2 * sqrt(n) + 2 }')
	if [ "${v2:-0}" -ge "$lo" ] && [ "${v2:-0}" -le "$hi" ]; then
		ok "IPv6: 50/50 split (v2 = $v2 of $n, bounds $lo..$hi)"
	else
		bad "IPv6: 50/50 split: v2 = ${v2:-?} (bounds $lo..$hi)"
	fi
	read -r pv1 _ pf _ <<<"$pres"
	pt0=$(mesh_metric "$a0" aegis_mesh_outbound_passthrough_total)
	pt1=$(mesh_metric "$a1" aegis_mesh_outbound_passthrough_total)
	if [ "$pv1" = 3 ] && [ "$pf" = 0 ] && [ "$((pt1 - pt0))" = 3 ]; then
		ok "IPv6: a non-mesh destination ([$NODE_ADDR6]:7000) passes through the proxy unchanged (3 connections, passthrough $pt0 -> $pt1)"
	else
		bad "IPv6 passthrough: clients '$pres', passthrough $pt0 -> $pt1"
	fi
	if [ -s "$RUN/sniff.out" ]; then
		read -r pk tls hits tls6 <"$RUN/sniff.out"
		echo "IPv6 capture on veth0: $pk packets, $tls with TLS application records ($tls6 IPv6), $hits with the marker"
		# The only marker hits are the 3 passthrough connections (a few packets each, both directions).
		if [ "$tls6" -gt "$n" ] && [ "$hits" -ge 3 ] && [ "$hits" -le 12 ]; then
			ok "IPv6: mesh bytes on the veth are IPv6 TLS; the marker appears only in passthrough traffic"
		else
			bad "IPv6 capture: packets=$pk tls=$tls tls6=$tls6 marker=$hits"
		fi
	else
		bad "IPv6: the sniffer wrote nothing"
	fi
}
