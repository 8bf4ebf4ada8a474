/* Admin endpoint: the registry, the routing and the libev connection glue. See admin.h. */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aegis/container.h"
#include "aegis/log.h"

#define IN_BUF           16384
#define SECTION_NAME_MAX 32
#define TYPE_PREFIX      "type.aegis.io/aegis.admin.v1."

struct section {
	char name[SECTION_NAME_MAX];
	aegis_admin_dump_fn fn;
	void *user;
};

struct metrics_fn {
	aegis_admin_metrics_fn fn;
	void *user;
};

struct conn {
	ev_io rio;
	ev_io wio;
	ev_timer idle;
	int fd;
	struct aegis_admin *a;
	struct conn *prev, *next;
	char *out; /* one serialised response at a time */
	size_t out_len, out_off;
	bool close_after;
	size_t in_len;
	char in[IN_BUF];
	struct aegis_admin_http http;
};

struct aegis_admin {
	struct ev_loop *loop;
	int fd;
	ev_io accept_io;
	struct sockaddr_storage addr;
	struct conn *conns;
	unsigned n_conns;
	double start_wall;
	uint64_t requests;
	uint64_t rejected_conns;
	struct section sections[AEGIS_ADMIN_MAX_SECTIONS];
	size_t n_sections;
	struct metrics_fn metrics[AEGIS_ADMIN_MAX_METRICS_FNS];
	size_t n_metrics;
	aegis_admin_ready_fn ready_fn;
	void *ready_user;
	aegis_admin_lookup_fn lookup_fn;
	void *lookup_user;
	bool status_only; /* the status port: health checks only */
};

/* ---- responses ---- */

