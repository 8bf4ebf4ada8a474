/* Private to xds/resource_yaml.c and xds/resource_kinds.c: the small YAML tree the loader builds from
 * libyaml events, and the loader state both files share.
 *
 * resource_yaml.c turns bytes into one tree per document (libyaml events, depth-limited, no aliases)
 * and walks files and directories; resource_yaml_fields.c reads typed, checked values out of a tree;
 * resource_kinds.c maps each kind onto struct aegis_config. The split keeps the YAML mechanics (where
 * the hostile input is) apart from the field-by-field mapping. */
#ifndef AEGIS_RESOURCE_YAML_INT_H
#define AEGIS_RESOURCE_YAML_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/model.h"

enum aegis_ynode_type {
	AEGIS_YNODE_NULL = 0, /* plain "", "~", "null": treated as absent */
	AEGIS_YNODE_SCALAR,
	AEGIS_YNODE_SEQ,
	AEGIS_YNODE_MAP
};

/* One node of a document. Scalars are NUL-terminated and never contain a NUL byte (the builder rejects
 * them, so that C string handling cannot be fooled by "a.com\0.b.com"). A mapping's kids alternate key,
 * value: kids[2 * i] is the i-th key. Every node lives in the per-document scratch arena. */
struct aegis_ynode {
	enum aegis_ynode_type type;
	int line; /* 1-based position of the node's first character */
	int column;
	const char *str; /* scalars: the text; "" for others */
	size_t len;
	struct aegis_ynode **kids;
	size_t n; /* sequence items, or mapping pairs */
};

/* Output arrays grown in cfg->arena, one per kind. */
enum aegis_yaml_slot {
	AEGIS_YSLOT_SE = 0,
	AEGIS_YSLOT_WE,
	AEGIS_YSLOT_VS,
	AEGIS_YSLOT_DR,
	AEGIS_YSLOT_SVC,
	AEGIS_YSLOT_EPS,
	AEGIS_YSLOT_CLUSTER,
	AEGIS_YSLOT_COUNT_
};

struct aegis_yaml_loader {
	struct aegis_config *cfg;
	struct aegis_diag *diag;
	const char *source;      /* file being read (in cfg->arena) */
	const char *cluster;     /* cluster of that file, "" = local (in cfg->arena) */
	bool cluster_file;       /* the stream is a cluster.yaml: one kind-less mapping */
	const char *cluster_out; /* set by a cluster.yaml: the name it declared (in cfg->arena) */
	size_t n_files;
	void *arr[AEGIS_YSLOT_COUNT_];
	size_t cap[AEGIS_YSLOT_COUNT_];
	/* For error messages: "ServiceEntry default/x spec.ports[1].number: ..." */
	char obj[192];
	char path[192];
	size_t path_len;
};

/* ---- resource_yaml_fields.c: typed access to a document tree ----
 * Every int-returning helper returns 0 or a negative aegis_err with l->diag filled ("file:line:col:
 * <object> <path>: reason"). Lookups treat a null value as absent, report a repeated key, and check the
 * value's shape; *_field helpers copy into cfg->arena and, when the field is absent, store the default
 * ("" for strings, NULL/0 for lists) or leave *out alone (numbers, booleans, enums). */

#define AEGIS_TRY(expr)                                                                                      \
	do {                                                                                                 \
		int rc_ = (expr);                                                                            \
		if (rc_ != 0)                                                                                \
			return rc_;                                                                          \
	} while (0)

