/* Tests of iptables/capture_opts.c and iptables/capture_rules.c: the generated rules against reviewed golden
 * files, the clean/apply scripts built from iptables-save text, and command-line errors.
 *
 * Golden files live in tests/unit/golden/iptables/<case>.v4.rules and <case>.v6.rules. After an intended
 * change to the rules, regenerate them and review the diff line by line before committing:
 *
 *     AEGIS_UPDATE_GOLDEN=1 build/tests/test_capture_rules && git diff tests/unit/golden/iptables
 *
 * docs/capture.md explains every rule; a golden file that changes without a matching change there is a bug.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "capture_opts.h"
#include "capture_rules.h"

#ifndef AEGIS_SRC_DIR
#define AEGIS_SRC_DIR "."
#endif
#define GOLDEN_DIR AEGIS_SRC_DIR "/tests/unit/golden/iptables"

/* The pod's resolv.conf used by the resolv cases: two IPv4 servers (one repeated), one IPv6 server. */
static const char resolv_text[] = "# written by the kubelet\n"
                                  "search default.svc.cluster.local svc.cluster.local cluster.local\n"
                                  "nameserver 10.96.0.10\n"
                                  "nameserver\t169.254.20.10   # node-local cache\n"
                                  "nameserver 10.96.0.10\n"
                                  "nameserver fd00:10:96::a\n"
                                  "options ndots:5\n";

struct golden_case {
	const char *name;
	const char *argv[16]; /* after "aegis-iptables"; NULL-terminated */
	bool resolv;          /* feed resolv_text */
};

static const struct golden_case cases[] = {
        {"default", {"print", NULL}, false},
        {"dns-only", {"print", "--capture-tcp", "off", "--inbound", "off", "--ipv6", "off", NULL}, false},
        {"resolv", {"print", "--capture-dns=resolv", "--capture-tcp=off", "--inbound=off", NULL}, true},
        {"resolv-no-zones",
         {"print", "--capture-dns", "resolv", "--dns-conntrack-zones", "off", "--ipv6", "off", NULL},
         true},
        {"ipv6",
         {"print", "--include-cidrs", "10.96.0.0/12,fd00:10:96::/112", "--exclude-cidrs", "fd00:10:96::a",
          "--inbound", "off", NULL},
         false},
        {"exclusions",
         {"print", "--exclude-cidrs", "10.0.0.0/8,192.168.1.5,fd00::/8", "--exclude-outbound-ports",
          "22,3306", "--exclude-inbound-ports", "15090,8081", "--mark", "0x539", "--proxy-uid", "2000",
          "--proxy-gid", "2001", "--ipv6", "off", NULL},
         false},
        {"zones-off", {"print", "--dns-conntrack-zones", "off", "--ipv6", "off", NULL}, false},
        {"ports",
         {"print", "--dns-port", "5353", "--outbound-port", "16001", "--inbound-port", "16006",
          "--hbone-port", "16008", "--ipv6", "off", NULL},
         false},
        {"all-off",
         {"print", "--capture-dns", "off", "--capture-tcp", "off", "--inbound", "off", NULL},
         false},
};

static int argc_of(const char *const *argv)
{
	int n = 0;
	while (argv[n])
		n++;
	return n;
}

