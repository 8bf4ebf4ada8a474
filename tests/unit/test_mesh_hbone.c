/* Tests proxy/mesh_hbone.c, mesh_hbone_in.c and mesh_hbone_out.c: the sans-I/O parts (authority strings,
 * pool keys and reuse, the authority rule) directly, and the glue end to end on one libev loop: the
 * instance's own 15008-style listener on 127.0.0.1 serves its own pool, with real mutual TLS (certificates
 * from scripts/make-certs.sh), a local echo application on a thread, 8 MiB each way at once with the
 * half-close, streams sharing one connection, 503 for a port nobody listens on, a peer with the wrong
 * identity refused, and a stream to an IPv6 endpoint carried over the instance's second listener, on
 * [::1] (authority "[::1]:port", the application reached at [::1]). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_certs.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "mesh_hbone.c"
#include "mesh_hbone_in.c"
#include "mesh_hbone_out.c"

#define BULK (8u * 1024u * 1024u)
#define ID_S "spiffe://cluster.local/ns/default/sa/s"

static char tmp[256];

/* ---- sans-I/O ---- */

static void test_authority(void **state)
{
	(void)state;
	struct aegis_routes_addr a = {.family = AF_INET, .ip = {10, 0, 0, 1}, .port = 9080};
	char buf[64];
	assert_int_equal(aegis_mesh_hbone_authority(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "10.0.0.1:9080");
	struct aegis_routes_addr b = {
	        .family = AF_INET6, .ip = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, .port = 80};
	assert_int_equal(aegis_mesh_hbone_authority(&b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "[2001:db8::1]:80");
	assert_int_equal(aegis_mesh_hbone_authority(&a, buf, 8), AEGIS_ESPACE);
	/* What we send, the core's parser takes back. */
	int family;
	uint8_t ip[16];
	uint16_t port;
	assert_int_equal(aegis_hbone_parse_authority(buf, &family, ip, &port), AEGIS_EINVAL); /* truncated */
	assert_int_equal(aegis_mesh_hbone_authority(&b, buf, sizeof(buf)), 0);
	assert_int_equal(aegis_hbone_parse_authority(buf, &family, ip, &port), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(port, 80);
}

static void test_pool_key_and_reuse(void **state)
{
	(void)state;
	char key[KEY_MAX], key2[KEY_MAX];
	const char *ids[] = {"spiffe://td/ns/a/sa/x", "spiffe://td/ns/a/sa/y"};
	assert_int_equal(pool_key(ids, 2, key, sizeof(key)), 0);
	assert_string_equal(key, "spiffe://td/ns/a/sa/x\nspiffe://td/ns/a/sa/y");
	assert_int_equal(pool_key(ids, 1, key2, sizeof(key2)), 0);
	assert_string_equal(key2, "spiffe://td/ns/a/sa/x");
	assert_int_equal(pool_key(ids, 2, key2, 20), AEGIS_ESPACE);

	struct aegis_routes_addr pa = {.family = AF_INET, .ip = {10, 0, 0, 1}, .port = 15008};
	struct aegis_routes_addr pb = {.family = AF_INET, .ip = {10, 0, 0, 2}, .port = 15008};
	struct sockaddr_storage sa, sb;
	aegis_net_to_sockaddr(&pa, &sa);
	aegis_net_to_sockaddr(&pb, &sb);
	struct hconn c;
	memset(&c, 0, sizeof(c));
	c.peer = sa;
	snprintf(c.key, sizeof(c.key), "%s", key);
	assert_true(pool_usable(&c, &sa, key));
	assert_false(pool_usable(&c, &sb, key));  /* another peer */
	assert_false(pool_usable(&c, &sa, key2)); /* the same peer, other expected identities */
	c.n_tuns = AEGIS_HBONE_MAX_STREAMS;
	assert_false(pool_usable(&c, &sa, key)); /* full: a new connection */
	c.n_tuns = 3;
	c.draining = true;
	assert_false(pool_usable(&c, &sa, key)); /* going away */
	c.draining = false;
	c.dead = true;
	assert_false(pool_usable(&c, &sa, key));
	c.dead = false;
	c.server = true;
	assert_false(pool_usable(&c, &sa, key)); /* an inbound connection is nobody's pool */
}

static void test_failure_result(void **state)
{
	(void)state;
	struct tun t;
	memset(&t, 0, sizeof(t));
	/* Nothing of the application sent yet: whatever the failure, another endpoint may have it. */
	assert_int_equal(aegis_mesh_hbone_tun_failure(&t, AEGIS_MESH_HBONE_CONNECT_FAILED),
	                 AEGIS_MESH_HBONE_CONNECT_FAILED);
	assert_int_equal(aegis_mesh_hbone_tun_failure(&t, AEGIS_MESH_HBONE_REFUSED),
	                 AEGIS_MESH_HBONE_REFUSED);
	t.early_queued = 3; /* they may have arrived: no second endpoint gets them */
	assert_int_equal(aegis_mesh_hbone_tun_failure(&t, AEGIS_MESH_HBONE_CONNECT_FAILED),
	                 AEGIS_MESH_HBONE_FAILED_UNSURE);
}

static void test_authority_rule(void **state)
{
	(void)state;
	struct aegis_routes_addr locals[2] = {
	        {.family = AF_INET, .ip = {10, 253, 1, 2}},
	        {.family = AF_INET6, .ip = {0xfd, 0x53, [15] = 2}},
	};
	uint8_t ip[16] = {127, 0, 0, 1};
	assert_true(target_local(AF_INET, ip, NULL, 0));
	ip[1] = 5;
	assert_true(target_local(AF_INET, ip, NULL, 0)); /* all of 127/8 */
	uint8_t v6lo[16] = {[15] = 1};
	assert_true(target_local(AF_INET6, v6lo, NULL, 0));
	uint8_t own[16] = {10, 253, 1, 2};
	assert_true(target_local(AF_INET, own, locals, 2));
	uint8_t other[16] = {10, 253, 2, 2};
	assert_false(target_local(AF_INET, other, locals, 2)); /* another pod: 400 */
	assert_false(target_local(AF_INET6, own, locals, 2));  /* family matters */
	uint8_t own6[16] = {0xfd, 0x53, [15] = 2};
	assert_true(target_local(AF_INET6, own6, locals, 2));
	uint8_t any[16] = {0};
	assert_false(target_local(AF_INET, any, locals, 2));
}

/* ---- end to end on one loop ---- */

/* The application behind the listener: echoes until EOF, then "BYE" and FIN; one thread per connection.
 * It listens on 127.0.0.1 and [::1] at the same port (echo_main's argument: the listening socket). */
static int echo_fd, echo6_fd;
static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				goto out;
			off += w;
		}
	}
	(void)!write(fd, "BYE", 3);
	shutdown(fd, SHUT_WR);
	/* Wait for the other side's close so that the FIN is read before the socket goes. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
out:
	close(fd);
	return NULL;
}
static void *echo_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) == 0)
			pthread_detach(t);
		else
			close(fd);
	}
}

/* The client application: writes n bytes on one thread, then shuts its write half; reads everything. */
struct app {
	int fd;
	size_t n;
	uint64_t got;
	uint8_t first[8]; /* the first bytes read */
	bool bye;
	atomic_bool done;
};
static void *app_writer(void *arg)
{
	struct app *a = arg;
	static uint8_t chunk[32768];
	memset(chunk, 'z', sizeof(chunk));
	for (size_t sent = 0; sent < a->n;) {
		size_t l = a->n - sent < sizeof(chunk) ? a->n - sent : sizeof(chunk);
		ssize_t w = write(a->fd, chunk, l);
		if (w <= 0)
			return NULL;
		sent += (size_t)w;
	}
	shutdown(a->fd, SHUT_WR);
	return NULL;
}
static void *app_reader(void *arg)
{
	struct app *a = arg;
	uint8_t buf[65536], last[3] = {0};
	for (;;) {
		ssize_t n = read(a->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && a->got + (uint64_t)i < sizeof(a->first); i++)
			a->first[a->got + (uint64_t)i] = buf[i];
		a->got += (uint64_t)n;
		if (n >= 3)
			memcpy(last, buf + n - 3, 3);
	}
	a->bye = memcmp(last, "BYE", 3) == 0;
	atomic_store(&a->done, true);
	return NULL;
}

struct result {
	int fired;
	enum aegis_mesh_hbone_result r;
};
static void open_cb(void *user, enum aegis_mesh_hbone_result r, const char *why)
{
	struct result *res = user;
	(void)why;
	res->fired++;
	res->r = r;
}

/* Runs the loop until cond(arg) or 30 s. */
static bool (*cond_fn)(void *);
static void *cond_arg;
static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	if (cond_fn(cond_arg))
		ev_break(loop, EVBREAK_ALL);
}
static bool run_until(struct ev_loop *loop, bool (*fn)(void *), void *arg)
{
	ev_timer poll, guard;
	cond_fn = fn;
	cond_arg = arg;
	ev_timer_init(&poll, poll_cb, 0.01, 0.01);
	ev_timer_init(&guard, poll_cb, 30, 0);
	ev_timer_start(loop, &poll);
	ev_run(loop, 0);
	ev_timer_stop(loop, &poll);
	ev_timer_stop(loop, &guard);
	return fn(arg);
}

