/* Tests proxy/admin_xds.c: the "xds" config_dump section and the aegis_xds_* metrics, against a scripted
 * status snapshot (this file supplies aegis_ads_client_status(), so no gRPC client is started). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin_xds.h"

static struct aegis_ads_status scripted;

void aegis_ads_client_status(struct aegis_ads_client *c, struct aegis_ads_status *out)
{
	(void)c;
	*out = scripted;
}

static void script(void)
{
	memset(&scripted, 0, sizeof(scripted));
	snprintf(scripted.address, sizeof(scripted.address), "aegis-xds.aegis-system:15010");
	scripted.connected = true;
	scripted.n_streams = 2;
	scripted.n_configs = 3;
	scripted.connected_unix_ms = 1764000000000;
	struct aegis_ads_type_status *se = &scripted.types[0];
	se->type_url = "type.googleapis.com/istio.networking.v1alpha3.ServiceEntry";
	se->subscribed = se->received = true;
	snprintf(se->version, sizeof(se->version), "v7");
	snprintf(se->nonce, sizeof(se->nonce), "n9");
	se->last = AEGIS_ADS_LAST_NACK;
	snprintf(se->error, sizeof(se->error), "ServiceEntry default/bad: port 99999 out of range");
	se->last_unix_ms = 1764000001500;
	se->n_ack = 6;
	se->n_nack = 1;
	se->n_resources = 12;
	struct aegis_ads_type_status *nt = &scripted.types[4];
	nt->type_url = "type.googleapis.com/istio.networking.nds.v1.NameTable";
	nt->subscribed = true;
}

static struct aegis_admin *new_admin(struct ev_loop **loop)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*loop = ev_loop_new(EVFLAG_AUTO);
	struct aegis_admin *a = NULL;
	assert_int_equal(aegis_admin_new(*loop, &ss, &a), 0);
	return a;
}

static json_t *get_json(struct aegis_admin *a, const char *path, const char *query)
{
	struct aegis_admin_http_req req = {.method = HTTP_GET, .path = path, .query = query, .body = ""};
	struct aegis_admin_response r;
	aegis_admin_handle(a, &req, &r);
	assert_int_equal(r.status, 200);
	json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
	assert_non_null(j);
	aegis_admin_response_free(&r);
	return j;
}

static void test_xds_section(void **state)
{
	struct ev_loop *loop;
	struct aegis_admin *a = new_admin(&loop);
	script();
	assert_int_equal(aegis_admin_xds_register(a, (struct aegis_ads_client *)&scripted), 0);
	json_t *j = get_json(a, "/config_dump", "resource=xds");
	json_t *x = json_array_get(json_object_get(j, "configs"), 0);
	assert_string_equal(json_string_value(json_object_get(x, "@type")),
	                    "type.aegis.io/aegis.admin.v1.XdsConfigDump");
	assert_string_equal(json_string_value(json_object_get(x, "mode")), "sotw");
	assert_true(json_is_true(json_object_get(x, "connected")));
	assert_string_equal(json_string_value(json_object_get(x, "connected_since")), "2025-11-24T16:00:00Z");
	json_t *types = json_object_get(x, "types");
	assert_int_equal(json_array_size(types), 2);
	json_t *se = json_array_get(types, 0);
	assert_string_equal(json_string_value(json_object_get(se, "version")), "v7");
	assert_string_equal(json_string_value(json_object_get(se, "nonce")), "n9");
	assert_string_equal(json_string_value(json_object_get(se, "last")), "NACK");
	assert_non_null(strstr(json_string_value(json_object_get(se, "error")), "99999"));
	assert_string_equal(json_string_value(json_object_get(se, "last_time")), "2025-11-24T16:00:01Z");
	json_t *ntab = json_array_get(types, 1);
	assert_true(json_is_null(json_object_get(ntab, "error")));
	assert_true(json_is_null(json_object_get(ntab, "last_time")));
	json_decref(j);

	/* ?name= is a substring of the type URL. */
	j = get_json(a, "/config_dump", "resource=xds&name=NameTable");
	types = json_object_get(json_array_get(json_object_get(j, "configs"), 0), "types");
	assert_int_equal(json_array_size(types), 1);
	json_decref(j);

	struct aegis_admin_http_req req = {
	        .method = HTTP_GET, .path = "/stats/prometheus", .query = "", .body = ""};
	struct aegis_admin_response r;
	aegis_admin_handle(a, &req, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "aegis_xds_connected 1\n"));
	assert_non_null(strstr(r.body, "aegis_xds_nacks_total{type=\"ServiceEntry\"} 1\n"));
	assert_non_null(strstr(r.body, "aegis_xds_acks_total{type=\"NameTable\"} 0\n"));
	assert_non_null(strstr(
	        r.body, "aegis_xds_last_update_timestamp_seconds{type=\"ServiceEntry\"} 1764000001.5\n"));
	aegis_admin_response_free(&r);
	aegis_admin_free(a);
	ev_loop_destroy(loop);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_xds_section)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
