/* Bump allocator: see include/aegis/arena.h. */
#include "aegis/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN         alignof(max_align_t)
#define DEFAULT_CHUNK (64u * 1024u)

struct aegis_arena_chunk {
	struct aegis_arena_chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	alignas(max_align_t) unsigned char data[];
};

static size_t round_up(size_t n)
{
	return (n + ALIGN - 1) & ~(ALIGN - 1);
}

void aegis_arena_init(struct aegis_arena *a, size_t chunk_size, size_t cap)
{
	a->head = NULL;
	a->chunk_size = chunk_size ? chunk_size : DEFAULT_CHUNK;
	a->cap = cap;
	a->total = 0;
	a->used = 0;
}

static struct aegis_arena_chunk *chunk_new(struct aegis_arena *a, size_t need)
{
	size_t size = need;
#ifndef AEGIS_ARENA_MALLOC
	if (size < a->chunk_size)
		size = a->chunk_size;
#endif
	if (size > SIZE_MAX - sizeof(struct aegis_arena_chunk))
		return NULL;
	if (a->cap && (a->total + size > a->cap || a->total + size < a->total))
		return NULL;
	struct aegis_arena_chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->size = size;
	c->used = 0;
	a->total += size;
	return c;
}

void *aegis_arena_alloc(struct aegis_arena *a, size_t n)
{
	size_t need = round_up(n ? n : 1);
	if (need < n)
		return NULL;
	struct aegis_arena_chunk *c = a->head;
	if (c == NULL || c->size - c->used < need) {
		struct aegis_arena_chunk *nc = chunk_new(a, need);
		if (nc == NULL)
			return NULL;
		/* A chunk made for one big object goes behind the current one so the current one keeps
		 * serving small allocations. */
		if (c != NULL && need > a->chunk_size / 4 && c->size - c->used >= ALIGN) {
			nc->next = c->next;
			c->next = nc;
			c = nc;
		} else {
			nc->next = c;
			a->head = nc;
			c = nc;
		}
	}
	void *p = c->data + c->used;
	c->used += need;
	a->used += need;
	return p;
}

void *aegis_arena_zalloc(struct aegis_arena *a, size_t n)
{
	void *p = aegis_arena_alloc(a, n);
	if (p != NULL)
		memset(p, 0, n);
	return p;
}

void *aegis_arena_memdup(struct aegis_arena *a, const void *p, size_t n)
{
	void *d = aegis_arena_alloc(a, n);
	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

static char *dup_len(struct aegis_arena *a, const char *s, size_t len)
{
	char *d = aegis_arena_alloc(a, len + 1);
	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

char *aegis_arena_strndup(struct aegis_arena *a, const char *s, size_t n)
{
	return dup_len(a, s, strnlen(s, n));
}

char *aegis_arena_strdup(struct aegis_arena *a, const char *s)
{
	return dup_len(a, s, strlen(s));
}

void *aegis_arena_grow(struct aegis_arena *a, void *old, size_t old_n, size_t new_n, size_t elem)
{
	if (elem && new_n > SIZE_MAX / elem)
		return NULL;
	void *p = aegis_arena_alloc(a, new_n * elem);
	if (p != NULL && old != NULL && old_n > 0)
		memcpy(p, old, (old_n < new_n ? old_n : new_n) * elem);
	return p;
}

void aegis_arena_reset(struct aegis_arena *a)
{
	struct aegis_arena_chunk *c = a->head;
	if (c == NULL)
		return;
	/* Keep the oldest chunk (the tail): it is the one sized for the common case. */
	struct aegis_arena_chunk *keep = c;
	while (keep->next != NULL)
		keep = keep->next;
	while (c != keep) {
		struct aegis_arena_chunk *next = c->next;
		a->total -= c->size;
		free(c);
		c = next;
	}
#ifdef AEGIS_ARENA_MALLOC
	a->total -= keep->size;
	free(keep);
	a->head = NULL;
#else
	keep->used = 0;
	a->head = keep;
#endif
	a->used = 0;
}

void aegis_arena_free(struct aegis_arena *a)
{
	struct aegis_arena_chunk *c = a->head;
	while (c != NULL) {
		struct aegis_arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->total = 0;
	a->used = 0;
}
