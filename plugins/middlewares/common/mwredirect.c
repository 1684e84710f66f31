/*
 * mwredirect — Traefik's redirection engine (see mwredirect.h).  Module
 * prefix: mwrd_.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mwpath.h"
#include "mwredirect.h"

/** Appends the NUL-terminated s to b. */
static void mwrd_str(struct mwr_buf *b, const char *s)
{
    mwr_buf_add(b, s, strlen(s));
}

/** Appends the request's path and "?query" (when there is a query). */
static void mwrd_uri(const relais_host *host, relais_req *req,
                     struct mwr_buf *b)
{
    size_t pl = 0, ql = 0;
    const char *p = host->req_path(req, &pl);
    const char *q = host->req_query(req, &ql);

    mwr_buf_add(b, p ? p : "/", p ? pl : 1);
    if (q) {
        mwr_buf_add(b, "?", 1);
        mwr_buf_add(b, q, ql);
    }
}

int mwrd_url_raw(const relais_host *host, relais_req *req, struct mwr_buf *b)
{
    size_t al = 0;
    const char *a = host->req_authority(req, &al);

    mwrd_str(b, host->req_is_tls(req) ? "https://" : "http://");
    if (a) mwr_buf_add(b, a, al);
    mwrd_uri(host, req, b);
    return b->failed ? -1 : 0;
}

/**
 * Go's net.SplitHostPort over a[0..n): 0 with host and port set (brackets
 * of an IPv6 literal removed), or -1 (missing port, too many colons,
 * misplaced brackets).
 */
static int mwrd_split_host_port(const char *a, size_t n, const char **h,
                                size_t *hl, const char **p, size_t *pl)
{
    const char *c;

    if (n == 0) return -1;
    if (a[0] == '[') {
        const char *e = memchr(a, ']', n);

        if (!e) return -1;
        if ((size_t)(e - a) + 1 >= n || e[1] != ':') return -1;
        if (memchr(a + 1, '[', (size_t)(e - a) - 1)) return -1;
        if (memchr(e + 1, '[', n - (size_t)(e + 1 - a)) ||
            memchr(e + 1, ']', n - (size_t)(e + 1 - a)))
            return -1;
        *h = a + 1;
        *hl = (size_t)(e - a) - 1;
        *p = e + 2;
        *pl = n - (size_t)(e + 2 - a);
        return 0;
    }
    c = NULL;
    for (size_t i = n; i > 0; i--)
        if (a[i - 1] == ':') {
            c = a + i - 1;
            break;
        }
    if (!c) return -1;
    if (memchr(a, ':', (size_t)(c - a))) return -1;
    if (memchr(a, '[', n) || memchr(a, ']', n)) return -1;
    *h = a;
    *hl = (size_t)(c - a);
    *p = c + 1;
    *pl = n - (size_t)(c + 1 - a);
    return 0;
}

int mwrd_url_client(const relais_host *host, relais_req *req,
                    struct mwr_buf *b)
{
    size_t al = 0, hl = 0, pl = 0, xl = 0;
    const char *a = host->req_authority(req, &al), *h, *p = NULL, *x;
    const char *scheme = host->req_is_tls(req) ? "https" : "http";
    int bracket = 0, has_port = 0;

