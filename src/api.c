/*
 * api — Traefik's REST API and the dashboard page.  See api.h.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "api.h"
#include "conf.h"
#include "log.h"
#include "proxy.h"
#include "relais.h"
#include "snapshot.h"
#include "static_config.h"
#include "tcp.h"
#include "udp.h"
#include "worker.h"

#define API_PER_PAGE 100       /* Traefik's default page size */
#define API_MAX_SEGMENT 1024   /* longest decoded path segment or query value */

static json_t *(*api_stats_fn)(void);  /* /api/relais/stats source */
static const unsigned char *api_html;  /* the dashboard page */
static size_t api_html_len;            /* its length */
static time_t api_started;             /* first api_build: the start date the
                                          API reports (set on the control
                                          thread before any worker reads) */

void api_set_stats(json_t *(*fn)(void))
{
    api_stats_fn = fn;
}

void api_set_dashboard(const unsigned char *html, size_t len)
{
    api_html = html;
    api_html_len = len;
}

/* ------------------------------------------------------------------ */
/* building (control thread)                                           */

json_t *api_status(int st, const char *error)
{
    json_t *o = json_object();

    if (!o) return NULL;
    json_object_set_new(o, "status", json_string(st == SNAP_DISABLED  ? "disabled"
                                                 : st == SNAP_WARNING ? "warning"
                                                                      : "enabled"));
    if (error && *error) {
        json_t *l = json_array();
        const char *p = error;
        while (l && *p) {
            const char *e = strstr(p, "; ");
            size_t n = e ? (size_t)(e - p) : strlen(p);
            json_array_append_new(l, json_stringn(p, n));
            p = e ? e + 2 : p + n;
        }
        json_object_set_new(o, "error", l);
    }
    return o;
}

json_t *api_ep_names(const unsigned char *eps, const struct sc_config *sc)
{
    json_t *l = json_array();
    int idx[SC_MAX_EPS];
    size_t n = sc_ep_sorted(sc, idx);

    for (size_t i = 0; l && i < n; i++)
        if (eps[idx[i]]) json_array_append_new(l, json_string(sc->eps[idx[i]].name));
    return l;
}

/* Every scalar in v becomes "xxxx" (v is under a secret key). */
static void api_redact_all(json_t *v)
{
    const char *k;
    json_t *c;
    void *tmp;

    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, c) {
            if (json_is_object(c) || json_is_array(c))
                api_redact_all(c);
            else if (!json_is_null(c))
                json_object_set_new(v, k, json_string("xxxx"));
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            c = json_array_get(v, i);
            if (json_is_object(c) || json_is_array(c))
                api_redact_all(c);
            else if (!json_is_null(c))
                json_array_set_new(v, i, json_string("xxxx"));
        }
    }
}

void api_redact(json_t *v)
{
    const char *k;
    json_t *c;
    void *tmp;

    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, k, c) {
            if (!conf_key_secret(k, strlen(k)))
                api_redact(c);
            else if (json_is_object(c) || json_is_array(c))
                api_redact_all(c);
            else if (!json_is_null(c))
                json_object_set_new(v, k, json_string("xxxx"));
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) api_redact(json_array_get(v, i));
    }
}

/* Lowercase copy of s into a new JSON string. */
static json_t *api_lower(const char *s)
{
    char buf[128];
    size_t i;

    for (i = 0; s[i] && i + 1 < sizeof(buf); i++) buf[i] = (char)tolower((unsigned char)s[i]);
    buf[i] = '\0';
    return json_string(buf);
}

/* Gives the object named q in target its configuration cfg (as written,
 * redacted), its name and provider, and (with_type) Traefik's "type":
 * the lowercased first key of cfg.  What target already holds for q
 * (status, error, using) is kept over cfg's keys. */
static void api_fill(json_t *target, const char *q, json_t *cfg, int with_type)
{
    json_t *o = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
    json_t *st = json_object_get(target, q);
    const char *at = strrchr(q, '@');

    if (!o) return;
    api_redact(o);
    if (with_type && json_is_object(cfg) && json_object_size(cfg) > 0)
        json_object_set_new(o, "type", api_lower(json_object_iter_key(json_object_iter(cfg))));
    if (st) json_object_update(o, st);
    else json_object_set_new(o, "status", json_string("enabled"));
    json_object_set_new(o, "name", json_string(q));
    json_object_set_new(o, "provider", json_string(at ? at + 1 : ""));
    json_object_set_new(target, q, o);
}

