/* Options of aegis-iptables: the command line, parsed without I/O into one struct that the rule generator
 * (capture_rules.h) turns into iptables-restore text. Private to iptables/.
 *
 * Every list has a fixed maximum (below); parsing rejects more entries instead of growing. Nothing here reads
 * a file: the nameservers of --capture-dns=resolv come from aegis_capture_opts_set_resolv(), which takes the
 * text of resolv.conf (capture_apply.c reads it). */
#ifndef AEGIS_CAPTURE_OPTS_H
#define AEGIS_CAPTURE_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"

#define AEGIS_CAPTURE_MAX_CIDRS 64 /* per --include-cidrs / --exclude-cidrs */
#define AEGIS_CAPTURE_MAX_PORTS 64 /* per --exclude-*-ports */
#define AEGIS_CAPTURE_MAX_NS    8  /* nameservers taken from resolv.conf (glibc reads 3) */
#define AEGIS_CAPTURE_PATH_MAX  1024

/* The conntrack zones of --dns-conntrack-zones (see docs/capture.md): the proxy's own upstream flows and the
 * replies to them live in ZONE_UPSTREAM, the application's flows to port 53 (and the proxy's answers to them)
 * in ZONE_APP, so that a tuple reused by the other side never matches the wrong entry. */
#define AEGIS_CAPTURE_ZONE_UPSTREAM 1
#define AEGIS_CAPTURE_ZONE_APP      2

enum aegis_capture_dns {
	AEGIS_CAPTURE_DNS_OFF = 0,
	AEGIS_CAPTURE_DNS_RESOLV, /* only queries to the nameservers of the pod's resolv.conf */
	AEGIS_CAPTURE_DNS_ALL,    /* every query to port 53, whatever the server */
};

enum aegis_capture_cmd {
	AEGIS_CAPTURE_CMD_NONE = 0,
	AEGIS_CAPTURE_CMD_PRINT,
	AEGIS_CAPTURE_CMD_APPLY,
	AEGIS_CAPTURE_CMD_CLEAN,
};

enum aegis_capture_backend {
	AEGIS_CAPTURE_BACKEND_AUTO = 0,
	AEGIS_CAPTURE_BACKEND_NFT,
	AEGIS_CAPTURE_BACKEND_LEGACY,
};

/* An address with a prefix length; host bits are always zero (parsing rejects them). */
struct aegis_capture_cidr {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network byte order; IPv4 uses the first 4 bytes */
	unsigned prefix;  /* 0..32 or 0..128 */
};

struct aegis_capture_opts {
	unsigned proxy_uid;
	unsigned proxy_gid;
	uint16_t dns_port;
	uint16_t outbound_port;
	uint16_t inbound_port;
	uint16_t hbone_port;
	enum aegis_capture_dns capture_dns;
	char resolv_conf[AEGIS_CAPTURE_PATH_MAX];
	bool capture_tcp;
	bool inbound;
	bool ipv6;
	bool dns_zones;
	bool has_mark;
	uint32_t mark;

	bool include_all; /* --include-cidrs not given or "*": all TCP is captured */
	struct aegis_capture_cidr include[AEGIS_CAPTURE_MAX_CIDRS];
	size_t n_include;
	struct aegis_capture_cidr exclude[AEGIS_CAPTURE_MAX_CIDRS];
	size_t n_exclude;
	uint16_t exclude_out_ports[AEGIS_CAPTURE_MAX_PORTS];
	size_t n_exclude_out_ports;
	uint16_t exclude_in_ports[AEGIS_CAPTURE_MAX_PORTS];
	size_t n_exclude_in_ports;

	/* Filled by aegis_capture_opts_set_resolv() for --capture-dns=resolv. */
	struct aegis_capture_cidr nameservers[AEGIS_CAPTURE_MAX_NS];
	size_t n_nameservers;
};

/* The whole command line. */
struct aegis_capture_cli {
	enum aegis_capture_cmd cmd;
	bool help;
	bool version;
	bool dry_run;
	int family; /* 0: both (IPv6 only when opts.ipv6), 4 or 6: that family only */
	enum aegis_capture_backend backend;
	struct aegis_capture_opts opts;
};

/* Sets the defaults: UID/GID 1337, ports 15053/15001/15006/15008, DNS capture "all", TCP and inbound capture
 * on, IPv6 on, conntrack zones on, no mark, resolv.conf /etc/resolv.conf, every list empty. Cannot fail. */
void aegis_capture_opts_init(struct aegis_capture_opts *o);

/* Parses argv[1..argc-1] ("print|apply|clean" and long options, "--name value" or "--name=value") into cli,
 * which is initialised first. Returns 0, or AEGIS_EINVAL with diag->msg naming the option and the problem.
 * A command line that only asks for --help or --version parses without a command. Reads no file. */
int aegis_capture_cli_parse(int argc, char *const argv[], struct aegis_capture_cli *cli,
                            struct aegis_diag *diag) AEGIS_WUR;

/* Takes the nameservers from the text of a resolv.conf (name is used in diagnostics) into o->nameservers, in
 * file order, duplicates dropped. A nameserver line that is not an IP address, or more than
 * AEGIS_CAPTURE_MAX_NS of them, is AEGIS_EPARSE / AEGIS_ELIMIT with file and line in diag. No nameserver at
 * all is AEGIS_ENOTFOUND: resolv mode would then capture nothing, which is never what the caller meant. */
int aegis_capture_opts_set_resolv(struct aegis_capture_opts *o, const char *name, const char *text,
                                  size_t len, struct aegis_diag *diag) AEGIS_WUR;

/* Parses "a.b.c.d[/n]" or "x::y[/n]" (no prefix: a host route). Returns 0 or AEGIS_EINVAL (also when host
 * bits are set below the prefix: "10.0.0.1/8" is a typo for 10.0.0.0/8 more often than not). */
int aegis_capture_cidr_parse(const char *s, struct aegis_capture_cidr *out) AEGIS_WUR;

/* Writes "addr/prefix" into buf (at least 64 bytes); returns buf. */
const char *aegis_capture_cidr_str(const struct aegis_capture_cidr *c, char *buf, size_t len);

#endif
