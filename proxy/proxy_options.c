/* aegis-proxy's command line: see proxy_options.h. */
#include "proxy_options.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
        "Usage: aegis-proxy (--config PATH... | --xds-address HOST:PORT) [options]\n"
        "\n"
        "The Aegis sidecar: answers mesh names from a table built from Istio/Kubernetes resources and\n"
        "forwards everything else upstream.\n"
        "\n"
        "Configuration source (one of):\n"
        "  --config PATH            YAML file or directory of resources (repeatable)\n"
        "  --xds-address HOST:PORT  follow an ADS control plane (aegis-xds or istiod)\n"
        "  --xds-delta              use delta xDS (DeltaAggregatedResources)\n"
        "  --xds-tls                mutual TLS to the control plane (port 15012) with --cert-dir's\n"
        "                           certificate; the server's chain is verified against its root\n"
        "  --xds-server-id ID       the control plane's SPIFFE ID with --xds-tls (default\n"
        "                           spiffe://TRUST_DOMAIN/ns/aegis-system/sa/aegis-xds; \"\" = any)\n"
        "  --node-id ID             xDS node id (default sidecar~$INSTANCE_IP~$POD_NAME.NS~NS.svc.DOMAIN)\n"
        "\n"
        "DNS:\n"
        "  --dns-listen ADDR:PORT   listen address, UDP and TCP (repeatable;\n"
        "                           default 127.0.0.1:15053 and [::1]:15053)\n"
        "  --namespace NS           the pod's namespace (short names, default search list)\n"
        "  --cluster-domain D       cluster domain (default cluster.local)\n"
        "  --cluster NAME           this pod's cluster in a multi-cluster config\n"
        "  --resolv-conf PATH       the pod's resolv.conf: search list and upstreams\n"
        "                           (default /etc/resolv.conf)\n"
        "  --upstream ADDR[:PORT]   upstream server, overrides resolv.conf (repeatable)\n"
        "  --ttl SECONDS            TTL of table answers (default 30)\n"
        "\n"
        "Forwarding (names that are not mesh names):\n"
        "  --stub-zone ZONE=ADDR[:PORT][,ADDR...]  send ZONE to its own servers (repeatable;\n"
        "                           the longest matching zone wins)\n"
        "  --upstream-parallel      ask every server at once, first good answer wins\n"
        "                           (default: one at a time, next on failure)\n"
        "  --upstream-timeout MS    per-attempt timeout (default 1500)\n"
        "  --upstream-deadline MS   whole-resolution deadline, then SERVFAIL (default 5000)\n"
        "  --upstream-max-concurrent N  outstanding forwarded queries (default 1024)\n"
        "  --so-mark N              SO_MARK on upstream sockets (needs CAP_NET_ADMIN)\n"
        "  --no-cache               no cache in front of upstream\n"
        "  --cache-size N           positive cache entries (default 10000)\n"
        "  --cache-max-ttl S        cap on cached TTLs (default 3600)\n"
        "  --cache-min-ttl S        floor on cached TTLs (default 0)\n"
        "  --serve-stale S          answer expired entries up to S seconds while upstream fails\n"
        "  --stale-answer-timeout MS  with --serve-stale: a query upstream has not answered within\n"
        "                           MS gets the expired answer (RFC 8767; default 1800, 0 = off)\n"
        "  --dnssec-validate        validate forwarded answers (AD on secure, SERVFAIL on bogus)\n"
        "  --trust-anchor FILE      DS/DNSKEY records to trust (repeatable; needed by --dnssec-validate)\n"
        "  --forward-unready        before the first config, forward mesh names instead of SERVFAIL\n"
        "  --reuseport              set SO_REUSEPORT on the DNS sockets\n"
        "  --dns-workers N          N threads answering DNS, each with its own loop, sockets\n"
        "                           (SO_REUSEPORT) and forwarder (default 1; docs/dns.md)\n"
        "\n"
        "Security (docs/security.md):\n"
        "  --allow-source CIDR      also answer these sources (repeatable; default: loopback and\n"
        "                           the pod's own addresses only)\n"
        "  --deny-action refused|drop  what a source outside the ACL gets (default refused)\n"
        "  --allow-non-loopback-listen  permit a --dns-listen address that is not loopback\n"
        "  --rrl-qps N              rate limit: answers per second per client over UDP (default off)\n"
        "  --rrl-burst N            rate limit bucket depth (default: the qps)\n"
        "  --rrl-slip N             every Nth limited query gets a TC=1 answer (default 2; 0 = never)\n"
        "  --blocklist FILE         domain rules: NAME, *.NAME, !exception (reloaded on SIGHUP/change)\n"
        "  --block-answer nxdomain|refused  answer to blocked names (default nxdomain)\n"
        "  --query-log FILE|-       audit log of answers, JSON lines\n"
        "  --query-log-sample F     fraction of answers logged, 0..1 (default 1)\n"
        "  --user UID[:GID]|NAME    identity after binding when started as root (default 1337;\n"
        "                           0 keeps root)\n"
        "\n"
        "Mesh traffic (docs/mesh.md):\n"
        "  --mesh                   relay captured TCP (outbound :15001, inbound :15006, HBONE :15008)\n"
        "  --outbound-listen ADDR:PORT  outbound capture listener (repeatable, at most 2; implies --mesh;\n"
        "                           default 127.0.0.1:15001 and [::1]:15001)\n"
        "  --inbound-listen ADDR:PORT   inbound capture listener (repeatable, at most 2; implies --mesh;\n"
        "                           default 0.0.0.0:15006 and [::]:15006)\n"
        "  --hbone-listen ADDR:PORT     HBONE listener (repeatable, at most 2; default 0.0.0.0:15008\n"
        "                           and [::]:15008)\n"
        "  --mesh-transport hbone|direct|auto  how mesh endpoints are reached: HTTP/2 CONNECT on pooled\n"
        "                           mTLS connections to <ip>:15008 (default), legacy mTLS to <ip>:<port>,\n"
        "                           or per endpoint: HBONE where labelled networking.istio.io/tunnel=http\n"
        "  --hbone-port P           the peers' HBONE port (default 15008)\n"
        "  --hbone-keepalive MS     PING an HBONE connection silent this long (default 10000)\n"
        "  --hbone-pool-idle MS     close a pooled HBONE connection without streams after (default 60000)\n"
        "  --inbound-strict         refuse plaintext inbound (PeerAuthentication STRICT)\n"
        "  --trust-domain TD        SPIFFE trust domain of expected peers (default cluster.local)\n"
        "  --locality R/Z[/S]       this pod's locality (endpoint priority)\n"
        "  --workload-label K=V     this pod's labels (VirtualService sourceLabels; repeatable)\n"
        "  --mesh-connect-timeout MS  endpoint connect timeout without a DestinationRule (default 1000)\n"
        "  --mesh-idle-timeout MS   close relays idle this long (default 3600000)\n"
        "  --drain-timeout MS       on SIGTERM, GOAWAY to peers and wait up to MS for open mesh\n"
        "                           connections to finish, DNS still answered (default 5000;\n"
        "                           0 = exit at once; a second signal exits at once)\n"
        "\n"
        "Other:\n"
        "  --admin ADDR:PORT        admin endpoint (default 127.0.0.1:15000)\n"
        "  --admin-allow-non-loopback  permit a non-loopback admin address\n"
        "  --status-listen ADDR[:PORT]  kubelet probes: GET /healthz/ready and /healthz/live only\n"
        "                           (port 15021 when omitted; default off, the injector sets it)\n"
        "  --cert-dir DIR           workload identity (cert-chain.pem, key.pem, root-cert.pem)\n"
        "  --no-watch               do not reload config files when they change (SIGHUP still does)\n"
        "  --log-level LEVEL        debug, info, warn or error (default info)\n"
        "  --help, --version\n";

