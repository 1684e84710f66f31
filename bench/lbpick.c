/*
 * bench/lbpick.c — the cost of one pick of every load-balancing strategy
 * plugin (plugins/lb: wrr, p2c, leastconn, leasttime, hrw, chash), measured
 * through the plugins' own shared objects and operation tables, outside
 * relais.  Not a test: never run by make check (bench/lb.sh builds and runs
 * it).
 *
 * Each strategy .so is dlopen()ed from a plugin directory and its
 * relais_plugin_descriptor checked (magic, ABI major, kind LB).  A minimal
 * fake host (the shape of tests/unit/test_lb_strategies.c's: servers,
 * configuration nodes, requests with memory and end callbacks, a clock and
 * a thread index) drives create / pick / report / destroy the way relais'
 * proxy does:
 *
 *   - N servers (4, 16, 256 by default), all up, weight 1, URLs
 *     http://127.0.0.1:PORT;
 *   - every thread keeps a window of W requests in flight (default 64,
 *     wrk -c64's): a pick takes the oldest slot, first ending the request
 *     in it (the server's in-flight count drops, report() gets a latency,
 *     the request's end callbacks run: chash releases its reservation),
 *     then picks for the new request and counts it in flight on the
 *     server picked, as the proxy does before connecting;
 *   - the reported latency is per server (1000 + 250 * (i % 4) us), so
 *     leasttime's averages differ between servers;
 *   - client addresses cycle through 4096 distinct "10.a.b.c" strings
 *     (hrw and chash key on them; the others ignore them);
 *   - the loadBalancer map is empty: every strategy runs with its
 *     defaults (chash: clientIP key, loadFactor 1.25, 128 virtual nodes).
 *
 * A "(harness)" row runs the same loop with a trivial built-in round robin
 * instead of a plugin: its time per pick is the fake host's own cost
 * (ending a request, in-flight counters, the clock), and the net_ns column
 * subtracts its cpu_ns from every strategy's of the same N.
 *
 * Timing: CLOCK_MONOTONIC (ns/pick: wall time) and CLOCK_THREAD_CPUTIME_ID
 * (cpu_ns: the thread's CPU time, which another process taking the CPU
 * does not inflate: read it first on a busy machine; the two agree on an
 * idle one) around M picks (default 2,000,000) after a warm-up of M/20 (at
 * most 50,000) untimed ones; a cell stops early when it has run --max-ms
 * (default 2000 ms wall, checked every 1024 picks), and the picks column
 * says how many were timed.  The max/avg column is the
 * busiest server's share of the timed picks over the mean share (1.00 =
 * even): a check that the strategy really spread the load.
 *
 * --threads 2 measures with two threads instead of one: they pick
 * concurrently on one instance and one set of servers (thread_count() = 2, thread_index() 0
 * and 1, shared atomic in-flight counters as in relais), each with its own
 * window; ns/pick and cpu_ns are per pick of one thread (the slower of the
 * two: the cost a worker sees under contention).  Pin the process to two CPUs to get
 * two really parallel threads (bench/lb.sh does).
 *
 * Usage:
 *   lbpick [--dir PLUGIN_DIR] [--picks M] [--max-ms MS] [--inflight W]
 *          [--servers 4,16,256] [--strategies wrr,p2c,...] [--threads 1|2]
 *
 * Build (bench/lb.sh does this):
 *   gcc -std=gnu11 -O2 -Wall -Wextra -I$SRCDIR/sdk bench/lbpick.c \
 *       -o lbpick -ldl -pthread
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <relais/plugin.h>

/** Largest number of servers a cell may have. */
#define LP_MAX_SERVERS 65536
/** Largest request window per thread. */
#define LP_MAX_WINDOW 4096
/** Distinct client addresses the requests cycle through (a power of 2). */
#define LP_NIPS 4096
/** Bytes of request memory (req_alloc) per request. */
#define LP_REQ_MEM 256
/** End callbacks per request (the host's limit). */
#define LP_REQ_CBS 16
/** Picks between two looks at the clock. */
#define LP_CHUNK 1024
/** Largest --picks. */
#define LP_MAX_PICKS 100000000L
/** Largest --max-ms. */
#define LP_MAX_MS 60000L
/** Strategies measured by default, in this order. */
static const char *const lp_default_strategies[] = {"wrr", "p2c", "leastconn",
                                                     "leasttime", "hrw", "chash"};

