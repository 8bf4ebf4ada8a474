#!/usr/bin/env bash
# README command 2 (and .ci/run): install, build, and run the whole suite twice: a normal build and an
# ASan+UBSan build (arena allocations sent to malloc so the sanitizer sees each one). Unit tests,
# corpus replays of every fuzz harness, and the integration tests that drive the real programs (dig,
# kdig, namespaces, iptables) all run in both; between the two, scripts/valgrind.sh runs the integration
# tests that start aegis-proxy/aegis-xds again with those programs under valgrind memcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

start=$(date +%s)
echo "== format check"
bash scripts/format.sh --check

run_suite() {
	local dir=$1; shift
	echo "== build $dir $*"
	bash scripts/build.sh "$dir" "$@"
	echo "== test $dir"
	ctest --test-dir "$dir" --output-on-failure -j2 --timeout 600
}
run_suite build
# valgrind memcheck of the integration tests that start aegis-proxy and aegis-xds, on the normal build
# (docs/hardening.md: which tests and why); any memcheck error or definite/indirect leak fails CI.
echo "== valgrind (memcheck) build"
vg_start=$(date +%s)
VALGRIND_BUILD_DIR=build bash scripts/valgrind.sh
echo "== valgrind passed in $(( $(date +%s) - vg_start )) s"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -DAEGIS_SANITIZE=address,undefined -DAEGIS_ARENA_MALLOC=ON -DCMAKE_BUILD_TYPE=Debug
echo "== all suites passed in $(( $(date +%s) - start )) s"
