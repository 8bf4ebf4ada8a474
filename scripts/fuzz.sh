#!/usr/bin/env bash
# Builds every libFuzzer harness (tests/fuzz/fuzz_*.c) with clang, libFuzzer and ASan+UBSan in build-fuzz/,
# then runs each one for SECONDS (default 600) and prints a table of runs, execs/s, coverage (libFuzzer's
# "cov": edges reached) and features per harness.
#
#   scripts/fuzz.sh [SECONDS]
#
# Each harness starts from its checked-in corpus (tests/fuzz/corpus/<name>/) and writes what it finds
# into a scratch corpus (FUZZ_OUT, default /tmp/aegis-fuzz/corpus/<name>/), never into the checked-in one.
# tests/fuzz/dict/<name>.dict is used when it exists. A crash, leak, timeout or sanitizer report stops that
# harness; its input is saved under FUZZ_OUT/../artifacts/<name>/ and the script exits 1 at the end.
#
# Environment:
#   FUZZ_ONLY=REGEX   run only harnesses whose name (without fuzz_) matches, e.g. FUZZ_ONLY='xds|spiffe'
#   FUZZ_JOBS=N       harnesses run N at a time (default 1; each is one process on one core)
#   FUZZ_OUT=DIR      scratch corpora (default /tmp/aegis-fuzz/corpus)
#   FUZZ_MERGE=1      afterwards, merge the scratch corpus into tests/fuzz/corpus/<name>/ (libFuzzer
#                     -merge=1: only inputs that add coverage, minimised set), for a commit
#   FUZZ_MAX_LEN=N    largest input libFuzzer generates (default: the largest seed, at least 4096)
#   FUZZ_NO_BUILD=1   use build-fuzz/ as it is
#   FUZZ_BUILD_DIR    default build-fuzz
set -uo pipefail

SECONDS_EACH=${1:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
OUT=${FUZZ_OUT:-/tmp/aegis-fuzz/corpus}
ART=$(dirname "$OUT")/artifacts
LOGS=$(dirname "$OUT")/logs
JOBS=${FUZZ_JOBS:-1}
case $SECONDS_EACH in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
	CC=clang cmake -S "$ROOT" -B "$BUILD" -DAEGIS_FUZZ=ON -DAEGIS_SANITIZE=address,undefined \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.cmake.log" 2>&1 || { cat "$BUILD.cmake.log"; exit 1; }
fi

names=()
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	n=$(basename "$src" .c)
	n=${n#fuzz_}
	if [ -n "${FUZZ_ONLY:-}" ] && ! [[ $n =~ $FUZZ_ONLY ]]; then continue; fi
	names+=("$n")
done
[ ${#names[@]} -gt 0 ] || { echo "no harness matches FUZZ_ONLY=${FUZZ_ONLY:-}" >&2; exit 2; }

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
	targets=()
	for n in "${names[@]}"; do targets+=("fuzz_$n"); done
	cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]}" || exit 1
fi

mkdir -p "$OUT" "$ART" "$LOGS"

run_one() {
	local n=$1 bin=$BUILD/tests/fuzz_$1 dict=() log=$LOGS/$1.log
	[ -f "$ROOT/tests/fuzz/dict/$n.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$n.dict")
	mkdir -p "$OUT/$n" "$ART/$n"
	local maxlen=()
	[ -n "${FUZZ_MAX_LEN:-}" ] && maxlen=(-max_len="$FUZZ_MAX_LEN")
	# -timeout 10 s per input; -rss_limit_mb 2048 turns a runaway allocation into a finding instead of an
	# OOM kill. Input size: libFuzzer's default (the largest seed, at least 4096) unless FUZZ_MAX_LEN.
	"$bin" "$OUT/$n" "$ROOT/tests/fuzz/corpus/$n" "${dict[@]}" "${maxlen[@]}" -max_total_time="$SECONDS_EACH" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$ART/$n/" >"$log" 2>&1
	echo $? >"$LOGS/$n.rc"
}

for n in "${names[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
	echo "fuzzing $n for ${SECONDS_EACH}s ..."
	run_one "$n" &
done
# Plain wait: a job already reaped by `jobs` cannot be waited for by PID (bash: "not a child").
wait

fail=0
printf '%-18s %10s %8s %9s %7s %7s %s\n' harness runs seconds execs/s cov ft result
for n in "${names[@]}"; do
	log=$LOGS/$n.log
	rc=$(cat "$LOGS/$n.rc" 2>/dev/null || echo 1)
	runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
	secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
	cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
	eps=-
	[ -n "$runs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ] && eps=$((runs / secs))
	res=ok
	if [ "$rc" != 0 ]; then
		res="FAILED (rc $rc): $(grep -m1 -E 'ERROR:|SUMMARY:' "$log") see $log, $ART/$n/"
		fail=1
	fi
	printf '%-18s %10s %8s %9s %7s %7s %s\n' "$n" "${runs:--}" "${secs:--}" "$eps" "${cov:--}" "${ft:--}" "$res"
	if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" = 0 ]; then
		"$BUILD/tests/fuzz_$n" -merge=1 "$ROOT/tests/fuzz/corpus/$n" "$OUT/$n" >"$LOGS/$n.merge.log" 2>&1 ||
			echo "merge of $n failed: $LOGS/$n.merge.log"
	fi
done
echo "scratch corpora: $OUT  logs: $LOGS"
exit $fail
