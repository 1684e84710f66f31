/*
 * metrics — see metrics.h.
 *
 * Layout: one struct mt_worker per worker thread (cache-line aligned), with
 * its cells in chunks of MT_CHUNK that never move, a count the worker
 * publishes with a release store, and a worker-private open-addressing
 * table key -> cell index for the hot path.  A cell holds every value of
 * one label set: requests, duration histogram (per-bucket counts, summed
 * into cumulative ones at render), duration sum (ms), request and response
 * body bytes.  The scraper merges all workers' cells by key into a local
 * table, sorts by family and names, and prints.
 */
#include "config.h"

#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "message.h"
#include "proxy.h"
#include "snapshot.h"
#include "static_config.h"
#include "tlsstore.h"
#include "worker.h"

/* ------------------------------------------------------------ configuration */

/** What metrics.prometheus asks for. */
struct mt_conf {
    double le[MT_MAX_BUCKETS]; /* histogram upper bounds (seconds), increasing */
    double le_us[MT_MAX_BUCKETS]; /* the same in µs (hot path compares) */
    size_t nb;                 /* how many */
    int ep_labels;             /* addEntryPointsLabels (default true) */
    int router_labels;         /* addRoutersLabels (default false) */
    int svc_labels;            /* addServicesLabels (default true) */
    size_t max_series;         /* maxSeries: cells per worker */
    int prometheus;            /* metrics.prometheus is configured */
};

/** Traefik's defaults. */
#define MT_CONF_DEFAULT                                                                  \
    {.le = {0.1, 0.3, 1.2, 5.0}, .le_us = {100000, 300000, 1200000, 5000000}, .nb = 4,              \
     .ep_labels = 1, .router_labels = 0, .svc_labels = 1,                                \
     .max_series = MT_DEFAULT_MAX_SERIES, .prometheus = 0}

static struct mt_conf mt_cf = MT_CONF_DEFAULT; /* set before the workers start */

/* ------------------------------------------------------------ names */

#define MT_NAME_CHUNK 1024 /* names per registry chunk */

/** Interned names of one kind: ids never change, names never move. */
struct mt_names {
    char **chunk[MT_MAX_NAMES / MT_NAME_CHUNK]; /* names by id, in chunks
                                                   (set before n covers them) */
    uint32_t n;       /* next id (id 0 is "none"; atomic, release store) */
    uint32_t *tab;    /* open addressing, ids by name hash (control thread) */
    size_t tabcap;    /* its size (power of two), 0 before the first */
    uint64_t refused; /* names refused once the registry was full */
};

static struct mt_names mt_reg[2]; /* MT_ROUTER, MT_SERVICE */

/* ------------------------------------------------------------ cells */

#define MT_CHUNK 256 /* cells per chunk */

/** Cell families (the key's top bits). */
enum mt_family { MT_F_EP = 1, MT_F_ROUTER = 2, MT_F_SERVICE = 3, MT_F_RETRY = 4 };

/** The values of one label set on one worker (single writer). */
struct mt_cell {
    uint64_t key;        /* packed label set (mt_key), set before publication */
    uint64_t count;      /* requests (retries for MT_F_RETRY) */
    uint64_t req_bytes;  /* request body bytes */
    uint64_t resp_bytes; /* response body bytes */
    uint64_t sum_us;     /* duration sum, µs */
    uint64_t bucket[];   /* requests per bucket (not cumulative); nb */
};

/** One worker's metrics. */
struct mt_worker {
    unsigned char **chunks; /* cell chunks (nchunks slots, filled in order) */
    size_t ncells;          /* cells published (release store) */
    uint64_t *hkeys;        /* worker-private table: keys (0 = free) */
    uint32_t *hidx;         /* their cell indexes */
    size_t hcap;            /* table size (power of two), 0 before use */
    uint64_t dropped;       /* label sets refused at the cap (atomic) */
    int64_t *udp_open;      /* UDP sessions per entry point (atomic) */
} __attribute__((aligned(64)));

static struct mt_worker *mt_w;         /* the workers' metrics */
static unsigned mt_nw;                 /* how many */
static const struct sc_config *mt_sc;  /* entry point names: the current
                                          version (atomic pointer: a change
                                          at run time swaps it, see
                                          mt_set_static) */
static size_t mt_stride;               /* bytes per cell */
static size_t mt_nchunks;              /* chunk slots per worker */
static uint64_t mt_reloads;            /* configurations applied (atomic) */
static uint64_t mt_reload_failures;    /* documents rejected (atomic) */
static int64_t mt_last_ok;             /* Unix time of the last applied one
                                          (atomic) */

/* Packs a label set: family 3 bits, id 20, id2 20, code 10, method 4,
 * protocol 3. */
static inline uint64_t mt_key(unsigned fam, uint32_t id, uint32_t id2, unsigned code,
                              unsigned method, unsigned proto)
{
    return (uint64_t)fam << 57 | (uint64_t)(id & 0xfffff) << 37 |
           (uint64_t)(id2 & 0xfffff) << 17 | (uint64_t)(code & 0x3ff) << 7 |
           (uint64_t)(method & 0xf) << 3 | (proto & 7);
}
#define MT_KFAM(k) ((unsigned)((k) >> 57))
#define MT_KID(k) ((uint32_t)(((k) >> 37) & 0xfffff))
#define MT_KID2(k) ((uint32_t)(((k) >> 17) & 0xfffff))
#define MT_KCODE(k) ((unsigned)(((k) >> 7) & 0x3ff))
#define MT_KMETHOD(k) ((unsigned)(((k) >> 3) & 0xf))
#define MT_KPROTO(k) ((unsigned)((k) & 7))

