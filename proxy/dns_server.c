/* DNS listener on libev: see dns_server.h. */
#include "dns_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "dns_policy.h" /* policy */
#include "query_log.h"  /* policy */
#include "upstream.h"

#define UDP_BUF     4096 /* a query larger than this is not a query we answer (MSG_TRUNC -> dropped) */
#define TCP_OUT_MAX (256u * 1024u) /* answers queued on one connection before we stop reading it */

struct udp_listener {
	ev_io io;
	int fd;
	struct aegis_dns_server *srv;
};

struct tcp_listener {
	ev_io io;
	int fd;
	struct aegis_dns_server *srv;
};

struct tcp_conn {
	ev_io rio;
	ev_io wio;
	ev_timer idle;
	int fd;
	struct aegis_dns_server *srv;
	struct tcp_conn *prev, *next;
	uint8_t *in; /* length-prefixed messages */
	size_t in_len, in_cap;
	uint8_t *out; /* answers waiting to be written */
	size_t out_len, out_off, out_cap;
	struct sockaddr_storage peer; /* policy: the client, for the ACL and the query log */
	uint64_t read_ns;             /* policy: start of the last read burst (query log latency) */
};

/* Where the answer to a forwarded query goes once the forwarder calls back. */
struct udp_pending {
	struct aegis_dns_server *srv;
	struct udp_pending *prev, *next;
	int fd;
	uint16_t qtype;
	socklen_t addr_len;
	struct sockaddr_storage addr;
	uint64_t t0; /* policy: when the query arrived (query log latency) */
};

/* The origin of the query being handled: the UDP socket and peer, or the TCP connection. */
struct origin {
	int udp_fd; /* -1 for TCP */
	const struct sockaddr_storage *addr;
	socklen_t addr_len;
	struct tcp_conn *conn; /* NULL for UDP */
};

/* --dns-workers: one more server on its own thread and loop (see dns_server.h). */
struct dns_worker {
	struct aegis_dns_server *srv;
	struct ev_loop *loop;
	ev_async stop;
	pthread_t thread;
	bool running;
};

struct aegis_dns_server {
	struct ev_loop *loop;
	struct aegis_dns_server_opts opts;
	const struct aegis_search *search;
	struct aegis_table *table;             /* loop thread only */
	_Atomic(struct aegis_table *) pending; /* handed over by any thread */
	ev_async swap;
	aegis_dns_swap_cb swap_cb;
	void *swap_user;
	uint32_t rotor;
	struct udp_listener udp[AEGIS_DNS_MAX_LISTEN];
	struct tcp_listener tcp[AEGIS_DNS_MAX_LISTEN];
	size_t n_udp, n_tcp;
	struct tcp_conn *conns;
	unsigned n_conns;
	struct aegis_dns_server_stats stats;
	struct aegis_upstream *upstream; /* NULL: names that are not ours get REFUSED */
	struct udp_pending *pending_udp; /* forwarded UDP queries waiting for their answer */
	/* policy: security controls and audit log (borrowed, NULL = off); batch_ns is the monotonic time
	 * of the current recvmmsg batch or TCP read burst, read once per batch, not per query. */
	struct aegis_policy *policy;
	struct aegis_qlog *qlog;
	uint64_t batch_ns;
	ev_timer accept_pause; /* fault: listeners resting after accept() ran out of descriptors */
	double accept_err_logged;
	/* One set of UDP batch buffers per loop: the hot path allocates nothing. */
	struct mmsghdr rx_msgs[AEGIS_DNS_UDP_BATCH];
	struct iovec rx_iov[AEGIS_DNS_UDP_BATCH];
	struct sockaddr_storage rx_addr[AEGIS_DNS_UDP_BATCH];
	struct mmsghdr tx_msgs[AEGIS_DNS_UDP_BATCH];
	struct iovec tx_iov[AEGIS_DNS_UDP_BATCH];
	uint8_t rx_buf[AEGIS_DNS_UDP_BATCH][UDP_BUF];
	uint8_t tx_buf[AEGIS_DNS_UDP_BATCH][AEGIS_DNS_EDNS_MAX];
	uint8_t tcp_answer[AEGIS_DNS_TCP_MAX + 2];
	/* workers: on the first server only (workers[0] is unused: the first server is worker 0) */
	struct dns_worker *workers;
	unsigned n_workers; /* 1 + the extra ones */
	struct aegis_dns_server_stats sum;
};

static socklen_t ss_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

const uint32_t aegis_dns_latency_bounds_ns[AEGIS_DNS_LATENCY_BUCKETS] = {
        250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 1000000};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Records n answers that took total_ns together, each at the batch average (see dns_server.h). */
