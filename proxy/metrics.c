/* Prometheus text writer: see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"counter", "gauge", "histogram"};

void aegis_metrics_init(struct aegis_metrics *m, size_t max)
{
	memset(m, 0, sizeof(*m));
	m->max = max;
}

void aegis_metrics_free(struct aegis_metrics *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

static void fail(struct aegis_metrics *m, int err)
{
	if (m->err == 0)
		m->err = err;
}

/* Appends n bytes, keeping room for the terminating NUL. */
static void put(struct aegis_metrics *m, const char *s, size_t n)
{
	if (m->err != 0)
		return;
	if (m->len + n + 1 > m->cap) {
		if (m->len + n + 1 > m->max) {
			fail(m, AEGIS_ELIMIT);
			return;
		}
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + n + 1)
			cap *= 2;
		if (cap > m->max)
			cap = m->max;
		char *nb = realloc(m->buf, cap);
		if (nb == NULL) {
			fail(m, AEGIS_ENOMEM);
			return;
		}
		m->buf = nb;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, s, n);
	m->len += n;
	m->buf[m->len] = '\0';
}

static void puts_(struct aegis_metrics *m, const char *s)
{
	put(m, s, strlen(s));
}

/* Label values escape backslash, double quote and newline; HELP text only backslash and newline. */
static void put_escaped(struct aegis_metrics *m, const char *s, bool quote)
{
	const char *run = s;
	for (const char *p = s; *p; p++) {
		const char *esc = NULL;
		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '\n')
			esc = "\\n";
		else if (*p == '"' && quote)
			esc = "\\\"";
		if (esc == NULL)
			continue;
		put(m, run, (size_t)(p - run));
		puts_(m, esc);
		run = p + 1;
	}
	puts_(m, run);
}

/* Go's ParseFloat (what Prometheus reads) takes NaN, +Inf, -Inf; integers print without an exponent
 * and other values in the shortest form that reads back exactly. */
static void fmt_double(char *buf, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
	} else if (isinf(v)) {
		snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
	} else {
		snprintf(buf, len, "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, len, "%.17g", v);
	}
}

static void put_double(struct aegis_metrics *m, double v)
{
	char tmp[40];
	fmt_double(tmp, sizeof(tmp), v);
	puts_(m, tmp);
}

static void put_uint(struct aegis_metrics *m, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	put(m, tmp, (size_t)n);
}

bool aegis_metrics_name_ok(const char *s, bool label)
{
	if (s == NULL || s[0] == '\0')
		return false;
	if (label && s[0] == '_' && s[1] == '_')
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		bool alpha =
		        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

void aegis_metrics_family(struct aegis_metrics *m, const char *name, enum aegis_metric_type type,
                          const char *help)
{
	if (!aegis_metrics_name_ok(name, false) || strlen(name) >= sizeof(m->family) - 16) {
		fail(m, AEGIS_EINVAL);
		return;
	}
	if (strcmp(m->family, name) == 0 && m->type == type)
		return;
	snprintf(m->family, sizeof(m->family), "%s", name);
	m->type = type;
	puts_(m, "# HELP ");
	puts_(m, name);
	puts_(m, " ");
	put_escaped(m, help ? help : "", false);
	puts_(m, "\n# TYPE ");
	puts_(m, name);
	puts_(m, " ");
	puts_(m, type_names[type]);
	puts_(m, "\n");
}

/* Writes "<family><suffix>{labels[,extra]} " (no braces when there are no labels at all). */
static void put_series(struct aegis_metrics *m, const char *suffix, const struct aegis_metric_label *labels,
                       size_t n_labels, const char *extra_name, const char *extra_value)
{
	if (m->family[0] == '\0') {
		fail(m, AEGIS_EINVAL);
		return;
	}
	puts_(m, m->family);
	puts_(m, suffix);
	if (n_labels > 0 || extra_name != NULL) {
		puts_(m, "{");
		for (size_t i = 0; i < n_labels; i++) {
			if (!aegis_metrics_name_ok(labels[i].name, true)) {
				fail(m, AEGIS_EINVAL);
				return;
			}
			if (i > 0)
				puts_(m, ",");
			puts_(m, labels[i].name);
			puts_(m, "=\"");
			put_escaped(m, labels[i].value ? labels[i].value : "", true);
			puts_(m, "\"");
		}
		if (extra_name != NULL) {
			if (n_labels > 0)
				puts_(m, ",");
			puts_(m, extra_name);
			puts_(m, "=\"");
			puts_(m, extra_value);
			puts_(m, "\"");
		}
		puts_(m, "}");
	}
	puts_(m, " ");
}

void aegis_metrics_value(struct aegis_metrics *m, const struct aegis_metric_label *labels, size_t n_labels,
                         double value)
{
	if (m->type == AEGIS_METRIC_HISTOGRAM)
		fail(m, AEGIS_EINVAL);
	put_series(m, "", labels, n_labels, NULL, NULL);
	put_double(m, value);
	puts_(m, "\n");
}

void aegis_metrics_uint(struct aegis_metrics *m, const struct aegis_metric_label *labels, size_t n_labels,
                        uint64_t value)
{
	if (m->type == AEGIS_METRIC_HISTOGRAM)
		fail(m, AEGIS_EINVAL);
	put_series(m, "", labels, n_labels, NULL, NULL);
	put_uint(m, value);
	puts_(m, "\n");
}

void aegis_metrics_histogram(struct aegis_metrics *m, const struct aegis_metric_label *labels,
                             size_t n_labels, const double *bounds, size_t n_bounds, const uint64_t *counts,
                             double sum)
{
	if (m->type != AEGIS_METRIC_HISTOGRAM)
		fail(m, AEGIS_EINVAL);
	uint64_t cum = 0;
	for (size_t i = 0; i <= n_bounds; i++) {
		char le[40];
		if (i < n_bounds) {
			if (i > 0 && !(bounds[i] > bounds[i - 1])) {
				fail(m, AEGIS_EINVAL);
				return;
			}
			fmt_double(le, sizeof(le), bounds[i]);
		} else {
			fmt_double(le, sizeof(le), INFINITY);
		}
		cum += counts[i];
		put_series(m, "_bucket", labels, n_labels, "le", le);
		put_uint(m, cum);
		puts_(m, "\n");
	}
	put_series(m, "_sum", labels, n_labels, NULL, NULL);
	put_double(m, sum);
	puts_(m, "\n");
	put_series(m, "_count", labels, n_labels, NULL, NULL);
	put_uint(m, cum);
	puts_(m, "\n");
}

int aegis_metrics_finish(struct aegis_metrics *m, const char **text, size_t *len)
{
	if (m->err != 0)
		return m->err;
	*text = m->buf ? m->buf : "";
	*len = m->len;
	return 0;
}

void aegis_metrics_fields(struct aegis_metrics *m, const struct aegis_metric_field *fields, size_t n,
                          const void *stats)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		memcpy(&v, (const char *)stats + fields[i].off, sizeof(v));
		aegis_metrics_family(m, fields[i].name, AEGIS_METRIC_COUNTER, fields[i].help);
		aegis_metrics_uint(m, NULL, 0, v);
	}
}
