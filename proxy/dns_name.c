/* Wire-format name helpers: see dns_name.h. */
#include "dns_name.h"

#include <stdio.h>
#include <string.h>

int aegis_dns_name_from_str(const char *s, uint8_t out[AEGIS_DNS_NAME_BUF])
{
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0) {
		out[0] = 0;
		return 1;
	}
	size_t o = 0;
	size_t i = 0;
	while (i <= n) {
		size_t start = i;
		while (i < n && s[i] != '.')
			i++;
		size_t lab = i - start;
		if (lab == 0 || lab > 63 || o + 1 + lab + 1 > AEGIS_DNS_MAX_NAME)
			return AEGIS_EINVAL;
		out[o++] = (uint8_t)lab;
		for (size_t k = 0; k < lab; k++)
			out[o++] = aegis_dns_lower((uint8_t)s[start + k]);
		i++; /* skip the dot (or step past the end) */
	}
	out[o++] = 0;
	return (int)o;
}

int aegis_dns_name_to_str(const uint8_t *wire, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	size_t i = 0;
	if (outlen < 2)
		return AEGIS_ESPACE;
	if (len == 0 || wire[0] == 0) {
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	while (i < len && wire[i] != 0) {
		uint8_t lab = wire[i++];
		if (lab > 63 || i + lab > len)
			return AEGIS_EINVAL;
		for (uint8_t k = 0; k < lab; k++) {
			uint8_t c = wire[i + k];
			int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
			if (plain) {
				if (o + 1 >= outlen)
					return AEGIS_ESPACE;
				out[o++] = (char)c;
			} else {
				if (o + 4 >= outlen)
					return AEGIS_ESPACE;
				snprintf(out + o, 5, "\\%03u", c);
				o += 4;
			}
		}
		i += lab;
		if (o + 1 >= outlen)
			return AEGIS_ESPACE;
		out[o++] = '.';
	}
	out[o] = '\0';
	return (int)o;
}

unsigned aegis_dns_name_labels(const uint8_t *wire, size_t len)
{
	unsigned n = 0;
	size_t i = 0;
	while (i < len && wire[i] != 0) {
		i += (size_t)wire[i] + 1;
		n++;
	}
	return n;
}

bool aegis_dns_name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		if (aegis_dns_lower(a[i]) != aegis_dns_lower(b[i]))
			return false;
	}
	return true;
}
