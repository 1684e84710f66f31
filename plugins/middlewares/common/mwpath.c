/*
 * mwpath — Go's net/url path model for the path middlewares (see
 * mwpath.h).  Module prefix: mwp_.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mwpath.h"

/** Hex digit value of c, or -1. */
static int mwp_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/** Go's shouldEscape(c, encodePath): 1 when c must be %-escaped in a
 *  path. */
static int mwp_should_escape(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 0;
    switch (c) {
    case '-': case '_': case '.': case '~':
        return 0;
    case '$': case '&': case '+': case ',': case '/': case ':': case ';':
    case '=': case '?': case '@':
        return c == '?';
    default:
        return 1;
    }
}

int mwp_unescape(const char *s, size_t n, char *out, size_t *outn,
                 size_t *bad)
{
    size_t i = 0, o = 0;

    while (i < n) {
        if (s[i] == '%') {
            int hi, lo;

            if (i + 2 >= n) {
                if (bad) *bad = i;
                return -1;
            }
            hi = mwp_hexval((unsigned char)s[i + 1]);
            lo = mwp_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                if (bad) *bad = i;
                return -1;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    *outn = o;
    return 0;
}

size_t mwp_escape(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (mwp_should_escape(c)) {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

int mwp_valid_encoded(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '!': case '$': case '&': case '\'': case '(': case ')':
        case '*': case '+': case ',': case ';': case '=': case ':':
        case '@': case '[': case ']': case '%':
            break;
        default:
            if (mwp_should_escape(c)) return 0;
        }
    }
    return 1;
}

void mwp_escape_error(const char *s, size_t n, size_t bad, char *out,
                      size_t cap)
{
    size_t o, end = bad + 3 < n ? bad + 3 : n;
    int w;

    if (cap == 0) return;
    w = snprintf(out, cap, "invalid URL escape \"");
    if (w < 0 || (size_t)w >= cap) return;
    o = (size_t)w;
    for (size_t i = bad; i < end && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        }
    }
    if (o + 2 <= cap) {
        out[o++] = '"';
        out[o] = '\0';
    } else {
        out[cap - 1] = '\0';
    }
}

/** Copy of s[0..n) NUL-terminated in request memory, or NULL. */
static char *mwp_dup(const relais_host *host, relais_req *req, const char *s,
                     size_t n)
{
    char *p = host->req_alloc(req, n + 1);

    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int mwp_load(const relais_host *host, relais_req *req, struct mwp_path *p)
{
    size_t n = 0, dn = 0, bad = 0, en;
    const char *s = host->req_path(req, &n);
    char *dec, *esc;

    memset(p, 0, sizeof(*p));
    if (!s) n = 0;
    if (n > MWP_MAX) return -1;
    dec = host->req_alloc(req, n + 1);
    if (!dec) return -1;
    if (mwp_unescape(s, n, dec, &dn, &bad) < 0) {
        p->literal = 1;
        p->path = mwp_dup(host, req, s, n);
        p->raw = mwp_dup(host, req, s, n);
        if (!p->path || !p->raw) return -1;
        p->path_len = p->raw_len = n;
        return 0;
    }
    dec[dn] = '\0';
    p->path = dec;
    p->path_len = dn;
    esc = host->req_alloc(req, 3 * dn + 1);
    if (!esc) return -1;
    en = mwp_escape(dec, dn, esc);
    if (en != n || memcmp(esc, s, n) != 0) {
        p->raw = mwp_dup(host, req, s, n);
        if (!p->raw) return -1;
        p->raw_len = n;
    }
    return 0;
}

/** Joins a + b into request memory with Go's ensureLeadingSlash when lead
 *  is set ("" stays ""); *len set.  NULL when out of memory/too long. */
static char *mwp_join(const relais_host *host, relais_req *req,
                      const char *a, size_t alen, const char *b, size_t blen,
                      int lead, size_t *len)
{
    size_t n = alen + blen, o = 0;
    int slash;
    char *s;

    if (alen > MWP_MAX || blen > MWP_MAX) return NULL;
    slash = lead && n > 0 && (alen ? a[0] : b[0]) != '/';
    s = host->req_alloc(req, n + 2);
    if (!s) return NULL;
    if (slash) s[o++] = '/';
    if (alen) memcpy(s + o, a, alen);
    o += alen;
    if (blen) memcpy(s + o, b, blen);
    o += blen;
    s[o] = '\0';
    *len = o;
    return s;
}

int mwp_set(const relais_host *host, relais_req *req, struct mwp_path *p,
            const char *a, size_t alen, const char *b, size_t blen,
            const char *ra, size_t ralen, const char *rb, size_t rblen,
            int lead)
{
    size_t pl = 0, rl = 0;
    char *np, *nr = NULL;

    np = mwp_join(host, req, a, alen, b, b ? blen : 0, lead, &pl);
    if (!np) return -1;
    if (ra) {
        nr = mwp_join(host, req, ra, ralen, rb, rb ? rblen : 0, lead, &rl);
        if (!nr) return -1;
    }
    p->path = np;
    p->path_len = pl;
    p->raw = nr;
    p->raw_len = nr ? rl : 0;
    return 0;
}

char *mwp_escaped(const relais_host *host, relais_req *req,
                  const struct mwp_path *p, size_t *len)
{
    char *out;

    if (p->literal && p->raw) {
        *len = p->raw_len;
        return p->raw;
    }
    if (p->raw && p->raw_len && mwp_valid_encoded(p->raw, p->raw_len)) {
        size_t dn = 0, bad;
        char *dec = host->req_alloc(req, p->raw_len + 1);

        if (!dec) return NULL;
        if (mwp_unescape(p->raw, p->raw_len, dec, &dn, &bad) == 0 &&
            dn == p->path_len && memcmp(dec, p->path, dn) == 0) {
            *len = p->raw_len;
            return p->raw;
        }
    }
    if (p->path_len == 1 && p->path[0] == '*') {
        *len = 1;
        return p->path;
    }
    out = host->req_alloc(req, 3 * p->path_len + 1);
    if (!out) return NULL;
    *len = mwp_escape(p->path, p->path_len, out);
    out[*len] = '\0';
    return out;
}

int mwp_store(const relais_host *host, relais_req *req,
              const struct mwp_path *p)
{
    size_t n = 0;
    char *e = mwp_escaped(host, req, p, &n);

    if (!e) return -1;
    if (n == 0) return host->req_set_path(req, "/", 1);
    return host->req_set_path(req, e, n);
}

int mwp_http_error(const relais_host *host, relais_req *req, int status,
                   const char *msg)
{
    relais_header h[2] = {
        {"Content-Type", "text/plain; charset=utf-8"},
        {"X-Content-Type-Options", "nosniff"},
    };
    size_t n = strlen(msg);
    char *body = host->req_alloc(req, n + 1);

    if (!body) return RELAIS_ERROR;
    memcpy(body, msg, n);
    body[n] = '\n';
    if (host->respond(req, status, h, 2, body, n + 1) < 0) return RELAIS_ERROR;
    return RELAIS_DONE;
}

int mwp_cfg_keys(const relais_host *host, const relais_cfg *cfg,
                 const char *const *known, size_t n)
{
    char expected[256];
    size_t i, j, len, used = 0;
    int t = host->cfg_type(cfg), rc = 0;

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, NULL, "expected a map of options");
        return -1;
    }
    expected[0] = '\0';
    for (j = 0; j < n; j++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s",
                         j ? ", " : "", known[j]);
        if (w < 0 || (size_t)w >= sizeof(expected) - used) break;
        used += (size_t)w;
    }
    len = host->cfg_len(cfg);
    for (i = 0; i < len; i++) {
        const char *key = NULL;

        if (!host->cfg_at(cfg, i, &key) || !key) continue;
        for (j = 0; j < n; j++)
            if (!strcasecmp(key, known[j])) break;
        if (j == n) {
            host->cfg_error(cfg, key, "unknown option (expected %s)",
                            expected);
            rc = -1;
        }
    }
    return rc;
}

