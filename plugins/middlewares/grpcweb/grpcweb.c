/*
 * grpcweb — Traefik's grpcWeb middleware (config key "grpcWeb").
 * Module prefix: gw_.
 *
 * Lets browsers (gRPC-Web, grpc/grpc PROTOCOL-WEB.md) call gRPC servers
 * that relais reaches over HTTP/2 (h2c:// or https:// servers):
 *
 *   http:
 *     middlewares:
 *       gw:
 *         grpcWeb:
 *           allowOrigins: ["https://app.example", "*"]   # default []
 *
 * allowOrigins is a list of strings, or one string of comma-separated items
 * (a label or KV value).  An origin is allowed when it equals an item
 * exactly, or any origin when an item is "*" (Traefik's origin function).
 * `grpcWeb: {}` and an absent map mean no allowed origin (the protocol
 * bridge still works for same-origin callers).  A value that is not a map,
 * an unknown option, an allowOrigins that is neither a list nor a string,
 * or an item that is not a string is reported with its key path (the
 * middleware and its routers are then disabled).
 *
 * Behaviour, as Traefik's (improbable-eng/grpc-web wrapped with rs/cors):
 *
 *  - A gRPC-Web call is a POST whose Content-Type is application/grpc-web
 *    or application/grpc-web-text, optionally followed by "+fmt" and/or
 *    parameters (compared case-insensitively).  Towards the server it
 *    becomes application/grpc (the suffix kept: grpc-web+proto ->
 *    grpc+proto), "te: trailers" is set, and the body goes through a
 *    request body filter (ABI 1.5), so the host drops Content-Length: in
 *    binary mode the bytes pass unchanged, in text mode they are
 *    base64-decoded as they stream (whitespace ignored; padded chunks may
 *    follow each other, the PROTOCOL-WEB rule; a final group without
 *    padding is accepted; anything else is not base64 and aborts the
 *    exchange: 400 when nothing was answered yet).
 *  - Its response, when the server answers with an application/grpc
 *    content type: Content-Type becomes the one the client sent, a
 *    "Trailer" announcement is removed, and
 *    Access-Control-Expose-Headers lists the response's header names
 *    (access-control-* left out) followed by grpc-status and grpc-message.
 *    A Trailers-Only response (grpc-status among the headers) stays as it
 *    is: headers, no body.  Otherwise the body passes through a response
 *    body filter (ABI 1.4): the message frames unchanged, then, at the
 *    end, the response trailers (host->resp_trailers, ABI 1.5) are removed
 *    from the trailers and appended as one gRPC-Web trailer frame: flag
 *    byte 0x80, the 4-byte big-endian length, then "name: value\r\n" per
 *    field, names lower-cased, in the order received.  In text mode the
 *    whole body (frames and trailer frame) is base64-encoded as it
 *    streams, each frame as one padded base64 part (PROTOCOL-WEB allows
 *    padded parts one after the other; Traefik pads at each flush): a
 *    3-byte group split between pieces is carried to the next piece, and
 *    a complete message is sent at once instead of waiting with its last
 *    one or two bytes for the next message.  The text is thus
 *    base64(frame 1) base64(frame 2) ... base64(trailer frame), however
 *    the server's body was cut into pieces.  A response of another
 *    content type (a relais error page, a server that is not gRPC) only
 *    gets the CORS headers.
 *  - CORS on a gRPC-Web call's response (rs/cors' actual request):
 *    "Vary: Origin"; when its Origin is allowed,
 *    Access-Control-Allow-Origin: <the origin> and
 *    Access-Control-Allow-Credentials: true.  The call is forwarded
 *    whatever its Origin (CORS is the browser's to enforce).
 *  - A preflight (improbable-eng's rule: OPTIONS with an
 *    Access-Control-Request-Method and x-grpc-web among the
 *    Access-Control-Request-Headers) is answered here: 200, no body,
 *    "Vary: Origin", "Vary: Access-Control-Request-Method", "Vary:
 *    Access-Control-Request-Headers"; when the Origin is allowed and the
 *    method is GET, HEAD, POST or OPTIONS (rs/cors' defaults) also
 *    Access-Control-Allow-Origin: <the origin>,
 *    Access-Control-Allow-Methods: <the method, upper case>,
 *    Access-Control-Allow-Headers: <the requested headers in canonical
 *    form, joined with ", "> (any header is allowed),
 *    Access-Control-Allow-Credentials: true and Access-Control-Max-Age:
 *    600.
 *  - Every other request (and its response) passes untouched.
 *
 * Memory: per call a small state from host->req_alloc; pieces are
 * transformed through stack buffers; the trailer frame is built in one
 * heap block freed at once.  Nothing is kept across exchanges, so nothing
 * needs freeing when an exchange ends early.
 *
 * Threading: create/destroy on the control thread; the rest on the
 * request's worker thread; the instance is read-only after create.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <relais/plugin.h>

#define GW_MAX_ORIGINS 256   /* cap on allowOrigins items */
#define GW_BUF 12288         /* stack buffer of one transform step (a
                                multiple of 3 and 4) */
