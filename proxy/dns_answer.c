/* The answer rules: see dns_answer.h and ../shared/design/DNS_BEHAVIOUR.md (the reason for each rule is in
 * docs/dns.md). */
#include "dns_answer.h"

#include <string.h>

size_t aegis_answer_udp_limit(const struct aegis_dns_query *q)
{
	if (!q->has_opt || q->udp_size <= AEGIS_DNS_UDP_MIN)
		return AEGIS_DNS_UDP_MIN;
	return q->udp_size > AEGIS_DNS_EDNS_MAX ? AEGIS_DNS_EDNS_MAX : q->udp_size;
}

static void finish_opt(struct aegis_wire_writer *w, const struct aegis_dns_query *q, uint8_t ext_rcode)
{
	if (q->has_opt)
		(void)aegis_wire_opt(w, AEGIS_DNS_EDNS_ADVERTISE, ext_rcode,
		                     (uint16_t)(q->edns_flags & AEGIS_DNS_EDNS_DO));
}

size_t aegis_answer_rcode(const struct aegis_dns_query *q, const uint8_t *pkt, uint8_t rcode, uint8_t *out,
                          size_t outcap)
{
	if (outcap < AEGIS_DNS_HEADER)
		return 0;
	struct aegis_wire_writer w;
	aegis_wire_begin(&w, out, outcap, q, pkt, AEGIS_DNS_RA, (uint8_t)(rcode & 0xF));
	finish_opt(&w, q, (uint8_t)(rcode >> 4));
	return w.len;
}

/* Writes the records of node for qtype with the owner at owner_off. Returns the number written; stops
 * quietly when the buffer is full (the caller checks w->full). */
static unsigned put_records(struct aegis_wire_writer *w, const struct aegis_answer_ctx *ctx,
                            const struct aegis_dns_node *n, uint16_t qtype, size_t owner_off)
{
	unsigned written = 0;
	uint32_t ttl = ctx->ttl;
	if (qtype == AEGIS_TYPE_A || qtype == AEGIS_TYPE_AAAA) {
		const uint8_t *addrs = qtype == AEGIS_TYPE_A ? aegis_node_a(n) : aegis_node_aaaa(n);
		unsigned count = qtype == AEGIS_TYPE_A ? n->n_a : n->n_aaaa;
		size_t alen = qtype == AEGIS_TYPE_A ? 4 : 16;
		unsigned start = count ? ctx->rotor % count : 0;
		for (unsigned i = 0; i < count && written < AEGIS_DNS_MAX_RRS_PER_ANSWER; i++) {
			unsigned k = (start + i) % count;
			if (!aegis_wire_rr_addr(w, 0, owner_off, qtype, ttl, addrs + k * alen, alen))
				break;
			written++;
		}
	} else if (qtype == AEGIS_TYPE_SRV) {
		unsigned start = n->n_srv ? ctx->rotor % n->n_srv : 0;
		for (unsigned i = 0; i < n->n_srv && written < AEGIS_DNS_MAX_RRS_PER_ANSWER; i++) {
			struct aegis_dns_srv s = aegis_node_srv(n, (start + i) % n->n_srv);
			if (!aegis_wire_rr_srv(w, 0, owner_off, ttl, s.priority, s.weight, s.port,
			                       s.target.name, s.target.len))
				break;
			written++;
		}
	} else if (qtype == AEGIS_TYPE_PTR) {
		for (unsigned i = 0; i < n->n_ptr && written < AEGIS_DNS_MAX_RRS_PER_ANSWER; i++) {
			struct aegis_dns_name p = aegis_node_ptr(n, i);
			if (!aegis_wire_rr_name(w, 0, owner_off, AEGIS_TYPE_PTR, ttl, p.name, p.len, NULL))
				break;
			written++;
		}
	}
	return written;
}

/* SRV answers carry the targets' addresses in the additional section when the table has them (as
 * Kubernetes DNS does), so a client needs no second round trip. Best effort: what does not fit is left
 * out without setting TC (RFC 2181 9: TC is for the answer section only). */
static void put_srv_additionals(struct aegis_wire_writer *w, const struct aegis_answer_ctx *ctx,
                                const struct aegis_dns_node *n)
{
	for (unsigned i = 0; i < n->n_srv; i++) {
		struct aegis_dns_name tn = aegis_node_srv(n, i).target;
		const struct aegis_dns_node *t = aegis_table_find(ctx->table, tn.name, tn.len);
		if (t == NULL || t->kind != AEGIS_NODE_HOST)
			continue;
		size_t save_len = w->len;
		unsigned save_comp = w->n_comp;
		uint8_t save_counts[6];
		memcpy(save_counts, w->buf + 6, 6);
		bool ok = true;
		for (unsigned k = 0; ok && k < t->n_a; k++)
			ok = aegis_wire_rr_addr_owner(w, 2, tn.name, tn.len, AEGIS_TYPE_A, ctx->ttl,
			                              aegis_node_a(t) + 4 * k, 4);
		for (unsigned k = 0; ok && k < t->n_aaaa; k++)
			ok = aegis_wire_rr_addr_owner(w, 2, tn.name, tn.len, AEGIS_TYPE_AAAA, ctx->ttl,
			                              aegis_node_aaaa(t) + 16 * k, 16);
		if (!ok) {
			/* All of a target's addresses or none of them: a partial set would look complete. */
			w->len = save_len;
			w->n_comp = save_comp;
			memcpy(w->buf + 6, save_counts, 6);
			w->full = false;
			return;
		}
	}
}

/* Which record types a node answers itself; other types for table names go upstream (DNS_BEHAVIOUR:
 * "any other type ... forwarded upstream unchanged"). */
