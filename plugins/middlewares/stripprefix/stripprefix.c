/*
 * stripprefix — Traefik's stripPrefix middleware (config key
 * "stripPrefix").  Module prefix: spx_.
 *
 *   http:
 *     middlewares:
 *       strip-api:
 *         stripPrefix:
 *           prefixes: ["/api", "/v1"]
 *
 * The prefixes are tried in the order given; the first one the decoded
 * path starts with is removed (plain string comparison: "/api" also
 * strips "/apifoo" to "/foo", as in Traefik), from the decoded path and
 * from the request's own escaped spelling when it starts with it too
 * (Go's URL.Path / URL.RawPath), a leading "/" is added when the rest
 * lacks one, and the prefix (spaces around it trimmed) is added as an
 * X-Forwarded-Prefix header (appended: two stripPrefix in a chain give
 * two).  The path sent upstream is Go's URL.RequestURI() of the result
 * (mwpath.h); the query is untouched.  No prefix matches: nothing
 * changes.
 *
 * forceSlash (deprecated in Traefik v3, still read there): a warning is
 * logged; with true, the rest always starts with exactly one added "/"
 * (an empty rest becomes "/").  Since the host cannot hold an empty path,
 * the empty rest of the default mode is sent as "/" as well (see the
 * report: a following addPrefix sees "/").
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"

/** One configured instance; read-only after create. */
struct spx_inst {
    const relais_host *host; /* host function table */
    char **prefixes;         /* the prefixes in order (owned) */
    size_t *lens;            /* their lengths (owned) */
    char **trimmed;          /* each prefix without surrounding spaces
                                (owned), the X-Forwarded-Prefix value */
    size_t nprefixes;        /* how many */
    int force_slash;         /* deprecated forceSlash: true */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void spx_destroy(void *inst)
{
    struct spx_inst *s = inst;

    if (!s) return;
    mwp_strings_free(s->prefixes, s->nprefixes);
    mwp_strings_free(s->trimmed, s->nprefixes);
    free(s->lens);
    free(s);
}

/** 1 for the bytes Go's strings.TrimSpace removes (ASCII ones). */
static int spx_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/** Control thread.  Reads prefixes (list of strings, default none) and
 *  forceSlash (bool).  0, or -1 after cfg_error. */
static int spx_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"prefixes", "forceSlash"};
    struct spx_inst *s;
    int fs = 0, rc;

    if (mwp_cfg_keys(host, cfg, keys, 2) < 0) return -1;
    rc = host->cfg_bool(cfg, "forceSlash", &fs);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (rc == RELAIS_CFG_OK)
        host->log(RELAIS_LOG_WARN, name,
                  "`forceSlash` option is deprecated, please remove any "
                  "usage of this option.");
    s = calloc(1, sizeof(*s));
    if (!s) goto nomem;
    s->host = host;
    s->force_slash = fs;
    if (mwp_cfg_strings(host, cfg, "prefixes", &s->prefixes, &s->nprefixes) < 0) {
        free(s);
        return -1;
    }
    if (s->nprefixes) {
        s->lens = calloc(s->nprefixes, sizeof(*s->lens));
        s->trimmed = calloc(s->nprefixes, sizeof(*s->trimmed));
        if (!s->lens || !s->trimmed) goto nomem;
    }
    for (size_t i = 0; i < s->nprefixes; i++) {
        const char *p = s->prefixes[i];
        size_t n = strlen(p), b = 0, e = n;

        s->lens[i] = n;
        while (b < e && spx_space(p[b])) b++;
        while (e > b && spx_space(p[e - 1])) e--;
        s->trimmed[i] = strndup(p + b, e - b);
        if (!s->trimmed[i]) goto nomem;
    }
    *inst = s;
    return 0;
nomem:
    host->cfg_error(cfg, NULL, "out of memory");
    spx_destroy(s);
    return -1;
}

/** Worker thread.  Go's strings.TrimPrefix then the stripping rule of
 *  the mode; sets *out and *olen (a piece of s). */
static void spx_strip(const struct spx_inst *sp, const char *s, size_t n,
                      size_t plen, const char **out, size_t *olen)
{
    const char *r = s;
    size_t rl = n;

    if (n >= plen) {
        r = s + plen;
        rl = n - plen;
    }
    if (sp->force_slash && rl && r[0] == '/') {
        r++;
        rl--;
    }
    *out = r;
    *olen = rl;
}

/** Worker thread.  Strips the first matching prefix.  RELAIS_NEXT, or
 *  RELAIS_ERROR (out of memory, path refused). */
static int spx_on_request(void *inst, relais_req *req, void **ctx)
{
    struct spx_inst *s = inst;
    const relais_host *host = s->host;
    struct mwp_path p;
    size_t i;

    (void)ctx;
    if (s->nprefixes == 0) return RELAIS_NEXT;
    if (mwp_load(host, req, &p) < 0) return RELAIS_ERROR;
    for (i = 0; i < s->nprefixes; i++)
        if (p.path_len >= s->lens[i] &&
            !memcmp(p.path, s->prefixes[i], s->lens[i]))
            break;
    if (i == s->nprefixes) return RELAIS_NEXT;
    {
        const char *np, *nr = NULL, *slash = s->force_slash ? "/" : NULL;
        size_t npl, nrl = 0, plen = s->lens[i];
        int raw_has = p.raw && p.raw_len >= plen &&
                      !memcmp(p.raw, s->prefixes[i], plen);

        spx_strip(s, p.path, p.path_len, plen, &np, &npl);
        if (p.raw) {
            if (raw_has) {
                spx_strip(s, p.raw, p.raw_len, plen, &nr, &nrl);
            } else {
                nr = p.raw;
                nrl = p.raw_len;
                if (s->force_slash && nrl && nr[0] == '/') {
                    nr++;
                    nrl--;
                }
            }
        }
        if (mwp_set(host, req, &p, slash, slash ? 1 : 0, np, npl,
                    p.raw ? (slash ? slash : "") : NULL, slash ? 1 : 0, nr,
                    nrl, 1) < 0)
            return RELAIS_ERROR;
    }
    if (host->hdr_add(host->req_headers(req), "X-Forwarded-Prefix",
                      s->trimmed[i], strlen(s->trimmed[i])) < 0)
        return RELAIS_ERROR;
    return mwp_store(host, req, &p) < 0 ? RELAIS_ERROR : RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops spx_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = spx_create,
    .destroy = spx_destroy,
    .on_request = spx_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "stripprefix",
    .version = "1.0.0",
    .config_key = "stripPrefix",
    .description = "removes a prefix from the request path "
                   "(X-Forwarded-Prefix)",
    .load = NULL,
    .unload = NULL,
    .ops = &spx_ops,
};