int aegis_yaml_fail(struct aegis_yaml_loader *l, const struct aegis_ynode *at, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* As aegis_yaml_fail, about the field key of the current path (key NULL: the path itself). */
int aegis_yaml_fail_key(struct aegis_yaml_loader *l, const char *key, const struct aegis_ynode *at, int err,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int aegis_yaml_nomem(struct aegis_yaml_loader *l, const struct aegis_ynode *at);

/* The path named in messages: push a key or an index (each returns the length to pop back to). */
size_t aegis_yaml_path_key(struct aegis_yaml_loader *l, const char *key);
size_t aegis_yaml_path_index(struct aegis_yaml_loader *l, size_t i);
void aegis_yaml_path_pop(struct aegis_yaml_loader *l, size_t old);

const char *aegis_yaml_type_name(enum aegis_ynode_type t);
int aegis_yaml_get(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                   const struct aegis_ynode **out) AEGIS_WUR;
int aegis_yaml_want(struct aegis_yaml_loader *l, const struct aegis_ynode *v, const char *key,
                    enum aegis_ynode_type t) AEGIS_WUR;
int aegis_yaml_get_map(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                       const struct aegis_ynode **out) AEGIS_WUR;
int aegis_yaml_get_seq(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                       const struct aegis_ynode **out) AEGIS_WUR;
int aegis_yaml_get_scalar(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          const struct aegis_ynode **out) AEGIS_WUR;

/* n zeroed elements in cfg->arena; NULL when n is 0 (model.h: empty arrays are NULL) or on failure. */
void *aegis_yaml_alloc_array(struct aegis_yaml_loader *l, size_t n, size_t size);
void aegis_yaml_lower(char *s);
int aegis_yaml_ip_family(const char *s); /* 4, 6, or 0 when s is not an IP address */
bool aegis_yaml_valid_host(const char *s, bool allow_star);

int aegis_yaml_str_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                         const char **out) AEGIS_WUR;
/* v (any node) as an integer in [min, max]; key names it in a message. */
int aegis_yaml_u32_value(struct aegis_yaml_loader *l, const char *key, const struct aegis_ynode *v,
                         uint32_t min, uint32_t max, uint32_t *out) AEGIS_WUR;
int aegis_yaml_u32_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                         uint32_t min, uint32_t max, uint32_t *out) AEGIS_WUR;
int aegis_yaml_port_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          uint32_t *out) AEGIS_WUR;
int aegis_yaml_bool_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          bool *out) AEGIS_WUR;
int aegis_yaml_duration_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                              uint32_t *out) AEGIS_WUR;

struct aegis_yaml_enum {
	const char *name;
	int value;
};

int aegis_yaml_enum_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                          const struct aegis_yaml_enum *names, size_t n_names, int *out) AEGIS_WUR;
#define AEGIS_YAML_ENUM_FIELD(l, map, key, names, out)                                                       \
	aegis_yaml_enum_field((l), (map), (key), (names), sizeof(names) / sizeof((names)[0]), (out))

/* What a string must be; host names are also lower-cased in place. */
enum aegis_yaml_check {
	AEGIS_YCHECK_NONE = 0,
	AEGIS_YCHECK_HOST,         /* DNS name, optionally "*." wildcard */
	AEGIS_YCHECK_HOST_OR_STAR, /* the same, or "*" alone */
	AEGIS_YCHECK_ADDR,         /* IP address or CIDR */
	AEGIS_YCHECK_IP
};

int aegis_yaml_check_str(struct aegis_yaml_loader *l, const struct aegis_ynode *at, char *s,
                         enum aegis_yaml_check c) AEGIS_WUR;
int aegis_yaml_strlist_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                             enum aegis_yaml_check c, const char *const **out, size_t *n_out) AEGIS_WUR;
int aegis_yaml_labels_field(struct aegis_yaml_loader *l, const struct aegis_ynode *map, const char *key,
                            struct aegis_labels *out) AEGIS_WUR;

/* ---- resource_kinds.c ---- */

/* Maps one document (root may be NULL for an empty document) onto l->cfg; a cluster.yaml document when
 * l->cluster_file. Returns 0 or a negative aegis_err with l->diag filled. */
int aegis_yaml_map_document(struct aegis_yaml_loader *l, const struct aegis_ynode *root) AEGIS_WUR;

#endif
