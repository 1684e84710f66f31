/*
 * p2c — "power of two random choices" load-balancing strategy (config key
 * "p2c", Traefik v3's name).  Module prefix: p2c_.
 *
 * Every pick draws two distinct usable servers at random, each with a
 * probability proportional to its weight, and sends the request to the one
 * with fewer requests in flight relative to its weight (inflight / weight,
 * compared by cross-multiplication; a tie goes to the heavier server, then
 * to the first drawn).  A server of weight 3 is thus both drawn more often
 * and allowed three times the in-flight requests of a server of weight 1.
 * Servers of weight 0 take part (as weight 1) only when no server of
 * positive weight is up; servers that are down never do.
 *
 * In-flight counts come from the host (server_inflight, summed over the
 * worker threads).  The random generator is per thread (xorshift64*, one
 * cache line per thread), so the request path takes no lock and writes no
 * shared memory.
 *
 * Options: none (the loadBalancer map is not read).
 *
 * Built only against the SDK headers, hidden visibility by default.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "lbcommon.h"

/** Cache line the per-thread generators are aligned to. */
#define P2C_CACHE_LINE 64
/** Cap on the servers of one service. */
#define P2C_MAX_SERVERS 65536u
/** Cap on the threads (worker threads + the control thread). */
#define P2C_MAX_THREADS 4096u

/** One thread's random generator, alone on its cache line. */
struct p2c_rng {
    uint64_t state;                          /* xorshift64* state, never 0 */
    char pad[P2C_CACHE_LINE - sizeof(uint64_t)]; /* keeps neighbours apart */
};

/** One load-balancer instance (one per service). */
struct p2c_inst {
    const relais_host *host; /* host function table */
    size_t nservers;         /* servers of the service (capped) */
    unsigned nslots;         /* generators: thread_count() + 1 */
    uint64_t wmax;           /* largest weight (weights are fixed for the
                                instance's life): rejection sampling */
    struct p2c_rng *rng;     /* nslots generators, cache-line aligned */
};

/** Next value of a per-thread generator (xorshift64*).  Calling thread's
 *  own state only. */
static uint64_t p2c_next(struct p2c_rng *r)
{
    uint64_t x = r->state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/** A value in [0, bound) from the generator (bound > 0; the tiny modulo
 *  bias of a 64-bit draw is irrelevant here). */
static uint64_t p2c_below(struct p2c_rng *r, uint64_t bound)
{
    return (p2c_next(r) >> 11) % bound;
}

/**
 * Control thread.  Allocates one generator per thread, each seeded
 * differently.  cfg is not read (p2c has no options).  0, or -1 after
 * cfg_error when the host lacks a needed function or memory runs out.
 */
static int p2c_create(const relais_host *host, const relais_cfg *cfg,
                      const relais_servers *servers, void **inst)
{
    struct p2c_inst *p;
    unsigned threads, i;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->server_inflight || !host->thread_index || !host->thread_count) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "p2c: host lacks server or thread accessors");
        return -1;
    }
    p = calloc(1, sizeof(*p));
    if (!p) goto nomem;
    p->host = host;
    p->nservers = host->servers_count(servers);
    if (p->nservers > P2C_MAX_SERVERS) p->nservers = P2C_MAX_SERVERS;
    for (size_t k = 0; k < p->nservers; k++)
        if (host->server_weight(servers, k) > p->wmax) p->wmax = host->server_weight(servers, k);
    threads = host->thread_count();
    if (threads > P2C_MAX_THREADS - 1) threads = P2C_MAX_THREADS - 1;
    p->nslots = threads + 1;
    p->rng = aligned_alloc(P2C_CACHE_LINE, sizeof(struct p2c_rng) * p->nslots);
    if (!p->rng) goto nomem;
    memset(p->rng, 0, sizeof(struct p2c_rng) * p->nslots);
    for (i = 0; i < p->nslots; i++) {
        uint64_t s = lbc_mix((uint64_t)(uintptr_t)p ^ ((uint64_t)i << 32) ^
                             (host->now_ms ? host->now_ms() : 0));
        p->rng[i].state = s ? s : 0x853c49e6748fea9bull;
    }
    *inst = p;
    return 0;

nomem:
    free(p);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "p2c: out of memory");
    return -1;
}

/** Control thread: frees the instance; NULL is a no-op. */
static void p2c_destroy(void *inst)
{
    struct p2c_inst *p = inst;

    if (!p) return;
    free(p->rng);
    free(p);
}

/** Index of the server that the draw r (in [0, total)) lands on, skipping
 *  server `skip` (or none when skip is n).  When the weights changed under
 *  us and r runs past the end, the last usable server; -1 when none is. */
