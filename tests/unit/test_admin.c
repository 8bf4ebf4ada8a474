/* Tests proxy/admin.c (routing, registry, the endpoints' status codes and bodies, the connection code
 * over real loopback sockets: keep-alive, pipelining, limits, the connection cap), the DNS glue of
 * proxy/admin_sections.c (readiness flips when the first table arrives, dump filters, metrics),
 * proxy/admin_lookup.c and proxy/admin_forward.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"
#include "admin_forward.h"
#include "admin_lookup.h"
#include "admin_sections.h"
#include "aegis/log.h"
#include "model_builders.h"

struct fx {
	struct ev_loop *loop;
	struct aegis_admin *admin;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->loop = ev_loop_new(EVFLAG_AUTO);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (aegis_admin_new(f->loop, &ss, &f->admin) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	aegis_admin_free(f->admin);
	ev_loop_destroy(f->loop);
	free(f);
	return 0;
}

/* Routes one request without sockets; the caller frees r. */
static void call(struct fx *f, int method, const char *path, const char *query,
                 struct aegis_admin_response *r)
{
	struct aegis_admin_http_req req = {.method = method, .path = path, .query = query, .body = ""};
	aegis_admin_handle(f->admin, &req, r);
}

static json_t *call_json(struct fx *f, const char *path, const char *query, int want_status)
{
	struct aegis_admin_response r;
	call(f, HTTP_GET, path, query, &r);
	assert_int_equal(r.status, want_status);
	assert_string_equal(r.content_type, "application/json");
	json_error_t e;
	json_t *j = json_loadb(r.body, r.body_len, 0, &e);
	assert_non_null(j);
	aegis_admin_response_free(&r);
	return j;
}

static char apple[] = "apple", pear[] = "pear", x[] = "x";
static const char *last_filter; /* NULL or filter_buf: the admin's string lives only during the call */
static char filter_buf[64];
static json_t *dump_fruit(void *user, const char *name)
{
	last_filter = name ? filter_buf : NULL;
	snprintf(filter_buf, sizeof(filter_buf), "%s", name ? name : "");
	return json_pack("{s:s,s:i}", "fruit", (const char *)user, "n", 3);
}
static json_t *dump_fail(void *user, const char *name)
{
	(void)user;
	(void)name;
	return NULL;
}

