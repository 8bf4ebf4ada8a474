/* YAML resource loader, the field helpers: reading typed values out of a document tree
 * (resource_yaml_int.h) with the checks and the messages that make a bad file stop start-up at the right
 * line. Used by resource_kinds.c.
 *
 * Conventions: every helper returns 0 or a negative aegis_err with l->diag filled, and the first error
 * ends the whole load (so nothing half-built is ever kept). A field whose value is null ("key:" or
 * "key: null") counts as absent. A known field of the wrong shape is an error, an unknown field is
 * ignored. Typed helpers append their key to l->path only when they report, so messages read
 * "ServiceEntry default/x spec.ports[1].number: ...". */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aegis/limits.h"
#include "resource_yaml_int.h"

/* ---- messages ---- */

/* Prefixes the message with the object and the field path: "ServiceEntry ns/name spec.hosts[1]: ". */
static int vfail(struct aegis_yaml_loader *l, const struct aegis_ynode *at, int err, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));
static int vfail(struct aegis_yaml_loader *l, const struct aegis_ynode *at, int err, const char *fmt,
                 va_list ap)
{
	char msg[224];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	const char *sep1 = l->obj[0] ? " " : "";
	const char *sep2 = l->obj[0] || l->path[0] ? ": " : "";
	return aegis_diag_set(l->diag, err, l->source, at ? at->line : 0, at ? at->column : 0, "%s%s%s%s%s",
	                      l->obj, l->path[0] ? sep1 : "", l->path, sep2, msg);
}

int aegis_yaml_fail(struct aegis_yaml_loader *l, const struct aegis_ynode *at, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(l, at, err, fmt, ap);
	va_end(ap);
	return rc;
}

size_t aegis_yaml_path_key(struct aegis_yaml_loader *l, const char *key)
{
	size_t old = l->path_len;
	if (key != NULL && old < sizeof(l->path)) {
		snprintf(l->path + old, sizeof(l->path) - old, "%s%s", old ? "." : "", key);
		l->path_len = strlen(l->path);
	}
	return old;
}

size_t aegis_yaml_path_index(struct aegis_yaml_loader *l, size_t i)
{
	size_t old = l->path_len;
	if (old < sizeof(l->path)) {
		snprintf(l->path + old, sizeof(l->path) - old, "[%zu]", i);
		l->path_len = strlen(l->path);
	}
	return old;
}

void aegis_yaml_path_pop(struct aegis_yaml_loader *l, size_t old)
{
	l->path_len = old;
	l->path[old] = '\0';
}

/* Reports an error about the field `key` (NULL: the current path itself). */
int aegis_yaml_fail_key(struct aegis_yaml_loader *l, const char *key, const struct aegis_ynode *at, int err,
                        const char *fmt, ...)
{
	aegis_yaml_path_key(l, key);
	va_list ap;
	va_start(ap, fmt);
	int rc = vfail(l, at, err, fmt, ap);
	va_end(ap);
	return rc;
}

int aegis_yaml_nomem(struct aegis_yaml_loader *l, const struct aegis_ynode *at)
{
	return aegis_yaml_fail(l, at, AEGIS_ENOMEM, "out of memory or configuration larger than %u MiB",
	                       (unsigned)(AEGIS_CONFIG_MAX_BYTES >> 20));
}

/* ---- tree access ---- */

static const char *const type_names[] = {"null", "a string", "a list", "a mapping"};

const char *aegis_yaml_type_name(enum aegis_ynode_type t)
{
	return type_names[t];
}

/* Finds key in map. *out is NULL when the key is absent or null. A repeated key is an error: two
 * readers of one file must never disagree about which value counts. */
int aegis_yaml_get(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                   const struct aegis_ynode **out)
{
	*out = NULL;
	if (map == NULL || map->type != AEGIS_YNODE_MAP)
		return 0;
	const struct aegis_ynode *found = NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct aegis_ynode *k = map->kids[2 * i];
		if (k->type != AEGIS_YNODE_SCALAR || strcmp(k->str, key) != 0)
			continue;
		if (found != NULL)
			return aegis_yaml_fail(l, k, AEGIS_EPARSE, "duplicate key \"%s\"", key);
		found = map->kids[2 * i + 1];
	}
	if (found != NULL && found->type != AEGIS_YNODE_NULL)
		*out = found;
	return 0;
}