static void set_text(struct aegis_admin_response *r, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void set_text(struct aegis_admin_response *r, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	r->status = status;
	r->content_type = "text/plain; charset=utf-8";
	r->body = n < 0 ? NULL : s;
	r->body_len = n < 0 ? 0 : (size_t)n;
	if (n < 0)
		r->status = 500;
}

/* Takes the reference to j. */
static void set_json(struct aegis_admin_response *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (s == NULL) {
		set_text(r, 500, "cannot serialise the response\n");
		return;
	}
	size_t n = strlen(s);
	char *b = realloc(s, n + 2);
	if (b == NULL) {
		free(s);
		set_text(r, 500, "out of memory\n");
		return;
	}
	b[n] = '\n';
	b[n + 1] = '\0';
	r->status = status;
	r->content_type = "application/json";
	r->body = b;
	r->body_len = n + 1;
}

static void set_error_json(struct aegis_admin_response *r, int status, const char *msg)
{
	set_json(r, status, json_pack("{s:s}", "error", msg));
}

void aegis_admin_response_free(struct aegis_admin_response *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

char *aegis_admin_response_bytes(const struct aegis_admin_response *resp, bool keep_alive, bool head,
                                 size_t *len)
{
	char hdr[512];
	char allow[64] = "";
	if (resp->allow != NULL)
		snprintf(allow, sizeof(allow), "Allow: %s\r\n", resp->allow);
	int n = snprintf(
	        hdr, sizeof(hdr),
	        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
	        "X-Content-Type-Options: nosniff\r\n%sConnection: %s\r\n\r\n",
	        resp->status, aegis_admin_http_reason(resp->status), resp->content_type, resp->body_len,
	        allow, keep_alive ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return NULL;
	size_t blen = head ? 0 : resp->body_len;
	char *out = malloc((size_t)n + blen);
	if (out == NULL)
		return NULL;
	memcpy(out, hdr, (size_t)n);
	if (blen > 0)
		memcpy(out + n, resp->body, blen);
	*len = (size_t)n + blen;
	return out;
}

/* ---- endpoints ---- */

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "dns" -> "type.aegis.io/aegis.admin.v1.DnsConfigDump" (Envoy's dumps name their message the same way). */
static json_t *type_url(const char *name)
{
	char buf[128];
	char cap[SECTION_NAME_MAX];
	snprintf(cap, sizeof(cap), "%s", name);
	if (cap[0] >= 'a' && cap[0] <= 'z')
		cap[0] = (char)(cap[0] - 32);
	snprintf(buf, sizeof(buf), TYPE_PREFIX "%sConfigDump", cap);
	return json_string(buf);
}

static json_t *server_section(struct aegis_admin *a)
{
	char addr[64] = "?";
	char started[40] = "";
	time_t t = (time_t)a->start_wall;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct sockaddr_storage ss = a->addr;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
		snprintf(addr, sizeof(addr), "%s:%u", host, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		snprintf(addr, sizeof(addr), "[%s]:%u", host, port);
	}
	json_t *sections = json_array();
	json_array_append_new(sections, json_string("server"));
	for (size_t i = 0; i < a->n_sections; i++)
		json_array_append_new(sections, json_string(a->sections[i].name));
	return json_pack("{s:s,s:s,s:f,s:s,s:s,s:i,s:o}", "version", AEGIS_VERSION, "start_time", started,
	                 "uptime_seconds", wall_now() - a->start_wall, "log_level",
	                 aegis_log_level_name(aegis_log_level_current), "admin_address", addr, "pid",
	                 (int)getpid(), "sections", sections);
}

static json_t *dump_one(struct aegis_admin *a, const char *name, json_t *body)
{
	if (body == NULL || !json_is_object(body)) {
		json_decref(body);
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "@type", type_url(name));
	json_object_update(o, body);
	json_decref(body);
	return o;
}

static void config_dump(struct aegis_admin *a, const char *query, struct aegis_admin_response *r)
{
	char resource[SECTION_NAME_MAX * 4];
	char name[512];
	int rl = aegis_admin_http_query_get(query, "resource", resource, sizeof(resource));
	int nl = aegis_admin_http_query_get(query, "name", name, sizeof(name));
	if (rl == -2 || nl == -2) {
		set_error_json(r, 400, "bad resource or name parameter");
		return;
	}
	bool any = rl < 0 || resource[0] == '\0';
	const char *filter = nl >= 0 && name[0] != '\0' ? name : NULL;
	json_t *configs = json_array();
	bool found = false;
	if (any || strcmp(resource, "server") == 0) {
		found = true;
		json_array_append_new(configs, dump_one(a, "server", server_section(a)));
	}
	for (size_t i = 0; i < a->n_sections; i++) {
		struct section *s = &a->sections[i];
		if (!any && strcmp(resource, s->name) != 0)
			continue;
		found = true;
		json_t *o = dump_one(a, s->name, s->fn(s->user, filter));
		if (o == NULL) {
			json_decref(configs);
			char msg[96];
			snprintf(msg, sizeof(msg), "section %s failed", s->name);
			set_error_json(r, 500, msg);
			return;
		}
		json_array_append_new(configs, o);
	}
	if (!found) {
		json_t *avail = json_array();
		json_array_append_new(avail, json_string("server"));
		for (size_t i = 0; i < a->n_sections; i++)
			json_array_append_new(avail, json_string(a->sections[i].name));
		json_decref(configs);
		char msg[200];
		snprintf(msg, sizeof(msg), "no section '%s' in this proxy", resource);
		set_json(r, 404,
		         json_pack("{s:s,s:s,s:o}", "error", msg, "resource", resource, "available", avail));
		return;
	}
	set_json(r, 200, json_pack("{s:o}", "configs", configs));
}

static void builtin_metrics(struct aegis_admin *a, struct aegis_metrics *m)
{
	struct aegis_metric_label v = {"version", AEGIS_VERSION};
	aegis_metrics_family(m, "aegis_build_info", AEGIS_METRIC_GAUGE, "Build information; always 1.");
	aegis_metrics_uint(m, &v, 1, 1);
	aegis_metrics_family(m, "aegis_process_start_time_seconds", AEGIS_METRIC_GAUGE,
	                     "Start time of the proxy since the Unix epoch, in seconds.");
	aegis_metrics_value(m, NULL, 0, a->start_wall);
	aegis_metrics_family(m, "aegis_admin_requests_total", AEGIS_METRIC_COUNTER,
	                     "HTTP requests answered by the admin endpoint.");
	aegis_metrics_uint(m, NULL, 0, a->requests);
	aegis_metrics_family(m, "aegis_admin_connections", AEGIS_METRIC_GAUGE, "Open admin connections.");
	aegis_metrics_uint(m, NULL, 0, a->n_conns);
	aegis_metrics_family(m, "aegis_admin_rejected_connections_total", AEGIS_METRIC_COUNTER,
	                     "Admin connections refused over the connection cap.");
	aegis_metrics_uint(m, NULL, 0, a->rejected_conns);
}

static void prometheus(struct aegis_admin *a, struct aegis_admin_response *r)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, AEGIS_ADMIN_MAX_METRICS_BYTES);
	builtin_metrics(a, &m);
	for (size_t i = 0; i < a->n_metrics; i++)
		a->metrics[i].fn(a->metrics[i].user, &m);
	const char *text;
	size_t len;
	int rc = aegis_metrics_finish(&m, &text, &len);
	if (rc != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "metrics failed", LKV_S("error", aegis_strerror(rc)));
		aegis_metrics_free(&m);
		set_text(r, 500, "metrics failed: %s\n", aegis_strerror(rc));
		return;
	}
	/* The writer's buffer becomes the body (it is NUL-terminated and malloc'd). */
	r->status = 200;
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	r->body = m.buf;
	r->body_len = len;
	if (r->body == NULL)
		set_text(r, 200, "%s", "");
}

static void ready(struct aegis_admin *a, struct aegis_admin_response *r)
{
	char why[200] = "";
	if (a->ready_fn == NULL || a->ready_fn(a->ready_user, why, sizeof(why)))
		set_text(r, 200, "ready\n");
	else
		set_text(r, 503, "not ready: %s\n", why[0] ? why : "starting");
}

static void logging(struct aegis_admin *a, const struct aegis_admin_http_req *req,
                    struct aegis_admin_response *r)
{
	char level[16];
	int ll = aegis_admin_http_query_get(req->query, "level", level, sizeof(level));
	if (req->method != HTTP_POST) {
		if (ll != -1) {
			/* A GET must not change state (a crawler or a prefetching browser would). */
			set_text(r, 405, "use POST /logging?level=LEVEL to change the level\n");
			r->allow = "GET, HEAD, POST";
			return;
		}
		set_text(r, 200, "level: %s\n", aegis_log_level_name(aegis_log_level_current));
		return;
	}
	enum aegis_log_level lvl;
	if (ll < 0 || aegis_log_parse_level(level, &lvl) != 0) {
		set_text(r, 400, "want POST /logging?level=debug|info|warn|error|off\n");
		return;
	}
	enum aegis_log_level old = aegis_log_level_current;
	aegis_log_set_level(lvl);
	/* Written whatever the new level (unless off): whoever reads the log should see why it changed. */
	const struct aegis_log_kv kvs[] = {
	        LKV_S("from", aegis_log_level_name(old)), LKV_S("to", aegis_log_level_name(lvl)), {0}};
	if (lvl != AEGIS_LOG_OFF)
		aegis_log_emit(lvl > AEGIS_LOG_INFO ? lvl : AEGIS_LOG_INFO, "log level changed", kvs);
	set_text(r, 200, "level: %s\n", aegis_log_level_name(lvl));
	(void)a;
}

static void lookup(struct aegis_admin *a, const char *query, struct aegis_admin_response *r)
{
	char name[1024];
	char type[32];
	if (a->lookup_fn == NULL) {
		set_error_json(r, 404, "no lookup in this proxy");
		return;
	}
	int nl = aegis_admin_http_query_get(query, "name", name, sizeof(name));
	int tl = aegis_admin_http_query_get(query, "type", type, sizeof(type));
	if (nl <= 0 || tl == -2) {
		set_error_json(r, 400, "want /dns/lookup?name=NAME[&type=TYPE]");
		return;
	}
	json_t *out = NULL;
	int status = a->lookup_fn(a->lookup_user, name, tl > 0 ? type : NULL, &out);
	if (out == NULL) {
		set_error_json(r, 500, "lookup failed");
		return;
	}
	set_json(r, status, out);
}

static void index_page(struct aegis_admin *a, struct aegis_admin_response *r)
{
	set_text(r, 200,
	         "aegis-proxy %s admin\n"
	         "  GET  /config_dump[?resource=SECTION][&name=FILTER]\n"
	         "  GET  /stats/prometheus\n"
	         "  GET  /healthz/ready, /healthz/live\n"
	         "  GET  /logging, POST /logging?level=LEVEL\n"
	         "  GET  /dns/lookup?name=NAME[&type=TYPE]\n",
	         AEGIS_VERSION);
	(void)a;
}

struct route {
	const char *path;
	bool post; /* POST allowed besides GET/HEAD */
};

static const struct route routes[] = {
        {"/", false},       {"/config_dump", false}, {"/stats/prometheus", false}, {"/healthz/ready", false},
        {"/logging", true}, {"/dns/lookup", false},  {"/healthz/live", false},
};

void aegis_admin_handle(struct aegis_admin *a, const struct aegis_admin_http_req *req,
                        struct aegis_admin_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	a->requests++;
	const struct route *rt = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(req->path, routes[i].path) == 0)
			rt = &routes[i];
	}
	/* The status port answers health checks only: the kubelet reaches it from outside the pod, so
	 * nothing that shows or changes the proxy's state may be there. */
	if (a->status_only && rt != NULL && rt != &routes[3] && rt != &routes[6])
		rt = NULL;
	if (rt == NULL) {
		set_text(resp, 404,
		         a->status_only ? "not found: GET /healthz/ready or /healthz/live\n"
		                        : "not found: see / for the endpoints\n");
		return;
	}
	bool get = req->method == HTTP_GET || req->method == HTTP_HEAD;
	if (!get && !(rt->post && req->method == HTTP_POST)) {
		set_text(resp, 405, "method %s not allowed on %s\n",
		         http_method_str((enum http_method)req->method), rt->path);
		resp->allow = rt->post ? "GET, HEAD, POST" : "GET, HEAD";
		return;
	}
	if (rt == &routes[0])
		index_page(a, resp);
	else if (rt == &routes[1])
		config_dump(a, req->query, resp);
	else if (rt == &routes[2])
		prometheus(a, resp);
	else if (rt == &routes[3])
		ready(a, resp);
	else if (rt == &routes[4])
		logging(a, req, resp);
	else if (rt == &routes[6])
		set_text(resp, 200, "live\n"); /* the loop is running: it answered */
	else
		lookup(a, req->query, resp);
}

