/* Dropping root after the sockets are bound (docs/security.md): the sidecar then runs as UID/GID 1337 (the
 * identity the capture rules exempt) with no capabilities, or with CAP_NET_ADMIN alone when upstream
 * sockets need SO_MARK. */
#ifndef AEGIS_PRIVS_H
#define AEGIS_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "aegis/err.h"

#define AEGIS_PRIVS_DEFAULT_ID 1337

/* Parses "1337", "1337:1337" or a user name from the passwd database (its primary group). Returns 0 or
 * AEGIS_EINVAL. */
int aegis_privs_parse_user(const char *s, uid_t *uid, gid_t *gid) AEGIS_WUR;

/* When the process is root (effective UID 0) and uid != 0: clears the supplementary groups, switches
 * every UID and GID (real, effective, saved) of every thread to uid/gid, and leaves no capability in the
 * permitted, effective, inheritable, ambient and (as far as CAP_SETPCAP allows) bounding sets, except
 * CAP_NET_ADMIN when keep_net_admin. Also sets no_new_privs. Then checks the result (getresuid,
 * capget, and that setuid(0) fails). Not root, or uid 0: does nothing and returns 0 (*dropped false).
 * Returns 0, or AEGIS_ESYS with errno and a log line: the caller must exit, since a half-dropped process
 * is worse than none. */
int aegis_privs_drop(uid_t uid, gid_t gid, bool keep_net_admin, bool *dropped) AEGIS_WUR;

/* Makes the sockets this thread creates from now on belong to uid, as iptables' `-m owner` sees them (a
 * socket's owner is the creator's filesystem UID, fixed at socket()). Sockets bound as root before the
 * drop would otherwise stay "root's" for the capture rules forever. Binding privileged ports still works
 * (CAP_NET_BIND_SERVICE does not depend on the fsuid). Returns the previous fsuid, to pass back when
 * done. Not root: does nothing and returns the current fsuid. */
uid_t aegis_privs_socket_owner(uid_t uid);

#endif
