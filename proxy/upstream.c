/* The forwarder: see upstream.h and docs/forwarding.md.
 *
 * Objects: a waiter is one resolve() call (one client query); a transaction (struct txn) is one upstream
 * question shared by every waiter with the same cache key (in-flight dedup); an attempt is one
 * upstream query of a transaction on its own socket, to one server, with its own random ID. The decisions
 * (which server next, health, whether an answer is ours) are plain functions of state and `now`; the
 * libev callbacks around them only move bytes. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "aegis/log.h"
#include "dns_name.h"
#include "dnssec.h"
#include "dnssec_msg.h"

#define HDR            12
#define MAX_ATTEMPTS   8 /* sockets open per transaction; the oldest is closed to make room */
#define QBUF           (HDR + AEGIS_DNS_MAX_NAME + 4)
#define RCODE_SERVFAIL 2
#define RCODE_REFUSED  5
#define RCODE_NXDOMAIN 3
/* dnssec: a DNSKEY/DS fetch of the validator: no size limit for the answer, retried over TCP on TC */
#define F_INTERNAL 0x100u

const uint32_t aegis_upstream_rtt_bounds_us[AEGIS_UPSTREAM_RTT_BUCKETS] = {
        500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, UINT32_MAX};

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
	uint8_t small[QBUF + 11]; /* room for a SERVFAIL with OPT, so failing never needs memory */
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
	double deadline; /* ev_now seconds */
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

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint64_t now_ms(const struct aegis_upstream *up)
{
	return (uint64_t)(ev_now(up->loop) * 1000.0);
}

static uint16_t rand16(struct aegis_upstream *up)
{
	if (up->rpos + 2 > sizeof(up->rpool)) {
		size_t got = 0;
		while (got < sizeof(up->rpool)) {
			ssize_t n = getrandom(up->rpool + got, sizeof(up->rpool) - got, 0);
			if (n > 0)
				got += (size_t)n;
			else if (errno != EINTR)
				abort(); /* no kernel randomness: predictable IDs would make spoofing easy */
		}
		up->rpos = 0;
	}
	uint16_t v = rd16(up->rpool + up->rpos);
	up->rpos += 2;
	return v;
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6
	                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b, socklen_t blen)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a,
		                         *y = (const struct sockaddr_in *)b;
		return blen >= sizeof(*y) && x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a,
		                          *y = (const struct sockaddr_in6 *)b;
		return blen >= sizeof(*y) && x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

/* ---- sans-I/O decisions --------------------------------------------------------------------------- */

/* Longest stub zone containing lname (label-wise suffix match); 0 = the default group. */
static unsigned select_group(const struct aegis_upstream *up, const uint8_t *lname, size_t len)
{
	unsigned best = 0;
	size_t best_len = 0;
	for (size_t g = 1; g < up->n_groups; g++) {
		const struct group *gr = &up->groups[g];
		if (gr->zlen > len || gr->zlen <= best_len)
			continue;
		/* the zone must start at a label boundary of lname */
		for (size_t i = 0; i < len;) {
			if (len - i == gr->zlen) {
				if (memcmp(lname + i, gr->zone, gr->zlen) == 0) {
					best = (unsigned)g;
					best_len = gr->zlen;
				}
				break;
			}
			if (lname[i] == 0)
				break;
			i += (size_t)lname[i] + 1;
		}
	}
	return best;
}

/* 0 = skip (down, or its probe is out), 1 = use, 2 = use as the probe of a down server. */
static int health_usable(const struct server *s, uint64_t now)
{
	if (s->health == AEGIS_UPSTREAM_UP)
		return 1;
	if (s->probe_inflight || now < s->down_until_ms)
		return 0;
	return 2;
}

static void health_ok(struct server *s)
{
	if (s->health != AEGIS_UPSTREAM_UP) {
		char a[INET6_ADDRSTRLEN];
		AEGIS_LOG(AEGIS_LOG_INFO, "upstream recovered",
		          LKV_S("addr", addr_str(&s->addr, a, sizeof(a))));
	}
	s->health = AEGIS_UPSTREAM_UP;
	s->fails = 0;
	s->probe_inflight = false;
}

/* A timeout or network error. A failed probe, or the threshold reached, puts the server down for
 * backoff_ms; it is then probed by one query at a time. */
static void health_fail(struct server *s, uint64_t now, uint32_t threshold, uint32_t backoff_ms)
{
	s->fails++;
	s->probe_inflight = false;
	if (s->health == AEGIS_UPSTREAM_UP && s->fails < threshold)
		return;
	if (s->health == AEGIS_UPSTREAM_UP) {
		char a[INET6_ADDRSTRLEN];
		AEGIS_LOG(AEGIS_LOG_WARN, "upstream down", LKV_S("addr", addr_str(&s->addr, a, sizeof(a))),
		          LKV_I("failures", s->fails), LKV_I("backoff_ms", backoff_ms));
	}
	s->health = AEGIS_UPSTREAM_DOWN;
	s->down_until_ms = now + backoff_ms;
}

/* Next server for t: walks the group in configured order, round after round, skipping servers that
 * answered REFUSED/SERVFAIL in this transaction and servers that are down. Returns the server index
 * (and *probe) or -1 when the rounds are used up. */
static int pick_server(struct aegis_upstream *up, struct txn *t, uint64_t now, bool *probe)
{
	const struct group *g = &up->groups[t->group];
	while (t->cursor < up->o.rounds * g->n) {
		unsigned i = t->cursor % g->n;
		t->cursor++;
		if (t->rcode_failed[i])
			continue;
		int u = health_usable(&up->srv[g->first + i], now);
		if (u == 0)
			continue;
		*probe = u == 2;
		return (int)(g->first + i);
	}
	return -1;
}

/* Compares the question of an answer with the key, case-insensitively; the name must be uncompressed
 * at offset 12 (it always is: nothing precedes it that a pointer could name). */