static void observe(struct aegis_dns_server *srv, uint64_t total_ns, unsigned n)
{
	if (n == 0)
		return;
	uint64_t each = total_ns / n;
	unsigned b = 0;
	while (b < AEGIS_DNS_LATENCY_BUCKETS && each > aegis_dns_latency_bounds_ns[b])
		b++;
	srv->stats.answer_ns_buckets[b] += n;
	srv->stats.answer_ns_sum += total_ns;
}

static enum aegis_dns_qtype_bucket qtype_bucket(uint16_t qtype)
{
	switch (qtype) {
	case AEGIS_TYPE_A: return AEGIS_QT_A;
	case AEGIS_TYPE_AAAA: return AEGIS_QT_AAAA;
	case AEGIS_TYPE_SRV: return AEGIS_QT_SRV;
	case AEGIS_TYPE_PTR: return AEGIS_QT_PTR;
	default: return AEGIS_QT_OTHER;
	}
}

static enum aegis_dns_rcode_bucket rcode_bucket(unsigned rcode)
{
	return rcode <= 5    ? (enum aegis_dns_rcode_bucket)rcode
	       : rcode == 16 ? AEGIS_RC_BADVERS
	                     : AEGIS_RC_OTHER;
}

/* Counts one query once its fate is known. */
static void record(struct aegis_dns_server *srv, bool tcp, uint16_t qtype, enum aegis_dns_rcode_bucket rc,
                   enum aegis_answer_source source)
{
	srv->stats.requests[tcp][qtype_bucket(qtype)][rc][source]++;
}

/* A locally decided answer (table, error, dropped). Forwarded queries are counted when their answer comes
 * back, from the cache or from upstream. */
static void count(struct aegis_dns_server *srv, bool tcp, const struct aegis_dns_query *q,
                  const struct aegis_answer_info *info)
{
	if (info->source == AEGIS_SRC_UPSTREAM)
		return;
	record(srv, tcp, q->qtype,
	       info->source == AEGIS_SRC_DROPPED ? AEGIS_RC_NONE : rcode_bucket(info->rcode), info->source);
	if (info->truncated)
		srv->stats.truncated++;
}

static int conn_send_answer(struct tcp_conn *c, const uint8_t *answer, size_t len);

/* Counts a forwarded answer. qtype < 0: not known here (a TCP callback carries only the connection), so it
 * is read back from the answer's question section. */
static void count_forwarded(struct aegis_dns_server *srv, bool tcp, int qtype_known, const uint8_t *answer,
                            size_t len, bool cached)
{
	uint16_t qtype = qtype_known >= 0 ? (uint16_t)qtype_known : 0;
	size_t off = AEGIS_DNS_HEADER;
	if (qtype_known < 0 && len >= AEGIS_DNS_HEADER && aegis_wire_u16(answer + 4) == 1 &&
	    aegis_wire_skip_name(answer, len, &off) == 0 && off + 2 <= len)
		qtype = aegis_wire_u16(answer + off);
	record(srv, tcp, qtype, len >= AEGIS_DNS_HEADER ? rcode_bucket(answer[3] & 0xFu) : AEGIS_RC_OTHER,
	       cached ? AEGIS_SRC_CACHE : AEGIS_SRC_UPSTREAM);
}

