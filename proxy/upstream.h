/* The forwarder: sends what the table does not answer to upstream servers (resolv.conf or --upstream,
 * per-zone stub servers, longest zone wins), through the cache, and hands back the bytes to send to the
 * client. Semantics, anti-spoofing and loop safety: docs/forwarding.md.
 *
 * Guarantees:
 *  - a failure (timeouts, network errors, REFUSED/SERVFAIL from every server, every server down,
 *    overall deadline) is answered SERVFAIL, never NXDOMAIN (or stale data when serve-stale is on);
 *  - every upstream query has a fresh random ID and its own connected socket from a random ephemeral
 *    port; an answer is accepted only when source address, ID and question (case-insensitive) match;
 *  - identical cacheable misses in flight share one upstream query (every waiter gets the answer with
 *    its own ID and question case);
 *  - upstream sockets carry SO_MARK when so_mark is set; the process runs as UID 1337, which the capture
 *    rules exclude, and a query of ours that comes back to us is detected and answered SERVFAIL.
 *
 * Threading: one forwarder per libev loop; nothing here is thread-safe. */
#ifndef AEGIS_UPSTREAM_H
#define AEGIS_UPSTREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "aegis/err.h"
#include "dns_cache.h"

#define AEGIS_UPSTREAM_MAX_SERVERS 16 /* per group (the default list or one stub zone) */
#define AEGIS_UPSTREAM_MAX_ZONES   64

enum aegis_upstream_mode {
	AEGIS_UPSTREAM_SEQUENTIAL = 0, /* one server at a time, next on failure or per-try timeout */
	AEGIS_UPSTREAM_PARALLEL        /* every usable server of the group at once, first good answer wins */
};

/* A stub zone: queries at or below zone go to its servers instead of the default ones. */
struct aegis_upstream_zone {
	const char *zone;                       /* presentation form, e.g. "company.local" */
	const struct sockaddr_storage *servers; /* port included (53 unless configured) */
	size_t n_servers;
};

struct aegis_upstream_opts {
	const struct sockaddr_storage *servers; /* default group (resolv.conf nameservers or --upstream) */
	size_t n_servers;
	const struct aegis_upstream_zone *zones;
	size_t n_zones;
	enum aegis_upstream_mode mode;
	uint32_t try_timeout_ms; /* per attempt, default 1500 */
	uint32_t deadline_ms;    /* whole resolution, default 5000 */
	uint32_t max_concurrent; /* outstanding resolve() calls, default 1024; beyond: AEGIS_ELIMIT */
	uint32_t udp_bufsize;    /* upstream UDP receive buffer, default 4096 (never 512: EDNS answers) */
	uint32_t fail_threshold; /* consecutive failures that mark a server down, default 3 */
	uint32_t backoff_ms;     /* a down server is skipped this long, then probed, default 5000 */
	uint32_t rounds;         /* passes over the group's servers before giving up, default 3 */
	uint32_t so_mark;        /* SO_MARK on every upstream socket; 0 = none (needs CAP_NET_ADMIN) */
	/* RFC 8767's client-response timer: a query still waiting for upstream this long gets the cache's
	 * expired answer if it has one (the upstream query goes on and refreshes the cache); 0 = off (the
	 * default: stale data only once upstream has failed). Needs a cache with stale_max set. */
	uint32_t stale_answer_timeout_ms;
	bool tcp_fallback; /* retry over TCP when a UDP answer is truncated and a waiter came over TCP */
	bool udp_first;    /* send TCP clients' queries over UDP first (retry over TCP on TC) instead of
	                    * the default "same transport the client used" */
};

/* Fills *o with the defaults listed above (no servers, tcp_fallback on). */
void aegis_upstream_opts_default(struct aegis_upstream_opts *o);

struct aegis_upstream;
struct aegis_upstream_req;

/* Creates a forwarder on loop. opts and everything it points to are copied. cache may be NULL (no
 * caching, no serve-stale); it is borrowed and must outlive the forwarder. Fails at start-up with
 * AEGIS_EINVAL (no servers, too many servers or zones, bad zone name or address family) or AEGIS_ESYS
 * (SO_MARK requested but not permitted: checked here so that a bad configuration is fatal, not silent).
 * Free with aegis_upstream_free(). */
int aegis_upstream_new(struct ev_loop *loop, const struct aegis_upstream_opts *opts,
                       struct aegis_cache *cache, struct aegis_upstream **out) AEGIS_WUR;

/* Stops every watcher, closes every socket and frees. Pending callbacks never fire. NULL is a no-op. */
void aegis_upstream_free(struct aegis_upstream *up);

/* The answer for one resolve() call: answer/len are the complete DNS message to send to the client
 * (its ID, its question case, fitted to its transport's size limit with TC=1 if need be). The bytes
 * live only during the call. A callback may call resolve() and cancel() (for other requests), but must
 * not free the forwarder. */
typedef void (*aegis_upstream_cb)(void *ctx, const uint8_t *answer, size_t len);

#define AEGIS_UPSTREAM_F_TCP      0x01u /* the client came over TCP (limit 65535, TC answers retried) */
#define AEGIS_UPSTREAM_F_NO_CACHE 0x02u /* the caller already missed in the cache: skip the lookup */

/* Resolves the client query (len bytes; copied, the caller may reuse it at once) from client (its
 * source address; NULL for the proxy's own queries, which are never taken for a loop). Returns 0 and the
 * callback fires exactly once, later, from the loop (never from inside this call), with the answer,
 * cache hits included; *req (if req is not NULL) is a handle for aegis_upstream_cancel(), valid until
 * the callback starts. Returns a negative aegis_err and the callback never fires: AEGIS_EPARSE (not a
 * query with one question: the server answers FORMERR), AEGIS_ELIMIT (max_concurrent reached and no
 * stale answer allowed or cached: the server answers SERVFAIL or drops). */
