/*
 * tp_body — test-only middleware (config key "testBody") that exercises
 * the response body filter of ABI 1.4.  Module prefix: tpb_.
 *
 * Options:
 *   upper: true     the body is passed on in upper case, piece by piece;
 *   tag: "X"        "<X>" is written before the first byte and "</X>" at
 *                   the end (so two instances show their nesting order);
 *   hold: true      nothing is passed on until the end, then everything
 *                   at once (a filter that buffers, bounded by 1 MiB).
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
    free(t);
}

/** Control thread: reads the options.  0, or -1 after cfg_error. */
static int tpb_create(const relais_host *host, const relais_cfg *cfg, const char *name,
                      void **inst)
{
    struct tpb_inst *t = calloc(1, sizeof(*t));
    const char *tag = NULL;

    (void)name;
    if (!t) return -1;
    t->host = host;
    if (host->cfg_bool(cfg, "upper", &t->upper) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "hold", &t->hold) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "tag", &tag) == RELAIS_CFG_INVALID) {
        tpb_destroy(t);
        return -1;
    }
    if (tag && !(t->tag = strdup(tag))) {
        tpb_destroy(t);
        return -1;
    }
    *inst = t;
    return 0;
}

/** Worker thread: nothing to do on the way in. */
static int tpb_on_request(void *inst, relais_req *req, void **ctx)
{
    (void)inst;
    (void)req;
    (void)ctx;
    return RELAIS_NEXT;
}

/** Worker thread: asks for the body (when there is one) and marks it. */
static int tpb_on_response(void *inst, relais_req *req, void **ctx)
{
    struct tpb_inst *t = inst;
    struct tpb_req *s;

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
