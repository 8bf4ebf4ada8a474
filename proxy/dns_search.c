/* The search-suffix matcher: see dns_search.h, docs/dns-table.md for the order and its reasons.
 *
 * Everything a match needs is converted once, at construction: the suffixes, the cluster domain and the
 * namespace are lower-case wire names with their label counts, sorted longest first. A match then only
 * compares bytes and builds candidate names in a stack buffer. */
#include "dns_search.h"

#include <stdlib.h>
#include <string.h>

struct wname {
	uint8_t w[AEGIS_DNS_NAME_BUF];
	uint8_t len;    /* with the root byte */
	uint8_t labels; /* root not counted */
};

struct aegis_search {
	char ns[64];                /* "" = unknown */
	struct wname ns_svc_domain; /* <ns>.svc.<domain> (when ns known) */
	struct wname svc_domain;    /* svc.<domain> */
	struct wname domain;        /* <domain> */
	struct wname mesh[3];       /* domain, clusterset.local, global */
	struct wname suffix[AEGIS_CONFIG_MAX_SEARCH];
	char suffix_str[AEGIS_CONFIG_MAX_SEARCH][AEGIS_DNS_NAME_BUF];
	size_t n_suffix;
};

static int to_wname(const char *s, struct wname *out)
{
	int n = aegis_dns_name_from_str(s, out->w);
	if (n < 0)
		return n;
	out->len = (uint8_t)n;
	out->labels = (uint8_t)aegis_dns_name_labels(out->w, (size_t)n);
	return 0;
}

/* Wire names from parts: "a" "b" -> a.b (each part a presentation name). */
static int join(struct wname *out, const char *a, const char *b)
{
	char tmp[2 * AEGIS_DNS_NAME_BUF + 2];
	size_t la = strlen(a), lb = strlen(b);
	if (la + lb + 2 > sizeof(tmp))
		return AEGIS_EINVAL;
	memcpy(tmp, a, la);
	tmp[la] = '.';
	memcpy(tmp + la + 1, b, lb + 1);
	return to_wname(tmp, out);
}

static int add_suffix(struct aegis_search *s, const char *pres)
{
	struct wname w;
	int rc = to_wname(pres, &w);
	if (rc != 0)
		return rc;
	if (w.len <= 1)
		return 0; /* the root: stripping it leaves the name that was already tried */
	for (size_t i = 0; i < s->n_suffix; i++) {
		if (s->suffix[i].len == w.len && memcmp(s->suffix[i].w, w.w, w.len) == 0)
			return 0;
	}
	if (s->n_suffix == AEGIS_CONFIG_MAX_SEARCH)
		return 0;
	/* Insert keeping longest first (stable for equal lengths): when two suffixes both match a name the
	 * longer one is below the shorter, and stripping it leaves the name the user meant (api.example.com,
	 * not api.example.com.<ns>.svc under cluster.local). */
	size_t at = s->n_suffix;
	while (at > 0 && s->suffix[at - 1].len < w.len)
		at--;
	memmove(&s->suffix[at + 1], &s->suffix[at], (s->n_suffix - at) * sizeof(s->suffix[0]));
	memmove(&s->suffix_str[at + 1], &s->suffix_str[at], (s->n_suffix - at) * sizeof(s->suffix_str[0]));
	s->suffix[at] = w;
	int n = aegis_dns_name_to_str(w.w, w.len, s->suffix_str[at], sizeof(s->suffix_str[at]));
	if (n > 1)
		s->suffix_str[at][n - 1] = '\0'; /* as resolv.conf writes it: no trailing dot */
	s->n_suffix++;
	return 0;
}

/* Appends a wire name's presentation form (no trailing dot) as a suffix. */
static int add_suffix_w(struct aegis_search *s, const struct wname *w)
{
	char tmp[4 * AEGIS_DNS_NAME_BUF];
	int n = aegis_dns_name_to_str(w->w, w->len, tmp, sizeof(tmp));
	return n < 0 ? n : add_suffix(s, tmp);
}

