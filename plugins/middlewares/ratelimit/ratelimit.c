/*
 * ratelimit — Traefik's rateLimit middleware (config key "rateLimit").
 * Module prefix: rl_.
 *
 * A token bucket per source (sourceCriterion: the client address by
 * default, or ipStrategy / requestHeaderName / requestHost): it refills at
 * average / period tokens per second up to burst tokens, and every request
 * takes one.  As Traefik does (golang.org/x/time/rate reservations):
 *  - a request that finds a token goes on at once;
 *  - a request that would have to wait for its token at most
 *    maxDelay = 1s / (2 * int(rate)) (500 ms when rate < 1/s) takes it and
 *    is held that long (suspended on a timer of its worker thread, not
 *    blocking it), then goes on;
 *  - any other request is answered 429 with body "Too Many Requests",
 *    headers Retry-After: ceil(wait in seconds) and X-Retry-In: the wait as
 *    Go prints a time.Duration ("19.98ms"), and takes no token.
 *
 *   http:
 *     middlewares:
 *       limit:
 *         rateLimit:
 *           average: 100     # 0 (the default): no limit
 *           period: 1s       # default 1s
 *           burst: 200       # default 1 (0 is 1)
 *           sourceCriterion: {requestHeaderName: X-Api-Key}
 *
 * Exact across worker threads: every bucket is read and updated under the
 * lock of its shard of a table of 65536 sources at most (mwsource.c); a
 * bucket unused for the time it needs to refill completely is dropped
 * (that loses nothing), and a full shard drops its least recently used
 * bucket.  Traefik's redis option (a distributed limiter) is not offered:
 * it is reported as an error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwsource.h"

/** Sources tracked at most (Traefik's maxSources). */
#define RL_MAX_SOURCES 65536u
/** Cap on average and burst. */
#define RL_MAX_COUNT 1000000000ll

/** One configured instance; the table is shared by every worker thread,
 *  the rest is read-only after create. */
struct rl_inst {
    const relais_host *host;  /* host function table */
    struct mws_source source; /* sourceCriterion */
    int unlimited;            /* average 0: every request goes on */
    double rate;              /* tokens per second */
    double burst;             /* bucket size */
    int64_t max_delay_ns;     /* longest wait a request is held for */
    struct mws_table table;   /* the buckets */
};

