/* Private to xds/: the list+watch bookkeeping of one resource kind of one cluster, without I/O.
 *
 * It holds the objects (by "<ns>/<name>") and the resourceVersion to resume from, takes list pages and
 * watch-stream lines as bytes, and says what the caller's loop must do next. kube_source.c does the
 * HTTP (libcurl) around it; the unit tests feed it recorded API responses directly.
 *
 * The protocol (Kubernetes API conventions, "Efficient detection of changes"): LIST (paged with
 * limit/continue) gives the objects and the collection's resourceVersion; WATCH from that version
 * streams ADDED/MODIFIED/DELETED events, each carrying the object's new resourceVersion, and BOOKMARK
 * events that only advance it. A watch that ends is reopened from the last version seen; a version the
 * server no longer has (410 Gone, as an HTTP status or as an ERROR event) means list again. */
#ifndef AEGIS_KUBE_WATCH_H
#define AEGIS_KUBE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aegis/err.h"
#include "kube_json.h"

/* Bounds on what the API server can make us hold: one list page, one watch event (a line). */
#define AEGIS_KWATCH_MAX_PAGE  (64u << 20)
#define AEGIS_KWATCH_MAX_EVENT (8u << 20)
#define AEGIS_KWATCH_PAGE_SIZE 500 /* `limit` of a list request */
#define AEGIS_KWATCH_RV_MAX    128

enum aegis_kwatch_next {
	AEGIS_KWATCH_GO_ON = 0, /* keep reading the stream */
	AEGIS_KWATCH_RELIST,    /* 410 Gone: our version is too old, list again */
	AEGIS_KWATCH_BACK_OFF   /* the server reported another error in the stream: reopen after a pause */
};

struct aegis_kwatch {
	enum aegis_kres res;
	json_t *objects;              /* "<ns>/<name>" -> object (metadata.managedFields dropped) */
	json_t *pending;              /* a list being paged in */
	char rv[AEGIS_KWATCH_RV_MAX]; /* where a watch resumes; "" = a list is needed */
	bool synced;                  /* a first list has completed (or failed: see kube_source.c) */
	uint64_t changes;             /* counts changes to objects, for the caller's notifications */
	uint64_t events;              /* watch events taken, bookmarks included */
};

/* Starts empty, needing a list. Returns AEGIS_ENOMEM or 0. */
int aegis_kwatch_init(struct aegis_kwatch *w, enum aegis_kres res) AEGIS_WUR;
void aegis_kwatch_free(struct aegis_kwatch *w);

/* The path and query of the next request into buf (server prefix not included). A list (w->rv empty
 * or a continue token given) asks for AEGIS_KWATCH_PAGE_SIZE items; a watch asks for bookmarks and
 * for the server to end it after timeout_s seconds. Returns 0 or AEGIS_ESPACE. */
int aegis_kwatch_list_path(const struct aegis_kwatch *w, const char *cont, char *buf, size_t size) AEGIS_WUR;
int aegis_kwatch_watch_path(const struct aegis_kwatch *w, unsigned timeout_s, char *buf,
                            size_t size) AEGIS_WUR;

/* One list response body. More pages: returns 0 with cont set to the continue token (cont_size bytes).
 * The last page (cont ""): the paged items replace the object set, w->rv becomes the list's
 * resourceVersion, w->synced true, and *changed tells whether the set differs. EPARSE/ELIMIT with diag
 * filled on a body that is not a list; then nothing changed and the caller lists again from scratch. */
int aegis_kwatch_list_page(struct aegis_kwatch *w, const char *body, size_t len, char *cont, size_t cont_size,
                           bool *changed, struct aegis_diag *diag) AEGIS_WUR;

/* Forgets a partial list (after a failed page). */
void aegis_kwatch_list_abort(struct aegis_kwatch *w);

/* One line of a watch stream (no newline). Returns an aegis_kwatch_next (>= 0), with *changed set when
 * the object set changed; or EPARSE with diag filled on a line that is not an event (the caller drops
 * the stream and reopens it from w->rv, which was not moved). */
int aegis_kwatch_event(struct aegis_kwatch *w, const char *line, size_t len, bool *changed,
                       struct aegis_diag *diag) AEGIS_WUR;

/* Splits a watch stream into lines across arbitrary chunk boundaries, bounded by
 * AEGIS_KWATCH_MAX_EVENT. */
struct aegis_kwatch_lines {
	char *buf;
	size_t len, cap;
};

/* Appends data and calls on_line for every complete line (empty lines skipped). Stops at the first
 * on_line result != 0 and returns it; ELIMIT when a line outgrows the bound. */
int aegis_kwatch_lines_feed(struct aegis_kwatch_lines *lb, const char *data, size_t len,
                            int (*on_line)(void *user, const char *line, size_t len), void *user) AEGIS_WUR;
void aegis_kwatch_lines_reset(struct aegis_kwatch_lines *lb);
void aegis_kwatch_lines_free(struct aegis_kwatch_lines *lb);

#endif