static long p2c_land(const relais_host *h, const relais_servers *servers,
                     size_t n, int zero_mode, size_t skip, uint64_t r)
{
    size_t i;
    long last = -1;

    for (i = 0; i < n; i++) {
        uint64_t w;
        if (i == skip) continue;
        w = lbc_weight(h, servers, i, zero_mode);
        if (w == 0) continue;
        if (r < w) return (long)i;
        r -= w;
        last = (long)i;
    }
    return last;
}

/**
 * Worker thread (or the control thread).  Two weighted random draws
 * without replacement among the usable servers; the one with the lower
 * inflight/weight wins.  Returns the server index, or -1 when no server
 * is up.
 */
/** Rejection-sampling tries for one candidate before the exact walk. */
#define P2C_TRIES 16

/* One candidate by rejection sampling: a uniform index, kept with
 * probability weight / wmax when up and not skip, so that a server is
 * drawn in proportion to its weight among the usable ones, in O(1)
 * expected when most servers are up.  -1 after P2C_TRIES misses (the
 * caller then walks the list). */
static long p2c_sample(const struct p2c_inst *p, const relais_servers *servers, size_t n,
                       struct p2c_rng *rng, long skip)
{
    const relais_host *h = p->host;

    for (int t = 0; t < P2C_TRIES; t++) {
        size_t i = (size_t)p2c_below(rng, n);
        uint64_t w;
        if ((long)i == skip || !h->server_up(servers, i)) continue;
        w = h->server_weight(servers, i);
        if (w == 0) continue;
        if (w == p->wmax || p2c_below(rng, p->wmax) < w) return (long)i;
    }
    return -1;
}

/* Of two candidates, the one with fewer requests in flight per weight. */
static int p2c_better(const relais_host *h, const relais_servers *servers, long a, long b)
{
    uint64_t wa = h->server_weight(servers, (size_t)a), wb = h->server_weight(servers, (size_t)b);
    uint64_t la = h->server_inflight(servers, (size_t)a), lb = h->server_inflight(servers, (size_t)b);

    if (la * wb < lb * wa) return (int)a;
    if (lb * wa < la * wb) return (int)b;
    return wb > wa ? (int)b : (int)a;
}

static int p2c_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct p2c_inst *p = inst;
    const relais_host *h = p->host;
    size_t n = h->servers_count(servers), i;
    unsigned slot = h->thread_index();
    struct p2c_rng *rng;
    uint64_t total = 0, wa, wb, la, lb;
    int zero_mode = 0, any_zero = 0;
    long a, b;

    (void)req;
    if (n > p->nservers) n = p->nservers;
    if (slot >= p->nslots) slot = p->nslots - 1;
    rng = &p->rng[slot];
    if (n >= 2 && p->wmax > 0) {
        /* the usual case, in O(1): two weighted draws */
        long ca = p2c_sample(p, servers, n, rng, -1), cb;
        if (ca >= 0 && (cb = p2c_sample(p, servers, n, rng, ca)) >= 0)
            return p2c_better(h, servers, ca, cb);
    }
    /* many servers down or of weight 0: the exact walk */
    for (i = 0; i < n; i++) {
        if (!h->server_up(servers, i)) continue;
        if (h->server_weight(servers, i) == 0) any_zero = 1;
        else total += h->server_weight(servers, i);
    }
    if (total == 0) {
        if (!any_zero) return -1;
        zero_mode = 1;
        for (i = 0; i < n; i++) total += lbc_weight(h, servers, i, 1);
        if (total == 0) return -1;
    }
    a = p2c_land(h, servers, n, zero_mode, n, p2c_below(rng, total));
    if (a < 0) return -1;
    wa = lbc_weight(h, servers, (size_t)a, zero_mode);
    if (total <= wa) return (int)a; /* the only usable server */
    b = p2c_land(h, servers, n, zero_mode, (size_t)a, p2c_below(rng, total - wa));
    if (b < 0) return (int)a;
    wb = lbc_weight(h, servers, (size_t)b, zero_mode);
    if (wb == 0) return (int)a;
    la = h->server_inflight(servers, (size_t)a);
    lb = h->server_inflight(servers, (size_t)b);
    /* la/wa < lb/wb, without division */
    if (la * wb < lb * wa) return (int)a;
    if (lb * wa < la * wb) return (int)b;
    return wb > wa ? (int)b : (int)a;
}

/** The operations table. */
static const relais_lb_ops p2c_ops = {
    .size = sizeof(relais_lb_ops),
    .create = p2c_create,
    .destroy = p2c_destroy,
    .pick = p2c_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "p2c",
    .version = "1.0.0",
    .config_key = "p2c",
    .description = "power of two random choices on in-flight requests, "
                   "weighted",
    .load = NULL,
    .unload = NULL,
    .ops = &p2c_ops,
};
