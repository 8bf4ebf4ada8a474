/* The audit query log: see query_log.h. */
#include "query_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "dns_name.h"
#include "metrics.h"
#include "dns_wire.h"

#define LINE_MAX_BYTES 1400 /* the longest line: a 255-byte name escaped as \DDD is ~1000 bytes */

struct aegis_qlog {
	struct ev_loop *loop;
	ev_timer timer;
	int fd;
	uint32_t threshold; /* sampled when the PRNG's output is below it */
	bool all;           /* sample == 1 */
	uint32_t rng;
	char *buf;
	size_t len, cap;
	struct aegis_qlog_stats st;
};

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aegis_qlog *q = w->data;
	(void)aegis_qlog_flush(q);
	(void)loop;
	(void)revents;
}

int aegis_qlog_open(const char *path)
{
	if (strcmp(path, "-") == 0)
		return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int aegis_qlog_new(struct ev_loop *loop, const struct aegis_qlog_opts *o, struct aegis_qlog **out)
{
	if (o->fd < 0 || !(o->sample >= 0.0 && o->sample <= 1.0))
		return AEGIS_EINVAL;
	struct aegis_qlog *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return AEGIS_ENOMEM;
	q->cap = o->buf_max ? o->buf_max : AEGIS_QLOG_DEFAULT_BUF;
	if (q->cap < 2 * LINE_MAX_BYTES)
		q->cap = 2 * LINE_MAX_BYTES;
	q->buf = malloc(q->cap);
	if (q->buf == NULL) {
		free(q);
		return AEGIS_ENOMEM;
	}
	q->fd = o->fd;
	q->all = o->sample >= 1.0;
	q->threshold = (uint32_t)(o->sample * 4294967295.0);
	if (getrandom(&q->rng, sizeof(q->rng), GRND_NONBLOCK) != (ssize_t)sizeof(q->rng) || q->rng == 0)
		q->rng = 0x9E3779B9u;
	/* A pipe reader that stops reading must cost us lines, not the loop: writes never block. On a
	 * regular file O_NONBLOCK has no effect and a write lands in the page cache. */
	int fl = fcntl(q->fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(q->fd, F_SETFL, fl | O_NONBLOCK);
	q->loop = loop;
	if (loop != NULL) {
		double every = (o->flush_ms ? o->flush_ms : 100) / 1000.0;
		ev_timer_init(&q->timer, timer_cb, every, every);
		q->timer.data = q;
		ev_timer_start(loop, &q->timer);
		ev_unref(loop); /* the log alone does not keep the loop running */
	}
	*out = q;
	return 0;
}

void aegis_qlog_free(struct aegis_qlog *q)
{
	if (q == NULL)
		return;
	(void)aegis_qlog_flush(q);
	if (q->loop != NULL) {
		ev_ref(q->loop);
		ev_timer_stop(q->loop, &q->timer);
	}
	close(q->fd);
	free(q->buf);
	free(q);
}

bool aegis_qlog_sampled(struct aegis_qlog *q)
{
	if (q->all)
		return true;
	/* xorshift32: statistical quality is plenty for sampling, and it costs three shifts. */
	uint32_t x = q->rng;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	q->rng = x;
	return x < q->threshold;
}

static const char *type_name(uint16_t t, char *buf, size_t len)
{
	switch (t) {
	case AEGIS_TYPE_A: return "A";
	case AEGIS_TYPE_NS: return "NS";
	case AEGIS_TYPE_CNAME: return "CNAME";
	case AEGIS_TYPE_SOA: return "SOA";
	case AEGIS_TYPE_PTR: return "PTR";
	case AEGIS_TYPE_MX: return "MX";
	case AEGIS_TYPE_TXT: return "TXT";
	case AEGIS_TYPE_AAAA: return "AAAA";
	case AEGIS_TYPE_SRV: return "SRV";
	case AEGIS_TYPE_ANY: return "ANY";
	default: snprintf(buf, len, "TYPE%u", t); return buf;
	}
}

static const char *rcode_name(unsigned rc, char *buf, size_t len)
{
	static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
	                                    "NXDOMAIN", "NOTIMP",  "REFUSED"};
	if (rc < sizeof(names) / sizeof(names[0]))
		return names[rc];
	snprintf(buf, len, "RCODE%u", rc);
	return buf;
}

/* Appends s to line as a JSON string body (quotes and backslashes escaped; names never hold controls). */
static size_t put_escaped(char *line, size_t off, size_t cap, const char *s)
{
	for (; *s && off + 2 < cap; s++) {
		if (*s == '"' || *s == '\\')
			line[off++] = '\\';
		line[off++] = (unsigned char)*s < 0x20 ? '?' : *s;
	}
	return off;
}

void aegis_qlog_record(struct aegis_qlog *q, const struct sockaddr *client, const uint8_t *msg, size_t len,
                       const char *source, uint64_t latency_us)
{
	char line[LINE_MAX_BYTES], name[1100], host[INET6_ADDRSTRLEN], tbuf[16], rbuf[16], ts[64];
	uint16_t qtype = 0;
	unsigned port = 0;
	name[0] = '\0';
	host[0] = '\0';
	if (len >= AEGIS_DNS_HEADER && aegis_wire_u16(msg + 4) >= 1) {
		/* The question is the first name and is never compressed: walk it in place. */
		size_t off = AEGIS_DNS_HEADER;
		while (off < len && msg[off] != 0 && msg[off] < 64)
			off += 1u + msg[off];
		if (off < len && msg[off] == 0 && off + 5 <= len &&
		    off + 1 - AEGIS_DNS_HEADER <= AEGIS_DNS_MAX_NAME) {
			if (aegis_dns_name_to_str(msg + AEGIS_DNS_HEADER, off + 1 - AEGIS_DNS_HEADER, name,
			                          sizeof(name)) < 0)
				name[0] = '\0';
			qtype = aegis_wire_u16(msg + off + 1);
		}
	}
	if (client != NULL && client->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)client;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (client != NULL && client->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)client;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
	bool v6 = client != NULL && client->sa_family == AF_INET6;
	int n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"client\":\"%s%s%s:%u\",\"name\":\"", ts,
	                 v6 ? "[" : "", host, v6 ? "]" : "", port);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	size_t off = put_escaped(line, (size_t)n, sizeof(line), name);
	n = snprintf(line + off, sizeof(line) - off,
	             "\",\"type\":\"%s\",\"rcode\":\"%s\",\"latency_us\":%llu,\"source\":\"%s\"}\n",
	             type_name(qtype, tbuf, sizeof(tbuf)),
	             rcode_name(len >= AEGIS_DNS_HEADER ? (msg[3] & 0xFu) : 0, rbuf, sizeof(rbuf)),
	             (unsigned long long)latency_us, source);
	if (n < 0 || (size_t)n >= sizeof(line) - off)
		return;
	off += (size_t)n;
	if (q->len + off > q->cap) {
		q->st.dropped++;
		return;
	}
	memcpy(q->buf + q->len, line, off);
	q->len += off;
	q->st.lines++;
	q->st.bytes += off;
	if (q->len > q->cap / 2)
		(void)aegis_qlog_flush(q);
}

