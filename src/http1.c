/*
 * http1 — see http1.h.
 *
 * One pass over the buffer, no allocation, no copy.  Every byte is
 * classified through one static table (h1_cls); the scanning loops are
 * "advance while the class bit is set", then one decision on the byte that
 * stopped the loop.
 *
 * Early errors: the parser validates whatever bytes are present.  It
 * returns 0 ("need more") only when every byte it saw is a valid prefix of
 * a head; an invalid byte, a bad complete line or a semantic error on a
 * complete header line is reported at once, without waiting for the end of
 * the head.  The parse is stateless: a caller that got 0 calls again from
 * the start of the head with more bytes.  It never reads past
 * min(len, max_head): a head that is not complete within max_head bytes is
 * 431.
 *
 * Choices (strict, so that relais and the server behind it can never frame
 * a message differently):
 *  - only CRLF ends a line; a bare CR or LF anywhere in the head is 400;
 *  - obs-fold and whitespace between a field name and ':' are 400;
 *  - only the methods llhttp knows for HTTP/x.y are accepted (PRI, the
 *    HTTP/2 preface, is not: the caller detects h2 before h1 parsing);
 *  - Transfer-Encoding in a request: exactly one "chunked", last, is the
 *    only accepted framing.  A coding after "chunked", "chunked" twice, or
 *    an element that contains "chunked" without being exactly that token
 *    ("xchunked", "chunked;x", "\"chunked\"") is 400: another parser could
 *    take it for chunked.  Any other coding (gzip, deflate, compress,
 *    identity, unknown tokens, an empty header) is 501: nothing relais
 *    could forward safely, but not ambiguous;
 *  - Transfer-Encoding in a response: "chunked" last means chunked;
 *    otherwise the body is delimited by the close (RFC 9112 6.3) and only
 *    H1_F_TE is set; "chunked" twice is 400.  In both directions
 *    Transfer-Encoding with Content-Length, or in an HTTP/1.0 message, is
 *    400 (RFC 9112 6.1: faulty framing);
 *  - Content-Length: 1*DIGIT, or a list of identical such values; all
 *    Content-Length lines must agree; > INT64_MAX is 400.
 */
#include "config.h"

#include <string.h>

#include "http1.h"

/* Character classes (bits of h1_cls). */
#define T 0x01 /* tchar (RFC 9110 5.6.2) */
#define V 0x02 /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define W 0x04 /* whitespace: SP, HTAB */
#define U 0x08 /* request-target byte: 0x21..0x7e */
#define D 0x10 /* DIGIT */
#define X 0x20 /* HEXDIG (either case) */
#define Q 0x40 /* qdtext: HTAB, SP, 0x21, 0x23-0x5b, 0x5d-0x7e, obs-text */

/* One class byte per octet (generated from the RFC 9110 ABNF). */
static const uint8_t h1_cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, V|W|Q, 0, 0, 0, 0, 0, 0, /* 0x08 */
    0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, /* 0x18 */
    V|W|Q, T|V|U|Q, V|U, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x20 */
    V|U|Q, V|U|Q, T|V|U|Q, T|V|U|Q, V|U|Q, T|V|U|Q, T|V|U|Q, V|U|Q, /* 0x28 */
    T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, T|V|U|D|X|Q, /* 0x30 */
    T|V|U|D|X|Q, T|V|U|D|X|Q, V|U|Q, V|U|Q, V|U|Q, V|U|Q, V|U|Q, V|U|Q, /* 0x38 */
    V|U|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|Q, /* 0x40 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x48 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x50 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, V|U|Q, V|U, V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x58 */
    T|V|U|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|X|Q, T|V|U|Q, /* 0x60 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x68 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, T|V|U|Q, /* 0x70 */
    T|V|U|Q, T|V|U|Q, T|V|U|Q, V|U|Q, T|V|U|Q, V|U|Q, T|V|U|Q, 0, /* 0x78 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0x80 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0x88 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0x90 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0x98 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xa0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xa8 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xb0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xb8 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xc0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xc8 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xd0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xd8 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xe0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xe8 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xf0 */
    V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, V|Q, /* 0xf8 */
};

#undef T
#undef V
#undef W
#undef U
#undef D
#undef X
#undef Q

#define C_TCHAR 0x01u
#define C_FVAL 0x02u
#define C_WS 0x04u
#define C_URI 0x08u
#define C_DIGIT 0x10u
#define C_HEX 0x20u
#define C_QDTEXT 0x40u

