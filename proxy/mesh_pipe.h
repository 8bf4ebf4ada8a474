/* The byte relay of a mesh connection: two sockets on one libev loop, either of which may carry TLS (an
 * SSL that has finished its handshake). Bytes are copied through one fixed buffer per direction (the cap
 * on what a slow reader can make us hold). Half-close is propagated: when one side stops sending (FIN, or
 * TLS close_notify), the relay finishes writing what it holds to the other side and then shuts down its
 * write half (shutdown(SHUT_WR), or close_notify), and keeps relaying the other direction. The relay ends
 * when both directions are finished, on an error, or when no byte has moved for idle_ms.
 *
 * The relay owns both fds and SSLs from aegis_pipe_start on; done fires once, on the loop thread, after it
 * has closed them; the pipe frees itself after done returns. */
#ifndef AEGIS_MESH_PIPE_H
#define AEGIS_MESH_PIPE_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "aegis/err.h"

#define AEGIS_PIPE_BUF (64u * 1024u)

struct aegis_pipe;

struct aegis_pipe_result {
	uint64_t a_to_b; /* bytes */
	uint64_t b_to_a;
	bool idle_timeout;
	bool error;
};

typedef void (*aegis_pipe_done_cb)(void *user, const struct aegis_pipe_result *r);

/* Starts relaying between fd_a (ssl_a or NULL) and fd_b (ssl_b or NULL). On failure (memory) closes
 * nothing and returns AEGIS_ENOMEM: the caller still owns the fds and SSLs, and done never fires. */
int aegis_pipe_start(struct ev_loop *loop, int fd_a, SSL *ssl_a, int fd_b, SSL *ssl_b, uint32_t idle_ms,
                     aegis_pipe_done_cb done, void *user) AEGIS_WUR;

/* Pipes alive now (for stats and shutdown). */
unsigned aegis_pipe_count(void);

/* Closes every pipe on loop without calling done callbacks (process shutdown). */
void aegis_pipe_close_all(struct ev_loop *loop);

#endif
