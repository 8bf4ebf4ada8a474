/* The outbound mesh listener: see mesh_outbound.h and docs/mesh.md. */
#include "mesh_outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/err.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "sockaddr.h"
#include "mesh_net.h"
#include "mesh_outlier.h"
#include "mesh_pipe.h"

#define MAX_ATTEMPTS     8
#define EARLY_MAX        (16u << 10) /* first application bytes read at accept for an HBONE CONNECT */
#define HANDSHAKE_MS     5000
#define OUTLIER_CAPACITY 4096

enum conn_state { ST_CONNECTING, ST_HANDSHAKE, ST_EARLY, ST_HBONE };

/* One application connection until its relay starts. */
struct conn {
	struct aegis_mesh_outbound *ob;
	struct conn *prev, *next;
	int app_fd;
	int up_fd;
	SSL *ssl;
	struct aegis_mesh_hbone_req *req; /* ST_HBONE: the CONNECT in progress */
	enum conn_state st;
	ev_io io;
	ev_timer timer;
	struct sockaddr_storage orig;
	struct aegis_routes *routes;                /* held while cluster and ep point into it */
	const struct aegis_routes_cluster *cluster; /* NULL = passthrough */
	const struct aegis_routes_endpoint *ep;
	const struct aegis_routes_endpoint *tried[MAX_ATTEMPTS];
	size_t n_tried;
	uint8_t *early; /* HBONE: the application's first bytes, sent with every CONNECT attempt */
	size_t early_len;
	size_t early_off; /* direct mTLS after an HBONE attempt: early bytes written so far */
	bool early_done;  /* no more early bytes: end of file, an error, or EARLY_MAX */
	char what[160];
};

/* Relayed connections of one cluster, for connections-by-route/subset metrics. */
struct counted {
	char *name;
	uint64_t n;
};

struct aegis_mesh_outbound {
	struct ev_loop *loop;
	struct aegis_mesh_outbound_opts opts;
	struct aegis_net_listeners ls;
	struct aegis_routes *routes;            /* loop thread only */
	_Atomic(struct aegis_routes *) pending; /* handed over by any thread */
	ev_async swap;
	ev_timer cert_watch;
	struct aegis_outlier *outlier;
	struct conn *conns;
	uint64_t rng;
	struct aegis_mesh_outbound_stats stats;
	struct counted counted[AEGIS_MESH_OUTBOUND_MAX_COUNTED + 1]; /* the last one is "other" */
	size_t n_counted;
};