static void test_routing_errors(void **state)
{
	struct fx *f = *state;
	struct aegis_admin_response r;
	call(f, HTTP_GET, "/nope", "", &r);
	assert_int_equal(r.status, 404);
	aegis_admin_response_free(&r);
	call(f, HTTP_DELETE, "/config_dump", "", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	aegis_admin_response_free(&r);
	call(f, HTTP_POST, "/stats/prometheus", "", &r);
	assert_int_equal(r.status, 405);
	aegis_admin_response_free(&r);
	call(f, HTTP_PUT, "/logging", "level=debug", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD, POST");
	aegis_admin_response_free(&r);
	/* A GET never changes the level. */
	call(f, HTTP_GET, "/logging", "level=debug", &r);
	assert_int_equal(r.status, 405);
	aegis_admin_response_free(&r);
	call(f, HTTP_GET, "/", "", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "/config_dump"));
	aegis_admin_response_free(&r);
}

static void test_registry(void **state)
{
	struct fx *f = *state;
	assert_int_equal(aegis_admin_add_section(f->admin, "fruit", dump_fruit, apple), 0);
	assert_int_equal(aegis_admin_add_section(f->admin, "fruit", dump_fruit, pear), AEGIS_EEXIST);
	assert_int_equal(aegis_admin_add_section(f->admin, "server", dump_fruit, x), AEGIS_EEXIST);
	assert_int_equal(aegis_admin_add_section(f->admin, "Bad-Name", dump_fruit, x), AEGIS_EINVAL);
	assert_int_equal(aegis_admin_add_section(f->admin, "", dump_fruit, x), AEGIS_EINVAL);
	char name[16];
	int rc = 0;
	for (int i = 0; rc == 0 && i < 100; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		rc = aegis_admin_add_section(f->admin, name, dump_fruit, x);
	}
	assert_int_equal(rc, AEGIS_ELIMIT);
}

static void test_config_dump(void **state)
{
	struct fx *f = *state;
	assert_int_equal(aegis_admin_add_section(f->admin, "fruit", dump_fruit, apple), 0);
	json_t *j = call_json(f, "/config_dump", "", 200);
	json_t *configs = json_object_get(j, "configs");
	assert_int_equal(json_array_size(configs), 2);
	json_t *server = json_array_get(configs, 0);
	assert_string_equal(json_string_value(json_object_get(server, "@type")),
	                    "type.aegis.io/aegis.admin.v1.ServerConfigDump");
	assert_string_equal(json_string_value(json_object_get(server, "version")), AEGIS_VERSION);
	json_t *fruit = json_array_get(configs, 1);
	/* "@type" comes first, then the section's own fields. */
	assert_string_equal(json_object_iter_key(json_object_iter(fruit)), "@type");
	assert_string_equal(json_string_value(json_object_get(fruit, "@type")),
	                    "type.aegis.io/aegis.admin.v1.FruitConfigDump");
	assert_string_equal(json_string_value(json_object_get(fruit, "fruit")), "apple");
	assert_null(last_filter);
	json_decref(j);

	j = call_json(f, "/config_dump", "resource=fruit&name=red%20delicious", 200);
	assert_int_equal(json_array_size(json_object_get(j, "configs")), 1);
	assert_string_equal(last_filter, "red delicious");
	json_decref(j);

	j = call_json(f, "/config_dump", "resource=xds", 404);
	assert_string_equal(json_string_value(json_object_get(j, "resource")), "xds");
	assert_int_equal(json_array_size(json_object_get(j, "available")), 2);
	json_decref(j);

	j = call_json(f, "/config_dump", "resource=%zz", 400);
	json_decref(j);

	assert_int_equal(aegis_admin_add_section(f->admin, "broken", dump_fail, NULL), 0);
	j = call_json(f, "/config_dump", "resource=broken", 500);
	json_decref(j);
}

static bool ready_flag;
static bool ready_cb(void *user, char *why, size_t len)
{
	(void)user;
	if (!ready_flag)
		snprintf(why, len, "no config yet");
	return ready_flag;
}

static void test_ready(void **state)
{
	struct fx *f = *state;
	struct aegis_admin_response r;
	call(f, HTTP_GET, "/healthz/ready", "", &r);
	assert_int_equal(r.status, 200); /* nothing registered: ready */
	aegis_admin_response_free(&r);
	aegis_admin_set_ready(f->admin, ready_cb, NULL);
	ready_flag = false;
	call(f, HTTP_GET, "/healthz/ready", "", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "not ready: no config yet\n");
	aegis_admin_response_free(&r);
	ready_flag = true;
	call(f, HTTP_GET, "/healthz/ready", "", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ready\n");
	aegis_admin_response_free(&r);
}

static void test_logging(void **state)
{
	struct fx *f = *state;
	struct aegis_admin_response r;
	enum aegis_log_level saved = aegis_log_level_current;
	aegis_log_set_level(AEGIS_LOG_OFF); /* keep the test's output quiet */
	call(f, HTTP_POST, "/logging", "level=debug", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "level: debug\n");
	assert_int_equal(aegis_log_level_current, AEGIS_LOG_DEBUG);
	aegis_admin_response_free(&r);
	aegis_log_set_level(AEGIS_LOG_OFF);
	call(f, HTTP_GET, "/logging", "", &r);
	assert_string_equal(r.body, "level: off\n");
	aegis_admin_response_free(&r);
	call(f, HTTP_POST, "/logging", "level=loud", &r);
	assert_int_equal(r.status, 400);
	aegis_admin_response_free(&r);
	call(f, HTTP_POST, "/logging", "", &r);
	assert_int_equal(r.status, 400);
	aegis_admin_response_free(&r);
	aegis_log_set_level(saved);
}

static void good_metrics(void *user, struct aegis_metrics *m)
{
	(void)user;
	aegis_metrics_family(m, "test_things_total", AEGIS_METRIC_COUNTER, "Things.");
	aegis_metrics_uint(m, NULL, 0, 42);
}
static void bad_metrics(void *user, struct aegis_metrics *m)
{
	(void)user;
	aegis_metrics_family(m, "bad name", AEGIS_METRIC_COUNTER, "x");
}

static void test_prometheus(void **state)
{
	struct fx *f = *state;
	struct aegis_admin_response r;
	assert_int_equal(aegis_admin_add_metrics(f->admin, good_metrics, NULL), 0);
	call(f, HTTP_GET, "/stats/prometheus", "", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body, "aegis_build_info{version=\"" AEGIS_VERSION "\"} 1\n"));
	assert_non_null(strstr(r.body, "# TYPE test_things_total counter\ntest_things_total 42\n"));
	aegis_admin_response_free(&r);
	enum aegis_log_level saved = aegis_log_level_current;
	aegis_log_set_level(AEGIS_LOG_OFF);
	assert_int_equal(aegis_admin_add_metrics(f->admin, bad_metrics, NULL), 0);
	call(f, HTTP_GET, "/stats/prometheus", "", &r);
	assert_int_equal(r.status, 500);
	aegis_admin_response_free(&r);
	aegis_log_set_level(saved);
}

static int lookup_cb(void *user, const char *name, const char *type, json_t **out)
{
	(void)user;
	*out = json_pack("{s:s,s:s?}", "name", name, "type", type);
	return 200;
}

static void test_lookup_route(void **state)
{
	struct fx *f = *state;
	json_t *j = call_json(f, "/dns/lookup", "name=x", 404);
	json_decref(j);
	aegis_admin_set_lookup(f->admin, lookup_cb, NULL);
	j = call_json(f, "/dns/lookup", "", 400);
	json_decref(j);
	j = call_json(f, "/dns/lookup", "name=a.b&type=AAAA", 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "a.b");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "AAAA");
	json_decref(j);
}