/* ---- fake servers -------------------------------------------------------- */

/** One fake server. */
struct lp_server {
    char url[48];      /* "http://127.0.0.1:PORT" */
    uint32_t weight;   /* weight (1) */
    int up;            /* 1 = usable */
    uint32_t inflight; /* requests in flight, all threads (atomic, relaxed) */
};

/** The servers of the fake service (the host's opaque type). */
struct relais_servers {
    size_t n;              /* servers */
    struct lp_server *v;   /* n servers */
};

/** Host accessors on the servers, as src/host_api.c implements them. */
static size_t fh_count(const relais_servers *s) { return s->n; }
static uint32_t fh_weight(const relais_servers *s, size_t i)
{
    return i < s->n ? s->v[i].weight : 0;
}
static int fh_up(const relais_servers *s, size_t i)
{
    return i < s->n ? __atomic_load_n(&s->v[i].up, __ATOMIC_RELAXED) : 0;
}
static const char *fh_url(const relais_servers *s, size_t i)
{
    return i < s->n ? s->v[i].url : NULL;
}
static uint32_t fh_inflight(const relais_servers *s, size_t i)
{
    return i < s->n ? __atomic_load_n(&s->v[i].inflight, __ATOMIC_RELAXED) : 0;
}

/* ---- fake configuration (an empty loadBalancer map) ----------------------- */

/** A configuration node: only empty maps exist here. */
struct relais_cfg {
    int type; /* enum relais_cfg_type */
};

/** The loadBalancer map handed to every create. */
static const relais_cfg g_lb_cfg = {RELAIS_CFG_MAP};

