/*
 * chash — consistent hashing with bounded loads (config key "chash", a
 * relais addition; Traefik has no such strategy).  Module prefix: ch_.
 *
 * The algorithm is the one of Mirrokni, Thorup and Zadimoghaddam,
 * "Consistent Hashing with Bounded Loads" (SODA 2018): servers are placed
 * on a hash ring (virtualNodes points each, scaled by weight); a request's
 * key is hashed onto the ring and walks clockwise to the first server
 * whose load is below its cap
 *
 *     cap_i = ceil(loadFactor * (L + 1) * w_i / W)
 *
 * where L is the number of requests in flight through this instance (the
 * new one makes L + 1), w_i the server's weight and W the total weight of
 * the usable servers (with equal weights: ceil(c * average)).  While
 * loads allow, a key therefore always maps to the same server, and a
 * server's load never exceeds its cap however hot one key gets.  Servers
 * down (server_up 0) are skipped; weight-0 servers take part (as weight 1)
 * only when no server of positive weight is up.
 *
 * Loads are counted exactly: a pick reserves its slot with compare-and-
 * swap on the server's counter (so two worker threads cannot both take
 * the last slot) and releases it when the exchange ends (host req_on_end,
 * ABI 1.4).  On an older host the host's in-flight counts are read
 * instead (approximate under concurrency).  When every server is at its
 * cap (only possible through races on the fallback path) the least loaded
 * usable server is taken.
 *
 * Options (loadBalancer.chash map, all optional):
 *   key:          clientIP (default) | header | cookie
 *   name:         the header or cookie name (required for header/cookie)
 *   loadFactor:   c, a number >= 1 (default 1.25)
 *   virtualNodes: ring points of the heaviest server, 1..10000 (default 128)
 * A request without the header / cookie (or with an empty value) is keyed
 * on its client IP.
 *
 * Threading: the ring is immutable after create; the load counters are
 * shared atomics; the ring walk's "visited" marks are per thread.
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

/** Cache line the per-thread arrays are aligned to. */
#define CH_CACHE_LINE 64
/** Cap on the servers of one service. */
#define CH_MAX_SERVERS 65536u
/** Cap on the threads (worker threads + the control thread). */
#define CH_MAX_THREADS 4096u
/** Cap on the points of one ring (virtualNodes shrinks to fit). */
#define CH_MAX_RING (1u << 22)
/** Default and largest virtualNodes. */
#define CH_VNODES_DEFAULT 128
#define CH_VNODES_MAX 10000
/** Default and largest loadFactor. */
#define CH_LOAD_FACTOR_DEFAULT 1.25
#define CH_LOAD_FACTOR_MAX 1000.0
/** Longest header or cookie name accepted. */
#define CH_NAME_MAX 256
/** Cookie headers looked at per request. */
#define CH_MAX_COOKIE_HEADERS 32

/** What a request is keyed on. */
enum ch_key {
    CH_KEY_CLIENT_IP = 0, /* the client address */
    CH_KEY_HEADER = 1,    /* the first value of a request header */
    CH_KEY_COOKIE = 2     /* a cookie's value */
};

/** One point of the ring. */
struct ch_point {
    uint64_t pos;    /* position on the ring */
    uint32_t server; /* index of the server it belongs to */
};

/** One load-balancer instance (one per service). */
struct ch_inst {
    const relais_host *host; /* host function table */
    int key;                 /* enum ch_key */
    char *name;              /* header / cookie name (owned), or NULL */
    size_t name_len;         /* strlen(name) */
    double load_factor;      /* c >= 1 */
    size_t nservers;         /* servers of the service (capped) */
    struct ch_point *ring;   /* nring points sorted by pos (immutable) */
    size_t nring;            /* points on the ring */
    int exact;               /* 1: own reservations released by req_on_end;
                                0: the host's in-flight counts */
    uint64_t *load;          /* per server: reservations held (atomic) */
    uint64_t total;          /* sum of load[] (atomic) */
    unsigned nslots;         /* per-thread mark arrays: thread_count() + 1 */
    size_t stride;           /* uint32_t entries per thread: [0] is the
                                thread's generation, [1 + i] server i's mark */
    uint32_t *marks;         /* nslots * stride entries, aligned */
};