/* ---- over sockets ---- */

static int connect_admin(struct fx *f)
{
	struct sockaddr_storage ss;
	aegis_admin_local_addr(f->admin, &ss);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	int rc = connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in));
	assert_true(rc == 0 || errno == EINPROGRESS);
	return fd;
}

/* Runs the loop until fd has received want bytes containing every string of needles, or until the
 * peer closes (then *closed is set). Returns what was read (static buffer). */
static const char *pump(struct fx *f, int fd, const char *needle, bool *closed)
{
	static char buf[1 << 16];
	size_t len = 0;
	*closed = false;
	for (int i = 0; i < 2000; i++) {
		ev_run(f->loop, EVRUN_NOWAIT);
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (r == 0) {
			*closed = true;
			break;
		}
		if (r > 0) {
			len += (size_t)r;
			buf[len] = '\0';
			if (needle != NULL && strstr(buf, needle) != NULL)
				break;
		}
		usleep(500);
	}
	buf[len] = '\0';
	return buf;
}

static void send_all(int fd, const char *s, size_t n)
{
	size_t off = 0;
	for (int i = 0; off < n && i < 10000; i++) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			off += (size_t)w;
		else
			usleep(100);
	}
	assert_int_equal(off, n);
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_socket_keepalive_pipelining(void **state)
{
	struct fx *f = *state;
	int fd = connect_admin(f);
	const char *two =
	        "GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
	ev_run(f->loop, EVRUN_NOWAIT);
	send_all(fd, two, strlen(two));
	bool closed;
	const char *got = pump(f, fd, "not found", &closed);
	assert_false(closed);
	/* Responses in request order, both keep-alive. */
	const char *ok = strstr(got, "HTTP/1.1 200 OK");
	const char *nf = strstr(got, "HTTP/1.1 404 Not Found");
	assert_non_null(ok);
	assert_non_null(nf);
	assert_true(ok < nf);
	assert_int_equal(count(got, "Connection: keep-alive"), 2);
	/* The same connection serves a HEAD (no body), then closes on request. */
	const char *head = "HEAD /healthz/ready HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n";
	send_all(fd, head, strlen(head));
	got = pump(f, fd, NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(got, "Content-Length: 6\r\n"));
	assert_null(strstr(got, "\r\n\r\nready"));
	assert_non_null(strstr(got, "Connection: close"));
	close(fd);
}

