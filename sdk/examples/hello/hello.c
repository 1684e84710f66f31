/*
 * hello — a tiny out-of-tree relais middleware, the SDK's example.
 *
 * Config key "hello".  Options: `header` (default "X-Hello") and `value`
 * (default "world").  It sets that header on the request sent upstream and
 * on the response sent to the client:
 *
 *   http:
 *     middlewares:
 *       hi:
 *         hello:
 *           value: "there"
 *
 * Built with only the SDK headers (pkg-config --cflags relais-sdk), hidden
 * visibility, one exported symbol: the descriptor.  Module prefix: hello_.
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

/** Longest header name or value accepted. */
#define HELLO_MAX_LEN 4096

/** One configured instance (`http.middlewares.NAME.hello`). */
struct hello_inst {
    const relais_host *host; /* host function table */
    char *header;            /* header name (owned) */
    char *value;             /* header value (owned) */
    size_t value_len;        /* strlen(value) */
};

/** 1 when s is a valid header name (RFC 9110 token). */
static int hello_is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (!*s) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

/** 1 when s can be a header value (no control characters but tab). */
static int hello_is_value(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
    }
    return 1;
}

/** Control thread: frees an instance; NULL is a no-op. */
static void hello_destroy(void *inst)
{
    struct hello_inst *hi = inst;

    if (!hi) return;
    free(hi->header);
    free(hi->value);
    free(hi);
}

/**
 * Control thread.  Reads `header` and `value` (copied: cfg strings only
 * live during this call).  0, or -1 after cfg_error.
 */
static int hello_create(const relais_host *host, const relais_cfg *cfg,
                        const char *name, void **inst)
{
    const char *header = "X-Hello", *value = "world";
    struct hello_inst *hi;

    (void)name;
    if (host->cfg_string(cfg, "header", &header) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "value", &value) == RELAIS_CFG_INVALID)
        return -1;
    if (strlen(header) > HELLO_MAX_LEN || !hello_is_token(header)) {
        host->cfg_error(cfg, "header", "not a valid header name");
        return -1;
    }
    if (strlen(value) > HELLO_MAX_LEN || !hello_is_value(value)) {
        host->cfg_error(cfg, "value", "not a valid header value");
        return -1;
    }
    hi = calloc(1, sizeof(*hi));
    if (!hi || !(hi->header = strdup(header)) || !(hi->value = strdup(value))) {
        hello_destroy(hi);
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    hi->host = host;
    hi->value_len = strlen(value);
    *inst = hi;
    return 0;
}

/** Worker thread: sets the header on the request. */
static int hello_on_request(void *inst, relais_req *req, void **ctx)
{
    struct hello_inst *hi = inst;
    relais_hdrs *h = hi->host->req_headers(req);

    (void)ctx;
    if (!h || hi->host->hdr_set(h, hi->header, hi->value, hi->value_len) < 0)
        return RELAIS_ERROR;
    return RELAIS_NEXT;
}

/** Worker thread: sets the header on the response. */
static int hello_on_response(void *inst, relais_req *req, void **ctx)
{
    struct hello_inst *hi = inst;
    relais_hdrs *h = hi->host->resp_headers(req);

    (void)ctx;
    if (!h) return RELAIS_NEXT;
    if (hi->host->hdr_set(h, hi->header, hi->value, hi->value_len) < 0)
        return RELAIS_ERROR;
    return RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops hello_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = hello_create,
    .destroy = hello_destroy,
    .on_request = hello_on_request,
    .on_response = hello_on_response,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "hello",
    .version = "1.0.0",
    .config_key = "hello",
    .description = "example: sets a greeting header on requests and responses",
    .load = NULL,
    .unload = NULL,
    .ops = &hello_ops,
};
