/* Tests proxy/metrics.c: the Prometheus text format (HELP/TYPE lines, label and HELP escaping, number
 * forms), cumulative histogram buckets, name checks and the output cap. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static const char *finish(struct aegis_metrics *m)
{
	const char *text = NULL;
	size_t len = 0;
	assert_int_equal(aegis_metrics_finish(m, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_counter_and_labels(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	aegis_metrics_family(&m, "aegis_x_total", AEGIS_METRIC_COUNTER, "Things.");
	struct aegis_metric_label l[2] = {{"type", "A"}, {"rcode", "0"}};
	aegis_metrics_uint(&m, l, 2, 7);
	aegis_metrics_uint(&m, NULL, 0, 18446744073709551615ull);
	assert_string_equal(finish(&m), "# HELP aegis_x_total Things.\n# TYPE aegis_x_total counter\n"
	                                "aegis_x_total{type=\"A\",rcode=\"0\"} 7\n"
	                                "aegis_x_total 18446744073709551615\n");
	aegis_metrics_free(&m);
	(void)state;
}

/* Counters described by offsetof tables (the DNS server's and the forwarder's stats): each field's own
 * value under its own family, none read from a neighbour. */
static void test_fields(void **state)
{
	struct stats {
		uint64_t a;
		uint32_t pad;
		uint64_t b;
	} st = {.a = 3, .pad = 99, .b = 18446744073709551615ull};
	static const struct aegis_metric_field f[] = {
	        {"aegis_a_total", "A.", offsetof(struct stats, a)},
	        {"aegis_b_total", "B.", offsetof(struct stats, b)},
	};
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	aegis_metrics_fields(&m, f, 2, &st);
	assert_string_equal(finish(&m),
	                    "# HELP aegis_a_total A.\n# TYPE aegis_a_total counter\naegis_a_total 3\n"
	                    "# HELP aegis_b_total B.\n# TYPE aegis_b_total counter\n"
	                    "aegis_b_total 18446744073709551615\n");
	aegis_metrics_free(&m);
	(void)state;
}

static void test_escaping(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	aegis_metrics_family(&m, "g", AEGIS_METRIC_GAUGE, "back\\slash \"quoted\"\nnext line");
	struct aegis_metric_label l = {"name", "a\\b\"c\nd"};
	aegis_metrics_value(&m, &l, 1, 1.5);
	/* HELP escapes backslash and newline only; label values also the double quote. */
	assert_string_equal(finish(&m), "# HELP g back\\\\slash \"quoted\"\\nnext line\n# TYPE g gauge\n"
	                                "g{name=\"a\\\\b\\\"c\\nd\"} 1.5\n");
	aegis_metrics_free(&m);
	(void)state;
}

static void test_number_forms(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	aegis_metrics_family(&m, "g", AEGIS_METRIC_GAUGE, "");
	aegis_metrics_value(&m, NULL, 0, NAN);
	aegis_metrics_value(&m, NULL, 0, INFINITY);
	aegis_metrics_value(&m, NULL, 0, -INFINITY);
	aegis_metrics_value(&m, NULL, 0, 0.1);
	aegis_metrics_value(&m, NULL, 0, 1e-7);
	aegis_metrics_value(&m, NULL, 0, 1764096000.25);
	assert_string_equal(finish(&m), "# HELP g \n# TYPE g gauge\ng NaN\ng +Inf\ng -Inf\ng 0.1\ng 1e-07\n"
	                                "g 1764096000.25\n");
	aegis_metrics_free(&m);
	(void)state;
}

static void test_histogram_cumulative(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	const double bounds[] = {0.00025, 0.5, 2};
	const uint64_t counts[] = {1, 2, 0, 4}; /* per bucket; the last is above 2 */
	struct aegis_metric_label l = {"server", "10.0.0.1:53"};
	aegis_metrics_family(&m, "h_seconds", AEGIS_METRIC_HISTOGRAM, "Latency.");
	aegis_metrics_histogram(&m, &l, 1, bounds, 3, counts, 12.5);
	aegis_metrics_histogram(&m, NULL, 0, bounds, 3, counts, 0);
	assert_string_equal(finish(&m), "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n"
	                                "h_seconds_bucket{server=\"10.0.0.1:53\",le=\"0.00025\"} 1\n"
	                                "h_seconds_bucket{server=\"10.0.0.1:53\",le=\"0.5\"} 3\n"
	                                "h_seconds_bucket{server=\"10.0.0.1:53\",le=\"2\"} 3\n"
	                                "h_seconds_bucket{server=\"10.0.0.1:53\",le=\"+Inf\"} 7\n"
	                                "h_seconds_sum{server=\"10.0.0.1:53\"} 12.5\n"
	                                "h_seconds_count{server=\"10.0.0.1:53\"} 7\n"
	                                "h_seconds_bucket{le=\"0.00025\"} 1\nh_seconds_bucket{le=\"0.5\"} 3\n"
	                                "h_seconds_bucket{le=\"2\"} 3\nh_seconds_bucket{le=\"+Inf\"} 7\n"
	                                "h_seconds_sum 0\nh_seconds_count 7\n");
	aegis_metrics_free(&m);
	(void)state;
}