static void udp_pending_unlink(struct udp_pending *p)
{
	struct aegis_dns_server *srv = p->srv;
	if (p->prev)
		p->prev->next = p->next;
	else
		srv->pending_udp = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

/* policy: one audit log line for an answer sent now (sampled; the clock is read only for sampled ones). */
static void qlog_answer(struct aegis_dns_server *srv, const struct sockaddr_storage *client,
                        const uint8_t *answer, size_t len, const char *source, uint64_t t0)
{
	if (srv->qlog == NULL || len == 0 || !aegis_qlog_sampled(srv->qlog))
		return;
	uint64_t now = mono_ns();
	aegis_qlog_record(srv->qlog, (const struct sockaddr *)client, answer, len, source,
	                  now > t0 ? (now - t0) / 1000 : 0);
}

static void udp_forward_cb(void *ctx, const uint8_t *answer, size_t len)
{
	struct udp_pending *p = ctx;
	count_forwarded(p->srv, false, p->qtype, answer, len, false);
	qlog_answer(p->srv, &p->addr, answer, len, "upstream", p->t0); /* policy */
	if (sendto(p->fd, answer, len, MSG_DONTWAIT, (const struct sockaddr *)&p->addr, p->addr_len) < 0)
		p->srv->stats.dropped++;
	udp_pending_unlink(p);
	free(p);
}

static void tcp_forward_cb(void *ctx, const uint8_t *answer, size_t len)
{
	struct tcp_conn *c = ctx;
	count_forwarded(c->srv, true, -1, answer, len, false);
	qlog_answer(c->srv, &c->peer, answer, len, "upstream", c->read_ns); /* policy */
	(void)conn_send_answer(c, answer, len);
}

/* A query the table does not answer: the cache first (synchronously, into out), else upstream with the
 * answer sent from the callback. Returns the length of an answer to send now, 0 when it comes later. */
static size_t forward(struct aegis_dns_server *srv, const uint8_t *pkt, size_t len,
                      const struct aegis_dns_query *q, const struct origin *org, uint8_t *out, size_t limit,
                      const char **src)
{
	bool tcp = org->conn != NULL;
	size_t outlen = 0;
	if (aegis_upstream_answer_cached(srv->upstream, pkt, len, tcp, out, limit, &outlen) == 0) {
		count_forwarded(srv, tcp, q->qtype, out, outlen, true);
		*src = "cache"; /* policy */
		return outlen;
	}
	struct udp_pending *p = NULL;
	void *ctx = org->conn;
	aegis_upstream_cb cb = tcp_forward_cb;
	if (!tcp) {
		p = malloc(sizeof(*p));
		if (p == NULL)
			goto servfail;
		*p = (struct udp_pending){.srv = srv,
		                          .fd = org->udp_fd,
		                          .qtype = q->qtype,
		                          .addr_len = org->addr_len,
		                          .t0 = srv->batch_ns};
		memcpy(&p->addr, org->addr, org->addr_len);
		ctx = p;
		cb = udp_forward_cb;
	}
	int rc = aegis_upstream_resolve(srv->upstream, pkt, len, org->addr,
	                                (tcp ? AEGIS_UPSTREAM_F_TCP : 0u) | AEGIS_UPSTREAM_F_NO_CACHE, cb,
	                                ctx, NULL);
	if (rc == 0) {
		if (p != NULL) {
			p->next = srv->pending_udp;
			if (srv->pending_udp)
				srv->pending_udp->prev = p;
			srv->pending_udp = p;
		}
		return 0;
	}
	free(p);
	if (rc == AEGIS_EPARSE) {
		record(srv, tcp, q->qtype, AEGIS_RC_FORMERR, AEGIS_SRC_ERROR);
		return aegis_answer_rcode(q, pkt, AEGIS_RCODE_FORMERR, out, limit);
	}
servfail:
	/* Overloaded (max_concurrent) or out of memory: SERVFAIL, never a made-up NXDOMAIN. */
	srv->stats.forward_overload++;
	record(srv, tcp, q->qtype, AEGIS_RC_SERVFAIL, AEGIS_SRC_ERROR);
	return aegis_answer_rcode(q, pkt, AEGIS_RCODE_SERVFAIL, out, limit);
}

/* policy: the answer to a query the source checks stopped: REFUSED for a source outside the ACL, an
 * empty TC=1 answer for a rate-limited query that slips (a real client retries over TCP, which a spoofed
 * source cannot complete, so the amplification is gone but real clients still resolve), else nothing. */
static size_t policy_answer(struct aegis_dns_server *srv, enum aegis_policy_action pa, const uint8_t *pkt,
                            size_t len, size_t max_size, uint8_t *out, size_t outcap)
{
	struct aegis_dns_query q;
	if (pa == AEGIS_POLICY_DROP || aegis_wire_parse_query(pkt, len, &q) == AEGIS_WIRE_DROP) {
		srv->stats.dropped++;
		return 0;
	}
	size_t limit = max_size ? max_size : aegis_answer_udp_limit(&q);
	if (limit > outcap)
		limit = outcap;
	uint8_t rcode = pa == AEGIS_POLICY_REFUSE ? AEGIS_RCODE_REFUSED : AEGIS_RCODE_NOERROR;
	size_t n = aegis_answer_rcode(&q, pkt, rcode, out, limit);
	if (n == 0) {
		srv->stats.dropped++;
		return 0;
	}
	if (pa == AEGIS_POLICY_SLIP) {
		out[2] |= (uint8_t)(AEGIS_DNS_TC >> 8);
		srv->stats.truncated++;
	} else if (pa == AEGIS_POLICY_REFUSE) {
		n = aegis_wire_add_ede(out, n, limit, AEGIS_EDE_PROHIBITED);
	}
	record(srv, max_size != 0, q.qtype, rcode_bucket(rcode), AEGIS_SRC_ERROR); /* max_size: TCP */
	return n;
}

/* Answers one query into out; returns the answer length (0 = send nothing now). *src names where the
 * answer came from, for the query log. */
static size_t answer_query(struct aegis_dns_server *srv, const uint8_t *pkt, size_t len, size_t max_size,
                           const struct origin *org, uint8_t *out, size_t outcap, const char **src)
{
	/* policy: the source checks first, so a refused or rate-limited client costs no answer work: one
	 * ACL walk over a few prefixes and, for UDP, one token-bucket update. */
	if (srv->policy != NULL) {
		enum aegis_policy_action pa = aegis_policy_check_source(
		        srv->policy, (const struct sockaddr *)org->addr, org->conn != NULL, srv->batch_ns);
		if (pa != AEGIS_POLICY_PASS) {
			*src = "policy";
			return policy_answer(srv, pa, pkt, len, max_size, out, outcap);
		}
	}
	struct aegis_answer_ctx ctx = {
	        .table = srv->table,
	        .search = srv->search,
	        .ttl = srv->opts.ttl,
	        .rotor = srv->rotor++,
	        .forward_unready = srv->opts.forward_unready,
	};
	struct aegis_dns_query q;
	struct aegis_answer_info info;
	size_t outlen = 0;
	enum aegis_answer_action act =
	        aegis_answer(&ctx, pkt, len, max_size, out, outcap, &outlen, &q, &info);
	size_t limit = max_size ? max_size : aegis_answer_udp_limit(&q);
	if (limit > outcap)
		limit = outcap;
	/* policy: the blocklist, on the name aegis_answer() already lower-cased; it covers table names too.
	 * One hash probe per label, no allocation; the (rare) blocked answer replaces the one written. */
	if (srv->policy != NULL && act != AEGIS_ANSWER_DROP && q.question_ok) {
		uint8_t rc = aegis_policy_check_name(srv->policy, q.lname, q.qname_len);
		if (rc != 0) {
			*src = "policy";
			record(srv, org->conn != NULL, q.qtype, rcode_bucket(rc), AEGIS_SRC_ERROR);
			return aegis_wire_add_ede(out, aegis_answer_rcode(&q, pkt, rc, out, limit), limit,
			                          AEGIS_EDE_BLOCKED);
		}
	}
	count(srv, org->conn != NULL, &q, &info);
	*src = info.source == AEGIS_SRC_TABLE ? "table" : "error";
	switch (act) {
	case AEGIS_ANSWER_SEND: return outlen;
	case AEGIS_ANSWER_DROP: srv->stats.dropped++; return 0;
	case AEGIS_ANSWER_FORWARD: break;
	}
	if (srv->upstream == NULL) {
		/* No forwarder configured: REFUSED tells the client to try its next server, where an
		 * NXDOMAIN would be cached as a false negative. */
		srv->stats.forward_refused++;
		record(srv, org->conn != NULL, q.qtype, AEGIS_RC_REFUSED, AEGIS_SRC_ERROR);
		return aegis_answer_rcode(&q, pkt, AEGIS_RCODE_REFUSED, out, limit);
	}
	return forward(srv, pkt, len, &q, org, out, limit, src);
}

/* Answers one query into out; returns the answer length (0 = send nothing now). */
static size_t handle_query(struct aegis_dns_server *srv, const uint8_t *pkt, size_t len, size_t max_size,
                           const struct origin *org, uint8_t *out, size_t outcap)
{
	const char *src = "error";
	size_t n = answer_query(srv, pkt, len, max_size, org, out, outcap, &src);
	/* policy: the audit log sees answers sent now; forwarded ones are logged when they come back. */
	qlog_answer(srv, org->addr, out, n, src, srv->batch_ns);
	return n;
}

/* ---- UDP ---- */

static void udp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct udp_listener *l = container_of(w, struct udp_listener, io);
	struct aegis_dns_server *srv = l->srv;
	/* Bounded work per wake-up so TCP clients and table swaps are served under a UDP flood. */
	for (int round = 0; round < 8; round++) {
		for (unsigned i = 0; i < AEGIS_DNS_UDP_BATCH; i++) {
			srv->rx_iov[i].iov_base = srv->rx_buf[i];
			srv->rx_iov[i].iov_len = UDP_BUF;
			memset(&srv->rx_msgs[i].msg_hdr, 0, sizeof(srv->rx_msgs[i].msg_hdr));
			srv->rx_msgs[i].msg_hdr.msg_name = &srv->rx_addr[i];
			srv->rx_msgs[i].msg_hdr.msg_namelen = sizeof(srv->rx_addr[i]);
			srv->rx_msgs[i].msg_hdr.msg_iov = &srv->rx_iov[i];
			srv->rx_msgs[i].msg_hdr.msg_iovlen = 1;
		}
		int n = recvmmsg(l->fd, srv->rx_msgs, AEGIS_DNS_UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		unsigned nt = 0, answered = 0;
		uint64_t t0 = mono_ns();
		srv->batch_ns = t0; /* policy */
		for (int i = 0; i < n; i++) {
			srv->stats.queries_udp++;
			if (srv->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				srv->stats.dropped++;
				continue;
			}
			answered++;
			struct origin org = {.udp_fd = l->fd,
			                     .addr = &srv->rx_addr[i],
			                     .addr_len = srv->rx_msgs[i].msg_hdr.msg_namelen};
			size_t alen = handle_query(srv, srv->rx_buf[i], srv->rx_msgs[i].msg_len, 0, &org,
			                           srv->tx_buf[nt], AEGIS_DNS_EDNS_MAX);
			if (alen == 0)
				continue;
			srv->tx_iov[nt].iov_base = srv->tx_buf[nt];
			srv->tx_iov[nt].iov_len = alen;
			memset(&srv->tx_msgs[nt].msg_hdr, 0, sizeof(srv->tx_msgs[nt].msg_hdr));
			srv->tx_msgs[nt].msg_hdr.msg_name = &srv->rx_addr[i];
			srv->tx_msgs[nt].msg_hdr.msg_namelen = srv->rx_msgs[i].msg_hdr.msg_namelen;
			srv->tx_msgs[nt].msg_hdr.msg_iov = &srv->tx_iov[nt];
			srv->tx_msgs[nt].msg_hdr.msg_iovlen = 1;
			nt++;
		}
		observe(srv, mono_ns() - t0, answered);
		unsigned sent = 0;
		while (sent < nt) {
			int m = sendmmsg(l->fd, srv->tx_msgs + sent, nt - sent, MSG_DONTWAIT);
			if (m <= 0) {
				/* A full socket buffer drops the rest of the batch, as a busy network would:
				 * clients retry. */
				srv->stats.dropped += nt - sent;
				break;
			}
			sent += (unsigned)m;
		}
		if (n < AEGIS_DNS_UDP_BATCH)
			return;
	}
	(void)loop;
	(void)revents;
}

/* ---- TCP ---- */

static void conn_close(struct tcp_conn *c)
{
	struct aegis_dns_server *srv = c->srv;
	/* Answers still being resolved for this connection have nowhere to go. */
	if (srv->upstream)
		(void)aegis_upstream_cancel_ctx(srv->upstream, c);
	ev_io_stop(srv->loop, &c->rio);
	ev_io_stop(srv->loop, &c->wio);
	ev_timer_stop(srv->loop, &c->idle);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	free(c->in);
	free(c->out);
	free(c);
	/* Under the cap again: resume accepting. */
	if (srv->n_conns + 1 ==
	    (srv->opts.tcp_max_conns ? srv->opts.tcp_max_conns : AEGIS_DNS_TCP_MAX_CONNS)) {
		for (size_t i = 0; i < srv->n_tcp; i++)
			ev_io_start(srv->loop, &srv->tcp[i].io);
	}
}

static int out_append(struct tcp_conn *c, const uint8_t *p, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + n)
			cap *= 2;
		if (cap > TCP_OUT_MAX + AEGIS_DNS_TCP_MAX + 2)
			return -1;
		uint8_t *nb = realloc(c->out, cap);
		if (nb == NULL)
			return -1;
		c->out = nb;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

/* Writes what is queued. Returns -1 when the connection was closed. */
static int conn_flush(struct tcp_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->srv->loop, &c->wio);
				return 0;
			}
			if (errno == EINTR)
				continue;
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	ev_io_stop(c->srv->loop, &c->wio);
	if (!ev_is_active(&c->rio))
		ev_io_start(c->srv->loop, &c->rio);
	return 0;
}

