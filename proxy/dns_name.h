/* Domain names in wire format: length-prefixed labels ending with the root byte 0. Inside Aegis, names
 * that are compared or hashed are kept lower case; the bytes a client sent keep their case (0x20). */
#ifndef AEGIS_DNS_NAME_H
#define AEGIS_DNS_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "aegis/limits.h"

/* A domain name in wire format (length-prefixed labels ending with the root byte 0), lower case. */
struct aegis_dns_name {
	const uint8_t *name;
	uint8_t len; /* including the root byte; at most 255 */
};
/* Converts a presentation name ("Foo.Example.com" or "foo.example.com.") to a lower-case wire name in
 * out. Returns the wire length (with the root byte) or AEGIS_EINVAL (empty or over-long label, name
 * over 255 bytes). "." and "" are the root (length 1). Escapes (\.) are not interpreted. */
int aegis_dns_name_from_str(const char *s, uint8_t out[AEGIS_DNS_NAME_BUF]) AEGIS_WUR;

/* Writes the presentation form with a trailing dot ("foo.example.com.") into out, escaping bytes
 * outside [-_a-zA-Z0-9*] as \DDD. Returns the string length or AEGIS_ESPACE. */
int aegis_dns_name_to_str(const uint8_t *wire, size_t len, char *out, size_t outlen) AEGIS_WUR;

/* ASCII lower-casing of one byte (DNS is case-insensitive only in ASCII, RFC 4343). */
static inline uint8_t aegis_dns_lower(uint8_t c)
{
	return (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* Number of labels (the root not counted). */
unsigned aegis_dns_name_labels(const uint8_t *wire, size_t len);

/* Case-insensitive equality of two uncompressed wire names. */
bool aegis_dns_name_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* 32-bit hash of a lower-case wire name (FNV-1a; the table and the cache use the same one). */
static inline uint32_t aegis_dns_name_hash(const uint8_t *lname, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= lname[i];
		h *= 16777619u;
	}
	return h;
}

#endif
