/* Runs the forwarder on a real libev loop against scripted DNS peers (tests/lib/dnspeer.py) on loopback:
 * forwarding A/MX/TXT/DNSKEY, cache hits, TCP retry after TC, SERVFAIL on timeout / REFUSED / every
 * server down within the deadline, wrong-ID and wrong-question answers ignored, in-flight dedup counted
 * by the peer, stub-zone routing, health back-off and recovery, serve-stale, loop detection and
 * anti-spoofing against a socket the test drives itself, cancellation and the concurrency cap.
 *
 * Every peer is a child process started here and killed by PID in the group teardown; it also exits by
 * itself after --lifetime seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aegis/log.h"
#include "dns_cache.h"
#include "test_upstream_msg.h"
#include "upstream.h"

struct peer {
	pid_t pid;
	unsigned port;
	char counts[300];
	char mode_file[300];
};

static struct ev_loop *loop;
static char tmpdir[64];
static struct peer peer_a, peer_b;
static unsigned closed_port;

static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(sin);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &l), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static struct sockaddr_storage lo(unsigned port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ss;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void peer_mode(struct peer *p, const char *mode)
{
	write_file(p->mode_file, mode);
}

static void peer_start(struct peer *p, const char *tag, const char *zone)
{
	const char *src = getenv("AEGIS_SRC_DIR");
	char script[512], port[16], ready[300];
	snprintf(script, sizeof(script), "%s/tests/lib/dnspeer.py", src && *src ? src : AEGIS_SRC_DIR);
	snprintf(p->counts, sizeof(p->counts), "%s/%s.counts", tmpdir, tag);
	snprintf(p->mode_file, sizeof(p->mode_file), "%s/%s.mode", tmpdir, tag);
	snprintf(ready, sizeof(ready), "%s/%s.ready", tmpdir, tag);
	peer_mode(p, "normal");
	for (int attempt = 0; attempt < 5; attempt++) {
		p->port = free_port();
		snprintf(port, sizeof(port), "%u", p->port);
		p->pid = fork();
		assert_true(p->pid >= 0);
		if (p->pid == 0) {
			const char *py = getenv("AEGIS_PYTHON");
			execlp(py && *py ? py : "python3", "python3", script, "--port", port, "--zone", zone,
			       "--mode-file", p->mode_file, "--counts", p->counts, "--ready", ready,
			       "--delay-ms", "300", "--lifetime", "110", (char *)NULL);
			_exit(127);
		}
		for (int i = 0; i < 100; i++) {
			struct stat st;
			if (stat(ready, &st) == 0)
				return;
			int status;
			if (waitpid(p->pid, &status, WNOHANG) == p->pid)
				break; /* port taken in the meantime, or no python: try again */
			usleep(50000);
		}
		kill(p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
	}
	fail_msg("dnspeer.py did not start");
}

static void peer_stop(struct peer *p)
{
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
}

