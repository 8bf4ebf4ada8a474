/* aegisctl output: see ctl_print.h. */
#include "ctl_print.h"

#include <ctype.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TYPE_PREFIX "type.aegis.io/aegis.admin.v1."
#define TYPE_SUFFIX "ConfigDump"
#define MAX_COLS    32

/* ---- YAML ---- */

/* A plain YAML scalar is safe when it cannot be read as another type or as syntax. */
static bool plain_ok(const char *s)
{
	static const char *const special[] = {"true", "false", "yes", "no", "on",
	                                      "off",  "null",  "~",   "y",  "n"};
	if (s[0] == '\0')
		return false;
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
		if (strcasecmp(s, special[i]) == 0)
			return false;
	}
	char *end;
	(void)strtod(s, &end);
	if (*end == '\0')
		return false; /* would read as a number */
	if (strchr("-?:,[]{}#&*!|>'\"%@`.", s[0]) != NULL)
		return false;
	for (const char *p = s; *p; p++) {
		if (!isalnum((unsigned char)*p) && strchr("_./-", *p) == NULL)
			return false;
	}
	return true;
}

static void yaml_scalar(FILE *f, const json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (plain_ok(s)) {
			fputs(s, f);
		} else {
			/* A JSON string is a valid YAML double-quoted scalar. */
			char *q = json_dumps(v, JSON_ENCODE_ANY);
			fputs(q ? q : "\"\"", f);
			free(q);
		}
		return;
	}
	char *d = json_dumps(v, JSON_ENCODE_ANY);
	fputs(d ? d : "null", f);
	free(d);
}

static bool is_container(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) || (json_is_array(v) && json_array_size(v) > 0);
}

static void yaml_value(FILE *f, const json_t *v, int indent, bool inline_first);

static void yaml_key(FILE *f, const char *key)
{
	json_t *k = json_string(key);
	yaml_scalar(f, k);
	json_decref(k);
	fputc(':', f);
}

/* Writes v (an object or array) at indent; with inline_first the first line continues the current one
 * (after "- "). */
static void yaml_value(FILE *f, const json_t *v, int indent, bool inline_first)
{
	bool first = true;
	if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			if (!(first && inline_first))
				fprintf(f, "%*s", indent, "");
			first = false;
			yaml_key(f, key);
			if (is_container(val)) {
				fputc('\n', f);
				yaml_value(f, val, indent + 2, false);
			} else {
				fputc(' ', f);
				if (json_is_object(val))
					fputs("{}", f);
				else if (json_is_array(val))
					fputs("[]", f);
				else
					yaml_scalar(f, val);
				fputc('\n', f);
			}
		}
		return;
	}
	size_t i;
	json_t *val;
	json_array_foreach(v, i, val)
	{
		if (!(first && inline_first))
			fprintf(f, "%*s", indent, "");
		first = false;
		fputs("- ", f);
		if (is_container(val) && json_is_object(val)) {
			yaml_value(f, val, indent + 2, true);
		} else if (is_container(val)) {
			fputc('\n', f);
			yaml_value(f, val, indent + 2, false);
		} else {
			if (json_is_object(val))
				fputs("{}", f);
			else if (json_is_array(val))
				fputs("[]", f);
			else
				yaml_scalar(f, val);
			fputc('\n', f);
		}
	}
}

void aegis_ctl_print_yaml(FILE *f, const json_t *v)
{
	if (is_container(v)) {
		yaml_value(f, v, 0, false);
	} else {
		yaml_scalar(f, v);
		fputc('\n', f);
	}
}

/* ---- tables ---- */

struct table {
	size_t ncols;
	char *head[MAX_COLS];
	size_t width[MAX_COLS];
	char ***rows; /* rows[r][c], malloc'd strings ("" when absent) */
	size_t nrows;
};

static void append_raw(char **buf, size_t *len, const char *s)
{
	size_t sl = strlen(s);
	char *nb = realloc(*buf, *len + sl + 1);
	if (nb == NULL)
		return;
	memcpy(nb + *len, s, sl + 1);
	*buf = nb;
	*len += sl;
}

/* Renders a JSON value as a cell: arrays joined with ",", objects as their values joined with " ",
 * null as "-". */
