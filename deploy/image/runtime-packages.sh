#!/usr/bin/env bash
# Prints the Debian packages that the binaries given as arguments load at run time (ldd, then dpkg -S),
# one a line. The Dockerfile's build stage runs it so that the runtime stage installs exactly the shared
# libraries of what was built, and a new dependency can never be forgotten in a hand-kept list.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
for bin in "$@"; do
	ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
	# /lib is a symlink to /usr/lib on Debian 12: dpkg knows the file under one of the two names.
	dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null ||
		{ echo "runtime-packages.sh: no package owns $lib" >&2; exit 1; }
done | cut -d: -f1 | sort -u
