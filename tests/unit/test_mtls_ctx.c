/* Tests mtls/mtls_ctx.c with real TLS 1.3 handshakes over in-memory BIO pairs. Certificates are made at
 * test time by scripts/make-certs.sh (the openssl CLI) in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "aegis/log.h"
#include "mtls_ctx.h"

static char tmp[256];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static const char *dir(const char *name)
{
	static char buf[8][512];
	static int k;
	char *b = buf[k++ % 8];
	snprintf(b, 512, "%s/%s", tmp, name);
	return b;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/aegis-test-mtls.XXXXXX");
	if (mkdtemp(tmp) == NULL)
		return -1;
	const char *src = getenv("AEGIS_SRC_DIR") ? getenv("AEGIS_SRC_DIR") : AEGIS_SRC_DIR;
	char mk[600];
	snprintf(mk, sizeof(mk), "%s/scripts/make-certs.sh", src);
	sh("bash %s ca %s", mk, dir("ca"));
	sh("bash %s ca %s --name other-ca", mk, dir("ca2"));
	sh("bash %s workload %s %s default reviews", mk, dir("ca"), dir("reviews"));
	sh("bash %s workload %s %s default productpage", mk, dir("ca"), dir("productpage"));
	sh("bash %s workload %s %s default old --expired", mk, dir("ca"), dir("expired"));
	sh("bash %s workload %s %s default reviews", mk, dir("ca2"), dir("foreign"));
	sh("bash %s workload %s %s default rotating", mk, dir("ca"), dir("rot"));
	aegis_log_set_level(AEGIS_LOG_OFF);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", tmp);
	return 0;
}

static struct aegis_mtls *load(const char *name)
{
	struct aegis_mtls *m = NULL;
	struct aegis_diag d = {0};
	int rc = aegis_mtls_new(dir(name), &m, &d);
	if (rc != 0) {
		char buf[600];
		fail_msg("%s", aegis_diag_str(&d, buf, sizeof(buf)));
	}
	return m;
}

/* Runs a handshake between two SSLs joined by a BIO pair. Returns 0 when both finished. */
static int handshake(SSL *c, SSL *s)
{
	BIO *bc, *bs;
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	bool cdone = false, sdone = false;
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(c);
			if (r == 1)
				cdone = true;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				return -1;
		}
		if (!sdone) {
			int r = SSL_do_handshake(s);
			if (r == 1)
				sdone = true;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				return -2;
		}
	}
	if (!(cdone && sdone))
		return -3;
	/* TLS 1.3: the server verifies the client's certificate after the client thinks it is done; push
	 * one byte each way so that a refusal by the server surfaces on the client. */
	char b = 'x', r;
	if (SSL_write(c, &b, 1) != 1 || SSL_read(s, &r, 1) != 1)
		return -4;
	if (SSL_write(s, &b, 1) != 1 || SSL_read(c, &r, 1) != 1)
		return -5;
	return 0;
}

static void test_identity_extraction_and_matching(void **state)
{
	(void)state;
	struct aegis_mtls *m = load("reviews");
	assert_string_equal(aegis_mtls_own_id(m), "spiffe://cluster.local/ns/default/sa/reviews");
	assert_true(aegis_mtls_id_match("spiffe://cluster.local/ns/default/sa/reviews",
	                                "spiffe://cluster.local/ns/default/sa/reviews"));
	assert_true(aegis_mtls_id_match("spiffe://cluster.local/ns/default/sa/reviews",
	                                "spiffe://cluster.local/ns/default/sa/*"));
	assert_false(aegis_mtls_id_match("spiffe://cluster.local/ns/default/sa/reviews/x",
	                                 "spiffe://cluster.local/ns/default/sa/*"));
	assert_false(aegis_mtls_id_match("spiffe://cluster.local/ns/default/sa/",
	                                 "spiffe://cluster.local/ns/default/sa/*"));
	assert_false(aegis_mtls_id_match("spiffe://cluster.local/ns/other/sa/reviews",
	                                 "spiffe://cluster.local/ns/default/sa/*"));
	assert_false(aegis_mtls_id_match("spiffe://cluster.local/ns/default/sa/reviewsX",
	                                 "spiffe://cluster.local/ns/default/sa/reviews"));
	aegis_mtls_free(m);
}

static void test_handshake_ok_both_ways(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("reviews");
	SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(SSL_version(c), TLS1_3_VERSION);
	const char *want_server[] = {"spiffe://cluster.local/ns/default/sa/reviews"};
	const char *want_client[] = {"spiffe://cluster.local/ns/default/sa/*"};
	char peer[AEGIS_MTLS_ID_MAX];
	assert_int_equal(aegis_mtls_check_peer(cm, c, want_server, 1, "test", peer, sizeof(peer)), 0);
	assert_string_equal(peer, want_server[0]);
	assert_int_equal(aegis_mtls_check_peer(sm, s, want_client, 1, "test", peer, sizeof(peer)), 0);
	assert_string_equal(peer, "spiffe://cluster.local/ns/default/sa/productpage");
	struct aegis_mtls_stats st;
	aegis_mtls_stats(cm, &st);
	assert_int_equal(st.handshakes_ok, 1);
	SSL_free(c);
	SSL_free(s);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
}