enum {
	OPT_CONFIG = 256,
	OPT_XDS,
	OPT_DNS_LISTEN,
	OPT_ADMIN,
	OPT_ADMIN_ANY,
	OPT_NAMESPACE,
	OPT_DOMAIN,
	OPT_CLUSTER,
	OPT_RESOLV,
	OPT_UPSTREAM,
	OPT_CERT_DIR,
	OPT_LOG_LEVEL,
	OPT_TTL,
	OPT_NO_WATCH,
	OPT_FWD_UNREADY,
	OPT_REUSEPORT,
	OPT_DNS_WORKERS,
	OPT_STUB,
	OPT_UP_PARALLEL,
	OPT_UP_TIMEOUT,
	OPT_UP_DEADLINE,
	OPT_UP_MAXC,
	OPT_SO_MARK,
	OPT_NO_CACHE,
	OPT_CACHE_SIZE,
	OPT_CACHE_MAX_TTL,
	OPT_CACHE_MIN_TTL,
	OPT_SERVE_STALE,
	OPT_STALE_ANSWER_TIMEOUT,
	OPT_DNSSEC_VALIDATE, /* dnssec */
	OPT_TRUST_ANCHOR,
	OPT_XDS_DELTA,
	OPT_NODE_ID,
	OPT_STATUS_LISTEN,
	OPT_XDS_TLS,
	OPT_XDS_SERVER_ID,
	OPT_HELP,
	OPT_VERSION,
	/* policy */
	OPT_ALLOW_SOURCE,
	OPT_DENY_ACTION,
	OPT_DNS_ANY,
	OPT_RRL_QPS,
	OPT_RRL_BURST,
	OPT_RRL_SLIP,
	OPT_BLOCKLIST,
	OPT_BLOCK_ANSWER,
	OPT_QUERY_LOG,
	OPT_QUERY_LOG_SAMPLE,
	OPT_USER,
	/* mesh */
	OPT_MESH,
	OPT_OUTBOUND_LISTEN,
	OPT_INBOUND_LISTEN,
	OPT_HBONE_LISTEN,
	OPT_INBOUND_STRICT,
	OPT_TRUST_DOMAIN,
	OPT_LOCALITY,
	OPT_WORKLOAD_LABEL,
	OPT_MESH_CONNECT_TIMEOUT,
	OPT_MESH_IDLE_TIMEOUT,
	OPT_DRAIN_TIMEOUT,
	OPT_MESH_TRANSPORT,
	OPT_HBONE_PORT,
	OPT_HBONE_KEEPALIVE,
	OPT_HBONE_POOL_IDLE,
};

