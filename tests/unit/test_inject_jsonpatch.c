/* Tests of inject/inject_jsonpatch.c: RFC 6902 add/remove/replace/test with RFC 6901 pointers (escapes,
 * array indices, "-"), and the errors (missing parents, bad indices, unsupported operations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"

static void *tmalloc(size_t n)
{
	return test_malloc(n);
}

static void tfree(void *p)
{
	test_free(p);
}

/* Applies patch to doc (both JSON text); want is the result's JSON text, or NULL for "must fail". */
static void check(const char *doc, const char *patch, const char *want)
{
	json_t *d = json_loads(doc, 0, NULL), *p = json_loads(patch, 0, NULL);
	assert_non_null(d);
	assert_non_null(p);
	struct aegis_diag diag = {0};
	int rc = aegis_inject_jsonpatch_apply(d, p, &diag);
	if (want == NULL) {
		if (rc == 0)
			fail_msg("%s applied to %s", patch, doc);
		assert_true(diag.msg[0] != '\0');
	} else {
		json_t *w = json_loads(want, 0, NULL);
		assert_non_null(w);
		if (rc != 0 || !json_equal(d, w)) {
			char *s = json_dumps(d, JSON_COMPACT);
			fail_msg("%s: got %s (rc %d: %s), want %s", patch, s, rc, diag.msg, want);
		}
		json_decref(w);
	}
	json_decref(d);
	json_decref(p);
}

static void test_ops(void **state)
{
	check("{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[1]}]", "{\"a\":[1]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":2}]", "{\"a\":[1,2]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0}]", "{\"a\":[0,1]}");
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/1\",\"value\":2}]", "{\"a\":[1,2]}");
	check("{\"m\":{}}", "[{\"op\":\"add\",\"path\":\"/m/aegis.io~1status\",\"value\":\"injected\"}]",
	      "{\"m\":{\"aegis.io/status\":\"injected\"}}");
	check("{\"m\":{\"a~b\":1}}", "[{\"op\":\"replace\",\"path\":\"/m/a~0b\",\"value\":2}]",
	      "{\"m\":{\"a~b\":2}}");
	check("{\"a\":1,\"b\":2}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", "{\"b\":2}");
	check("{\"a\":[1,2,3]}", "[{\"op\":\"remove\",\"path\":\"/a/1\"}]", "{\"a\":[1,3]}");
	check("{\"a\":[1,2]}", "[{\"op\":\"replace\",\"path\":\"/a/1\",\"value\":9}]", "{\"a\":[1,9]}");
	check("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]", "{\"a\":1}");
	/* A later op adding inside a value an earlier op inserted must not write into the patch itself. */
	check("{}",
	      "[{\"op\":\"add\",\"path\":\"/l\",\"value\":[]},{\"op\":\"add\",\"path\":\"/l/-\",\"value\":1},"
	      "{\"op\":\"add\",\"path\":\"/l/-\",\"value\":2}]",
	      "{\"l\":[1,2]}");
}

static void test_errors(void **state)
{
	check("{}", "{}", NULL);
	check("{}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b\"}]", NULL);
	check("{}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", NULL);
	check("{}", "[{\"op\":\"add\",\"path\":\"a\",\"value\":1}]", NULL);
	check("{}", "[{\"op\":\"add\",\"path\":\"\",\"value\":1}]", NULL);
	check("{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", NULL);
	check("{}", "[{\"path\":\"/a\",\"value\":1}]", NULL);
	check("{}", "[{\"op\":\"remove\",\"path\":\"/a\"}]", NULL);
	check("{}", "[{\"op\":\"replace\",\"path\":\"/a\",\"value\":1}]", NULL);
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":1}]", NULL);
	check("{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":1}]", NULL);
	check("{\"a\":[1]}", "[{\"op\":\"remove\",\"path\":\"/a/-\"}]", NULL);
	check("{\"a\":[1]}", "[{\"op\":\"remove\",\"path\":\"/a/1\"}]", NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", NULL);
	check("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", NULL);
	check("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a~2\",\"value\":2}]", NULL);
}

int main(void)
{
	json_set_alloc_funcs(tmalloc, tfree);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ops),
	        cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