/**
 * Skips field-value bytes (class V) from p, eight at a time while a whole
 * word holds none below 0x20 and no 0x7f (every other octet is V, see the
 * table), then one at a time.  Returns the first index in [p, end) whose
 * byte is not V, or end.  The word test ("some byte < n" of the bit hacks
 * collections) is exact for "any", so no byte is ever misjudged: a word
 * holding a stop byte or an HTAB goes to the byte loop.
 */
static size_t h1_skip_fval(const unsigned char *b, size_t p, size_t end)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;

    while (end - p >= 8) {
        uint64_t w, del;
        memcpy(&w, b + p, 8);
        del = w ^ (ones * 0x7f);
        if ((((w - ones * 0x20) & ~w) | ((del - ones) & ~del)) & high) break;
        p += 8;
    }
    while (p < end && (h1_cls[b[p]] & C_FVAL)) p++;
    return p;
}

/* "need more bytes" from the internal steps (h1_parse_* return value 0) */
#define H1_MORE 0
/* longest known method ("UNSUBSCRIBE") */
#define H1_METHOD_MAX 11

/** Transfer-Encoding facts gathered over the head's TE lines. */
struct h1_te {
    int seen;         /* a Transfer-Encoding line was seen */
    int chunked;      /* "chunked" was listed */
    int last_chunked; /* the last coding listed so far is "chunked" */
    int other;        /* a coding other than chunked (or an empty list) */
};

/** ASCII lower case of one byte. */
static inline unsigned char h1_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/** Case-insensitive equality of s[0..n) and the lower-case literal lit
 *  (of length n). */
static int h1_ci_eqn(const char *s, const char *lit, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (h1_lower((unsigned char)s[i]) != (unsigned char)lit[i]) return 0;
    return 1;
}

/** 1 if s[0..n) contains "chunked" in any case. */
static int h1_has_chunked(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i + 7 <= n; i++)
        if (h1_ci_eqn(s + i, "chunked", 7)) return 1;
    return 0;
}

/** A span; callers guarantee off + len <= INT32_MAX (the max_head cap). */
static struct h1_span h1_mkspan(size_t off, size_t len)
{
    struct h1_span s;

    s.off = (uint32_t)off;
    s.len = (uint32_t)len;
    return s;
}

/** 1 if m[0..n) is a method llhttp knows for HTTP/x.y (case-sensitive,
 *  RFC 9110 9.1), PRI excepted. */
static int h1_method_known(const unsigned char *m, size_t n)
{
    static const char *const l3[] = {"GET", "PUT", "ACL", NULL};
    static const char *const l4[] = {"POST", "HEAD", "COPY", "LOCK",
                                     "MOVE", "BIND", "LINK", NULL};
    static const char *const l5[] = {"PATCH", "TRACE", "PURGE", "MKCOL",
                                     "MERGE", "QUERY", NULL};
    static const char *const l6[] = {"DELETE", "SEARCH", "REPORT", "NOTIFY",
                                     "UNLOCK", "REBIND", "UNBIND", "UNLINK",
                                     "SOURCE", NULL};
    static const char *const l7[] = {"OPTIONS", "CONNECT", NULL};
    static const char *const l8[] = {"PROPFIND", "CHECKOUT", "M-SEARCH",
                                     NULL};
    static const char *const l9[] = {"PROPPATCH", "SUBSCRIBE", NULL};
    static const char *const l10[] = {"MKCALENDAR", "MKACTIVITY", NULL};
    static const char *const l11[] = {"UNSUBSCRIBE", NULL};
    static const char *const *const bylen[H1_METHOD_MAX + 1] = {
        NULL, NULL, NULL, l3, l4, l5, l6, l7, l8, l9, l10, l11};
    const char *const *c;

    if (n > H1_METHOD_MAX || !bylen[n]) return 0;
    for (c = bylen[n]; *c; c++)
        if (memcmp(m, *c, n) == 0) return 1;
    return 0;
}

/**
 * Parses "HTTP/" DIGIT "." DIGIT at b[*p..end) followed by term (which is
 * only looked at for unsupported versions).  Returns 1 with *ver = 10/11
 * and *p past the version, H1_MORE, -400 (malformed) or -505 (well formed,
 * not 1.0/1.1).
 */