/* xorshift64*: route and endpoint picks need uniform numbers, not secret ones. */
static uint64_t next_rnd(struct aegis_mesh_outbound *ob)
{
	uint64_t x = ob->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	ob->rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t now_ms(struct aegis_mesh_outbound *ob)
{
	return (uint64_t)(ev_now(ob->loop) * 1000.0);
}

static void conn_free(struct conn *c, bool close_app)
{
	struct aegis_mesh_outbound *ob = c->ob;
	ev_io_stop(ob->loop, &c->io);
	ev_timer_stop(ob->loop, &c->timer);
	if (c->req != NULL)
		aegis_mesh_hbone_cancel(c->req);
	SSL_free(c->ssl);
	if (c->up_fd >= 0)
		close(c->up_fd);
	if (close_app && c->app_fd >= 0)
		close(c->app_fd);
	aegis_routes_unref(c->routes);
	free(c->early);
	if (c->prev)
		c->prev->next = c->next;
	else
		ob->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ob->stats.active--;
	free(c);
}

static void pipe_done(void *user, const struct aegis_pipe_result *r)
{
	struct aegis_mesh_outbound *ob = user;
	(void)ob;
	(void)r;
}

/* A linear scan: a sidecar talks to tens of clusters, and this runs once per relayed connection. */
static void count_cluster(struct aegis_mesh_outbound *ob, const char *name)
{
	for (size_t i = 0; i < ob->n_counted; i++) {
		if (strcmp(ob->counted[i].name, name) == 0) {
			ob->counted[i].n++;
			return;
		}
	}
	struct counted *o = &ob->counted[AEGIS_MESH_OUTBOUND_MAX_COUNTED];
	if (ob->n_counted < AEGIS_MESH_OUTBOUND_MAX_COUNTED) {
		char *copy = strdup(name);
		if (copy != NULL) {
			ob->counted[ob->n_counted++] = (struct counted){.name = copy, .n = 1};
			return;
		}
	}
	o->n++;
}

/* The upstream is ready (connected, and mTLS done when needed): relay. */
static void start_relay(struct conn *c)
{
	int up = c->up_fd;
	SSL *ssl = c->ssl;
	ev_io_stop(c->ob->loop, &c->io);
	int rc = aegis_pipe_start(c->ob->loop, c->app_fd, NULL, up, ssl, c->ob->opts.idle_timeout_ms,
	                          pipe_done, c->ob);
	if (rc != 0) {
		conn_free(c, true);
		return;
	}
	if (c->cluster != NULL)
		count_cluster(c->ob, c->cluster->name);
	c->up_fd = -1;
	c->ssl = NULL;
	c->app_fd = -1;
	conn_free(c, false);
}

static void attempt(struct conn *c);
static void write_early(struct conn *c);
static void more_early(struct conn *c);

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void wait_io(struct conn *c, int events, double timeout_s)
{
	ev_io_stop(c->ob->loop, &c->io);
	ev_io_set(&c->io, c->up_fd, events);
	ev_io_start(c->ob->loop, &c->io);
	if (timeout_s > 0) {
		ev_timer_stop(c->ob->loop, &c->timer);
		ev_timer_set(&c->timer, timeout_s, 0);
		ev_timer_start(c->ob->loop, &c->timer);
	}
}

/* A connect to the current endpoint failed: count it, maybe eject, and try another endpoint unless
 * may_retry is false (bytes of the application may have reached this one). */
static void connect_failed(struct conn *c, const char *why, bool may_retry)
{
	struct aegis_mesh_outbound *ob = c->ob;
	ob->stats.connect_failures++;
	ev_io_stop(ob->loop, &c->io);
	ev_timer_stop(ob->loop, &c->timer);
	if (c->up_fd >= 0) {
		close(c->up_fd);
		c->up_fd = -1;
	}
	char buf[64];
	if (c->cluster == NULL) {
		AEGIS_LOG(AEGIS_LOG_DEBUG, "passthrough connect failed", LKV_S("dst", c->what),
		          LKV_S("error", why));
		conn_free(c, true);
		return;
	}
	struct sockaddr_storage ss;
	aegis_net_to_sockaddr(&c->ep->addr, &ss);
	if (aegis_outlier_report(ob->outlier, &c->ep->addr, false, c->cluster->outlier_errors,
	                         c->cluster->outlier_base_ms, now_ms(ob))) {
		ob->stats.ejections++;
		AEGIS_LOG(AEGIS_LOG_WARN, "endpoint ejected after consecutive connect failures",
		          LKV_S("cluster", c->cluster->name),
		          LKV_S("endpoint", aegis_sockaddr_str(&ss, buf, sizeof(buf))));
	}
	AEGIS_LOG(AEGIS_LOG_INFO, "endpoint connect failed", LKV_S("cluster", c->cluster->name),
	          LKV_S("endpoint", aegis_sockaddr_str(&ss, buf, sizeof(buf))), LKV_S("error", why));
	uint32_t max = ob->opts.attempts ? ob->opts.attempts : 3;
	if (max > MAX_ATTEMPTS)
		max = MAX_ATTEMPTS;
	if (!may_retry) {
		ob->stats.not_retried++;
		AEGIS_LOG(AEGIS_LOG_INFO, "not retried: the application's first bytes may have arrived",
		          LKV_S("cluster", c->cluster->name),
		          LKV_S("endpoint", aegis_sockaddr_str(&ss, buf, sizeof(buf))));
	}
	if (!may_retry || c->n_tried >= max) {
		conn_free(c, true);
		return;
	}
	ob->stats.retries++;
	attempt(c);
}

/* The identities a mesh connection expects of its endpoint: the cluster's subjectAltNames, else the
 * endpoint's own identity. */
static const char *const *expected_ids(const struct conn *c, const char **one, size_t *n)
{
	one[0] = c->ep->identity;
	*n = c->cluster->n_sans ? c->cluster->n_sans : 1;
	return c->cluster->n_sans ? c->cluster->sans : one;
}

/* What a TLS session may be resumed for (aegis_mtls_resume): the endpoint's address and port, and the
 * identities expected of it. "" when it does not fit (no resumption then). */
static void resume_key(const struct conn *c, char *buf, size_t len)
{
	const char *one[1];
	size_t n;
	const char *const *ids = expected_ids(c, one, &n);
	char ip[INET6_ADDRSTRLEN];
	if (inet_ntop(c->ep->addr.family, c->ep->addr.ip, ip, sizeof(ip)) == NULL) {
		buf[0] = '\0';
		return;
	}
	int o = snprintf(buf, len, "%s|%u", ip, c->ep->addr.port);
	for (size_t i = 0; i < n && o > 0 && (size_t)o < len; i++)
		o += snprintf(buf + o, len - (size_t)o, "|%s", ids[i]);
	if (o < 0 || (size_t)o >= len)
		buf[0] = '\0';
}

static void handshake(struct conn *c)
{
	struct aegis_mesh_outbound *ob = c->ob;
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		const char *one[1];
		size_t n;
		const char *const *want = expected_ids(c, one, &n);
		if (aegis_mtls_check_peer(ob->opts.mtls, c->ssl, want, n, c->what, NULL, 0) != 0) {
			ob->stats.mtls_refused++;
			conn_free(c, true);
			return;
		}
		ob->stats.mtls_ok++;
		ev_timer_stop(ob->loop, &c->timer);
		c->st = ST_EARLY;
		write_early(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		wait_io(c, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, 0);
		return;
	}
	aegis_mtls_note_failure(ob->opts.mtls, c->ssl, c->what);
	ob->stats.mtls_refused++;
	conn_free(c, true);
}

/* Direct mTLS after an HBONE attempt of the same connection (--mesh-transport auto) read the application's
 * first bytes: they go first, then the relay starts. Usually one SSL_write on a fresh connection. */
static void write_early(struct conn *c)
{
	while (c->early_off < c->early_len) {
		ERR_clear_error();
		int n = SSL_write(c->ssl, c->early + c->early_off, (int)(c->early_len - c->early_off));
		if (n > 0) {
			c->early_off += (size_t)n;
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			wait_io(c, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, HANDSHAKE_MS / 1000.0);
			return;
		}
		conn_free(c, true);
		return;
	}
	ev_timer_stop(c->ob->loop, &c->timer);
	start_relay(c);
}

static void connected(struct conn *c)
{
	struct aegis_mesh_outbound *ob = c->ob;
	int err = aegis_net_connect_result(c->up_fd);
	if (err != 0) {
		connect_failed(c, strerror(err), true);
		return;
	}
	if (c->cluster == NULL || c->cluster->mode == AEGIS_ROUTES_PLAIN) {
		if (c->cluster != NULL)
			(void)aegis_outlier_report(ob->outlier, &c->ep->addr, true, 0, 0, now_ms(ob));
		ev_timer_stop(ob->loop, &c->timer);
		start_relay(c);
		return;
	}
	(void)aegis_outlier_report(ob->outlier, &c->ep->addr, true, 0, 0, now_ms(ob));
	c->ssl = SSL_new(aegis_mtls_ctx(ob->opts.mtls));
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->up_fd) != 1) {
		conn_free(c, true);
		return;
	}
	SSL_set_connect_state(c->ssl);
	char key[1024];
	resume_key(c, key, sizeof(key));
	if (key[0] != '\0')
		aegis_mtls_resume(ob->opts.mtls, c->ssl, key);
	aegis_mtls_read_ahead(c->ssl);
	c->st = ST_HANDSHAKE;
	ev_timer_stop(ob->loop, &c->timer);
	ev_timer_set(&c->timer, HANDSHAKE_MS / 1000.0, 0);
	ev_timer_start(ob->loop, &c->timer);
	handshake(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, io);
	if (c->st == ST_HBONE)
		more_early(c);
	else if (c->st == ST_EARLY)
		write_early(c);
	else if (c->st == ST_CONNECTING)
		connected(c);
	else
		handshake(c);
	(void)loop;
	(void)revents;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = container_of(w, struct conn, timer);
	if (c->st == ST_CONNECTING) {
		connect_failed(c, "connect timeout", true);
	} else if (c->st == ST_EARLY) {
		conn_free(c, true); /* the endpoint takes no bytes */
	} else {
		aegis_mtls_note_timeout(c->ob->opts.mtls, c->what);
		c->ob->stats.mtls_refused++;
		conn_free(c, true);
	}
	(void)loop;
	(void)revents;
}

