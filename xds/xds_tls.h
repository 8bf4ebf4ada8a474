/* xDS over mutual TLS (port 15012), private to xds/: gRPC C core TLS credentials for aegis-xds (server) and
 * the proxy's ADS client, from an Istio-style certificate directory (cert-chain.pem, key.pem,
 * root-cert.pem). Both sides use gRPC's file-watcher certificate provider, so rotated files are used by the
 * next handshake (the files are re-read every AEGIS_XDS_TLS_REFRESH_S seconds; an established stream keeps
 * its session). See docs/xds.md, "xDS over mTLS". */
#ifndef AEGIS_XDS_TLS_H
#define AEGIS_XDS_TLS_H

#include <grpc/grpc_security.h>

#include "aegis/err.h"

#define AEGIS_XDS_TLS_REFRESH_S 5

/* Checks that cert_dir's three files load (key matches certificate, PEM parses), and writes the
 * certificate's SPIFFE ID into own_id ("" when it has none). Returns 0, or an aegis_err with diag filled:
 * the start-up check that makes a bad --cert-dir fatal with a clear message. */
int aegis_xds_tls_check(const char *cert_dir, char *own_id, size_t id_len, struct aegis_diag *diag) AEGIS_WUR;

/* Channel credentials for the client: our certificate as the client certificate, the server's chain
 * verified against root-cert.pem, and, when server_id is not NULL or "", the server certificate's URI SANs
 * must contain exactly server_id (its SPIFFE ID; a mismatch is logged and the handshake fails). DNS host
 * names are not checked (workload certificates carry SPIFFE IDs only). Returns NULL when out of memory. The
 * caller releases the credentials (grpc_channel_credentials_release). */
grpc_channel_credentials *aegis_xds_tls_channel_creds(const char *cert_dir, const char *server_id);

/* Server credentials: our certificate, and a client certificate required and verified against
 * root-cert.pem (any identity the root signed is accepted). NULL when out of memory. */
grpc_server_credentials *aegis_xds_tls_server_creds(const char *cert_dir);

/* Sends gRPC core's own log lines (among them the TLS handshake failures: untrusted or missing peer
 * certificate) into the JSON log, at warn level for gRPC's errors. Process-wide; idempotent. */
void aegis_xds_tls_route_grpc_log(void);

#endif
