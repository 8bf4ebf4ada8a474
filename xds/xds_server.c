/* The aegis-xds ADS server: gRPC C core with raw byte buffers, one completion-queue thread, both
 * StreamAggregatedResources (SotW) and DeltaAggregatedResources (see xds_server_int.h, docs/xds.md).
 *
 * Each stream has one receive and at most one send in flight (the core allows one op of each kind per
 * call) and a send queue behind it. The queue is bounded by construction: the state machine sends a
 * type only when the previous response of that type has been ACKed or NACKed, and then sends the
 * latest snapshot, so a slow proxy holds at most one message per type and never delays another. */
#include "xds_server_int.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ads_int.h"
#include "aegis/limits.h"
#include "aegis/log.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "xds_tls.h"

#define METHOD_SOTW    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
#define METHOD_DELTA   "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
#define SEND_QUEUE_MAX (AEGIS_XDS_NTYPES * 2)

/* ---- snapshots ---- */

static uint64_t fnv_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ 0xff) * 1099511628211ull;
}

struct aegis_xds_snapshot *aegis_xds_snapshot_new(struct aegis_xds_resource_set sets[AEGIS_XDS_NTYPES],
                                                  uint64_t seq)
{
	struct aegis_xds_snapshot *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	atomic_init(&s->refs, 1);
	s->seq = seq;
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		s->sets[t] = sets[t];
		memset(&sets[t], 0, sizeof(sets[t]));
		uint64_t h = 1469598103934665603ull;
		size_t n = s->sets[t].n;
		s->wrapped[t] = calloc(n ? n : 1, sizeof(*s->wrapped[t]));
		s->wrapped_len[t] = calloc(n ? n : 1, sizeof(*s->wrapped_len[t]));
		if (s->wrapped[t] == NULL || s->wrapped_len[t] == NULL)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			const struct aegis_xds_resource *r = &s->sets[t].items[i];
			h = fnv_str(fnv_str(h, r->name), r->version);
			if (aegis_xds_wrap(aegis_xds_type_url((enum aegis_xds_type)t), r, &s->wrapped[t][i],
			                   &s->wrapped_len[t][i]))
				goto fail;
		}
		snprintf(s->version[t], sizeof(s->version[t]), "%016" PRIx64, h);
	}
	return s;
fail:
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		aegis_xds_resource_set_free(&sets[t]);
	aegis_xds_snapshot_unref(s);
	return NULL;
}

void aegis_xds_snapshot_ref(struct aegis_xds_snapshot *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
}

void aegis_xds_snapshot_unref(struct aegis_xds_snapshot *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		for (size_t i = 0; s->wrapped[t] && i < s->sets[t].n; i++)
			free(s->wrapped[t][i]);
		free(s->wrapped[t]);
		free(s->wrapped_len[t]);
		aegis_xds_resource_set_free(&s->sets[t]);
	}
	free(s);
}

/* ---- streams ---- */

enum tag_kind {
	TAG_NEW_SOTW,
	TAG_NEW_DELTA,
	TAG_META,
	TAG_RECV,
	TAG_SEND,
	TAG_CLOSE,
	TAG_STATUS,
	TAG_SHUTDOWN
};

struct stream;
struct tag {
	enum tag_kind kind;
	struct stream *s;
};

struct stream {
	struct aegis_xds_server *srv;
	struct stream *prev, *next;
	grpc_call *call;
	struct tag t_meta, t_recv, t_send, t_close, t_status;
	int outstanding; /* batches started and not yet completed */
	bool recv_done, status_sent, closed;
	int cancelled;
	grpc_byte_buffer *recv_buf;
	grpc_byte_buffer *send_buf; /* the one in flight */
	grpc_byte_buffer *queue[SEND_QUEUE_MAX];
	size_t q_head, q_len;
	struct aegis_ads_srv_stream ads;
	uint64_t id;
};

