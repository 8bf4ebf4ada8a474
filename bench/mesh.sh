#!/usr/bin/env bash
# The mesh data-path benchmark in one command (issue 7): client -> proxy A -> mTLS -> proxy B -> server, for
# Aegis (two aegis-proxy sidecars in captured network-namespace pods, per mesh transport), an nginx stream
# pair and an HAProxy pair, side by side in the same run, alternating rounds, medians. Writes a Markdown
# report to stdout and bench/out/mesh-<date>.md (raw numbers in mesh-<date>.json). Method and figures:
# bench/README.md, "Mesh data path". Needs root (namespaces, iptables). Not part of the test suite.
#
#   bench/mesh.sh [--rounds R] [--seconds S] [--conns N] [--rate Q] [--pairs LIST] [--no-perf]
#                 [--aegis-nodelay] [--skip-setup] [--skip-build] [--quick]
#
#   --rounds R      rounds over all pairs (default 3); the order rotates each round; medians are reported
#   --seconds S     length of the bulk, warm and paced runs (default 5)
#   --conns N       new connections per round in the connection-per-request run (default 2000; 20 s cap)
#   --rate Q        paced request rate for the p99 run (default 3500 req/s over 16 connections)
#   --pairs LIST    subset of aegis-hbone,aegis-direct,nginx,haproxy,nginx-full,haproxy-full (default: all
#                   of them; aegis-hbone only when `aegis-proxy --help` has --mesh-transport hbone)
#   --no-perf       skip the perf profile of Aegis's proxy A and the strace -c call mixes (proxy A warm, A and B
#                   per new connection and per 64 KiB in bulk)
#   --aegis-nodelay what-if: also run aegis-hbone-nodelay/aegis-direct-nodelay, aegis-proxy with
#                   bench/mesh_nodelay.so preloaded (TCP_NODELAY on accepted sockets); not shipped behaviour
#   --skip-setup    do not run scripts/setup.sh bench
#   --skip-build    use build-bm as it is (AEGIS_MESH_BUILD=DIR: another build directory than build-bm)
#   --quick         1 round of 2 s runs and 200 connections: checks the harness; do not quote the figures
#
# Proxies run on core 0 (taskset -c 0), clients and servers on core 1, all at nice -10. Every load is
# bounded in time; every process is a child of the driver, stopped by PID; the namespaces are this run's
# own (bm<pid>-*) and are deleted on exit, whatever happened. Default run: about 5 minutes.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
ROOT=$PWD
orig_args="$*"

skip_setup=0
skip_build=0
pass=()
while [ $# -gt 0 ]; do
	case "$1" in
	--skip-setup) skip_setup=1 ;;
	--skip-build) skip_build=1 ;;
	--rounds | --seconds | --conns | --rate | --pairs) pass+=("$1" "$2"); shift ;;
	--no-perf | --quick) pass+=("$1") ;;
	--aegis-nodelay) pass+=("$1" --nodelay-lib "$ROOT/bench/out/bin/mesh_nodelay.so") ;;
	-h | --help) sed -n '2,26p' "$self"; exit 0 ;;
	*) echo "bench/mesh.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/mesh.sh: needs root (network namespaces, iptables, setpriv)" >&2
	exit 1