static int fc_type(const relais_cfg *c) { return c ? c->type : RELAIS_CFG_ABSENT; }
static const relais_cfg *fc_get(const relais_cfg *c, const char *key)
{
    (void)c;
    (void)key;
    return NULL;
}
static size_t fc_len(const relais_cfg *c)
{
    (void)c;
    return 0;
}
static const relais_cfg *fc_at(const relais_cfg *c, size_t i, const char **key)
{
    (void)c;
    (void)i;
    if (key) *key = NULL;
    return NULL;
}
static int fc_string(const relais_cfg *c, const char *key, const char **out)
{
    (void)c;
    (void)key;
    (void)out;
    return RELAIS_CFG_MISSING;
}
static int fc_int(const relais_cfg *c, const char *key, int64_t *out)
{
    (void)c;
    (void)key;
    (void)out;
    return RELAIS_CFG_MISSING;
}
static int fc_bool(const relais_cfg *c, const char *key, int *out)
{
    (void)c;
    (void)key;
    (void)out;
    return RELAIS_CFG_MISSING;
}
static int fc_real(const relais_cfg *c, const char *key, double *out)
{
    (void)c;
    (void)key;
    (void)out;
    return RELAIS_CFG_MISSING;
}
static int fc_duration(const relais_cfg *c, const char *key, int64_t *out)
{
    (void)c;
    (void)key;
    (void)out;
    return RELAIS_CFG_MISSING;
}
/** Prints a configuration error (a create refusing is fatal here). */
static void fc_error(const relais_cfg *c, const char *key, const char *fmt, ...)
{
    va_list ap;

    (void)c;
    fprintf(stderr, "lbpick: configuration error at %s: ", key ? key : "(loadBalancer)");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
/** Logs (create-time messages only). */
static void fh_log(int level, const char *who, const char *fmt, ...)
{
    va_list ap;

    if (level > RELAIS_LOG_WARN) return;
    fprintf(stderr, "lbpick: %s: ", who ? who : "plugin");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- fake requests -------------------------------------------------------- */

/** One request of a thread's window. */
struct relais_req {
    const char *ip;                   /* client address */
    int server;                       /* server picked, -1 when none */
    size_t used;                      /* bytes of mem handed out */
    size_t ncb;                       /* end callbacks registered */
    void (*cb[LP_REQ_CBS])(void *);   /* req_on_end callbacks */
    void *cbarg[LP_REQ_CBS];          /* their arguments */
    _Alignas(16) unsigned char mem[LP_REQ_MEM]; /* req_alloc arena */
};

static const char *fr_ip(relais_req *r) { return r->ip; }
static int fr_port(relais_req *r)
{
    (void)r;
    return 40000;
}
/** No request has headers: the header list is the request itself. */
static relais_hdrs *fr_headers(relais_req *r) { return (relais_hdrs *)r; }
static const char *fr_hdr_get(relais_hdrs *h, const char *name, size_t idx, size_t *vlen)
{
    (void)h;
    (void)name;
    (void)idx;
    if (vlen) *vlen = 0;
    return NULL;
}
static size_t fr_hdr_count(relais_hdrs *h)
{
    (void)h;
    return 0;
}
/** Bump allocation from the request's arena, zeroed; NULL when full. */
static void *fr_alloc(relais_req *r, size_t size)
{
    size_t at = (r->used + 15) & ~(size_t)15;
    void *p;

    if (size > LP_REQ_MEM || at > LP_REQ_MEM - size) return NULL;
    p = r->mem + at;
    memset(p, 0, size);
    r->used = at + size;
    return p;
}
static int fr_on_end(relais_req *r, void (*cb)(void *), void *arg)
{
    if (r->ncb >= LP_REQ_CBS) return -1;
    r->cb[r->ncb] = cb;
    r->cbarg[r->ncb++] = arg;
    return 0;
}

/* ---- clock and threads ---------------------------------------------------- */

/** Monotonic milliseconds, refreshed by the harness every LP_CHUNK picks
 *  (relais caches it once per event-loop turn). */
static uint64_t g_now_ms;
/** thread_count() of the instances being created and driven. */
static unsigned g_nthreads = 1;
/** thread_index() of the calling thread. */
static __thread unsigned t_index;

static uint64_t fh_now(void) { return __atomic_load_n(&g_now_ms, __ATOMIC_RELAXED); }
static unsigned fh_tindex(void) { return t_index; }
static unsigned fh_tcount(void) { return g_nthreads; }

/** The fake host table. */
static const relais_host g_host = {
    .size = sizeof(relais_host),
    .abi_major = RELAIS_ABI_MAJOR,
    .abi_minor = RELAIS_ABI_MINOR,
    .log = fh_log,
    .cfg_type = fc_type,
    .cfg_get = fc_get,
    .cfg_len = fc_len,
    .cfg_at = fc_at,
    .cfg_string = fc_string,
    .cfg_int = fc_int,
    .cfg_bool = fc_bool,
    .cfg_real = fc_real,
    .cfg_duration = fc_duration,
    .cfg_error = fc_error,
    .req_headers = fr_headers,
    .req_client_ip = fr_ip,
    .req_client_port = fr_port,
    .req_alloc = fr_alloc,
    .hdr_count = fr_hdr_count,
    .hdr_get = fr_hdr_get,
    .servers_count = fh_count,
    .server_weight = fh_weight,
    .server_up = fh_up,
    .server_url = fh_url,
    .server_inflight = fh_inflight,
    .now_ms = fh_now,
    .thread_index = fh_tindex,
    .thread_count = fh_tcount,
    .req_on_end = fr_on_end,
};

/** Nanoseconds of CLOCK_MONOTONIC. */
static uint64_t lp_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/** Nanoseconds of CPU time of the calling thread. */
static uint64_t lp_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the measured loop ---------------------------------------------------- */

/** A strategy under test: a plugin's operations, or the built-in harness
 *  round robin when ops is NULL. */
struct lp_strategy {
    const char *name;          /* as printed */
    const relais_lb_ops *ops;  /* the plugin's table, NULL = harness */
    void *dl;                  /* dlopen handle, NULL for the harness */
};

/** The client addresses requests cycle through. */
static char g_ips[LP_NIPS][16];

/** What one thread of a cell does and gets. */
struct lp_run {
    const struct lp_strategy *st; /* strategy */
    void *inst;                    /* its instance */
    relais_servers *servers;       /* the shared servers */
    unsigned index;                /* thread_index() of this thread */
    long picks;                    /* picks to time */
    long warm;                     /* untimed picks first */
    uint64_t max_ns;               /* stop timing after this long */
    size_t window;                 /* requests in flight */
    pthread_barrier_t *start;      /* both threads start together, or NULL */
    long done;                     /* timed picks made */
    uint64_t ns;                   /* their wall time */
    uint64_t cpu_ns;               /* their CPU time (this thread's) */
    uint64_t *count;               /* per server: timed picks (own array) */
    long none;                     /* picks that returned -1 */
    relais_req *reqs;              /* the window (own array) */
    unsigned rr;                   /* harness round-robin position */
};

/** Ends the request in r (if any), as relais does when an exchange ends:
 *  the in-flight count drops, report() gets the server's latency, the end
 *  callbacks run (last first).  Then r is free. */
static void lp_end(struct lp_run *run, relais_req *r)
{
    const relais_lb_ops *ops = run->st->ops;

    if (r->server >= 0) {
        __atomic_sub_fetch(&run->servers->v[r->server].inflight, 1, __ATOMIC_RELAXED);
        if (ops && ops->report)
            ops->report(run->inst, run->servers, r->server, RELAIS_OUTCOME_OK,
                        1000u + 250u * ((unsigned)r->server % 4u));
    }
    while (r->ncb > 0) {
        r->ncb--;
        r->cb[r->ncb](r->cbarg[r->ncb]);
    }
    r->used = 0;
    r->server = -1;
}

/** One request through the strategy: ends the oldest, picks for the new
 *  one (address k), counts it in flight.  Returns the server or -1. */
static int lp_one(struct lp_run *run, unsigned long k)
{
    relais_req *r = &run->reqs[k % run->window];
    int s;

    lp_end(run, r);
    r->ip = g_ips[(k * 7u + run->index * 1031u) & (LP_NIPS - 1)];
    if (run->st->ops) {
        s = run->st->ops->pick(run->inst, run->servers, r);
    } else {
        s = (int)(run->rr++ % run->servers->n);
    }
    if (s >= 0 && (size_t)s < run->servers->n) {
        __atomic_add_fetch(&run->servers->v[s].inflight, 1, __ATOMIC_RELAXED);
        r->server = s;
    }
    return s;
}

/** Thread body (also called directly for one thread): warm-up, then the
 *  timed picks in chunks until run->picks or run->max_ns, then ends every
 *  request of the window. */
static void *lp_thread(void *arg)
{
    struct lp_run *run = arg;
    unsigned long k = 0;
    uint64_t t0, t, c0;
    long i;
    size_t w;

    t_index = run->index;
    for (w = 0; w < run->window; w++) run->reqs[w].server = -1;
    for (i = 0; i < run->warm; i++, k++) lp_one(run, k);
    if (run->start) pthread_barrier_wait(run->start);
    c0 = lp_cpu_ns();
    t0 = t = lp_ns();
    while (run->done < run->picks && t - t0 < run->max_ns) {
        long n = run->picks - run->done < LP_CHUNK ? run->picks - run->done : LP_CHUNK;
        if (run->index == 0) __atomic_store_n(&g_now_ms, t / 1000000u, __ATOMIC_RELAXED);
        for (i = 0; i < n; i++, k++) {
            int s = lp_one(run, k);
            if (s >= 0) run->count[s]++;
            else run->none++;
        }
        run->done += n;
        t = lp_ns();
    }
    run->ns = t - t0;
    run->cpu_ns = lp_cpu_ns() - c0;
    for (w = 0; w < run->window; w++) lp_end(run, &run->reqs[w]);
    return NULL;
}

/** Result of one cell. */
struct lp_cell {
    double ns_per_pick; /* wall time over one thread's picks */
    double cpu_per_pick; /* CPU time over one thread's picks */
    long picks;         /* timed picks per thread (the smallest) */
    double max_avg;     /* busiest server's picks over the mean */
    long none;          /* picks that returned -1 */
};

/**
 * Measures strategy st on n servers with nthreads threads (1 or 2) on one
 * instance.  0 with *out filled, or -1 (message printed) when create
 * refuses or memory runs out.
 */
static int lp_cell(const struct lp_strategy *st, size_t n, unsigned nthreads, long picks,
                   uint64_t max_ns, size_t window, struct lp_cell *out)
{
    struct relais_servers servers = {n, NULL};
    struct lp_run runs[2];
    pthread_t tid[2];
    pthread_barrier_t bar;
    void *inst = NULL;
    uint64_t maxc = 0, total = 0;
    unsigned t;
    size_t i;
    int rc = -1;

    memset(runs, 0, sizeof(runs));
    servers.v = calloc(n, sizeof(*servers.v));
    if (!servers.v) goto out;
    for (i = 0; i < n; i++) {
        snprintf(servers.v[i].url, sizeof(servers.v[i].url), "http://127.0.0.1:%zu",
                 20000 + i);
        servers.v[i].weight = 1;
        servers.v[i].up = 1;
    }
    g_nthreads = nthreads;
    t_index = nthreads; /* create runs on the "control thread" */
    __atomic_store_n(&g_now_ms, lp_ns() / 1000000u, __ATOMIC_RELAXED);
    if (st->ops && st->ops->create(&g_host, &g_lb_cfg, &servers, &inst) != 0) {
        fprintf(stderr, "lbpick: %s refused to create an instance for %zu servers\n",
                st->name, n);
        goto out;
    }
    for (t = 0; t < nthreads; t++) {
        runs[t] = (struct lp_run){.st = st, .inst = inst, .servers = &servers, .index = t,
                                  .picks = picks, .warm = picks / 20 > 50000 ? 50000 : picks / 20,
                                  .max_ns = max_ns, .window = window,
                                  .start = nthreads > 1 ? &bar : NULL};
        runs[t].count = calloc(n, sizeof(uint64_t));
        runs[t].reqs = calloc(window, sizeof(relais_req));
        if (!runs[t].count || !runs[t].reqs) goto out;
    }
    if (nthreads == 1) {
        lp_thread(&runs[0]);
    } else {
        pthread_barrier_init(&bar, NULL, nthreads);
        for (t = 0; t < nthreads; t++) {
            if (pthread_create(&tid[t], NULL, lp_thread, &runs[t]) != 0) {
                fprintf(stderr, "lbpick: pthread_create failed\n");
                exit(1); /* a thread may wait on the barrier: no way back */
            }
        }
        for (t = 0; t < nthreads; t++) pthread_join(tid[t], NULL);
        pthread_barrier_destroy(&bar);
    }
    t_index = nthreads;
    out->ns_per_pick = 0;
    out->cpu_per_pick = 0;
    out->picks = runs[0].done;
    out->none = 0;
    for (t = 0; t < nthreads; t++) {
        double v = runs[t].done ? (double)runs[t].ns / (double)runs[t].done : 0;
        double c = runs[t].done ? (double)runs[t].cpu_ns / (double)runs[t].done : 0;
        if (v > out->ns_per_pick) out->ns_per_pick = v;
        if (c > out->cpu_per_pick) out->cpu_per_pick = c;
        if (runs[t].done < out->picks) out->picks = runs[t].done;
        out->none += runs[t].none;
    }
    for (i = 0; i < n; i++) {
        uint64_t c = 0;
        for (t = 0; t < nthreads; t++) c += runs[t].count[i];
        if (c > maxc) maxc = c;
        total += c;
    }
    out->max_avg = total ? (double)maxc * (double)n / (double)total : 0;
    for (i = 0; i < n; i++) {
        if (servers.v[i].inflight != 0) {
            fprintf(stderr, "lbpick: %s: server %zu still has %u in flight\n", st->name, i,
                    servers.v[i].inflight);
            goto out;
        }
    }
    rc = 0;
out:
    if (inst) st->ops->destroy(inst);
    for (t = 0; t < 2; t++) {
        free(runs[t].count);
        free(runs[t].reqs);
    }
    free(servers.v);
    return rc;
}

/* ---- plugins and command line --------------------------------------------- */

/**
 * Loads DIR/NAME.so and checks its descriptor: magic, ABI major, a minor
 * not above ours, kind LB, an operations table with create, destroy and
 * pick.  0 with *st filled, or -1 after a message.
 */
static int lp_load(const char *dir, const char *name, struct lp_strategy *st)
{
    char path[4096];
    const relais_plugin *d;
    const relais_lb_ops *ops;
    void *dl;

    snprintf(path, sizeof(path), "%s/%s.so", dir, name);
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "lbpick: %s\n", dlerror());
        return -1;
    }
    d = dlsym(dl, RELAIS_PLUGIN_SYMBOL);
    if (!d || d->magic != RELAIS_PLUGIN_MAGIC || d->abi_major != RELAIS_ABI_MAJOR ||
        d->abi_minor > RELAIS_ABI_MINOR || d->kind != RELAIS_KIND_LB || !d->ops) {
        fprintf(stderr, "lbpick: %s: no LB plugin descriptor of ABI %d.%d or older\n", path,
                RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        dlclose(dl);
        return -1;
    }
    ops = d->ops;
    if (ops->size < offsetof(relais_lb_ops, report) || !ops->create || !ops->destroy ||
        !ops->pick) {
        fprintf(stderr, "lbpick: %s: incomplete relais_lb_ops\n", path);
        dlclose(dl);
        return -1;
    }
    st->name = d->name ? d->name : name;
    st->ops = ops;
    st->dl = dl;
    if (ops->size < offsetof(relais_lb_ops, report) + sizeof(ops->report)) {
        static relais_lb_ops copy[16];
        static size_t ncopy;
        /* a table without report: use a copy with report NULL */
        if (ncopy < 16) {
            memcpy(&copy[ncopy], ops, ops->size);
            copy[ncopy].report = NULL;
            st->ops = &copy[ncopy++];
        }
    }
    return 0;
}

/** Parses a positive integer option value in [1, max]; exits on error. */
static long lp_num(const char *opt, const char *v, long max)
{
    char *end;
    long x;

    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < 1 || x > max) {
        fprintf(stderr, "lbpick: %s expects an integer from 1 to %ld\n", opt, max);
        exit(2);
    }
    return x;
}