/* Appends user to the "usedBy" list of target[q] (when it exists). */
static void api_used_by(json_t *target, const char *q, const char *user)
{
    json_t *o = json_object_get(target, q), *l;

    if (!o) return;
    l = json_object_get(o, "usedBy");
    if (!l) json_object_set_new(o, "usedBy", l = json_array());
    for (size_t i = 0; i < json_array_size(l); i++)
        if (!strcmp(json_string_value(json_array_get(l, i)), user)) return;
    json_array_append_new(l, json_string(user));
}

/* A router's links: its service (qualified with the router's provider)
 * and middlewares get the router in their usedBy; a tls map without
 * options shows Traefik's "default". */
static void api_link_router(const char *rname, json_t *ro, json_t *svcs, json_t *mws)
{
    const char *at = strrchr(rname, '@');
    const char *prov = at ? at + 1 : "";
    json_t *svc = json_object_get(ro, "service"), *l = json_object_get(ro, "middlewares");
    json_t *tls = json_object_get(ro, "tls");
    char *q;

    if (json_is_string(svc) && (q = snap_qualify(json_string_value(svc), prov))) {
        api_used_by(svcs, q, rname);
        free(q);
    }
    for (size_t i = 0; mws && i < json_array_size(l); i++) {
        json_t *m = json_array_get(l, i);
        if (json_is_string(m) && (q = snap_qualify(json_string_value(m), prov))) {
            api_used_by(mws, q, rname);
            free(q);
        }
    }
    if (json_is_object(tls) && !json_object_get(tls, "options"))
        json_object_set_new(tls, "options", json_string("default"));
}

/* Compares two names for qsort. */
static int api_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A copy of o whose keys are inserted in sorted order (jansson keeps the
 * insertion order), consuming o. */
static json_t *api_sorted(json_t *o)
{
    size_t n = json_object_size(o), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    json_t *out = json_object(), *v;
    const char *k;

    if (!keys || !out) {
        free(keys);
        json_decref(out);
        return o;
    }
    json_object_foreach(o, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), api_name_cmp);
    for (i = 0; i < n; i++) json_object_set(out, keys[i], json_object_get(o, keys[i]));
    free(keys);
    json_decref(o);
    return out;
}

/* An internal router (auto mode) as Traefik lists it. */
static void api_internal_router(json_t *routers, const char *name, const char *rule,
                                const char *service, const char *ep, int64_t prio)
{
    json_t *o = json_pack("{s:[s],s:s,s:s,s:I,s:s,s:[s],s:s,s:s}", "entryPoints", ep, "service",
                          service, "rule", rule, "priority", (json_int_t)prio, "status",
                          "enabled", "using", ep, "name", name, "provider", "internal");
    if (o) json_object_set_new(routers, name, o);
}

/* An internal service. */
static void api_internal_service(json_t *services, const char *name)
{
    json_t *o = json_pack("{s:s,s:s,s:s}", "status", "enabled", "name", name, "provider",
                          "internal");
    if (o) json_object_set_new(services, name, o);
}

/* {"total", "warnings", "errors"} of the objects of o. */
static json_t *api_count(json_t *o)
{
    json_int_t w = 0, e = 0;
    const char *k;
    json_t *v;

    json_object_foreach(o, k, v) {
        const char *st = json_string_value(json_object_get(v, "status"));
        if (st && !strcmp(st, "disabled")) e++;
        else if (st && !strcmp(st, "warning")) w++;
    }
    return json_pack("{s:I,s:I,s:I}", "total", (json_int_t)json_object_size(o), "warnings", w,
                     "errors", e);
}

/* The overview (Traefik's /api/overview) of the built sections. */
static json_t *api_overview(json_t *out, const struct sc_config *sc)
{
    json_t *ov, *prov = json_array(), *al = conf_json_get(sc->root, "accessLog");
    const char *k;
    json_t *v;

    json_object_foreach(sc->providers, k, v)
        if (json_is_object(v) || json_is_true(v)) json_array_append_new(prov, json_string(k));
    ov = json_pack("{s:{s:o,s:o,s:o},s:{s:o,s:o,s:o},s:{s:o,s:o},s:{s:s,s:s,s:b},s:o}", "http",
                   "routers", api_count(json_object_get(out, "routers")), "services",
                   api_count(json_object_get(out, "services")), "middlewares",
                   api_count(json_object_get(out, "middlewares")), "tcp", "routers",
                   api_count(json_object_get(out, "tcpRouters")), "services",
                   api_count(json_object_get(out, "tcpServices")), "middlewares",
                   api_count(json_object_get(out, "tcpMiddlewares")), "udp", "routers",
                   api_count(json_object_get(out, "udpRouters")), "services",
                   api_count(json_object_get(out, "udpServices")), "features", "tracing",
                   conf_json_get(sc->root, "tracing") ? "OpenTelemetry" : "", "metrics",
                   sc->prom ? "Prometheus" : "", "accessLog", al && !json_is_false(al),
                   "providers", prov);
    return ov;
}