static bool question_matches(const uint8_t *m, size_t len, const struct aegis_dns_question_key *key)
{
	if (len < HDR + (size_t)key->len + 4 || rd16(m + 4) != 1)
		return false;
	size_t i = 0;
	while (i < key->len) {
		uint8_t l = m[HDR + i];
		if (l != key->lname[i])
			return false;
		if (l == 0)
			break;
		for (size_t k = 1; k <= l; k++)
			if (i + k >= key->len || aegis_dns_lower(m[HDR + i + k]) != key->lname[i + k])
				return false;
		i += (size_t)l + 1;
	}
	const uint8_t *p = m + HDR + key->len;
	return rd16(p) == key->qtype && rd16(p + 2) == key->qclass;
}

/* Is this answer ours? Response bit, our random ID, our question, the opcode we sent, and the address we
 * sent to (the connected socket filters too; this check does not rely on it). */
static bool answer_matches(uint16_t id, uint8_t opcode, const struct aegis_dns_question_key *key,
                           const struct sockaddr_storage *expect, const struct sockaddr *from,
                           socklen_t fromlen, const uint8_t *m, size_t len)
{
	if (len < HDR || !(m[2] & 0x80) || rd16(m) != id || ((m[2] >> 3) & 0x0F) != opcode)
		return false;
	if (from != NULL && !same_addr(expect, from, fromlen))
		return false;
	return question_matches(m, len, key);
}

static size_t client_limit(bool tcp, uint16_t edns_size)
{
	if (tcp)
		return AEGIS_DNS_TCP_MAX;
	if (edns_size == 0)
		return AEGIS_DNS_UDP_MIN;
	return edns_size > AEGIS_DNS_EDNS_MAX ? AEGIS_DNS_EDNS_MAX : edns_size;
}

/* SERVFAIL for the waiter's question: its ID, opcode, RD and CD, RA set, an OPT when it sent one. */
static size_t build_servfail(const struct waiter *w, uint8_t *out)
{
	memcpy(out, w->q, w->qlen);
	out[2] = (uint8_t)(0x80 | (w->q[2] & 0x79)); /* QR, opcode, RD; AA and TC clear */
	out[3] = (uint8_t)(0x80 | (w->q[3] & 0x10) | RCODE_SERVFAIL);
	wr16(out + 4, 1);
	wr16(out + 6, 0);
	wr16(out + 8, 0);
	wr16(out + 10, w->edns ? 1 : 0);
	size_t n = w->qlen;
	if (w->edns) {
		static const uint8_t opt[11] = {
		        0, 0, 41, AEGIS_DNS_EDNS_ADVERTISE >> 8, AEGIS_DNS_EDNS_ADVERTISE & 0xFF, 0, 0, 0,
		        0, 0, 0};
		memcpy(out + n, opt, sizeof(opt));
		if (w->do_bit)
			out[n + 7] = 0x80;
		n += sizeof(opt);
	}
	return n;
}

/* ---- in-flight table ------------------------------------------------------------------------------ */

static uint32_t key_hash(const struct aegis_dns_question_key *k)
{
	uint32_t h = aegis_dns_name_hash(k->lname, k->len);
	return (h ^ ((uint32_t)k->qtype << 8) ^ k->qclass ^ ((uint32_t)k->flags << 24)) * 0x9E3779B1u;
}

static bool key_eq(const struct aegis_dns_question_key *a, const struct aegis_dns_question_key *b)
{
	return a->len == b->len && a->qtype == b->qtype && a->qclass == b->qclass && a->flags == b->flags &&
	       memcmp(a->lname, b->lname, a->len) == 0;
}

static struct txn *txn_find(const struct aegis_upstream *up, const struct aegis_dns_question_key *k,
                            uint32_t h, const struct txn *after)
{
	struct txn *t = after ? after->hnext : up->buckets[h & up->mask];
	for (; t != NULL; t = t->hnext)
		if (t->hash == h && key_eq(&t->key, k))
			return t;
	return NULL;
}

static void txn_unhash(struct txn *t)
{
	struct txn **pp = &t->up->buckets[t->hash & t->up->mask];
	while (*pp != NULL && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp == t)
		*pp = t->hnext;
	t->hnext = NULL;
}

/* ---- deferred delivery ---------------------------------------------------------------------------- */

static void done_push(struct aegis_upstream *up, struct waiter *w)
{
	w->txn = NULL;
	w->next = NULL;
	w->prev = up->done_tail;
	if (up->done_tail)
		up->done_tail->next = w;
	else
		up->done_head = w;
	up->done_tail = w;
	if (!ev_is_active(&up->defer)) {
		ev_timer_set(&up->defer, 0., 0.);
		ev_timer_start(up->loop, &up->defer);
	}
}

static void done_unlink(struct aegis_upstream *up, struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		up->done_head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		up->done_tail = w->prev;
}

static void waiter_free(struct aegis_upstream *up, struct waiter *w)
{
	up->st.inflight--;
	if (w->ready != w->small)
		free(w->ready);
	free(w);
}

/* Runs the callbacks queued before this iteration; ones queued by those callbacks wait for the next. */
static void defer_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct aegis_upstream *up = timer->data;
	size_t n = 0;
	for (struct waiter *w = up->done_head; w != NULL; w = w->next)
		n++;
	while (n-- > 0 && up->done_head != NULL) {
		struct waiter *w = up->done_head;
		done_unlink(up, w);
		w->cb(w->ctx, w->ready, w->ready_len);
		waiter_free(up, w);
	}
}

/* Queues msg (copied, fitted to the waiter's limit) for delivery on the next loop iteration. Without
 * memory for the copy the waiter gets SERVFAIL from its inline buffer instead. */
static void finish_later(struct aegis_upstream *up, struct waiter *w, const uint8_t *msg, size_t len)
{
	w->ready = len <= sizeof(w->small) ? w->small : malloc(len);
	if (w->ready == NULL) {
		w->ready = w->small;
		w->ready_len = build_servfail(w, w->small);
		done_push(up, w);
		return;
	}
	memcpy(w->ready, msg, len);
	int n = aegis_cache_msg_fit(w->ready, len, w->limit);
	w->ready_len = n < 0 ? build_servfail(w, w->ready) : (size_t)n;
	done_push(up, w);
}

