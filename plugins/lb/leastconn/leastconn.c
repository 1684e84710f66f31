/*
 * leastconn — least in-flight requests load-balancing strategy (config key
 * "leastconn", HAProxy's name; Traefik has no such strategy).  Module
 * prefix: lc_.
 *
 * Every pick sends the request to the usable server with the fewest
 * requests in flight relative to its weight (inflight / weight, compared by
 * cross-multiplication, so weight 2 may carry twice the in-flight requests
 * of weight 1).  Servers tied at that minimum share the requests by smooth
 * weighted round robin (the wrr plugin's algorithm, restricted to the tied
 * servers): with no load at all, leastconn behaves like wrr.  Servers of
 * weight 0 take part (as weight 1) only when no server of positive weight
 * is up; servers that are down never do.
 *
 * In-flight counts come from the host (server_inflight, all worker threads
 * summed).  The round-robin state and a snapshot of the counts read during
 * one pick are per thread (one cache-line-aligned array per thread), so
 * the request path takes no lock and writes no shared memory.
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

/** Cache line the per-thread arrays are aligned to. */
#define LC_CACHE_LINE 64
/** Cap on the servers of one service. */
#define LC_MAX_SERVERS 65536u
/** Cap on the threads (worker threads + the control thread). */
#define LC_MAX_THREADS 4096u

/** Per thread, per server state. */
struct lc_slot {
    int64_t current; /* smooth round-robin value among tied servers */
    uint64_t load;   /* in-flight count read during the current pick */
};

/** One load-balancer instance (one per service). */
struct lc_inst {
    const relais_host *host; /* host function table */
    size_t nservers;         /* servers the arrays cover (capped) */
    unsigned nslots;         /* per-thread arrays: thread_count() + 1 */
    size_t stride;           /* lc_slot entries between two arrays (a whole
                                number of cache lines) */
    struct lc_slot *state;   /* nslots * stride entries, aligned */
};

/**
 * Control thread.  Allocates the per-thread arrays.  cfg is not read
 * (leastconn has no options).  0, or -1 after cfg_error when the host
 * lacks a needed function or memory runs out.
 */
static int lc_create(const relais_host *host, const relais_cfg *cfg,
                     const relais_servers *servers, void **inst)
{
    struct lc_inst *l;
    unsigned threads;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->server_inflight || !host->thread_index || !host->thread_count) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "leastconn: host lacks server or thread "
                            "accessors");
        return -1;
    }
    l = calloc(1, sizeof(*l));
    if (!l) goto nomem;
    l->host = host;
    l->nservers = host->servers_count(servers);
    if (l->nservers > LC_MAX_SERVERS) l->nservers = LC_MAX_SERVERS;
    threads = host->thread_count();
    if (threads > LC_MAX_THREADS - 1) threads = LC_MAX_THREADS - 1;
    l->nslots = threads + 1;
    l->state = lbc_slots_new(l->nservers, sizeof(struct lc_slot), l->nslots, LC_CACHE_LINE,
                             &l->stride);
    if (!l->state) goto nomem;
    *inst = l;
    return 0;

nomem:
    free(l);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "leastconn: out of memory");
    return -1;
}

/** Control thread: frees the instance; NULL is a no-op. */
static void lc_destroy(void *inst)
{
    struct lc_inst *l = inst;

    if (!l) return;
    free(l->state);
    free(l);
}

/**
 * Worker thread (or the control thread).  First pass: snapshot every
 * usable server's in-flight count and find the lowest inflight/weight.
 * Second pass: one smooth weighted round-robin step among the servers at
 * that minimum.  Returns the server index, or -1 when no server is up.
 */
static int lc_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct lc_inst *l = inst;
    const relais_host *h = l->host;
    size_t n = h->servers_count(servers), i;
    unsigned slot = h->thread_index();
    struct lc_slot *st;
    uint64_t min_load = 0, min_w = 0;
    int64_t total = 0;
    long best = -1, min_i = -1;
    int zero_mode;

    (void)req;
    if (n > l->nservers) n = l->nservers;
    if (slot >= l->nslots) slot = l->nslots - 1;
    st = l->state + (size_t)slot * l->stride;
    zero_mode = lbc_mode(h, servers, n);
    if (zero_mode < 0) return -1;
    for (i = 0; i < n; i++) {
        uint64_t w = lbc_weight(h, servers, i, zero_mode);
        st[i].load = UINT64_MAX;
        if (w == 0) continue;
        st[i].load = h->server_inflight(servers, i);
        if (min_w == 0 || st[i].load * min_w < min_load * w) {
            min_load = st[i].load;
            min_w = w;
            min_i = (long)i;
        }
    }
    if (min_w == 0) return -1;
    for (i = 0; i < n; i++) {
        uint64_t w;
        if (st[i].load == UINT64_MAX) continue;
        w = lbc_weight(h, servers, i, zero_mode);
        if (w == 0 || st[i].load * min_w != min_load * w) continue;
        st[i].current += (int64_t)w;
        total += (int64_t)w;
        if (best < 0 || st[i].current > st[best].current) best = (long)i;
    }
    if (best < 0) return (int)min_i; /* weights changed under us */
    st[best].current -= total;
    return (int)best;
}

/** The operations table. */
static const relais_lb_ops lc_ops = {
    .size = sizeof(relais_lb_ops),
    .create = lc_create,
    .destroy = lc_destroy,
    .pick = lc_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "leastconn",
    .version = "1.0.0",
    .config_key = "leastconn",
    .description = "fewest in-flight requests per weight, weighted round "
                   "robin among ties",
    .load = NULL,
    .unload = NULL,
    .ops = &lc_ops,
};
