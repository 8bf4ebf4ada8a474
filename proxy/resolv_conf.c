/* resolv.conf parsing: see resolv_conf.h.
 *
 * Follows glibc's resolv/res_init.c behaviour, since that is what the pod's own resolver did with the
 * same file: a keyword counts only at the start of a line and followed by a blank; lines starting with
 * '#' or ';' are comments; search and domain replace each other (last wins); nameservers past the limit
 * are ignored; option values are capped as glibc caps them (ndots 15, timeout 30, attempts 5). Where
 * glibc would read a malformed option value as 0 (atoi), this parser keeps the default instead. A word
 * starting with '#' or ';' ends the line, so trailing comments work on every keyword. */
#include "resolv_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NDOTS      15
#define MAX_TIMEOUT    30
#define MAX_ATTEMPTS   5
#define MAX_FILE_BYTES (1u << 20)

/* A cursor over one line. Words are runs of bytes that are not blanks; NUL counts as a blank so that a
 * word handed to inet_pton can never hide bytes behind a terminator. */
struct line {
	const char *p;
	size_t len;
	size_t pos;
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\0';
}

/* Next word of the line, or false at the end of the line or at a comment. */
static bool next_word(struct line *l, const char **w, size_t *wlen)
{
	while (l->pos < l->len && blank(l->p[l->pos]))
		l->pos++;
	if (l->pos == l->len || l->p[l->pos] == '#' || l->p[l->pos] == ';')
		return false;
	size_t start = l->pos;
	while (l->pos < l->len && !blank(l->p[l->pos]))
		l->pos++;
	*w = l->p + start;
	*wlen = l->pos - start;
	return true;
}

static bool keyword(const struct line *l, const char *kw)
{
	size_t n = strlen(kw);
	return l->len > n && memcmp(l->p, kw, n) == 0 && blank(l->p[n]);
}

/* "N" -> value capped at max; false when not a plain decimal number. */
static bool parse_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	if (len == 0)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v <= max)
			v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v > max ? max : v;
	return true;
}

/* glibc's set_scope_id: an interface name, else a number; anything else leaves the scope 0. */
static uint32_t scope_id(const char *s)
{
	if (*s == '\0')
		return 0;
	unsigned idx = if_nametoindex(s);
	if (idx != 0)
		return idx;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX || s[0] < '0' || s[0] > '9')
		return 0;
	return (uint32_t)v;
}

static int add_nameserver(struct aegis_resolv_conf *rc, const char *w, size_t wlen)
{
	char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	if (wlen >= sizeof(tmp))
		return AEGIS_EPARSE;
	memcpy(tmp, w, wlen);
	tmp[wlen] = '\0';
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, tmp, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(53);
	} else {
		char *pct = strchr(tmp, '%');
		if (pct != NULL)
			*pct = '\0';
		if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) != 1)
			return AEGIS_EPARSE;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(53);
		if (pct != NULL)
			sin6->sin6_scope_id = scope_id(pct + 1);
	}
	if (rc->n_ns < AEGIS_RESOLV_MAX_NS)
		rc->ns[rc->n_ns++] = ss;
	return 0;
}

static void set_search(struct aegis_resolv_conf *rc, struct line *l, bool one)
{
	const char *w;
	size_t wlen;
	rc->n_search = 0;
	while (next_word(l, &w, &wlen)) {
		if (wlen >= sizeof(rc->search[0]))
			continue; /* longer than any domain name: no resolver could use it */
		if (rc->n_search < AEGIS_CONFIG_MAX_SEARCH) {
			memcpy(rc->search[rc->n_search], w, wlen);
			rc->search[rc->n_search][wlen] = '\0';
			rc->n_search++;
		}
		if (one)
			break; /* "domain" takes one name; glibc ignores the rest */
	}
}

static void set_options(struct aegis_resolv_conf *rc, struct line *l)
{
	const char *w;
	size_t wlen;
	while (next_word(l, &w, &wlen)) {
		if (wlen > 6 && memcmp(w, "ndots:", 6) == 0)
			(void)parse_uint(w + 6, wlen - 6, MAX_NDOTS, &rc->ndots);
		else if (wlen > 8 && memcmp(w, "timeout:", 8) == 0)
			(void)parse_uint(w + 8, wlen - 8, MAX_TIMEOUT, &rc->timeout);
		else if (wlen > 9 && memcmp(w, "attempts:", 9) == 0)
			(void)parse_uint(w + 9, wlen - 9, MAX_ATTEMPTS, &rc->attempts);
		else if (wlen == 6 && memcmp(w, "rotate", 6) == 0)
			rc->rotate = true;
		/* other options (edns0, single-request, ...) do not change what the proxy does */
	}
}

int aegis_resolv_conf_parse(const char *name, const char *buf, size_t len, struct aegis_resolv_conf *out,
                            struct aegis_diag *diag)
{
	memset(out, 0, sizeof(*out));
	out->ndots = 1;
	out->timeout = 5;
	out->attempts = 2;
	int lineno = 0;
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		struct line l = {.p = buf + pos, .len = end - pos, .pos = 0};
		pos = end + 1;
		lineno++;
		if (l.len == 0 || l.p[0] == '#' || l.p[0] == ';')
			continue;
		const char *w;
		size_t wlen;
		if (keyword(&l, "nameserver")) {
			l.pos = 10;
			if (!next_word(&l, &w, &wlen))
				continue; /* glibc skips an empty nameserver line */
			if (add_nameserver(out, w, wlen) != 0)
				return aegis_diag_set(diag, AEGIS_EPARSE, name, lineno, 0,
				                      "nameserver \"%.*s\" is not an IP address",
				                      (int)(wlen > 64 ? 64 : wlen), w);
		} else if (keyword(&l, "search")) {
			l.pos = 6;
			set_search(out, &l, false);
		} else if (keyword(&l, "domain")) {
			l.pos = 6;
			set_search(out, &l, true);
		} else if (keyword(&l, "options")) {
			l.pos = 7;
			set_options(out, &l);
		}
	}
	return 0;
}

int aegis_resolv_conf_load(const char *path, struct aegis_resolv_conf *out, struct aegis_diag *diag)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;
		(void)aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "cannot open: %s", strerror(e));
		errno = e;
		return AEGIS_EIO;
	}
	int rc;
	char *buf = malloc(MAX_FILE_BYTES + 1);
	if (buf == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	size_t len = fread(buf, 1, MAX_FILE_BYTES + 1, f);
	if (ferror(f)) {
		int e = errno;
		rc = aegis_diag_set(diag, AEGIS_EIO, path, 0, 0, "read error: %s", strerror(e));
		errno = e;
		goto out;
	}
	if (len > MAX_FILE_BYTES) {
		rc = aegis_diag_set(diag, AEGIS_EPARSE, path, 0, 0, "larger than %u bytes", MAX_FILE_BYTES);
		goto out;
	}
	rc = aegis_resolv_conf_parse(path, buf, len, out, diag);
out:
	free(buf);
	fclose(f);
	return rc;
}