/* The answer to an HBONE CONNECT (mesh_hbone.h): a stream is a connected and identity-checked endpoint. */
static void hbone_done(void *user, enum aegis_mesh_hbone_result r, const char *why)
{
	struct conn *c = user;
	struct aegis_mesh_outbound *ob = c->ob;
	c->req = NULL;
	if (r == AEGIS_MESH_HBONE_OK) {
		(void)aegis_outlier_report(ob->outlier, &c->ep->addr, true, 0, 0, now_ms(ob));
		ob->stats.mtls_ok++;
		count_cluster(ob, c->cluster->name);
		c->app_fd = -1; /* the tunnel owns it now */
		conn_free(c, false);
		return;
	}
	if (r == AEGIS_MESH_HBONE_REFUSED) {
		ob->stats.mtls_refused++;
		conn_free(c, true);
		return;
	}
	connect_failed(c, why, r != AEGIS_MESH_HBONE_FAILED_UNSURE);
}

/* What a client sends right after connecting (an HTTP request, a TLS ClientHello) is usually in the socket
 * by the time it is accepted, or arrives before the CONNECT's answer: it rides behind the CONNECT instead of
 * waiting for the 200, which saves the peer a wake-up and the connection a round trip (docs/mesh.md, "Early
 * bytes"). One read, appended to c->early (at most EARLY_MAX in all); c->early_done once no more will be
 * read early. False when bytes were read and cannot be kept (no memory). */
