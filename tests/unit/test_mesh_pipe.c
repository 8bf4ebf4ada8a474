/* Tests proxy/mesh_pipe.c: bulk both ways at once, half-close propagation and TLS on one side, with real
 * sockets (socketpairs) and an echo peer on a thread; TLS uses certificates from scripts/make-certs.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_certs.h"

#include <openssl/ssl.h>

#include "aegis/log.h"
#include "mesh_pipe.h"
#include "mtls_ctx.h"

#define BULK (8u * 1024u * 1024u)

static char tmp[256];

/* The far peer: echoes everything (through TLS when ssl is set) until EOF, then says "BYE". */
struct peer {
	int fd;
	SSL *ssl;
	uint64_t echoed;
};

static void *peer_main(void *arg)
{
	struct peer *pe = arg;
	uint8_t buf[16384];
	if (pe->ssl != NULL && SSL_accept(pe->ssl) != 1)
		return NULL;
	for (;;) {
		int n = pe->ssl ? SSL_read(pe->ssl, buf, sizeof(buf)) : (int)read(pe->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (int off = 0; off < n;) {
			int w = pe->ssl ? SSL_write(pe->ssl, buf + off, n - off)
			                : (int)write(pe->fd, buf + off, (size_t)(n - off));
			if (w <= 0)
				return NULL;
			off += w;
		}
		pe->echoed += (uint64_t)n;
	}
	if (pe->ssl) {
		(void)SSL_write(pe->ssl, "BYE", 3);
		(void)SSL_shutdown(pe->ssl);
	} else {
		(void)!write(pe->fd, "BYE", 3);
		shutdown(pe->fd, SHUT_WR);
	}
	return NULL;
}

/* The application: writes BULK bytes on one thread, reads the echo on another. */
struct app {
	int fd;
	uint64_t got;
	bool bye;
};

static void *app_reader(void *arg)
{
	struct app *a = arg;
	uint8_t buf[65536];
	uint8_t last[3] = {0};
	for (;;) {
		ssize_t n = read(a->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		a->got += (uint64_t)n;
		if (n >= 3)
			memcpy(last, buf + n - 3, 3);
	}
	a->bye = memcmp(last, "BYE", 3) == 0;
	return NULL;
}

static void *app_writer(void *arg)
{
	struct app *a = arg;
	static uint8_t chunk[32768];
	memset(chunk, 'z', sizeof(chunk));
	for (uint64_t sent = 0; sent < BULK; sent += sizeof(chunk))
		if (write(a->fd, chunk, sizeof(chunk)) != (ssize_t)sizeof(chunk))
			return NULL;
	shutdown(a->fd, SHUT_WR); /* the half-close the pipe must carry to the peer */
	return NULL;
}

static bool done_called;
static struct aegis_pipe_result result;

static void on_done(void *user, const struct aegis_pipe_result *r)
{
	done_called = true;
	result = *r;
	ev_break(user, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

static void run(SSL_CTX *sctx, SSL_CTX *cctx)
{
	int app[2], up[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, app), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, up), 0);
	struct peer pe = {.fd = up[1]};
	SSL *ssl = NULL;
	if (sctx != NULL) {
		pe.ssl = SSL_new(sctx);
		SSL_set_fd(pe.ssl, up[1]);
		ssl = SSL_new(cctx);
		SSL_set_fd(ssl, up[0]);
	}
	pthread_t tp, tr, tw;
	struct app a = {.fd = app[1]};
	assert_int_equal(pthread_create(&tp, NULL, peer_main, &pe), 0);
	if (ssl != NULL)
		assert_int_equal(SSL_connect(ssl), 1); /* blocking, before the fds go non-blocking */
	for (int i = 0; i < 2; i++) {
		int fl = i ? up[0] : app[0];
		assert_int_equal(nonblock(fl), 0);
	}
	assert_int_equal(pthread_create(&tr, NULL, app_reader, &a), 0);
	assert_int_equal(pthread_create(&tw, NULL, app_writer, &a), 0);
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	done_called = false;
	assert_int_equal(aegis_pipe_start(loop, app[0], NULL, up[0], ssl, 20000, on_done, loop), 0);
	ev_timer guard;
	ev_timer_init(&guard, stop_cb, 30, 0);
	ev_timer_start(loop, &guard);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	assert_true(done_called);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	pthread_join(tp, NULL);
	assert_false(result.error);
	assert_int_equal(result.a_to_b, BULK);
	assert_int_equal(result.b_to_a, BULK + 3);
	assert_int_equal(a.got, BULK + 3);
	assert_true(a.bye);
	assert_int_equal(aegis_pipe_count(), 0);
	close(app[1]);
	SSL_free(pe.ssl);
	close(up[1]);
	ev_loop_destroy(loop);
}

static void test_plain_bulk_and_half_close(void **state)
{
	(void)state;
	run(NULL, NULL);
}

static void test_tls_bulk_and_half_close(void **state)
{
	(void)state;
	struct aegis_mtls *s = NULL, *c = NULL;
	char d1[300], d2[300];
	snprintf(d1, sizeof(d1), "%s/s", tmp);
	snprintf(d2, sizeof(d2), "%s/c", tmp);
	assert_int_equal(aegis_mtls_new(d1, &s, NULL), 0);
	assert_int_equal(aegis_mtls_new(d2, &c, NULL), 0);
	run(aegis_mtls_ctx(s), aegis_mtls_ctx(c));
	aegis_mtls_free(s);
	aegis_mtls_free(c);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/aegis-test-pipe.XXXXXX");
	aegis_log_set_level(AEGIS_LOG_OFF);
	return test_certs_make(tmp, (const char *const[]){"s", "c", NULL});
}

static int group_teardown(void **state)
{
	(void)state;
	return test_certs_remove(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plain_bulk_and_half_close),
	        cmocka_unit_test(test_tls_bulk_and_half_close),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