struct pending_call {
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	struct tag tag;
	bool delta;
};

struct aegis_xds_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	void *m_sotw, *m_delta;
	struct pending_call pc_sotw, pc_delta;
	struct tag t_shutdown;
	struct stream *streams;
	size_t n_streams;
	uint64_t next_id;
	pthread_mutex_t lock; /* guards next_snap */
	struct aegis_xds_snapshot *next_snap;
	struct aegis_xds_snapshot *snap; /* queue thread only */
	bool shutting_down;
};

static void request_call(struct aegis_xds_server *srv, struct pending_call *pc)
{
	grpc_metadata_array_init(&pc->md);
	pc->call = NULL;
	grpc_call_error e = grpc_server_request_registered_call(
	        srv->server, pc->delta ? srv->m_delta : srv->m_sotw, &pc->call, &pc->deadline, &pc->md, NULL,
	        srv->cq, srv->cq, &pc->tag);
	if (e != GRPC_CALL_OK)
		AEGIS_LOG(AEGIS_LOG_ERROR, "request_registered_call failed", LKV_I("error", e));
}

static bool start_batch(struct stream *s, const grpc_op *ops, size_t n, struct tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(s->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		AEGIS_LOG(AEGIS_LOG_WARN, "start_batch failed", LKV_I("stream", s->id), LKV_I("error", e));
		return false;
	}
	s->outstanding++;
	return true;
}

static void post_recv(struct stream *s)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &s->recv_buf;
	if (!start_batch(s, &op, 1, &s->t_recv))
		s->recv_done = true;
}

static void finish_stream(struct stream *s)
{
	if (s->status_sent || s->closed)
		return;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = GRPC_STATUS_OK;
	op.data.send_status_from_server.trailing_metadata_count = 0;
	s->status_sent = start_batch(s, &op, 1, &s->t_status);
}

static void pump_send(struct stream *s)
{
	if (s->send_buf != NULL || s->q_len == 0 || s->closed || s->status_sent)
		return;
	s->send_buf = s->queue[s->q_head];
	s->q_head = (s->q_head + 1) % SEND_QUEUE_MAX;
	s->q_len--;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = s->send_buf;
	if (!start_batch(s, &op, 1, &s->t_send)) {
		grpc_byte_buffer_destroy(s->send_buf);
		s->send_buf = NULL;
	}
}

static void free_bytes(void *p, size_t len)
{
	(void)len;
	free(p);
}

/* Takes ownership of buf (malloc'd). */
static void enqueue(struct stream *s, uint8_t *buf, size_t len)
{
	if (s->q_len == SEND_QUEUE_MAX) {
		/* Cannot happen with one unanswered response per type; refuse rather than grow. */
		AEGIS_LOG(AEGIS_LOG_ERROR, "send queue full, dropping", LKV_I("stream", s->id));
		free(buf);
		return;
	}
	grpc_slice sl = grpc_slice_new_with_len(buf, len, free_bytes);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	s->queue[(s->q_head + s->q_len) % SEND_QUEUE_MAX] = bb;
	s->q_len++;
	pump_send(s);
}

static int pack_free(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return AEGIS_ENOMEM;
	*len = protobuf_c_message_pack(m, *out);
	return 0;
}

