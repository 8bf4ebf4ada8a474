/* The DNS listener: UDP (recvmmsg/sendmmsg batches) and TCP (pipelined queries, idle timeout, connection
 * cap) sockets on one libev loop, answering through aegis_answer() from the current table.
 *
 * Threading: everything here runs on the loop's thread except aegis_dns_server_post_table(), which any
 * thread may call to hand over a newly built table; the loop swaps it in on its next iteration (ev_async),
 * so a query is always answered from one consistent table and the query path takes no lock. With
 * --dns-workers (below) several such servers share the address, one per thread, each with its loop. */
#ifndef AEGIS_DNS_SERVER_H
#define AEGIS_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"
#include "sockaddr.h" /* aegis_sockaddr_parse/str, for the server's users */
#include "dns_answer.h"
#include "dns_search.h"
#include "dns_table.h"

#define AEGIS_DNS_MAX_LISTEN 8

struct aegis_dns_server_opts {
	struct sockaddr_storage listen[AEGIS_DNS_MAX_LISTEN];
	size_t n_listen;
	uint32_t ttl;           /* table answer TTL */
	unsigned tcp_idle_ms;   /* AEGIS_DNS_TCP_IDLE_MS when 0 */
	unsigned tcp_max_conns; /* AEGIS_DNS_TCP_MAX_CONNS when 0 */
	bool forward_unready;   /* see struct aegis_answer_ctx */
	bool reuseport;         /* SO_REUSEPORT on every socket (several loops on one address) */
};

/* Counters kept by the loop (read them from the loop thread, or accept slightly stale values). */
enum aegis_dns_qtype_bucket {
	AEGIS_QT_A = 0,
	AEGIS_QT_AAAA,
	AEGIS_QT_SRV,
	AEGIS_QT_PTR,
	AEGIS_QT_OTHER,
	AEGIS_QT_COUNT_
};

/* Upper bounds (nanoseconds) of the answer latency histogram buckets: 0.25 us .. 1 ms. */
#define AEGIS_DNS_LATENCY_BUCKETS 12
extern const uint32_t aegis_dns_latency_bounds_ns[AEGIS_DNS_LATENCY_BUCKETS];

/* Response codes as metric buckets (the header rcode, BADVERS from the OPT record, "none" when dropped). */
enum aegis_dns_rcode_bucket {
	AEGIS_RC_NOERROR = 0,
	AEGIS_RC_FORMERR,
	AEGIS_RC_SERVFAIL,
	AEGIS_RC_NXDOMAIN,
	AEGIS_RC_NOTIMP,
	AEGIS_RC_REFUSED,
	AEGIS_RC_BADVERS,
	AEGIS_RC_OTHER,
	AEGIS_RC_NONE,
	AEGIS_RC_COUNT_
};

struct aegis_dns_server_stats {
	uint64_t queries_udp;
	uint64_t queries_tcp;
	/* Every query that got an answer (or was dropped), by transport (0 udp, 1 tcp), question type, rcode
	 * and where the answer came from: one joint array so the metric can carry all four labels. */
	uint64_t requests[2][AEGIS_QT_COUNT_][AEGIS_RC_COUNT_][AEGIS_SRC_COUNT_];
	uint64_t truncated;
	uint64_t dropped;
	uint64_t forward_refused;  /* forwarding not available: answered REFUSED */
	uint64_t forward_overload; /* forwarder at max_concurrent (or no memory): answered SERVFAIL */
	uint64_t tcp_accepted;
	uint64_t tcp_closed_idle;
	uint64_t tcp_rejected;      /* over the connection cap */
	uint64_t tcp_accept_errors; /* accept() out of descriptors or memory (listeners pause 100 ms) */
	uint64_t table_swaps;
	/* Answer processing time per query: from the first query of a recvmmsg batch (or of a TCP read
	 * burst) to the last answer written into the send buffers, socket calls excluded. One
	 * clock_gettime(CLOCK_MONOTONIC) pair per batch, divided evenly across its queries: two vDSO clock
	 * reads per batch instead of per query keep the ~1 us answer path cheap, at the price of averaging
	 * inside a batch (one slow query among 32 shows as 32 slightly slower ones). answer_ns_buckets[i]
	 * counts queries whose batch average was <= aegis_dns_latency_bounds_ns[i] and above the previous
	 * bound (per bucket, not cumulative); the last entry is the overflow bucket. */
	uint64_t answer_ns_buckets[AEGIS_DNS_LATENCY_BUCKETS + 1];
	uint64_t answer_ns_sum;
};

