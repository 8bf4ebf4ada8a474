/* aegis-iptables: writes, applies and removes the pod's capture rules (docs/capture.md).
 *
 *   aegis-iptables print [options]     the rules as iptables-restore input (no privilege needed)
 *   aegis-iptables apply [options]     replace this network namespace's AEGIS_* rules with these
 *   aegis-iptables clean               remove every AEGIS_* chain and every jump into one
 *
 * Exit status: 0 success, 1 failure (the message names it), 2 bad command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "aegis/err.h"
#include "capture_apply.h"
#include "capture_opts.h"
#include "capture_rules.h"

#ifndef AEGIS_VERSION
#define AEGIS_VERSION "0"
#endif

static const char usage[] =
        "usage: aegis-iptables print|apply|clean [options]\n"
        "\n"
        "  print                  write the rules (iptables-restore input) to stdout; needs no privilege\n"
        "  apply                  install the rules, replacing any AEGIS_* rules, in one restore "
        "transaction\n"
        "  clean                  remove every AEGIS_* chain and every jump into one\n"
        "\n"
        "options (defaults in brackets):\n"
        "  --proxy-uid N          the proxy's UID; its traffic is never captured [1337]\n"
        "  --proxy-gid N          the proxy's GID; likewise [1337]\n"
        "  --mark N               also exclude packets with this SO_MARK (decimal or 0x hex) [none]\n"
        "  --dns-port P           DNS listener on 127.0.0.1/::1 [15053]\n"
        "  --outbound-port P      outbound TCP listener [15001]\n"
        "  --inbound-port P       inbound TCP listener [15006]\n"
        "  --hbone-port P         HBONE (mTLS) port, never captured inbound [15008]\n"
        "  --capture-dns MODE     all: every query to port 53; resolv: only to the nameservers of\n"
        "                         --resolv-conf; off [all]\n"
        "  --resolv-conf PATH     the pod's resolv.conf, read for --capture-dns=resolv [/etc/resolv.conf]\n"
        "  --dns-conntrack-zones on|off  separate conntrack zones for the proxy's and the app's UDP DNS "
        "[on]\n"
        "  --capture-tcp on|off   capture outbound TCP [on]\n"
        "  --include-cidrs LIST   capture outbound TCP only to these CIDRs, or '*' [*]\n"
        "  --exclude-cidrs LIST   never capture outbound TCP to these CIDRs\n"
        "  --exclude-outbound-ports LIST   never capture outbound TCP to these ports\n"
        "  --inbound on|off       capture inbound TCP [on]\n"
        "  --exclude-inbound-ports LIST    never capture inbound TCP to these ports (HBONE always)\n"
        "  --ipv6 on|off          also write ip6tables rules [on]\n"
        "  --family 4|6           act on one address family only\n"
        "  --backend auto|nft|legacy       iptables backend [auto: from 'iptables --version', or\n"
        "                         the backend that already holds rules in this network namespace]\n"
        "  --dry-run              apply: print the rules; clean: print the restore input it would run\n"
        "  --help, --version\n";

static int fail(const char *what, const struct aegis_diag *diag)
{
	char buf[600];
	fprintf(stderr, "aegis-iptables: %s%s%s\n", what ? what : "", what ? ": " : "",
	        aegis_diag_str(diag, buf, sizeof(buf)));
	return 1;
}

/* Writes the rules of the selected families to stdout. */
static int print_rules(const struct aegis_capture_cli *cli)
{
	const int fams[2] = {4, 6};
	for (int i = 0; i < 2; i++) {
		if ((cli->family && cli->family != fams[i]) || (fams[i] == 6 && !cli->opts.ipv6))
			continue;
		char *text = NULL;
		size_t len = 0;
		int rc = aegis_capture_render(&cli->opts, fams[i] == 4 ? AF_INET : AF_INET6, &text, &len);
		if (rc != 0) {
			fprintf(stderr, "aegis-iptables: cannot render the rules: %s\n", aegis_strerror(rc));
			return 1;
		}
		fwrite(text, 1, len, stdout);
		free(text);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* apply or clean, one family. An IPv6 family that was not asked for explicitly is best effort: a node
 * without IPv6 or without ip6tables only gets a warning. */
static int run_family(const struct aegis_capture_cli *cli, const struct aegis_capture_tools *t, int fam,
                      bool install)
{
	struct aegis_diag diag = {0};
	char *rules = NULL;
	size_t len = 0;
	bool changed = false;
	int rc = 0;
	bool optional = fam == 6 && cli->family != 6 && !install;

	if (install) {
		rc = aegis_capture_render(&cli->opts, fam == 4 ? AF_INET : AF_INET6, &rules, &len);
		if (rc != 0) {
			fprintf(stderr, "aegis-iptables: cannot render the rules: %s\n", aegis_strerror(rc));
			return 1;
		}
	}
	rc = aegis_capture_apply(t, fam, rules, len, cli->dry_run, &changed, &diag);
	free(rules);
	if (rc != 0) {
		if (optional) {
			char buf[600];
			fprintf(stderr, "aegis-iptables: warning: IPv6 skipped: %s\n",
			        aegis_diag_str(&diag, buf, sizeof(buf)));
			return 0;
		}
		return fail(fam == 4 ? "IPv4" : "IPv6", &diag);
	}
	if (!cli->dry_run)
		fprintf(stderr, "aegis-iptables: IPv%d: %s\n", fam,
		        !changed  ? "nothing to do"
		        : install ? "rules applied"
		                  : "rules removed");
	return 0;
}

int main(int argc, char **argv)
{
	struct aegis_capture_cli cli;
	struct aegis_diag diag = {0};
	struct aegis_capture_tools tools;

	signal(SIGPIPE, SIG_IGN); /* a restore that dies early must not kill us while we write its input */
	if (aegis_capture_cli_parse(argc, argv, &cli, &diag) != 0) {
		char buf[600];
		fprintf(stderr, "aegis-iptables: %s\nTry 'aegis-iptables --help'.\n",
		        aegis_diag_str(&diag, buf, sizeof(buf)));
		return 2;
	}
	if (cli.help) {
		fputs(usage, stdout);
		return 0;
	}
	if (cli.version) {
		printf("aegis-iptables %s\n", AEGIS_VERSION);
		return 0;
	}
	bool install = cli.cmd != AEGIS_CAPTURE_CMD_CLEAN;
	if (install && cli.opts.capture_dns == AEGIS_CAPTURE_DNS_RESOLV &&
	    aegis_capture_load_resolv(&cli.opts, &diag) != 0)
		return fail("--capture-dns=resolv", &diag);
	if (cli.cmd == AEGIS_CAPTURE_CMD_PRINT || (cli.cmd == AEGIS_CAPTURE_CMD_APPLY && cli.dry_run))
		return print_rules(&cli);

	if (aegis_capture_check_privilege(&diag) != 0)
		return fail(NULL, &diag);
	if (aegis_capture_tools_detect(cli.backend, &tools, &diag) != 0)
		return fail(NULL, &diag);
	if (tools.note[0])
		fprintf(stderr, "aegis-iptables: backend %s (%s)\n",
		        tools.backend == AEGIS_CAPTURE_BACKEND_NFT ? "nft" : "legacy", tools.note);

	int rc = 0;
	if (cli.family != 6)
		rc |= run_family(&cli, &tools, 4, install);
	/* With --ipv6 off, apply still removes IPv6 rules left by an earlier apply, so the result is the same
	 * whatever ran before. */
	if (cli.family != 4 && rc == 0)
		rc |= run_family(&cli, &tools, 6, install && cli.opts.ipv6);
	return rc;
}
