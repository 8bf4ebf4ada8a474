#!/usr/bin/env bash
# A "pod" made of network namespaces, for the capture tests (docs/capture.md).
#
#   aegis-pod-<id>   the pod: lo, eth0 = 10.253.0.2/30 and fd53:ae61::2/64, /etc/netns/aegis-pod-<id>/resolv.conf
#                    with the Kubernetes search list, ndots:5 and nameserver 10.253.0.1; no default route
#   aegis-node-<id>  the node/upstream: lo, veth0 = 10.253.0.1/30 and fd53:ae61::1/64
#
# The addresses exist only inside these two namespaces and nothing routes out of them, so parallel runs
# (each with its own <id>) cannot collide and no packet ever leaves the machine.
#
# Sourced by tests:            . tests/lib/pod.sh; pod_init; pod_create; ...
# Run by hand (needs root):    sudo tests/lib/pod.sh demo      (see docs/capture.md)
#
# pod_init registers pod_teardown with `trap ... EXIT`: it kills exactly the processes that pod_spawn
# started (and anything still inside the two namespaces, which only this run created), deletes the
# namespaces (and with them every iptables rule inside) and /etc/netns/aegis-pod-<id>, even when a test fails.
# A test that needs its own clean-up adds it with pod_defer "command" rather than replacing the trap.

POD_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POD_SRC_DIR=${AEGIS_SRC_DIR:-$(cd "$POD_LIB_DIR/../.." && pwd)}
POD_PYTHON=/usr/bin/python3 # not a pyenv shim: UID 1337 cannot read /root
POD_PROXY_UID=1337
POD_PROXY_GID=1337

POD_ADDR=10.253.0.2
NODE_ADDR=10.253.0.1
POD_ADDR6=fd53:ae61::2
NODE_ADDR6=fd53:ae61::1

pod_log() { echo "pod.sh: $*" >&2; }

# pod_init: names this run's pod, makes its scratch directory and registers the teardown.
pod_init() {
	if [ "$(id -u)" -ne 0 ]; then
		pod_log "must run as root (network namespaces, iptables)"
		return 1
	fi
	POD_ID=${AEGIS_POD_ID:-$$-$(printf '%04x' $((RANDOM)))}
	POD_NS=aegis-pod-$POD_ID
	NODE_NS=aegis-node-$POD_ID
	POD_K8S_NS=${POD_K8S_NS:-default}
	POD_RESOLV=/etc/netns/$POD_NS/resolv.conf
	POD_PIDS=()
	POD_DEFER=()
	POD_RUN=$(mktemp -d "/tmp/aegis-pod-$POD_ID.XXXXXX")
	chmod 0755 "$POD_RUN"
	# Files the proxy (UID 1337) writes: counters, logs.
	mkdir -p "$POD_RUN/proxy"
	chown "$POD_PROXY_UID:$POD_PROXY_GID" "$POD_RUN/proxy"
	trap pod_teardown EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# pod_create: the two namespaces, the veth between them and the pod's resolv.conf.
pod_create() {
	if ip netns list | grep -qw -e "$POD_NS" -e "$NODE_NS"; then
		pod_log "namespace $POD_NS or $NODE_NS already exists"
		return 1
	fi
	ip netns add "$POD_NS" || return 1
	ip netns add "$NODE_NS" || return 1
	ip -n "$POD_NS" link set lo up
	ip -n "$NODE_NS" link set lo up
	# Created inside the pod with its peer inside the node: no interface ever appears in the caller's namespace.
	ip -n "$POD_NS" link add eth0 type veth peer name veth0 netns "$NODE_NS" || return 1
	ip -n "$POD_NS" addr add "$POD_ADDR/30" dev eth0
	ip -n "$NODE_NS" addr add "$NODE_ADDR/30" dev veth0
	ip -n "$POD_NS" -6 addr add "$POD_ADDR6/64" dev eth0 nodad
	ip -n "$NODE_NS" -6 addr add "$NODE_ADDR6/64" dev veth0 nodad
	ip -n "$POD_NS" link set eth0 up
	ip -n "$NODE_NS" link set veth0 up
	mkdir -p "/etc/netns/$POD_NS"
	cat >"$POD_RESOLV" <<-EOF
		search $POD_K8S_NS.svc.cluster.local svc.cluster.local cluster.local
		nameserver $NODE_ADDR
		options ndots:5
	EOF
	chmod 0644 "$POD_RESOLV"
}

# Runs a command in the pod as root (the application), as the proxy (UID/GID 1337), or in the node.
pod_exec() { ip netns exec "$POD_NS" "$@"; }
pod_exec_proxy() {
	ip netns exec "$POD_NS" setpriv --reuid "$POD_PROXY_UID" --regid "$POD_PROXY_GID" --clear-groups "$@"
}
node_exec() { ip netns exec "$NODE_NS" "$@"; }

# pod_spawn NAME pod|proxy|node CMD...: starts CMD in the background (ip netns exec and setpriv exec it, so
# the recorded PID is CMD's own), output in $POD_RUN/NAME.log, PID in $POD_RUN/NAME.pid.
pod_spawn() {
	local name=$1 where=$2
	shift 2
	local -a pre
	case $where in
	pod) pre=(ip netns exec "$POD_NS") ;;
	proxy) pre=(ip netns exec "$POD_NS" setpriv --reuid "$POD_PROXY_UID" --regid "$POD_PROXY_GID" --clear-groups) ;;
	node) pre=(ip netns exec "$NODE_NS") ;;
	*) pod_log "pod_spawn: where is pod, proxy or node, not '$where'"; return 1 ;;
	esac
	"${pre[@]}" "$@" >"$POD_RUN/$name.log" 2>&1 </dev/null &
	local pid=$!
	POD_PIDS+=("$pid")
	echo "$pid" >"$POD_RUN/$name.pid"
}

