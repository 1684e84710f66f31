/*
 * redirectregex — Traefik's redirectRegex middleware (config key
 * "redirectRegex").  Module prefix: rdr_.
 *
 *   http:
 *     middlewares:
 *       old-to-new:
 *         redirectRegex:
 *           regex: "^http://localhost/(.*)"
 *           replacement: "http://mydomain/${1}"
 *           permanent: true
 *
 * The request's URL is written as Traefik's rawURL does: "https" on a TLS
 * connection else "http", "://", the authority as the client sent it
 * (with its port), the path as it stands (escaped) and "?query" when
 * there is one.  regex (Go regexp syntax, unanchored, required) is
 * matched against it; on a match, Go's ReplaceAllString(url, replacement)
 * ($1, ${1}, $name, $$) is the new URL, and when it differs the client is
 * redirected: 302 (GET) / 307 (other methods), 301 / 308 with permanent
 * (mwredirect.h).  A new URL that Go's url.Parse refuses is answered 500.
 * No match, or the same URL: the request goes on unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"
#include "mwredirect.h"
#include "mwregex.h"

/** One configured instance; read-only after create. */
struct rdr_inst {
    const relais_host *host; /* host function table */
    struct mwr_re *re;       /* the expression (owned) */
    char *replacement;       /* the template (owned) */
    int permanent;           /* 301/308 instead of 302/307 */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void rdr_destroy(void *inst)
{
    struct rdr_inst *r = inst;

    if (!r) return;
    mwr_free(r->re);
    free(r->replacement);
    free(r);
}

/** Control thread.  Reads regex and replacement (required strings) and
 *  permanent.  0, or -1 after cfg_error. */
static int rdr_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"regex", "replacement", "permanent"};
    const char *rx = NULL, *rp = NULL;
    struct rdr_inst *r;
    char err[256];
    int rc1, rc2, perm = 0;

    (void)name;
    if (mwp_cfg_keys(host, cfg, keys, 3) < 0) return -1;
    rc1 = host->cfg_string(cfg, "regex", &rx);
    rc2 = host->cfg_string(cfg, "replacement", &rp);
    if (rc1 == RELAIS_CFG_INVALID || rc2 == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "permanent", &perm) == RELAIS_CFG_INVALID)
        return -1;
    if (rc1 == RELAIS_CFG_MISSING) host->cfg_error(cfg, "regex", "required");
    if (rc2 == RELAIS_CFG_MISSING)
        host->cfg_error(cfg, "replacement", "required");
    if (rc1 == RELAIS_CFG_MISSING || rc2 == RELAIS_CFG_MISSING) return -1;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->replacement = strdup(rp))) {
        host->cfg_error(cfg, NULL, "out of memory");
        rdr_destroy(r);
        return -1;
    }
    r->re = mwr_compile(rx, err, sizeof(err));
    if (!r->re) {
        host->cfg_error(cfg, "regex", "invalid regexp: %s", err);
        rdr_destroy(r);
        return -1;
    }
    r->host = host;
    r->permanent = perm;
    *inst = r;
    return 0;
}

/** Worker thread.  RELAIS_NEXT, RELAIS_DONE (redirected or 500),
 *  RELAIS_ERROR. */
static int rdr_on_request(void *inst, relais_req *req, void **ctx)
{
    struct rdr_inst *r = inst;
    struct mwr_buf url = {0};
    int v;

    (void)ctx;
    if (mwrd_url_raw(r->host, req, &url) < 0) {
        mwr_buf_release(&url);
        return RELAIS_ERROR;
    }
    v = mwrd_redirect(r->host, req, r->re, r->replacement, r->permanent,
                      url.p, url.len);
    mwr_buf_release(&url);
    return v;
}

/** The operations table. */
static const relais_middleware_ops rdr_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = rdr_create,
    .destroy = rdr_destroy,
    .on_request = rdr_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "redirectregex",
    .version = "1.0.0",
    .config_key = "redirectRegex",
    .description = "redirects the client to a URL rewritten by a regexp",
    .load = NULL,
    .unload = NULL,
    .ops = &rdr_ops,
};
