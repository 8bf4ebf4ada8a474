/* Tests xds/ads_state.c: the ADS ACK/NACK/nonce rules of both ends, driven without gRPC. Requests are
 * checked by unpacking the bytes the state machine produced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ads_int.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

static const struct aegis_kv md[] = {{"DNS_CAPTURE", "true"}, {"DNS_AUTO_ALLOCATE", "true"}};
static const struct aegis_ads_node node = {.id = "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local",
                                           .cluster = "pod.ns",
                                           .metadata = md,
                                           .n_metadata = 2};

static Envoy__Service__Discovery__V3__DiscoveryRequest *sotw(uint8_t *buf, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *r =
	        envoy__service__discovery__v3__discovery_request__unpack(NULL, len, buf);
	assert_non_null(r);
	free(buf);
	return r;
}

static Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *delta(uint8_t *buf, size_t len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *r =
	        envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, len, buf);
	assert_non_null(r);
	free(buf);
	return r;
}

static void test_sotw_subscribe_ack_nack(void **state)
{
	struct aegis_ads_sm sm;
	uint8_t *b;
	size_t n;
	aegis_ads_sm_init(&sm, false);
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_SE, &node, &b, &n), 0);
	Envoy__Service__Discovery__V3__DiscoveryRequest *r = sotw(b, n);
	assert_string_equal(r->type_url, AEGIS_XDS_URL_SE);
	assert_non_null(r->node);
	assert_string_equal(r->node->id, node.id);
	assert_int_equal(r->node->metadata->n_fields, 2);
	assert_string_equal(r->node->metadata->fields[0]->key, "DNS_CAPTURE");
	assert_string_equal(r->node->metadata->fields[0]->value->string_value, "true");
	assert_string_equal(r->version_info, "");
	assert_string_equal(r->response_nonce, "");
	assert_null(r->error_detail);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	/* The node goes only in the first request of a stream. */
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_VS, &node, &b, &n), 0);
	r = sotw(b, n);
	assert_null(r->node);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);

	/* ACK: version and nonce of the response. */
	assert_int_equal(aegis_ads_sm_ack(&sm, AEGIS_XDS_SE, "v1", "n1", 1000, NULL, 0, NULL, 0, &b, &n), 0);
	r = sotw(b, n);
	assert_string_equal(r->version_info, "v1");
	assert_string_equal(r->response_nonce, "n1");
	assert_null(r->error_detail);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	assert_int_equal(sm.t[AEGIS_XDS_SE].last, AEGIS_ADS_ACK);
	assert_int_equal(sm.t[AEGIS_XDS_SE].last_ms, 1000);

	/* NACK of v2: the request carries the last good version, v2's nonce and the reason. */
	assert_int_equal(
	        aegis_ads_sm_nack(&sm, AEGIS_XDS_SE, "n2", "ServiceEntry a/b: no hosts", 2000, &b, &n), 0);
	r = sotw(b, n);
	assert_string_equal(r->version_info, "v1");
	assert_string_equal(r->response_nonce, "n2");
	assert_non_null(r->error_detail);
	assert_int_equal(r->error_detail->code, 3);
	assert_string_equal(r->error_detail->message, "ServiceEntry a/b: no hosts");
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	const struct aegis_ads_client_type *ct = &sm.t[AEGIS_XDS_SE];
	assert_string_equal(ct->version, "v1");
	assert_int_equal(ct->last, AEGIS_ADS_NACK);
	assert_string_equal(ct->error, "ServiceEntry a/b: no hosts");
	assert_int_equal(ct->n_ack, 1);
	assert_int_equal(ct->n_nack, 1);

	/* A later good response is ACKed normally. */
	assert_int_equal(aegis_ads_sm_ack(&sm, AEGIS_XDS_SE, "v3", "n3", 3000, NULL, 0, NULL, 0, &b, &n), 0);
	free(b);
	assert_string_equal(ct->version, "v3");
	aegis_ads_sm_free(&sm);
}

static void test_sotw_reconnect(void **state)
{
	struct aegis_ads_sm sm;
	uint8_t *b;
	size_t n;
	aegis_ads_sm_init(&sm, false);
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_CLA, &node, &b, &n), 0);
	free(b);
	assert_int_equal(aegis_ads_sm_ack(&sm, AEGIS_XDS_CLA, "v7", "n9", 1, NULL, 0, NULL, 0, &b, &n), 0);
	free(b);
	aegis_ads_sm_stream_reset(&sm);
	assert_string_equal(sm.t[AEGIS_XDS_CLA].nonce, "");
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_CLA, &node, &b, &n), 0);
	Envoy__Service__Discovery__V3__DiscoveryRequest *r = sotw(b, n);
	assert_non_null(r->node); /* new stream: node again */
	assert_string_equal(r->version_info, "v7");
	assert_string_equal(r->response_nonce, "");
	envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	aegis_ads_sm_free(&sm);
}

