/*
 * mwregex — Go regexp semantics on PCRE2 (see mwregex.h).  Module prefix:
 * mwr_.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "mwregex.h"

/** Cap on capture groups handled (Go's own limit is 1000). */
#define MWR_MAX_GROUPS 1000u

/** A compiled expression. */
struct mwr_re {
    pcre2_code *code; /* the compiled pattern (JIT-compiled when possible) */
    size_t groups;    /* number of capture groups */
};

void mwr_buf_add(struct mwr_buf *b, const char *s, size_t n)
{
    size_t want;

    if (b->failed) return;
    if (n > MWR_MAX || b->len > MWR_MAX - n) {
        b->failed = 1;
        return;
    }
    want = b->len + n + 1;
    if (want > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        char *np;

        while (ncap < want) ncap *= 2;
        np = realloc(b->p, ncap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void mwr_buf_release(struct mwr_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}

struct mwr_re *mwr_compile(const char *pattern, char *err, size_t errcap)
{
    int ec = 0;
    PCRE2_SIZE eo = 0;
    uint32_t cap = 0;
    struct mwr_re *re;
    pcre2_code *code;

    code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                             PCRE2_DOLLAR_ENDONLY,
                         &ec, &eo, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];

        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            strcpy((char *)msg, "invalid pattern");
        if (errcap)
            snprintf(err, errcap, "%s at offset %zu", (char *)msg,
                     (size_t)eo);
        return NULL;
    }
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &cap);
    if (cap > MWR_MAX_GROUPS) {
        pcre2_code_free(code);
        if (errcap)
            snprintf(err, errcap, "more than %u capture groups",
                     MWR_MAX_GROUPS);
        return NULL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* optional */
    re = calloc(1, sizeof(*re));
    if (!re) {
        pcre2_code_free(code);
        if (errcap) snprintf(err, errcap, "out of memory");
        return NULL;
    }
    re->code = code;
    re->groups = cap;
    return re;
}

void mwr_free(struct mwr_re *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

size_t mwr_groups(const struct mwr_re *re)
{
    return re->groups;
}

int mwr_find(const struct mwr_re *re, const char *s, size_t n, size_t start,
             size_t *ov)
{
    pcre2_match_data *md;
    PCRE2_SIZE *v;
    int rc;

    if (start > n) return 0;
    md = pcre2_match_data_create((uint32_t)re->groups + 1, NULL);
    if (!md) return -1;
    rc = pcre2_match(re->code, (PCRE2_SPTR)(s ? s : ""), n, start, 0, md,
                     NULL);
    if (rc == PCRE2_ERROR_NOMATCH) {
        pcre2_match_data_free(md);
        return 0;
    }
    if (rc < 0) {
        pcre2_match_data_free(md);
        return -1;
    }
    v = pcre2_get_ovector_pointer(md);
    for (size_t i = 0; i < 2 * (re->groups + 1); i++)
        ov[i] = (i < 2 * (size_t)rc && v[i] != PCRE2_UNSET) ? (size_t)v[i]
                                                            : (size_t)-1;
    pcre2_match_data_free(md);
    return 1;
}

int mwr_match(const struct mwr_re *re, const char *s, size_t n)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc;

    if (!md) return -1;
    rc = pcre2_match(re->code, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return rc < 0 ? -1 : 1;
}

/** 1 when byte c may be part of a $name (Go: a letter, a digit or '_';
 *  any non-ASCII byte is taken as part of a letter). */
static int mwr_name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/** Appends group g of the match (when it took part) to out. */
static void mwr_add_group(struct mwr_buf *out, const char *s,
                          const size_t *ov, size_t g)
{
    if (ov[2 * g] != (size_t)-1)
        mwr_buf_add(out, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
}

/** Go's Regexp.expand: appends tmpl with $ references replaced by the
 *  groups of the match ov over s. */
static void mwr_expand(const struct mwr_re *re, const char *s,
                       const size_t *ov, const char *tmpl,
                       struct mwr_buf *out)
{
    const char *t = tmpl;

    for (;;) {
        const char *d = strchr(t, '$'), *nm;
        size_t i = 0, nlen;
        int brace = 0;
        long num;

        if (!d) break;
        mwr_buf_add(out, t, (size_t)(d - t));
        t = d + 1;
        if (*t == '$') { /* $$ is $ */
            mwr_buf_add(out, "$", 1);
            t++;
            continue;
        }
        nm = t;
        if (*nm == '{') {
            brace = 1;
            nm++;
        }
        while (nm[i] && mwr_name_byte((unsigned char)nm[i])) i++;
        nlen = i;
        if (nlen == 0 || (brace && nm[i] != '}')) { /* malformed: keep $ */
            mwr_buf_add(out, "$", 1);
            continue;
        }
        t = nm + nlen + (brace ? 1 : 0);
        num = 0;
        for (i = 0; i < nlen; i++) {
            if (nm[i] < '0' || nm[i] > '9' || num >= 100000000L) {
                num = -1;
                break;
            }
            num = num * 10 + (nm[i] - '0');
        }
        if (nm[0] == '0' && nlen > 1) num = -1;
        if (num >= 0) {
            if ((size_t)num <= re->groups) mwr_add_group(out, s, ov, (size_t)num);
        } else if (nlen < 128) {
            char name[128];
            int g;

            memcpy(name, nm, nlen);
            name[nlen] = '\0';
            g = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)name);
            if (g > 0 && (size_t)g <= re->groups)
                mwr_add_group(out, s, ov, (size_t)g);
        }
    }
    mwr_buf_add(out, t, strlen(t));
}

/** Length of the UTF-8 sequence at s[0..n) (1 for an invalid byte, 0 at
 *  the end), as Go's utf8.DecodeRuneInString advances. */
static size_t mwr_rune_width(const unsigned char *s, size_t n)
{
    size_t w, i;

    if (n == 0) return 0;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) w = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) w = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) w = 4;
    else return 1;
    if (w > n) return 1;
    for (i = 1; i < w; i++)
        if ((s[i] & 0xc0) != 0x80) return 1;
    if (w == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f)))
        return 1;
    if (w == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f)))
        return 1;
    return w;
}

int mwr_replace_all(const struct mwr_re *re, const char *s, size_t n,
                    const char *tmpl, struct mwr_buf *out)
{
    size_t last = 0, pos = 0, *ov;
    int rc = 0;

    ov = malloc(sizeof(size_t) * 2 * (re->groups + 1));
    if (!ov) {
        out->failed = 1;
        return -1;
    }
    while (pos <= n) {
        size_t w;
        int m = mwr_find(re, s, n, pos, ov);

        if (m < 0) {
            rc = -1;
            break;
        }
        if (m == 0) break;
        mwr_buf_add(out, s + last, ov[0] - last);
        /* no replacement for an empty match right after a match */
        if (ov[1] > last || ov[0] == 0) mwr_expand(re, s, ov, tmpl, out);
        last = ov[1];
        w = mwr_rune_width((const unsigned char *)s + pos, n - pos);
        if (pos + w > ov[1]) pos += w;
        else if (pos + 1 > ov[1]) pos++;
        else pos = ov[1];
    }
    if (rc == 0) mwr_buf_add(out, s + last, n - last);
    free(ov);
    return rc == 0 && !out->failed ? 0 : -1;
}
