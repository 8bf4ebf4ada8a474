/* Command line and resolv.conf parsing for aegis-iptables: see capture_opts.h.
 *
 * The parser is a table walk rather than getopt_long: getopt keeps global state (optind) and prints its own
 * messages, while this one can run many times in a unit test and reports every error through diag. */
#include "capture_opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

void aegis_capture_opts_init(struct aegis_capture_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->proxy_uid = 1337;
	o->proxy_gid = 1337;
	o->dns_port = 15053;
	o->outbound_port = 15001;
	o->inbound_port = 15006;
	o->hbone_port = 15008;
	o->capture_dns = AEGIS_CAPTURE_DNS_ALL;
	snprintf(o->resolv_conf, sizeof(o->resolv_conf), "%s", "/etc/resolv.conf");
	o->capture_tcp = true;
	o->inbound = true;
	o->ipv6 = true;
	o->dns_zones = true;
	o->include_all = true;
}

/* Unsigned decimal (or 0x hex when hex is set) with no sign, no spaces and no trailing text. */
static int parse_ulong(const char *s, bool hex, unsigned long max, unsigned long *out)
{
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ')
		return AEGIS_EINVAL;
	int base = 10;
	if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16;
	errno = 0;
	char *end = NULL;
	unsigned long v = strtoul(s, &end, base);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return AEGIS_EINVAL;
	*out = v;
	return 0;
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v;
	if (parse_ulong(s, false, 65535, &v) != 0 || v == 0)
		return AEGIS_EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return AEGIS_EINVAL;
}

int aegis_capture_cidr_parse(const char *s, struct aegis_capture_cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return AEGIS_EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';

	memset(out, 0, sizeof(*out));
	unsigned max;
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return AEGIS_EINVAL;
	}
	unsigned long prefix = max;
	if (slash && parse_ulong(slash + 1, false, max, &prefix) != 0)
		return AEGIS_EINVAL;
	out->prefix = (unsigned)prefix;

	/* Host bits below the prefix must be zero. */
	for (unsigned bit = out->prefix; bit < max; bit++) {
		if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
			return AEGIS_EINVAL;
	}
	return 0;
}

const char *aegis_capture_cidr_str(const struct aegis_capture_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, c->prefix);
	return buf;
}

/* Calls item() for each comma-separated element of list; an empty element (",," or a trailing comma) is an
 * error, an empty list is allowed here and checked by the caller. */
static int split_list(const char *list, int (*item)(const char *elem, void *ctx), void *ctx)
{
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char elem[128];
		if (n == 0 || n >= sizeof(elem))
			return AEGIS_EINVAL;
		memcpy(elem, p, n);
		elem[n] = '\0';
		int rc = item(elem, ctx);
		if (rc != 0)
			return rc;
		if (!comma)
			break;
		p = comma + 1;
		if (*p == '\0')
			return AEGIS_EINVAL;
	}
	return 0;
}

struct cidr_list {
	struct aegis_capture_cidr *v;
	size_t *n;
};

static int add_cidr(const char *elem, void *ctx)
{
	struct cidr_list *l = ctx;
	if (*l->n >= AEGIS_CAPTURE_MAX_CIDRS)
		return AEGIS_ELIMIT;
	if (aegis_capture_cidr_parse(elem, &l->v[*l->n]) != 0)
		return AEGIS_EINVAL;
	(*l->n)++;
	return 0;
}

struct port_list {
	uint16_t *v;
	size_t *n;
};

static int add_port(const char *elem, void *ctx)
{
	struct port_list *l = ctx;
	if (*l->n >= AEGIS_CAPTURE_MAX_PORTS)
		return AEGIS_ELIMIT;
	if (parse_port(elem, &l->v[*l->n]) != 0)
		return AEGIS_EINVAL;
	(*l->n)++;
	return 0;
}

enum opt_id {
	OPT_PROXY_UID,
	OPT_PROXY_GID,
	OPT_DNS_PORT,
	OPT_OUTBOUND_PORT,
	OPT_INBOUND_PORT,
	OPT_HBONE_PORT,
	OPT_CAPTURE_DNS,
	OPT_RESOLV_CONF,
	OPT_CAPTURE_TCP,
	OPT_INCLUDE_CIDRS,
	OPT_EXCLUDE_CIDRS,
	OPT_EXCLUDE_OUT_PORTS,
	OPT_EXCLUDE_IN_PORTS,
	OPT_INBOUND,
	OPT_IPV6,
	OPT_ZONES,
	OPT_MARK,
	OPT_FAMILY,
	OPT_BACKEND,
	OPT_DRY_RUN,
	OPT_HELP,
	OPT_VERSION,
};

