/* YAML resource loader, the generic half: bytes -> libyaml events -> one small tree per document, and
 * the walk over files and directories. The per-kind mapping is in resource_kinds.c. See
 * include/aegis/resource_yaml.h for the contract and docs/resources.md for what is accepted.
 *
 * Why the event API and a tree of our own rather than yaml_parser_load(): the events let us refuse
 * aliases and stop at AEGIS_CONFIG_MAX_DEPTH before anything is built, and the tree lives in an arena
 * whose cap is whatever the config arena has left, so a hostile file cannot take more memory than a
 * legitimate configuration may. The tree is built iteratively (an explicit stack), never recursively. */
#include "aegis/resource_yaml.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "aegis/limits.h"
#include "aegis/log.h"
#include "resource_yaml_int.h"

#define PATH_BYTES 4096

/* One open collection while a document is being built. */
struct frame {
	struct aegis_ynode *node;
	size_t cap; /* kids allocated */
	size_t n;   /* kids filled (a mapping counts keys and values) */
};

struct builder {
	struct aegis_yaml_loader *l;
	struct aegis_arena scratch;
	const char *buf; /* the input, for turning a reader error's byte offset into line:column */
	size_t len;
	struct aegis_ynode *root;
	bool in_doc;
	size_t depth;
	struct frame stack[AEGIS_CONFIG_MAX_DEPTH];
};

static int fail_at(struct builder *b, int err, const yaml_mark_t *m, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail_at(struct builder *b, int err, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[224];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int line = m ? (int)(m->line < INT32_MAX ? m->line + 1 : INT32_MAX) : 0;
	int col = m ? (int)(m->column < INT32_MAX ? m->column + 1 : INT32_MAX) : 0;
	return aegis_diag_set(b->l->diag, err, b->l->source, line, col, "%s", msg);
}

static int no_memory(struct builder *b, const yaml_mark_t *m)
{
	return fail_at(b, AEGIS_ENOMEM, m, "%s", "out of memory or configuration larger than the memory cap");
}

/* libyaml's reader reports only a byte offset; count lines so the message points at the spot. */
static void offset_to_mark(const char *buf, size_t len, size_t off, yaml_mark_t *m)
{
	m->line = 0;
	m->column = 0;
	for (size_t i = 0; i < off && i < len; i++) {
		if (buf[i] == '\n') {
			m->line++;
			m->column = 0;
		} else {
			m->column++;
		}
	}
}

static int syntax_error(struct builder *b, const yaml_parser_t *p)
{
	yaml_mark_t m = p->problem_mark;
	if (p->error == YAML_READER_ERROR)
		offset_to_mark(b->buf, b->len, p->problem_offset, &m);
	if (p->error == YAML_MEMORY_ERROR)
		return no_memory(b, NULL);
	const char *problem = p->problem ? p->problem : "invalid input";
	if (p->context != NULL)
		return fail_at(b, AEGIS_EPARSE, &m, "YAML syntax error: %s %s (line %zu)", problem,
		               p->context, (size_t)p->context_mark.line + 1);
	return fail_at(b, AEGIS_EPARSE, &m, "YAML syntax error: %s", problem);
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	return n == 0 || (n == 1 && s[0] == '~') ||
	       (n == 4 &&
	        (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 || memcmp(s, "NULL", 4) == 0));
}

static struct aegis_ynode *node_new(struct builder *b, enum aegis_ynode_type t, const yaml_mark_t *m)
{
	struct aegis_ynode *n = aegis_arena_zalloc(&b->scratch, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->type = t;
	n->line = (int)(m->line < INT32_MAX ? m->line + 1 : INT32_MAX);
	n->column = (int)(m->column < INT32_MAX ? m->column + 1 : INT32_MAX);
	n->str = "";
	return n;
}

/* Hands a finished node to the open collection, or makes it the document root. */
static int attach(struct builder *b, struct aegis_ynode *n, const yaml_mark_t *m)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	struct frame *f = &b->stack[b->depth - 1];
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 8;
		struct aegis_ynode **k = aegis_arena_grow(&b->scratch, f->node->kids, f->n, nc, sizeof(*k));
		if (k == NULL)
			return no_memory(b, m);
		f->node->kids = k;
		f->cap = nc;
	}
	f->node->kids[f->n++] = n;
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	if (memchr(s, '\0', n) != NULL)
		return fail_at(b, AEGIS_EPARSE, m, "%s", "a NUL character inside a string is not allowed");
	struct aegis_ynode *node = node_new(b, is_null_scalar(ev) ? AEGIS_YNODE_NULL : AEGIS_YNODE_SCALAR, m);
	if (node == NULL)
		return no_memory(b, m);
	if (node->type == AEGIS_YNODE_SCALAR) {
		char *copy = aegis_arena_strndup(&b->scratch, s, n);
		if (copy == NULL)
			return no_memory(b, m);
		node->str = copy;
		node->len = n;
	}
	return attach(b, node, m);
}

