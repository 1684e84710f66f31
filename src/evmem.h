/*
 * evmem — libevent's allocator: per-thread free lists for the block sizes
 * libevent allocates and frees on every request (evbuffer chains of 1 to
 * 32 KiB, which glibc's per-thread cache does not keep: it stops at 1032
 * bytes, so each chain went through malloc's slow path twice).
 */
#ifndef RELAIS_EVMEM_H
#define RELAIS_EVMEM_H

#include <stddef.h>

/**
 * Installs the allocator with event_set_mem_functions.  Must run before
 * any other libevent call (main, first thing).  A no-op in sanitizer
 * builds (AddressSanitizer must see every block allocated and freed).
 */
void em_install(void);

/**
 * 1 when em_install put the allocator in place (0 in sanitizer builds),
 * and in *kept the bytes on the calling thread's free lists (tests).
 */
int em_active(size_t *kept);

#endif /* RELAIS_EVMEM_H */
