/* Rule generation and clean-up scripts for aegis-iptables: see capture_rules.h and docs/capture.md.
 *
 * The rules are written in the order and spelling iptables-save prints them ("-p tcp -m tcp --dport"), so
 * that generated text, golden files and a live iptables-save can be compared by eye. */
#include "capture_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A growing text buffer with a hard cap; the first failure sticks and is reported once at the end. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > AEGIS_CAPTURE_TEXT_MAX) {
		b->err = AEGIS_ELIMIT;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = AEGIS_ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Appends a string literal (its length is known at compile time). */
#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		b->err = b->err ? b->err : AEGIS_ELIMIT;
		return;
	}
	put(b, line, (size_t)n);
}

/* Hands the text to the caller, or frees it on failure. */
static int finish(struct buf *b, char **out, size_t *len)
{
	if (b->err == 0 && b->p == NULL)
		PUT_LIT(b, "");
	if (b->err) {
		free(b->p);
		*out = NULL;
		*len = 0;
		return b->err;
	}
	*out = b->p;
	*len = b->len;
	return 0;
}

static bool any_of_family(const struct aegis_capture_cidr *v, size_t n, int family)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i].family == family)
			return true;
	}
	return false;
}

static bool dns_active(const struct aegis_capture_opts *o, int family)
{
	if (o->capture_dns == AEGIS_CAPTURE_DNS_ALL)
		return true;
	return o->capture_dns == AEGIS_CAPTURE_DNS_RESOLV &&
	       any_of_family(o->nameservers, o->n_nameservers, family);
}

static bool tcp_active(const struct aegis_capture_opts *o, int family)
{
	return o->capture_tcp && (o->include_all || any_of_family(o->include, o->n_include, family));
}

/* The "who is the proxy" matches, each followed by the rest of a rule: uid, gid, then the mark if set. */
static void proxy_rules(struct buf *b, const struct aegis_capture_opts *o, const char *chain,
                        const char *before, const char *after)
{
	putf(b, "-A %s %s-m owner --uid-owner %u %s\n", chain, before, o->proxy_uid, after);
	putf(b, "-A %s %s-m owner --gid-owner %u %s\n", chain, before, o->proxy_gid, after);
	if (o->has_mark)
		putf(b, "-A %s %s-m mark --mark 0x%x %s\n", chain, before, (unsigned)o->mark, after);
}

