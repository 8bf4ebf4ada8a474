/* Growing a byte string that is read as text: HTTP bodies (aegis-inject over HTTP/1.1 and h2, aegisctl's
 * admin client) and the Kubernetes watch stream (aegis-xds). One helper instead of four copies. */
#ifndef AEGIS_BUF_H
#define AEGIS_BUF_H

#include <stddef.h>

#include "aegis/err.h"

/* Appends n bytes of data to *buf (*len bytes used of *cap; all three 0/NULL to start) and keeps a NUL
 * after them, so the content can be read as a string. The capacity starts at 16 KiB, doubles, and never
 * exceeds max + 1, where max is the longest content allowed. Returns 0, AEGIS_ELIMIT (*len + n > max:
 * nothing appended) or AEGIS_ENOMEM (nothing appended). The caller frees *buf. */
int aegis_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n, size_t max) AEGIS_WUR;

#endif