static void cell_append(char **buf, size_t *len, const json_t *v, bool top)
{
	char *s = NULL;
	if (json_is_string(v)) {
		s = strdup(json_string_value(v));
	} else if (json_is_null(v)) {
		s = strdup(top ? "-" : "");
	} else if (json_is_real(v)) {
		if (asprintf(&s, "%.3f", json_real_value(v)) < 0)
			s = NULL;
	} else if (json_is_array(v) || json_is_object(v)) {
		size_t n = 0;
		json_t *val;
		const char *sep = json_is_array(v) ? "," : " ";
		if (json_is_array(v)) {
			size_t i;
			json_array_foreach(v, i, val)
			{
				if (n++ > 0)
					append_raw(buf, len, sep);
				cell_append(buf, len, val, false);
			}
		} else {
			const char *k;
			json_object_foreach((json_t *)v, k, val)
			{
				if (n++ > 0)
					append_raw(buf, len, sep);
				cell_append(buf, len, val, false);
			}
		}
		if (n == 0 && top)
			s = strdup("-");
	} else {
		s = json_dumps(v, JSON_ENCODE_ANY);
	}
	if (s != NULL) {
		append_raw(buf, len, s);
		free(s);
	}
}

static char *cell(const json_t *v)
{
	char *buf = calloc(1, 1);
	size_t len = 0;
	if (buf != NULL && v != NULL)
		cell_append(&buf, &len, v, true);
	return buf;
}

static char *header_name(const char *key)
{
	/* A DNS node has one of these: they share a column so the table stays narrow. */
	if (strcmp(key, "srv") == 0 || strcmp(key, "ptr") == 0 || strcmp(key, "cname") == 0)
		key = "targets";
	char *h = strdup(key);
	for (char *p = h; p && *p; p++)
		*p = *p == '_' ? ' ' : (char)toupper((unsigned char)*p);
	return h;
}

static int col_of(struct table *t, const char *key)
{
	char *h = header_name(key);
	for (size_t c = 0; c < t->ncols; c++) {
		if (strcmp(t->head[c], h) == 0) {
			free(h);
			return (int)c;
		}
	}
	if (t->ncols == MAX_COLS) {
		free(h);
		return -1;
	}
	t->head[t->ncols] = h;
	t->width[t->ncols] = strlen(h);
	return (int)t->ncols++;
}

static void table_print(FILE *f, struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = t->rows[r][c] ? strlen(t->rows[r][c]) : 0;
			if (w > t->width[c])
				t->width[c] = w;
		}
	}
	for (size_t c = 0; c < t->ncols; c++)
		fprintf(f, "%-*s%s", c + 1 < t->ncols ? (int)t->width[c] : 0, t->head[c],
		        c + 1 < t->ncols ? "   " : "\n");
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->rows[r][c] && t->rows[r][c][0] ? t->rows[r][c] : "-";
			fprintf(f, "%-*s%s", c + 1 < t->ncols ? (int)t->width[c] : 0, s,
			        c + 1 < t->ncols ? "   " : "\n");
		}
	}
}

static void table_free(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < MAX_COLS; c++)
			free(t->rows[r][c]);
		free(t->rows[r]);
	}
	free(t->rows);
	for (size_t c = 0; c < t->ncols; c++)
		free(t->head[c]);
}

static char **new_row(struct table *t)
{
	char ***nr = realloc(t->rows, (t->nrows + 1) * sizeof(*nr));
	if (nr == NULL)
		return NULL;
	t->rows = nr;
	t->rows[t->nrows] = calloc(MAX_COLS, sizeof(char *));
	return t->rows[t->nrows] ? t->rows[t->nrows++] : NULL;
}

static bool array_of_objects(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) > 0 && json_is_object(json_array_get(v, 0));
}

/* ---- mesh sections: fixed columns, like `istioctl proxy-config` ---- */

struct mesh_col {
	const char *key, *head;
};

struct mesh_table {
	const char *section, *list;
	struct mesh_col cols[9];
};