static void test_socket_limits(void **state)
{
	struct fx *f = *state;
	int fd = connect_admin(f);
	char big[10000];
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'a', 9000);
	memcpy(big + n + 9000, "\r\n\r\n", 4);
	ev_run(f->loop, EVRUN_NOWAIT);
	send_all(fd, big, (size_t)n + 9004);
	bool closed;
	const char *got = pump(f, fd, NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(got, "HTTP/1.1 431 "));
	close(fd);

	fd = connect_admin(f);
	const char *body = "POST /logging?level=info HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
	ev_run(f->loop, EVRUN_NOWAIT);
	send_all(fd, body, strlen(body));
	got = pump(f, fd, NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(got, "HTTP/1.1 413 "));
	close(fd);

	fd = connect_admin(f);
	const char *method = "DELETE /config_dump HTTP/1.1\r\n\r\n";
	ev_run(f->loop, EVRUN_NOWAIT);
	send_all(fd, method, strlen(method));
	got = pump(f, fd, "GET, HEAD", &closed);
	assert_non_null(strstr(got, "HTTP/1.1 405 "));
	assert_non_null(strstr(got, "Allow: GET, HEAD\r\n"));
	close(fd);
}

static void test_socket_conn_cap(void **state)
{
	struct fx *f = *state;
	int fds[AEGIS_ADMIN_MAX_CONNS + 1];
	for (int i = 0; i < AEGIS_ADMIN_MAX_CONNS; i++) {
		fds[i] = connect_admin(f);
		ev_run(f->loop, EVRUN_NOWAIT);
	}
	for (int i = 0; i < 20; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	fds[AEGIS_ADMIN_MAX_CONNS] = connect_admin(f);
	bool closed;
	const char *got = pump(f, fds[AEGIS_ADMIN_MAX_CONNS], NULL, &closed);
	assert_true(closed);
	assert_non_null(strstr(got, "HTTP/1.1 503 "));
	/* Connections under the cap still work. */
	send_all(fds[0], "GET /healthz/ready HTTP/1.1\r\n\r\n", 31);
	got = pump(f, fds[0], "ready", &closed);
	assert_non_null(strstr(got, "200 OK"));
	for (int i = 0; i <= AEGIS_ADMIN_MAX_CONNS; i++)
		close(fds[i]);
}

/* ---- the DNS glue ---- */

struct dns_fx {
	struct aegis_config *cfg;
	struct aegis_table *table;
	struct aegis_search *search;
	struct aegis_dns_server *dns;
	struct aegis_admin_sections *sections;
};

static void dns_setup(struct fx *f, struct dns_fx *d)
{
	memset(d, 0, sizeof(*d));
	d->cfg = aegis_config_new();
	struct aegis_k8s_service *svc = mb_svc(d->cfg, "", "default", "reviews", "10.96.10.11");
	mb_svc_port(d->cfg, svc, "http", 9080, "TCP");
	mb_se(d->cfg, "api", "api.example.com", "192.0.2.10");
	mb_se(d->cfg, "wild", "*.wikipedia.org", "192.0.2.20");
	struct aegis_table_opts to = {0};
	assert_int_equal(aegis_table_build(d->cfg, &to, &d->table, NULL), 0);
	const char *sl[] = {"default.svc.cluster.local", "svc.cluster.local", "cluster.local"};
	struct aegis_search_opts so = {.namespace_ = "default", .search = sl, .n_search = 3};
	assert_int_equal(aegis_search_new(&so, &d->search), 0);
	struct aegis_dns_server_opts dopts = {.n_listen = 1};
	struct sockaddr_in *sin = (struct sockaddr_in *)&dopts.listen[0];
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(aegis_dns_server_new(f->loop, &dopts, d->search, &d->dns), 0);
	struct aegis_admin_dns_ctx ctx = {
	        .dns = d->dns,
	        .search = d->search,
	        .cluster_domain = "cluster.local",
	        .dns_listen = dopts.listen,
	        .n_dns_listen = 1,
	};
	assert_int_equal(aegis_admin_sections_new(f->admin, &ctx, &d->sections), 0);
}

static void dns_teardown(struct fx *f, struct dns_fx *d)
{
	/* The admin goes first (it holds the sections); the fixture's teardown would free it again. */
	aegis_admin_free(f->admin);
	f->admin = NULL;
	aegis_admin_sections_free(d->sections);
	aegis_dns_server_free(d->dns);
	aegis_search_free(d->search);
	aegis_config_free(d->cfg);
}

static void test_sections_ready_flips(void **state)
{
	struct fx *f = *state;
	struct dns_fx d;
	dns_setup(f, &d);
	struct aegis_admin_response r;
	call(f, HTTP_GET, "/healthz/ready", "", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "not ready: no config yet\n");
	aegis_admin_response_free(&r);
	json_t *j = call_json(f, "/config_dump", "resource=dns", 200);
	json_t *dns = json_array_get(json_object_get(j, "configs"), 0);
	assert_true(json_is_false(json_object_get(dns, "have_table")));
	json_decref(j);

	aegis_dns_server_post_table(d.dns, d.table); /* the server takes our reference */
	for (int i = 0; i < 100 && aegis_dns_server_table(d.dns) == NULL; i++)
		ev_run(f->loop, EVRUN_NOWAIT);
	call(f, HTTP_GET, "/healthz/ready", "", &r);
	assert_int_equal(r.status, 200);
	aegis_admin_response_free(&r);

	/* The dns section: every node, and the ?name= substring filter (case-insensitive). */
	j = call_json(f, "/config_dump", "resource=dns", 200);
	dns = json_array_get(json_object_get(j, "configs"), 0);
	assert_true(json_integer_value(json_object_get(dns, "table_names")) > 3);
	assert_int_equal(json_array_size(json_object_get(dns, "names")),
	                 json_integer_value(json_object_get(dns, "table_names")));
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=dns&name=API.example.com.", 200);
	dns = json_array_get(json_object_get(j, "configs"), 0);
	json_t *names = json_object_get(dns, "names");
	bool found = false;
	size_t i;
	json_t *node;
	json_array_foreach(names, i, node)
	{
		const char *n = json_string_value(json_object_get(node, "name"));
		assert_non_null(strstr(n, "api.example.com"));
		if (strcmp(n, "api.example.com.") == 0) {
			found = true;
			assert_string_equal(json_string_value(json_object_get(node, "kind")), "host");
			assert_string_equal(
			        json_string_value(json_array_get(json_object_get(node, "addresses"), 0)),
			        "192.0.2.10");
		}
	}
	assert_true(found);
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=dns&name=wikipedia", 200);
	dns = json_array_get(json_object_get(j, "configs"), 0);
	node = json_array_get(json_object_get(dns, "names"), 0);
	assert_string_equal(json_string_value(json_object_get(node, "name")), "*.wikipedia.org.");
	assert_string_equal(json_string_value(json_object_get(node, "kind")), "wildcard");
	json_decref(j);
	/* PTR nodes store their address, not their name: the dump formats it */
	j = call_json(f, "/config_dump", "resource=dns&name=10.2.0.192.in-addr.arpa.", 200);
	dns = json_array_get(json_object_get(j, "configs"), 0);
	assert_int_equal(json_array_size(json_object_get(dns, "names")), 1);
	node = json_array_get(json_object_get(dns, "names"), 0);
	assert_string_equal(json_string_value(json_object_get(node, "name")), "10.2.0.192.in-addr.arpa.");
	assert_string_equal(json_string_value(json_object_get(node, "kind")), "ptr");
	assert_string_equal(json_string_value(json_array_get(json_object_get(node, "ptr"), 0)),
	                    "api.example.com.");
	json_decref(j);

	/* search, config (no file source), listeners. */
	j = call_json(f, "/config_dump", "resource=search", 200);
	json_t *s = json_array_get(json_object_get(j, "configs"), 0);
	assert_string_equal(json_string_value(json_object_get(s, "namespace")), "default");
	assert_int_equal(json_array_size(json_object_get(s, "suffixes")), 3);
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=config", 200);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(json_object_get(j, "configs"), 0), "source")),
	                    "none");
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=listeners", 200);
	json_t *ls = json_object_get(json_array_get(json_object_get(j, "configs"), 0), "listeners");
	assert_int_equal(json_array_size(ls), 2);
	json_decref(j);

	/* Metrics: the DNS families are there and well formed. */
	call(f, HTTP_GET, "/stats/prometheus", "", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "# TYPE aegis_dns_answer_duration_seconds histogram\n"));
	assert_non_null(strstr(r.body, "aegis_dns_answer_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
	assert_non_null(strstr(r.body, "aegis_dns_queries_received_total{transport=\"udp\"} 0\n"));
	assert_non_null(strstr(r.body, "aegis_dns_table_names "));
	aegis_admin_response_free(&r);

	/* /dns/lookup through the registered callback. */
	j = call_json(f, "/dns/lookup", "name=reviews&type=A", 200);
	assert_string_equal(json_string_value(json_object_get(j, "match")), "alias");
	json_decref(j);
	dns_teardown(f, &d);
}

static void test_lookup_answers(void **state)
{
	struct fx *f = *state;
	struct dns_fx d;
	dns_setup(f, &d);
	struct aegis_answer_ctx ctx = {.table = d.table, .search = d.search, .ttl = 30};
	json_t *j;
	assert_int_equal(aegis_admin_lookup(&ctx, "api.example.com", NULL, &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "rcode")), "NOERROR");
	assert_true(json_is_false(json_object_get(j, "forwarded")));
	json_t *ans = json_array_get(json_object_get(j, "answer"), 0);
	assert_string_equal(json_string_value(json_object_get(ans, "type")), "A");
	assert_string_equal(json_string_value(json_object_get(ans, "data")), "192.0.2.10");
	assert_int_equal(json_integer_value(json_object_get(ans, "ttl")), 30);
	json_t *flags = json_object_get(j, "flags");
	assert_string_equal(json_string_value(json_array_get(flags, 1)), "aa");
	json_decref(j);

	/* NODATA, SRV, PTR from an address, a wildcard, and a forwarded name. */
	assert_int_equal(aegis_admin_lookup(&ctx, "api.example.com", "aaaa", &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "answer")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "rcode")), "NOERROR");
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "_http._tcp.reviews.default.svc.cluster.local", "SRV", &j),
	                 200);
	ans = json_array_get(json_object_get(j, "answer"), 0);
	assert_string_equal(json_string_value(json_object_get(ans, "data")),
	                    "0 10 9080 reviews.default.svc.cluster.local.");
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "192.0.2.10", NULL, &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "10.2.0.192.in-addr.arpa.");
	ans = json_array_get(json_object_get(j, "answer"), 0);
	assert_string_equal(json_string_value(json_object_get(ans, "data")), "api.example.com.");
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "En.Wikipedia.org", "A", &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "match")), "wildcard");
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "www.example.org", "TYPE65", &j), 200);
	assert_true(json_is_true(json_object_get(j, "forwarded")));
	assert_string_equal(json_string_value(json_object_get(j, "type")), "TYPE65");
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "x.example", "BOGUS", &j), 400);
	json_decref(j);
	assert_int_equal(aegis_admin_lookup(&ctx, "a..b", "A", &j), 400);
	json_decref(j);
	assert_int_equal(aegis_admin_lookup_type("65536"), -1);
	assert_int_equal(aegis_admin_lookup_type("-1"), -1);
	assert_int_equal(aegis_admin_lookup_type("srv"), AEGIS_TYPE_SRV);
	aegis_table_unref(d.table);
	dns_teardown(f, &d);
}

