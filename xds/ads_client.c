/* The proxy's ADS client: gRPC C core glue around the sans-I/O state machine (ads_state.c) and the
 * decoders (xds_decode.c). See include/aegis/ads_client.h for the contract and docs/xds.md.
 *
 * One thread owns the channel, the completion queue and the current call. Per stream: one receive and
 * at most one send in flight, the rest in a small queue (the client sends at most one request per
 * received response, plus the five subscriptions). Resources are kept per type as their packed bytes;
 * each accepted update re-decodes all of them into a fresh config, which keeps every config complete
 * and independent of the previous one (the proxy frees old configs whenever it likes). */
#include "aegis/ads_client.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ads_int.h"
#include "aegis/limits.h"
#include "aegis/log.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "xds_int.h"
#include "xds_tls.h"

#define METHOD_SOTW  "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define METHOD_DELTA "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define SENDQ_MAX    32

enum tag_kind { TAG_START, TAG_RECV, TAG_SEND, TAG_STATUS };

struct aegis_ads_client {
	/* options (owned copies) */
	char *address, *node_id, *node_cluster;
	struct aegis_kv *md;
	size_t n_md;
	bool delta;
	uint32_t types;
	uint32_t backoff_initial_ms, backoff_max_ms;
	aegis_ads_config_cb on_config;
	void *user;

	pthread_t thread;
	atomic_bool stopping;
	pthread_mutex_t lock; /* guards status, call (for cancel) */
	struct aegis_ads_status status;

	/* client thread only */
	grpc_channel *channel;
	grpc_completion_queue *cq;
	grpc_call *call;
	int outstanding;
	grpc_metadata_array md_recv_initial, md_trailing;
	grpc_status_code st_code;
	grpc_slice st_details;
	grpc_byte_buffer *recv_buf;
	grpc_byte_buffer *send_buf;
	grpc_byte_buffer *sendq[SENDQ_MAX];
	size_t q_head, q_len;
	bool stream_done;
	struct aegis_ads_sm sm;
	struct aegis_ads_node node;
	struct aegis_xds_resource_set have[AEGIS_XDS_NTYPES]; /* accepted resources per type */
	bool received[AEGIS_XDS_NTYPES];
	uint32_t backoff_ms;
	uint64_t rng;
	int tag_start, tag_recv, tag_send, tag_status; /* addresses used as tags */
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool subscribed(const struct aegis_ads_client *c, int t)
{
	return (c->types >> t) & 1u;
}

/* ---- resource sets ---- */

static int res_cmp(const void *a, const void *b)
{
	return strcmp(((const struct aegis_xds_resource *)a)->name,
	              ((const struct aegis_xds_resource *)b)->name);
}

/* Decodes every held resource (with trial standing in for type t) into one config. */
static int build_config(struct aegis_ads_client *c, int t, const struct aegis_xds_resource_set *trial,
                        struct aegis_config **out, struct aegis_diag *diag)
{
	struct aegis_xds_builder b;
	int rc = aegis_xds_builder_init(&b);
	if (rc)
		return rc;
	for (int k = 0; k < AEGIS_XDS_NTYPES; k++) {
		const struct aegis_xds_resource_set *s = k == t ? trial : &c->have[k];
		for (size_t i = 0; i < s->n; i++) {
			rc = aegis_xds_decode(&b, (enum aegis_xds_type)k, s->items[i].name, s->items[i].body,
			                      s->items[i].len, diag);
			if (rc) {
				aegis_xds_builder_abort(&b);
				return rc;
			}
		}
	}
	return aegis_xds_builder_finish(&b, out);
}

/* ---- sending ---- */

static void pump(struct aegis_ads_client *c)
{
	if (c->send_buf != NULL || c->q_len == 0 || c->call == NULL || c->stream_done)
		return;
	c->send_buf = c->sendq[c->q_head];
	c->q_head = (c->q_head + 1) % SENDQ_MAX;
	c->q_len--;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = c->send_buf;
	if (grpc_call_start_batch(c->call, &op, 1, &c->tag_send, NULL) == GRPC_CALL_OK) {
		c->outstanding++;
	} else {
		grpc_byte_buffer_destroy(c->send_buf);
		c->send_buf = NULL;
	}
}

static void free_bytes(void *p, size_t len)
{
	(void)len;
	free(p);
}

static void send_bytes(struct aegis_ads_client *c, uint8_t *buf, size_t len)
{
	if (c->q_len == SENDQ_MAX) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "xds: send queue full");
		free(buf);
		return;
	}
	grpc_slice sl = grpc_slice_new_with_len(buf, len, free_bytes);
	c->sendq[(c->q_head + c->q_len) % SENDQ_MAX] = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	c->q_len++;
	pump(c);
}

