/*
 * replacepath — Traefik's replacePath middleware (config key
 * "replacePath").  Module prefix: rpp_.
 *
 *   http:
 *     middlewares:
 *       to-foo:
 *         replacePath:
 *           path: /foo
 *
 * The path, as the request spells it (escaped), is appended as an
 * X-Replaced-Path header, then replaced by path taken as an escaped
 * spelling (Go's URL.RawPath = path, URL.Path = its decoding): "/a%2Fb"
 * is sent as is, "/a b" is sent as "/a%20b".  An empty or absent path
 * sends "/" (Traefik does not require the option).  When path has an
 * invalid %-escape, every request is answered as Traefik does: 500 with
 * the body `invalid URL escape "%zz"` and a newline.  The query is
 * untouched.
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"

/** One configured instance; read-only after create. */
struct rpp_inst {
    const relais_host *host; /* host function table */
    char *raw;               /* path as configured (owned) */
    size_t raw_len;          /* its length */
    char *dec;               /* its decoding (owned), or NULL when invalid */
    size_t dec_len;          /* its length */
    char err[64];            /* Go's error text when dec is NULL */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void rpp_destroy(void *inst)
{
    struct rpp_inst *r = inst;

    if (!r) return;
    free(r->raw);
    free(r->dec);
    free(r);
}

/** Control thread.  Reads path (string, default "").  0, or -1 after
 *  cfg_error. */
static int rpp_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"path"};
    const char *p = "";
    struct rpp_inst *r;
    size_t bad = 0;

    if (mwp_cfg_keys(host, cfg, keys, 1) < 0) return -1;
    if (host->cfg_string(cfg, "path", &p) == RELAIS_CFG_INVALID) return -1;
    if (strlen(p) > MWP_MAX) {
        host->cfg_error(cfg, "path", "longer than %u bytes", MWP_MAX);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (!r || !(r->raw = strdup(p)) || !(r->dec = malloc(strlen(p) + 1))) {
        host->cfg_error(cfg, NULL, "out of memory");
        rpp_destroy(r);
        return -1;
    }
    r->host = host;
    r->raw_len = strlen(p);
    if (mwp_unescape(r->raw, r->raw_len, r->dec, &r->dec_len, &bad) < 0) {
        mwp_escape_error(r->raw, r->raw_len, bad, r->err, sizeof(r->err));
        free(r->dec);
        r->dec = NULL;
        host->log(RELAIS_LOG_WARN, name,
                  "path %s: %s: every request will be answered 500", p,
                  r->err);
    } else {
        r->dec[r->dec_len] = '\0';
    }
    *inst = r;
    return 0;
}

/** Worker thread.  RELAIS_NEXT; RELAIS_DONE (500 for an invalid path);
 *  RELAIS_ERROR (out of memory, path refused). */
static int rpp_on_request(void *inst, relais_req *req, void **ctx)
{
    struct rpp_inst *r = inst;
    const relais_host *host = r->host;
    struct mwp_path p;
    size_t cl = 0;
    const char *cur = host->req_path(req, &cl);

    (void)ctx;
    if (host->hdr_add(host->req_headers(req), "X-Replaced-Path",
                      cur ? cur : "", cur ? cl : 0) < 0)
        return RELAIS_ERROR;
    if (!r->dec) {
        host->log(RELAIS_LOG_ERROR, "replacePath", "%s", r->err);
        return mwp_http_error(host, req, 500, r->err);
    }
    memset(&p, 0, sizeof(p));
    p.path = r->dec;
    p.path_len = r->dec_len;
    p.raw = r->raw_len ? r->raw : NULL;
    p.raw_len = r->raw_len;
    return mwp_store(host, req, &p) < 0 ? RELAIS_ERROR : RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops rpp_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = rpp_create,
    .destroy = rpp_destroy,
    .on_request = rpp_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "replacepath",
    .version = "1.0.0",
    .config_key = "replacePath",
    .description = "replaces the request path (X-Replaced-Path)",
    .load = NULL,
    .unload = NULL,
    .ops = &rpp_ops,
};