int aegis_qlog_flush(struct aegis_qlog *q)
{
	size_t done = 0;
	int rc = 0;
	while (done < q->len) {
		ssize_t w = write(q->fd, q->buf + done, q->len - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				rc = AEGIS_EAGAIN;
				break;
			}
			/* A broken pipe or a full disk will not heal by retrying these lines. */
			q->st.write_errors++;
			done = q->len;
			rc = AEGIS_EIO;
			break;
		}
		done += (size_t)w;
	}
	if (done > 0) {
		memmove(q->buf, q->buf + done, q->len - done);
		q->len -= done;
	}
	return rc;
}

void aegis_qlog_get_stats(const struct aegis_qlog *q, struct aegis_qlog_stats *out)
{
	*out = q->st;
}

void aegis_qlog_metrics(const struct aegis_qlog *q, struct aegis_metrics *m)
{
	aegis_metrics_family(m, "aegis_query_log_lines_total", AEGIS_METRIC_COUNTER,
	                     "Query log lines written.");
	aegis_metrics_uint(m, NULL, 0, q->st.lines);
	aegis_metrics_family(m, "aegis_query_log_dropped_total", AEGIS_METRIC_COUNTER,
	                     "Sampled query log lines dropped because the buffer was full.");
	aegis_metrics_uint(m, NULL, 0, q->st.dropped);
	aegis_metrics_family(m, "aegis_query_log_write_errors_total", AEGIS_METRIC_COUNTER,
	                     "Failed writes to the query log (the buffered lines are lost).");
	aegis_metrics_uint(m, NULL, 0, q->st.write_errors);
}
