/* Workload mutual TLS contexts and SPIFFE identity checks: see mtls_ctx.h and docs/mesh.md. */
#include "mtls_ctx.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "aegis/log.h"

static const char *const files[3] = {"cert-chain.pem", "key.pem", "root-cert.pem"};

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Client sessions for resumption (aegis_mtls_resume): the newest ticket per key, in a small table
 * indexed by the key's hash (a collision replaces the older key's session: a cache, not a store). */
#define SESSION_SLOTS 256u

struct session_slot {
	char *key;
	SSL_SESSION *sess;
};

struct aegis_mtls {
	char dir[PATH_MAX];
	SSL_CTX *ctx;
	struct file_id ids[3];
	char own_id[AEGIS_MTLS_ID_MAX];
	struct aegis_mtls_stats stats;
	struct session_slot sessions[SESSION_SLOTS];
};

/* SSL ex_data: the resumption key of a client connection (a char * freed with the SSL). */
static int key_index = -1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void key_index_init(void)
{
	key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, key_free);
}

static uint32_t key_hash(const char *k)
{
	uint32_t h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	return h;
}

static void sessions_clear(struct aegis_mtls *m)
{
	for (size_t i = 0; i < SESSION_SLOTS; i++) {
		free(m->sessions[i].key);
		SSL_SESSION_free(m->sessions[i].sess);
		m->sessions[i] = (struct session_slot){0};
	}
}

/* A ticket arrived on a client connection (TLS 1.3 sends them after the handshake): a copy is kept for
 * the connection's key when the connection has one and was made from the current context. A copy,
 * because OpenSSL marks the connection's own session not resumable when the connection is freed without
 * a TLS close_notify, which is how relays usually end. Returns 0: OpenSSL keeps its reference. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
	struct aegis_mtls *m = SSL_CTX_get_app_data(ctx);
	const char *key = key_index >= 0 ? SSL_get_ex_data(ssl, key_index) : NULL;
	if (m == NULL || key == NULL || ctx != m->ctx || !SSL_SESSION_is_resumable(sess))
		return 0;
	struct session_slot *s = &m->sessions[key_hash(key) % SESSION_SLOTS];
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (copy == NULL)
		return 0;
	if (s->key == NULL || strcmp(s->key, key) != 0) {
		char *k = strdup(key);
		if (k == NULL) {
			SSL_SESSION_free(copy);
			return 0;
		}
		free(s->key);
		s->key = k;
	}
	SSL_SESSION_free(s->sess);
	s->sess = copy;
	return 0;
}

static void openssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

static int stat_files(const char *dir, struct file_id ids[3])
{
	for (int i = 0; i < 3; i++) {
		char p[PATH_MAX];
		struct stat st;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, files[i]) >= sizeof(p) || stat(p, &st) != 0)
			return AEGIS_EIO;
		ids[i] = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim};
	}
	return 0;
}

int aegis_mtls_cert_id(X509 *cert, char *buf, size_t len)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int rc = AEGIS_ENOTFOUND;
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && rc == AEGIS_ENOTFOUND; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		if (gn->type != GEN_URI)
			continue;
		const unsigned char *s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		int n = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (n < 9 || memcmp(s, "spiffe://", 9) != 0)
			continue;
		/* A NUL inside the SAN would let "spiffe://a\0.evil" compare as "spiffe://a". */
		if (memchr(s, '\0', (size_t)n) != NULL)
			continue;
		if ((size_t)n >= len) {
			rc = AEGIS_ESPACE;
			break;
		}
		memcpy(buf, s, (size_t)n);
		buf[n] = '\0';
		rc = 0;
	}
	GENERAL_NAMES_free(sans);
	return rc;
}

bool aegis_mtls_id_match(const char *id, const char *pattern)
{
	size_t pl = strlen(pattern);
	if (pl > 0 && pattern[pl - 1] == '*') {
		/* The wildcard stands for one path segment: "…/sa/" + "*" must not match "…/sa/x/y". */
		if (strncmp(id, pattern, pl - 1) != 0)
			return false;
		const char *rest = id + pl - 1;
		return rest[0] != '\0' && strchr(rest, '/') == NULL;
	}
	return strcmp(id, pattern) == 0;
}

/* ALPN on the server side: "h2" when the client offers it (HBONE, ztunnel's client); a client that offers
 * nothing or something else gets no ALPN and the handshake goes on (the legacy direct path on 15006). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (i + 1 + l > inlen)
			break;
		if (l == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Builds a context from dir: TLS 1.3 only, peer certificate required and verified against root-cert.pem. */