#define GW_MAX_AGE "600"     /* preflight cache, improbable-eng's 10 min */

/** One configured instance (read-only once created). */
struct gw_inst {
    const relais_host *host; /* host function table */
    char *name;              /* instance name (owned), for logs */
    char **origins;          /* allowOrigins items (owned strings) */
    size_t norigins;         /* how many */
    int any;                 /* 1 when an item is "*" */
};

/** Per-call state of a gRPC-Web call (request memory). */
struct gw_req {
    const struct gw_inst *in; /* the instance */
    int text;                 /* 1 for application/grpc-web-text */
    const char *ctype;        /* the client's Content-Type (request memory) */
    size_t ctype_len;         /* its length */
    const char *origin;       /* the Origin when allowed (request memory),
                                 else NULL */
    int framing;              /* the response body filter is installed */
    char dec[4];              /* base64 characters of an unfinished group
                                 (request body, text mode) */
    size_t ndec;              /* how many */
    unsigned char enc[3];     /* bytes of an unfinished 3-byte group
                                 (response body, text mode) */
    size_t nenc;              /* how many */
    unsigned char fhdr[5];    /* header of the response frame being passed
                                 (text mode): flags, 4-byte length */
    size_t nfhdr;             /* header bytes seen (5: in the payload) */
    uint32_t fleft;           /* payload bytes of that frame still to come */
};

/* ---- small helpers ------------------------------------------------------ */

/** 1 when s[0..len) begins with the NUL-terminated prefix, ignoring case. */
static int gw_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && !strncasecmp(s, prefix, n);
}

/**
 * Parses a gRPC-Web Content-Type: "application/grpc-web" or
 * "application/grpc-web-text" followed by nothing, "+fmt" or ";params".
 * Returns 1 (binary) or 2 (text) and sets *rest to the offset of what
 * follows the base type; 0 when it is not gRPC-Web.
 */
static int gw_web_ctype(const char *ct, size_t len, size_t *rest)
{
    static const char web[] = "application/grpc-web", text[] = "application/grpc-web-text";
    int mode;
    size_t n;

    if (gw_prefix(ct, len, text)) {
        mode = 2;
        n = sizeof(text) - 1;
    } else if (gw_prefix(ct, len, web)) {
        mode = 1;
        n = sizeof(web) - 1;
    } else {
        return 0;
    }
    if (n < len && ct[n] != '+' && ct[n] != ';' && ct[n] != ' ') return 0;
    *rest = n;
    return mode;
}

/** 1 when a response Content-Type is gRPC: application/grpc, alone or
 *  followed by "+fmt" or parameters. */
static int gw_grpc_ctype(const char *ct, size_t len)
{
    static const char grpc[] = "application/grpc";
    size_t n = sizeof(grpc) - 1;

    if (!gw_prefix(ct, len, grpc)) return 0;
    return n == len || ct[n] == '+' || ct[n] == ';' || ct[n] == ' ';
}

/** 1 when the comma/blank-separated list v[0..len) holds token, ignoring
 *  case. */
static int gw_list_has(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < len) {
        size_t b;
        while (i < len && (v[i] == ',' || v[i] == ' ' || v[i] == '\t')) i++;
        b = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
        if (i - b == tl && !strncasecmp(v + b, token, tl)) return 1;
    }
    return 0;
}

/** 1 when origin[0..len) is allowed by the instance (exact match or "*");
 *  an empty origin never is. */