/* The JSON keeps every detail (-o json); the table shows what an operator scans for first. */
static const struct mesh_table mesh_tables[] = {
        {"routes",
         "routes",
         {{"vip", "VIP:PORT"},
          {"service", "SERVICE"},
          {"namespace", "NAMESPACE"},
          {"destinations", "DESTINATIONS"},
          {"timeout_ms", "TIMEOUT MS"}}},
        {"clusters",
         "clusters",
         {{"service", "SERVICE FQDN"},
          {"port", "PORT"},
          {"subset", "SUBSET"},
          {"direction", "DIRECTION"},
          {"tls", "TLS"},
          {"endpoints", "ENDPOINTS"},
          {"connections", "CONNECTIONS"}}},
        {"endpoints",
         "endpoints",
         {{"endpoint", "ENDPOINT"},
          {"status", "STATUS"},
          {"outlier_check", "OUTLIER CHECK"},
          {"cluster", "CLUSTER"},
          {"locality", "LOCALITY"},
          {"weight", "WEIGHT"},
          {"priority", "PRIORITY"},
          {"transport", "TRANSPORT"}}},
        {"secrets",
         "secrets",
         {{"resource_name", "RESOURCE NAME"},
          {"type", "TYPE"},
          {"status", "STATUS"},
          {"valid_cert", "VALID CERT"},
          {"serial_number", "SERIAL NUMBER"},
          {"not_after", "NOT AFTER"},
          {"not_before", "NOT BEFORE"},
          {"spiffe_id", "SPIFFE ID"}}},
};

/* Cells that summarise a nested value: a route's destinations as "v1 90%,v2 10%" (the host when the
 * destination has no subset), a cluster's endpoints as "usable/total". */
static char *mesh_cell(const char *section, const char *key, const json_t *obj)
{
	char *out = NULL;
	if (strcmp(key, "destinations") == 0) {
		char *buf = calloc(1, 1);
		size_t len = 0, i;
		json_t *d;
		json_array_foreach(json_object_get(obj, key), i, d)
		{
			const char *sub = json_string_value(json_object_get(d, "subset"));
			char one[600];
			snprintf(one, sizeof(one), "%s%s %.0f%%", i > 0 ? "," : "",
			         sub && sub[0] ? sub : (json_string_value(json_object_get(d, "host")) ?: "?"),
			         json_number_value(json_object_get(d, "percent")));
			if (buf != NULL)
				append_raw(&buf, &len, one);
		}
		return buf;
	}
	if (strcmp(section, "clusters") == 0 && strcmp(key, "endpoints") == 0) {
		if (asprintf(&out, "%lld/%lld",
		             (long long)json_integer_value(json_object_get(obj, "endpoints_usable")),
		             (long long)json_integer_value(json_object_get(obj, "endpoints_total"))) < 0)
			out = NULL;
		return out;
	}
	return cell(json_object_get(obj, key));
}

/* Prints the section's main list with fixed columns; returns the list's key, or NULL when the section is
 * not a mesh section (or has no such list). */
static const char *print_mesh_table(FILE *f, const json_t *section)
{
	char name[64];
	aegis_ctl_section_name(section, name, sizeof(name));
	for (size_t m = 0; m < sizeof(mesh_tables) / sizeof(mesh_tables[0]); m++) {
		const struct mesh_table *mt = &mesh_tables[m];
		const json_t *list = json_object_get(section, mt->list);
		if (strcmp(name, mt->section) != 0 || !json_is_array(list))
			continue;
		struct table t = {0};
		for (size_t c = 0; c < 9 && mt->cols[c].key != NULL; c++) {
			t.head[c] = strdup(mt->cols[c].head);
			t.width[c] = strlen(mt->cols[c].head);
			t.ncols++;
		}
		size_t i;
		json_t *obj;
		json_array_foreach(list, i, obj)
		{
			char **row = new_row(&t);
			for (size_t c = 0; row != NULL && c < t.ncols; c++)
				row[c] = mesh_cell(mt->section, mt->cols[c].key, obj);
		}
		table_print(f, &t);
		table_free(&t);
		return mt->list;
	}
	return NULL;
}