/* ---- status ---- */

static void mark_connected(struct aegis_ads_client *c)
{
	pthread_mutex_lock(&c->lock);
	if (!c->status.connected) {
		c->status.connected = true;
		c->status.connected_unix_ms = wall_ms();
	}
	pthread_mutex_unlock(&c->lock);
}

static void status_update(struct aegis_ads_client *c, int t, size_t n_resources)
{
	pthread_mutex_lock(&c->lock);
	struct aegis_ads_type_status *ts = &c->status.types[t];
	const struct aegis_ads_client_type *ct = &c->sm.t[t];
	_Static_assert(sizeof(ts->version) == sizeof(ct->version) && sizeof(ts->nonce) == sizeof(ct->nonce) &&
	                       sizeof(ts->error) == sizeof(ct->error),
	               "status and state machine buffers differ");
	memcpy(ts->version, ct->version, sizeof(ts->version));
	memcpy(ts->nonce, ct->nonce, sizeof(ts->nonce));
	memcpy(ts->error, ct->error, sizeof(ts->error));
	ts->last = ct->last == AEGIS_ADS_ACK    ? AEGIS_ADS_LAST_ACK
	           : ct->last == AEGIS_ADS_NACK ? AEGIS_ADS_LAST_NACK
	                                        : AEGIS_ADS_LAST_NONE;
	ts->last_unix_ms = ct->last_ms;
	ts->n_ack = ct->n_ack;
	ts->n_nack = ct->n_nack;
	ts->received = c->received[t];
	ts->n_resources = n_resources;
	pthread_mutex_unlock(&c->lock);
	mark_connected(c);
}

/* ---- responses ---- */

/* Accept or refuse trial for type t: sort it by name, decode everything, offer it to on_config once
 * complete. Returns 0 (accepted: trial moved into have[t]) or <0 with diag filled (trial sorted, else
 * untouched). */
