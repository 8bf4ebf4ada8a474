/* Unit tests of proxy/mesh_net.c: a listener from aegis_net_listen() hands out connections that are
 * non-blocking, close-on-exec and TCP_NODELAY (inherited from the listener: no system call per accepted
 * connection), and an accept with nothing waiting says EAGAIN; a connection that was not redirected is
 * recognised as one (aegis_net_original_dst, aegis_net_dialled_listener); aegis_net_listeners_start() opens
 * and watches one socket per address (the three mesh listeners share it). */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "mesh_net.h"

static void test_listen_accept_nodelay(void **state)
{
	(void)state;
	struct sockaddr_storage a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_in *sin = (struct sockaddr_in *)&a;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int l = aegis_net_listen(&a, &a); /* port 0 in, the kernel's port out */
	assert_true(l >= 0);
	assert_int_not_equal(((struct sockaddr_in *)&a)->sin_port, 0);

	struct sockaddr_storage peer;
	errno = 0;
	assert_int_equal(aegis_net_accept(l, &peer), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);

	int c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(struct sockaddr_in)), 0);
	int fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) {
		fd = aegis_net_accept(l, &peer);
		if (fd < 0)
			usleep(1000);
	}
	assert_true(fd >= 0);
	int v = 0;
	socklen_t vlen = sizeof(v);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &vlen), 0);
	assert_int_not_equal(v, 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(peer.ss_family, AF_INET);
	/* Dialled straight, not redirected: the proxy must not relay it to itself. */
	struct sockaddr_storage orig;
	assert_int_equal(aegis_net_original_dst(fd, &a, &orig), AEGIS_ENOTFOUND);
	close(fd);
	close(c);
	close(l);
}

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	return ss;
}

/* Which original destinations are the listener itself (no getsockname per connection). */
static void test_dialled_listener(void **state)
{
	(void)state;
	struct sockaddr_storage any4 = v4("0.0.0.0", 15001), lo4 = v4("127.0.0.1", 15001);
	struct sockaddr_storage any6 = v6("::", 15001), one6 = v6("fd00::1", 15001);
	struct sockaddr_storage t;
	t = v4("10.1.2.3", 15001);
	assert_true(aegis_net_dialled_listener(&any4, &t)); /* wildcard: the port decides */
	assert_false(aegis_net_dialled_listener(&lo4, &t)); /* specific: the address too */
	t = v4("127.0.0.1", 15001);
	assert_true(aegis_net_dialled_listener(&lo4, &t));
	t = v4("10.96.10.11", 9080); /* a redirected service VIP */
	assert_false(aegis_net_dialled_listener(&any4, &t));
	assert_false(aegis_net_dialled_listener(&any6, &t)); /* other family */
	t = v6("fd00::1", 15001);
	assert_true(aegis_net_dialled_listener(&any6, &t));
	assert_true(aegis_net_dialled_listener(&one6, &t));
	t = v6("fd00::2", 15001);
	assert_false(aegis_net_dialled_listener(&one6, &t));
	t = v6("fd00::1", 9080);
	assert_false(aegis_net_dialled_listener(&any6, &t));
}

static int calls;
static void *seen_owner;

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	calls++;
	seen_owner = w->data;
	int fd = aegis_net_accept(w->fd, NULL);
	if (fd >= 0)
		close(fd);
	ev_break(loop, EVBREAK_ONE);
}

/* aegis_net_listeners_start(): one socket per address, each reported with its kernel-chosen port and
 * watched by the callback with the owner in w->data; a failed second address leaves nothing open. */
static void test_listeners(void **state)
{
	(void)state;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sockaddr_storage addrs[2] = {v4("127.0.0.1", 0), v6("::1", 0)};
	struct aegis_net_listeners ls;
	int owner;
	assert_int_equal(aegis_net_listeners_start(&ls, loop, addrs, 2, false, "test", on_accept, &owner), 0);
	assert_int_equal(ls.n, 2);
	for (size_t i = 0; i < 2; i++) {
		struct sockaddr_storage b = ls.l[i].bound;
		assert_int_equal(b.ss_family, addrs[i].ss_family);
		assert_int_not_equal(((struct sockaddr_in *)&b)->sin_port,
		                     0); /* same offset in sockaddr_in6 */
		int c = socket(b.ss_family, SOCK_STREAM, 0);
		assert_int_equal(connect(c, (struct sockaddr *)&b,
		                         b.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                                 : sizeof(struct sockaddr_in)),
		                 0);
		calls = 0;
		seen_owner = NULL;
		ev_run(loop, 0);
		assert_int_equal(calls, 1);
		assert_ptr_equal(seen_owner, &owner);
		close(c);
	}
	/* An address this host does not have: with the defaults (skip_unavailable) it is left out and the
	 * other listens; given by the user, it is an error; left with none, an error too. */
	struct sockaddr_storage gone[2] = {v4("127.0.0.1", 0), v6("fd00:dead::1", 0)};
	struct aegis_net_listeners ls3;
	assert_int_equal(aegis_net_listeners_start(&ls3, loop, gone, 2, true, "test", on_accept, &owner), 0);
	assert_int_equal(ls3.n, 1);
	assert_int_equal(ls3.l[0].bound.ss_family, AF_INET);
	aegis_net_listeners_stop(&ls3, loop);
	errno = 0;
	assert_true(aegis_net_listeners_start(&ls3, loop, gone, 2, false, "test", on_accept, &owner) < 0);
	assert_int_equal(errno, EADDRNOTAVAIL);
	assert_int_equal(ls3.n, 0);
	assert_true(aegis_net_listeners_start(&ls3, loop, gone + 1, 1, true, "test", on_accept, &owner) < 0);
	assert_int_equal(ls3.n, 0);
	/* The second address is the first's port again: refused even with skip_unavailable (a real
	 * failure, not a missing address), and the first is closed too. */
	struct sockaddr_storage dup[2] = {v4("127.0.0.1", 0), ls.l[0].bound};
	struct aegis_net_listeners ls2;
	errno = 0;
	assert_true(aegis_net_listeners_start(&ls2, loop, dup, 2, true, "test", on_accept, &owner) < 0);
	assert_int_equal(errno, EADDRINUSE);
	assert_int_equal(ls2.n, 0);
	aegis_net_listeners_stop(&ls, loop);
	assert_int_equal(ls.n, 0);
	aegis_net_listeners_stop(&ls, loop); /* again: nothing */
	assert_int_equal(aegis_net_listeners_start(&ls2, loop, addrs, 3, false, "test", on_accept, &owner),
	                 AEGIS_EINVAL);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_listen_accept_nodelay),
	        cmocka_unit_test(test_dialled_listener),
	        cmocka_unit_test(test_listeners),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
