/* Unit tests of common/buf.c: appends keep a NUL after the content, the capacity doubles from 16 KiB
 * and stops at max + 1, and a bound or memory failure appends nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aegis/buf.h"

static void test_append_grows_and_terminates(void **state)
{
	(void)state;
	char *b = NULL;
	size_t len = 0, cap = 0;
	assert_int_equal(aegis_buf_append(&b, &len, &cap, "", 0, 100000), 0);
	assert_non_null(b);
	assert_string_equal(b, ""); /* an empty append still yields a string */
	assert_int_equal(aegis_buf_append(&b, &len, &cap, "hello ", 6, 100000), 0);
	assert_int_equal(aegis_buf_append(&b, &len, &cap, "world", 5, 100000), 0);
	assert_string_equal(b, "hello world");
	assert_int_equal(len, 11);
	assert_int_equal(cap, 16384);
	static char big[40000];
	memset(big, 'x', sizeof(big));
	assert_int_equal(aegis_buf_append(&b, &len, &cap, big, sizeof(big), 100000), 0);
	assert_int_equal(len, 11 + sizeof(big));
	assert_int_equal(cap, 65536); /* 16 KiB doubled until it holds the content and its NUL */
	assert_int_equal(b[len], '\0');
	assert_memory_equal(b + 11, big, sizeof(big));
	free(b);
}

static void test_bound(void **state)
{
	(void)state;
	char *b = NULL;
	size_t len = 0, cap = 0;
	static char big[20000];
	memset(big, 'y', sizeof(big));
	/* max 20000: exactly the bound fits, with the capacity clipped to max + 1 */
	assert_int_equal(aegis_buf_append(&b, &len, &cap, big, 10000, 20000), 0);
	assert_int_equal(aegis_buf_append(&b, &len, &cap, big, 10000, 20000), 0);
	assert_int_equal(len, 20000);
	assert_int_equal(cap, 20001);
	assert_int_equal(b[20000], '\0');
	/* one more byte is refused and changes nothing */
	assert_int_equal(aegis_buf_append(&b, &len, &cap, "z", 1, 20000), AEGIS_ELIMIT);
	assert_int_equal(len, 20000);
	assert_int_equal(b[19999], 'y');
	assert_int_equal(b[20000], '\0');
	/* a length that would wrap size_t is refused, not wrapped */
	assert_int_equal(aegis_buf_append(&b, &len, &cap, "z", (size_t)-1, (size_t)-2), AEGIS_ELIMIT);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_append_grows_and_terminates),
	        cmocka_unit_test(test_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
