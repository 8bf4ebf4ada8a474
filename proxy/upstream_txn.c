/* The forwarder's query lifecycle (upstream_int.h): transactions in the in-flight table (dedup), the
 * choice of the next attempt, per-try timeouts and the overall deadline, the answer through DNSSEC
 * validation and the cache to every waiter, SERVFAIL or stale data on failure, and the deferred delivery
 * that keeps callbacks out of resolve(). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnssec.h"
#include "dnssec_msg.h"
#include "dns_wire.h"
#include "upstream_int.h"

/* ---- in-flight table ------------------------------------------------------------------------------ */

uint32_t aegis_upstream_txn_hash(const struct aegis_dns_question_key *k)
{
	uint32_t h = aegis_dns_name_hash(k->lname, k->len);
	return (h ^ ((uint32_t)k->qtype << 8) ^ k->qclass ^ ((uint32_t)k->flags << 24)) * 0x9E3779B1u;
}

static bool key_eq(const struct aegis_dns_question_key *a, const struct aegis_dns_question_key *b)
{
	return a->len == b->len && a->qtype == b->qtype && a->qclass == b->qclass && a->flags == b->flags &&
	       memcmp(a->lname, b->lname, a->len) == 0;
}

struct txn *aegis_upstream_txn_find(const struct aegis_upstream *up, const struct aegis_dns_question_key *k,
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

/* SERVFAIL for the waiter's question: its ID, opcode, RD and CD, RA set, an OPT when it sent one (with
 * the Extended DNS Error ede unless it is 0). */
size_t aegis_upstream_txn_servfail(const struct waiter *w, uint8_t *out, uint16_t ede)
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
		if (ede != 0) /* every caller's buffer holds QBUF + 17 bytes (struct waiter's small) */
			n = aegis_wire_add_ede(out, n, n + 6, ede);
	}
	return n;
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

void aegis_upstream_txn_done_unlink(struct aegis_upstream *up, struct waiter *w)
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

void aegis_upstream_txn_waiter_free(struct aegis_upstream *up, struct waiter *w)
{
	up->st.inflight--;
	if (w->ready != w->small)
		free(w->ready);
	free(w);
}

/* Runs the callbacks queued before this iteration; ones queued by those callbacks wait for the next. */
void aegis_upstream_txn_defer_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
	struct aegis_upstream *up = timer->data;
	size_t n = 0;
	for (struct waiter *w = up->done_head; w != NULL; w = w->next)
		n++;
	while (n-- > 0 && up->done_head != NULL) {
		struct waiter *w = up->done_head;
		aegis_upstream_txn_done_unlink(up, w);
		w->cb(w->ctx, w->ready, w->ready_len);
		aegis_upstream_txn_waiter_free(up, w);
	}
}

/* Queues msg (copied, fitted to the waiter's limit) for delivery on the next loop iteration. Without
 * memory for the copy the waiter gets SERVFAIL from its inline buffer instead. */
void aegis_upstream_txn_finish_later(struct aegis_upstream *up, struct waiter *w, const uint8_t *msg,
                                     size_t len)
{
	w->ready = len <= sizeof(w->small) ? w->small : malloc(len);
	if (w->ready == NULL) {
		w->ready = w->small;
		w->ready_len = aegis_upstream_txn_servfail(w, w->small, 0);
		done_push(up, w);
		return;
	}
	memcpy(w->ready, msg, len);
	int n = aegis_cache_msg_fit(w->ready, len, w->limit);
	w->ready_len = n < 0 ? aegis_upstream_txn_servfail(w, w->ready, 0) : (size_t)n;
	done_push(up, w);
}

void aegis_upstream_txn_finish_servfail(struct aegis_upstream *up, struct waiter *w, uint16_t ede)
{
	uint8_t buf[sizeof(w->small)];
	up->st.servfails++;
	aegis_upstream_txn_finish_later(up, w, buf, aegis_upstream_txn_servfail(w, buf, ede));
}

/* ---- transactions --------------------------------------------------------------------------------- */

