/* The DNS security controls the server applies to every query (docs/security.md): a source-address ACL,
 * per-client response rate limiting (RRL) and a domain blocklist with allow exceptions.
 *
 * Sans-I/O: addresses, names and `now` come in, verdicts go out. Nothing here allocates after
 * aegis_policy_new() / aegis_policy_blocklist_parse(), takes a lock or reads a clock, so the hot path pays
 * one ACL walk, one bucket update and a few hash probes, and the unit tests drive time by hand.
 *
 * Threading: one policy belongs to one loop; every function must be called from that loop's thread. */
#ifndef AEGIS_DNS_POLICY_H
#define AEGIS_DNS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "aegis/err.h"

#define AEGIS_POLICY_MAX_CIDRS       64   /* --allow-source entries */
#define AEGIS_POLICY_MAX_LOCAL       64   /* interface addresses taken as "the pod's own" */
#define AEGIS_POLICY_RRL_DEFAULT_TAB 4096 /* buckets in the RRL table */
#define AEGIS_POLICY_RRL_MAX_TAB     (1u << 20)
#define AEGIS_POLICY_MAX_RULES       (1u << 20) /* blocklist lines that are rules */

/* One address block: family AF_INET or AF_INET6, addr in network order, prefix in bits. */
struct aegis_policy_cidr {
	uint8_t family;
	uint8_t prefix;
	uint8_t addr[16];
};

enum aegis_policy_block_answer { AEGIS_POLICY_BLOCK_NXDOMAIN = 0, AEGIS_POLICY_BLOCK_REFUSED };

struct aegis_policy_opts {
	const struct aegis_policy_cidr *allow; /* sources allowed besides loopback and local addresses */
	size_t n_allow;
	bool deny_drop;     /* a denied source gets no answer (default: REFUSED) */
	uint32_t rrl_qps;   /* answers per second per source address; 0 = no rate limiting */
	uint32_t rrl_burst; /* bucket depth; 0 = rrl_qps */
	uint32_t rrl_slip;  /* every Nth limited query gets an empty TC=1 answer; 0 = never, 1 = always */
	uint32_t rrl_table; /* buckets (rounded up to a power of two); 0 = AEGIS_POLICY_RRL_DEFAULT_TAB */
	enum aegis_policy_block_answer block_answer;
};

/* What the server does with a query after the source checks. */
enum aegis_policy_action {
	AEGIS_POLICY_PASS = 0, /* answer normally */
	AEGIS_POLICY_REFUSE,   /* ACL denied: answer REFUSED */
	AEGIS_POLICY_DROP,     /* ACL denied with deny_drop, or over the rate limit: send nothing */
	AEGIS_POLICY_SLIP      /* over the rate limit, slipped: empty answer with TC=1 (retry over TCP) */
};

struct aegis_policy_stats {
	uint64_t acl_denied;           /* queries from sources outside the ACL */
	uint64_t rrl_dropped;          /* over the limit, dropped */
	uint64_t rrl_slipped;          /* over the limit, answered TC=1 */
	uint64_t rrl_evictions;        /* buckets recycled for a new source (table full) */
	uint64_t blocked;              /* queries answered by a blocklist rule */
	uint64_t allowed_by_exception; /* queries a `!` rule let through past a block rule */
	uint64_t blocklist_reloads;    /* blocklists installed after the first */
	uint64_t blocklist_rules;      /* rules in the current blocklist */
};

struct aegis_policy;
struct aegis_blocklist;

/* Creates a policy from o (copied; o->allow is copied too). Returns 0, AEGIS_EINVAL (a bad option) or
 * AEGIS_ENOMEM. The RRL table is allocated here, once. */
int aegis_policy_new(const struct aegis_policy_opts *o, struct aegis_policy **out) AEGIS_WUR;

/* Frees the policy and its blocklist. NULL is a no-op. */
void aegis_policy_free(struct aegis_policy *p);

/* Replaces the set of local interface addresses that count as "the pod's own" sources (addresses are
 * copied; at most AEGIS_POLICY_MAX_LOCAL, further ones are ignored and AEGIS_ELIMIT returned after the
 * first AEGIS_POLICY_MAX_LOCAL are installed). Loopback (127.0.0.0/8, ::1) is always allowed. */
int aegis_policy_set_local(struct aegis_policy *p, const struct aegis_policy_cidr *addrs, size_t n) AEGIS_WUR;

/* True when sa (AF_INET or AF_INET6; v4-mapped IPv6 is taken as IPv4) may query: loopback, a local
 * address, or inside an --allow-source block. Pure: counts nothing. */
bool aegis_policy_acl_allows(const struct aegis_policy *p, const struct sockaddr *sa);

/* The source checks for one query, in order: the ACL, then (for UDP only: a TCP client has proved its
 * address with the handshake and cannot be spoofed into an amplifier) the rate limit. now_ns is a
 * monotonic clock in nanoseconds. Updates the counters. */
enum aegis_policy_action aegis_policy_check_source(struct aegis_policy *p, const struct sockaddr *sa,
                                                   bool tcp, uint64_t now_ns);

/* The blocklist verdict for a lower-case wire name (struct aegis_dns_query's lname): 0 when the name may
 * be answered, else the rcode to answer with (NXDOMAIN or REFUSED, per the options). Updates the
 * counters. Cost: one hash probe per label of the name, no allocation. */
uint8_t aegis_policy_check_name(struct aegis_policy *p, const uint8_t *lname, size_t len);

/* Installs bl (ownership passes to p; NULL removes the blocklist) and frees the previous one. */
void aegis_policy_set_blocklist(struct aegis_policy *p, struct aegis_blocklist *bl);

/* The counters (loop thread, or accept slightly stale values). */
const struct aegis_policy_stats *aegis_policy_stats(const struct aegis_policy *p);

/* Parses a blocklist: one rule per line, `#` starts a comment, blank lines are ignored.
 *   example.com       blocks exactly example.com
 *   *.example.com     blocks example.com and every name below it ( `.example.com` is the same rule)
 *   !good.example.com an exception: answers normally even though a block rule covers it
 *   !*.good.example.com  an exception for a whole subtree
 *   *                 blocks every name (with `!` exceptions: an allowlist)
 * The most specific rule wins (the longest name; at one name an exact rule beats a subtree rule, and an
 * exception beats a block). file names the text in diag ("file:line: reason"). Returns 0 and *out, or
 * AEGIS_EPARSE / AEGIS_ELIMIT with diag filled, or AEGIS_ENOMEM. */
int aegis_policy_blocklist_parse(const char *text, size_t len, const char *file, struct aegis_blocklist **out,
                                 struct aegis_diag *diag) AEGIS_WUR;

/* Reads and parses a blocklist file (at most 64 MiB). Same results as aegis_policy_blocklist_parse(),
 * plus AEGIS_EIO when the file cannot be read. */
int aegis_policy_blocklist_load(const char *path, struct aegis_blocklist **out,
                                struct aegis_diag *diag) AEGIS_WUR;

/* Rules in bl. */
size_t aegis_policy_blocklist_rules(const struct aegis_blocklist *bl);

void aegis_policy_blocklist_free(struct aegis_blocklist *bl);

struct aegis_metrics;
/* Writes the counters above as aegis_policy_* families (for /stats/prometheus). */
void aegis_policy_metrics(const struct aegis_policy *p, struct aegis_metrics *m);

/* Parses "10.0.0.0/8", "fd00::/8" or a bare address (a host block). Returns 0 or AEGIS_EINVAL. */
int aegis_policy_cidr_parse(const char *s, struct aegis_policy_cidr *out) AEGIS_WUR;

#endif