static int on_open(struct builder *b, const yaml_event_t *ev, enum aegis_ynode_type t)
{
	const yaml_mark_t *m = &ev->start_mark;
	if (b->depth >= AEGIS_CONFIG_MAX_DEPTH)
		return fail_at(b, AEGIS_ELIMIT, m, "YAML nested deeper than %d levels",
		               AEGIS_CONFIG_MAX_DEPTH);
	struct aegis_ynode *node = node_new(b, t, m);
	if (node == NULL)
		return no_memory(b, m);
	int rc = attach(b, node, m);
	if (rc != 0)
		return rc;
	b->stack[b->depth++] = (struct frame){.node = node};
	return 0;
}

static int on_close(struct builder *b, const yaml_event_t *ev)
{
	if (b->depth == 0) /* libyaml pairs start and end events; this only guards the array index */
		return fail_at(b, AEGIS_EPARSE, &ev->start_mark, "%s", "unbalanced YAML collection");
	struct frame *f = &b->stack[--b->depth];
	f->node->n = f->node->type == AEGIS_YNODE_MAP ? f->n / 2 : f->n;
	return 0;
}

/* A document is mapped as soon as it ends, then its tree is dropped: memory follows the largest
 * document, not the whole file. */
static int on_document_end(struct builder *b)
{
	int rc = aegis_yaml_map_document(b->l, b->root);
	b->root = NULL;
	b->in_doc = false;
	aegis_arena_free(&b->scratch);
	return rc;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT: {
		/* The tree may use what the configuration arena has not: both together stay under the cap. */
		size_t used = b->l->cfg->arena.total;
		size_t room = used < AEGIS_CONFIG_MAX_BYTES ? AEGIS_CONFIG_MAX_BYTES - used : 1;
		aegis_arena_init(&b->scratch, 0, room);
		b->root = NULL;
		b->depth = 0;
		b->in_doc = true;
		return 0;
	}
	case YAML_DOCUMENT_END_EVENT: return on_document_end(b);
	case YAML_SCALAR_EVENT: return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT: return on_open(b, ev, AEGIS_YNODE_SEQ);
	case YAML_MAPPING_START_EVENT: return on_open(b, ev, AEGIS_YNODE_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT: return on_close(b, ev);
	case YAML_ALIAS_EVENT:
		/* kubectl never prints anchors or aliases; refusing them rules out "billion laughs". */
		return fail_at(b, AEGIS_EPARSE, &ev->start_mark, "YAML alias *%s is not supported",
		               ev->data.alias.anchor ? (const char *)ev->data.alias.anchor : "");
	default: return 0;
	}
}

/* Parses one YAML stream and maps each of its documents. */
static int parse_stream(struct aegis_yaml_loader *l, const char *buf, size_t len)
{
	struct builder *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return aegis_diag_set(l->diag, AEGIS_ENOMEM, l->source, 0, 0, "out of memory");
	b->l = l;
	b->buf = buf;
	b->len = len;
	aegis_arena_init(&b->scratch, 0, 1);

	int rc = 0;
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		rc = aegis_diag_set(l->diag, AEGIS_ENOMEM, l->source, 0, 0, "out of memory");
		goto out_free;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = syntax_error(b, &parser);
			break;
		}
		rc = on_event(b, &ev);
		bool done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (rc != 0 || done)
			break;
	}
	yaml_parser_delete(&parser);
out_free:
	aegis_arena_free(&b->scratch);
	free(b);
	return rc;
}

static int set_source(struct aegis_yaml_loader *l, const char *name)
{
	char *s = aegis_arena_strdup(&l->cfg->arena, name ? name : "");
	if (s == NULL)
		return aegis_diag_set(l->diag, AEGIS_ENOMEM, name, 0, 0, "out of memory");
	l->source = s;
	return 0;
}