# Ends one process this run started: TERM, then KILL after 3 s.
pod__kill() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# pod_stop NAME: ends the process pod_spawn started under NAME.
pod_stop() {
	local f=$POD_RUN/$1.pid
	[ -f "$f" ] || return 0
	pod__kill "$(cat "$f")"
	rm -f "$f"
}

# pod_wait_file FILE [SECONDS]: waits (bounded, default 10 s) until FILE exists.
# pod_wait_dns pod|node SERVER PORT NAME: until a query for NAME to SERVER:PORT, sent from the pod or the
# node, gets an answer (any: dig succeeds), at most 10 s, stretched by AEGIS_SLOW (scripts/valgrind.sh sets
# it to 10: a proxy under memcheck starts slowly, more so beside the other valgrind tests). 0, or 1.
pod_wait_dns() {
	local where=$1 server=$2 port=$3 name=$4 i
	for ((i = 0; i < 100 * ${AEGIS_SLOW:-1}; i++)); do
		"${where}_exec" dig "@$server" -p "$port" +tries=1 +time=1 "$name" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

pod_wait_file() {
	local f=$1 limit=$(( ${2:-10} * 10 )) i
	for ((i = 0; i < limit; i++)); do
		[ -e "$f" ] && return 0
		sleep 0.1
	done
	return 1
}

# pod_start_standin NAME pod|proxy|node ANSWER LISTEN... [-- EXTRA ARGS]: starts tests/lib/dns_standin.py
# (UDP+TCP on each LISTEN) and waits until its sockets are bound. Its counter: pod_count NAME.
pod_start_standin() {
	local name=$1 where=$2 answer=$3
	shift 3
	local dir=$POD_RUN
	[ "$where" = proxy ] && dir=$POD_RUN/proxy
	local -a args=(--answer "$answer" --count-file "$dir/$name.count" --log-file "$dir/$name.queries"
		--ready-file "$dir/$name.ready" --max-seconds "${POD_STANDIN_MAX_SECONDS:-600}")
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			shift
			args+=("$@")
			break
		fi
		args+=(--listen "$1")
		shift
	done
	# The script is copied where UID 1337 can read it whatever the checkout's permissions are.
	cp "$POD_LIB_DIR/dns_standin.py" "$POD_RUN/dns_standin.py"
	chmod 0644 "$POD_RUN/dns_standin.py"
	rm -f "$dir/$name.ready"
	pod_spawn "$name" "$where" "$POD_PYTHON" "$POD_RUN/dns_standin.py" "${args[@]}"
	if ! pod_wait_file "$dir/$name.ready" 10; then
		pod_log "stand-in $name did not start:"
		cat "$POD_RUN/$name.log" >&2
		return 1
	fi
	echo "$dir/$name.count" >"$POD_RUN/$name.countpath"
}

# pod_count NAME [total|udp|tcp]: what a stand-in has answered so far.
pod_count() {
	local field=1
	case ${2:-total} in udp) field=2 ;; tcp) field=3 ;; esac
	cut -d' ' -f"$field" "$(cat "$POD_RUN/$1.countpath")"
}