void aegis_ctl_print_section(FILE *f, const json_t *section)
{
	const char *key;
	json_t *val;
	const char *mesh_list = print_mesh_table(f, section);
	bool printed = mesh_list != NULL;
	json_object_foreach((json_t *)section, key, val)
	{
		if (!array_of_objects(val) || (mesh_list && strcmp(key, mesh_list) == 0))
			continue;
		struct table t = {0};
		size_t i;
		json_t *obj;
		json_array_foreach(val, i, obj)
		{
			char **row = new_row(&t);
			const char *k;
			json_t *cv;
			if (row == NULL || !json_is_object(obj))
				continue;
			json_object_foreach(obj, k, cv)
			{
				int c = col_of(&t, k);
				if (c >= 0 && row[c] == NULL)
					row[c] = cell(cv);
			}
		}
		if (printed)
			fputc('\n', f);
		table_print(f, &t);
		table_free(&t);
		printed = true;
	}
	struct table kv = {0};
	(void)col_of(&kv, "field");
	(void)col_of(&kv, "value");
	json_object_foreach((json_t *)section, key, val)
	{
		if (array_of_objects(val) || strcmp(key, "@type") == 0 ||
		    (mesh_list && strcmp(key, mesh_list) == 0))
			continue;
		if (json_is_array(val) && json_array_size(val) == 0 && printed)
			continue; /* an empty list whose table would have been printed */
		if (json_is_object(val)) {
			/* One level of nesting flattens to "stats.queries". */
			const char *k2;
			json_t *v2;
			json_object_foreach(val, k2, v2)
			{
				char **row = new_row(&kv);
				if (row == NULL)
					break;
				if (asprintf(&row[0], "%s.%s", key, k2) < 0)
					row[0] = NULL;
				row[1] = cell(v2);
			}
			continue;
		}
		char **row = new_row(&kv);
		if (row == NULL)
			break;
		row[0] = strdup(key);
		row[1] = cell(val);
	}
	if (kv.nrows > 0) {
		if (printed)
			fputc('\n', f);
		table_print(f, &kv);
	}
	table_free(&kv);
}

/* ---- lookup ---- */

static const char *str(const json_t *o, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : def;
}

void aegis_ctl_print_lookup(FILE *f, const json_t *a)
{
	fprintf(f, "; <<>> aegisctl %s lookup <<>> %s %s\n", AEGIS_VERSION, str(a, "name", "?"),
	        str(a, "type", "?"));
	if (json_is_true(json_object_get(a, "forwarded"))) {
		fprintf(f, ";; not a table name: the proxy forwards this query upstream\n");
		fprintf(f, ";; (or answers REFUSED when no forwarder is configured)\n");
		return;
	}
	fprintf(f, ";; ->>HEADER<<- status: %s, source: %s, match: %s\n", str(a, "rcode", "?"),
	        str(a, "source", "?"), str(a, "match", "?"));
	fprintf(f, ";; flags:");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(a, "flags"), i, v) fprintf(f, " %s", json_string_value(v));
	fprintf(f, "\n\n;; QUESTION SECTION:\n;%s\t\tIN\t%s\n", str(a, "name", "?"), str(a, "type", "?"));
	static const char *const secs[] = {"answer", "authority", "additional"};
	static const char *const titles[] = {"ANSWER", "AUTHORITY", "ADDITIONAL"};
	for (int s = 0; s < 3; s++) {
		const json_t *arr = json_object_get(a, secs[s]);
		if (json_array_size(arr) == 0)
			continue;
		fprintf(f, "\n;; %s SECTION:\n", titles[s]);
		json_array_foreach(arr, i, v)
		{
			fprintf(f, "%s\t%lld\tIN\t%s\t%s\n", str(v, "name", "?"),
			        (long long)json_integer_value(json_object_get(v, "ttl")), str(v, "type", "?"),
			        str(v, "data", "?"));
		}
	}
}

const char *aegis_ctl_section_name(const json_t *entry, char *buf, size_t len)
{
	const char *t = json_string_value(json_object_get(entry, "@type"));
	size_t pl = strlen(TYPE_PREFIX), sl = strlen(TYPE_SUFFIX);
	buf[0] = '\0';
	if (t == NULL || strncmp(t, TYPE_PREFIX, pl) != 0 || strlen(t) < pl + sl + 1 ||
	    strcmp(t + strlen(t) - sl, TYPE_SUFFIX) != 0)
		return buf;
	snprintf(buf, len, "%.*s", (int)(strlen(t) - pl - sl), t + pl);
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}
