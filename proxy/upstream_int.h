/* Private to proxy/upstream*.c: the forwarder's state and the functions its files share. Nothing
 * outside proxy/upstream*.c (and their unit tests) includes this; the public API is upstream.h.
 *
 * Objects: a waiter is one resolve() call (one client query); a transaction (struct txn) is one upstream
 * question shared by every waiter with the same cache key (in-flight dedup); an attempt is one
 * upstream query of a transaction on its own socket, to one server, with its own random ID. The decisions
 * (which server next, health, whether an answer is ours) are plain functions of state and `now`; the
 * libev callbacks around them only move bytes.
 *
 * Files (docs/forwarding.md):
 *   upstream.c          the public API: new/free, resolve, cache fast path, cancel, loop check, DNSSEC hook
 *   upstream_server.c   aegis_upstream_server_*: server set, stub-zone groups, health and back-off (sans-I/O)
 *   upstream_attempt.c  aegis_upstream_attempt_*: one query on its own socket (UDP, TCP framing), matching
 *   upstream_txn.c      aegis_upstream_txn_*: transactions (dedup table, retries, deadline, cache and DNSSEC
 *                       on the answer) and the deferred delivery to waiters */
#ifndef AEGIS_UPSTREAM_INT_H
#define AEGIS_UPSTREAM_INT_H

#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns_cache.h"
#include "dns_name.h"
#include "dnssec.h"
#include "upstream.h"

#define HDR            12
#define MAX_ATTEMPTS   8 /* sockets open per transaction; the oldest is closed to make room */
#define QBUF           (HDR + AEGIS_DNS_MAX_NAME + 4)
#define RCODE_SERVFAIL 2
#define RCODE_REFUSED  5
#define RCODE_NXDOMAIN 3
/* dnssec: a DNSKEY/DS fetch of the validator: no size limit for the answer, retried over TCP on TC */
#define F_INTERNAL 0x100u

struct server {
	struct sockaddr_storage addr;
	socklen_t alen;
	unsigned group;
	enum aegis_upstream_health health; /* UP or DOWN; PROBING is DOWN with probe_inflight */
	bool probe_inflight;
	uint32_t fails; /* consecutive */
	uint64_t down_until_ms;
	uint64_t sent, answered, timeouts, errors, refused;
	uint64_t rtt[AEGIS_UPSTREAM_RTT_BUCKETS];
	uint64_t rtt_sum_us;
};

struct group {
	uint8_t zone[AEGIS_DNS_NAME_BUF]; /* lower-case wire name; the default group is the root */
	uint8_t zlen;
	char *zone_str;
	unsigned first, n; /* servers[first .. first + n) */
};

struct txn;

struct attempt {
	struct txn *txn;
	ev_io io;
	int fd; /* -1 = slot free */
	unsigned srv;
	uint16_t id;
	uint16_t lport; /* our end's port (network order): a looped query comes back from it */
	bool tcp;
	bool probe;
	bool timed_out; /* counted as a timeout; still open for a late answer */
	bool connected;
	double sent_at; /* ev_now seconds */
	uint8_t *wbuf;  /* TCP: length prefix + query */
	size_t wlen, woff;
	uint8_t *rbuf; /* TCP: the answer being read */
	size_t rneed, rhave;
	uint8_t lenbuf[2];
};

struct waiter {
	struct waiter *next, *prev; /* in txn->waiters, or in up->done */
	struct txn *txn;            /* NULL once finished (on the done list) */
	aegis_upstream_cb cb;
	void *ctx;
	uint8_t q[QBUF]; /* the client's header + question (ID, flags, name case) */
	size_t qlen;
	size_t limit; /* answer size the client accepts */
	bool edns, do_bit, tcp;
	uint8_t *ready; /* deferred answer: small, or malloc'd when larger */
	size_t ready_len;
	uint8_t small[QBUF + 17]; /* room for a SERVFAIL with OPT and EDE, so failing never needs memory */
};

