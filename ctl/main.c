/* aegisctl: reads a running aegis-proxy through its admin endpoint (docs/admin.md).
 *
 *   aegisctl proxy-config SECTION [--admin ADDR:PORT] [-o table|json|yaml]
 *   aegisctl lookup NAME [TYPE] [--admin ADDR:PORT] [-o table|json|yaml]
 *   aegisctl version [--admin ADDR:PORT]
 *
 * Exit codes: 0 success, 1 the proxy could not be reached or answered an error, 2 usage, 3 the proxy has
 * no such section (a build or configuration without that subsystem). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_http.h"
#include "ctl_inject.h"
#include "ctl_print.h"

#define EXIT_UNREACHABLE 1
#define EXIT_USAGE       2
#define EXIT_NO_SECTION  3

enum format { FMT_TABLE, FMT_JSON, FMT_YAML };

struct ctl {
	const char *admin;
	enum format fmt;
};

static const char *const sections[] = {"dns",       "search",  "config", "listeners", "server",
                                       "upstreams", "cache",   "xds",    "routes",    "clusters",
                                       "endpoints", "secrets", "hbone",  "all"};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: aegisctl proxy-config SECTION [--admin ADDR:PORT] [-o table|json|yaml]\n"
	        "       aegisctl lookup NAME [TYPE] [--admin ADDR:PORT] [-o table|json|yaml]\n"
	        "       aegisctl version [--admin ADDR:PORT]\n"
	        "       aegisctl inject -f FILE|- [--config FILE] [-o yaml|json]   (manual sidecar "
	        "injection)\n"
	        "SECTION: dns search config listeners server upstreams cache xds routes clusters endpoints\n"
	        "         secrets hbone all\n"
	        "--admin defaults to 127.0.0.1:15000; in a cluster run it inside the pod:\n"
	        "  kubectl exec POD -c aegis-proxy -- aegisctl proxy-config dns\n");
}

/* GETs target and parses the JSON body. Returns the HTTP status, or -1 (message printed). */
static int get_json(const struct ctl *c, const char *target, json_t **out)
{
	struct aegis_ctl_response r;
	char err[512];
	*out = NULL;
	if (aegis_ctl_http_request(c->admin, "GET", target, &r, err, sizeof(err)) != 0) {
		fprintf(stderr, "aegisctl: %s\n", err);
		return -1;
	}
	json_error_t jerr;
	*out = json_loadb(r.body, r.len, 0, &jerr);
	int status = r.status;
	if (*out == NULL) {
		fprintf(stderr, "aegisctl: %s answered %d with a body that is not JSON: %s\n", target, status,
		        jerr.text);
		aegis_ctl_response_free(&r);
		return -1;
	}
	aegis_ctl_response_free(&r);
	return status;
}

static void print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	if (s != NULL)
		printf("%s\n", s);
	free(s);
}

static int proxy_config(const struct ctl *c, const char *section)
{
	bool known = false;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		known |= strcmp(section, sections[i]) == 0;
	if (!known) {
		fprintf(stderr, "aegisctl: unknown section '%s'\n", section);
		usage(stderr);
		return EXIT_USAGE;
	}
	char target[128];
	bool all = strcmp(section, "all") == 0;
	snprintf(target, sizeof(target), all ? "/config_dump" : "/config_dump?resource=%s", section);
	json_t *dump;
	int status = get_json(c, target, &dump);
	if (status < 0)
		return EXIT_UNREACHABLE;
	if (status == 404) {
		fprintf(stderr, "aegisctl: not available in this proxy (section %s)\n", section);
		json_decref(dump);
		return EXIT_NO_SECTION;
	}
	if (status != 200) {
		fprintf(stderr, "aegisctl: the proxy answered %d: %s\n", status,
		        json_string_value(json_object_get(dump, "error")) ?: "?");
		json_decref(dump);
		return EXIT_UNREACHABLE;
	}
	if (c->fmt == FMT_JSON) {
		print_json(dump);
	} else if (c->fmt == FMT_YAML) {
		aegis_ctl_print_yaml(stdout, dump);
	} else {
		size_t i;
		json_t *entry;
		json_array_foreach(json_object_get(dump, "configs"), i, entry)
		{
			char name[64];
			if (all)
				printf("%s== %s ==\n", i > 0 ? "\n" : "",
				       aegis_ctl_section_name(entry, name, sizeof(name)));
			aegis_ctl_print_section(stdout, entry);
		}
	}
	json_decref(dump);
	return 0;
}