static int gw_origin_ok(const struct gw_inst *in, const char *origin, size_t len)
{
    if (!len) return 0;
    if (in->any) return 1;
    for (size_t i = 0; i < in->norigins; i++)
        if (strlen(in->origins[i]) == len && !memcmp(in->origins[i], origin, len)) return 1;
    return 0;
}

/** A NUL-terminated copy of s[0..len) in request memory, or NULL. */
static char *gw_req_strndup(const relais_host *h, relais_req *req, const char *s, size_t len)
{
    char *p = h->req_alloc(req, len + 1);

    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* ---- base64 ------------------------------------------------------------- */

/** The standard base64 alphabet (RFC 4648, section 4). */
static const char gw_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Value of a base64 character, or -1. */
static int gw_b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/** Encodes the 3 bytes in[0..3) as 4 characters at out. */
static void gw_b64_enc3(const unsigned char *in, char *out)
{
    out[0] = gw_b64[in[0] >> 2];
    out[1] = gw_b64[((in[0] & 3) << 4) | (in[1] >> 4)];
    out[2] = gw_b64[((in[1] & 15) << 2) | (in[2] >> 6)];
    out[3] = gw_b64[in[2] & 63];
}

/**
 * Decodes one group of 4 characters (padding '=' allowed in the last two
 * places, "x=" not followed by '=' refused) into out.  Returns the number
 * of bytes (1..3), or -1 when the group is not base64.
 */
static int gw_b64_dec4(const char *g, unsigned char *out)
{
    int a = gw_b64_val(g[0]), b = gw_b64_val(g[1]), c, d;

    if (a < 0 || b < 0) return -1;
    out[0] = (unsigned char)((a << 2) | (b >> 4));
    if (g[2] == '=') return g[3] == '=' ? 1 : -1;
    if ((c = gw_b64_val(g[2])) < 0) return -1;
    out[1] = (unsigned char)(((b & 15) << 4) | (c >> 2));
    if (g[3] == '=') return 2;
    if ((d = gw_b64_val(g[3])) < 0) return -1;
    out[2] = (unsigned char)(((c & 3) << 6) | d);
    return 3;
}

/* ---- the request -------------------------------------------------------- */

/** Canonical form of a header name (Go's textproto): upper case at the
 *  start and after '-', lower case elsewhere; written to out. */
static size_t gw_canon(const char *s, size_t len, char *out)
{
    int up = 1;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (up && c >= 'a' && c <= 'z') c = (char)(c - 32);
        else if (!up && c >= 'A' && c <= 'Z') c = (char)(c + 32);
        out[i] = c;
        up = c == '-';
    }
    return len;
}

/**
 * Worker thread.  Answers a preflight (see the header): 200 with the Vary
 * headers, plus the Access-Control-Allow-* ones when the origin and the
 * method are allowed.  Returns RELAIS_DONE, or RELAIS_ERROR when out of
 * request memory or the answer cannot be made.
 */
static int gw_preflight(const struct gw_inst *in, relais_req *req, relais_hdrs *rh,
                        const char *method, size_t mlen)
{
    const relais_host *h = in->host;
    relais_header out[9];
    size_t n = 0, olen = 0, hlen = 0;
    const char *origin = h->hdr_get(rh, "Origin", 0, &olen);
    const char *rhdrs = h->hdr_get(rh, "Access-Control-Request-Headers", 0, &hlen);
    static const char *const methods[] = {"GET", "HEAD", "POST", "OPTIONS"};

    out[n++] = (relais_header){"Vary", "Origin"};
    out[n++] = (relais_header){"Vary", "Access-Control-Request-Method"};
    out[n++] = (relais_header){"Vary", "Access-Control-Request-Headers"};
    if (origin && gw_origin_ok(in, origin, olen)) {
        const char *m = NULL;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            if (strlen(methods[i]) == mlen && !strncasecmp(methods[i], method, mlen))
                m = methods[i];
        if (m) {
            char *o = gw_req_strndup(h, req, origin, olen);
            char *list = h->req_alloc(req, 2 * (hlen + 1));
            size_t k = 0, i = 0;
            if (!o || !list) return RELAIS_ERROR;
            /* the requested names, canonical, ", "-separated */
            while (rhdrs && i < hlen) {
                size_t b;
                while (i < hlen && (rhdrs[i] == ',' || rhdrs[i] == ' ' || rhdrs[i] == '\t')) i++;
                b = i;
                while (i < hlen && rhdrs[i] != ',' && rhdrs[i] != ' ' && rhdrs[i] != '\t') i++;
                if (i == b) continue;
                if (k) {
                    list[k++] = ',';
                    list[k++] = ' ';
                }
                k += gw_canon(rhdrs + b, i - b, list + k);
            }
            list[k] = '\0';
            out[n++] = (relais_header){"Access-Control-Allow-Origin", o};
            out[n++] = (relais_header){"Access-Control-Allow-Methods", m};
            if (k) out[n++] = (relais_header){"Access-Control-Allow-Headers", list};
            out[n++] = (relais_header){"Access-Control-Allow-Credentials", "true"};
            out[n++] = (relais_header){"Access-Control-Max-Age", GW_MAX_AGE};
        }
    }
    if (h->respond(req, 200, out, n, "", 0) < 0) return RELAIS_ERROR;
    return RELAIS_DONE;
}

