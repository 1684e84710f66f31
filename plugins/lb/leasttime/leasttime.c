/*
 * leasttime — least response time load-balancing strategy (config key
 * "leasttime", Traefik v3's name).  Module prefix: lt_.
 *
 * Each server keeps a moving average of its response times (the latency_us
 * the host reports once a response head arrived: an exponentially weighted
 * moving average, new sample weight 1/8; the first sample is taken as is).
 * Every pick sends the request to the usable server with the lowest score
 *
 *     score = (average + 1 ms) * (inflight + 1) / weight
 *
 * — response time combined with the requests in flight, scaled down by the
 * weight, as Traefik's leasttime describes.  The 1 ms floor is the host's
 * clock resolution: a server answering in under a millisecond reports 0,
 * and its load must still count.  Servers tied at the lowest score (e.g.
 * before any sample) share the requests by smooth weighted round robin.
 *
 * Failures are penalised: a failed or timed-out exchange enters the
 * average as a response time of at least failurePenalty (default 1s), so
 * a server that refuses connections quickly does not look fast.  So that a
 * penalised or once-slow server is tried again, an average not refreshed
 * for 10 s is halved for every 10 s it has not been (it decays towards
 * "fast"; its next request measures it anew).
 *
 * Options (loadBalancer.leasttime map, all optional):
 *   failurePenalty: duration ("1s", "500ms"), 0 to 1h
 *
 * Thread safety: the averages are shared (one cache line per server,
 * updated with compare-and-swap); the round-robin state and the scores of
 * one pick are per thread.  No lock.
 *
 * Built only against the SDK headers, hidden visibility by default.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <relais/atomic.h>
#include <relais/plugin.h>

#include "lbcommon.h"

/** Cache line the shared and per-thread arrays are aligned to. */
#define LT_CACHE_LINE 64
/** Cap on the servers of one service. */
#define LT_MAX_SERVERS 65536u
/** Cap on the threads (worker threads + the control thread). */
#define LT_MAX_THREADS 4096u
/** Fixed-point scale of the stored averages (1/16 microsecond). */
#define LT_FIX 16u
/** Weight of a new sample: 1 / LT_EWMA_DIV. */
#define LT_EWMA_DIV 8u
/** Floor added to every average, in microseconds (clock resolution). */
#define LT_FLOOR_US 1000.0
/** An average not refreshed for this long is halved per period. */
#define LT_DECAY_MS 10000u
/** Default failurePenalty, in milliseconds. */
#define LT_PENALTY_MS 1000
/** Largest failurePenalty accepted, in milliseconds (1 h). */
#define LT_PENALTY_MAX_MS 3600000

/** Shared per-server measurements, one cache line each. */
struct lt_srv {
    uint64_t avg;     /* average in 1/LT_FIX us, plus 1; 0 = no sample yet */
    uint64_t last_ms; /* host now_ms() of the last sample, 0 = never */
    char pad[LT_CACHE_LINE - 2 * sizeof(uint64_t)]; /* one line per server */
};

/** Per thread, per server state. */
struct lt_slot {
    int64_t current; /* smooth round-robin value among tied servers */
    double score;    /* score computed during the current pick; < 0 = not
                        usable */
};

/** One load-balancer instance (one per service). */
struct lt_inst {
    const relais_host *host; /* host function table */
    size_t nservers;         /* servers the arrays cover (capped) */
    uint64_t penalty_us;     /* failurePenalty in microseconds */
    struct lt_srv *srv;      /* nservers shared measurements, aligned */
    unsigned nslots;         /* per-thread arrays: thread_count() + 1 */
    size_t stride;           /* lt_slot entries between two arrays (whole
                                cache lines) */
    struct lt_slot *state;   /* nslots * stride entries, aligned */
};

/**
 * Control thread.  Reads loadBalancer.leasttime (if present) and
 * validates it, then allocates the shared and per-thread arrays.  0, or -1
 * after cfg_error (bad option, host lacking a function, no memory).
 */
static int lt_create(const relais_host *host, const relais_cfg *cfg,
                     const relais_servers *servers, void **inst)
{
    struct lt_inst *l = NULL;
    const relais_cfg *opt = host->cfg_get ? host->cfg_get(cfg, "leasttime") : NULL;
    int64_t penalty_ms = LT_PENALTY_MS;
    size_t bytes, i;
    unsigned threads;
    int t;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->server_inflight || !host->thread_index || !host->thread_count) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "leasttime: host lacks server or thread "
                            "accessors");
        return -1;
    }
    t = opt ? host->cfg_type(opt) : RELAIS_CFG_ABSENT;
    if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        if (t != RELAIS_CFG_MAP) {
            host->cfg_error(cfg, "leasttime", "expected a map of leasttime options");
            return -1;
        }
        for (i = 0; i < host->cfg_len(opt); i++) {
            const char *key = NULL;
            host->cfg_at(opt, i, &key);
            if (!key || strcasecmp(key, "failurePenalty") != 0) {
                host->cfg_error(opt, key, "unknown leasttime option (known: "
                                "failurePenalty)");
                return -1;
            }
        }
        if (host->cfg_duration(opt, "failurePenalty", &penalty_ms) == RELAIS_CFG_INVALID)
            return -1;
        if (penalty_ms < 0 || penalty_ms > LT_PENALTY_MAX_MS) {
            host->cfg_error(opt, "failurePenalty", "expected a duration from 0s to 1h");
            return -1;
        }
    }
    l = calloc(1, sizeof(*l));
    if (!l) goto nomem;
    l->host = host;
    l->penalty_us = (uint64_t)penalty_ms * 1000u;
    l->nservers = host->servers_count(servers);
    if (l->nservers > LT_MAX_SERVERS) l->nservers = LT_MAX_SERVERS;
    bytes = sizeof(struct lt_srv) * (l->nservers ? l->nservers : 1);
    l->srv = aligned_alloc(LT_CACHE_LINE, bytes);
    if (!l->srv) goto nomem;
    memset(l->srv, 0, bytes);
    threads = host->thread_count();
    if (threads > LT_MAX_THREADS - 1) threads = LT_MAX_THREADS - 1;
    l->nslots = threads + 1;
    l->state = lbc_slots_new(l->nservers, sizeof(struct lt_slot), l->nslots, LT_CACHE_LINE,
                             &l->stride);
    if (!l->state) goto nomem;
    *inst = l;
    return 0;

