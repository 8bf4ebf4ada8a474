#!/usr/bin/env bash
# clang-format over the project's own C sources (generated protobuf code excluded).
# --check: report files that differ and exit 1; otherwise rewrite them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v -e '\.pb-c\.' -e '^tests/fuzz/corpus/')
[ ${#files[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
	bad=()
	for f in "${files[@]}"; do
		[ -f "$f" ] || continue
		clang-format --style=file "$f" | cmp -s - "$f" || bad+=("$f")
	done
	if [ ${#bad[@]} -gt 0 ]; then
		echo "format check failed (run scripts/format.sh): ${bad[*]}" >&2
		exit 1
	fi
	echo "format ok (${#files[@]} files)"
else
	clang-format --style=file -i "${files[@]}"
fi
