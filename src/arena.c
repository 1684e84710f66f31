/*
 * arena — see arena.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_BLOCK 8192 /* default block payload size */
#define ARENA_CACHE 256  /* free default-size blocks a thread keeps (2 MiB:
                            as many as HTTP/2 streams in flight on a busy
                            worker, 16 connections x 16 streams) */

/** One block of memory. */
struct arena_block {
    struct arena_block *next; /* older block */
    size_t size;              /* payload bytes */
    size_t used;              /* payload bytes handed out */
    _Alignas(16) unsigned char data[]; /* payload */
};

/** The arena. */
struct arena {
    struct arena_block *head; /* current block (newest) */
    size_t cap;               /* cap on total payload */
    size_t total;             /* payload bytes allocated in blocks */
    size_t used;              /* bytes handed out */
};

static __thread struct arena_block *arena_free_blocks; /* thread's cache */
static __thread unsigned arena_nfree;                  /* its length */

/* Frees block b, or keeps it in the thread's cache when it is of the
 * default size and the cache has room. */
static void arena_drop(struct arena_block *b)
{
    if (b->size == ARENA_BLOCK && arena_nfree < ARENA_CACHE) {
        b->next = arena_free_blocks;
        arena_free_blocks = b;
        arena_nfree++;
        return;
    }
    free(b);
}

void arena_cache_clear(void)
{
    while (arena_free_blocks) {
        struct arena_block *b = arena_free_blocks;
        arena_free_blocks = b->next;
        free(b);
    }
    arena_nfree = 0;
}

void arena_release(struct arena *a)
{
    struct arena_block *b, *n;

    if (!a) return;
    for (b = a->head; b; b = n) {
        n = b->next;
        arena_drop(b);
    }
    a->head = NULL;
    a->total = 0;
    a->used = 0;
}

struct arena *arena_new(size_t cap)
{
    struct arena *a = calloc(1, sizeof(*a));

    if (!a) return NULL;
    a->cap = cap;
    return a;
}

void arena_free(struct arena *a)
{
    struct arena_block *b, *n;

    if (!a) return;
    for (b = a->head; b; b = n) {
        n = b->next;
        arena_drop(b);
    }
    free(a);
}

void arena_reset(struct arena *a)
{
    struct arena_block *b, *n;

    if (!a || !a->head) return;
    /* keep the oldest block: it is the default size */
    for (b = a->head; b->next; b = n) {
        n = b->next;
        arena_drop(b);
    }
    a->head = b;
    b->used = 0;
    a->total = b->size;
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
    struct arena_block *b;
    size_t need = (size + 15) & ~(size_t)15, bsize;
    void *p;

    if (size == 0) need = 16;
    if (need < size || a->used + need > a->cap) return NULL;
    b = a->head;
    if (!b || b->size - b->used < need) {
        bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        if (a->total + bsize > a->cap + ARENA_BLOCK) return NULL;
        if (bsize == ARENA_BLOCK && arena_free_blocks) {
            b = arena_free_blocks;
            arena_free_blocks = b->next;
            arena_nfree--;
        } else {
            b = malloc(sizeof(*b) + bsize);
            if (!b) return NULL;
        }
        b->size = bsize;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        a->total += bsize;
    }
    p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);

    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t arena_used(const struct arena *a)
{
    return a ? a->used : 0;
}
