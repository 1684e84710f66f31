/*
 * http — provider plugin that polls an HTTP endpoint returning the dynamic
 * configuration (Traefik's HTTP provider: YAML or JSON, the file
 * provider's schema).  Options: endpoint (required), pollInterval (5s),
 * pollTimeout (5s), headers (map), maxResponseBodySize (-1 = unlimited).
 *
 * A body is published only when it differs from the last one published;
 * when the endpoint fails (refused, timeout, non-200, oversized) the
 * failure is logged and the last configuration keeps serving; the next
 * poll tries again.  Built only against the SDK headers.  Everything runs
 * on the control thread (timers and the host's HTTP client).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "pvtls.h"

#define HP_MAX_HEADERS 64            /* headers option cap */
#define HP_DEFAULT_CAP (64u << 20)   /* body cap when unlimited: 64 MiB */

/** One configured header. */
struct hp_header {
    char *name;  /* header name */
    char *value; /* header value */
};

/** The provider instance. */
struct hp {
    char who[96];                 /* "provider NAME", for the log */
    const relais_host *host;      /* host table */
    relais_provider *prov;        /* our handle */
    char *endpoint;               /* URL to poll */
    int64_t interval_ms;          /* pollInterval */
    int64_t timeout_ms;           /* pollTimeout */
    int64_t max_body;             /* maxResponseBodySize, -1 unlimited */
    struct hp_header headers[HP_MAX_HEADERS]; /* headers option */
    relais_header req_headers[HP_MAX_HEADERS]; /* the same, for requests */
    size_t nheaders;              /* how many */
    relais_timer *timer;          /* next poll */
    relais_http_call *call;       /* poll in flight, or NULL */
    int status;                   /* status of the response in flight */
    char *body;                   /* body being received */
    size_t len;                   /* its length */
    size_t cap;                   /* its allocation */
    int too_big;                  /* body over max_body */
    char *last;                   /* last body published */
    size_t last_len;              /* its length */
    struct pvt_tls tls;           /* the tls block */
    int failing;                  /* last poll failed (log once) */
    int stopped;                  /* stop() was called */
};

/* Schedules the next poll. */
static void hp_schedule(struct hp *p)
{
    if (!p->stopped) p->host->timer_start(p->timer, (uint64_t)p->interval_ms);
}

/* Logs a failure (once until the next success). */
static void hp_fail(struct hp *p, const char *what)
{
    if (!p->failing)
        p->host->log(RELAIS_LOG_ERROR, p->who, "%s: %s; the last configuration keeps serving",
                     p->endpoint, what);
    p->failing = 1;
}

/* Response head: remember the status. */
static void hp_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct hp *p = arg;

    (void)headers;
    p->status = status;
    p->len = 0;
    p->too_big = 0;
}

/* Body bytes: append under the cap. */
static void hp_on_data(void *arg, const char *data, size_t len)
{
    struct hp *p = arg;
    size_t cap = p->max_body >= 0 ? (size_t)p->max_body : HP_DEFAULT_CAP;

    if (p->too_big) return;
    if (p->len + len > cap) {
        p->too_big = 1;
        return;
    }
    if (p->len + len > p->cap) {
        size_t nc = p->cap ? p->cap : 4096;
        char *nb;
        while (nc < p->len + len) nc *= 2;
        nb = realloc(p->body, nc);
        if (!nb) {
            p->too_big = 1;
            return;
        }
        p->body = nb;
        p->cap = nc;
    }
    memcpy(p->body + p->len, data, len);
    p->len += len;
}

/* End of a poll: publish a new body, or keep the last configuration. */
static void hp_on_done(void *arg, int error, const char *message)
{
    struct hp *p = arg;
    char what[300];

    p->call = NULL;
    if (error) {
        hp_fail(p, message ? message : "request failed");
    } else if (p->status != 200) {
        snprintf(what, sizeof(what), "status %d", p->status);
        hp_fail(p, what);
    } else if (p->too_big) {
        hp_fail(p, "response body over maxResponseBodySize");
    } else if (p->last && p->last_len == p->len && !memcmp(p->last, p->body, p->len)) {
        p->failing = 0; /* unchanged: nothing to publish */
    } else {
        relais_doc doc = {p->endpoint, p->body ? p->body : "", p->len, RELAIS_DOC_AUTO};
        if (p->host->provider_publish(p->prov, &doc, 1) == 0) {
            char *copy = malloc(p->len ? p->len : 1);
            if (copy) {
                memcpy(copy, p->body ? p->body : "", p->len);
                free(p->last);
                p->last = copy;
                p->last_len = p->len;
            }
            if (p->failing)
                p->host->log(RELAIS_LOG_INFO, p->who, "%s: reachable again", p->endpoint);
            p->failing = 0;
        } else {
            /* the host logged where the document is wrong */
            p->failing = 1;
        }
    }
    hp_schedule(p);
}