    if (!a) al = 0;
    if (a && mwrd_split_host_port(a, al, &h, &hl, &p, &pl) == 0) {
        has_port = 1;
        bracket = memchr(h, ':', hl) != NULL;
    } else {
        h = a ? a : "";
        hl = al;
    }
    x = host->hdr_get(host->req_headers(req), "X-Forwarded-Proto", 0, &xl);
    if (x && xl) {
        if ((xl == 4 && !strncasecmp(x, "http", 4)) ||
            (xl == 2 && !strncasecmp(x, "ws", 2)))
            scheme = "http";
        else if ((xl == 5 && !strncasecmp(x, "https", 5)) ||
                 (xl == 3 && !strncasecmp(x, "wss", 3)))
            scheme = "https";
    }
    if (has_port && ((!strcmp(scheme, "http") && pl == 2 && !memcmp(p, "80", 2)) ||
                     (!strcmp(scheme, "https") && pl == 3 && !memcmp(p, "443", 3))))
        has_port = 0;
    mwrd_str(b, scheme);
    mwrd_str(b, "://");
    if (bracket) mwr_buf_add(b, "[", 1);
    mwr_buf_add(b, h, hl);
    if (bracket) mwr_buf_add(b, "]", 1);
    if (has_port) {
        mwr_buf_add(b, ":", 1);
        mwr_buf_add(b, p, pl);
    }
    mwrd_uri(host, req, b);
    return b->failed ? -1 : 0;
}

/** 1 when s[0..n) has only valid %-escapes. */
static int mwrd_escapes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') continue;
        if (i + 2 >= n) return 0;
        if (!strchr("0123456789abcdefABCDEF", s[i + 1]) || !s[i + 1] ||
            !strchr("0123456789abcdefABCDEF", s[i + 2]) || !s[i + 2])
            return 0;
        i += 2;
    }
    return 1;
}

/** Go's validOptionalPort: "" or ":" followed by digits only. */
static int mwrd_port_ok(const char *s, size_t n)
{
    if (n == 0) return 1;
    if (s[0] != ':') return 0;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int mwrd_location(const char *u, size_t n, struct mwr_buf *out)
{
    const char *hash, *q, *rest = u, *end, *auth = NULL, *path;
    size_t schemelen = 0, authlen = 0, pathlen;
    int has_scheme = 0;

    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f) return -1;
    hash = memchr(u, '#', n);
    end = hash ? hash : u + n;
    if (hash && !mwrd_escapes_ok(hash + 1, (size_t)(u + n - hash - 1)))
        return -1;
    /* scheme */
    for (const char *c = u; c < end; c++) {
        unsigned char ch = (unsigned char)*c;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) continue;
        if ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.') {
            if (c == u) break;
            continue;
        }
        if (ch == ':') {
            if (c == u) return -1; /* missing protocol scheme */
            has_scheme = 1;
            schemelen = (size_t)(c - u);
            rest = c + 1;
        }
        break;
    }
    if (rest > end) rest = end;
    q = memchr(rest, '?', (size_t)(end - rest));
    path = rest;
    pathlen = (size_t)((q ? q : end) - rest);
    if (has_scheme) {
        for (size_t i = 0; i < schemelen; i++) {
            char ch = u[i];
            if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
            mwr_buf_add(out, &ch, 1);
        }
        mwr_buf_add(out, ":", 1);
    }
    if (pathlen == 0 || path[0] != '/') {
        if (has_scheme) { /* opaque: kept as is */
            mwr_buf_add(out, rest, (size_t)(u + n - rest));
            return out->failed ? -2 : 0;
        }
        {
            const char *sl = memchr(path, '/', pathlen);
            if (memchr(path, ':', sl ? (size_t)(sl - path) : pathlen))
                return -1; /* colon in the first segment */
        }
    }
    if (pathlen >= 2 && path[0] == '/' && path[1] == '/' &&
        (has_scheme || pathlen < 3 || path[2] != '/')) {
        const char *sl, *at = NULL, *hp;
        size_t hlen;

        auth = path + 2;
        sl = memchr(auth, '/', pathlen - 2);
        authlen = sl ? (size_t)(sl - auth) : pathlen - 2;
        for (size_t i = authlen; i > 0; i--)
            if (auth[i - 1] == '@') {
                at = auth + i - 1;
                break;
            }
        hp = at ? at + 1 : auth;
        hlen = authlen - (size_t)(hp - auth);
        if (hlen && hp[0] == '[') {
            const char *rb = NULL;
            for (size_t i = hlen; i > 0; i--)
                if (hp[i - 1] == ']') {
                    rb = hp + i - 1;
                    break;
                }
            if (!rb) return -1;
            if (!mwrd_port_ok(rb + 1, hlen - (size_t)(rb + 1 - hp))) return -1;
        } else {
            for (size_t i = hlen; i > 0; i--)
                if (hp[i - 1] == ':') {
                    if (!mwrd_port_ok(hp + i - 1, hlen - (i - 1))) return -1;
                    break;
                }
        }
        if (!mwrd_escapes_ok(hp, hlen)) return -1;
        path = auth + authlen;
        pathlen -= authlen + 2;
    }
    if (!mwrd_escapes_ok(path, pathlen)) return -1;
    if (auth && (authlen || pathlen)) mwr_buf_add(out, "//", 2);
    if (auth) mwr_buf_add(out, auth, authlen);
    /* the path as Go's EscapedPath writes it */
    if (pathlen) {
        char *dec = malloc(pathlen + 1), *esc = malloc(3 * pathlen + 1);
        size_t dn = 0, en, bad;

        if (!dec || !esc) {
            free(dec);
            free(esc);
            return -2;
        }
        if (mwp_unescape(path, pathlen, dec, &dn, &bad) == 0) {
            en = mwp_escape(dec, dn, esc);
            if ((en == pathlen && !memcmp(esc, path, en)) ||
                mwp_valid_encoded(path, pathlen))
                mwr_buf_add(out, path, pathlen);
            else
                mwr_buf_add(out, esc, en);
        }
        free(dec);
        free(esc);
    }
    if (q) mwr_buf_add(out, q, (size_t)(end - q));
    if (hash && hash + 1 < u + n) mwr_buf_add(out, hash, (size_t)(u + n - hash));
    return out->failed ? -2 : 0;
}

