/* The one symbol that lib/aegis/aegis-ads-client.so exports (include/aegis/ads_client.h, "The module";
 * ads_module.map hides everything else, so the module's copies of aegis_common and aegis_mtls never
 * collide with the proxy's). */
#include "aegis/ads_client.h"

const struct aegis_ads_module aegis_ads_module = {
        .abi = AEGIS_ADS_MODULE_ABI,
        .opts_size = sizeof(struct aegis_ads_client_opts),
        .status_size = sizeof(struct aegis_ads_status),
        .config_size = sizeof(struct aegis_config),
        .version = AEGIS_VERSION,
        .start = aegis_ads_client_start,
        .status = aegis_ads_client_status,
        .stop = aegis_ads_client_stop,
        .log_level = &aegis_log_level_current,
};
