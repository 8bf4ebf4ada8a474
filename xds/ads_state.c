/* The ADS ACK/NACK state machine of both ends: see ads_int.h. No I/O, no clock: the caller passes now. */
#include "ads_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

/* ---- name -> version map ---- */

static size_t rv_lower(const struct aegis_ads_rvmap *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, m->v[mid].name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int aegis_ads_rvmap_set(struct aegis_ads_rvmap *m, const char *name, const char *version)
{
	bool found;
	size_t i = rv_lower(m, name, &found);
	char *v = strdup(version);
	if (v == NULL)
		return AEGIS_ENOMEM;
	if (found) {
		free(m->v[i].version);
		m->v[i].version = v;
		return 0;
	}
	if (m->n == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;
		struct aegis_ads_rv *p = realloc(m->v, nc * sizeof(*p));
		if (p == NULL) {
			free(v);
			return AEGIS_ENOMEM;
		}
		m->v = p;
		m->cap = nc;
	}
	char *n = strdup(name);
	if (n == NULL) {
		free(v);
		return AEGIS_ENOMEM;
	}
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
	m->v[i].name = n;
	m->v[i].version = v;
	m->n++;
	return 0;
}

void aegis_ads_rvmap_del(struct aegis_ads_rvmap *m, const char *name)
{
	bool found;
	size_t i = rv_lower(m, name, &found);
	if (!found)
		return;
	free(m->v[i].name);
	free(m->v[i].version);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
	m->n--;
}

const char *aegis_ads_rvmap_get(const struct aegis_ads_rvmap *m, const char *name)
{
	bool found;
	size_t i = rv_lower(m, name, &found);
	return found ? m->v[i].version : NULL;
}

void aegis_ads_rvmap_free(struct aegis_ads_rvmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].version);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

