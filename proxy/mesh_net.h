/* Socket helpers of the mesh listeners: the original destination of a redirected connection, listening
 * and non-blocking connects. Thin wrappers over system calls; everything else in mesh_* builds on them. */
#ifndef AEGIS_MESH_NET_H
#define AEGIS_MESH_NET_H

#include <stdint.h>
#include <sys/socket.h>

#include "aegis/err.h"
#include "mesh_routes.h"

/* The destination the client meant before iptables REDIRECT (SO_ORIGINAL_DST for IPv4,
 * IP6T_SO_ORIGINAL_DST for IPv6), as a socket address. 0, or AEGIS_ENOTFOUND for a connection that was not
 * redirected (someone connected to the listener itself). */
int aegis_net_original_dst(int fd, struct sockaddr_storage *out) AEGIS_WUR;

/* A non-blocking, close-on-exec TCP listener on addr (SO_REUSEADDR; IPV6_V6ONLY for IPv6; TCP_NODELAY, which
 * the connections it accepts inherit). Returns the fd or a negative aegis_err. */
int aegis_net_listen(const struct sockaddr_storage *addr) AEGIS_WUR;
/* Accepts one connection from listening socket lfd (peer may be NULL): non-blocking, close-on-exec, and,
 * from a listener made by aegis_net_listen(), TCP_NODELAY, because a relay forwards what it has at once and
 * Nagle would hold a small write until the peer's delayed ACK (docs/mesh.md). Returns the descriptor, or -1
 * (errno: EAGAIN when none is waiting). */
int aegis_net_accept(int lfd, struct sockaddr_storage *peer);

/* Starts a non-blocking connect; *fd is the socket (also on EINPROGRESS). 0 when connected or in progress,
 * AEGIS_ESYS with errno set otherwise (no socket left open). */
int aegis_net_connect(const struct sockaddr_storage *to, uint32_t so_mark, int *fd) AEGIS_WUR;

/* SO_ERROR of a socket whose connect finished (0 = connected). */
int aegis_net_connect_result(int fd);

void aegis_net_to_sockaddr(const struct aegis_routes_addr *a, struct sockaddr_storage *out);
void aegis_net_from_sockaddr(const struct sockaddr_storage *ss, struct aegis_routes_addr *out);

#endif