static bool take_early(struct conn *c)
{
	uint8_t buf[EARLY_MAX];
	ssize_t n = recv(c->app_fd, buf, EARLY_MAX - c->early_len, MSG_DONTWAIT);
	if (n <= 0) {
		/* Nothing there yet, or the end of file or an error: the rest is the tunnel's after the
		 * answer. */
		c->early_done = !(n < 0 && (errno == EAGAIN || errno == EINTR));
		return true;
	}
	uint8_t *p = realloc(c->early, c->early_len + (size_t)n);
	if (p == NULL)
		return false; /* bytes out of the socket that cannot be kept */
	memcpy(p + c->early_len, buf, (size_t)n);
	c->early = p;
	c->early_len += (size_t)n;
	c->early_done = c->early_len == EARLY_MAX;
	c->ob->stats.early_bytes += (uint64_t)n;
	return true;
}

/* The application's socket became readable while its CONNECT waits for the answer. */
static void more_early(struct conn *c)
{
	size_t before = c->early_len;
	if (!take_early(c) ||
	    (c->early_len > before && aegis_mesh_hbone_early(c->req, c->early, c->early_len) != 0)) {
		conn_free(c, true); /* bytes out of the socket that will never be sent */
		return;
	}
	if (c->early_done)
		ev_io_stop(c->ob->loop, &c->io);
}

