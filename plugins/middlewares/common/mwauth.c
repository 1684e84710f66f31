/*
 * mwauth — shared parts of the basicAuth and digestAuth middlewares (see
 * mwauth.h).  Module prefix: mwauth_.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "mwauth.h"

/** A growing list of entries while loading (before sorting). */
struct mwauth_list {
    struct mwauth_user *v; /* entries (malloc) */
    size_t n;              /* used */
    size_t cap;            /* allocated */
};

/* ---- small helpers ------------------------------------------------------ */

/** Any thread.  Frees s after clearing its n bytes; NULL is a no-op. */
static void mwauth_free_secret(char *s, size_t n)
{
    if (!s) return;
    OPENSSL_cleanse(s, n);
    free(s);
}

/** Any thread.  Copies s[0..n) into a new NUL-terminated string, or NULL. */
static char *mwauth_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/** Any thread.  1 for the characters Go's strings.TrimSpace removes that
 *  can appear in ASCII text. */
static int mwauth_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/** Any thread.  1 when c may appear in an HTTP field name (RFC 9110
 *  token). */
static int mwauth_is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

char *mwauth_printable(const char *s, size_t len, char *out, size_t cap)
{
    size_t i;

    for (i = 0; i < len && i + 1 < cap; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
    return out;
}

int mwauth_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen) return 0;
    if (alen == 0) return 1;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int mwauth_check_keys(const relais_host *host, const relais_cfg *cfg,
                      const char *const *known, size_t n)
{
    char expected[256];
    size_t i, j, len = host->cfg_len(cfg), used = 0;
    int rc = 0;

    expected[0] = '\0';
    for (j = 0; j < n; j++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s",
                         j ? ", " : "", known[j]);
        if (w < 0 || (size_t)w >= sizeof(expected) - used) break;
        used += (size_t)w;
    }
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

/* ---- the user table ----------------------------------------------------- */

/** Control thread.  Frees the entries of l and resets it. */
static void mwauth_list_release(struct mwauth_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i].key);
        if (l->v[i].secret)
            mwauth_free_secret(l->v[i].secret, strlen(l->v[i].secret));
    }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/**
 * Control thread.  Splits entry e[0..n) on ':' into exactly nparts parts and
 * appends (key, secret) to l.  0; 1 when the entry is malformed (nothing
 * appended); -1 when out of memory or past MWAUTH_USERS_MAX.
 */
static int mwauth_list_add(struct mwauth_list *l, const char *e, size_t n,
                           int nparts)
{
    size_t i, colons = 0, last = 0;
    struct mwauth_user u;

    if (n > MWAUTH_ENTRY_MAX) return 1;
    for (i = 0; i < n; i++)
        if (e[i] == ':') {
            colons++;
            last = i;
        }
    if (colons != (size_t)(nparts - 1)) return 1;
    if (l->n >= MWAUTH_USERS_MAX) return -1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        struct mwauth_user *nv;

        if (ncap > MWAUTH_USERS_MAX) ncap = MWAUTH_USERS_MAX;
        nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv) return -1;
        l->v = nv;
        l->cap = ncap;
    }
    u.key = mwauth_strndup(e, last);
    u.key_len = last;
    u.secret = mwauth_strndup(e + last + 1, n - last - 1);
    if (!u.key || !u.secret) {
        free(u.key);
        if (u.secret) mwauth_free_secret(u.secret, n - last - 1);
        return -1;
    }
    l->v[l->n++] = u;
    return 0;
}

