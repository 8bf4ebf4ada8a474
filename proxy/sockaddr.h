/* Socket addresses as text, for flags and log lines: shared by the DNS server, the admin endpoint and the
 * mesh listeners (aegis_dns, the library they all link). */
#ifndef AEGIS_SOCKADDR_H
#define AEGIS_SOCKADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "aegis/err.h"

/* Parses "1.2.3.4:53", "[::1]:53", "1.2.3.4" (port def_port). Returns 0 or AEGIS_EINVAL. */
int aegis_sockaddr_parse(const char *s, uint16_t def_port, struct sockaddr_storage *out) AEGIS_WUR;
/* Formats an address as "1.2.3.4:53" / "[::1]:53". Returns buf. */
const char *aegis_sockaddr_str(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
