/*
 * blockcache — blocks of power-of-two size classes kept on free lists in
 * front of malloc, for allocators that see the same sizes come and go
 * (libevent's per-thread allocator, src/evmem.c; each HTTP/2 session's
 * nghttp2 allocator, src/h2.c).
 *
 * Every block carries a 16-byte header (its class and usable size), so
 * blocks keep malloc's alignment and a free knows where the block goes.
 * A cache is used by one thread at a time (no locking).
 */
#ifndef RELAIS_BLOCKCACHE_H
#define RELAIS_BLOCKCACHE_H

#include <stddef.h>

#define BC_MAX_CLASSES 8 /* size classes a cache can keep */

/** What a cache keeps (constant, shared by its caches). */
struct bc_shape {
    size_t min;       /* class 0's block size (a power of two) */
    unsigned classes; /* classes kept, min .. min << (classes - 1)
                         (at most BC_MAX_CLASSES) */
    size_t floor;     /* requests of at most this many bytes are not kept
                         (glibc keeps small blocks itself) */
    size_t keep;      /* bytes a cache keeps at most */
};

/** One cache's free lists. */
struct bc_cache {
    void *free[BC_MAX_CLASSES]; /* kept blocks per class (their first bytes
                                   link to the next) */
    size_t kept;                /* bytes kept (at most shape->keep) */
};

/** A block of at least size bytes: a kept one of its class, else a new
 *  one.  NULL when out of memory. */
void *bc_alloc(struct bc_cache *c, const struct bc_shape *s, size_t size);

/** Frees p (NULL: nothing): kept while the cache has room for a block of
 *  its class, else given back to malloc. */
void bc_free(struct bc_cache *c, const struct bc_shape *s, void *p);

/** realloc: p itself while size fits its block (a kept class's block, or
 *  an uncached block's exact size), else a new block with the bytes
 *  copied and p freed; NULL (p untouched) when out of memory; size 0
 *  frees p and returns NULL. */
void *bc_realloc(struct bc_cache *c, const struct bc_shape *s, void *p, size_t size);

/** Gives every kept block back to malloc. */
void bc_clear(struct bc_cache *c);

#endif /* RELAIS_BLOCKCACHE_H */