static void render_nat(struct buf *b, const struct aegis_capture_opts *o, int family)
{
	bool dns = dns_active(o, family);
	bool tcp = tcp_active(o, family);
	char c[64];
	if (!dns && !tcp && !o->inbound)
		return;

	PUT_LIT(b, "*nat\n");
	if (o->inbound)
		PUT_LIT(b, ":AEGIS_INBOUND - [0:0]\n:AEGIS_IN_REDIRECT - [0:0]\n");
	if (dns || tcp)
		PUT_LIT(b, ":AEGIS_OUTPUT - [0:0]\n");
	if (dns)
		PUT_LIT(b, ":AEGIS_DNS - [0:0]\n");
	if (tcp)
		PUT_LIT(b, ":AEGIS_REDIRECT - [0:0]\n");

	/* Inbound: everything that arrives over TCP goes to the inbound listener, except HBONE (the proxy's
	 * own mTLS port, which must reach it unchanged) and the ports the user excluded. */
	if (o->inbound) {
		PUT_LIT(b, "-A PREROUTING -p tcp -j AEGIS_INBOUND\n");
		putf(b, "-A AEGIS_INBOUND -p tcp -m tcp --dport %u -j RETURN\n", o->hbone_port);
		for (size_t i = 0; i < o->n_exclude_in_ports; i++)
			putf(b, "-A AEGIS_INBOUND -p tcp -m tcp --dport %u -j RETURN\n",
			     o->exclude_in_ports[i]);
		PUT_LIT(b, "-A AEGIS_INBOUND -p tcp -j AEGIS_IN_REDIRECT\n");
		putf(b, "-A AEGIS_IN_REDIRECT -p tcp -j REDIRECT --to-ports %u\n", o->inbound_port);
	}
	if (!dns && !tcp)
		goto out;

	/* Outbound. The proxy's own traffic returns first, whatever it is: its upstream DNS queries and its
	 * connections to peers would otherwise come straight back to it (a loop). */
	PUT_LIT(b, "-A OUTPUT -j AEGIS_OUTPUT\n");
	proxy_rules(b, o, "AEGIS_OUTPUT", "", "-j RETURN");
	/* DNS is matched before the loopback exemption, so that a resolver on 127.0.0.x is captured too. */
	if (dns) {
		PUT_LIT(b, "-A AEGIS_OUTPUT -p udp -m udp --dport 53 -j AEGIS_DNS\n");
		PUT_LIT(b, "-A AEGIS_OUTPUT -p tcp -m tcp --dport 53 -j AEGIS_DNS\n");
	}
	if (tcp) {
		/* Containers of a pod talk to each other over loopback; that is not mesh traffic. */
		PUT_LIT(b, "-A AEGIS_OUTPUT -o lo -j RETURN\n");
		for (size_t i = 0; i < o->n_exclude; i++) {
			if (o->exclude[i].family == family)
				putf(b, "-A AEGIS_OUTPUT -d %s -j RETURN\n",
				     aegis_capture_cidr_str(&o->exclude[i], c, sizeof(c)));
		}
		for (size_t i = 0; i < o->n_exclude_out_ports; i++)
			putf(b, "-A AEGIS_OUTPUT -p tcp -m tcp --dport %u -j RETURN\n",
			     o->exclude_out_ports[i]);
		if (o->include_all) {
			PUT_LIT(b, "-A AEGIS_OUTPUT -p tcp -j AEGIS_REDIRECT\n");
		} else {
			for (size_t i = 0; i < o->n_include; i++) {
				if (o->include[i].family == family)
					putf(b, "-A AEGIS_OUTPUT -d %s -p tcp -j AEGIS_REDIRECT\n",
					     aegis_capture_cidr_str(&o->include[i], c, sizeof(c)));
			}
		}
	}
	if (dns) {
		/* REDIRECT of a locally generated packet rewrites the destination to 127.0.0.1 (::1), which
		 * is where the DNS listener is bound. */
		static const char *const protos[] = {"udp", "tcp"};
		for (size_t p = 0; p < 2; p++) {
			if (o->capture_dns == AEGIS_CAPTURE_DNS_ALL) {
				putf(b, "-A AEGIS_DNS -p %s -j REDIRECT --to-ports %u\n", protos[p],
				     o->dns_port);
				continue;
			}
			for (size_t i = 0; i < o->n_nameservers; i++) {
				if (o->nameservers[i].family == family)
					putf(b, "-A AEGIS_DNS -d %s -p %s -j REDIRECT --to-ports %u\n",
					     aegis_capture_cidr_str(&o->nameservers[i], c, sizeof(c)),
					     protos[p], o->dns_port);
			}
		}
	}
	if (tcp)
		putf(b, "-A AEGIS_REDIRECT -p tcp -j REDIRECT --to-ports %u\n", o->outbound_port);
out:
	PUT_LIT(b, "COMMIT\n");
}

/* Conntrack zones for UDP DNS (raw table, before conntrack sees the packet). The first CT target that
 * matches wins, so the proxy's own flows are classified before the application's. In resolv mode every rule
 * names a nameserver: flows to other servers are never redirected, so they stay in the default zone, both
 * ways, whoever sends them. */
