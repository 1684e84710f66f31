/*
 * health — see health.h.
 *
 * Active checks: one probe chain per server, on the control thread's loop
 * (host->timer_* and host->http_request); a probe is decided when the
 * response head arrives (the body is not read: the call is cancelled).
 * Redirects are not followed: with followRedirects (the default) a 3xx
 * answer counts as healthy; without it the 3xx status is judged like any
 * other.  Passive checks: workers count failures under the service's
 * mutex; a control-thread timer ends the penalties.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "health.h"
#include "log.h"
#include "snapshot.h"
#include "host_api.h"
#include "httpc.h"
#include "transport.h"

#define HL_MAX_HEADERS 64     /* healthCheck.headers cap */
#define HL_URL_MAX 2048       /* probe URL cap */

/** One server's probe chain (active). */
struct hl_check {
    struct hl_service *svc;  /* owner */
    size_t idx;              /* server index */
    char *url;               /* probe URL */
    relais_timer *timer;     /* next probe */
    relais_http_call *call;  /* probe in flight, or NULL */
    uint64_t started_ms;     /* when the probe in flight started */
    int ok;                  /* last verdict: 1 healthy (initially 1) */
};

/** One server's passive state. */
struct hl_passive {
    uint64_t win_start_ms;   /* first failure of the current window */
    uint32_t fails;          /* failures in the window (atomic reads) */
    uint64_t down_until_ms;  /* penalty end, 0 = none (atomic) */
};

/** The health state of one service (shared by the snapshots holding it). */
struct hl_service {
    const relais_host *host;          /* timers, HTTP client */
    char *name;                       /* service name */
    struct relais_servers *servers;   /* the service's servers (borrowed) */
    pthread_mutex_t lock;             /* guards up/passive transitions */
    /* active */
    int active;                       /* healthCheck present */
    char *path;                       /* path (with query), begins with / */
    char *scheme;                     /* scheme override, or NULL */
    char *method;                     /* method (default GET) */
    char *hostname;                   /* Host header value, or NULL */
    int port;                         /* port override, 0 = server's */
    int64_t interval_ms;              /* between probes of a healthy server */
    int64_t unhealthy_ms;             /* between probes of a down server */
    int64_t timeout_ms;               /* per probe */
    int status;                       /* expected status, 0 = 2xx/3xx */
    int follow_redirects;             /* 3xx counts as healthy */
    relais_header *hdrs;              /* probe headers (Host first when
                                         hostname is set); strings owned */
    size_t nhdrs;                     /* how many */
    int tls_insecure;                 /* from the service's transport */
    const struct tr_transport *tr;    /* the service's transport (https
                                         probes use its TLS: rootCAs,
                                         client certificate, serverName),
                                         or NULL; outlives this */
    struct hl_check *checks;          /* one per server */
    /* passive */
    int passive;                      /* passiveHealthCheck present */
    int64_t window_ms;                /* failureWindow */
    uint32_t max_failed;              /* maxFailedAttempts */
    struct hl_passive *pas;           /* one per server */
    relais_timer *tick;               /* ends penalties */
    int64_t tick_ms;                  /* its period */
};

uint64_t hl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sets server i's up flag from its active verdict and passive penalty;
 * logs a change with reason (for a change to down).  Caller holds
 * h->lock.  Any thread. */
static void hl_apply_locked(struct hl_service *h, size_t i, const char *reason)
{
    struct snap_server *srv = &h->servers->v[i];
    int active_ok = h->active ? h->checks[i].ok : 1;
    int passive_ok = !h->passive || !__atomic_load_n(&h->pas[i].down_until_ms, __ATOMIC_ACQUIRE);
    int now = active_ok && passive_ok;
    int was = __atomic_load_n(&srv->up, __ATOMIC_RELAXED);

    if (now == was) return;
    __atomic_store_n(&srv->up, now, __ATOMIC_RELEASE);
    if (now)
        log_info("health", "service %s: server %s is up", h->name, srv->url);
    else
        log_warn("health", "service %s: server %s is down: %s", h->name, srv->url,
                 reason ? reason : "unhealthy");
}

/* ---- active ------------------------------------------------------------ */

static void hl_probe(void *arg);