/* Queues one answer (from the forwarder's callback) and writes what the socket takes. */
static int conn_send_answer(struct tcp_conn *c, const uint8_t *answer, size_t len)
{
	uint8_t prefix[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	if (out_append(c, prefix, 2) != 0 || out_append(c, answer, len) != 0) {
		conn_close(c);
		return -1;
	}
	return conn_flush(c);
}

/* Answers every complete message in the input buffer. Returns -1 when the connection was closed. */
static int conn_process(struct tcp_conn *c)
{
	struct aegis_dns_server *srv = c->srv;
	size_t off = 0;
	unsigned answered = 0;
	uint64_t t0 = mono_ns();
	srv->batch_ns = c->read_ns = t0; /* policy */
	while (c->in_len - off >= 2) {
		size_t mlen = aegis_wire_u16(c->in + off);
		if (c->in_len - off < 2 + mlen)
			break;
		srv->stats.queries_tcp++;
		answered++;
		struct origin org = {.udp_fd = -1, .addr = &c->peer, .conn = c};
		size_t alen = handle_query(srv, c->in + off + 2, mlen, AEGIS_DNS_TCP_MAX, &org,
		                           srv->tcp_answer + 2, AEGIS_DNS_TCP_MAX);
		off += 2 + mlen;
		if (alen == 0)
			continue;
		srv->tcp_answer[0] = (uint8_t)(alen >> 8);
		srv->tcp_answer[1] = (uint8_t)alen;
		if (out_append(c, srv->tcp_answer, alen + 2) != 0) {
			conn_close(c);
			return -1;
		}
	}
	observe(srv, mono_ns() - t0, answered);
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	return 0;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = container_of(w, struct tcp_conn, rio);
	for (int burst = 0; burst < AEGIS_DNS_TCP_MAX_PIPELINE; burst++) {
		if (c->in_len == c->in_cap) {
			/* Grow up to one maximum-size message plus its length prefix. */
			size_t cap = c->in_cap ? c->in_cap * 2 : 1024;
			if (cap > AEGIS_DNS_TCP_MAX + 2)
				cap = AEGIS_DNS_TCP_MAX + 2;
			if (cap == c->in_cap) {
				conn_close(c);
				return;
			}
			uint8_t *nb = realloc(c->in, cap);
			if (nb == NULL) {
				conn_close(c);
				return;
			}
			c->in = nb;
			c->in_cap = cap;
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (r == 0) {
			conn_close(c);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_close(c);
				return;
			}
			break;
		}
		c->in_len += (size_t)r;
		ev_timer_again(loop, &c->idle);
		if (conn_process(c) != 0)
			return;
		if (c->in_len < c->in_cap)
			break; /* short read: the socket is drained */
	}
	if (c->out_len > c->out_off) {
		if (conn_flush(c) != 0)
			return;
		/* A client that does not read its answers is not given more work. */
		if (c->out_len - c->out_off > TCP_OUT_MAX)
			ev_io_stop(loop, &c->rio);
	}
	(void)revents;
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_conn *c = container_of(w, struct tcp_conn, wio);
	(void)conn_flush(c);
	(void)loop;
	(void)revents;
}

static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tcp_conn *c = container_of(w, struct tcp_conn, idle);
	c->srv->stats.tcp_closed_idle++;
	conn_close(c);
	(void)loop;
	(void)revents;
}