static void start_hbone(struct conn *c, uint32_t timeout_ms)
{
	struct aegis_mesh_outbound *ob = c->ob;
	const char *one[1] = {c->ep->identity};
	const char *const *want = c->cluster->n_sans ? c->cluster->sans : one;
	size_t n = c->cluster->n_sans ? c->cluster->n_sans : 1;
	if (c->early_len == 0 && !c->early_done && !take_early(c)) { /* what is there already */
		conn_free(c, true);
		return;
	}
	c->st = ST_HBONE;
	if (aegis_mesh_hbone_open(ob->opts.hbone, c->app_fd, &c->ep->addr, want, n, timeout_ms, c->early,
	                          c->early_len, c->what, hbone_done, c, &c->req) != 0) {
		c->req = NULL;
		connect_failed(c, strerror(errno), true);
		return;
	}
	if (!c->early_done) { /* what the application sends before the answer goes early too */
		ev_io_stop(ob->loop, &c->io);
		ev_io_set(&c->io, c->app_fd, EV_READ);
		ev_io_start(ob->loop, &c->io);
	}
}

static void start_connect(struct conn *c, const struct sockaddr_storage *to, uint32_t timeout_ms)
{
	c->st = ST_CONNECTING;
	if (aegis_net_connect(to, c->ob->opts.so_mark, &c->up_fd) != 0) {
		c->up_fd = -1;
		connect_failed(c, strerror(errno), true);
		return;
	}
	wait_io(c, EV_WRITE, (timeout_ms ? timeout_ms : 1000) / 1000.0);
}

static bool uses_hbone(const struct aegis_mesh_outbound *ob, const struct aegis_routes_cluster *cl,
                       const struct aegis_routes_endpoint *ep)
{
	return cl->mode == AEGIS_ROUTES_MTLS && ob->opts.hbone != NULL &&
	       (!ob->opts.hbone_by_label || ep->tunnel);
}

const char *aegis_mesh_outbound_transport(const struct aegis_mesh_outbound *ob,
                                          const struct aegis_routes_cluster *c,
                                          const struct aegis_routes_endpoint *e)
{
	return uses_hbone(ob, c, e) ? "hbone" : c->mode == AEGIS_ROUTES_MTLS ? "mtls" : "plaintext";
}

/* Picks the next endpoint (not one tried already) and connects to it. */
static void attempt(struct conn *c)
{
	struct aegis_mesh_outbound *ob = c->ob;
	const struct aegis_routes_endpoint *ep =
	        aegis_routes_pick(c->cluster, next_rnd(ob), ob->outlier, now_ms(ob), c->tried, c->n_tried);
	if (ep == NULL) {
		ob->stats.no_endpoint++;
		AEGIS_LOG(AEGIS_LOG_WARN, "no usable endpoint", LKV_S("cluster", c->cluster->name),
		          LKV_I("tried", c->n_tried));
		conn_free(c, true);
		return;
	}
	c->ep = ep;
	c->tried[c->n_tried++] = ep;
	struct sockaddr_storage to;
	aegis_net_to_sockaddr(&ep->addr, &to);
	char buf[64];
	snprintf(c->what, sizeof(c->what), "outbound %s %s", c->cluster->name,
	         aegis_sockaddr_str(&to, buf, sizeof(buf)));
	uint32_t t =
	        c->cluster->connect_timeout_ms ? c->cluster->connect_timeout_ms : ob->opts.connect_timeout_ms;
	if (uses_hbone(ob, c->cluster, ep))
		start_hbone(c, t);
	else
		start_connect(c, &to, t);
}

