/*
 * Unit tests of src/service.c: sticky values and Traefik's generated
 * cookie names (constants computed independently with Python's hashlib),
 * cookie attributes and their errors by key path, the weighted order
 * (exact split, unusable children skipped, weight 0), sticky pins on
 * servers and children (hashed and raw values, among other cookies),
 * Traefik's mirroring percent rule, failover by health, and svc_link's
 * missing names, cycles and propagation to parents.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "conf.h"
#include "message.h"
#include "proxy.h"
#include "service.h"
#include "snapshot.h"
#include "tap.h"

/* ---- a fake strategy: always the first usable server ---- */

static int fake_picks; /* picks made by the strategy */

static int fake_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    (void)inst;
    (void)req;
    fake_picks++;
    for (size_t i = 0; i < servers->n; i++)
        if (servers->v[i].up && servers->v[i].weight) return (int)i;
    return -1;
}

static const relais_lb_ops fake_ops = {.size = sizeof(relais_lb_ops), .pick = fake_pick};

/* A leaf service named name with n servers http://127.0.0.1:(9000+i). */
static struct snap_service *leaf_new(const char *name, size_t n)
{
    struct snap_service *s = calloc(1, sizeof(*s));
    char url[64];

    s->kind = SNAP_SVC_LB;
    s->name = strdup(name);
    s->lb_ops = &fake_ops;
    s->lb_inst = s;
    s->servers.v = calloc(n, sizeof(*s->servers.v));
    s->servers.n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%zu", 9000 + i);
        s->servers.v[i].url = strdup(url);
        s->servers.v[i].weight = 1;
        s->servers.v[i].up = 1;
        svc_sticky_value(url, s->servers.v[i].sticky);
    }
    return s;
}

/* A weighted / mirroring / failover service parsed from JSON text (the
 * map under its kind's key); errors are returned joined in err. */
static struct snap_service *tree_new(const char *name, int kind, const char *json, char *err,
                                     size_t errlen)
{
    struct snap_service *s = calloc(1, sizeof(*s));
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    char path[128];
    struct conf_session *cs;
    const relais_cfg *root;
    const char *key = kind == SNAP_SVC_WEIGHTED ? "weighted"
                      : kind == SNAP_SVC_MIRRORING ? "mirroring"
                                                   : "failover";

    s->name = strdup(name);
    snprintf(path, sizeof(path), "http.services.%s.%s", name, key);
    cs = conf_session_new(path);
    root = conf_session_root(cs, v);
    svc_parse(s, root, kind, "file");
    err[0] = '\0';
    for (size_t i = 0; i < conf_session_nerrors(cs); i++)
        snprintf(err + strlen(err), errlen - strlen(err), "%s%s", i ? "; " : "",
                 conf_session_error(cs, i));
    if (conf_session_nerrors(cs)) s->status = SNAP_DISABLED;
    conf_session_free(cs);
    json_decref(v);
    return s;
}

static void svc_free_all(struct snapshot *snap)
{
    for (size_t i = 0; i < snap->nservices; i++) {
        struct snap_service *s = snap->services[i];
        svc_clear(s);
        for (size_t j = 0; j < s->servers.n; j++) free(s->servers.v[j].url);
        free(s->servers.v);
        free(s->name);
        free(s->error);
        free(s->origin);
        free(s);
    }
    free(snap->services);
    snap->services = NULL;
    snap->nservices = 0;
}

static void snap_add(struct snapshot *snap, struct snap_service *s)
{
    snap->services = realloc(snap->services, (snap->nservices + 1) * sizeof(*snap->services));
    snap->services[snap->nservices++] = s;
}

/* A request with the given Cookie header (or none). */
static void req_init(struct relais_req *r, struct arena *a, const char *cookie)
{
    memset(r, 0, sizeof(*r));
    r->arena = a;
    msg_hdrs_init(&r->req_hdrs, a, 4, 16);
    msg_hdrs_add(&r->req_hdrs, "User-Agent", 10, "t", 1, 0);
    if (cookie) msg_hdrs_add(&r->req_hdrs, "Cookie", 6, cookie, strlen(cookie), 0);
}

/* ---- cookies ---- */

