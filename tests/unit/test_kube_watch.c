/* Tests xds/kube_watch.c with the recorded API responses of tests/fixtures/kube/basic: paged lists
 * replacing the object set, watch events moving the resourceVersion (bookmarks included), 410 and other
 * ERROR events, bad lines leaving the version alone, slimming of stored objects, request paths, and the
 * line splitter across chunk boundaries and at its bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aegis/log.h"
#include "kube_watch.h"

static char *fixture(const char *name, size_t *len)
{
	const char *src = getenv("AEGIS_SRC_DIR") ? getenv("AEGIS_SRC_DIR") : AEGIS_SRC_DIR;
	char path[1024];
	snprintf(path, sizeof(path), "%s/tests/fixtures/kube/basic/%s", src, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int list_file(struct aegis_kwatch *w, const char *name, bool *changed)
{
	size_t len;
	char *body = fixture(name, &len), cont[256];
	struct aegis_diag d;
	int rc = aegis_kwatch_list_page(w, body, len, cont, sizeof(cont), changed, &d);
	assert_string_equal(cont, "");
	free(body);
	return rc;
}

static int event(struct aegis_kwatch *w, const char *line, bool *changed)
{
	struct aegis_diag d;
	return aegis_kwatch_event(w, line, strlen(line), changed, &d);
}

/* Feeds every event line of a recorded stream (control lines skipped); returns the last result. */
static int replay(struct aegis_kwatch *w, const char *name, int *n_changed)
{
	size_t len;
	char *buf = fixture(name, &len);
	int rc = 0;
	*n_changed = 0;
	for (char *line = buf, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (strncmp(line, "{\"_", 3) == 0)
			continue;
		bool changed;
		rc = event(w, line, &changed);
		*n_changed += changed;
		if (rc != AEGIS_KWATCH_GO_ON)
			break;
	}
	free(buf);
	return rc;
}

static void test_list_watch_recorded(void **state)
{
	(void)state;
	struct aegis_kwatch w;
	assert_int_equal(aegis_kwatch_init(&w, AEGIS_KRES_SVC), 0);
	assert_string_equal(w.rv, "");
	assert_false(w.synced);
	bool changed;
	assert_int_equal(list_file(&w, "services-list-1.json", &changed), 0);
	assert_true(changed);
	assert_true(w.synced);
	assert_string_equal(w.rv, "100");
	assert_int_equal(json_object_size(w.objects), 1);
	json_t *r = json_object_get(w.objects, "default/reviews");
	assert_non_null(r);
	assert_null(json_object_get(json_object_get(r, "metadata"), "managedFields"));

	/* The same list again changes nothing. */
	assert_int_equal(list_file(&w, "services-list-1.json", &changed), 0);
	assert_false(changed);

	int n;
	assert_int_equal(replay(&w, "services-watch-1.jsonl", &n), AEGIS_KWATCH_GO_ON);
	assert_int_equal(n, 3);           /* ADDED, MODIFIED, DELETED; the bookmark changes no object */
	assert_string_equal(w.rv, "110"); /* the bookmark moved it past the DELETED's 103 */
	assert_int_equal(json_object_size(w.objects), 1);
	assert_int_equal(w.events, 4);

	char path[512];
	assert_int_equal(aegis_kwatch_watch_path(&w, 300, path, sizeof(path)), 0);
	assert_string_equal(
	        path,
	        "/api/v1/services?watch=1&resourceVersion=110&allowWatchBookmarks=true&timeoutSeconds=300");

	assert_int_equal(replay(&w, "services-watch-2.jsonl", &n), AEGIS_KWATCH_RELIST);
	assert_int_equal(n, 1);
	assert_string_equal(w.rv, "111"); /* the ERROR event does not move it */
	assert_int_equal(json_object_size(w.objects), 2);

	/* The relist replaces the set: details (only watched) is gone, relisted is new. */
	assert_int_equal(list_file(&w, "services-list-2.json", &changed), 0);
	assert_true(changed);
	assert_string_equal(w.rv, "200");
	assert_null(json_object_get(w.objects, "default/details"));
	assert_non_null(json_object_get(w.objects, "default/relisted"));
	aegis_kwatch_free(&w);
}

static void test_events(void **state)
{
	(void)state;
	struct aegis_kwatch w;
	assert_int_equal(aegis_kwatch_init(&w, AEGIS_KRES_POD), 0);
	bool changed;
	assert_int_equal(event(&w,
	                       "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":"
	                       "\"p\",\"namespace\":\"n\","
	                       "\"resourceVersion\":\"5\",\"labels\":{\"a\":\"b\"},\"uid\":\"u\"},\"spec\":{"
	                       "\"containers\":[],"
	                       "\"serviceAccountName\":\"sa\"},\"status\":{\"podIP\":\"10.0.0.1\",\"hostIP\":"
	                       "\"1.2.3.4\"}}}",
	                       &changed),
	                 AEGIS_KWATCH_GO_ON);
	assert_true(changed);
	json_t *p = json_object_get(w.objects, "n/p");
	assert_non_null(p);
	/* Pods are kept slim: only what the mapping reads. */
	assert_null(json_object_get(json_object_get(p, "metadata"), "uid"));
	assert_null(json_object_get(json_object_get(p, "spec"), "containers"));
	assert_null(json_object_get(json_object_get(p, "status"), "hostIP"));
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(p, "spec"), "serviceAccountName")), "sa");
	/* A MODIFIED that changes nothing the store keeps is no change. */
	assert_int_equal(
	        event(&w,
	              "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
	              "\"resourceVersion\":\"5\",\"labels\":{\"a\":\"b\"}},\"spec\":{\"serviceAccountName\":"
	              "\"sa\"},"
	              "\"status\":{\"podIP\":\"10.0.0.1\",\"hostIP\":\"9.9.9.9\"}}}",
	              &changed),
	        AEGIS_KWATCH_GO_ON);
	assert_false(changed);
	/* Deleting what is not there is no change but still moves the version. */
	assert_int_equal(
	        event(&w,
	              "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"q\",\"namespace\":\"n\","
	              "\"resourceVersion\":\"7\"}}}",
	              &changed),
	        AEGIS_KWATCH_GO_ON);
	assert_false(changed);
	assert_string_equal(w.rv, "7");
	/* Other ERRORs back off; malformed lines are EPARSE and leave the version alone. */
	assert_int_equal(event(&w,
	                       "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"message\":"
	                       "\"etcd\"}}",
	                       &changed),
	                 AEGIS_KWATCH_BACK_OFF);
	const char *bad[] = {"{\"type\":\"ADDED\"",
	                     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
	                     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}",
	                     "{\"type\":\"WHAT\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}",
	                     "[]",
	                     "{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(event(&w, bad[i], &changed), AEGIS_EPARSE);
	assert_string_equal(w.rv, "7");
	aegis_kwatch_free(&w);
}