static void route(struct conn *c)
{
	struct aegis_mesh_outbound *ob = c->ob;
	struct aegis_routes_addr dst;
	aegis_net_from_sockaddr(&c->orig, &dst);
	const struct aegis_routes_cluster *cl = NULL;
	enum aegis_routes_verdict v = aegis_routes_lookup(c->routes, &dst, next_rnd(ob), &cl);
	char buf[64];
	if (v == AEGIS_ROUTES_NO_ROUTE) {
		ob->stats.no_route++;
		AEGIS_LOG(AEGIS_LOG_INFO, "no route: connection refused",
		          LKV_S("dst", aegis_sockaddr_str(&c->orig, buf, sizeof(buf))));
		conn_free(c, true);
		return;
	}
	if (v == AEGIS_ROUTES_PASSTHROUGH) {
		ob->stats.passthrough++;
		snprintf(c->what, sizeof(c->what), "passthrough %s",
		         aegis_sockaddr_str(&c->orig, buf, sizeof(buf)));
		start_connect(c, &c->orig, ob->opts.connect_timeout_ms);
		return;
	}
	c->cluster = cl;
	if (cl->mode == AEGIS_ROUTES_MTLS && ob->opts.mtls == NULL) {
		AEGIS_LOG(AEGIS_LOG_WARN, "mesh destination but no --cert-dir: connection refused",
		          LKV_S("cluster", cl->name));
		ob->stats.mtls_refused++;
		conn_free(c, true);
		return;
	}
	attempt(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	const struct aegis_net_listener *l = container_of(w, struct aegis_net_listener, io);
	struct aegis_mesh_outbound *ob = w->data;
	for (int i = 0; i < AEGIS_NET_ACCEPTS_PER_WAKEUP; i++) {
		int fd = aegis_net_accept(w->fd, NULL);
		if (fd < 0)
			break;
		ob->stats.accepted++;
		struct conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->ob = ob;
		c->app_fd = fd;
		c->up_fd = -1;
		ev_init(&c->io, io_cb);
		ev_init(&c->timer, timer_cb);
		c->next = ob->conns;
		if (ob->conns)
			ob->conns->prev = c;
		ob->conns = c;
		ob->stats.active++;
		if (aegis_net_original_dst(fd, &l->bound, &c->orig) != 0) {
			/* Not redirected: a client connected to 15001 itself. Relaying to ourselves would
			 * loop. */
			conn_free(c, true);
			continue;
		}
		c->routes = ob->routes;
		aegis_routes_ref(c->routes);
		route(c);
	}
	(void)loop;
	(void)revents;
}

static void swap_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct aegis_mesh_outbound *ob = container_of(w, struct aegis_mesh_outbound, swap);
	struct aegis_routes *t = atomic_exchange(&ob->pending, NULL);
	if (t == NULL)
		return;
	aegis_routes_unref(ob->routes);
	ob->routes = t;
	ob->stats.routes_swaps++;
	AEGIS_LOG(AEGIS_LOG_DEBUG, "routes swapped", LKV_I("clusters", aegis_routes_n_clusters(t)));
	(void)loop;
	(void)revents;
}

void aegis_mesh_outbound_post_routes(struct aegis_mesh_outbound *ob, struct aegis_routes *t)
{
	struct aegis_routes *old = atomic_exchange(&ob->pending, t);
	aegis_routes_unref(old); /* never swapped in: a newer one replaces it */
	ev_async_send(ob->loop, &ob->swap);
}

/* Certificates are checked once a second: a rotation (Istio's agent or cert-manager rewrites the files)
 * takes effect for the next connection; relays in progress keep their SSL. */
static void cert_watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aegis_mesh_outbound *ob = container_of(w, struct aegis_mesh_outbound, cert_watch);
	/* HBONE: pooled connections present the old certificate; new streams go to new connections. */
	if (aegis_mtls_maybe_reload(ob->opts.mtls) == 1 && ob->opts.hbone != NULL)
		aegis_mesh_hbone_rotated(ob->opts.hbone);
	(void)loop;
	(void)revents;
}

