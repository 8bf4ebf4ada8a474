/* libFuzzer harness for aegis-iptables' resolv.conf reader (iptables/capture_opts.c): with
 * --capture-dns=resolv the pod's resolv.conf decides which nameservers are captured, so any bytes there
 * must parse or fail with a diagnostic, and a parse must respect AEGIS_CAPTURE_MAX_NS. */
#include <stdint.h>
#include <stdlib.h>

#include "capture_opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct aegis_capture_opts o;
	aegis_capture_opts_init(&o);
	struct aegis_diag diag = {0};
	int rc = aegis_capture_opts_set_resolv(&o, "fuzz", (const char *)data, size, &diag);
	if (rc != 0 && diag.msg[0] == '\0')
		abort();
	if (o.n_nameservers > AEGIS_CAPTURE_MAX_NS)
		abort();
	return 0;
}