static const struct {
	const char *name;
	enum opt_id id;
	bool has_arg;
} options[] = {
        {"proxy-uid", OPT_PROXY_UID, true},
        {"proxy-gid", OPT_PROXY_GID, true},
        {"dns-port", OPT_DNS_PORT, true},
        {"outbound-port", OPT_OUTBOUND_PORT, true},
        {"inbound-port", OPT_INBOUND_PORT, true},
        {"hbone-port", OPT_HBONE_PORT, true},
        {"capture-dns", OPT_CAPTURE_DNS, true},
        {"resolv-conf", OPT_RESOLV_CONF, true},
        {"capture-tcp", OPT_CAPTURE_TCP, true},
        {"include-cidrs", OPT_INCLUDE_CIDRS, true},
        {"exclude-cidrs", OPT_EXCLUDE_CIDRS, true},
        {"exclude-outbound-ports", OPT_EXCLUDE_OUT_PORTS, true},
        {"exclude-inbound-ports", OPT_EXCLUDE_IN_PORTS, true},
        {"inbound", OPT_INBOUND, true},
        {"ipv6", OPT_IPV6, true},
        {"dns-conntrack-zones", OPT_ZONES, true},
        {"mark", OPT_MARK, true},
        {"family", OPT_FAMILY, true},
        {"backend", OPT_BACKEND, true},
        {"dry-run", OPT_DRY_RUN, false},
        {"help", OPT_HELP, false},
        {"version", OPT_VERSION, false},
};