/** Go's http.StatusText for the redirection statuses. */
static const char *mwrd_status_text(int status)
{
    switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    default: return "Permanent Redirect";
    }
}

int mwrd_redirect(const relais_host *host, relais_req *req,
                  const struct mwr_re *re, const char *replacement,
                  int permanent, const char *old_url, size_t old_len)
{
    struct mwr_buf nu = {0}, loc = {0};
    size_t ml = 0;
    const char *m = host->req_method(req, &ml), *text;
    int is_get = m && ml == 3 && !memcmp(m, "GET", 3), status, rc, v;
    relais_header h[2];

    rc = mwr_match(re, old_url, old_len);
    if (rc <= 0) return rc == 0 ? RELAIS_NEXT : RELAIS_ERROR;
    if (mwr_replace_all(re, old_url, old_len, replacement, &nu) < 0) {
        v = RELAIS_ERROR;
        goto out;
    }
    rc = mwrd_location(nu.p ? nu.p : "", nu.len, &loc);
    if (rc == -2) {
        v = RELAIS_ERROR;
        goto out;
    }
    if (rc < 0) {
        h[0].name = "Content-Type";
        h[0].value = "text/plain; charset=utf-8";
        v = host->respond(req, 500, h, 1, "Internal Server Error", 21) < 0
                ? RELAIS_ERROR : RELAIS_DONE;
        goto out;
    }
    if (nu.len == old_len && (old_len == 0 || !memcmp(nu.p, old_url, old_len))) {
        v = RELAIS_NEXT;
        goto out;
    }
    status = permanent ? (is_get ? 301 : 308) : (is_get ? 302 : 307);
    text = mwrd_status_text(status);
    h[0].name = "Location";
    h[0].value = loc.p ? loc.p : "";
    h[1].name = "Content-Type";
    h[1].value = "text/plain; charset=utf-8";
    v = host->respond(req, status, h, 2, text, strlen(text)) < 0 ? RELAIS_ERROR
                                                                 : RELAIS_DONE;
out:
    mwr_buf_release(&nu);
    mwr_buf_release(&loc);
    return v;
}