struct aegis_dns_server;

/* Binds every listen address (UDP and TCP) and starts watching on loop. search is borrowed and must
 * outlive the server. Returns 0, or AEGIS_ESYS with a log line naming the address and errno. */
int aegis_dns_server_new(struct ev_loop *loop, const struct aegis_dns_server_opts *opts,
                         const struct aegis_search *search, struct aegis_dns_server **out) AEGIS_WUR;

/* Closes the sockets and connections and releases the current table. NULL is a no-op. */
void aegis_dns_server_free(struct aegis_dns_server *srv);

/* Hands over a table (the server takes the caller's reference). Any thread. If several are posted before
 * the loop runs, only the newest is kept. */
void aegis_dns_server_post_table(struct aegis_dns_server *srv, struct aegis_table *t);

/* The table the loop answers from now (loop thread only; NULL before the first one). */
const struct aegis_table *aegis_dns_server_table(const struct aegis_dns_server *srv);

const struct aegis_dns_server_stats *aegis_dns_server_stats(const struct aegis_dns_server *srv);

struct aegis_upstream;

/* Sends names that are not table names to up (cache first, then upstream); NULL answers them REFUSED.
 * up is borrowed: free the server before the forwarder (closing connections cancels their queries). */
void aegis_dns_server_set_upstream(struct aegis_dns_server *srv, struct aegis_upstream *up);

/* policy: the security controls (dns_policy.h) and the audit query log (query_log.h) applied to every
 * query; both borrowed (free the server first), NULL turns each off. */
struct aegis_policy;
struct aegis_qlog;
void aegis_dns_server_set_policy(struct aegis_dns_server *srv, struct aegis_policy *policy,
                                 struct aegis_qlog *qlog);

/* Called on the loop thread after every table swap (e.g. to flip readiness). */
typedef void (*aegis_dns_swap_cb)(void *user, const struct aegis_table *t);
void aegis_dns_server_on_swap(struct aegis_dns_server *srv, aegis_dns_swap_cb cb, void *user);

/* --dns-workers: SO_REUSEPORT workers, one libev loop and thread each (docs/dns.md, "Workers").
 *
 * aegis_dns_server_add_workers(srv, n) makes n - 1 more servers with srv's options and search context,
 * each on a new loop of its own, binding its own UDP and TCP sockets on every listen address now, on the
 * calling thread (so the sockets get the caller's fsuid); srv itself is worker 0 on its loop. srv must
 * have been created with opts.reuseport (else AEGIS_EINVAL). n <= 1 does nothing. On failure the
 * workers made so far are kept and freed with srv. Once they exist, aegis_dns_server_post_table(srv)
 * hands every worker its own reference to the table (each swaps on its own loop), and
 * aegis_dns_server_stats(srv) returns the sum over all workers (table_swaps: srv's own count).
 * Before aegis_dns_server_run_workers() starts their threads (signals blocked in them), the caller
 * gives each worker its upstream and policy with aegis_dns_server_worker(srv, i) and the setters
 * above: each worker needs its own, because both belong to one loop. aegis_dns_server_free(srv)
 * stops and joins the threads and frees the workers first. Loop thread only, like the rest. */
#define AEGIS_DNS_MAX_WORKERS 64
int aegis_dns_server_add_workers(struct aegis_dns_server *srv, unsigned n) AEGIS_WUR;
int aegis_dns_server_run_workers(struct aegis_dns_server *srv) AEGIS_WUR;
/* 1 + the workers added; the i-th server (0 = srv) or NULL; a server's loop; the i-th worker's own
 * counters (read from another thread: slightly stale). */
unsigned aegis_dns_server_n_workers(const struct aegis_dns_server *srv);
struct aegis_dns_server *aegis_dns_server_worker(struct aegis_dns_server *srv, unsigned i);
struct ev_loop *aegis_dns_server_loop(const struct aegis_dns_server *srv);
const struct aegis_dns_server_stats *aegis_dns_server_worker_stats(const struct aegis_dns_server *srv,
                                                                   unsigned i);

#endif
