/* HBONE outbound (docs/mesh.md): the pool of client connections keyed by (peer, expected identities),
 * the CONNECT of a stream and its answer. The splice, the TLS connection and the session glue are in
 * mesh_hbone.c. */
#include "mesh_hbone_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "sockaddr.h"
#include "hbone.h"
#include "mesh_net.h"

/* ---- sans-I/O helpers (tests/unit/test_mesh_hbone.c) ---- */

int aegis_mesh_hbone_authority(const struct aegis_routes_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (inet_ntop(a->family, a->ip, ip, sizeof(ip)) == NULL)
		return AEGIS_EINVAL;
	int n = snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
	return n < 0 || (size_t)n >= len ? AEGIS_ESPACE : 0;
}

/* The pool key: the expected identities in order, '\n'-separated (a connection is shared only by routes
 * that expect exactly the same identities of the same peer). 0 or AEGIS_ESPACE. */
static int pool_key(const char *const *ids, size_t n, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(ids[i]);
		if (o + l + 2 > len)
			return AEGIS_ESPACE;
		memcpy(buf + o, ids[i], l);
		o += l;
		buf[o++] = i + 1 < n ? '\n' : '\0';
	}
	if (n > 0)
		buf[o - 1] = '\0';
	return 0;
}

static bool same_peer(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
	return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* Whether a client connection can take one more stream for (peer, key). */
static bool pool_usable(const struct hconn *c, const struct sockaddr_storage *peer, const char *key)
{
	return !c->server && !c->dead && !c->draining && c->n_tuns < AEGIS_HBONE_MAX_STREAMS &&
	       same_peer(&c->peer, peer) && strcmp(c->key, key) == 0;
}

/* ---- the CONNECT and its answer ---- */

/* Client: submits the CONNECT of a stream waiting on c. False when c cannot take it (going away). */
bool aegis_mesh_hbone_out_submit(struct hconn *c, struct tun *t)
{
	int32_t id = aegis_hbone_connect(c->h, t->authority, t->early, t->early_len, t);
	if (id < 0)
		return false;
	t->id = id;
	t->early_queued = t->early_len;
	t->early = NULL;
	t->early_len = 0;
	aegis_mesh_hbone_conn_dirty(c);
	return true;
}

void aegis_mesh_hbone_out_response(void *user, int32_t id, int status, void *stream_user)
{
	struct hconn *c = user;
	struct tun *t = stream_user;
	struct aegis_mesh_hbone *hb = c->hb;
	(void)id;
	if (t == NULL || t->cb == NULL)
		return; /* cancelled meanwhile: the core resets it */
	aegis_mesh_hbone_open_cb cb = t->cb;
	void *u = t->user;
	t->cb = NULL;
	if (status == 200) {
		aegis_mesh_hbone_tun_open(c, t);
		cb(u, AEGIS_MESH_HBONE_OK, "");
		return;
	}
	/* The core resets the stream; on_close frees it. The socket stays the caller's. */
	hb->stats.connect_failures[AEGIS_MESH_HBONE_OUT][status == 400   ? AEGIS_HBONE_F400
	                                                 : status == 503 ? AEGIS_HBONE_F503
	                                                                 : AEGIS_HBONE_FOTHER]++;
	t->fd = -1;
	ev_timer_stop(hb->loop, &t->timer);
	char why[32];
	snprintf(why, sizeof(why), "CONNECT answered %d", status);
	AEGIS_LOG(AEGIS_LOG_INFO, "hbone: CONNECT refused by the peer", LKV_S("conn", c->what),
	          LKV_S("authority", t->authority), LKV_I("status", status));
	cb(u, AEGIS_MESH_HBONE_CONNECT_FAILED, why);
}

/* No answer to our CONNECT in time: the caller gets its socket back. */
void aegis_mesh_hbone_out_timeout(struct tun *t)
{
	struct hconn *c = t->c;
	struct aegis_mesh_hbone *hb = c->hb;
	aegis_mesh_hbone_open_cb cb = t->cb;
	void *u = t->user;
	enum aegis_mesh_hbone_result result =
	        aegis_mesh_hbone_tun_failure(t, AEGIS_MESH_HBONE_CONNECT_FAILED);
	t->cb = NULL;
	t->fd = -1;
	hb->stats.connect_failures[AEGIS_MESH_HBONE_OUT][AEGIS_HBONE_FNONE]++;
	c->draining = true; /* a connection that does not answer takes no more streams */
	if (t->id > 0 && c->h != NULL) {
		aegis_hbone_reset(c->h, t->id);
		aegis_mesh_hbone_conn_dirty(c);
	} else {
		aegis_mesh_hbone_tun_unlink(t);
		aegis_mesh_hbone_tun_free(hb, t, false);
	}
	if (cb)
		cb(u, result, "no answer to CONNECT");
}

/* ---- public ---- */

int aegis_mesh_hbone_open(struct aegis_mesh_hbone *hb, int app_fd, const struct aegis_routes_addr *ep,
                          const char *const *ids, size_t n_ids, uint32_t connect_ms, const uint8_t *early,
                          size_t early_len, const char *what, aegis_mesh_hbone_open_cb cb, void *user,
                          struct aegis_mesh_hbone_req **req)
{
	char key[KEY_MAX];
	struct aegis_routes_addr pa = *ep;
	struct sockaddr_storage peer;
	if (n_ids == 0 || n_ids > 16 || early_len > AEGIS_HBONE_STREAM_OUTBUF ||
	    pool_key(ids, n_ids, key, sizeof(key)) != 0)
		return AEGIS_EINVAL;
	pa.port = hb->opts.peer_port ? hb->opts.peer_port : 15008;
	aegis_net_to_sockaddr(&pa, &peer);
	struct tun *t = aegis_mesh_hbone_tun_new(hb, app_fd);
	if (t == NULL)
		return AEGIS_ENOMEM;
	if (aegis_mesh_hbone_authority(ep, t->authority, sizeof(t->authority)) != 0) {
		free(t);
		return AEGIS_EINVAL;
	}
	t->cb = cb;
	t->user = user;
	t->early = early;
	t->early_len = early_len;
	if (connect_ms == 0)
		connect_ms = 1000;
	struct hconn *c = hb->conns;
	for (; c != NULL; c = c->next) {
		if (!pool_usable(c, &peer, key))
			continue;
		if (c->st != C_READY)
			break;
		t->c = c;
		if (aegis_mesh_hbone_out_submit(c, t))
			break;
		c->draining = true; /* GOAWAY received or stream ids exhausted: a new connection */
		t->c = NULL;
	}
	if (c == NULL) {
		int fd;
		if (aegis_net_connect(&peer, hb->opts.so_mark, &fd) != 0) {
			free(t);
			return AEGIS_ESYS;
		}
		c = aegis_mesh_hbone_conn_new(hb, false, fd);
		if (c == NULL) {
			close(fd);
			free(t);
			return AEGIS_ENOMEM;
		}
		c->peer = peer;
		c->connect_ms = connect_ms;
		snprintf(c->key, sizeof(c->key), "%s", key);
		char a[64];
		snprintf(c->what, sizeof(c->what), "hbone outbound %s",
		         aegis_sockaddr_str(&peer, a, sizeof(a)));
		c->st = C_CONNECTING;
		AEGIS_LOG(AEGIS_LOG_DEBUG, "hbone: new pooled connection", LKV_S("conn", c->what),
		          LKV_S("for", what), LKV_S("expected", key));
		aegis_mesh_hbone_conn_events(c, EV_WRITE);
		ev_timer_set(&c->timer, connect_ms / 1000.0, 0);
		ev_timer_start(hb->loop, &c->timer);
	}
	aegis_mesh_hbone_tun_add(c, t);
	/* The answer comes after the peer's local connect (up to a second) and, for a new connection, after
	 * our TCP connect and TLS handshake, which have their own limits. */
	aegis_mesh_hbone_tun_timer(
	        hb, t, (connect_ms + LOCAL_CONNECT_MS + (c->st == C_READY ? 0 : HANDSHAKE_MS)) / 1000.0);
	*req = container_of(t, struct aegis_mesh_hbone_req, t);
	return 0;
}

int aegis_mesh_hbone_early(struct aegis_mesh_hbone_req *req, const uint8_t *early, size_t early_len)
{
	struct tun *t = &req->t;
	if (t->cb == NULL || early_len > AEGIS_HBONE_STREAM_OUTBUF)
		return AEGIS_EINVAL;
	if (t->id == 0) { /* not submitted yet: they go with the CONNECT */
		t->early = early;
		t->early_len = early_len;
		return 0;
	}
	if (early_len < t->early_queued || t->c == NULL || t->c->h == NULL)
		return AEGIS_EINVAL;
	if (early_len == t->early_queued)
		return 0;
	int rc =
	        aegis_hbone_write_early(t->c->h, t->id, early + t->early_queued, early_len - t->early_queued);
	if (rc != 0)
		return rc;
	t->early_queued = early_len;
	aegis_mesh_hbone_conn_dirty(t->c);
	return 0;
}

void aegis_mesh_hbone_cancel(struct aegis_mesh_hbone_req *req)
{
	struct tun *t = &req->t;
	struct hconn *c = t->c;
	t->cb = NULL;
	t->fd = -1;
	if (c == NULL)
		return;
	struct aegis_mesh_hbone *hb = c->hb;
	if (t->id > 0 && c->h != NULL) {
		/* on_close frees it once the reset is through. */
		ev_timer_stop(hb->loop, &t->timer);
		aegis_hbone_reset(c->h, t->id);
		aegis_mesh_hbone_conn_dirty(c);
		return;
	}
	aegis_mesh_hbone_tun_unlink(t);
	aegis_mesh_hbone_tun_free(hb, t, false);
}