int aegis_yaml_want(struct aegis_yaml_loader *l, const struct aegis_ynode *v, const char *key,
                    enum aegis_ynode_type t)
{
	if (v == NULL || v->type == t)
		return 0;
	return aegis_yaml_fail_key(l, key, v, AEGIS_EPARSE, "expected %s, found %s", type_names[t],
	                           type_names[v->type]);
}

static int get_typed(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                     enum aegis_ynode_type t, const struct aegis_ynode **out)
{
	AEGIS_TRY(aegis_yaml_get(l, map, key, out));
	return aegis_yaml_want(l, *out, key, t);
}

int aegis_yaml_get_map(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                       const struct aegis_ynode **out)
{
	return get_typed(l, map, key, AEGIS_YNODE_MAP, out);
}

int aegis_yaml_get_seq(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                       const struct aegis_ynode **out)
{
	return get_typed(l, map, key, AEGIS_YNODE_SEQ, out);
}

int aegis_yaml_get_scalar(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          const struct aegis_ynode **out)
{
	return get_typed(l, map, key, AEGIS_YNODE_SCALAR, out);
}

void *aegis_yaml_alloc_array(struct aegis_yaml_loader *l, size_t n, size_t size)
{
	if (n == 0 || n > SIZE_MAX / size)
		return NULL;
	return aegis_arena_zalloc(&l->cfg->arena, n * size);
}

void aegis_yaml_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* ---- scalar syntax ---- */

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int aegis_yaml_ip_family(const char *s)
{
	unsigned char b[16];
	if (inet_pton(AF_INET, s, b) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, b) == 1)
		return 6;
	return 0;
}

static bool valid_cidr(const char *s)
{
	const char *slash = strchr(s, '/');
	if (slash == NULL)
		return aegis_yaml_ip_family(s) != 0;
	char ip[64];
	size_t n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	int fam = aegis_yaml_ip_family(ip);
	uint64_t bits;
	return fam != 0 && parse_uint(slash + 1, 128, &bits) && bits <= (fam == 4 ? 32u : 128u);
}

/* A DNS name as Istio and Kubernetes accept it: labels of letters, digits, '-' and '_' (1-63 bytes, no
 * '-' at either end), 253 bytes at most, optionally under a leading "*." wildcard; "*" alone only where
 * allow_star (VirtualService hosts). No trailing dot: Istio rejects it, and a dot would change nothing. */
bool aegis_yaml_valid_host(const char *s, bool allow_star)
{
	if (allow_star && strcmp(s, "*") == 0)
		return true;
	if (s[0] == '*' && s[1] == '.')
		s += 2;
	size_t total = strlen(s);
	if (total == 0 || total > 253)
		return false;
	size_t lab = 0;
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (lab == 0 || lab > 63 || p[-1] == '-' || p[-(ptrdiff_t)lab] == '-')
				return false;
			if (*p == '\0')
				return true;
			lab = 0;
			continue;
		}
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		          c == '-' || c == '_';
		if (!ok)
			return false;
		lab++;
	}
}

struct unit {
	const char *name;
	uint64_t ns;
};

/* Go's time.ParseDuration syntax, which is what Istio accepts ("10s", "1.5s", "250ms", "1m30s"), into
 * milliseconds. A non-zero duration under 1 ms becomes 1 ms, so that it never reads as "unset". */
static bool parse_duration_ms(const char *s, uint32_t *out)
{
	static const struct unit units[] = {
	        {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
	        {"\xce\xbcs", 1000},                                            /* U+03BC greek mu */
	        {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull},
	};
	const uint64_t limit = (uint64_t)UINT32_MAX * 1000000u + 999999u;
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return true;
	}
	if (*s == '\0')
		return false;
	uint64_t total = 0;
	while (*s) {
		uint64_t whole = 0, frac = 0, scale = 1;
		bool digits = false;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (whole > limit)
				return false;
			whole = whole * 10 + (uint64_t)(*s - '0');
			digits = true;
		}
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++) {
				if (scale < 1000000000ull) {
					frac = frac * 10 + (uint64_t)(*s - '0');
					scale *= 10;
				}
				digits = true;
			}
		}
		if (!digits)
			return false;
		const struct unit *u = NULL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && u == NULL; i++)
			if (strncmp(s, units[i].name, strlen(units[i].name)) == 0)
				u = &units[i];
		if (u == NULL)
			return false;
		s += strlen(u->name);
		if (whole > limit / u->ns)
			return false;
		/* frac < scale <= 1e9; when unit is not a multiple of scale it is at most 1e6: no overflow.
		 */
		uint64_t part = u->ns % scale == 0 ? frac * (u->ns / scale) : frac * u->ns / scale;
		total += whole * u->ns + part;
		if (total > limit)
			return false;
	}
	uint64_t ms = total / 1000000u;
	*out = (uint32_t)(ms == 0 && total > 0 ? 1 : ms);
	return true;
}