static int h1_version(const unsigned char *b, size_t end, size_t *p, int *ver,
                      unsigned char term)
{
    static const char pre[] = "HTTP/";
    size_t i, n = end - *p;
    const unsigned char *v = b + *p;
    int good;

    for (i = 0; i < 8 && i < n; i++) {
        if (i < 5)
            good = v[i] == (unsigned char)pre[i];
        else if (i == 6)
            good = v[i] == '.';
        else
            good = (h1_cls[v[i]] & C_DIGIT) != 0;
        if (!good) return -400;
    }
    if (n < 8) return H1_MORE;
    if (v[5] == '1' && (v[7] == '0' || v[7] == '1')) {
        *ver = v[7] == '0' ? 10 : 11;
        *p += 8;
        return 1;
    }
    if (n > 8 && v[8] != term) return -400;
    return -505;
}

/** Checks CRLF at b[p..end): 1 when present, H1_MORE, or -400. */
static int h1_crlf(const unsigned char *b, size_t end, size_t p)
{
    if (p >= end) return H1_MORE;
    if (b[p] != '\r') return -400;
    if (p + 1 >= end) return H1_MORE;
    return b[p + 1] == '\n' ? 1 : -400;
}

/**
 * Request line (after optional empty lines).  On 1, *pp is the offset of
 * the first field line.  Returns 1, H1_MORE or a negated status.
 */
static int h1_request_line(const unsigned char *b, size_t end, size_t *pp,
                           struct h1_head *head, const struct h1_limits *lim)
{
    size_t p = 0, s;
    int r;

    /* RFC 9112 2.2: empty lines before the request-line are ignored. */
    for (;;) {
        if (p >= end) return H1_MORE;
        if (b[p] != '\r') break;
        if (p + 1 >= end) return H1_MORE;
        if (b[p + 1] != '\n') return -400;
        p += 2;
    }
    /* method SP */
    s = p;
    while (p < end && (h1_cls[b[p]] & C_TCHAR)) p++;
    if (p - s > H1_METHOD_MAX) return -400;
    if (p >= end) return H1_MORE;
    if (b[p] != ' ' || p == s || !h1_method_known(b + s, p - s)) return -400;
    head->method = h1_mkspan(s, p - s);
    /* request-target SP (exactly one SP on each side) */
    s = ++p;
    while (p < end && (h1_cls[b[p]] & C_URI)) p++;
    if (p - s > lim->max_target) return -414;
    if (p >= end) return H1_MORE;
    if (b[p] != ' ' || p == s) return -400;
    head->target = h1_mkspan(s, p - s);
    p++;
    /* HTTP-version CRLF */
    r = h1_version(b, end, &p, &head->version, '\r');
    if (r <= 0) return r;
    r = h1_crlf(b, end, p);
    if (r <= 0) return r;
    *pp = p + 2;
    return 1;
}

/**
 * Status line: HTTP-version SP 3DIGIT [SP reason] CRLF (the SP before an
 * empty reason may be missing).  Returns 1 with *pp past the CRLF,
 * H1_MORE or a negated status.
 */
static int h1_status_line(const unsigned char *b, size_t end, size_t *pp,
                          struct h1_head *head)
{
    size_t p = 0, s;
    int r, i;

    r = h1_version(b, end, &p, &head->version, ' ');
    if (r <= 0) return r;
    if (p >= end) return H1_MORE;
    if (b[p] != ' ') return -400;
    p++;
    for (i = 0; i < 3; i++, p++) {
        if (p >= end) return H1_MORE;
        if (!(h1_cls[b[p]] & C_DIGIT) || (i == 0 && b[p] == '0')) return -400;
        head->status = head->status * 10 + (b[p] - '0');
    }
    if (p >= end) return H1_MORE;
    if (b[p] == ' ') {
        s = ++p;
        while (p < end && (h1_cls[b[p]] & C_FVAL)) p++;
    } else {
        s = p;
    }
    head->reason = h1_mkspan(s, p - s);
    r = h1_crlf(b, end, p);
    if (r <= 0) return r;
    *pp = p + 2;
    return 1;
}

/**
 * Content-Length value (OWS already trimmed): 1*DIGIT, or a list of
 * identical 1*DIGIT (RFC 9110 8.6).  Returns 0 with *out, -1 if invalid.
 */
