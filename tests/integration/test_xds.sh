#!/usr/bin/env bash
# aegis-xds + two ADS clients (xds_probe: the proxy's client library, one SotW, one delta) on loopback:
# the example mesh arrives; a changed file arrives; an invalid resource is NACKed while the last good
# state stays; an invalid YAML file is skipped; kill -9 and restart of aegis-xds -> both resubscribe,
# VIPs survive (--state-file), and later changes arrive again.
set -euo pipefail

BIN=${AEGIS_BIN:-$(pwd)/build/bin}
SRC=${AEGIS_SRC_DIR:-$(pwd)}
BUILD=${AEGIS_BUILD_DIR:-$(dirname "$BIN")}
PROBE=$BIN/xds_probe
[ -x "$PROBE" ] || PROBE=$BUILD/tests/xds_probe
for f in "$BIN/aegis-xds" "$PROBE"; do
	[ -x "$f" ] || { echo "SKIP: $f not built"; exit 77; }
done

WORK=$(mktemp -d /tmp/aegis-xds-it.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
cp -r "$SRC/examples/mesh" "$WORK/mesh"
ROOT=$WORK/mesh
FAILS=0
pass() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }

start_xds() {
	"$BIN/aegis-xds" --config-root "$ROOT" --listen "$ADDR" --state-file "$WORK/vips.state" \
		--debounce-ms 50 >>"$WORK/xds.log" 2>&1 &
	XDS=$!
	PIDS+=("$XDS")
}

# wait_for FILE REGEX [TIMEOUT_S]: polls until a line matches.
wait_for() {
	local file=$1 re=$2 t=${3:-10} i=0
	while [ $i -lt $((t * 20)) ]; do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}

ms() { date +%s%3N; }

start_xds
"$PROBE" --address "$ADDR" >"$WORK/sotw.out" 2>"$WORK/sotw.err" &
PIDS+=($!)
"$PROBE" --address "$ADDR" --delta >"$WORK/delta.out" 2>"$WORK/delta.err" &
PIDS+=($!)

for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^END 1$' 10 && grep -q '^HOST legacy.company.internal 192.0.2.10 ' "$WORK/$m.out" &&
		grep -q '^SVC default/reviews cluster=east headless=0 ' "$WORK/$m.out" &&
		grep -q '^NAME reviews.east.global ' "$WORK/$m.out"; then
		pass "$m: example mesh received"
	else
		fail "$m: example mesh not received"
	fi
done
VIP_BEFORE=$(grep -m1 '^HOST api.example.com ' "$WORK/sotw.out" || true)
[[ "$VIP_BEFORE" == *240.240.* ]] && pass "auto-allocated VIP: $VIP_BEFORE" || fail "no VIP for api.example.com"

# 1. A changed file reaches both clients.
EXT=$(grep -l '192.0.2.10' "$ROOT"/*/*.yaml | head -1)
t0=$(ms)
sed -i 's/192\.0\.2\.10/192.0.2.99/' "$EXT"
for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^HOST legacy.company.internal 192.0.2.99 ' 10; then
		pass "$m: file change arrived in $(($(ms) - t0)) ms"
	else
		fail "$m: file change did not arrive"
	fi
done

# 2. An invalid resource on the wire (a ServiceEntry without hosts) is NACKed; the old state stays.
mkdir -p "$ROOT/_raw/ServiceEntry"
printf '\x12\x0810.0.0.1' >"$ROOT/_raw/ServiceEntry/bad.pb"
for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^STATUS ServiceEntry NACK .*error=ServiceEntry raw/bad: no hosts' 10; then
		pass "$m: invalid resource NACKed with its reason"
	else
		fail "$m: no NACK for the invalid resource"
	fi
done
grep -q '"msg":"NACK".*raw/bad: no hosts' "$WORK/xds.log" && pass "aegis-xds logged the NACK" || fail "NACK not in the server log"
N_BEFORE=$(grep -c '^END ' "$WORK/sotw.out")
rm -f "$ROOT/_raw/ServiceEntry/bad.pb"
sed -i 's/192\.0\.2\.99/192.0.2.77/' "$EXT"
for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^HOST legacy.company.internal 192.0.2.77 ' 10 &&
		wait_for "$WORK/$m.out" '^STATUS ServiceEntry ACK ' 5; then
		pass "$m: recovered after the invalid resource went away"
	else
		fail "$m: no recovery after the NACK"
	fi
done

# 3. An invalid YAML file is reported and skipped; that cluster keeps its last good content.
echo 'apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: broken
spec: [' >"$(dirname "$EXT")/zz-broken.yaml"
if wait_for "$WORK/xds.log" 'invalid configuration skipped' 10; then pass "invalid YAML reported"; else fail "invalid YAML not reported"; fi
sleep 0.3
grep -q '^HOST legacy.company.internal 192.0.2.77 ' <(tac "$WORK/sotw.out" | grep -m1 '^HOST legacy') &&
	pass "last good state kept while a file is invalid" || fail "state changed by an invalid file"
rm -f "$(dirname "$EXT")/zz-broken.yaml"

# 4. kill -9 and restart: both clients resubscribe; VIPs are stable; changes flow again.
kill -9 "$XDS"
wait "$XDS" 2>/dev/null || true
sleep 0.5
start_xds
for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^STATUS .* streams=[2-9]' 15; then pass "$m: resubscribed after restart"; else fail "$m: no resubscription"; fi
done
t0=$(ms)
sed -i 's/192\.0\.2\.77/192.0.2.55/' "$EXT"
for m in sotw delta; do
	if wait_for "$WORK/$m.out" '^HOST legacy.company.internal 192.0.2.55 ' 10; then
		pass "$m: change after restart arrived in $(($(ms) - t0)) ms"
	else
		fail "$m: change after restart did not arrive"
	fi
done
VIP_AFTER=$(grep '^HOST api.example.com ' "$WORK/sotw.out" | tail -1)
[ "$VIP_AFTER" = "$VIP_BEFORE" ] && pass "VIP stable across restart" || fail "VIP changed: $VIP_BEFORE -> $VIP_AFTER"

if [ $FAILS -ne 0 ]; then
	KEEP=1
	echo "--- xds.log"; tail -30 "$WORK/xds.log"
	echo "--- sotw.out"; grep -v '^NAME' "$WORK/sotw.out" | tail -30
	echo "--- delta.err"; tail -10 "$WORK/delta.err"
	echo "$FAILS check(s) failed"
	exit 1
fi
echo "all checks passed"
