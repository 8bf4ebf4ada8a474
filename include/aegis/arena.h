/* A bump allocator for data that lives and dies together: one parsed configuration, one built table,
 * one query. Allocation is a pointer bump into chunks; everything is released at once by
 * aegis_arena_reset()/aegis_arena_free(). Modelled on unbound's util/regional.
 *
 * Build with -DAEGIS_ARENA_MALLOC=ON and every allocation becomes its own malloc, so AddressSanitizer
 * sees overflows between neighbouring objects. */
#ifndef AEGIS_ARENA_H
#define AEGIS_ARENA_H

#include <stddef.h>

#include "aegis/err.h"

struct aegis_arena_chunk;

struct aegis_arena {
	struct aegis_arena_chunk *head; /* current chunk (singly linked to older ones) */
	size_t chunk_size;              /* default size of a new chunk */
	size_t cap;                     /* most bytes ever held; 0 = no cap */
	size_t total;                   /* bytes held in chunks now */
	size_t used;                    /* bytes handed out */
};

/* Initialises an empty arena (allocates nothing, cannot fail). chunk_size 0 picks 64 KiB; cap 0 means
 * unbounded, otherwise allocations that would take the arena past cap bytes fail. */
void aegis_arena_init(struct aegis_arena *a, size_t chunk_size, size_t cap);

/* Returns n bytes aligned for any object, or NULL when memory or the cap runs out. The memory is not
 * zeroed; aegis_arena_zalloc() zeroes it. n == 0 returns a valid unique pointer. */
void *aegis_arena_alloc(struct aegis_arena *a, size_t n);
void *aegis_arena_zalloc(struct aegis_arena *a, size_t n);

/* Copies of memory and strings into the arena (NULL on failure). strndup copies at most n bytes and
 * always terminates. */
void *aegis_arena_memdup(struct aegis_arena *a, const void *p, size_t n);
char *aegis_arena_strdup(struct aegis_arena *a, const char *s);
char *aegis_arena_strndup(struct aegis_arena *a, const char *s, size_t n);

/* Grows an array held in the arena: returns a new array of new_n elements of size elem with the first
 * old_n copied from old (which is abandoned, not freed). Amortise by doubling. */
void *aegis_arena_grow(struct aegis_arena *a, void *old, size_t old_n, size_t new_n, size_t elem);

/* Releases everything but keeps the first chunk for reuse (per-query use). */
void aegis_arena_reset(struct aegis_arena *a);

/* Releases everything; the arena may be used again after aegis_arena_init(). */
void aegis_arena_free(struct aegis_arena *a);

#endif
