/* Tests proxy/dns_search.c: the match order, short forms, search suffixes, mesh domains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns_search.h"
#include "model_builders.h"

struct fixture {
	struct aegis_config *cfg;
	struct aegis_table *t;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->cfg = aegis_config_new();
	struct aegis_config *c = f->cfg;
	mb_se(c, "api", "api.example.com", "10.0.0.1");
	mb_se(c, "wild", "*.wild.com", "10.0.0.2");
	mb_se(c, "short", "api api.ns1.svc", "10.0.0.3"); /* to tell longest-first from shortest-first */
	mb_svc(c, "", "ns1", "foo", "10.96.0.1");
	mb_svc(c, "", "other", "bar", "10.96.0.2");
	struct aegis_table_opts o = {0};
	if (aegis_table_build(c, &o, &f->t, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	aegis_table_unref(f->t);
	aegis_config_free(f->cfg);
	free(f);
	return 0;
}

static struct aegis_search *matcher(const char *ns, const char *const *search, size_t n)
{
	struct aegis_search_opts o = {
	        .namespace_ = ns, .cluster_domain = NULL, .search = search, .n_search = n};
	struct aegis_search *s = NULL;
	assert_int_equal(aegis_search_new(&o, &s), 0);
	return s;
}

/* Matches name (presentation) and returns the match; the query buffer stays valid until the next call. */
static struct aegis_match match(const struct aegis_search *s, const struct aegis_table *t, const char *name)
{
	static uint8_t q[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, q);
	assert_true(n > 0);
	struct aegis_match m;
	memset(&m, 0xa5, sizeof(m)); /* every field must be written */
	aegis_search_match(s, t, q, (size_t)n, &m);
	if (m.kind == AEGIS_MATCH_NONE) {
		assert_null(m.node);
		assert_null(m.target);
		assert_int_equal(m.target_len, 0);
	}
	return m;
}

/* Checks an ALIAS to target (presentation, no trailing dot) answered from the node named node_name. */
static void assert_alias(struct aegis_match m, const char *target, const char *node_name)
{
	assert_int_equal(m.kind, AEGIS_MATCH_ALIAS);
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(target, w);
	assert_true(n > 1);
	assert_int_equal(m.target_len, (size_t)n - 1); /* without the root byte */
	assert_memory_equal(m.target, w, (size_t)n - 1);
	n = aegis_dns_name_from_str(node_name, w);
	assert_int_equal(m.node->name_len, n);
	uint8_t buf[AEGIS_DNS_NAME_BUF];
	assert_memory_equal(aegis_node_owner(m.node, buf).name, w, (size_t)n);
}

static bool points_into(const uint8_t *p, const struct aegis_dns_node *n)
{
	const uint8_t *nm = aegis_node_name(n).name;
	return p >= nm && p < nm + n->name_len;
}

static void test_exact_and_wildcard(void **state)
{
	struct fixture *f = *state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	struct aegis_match m = match(s, f->t, "api.example.com");
	assert_int_equal(m.kind, AEGIS_MATCH_EXACT);
	assert_non_null(m.node);
	assert_null(m.target);
	m = match(s, f->t, "foo.ns1.svc.cluster.local"); /* exact wins over any short form or suffix */
	assert_int_equal(m.kind, AEGIS_MATCH_EXACT);
	m = match(s, f->t, "x.y.wild.com");
	assert_int_equal(m.kind, AEGIS_MATCH_WILDCARD);
	assert_int_equal(m.node->kind, AEGIS_NODE_WILDCARD);
	assert_null(m.target);
	assert_int_equal(match(s, f->t, "wild.com").kind, AEGIS_MATCH_NONE);
	/* case: the caller lower-cases; from_str did it here */
	assert_int_equal(match(s, f->t, "API.Example.COM").kind, AEGIS_MATCH_EXACT);
	aegis_search_free(s);
}

static void test_short_forms(void **state)
{
	struct fixture *f = *state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	assert_alias(match(s, f->t, "foo"), "foo.ns1.svc.cluster.local", "foo.ns1.svc.cluster.local");
	struct aegis_match m = match(s, f->t, "foo");
	assert_true(points_into(m.target, m.node)); /* the target is the node's own name */
	assert_alias(match(s, f->t, "bar.other"), "bar.other.svc.cluster.local",
	             "bar.other.svc.cluster.local");
	assert_alias(match(s, f->t, "bar.other.svc"), "bar.other.svc.cluster.local",
	             "bar.other.svc.cluster.local");
	/* 1 label in another namespace, 3 labels not ending in svc, 4 labels: no short form */
	assert_int_equal(match(s, f->t, "bar").kind, AEGIS_MATCH_NONE);
	assert_int_equal(match(s, f->t, "bar.other.xyz").kind, AEGIS_MATCH_NONE);
	assert_int_equal(match(s, f->t, "bar.other.svc.cluster").kind, AEGIS_MATCH_NONE);
	aegis_search_free(s);

	/* without a namespace there is no 1-label form (and no default search list), the others remain */
	s = matcher(NULL, NULL, 0);
	assert_int_equal(aegis_search_count(s), 0);
	assert_int_equal(match(s, f->t, "foo").kind, AEGIS_MATCH_NONE);
	assert_alias(match(s, f->t, "foo.ns1"), "foo.ns1.svc.cluster.local", "foo.ns1.svc.cluster.local");
	assert_alias(match(s, f->t, "foo.ns1.svc"), "foo.ns1.svc.cluster.local", "foo.ns1.svc.cluster.local");
	aegis_search_free(s);
}

static void test_search_suffixes(void **state)
{
	struct fixture *f = *state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	/* ndots:5 expansion of api.example.com: the first query already answers */
	assert_alias(match(s, f->t, "api.example.com.ns1.svc.cluster.local"), "api.example.com",
	             "api.example.com");
	assert_alias(match(s, f->t, "api.example.com.svc.cluster.local"), "api.example.com",
	             "api.example.com");
	assert_alias(match(s, f->t, "api.example.com.cluster.local"), "api.example.com", "api.example.com");
	/* a short form under a suffix: "bar.other" asked from ns1 */
	assert_alias(match(s, f->t, "bar.other.ns1.svc.cluster.local"), "bar.other.svc.cluster.local",
	             "bar.other.svc.cluster.local");
	assert_alias(match(s, f->t, "bar.other.svc.svc.cluster.local"), "bar.other.svc.cluster.local",
	             "bar.other.svc.cluster.local");
	/* no match */
	assert_int_equal(match(s, f->t, "nothing.ns1.svc.cluster.local").kind, AEGIS_MATCH_NONE);
	assert_int_equal(match(s, f->t, "nothing.example.org").kind, AEGIS_MATCH_NONE);
	assert_int_equal(match(s, f->t, "cluster.local").kind, AEGIS_MATCH_NONE); /* X must be non-empty */
	assert_int_equal(match(s, f->t, ".").kind, AEGIS_MATCH_NONE);
	/* no table yet */
	assert_int_equal(match(s, NULL, "api.example.com").kind, AEGIS_MATCH_NONE);
	aegis_search_free(s);
}

static void test_wildcard_under_suffix(void **state)
{
	struct fixture *f = *state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	static uint8_t q[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str("x.wild.com.ns1.svc.cluster.local", q);
	struct aegis_match m;
	aegis_search_match(s, f->t, q, (size_t)n, &m);
	assert_int_equal(m.kind, AEGIS_MATCH_ALIAS);
	assert_int_equal(m.node->kind, AEGIS_NODE_WILDCARD);
	/* the target is X itself, a prefix of the query: never a name with "*" */
	assert_ptr_equal(m.target, q);
	assert_int_equal(m.target_len, 11);
	assert_memory_equal(m.target, "\001x\004wild\003com", 11);
	aegis_search_free(s);
}

/* A reverse name is a PTR node, which stores its address rather than its name: asked exactly it is
 * EXACT, asked under a search suffix the CNAME target is the query's own labels. */
static void test_ptr_names(void **state)
{
	struct fixture *f = *state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	struct aegis_match m = match(s, f->t, "1.0.0.10.in-addr.arpa");
	assert_int_equal(m.kind, AEGIS_MATCH_EXACT);
	assert_int_equal(m.node->kind, AEGIS_NODE_PTR);
	static uint8_t q[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str("1.0.0.10.in-addr.arpa.ns1.svc.cluster.local", q);
	aegis_search_match(s, f->t, q, (size_t)n, &m);
	assert_int_equal(m.kind, AEGIS_MATCH_ALIAS);
	assert_int_equal(m.node->kind, AEGIS_NODE_PTR);
	assert_ptr_equal(m.target, q);
	assert_alias(match(s, f->t, "1.0.0.10.in-addr.arpa.svc.cluster.local"), "1.0.0.10.in-addr.arpa",
	             "1.0.0.10.in-addr.arpa");
	assert_alias(match(s, f->t, "3.0.0.10.in-addr.arpa.cluster.local"), "3.0.0.10.in-addr.arpa",
	             "3.0.0.10.in-addr.arpa");
	/* a wildcard's address has no PTR, an unknown address none either */
	assert_int_equal(match(s, f->t, "2.0.0.10.in-addr.arpa.ns1.svc.cluster.local").kind,
	                 AEGIS_MATCH_NONE);
	assert_int_equal(match(s, f->t, "9.0.0.10.in-addr.arpa.ns1.svc.cluster.local").kind,
	                 AEGIS_MATCH_NONE);
	/* an X that is exact keeps the query's labels as the target, as for any other node */
	n = aegis_dns_name_from_str("api.example.com.svc.cluster.local", q);
	aegis_search_match(s, f->t, q, (size_t)n, &m);
	assert_int_equal(m.kind, AEGIS_MATCH_ALIAS);
	assert_ptr_equal(m.target, q);
	aegis_search_free(s);
}

static void test_longest_suffix_first(void **state)
{
	struct fixture *f = *state;
	/* given shortest first; must still be tried longest first */
	const char *list[] = {"cluster.local", "ns1.svc.cluster.local"};
	struct aegis_search *s = matcher("ns1", list, 2);
	assert_string_equal(aegis_search_suffix(s, 0), "ns1.svc.cluster.local");
	assert_string_equal(aegis_search_suffix(s, 1), "cluster.local");
	/* api.ns1.svc.cluster.local: stripping ns1.svc.cluster.local gives "api", cluster.local would give
	 * "api.ns1.svc"; both are table names, the longest suffix wins */
	assert_alias(match(s, f->t, "api.ns1.svc.cluster.local"), "api", "api");
	aegis_search_free(s);
}

static void test_custom_search_list(void **state)
{
	struct fixture *f = *state;
	const char *list[] = {"NS1.svc.cluster.local.", "corp.example.net", "corp.example.net", ".",
	                      "svc.cluster.local"};
	struct aegis_search *s = matcher("NS1", list, 5);
	assert_string_equal(aegis_search_namespace(s), "ns1");
	/* lower-cased, trailing dot dropped, duplicates and the root dropped, longest first */
	assert_int_equal(aegis_search_count(s), 3);
	assert_string_equal(aegis_search_suffix(s, 0), "ns1.svc.cluster.local");
	assert_string_equal(aegis_search_suffix(s, 1), "svc.cluster.local");
	assert_string_equal(aegis_search_suffix(s, 2), "corp.example.net");
	assert_null(aegis_search_suffix(s, 3));
	assert_alias(match(s, f->t, "api.example.com.corp.example.net"), "api.example.com",
	             "api.example.com");
	assert_alias(match(s, f->t, "foo.corp.example.net"), "foo.ns1.svc.cluster.local",
	             "foo.ns1.svc.cluster.local");
	/* cluster.local is not in this list */
	assert_int_equal(match(s, f->t, "api.example.com.cluster.local").kind, AEGIS_MATCH_NONE);
	aegis_search_free(s);
}

static void test_default_list_and_domain(void **state)
{
	(void)state;
	struct aegis_search_opts o = {.namespace_ = "shop", .cluster_domain = "corp.internal"};
	struct aegis_search *s = NULL;
	assert_int_equal(aegis_search_new(&o, &s), 0);
	assert_int_equal(aegis_search_count(s), 3);
	assert_string_equal(aegis_search_suffix(s, 0), "shop.svc.corp.internal");
	assert_string_equal(aegis_search_suffix(s, 1), "svc.corp.internal");
	assert_string_equal(aegis_search_suffix(s, 2), "corp.internal");
	aegis_search_free(s);

	struct aegis_search_opts bad = {.namespace_ = "a.b"};
	assert_int_equal(aegis_search_new(&bad, &s), AEGIS_EINVAL);
	const char *badlist[] = {"a..b"};
	struct aegis_search_opts bad2 = {.namespace_ = "x", .search = badlist, .n_search = 1};
	assert_int_equal(aegis_search_new(&bad2, &s), AEGIS_EINVAL);
}

static void test_too_many_suffixes(void **state)
{
	(void)state;
	char names[40][32];
	const char *list[40];
	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d.example", i);
		list[i] = names[i];
	}
	struct aegis_search *s = matcher("ns1", list, 40);
	assert_int_equal(aegis_search_count(s), AEGIS_CONFIG_MAX_SEARCH);
	aegis_search_free(s);
}

static bool in_mesh(const struct aegis_search *s, const char *name)
{
	uint8_t w[AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_from_str(name, w);
	assert_true(n > 0);
	return aegis_search_in_mesh_domain(s, w, (size_t)n);
}

static void test_in_mesh_domain(void **state)
{
	(void)state;
	struct aegis_search *s = matcher("ns1", NULL, 0);
	assert_true(in_mesh(s, "cluster.local"));
	assert_true(in_mesh(s, "foo.ns1.svc.cluster.local"));
	assert_true(in_mesh(s, "clusterset.local"));
	assert_true(in_mesh(s, "foo.ns1.svc.clusterset.local"));
	assert_true(in_mesh(s, "global"));
	assert_true(in_mesh(s, "foo.ns1.east.global"));
	assert_false(in_mesh(s, "xcluster.local")); /* label boundaries, not bytes */
	assert_false(in_mesh(s, "local"));
	assert_false(in_mesh(s, "example.com"));
	assert_false(in_mesh(s, "global.example.com"));
	assert_false(in_mesh(s, "."));
	aegis_search_free(s);
	struct aegis_search_opts o = {.namespace_ = "x", .cluster_domain = "corp.internal"};
	assert_int_equal(aegis_search_new(&o, &s), 0);
	assert_true(in_mesh(s, "a.corp.internal"));
	assert_false(in_mesh(s, "a.cluster.local"));
	aegis_search_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_exact_and_wildcard),      cmocka_unit_test(test_short_forms),
	        cmocka_unit_test(test_search_suffixes),         cmocka_unit_test(test_wildcard_under_suffix),
	        cmocka_unit_test(test_longest_suffix_first),    cmocka_unit_test(test_custom_search_list),
	        cmocka_unit_test(test_default_list_and_domain), cmocka_unit_test(test_too_many_suffixes),
	        cmocka_unit_test(test_in_mesh_domain),          cmocka_unit_test(test_ptr_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
