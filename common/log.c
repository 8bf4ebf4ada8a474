/* JSON-lines logger: see include/aegis/log.h. */
#include "aegis/log.h"

#include <stdarg.h>
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
 * interleave. Over-long lines are cut and still closed as valid JSON. */
#define LINE_MAX_BYTES 4096

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 3 - l->len; /* keep space for "}\n" */
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_json_str(struct line *l, const char *s)
{
	put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': put(l, "\\\"", 2); break;
		case '\\': put(l, "\\\\", 2); break;
		case '\n': put(l, "\\n", 2); break;
		case '\r': put(l, "\\r", 2); break;
		case '\t': put(l, "\\t", 2); break;
		default:
			if (*p < 0x20)
				putf(l, "\\u%04x", *p);
			else
				put(l, (const char *)p, 1);
		}
	}
	put(l, "\"", 1);
}

void aegis_log_emit(enum aegis_log_level lvl, const char *msg, const struct aegis_log_kv *kvs)
{
	struct line l;
	l.len = 0;
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
	for (const struct aegis_log_kv *kv = kvs; kv && kv->type != AEGIS_KV_END; kv++) {
		put(&l, ",", 1);
		put_json_str(&l, kv->key);
		put(&l, ":", 1);
		switch (kv->type) {
		case AEGIS_KV_STR: put_json_str(&l, kv->v.s); break;
		case AEGIS_KV_INT: putf(&l, "%lld", kv->v.i); break;
		case AEGIS_KV_DBL: putf(&l, "%.6g", kv->v.d); break;
		case AEGIS_KV_BOOL: put(&l, kv->v.i ? "true" : "false", kv->v.i ? 4 : 5); break;
		default: break;
		}
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

void aegis_log_set_level(enum aegis_log_level lvl)
{
	aegis_log_level_current = lvl;
}

void aegis_log_set_fd(int fd)
{
	log_fd = fd < 0 ? STDERR_FILENO : fd;
}