/* ---- registry ---- */

int aegis_admin_add_section(struct aegis_admin *a, const char *name, aegis_admin_dump_fn fn, void *user)
{
	size_t n = strlen(name);
	if (n == 0 || n >= SECTION_NAME_MAX || fn == NULL ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		return AEGIS_EINVAL;
	if (strcmp(name, "server") == 0)
		return AEGIS_EEXIST;
	for (size_t i = 0; i < a->n_sections; i++) {
		if (strcmp(a->sections[i].name, name) == 0)
			return AEGIS_EEXIST;
	}
	if (a->n_sections == AEGIS_ADMIN_MAX_SECTIONS)
		return AEGIS_ELIMIT;
	struct section *s = &a->sections[a->n_sections++];
	memcpy(s->name, name, n + 1);
	s->fn = fn;
	s->user = user;
	return 0;
}

int aegis_admin_add_metrics(struct aegis_admin *a, aegis_admin_metrics_fn fn, void *user)
{
	if (fn == NULL)
		return AEGIS_EINVAL;
	if (a->n_metrics == AEGIS_ADMIN_MAX_METRICS_FNS)
		return AEGIS_ELIMIT;
	a->metrics[a->n_metrics++] = (struct metrics_fn){fn, user};
	return 0;
}

void aegis_admin_set_status_only(struct aegis_admin *a)
{
	a->status_only = true;
}

void aegis_admin_set_ready(struct aegis_admin *a, aegis_admin_ready_fn fn, void *user)
{
	a->ready_fn = fn;
	a->ready_user = user;
}

void aegis_admin_set_lookup(struct aegis_admin *a, aegis_admin_lookup_fn fn, void *user)
{
	a->lookup_fn = fn;
	a->lookup_user = user;
}

void aegis_admin_local_addr(const struct aegis_admin *a, struct sockaddr_storage *out)
{
	*out = a->addr;
}

/* ---- connections ---- */

static void conn_close(struct conn *c)
{
	struct aegis_admin *a = c->a;
	ev_io_stop(a->loop, &c->rio);
	ev_io_stop(a->loop, &c->wio);
	ev_timer_stop(a->loop, &c->idle);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->n_conns--;
	aegis_admin_http_free(&c->http);
	free(c->out);
	free(c);
}

/* Writes the pending response. Returns 1 when it is all written, 0 when the socket is full (the write
 * watcher is started), -1 when the connection was closed. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->a->loop, &c->wio);
				return 0;
			}
			conn_close(c);
			return -1;
		}
		c->out_off += (size_t)w;
	}
	ev_io_stop(c->a->loop, &c->wio);
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after) {
		conn_close(c);
		return -1;
	}
	return 1;
}

static int conn_respond(struct conn *c, const struct aegis_admin_response *resp, bool keep_alive, bool head)
{
	size_t len = 0;
	char *bytes = aegis_admin_response_bytes(resp, keep_alive, head, &len);
	if (bytes == NULL) {
		conn_close(c);
		return -1;
	}
	c->out = bytes;
	c->out_len = len;
	c->out_off = 0;
	c->close_after = !keep_alive;
	return conn_flush(c);
}

/* Answers the complete requests buffered on c, one at a time: the next is parsed only once the previous
 * response is fully written. Returns -1 when the connection was closed. */
static int conn_process(struct conn *c)
{
	while (c->out == NULL && c->in_len > 0) {
		size_t used = 0;
		enum aegis_admin_http_state st = aegis_admin_http_feed(&c->http, c->in, c->in_len, &used);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (st == AEGIS_ADMIN_HTTP_MORE)
			break;
		struct aegis_admin_response resp;
		int rc;
		if (st == AEGIS_ADMIN_HTTP_ERROR) {
			memset(&resp, 0, sizeof(resp));
			c->a->requests++;
			set_text(&resp, c->http.status, "%s\n", aegis_admin_http_reason(c->http.status));
			AEGIS_LOG(AEGIS_LOG_DEBUG, "admin request rejected", LKV_I("status", c->http.status));
			rc = conn_respond(c, &resp, false, false);
			aegis_admin_response_free(&resp);
			return rc < 0 ? -1 : 0;
		}
		const struct aegis_admin_http_req *req = &c->http.req;
		aegis_admin_handle(c->a, req, &resp);
		AEGIS_LOG(AEGIS_LOG_DEBUG, "admin request",
		          LKV_S("method", http_method_str((enum http_method)req->method)),
		          LKV_S("path", req->path), LKV_I("status", resp.status));
		bool keep_alive = req->keep_alive, head = req->method == HTTP_HEAD;
		aegis_admin_http_next(&c->http);
		rc = conn_respond(c, &resp, keep_alive, head);
		aegis_admin_response_free(&resp);
		if (rc < 0)
			return -1;
	}
	/* Read more only while nothing is waiting to be written: a client that pipelines without reading
	 * its responses stalls itself, not the proxy. */
	if (c->out == NULL)
		ev_io_start(c->a->loop, &c->rio);
	else
		ev_io_stop(c->a->loop, &c->rio);
	return 0;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, rio);
	if (c->in_len == sizeof(c->in)) {
		ev_io_stop(loop, &c->rio); /* cannot happen: the parser consumes what it is given */
		return;
	}
	ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (r == 0) {
		conn_close(c);
		return;
	}
	if (r < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c);
		return;
	}
	c->in_len += (size_t)r;
	ev_timer_again(loop, &c->idle);
	(void)conn_process(c);
	(void)revents;
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, wio);
	ev_timer_again(loop, &c->idle);
	if (conn_flush(c) == 1)
		(void)conn_process(c);
	(void)revents;
}