/**
 * Worker thread.  A preflight is answered; a gRPC-Web call is turned into
 * a gRPC one (Content-Type, te, body filter) and gets its per-call state;
 * anything else passes untouched.
 */
static int gw_on_request(void *inst, relais_req *req, void **ctx)
{
    struct gw_inst *in = inst;
    const relais_host *h = in->host;
    relais_hdrs *rh = h->req_headers(req);
    size_t mlen = 0, len = 0, rest = 0, olen = 0;
    const char *m = h->req_method(req, &mlen), *ct, *v, *origin;
    struct gw_req *s;
    char *grpc_ct;
    int mode, allowed;

    if (!m) return RELAIS_NEXT;
    if (mlen == 7 && !memcmp(m, "OPTIONS", 7)) {
        const char *acrm = h->hdr_get(rh, "Access-Control-Request-Method", 0, &len);
        size_t alen = len;
        if (acrm && alen && (v = h->hdr_get(rh, "Access-Control-Request-Headers", 0, &len)) &&
            gw_list_has(v, len, "x-grpc-web"))
            return gw_preflight(in, req, rh, acrm, alen);
        return RELAIS_NEXT;
    }
    if (mlen != 4 || memcmp(m, "POST", 4)) return RELAIS_NEXT;
    ct = h->hdr_get(rh, "Content-Type", 0, &len);
    if (!ct || !(mode = gw_web_ctype(ct, len, &rest))) return RELAIS_NEXT;

    s = h->req_alloc(req, sizeof(*s));
    grpc_ct = h->req_alloc(req, len + 16);
    if (!s || !grpc_ct) {
        h->log(RELAIS_LOG_WARN, in->name, "request memory exhausted: gRPC-Web call refused");
        return RELAIS_ERROR;
    }
    memset(s, 0, sizeof(*s));
    s->in = in;
    s->text = mode == 2;
    s->ctype = gw_req_strndup(h, req, ct, len);
    s->ctype_len = len;
    origin = h->hdr_get(rh, "Origin", 0, &olen);
    allowed = origin && gw_origin_ok(in, origin, olen);
    if (allowed) s->origin = gw_req_strndup(h, req, origin, olen);
    if (!s->ctype || (allowed && !s->origin)) {
        h->log(RELAIS_LOG_WARN, in->name, "request memory exhausted: gRPC-Web call refused");
        return RELAIS_ERROR;
    }
    /* application/grpc-web[-text]REST -> application/grpcREST */
    memcpy(grpc_ct, "application/grpc", 16);
    memcpy(grpc_ct + 16, ct + rest, len - rest);
    if (h->req_body_filter(req) < 0) {
        h->log(RELAIS_LOG_WARN, in->name, "the host refused the request body filter");
        return RELAIS_ERROR;
    }
    if (h->hdr_set(rh, "Content-Type", grpc_ct, 16 + len - rest) < 0 ||
        h->hdr_set(rh, "te", "trailers", 8) < 0)
        return RELAIS_ERROR;
    *ctx = s;
    return RELAIS_NEXT;
}

/**
 * Worker thread: the request body filter.  Binary mode passes the bytes
 * on; text mode decodes base64 as it streams (groups split between pieces
 * carried in the state).  RELAIS_ERROR when the text is not base64 or a
 * write is refused.
 */