static void render_raw(struct buf *b, const struct aegis_capture_opts *o, int family)
{
	if (!o->dns_zones || !dns_active(o, family))
		return;
	bool all = o->capture_dns == AEGIS_CAPTURE_DNS_ALL;
	size_t n = all ? 1 : o->n_nameservers;
	char c[64], sel[96], after[32];
	PUT_LIT(b, "*raw\n:AEGIS_DNS_CT_OUT - [0:0]\n:AEGIS_DNS_CT_IN - [0:0]\n");
	PUT_LIT(b, "-A PREROUTING -p udp -j AEGIS_DNS_CT_IN\n");
	PUT_LIT(b, "-A OUTPUT -p udp -j AEGIS_DNS_CT_OUT\n");
	/* The proxy's upstream queries. */
	snprintf(after, sizeof(after), "-j CT --zone %d", AEGIS_CAPTURE_ZONE_UPSTREAM);
	for (size_t i = 0; i < n; i++) {
		if (!all && o->nameservers[i].family != family)
			continue;
		snprintf(sel, sizeof(sel), "%s%s%s-p udp -m udp --dport 53 ", all ? "" : "-d ",
		         all ? "" : aegis_capture_cidr_str(&o->nameservers[i], c, sizeof(c)), all ? "" : " ");
		proxy_rules(b, o, "AEGIS_DNS_CT_OUT", sel, after);
	}
	/* The proxy's answers to the application, from the DNS listener's port. */
	snprintf(after, sizeof(after), "-j CT --zone %d", AEGIS_CAPTURE_ZONE_APP);
	putf(b, "-A AEGIS_DNS_CT_OUT -p udp -m udp --sport %u -m owner --uid-owner %u %s\n", o->dns_port,
	     o->proxy_uid, after);
	putf(b, "-A AEGIS_DNS_CT_OUT -p udp -m udp --sport %u -m owner --gid-owner %u %s\n", o->dns_port,
	     o->proxy_gid, after);
	/* The application's queries (everyone else's, which the nat table redirects). */
	for (size_t i = 0; i < n; i++) {
		if (all)
			putf(b, "-A AEGIS_DNS_CT_OUT -p udp -m udp --dport 53 -j CT --zone %d\n",
			     AEGIS_CAPTURE_ZONE_APP);
		else if (o->nameservers[i].family == family)
			putf(b, "-A AEGIS_DNS_CT_OUT -d %s -p udp -m udp --dport 53 -j CT --zone %d\n",
			     aegis_capture_cidr_str(&o->nameservers[i], c, sizeof(c)),
			     AEGIS_CAPTURE_ZONE_APP);
	}
	/* Upstream answers coming back in, to the proxy's flows. */
	for (size_t i = 0; i < n; i++) {
		if (all)
			putf(b, "-A AEGIS_DNS_CT_IN -p udp -m udp --sport 53 -j CT --zone %d\n",
			     AEGIS_CAPTURE_ZONE_UPSTREAM);
		else if (o->nameservers[i].family == family)
			putf(b, "-A AEGIS_DNS_CT_IN -s %s -p udp -m udp --sport 53 -j CT --zone %d\n",
			     aegis_capture_cidr_str(&o->nameservers[i], c, sizeof(c)),
			     AEGIS_CAPTURE_ZONE_UPSTREAM);
	}
	PUT_LIT(b, "COMMIT\n");
}

int aegis_capture_render(const struct aegis_capture_opts *o, int family, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (family != AF_INET && family != AF_INET6)
		return AEGIS_EINVAL;
	struct buf b = {0};
	putf(&b, "# aegis-iptables: %s capture rules, for %s --noflush\n",
	     family == AF_INET ? "IPv4" : "IPv6",
	     family == AF_INET ? "iptables-restore" : "ip6tables-restore");
	render_nat(&b, o, family);
	render_raw(&b, o, family);
	return finish(&b, out, len);
}

/* Line iteration over a text that may or may not end with a newline. */
struct line {
	const char *s;
	size_t n;
};

static bool next_line(const char **p, const char *end, struct line *l)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	l->s = *p;
	l->n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	if (l->n > 0 && l->s[l->n - 1] == '\r')
		l->n--;
	*p = nl ? nl + 1 : end;
	return true;
}

static bool starts_with(const struct line *l, const char *prefix)
{
	size_t n = strlen(prefix);
	return l->n >= n && memcmp(l->s, prefix, n) == 0;
}

/* The first word after skip bytes (a chain name). */
static struct line word_at(const struct line *l, size_t skip)
{
	struct line w = {l->s + skip, 0};
	while (skip + w.n < l->n && l->s[skip + w.n] != ' ')
		w.n++;
	return w;
}

static bool is_own(const struct line *w)
{
	size_t n = sizeof(AEGIS_CAPTURE_CHAIN_PREFIX) - 1;
	return w->n > n && memcmp(w->s, AEGIS_CAPTURE_CHAIN_PREFIX, n) == 0;
}

/* Whether a "-A CHAIN ..." line jumps or goes to an AEGIS_* chain. */
static bool jumps_to_own(const struct line *l)
{
	for (size_t i = 0; i + 4 <= l->n; i++) {
		if (l->s[i] == ' ' && l->s[i + 1] == '-' && (l->s[i + 2] == 'j' || l->s[i + 2] == 'g') &&
		    l->s[i + 3] == ' ') {
			struct line w = word_at(l, i + 4);
			if (is_own(&w))
				return true;
		}
	}
	return false;
}

/* The body of the "*table" section of text (between the "*table" line and its COMMIT). */
static bool find_section(const char *text, size_t len, const char *table, const char **body,
                         const char **body_end)
{
	const char *p = text, *end = text + len;
	struct line l;
	size_t tn = strlen(table);
	while (next_line(&p, end, &l)) {
		if (l.n == tn + 1 && l.s[0] == '*' && memcmp(l.s + 1, table, tn) == 0) {
			*body = p;
			while (next_line(&p, end, &l)) {
				if (l.n == 6 && memcmp(l.s, "COMMIT", 6) == 0) {
					*body_end = l.s;
					return true;
				}
			}
			*body_end = end;
			return true;
		}
	}
	return false;
}