static struct aegis_mesh_hbone *g_hb;
static bool apps_done(void *arg)
{
	struct app *apps = arg;
	for (int i = 0; i < 5; i++)
		if (apps[i].n > 0 && !atomic_load(&apps[i].done))
			return false;
	/* ... and the streams closed on both sides. */
	return g_hb->stats.streams_active[0] == 0 && g_hb->stats.streams_active[1] == 0;
}
static bool fired(void *arg)
{
	return ((struct result *)arg)->fired > 0;
}

/* One application connection carried to ep (early: bytes already read from it, or NULL; more: early bytes
 * read after the open, handed over with aegis_mesh_hbone_early, or NULL), the application writing n bytes
 * and half-closing; returns when the echo and "BYE" are back and the stream is closed. The CONNECT's
 * authority is checked against want_authority when given. apps[0] is the application (apps_done looks at
 * five). */
static void carry_one(struct ev_loop *loop, struct aegis_mesh_hbone *hb, const struct aegis_routes_addr *ep,
                      const char *early, const char *more, size_t n, const char *want_authority,
                      struct app apps[5])
{
	const char *ids[] = {ID_S};
	char all[64];
	snprintf(all, sizeof(all), "%s%s", early != NULL ? early : "", more != NULL ? more : "");
	size_t elen = early != NULL ? strlen(early) : 0;
	struct result r = {0};
	struct aegis_mesh_hbone_req *req;
	int sp[2];
	memset(apps, 0, 5 * sizeof(apps[0]));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
	apps[0].fd = sp[1];
	apps[0].n = n;
	assert_int_equal(aegis_mesh_hbone_open(hb, sp[0], ep, ids, 1, 1000, (const uint8_t *)early, elen,
	                                       "one", open_cb, &r, &req),
	                 0);
	if (want_authority != NULL)
		assert_string_equal(req->t.authority, want_authority);
	if (more != NULL) { /* the caller's buffer grew (moved, here: another one) */
		assert_int_equal(aegis_mesh_hbone_early(req, (const uint8_t *)all, strlen(all)), 0);
		elen = strlen(all);
	}
	pthread_t w, rd;
	assert_int_equal(pthread_create(&w, NULL, app_writer, &apps[0]), 0);
	assert_int_equal(pthread_create(&rd, NULL, app_reader, &apps[0]), 0);
	assert_true(run_until(loop, apps_done, apps));
	pthread_join(w, NULL);
	pthread_join(rd, NULL);
	assert_int_equal(r.fired, 1);
	assert_int_equal(r.r, AEGIS_MESH_HBONE_OK);
	assert_int_equal(apps[0].got, elen + n + 3); /* the echo, then BYE after the half-close */
	assert_true(apps[0].bye);
	close(apps[0].fd);
}

