/* HBONE inbound (docs/mesh.md): the 15008 listener, the authority rule (a CONNECT must name this pod)
 * and the local connect to the application that answers a CONNECT with 200, 400 or 503. The splice,
 * the TLS connection and the session glue are in mesh_hbone.c. */
#include "mesh_hbone_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "sockaddr.h"
#include "hbone.h"
#include "mesh_net.h"

/* ---- the authority rule (tests/unit/test_mesh_hbone.c) ---- */

static bool is_loopback(int family, const uint8_t ip[16])
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return family == AF_INET ? ip[0] == 127 : memcmp(ip, v6lo, 16) == 0;
}

/* The authority rule: the target must be this pod, i.e. a loopback address or one of locals. */
static bool target_local(int family, const uint8_t ip[16], const struct aegis_routes_addr *locals, size_t n)
{
	if (is_loopback(family, ip))
		return true;
	size_t l = family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < n; i++)
		if (locals[i].family == family && memcmp(locals[i].ip, ip, l) == 0)
			return true;
	return false;
}

/* ---- the pod's addresses ---- */

static void refresh_locals(struct aegis_mesh_hbone *hb)
{
	struct ifaddrs *ifs = NULL;
	hb->locals_at = ev_now(hb->loop);
	if (getifaddrs(&ifs) != 0)
		return;
	hb->n_locals = 0;
	for (struct ifaddrs *i = ifs; i != NULL && hb->n_locals < MAX_LOCALS; i = i->ifa_next) {
		if (i->ifa_addr == NULL ||
		    (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
			continue;
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, i->ifa_addr,
		       i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                         : sizeof(struct sockaddr_in6));
		aegis_net_from_sockaddr(&ss, &hb->locals[hb->n_locals++]);
	}
	freeifaddrs(ifs);
}

/* The connection's own local address first (no system call), then the interfaces, re-read at most once
 * a second when an address is not found (a pod's addresses rarely change). */
static bool local_target(struct aegis_mesh_hbone *hb, const struct hconn *c, int family, const uint8_t ip[16])
{
	struct aegis_routes_addr me;
	aegis_net_from_sockaddr(&c->local, &me);
	if (target_local(family, ip, &me, 1) || target_local(family, ip, hb->locals, hb->n_locals))
		return true;
	if (ev_now(hb->loop) - hb->locals_at < 1.0)
		return false;
	refresh_locals(hb);
	return target_local(family, ip, hb->locals, hb->n_locals);
}

/* ---- the local connect ---- */

static void respond(struct hconn *c, struct tun *t, int status)
{
	struct aegis_mesh_hbone *hb = c->hb;
	if (status != 200) {
		hb->stats.connect_failures[AEGIS_MESH_HBONE_IN][status == 400   ? AEGIS_HBONE_F400
		                                                : status == 503 ? AEGIS_HBONE_F503
		                                                                : AEGIS_HBONE_FOTHER]++;
	}
	if (aegis_hbone_respond(c->h, t->id, status, status == 200 ? t : NULL) != 0 || status != 200) {
		if (status == 200)
			aegis_mesh_hbone_tun_note_reset(hb, t, AEGIS_HBONE_R_INTERNAL,
			                                "the 200 could not be queued", 0);
		aegis_mesh_hbone_tun_unlink(t);
		aegis_mesh_hbone_tun_free(hb, t, status == 200);
	} else {
		aegis_mesh_hbone_tun_open(c, t);
	}
	aegis_mesh_hbone_conn_dirty(c);
}

void aegis_mesh_hbone_in_request(void *user, int32_t id, const char *authority)
{
	struct hconn *c = user;
	struct aegis_mesh_hbone *hb = c->hb;
	struct tun *t = aegis_mesh_hbone_tun_new(hb, -1);
	if (t == NULL) {
		hb->stats.stream_resets[AEGIS_MESH_HBONE_IN][AEGIS_HBONE_R_INTERNAL]++;
		AEGIS_LOG(AEGIS_LOG_DEBUG, "hbone: stream reset", LKV_S("conn", c->what),
		          LKV_S("authority", authority), LKV_S("reason", "internal"),
		          LKV_S("why", "out of memory"));
		aegis_hbone_reset(c->h, id);
		return;
	}
	t->id = id;
	aegis_mesh_hbone_tun_add(c, t);
	snprintf(t->authority, sizeof(t->authority), "%s", authority);
	int family;
	uint8_t ip[16];
	uint16_t port;
	if (aegis_hbone_parse_authority(authority, &family, ip, &port) != 0 ||
	    !local_target(hb, c, family, ip)) {
		AEGIS_LOG(AEGIS_LOG_INFO, "hbone: CONNECT to a target that is not this pod: 400",
		          LKV_S("conn", c->what), LKV_S("authority", authority));
		respond(c, t, 400);
		return;
	}
	/* The application listens on the wildcard or loopback address (as for the inbound listener). */
	struct sockaddr_storage to;
	memset(&to, 0, sizeof(to));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(port);
	}
	if (aegis_net_connect(&to, 0, &t->fd) != 0) {
		t->fd = -1;
		respond(c, t, 503);
		return;
	}
	t->st = T_PENDING;
	/* A loopback handshake (or its refusal) has usually completed inside connect() itself: answer now
	 * rather than after one more trip through the loop. */
	struct tcp_info ti;
	socklen_t tl = sizeof(ti);
	bool known = getsockopt(t->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0;
	if (known && ti.tcpi_state == TCP_ESTABLISHED) {
		respond(c, t, 200);
		return;
	}
	if (known && ti.tcpi_state == TCP_CLOSE) {
		aegis_mesh_hbone_in_connected(t); /* refused: SO_ERROR says why */
		return;
	}
	ev_io_set(&t->io, t->fd, EV_WRITE);
	ev_io_start(hb->loop, &t->io);
	aegis_mesh_hbone_tun_timer(hb, t, LOCAL_CONNECT_MS / 1000.0);
}

void aegis_mesh_hbone_in_connected(struct tun *t)
{
	struct hconn *c = t->c;
	int err = aegis_net_connect_result(t->fd);
	ev_io_stop(c->hb->loop, &t->io);
	if (err != 0) {
		AEGIS_LOG(AEGIS_LOG_INFO, "hbone: nothing listening on the target port: 503",
		          LKV_S("conn", c->what), LKV_S("authority", t->authority));
		close(t->fd);
		t->fd = -1;
		respond(c, t, 503);
		return;
	}
	respond(c, t, 200);
}

/* The stream's local connect did not complete in time: 503. */
void aegis_mesh_hbone_in_timeout(struct tun *t)
{
	struct hconn *c = t->c;
	ev_io_stop(c->hb->loop, &t->io);
	close(t->fd);
	t->fd = -1;
	AEGIS_LOG(AEGIS_LOG_INFO, "hbone: local connect timed out: 503", LKV_S("conn", c->what),
	          LKV_S("authority", t->authority));
	respond(c, t, 503);
}

/* ---- the listener ---- */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aegis_mesh_hbone *hb = w->data;
	(void)loop;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		int fd = aegis_net_accept(w->fd, &peer);
		if (fd < 0)
			break;
		struct hconn *c = aegis_mesh_hbone_conn_new(hb, true, fd);
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->peer = peer;
		socklen_t llen = sizeof(c->local);
		if (getsockname(fd, (struct sockaddr *)&c->local, &llen) != 0)
			memset(&c->local, 0, sizeof(c->local));
		char a[64];
		snprintf(c->what, sizeof(c->what), "hbone inbound %s",
		         aegis_sockaddr_str(&peer, a, sizeof(a)));
		aegis_mesh_hbone_conn_start_tls(c);
	}
}

int aegis_mesh_hbone_in_start(struct aegis_mesh_hbone *hb)
{
	const struct aegis_mesh_hbone_opts *opts = &hb->opts;
	int rc = aegis_net_listeners_start(&hb->ls, hb->loop, opts->listen, opts->n_listen,
	                                   opts->listen_defaults, "hbone", accept_cb, hb);
	if (rc != 0)
		return rc;
	refresh_locals(hb);
	return 0;
}

void aegis_mesh_hbone_in_stop(struct aegis_mesh_hbone *hb)
{
	aegis_net_listeners_stop(&hb->ls, hb->loop);
}