static SSL_CTX *build_ctx(const char *dir, char *own_id, size_t own_len, char *err, size_t err_len)
{
	char p[3][PATH_MAX];
	for (int i = 0; i < 3; i++)
		snprintf(p[i], sizeof(p[i]), "%s/%s", dir, files[i]);
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		openssl_error(err, err_len);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		openssl_error(err, err_len);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, p[0]) != 1) {
		char e[200];
		openssl_error(e, sizeof(e));
		snprintf(err, err_len, "%s: %s", files[0], e);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, p[1], SSL_FILETYPE_PEM) != 1) {
		char e[200];
		openssl_error(e, sizeof(e));
		snprintf(err, err_len, "%s: %s", files[1], e);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		/* The usual state half-way through a rotation: the new certificate with the old key. */
		ERR_clear_error();
		snprintf(err, err_len, "%s does not match %s", files[1], files[0]);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, p[2], NULL) != 1) {
		char e[200];
		openssl_error(e, sizeof(e));
		snprintf(err, err_len, "%s: %s", files[2], e);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* Both ends are ours: no renegotiation exists in 1.3; tickets are issued so reconnects resume. The
	 * server's tickets are stateless (no server-side store); the client side keeps its own, per
	 * connection key, through new_session_cb (aegis_mtls_resume). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_CLIENT |
	                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                              SSL_MODE_RELEASE_BUFFERS);
	static const unsigned char sid[] = "aegis-mtls";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	X509 *own = SSL_CTX_get0_certificate(ctx);
	if (own == NULL || aegis_mtls_cert_id(own, own_id, own_len) != 0)
		own_id[0] = '\0';
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int aegis_mtls_new(const char *cert_dir, struct aegis_mtls **out, struct aegis_diag *diag)
{
	struct aegis_mtls *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "mtls: out of memory");
	if ((size_t)snprintf(m->dir, sizeof(m->dir), "%s", cert_dir) >= sizeof(m->dir)) {
		free(m);
		return aegis_diag_set(diag, AEGIS_EINVAL, cert_dir, 0, 0,
		                      "certificate directory path too long");
	}
	if (stat_files(cert_dir, m->ids) != 0) {
		free(m);
		return aegis_diag_set(diag, AEGIS_EIO, cert_dir, 0, 0,
		                      "needs cert-chain.pem, key.pem and root-cert.pem: %s", strerror(errno));
	}
	char err[512];
	m->ctx = build_ctx(cert_dir, m->own_id, sizeof(m->own_id), err, sizeof(err));
	if (m->ctx == NULL) {
		free(m);
		return aegis_diag_set(diag, AEGIS_EINVAL, cert_dir, 0, 0, "%s", err);
	}
	SSL_CTX_set_app_data(m->ctx, m);
	*out = m;
	return 0;
}

void aegis_mtls_free(struct aegis_mtls *m)
{
	if (m == NULL)
		return;
	sessions_clear(m);
	SSL_CTX_set_app_data(m->ctx, NULL); /* SSLs that outlive m hold the context */
	SSL_CTX_free(m->ctx);
	free(m);
}

SSL_CTX *aegis_mtls_ctx(const struct aegis_mtls *m)
{
	return m->ctx;
}

const char *aegis_mtls_own_id(const struct aegis_mtls *m)
{
	return m->own_id;
}

int aegis_mtls_maybe_reload(struct aegis_mtls *m)
{
	struct file_id ids[3];
	if (stat_files(m->dir, ids) != 0)
		return 0; /* a file missing for a moment (rename-based rotation): look again next time */
	bool same = true;
	for (int i = 0; i < 3; i++)
		same = same && ids[i].dev == m->ids[i].dev && ids[i].ino == m->ids[i].ino &&
		       ids[i].size == m->ids[i].size && ids[i].mtime.tv_sec == m->ids[i].mtime.tv_sec &&
		       ids[i].mtime.tv_nsec == m->ids[i].mtime.tv_nsec;
	if (same)
		return 0;
	char err[512], own[AEGIS_MTLS_ID_MAX];
	SSL_CTX *ctx = build_ctx(m->dir, own, sizeof(own), err, sizeof(err));
	if (ctx == NULL) {
		m->stats.reload_errors++;
		AEGIS_LOG(AEGIS_LOG_WARN, "certificate rotation refused; keeping the current certificate",
		          LKV_S("dir", m->dir), LKV_S("error", err));
		/* Not recorded as seen: the next look retries, so the second half of a rotation is picked up.
		 */
		return AEGIS_EINVAL;
	}
	memcpy(m->ids, ids, sizeof(ids));
	SSL_CTX_set_app_data(m->ctx, NULL);
	SSL_CTX_free(m->ctx); /* SSLs made from it hold their own reference */
	m->ctx = ctx;
	SSL_CTX_set_app_data(ctx, m);
	sessions_clear(m); /* resumed sessions would skip the new trust bundle and certificate */
	memcpy(m->own_id, own, sizeof(own));
	m->stats.reloads++;
	AEGIS_LOG(AEGIS_LOG_INFO, "certificate rotated", LKV_S("dir", m->dir), LKV_S("identity", m->own_id));
	return 1;
}

