/* mesh_load: the HTTP load of bench/mesh.sh (not part of the build or the tests).
 *
 *   mesh_load rr   HOST PORT [-c CONNS] [-r RATE] [-d SECONDS] [-n MAX] [-p PATH]
 *   mesh_load conn HOST PORT [-n COUNT] [-d SECONDS] [-p PATH]
 *
 * rr: CONNS keep-alive HTTP/1.1 connections (default 16), GET PATH. With -r RATE the requests are paced:
 * request k is due at start + k/RATE (a timerfd, so sub-millisecond spacing is kept) and goes out on the
 * first idle connection; its latency is counted from when it was due, not from when it was sent, so a
 * stalled path cannot hide its queueing (wrk2's correction of coordinated omission). Without -r (or -r 0)
 * every connection sends its next request as soon as the last answer is complete (closed loop).
 * conn: one new TCP connection per request, sequentially: connect, GET with Connection: close, read the
 * whole answer, close.
 *
 * Both stop at MAX/COUNT requests or after SECONDS (default 5), whichever comes first, and print one line:
 *   requests=N errors=E seconds=S rate=R p50_us=.. p90_us=.. p99_us=.. max_us=..
 * Latencies go into a 1 µs histogram up to 1 s (larger ones count as 1 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HIST_US   1000000
#define MAX_CONNS 1024
#define BUF_SIZE  16384

static uint32_t hist[HIST_US + 1];
static uint64_t n_done, n_err;
static struct sockaddr_in target;
static char req[512];
static size_t req_len;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(uint64_t ns)
{
	uint64_t us = ns / 1000;
	hist[us > HIST_US ? HIST_US : us]++;
	n_done++;
}

static uint64_t percentile(double p)
{
	uint64_t want = (uint64_t)((double)n_done * p), seen = 0;
	if (n_done == 0)
		return 0;
	for (uint64_t i = 0; i <= HIST_US; i++) {
		seen += hist[i];
		if (seen > want)
			return i;
	}
	return HIST_US;
}

static uint64_t hist_max(void)
{
	for (uint64_t i = HIST_US + 1; i-- > 0;)
		if (hist[i])
			return i;
	return 0;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Returns the length of a complete HTTP response at the start of buf, 0 when more bytes are needed, -1 when
 * it cannot be parsed (no Content-Length: the backends always send one). */
static long response_len(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len >= BUF_SIZE ? -1 : 0;
	size_t hdr = (size_t)(end - buf) + 4;
	long cl = -1;
	for (const char *p = buf; p < end;) {
		const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
		if (!eol)
			break;
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			cl = strtol(p + 15, NULL, 10);
		p = eol + 2;
	}
	if (cl < 0)
		return -1;
	return len >= hdr + (size_t)cl ? (long)(hdr + (size_t)cl) : 0;
}

struct conn {
	int fd;
	int busy;
	uint64_t due;
	size_t have;
	char buf[BUF_SIZE];
};

static int run_conn(uint64_t count, double secs)
{
	static char buf[BUF_SIZE];
	uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
	for (uint64_t i = 0; i < count && now_ns() < end; i++) {
		uint64_t t0 = now_ns();
		int fd = dial();
		if (fd < 0) {
			n_err++;
			continue;
		}
		size_t have = 0;
		long want = 0;
		if (write(fd, req, req_len) == (ssize_t)req_len) {
			while (want == 0) {
				ssize_t r = read(fd, buf + have, sizeof(buf) - have);
				if (r <= 0)
					break;
				have += (size_t)r;
				want = response_len(buf, have);
			}
		}
		close(fd);
		if (want > 0)
			record(now_ns() - t0);
		else
			n_err++;
	}
	return 0;
}

static void send_req(struct conn *c, uint64_t due)
{
	c->busy = 1;
	c->due = due;
	c->have = 0;
	if (write(c->fd, req, req_len) != (ssize_t)req_len)
		c->busy = -1;
}