static const struct option long_opts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"xds-address", required_argument, NULL, OPT_XDS},
        {"dns-listen", required_argument, NULL, OPT_DNS_LISTEN},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"admin-allow-non-loopback", no_argument, NULL, OPT_ADMIN_ANY},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"cluster-domain", required_argument, NULL, OPT_DOMAIN},
        {"cluster", required_argument, NULL, OPT_CLUSTER},
        {"resolv-conf", required_argument, NULL, OPT_RESOLV},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"no-watch", no_argument, NULL, OPT_NO_WATCH},
        {"forward-unready", no_argument, NULL, OPT_FWD_UNREADY},
        {"reuseport", no_argument, NULL, OPT_REUSEPORT},
        {"dns-workers", required_argument, NULL, OPT_DNS_WORKERS},
        {"stub-zone", required_argument, NULL, OPT_STUB},
        {"upstream-parallel", no_argument, NULL, OPT_UP_PARALLEL},
        {"upstream-timeout", required_argument, NULL, OPT_UP_TIMEOUT},
        {"upstream-deadline", required_argument, NULL, OPT_UP_DEADLINE},
        {"upstream-max-concurrent", required_argument, NULL, OPT_UP_MAXC},
        {"so-mark", required_argument, NULL, OPT_SO_MARK},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
        {"cache-max-ttl", required_argument, NULL, OPT_CACHE_MAX_TTL},
        {"cache-min-ttl", required_argument, NULL, OPT_CACHE_MIN_TTL},
        {"serve-stale", required_argument, NULL, OPT_SERVE_STALE},
        {"stale-answer-timeout", required_argument, NULL, OPT_STALE_ANSWER_TIMEOUT},
        {"dnssec-validate", no_argument, NULL, OPT_DNSSEC_VALIDATE}, /* dnssec */
        {"trust-anchor", required_argument, NULL, OPT_TRUST_ANCHOR},
        {"allow-source", required_argument, NULL, OPT_ALLOW_SOURCE}, /* policy */
        {"deny-action", required_argument, NULL, OPT_DENY_ACTION},
        {"allow-non-loopback-listen", no_argument, NULL, OPT_DNS_ANY},
        {"rrl-qps", required_argument, NULL, OPT_RRL_QPS},
        {"rrl-burst", required_argument, NULL, OPT_RRL_BURST},
        {"rrl-slip", required_argument, NULL, OPT_RRL_SLIP},
        {"blocklist", required_argument, NULL, OPT_BLOCKLIST},
        {"block-answer", required_argument, NULL, OPT_BLOCK_ANSWER},
        {"query-log", required_argument, NULL, OPT_QUERY_LOG},
        {"query-log-sample", required_argument, NULL, OPT_QUERY_LOG_SAMPLE},
        {"user", required_argument, NULL, OPT_USER},
        {"xds-delta", no_argument, NULL, OPT_XDS_DELTA},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"status-listen", required_argument, NULL, OPT_STATUS_LISTEN},
        {"xds-tls", no_argument, NULL, OPT_XDS_TLS},
        {"xds-server-id", required_argument, NULL, OPT_XDS_SERVER_ID},
        {"mesh", no_argument, NULL, OPT_MESH}, /* mesh */
        {"outbound-listen", required_argument, NULL, OPT_OUTBOUND_LISTEN},
        {"inbound-listen", required_argument, NULL, OPT_INBOUND_LISTEN},
        {"hbone-listen", required_argument, NULL, OPT_HBONE_LISTEN},
        {"inbound-strict", no_argument, NULL, OPT_INBOUND_STRICT},
        {"trust-domain", required_argument, NULL, OPT_TRUST_DOMAIN},
        {"locality", required_argument, NULL, OPT_LOCALITY},
        {"workload-label", required_argument, NULL, OPT_WORKLOAD_LABEL},
        {"mesh-connect-timeout", required_argument, NULL, OPT_MESH_CONNECT_TIMEOUT},
        {"mesh-idle-timeout", required_argument, NULL, OPT_MESH_IDLE_TIMEOUT},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
        {"mesh-transport", required_argument, NULL, OPT_MESH_TRANSPORT},
        {"hbone-port", required_argument, NULL, OPT_HBONE_PORT},
        {"hbone-keepalive", required_argument, NULL, OPT_HBONE_KEEPALIVE},
        {"hbone-pool-idle", required_argument, NULL, OPT_HBONE_POOL_IDLE},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
};

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