static int h1_cl_value(const unsigned char *v, size_t n, int64_t *out)
{
    size_t i = 0;
    int64_t first = -1, x;

    for (;;) {
        if (i >= n || !(h1_cls[v[i]] & C_DIGIT)) return -1;
        x = 0;
        while (i < n && (h1_cls[v[i]] & C_DIGIT)) {
            int d = v[i++] - '0';

            if (x > (INT64_MAX - d) / 10) return -1;
            x = x * 10 + d;
        }
        if (first >= 0 && x != first) return -1;
        first = x;
        while (i < n && (h1_cls[v[i]] & C_WS)) i++;
        if (i == n) break;
        if (v[i] != ',') return -1;
        i++;
        while (i < n && (h1_cls[v[i]] & C_WS)) i++;
    }
    *out = first;
    return 0;
}

/**
 * One Transfer-Encoding line: folds its codings into *te (see the rules at
 * the top of this file).  Returns 0 or -400.
 */
static int h1_te_line(const char *v, size_t n, struct h1_te *te, int req)
{
    size_t pos = 0, s, el;
    int any = 0;

    te->seen = 1;
    while (h1_list_next(v, n, &pos, &s, &el)) {
        any = 1;
        if (el == 7 && h1_ci_eqn(v + s, "chunked", 7)) {
            if (te->chunked) return -400; /* chunked applied twice */
            te->chunked = te->last_chunked = 1;
            continue;
        }
        te->last_chunked = 0;
        if (req) {
            if (te->chunked) return -400;             /* chunked not final */
            if (h1_has_chunked(v + s, el)) return -400; /* look-alike */
        }
        te->other = 1;
    }
    if (!any) {
        te->other = 1; /* empty list: no coding we can use (501) */
        te->last_chunked = 0;
    }
    return 0;
}

/** Sets the Connection flags from one Connection line. */
static void h1_connection(const char *v, size_t n, struct h1_head *head)
{
    size_t pos = 0, s, el;

    while (h1_list_next(v, n, &pos, &s, &el)) {
        if (el == 5 && h1_ci_eqn(v + s, "close", 5))
            head->flags |= H1_F_CONN_CLOSE;
        else if (el == 10 && h1_ci_eqn(v + s, "keep-alive", 10))
            head->flags |= H1_F_CONN_KEEPALIVE;
        else if (el == 7 && h1_ci_eqn(v + s, "upgrade", 7))
            head->flags |= H1_F_CONN_UPGRADE;
    }
}

/**
 * Applies the framing/connection meaning of one complete field (Host,
 * Content-Length, Transfer-Encoding, Connection, Upgrade, Expect).
 * Returns 0 or a negated status.
 */
static int h1_special(const char *buf, const struct h1_field *f,
                      struct h1_head *head, struct h1_te *te, int req)
{
    const char *n = buf + f->name.off, *v = buf + f->value.off;
    size_t vl = f->value.len;
    int64_t cl;

    switch (f->name.len) {
    case 4:
        if (req && h1_ci_eqn(n, "host", 4)) {
            if (head->flags & H1_F_HAS_HOST) return -400;
            head->flags |= H1_F_HAS_HOST;
            head->host = f->value;
        }
        break;
    case 6:
        if (h1_ci_eqn(n, "expect", 6) && vl == 12 &&
            h1_ci_eqn(v, "100-continue", 12))
            head->flags |= H1_F_EXPECT_CONTINUE;
        break;
    case 7:
        if (h1_ci_eqn(n, "upgrade", 7)) head->flags |= H1_F_UPGRADE;
        break;
    case 10:
        if (h1_ci_eqn(n, "connection", 10)) h1_connection(v, vl, head);
        break;
    case 14:
        if (!h1_ci_eqn(n, "content-length", 14)) break;
        if (h1_cl_value((const unsigned char *)v, vl, &cl) < 0) return -400;
        if (head->content_length >= 0 && head->content_length != cl)
            return -400;
        head->content_length = cl;
        head->flags |= H1_F_HAS_CL;
        if (te->seen) return -400;
        break;
    case 17:
        if (!h1_ci_eqn(n, "transfer-encoding", 17)) break;
        if (head->version == 10 || (head->flags & H1_F_HAS_CL)) return -400;
        return h1_te_line(v, vl, te, req);
    default:
        break;
    }
    return 0;
}

