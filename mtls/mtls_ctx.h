/* Workload mutual TLS: OpenSSL 3 contexts built from a certificate directory (Istio's file names:
 * cert-chain.pem, key.pem, root-cert.pem), TLS 1.3 only, a client certificate required in both directions,
 * SPIFFE identities (URI SAN spiffe://<trust-domain>/ns/<ns>/sa/<sa>) checked against what the route
 * expects, and hot rotation: aegis_mtls_maybe_reload() builds a new SSL_CTX when the files change and
 * swaps it in for new connections; an SSL made from the old context keeps it (OpenSSL reference-counts
 * it), so established connections are untouched. A bad set of files (half-written during a rotation, a key
 * that does not match the certificate) is refused and the previous context keeps serving.
 *
 * One struct aegis_mtls belongs to one thread (the loop); nothing here blocks except reading the three
 * small files. */
#ifndef AEGIS_MTLS_CTX_H
#define AEGIS_MTLS_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "aegis/err.h"

#define AEGIS_MTLS_ID_MAX 512

struct aegis_mtls;

struct aegis_mtls_stats {
	uint64_t reloads;            /* successful rotations after the initial load */
	uint64_t reload_errors;      /* rotations refused (the old context kept serving) */
	uint64_t handshakes_ok;      /* peers that passed every check */
	uint64_t handshakes_resumed; /* of those, TLS session resumptions (aegis_mtls_resume) */
	uint64_t peer_expired;       /* certificate expired or not yet valid */
	uint64_t peer_untrusted;     /* not signed by root-cert.pem, or no certificate */
	uint64_t peer_wrong_id;      /* trusted, but not the identity we expected */
	uint64_t handshake_errors;   /* anything else (protocol, version, I/O) */
	uint64_t handshake_timeouts; /* the peer stalled (sent nothing, or stopped mid-handshake) */
};

/* Loads cert_dir. Returns 0 and *out, or an aegis_err with diag saying which file and why. */
int aegis_mtls_new(const char *cert_dir, struct aegis_mtls **out, struct aegis_diag *diag) AEGIS_WUR;
void aegis_mtls_free(struct aegis_mtls *m);

/* The context for new connections (borrowed: valid until the next aegis_mtls_maybe_reload or free; an SSL
 * made from it holds its own reference). */
SSL_CTX *aegis_mtls_ctx(const struct aegis_mtls *m);

/* Checks the files' identity (inode, size, mtime); when they changed, builds a new context and swaps it in.
 * Returns 1 when a new context is in use, 0 when nothing changed, or an aegis_err when the new files were
 * refused (logged; the old context stays). */
int aegis_mtls_maybe_reload(struct aegis_mtls *m);

/* Our own SPIFFE ID (from cert-chain.pem), "" when the certificate has none. */
const char *aegis_mtls_own_id(const struct aegis_mtls *m);

/* Copies the first spiffe:// URI SAN of cert into buf. Returns 0, AEGIS_ENOTFOUND (none) or AEGIS_ESPACE. */
int aegis_mtls_cert_id(X509 *cert, char *buf, size_t len) AEGIS_WUR;

/* Whether id matches pattern: equal, or pattern ends in "*" and id starts with the rest ("/sa/" + "*" is
 * how a route says "any service account of that namespace"). */
bool aegis_mtls_id_match(const char *id, const char *pattern);

/* After a completed handshake: the peer's chain was verified by OpenSSL; this checks its SPIFFE ID
 * against expected (n == 0: any identity the trust bundle vouches for). Logs a refusal with the reason,
 * counts it, and copies the peer ID into peer_id (may be NULL). Returns 0 or AEGIS_EPROTO. what names the
 * connection in logs ("outbound 10.1.0.1:15008"). */
int aegis_mtls_check_peer(struct aegis_mtls *m, SSL *ssl, const char *const *expected, size_t n,
                          const char *what, char *peer_id, size_t peer_id_len) AEGIS_WUR;

/* After a failed handshake: classifies (expired / untrusted / other) from the verify result, logs and
 * counts it. */
void aegis_mtls_note_failure(struct aegis_mtls *m, SSL *ssl, const char *what);

/* A handshake that did not complete within the caller's limit: logs and counts it (reason "timeout"). */
void aegis_mtls_note_timeout(struct aegis_mtls *m, const char *what);

void aegis_mtls_stats(const struct aegis_mtls *m, struct aegis_mtls_stats *out);

/* Client side, before the handshake of ssl (made from aegis_mtls_ctx(m)): resume the last session made
 * under the same key when there is one, and keep the tickets this connection receives for the next one.
 * key says what a session may be reused for: the peer's address and the identities expected of it, since
 * a resumed handshake does not show the peer's certificate again (the session remembers it, and
 * aegis_mtls_check_peer checks that). Sessions made before a certificate rotation, or whose peer
 * certificate has expired, are not used. */
void aegis_mtls_resume(struct aegis_mtls *m, SSL *ssl, const char *key);

/* How the relays read TLS: whole socket buffers instead of a record header and then its body (read-ahead),
 * into a buffer of four whole records (a peer's 64 KiB write, an HBONE DATA frame), so that one read
 * system call takes them all and aegis_mtls_read_gather() hands them over together. Before the
 * handshake; with SSL_MODE_RELEASE_BUFFERS the buffer exists only while it holds bytes. */
void aegis_mtls_read_ahead(SSL *ssl);

/* The TLS read of the relays: SSL_read returns one record at a time, so this reads into buf[0..cap) until it
 * is full or the SSL holds nothing more (no system call beyond the first read), adding what it took to
 * *have. Returns the last SSL_read's result: > 0 when it stopped with data, else what SSL_get_error must
 * interpret (any bytes already in *have come first). ERR_clear_error() precedes each call. */
int aegis_mtls_read_gather(SSL *ssl, uint8_t *buf, size_t cap, size_t *have);

#endif
