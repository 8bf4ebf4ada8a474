/* include/aegis/buf.h */
#include "aegis/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int aegis_buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n, size_t max)
{
	if (n > max || *len > max - n)
		return AEGIS_ELIMIT;
	size_t need = *len + n + 1;
	if (need > *cap) {
		size_t c = *cap ? *cap : 16384;
		while (c < need)
			c *= 2;
		if (max < SIZE_MAX && c > max + 1)
			c = max + 1;
		char *nb = realloc(*buf, c);
		if (nb == NULL)
			return AEGIS_ENOMEM;
		*buf = nb;
		*cap = c;
	}
	if (n > 0)
		memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}