int aegis_search_new(const struct aegis_search_opts *opts, struct aegis_search **out)
{
	const char *domain =
	        opts->cluster_domain && opts->cluster_domain[0] ? opts->cluster_domain : "cluster.local";
	const char *ns = opts->namespace_ ? opts->namespace_ : "";
	size_t nslen = strlen(ns);
	if (nslen > 63 || strchr(ns, '.') != NULL)
		return AEGIS_EINVAL;
	struct aegis_search *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return AEGIS_ENOMEM;
	for (size_t i = 0; i < nslen; i++)
		s->ns[i] = (char)aegis_dns_lower((uint8_t)ns[i]);
	int rc = to_wname(domain, &s->domain);
	if (rc == 0 && s->domain.len <= 1)
		rc = AEGIS_EINVAL;
	if (rc == 0)
		rc = join(&s->svc_domain, "svc", domain);
	if (rc == 0 && s->ns[0]) {
		char tmp[AEGIS_DNS_NAME_BUF + 8];
		size_t dl = strlen(domain);
		if (dl + 5 > sizeof(tmp))
			rc = AEGIS_EINVAL;
		else {
			memcpy(tmp, "svc.", 4);
			memcpy(tmp + 4, domain, dl + 1);
			rc = join(&s->ns_svc_domain, s->ns, tmp);
		}
	}
	if (rc == 0) {
		s->mesh[0] = s->domain;
		rc = to_wname("clusterset.local", &s->mesh[1]);
	}
	if (rc == 0)
		rc = to_wname("global", &s->mesh[2]);
	if (rc != 0)
		goto fail;
	if (opts->n_search > 0) {
		for (size_t i = 0; rc == 0 && i < opts->n_search && i < AEGIS_CONFIG_MAX_SEARCH; i++)
			rc = add_suffix(s, opts->search[i]);
	} else if (s->ns[0]) {
		/* What the kubelet writes into a pod's resolv.conf. */
		rc = add_suffix_w(s, &s->ns_svc_domain);
		if (rc == 0)
			rc = add_suffix_w(s, &s->svc_domain);
		if (rc == 0)
			rc = add_suffix_w(s, &s->domain);
	}
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	free(s);
	return rc == AEGIS_ENOMEM ? rc : AEGIS_EINVAL;
}

void aegis_search_free(struct aegis_search *s)
{
	free(s);
}

/* Label start offsets of a wire name (root not counted); returns the count, or -1 when malformed. */
static int label_offsets(const uint8_t *name, size_t len, uint8_t offs[AEGIS_DNS_MAX_LABELS])
{
	int n = 0;
	size_t i = 0;
	while (i < len && name[i] != 0) {
		if (n == AEGIS_DNS_MAX_LABELS || name[i] > 63)
			return -1;
		offs[n++] = (uint8_t)i;
		i += (size_t)name[i] + 1;
	}
	return i + 1 == len ? n : -1;
}

/* Does the name (with offsets) end in suffix, on a label boundary and leaving at least one label? */
static bool ends_with(const uint8_t *name, size_t len, const uint8_t *offs, int nl, const struct wname *sfx)
{
	if ((int)sfx->labels >= nl)
		return false;
	size_t at = offs[nl - sfx->labels];
	return len - at == sfx->len && memcmp(name + at, sfx->w, sfx->len) == 0;
}

/* The Kubernetes short forms of X (given as labels without the root): 1 label -> X.<ns>.svc.<domain>,
 * 2 labels -> X.svc.<domain>, 3 labels ending in "svc" -> X.<domain>. Looks the expansion up. */
static const struct aegis_dns_node *short_form(const struct aegis_search *s, const struct aegis_table *t,
                                               const uint8_t *x, size_t xlen, const uint8_t *offs, int nl)
{
	const struct wname *tail;
	if (nl == 1 && s->ns[0])
		tail = &s->ns_svc_domain;
	else if (nl == 2)
		tail = &s->svc_domain;
	else if (nl == 3 && x[offs[2]] == 3 && memcmp(x + offs[2] + 1, "svc", 3) == 0)
		tail = &s->domain;
	else
		return NULL;
	if (xlen + tail->len > AEGIS_DNS_MAX_NAME)
		return NULL;
	uint8_t buf[AEGIS_DNS_NAME_BUF];
	memcpy(buf, x, xlen);
	memcpy(buf + xlen, tail->w, tail->len);
	return aegis_table_find(t, buf, xlen + tail->len);
}

