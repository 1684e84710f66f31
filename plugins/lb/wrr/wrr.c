/*
 * wrr — smooth weighted round robin load-balancing strategy (config key
 * "wrr").  Module prefix: wrr_.
 *
 * The smooth algorithm: on every pick each usable server's current value
 * grows by its weight, the server with the largest current value wins and
 * loses the total weight.  With weights 5,1,1 the picks run a a b a c a a:
 * the heavy server's turns are spread out instead of bunched.
 *
 * No lock and no shared write on the request path: every worker thread
 * (and the control thread, index thread_count()) owns one array of current
 * values, each array starting on its own cache line.  Each thread therefore
 * follows the exact weighted sequence on its own.
 *
 * Built only against the SDK headers, hidden visibility by default.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <relais/atomic.h>
#include <relais/plugin.h>

/** Cache line the per-thread arrays are aligned to. */
#define WRR_CACHE_LINE 64
/** Cap on the servers of one service. */
#define WRR_MAX_SERVERS 65536u
/** Cap on the threads (worker threads + the control thread). */
#define WRR_MAX_THREADS 4096u

/** One load-balancer instance (one per service). */
struct wrr_inst {
    const relais_host *host; /* host function table */
    size_t nservers;         /* servers the arrays cover */
    unsigned nslots;         /* per-thread arrays: thread_count() + 1 */
    size_t stride;           /* int64_t entries between two arrays
                                (a multiple of a cache line) */
    int64_t *current;        /* nslots * stride current values, aligned */
};

/**
 * Control thread.  Allocates one cache-line-aligned array of current values
 * per thread for the servers of the service.  cfg (the loadBalancer map) is
 * not read: wrr has no options and ignores unknown keys.  0, or -1 after
 * cfg_error when the host lacks a needed function or memory runs out.
 */
static int wrr_create(const relais_host *host, const relais_cfg *cfg,
                      const relais_servers *servers, void **inst)
{
    struct wrr_inst *w;
    size_t bytes, per_line = WRR_CACHE_LINE / sizeof(int64_t);
    unsigned threads;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->thread_index || !host->thread_count) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "wrr: host lacks server or thread "
                            "accessors");
        return -1;
    }
    w = calloc(1, sizeof(*w));
    if (!w) goto nomem;
    w->host = host;
    w->nservers = host->servers_count(servers);
    if (w->nservers > WRR_MAX_SERVERS) w->nservers = WRR_MAX_SERVERS;
    threads = host->thread_count();
    if (threads > WRR_MAX_THREADS - 1) threads = WRR_MAX_THREADS - 1;
    w->nslots = threads + 1;
    w->stride = (w->nservers + per_line - 1) / per_line * per_line;
    if (w->stride == 0) w->stride = per_line;
    bytes = w->stride * sizeof(int64_t) * w->nslots;
    w->current = aligned_alloc(WRR_CACHE_LINE, bytes);
    if (!w->current) goto nomem;
    memset(w->current, 0, bytes);
    *inst = w;
    return 0;

nomem:
    free(w);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "wrr: out of memory");
    return -1;
}

/** Control thread: frees the instance. */
static void wrr_destroy(void *inst)
{
    struct wrr_inst *w = inst;

    if (!w) return;
    free(w->current);
    free(w);
}

/**
 * Worker thread (or the control thread).  One smooth-WRR step over the
 * calling thread's own array.  Servers of weight 0 compete (as weight 1)
 * only when no server of positive weight is up.  Returns the server index,
 * or -1 when no server is up.
 */
static int wrr_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct wrr_inst *w = inst;
    const relais_host *h = w->host;
    size_t n = h->servers_count(servers), i;
    unsigned slot = h->thread_index();
    int64_t *cur, total = 0;
    long best = -1;
    int zero_up = 0;

    (void)req;
    if (n > w->nservers) n = w->nservers;
    /* A thread index beyond the contract falls back to the control slot. */
    if (slot >= w->nslots) slot = w->nslots - 1;
    cur = w->current + (size_t)slot * w->stride;
    for (i = 0; i < n; i++) {
        uint32_t wt;
        if (!h->server_up(servers, i)) continue;
        wt = h->server_weight(servers, i);
        if (wt == 0) {
            zero_up = 1;
            continue;
        }
        cur[i] += wt;
        total += wt;
        if (best < 0 || cur[i] > cur[best]) best = (long)i;
    }
    if (best < 0 && zero_up) {
        /* Only weight-0 servers are up: round robin among them. */
        for (i = 0; i < n; i++) {
            if (!h->server_up(servers, i) || h->server_weight(servers, i))
                continue;
            cur[i] += 1;
            total += 1;
            if (best < 0 || cur[i] > cur[best]) best = (long)i;
        }
    }
    if (best < 0) return -1;
    cur[best] -= total;
    return (int)best;
}

/** The operations table. */
static const relais_lb_ops wrr_ops = {
    .size = sizeof(relais_lb_ops),
    .create = wrr_create,
    .destroy = wrr_destroy,
    .pick = wrr_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "wrr",
    .version = "1.0.0",
    .config_key = "wrr",
    .description = "smooth weighted round robin (nginx-style), lock-free "
                   "per worker thread",
    .load = NULL,
    .unload = NULL,
    .ops = &wrr_ops,
};
