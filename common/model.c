/* Lifetime of struct aegis_config: see include/aegis/model.h. */
#include "aegis/model.h"

#include <stdlib.h>

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
