/* JSON-lines logger: see include/aegis/log.h. */
#include "aegis/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "aegis/err.h"

enum aegis_log_level aegis_log_level_current = AEGIS_LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

/* A line is built in a fixed buffer and written with one write(2), so lines from different threads never
 * interleave. An over-long line is cut and still valid JSON: pieces go in whole or not at all, a string
 * value that does not fit is cut between characters and closed, a field without room for its value is
 * dropped, and nothing is added after the cut. */
#define LINE_MAX_BYTES 4096

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
	size_t reserve; /* bytes kept for closers: the open string's quote */
	bool cut;
};

static bool put(struct line *l, const char *s, size_t n)
{
	size_t used = l->len + l->reserve + 2; /* "}\n" always fit */
	if (l->cut || used > sizeof(l->buf) || n > sizeof(l->buf) - used) {
		l->cut = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool putf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return n > 0 && put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Bytes in the UTF-8 sequence that starts with lead (1 for ASCII and for stray bytes), so that a cut
 * never splits a character. */
static size_t utf8_len(const unsigned char *p)
{
	size_t want = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
	size_t n = 1;
	while (n < want && (p[n] & 0xc0) == 0x80)
		n++;
	return n;
}

static bool put_json_str(struct line *l, const char *s)
{
	l->reserve++; /* the closing quote */
	if (!put(l, "\"", 1)) {
		l->reserve--;
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && !l->cut; p++) {
		switch (*p) {
		case '"': put(l, "\\\"", 2); break;
		case '\\': put(l, "\\\\", 2); break;
		case '\n': put(l, "\\n", 2); break;
		case '\r': put(l, "\\r", 2); break;
		case '\t': put(l, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				putf(l, "\\u%04x", *p);
			} else {
				size_t n = utf8_len(p);
				put(l, (const char *)p, n);
				p += n - 1;
			}
		}
	}
	l->reserve--;
	l->buf[l->len++] = '"';
	return !l->cut;
}

void aegis_log_emit(enum aegis_log_level lvl, const char *msg, const struct aegis_log_kv *kvs)
{
	struct line l;
	l.len = 0;
	l.reserve = 0;
	l.cut = false;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char when[40];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	put(&l, "{\"ts\":\"", 7);
	put(&l, when, strlen(when));
	putf(&l, ".%03ldZ\",\"level\":", ts.tv_nsec / 1000000);
	put_json_str(&l, lvl <= AEGIS_LOG_OFF ? names[lvl] : "?");
	put(&l, ",\"msg\":", 7);
	put_json_str(&l, msg);
	for (const struct aegis_log_kv *kv = kvs; kv && kv->type != AEGIS_KV_END && !l.cut; kv++) {
		size_t mark = l.len;
		if (!put(&l, ",", 1) || !put_json_str(&l, kv->key) || !put(&l, ":", 1)) {
			l.len = mark; /* no room for the field's name: drop the field */
			break;
		}
		bool ok;
		size_t value = l.len;
		switch (kv->type) {
		case AEGIS_KV_STR:
			put_json_str(&l, kv->v.s), ok = l.len > value;
			break; /* maybe cut, closed */
		case AEGIS_KV_INT: ok = putf(&l, "%lld", kv->v.i); break;
		case AEGIS_KV_DBL: ok = putf(&l, "%.6g", kv->v.d); break;
		case AEGIS_KV_BOOL: ok = put(&l, kv->v.i ? "true" : "false", kv->v.i ? 4 : 5); break;
		default: ok = put(&l, "null", 4); break;
		}
		if (!ok)
			l.len = mark;
	}
	l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	ssize_t w = write(log_fd, l.buf, l.len);
	(void)w; /* nowhere left to report a failed log write */
}

int aegis_log_parse_level(const char *s, enum aegis_log_level *out)
{
	for (int i = 0; i <= AEGIS_LOG_OFF; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum aegis_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = AEGIS_LOG_WARN;
		return 0;
	}
	return AEGIS_EINVAL;
}

const char *aegis_log_level_name(enum aegis_log_level lvl)
{
	return lvl <= AEGIS_LOG_OFF ? names[lvl] : "?";
}

/* A dlopen'ed module's own copy of the level (aegis_log_mirror_level), or NULL. */
static enum aegis_log_level *mirror;

void aegis_log_set_level(enum aegis_log_level lvl)
{
	aegis_log_level_current = lvl;
	if (mirror != NULL)
		*mirror = lvl;
}

void aegis_log_mirror_level(enum aegis_log_level *copy)
{
	mirror = copy;
	if (copy != NULL)
		*copy = aegis_log_level_current;
}

void aegis_log_set_fd(int fd)
{
	log_fd = fd < 0 ? STDERR_FILENO : fd;
}
