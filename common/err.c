/* aegis_strerror and diagnostics: see include/aegis/err.h. */
#include "aegis/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const messages[] = {
        [0] = "success",
        [-AEGIS_ENOMEM] = "out of memory",
        [-AEGIS_EINVAL] = "invalid argument",
        [-AEGIS_EPARSE] = "malformed input",
        [-AEGIS_EIO] = "input/output error",
        [-AEGIS_ELIMIT] = "limit exceeded",
        [-AEGIS_ENOTFOUND] = "not found",
        [-AEGIS_EEXIST] = "already exists",
        [-AEGIS_EAGAIN] = "try again",
        [-AEGIS_ESYS] = "system call failed",
        [-AEGIS_ETIMEDOUT] = "timed out",
        [-AEGIS_EPROTO] = "protocol error",
        [-AEGIS_ESPACE] = "no space in buffer",
};

const char *aegis_strerror(int err)
{
	if (err > 0 || err <= AEGIS_ERR_MIN_ || messages[-err] == NULL)
		return "unknown error";
	return messages[-err];
}

int aegis_diag_set(struct aegis_diag *diag, int err, const char *file, int line, int column, const char *fmt,
                   ...)
{
	if (diag == NULL)
		return err;
	snprintf(diag->file, sizeof(diag->file), "%s", file ? file : "");
	diag->line = line;
	diag->column = column;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
	va_end(ap);
	return err;
}

const char *aegis_diag_str(const struct aegis_diag *diag, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (diag->file[0] && diag->line > 0 && diag->column > 0)
		snprintf(buf, len, "%s:%d:%d: %s", diag->file, diag->line, diag->column, diag->msg);
	else if (diag->file[0] && diag->line > 0)
		snprintf(buf, len, "%s:%d: %s", diag->file, diag->line, diag->msg);
	else if (diag->file[0])
		snprintf(buf, len, "%s: %s", diag->file, diag->msg);
	else
		snprintf(buf, len, "%s", diag->msg);
	return buf;
}
