/* Unit tests of proxy/mesh_net.c: a listener from aegis_net_listen() hands out connections that are
 * non-blocking, close-on-exec and TCP_NODELAY (inherited from the listener: no system call per accepted
 * connection), and an accept with nothing waiting says EAGAIN. */
#include <errno.h>
#include <fcntl.h>
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
	int l = aegis_net_listen(&a);
	assert_true(l >= 0);
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);

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
	close(fd);
	close(c);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_listen_accept_nodelay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
