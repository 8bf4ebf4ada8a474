/* A writer for the Prometheus text exposition format (version 0.0.4), the body of /stats/prometheus.
 *
 * Samples of one metric family must be contiguous and follow one HELP and one TYPE line, so the API is
 * family-shaped: aegis_metrics_family() opens a family, then aegis_metrics_value() / _histogram() write
 * its samples. Label values are escaped here (backslash, double quote, newline) so that a name taken from
 * configuration can never break the format; metric and label names are checked against the Prometheus
 * grammar and a bad one poisons the writer (a programming error, reported by aegis_metrics_finish()).
 *
 * The output is bounded: the buffer never grows past the cap given to aegis_metrics_init(); past it,
 * writes stop and aegis_metrics_finish() returns AEGIS_ELIMIT. Not thread-safe (one writer per scrape). */
#ifndef AEGIS_METRICS_H
#define AEGIS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"

enum aegis_metric_type { AEGIS_METRIC_COUNTER = 0, AEGIS_METRIC_GAUGE, AEGIS_METRIC_HISTOGRAM };

struct aegis_metric_label {
	const char *name;
	const char *value;
};

struct aegis_metrics {
	char *buf;
	size_t len, cap, max;
	int err;          /* first error; every later write is a no-op */
	char family[128]; /* the open family's name ("" before the first) */
	enum aegis_metric_type type;
};

/* Starts an empty writer whose output may grow up to max bytes. Cannot fail (nothing is allocated
 * until the first write). */
void aegis_metrics_init(struct aegis_metrics *m, size_t max);

/* Releases the buffer. The writer may be initialised again. */
void aegis_metrics_free(struct aegis_metrics *m);

/* Opens a family: writes "# HELP name help" and "# TYPE name type". help is escaped (backslash and
 * newline). A second family with the name of the one already open is ignored, so that two callbacks may
 * add samples to one family in a row. */
void aegis_metrics_family(struct aegis_metrics *m, const char *name, enum aegis_metric_type type,
                          const char *help);

/* One sample of the open counter or gauge family: name{labels} value. n_labels may be 0 (labels NULL). */
void aegis_metrics_value(struct aegis_metrics *m, const struct aegis_metric_label *labels, size_t n_labels,
                         double value);
/* The same for integer counts, printed exactly (a double loses precision past 2^53). */
void aegis_metrics_uint(struct aegis_metrics *m, const struct aegis_metric_label *labels, size_t n_labels,
                        uint64_t value);

/* A plain uint64_t counter kept in a stats struct, described for aegis_metrics_fields(). */
struct aegis_metric_field {
	const char *name;
	const char *help;
	size_t off; /* offsetof(the stats struct, the uint64_t field) */
};

/* Writes one unlabelled counter family per field, its value read from stats + off. For the stats
 * structs of the DNS server and the forwarder, whose counters are all uint64_t. */
void aegis_metrics_fields(struct aegis_metrics *m, const struct aegis_metric_field *fields, size_t n,
                          const void *stats);

/* One histogram of the open histogram family. counts[i] is the number of observations in bucket i
 * alone (NOT cumulative): bounds[i-1] < x <= bounds[i]; the last count, counts[n_bounds], is the
 * overflow bucket above the last bound. The writer emits the cumulative _bucket{le=...} series ending
 * with le="+Inf", then _sum and _count. bounds must be increasing. */
void aegis_metrics_histogram(struct aegis_metrics *m, const struct aegis_metric_label *labels,
                             size_t n_labels, const double *bounds, size_t n_bounds, const uint64_t *counts,
                             double sum);

/* Returns 0 and the text (NUL-terminated, *len bytes, owned by m) or the first error: AEGIS_ELIMIT
 * (over the cap), AEGIS_ENOMEM, AEGIS_EINVAL (bad metric or label name, sample without a family). */
int aegis_metrics_finish(struct aegis_metrics *m, const char **text, size_t *len) AEGIS_WUR;

/* True when s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); labels additionally exclude ':' and
 * the reserved "__" prefix. */
bool aegis_metrics_name_ok(const char *s, bool label);

#endif