static int gw_on_request_body(void *inst, relais_req *req, void **ctx, const char *data,
                              size_t len, int last)
{
    struct gw_inst *in = inst;
    const relais_host *h = in->host;
    struct gw_req *s = *ctx;
    unsigned char out[GW_BUF];
    size_t o = 0;

    if (!s) return RELAIS_ERROR; /* not reachable: the filter comes with the state */
    if (!s->text) return len && h->req_body_write(req, data, len) < 0 ? RELAIS_ERROR : RELAIS_NEXT;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        int k;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        s->dec[s->ndec++] = c;
        if (s->ndec < 4) continue;
        s->ndec = 0;
        if ((k = gw_b64_dec4(s->dec, out + o)) < 0) goto bad;
        o += (size_t)k;
        if (o + 3 > sizeof(out)) {
            if (h->req_body_write(req, (const char *)out, o) < 0) return RELAIS_ERROR;
            o = 0;
        }
    }
    if (last && s->ndec) {
        /* a final group without its padding */
        int k;
        if (s->ndec == 1) goto bad;
        while (s->ndec < 4) s->dec[s->ndec++] = '=';
        s->ndec = 0;
        if ((k = gw_b64_dec4(s->dec, out + o)) < 0) goto bad;
        o += (size_t)k;
    }
    if (o && h->req_body_write(req, (const char *)out, o) < 0) return RELAIS_ERROR;
    return RELAIS_NEXT;
bad:
    h->log(RELAIS_LOG_DEBUG, in->name, "grpc-web-text request body is not base64: call aborted");
    return RELAIS_ERROR;
}

/* ---- the response ------------------------------------------------------- */

/**
 * Worker thread.  Sets Access-Control-Expose-Headers to the names of the
 * response headers (each once, access-control-* left out) followed by
 * grpc-status and grpc-message.  0, or -1 out of request memory.
 */
static int gw_expose(const relais_host *h, relais_req *req, relais_hdrs *rh)
{
    size_t n = h->hdr_count(rh), cap = 32, k = 0;
    char *list;

    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nl, vl;
        if (h->hdr_at(rh, i, &name, &nl, &value, &vl) == 0) cap += nl + 2;
    }
    if (!(list = h->req_alloc(req, cap))) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nl, vl, j;
        if (h->hdr_at(rh, i, &name, &nl, &value, &vl) < 0 ||
            gw_prefix(name, nl, "access-control-"))
            continue;
        for (j = 0; j < i; j++) { /* first of its name only */
            const char *n2, *v2;
            size_t l2, w2;
            if (h->hdr_at(rh, j, &n2, &l2, &v2, &w2) == 0 && l2 == nl &&
                !strncasecmp(n2, name, nl))
                break;
        }
        if (j < i) continue;
        if (k) {
            memcpy(list + k, ", ", 2);
            k += 2;
        }
        memcpy(list + k, name, nl);
        k += nl;
    }
    memcpy(list + k, k ? ", grpc-status, grpc-message" : "grpc-status, grpc-message",
           k ? 27 : 25);
    k += k ? 27 : 25;
    return h->hdr_set(rh, "Access-Control-Expose-Headers", list, k);
}

/**
 * Worker thread.  For a gRPC-Web call: the CORS headers; and when the
 * server answered gRPC, the client's Content-Type, the exposed headers and
 * (unless Trailers-Only) the response body filter.
 */
static int gw_on_response(void *inst, relais_req *req, void **ctx)
{
    struct gw_inst *in = inst;
    const relais_host *h = in->host;
    struct gw_req *s = *ctx;
    relais_hdrs *rh;
    const char *ct;
    size_t len;

    if (!s || !(rh = h->resp_headers(req))) return RELAIS_NEXT;
    ct = h->hdr_get(rh, "Content-Type", 0, &len);
    if (ct && gw_grpc_ctype(ct, len)) {
        h->hdr_del(rh, "Trailer");
        if (gw_expose(h, req, rh) < 0 ||
            h->hdr_set(rh, "Content-Type", s->ctype, s->ctype_len) < 0)
            return RELAIS_ERROR;
        /* Trailers-Only (grpc-status among the headers): no body to frame */
        if (!h->hdr_get(rh, "grpc-status", 0, &len) && h->resp_body_filter(req) == 0)
            s->framing = 1;
    }
    h->hdr_add(rh, "Vary", "Origin", 6);
    if (s->origin) {
        h->hdr_set(rh, "Access-Control-Allow-Origin", s->origin, strlen(s->origin));
        h->hdr_set(rh, "Access-Control-Allow-Credentials", "true", 4);
    }
    return RELAIS_NEXT;
}