static void finish_servfail_later(struct aegis_upstream *up, struct waiter *w)
{
	uint8_t buf[QBUF + 11];
	up->st.servfails++;
	finish_later(up, w, buf, build_servfail(w, buf));
}

/* ---- transactions --------------------------------------------------------------------------------- */

static void attempt_close(struct attempt *a)
{
	if (a->fd < 0)
		return; /* a free slot (its txn pointer may be unset) */
	struct aegis_upstream *up = a->txn->up;
	ev_io_stop(up->loop, &a->io);
	close(a->fd);
	a->fd = -1;
	if (a->probe && up->srv[a->srv].probe_inflight && up->srv[a->srv].health != AEGIS_UPSTREAM_UP)
		up->srv[a->srv].probe_inflight = false; /* the probe ended without a verdict */
	a->probe = false;
	free(a->wbuf);
	free(a->rbuf);
	a->wbuf = a->rbuf = NULL;
}

static void txn_free(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	if (t->vjob != NULL) /* dnssec: its fetch is cancelled with it */
		aegis_dnssec_cancel(up->dnssec, t->vjob);
	t->vjob = NULL;
	free(t->answer);
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		attempt_close(&t->att[i]);
	ev_timer_stop(up->loop, &t->timer);
	txn_unhash(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		up->txns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	up->n_txns--;
	free(t->query);
	free(t);
}

/* dnssec: with validation on, AD in an answer is ours alone: set for a secure answer when the client
 * asked with DO or AD (RFC 6840 5.7, 5.8), cleared otherwise (an upstream's AD is not trusted). */
static void apply_ad(const struct aegis_upstream *up, uint8_t *msg, size_t len, const uint8_t *query,
                     bool client_do, bool secure)
{
	if (up->dnssec == NULL || len < HDR)
		return;
	if (secure && (client_do || (query[3] & 0x20)))
		msg[3] |= 0x20;
	else
		msg[3] &= (uint8_t)~0x20u;
}

/* Every waiter gets SERVFAIL, or a stale answer when the cache has one (RFC 8767: stale data beats no
 * data while upstream is unreachable). Delivery is deferred, so this is safe inside resolve(). */
static void txn_fail(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	t->finishing = true;
	txn_unhash(t);
	while (t->waiters != NULL) {
		struct waiter *w = t->waiters;
		t->waiters = w->next;
		if (t->waiters)
			t->waiters->prev = NULL;
		if (up->cache != NULL && !(t->key.flags & AEGIS_CACHE_KEY_NOCACHE)) {
			size_t n;
			unsigned fl;
			if (aegis_cache_lookup(up->cache, w->q, w->qlen, &t->key, now_ms(up), true, up->obuf,
			                       AEGIS_DNS_TCP_MAX, &n, &fl) == 0) {
				up->st.stale_answers += (fl & AEGIS_CACHE_F_STALE) ? 1 : 0;
				up->st.cache_answers++;
				apply_ad(up, up->obuf, n, w->q, w->do_bit, (fl & AEGIS_CACHE_F_SECURE) != 0);
				finish_later(up, w, up->obuf, n);
				continue;
			}
		}
		finish_servfail_later(up, w);
	}
	txn_free(t);
}

/* dnssec: every waiter gets SERVFAIL now (a bogus answer: never stale data, never the cache). */
static void txn_servfail_now(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	t->finishing = true;
	txn_unhash(t);
	while (t->waiters != NULL) {
		struct waiter *w = t->waiters;
		t->waiters = w->next;
		if (t->waiters)
			t->waiters->prev = NULL;
		up->st.servfails++;
		size_t n = build_servfail(w, up->obuf);
		w->txn = NULL;
		w->cb(w->ctx, up->obuf, n);
		waiter_free(up, w);
	}
	txn_free(t);
}

/* The final answer: cached, then handed to every waiter with its ID and name case. status is the
 * DNSSEC result, or -1 when the answer was not validated (validation off, CD, not NOERROR/NXDOMAIN). */
static void txn_deliver(struct txn *t, const uint8_t *msg, size_t len, int status)
{
	struct aegis_upstream *up = t->up;
	uint8_t *own = NULL;
	if (up->dnssec != NULL) {
		/* What the clients of this key may see (RRSIGs only with DO, OPT only with EDNS), in a buffer
		 * of our own: a waiter's callback can finish another validation, which delivers too. */
		int n = AEGIS_EPARSE;
		if (status != AEGIS_DNSSEC_BOGUS && (own = malloc(AEGIS_DNS_TCP_MAX)) != NULL)
			n = aegis_dnssec_msg_strip(msg, len, (t->key.flags & AEGIS_CACHE_KEY_EDNS) != 0,
			                           (t->key.flags & AEGIS_CACHE_KEY_DO) != 0, own,
			                           AEGIS_DNS_TCP_MAX);
		if (n < 0) {
			free(own);
			txn_servfail_now(t);
			return;
		}
		msg = own;
		len = (size_t)n;
	}
	bool secure = status == AEGIS_DNSSEC_SECURE;
	t->finishing = true;
	txn_unhash(t);
	if (up->cache != NULL && !(t->key.flags & AEGIS_CACHE_KEY_NOCACHE) && !(msg[2] & 0x02)) {
		int rc = aegis_cache_store_secure(up->cache, &t->key, msg, len, now_ms(up), secure);
		(void)rc; /* not cacheable (TTL 0, no SOA, ...) is normal; the cache counts rejections */
	}
	while (t->waiters != NULL) {
		struct waiter *w = t->waiters;
		t->waiters = w->next;
		if (t->waiters)
			t->waiters->prev = NULL;
		memcpy(up->obuf, msg, len);
		up->obuf[0] = w->q[0];
		up->obuf[1] = w->q[1];
		up->obuf[2] = (uint8_t)((up->obuf[2] & ~0x01u) | (w->q[2] & 0x01u));
		memcpy(up->obuf + HDR, w->q + HDR, t->key.len);
		apply_ad(up, up->obuf, len, w->q, w->do_bit, secure);
		int n = aegis_cache_msg_fit(up->obuf, len, w->limit);
		size_t out_len = n < 0 ? build_servfail(w, up->obuf) : (size_t)n;
		w->txn = NULL;
		w->cb(w->ctx, up->obuf, out_len);
		waiter_free(up, w);
	}
	txn_free(t);
	free(own);
}

static void validated_cb(void *ctx, enum aegis_dnssec_result r)
{
	struct txn *t = ctx;
	t->vjob = NULL;
	txn_deliver(t, t->answer, t->answer_len, (int)r);
}

static void attempt_close(struct attempt *a);
static void arm_timer(struct txn *t);

/* The upstream's final answer. With validation on, an answer to a query without CD is validated
 * first; when that needs DNSKEY/DS fetches the transaction waits (attempts closed, deadline kept,
 * identical queries still join it) until validated_cb. */
static void txn_answer(struct txn *t, const uint8_t *msg, size_t len)
{
	struct aegis_upstream *up = t->up;
	if (t->validating)
		return; /* a second answer (parallel mode) while the first is being validated */
	uint8_t rcode = msg[3] & 0x0F;
	if (up->dnssec == NULL || (t->key.flags & AEGIS_CACHE_KEY_CD) || (msg[2] & 0x02) ||
	    (rcode != 0 && rcode != RCODE_NXDOMAIN)) {
		txn_deliver(t, msg, len, -1);
		return;
	}
	t->answer = malloc(len);
	if (t->answer == NULL) {
		txn_servfail_now(t);
		return;
	}
	memcpy(t->answer, msg, len);
	t->answer_len = len;
	enum aegis_dnssec_result r = AEGIS_DNSSEC_BOGUS;
	int rc = aegis_dnssec_validate(up->dnssec, msg, len, (int64_t)time(NULL), validated_cb, t, &t->vjob,
	                               &r);
	if (rc < 0) { /* unparseable, or too many validations at once */
		aegis_dnssec_count(up->dnssec, AEGIS_DNSSEC_BOGUS);
		txn_servfail_now(t);
		return;
	}
	if (rc == 0) {
		txn_deliver(t, t->answer, t->answer_len, (int)r);
		return;
	}
	t->validating = true;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		attempt_close(&t->att[i]);
	arm_timer(t);
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *timer, int revents);

static unsigned active_attempts(const struct txn *t)
{
	unsigned n = 0;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		if (t->att[i].fd >= 0 && !t->att[i].timed_out)
			n++;
	return n;
}

static struct attempt *attempt_slot(struct txn *t)
{
	struct attempt *oldest = NULL;
	for (int i = 0; i < MAX_ATTEMPTS; i++) {
		struct attempt *a = &t->att[i];
		if (a->fd < 0)
			return a;
		if (oldest == NULL || a->sent_at < oldest->sent_at)
			oldest = a;
	}
	attempt_close(oldest);
	return oldest;
}

/* Opens a socket to server s and sends the query (UDP) or starts connecting (TCP). Returns 0 or a
 * negative aegis_err after counting the failure against the server. */
static int attempt_start(struct txn *t, unsigned s, bool tcp, bool probe)
{
	struct aegis_upstream *up = t->up;
	struct server *sv = &up->srv[s];
	struct attempt *a = attempt_slot(t);
	memset(a, 0, sizeof(*a));
	a->txn = t;
	a->srv = s;
	a->tcp = tcp;
	a->id = rand16(up);
	a->sent_at = ev_now(up->loop);
	/* A fresh socket per attempt: connect() binds it to a random ephemeral port (the kernel randomises
	 * the choice), so an off-path attacker must guess port and ID; the connected socket also makes
	 * the kernel drop datagrams from any other source. */
	/* Failures on our side (no descriptor or memory left) say nothing about the server: they fail the
	 * attempt without touching its health, or one fd-exhaustion burst would mark every server down
	 * for the whole back-off. */
	bool local = true;
	a->fd = socket(sv->addr.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               0);
	if (a->fd < 0)
		goto fail;
	if (up->o.so_mark != 0 &&
	    setsockopt(a->fd, SOL_SOCKET, SO_MARK, &up->o.so_mark, sizeof(up->o.so_mark)) != 0)
		goto fail;
	local = false;
	if (connect(a->fd, (const struct sockaddr *)&sv->addr, sv->alen) != 0 &&
	    !(tcp && errno == EINPROGRESS))
		goto fail;
	if (tcp) {
		a->wlen = t->qlen + 2;
		a->wbuf = malloc(a->wlen);
		if (a->wbuf == NULL) {
			local = true;
			goto fail;
		}
		wr16(a->wbuf, (uint16_t)t->qlen);
		memcpy(a->wbuf + 2, t->query, t->qlen);
		wr16(a->wbuf + 2, a->id);
		ev_io_init(&a->io, io_cb, a->fd, EV_WRITE);
	} else {
		wr16(t->query, a->id);
		if (send(a->fd, t->query, t->qlen, 0) != (ssize_t)t->qlen)
			goto fail;
		ev_io_init(&a->io, io_cb, a->fd, EV_READ);
	}
	a->io.data = a;
	ev_io_start(up->loop, &a->io);
	sv->sent++;
	if (probe) {
		a->probe = true;
		sv->probe_inflight = true;
	}
	return 0;
fail:
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	free(a->wbuf);
	a->wbuf = NULL;
	if (local) {
		up->st.local_errors++;
		return AEGIS_ESYS;
	}
	sv->errors++;
	health_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	return AEGIS_ESYS;
}

static void arm_timer(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	double now = ev_now(up->loop), at = t->deadline;
	for (int i = 0; i < MAX_ATTEMPTS; i++) {
		const struct attempt *a = &t->att[i];
		double due = a->sent_at + up->o.try_timeout_ms / 1000.0;
		if (a->fd >= 0 && !a->timed_out && due < at)
			at = due;
	}
	ev_timer_stop(up->loop, &t->timer);
	ev_timer_set(&t->timer, at > now ? at - now : 0., 0.);
	ev_timer_start(up->loop, &t->timer);
}

/* Starts the next attempt(s): one server in sequential mode, a whole round in parallel mode. When
 * nothing can be sent and nothing is pending, the transaction fails now (every server down or the
 * rounds used up) rather than at the deadline. */
static void advance(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	if (ev_now(up->loop) >= t->deadline) {
		txn_fail(t);
		return;
	}
	unsigned want = up->o.mode == AEGIS_UPSTREAM_PARALLEL ? up->groups[t->group].n : 1;
	unsigned started = 0;
	while (started < want) {
		bool probe = false;
		int s = pick_server(up, t, now_ms(up), &probe);
		if (s < 0)
			break;
		if (attempt_start(t, (unsigned)s, t->first_tcp, probe) == 0)
			started++;
	}
	bool pending = false;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		pending |= t->att[i].fd >= 0;
	if (!pending) {
		txn_fail(t);
		return;
	}
	arm_timer(t);
}

static void timer_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct txn *t = timer->data;
	struct aegis_upstream *up = t->up;
	double now = ev_now(loop);
	if (now >= t->deadline) {
		txn_fail(t); /* dnssec: a validation still waiting for its fetches is cancelled */
		return;
	}
	if (t->validating) {
		arm_timer(t);
		return;
	}
	for (int i = 0; i < MAX_ATTEMPTS; i++) {
		struct attempt *a = &t->att[i];
		if (a->fd < 0 || a->timed_out || now < a->sent_at + up->o.try_timeout_ms / 1000.0)
			continue;
		/* Kept open: a late answer from this server is still accepted. */
		a->timed_out = true;
		struct server *sv = &up->srv[a->srv];
		sv->timeouts++;
		a->probe = false;
		health_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	}
	if (active_attempts(t) == 0)
		advance(t);
	else
		arm_timer(t);
}

