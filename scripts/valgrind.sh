#!/usr/bin/env bash
# valgrind memcheck over integration tests: every aegis-proxy and aegis-xds the tests start runs under
# memcheck (through wrapper scripts put first in AEGIS_BIN), with leak checking on definite and indirect
# leaks. Fails if a test fails or any process reports an error or a leak.
#
#   scripts/valgrind.sh [TEST...]     default: test_dns_proxy test_forwarding test_admin test_xds_proxy
#
# Uses the normal build (build/, made if missing). Slow (each process runs ~20x slower); not part of CI.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x build/bin/aegis-proxy ] || bash scripts/build.sh build
command -v valgrind >/dev/null || bash scripts/setup.sh test
TESTS=("$@")
[ ${#TESTS[@]} -gt 0 ] || TESTS=(test_dns_proxy test_forwarding test_admin test_xds_proxy)
WORK=$(mktemp -d /tmp/aegis-valgrind.XXXXXX)
chmod 0777 "$WORK" # the proxy drops to UID 1337 and still writes its log here
trap 'rm -rf "$WORK/bin"' EXIT
mkdir -p "$WORK/bin" "$WORK/logs"
chmod 0777 "$WORK/logs"
for prog in "$ROOT"/build/bin/*; do
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
rc=0
for t in "${TESTS[@]}"; do
	echo "== $t under valgrind"
	if ! AEGIS_BIN="$WORK/bin" AEGIS_SRC_DIR="$ROOT" AEGIS_BUILD_DIR="$ROOT/build" \
		timeout 1200 bash "tests/integration/$t.sh" >"$WORK/$t.out" 2>&1; then
		echo "   test failed: $WORK/$t.out"
		rc=1
	fi
	tail -1 "$WORK/$t.out"
done
# A process killed with SIGKILL on purpose (test_xds_proxy kills aegis-xds) writes no summary: it is
# listed as unchecked, not as a failure.
n=$(ls "$WORK"/logs/*.log 2>/dev/null | wc -l)
unchecked=$(grep -L 'ERROR SUMMARY' "$WORK"/logs/*.log 2>/dev/null)
bad=$(grep -l 'ERROR SUMMARY' "$WORK"/logs/*.log 2>/dev/null | xargs -r grep -L 'ERROR SUMMARY: 0 errors')
echo "== $n processes, $(echo "$unchecked" | grep -c .) killed before exit (unchecked); logs in $WORK/logs"
if [ -n "$bad" ]; then
	echo "memcheck reported errors or leaks in:"
	echo "$bad"
	rc=1
else
	grep -h 'definitely lost\|indirectly lost' "$WORK"/logs/*.log | sed 's/==[0-9]*==//' | sort | uniq -c
fi
exit $rc