# pod_apply_rules ARGS...: aegis-iptables apply inside the pod (rules live in the pod's namespace only).
pod_apply_rules() { pod_exec "$POD_IPTABLES" apply "$@"; }
pod_clean_rules() { pod_exec "$POD_IPTABLES" clean "$@"; }

# pod_defer "command": run at teardown (last registered runs first).
pod_defer() { POD_DEFER+=("$1"); }

pod_teardown() {
	local rc=$? i pid ns
	set +e
	trap - EXIT INT TERM
	for ((i = ${#POD_DEFER[@]} - 1; i >= 0; i--)); do
		eval "${POD_DEFER[$i]}"
	done
	for pid in "${POD_PIDS[@]}"; do
		pod__kill "$pid"
	done
	for ns in "$POD_NS" "$NODE_NS"; do
		[ -n "$ns" ] || continue
		ip netns list | grep -qw "$ns" || continue
		# Anything left inside is ours: the namespace was made by this run.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns"
	done
	[ -n "$POD_NS" ] && rm -rf "/etc/netns/$POD_NS"
	if [ -n "$POD_RUN" ] && [ -d "$POD_RUN" ]; then
		if [ "${AEGIS_KEEP_POD_RUN:-0}" = 1 ]; then
			pod_log "kept $POD_RUN"
		else
			rm -rf "$POD_RUN"
		fi
	fi
	return "$rc"
}

# Where the programs are: $AEGIS_BIN (ctest sets it), else build/bin of the checkout.
pod_find_bins() {
	POD_BIN=${AEGIS_BIN:-$POD_SRC_DIR/build/bin}
	POD_IPTABLES=$POD_BIN/aegis-iptables
	POD_PROXY=$POD_BIN/aegis-proxy
}

# The proxy's command line in a pod (ARCHITECTURE.md), listening on both loopbacks.
pod_proxy_cmd() {
	echo "$POD_PROXY" --config "$POD_SRC_DIR/examples/mesh" --dns-listen 127.0.0.1:15053 \
		--dns-listen "[::1]:15053" --namespace "$POD_K8S_NS" --resolv-conf "$POD_RESOLV"
}

# `pod.sh demo`: a captured pod to explore by hand; everything is removed when the shell exits.
pod_demo() {
	set -e
	pod_find_bins
	if [ ! -x "$POD_IPTABLES" ]; then
		pod_log "no $POD_IPTABLES: build first (cmake -S . -B build && cmake --build build), or set AEGIS_BIN"
		exit 1
	fi
	pod_init
	pod_create
	pod_start_standin upstream node 192.0.2.53 "$NODE_ADDR:53" "[$NODE_ADDR6]:53"
	if [ -x "$POD_PROXY" ] && [ "${1:-}" != --standin ]; then
		# shellcheck disable=SC2046
		pod_spawn proxy proxy $(pod_proxy_cmd)
		what="aegis-proxy (log: $POD_RUN/proxy.log)"
	else
		pod_start_standin proxy proxy 198.51.100.1 127.0.0.1:15053 "[::1]:15053"
		what="the stand-in responder (answers 198.51.100.1; no aegis-proxy in $POD_BIN)"
	fi
	pod_apply_rules
	set +e
	cat <<-EOF

		Pod $POD_NS is captured: its DNS goes to $what.
		The node namespace $NODE_NS answers $NODE_ADDR:53 with 192.0.2.53 (what an uncaptured query gets).
		Try:  getent hosts reviews     dig reviews.default.svc.cluster.local     iptables-save
		      setpriv --reuid 1337 --regid 1337 --clear-groups dig @$NODE_ADDR x.example   (the proxy's UID: not captured)
		Exit the shell to remove the pod.

	EOF
	PATH="$POD_BIN:$PATH" PS1="(aegis-pod) \\w# " pod_exec bash --norc -i
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	demo) shift; pod_demo "$@" ;;
	*) echo "usage: sudo $0 demo [--standin]   (or source it from a test)" >&2; exit 2 ;;
	esac
fi