/* Whether the section [body, body_end) declares chain w (":NAME ..."). */
static bool declares(const char *body, const char *body_end, const struct line *w)
{
	const char *p = body;
	struct line l;
	while (body && next_line(&p, body_end, &l)) {
		if (l.n > w->n + 1 && l.s[0] == ':' && memcmp(l.s + 1, w->s, w->n) == 0 &&
		    l.s[w->n + 1] == ' ')
			return true;
	}
	return false;
}

static const char *const tables[] = {"raw", "mangle", "nat", "filter", "security"};

static void script_table(struct buf *b, const char *table, const char *saved, size_t saved_len,
                         const char *rules, size_t rules_len)
{
	const char *sb = NULL, *se = NULL, *rb = NULL, *re = NULL;
	bool have_saved = saved && find_section(saved, saved_len, table, &sb, &se);
	bool have_rules = rules && find_section(rules, rules_len, table, &rb, &re);
	size_t start = b->len;
	bool any = false;
	struct line l;
	const char *p;

	putf(b, "*%s\n", table);
	if (have_saved) {
		/* Jumps from other chains first: a chain cannot be deleted while something refers to it. */
		for (p = sb; next_line(&p, se, &l);) {
			if (!starts_with(&l, "-A "))
				continue;
			struct line chain = word_at(&l, 3);
			if (!is_own(&chain) && jumps_to_own(&l)) {
				PUT_LIT(b, "-D");
				put(b, l.s + 2, l.n - 2);
				PUT_LIT(b, "\n");
				any = true;
			}
		}
		for (p = sb; next_line(&p, se, &l);) {
			struct line chain = word_at(&l, 1);
			if (l.s[0] == ':' && is_own(&chain)) {
				putf(b, "-F %.*s\n", (int)chain.n, chain.s);
				any = true;
			}
		}
		for (p = sb; next_line(&p, se, &l);) {
			struct line chain = word_at(&l, 1);
			if (l.s[0] == ':' && is_own(&chain) && !(have_rules && declares(rb, re, &chain)))
				putf(b, "-X %.*s\n", (int)chain.n, chain.s);
		}
	}
	if (have_rules) {
		for (p = rb; next_line(&p, re, &l);) {
			if (l.n == 0 || l.s[0] == '#')
				continue;
			put(b, l.s, l.n);
			PUT_LIT(b, "\n");
			any = true;
		}
	}
	if (!any) {
		b->len = start; /* nothing for this table: drop the header */
		if (b->p)
			b->p[b->len] = '\0';
		return;
	}
	PUT_LIT(b, "COMMIT\n");
}

int aegis_capture_script(const char *saved, size_t saved_len, const char *rules, size_t rules_len, char **out,
                         size_t *len)
{
	*out = NULL;
	*len = 0;
	if (rules) {
		/* Every table in rules must be one we know, or its lines would be silently dropped. */
		const char *p = rules, *end = rules + rules_len;
		struct line l;
		while (next_line(&p, end, &l)) {
			if (l.n == 0 || l.s[0] != '*')
				continue;
			bool known = false;
			for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
				known = known || (l.n - 1 == strlen(tables[t]) &&
				                  memcmp(l.s + 1, tables[t], l.n - 1) == 0);
			if (!known)
				return AEGIS_EPARSE;
		}
	}
	struct buf b = {0};
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		script_table(&b, tables[t], saved, saved_len, rules, rules_len);
	return finish(&b, out, len);
}

size_t aegis_capture_count_rules(const char *saved, size_t len, bool own)
{
	size_t n = 0;
	const char *p = saved, *end = saved + len;
	struct line l;
	while (next_line(&p, end, &l)) {
		if (!starts_with(&l, "-A "))
			continue;
		struct line chain = word_at(&l, 3);
		if (!own || is_own(&chain) || jumps_to_own(&l))
			n++;
	}
	return n;
}

enum aegis_capture_backend aegis_capture_backend_from_version(const char *text, size_t len)
{
	struct line l;
	const char *p = text;
	if (!next_line(&p, text + len, &l))
		return AEGIS_CAPTURE_BACKEND_AUTO;
	if (!starts_with(&l, "iptables v") && !starts_with(&l, "ip6tables v"))
		return AEGIS_CAPTURE_BACKEND_AUTO;
	if (memmem(l.s, l.n, "(nf_tables)", 11))
		return AEGIS_CAPTURE_BACKEND_NFT;
	return AEGIS_CAPTURE_BACKEND_LEGACY;
}
