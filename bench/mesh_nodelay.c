/* mesh_nodelay.so: a what-if for bench/mesh.sh --aegis-nodelay, not a fix. Preloaded into aegis-proxy, it
 * sets TCP_NODELAY on every socket accept4() returns, which the build measured did not do on the sockets
 * its 15001 and 15006 listeners accept (only its outbound connects and its 15008 listener set it). The
 * benchmark runs it to show what that one option is worth on the direct mTLS path; the real change belongs
 * in proxy/mesh_inbound.c and proxy/mesh_outbound.c.
 *
 *   gcc -shared -fPIC -O2 -o mesh_nodelay.so bench/mesh_nodelay.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "accept4");
	if (real == NULL)
		return -1;
	int s = real(fd, addr, len, flags);
	if (s >= 0) {
		int one = 1;
		/* Fails harmlessly (ENOTSUP/EOPNOTSUPP) on a non-TCP socket. */
		(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return s;
}
