#!/usr/bin/env bash
# The DNS benchmark in one command: installs the peers, builds Aegis in Release, generates the same table
# of names for every server, runs Aegis, unbound (local-data), NSD, Knot and an echo floor side by side,
# alternating over several rounds, and writes a Markdown report to stdout and bench/out/results-<date>.md.
# Method and figures: bench/README.md. Not part of the test suite.
#
#   bench/run.sh [--names N] [--big] [--rounds R] [--cache] [--perf] [--quick] [--fixed-qps Q]
#                [--servers a,b,...] [--nice N] [--skip-setup] [--skip-build] [--build-dir DIR]
#                [--aegis-base PATH]
#
#   --names N       table size for the timed runs (default 10000)
#   --big           100k names for the timed runs; memory at 1k/10k/100k; table cost at 10k/100k/1M
#   --rounds R      rounds over all servers (default 3); medians are reported
#   --cache         also the cache-hit comparison: dnsdist packet cache and unbound forwarding in front of
#                   an authoritative NSD on loopback, and Aegis with --upstream once its forwarder works
#                   (checked at run time; otherwise the Aegis cache-hit run is reported as skipped)
#   --perf          perf record of aegis-proxy answering table hits at saturation (top functions in the report)
#   --quick         1 round, short runs (a smoke test of the harness, not figures to quote)
#   --fixed-qps Q   offered load for the CPU-per-query and latency runs (default 40000: below every
#                   server's saturation on this machine)
#   --servers LIST  subset of aegis,unbound,nsd,knot,echo
#   --nice N        nice value of the servers and load generators (default -10: ahead of other work on
#                   a shared machine; 0 to turn off)
#   --skip-setup    do not run scripts/setup.sh bench (packages already installed)
#   --skip-build    use the build directory as it is
#   --build-dir DIR build directory (default build-bench; relative to the repository)
#   --aegis-base P  also run the aegis-proxy binary P as server "aegis-base" (a build from before a
#                   change), side by side with Aegis in the same rounds and memory passes
#
# Only loopback traffic; every load is bounded (dnsperf -n and -l); every server is a foreground child
# pinned to core 1 with its configuration in a temporary directory, stopped by PID when its turn ends.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."
ROOT=$PWD
orig_args="$*"

names=10000
rounds=3
cache=0
perf=0
quick=0
big=0
fixed_qps=40000
nice=-10
servers=aegis,unbound,nsd,knot,echo
skip_setup=0
skip_build=0
build_dir=build-bench
aegis_base=
while [ $# -gt 0 ]; do
	case "$1" in
	--names) names=$2; shift ;;
	--big) big=1 ;;
	--rounds) rounds=$2; shift ;;
	--cache) cache=1 ;;
	--perf) perf=1 ;;
	--quick) quick=1 ;;
	--fixed-qps) fixed_qps=$2; shift ;;
	--nice) nice=$2; shift ;;
	--servers) servers=$2; shift ;;
	--skip-setup) skip_setup=1 ;;
	--skip-build) skip_build=1 ;;
	--build-dir) build_dir=$2; shift ;;
	--aegis-base) aegis_base=$(readlink -f "$2"); shift ;;
	-h|--help) sed -n '2,31p' "$self"; exit 0 ;;
	*) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
if [ "$big" = 1 ]; then
	names=100000
	mem_sizes=1000,10000,100000
	cost_sizes=10000,100000,1000000
else
	mem_sizes=1000,10000
	cost_sizes=10000,100000
fi
case ",$mem_sizes," in *",$names,"*) ;; *) mem_sizes="$mem_sizes,$names" ;; esac

