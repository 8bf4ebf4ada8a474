/* What the admin endpoint shows about the DNS side of the proxy: the config_dump sections "dns" (every
 * table node), "search" (namespace, cluster domain, suffixes), "config" (the file source's status) and
 * "listeners"; the DNS and config metrics; readiness (the server has a table); and /dns/lookup. This is
 * the glue between admin.c, which knows no DNS, and the DNS modules. Everything runs on the loop thread. */
#ifndef AEGIS_ADMIN_SECTIONS_H
#define AEGIS_ADMIN_SECTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "admin.h"
#include "aegis/err.h"
#include "dns_search.h"
#include "dns_server.h"
#include "file_source.h"

struct aegis_admin_dns_ctx {
	struct aegis_dns_server *dns;      /* required */
	const struct aegis_search *search; /* required */
	struct aegis_file_source *files;   /* NULL when the config comes from elsewhere (xDS) */
	const char *const *config_paths;   /* for the "config" section; may be NULL */
	size_t n_config_paths;
	const char *cluster_domain; /* NULL = "cluster.local" */
	const struct sockaddr_storage *dns_listen;
	size_t n_dns_listen;
	uint32_t ttl; /* table answer TTL (0 = 30), for /dns/lookup */
	bool forward_unready;
};

struct aegis_admin_sections;

/* Registers the sections, the metrics, readiness and lookup on a. ctx is copied; what it points to is
 * borrowed and must outlive both the admin and the returned object. Free the admin first, then this.
 * Returns 0 or an aegis_err from the registry (AEGIS_EEXIST when registered twice) / AEGIS_ENOMEM; on a
 * registry error *out is still set (the admin may already point into it): free the admin, then *out. */
int aegis_admin_sections_new(struct aegis_admin *a, const struct aegis_admin_dns_ctx *ctx,
                             struct aegis_admin_sections **out) AEGIS_WUR;
void aegis_admin_sections_free(struct aegis_admin_sections *s);

/* The readiness rule on its own (unit-testable): ready once the server has a table. */
bool aegis_admin_sections_ready(void *sections, char *why, size_t whylen);

#endif