/**
 * Field lines from b[p..end) up to and including the empty line, then the
 * head-level checks.  Returns the head length (> 0), H1_MORE or a negated
 * status.
 */
static int h1_fields(const unsigned char *b, size_t end, size_t p,
                     struct h1_head *head, const struct h1_limits *lim, int req)
{
    struct h1_te te = {0, 0, 0, 0};
    struct h1_field *f;
    size_t ns, ne, vs, ve;
    int r;

    for (;;) {
        if (p >= end) return H1_MORE;
        if (b[p] == '\r') break;
        /* field-name ":" — a SP/HTAB here is obs-fold, before ':' is 400 */
        ns = p;
        while (p < end && (h1_cls[b[p]] & C_TCHAR)) p++;
        if (p >= end) return H1_MORE;
        if (b[p] != ':' || p == ns) return -400;
        ne = p++;
        /* OWS field-value OWS CRLF */
        while (p < end && (h1_cls[b[p]] & C_WS)) p++;
        vs = p;
        p = h1_skip_fval(b, p, end);
        r = h1_crlf(b, end, p);
        if (r <= 0) return r;
        ve = p;
        while (ve > vs && (h1_cls[b[ve - 1]] & C_WS)) ve--;
        p += 2;
        if (head->nfields >= lim->max_fields) return -431;
        f = &head->fields[head->nfields++];
        f->name = h1_mkspan(ns, ne - ns);
        f->value = h1_mkspan(vs, ve - vs);
        r = h1_special((const char *)b, f, head, &te, req);
        if (r < 0) return r;
    }
    r = h1_crlf(b, end, p);
    if (r <= 0) return r;
    p += 2;
    if (req && head->version == 11 && !(head->flags & H1_F_HAS_HOST))
        return -400; /* RFC 9112 3.2 */
    if (te.seen) {
        head->flags |= H1_F_TE;
        if (req) {
            if (te.other) return -501;
            head->flags |= H1_F_CHUNKED; /* exactly one chunked, final */
        } else if (te.last_chunked) {
            head->flags |= H1_F_CHUNKED;
        }
    }
    head->head_len = (uint32_t)p;
    return (int)p;
}

/**
 * Shared driver of h1_parse_request / h1_parse_response: resets *head,
 * bounds the scan to min(len, max_head) and maps "need more" past
 * max_head to 431.
 */
static int h1_parse(const char *buf, size_t len, struct h1_head *head,
                    struct h1_field *fields, const struct h1_limits *lim,
                    int req)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t cap = lim->max_head, end, p = 0;
    int r;

    if (cap > (size_t)INT32_MAX) cap = (size_t)INT32_MAX;
    end = len < cap ? len : cap;
    memset(head, 0, sizeof *head);
    head->fields = fields;
    head->content_length = -1;
    r = req ? h1_request_line(b, end, &p, head, lim)
            : h1_status_line(b, end, &p, head);
    if (r > 0) r = h1_fields(b, end, p, head, lim, req);
    if (r == H1_MORE) return len >= cap ? -431 : 0;
    return r;
}

int h1_parse_request(const char *buf, size_t len, struct h1_head *head,
                     struct h1_field *fields, const struct h1_limits *lim)
{
    return h1_parse(buf, len, head, fields, lim, 1);
}

int h1_parse_response(const char *buf, size_t len, struct h1_head *head,
                      struct h1_field *fields, const struct h1_limits *lim)
{
    return h1_parse(buf, len, head, fields, lim, 0);
}

int h1_span_eq(const char *buf, struct h1_span s, const char *str)
{
    const char *p = buf + s.off;
    uint32_t i;

    for (i = 0; i < s.len; i++) {
        if (!str[i]) return 0;
        if (h1_lower((unsigned char)p[i]) != h1_lower((unsigned char)str[i]))
            return 0;
    }
    return str[i] == '\0';
}

int h1_list_next(const char *value, size_t vlen, size_t *pos, size_t *start,
                 size_t *elen)
{
    const unsigned char *v = (const unsigned char *)value;
    size_t p = *pos, s, e;
    int quoted;

    while (p < vlen) {
        while (p < vlen && (h1_cls[v[p]] & C_WS)) p++;
        s = p;
        quoted = 0;
        /* an element ends at a ',' outside a quoted-string */
        while (p < vlen && (quoted || v[p] != ',')) {
            if (quoted && v[p] == '\\' && p + 1 < vlen)
                p++;
            else if (v[p] == '"')
                quoted = !quoted;
            p++;
        }
        e = p;
        while (e > s && (h1_cls[v[e - 1]] & C_WS)) e--;
        if (p < vlen) p++; /* the ',' */
        if (e > s) {
            *pos = p;
            *start = s;
            *elen = e - s;
            return 1;
        }
    }
    *pos = p;
    return 0;
}