/** A reservation to release when the exchange ends (request memory). */
struct ch_ticket {
    struct ch_inst *inst; /* the instance holding the reservation */
    uint32_t server;      /* the server reserved */
};

/** qsort order of ring points: by position, then server (deterministic). */
static int ch_point_cmp(const void *a, const void *b)
{
    const struct ch_point *x = a, *y = b;

    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->server < y->server ? -1 : x->server > y->server;
}

/**
 * Control thread.  Reads and validates loadBalancer.chash into c.  0, or
 * -1 after cfg_error naming the offending key.
 */
static int ch_read_options(const relais_host *host, const relais_cfg *cfg,
                           struct ch_inst *c, int64_t *vnodes)
{
    const relais_cfg *opt = host->cfg_get(cfg, "chash");
    const char *s = NULL;
    int t = opt ? host->cfg_type(opt) : RELAIS_CFG_ABSENT;
    size_t i;
    int rc;

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, "chash", "expected a map of chash options");
        return -1;
    }
    for (i = 0; i < host->cfg_len(opt); i++) {
        const char *k = NULL;
        host->cfg_at(opt, i, &k);
        if (!k || (strcasecmp(k, "key") && strcasecmp(k, "name") &&
                   strcasecmp(k, "loadFactor") && strcasecmp(k, "virtualNodes"))) {
            host->cfg_error(opt, k, "unknown chash option (known: key, name, "
                            "loadFactor, virtualNodes)");
            return -1;
        }
    }
    rc = host->cfg_string(opt, "key", &s);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (rc == RELAIS_CFG_OK) {
        if (!strcasecmp(s, "clientIP")) c->key = CH_KEY_CLIENT_IP;
        else if (!strcasecmp(s, "header")) c->key = CH_KEY_HEADER;
        else if (!strcasecmp(s, "cookie")) c->key = CH_KEY_COOKIE;
        else {
            host->cfg_error(opt, "key", "expected clientIP, header or cookie, "
                            "got \"%s\"", s);
            return -1;
        }
    }
    s = NULL;
    rc = host->cfg_string(opt, "name", &s);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (c->key == CH_KEY_CLIENT_IP && rc == RELAIS_CFG_OK) {
        host->cfg_error(opt, "name", "used only with key header or cookie");
        return -1;
    }
    if (c->key != CH_KEY_CLIENT_IP) {
        size_t len = rc == RELAIS_CFG_OK ? strlen(s) : 0;
        if (len == 0 || len > CH_NAME_MAX || strpbrk(s, " \t\r\n:;=,")) {
            host->cfg_error(opt, "name", "expected the %s name (1 to %d characters, "
                            "no spaces or separators)",
                            c->key == CH_KEY_HEADER ? "header" : "cookie", CH_NAME_MAX);
            return -1;
        }
        c->name = strdup(s);
        if (!c->name) {
            host->cfg_error(opt, "name", "out of memory");
            return -1;
        }
        c->name_len = len;
    }
    rc = host->cfg_real(opt, "loadFactor", &c->load_factor);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (!(c->load_factor >= 1.0 && c->load_factor <= CH_LOAD_FACTOR_MAX)) {
        host->cfg_error(opt, "loadFactor", "expected a number from 1 to %g",
                        CH_LOAD_FACTOR_MAX);
        return -1;
    }
    rc = host->cfg_int(opt, "virtualNodes", vnodes);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (*vnodes < 1 || *vnodes > CH_VNODES_MAX) {
        host->cfg_error(opt, "virtualNodes", "expected an integer from 1 to %d",
                        CH_VNODES_MAX);
        return -1;
    }
    return 0;
}

/**
 * Control thread.  Places max(1, round(vnodes * w_i / max_w)) points per
 * server (weight 0 counts as 1), shrinking vnodes so that the ring stays
 * under CH_MAX_RING points, and sorts them.  0, or -1 when memory runs
 * out.
 */