static void push_sotw(struct stream *s, const struct aegis_xds_snapshot *snap, enum aegis_xds_type t)
{
	const char *ver = snap->version[t];
	if (!aegis_ads_srv_should_send(&s->ads, t, ver, &snap->sets[t]))
		return;
	size_t n = snap->sets[t].n;
	Google__Protobuf__Any *any = calloc(n ? n : 1, sizeof(*any));
	Google__Protobuf__Any **anyp = calloc(n ? n : 1, sizeof(*anyp));
	if (any == NULL || anyp == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		google__protobuf__any__init(&any[i]);
		any[i].type_url = (char *)AEGIS_XDS_URL_RESOURCE;
		any[i].value.data = snap->wrapped[t][i];
		any[i].value.len = snap->wrapped_len[t][i];
		anyp[i] = &any[i];
	}
	Envoy__Service__Discovery__V3__DiscoveryResponse r =
	        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	r.version_info = (char *)ver;
	r.type_url = (char *)aegis_xds_type_url(t);
	r.resources = anyp;
	r.n_resources = n;
	r.nonce = (char *)aegis_ads_srv_sent(&s->ads, t, ver);
	uint8_t *buf;
	size_t len;
	if (pack_free(&r.base, &buf, &len) == 0) {
		AEGIS_LOG(AEGIS_LOG_DEBUG, "push", LKV_I("stream", s->id), LKV_S("type", r.type_url),
		          LKV_S("version", ver), LKV_I("resources", n), LKV_I("bytes", len));
		enqueue(s, buf, len);
	}
out:
	free(any);
	free(anyp);
}

static void push_delta(struct stream *s, const struct aegis_xds_snapshot *snap, enum aegis_xds_type t)
{
	const struct aegis_xds_resource_set *set = &snap->sets[t];
	if (!aegis_ads_srv_should_send(&s->ads, t, snap->version[t], set))
		return;
	size_t *ch, nch, nrm;
	const char **rm;
	const char *nonce = aegis_ads_srv_delta_sent(&s->ads, t, snap->version[t], set, &ch, &nch, &rm, &nrm);
	if (nonce == NULL)
		return;
	Envoy__Service__Discovery__V3__Resource *res = calloc(nch ? nch : 1, sizeof(*res));
	Envoy__Service__Discovery__V3__Resource **resp = calloc(nch ? nch : 1, sizeof(*resp));
	Google__Protobuf__Any *any = calloc(nch ? nch : 1, sizeof(*any));
	if (res == NULL || resp == NULL || any == NULL)
		goto out;
	for (size_t i = 0; i < nch; i++) {
		const struct aegis_xds_resource *r = &set->items[ch[i]];
		envoy__service__discovery__v3__resource__init(&res[i]);
		google__protobuf__any__init(&any[i]);
		any[i].type_url = (char *)aegis_xds_type_url(t);
		any[i].value.data = r->body;
		any[i].value.len = r->len;
		res[i].name = r->name;
		res[i].version = r->version;
		res[i].resource = &any[i];
		resp[i] = &res[i];
	}
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse d =
	        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	d.system_version_info = (char *)snap->version[t];
	d.type_url = (char *)aegis_xds_type_url(t);
	d.resources = resp;
	d.n_resources = nch;
	d.removed_resources = (char **)rm;
	d.n_removed_resources = nrm;
	d.nonce = (char *)nonce;
	uint8_t *buf;
	size_t len;
	if (pack_free(&d.base, &buf, &len) == 0) {
		AEGIS_LOG(AEGIS_LOG_DEBUG, "push delta", LKV_I("stream", s->id), LKV_S("type", d.type_url),
		          LKV_I("changed", nch), LKV_I("removed", nrm), LKV_I("bytes", len));
		enqueue(s, buf, len);
	}
out:
	free(res);
	free(resp);
	free(any);
	free(ch);
	free(rm);
}

static void push_all(struct stream *s)
{
	const struct aegis_xds_snapshot *snap = s->srv->snap;
	if (snap == NULL || s->closed || s->status_sent)
		return;
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++) {
		if (s->ads.delta)
			push_delta(s, snap, (enum aegis_xds_type)t);
		else
			push_sotw(s, snap, (enum aegis_xds_type)t);
	}
}

static void note_node(struct stream *s, const Envoy__Config__Core__V3__Node *node)
{
	if (node == NULL || s->ads.node_id[0])
		return;
	snprintf(s->ads.node_id, sizeof(s->ads.node_id), "%s", node->id);
	AEGIS_LOG(AEGIS_LOG_INFO, "stream opened", LKV_I("stream", s->id), LKV_S("node", node->id),
	          LKV_S("cluster", node->cluster), LKV_B("delta", s->ads.delta));
}