/* fault: accept() is out of descriptors (or kernel memory). The connection stays in the backlog and keeps
 * the listener readable, so watching it would spin the loop at 100% CPU; the listeners rest for 100 ms
 * instead, while UDP (which needs no new descriptor) and open connections are served. Reported by a log
 * line at most every 5 s and the tcp_accept_errors counter. */
static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aegis_dns_server *srv = container_of(w, struct aegis_dns_server, accept_pause);
	unsigned max = srv->opts.tcp_max_conns ? srv->opts.tcp_max_conns : AEGIS_DNS_TCP_MAX_CONNS;
	if (srv->n_conns < max)
		for (size_t k = 0; k < srv->n_tcp; k++)
			ev_io_start(loop, &srv->tcp[k].io);
	(void)revents;
}

static void accept_exhausted(struct aegis_dns_server *srv)
{
	int e = errno;
	srv->stats.tcp_accept_errors++;
	if (ev_now(srv->loop) - srv->accept_err_logged >= 5.0) {
		srv->accept_err_logged = ev_now(srv->loop);
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot accept DNS TCP connection; pausing TCP accepts",
		          LKV_S("error", strerror(e)), LKV_I("open_connections", srv->n_conns),
		          LKV_I("accept_errors", srv->stats.tcp_accept_errors));
	}
	for (size_t k = 0; k < srv->n_tcp; k++)
		ev_io_stop(srv->loop, &srv->tcp[k].io);
	ev_timer_stop(srv->loop, &srv->accept_pause);
	ev_timer_set(&srv->accept_pause, 0.1, 0.0);
	ev_timer_start(srv->loop, &srv->accept_pause);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tcp_listener *l = container_of(w, struct tcp_listener, io);
	struct aegis_dns_server *srv = l->srv;
	unsigned max = srv->opts.tcp_max_conns ? srv->opts.tcp_max_conns : AEGIS_DNS_TCP_MAX_CONNS;
	for (int i = 0; i < 16; i++) {
		if (srv->n_conns >= max) {
			/* Leave further connections in the kernel's backlog until one closes. */
			srv->stats.tcp_rejected++;
			for (size_t k = 0; k < srv->n_tcp; k++)
				ev_io_stop(loop, &srv->tcp[k].io);
			return;
		}
		struct sockaddr_storage peer;
		socklen_t peer_len = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				accept_exhausted(srv);
			return;
		}
		struct tcp_conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			return;
		}
		c->peer = peer; /* policy */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->srv = srv;
		ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
		double idle =
		        (srv->opts.tcp_idle_ms ? srv->opts.tcp_idle_ms : AEGIS_DNS_TCP_IDLE_MS) / 1000.0;
		ev_init(&c->idle, conn_idle_cb);
		c->idle.repeat = idle;
		ev_timer_again(loop, &c->idle);
		ev_io_start(loop, &c->rio);
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->n_conns++;
		srv->stats.tcp_accepted++;
	}
	(void)revents;
}