static int set_option(struct aegis_capture_cli *cli, enum opt_id id, const char *name, const char *v,
                      struct aegis_diag *diag)
{
	struct aegis_capture_opts *o = &cli->opts;
	unsigned long n;
	int rc = 0;
	switch (id) {
	case OPT_PROXY_UID:
	case OPT_PROXY_GID:
		/* (uid_t)-1 means "no change" to the kernel and can never own a socket. */
		if (parse_ulong(v, false, 4294967294ul, &n) != 0)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "--%s: '%s' is not a numeric id", name, v);
		*(id == OPT_PROXY_UID ? &o->proxy_uid : &o->proxy_gid) = (unsigned)n;
		return 0;
	case OPT_DNS_PORT:
	case OPT_OUTBOUND_PORT:
	case OPT_INBOUND_PORT:
	case OPT_HBONE_PORT: {
		uint16_t *dst = id == OPT_DNS_PORT        ? &o->dns_port
		                : id == OPT_OUTBOUND_PORT ? &o->outbound_port
		                : id == OPT_INBOUND_PORT  ? &o->inbound_port
		                                          : &o->hbone_port;
		if (parse_port(v, dst) != 0)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "--%s: '%s' is not a port (1-65535)", name, v);
		return 0;
	}
	case OPT_CAPTURE_DNS:
		if (strcmp(v, "all") == 0)
			o->capture_dns = AEGIS_CAPTURE_DNS_ALL;
		else if (strcmp(v, "resolv") == 0)
			o->capture_dns = AEGIS_CAPTURE_DNS_RESOLV;
		else if (strcmp(v, "off") == 0)
			o->capture_dns = AEGIS_CAPTURE_DNS_OFF;
		else
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "--capture-dns: '%s' is not one of all, resolv, off", v);
		return 0;
	case OPT_RESOLV_CONF:
		if (*v == '\0' || strlen(v) >= sizeof(o->resolv_conf))
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--resolv-conf: bad path");
		snprintf(o->resolv_conf, sizeof(o->resolv_conf), "%s", v);
		return 0;
	case OPT_CAPTURE_TCP:
	case OPT_INBOUND:
	case OPT_IPV6:
	case OPT_ZONES: {
		bool *dst = id == OPT_CAPTURE_TCP ? &o->capture_tcp
		            : id == OPT_INBOUND   ? &o->inbound
		            : id == OPT_IPV6      ? &o->ipv6
		                                  : &o->dns_zones;
		if (parse_bool(v, dst) != 0)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--%s: '%s' is not on or off",
			                      name, v);
		return 0;
	}
	case OPT_INCLUDE_CIDRS:
		o->n_include = 0;
		if (strcmp(v, "*") == 0) {
			o->include_all = true;
			return 0;
		}
		o->include_all = false;
		if (*v == '\0')
			return aegis_diag_set(
			        diag, AEGIS_EINVAL, NULL, 0, 0,
			        "--include-cidrs: empty list (use '*' for all, or --capture-tcp off)");
		rc = split_list(v, add_cidr, &(struct cidr_list){o->include, &o->n_include});
		break;
	case OPT_EXCLUDE_CIDRS:
		o->n_exclude = 0;
		rc = split_list(v, add_cidr, &(struct cidr_list){o->exclude, &o->n_exclude});
		break;
	case OPT_EXCLUDE_OUT_PORTS:
		o->n_exclude_out_ports = 0;
		rc = split_list(v, add_port,
		                &(struct port_list){o->exclude_out_ports, &o->n_exclude_out_ports});
		break;
	case OPT_EXCLUDE_IN_PORTS:
		o->n_exclude_in_ports = 0;
		rc = split_list(v, add_port,
		                &(struct port_list){o->exclude_in_ports, &o->n_exclude_in_ports});
		break;
	case OPT_MARK:
		if (parse_ulong(v, true, 0xfffffffful, &n) != 0 || n == 0)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "--mark: '%s' is not a non-zero 32-bit value", v);
		o->has_mark = true;
		o->mark = (uint32_t)n;
		return 0;
	case OPT_FAMILY:
		if (strcmp(v, "4") == 0 || strcmp(v, "ipv4") == 0)
			cli->family = 4;
		else if (strcmp(v, "6") == 0 || strcmp(v, "ipv6") == 0)
			cli->family = 6;
		else
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--family: '%s' is not 4 or 6",
			                      v);
		return 0;
	case OPT_BACKEND:
		if (strcmp(v, "auto") == 0)
			cli->backend = AEGIS_CAPTURE_BACKEND_AUTO;
		else if (strcmp(v, "nft") == 0)
			cli->backend = AEGIS_CAPTURE_BACKEND_NFT;
		else if (strcmp(v, "legacy") == 0)
			cli->backend = AEGIS_CAPTURE_BACKEND_LEGACY;
		else
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "--backend: '%s' is not one of auto, nft, legacy", v);
		return 0;
	case OPT_DRY_RUN: cli->dry_run = true; return 0;
	case OPT_HELP: cli->help = true; return 0;
	case OPT_VERSION: cli->version = true; return 0;
	}
	if (rc == AEGIS_ELIMIT)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--%s: more than %d entries", name,
		                      id == OPT_EXCLUDE_OUT_PORTS || id == OPT_EXCLUDE_IN_PORTS
		                              ? AEGIS_CAPTURE_MAX_PORTS
		                              : AEGIS_CAPTURE_MAX_CIDRS);
	if (rc != 0)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--%s: bad list '%s' (expected %s)",
		                      name, v,
		                      id == OPT_EXCLUDE_OUT_PORTS || id == OPT_EXCLUDE_IN_PORTS
		                              ? "comma-separated ports 1-65535"
		                              : "comma-separated addresses or CIDRs with zero host bits");
	return 0;
}

/* Checks that hold between options. */
static int validate(const struct aegis_capture_cli *cli, struct aegis_diag *diag)
{
	const struct aegis_capture_opts *o = &cli->opts;
	const struct {
		const char *name;
		uint16_t port;
	} ports[] = {{"--dns-port", o->dns_port},
	             {"--outbound-port", o->outbound_port},
	             {"--inbound-port", o->inbound_port},
	             {"--hbone-port", o->hbone_port}};
	for (size_t i = 0; i < 4; i++) {
		if (ports[i].port == 53)
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
			                      "%s 53 would capture the proxy's own listener", ports[i].name);
		for (size_t j = i + 1; j < 4; j++) {
			if (ports[i].port == ports[j].port)
				return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "%s and %s are both %u",
				                      ports[i].name, ports[j].name, ports[i].port);
		}
	}
	if (cli->family == 6 && !o->ipv6 && cli->cmd != AEGIS_CAPTURE_CMD_CLEAN)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "--family 6 contradicts --ipv6 off");
	return 0;
}

