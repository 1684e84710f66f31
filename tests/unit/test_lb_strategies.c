/*
 * test_lb_strategies.c — unit tests of the load-balancing strategy plugins
 * p2c, leastconn, leasttime, hrw and chash, driven through their operation
 * tables by a fake host (servers, configuration nodes, requests with
 * headers and end callbacks, a settable clock and thread index).
 *
 * The plugin sources are included here, each with its exported descriptor
 * renamed, so their static helpers are reachable too.
 *
 * Build (from the source tree):
 *   gcc -std=gnu11 -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined \
 *       -Isdk -Itests/unit tests/unit/test_lb_strategies.c -o test_lb_strategies
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tap.h"

#define relais_plugin_descriptor p2c_descriptor
#include "../../plugins/lb/p2c/p2c.c"
#undef relais_plugin_descriptor
#define relais_plugin_descriptor lc_descriptor
#include "../../plugins/lb/leastconn/leastconn.c"
#undef relais_plugin_descriptor
#define relais_plugin_descriptor lt_descriptor
#include "../../plugins/lb/leasttime/leasttime.c"
#undef relais_plugin_descriptor
#define relais_plugin_descriptor hrw_descriptor
#include "../../plugins/lb/hrw/hrw.c"
#undef relais_plugin_descriptor
#define relais_plugin_descriptor ch_descriptor
#include "../../plugins/lb/chash/chash.c"
#undef relais_plugin_descriptor

/* ---- fake servers ---- */

/** Cap on the fake servers. */
#define FS_MAX 8

/** The servers of a fake service. */
struct relais_servers {
    size_t n;                 /* servers */
    uint32_t weight[FS_MAX];  /* weights */
    int up[FS_MAX];           /* 1 = usable */
    uint32_t inflight[FS_MAX]; /* in flight */
    char url[FS_MAX][40];     /* URLs */
};

/** n servers of weight 1, all up, idle. */
static void fs_init(struct relais_servers *s, size_t n)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    s->n = n;
    for (i = 0; i < n; i++) {
        s->weight[i] = 1;
        s->up[i] = 1;
        snprintf(s->url[i], sizeof(s->url[i]), "http://10.0.0.%zu:8080", i + 1);
    }
}

static size_t fh_count(const relais_servers *s) { return s->n; }
static uint32_t fh_weight(const relais_servers *s, size_t i) { return s->weight[i]; }
static int fh_up(const relais_servers *s, size_t i) { return s->up[i]; }
static const char *fh_url(const relais_servers *s, size_t i) { return s->url[i]; }
static uint32_t fh_inflight(const relais_servers *s, size_t i) { return s->inflight[i]; }

/* ---- fake configuration ---- */

/** A configuration node: a map of scalars (enough for strategy options). */
struct relais_cfg {
    int type;                 /* enum relais_cfg_type */
    const char *key;          /* key in the parent map */
    const char *s;            /* scalar text (strings, numbers) */
    const struct relais_cfg *kids; /* map entries */
    size_t n;                 /* entries */
};

/** Key of the last cfg_error ("" when none). */
static char g_err_key[64];

