/* Private to xds/: what the decoders of xds_decode.c (Istio types, NameTable) and xds_endpoints.c
 * (ClusterLoadAssignment, and turning endpoints into ServiceEntry endpoints and EndpointSlices) share. */
#ifndef AEGIS_XDS_DECODE_INT_H
#define AEGIS_XDS_DECODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/arena.h"
#include "aegis/model.h"
#include "xds_int.h"

/* CLA endpoints are kept apart until aegis_xds_builder_finish() knows every ServiceEntry. */
struct xds_cla {
	const char *host;
	const char *subset;
	uint32_t port;
	struct aegis_workload *eps;
	const char **ep_cluster; /* each endpoint's cluster from its metadata ("" = none) */
	size_t n_eps;
};

extern const char *const aegis_xds_type_urls[AEGIS_XDS_NTYPES];

/* Fills diag with "<Kind> <name>: <reason>" and returns err. */
int aegis_xds_reject(struct aegis_diag *diag, int err, enum aegis_xds_type t, const char *name,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Arena copies; NULL s gives "". NULL only when the arena is exhausted. */
char *aegis_xds_adup(struct aegis_arena *a, const char *s);
char *aegis_xds_adup_lower(struct aegis_arena *a, const char *s);

bool aegis_xds_valid_ip(const char *s);
bool aegis_xds_valid_host(const char *s); /* DNS name as Istio accepts it; "*." prefix and "*" allowed */
bool aegis_xds_valid_port(uint32_t p);    /* 1..65535 */

/* Sets m from a resource name "<ns>/<name>" (fallback when name is ""; no '/' = namespace "default"). */
int aegis_xds_set_meta(struct aegis_arena *a, struct aegis_meta *m, const char *name, const char *fallback,
                       enum aegis_xds_type t) AEGIS_WUR;

int aegis_xds_decode_cla(struct aegis_xds_builder *b, const char *name, const uint8_t *body, size_t len,
                         struct aegis_diag *diag) AEGIS_WUR;

/* Grows an arena array by doubling (old copies are abandoned in the arena); 0 or AEGIS_ENOMEM. */
#define AEGIS_XDS_GROW(A, ARR, N, CAP)                                                                       \
	({                                                                                                   \
		int rc_ = 0;                                                                                 \
		if ((N) == (CAP)) {                                                                          \
			size_t nc_ = (CAP) ? (CAP)*2 : 16;                                                   \
			void *p_ = aegis_arena_grow((A), (ARR), (N), nc_, sizeof(*(ARR)));                   \
			if (p_ == NULL)                                                                      \
				rc_ = AEGIS_ENOMEM;                                                          \
			else {                                                                               \
				(ARR) = p_;                                                                  \
				(CAP) = nc_;                                                                 \
			}                                                                                    \
		}                                                                                            \
		rc_;                                                                                         \
	})

#endif