static int load_bytes(struct aegis_yaml_loader *l, const char *name, const char *buf, size_t len)
{
	int rc = set_source(l, name);
	if (rc != 0)
		return rc;
	if (len > AEGIS_CONFIG_MAX_FILE_BYTES)
		return aegis_diag_set(l->diag, AEGIS_ELIMIT, l->source, 0, 0, "file is larger than %u bytes",
		                      (unsigned)AEGIS_CONFIG_MAX_FILE_BYTES);
	return parse_stream(l, buf, len);
}

/* Reads a whole regular file, refusing more than the file-size limit (checked while reading too, in
 * case the file grows between fstat and read). *out is malloc'd; the caller frees it. */
static int read_file(struct aegis_yaml_loader *l, const char *path, char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return aegis_diag_set(l->diag, errno == ENOENT ? AEGIS_ENOTFOUND : AEGIS_EIO, path, 0, 0,
		                      "cannot open: %s", strerror(errno));
	int rc = 0;
	char *buf = NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = aegis_diag_set(l->diag, AEGIS_EIO, path, 0, 0, "not a regular file");
		goto out;
	}
	if ((uintmax_t)st.st_size > AEGIS_CONFIG_MAX_FILE_BYTES) {
		rc = aegis_diag_set(l->diag, AEGIS_ELIMIT, path, 0, 0, "file is larger than %u bytes",
		                    (unsigned)AEGIS_CONFIG_MAX_FILE_BYTES);
		goto out;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = aegis_diag_set(l->diag, AEGIS_ENOMEM, path, 0, 0, "out of memory");
		goto out;
	}
	for (;;) {
		if (len == cap) {
			if (cap > AEGIS_CONFIG_MAX_FILE_BYTES) {
				rc = aegis_diag_set(l->diag, AEGIS_ELIMIT, path, 0, 0,
				                    "file is larger than %u bytes",
				                    (unsigned)AEGIS_CONFIG_MAX_FILE_BYTES);
				goto out;
			}
			size_t nc = cap * 2 > AEGIS_CONFIG_MAX_FILE_BYTES + 1
			                    ? AEGIS_CONFIG_MAX_FILE_BYTES + 1
			                    : cap * 2;
			char *nb = realloc(buf, nc);
			if (nb == NULL) {
				rc = aegis_diag_set(l->diag, AEGIS_ENOMEM, path, 0, 0, "out of memory");
				goto out;
			}
			buf = nb;
			cap = nc;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = aegis_diag_set(l->diag, AEGIS_EIO, path, 0, 0, "read failed: %s",
			                    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static bool is_cluster_file(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return strcmp(base, "cluster.yaml") == 0;
}

static int load_file(struct aegis_yaml_loader *l, const char *path)
{
	if (++l->n_files > AEGIS_CONFIG_MAX_FILES)
		return aegis_diag_set(l->diag, AEGIS_ELIMIT, path, 0, 0, "more than %u files",
		                      (unsigned)AEGIS_CONFIG_MAX_FILES);
	char *buf;
	size_t len;
	int rc = read_file(l, path, &buf, &len);
	if (rc != 0)
		return rc;
	l->cluster_file = is_cluster_file(path);
	l->cluster_out = NULL;
	rc = load_bytes(l, path, buf, len);
	l->cluster_file = false;
	free(buf);
	return rc;
}

static bool yaml_name(const char *name)
{
	size_t n = strlen(name);
	return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) || (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a directory's entry names, sorted; hidden entries are left out (a ConfigMap volume's "..data"
 * link would otherwise load every file twice). */
static int list_dir(struct aegis_yaml_loader *l, const char *dir, char ***out, size_t *out_n)
{
	*out = NULL;
	*out_n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return aegis_diag_set(l->diag, AEGIS_EIO, dir, 0, 0, "cannot open directory: %s",
		                      strerror(errno));
	int rc = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == AEGIS_CONFIG_MAX_FILES) {
			rc = aegis_diag_set(l->diag, AEGIS_ELIMIT, dir, 0, 0, "more than %u entries",
			                    (unsigned)AEGIS_CONFIG_MAX_FILES);
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nn = realloc(names, nc * sizeof(*nn));
			if (nn == NULL)
				goto nomem;
			names = nn;
			cap = nc;
		}
		names[n] = strdup(e->d_name);
		if (names[n] == NULL)
			goto nomem;
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_names);
	*out = names;
	*out_n = n;
	names = NULL;
	n = 0;
	goto out;
nomem:
	rc = aegis_diag_set(l->diag, AEGIS_ENOMEM, dir, 0, 0, "out of memory");
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

static int load_dir(struct aegis_yaml_loader *l, const char *dir, int depth);

static int load_entry(struct aegis_yaml_loader *l, const char *dir, const char *name, int depth)
{
	char path[PATH_BYTES];
	int w = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (w < 0 || (size_t)w >= sizeof(path))
		return aegis_diag_set(l->diag, AEGIS_ELIMIT, dir, 0, 0, "path too long: %s", name);
	struct stat st;
	if (stat(path, &st) != 0) /* a dangling symlink is reported, not skipped: it is likely a mistake */
		return aegis_diag_set(l->diag, AEGIS_EIO, path, 0, 0, "cannot stat: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return load_dir(l, path, depth + 1);
	if (S_ISREG(st.st_mode) && yaml_name(name) && strcmp(name, "cluster.yaml") != 0)
		return load_file(l, path);
	return 0;
}

/* Loads a directory: its cluster.yaml first (it tags everything below, whatever the file names sort
 * like), then every entry in name order. Recursion is bounded by AEGIS_CONFIG_MAX_DEPTH, which also stops
 * symlink loops. */
static int load_dir(struct aegis_yaml_loader *l, const char *dir, int depth)
{
	if (depth > AEGIS_CONFIG_MAX_DEPTH)
		return aegis_diag_set(l->diag, AEGIS_ELIMIT, dir, 0, 0,
		                      "directories nested deeper than %d levels", AEGIS_CONFIG_MAX_DEPTH);
	char **names;
	size_t n;
	int rc = list_dir(l, dir, &names, &n);
	if (rc != 0)
		return rc;
	const char *outer = l->cluster;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], "cluster.yaml") != 0)
			continue;
		char path[PATH_BYTES];
		int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (w < 0 || (size_t)w >= sizeof(path)) {
			rc = aegis_diag_set(l->diag, AEGIS_ELIMIT, dir, 0, 0, "path too long");
			goto out;
		}
		rc = load_file(l, path);
		if (rc != 0)
			goto out;
		if (l->cluster_out != NULL)
			l->cluster = l->cluster_out;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = load_entry(l, dir, names[i], depth);
out:
	l->cluster = outer;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static struct aegis_config *loader_start(struct aegis_yaml_loader *l, struct aegis_diag *diag)
{
	memset(l, 0, sizeof(*l));
	l->diag = diag;
	l->cluster = "";
	l->source = "";
	if (diag != NULL)
		memset(diag, 0, sizeof(*diag));
	l->cfg = aegis_config_new();
	if (l->cfg == NULL)
		(void)aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "out of memory");
	return l->cfg;
}