static int fc_type(const relais_cfg *c) { return c ? c->type : RELAIS_CFG_ABSENT; }
static const relais_cfg *fc_get(const relais_cfg *c, const char *key)
{
    size_t i;

    if (!c || c->type != RELAIS_CFG_MAP) return NULL;
    for (i = 0; i < c->n; i++)
        if (!strcasecmp(c->kids[i].key, key)) return &c->kids[i];
    return NULL;
}
static size_t fc_len(const relais_cfg *c) { return c && c->type == RELAIS_CFG_MAP ? c->n : 0; }
static const relais_cfg *fc_at(const relais_cfg *c, size_t i, const char **key)
{
    if (!c || i >= c->n) return NULL;
    if (key) *key = c->kids[i].key;
    return &c->kids[i];
}
static void fc_error(const relais_cfg *c, const char *key, const char *fmt, ...)
{
    (void)c;
    (void)fmt;
    snprintf(g_err_key, sizeof(g_err_key), "%s", key ? key : "(node)");
}
static int fc_string(const relais_cfg *c, const char *key, const char **out)
{
    const relais_cfg *v = key ? fc_get(c, key) : c;

    if (!v) return RELAIS_CFG_MISSING;
    *out = v->s;
    return RELAIS_CFG_OK;
}
static int fc_int(const relais_cfg *c, const char *key, int64_t *out)
{
    const relais_cfg *v = key ? fc_get(c, key) : c;
    char *end;
    long long x;

    if (!v) return RELAIS_CFG_MISSING;
    x = strtoll(v->s, &end, 10);
    if (*end) {
        fc_error(c, key, "bad int");
        return RELAIS_CFG_INVALID;
    }
    *out = x;
    return RELAIS_CFG_OK;
}
static int fc_real(const relais_cfg *c, const char *key, double *out)
{
    const relais_cfg *v = key ? fc_get(c, key) : c;
    char *end;
    double x;

    if (!v) return RELAIS_CFG_MISSING;
    x = strtod(v->s, &end);
    if (*end) {
        fc_error(c, key, "bad real");
        return RELAIS_CFG_INVALID;
    }
    *out = x;
    return RELAIS_CFG_OK;
}
/** Durations: a number of milliseconds followed by "ms" only. */
static int fc_duration(const relais_cfg *c, const char *key, int64_t *out)
{
    const relais_cfg *v = key ? fc_get(c, key) : c;
    char *end;
    long long x;

    if (!v) return RELAIS_CFG_MISSING;
    x = strtoll(v->s, &end, 10);
    if (strcmp(end, "ms")) {
        fc_error(c, key, "bad duration");
        return RELAIS_CFG_INVALID;
    }
    *out = x;
    return RELAIS_CFG_OK;
}

/* ---- fake requests ---- */

/** A request: client IP, headers, memory and end callbacks. */
struct relais_req {
    const char *ip;          /* client address */
    const char *hname[4];    /* header names */
    const char *hval[4];     /* header values */
    size_t nh;               /* headers */
    void *mem[16];           /* req_alloc blocks */
    size_t nmem;             /* blocks */
    void (*cb[16])(void *);  /* req_on_end callbacks */
    void *cbarg[16];         /* their arguments */
    size_t ncb;              /* callbacks */
};

static const char *fr_ip(relais_req *r) { return r->ip; }
static relais_hdrs *fr_headers(relais_req *r) { return (relais_hdrs *)r; }
static const char *fr_hdr_get(relais_hdrs *h, const char *name, size_t idx, size_t *vlen)
{
    relais_req *r = (relais_req *)h;
    size_t i;

    for (i = 0; i < r->nh; i++) {
        if (strcasecmp(r->hname[i], name)) continue;
        if (idx-- == 0) {
            *vlen = strlen(r->hval[i]);
            return r->hval[i];
        }
    }
    return NULL;
}
static void *fr_alloc(relais_req *r, size_t size)
{
    if (r->nmem >= 16) return NULL;
    return r->mem[r->nmem++] = calloc(1, size);
}
static int fr_on_end(relais_req *r, void (*cb)(void *), void *arg)
{
    if (r->ncb >= 16) return -1;
    r->cb[r->ncb] = cb;
    r->cbarg[r->ncb++] = arg;
    return 0;
}
/** Ends a request: its callbacks (last first), then its memory. */
static void fr_end(relais_req *r)
{
    while (r->ncb > 0) {
        r->ncb--;
        r->cb[r->ncb](r->cbarg[r->ncb]);
    }
    while (r->nmem > 0) free(r->mem[--r->nmem]);
}

/* ---- clock and threads ---- */

static uint64_t g_now = 1000000;
static unsigned g_thread;
static uint64_t fh_now(void) { return g_now; }
static unsigned fh_tindex(void) { return g_thread; }
static unsigned fh_tcount(void) { return 2; }