int aegis_capture_cli_parse(int argc, char *const argv[], struct aegis_capture_cli *cli,
                            struct aegis_diag *diag)
{
	memset(cli, 0, sizeof(*cli));
	aegis_capture_opts_init(&cli->opts);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0) {
			cli->help = true;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0) {
			enum aegis_capture_cmd cmd = strcmp(arg, "print") == 0   ? AEGIS_CAPTURE_CMD_PRINT
			                             : strcmp(arg, "apply") == 0 ? AEGIS_CAPTURE_CMD_APPLY
			                             : strcmp(arg, "clean") == 0 ? AEGIS_CAPTURE_CMD_CLEAN
			                                                         : AEGIS_CAPTURE_CMD_NONE;
			if (cmd == AEGIS_CAPTURE_CMD_NONE)
				return aegis_diag_set(
				        diag, AEGIS_EINVAL, NULL, 0, 0,
				        "unknown command or argument '%s' (expected print, apply or clean)",
				        arg);
			if (cli->cmd != AEGIS_CAPTURE_CMD_NONE)
				return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
				                      "more than one command ('%s')", arg);
			cli->cmd = cmd;
			continue;
		}
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		size_t k;
		for (k = 0; k < sizeof(options) / sizeof(options[0]); k++) {
			if (strlen(options[k].name) == nlen && strncmp(options[k].name, name, nlen) == 0)
				break;
		}
		if (k == sizeof(options) / sizeof(options[0]))
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "unknown option '%.*s'",
			                      (int)(nlen + 2), arg);
		const char *value = NULL;
		if (options[k].has_arg) {
			if (eq) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
				                      "option --%s needs a value", options[k].name);
			}
		} else if (eq) {
			return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "option --%s takes no value",
			                      options[k].name);
		}
		int rc = set_option(cli, options[k].id, options[k].name, value, diag);
		if (rc != 0)
			return rc;
	}
	if (cli->help || cli->version)
		return 0;
	if (cli->cmd == AEGIS_CAPTURE_CMD_NONE)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0,
		                      "no command given (print, apply or clean)");
	return validate(cli, diag);
}

static bool cidr_equal(const struct aegis_capture_cidr *a, const struct aegis_capture_cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix && memcmp(a->addr, b->addr, 16) == 0;
}

int aegis_capture_opts_set_resolv(struct aegis_capture_opts *o, const char *name, const char *text,
                                  size_t len, struct aegis_diag *diag)
{
	o->n_nameservers = 0;
	const char *p = text;
	const char *end = text + len;
	for (int lineno = 1; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		/* The first word, then the second, of the line; glibc ignores the rest. */
		const char *w = p;
		while (w < eol && (*w == ' ' || *w == '\t'))
			w++;
		const char *we = w;
		while (we < eol && *we != ' ' && *we != '\t' && *we != '\r')
			we++;
		if ((size_t)(we - w) == 10 && memcmp(w, "nameserver", 10) == 0) {
			const char *a = we;
			while (a < eol && (*a == ' ' || *a == '\t'))
				a++;
			const char *ae = a;
			while (ae < eol && *ae != ' ' && *ae != '\t' && *ae != '\r' && *ae != '#' &&
			       *ae != ';')
				ae++;
			char addr[INET6_ADDRSTRLEN + 1];
			struct aegis_capture_cidr c;
			size_t alen = (size_t)(ae - a);
			if (alen == 0 || alen >= sizeof(addr))
				return aegis_diag_set(diag, AEGIS_EPARSE, name, lineno, 0,
				                      "nameserver without an address");
			memcpy(addr, a, alen);
			addr[alen] = '\0';
			/* A prefix or a scope ("fe80::1%eth0") cannot be matched with -d: refuse rather than
			 * guess. */
			if (strchr(addr, '/') || strchr(addr, '%') || aegis_capture_cidr_parse(addr, &c) != 0)
				return aegis_diag_set(diag, AEGIS_EPARSE, name, lineno, 0,
				                      "nameserver '%s' is not an IP address", addr);
			bool dup = false;
			for (size_t i = 0; i < o->n_nameservers; i++)
				dup = dup || cidr_equal(&o->nameservers[i], &c);
			if (!dup) {
				if (o->n_nameservers >= AEGIS_CAPTURE_MAX_NS)
					return aegis_diag_set(diag, AEGIS_ELIMIT, name, lineno, 0,
					                      "more than %d nameservers",
					                      AEGIS_CAPTURE_MAX_NS);
				o->nameservers[o->n_nameservers++] = c;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (o->n_nameservers == 0)
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, name, 0, 0,
		                      "no nameserver line: --capture-dns=resolv would capture nothing");
	return 0;
}
