/* The admin endpoint (default 127.0.0.1:15000): a small HTTP/1.1 server on the proxy's libev loop that
 * serves /config_dump, /stats/prometheus, /healthz/ready, /logging and /dns/lookup (docs/admin.md).
 *
 * It is a registry: this file knows no DNS, xDS or forwarding internals. Each module that has something
 * to show registers a config_dump section (a function returning a jansson object) and/or a metrics
 * function (appending to a Prometheus writer); main.c registers them. Every callback runs on the loop
 * thread, between two events, so it may read its module's state without a lock (the DNS server, the
 * table and the forwarder live on the same loop).
 *
 * Limits: request line + headers 8 KiB (431/414), body 64 KiB (413), AEGIS_ADMIN_MAX_CONNS connections
 * (the next one gets 503 and is closed), an idle timeout, keep-alive and pipelining (responses in
 * order, one request in memory per connection). */
#ifndef AEGIS_ADMIN_H
#define AEGIS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>
#include <jansson.h>

#include "admin_http.h"
#include "aegis/err.h"
#include "metrics.h"

#define AEGIS_ADMIN_MAX_CONNS         32
#define AEGIS_ADMIN_IDLE_MS           30000
#define AEGIS_ADMIN_MAX_SECTIONS      32
#define AEGIS_ADMIN_MAX_METRICS_FNS   32
#define AEGIS_ADMIN_MAX_METRICS_BYTES (16u << 20)

struct aegis_admin;

/* A config_dump section. name is the ?name= filter (NULL when absent; what it matches is the section's
 * choice, documented in docs/admin.md). Returns a new reference to a JSON object (the admin adds its
 * "@type"), or NULL on failure (answered 500). */
typedef json_t *(*aegis_admin_dump_fn)(void *user, const char *name);

/* Appends samples for /stats/prometheus. Errors are kept in m and reported by the admin (500). */
typedef void (*aegis_admin_metrics_fn)(void *user, struct aegis_metrics *m);

/* Readiness: true when ready; otherwise writes a short reason ("no config yet") into why. */
typedef bool (*aegis_admin_ready_fn)(void *user, char *why, size_t whylen);

/* /dns/lookup: name and type are the decoded query parameters (type may be NULL). Returns the HTTP
 * status (200, 400 for a bad name or type) and sets *out to a new JSON reference (the body). */
typedef int (*aegis_admin_lookup_fn)(void *user, const char *name, const char *type, json_t **out);

/* Binds addr (TCP) and starts serving on loop. The loopback-only policy is the caller's (proxy_options.c
 * refuses other addresses unless --admin-allow-non-loopback). Returns 0, or AEGIS_ESYS (logged with the
 * address and errno) / AEGIS_ENOMEM. Free with aegis_admin_free(). */
int aegis_admin_new(struct ev_loop *loop, const struct sockaddr_storage *addr,
                    struct aegis_admin **out) AEGIS_WUR;

/* Turns a into a status port (--status-listen): it answers GET/HEAD /healthz/ready (the readiness
 * callback) and /healthz/live (200 while the loop runs), and 404 for every other path, so that it can
 * listen where the kubelet reaches it without exposing the admin endpoint. Call right after
 * aegis_admin_new(). */
void aegis_admin_set_status_only(struct aegis_admin *a);

/* Closes the listener and every connection. No callback fires afterwards. NULL is a no-op. */
void aegis_admin_free(struct aegis_admin *a);

/* The address actually bound (the kernel's port when addr had port 0). */
void aegis_admin_local_addr(const struct aegis_admin *a, struct sockaddr_storage *out);

/* Registers a section under name ([a-z0-9_]+, copied), shown in registration order. user is borrowed
 * and must outlive the admin. Returns 0, AEGIS_EINVAL (bad name), AEGIS_EEXIST, or AEGIS_ELIMIT. */
int aegis_admin_add_section(struct aegis_admin *a, const char *name, aegis_admin_dump_fn fn,
                            void *user) AEGIS_WUR;

/* Registers a metrics function (called in registration order). Returns 0 or AEGIS_ELIMIT. */
int aegis_admin_add_metrics(struct aegis_admin *a, aegis_admin_metrics_fn fn, void *user) AEGIS_WUR;

/* Sets (replaces) the readiness and lookup callbacks. Without a readiness callback the proxy reports
 * ready; without a lookup callback /dns/lookup is 404. */
void aegis_admin_set_ready(struct aegis_admin *a, aegis_admin_ready_fn fn, void *user);
void aegis_admin_set_lookup(struct aegis_admin *a, aegis_admin_lookup_fn fn, void *user);

/* A response, for aegis_admin_handle(). body is malloc'd (free with aegis_admin_response_free). */
struct aegis_admin_response {
	int status;
	const char *content_type;
	const char *allow; /* the Allow header of a 405, else NULL */
	char *body;
	size_t body_len;
};

/* Answers one parsed request, without I/O: the connection code, the unit tests and the fuzzer call
 * this the same way. Always fills *resp. */
void aegis_admin_handle(struct aegis_admin *a, const struct aegis_admin_http_req *req,
                        struct aegis_admin_response *resp);
void aegis_admin_response_free(struct aegis_admin_response *resp);

/* Serialises a response (status line, headers, body unless head) into a new malloc'd buffer. Returns
 * the buffer and its length in *len, or NULL when out of memory. */
char *aegis_admin_response_bytes(const struct aegis_admin_response *resp, bool keep_alive, bool head,
                                 size_t *len);

#endif
