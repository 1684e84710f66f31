/*
 * compress — Traefik v3's compress middleware (config key "compress").
 * Module prefix: cz_.
 *
 * Compresses response bodies with gzip (zlib), br (libbrotlienc) or zstd
 * (libzstd), as they stream (response body filter of ABI 1.4).
 *
 *   http:
 *     middlewares:
 *       comp:
 *         compress:
 *           encodings: [zstd, br, gzip]        # default, priority order
 *           defaultEncoding: gzip              # default "" (none)
 *           excludedContentTypes: [text/event-stream]
 *           # or includedContentTypes: [...] (mutually exclusive)
 *           minResponseBodyBytes: 1024         # default; <= 0 also 1024
 *
 * `compress: {}`, `compress: true` (a label "…compress=true") and an empty
 * value all mean the defaults.  Unknown options, wrong types, an unknown
 * encoding, an empty encodings list, a defaultEncoding that is not one of
 * the encodings, an unparsable media type and both content-type lists set
 * are reported with their key path (the middleware is then disabled).
 *
 * Decision, as Traefik v3 takes it:
 *  - request: HEAD is never compressed.  A request whose Content-Type media
 *    type is excluded (application/grpc always is, plus
 *    excludedContentTypes) is not.  Accept-Encoding absent: defaultEncoding
 *    when set, else nothing.  Present but empty: nothing.  Otherwise its
 *    items (every Accept-Encoding header, blanks removed, names compared
 *    case-insensitively) that are one of the encodings, "*" or "identity",
 *    without q=0 (an unparsable q counts as 0), sorted by q (default 1)
 *    descending, ties broken by priority: "*" first, then the encodings in
 *    their configured order, then identity.  The winner "*" means
 *    defaultEncoding, or else the first of encodings; "identity", or no
 *    acceptable item, means nothing.  Accept-Encoding is forwarded to the
 *    server unchanged, as Traefik does (a server that compresses itself
 *    answers with Content-Encoding, which is then left alone).
 *  - response (once an encoding was chosen): "Vary: Accept-Encoding" is
 *    added (unless a Vary header already names Accept-Encoding), even when
 *    the body then is not compressed, as Traefik does.  Not compressed:
 *    a response with a Content-Encoding, with a Content-Range (a range
 *    answer; gzhttp's rule, applied to all three encodings), whose
 *    Content-Type does not parse, is excluded (excludedContentTypes and
 *    application/grpc; a type with parameters matches only the same
 *    parameters) or is not included (includedContentTypes), whose
 *    Content-Length is below minResponseBodyBytes, or that has no body
 *    (204, 304, 1xx: the host refuses the filter).  A response without
 *    Content-Type is compressed (no content sniffing).  Otherwise:
 *    Content-Encoding is set, Accept-Ranges removed, the host drops
 *    Content-Length and frames the body (chunked for HTTP/1.1).
 *
 * Design note — responses without Content-Length.  Traefik buffers up to
 * minResponseBodyBytes before it writes the head, and sends a short body
 * unchanged.  Here the head leaves when on_response returns, before the
 * first body byte reaches the filter, and Content-Encoding must be decided
 * in it: so the decision for a chunked or close-delimited response (or a
 * local answer, whose length the host adds only when writing) is taken
 * from the headers alone, and such a response is compressed whatever its
 * size (nginx does the same: its minimum length only applies to a known
 * Content-Length).  A short body costs a few bytes of framing, never a
 * wrong answer.  Such a stream is also flushed after every piece that
 * arrives (as Traefik, whose proxy flushes unknown-length responses at
 * once), so a slowly produced body still reaches the client as it comes;
 * a body with a Content-Length is only flushed at its end.
 *
 * Memory.  Each compressed response holds one encoder, bounded: gzip level
 * 6 / window 32 KiB (~270 KB), brotli quality 5 / window 64 KiB (~2 MB
 * peak), zstd level 3 / window 256 KiB (~1.8 MB), plus a 16 KiB output
 * buffer on the stack.  Nothing else is buffered: the output of each call
 * is written to the client at once (the host's watermarks pause the
 * server when the client is slow).
 *
 * Encoder lifetime.  An encoder belongs to its exchange: the request's
 * context points at it, on_response_body frees it after the last piece
 * (or when the encoder or a write fails), and an end callback registered
 * with host->req_on_end (ABI 1.4) frees it when the exchange ends before
 * that (the client went away, the server cut the body, relais stopped),
 * logging at DEBUG "freed the <enc> encoder of an exchange that ended
 * early".  Live encoders are thus bounded by the exchanges in flight, and
 * nothing is left for destroy.  A host without req_on_end cannot load this
 * plugin (built for 1.4; hosts refuse a newer minor), and create checks it
 * all the same (the middleware is then disabled), so there is no other
 * way of freeing an encoder.
 *
 * Threading: create/destroy on the control thread; the rest (including
 * the end callback) on the request's worker thread; an encoder is touched
 * by that thread only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <relais/plugin.h>

/* ---- limits and tuning -------------------------------------------------- */

