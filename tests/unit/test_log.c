/* common/log.c: JSON lines (escaping, typed values, the cut of an over-long line), levels, and the level
 * mirror that keeps a dlopen'ed module's copy in step (proxy/ads_loader.c). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "aegis/err.h"
#include "aegis/log.h"

/* Runs fn with the log going to a pipe; returns what it wrote (at most cap-1 bytes, NUL-terminated). */
static size_t capture(void (*fn)(void), char *buf, size_t cap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	aegis_log_set_fd(p[1]);
	fn();
	aegis_log_set_fd(-1);
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(p[0], buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	buf[n] = '\0';
	return n;
}

static void emit_typed(void)
{
	AEGIS_LOG(AEGIS_LOG_WARN, "hello \"world\"", LKV_S("s", "a\\b\n\t\x01"), LKV_I("i", -42),
	          LKV_D("d", 1.5), LKV_B("b", 1), LKV_S("null", NULL));
}

static void test_json_line(void **state)
{
	(void)state;
	aegis_log_set_level(AEGIS_LOG_INFO);
	char out[8192];
	size_t n = capture(emit_typed, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_non_null(strstr(out, "\"ts\":\"20"));
	json_error_t err;
	json_t *j = json_loads(out, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "hello \"world\"");
	assert_string_equal(json_string_value(json_object_get(j, "s")), "a\\b\n\t\x01");
	assert_int_equal(json_integer_value(json_object_get(j, "i")), -42);
	assert_true(json_real_value(json_object_get(j, "d")) == 1.5);
	assert_true(json_is_true(json_object_get(j, "b")));
	assert_string_equal(json_string_value(json_object_get(j, "null")), "");
	json_decref(j);
}

static char long_value[10000];

static void emit_long(void)
{
	AEGIS_LOG(AEGIS_LOG_ERROR, "long", LKV_S("v", long_value));
}

/* A line longer than the buffer is cut, still one line; escapes are never split by the cut. */
static void test_long_line_cut(void **state)
{
	(void)state;
	aegis_log_set_level(AEGIS_LOG_INFO);
	char out[16384];
	for (size_t shift = 0; shift < 4; shift++) {
		memset(long_value, 0, sizeof(long_value));
		for (size_t i = 0; i < sizeof(long_value) - 1; i++)
			long_value[i] = (i + shift) % 2 ? '"' : 'x';
		size_t n = capture(emit_long, out, sizeof(out));
		assert_true(n <= 4096);
		assert_int_equal(out[n - 1], '\n');
		assert_null(memchr(out, '\n', n - 1));
		assert_int_equal(out[n - 2], '}');
		json_error_t err;
		json_t *j = json_loads(out, 0, &err); /* still valid JSON */
		if (j == NULL)
			fail_msg("cut line is not JSON (%s): ...%s", err.text, out + n - 40);
		assert_string_equal(json_string_value(json_object_get(j, "msg")), "long");
		json_decref(j);
	}
}

static size_t pad_len;

static void emit_fields(void)
{
	char pad[4200];
	memset(pad, 'p', pad_len);
	pad[pad_len] = '\0';
	AEGIS_LOG(AEGIS_LOG_ERROR, "fields", LKV_S("pad", pad), LKV_I("i", 1234567),
	          LKV_S("u", "\xc3\xa9\xe2\x82\xac\""), LKV_B("b", 0), LKV_S("tail", "end"));
}

/* Every cut position, through every kind of field and a string of multi-byte characters: always JSON. */
static void test_cut_anywhere(void **state)
{
	(void)state;
	aegis_log_set_level(AEGIS_LOG_INFO);
	char out[8192];
	bool saw_whole = false, saw_cut = false;
	for (pad_len = 3900; pad_len < 4100; pad_len++) {
		size_t n = capture(emit_fields, out, sizeof(out));
		json_error_t err;
		json_t *j = json_loads(out, 0, &err);
		if (j == NULL)
			fail_msg("pad %zu: not JSON (%s): ...%s", pad_len, err.text,
			         out + (n > 60 ? n - 60 : 0));
		if (json_object_get(j, "tail") != NULL)
			saw_whole = true;
		else
			saw_cut = true;
		json_decref(j);
	}
	assert_true(saw_whole && saw_cut);
}

static void test_levels(void **state)
{
	(void)state;
	enum aegis_log_level l;
	assert_int_equal(aegis_log_parse_level("DEBUG", &l), 0);
	assert_int_equal(l, AEGIS_LOG_DEBUG);
	assert_int_equal(aegis_log_parse_level("warning", &l), 0);
	assert_int_equal(l, AEGIS_LOG_WARN);
	assert_int_equal(aegis_log_parse_level("off", &l), 0);
	assert_int_equal(l, AEGIS_LOG_OFF);
	assert_int_equal(aegis_log_parse_level("verbose", &l), AEGIS_EINVAL);
	assert_string_equal(aegis_log_level_name(AEGIS_LOG_ERROR), "error");

	char out[256];
	aegis_log_set_level(AEGIS_LOG_ERROR);
	assert_int_equal(capture(emit_typed, out, sizeof(out)), 0); /* warn < error: nothing written */
	aegis_log_set_level(AEGIS_LOG_INFO);
}

static void test_mirror(void **state)
{
	(void)state;
	enum aegis_log_level copy = AEGIS_LOG_OFF;
	aegis_log_set_level(AEGIS_LOG_WARN);
	aegis_log_mirror_level(&copy);
	assert_int_equal(copy, AEGIS_LOG_WARN); /* taken at once */
	aegis_log_set_level(AEGIS_LOG_DEBUG);
	assert_int_equal(copy, AEGIS_LOG_DEBUG); /* and kept in step */
	aegis_log_mirror_level(NULL);
	aegis_log_set_level(AEGIS_LOG_ERROR);
	assert_int_equal(copy, AEGIS_LOG_DEBUG); /* not after NULL */
	aegis_log_set_level(AEGIS_LOG_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_line),    cmocka_unit_test(test_long_line_cut),
	        cmocka_unit_test(test_cut_anywhere), cmocka_unit_test(test_levels),
	        cmocka_unit_test(test_mirror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