fi
say() { printf '[mesh.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
OUT=$ROOT/bench/out
mkdir -p "$OUT/bin"

# ---- packages: nginx, libnginx-mod-stream, haproxy, iperf3, wrk, linux-perf (BENCH_PKGS) ----
# Debian enables nginx's and haproxy's units; where policy-rc.d forbids starts (containers) the install
# starts nothing. A daemon that the install did start is stopped through its init script; daemons that ran
# before are left alone (the benchmark uses its own ports inside its own namespaces).
declare -A before=()
for d in nginx haproxy; do before[$d]=$(pgrep -x "$d" | tr '\n' ' ' || true); done
if [ "$skip_setup" = 0 ]; then
	say "installing packages: scripts/setup.sh bench"
	bash scripts/setup.sh bench
fi
for d in nginx haproxy; do
	now=$(pgrep -x "$d" | tr '\n' ' ' || true)
	if [ -n "$now" ] && [ -z "${before[$d]}" ] && [ -x "/etc/init.d/$d" ]; then
		say "$d was started by the package install (pids $now): /etc/init.d/$d stop"
		/etc/init.d/"$d" stop || true
	fi
done
for t in nginx haproxy iperf3 wrk perf ip iptables setpriv taskset openssl gcc; do
	command -v "$t" >/dev/null || { echo "bench/mesh.sh: $t missing (scripts/setup.sh bench)" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || { echo "bench/mesh.sh: libnginx-mod-stream missing" >&2; exit 1; }

# ---- build: Aegis in Release (tests off, as bench/run.sh), and the load client ----
BUILD_NAME=${AEGIS_MESH_BUILD:-build-bm}
BUILD=$ROOT/$BUILD_NAME
if [ "$skip_build" = 0 ]; then
	say "building Aegis (Release) in $BUILD_NAME"
	nice -n 10 bash scripts/build.sh "$BUILD_NAME" -DCMAKE_BUILD_TYPE=Release -DAEGIS_TESTS=OFF >&2
fi
for b in aegis-proxy aegis-iptables; do
	[ -x "$BUILD/bin/$b" ] || { echo "bench/mesh.sh: $BUILD/bin/$b missing" >&2; exit 1; }
done
gcc -O2 -Wall -Wextra -o "$OUT/bin/mesh_load" bench/mesh_load.c
gcc -O2 -Wall -Wextra -shared -fPIC -o "$OUT/bin/mesh_nodelay.so" bench/mesh_nodelay.c -ldl
chmod a+rx "$OUT/bin/mesh_nodelay.so"

# ---- scratch directory, certificates, driver; everything removed by the EXIT trap ----
RID=bm$$
RUN=$(mktemp -d "/tmp/aegis-$RID.XXXXXX")
chmod 0755 "$RUN"
driver=
cleanup() {
	set +e
	if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
		kill -TERM "$driver" 2>/dev/null
		wait "$driver" 2>/dev/null
	fi
	# The driver deletes its namespaces; this catches what a hard kill left. Only this run's names.
	for ns in $(ip netns list 2>/dev/null | awk -v p="$RID-" 'index($1, p) == 1 { print $1 }'); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns"
	done
	rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Workload certificates from one CA (scripts/make-certs.sh ca), issued here rather than with
# make-certs.sh workload because nginx and HAProxy check a DNS name, not a URI SAN: each certificate has both
# the SPIFFE URI (what Aegis checks) and a DNS name (what the peers check), so all three pairs use the very
# same files. EC P-256, like make-certs.sh.
bash scripts/make-certs.sh ca "$RUN/ca"
mk_cert() { # mk_cert OUT SA
	local out=$RUN/$1 sa=$2
	mkdir -p "$out"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=cluster.local" \
		-keyout "$out/key.pem" -out "$out/req.pem" 2>/dev/null
	printf '%s\n' "basicConstraints=critical,CA:false" "keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth,clientAuth" \
		"subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/$sa,DNS:$sa.default.svc" \
		>"$out/ext.cnf"
	openssl x509 -req -in "$out/req.pem" -CA "$RUN/ca/root-cert.pem" -CAkey "$RUN/ca/ca-key.pem" \
		-CAcreateserial -days 30 -sha256 -extfile "$out/ext.cnf" -out "$out/cert-chain.pem" 2>/dev/null
	cp "$RUN/ca/root-cert.pem" "$out/root-cert.pem"
	cat "$out/cert-chain.pem" "$out/key.pem" >"$out/combined.pem"
	rm -f "$out/req.pem" "$out/ext.cnf"
}
mk_cert certs-a bench-client
mk_cert certs-b bench-server
chmod -R a+rX "$RUN"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain 2>/dev/null | grep -c . || true)
say "uptime: $(uptime)"
/usr/bin/python3 bench/mesh_bench.py --run "$RUN" --rid "$RID" --bin "$BUILD/bin" \
	--load "$OUT/bin/mesh_load" --out "$OUT" --commit "$commit (+$dirty uncommitted files)" \
	--command "bench/mesh.sh${orig_args:+ $orig_args}" "${pass[@]}" &
driver=$!
wait "$driver"
