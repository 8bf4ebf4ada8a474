/* loadgen: a closed-loop UDP DNS load generator that outruns dnsperf on one core, for finding a server's
 * saturation (dnsperf itself saturates its core at 140-180k qps here, below what a fast server answers).
 *
 * It keeps WINDOW queries in flight, sends them in batches with sendmmsg and takes answers in batches
 * with recvmmsg, so that its cost per query is a fraction of a syscall. Queries come from a dnsperf
 * input file ("name type" per line), sent in order and repeated. A query unanswered after TIMEOUT ms is
 * counted lost and its slot reused. The message ID is the slot number; an answer whose ID is not a slot
 * in flight (late, duplicated) is ignored.
 *
 * Usage: loadgen -s ADDR -p PORT -d FILE [-n PASSES] [-l SECONDS] [-w WINDOW] [-b BATCH] [-t TIMEOUT_MS]
 *                [-S SOCKETS] [-Q QPS]
 * -Q paces the sending at QPS queries per second (open loop, like dnsperf -Q; WINDOW still bounds what
 * is in flight, so make it larger than QPS times the expected latency): bench/soak.sh drives a steady
 * load with it, at rates dnsperf cannot reach.
 * -S sends from SOCKETS sockets (distinct source ports), a batch each in turn: a server with
 * SO_REUSEPORT workers (aegis-proxy --dns-workers) spreads queries over its workers by the 4-tuple, so one
 * source port would load one worker only.
 * It prints the same summary lines as dnsperf ("Queries sent:", "Queries completed:", "Queries lost:",
 * "Response codes:", "Run time (s):", "Queries per second:", "Average Latency (s):"), so that
 * bench/bench.py reads both the same way.
 *
 * Built by bench/run.sh with: gcc -O2 -o loadgen loadgen.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 64
#define QMAX      300

struct query {
	uint16_t len;
	uint8_t wire[QMAX];
};

struct slot {
	double sent; /* seconds; 0 = free */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A whole decimal number in [lo, hi], or -1 (no atoi: it cannot report junk or overflow). */
static int num(const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	return (int)v;
}

static int qtype_of(const char *t)
{
	static const struct {
		const char *name;
		int v;
	} types[] = {{"A", 1},   {"NS", 2},   {"CNAME", 5}, {"SOA", 6},  {"PTR", 12},
	             {"MX", 15}, {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {"ANY", 255}};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(t, types[i].name) == 0)
			return types[i].v;
	if (strncasecmp(t, "TYPE", 4) == 0)
		return num(t + 4, 0, 65535);
	return -1;
}