struct txn {
	struct txn *hnext;       /* in-flight table */
	struct txn *next, *prev; /* every transaction, for free() */
	struct aegis_upstream *up;
	struct aegis_dns_question_key key;
	uint32_t hash;
	bool finishing;
	bool want_tcp; /* a waiter came over TCP */
	bool first_tcp;
	uint8_t *query;
	size_t qlen;
	unsigned group;
	unsigned cursor; /* positions tried: server = cursor % n, round = cursor / n */
	uint8_t rcode_failed[AEGIS_UPSTREAM_MAX_SERVERS];
	double deadline;  /* ev_now seconds */
	double stale_at;  /* client-response timer (ev_now seconds); 0 = off or already fired */
	bool stale_fired; /* waiters that join now get the stale answer at once when there is one */
	ev_timer timer;
	struct attempt att[MAX_ATTEMPTS];
	struct waiter *waiters;
	/* dnssec: the answer being validated (attempts closed, new waiters still join) */
	bool validating;
	struct aegis_dnssec_job *vjob;
	uint8_t *answer;
	size_t answer_len;
};

struct aegis_upstream {
	struct ev_loop *loop;
	struct aegis_upstream_opts o;
	struct aegis_cache *cache;
	struct server *srv;
	size_t n_srv;
	struct group *groups; /* [0] = default, then the stub zones */
	size_t n_groups;
	struct txn **buckets;
	size_t mask;
	struct txn *txns;
	size_t n_txns;
	struct waiter *done_head, *done_tail;
	ev_timer defer;
	uint8_t *rbuf; /* UDP receive buffer, udp_bufsize */
	uint8_t *obuf; /* one answer being delivered, AEGIS_DNS_TCP_MAX */
	uint8_t rpool[256];
	size_t rpos;
	struct aegis_upstream_stats st;
	struct aegis_dnssec *dnssec; /* NULL: no validation, answers pass as they are */
};

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The port of an IPv4 or IPv6 address (network order); 0 for anything else. */
static inline uint16_t aegis_upstream_sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_port;
	return 0;
}

static inline uint64_t now_ms(const struct aegis_upstream *up)
{
	return (uint64_t)(ev_now(up->loop) * 1000.0);
}

/* ---- upstream_server.c: the server set and its health (no I/O; time is passed in) ---- */

/* Appends the n servers s to group (sets its first/n). AEGIS_EINVAL: n is 0 or too large, or an
 * address is neither IPv4 nor IPv6. */
int aegis_upstream_server_add(struct aegis_upstream *up, const struct sockaddr_storage *s, size_t n,
                              unsigned group) AEGIS_WUR;

/* The group for lower-case wire name lname (len bytes): the longest stub zone containing it, else 0. */
unsigned aegis_upstream_server_group(const struct aegis_upstream *up, const uint8_t *lname, size_t len);

/* 0 = skip (down, or its probe is out), 1 = use, 2 = use as the probe of a down server. */
int aegis_upstream_server_usable(const struct server *s, uint64_t now);

/* The server answered: up again, failures reset (logged when it was down). */
void aegis_upstream_server_ok(struct server *s);

/* A timeout or network error at now (ms); threshold and backoff_ms from the options. */
void aegis_upstream_server_fail(struct server *s, uint64_t now, uint32_t threshold, uint32_t backoff_ms);

/* Next server index for t (advances t->cursor; *probe set when it is a down server's probe), or -1
 * when t's rounds are used up. */
int aegis_upstream_server_pick(struct aegis_upstream *up, struct txn *t, uint64_t now, bool *probe);

/* Counts one round trip of secs seconds in sv's histogram. */
void aegis_upstream_server_rtt(struct server *sv, double secs);

/* ---- upstream_attempt.c: one upstream query on its own socket ---- */

/* Is m (len bytes, from `from` unless NULL) the answer to our query with this id, opcode and question,
 * sent to expect? Nothing else in the answer is read before this returns true. */
bool aegis_upstream_attempt_matches(uint16_t id, uint8_t opcode, const struct aegis_dns_question_key *key,
                                    const struct sockaddr_storage *expect, const struct sockaddr *from,
                                    socklen_t fromlen, const uint8_t *m, size_t len);

/* Open attempts of t that have not timed out. */
unsigned aegis_upstream_attempt_active(const struct txn *t);

/* Closes a's socket and frees its buffers; a free slot is a no-op. */
void aegis_upstream_attempt_close(struct attempt *a);