void aegis_upstream_txn_free(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	if (t->vjob != NULL) /* dnssec: its fetch is cancelled with it */
		aegis_dnssec_cancel(up->dnssec, t->vjob);
	t->vjob = NULL;
	free(t->answer);
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		aegis_upstream_attempt_close(&t->att[i]);
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
void aegis_upstream_txn_apply_ad(const struct aegis_upstream *up, uint8_t *msg, size_t len,
                                 const uint8_t *query, bool client_do, bool secure)
{
	if (up->dnssec == NULL || len < HDR)
		return;
	if (secure && (client_do || (query[3] & 0x20)))
		msg[3] |= 0x20;
	else
		msg[3] &= (uint8_t)~0x20u;
}

void aegis_upstream_txn_waiter_unlink(struct txn *t, struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		t->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

/* Takes the first waiter off t's list (NULL when none is left). */
static struct waiter *pop_waiter(struct txn *t)
{
	struct waiter *w = t->waiters;
	if (w != NULL)
		aegis_upstream_txn_waiter_unlink(t, w);
	return w;
}

void aegis_upstream_txn_finish_cached(struct aegis_upstream *up, struct waiter *w, size_t n, unsigned fl)
{
	if (fl & AEGIS_CACHE_F_STALE) {
		up->st.stale_answers++;
		n = aegis_wire_add_ede(up->obuf, n, AEGIS_DNS_TCP_MAX, AEGIS_EDE_STALE_ANSWER);
	}
	up->st.cache_answers++;
	aegis_upstream_txn_apply_ad(up, up->obuf, n, w->q, w->do_bit, (fl & AEGIS_CACHE_F_SECURE) != 0);
	aegis_upstream_txn_finish_later(up, w, up->obuf, n);
}

bool aegis_upstream_txn_finish_stale(struct txn *t, struct waiter *w)
{
	struct aegis_upstream *up = t->up;
	size_t n;
	unsigned fl;
	if (up->cache == NULL || (t->key.flags & AEGIS_CACHE_KEY_NOCACHE) ||
	    aegis_cache_lookup(up->cache, w->q, w->qlen, &t->key, now_ms(up), true, up->obuf,
	                       AEGIS_DNS_TCP_MAX, &n, &fl) != 0)
		return false;
	aegis_upstream_txn_finish_cached(up, w, n, fl);
	return true;
}

/* Every waiter gets SERVFAIL, or a stale answer when the cache has one (RFC 8767: stale data beats no
 * data while upstream is unreachable). Delivery is deferred, so this is safe inside resolve(). */
static void txn_fail(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	t->finishing = true;
	txn_unhash(t);
	for (struct waiter *w; (w = pop_waiter(t)) != NULL;)
		if (!aegis_upstream_txn_finish_stale(t, w))
			aegis_upstream_txn_finish_servfail(up, w, AEGIS_EDE_NO_REACHABLE_AUTHORITY);
	aegis_upstream_txn_free(t);
}

/* The client-response timer fired (RFC 8767 section 5): every waiter the cache has an expired answer for
 * gets it now; the others, and the upstream query, go on. */
static void txn_stale_timeout(struct txn *t)
{
	t->stale_at = 0;
	t->stale_fired = true;
	struct waiter *w = t->waiters;
	while (w != NULL) {
		struct waiter *next = w->next;
		aegis_upstream_txn_waiter_unlink(t, w);
		if (!aegis_upstream_txn_finish_stale(t, w)) {
			/* back at the head: the list's order does not matter */
			w->next = t->waiters;
			if (t->waiters)
				t->waiters->prev = w;
			t->waiters = w;
			w->txn = t;
		} else {
			t->up->st.stale_timeouts++;
		}
		w = next;
	}
}

/* dnssec: every waiter gets SERVFAIL now (a bogus answer: never stale data, never the cache), with the
 * Extended DNS Error ede (0: none). */
static void txn_servfail_now(struct txn *t, uint16_t ede)
{
	struct aegis_upstream *up = t->up;
	t->finishing = true;
	txn_unhash(t);
	for (struct waiter *w; (w = pop_waiter(t)) != NULL;) {
		up->st.servfails++;
		size_t n = aegis_upstream_txn_servfail(w, up->obuf, ede);
		w->txn = NULL;
		w->cb(w->ctx, up->obuf, n);
		aegis_upstream_txn_waiter_free(up, w);
	}
	aegis_upstream_txn_free(t);
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
		if (status != AEGIS_DNSSEC_BOGUS)
			n = aegis_dnssec_msg_strip(msg, len, (t->key.flags & AEGIS_CACHE_KEY_EDNS) != 0,
			                           (t->key.flags & AEGIS_CACHE_KEY_DO) != 0, &own);
		if (n < 0) {
			txn_servfail_now(t, status == AEGIS_DNSSEC_BOGUS ? AEGIS_EDE_DNSSEC_BOGUS : 0);
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
	for (struct waiter *w; (w = pop_waiter(t)) != NULL;) {
		memcpy(up->obuf, msg, len);
		up->obuf[0] = w->q[0];
		up->obuf[1] = w->q[1];
		up->obuf[2] = (uint8_t)((up->obuf[2] & ~0x01u) | (w->q[2] & 0x01u));
		memcpy(up->obuf + HDR, w->q + HDR, t->key.len);
		aegis_upstream_txn_apply_ad(up, up->obuf, len, w->q, w->do_bit, secure);
		int n = aegis_cache_msg_fit(up->obuf, len, w->limit);
		size_t out_len = n < 0 ? aegis_upstream_txn_servfail(w, up->obuf, 0) : (size_t)n;
		w->txn = NULL;
		w->cb(w->ctx, up->obuf, out_len);
		aegis_upstream_txn_waiter_free(up, w);
	}
	aegis_upstream_txn_free(t);
	free(own);
}

static void validated_cb(void *ctx, enum aegis_dnssec_result r)
{
	struct txn *t = ctx;
	t->vjob = NULL;
	txn_deliver(t, t->answer, t->answer_len, (int)r);
}

/* The upstream's final answer. With validation on, an answer to a query without CD is validated
 * first; when that needs DNSKEY/DS fetches the transaction waits (attempts closed, deadline kept,
 * identical queries still join it) until validated_cb. */
void aegis_upstream_txn_answer(struct txn *t, const uint8_t *msg, size_t len)
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
		txn_servfail_now(t, 0);
		return;
	}
	memcpy(t->answer, msg, len);
	t->answer_len = len;
	enum aegis_dnssec_result r = AEGIS_DNSSEC_BOGUS;
	int rc = aegis_dnssec_validate(up->dnssec, msg, len, (int64_t)time(NULL), validated_cb, t, &t->vjob,
	                               &r);
	if (rc < 0) { /* unparseable, or too many validations at once */
		aegis_dnssec_count(up->dnssec, AEGIS_DNSSEC_BOGUS);
		txn_servfail_now(t, AEGIS_EDE_DNSSEC_BOGUS);
		return;
	}
	if (rc == 0) {
		txn_deliver(t, t->answer, t->answer_len, (int)r);
		return;
	}
	t->validating = true;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		aegis_upstream_attempt_close(&t->att[i]);
	aegis_upstream_txn_arm_timer(t);
}

void aegis_upstream_txn_arm_timer(struct txn *t)
{
	struct aegis_upstream *up = t->up;
	double now = ev_now(up->loop), at = t->deadline;
	if (t->stale_at > 0 && t->stale_at < at)
		at = t->stale_at;
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
void aegis_upstream_txn_advance(struct txn *t)
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
		int s = aegis_upstream_server_pick(up, t, now_ms(up), &probe);
		if (s < 0)
			break;
		if (aegis_upstream_attempt_start(t, (unsigned)s, t->first_tcp, probe) == 0)
			started++;
	}
	bool pending = false;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		pending |= t->att[i].fd >= 0;
	if (!pending) {
		txn_fail(t);
		return;
	}
	aegis_upstream_txn_arm_timer(t);
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
	if (t->stale_at > 0 && now >= t->stale_at)
		txn_stale_timeout(t);
	if (t->validating) {
		aegis_upstream_txn_arm_timer(t);
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
		aegis_upstream_server_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	}
	if (aegis_upstream_attempt_active(t) == 0)
		aegis_upstream_txn_advance(t);
	else
		aegis_upstream_txn_arm_timer(t);
}

struct txn *aegis_upstream_txn_new(struct aegis_upstream *up, const struct aegis_dns_question_key *key,
                                   uint32_t h, const uint8_t *query, size_t len)
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
	t->group = aegis_upstream_server_group(up, key->lname, key->len);
	t->deadline = ev_now(up->loop) + up->o.deadline_ms / 1000.0;
	if (up->o.stale_answer_timeout_ms > 0 && up->cache != NULL && !(key->flags & AEGIS_CACHE_KEY_NOCACHE))
		t->stale_at = ev_now(up->loop) + up->o.stale_answer_timeout_ms / 1000.0;
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
void aegis_upstream_txn_prefetch(struct aegis_upstream *up, const uint8_t *query, size_t len,
                                 const struct aegis_dns_question_key *key)
{
	uint32_t h = aegis_upstream_txn_hash(key);
	if (up->n_txns >= up->o.max_concurrent || aegis_upstream_txn_find(up, key, h, NULL) != NULL)
		return;
	struct txn *t = aegis_upstream_txn_new(up, key, h, query, len);
	if (t == NULL)
		return;
	up->st.prefetches++;
	aegis_upstream_txn_advance(t);
}