static void test_delta_versions_and_reconnect(void **state)
{
	struct aegis_ads_sm sm;
	uint8_t *b;
	size_t n;
	aegis_ads_sm_init(&sm, true);
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_SE, &node, &b, &n), 0);
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *r = delta(b, n);
	assert_string_equal(r->type_url, AEGIS_XDS_URL_SE);
	assert_non_null(r->node);
	assert_int_equal(r->n_initial_resource_versions, 0);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);

	struct aegis_ads_rv added[] = {{(char *)"ns/a", (char *)"1"}, {(char *)"ns/b", (char *)"1"}};
	assert_int_equal(aegis_ads_sm_ack(&sm, AEGIS_XDS_SE, "s1", "n1", 1, added, 2, NULL, 0, &b, &n), 0);
	r = delta(b, n);
	assert_string_equal(r->response_nonce, "n1");
	assert_null(r->error_detail);
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);

	struct aegis_ads_rv upd[] = {{(char *)"ns/a", (char *)"2"}};
	char *rm[] = {(char *)"ns/b"};
	assert_int_equal(aegis_ads_sm_ack(&sm, AEGIS_XDS_SE, "s2", "n2", 2, upd, 1, rm, 1, &b, &n), 0);
	free(b);
	/* A NACK leaves the held versions alone. */
	assert_int_equal(aegis_ads_sm_nack(&sm, AEGIS_XDS_SE, "n3", "bad", 3, &b, &n), 0);
	r = delta(b, n);
	assert_string_equal(r->error_detail->message, "bad");
	assert_string_equal(r->response_nonce, "n3");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	assert_int_equal(sm.t[AEGIS_XDS_SE].rv.n, 1);
	assert_string_equal(aegis_ads_rvmap_get(&sm.t[AEGIS_XDS_SE].rv, "ns/a"), "2");

	aegis_ads_sm_stream_reset(&sm);
	assert_int_equal(aegis_ads_sm_subscribe(&sm, AEGIS_XDS_SE, &node, &b, &n), 0);
	r = delta(b, n);
	assert_int_equal(r->n_initial_resource_versions, 1);
	assert_string_equal(r->initial_resource_versions[0]->key, "ns/a");
	assert_string_equal(r->initial_resource_versions[0]->value, "2");
	assert_string_equal(r->response_nonce, "");
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	aegis_ads_sm_free(&sm);
}

static void test_server_sotw(void **state)
{
	struct aegis_ads_srv_stream st;
	aegis_ads_srv_init(&st, false);
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v1", NULL));
	assert_int_equal(aegis_ads_srv_on_request(&st, -1, "", "", NULL, NULL), AEGIS_ADS_REQ_UNKNOWN);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "", "", NULL, NULL),
	                 AEGIS_ADS_REQ_SUBSCRIBE);
	assert_true(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v1", NULL));
	char n1[32];
	snprintf(n1, sizeof(n1), "%s", aegis_ads_srv_sent(&st, AEGIS_XDS_SE, "v1"));
	/* One unanswered response per type: v2 waits for the ACK of v1. */
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v2", NULL));
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "", "0", NULL, NULL),
	                 AEGIS_ADS_REQ_STALE);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "v1", n1, NULL, NULL),
	                 AEGIS_ADS_REQ_ACK);
	assert_string_equal(st.t[AEGIS_XDS_SE].acked_version, "v1");
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v1", NULL));
	assert_true(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v2", NULL));
	/* The same nonce again is stale now. */
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "v1", n1, NULL, NULL),
	                 AEGIS_ADS_REQ_STALE);
	char n2[32];
	snprintf(n2, sizeof(n2), "%s", aegis_ads_srv_sent(&st, AEGIS_XDS_SE, "v2"));
	assert_string_not_equal(n1, n2);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "v1", n2, "no hosts", NULL),
	                 AEGIS_ADS_REQ_NACK);
	assert_string_equal(st.t[AEGIS_XDS_SE].acked_version, "v1");
	assert_string_equal(st.t[AEGIS_XDS_SE].error, "no hosts");
	/* A NACKed version is not pushed again; the next one is. */
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v2", NULL));
	assert_true(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "v3", NULL));
	/* Reconnect: a fresh stream that already holds v3 gets nothing new. */
	struct aegis_ads_srv_stream st2;
	aegis_ads_srv_init(&st2, false);
	assert_int_equal(aegis_ads_srv_on_request(&st2, AEGIS_XDS_SE, "v3", "", NULL, NULL),
	                 AEGIS_ADS_REQ_SUBSCRIBE);
	assert_false(aegis_ads_srv_should_send(&st2, AEGIS_XDS_SE, "v3", NULL));
	aegis_ads_srv_free(&st);
	aegis_ads_srv_free(&st2);
}

static struct aegis_xds_resource_set make_set(const char *const *names, const char *const *versions, size_t n)
{
	struct aegis_xds_resource_set s = {0};
	for (size_t i = 0; i < n; i++)
		assert_int_equal(aegis_xds_resource_set_push(&s, names[i], versions[i], NULL, 0), 0);
	return s;
}