/* Records a probe verdict for c and schedules the next probe.  Control
 * thread. */
static void hl_verdict(struct hl_check *c, int ok, const char *reason)
{
    struct hl_service *h = c->svc;
    uint64_t elapsed = hl_now_ms() - c->started_ms;
    int64_t next;

    c->call = NULL;
    pthread_mutex_lock(&h->lock);
    c->ok = ok;
    hl_apply_locked(h, c->idx, reason);
    pthread_mutex_unlock(&h->lock);
    next = (ok ? h->interval_ms : h->unhealthy_ms) - (int64_t)elapsed;
    h->host->timer_start(c->timer, next > 0 ? (uint64_t)next : 0);
}

/* The probe's response head: decides and cancels the rest. */
static void hl_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct hl_check *c = arg;
    struct hl_service *h = c->svc;
    relais_http_call *call = c->call;
    char reason[96];
    int ok;

    (void)headers;
    if (h->follow_redirects && status >= 300 && status < 400)
        ok = 1;
    else if (h->status)
        ok = status == h->status;
    else
        ok = status >= 200 && status < 400;
    if (!ok && h->status)
        snprintf(reason, sizeof(reason), "received status code %d, expected %d", status,
                 h->status);
    else if (!ok)
        snprintf(reason, sizeof(reason), "received error status code %d", status);
    hl_verdict(c, ok, ok ? NULL : reason);
    h->host->http_cancel(call);
}

/* The probe ended without a response head (refused, timeout, broken). */
static void hl_on_done(void *arg, int error, const char *message)
{
    struct hl_check *c = arg;
    char reason[300];

    snprintf(reason, sizeof(reason), "%s", error && message ? message : "no response");
    hl_verdict(c, 0, reason);
}

/* Timer: sends a probe.  Control thread. */
static void hl_probe(void *arg)
{
    struct hl_check *c = arg;
    struct hl_service *h = c->svc;
    relais_http_callbacks cb = {sizeof(cb), hl_on_response, NULL, hl_on_done};
    relais_http_req req;

    if (c->call) return;
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = h->method;
    req.url = c->url;
    req.headers = h->hdrs;
    req.nheaders = h->nhdrs;
    req.timeout_ms = (uint64_t)h->timeout_ms;
    req.tls_insecure = h->tls_insecure;
    c->started_ms = hl_now_ms();
    if (h->tr && h->tr->ctx && !strncasecmp(c->url, "https://", 8)) {
        /* the server's own TLS settings, as proxied requests get them */
        const struct snap_server *srv = &h->servers->v[c->idx];
        char err[256];
        SSL *ssl = tr_ssl(h->tr, srv->u.host, 0, err, sizeof(err));
        if (!ssl) {
            hl_verdict(c, 0, err);
            return;
        }
        c->call = hc_request_ssl(host_loop(), &req, ssl, &cb, c);
    } else {
        c->call = h->host->http_request(&req, &cb, c);
    }
    if (!c->call) hl_verdict(c, 0, "the probe could not be sent");
}

/* ---- passive ----------------------------------------------------------- */

/* Timer: ends the penalties that are over.  Control thread. */
static void hl_tick(void *arg)
{
    struct hl_service *h = arg;
    uint64_t now = hl_now_ms();

    for (size_t i = 0; i < h->servers->n; i++) {
        uint64_t until = __atomic_load_n(&h->pas[i].down_until_ms, __ATOMIC_ACQUIRE);
        if (!until || now < until) continue;
        pthread_mutex_lock(&h->lock);
        __atomic_store_n(&h->pas[i].down_until_ms, 0, __ATOMIC_RELEASE);
        h->pas[i].fails = 0;
        hl_apply_locked(h, i, NULL);
        pthread_mutex_unlock(&h->lock);
    }
    h->host->timer_start(h->tick, (uint64_t)h->tick_ms);
}

