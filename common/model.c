/* Lifetime of struct aegis_config: see include/aegis/model.h. */
#include "aegis/model.h"

#include <stdlib.h>
#include <string.h>

#include "aegis/limits.h"

struct aegis_config *aegis_config_new(void)
{
	struct aegis_config *cfg = calloc(1, sizeof(*cfg));
	if (cfg != NULL)
		aegis_arena_init(&cfg->arena, 0, AEGIS_CONFIG_MAX_BYTES);
	return cfg;
}

void aegis_config_free(struct aegis_config *cfg)
{
	if (cfg == NULL)
		return;
	aegis_arena_free(&cfg->arena);
	free(cfg);
}

const struct aegis_workload_entry *aegis_config_pod_of(const struct aegis_config *cfg, const char *ns,
                                                       const char *addr, const char *pod)
{
	for (size_t i = 0; i < cfg->n_workload_entries; i++) {
		const struct aegis_workload_entry *we = &cfg->workload_entries[i];
		if (strcmp(we->meta.namespace_, ns) != 0)
			continue;
		if (strcmp(we->spec.address, addr) == 0 || (pod[0] && strcmp(we->meta.name, pod) == 0))
			return we;
	}
	return NULL;
}
