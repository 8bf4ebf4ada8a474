/* Unit tests of proxy/mesh_net.c: a listener from aegis_net_listen() hands out connections that are
 * non-blocking, close-on-exec and TCP_NODELAY (inherited from the listener: no system call per accepted
 * connection), and an accept with nothing waiting says EAGAIN; a connection that was not redirected is
 * recognised as one (aegis_net_original_dst, aegis_net_dialled_listener). */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_listen_accept_nodelay),
	        cmocka_unit_test(test_dialled_listener),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