int aegis_ads_rvmap_copy(struct aegis_ads_rvmap *dst, const struct aegis_ads_rvmap *src)
{
	aegis_ads_rvmap_free(dst);
	for (size_t i = 0; i < src->n; i++)
		if (aegis_ads_rvmap_set(dst, src->v[i].name, src->v[i].version))
			return AEGIS_ENOMEM;
	return 0;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- client ---- */

void aegis_ads_sm_init(struct aegis_ads_sm *sm, bool delta)
{
	memset(sm, 0, sizeof(*sm));
	sm->delta = delta;
}

void aegis_ads_sm_free(struct aegis_ads_sm *sm)
{
	for (int i = 0; i < AEGIS_XDS_NTYPES; i++)
		aegis_ads_rvmap_free(&sm->t[i].rv);
}

void aegis_ads_sm_stream_reset(struct aegis_ads_sm *sm)
{
	sm->node_sent = false;
	for (int i = 0; i < AEGIS_XDS_NTYPES; i++)
		sm->t[i].nonce[0] = '\0';
}

/* Builds the node (with metadata as a Struct of strings) into caller-provided storage. */
struct node_buf {
	Envoy__Config__Core__V3__Node node;
	Google__Protobuf__Struct md;
	Google__Protobuf__Struct__FieldsEntry *fe;
	Google__Protobuf__Struct__FieldsEntry **fep;
	Google__Protobuf__Value *vals;
};

static Envoy__Config__Core__V3__Node *node_build(struct node_buf *nb, const struct aegis_ads_node *n)
{
	envoy__config__core__v3__node__init(&nb->node);
	google__protobuf__struct__init(&nb->md);
	nb->fe = NULL;
	nb->fep = NULL;
	nb->vals = NULL;
	nb->node.id = (char *)(n->id ? n->id : "");
	nb->node.cluster = (char *)(n->cluster ? n->cluster : "");
	nb->node.user_agent_name = (char *)"aegis";
	nb->node.user_agent_version_type_case =
	        ENVOY__CONFIG__CORE__V3__NODE__USER_AGENT_VERSION_TYPE_USER_AGENT_VERSION;
	nb->node.user_agent_version = (char *)AEGIS_VERSION;
	if (n->n_metadata) {
		nb->fe = calloc(n->n_metadata, sizeof(*nb->fe));
		nb->fep = calloc(n->n_metadata, sizeof(*nb->fep));
		nb->vals = calloc(n->n_metadata, sizeof(*nb->vals));
		if (nb->fe == NULL || nb->fep == NULL || nb->vals == NULL)
			return NULL;
		for (size_t i = 0; i < n->n_metadata; i++) {
			google__protobuf__struct__fields_entry__init(&nb->fe[i]);
			google__protobuf__value__init(&nb->vals[i]);
			nb->vals[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
			nb->vals[i].string_value = (char *)n->metadata[i].value;
			nb->fe[i].key = (char *)n->metadata[i].key;
			nb->fe[i].value = &nb->vals[i];
			nb->fep[i] = &nb->fe[i];
		}
		nb->md.fields = nb->fep;
		nb->md.n_fields = n->n_metadata;
		nb->node.metadata = &nb->md;
	}
	return &nb->node;
}

static void node_release(struct node_buf *nb)
{
	free(nb->fe);
	free(nb->fep);
	free(nb->vals);
}

static int pack_msg(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	*out = malloc(n ? n : 1);
	if (*out == NULL)
		return AEGIS_ENOMEM;
	*len = protobuf_c_message_pack(m, *out);
	return 0;
}

/* One request of either flavour. error NULL = no error_detail. */
static int build_request(struct aegis_ads_sm *sm, enum aegis_xds_type t, const struct aegis_ads_node *node,
                         const char *nonce, const char *error, bool initial, uint8_t **out, size_t *len)
{
	struct node_buf nb;
	Envoy__Config__Core__V3__Node *np = NULL;
	bool with_node = node != NULL && !sm->node_sent;
	int rc = AEGIS_ENOMEM;
	memset(&nb, 0, sizeof(nb));
	if (with_node && (np = node_build(&nb, node)) == NULL)
		goto out;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	if (error != NULL) {
		st.code = 3; /* INVALID_ARGUMENT, as Envoy sends */
		st.message = (char *)error;
	}
	if (!sm->delta) {
		Envoy__Service__Discovery__V3__DiscoveryRequest r =
		        ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
		r.node = np;
		r.type_url = (char *)aegis_xds_type_url(t);
		r.version_info = sm->t[t].version;
		r.response_nonce = (char *)nonce;
		r.error_detail = error ? &st : NULL;
		rc = pack_msg(&r.base, out, len);
	} else {
		Envoy__Service__Discovery__V3__DeltaDiscoveryRequest r =
		        ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
		Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry
		        *e = NULL,
		        **ep = NULL;
		r.node = np;
		r.type_url = (char *)aegis_xds_type_url(t);
		r.response_nonce = (char *)nonce;
		r.error_detail = error ? &st : NULL;
		const struct aegis_ads_rvmap *rv = &sm->t[t].rv;
		if (initial && rv->n) {
			e = calloc(rv->n, sizeof(*e));
			ep = calloc(rv->n, sizeof(*ep));
			if (e == NULL || ep == NULL) {
				free(e);
				free(ep);
				goto out;
			}
			for (size_t i = 0; i < rv->n; i++) {
				envoy__service__discovery__v3__delta_discovery_request__initial_resource_versions_entry__init(
				        &e[i]);
				e[i].key = rv->v[i].name;
				e[i].value = rv->v[i].version;
				ep[i] = &e[i];
			}
			r.initial_resource_versions = ep;
			r.n_initial_resource_versions = rv->n;
		}
		rc = pack_msg(&r.base, out, len);
		free(e);
		free(ep);
	}
	if (rc == 0 && with_node)
		sm->node_sent = true;
out:
	node_release(&nb);
	return rc;
}

int aegis_ads_sm_subscribe(struct aegis_ads_sm *sm, enum aegis_xds_type t, const struct aegis_ads_node *node,
                           uint8_t **out, size_t *len)
{
	return build_request(sm, t, node, "", NULL, true, out, len);
}

int aegis_ads_sm_ack(struct aegis_ads_sm *sm, enum aegis_xds_type t, const char *version, const char *nonce,
                     int64_t now_ms, const struct aegis_ads_rv *added, size_t n_added, char *const *removed,
                     size_t n_removed, uint8_t **out, size_t *len)
{
	struct aegis_ads_client_type *ct = &sm->t[t];
	for (size_t i = 0; i < n_added; i++)
		if (aegis_ads_rvmap_set(&ct->rv, added[i].name, added[i].version))
			return AEGIS_ENOMEM;
	for (size_t i = 0; i < n_removed; i++)
		aegis_ads_rvmap_del(&ct->rv, removed[i]);
	copy_str(ct->version, sizeof(ct->version), version);
	copy_str(ct->nonce, sizeof(ct->nonce), nonce);
	ct->last = AEGIS_ADS_ACK;
	ct->last_ms = now_ms;
	ct->n_ack++;
	return build_request(sm, t, NULL, nonce, NULL, false, out, len);
}

int aegis_ads_sm_nack(struct aegis_ads_sm *sm, enum aegis_xds_type t, const char *nonce, const char *error,
                      int64_t now_ms, uint8_t **out, size_t *len)
{
	struct aegis_ads_client_type *ct = &sm->t[t];
	copy_str(ct->nonce, sizeof(ct->nonce), nonce);
	copy_str(ct->error, sizeof(ct->error), error && error[0] ? error : "rejected");
	ct->last = AEGIS_ADS_NACK;
	ct->last_ms = now_ms;
	ct->n_nack++;
	return build_request(sm, t, NULL, nonce, ct->error, false, out, len);
}

/* ---- server ---- */

void aegis_ads_srv_init(struct aegis_ads_srv_stream *st, bool delta)
{
	memset(st, 0, sizeof(*st));
	st->delta = delta;
}

void aegis_ads_srv_free(struct aegis_ads_srv_stream *st)
{
	for (int i = 0; i < AEGIS_XDS_NTYPES; i++) {
		aegis_ads_rvmap_free(&st->t[i].known);
		aegis_ads_rvmap_free(&st->t[i].pending);
	}
}

enum aegis_ads_req aegis_ads_srv_on_request(struct aegis_ads_srv_stream *st, int type, const char *version,
                                            const char *nonce, const char *error,
                                            const struct aegis_ads_rvmap *initial)
{
	if (type < 0 || type >= AEGIS_XDS_NTYPES)
		return AEGIS_ADS_REQ_UNKNOWN;
	struct aegis_ads_srv_type *t = &st->t[type];
	if (!t->subscribed || nonce == NULL || nonce[0] == '\0') {
		if (t->subscribed && t->inflight)
			return AEGIS_ADS_REQ_STALE; /* a re-subscription while a response is out: answer that
			                               first */
		t->subscribed = true;
		t->inflight = false;
		t->responded = false;
		/* SotW: the version the client already has (after a reconnect) spares a resend. */
		copy_str(t->acked_version, sizeof(t->acked_version), version);
		if (st->delta) {
			aegis_ads_rvmap_free(&t->known);
			aegis_ads_rvmap_free(&t->pending);
			if (initial && aegis_ads_rvmap_copy(&t->known, initial))
				aegis_ads_rvmap_free(
				        &t->known); /* forget on ENOMEM: the client gets everything */
		}
		return AEGIS_ADS_REQ_SUBSCRIBE;
	}
	if (!t->inflight || strcmp(nonce, t->sent_nonce) != 0)
		return AEGIS_ADS_REQ_STALE;
	t->inflight = false;
	if (error != NULL && error[0] != '\0') {
		copy_str(t->error, sizeof(t->error), error);
		t->last = AEGIS_ADS_NACK;
		aegis_ads_rvmap_free(&t->pending);
		return AEGIS_ADS_REQ_NACK;
	}
	t->last = AEGIS_ADS_ACK;
	t->error[0] = '\0';
	copy_str(t->acked_version, sizeof(t->acked_version), st->delta ? t->sent_version : version);
	if (st->delta) {
		for (size_t i = 0; i < t->pending.n; i++) {
			if (t->pending.v[i].version[0] == '\0')
				aegis_ads_rvmap_del(&t->known, t->pending.v[i].name);
			else if (aegis_ads_rvmap_set(&t->known, t->pending.v[i].name,
			                             t->pending.v[i].version))
				aegis_ads_rvmap_del(&t->known, t->pending.v[i].name); /* resent next time */
		}
		aegis_ads_rvmap_free(&t->pending);
	}
	return AEGIS_ADS_REQ_ACK;
}

static bool delta_differs(const struct aegis_ads_rvmap *known, const struct aegis_xds_resource_set *set)
{
	if (known->n != set->n)
		return true;
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(known->v[i].name, set->items[i].name) != 0 ||
		    strcmp(known->v[i].version, set->items[i].version) != 0)
			return true;
	return false;
}

bool aegis_ads_srv_should_send(const struct aegis_ads_srv_stream *st, enum aegis_xds_type t,
                               const char *version, const struct aegis_xds_resource_set *set)
{
	const struct aegis_ads_srv_type *ty = &st->t[t];
	if (!ty->subscribed || ty->inflight)
		return false;
	if (st->delta)
		return !ty->responded ||
		       (delta_differs(&ty->known, set) &&
		        !(ty->last == AEGIS_ADS_NACK && strcmp(ty->sent_version, version) == 0));
	/* A NACKed version is not sent again; the next change is. */
	if (strcmp(ty->acked_version, version) == 0)
		return false;
	return !(ty->last == AEGIS_ADS_NACK && strcmp(ty->sent_version, version) == 0);
}

static const char *next_nonce(struct aegis_ads_srv_stream *st, struct aegis_ads_srv_type *t,
                              const char *version)
{
	snprintf(t->sent_nonce, sizeof(t->sent_nonce), "%" PRIu64, ++st->nonce_seq);
	copy_str(t->sent_version, sizeof(t->sent_version), version);
	t->inflight = true;
	t->responded = true;
	return t->sent_nonce;
}

const char *aegis_ads_srv_sent(struct aegis_ads_srv_stream *st, enum aegis_xds_type t, const char *version)
{
	return next_nonce(st, &st->t[t], version);
}

const char *aegis_ads_srv_delta_sent(struct aegis_ads_srv_stream *st, enum aegis_xds_type t,
                                     const char *system_version, const struct aegis_xds_resource_set *set,
                                     size_t **changed, size_t *n_changed, const char ***removed,
                                     size_t *n_removed)
{
	struct aegis_ads_srv_type *ty = &st->t[t];
	*changed = NULL;
	*removed = NULL;
	*n_changed = *n_removed = 0;
	aegis_ads_rvmap_free(&ty->pending);
	size_t *ch = set->n ? malloc(set->n * sizeof(*ch)) : NULL;
	const char **rm = ty->known.n ? malloc(ty->known.n * sizeof(*rm)) : NULL;
	if ((set->n && ch == NULL) || (ty->known.n && rm == NULL))
		goto fail;
	for (size_t i = 0; i < set->n; i++) {
		const char *have = aegis_ads_rvmap_get(&ty->known, set->items[i].name);
		if (have != NULL && strcmp(have, set->items[i].version) == 0)
			continue;
		ch[(*n_changed)++] = i;
		if (aegis_ads_rvmap_set(&ty->pending, set->items[i].name, set->items[i].version))
			goto fail;
	}
	for (size_t i = 0; i < ty->known.n; i++) {
		if (aegis_xds_resource_find(set, ty->known.v[i].name) != NULL)
			continue;
		rm[(*n_removed)++] = ty->known.v[i].name;
		if (aegis_ads_rvmap_set(&ty->pending, ty->known.v[i].name, ""))
			goto fail;
	}
	*changed = ch;
	*removed = rm;
	return next_nonce(st, ty, system_version);
fail:
	free(ch);
	free(rm);
	*n_changed = *n_removed = 0;
	aegis_ads_rvmap_free(&ty->pending);
	return NULL;
}
