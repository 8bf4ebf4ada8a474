/* /dns/lookup through the real answer path: see admin_lookup.h. */
#include "admin_lookup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns_name.h"

#define LOOKUP_ID 0xae15

static const struct {
	const char *name;
	unsigned type;
} types[] = {
        {"A", AEGIS_TYPE_A},     {"NS", AEGIS_TYPE_NS},     {"CNAME", AEGIS_TYPE_CNAME},
        {"SOA", AEGIS_TYPE_SOA}, {"PTR", AEGIS_TYPE_PTR},   {"MX", AEGIS_TYPE_MX},
        {"TXT", AEGIS_TYPE_TXT}, {"AAAA", AEGIS_TYPE_AAAA}, {"SRV", AEGIS_TYPE_SRV},
        {"OPT", AEGIS_TYPE_OPT}, {"ANY", AEGIS_TYPE_ANY},
};

static const char *const rcode_names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
static const char *const match_names[] = {"none", "exact", "wildcard", "alias"};
static const char *const source_names[AEGIS_SRC_COUNT_] = {"table", "error", "upstream", "cache", "dropped"};

const char *aegis_admin_lookup_type_name(unsigned type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (types[i].type == type)
			return types[i].name;
	}
	return NULL;
}

int aegis_admin_lookup_type(const char *s)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcasecmp(s, types[i].name) == 0)
			return (int)types[i].type;
	}
	const char *num = strncasecmp(s, "TYPE", 4) == 0 ? s + 4 : s;
	char *end;
	errno = 0;
	unsigned long v = strtoul(num, &end, 10);
	if (errno || end == num || *end != '\0' || v == 0 || v > 65535 || num[0] == '-' || num[0] == '+')
		return -1;
	return (int)v;
}

static void type_str(unsigned type, char *buf, size_t len)
{
	const char *n = aegis_admin_lookup_type_name(type);
	if (n)
		snprintf(buf, len, "%s", n);
	else
		snprintf(buf, len, "TYPE%u", type);
}

/* An address asked without a type means "who is this": the reverse name, as `dig -x` does. */
static bool reverse_name(const char *ip, char *out, size_t len)
{
	uint8_t a[16];
	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(out, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return true;
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return false;
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 15; i >= 0 && o + 4 < len; i--) {
		out[o++] = hex[a[i] & 0xf];
		out[o++] = '.';
		out[o++] = hex[a[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, len - o, "ip6.arpa");
	return true;
}

static json_t *rdata_json(const uint8_t *msg, size_t len, size_t off, unsigned type, size_t rdlen)
{
	char buf[1100];
	uint8_t name[AEGIS_DNS_NAME_BUF];
	size_t next;
	int n;
	switch (type) {
	case AEGIS_TYPE_A:
	case AEGIS_TYPE_AAAA:
		if (rdlen != (type == AEGIS_TYPE_A ? 4u : 16u) ||
		    inet_ntop(type == AEGIS_TYPE_A ? AF_INET : AF_INET6, msg + off, buf, sizeof(buf)) == NULL)
			break;
		return json_string(buf);
	case AEGIS_TYPE_CNAME:
	case AEGIS_TYPE_PTR:
	case AEGIS_TYPE_NS:
		n = aegis_wire_read_name(msg, len, off, name, &next);
		if (n < 0 || aegis_dns_name_to_str(name, (size_t)n, buf, sizeof(buf)) < 0)
			break;
		return json_string(buf);
	case AEGIS_TYPE_SRV: {
		char target[1024];
		if (rdlen < 7)
			break;
		n = aegis_wire_read_name(msg, len, off + 6, name, &next);
		if (n < 0 || aegis_dns_name_to_str(name, (size_t)n, target, sizeof(target)) < 0)
			break;
		snprintf(buf, sizeof(buf), "%u %u %u %s", aegis_wire_u16(msg + off),
		         aegis_wire_u16(msg + off + 2), aegis_wire_u16(msg + off + 4), target);
		return json_string(buf);
	}
	default: {
		/* RFC 3597 generic form. */
		size_t o = (size_t)snprintf(buf, sizeof(buf), "\\# %zu ", rdlen);
		for (size_t i = 0; i < rdlen && o + 3 < sizeof(buf); i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%02x", msg[off + i]);
		return json_string(buf);
	}
	}
	return json_string("?");
}

/* Reads count records at *off into a JSON array (OPT pseudo-records are left out). NULL when malformed. */
static json_t *section_json(const uint8_t *msg, size_t len, size_t *off, unsigned count)
{
	json_t *arr = json_array();
	for (unsigned i = 0; i < count; i++) {
		uint8_t name[AEGIS_DNS_NAME_BUF];
		char pres[1100], tname[16];
		size_t next;
		int n = aegis_wire_read_name(msg, len, *off, name, &next);
		if (n < 0 || next + 10 > len)
			goto bad;
		unsigned type = aegis_wire_u16(msg + next);
		uint32_t ttl = aegis_wire_u32(msg + next + 4);
		size_t rdlen = aegis_wire_u16(msg + next + 8);
		size_t rd = next + 10;
		if (rd + rdlen > len)
			goto bad;
		*off = rd + rdlen;
		if (type == AEGIS_TYPE_OPT)
			continue;
		if (aegis_dns_name_to_str(name, (size_t)n, pres, sizeof(pres)) < 0)
			goto bad;
		type_str(type, tname, sizeof(tname));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:o}", "name", pres, "type", tname, "ttl",
		                                     (json_int_t)ttl, "data",
		                                     rdata_json(msg, len, rd, type, rdlen)));
	}
	return arr;
bad:
	json_decref(arr);
	return NULL;
}