void hl_report(struct hl_service *h, size_t idx, int outcome)
{
    struct hl_passive *p;
    uint64_t now;

    if (!h || !h->passive || idx >= h->servers->n) return;
    p = &h->pas[idx];
    if (outcome == RELAIS_OUTCOME_OK) {
        if (!__atomic_load_n(&p->fails, __ATOMIC_RELAXED)) return;
        pthread_mutex_lock(&h->lock);
        __atomic_store_n(&p->fails, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&h->lock);
        return;
    }
    now = hl_now_ms();
    pthread_mutex_lock(&h->lock);
    if (!__atomic_load_n(&p->down_until_ms, __ATOMIC_ACQUIRE)) {
        if (!p->fails || now - p->win_start_ms > (uint64_t)h->window_ms) {
            p->win_start_ms = now;
            __atomic_store_n(&p->fails, 0, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&p->fails, p->fails + 1, __ATOMIC_RELAXED);
        if (p->fails >= h->max_failed) {
            char reason[128];
            snprintf(reason, sizeof(reason), "%u failed attempt(s) within %lldms (passive)",
                     p->fails, (long long)h->window_ms);
            __atomic_store_n(&p->down_until_ms, now + (uint64_t)h->window_ms, __ATOMIC_RELEASE);
            __atomic_store_n(&p->fails, 0, __ATOMIC_RELAXED);
            hl_apply_locked(h, idx, reason);
        }
    }
    pthread_mutex_unlock(&h->lock);
}

/* ---- configuration ----------------------------------------------------- */

/* Copies string key of node into *out (NULL when absent).  0, or -1 on a
 * reported error / out of memory. */
static int hl_str(const relais_cfg *node, const char *key, char **out)
{
    const char *s;

    *out = NULL;
    switch (conf_cfg_string(node, key, &s)) {
    case RELAIS_CFG_OK:
        *out = strdup(s);
        return *out ? 0 : -1;
    case RELAIS_CFG_MISSING:
        return 0;
    default:
        return -1;
    }
}

/* A positive duration under key (default dflt).  0 / -1 (reported). */
static int hl_dur(const relais_cfg *node, const char *key, int64_t dflt, int64_t *out)
{
    int r;

    *out = dflt;
    r = conf_cfg_duration(node, key, out);
    if (r == RELAIS_CFG_MISSING) {
        *out = dflt;
        return 0;
    }
    if (r != RELAIS_CFG_OK) return -1;
    if (*out <= 0) {
        conf_cfg_error(node, key, "expected a duration greater than 0");
        return -1;
    }
    return 0;
}

/* Reads healthCheck (node hc) into h.  0 / -1 (reported). */
static int hl_parse_active(struct hl_service *h, const relais_cfg *hc)
{
    const relais_cfg *hd;
    char *mode = NULL;
    int64_t v;
    int bad = 0;

    if (conf_cfg_type(hc) != RELAIS_CFG_MAP) {
        conf_cfg_error(hc, NULL, "expected a map");
        return -1;
    }
    h->active = 1;
    h->follow_redirects = 1;
    if (hl_str(hc, "path", &h->path) < 0) bad = 1;
    if (h->path && h->path[0] != '/') {
        conf_cfg_error(hc, "path", "expected a path beginning with /");
        bad = 1;
    }
    if (hl_str(hc, "scheme", &h->scheme) < 0) bad = 1;
    if (h->scheme && strcasecmp(h->scheme, "http") && strcasecmp(h->scheme, "https")) {
        conf_cfg_error(hc, "scheme", "expected http or https");
        bad = 1;
    }
    if (hl_str(hc, "mode", &mode) < 0) bad = 1;
    if (mode && strcasecmp(mode, "http")) {
        conf_cfg_error(hc, "mode", "mode \"%s\" is not supported (http is)", mode);
        bad = 1;
    }
    free(mode);
    if (hl_str(hc, "method", &h->method) < 0) bad = 1;
    if (h->method && (!*h->method || strpbrk(h->method, " \r\n\t"))) {
        conf_cfg_error(hc, "method", "expected an HTTP method");
        bad = 1;
    }
    if (hl_str(hc, "hostname", &h->hostname) < 0) bad = 1;
    if (h->hostname && (!*h->hostname || strpbrk(h->hostname, " \r\n\t/"))) {
        conf_cfg_error(hc, "hostname", "expected a host name");
        bad = 1;
    }
    switch (conf_cfg_int(hc, "port", &v)) {
    case RELAIS_CFG_OK:
        if (v < 1 || v > 65535) {
            conf_cfg_error(hc, "port", "expected a port from 1 to 65535");
            bad = 1;
        } else {
            h->port = (int)v;
        }
        break;
    case RELAIS_CFG_MISSING: break;
    default: bad = 1;
    }
    switch (conf_cfg_int(hc, "status", &v)) {
    case RELAIS_CFG_OK:
        if (v != 0 && (v < 100 || v > 599)) {
            conf_cfg_error(hc, "status", "expected a status code from 100 to 599");
            bad = 1;
        } else {
            h->status = (int)v;
        }
        break;
    case RELAIS_CFG_MISSING: break;
    default: bad = 1;
    }
    if (conf_cfg_bool(hc, "followRedirects", &h->follow_redirects) > RELAIS_CFG_MISSING) bad = 1;
    if (hl_dur(hc, "interval", 30000, &h->interval_ms) < 0) bad = 1;
    if (hl_dur(hc, "unhealthyInterval", h->interval_ms, &h->unhealthy_ms) < 0) bad = 1;
    if (hl_dur(hc, "timeout", 5000, &h->timeout_ms) < 0) bad = 1;
    hd = conf_cfg_get(hc, "headers");
    if (hd && conf_cfg_type(hd) != RELAIS_CFG_MAP && conf_cfg_type(hd) != RELAIS_CFG_NULL) {
        conf_cfg_error(hc, "headers", "expected a map of header names to values");
        bad = 1;
    }
    {
        size_t n = conf_cfg_type(hd) == RELAIS_CFG_MAP ? conf_cfg_len(hd) : 0;
        if (n + 1 > HL_MAX_HEADERS) {
            conf_cfg_error(hc, "headers", "at most %d headers", HL_MAX_HEADERS - 1);
            return -1;
        }
        h->hdrs = calloc(n + 1, sizeof(*h->hdrs));
        if (!h->hdrs) return -1;
        if (h->hostname) {
            h->hdrs[0].name = strdup("Host");
            h->hdrs[0].value = strdup(h->hostname);
            h->nhdrs = 1;
            if (!h->hdrs[0].name || !h->hdrs[0].value) return -1;
        }
        for (size_t i = 0; i < n; i++) {
            const char *k = NULL, *val;
            conf_cfg_at(hd, i, &k);
            if (!k || conf_cfg_string(hd, k, &val) != RELAIS_CFG_OK) {
                bad = 1;
                continue;
            }
            if (!*k || strpbrk(k, " \t\r\n:") || strpbrk(val, "\r\n")) {
                conf_cfg_error(hd, k, "invalid header");
                bad = 1;
                continue;
            }
            h->hdrs[h->nhdrs].name = strdup(k);
            h->hdrs[h->nhdrs].value = strdup(val);
            h->nhdrs++;
            if (!h->hdrs[h->nhdrs - 1].name || !h->hdrs[h->nhdrs - 1].value) return -1;
        }
    }
    if (!h->method) h->method = strdup("GET");
    if (!h->path) h->path = strdup("/");
    if (!h->method || !h->path) return -1;
    return bad ? -1 : 0;
}

/* Reads passiveHealthCheck (node pc) into h.  0 / -1 (reported). */
static int hl_parse_passive(struct hl_service *h, const relais_cfg *pc)
{
    int64_t v = 1;
    int bad = 0;

    if (conf_cfg_type(pc) != RELAIS_CFG_MAP) {
        conf_cfg_error(pc, NULL, "expected a map");
        return -1;
    }
    h->passive = 1;
    if (hl_dur(pc, "failureWindow", 10000, &h->window_ms) < 0) bad = 1;
    switch (conf_cfg_int(pc, "maxFailedAttempts", &v)) {
    case RELAIS_CFG_OK:
    case RELAIS_CFG_MISSING:
        if (v < 1 || v > 1000000) {
            conf_cfg_error(pc, "maxFailedAttempts", "expected a count from 1 to 1000000");
            bad = 1;
        }
        break;
    default: bad = 1;
    }
    h->max_failed = (uint32_t)(v < 1 ? 1 : v);
    h->tick_ms = h->window_ms / 20;
    if (h->tick_ms < 10) h->tick_ms = 10;
    if (h->tick_ms > 500) h->tick_ms = 500;
    return bad ? -1 : 0;
}

/* Builds server i's probe URL into c.  0 / -1 (out of memory). */
static int hl_url(struct hl_service *h, size_t i, struct hl_check *c)
{
    const struct snap_server *srv = &h->servers->v[i];
    /* an h2c:// server is probed in HTTP/1.1 (the probe client's only
       version); scheme: https or a gRPC-aware probe are the other ways */
    const char *scheme = h->scheme ? h->scheme : !strcmp(srv->u.scheme, "h2c") ? "http"
                                                                             : srv->u.scheme;
    int v6 = strchr(srv->u.host, ':') != NULL;
    char buf[HL_URL_MAX];
    int n;

    n = snprintf(buf, sizeof(buf), "%s://%s%s%s:%d%s", scheme, v6 ? "[" : "", srv->u.host,
                 v6 ? "]" : "", h->port ? h->port : srv->u.port, h->path);
    if (n < 0 || (size_t)n >= sizeof(buf)) return -1;
    c->url = strdup(buf);
    return c->url ? 0 : -1;
}

int hl_new(const relais_host *host, const relais_cfg *lb, const char *name,
           struct relais_servers *servers, const struct tr_transport *tr,
           struct hl_service **out)
{
    const relais_cfg *hc = conf_cfg_get(lb, "healthCheck");
    const relais_cfg *pc = conf_cfg_get(lb, "passiveHealthCheck");
    struct hl_service *h;
    size_t n = servers->n;

    *out = NULL;
    if (conf_cfg_type(hc) == RELAIS_CFG_NULL) hc = NULL;
    if (conf_cfg_type(pc) == RELAIS_CFG_NULL) pc = NULL;
    if (!hc && !pc) return 0;
    h = calloc(1, sizeof(*h));
    if (!h) return -1;
    pthread_mutex_init(&h->lock, NULL);
    h->host = host;
    h->servers = servers;
    h->tls_insecure = tr ? tr->insecure : 0;
    h->tr = tr;
    h->name = strdup(name);
    if (!h->name) goto fail;
    if (hc && hl_parse_active(h, hc) < 0) goto fail;
    if (pc && hl_parse_passive(h, pc) < 0) goto fail;
    if (h->active) {
        h->checks = calloc(n ? n : 1, sizeof(*h->checks));
        if (!h->checks) goto fail;
        for (size_t i = 0; i < n; i++) {
            h->checks[i].svc = h;
            h->checks[i].idx = i;
            h->checks[i].ok = 1;
            if (hl_url(h, i, &h->checks[i]) < 0) goto fail;
        }
    }
    if (h->passive) {
        h->pas = calloc(n ? n : 1, sizeof(*h->pas));
        if (!h->pas) goto fail;
    }
    *out = h;
    return 0;
fail:
    hl_free(h);
    return -1;
}

void hl_start(struct hl_service *h)
{
    const relais_host *host;

    if (!h) return;
    host = h->host;
    if (!host || !host->timer_new || !host->http_request) return;
    for (size_t i = 0; h->active && i < h->servers->n; i++) {
        struct hl_check *c = &h->checks[i];
        if (c->timer) continue;
        c->timer = host->timer_new(hl_probe, c);
        if (c->timer) host->timer_start(c->timer, 0);
    }
    if (h->passive && !h->tick) {
        h->tick = host->timer_new(hl_tick, h);
        if (h->tick) host->timer_start(h->tick, (uint64_t)h->tick_ms);
    }
}

void hl_free(struct hl_service *h)
{
    if (!h) return;
    for (size_t i = 0; h->checks && i < h->servers->n; i++) {
        struct hl_check *c = &h->checks[i];
        if (c->call) h->host->http_cancel(c->call);
        if (c->timer) h->host->timer_free(c->timer);
        free(c->url);
    }
    if (h->tick) h->host->timer_free(h->tick);
    for (size_t i = 0; i < h->nhdrs; i++) {
        free((char *)h->hdrs[i].name);
        free((char *)h->hdrs[i].value);
    }
    free(h->hdrs);
    free(h->checks);
    free(h->pas);
    free(h->path);
    free(h->scheme);
    free(h->method);
    free(h->hostname);
    free(h->name);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