/* The entry points as Traefik lists them: their static configuration
 * (redacted), name and address, sorted by name. */
static json_t *api_entrypoints(const struct sc_config *sc)
{
    json_t *l = json_array(), *eps = conf_json_get(sc->root, "entryPoints");
    int idx[SC_MAX_EPS];
    size_t n = sc_ep_sorted(sc, idx);

    for (size_t k = 0; l && k < n; k++) {
        size_t i = (size_t)idx[k];
        json_t *node = json_object_get(eps, sc->eps[i].name);
        json_t *o = json_is_object(node) ? json_deep_copy(node) : json_object();
        if (!o) continue;
        api_redact(o);
        json_object_set_new(o, "address", json_string(sc->eps[i].address));
        json_object_set_new(o, "name", json_string(sc->eps[i].name));
        json_array_append_new(l, o);
    }
    return l;
}

json_t *api_build(const struct snapshot *snap, const struct snap_source *src, size_t n,
                  const struct sc_config *sc)
{
    static const struct {
        const char *top, *section, *key; /* source section, API key */
        int typed;                        /* has a "type" */
    } secs[] = {
        {"http", "routers", "routers", 0},          {"http", "services", "services", 1},
        {"http", "middlewares", "middlewares", 1},  {"tcp", "routers", "tcpRouters", 0},
        {"tcp", "services", "tcpServices", 1},      {"tcp", "middlewares", "tcpMiddlewares", 1},
        {"udp", "routers", "udpRouters", 0},        {"udp", "services", "udpServices", 1},
    };
    json_t *out = json_object(), *o;
    json_t *rt, *sv, *mw;
    const char *k;
    json_t *v;
    size_t i, j;

    if (!out) return NULL;
    if (!api_started) api_started = time(NULL);
    for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        json_object_set_new(out, secs[i].key, json_object());
    rt = json_object_get(out, "routers");
    sv = json_object_get(out, "services");
    mw = json_object_get(out, "middlewares");
    /* statuses of what was built */
    for (i = 0; i < snap->nrouters; i++) {
        const struct snap_router *r = &snap->routers[i];
        o = api_status(r->status, r->error);
        if (o && r->status != SNAP_DISABLED) json_object_set_new(o, "using", api_ep_names(r->eps, sc));
        if (o) json_object_set_new(rt, r->name, o);
    }
    for (i = 0; i < snap->nservices; i++)
        json_object_set_new(sv, snap->services[i]->name,
                            api_status(snap->services[i]->status, snap->services[i]->error));
    for (i = 0; i < snap->nmws; i++)
        json_object_set_new(mw, snap->mws[i]->name,
                            api_status(snap->mws[i]->status, snap->mws[i]->error));
    tcp_api_status(snap->tcp, sc, json_object_get(out, "tcpRouters"),
                   json_object_get(out, "tcpServices"), json_object_get(out, "tcpMiddlewares"));
    udp_api_status(snap->udp, sc, json_object_get(out, "udpRouters"),
                   json_object_get(out, "udpServices"));
    /* their configuration as the providers wrote it */
    for (i = 0; i < n; i++) {
        for (j = 0; j < sizeof(secs) / sizeof(secs[0]); j++) {
            json_t *sec = snap_subsection(src[i].tree, secs[j].top, secs[j].section);
            json_t *target = json_object_get(out, secs[j].key);
            json_object_foreach(sec, k, v) {
                char *q = snap_qualify(k, src[i].provider);
                if (!q) goto oom;
                api_fill(target, q, v, secs[j].typed);
                free(q);
            }
        }
    }
    /* what relais serves itself */
    if (sc->api) {
        api_internal_service(sv, "api@internal");
        if (sc->api_dashboard) api_internal_service(sv, "dashboard@internal");
        if (sc->api_insecure) {
            api_internal_router(rt, "api@internal", "PathPrefix(`/api`)", "api@internal",
                                "traefik", INT64_MAX - 1);
            if (sc->api_dashboard)
                api_internal_router(rt, "dashboard@internal", "PathPrefix(`/`)",
                                    "dashboard@internal", "traefik", INT64_MAX - 2);
        }
    }
    if (sc->ping) {
        api_internal_service(sv, "ping@internal");
        if (!sc->ping_manual && sc->ping_ep >= 0)
            api_internal_router(rt, "ping@internal", "PathPrefix(`/ping`)", "ping@internal",
                                sc->eps[sc->ping_ep].name, INT64_MAX);
    }
    if (sc->prom) {
        api_internal_service(sv, "prometheus@internal");
        if (!sc->prom_manual && sc->prom_ep >= 0)
            api_internal_router(rt, "prometheus@internal", "PathPrefix(`/metrics`)",
                                "prometheus@internal", sc->eps[sc->prom_ep].name, INT64_MAX);
    }
    /* who uses what */
    json_object_foreach(rt, k, v) api_link_router(k, v, sv, mw);
    json_object_foreach(json_object_get(out, "tcpRouters"), k, v)
        api_link_router(k, v, json_object_get(out, "tcpServices"),
                        json_object_get(out, "tcpMiddlewares"));
    json_object_foreach(json_object_get(out, "udpRouters"), k, v)
        api_link_router(k, v, json_object_get(out, "udpServices"), NULL);
    for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
        json_object_set_new(out, secs[i].key,
                            api_sorted(json_incref(json_object_get(out, secs[i].key))));
    json_object_set_new(out, "entryPoints", api_entrypoints(sc));
    json_object_set_new(out, "overview", api_overview(out, sc));
    return out;
oom:
    json_decref(out);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* answering (worker threads; snap->api is read, never written)        */

/* Percent-decodes s[0..n) into out (NUL-terminated, at most cap - 1
 * bytes); plus = 1 also turns '+' into a space (query values).  -1 when
 * it does not fit or holds a bad escape or a NUL. */
static int api_unescape(const char *s, size_t n, char *out, size_t cap, int plus)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return -1;
            hi = isxdigit((unsigned char)s[i + 1]) ? s[i + 1] : -1;
            lo = isxdigit((unsigned char)s[i + 2]) ? s[i + 2] : -1;
            if (hi < 0 || lo < 0) return -1;
            hi = isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10);
            lo = isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10);
            c = (char)(hi * 16 + lo);
            if (c == '\0') return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (o + 1 >= cap) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* The value of query parameter key (first occurrence) into out; 0 found,
 * 1 absent, -1 malformed. */