/* A network error on an attempt (refused port, reset, send failure). */
static void attempt_error(struct attempt *a)
{
	struct txn *t = a->txn;
	struct aegis_upstream *up = t->up;
	struct server *sv = &up->srv[a->srv];
	sv->errors++;
	attempt_close(a);
	health_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	if (active_attempts(t) == 0)
		advance(t);
}

static void record_rtt(struct server *sv, double secs)
{
	uint64_t us = secs > 0 ? (uint64_t)(secs * 1e6) : 0;
	int b = 0;
	while (b < AEGIS_UPSTREAM_RTT_BUCKETS - 1 && us > aegis_upstream_rtt_bounds_us[b])
		b++;
	sv->rtt[b]++;
	sv->rtt_sum_us += us;
}

/* A matching answer arrived on attempt a. */
static void attempt_answer(struct attempt *a, const uint8_t *msg, size_t len)
{
	struct txn *t = a->txn;
	struct aegis_upstream *up = t->up;
	struct server *sv = &up->srv[a->srv];
	sv->answered++;
	record_rtt(sv, ev_now(up->loop) - a->sent_at);
	health_ok(sv);
	a->probe = false;
	uint8_t rcode = msg[3] & 0x0F;
	if ((msg[2] & 0x02) && !a->tcp && t->want_tcp && up->o.tcp_fallback) {
		unsigned s = a->srv;
		attempt_close(a);
		up->st.tcp_retries++;
		if (attempt_start(t, s, true, false) == 0)
			arm_timer(t);
		else if (active_attempts(t) == 0)
			advance(t);
		return;
	}
	if (rcode == RCODE_REFUSED || rcode == RCODE_SERVFAIL) {
		/* The server is alive but will not answer this: try the others; SERVFAIL if none will. */
		if (rcode == RCODE_REFUSED)
			sv->refused++;
		t->rcode_failed[a->srv - up->groups[t->group].first] = 1;
		attempt_close(a);
		if (active_attempts(t) == 0)
			advance(t);
		return;
	}
	txn_answer(t, msg, len);
}