/* Parses "aegis-iptables <args>" into cli; returns the parse result. */
static int parse(const char *const *args, struct aegis_capture_cli *cli, struct aegis_diag *diag)
{
	const char *argv[20] = {"aegis-iptables"};
	int n = argc_of(args);
	assert_true(n < 19);
	for (int i = 0; i < n; i++)
		argv[i + 1] = args[i];
	memset(diag, 0, sizeof(*diag));
	return aegis_capture_cli_parse(n + 1, (char *const *)argv, cli, diag);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = malloc(1 << 16);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 16) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void check_golden(const char *name, const char *fam, const char *text, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.%s.rules", GOLDEN_DIR, name, fam);
	const char *update = getenv("AEGIS_UPDATE_GOLDEN");
	if (update && strcmp(update, "1") == 0) {
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(text, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		return;
	}
	size_t glen = 0;
	char *golden = read_all(path, &glen);
	if (golden == NULL)
		fail_msg("missing golden file %s (AEGIS_UPDATE_GOLDEN=1 creates it)", path);
	if (glen != len || memcmp(golden, text, len) != 0) {
		fprintf(stderr, "--- %s\n%s--- generated\n%s", path, golden, text);
		free(golden);
		fail_msg("%s differs from the generated rules", path);
	}
	free(golden);
}

static void test_golden(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct aegis_capture_cli cli;
		struct aegis_diag diag;
		int rc = parse(cases[i].argv, &cli, &diag);
		if (rc != 0)
			fail_msg("%s: %s", cases[i].name, diag.msg);
		if (cases[i].resolv)
			assert_int_equal(aegis_capture_opts_set_resolv(&cli.opts, "resolv.conf", resolv_text,
			                                               strlen(resolv_text), &diag),
			                 0);
		for (int f = 0; f < 2; f++) {
			if (f == 1 && !cli.opts.ipv6)
				continue;
			char *text = NULL;
			size_t len = 0;
			assert_int_equal(aegis_capture_render(&cli.opts, f ? AF_INET6 : AF_INET, &text, &len),
			                 0);
			assert_int_equal(strlen(text), len);
			check_golden(cases[i].name, f ? "v6" : "v4", text, len);
			free(text);
		}
	}
}

/* Defaults are the contract of ARCHITECTURE.md (ports, UID 1337). */
static void test_defaults(void **state)
{
	(void)state;
	struct aegis_capture_cli cli;
	struct aegis_diag diag;
	assert_int_equal(parse((const char *[]){"apply", NULL}, &cli, &diag), 0);
	assert_int_equal(cli.cmd, AEGIS_CAPTURE_CMD_APPLY);
	assert_int_equal(cli.opts.proxy_uid, 1337);
	assert_int_equal(cli.opts.proxy_gid, 1337);
	assert_int_equal(cli.opts.dns_port, 15053);
	assert_int_equal(cli.opts.outbound_port, 15001);
	assert_int_equal(cli.opts.inbound_port, 15006);
	assert_int_equal(cli.opts.hbone_port, 15008);
	assert_int_equal(cli.opts.capture_dns, AEGIS_CAPTURE_DNS_ALL);
	assert_true(cli.opts.capture_tcp && cli.opts.inbound && cli.opts.ipv6 && cli.opts.dns_zones);
	assert_false(cli.opts.has_mark);
	assert_string_equal(cli.opts.resolv_conf, "/etc/resolv.conf");

	assert_int_equal(parse((const char *[]){"--dry-run", "apply", "--mark=1337", "--family", "6", NULL},
	                       &cli, &diag),
	                 0);
	assert_true(cli.dry_run);
	assert_int_equal(cli.opts.mark, 1337);
	assert_int_equal(cli.family, 6);
	assert_int_equal(parse((const char *[]){"--help", NULL}, &cli, &diag), 0);
	assert_true(cli.help);
	assert_int_equal(parse((const char *[]){"-h", "--bogus-ignored-after-help", NULL}, &cli, &diag),
	                 AEGIS_EINVAL); /* unknown options are errors even with --help */
}