static int loader_finish(struct aegis_yaml_loader *l, int rc, struct aegis_config **out)
{
	if (rc != 0) {
		aegis_config_free(l->cfg);
		*out = NULL;
		return rc;
	}
	*out = l->cfg;
	return 0;
}

int aegis_yaml_load_paths(const char *const *paths, size_t n_paths, struct aegis_config **out,
                          struct aegis_diag *diag)
{
	struct aegis_yaml_loader l;
	*out = NULL;
	if (loader_start(&l, diag) == NULL)
		return AEGIS_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n_paths && rc == 0; i++) {
		struct stat st;
		if (stat(paths[i], &st) != 0)
			rc = aegis_diag_set(diag, errno == ENOENT ? AEGIS_ENOTFOUND : AEGIS_EIO, paths[i], 0,
			                    0, "cannot stat: %s", strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = load_dir(&l, paths[i], 0);
		else
			rc = load_file(&l, paths[i]);
	}
	return loader_finish(&l, rc, out);
}

int aegis_yaml_load_buffer(const char *name, const char *buf, size_t len, struct aegis_config **out,
                           struct aegis_diag *diag)
{
	struct aegis_yaml_loader l;
	*out = NULL;
	if (loader_start(&l, diag) == NULL)
		return AEGIS_ENOMEM;
	int rc = load_bytes(&l, name, buf ? buf : "", buf ? len : 0);
	return loader_finish(&l, rc, out);
}