static void test_values(void)
{
    char v[17];

    svc_sticky_value("http://127.0.0.1:19102", v);
    ok(!strcmp(v, "9aadb3c49bb02a01"), "FNV-1a-64 of a URL in lowercase hex (%s)", v);
    svc_sticky_value("v1@file", v);
    ok(!strcmp(v, "30ae0c25b58164ce"), "FNV-1a-64 of a service name (%s)", v);
    svc_sticky_value("", v);
    ok(!strcmp(v, "cbf29ce484222325"), "FNV-1a-64 of nothing is the offset basis");
}

/* Parses {"sticky": <sticky>} for service qname; returns the cookie and
 * the errors. */
static struct snap_cookie *cookie_of(const char *sticky, const char *qname, char *err,
                                     size_t errlen)
{
    char doc[512];
    json_t *v;
    struct conf_session *cs = conf_session_new("http.services.s@file.loadBalancer");
    struct snap_cookie *c = NULL;

    snprintf(doc, sizeof(doc), "{\"sticky\": %s}", sticky);
    v = json_loads(doc, 0, NULL);
    svc_cookie_parse(conf_session_root(cs, v), qname, &c);
    err[0] = '\0';
    for (size_t i = 0; i < conf_session_nerrors(cs); i++)
        snprintf(err + strlen(err), errlen - strlen(err), "%s", conf_session_error(cs, i));
    conf_session_free(cs);
    json_decref(v);
    return c;
}

static void test_cookie_parse(void)
{
    char err[512];
    struct snap_cookie *c;

    c = cookie_of("{\"cookie\": {}}", "st@file", err, sizeof(err));
    ok(c && !strcmp(c->name, "_da847"), "generated name is Traefik's (%s)", c ? c->name : "-");
    ok(c && !strcmp(c->attrs, "; Path=/"), "default attributes: Path=/ only");
    svc_cookie_free(c);
    c = cookie_of("{\"cookie\": {}}", "whoami@docker", err, sizeof(err));
    ok(c && !strcmp(c->name, "_633ff"), "generated name for whoami@docker");
    svc_cookie_free(c);
    c = cookie_of("{\"cookie\": {\"name\": \"s1\", \"httpOnly\": true, \"secure\": true, "
                  "\"sameSite\": \"lax\", \"maxAge\": 60, \"path\": \"/app\", \"domain\": "
                  "\"example.test\"}}",
                  "s@file", err, sizeof(err));
    ok(c && !strcmp(c->attrs, "; Path=/app; Domain=example.test; Max-Age=60; HttpOnly; Secure; "
                              "SameSite=Lax"),
       "every attribute, in Go's order (%s)", c ? c->attrs : err);
    svc_cookie_free(c);
    c = cookie_of("{\"cookie\": {\"name\": \"a b;c\", \"maxAge\": -1, \"sameSite\": \"NONE\"}}",
                  "s@file", err, sizeof(err));
    ok(c && !strcmp(c->name, "a_b_c"), "name sanitized to a token (%s)", c ? c->name : "-");
    ok(c && !strcmp(c->attrs, "; Path=/; Max-Age=0; SameSite=None"),
       "negative maxAge is Max-Age=0; sameSite none (%s)", c ? c->attrs : err);
    svc_cookie_free(c);
    c = cookie_of("{\"cookie\": true}", "st@file", err, sizeof(err));
    ok(c && !strcmp(c->name, "_da847"), "cookie: true (labels) is an empty cookie map");
    svc_cookie_free(c);
    c = cookie_of("{\"cookie\": {\"sameSite\": \"sometimes\"}}", "s@file", err, sizeof(err));
    ok(!c && !strcmp(err, "http.services.s@file.loadBalancer.sticky.cookie.sameSite: expected "
                          "none, lax or strict"),
       "bad sameSite named by key path (%s)", err);
    c = cookie_of("{\"cookie\": {\"path\": \"/a;b\"}}", "s@file", err, sizeof(err));
    ok(!c && strstr(err, "sticky.cookie.path: must not contain ';'"), "';' in path refused");
    c = cookie_of("{}", "s@file", err, sizeof(err));
    ok(!c && !err[0], "sticky without cookie: no cookie, no error");
}

/* ---- weighted ---- */

