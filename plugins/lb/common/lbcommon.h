/*
 * lbcommon — what the weighted strategies (the plugins under plugins/lb) agree on, as
 * inline functions built into each plugin (each still builds only against
 * the SDK).  Prefix lbc_.
 *
 * Weights as Traefik treats them: servers that are down never take part;
 * a server of weight 0 takes part, as weight 1, only while no server with
 * a positive weight is up ("zero mode").
 */
#ifndef RELAIS_LBCOMMON_H
#define RELAIS_LBCOMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

/** How the first n servers take part: -1 when none is up, 1 in zero mode
 *  (only weight-0 servers are up), 0 otherwise.  Any thread. */
static inline int lbc_mode(const relais_host *h, const relais_servers *s, size_t n)
{
    int any_zero = 0;

    for (size_t i = 0; i < n; i++) {
        if (!h->server_up(s, i)) continue;
        if (h->server_weight(s, i)) return 0;
        any_zero = 1;
    }
    return any_zero ? 1 : -1;
}

/** The weight server i takes part with (lbc_mode's zero_mode): 0 when it
 *  does not (down, or weight 0 outside zero mode).  Any thread. */
static inline uint64_t lbc_weight(const relais_host *h, const relais_servers *s, size_t i,
                                  int zero_mode)
{
    uint32_t w;

    if (!h->server_up(s, i)) return 0;
    w = h->server_weight(s, i);
    if (zero_mode) return w == 0 ? 1 : 0;
    return w;
}

/** FNV-1a over len bytes.  Pure. */
static inline uint64_t lbc_fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/** A bijective 64-bit mixer (splitmix64 finalizer).  Pure. */
static inline uint64_t lbc_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/**
 * A per-thread table of nslots rows of nservers slots of slot_size bytes
 * each, every row starting on a cache line of line bytes (so that two
 * threads never write the same line), zeroed.  *stride receives the slots
 * per row.  NULL when out of memory.  Control thread (create).
 */
static inline void *lbc_slots_new(size_t nservers, size_t slot_size, unsigned nslots,
                                  size_t line, size_t *stride)
{
    size_t per_line = line / slot_size, bytes;
    void *p;

    *stride = (nservers + per_line - 1) / per_line * per_line;
    if (*stride == 0) *stride = per_line;
    bytes = *stride * slot_size * nslots;
    p = aligned_alloc(line, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

#endif /* RELAIS_LBCOMMON_H */