/** Any thread.  Orders two users by key bytes. */
static int mwauth_user_cmp(const void *a, const void *b)
{
    const struct mwauth_user *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    if (c) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/**
 * Control thread.  Reads the file at path and appends its entries to l.
 * 0, or -1 after cfg_error at cfg.usersFile (reasons: unreadable, too
 * large, malformed line N, too many users).
 */
static int mwauth_read_file(const relais_host *host, const relais_cfg *cfg,
                            const char *path, int nparts,
                            struct mwauth_list *l)
{
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0, pos, lineno = 0;
    int rc = -1, e;

    f = fopen(path, "rb");
    if (!f) {
        host->cfg_error(cfg, "usersFile", "cannot open %s: %s", path,
                        strerror(errno));
        goto out;
    }
    buf = malloc(MWAUTH_FILE_MAX + 1);
    if (!buf) {
        host->cfg_error(cfg, "usersFile", "out of memory");
        goto out;
    }
    len = fread(buf, 1, MWAUTH_FILE_MAX + 1, f);
    if (ferror(f)) {
        host->cfg_error(cfg, "usersFile", "cannot read %s", path);
        goto out;
    }
    if (len > MWAUTH_FILE_MAX) {
        host->cfg_error(cfg, "usersFile", "%s is larger than %u bytes", path,
                        MWAUTH_FILE_MAX);
        goto out;
    }
    for (pos = 0; pos < len;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len, s = pos, t = end;

        lineno++;
        pos = end + 1;
        while (s < t && mwauth_is_space((unsigned char)buf[s])) s++;
        while (t > s && mwauth_is_space((unsigned char)buf[t - 1])) t--;
        if (s == t || buf[s] == '#') continue;
        e = mwauth_list_add(l, buf + s, t - s, nparts);
        if (e > 0) {
            host->cfg_error(cfg, "usersFile", "%s line %zu: expected %s", path,
                            lineno, nparts == 2 ? "name:hash"
                                                : "name:realm:HA1");
            goto out;
        }
        if (e < 0) {
            host->cfg_error(cfg, "usersFile", "out of memory or more than %u "
                            "users", MWAUTH_USERS_MAX);
            goto out;
        }
    }
    rc = 0;

out:
    if (buf) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    if (f) fclose(f);
    return rc;
}

int mwauth_users_load(const relais_host *host, const relais_cfg *cfg,
                      int nparts, struct mwauth_users *out)
{
    struct mwauth_list l = {NULL, 0, 0};
    const relais_cfg *users = host->cfg_get(cfg, "users");
    const char *path = NULL;
    size_t i, j, n;
    int t, rc = 0, e;

    out->v = NULL;
    out->n = 0;
    e = host->cfg_string(cfg, "usersFile", &path);
    if (e == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (e == RELAIS_CFG_OK && path[0] != '\0') {
        if (mwauth_read_file(host, cfg, path, nparts, &l) < 0) rc = -1;
    }
    t = host->cfg_type(users);
    if (t == RELAIS_CFG_LIST) {
        n = host->cfg_len(users);
        for (i = 0; i < n; i++) {
            const relais_cfg *item = host->cfg_at(users, i, NULL);
            const char *s = NULL;

            if (host->cfg_string(item, NULL, &s) != RELAIS_CFG_OK) {
                if (host->cfg_type(item) == RELAIS_CFG_NULL)
                    host->cfg_error(item, NULL, "expected a string");
                rc = -1;
                continue;
            }
            e = mwauth_list_add(&l, s, strlen(s), nparts);
            if (e > 0) {
                host->cfg_error(item, NULL, "expected %s",
                                nparts == 2 ? "\"name:hash\""
                                            : "\"name:realm:HA1\"");
                rc = -1;
            } else if (e < 0) {
                host->cfg_error(item, NULL, "out of memory or more than %u "
                                "users", MWAUTH_USERS_MAX);
                rc = -1;
                break;
            }
        }
    } else if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        host->cfg_error(cfg, "users", "expected a list of strings (%s)",
                        nparts == 2 ? "name:hash" : "name:realm:HA1");
        rc = -1;
    }
    if (rc) {
        mwauth_list_release(&l);
        return -1;
    }
    /* later entries win: a stable merge sort by key keeps equal keys in
     * load order, then only the last of each run is kept */
    if (l.n > 1) {
        struct mwauth_user *tmp = malloc(l.n * sizeof(*tmp));
        size_t width;

        if (!tmp) {
            mwauth_list_release(&l);
            host->cfg_error(cfg, NULL, "out of memory");
            return -1;
        }
        for (width = 1; width < l.n; width *= 2) {
            size_t lo;

            for (lo = 0; lo < l.n; lo += 2 * width) {
                size_t mid = lo + width < l.n ? lo + width : l.n;
                size_t hi = lo + 2 * width < l.n ? lo + 2 * width : l.n;
                size_t a = lo, b = mid, k = lo;

                while (a < mid && b < hi)
                    tmp[k++] = mwauth_user_cmp(&l.v[b], &l.v[a]) < 0
                                   ? l.v[b++] : l.v[a++];
                while (a < mid) tmp[k++] = l.v[a++];
                while (b < hi) tmp[k++] = l.v[b++];
            }
            memcpy(l.v, tmp, l.n * sizeof(*tmp));
        }
        free(tmp);
    }
    for (i = 0, j = 0; i < l.n; i++) {
        if (i + 1 < l.n && mwauth_user_cmp(&l.v[i], &l.v[i + 1]) == 0) {
            free(l.v[i].key);
            mwauth_free_secret(l.v[i].secret, strlen(l.v[i].secret));
            continue;
        }
        l.v[j++] = l.v[i];
    }
    out->v = l.v;
    out->n = j;
    return 0;
}

const char *mwauth_users_find(const struct mwauth_users *u, const char *key,
                              size_t len)
{
    size_t lo = 0, hi = u->n;
    struct mwauth_user probe;

    probe.key = (char *)key;
    probe.key_len = len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mwauth_user_cmp(&probe, &u->v[mid]);

        if (c == 0) return u->v[mid].secret;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

void mwauth_users_release(struct mwauth_users *u)
{
    size_t i;

    if (!u || !u->v) return;
    for (i = 0; i < u->n; i++) {
        free(u->v[i].key);
        mwauth_free_secret(u->v[i].secret, strlen(u->v[i].secret));
    }
    free(u->v);
    u->v = NULL;
    u->n = 0;
}

/* ---- options ------------------------------------------------------------ */

int mwauth_opts_load(const relais_host *host, const relais_cfg *cfg,
                     struct mwauth_opts *o)
{
    const char *s = NULL;
    int rc = 0, e;
    size_t i;

    memset(o, 0, sizeof(*o));
    e = host->cfg_string(cfg, "realm", &s);
    if (e == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (e == RELAIS_CFG_OK && s[0] != '\0') {
        for (i = 0; s[i]; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '"')
                break;
        if (s[i]) {
            host->cfg_error(cfg, "realm", "must not contain control "
                            "characters or '\"'");
            rc = -1;
        } else if (!(o->realm = strdup(s))) {
            rc = -1;
        }
    }
    if (!rc && !o->realm && !(o->realm = strdup(MWAUTH_DEFAULT_REALM)))
        rc = -1;
    e = host->cfg_string(cfg, "headerField", &s);
    if (e == RELAIS_CFG_INVALID) {
        rc = -1;
    } else if (e == RELAIS_CFG_OK && s[0] != '\0') {
        for (i = 0; s[i]; i++)
            if (!mwauth_is_tchar((unsigned char)s[i])) break;
        if (s[i]) {
            host->cfg_error(cfg, "headerField", "not a valid header name");
            rc = -1;
        } else if (!(o->header_field = strdup(s))) {
            rc = -1;
        }
    }
    if (host->cfg_bool(cfg, "removeHeader", &o->remove_header) ==
        RELAIS_CFG_INVALID)
        rc = -1;
    if (rc) mwauth_opts_release(o);
    return rc;
}

void mwauth_opts_release(struct mwauth_opts *o)
{
    if (!o) return;
    free(o->realm);
    free(o->header_field);
    o->realm = o->header_field = NULL;
}

/* ---- requests ----------------------------------------------------------- */

int mwauth_unauthorized(const relais_host *host, relais_req *req,
                        const char *www_authenticate)
{
    relais_header h[2];

    h[0].name = "Content-Type";
    h[0].value = "text/plain";
    h[1].name = "WWW-Authenticate";
    h[1].value = www_authenticate;
    if (host->respond(req, 401, h, 2, MWAUTH_UNAUTH_BODY,
                      sizeof(MWAUTH_UNAUTH_BODY) - 1) < 0)
        return RELAIS_ERROR;
    return RELAIS_DONE;
}

int mwauth_accept(const relais_host *host, relais_req *req,
                  const struct mwauth_opts *o, const char *user, size_t len)
{
    relais_hdrs *h = host->req_headers(req);

    if (!h) return RELAIS_ERROR;
    if (o->header_field && host->hdr_set(h, o->header_field, user, len) < 0)
        return RELAIS_ERROR;
    if (o->remove_header) host->hdr_del(h, "Authorization");
    return RELAIS_NEXT;
}

/* ---- base64 ------------------------------------------------------------- */

/** The standard alphabet. */
static const char mwauth_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Any thread.  Value of base64 character c, or -1. */
static int mwauth_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long mwauth_b64_decode(const char *in, size_t len, unsigned char *out,
                       size_t cap)
{
    size_t i, o = 0, pad = 0;

    if (len % 4) return -1;
    if (len >= 1 && in[len - 1] == '=') pad++;
    if (len >= 2 && in[len - 2] == '=') pad++;
    if ((len / 4) * 3 - pad > cap) return -1;
    for (i = 0; i < len; i += 4) {
        int v[4];
        size_t k, quads = 4;

        if (i + 4 == len) quads = 4 - pad;
        for (k = 0; k < 4; k++) {
            v[k] = k < quads ? mwauth_b64_val((unsigned char)in[i + k]) : 0;
            if (v[k] < 0) return -1;
        }
        {
            uint32_t w = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
                         ((uint32_t)v[2] << 6) | (uint32_t)v[3];
            out[o++] = (unsigned char)(w >> 16);
            if (quads > 2) out[o++] = (unsigned char)(w >> 8);
            if (quads > 3) out[o++] = (unsigned char)w;
        }
    }
    return (long)o;
}

long mwauth_b64_encode(const unsigned char *in, size_t len, char *out,
                       size_t cap)
{
    size_t i, o = 0, need = (len + 2) / 3 * 4 + 1;

    if (need > cap) return -1;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t w = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) |
                     in[i + 2];
        out[o++] = mwauth_b64[(w >> 18) & 63];
        out[o++] = mwauth_b64[(w >> 12) & 63];
        out[o++] = mwauth_b64[(w >> 6) & 63];
        out[o++] = mwauth_b64[w & 63];
    }
    if (i < len) {
        uint32_t w = (uint32_t)in[i] << 16;
        if (i + 1 < len) w |= (uint32_t)in[i + 1] << 8;
        out[o++] = mwauth_b64[(w >> 18) & 63];
        out[o++] = mwauth_b64[(w >> 12) & 63];
        out[o++] = i + 1 < len ? mwauth_b64[(w >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return (long)o;
}