/* 64-bit mixer (splitmix64's finalizer) for the tables. */
static inline uint64_t mt_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* FNV-1a of a name (registry, control thread). */
static uint64_t mt_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static const char *const mt_methods[] = {"OTHER", "GET",  "HEAD",    "POST", "PUT",
                                         "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
#define MT_NMETHODS (sizeof(mt_methods) / sizeof(mt_methods[0]))

static const char *const mt_protos[MT_NPROTO] = {"http", "websocket", "sse", "grpc",
                                                 "grpc-web"};

/* ------------------------------------------------------------ configuration */

/* Parses buckets given as "0.1,0.3,1.2" (command-line flags) into le[].
 * Count, or -1 when a value is no number. */
static int mt_buckets_str(const char *s, double *le)
{
    int n = 0;

    while (*s) {
        char *end;
        double v;
        if (n == MT_MAX_BUCKETS) return MT_MAX_BUCKETS + 1;
        v = strtod(s, &end);
        if (end == s) return -1;
        while (*end == ' ') end++;
        if (*end && *end != ',') return -1;
        le[n++] = v;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* Reads metrics.prometheus.buckets into cf.  0 / -1 (error recorded). */
static int mt_read_buckets(const relais_cfg *p, struct mt_conf *cf)
{
    const relais_cfg *b = conf_cfg_get(p, "buckets");
    int t = conf_cfg_type(b), n = 0;
    double le[MT_MAX_BUCKETS + 1];

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t == RELAIS_CFG_LIST) {
        size_t len = conf_cfg_len(b);
        if (len > MT_MAX_BUCKETS) {
            conf_cfg_error(p, "buckets", "at most %d buckets", MT_MAX_BUCKETS);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            const relais_cfg *it = conf_cfg_at(b, i, NULL);
            if (conf_cfg_real(it, NULL, &le[n]) != RELAIS_CFG_OK) {
                if (conf_cfg_type(it) == RELAIS_CFG_NULL)
                    conf_cfg_error(it, NULL, "expected a number of seconds");
                return -1;
            }
            n++;
        }
    } else if (t == RELAIS_CFG_STRING || t == RELAIS_CFG_INT || t == RELAIS_CFG_REAL) {
        const char *s;
        if (t == RELAIS_CFG_STRING) {
            conf_cfg_string(p, "buckets", &s);
            n = mt_buckets_str(s, le);
        } else {
            conf_cfg_real(p, "buckets", &le[0]);
            n = 1;
        }
        if (n < 0) {
            conf_cfg_error(p, "buckets", "expected a list of numbers of seconds");
            return -1;
        }
        if (n > MT_MAX_BUCKETS) {
            conf_cfg_error(p, "buckets", "at most %d buckets", MT_MAX_BUCKETS);
            return -1;
        }
    } else {
        conf_cfg_error(p, "buckets", "expected a list of numbers of seconds");
        return -1;
    }
    if (n == 0) {
        conf_cfg_error(p, "buckets", "expected at least one bucket");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!isfinite(le[i])) {
            conf_cfg_error(p, "buckets", "bucket %d is not a finite number", i);
            return -1;
        }
        if (i > 0 && le[i] <= le[i - 1]) {
            conf_cfg_error(p, "buckets", "buckets must be in increasing order (%g after %g)",
                           le[i], le[i - 1]);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        cf->le[i] = le[i];
        cf->le_us[i] = le[i] * 1000000.0;
    }
    cf->nb = (size_t)n;
    return 0;
}

int mt_configure(const relais_cfg *node)
{
    static const char *const known[] = {"buckets", "addEntryPointsLabels",
                                        "addRoutersLabels", "addServicesLabels",
                                        "maxSeries", "entryPoint", "manualRouting", NULL};
    struct mt_conf cf = MT_CONF_DEFAULT;
    const relais_cfg *p;
    int t, bad = 0, on;
    int64_t v;

    mt_cf = cf;
    t = conf_cfg_type(node);
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        conf_cfg_error(node, NULL, "expected a map");
        return -1;
    }
    p = conf_cfg_get(node, "prometheus");
    t = conf_cfg_type(p);
    if (t == RELAIS_CFG_ABSENT) return 0;
    if (t == RELAIS_CFG_NULL) { /* "prometheus:" alone: on, defaults */
        mt_cf.prometheus = 1;
        return 0;
    }
    if (t == RELAIS_CFG_BOOL || t == RELAIS_CFG_STRING) { /* --metrics.prometheus=true */
        if (conf_cfg_bool(node, "prometheus", &on) != RELAIS_CFG_OK) return -1;
        mt_cf.prometheus = on;
        return 0;
    }
    if (t != RELAIS_CFG_MAP) {
        conf_cfg_error(node, "prometheus", "expected a map");
        return -1;
    }
    cf.prometheus = 1;
    for (size_t i = 0; i < conf_cfg_len(p); i++) {
        const char *k = NULL;
        int ok = 0;
        conf_cfg_at(p, i, &k);
        for (const char *const *q = known; *q && !ok; q++) ok = k && !strcasecmp(k, *q);
        if (ok) continue;
        if (k && !strcasecmp(k, "headerLabels"))
            conf_cfg_error(p, k, "not supported by relais");
        else
            conf_cfg_error(p, k, "unknown key (known: buckets, addEntryPointsLabels, "
                           "addRoutersLabels, addServicesLabels, maxSeries, entryPoint, "
                           "manualRouting)");
        bad = 1;
    }
    if (mt_read_buckets(p, &cf) < 0) bad = 1;
    if (conf_cfg_bool(p, "addEntryPointsLabels", &cf.ep_labels) < 0) bad = 1;
    if (conf_cfg_bool(p, "addRoutersLabels", &cf.router_labels) < 0) bad = 1;
    if (conf_cfg_bool(p, "addServicesLabels", &cf.svc_labels) < 0) bad = 1;
    switch (conf_cfg_int(p, "maxSeries", &v)) {
    case RELAIS_CFG_OK:
        if (v < 1 || v > 10000000) {
            conf_cfg_error(p, "maxSeries", "expected 1 to 10000000");
            bad = 1;
        } else {
            cf.max_series = (size_t)v;
        }
        break;
    case RELAIS_CFG_INVALID: bad = 1; break;
    default: break;
    }
    if (bad) return -1;
    mt_cf = cf;
    return 0;
}

void mt_set_static(const struct sc_config *sc)
{
    if (__atomic_load_n(&mt_sc, __ATOMIC_ACQUIRE)) __atomic_store_n(&mt_sc, sc, __ATOMIC_RELEASE);
}

int mt_prometheus_enabled(void)
{
    return mt_cf.prometheus;
}

/* ------------------------------------------------------------ lifecycle */

int mt_start(const struct sc_config *sc, unsigned nworkers)
{
    __atomic_store_n(&mt_sc, sc, __ATOMIC_RELEASE);
    mt_stride = sizeof(struct mt_cell) + mt_cf.nb * sizeof(uint64_t);
    mt_nchunks = (mt_cf.max_series + MT_CHUNK - 1) / MT_CHUNK;
    mt_w = aligned_alloc(64, sizeof(*mt_w) * (nworkers ? nworkers : 1));
    if (!mt_w) return -1;
    memset(mt_w, 0, sizeof(*mt_w) * (nworkers ? nworkers : 1));
    mt_nw = nworkers;
    for (unsigned i = 0; i < nworkers; i++) {
        mt_w[i].chunks = calloc(mt_nchunks, sizeof(*mt_w[i].chunks));
        mt_w[i].udp_open = calloc(SC_MAX_EPS, sizeof(int64_t)); /* per slot */
        if (!mt_w[i].chunks || !mt_w[i].udp_open) {
            mt_stop();
            return -1;
        }
    }
    return 0;
}

void mt_stop(void)
{
    struct mt_conf dflt = MT_CONF_DEFAULT;

    for (unsigned i = 0; mt_w && i < mt_nw; i++) {
        for (size_t c = 0; mt_w[i].chunks && c < mt_nchunks; c++) free(mt_w[i].chunks[c]);
        free(mt_w[i].chunks);
        free(mt_w[i].hkeys);
        free(mt_w[i].hidx);
        free(mt_w[i].udp_open);
    }
    free(mt_w);
    mt_w = NULL;
    mt_nw = 0;
    __atomic_store_n(&mt_sc, NULL, __ATOMIC_RELEASE);
    for (int k = 0; k < 2; k++) {
        struct mt_names *r = &mt_reg[k];
        for (uint32_t id = 1; id < r->n; id++) free(r->chunk[id / MT_NAME_CHUNK][id % MT_NAME_CHUNK]);
        for (size_t c = 0; c < MT_MAX_NAMES / MT_NAME_CHUNK; c++) free(r->chunk[c]);
        free(r->tab);
        memset(r, 0, sizeof(*r));
    }
    mt_cf = dflt;
    mt_reloads = mt_reload_failures = 0;
    mt_last_ok = 0;
}

/* ------------------------------------------------------------ names */

/* The name of id (NULL when none).  Any thread. */
static const char *mt_name(int kind, uint32_t id)
{
    const struct mt_names *r = &mt_reg[kind];

    if (id == 0 || id >= __atomic_load_n(&r->n, __ATOMIC_ACQUIRE)) return NULL;
    return r->chunk[id / MT_NAME_CHUNK][id % MT_NAME_CHUNK];
}

/* Doubles the registry's lookup table.  0 / -1. */
static int mt_names_grow(struct mt_names *r)
{
    size_t cap = r->tabcap ? r->tabcap * 2 : 256;
    uint32_t *t = calloc(cap, sizeof(*t));

    if (!t) return -1;
    for (uint32_t id = 1; id < r->n; id++) {
        size_t i = mt_hash_str(r->chunk[id / MT_NAME_CHUNK][id % MT_NAME_CHUNK]) & (cap - 1);
        while (t[i]) i = (i + 1) & (cap - 1);
        t[i] = id;
    }
    free(r->tab);
    r->tab = t;
    r->tabcap = cap;
    return 0;
}

uint32_t mt_intern(int kind, const char *name)
{
    struct mt_names *r;
    size_t i;
    uint32_t id;
    char *copy;

    if ((kind != MT_ROUTER && kind != MT_SERVICE) || !name) return 0;
    r = &mt_reg[kind];
    if (r->n == 0) r->n = 1;
    if ((r->n + 1) * 2 > r->tabcap && r->n < MT_MAX_NAMES && mt_names_grow(r) < 0) return 0;
    if (!r->tab) return 0;
    i = mt_hash_str(name) & (r->tabcap - 1);
    while ((id = r->tab[i]) != 0) {
        if (!strcmp(r->chunk[id / MT_NAME_CHUNK][id % MT_NAME_CHUNK], name)) return id;
        i = (i + 1) & (r->tabcap - 1);
    }
    id = r->n;
    if (id >= MT_MAX_NAMES) {
        r->refused++;
        return 0;
    }
    if (!r->chunk[id / MT_NAME_CHUNK]) {
        r->chunk[id / MT_NAME_CHUNK] = calloc(MT_NAME_CHUNK, sizeof(char *));
        if (!r->chunk[id / MT_NAME_CHUNK]) return 0;
    }
    copy = strdup(name);
    if (!copy) return 0;
    r->chunk[id / MT_NAME_CHUNK][id % MT_NAME_CHUNK] = copy;
    r->tab[i] = id;
    __atomic_store_n(&r->n, id + 1, __ATOMIC_RELEASE);
    return id;
}

void mt_reload(int ok)
{
    if (!ok) {
        __atomic_store_n(&mt_reload_failures, mt_reload_failures + 1, __ATOMIC_RELAXED);
        return;
    }
    __atomic_store_n(&mt_reloads, mt_reloads + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&mt_last_ok, (int64_t)time(NULL), __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ hot path */

int mt_method_index(const char *m, size_t len)
{
    for (size_t i = 1; i < MT_NMETHODS; i++)
        if (strlen(mt_methods[i]) == len && !memcmp(mt_methods[i], m, len)) return (int)i;
    return 0;
}

/* The cell i of w (published or being published by the caller). */
static inline struct mt_cell *mt_cell_at(const struct mt_worker *w, size_t i)
{
    return (struct mt_cell *)(w->chunks[i / MT_CHUNK] + (i % MT_CHUNK) * mt_stride);
}

/* Doubles w's private table.  0 / -1. */
static int mt_table_grow(struct mt_worker *w)
{
    size_t cap = w->hcap ? w->hcap * 2 : 256;
    uint64_t *k = calloc(cap, sizeof(*k));
    uint32_t *x = calloc(cap, sizeof(*x));

    if (!k || !x) {
        free(k);
        free(x);
        return -1;
    }
    for (size_t c = 0; c < w->ncells; c++) {
        uint64_t key = mt_cell_at(w, c)->key;
        size_t i = mt_mix(key) & (cap - 1);
        while (k[i]) i = (i + 1) & (cap - 1);
        k[i] = key;
        x[i] = (uint32_t)c;
    }
    free(w->hkeys);
    free(w->hidx);
    w->hkeys = k;
    w->hidx = x;
    w->hcap = cap;
    return 0;
}

/* The cell of key on w, made when new; NULL at the cap (counted) or when
 * memory ran out.  Worker thread of w. */
static struct mt_cell *mt_cell_get(struct mt_worker *w, uint64_t key)
{
    size_t i, n = w->ncells;
    struct mt_cell *c;

    if (w->hcap) {
        for (i = mt_mix(key) & (w->hcap - 1); w->hkeys[i]; i = (i + 1) & (w->hcap - 1))
            if (w->hkeys[i] == key) return mt_cell_at(w, w->hidx[i]);
    }
    if (n >= mt_cf.max_series) goto drop;
    if ((n + 1) * 2 > w->hcap && mt_table_grow(w) < 0) goto drop;
    if (!w->chunks[n / MT_CHUNK]) {
        w->chunks[n / MT_CHUNK] = calloc(MT_CHUNK, mt_stride);
        if (!w->chunks[n / MT_CHUNK]) goto drop;
    }
    c = mt_cell_at(w, n);
    c->key = key;
    for (i = mt_mix(key) & (w->hcap - 1); w->hkeys[i]; i = (i + 1) & (w->hcap - 1)) {
    }
    w->hkeys[i] = key;
    w->hidx[i] = (uint32_t)n;
    __atomic_store_n(&w->ncells, n + 1, __ATOMIC_RELEASE);
    return c;
drop:
    __atomic_store_n(&w->dropped, w->dropped + 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Single-writer add: the owner's relaxed store, torn-free for readers. */
#define MT_ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)

/* Adds one exchange to the cell of key. */
static inline void mt_add(struct mt_worker *w, uint64_t key, const struct mt_obs *o,
                          size_t bi)
{
    struct mt_cell *c = mt_cell_get(w, key);

    if (!c) return;
    MT_ADD(c->count, 1);
    MT_ADD(c->req_bytes, o->req_bytes);
    MT_ADD(c->resp_bytes, o->resp_bytes);
    MT_ADD(c->sum_us, o->dur_us);
    if (bi < mt_cf.nb) MT_ADD(c->bucket[bi], 1);
}

void mt_observe(unsigned worker, const struct mt_obs *o)
{
    struct mt_worker *w;
    unsigned code, method, proto;
    size_t bi = 0;

    if (!mt_w || worker >= mt_nw) return;
    w = &mt_w[worker];
    code = o->status > 0 && o->status < 1000 ? (unsigned)o->status : 0;
    method = o->method > 0 && (size_t)o->method < MT_NMETHODS ? (unsigned)o->method : 0;
    proto = o->proto > 0 && o->proto < MT_NPROTO ? (unsigned)o->proto : 0;
    while (bi < mt_cf.nb && (double)o->dur_us > mt_cf.le_us[bi]) bi++;
    if (o->ep >= 0) mt_add(w, mt_key(MT_F_EP, (uint32_t)o->ep, 0, code, method, proto), o, bi);
    if (o->router)
        mt_add(w, mt_key(MT_F_ROUTER, o->router, o->service, code, method, proto), o, bi);
    if (o->service) {
        mt_add(w, mt_key(MT_F_SERVICE, o->service, 0, code, method, proto), o, bi);
        if (o->retries) {
            struct mt_cell *c = mt_cell_get(w, mt_key(MT_F_RETRY, o->service, 0, 0, 0, 0));
            if (c) MT_ADD(c->count, o->retries);
        }
    }
}

/* 1 when value[0..len) starts with the media type t (case-insensitive),
 * followed by its end, ';', '+' or a space. */
static int mt_media_is(const char *v, size_t len, const char *t)
{
    size_t n = strlen(t);

    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    if (len < n || strncasecmp(v, t, n)) return 0;
    return len == n || v[n] == ';' || v[n] == '+' || v[n] == ' ' || v[n] == ',';
}

/* Traefik's protocol label of a request. */
static int mt_protocol(const struct relais_req *r)
{
    if (r->want_upgrade && r->upgrade_len == 9 && !strncasecmp(r->upgrade, "websocket", 9))
        return MT_PROTO_WEBSOCKET;
    for (uint32_t i = 0; i < r->req_hdrs.n; i++) {
        const struct msg_hdr *h = &r->req_hdrs.v[i];
        if (h->nlen == 6 && !strncasecmp(h->name, "accept", 6) &&
            mt_media_is(h->value, h->vlen, "text/event-stream"))
            return MT_PROTO_SSE;
        if (h->nlen == 12 && !strncasecmp(h->name, "content-type", 12)) {
            if (mt_media_is(h->value, h->vlen, "application/grpc-web")) return MT_PROTO_GRPC_WEB;
            if (mt_media_is(h->value, h->vlen, "application/grpc")) return MT_PROTO_GRPC;
        }
    }
    return MT_PROTO_HTTP;
}

void mt_request(const struct relais_req *r)
{
    struct mt_obs o;
    struct timespec ts;
    int64_t now_ns;

    if (!mt_w || !r->status || !r->w || r->internal_answer) return;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    o.ep = r->ep;
    o.router = r->router ? r->router->mt_id : 0;
    o.service = r->service ? r->service->mt_id : 0;
    o.status = r->status;
    o.method = r->method ? mt_method_index(r->method, r->method_len) : 0;
    o.proto = mt_protocol(r);
    o.dur_us = r->start_ns && now_ns > r->start_ns ? (uint64_t)(now_ns - r->start_ns) / 1000 : 0;
    o.req_bytes = r->req_body_bytes;
    o.resp_bytes = r->local ? r->local_body_len : r->body_out;
    o.retries = (unsigned)r->retried;
    mt_observe(r->w->index, &o);
}

void mt_udp_session(unsigned worker, int ep, int delta)
{
    int64_t *g;

    if (!mt_w || worker >= mt_nw || ep < 0 || ep >= SC_MAX_EPS) return;
    g = &mt_w[worker].udp_open[ep];
    __atomic_store_n(g, *g + delta, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ scrape */

/** Every worker's cells of one label set, summed. */
struct mt_series {
    uint64_t key;        /* label set */
    uint64_t count;      /* requests */
    uint64_t req_bytes;  /* request body bytes */
    uint64_t resp_bytes; /* response body bytes */
    uint64_t sum_us;     /* duration sum, µs */
    uint64_t *bucket;    /* per-bucket counts (nb, in the merge's block) */
};

/** The merge of every worker's cells. */
struct mt_merge {
    struct mt_series *v; /* series */
    size_t n;            /* how many */
    uint64_t *buckets;   /* n * nb bucket counts */
    uint64_t dropped;    /* label sets refused, all workers */
};

/* Sums every worker's cells into m (sorted later).  0 / -1 (memory). */
static int mt_merge(struct mt_merge *m)
{
    size_t total = 0, cap, nb = mt_cf.nb, *tab;

    memset(m, 0, sizeof(*m));
    for (unsigned i = 0; i < mt_nw; i++) {
        total += __atomic_load_n(&mt_w[i].ncells, __ATOMIC_ACQUIRE);
        m->dropped += __atomic_load_n(&mt_w[i].dropped, __ATOMIC_RELAXED);
    }
    for (cap = 16; cap < total * 2; cap *= 2) {
    }
    m->v = calloc(total ? total : 1, sizeof(*m->v));
    m->buckets = calloc(total * nb + 1, sizeof(uint64_t));
    tab = malloc(cap * sizeof(*tab));
    if (!m->v || !m->buckets || !tab) {
        free(tab);
        return -1;
    }
    memset(tab, 0xff, cap * sizeof(*tab));
    for (unsigned i = 0; i < mt_nw; i++) {
        const struct mt_worker *w = &mt_w[i];
        size_t n = __atomic_load_n(&w->ncells, __ATOMIC_ACQUIRE);
        for (size_t c = 0; c < n && m->n < total; c++) {
            const struct mt_cell *cl = mt_cell_at(w, c);
            size_t h = mt_mix(cl->key) & (cap - 1);
            struct mt_series *s;
            while (tab[h] != (size_t)-1 && m->v[tab[h]].key != cl->key) h = (h + 1) & (cap - 1);
            if (tab[h] == (size_t)-1) {
                tab[h] = m->n;
                s = &m->v[m->n];
                s->key = cl->key;
                s->bucket = m->buckets + m->n * nb;
                m->n++;
            }
            s = &m->v[tab[h]];
            s->count += __atomic_load_n(&cl->count, __ATOMIC_RELAXED);
            s->req_bytes += __atomic_load_n(&cl->req_bytes, __ATOMIC_RELAXED);
            s->resp_bytes += __atomic_load_n(&cl->resp_bytes, __ATOMIC_RELAXED);
            s->sum_us += __atomic_load_n(&cl->sum_us, __ATOMIC_RELAXED);
            for (size_t b = 0; b < nb; b++)
                s->bucket[b] += __atomic_load_n(&cl->bucket[b], __ATOMIC_RELAXED);
        }
    }
    free(tab);
    return 0;
}

/* The name of a series' object (entry point, router or service). */
static const char *mt_series_name(uint64_t key)
{
    uint32_t id = MT_KID(key);

    switch (MT_KFAM(key)) {
    case MT_F_EP: {
        /* a slot's name never changes: any version's table tells it */
        const struct sc_config *sc = __atomic_load_n(&mt_sc, __ATOMIC_ACQUIRE);
        return sc && id < sc->neps ? sc->eps[id].name : NULL;
    }
    case MT_F_ROUTER: return mt_name(MT_ROUTER, id);
    default: return mt_name(MT_SERVICE, id);
    }
}

/* qsort: by family, name, service name, code, method, protocol. */
static int mt_series_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct mt_series *)a)->key, y = ((const struct mt_series *)b)->key;
    const char *nx, *ny;
    int c;

    if (MT_KFAM(x) != MT_KFAM(y)) return MT_KFAM(x) < MT_KFAM(y) ? -1 : 1;
    nx = mt_series_name(x);
    ny = mt_series_name(y);
    if ((c = strcmp(nx ? nx : "", ny ? ny : ""))) return c;
    if (MT_KFAM(x) == MT_F_ROUTER) {
        nx = mt_name(MT_SERVICE, MT_KID2(x));
        ny = mt_name(MT_SERVICE, MT_KID2(y));
        if ((c = strcmp(nx ? nx : "", ny ? ny : ""))) return c;
    }
    return x < y ? -1 : x > y;
}

/** Which routers and services the current configuration has. */
struct mt_live {
    unsigned char *routers;  /* routers[id] = 1: in the configuration */
    unsigned char *services; /* services[id] = 1 */
    uint32_t nr, ns;         /* their sizes */
    struct snapshot *snap;   /* the snapshot they came from (a reference),
                                NULL before any: then everything is live */
    const struct sc_config *sc; /* the static configuration (entry points) */
};

/* Fills l from the published snapshot.  0 / -1 (memory). */
static int mt_live_get(struct mt_live *l)
{
    memset(l, 0, sizeof(*l));
    l->sc = __atomic_load_n(&mt_sc, __ATOMIC_ACQUIRE);
    l->nr = __atomic_load_n(&mt_reg[MT_ROUTER].n, __ATOMIC_ACQUIRE);
    l->ns = __atomic_load_n(&mt_reg[MT_SERVICE].n, __ATOMIC_ACQUIRE);
    l->snap = wk_current();
    l->routers = calloc(l->nr ? l->nr : 1, 1);
    l->services = calloc(l->ns ? l->ns : 1, 1);
    if (!l->routers || !l->services) return -1;
    if (!l->snap) {
        memset(l->routers, 1, l->nr);
        memset(l->services, 1, l->ns);
        return 0;
    }
    for (size_t i = 0; i < l->snap->nrouters; i++) {
        uint32_t id = l->snap->routers[i].mt_id;
        if (id && id < l->nr) l->routers[id] = 1;
    }
    for (size_t i = 0; i < l->snap->nservices; i++) {
        uint32_t id = l->snap->services[i]->mt_id;
        if (id && id < l->ns) l->services[id] = 1;
    }
    return 0;
}

/* Frees what mt_live_get made. */
static void mt_live_free(struct mt_live *l)
{
    free(l->routers);
    free(l->services);
    if (l->snap) snap_unref(l->snap);
}

/* 1 when series s is exported (its objects are in the configuration). */
static int mt_series_live(const struct mt_live *l, uint64_t key)
{
    uint32_t id = MT_KID(key), id2 = MT_KID2(key);

    switch (MT_KFAM(key)) {
    case MT_F_EP: return l->sc && sc_ep_live(l->sc, id);
    case MT_F_ROUTER:
        return id < l->nr && l->routers[id] && (!id2 || (id2 < l->ns && l->services[id2]));
    default: return id < l->ns && l->services[id];
    }
}

/** A growing text buffer. */
struct mt_buf {
    char *p;    /* text */
    size_t len; /* used */
    size_t cap; /* allocated */
    int oom;    /* an append failed */
};

/* Makes room for n more bytes.  0 / -1. */
static int mt_reserve(struct mt_buf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->oom) return -1;
    if (b->len + n + 1 <= b->cap) return 0;
    for (cap = b->cap ? b->cap : 4096; cap < b->len + n + 1; cap *= 2) {
    }
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* printf onto b. */
static void RELAIS_PRINTF(2, 3) mt_printf(struct mt_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || mt_reserve(b, (size_t)n) < 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends s as a label value: backslash, double quote and newline
 * escaped (text format 0.0.4). */
static void mt_esc(struct mt_buf *b, const char *s)
{
    if (!s) s = "";
    if (mt_reserve(b, strlen(s) * 2) < 0) return;
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = *s;
        } else if (*s == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else {
            b->p[b->len++] = *s;
        }
    }
    b->p[b->len] = '\0';
}

/* Appends a label list item: [,]name="escaped value". */
static void mt_label(struct mt_buf *b, int first, const char *name, const char *value)
{
    mt_printf(b, "%s%s=\"", first ? "" : ",", name);
    mt_esc(b, value);
    mt_printf(b, "\"");
}

/* The # HELP and # TYPE lines of a family. */
static void mt_head(struct mt_buf *b, const char *name, const char *type, const char *help)
{
    mt_printf(b, "# HELP relais_%s %s\n# TYPE relais_%s %s\n", name, help, name, type);
}

/* Appends the labels of a request series (code, method, protocol, then
 * entrypoint / router, service / service). */
static void mt_req_labels(struct mt_buf *b, uint64_t key)
{
    char code[8];

    snprintf(code, sizeof(code), "%u", MT_KCODE(key));
    mt_label(b, 1, "code", code);
    mt_label(b, 0, "method", mt_methods[MT_KMETHOD(key) < MT_NMETHODS ? MT_KMETHOD(key) : 0]);
    mt_label(b, 0, "protocol", mt_protos[MT_KPROTO(key) < MT_NPROTO ? MT_KPROTO(key) : 0]);
    switch (MT_KFAM(key)) {
    case MT_F_EP: mt_label(b, 0, "entrypoint", mt_series_name(key)); break;
    case MT_F_ROUTER:
        mt_label(b, 0, "router", mt_series_name(key));
        mt_label(b, 0, "service", mt_name(MT_SERVICE, MT_KID2(key)));
        break;
    default: mt_label(b, 0, "service", mt_series_name(key)); break;
    }
}

/* A bucket bound as Prometheus prints it: the shortest text that reads
 * back as the same double. */
static void mt_fmt_le(char *out, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

/* The four request families of one kind (prefix "entrypoint", "router" or
 * "service") over the live series of family fam in m. */
static void mt_req_families(struct mt_buf *b, const struct mt_merge *m,
                            const struct mt_live *l, unsigned fam, const char *prefix,
                            const char *what)
{
    static const char *const suffix[3] = {"requests_total", "requests_bytes_total",
                                          "responses_bytes_total"};
    static const char *const help[3] = {"HTTP requests processed on %s, by status code, "
                                        "method and protocol.",
                                        "Request body bytes received on %s, by status "
                                        "code, method and protocol.",
                                        "Response body bytes sent on %s, by status code, "
                                        "method and protocol."};
    size_t have = 0;
    char name[96], h[160];

    for (size_t i = 0; i < m->n; i++)
        if (MT_KFAM(m->v[i].key) == fam && mt_series_live(l, m->v[i].key)) have++;
    if (!have) return;
    for (int f = 0; f < 4; f++) {
        if (f == 1) { /* the histogram */
            snprintf(name, sizeof(name), "%s_request_duration_seconds", prefix);
            snprintf(h, sizeof(h), "Time spent on requests on %s (whole exchange, ms "
                     "resolution), by status code, method and protocol.", what);
            mt_head(b, name, "histogram", h);
            for (size_t i = 0; i < m->n; i++) {
                const struct mt_series *s = &m->v[i];
                uint64_t cum = 0;
                if (MT_KFAM(s->key) != fam || !mt_series_live(l, s->key)) continue;
                for (size_t k = 0; k <= mt_cf.nb; k++) {
                    char le[32];
                    if (k < mt_cf.nb) {
                        cum += s->bucket[k];
                        mt_fmt_le(le, sizeof(le), mt_cf.le[k]);
                    } else {
                        cum = s->count;
                        snprintf(le, sizeof(le), "+Inf");
                    }
                    mt_printf(b, "relais_%s_bucket{", name);
                    mt_req_labels(b, s->key);
                    mt_label(b, 0, "le", le);
                    mt_printf(b, "} %llu\n", (unsigned long long)cum);
                }
                mt_printf(b, "relais_%s_sum{", name);
                mt_req_labels(b, s->key);
                mt_printf(b, "} %.6f\n", (double)s->sum_us / 1000000.0);
                mt_printf(b, "relais_%s_count{", name);
                mt_req_labels(b, s->key);
                mt_printf(b, "} %llu\n", (unsigned long long)s->count);
            }
            continue;
        }
        int k = f == 0 ? 0 : f - 1;
        snprintf(name, sizeof(name), "%s_%s", prefix, suffix[k]);
        snprintf(h, sizeof(h), help[k], what);
        mt_head(b, name, "counter", h);
        for (size_t i = 0; i < m->n; i++) {
            const struct mt_series *s = &m->v[i];
            uint64_t v = k == 0 ? s->count : k == 1 ? s->req_bytes : s->resp_bytes;
            if (MT_KFAM(s->key) != fam || !mt_series_live(l, s->key)) continue;
            mt_printf(b, "relais_%s{", name);
            mt_req_labels(b, s->key);
            mt_printf(b, "} %llu\n", (unsigned long long)v);
        }
    }
}

/* relais_tls_certs_not_after: one series per distinct certificate of the
 * current configuration. */
static void mt_certs(struct mt_buf *b, const struct snapshot *s)
{
    struct mt_buf seen = {0};
    int headed = 0;

    for (size_t i = 0; s && s->tls; i++) {
        X509 *x = ts_conf_cert(s->tls, i);
        struct mt_buf lab = {0};
        char cn[256] = "", *serial = NULL;
        const ASN1_INTEGER *sn;
        BIGNUM *bn;
        STACK_OF(GENERAL_NAME) *gens;
        struct tm tm;
        int first = 1;

        if (!x) break;
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        sn = X509_get0_serialNumber(x);
        bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
        if (bn) serial = BN_bn2dec(bn);
        BN_free(bn);
        mt_label(&lab, 1, "cn", cn);
        mt_label(&lab, 0, "serial", serial ? serial : "");
        OPENSSL_free(serial);
        mt_printf(&lab, ",sans=\"");
        gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        for (int g = 0; gens && g < sk_GENERAL_NAME_num(gens); g++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, g);
            const unsigned char *d;
            char tmp[256];
            int len;
            if (gn->type != GEN_DNS) continue;
            d = ASN1_STRING_get0_data(gn->d.dNSName);
            len = ASN1_STRING_length(gn->d.dNSName);
            snprintf(tmp, sizeof(tmp), "%.*s", len, (const char *)d);
            if (!first) mt_printf(&lab, ",");
            mt_esc(&lab, tmp);
            first = 0;
        }
        GENERAL_NAMES_free(gens);
        mt_printf(&lab, "\"");
        if (lab.oom || ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
            free(lab.p);
            continue;
        }
        /* the same certificate twice (two stores, a resolver's copy):
           one series ("\n"-separated label texts seen so far) */
        mt_printf(&lab, "\n");
        if (!seen.p) mt_printf(&seen, "\n");
        if (seen.p && !lab.oom) {
            char *hit = NULL;
            for (char *q = seen.p; (q = strstr(q, lab.p)) != NULL; q++)
                if (q[-1] == '\n') {
                    hit = q;
                    break;
                }
            if (hit) {
                free(lab.p);
                continue;
            }
        }
        mt_printf(&seen, "%s", lab.p);
        lab.p[--lab.len] = '\0';
        if (!headed) {
            mt_head(b, "tls_certs_not_after", "gauge",
                    "Expiration of a certificate in use (Unix time), by common name, "
                    "serial number and DNS names.");
            headed = 1;
        }
        mt_printf(b, "relais_tls_certs_not_after{%s} %lld\n", lab.p, (long long)timegm(&tm));
        free(lab.p);
    }
    free(seen.p);
}

/* relais_service_server_up: every server of the current loadBalancer
 * services. */
static void mt_servers(struct mt_buf *b, const struct snapshot *s)
{
    int headed = 0;

    for (size_t i = 0; s && i < s->nservices; i++) {
        const struct snap_service *sv = s->services[i];
        if (sv->kind != SNAP_SVC_LB) continue;
        for (size_t k = 0; k < sv->servers.n; k++) {
            const struct snap_server *srv = &sv->servers.v[k];
            int dup = 0;
            for (size_t j = 0; j < k && !dup; j++) dup = !strcmp(sv->servers.v[j].url, srv->url);
            if (dup) continue;
            if (!headed) {
                mt_head(b, "service_server_up", "gauge",
                        "1 when a server of a service is up (health checks), 0 when down.");
                headed = 1;
            }
            mt_printf(b, "relais_service_server_up{");
            mt_label(b, 1, "service", sv->name);
            mt_label(b, 0, "url", srv->url);
            mt_printf(b, "} %d\n", __atomic_load_n(&srv->up, __ATOMIC_RELAXED) ? 1 : 0);
        }
    }
}

char *mt_render(size_t *len)
{
    struct mt_buf b = {0};
    struct mt_merge m;
    struct mt_live l;
    uint64_t dropped;
    int headed = 0;

    *len = 0;
    if ((mt_merge(&m) < 0) | (mt_live_get(&l) < 0)) {
        free(m.v);
        free(m.buckets);
        mt_live_free(&l);
        return NULL;
    }
    qsort(m.v, m.n, sizeof(*m.v), mt_series_cmp);
    dropped = m.dropped + mt_reg[MT_ROUTER].refused + mt_reg[MT_SERVICE].refused;

    mt_head(&b, "config_reloads_total", "counter", "Configurations applied.");
    mt_printf(&b, "relais_config_reloads_total %llu\n",
              (unsigned long long)__atomic_load_n(&mt_reloads, __ATOMIC_RELAXED));
    mt_head(&b, "config_reloads_failure_total", "counter",
            "Provider documents rejected (the previous configuration kept serving).");
    mt_printf(&b, "relais_config_reloads_failure_total %llu\n",
              (unsigned long long)__atomic_load_n(&mt_reload_failures, __ATOMIC_RELAXED));
    mt_head(&b, "config_last_reload_success", "gauge",
            "Unix time of the last configuration applied.");
    mt_printf(&b, "relais_config_last_reload_success %lld\n",
              (long long)__atomic_load_n(&mt_last_ok, __ATOMIC_RELAXED));
    for (size_t e = 0; l.sc && e < l.sc->neps; e++) {
        int64_t v = 0;
        if (!sc_ep_live(l.sc, e)) continue;
        if (!headed) {
            mt_head(&b, "open_connections", "gauge",
                    "Open connections (TCP) or sessions (UDP), by entry point and protocol.");
            headed = 1;
        }
        if (l.sc->eps[e].udp) {
            for (unsigned i = 0; i < mt_nw; i++)
                v += __atomic_load_n(&mt_w[i].udp_open[e], __ATOMIC_RELAXED);
        } else {
            v = wk_conns((int)e);
        }
        mt_printf(&b, "relais_open_connections{");
        mt_label(&b, 1, "entrypoint", l.sc->eps[e].name);
        mt_label(&b, 0, "protocol", l.sc->eps[e].udp ? "UDP" : "TCP");
        mt_printf(&b, "} %lld\n", (long long)(v > 0 ? v : 0));
    }
    mt_certs(&b, l.snap);
    if (mt_cf.ep_labels)
        mt_req_families(&b, &m, &l, MT_F_EP, "entrypoint", "an entry point");
    if (mt_cf.router_labels) mt_req_families(&b, &m, &l, MT_F_ROUTER, "router", "a router");
    if (mt_cf.svc_labels) {
        mt_req_families(&b, &m, &l, MT_F_SERVICE, "service", "a service");
        headed = 0;
        for (size_t i = 0; i < m.n; i++) {
            if (MT_KFAM(m.v[i].key) != MT_F_RETRY || !mt_series_live(&l, m.v[i].key)) continue;
            if (!headed) {
                mt_head(&b, "service_retries_total", "counter",
                        "Request retries on a service.");
                headed = 1;
            }
            mt_printf(&b, "relais_service_retries_total{");
            mt_label(&b, 1, "service", mt_series_name(m.v[i].key));
            mt_printf(&b, "} %llu\n", (unsigned long long)m.v[i].count);
        }
        mt_servers(&b, l.snap);
    }
    mt_head(&b, "metrics_series_dropped_total", "counter",
            "Label sets not counted: the per-worker series cap (metrics.prometheus."
            "maxSeries) or the name registry was full.");
    mt_printf(&b, "relais_metrics_series_dropped_total %llu\n", (unsigned long long)dropped);

    free(m.v);
    free(m.buckets);
    mt_live_free(&l);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* Adds n to obj[name][field]; a missing obj[name] is made when make is
 * set (no configuration yet), else the series is left out. */
static void mt_json_add(json_t *obj, const char *name, const char *field, uint64_t n,
                        int make)
{
    json_t *o, *v;

    if (!name) return;
    o = json_object_get(obj, name);
    if (!o && make) {
        o = json_pack("{s:I,s:I}", "requests", (json_int_t)0, "errors", (json_int_t)0);
        if (o && json_object_set_new(obj, name, o) < 0) o = NULL;
    }
    if (!o) return; /* only objects of the current configuration */
    v = json_object_get(o, field);
    json_object_set_new(o, field, json_integer(json_integer_value(v) + (json_int_t)n));
}

json_t *mt_stats(void)
{
    json_t *out = json_object(), *eps = json_object(), *rts = json_object(),
           *svs = json_object();
    struct mt_merge m;
    struct mt_live l;
    int ok;

    if (!out || !eps || !rts || !svs) goto oom;
    json_object_set_new(out, "entryPoints", eps);
    json_object_set_new(out, "routers", rts);
    json_object_set_new(out, "services", svs);
    ok = mt_merge(&m) == 0;
    if (mt_live_get(&l) < 0) ok = 0;
    for (size_t e = 0; ok && l.sc && e < l.sc->neps; e++) {
        int64_t v = 0;
        if (!sc_ep_live(l.sc, e)) continue;
        if (l.sc->eps[e].udp)
            for (unsigned i = 0; i < mt_nw; i++)
                v += __atomic_load_n(&mt_w[i].udp_open[e], __ATOMIC_RELAXED);
        else
            v = wk_conns((int)e);
        json_object_set_new(eps, l.sc->eps[e].name,
                            json_pack("{s:I,s:I}", "requests", (json_int_t)0,
                                      "openConnections", (json_int_t)(v > 0 ? v : 0)));
    }
    for (size_t i = 0; ok && l.snap && i < l.snap->nrouters; i++)
        json_object_set_new(rts, l.snap->routers[i].name,
                            json_pack("{s:I,s:I}", "requests", (json_int_t)0, "errors",
                                      (json_int_t)0));
    for (size_t i = 0; ok && l.snap && i < l.snap->nservices; i++)
        json_object_set_new(svs, l.snap->services[i]->name,
                            json_pack("{s:I,s:I}", "requests", (json_int_t)0, "errors",
                                      (json_int_t)0));
    for (size_t i = 0; ok && i < m.n; i++) {
        const struct mt_series *s = &m.v[i];
        json_t *obj = MT_KFAM(s->key) == MT_F_EP       ? eps
                      : MT_KFAM(s->key) == MT_F_ROUTER  ? rts
                      : MT_KFAM(s->key) == MT_F_SERVICE ? svs
                                                        : NULL;
        if (!obj || !mt_series_live(&l, s->key)) continue;
        mt_json_add(obj, mt_series_name(s->key), "requests", s->count, !l.snap);
        if (MT_KFAM(s->key) != MT_F_EP && MT_KCODE(s->key) >= 500)
            mt_json_add(obj, mt_series_name(s->key), "errors", s->count, !l.snap);
    }
    free(m.v);
    free(m.buckets);
    mt_live_free(&l);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
oom:
    json_decref(out);
    json_decref(eps);
    json_decref(rts);
    json_decref(svs);
    return NULL;
}