static void test_paging_and_paths(void **state)
{
	(void)state;
	struct aegis_kwatch w;
	assert_int_equal(aegis_kwatch_init(&w, AEGIS_KRES_EPS), 0);
	char path[512], cont[64];
	assert_int_equal(aegis_kwatch_list_path(&w, NULL, path, sizeof(path)), 0);
	assert_string_equal(path, "/apis/discovery.k8s.io/v1/endpointslices?limit=500");
	assert_int_equal(aegis_kwatch_list_path(&w, "eyJ2Ijoi+/=", path, sizeof(path)), 0);
	assert_string_equal(path,
	                    "/apis/discovery.k8s.io/v1/endpointslices?limit=500&continue=eyJ2Ijoi%2B%2F%3D");
	assert_int_equal(aegis_kwatch_list_path(&w, NULL, path, 10), AEGIS_ESPACE);

	bool changed;
	struct aegis_diag d;
	const char p1[] = "{\"metadata\":{\"resourceVersion\":\"10\",\"continue\":\"tok\"},\"items\":[{"
	                  "\"metadata\":{\"name\":\"a\","
	                  "\"namespace\":\"n\"}}]}";
	const char p2[] = "{\"metadata\":{\"resourceVersion\":\"12\"},\"items\":[{\"metadata\":{\"name\":"
	                  "\"b\",\"namespace\":\"n\"}},"
	                  "{\"metadata\":{}}]}";
	assert_int_equal(aegis_kwatch_list_page(&w, p1, strlen(p1), cont, sizeof(cont), &changed, &d), 0);
	assert_string_equal(cont, "tok");
	assert_false(w.synced);
	assert_int_equal(json_object_size(w.objects), 0); /* nothing visible before the last page */
	assert_int_equal(aegis_kwatch_list_page(&w, p2, strlen(p2), cont, sizeof(cont), &changed, &d), 0);
	assert_string_equal(cont, "");
	assert_true(changed);
	assert_string_equal(w.rv, "12");
	assert_int_equal(json_object_size(w.objects), 2); /* the nameless item is dropped */

	/* A body that is not a list, or has no version: rejected, the set and version kept. */
	const char *bad[] = {"{", "{\"items\":[]}",
	                     "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":{}}"};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(
		        aegis_kwatch_list_page(&w, bad[i], strlen(bad[i]), cont, sizeof(cont), &changed, &d),
		        AEGIS_EPARSE);
	assert_string_equal(w.rv, "12");
	assert_int_equal(json_object_size(w.objects), 2);
	aegis_kwatch_free(&w);
}

struct seen {
	char lines[4][64];
	int n;
};

static int collect(void *user, const char *line, size_t len)
{
	struct seen *s = user;
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%.*s", (int)len, line);
	return s->n == 4 ? 99 : 0;
}

static void test_lines(void **state)
{
	(void)state;
	struct aegis_kwatch_lines lb = {0};
	struct seen s = {0};
	const char stream[] = "{\"a\":1}\n\r\n{\"b\":\n2}\r\n{\"c\":3}\n{\"d\":4}\n{\"e\":5}\n";
	/* One byte at a time: chunk boundaries fall everywhere. */
	int rc = 0;
	for (size_t i = 0; i < strlen(stream) && rc == 0; i++)
		rc = aegis_kwatch_lines_feed(&lb, stream + i, 1, collect, &s);
	assert_int_equal(rc, 99); /* the callback's result stops the feed */
	assert_int_equal(s.n, 4);
	assert_string_equal(s.lines[0], "{\"a\":1}");
	assert_string_equal(s.lines[1], "{\"b\":");
	assert_string_equal(s.lines[2], "2}");
	assert_string_equal(s.lines[3], "{\"c\":3}");
	aegis_kwatch_lines_reset(&lb);

	/* A line over the bound is refused without buffering it all. */
	size_t big = AEGIS_KWATCH_MAX_EVENT / 4 + 1;
	char *chunk = malloc(big);
	assert_non_null(chunk);
	memset(chunk, 'x', big);
	s.n = 0;
	rc = 0;
	for (int i = 0; i < 5 && rc == 0; i++)
		rc = aegis_kwatch_lines_feed(&lb, chunk, big, collect, &s);
	assert_int_equal(rc, AEGIS_ELIMIT);
	assert_int_equal(s.n, 0);
	free(chunk);
	aegis_kwatch_lines_free(&lb);
}

int main(void)
{
	aegis_log_set_level(AEGIS_LOG_ERROR);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_list_watch_recorded),
	        cmocka_unit_test(test_events),
	        cmocka_unit_test(test_paging_and_paths),
	        cmocka_unit_test(test_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
