/* aegis-inject's listener, TLS context and connection threads; request routing. See inject_server.h. */
#include "inject_server.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "aegis/log.h"

/* The identity of the certificate and key files: Kubernetes swaps a mounted Secret by replacing a symlink,
 * so the inode changes even when the mtime would not; stat() follows the link to the new files. */
struct file_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct aegis_inject_server {
	struct aegis_inject_server_opts o;
	int fd;
	int port;
	pthread_mutex_t lock; /* guards ctx: a reload swaps it while connection threads call SSL_new */
	SSL_CTX *ctx;
	struct file_sig cert_sig, key_sig;
	atomic_uint active;
};

const char *aegis_inject_server_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

static void ssl_error(char *err, size_t errlen, const char *what, const char *file)
{
	char detail[256] = "unknown error";
	unsigned long e = ERR_get_error();
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, file, detail);
}

/* h2 first, then HTTP/1.1; a client that offers neither (or no ALPN) gets HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
	static const unsigned char protos[] = "\x02h2\x08http/1.1";
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, protos, sizeof(protos) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *make_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_error(err, errlen, "SSL_CTX_new", "");
		return NULL;
	}
	/* TLS 1.2+ (the API server speaks 1.3); for 1.2 only AEAD suites with forward secrecy, which is also
	 * what RFC 7540 9.2.2 demands of h2. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		ssl_error(err, errlen, "cipher list", "");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_error(err, errlen, "cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errlen, "cannot load key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, "key does not match the certificate", cert);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static bool file_sig(const char *path, struct file_sig *s)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return false;
	*s = (struct file_sig){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	return true;
}

static bool sig_eq(const struct file_sig *a, const struct file_sig *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Called every reload interval from the accept loop. A failed load is a run-time error: logged, and the
 * previous context keeps serving; it is retried at the next check because the signatures are only recorded
 * when a pair loads (a Secret update can briefly show a new certificate with the old key). */
static void maybe_reload(struct aegis_inject_server *s)
{
	struct file_sig c, k;
	if (!file_sig(s->o.cert, &c) || !file_sig(s->o.key, &k))
		return;
	if (sig_eq(&c, &s->cert_sig) && sig_eq(&k, &s->key_sig))
		return;
	char err[512];
	SSL_CTX *ctx = make_ctx(s->o.cert, s->o.key, err, sizeof(err));
	if (ctx == NULL) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "certificate reload rejected; keeping the previous one",
		          LKV_S("error", err));
		return;
	}
	pthread_mutex_lock(&s->lock);
	SSL_CTX *old = s->ctx;
	s->ctx = ctx;
	pthread_mutex_unlock(&s->lock);
	SSL_CTX_free(old); /* live connections hold their own reference through their SSL */
	s->cert_sig = c;
	s->key_sig = k;
	AEGIS_LOG(AEGIS_LOG_INFO, "certificate reloaded", LKV_S("cert", s->o.cert));
}

static int listen_on(const char *addr, int *fd_out, int *port_out, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == '\0') {
		snprintf(err, errlen, "--listen '%s': want ADDR:PORT", addr);
		return AEGIS_EINVAL;
	}
	size_t hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "--listen '%s': address too long", addr);
		return AEGIS_EINVAL;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
	                *ai;
	int g = getaddrinfo(host, colon + 1, &hints, &ai);
	if (g != 0) {
		snprintf(err, errlen, "--listen %s: %s", addr, gai_strerror(g));
		return AEGIS_EINVAL;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "--listen %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return AEGIS_ESYS;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                           : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	return 0;
}