static int apply(struct aegis_ads_client *c, int t, struct aegis_xds_resource_set *trial,
                 struct aegis_diag *diag)
{
	if (trial->n > 1) /* qsort(NULL, 0, ...) is undefined: an empty response has no items */
		qsort(trial->items, trial->n, sizeof(*trial->items), res_cmp);
	struct aegis_config *cfg = NULL;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = build_config(c, t, trial, &cfg, diag);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	AEGIS_LOG(AEGIS_LOG_DEBUG, "xds: config decoded",
	          LKV_S("type", aegis_xds_type_url((enum aegis_xds_type)t)),
	          LKV_I("us", (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000),
	          LKV_I("rc", rc));
	if (rc)
		return rc;
	bool complete = true;
	for (int k = 0; k < AEGIS_XDS_NTYPES; k++)
		if (subscribed(c, k) && k != t && !c->received[k])
			complete = false;
	if (complete) {
		rc = c->on_config(c->user, cfg, diag);
		if (rc < 0) {
			if (diag->msg[0] == '\0')
				aegis_diag_set(diag, rc, NULL, 0, 0, "configuration refused by the proxy");
			return rc;
		}
		pthread_mutex_lock(&c->lock);
		c->status.n_configs++;
		pthread_mutex_unlock(&c->lock);
	} else {
		aegis_config_free(cfg);
	}
	aegis_xds_resource_set_free(&c->have[t]);
	/* memory: the set is held until the next push; give back the spare capacity of its doubling. */
	if (trial->n > 0 && trial->cap > trial->n) {
		struct aegis_xds_resource *it = realloc(trial->items, trial->n * sizeof(*it));
		if (it != NULL) {
			trial->items = it;
			trial->cap = trial->n;
		}
	}
	c->have[t] = *trial;
	memset(trial, 0, sizeof(*trial));
	c->received[t] = true;
	return 0;
}

/* A rejected response (both protocols): NACK with the reason; the previous state keeps serving. */
static void nack(struct aegis_ads_client *c, int t, const char *type_url, const char *version,
                 const char *nonce, const char *why)
{
	uint8_t *out;
	size_t olen;
	if (aegis_ads_sm_nack(&c->sm, (enum aegis_xds_type)t, nonce, why, wall_ms(), &out, &olen) == 0)
		send_bytes(c, out, olen);
	AEGIS_LOG(AEGIS_LOG_WARN, "xds: NACK, previous state kept", LKV_S("type", type_url),
	          LKV_S("version", version), LKV_S("error", why));
}

static void handle_sotw(struct aegis_ads_client *c, const uint8_t *p, size_t n)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *r =
	        envoy__service__discovery__v3__discovery_response__unpack(NULL, n, p);
	if (r == NULL) {
		AEGIS_LOG(AEGIS_LOG_WARN, "xds: malformed DiscoveryResponse dropped");
		return;
	}
	int t = aegis_xds_type_from_url(r->type_url);
	if (t < 0) {
		AEGIS_LOG(AEGIS_LOG_WARN, "xds: response of an unknown type ignored",
		          LKV_S("type", r->type_url));
		goto out;
	}
	struct aegis_xds_resource_set trial = {0};
	struct aegis_diag diag = {0};
	int rc = 0;
	for (size_t i = 0; i < r->n_resources && rc == 0; i++) {
		char name[512];
		const uint8_t *body;
		size_t blen;
		rc = aegis_xds_unwrap(r->resources[i]->type_url, r->resources[i]->value.data,
		                      r->resources[i]->value.len, r->type_url, name, sizeof(name), &body,
		                      &blen, &diag);
		if (rc == 0)
			rc = aegis_xds_resource_set_push(&trial, name, "", body, blen);
	}
	if (rc == 0)
		rc = apply(c, t, &trial, &diag);
	uint8_t *out;
	size_t olen;
	if (rc == 0) {
		if (aegis_ads_sm_ack(&c->sm, (enum aegis_xds_type)t, r->version_info, r->nonce, wall_ms(),
		                     NULL, 0, NULL, 0, &out, &olen) == 0)
			send_bytes(c, out, olen);
		AEGIS_LOG(AEGIS_LOG_INFO, "xds: ACK", LKV_S("type", r->type_url),
		          LKV_S("version", r->version_info), LKV_I("resources", r->n_resources));
	} else {
		nack(c, t, r->type_url, r->version_info, r->nonce, diag.msg);
	}
	status_update(c, t, c->have[t].n);
	aegis_xds_resource_set_free(&trial);
out:
	envoy__service__discovery__v3__discovery_response__free_unpacked(r, NULL);
}

