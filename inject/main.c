/* aegis-inject: the mutating admission webhook (docs/inject.md).
 *
 *   aegis-inject --listen ADDR:PORT --cert FILE --key FILE [--config FILE]
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 bad configuration or certificate at start-up, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/log.h"
#include "inject_server.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static const char usage_text[] =
        "usage: aegis-inject --listen ADDR:PORT --cert FILE --key FILE [--config FILE] [options]\n"
        "  --listen ADDR:PORT       HTTPS listener (default 0.0.0.0:8443; the Service maps 443 to it)\n"
        "  --cert FILE, --key FILE  PEM certificate chain and key, reloaded when the files change\n"
        "  --config FILE            injection config (YAML, the ConfigMap's config.yaml; default: built in)\n"
        "  --check-config           parse --config, print the effective config as JSON and exit\n"
        "  --max-body BYTES         largest request body (default 2097152; larger is 413)\n"
        "  --reload-interval S      seconds between certificate checks (default 5)\n"
        "  --max-connections N      concurrent connections (default 256)\n"
        "  --log-level LEVEL        debug, info, warn or error (default info)\n"
        "  --help, --version\n";

/* Strictly parses an unsigned decimal in [min, max]. */
static int parse_num(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void print_config(const struct aegis_inject_config *c)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:{s:s, s:s, s:b}, s:{s:O, s:O, s:O, s:O}, s:{s:O, s:O}}",
	                      "image", c->image, "imagePullPolicy", c->image_pull_policy, "proxyUID",
	                      (json_int_t)c->proxy_uid, "proxyGID", (json_int_t)c->proxy_gid, "certificates",
	                      "mountPath", c->cert_mount_path, "secretPrefix", c->cert_secret_prefix,
	                      "optional", c->cert_optional, "proxy", "args", c->proxy_args, "resources",
	                      c->proxy_resources, "readinessProbe", c->readiness_probe, "ports", c->ports,
	                      "init", "args", c->iptables_args, "resources", c->init_resources);
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	json_decref(j);
}

int main(int argc, char **argv)
{
	enum {
		OPT_LISTEN = 256,
		OPT_CERT,
		OPT_KEY,
		OPT_CONFIG,
		OPT_CHECK,
		OPT_BODY,
		OPT_RELOAD,
		OPT_CONNS,
		OPT_LOG
	};
	static const struct option longopts[] = {
	        {"listen", required_argument, NULL, OPT_LISTEN},
	        {"cert", required_argument, NULL, OPT_CERT},
	        {"key", required_argument, NULL, OPT_KEY},
	        {"config", required_argument, NULL, OPT_CONFIG},
	        {"check-config", no_argument, NULL, OPT_CHECK},
	        {"max-body", required_argument, NULL, OPT_BODY},
	        {"reload-interval", required_argument, NULL, OPT_RELOAD},
	        {"max-connections", required_argument, NULL, OPT_CONNS},
	        {"log-level", required_argument, NULL, OPT_LOG},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	struct aegis_inject_server_opts o = {
	        .listen = "0.0.0.0:8443",
	        .max_body = AEGIS_INJECT_MAX_BODY,
	        .reload_interval_s = AEGIS_INJECT_RELOAD_INTERVAL,
	        .max_conns = AEGIS_INJECT_MAX_CONNS,
	};
	const char *config_path = NULL;
	bool check = false;
	unsigned long long n;
	int opt;
	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_LISTEN: o.listen = optarg; break;
		case OPT_CERT: o.cert = optarg; break;
		case OPT_KEY: o.key = optarg; break;
		case OPT_CONFIG: config_path = optarg; break;
		case OPT_CHECK: check = true; break;
		case OPT_BODY:
			if (parse_num(optarg, 1024, 1ull << 30, &n) != 0) {
				fprintf(stderr, "aegis-inject: --max-body '%s': want 1024..1073741824\n",
				        optarg);
				return 2;
			}
			o.max_body = (size_t)n;
			break;
		case OPT_RELOAD:
			if (parse_num(optarg, 1, 3600, &n) != 0) {
				fprintf(stderr, "aegis-inject: --reload-interval '%s': want 1..3600\n",
				        optarg);
				return 2;
			}
			o.reload_interval_s = (unsigned)n;
			break;
		case OPT_CONNS:
			if (parse_num(optarg, 1, 65536, &n) != 0) {
				fprintf(stderr, "aegis-inject: --max-connections '%s': want 1..65536\n",
				        optarg);
				return 2;
			}
			o.max_conns = (unsigned)n;
			break;
		case OPT_LOG: {
			enum aegis_log_level lvl;
			if (aegis_log_parse_level(optarg, &lvl) != 0) {
				fprintf(stderr, "aegis-inject: bad --log-level '%s'\n", optarg);
				return 2;
			}
			aegis_log_set_level(lvl);
			break;
		}
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("aegis-inject %s\n", AEGIS_VERSION); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	if (optind != argc || (!check && (o.cert == NULL || o.key == NULL))) {
		fputs(usage_text, stderr);
		return 2;
	}

	struct aegis_inject_config cfg;
	if (aegis_inject_config_init(&cfg) != 0) {
		fprintf(stderr, "aegis-inject: out of memory\n");
		return 1;
	}
	int rc = 1;
	struct aegis_inject_server *srv = NULL;
	if (config_path != NULL) {
		struct aegis_diag diag = {0};
		char buf[600];
		if (aegis_inject_config_load(&cfg, config_path, &diag) != 0) {
			fprintf(stderr, "aegis-inject: %s\n", aegis_diag_str(&diag, buf, sizeof(buf)));
			goto out;
		}
	}
	if (check) {
		print_config(&cfg);
		rc = 0;
		goto out;
	}
	o.config = &cfg;
	char err[600];
	if (aegis_inject_server_new(&o, &srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "aegis-inject: %s\n", err);
		goto out;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char port[16];
	snprintf(port, sizeof(port), "%d", aegis_inject_server_port(srv));
	AEGIS_LOG(AEGIS_LOG_INFO, "listening", LKV_S("addr", o.listen), LKV_S("port", port),
	          LKV_S("config", config_path ? config_path : "(built in)"), LKV_S("image", cfg.image));
	aegis_inject_server_run(srv, &stop);
	AEGIS_LOG(AEGIS_LOG_INFO, "stopped");
	rc = 0;
out:
	if (aegis_inject_server_free(srv))
		aegis_inject_config_free(&cfg);
	return rc;
}