static int ch_build_ring(struct ch_inst *c, const relais_servers *servers,
                         int64_t vnodes)
{
    const relais_host *h = c->host;
    uint64_t max_w = 1, total = 0;
    size_t i, k = 0;

    for (i = 0; i < c->nservers; i++) {
        uint64_t w = h->server_weight(servers, i);
        if (w > max_w) max_w = w;
    }
    if ((uint64_t)vnodes * c->nservers > CH_MAX_RING)
        vnodes = c->nservers ? CH_MAX_RING / c->nservers : 1;
    if (vnodes < 1) vnodes = 1;
    for (i = 0; i < c->nservers; i++) {
        uint64_t w = h->server_weight(servers, i), v;
        if (w == 0) w = 1;
        v = ((uint64_t)vnodes * w + max_w / 2) / max_w;
        total += v ? v : 1;
    }
    c->ring = calloc(total ? total : 1, sizeof(*c->ring));
    if (!c->ring) return -1;
    for (i = 0; i < c->nservers; i++) {
        const char *url = h->server_url(servers, i);
        uint64_t w = h->server_weight(servers, i), v, j;
        uint64_t base = lbc_mix(url ? lbc_fnv1a(url, strlen(url)) : i);
        if (w == 0) w = 1;
        v = ((uint64_t)vnodes * w + max_w / 2) / max_w;
        if (v == 0) v = 1;
        for (j = 0; j < v && k < total; j++) {
            c->ring[k].pos = lbc_mix(base ^ lbc_mix(j + 1));
            c->ring[k].server = (uint32_t)i;
            k++;
        }
    }
    c->nring = k;
    qsort(c->ring, c->nring, sizeof(*c->ring), ch_point_cmp);
    return 0;
}

/** Control thread: frees the instance; NULL is a no-op. */
static void ch_destroy(void *inst)
{
    struct ch_inst *c = inst;

    if (!c) return;
    free(c->marks);
    free(c->load);
    free(c->ring);
    free(c->name);
    free(c);
}

/**
 * Control thread.  Validates the options, builds the ring and the
 * per-thread mark arrays.  0, or -1 after cfg_error.
 */