static void test_end_to_end(void **state)
{
	(void)state;
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/s", tmp);
	struct aegis_mtls *m = NULL;
	assert_int_equal(aegis_mtls_new(dir, &m, NULL), 0);

	/* The application on 127.0.0.1:<port>. */
	echo_fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sin);
	assert_int_equal(bind(echo_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(echo_fd, 16), 0);
	assert_int_equal(getsockname(echo_fd, (struct sockaddr *)&sin, &sl), 0);
	uint16_t app_port = ntohs(sin.sin_port);
	echo6_fd = socket(AF_INET6, SOCK_STREAM, 0);
	int one = 1;
	assert_int_equal(setsockopt(echo6_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
	struct sockaddr_in6 sin6 = {
	        .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = sin.sin_port};
	assert_int_equal(bind(echo6_fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
	assert_int_equal(listen(echo6_fd, 16), 0);
	pthread_t et, et6;
	assert_int_equal(pthread_create(&et, NULL, echo_main, (void *)(intptr_t)echo_fd), 0);
	assert_int_equal(pthread_create(&et6, NULL, echo_main, (void *)(intptr_t)echo6_fd), 0);

	/* Two listeners, 127.0.0.1 and [::1], on one port (peers' HBONE port is one number): a port the
	 * kernel picked for a probe socket, closed just before. */
	int probe4 = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in pp = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	sl = sizeof(pp);
	assert_int_equal(bind(probe4, (struct sockaddr *)&pp, sizeof(pp)), 0);
	assert_int_equal(getsockname(probe4, (struct sockaddr *)&pp, &sl), 0);
	close(probe4);
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct aegis_mesh_hbone_opts o = {.idle_timeout_ms = 20000, .mtls = m};
	struct sockaddr_in *l4 = (struct sockaddr_in *)&o.listen[0];
	l4->sin_family = AF_INET;
	l4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l4->sin_port = pp.sin_port;
	struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&o.listen[1];
	l6->sin6_family = AF_INET6;
	l6->sin6_addr = in6addr_loopback;
	l6->sin6_port = pp.sin_port;
	o.n_listen = 2;
	struct aegis_mesh_hbone *hb = NULL;
	assert_int_equal(aegis_mesh_hbone_new(loop, &o, &hb), 0);
	g_hb = hb;
	hb->opts.peer_port = ntohs(pp.sin_port); /* our own listeners are the peer */

	/* 1. One 8 MiB stream and four small ones at once, all on one TLS connection. */
	struct app apps[5];
	struct result res[5];
	pthread_t tw[5], tr[5];
	memset(apps, 0, sizeof(apps));
	memset(res, 0, sizeof(res));
	struct aegis_routes_addr ep = {.family = AF_INET, .ip = {127, 0, 0, 1}, .port = app_port};
	const char *ids[] = {ID_S};
	for (int i = 0; i < 5; i++) {
		int sp[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		assert_int_equal(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
		apps[i].fd = sp[1];
		apps[i].n = i == 0 ? BULK : 1000u * (unsigned)(i + 1);
		struct aegis_mesh_hbone_req *req;
		assert_int_equal(aegis_mesh_hbone_open(hb, sp[0], &ep, ids, 1, 1000, NULL, 0, "test", open_cb,
		                                       &res[i], &req),
		                 0);
		assert_int_equal(res[i].fired, 0); /* never from inside open */
		assert_int_equal(pthread_create(&tw[i], NULL, app_writer, &apps[i]), 0);
		assert_int_equal(pthread_create(&tr[i], NULL, app_reader, &apps[i]), 0);
	}
	assert_true(run_until(loop, apps_done, apps));
	for (int i = 0; i < 5; i++) {
		pthread_join(tw[i], NULL);
		pthread_join(tr[i], NULL);
		assert_int_equal(res[i].fired, 1);
		assert_int_equal(res[i].r, AEGIS_MESH_HBONE_OK);
		assert_int_equal(apps[i].got, apps[i].n + 3); /* the echo, then BYE after our half-close */
		assert_true(apps[i].bye);
		close(apps[i].fd);
	}
	assert_int_equal(hb->stats.conns_opened[AEGIS_MESH_HBONE_OUT], 1);
	assert_int_equal(hb->stats.conns_opened[AEGIS_MESH_HBONE_IN], 1);
	assert_int_equal(hb->stats.streams_opened[AEGIS_MESH_HBONE_OUT], 5);
	assert_int_equal(hb->stats.streams_opened[AEGIS_MESH_HBONE_IN], 5);

	/* 2. A port nobody listens on: 503, the caller keeps its socket; the pooled connection is reused. The
	 * early bytes sent with the CONNECT reached nobody, so the caller may send them elsewhere. */
	struct result r503 = {0};
	struct aegis_routes_addr dead = ep;
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in ps = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	sl = sizeof(ps);
	assert_int_equal(bind(probe, (struct sockaddr *)&ps, sizeof(ps)), 0);
	assert_int_equal(getsockname(probe, (struct sockaddr *)&ps, &sl), 0);
	dead.port = ntohs(ps.sin_port); /* bound, not listening: refused */
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	struct aegis_mesh_hbone_req *req;
	assert_int_equal(aegis_mesh_hbone_open(hb, sp[0], &dead, ids, 1, 1000, (const uint8_t *)"GET", 3,
	                                       "test", open_cb, &r503, &req),
	                 0);
	assert_true(run_until(loop, fired, &r503));
	assert_int_equal(r503.r, AEGIS_MESH_HBONE_CONNECT_FAILED);
	assert_int_equal(hb->stats.connect_failures[AEGIS_MESH_HBONE_OUT][AEGIS_HBONE_F503], 1);
	assert_int_equal(hb->stats.connect_failures[AEGIS_MESH_HBONE_IN][AEGIS_HBONE_F503], 1);
	assert_int_equal(hb->stats.conns_opened[AEGIS_MESH_HBONE_OUT], 1);
	assert_int_equal(fcntl(sp[0], F_GETFD), 0); /* still open: ours */
	close(sp[0]);
	close(sp[1]);
	close(probe);

	/* 3. Another expected identity: a connection of its own, refused after the handshake. */
	struct result rid = {0};
	const char *other[] = {"spiffe://cluster.local/ns/default/sa/other"};
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(
	        aegis_mesh_hbone_open(hb, sp[0], &ep, other, 1, 1000, NULL, 0, "test", open_cb, &rid, &req),
	        0);
	assert_true(run_until(loop, fired, &rid));
	assert_int_equal(rid.r, AEGIS_MESH_HBONE_REFUSED);
	struct aegis_mtls_stats ms;
	aegis_mtls_stats(m, &ms);
	assert_int_equal(ms.peer_wrong_id, 1);
	close(sp[0]);
	close(sp[1]);

	/* 4. A request cancelled before its answer: no callback, the socket stays ours. */
	struct result rc = {0};
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(
	        aegis_mesh_hbone_open(hb, sp[0], &ep, ids, 1, 1000, NULL, 0, "test", open_cb, &rc, &req), 0);
	aegis_mesh_hbone_cancel(req);
	ev_run(loop, EVRUN_NOWAIT);
	assert_int_equal(rc.fired, 0);
	close(sp[0]);
	close(sp[1]);

	/* 5. An IPv6 endpoint: a pooled connection of its own to [::1]:<port>, accepted by the [::1]
	 * listener, CONNECT "[::1]:<app>", the application reached at [::1], every byte both ways. */
	uint64_t out0 = hb->stats.conns_opened[AEGIS_MESH_HBONE_OUT];
	uint64_t in0 = hb->stats.conns_opened[AEGIS_MESH_HBONE_IN];
	struct aegis_routes_addr ep6 = {.family = AF_INET6, .ip = {[15] = 1}, .port = app_port};
	struct app app6[5];
	char want[32];
	snprintf(want, sizeof(want), "[::1]:%u", app_port);
	carry_one(loop, hb, &ep6, NULL, "v6-", 100000, want, app6); /* early bytes before the handshake */
	assert_memory_equal(app6[0].first, "v6-zzzzz", 8);
	assert_int_equal(hb->stats.conns_opened[AEGIS_MESH_HBONE_OUT], out0 + 1);
	assert_int_equal(hb->stats.conns_opened[AEGIS_MESH_HBONE_IN], in0 + 1);
	bool in6 = false;
	for (struct hconn *c = hb->conns; c != NULL; c = c->next)
		in6 |= c->server && c->local.ss_family == AF_INET6 && c->peer.ss_family == AF_INET6;
	assert_true(in6); /* the peer's side of it: an IPv6 connection on the [::1] listener */

	/* 6. Early bytes (already read from the application): the application behind the peer gets them
	 * first, then the rest of the stream, in order. */
	struct app appe[5];
	carry_one(loop, hb, &ep, "early", "!+", 5000, NULL, appe); /* on a ready connection: sent at once */
	assert_memory_equal(appe[0].first, "early!+z", 8);

	aegis_mesh_hbone_free(hb);
	ev_loop_destroy(loop);
	shutdown(echo_fd, SHUT_RDWR);
	close(echo_fd);
	shutdown(echo6_fd, SHUT_RDWR);
	close(echo6_fd);
	pthread_join(et, NULL);
	pthread_join(et6, NULL);
	aegis_mtls_free(m);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/aegis-test-hbone.XXXXXX");
	aegis_log_set_level(AEGIS_LOG_OFF);
	signal(SIGPIPE, SIG_IGN);
	return test_certs_make(tmp, (const char *const[]){"s", NULL});
}

static int group_teardown(void **state)
{
	(void)state;
	return test_certs_remove(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_authority),      cmocka_unit_test(test_pool_key_and_reuse),
	        cmocka_unit_test(test_authority_rule), cmocka_unit_test(test_failure_result),
	        cmocka_unit_test(test_end_to_end),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
