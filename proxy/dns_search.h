/* The search-suffix matcher: decides, for a query name, whether it is a table name and how to answer.
 * Pods resolve with ndots:5 and a search list, so `api.example.com` is first asked as
 * `api.example.com.<ns>.svc.cluster.local`. Instead of storing every combination, the matcher strips a
 * known search suffix at query time and looks the rest up; a hit is answered with a CNAME from the asked
 * name to the table name plus its records, so the first query of the expansion succeeds.
 * Kubernetes short forms resolve the same way: `svc` (the pod's namespace), `svc.ns`, `svc.ns.svc`.
 *
 * Match order for a lower-case query name Q (first hit wins):
 *  1. Q exact in the table                                   -> EXACT
 *  2. Q covered by a wildcard                                -> WILDCARD (owner = Q)
 *  3. Q is a short form (1, 2 or 3-labels ending in "svc")   -> ALIAS to the expanded name
 *  4. for each search suffix S, longest first, Q = X.S with X non-empty:
 *     X exact -> ALIAS to X; X short form -> ALIAS to its expansion; X under a wildcard -> ALIAS to X
 *     (the CNAME target is X itself, never a name with "*").
 * Nothing allocates; the cost is O(number of suffixes + labels) hash lookups. */
#ifndef AEGIS_DNS_SEARCH_H
#define AEGIS_DNS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "dns_table.h"

struct aegis_search_opts {
	const char *namespace_;     /* pod namespace; NULL/"" = unknown (then no 1-label short form) */
	const char *cluster_domain; /* NULL = "cluster.local" */
	const char *const *search;  /* search suffixes as in resolv.conf, presentation form */
	size_t n_search;            /* at most AEGIS_CONFIG_MAX_SEARCH are kept */
};

struct aegis_search;

/* Builds a matcher. When opts->search is empty and a namespace is known, the Kubernetes default list
 * `<ns>.svc.<domain> svc.<domain> <domain>` is used. Returns 0 or AEGIS_EINVAL/AEGIS_ENOMEM. */
int aegis_search_new(const struct aegis_search_opts *opts, struct aegis_search **out) AEGIS_WUR;
void aegis_search_free(struct aegis_search *s);

enum aegis_match_kind {
	AEGIS_MATCH_NONE = 0, /* not a table name: forward it */
	AEGIS_MATCH_EXACT,    /* answer from node, owner = asked name */
	AEGIS_MATCH_WILDCARD, /* answer from node (a wildcard), owner = asked name */
	AEGIS_MATCH_ALIAS     /* CNAME asked name -> target, then node's records with owner = target */
};

struct aegis_match {
	enum aegis_match_kind kind;
	const struct aegis_dns_node *node;
	/* ALIAS only: the CNAME target as wire labels WITHOUT the terminating root byte (the writer adds
	 * it). Points either at the node's own name (a short form's expansion) or into the caller's query
	 * name (a prefix of it: X when X itself is a table name, which may be a PTR node that stores no
	 * name, or X under a wildcard). */
	const uint8_t *target;
	size_t target_len;
};

/* Classifies lname (lower-case wire name, len with root byte). t may be NULL (no config yet): the result
 * is then NONE. Fills *m completely. */
void aegis_search_match(const struct aegis_search *s, const struct aegis_table *t, const uint8_t *lname,
                        size_t len, struct aegis_match *m);

/* True when lname is at or below a domain the mesh owns (the cluster domain, clusterset.local, global):
 * before the first configuration arrives these get SERVFAIL rather than an upstream's NXDOMAIN. */
bool aegis_search_in_mesh_domain(const struct aegis_search *s, const uint8_t *lname, size_t len);

/* For dumps: number of suffixes and the i-th one in presentation form. */
size_t aegis_search_count(const struct aegis_search *s);
const char *aegis_search_suffix(const struct aegis_search *s, size_t i);
const char *aegis_search_namespace(const struct aegis_search *s);

#endif
