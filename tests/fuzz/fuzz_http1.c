/*
 * fuzz_http1 — libFuzzer target for the HTTP/1.1 head parser and the
 * chunked decoder (src/http1.c).
 *
 * The input is raw bytes as a client (or a server) would send them.  Each
 * run checks what src/http1.h promises, aborting on any violation:
 *
 *  - the parser never reads outside [0, min(len, max_head)) (ASan: the
 *    input is copied into a buffer of exactly len bytes);
 *  - a head it accepts (> 0) is consistent: head_len is the return value
 *    and ends in CRLF CRLF; method, target, reason, every field name and
 *    value lie inside the head; names are tokens; values hold no CR, LF or
 *    other control byte and no leading/trailing SP/HTAB; the method is
 *    one llhttp knows; the target is 1..max_target bytes of 0x21..0x7e;
 *    version is 10 or 11; nfields <= max_fields;
 *  - framing (requests): no accepted head has both Content-Length and
 *    Transfer-Encoding, Transfer-Encoding in HTTP/1.0, Content-Length
 *    values that differ (inside one line or across lines) or that are not
 *    digits; content_length is -1 exactly when there is no Content-Length
 *    and equals every Content-Length value otherwise; H1_F_CHUNKED is set
 *    exactly when Transfer-Encoding is there; an HTTP/1.1 request has
 *    exactly one Host and head->host is its value; the flags match the
 *    fields (Host, Upgrade, Expect: 100-continue, Connection tokens);
 *  - responses: status 100..999, Content-Length with Transfer-Encoding is
 *    never accepted, the same field checks;
 *  - the parse is stateless and incremental: for a sample of split points
 *    k, parsing the first k bytes gives 0 when k < head_len of an accepted
 *    head, the same head when k >= head_len, and an error on a prefix
 *    implies an error on the whole (0 never turns into acceptance of a
 *    different head, an error never turns into acceptance);
 *  - the chunked decoder (on the bytes after an accepted chunked request
 *    head): fed whole and fed in pieces, it yields the same payload bytes,
 *    the same end state (done / error / waiting) and consumes the same
 *    number of bytes; payload spans stay inside the buffer given.
 *
 * Build and run: tests/fuzz/run.sh (see tests/fuzz/README.md).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

#define FZ_MAX_FIELDS 24   /* max_fields given to the parser */
#define FZ_MAX_HEAD 2048   /* max_head given to the parser */
#define FZ_MAX_TARGET 512  /* max_target given to the parser */
#define FZ_SPLITS 6        /* sampled split points per input */
#define FZ_CHUNK_LINE 128  /* max_line of the chunked decoder */
#define FZ_CHUNK_TRAILER 512 /* max_trailer of the chunked decoder */

/* Abort with a message naming the broken property (libFuzzer then saves
 * the input as a crash). */
#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_http1: property violated: %s (%s:%d)\n",    \
                    #cond, __FILE__, __LINE__);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

/** The limits every parse of this target uses. */
static const struct h1_limits fz_lim = {FZ_MAX_HEAD, FZ_MAX_FIELDS,
                                        FZ_MAX_TARGET};

/** Result of one parse: return value, head and fields (copied). */
struct fz_parse {
    int rc;                                /* h1_parse_* return value */
    struct h1_head head;                   /* the head filled */
    struct h1_field fields[FZ_MAX_FIELDS]; /* its fields */
};

/** ASCII lower case. */
static unsigned char fz_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/** 1 when b[s] (a span) equals the lower-case literal lit, any case. */
static int fz_span_is(const unsigned char *b, struct h1_span s, const char *lit)
{
    size_t i, n = strlen(lit);

    if (s.len != n) return 0;
    for (i = 0; i < n; i++)
        if (fz_lower(b[s.off + i]) != (unsigned char)lit[i]) return 0;
    return 1;
}