#define CZ_DEFAULT_MIN 1024        /* minResponseBodyBytes default */
#define CZ_MAX_TYPES 64            /* cap on each content-type list */
#define CZ_MAX_PARAMS 8            /* cap on parameters of one media type */
#define CZ_MAX_TOKEN 128           /* cap on a media type / parameter text */
#define CZ_MAX_AE_ITEMS 32         /* Accept-Encoding items considered */
#define CZ_OUT_BUF 16384           /* output buffer per encoder call */
#define CZ_GZIP_LEVEL 6            /* zlib level (Traefik: gzip default) */
#define CZ_BR_QUALITY 5            /* brotli quality */
#define CZ_BR_LGWIN 16             /* brotli window: 64 KiB */
#define CZ_ZSTD_LEVEL 3            /* zstd level (klauspost's default speed) */
#define CZ_ZSTD_WLOG 18            /* zstd window: 256 KiB */

/** The encodings, also their bit in a set. */
enum cz_enc_type {
    CZ_NONE = 0,
    CZ_GZIP = 1,
    CZ_BR = 2,
    CZ_ZSTD = 3
};

/** Name of an encoding as in Content-Encoding. */
static const char *const cz_names[] = {"", "gzip", "br", "zstd"};

/** One parameter of a media type. */
struct cz_param {
    char name[CZ_MAX_TOKEN];  /* lower case */
    char value[CZ_MAX_TOKEN]; /* as written (quotes removed) */
};

/** A parsed media type ("text/html; charset=utf-8"). */
struct cz_mtype {
    char type[CZ_MAX_TOKEN];                /* lower case "text/html" */
    struct cz_param params[CZ_MAX_PARAMS];  /* its parameters */
    size_t nparams;                         /* how many */
};

/** One configured instance. */
struct cz_inst {
    const relais_host *host;      /* host function table */
    char *name;                   /* instance name (owned), for logs */
    int encodings[3];             /* configured encodings in priority order */
    size_t nencodings;            /* how many (1..3) */
    int default_enc;              /* defaultEncoding, CZ_NONE when unset */
    struct cz_mtype *excl;        /* application/grpc + excludedContentTypes */
    size_t nexcl;                 /* how many */
    struct cz_mtype *incl;        /* includedContentTypes */
    size_t nincl;                 /* how many */
    int64_t min_size;             /* minResponseBodyBytes */
};

/** A live encoder. */
struct cz_enc {
    int type;                     /* enum cz_enc_type */
    z_stream z;                   /* gzip state (type CZ_GZIP) */
    BrotliEncoderState *br;       /* brotli state (type CZ_BR) */
    ZSTD_CCtx *zs;                /* zstd state (type CZ_ZSTD) */
};

/** Per-request state (request memory, valid until after the end
 *  callbacks have run). */
struct cz_req {
    const struct cz_inst *in;     /* the instance (for the end callback) */
    int enc;                      /* chosen encoding (enum cz_enc_type) */
    int streaming;                /* flush after every piece (no length) */
    struct cz_enc *coder;         /* live encoder (owned); NULL before
                                     on_response set one up and once freed */
    int on_end_set;               /* cz_on_end registered with req_on_end */
};

/** How the encoder is driven by one call. */
enum cz_mode {
    CZ_CONTINUE = 0, /* feed, emit what is ready */
    CZ_FLUSH = 1,    /* feed, then emit everything fed so far */
    CZ_END = 2       /* feed, then finish the stream */
};

/* ---- encoders -------------------------------------------------------- */

/** Frees an encoder; NULL is a no-op.  Any thread. */
static void cz_enc_free(struct cz_enc *e)
{
    if (!e) return;
    if (e->type == CZ_GZIP) deflateEnd(&e->z);
    if (e->br) BrotliEncoderDestroyInstance(e->br);
    if (e->zs) ZSTD_freeCCtx(e->zs);
    free(e);
}

/** New encoder of type (gzip, br or zstd) with this module's bounded
 *  parameters; NULL when out of memory.  Any thread. */
static struct cz_enc *cz_enc_new(int type)
{
    struct cz_enc *e = calloc(1, sizeof(*e));