int aegis_inject_server_new(const struct aegis_inject_server_opts *o, struct aegis_inject_server **out,
                            char *err, size_t errlen)
{
	*out = NULL;
	struct aegis_inject_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return AEGIS_ENOMEM;
	}
	s->o = *o;
	s->fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	int rc = AEGIS_EINVAL;
	if (!file_sig(o->cert, &s->cert_sig) || !file_sig(o->key, &s->key_sig)) {
		snprintf(err, errlen, "cannot stat %s or %s: %s", o->cert, o->key, strerror(errno));
		goto fail;
	}
	s->ctx = make_ctx(o->cert, o->key, err, errlen);
	if (s->ctx == NULL)
		goto fail;
	rc = listen_on(o->listen, &s->fd, &s->port, err, errlen);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	aegis_inject_server_free(s);
	return rc;
}

bool aegis_inject_server_free(struct aegis_inject_server *s)
{
	if (s == NULL)
		return true;
	if (atomic_load(&s->active) > 0)
		return false; /* a connection thread still uses it: the process is exiting anyway */
	if (s->fd >= 0)
		close(s->fd);
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return true;
}

int aegis_inject_server_port(const struct aegis_inject_server *s)
{
	return s->port;
}

size_t aegis_inject_server_max_body(const struct aegis_inject_server *s)
{
	return s->o.max_body;
}

int aegis_inject_server_read(struct aegis_inject_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int ok = SSL_read_ex(c->ssl, buf, len, &n);
	if (ok == 1)
		return (int)n;
	return SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

int aegis_inject_server_write_all(struct aegis_inject_conn *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		size_t n = 0;
		if (SSL_write_ex(c->ssl, p, len, &n) != 1)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

void aegis_inject_server_linger(struct aegis_inject_conn *c)
{
	/* Closing a socket with unread bytes makes the kernel send RST, which can destroy the response still
	 * in flight to the client (curl then reports "connection reset" instead of our 413). So: close our
	 * side, then read and drop what the client is still sending, for a bounded time and amount. */
	SSL_shutdown(c->ssl);
	shutdown(c->fd, SHUT_WR);
	struct timeval tv = {.tv_sec = 1};
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[16384];
	size_t total = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));
		clock_gettime(CLOCK_MONOTONIC, &now);
		total += n > 0 ? (size_t)n : 0;
		if (n <= 0 || total > AEGIS_INJECT_LINGER_BYTES || now.tv_sec - start.tv_sec >= 2)
			break;
	}
}

static void set_json(struct aegis_inject_response *r, int status, const char *msg)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	r->status = status;
	r->content_type = "application/json";
	r->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	r->len = r->body ? strlen(r->body) : 0;
	json_decref(j);
}

void aegis_inject_server_route(struct aegis_inject_server *s, const char *method, const char *path,
                               const char *body, size_t len, bool too_large, struct aegis_inject_response *r)
{
	memset(r, 0, sizeof(*r));
	size_t plen = strcspn(path, "?");
	bool is_inject = plen == 7 && strncmp(path, "/inject", 7) == 0;
	bool is_health = (plen == 8 && strncmp(path, "/healthz", 8) == 0) ||
	                 (plen == 7 && strncmp(path, "/readyz", 7) == 0);
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	if (is_health && get) {
		/* Live and ready are the same here: once the listener is up with a certificate, every request
		 * can be answered; there is no upstream to wait for. */
		r->status = 200;
		r->content_type = "text/plain";
		r->body = strdup("ok\n");
		r->len = r->body ? 3 : 0;
		return;
	}
	if (!is_inject && !is_health) {
		set_json(r, 404, "no such path (POST /inject, GET /healthz, GET /readyz)");
		return;
	}
	if (is_health || strcmp(method, "POST") != 0) {
		set_json(r, 405, is_inject ? "POST /inject" : "GET only");
		return;
	}
	if (too_large) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request body larger than %zu bytes", s->o.max_body);
		set_json(r, 413, msg);
		AEGIS_LOG(AEGIS_LOG_WARN, "request rejected", LKV_S("error", msg));
		return;
	}
	struct aegis_inject_reply rep;
	if (aegis_inject_patch_review(s->o.config, body, len, &rep) != 0) {
		set_json(r, 500, "out of memory");
		return;
	}
	r->status = rep.http_status;
	r->content_type = "application/json";
	r->body = rep.body;
	r->len = rep.len;
	if (rep.http_status != 200)
		AEGIS_LOG(AEGIS_LOG_WARN, "request rejected", LKV_I("status", rep.http_status),
		          LKV_S("error", rep.msg));
	else if (!rep.allowed)
		AEGIS_LOG(AEGIS_LOG_WARN, "pod denied", LKV_S("uid", rep.uid), LKV_S("namespace", rep.ns),
		          LKV_S("pod", rep.name), LKV_S("reason", rep.msg));
	else
		AEGIS_LOG(AEGIS_LOG_INFO, rep.outcome == AEGIS_INJECT_PATCHED ? "injected" : "not injected",
		          LKV_S("uid", rep.uid), LKV_S("namespace", rep.ns), LKV_S("pod", rep.name),
		          LKV_S("reason", rep.outcome == AEGIS_INJECT_PATCHED ? ""
		                          : rep.msg[0]                        ? rep.msg
		                                       : aegis_inject_patch_outcome_str(rep.outcome)));
}

