/* The forwarder's public API (upstream.h, docs/forwarding.md): construction from the options, resolve()
 * with its cache fast path, cancellation, loop detection and the DNSSEC hook. The pieces it drives are in
 * upstream_server.c, upstream_attempt.c and upstream_txn.c (upstream_int.h lists them). */
#include "upstream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aegis/log.h"
#include "dns_name.h"
#include "dnssec.h"
#include "upstream_int.h"

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
	rc = aegis_upstream_server_add(up, opts->servers, opts->n_servers, 0);
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
		rc = g->zone_str ? aegis_upstream_server_add(up, opts->zones[i].servers,
		                                             opts->zones[i].n_servers, (unsigned)(1 + i))
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
	ev_timer_init(&up->defer, aegis_upstream_txn_defer_cb, 0., 0.);
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
			aegis_upstream_txn_waiter_free(up, w);
		}
		aegis_upstream_txn_free(t);
	}
	while (up->done_head != NULL) {
		struct waiter *w = up->done_head;
		aegis_upstream_txn_done_unlink(up, w);
		aegis_upstream_txn_waiter_free(up, w);
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

static size_t client_limit(bool tcp, uint16_t edns_size)
{
	if (tcp)
		return AEGIS_DNS_TCP_MAX;
	if (edns_size == 0)
		return AEGIS_DNS_UDP_MIN;
	return edns_size > AEGIS_DNS_EDNS_MAX ? AEGIS_DNS_EDNS_MAX : edns_size;
}

/* Whether this query, from client, is one of our attempts in flight coming back: its ID and question,
 * sent from the attempt's port (see upstream.h). */
static bool own_query(const struct aegis_upstream *up, const struct aegis_dns_question_key *key, uint32_t h,
                      uint16_t id, const struct sockaddr_storage *client)
{
	if (client == NULL)
		return false;
	uint16_t port = aegis_upstream_sa_port(client);
	for (const struct txn *t = aegis_upstream_txn_find(up, key, h, NULL); t != NULL;
	     t = aegis_upstream_txn_find(up, key, h, t))
		for (int i = 0; i < MAX_ATTEMPTS; i++)
			if (t->att[i].fd >= 0 && t->att[i].id == id && t->att[i].lport == port)
				return true;
	return false;
}

bool aegis_upstream_is_own_query(const struct aegis_upstream *up, const uint8_t *query, size_t len,
                                 const struct sockaddr_storage *client)
{
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	if (aegis_cache_key_from_query(query, len, &key, &info) < 0)
		return false;
	return own_query(up, &key, aegis_upstream_txn_hash(&key), info.id, client);
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
	aegis_upstream_txn_apply_ad(up, out, *outlen, query, (key.flags & AEGIS_CACHE_KEY_DO) != 0,
	                            (fl & AEGIS_CACHE_F_SECURE) != 0);
	up->st.cache_answers++;
	if (fl & AEGIS_CACHE_F_PREFETCH)
		aegis_upstream_txn_prefetch(up, query, len, &key);
	return 0;
}

int aegis_upstream_resolve(struct aegis_upstream *up, const uint8_t *query, size_t len,
                           const struct sockaddr_storage *client, unsigned flags, aegis_upstream_cb cb,
                           void *cb_ctx, struct aegis_upstream_req **req)
{
	struct aegis_dns_question_key key;
	struct aegis_dns_query_info info;
	int rc = aegis_cache_key_from_query(query, len, &key, &info);
	if (rc < 0)
		return rc;
	/* Too many queries already wait for upstream (an unreachable upstream fills the table before its
	 * servers are marked down): a stale answer if --serve-stale allows one (RFC 8767: stale data beats
	 * no data), else the caller answers SERVFAIL. */
	bool overloaded = up->st.inflight >= up->o.max_concurrent;
	size_t stale_n = 0;
	unsigned stale_fl = 0;
	if (overloaded) {
		up->st.overload++;
		if (up->cache == NULL || (flags & F_INTERNAL) ||
		    aegis_cache_lookup(up->cache, query, len, &key, now_ms(up), true, up->obuf,
		                       AEGIS_DNS_TCP_MAX, &stale_n, &stale_fl) != 0)
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
	if (overloaded) {
		aegis_upstream_txn_finish_cached(up, w, stale_n, stale_fl);
		return 0;
	}

	uint32_t h = aegis_upstream_txn_hash(&key);
	if (own_query(up, &key, h, info.id, client)) {
		up->st.loops++;
		log_loop(&key);
		aegis_upstream_txn_finish_servfail(up, w, 0);
		return 0;
	}
	if (up->cache != NULL && !(flags & AEGIS_UPSTREAM_F_NO_CACHE)) {
		size_t n;
		unsigned fl;
		if (aegis_cache_lookup(up->cache, query, len, &key, now_ms(up), false, up->obuf,
		                       AEGIS_DNS_TCP_MAX, &n, &fl) == 0) {
			aegis_upstream_txn_finish_cached(up, w, n, fl);
			if (fl & AEGIS_CACHE_F_PREFETCH)
				aegis_upstream_txn_prefetch(up, query, len, &key);
			return 0;
		}
	}
	struct txn *t = NULL;
	if (!(key.flags & AEGIS_CACHE_KEY_NOCACHE))
		for (t = aegis_upstream_txn_find(up, &key, h, NULL); t != NULL && t->finishing;
		     t = aegis_upstream_txn_find(up, &key, h, t))
			;
	if (t != NULL) {
		up->st.dedup_hits++;
		/* its client-response timer has fired: what its waiters got, this one gets now */
		if (t->stale_fired && aegis_upstream_txn_finish_stale(t, w)) {
			up->st.stale_timeouts++;
			return 0;
		}
	} else {
		t = aegis_upstream_txn_new(up, &key, h, query, len);
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
	if (t->cursor == 0 && aegis_upstream_attempt_active(t) == 0)
		aegis_upstream_txn_advance(t); /* may fail the transaction at once: delivery is deferred */
	return 0;
}

static void cancel_waiter(struct aegis_upstream *up, struct waiter *w)
{
	if (w->txn != NULL) {
		aegis_upstream_txn_waiter_unlink(w->txn, w);
	} else {
		aegis_upstream_txn_done_unlink(up, w);
	}
	up->st.cancelled++;
	aegis_upstream_txn_waiter_free(up, w);
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
	int rc = aegis_upstream_resolve(owner, query, len, NULL, F_INTERNAL, fetch_cb, job, &req);
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
