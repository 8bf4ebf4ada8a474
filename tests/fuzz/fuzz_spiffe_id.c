/* libFuzzer harness for the mTLS peer identity: any DER a peer can present as its certificate goes through
 * OpenSSL's parser and then aegis_mtls_cert_id() (the subjectAltName walk that picks the spiffe:// URI), at
 * a roomy and a tight buffer size, and the identity through aegis_mtls_id_match(). An identity must be a
 * NUL-free spiffe:// string that fits its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "mtls_ctx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *cert = d2i_X509(NULL, &p, (long)size);
	if (cert == NULL)
		return 0;
	char id[AEGIS_MTLS_ID_MAX], small[24];
	int rc = aegis_mtls_cert_id(cert, id, sizeof(id));
	if (rc == 0) {
		size_t n = strnlen(id, sizeof(id));
		if (n == sizeof(id) || n < 9 || memcmp(id, "spiffe://", 9) != 0)
			abort();
		if (!aegis_mtls_id_match(id, id))
			abort();
		(void)aegis_mtls_id_match(id, "spiffe://cluster.local/ns/default/sa/*");
	} else if (rc != AEGIS_ENOTFOUND && rc != AEGIS_ESPACE) {
		abort();
	}
	rc = aegis_mtls_cert_id(cert, small, sizeof(small));
	if (rc == 0 && strnlen(small, sizeof(small)) == sizeof(small))
		abort();
	X509_free(cert);
	return 0;
}
