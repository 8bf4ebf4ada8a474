/* The audit query log: one JSON object per line for a sample of answered queries,
 *   {"ts":"2026-11-25T18:50:39.123Z","client":"10.1.2.3:40000","name":"www.example.com.","type":"A",
 *    "rcode":"NOERROR","latency_us":412,"source":"upstream"}
 *
 * The loop never waits for the log: a line is formatted into a bounded in-memory buffer and written by a
 * 100 ms timer (or at once when the buffer is half full) with non-blocking writes. When the disk or the
 * pipe reader cannot keep up and the buffer is full, the line is dropped and counted (`dropped`), never
 * queued: an audit log must not become the way to stall DNS. Sampling is decided per answer with a cheap
 * PRNG, so an unsampled query costs one multiply and one compare.
 *
 * Threading: loop thread only. */
#ifndef AEGIS_QUERY_LOG_H
#define AEGIS_QUERY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>

#include "aegis/err.h"

#define AEGIS_QLOG_DEFAULT_BUF (1u << 20) /* bytes of lines waiting to be written */

struct aegis_qlog_opts {
	int fd;            /* where lines go; the log owns it (closed by aegis_qlog_free), set non-blocking */
	double sample;     /* fraction of answers logged, 0..1 (1 = all) */
	size_t buf_max;    /* 0 = AEGIS_QLOG_DEFAULT_BUF; lines that do not fit are dropped */
	unsigned flush_ms; /* 0 = 100 */
};

struct aegis_qlog_stats {
	uint64_t lines;   /* lines written (or buffered for writing) */
	uint64_t dropped; /* sampled lines lost: buffer full */
	uint64_t write_errors;
	uint64_t bytes;
};

struct aegis_qlog;

/* Starts a log writing to o->fd with a flush timer on loop (NULL loop: no timer, the caller flushes).
 * Returns 0, AEGIS_EINVAL (sample outside 0..1, fd < 0) or AEGIS_ENOMEM; on failure o->fd is not
 * closed. */
int aegis_qlog_new(struct ev_loop *loop, const struct aegis_qlog_opts *o, struct aegis_qlog **out) AEGIS_WUR;

/* Flushes what it can without blocking, stops the timer and closes the fd. NULL is a no-op. */
void aegis_qlog_free(struct aegis_qlog *q);

/* Whether this answer is in the sample (call once per answer, before gathering what record() needs). */
bool aegis_qlog_sampled(struct aegis_qlog *q);

/* Appends one line for the answer msg[0..len) (its header gives the rcode, its question the name and
 * type) sent to client, with source ("table", "cache", "upstream", "error", "policy") and latency. msg
 * is only read during the call. */
void aegis_qlog_record(struct aegis_qlog *q, const struct sockaddr *client, const uint8_t *msg, size_t len,
                       const char *source, uint64_t latency_us);

/* Writes buffered lines until done or the fd would block. Returns 0, AEGIS_EAGAIN (some left) or
 * AEGIS_EIO (a write failed: the buffered lines are discarded and counted as write errors). */
int aegis_qlog_flush(struct aegis_qlog *q);

void aegis_qlog_get_stats(const struct aegis_qlog *q, struct aegis_qlog_stats *out);

struct aegis_metrics;
/* Writes the counters as aegis_query_log_* families (for /stats/prometheus). */
void aegis_qlog_metrics(const struct aegis_qlog *q, struct aegis_metrics *m);

/* Opens "-" (a duplicate of stdout) or a file (created 0640, appended to). Returns the fd or -1 with
 * errno set. */
int aegis_qlog_open(const char *path);

#endif