/* ------------------------------------------------------------ chunked */

/* Decoder states (h1_chunk.state). */
enum {
    CS_SIZE0,       /* first HEXDIG of a chunk-size */
    CS_SIZE,        /* more HEXDIG, ';', BWS or CR */
    CS_SIZE_WS,     /* BWS after the size: more BWS or ';' */
    CS_EXT_NAME0,   /* after ';': BWS or the first tchar of a name */
    CS_EXT_NAME,    /* in a name: tchar, BWS, '=', ';' or CR */
    CS_EXT_NAME_WS, /* BWS after a name: BWS, '=' or ';' */
    CS_EXT_VAL0,    /* after '=': BWS, tchar or DQUOTE */
    CS_EXT_TOKEN,   /* in a token value: tchar, BWS, ';' or CR */
    CS_EXT_VAL_WS,  /* BWS after a value: BWS or ';' */
    CS_EXT_QUOTED,  /* in a quoted-string */
    CS_EXT_QPAIR,   /* after a backslash in a quoted-string */
    CS_EXT_QEND,    /* after the closing DQUOTE: BWS, ';' or CR */
    CS_SIZE_LF,     /* LF ending the size line */
    CS_DATA,        /* payload bytes */
    CS_DATA_CR,     /* CR after the payload */
    CS_DATA_LF,     /* LF after the payload */
    CS_TR_START,    /* start of a trailer line: tchar or CR */
    CS_TR_NAME,     /* in a trailer field name: tchar or ':' */
    CS_TR_VALUE,    /* in a trailer field value: VCHAR/obs-text/WS or CR */
    CS_TR_LF,       /* LF ending a trailer field line */
    CS_FINAL_LF,    /* LF ending the trailer section (the message) */
    CS_DONE,        /* the whole chunked body was read */
    CS_ERROR        /* framing error (sticky) */
};

void h1_chunk_init(struct h1_chunk *c, size_t max_line, size_t max_trailer)
{
    memset(c, 0, sizeof *c);
    c->state = CS_SIZE0;
    c->max_line = max_line;
    c->max_trailer = max_trailer;
}

int h1_chunk_done(const struct h1_chunk *c)
{
    return c->state == CS_DONE;
}

/** Next state of the size line (with extensions) on byte ch, or CS_ERROR. */
static int h1_chunk_size_step(struct h1_chunk *c, unsigned char ch)
{
    unsigned cls = h1_cls[ch];

    switch (c->state) {
    case CS_SIZE0:
    case CS_SIZE:
        if (cls & C_HEX) {
            if (++c->digits > 16) return CS_ERROR;
            c->size = (c->size << 4) |
                      (uint64_t)((cls & C_DIGIT) ? ch - '0'
                                                 : h1_lower(ch) - 'a' + 10);
            return CS_SIZE;
        }
        if (c->state == CS_SIZE0) return CS_ERROR;
        if (ch == ';') return CS_EXT_NAME0;
        if (cls & C_WS) return CS_SIZE_WS;
        return ch == '\r' ? CS_SIZE_LF : CS_ERROR;
    case CS_SIZE_WS:
    case CS_EXT_NAME_WS:
    case CS_EXT_VAL_WS:
        if (cls & C_WS) return c->state;
        if (ch == ';') return CS_EXT_NAME0;
        if (ch == '=' && c->state == CS_EXT_NAME_WS) return CS_EXT_VAL0;
        return CS_ERROR;
    case CS_EXT_NAME0:
        if (cls & C_WS) return CS_EXT_NAME0;
        return (cls & C_TCHAR) ? CS_EXT_NAME : CS_ERROR;
    case CS_EXT_NAME:
    case CS_EXT_TOKEN:
        if (cls & C_TCHAR) return c->state;
        if (ch == ';') return CS_EXT_NAME0;
        if (ch == '\r') return CS_SIZE_LF;
        if (ch == '=' && c->state == CS_EXT_NAME) return CS_EXT_VAL0;
        if (cls & C_WS)
            return c->state == CS_EXT_NAME ? CS_EXT_NAME_WS : CS_EXT_VAL_WS;
        return CS_ERROR;
    case CS_EXT_VAL0:
        if (cls & C_WS) return CS_EXT_VAL0;
        if (ch == '"') return CS_EXT_QUOTED;
        return (cls & C_TCHAR) ? CS_EXT_TOKEN : CS_ERROR;
    case CS_EXT_QUOTED:
        if (ch == '"') return CS_EXT_QEND;
        if (ch == '\\') return CS_EXT_QPAIR;
        return (cls & C_QDTEXT) ? CS_EXT_QUOTED : CS_ERROR;
    case CS_EXT_QPAIR:
        return (cls & C_FVAL) ? CS_EXT_QUOTED : CS_ERROR;
    case CS_EXT_QEND:
        if (ch == ';') return CS_EXT_NAME0;
        if (ch == '\r') return CS_SIZE_LF;
        return (cls & C_WS) ? CS_EXT_VAL_WS : CS_ERROR;
    default:
        return CS_ERROR;
    }
}

