/* One error vocabulary for every Aegis module: 0 is success, failures are negative aegis_err values.
 * Functions that can fail return int and are marked AEGIS_WUR so a caller cannot drop the result. */
#ifndef AEGIS_ERR_H
#define AEGIS_ERR_H

#include <stddef.h>

#define AEGIS_WUR __attribute__((warn_unused_result))

enum aegis_err {
	AEGIS_OK = 0,
	AEGIS_ENOMEM = -1,    /* allocation failed or an arena cap was reached */
	AEGIS_EINVAL = -2,    /* invalid argument or configuration value */
	AEGIS_EPARSE = -3,    /* malformed input (YAML, DNS message, protobuf) */
	AEGIS_EIO = -4,       /* read/write failure; errno has the detail */
	AEGIS_ELIMIT = -5,    /* a fixed limit (limits.h) would be exceeded */
	AEGIS_ENOTFOUND = -6, /* no such name, file or resource */
	AEGIS_EEXIST = -7,    /* duplicate where uniqueness is required */
	AEGIS_EAGAIN = -8,    /* try again later (would block, not ready) */
	AEGIS_ESYS = -9,      /* a system call failed; errno has the detail */
	AEGIS_ETIMEDOUT = -10,
	AEGIS_EPROTO = -11, /* peer violated the protocol */
	AEGIS_ESPACE = -12, /* output buffer too small */
	AEGIS_ERR_MIN_ = -13
};

/* Returns a static, human-readable string for an aegis_err value (never NULL). */
const char *aegis_strerror(int err);

/* Where and why an input was rejected: filled by loaders so that start-up can stop with
 * "file:line: reason" and a rejected update can be reported the same way. */
struct aegis_diag {
	char file[256];
	int line;   /* 1-based; 0 when unknown */
	int column; /* 1-based; 0 when unknown */
	char msg[256];
};

/* Fills diag (if not NULL) with printf-style text; file may be NULL. Returns err for chaining:
 * `return aegis_diag_set(d, AEGIS_EPARSE, path, line, col, "bad port %s", s);` */
int aegis_diag_set(struct aegis_diag *diag, int err, const char *file, int line, int column, const char *fmt,
                   ...) __attribute__((format(printf, 6, 7)));

/* Formats "file:line:column: msg" (omitting unknown parts) into buf; returns buf. */
const char *aegis_diag_str(const struct aegis_diag *diag, char *buf, size_t len);

#endif