static void udp_read(struct attempt *a)
{
	struct txn *t = a->txn;
	struct aegis_upstream *up = t->up;
	/* A few datagrams per wakeup at most: a flood of junk on one socket cannot starve the loop. */
	for (int i = 0; i < 8; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(a->fd, up->rbuf, up->o.udp_bufsize, 0, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			attempt_error(a); /* ECONNREFUSED from an ICMP port unreachable, ... */
			return;
		}
		if (!answer_matches(a->id, (t->query[2] >> 3) & 0x0F, &t->key, &up->srv[a->srv].addr,
		                    (const struct sockaddr *)&from, flen, up->rbuf, (size_t)n)) {
			up->st.dropped++;
			continue;
		}
		attempt_answer(a, up->rbuf, (size_t)n);
		return;
	}
}

static void tcp_io(struct attempt *a, int revents)
{
	struct aegis_upstream *up = a->txn->up;
	if (revents & EV_WRITE) {
		if (!a->connected) {
			int err = 0;
			socklen_t el = sizeof(err);
			if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
				attempt_error(a);
				return;
			}
			a->connected = true;
		}
		ssize_t n = send(a->fd, a->wbuf + a->woff, a->wlen - a->woff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				attempt_error(a);
			return;
		}
		a->woff += (size_t)n;
		if (a->woff == a->wlen) {
			ev_io_stop(up->loop, &a->io);
			ev_io_set(&a->io, a->fd, EV_READ);
			ev_io_start(up->loop, &a->io);
		}
		return;
	}
	for (;;) {
		uint8_t *dst;
		size_t want;
		if (a->rbuf == NULL) {
			dst = a->lenbuf + a->rhave;
			want = 2 - a->rhave;
		} else {
			dst = a->rbuf + a->rhave;
			want = a->rneed - a->rhave;
		}
		ssize_t n = recv(a->fd, dst, want, 0);
		if (n == 0) {
			attempt_error(a);
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				attempt_error(a);
			return;
		}
		a->rhave += (size_t)n;
		if (a->rbuf == NULL && a->rhave == 2) {
			a->rneed = rd16(a->lenbuf);
			a->rhave = 0;
			a->rbuf = malloc(a->rneed ? a->rneed : 1);
			if (a->rneed < HDR || a->rbuf == NULL) {
				up->st.dropped++;
				attempt_error(a);
				return;
			}
		} else if (a->rbuf != NULL && a->rhave == a->rneed) {
			struct txn *t = a->txn;
			if (!answer_matches(a->id, (t->query[2] >> 3) & 0x0F, &t->key, &up->srv[a->srv].addr,
			                    NULL, 0, a->rbuf, a->rneed)) {
				/* one answer per connection: a wrong one ends this attempt */
				up->st.dropped++;
				attempt_error(a);
				return;
			}
			/* the buffer is freed with the attempt; txn_answer copies before that */
			uint8_t *buf = a->rbuf;
			size_t len = a->rneed;
			a->rbuf = NULL;
			attempt_answer(a, buf, len);
			free(buf);
			return;
		}
	}
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct attempt *a = io->data;
	if (a->tcp)
		tcp_io(a, revents);
	else
		udp_read(a);
}

