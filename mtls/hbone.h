/* HBONE: TCP streams carried as HTTP/2 CONNECT streams over one mutual-TLS connection between two sidecars
 * (the wire format of Istio's ztunnel: `CONNECT` with `:authority` = <endpoint-ip>:<port> and no
 * `:scheme`/`:path`, the answer `200` before any byte, then DATA frames both ways; END_STREAM is a
 * half-close). This is the protocol core around one nghttp2 session, without sockets: bytes from the peer
 * go in with aegis_hbone_recv(), bytes for the peer come out through aegis_hbone_flush()'s writer, so the
 * unit tests run two sessions back to back and the libev glue (proxy/mesh_hbone.c) moves bytes only.
 *
 * Flow control is explicit: data handed to on_data counts against the stream and connection windows until
 * the user calls aegis_hbone_consume() (after writing it to the application), so a slow application slows
 * its own stream down and nothing else, and no buffer grows past the window. Windows:
 * AEGIS_HBONE_STREAM_WINDOW per stream and AEGIS_HBONE_CONN_WINDOW per connection, large enough that one
 * stream fills a fast link.
 *
 * Callback contract: callbacks fire only inside aegis_hbone_recv() and aegis_hbone_flush(); pointers they
 * receive live only during the call; they may call aegis_hbone_write/shutdown/consume/respond/reset but
 * not free the session. on_close fires exactly once for every stream that was opened or announced. */
#ifndef AEGIS_HBONE_H
#define AEGIS_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "aegis/err.h"

#define AEGIS_HBONE_STREAM_WINDOW  (4u << 20)   /* 4 MiB */
#define AEGIS_HBONE_CONN_WINDOW    (16u << 20)  /* 16 MiB */
#define AEGIS_HBONE_MAX_STREAMS    1000u        /* concurrent streams we accept per connection */
#define AEGIS_HBONE_STREAM_OUTBUF  (256u << 10) /* app bytes buffered per stream towards the peer */
#define AEGIS_HBONE_AUTHORITY_MAX  64
#define AEGIS_HBONE_REFUSED_STREAM 0x7u /* the HTTP/2 error code of a stream the peer did not process */

struct aegis_hbone;

struct aegis_hbone_cbs {
	/* Server: a CONNECT request for authority; answer with aegis_hbone_respond() now or later. A request
	 * that is not a CONNECT (or has no :authority) is answered 400 here and never reaches this. */
	void (*on_request)(void *user, int32_t id, const char *authority);
	/* Client: the response status of a stream opened by aegis_hbone_connect(). */
	void (*on_response)(void *user, int32_t id, int status, void *stream_user);
	/* Bytes of the tunnelled connection; give the window back with aegis_hbone_consume(). */
	void (*on_data)(void *user, int32_t id, const uint8_t *data, size_t len, void *stream_user);
	/* The peer half-closed (END_STREAM): no more on_data for this stream. */
	void (*on_eof)(void *user, int32_t id, void *stream_user);
	/* The stream is gone (both halves closed, reset, or the session is going away); error_code is the
	 * HTTP/2 error (0 = a clean close). */
	void (*on_close)(void *user, int32_t id, uint32_t error_code, void *stream_user);
	/* A PING acknowledgement (keepalive). May be NULL. */
	void (*on_ping_ack)(void *user);
};

/* Writes up to len bytes to the peer; returns bytes written, 0 when it would block, -1 on error. A call
 * that returned 0 is repeated later with the same bytes and length, not always from the same address
 * (OpenSSL's SSL_write rule, with SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, which mtls_ctx.c sets). */
typedef ssize_t (*aegis_hbone_write_fn)(void *io, const uint8_t *data, size_t len);

/* A session; server true for the accepting side. cbs is copied; user is passed to every callback.
 * Queues the connection preface and SETTINGS (window sizes). Returns 0 or AEGIS_ENOMEM. */
int aegis_hbone_new(bool server, const struct aegis_hbone_cbs *cbs, void *user,
                    struct aegis_hbone **out) AEGIS_WUR;
void aegis_hbone_free(struct aegis_hbone *h);

/* Feeds bytes read from the peer. Returns 0, or AEGIS_EPROTO when the peer broke HTTP/2 (the session
 * then only wants to flush its GOAWAY and be closed). */
int aegis_hbone_recv(struct aegis_hbone *h, const uint8_t *data, size_t len) AEGIS_WUR;

/* Writes what the session has to send through write(io, ...) until it has nothing or the writer would
 * block. Returns 0, or AEGIS_EIO when the writer failed or nghttp2 did. */