/** 1 when b[off..off+len) contains the lower-case literal lit, any case. */
static int fz_contains(const unsigned char *b, struct h1_span s,
                       const char *lit)
{
    size_t n = strlen(lit), i, j;

    for (i = 0; i + n <= s.len; i++) {
        for (j = 0; j < n; j++)
            if (fz_lower(b[s.off + i + j]) != (unsigned char)lit[j]) break;
        if (j == n) return 1;
    }
    return 0;
}

/** RFC 9110 tchar. */
static int fz_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/** 1 when s lies inside [0, end). */
static int fz_inside(struct h1_span s, size_t end)
{
    return (size_t)s.off <= end && (size_t)s.len <= end - s.off;
}

/**
 * Independent reading of a Content-Length value: 1*DIGIT, or a list of
 * identical 1*DIGIT separated by commas with optional SP/HTAB.  Returns
 * the value, or -2 when the text is not such a value (or overflows).
 */
static int64_t fz_cl_value(const unsigned char *v, size_t n)
{
    int64_t first = -1, x;
    size_t i = 0;

    for (;;) {
        if (i >= n || v[i] < '0' || v[i] > '9') return -2;
        x = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            if (x > (INT64_MAX - (v[i] - '0')) / 10) return -2;
            x = x * 10 + (v[i++] - '0');
        }
        if (first >= 0 && x != first) return -2;
        first = x;
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
        if (i == n) return first;
        if (v[i++] != ',') return -2;
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    }
}

/** 1 when the method span is one llhttp knows (h1_parse_request's list). */
static int fz_method_ok(const unsigned char *b, struct h1_span m)
{
    static const char *const known[] = {
        "GET", "PUT", "ACL", "POST", "HEAD", "COPY", "LOCK", "MOVE", "BIND",
        "LINK", "PATCH", "TRACE", "PURGE", "MKCOL", "MERGE", "QUERY",
        "DELETE", "SEARCH", "REPORT", "NOTIFY", "UNLOCK", "REBIND",
        "UNBIND", "UNLINK", "SOURCE", "OPTIONS", "CONNECT", "PROPFIND",
        "CHECKOUT", "M-SEARCH", "PROPPATCH", "SUBSCRIBE", "MKCALENDAR",
        "MKACTIVITY", "UNSUBSCRIBE", NULL};
    size_t i;

    for (i = 0; known[i]; i++)
        if (strlen(known[i]) == m.len && !memcmp(b + m.off, known[i], m.len))
            return 1;
    return 0;
}

/**
 * Checks an accepted head (p->rc > 0) of buf[0..len) against http1.h's
 * promises; req: 1 for a request, 0 for a response.  Aborts on a
 * violation.
 */
