/* Tests of inject/inject_yaml.c: YAML 1.2 core-schema typing of plain scalars, quoted scalars kept as
 * strings, several documents, and the limits (duplicate keys, depth, alias expansion). */
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

static json_t *load(const char *text)
{
	json_t *docs;
	struct aegis_diag diag = {0};
	if (aegis_inject_yaml_to_json("t.yaml", text, strlen(text), &docs, &diag) != 0)
		fail_msg("%d:%d: %s", diag.line, diag.column, diag.msg);
	return docs;
}

static void test_types(void **state)
{
	json_t *docs =
	        load("a: 1\nb: \"1\"\nc: -0x1F\nd: 1.5e3\ne: true\nf: 'false'\ng: ~\nh:\ni: null\nj: 0o17\n"
	             "k: .inf\nl: yes\nm: 99999999999999999999999\nn: '5432'\no: 1.2.3\np: "
	             "\"$(POD_NAMESPACE)\"\n");
	json_t *want = json_loads(
	        "[{\"a\":1,\"b\":\"1\",\"c\":\"-0x1F\",\"d\":1500.0,\"e\":true,\"f\":\"false\",\"g\":null,"
	        "\"h\":null,\"i\":null,\"j\":15,\"k\":\".inf\",\"l\":\"yes\","
	        "\"m\":1e23,\"n\":\"5432\",\"o\":\"1.2.3\","
	        "\"p\":\"$(POD_NAMESPACE)\"}]",
	        0, NULL);
	assert_non_null(want);
	if (!json_equal(docs, want)) {
		char *s = json_dumps(docs, JSON_COMPACT);
		fail_msg("got %s", s);
	}
	json_decref(want);
	json_decref(docs);
}

static void test_documents(void **state)
{
	json_t *docs = load("---\nkind: Pod\n---\n# only a comment\n---\nkind: Service\n---\n");
	assert_int_equal(json_array_size(docs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(docs, 1), "kind")), "Service");
	json_decref(docs);
	docs = load("{\"json\": [1, 2, {\"is\": \"yaml\"}]}");
	assert_int_equal(json_array_size(json_object_get(json_array_get(docs, 0), "json")), 3);
	json_decref(docs);
	docs = load("base: &b {x: 1}\nuse: *b\n");
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(json_array_get(docs, 0), "use"), "x")), 1);
	json_decref(docs);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text;
		int err, line;
		const char *msg;
	} bad[] = {
	        {"a: 1\na: 2\n", AEGIS_EPARSE, 2, "duplicate key 'a'"},
	        {"? [a]\n: 1\n", AEGIS_EPARSE, 1, "key must be a scalar"},
	        {"a: [1, 2\n", AEGIS_EPARSE, 2, "YAML"},
	        {"a: b: c\n", AEGIS_EPARSE, 1, "YAML"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *docs = NULL;
		struct aegis_diag diag = {0};
		int rc = aegis_inject_yaml_to_json("t.yaml", bad[i].text, strlen(bad[i].text), &docs, &diag);
		if (rc != bad[i].err || diag.line != bad[i].line || strstr(diag.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: rc %d at %d: %s", i, rc, diag.line, diag.msg);
		assert_null(docs);
	}
	/* Deep nesting and a billion laughs stop at the limits instead of exhausting memory. */
	char deep[400];
	memset(deep, '[', 200);
	memset(deep + 200, ']', 200);
	json_t *docs = NULL;
	assert_int_equal(aegis_inject_yaml_to_json("deep", deep, sizeof(deep), &docs, NULL), AEGIS_ELIMIT);
	const char *laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
	assert_int_equal(aegis_inject_yaml_to_json("laughs", laughs, strlen(laughs), &docs, NULL),
	                 AEGIS_ELIMIT);
	assert_null(docs);
}

int main(void)
{
	json_set_alloc_funcs(tmalloc, tfree);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_types),
	        cmocka_unit_test(test_documents),
	        cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