/* ---- table swap ---- */

static void swap_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct aegis_dns_server *srv = container_of(w, struct aegis_dns_server, swap);
	struct aegis_table *t = atomic_exchange(&srv->pending, NULL);
	if (t == NULL)
		return;
	struct aegis_table *old = srv->table;
	srv->table = t;
	srv->stats.table_swaps++;
	/* Answers are written synchronously, so no query holds the old table past this point. */
	aegis_table_unref(old);
	if (srv->swap_cb)
		srv->swap_cb(srv->swap_user, t);
	(void)loop;
	(void)revents;
}

void aegis_dns_server_post_table(struct aegis_dns_server *srv, struct aegis_table *t)
{
	/* Every worker gets its own reference and swaps on its own loop; none waits for another. */
	for (unsigned i = 1; i < srv->n_workers; i++) {
		aegis_table_ref(t);
		aegis_dns_server_post_table(srv->workers[i].srv, t);
	}
	struct aegis_table *prev = atomic_exchange(&srv->pending, t);
	aegis_table_unref(prev); /* superseded before the loop saw it */
	ev_async_send(srv->loop, &srv->swap);
}

const struct aegis_table *aegis_dns_server_table(const struct aegis_dns_server *srv)
{
	return srv->table;
}

_Static_assert(sizeof(struct aegis_dns_server_stats) % sizeof(uint64_t) == 0,
               "the stats are summed as an array of uint64_t");