static void fz_check_head(const unsigned char *b, size_t len,
                          const struct fz_parse *p, int req)
{
    const struct h1_head *h = &p->head;
    size_t H = (size_t)p->rc, i, j, nhost = 0, nte = 0, ncl = 0;
    int upgrade = 0, expect = 0, conn_close = 0, conn_ka = 0, conn_up = 0;
    int64_t cl = -1;

    FZ_CHECK(H <= len && H <= FZ_MAX_HEAD);
    FZ_CHECK(h->head_len == H);
    FZ_CHECK(H >= 4 && !memcmp(b + H - 4, "\r\n\r\n", 4));
    FZ_CHECK(h->version == 10 || h->version == 11);
    FZ_CHECK(h->nfields <= FZ_MAX_FIELDS);
    FZ_CHECK(h->fields == p->fields);
    if (req) {
        FZ_CHECK(fz_inside(h->method, H) && fz_inside(h->target, H));
        FZ_CHECK(fz_method_ok(b, h->method));
        FZ_CHECK(h->target.len >= 1 && h->target.len <= FZ_MAX_TARGET);
        for (i = 0; i < h->target.len; i++) {
            unsigned char c = b[h->target.off + i];
            FZ_CHECK(c >= 0x21 && c <= 0x7e);
        }
        FZ_CHECK(h->method.off + h->method.len + 1 == h->target.off);
    } else {
        FZ_CHECK(h->status >= 100 && h->status <= 999);
        FZ_CHECK(fz_inside(h->reason, H));
        for (i = 0; i < h->reason.len; i++) {
            unsigned char c = b[h->reason.off + i];
            FZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
    for (i = 0; i < h->nfields; i++) {
        const struct h1_field *f = &p->fields[i];

        FZ_CHECK(fz_inside(f->name, H) && fz_inside(f->value, H));
        FZ_CHECK(f->name.len >= 1);
        for (j = 0; j < f->name.len; j++)
            FZ_CHECK(fz_tchar(b[f->name.off + j]));
        FZ_CHECK(b[f->name.off + f->name.len] == ':');
        for (j = 0; j < f->value.len; j++) {
            unsigned char c = b[f->value.off + j];
            /* no CR, LF, NUL or other control byte; HTAB allowed */
            FZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (f->value.len) {
            unsigned char c0 = b[f->value.off];
            unsigned char c1 = b[f->value.off + f->value.len - 1];
            FZ_CHECK(c0 != ' ' && c0 != '\t' && c1 != ' ' && c1 != '\t');
        }
        /* the value ends the line: OWS then CRLF */
        j = f->value.off + f->value.len;
        while (b[j] == ' ' || b[j] == '\t') j++;
        FZ_CHECK(j + 1 < H && b[j] == '\r' && b[j + 1] == '\n');
        if (i > 0) FZ_CHECK(f->name.off > p->fields[i - 1].value.off);

        if (fz_span_is(b, f->name, "host")) {
            nhost++;
            if (req) {
                FZ_CHECK(h->host.off == f->value.off &&
                         h->host.len == f->value.len);
            }
        } else if (fz_span_is(b, f->name, "transfer-encoding")) {
            nte++;
        } else if (fz_span_is(b, f->name, "content-length")) {
            int64_t v = fz_cl_value(b + f->value.off, f->value.len);

            ncl++;
            FZ_CHECK(v >= 0);            /* digits only, a list agrees */
            FZ_CHECK(cl < 0 || cl == v); /* all lines agree */
            cl = v;
        } else if (fz_span_is(b, f->name, "upgrade")) {
            upgrade = 1;
        } else if (fz_span_is(b, f->name, "expect")) {
            if (fz_span_is(b, f->value, "100-continue")) expect = 1;
        } else if (fz_span_is(b, f->name, "connection")) {
            conn_close |= fz_contains(b, f->value, "close");
            conn_ka |= fz_contains(b, f->value, "keep-alive");
            conn_up |= fz_contains(b, f->value, "upgrade");
        }
    }
    /* Content-Length */
    FZ_CHECK(h->content_length >= -1);
    FZ_CHECK(h->content_length == cl);
    FZ_CHECK(!!(h->flags & H1_F_HAS_CL) == (ncl > 0));
    /* Transfer-Encoding */
    FZ_CHECK(!!(h->flags & H1_F_TE) == (nte > 0));
    FZ_CHECK(!(ncl > 0 && nte > 0)); /* never both */
    if (nte > 0) FZ_CHECK(h->version == 11);
    if (!(h->flags & H1_F_TE)) FZ_CHECK(!(h->flags & H1_F_CHUNKED));
    if (req) {
        FZ_CHECK(!!(h->flags & H1_F_CHUNKED) == (nte > 0));
        FZ_CHECK(nhost <= 1);
        FZ_CHECK(!!(h->flags & H1_F_HAS_HOST) == (nhost == 1));
        if (h->version == 11) FZ_CHECK(nhost == 1);
        if (nhost == 0) FZ_CHECK(h->host.len == 0);
    } else {
        FZ_CHECK(!(h->flags & H1_F_HAS_HOST));
    }
    /* flags derived from the fields */
    FZ_CHECK(!!(h->flags & H1_F_UPGRADE) == upgrade);
    FZ_CHECK(!!(h->flags & H1_F_EXPECT_CONTINUE) == expect);
    if (h->flags & H1_F_CONN_CLOSE) FZ_CHECK(conn_close);
    if (h->flags & H1_F_CONN_KEEPALIVE) FZ_CHECK(conn_ka);
    if (h->flags & H1_F_CONN_UPGRADE) FZ_CHECK(conn_up);
}

/** Parses b[0..len) as a request (req) or response into *p. */
static void fz_parse(const unsigned char *b, size_t len, int req,
                     struct fz_parse *p)
{
    memset(p, 0, sizeof *p);
    p->rc = req ? h1_parse_request((const char *)b, len, &p->head, p->fields,
                                   &fz_lim)
                : h1_parse_response((const char *)b, len, &p->head,
                                    p->fields, &fz_lim);
}

/** 1 when two accepted parses describe the same head. */
static int fz_same_head(const struct fz_parse *a, const struct fz_parse *b)
{
    const struct h1_head *x = &a->head, *y = &b->head;

    if (a->rc != b->rc || x->nfields != y->nfields) return 0;
    if (x->method.off != y->method.off || x->method.len != y->method.len ||
        x->target.off != y->target.off || x->target.len != y->target.len ||
        x->status != y->status || x->reason.off != y->reason.off ||
        x->reason.len != y->reason.len || x->version != y->version ||
        x->content_length != y->content_length || x->flags != y->flags ||
        x->host.off != y->host.off || x->host.len != y->host.len ||
        x->head_len != y->head_len)
        return 0;
    return !memcmp(a->fields, b->fields, x->nfields * sizeof a->fields[0]);
}

/** A small deterministic generator (xorshift64*) seeded from the input. */
static uint64_t fz_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/**
 * Parses every sampled prefix of buf (a fresh heap copy of exactly k
 * bytes each, so reading past k is caught) and checks it against the
 * whole parse *whole.
 */
static void fz_check_prefixes(const unsigned char *b, size_t len, int req,
                              const struct fz_parse *whole, uint64_t *rng)
{
    size_t ks[FZ_SPLITS + 2], nk = 0, i;
    struct fz_parse *p;

    if (len == 0) return;
    p = malloc(sizeof *p);
    if (!p) return;
    for (i = 0; i < FZ_SPLITS; i++) ks[nk++] = (size_t)(fz_next(rng) % len);
    if (whole->rc > 0) {
        ks[nk++] = (size_t)whole->rc - 1;
        ks[nk++] = (size_t)whole->rc;
    }
    for (i = 0; i < nk; i++) {
        size_t k = ks[i];
        unsigned char *cp = malloc(k ? k : 1);

        if (!cp) break;
        memcpy(cp, b, k);
        fz_parse(cp, k, req, p);
        free(cp);
        if (whole->rc > 0) {
            if (k < (size_t)whole->rc)
                FZ_CHECK(p->rc == 0); /* a valid prefix: need more */
            else
                FZ_CHECK(fz_same_head(p, whole));
        } else if (whole->rc == 0) {
            FZ_CHECK(p->rc == 0); /* prefixes of a valid prefix */
        } else {
            /* an error proven by fewer bytes stays an error */
            FZ_CHECK(p->rc <= 0);
#ifdef FZ_STRICT_STATUS
            if (p->rc < 0) FZ_CHECK(p->rc == whole->rc);
#endif
        }
        if (p->rc < 0) FZ_CHECK(whole->rc < 0);
        if (p->rc < 0)
            FZ_CHECK(p->rc == -400 || p->rc == -414 || p->rc == -431 ||
                     p->rc == -501 || p->rc == -505);
    }
    free(p);
}

/** Payload collected from the chunked decoder, and how it ended. */
struct fz_chunk_out {
    unsigned char *data; /* payload bytes (capacity = input length) */
    size_t len;          /* payload bytes collected */
    size_t consumed;     /* input bytes consumed */
    int error;           /* h1_chunk_parse returned -1 */
    int done;            /* h1_chunk_done at the end */
};

/**
 * Feeds b[0..len) to a fresh decoder in pieces whose sizes come from rng
 * (whole when rng is NULL), collecting the payload into *o.
 */
static void fz_chunk_feed(const unsigned char *b, size_t len, uint64_t *rng,
                          struct fz_chunk_out *o)
{
    struct h1_chunk c;
    size_t pos = 0;

    h1_chunk_init(&c, FZ_CHUNK_LINE, FZ_CHUNK_TRAILER);
    o->len = o->consumed = 0;
    o->error = o->done = 0;
    while (pos < len && !o->error && !h1_chunk_done(&c)) {
        size_t piece = len - pos, q = 0, off, dl;
        unsigned char *cp;
        ssize_t r;

        if (rng) piece = 1 + (size_t)(fz_next(rng) % (piece < 17 ? piece : 17));
        /* an exact-size copy: reads past the piece are caught */
        cp = malloc(piece);
        if (!cp) abort();
        memcpy(cp, b + pos, piece);
        /* the decoder stops after each run of payload: call again */
        while (q < piece) {
            r = h1_chunk_parse(&c, (const char *)cp + q, piece - q, &off, &dl);
            if (r < 0) {
                o->error = 1;
                break;
            }
            FZ_CHECK((size_t)r <= piece - q);
            FZ_CHECK(dl == 0 || (off < (size_t)r && dl <= (size_t)r - off));
            memcpy(o->data + o->len, cp + q + off, dl);
            o->len += dl;
            q += (size_t)r;
            o->consumed += (size_t)r;
            if (r == 0 || h1_chunk_done(&c)) break;
        }
        free(cp);
        pos += q;
        if (q < piece) break; /* done or error inside this piece */
    }
    o->done = h1_chunk_done(&c);
    if (o->error) FZ_CHECK(!o->done);
}

/** Checks whole against split decoding of the body after a chunked head. */
static void fz_check_chunked(const unsigned char *b, size_t len, uint64_t *rng)
{
    struct fz_chunk_out w, s;

    w.data = malloc(len ? len : 1);
    s.data = malloc(len ? len : 1);
    if (!w.data || !s.data) abort();
    fz_chunk_feed(b, len, NULL, &w);
    fz_chunk_feed(b, len, rng, &s);
    FZ_CHECK(w.error == s.error);
    FZ_CHECK(w.done == s.done);
    FZ_CHECK(w.len == s.len && !memcmp(w.data, s.data, w.len));
    if (!w.error) FZ_CHECK(w.consumed == s.consumed);
    FZ_CHECK(w.len <= w.consumed && w.consumed <= len);
    if (!w.error && !w.done) FZ_CHECK(w.consumed == len);
    free(w.data);
    free(s.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_parse *whole;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ size;
    unsigned char *b;
    size_t i;
    int req;

    if (size > 65536) return 0;
    for (i = 0; i < size; i++) rng = (rng ^ data[i]) * 1099511628211ull;
    if (!rng) rng = 1;
    b = malloc(size ? size : 1); /* exactly size bytes: ASan sees overreads */
    whole = malloc(sizeof *whole);
    if (!b || !whole) abort();
    memcpy(b, data, size);
    for (req = 1; req >= 0; req--) {
        fz_parse(b, size, req, whole);
        if (whole->rc > 0) fz_check_head(b, size, whole, req);
        else if (whole->rc < 0)
            FZ_CHECK(whole->rc == -400 || whole->rc == -414 ||
                     whole->rc == -431 || whole->rc == -501 ||
                     whole->rc == -505);
        fz_check_prefixes(b, size, req, whole, &rng);
        if (req && whole->rc > 0 && (whole->head.flags & H1_F_CHUNKED))
            fz_check_chunked(b + whole->rc, size - (size_t)whole->rc, &rng);
    }
    /* the decoder on the raw input too (not only after a head) */
    fz_check_chunked(b, size, &rng);
    free(whole);
    free(b);
    return 0;
}
