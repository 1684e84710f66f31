/*
 * evmem — see evmem.h.
 *
 * Every block carries a 16-byte header (its class, or its size when it is
 * not cached), so the free function knows where it goes; blocks keep
 * malloc's 16-byte alignment.  Sizes from 1 KiB to 32 KiB are rounded up
 * to a power of two (libevent's chains already are: it asks for powers of
 * two from 1 KiB) and kept on a free list of the freeing thread, at most
 * EM_KEEP bytes per thread; smaller and larger blocks go straight to
 * malloc (glibc keeps small ones itself).  A thread's lists are given back
 * when it ends.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "evmem.h"

#define EM_MIN 1024u            /* smallest cached block (class 0) */
#define EM_CLASSES 6            /* 1, 2, 4, 8, 16, 32 KiB */
#define EM_KEEP (2048u * 1024u) /* bytes kept per thread, all classes */
#define EM_UNCACHED 0xffu       /* header class of a malloc'd block */

/* The header before each block. */
struct em_hdr {
    size_t size;   /* usable bytes after the header */
    uint32_t cls;  /* class index, or EM_UNCACHED */
    uint32_t pad;  /* keeps the block 16-byte aligned */
};

/* One thread's free lists. */
struct em_cache {
    void *free[EM_CLASSES]; /* singly linked through each block's first word */
    size_t kept;            /* bytes on the lists (cap EM_KEEP) */
    int registered;         /* the thread-exit destructor knows this cache */
};

static __thread struct em_cache em_tls;
static pthread_key_t em_key;
static pthread_once_t em_key_once = PTHREAD_ONCE_INIT;

/* Thread exit: gives the thread's cached blocks back to malloc. */
static void em_thread_end(void *arg)
{
    struct em_cache *c = arg;

    for (int k = 0; k < EM_CLASSES; k++) {
        while (c->free[k]) {
            void *p = c->free[k];
            memcpy(&c->free[k], p, sizeof(void *));
            free((struct em_hdr *)p - 1);
        }
    }
    c->kept = 0;
}

static void em_key_init(void)
{
    (void)pthread_key_create(&em_key, em_thread_end);
}

/* Class of a request of size bytes, or EM_UNCACHED. */
static uint32_t em_class(size_t size)
{
    uint32_t k = 0;
    size_t cap = EM_MIN;

    if (size <= EM_MIN / 2 || size > (size_t)EM_MIN << (EM_CLASSES - 1)) return EM_UNCACHED;
    while (cap < size) {
        cap <<= 1;
        k++;
    }
    return k;
}

/* libevent's malloc: a cached block of the class when one is free. */
static void *em_malloc(size_t size)
{
    uint32_t k = em_class(size);
    struct em_hdr *h;

    if (k != EM_UNCACHED) {
        struct em_cache *c = &em_tls;
        size = (size_t)EM_MIN << k;
        if (c->free[k]) {
            void *p = c->free[k];
            memcpy(&c->free[k], p, sizeof(void *));
            c->kept -= size;
            return p;
        }
    } else if (size > SIZE_MAX - sizeof(*h)) {
        return NULL;
    }
    h = malloc(sizeof(*h) + size);
    if (!h) return NULL;
    h->size = size;
    h->cls = k;
    h->pad = 0;
    return h + 1;
}

/* libevent's free: a cached class goes on this thread's list while there
 * is room (the first time, the thread registers for its exit). */
static void em_free(void *p)
{
    struct em_cache *c = &em_tls;
    struct em_hdr *h;

    if (!p) return;
    h = (struct em_hdr *)p - 1;
    if (h->cls != EM_UNCACHED && c->kept + h->size <= EM_KEEP) {
        if (!c->registered) {
            pthread_once(&em_key_once, em_key_init);
            if (pthread_setspecific(em_key, c) != 0) {
                free(h);
                return;
            }
            c->registered = 1;
        }
        memcpy(p, &c->free[h->cls], sizeof(void *));
        c->free[h->cls] = p;
        c->kept += h->size;
        return;
    }
    free(h);
}

/* libevent's realloc: in place when the block is big enough, else a new
 * block with the old bytes (the old one freed only on success). */
static void *em_realloc(void *p, size_t size)
{
    struct em_hdr *h;
    void *n;

    if (!p) return em_malloc(size);
    if (size == 0) {
        em_free(p);
        return NULL;
    }
    h = (struct em_hdr *)p - 1;
    if (size <= h->size) return p;
    n = em_malloc(size);
    if (!n) return NULL;
    memcpy(n, p, h->size);
    em_free(p);
    return n;
}

#if defined(__SANITIZE_ADDRESS__)
#define EM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EM_SANITIZED 1
#endif
#endif

static int em_on; /* em_install set the functions */

int em_active(size_t *kept)
{
    if (kept) *kept = em_tls.kept;
    return em_on;
}

void em_install(void)
{
#ifndef EM_SANITIZED
    event_set_mem_functions(em_malloc, em_realloc, em_free);
    em_on = 1;
#else
    (void)em_malloc; /* the sanitizer sees every block: libevent's own */
    (void)em_realloc;
    (void)em_free;
#endif
}
