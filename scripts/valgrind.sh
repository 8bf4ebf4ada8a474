#!/usr/bin/env bash
# valgrind memcheck over integration tests: every aegis-proxy and aegis-xds the tests start runs under
# memcheck (through wrapper scripts put first in AEGIS_BIN), with leak checking on definite and indirect
# leaks. Fails if a test fails, any process reports an error or a leak, or no process ran under memcheck.
#
#   scripts/valgrind.sh [TEST...]     default: the fifteen of DEFAULT_TESTS below
#
# scripts/test.sh (CI) runs it with the default set after the normal suite; docs/hardening.md says why
# these tests. Environment:
#   VALGRIND_BUILD_DIR   build tree whose bin/ is used (default build/, made if missing)
#   VALGRIND_TIMEOUT     seconds per test file before it counts as failed (default 900)
#   VALGRIND_JOBS        test files run at once (default 2)
# Tests see AEGIS_SLOW=10 (tests/lib/common.sh): their start-up waits are ten times longer, as each
# process runs ~20-50x slower under memcheck.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${VALGRIND_BUILD_DIR:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
[ -x "$BUILD/bin/aegis-proxy" ] || bash scripts/build.sh "$BUILD"
command -v valgrind >/dev/null || bash scripts/setup.sh test
TESTS=("$@")
# Every integration test that starts aegis-proxy or aegis-xds, except those that measure what memcheck
# changes: test_faults_xds (peak RSS), test_mesh_traffic (connection counts and weighted splits within a
# time budget), test_mesh_xds (routes within a fixed wait), test_mesh_hbone (iperf3 transfers and reset
# counts), test_faults_tls (its first relayed echo); the last two failed in one run of two under
# memcheck. test_capture_pod needs root (it skips otherwise). docs/hardening.md "valgrind".
DEFAULT_TESTS=(test_dns_proxy test_forwarding test_admin test_xds_proxy test_xds test_xds_tls test_security
	test_dnssec test_faults test_faults_mem test_kube_source test_capture_pod test_dns_workers test_status_port
	test_hbone_interop)
[ ${#TESTS[@]} -gt 0 ] || TESTS=("${DEFAULT_TESTS[@]}")
WORK=$(mktemp -d /tmp/aegis-valgrind.XXXXXX)
chmod 0777 "$WORK" # the proxy drops to UID 1337 and still writes its log here
trap 'rm -rf "$WORK/bin"' EXIT
mkdir -p "$WORK/bin" "$WORK/logs"
chmod 0777 "$WORK/logs"
for prog in "$BUILD"/bin/*; do
	name=$(basename "$prog")
	case "$name" in
	aegis-proxy | aegis-xds)
		# absl's RandenPool in libgrpc is a process-lifetime "possibly lost" block (STACK_NOTES.md):
		# only definite and indirect leaks count.
		printf '#!/bin/sh\nexec valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --log-file=%s/logs/%s.%%p.log %s "$@"\n' \
			"$WORK" "$name" "$prog" >"$WORK/bin/$name"
		chmod +x "$WORK/bin/$name"
		;;
	*) ln -s "$prog" "$WORK/bin/$name" ;;
	esac
done
# Tests run VALGRIND_JOBS at a time (they are parallel-safe: ctest -j2 runs them so in CI); results are
# printed in order.
run_one() {
	local t=$1 t0
	t0=$(date +%s)
	if AEGIS_BIN="$WORK/bin" AEGIS_SRC_DIR="$ROOT" AEGIS_BUILD_DIR="$BUILD" AEGIS_SLOW=10 \
		timeout "${VALGRIND_TIMEOUT:-900}" bash "tests/integration/$t.sh" >"$WORK/$t.out" 2>&1; then
		echo 0 >"$WORK/$t.rc"
	else
		echo 1 >"$WORK/$t.rc"
	fi
	echo $(($(date +%s) - t0)) >"$WORK/$t.secs"
}
for t in "${TESTS[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "${VALGRIND_JOBS:-2}" ]; do sleep 0.5; done
	run_one "$t" &
done
wait
rc=0
for t in "${TESTS[@]}"; do
	echo "== $t under valgrind"
	if [ "$(cat "$WORK/$t.rc" 2>/dev/null)" != 0 ]; then
		echo "   test failed: $WORK/$t.out"
		grep '^FAIL' "$WORK/$t.out" | head -5 | sed 's/^/   /'
		rc=1
	fi
	summary=$(grep -E 'passed|failed' "$WORK/$t.out" | tail -1)
	echo "   ${summary:-$(tail -1 "$WORK/$t.out")} ($(cat "$WORK/$t.secs" 2>/dev/null) s)"
done
# A process killed with SIGKILL on purpose (test_xds_proxy kills aegis-xds) writes no summary: it is
# listed as unchecked, not as a failure.
n=$(ls "$WORK"/logs/*.log 2>/dev/null | wc -l)
unchecked=$(grep -L 'ERROR SUMMARY' "$WORK"/logs/*.log 2>/dev/null)
bad=$(grep -l 'ERROR SUMMARY' "$WORK"/logs/*.log 2>/dev/null | xargs -r grep -L 'ERROR SUMMARY: 0 errors')
echo "== $n processes, $(echo "$unchecked" | grep -c .) killed before exit (unchecked); logs in $WORK/logs"
if [ "$n" -eq 0 ]; then
	echo "no process ran under memcheck"
	rc=1
elif [ -n "$bad" ]; then
	echo "memcheck reported errors or leaks in:"
	echo "$bad"
	rc=1
else
	grep -h 'definitely lost\|indirectly lost' "$WORK"/logs/*.log | sed 's/==[0-9]*==//' | sort | uniq -c
fi
exit $rc