/** Output of one text-mode step: base64 characters waiting to be
 *  written towards the client. */
struct gw_out {
    char buf[GW_BUF / 3 * 4]; /* the characters */
    size_t n;                 /* how many */
};

/** Worker thread.  Writes what o holds towards the client.  0 / -1. */
static int gw_out_flush(const relais_host *h, relais_req *req, struct gw_out *o)
{
    size_t n = o->n;

    o->n = 0;
    return n ? h->resp_body_write(req, o->buf, n) : 0;
}

/**
 * Worker thread.  Base64-encodes p[0..n) into o, the bytes of an
 * unfinished 3-byte group kept in s (from an earlier call, for a later
 * one); o is flushed whenever full.  0 / -1.
 */
static int gw_text_put(const relais_host *h, relais_req *req, struct gw_req *s,
                       struct gw_out *o, const unsigned char *p, size_t n)
{
    while (n) {
        if (o->n + 4 > sizeof(o->buf) && gw_out_flush(h, req, o) < 0) return -1;
        if (s->nenc == 0 && n >= 3) {
            gw_b64_enc3(p, o->buf + o->n);
            o->n += 4;
            p += 3;
            n -= 3;
            continue;
        }
        s->enc[s->nenc++] = *p++;
        n--;
        if (s->nenc == 3) {
            gw_b64_enc3(s->enc, o->buf + o->n);
            o->n += 4;
            s->nenc = 0;
        }
    }
    return 0;
}

/** Worker thread.  Ends the current base64 part: an unfinished group is
 *  written with its padding.  0 / -1. */
static int gw_text_pad(const relais_host *h, relais_req *req, struct gw_req *s,
                       struct gw_out *o)
{
    unsigned char g[3] = {0, 0, 0};

    if (!s->nenc) return 0;
    if (o->n + 4 > sizeof(o->buf) && gw_out_flush(h, req, o) < 0) return -1;
    memcpy(g, s->enc, s->nenc);
    gw_b64_enc3(g, o->buf + o->n);
    if (s->nenc == 1) o->buf[o->n + 2] = '=';
    o->buf[o->n + 3] = '=';
    o->n += 4;
    s->nenc = 0;
    return 0;
}

/**
 * Worker thread.  Passes p[0..n) of the gRPC-Web body towards the client:
 * as it is in binary mode.  In text mode base64-encoded, each frame as
 * one padded base64 part: the frame headers are followed (state in s) so
 * that a part ends exactly where a frame ends, whichever pieces the
 * frames arrived in — a complete message is never held back waiting for
 * the next piece (the reason Traefik closes its encoder at each flush),
 * and the output does not depend on how the server's body was split.
 * With final, whatever is unfinished is padded out (a body cut inside a
 * frame).  0 / -1.
 */
static int gw_emit(const relais_host *h, relais_req *req, struct gw_req *s,
                   const unsigned char *p, size_t n, int final)
{
    struct gw_out o;

    if (!s->text) return n ? h->resp_body_write(req, (const char *)p, n) : 0;
    o.n = 0;
    while (n) {
        size_t seg;
        int boundary;
        if (s->nfhdr < 5) {
            seg = 5 - s->nfhdr < n ? 5 - s->nfhdr : n;
            memcpy(s->fhdr + s->nfhdr, p, seg);
            s->nfhdr += seg;
            if (s->nfhdr == 5)
                s->fleft = (uint32_t)s->fhdr[1] << 24 | (uint32_t)s->fhdr[2] << 16 |
                           (uint32_t)s->fhdr[3] << 8 | s->fhdr[4];
            boundary = s->nfhdr == 5 && s->fleft == 0;
        } else {
            seg = s->fleft < n ? s->fleft : n;
            s->fleft -= (uint32_t)seg;
            boundary = s->fleft == 0;
        }
        if (gw_text_put(h, req, s, &o, p, seg) < 0) return -1;
        p += seg;
        n -= seg;
        if (boundary) {
            if (gw_text_pad(h, req, s, &o) < 0) return -1;
            s->nfhdr = 0;
        }
    }
    if (final && gw_text_pad(h, req, s, &o) < 0) return -1;
    return gw_out_flush(h, req, &o);
}