const struct aegis_dns_server_stats *aegis_dns_server_stats(const struct aegis_dns_server *srv)
{
	if (srv->n_workers <= 1)
		return &srv->stats;
	/* The workers' counters are read while their threads write them: each is one aligned 64-bit word,
	 * so a read sees an old or a new value, never a torn one (the header's "slightly stale"). */
	struct aegis_dns_server *w = (struct aegis_dns_server *)srv;
	const size_t n = sizeof(w->sum) / sizeof(uint64_t);
	uint64_t *sum = (uint64_t *)(void *)&w->sum;
	memcpy(sum, &srv->stats, sizeof(w->sum));
	for (unsigned k = 1; k < srv->n_workers; k++) {
		const volatile uint64_t *ws =
		        (const volatile uint64_t *)(const void *)&srv->workers[k].srv->stats;
		for (size_t i = 0; i < n; i++)
			sum[i] += ws[i];
	}
	w->sum.table_swaps = srv->stats.table_swaps; /* a swap is one event, whatever the worker count */
	return &w->sum;
}

/* ---- workers ---- */

static void worker_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
	(void)w;
	(void)revents;
}

static void *worker_main(void *arg)
{
	struct dns_worker *w = arg;
	ev_run(w->loop, 0);
	return NULL;
}

int aegis_dns_server_add_workers(struct aegis_dns_server *srv, unsigned n)
{
	if (n <= 1)
		return 0;
	if (srv->n_workers > 1 || n > AEGIS_DNS_MAX_WORKERS || !srv->opts.reuseport)
		return AEGIS_EINVAL;
	srv->workers = calloc(n, sizeof(*srv->workers));
	if (srv->workers == NULL)
		return AEGIS_ENOMEM;
	srv->n_workers = 1;
	for (unsigned i = 1; i < n; i++) {
		struct dns_worker *w = &srv->workers[i];
		w->loop = ev_loop_new(EVFLAG_AUTO);
		if (w->loop == NULL)
			return AEGIS_ENOMEM;
		int rc = aegis_dns_server_new(w->loop, &srv->opts, srv->search, &w->srv);
		if (rc != 0) {
			ev_loop_destroy(w->loop);
			w->loop = NULL;
			return rc;
		}
		ev_async_init(&w->stop, worker_stop_cb);
		ev_async_start(w->loop, &w->stop);
		/* Keep the table the first server has (if any), so a worker never starts empty-handed. */
		if (srv->table != NULL) {
			aegis_table_ref(srv->table);
			aegis_dns_server_post_table(w->srv, srv->table);
		}
		srv->n_workers = i + 1;
	}
	return 0;
}