static const relais_host g_host = {
    .size = sizeof(relais_host),
    .abi_major = RELAIS_ABI_MAJOR,
    .abi_minor = RELAIS_ABI_MINOR,
    .cfg_type = fc_type,
    .cfg_get = fc_get,
    .cfg_len = fc_len,
    .cfg_at = fc_at,
    .cfg_string = fc_string,
    .cfg_int = fc_int,
    .cfg_real = fc_real,
    .cfg_duration = fc_duration,
    .cfg_error = fc_error,
    .req_headers = fr_headers,
    .req_client_ip = fr_ip,
    .req_alloc = fr_alloc,
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

/** An empty loadBalancer map. */
static const relais_cfg g_empty = {RELAIS_CFG_MAP, "loadBalancer", NULL, NULL, 0};

/** Creates an instance of plugin d; NULL on failure. */
static void *mk(const relais_plugin *d, const relais_cfg *cfg, const relais_servers *s)
{
    const relais_lb_ops *ops = d->ops;
    void *inst = NULL;

    g_err_key[0] = 0;
    if (ops->create(&g_host, cfg ? cfg : &g_empty, s, &inst) != 0) return NULL;
    return inst;
}

/** pick through plugin d. */
static int pk(const relais_plugin *d, void *inst, const relais_servers *s, relais_req *r)
{
    return ((const relais_lb_ops *)d->ops)->pick(inst, s, r);
}

/** Destroys an instance. */
static void rm(const relais_plugin *d, void *inst)
{
    ((const relais_lb_ops *)d->ops)->destroy(inst);
}

/** Fails the create of plugin d with option map {key: val} under `sub`;
 *  returns 1 when create refused and the error named errkey. */
static int refuses(const relais_plugin *d, const char *sub, const char *k1, const char *v1,
                   const char *k2, const char *v2, const char *errkey)
{
    relais_cfg kids[2] = {{RELAIS_CFG_STRING, k1, v1, NULL, 0},
                          {RELAIS_CFG_STRING, k2, v2, NULL, 0}};
    relais_cfg opt = {RELAIS_CFG_MAP, sub, NULL, kids, k2 ? 2 : 1};
    relais_cfg lb = {RELAIS_CFG_MAP, "loadBalancer", NULL, &opt, 1};
    struct relais_servers s;
    void *inst;

    fs_init(&s, 3);
    inst = mk(d, &lb, &s);
    if (inst) {
        rm(d, inst);
        return 0;
    }
    return !strcmp(g_err_key, errkey);
}

/** Common checks: none up gives -1; a down server or a weight-0 one is
 *  never picked while others are; weight-0 servers serve when alone. */
static void common(const char *name, const relais_plugin *d)
{
    struct relais_servers s;
    relais_req r = {.ip = "192.0.2.7"};
    void *inst;
    int i, bad = 0, got1 = 0;
    char ip[32];

    fs_init(&s, 3);
    inst = mk(d, NULL, &s);
    ok(inst != NULL, "%s: create", name);
    if (!inst) return;
    s.up[0] = s.up[1] = s.up[2] = 0;
    ok(pk(d, inst, &s, &r) == -1, "%s: -1 when no server is up", name);
    s.up[0] = s.up[2] = 1;
    s.weight[2] = 0;
    for (i = 0; i < 300; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", i % 250);
        r.ip = ip;
        if (pk(d, inst, &s, &r) != 0) bad++;
        fr_end(&r);
    }
    ok(bad == 0, "%s: down server 1 and weight-0 server 2 never picked (%d)", name, bad);
    s.up[0] = 0;
    for (i = 0; i < 50; i++) {
        got1 += pk(d, inst, &s, &r) == 2;
        fr_end(&r);
    }
    ok(got1 == 50, "%s: a weight-0 server serves when alone (%d/50)", name, got1);
    rm(d, inst);
}

/** The p2c checks. */
static void test_p2c(void)
{
    struct relais_servers s;
    void *inst;
    int i, c[3] = {0, 0, 0}, same = 1;

    common("p2c", &p2c_descriptor);
    fs_init(&s, 3);
    inst = mk(&p2c_descriptor, NULL, &s);
    s.inflight[0] = 10;
    for (i = 0; i < 600; i++) c[pk(&p2c_descriptor, inst, &s, NULL)]++;
    ok(c[0] == 0 && c[1] > 200 && c[2] > 200,
       "p2c: the busiest of three is never picked (%d %d %d)", c[0], c[1], c[2]);
    s.n = 2;
    s.weight[0] = 3;
    s.inflight[0] = 3;
    s.inflight[1] = 1;
    for (i = 0; i < 50; i++) same &= pk(&p2c_descriptor, inst, &s, NULL) == 0;
    ok(same, "p2c: 3 in flight on weight 3 ties 1 on weight 1: the heavier wins");
    s.inflight[0] = 4;
    same = 1;
    for (i = 0; i < 50; i++) same &= pk(&p2c_descriptor, inst, &s, NULL) == 1;
    ok(same, "p2c: 4 on weight 3 loses to 1 on weight 1");
    rm(&p2c_descriptor, inst);
    s.n = 3;
    s.weight[0] = 2;
    s.inflight[0] = s.inflight[1] = s.inflight[2] = 0;
    s.weight[2] = 1;
    inst = mk(&p2c_descriptor, NULL, &s);
    c[0] = c[1] = c[2] = 0;
    g_thread = 1;
    for (i = 0; i < 4000; i++) c[pk(&p2c_descriptor, inst, &s, NULL)]++;
    g_thread = 0;
    /* idle: first draw weighted, ties go to the heavier: server 0 wins
     * whenever drawn (as first or second): 1 - P(draws are {1,2}) = 1 - 2/12 */
    ok(c[0] > 3000 && c[0] < 3700, "p2c: weight 2 of 2,1,1 idle wins ~83%% (%d/4000)", c[0]);
    rm(&p2c_descriptor, inst);
}

/** The leastconn checks. */
static void test_leastconn(void)
{
    struct relais_servers s;
    void *inst;
    int i, seq[6], c[3] = {0, 0, 0};

    common("leastconn", &lc_descriptor);
    fs_init(&s, 3);
    inst = mk(&lc_descriptor, NULL, &s);
    s.inflight[0] = 2;
    for (i = 0; i < 6; i++) seq[i] = pk(&lc_descriptor, inst, &s, NULL);
    ok(seq[0] != 0 && seq[0] + seq[1] == 3 && seq[2] == seq[0] && seq[3] == seq[1] &&
           seq[4] == seq[0] && seq[5] == seq[1],
       "leastconn: round robin among the two idle servers (%d %d %d %d)", seq[0], seq[1],
       seq[2], seq[3]);
    s.inflight[0] = 0;
    s.weight[1] = 2;
    for (i = 0; i < 400; i++) c[pk(&lc_descriptor, inst, &s, NULL)]++;
    ok(c[0] == 100 && c[1] == 200 && c[2] == 100,
       "leastconn: idle ties shared by weight 1,2,1 (%d %d %d)", c[0], c[1], c[2]);
    s.inflight[0] = 1;
    s.inflight[1] = 1;
    s.inflight[2] = 1;
    c[0] = c[1] = c[2] = 0;
    for (i = 0; i < 40; i++) c[pk(&lc_descriptor, inst, &s, NULL)]++;
    ok(c[1] == 40, "leastconn: 1 in flight on weight 2 beats 1 on weight 1 (%d)", c[1]);
    rm(&lc_descriptor, inst);
}

/** The leasttime checks. */
static void test_leasttime(void)
{
    struct relais_servers s;
    const relais_lb_ops *ops = lt_descriptor.ops;
    relais_cfg pen = {RELAIS_CFG_STRING, "failurePenalty", "2000ms", NULL, 0};
    relais_cfg opt = {RELAIS_CFG_MAP, "leasttime", NULL, &pen, 1};
    relais_cfg lb = {RELAIS_CFG_MAP, "loadBalancer", NULL, &opt, 1};
    struct lt_inst *l;
    void *inst;
    int i, seq[3];

    common("leasttime", &lt_descriptor);
    fs_init(&s, 3);
    inst = mk(&lt_descriptor, &lb, &s);
    ok(inst != NULL, "leasttime: failurePenalty accepted");
    if (!inst) return;
    l = inst;
    ok(l->penalty_us == 2000000, "leasttime: failurePenalty 2000ms read");
    for (i = 0; i < 3; i++) seq[i] = pk(&lt_descriptor, inst, &s, NULL);
    ok(seq[0] == 0 && seq[1] == 1 && seq[2] == 2, "leasttime: round robin before samples");
    ops->report(inst, &s, 0, RELAIS_OUTCOME_OK, 50000);
    ops->report(inst, &s, 1, RELAIS_OUTCOME_OK, 1000);
    ok(lt_average(l, 0, g_now) == 50000.0, "leasttime: first sample taken as is");
    ok(pk(&lt_descriptor, inst, &s, NULL) == 2, "leasttime: unmeasured server first");
    s.inflight[2] = 5; /* (0 + 1ms) * 6 = 6000 > (1ms + 1ms) * 1 */
    ok(pk(&lt_descriptor, inst, &s, NULL) == 1, "leasttime: in-flight counts with time");
    s.inflight[1] = 30; /* 2000 * 31 = 62000 > 51000 */
    s.inflight[2] = 60;
    ok(pk(&lt_descriptor, inst, &s, NULL) == 0, "leasttime: a slow idle server beats a "
       "loaded fast one");
    ops->report(inst, &s, 0, RELAIS_OUTCOME_OK, 10000);
    ok(lt_average(l, 0, g_now) == 45000.0, "leasttime: moving average, 1/8 new (%g)",
       lt_average(l, 0, g_now));
    ops->report(inst, &s, 1, RELAIS_OUTCOME_FAILED, 0);
    ok(lt_average(l, 1, g_now) == 1000.0 + (2000000.0 - 1000.0) / 8,
       "leasttime: a failure counts as failurePenalty (%g)", lt_average(l, 1, g_now));
    s.inflight[1] = s.inflight[2] = 0;
    s.up[2] = 0;
    ok(pk(&lt_descriptor, inst, &s, NULL) == 0, "leasttime: the failed server is avoided");
    g_now += 25000;
    ok(lt_average(l, 1, g_now) == (1000.0 + (2000000.0 - 1000.0) / 8) / 4,
       "leasttime: a stale average halves every 10 s");
    g_now -= 25000;
    rm(&lt_descriptor, inst);
    ok(refuses(&lt_descriptor, "leasttime", "bogus", "1", NULL, NULL, "bogus"),
       "leasttime: unknown option refused by name");
    ok(refuses(&lt_descriptor, "leasttime", "failurePenalty", "5000000ms", NULL, NULL,
               "failurePenalty"), "leasttime: failurePenalty above 1h refused");
}

/** Picks for n client addresses "10.1.x.y" into out[]. */
static void by_ip(const relais_plugin *d, void *inst, const relais_servers *s, int n,
                  int *out)
{
    int k;

    for (k = 0; k < n; k++) {
        char ip[32];
        relais_req r = {.ip = ip};
        snprintf(ip, sizeof(ip), "10.1.%d.%d", k / 250, k % 250);
        out[k] = pk(d, inst, s, &r);
        fr_end(&r);
    }
}

/** 1 when a and b differ by less than 1e-9. */
static int fabs_ok(double a, double b)
{
    double d = a - b;

    return d < 1e-9 && d > -1e-9;
}

/** The hrw checks. */
static void test_hrw(void)
{
    static int a[3000], b[3000];
    struct relais_servers s;
    void *inst;
    int k, c[3] = {0, 0, 0}, moved_wrong = 0, stable = 1;

    common("hrw", &hrw_descriptor);
    ok(fabs_ok(hrw_ln(0.5), -0.6931471805599453) && fabs_ok(hrw_ln(1e-10), -23.025850929940457) &&
           fabs_ok(hrw_ln(0.9999), -1.0000500033334732e-4),
       "hrw: natural logarithm");
    fs_init(&s, 3);
    inst = mk(&hrw_descriptor, NULL, &s);
    by_ip(&hrw_descriptor, inst, &s, 3000, a);
    by_ip(&hrw_descriptor, inst, &s, 3000, b);
    for (k = 0; k < 3000; k++) {
        stable &= a[k] == b[k];
        c[a[k]]++;
    }
    ok(stable, "hrw: one address, one server");
    ok(c[0] > 900 && c[1] > 900 && c[2] > 900, "hrw: 3000 addresses spread (%d %d %d)",
       c[0], c[1], c[2]);
    s.up[1] = 0;
    by_ip(&hrw_descriptor, inst, &s, 3000, b);
    for (k = 0; k < 3000; k++)
        if (b[k] == 1 || (a[k] != 1 && b[k] != a[k])) moved_wrong++;
    ok(moved_wrong == 0, "hrw: a server down moves only its own addresses (%d)", moved_wrong);
    s.up[1] = 1;
    s.weight[0] = 2;
    by_ip(&hrw_descriptor, inst, &s, 3000, a);
    c[0] = c[1] = c[2] = 0;
    for (k = 0; k < 3000; k++) c[a[k]]++;
    ok(c[0] > 1350 && c[0] < 1650, "hrw: weight 2 of 2,1,1 gets ~half (%d)", c[0]);
    rm(&hrw_descriptor, inst);
}

/** A chash loadBalancer map with up to 3 options. */
struct ch_cfg {
    relais_cfg kids[3]; /* options */
    relais_cfg opt;     /* the chash map */
    relais_cfg lb;      /* the loadBalancer map */
};

/** Fills c with the options (NULL-terminated key, value pairs). */
static const relais_cfg *ch_cfg(struct ch_cfg *c, const char *k1, const char *v1,
                                const char *k2, const char *v2, const char *k3,
                                const char *v3)
{
    const char *k[3] = {k1, k2, k3}, *v[3] = {v1, v2, v3};
    size_t i, n = 0;

    for (i = 0; i < 3 && k[i]; i++, n++)
        c->kids[i] = (relais_cfg){RELAIS_CFG_STRING, k[i], v[i], NULL, 0};
    c->opt = (relais_cfg){RELAIS_CFG_MAP, "chash", NULL, c->kids, n};
    c->lb = (relais_cfg){RELAIS_CFG_MAP, "loadBalancer", NULL, &c->opt, 1};
    return &c->lb;
}

/** The chash checks. */
static void test_chash(void)
{
    static int a[3000], b[3000];
    static relais_req reqs[30];
    struct relais_servers s;
    struct ch_cfg cc;
    void *ip_inst, *hdr_inst, *ck_inst;
    struct ch_inst *h;
    int k, c[3] = {0, 0, 0}, moved_wrong = 0, stable = 1, hot, first, maxc, same;

    common("chash", &ch_descriptor);
    ok(refuses(&ch_descriptor, "chash", "key", "query", NULL, NULL, "key"),
       "chash: bad key refused");
    ok(refuses(&ch_descriptor, "chash", "key", "header", NULL, NULL, "name"),
       "chash: header without name refused");
    ok(refuses(&ch_descriptor, "chash", "name", "X-User", NULL, NULL, "name"),
       "chash: name without header/cookie refused");
    ok(refuses(&ch_descriptor, "chash", "loadFactor", "0.9", NULL, NULL, "loadFactor"),
       "chash: loadFactor below 1 refused");
    ok(refuses(&ch_descriptor, "chash", "virtualNodes", "0", NULL, NULL, "virtualNodes"),
       "chash: virtualNodes 0 refused");
    ok(refuses(&ch_descriptor, "chash", "key", "cookie", "nmae", "sid", "nmae"),
       "chash: unknown option refused by name");
    ok(ch_cap(1.25, 19, 1, 3) == 9 && ch_cap(1.25, 0, 1, 3) == 1 && ch_cap(1.5, 1, 1, 3) == 1 &&
           ch_cap(1.0, 5, 1, 3) == 2 && ch_cap(1.25, 99, 2, 4) == 63,
       "chash: caps ceil(c * (L + 1) * w / W)");

    fs_init(&s, 3);
    ip_inst = mk(&ch_descriptor, NULL, &s);
    by_ip(&ch_descriptor, ip_inst, &s, 3000, a);
    by_ip(&ch_descriptor, ip_inst, &s, 3000, b);
    for (k = 0; k < 3000; k++) {
        stable &= a[k] == b[k];
        c[a[k]]++;
    }
    ok(stable, "chash: one address, one server");
    ok(c[0] > 750 && c[1] > 750 && c[2] > 750, "chash: 3000 addresses spread (%d %d %d)",
       c[0], c[1], c[2]);
    s.up[2] = 0;
    by_ip(&ch_descriptor, ip_inst, &s, 3000, b);
    for (k = 0; k < 3000; k++)
        if (b[k] == 2 || (a[k] != 2 && b[k] != a[k])) moved_wrong++;
    ok(moved_wrong == 0, "chash: a server down moves only its own keys (%d)", moved_wrong);
    s.up[2] = 1;

    hdr_inst = mk(&ch_descriptor, ch_cfg(&cc, "key", "header", "name", "X-User", NULL, NULL), &s);
    ok(hdr_inst != NULL, "chash: header key accepted");
    {
        relais_req r = {.ip = "10.1.0.5"};
        same = pk(&ch_descriptor, hdr_inst, &s, &r) == a[5];
        fr_end(&r);
        r.hname[0] = "x-user";
        r.hval[0] = "";
        r.nh = 1;
        same &= pk(&ch_descriptor, hdr_inst, &s, &r) == a[5];
        fr_end(&r);
        ok(same, "chash: no (or an empty) header: keyed on the client IP");
    }
    ck_inst = mk(&ch_descriptor, ch_cfg(&cc, "key", "cookie", "name", "sid", NULL, NULL), &s);
    ok(ck_inst != NULL, "chash: cookie key accepted");
    same = 1;
    for (k = 0; k < 200; k++) {
        char v[32], c1[80], c2[80];
        relais_req rh = {.ip = "10.9.9.9", .hname = {"X-User"}, .hval = {v}, .nh = 1};
        relais_req r1 = {.ip = "10.9.9.8", .hname = {"Cookie"}, .hval = {c1}, .nh = 1};
        relais_req r2 = {.ip = "10.9.9.7", .hname = {"Cookie", "Cookie"}, .hval = {"a=b", c2},
                         .nh = 2};
        snprintf(v, sizeof(v), "user%d", k);
        snprintf(c1, sizeof(c1), "sidx=1; sid=user%d;x=2", k);
        snprintf(c2, sizeof(c2), "x=1 ;  sid = \"user%d\" ", k);
        /* each exchange ends before the next: no load moves a key */
        b[k] = pk(&ch_descriptor, hdr_inst, &s, &rh);
        fr_end(&rh);
        same &= pk(&ch_descriptor, ck_inst, &s, &r1) == b[k];
        fr_end(&r1);
        same &= pk(&ch_descriptor, ck_inst, &s, &r2) == b[k];
        fr_end(&r2);
    }
    ok(same, "chash: a cookie value keys like the same header value (quotes, spaces, "
       "several Cookie headers)");
    rm(&ch_descriptor, ck_inst);

    /* bounded loads: 20 requests in flight at once on one hot key */
    h = hdr_inst;
    for (k = 0; k < 30; k++)
        reqs[k] = (relais_req){.ip = "10.0.0.1", .hname = {"X-User"}, .hval = {"hot"}, .nh = 1};
    first = pk(&ch_descriptor, hdr_inst, &s, &reqs[0]);
    fr_end(&reqs[0]);
    c[0] = c[1] = c[2] = 0;
    hot = 1;
    for (k = 0; k < 20; k++) {
        int p = pk(&ch_descriptor, hdr_inst, &s, &reqs[k]);
        c[p]++;
        g_thread = (unsigned)k & 1;
        if (k == 0) hot = p == first;
    }
    g_thread = 0;
    maxc = c[0] > c[1] ? c[0] : c[1];
    maxc = maxc > c[2] ? maxc : c[2];
    ok(hot && maxc <= 9 && c[first] == maxc,
       "chash: 20 in flight on a hot key: none above ceil(1.25*20/3)=9 (%d %d %d)", c[0], c[1],
       c[2]);
    ok(h->total == 20 && h->load[0] + h->load[1] + h->load[2] == 20,
       "chash: 20 reservations held");
    for (k = 0; k < 20; k++) fr_end(&reqs[k]);
    ok(h->total == 0 && h->load[0] == 0 && h->load[1] == 0 && h->load[2] == 0,
       "chash: reservations released when the exchanges end");
    ok(pk(&ch_descriptor, hdr_inst, &s, &reqs[0]) == first,
       "chash: the hot key is back on its server");
    fr_end(&reqs[0]);
    rm(&ch_descriptor, hdr_inst);
    rm(&ch_descriptor, ip_inst);

    s.weight[0] = 2;
    ip_inst = mk(&ch_descriptor, NULL, &s);
    by_ip(&ch_descriptor, ip_inst, &s, 3000, a);
    c[0] = 0;
    for (k = 0; k < 3000; k++) c[0] += a[k] == 0;
    ok(c[0] > 1200 && c[0] < 1800, "chash: weight 2 of 2,1,1 gets ~half the keys (%d)", c[0]);
    rm(&ch_descriptor, ip_inst);
}

int main(void)
{
    test_p2c();
    test_leastconn();
    test_leasttime();
    test_hrw();
    test_chash();
    return tap_done();
}