    if (!e) return NULL;
    if (type == CZ_GZIP) {
        if (deflateInit2(&e->z, CZ_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            free(e);
            return NULL;
        }
        e->type = CZ_GZIP;
    } else if (type == CZ_BR) {
        e->type = CZ_BR;
        e->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
        if (!e->br || !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY, CZ_BR_QUALITY) ||
            !BrotliEncoderSetParameter(e->br, BROTLI_PARAM_LGWIN, CZ_BR_LGWIN))
            goto fail;
    } else {
        e->type = CZ_ZSTD;
        e->zs = ZSTD_createCCtx();
        if (!e->zs ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->zs, ZSTD_c_compressionLevel, CZ_ZSTD_LEVEL)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->zs, ZSTD_c_windowLog, CZ_ZSTD_WLOG)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(e->zs, ZSTD_c_checksumFlag, 1)))
            goto fail;
    }
    return e;
fail:
    cz_enc_free(e);
    return NULL;
}

/** Worker thread.  Writes n bytes of output towards the client.  0 / -1. */
static int cz_emit(const relais_host *host, relais_req *req, const unsigned char *buf, size_t n)
{
    if (!n) return 0;
    return host->resp_body_write(req, (const char *)buf, n);
}

/**
 * Worker thread.  Feeds data[0..len) to the encoder and writes what it
 * produces with host->resp_body_write, CZ_OUT_BUF bytes at a time; mode
 * says whether to flush or finish afterwards.  0, or -1 when the encoder
 * fails or the write is refused.
 */
static int cz_enc_run(const relais_host *host, relais_req *req, struct cz_enc *e,
                      const char *data, size_t len, int mode)
{
    unsigned char out[CZ_OUT_BUF];

    if (e->type == CZ_GZIP) {
        int flush = mode == CZ_END ? Z_FINISH : mode == CZ_FLUSH ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        int rc;
        e->z.next_in = (Bytef *)(uintptr_t)data;
        e->z.avail_in = (uInt)len; /* pieces are far below 4 GiB: see the caller */
        do {
            e->z.next_out = out;
            e->z.avail_out = sizeof(out);
            rc = deflate(&e->z, flush);
            if (rc == Z_STREAM_ERROR) return -1;
            if (cz_emit(host, req, out, sizeof(out) - e->z.avail_out) < 0) return -1;
        } while (e->z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
        return e->z.avail_in == 0 ? 0 : -1;
    }
    if (e->type == CZ_BR) {
        BrotliEncoderOperation op = mode == CZ_END     ? BROTLI_OPERATION_FINISH
                                    : mode == CZ_FLUSH ? BROTLI_OPERATION_FLUSH
                                                       : BROTLI_OPERATION_PROCESS;
        const uint8_t *next_in = (const uint8_t *)data;
        size_t avail_in = len;
        if (!len && mode == CZ_CONTINUE) return 0;
        for (;;) {
            uint8_t *next_out = out;
            size_t avail_out = sizeof(out);
            if (!BrotliEncoderCompressStream(e->br, op, &avail_in, &next_in, &avail_out,
                                             &next_out, NULL))
                return -1;
            if (cz_emit(host, req, out, sizeof(out) - avail_out) < 0) return -1;
            if (avail_in == 0 && !BrotliEncoderHasMoreOutput(e->br) &&
                (op != BROTLI_OPERATION_FINISH || BrotliEncoderIsFinished(e->br)))
                break;
        }
        return 0;
    }
    {
        ZSTD_EndDirective dir = mode == CZ_END     ? ZSTD_e_end
                                : mode == CZ_FLUSH ? ZSTD_e_flush
                                                   : ZSTD_e_continue;
        ZSTD_inBuffer in = {data, len, 0};
        size_t left;
        if (!len && mode == CZ_CONTINUE) return 0;
        do {
            ZSTD_outBuffer ob = {out, sizeof(out), 0};
            left = ZSTD_compressStream2(e->zs, &ob, &in, dir);
            if (ZSTD_isError(left)) return -1;
            if (cz_emit(host, req, out, ob.pos) < 0) return -1;
        } while (dir == ZSTD_e_continue ? in.pos < in.size : left != 0);
        return 0;
    }
}

/** Worker thread (the request's).  Frees the request's encoder, if it
 *  still has one. */
static void cz_req_release(struct cz_req *s)
{
    cz_enc_free(s->coder);
    s->coder = NULL;
}

/** Worker thread, from host->req_on_end: the exchange is over.  An
 *  encoder still there means it ended before the last piece (client gone,
 *  server cut, relais stopping): freed, with a DEBUG line. */
static void cz_on_end(void *arg)
{
    struct cz_req *s = arg;

    if (!s->coder) return;
    s->in->host->log(RELAIS_LOG_DEBUG, s->in->name,
                     "freed the %s encoder of an exchange that ended early", cz_names[s->enc]);
    cz_req_release(s);
}

/* ---- media types -------------------------------------------------------- */

/** 1 when c may appear in an RFC 9110 token. */
static int cz_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/**
 * Any thread.  Parses s[0..len) as a media type with parameters, the way
 * Go's mime.ParseMediaType accepts it (type lower-cased, optional
 * "/subtype", parameters token=token or token="quoted", names
 * lower-cased, a repeated name is an error).  0, or -1 when it does not
 * parse or exceeds the caps.
 */
static int cz_mtype_parse(const char *s, size_t len, struct cz_mtype *mt)
{
    size_t i = 0, n = 0;
    int slash = 0;

    memset(mt, 0, sizeof(*mt));
    while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
    while (i < len && (cz_tchar((unsigned char)s[i]) || (s[i] == '/' && !slash && n))) {
        if (s[i] == '/') slash = 1;
        if (n + 1 >= CZ_MAX_TOKEN) return -1;
        mt->type[n++] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
        i++;
    }
    if (!n || mt->type[n - 1] == '/') return -1;
    for (;;) {
        struct cz_param *p;
        size_t k = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == len) break;
        if (s[i] != ';') return -1;
        i++;
        while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == len) break; /* a trailing ";" is tolerated, as in Go */
        if (mt->nparams >= CZ_MAX_PARAMS) return -1;
        p = &mt->params[mt->nparams];
        while (i < len && cz_tchar((unsigned char)s[i])) {
            if (k + 1 >= CZ_MAX_TOKEN) return -1;
            p->name[k++] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
            i++;
        }
        if (!k || i == len || s[i] != '=') return -1;
        i++;
        k = 0;
        if (i < len && s[i] == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < len) i++;
                if (k + 1 >= CZ_MAX_TOKEN) return -1;
                p->value[k++] = s[i];
            }
            if (i == len) return -1;
            i++;
        } else {
            while (i < len && cz_tchar((unsigned char)s[i])) {
                if (k + 1 >= CZ_MAX_TOKEN) return -1;
                p->value[k++] = s[i++];
            }
            if (!k) return -1;
        }
        for (size_t j = 0; j < mt->nparams; j++)
            if (!strcmp(mt->params[j].name, p->name)) return -1;
        mt->nparams++;
    }
    return 0;
}

