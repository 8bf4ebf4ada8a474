/* libFuzzer harness for the DNSSEC validator (proxy/dnssec.c), which reads upstream answers: input is a
 * 2-byte length L, an answer of L bytes, and the rest, which answers every DNSKEY/DS fetch the
 * validation makes (delivered after validate() returns, as the forwarder does). The answer also goes
 * through the client rewrite (every DO/EDNS combination; the output must parse again) and the query
 * rewrite. Each input gets a fresh validator, so a run does not depend on the inputs before it.
 *
 * Corpus (tests/fuzz/corpus/dnssec): answers of NSD serving example.test (NSEC) and nsec3.test (NSEC3),
 * signed with ldns-keygen/ldns-signzone valid 2026-11-01..2036-11-01, each followed by its zone's DNSKEY
 * answer; the anchors below are those zones' KSK DS records. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "aegis/log.h"
#include "dnssec.h"
#include "dnssec_msg.h"

/* 2027-01-15, inside the corpus signatures' validity */
#define NOW ((int64_t)1800000000)

static const char anchors[] =
        "example.test. IN DS 8460 13 2 0fb27b9d8fde62701df0c6bf88b78b042e01a0d4c428e6ddfcd512b24fd8508d\n"
        "nsec3.test. IN DS 211 13 2 a0de44b10235c964fe809ffb93c392f9096c54867509a28213c081c24267c621\n";

static struct aegis_dnssec_job *pending;

static int start(void *owner, const uint8_t *q, size_t len, struct aegis_dnssec_job *job, void **handle)
{
	(void)owner;
	if (len < 12 || pending != NULL)
		abort(); /* one fetch at a time per job, and a query at least a header long */
	pending = job;
	*handle = &pending;
	return 0;
}

static void cancel(void *owner, void *handle)
{
	(void)owner;
	(void)handle;
	pending = NULL;
}

static int results[AEGIS_DNSSEC_N_RESULTS + 1];

static void done(void *ctx, enum aegis_dnssec_result r)
{
	(void)ctx;
	results[(unsigned)r < AEGIS_DNSSEC_N_RESULTS ? r : AEGIS_DNSSEC_N_RESULTS]++;
}

static const char *anchor_file(void)
{
	static char path[64];
	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/aegis-fuzz-dnssec.XXXXXX");
		int fd = mkstemp(path);
		if (fd < 0 || write(fd, anchors, sizeof(anchors) - 1) != (ssize_t)(sizeof(anchors) - 1))
			abort();
		close(fd);
	}
	return path;
}

static void cleanup(void)
{
	unlink(anchor_file());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65536 + 64];
	static bool registered;
	if (!registered) {
		registered = atexit(cleanup) == 0;
		aegis_log_set_level(AEGIS_LOG_ERROR); /* one bogus line per input would dominate the run */
	}
	if (size < 2 || size > 65535)
		return 0;
	size_t alen = (size_t)(data[0] << 8 | data[1]);
	if (alen > size - 2)
		alen = size - 2;
	const uint8_t *ans = data + 2, *fetch = data + 2 + alen;
	size_t flen = size - 2 - alen;

	for (int c = 0; c < 4; c++) {
		uint8_t *stripped = NULL;
		int n = aegis_dnssec_msg_strip(ans, alen, c & 1, c & 2, &stripped);
		ldns_pkt *p = NULL;
		if (n > 0 && ldns_wire2pkt(&p, stripped, (size_t)n) != LDNS_STATUS_OK)
			abort(); /* what we give clients must parse */
		free(stripped);
		if (p != NULL) {
			if (!(c & 2) && ldns_pkt_ad(p))
				abort();
			ldns_pkt_free(p);
		}
	}
	int qn = aegis_dnssec_msg_add_do(ans, alen, out, alen + 11);
	if (qn > 0 && ((size_t)qn > alen + 11 || (size_t)qn < 12))
		abort();

	const char *files[] = {anchor_file()};
	struct aegis_dnssec_opts o = {.anchor_files = files, .n_anchor_files = 1};
	struct aegis_dnssec *v = NULL;
	struct aegis_diag diag = {0};
	if (aegis_dnssec_new(&o, &v, &diag) != 0)
		abort();
	struct aegis_dnssec_fetcher f = {.start = start, .cancel = cancel, .owner = NULL};
	aegis_dnssec_set_fetcher(v, &f);
	struct aegis_dnssec_job *job = NULL;
	enum aegis_dnssec_result r = AEGIS_DNSSEC_N_RESULTS;
	int rc = aegis_dnssec_validate(v, ans, alen, NOW, done, NULL, &job, &r);
	if (rc == 0 && (unsigned)r >= AEGIS_DNSSEC_N_RESULTS)
		abort();
	for (int guard = 0; rc == 1 && pending != NULL; guard++) {
		if (guard > 64)
			abort(); /* max_fetches bounds a validation */
		struct aegis_dnssec_job *j = pending;
		pending = NULL;
		aegis_dnssec_fetch_done(j, flen ? fetch : NULL, flen, NOW);
	}
	aegis_dnssec_free(v);
	pending = NULL;
	return 0;
}
