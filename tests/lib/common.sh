# Shared helpers for integration tests (sourced). Every process a test starts is recorded and killed by
# PID on exit, whatever happened; temporary files live under one directory removed on exit.
set -uo pipefail

# Debian's python3 (with python3-yaml, -jsonpatch, -protobuf from scripts/setup.sh) before any other on
# PATH, such as a pyenv shim without those packages.
export PATH="/usr/bin:$PATH"

: "${AEGIS_SRC_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${AEGIS_BIN:=$AEGIS_SRC_DIR/build/bin}"
AEGIS_TMP=$(mktemp -d /tmp/aegis-test.XXXXXX)
# Readable by UID 1337: aegis-proxy started as root drops to 1337 after binding (docs/security.md) and
# re-reads its config files as that user on reload.
chmod 0755 "$AEGIS_TMP"
AEGIS_PIDS=()
AEGIS_FAILS=0
AEGIS_PASSES=0
AEGIS_CLEANUPS=()

aegis_cleanup() {
	local rc=$?
	for fn in "${AEGIS_CLEANUPS[@]}"; do "$fn" || true; done
	for pid in "${AEGIS_PIDS[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -f "$AEGIS_TMP/ports" ] && xargs -r rmdir 2>/dev/null <"$AEGIS_TMP/ports"
	rm -rf "$AEGIS_TMP"
	exit $rc
}
trap aegis_cleanup EXIT INT TERM

# A TCP+UDP port free on 127.0.0.1 now (the kernel's choice), and claimed: the kernel may hand the same
# released port out again (one CI run gave a test's admin port to its next proxy's DNS listener), so
# every port handed out is claimed as /tmp/aegis-ports-UID/PORT (mkdir is atomic, so parallel tests do
# not share one either; one directory per user, so a root run does not lock others out) and released
# when the test ends. Claims older than an hour are stale.
AEGIS_PORT_CLAIMS=/tmp/aegis-ports-$(id -u)
free_port() {
	python3 - "$AEGIS_PORT_CLAIMS" "$AEGIS_TMP/ports" <<'PY'
import os, socket, sys, time
claims, mine = sys.argv[1], sys.argv[2]
os.makedirs(claims, mode=0o700, exist_ok=True)
for _ in range(200):
    t = socket.socket(); t.bind(('127.0.0.1', 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(('127.0.0.1', port))
        path = os.path.join(claims, str(port))
        try:
            os.mkdir(path)
        except FileExistsError:
            if time.time() - os.stat(path).st_mtime < 3600:
                continue
        with open(mine, "a") as f:
            f.write(path + "\n")
        print(port)
        break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PY
}

pass() { AEGIS_PASSES=$((AEGIS_PASSES + 1)); echo "ok - $*"; }
fail() { AEGIS_FAILS=$((AEGIS_FAILS + 1)); echo "FAIL - $*"; }

# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
	if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: got [$2], want [$3]"; fi
}
# expect_match DESCRIPTION ACTUAL REGEX
expect_match() {
	if [[ "$2" =~ $3 ]]; then pass "$1"; else fail "$1: [$2] does not match /$3/"; fi
}

# Starts a program in the background with its stderr in $AEGIS_TMP/<name>.log; sets LAST_PID.
start_bg() {
	local name=$1; shift
	"$@" >"$AEGIS_TMP/$name.out" 2>"$AEGIS_TMP/$name.log" &
	LAST_PID=$!
	AEGIS_PIDS+=("$LAST_PID")
}

# AEGIS_SLOW=N stretches start-up waits N times, for programs run under valgrind (scripts/valgrind.sh).
AEGIS_SLOW=${AEGIS_SLOW:-1}

# wait_dns PORT NAME [ADDR]: until the server answers (any rcode) or 10 s (times AEGIS_SLOW) pass.
wait_dns() {
	local port=$1 name=$2 addr=${3:-127.0.0.1}
	for _ in $(seq 1 $((100 * AEGIS_SLOW))); do
		if dig @"$addr" -p "$port" "$name" +tries=1 +time=1 >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}

# finish: prints the plain summary line and exits non-zero on any failure.
finish() {
	echo "$AEGIS_PASSES passed, $AEGIS_FAILS failed"
	[ "$AEGIS_FAILS" -eq 0 ]
}
