/* Socket helpers of the mesh listeners: the original destination of a redirected connection, listening
 * and non-blocking connects. Thin wrappers over system calls; everything else in mesh_* builds on them. */
#ifndef AEGIS_MESH_NET_H
#define AEGIS_MESH_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"
#include "mesh_routes.h"

/* The destination the client meant before iptables REDIRECT (SO_ORIGINAL_DST for IPv4,
 * IP6T_SO_ORIGINAL_DST for IPv6), as a socket address, for a connection accepted on a listener bound to
 * `bound` (aegis_net_listen's address, port filled in). 0, or AEGIS_ENOTFOUND for a connection that was not
 * redirected (aegis_net_dialled_listener). One system call. */
int aegis_net_original_dst(int fd, const struct sockaddr_storage *bound,
                           struct sockaddr_storage *out) AEGIS_WUR;

/* Whether orig, the original destination of a connection accepted on a listener bound to `bound`, is that
 * listener itself: without a REDIRECT, conntrack reports the address the client dialled. A listener on a
 * wildcard address cannot tell which of the host's addresses that was without one more system call per
 * connection (getsockname), so there any destination with the listener's port counts as the listener: a
 * captured connection to port 15001 or 15006 would loop through the proxy anyway. */
bool aegis_net_dialled_listener(const struct sockaddr_storage *bound, const struct sockaddr_storage *orig);

/* A non-blocking, close-on-exec TCP listener on addr (SO_REUSEADDR; IPV6_V6ONLY for IPv6; TCP_NODELAY, which
 * the connections it accepts inherit). Returns the fd or a negative aegis_err; *bound (may be NULL) gets
 * the address it is bound to, with the port the kernel chose when addr's was 0. */
int aegis_net_listen(const struct sockaddr_storage *addr, struct sockaddr_storage *bound) AEGIS_WUR;
/* Accepts one connection from listening socket lfd (peer may be NULL): non-blocking, close-on-exec, and,
 * from a listener made by aegis_net_listen(), TCP_NODELAY, because a relay forwards what it has at once and
 * Nagle would hold a small write until the peer's delayed ACK (docs/mesh.md). Returns the descriptor, or -1
 * (errno: EAGAIN when none is waiting). */
int aegis_net_accept(int lfd, struct sockaddr_storage *peer);

/* The listening sockets of one mesh listener (15001, 15006 or 15008): one per address, at most one per
 * family, each watched by the same callback. In the callback, w->data is the owner given to
 * aegis_net_listeners_start(), w->fd the listening socket, and
 * container_of(w, struct aegis_net_listener, io)->bound its address (aegis_net_original_dst). */
#define AEGIS_NET_MAX_LISTEN 2

struct aegis_net_listener {
	ev_io io;
	struct sockaddr_storage bound; /* with the port the kernel chose when the address had 0 */
};

struct aegis_net_listeners {
	struct aegis_net_listener l[AEGIS_NET_MAX_LISTEN];
	size_t n;
};

/* Listens on addrs[0..n) (n <= AEGIS_NET_MAX_LISTEN), starts cb on each with io.data = owner and logs
 * each address ("mesh listening", listener = what). With skip_unavailable (the addresses are the built-in
 * defaults, one per family), an address this host lacks (EAFNOSUPPORT, EADDRNOTAVAIL: a pod without IPv6
 * has no ::1) is left out with an info line, as long as another one listens. Returns 0, or the negative
 * aegis_err of the address that failed, with errno as that failure left it and nothing left open. */
int aegis_net_listeners_start(struct aegis_net_listeners *ls, struct ev_loop *loop,
                              const struct sockaddr_storage *addrs, size_t n, bool skip_unavailable,
                              const char *what, void (*cb)(struct ev_loop *, ev_io *, int),
                              void *owner) AEGIS_WUR;
/* Stops and closes them; again is a no-op. */
void aegis_net_listeners_stop(struct aegis_net_listeners *ls, struct ev_loop *loop);

/* Connections the per-connection listeners (15001, 15006) accept per wake-up. One, as nginx does by
 * default (multi_accept off): accepting until EAGAIN costs a failed accept4 for every wake-up, which at the
 * usual rate of a sidecar is one per connection; the listener is level-triggered, so when more are waiting
 * the next epoll_wait returns at once. */
#define AEGIS_NET_ACCEPTS_PER_WAKEUP 1

/* Starts a non-blocking connect; *fd is the socket (also on EINPROGRESS). 0 when connected or in progress,
 * AEGIS_ESYS with errno set otherwise (no socket left open). */
int aegis_net_connect(const struct sockaddr_storage *to, uint32_t so_mark, int *fd) AEGIS_WUR;

/* SO_ERROR of a socket whose connect finished (0 = connected). */
int aegis_net_connect_result(int fd);

void aegis_net_to_sockaddr(const struct aegis_routes_addr *a, struct sockaddr_storage *out);
void aegis_net_from_sockaddr(const struct sockaddr_storage *ss, struct aegis_routes_addr *out);

#endif
