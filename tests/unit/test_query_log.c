/* Tests proxy/query_log.c: the JSON line (client, name, type, rcode, latency, source, escaping), sampling
 * at 0 and 1, and a reader that stops reading: the loop is never blocked, lines are dropped and counted
 * once the bounded buffer is full, and the log recovers when the reader drains the pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "query_log.h"

/* An answer: header (rcode) and the question for name (already in wire format) and type. */
static size_t answer(uint8_t *buf, const uint8_t *wire, size_t wlen, uint16_t type, uint8_t rcode)
{
	memset(buf, 0, 12);
	buf[2] = 0x81;
	buf[3] = (uint8_t)(0x80 | rcode);
	buf[5] = 1;
	memcpy(buf + 12, wire, wlen);
	buf[12 + wlen] = (uint8_t)(type >> 8);
	buf[13 + wlen] = (uint8_t)type;
	buf[15 + wlen] = 1;
	return 16 + wlen;
}

static struct aegis_qlog *mk(int fd, double sample, size_t buf_max)
{
	struct aegis_qlog *q = NULL;
	struct aegis_qlog_opts o = {.fd = fd, .sample = sample, .buf_max = buf_max};
	assert_int_equal(aegis_qlog_new(NULL, &o, &q), 0);
	return q;
}

static void test_line(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct aegis_qlog *q = mk(p[1], 1.0, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4242)};
	inet_pton(AF_INET, "10.253.0.2", &sin.sin_addr);
	uint8_t msg[300];
	static const uint8_t www[] = "\3www\7Example\4test";
	size_t n = answer(msg, www, sizeof(www), 1, 3);
	assert_true(aegis_qlog_sampled(q));
	aegis_qlog_record(q, (struct sockaddr *)&sin, msg, n, "upstream", 1234);
	/* A name with a quote and a control byte: \DDD escapes, their backslash escaped for JSON. */
	static const uint8_t odd[] = "\3a\"b\2\x01z";
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
	inet_pton(AF_INET6, "fd53:ae61::2", &sin6.sin6_addr);
	n = answer(msg, odd, sizeof(odd), 65, 0);
	aegis_qlog_record(q, (struct sockaddr *)&sin6, msg, n, "table", 0);
	/* No question at all (FORMERR to a header-only query). */
	memset(msg, 0, 12);
	msg[3] = 1;
	aegis_qlog_record(q, (struct sockaddr *)&sin, msg, 12, "error", 7);
	assert_int_equal(aegis_qlog_flush(q), 0);
	char buf[2048];
	ssize_t r = read(p[0], buf, sizeof(buf) - 1);
	assert_true(r > 0);
	buf[r] = '\0';
	char *l1 = buf, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
	assert_non_null(strstr(l1,
	                       "\"client\":\"10.253.0.2:4242\",\"name\":\"www.Example.test.\",\"type\":\"A\","
	                       "\"rcode\":\"NXDOMAIN\",\"latency_us\":1234,\"source\":\"upstream\"}\n"));
	assert_true(strncmp(l1, "{\"ts\":\"20", 9) == 0);
	assert_non_null(strstr(
	        l2, "\"client\":\"[fd53:ae61::2]:53\",\"name\":\"a\\\\034b.\\\\001z.\",\"type\":\"TYPE65\""));
	assert_non_null(strstr(l3, "\"name\":\"\",\"type\":\"TYPE0\",\"rcode\":\"FORMERR\""));
	struct aegis_qlog_stats st;
	aegis_qlog_get_stats(q, &st);
	assert_int_equal(st.lines, 3);
	assert_int_equal(st.dropped, 0);
	aegis_qlog_free(q); /* closes p[1] */
	close(p[0]);
	(void)state;
}

static void test_sampling(void **state)
{
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct aegis_qlog *q = mk(fd, 0.0, 0);
	for (int i = 0; i < 10000; i++)
		assert_false(aegis_qlog_sampled(q));
	aegis_qlog_free(q);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	q = mk(fd, 0.25, 0);
	int hits = 0;
	for (int i = 0; i < 100000; i++)
		hits += aegis_qlog_sampled(q);
	assert_in_range(hits, 23000, 27000);
	aegis_qlog_free(q);
	struct aegis_qlog_opts bad = {.fd = 1, .sample = 1.5};
	assert_int_equal(aegis_qlog_new(NULL, &bad, &q), AEGIS_EINVAL);
	bad = (struct aegis_qlog_opts){.fd = -1, .sample = 1};
	assert_int_equal(aegis_qlog_new(NULL, &bad, &q), AEGIS_EINVAL);
	(void)state;
}

static void test_full_buffer_drops_never_blocks(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct aegis_qlog *q = mk(p[1], 1.0, 8192);
	uint8_t msg[300];
	static const uint8_t name[] = "\x10sixteen-byte-lbl\7example\4test";
	size_t n = answer(msg, name, sizeof(name), 28, 0);
	/* Nobody reads: the pipe (64 KiB) and then the 8 KiB buffer fill; record() must return at once. */
	for (int i = 0; i < 5000; i++)
		aegis_qlog_record(q, NULL, msg, n, "cache", 1);
	struct aegis_qlog_stats st;
	aegis_qlog_get_stats(q, &st);
	assert_true(st.dropped > 0);
	assert_int_equal(st.lines + st.dropped, 5000);
	assert_int_equal(aegis_qlog_flush(q), AEGIS_EAGAIN);
	/* The reader catches up: the buffered lines go out and new ones are accepted again. */
	char buf[65536];
	while (read(p[0], buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		;
	assert_int_equal(aegis_qlog_flush(q), 0);
	uint64_t dropped = st.dropped;
	aegis_qlog_record(q, NULL, msg, n, "cache", 1);
	aegis_qlog_get_stats(q, &st);
	assert_int_equal(st.dropped, dropped);
	/* A reader that went away: the write fails, the lines are counted as lost, nothing blocks. */
	close(p[0]);
	assert_int_equal(aegis_qlog_flush(q), AEGIS_EIO);
	aegis_qlog_get_stats(q, &st);
	assert_int_equal(st.write_errors, 1);
	aegis_qlog_free(q);
	(void)state;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_line),
	        cmocka_unit_test(test_sampling),
	        cmocka_unit_test(test_full_buffer_drops_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
