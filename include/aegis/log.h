/* Structured logging: one JSON object per line on stderr,
 *   {"ts":"2026-11-25T18:50:39.123Z","level":"info","msg":"listening","addr":"127.0.0.1:15053"}
 * Fields are typed key/value pairs so values are always escaped correctly:
 *   AEGIS_LOG(AEGIS_LOG_INFO, "listening", LKV_S("addr", a), LKV_I("fd", fd));
 * A disabled level costs one integer compare; nothing on the query path logs below debug. */
#ifndef AEGIS_LOG_H
#define AEGIS_LOG_H

#include <stdio.h>

enum aegis_log_level {
	AEGIS_LOG_DEBUG = 0,
	AEGIS_LOG_INFO = 1,
	AEGIS_LOG_WARN = 2,
	AEGIS_LOG_ERROR = 3,
	AEGIS_LOG_OFF = 4
};

enum aegis_log_kv_type { AEGIS_KV_END = 0, AEGIS_KV_STR, AEGIS_KV_INT, AEGIS_KV_DBL, AEGIS_KV_BOOL };

struct aegis_log_kv {
	const char *key;
	enum aegis_log_kv_type type;
	union {
		const char *s;
		long long i;
		double d;
	} v;
};

#define LKV_S(k, x)                                                                                          \
	{                                                                                                    \
		.key = (k), .type = AEGIS_KV_STR, .v.s = (x)                                                 \
	}
#define LKV_I(k, x)                                                                                          \
	{                                                                                                    \
		.key = (k), .type = AEGIS_KV_INT, .v.i = (long long)(x)                                      \
	}
#define LKV_D(k, x)                                                                                          \
	{                                                                                                    \
		.key = (k), .type = AEGIS_KV_DBL, .v.d = (double)(x)                                         \
	}
#define LKV_B(k, x)                                                                                          \
	{                                                                                                    \
		.key = (k), .type = AEGIS_KV_BOOL, .v.i = (x) ? 1 : 0                                        \
	}

extern enum aegis_log_level aegis_log_level_current;

#define AEGIS_LOG(lvl, msg, ...)                                                                             \
	do {                                                                                                 \
		if ((lvl) >= aegis_log_level_current)                                                        \
			aegis_log_emit((lvl), (msg),                                                         \
			               (const struct aegis_log_kv[]){__VA_ARGS__ __VA_OPT__(, ){0}});        \
	} while (0)

/* Writes one line; kvs ends with an entry whose type is AEGIS_KV_END. Thread-safe (one write(2)). */
void aegis_log_emit(enum aegis_log_level lvl, const char *msg, const struct aegis_log_kv *kvs);

/* Parses "debug|info|warn|warning|error|off" (case-insensitive). Returns 0 or AEGIS_EINVAL. */
int aegis_log_parse_level(const char *s, enum aegis_log_level *out);
const char *aegis_log_level_name(enum aegis_log_level lvl);
void aegis_log_set_level(enum aegis_log_level lvl);

/* Keeps *copy equal to the level from now on (set at once, then by every aegis_log_set_level): the level
 * variable of a module loaded with dlopen that links its own log.c (proxy/ads_loader.c). One copy; NULL
 * stops. */
void aegis_log_mirror_level(enum aegis_log_level *copy);

/* Redirects output (tests); fd -1 restores stderr. */
void aegis_log_set_fd(int fd);

#endif
