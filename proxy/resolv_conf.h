/* resolv.conf as glibc reads it: nameserver (up to AEGIS_RESOLV_MAX_NS), search/domain (the last one
 * wins, as in glibc), options ndots:N timeout:N attempts:N rotate. Unknown lines are ignored, as glibc
 * does; a nameserver that is not an IP address is an error (file and line in diag). */
#ifndef AEGIS_RESOLV_CONF_H
#define AEGIS_RESOLV_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "aegis/err.h"
#include "aegis/limits.h"

#define AEGIS_RESOLV_MAX_NS 8

struct aegis_resolv_conf {
	struct sockaddr_storage ns[AEGIS_RESOLV_MAX_NS]; /* port 53 */
	size_t n_ns;
	char search[AEGIS_CONFIG_MAX_SEARCH][256];
	size_t n_search;
	unsigned ndots;    /* default 1 */
	unsigned timeout;  /* seconds, default 5 */
	unsigned attempts; /* default 2 */
	bool rotate;
};

/* Parses path into *out (zeroed first). Returns 0, AEGIS_EIO (cannot read; errno kept) or AEGIS_EPARSE. */
int aegis_resolv_conf_load(const char *path, struct aegis_resolv_conf *out,
                           struct aegis_diag *diag) AEGIS_WUR;

/* Same, from a buffer (tests, fuzzing); name is used in diagnostics. */
int aegis_resolv_conf_parse(const char *name, const char *buf, size_t len, struct aegis_resolv_conf *out,
                            struct aegis_diag *diag) AEGIS_WUR;

#endif