/* Parses a decimal number in [lo, hi]; prints "bad --NAME" and returns -1 otherwise. */
static int parse_u32(const char *flag, const char *arg, unsigned long lo, unsigned long hi, uint32_t *out,
                     FILE *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < lo || v > hi) {
		fprintf(err, "aegis-proxy: bad --%s '%s' (%lu..%lu)\n", flag, arg, lo, hi);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* "company.local=10.0.0.2,10.0.0.3:5353" */
static int parse_stub(const char *arg, struct aegis_proxy_stub_zone *z, FILE *err)
{
	const char *eq = strchr(arg, '=');
	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(z->zone))
		goto bad;
	memcpy(z->zone, arg, (size_t)(eq - arg));
	z->zone[eq - arg] = '\0';
	z->n_servers = 0;
	const char *p = eq + 1;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char one[80];
		if (n == 0 || n >= sizeof(one) || z->n_servers == AEGIS_MAX_UPSTREAMS)
			goto bad;
		memcpy(one, p, n);
		one[n] = '\0';
		if (aegis_sockaddr_parse(one, 53, &z->servers[z->n_servers]) != 0)
			goto bad;
		z->n_servers++;
		p += n + (comma ? 1 : 0);
	}
	if (z->n_servers == 0)
		goto bad;
	return 0;
bad:
	fprintf(err,
	        "aegis-proxy: bad --stub-zone '%s' (want ZONE=ADDR[:PORT][,ADDR...], at most %d servers)\n",
	        arg, AEGIS_MAX_UPSTREAMS);
	return -1;
}