/* ---- typed fields ---- */

int aegis_yaml_str_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                         const char **out)
{
	const struct aegis_ynode *v;
	*out = "";
	AEGIS_TRY(aegis_yaml_get_scalar(l, map, key, &v));
	if (v == NULL)
		return 0;
	*out = aegis_arena_strdup(&l->cfg->arena, v->str);
	return *out != NULL ? 0 : aegis_yaml_nomem(l, v);
}

/* An integer in [min, max]; *out is left alone when the field is absent. kubectl prints some numbers
 * quoted ("80") and some not; both are the same number here. */
int aegis_yaml_u32_value(struct aegis_yaml_loader *l, const char *key, const struct aegis_ynode *v,
                         uint32_t min, uint32_t max, uint32_t *out)
{
	if (v->type != AEGIS_YNODE_SCALAR)
		return aegis_yaml_fail_key(l, key, v, AEGIS_EPARSE, "expected an integer, found %s",
		                           type_names[v->type]);
	uint64_t n;
	if (!parse_uint(v->str, max, &n) || n < min)
		return aegis_yaml_fail_key(l, key, v, AEGIS_EINVAL,
		                           "expected an integer in %u..%u, found \"%.64s\"", min, max,
		                           v->str);
	*out = (uint32_t)n;
	return 0;
}

int aegis_yaml_u32_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                         uint32_t min, uint32_t max, uint32_t *out)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_get_scalar(l, map, key, &v));
	return v != NULL ? aegis_yaml_u32_value(l, key, v, min, max, out) : 0;
}

int aegis_yaml_port_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          uint32_t *out)
{
	return aegis_yaml_u32_field(l, map, key, 1, 65535, out);
}

int aegis_yaml_bool_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          bool *out)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_get_scalar(l, map, key, &v));
	if (v == NULL)
		return 0;
	if (strcmp(v->str, "true") == 0 || strcmp(v->str, "True") == 0 || strcmp(v->str, "TRUE") == 0)
		*out = true;
	else if (strcmp(v->str, "false") == 0 || strcmp(v->str, "False") == 0 || strcmp(v->str, "FALSE") == 0)
		*out = false;
	else
		return aegis_yaml_fail_key(l, key, v, AEGIS_EINVAL, "expected true or false, found \"%.64s\"",
		                           v->str);
	return 0;
}

int aegis_yaml_duration_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                              uint32_t *out)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_get_scalar(l, map, key, &v));
	if (v == NULL)
		return 0;
	if (!parse_duration_ms(v->str, out))
		return aegis_yaml_fail_key(
		        l, key, v, AEGIS_EINVAL,
		        "expected a duration such as \"10s\", \"1.5s\" or \"250ms\", found \"%.64s\"",
		        v->str);
	return 0;
}

/* Enum values are matched exactly, as protobuf JSON does. An unknown value is an error rather than a
 * silent default: a DestinationRule whose tls.mode we cannot read must not turn into plaintext. */
int aegis_yaml_enum_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          const struct aegis_yaml_enum *names, size_t n_names, int *out)
{
	const struct aegis_ynode *v;
	AEGIS_TRY(aegis_yaml_get_scalar(l, map, key, &v));
	if (v == NULL)
		return 0;
	for (size_t i = 0; i < n_names; i++) {
		if (strcmp(v->str, names[i].name) == 0) {
			*out = names[i].value;
			return 0;
		}
	}
	char list[160] = "";
	size_t used = 0;
	for (size_t i = 0; i < n_names && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i].name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return aegis_yaml_fail_key(l, key, v, AEGIS_EINVAL, "unknown value \"%.64s\" (expected one of %s)",
	                           v->str, list);
}