static void test_forward_sections(void **state)
{
	struct fx *f = *state;
	struct aegis_cache *cache;
	assert_int_equal(aegis_cache_new(NULL, &cache), 0);
	struct aegis_upstream_opts uo;
	aegis_upstream_opts_default(&uo);
	struct sockaddr_storage servers[2];
	memset(servers, 0, sizeof(servers));
	for (int i = 0; i < 2; i++) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&servers[i];
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)(5300 + i));
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	uo.servers = servers;
	uo.n_servers = 2;
	struct aegis_upstream *up;
	assert_int_equal(aegis_upstream_new(f->loop, &uo, cache, &up), 0);
	assert_int_equal(aegis_admin_forward_register(f->admin, up, cache), 0);
	json_t *j = call_json(f, "/config_dump", "resource=upstreams", 200);
	json_t *servers_j = json_object_get(json_array_get(json_object_get(j, "configs"), 0), "servers");
	assert_int_equal(json_array_size(servers_j), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(servers_j, 1), "address")),
	                    "127.0.0.1:5301");
	assert_string_equal(json_string_value(json_object_get(json_array_get(servers_j, 0), "health")), "up");
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=upstreams&name=5301", 200);
	servers_j = json_object_get(json_array_get(json_object_get(j, "configs"), 0), "servers");
	assert_int_equal(json_array_size(servers_j), 1);
	json_decref(j);
	j = call_json(f, "/config_dump", "resource=cache", 200);
	assert_int_equal(
	        json_integer_value(json_object_get(json_array_get(json_object_get(j, "configs"), 0), "hits")),
	        0);
	json_decref(j);
	struct aegis_admin_response r;
	call(f, HTTP_GET, "/stats/prometheus", "", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "aegis_upstream_server_up{server=\"127.0.0.1:5300\",zone=\".\"} 1\n"));
	assert_non_null(strstr(
	        r.body,
	        "aegis_upstream_rtt_seconds_bucket{server=\"127.0.0.1:5301\",zone=\".\",le=\"+Inf\"} 0\n"));
	/* the cache's counters, each under its own family, in order, then its gauges */
	assert_non_null(strstr(r.body, "# TYPE aegis_cache_hits_total counter\naegis_cache_hits_total 0\n"
	                               "# HELP aegis_cache_stale_hits_total "));
	assert_non_null(strstr(r.body,
	                       "# TYPE aegis_cache_expired_total counter\naegis_cache_expired_total 0\n"
	                       "# HELP aegis_cache_entries Entries in the cache.\n"));
	assert_non_null(strstr(r.body, "aegis_cache_entries{kind=\"negative\"} 0\n"));
	aegis_admin_response_free(&r);
	aegis_admin_free(f->admin);
	f->admin = NULL;
	aegis_upstream_free(up);
	aegis_cache_free(cache);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_routing_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_config_dump, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_logging, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prometheus, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lookup_route, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_socket_keepalive_pipelining, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_socket_limits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_socket_conn_cap, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sections_ready_flips, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lookup_answers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_forward_sections, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