static struct txn *txn_new(struct aegis_upstream *up, const struct aegis_dns_question_key *key, uint32_t h,
                           const uint8_t *query, size_t len)
{
	struct txn *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->query = malloc(len + 11);
	if (t->query == NULL) {
		free(t);
		return NULL;
	}
	memcpy(t->query, query, len);
	t->qlen = len;
	if (up->dnssec != NULL) {
		/* dnssec: signatures are needed to validate (DO), and complete answers (TCP on TC) */
		int n = aegis_dnssec_msg_add_do(query, len, t->query, len + 11);
		if (n > 0)
			t->qlen = (size_t)n;
		else
			memcpy(t->query, query, len);
		t->want_tcp = true;
	}
	t->up = up;
	t->key = *key;
	t->hash = h;
	t->group = select_group(up, key->lname, key->len);
	t->deadline = ev_now(up->loop) + up->o.deadline_ms / 1000.0;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		t->att[i].fd = -1;
	ev_timer_init(&t->timer, timer_cb, 0., 0.);
	t->timer.data = t;
	t->hnext = up->buckets[h & up->mask];
	up->buckets[h & up->mask] = t;
	t->next = up->txns;
	if (up->txns)
		up->txns->prev = t;
	up->txns = t;
	up->n_txns++;
	up->st.upstream_queries++;
	return t;
}

/* A background refresh of an entry about to expire: a transaction without waiters. */
static void prefetch(struct aegis_upstream *up, const uint8_t *query, size_t len,
                     const struct aegis_dns_question_key *key)
{
	uint32_t h = key_hash(key);
	if (up->n_txns >= up->o.max_concurrent || txn_find(up, key, h, NULL) != NULL)
		return;
	struct txn *t = txn_new(up, key, h, query, len);
	if (t == NULL)
		return;
	up->st.prefetches++;
	advance(t);
}

/* ---- public API ----------------------------------------------------------------------------------- */

void aegis_upstream_opts_default(struct aegis_upstream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->try_timeout_ms = 1500;
	o->deadline_ms = 5000;
	o->max_concurrent = 1024;
	o->udp_bufsize = 4096;
	o->fail_threshold = 3;
	o->backoff_ms = 5000;
	o->rounds = 3;
	o->tcp_fallback = true;
}

static int add_servers(struct aegis_upstream *up, const struct sockaddr_storage *s, size_t n, unsigned group)
{
	if (n == 0 || n > AEGIS_UPSTREAM_MAX_SERVERS)
		return AEGIS_EINVAL;
	up->groups[group].first = (unsigned)up->n_srv;
	up->groups[group].n = (unsigned)n;
	for (size_t i = 0; i < n; i++) {
		struct server *sv = &up->srv[up->n_srv++];
		memset(sv, 0, sizeof(*sv));
		sv->addr = s[i];
		sv->group = group;
		if (s[i].ss_family == AF_INET)
			sv->alen = sizeof(struct sockaddr_in);
		else if (s[i].ss_family == AF_INET6)
			sv->alen = sizeof(struct sockaddr_in6);
		else
			return AEGIS_EINVAL;
	}
	return 0;
}

int aegis_upstream_new(struct ev_loop *loop, const struct aegis_upstream_opts *opts,
                       struct aegis_cache *cache, struct aegis_upstream **out)
{
	struct aegis_upstream_opts d;
	aegis_upstream_opts_default(&d);
	if (opts->n_zones > AEGIS_UPSTREAM_MAX_ZONES)
		return AEGIS_EINVAL;
	int rc = AEGIS_ENOMEM;
	struct aegis_upstream *up = calloc(1, sizeof(*up));
	if (up == NULL)
		return AEGIS_ENOMEM;
	up->loop = loop;
	up->cache = cache;
	up->o = *opts;
	up->o.servers = NULL;
	up->o.zones = NULL;
#define DEF(f)                                                                                               \
	if (up->o.f == 0)                                                                                    \
	up->o.f = d.f
	DEF(try_timeout_ms);
	DEF(deadline_ms);
	DEF(max_concurrent);
	DEF(udp_bufsize);
	DEF(fail_threshold);
	DEF(backoff_ms);
	DEF(rounds);
#undef DEF
	if (up->o.udp_bufsize < AEGIS_DNS_UDP_MIN || up->o.udp_bufsize > AEGIS_DNS_TCP_MAX) {
		rc = AEGIS_EINVAL;
		goto fail;
	}
	size_t total = opts->n_servers;
	for (size_t i = 0; i < opts->n_zones; i++)
		total += opts->zones[i].n_servers;
	up->n_groups = 1 + opts->n_zones;
	up->srv = calloc(total ? total : 1, sizeof(*up->srv));
	up->groups = calloc(up->n_groups, sizeof(*up->groups));
	size_t nb = 16;
	while (nb < up->o.max_concurrent)
		nb <<= 1;
	up->buckets = calloc(nb, sizeof(*up->buckets));
	up->mask = nb - 1;
	up->rbuf = malloc(up->o.udp_bufsize);
	up->obuf = malloc(AEGIS_DNS_TCP_MAX);
	if (!up->srv || !up->groups || !up->buckets || !up->rbuf || !up->obuf)
		goto fail;
	up->groups[0].zlen = 1;
	up->groups[0].zone_str = strdup(".");
	if (up->groups[0].zone_str == NULL)
		goto fail;
	rc = add_servers(up, opts->servers, opts->n_servers, 0);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < opts->n_zones; i++) {
		struct group *g = &up->groups[1 + i];
		int n = aegis_dns_name_from_str(opts->zones[i].zone, g->zone);
		if (n < 0) {
			rc = n;
			goto fail;
		}
		g->zlen = (uint8_t)n;
		g->zone_str = strdup(opts->zones[i].zone);
		rc = g->zone_str ? add_servers(up, opts->zones[i].servers, opts->zones[i].n_servers,
		                               (unsigned)(1 + i))
		                 : AEGIS_ENOMEM;
		if (rc < 0)
			goto fail;
	}
	if (up->o.so_mark != 0) {
		/* Checked once here: without CAP_NET_ADMIN every query would fail later, silently. */
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int ok = fd >= 0 &&
		         setsockopt(fd, SOL_SOCKET, SO_MARK, &up->o.so_mark, sizeof(up->o.so_mark)) == 0;
		if (fd >= 0)
			close(fd);
		if (!ok) {
			AEGIS_LOG(AEGIS_LOG_ERROR,
			          "cannot set SO_MARK on upstream sockets (needs CAP_NET_ADMIN)",
			          LKV_I("mark", up->o.so_mark));
			rc = AEGIS_ESYS;
			goto fail;
		}
	}
	up->rpos = sizeof(up->rpool);
	ev_timer_init(&up->defer, defer_cb, 0., 0.);
	up->defer.data = up;
	*out = up;
	return 0;
