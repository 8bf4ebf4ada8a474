/* The forwarder's server set (upstream_int.h): the configured servers in groups (the default group and
 * one per stub zone), stub-zone selection, health with back-off and probing, server choice for a
 * transaction, and per-server counters. Plain functions of state and `now`: no sockets, no clock. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "aegis/log.h"
#include "upstream_int.h"

const uint32_t aegis_upstream_rtt_bounds_us[AEGIS_UPSTREAM_RTT_BUCKETS] = {
        500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, UINT32_MAX};

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6
	                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

int aegis_upstream_server_add(struct aegis_upstream *up, const struct sockaddr_storage *s, size_t n,
                              unsigned group)
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

/* Longest stub zone containing lname (label-wise suffix match); 0 = the default group. */
unsigned aegis_upstream_server_group(const struct aegis_upstream *up, const uint8_t *lname, size_t len)
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
int aegis_upstream_server_usable(const struct server *s, uint64_t now)
{
	if (s->health == AEGIS_UPSTREAM_UP)
		return 1;
	if (s->probe_inflight || now < s->down_until_ms)
		return 0;
	return 2;
}

void aegis_upstream_server_ok(struct server *s)
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
void aegis_upstream_server_fail(struct server *s, uint64_t now, uint32_t threshold, uint32_t backoff_ms)
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
int aegis_upstream_server_pick(struct aegis_upstream *up, struct txn *t, uint64_t now, bool *probe)
{
	const struct group *g = &up->groups[t->group];
	while (t->cursor < up->o.rounds * g->n) {
		unsigned i = t->cursor % g->n;
		t->cursor++;
		if (t->rcode_failed[i])
			continue;
		int u = aegis_upstream_server_usable(&up->srv[g->first + i], now);
		if (u == 0)
			continue;
		*probe = u == 2;
		return (int)(g->first + i);
	}
	return -1;
}

void aegis_upstream_server_rtt(struct server *sv, double secs)
{
	uint64_t us = secs > 0 ? (uint64_t)(secs * 1e6) : 0;
	int b = 0;
	while (b < AEGIS_UPSTREAM_RTT_BUCKETS - 1 && us > aegis_upstream_rtt_bounds_us[b])
		b++;
	sv->rtt[b]++;
	sv->rtt_sum_us += us;
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