static bool node_answers(const struct aegis_dns_node *n, uint16_t qtype)
{
	switch (n->kind) {
	case AEGIS_NODE_HOST:
	case AEGIS_NODE_WILDCARD: return qtype == AEGIS_TYPE_A || qtype == AEGIS_TYPE_AAAA;
	case AEGIS_NODE_SRV:
		return qtype == AEGIS_TYPE_SRV || qtype == AEGIS_TYPE_A || qtype == AEGIS_TYPE_AAAA;
	case AEGIS_NODE_PTR:
		return qtype == AEGIS_TYPE_PTR || qtype == AEGIS_TYPE_A || qtype == AEGIS_TYPE_AAAA;
	case AEGIS_NODE_CNAME: return true;
	default: return false;
	}
}

enum aegis_answer_action aegis_answer(const struct aegis_answer_ctx *ctx, const uint8_t *pkt, size_t len,
                                      size_t max_size, uint8_t *out, size_t outcap, size_t *outlen,
                                      struct aegis_dns_query *q, struct aegis_answer_info *info)
{
	info->source = AEGIS_SRC_ERROR;
	info->rcode = AEGIS_RCODE_NOERROR;
	info->truncated = false;
	info->match = AEGIS_MATCH_NONE;
	*outlen = 0;

	enum aegis_wire_status st = aegis_wire_parse_query(pkt, len, q);
	if (st == AEGIS_WIRE_DROP) {
		info->source = AEGIS_SRC_DROPPED;
		return AEGIS_ANSWER_DROP;
	}
	size_t limit = max_size ? max_size : aegis_answer_udp_limit(q);
	if (limit > outcap)
		limit = outcap;
	if (st == AEGIS_WIRE_NOTQUERY) {
		info->source = AEGIS_SRC_UPSTREAM;
		return AEGIS_ANSWER_FORWARD;
	}
	if (st == AEGIS_WIRE_FORMERR) {
		info->rcode = AEGIS_RCODE_FORMERR;
		*outlen = aegis_answer_rcode(q, pkt, AEGIS_RCODE_FORMERR, out, limit);
		return *outlen ? AEGIS_ANSWER_SEND : AEGIS_ANSWER_DROP;
	}
	if (q->has_opt && q->edns_version > 0) {
		/* RFC 6891 6.1.3: BADVERS, with our highest version (0) in the OPT record. */
		info->rcode = AEGIS_RCODE_BADVERS;
		*outlen = aegis_answer_rcode(q, pkt, AEGIS_RCODE_BADVERS, out, limit);
		return AEGIS_ANSWER_SEND;
	}
	if (q->qclass != AEGIS_CLASS_IN) {
		info->source = AEGIS_SRC_UPSTREAM;
		return AEGIS_ANSWER_FORWARD;
	}

	struct aegis_match m;
	aegis_search_match(ctx->search, ctx->table, q->lname, q->qname_len, &m);
	info->match = m.kind;
	if (m.kind == AEGIS_MATCH_NONE) {
		if (ctx->table == NULL && !ctx->forward_unready &&
		    aegis_search_in_mesh_domain(ctx->search, q->lname, q->qname_len)) {
			info->rcode = AEGIS_RCODE_SERVFAIL;
			*outlen = aegis_answer_rcode(q, pkt, AEGIS_RCODE_SERVFAIL, out, limit);
			return AEGIS_ANSWER_SEND;
		}
		info->source = AEGIS_SRC_UPSTREAM;
		return AEGIS_ANSWER_FORWARD;
	}
	const struct aegis_dns_node *n = m.node;
	if (!node_answers(n, q->qtype)) {
		info->source = AEGIS_SRC_UPSTREAM;
		return AEGIS_ANSWER_FORWARD;
	}

	info->source = AEGIS_SRC_TABLE;
	uint8_t target[AEGIS_DNS_NAME_BUF];
	struct aegis_wire_writer w;
	aegis_wire_begin(&w, out, limit, q, pkt, AEGIS_DNS_AA | AEGIS_DNS_RA, AEGIS_RCODE_NOERROR);
	/* Reserve room for the OPT record so that it is never the thing that does not fit. */
	size_t opt_room = q->has_opt ? 11 : 0;
	if (w.cap < w.len + opt_room)
		goto truncate;
	w.cap -= opt_room;

	size_t owner = AEGIS_DNS_HEADER;
	if (m.kind == AEGIS_MATCH_ALIAS) {
		/* The target comes as labels without the root byte; the writer needs a full wire name that
		 * outlives every later write (compression entries point into it), hence function scope. */
		memcpy(target, m.target, m.target_len);
		target[m.target_len] = 0;
		if (!aegis_wire_rr_name(&w, 0, AEGIS_DNS_HEADER, AEGIS_TYPE_CNAME, ctx->ttl, target,
		                        m.target_len + 1, &owner))
			goto truncate;
	}
	if (n->kind == AEGIS_NODE_CNAME) {
		struct aegis_dns_name cn = aegis_node_cname(n);
		if (!aegis_wire_rr_name(&w, 0, owner, AEGIS_TYPE_CNAME, ctx->ttl, cn.name, cn.len, NULL))
			goto truncate;
	} else {
		put_records(&w, ctx, n, q->qtype, owner);
		if (w.full)
			goto truncate;
		if (q->qtype == AEGIS_TYPE_SRV && n->kind == AEGIS_NODE_SRV)
			put_srv_additionals(&w, ctx, n);
	}
	w.cap += opt_room;
	finish_opt(&w, q, 0);
	*outlen = w.len;
	return AEGIS_ANSWER_SEND;

truncate:
	w.cap = limit;
	aegis_wire_truncate(&w, q->question_end);
	finish_opt(&w, q, 0);
	info->truncated = true;
	*outlen = w.len;
	return AEGIS_ANSWER_SEND;
}
