/* libFuzzer harness for proxy/resolv_conf.c: any bytes must parse or fail cleanly, and a successful parse
 * must respect every bound of struct aegis_resolv_conf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolv_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aegis_resolv_conf rc;
	struct aegis_diag diag;
	int r = aegis_resolv_conf_parse("fuzz", (const char *)data, size, &rc, &diag);
	if (r != 0 && r != AEGIS_EPARSE)
		abort();
	if (r == 0) {
		if (rc.n_ns > AEGIS_RESOLV_MAX_NS || rc.n_search > AEGIS_CONFIG_MAX_SEARCH || rc.ndots > 15 ||
		    rc.timeout > 30 || rc.attempts > 5)
			abort();
		for (size_t i = 0; i < rc.n_search; i++) {
			if (strnlen(rc.search[i], sizeof(rc.search[i])) == sizeof(rc.search[i]))
				abort();
		}
	}
	return 0;
}