nomem:
    if (l) free(l->srv);
    free(l);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "leasttime: out of memory");
    return -1;
}

/** Control thread: frees the instance; NULL is a no-op. */
static void lt_destroy(void *inst)
{
    struct lt_inst *l = inst;

    if (!l) return;
    free(l->state);
    free(l->srv);
    free(l);
}

/** Any thread: the current average of server i in microseconds (0 before
 *  any sample), decayed when stale (now 0: no decay). */
static double lt_average(struct lt_inst *l, size_t i, uint64_t now)
{
    uint64_t avg = relais_atomic_load_u64(&l->srv[i].avg);
    uint64_t last = relais_atomic_load_u64(&l->srv[i].last_ms);

    if (avg == 0) return 0.0;
    avg -= 1;
    if (now && last && now > last + LT_DECAY_MS) {
        uint64_t periods = (now - last) / LT_DECAY_MS;
        avg = periods >= 63 ? 0 : avg >> periods;
    }
    return (double)avg / LT_FIX;
}

/**
 * Worker thread (or the control thread).  Scores every usable server,
 * then one smooth weighted round-robin step among those at the lowest
 * score.  Returns the server index, or -1 when no server is up.
 */
static int lt_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct lt_inst *l = inst;
    const relais_host *h = l->host;
    size_t n = h->servers_count(servers), i;
    unsigned slot = h->thread_index();
    uint64_t now = h->now_ms ? h->now_ms() : 0;
    struct lt_slot *st;
    double min = -1.0;
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
        st[i].score = -1.0;
        if (w == 0) continue;
        st[i].score = (lt_average(l, i, now) + LT_FLOOR_US) *
                      ((double)h->server_inflight(servers, i) + 1.0) / (double)w;
        if (min_i < 0 || st[i].score < min) {
            min = st[i].score;
            min_i = (long)i;
        }
    }
    if (min_i < 0) return -1;
    for (i = 0; i < n; i++) {
        uint64_t w;
        if (st[i].score < 0 || st[i].score != min) continue;
        w = lbc_weight(h, servers, i, zero_mode);
        if (w == 0) continue;
        st[i].current += (int64_t)w;
        total += (int64_t)w;
        if (best < 0 || st[i].current > st[best].current) best = (long)i;
    }
    if (best < 0) return (int)min_i; /* weights changed under us */
    st[best].current -= total;
    return (int)best;
}

/**
 * Worker thread: folds one exchange into the server's average.  A failure
 * or timeout counts as at least failurePenalty.  Lock-free (CAS loop).
 */
static void lt_report(void *inst, const relais_servers *servers, int server,
                      int outcome, uint64_t latency_us)
{
    struct lt_inst *l = inst;
    const relais_host *h = l->host;
    uint64_t sample, old, next;
    struct lt_srv *s;

    (void)servers;
    if (server < 0 || (size_t)server >= l->nservers) return;
    s = &l->srv[server];
    sample = latency_us;
    if (outcome != RELAIS_OUTCOME_OK && sample < l->penalty_us) sample = l->penalty_us;
    if (sample > UINT64_MAX / (2 * LT_FIX)) sample = UINT64_MAX / (2 * LT_FIX);
    sample *= LT_FIX;
    do {
        old = relais_atomic_load_u64(&s->avg);
        if (old == 0) {
            next = sample + 1;
        } else {
            uint64_t avg = old - 1;
            /* avg + (sample - avg) / DIV, in unsigned arithmetic */
            if (sample >= avg) avg += (sample - avg) / LT_EWMA_DIV;
            else avg -= (avg - sample) / LT_EWMA_DIV;
            next = avg + 1;
        }
    } while (!relais_atomic_cas_u64(&s->avg, old, next));
    if (h->now_ms) relais_atomic_store_u64(&s->last_ms, h->now_ms());
}

/** The operations table. */
static const relais_lb_ops lt_ops = {
    .size = sizeof(relais_lb_ops),
    .create = lt_create,
    .destroy = lt_destroy,
    .pick = lt_pick,
    .report = lt_report,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "leasttime",
    .version = "1.0.0",
    .config_key = "leasttime",
    .description = "lowest moving-average response time times in-flight "
                   "requests, per weight; failures penalised",
    .load = NULL,
    .unload = NULL,
    .ops = &lt_ops,
};