int aegis_hbone_flush(struct aegis_hbone *h, aegis_hbone_write_fn write, void *io) AEGIS_WUR;

/* Whether the session has bytes waiting for a writer that blocked, and whether it is still alive (false
 * after GOAWAY both ways or a fatal error: close the connection once flushed). */
bool aegis_hbone_want_write(const struct aegis_hbone *h);
bool aegis_hbone_alive(const struct aegis_hbone *h);

/* Client: opens a CONNECT stream to authority ("10.0.0.1:9080", "[2001:db8::1]:9080"). The early_len
 * bytes at early (at most AEGIS_HBONE_STREAM_OUTBUF; none with 0) are the application's first bytes: they
 * follow the HEADERS at once, without waiting for the answer (any peer that speaks HTTP/2 keeps them in
 * the stream window until it answers, and drops them with any status but 200). Bytes written later wait
 * for the 200. stream_user is handed to the stream's callbacks. Returns the stream id (> 0) or a negative
 * aegis_err. */
int32_t aegis_hbone_connect(struct aegis_hbone *h, const char *authority, const uint8_t *early,
                            size_t early_len, void *stream_user);

/* Server: answers a request. 200 opens the tunnel (stream_user then goes to its callbacks); any other
 * status ends the stream. Bytes and END_STREAM the client sent before the 200 (an optimistic client)
 * were kept, counted against the stream window: with a 200 they go to on_data and on_eof from inside
 * this call. Returns 0 or AEGIS_EINVAL (no such stream). */
int aegis_hbone_respond(struct aegis_hbone *h, int32_t id, int status, void *stream_user) AEGIS_WUR;

/* Queues up to len bytes of the application's data on stream id; returns how many were taken, which is
 * min(len, aegis_hbone_write_room()) (0 when the stream's buffer is full: wait for the peer's window),
 * or a negative aegis_err. */
ssize_t aegis_hbone_write(struct aegis_hbone *h, int32_t id, const uint8_t *data, size_t len);
/* Client, before the answer: more early bytes (as aegis_hbone_connect()'s), sent at once without waiting
 * for the 200, after any queued earlier. All len bytes or none: 0, or AEGIS_EINVAL (server, unknown,
 * answered or half-closed stream, or more than the buffer's room), AEGIS_ENOMEM. */
int aegis_hbone_write_early(struct aegis_hbone *h, int32_t id, const uint8_t *data, size_t len) AEGIS_WUR;
/* Room left in the stream's buffer (0 for an unknown stream). */
size_t aegis_hbone_write_room(const struct aegis_hbone *h, int32_t id);
/* The same room as up to two pieces of the stream's buffer (it is a ring), for a readv() straight into
 * it: returns how many of iov it filled (0: no room, unknown or half-closed stream, or AEGIS_ENOMEM on
 * the first call when the buffer cannot be allocated). Nothing counts until aegis_hbone_commit(). */
int aegis_hbone_write_iov(struct aegis_hbone *h, int32_t id, struct iovec iov[2]);
/* Queues n bytes that were put where aegis_hbone_write_iov() said (n <= its room). 0 or AEGIS_EINVAL. */
int aegis_hbone_commit(struct aegis_hbone *h, int32_t id, size_t n);
/* Bytes of the application buffered on stream id, not yet framed for the peer (0 for an unknown stream). */
size_t aegis_hbone_buffered(const struct aegis_hbone *h, int32_t id);
/* Half-close: END_STREAM after what is buffered. */
void aegis_hbone_shutdown(struct aegis_hbone *h, int32_t id);
/* Gives back len bytes of window once the application has them. */
void aegis_hbone_consume(struct aegis_hbone *h, int32_t id, size_t len);
/* Resets the stream (RST_STREAM CANCEL). */
void aegis_hbone_reset(struct aegis_hbone *h, int32_t id);
/* Sends a PING (keepalive); the answer fires on_ping_ack. */
void aegis_hbone_ping(struct aegis_hbone *h);
/* Sends GOAWAY (graceful): the peer opens no new streams here; open ones, and the peer's streams up to the
 * last one received, finish. */
void aegis_hbone_goaway(struct aegis_hbone *h);
/* Streams open now. */
size_t aegis_hbone_streams(const struct aegis_hbone *h);

/* Parses an HBONE authority "ip:port" / "[ipv6]:port" (no host names: the target is a workload address)
 * into family, ip (16 bytes, IPv4 in the first 4) and port. Returns 0 or AEGIS_EINVAL. */
int aegis_hbone_parse_authority(const char *authority, int *family, uint8_t ip[16], uint16_t *port) AEGIS_WUR;

#endif
