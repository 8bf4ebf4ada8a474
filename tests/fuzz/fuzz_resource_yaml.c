/* libFuzzer harness for the YAML resource loader: any bytes a configuration file can hold go through
 * aegis_yaml_load_buffer(). It must either load or fail with a diagnostic, and never crash or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "aegis/log.h"
#include "aegis/resource_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aegis_log_set_level(AEGIS_LOG_OFF); /* skipped kinds log at debug; keep the fuzzer quiet */
	struct aegis_config *cfg = NULL;
	struct aegis_diag diag;
	int rc = aegis_yaml_load_buffer("fuzz.yaml", (const char *)data, size, &cfg, &diag);
	/* The contract: success gives a config, failure gives none and a message. */
	if ((rc == 0) != (cfg != NULL) || (rc != 0 && diag.msg[0] == '\0'))
		abort();
	aegis_config_free(cfg);
	return 0;
}