/* mesh: the mesh traffic flags; returns 0, 1 when c is not one of them, -1 on a bad value (printed). */
static int parse_mesh_opt(int c, const char *arg, struct aegis_proxy_options *o, FILE *err)
{
	switch (c) {
	case OPT_MESH: o->mesh = true; return 0;
	case OPT_OUTBOUND_LISTEN:
		if (o->n_outbound_listen == 2 ||
		    aegis_sockaddr_parse(arg, 15001, &o->outbound_listen[o->n_outbound_listen]) != 0) {
			fprintf(err, "aegis-proxy: bad --outbound-listen '%s' (want ADDR:PORT, at most 2)\n",
			        arg);
			return -1;
		}
		o->n_outbound_listen++;
		o->mesh = true;
		return 0;
	case OPT_INBOUND_LISTEN:
		if (o->n_inbound_listen == 2 ||
		    aegis_sockaddr_parse(arg, 15006, &o->inbound_listen[o->n_inbound_listen]) != 0) {
			fprintf(err, "aegis-proxy: bad --inbound-listen '%s' (want ADDR:PORT, at most 2)\n",
			        arg);
			return -1;
		}
		o->n_inbound_listen++;
		o->mesh = true;
		return 0;
	case OPT_HBONE_LISTEN:
		if (o->n_hbone_listen == 2 ||
		    aegis_sockaddr_parse(arg, 15008, &o->hbone_listen[o->n_hbone_listen]) != 0) {
			fprintf(err, "aegis-proxy: bad --hbone-listen '%s' (want ADDR:PORT, at most 2)\n",
			        arg);
			return -1;
		}
		o->n_hbone_listen++;
		return 0;
	case OPT_INBOUND_STRICT: o->inbound_strict = true; return 0;
	case OPT_TRUST_DOMAIN: o->trust_domain = arg; return 0;
	case OPT_LOCALITY: o->locality = arg; return 0;
	case OPT_WORKLOAD_LABEL: {
		const char *eq = strchr(arg, '=');
		size_t n = o->n_workload_labels;
		char(*kv)[128] = o->workload_label_buf[n];
		if (n == AEGIS_MAX_WORKLOAD_LABELS || eq == NULL || eq == arg || (size_t)(eq - arg) >= 128 ||
		    strlen(eq + 1) >= 128) {
			fprintf(err, "aegis-proxy: bad --workload-label '%s' (want KEY=VALUE, at most %d)\n",
			        arg, AEGIS_MAX_WORKLOAD_LABELS);
			return -1;
		}
		memcpy(kv[0], arg, (size_t)(eq - arg));
		kv[0][eq - arg] = '\0';
		snprintf(kv[1], 128, "%s", eq + 1);
		o->workload_labels[n] = (struct aegis_kv){.key = kv[0], .value = kv[1]};
		o->n_workload_labels++;
		return 0;
	}
	case OPT_MESH_CONNECT_TIMEOUT:
		return parse_u32("mesh-connect-timeout", arg, 1, 600000, &o->mesh_connect_timeout_ms, err);
	case OPT_MESH_IDLE_TIMEOUT:
		return parse_u32("mesh-idle-timeout", arg, 1, 86400000, &o->mesh_idle_timeout_ms, err);
	case OPT_DRAIN_TIMEOUT: return parse_u32("drain-timeout", arg, 0, 3600000, &o->drain_ms, err);
	case OPT_MESH_TRANSPORT:
		if (strcmp(arg, "hbone") == 0)
			o->mesh_transport = AEGIS_MESH_HBONE;
		else if (strcmp(arg, "direct") == 0)
			o->mesh_transport = AEGIS_MESH_DIRECT;
		else if (strcmp(arg, "auto") == 0)
			o->mesh_transport = AEGIS_MESH_AUTO;
		else {
			fprintf(err, "aegis-proxy: bad --mesh-transport '%s' (want hbone, direct or auto)\n",
			        arg);
			return -1;
		}
		return 0;
	case OPT_HBONE_PORT: {
		uint32_t v;
		if (parse_u32("hbone-port", arg, 1, 65535, &v, err) != 0)
			return -1;
		o->hbone_port = (uint16_t)v;
		return 0;
	}
	case OPT_HBONE_KEEPALIVE:
		return parse_u32("hbone-keepalive", arg, 100, 3600000, &o->hbone_keepalive_ms, err);
	case OPT_HBONE_POOL_IDLE:
		return parse_u32("hbone-pool-idle", arg, 100, 86400000, &o->hbone_pool_idle_ms, err);
	default: return 1;
	}
}

