/* The message rewrites that DNSSEC validation needs around the validator (proxy/dnssec.h): the upstream
 * query gains EDNS DO, and the upstream's answer is cut back to what the client asked for. Sans-I/O:
 * bytes in, bytes out; ldns parses and re-encodes the answer. */
#ifndef AEGIS_DNSSEC_MSG_H
#define AEGIS_DNSSEC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"

/* Rewrites an upstream answer for a client: RRSIG records (and NSEC/NSEC3 outside the answer section)
 * removed when the client did not set DO (RFC 4035 3.2.1), the OPT record removed when the client sent
 * none (else its DO bit set to the client's and its options dropped), AD cleared. Returns the length and
 * sets *out to the new message (malloc'd: the caller frees it; ldns builds it anyway, so the forwarder
 * needs no 64 KiB buffer of its own per answer), or returns AEGIS_EPARSE / AEGIS_ESPACE (longer than a
 * DNS message may be) / AEGIS_ENOMEM with *out NULL. */
int aegis_dnssec_msg_strip(const uint8_t *msg, size_t len, bool client_edns, bool client_do,
                           uint8_t **out) AEGIS_WUR;

/* Adds EDNS DO to a query: sets the DO bit of its OPT record, or appends an OPT (payload 1232, DO)
 * when it has none. out must hold len + 11 bytes. Returns the new length or AEGIS_EPARSE. */
int aegis_dnssec_msg_add_do(const uint8_t *q, size_t len, uint8_t *out, size_t outcap) AEGIS_WUR;

#endif
