/*
 * stripprefixregex — Traefik's stripPrefixRegex middleware (config key
 * "stripPrefixRegex").  Module prefix: spr_.
 *
 *   http:
 *     middlewares:
 *       strip-users:
 *         stripPrefixRegex:
 *           regex: ["/users/[a-z]+/", "/v[0-9]+"]
 *
 * Each expression (Go regexp syntax, spaces around it trimmed, compiled by
 * PCRE2 with Go's semantics: mwregex.h) is tried in order against the
 * decoded path, unanchored as in Go: the first expression whose leftmost
 * match is not empty and is a prefix of the path wins (a match elsewhere
 * does not count: "/b" does not strip "/a/b"; anchor with "^" to be
 * explicit).  The matched text is removed from the decoded path; from the
 * request's own escaped spelling (Go's URL.RawPath) the same number of
 * bytes is cut, as Traefik does, and when that no longer spells the path,
 * the path is sent escaped by Go's rules instead (mwpath.h).  A leading
 * "/" is added when missing, and the matched text is appended as an
 * X-Forwarded-Prefix header.  The query is untouched.
 *
 * An expression that does not compile is reported with its key path
 * (regex[i]), and the middleware is disabled.
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"
#include "mwregex.h"

/** One configured instance; read-only after create. */
struct spr_inst {
    const relais_host *host; /* host function table */
    struct mwr_re **res;     /* the compiled expressions (owned) */
    size_t nres;             /* how many */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void spr_destroy(void *inst)
{
    struct spr_inst *s = inst;

    if (!s) return;
    for (size_t i = 0; i < s->nres; i++) mwr_free(s->res[i]);
    free(s->res);
    free(s);
}

/** 1 for the bytes Go's strings.TrimSpace removes (ASCII ones). */
static int spr_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/** Control thread.  Reads regex (list of strings, default none) and
 *  compiles each.  0, or -1 after cfg_error. */
static int spr_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"regex"};
    struct spr_inst *s;
    char **pats = NULL;
    size_t n = 0;
    int rc = 0;

    (void)name;
    if (mwp_cfg_keys(host, cfg, keys, 1) < 0) return -1;
    if (mwp_cfg_strings(host, cfg, "regex", &pats, &n) < 0) return -1;
    s = calloc(1, sizeof(*s));
    if (!s || (n && !(s->res = calloc(n, sizeof(*s->res))))) {
        host->cfg_error(cfg, NULL, "out of memory");
        mwp_strings_free(pats, n);
        spr_destroy(s);
        return -1;
    }
    s->host = host;
    for (size_t i = 0; i < n; i++) {
        char *p = pats[i], err[256];
        size_t e = strlen(p);

        while (*p && spr_space(*p)) p++;
        while (e > (size_t)(p - pats[i]) && spr_space(pats[i][e - 1]))
            pats[i][--e] = '\0';
        s->res[s->nres] = mwr_compile(p, err, sizeof(err));
        if (!s->res[s->nres]) {
            const relais_cfg *list = host->cfg_get(cfg, "regex");
            const relais_cfg *it = host->cfg_type(list) == RELAIS_CFG_LIST
                                       ? host->cfg_at(list, i, NULL) : NULL;

            if (it) host->cfg_error(it, NULL, "invalid regexp: %s", err);
            else host->cfg_error(cfg, "regex", "invalid regexp: %s", err);
            rc = -1;
            continue;
        }
        s->nres++;
    }
    mwp_strings_free(pats, n);
    if (rc < 0) {
        spr_destroy(s);
        return -1;
    }
    *inst = s;
    return 0;
}

/** Worker thread.  Strips the first matching prefix.  RELAIS_NEXT, or
 *  RELAIS_ERROR (out of memory, match error, path refused). */
static int spr_on_request(void *inst, relais_req *req, void **ctx)
{
    struct spr_inst *s = inst;
    const relais_host *host = s->host;
    struct mwp_path p;
    size_t i, *ov, mlen = 0;

    (void)ctx;
    if (s->nres == 0) return RELAIS_NEXT;
    if (mwp_load(host, req, &p) < 0) return RELAIS_ERROR;
    for (i = 0; i < s->nres; i++) {
        int m;

        ov = host->req_alloc(req, sizeof(size_t) * 2 * (mwr_groups(s->res[i]) + 1));
        if (!ov) return RELAIS_ERROR;
        m = mwr_find(s->res[i], p.path, p.path_len, 0, ov);
        if (m < 0) return RELAIS_ERROR;
        /* a non-empty leftmost match whose text is a prefix of the path */
        if (m == 1 && ov[1] > ov[0] &&
            !memcmp(p.path, p.path + ov[0], ov[1] - ov[0])) {
            mlen = ov[1] - ov[0];
            break;
        }
    }
    if (i == s->nres) return RELAIS_NEXT;
    if (host->hdr_add(host->req_headers(req), "X-Forwarded-Prefix", p.path,
                      mlen) < 0)
        return RELAIS_ERROR;
    if (mwp_set(host, req, &p, NULL, 0, p.path + mlen, p.path_len - mlen,
                p.raw ? "" : NULL, 0, p.raw ? p.raw + mlen : NULL,
                p.raw ? p.raw_len - mlen : 0, 1) < 0)
        return RELAIS_ERROR;
    return mwp_store(host, req, &p) < 0 ? RELAIS_ERROR : RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops spr_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = spr_create,
    .destroy = spr_destroy,
    .on_request = spr_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "stripprefixregex",
    .version = "1.0.0",
    .config_key = "stripPrefixRegex",
    .description = "removes a prefix matched by a regexp from the request "
                   "path (X-Forwarded-Prefix)",
    .load = NULL,
    .unload = NULL,
    .ops = &spr_ops,
};
