/* /dns/lookup: answers a name from the table as a client would be answered, without sending a packet:
 * builds the query in memory, runs aegis_answer() on it and turns the answer into JSON (rcode, flags,
 * every record with name/type/ttl/data, and whether the proxy would forward the query instead). */
#ifndef AEGIS_ADMIN_LOOKUP_H
#define AEGIS_ADMIN_LOOKUP_H

#include <jansson.h>

#include "dns_answer.h"

/* name: presentation form, or an IPv4/IPv6 address (then the type defaults to PTR and the reverse
 * name is asked). type: "A", "aaaa", "SRV", "TYPE65", "65" ...; NULL = A. Returns the HTTP status (200,
 * or 400 for a bad name or type, with {"error": ...}) and sets *out to a new JSON reference (NULL only
 * when out of memory). */
int aegis_admin_lookup(const struct aegis_answer_ctx *ctx, const char *name, const char *type, json_t **out);

/* Parses a record type name or number. Returns the type, or -1. */
int aegis_admin_lookup_type(const char *s);
/* The mnemonic of a type ("A", "SRV"), or NULL for types without one here. */
const char *aegis_admin_lookup_type_name(unsigned type);

#endif