int aegis_dns_server_run_workers(struct aegis_dns_server *srv)
{
	/* Workers take no signals: the first loop's ev_signal watchers handle them all. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = 0;
	for (unsigned i = 1; i < srv->n_workers && rc == 0; i++) {
		struct dns_worker *w = &srv->workers[i];
		if (w->running)
			continue;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			rc = AEGIS_ESYS;
		else
			w->running = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

unsigned aegis_dns_server_n_workers(const struct aegis_dns_server *srv)
{
	return srv->n_workers > 1 ? srv->n_workers : 1;
}

struct aegis_dns_server *aegis_dns_server_worker(struct aegis_dns_server *srv, unsigned i)
{
	if (i == 0)
		return srv;
	return i < srv->n_workers ? srv->workers[i].srv : NULL;
}

struct ev_loop *aegis_dns_server_loop(const struct aegis_dns_server *srv)
{
	return srv->loop;
}

const struct aegis_dns_server_stats *aegis_dns_server_worker_stats(const struct aegis_dns_server *srv,
                                                                   unsigned i)
{
	if (i == 0)
		return &srv->stats;
	return i < srv->n_workers ? &srv->workers[i].srv->stats : NULL;
}

/* Stops and joins every worker thread, then frees the workers' servers and loops. */
static void workers_free(struct aegis_dns_server *srv)
{
	for (unsigned i = 1; i < srv->n_workers; i++) {
		struct dns_worker *w = &srv->workers[i];
		if (w->running) {
			ev_async_send(w->loop, &w->stop);
			pthread_join(w->thread, NULL);
			w->running = false;
		}
		ev_async_stop(w->loop, &w->stop);
		aegis_dns_server_free(w->srv);
		ev_loop_destroy(w->loop);
	}
	free(srv->workers);
	srv->workers = NULL;
	srv->n_workers = 0;
}

void aegis_dns_server_on_swap(struct aegis_dns_server *srv, aegis_dns_swap_cb cb, void *user)
{
	srv->swap_cb = cb;
	srv->swap_user = user;
}

/* ---- setup ---- */

static int open_socket(const struct aegis_dns_server_opts *opts, const struct sockaddr_storage *ss, int type)
{
	char name[64];
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (opts->reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		/* Room for a burst of queries while the loop is busy elsewhere. */
		int rcv = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	if (bind(fd, (const struct sockaddr *)ss, ss_len(ss)) != 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 256) != 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	AEGIS_LOG(AEGIS_LOG_ERROR, "cannot listen", LKV_S("addr", aegis_sockaddr_str(ss, name, sizeof(name))),
	          LKV_S("proto", type == SOCK_DGRAM ? "udp" : "tcp"), LKV_S("error", strerror(e)));
	if (fd >= 0)
		close(fd);
	errno = e;
	return -1;
}

int aegis_dns_server_new(struct ev_loop *loop, const struct aegis_dns_server_opts *opts,
                         const struct aegis_search *search, struct aegis_dns_server **out)
{
	if (opts->n_listen == 0 || opts->n_listen > AEGIS_DNS_MAX_LISTEN)
		return AEGIS_EINVAL;
	struct aegis_dns_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return AEGIS_ENOMEM;
	srv->loop = loop;
	srv->opts = *opts;
	if (srv->opts.ttl == 0)
		srv->opts.ttl = 30;
	srv->search = search;
	atomic_init(&srv->pending, NULL);
	ev_init(&srv->accept_pause, accept_resume_cb);
	srv->accept_err_logged = -1e9;
	ev_async_init(&srv->swap, swap_cb);
	ev_async_start(loop, &srv->swap);
	for (size_t i = 0; i < opts->n_listen; i++) {
		int ufd = open_socket(opts, &opts->listen[i], SOCK_DGRAM);
		if (ufd < 0)
			goto fail;
		srv->udp[srv->n_udp] = (struct udp_listener){.fd = ufd, .srv = srv};
		ev_io_init(&srv->udp[srv->n_udp].io, udp_cb, ufd, EV_READ);
		ev_io_start(loop, &srv->udp[srv->n_udp].io);
		srv->n_udp++;
		int tfd = open_socket(opts, &opts->listen[i], SOCK_STREAM);
		if (tfd < 0)
			goto fail;
		srv->tcp[srv->n_tcp] = (struct tcp_listener){.fd = tfd, .srv = srv};
		ev_io_init(&srv->tcp[srv->n_tcp].io, accept_cb, tfd, EV_READ);
		ev_io_start(loop, &srv->tcp[srv->n_tcp].io);
		srv->n_tcp++;
	}
	*out = srv;
	return 0;
fail:
	aegis_dns_server_free(srv);
	return AEGIS_ESYS;
}

void aegis_dns_server_set_upstream(struct aegis_dns_server *srv, struct aegis_upstream *up)
{
	srv->upstream = up;
}

void aegis_dns_server_set_policy(struct aegis_dns_server *srv, struct aegis_policy *policy,
                                 struct aegis_qlog *qlog)
{
	srv->policy = policy;
	srv->qlog = qlog;
}

void aegis_dns_server_free(struct aegis_dns_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->workers != NULL)
		workers_free(srv);
	while (srv->conns)
		conn_close(srv->conns);
	while (srv->pending_udp) {
		struct udp_pending *p = srv->pending_udp;
		(void)aegis_upstream_cancel_ctx(srv->upstream, p);
		udp_pending_unlink(p);
		free(p);
	}
	for (size_t i = 0; i < srv->n_udp; i++) {
		ev_io_stop(srv->loop, &srv->udp[i].io);
		close(srv->udp[i].fd);
	}
	for (size_t i = 0; i < srv->n_tcp; i++) {
		ev_io_stop(srv->loop, &srv->tcp[i].io);
		close(srv->tcp[i].fd);
	}
	ev_async_stop(srv->loop, &srv->swap);
	ev_timer_stop(srv->loop, &srv->accept_pause);
	aegis_table_unref(atomic_exchange(&srv->pending, NULL));
	aegis_table_unref(srv->table);
	free(srv);
}