/* policy: the security flags; returns 0, 1 when c is not one of them, -1 on a bad value (printed). */
static int parse_policy_opt(int c, const char *arg, struct aegis_proxy_options *o, FILE *err)
{
	switch (c) {
	case OPT_ALLOW_SOURCE:
		if (o->n_allow_sources == AEGIS_POLICY_MAX_CIDRS ||
		    aegis_policy_cidr_parse(arg, &o->allow_sources[o->n_allow_sources]) != 0) {
			fprintf(err,
			        "aegis-proxy: bad --allow-source '%s' (want ADDR[/PREFIX], at most %d)\n",
			        arg, AEGIS_POLICY_MAX_CIDRS);
			return -1;
		}
		o->n_allow_sources++;
		return 0;
	case OPT_DENY_ACTION:
		if (strcmp(arg, "refused") != 0 && strcmp(arg, "drop") != 0) {
			fprintf(err, "aegis-proxy: bad --deny-action '%s' (refused or drop)\n", arg);
			return -1;
		}
		o->deny_drop = strcmp(arg, "drop") == 0;
		return 0;
	case OPT_DNS_ANY: o->dns_non_loopback_ok = true; return 0;
	case OPT_RRL_QPS: return parse_u32("rrl-qps", arg, 1, 1000000, &o->rrl_qps, err);
	case OPT_RRL_BURST: return parse_u32("rrl-burst", arg, 1, 1000000, &o->rrl_burst, err);
	case OPT_RRL_SLIP: return parse_u32("rrl-slip", arg, 0, 100, &o->rrl_slip, err);
	case OPT_BLOCKLIST: o->blocklist = arg; return 0;
	case OPT_BLOCK_ANSWER:
		if (strcmp(arg, "nxdomain") == 0) {
			o->block_answer = AEGIS_POLICY_BLOCK_NXDOMAIN;
		} else if (strcmp(arg, "refused") == 0) {
			o->block_answer = AEGIS_POLICY_BLOCK_REFUSED;
		} else {
			fprintf(err, "aegis-proxy: bad --block-answer '%s' (nxdomain or refused)\n", arg);
			return -1;
		}
		return 0;
	case OPT_QUERY_LOG: o->query_log = arg; return 0;
	case OPT_QUERY_LOG_SAMPLE: {
		char *end;
		errno = 0;
		double v = strtod(arg, &end);
		if (errno || end == arg || *end || !(v >= 0.0 && v <= 1.0)) {
			fprintf(err, "aegis-proxy: bad --query-log-sample '%s' (0..1)\n", arg);
			return -1;
		}
		o->query_log_sample = v;
		return 0;
	}
	case OPT_USER: o->user = arg; return 0;
	default: return 1;
	}
}

/* mesh */
size_t aegis_proxy_mesh_listen(const struct aegis_proxy_options *o, enum aegis_mesh_listener which,
                               struct sockaddr_storage out[2], bool *is_default)
{
	static const char *const defaults[][2] = {
	        [AEGIS_MESH_LISTEN_OUTBOUND] = {"127.0.0.1:15001", "[::1]:15001"},
	        [AEGIS_MESH_LISTEN_INBOUND] = {"0.0.0.0:15006", "[::]:15006"},
	        [AEGIS_MESH_LISTEN_HBONE] = {"0.0.0.0:15008", "[::]:15008"},
	};
	const struct sockaddr_storage *given = which == AEGIS_MESH_LISTEN_OUTBOUND  ? o->outbound_listen
	                                       : which == AEGIS_MESH_LISTEN_INBOUND ? o->inbound_listen
	                                                                            : o->hbone_listen;
	size_t n = which == AEGIS_MESH_LISTEN_OUTBOUND  ? o->n_outbound_listen
	           : which == AEGIS_MESH_LISTEN_INBOUND ? o->n_inbound_listen
	                                                : o->n_hbone_listen;
	*is_default = n == 0;
	if (n > 0) {
		memcpy(out, given, n * sizeof(*out));
		return n;
	}
	for (size_t i = 0; i < 2; i++)
		if (aegis_sockaddr_parse(defaults[which][i], 0, &out[i]) != 0)
			return 0; /* cannot happen: constant addresses */
	return 2;
}
/* end mesh */