static json_t *flags_json(uint16_t flags)
{
	static const struct {
		uint16_t bit;
		const char *name;
	} bits[] = {{AEGIS_DNS_QR, "qr"}, {AEGIS_DNS_AA, "aa"}, {AEGIS_DNS_TC, "tc"}, {AEGIS_DNS_RD, "rd"},
	            {AEGIS_DNS_RA, "ra"}, {AEGIS_DNS_AD, "ad"}, {AEGIS_DNS_CD, "cd"}};
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (flags & bits[i].bit)
			json_array_append_new(arr, json_string(bits[i].name));
	}
	return arr;
}

static int error(json_t **out, const char *msg)
{
	*out = json_pack("{s:s}", "error", msg);
	return 400;
}

int aegis_admin_lookup(const struct aegis_answer_ctx *ctx, const char *name, const char *type, json_t **out)
{
	char rev[128];
	int qtype = AEGIS_TYPE_A;
	bool is_ip = reverse_name(name, rev, sizeof(rev));
	if (type != NULL && (qtype = aegis_admin_lookup_type(type)) < 0)
		return error(out, "unknown record type");
	if (is_ip && (type == NULL || qtype == AEGIS_TYPE_PTR)) {
		qtype = AEGIS_TYPE_PTR;
		name = rev;
	}
	/* The query a stub resolver would send: RD set, one question, no EDNS; answered with TCP's size
	 * limit so that nothing is cut. */
	uint8_t pkt[AEGIS_DNS_HEADER + AEGIS_DNS_NAME_BUF + 4];
	int nlen = aegis_dns_name_from_str(name, pkt + AEGIS_DNS_HEADER);
	if (nlen <= 1)
		return error(out, "bad name");
	memset(pkt, 0, AEGIS_DNS_HEADER);
	pkt[0] = LOOKUP_ID >> 8;
	pkt[1] = LOOKUP_ID & 0xff;
	pkt[2] = AEGIS_DNS_RD >> 8;
	pkt[5] = 1;
	size_t len = AEGIS_DNS_HEADER + (size_t)nlen;
	pkt[len++] = (uint8_t)(qtype >> 8);
	pkt[len++] = (uint8_t)qtype;
	pkt[len++] = 0;
	pkt[len++] = AEGIS_CLASS_IN;

	uint8_t *ans = malloc(AEGIS_DNS_TCP_MAX);
	if (ans == NULL)
		return (*out = NULL), 500;
	struct aegis_dns_query q;
	struct aegis_answer_info info;
	size_t alen = 0;
	enum aegis_answer_action act =
	        aegis_answer(ctx, pkt, len, AEGIS_DNS_TCP_MAX, ans, AEGIS_DNS_TCP_MAX, &alen, &q, &info);
	char qname[1100], tname[16];
	if (aegis_dns_name_to_str(pkt + AEGIS_DNS_HEADER, (size_t)nlen, qname, sizeof(qname)) < 0)
		snprintf(qname, sizeof(qname), "%s", name);
	type_str((unsigned)qtype, tname, sizeof(tname));
	json_t *o = json_pack("{s:s,s:s,s:s,s:b}", "name", qname, "type", tname, "match",
	                      match_names[info.match <= AEGIS_MATCH_ALIAS ? info.match : 0], "forwarded",
	                      act == AEGIS_ANSWER_FORWARD);
	if (act == AEGIS_ANSWER_FORWARD) {
		json_object_set_new(o, "source", json_string("upstream"));
		json_object_set_new(o, "note",
		                    json_string("not answered from the table: the proxy forwards this "
		                                "query upstream (or answers REFUSED without a forwarder)"));
	} else if (act == AEGIS_ANSWER_DROP || alen < AEGIS_DNS_HEADER) {
		json_object_set_new(o, "source", json_string("dropped"));
	} else {
		uint16_t flags = aegis_wire_u16(ans + 2);
		unsigned rc = AEGIS_DNS_RCODE(flags);
		char rcs[16];
		if (info.rcode == AEGIS_RCODE_BADVERS)
			snprintf(rcs, sizeof(rcs), "BADVERS");
		else if (rc < sizeof(rcode_names) / sizeof(rcode_names[0]))
			snprintf(rcs, sizeof(rcs), "%s", rcode_names[rc]);
		else
			snprintf(rcs, sizeof(rcs), "RCODE%u", rc);
		json_object_set_new(o, "source", json_string(source_names[info.source]));
		json_object_set_new(o, "rcode", json_string(rcs));
		json_object_set_new(o, "flags", flags_json(flags));
		size_t off = AEGIS_DNS_HEADER;
		for (unsigned i = 0; i < aegis_wire_u16(ans + 4); i++) {
			uint8_t skip[AEGIS_DNS_NAME_BUF];
			size_t next;
			if (aegis_wire_read_name(ans, alen, off, skip, &next) < 0)
				break;
			off = next + 4;
		}
		const char *secs[] = {"answer", "authority", "additional"};
		for (int sct = 0; sct < 3; sct++) {
			json_t *arr = section_json(ans, alen, &off, aegis_wire_u16(ans + 6 + 2 * sct));
			json_object_set_new(o, secs[sct], arr ? arr : json_array());
			if (arr == NULL)
				break;
		}
	}
	free(ans);
	*out = o;
	return 200;
}