/**
 * Worker thread.  Moves the response trailers into a gRPC-Web trailer
 * frame (0x80, length, "name: value\r\n" lines, names lower-cased),
 * deleting them from the trailers, and emits it (encoded in text mode,
 * with the final padding).  0 / -1.
 */
static int gw_trailer_frame(const relais_host *h, relais_req *req, struct gw_req *s)
{
    relais_hdrs *t = h->resp_trailers(req);
    size_t n = t ? h->hdr_count(t) : 0, size = 5, k = 5;
    unsigned char *f;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nl, vl;
        if (h->hdr_at(t, i, &name, &nl, &value, &vl) == 0) size += nl + vl + 4;
    }
    if (size - 5 > UINT32_MAX || !(f = malloc(size))) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nl, vl;
        if (h->hdr_at(t, i, &name, &nl, &value, &vl) < 0) continue;
        for (size_t j = 0; j < nl; j++)
            f[k + j] = (unsigned char)((name[j] >= 'A' && name[j] <= 'Z') ? name[j] + 32 : name[j]);
        k += nl;
        memcpy(f + k, ": ", 2);
        memcpy(f + k + 2, value, vl);
        memcpy(f + k + 2 + vl, "\r\n", 2);
        k += vl + 4;
    }
    f[0] = 0x80;
    f[1] = (unsigned char)((k - 5) >> 24);
    f[2] = (unsigned char)((k - 5) >> 16);
    f[3] = (unsigned char)((k - 5) >> 8);
    f[4] = (unsigned char)(k - 5);
    /* the trailers now travel in the body: none is left for the client */
    while (t && h->hdr_count(t) > 0) {
        const char *name, *value;
        size_t nl, vl, gone;
        char *copy;
        if (h->hdr_at(t, 0, &name, &nl, &value, &vl) < 0 || !(copy = strndup(name, nl))) break;
        gone = h->hdr_del(t, copy);
        free(copy);
        if (!gone) break; /* not reachable: the name was just read */
    }
    rc = gw_emit(h, req, s, f, k, 1);
    free(f);
    return rc;
}

/**
 * Worker thread: the response body filter.  Message frames pass (encoded
 * in text mode); after the last piece comes the trailer frame.
 */
static int gw_on_response_body(void *inst, relais_req *req, void **ctx, const char *data,
                               size_t len, int last)
{
    struct gw_inst *in = inst;
    const relais_host *h = in->host;
    struct gw_req *s = *ctx;

    if (!s || !s->framing) {
        h->log(RELAIS_LOG_WARN, in->name, "body piece without gRPC-Web state: response cut");
        return RELAIS_ERROR;
    }
    if (gw_emit(h, req, s, (const unsigned char *)data, len, 0) < 0 ||
        (last && gw_trailer_frame(h, req, s) < 0)) {
        h->log(RELAIS_LOG_DEBUG, in->name, "write refused or out of memory: response cut");
        return RELAIS_ERROR;
    }
    return RELAIS_NEXT;
}

/* ---- configuration ------------------------------------------------------ */

/** Control thread.  Frees an instance; NULL is a no-op. */
static void gw_destroy(void *inst)
{
    struct gw_inst *in = inst;

    if (!in) return;
    for (size_t i = 0; i < in->norigins; i++) free(in->origins[i]);
    free(in->origins);
    free(in->name);
    free(in);
}

/** Control thread.  Adds one allowOrigins item (empty ones dropped).
 *  0, or -1 after cfg_error (too many, out of memory). */
static int gw_add_origin(struct gw_inst *in, const relais_cfg *node, const char *key,
                         const char *s, size_t len)
{
    if (!len) return 0;
    if (in->norigins >= GW_MAX_ORIGINS) {
        in->host->cfg_error(node, key, "too many origins (at most %d)", GW_MAX_ORIGINS);
        return -1;
    }
    if (!(in->origins[in->norigins] = strndup(s, len))) {
        in->host->cfg_error(node, key, "out of memory");
        return -1;
    }
    if (len == 1 && s[0] == '*') in->any = 1;
    in->norigins++;
    return 0;
}

/**
 * Control thread.  Reads allowOrigins: a list of strings, or one string
 * of comma-separated items (blanks trimmed).  0, or -1 after cfg_error.
 */