static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void handle_delta(struct aegis_ads_client *c, const uint8_t *p, size_t n)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *r =
	        envoy__service__discovery__v3__delta_discovery_response__unpack(NULL, n, p);
	if (r == NULL) {
		AEGIS_LOG(AEGIS_LOG_WARN, "xds: malformed DeltaDiscoveryResponse dropped");
		return;
	}
	int t = aegis_xds_type_from_url(r->type_url);
	if (t < 0) {
		AEGIS_LOG(AEGIS_LOG_WARN, "xds: response of an unknown type ignored",
		          LKV_S("type", r->type_url));
		goto out_free;
	}
	struct aegis_xds_resource_set trial = {0};
	struct aegis_ads_rv *added = calloc(r->n_resources ? r->n_resources : 1, sizeof(*added));
	/* The names this response removes or replaces, sorted: an old resource is looked up in them in
	 * O(log k), so a large delta onto a large set (a reconnect) is not quadratic. */
	size_t n_gone = r->n_removed_resources + r->n_resources;
	char **gone = malloc((n_gone ? n_gone : 1) * sizeof(*gone));
	struct aegis_diag diag = {0};
	int rc = added && gone ? 0 : AEGIS_ENOMEM;
	if (rc == 0) {
		for (size_t k = 0; k < r->n_removed_resources; k++)
			gone[k] = r->removed_resources[k];
		for (size_t k = 0; k < r->n_resources; k++)
			gone[r->n_removed_resources + k] = r->resources[k]->name;
		qsort(gone, n_gone, sizeof(*gone), str_ptr_cmp);
	}
	const struct aegis_xds_resource_set *old = &c->have[t];
	/* Old resources that are neither removed nor replaced stay. */
	for (size_t i = 0; i < old->n && rc == 0; i++) {
		const char *key = old->items[i].name;
		bool drop = bsearch(&key, gone, n_gone, sizeof(*gone), str_ptr_cmp) != NULL;
		if (!drop)
			rc = aegis_xds_resource_set_push(&trial, old->items[i].name, old->items[i].version,
			                                 old->items[i].body, old->items[i].len);
	}
	for (size_t i = 0; i < r->n_resources && rc == 0; i++) {
		const Envoy__Service__Discovery__V3__Resource *res = r->resources[i];
		added[i].name = res->name;
		added[i].version = res->version;
		if (res->resource == NULL) {
			rc = aegis_diag_set(&diag, AEGIS_EPROTO, NULL, 0, 0, "resource %s without a body",
			                    res->name);
			break;
		}
		char inner[512];
		const uint8_t *body;
		size_t blen;
		rc = aegis_xds_unwrap(res->resource->type_url, res->resource->value.data,
		                      res->resource->value.len, r->type_url, inner, sizeof(inner), &body,
		                      &blen, &diag);
		if (rc == 0)
			rc = aegis_xds_resource_set_push(&trial, res->name, res->version, body, blen);
	}
	if (rc == 0)
		rc = apply(c, t, &trial, &diag);
	uint8_t *out;
	size_t olen;
	if (rc == 0) {
		if (aegis_ads_sm_ack(&c->sm, (enum aegis_xds_type)t, r->system_version_info, r->nonce,
		                     wall_ms(), added, r->n_resources, r->removed_resources,
		                     r->n_removed_resources, &out, &olen) == 0)
			send_bytes(c, out, olen);
		AEGIS_LOG(AEGIS_LOG_INFO, "xds: ACK", LKV_S("type", r->type_url),
		          LKV_S("version", r->system_version_info), LKV_I("changed", r->n_resources),
		          LKV_I("removed", r->n_removed_resources));
	} else {
		nack(c, t, r->type_url, r->system_version_info, r->nonce, diag.msg);
	}
	status_update(c, t, c->have[t].n);
	aegis_xds_resource_set_free(&trial);
	free(added);
	free(gone);
out_free:
	envoy__service__discovery__v3__delta_discovery_response__free_unpacked(r, NULL);
}

/* ---- the stream ---- */

static bool stream_open(struct aegis_ads_client *c)
{
	grpc_slice method = grpc_slice_from_static_string(c->delta ? METHOD_DELTA : METHOD_SOTW);
	grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, method,
	                                           NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (call == NULL)
		return false;
	pthread_mutex_lock(&c->lock);
	c->call = call;
	c->status.n_streams++;
	pthread_mutex_unlock(&c->lock);
	c->stream_done = false;
	c->outstanding = 0;
	grpc_metadata_array_init(&c->md_recv_initial);
	grpc_metadata_array_init(&c->md_trailing);
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata = &c->md_recv_initial;
	if (grpc_call_start_batch(call, ops, 2, &c->tag_start, NULL) == GRPC_CALL_OK)
		c->outstanding++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &c->md_trailing;
	ops[0].data.recv_status_on_client.status = &c->st_code;
	ops[0].data.recv_status_on_client.status_details = &c->st_details;
	if (grpc_call_start_batch(call, ops, 1, &c->tag_status, NULL) == GRPC_CALL_OK)
		c->outstanding++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_MESSAGE;
	ops[0].data.recv_message.recv_message = &c->recv_buf;
	if (grpc_call_start_batch(call, ops, 1, &c->tag_recv, NULL) == GRPC_CALL_OK)
		c->outstanding++;
	aegis_ads_sm_stream_reset(&c->sm);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		if (!subscribed(c, t))
			continue;
		uint8_t *buf;
		size_t len;
		if (aegis_ads_sm_subscribe(&c->sm, (enum aegis_xds_type)t, &c->node, &buf, &len) == 0)
			send_bytes(c, buf, len);
	}
	return true;
}

