/* libFuzzer harness for the blocklist parser (proxy/dns_policy.c): any bytes a blocklist file can hold must
 * parse or fail with "file:line: reason". A parsed list is installed in a policy and asked about a few
 * names, including every rule-looking line of the input itself, so the hash table's lookups run over the
 * names that were just inserted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_name.h"
#include "dns_policy.h"

/* Wire form of a dotted name (lower case, no wildcard): 0 on success. */
static int to_wire(const char *s, size_t len, uint8_t *out, size_t *olen)
{
	size_t o = 0, start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			size_t l = i - start;
			if (l == 0 && i != len)
				return -1;
			if (l > 63 || o + l + 2 > AEGIS_DNS_NAME_BUF)
				return -1;
			if (l == 0)
				break;
			out[o++] = (uint8_t)l;
			for (size_t k = start; k < i; k++)
				out[o++] = (uint8_t)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]);
			start = i + 1;
		}
	}
	out[o++] = 0;
	*olen = o;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aegis_blocklist *bl = NULL;
	struct aegis_diag diag = {0};
	int rc = aegis_policy_blocklist_parse((const char *)data, size, "fuzz", &bl, &diag);
	if (rc != 0) {
		if (bl != NULL || diag.msg[0] == '\0')
			abort();
		return 0;
	}
	struct aegis_policy_opts o;
	memset(&o, 0, sizeof(o));
	struct aegis_policy *p = NULL;
	if (aegis_policy_new(&o, &p) != 0)
		abort();
	size_t rules = aegis_policy_blocklist_rules(bl);
	aegis_policy_set_blocklist(p, bl);
	if (aegis_policy_stats(p)->blocklist_rules != rules)
		abort();
	uint8_t w[AEGIS_DNS_NAME_BUF];
	size_t wl;
	static const char *const fixed[] = {"example.com", "a.b.example.com", "com", ""};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (to_wire(fixed[i], strlen(fixed[i]), w, &wl) == 0)
			(void)aegis_policy_check_name(p, w, wl);
	const char *s = (const char *)data, *end = s + size;
	for (int lines = 0; s < end && lines < 256; lines++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl ? nl : end;
		const char *b = s;
		while (b < e && (*b == '!' || *b == '*' || *b == '.' || *b == ' ' || *b == '\t'))
			b++;
		const char *q = e;
		while (q > b && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r'))
			q--;
		if (to_wire(b, (size_t)(q - b), w, &wl) == 0)
			(void)aegis_policy_check_name(p, w, wl);
		s = e + 1;
	}
	aegis_policy_free(p);
	return 0;
}
