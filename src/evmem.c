/*
 * evmem — see evmem.h.
 *
 * Sizes above 512 bytes and up to 32 KiB are rounded up to a power of two
 * from 1 KiB (libevent's chains already are) and kept on a block cache
 * (blockcache.h) of the freeing thread, at most EM_KEEP bytes per thread;
 * smaller and larger blocks go straight to malloc (glibc keeps small ones
 * itself).  A thread's cache is given back when it ends.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "blockcache.h"
#include "evmem.h"

#define EM_KEEP (2048u * 1024u) /* bytes kept per thread, all classes */

/* 1, 2, 4, 8, 16, 32 KiB blocks; requests of 512 bytes or less are not
   kept */
static const struct bc_shape em_shape = {1024, 6, 512, EM_KEEP};

/* One thread's cache. */
struct em_tcache {
    struct bc_cache bc; /* its blocks */
    int registered;     /* the thread-exit destructor knows it */
};

static __thread struct em_tcache em_tls;
static pthread_key_t em_key;
static pthread_once_t em_key_once = PTHREAD_ONCE_INIT;
static int em_on; /* em_install set the functions */

/* Thread exit: gives the thread's kept blocks back to malloc. */
static void em_thread_end(void *arg)
{
    bc_clear(&((struct em_tcache *)arg)->bc);
}

static void em_key_init(void)
{
    (void)pthread_key_create(&em_key, em_thread_end);
}

/* libevent's malloc. */
static void *em_malloc(size_t size)
{
    return bc_alloc(&em_tls.bc, &em_shape, size);
}

/* This thread's cache, registered for the thread's exit the first time
 * (a thread that cannot register keeps its blocks, EM_KEEP bytes at most,
 * until the process ends). */
static struct bc_cache *em_cache(void)
{
    struct em_tcache *t = &em_tls;

    if (!t->registered) {
        pthread_once(&em_key_once, em_key_init);
        (void)pthread_setspecific(em_key, t);
        t->registered = 1;
    }
    return &t->bc;
}

/* libevent's free: kept on this thread's cache while there is room. */
static void em_free(void *p)
{
    bc_free(em_cache(), &em_shape, p);
}

/* libevent's realloc. */
static void *em_realloc(void *p, size_t size)
{
    return bc_realloc(em_cache(), &em_shape, p, size);
}

#if defined(__SANITIZE_ADDRESS__)
#define EM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EM_SANITIZED 1
#endif
#endif

int em_active(size_t *kept)
{
    if (kept) *kept = em_tls.bc.kept;
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