/* aegis_mtls_read_gather: three records the peer wrote come back in one call, cut at cap; then the
 * peer's close_notify is what the next call reports. */
static void test_read_gather(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("reviews");
	SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
	aegis_mtls_read_ahead(c);
	assert_int_equal(handshake(c, s), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(SSL_write(s, "0123456789", 10), 10);
	uint8_t buf[64];
	size_t have = 0;
	assert_true(aegis_mtls_read_gather(c, buf, sizeof(buf), &have) > 0);
	assert_int_equal(have, 30);
	assert_memory_equal(buf + 20, "0123456789", 10);
	assert_int_equal(SSL_write(s, "abcdef", 6), 6);
	have = 0;
	assert_true(aegis_mtls_read_gather(c, buf, 4, &have) > 0); /* cap: the rest stays in the SSL */
	assert_int_equal(have, 4);
	have = 0;
	assert_true(aegis_mtls_read_gather(c, buf, sizeof(buf), &have) > 0);
	assert_int_equal(have, 2);
	assert_memory_equal(buf, "ef", 2);
	assert_int_equal(SSL_shutdown(s), 0);
	have = 0;
	int n = aegis_mtls_read_gather(c, buf, sizeof(buf), &have);
	assert_int_equal(have, 0);
	assert_int_equal(SSL_get_error(c, n), SSL_ERROR_ZERO_RETURN);
	SSL_free(c);
	SSL_free(s);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
}

static void test_wrong_identity_refused(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("reviews");
	SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_equal(handshake(c, s), 0);
	const char *want[] = {"spiffe://cluster.local/ns/default/sa/ratings"};
	assert_int_equal(aegis_mtls_check_peer(cm, c, want, 1, "test", NULL, 0), AEGIS_EPROTO);
	struct aegis_mtls_stats st;
	aegis_mtls_stats(cm, &st);
	assert_int_equal(st.peer_wrong_id, 1);
	assert_int_equal(st.handshakes_ok, 0);
	SSL_free(c);
	SSL_free(s);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
}

/* A server whose certificate another CA signed: the client's verification fails the handshake. */
static void test_wrong_ca_refused(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("foreign");
	SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_not_equal(handshake(c, s), 0);
	aegis_mtls_note_failure(cm, c, "test");
	struct aegis_mtls_stats st;
	aegis_mtls_stats(cm, &st);
	assert_int_equal(st.peer_untrusted, 1);
	SSL_free(c);
	SSL_free(s);
	/* The other way round: a client from another CA is refused by the server. */
	cm = (aegis_mtls_free(cm), load("foreign"));
	/* It trusts our CA too, so that it gets as far as sending its own certificate. */
	assert_int_equal(
	        X509_STORE_load_file(SSL_CTX_get_cert_store(aegis_mtls_ctx(cm)), dir("ca/root-cert.pem")), 1);
	struct aegis_mtls *sm2 = load("reviews");
	c = SSL_new(aegis_mtls_ctx(cm));
	s = SSL_new(aegis_mtls_ctx(sm2));
	assert_int_not_equal(handshake(c, s), 0);
	aegis_mtls_note_failure(sm2, s, "test");
	aegis_mtls_stats(sm2, &st);
	assert_int_equal(st.peer_untrusted, 1);
	SSL_free(c);
	SSL_free(s);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
	aegis_mtls_free(sm2);
}

static void test_expired_refused(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("expired");
	SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_not_equal(handshake(c, s), 0);
	aegis_mtls_note_failure(cm, c, "test");
	struct aegis_mtls_stats st;
	aegis_mtls_stats(cm, &st);
	assert_int_equal(st.peer_expired, 1);
	SSL_free(c);
	SSL_free(s);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
}

/* A client without a certificate: refused by the server (client certificates are required). */
static void test_client_certificate_required(void **state)
{
	(void)state;
	struct aegis_mtls *sm = load("reviews");
	SSL_CTX *bare = SSL_CTX_new(TLS_method());
	assert_int_equal(SSL_CTX_load_verify_locations(bare, dir("ca/root-cert.pem"), NULL), 1);
	SSL *c = SSL_new(bare), *s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_not_equal(handshake(c, s), 0);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(bare);
	/* TLS 1.2 is refused too. */
	SSL_CTX *old = SSL_CTX_new(TLS_method());
	SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION);
	c = SSL_new(old);
	s = SSL_new(aegis_mtls_ctx(sm));
	assert_int_not_equal(handshake(c, s), 0);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(old);
	aegis_mtls_free(sm);
	ERR_clear_error();
}

/* Rotation: unchanged files -> nothing; new files -> a new context for new connections while an SSL made
 * before keeps working; a key that does not match -> refused, the current context stays. */
/* Client resumption (aegis_mtls_resume): a second connection under the same key resumes and its peer
 * still passes (or fails) the identity check, since the session remembers the certificate; another key
 * makes a full handshake; the newest ticket of a key is the one used. */