static void log_result(struct stream *s, enum aegis_ads_req r, const char *type_url, const char *nonce,
                       const char *err)
{
	if (r == AEGIS_ADS_REQ_NACK)
		AEGIS_LOG(AEGIS_LOG_WARN, "NACK", LKV_I("stream", s->id), LKV_S("node", s->ads.node_id),
		          LKV_S("type", type_url), LKV_S("nonce", nonce), LKV_S("error", err));
	else if (r == AEGIS_ADS_REQ_ACK)
		AEGIS_LOG(AEGIS_LOG_DEBUG, "ACK", LKV_I("stream", s->id), LKV_S("type", type_url),
		          LKV_S("nonce", nonce));
	else if (r == AEGIS_ADS_REQ_STALE)
		AEGIS_LOG(AEGIS_LOG_DEBUG, "stale nonce ignored", LKV_I("stream", s->id),
		          LKV_S("type", type_url), LKV_S("nonce", nonce));
}

static void handle_request(struct stream *s, const uint8_t *p, size_t n)
{
	if (!s->ads.delta) {
		Envoy__Service__Discovery__V3__DiscoveryRequest *r =
		        envoy__service__discovery__v3__discovery_request__unpack(NULL, n, p);
		if (r == NULL) {
			AEGIS_LOG(AEGIS_LOG_WARN, "malformed DiscoveryRequest", LKV_I("stream", s->id));
			return;
		}
		note_node(s, r->node);
		const char *err = r->error_detail ? r->error_detail->message : NULL;
		enum aegis_ads_req res =
		        aegis_ads_srv_on_request(&s->ads, aegis_xds_type_from_url(r->type_url),
		                                 r->version_info, r->response_nonce, err, NULL);
		log_result(s, res, r->type_url, r->response_nonce, err);
		envoy__service__discovery__v3__discovery_request__free_unpacked(r, NULL);
	} else {
		Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *r =
		        envoy__service__discovery__v3__delta_discovery_request__unpack(NULL, n, p);
		if (r == NULL) {
			AEGIS_LOG(AEGIS_LOG_WARN, "malformed DeltaDiscoveryRequest", LKV_I("stream", s->id));
			return;
		}
		note_node(s, r->node);
		struct aegis_ads_rvmap init = {0};
		for (size_t i = 0; i < r->n_initial_resource_versions; i++)
			if (aegis_ads_rvmap_set(&init, r->initial_resource_versions[i]->key,
			                        r->initial_resource_versions[i]->value))
				break;
		const char *err = r->error_detail ? r->error_detail->message : NULL;
		enum aegis_ads_req res = aegis_ads_srv_on_request(
		        &s->ads, aegis_xds_type_from_url(r->type_url), "", r->response_nonce, err, &init);
		log_result(s, res, r->type_url, r->response_nonce, err);
		aegis_ads_rvmap_free(&init);
		envoy__service__discovery__v3__delta_discovery_request__free_unpacked(r, NULL);
	}
	push_all(s);
}

static void stream_maybe_free(struct stream *s)
{
	if (s->outstanding > 0 || !s->closed)
		return;
	struct aegis_xds_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->n_streams--;
	while (s->q_len) {
		grpc_byte_buffer_destroy(s->queue[s->q_head]);
		s->q_head = (s->q_head + 1) % SEND_QUEUE_MAX;
		s->q_len--;
	}
	AEGIS_LOG(AEGIS_LOG_INFO, "stream closed", LKV_I("stream", s->id), LKV_S("node", s->ads.node_id));
	aegis_ads_srv_free(&s->ads);
	grpc_call_unref(s->call);
	free(s);
}

