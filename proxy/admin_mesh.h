/* What the admin endpoint shows about mesh traffic (docs/admin.md, docs/mesh.md): the config_dump sections
 * "routes" (VIP:port -> service and its weighted destinations), "clusters" (outbound|<port>|<subset>|<host>
 * with their traffic policy and endpoints), "endpoints" (one row per cluster endpoint with locality, weight,
 * health and ejection state), "secrets" (the workload certificate and the trust bundle, with the rotation
 * count), and the Prometheus metrics of the mTLS layer and the listeners. Read-only accessors of
 * mesh_outbound.h, mesh_inbound.h, mtls_ctx.h and mesh_hbone.h only; loop thread only. */
#ifndef AEGIS_ADMIN_MESH_H
#define AEGIS_ADMIN_MESH_H

#include "admin.h"
#include "aegis/err.h"
#include "mesh_inbound.h"
#include "mesh_outbound.h"
#include "mtls_ctx.h"

struct aegis_mesh_hbone;

/* Everything borrowed; any member may be NULL (a proxy without --mesh, or without --cert-dir), and the
 * sections then show what exists. The struct itself must outlive the admin. */
struct aegis_admin_mesh_ctx {
	struct aegis_mesh_outbound *outbound;
	struct aegis_mesh_inbound *inbound;
	struct aegis_mtls *mtls;
	struct aegis_mesh_hbone *hbone;
	const char *cert_dir;
};

/* Registers the sections (routes, clusters, endpoints, secrets, hbone) and the metrics function. Returns 0 or
 * an aegis_err from the registry. */
int aegis_admin_mesh_register(struct aegis_admin *a, struct aegis_admin_mesh_ctx *ctx) AEGIS_WUR;

#endif
