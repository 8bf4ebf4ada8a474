/* Private to inject/: aegis-inject's HTTPS server. inject_server.c owns the listener, the TLS context (and
 * its reload) and one thread per connection; inject_h1.c and inject_h2.c speak HTTP/1.1 and h2 on a
 * connection once ALPN has chosen; both hand complete requests to aegis_inject_server_route().
 *
 * Why threads and blocking TLS rather than the proxy's libev loop: the webhook sees a few requests per pod
 * creation, every one of which is CPU work in the core (parse, patch, serialise); blocking SSL_read/SSL_write
 * with socket timeouts keeps the TLS and h2 glue short and obviously correct, and a connection cap bounds the
 * threads. The sidecar's hot path has the opposite profile, hence its event loop. */
#ifndef AEGIS_INJECT_SERVER_H
#define AEGIS_INJECT_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "aegis/inject.h"

#define AEGIS_INJECT_MAX_CONNS       256 /* concurrent connections (threads); more are closed at accept */
#define AEGIS_INJECT_READ_TIMEOUT_S  30  /* one read: an idle keep-alive connection is closed after this */
#define AEGIS_INJECT_REQUEST_S       15  /* one request from its first byte to its last */
#define AEGIS_INJECT_MAX_URL         2048
#define AEGIS_INJECT_MAX_HEADER      (16u << 10) /* request line + headers (HTTP/1.1) or header block (h2) */
#define AEGIS_INJECT_H2_MAX_STREAMS  32
#define AEGIS_INJECT_THREAD_STACK    (512u << 10)
#define AEGIS_INJECT_RELOAD_INTERVAL 5           /* seconds between checks of the certificate files */
#define AEGIS_INJECT_LINGER_BYTES    (16u << 20) /* dropped after a 413 before closing (at most 2 s) */

struct aegis_inject_server_opts {
	const char *listen; /* ADDR:PORT, [v6]:PORT */
	const char *cert;   /* PEM chain */
	const char *key;    /* PEM key */
	const struct aegis_inject_config *config;
	size_t max_body;
	unsigned reload_interval_s;
	unsigned max_conns;
};

struct aegis_inject_server;

/* One accepted TLS connection; lives in its thread. */
struct aegis_inject_conn {
	struct aegis_inject_server *srv;
	SSL *ssl;
	int fd;
	char peer[64];
};

/* A response: status, content type (static), body (malloc'd, owned by the response). */
struct aegis_inject_response {
	int status;
	const char *content_type;
	char *body;
	size_t len;
};

/* Binds and listens, loads the certificate and key (errors are fatal: start-up). Returns 0 with *out, or an
 * aegis_err with err describing it. */
int aegis_inject_server_new(const struct aegis_inject_server_opts *o, struct aegis_inject_server **out,
                            char *err, size_t errlen) AEGIS_WUR;

/* Accepts and serves until *stop becomes non-zero, then waits (bounded) for connections to finish. Checks
 * the certificate files every reload_interval_s and swaps in a new context when they changed and load; a
 * pair that does not load is logged and the previous one keeps serving. */
void aegis_inject_server_run(struct aegis_inject_server *s, volatile sig_atomic_t *stop);
/* Frees s and returns true, or returns false and frees nothing while a connection thread still runs (after
 * run() gave them its grace period; the caller is exiting and must not free what they use either). */
bool aegis_inject_server_free(struct aegis_inject_server *s);

/* The bound port (tests bind port 0). */
int aegis_inject_server_port(const struct aegis_inject_server *s);

/* Routes one complete request: POST /inject, GET|HEAD /healthz and /readyz. path may carry a query (the API
 * server appends ?timeout=10s). too_large: the body went over max_body and was dropped (413). Fills r. */
void aegis_inject_server_route(struct aegis_inject_server *s, const char *method, const char *path,
                               const char *body, size_t len, bool too_large, struct aegis_inject_response *r);
void aegis_inject_server_response_free(struct aegis_inject_response *r);
size_t aegis_inject_server_max_body(const struct aegis_inject_server *s);
const char *aegis_inject_server_reason(int status);

/* Blocking I/O on the connection. read: bytes read (> 0), 0 at a clean close, -1 on error or timeout.
 * write_all: 0 or -1. */
int aegis_inject_server_read(struct aegis_inject_conn *c, void *buf, size_t len);
int aegis_inject_server_write_all(struct aegis_inject_conn *c, const void *buf, size_t len);

/* Closes our side after a response that left request bytes unread (413), draining the rest briefly so the
 * response reaches the client instead of being cut by a TCP reset. */
void aegis_inject_server_linger(struct aegis_inject_conn *c);

/* Serve a connection after the handshake until it closes (ALPN "http/1.1" or none; "h2"). */
void aegis_inject_h1_serve(struct aegis_inject_conn *c);
void aegis_inject_h2_serve(struct aegis_inject_conn *c);

#endif