/** Any thread.  1 when the configured pattern matches mt: same type, and
 *  when the pattern has parameters, exactly the same parameters. */
static int cz_mtype_match(const struct cz_mtype *pat, const struct cz_mtype *mt)
{
    if (strcmp(pat->type, mt->type)) return 0;
    if (!pat->nparams) return 1;
    if (pat->nparams != mt->nparams) return 0;
    for (size_t i = 0; i < pat->nparams; i++) {
        size_t j;
        for (j = 0; j < mt->nparams; j++)
            if (!strcmp(pat->params[i].name, mt->params[j].name) &&
                !strcmp(pat->params[i].value, mt->params[j].value))
                break;
        if (j == mt->nparams) return 0;
    }
    return 1;
}

/** Any thread.  1 when mt matches one of list[0..n). */
static int cz_mtype_in(const struct cz_mtype *list, size_t n, const struct cz_mtype *mt)
{
    for (size_t i = 0; i < n; i++)
        if (cz_mtype_match(&list[i], mt)) return 1;
    return 0;
}

/* ---- configuration ------------------------------------------------------ */

/** Control thread.  Frees an instance; NULL is a no-op.  No encoder is
 *  left: each was freed by its exchange (last piece or end callback). */
static void cz_destroy(void *inst)
{
    struct cz_inst *in = inst;

    if (!in) return;
    free(in->excl);
    free(in->incl);
    free(in->name);
    free(in);
}

/** Encoding named s[0..len) (exact, as Traefik), or CZ_NONE. */
static int cz_enc_byname(const char *s, size_t len)
{
    for (int e = CZ_GZIP; e <= CZ_ZSTD; e++)
        if (strlen(cz_names[e]) == len && !memcmp(cz_names[e], s, len)) return e;
    return CZ_NONE;
}

/**
 * Control thread.  Calls item(in, node, key, text, len, index) for every
 * string of the list option cfg.key: a YAML list of strings, or one
 * string of comma-separated items (a label or KV value; blanks trimmed,
 * empty items dropped).  *count gets the number of items.  0, or -1 after
 * a cfg_error (wrong type, or item failed).
 */