int aegis_upstream_resolve(struct aegis_upstream *up, const uint8_t *query, size_t len,
                           const struct sockaddr_storage *client, unsigned flags, aegis_upstream_cb cb,
                           void *cb_ctx, struct aegis_upstream_req **req) AEGIS_WUR;

/* The synchronous fast path for cache hits: writes the cached answer for query into out and returns 0,
 * or AEGIS_ENOTFOUND (then call resolve with AEGIS_UPSTREAM_F_NO_CACHE). client_tcp sets the size limit
 * (65535, else the client's EDNS size or 512). Starts a background refresh when the entry is about to
 * expire (prefetch). Allocates nothing on a hit without prefetch. */
int aegis_upstream_answer_cached(struct aegis_upstream *up, const uint8_t *query, size_t len, bool client_tcp,
                                 uint8_t *out, size_t outcap, size_t *outlen) AEGIS_WUR;

/* The client went away: the callback of req never fires. The upstream query itself continues (its
 * answer still fills the cache and any other waiter). req must be a handle whose callback has not run. */
void aegis_upstream_cancel(struct aegis_upstream *up, struct aegis_upstream_req *req);

/* Cancels every outstanding request whose cb_ctx is ctx (a closed TCP connection); returns how many. */
size_t aegis_upstream_cancel_ctx(struct aegis_upstream *up, void *ctx);

/* Loop detection: true when query, received from client, is one of our own upstream queries coming
 * back to us: same ID and question as an attempt still in flight, sent from the port the client's
 * query comes from (a redirected query keeps its source port, so a client that merely picks the same
 * 16-bit ID is not taken for a loop). resolve() checks this itself and answers SERVFAIL with an error
 * log; the server may call it first to skip the table. */
bool aegis_upstream_is_own_query(const struct aegis_upstream *up, const uint8_t *query, size_t len,
                                 const struct sockaddr_storage *client);

/* DNSSEC validation (docs/security.md). From this call on, forwarded queries carry EDNS DO upstream
 * (CD as the client sent it); answers to queries without CD are validated by v before they are cached
 * or delivered: secure ones get AD when the client asked with DO or AD, bogus ones become SERVFAIL,
 * and RRSIGs (and the OPT record) are removed for clients that did not ask for them. The DNSKEY/DS
 * records v needs are fetched through this forwarder (with CD set, never validated themselves). v is
 * borrowed: free it after aegis_upstream_free(). Call before the first resolve(). */
struct aegis_dnssec;
void aegis_upstream_set_dnssec(struct aegis_upstream *up, struct aegis_dnssec *v);

/* The validator given to aegis_upstream_set_dnssec(), or NULL (for metrics). */
struct aegis_dnssec *aegis_upstream_dnssec(const struct aegis_upstream *up);

/* ---- stats and introspection ---- */

#define AEGIS_UPSTREAM_RTT_BUCKETS 12 /* upper bounds in aegis_upstream_rtt_bounds_us; the last is +Inf */
extern const uint32_t aegis_upstream_rtt_bounds_us[AEGIS_UPSTREAM_RTT_BUCKETS];

enum aegis_upstream_health { AEGIS_UPSTREAM_UP = 0, AEGIS_UPSTREAM_DOWN, AEGIS_UPSTREAM_PROBING };

struct aegis_upstream_server_info {
	struct sockaddr_storage addr;
	const char *zone; /* "." for the default group, else the stub zone as configured */
	enum aegis_upstream_health health;
	uint32_t consecutive_failures;
	uint64_t sent, answered, timeouts, errors, refused;
	uint64_t rtt_buckets[AEGIS_UPSTREAM_RTT_BUCKETS]; /* per bucket, not cumulative */
	uint64_t rtt_sum_us;
};

struct aegis_upstream_stats {
	uint64_t queries;          /* resolve() calls accepted */
	uint64_t cache_answers;    /* answered from the cache (resolve and answer_cached) */
	uint64_t stale_answers;    /* of which stale (RFC 8767) */
	uint64_t stale_timeouts;   /* of those, answered when the client-response timer fired */
	uint64_t dedup_hits;       /* waiters that joined an upstream query already in flight */
	uint64_t upstream_queries; /* upstream transactions started (one per dedup group) */
	uint64_t prefetches;
	uint64_t servfails;   /* SERVFAILs we built */
	uint64_t tcp_retries; /* TC over UDP retried over TCP */
	uint64_t dropped;     /* answers rejected: wrong ID, question or source, garbage */
	uint64_t loops;       /* own queries seen coming back */
	uint64_t overload;    /* resolve() refused with AEGIS_ELIMIT */
	uint64_t cancelled;
	uint64_t local_errors; /* attempts that failed on our side (no fd, no memory): server health kept */
	size_t inflight;       /* outstanding resolve() calls */
};

void aegis_upstream_get_stats(const struct aegis_upstream *up, struct aegis_upstream_stats *out);

/* For /config_dump and metrics: number of configured servers over all groups, and the i-th one's
 * address, zone, health and counters (copied into *out). Returns 0 or AEGIS_ENOTFOUND. */
size_t aegis_upstream_server_count(const struct aegis_upstream *up);
int aegis_upstream_server_info(const struct aegis_upstream *up, size_t i,
                               struct aegis_upstream_server_info *out) AEGIS_WUR;

#endif