fail:
	aegis_upstream_free(up);
	return rc;
}

void aegis_upstream_free(struct aegis_upstream *up)
{
	if (up == NULL)
		return;
	/* dnssec: validations first; cancelling one cancels its fetch, a waiter of another transaction */
	for (struct txn *t = up->txns; t != NULL; t = t->next)
		if (t->vjob != NULL) {
			aegis_dnssec_cancel(up->dnssec, t->vjob);
			t->vjob = NULL;
		}
	while (up->txns != NULL) {
		struct txn *t = up->txns;
		while (t->waiters != NULL) {
			struct waiter *w = t->waiters;
			t->waiters = w->next;
			waiter_free(up, w);
		}
		txn_free(t);
	}
	while (up->done_head != NULL) {
		struct waiter *w = up->done_head;
		done_unlink(up, w);
		waiter_free(up, w);
	}
	if (up->loop != NULL)
		ev_timer_stop(up->loop, &up->defer);
	for (size_t g = 0; up->groups != NULL && g < up->n_groups; g++)
		free(up->groups[g].zone_str);
	free(up->groups);
	free(up->srv);
	free(up->buckets);
	free(up->rbuf);
	free(up->obuf);
	free(up);
}

/* The transaction and attempt whose ID and question this query carries, if it is one of ours. */
static bool own_query(const struct aegis_upstream *up, const struct aegis_dns_question_key *key, uint32_t h,
                      uint16_t id)
{
	for (const struct txn *t = txn_find(up, key, h, NULL); t != NULL; t = txn_find(up, key, h, t))
		for (int i = 0; i < MAX_ATTEMPTS; i++)
			if (t->att[i].fd >= 0 && t->att[i].id == id)
				return true;
	return false;
}

bool aegis_upstream_is_own_query(const struct aegis_upstream *up, const uint8_t *query, size_t len)
{
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	if (aegis_cache_key_from_query(query, len, &key, &info) < 0)
		return false;
	return own_query(up, &key, key_hash(&key), info.id);
}

static void log_loop(const struct aegis_dns_question_key *key)
{
	char name[AEGIS_DNS_MAX_NAME * 4 + 2];
	if (aegis_dns_name_to_str(key->lname, key->len, name, sizeof(name)) < 0)
		name[0] = '\0';
	AEGIS_LOG(AEGIS_LOG_ERROR, "forwarding loop: our own upstream query came back to us",
	          LKV_S("name", name), LKV_I("type", key->qtype));
}

int aegis_upstream_answer_cached(struct aegis_upstream *up, const uint8_t *query, size_t len, bool client_tcp,
                                 uint8_t *out, size_t outcap, size_t *outlen)
{
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	if (up->cache == NULL)
		return AEGIS_ENOTFOUND;
	int rc = aegis_cache_key_from_query(query, len, &key, &info);
	if (rc < 0)
		return rc;
	size_t limit = client_limit(client_tcp, info.edns_udp_size);
	unsigned fl;
	rc = aegis_cache_lookup(up->cache, query, len, &key, now_ms(up), false, out,
	                        outcap < limit ? outcap : limit, outlen, &fl);
	if (rc < 0)
		return rc;
	apply_ad(up, out, *outlen, query, (key.flags & AEGIS_CACHE_KEY_DO) != 0,
	         (fl & AEGIS_CACHE_F_SECURE) != 0);
	up->st.cache_answers++;
	if (fl & AEGIS_CACHE_F_PREFETCH)
		prefetch(up, query, len, &key);
	return 0;
}