static void test_resumption(void **state)
{
	(void)state;
	struct aegis_mtls *cm = load("productpage"), *sm = load("reviews");
	const char *want[] = {"spiffe://cluster.local/ns/default/sa/reviews"};
	const char *other[] = {"spiffe://cluster.local/ns/default/sa/ratings"};
	static const char *const keys[] = {"10.0.0.1|9080|a", "10.0.0.1|9080|a", "10.0.0.2|9080|a",
	                                   "10.0.0.1|9080|a"};
	static const int reused[] = {0, 1, 0, 1};
	for (size_t i = 0; i < 4; i++) {
		SSL *c = SSL_new(aegis_mtls_ctx(cm)), *s = SSL_new(aegis_mtls_ctx(sm));
		aegis_mtls_resume(cm, c, keys[i]);
		assert_int_equal(handshake(c, s), 0); /* the client reads the server's tickets here */
		if (SSL_session_reused(c) != reused[i])
			fail_msg("connection %zu: reused %d, wanted %d", i, SSL_session_reused(c), reused[i]);
		assert_int_equal(aegis_mtls_check_peer(cm, c, want, 1, "test", NULL, 0), 0);
		if (i == 3) /* a resumed session still shows who the peer is */
			assert_int_equal(aegis_mtls_check_peer(cm, c, other, 1, "test", NULL, 0),
			                 AEGIS_EPROTO);
		SSL_free(c);
		SSL_free(s);
	}
	struct aegis_mtls_stats st;
	aegis_mtls_stats(cm, &st);
	assert_int_equal(st.handshakes_ok, 4);
	assert_int_equal(st.handshakes_resumed, 2);
	assert_int_equal(st.peer_wrong_id, 1);
	aegis_mtls_free(cm);
	aegis_mtls_free(sm);
}

static void test_rotation(void **state)
{
	(void)state;
	const char *src = getenv("AEGIS_SRC_DIR") ? getenv("AEGIS_SRC_DIR") : AEGIS_SRC_DIR;
	struct aegis_mtls *m = load("rot"), *peer = load("reviews");
	assert_int_equal(aegis_mtls_maybe_reload(m), 0);
	SSL *old_c = SSL_new(aegis_mtls_ctx(m));
	SSL *old_s = SSL_new(aegis_mtls_ctx(peer));
	aegis_mtls_resume(m, old_c, "peer|1"); /* leaves a ticket for "peer|1" */
	assert_int_equal(handshake(old_c, old_s), 0);

	sh("bash %s/scripts/make-certs.sh workload %s %s default rotated", src, dir("ca"), dir("rot"));
	assert_int_equal(aegis_mtls_maybe_reload(m), 1);
	assert_string_equal(aegis_mtls_own_id(m), "spiffe://cluster.local/ns/default/sa/rotated");
	/* The connection made before the rotation still carries data. */
	char b = 'y', r = 0;
	assert_int_equal(SSL_write(old_c, &b, 1), 1);
	assert_int_equal(SSL_read(old_s, &r, 1), 1);
	assert_int_equal(r, 'y');
	/* A new connection presents the new identity, in a full handshake: the ticket from before the
	 * rotation is not used. */
	SSL *c = SSL_new(aegis_mtls_ctx(m)), *s = SSL_new(aegis_mtls_ctx(peer));
	aegis_mtls_resume(m, c, "peer|1");
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(SSL_session_reused(c), 0);
	char id[AEGIS_MTLS_ID_MAX];
	assert_int_equal(aegis_mtls_check_peer(peer, s, NULL, 0, "test", id, sizeof(id)), 0);
	assert_string_equal(id, "spiffe://cluster.local/ns/default/sa/rotated");
	SSL_free(c);
	SSL_free(s);

	/* Half a rotation: another workload's key. */
	sh("cp %s/key.pem %s/key.pem", dir("productpage"), dir("rot"));
	assert_int_equal(aegis_mtls_maybe_reload(m), AEGIS_EINVAL);
	assert_string_equal(aegis_mtls_own_id(m), "spiffe://cluster.local/ns/default/sa/rotated");
	struct aegis_mtls_stats st;
	aegis_mtls_stats(m, &st);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.reload_errors, 1);
	SSL_free(old_c);
	SSL_free(old_s);
	aegis_mtls_free(m);
	aegis_mtls_free(peer);
}

static void test_missing_files(void **state)
{
	(void)state;
	struct aegis_mtls *m = NULL;
	struct aegis_diag d = {0};
	assert_int_equal(aegis_mtls_new(dir("nope"), &m, &d), AEGIS_EIO);
	assert_null(m);
	assert_non_null(strstr(d.msg, "cert-chain.pem"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_identity_extraction_and_matching),
	        cmocka_unit_test(test_handshake_ok_both_ways),
	        cmocka_unit_test(test_read_gather),
	        cmocka_unit_test(test_wrong_identity_refused),
	        cmocka_unit_test(test_wrong_ca_refused),
	        cmocka_unit_test(test_expired_refused),
	        cmocka_unit_test(test_client_certificate_required),
	        cmocka_unit_test(test_resumption),
	        cmocka_unit_test(test_rotation),
	        cmocka_unit_test(test_missing_files),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
