/* What the admin endpoint shows about the xDS client: the config_dump section "xds" (per type URL: the
 * ACKed version, the last nonce, the last ACK or NACK with its error and time, counts) and the aegis_xds_*
 * metrics. Reads only aegis_ads_client_status() (a thread-safe snapshot), so it needs no lock of its own. */
#ifndef AEGIS_ADMIN_XDS_H
#define AEGIS_ADMIN_XDS_H

#include "admin.h"
#include "aegis/ads_client.h"
#include "aegis/err.h"

/* Registers "xds" and its metrics. c is borrowed and must outlive the admin. Returns 0 or an aegis_err
 * from the registry. */
int aegis_admin_xds_register(struct aegis_admin *a, struct aegis_ads_client *c) AEGIS_WUR;

#endif