/** Prints the usage line to f. */
static void lp_usage(FILE *f)
{
    fprintf(f, "usage: lbpick [--dir PLUGIN_DIR] [--picks M] [--max-ms MS] [--inflight W]\n"
               "              [--servers 4,16,256] [--strategies wrr,p2c,leastconn,leasttime,"
               "hrw,chash]\n"
               "              [--threads 1|2]\n");
}

/**
 * Prints one table: for every N, the harness row then every strategy,
 * with nthreads threads.  Returns the number of cells that failed.
 */
static int lp_table(const struct lp_strategy *sts, size_t nst, const size_t *ns, size_t nn,
                    unsigned nthreads, long picks, uint64_t max_ns, size_t window)
{
    const struct lp_strategy harness = {"(harness)", NULL, NULL};
    size_t a, b;
    int failed = 0;

    printf("# %u thread%s on one instance, %zu requests in flight per thread\n", nthreads,
           nthreads > 1 ? "s" : "", window);
    printf("%-11s %7s %9s %9s %9s %10s %8s\n", "strategy", "servers", "ns/pick", "cpu_ns",
           "net_ns", "picks", "max/avg");
    for (b = 0; b < nn; b++) {
        struct lp_cell base, c;
        if (lp_cell(&harness, ns[b], nthreads, picks, max_ns, window, &base) != 0) return 1;
        printf("%-11s %7zu %9.1f %9.1f %9s %10ld %8.2f\n", harness.name, ns[b],
               base.ns_per_pick, base.cpu_per_pick, "-", base.picks, base.max_avg);
        for (a = 0; a < nst; a++) {
            if (lp_cell(&sts[a], ns[b], nthreads, picks, max_ns, window, &c) != 0) {
                failed++;
                continue;
            }
            printf("%-11s %7zu %9.1f %9.1f %9.1f %10ld %8.2f%s\n", sts[a].name, ns[b],
                   c.ns_per_pick, c.cpu_per_pick, c.cpu_per_pick - base.cpu_per_pick, c.picks,
                   c.max_avg,
                   c.none ? "  (some picks returned -1)" : "");
            if (c.none) failed++;
        }
        fflush(stdout);
    }
    return failed;
}