static int gw_origins(struct gw_inst *in, const relais_cfg *cfg)
{
    const relais_host *h = in->host;
    const relais_cfg *node = h->cfg_get(cfg, "allowOrigins");
    int t = h->cfg_type(node), rc = 0;

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t == RELAIS_CFG_STRING) {
        const char *s = NULL, *p;
        if (h->cfg_string(cfg, "allowOrigins", &s) != RELAIS_CFG_OK) return -1;
        for (p = s; *p;) {
            const char *e = strchr(p, ','), *b = p;
            size_t n;
            if (!e) e = p + strlen(p);
            while (b < e && (*b == ' ' || *b == '\t')) b++;
            n = (size_t)(e - b);
            while (n && (b[n - 1] == ' ' || b[n - 1] == '\t')) n--;
            if (gw_add_origin(in, cfg, "allowOrigins", b, n) < 0) rc = -1;
            p = *e ? e + 1 : e;
        }
        return rc;
    }
    if (t != RELAIS_CFG_LIST) {
        h->cfg_error(cfg, "allowOrigins", "expected a list of strings");
        return -1;
    }
    for (size_t i = 0; i < h->cfg_len(node); i++) {
        const relais_cfg *it = h->cfg_at(node, i, NULL);
        const char *s = NULL;
        int ty = h->cfg_type(it);
        if (ty != RELAIS_CFG_STRING) {
            h->cfg_error(it, NULL, "expected a string");
            rc = -1;
            continue;
        }
        if (h->cfg_string(it, NULL, &s) != RELAIS_CFG_OK) {
            rc = -1;
            continue;
        }
        if (gw_add_origin(in, it, NULL, s, strlen(s)) < 0) rc = -1;
    }
    return rc;
}

/**
 * Control thread.  Reads the options (see the header).  Returns 0 and
 * sets *inst, or -1 after reporting every problem with host->cfg_error.
 */
static int gw_create(const relais_host *host, const relais_cfg *cfg, const char *name,
                     void **inst)
{
    struct gw_inst *in = calloc(1, sizeof(*in));
    int t, rc = 0;

    if (!in || !(in->name = strdup(name ? name : "grpcWeb")) ||
        !(in->origins = calloc(GW_MAX_ORIGINS, sizeof(*in->origins)))) {
        host->cfg_error(cfg, NULL, "out of memory");
        goto fail;
    }
    in->host = host;
    if (!RELAIS_HOST_ABI_AT_LEAST(host, 1, 5) || !RELAIS_HOST_HAS(host, resp_trailers) ||
        !RELAIS_HOST_HAS(host, req_body_filter) || !RELAIS_HOST_HAS(host, req_body_write) ||
        !RELAIS_HOST_HAS(host, resp_body_filter) || !RELAIS_HOST_HAS(host, resp_body_write)) {
        host->cfg_error(cfg, NULL, "needs a host with ABI 1.5 (trailers, request and response "
                                   "body filters); this one has %u.%u",
                        (unsigned)host->abi_major, (unsigned)host->abi_minor);
        goto fail;
    }
    t = host->cfg_type(cfg);
    if (t == RELAIS_CFG_MAP) {
        for (size_t i = 0; i < host->cfg_len(cfg); i++) {
            const char *key = NULL;
            if (host->cfg_at(cfg, i, &key) && key && strcasecmp(key, "allowOrigins")) {
                host->cfg_error(cfg, key, "unknown option (expected allowOrigins)");
                rc = -1;
            }
        }
        if (gw_origins(in, cfg) < 0) rc = -1;
    } else if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        host->cfg_error(cfg, NULL, "expected a map (allowOrigins)");
        rc = -1;
    }
    if (rc < 0) goto fail;
    *inst = in;
    return 0;
fail:
    gw_destroy(in);
    return -1;
}

/** The operations table. */
static const relais_middleware_ops gw_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = gw_create,
    .destroy = gw_destroy,
    .on_request = gw_on_request,
    .on_response = gw_on_response,
    .on_response_body = gw_on_response_body,
    .on_request_body = gw_on_request_body,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "grpcweb",
    "1.0.0",
    "grpcWeb",
    "bridges gRPC-Web (binary and text) to gRPC servers, with CORS (Traefik grpcWeb)",
    NULL,
    NULL,
    &gw_ops,
};