static void test_family_once(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	aegis_metrics_family(&m, "c_total", AEGIS_METRIC_COUNTER, "x");
	aegis_metrics_uint(&m, NULL, 0, 1);
	aegis_metrics_family(&m, "c_total", AEGIS_METRIC_COUNTER, "x"); /* a second callback, same family */
	aegis_metrics_uint(&m, &(struct aegis_metric_label){"k", "v"}, 1, 2);
	assert_string_equal(finish(&m),
	                    "# HELP c_total x\n# TYPE c_total counter\nc_total 1\nc_total{k=\"v\"} 2\n");
	aegis_metrics_free(&m);
	(void)state;
}

static void expect_error(void (*fn)(struct aegis_metrics *), int err)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 1 << 20);
	fn(&m);
	const char *t;
	size_t n;
	assert_int_equal(aegis_metrics_finish(&m, &t, &n), err);
	aegis_metrics_free(&m);
}

static void bad_metric_name(struct aegis_metrics *m)
{
	aegis_metrics_family(m, "9lives", AEGIS_METRIC_GAUGE, "");
}
static void bad_label_name(struct aegis_metrics *m)
{
	aegis_metrics_family(m, "ok", AEGIS_METRIC_GAUGE, "");
	aegis_metrics_value(m, &(struct aegis_metric_label){"__reserved", "x"}, 1, 1);
}
static void label_with_colon(struct aegis_metrics *m)
{
	aegis_metrics_family(m, "ok", AEGIS_METRIC_GAUGE, "");
	aegis_metrics_value(m, &(struct aegis_metric_label){"a:b", "x"}, 1, 1);
}
static void sample_without_family(struct aegis_metrics *m)
{
	aegis_metrics_value(m, NULL, 0, 1);
}
static void value_in_histogram(struct aegis_metrics *m)
{
	aegis_metrics_family(m, "h", AEGIS_METRIC_HISTOGRAM, "");
	aegis_metrics_value(m, NULL, 0, 1);
}
static void unsorted_bounds(struct aegis_metrics *m)
{
	const double b[] = {2, 1};
	const uint64_t c[] = {0, 0, 0};
	aegis_metrics_family(m, "h", AEGIS_METRIC_HISTOGRAM, "");
	aegis_metrics_histogram(m, NULL, 0, b, 2, c, 0);
}

static void test_errors(void **state)
{
	expect_error(bad_metric_name, AEGIS_EINVAL);
	expect_error(bad_label_name, AEGIS_EINVAL);
	expect_error(label_with_colon, AEGIS_EINVAL);
	expect_error(sample_without_family, AEGIS_EINVAL);
	expect_error(value_in_histogram, AEGIS_EINVAL);
	expect_error(unsorted_bounds, AEGIS_EINVAL);
	assert_true(aegis_metrics_name_ok("aegis:recorded_rule", false));
	assert_false(aegis_metrics_name_ok("aegis:x", true));
	assert_false(aegis_metrics_name_ok("has space", false));
	assert_false(aegis_metrics_name_ok("", false));
	(void)state;
}

static void test_cap(void **state)
{
	struct aegis_metrics m;
	aegis_metrics_init(&m, 100);
	aegis_metrics_family(&m, "a_long_metric_name_total", AEGIS_METRIC_COUNTER, "help text that is long");
	for (int i = 0; i < 10; i++)
		aegis_metrics_uint(&m, NULL, 0, (uint64_t)i);
	const char *t;
	size_t n;
	assert_int_equal(aegis_metrics_finish(&m, &t, &n), AEGIS_ELIMIT);
	assert_true(m.len < 100);
	aegis_metrics_free(&m);

	/* An empty writer finishes with an empty text. */
	aegis_metrics_init(&m, 100);
	assert_string_equal(finish(&m), "");
	aegis_metrics_free(&m);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counter_and_labels),
	        cmocka_unit_test(test_fields),
	        cmocka_unit_test(test_escaping),
	        cmocka_unit_test(test_number_forms),
	        cmocka_unit_test(test_histogram_cumulative),
	        cmocka_unit_test(test_family_once),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