/* Sends t's query to server s (over TCP when tcp; probe: as the probe of a down server) on a fresh
 * socket. Returns 0, or AEGIS_ESYS after counting the failure (against the server unless it was ours). */
int aegis_upstream_attempt_start(struct txn *t, unsigned s, bool tcp, bool probe) AEGIS_WUR;

/* ---- upstream_txn.c: transactions and delivery to waiters ---- */

/* The in-flight table's hash of a cache key. */
uint32_t aegis_upstream_txn_hash(const struct aegis_dns_question_key *k);

/* The next in-flight transaction for key k (hash h) after `after` (NULL: the first), or NULL. */
struct txn *aegis_upstream_txn_find(const struct aegis_upstream *up, const struct aegis_dns_question_key *k,
                                    uint32_t h, const struct txn *after);

/* A new transaction for the query (copied; DO added when validating), hashed and listed, no waiters,
 * nothing sent yet. NULL without memory. */
struct txn *aegis_upstream_txn_new(struct aegis_upstream *up, const struct aegis_dns_question_key *key,
                                   uint32_t h, const uint8_t *query, size_t len);

/* Unhashes, closes every attempt, cancels a validation and frees t (not its waiters). */
void aegis_upstream_txn_free(struct txn *t);

/* Starts t's next attempt(s), or fails t when nothing can be sent and nothing is pending. */
void aegis_upstream_txn_advance(struct txn *t);

/* (Re)arms t's timer for the earliest per-try timeout or the deadline. */
void aegis_upstream_txn_arm_timer(struct txn *t);

/* A matching answer that ends t (not TC to retry, not REFUSED/SERVFAIL): validated if need be, cached,
 * delivered to every waiter. msg is copied. */
void aegis_upstream_txn_answer(struct txn *t, const uint8_t *msg, size_t len);

/* Starts a background refresh of key (no waiter) unless one is in flight or the limit is reached. */
void aegis_upstream_txn_prefetch(struct aegis_upstream *up, const uint8_t *query, size_t len,
                                 const struct aegis_dns_question_key *key);

/* dnssec: sets or clears AD in msg for a client that sent query (client_do: its DO bit). */
void aegis_upstream_txn_apply_ad(const struct aegis_upstream *up, uint8_t *msg, size_t len,
                                 const uint8_t *query, bool client_do, bool secure);

/* Writes the SERVFAIL for w's question into out (room for QBUF + 11) and returns its length. */
size_t aegis_upstream_txn_servfail(const struct waiter *w, uint8_t *out, uint16_t ede);

/* Queues msg (copied, fitted to w's limit; SERVFAIL without memory) for w's callback on the next loop
 * iteration; w leaves its transaction. */
void aegis_upstream_txn_finish_later(struct aegis_upstream *up, struct waiter *w, const uint8_t *msg,
                                     size_t len);

/* As aegis_upstream_txn_finish_later() with a SERVFAIL (counted). */
void aegis_upstream_txn_finish_servfail(struct aegis_upstream *up, struct waiter *w, uint16_t ede);
/* w (not on any list) gets the cache's answer now in up->obuf (n bytes, the lookup's flags fl): counted,
 * an EDE "Stale Answer" when it is stale, AD for the client, delivery queued. */
void aegis_upstream_txn_finish_cached(struct aegis_upstream *up, struct waiter *w, size_t n, unsigned fl);
/* w (not on any list) gets the cache's answer for t's key, expired ones included, if there is one:
 * true when delivery is queued. */
bool aegis_upstream_txn_finish_stale(struct txn *t, struct waiter *w);
/* Takes w off its transaction's waiter list. */
void aegis_upstream_txn_waiter_unlink(struct txn *t, struct waiter *w);

/* Removes w from up's list of finished waiters. */
void aegis_upstream_txn_done_unlink(struct aegis_upstream *up, struct waiter *w);

/* Frees w (and its deferred answer) and counts it out of inflight. */
void aegis_upstream_txn_waiter_free(struct aegis_upstream *up, struct waiter *w);

/* The up->defer timer: runs the callbacks queued before this iteration. */
void aegis_upstream_txn_defer_cb(struct ev_loop *loop, ev_timer *timer, int revents);

#endif