static int cz_list(struct cz_inst *in, const relais_cfg *cfg, const char *key, size_t *count,
                   int (*item)(struct cz_inst *in, const relais_cfg *node, const char *key,
                               const char *s, size_t len, size_t idx))
{
    const relais_host *h = in->host;
    const relais_cfg *node = h->cfg_get(cfg, key);
    int t = h->cfg_type(node), rc = 0;

    *count = 0;
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t == RELAIS_CFG_STRING) {
        const char *s = NULL, *p;
        if (h->cfg_string(cfg, key, &s) != RELAIS_CFG_OK) return -1;
        for (p = s; *p;) {
            const char *e = strchr(p, ','), *b = p;
            size_t n;
            if (!e) e = p + strlen(p);
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            n = (size_t)(e - b);
            while (n && (b[n - 1] == ' ' || b[n - 1] == '\t')) n--;
            if (n && item(in, cfg, key, b, n, (*count)++) < 0) rc = -1;
            p = *e ? e + 1 : e;
        }
        return rc;
    }
    if (t != RELAIS_CFG_LIST) {
        h->cfg_error(cfg, key, "expected a list of strings");
        return -1;
    }
    for (size_t i = 0; i < h->cfg_len(node); i++) {
        const relais_cfg *it = h->cfg_at(node, i, NULL);
        const char *s = NULL;
        if (h->cfg_string(it, NULL, &s) != RELAIS_CFG_OK) {
            if (h->cfg_type(it) == RELAIS_CFG_NULL || h->cfg_type(it) == RELAIS_CFG_ABSENT)
                h->cfg_error(it, NULL, "expected a string");
            rc = -1;
            continue;
        }
        if (item(in, it, NULL, s, strlen(s), (*count)++) < 0) rc = -1;
    }
    return rc;
}

/** Control thread: one item of encodings.  0, or -1 after cfg_error. */
static int cz_item_encoding(struct cz_inst *in, const relais_cfg *node, const char *key,
                            const char *s, size_t len, size_t idx)
{
    int e = cz_enc_byname(s, len);

    (void)idx;
    if (e == CZ_NONE) {
        in->host->cfg_error(node, key, "unsupported encoding: %.*s (expected zstd, br or gzip)",
                            (int)(len > 64 ? 64 : len), s);
        return -1;
    }
    for (size_t i = 0; i < in->nencodings; i++)
        if (in->encodings[i] == e) return 0; /* a repeat keeps its first place */
    in->encodings[in->nencodings++] = e;
    return 0;
}

/** Control thread: one item of excludedContentTypes.  0 / -1. */
static int cz_item_excl(struct cz_inst *in, const relais_cfg *node, const char *key,
                        const char *s, size_t len, size_t idx)
{
    (void)idx;
    if (in->nexcl >= CZ_MAX_TYPES + 1) {
        in->host->cfg_error(node, key, "too many content types (at most %d)", CZ_MAX_TYPES);
        return -1;
    }
    if (cz_mtype_parse(s, len, &in->excl[in->nexcl]) < 0) {
        in->host->cfg_error(node, key, "parsing excluded media type: invalid media type \"%.*s\"",
                            (int)(len > 64 ? 64 : len), s);
        return -1;
    }
    in->nexcl++;
    return 0;
}

/** Control thread: one item of includedContentTypes.  0 / -1. */
static int cz_item_incl(struct cz_inst *in, const relais_cfg *node, const char *key,
                        const char *s, size_t len, size_t idx)
{
    (void)idx;
    if (in->nincl >= CZ_MAX_TYPES) {
        in->host->cfg_error(node, key, "too many content types (at most %d)", CZ_MAX_TYPES);
        return -1;
    }
    if (cz_mtype_parse(s, len, &in->incl[in->nincl]) < 0) {
        in->host->cfg_error(node, key, "parsing included media type: invalid media type \"%.*s\"",
                            (int)(len > 64 ? 64 : len), s);
        return -1;
    }
    in->nincl++;
    return 0;
}

/** Control thread.  Reports options other than Traefik's.  0 / -1. */
static int cz_check_keys(const relais_host *h, const relais_cfg *cfg)
{
    static const char *const known[] = {"encodings", "defaultEncoding", "excludedContentTypes",
                                        "includedContentTypes", "minResponseBodyBytes"};
    int rc = 0;

    for (size_t i = 0; i < h->cfg_len(cfg); i++) {
        const char *key = NULL;
        size_t j;
        if (!h->cfg_at(cfg, i, &key) || !key) continue;
        for (j = 0; j < sizeof(known) / sizeof(known[0]); j++)
            if (!strcasecmp(key, known[j])) break;
        if (j == sizeof(known) / sizeof(known[0])) {
            h->cfg_error(cfg, key, "unknown option (expected encodings, defaultEncoding, "
                                   "excludedContentTypes, includedContentTypes, "
                                   "minResponseBodyBytes)");
            rc = -1;
        }
    }
    return rc;
}

/**
 * Control thread.  Reads the options (see the header).  Returns 0 and
 * sets *inst, or -1 after reporting every problem with host->cfg_error.
 */