static int ch_create(const relais_host *host, const relais_cfg *cfg,
                     const relais_servers *servers, void **inst)
{
    struct ch_inst *c;
    int64_t vnodes = CH_VNODES_DEFAULT;
    size_t per_line = CH_CACHE_LINE / sizeof(uint32_t), bytes;
    unsigned threads;

    if (!host->servers_count || !host->server_weight || !host->server_up ||
        !host->server_url || !host->server_inflight || !host->thread_index ||
        !host->thread_count || !host->req_client_ip || !host->req_headers ||
        !host->hdr_get) {
        if (host->cfg_error)
            host->cfg_error(cfg, NULL, "chash: host lacks server, request or "
                            "thread accessors");
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (!c) goto nomem;
    c->host = host;
    c->load_factor = CH_LOAD_FACTOR_DEFAULT;
    if (ch_read_options(host, cfg, c, &vnodes) < 0) {
        ch_destroy(c);
        return -1;
    }
    c->nservers = host->servers_count(servers);
    if (c->nservers > CH_MAX_SERVERS) c->nservers = CH_MAX_SERVERS;
    if (ch_build_ring(c, servers, vnodes) < 0) goto nomem;
    c->load = calloc(c->nservers ? c->nservers : 1, sizeof(uint64_t));
    if (!c->load) goto nomem;
    c->exact = RELAIS_HOST_HAS(host, req_on_end) && RELAIS_HOST_HAS(host, req_alloc);
    threads = host->thread_count();
    if (threads > CH_MAX_THREADS - 1) threads = CH_MAX_THREADS - 1;
    c->nslots = threads + 1;
    c->stride = (c->nservers + 1 + per_line - 1) / per_line * per_line;
    bytes = c->stride * sizeof(uint32_t) * c->nslots;
    c->marks = aligned_alloc(CH_CACHE_LINE, bytes);
    if (!c->marks) goto nomem;
    memset(c->marks, 0, bytes);
    *inst = c;
    return 0;

nomem:
    ch_destroy(c);
    if (host->cfg_error) host->cfg_error(cfg, NULL, "chash: out of memory");
    return -1;
}

/**
 * Worker thread.  Finds the value of cookie `name` in the request's Cookie
 * headers ("a=1; b=2"; surrounding double quotes removed).  Returns a
 * pointer into the header (valid during the pick) and sets *len, or NULL.
 */
static const char *ch_cookie(const struct ch_inst *c, relais_hdrs *hdrs, size_t *len)
{
    const relais_host *h = c->host;
    size_t idx;

    for (idx = 0; idx < CH_MAX_COOKIE_HEADERS; idx++) {
        size_t vlen = 0;
        const char *v = h->hdr_get(hdrs, "Cookie", idx, &vlen), *end;
        if (!v) break;
        end = v + vlen;
        while (v < end) {
            const char *semi = memchr(v, ';', (size_t)(end - v)), *eq, *pe;
            if (!semi) semi = end;
            while (v < semi && (*v == ' ' || *v == '\t')) v++;
            eq = memchr(v, '=', (size_t)(semi - v));
            if (eq) {
                pe = eq;
                while (pe > v && (pe[-1] == ' ' || pe[-1] == '\t')) pe--;
                if ((size_t)(pe - v) == c->name_len && !memcmp(v, c->name, c->name_len)) {
                    const char *vs = eq + 1, *ve = semi;
                    while (vs < ve && (*vs == ' ' || *vs == '\t')) vs++;
                    while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                    if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
                        vs++;
                        ve--;
                    }
                    *len = (size_t)(ve - vs);
                    return vs;
                }
            }
            v = semi + 1;
        }
    }
    return NULL;
}

/** Worker thread: the hash of the request's key (header or cookie value,
 *  else the client IP). */
static uint64_t ch_key_hash(const struct ch_inst *c, relais_req *req)
{
    const relais_host *h = c->host;
    const char *v = NULL, *ip;
    size_t len = 0;

    if (!req) return lbc_mix(0);
    if (c->key != CH_KEY_CLIENT_IP) {
        relais_hdrs *hdrs = h->req_headers(req);
        if (hdrs) {
            if (c->key == CH_KEY_HEADER) v = h->hdr_get(hdrs, c->name, 0, &len);
            else v = ch_cookie(c, hdrs, &len);
        }
        if (v && len > 0) return lbc_mix(lbc_fnv1a(v, len));
    }
    ip = h->req_client_ip(req);
    return lbc_mix(lbc_fnv1a(ip ? ip : "", ip ? strlen(ip) : 0));
}

/** Worker thread, from req_on_end: releases a reservation. */
static void ch_release(void *arg)
{
    struct ch_ticket *t = arg;

    relais_atomic_sub_u64(&t->inst->load[t->server], 1);
    relais_atomic_sub_u64(&t->inst->total, 1);
}

/**
 * Worker thread.  Takes one slot of server i if its load is below cap
 * (force: whatever the load).  Exact mode: compare-and-swap on the
 * counter, then a release registered on the request (undone when that
 * fails).  Returns 1 when taken.
 */
static int ch_take(struct ch_inst *c, relais_req *req, size_t i, uint64_t cap,
                   int force)
{
    const relais_host *h = c->host;
    struct ch_ticket *t;
    uint64_t cur;

    if (!c->exact) return 1;
    do {
        cur = relais_atomic_load_u64(&c->load[i]);
        if (!force && cur >= cap) return 0;
    } while (!relais_atomic_cas_u64(&c->load[i], cur, cur + 1));
    relais_atomic_add_u64(&c->total, 1);
    t = req ? h->req_alloc(req, sizeof(*t)) : NULL;
    if (t) {
        t->inst = c;
        t->server = (uint32_t)i;
        if (h->req_on_end(req, ch_release, t) == 0) return 1;
    }
    /* no way to learn when the exchange ends: do not count it */
    relais_atomic_sub_u64(&c->load[i], 1);
    relais_atomic_sub_u64(&c->total, 1);
    return 1;
}