static void set_alias(struct aegis_match *m, const struct aegis_dns_node *n, const uint8_t *target,
                      size_t tlen)
{
	m->kind = AEGIS_MATCH_ALIAS;
	m->node = n;
	m->target = target;
	m->target_len = tlen;
}

void aegis_search_match(const struct aegis_search *s, const struct aegis_table *t, const uint8_t *lname,
                        size_t len, struct aegis_match *m)
{
	m->kind = AEGIS_MATCH_NONE;
	m->node = NULL;
	m->target = NULL;
	m->target_len = 0;
	uint8_t offs[AEGIS_DNS_MAX_LABELS];
	int nl;
	if (t == NULL || len == 0 || len > AEGIS_DNS_MAX_NAME || (nl = label_offsets(lname, len, offs)) <= 0)
		return;
	const struct aegis_dns_node *n = aegis_table_find(t, lname, len);
	if (n != NULL) {
		m->kind = AEGIS_MATCH_EXACT;
		m->node = n;
		return;
	}
	n = aegis_table_find_wildcard(t, lname, len);
	if (n != NULL) {
		m->kind = AEGIS_MATCH_WILDCARD;
		m->node = n;
		return;
	}
	/* A short form's expansion is never a reverse name (it has a "svc" label), so never a PTR node. */
	n = short_form(s, t, lname, len - 1, offs, nl);
	if (n != NULL) {
		set_alias(m, n, aegis_node_name(n).name, n->name_len - 1u);
		return;
	}
	uint8_t buf[AEGIS_DNS_NAME_BUF];
	for (size_t i = 0; i < s->n_suffix; i++) {
		const struct wname *sfx = &s->suffix[i];
		if (!ends_with(lname, len, offs, nl, sfx))
			continue;
		int xl = nl - sfx->labels;
		size_t xlen = offs[xl - 1] + 1u + lname[offs[xl - 1]];
		memcpy(buf, lname, xlen);
		buf[xlen] = 0;
		/* X exact: the target is X's labels in the query itself, the same bytes as the node's name
		 * (which a PTR node does not store: X may be a reverse name). */
		n = aegis_table_find(t, buf, xlen + 1);
		if (n != NULL) {
			set_alias(m, n, lname, xlen);
			return;
		}
		n = short_form(s, t, lname, xlen, offs, xl);
		if (n != NULL) {
			set_alias(m, n, aegis_node_name(n).name, n->name_len - 1u);
			return;
		}
		/* Under a wildcard the target is X itself (the asked labels): a name with "*" in it would be
		 * rejected by glibc and curl. */
		n = aegis_table_find_wildcard(t, buf, xlen + 1);
		if (n != NULL) {
			set_alias(m, n, lname, xlen);
			return;
		}
	}
}

bool aegis_search_in_mesh_domain(const struct aegis_search *s, const uint8_t *lname, size_t len)
{
	uint8_t offs[AEGIS_DNS_MAX_LABELS];
	int nl = len <= AEGIS_DNS_MAX_NAME ? label_offsets(lname, len, offs) : -1;
	if (nl <= 0)
		return false;
	for (size_t i = 0; i < 3; i++) {
		const struct wname *d = &s->mesh[i];
		if ((int)d->labels > nl)
			continue;
		size_t at = d->labels == nl ? 0 : offs[nl - d->labels];
		if (len - at == d->len && memcmp(lname + at, d->w, d->len) == 0)
			return true;
	}
	return false;
}

size_t aegis_search_count(const struct aegis_search *s)
{
	return s->n_suffix;
}

const char *aegis_search_suffix(const struct aegis_search *s, size_t i)
{
	return i < s->n_suffix ? s->suffix_str[i] : NULL;
}

const char *aegis_search_namespace(const struct aegis_search *s)
{
	return s->ns;
}