static void stream_event(struct aegis_ads_client *c, void *tag, bool ok)
{
	c->outstanding--;
	if (tag == &c->tag_recv) {
		if (!ok || c->recv_buf == NULL) {
			c->stream_done = true;
			return;
		}
		grpc_byte_buffer_reader rd;
		grpc_slice sl = grpc_empty_slice();
		if (grpc_byte_buffer_reader_init(&rd, c->recv_buf)) {
			sl = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
		}
		grpc_byte_buffer_destroy(c->recv_buf);
		c->recv_buf = NULL;
		c->backoff_ms = 0; /* a response means the control plane is healthy */
		if (c->delta)
			handle_delta(c, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl));
		else
			handle_sotw(c, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl));
		grpc_slice_unref(sl);
		if (atomic_load(&c->stopping))
			return;
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &c->recv_buf;
		if (grpc_call_start_batch(c->call, &op, 1, &c->tag_recv, NULL) == GRPC_CALL_OK)
			c->outstanding++;
	} else if (tag == &c->tag_send) {
		grpc_byte_buffer_destroy(c->send_buf);
		c->send_buf = NULL;
		if (ok)
			pump(c);
	} else if (tag == &c->tag_start) {
		/* The control plane answered with its headers: the stream is up, whether or not (or however
		 * long it takes until) the first response is decoded. */
		if (ok)
			mark_connected(c);
	} else if (tag == &c->tag_status) {
		c->stream_done = true;
		char *d = grpc_slice_to_c_string(c->st_details);
		AEGIS_LOG(AEGIS_LOG_WARN, "xds: stream ended", LKV_S("address", c->address),
		          LKV_I("status", c->st_code), LKV_S("details", d));
		gpr_free(d);
	}
}

/* Runs one stream to its end: every tag completes before the call is released. */
static void stream_run(struct aegis_ads_client *c)
{
	if (!stream_open(c))
		return;
	while (c->outstanding > 0) {
		grpc_event ev = grpc_completion_queue_next(
		        c->cq,
		        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN)),
		        NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			stream_event(c, ev.tag, ev.success != 0);
		if (c->stream_done || atomic_load(&c->stopping))
			grpc_call_cancel(c->call, NULL); /* makes every outstanding tag complete */
	}
	while (c->q_len) {
		grpc_byte_buffer_destroy(c->sendq[c->q_head]);
		c->q_head = (c->q_head + 1) % SENDQ_MAX;
		c->q_len--;
	}
	grpc_metadata_array_destroy(&c->md_recv_initial);
	grpc_metadata_array_destroy(&c->md_trailing);
	grpc_slice_unref(c->st_details);
	c->st_details = grpc_empty_slice();
	pthread_mutex_lock(&c->lock);
	grpc_call_unref(c->call);
	c->call = NULL;
	c->status.connected = false;
	pthread_mutex_unlock(&c->lock);
}

static uint32_t next_backoff(struct aegis_ads_client *c)
{
	uint32_t b = c->backoff_ms ? c->backoff_ms * 2 : c->backoff_initial_ms;
	if (b > c->backoff_max_ms)
		b = c->backoff_max_ms;
	c->backoff_ms = b;
	/* Full jitter between b/2 and b, so that proxies restarted together spread out (xorshift). */
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return b / 2 + (uint32_t)(c->rng % (b / 2 + 1));
}

