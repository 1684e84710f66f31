/*
 * arena — per-request bump allocator freed in one go.  Module prefix: arena_.
 *
 * Memory comes in blocks; a hard cap bounds the total.  Thread-safety: an
 * arena belongs to one thread (the worker running its request); each
 * thread keeps a small cache of free default-size blocks.
 */
#ifndef RELAIS_ARENA_H
#define RELAIS_ARENA_H

#include <stddef.h>

struct arena;

/** New arena whose total allocation may not exceed cap bytes. */
struct arena *arena_new(size_t cap);

/** Frees every allocation and the arena; NULL is a no-op. */
void arena_free(struct arena *a);

/** Forgets every allocation but keeps the first block for reuse. */
void arena_reset(struct arena *a);

/** Forgets every allocation and gives every block back: default-size
 *  blocks go to the calling thread's cache (ARENA_CACHE of them), so an
 *  idle keep-alive connection holds no block and the next request takes
 *  one without malloc.  The arena stays usable. */
void arena_release(struct arena *a);

/** Frees the calling thread's block cache (at thread exit). */
void arena_cache_clear(void);

/** size bytes aligned to 16, or NULL when the cap would be exceeded. */
void *arena_alloc(struct arena *a, size_t size);

/** Copy of s[0..len) with a terminating NUL, or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/** Bytes handed out so far. */
size_t arena_used(const struct arena *a);

#endif /* RELAIS_ARENA_H */