int aegis_mtls_check_peer(struct aegis_mtls *m, SSL *ssl, const char *const *expected, size_t n,
                          const char *what, char *peer_id, size_t peer_id_len)
{
	char id[AEGIS_MTLS_ID_MAX] = "";
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK) {
		aegis_mtls_note_failure(m, ssl, what);
		return AEGIS_EPROTO;
	}
	if (aegis_mtls_cert_id(cert, id, sizeof(id)) != 0) {
		m->stats.peer_wrong_id++;
		AEGIS_LOG(AEGIS_LOG_WARN, "mtls peer refused: certificate has no SPIFFE ID",
		          LKV_S("conn", what));
		return AEGIS_EPROTO;
	}
	if (peer_id != NULL)
		snprintf(peer_id, peer_id_len, "%s", id);
	bool ok = n == 0;
	for (size_t i = 0; i < n && !ok; i++)
		ok = aegis_mtls_id_match(id, expected[i]);
	if (!ok) {
		m->stats.peer_wrong_id++;
		AEGIS_LOG(AEGIS_LOG_WARN, "mtls peer refused: wrong identity", LKV_S("conn", what),
		          LKV_S("peer", id), LKV_S("expected", expected[0]));
		return AEGIS_EPROTO;
	}
	m->stats.handshakes_ok++;
	if (SSL_session_reused(ssl))
		m->stats.handshakes_resumed++;
	return 0;
}

void aegis_mtls_resume(struct aegis_mtls *m, SSL *ssl, const char *key)
{
	pthread_once(&key_once, key_index_init);
	char *k = key_index >= 0 ? strdup(key) : NULL;
	if (k == NULL || SSL_set_ex_data(ssl, key_index, k) != 1) {
		free(k);
		return; /* no resumption: a full handshake, as before */
	}
	const struct session_slot *s = &m->sessions[key_hash(key) % SESSION_SLOTS];
	if (s->sess == NULL || strcmp(s->key, key) != 0 || !SSL_SESSION_is_resumable(s->sess))
		return;
	/* The peer's certificate is not checked again on resumption: not past its expiry, at least. */
	X509 *peer = SSL_SESSION_get0_peer(s->sess);
	if (peer == NULL || X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)
		return;
	(void)SSL_set_session(ssl, s->sess);
}

void aegis_mtls_note_failure(struct aegis_mtls *m, SSL *ssl, const char *what)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	char err[256];
	openssl_error(err, sizeof(err));
	if (v == X509_V_ERR_CERT_HAS_EXPIRED || v == X509_V_ERR_CERT_NOT_YET_VALID) {
		m->stats.peer_expired++;
		AEGIS_LOG(AEGIS_LOG_WARN, "mtls peer refused: certificate expired or not yet valid",
		          LKV_S("conn", what), LKV_S("verify", X509_verify_cert_error_string(v)));
	} else if (v != X509_V_OK ||
	           (ssl != NULL && SSL_get0_peer_certificate(ssl) == NULL && SSL_is_init_finished(ssl))) {
		m->stats.peer_untrusted++;
		AEGIS_LOG(AEGIS_LOG_WARN, "mtls peer refused: untrusted certificate", LKV_S("conn", what),
		          LKV_S("verify", X509_verify_cert_error_string(v)));
	} else {
		/* The peer refused us (our certificate was not good enough for it) or the stream broke. */
		m->stats.handshake_errors++;
		AEGIS_LOG(AEGIS_LOG_WARN, "mtls handshake failed", LKV_S("conn", what), LKV_S("error", err));
	}
}

void aegis_mtls_note_timeout(struct aegis_mtls *m, const char *what)
{
	m->stats.handshake_timeouts++;
	AEGIS_LOG(AEGIS_LOG_WARN, "mtls handshake timed out", LKV_S("conn", what));
}

void aegis_mtls_stats(const struct aegis_mtls *m, struct aegis_mtls_stats *out)
{
	*out = m->stats;
}

/* OpenSSL's read buffer for one record is 16709 bytes (SSL3_RT_MAX_PLAIN_LENGTH and the encrypted overhead,
 * header and alignment). */
#define READ_AHEAD_BUF (4u * 16709u)

void aegis_mtls_read_ahead(SSL *ssl)
{
	SSL_set_read_ahead(ssl, 1);
	SSL_set_default_read_buffer_len(ssl, READ_AHEAD_BUF);
}

int aegis_mtls_read_gather(SSL *ssl, uint8_t *buf, size_t cap, size_t *have)
{
	int n;
	do {
		ERR_clear_error();
		size_t room = cap - *have;
		n = SSL_read(ssl, buf + *have, (int)(room > INT32_MAX ? INT32_MAX : room));
		if (n > 0)
			*have += (size_t)n;
	} while (n > 0 && *have < cap && SSL_has_pending(ssl));
	return n;
}