void mwp_strings_free(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/** Appends a copy of s[0..len) to *v (cap MWP_MAX_ITEMS).  0 or -1. */
static int mwp_strings_add(char ***v, size_t *n, const char *s, size_t len)
{
    char **nv, *c;

    if (*n >= MWP_MAX_ITEMS) return -1;
    c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv) {
        free(c);
        return -1;
    }
    nv[(*n)++] = c;
    *v = nv;
    return 0;
}

int mwp_cfg_strings(const relais_host *host, const relais_cfg *cfg,
                    const char *key, char ***out, size_t *n)
{
    const relais_cfg *node = host->cfg_get(cfg, key);
    int t = host->cfg_type(node);
    char **v = NULL;
    size_t nv = 0;

    *out = NULL;
    *n = 0;
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t == RELAIS_CFG_STRING) {
        const char *s = NULL, *c;

        if (host->cfg_string(node, NULL, &s) != RELAIS_CFG_OK) return -1;
        for (;;) {
            c = strchr(s, ',');
            if (mwp_strings_add(&v, &nv, s, c ? (size_t)(c - s) : strlen(s)) < 0)
                goto fail;
            if (!c) break;
            s = c + 1;
        }
    } else if (t == RELAIS_CFG_LIST) {
        size_t len = host->cfg_len(node);

        for (size_t i = 0; i < len; i++) {
            const relais_cfg *it = host->cfg_at(node, i, NULL);
            const char *s = NULL;
            int it_t = host->cfg_type(it);

            if (it_t == RELAIS_CFG_LIST || it_t == RELAIS_CFG_MAP ||
                it_t == RELAIS_CFG_NULL) {
                host->cfg_error(it, NULL, "expected a string");
                mwp_strings_free(v, nv);
                return -1;
            }
            if (host->cfg_string(it, NULL, &s) != RELAIS_CFG_OK) {
                mwp_strings_free(v, nv);
                return -1;
            }
            if (mwp_strings_add(&v, &nv, s, strlen(s)) < 0) goto fail;
        }
    } else {
        host->cfg_error(cfg, key, "expected a list of strings");
        return -1;
    }
    *out = v;
    *n = nv;
    return 0;
fail:
    host->cfg_error(cfg, key, "more than %u items, or out of memory",
                    MWP_MAX_ITEMS);
    mwp_strings_free(v, nv);
    return -1;
}