static int cz_create(const relais_host *host, const relais_cfg *cfg, const char *name,
                     void **inst)
{
    struct cz_inst *in = calloc(1, sizeof(*in));
    const char *def = NULL;
    int64_t min = 0;
    size_t n = 0, nincl = 0;
    int t, rc = 0, r;

    if (!in) goto oom;
    in->host = host;
    in->name = strdup(name ? name : "compress");
    in->excl = calloc(CZ_MAX_TYPES + 1, sizeof(*in->excl));
    in->incl = calloc(CZ_MAX_TYPES, sizeof(*in->incl));
    if (!in->name || !in->excl || !in->incl) goto oom;
    if (!RELAIS_HOST_ABI_AT_LEAST(host, 1, 4) || !RELAIS_HOST_HAS(host, resp_body_filter) ||
        !RELAIS_HOST_HAS(host, resp_body_write) || !RELAIS_HOST_HAS(host, req_on_end)) {
        host->cfg_error(cfg, NULL, "needs a host with ABI 1.4 (response body filters, "
                                   "req_on_end); this one has %u.%u",
                        (unsigned)host->abi_major, (unsigned)host->abi_minor);
        goto fail;
    }
    in->min_size = CZ_DEFAULT_MIN;
    cz_mtype_parse("application/grpc", 16, &in->excl[in->nexcl++]);

    t = host->cfg_type(cfg);
    if (t == RELAIS_CFG_STRING || t == RELAIS_CFG_BOOL) {
        /* "compress=true" (a label) or "compress: true": the defaults */
        int b = 0;
        const char *s = NULL;
        if ((t == RELAIS_CFG_BOOL && host->cfg_bool(cfg, NULL, &b) == RELAIS_CFG_OK && b) ||
            (t == RELAIS_CFG_STRING && host->cfg_string(cfg, NULL, &s) == RELAIS_CFG_OK &&
             (!*s || !strcasecmp(s, "true")))) {
            t = RELAIS_CFG_ABSENT;
        } else {
            host->cfg_error(cfg, NULL, "expected a map (encodings, defaultEncoding, "
                                       "excludedContentTypes, includedContentTypes, "
                                       "minResponseBodyBytes)");
            goto fail;
        }
    } else if (t != RELAIS_CFG_MAP && t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        host->cfg_error(cfg, NULL, "expected a map (encodings, defaultEncoding, "
                                   "excludedContentTypes, includedContentTypes, "
                                   "minResponseBodyBytes)");
        goto fail;
    }
    if (t == RELAIS_CFG_MAP) {
        if (cz_check_keys(host, cfg) < 0) rc = -1;
        t = host->cfg_type(host->cfg_get(cfg, "encodings"));
        if (cz_list(in, cfg, "encodings", &n, cz_item_encoding) < 0) {
            rc = -1;
        } else if ((t == RELAIS_CFG_LIST || t == RELAIS_CFG_STRING) && n == 0) {
            host->cfg_error(cfg, "encodings", "at least one encoding must be specified");
            rc = -1;
        }
        r = host->cfg_string(cfg, "defaultEncoding", &def);
        if (r == RELAIS_CFG_INVALID) rc = -1;
        if (cz_list(in, cfg, "excludedContentTypes", &n, cz_item_excl) < 0) rc = -1;
        if (cz_list(in, cfg, "includedContentTypes", &nincl, cz_item_incl) < 0) rc = -1;
        if (n > 0 && nincl > 0) {
            host->cfg_error(cfg, "includedContentTypes",
                            "excludedContentTypes and includedContentTypes options are "
                            "mutually exclusive");
            rc = -1;
        }
        r = host->cfg_int(cfg, "minResponseBodyBytes", &min);
        if (r == RELAIS_CFG_INVALID) rc = -1;
        if (r == RELAIS_CFG_OK && min > 0) in->min_size = min;
    }
    if (in->nencodings == 0) {
        in->encodings[0] = CZ_ZSTD;
        in->encodings[1] = CZ_BR;
        in->encodings[2] = CZ_GZIP;
        in->nencodings = 3;
    }
    if (def && *def) {
        size_t i;
        in->default_enc = cz_enc_byname(def, strlen(def));
        for (i = 0; i < in->nencodings; i++)
            if (in->encodings[i] == in->default_enc) break;
        if (in->default_enc == CZ_NONE || i == in->nencodings) {
            host->cfg_error(cfg, "defaultEncoding", "unsupported default encoding: %s "
                                                    "(not one of encodings)", def);
            rc = -1;
        }
    }
    if (rc < 0) goto fail;
    *inst = in;
    return 0;
oom:
    host->cfg_error(cfg, NULL, "out of memory");
fail:
    cz_destroy(in);
    return -1;
}

/* ---- the request -------------------------------------------------------- */