static void *client_main(void *arg)
{
	struct aegis_ads_client *c = arg;
	while (!atomic_load(&c->stopping)) {
		stream_run(c);
		if (atomic_load(&c->stopping))
			break;
		uint32_t wait = next_backoff(c);
		AEGIS_LOG(AEGIS_LOG_INFO, "xds: reconnecting", LKV_S("address", c->address),
		          LKV_I("in_ms", wait));
		for (uint32_t waited = 0; waited < wait && !atomic_load(&c->stopping); waited += 50) {
			struct timespec ts = {0, 50 * 1000000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---- lifetime ---- */

static void free_client(struct aegis_ads_client *c)
{
	free(c->address);
	free(c->node_id);
	free(c->node_cluster);
	for (size_t i = 0; c->md && i < c->n_md; i++) {
		free((void *)c->md[i].key);
		free((void *)c->md[i].value);
	}
	free(c->md);
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		aegis_xds_resource_set_free(&c->have[t]);
	aegis_ads_sm_free(&c->sm);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int aegis_ads_client_start(const struct aegis_ads_client_opts *o, struct aegis_ads_client **out)
{
	if (o == NULL || o->address == NULL || o->on_config == NULL)
		return AEGIS_EINVAL;
	struct aegis_ads_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return AEGIS_ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->address = strdup(o->address);
	c->node_id = strdup(o->node_id ? o->node_id : "");
	c->node_cluster = strdup(o->node_cluster ? o->node_cluster : "");
	/* DNS_CAPTURE / DNS_AUTO_ALLOCATE tell istiod to send the NDS NameTable with auto-allocated VIPs. */
	c->md = calloc(o->n_metadata + 2, sizeof(*c->md));
	if (c->address == NULL || c->node_id == NULL || c->node_cluster == NULL || c->md == NULL)
		goto nomem;
	c->md[0] = (struct aegis_kv){strdup("DNS_CAPTURE"), strdup("true")};
	c->md[1] = (struct aegis_kv){strdup("DNS_AUTO_ALLOCATE"), strdup("true")};
	c->n_md = 2;
	for (size_t i = 0; i < o->n_metadata; i++) {
		if (strcmp(o->metadata[i].key, "DNS_CAPTURE") == 0 ||
		    strcmp(o->metadata[i].key, "DNS_AUTO_ALLOCATE") == 0)
			continue;
		c->md[c->n_md++] =
		        (struct aegis_kv){strdup(o->metadata[i].key), strdup(o->metadata[i].value)};
	}
	for (size_t i = 0; i < c->n_md; i++)
		if (c->md[i].key == NULL || c->md[i].value == NULL)
			goto nomem;
	c->delta = o->delta;
	c->types = o->types ? o->types : (1u << AEGIS_XDS_NTYPES) - 1;
	c->backoff_initial_ms = o->backoff_initial_ms ? o->backoff_initial_ms : 500;
	c->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	if (c->backoff_max_ms < c->backoff_initial_ms)
		c->backoff_max_ms = c->backoff_initial_ms;
	c->on_config = o->on_config;
	c->user = o->user;
	c->rng = (uint64_t)wall_ms() ^ ((uint64_t)(uintptr_t)c << 16) ^ 0x9e3779b97f4a7c15ull;
	c->node = (struct aegis_ads_node){
	        .id = c->node_id, .cluster = c->node_cluster, .metadata = c->md, .n_metadata = c->n_md};
	c->st_details = grpc_empty_slice();
	aegis_ads_sm_init(&c->sm, c->delta);
	snprintf(c->status.address, sizeof(c->status.address), "%s", c->address);
	c->status.delta = c->delta;
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		c->status.types[t].type_url = aegis_xds_type_url((enum aegis_xds_type)t);
		c->status.types[t].subscribed = subscribed(c, t);
	}

	grpc_init();
	grpc_arg args[5] = {
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
	         .value.integer = (int)c->backoff_initial_ms},
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
	         .value.integer = (int)c->backoff_initial_ms},
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
	         .value.integer = (int)c->backoff_max_ms},
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	         .value.integer = (int)AEGIS_XDS_MAX_MESSAGE},
	};
	/* gRPC core 29 (Debian's 1.51) checks GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH only once a message is
	 * complete, and its flow control opens the window to the length the peer announces: a control plane
	 * announcing 400 MB made the proxy buffer 400 MB before refusing it (tests/integration/
	 * test_faults_xds.sh). A memory quota on the channel bounds that buffer: past it the stream fails
	 * with RESOURCE_EXHAUSTED ("Buffers full"), and the previous state keeps serving. Two maximum
	 * messages' worth leaves room for one legitimate message in flight plus the transport's own use. */
	grpc_resource_quota *quota = grpc_resource_quota_create("aegis-ads");
	grpc_resource_quota_resize(quota, 2 * (size_t)AEGIS_XDS_MAX_MESSAGE);
	args[4] = (grpc_arg){.type = GRPC_ARG_POINTER,
	                     .key = (char *)GRPC_ARG_RESOURCE_QUOTA,
	                     .value.pointer = {.p = quota, .vtable = grpc_resource_quota_arg_vtable()}};
	grpc_channel_args ca = {.num_args = 5, .args = args};
	/* xDS over mTLS (xds_tls.h): the files are checked now so that a bad --cert-dir is a clear error. */
	grpc_channel_credentials *creds = NULL;
	if (o->tls_cert_dir != NULL) {
		char id[256];
		struct aegis_diag d = {0};
		char buf[600];
		int trc = aegis_xds_tls_check(o->tls_cert_dir, id, sizeof(id), &d);
		if (trc != 0) {
			AEGIS_LOG(AEGIS_LOG_ERROR, "xds: cannot load the TLS certificate",
			          LKV_S("error", aegis_diag_str(&d, buf, sizeof(buf))));
			grpc_resource_quota_unref(quota);
			grpc_shutdown_blocking();
			free_client(c);
			return trc;
		}
		AEGIS_LOG(AEGIS_LOG_INFO, "xds: mutual TLS", LKV_S("identity", id),
		          LKV_S("server_id", o->tls_server_id ? o->tls_server_id : ""));
		creds = aegis_xds_tls_channel_creds(o->tls_cert_dir, o->tls_server_id);
	} else {
		creds = grpc_insecure_credentials_create();
	}
	if (creds == NULL) {
		grpc_resource_quota_unref(quota);
		grpc_shutdown_blocking();
		free_client(c);
		return AEGIS_ENOMEM;
	}
	c->channel = grpc_channel_create(c->address, creds, &ca);
	grpc_resource_quota_unref(quota); /* the channel holds its own reference */
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_next(NULL);
	if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
		grpc_channel_destroy(c->channel);
		grpc_completion_queue_shutdown(c->cq);
		while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(c->cq);
		grpc_shutdown_blocking();
		free_client(c);
		return AEGIS_ESYS;
	}
	*out = c;
	return 0;
nomem:
	free_client(c);
	return AEGIS_ENOMEM;
}

void aegis_ads_client_status(struct aegis_ads_client *c, struct aegis_ads_status *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->status;
	pthread_mutex_unlock(&c->lock);
}

void aegis_ads_client_stop(struct aegis_ads_client *c)
{
	if (c == NULL)
		return;
	/* Order from STACK_NOTES.md: cancel the call, let the thread wait for every tag and unref the call,
	 * join it, then destroy the channel, drain the queue and shut gRPC down. */
	atomic_store(&c->stopping, true);
	pthread_mutex_lock(&c->lock);
	if (c->call != NULL)
		grpc_call_cancel(c->call, NULL);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	grpc_channel_destroy(c->channel);
	grpc_completion_queue_shutdown(c->cq);
	while (grpc_completion_queue_next(c->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(c->cq);
	free_client(c);
	grpc_shutdown_blocking();
}
