/* Configuration from YAML files: the initial load (synchronous: a bad file stops start-up with file and
 * line), then reloads on SIGHUP and when a watched file changes (inotify, debounced). Reloads are parsed
 * and built on a worker thread, off the DNS loop; a reload that fails is logged and the last good table
 * keeps serving. */
#ifndef AEGIS_FILE_SOURCE_H
#define AEGIS_FILE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "aegis/err.h"
#include "dns_server.h"
#include "dns_table.h"
#include "mesh_routes.h" /* mesh */

struct aegis_file_source_opts {
	const char *const *paths;
	size_t n_paths;
	const char *cluster_domain;
	const char *local_cluster;
	bool watch;
	/* mesh: when post_routes is set, every load also builds the mesh routing table (mesh_routes.h) from
	 * the same config and the same VIP allocator as the DNS table, and hands it to post_routes (from the
	 * thread that built it; the callee takes the reference). A routes build failure rejects the load. */
	const struct aegis_routes_opts *routes;
	void (*post_routes)(void *user, struct aegis_routes *t);
	void *routes_user;
};

struct aegis_file_source;

struct aegis_file_source_status {
	uint64_t version;  /* successful loads so far (the initial one is 1) */
	uint64_t failures; /* rejected reloads */
	double last_ok;    /* wall-clock seconds of the last good load */
	double last_attempt;
	char last_error[512]; /* "" after a good load */
	size_t names;         /* nodes in the current table */
};

/* Loads the paths now and hands the table to srv; on failure returns the error with diag filled (the
 * caller exits). Then starts the reload machinery on loop (SIGHUP always; inotify when opts->watch). */
int aegis_file_source_start(struct ev_loop *loop, const struct aegis_file_source_opts *opts,
                            struct aegis_dns_server *srv, struct aegis_file_source **out,
                            struct aegis_diag *diag) AEGIS_WUR;

/* Asks for a reload (loop thread). Coalesces with one already queued. */
void aegis_file_source_reload(struct aegis_file_source *fs);

/* Copies the status (any thread). */
void aegis_file_source_status(struct aegis_file_source *fs, struct aegis_file_source_status *out);

/* Stops the worker and watchers. NULL is a no-op. */
void aegis_file_source_free(struct aegis_file_source *fs);

#endif