/** A request held for its token (in the request's memory). */
struct rl_wait {
    const relais_host *host; /* host function table */
    relais_req *req;         /* the held request */
    relais_timer *timer;     /* the timer that releases it */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void rl_destroy(void *inst)
{
    struct rl_inst *rl = inst;

    if (!rl) return;
    mws_source_release(&rl->source);
    mws_table_release(&rl->table);
    free(rl);
}

/**
 * Control thread.  Reads average, period, burst and sourceCriterion;
 * reports every problem with its key path.  0 and *inst set, or -1.
 */
static int rl_create(const relais_host *host, const relais_cfg *cfg,
                     const char *name, void **inst)
{
    static const char *const keys[] = {"average", "period", "burst",
                                       "sourceCriterion", "redis"};
    struct rl_inst *rl;
    int64_t average = 0, burst = 1, period_ms = 1000;
    int t = host->cfg_type(cfg), rc = 0, r;

    (void)name;
    rl = calloc(1, sizeof(*rl));
    if (!rl) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    rl->host = host;
    if (t != RELAIS_CFG_MAP && t != RELAIS_CFG_NULL && t != RELAIS_CFG_ABSENT) {
        host->cfg_error(cfg, NULL, "expected a map (average, period, burst, sourceCriterion)");
        goto fail;
    }
    if (t == RELAIS_CFG_MAP) {
        rc |= mws_check_keys(host, cfg, keys, sizeof(keys) / sizeof(keys[0]));
        if (host->cfg_get(cfg, "redis")) {
            host->cfg_error(cfg, "redis", "not supported by relais (the limit is per instance)");
            rc = -1;
        }
    }
    if (host->cfg_int(cfg, "average", &average) == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (average < 0 || average > RL_MAX_COUNT) {
        host->cfg_error(cfg, "average", "must be between 0 and %lld", RL_MAX_COUNT);
        rc = -1;
    }
    if (host->cfg_int(cfg, "burst", &burst) == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (burst < 0 || burst > RL_MAX_COUNT) {
        host->cfg_error(cfg, "burst", "must be between 0 and %lld", RL_MAX_COUNT);
        rc = -1;
    }
    r = host->cfg_duration(cfg, "period", &period_ms);
    if (r == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (period_ms < 0) {
        host->cfg_error(cfg, "period", "negative value not valid for period");
        rc = -1;
    }
    rc |= mws_source_parse(host, cfg, MWS_SRC_IP, &rl->source);
    if (rc) goto fail;
    if (period_ms == 0) period_ms = 1000;
    if (burst < 1) burst = 1;
    rl->burst = (double)burst;
    rl->unlimited = average == 0;
    if (!rl->unlimited) {
        double idle_s;
        rl->rate = (double)average * 1000.0 / (double)period_ms;
        if (rl->rate < 1.0)
            rl->max_delay_ns = 500000000ll;
        else
            rl->max_delay_ns = 1000000000ll / ((int64_t)rl->rate * 2);
        /* a bucket unused this long is full again: dropping it is exact */
        idle_s = (rl->burst + 1.0) / rl->rate + 1.0;
        if (idle_s > 1e9) idle_s = 1e9;
        if (mws_table_init(&rl->table, RL_MAX_SOURCES, (int64_t)(idle_s * 1e9), 1) < 0) {
            host->cfg_error(cfg, NULL, "out of memory");
            goto fail;
        }
    }
    *inst = rl;
    return 0;
fail:
    rl_destroy(rl);
    return -1;
}

/** Worker thread of the request: its wait is over, it goes on. */
static void rl_release(void *arg)
{
    struct rl_wait *w = arg;

    w->host->timer_free(w->timer);
    w->timer = NULL;
    w->host->req_resume(w->req, RELAIS_NEXT);
}

/**
 * Worker thread.  Answers 429 for a request that would wait wait_ns for
 * its token.  RELAIS_DONE, or RELAIS_ERROR when the answer failed.
 */
static int rl_refuse(const relais_host *host, relais_req *req, int64_t wait_ns)
{
    static const char body[] = "Too Many Requests";
    char after[32], in[40];
    relais_header h[2];

    snprintf(after, sizeof(after), "%.0f", ceil((double)wait_ns / 1e9));
    mws_go_duration(wait_ns, in, sizeof(in));
    h[0].name = "Retry-After";
    h[0].value = after;
    h[1].name = "X-Retry-In";
    h[1].value = in;
    if (host->respond(req, 429, h, 2, body, sizeof(body) - 1) < 0) return RELAIS_ERROR;
    return RELAIS_DONE;
}

/**
 * Worker thread.  Takes a token from the bucket of the request's source:
 * RELAIS_NEXT (a token was there), RELAIS_SUSPEND (held until its token
 * comes, at most max_delay), RELAIS_DONE (429 answered).
 */
static int rl_on_request(void *inst, relais_req *req, void **ctx)
{
    struct rl_inst *rl = inst;
    const relais_host *host = rl->host;
    char buf[MWS_IP_TEXT];
    const char *key = NULL;
    struct mws_shard *sh;
    struct mws_entry *e;
    struct rl_wait *w;
    size_t klen;
    int64_t now, wait_ns = 0;
    double tokens, elapsed;
    int created;

    (void)ctx;
    if (rl->unlimited) return RELAIS_NEXT;
    klen = mws_source_key(host, &rl->source, req, buf, sizeof(buf), &key);
    now = mws_now_ns();
    e = mws_table_get(&rl->table, key, klen, now, 1, &created, &sh);
    if (!e) {
        static const char msg[] = "could not insert/update bucket\n";
        if (host->respond(req, 500, NULL, 0, msg, sizeof(msg) - 1) < 0) return RELAIS_ERROR;
        return RELAIS_DONE;
    }
    if (created) {
        e->p.bucket.tokens = rl->burst;
        e->p.bucket.last_ns = now;
    }
    /* refill since the last look, then take one token */
    elapsed = now > e->p.bucket.last_ns ? (double)(now - e->p.bucket.last_ns) / 1e9 : 0.0;
    tokens = e->p.bucket.tokens + elapsed * rl->rate;
    if (tokens > rl->burst) tokens = rl->burst;
    if (now > e->p.bucket.last_ns) e->p.bucket.last_ns = now;
    tokens -= 1.0;
    if (tokens < 0) {
        double s = -tokens / rl->rate;
        wait_ns = s > 9e9 ? (int64_t)9e18 : (int64_t)(1e9 * s);
    }
    if (wait_ns > rl->max_delay_ns) tokens += 1.0; /* refused: the token stays */
    e->p.bucket.tokens = tokens;
    mws_table_unlock(sh);

    if (wait_ns > rl->max_delay_ns) return rl_refuse(host, req, wait_ns);
    if (wait_ns <= 0) return RELAIS_NEXT;
    /* hold the request until its token is there */
    w = host->req_alloc(req, sizeof(*w));
    if (!w) return RELAIS_NEXT;
    w->host = host;
    w->req = req;
    w->timer = host->timer_new(rl_release, w);
    if (!w->timer) return RELAIS_NEXT;
    if (host->timer_start(w->timer, (uint64_t)((wait_ns + 999999) / 1000000)) < 0) {
        host->timer_free(w->timer);
        return RELAIS_NEXT;
    }
    return RELAIS_SUSPEND;
}

/** The middleware operations. */
static const relais_middleware_ops rl_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = rl_create,
    .destroy = rl_destroy,
    .on_request = rl_on_request,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "ratelimit",
    "1.0.0",
    "rateLimit",
    "token bucket per source: average/period, burst (Traefik rateLimit)",
    NULL,
    NULL,
    &rl_ops,
};