/* Reads one counter ("total", "udp", "tcp" or "name/TYPE") from the peer's counts file. */
static long peer_count(const struct peer *p, const char *key)
{
	char buf[65536];
	FILE *f = fopen(p->counts, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char pat[300];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *at = strstr(buf, pat);
	return at ? strtol(at + strlen(pat), NULL, 10) : 0;
}

/* For a peer that has not answered (yet): its counter may lag behind what the forwarder did. */
static long peer_count_wait(const struct peer *p, const char *key, long want, double secs)
{
	double end = ev_time() + secs;
	long n;
	while ((n = peer_count(p, key)) < want && ev_time() < end)
		usleep(10000);
	return n;
}

static int group_setup(void **state)
{
	aegis_log_set_level(AEGIS_LOG_OFF);
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aegis-fwd-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	char zone[128];
	snprintf(zone, sizeof(zone), "%s/zone.json", tmpdir);
	write_file(zone, "{\"www.example.test\": {\"A\": [\"10.0.0.1\", \"10.0.0.2\"],"
	                 " \"MX\": [[10, \"mail.example.test\"]], \"TXT\": [\"hello world\"],"
	                 " \"DNSKEY\": [[257, 13, \"00112233445566778899aabbccddeeff\"]]},"
	                 " \"*\": {\"A\": [\"10.9.9.9\"]}}");
	peer_start(&peer_a, "a", zone);
	peer_start(&peer_b, "b", zone);
	closed_port = free_port();
	loop = ev_loop_new(EVFLAG_AUTO);
	return 0;
}

static int group_teardown(void **state)
{
	peer_stop(&peer_a);
	peer_stop(&peer_b);
	ev_loop_destroy(loop);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers -------------------------------------------------------------------------------------- */

struct result {
	int got;
	uint8_t msg[65536];
	size_t len;
	double at;
};

static void on_answer(void *ctx, const uint8_t *a, size_t len)
{
	struct result *r = ctx;
	r->got++;
	memcpy(r->msg, a, len);
	r->len = len;
	r->at = ev_time();
}

static void tick(struct ev_loop *l, ev_timer *t, int revents)
{
}

/* Runs the loop until *count reaches want or max_s passes. */
static void run_until(const int *count, int want, double max_s)
{
	ev_timer guard;
	ev_timer_init(&guard, tick, 0.005, 0.005);
	ev_timer_start(loop, &guard);
	double end = ev_time() + max_s;
	while ((count == NULL || *count < want) && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &guard);
}

static void run_for(double secs)
{
	run_until(NULL, 0, secs);
}

struct fwd {
	struct aegis_upstream *up;
	struct aegis_cache *cache;
	struct sockaddr_storage def[2], stub[1];
	struct aegis_upstream_zone zone;
};

static void fwd_open(struct fwd *f, struct aegis_upstream_opts *o, const struct aegis_cache_opts *co)
{
	assert_int_equal(aegis_cache_new(co, &f->cache), 0);
	ev_now_update(loop);
	assert_int_equal(aegis_upstream_new(loop, o, f->cache, &f->up), 0);
}

static void fwd_close(struct fwd *f)
{
	aegis_upstream_free(f->up);
	aegis_cache_free(f->cache);
}

/* Default options: peer A as the only server, short timers. */
static void opts_a(struct fwd *f, struct aegis_upstream_opts *o)
{
	aegis_upstream_opts_default(o);
	f->def[0] = lo(peer_a.port);
	o->servers = f->def;
	o->n_servers = 1;
	o->try_timeout_ms = 150;
	o->deadline_ms = 600;
}

static int ask(struct fwd *f, unsigned id, const char *name, unsigned type, bool tcp, struct result *r)
{
	struct tmsg q;
	tm_query(&q, id, name, type, false, false, false);
	return aegis_upstream_resolve(f->up, q.b, q.n, NULL, tcp ? AEGIS_UPSTREAM_F_TCP : 0, on_answer, r,
	                              NULL);
}

static unsigned rcode(const struct result *r)
{
	return r->msg[3] & 0x0F;
}

/* ---- tests ---------------------------------------------------------------------------------------- */

static void test_forward_types_and_cache(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	peer_mode(&peer_a, "normal");
	fwd_open(&f, &o, NULL);
	static const struct {
		unsigned type, ancount;
	} cases[] = {{1, 2}, {15, 1}, {16, 1}, {48, 1}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r = {0};
		assert_int_equal(ask(&f, 0x1100 + (unsigned)i, "WWW.Example.Test", cases[i].type, false, &r),
		                 0);
		assert_int_equal(r.got, 0); /* never from inside resolve */
		run_until(&r.got, 1, 3);
		assert_int_equal(r.got, 1);
		assert_int_equal(rcode(&r), 0);
		assert_int_equal(tm_get16(r.msg), 0x1100 + i);
		assert_int_equal(tm_get16(r.msg + 6), cases[i].ancount);
		assert_memory_equal(r.msg + 12, "\3WWW\7Example\4Test", 18);
	}
	/* a repeat is a cache hit: the peer sees nothing new, the TTL has not grown */
	struct result r = {0};
	assert_int_equal(ask(&f, 0x2222, "www.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(tm_get16(r.msg), 0x2222);
	assert_int_equal(peer_count(&peer_a, "www.example.test/A"), 1);
	assert_true(tm_get32(r.msg + tm_ttl_off(r.msg, r.len, 0)) <= 300);
	struct tmsg q;
	tm_query(&q, 0x3333, "www.example.test", 16, false, false, false);
	uint8_t out[4096];
	size_t len;
	assert_int_equal(aegis_upstream_answer_cached(f.up, q.b, q.n, false, out, sizeof(out), &len), 0);
	assert_int_equal(tm_get16(out), 0x3333);
	tm_query(&q, 0x3333, "other.example.test", 16, false, false, false);
	assert_int_equal(aegis_upstream_answer_cached(f.up, q.b, q.n, false, out, sizeof(out), &len),
	                 AEGIS_ENOTFOUND);

	/* NXDOMAIN passes through and is cached (negative) */
	for (int i = 0; i < 2; i++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(ask(&f, 0x4444, "nx1.example.test", 1, false, &r), 0);
		run_until(&r.got, 1, 3);
		assert_int_equal(rcode(&r), 3);
	}
	assert_int_equal(peer_count(&peer_a, "nx1.example.test/A"), 1);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.cache_answers, 3);
	assert_int_equal(st.inflight, 0);
	fwd_close(&f);
}

static void test_tcp_retry_after_tc(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.udp_first = true;
	peer_mode(&peer_a, "tc");
	fwd_open(&f, &o, NULL);
	long udp0 = peer_count(&peer_a, "udp"), tcp0 = peer_count(&peer_a, "tcp");
	/* a UDP client gets the TC answer as it is */
	struct result r = {0};
	assert_int_equal(ask(&f, 1, "tc1.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_true(r.msg[2] & 0x02);
	assert_int_equal(peer_count(&peer_a, "tcp"), tcp0);
	/* a TCP client: UDP first, TC, then the same server over TCP */
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 2, "tc2.example.test", 1, true, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_false(r.msg[2] & 0x02);
	assert_int_equal(tm_get16(r.msg + 6), 1);
	assert_int_equal(peer_count(&peer_a, "udp"), udp0 + 2);
	assert_int_equal(peer_count(&peer_a, "tcp"), tcp0 + 1);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.tcp_retries, 1);
	fwd_close(&f);

	/* default: a TCP client's query goes out over TCP directly */
	o.udp_first = false;
	fwd_open(&f, &o, NULL);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 3, "tc3.example.test", 1, true, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(peer_count(&peer_a, "udp"), udp0 + 2);
	assert_int_equal(peer_count(&peer_a, "tcp"), tcp0 + 2);
	fwd_close(&f);
}

static void test_servfail_timeout_refused_down(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.try_timeout_ms = 100;
	o.deadline_ms = 500;
	o.fail_threshold = 100;
	peer_mode(&peer_a, "drop");
	fwd_open(&f, &o, NULL);
	struct result r = {0};
	double t0 = ev_time();
	assert_int_equal(ask(&f, 0x5151, "drop1.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	double el = r.at - t0;
	assert_int_equal(r.got, 1);
	assert_int_equal(rcode(&r), 2);
	assert_int_equal(tm_get16(r.msg), 0x5151);
	assert_true(el >= 0.45 &&
	            el < 2.5); /* at the deadline, not before (the upper bound only catches a hang) */
	assert_int_equal(peer_count(&peer_a, "drop1.example.test/A"), 3); /* three rounds of one server */
	struct aegis_upstream_server_info si;
	assert_int_equal(aegis_upstream_server_info(f.up, 0, &si), 0);
	assert_int_equal(si.timeouts, 3);
	fwd_close(&f);

	/* REFUSED: no retry of the same server, SERVFAIL at once. Timeouts are long here so that "at once"
	 * (well before the first try timeout) holds on a busy machine. */
	peer_mode(&peer_a, "refused");
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	fwd_open(&f, &o, NULL);
	memset(&r, 0, sizeof(r));
	t0 = ev_time();
	assert_int_equal(ask(&f, 0x5252, "ref1.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 2);
	assert_true(r.at - t0 < 0.9);
	assert_int_equal(peer_count(&peer_a, "ref1.example.test/A"), 1);
	fwd_close(&f);

	/* every server down (nothing listens): port unreachable, marked down, then SERVFAIL without sending
	 */
	opts_a(&f, &o);
	f.def[0] = lo(closed_port);
	o.fail_threshold = 2;
	o.backoff_ms = 10000;
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	fwd_open(&f, &o, NULL);
	memset(&r, 0, sizeof(r));
	t0 = ev_time();
	assert_int_equal(ask(&f, 0x5353, "down1.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 2);
	assert_true(r.at - t0 < 0.9);
	assert_int_equal(aegis_upstream_server_info(f.up, 0, &si), 0);
	assert_int_equal(si.health, AEGIS_UPSTREAM_DOWN);
	uint64_t sent = si.sent;
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 0x5454, "down2.example.test", 1, false, &r), 0);
	assert_int_equal(r.got, 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 2);
	assert_int_equal(aegis_upstream_server_info(f.up, 0, &si), 0);
	assert_int_equal(si.sent, sent);
	fwd_close(&f);
}

static void test_wrong_answers_ignored(void **state)
{
	static const char *const modes[] = {"wrongid", "badq", "garbage"};
	for (int m = 0; m < 3; m++) {
		struct fwd f;
		struct aegis_upstream_opts o;
		opts_a(&f, &o);
		/* long enough for the peer's wrong answer to arrive on a busy machine (it is dropped, and
		 * the query ends at the deadline) */
		o.try_timeout_ms = 400;
		o.deadline_ms = 1200;
		peer_mode(&peer_a, modes[m]);
		fwd_open(&f, &o, NULL);
		struct result r = {0};
		char name[64];
		snprintf(name, sizeof(name), "wrong%d.example.test", m);
		assert_int_equal(ask(&f, 0x6000, name, 1, false, &r), 0);
		run_until(&r.got, 1, 3);
		assert_int_equal(rcode(&r), 2);
		struct aegis_upstream_stats st;
		aegis_upstream_get_stats(f.up, &st);
		assert_true(st.dropped >= 1);
		fwd_close(&f);
	}
}

static void test_dedup(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	peer_mode(&peer_a, "delay");
	fwd_open(&f, &o, NULL);
	static struct result r[10];
	memset(r, 0, sizeof(r));
	int total = 0;
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(ask(&f, 700 + i, i % 2 ? "DEDUP.example.test" : "dedup.example.test", 1,
		                     false, &r[i]),
		                 0);
	double end = ev_time() + 3;
	while (total < 10 && ev_time() < end) {
		run_for(0.02);
		total = 0;
		for (int i = 0; i < 10; i++)
			total += r[i].got;
	}
	assert_int_equal(total, 10);
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(rcode(&r[i]), 0);
		assert_int_equal(tm_get16(r[i].msg), 700 + i);
		assert_memory_equal(r[i].msg + 13, i % 2 ? "DEDUP" : "dedup", 5);
	}
	assert_int_equal(peer_count(&peer_a, "dedup.example.test/A"), 1);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.dedup_hits, 9);
	assert_int_equal(st.upstream_queries, 1);
	fwd_close(&f);
}

static void test_stub_zone_routing(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	peer_mode(&peer_a, "normal");
	peer_mode(&peer_b, "normal");
	f.stub[0] = lo(peer_b.port);
	f.zone = (struct aegis_upstream_zone){"corp.test", f.stub, 1};
	o.zones = &f.zone;
	o.n_zones = 1;
	fwd_open(&f, &o, NULL);
	struct result r = {0};
	assert_int_equal(ask(&f, 1, "db.Corp.Test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 2, "stub.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(peer_count(&peer_b, "db.corp.test/A"), 1);
	assert_int_equal(peer_count(&peer_a, "db.corp.test/A"), 0);
	assert_int_equal(peer_count(&peer_a, "stub.example.test/A"), 1);
	assert_int_equal(peer_count(&peer_b, "stub.example.test/A"), 0);
	fwd_close(&f);
}

static void test_health_backoff_recovery(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	f.def[1] = lo(peer_b.port);
	o.n_servers = 2;
	o.try_timeout_ms = 250;
	o.deadline_ms = 1500;
	o.fail_threshold = 2;
	o.backoff_ms = 700;
	peer_mode(&peer_a, "drop");
	peer_mode(&peer_b, "normal");
	fwd_open(&f, &o, NULL);
	char name[64];
	double t0;
	struct result r;
	/* two queries pay A's timeout, then A is down */
	for (int i = 1; i <= 2; i++) {
		memset(&r, 0, sizeof(r));
		snprintf(name, sizeof(name), "h%d.example.test", i);
		t0 = ev_time();
		assert_int_equal(ask(&f, 1, name, 1, false, &r), 0);
		run_until(&r.got, 1, 3);
		assert_int_equal(rcode(&r), 0);
		assert_true(r.at - t0 >= 0.24);
		assert_int_equal(peer_count(&peer_b, "total") > 0, 1);
	}
	struct aegis_upstream_server_info si;
	assert_int_equal(aegis_upstream_server_info(f.up, 0, &si), 0);
	assert_int_equal(si.health, AEGIS_UPSTREAM_DOWN);
	/* skipped while down: straight to B */
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 1, "h3.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	/* Had A been tried first, the answer would have waited its 250 ms try timeout and A would have
	 * seen the query; the count is the proof (a time bound would fail on a busy machine). */
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(peer_count(&peer_a, "h3.example.test/A"), 0);
	/* A recovers; after the back-off one query probes it and it is up again */
	peer_mode(&peer_a, "normal");
	run_for(0.75);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 1, "h4.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(peer_count(&peer_a, "h4.example.test/A"), 1);
	assert_int_equal(peer_count(&peer_b, "h4.example.test/A"), 0);
	assert_int_equal(aegis_upstream_server_info(f.up, 0, &si), 0);
	assert_int_equal(si.health, AEGIS_UPSTREAM_UP);
	assert_true(si.answered >= 1);
	uint64_t sum = 0;
	for (int b = 0; b < AEGIS_UPSTREAM_RTT_BUCKETS; b++)
		sum += si.rtt_buckets[b];
	assert_int_equal(sum, si.answered);
	fwd_close(&f);
}

/* Opens f with o and a cache that caps TTLs at 1 s and serves expired entries for 60 s, has peer A answer
 * name (query ID 1) once, waits until the entry has expired, and makes peer A silent. */
static void open_expired(struct fwd *f, struct aegis_upstream_opts *o, const char *name)
{
	struct aegis_cache_opts co;
	aegis_cache_opts_default(&co);
	co.max_ttl = 1;
	co.stale_max = 60;
	peer_mode(&peer_a, "normal");
	fwd_open(f, o, &co);
	struct result r = {0};
	assert_int_equal(ask(f, 1, name, 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	run_for(1.1);
	peer_mode(&peer_a, "drop");
}

static void test_serve_stale(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.try_timeout_ms = 100;
	o.deadline_ms = 300;
	open_expired(&f, &o, "stale.example.test");
	struct result r = {0};
	assert_int_equal(ask(&f, 2, "stale.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(tm_get16(r.msg), 2);
	assert_int_equal(tm_get32(r.msg + tm_ttl_off(r.msg, r.len, 0)), 30);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.stale_answers, 1);
	fwd_close(&f);

	/* Overloaded (max_concurrent queries already wait for a silent upstream): the stale answer at once
	 * instead of AEGIS_ELIMIT (SERVFAIL); a name with nothing stale still gets AEGIS_ELIMIT. */
	o.max_concurrent = 1;
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	open_expired(&f, &o, "stale.example.test");
	struct result hold = {0};
	assert_int_equal(ask(&f, 4, "other.example.test", 1, false, &hold), 0); /* waits for the peer */
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 5, "stale.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 1);
	assert_int_equal(r.got, 1);
	assert_int_equal(hold.got, 0); /* the answer did not wait for the held query's timeout */
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(tm_get16(r.msg), 5);
	assert_int_equal(ask(&f, 6, "never.example.test", 1, false, &r), AEGIS_ELIMIT);
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.stale_answers, 1);
	assert_true(st.overload >= 2);
	fwd_close(&f);
	peer_mode(&peer_a, "normal");
}

/* RFC 8767's client-response timer: a query upstream has not answered within stale_answer_timeout_ms
 * gets the expired entry, a query that joins it later gets it at once, the upstream query goes on and
 * refreshes the cache, and a name with nothing stale keeps waiting. */
static void test_stale_answer_timeout(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2500;
	o.stale_answer_timeout_ms = 100;
	open_expired(&f, &o, "timer.example.test");
	long seen = peer_count(&peer_a, "timer.example.test/A");
	struct result r = {0}, none = {0};
	assert_int_equal(ask(&f, 2, "timer.example.test", 1, false, &r), 0);
	assert_int_equal(ask(&f, 3, "nostale.example.test", 1, false, &none), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_int_equal(tm_get16(r.msg), 2);
	assert_int_equal(tm_get32(r.msg + tm_ttl_off(r.msg, r.len, 0)), 30); /* the stale TTL */
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.stale_timeouts, 1);
	assert_int_equal(st.servfails, 0);
	assert_int_equal(none.got, 0); /* nothing stale: still waiting for upstream */
	/* the upstream query went out and is still in flight: a query that joins it is answered at once */
	assert_int_equal(peer_count_wait(&peer_a, "timer.example.test/A", seen + 1, 1), seen + 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 4, "timer.example.test", 1, false, &r), 0);
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.stale_timeouts, 2);
	assert_int_equal(st.dedup_hits, 1);
	run_until(&r.got, 1, 1);
	assert_int_equal(tm_get16(r.msg), 4);
	/* upstream answers the retry: the cache holds a fresh entry again (TTL 1, not the stale 30) */
	peer_mode(&peer_a, "normal");
	run_until(&none.got, 1, 3);
	assert_int_equal(rcode(&none), 0);
	run_for(0.1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(ask(&f, 5, "timer.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_true(tm_get32(r.msg + tm_ttl_off(r.msg, r.len, 0)) <= 1);
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.stale_timeouts, 2);
	assert_int_equal(st.servfails, 0);
	fwd_close(&f);
}

/* A fake upstream driven by the test: it sees the forwarded query, feeds it back (a loop), and answers
 * with wrong IDs and from a wrong port before the right answer. */
static void test_loop_and_spoofing(void **state)
{
	int fake = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_storage fa = lo(0);
	assert_int_equal(bind(fake, (struct sockaddr *)&fa, sizeof(struct sockaddr_in)), 0);
	socklen_t fl = sizeof(fa);
	assert_int_equal(getsockname(fake, (struct sockaddr *)&fa, &fl), 0);
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	f.def[0] = fa;
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	fwd_open(&f, &o, NULL);
	struct result r = {0};
	assert_int_equal(ask(&f, 0x7777, "loop.example.test", 1, false, &r), 0);
	uint8_t fwd[512];
	struct sockaddr_storage from;
	socklen_t froml = sizeof(from);
	struct pollfd pfd = {.fd = fake, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	ssize_t n = recvfrom(fake, fwd, sizeof(fwd), 0, (struct sockaddr *)&from, &froml);
	assert_true(n > 12);
	assert_int_not_equal(tm_get16(fwd), 0x7777); /* our own random ID, not the client's */

	/* the query comes back to us as a client query, from the port it was sent from (REDIRECT keeps
	 * the source): a loop */
	assert_true(aegis_upstream_is_own_query(f.up, fwd, (size_t)n, &from));
	struct result lr = {0};
	assert_int_equal(aegis_upstream_resolve(f.up, fwd, (size_t)n, &from, 0, on_answer, &lr, NULL), 0);
	run_until(&lr.got, 1, 1);
	assert_int_equal(lr.got, 1);
	assert_int_equal(lr.msg[3] & 0x0F, 2);
	struct tmsg other;
	tm_query(&other, (tm_get16(fwd) + 1) & 0xFFFF, "loop.example.test", 1, false, false, false);
	assert_false(aegis_upstream_is_own_query(f.up, other.b, other.n, &from));
	/* a client that happens to pick the same ID and question from another port is no loop (the
	 * soak test met this: 2 false SERVFAILs in 28 million queries) */
	struct sockaddr_storage client = from;
	((struct sockaddr_in *)&client)->sin_port =
	        htons((uint16_t)(ntohs(((struct sockaddr_in *)&from)->sin_port) ^ 1));
	assert_false(aegis_upstream_is_own_query(f.up, fwd, (size_t)n, &client));
	assert_false(aegis_upstream_is_own_query(f.up, fwd, (size_t)n, NULL));

	/* wrong ID, wrong question, then a spoof from another port: all ignored */
	struct tmsg a;
	uint32_t ttl = 60;
	tm_answer_a(&a, (tm_get16(fwd) + 1) & 0xFFFF, "loop.example.test", 1, &ttl, false);
	assert_int_equal(sendto(fake, a.b, a.n, 0, (struct sockaddr *)&from, froml), (ssize_t)a.n);
	tm_answer_a(&a, tm_get16(fwd), "pool.example.test", 1, &ttl, false);
	assert_int_equal(sendto(fake, a.b, a.n, 0, (struct sockaddr *)&from, froml), (ssize_t)a.n);
	int spoof = socket(AF_INET, SOCK_DGRAM, 0);
	tm_answer_a(&a, tm_get16(fwd), "loop.example.test", 1, &ttl, false);
	assert_int_equal(sendto(spoof, a.b, a.n, 0, (struct sockaddr *)&from, froml), (ssize_t)a.n);
	run_for(0.1);
	assert_int_equal(r.got, 0);
	/* the real answer */
	tm_answer_a(&a, tm_get16(fwd), "LOOP.example.test", 1, &ttl, false);
	assert_int_equal(sendto(fake, a.b, a.n, 0, (struct sockaddr *)&from, froml), (ssize_t)a.n);
	run_until(&r.got, 1, 1);
	assert_int_equal(r.got, 1);
	assert_int_equal(tm_get16(r.msg), 0x7777);
	assert_int_equal(rcode(&r), 0);
	assert_memory_equal(r.msg + 12, "\4loop", 5);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.loops, 1);
	assert_int_equal(st.dropped, 2);
	close(spoof);
	close(fake);
	fwd_close(&f);
}

static void test_cancel_and_limit(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	o.try_timeout_ms = 100;
	o.deadline_ms = 300;
	o.max_concurrent = 3;
	peer_mode(&peer_a, "drop");
	fwd_open(&f, &o, NULL);
	struct result r[4];
	memset(r, 0, sizeof(r));
	struct tmsg q;
	struct aegis_upstream_req *req = NULL;
	tm_query(&q, 1, "c1.example.test", 1, false, false, false);
	assert_int_equal(aegis_upstream_resolve(f.up, q.b, q.n, NULL, 0, on_answer, &r[0], &req), 0);
	assert_non_null(req);
	assert_int_equal(ask(&f, 2, "c2.example.test", 1, true, &r[1]), 0);
	assert_int_equal(ask(&f, 3, "c3.example.test", 1, false, &r[2]), 0);
	assert_int_equal(ask(&f, 4, "c4.example.test", 1, false, &r[3]), AEGIS_ELIMIT);
	aegis_upstream_cancel(f.up, req);
	assert_int_equal(aegis_upstream_cancel_ctx(f.up, &r[1]), 1);
	run_for(0.6);
	assert_int_equal(r[0].got + r[1].got + r[3].got, 0);
	assert_int_equal(r[2].got, 1);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.cancelled, 2);
	assert_int_equal(st.overload, 1);
	assert_int_equal(st.inflight, 0);
	/* a request still queued when the forwarder is freed never calls back */
	assert_int_equal(ask(&f, 5, "c5.example.test", 1, false, &r[3]), 0);
	fwd_close(&f);
	run_for(0.05);
	assert_int_equal(r[3].got, 0);
}

static void test_parallel_mode(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	f.def[1] = lo(peer_b.port);
	o.n_servers = 2;
	o.mode = AEGIS_UPSTREAM_PARALLEL;
	o.try_timeout_ms = 1000;
	o.deadline_ms = 2000;
	peer_mode(&peer_a, "drop");
	peer_mode(&peer_b, "normal");
	fwd_open(&f, &o, NULL);
	struct result r = {0};
	double t0 = ev_time();
	assert_int_equal(ask(&f, 9, "par.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	assert_int_equal(rcode(&r), 0);
	assert_true(r.at - t0 < 0.9); /* B's answer wins without waiting for A's 1 s timeout */
	assert_int_equal(peer_count_wait(&peer_a, "par.example.test/A", 1, 2), 1);
	assert_int_equal(peer_count(&peer_b, "par.example.test/A"), 1);
	fwd_close(&f);
	peer_mode(&peer_a, "normal");
}

static void test_prefetch(void **state)
{
	struct fwd f;
	struct aegis_upstream_opts o;
	opts_a(&f, &o);
	struct aegis_cache_opts co;
	aegis_cache_opts_default(&co);
	co.max_ttl = 1;
	co.prefetch_pct = 99; /* anything older than 10 ms is "about to expire" */
	peer_mode(&peer_a, "normal");
	fwd_open(&f, &o, &co);
	struct result r = {0};
	assert_int_equal(ask(&f, 1, "pf.example.test", 1, false, &r), 0);
	run_until(&r.got, 1, 3);
	run_for(0.05);
	struct tmsg q;
	tm_query(&q, 2, "pf.example.test", 1, false, false, false);
	uint8_t out[512];
	size_t len;
	assert_int_equal(aegis_upstream_answer_cached(f.up, q.b, q.n, false, out, sizeof(out), &len), 0);
	run_for(0.2);
	assert_int_equal(peer_count_wait(&peer_a, "pf.example.test/A", 2, 2), 2);
	struct aegis_upstream_stats st;
	aegis_upstream_get_stats(f.up, &st);
	assert_int_equal(st.prefetches, 1);
	assert_int_equal(st.upstream_queries, 2);
	/* the refreshed entry answers (a fresh one: its prefetch hint is not reported yet) */
	assert_int_equal(aegis_upstream_answer_cached(f.up, q.b, q.n, false, out, sizeof(out), &len), 0);
	fwd_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_forward_types_and_cache),
	        cmocka_unit_test(test_tcp_retry_after_tc),
	        cmocka_unit_test(test_servfail_timeout_refused_down),
	        cmocka_unit_test(test_wrong_answers_ignored),
	        cmocka_unit_test(test_dedup),
	        cmocka_unit_test(test_stub_zone_routing),
	        cmocka_unit_test(test_health_backoff_recovery),
	        cmocka_unit_test(test_serve_stale),
	        cmocka_unit_test(test_stale_answer_timeout),
	        cmocka_unit_test(test_loop_and_spoofing),
	        cmocka_unit_test(test_cancel_and_limit),
	        cmocka_unit_test(test_parallel_mode),
	        cmocka_unit_test(test_prefetch),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