/* "name type" -> wire query (ID 0, RD=1, one question, no EDNS: what dnsperf sends without -e). */
static int build(const char *name, const char *type, struct query *q)
{
	int qt = qtype_of(type);
	if (qt < 0)
		return -1;
	uint8_t *p = q->wire;
	memset(p, 0, 12);
	p[2] = 0x01; /* RD */
	p[5] = 1;    /* QDCOUNT */
	size_t off = 12;
	const char *s = name;
	while (*s && !(s[0] == '.' && s[1] == '\0')) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		if (l == 0 || l > 63 || off + l + 1 > QMAX - 6)
			return -1;
		p[off++] = (uint8_t)l;
		memcpy(p + off, s, l);
		off += l;
		s += l;
		if (*s == '.')
			s++;
	}
	p[off++] = 0;
	p[off++] = (uint8_t)(qt >> 8);
	p[off++] = (uint8_t)qt;
	p[off++] = 0;
	p[off++] = 1;
	q->len = (uint16_t)off;
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *file = NULL;
	int port = 53, passes = 1, window = 256, batch = 32, n_socks = 1;
	double seconds = 10, timeout = 1.0, rate = 0;
	int opt;
	while ((opt = getopt(argc, argv, "s:p:d:n:l:w:b:t:S:Q:")) != -1) {
		switch (opt) {
		case 's': addr = optarg; break;
		case 'p': port = num(optarg, 1, 65535); break;
		case 'd': file = optarg; break;
		case 'n': passes = num(optarg, 1, 1000000); break;
		case 'l': seconds = atof(optarg); break;
		case 'w': window = num(optarg, 1, 65536); break;
		case 'b': batch = num(optarg, 1, 1024); break;
		case 't': timeout = atof(optarg) / 1000.0; break;
		case 'S': n_socks = num(optarg, 1, 64); break;
		case 'Q': rate = num(optarg, 1, 100000000); break;
		default:
			fprintf(stderr,
			        "usage: %s -s ADDR -p PORT -d FILE [-n PASSES] [-l SECONDS] [-w WINDOW] "
			        "[-b BATCH] [-t TIMEOUT_MS] [-S SOCKETS] [-Q QPS]\n",
			        argv[0]);
			return 2;
		}
	}
	if (file == NULL || port < 1 || window < 1 || window > 65536 || batch < 1 || batch > MAX_BATCH ||
	    passes < 1 || n_socks < 1 || rate < 0) {
		fprintf(stderr, "loadgen: need -d FILE; 1 <= -w <= 65536, 1 <= -b <= %d, -n >= 1\n",
		        MAX_BATCH);
		return 2;
	}

	/* Load the queries. */
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		perror(file);
		return 1;
	}
	size_t nq = 0, cap = 1024;
	struct query *qs = malloc(cap * sizeof(*qs));
	char line[512];
	while (qs != NULL && fgets(line, sizeof(line), f) != NULL) {
		char name[300], type[32];
		if (sscanf(line, "%299s %31s", name, type) != 2)
			continue;
		if (nq == cap) {
			cap *= 2;
			struct query *n = realloc(qs, cap * sizeof(*qs));
			if (n == NULL) {
				free(qs);
				qs = NULL;
				break;
			}
			qs = n;
		}
		if (build(name, type, &qs[nq]) == 0)
			nq++;
	}
	fclose(f);
	if (qs == NULL || nq == 0) {
		fprintf(stderr, "loadgen: no queries in %s\n", file);
		return 1;
	}

	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
		fprintf(stderr, "loadgen: bad address %s (IPv4 only)\n", addr);
		return 2;
	}
	int fds[64];
	struct pollfd pfds[64];
	for (int i = 0; i < n_socks; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			perror("loadgen: socket/connect");
			return 1;
		}
		int bufsz = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
		fds[i] = fd;
		pfds[i] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	int turn = 0;

	struct slot *slots = calloc((size_t)window, sizeof(*slots));
	int *free_list = malloc((size_t)window * sizeof(int));
	if (slots == NULL || free_list == NULL)
		return 1;
	int n_free = window;
	for (int i = 0; i < window; i++)
		free_list[i] = window - 1 - i;

	static uint8_t txbuf[MAX_BATCH][QMAX];
	static uint8_t rxbuf[MAX_BATCH][4096];
	struct mmsghdr tx[MAX_BATCH], rx[MAX_BATCH];
	struct iovec txiov[MAX_BATCH], rxiov[MAX_BATCH];
	memset(tx, 0, sizeof(tx));
	memset(rx, 0, sizeof(rx));
	for (int i = 0; i < MAX_BATCH; i++) {
		txiov[i].iov_base = txbuf[i];
		tx[i].msg_hdr.msg_iov = &txiov[i];
		tx[i].msg_hdr.msg_iovlen = 1;
		rxiov[i].iov_base = rxbuf[i];
		rxiov[i].iov_len = sizeof(rxbuf[i]);
		rx[i].msg_hdr.msg_iov = &rxiov[i];
		rx[i].msg_hdr.msg_iovlen = 1;
	}

	unsigned long long sent = 0, completed = 0, lost = 0, rcodes[16] = {0};
	unsigned long long total = (unsigned long long)passes * nq;
	double lat_sum = 0, lat_min = 1e9, lat_max = 0;
	size_t next = 0;
	double start = now_s(), stop_sending = start + seconds, last_sweep = start;
	double t = start;
	int in_flight = 0;
	for (;;) {
		t = now_s();
		int sending = t < stop_sending && sent < total;
		if (!sending && in_flight == 0)
			break;
		if (!sending && t > stop_sending + timeout + 0.1)
			break; /* answers still missing after the last timeout: they are lost */

		/* Send into every free slot, a batch at a time; with -Q no more than the schedule allows. */
		unsigned long long allowed = total;
		if (rate > 0) {
			double due = (t - start) * rate;
			allowed = due < (double)total ? (unsigned long long)due + 1 : total;
		}
		int k = 0;
		while (sending && n_free > 0 && k < batch && sent + (unsigned long long)k < allowed) {
			int id = free_list[--n_free];
			const struct query *q = &qs[next];
			next = next + 1 == nq ? 0 : next + 1;
			memcpy(txbuf[k], q->wire, q->len);
			txbuf[k][0] = (uint8_t)(id >> 8);
			txbuf[k][1] = (uint8_t)id;
			txiov[k].iov_len = q->len;
			slots[id].sent = t;
			k++;
		}
		if (k > 0) {
			int s = sendmmsg(fds[turn], tx, (unsigned)k, 0);
			turn = turn + 1 == n_socks ? 0 : turn + 1;
			if (s < 0)
				s = 0;
			/* Unsent ones go back to the free list (their slots were never in flight). */
			for (int i = s; i < k; i++) {
				int id = (txbuf[i][0] << 8) | txbuf[i][1];
				slots[id].sent = 0;
				free_list[n_free++] = id;
			}
			sent += (unsigned long long)s;
			in_flight += s;
		}

		/* Take every answer that is there. */
		int got = 0;
		for (int sk = 0; sk < n_socks; sk++) {
			for (int i = 0; i < batch; i++)
				rxiov[i].iov_len = sizeof(rxbuf[i]);
			int r = recvmmsg(fds[sk], rx, (unsigned)batch, MSG_DONTWAIT, NULL);
			if (r <= 0)
				continue;
			double tr = now_s();
			for (int i = 0; i < r; i++) {
				if (rx[i].msg_len < 12 || !(rxbuf[i][2] & 0x80))
					continue;
				int id = (rxbuf[i][0] << 8) | rxbuf[i][1];
				if (id >= window || slots[id].sent == 0)
					continue;
				double lat = tr - slots[id].sent;
				lat_sum += lat;
				if (lat < lat_min)
					lat_min = lat;
				if (lat > lat_max)
					lat_max = lat;
				rcodes[rxbuf[i][3] & 0x0f]++;
				slots[id].sent = 0;
				free_list[n_free++] = id;
				in_flight--;
				completed++;
			}
			got += r;
			if (r == batch)
				sk--; /* more may be waiting on this socket */
		}

		/* Expire lost queries every 10 ms. */
		if (t - last_sweep > 0.01) {
			last_sweep = t;
			for (int id = 0; id < window; id++) {
				if (slots[id].sent != 0 && t - slots[id].sent > timeout) {
					slots[id].sent = 0;
					free_list[n_free++] = id;
					in_flight--;
					lost++;
				}
			}
		}
		if (got == 0 && (k == 0 || n_free == 0)) {
			/* Paced and nothing due: sleep until the next query is (poll's 1 ms is too coarse).
			 */
			if (rate > 0 && k == 0 && n_free > 0 && in_flight == 0) {
				struct timespec ts = {0, 100000};
				nanosleep(&ts, NULL);
			} else {
				poll(pfds, (nfds_t)n_socks, 1);
			}
		}
	}
	double end = now_s();
	/* Queries still in flight at the end (sending stopped, timeout passed) are lost. */
	lost += (unsigned long long)in_flight;

	static const char *const rc_names[16] = {
	        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
	        "NXRRSET", "NOTAUTH", "NOTZONE",  "RCODE11",  "RCODE12", "RCODE13", "RCODE14",  "RCODE15"};
	double run = end - start;
	printf("Statistics:\n\n");
	printf("  Queries sent:         %llu\n", sent);
	printf("  Queries completed:    %llu (%.2f%%)\n", completed,
	       sent ? 100.0 * (double)completed / (double)sent : 0);
	printf("  Queries lost:         %llu (%.2f%%)\n\n", lost,
	       sent ? 100.0 * (double)lost / (double)sent : 0);
	printf("  Response codes:      ");
	for (int i = 0; i < 16; i++)
		if (rcodes[i])
			printf(" %s %llu (%.2f%%)", rc_names[i], rcodes[i],
			       completed ? 100.0 * (double)rcodes[i] / (double)completed : 0);
	printf("\n");
	printf("  Run time (s):         %.6f\n", run);
	printf("  Queries per second:   %.6f\n\n", run > 0 ? (double)completed / run : 0);
	printf("  Average Latency (s):  %.6f (min %.6f, max %.6f)\n",
	       completed ? lat_sum / (double)completed : 0, completed ? lat_min : 0, lat_max);
	printf("  Window: %d, batch: %d, sockets: %d, rate: %s\n", window, batch, n_socks,
	       rate > 0 ? "paced" : "closed loop");
	return 0;
}
