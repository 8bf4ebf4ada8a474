/* echo_floor: the cheapest possible "DNS server", used by bench/run.sh as the floor that every real
 * server is compared with. It answers each UDP datagram by setting the QR bit and sending it back to its
 * source, in batches of up to 32 with recvmmsg/sendmmsg: no parsing, no lookup, no allocation. What it
 * costs per query is (almost all) the kernel's UDP receive and send path on loopback.
 *
 * Usage: echo_floor ADDR PORT    (IPv4 or IPv6 literal; runs until SIGTERM/SIGINT)
 * Built by bench/run.sh with: gcc -O2 -o echo_floor echo_floor.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
#define BUF   4096

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s ADDR PORT\n", argv[0]);
		return 2;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	char *end;
	unsigned long port = strtoul(argv[2], &end, 10);
	if (*end != '\0' || port == 0 || port > 65535) {
		fprintf(stderr, "echo_floor: bad port %s\n", argv[2]);
		return 2;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, argv[1], &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short)port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, argv[1], &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)port);
		sl = sizeof(*sin6);
	} else {
		fprintf(stderr, "echo_floor: bad address %s\n", argv[1]);
		return 2;
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0) {
		perror("echo_floor: socket/bind");
		return 1;
	}
	/* No SA_RESTART: a signal interrupts the blocking recvmmsg and the loop sees stop. */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	static unsigned char bufs[BATCH][BUF];
	static struct sockaddr_storage addrs[BATCH];
	static struct iovec iov[BATCH];
	static struct mmsghdr msgs[BATCH];
	unsigned long long answered = 0;
	while (!stop) {
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = BUF;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		/* Block for the first datagram, then take whatever else is already queued. */
		int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_floor: recvmmsg");
			return 1;
		}
		int k = 0;
		for (int i = 0; i < n; i++) {
			unsigned len = msgs[i].msg_len;
			if (len < 12 || (bufs[i][2] & 0x80))
				continue;   /* not a query: drop */
			bufs[i][2] |= 0x80; /* QR = 1: "this is the answer" */
			iov[i].iov_len = len;
			if (k != i)
				msgs[k] = msgs[i];
			k++;
		}
		for (int off = 0; off < k;) {
			int s = sendmmsg(fd, msgs + off, (unsigned)(k - off), 0);
			if (s < 0) {
				if (errno == EINTR)
					continue;
				break; /* a full socket buffer: the client sees a loss, as with a real server
				        */
			}
			off += s;
			answered += (unsigned long long)s;
		}
	}
	fprintf(stderr, "echo_floor: answered %llu\n", answered);
	close(fd);
	return 0;
}