static int run_rr(int nconns, double rate, double secs, uint64_t max)
{
	static struct conn conns[MAX_CONNS];
	int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	if (ep < 0 || tfd < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	for (int i = 0; i < nconns; i++) {
		conns[i].fd = dial();
		if (conns[i].fd < 0) {
			fprintf(stderr, "mesh_load: connect: %s\n", strerror(errno));
			return -1;
		}
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}
	uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), k = 0;
	double gap = rate > 0 ? 1e9 / rate : 0;
	int armed = 0;
	while (n_done + n_err < max) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		/* Hand every due request to an idle connection. */
		for (int i = 0; i < nconns && k < max; i++) {
			if (conns[i].busy)
				continue;
			uint64_t due = start + (uint64_t)((double)k * gap);
			if (due > now)
				break;
			send_req(&conns[i], rate > 0 ? due : now);
			k++;
		}
		if (rate > 0 && !armed) {
			uint64_t due = start + (uint64_t)((double)k * gap);
			if (due > now) {
				struct itimerspec its = {.it_value = {.tv_sec = (time_t)(due / 1000000000u),
				                                      .tv_nsec = (long)(due % 1000000000u)}};
				timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
				armed = 1;
			}
		}
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 100);
		for (int e = 0; e < n; e++) {
			if (evs[e].data.u32 == UINT32_MAX) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) < 0)
					continue;
				armed = 0;
				continue;
			}
			struct conn *c = &conns[evs[e].data.u32];
			ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
			long len = 0;
			if (r > 0) {
				c->have += (size_t)r;
				len = response_len(c->buf, c->have);
			}
			if (r > 0 && len == 0)
				continue;
			if (r > 0 && len > 0 && c->busy == 1 && (size_t)len == c->have) {
				record(now_ns() - c->due);
				c->busy = 0;
				continue;
			}
			/* EOF, error, garbage or a write that failed: count it and reconnect. */
			if (c->busy)
				n_err++;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			c->busy = 0;
			c->fd = dial();
			if (c->fd < 0)
				return -1;
			ev.data.u32 = evs[e].data.u32;
			epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		}
	}
	for (int i = 0; i < nconns; i++)
		close(conns[i].fd);
	close(tfd);
	close(ep);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "rr") != 0 && strcmp(argv[1], "conn") != 0)) {
		fprintf(stderr,
		        "usage: mesh_load rr|conn HOST PORT [-c CONNS] [-r RATE] [-d SECONDS] [-n MAX] "
		        "[-p PATH]\n");
		return 2;
	}
	int rr = strcmp(argv[1], "rr") == 0, nconns = 16;
	double rate = 0, secs = 5;
	uint64_t max = UINT64_MAX;
	const char *path = "/";
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)strtoul(argv[3], NULL, 10));
	if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
		fprintf(stderr, "mesh_load: bad IPv4 address %s\n", argv[2]);
		return 2;
	}
	for (int i = 4; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "-c") == 0)
			nconns = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-r") == 0)
			rate = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "-d") == 0)
			secs = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "-n") == 0)
			max = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "-p") == 0)
			path = argv[i + 1];
		else {
			fprintf(stderr, "mesh_load: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (nconns < 1 || nconns > MAX_CONNS) {
		fprintf(stderr, "mesh_load: -c must be 1..%d\n", MAX_CONNS);
		return 2;
	}
	int w = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: bench\r\n%s\r\n", path,
	                 rr ? "" : "Connection: close\r\n");
	if (w < 0 || (size_t)w >= sizeof(req))
		return 2;
	req_len = (size_t)w;
	uint64_t t0 = now_ns();
	int rc = rr ? run_rr(nconns, rate, secs, max) : run_conn(max, secs);
	double el = (double)(now_ns() - t0) / 1e9;
	printf("requests=%llu errors=%llu seconds=%.3f rate=%.1f p50_us=%llu p90_us=%llu p99_us=%llu "
	       "max_us=%llu\n",
	       (unsigned long long)n_done, (unsigned long long)n_err, el, (double)n_done / el,
	       (unsigned long long)percentile(0.5), (unsigned long long)percentile(0.9),
	       (unsigned long long)percentile(0.99), (unsigned long long)hist_max());
	return rc == 0 ? 0 : 1;
}
