#!/usr/bin/env bash
# Installs every Debian 12 package that building, running and testing Aegis needs.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once per machine boot
# (the stamp lives in /run), or always with AEGIS_APT_UPDATE=1.
set -euo pipefail

BUILD_PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libev-dev libldns-dev libssl-dev libnghttp2-dev libyaml-dev libjansson-dev libhttp-parser-dev
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler libgrpc-dev libcurl4-openssl-dev
  libcmocka-dev
)
TEST_PKGS=(
  dnsutils knot-dnsutils iproute2 iptables procps python3 python3-protobuf python3-yaml
  python3-jsonpatch python3-h2 musl-tools curl prometheus valgrind openssl util-linux
  ldnsutils nsd
)
BENCH_PKGS=(dnsperf unbound nsd knot dnsdist linux-perf nginx libnginx-mod-stream haproxy iperf3 wrk strace)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  bench) want+=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  all) want+=("${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [build|test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages (${missing[*]}); run as root" >&2
  exit 1
fi
stamp=/run/aegis-apt-updated
if [ ! -e "$stamp" ] || [ "${AEGIS_APT_UPDATE:-0}" = 1 ]; then
  apt-get update -q
  touch "$stamp" 2>/dev/null || true
fi
# Benchmark peers (unbound, nsd, knot, dnsdist) ship enabled systemd units; on a machine without
# systemd, policy-rc.d keeps the install from trying to start them.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
