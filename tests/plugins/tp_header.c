/*
 * tp_header — test-only middleware (config key "testHeader") that
 * exercises the middleware side of the ABI.  Module prefix: tph_.
 *
 * Options:
 *   name, value   set the response header name: value (on_response);
 *   deny: true    answer 403 "denied by testHeader\n" from on_request and
 *                 return RELAIS_DONE;
 *   suspendMs: N  suspend every request, then resume it with RELAIS_NEXT
 *                 after N ms from a host timer on the request's worker
 *                 thread (exercises RELAIS_SUSPEND / req_resume);
 *   setPath: P    req_set_path(P) (P may be empty: ABI 1.4);
 *   setHost: H    req_set_authority(H) (ABI 1.4);
 *   countEnds: true  counts ended exchanges (req_on_end, ABI 1.4) and
 *                 answers with X-Ends: the count when the request began.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

/** Cap on suspendMs. */
#define TPH_MAX_SUSPEND_MS 600000

/** One configured instance. */
struct tph_inst {
    const relais_host *host; /* host function table */
    char *name;              /* response header name (owned), or NULL */
    char *value;             /* its value (owned), or NULL */
    int deny;                /* answer 403 */
    int64_t suspend_ms;      /* suspend each request that long; 0: never */
    char *set_path;          /* path to set (owned), or NULL */
    char *set_host;          /* authority to set (owned), or NULL */
    int count_ends;          /* countEnds */
};

/** Exchanges ended so far (countEnds; every thread). */
static unsigned long tph_ends;

/** req_on_end callback: one more exchange ended. */
static void tph_on_end(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&tph_ends, 1, __ATOMIC_RELAXED);
}

/** A suspended request (in the request's memory). */
struct tph_susp {
    const relais_host *host; /* host function table */
    relais_req *req;         /* the suspended request */
    relais_timer *timer;     /* the timer that resumes it */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void tph_destroy(void *inst)
{
    struct tph_inst *t = inst;

    if (!t) return;
    free(t->name);
    free(t->value);
    free(t->set_path);
    free(t->set_host);
    free(t);
}

/** Control thread: reads the options.  0, or -1 after cfg_error. */
static int tph_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    const char *hname = NULL, *hvalue = "", *spath = NULL, *shost = NULL;
    struct tph_inst *t = NULL;
    int deny = 0, ends = 0;
    int64_t ms = 0;

    (void)name;
    if (host->cfg_string(cfg, "name", &hname) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "value", &hvalue) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "deny", &deny) == RELAIS_CFG_INVALID ||
        host->cfg_int(cfg, "suspendMs", &ms) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "setPath", &spath) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "setHost", &shost) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "countEnds", &ends) == RELAIS_CFG_INVALID)
        return -1;
    if (ms < 0 || ms > TPH_MAX_SUSPEND_MS) {
        host->cfg_error(cfg, "suspendMs", "must be between 0 and %d",
                        TPH_MAX_SUSPEND_MS);
        return -1;
    }
    t = calloc(1, sizeof(*t));
    if (!t) goto nomem;
    t->host = host;
    t->deny = deny;
    t->suspend_ms = ms;
    t->count_ends = ends;
    if ((spath && !(t->set_path = strdup(spath))) || (shost && !(t->set_host = strdup(shost))))
        goto nomem;
    if (hname && hname[0]) {
        t->name = strdup(hname);
        t->value = strdup(hvalue);
        if (!t->name || !t->value) goto nomem;
    }
    *inst = t;
    return 0;

nomem:
    tph_destroy(t);
    host->cfg_error(cfg, NULL, "out of memory");
    return -1;
}

/**
 * Worker thread, timer of a suspended request: frees the one-shot timer
 * (the host allows freeing a timer from its own callback) and resumes the
 * request, which may finish and free its memory, s included.
 */
static void tph_resume(void *arg)
{
    struct tph_susp *s = arg;
    const relais_host *host = s->host;
    relais_req *req = s->req;

    host->timer_free(s->timer);
    s->timer = NULL;
    host->req_resume(req, RELAIS_NEXT);
}

/** Worker thread: deny, suspend or pass. */
static int tph_on_request(void *inst, relais_req *req, void **ctx)
{
    static const char body[] = "denied by testHeader\n";
    static const relais_header hdrs[] = {
        {"Content-Type", "text/plain; charset=utf-8"}};
    struct tph_inst *t = inst;
    struct tph_susp *s;

    (void)ctx;
    if (t->count_ends) {
        char v[32];
        unsigned long n = __atomic_load_n(&tph_ends, __ATOMIC_RELAXED);
        int l = snprintf(v, sizeof(v), "%lu", n);
        char *keep = t->host->req_alloc(req, (size_t)l + 1);
        if (!keep || t->host->req_on_end(req, tph_on_end, NULL) < 0) return RELAIS_ERROR;
        memcpy(keep, v, (size_t)l + 1);
        *ctx = keep;
    }
    if (t->set_path && t->host->req_set_path(req, t->set_path, strlen(t->set_path)) < 0)
        return RELAIS_ERROR;
    if (t->set_host && t->host->req_set_authority(req, t->set_host, strlen(t->set_host)) < 0)
        return RELAIS_ERROR;
    if (t->deny) {
        if (t->host->respond(req, 403, hdrs, 1, body, sizeof(body) - 1) < 0)
            return RELAIS_ERROR;
        return RELAIS_DONE;
    }
    if (t->suspend_ms > 0) {
        s = t->host->req_alloc(req, sizeof(*s));
        if (!s) return RELAIS_ERROR;
        s->host = t->host;
        s->req = req;
        s->timer = t->host->timer_new(tph_resume, s);
        if (!s->timer) return RELAIS_ERROR;
        if (t->host->timer_start(s->timer, (uint64_t)t->suspend_ms) < 0) {
            t->host->timer_free(s->timer);
            return RELAIS_ERROR;
        }
        return RELAIS_SUSPEND;
    }
    return RELAIS_NEXT;
}

/** Worker thread: sets the configured response header. */
static int tph_on_response(void *inst, relais_req *req, void **ctx)
{
    struct tph_inst *t = inst;
    relais_hdrs *h;

    if (t->count_ends && *ctx) {
        h = t->host->resp_headers(req);
        if (h) t->host->hdr_set(h, "X-Ends", *ctx, strlen(*ctx));
    }
    if (!t->name) return RELAIS_NEXT;
    h = t->host->resp_headers(req);
    if (!h) return RELAIS_NEXT;
    if (t->host->hdr_set(h, t->name, t->value, strlen(t->value)) < 0)
        return RELAIS_ERROR;
    return RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops tph_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = tph_create,
    .destroy = tph_destroy,
    .on_request = tph_on_request,
    .on_response = tph_on_response,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "tp_header",
    .version = "0.0.1",
    .config_key = "testHeader",
    .description = "test: sets a response header, denies or suspends",
    .load = NULL,
    .unload = NULL,
    .ops = &tph_ops,
};
