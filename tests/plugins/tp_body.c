/*
 * tp_body — test-only middleware (config key "testBody") that exercises
 * the response body filter of ABI 1.4 and the request body filter and
 * trailers of ABI 1.5.  Module prefix: tpb_.
 *
 * Options:
 *   upper: true     the body is passed on in upper case, piece by piece;
 *   tag: "X"        "<X>" is written before the first byte and "</X>" at
 *                   the end (so two instances show their nesting order);
 *   hold: true      nothing is passed on until the end, then everything
 *                   at once (a filter that buffers, bounded by 1 MiB);
 *   requestTag: "X" the request body goes to the server as "<X>" body
 *                   "</X>";
 *   requestUpper: true  ... with what it is given upper-cased;
 *   addTrailer: "N: V"  response trailer N: V added at the body's end;
 *   dropTrailer: "N"    response trailer N removed there.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#define TPB_MAX_HOLD (1024 * 1024) /* cap on a held body */

/** One configured instance. */
struct tpb_inst {
    const relais_host *host; /* host function table */
    int upper;               /* upper-case the body */
    char *tag;               /* wrapping tag (owned), or NULL */
    int hold;                /* buffer until the end */
    char *rtag;              /* request body tag (owned), or NULL */
    int rupper;              /* upper-case the request body */
    char *add_name;          /* trailer to add: name (owned), or NULL */
    char *add_value;         /* its value (owned) */
    char *drop;              /* trailer to remove (owned), or NULL */
};

/** Per-request state (request memory). */
struct tpb_req {
    int started;             /* the opening tag was written */
    char *held;              /* held bytes (request memory), or NULL */
    size_t nheld;            /* how many */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void tpb_destroy(void *inst)
{
    struct tpb_inst *t = inst;

    if (!t) return;
    free(t->tag);
    free(t->rtag);
    free(t->add_name);
    free(t->add_value);
    free(t->drop);
    free(t);
}

/** Control thread: reads the options.  0, or -1 after cfg_error. */
static int tpb_create(const relais_host *host, const relais_cfg *cfg, const char *name,
                      void **inst)
{
    struct tpb_inst *t = calloc(1, sizeof(*t));
    const char *tag = NULL, *rtag = NULL, *add = NULL, *drop = NULL;

    (void)name;
    if (!t) return -1;
    t->host = host;
    if (host->cfg_bool(cfg, "upper", &t->upper) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "hold", &t->hold) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "tag", &tag) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "requestTag", &rtag) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "requestUpper", &t->rupper) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "addTrailer", &add) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "dropTrailer", &drop) == RELAIS_CFG_INVALID) {
        tpb_destroy(t);
        return -1;
    }
    if ((tag && !(t->tag = strdup(tag))) || (rtag && !(t->rtag = strdup(rtag))) ||
        (drop && !(t->drop = strdup(drop)))) {
        tpb_destroy(t);
        return -1;
    }
    if (add) {
        const char *colon = strchr(add, ':');
        if (!colon || colon == add) {
            host->cfg_error(cfg, "addTrailer", "expected \"Name: value\"");
            tpb_destroy(t);
            return -1;
        }
        t->add_name = strndup(add, (size_t)(colon - add));
        t->add_value = strdup(colon + 1 + strspn(colon + 1, " "));
        if (!t->add_name || !t->add_value) {
            tpb_destroy(t);
            return -1;
        }
    }
    *inst = t;
    return 0;
}

/** Worker thread: asks for the request body when requestTag is set (a
 *  request without a body is refused by the host: nothing to do). */
static int tpb_on_request(void *inst, relais_req *req, void **ctx)
{
    struct tpb_inst *t = inst;

    (void)ctx;
    if (t->rtag && RELAIS_HOST_HAS(t->host, req_body_filter))
        t->host->req_body_filter(req);
    return RELAIS_NEXT;
}

