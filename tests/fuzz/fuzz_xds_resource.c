/* libFuzzer harness for the xDS resource decoders (xds/xds_decode.c, xds/xds_endpoints.c): the first byte
 * picks the resource type (low 3 bits: ServiceEntry, VirtualService, DestinationRule, ClusterLoadAssignment,
 * NameTable, and WorkloadEntry, which has no xDS type of its own and travels as a ServiceEntry endpoint, so
 * the harness wraps it into one) and whether the rest is the bare message or an Any of a Resource wrapper
 * (0x80), as aegis_xds_unwrap() sees it on the wire. A decode must succeed with a complete config, or fail
 * with a "<Kind> <name>: reason" diagnostic; either way nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/log.h"
#include "xds_int.h"

#define N_KINDS 6 /* the five xDS types, then WorkloadEntry */

/* A ServiceEntry {hosts: ["we.fuzz.example"], endpoints: [<data>]} in wire format. */
static uint8_t *wrap_workload(const uint8_t *data, size_t size, size_t *len)
{
	static const uint8_t host[] = "\x0a\x0fwe.fuzz.example";
	uint8_t *out = malloc(sizeof(host) - 1 + 1 + 10 + size);
	if (out == NULL)
		abort();
	size_t n = sizeof(host) - 1;
	memcpy(out, host, n);
	out[n++] = (6 << 3) | 2; /* field 6 (endpoints), length-delimited */
	for (size_t v = size;; v >>= 7) {
		out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		if (v <= 0x7f)
			break;
	}
	memcpy(out + n, data, size);
	*len = n + size;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aegis_log_set_level(AEGIS_LOG_OFF);
	if (size < 1)
		return 0;
	unsigned kind = (data[0] & 0x7f) % N_KINDS;
	bool wrapped = (data[0] & 0x80) != 0;
	enum aegis_xds_type t = kind == N_KINDS - 1 ? AEGIS_XDS_SE : (enum aegis_xds_type)kind;
	const uint8_t *body = data + 1;
	size_t blen = size - 1;
	uint8_t *owned = NULL;
	char name[512] = "";
	struct aegis_diag diag = {0};
	int rc = 0;
	if (wrapped) {
		/* The bytes are a Resource wrapper, whose inner Any must carry this type's URL. */
		rc = aegis_xds_unwrap(AEGIS_XDS_URL_RESOURCE, body, blen, aegis_xds_type_url(t), name,
		                      sizeof(name), &body, &blen, &diag);
		if (rc != 0 && diag.msg[0] == '\0')
			abort();
	}
	if (rc == 0 && kind == N_KINDS - 1)
		body = owned = wrap_workload(body, blen, &blen);
	if (rc == 0) {
		struct aegis_xds_builder b;
		if (aegis_xds_builder_init(&b) != 0)
			abort();
		rc = aegis_xds_decode(&b, t, name, body, blen, &diag);
		if (rc != 0) {
			if (diag.msg[0] == '\0')
				abort();
			aegis_xds_builder_abort(&b);
		} else {
			struct aegis_config *cfg = NULL;
			if (aegis_xds_builder_finish(&b, &cfg) == 0)
				aegis_config_free(cfg);
		}
	}
	free(owned);
	return 0;
}