static void test_server_delta(void **state)
{
	struct aegis_ads_srv_stream st;
	aegis_ads_srv_init(&st, true);
	/* The client reconnects holding a@1 and gone@1. */
	struct aegis_ads_rvmap init = {0};
	assert_int_equal(aegis_ads_rvmap_set(&init, "ns/a", "1"), 0);
	assert_int_equal(aegis_ads_rvmap_set(&init, "ns/gone", "1"), 0);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "", "", NULL, &init),
	                 AEGIS_ADS_REQ_SUBSCRIBE);
	aegis_ads_rvmap_free(&init);
	struct aegis_xds_resource_set s =
	        make_set((const char *const[]){"ns/a", "ns/b"}, (const char *const[]){"1", "1"}, 2);
	assert_true(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "sv1", &s));
	size_t *ch, nch, nrm;
	const char **rm;
	const char *nonce = aegis_ads_srv_delta_sent(&st, AEGIS_XDS_SE, "sv1", &s, &ch, &nch, &rm, &nrm);
	assert_non_null(nonce);
	assert_int_equal(nch, 1); /* only b: the client has a@1 */
	assert_int_equal(ch[0], 1);
	assert_int_equal(nrm, 1);
	assert_string_equal(rm[0], "ns/gone");
	free(ch);
	free(rm);
	char n1[32];
	snprintf(n1, sizeof(n1), "%s", nonce);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "", n1, NULL, NULL), AEGIS_ADS_REQ_ACK);
	assert_int_equal(st.t[AEGIS_XDS_SE].known.n, 2);
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "sv1", &s));
	/* b changes: only b goes out; a NACK keeps the client's versions as they were. */
	aegis_xds_resource_set_free(&s);
	s = make_set((const char *const[]){"ns/a", "ns/b"}, (const char *const[]){"1", "2"}, 2);
	assert_true(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "sv2", &s));
	nonce = aegis_ads_srv_delta_sent(&st, AEGIS_XDS_SE, "sv2", &s, &ch, &nch, &rm, &nrm);
	assert_int_equal(nch, 1);
	assert_int_equal(nrm, 0);
	free(ch);
	free(rm);
	snprintf(n1, sizeof(n1), "%s", nonce);
	assert_int_equal(aegis_ads_srv_on_request(&st, AEGIS_XDS_SE, "", n1, "bad b", NULL),
	                 AEGIS_ADS_REQ_NACK);
	assert_string_equal(aegis_ads_rvmap_get(&st.t[AEGIS_XDS_SE].known, "ns/b"), "1");
	assert_false(aegis_ads_srv_should_send(&st, AEGIS_XDS_SE, "sv2", &s));
	aegis_xds_resource_set_free(&s);
	aegis_ads_srv_free(&st);

	/* An empty type still gets one (empty) delta response, so the client knows it is up to date. */
	struct aegis_ads_srv_stream e;
	aegis_ads_srv_init(&e, true);
	struct aegis_xds_resource_set empty = {0};
	assert_int_equal(aegis_ads_srv_on_request(&e, AEGIS_XDS_NDS, "", "", NULL, NULL),
	                 AEGIS_ADS_REQ_SUBSCRIBE);
	assert_true(aegis_ads_srv_should_send(&e, AEGIS_XDS_NDS, "v0", &empty));
	nonce = aegis_ads_srv_delta_sent(&e, AEGIS_XDS_NDS, "v0", &empty, &ch, &nch, &rm, &nrm);
	assert_non_null(nonce);
	assert_int_equal(nch + nrm, 0);
	free(ch);
	free(rm);
	snprintf(n1, sizeof(n1), "%s", nonce);
	assert_int_equal(aegis_ads_srv_on_request(&e, AEGIS_XDS_NDS, "", n1, NULL, NULL), AEGIS_ADS_REQ_ACK);
	assert_false(aegis_ads_srv_should_send(&e, AEGIS_XDS_NDS, "v0", &empty));
	aegis_ads_srv_free(&e);
}

static void test_rvmap(void **state)
{
	struct aegis_ads_rvmap m = {0};
	assert_int_equal(aegis_ads_rvmap_set(&m, "b", "1"), 0);
	assert_int_equal(aegis_ads_rvmap_set(&m, "a", "1"), 0);
	assert_int_equal(aegis_ads_rvmap_set(&m, "c", "1"), 0);
	assert_int_equal(aegis_ads_rvmap_set(&m, "b", "2"), 0);
	assert_int_equal(m.n, 3);
	assert_string_equal(m.v[0].name, "a");
	assert_string_equal(aegis_ads_rvmap_get(&m, "b"), "2");
	aegis_ads_rvmap_del(&m, "a");
	aegis_ads_rvmap_del(&m, "zz");
	assert_null(aegis_ads_rvmap_get(&m, "a"));
	assert_int_equal(m.n, 2);
	aegis_ads_rvmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sotw_subscribe_ack_nack),
	        cmocka_unit_test(test_sotw_reconnect),
	        cmocka_unit_test(test_delta_versions_and_reconnect),
	        cmocka_unit_test(test_server_sotw),
	        cmocka_unit_test(test_server_delta),
	        cmocka_unit_test(test_rvmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