static void test_weighted(void)
{
    struct snapshot snap;
    struct snap_service *a, *b, *z, *w, *leaf = NULL;
    struct arena *ar = arena_new(1 << 16);
    struct relais_req r;
    struct svc_choice ch;
    char err[512], cookie[64];
    int na = 0, nb = 0, nz = 0, idx;

    memset(&snap, 0, sizeof(snap));
    snap_add(&snap, a = leaf_new("a@file", 1));
    snap_add(&snap, b = leaf_new("b@file", 1));
    snap_add(&snap, z = leaf_new("z@file", 1));
    w = tree_new("w@file", SNAP_SVC_WEIGHTED,
                 "{\"services\": [{\"name\": \"a\", \"weight\": 3}, {\"name\": \"b\"}, "
                 "{\"name\": \"z\", \"weight\": 0}], \"sticky\": {\"cookie\": {\"name\": "
                 "\"w1\"}}}",
                 err, sizeof(err));
    snap_add(&snap, w);
    ok(!err[0] && w->nkids == 3 && w->nseq == 4, "3:1:0 gives a period of 4 (%s)", err);
    ok(svc_link(&snap) == 0, "links without errors");
    ok(w->kids[0].svc == a && w->kids[1].svc == b, "children resolved with the provider");
    for (int i = 0; i < 10000; i++) {
        arena_reset(ar);
        req_init(&r, ar, NULL);
        memset(&ch, 0, sizeof(ch));
        idx = svc_pick(&r, w, &leaf, &ch);
        if (idx < 0) continue;
        na += leaf == a;
        nb += leaf == b;
        nz += leaf == z;
    }
    ok(na == 7500 && nb == 2500 && nz == 0, "10000 picks split 7500/2500/0 (%d/%d/%d)", na, nb,
       nz);
    /* the sticky cookie names the child */
    arena_reset(ar);
    req_init(&r, ar, NULL);
    memset(&ch, 0, sizeof(ch));
    svc_pick(&r, w, &leaf, &ch);
    snprintf(cookie, sizeof(cookie), "w1=%s; Path=/", leaf == a ? a->name : b->name);
    {
        char v[17];
        svc_sticky_value(leaf->name, v);
        snprintf(cookie, sizeof(cookie), "w1=%s; Path=/", v);
    }
    ok(ch.ncookies == 1 && !strcmp(ch.cookies[0], cookie), "Set-Cookie for the child (%s)",
       ch.ncookies ? ch.cookies[0] : "none");
    /* pinned: 20 picks with b's value among other cookies */
    {
        char v[17], hdr[128];
        int all_b = 1;
        svc_sticky_value("b@file", v);
        snprintf(hdr, sizeof(hdr), "x=1; w1=%s; y=2", v);
        for (int i = 0; i < 20; i++) {
            arena_reset(ar);
            req_init(&r, ar, hdr);
            memset(&ch, 0, sizeof(ch));
            svc_pick(&r, w, &leaf, &ch);
            if (leaf != b || ch.ncookies) all_b = 0;
        }
        ok(all_b, "a cookie pins the child, no new Set-Cookie");
        /* the raw name pins too */
        arena_reset(ar);
        req_init(&r, ar, "w1=b@file");
        memset(&ch, 0, sizeof(ch));
        svc_pick(&r, w, &leaf, &ch);
        ok(leaf == b && ch.ncookies == 0, "the raw child name pins (Traefik v2 values)");
        /* b unusable: its cookie is ignored, a new one is set */
        b->servers.v[0].up = 0;
        arena_reset(ar);
        req_init(&r, ar, hdr);
        memset(&ch, 0, sizeof(ch));
        svc_pick(&r, w, &leaf, &ch);
        ok(leaf == a && ch.ncookies == 1, "a down child's cookie is ignored");
        na = 0;
        for (int i = 0; i < 100; i++) {
            arena_reset(ar);
            req_init(&r, ar, NULL);
            memset(&ch, 0, sizeof(ch));
            if (svc_pick(&r, w, &leaf, &ch) >= 0 && leaf == a) na++;
        }
        ok(na == 100, "a child with no server up gets nothing (%d of 100 to a)", na);
        a->servers.v[0].up = 0;
        arena_reset(ar);
        req_init(&r, ar, NULL);
        memset(&ch, 0, sizeof(ch));
        ok(svc_pick(&r, w, &leaf, &ch) == -1 && !svc_up(w), "nothing up: -1 (503)");
        a->servers.v[0].up = b->servers.v[0].up = 1;
    }
    svc_free_all(&snap);
    arena_free(ar);
}

