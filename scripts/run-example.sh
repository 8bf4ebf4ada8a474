#!/usr/bin/env bash
# README command 1: install what is needed, build, and run aegis-proxy on the bundled example mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
bash scripts/build.sh build
PORT=${AEGIS_DNS_PORT:-15053}
cat <<MSG

aegis-proxy is starting on the example mesh (examples/mesh), answering DNS on 127.0.0.1:$PORT and
[::1]:$PORT (UDP and TCP); admin on 127.0.0.1:15000. Try, in another terminal:

  dig @127.0.0.1 -p $PORT reviews.default.svc.cluster.local
  dig @127.0.0.1 -p $PORT api.example.com.default.svc.cluster.local    # search suffix -> CNAME + VIP
  dig @127.0.0.1 -p $PORT en.wikipedia.org                             # wildcard ServiceEntry
  dig @127.0.0.1 -p $PORT _http._tcp.reviews.default.svc.cluster.local SRV
  kdig @127.0.0.1 -p $PORT +tcp db.shop.svc.cluster.local               # headless service

Edit a file under examples/mesh and the table reloads; Ctrl-C stops the proxy.

MSG
exec build/bin/aegis-proxy --config examples/mesh --cluster east --namespace default \
	--dns-listen "127.0.0.1:$PORT" --dns-listen "[::1]:$PORT" "$@"