enum aegis_proxy_options_result aegis_proxy_options_parse(int argc, char **argv,
                                                          struct aegis_proxy_options *o, FILE *out, FILE *err)
{
	memset(o, 0, sizeof(*o));
	o->cluster_domain = "cluster.local";
	o->resolv_conf = "/etc/resolv.conf";
	o->log_level = AEGIS_LOG_INFO;
	o->ttl = 30;
	o->watch = true;
	o->namespace_ = "";
	o->cluster = "";
	o->rrl_slip = 2;                   /* policy: BIND's and Knot's default */
	o->stale_answer_timeout_ms = 1800; /* policy: RFC 8767 section 5's suggestion */
	o->drain_ms = 5000;                /* policy: Istio's default terminationDrainDuration */
	o->query_log_sample = 1.0;         /* policy: an audit log logs everything unless told otherwise */
	if (aegis_sockaddr_parse("127.0.0.1:15000", 0, &o->admin) != 0)
		return AEGIS_OPTIONS_EXIT_USAGE;

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		int mrc = parse_mesh_opt(c, optarg, o, err); /* mesh */
		if (mrc < 0)
			return AEGIS_OPTIONS_EXIT_USAGE;
		if (mrc == 0)
			continue;
		int prc = parse_policy_opt(c, optarg, o, err); /* policy */
		if (prc < 0)
			return AEGIS_OPTIONS_EXIT_USAGE;
		if (prc == 0)
			continue;
		switch (c) {
		case OPT_CONFIG:
			if (o->n_config_paths == AEGIS_MAX_CONFIG_PATHS) {
				fprintf(err, "aegis-proxy: too many --config paths (max %d)\n",
				        AEGIS_MAX_CONFIG_PATHS);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			o->config_paths[o->n_config_paths++] = optarg;
			break;
		case OPT_XDS: o->xds_address = optarg; break;
		case OPT_XDS_DELTA: o->xds_delta = true; break;
		case OPT_NODE_ID: o->node_id = optarg; break;
		case OPT_DNS_LISTEN:
			if (o->n_dns_listen == AEGIS_DNS_MAX_LISTEN ||
			    aegis_sockaddr_parse(optarg, 53, &o->dns_listen[o->n_dns_listen]) != 0) {
				fprintf(err,
				        "aegis-proxy: bad --dns-listen '%s' (want ADDR:PORT, at most %d)\n",
				        optarg, AEGIS_DNS_MAX_LISTEN);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			o->n_dns_listen++;
			break;
		case OPT_ADMIN:
			if (aegis_sockaddr_parse(optarg, 15000, &o->admin) != 0) {
				fprintf(err, "aegis-proxy: bad --admin '%s' (want ADDR:PORT)\n", optarg);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			break;
		case OPT_ADMIN_ANY: o->admin_non_loopback_ok = true; break;
		case OPT_STATUS_LISTEN:
			if (aegis_sockaddr_parse(optarg, 15021, &o->status_listen) != 0) {
				fprintf(err, "aegis-proxy: bad --status-listen '%s' (want ADDR[:PORT])\n",
				        optarg);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			o->have_status_listen = true;
			break;
		case OPT_XDS_TLS: o->xds_tls = true; break;
		case OPT_XDS_SERVER_ID: o->xds_server_id = optarg; break;
		case OPT_NAMESPACE: o->namespace_ = optarg; break;
		case OPT_DOMAIN: o->cluster_domain = optarg; break;
		case OPT_CLUSTER: o->cluster = optarg; break;
		case OPT_RESOLV: o->resolv_conf = optarg; break;
		case OPT_UPSTREAM:
			if (o->n_upstreams == AEGIS_MAX_UPSTREAMS ||
			    aegis_sockaddr_parse(optarg, 53, &o->upstreams[o->n_upstreams]) != 0) {
				fprintf(err,
				        "aegis-proxy: bad --upstream '%s' (want ADDR[:PORT], at most %d)\n",
				        optarg, AEGIS_MAX_UPSTREAMS);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			o->n_upstreams++;
			break;
		case OPT_CERT_DIR: o->cert_dir = optarg; break;
		case OPT_LOG_LEVEL:
			if (aegis_log_parse_level(optarg, &o->log_level) != 0) {
				fprintf(err, "aegis-proxy: bad --log-level '%s' (debug, info, warn, error)\n",
				        optarg);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			break;
		case OPT_TTL:
			if (parse_u32("ttl", optarg, 0, 604800, &o->ttl, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_STUB:
			if (o->n_stub_zones == AEGIS_MAX_STUB_ZONES) {
				fprintf(err, "aegis-proxy: too many --stub-zone (max %d)\n",
				        AEGIS_MAX_STUB_ZONES);
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			if (parse_stub(optarg, &o->stub_zones[o->n_stub_zones], err) != 0)
				return AEGIS_OPTIONS_EXIT_USAGE;
			o->n_stub_zones++;
			break;
		case OPT_UP_PARALLEL: o->upstream_parallel = true; break;
		case OPT_UP_TIMEOUT:
			if (parse_u32("upstream-timeout", optarg, 10, 60000, &o->upstream_timeout_ms, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_UP_DEADLINE:
			if (parse_u32("upstream-deadline", optarg, 10, 120000, &o->upstream_deadline_ms, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_UP_MAXC:
			if (parse_u32("upstream-max-concurrent", optarg, 1, 1000000,
			              &o->upstream_max_concurrent, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_SO_MARK:
			if (parse_u32("so-mark", optarg, 1, UINT32_MAX, &o->so_mark, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_NO_CACHE: o->no_cache = true; break;
		case OPT_CACHE_SIZE:
			if (parse_u32("cache-size", optarg, 1, 10000000, &o->cache_size, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_CACHE_MAX_TTL:
			if (parse_u32("cache-max-ttl", optarg, 1, 604800, &o->cache_max_ttl, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_CACHE_MIN_TTL:
			if (parse_u32("cache-min-ttl", optarg, 0, 86400, &o->cache_min_ttl, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_SERVE_STALE:
			if (parse_u32("serve-stale", optarg, 0, 604800, &o->serve_stale, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_STALE_ANSWER_TIMEOUT:
			if (parse_u32("stale-answer-timeout", optarg, 0, 120000, &o->stale_answer_timeout_ms,
			              err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_DNSSEC_VALIDATE: o->dnssec_validate = true; break; /* dnssec */
		case OPT_TRUST_ANCHOR:
			if (o->n_trust_anchors == sizeof(o->trust_anchors) / sizeof(o->trust_anchors[0])) {
				fprintf(err, "aegis-proxy: too many --trust-anchor (max %zu)\n",
				        sizeof(o->trust_anchors) / sizeof(o->trust_anchors[0]));
				return AEGIS_OPTIONS_EXIT_USAGE;
			}
			o->trust_anchors[o->n_trust_anchors++] = optarg;
			break;
		case OPT_NO_WATCH: o->watch = false; break;
		case OPT_FWD_UNREADY: o->forward_unready = true; break;
		case OPT_REUSEPORT: o->reuseport = true; break;
		case OPT_DNS_WORKERS:
			if (parse_u32("dns-workers", optarg, 1, 64, &o->dns_workers, err))
				return AEGIS_OPTIONS_EXIT_USAGE;
			break;
		case OPT_HELP: fputs(usage, out); return AEGIS_OPTIONS_EXIT_OK;
		case OPT_VERSION:
			fprintf(out, "aegis-proxy %s\n", AEGIS_VERSION);
			return AEGIS_OPTIONS_EXIT_OK;
		default:
			fprintf(err, "aegis-proxy: unknown or incomplete option '%s'\n%s", argv[optind - 1],
			        usage);
			return AEGIS_OPTIONS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(err, "aegis-proxy: unexpected argument '%s'\n", argv[optind]);
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (o->n_config_paths == 0 && o->xds_address == NULL) {
		fprintf(err, "aegis-proxy: give --config PATH or --xds-address HOST:PORT\n%s", usage);
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	/* dnssec: validation without an anchor could only ever say "indeterminate": refuse it */
	if (o->dnssec_validate && o->n_trust_anchors == 0) {
		fprintf(err, "aegis-proxy: --dnssec-validate needs at least one --trust-anchor FILE\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (!o->dnssec_validate && o->n_trust_anchors > 0) {
		fprintf(err, "aegis-proxy: --trust-anchor is only used with --dnssec-validate\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (o->n_config_paths > 0 && o->xds_address != NULL) {
		fprintf(err, "aegis-proxy: --config and --xds-address are exclusive\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (o->xds_tls && (o->xds_address == NULL || o->cert_dir == NULL)) {
		fprintf(err, "aegis-proxy: --xds-tls needs --xds-address and --cert-dir\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (o->dns_workers > 1 && (o->blocklist != NULL || o->query_log != NULL || o->dnssec_validate)) {
		fprintf(err,
		        "aegis-proxy: --dns-workers above 1 does not work with --blocklist, --query-log or "
		        "--dnssec-validate yet\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (o->xds_server_id != NULL && !o->xds_tls) {
		fprintf(err, "aegis-proxy: --xds-server-id is for --xds-tls\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	if (!is_loopback(&o->admin) && !o->admin_non_loopback_ok) {
		fprintf(err, "aegis-proxy: --admin must be a loopback address unless "
		             "--admin-allow-non-loopback\n");
		return AEGIS_OPTIONS_EXIT_USAGE;
	}
	/* policy: a DNS listener outside loopback answers the network, not just the pod: say so explicitly.
	 */
	for (size_t i = 0; i < o->n_dns_listen && !o->dns_non_loopback_ok; i++) {
		if (!is_loopback(&o->dns_listen[i])) {
			fprintf(err, "aegis-proxy: --dns-listen must be a loopback address unless "
			             "--allow-non-loopback-listen\n");
			return AEGIS_OPTIONS_EXIT_USAGE;
		}
	}
	if (o->n_dns_listen == 0) {
		if (aegis_sockaddr_parse("127.0.0.1:15053", 0, &o->dns_listen[0]) != 0 ||
		    aegis_sockaddr_parse("[::1]:15053", 0, &o->dns_listen[1]) != 0)
			return AEGIS_OPTIONS_EXIT_USAGE;
		o->n_dns_listen = 2;
	}
	return AEGIS_OPTIONS_RUN;
}
