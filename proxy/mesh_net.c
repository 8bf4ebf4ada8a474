/* Socket helpers of the mesh listeners: see mesh_net.h. */
#include "mesh_net.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "aegis/log.h"
#include "sockaddr.h"

/* From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, which cannot be included beside
 * glibc's <netinet/in.h> (they redefine struct in_addr). Both are 80: a fixed kernel ABI. */
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

bool aegis_net_dialled_listener(const struct sockaddr_storage *bound, const struct sockaddr_storage *orig)
{
	if (orig->ss_family != bound->ss_family)
		return false;
	if (bound->ss_family == AF_INET6) {
		const struct sockaddr_in6 *b = (const void *)bound, *o = (const void *)orig;
		return o->sin6_port == b->sin6_port && (IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
		                                        memcmp(&o->sin6_addr, &b->sin6_addr, 16) == 0);
	}
	const struct sockaddr_in *b = (const void *)bound, *o = (const void *)orig;
	return o->sin_port == b->sin_port &&
	       (b->sin_addr.s_addr == htonl(INADDR_ANY) || o->sin_addr.s_addr == b->sin_addr.s_addr);
}

int aegis_net_original_dst(int fd, const struct sockaddr_storage *bound, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	socklen_t len = sizeof(*out);
	/* The listener's family is the connection's: IPv6 listeners are IPV6_V6ONLY. */
	int rc = bound->ss_family == AF_INET6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, &len)
	                                      : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, &len);
	if (rc != 0 || aegis_net_dialled_listener(bound, out))
		return AEGIS_ENOTFOUND;
	return 0;
}

int aegis_net_accept(int lfd, struct sockaddr_storage *peer)
{
	socklen_t plen = sizeof(*peer);
	/* TCP_NODELAY comes from the listener (aegis_net_listen): Linux copies it to accepted sockets, which
	 * saves a system call per connection. */
	return accept4(lfd, (struct sockaddr *)peer, peer ? &plen : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int aegis_net_listen(const struct sockaddr_storage *addr, struct sockaddr_storage *bound)
{
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return AEGIS_ESYS;
	int one = 1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accepted sockets */
	if (addr->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	socklen_t len =
	        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	socklen_t blen = sizeof(*bound);
	if (bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 1024) != 0 ||
	    (bound != NULL && getsockname(fd, (struct sockaddr *)bound, &blen) != 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return AEGIS_ESYS;
	}
	return fd;
}

int aegis_net_listeners_start(struct aegis_net_listeners *ls, struct ev_loop *loop,
                              const struct sockaddr_storage *addrs, size_t n, bool skip_unavailable,
                              const char *what, void (*cb)(struct ev_loop *, ev_io *, int), void *owner)
{
	ls->n = 0;
	if (n > AEGIS_NET_MAX_LISTEN)
		return AEGIS_EINVAL;
	char buf[INET6_ADDRSTRLEN + 16];
	int rc = 0, e = 0;
	for (size_t i = 0; i < n; i++) {
		struct aegis_net_listener *l = &ls->l[ls->n];
		int fd = aegis_net_listen(&addrs[i], &l->bound);
		if (fd < 0) {
			e = errno;
			if (skip_unavailable && (e == EAFNOSUPPORT || e == EADDRNOTAVAIL)) {
				AEGIS_LOG(AEGIS_LOG_INFO,
				          "mesh listener: address not available here, left out",
				          LKV_S("listener", what),
				          LKV_S("addr", aegis_sockaddr_str(&addrs[i], buf, sizeof(buf))),
				          LKV_S("detail", strerror(e)));
				rc = fd;
				continue;
			}
			aegis_net_listeners_stop(ls, loop);
			errno = e; /* for the caller's message */
			return fd;
		}
		ev_io_init(&l->io, cb, fd, EV_READ);
		l->io.data = owner;
		ev_io_start(loop, &l->io);
		ls->n++;
		AEGIS_LOG(AEGIS_LOG_INFO, "mesh listening", LKV_S("listener", what),
		          LKV_S("addr", aegis_sockaddr_str(&l->bound, buf, sizeof(buf))));
	}
	if (ls->n == 0 && rc != 0) { /* every default was unavailable */
		errno = e;
		return rc;
	}
	return 0;
}

void aegis_net_listeners_stop(struct aegis_net_listeners *ls, struct ev_loop *loop)
{
	for (size_t i = 0; i < ls->n; i++) {
		ev_io_stop(loop, &ls->l[i].io);
		close(ls->l[i].io.fd);
	}
	ls->n = 0;
}

int aegis_net_connect(const struct sockaddr_storage *to, uint32_t so_mark, int *fd)
{
	int s = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return AEGIS_ESYS;
	int one = 1;
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (so_mark != 0)
		(void)setsockopt(s, SOL_SOCKET, SO_MARK, &so_mark, sizeof(so_mark));
	socklen_t len = to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (connect(s, (const struct sockaddr *)to, len) != 0 && errno != EINPROGRESS) {
		int e = errno;
		close(s);
		errno = e;
		return AEGIS_ESYS;
	}
	*fd = s;
	return 0;
}

int aegis_net_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

void aegis_net_to_sockaddr(const struct aegis_routes_addr *a, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->ip, 4);
		sin->sin_port = htons(a->port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->ip, 16);
		sin6->sin6_port = htons(a->port);
	}
}

void aegis_net_from_sockaddr(const struct sockaddr_storage *ss, struct aegis_routes_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		out->family = AF_INET;
		memcpy(out->ip, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		out->family = AF_INET6;
		memcpy(out->ip, &sin6->sin6_addr, 16);
		out->port = ntohs(sin6->sin6_port);
	}
}