OUT=$ROOT/bench/out
mkdir -p "$OUT/bin"
say() { printf '[run.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- 1. packages ---------------------------------------------------------------------------------------
# Debian's unbound, nsd, knot and dnsdist packages enable their systemd units. The benchmark never uses
# them: each server runs here as a foreground child with its own configuration. On a machine whose
# policy-rc.d forbids starting services (containers) the install starts nothing; elsewhere, any of these
# daemons that was not running before the install and runs after it was started by the install, and is
# stopped through its init script. Daemons that were already running are left alone.
daemons="unbound nsd knotd dnsdist"
declare -A before=()
for d in $daemons; do before[$d]=$(pgrep -x "$d" | tr '\n' ' ' || true); done
if [ "$skip_setup" = 0 ]; then
	say "installing packages: scripts/setup.sh bench"
	bash scripts/setup.sh bench
fi
for d in $daemons; do
	now=$(pgrep -x "$d" | tr '\n' ' ' || true)
	if [ -n "$now" ] && [ -z "${before[$d]}" ]; then
		svc=$d; [ "$d" = knotd ] && svc=knot
		say "$d was started by the package install (pids $now): stopping it with /etc/init.d/$svc stop"
		if [ -x "/etc/init.d/$svc" ]; then /etc/init.d/"$svc" stop || true; fi
	elif [ -n "$now" ]; then
		say "note: $d was already running before this script (pids $now); left alone (ports differ)"
	fi
done

# ---- 2. build ------------------------------------------------------------------------------------------
BUILD=$ROOT/$build_dir
if [ "$skip_build" = 0 ]; then
	say "building Aegis (Release) in $build_dir"
	if ! bash scripts/build.sh "$build_dir" -DCMAKE_BUILD_TYPE=Release -DAEGIS_TESTS=OFF; then
		# The tree is shared with work in progress: a broken unrelated program must not stop the bench.
		say "WARNING: the full build failed; building only what the bench needs (aegis-proxy, libraries)"
		cmake --build "$BUILD" -j"$(nproc)" --target aegis-proxy aegis_dns aegis_config aegis_common
	fi
fi
AEGIS=$BUILD/bin/aegis-proxy
[ -x "$AEGIS" ] || { echo "bench/run.sh: $AEGIS missing" >&2; exit 1; }
gcc -O2 -Wall -Wextra -o "$OUT/bin/echo_floor" bench/echo_floor.c
gcc -O2 -Wall -Wextra -o "$OUT/bin/loadgen" bench/loadgen.c
table_cost_arg=()
if gcc -O2 -Wall -Wextra -D_GNU_SOURCE -Iinclude -Iproxy -o "$OUT/bin/table_cost" bench/table_cost.c \
	"$BUILD/proxy/libaegis_dns.a" "$BUILD/xds/libaegis_config.a" "$BUILD/common/libaegis_common.a" \
	-lyaml -lpthread; then
	table_cost_arg=(--table-cost "$OUT/bin/table_cost" --table-cost-sizes "$cost_sizes")
else
	say "WARNING: bench/table_cost.c does not build against this tree; table cost skipped"
fi

# ---- 3. tables -----------------------------------------------------------------------------------------
GEN=$OUT/gen
for n in $(printf '%s\n' ${mem_sizes//,/ } | sort -nu); do
	if [ ! -f "$GEN/queries-$n.txt" ] || [ bench/gen_tables.py -nt "$GEN/queries-$n.txt" ]; then
		say "generating the $n-name table"
		python3 bench/gen_tables.py --names "$n" --out "$GEN"
	fi
done
for n in $(printf '%s\n' ${cost_sizes//,/ } | sort -nu); do
	# Sizes used only for the table cost need only the Aegis YAML.
	if [ ! -d "$GEN/aegis-$n" ] || [ bench/gen_tables.py -nt "$GEN/aegis-$n" ]; then
		say "generating the $n-name Aegis YAML"
		python3 bench/gen_tables.py --names "$n" --out "$GEN" --aegis-only
	fi
done
cache_arg=()
if [ "$cache" = 1 ]; then
	# The cache upstream's zone has a one-day TTL, so that nothing expires from a cache mid-run.
	python3 bench/gen_tables.py --names "$names" --out "$OUT/gen-cache" --ttl 86400
	cache_arg=(--cache --gen-cache "$OUT/gen-cache")
fi

# ---- 4. run --------------------------------------------------------------------------------------------
timing=()
if [ "$quick" = 1 ]; then
	rounds=1
	timing=(--sat-seconds 3 --fixed-seconds 3 --cap-seconds 3 --fixed-runs 1)
fi
perf_arg=()
[ "$perf" = 1 ] && perf_arg=(--perf)
base_arg=()
if [ -n "$aegis_base" ]; then
	base_arg=(--aegis-base "$aegis_base")
	case ",$servers," in *",aegis-base,"*) ;; *) servers="$servers,aegis-base" ;; esac
fi
pidfile=$(mktemp /tmp/aegis-bench-pids.XXXXXX)
driver=
cleanup() {
	# The driver stops its servers itself; this catches anything left if the driver was killed hard.
	if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
		kill -TERM "$driver" 2>/dev/null || true
		wait "$driver" 2>/dev/null || true
	fi
	while read -r pid; do
		[ -r "/proc/$pid/cmdline" ] || continue
		if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e 'aegis-bench\.' -e "$OUT/bin/echo_floor"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done <"$pidfile"
	rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "uptime: $(uptime)"
python3 bench/bench.py --gen "$GEN" --names "$names" --mem-sizes "$mem_sizes" --rounds "$rounds" \
	--servers "$servers" --fixed-qps "$fixed_qps" --aegis "$AEGIS" --echo "$OUT/bin/echo_floor" \
	--loadgen "$OUT/bin/loadgen" --nice "$nice" \
	--out "$OUT" --pid-file "$pidfile" --command "bench/run.sh${orig_args:+ $orig_args}" \
	"${table_cost_arg[@]}" "${cache_arg[@]}" "${perf_arg[@]}" "${base_arg[@]}" "${timing[@]}" &
driver=$!
wait "$driver"
