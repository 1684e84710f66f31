/*
 * replacepathregex — Traefik's replacePathRegex middleware (config key
 * "replacePathRegex").  Module prefix: rpr_.
 *
 *   http:
 *     middlewares:
 *       foo-to-bar:
 *         replacePathRegex:
 *           regex: "^/foo/(.*)"
 *           replacement: "/bar/$1"
 *
 * regex (Go regexp syntax, required, spaces around it trimmed; PCRE2 with
 * Go's semantics: mwregex.h) is matched, unanchored, against the path as
 * the request spells it (escaped).  On a match the path is appended as an
 * X-Replaced-Path header and replaced by Go's ReplaceAllString(path,
 * replacement) (every match replaced; $1, ${1}, $name, ${name}, $$), taken
 * as an escaped spelling: the result is decoded to check it, and an
 * invalid %-escape answers 500 `invalid URL escape "%zz"` as in Traefik.
 * An empty replacement (spaces trimmed) disables the middleware, as in
 * Traefik.  The query is untouched.
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"
#include "mwregex.h"

/** One configured instance; read-only after create. */
struct rpr_inst {
    const relais_host *host; /* host function table */
    struct mwr_re *re;       /* the expression (owned) */
    char *replacement;       /* the template, trimmed (owned) */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void rpr_destroy(void *inst)
{
    struct rpr_inst *r = inst;

    if (!r) return;
    mwr_free(r->re);
    free(r->replacement);
    free(r);
}

/** 1 for the bytes Go's strings.TrimSpace removes (ASCII ones). */
static int rpr_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/** Copy of s without surrounding spaces (malloc), or NULL. */
static char *rpr_trim(const char *s)
{
    size_t e = strlen(s);

    while (*s && rpr_space(*s)) { s++; e--; }
    while (e > 0 && rpr_space(s[e - 1])) e--;
    return strndup(s, e);
}

/** Control thread.  Reads regex (required) and replacement (default "").
 *  0, or -1 after cfg_error. */
static int rpr_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"regex", "replacement"};
    const char *rx = NULL, *rp = "";
    struct rpr_inst *r;
    char err[256], *trx;
    int rc;

    (void)name;
    if (mwp_cfg_keys(host, cfg, keys, 2) < 0) return -1;
    rc = host->cfg_string(cfg, "regex", &rx);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (rc == RELAIS_CFG_MISSING) {
        host->cfg_error(cfg, "regex", "required");
        return -1;
    }
    if (host->cfg_string(cfg, "replacement", &rp) == RELAIS_CFG_INVALID)
        return -1;
    r = calloc(1, sizeof(*r));
    trx = rpr_trim(rx);
    if (!r || !trx || !(r->replacement = rpr_trim(rp))) {
        host->cfg_error(cfg, NULL, "out of memory");
        free(trx);
        rpr_destroy(r);
        return -1;
    }
    r->host = host;
    r->re = mwr_compile(trx, err, sizeof(err));
    free(trx);
    if (!r->re) {
        host->cfg_error(cfg, "regex", "error compiling regular expression "
                        "%s: %s", rx, err);
        rpr_destroy(r);
        return -1;
    }
    *inst = r;
    return 0;
}

/** Worker thread.  RELAIS_NEXT; RELAIS_DONE (500 for a replaced path with
 *  a bad escape); RELAIS_ERROR (out of memory, path refused). */
static int rpr_on_request(void *inst, relais_req *req, void **ctx)
{
    struct rpr_inst *r = inst;
    const relais_host *host = r->host;
    struct mwr_buf out = {0};
    struct mwp_path p;
    size_t cl = 0, bad = 0;
    const char *cur = host->req_path(req, &cl);
    int m, v = RELAIS_NEXT;

    (void)ctx;
    if (!r->replacement[0] || !cur) return RELAIS_NEXT;
    m = mwr_match(r->re, cur, cl);
    if (m <= 0) return m == 0 ? RELAIS_NEXT : RELAIS_ERROR;
    if (host->hdr_add(host->req_headers(req), "X-Replaced-Path", cur, cl) < 0)
        return RELAIS_ERROR;
    if (mwr_replace_all(r->re, cur, cl, r->replacement, &out) < 0) {
        v = RELAIS_ERROR;
        goto done;
    }
    memset(&p, 0, sizeof(p));
    p.raw = out.p;
    p.raw_len = out.len;
    p.path = host->req_alloc(req, out.len + 1);
    if (!p.path) {
        v = RELAIS_ERROR;
        goto done;
    }
    if (mwp_unescape(out.p ? out.p : "", out.len, p.path, &p.path_len,
                     &bad) < 0) {
        char msg[64];

        mwp_escape_error(out.p, out.len, bad, msg, sizeof(msg));
        host->log(RELAIS_LOG_ERROR, "replacePathRegex", "%s", msg);
        v = mwp_http_error(host, req, 500, msg);
        goto done;
    }
    if (p.raw_len == 0) p.raw = NULL;
    if (mwp_store(host, req, &p) < 0) v = RELAIS_ERROR;
done:
    mwr_buf_release(&out);
    return v;
}

/** The operations table. */
static const relais_middleware_ops rpr_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = rpr_create,
    .destroy = rpr_destroy,
    .on_request = rpr_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "replacepathregex",
    .version = "1.0.0",
    .config_key = "replacePathRegex",
    .description = "rewrites the request path with a regexp "
                   "(X-Replaced-Path)",
    .load = NULL,
    .unload = NULL,
    .ops = &rpr_ops,
};
