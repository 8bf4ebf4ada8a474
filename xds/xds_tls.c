/* xDS over mutual TLS: see xds_tls.h.
 *
 * gRPC C core 1.51's TLS credentials (grpc_tls_credentials_options, "experimental" but exported by Debian's
 * libgrpc29) are used instead of grpc_ssl_credentials_create because they take a certificate provider that
 * watches the files (rotation without a restart) and a custom verifier (the server's SPIFFE ID). With a
 * custom verifier set, gRPC still verifies the chain against the root certificates (verify_server_cert
 * stays on) and then calls the verifier; it no longer checks the target's host name, which a workload
 * certificate (URI SAN only) would fail. */
#include "xds_tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/string_util.h>

#include "aegis/log.h"
#include "mtls_ctx.h"

struct paths {
	char chain[PATH_MAX], key[PATH_MAX], root[PATH_MAX];
};

static void paths_of(const char *dir, struct paths *p)
{
	snprintf(p->chain, sizeof(p->chain), "%s/cert-chain.pem", dir);
	snprintf(p->key, sizeof(p->key), "%s/key.pem", dir);
	snprintf(p->root, sizeof(p->root), "%s/root-cert.pem", dir);
}

int aegis_xds_tls_check(const char *cert_dir, char *own_id, size_t id_len, struct aegis_diag *diag)
{
	struct aegis_mtls *m = NULL;
	int rc = aegis_mtls_new(cert_dir, &m, diag);
	if (rc != 0)
		return rc;
	snprintf(own_id, id_len, "%s", aegis_mtls_own_id(m));
	aegis_mtls_free(m);
	return 0;
}

/* A provider that re-reads the three files every AEGIS_XDS_TLS_REFRESH_S seconds, and options that use it
 * for both our identity and the roots. NULL when out of memory. */
static grpc_tls_credentials_options *options_for(const char *cert_dir)
{
	struct paths p;
	paths_of(cert_dir, &p);
	grpc_tls_certificate_provider *prov = grpc_tls_certificate_provider_file_watcher_create(
	        p.key, p.chain, p.root, AEGIS_XDS_TLS_REFRESH_S);
	grpc_tls_credentials_options *o = grpc_tls_credentials_options_create();
	if (prov == NULL || o == NULL) {
		if (prov != NULL)
			grpc_tls_certificate_provider_release(prov);
		return NULL; /* an options object has no public destructor; not reached short of OOM */
	}
	grpc_tls_credentials_options_set_certificate_provider(o, prov); /* takes its own reference */
	grpc_tls_certificate_provider_release(prov);
	grpc_tls_credentials_options_watch_root_certs(o);
	grpc_tls_credentials_options_watch_identity_key_cert_pairs(o);
	return o;
}

/* ---- the server's SPIFFE ID, checked by the client ---- */

struct verifier {
	grpc_tls_certificate_verifier_external ext; /* first: gRPC hands back ext.user_data = this */
	char *server_id;
};

static int verify_id(void *user, grpc_tls_custom_verification_check_request *req,
                     grpc_tls_on_custom_verification_check_done_cb cb, void *cb_arg, grpc_status_code *status,
                     char **details)
{
	const struct verifier *v = user;
	for (size_t i = 0; i < req->peer_info.san_names.uri_names_size; i++)
		if (strcmp(req->peer_info.san_names.uri_names[i], v->server_id) == 0) {
			*status = GRPC_STATUS_OK;
			return 1;
		}
	const char *got =
	        req->peer_info.san_names.uri_names_size ? req->peer_info.san_names.uri_names[0] : "";
	AEGIS_LOG(AEGIS_LOG_ERROR, "xds server refused: wrong identity", LKV_S("expected", v->server_id),
	          LKV_S("peer", got), LKV_S("target", req->target_name ? req->target_name : ""));
	*status = GRPC_STATUS_UNAUTHENTICATED;
	*details = gpr_strdup("xds server identity mismatch");
	(void)cb;
	(void)cb_arg;
	return 1; /* synchronous */
}

static void verify_cancel(void *user, grpc_tls_custom_verification_check_request *req)
{
	(void)user;
	(void)req;
}

static void verify_destruct(void *user)
{
	struct verifier *v = user;
	free(v->server_id);
	free(v);
}

grpc_channel_credentials *aegis_xds_tls_channel_creds(const char *cert_dir, const char *server_id)
{
	aegis_xds_tls_route_grpc_log();
	grpc_tls_credentials_options *o = options_for(cert_dir);
	if (o == NULL)
		return NULL;
	grpc_tls_credentials_options_set_verify_server_cert(o, 1);
	/* Per-call host checks compare the target's DNS name with the certificate's DNS SANs; workload
	 * certificates have none (the SPIFFE ID below is the check). */
	grpc_tls_credentials_options_set_check_call_host(o, 0);
	grpc_tls_certificate_verifier *verifier = NULL;
	if (server_id != NULL && server_id[0] != '\0') {
		struct verifier *v = calloc(1, sizeof(*v));
		if (v == NULL || (v->server_id = strdup(server_id)) == NULL) {
			free(v);
			return NULL;
		}
		v->ext = (grpc_tls_certificate_verifier_external){.user_data = v,
		                                                  .verify = verify_id,
		                                                  .cancel = verify_cancel,
		                                                  .destruct = verify_destruct};
		verifier = grpc_tls_certificate_verifier_external_create(&v->ext);
	} else {
		/* Chain only: gRPC's default would add a host-name check that SPIFFE certificates fail. */
		verifier = grpc_tls_certificate_verifier_no_op_create();
	}
	grpc_tls_credentials_options_set_certificate_verifier(o, verifier); /* takes a reference */
	grpc_tls_certificate_verifier_release(verifier);
	return grpc_tls_credentials_create(o); /* takes the options */
}

grpc_server_credentials *aegis_xds_tls_server_creds(const char *cert_dir)
{
	aegis_xds_tls_route_grpc_log();
	grpc_tls_credentials_options *o = options_for(cert_dir);
	if (o == NULL)
		return NULL;
	grpc_tls_credentials_options_set_cert_request_type(
	        o, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
	return grpc_tls_server_credentials_create(o);
}

/* ---- gRPC's log ---- */

static void grpc_log_fn(gpr_log_func_args *a)
{
	enum aegis_log_level lvl = a->severity == GPR_LOG_SEVERITY_ERROR  ? AEGIS_LOG_WARN
	                           : a->severity == GPR_LOG_SEVERITY_INFO ? AEGIS_LOG_INFO
	                                                                  : AEGIS_LOG_DEBUG;
	/* Logged for every handshake whose SNI (here the target's address) names no certificate: the
	 * server then uses its only one. Noise, not a failure. */
	if (strncmp(a->message, "No match found for server name", 30) == 0)
		lvl = AEGIS_LOG_DEBUG;
	const char *file = strrchr(a->file, '/');
	AEGIS_LOG(lvl, "grpc", LKV_S("message", a->message), LKV_S("file", file ? file + 1 : a->file),
	          LKV_I("line", a->line));
}

void aegis_xds_tls_route_grpc_log(void)
{
	gpr_set_log_function(grpc_log_fn);
}