int aegis_upstream_resolve(struct aegis_upstream *up, const uint8_t *query, size_t len, unsigned flags,
                           aegis_upstream_cb cb, void *cb_ctx, struct aegis_upstream_req **req)
{
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	int rc = aegis_cache_key_from_query(query, len, &key, &info);
	if (rc < 0)
		return rc;
	if (up->st.inflight >= up->o.max_concurrent) {
		up->st.overload++;
		return AEGIS_ELIMIT;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return AEGIS_ENOMEM;
	w->cb = cb;
	w->ctx = cb_ctx;
	w->qlen = info.question_end;
	memcpy(w->q, query, w->qlen);
	w->tcp = (flags & AEGIS_UPSTREAM_F_TCP) != 0;
	w->edns = (key.flags & AEGIS_CACHE_KEY_EDNS) != 0;
	w->do_bit = (key.flags & AEGIS_CACHE_KEY_DO) != 0;
	w->limit = (flags & F_INTERNAL) ? AEGIS_DNS_TCP_MAX : client_limit(w->tcp, info.edns_udp_size);
	up->st.inflight++;
	up->st.queries++;
	if (req != NULL)
		*req = (struct aegis_upstream_req *)w;

	uint32_t h = key_hash(&key);
	if (own_query(up, &key, h, info.id)) {
		up->st.loops++;
		log_loop(&key);
		finish_servfail_later(up, w);
		return 0;
	}
	if (up->cache != NULL && !(flags & AEGIS_UPSTREAM_F_NO_CACHE)) {
		size_t n;
		unsigned fl;
		if (aegis_cache_lookup(up->cache, query, len, &key, now_ms(up), false, up->obuf,
		                       AEGIS_DNS_TCP_MAX, &n, &fl) == 0) {
			apply_ad(up, up->obuf, n, query, w->do_bit, (fl & AEGIS_CACHE_F_SECURE) != 0);
			up->st.cache_answers++;
			finish_later(up, w, up->obuf, n);
			if (fl & AEGIS_CACHE_F_PREFETCH)
				prefetch(up, query, len, &key);
			return 0;
		}
	}
	struct txn *t = NULL;
	if (!(key.flags & AEGIS_CACHE_KEY_NOCACHE))
		for (t = txn_find(up, &key, h, NULL); t != NULL && t->finishing; t = txn_find(up, &key, h, t))
			;
	if (t != NULL) {
		up->st.dedup_hits++;
	} else {
		t = txn_new(up, &key, h, query, len);
		if (t == NULL) {
			up->st.inflight--;
			up->st.queries--;
			free(w);
			if (req != NULL)
				*req = NULL;
			return AEGIS_ENOMEM;
		}
		t->first_tcp = w->tcp && !up->o.udp_first;
	}
	t->want_tcp |= w->tcp;
	w->txn = t;
	w->prev = NULL;
	w->next = t->waiters;
	if (t->waiters)
		t->waiters->prev = w;
	t->waiters = w;
	if (t->cursor == 0 && active_attempts(t) == 0)
		advance(t); /* may fail the transaction at once: delivery is deferred */
	return 0;
}

static void cancel_waiter(struct aegis_upstream *up, struct waiter *w)
{
	if (w->txn != NULL) {
		struct txn *t = w->txn;
		if (w->prev)
			w->prev->next = w->next;
		else
			t->waiters = w->next;
		if (w->next)
			w->next->prev = w->prev;
	} else {
		done_unlink(up, w);
	}
	up->st.cancelled++;
	waiter_free(up, w);
}

void aegis_upstream_cancel(struct aegis_upstream *up, struct aegis_upstream_req *req)
{
	if (req != NULL)
		cancel_waiter(up, (struct waiter *)req);
}

size_t aegis_upstream_cancel_ctx(struct aegis_upstream *up, void *ctx)
{
	size_t n = 0;
	for (struct txn *t = up->txns; t != NULL; t = t->next) {
		struct waiter *w = t->waiters;
		while (w != NULL) {
			struct waiter *next = w->next;
			if (w->ctx == ctx) {
				cancel_waiter(up, w);
				n++;
			}
			w = next;
		}
	}
	struct waiter *w = up->done_head;
	while (w != NULL) {
		struct waiter *next = w->next;
		if (w->ctx == ctx) {
			cancel_waiter(up, w);
			n++;
		}
		w = next;
	}
	return n;
}

void aegis_upstream_get_stats(const struct aegis_upstream *up, struct aegis_upstream_stats *out)
{
	*out = up->st;
}

size_t aegis_upstream_server_count(const struct aegis_upstream *up)
{
	return up->n_srv;
}

int aegis_upstream_server_info(const struct aegis_upstream *up, size_t i,
                               struct aegis_upstream_server_info *out)
{
	if (i >= up->n_srv)
		return AEGIS_ENOTFOUND;
	const struct server *sv = &up->srv[i];
	memset(out, 0, sizeof(*out));
	out->addr = sv->addr;
	out->zone = up->groups[sv->group].zone_str;
	out->health = sv->health == AEGIS_UPSTREAM_UP ? AEGIS_UPSTREAM_UP
	              : sv->probe_inflight            ? AEGIS_UPSTREAM_PROBING
	                                              : AEGIS_UPSTREAM_DOWN;
	out->consecutive_failures = sv->fails;
	out->sent = sv->sent;
	out->answered = sv->answered;
	out->timeouts = sv->timeouts;
	out->errors = sv->errors;
	out->refused = sv->refused;
	memcpy(out->rtt_buckets, sv->rtt, sizeof(out->rtt_buckets));
	out->rtt_sum_us = sv->rtt_sum_us;
	return 0;
}

/* ---- dnssec: the validator's fetches ------------------------------------------------------------- */

static void fetch_cb(void *ctx, const uint8_t *answer, size_t len)
{
	aegis_dnssec_fetch_done(ctx, answer, len, (int64_t)time(NULL));
}

/* A DNSKEY/DS query of the validator: an ordinary resolve() (cache, dedup, servers, deadline) whose
 * CD bit keeps it out of validation, so a fetch can never wait on a validation. */
static int fetch_start(void *owner, const uint8_t *query, size_t len, struct aegis_dnssec_job *job,
                       void **handle)
{
	struct aegis_upstream_req *req = NULL;
	int rc = aegis_upstream_resolve(owner, query, len, F_INTERNAL, fetch_cb, job, &req);
	*handle = req;
	return rc;
}

static void fetch_cancel(void *owner, void *handle)
{
	aegis_upstream_cancel(owner, handle);
}

void aegis_upstream_set_dnssec(struct aegis_upstream *up, struct aegis_dnssec *v)
{
	up->dnssec = v;
	if (v != NULL) {
		struct aegis_dnssec_fetcher f = {.start = fetch_start, .cancel = fetch_cancel, .owner = up};
		aegis_dnssec_set_fetcher(v, &f);
	}
}

struct aegis_dnssec *aegis_upstream_dnssec(const struct aegis_upstream *up)
{
	return up->dnssec;
}
