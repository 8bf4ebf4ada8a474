/* The forwarder's transport (upstream_int.h): an attempt is one upstream query of a transaction on its
 * own connected socket with its own random ID, over UDP or over TCP (one query per connection, with the
 * two-byte length framing). An answer is accepted only when source, ID, opcode and question match; the
 * outcome (answer, truncation, REFUSED/SERVFAIL, error) goes to the server's health and the transaction. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream_int.h"

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
bool aegis_upstream_attempt_matches(uint16_t id, uint8_t opcode, const struct aegis_dns_question_key *key,
                                    const struct sockaddr_storage *expect, const struct sockaddr *from,
                                    socklen_t fromlen, const uint8_t *m, size_t len)
{
	if (len < HDR || !(m[2] & 0x80) || rd16(m) != id || ((m[2] >> 3) & 0x0F) != opcode)
		return false;
	if (from != NULL && !same_addr(expect, from, fromlen))
		return false;
	return question_matches(m, len, key);
}

unsigned aegis_upstream_attempt_active(const struct txn *t)
{
	unsigned n = 0;
	for (int i = 0; i < MAX_ATTEMPTS; i++)
		if (t->att[i].fd >= 0 && !t->att[i].timed_out)
			n++;
	return n;
}

void aegis_upstream_attempt_close(struct attempt *a)
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

/* A network error on an attempt (refused port, reset, send failure). */
static void attempt_error(struct attempt *a)
{
	struct txn *t = a->txn;
	struct aegis_upstream *up = t->up;
	struct server *sv = &up->srv[a->srv];
	sv->errors++;
	aegis_upstream_attempt_close(a);
	aegis_upstream_server_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	if (aegis_upstream_attempt_active(t) == 0)
		aegis_upstream_txn_advance(t);
}

/* A matching answer arrived on attempt a. */
static void attempt_answer(struct attempt *a, const uint8_t *msg, size_t len)
{
	struct txn *t = a->txn;
	struct aegis_upstream *up = t->up;
	struct server *sv = &up->srv[a->srv];
	sv->answered++;
	aegis_upstream_server_rtt(sv, ev_now(up->loop) - a->sent_at);
	aegis_upstream_server_ok(sv);
	a->probe = false;
	uint8_t rcode = msg[3] & 0x0F;
	if ((msg[2] & 0x02) && !a->tcp && t->want_tcp && up->o.tcp_fallback) {
		unsigned s = a->srv;
		aegis_upstream_attempt_close(a);
		up->st.tcp_retries++;
		if (aegis_upstream_attempt_start(t, s, true, false) == 0)
			aegis_upstream_txn_arm_timer(t);
		else if (aegis_upstream_attempt_active(t) == 0)
			aegis_upstream_txn_advance(t);
		return;
	}
	if (rcode == RCODE_REFUSED || rcode == RCODE_SERVFAIL) {
		/* The server is alive but will not answer this: try the others; SERVFAIL if none will. */
		if (rcode == RCODE_REFUSED)
			sv->refused++;
		t->rcode_failed[a->srv - up->groups[t->group].first] = 1;
		aegis_upstream_attempt_close(a);
		if (aegis_upstream_attempt_active(t) == 0)
			aegis_upstream_txn_advance(t);
		return;
	}
	aegis_upstream_txn_answer(t, msg, len);
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
		if (!aegis_upstream_attempt_matches(a->id, (t->query[2] >> 3) & 0x0F, &t->key,
		                                    &up->srv[a->srv].addr, (const struct sockaddr *)&from,
		                                    flen, up->rbuf, (size_t)n)) {
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
			if (!aegis_upstream_attempt_matches(a->id, (t->query[2] >> 3) & 0x0F, &t->key,
			                                    &up->srv[a->srv].addr, NULL, 0, a->rbuf,
			                                    a->rneed)) {
				/* one answer per connection: a wrong one ends this attempt */
				up->st.dropped++;
				attempt_error(a);
				return;
			}
			/* the buffer is freed with the attempt; aegis_upstream_txn_answer copies before that
			 */
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
	aegis_upstream_attempt_close(oldest);
	return oldest;
}

/* Opens a socket to server s and sends the query (UDP) or starts connecting (TCP). Returns 0 or a
 * negative aegis_err after counting the failure against the server. */
int aegis_upstream_attempt_start(struct txn *t, unsigned s, bool tcp, bool probe)
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
	struct sockaddr_storage me;
	socklen_t melen = sizeof(me);
	a->lport = getsockname(a->fd, (struct sockaddr *)&me, &melen) == 0 ? aegis_upstream_sa_port(&me) : 0;
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
	aegis_upstream_server_fail(sv, now_ms(up), up->o.fail_threshold, up->o.backoff_ms);
	return AEGIS_ESYS;
}