static int api_query(const struct relais_req *r, const char *key, char *out, size_t cap)
{
    const char *p = r->query, *end = r->query ? r->query + r->query_len : NULL;
    size_t kl = strlen(key);

    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (eq && (size_t)(eq - p) == kl && !memcmp(p, key, kl))
            return api_unescape(eq + 1, (size_t)(e - eq - 1), out, cap, 1) < 0 ? -1 : 0;
        if (!eq && (size_t)(e - p) == kl && !memcmp(p, key, kl)) {
            out[0] = '\0';
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 1;
}

/* Sends j (consumed) as the JSON answer with status st and an optional
 * extra header. */
static void api_send_json(struct relais_req *r, int st, json_t *j, const relais_header *extra)
{
    relais_header h[2] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    char *body = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t len;

    json_decref(j);
    if (!body) {
        px_api_respond(r, 500, NULL, 0, NULL, 0);
        return;
    }
    len = strlen(body);
    body[len] = '\n'; /* json_dumps' NUL: Traefik's encoder ends with a newline */
    if (extra) h[1] = *extra;
    if (px_respond_heap(r, st, h, extra ? 2 : 1, body, len + 1) < 0) free(body);
}

/* {"message": msg} with status st (Traefik's API errors). */
static void api_error(struct relais_req *r, int st, const char *fmt, const char *arg)
{
    char msg[API_MAX_SEGMENT + 128];

    snprintf(msg, sizeof(msg), fmt, arg);
    api_send_json(r, st, json_pack("{s:s}", "message", msg), NULL);
}

/* Current server health of the HTTP services named in want (name -> the
 * item being sent): adds "serverStatus" {url: "UP"|"DOWN"} to load
 * balancers.  One pass over the snapshot's services. */
static void api_server_status(const struct snapshot *snap, json_t *want)
{
    if (json_object_size(want) == 0) return;
    for (size_t i = 0; i < snap->nservices; i++) {
        const struct snap_service *s = snap->services[i];
        json_t *it = json_object_get(want, s->name), *st;
        if (!it || s->kind != SNAP_SVC_LB) continue;
        st = json_object();
        for (size_t j = 0; st && j < s->servers.n; j++) {
            const struct snap_server *sv = &s->servers.v[j];
            int up = __atomic_load_n(&sv->up, __ATOMIC_RELAXED);
            json_object_set_new(st, sv->url, json_string(up ? "UP" : "DOWN"));
        }
        json_object_set_new(it, "serverStatus", st);
    }
}

/* 1 when haystack contains needle without regard to case. */
static int api_contains(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

/* Traefik's filters: status, search (in the name, and a router's rule),
 * serviceName and middlewareName (routers).  1 when o is kept. */
static int api_keep(json_t *o, const char *name, int router, const char *status,
                    const char *search, const char *svc, const char *mwn)
{
    if (*status && strcasecmp(json_string_value(json_object_get(o, "status")) ?: "", status))
        return 0;
    if (*search && !api_contains(name, search) &&
        !(router && api_contains(json_string_value(json_object_get(o, "rule")), search)))
        return 0;
    if (router && *svc) {
        const char *s = json_string_value(json_object_get(o, "service"));
        if (!s) return 0;
        if (strchr(s, '@')) {
            if (strcmp(svc, s)) return 0;
        } else {
            size_t n = strcspn(svc, "@");
            if (strlen(s) != n || strncmp(svc, s, n)) return 0;
        }
    }
    if (router && *mwn) {
        json_t *l = json_object_get(o, "middlewares");
        size_t i;
        for (i = 0; i < json_array_size(l); i++)
            if (!strcmp(json_string_value(json_array_get(l, i)) ?: "", mwn)) break;
        if (i == json_array_size(l)) return 0;
    }
    return 1;
}

/* Reads a positive page parameter (default def); -1 when malformed. */
static long api_int_param(const struct relais_req *r, const char *key, long def)
{
    char buf[32], *end;
    long v;

    switch (api_query(r, key, buf, sizeof(buf))) {
    case 1:
        return def;
    case 0:
        if (!*buf) return def;
        v = strtol(buf, &end, 10);
        return (*end || v <= 0 || v > INT_MAX) ? -1 : v;
    default:
        return -1;
    }
}

/* A list endpoint: the objects of all (sorted by name), filtered and
 * paginated as Traefik does; http_services adds server health. */
static void api_list(struct relais_req *r, json_t *all, int router, int http_services)
{
    char status[64] = "", search[API_MAX_SEGMENT] = "", svc[API_MAX_SEGMENT] = "",
         mwn[API_MAX_SEGMENT] = "", next[24], msg[96];
    json_t *items = json_array(), *page = json_array(), *want = json_object(), *v;
    relais_header h = {"X-Next-Page", next};
    long per, pg;
    size_t start, end, total;
    const char *k;

    if (!items || !page || !want) goto oom;
    if (api_query(r, "status", status, sizeof(status)) < 0 ||
        api_query(r, "search", search, sizeof(search)) < 0 ||
        api_query(r, "serviceName", svc, sizeof(svc)) < 0 ||
        api_query(r, "middlewareName", mwn, sizeof(mwn)) < 0) {
        json_decref(items);
        json_decref(page);
        json_decref(want);
        api_error(r, 400, "invalid request: %s", "bad query");
        return;
    }
    json_object_foreach(all, k, v)
        if (api_keep(v, k, router, status, search, svc, mwn)) json_array_append(items, v);
    per = api_int_param(r, "per_page", API_PER_PAGE);
    pg = api_int_param(r, "page", 1);
    total = json_array_size(items);
    if (per < 0 || pg < 0 || ((size_t)(pg - 1) * (size_t)per != 0 && (size_t)(pg - 1) * (size_t)per >= total)) {
        snprintf(msg, sizeof(msg), "invalid request: page: %ld, per_page: %ld", pg, per);
        json_decref(items);
        json_decref(page);
        json_decref(want);
        api_error(r, 400, "%s", msg);
        return;
    }
    start = (size_t)(pg - 1) * (size_t)per;
    end = start + (size_t)per > total ? total : start + (size_t)per;
    for (size_t i = start; i < end; i++) {
        json_t *c = json_deep_copy(json_array_get(items, i));
        if (!c) goto oom;
        json_array_append_new(page, c);
        if (http_services)
            json_object_set(want, json_string_value(json_object_get(c, "name")) ?: "", c);
    }
    if (http_services) api_server_status(r->snap, want);
    snprintf(next, sizeof(next), "%ld", (size_t)pg * (size_t)per < total ? pg + 1 : 1);
    json_decref(items);
    json_decref(want);
    api_send_json(r, 200, page, &h);
    return;
oom:
    json_decref(items);
    json_decref(page);
    json_decref(want);
    px_api_respond(r, 500, NULL, 0, NULL, 0);
}

/* One object of a section by its (percent-encoded) name. */
static void api_one(struct relais_req *r, json_t *all, const char *what, const char *enc,
                    size_t enclen, int http_services)
{
    char name[API_MAX_SEGMENT];
    json_t *o;

    if (api_unescape(enc, enclen, name, sizeof(name), 0) < 0) {
        api_error(r, 400, "unable to decode %s name", what);
        return;
    }
    o = json_object_get(all, name);
    if (!o) {
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "%s not found: %%s", what);
        api_error(r, 404, fmt, name);
        return;
    }
    o = json_deep_copy(o);
    if (o && http_services) {
        json_t *want = json_pack("{s:O}", name, o);
        api_server_status(r->snap, want);
        json_decref(want);
    }
    api_send_json(r, 200, o, NULL);
}

/* /api/rawdata: every section, with server health. */
static void api_rawdata(struct relais_req *r)
{
    static const char *const keys[] = {"routers", "middlewares", "services", "tcpRouters",
                                       "tcpMiddlewares", "tcpServices", "udpRouters",
                                       "udpServices", NULL};
    json_t *out = json_object();

    for (int i = 0; out && keys[i]; i++) {
        json_t *c = json_deep_copy(json_object_get(r->snap->api, keys[i]));
        if (!c) {
            json_decref(out);
            out = NULL;
            break;
        }
        if (!strcmp(keys[i], "services")) api_server_status(r->snap, c);
        if (json_object_size(c)) json_object_set_new(out, keys[i], c);
        else json_decref(c);
    }
    api_send_json(r, out ? 200 : 500, out, NULL);
}

/* 1 when path[0..n) equals s. */
static int api_is(const char *path, size_t n, const char *s)
{
    return strlen(s) == n && !memcmp(path, s, n);
}

/* The dashboard's answers: "/" and "/dashboard" redirect to "/dashboard/",
 * which (or /dashboard/index.html) is the page; nothing else exists. */
static void api_dashboard(struct relais_req *r, const char *p, size_t n)
{
    static const relais_header page_h[] = {
        {"Content-Type", "text/html; charset=utf-8"},
        {"Cache-Control", "no-cache"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
         "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'"},
    };
    static const relais_header loc = {"Location", "/dashboard/"};

    if (!r->w->sc->api_dashboard) {
        px_api_respond(r, 404, NULL, 0, NULL, 0);
        return;
    }
    if (api_is(p, n, "/") || api_is(p, n, "/dashboard")) {
        px_api_respond(r, 301, &loc, 1, NULL, 0);
        return;
    }
    if (!api_html || (!api_is(p, n, "/dashboard/") && !api_is(p, n, "/dashboard/index.html"))) {
        px_api_respond(r, 404, NULL, 0, NULL, 0);
        return;
    }
    px_api_respond(r, 200, page_h, sizeof(page_h) / sizeof(page_h[0]), (const char *)api_html,
                   api_html_len);
}

void api_serve(struct relais_req *r)
{
    static const relais_header allow = {"Allow", "GET, HEAD"};
    const char *p = r->path, *seg[4];
    size_t n = r->path_len, segl[4], nseg = 0, i;
    int get = (r->method_len == 3 && !memcmp(r->method, "GET", 3)) ||
              (r->method_len == 4 && !memcmp(r->method, "HEAD", 4));
    json_t *api = r->snap->api;

    if (!(n >= 4 && !memcmp(p, "/api", 4) && (n == 4 || p[4] == '/'))) {
        if (!get) {
            px_api_respond(r, 405, &allow, 1, NULL, 0);
            return;
        }
        api_dashboard(r, p, n);
        return;
    }
    if (!get) {
        px_api_respond(r, 405, &allow, 1, NULL, 0);
        return;
    }
    if (!api) {
        px_api_respond(r, 503, NULL, 0, NULL, 0);
        return;
    }
    /* split what follows "/api/" into at most 4 segments */
    for (i = 5; i <= n && n > 5 && nseg < 4;) {
        const char *s = p + i, *e = memchr(s, '/', n - i);
        size_t l = e ? (size_t)(e - s) : n - i;
        seg[nseg] = s;
        segl[nseg++] = l;
        i += l + 1;
        if (!e) break;
    }
    if (i < n) nseg = 5; /* too many segments */
#define SEG(k, s) (segl[k] == strlen(s) && !memcmp(seg[k], s, segl[k]))
    if (nseg == 1 && SEG(0, "rawdata")) {
        api_rawdata(r);
    } else if (nseg == 1 && SEG(0, "overview")) {
        api_send_json(r, 200, json_deep_copy(json_object_get(api, "overview")), NULL);
    } else if (nseg == 1 && SEG(0, "version")) {
        char date[32];
        struct tm tm;
        gmtime_r(&api_started, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
        api_send_json(r, 200,
                      json_pack("{s:s,s:s,s:s}", "Version", PACKAGE_VERSION, "Codename",
                                RELAIS_CODENAME, "startDate", date),
                      NULL);
    } else if (nseg == 1 && SEG(0, "entrypoints")) {
        json_t *all = json_object(), *v;
        size_t k;
        json_array_foreach(json_object_get(api, "entryPoints"), k, v)
            json_object_set(all, json_string_value(json_object_get(v, "name")), v);
        api_list(r, all, 0, 0);
        json_decref(all);
    } else if (nseg == 2 && SEG(0, "entrypoints")) {
        char name[API_MAX_SEGMENT];
        json_t *v, *found = NULL;
        size_t k;
        if (api_unescape(seg[1], segl[1], name, sizeof(name), 0) < 0) {
            api_error(r, 400, "unable to decode entryPointID %s", "");
            return;
        }
        json_array_foreach(json_object_get(api, "entryPoints"), k, v)
            if (!strcmp(json_string_value(json_object_get(v, "name")) ?: "", name)) found = v;
        if (found) api_send_json(r, 200, json_deep_copy(found), NULL);
        else api_error(r, 404, "entry point not found: %s", name);
    } else if (nseg == 2 && SEG(0, "relais") && SEG(1, "stats")) {
        json_t *st = api_stats_fn ? api_stats_fn() : NULL;
        struct timeval tv;
        if (!st) {
            px_api_respond(r, 404, NULL, 0, NULL, 0);
            return;
        }
        gettimeofday(&tv, NULL);
        json_object_set_new(st, "time", json_integer((json_int_t)tv.tv_sec * 1000 + tv.tv_usec / 1000));
        api_send_json(r, 200, st, NULL);
    } else if ((nseg == 2 || nseg == 3) && (SEG(0, "http") || SEG(0, "tcp") || SEG(0, "udp"))) {
        static const struct {
            const char *proto, *kind, *key, *what; /* path, API key, noun */
        } t[] = {
            {"http", "routers", "routers", "router"},
            {"http", "services", "services", "service"},
            {"http", "middlewares", "middlewares", "middleware"},
            {"tcp", "routers", "tcpRouters", "router"},
            {"tcp", "services", "tcpServices", "service"},
            {"tcp", "middlewares", "tcpMiddlewares", "middleware"},
            {"udp", "routers", "udpRouters", "router"},
            {"udp", "services", "udpServices", "service"},
        };
        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
            if (!SEG(0, t[i].proto) || !SEG(1, t[i].kind)) continue;
            json_t *all = json_object_get(api, t[i].key);
            int hs = !strcmp(t[i].key, "services");
            if (nseg == 2) api_list(r, all, !strcmp(t[i].kind, "routers"), hs);
            else api_one(r, all, t[i].what, seg[2], segl[2], hs);
            return;
        }
        if (SEG(0, "udp") && SEG(1, "middlewares") && nseg == 2) {
            json_t *none = json_object();
            api_list(r, none, 0, 0);
            json_decref(none);
            return;
        }
        px_api_respond(r, 404, NULL, 0, NULL, 0);
    } else {
        px_api_respond(r, 404, NULL, 0, NULL, 0);
    }
#undef SEG
}