static void test_parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *argv[8];
		const char *msg; /* a part of the message that names the problem */
	} bad[] = {
	        {{NULL}, "no command"},
	        {{"install", NULL}, "unknown command or argument 'install'"},
	        {{"print", "apply", NULL}, "more than one command"},
	        {{"print", "--bogus", NULL}, "unknown option '--bogus'"},
	        {{"print", "--proxy-uid", NULL}, "--proxy-uid needs a value"},
	        {{"print", "--proxy-uid", "istio", NULL}, "--proxy-uid: 'istio' is not a numeric id"},
	        {{"print", "--proxy-uid", "-1", NULL}, "not a numeric id"},
	        {{"print", "--proxy-gid", "4294967295", NULL}, "not a numeric id"},
	        {{"print", "--dns-port", "0", NULL}, "--dns-port: '0' is not a port"},
	        {{"print", "--dns-port", "65536", NULL}, "is not a port"},
	        {{"print", "--dns-port", "15053x", NULL}, "is not a port"},
	        {{"print", "--outbound-port", "53", NULL}, "--outbound-port 53"},
	        {{"print", "--inbound-port", "15001", NULL},
	         "--outbound-port and --inbound-port are both 15001"},
	        {{"print", "--capture-dns", "some", NULL},
	         "--capture-dns: 'some' is not one of all, resolv, off"},
	        {{"print", "--capture-tcp", "maybe", NULL}, "--capture-tcp: 'maybe' is not on or off"},
	        {{"print", "--include-cidrs", "", NULL}, "--include-cidrs: empty list"},
	        {{"print", "--include-cidrs", "10.0.0.1/8", NULL}, "--include-cidrs: bad list '10.0.0.1/8'"},
	        {{"print", "--exclude-cidrs", "10.0.0.0/33", NULL}, "--exclude-cidrs: bad list"},
	        {{"print", "--exclude-cidrs", "10.0.0.0/8,", NULL}, "--exclude-cidrs: bad list"},
	        {{"print", "--exclude-cidrs", "example.com", NULL}, "--exclude-cidrs: bad list"},
	        {{"print", "--exclude-outbound-ports", "22,,80", NULL}, "--exclude-outbound-ports: bad list"},
	        {{"print", "--exclude-inbound-ports", "http", NULL}, "comma-separated ports"},
	        {{"print", "--mark", "0", NULL}, "--mark: '0' is not a non-zero 32-bit value"},
	        {{"print", "--mark", "0x100000000", NULL}, "--mark"},
	        {{"print", "--family", "5", NULL}, "--family: '5' is not 4 or 6"},
	        {{"print", "--family", "6", "--ipv6", "off", NULL}, "--family 6 contradicts --ipv6 off"},
	        {{"print", "--backend", "iptables", NULL}, "--backend: 'iptables'"},
	        {{"print", "--dry-run=yes", NULL}, "--dry-run takes no value"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aegis_capture_cli cli;
		struct aegis_diag diag;
		int rc = parse(bad[i].argv, &cli, &diag);
		if (rc != AEGIS_EINVAL || strstr(diag.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, diag.msg, bad[i].msg);
	}

	/* Too many entries in a list. */
	char list[1024] = "1";
	for (int i = 2; i <= AEGIS_CAPTURE_MAX_PORTS + 1; i++) {
		size_t n = strlen(list);
		snprintf(list + n, sizeof(list) - n, ",%d", i);
	}
	struct aegis_capture_cli cli;
	struct aegis_diag diag;
	assert_int_equal(
	        parse((const char *[]){"print", "--exclude-outbound-ports", list, NULL}, &cli, &diag),
	        AEGIS_EINVAL);
	assert_non_null(strstr(diag.msg, "more than 64 entries"));
}

static void test_resolv(void **state)
{
	(void)state;
	struct aegis_capture_opts o;
	struct aegis_diag diag = {0};
	char buf[64];
	aegis_capture_opts_init(&o);
	assert_int_equal(aegis_capture_opts_set_resolv(&o, "r", resolv_text, strlen(resolv_text), &diag), 0);
	assert_int_equal(o.n_nameservers, 3); /* the duplicate is dropped */
	assert_string_equal(aegis_capture_cidr_str(&o.nameservers[0], buf, sizeof(buf)), "10.96.0.10/32");
	assert_string_equal(aegis_capture_cidr_str(&o.nameservers[1], buf, sizeof(buf)), "169.254.20.10/32");
	assert_string_equal(aegis_capture_cidr_str(&o.nameservers[2], buf, sizeof(buf)), "fd00:10:96::a/128");

	/* No trailing newline, CRLF line ends. */
	static const char crlf[] = "nameserver 10.0.0.1\r\nnameserver 10.0.0.2";
	assert_int_equal(aegis_capture_opts_set_resolv(&o, "r", crlf, strlen(crlf), &diag), 0);
	assert_int_equal(o.n_nameservers, 2);

	static const struct {
		const char *text;
		int rc;
		int line;
		const char *msg;
	} bad[] = {
	        {"search cluster.local\n", AEGIS_ENOTFOUND, 0, "no nameserver line"},
	        {"", AEGIS_ENOTFOUND, 0, "no nameserver"},
	        {"# nameserver 10.0.0.1\n", AEGIS_ENOTFOUND, 0, "no nameserver"},
	        {"search a\nnameserver dns.example\n", AEGIS_EPARSE, 2, "'dns.example' is not an IP address"},
	        {"nameserver fe80::1%eth0\n", AEGIS_EPARSE, 1, "is not an IP address"},
	        {"nameserver 10.0.0.0/8\n", AEGIS_EPARSE, 1, "is not an IP address"},
	        {"nameserver\n", AEGIS_EPARSE, 1, "nameserver without an address"},
	        {"nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n"
	         "nameserver 10.0.0.5\nnameserver 10.0.0.6\nnameserver 10.0.0.7\nnameserver 10.0.0.8\n"
	         "nameserver 10.0.0.9\n",
	         AEGIS_ELIMIT, 9, "more than 8 nameservers"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&diag, 0, sizeof(diag));
		int rc = aegis_capture_opts_set_resolv(&o, "resolv.conf", bad[i].text, strlen(bad[i].text),
		                                       &diag);
		if (rc != bad[i].rc || diag.line != bad[i].line || strstr(diag.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: rc %d line %d '%s'", i, rc, diag.line, diag.msg);
		assert_string_equal(diag.file, "resolv.conf");
	}
}

static void test_cidr(void **state)
{
	(void)state;
	struct aegis_capture_cidr c;
	char buf[64];
	static const struct {
		const char *in, *out;
	} good[] = {
	        {"10.0.0.0/8", "10.0.0.0/8"},
	        {"192.168.1.5", "192.168.1.5/32"},
	        {"0.0.0.0/0", "0.0.0.0/0"},
	        {"fd00::/8", "fd00::/8"},
	        {"::1", "::1/128"},
	        {"2001:db8::/32", "2001:db8::/32"},
	        {"10.96.0.0/12", "10.96.0.0/12"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(aegis_capture_cidr_parse(good[i].in, &c), 0);
		assert_string_equal(aegis_capture_cidr_str(&c, buf, sizeof(buf)), good[i].out);
	}
	static const char *const bad[] = {
	        "",          "/8",     "10.0.0.0/", "10.0.0.0/33",  "10.0.0.0/-1", "10.0.0.1/8",
	        "fd00::1/8", "::/129", "10.0.0",    "10.0.0.0/8/8", "10.0.0.0/ 8", "x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (aegis_capture_cidr_parse(bad[i], &c) != AEGIS_EINVAL)
			fail_msg("'%s' parsed", bad[i]);
	}
}

/* iptables-save of a pod where an older aegis-iptables left rules (zones on) next to someone else's. */
static const char saved_text[] =
        "# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 19:00:00 2026\n"
        "*raw\n"
        ":PREROUTING ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n"
        ":AEGIS_DNS_CT_IN - [0:0]\n"
        ":AEGIS_DNS_CT_OUT - [0:0]\n"
        "-A PREROUTING -p udp -j AEGIS_DNS_CT_IN\n"
        "-A OUTPUT -p udp -j AEGIS_DNS_CT_OUT\n"
        "-A AEGIS_DNS_CT_IN -p udp -m udp --sport 53 -j CT --zone 1\n"
        "-A AEGIS_DNS_CT_OUT -p udp -m udp --dport 53 -j CT --zone 2\n"
        "COMMIT\n"
        "*nat\n"
        ":PREROUTING ACCEPT [0:0]\n"
        ":INPUT ACCEPT [0:0]\n"
        ":OUTPUT ACCEPT [0:0]\n"
        ":POSTROUTING ACCEPT [0:0]\n"
        ":AEGIS_OLD - [0:0]\n"
        ":AEGIS_OUTPUT - [0:0]\n"
        ":KUBE-THING - [0:0]\n"
        "-A OUTPUT -p tcp -m tcp --dport 9 -j RETURN\n"
        "-A OUTPUT -j AEGIS_OUTPUT\n"
        "-A KUBE-THING -g AEGIS_OLD\n"
        "-A KUBE-THING -j AEGIS_OTHER\n"
        "-A KUBE-THING -m comment --comment \"AEGIS_OUTPUT\" -j RETURN\n"
        "-A AEGIS_OUTPUT -j AEGIS_OLD\n"
        "COMMIT\n"
        "# Completed on Wed Nov 25 19:00:00 2026\n";

static void test_clean_script(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(aegis_capture_script(saved_text, strlen(saved_text), NULL, 0, &out, &len), 0);
	assert_string_equal(out, "*raw\n"
	                         "-D PREROUTING -p udp -j AEGIS_DNS_CT_IN\n"
	                         "-D OUTPUT -p udp -j AEGIS_DNS_CT_OUT\n"
	                         "-F AEGIS_DNS_CT_IN\n"
	                         "-F AEGIS_DNS_CT_OUT\n"
	                         "-X AEGIS_DNS_CT_IN\n"
	                         "-X AEGIS_DNS_CT_OUT\n"
	                         "COMMIT\n"
	                         "*nat\n"
	                         "-D OUTPUT -j AEGIS_OUTPUT\n"
	                         "-D KUBE-THING -g AEGIS_OLD\n"
	                         "-D KUBE-THING -j AEGIS_OTHER\n"
	                         "-F AEGIS_OLD\n"
	                         "-F AEGIS_OUTPUT\n"
	                         "-X AEGIS_OLD\n"
	                         "-X AEGIS_OUTPUT\n"
	                         "COMMIT\n");
	assert_int_equal(len, strlen(out));
	free(out);

	/* Nothing of ours: nothing to do. */
	static const char clean_state[] = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j RETURN\nCOMMIT\n";
	assert_int_equal(aegis_capture_script(clean_state, strlen(clean_state), NULL, 0, &out, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(aegis_capture_script("", 0, NULL, 0, &out, &len), 0);
	assert_int_equal(len, 0);
	free(out);

	assert_int_equal(aegis_capture_count_rules(saved_text, strlen(saved_text), false), 10);
	assert_int_equal(aegis_capture_count_rules(saved_text, strlen(saved_text), true), 8);
}

/* Apply = clean + rules per table in one transaction; chains declared again are not deleted (their
 * declaration flushes them), chains no longer used are. */
static void test_apply_script(void **state)
{
	(void)state;
	struct aegis_capture_cli cli;
	struct aegis_diag diag;
	assert_int_equal(parse((const char *[]){"print", "--capture-tcp", "off", "--inbound", "off",
	                                        "--dns-conntrack-zones", "off", NULL},
	                       &cli, &diag),
	                 0);
	char *rules = NULL, *out = NULL;
	size_t rules_len = 0, len = 0;
	assert_int_equal(aegis_capture_render(&cli.opts, AF_INET, &rules, &rules_len), 0);
	assert_int_equal(aegis_capture_script(saved_text, strlen(saved_text), rules, rules_len, &out, &len),
	                 0);
	assert_string_equal(out, "*raw\n"
	                         "-D PREROUTING -p udp -j AEGIS_DNS_CT_IN\n"
	                         "-D OUTPUT -p udp -j AEGIS_DNS_CT_OUT\n"
	                         "-F AEGIS_DNS_CT_IN\n"
	                         "-F AEGIS_DNS_CT_OUT\n"
	                         "-X AEGIS_DNS_CT_IN\n"
	                         "-X AEGIS_DNS_CT_OUT\n"
	                         "COMMIT\n"
	                         "*nat\n"
	                         "-D OUTPUT -j AEGIS_OUTPUT\n"
	                         "-D KUBE-THING -g AEGIS_OLD\n"
	                         "-D KUBE-THING -j AEGIS_OTHER\n"
	                         "-F AEGIS_OLD\n"
	                         "-F AEGIS_OUTPUT\n"
	                         "-X AEGIS_OLD\n"
	                         ":AEGIS_OUTPUT - [0:0]\n"
	                         ":AEGIS_DNS - [0:0]\n"
	                         "-A OUTPUT -j AEGIS_OUTPUT\n"
	                         "-A AEGIS_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
	                         "-A AEGIS_OUTPUT -m owner --gid-owner 1337 -j RETURN\n"
	                         "-A AEGIS_OUTPUT -p udp -m udp --dport 53 -j AEGIS_DNS\n"
	                         "-A AEGIS_OUTPUT -p tcp -m tcp --dport 53 -j AEGIS_DNS\n"
	                         "-A AEGIS_DNS -p udp -j REDIRECT --to-ports 15053\n"
	                         "-A AEGIS_DNS -p tcp -j REDIRECT --to-ports 15053\n"
	                         "COMMIT\n");
	free(out);

	/* On an empty namespace the script is the rules without their comment. */
	assert_int_equal(aegis_capture_script(NULL, 0, rules, rules_len, &out, &len), 0);
	assert_string_equal(out, strchr(rules, '\n') + 1);
	free(out);

	/* Applying the rules and saving them gives a state whose script removes exactly them again. */
	assert_int_equal(aegis_capture_count_rules(rules, rules_len, true), 7);
	assert_int_equal(aegis_capture_count_rules(rules, rules_len, false), 7);
	free(rules);

	/* A table we do not know is refused rather than dropped. */
	static const char odd[] = "*mystery\n-A X -j Y\nCOMMIT\n";
	assert_int_equal(aegis_capture_script(NULL, 0, odd, strlen(odd), &out, &len), AEGIS_EPARSE);
	assert_null(out);
}

static void test_render_errors(void **state)
{
	(void)state;
	struct aegis_capture_opts o;
	char *out = (char *)&o;
	size_t len = 1;
	aegis_capture_opts_init(&o);
	assert_int_equal(aegis_capture_render(&o, AF_UNIX, &out, &len), AEGIS_EINVAL);
	assert_null(out);
	assert_int_equal(len, 0);

	/* resolv mode with only IPv4 servers writes no IPv6 DNS rules (and no IPv6 raw table). */
	aegis_capture_opts_init(&o);
	o.capture_dns = AEGIS_CAPTURE_DNS_RESOLV;
	o.capture_tcp = false;
	o.inbound = false;
	static const char v4only[] = "nameserver 10.0.0.10\n";
	struct aegis_diag diag = {0};
	assert_int_equal(aegis_capture_opts_set_resolv(&o, "r", v4only, strlen(v4only), &diag), 0);
	assert_int_equal(aegis_capture_render(&o, AF_INET6, &out, &len), 0);
	assert_string_equal(out, "# aegis-iptables: IPv6 capture rules, for ip6tables-restore --noflush\n");
	free(out);
}

static void test_backend_version(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		enum aegis_capture_backend b;
	} v[] = {
	        {"iptables v1.8.9 (nf_tables)\n", AEGIS_CAPTURE_BACKEND_NFT},
	        {"iptables v1.8.9 (legacy)\n", AEGIS_CAPTURE_BACKEND_LEGACY},
	        {"ip6tables v1.8.7 (nf_tables)", AEGIS_CAPTURE_BACKEND_NFT},
	        {"iptables v1.6.1\n", AEGIS_CAPTURE_BACKEND_LEGACY},
	        {"", AEGIS_CAPTURE_BACKEND_AUTO},
	        {"sh: iptables: not found\n", AEGIS_CAPTURE_BACKEND_AUTO},
	        {"\niptables v1.8.9 (nf_tables)\n", AEGIS_CAPTURE_BACKEND_AUTO},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(aegis_capture_backend_from_version(v[i].text, strlen(v[i].text)), v[i].b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_golden),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_parse_errors),
	        cmocka_unit_test(test_resolv),
	        cmocka_unit_test(test_cidr),
	        cmocka_unit_test(test_clean_script),
	        cmocka_unit_test(test_apply_script),
	        cmocka_unit_test(test_render_errors),
	        cmocka_unit_test(test_backend_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