/** The bound on a server of weight w: ceil(c * (total + 1) * w / wsum),
 *  at least 1 (a product within 1e-9 of an integer counts as that integer,
 *  against rounding noise).  Pure. */
static uint64_t ch_cap(double c, uint64_t total, uint64_t w, uint64_t wsum)
{
    double x = c * (double)(total + 1) * (double)w / (double)wsum;
    uint64_t cap;

    if (x >= 1e18) return UINT64_MAX;
    cap = (uint64_t)x;
    if ((double)cap < x - 1e-9) cap++;
    return cap < 1 ? 1 : cap;
}

/**
 * Worker thread (or the control thread).  Walks the ring clockwise from
 * the key's position, each server once, and takes the first usable one
 * under its cap; when none is, the least loaded usable one.  Returns the
 * server index, or -1 when no server is up.
 */
static int ch_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    struct ch_inst *c = inst;
    const relais_host *h = c->host;
    size_t n = h->servers_count(servers), i, lo, hi, seen = 0, j;
    unsigned slot = h->thread_index();
    uint64_t wsum = 0, total = 0, key, min_load = 0, min_w = 0;
    uint32_t *marks, gen;
    int zero_mode;
    long min_i = -1;

    if (n > c->nservers) n = c->nservers;
    if (slot >= c->nslots) slot = c->nslots - 1;
    zero_mode = lbc_mode(h, servers, n);
    if (zero_mode < 0) return -1;
    for (i = 0; i < n; i++) {
        uint64_t w = lbc_weight(h, servers, i, zero_mode);
        if (w == 0) continue;
        wsum += w;
        if (!c->exact) total += h->server_inflight(servers, i);
    }
    if (wsum == 0 || c->nring == 0) return -1;
    if (c->exact) total = relais_atomic_load_u64(&c->total);
    marks = c->marks + (size_t)slot * c->stride;
    gen = ++marks[0];
    if (gen == 0) {
        memset(marks, 0, c->stride * sizeof(uint32_t));
        gen = marks[0] = 1;
    }
    key = ch_key_hash(c, req);
    lo = 0;
    hi = c->nring;
    while (lo < hi) { /* first point at or after key */
        size_t mid = lo + (hi - lo) / 2;
        if (c->ring[mid].pos < key) lo = mid + 1;
        else hi = mid;
    }
    for (j = 0; j < c->nring && seen < n; j++) {
        size_t s = c->ring[(lo + j) % c->nring].server;
        uint64_t w, load, cap;
        if (s >= n || marks[1 + s] == gen) continue;
        marks[1 + s] = gen;
        seen++;
        w = lbc_weight(h, servers, s, zero_mode);
        if (w == 0) continue;
        cap = ch_cap(c->load_factor, total, w, wsum);
        load = c->exact ? relais_atomic_load_u64(&c->load[s])
                        : h->server_inflight(servers, s);
        if (min_i < 0 || load * min_w < min_load * w) {
            min_load = load;
            min_w = w;
            min_i = (long)s;
        }
        if (load >= cap) continue;
        if (!c->exact || ch_take(c, req, s, cap, 0)) return (int)s;
    }
    if (min_i < 0) return -1;
    if (c->exact) ch_take(c, req, (size_t)min_i, 0, 1);
    return (int)min_i;
}

/** The operations table. */
static const relais_lb_ops ch_ops = {
    .size = sizeof(relais_lb_ops),
    .create = ch_create,
    .destroy = ch_destroy,
    .pick = ch_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "chash",
    .version = "1.0.0",
    .config_key = "chash",
    .description = "consistent hashing with bounded loads on the client IP, "
                   "a header or a cookie",
    .load = NULL,
    .unload = NULL,
    .ops = &ch_ops,
};