/** Priority of an Accept-Encoding item at equal weight (lower wins):
 *  "*" -1, the encodings by their index, identity last; -2 when the item
 *  is none of them. */
static int cz_priority(const struct cz_inst *in, const char *s, size_t len)
{
    int e;

    if (len == 1 && s[0] == '*') return -1;
    if (len == 8 && !strncasecmp(s, "identity", 8)) return (int)in->nencodings;
    for (e = CZ_GZIP; e <= CZ_ZSTD; e++)
        if (strlen(cz_names[e]) == len && !strncasecmp(cz_names[e], s, len))
            for (size_t i = 0; i < in->nencodings; i++)
                if (in->encodings[i] == e) return (int)i;
    return -2;
}

/**
 * Worker thread.  Chooses the encoding for the request's Accept-Encoding
 * headers (see the header for the rules).  Returns an enum cz_enc_type,
 * CZ_NONE for no compression.
 */
static int cz_negotiate(const struct cz_inst *in, relais_hdrs *hdrs)
{
    const relais_host *h = in->host;
    int best_prio = 0, found = 0, nitems = 0;
    double best_q = 0;
    size_t vlen, idx;
    const char *v = h->hdr_get(hdrs, "Accept-Encoding", 0, &vlen);

    if (!v) return in->default_enc;
    if (vlen == 0 && !h->hdr_get(hdrs, "Accept-Encoding", 1, &vlen)) return CZ_NONE;
    for (idx = 0; (v = h->hdr_get(hdrs, "Accept-Encoding", idx, &vlen)) != NULL; idx++) {
        size_t i = 0;
        while (i < vlen && nitems < CZ_MAX_AE_ITEMS) {
            char item[64];
            size_t k = 0, j;
            char *semi;
            double q = 1.0;
            int prio;
            /* one item, blanks removed, truncated to the buffer */
            for (j = i; j < vlen && v[j] != ','; j++)
                if (v[j] != ' ' && v[j] != '\t' && k + 1 < sizeof(item)) item[k++] = v[j];
            item[k] = '\0';
            i = j + 1;
            nitems++;
            semi = strchr(item, ';');
            if (semi) {
                *semi = '\0';
                if (semi[1] == 'q' && semi[2] == '=') {
                    char *end;
                    q = strtod(semi + 3, &end);
                    if (end == semi + 3 || *end || q != q) q = 0; /* Go: unparsable is 0 */
                }
            }
            prio = cz_priority(in, item, strlen(item));
            if (prio == -2 || q <= 0) continue;
            if (!found || q > best_q || (q == best_q && prio < best_prio)) {
                found = 1;
                best_q = q;
                best_prio = prio;
            }
        }
    }
    if (!found) return CZ_NONE;
    if (best_prio == -1) return in->default_enc != CZ_NONE ? in->default_enc : in->encodings[0];
    if (best_prio == (int)in->nencodings) return CZ_NONE; /* identity */
    return in->encodings[best_prio];
}

/** Worker thread: chooses the encoding; nothing is changed on the request. */
static int cz_on_request(void *inst, relais_req *req, void **ctx)
{
    struct cz_inst *in = inst;
    const relais_host *h = in->host;
    relais_hdrs *hdrs = h->req_headers(req);
    size_t len;
    const char *m = h->req_method(req, &len), *ct;
    struct cz_req *s;
    int enc;

    if (m && len == 4 && !memcmp(m, "HEAD", 4)) return RELAIS_NEXT;
    ct = h->hdr_get(hdrs, "Content-Type", 0, &len);
    if (ct) {
        struct cz_mtype mt;
        if (cz_mtype_parse(ct, len, &mt) == 0 && cz_mtype_in(in->excl, in->nexcl, &mt))
            return RELAIS_NEXT;
    }
    enc = cz_negotiate(in, hdrs);
    if (enc == CZ_NONE) return RELAIS_NEXT;
    s = h->req_alloc(req, sizeof(*s));
    if (!s) return RELAIS_NEXT; /* request memory exhausted: serve it uncompressed */
    memset(s, 0, sizeof(*s));
    s->in = in;
    s->enc = enc;
    *ctx = s;
    return RELAIS_NEXT;
}