static void accept_call(struct aegis_xds_server *srv, struct pending_call *pc)
{
	struct stream *s = calloc(1, sizeof(*s));
	grpc_metadata_array_destroy(&pc->md);
	if (s == NULL) {
		grpc_call_cancel(pc->call, NULL);
		grpc_call_unref(pc->call);
		return;
	}
	s->srv = srv;
	s->call = pc->call;
	s->id = ++srv->next_id;
	s->t_meta = (struct tag){TAG_META, s};
	s->t_recv = (struct tag){TAG_RECV, s};
	s->t_send = (struct tag){TAG_SEND, s};
	s->t_close = (struct tag){TAG_CLOSE, s};
	s->t_status = (struct tag){TAG_STATUS, s};
	aegis_ads_srv_init(&s->ads, pc->delta);
	s->next = srv->streams;
	if (srv->streams)
		srv->streams->prev = s;
	srv->streams = s;
	srv->n_streams++;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &s->cancelled;
	if (!start_batch(s, &op, 1, &s->t_close))
		s->closed = true;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	op.data.send_initial_metadata.count = 0;
	start_batch(s, &op, 1, &s->t_meta);
	post_recv(s);
	stream_maybe_free(s);
}

static void on_event(struct aegis_xds_server *srv, struct tag *tag, bool ok)
{
	struct stream *s = tag->s;
	switch (tag->kind) {
	case TAG_NEW_SOTW:
	case TAG_NEW_DELTA: {
		struct pending_call *pc = tag->kind == TAG_NEW_SOTW ? &srv->pc_sotw : &srv->pc_delta;
		if (!ok || srv->shutting_down) {
			if (pc->call)
				grpc_call_unref(pc->call);
			grpc_metadata_array_destroy(&pc->md);
			return;
		}
		accept_call(srv, pc);
		request_call(srv, pc);
		return;
	}
	case TAG_SHUTDOWN: return;
	case TAG_META: break;
	case TAG_RECV:
		if (!ok || s->recv_buf == NULL) {
			s->recv_done = true; /* the proxy half-closed or the stream broke */
			finish_stream(s);
			break;
		}
		{
			grpc_byte_buffer_reader rd;
			grpc_slice sl = grpc_empty_slice();
			if (grpc_byte_buffer_reader_init(&rd, s->recv_buf)) {
				sl = grpc_byte_buffer_reader_readall(&rd);
				grpc_byte_buffer_reader_destroy(&rd);
			}
			grpc_byte_buffer_destroy(s->recv_buf);
			s->recv_buf = NULL;
			handle_request(s, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl));
			grpc_slice_unref(sl);
		}
		if (!s->closed)
			post_recv(s);
		break;
	case TAG_SEND:
		grpc_byte_buffer_destroy(s->send_buf);
		s->send_buf = NULL;
		if (ok)
			pump_send(s);
		break;
	case TAG_CLOSE: s->closed = true; break;
	case TAG_STATUS: break;
	}
	s->outstanding--;
	stream_maybe_free(s);
}