/* ---- sticky on a load balancer ---- */

static void test_sticky_lb(void)
{
    struct snap_service *s = leaf_new("s@file", 3), *leaf = NULL;
    struct arena *ar = arena_new(1 << 16);
    struct relais_req r;
    struct svc_choice ch;
    char err[256], hdr[128];
    int idx;

    s->sticky = cookie_of("{\"cookie\": {\"name\": \"s1\"}}", "s@file", err, sizeof(err));
    req_init(&r, ar, NULL);
    memset(&ch, 0, sizeof(ch));
    idx = svc_pick(&r, s, &leaf, &ch);
    snprintf(hdr, sizeof(hdr), "s1=%s; Path=/", s->servers.v[0].sticky);
    ok(idx == 0 && ch.ncookies == 1 && !strcmp(ch.cookies[0], hdr), "first pick sets %s", hdr);
    snprintf(hdr, sizeof(hdr), "s1=%s", s->servers.v[2].sticky);
    fake_picks = 0;
    arena_reset(ar);
    req_init(&r, ar, hdr);
    memset(&ch, 0, sizeof(ch));
    idx = svc_pick(&r, s, &leaf, &ch);
    ok(idx == 2 && ch.ncookies == 0 && fake_picks == 0,
       "the cookie pins server 2 without asking the strategy");
    arena_reset(ar);
    req_init(&r, ar, "s1=\"http://127.0.0.1:9001\"");
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, s, &leaf, &ch) == 1 && ch.ncookies == 0, "a quoted raw URL pins too");
    arena_reset(ar);
    req_init(&r, ar, "s1x=whatever; s1=nothing");
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, s, &leaf, &ch) == 0 && ch.ncookies == 1,
       "an unknown value: a normal pick and a new cookie");
    s->servers.v[2].up = 0;
    arena_reset(ar);
    req_init(&r, ar, hdr);
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, s, &leaf, &ch) == 0 && ch.ncookies == 1, "a down server's cookie is ignored");
    {
        size_t l;
        const char *v;
        arena_reset(ar);
        req_init(&r, ar, "a=1;b=2 ;  s1=x ");
        v = svc_req_cookie(&r, "b", &l);
        ok(v && l == 1 && *v == '2', "cookie values are trimmed");
        v = svc_req_cookie(&r, "s1", &l);
        ok(v && l == 1 && *v == 'x', "last cookie of the header");
        ok(!svc_req_cookie(&r, "c", &l), "absent cookie");
    }
    svc_clear(s);
    for (size_t j = 0; j < s->servers.n; j++) free(s->servers.v[j].url);
    free(s->servers.v);
    free(s->name);
    free(s);
    arena_free(ar);
}

/* ---- mirroring and failover ---- */