/** 1 when some Vary header of h already names Accept-Encoding. */
static int cz_vary_has(const relais_host *host, relais_hdrs *h)
{
    size_t vlen;
    const char *v;

    for (size_t idx = 0; (v = host->hdr_get(h, "Vary", idx, &vlen)) != NULL; idx++) {
        size_t i = 0;
        while (i < vlen) {
            size_t b, e;
            while (i < vlen && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
            b = i;
            while (i < vlen && v[i] != ',') i++;
            e = i;
            while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
            if ((e - b == 15 && !strncasecmp(v + b, "Accept-Encoding", 15)) ||
                (e - b == 1 && v[b] == '*'))
                return 1;
        }
    }
    return 0;
}

/** Parses a Content-Length value; -1 when it is not plain digits. */
static int64_t cz_parse_len(const char *v, size_t len)
{
    int64_t n = 0;

    if (!len) return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (INT64_MAX - 9) / 10) return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/** Worker thread: decides from the response head whether to compress,
 *  and if so sets up the encoder and the headers (see the header). */
static int cz_on_response(void *inst, relais_req *req, void **ctx)
{
    struct cz_inst *in = inst;
    const relais_host *h = in->host;
    struct cz_req *s = *ctx;
    relais_hdrs *rh;
    const char *v;
    size_t vlen;

    if (!s || !(rh = h->resp_headers(req))) return RELAIS_NEXT;
    if (!cz_vary_has(h, rh)) h->hdr_add(rh, "Vary", "Accept-Encoding", 15);
    if (((v = h->hdr_get(rh, "Content-Encoding", 0, &vlen)) && vlen) ||
        h->hdr_get(rh, "Content-Range", 0, &vlen) || h->resp_status(req) == 206)
        return RELAIS_NEXT;
    if ((v = h->hdr_get(rh, "Content-Type", 0, &vlen)) && vlen) {
        struct cz_mtype mt;
        if (cz_mtype_parse(v, vlen, &mt) < 0) return RELAIS_NEXT;
        if (in->nincl ? !cz_mtype_in(in->incl, in->nincl, &mt)
                      : cz_mtype_in(in->excl, in->nexcl, &mt))
            return RELAIS_NEXT;
    }
    if ((v = h->hdr_get(rh, "Content-Length", 0, &vlen))) {
        int64_t cl = cz_parse_len(v, vlen);
        if (cl < 0 || cl < in->min_size) return RELAIS_NEXT;
    } else {
        s->streaming = 1;
    }
    cz_req_release(s); /* a second on_response (none expected) leaks nothing */
    s->coder = cz_enc_new(s->enc);
    if (!s->coder) {
        h->log(RELAIS_LOG_WARN, in->name, "out of memory for a %s encoder: sent uncompressed",
               cz_names[s->enc]);
        return RELAIS_NEXT;
    }
    /* from here the exchange's end frees the encoder, however it ends */
    if (!s->on_end_set) {
        if (h->req_on_end(req, cz_on_end, s) < 0) {
            h->log(RELAIS_LOG_WARN, in->name, "no end callback left for this request: "
                                              "sent uncompressed");
            cz_req_release(s);
            return RELAIS_NEXT;
        }
        s->on_end_set = 1;
    }
    if (h->resp_body_filter(req) < 0) {
        cz_req_release(s);
        return RELAIS_NEXT;
    }
    h->hdr_set(rh, "Content-Encoding", cz_names[s->enc], strlen(cz_names[s->enc]));
    h->hdr_del(rh, "Accept-Ranges");
    return RELAIS_NEXT;
}

/** Worker thread: the filter.  Compresses each piece; flushes after it
 *  for a stream of unknown length; finishes and frees at the end. */
static int cz_on_body(void *inst, relais_req *req, void **ctx, const char *data, size_t len,
                      int last)
{
    struct cz_inst *in = inst;
    struct cz_req *s = *ctx;
    int rc = 0;

    if (!s || !s->coder) {
        /* not reachable: the filter is only set with an encoder, and the
         * encoder only goes with the last piece or a failure */
        in->host->log(RELAIS_LOG_WARN, in->name, "no encoder for a body piece: response cut");
        return RELAIS_ERROR;
    }
    /* zlib takes at most 4 GiB per call: split larger pieces */
    while (len > (1u << 30) && rc == 0) {
        rc = cz_enc_run(in->host, req, s->coder, data, 1u << 30, CZ_CONTINUE);
        data += 1u << 30;
        len -= 1u << 30;
    }
    if (rc == 0)
        rc = cz_enc_run(in->host, req, s->coder, data, len,
                        last ? CZ_END : s->streaming && len ? CZ_FLUSH : CZ_CONTINUE);
    if (last || rc < 0) cz_req_release(s);
    if (rc < 0) {
        in->host->log(RELAIS_LOG_DEBUG, in->name, "%s encoder or write failed: response cut",
                      cz_names[s->enc]);
        return RELAIS_ERROR;
    }
    return RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops cz_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = cz_create,
    .destroy = cz_destroy,
    .on_request = cz_on_request,
    .on_response = cz_on_response,
    .on_response_body = cz_on_body,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "compress",
    "1.0.0",
    "compress",
    "compresses responses with gzip, brotli or zstd (Traefik's compress)",
    NULL,
    NULL,
    &cz_ops,
};
