/* DNSSEC validation of forwarded answers (RFC 4033-4035, 5155): a chain of trust from configured trust
 * anchors (DS or DNSKEY records, unbound's trust-anchor-file format) down through DS/DNSKEY to the
 * signer of an answer, with ldns doing the record handling and the crypto. Design and limits:
 * docs/security.md ("DNSSEC validation").
 *
 * The validator performs no I/O. When it needs a DNSKEY or DS record set it asks its owner (the
 * forwarder) through struct aegis_dnssec_fetcher and continues when the owner hands the answer back with
 * aegis_dnssec_fetch_done(); validated DNSKEY sets, proven DS sets and proven zone cuts are kept in a
 * bounded key cache until their TTL runs out, so a warm cache validates without upstream queries. Time
 * (wall-clock seconds: signature validity is absolute time) is passed in.
 *
 * Not thread-safe: one validator per loop. */
#ifndef AEGIS_DNSSEC_H
#define AEGIS_DNSSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"

enum aegis_dnssec_result {
	AEGIS_DNSSEC_SECURE = 0,    /* every record set chains to an anchor: AD may be set */
	AEGIS_DNSSEC_INSECURE,      /* proven unsigned (a delegation without DS below an anchor) */
	AEGIS_DNSSEC_BOGUS,         /* should be signed but is not, or does not verify: SERVFAIL */
	AEGIS_DNSSEC_INDETERMINATE, /* under no trust anchor: passed through without AD */
	AEGIS_DNSSEC_N_RESULTS
};

/* "secure", "insecure", "bogus", "indeterminate" (the metric label values). */
const char *aegis_dnssec_result_name(enum aegis_dnssec_result r);

struct aegis_dnssec_opts {
	const char *const *anchor_files; /* zone-file syntax: DS and/or DNSKEY records; at least one file */
	size_t n_anchor_files;
	size_t max_keys;      /* key cache entries, default 1024 (oldest dropped first) */
	size_t max_jobs;      /* validations in progress, default 1024; beyond: bogus (SERVFAIL) */
	unsigned max_fetches; /* upstream fetches one validation may make, default 16 */
	uint32_t max_key_ttl; /* seconds a key cache entry lives at most, default 3600 */
	uint32_t bogus_ttl;   /* seconds a failed DNSKEY/DS proof is remembered, default 5 */
};

struct aegis_dnssec;
struct aegis_dnssec_job;

/* The owner's side: start() sends query (a complete DNS query with RD, CD and EDNS DO set; copied) and
 * later calls aegis_dnssec_fetch_done(job, ...) exactly once, never from inside start() itself, unless
 * cancel(owner, *handle) ran first. start() returns 0 and *handle, or a negative aegis_err (then
 * fetch_done never runs and the validation ends bogus). */
struct aegis_dnssec_fetcher {
	int (*start)(void *owner, const uint8_t *query, size_t len, struct aegis_dnssec_job *job,
	             void **handle);
	void (*cancel)(void *owner, void *handle);
	void *owner;
};

/* Loads the anchors and creates a validator. Returns 0, or AEGIS_EINVAL (no anchor file, no anchor in
 * them), AEGIS_EIO (unreadable file), AEGIS_EPARSE (a bad record, or a record that is not DS/DNSKEY:
 * diag has file:line), AEGIS_ENOMEM. Free with aegis_dnssec_free(). */
int aegis_dnssec_new(const struct aegis_dnssec_opts *opts, struct aegis_dnssec **out,
                     struct aegis_diag *diag) AEGIS_WUR;

/* Sets the fetcher (copied). Must be called before the first validation that needs a fetch. */
void aegis_dnssec_set_fetcher(struct aegis_dnssec *v, const struct aegis_dnssec_fetcher *f);

/* Cancels every validation in progress (their callbacks never fire, their fetches are cancelled) and
 * frees. NULL is a no-op. */
void aegis_dnssec_free(struct aegis_dnssec *v);

/* The end of a validation that did not finish inside aegis_dnssec_validate(). */
typedef void (*aegis_dnssec_done_cb)(void *ctx, enum aegis_dnssec_result r);

/* Validates msg (an upstream answer, NOERROR or NXDOMAIN, to a query with DO set; copied). Returns 0 with
 * *result set when the key cache sufficed (cb never fires), 1 when fetches are needed: cb fires exactly
 * once later (from inside aegis_dnssec_fetch_done()) unless aegis_dnssec_cancel(v, *job) runs first.
 * Returns AEGIS_EPARSE for a message ldns cannot parse, AEGIS_ELIMIT when max_jobs are in progress.
 * now is wall-clock seconds. A bogus result is counted and logged (once per name and type). */
int aegis_dnssec_validate(struct aegis_dnssec *v, const uint8_t *msg, size_t len, int64_t now,
                          aegis_dnssec_done_cb cb, void *ctx, struct aegis_dnssec_job **job,
                          enum aegis_dnssec_result *result) AEGIS_WUR;

/* Stops a validation in progress: its callback never fires. */
void aegis_dnssec_cancel(struct aegis_dnssec *v, struct aegis_dnssec_job *job);

/* The answer to the job's fetch (msg NULL or not parseable: the fetch failed). Continues the
 * validation: further fetches, or the job's callback. answer bytes are only read during the call. */
void aegis_dnssec_fetch_done(struct aegis_dnssec_job *job, const uint8_t *msg, size_t len, int64_t now);

struct aegis_dnssec_stats {
	uint64_t results[AEGIS_DNSSEC_N_RESULTS]; /* validations by result */
	uint64_t fetches;                         /* DNSKEY/DS queries sent through the owner */
	uint64_t key_cache_hits;                  /* key cache lookups that found a live entry */
	size_t key_entries;                       /* in the key cache now */
	size_t jobs;                              /* validations in progress */
};

/* Copies the counters into *out (for metrics; loop thread only). */
void aegis_dnssec_get_stats(const struct aegis_dnssec *v, struct aegis_dnssec_stats *out);

/* Counts a result decided outside the validator (the forwarder's own bogus cases, e.g. an answer it
 * cannot parse), so the metric covers every validated answer. */
void aegis_dnssec_count(struct aegis_dnssec *v, enum aegis_dnssec_result r);

#endif