int main(int argc, char **argv)
{
    const char *dir = ".", *names = NULL, *servers = "4,16,256";
    long picks = 2000000, max_ms = 2000, window = 64, threads = 1;
    struct lp_strategy sts[16];
    size_t nst = 0, ns[16], nn = 0, i;
    int failed = 0;
    char buf[512], *tok, *save;

    for (i = 1; i < (size_t)argc; i++) {
        const char *o = argv[i], *v = i + 1 < (size_t)argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            lp_usage(stdout);
            return 0;
        }
        if (!v) {
            lp_usage(stderr);
            return 2;
        }
        if (!strcmp(o, "--dir")) dir = v;
        else if (!strcmp(o, "--picks")) picks = lp_num(o, v, LP_MAX_PICKS);
        else if (!strcmp(o, "--max-ms")) max_ms = lp_num(o, v, LP_MAX_MS);
        else if (!strcmp(o, "--inflight")) window = lp_num(o, v, LP_MAX_WINDOW);
        else if (!strcmp(o, "--threads")) threads = lp_num(o, v, 2);
        else if (!strcmp(o, "--servers")) servers = v;
        else if (!strcmp(o, "--strategies")) names = v;
        else {
            lp_usage(stderr);
            return 2;
        }
        i++;
    }

    snprintf(buf, sizeof(buf), "%s", servers);
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nn == sizeof(ns) / sizeof(ns[0])) break;
        ns[nn++] = (size_t)lp_num("--servers", tok, LP_MAX_SERVERS);
    }
    if (nn == 0) {
        lp_usage(stderr);
        return 2;
    }
    if (names) {
        snprintf(buf, sizeof(buf), "%s", names);
        for (tok = strtok_r(buf, ",", &save); tok && nst < 16; tok = strtok_r(NULL, ",", &save))
            if (lp_load(dir, tok, &sts[nst]) == 0) nst++;
            else failed++;
    } else {
        for (i = 0; i < sizeof(lp_default_strategies) / sizeof(lp_default_strategies[0]); i++)
            if (lp_load(dir, lp_default_strategies[i], &sts[nst]) == 0) nst++;
            else failed++;
    }
    for (i = 0; i < LP_NIPS; i++)
        snprintf(g_ips[i], sizeof(g_ips[i]), "10.%zu.%zu.%zu", (i >> 8) & 255, i & 255,
                 (i * 37 + 1) & 255);

    printf("# lbpick: plugins from %s; up to %ld timed picks per cell (after %ld warm-up), "
           "at most %ld ms each\n", dir, picks, picks / 20 > 50000 ? 50000 : picks / 20, max_ms);
    printf("# servers all up, weight 1; empty loadBalancer map (defaults); %d client "
           "addresses; net_ns = cpu_ns - (harness)'s cpu_ns\n", LP_NIPS);
    failed += lp_table(sts, nst, ns, nn, (unsigned)threads, picks, (uint64_t)max_ms * 1000000u,
                       (size_t)window);
    for (i = 0; i < nst; i++) dlclose(sts[i].dl);
    return failed ? 1 : 0;
}