static void conn_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close(container_of(w, struct conn, idle));
	(void)loop;
	(void)revents;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aegis_admin *a = container_of(w, struct aegis_admin, accept_io);
	for (int i = 0; i < 16; i++) {
		int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (a->n_conns >= AEGIS_ADMIN_MAX_CONNS) {
			/* Best effort, never blocking: an operator's curl sees why instead of hanging. */
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			                           "Connection: close\r\n\r\n";
			a->rejected_conns++;
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		struct conn *c = malloc(sizeof(*c));
		if (c == NULL) {
			close(fd);
			return;
		}
		memset(c, 0, offsetof(struct conn, in));
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->a = a;
		aegis_admin_http_init(&c->http);
		ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
		ev_init(&c->idle, conn_idle_cb);
		c->idle.repeat = AEGIS_ADMIN_IDLE_MS / 1000.0;
		ev_timer_again(loop, &c->idle);
		ev_io_start(loop, &c->rio);
		c->next = a->conns;
		if (a->conns)
			a->conns->prev = c;
		a->conns = c;
		a->n_conns++;
	}
	(void)revents;
}

/* ---- setup ---- */

int aegis_admin_new(struct ev_loop *loop, const struct sockaddr_storage *addr, struct aegis_admin **out)
{
	char name[64] = "?";
	struct aegis_admin *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return AEGIS_ENOMEM;
	a->loop = loop;
	a->start_wall = wall_now();
	socklen_t alen =
	        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	a->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0)
		goto fail;
	int one = 1;
	setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (addr->ss_family == AF_INET6)
		setsockopt(a->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(a->fd, (const struct sockaddr *)addr, alen) != 0 || listen(a->fd, 64) != 0)
		goto fail;
	socklen_t sl = sizeof(a->addr);
	if (getsockname(a->fd, (struct sockaddr *)&a->addr, &sl) != 0)
		goto fail;
	ev_io_init(&a->accept_io, accept_cb, a->fd, EV_READ);
	ev_io_start(loop, &a->accept_io);
	*out = a;
	return 0;
fail:;
	int e = errno;
	struct sockaddr_storage copy = *addr;
	if (copy.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&copy)->sin_addr, name, sizeof(name));
	else if (copy.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&copy)->sin6_addr, name, sizeof(name));
	AEGIS_LOG(AEGIS_LOG_ERROR, "cannot listen (admin)", LKV_S("addr", name),
	          LKV_I("port", ntohs(((struct sockaddr_in *)&copy)->sin_port)), LKV_S("error", strerror(e)));
	if (a->fd >= 0)
		close(a->fd);
	free(a);
	return AEGIS_ESYS;
}

void aegis_admin_free(struct aegis_admin *a)
{
	if (a == NULL)
		return;
	while (a->conns)
		conn_close(a->conns);
	ev_io_stop(a->loop, &a->accept_io);
	close(a->fd);
	free(a);
}