int aegis_xds_server_start(const struct aegis_xds_server_listen *l, struct aegis_xds_server **out)
{
	struct aegis_xds_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return AEGIS_ENOMEM;
	pthread_mutex_init(&srv->lock, NULL);
	grpc_arg args[2] = {
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	         .value.integer = (int)AEGIS_XDS_MAX_MESSAGE},
	        {.type = GRPC_ARG_INTEGER,
	         .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
	         .value.integer = (int)AEGIS_XDS_MAX_MESSAGE},
	};
	grpc_channel_args ca = {.num_args = 2, .args = args};
	srv->server = grpc_server_create(&ca, NULL);
	srv->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
	srv->m_sotw = grpc_server_register_method(srv->server, METHOD_SOTW, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
	srv->m_delta = grpc_server_register_method(srv->server, METHOD_DELTA, NULL, GRPC_SRM_PAYLOAD_NONE, 0);
	int port = 0, tls_port = 0, rc = AEGIS_EIO;
	if (l->addr != NULL) {
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		port = grpc_server_add_http2_port(srv->server, l->addr, creds);
		grpc_server_credentials_release(creds);
	}
	if ((l->addr == NULL || port != 0) && l->tls_addr != NULL) {
		grpc_server_credentials *creds = aegis_xds_tls_server_creds(l->cert_dir);
		if (creds == NULL)
			rc = AEGIS_ENOMEM;
		else
			tls_port = grpc_server_add_http2_port(srv->server, l->tls_addr, creds);
		if (creds != NULL)
			grpc_server_credentials_release(creds);
	}
	if ((l->addr != NULL && port == 0) || (l->tls_addr != NULL && tls_port == 0) ||
	    (l->addr == NULL && l->tls_addr == NULL)) {
		grpc_server_destroy(srv->server);
		grpc_completion_queue_shutdown(srv->cq);
		while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
		       GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(srv->cq);
		free(srv);
		return rc;
	}
	grpc_server_start(srv->server);
	srv->pc_sotw.tag = (struct tag){TAG_NEW_SOTW, NULL};
	srv->pc_delta.tag = (struct tag){TAG_NEW_DELTA, NULL};
	srv->pc_delta.delta = true;
	srv->t_shutdown = (struct tag){TAG_SHUTDOWN, NULL};
	request_call(srv, &srv->pc_sotw);
	request_call(srv, &srv->pc_delta);
	if (l->bound_port)
		*l->bound_port = port;
	if (l->tls_port)
		*l->tls_port = tls_port;
	*out = srv;
	return 0;
}

void aegis_xds_server_publish(struct aegis_xds_server *srv, struct aegis_xds_snapshot *snap)
{
	pthread_mutex_lock(&srv->lock);
	struct aegis_xds_snapshot *old = srv->next_snap;
	srv->next_snap = snap;
	pthread_mutex_unlock(&srv->lock);
	aegis_xds_snapshot_unref(old);
}

static void take_snapshot(struct aegis_xds_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	struct aegis_xds_snapshot *n = srv->next_snap;
	srv->next_snap = NULL;
	pthread_mutex_unlock(&srv->lock);
	if (n == NULL)
		return;
	aegis_xds_snapshot_unref(srv->snap);
	srv->snap = n;
	for (struct stream *s = srv->streams; s; s = s->next)
		push_all(s);
	AEGIS_LOG(AEGIS_LOG_INFO, "snapshot pushed", LKV_I("seq", n->seq), LKV_I("streams", srv->n_streams),
	          LKV_I("service_entries", n->sets[AEGIS_XDS_SE].n),
	          LKV_I("clusters", n->sets[AEGIS_XDS_CLA].n));
}

void aegis_xds_server_run(struct aegis_xds_server *srv, const volatile sig_atomic_t *stop)
{
	while (!*stop) {
		take_snapshot(srv);
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		                               gpr_time_from_millis(AEGIS_XDS_POLL_MS, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(srv->cq, dl, NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			on_event(srv, ev.tag, ev.success != 0);
	}
	/* Teardown: stop accepting, cancel every stream, drain every tag, then the queue. */
	srv->shutting_down = true;
	grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->t_shutdown);
	grpc_server_cancel_all_calls(srv->server);
	bool shut = false;
	while (!shut || srv->streams != NULL) {
		grpc_event ev = grpc_completion_queue_next(
		        srv->cq,
		        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(1000, GPR_TIMESPAN)),
		        NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct tag *t = ev.tag;
		if (t->kind == TAG_SHUTDOWN)
			shut = true;
		else
			on_event(srv, t, ev.success != 0);
	}
	grpc_server_destroy(srv->server);
	grpc_completion_queue_shutdown(srv->cq);
	while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(srv->cq);
	aegis_xds_snapshot_unref(srv->snap);
	aegis_xds_snapshot_unref(srv->next_snap);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}