/* Timer: start a poll. */
static void hp_poll(void *arg)
{
    struct hp *p = arg;
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), hp_on_response,
                                             hp_on_data, hp_on_done};
    relais_http_req req;

    if (p->stopped || p->call) return;
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "GET";
    req.url = p->endpoint;
    req.headers = p->req_headers;
    req.nheaders = p->nheaders;
    req.timeout_ms = (uint64_t)p->timeout_ms;
    pvt_apply(&p->tls, &req);
    p->status = 0;
    p->len = 0;
    p->call = p->host->http_request(&req, &cb, p);
    if (!p->call) {
        hp_fail(p, "cannot start a request (invalid endpoint?)");
        hp_schedule(p);
    }
}

/* Frees an instance. */
static void hp_destroy(void *inst)
{
    struct hp *p = inst;

    if (!p) return;
    if (p->call) p->host->http_cancel(p->call);
    p->host->timer_free(p->timer);
    for (size_t i = 0; i < p->nheaders; i++) {
        free(p->headers[i].name);
        free(p->headers[i].value);
    }
    free(p->endpoint);
    pvt_free(&p->tls);
    free(p->body);
    free(p->last);
    free(p);
}

static int hp_create(const relais_host *host, const relais_cfg *cfg, relais_provider *prov,
                     void **inst)
{
    struct hp *p = calloc(1, sizeof(*p));
    const relais_cfg *hdrs;
    const char *s;
    int bad = 0;

    if (!p) return -1;
    p->host = host;
    p->prov = prov;
    snprintf(p->who, sizeof(p->who), "provider %s",
             host->provider_name(prov) ? host->provider_name(prov) : "http");
    p->interval_ms = 5000;
    p->timeout_ms = 5000;
    p->max_body = -1;
    if (!RELAIS_HOST_HAS(host, http_request)) {
        host->cfg_error(cfg, NULL, "this relais has no HTTP client (ABI 1.1 needed)");
        bad = 1;
    }
    switch (host->cfg_string(cfg, "endpoint", &s)) {
    case RELAIS_CFG_OK:
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
            host->cfg_error(cfg, "endpoint", "expected an http:// or https:// URL, got \"%s\"", s);
            bad = 1;
        } else if (s[4] == 's' && !RELAIS_HOST_ABI_AT_LEAST(host, 1, 2)) {
            host->cfg_error(cfg, "endpoint", "https needs a relais with ABI 1.2");
            bad = 1;
        }
        p->endpoint = strdup(s);
        break;
    case RELAIS_CFG_MISSING:
        host->cfg_error(cfg, "endpoint", "missing: expected the URL to poll");
        bad = 1;
        break;
    default:
        bad = 1;
    }
    if (host->cfg_duration(cfg, "pollInterval", &p->interval_ms) == RELAIS_CFG_INVALID) bad = 1;
    if (host->cfg_duration(cfg, "pollTimeout", &p->timeout_ms) == RELAIS_CFG_INVALID) bad = 1;
    if (p->interval_ms <= 0) {
        host->cfg_error(cfg, "pollInterval", "expected a positive duration");
        bad = 1;
    }
    if (host->cfg_int(cfg, "maxResponseBodySize", &p->max_body) == RELAIS_CFG_INVALID) bad = 1;
    hdrs = host->cfg_get(cfg, "headers");
    if (hdrs && host->cfg_type(hdrs) != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, "headers", "expected a map of header names to values");
        bad = 1;
    } else if (hdrs) {
        size_t n = host->cfg_len(hdrs);
        for (size_t i = 0; i < n && p->nheaders < HP_MAX_HEADERS; i++) {
            const char *key, *val;
            const relais_cfg *v = host->cfg_at(hdrs, i, &key);
            if (host->cfg_string(v, NULL, &val) != RELAIS_CFG_OK) {
                bad = 1;
                continue;
            }
            p->headers[p->nheaders].name = strdup(key);
            p->headers[p->nheaders].value = strdup(val);
            p->req_headers[p->nheaders].name = p->headers[p->nheaders].name;
            p->req_headers[p->nheaders].value = p->headers[p->nheaders].value;
            p->nheaders++;
        }
        if (n > HP_MAX_HEADERS) {
            host->cfg_error(cfg, "headers", "at most %d headers", HP_MAX_HEADERS);
            bad = 1;
        }
    }
    if (pvt_read(host, cfg, &p->tls) < 0) bad = 1;
    if (bad) {
        hp_destroy(p);
        return -1;
    }
    *inst = p;
    return 0;
}

static int hp_start(void *inst)
{
    struct hp *p = inst;

    p->timer = p->host->timer_new(hp_poll, p);
    if (!p->timer) return -1;
    hp_poll(p); /* first poll at once */
    return 0;
}

static void hp_reload(void *inst)
{
    struct hp *p = inst;

    if (!p->call) {
        p->host->timer_stop(p->timer);
        hp_poll(p);
    }
}

static void hp_stop(void *inst)
{
    struct hp *p = inst;

    p->stopped = 1;
    if (p->call) {
        p->host->http_cancel(p->call);
        p->call = NULL;
    }
    if (p->timer) p->host->timer_stop(p->timer);
}

static const relais_provider_ops hp_ops = {
    sizeof(relais_provider_ops), hp_create, hp_start, NULL, hp_reload, hp_stop, hp_destroy,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_PROVIDER,
    "http",
    "1.0.0",
    "http",
    "polls an HTTP endpoint for the dynamic configuration",
    NULL,
    NULL,
    &hp_ops,
};