static int lookup(const struct ctl *c, const char *name, const char *type)
{
	char ename[1024], etype[64], target[1200];
	snprintf(target, sizeof(target), "/dns/lookup?name=%s%s%s",
	         aegis_ctl_url_encode(name, ename, sizeof(ename)), type ? "&type=" : "",
	         type ? aegis_ctl_url_encode(type, etype, sizeof(etype)) : "");
	json_t *ans;
	int status = get_json(c, target, &ans);
	if (status < 0)
		return EXIT_UNREACHABLE;
	if (status == 404) {
		fprintf(stderr, "aegisctl: not available in this proxy (lookup)\n");
		json_decref(ans);
		return EXIT_NO_SECTION;
	}
	if (status != 200) {
		fprintf(stderr, "aegisctl: lookup failed: %s\n",
		        json_string_value(json_object_get(ans, "error")) ?: "?");
		json_decref(ans);
		return EXIT_UNREACHABLE;
	}
	if (c->fmt == FMT_JSON)
		print_json(ans);
	else if (c->fmt == FMT_YAML)
		aegis_ctl_print_yaml(stdout, ans);
	else
		aegis_ctl_print_lookup(stdout, ans);
	json_decref(ans);
	return 0;
}

static int version(const struct ctl *c)
{
	printf("client version: %s\n", AEGIS_VERSION);
	json_t *dump;
	int status = get_json(c, "/config_dump?resource=server", &dump);
	if (status != 200) {
		printf("proxy version: unknown (admin %s unreachable or without a server section)\n",
		       c->admin);
		json_decref(dump);
		return EXIT_UNREACHABLE;
	}
	json_t *server = json_array_get(json_object_get(dump, "configs"), 0);
	printf("proxy version: %s (admin %s)\n", json_string_value(json_object_get(server, "version")) ?: "?",
	       c->admin);
	json_decref(dump);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "inject") == 0) /* its own options: ctl_inject.c */
		return aegis_ctl_inject_main(argc - 1, argv + 1);
	struct ctl c = {.admin = "127.0.0.1:15000", .fmt = FMT_TABLE};
	static const struct option longopts[] = {
	        {"admin", required_argument, NULL, 'a'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;
	/* "+" would stop at the first operand; permuting lets flags follow the subcommand, as kubectl's do.
	 */
	while ((opt = getopt_long(argc, argv, "a:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a': c.admin = optarg; break;
		case 'o':
			if (strcmp(optarg, "table") == 0 || strcmp(optarg, "short") == 0)
				c.fmt = FMT_TABLE;
			else if (strcmp(optarg, "json") == 0)
				c.fmt = FMT_JSON;
			else if (strcmp(optarg, "yaml") == 0)
				c.fmt = FMT_YAML;
			else {
				fprintf(stderr, "aegisctl: bad output format '%s' (table, json or yaml)\n",
				        optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs >= 1 && (strcmp(args[0], "proxy-config") == 0 || strcmp(args[0], "pc") == 0) && nargs == 2)
		return proxy_config(&c, args[1]);
	if (nargs >= 2 && nargs <= 3 && strcmp(args[0], "lookup") == 0)
		return lookup(&c, args[1], nargs == 3 ? args[2] : NULL);
	if (nargs == 1 && strcmp(args[0], "version") == 0)
		return version(&c);
	usage(stderr);
	return EXIT_USAGE;
}