static void test_mirroring_failover(void)
{
    struct snapshot snap;
    struct snap_service *m, *f, *main1, *sh, *back, *leaf = NULL;
    struct arena *ar = arena_new(1 << 16);
    struct relais_req r;
    struct svc_choice ch;
    char err[512], got[64] = "";
    int n33 = 0;

    memset(&snap, 0, sizeof(snap));
    snap_add(&snap, main1 = leaf_new("main@file", 1));
    snap_add(&snap, sh = leaf_new("sh@file", 1));
    snap_add(&snap, back = leaf_new("back@file", 1));
    m = tree_new("m@file", SNAP_SVC_MIRRORING,
                 "{\"service\": \"main\", \"maxBodySize\": 1024, \"mirrorBody\": false, "
                 "\"mirrors\": [{\"name\": \"sh\", \"percent\": 50}, {\"name\": \"main\", "
                 "\"percent\": 33}]}",
                 err, sizeof(err));
    snap_add(&snap, m);
    f = tree_new("f@file", SNAP_SVC_FAILOVER, "{\"service\": \"main\", \"fallback\": \"back\"}",
                 err, sizeof(err));
    snap_add(&snap, f);
    ok(svc_link(&snap) == 0, "mirroring and failover link");
    ok(m->mirror_body == 0 && m->max_body == 1024, "mirrorBody and maxBodySize read");
    for (int i = 1; i <= 100; i++) {
        arena_reset(ar);
        req_init(&r, ar, NULL);
        memset(&ch, 0, sizeof(ch));
        if (svc_pick(&r, m, &leaf, &ch) != 0 || leaf != main1) break;
        for (unsigned k = 0; k < ch.nmirrors; k++) {
            if (ch.mirrors[k] == sh && i <= 9)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%d ", i);
            if (ch.mirrors[k] == main1) n33++;
        }
    }
    ok(!strcmp(got, "1 3 5 7 9 "), "percent 50 mirrors requests 1, 3, 5, ... (%s)", got);
    ok(n33 == 33, "percent 33 mirrors 33 of 100 (%d)", n33);
    arena_reset(ar);
    req_init(&r, ar, NULL);
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, f, &leaf, &ch) == 0 && leaf == main1, "failover: the main service first");
    main1->servers.v[0].up = 0;
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, f, &leaf, &ch) == 0 && leaf == back, "failover: the fallback when it is down");
    ok(svc_up(f) && !svc_up(m), "a failover is up with its fallback, a mirroring is not");
    main1->servers.v[0].up = 1;
    memset(&ch, 0, sizeof(ch));
    ok(svc_pick(&r, f, &leaf, &ch) == 0 && leaf == main1, "failover: back to the main service");
    svc_free_all(&snap);
    /* errors while parsing */
    m = tree_new("m1@file", SNAP_SVC_MIRRORING,
                 "{\"service\": \"a\", \"mirrors\": [{\"name\": \"b\", \"percent\": 150}]}", err,
                 sizeof(err));
    ok(!strcmp(err, "http.services.m1@file.mirroring.mirrors[0].percent: expected a percentage "
                    "from 0 to 100"),
       "bad percent named (%s)", err);
    snap_add(&snap, m);
    f = tree_new("f1@file", SNAP_SVC_FAILOVER, "{\"service\": \"a\"}", err, sizeof(err));
    ok(!strcmp(err, "http.services.f1@file.failover.fallback: missing: expected the name of the "
                    "fallback service"),
       "missing fallback named (%s)", err);
    snap_add(&snap, f);
    svc_free_all(&snap);
    arena_free(ar);
}

/* ---- linking ---- */

static void test_link(void)
{
    struct snapshot snap;
    struct snap_service *x, *y, *p, *miss;
    char err[256];

    memset(&snap, 0, sizeof(snap));
    snap_add(&snap, leaf_new("a@file", 1));
    x = tree_new("x@file", SNAP_SVC_WEIGHTED, "{\"services\": [{\"name\": \"y\"}]}", err,
                 sizeof(err));
    y = tree_new("y@file", SNAP_SVC_FAILOVER, "{\"service\": \"a\", \"fallback\": \"x\"}", err,
                 sizeof(err));
    p = tree_new("p@file", SNAP_SVC_WEIGHTED,
                 "{\"services\": [{\"name\": \"a\"}, {\"name\": \"x@file\"}]}", err, sizeof(err));
    miss = tree_new("w1@file", SNAP_SVC_WEIGHTED, "{\"services\": [{\"name\": \"nope\"}]}", err,
                    sizeof(err));
    snap_add(&snap, x);
    snap_add(&snap, y);
    snap_add(&snap, p);
    snap_add(&snap, miss);
    ok(svc_link(&snap) == 4, "4 disabled: the cycle's two, its parent, the missing name");
    ok(x->status == SNAP_DISABLED && y->status == SNAP_DISABLED && x->error &&
           !strcmp(x->error, "service cycle: x@file -> y@file -> x@file"),
       "cycle reported (%s)", x->error ? x->error : "-");
    ok(p->status == SNAP_DISABLED && p->error &&
           !strcmp(p->error, "http.services.p@file.weighted.services[1].name: service "
                             "\"x@file\" is disabled"),
       "parent of a disabled child disabled (%s)", p->error ? p->error : "-");
    ok(miss->error && !strcmp(miss->error, "http.services.w1@file.weighted.services[0].name: no "
                                           "service named \"nope@file\""),
       "missing child named (%s)", miss->error ? miss->error : "-");
    svc_free_all(&snap);
}

int main(void)
{
    test_values();
    test_cookie_parse();
    test_weighted();
    test_sticky_lb();
    test_mirroring_failover();
    test_link();
    return tap_done();
}