/** Next state in the trailer section on byte ch, or CS_ERROR. */
static int h1_chunk_trailer_step(int state, unsigned char ch)
{
    unsigned cls = h1_cls[ch];

    switch (state) {
    case CS_TR_START:
        if (ch == '\r') return CS_FINAL_LF;
        return (cls & C_TCHAR) ? CS_TR_NAME : CS_ERROR;
    case CS_TR_NAME:
        if (cls & C_TCHAR) return CS_TR_NAME;
        return ch == ':' ? CS_TR_VALUE : CS_ERROR;
    case CS_TR_VALUE:
        if (cls & C_FVAL) return CS_TR_VALUE;
        return ch == '\r' ? CS_TR_LF : CS_ERROR;
    case CS_TR_LF:
        return ch == '\n' ? CS_TR_START : CS_ERROR;
    case CS_FINAL_LF:
        return ch == '\n' ? CS_DONE : CS_ERROR;
    default:
        return CS_ERROR;
    }
}

ssize_t h1_chunk_parse(struct h1_chunk *c, const char *buf, size_t len,
                       size_t *data_off, size_t *data_len)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0, n;

    *data_off = 0;
    *data_len = 0;
    while (i < len) {
        unsigned char ch = b[i];

        switch (c->state) {
        case CS_DONE:
            return (ssize_t)i; /* the rest belongs to the next message */
        case CS_ERROR:
            return -1;
        case CS_DATA:
            n = len - i;
            if ((uint64_t)n > c->remaining) n = (size_t)c->remaining;
            *data_off = i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0) c->state = CS_DATA_CR;
            return (ssize_t)(i + n);
        case CS_DATA_CR:
            c->state = ch == '\r' ? CS_DATA_LF : CS_ERROR;
            break;
        case CS_DATA_LF:
            if (ch != '\n') {
                c->state = CS_ERROR;
                break;
            }
            c->state = CS_SIZE0;
            c->size = 0;
            c->digits = 0;
            c->line = 0;
            break;
        case CS_SIZE_LF:
            if (ch != '\n' || ++c->line > c->max_line) {
                c->state = CS_ERROR;
                break;
            }
            c->line = 0;
            if (c->size == 0) {
                c->state = CS_TR_START;
                c->trailer_bytes = 0;
            } else {
                c->state = CS_DATA;
                c->remaining = c->size;
            }
            break;
        case CS_TR_START:
        case CS_TR_NAME:
        case CS_TR_VALUE:
        case CS_TR_LF:
        case CS_FINAL_LF:
            if (++c->line > c->max_line ||
                ++c->trailer_bytes > c->max_trailer) {
                c->state = CS_ERROR;
                break;
            }
            c->state = h1_chunk_trailer_step(c->state, ch);
            if (c->state == CS_TR_START) c->line = 0;
            if (c->state == CS_DONE) return (ssize_t)(i + 1);
            break;
        default: /* the size line and its extensions */
            if (++c->line > c->max_line) {
                c->state = CS_ERROR;
                break;
            }
            c->state = h1_chunk_size_step(c, ch);
            break;
        }
        if (c->state == CS_ERROR) return -1;
        i++;
    }
    return c->state == CS_ERROR ? -1 : (ssize_t)i;
}