void aegis_inject_server_response_free(struct aegis_inject_response *r)
{
	free(r->body);
	r->body = NULL;
}

static void *conn_main(void *arg)
{
	struct aegis_inject_conn *c = arg;
	if (SSL_accept(c->ssl) != 1) {
		char detail[256] = "closed during the handshake";
		unsigned long e = ERR_get_error();
		if (e != 0)
			ERR_error_string_n(e, detail, sizeof(detail));
		AEGIS_LOG(AEGIS_LOG_DEBUG, "TLS handshake failed", LKV_S("peer", c->peer),
		          LKV_S("error", detail));
		goto out;
	}
	const unsigned char *alpn = NULL;
	unsigned alen = 0;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
	if (alen == 2 && memcmp(alpn, "h2", 2) == 0)
		aegis_inject_h2_serve(c);
	else
		aegis_inject_h1_serve(c);
	SSL_shutdown(c->ssl);
out:
	ERR_clear_error();
	SSL_free(c->ssl);
	close(c->fd);
	atomic_fetch_sub(&c->srv->active, 1);
	free(c);
	return NULL;
}

static void accept_one(struct aegis_inject_server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(s->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (atomic_load(&s->active) >= s->o.max_conns) {
		AEGIS_LOG(AEGIS_LOG_WARN, "connection refused: too many connections",
		          LKV_I("max", s->o.max_conns));
		close(fd);
		return;
	}
	struct timeval tv = {.tv_sec = AEGIS_INJECT_READ_TIMEOUT_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct aegis_inject_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
	            NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
	pthread_mutex_lock(&s->lock);
	c->ssl = SSL_new(s->ctx);
	pthread_mutex_unlock(&s->lock);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
		goto fail;
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, AEGIS_INJECT_THREAD_STACK);
	atomic_fetch_add(&s->active, 1);
	int e = pthread_create(&t, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (e == 0)
		return;
	atomic_fetch_sub(&s->active, 1);
	AEGIS_LOG(AEGIS_LOG_ERROR, "cannot start a connection thread", LKV_S("error", strerror(e)));
fail:
	SSL_free(c->ssl);
	close(fd);
	free(c);
}

void aegis_inject_server_run(struct aegis_inject_server *s, volatile sig_atomic_t *stop)
{
	struct timespec last;
	clock_gettime(CLOCK_MONOTONIC, &last);
	while (!*stop) {
		struct pollfd p = {.fd = s->fd, .events = POLLIN};
		int n = poll(&p, 1, 500);
		if (n > 0 && (p.revents & POLLIN))
			accept_one(s);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - last.tv_sec >= (time_t)s->o.reload_interval_s) {
			last = now;
			maybe_reload(s);
		}
	}
	/* Stop accepting, then give in-flight reviews a moment (the API server retries nothing itself). */
	close(s->fd);
	s->fd = -1;
	for (int i = 0; i < 50 && atomic_load(&s->active) > 0; i++)
		usleep(100 * 1000);
}