/** Worker thread: the request body filter: "<tag>" body "</tag>". */
static int tpb_on_request_body(void *inst, relais_req *req, void **ctx, const char *data,
                               size_t len, int last)
{
    struct tpb_inst *t = inst;
    char buf[4096];

    if (!*ctx) {
        /* first call: the opening tag (ctx marks it, no memory needed) */
        size_t n = (size_t)snprintf(buf, sizeof(buf), "<%s>", t->rtag);
        if (t->host->req_body_write(req, buf, n) < 0) return RELAIS_ERROR;
        *ctx = t;
    }
    while (len) {
        size_t k = len < sizeof(buf) ? len : sizeof(buf);
        for (size_t i = 0; i < k; i++)
            buf[i] = t->rupper ? (char)toupper((unsigned char)data[i]) : data[i];
        if (t->host->req_body_write(req, buf, k) < 0) return RELAIS_ERROR;
        data += k;
        len -= k;
    }
    if (last) {
        size_t n = (size_t)snprintf(buf, sizeof(buf), "</%s>", t->rtag);
        if (t->host->req_body_write(req, buf, n) < 0) return RELAIS_ERROR;
    }
    return RELAIS_NEXT;
}

/** Worker thread: asks for the body (when there is one) and marks it. */
static int tpb_on_response(void *inst, relais_req *req, void **ctx)
{
    struct tpb_inst *t = inst;
    struct tpb_req *s;

    /* the request filter's ctx slot is shared: reset it for the response */
    *ctx = NULL;
    if (t->host->resp_body_filter(req) < 0) return RELAIS_NEXT;
    s = t->host->req_alloc(req, sizeof(*s));
    if (!s) return RELAIS_ERROR;
    memset(s, 0, sizeof(*s));
    *ctx = s;
    t->host->hdr_set(t->host->resp_headers(req), "X-Test-Body", "filtered", 8);
    return RELAIS_NEXT;
}

/** Worker thread: the filter. */
static int tpb_on_body(void *inst, relais_req *req, void **ctx, const char *data, size_t len,
                       int last)
{
    struct tpb_inst *t = inst;
    struct tpb_req *s = *ctx;
    char buf[4096];

    if (!s) return RELAIS_ERROR;
    if (t->tag && !s->started) {
        char open[300];
        size_t n = (size_t)snprintf(open, sizeof(open), "<%s>", t->tag);
        if (t->host->resp_body_write(req, open, n) < 0) return RELAIS_ERROR;
    }
    s->started = 1;
    if (t->hold && len) {
        char *n;
        if (s->nheld + len > TPB_MAX_HOLD) return RELAIS_ERROR;
        n = t->host->req_alloc(req, s->nheld + len);
        if (!n) return RELAIS_ERROR;
        if (s->nheld) memcpy(n, s->held, s->nheld);
        memcpy(n + s->nheld, data, len);
        s->held = n;
        s->nheld += len;
        len = 0;
    }
    if (last && s->nheld) {
        data = s->held;
        len = s->nheld;
    }
    while (len) {
        size_t k = len < sizeof(buf) ? len : sizeof(buf);
        for (size_t i = 0; i < k; i++)
            buf[i] = t->upper ? (char)toupper((unsigned char)data[i]) : data[i];
        if (t->host->resp_body_write(req, buf, k) < 0) return RELAIS_ERROR;
        data += k;
        len -= k;
    }
    if (last && t->tag) {
        char close[300];
        size_t n = (size_t)snprintf(close, sizeof(close), "</%s>", t->tag);
        if (t->host->resp_body_write(req, close, n) < 0) return RELAIS_ERROR;
    }
    if (last && (t->add_name || t->drop) && RELAIS_HOST_HAS(t->host, resp_trailers)) {
        relais_hdrs *tr = t->host->resp_trailers(req);
        if (!tr) return RELAIS_ERROR;
        if (t->drop) t->host->hdr_del(tr, t->drop);
        if (t->add_name &&
            t->host->hdr_add(tr, t->add_name, t->add_value, strlen(t->add_value)) < 0)
            return RELAIS_ERROR;
    }
    return RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops tpb_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = tpb_create,
    .destroy = tpb_destroy,
    .on_request = tpb_on_request,
    .on_response = tpb_on_response,
    .on_response_body = tpb_on_body,
    .on_request_body = tpb_on_request_body,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "tp_body",
    "0.0.1",
    "testBody",
    "test-only response body filter",
    NULL,
    NULL,
    &tpb_ops,
};