/* Checks (and for host names lower-cases) one string in place. */
int aegis_yaml_check_str(struct aegis_yaml_loader *l, const struct aegis_ynode *at, char *s,
                         enum aegis_yaml_check c)
{
	switch (c) {
	case AEGIS_YCHECK_HOST:
	case AEGIS_YCHECK_HOST_OR_STAR:
		if (!aegis_yaml_valid_host(s, c == AEGIS_YCHECK_HOST_OR_STAR))
			return aegis_yaml_fail(l, at, AEGIS_EINVAL, "\"%.64s\" is not a valid host name", s);
		aegis_yaml_lower(s);
		return 0;
	case AEGIS_YCHECK_ADDR:
		if (!valid_cidr(s))
			return aegis_yaml_fail(l, at, AEGIS_EINVAL, "\"%.64s\" is not an IP address or CIDR",
			                       s);
		return 0;
	case AEGIS_YCHECK_IP:
		if (aegis_yaml_ip_family(s) == 0)
			return aegis_yaml_fail(l, at, AEGIS_EINVAL, "\"%.64s\" is not an IP address", s);
		return 0;
	case AEGIS_YCHECK_NONE: break;
	}
	return 0;
}

int aegis_yaml_strlist_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                             enum aegis_yaml_check c, const char *const **out, size_t *n_out)
{
	const struct aegis_ynode *seq;
	*out = NULL;
	*n_out = 0;
	AEGIS_TRY(aegis_yaml_get_seq(l, map, key, &seq));
	if (seq == NULL || seq->n == 0)
		return 0;
	const char **arr = aegis_yaml_alloc_array(l, seq->n, sizeof(*arr));
	if (arr == NULL)
		return aegis_yaml_nomem(l, seq);
	size_t saved = aegis_yaml_path_key(l, key), base = l->path_len;
	for (size_t i = 0; i < seq->n; i++) {
		const struct aegis_ynode *item = seq->kids[i];
		aegis_yaml_path_index(l, i);
		AEGIS_TRY(aegis_yaml_want(l, item, NULL, AEGIS_YNODE_SCALAR));
		char *s = aegis_arena_strdup(&l->cfg->arena, item->str);
		if (s == NULL)
			return aegis_yaml_nomem(l, item);
		AEGIS_TRY(aegis_yaml_check_str(l, item, s, c));
		arr[i] = s;
		aegis_yaml_path_pop(l, base);
	}
	aegis_yaml_path_pop(l, saved);
	*out = arr;
	*n_out = seq->n;
	return 0;
}

/* A string-to-string mapping (labels, annotations, selectors). Non-string values such as `tier: 1` keep
 * their text; a null value is "". */
int aegis_yaml_labels_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                            struct aegis_labels *out)
{
	const struct aegis_ynode *m;
	out->items = NULL;
	out->n = 0;
	AEGIS_TRY(aegis_yaml_get_map(l, map, key, &m));
	if (m == NULL || m->n == 0)
		return 0;
	struct aegis_kv *kv = aegis_yaml_alloc_array(l, m->n, sizeof(*kv));
	if (kv == NULL)
		return aegis_yaml_nomem(l, m);
	for (size_t i = 0; i < m->n; i++) {
		const struct aegis_ynode *k = m->kids[2 * i], *v = m->kids[2 * i + 1];
		if (k->type != AEGIS_YNODE_SCALAR)
			return aegis_yaml_fail_key(l, key, k, AEGIS_EPARSE, "keys must be strings");
		if (v->type == AEGIS_YNODE_SEQ || v->type == AEGIS_YNODE_MAP)
			return aegis_yaml_fail_key(l, key, v, AEGIS_EPARSE,
			                           "value of \"%.64s\" must be a string", k->str);
		kv[i].key = aegis_arena_strdup(&l->cfg->arena, k->str);
		kv[i].value = aegis_arena_strdup(&l->cfg->arena, v->str);
		if (kv[i].key == NULL || kv[i].value == NULL)
			return aegis_yaml_nomem(l, k);
	}
	out->items = kv;
	out->n = m->n;
	return 0;
}