int aegis_mesh_outbound_new(struct ev_loop *loop, const struct aegis_mesh_outbound_opts *opts,
                            struct aegis_mesh_outbound **out)
{
	struct aegis_mesh_outbound *ob = calloc(1, sizeof(*ob));
	if (ob == NULL)
		return AEGIS_ENOMEM;
	ob->loop = loop;
	ob->opts = *opts;
	if (ob->opts.idle_timeout_ms == 0)
		ob->opts.idle_timeout_ms = 3600u * 1000u;
	if (ob->opts.connect_timeout_ms == 0)
		ob->opts.connect_timeout_ms = 1000;
	atomic_init(&ob->pending, NULL);
	if (getrandom(&ob->rng, sizeof(ob->rng), 0) != sizeof(ob->rng) || ob->rng == 0)
		ob->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	int rc = AEGIS_ENOMEM;
	ob->outlier = aegis_outlier_new(OUTLIER_CAPACITY);
	if (ob->outlier == NULL)
		goto fail;
	ev_async_init(&ob->swap, swap_cb);
	ev_async_start(loop, &ob->swap);
	rc = aegis_net_listeners_start(&ob->ls, loop, opts->listen, opts->n_listen, opts->listen_defaults,
	                               "outbound", accept_cb, ob);
	if (rc != 0)
		goto fail;
	if (opts->mtls != NULL) {
		ev_timer_init(&ob->cert_watch, cert_watch_cb, 1.0, 1.0);
		ev_timer_start(loop, &ob->cert_watch);
	}
	*out = ob;
	return 0;
fail:
	aegis_mesh_outbound_free(ob);
	return rc;
}

void aegis_mesh_outbound_stats(const struct aegis_mesh_outbound *ob, struct aegis_mesh_outbound_stats *out)
{
	*out = ob->stats;
	out->active += aegis_pipe_count();
	if (ob->opts.hbone != NULL) {
		struct aegis_mesh_hbone_stats hs;
		aegis_mesh_hbone_stats(ob->opts.hbone, &hs);
		out->active += (unsigned)(hs.streams_active[0] + hs.streams_active[1]);
	}
}

const struct aegis_routes *aegis_mesh_outbound_routes(const struct aegis_mesh_outbound *ob)
{
	return ob->routes;
}

bool aegis_mesh_outbound_ejected(const struct aegis_mesh_outbound *ob, const struct aegis_routes_addr *a)
{
	return aegis_outlier_ejected(ob->outlier, a, (uint64_t)(ev_now(ob->loop) * 1000.0));
}

bool aegis_mesh_outbound_cluster_count(const struct aegis_mesh_outbound *ob, size_t i, const char **name,
                                       uint64_t *connections)
{
	if (i < ob->n_counted) {
		*name = ob->counted[i].name;
		*connections = ob->counted[i].n;
		return true;
	}
	if (i == ob->n_counted && ob->counted[AEGIS_MESH_OUTBOUND_MAX_COUNTED].n > 0) {
		*name = "other";
		*connections = ob->counted[AEGIS_MESH_OUTBOUND_MAX_COUNTED].n;
		return true;
	}
	return false;
}

void aegis_mesh_outbound_free(struct aegis_mesh_outbound *ob)
{
	if (ob == NULL)
		return;
	for (size_t i = 0; i < ob->n_counted; i++)
		free(ob->counted[i].name);
	while (ob->conns != NULL)
		conn_free(ob->conns, true);
	aegis_pipe_close_all(ob->loop);
	aegis_net_listeners_stop(&ob->ls, ob->loop);
	ev_timer_stop(ob->loop, &ob->cert_watch);
	ev_async_stop(ob->loop, &ob->swap);
	aegis_routes_unref(atomic_exchange(&ob->pending, NULL));
	aegis_routes_unref(ob->routes);
	aegis_outlier_free(ob->outlier);
	free(ob);
}
