/*
 * tracing — see tracing.h.
 *
 * Layout: per worker one ring (struct trc_ring) of length-prefixed span
 * records (a 4-byte length, then the span's JSON object), the producer's
 * cursor on one cache line and the consumer's on another, as the access
 * log does.  A span is published with one release store of the byte
 * cursor after its record is complete, then one of the span count.  The
 * exporter thread wakes every TRC_TICK_MS, and when a batch is due
 * (batchSize spans waiting, flushInterval since the first one, a flush or
 * the stop) copies records into its request body, gives the ring space
 * back at once and POSTs the body; a failed POST is retried from the same
 * body, so memory stays one body plus the rings.
 */
#include "config.h"

#include "tracing.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "arena.h"
#include "conf.h"
#include "httpc.h"
#include "log.h"
#include "netaddr.h"
#include "proxy.h"
#include "snapshot.h"
#include "worker.h"

#define TRC_WHO "tracing"
#define TRC_TICK_MS 10             /* exporter wake-up period */
#define TRC_STOP_MS 2000           /* trc_free sends for at most this long */
#define TRC_RETRY_MS 200           /* first retry delay (doubles) */
#define TRC_BODY_MAX (8u << 20)    /* cap on one export's body */
#define TRC_MAX_NAMES 64           /* captured headers / safe params */
#define TRC_MAX_HDR_ATTRS 16       /* captured header values per name */
#define TRC_MAX_EXPORT_HDRS 32     /* otlp.http.headers */

struct trc_tracer *trc_active;

/** One worker's ring: single producer (the worker), single consumer (the
 *  exporter).  Cursors grow forever; offsets are cursor & mask. */
struct trc_ring {
    _Alignas(64) _Atomic uint64_t head; /* bytes published (producer) */
    _Atomic uint64_t count;             /* spans published (producer) */
    _Atomic uint64_t dropped;           /* spans dropped (producer) */
    uint64_t rng[4];                    /* the producer's xoshiro256** state */
    char *scratch;                      /* the producer's encode buffer */
    _Alignas(64) _Atomic uint64_t tail; /* bytes consumed (exporter) */
    _Atomic uint64_t done;              /* spans consumed (exporter) */
    char *data;                         /* ring_bytes bytes */
};

/** A string list entry (captured header names, safe query params). */
struct trc_name {
    char *s;  /* the name (header names lowercased) */
    size_t n; /* its length */
};

struct trc_tracer {
    /* configuration (read-only after trc_new) */
    char *service_name;            /* serviceName */
    double sample_rate;            /* sampleRate */
    struct trc_name req_hdrs[TRC_MAX_NAMES];  /* capturedRequestHeaders */
    size_t nreq_hdrs;              /* how many */
    struct trc_name resp_hdrs[TRC_MAX_NAMES]; /* capturedResponseHeaders */
    size_t nresp_hdrs;             /* how many */
    struct trc_name safe[TRC_MAX_NAMES];      /* safeQueryParams */
    size_t nsafe;                  /* how many */
    char *endpoint;                /* otlp.http.endpoint */
    relais_header xhdrs[TRC_MAX_EXPORT_HDRS + 1]; /* Content-Type, then
                                                     otlp.http.headers */
    size_t nxhdrs;                 /* how many */
    char *tls_ca, *tls_cert, *tls_key; /* otlp.http.tls (owned) or NULL */
    int tls_insecure;              /* tls.insecureSkipVerify */
    int64_t queue_size;            /* spans per worker ring */
    int64_t batch_size;            /* spans per export */
    int64_t flush_ms;              /* flushInterval */
    int64_t timeout_ms;            /* exportTimeout */
    int64_t max_retries;           /* retries of one export */
    char *prefix;                  /* the body before the spans */
    size_t prefix_len;             /* its length */
    /* rings */
    unsigned nrings;               /* one per worker */
    struct trc_ring *rings;        /* the rings (64-byte aligned) */
    uint64_t ring_bytes;           /* bytes of each (a power of two) */
    /* exporter thread */
    pthread_t thread;              /* the exporter */
    int started;                   /* thread running */
    pthread_mutex_t mu;            /* guards stop, held, flush_* */
    pthread_cond_t cv;             /* wakes the exporter / flush waiters */
    int stop;                      /* trc_free asked to stop */
    int held;                      /* trc_hold */
    uint64_t flush_req;            /* flushes asked */
    uint64_t flush_done;           /* flushes completed */
    int64_t deadline_ms;           /* while stopping: sending ends then
                                      (exporter only) */
    struct event_base *base;       /* the exporter's event loop */
    char *body;                    /* the exporter's request body */
    size_t body_len;               /* its length */
    size_t body_spans;             /* spans in it */
    unsigned rr;                   /* next ring to read first */
    _Atomic uint64_t xdropped;     /* spans lost to failed exports */
    _Atomic uint64_t exported;     /* spans acknowledged */
    uint64_t drop_logged;          /* drops already reported (exporter) */
    int64_t drop_log_ms;           /* last drop report (exporter) */
    int64_t fail_log_ms;           /* last failure report (exporter) */
};

/* ---------------------------------------------------------------- buffer */

/** A bounded output buffer; `over` once something did not fit. */
struct trc_buf {
    char *p;    /* bytes */
    size_t len; /* used */
    size_t cap; /* capacity */
    int over;   /* overflowed */
};

/** Appends n bytes. */
static void tb_put(struct trc_buf *b, const char *s, size_t n)
{
    if (b->over || n > b->cap - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/** Appends a NUL-terminated string. */
static void tb_str(struct trc_buf *b, const char *s) { tb_put(b, s, strlen(s)); }

/** Appends v in decimal (signed). */
static void tb_i64(struct trc_buf *b, int64_t v)
{
    char t[24];
    int i = (int)sizeof(t);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        t[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) t[--i] = '-';
    tb_put(b, t + i, sizeof(t) - (size_t)i);
}

/** Appends n bytes as lowercase hex. */
static void tb_hex(struct trc_buf *b, const uint8_t *v, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    char t[64];

    for (size_t i = 0; i < n && i < 32; i++) {
        t[2 * i] = hx[v[i] >> 4];
        t[2 * i + 1] = hx[v[i] & 15];
    }
    tb_put(b, t, 2 * (n < 32 ? n : 32));
}

/** Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t trc_utf8(const unsigned char *s, size_t n)
{
    size_t need;
    uint32_t cp, min;

    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) need = 2, cp = s[0] & 0x1Fu, min = 0x80;
    else if ((s[0] & 0xF0) == 0xE0) need = 3, cp = s[0] & 0x0Fu, min = 0x800;
    else if ((s[0] & 0xF8) == 0xF0) need = 4, cp = s[0] & 0x07u, min = 0x10000;
    else return 0;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

/** Appends s[0..n) as the inside of a JSON string: quote, backslash and
 *  control bytes escaped, invalid UTF-8 replaced by U+FFFD (protobuf
 *  JSON parsers refuse it). */
static void tb_esc(struct trc_buf *b, const char *s, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0, k;

    while (i < n) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80 && (k = trc_utf8(u + i, n - i)) > 0) {
            i += k;
            continue;
        }
        tb_put(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tb_put(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hx[c >> 4], hx[c & 15]};
            tb_put(b, e, 6);
        } else {
            tb_put(b, "\\ufffd", 6);
        }
        run = ++i;
    }
    tb_put(b, s + run, n - run);
}

/** Appends a JSON string "s". */
static void tb_jstr(struct trc_buf *b, const char *s, size_t n)
{
    tb_put(b, "\"", 1);
    tb_esc(b, s, n);
    tb_put(b, "\"", 1);
}

/* ------------------------------------------------------------ trace context */

/** Value of a lowercase hex digit, or -1 (uppercase is invalid). */
static int trc_hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/** Decodes 2n lowercase hex digits into out[0..n).  0, or -1. */
static int trc_unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = trc_hexval(s[2 * i]), lo = trc_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/** 1 when v[0..n) is all zero. */
static int trc_zero(const uint8_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]) return 0;
    return 1;
}

int trc_parse_traceparent(const char *s, size_t len, struct trc_ctx *out)
{
    uint8_t ver;

    if (len < 55 || trc_unhex(s, &ver, 1) < 0 || ver == 0xff) return -1;
    if (ver == 0 && len != 55) return -1;
    if (len > 55 && s[55] != '-') return -1;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-') return -1;
    if (trc_unhex(s + 3, out->trace_id, 16) < 0 || trc_unhex(s + 36, out->span_id, 8) < 0 ||
        trc_unhex(s + 53, &out->flags, 1) < 0)
        return -1;
    if (trc_zero(out->trace_id, 16) || trc_zero(out->span_id, 8)) return -1;
    return 0;
}

void trc_format_traceparent(const struct trc_ctx *c, char out[55])
{
    struct trc_buf b = {out, 0, 55, 0};

    tb_put(&b, "00-", 3);
    tb_hex(&b, c->trace_id, 16);
    tb_put(&b, "-", 1);
    tb_hex(&b, c->span_id, 8);
    tb_put(&b, "-", 1);
    tb_hex(&b, &c->flags, 1);
}

int trc_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
    uint64_t x = 0, bound;

    if (ratio >= 1.0) return 1;
    if (!(ratio > 0.0)) return 0;
    for (int i = 8; i < 16; i++) x = x << 8 | trace_id[i];
    bound = (uint64_t)(ratio * 9223372036854775808.0); /* ratio * 2^63 */
    return (x >> 1) < bound;
}

/* ---------------------------------------------------------------- random */

/** splitmix64 step (seeding). */
static uint64_t trc_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/** Rotate left. */
static inline uint64_t trc_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/** xoshiro256** next. */
static uint64_t trc_next(uint64_t s[4])
{
    uint64_t r = trc_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = trc_rotl(s[3], 45);
    return r;
}

/** Seeds a generator from getrandom(2) (the clock and the address when
 *  the kernel has no entropy to give). */
static void trc_seed(uint64_t s[4], unsigned i)
{
    uint64_t seed = 0;
    struct timespec ts;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^ (uintptr_t)s;
    }
    seed ^= (uint64_t)i * 0xD1B54A32D192ED03ull;
    for (int k = 0; k < 4; k++) s[k] = trc_splitmix(&seed);
}

void trc_random(struct trc_tracer *t, unsigned worker, uint8_t *out, size_t n)
{
    uint64_t *s = t->rings[worker < t->nrings ? worker : 0].rng;
    size_t i = 0;

    do {
        i = 0;
        while (i < n) {
            uint64_t v = trc_next(s);
            for (int k = 0; k < 8 && i < n; k++, v >>= 8) out[i++] = (uint8_t)v;
        }
    } while (n >= 8 && trc_zero(out, n));
}

/* --------------------------------------------------------------- encoding */

/** 1 when name[0..n) (any case) is in list. */
static int trc_listed(const struct trc_name *list, size_t nl, const char *name, size_t n,
                      int ci)
{
    for (size_t i = 0; i < nl; i++)
        if (list[i].n == n &&
            (ci ? !strncasecmp(list[i].s, name, n) : !memcmp(list[i].s, name, n)))
            return 1;
    return 0;
}

/** Appends a query with the values of parameters not in safeQueryParams
 *  replaced by REDACTED (escaped for JSON). */
static void tb_query(const struct trc_tracer *t, struct trc_buf *b, const char *q, size_t n)
{
    size_t i = 0;

    while (i <= n) {
        const char *p = q + i, *amp = memchr(p, '&', n - i), *eq;
        size_t pl = amp ? (size_t)(amp - p) : n - i;
        eq = memchr(p, '=', pl);
        if (eq && !trc_listed(t->safe, t->nsafe, p, (size_t)(eq - p), 0)) {
            tb_esc(b, p, (size_t)(eq - p) + 1);
            tb_put(b, "REDACTED", 8);
        } else {
            tb_esc(b, p, pl);
        }
        i += pl + 1;
        if (amp) tb_put(b, "&", 1);
    }
}

/** Appends the attributes "http.<dir>.header.<name>" of the captured
 *  headers found in h[0..n). */
static void tb_captured(struct trc_buf *b, int *first, const char *dir,
                        const struct trc_name *names, size_t nn, const struct msg_hdr *h,
                        size_t n)
{
    for (size_t k = 0; k < nn; k++) {
        int found = 0;
        for (size_t i = 0; i < n && found < TRC_MAX_HDR_ATTRS; i++) {
            if (!msg_name_eq(h[i].name, h[i].nlen, names[k].s, names[k].n)) continue;
            if (!found) {
                tb_str(b, *first ? "{\"key\":\"http." : ",{\"key\":\"http.");
                *first = 0;
                tb_str(b, dir);
                tb_str(b, ".header.");
                tb_esc(b, names[k].s, names[k].n);
                tb_str(b, "\",\"value\":{\"arrayValue\":{\"values\":[");
            } else {
                tb_put(b, ",", 1);
            }
            found++;
            tb_str(b, "{\"stringValue\":");
            tb_jstr(b, h[i].value, h[i].vlen);
            tb_put(b, "}", 1);
        }
        if (found) tb_str(b, "]}}}");
    }
}

size_t trc_encode_span(const struct trc_tracer *t, const struct trc_span *s, char *buf,
                       size_t cap)
{
    struct trc_buf b = {buf, 0, cap, 0};
    int first = 1;

    tb_str(&b, "{\"traceId\":\"");
    tb_hex(&b, s->trace_id, 16);
    tb_str(&b, "\",\"spanId\":\"");
    tb_hex(&b, s->span_id, 8);
    if (!trc_zero(s->parent_id, 8)) {
        tb_str(&b, "\",\"parentSpanId\":\"");
        tb_hex(&b, s->parent_id, 8);
    }
    tb_str(&b, "\",");
    if (s->trace_state && s->trace_state_len) {
        tb_str(&b, "\"traceState\":");
        tb_jstr(&b, s->trace_state, s->trace_state_len);
        tb_put(&b, ",", 1);
    }
    tb_str(&b, "\"name\":");
    tb_jstr(&b, s->name, strlen(s->name));
    tb_str(&b, ",\"kind\":");
    tb_i64(&b, s->kind);
    tb_str(&b, ",\"startTimeUnixNano\":\"");
    tb_i64(&b, s->start_ns);
    tb_str(&b, "\",\"endTimeUnixNano\":\"");
    tb_i64(&b, s->end_ns);
    tb_str(&b, "\",\"attributes\":[");
    for (size_t i = 0; i < s->nattrs; i++) {
        const struct trc_attr *a = &s->attrs[i];
        tb_str(&b, first ? "{\"key\":" : ",{\"key\":");
        first = 0;
        tb_jstr(&b, a->key, strlen(a->key));
        if (a->s) {
            size_t qo = a->query > 0 && (size_t)a->query - 1 <= a->n ? (size_t)a->query - 1
                                                                      : a->n;
            tb_str(&b, ",\"value\":{\"stringValue\":\"");
            tb_esc(&b, a->s, qo);
            if (qo < a->n) tb_query(t, &b, a->s + qo, a->n - qo);
            tb_str(&b, "\"}}");
        } else {
            tb_str(&b, ",\"value\":{\"intValue\":\"");
            tb_i64(&b, a->i);
            tb_str(&b, "\"}}");
        }
    }
    if (t) {
        tb_captured(&b, &first, "request", t->req_hdrs, t->nreq_hdrs, s->req_hdrs, s->n_req_hdrs);
        tb_captured(&b, &first, "response", t->resp_hdrs, t->nresp_hdrs, s->resp_hdrs,
                    s->n_resp_hdrs);
    }
    tb_str(&b, "]");
    if (s->error) tb_str(&b, ",\"status\":{\"code\":2}");
    tb_str(&b, "}");
    return b.over ? 0 : b.len;
}

/* ------------------------------------------------------------------ rings */

/** Counts one dropped span on ring g (producer only: no RMW needed). */
static void trc_ring_drop(struct trc_ring *g)
{
    atomic_store_explicit(&g->dropped,
                          atomic_load_explicit(&g->dropped, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/** Copies n bytes into ring g at cursor pos (wrapping). */
static void trc_ring_write(const struct trc_tracer *t, struct trc_ring *g, uint64_t pos,
                           const void *src, size_t n)
{
    size_t off = (size_t)(pos & (t->ring_bytes - 1)), first;

    first = t->ring_bytes - off < n ? (size_t)(t->ring_bytes - off) : n;
    memcpy(g->data + off, src, first);
    memcpy(g->data, (const char *)src + first, n - first);
}

/** Copies n bytes out of ring g at cursor pos (wrapping). */
static void trc_ring_read(const struct trc_tracer *t, const struct trc_ring *g, uint64_t pos,
                          void *dst, size_t n)
{
    size_t off = (size_t)(pos & (t->ring_bytes - 1)), first;

    first = t->ring_bytes - off < n ? (size_t)(t->ring_bytes - off) : n;
    memcpy(dst, g->data + off, first);
    memcpy((char *)dst + first, g->data, n - first);
}

void trc_submit(struct trc_tracer *t, unsigned worker, const struct trc_span *s)
{
    struct trc_ring *g;
    uint64_t head, tail, count, done;
    uint32_t len;
    size_t n;

    if (!t || !s || worker >= t->nrings) return;
    g = &t->rings[worker];
    count = atomic_load_explicit(&g->count, memory_order_relaxed);
    done = atomic_load_explicit(&g->done, memory_order_acquire);
    if (count - done >= (uint64_t)t->queue_size) {
        trc_ring_drop(g);
        return;
    }
    n = trc_encode_span(t, s, g->scratch, TRC_SPAN_MAX);
    if (!n) {
        trc_ring_drop(g);
        return;
    }
    head = atomic_load_explicit(&g->head, memory_order_relaxed);
    tail = atomic_load_explicit(&g->tail, memory_order_acquire);
    if (t->ring_bytes - (head - tail) < n + 4) {
        trc_ring_drop(g);
        return;
    }
    len = (uint32_t)n;
    trc_ring_write(t, g, head, &len, 4);
    trc_ring_write(t, g, head + 4, g->scratch, n);
    atomic_store_explicit(&g->head, head + 4 + n, memory_order_release);
    atomic_store_explicit(&g->count, count + 1, memory_order_release);
}

/* --------------------------------------------------------------- exporter */

/** Monotonic clock in ms. */
static int64_t trc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Spans waiting in every ring (exporter). */
static uint64_t trc_pending(struct trc_tracer *t)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < t->nrings; i++)
        n += atomic_load_explicit(&t->rings[i].count, memory_order_acquire) -
             atomic_load_explicit(&t->rings[i].done, memory_order_relaxed);
    return n;
}

/** Moves whole published records from the rings into t->body (after the
 *  prefix), up to batchSize spans or TRC_BODY_MAX bytes, round-robin over
 *  the rings; their space goes back to the producers at once.  Returns the
 *  spans taken. */
static size_t trc_collect(struct trc_tracer *t)
{
    size_t nsp = 0;
    int progress = 1;

    memcpy(t->body, t->prefix, t->prefix_len);
    t->body_len = t->prefix_len;
    while (progress && nsp < (size_t)t->batch_size) {
        progress = 0;
        for (unsigned k = 0; k < t->nrings && nsp < (size_t)t->batch_size; k++) {
            struct trc_ring *g = &t->rings[(t->rr + k) % t->nrings];
            uint64_t cnt = atomic_load_explicit(&g->count, memory_order_acquire);
            uint64_t done = atomic_load_explicit(&g->done, memory_order_relaxed);
            uint64_t tail = atomic_load_explicit(&g->tail, memory_order_relaxed);
            uint32_t len;

            if (cnt == done) continue;
            /* count was read first: the record is whole below head */
            trc_ring_read(t, g, tail, &len, 4);
            if (t->body_len + len + 16 > TRC_BODY_MAX) {
                progress = 0;
                goto full;
            }
            if (nsp) t->body[t->body_len++] = ',';
            trc_ring_read(t, g, tail + 4, t->body + t->body_len, len);
            t->body_len += len;
            nsp++;
            progress = 1;
            atomic_store_explicit(&g->tail, tail + 4 + len, memory_order_release);
            atomic_store_explicit(&g->done, done + 1, memory_order_release);
        }
    }
full:
    t->rr = t->nrings ? (t->rr + 1) % t->nrings : 0;
    memcpy(t->body + t->body_len, "]}]}]}", 6);
    t->body_len += 6;
    t->body_spans = nsp;
    return nsp;
}

/** One POST's outcome. */
struct trc_call {
    int status;    /* response status, 0 when none */
    int done;      /* on_done arrived */
    int error;     /* on_done's error */
    char msg[200]; /* its message */
};

/** hc: the response head. */
static void trc_on_response(void *arg, int status, relais_hdrs *headers)
{
    (void)headers;
    ((struct trc_call *)arg)->status = status;
}

/** hc: the end. */
static void trc_on_done(void *arg, int error, const char *message)
{
    struct trc_call *c = arg;

    c->done = 1;
    c->error = error;
    snprintf(c->msg, sizeof(c->msg), "%s", message ? message : "");
}

/** POSTs t->body within timeout_ms.  Returns the HTTP status, or -1 with
 *  msg filled (refused, timeout, broken response). */
static int trc_post(struct trc_tracer *t, int64_t timeout_ms, char *msg, size_t msglen)
{
    relais_http_req rq;
    relais_http_callbacks cb;
    struct trc_call c;

    memset(&rq, 0, sizeof(rq));
    memset(&cb, 0, sizeof(cb));
    memset(&c, 0, sizeof(c));
    rq.size = sizeof(rq);
    rq.method = "POST";
    rq.url = t->endpoint;
    rq.headers = t->xhdrs;
    rq.nheaders = t->nxhdrs;
    rq.body = t->body;
    rq.body_len = t->body_len;
    rq.timeout_ms = (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    rq.tls_ca = t->tls_ca;
    rq.tls_cert = t->tls_cert;
    rq.tls_key = t->tls_key;
    rq.tls_insecure = t->tls_insecure;
    cb.size = sizeof(cb);
    cb.on_response = trc_on_response;
    cb.on_done = trc_on_done;
    if (!hc_request(t->base, &rq, &cb, &c)) {
        snprintf(msg, msglen, "cannot start the request");
        return -1;
    }
    while (!c.done)
        if (event_base_loop(t->base, EVLOOP_ONCE) < 0) break;
    if (!c.done) {
        snprintf(msg, msglen, "event loop failed");
        return -1;
    }
    if (c.error && !c.status) {
        snprintf(msg, msglen, "%s", c.msg);
        return -1;
    }
    snprintf(msg, msglen, "status %d", c.status);
    return c.status;
}

/** Sleeps ms (a retry delay: short, and bounded by the stop deadline). */
static void trc_sleep(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0) return;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/** Sends the body collected (t->body_spans spans) with retries; the spans
 *  of a batch that fails for good are counted as dropped. */
static void trc_send(struct trc_tracer *t)
{
    char msg[256];
    int64_t delay = TRC_RETRY_MS;

    for (int64_t attempt = 0;; attempt++) {
        int64_t tmo = t->timeout_ms, now = trc_now_ms();
        int st, retry;

        if (t->deadline_ms) {
            if (now >= t->deadline_ms) {
                snprintf(msg, sizeof(msg), "no time left at shutdown");
                st = -1;
                goto lost;
            }
            if (t->deadline_ms - now < tmo) tmo = t->deadline_ms - now;
        }
        st = trc_post(t, tmo, msg, sizeof(msg));
        if (st >= 200 && st < 300) {
            atomic_fetch_add_explicit(&t->exported, t->body_spans, memory_order_relaxed);
            return;
        }
        retry = st < 0 || st == 429 || st == 502 || st == 503 || st == 504;
        if (!retry || attempt >= t->max_retries) goto lost;
        now = trc_now_ms();
        if (now - t->fail_log_ms >= 1000) {
            log_warn(TRC_WHO, "export of %zu span(s) to %s failed (%s): retrying in %lld ms",
                     t->body_spans, t->endpoint, msg, (long long)delay);
            t->fail_log_ms = now;
        }
        if (t->deadline_ms && now + delay >= t->deadline_ms) goto lost;
        trc_sleep(delay);
        delay *= 2;
    }
lost:
    atomic_fetch_add_explicit(&t->xdropped, t->body_spans, memory_order_relaxed);
    if (trc_now_ms() - t->fail_log_ms >= 1000) {
        log_warn(TRC_WHO, "export of %zu span(s) to %s failed (%s): dropped", t->body_spans,
                 t->endpoint, msg);
        t->fail_log_ms = trc_now_ms();
    }
}

/** Exports what is queued now, batch after batch (at most as many batches
 *  as were pending on entry: producers cannot keep it going forever). */
static void trc_export_all(struct trc_tracer *t)
{
    uint64_t pending = trc_pending(t);
    uint64_t batches = pending / (uint64_t)t->batch_size + 1;

    while (batches-- > 0 && trc_collect(t) > 0) trc_send(t);
}

/** Logs the drops since the last report, at most once a second. */
static void trc_log_drops(struct trc_tracer *t, int64_t now)
{
    uint64_t total = trc_dropped_queue(t) + trc_dropped_export(t);

    if (total == t->drop_logged || now - t->drop_log_ms < 1000) return;
    log_warn(TRC_WHO, "%llu span(s) dropped (queue full or export failed), %llu in all",
             (unsigned long long)(total - t->drop_logged), (unsigned long long)total);
    t->drop_logged = total;
    t->drop_log_ms = now;
}

/** The exporter thread. */
static void *trc_exporter(void *arg)
{
    struct trc_tracer *t = arg;
    int64_t first_seen = 0;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        int stop = t->stop, held = t->held, due;
        uint64_t freq = t->flush_req, pending;
        int64_t now;

        pthread_mutex_unlock(&t->mu);
        now = trc_now_ms();
        pending = trc_pending(t);
        if (pending && !first_seen) first_seen = now;
        due = pending && !held &&
              (pending >= (uint64_t)t->batch_size || now - first_seen >= t->flush_ms ||
               freq != t->flush_done);
        if (stop) {
            t->deadline_ms = now + TRC_STOP_MS;
            due = pending > 0;
        }
        if (due) {
            trc_export_all(t);
            first_seen = 0;
        }
        trc_log_drops(t, trc_now_ms());
        pthread_mutex_lock(&t->mu);
        if (freq != t->flush_done) {
            t->flush_done = freq;
            pthread_cond_broadcast(&t->cv);
        }
        if (stop) break;
        if (!t->stop && t->flush_req == freq) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += TRC_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
    }
    pthread_mutex_unlock(&t->mu);
    arena_cache_clear(); /* the HTTP client's blocks cached by this thread */
    return NULL;
}

/* ---------------------------------------------------------------- config */

/** Reads a list of strings at node.key into list (header names
 *  lowercased when lower).  0, or -1 with errors reported. */
static int trc_cfg_names(const relais_cfg *node, const char *key, struct trc_name *list,
                         size_t *n, int lower)
{
    const relais_cfg *l = conf_cfg_get(node, key);
    int ty = conf_cfg_type(l), bad = 0;

    if (ty == RELAIS_CFG_ABSENT || ty == RELAIS_CFG_NULL) return 0;
    if (ty != RELAIS_CFG_LIST) {
        conf_cfg_error(node, key, "expected a list of names");
        return -1;
    }
    for (size_t i = 0; i < conf_cfg_len(l); i++) {
        const relais_cfg *it = conf_cfg_at(l, i, NULL);
        const char *s;
        if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK || !*s) {
            if (conf_cfg_type(it) != RELAIS_CFG_STRING)
                conf_cfg_error(it, NULL, "expected a name");
            else
                conf_cfg_error(it, NULL, "expected a non-empty name");
            bad = 1;
            continue;
        }
        if (*n == TRC_MAX_NAMES) {
            conf_cfg_error(node, key, "at most %d names", TRC_MAX_NAMES);
            return -1;
        }
        list[*n].s = strdup(s);
        if (!list[*n].s) return -1;
        list[*n].n = strlen(s);
        if (lower)
            for (char *p = list[*n].s; *p; p++)
                if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        (*n)++;
    }
    return bad ? -1 : 0;
}

/** Appends the resource attributes of map node (strings, numbers and
 *  booleans as strings) to b; *seen_name set when service.name is among
 *  them.  0, or -1 with errors reported. */
static int trc_cfg_resattrs(const relais_cfg *node, struct trc_buf *b, int *first,
                            int *seen_name)
{
    int bad = 0;

    if (!node || conf_cfg_type(node) == RELAIS_CFG_NULL) return 0;
    if (conf_cfg_type(node) != RELAIS_CFG_MAP) {
        conf_cfg_error(node, NULL, "expected a map of attribute names to values");
        return -1;
    }
    for (size_t i = 0; i < conf_cfg_len(node); i++) {
        const char *k;
        const relais_cfg *v = conf_cfg_at(node, i, &k);
        json_t *j = conf_node_json(v);
        char num[64];
        const char *s = NULL;

        if (!k) continue;
        if (json_is_string(j)) s = json_string_value(j);
        else if (json_is_integer(j))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(j)), s = num;
        else if (json_is_real(j))
            snprintf(num, sizeof(num), "%g", json_real_value(j)), s = num;
        else if (json_is_boolean(j))
            s = json_is_true(j) ? "true" : "false";
        if (!s) {
            conf_cfg_error(node, k, "expected a string");
            bad = 1;
            continue;
        }
        if (!strcmp(k, "service.name")) *seen_name = 1;
        tb_str(b, *first ? "{\"key\":" : ",{\"key\":");
        *first = 0;
        tb_jstr(b, k, strlen(k));
        tb_str(b, ",\"value\":{\"stringValue\":");
        tb_jstr(b, s, strlen(s));
        tb_str(b, "}}");
    }
    return bad ? -1 : 0;
}

/** Reads a duration at node.key into *ms (> 0), untouched when absent.
 *  0, or -1 with the error reported. */
static int trc_cfg_ms(const relais_cfg *node, const char *key, int64_t *ms)
{
    int64_t v;

    switch (conf_cfg_duration(node, key, &v)) {
    case RELAIS_CFG_OK:
        if (v <= 0) {
            conf_cfg_error(node, key, "expected a positive duration");
            return -1;
        }
        *ms = v;
        return 0;
    case RELAIS_CFG_INVALID: return -1;
    default: return 0;
    }
}

/** Reads an integer at node.key into *out within [lo, hi].  0, or -1. */
static int trc_cfg_range(const relais_cfg *node, const char *key, int64_t lo, int64_t hi,
                         int64_t *out)
{
    int64_t v;

    switch (conf_cfg_int(node, key, &v)) {
    case RELAIS_CFG_OK:
        if (v < lo || v > hi) {
            conf_cfg_error(node, key, "expected a number from %lld to %lld", (long long)lo,
                           (long long)hi);
            return -1;
        }
        *out = v;
        return 0;
    case RELAIS_CFG_INVALID: return -1;
    default: return 0;
    }
}

/** Reads an optional string at node.key into *out (strdup, replacing a
 *  default); untouched when absent or empty.  0 / -1. */
static int trc_cfg_str(const relais_cfg *node, const char *key, char **out)
{
    const char *s;

    switch (conf_cfg_string(node, key, &s)) {
    case RELAIS_CFG_OK:
        if (!*s) return 0;
        free(*out); /* a default */
        *out = strdup(s);
        return *out ? 0 : -1;
    case RELAIS_CFG_INVALID: return -1;
    default: return 0;
    }
}

/** Reads tracing.otlp.  0, or -1 with errors reported. */
static int trc_cfg_otlp(struct trc_tracer *t, const relais_cfg *otlp)
{
    const relais_cfg *http, *hd, *tls;
    int bad = 0, ty;

    ty = conf_cfg_type(otlp);
    if (ty == RELAIS_CFG_ABSENT || ty == RELAIS_CFG_NULL) return 0;
    if (ty != RELAIS_CFG_MAP) {
        conf_cfg_error(otlp, NULL, "expected a map");
        return -1;
    }
    ty = conf_cfg_type(conf_cfg_get(otlp, "grpc"));
    if (ty != RELAIS_CFG_ABSENT && ty != RELAIS_CFG_NULL) {
        conf_cfg_error(otlp, "grpc", "not supported: use otlp.http");
        bad = 1;
    }
    http = conf_cfg_get(otlp, "http");
    ty = conf_cfg_type(http);
    if (ty == RELAIS_CFG_ABSENT || ty == RELAIS_CFG_NULL || ty == RELAIS_CFG_BOOL)
        return bad ? -1 : 0;
    if (ty != RELAIS_CFG_MAP) {
        conf_cfg_error(otlp, "http", "expected a map");
        return -1;
    }
    {
        char *ep = NULL;
        if (trc_cfg_str(http, "endpoint", &ep) < 0) bad = 1;
        if (ep) {
            struct na_url u;
            char msg[200];
            if ((strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) ||
                na_parse_url(ep, &u, msg, sizeof(msg)) < 0) {
                conf_cfg_error(http, "endpoint", "expected an http:// or https:// URL");
                free(ep);
                bad = 1;
            } else {
                free(t->endpoint);
                t->endpoint = ep;
            }
        }
    }
    hd = conf_cfg_get(http, "headers");
    ty = conf_cfg_type(hd);
    if (ty == RELAIS_CFG_MAP) {
        for (size_t i = 0; i < conf_cfg_len(hd); i++) {
            const char *k, *v;
            conf_cfg_at(hd, i, &k);
            if (!k) continue;
            if (conf_cfg_string(hd, k, &v) != RELAIS_CFG_OK) {
                bad = 1;
                continue;
            }
            if (t->nxhdrs > TRC_MAX_EXPORT_HDRS) {
                conf_cfg_error(http, "headers", "at most %d headers", TRC_MAX_EXPORT_HDRS);
                bad = 1;
                break;
            }
            t->xhdrs[t->nxhdrs].name = strdup(k);
            t->xhdrs[t->nxhdrs].value = strdup(v);
            t->nxhdrs++;
            if (!t->xhdrs[t->nxhdrs - 1].name || !t->xhdrs[t->nxhdrs - 1].value) return -1;
        }
    } else if (ty != RELAIS_CFG_ABSENT && ty != RELAIS_CFG_NULL) {
        conf_cfg_error(http, "headers", "expected a map of header names to values");
        bad = 1;
    }
    tls = conf_cfg_get(http, "tls");
    ty = conf_cfg_type(tls);
    if (ty == RELAIS_CFG_MAP) {
        if (trc_cfg_str(tls, "ca", &t->tls_ca) < 0) bad = 1;
        if (trc_cfg_str(tls, "cert", &t->tls_cert) < 0) bad = 1;
        if (trc_cfg_str(tls, "key", &t->tls_key) < 0) bad = 1;
        if (conf_cfg_bool(tls, "insecureSkipVerify", &t->tls_insecure) < 0) bad = 1;
        if (!t->tls_cert != !t->tls_key) {
            conf_cfg_error(tls, NULL, "cert and key go together");
            bad = 1;
        }
    } else if (ty != RELAIS_CFG_ABSENT && ty != RELAIS_CFG_NULL) {
        conf_cfg_error(http, "tls", "expected a map");
        bad = 1;
    }
    return bad ? -1 : 0;
}

/** Reads the tracing map into t and builds the body prefix.  0, or -1
 *  with errors reported. */
static int trc_cfg(struct trc_tracer *t, const relais_cfg *node)
{
    int bad = 0, first = 1, seen_name = 0, internals = 0, ty = conf_cfg_type(node);
    double rate;
    char pre[16384];
    struct trc_buf b = {pre, 0, sizeof(pre), 0};
    const relais_cfg *ra;

    t->sample_rate = 1.0;
    t->queue_size = 2048;
    t->batch_size = 512;
    t->flush_ms = 5000;
    t->timeout_ms = 10000;
    t->max_retries = 4;
    t->service_name = strdup("relais");
    t->endpoint = strdup("http://localhost:4318/v1/traces");
    t->xhdrs[0].name = "Content-Type";
    t->xhdrs[0].value = "application/json";
    t->nxhdrs = 1;
    if (!t->service_name || !t->endpoint) return -1;
    if (ty != RELAIS_CFG_MAP && ty != RELAIS_CFG_NULL && ty != RELAIS_CFG_BOOL &&
        ty != RELAIS_CFG_ABSENT) {
        conf_cfg_error(node, NULL, "expected a map");
        return -1;
    }
    if (ty == RELAIS_CFG_MAP) {
        if (trc_cfg_str(node, "serviceName", &t->service_name) < 0) bad = 1;
        switch (conf_cfg_real(node, "sampleRate", &rate)) {
        case RELAIS_CFG_OK:
            if (!(rate >= 0.0 && rate <= 1.0)) {
                conf_cfg_error(node, "sampleRate", "expected a number from 0 to 1");
                bad = 1;
            } else {
                t->sample_rate = rate;
            }
            break;
        case RELAIS_CFG_INVALID: bad = 1; break;
        default: break;
        }
        if (trc_cfg_names(node, "capturedRequestHeaders", t->req_hdrs, &t->nreq_hdrs, 1) < 0)
            bad = 1;
        if (trc_cfg_names(node, "capturedResponseHeaders", t->resp_hdrs, &t->nresp_hdrs, 1) <
            0)
            bad = 1;
        if (trc_cfg_names(node, "safeQueryParams", t->safe, &t->nsafe, 0) < 0) bad = 1;
        if (conf_cfg_bool(node, "addInternals", &internals) < 0) bad = 1;
        if (trc_cfg_range(node, "queueSize", 16, 1000000, &t->queue_size) < 0) bad = 1;
        if (trc_cfg_range(node, "batchSize", 1, 65536, &t->batch_size) < 0) bad = 1;
        if (trc_cfg_range(node, "maxRetries", 0, 20, &t->max_retries) < 0) bad = 1;
        if (trc_cfg_ms(node, "flushInterval", &t->flush_ms) < 0) bad = 1;
        if (trc_cfg_ms(node, "exportTimeout", &t->timeout_ms) < 0) bad = 1;
        if (trc_cfg_otlp(t, conf_cfg_get(node, "otlp")) < 0) bad = 1;
    }
    /* the body prefix: the resource, then the scope */
    tb_str(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    ra = ty == RELAIS_CFG_MAP ? conf_cfg_get(node, "resourceAttributes") : NULL;
    if (ra && trc_cfg_resattrs(ra, &b, &first, &seen_name) < 0) bad = 1;
    ra = ty == RELAIS_CFG_MAP ? conf_cfg_get(node, "globalAttributes") : NULL;
    if (ra && trc_cfg_resattrs(ra, &b, &first, &seen_name) < 0) bad = 1;
    if (!seen_name) {
        tb_str(&b, first ? "" : ",");
        tb_str(&b, "{\"key\":\"service.name\",\"value\":{\"stringValue\":");
        tb_jstr(&b, t->service_name, strlen(t->service_name));
        tb_str(&b, "}}");
        first = 0;
    }
    tb_str(&b, ",{\"key\":\"service.version\",\"value\":{\"stringValue\":\"" PACKAGE_VERSION
               "\"}},{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"relais\"}}");
    tb_str(&b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"relais\",\"version\":\"" PACKAGE_VERSION
               "\"},\"spans\":[");
    if (b.over) {
        conf_cfg_error(node, "resourceAttributes", "too long");
        bad = 1;
    }
    t->prefix = malloc(b.len);
    if (!t->prefix) return -1;
    memcpy(t->prefix, pre, b.len);
    t->prefix_len = b.len;
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- public */

/** Frees t's memory (the thread is not running). */
static void trc_release(struct trc_tracer *t)
{
    if (t->rings) {
        for (unsigned i = 0; i < t->nrings; i++) {
            free(t->rings[i].scratch);
            free(t->rings[i].data);
        }
        free(t->rings);
    }
    for (size_t i = 0; i < t->nreq_hdrs; i++) free(t->req_hdrs[i].s);
    for (size_t i = 0; i < t->nresp_hdrs; i++) free(t->resp_hdrs[i].s);
    for (size_t i = 0; i < t->nsafe; i++) free(t->safe[i].s);
    for (size_t i = 1; i < t->nxhdrs; i++) {
        free((char *)t->xhdrs[i].name);
        free((char *)t->xhdrs[i].value);
    }
    free(t->service_name);
    free(t->endpoint);
    free(t->tls_ca);
    free(t->tls_cert);
    free(t->tls_key);
    free(t->prefix);
    free(t->body);
    if (t->base) event_base_free(t->base);
    free(t);
}

int trc_new(const relais_cfg *node, unsigned nworkers, int check, struct trc_tracer **out)
{
    struct trc_tracer *t;
    sigset_t all, old;
    int e;

    *out = NULL;
    if (!nworkers) nworkers = 1;
    t = calloc(1, sizeof(*t));
    if (!t) return -1;
    if (trc_cfg(t, node) < 0) {
        trc_release(t);
        return -1;
    }
    if (check) {
        trc_release(t);
        return 0;
    }
    t->ring_bytes = 4u * TRC_SPAN_MAX;
    while (t->ring_bytes < (uint64_t)t->queue_size * 1024u) t->ring_bytes <<= 1;
    t->nrings = nworkers;
    if (posix_memalign((void **)&t->rings, 64, sizeof(*t->rings) * nworkers)) {
        t->rings = NULL;
        trc_release(t);
        return -1;
    }
    memset(t->rings, 0, sizeof(*t->rings) * nworkers);
    for (unsigned i = 0; i < nworkers; i++) {
        t->rings[i].scratch = malloc(TRC_SPAN_MAX);
        t->rings[i].data = malloc(t->ring_bytes);
        trc_seed(t->rings[i].rng, i);
        if (!t->rings[i].scratch || !t->rings[i].data) {
            trc_release(t);
            return -1;
        }
    }
    t->body = malloc(TRC_BODY_MAX);
    t->base = event_base_new();
    if (!t->body || !t->base) {
        trc_release(t);
        return -1;
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    /* the exporter takes no signal: they stay with the control thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&t->thread, NULL, trc_exporter, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        log_error(TRC_WHO, "cannot start the exporter thread: %s", strerror(e));
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        trc_release(t);
        return -1;
    }
    t->started = 1;
    log_info(TRC_WHO, "OTLP/HTTP to %s, service %s, sampleRate %g", t->endpoint,
             t->service_name, t->sample_rate);
    *out = t;
    return 0;
}

void trc_flush(struct trc_tracer *t)
{
    uint64_t me;

    if (!t || !t->started) return;
    pthread_mutex_lock(&t->mu);
    me = ++t->flush_req;
    pthread_cond_broadcast(&t->cv);
    while (t->flush_done < me) pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

void trc_hold(struct trc_tracer *t, int on)
{
    if (!t || !t->started) return;
    pthread_mutex_lock(&t->mu);
    t->held = on;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void trc_free(struct trc_tracer *t)
{
    if (!t) return;
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->stop = 1;
        t->held = 0;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        if (t->drop_logged != trc_dropped_queue(t) + trc_dropped_export(t))
            log_warn(TRC_WHO, "%llu span(s) dropped in all",
                     (unsigned long long)(trc_dropped_queue(t) + trc_dropped_export(t)));
    }
    trc_release(t);
}

double trc_sample_rate(const struct trc_tracer *t) { return t ? t->sample_rate : 0.0; }

uint64_t trc_dropped_queue(const struct trc_tracer *t)
{
    uint64_t n = 0;

    if (!t) return 0;
    for (unsigned i = 0; i < t->nrings; i++)
        n += atomic_load_explicit(&((struct trc_tracer *)t)->rings[i].dropped,
                                  memory_order_relaxed);
    return n;
}

uint64_t trc_dropped_export(const struct trc_tracer *t)
{
    return t ? atomic_load_explicit(&((struct trc_tracer *)t)->xdropped, memory_order_relaxed)
             : 0;
}

uint64_t trc_exported(const struct trc_tracer *t)
{
    return t ? atomic_load_explicit(&((struct trc_tracer *)t)->exported, memory_order_relaxed)
             : 0;
}

/* ------------------------------------------------------------ request hooks */

/** Wall clock, ns since the epoch. */
static int64_t trc_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void trc_req_start(struct relais_req *r)
{
    struct trc_tracer *t = trc_active;
    struct trc_req *q;
    struct trc_ctx in;
    const char *v;
    size_t vl, vl2;
    int valid = 0;

    if (!t) return;
    q = arena_alloc(r->arena, sizeof(*q));
    if (!q) return;
    memset(q, 0, sizeof(*q));
    v = msg_api_get(&r->req_hdrs, "traceparent", 0, &vl);
    /* two traceparent fields: invalid (W3C Trace Context 3.2) */
    if (v && !msg_api_get(&r->req_hdrs, "traceparent", 1, &vl2) &&
        trc_parse_traceparent(v, vl, &in) == 0)
        valid = 1;
    if (valid) {
        memcpy(q->trace_id, in.trace_id, 16);
        memcpy(q->parent_id, in.span_id, 8);
        q->sampled = in.flags & 1;
        v = msg_api_get(&r->req_hdrs, "tracestate", 0, &vl);
        if (v && msg_api_get(&r->req_hdrs, "tracestate", 1, &vl)) {
            /* several fields: one list, joined in order */
            size_t total = 0, i;
            char *j;
            for (i = 0; (v = msg_api_get(&r->req_hdrs, "tracestate", i, &vl)) != NULL; i++)
                total += vl + 1;
            j = arena_alloc(r->arena, total);
            if (j) {
                size_t o = 0;
                for (i = 0; (v = msg_api_get(&r->req_hdrs, "tracestate", i, &vl)) != NULL; i++) {
                    if (o) j[o++] = ',';
                    memcpy(j + o, v, vl);
                    o += vl;
                }
                q->trace_state = j;
                q->trace_state_len = o;
            }
        } else if (v) {
            q->trace_state = v;
            q->trace_state_len = vl;
        }
    } else {
        trc_random(t, r->w->index, q->trace_id, 16);
        q->sampled = trc_ratio_sampled(q->trace_id, t->sample_rate);
        /* a tracestate without its traceparent is meaningless */
        msg_hdrs_del(&r->req_hdrs, "tracestate", 10);
    }
    trc_random(t, r->w->index, q->server_id, 8);
    q->start_ns = trc_wall_ns();
    r->trc = q;
}

/** Attributes of a CLIENT span (at most 12) for server sv into a; full
 *  is scratch for url.full (its query redacted at encoding). */
static size_t trc_client_attrs(struct relais_req *r, const struct snap_server *sv,
                               struct trc_attr *a, char *full, size_t fcap, int status)
{
    size_t n = 0, vl;
    const char *ua = msg_api_get(&r->req_hdrs, "User-Agent", 0, &vl);
    int fl, qoff = 0;

    a[n++] = (struct trc_attr){"http.request.method", r->method, r->method_len, 0, 0};
    a[n++] = (struct trc_attr){"network.protocol.version", "1.1", 3, 0, 0};
    if (sv) {
        fl = snprintf(full, fcap, "%s://%s%s%.*s%s", sv->u.scheme, sv->u.hostport, sv->u.path,
                      (int)r->path_len, r->path, r->query ? "?" : "");
        if (fl > 0 && (size_t)fl < fcap) {
            /* the query goes in a second attribute piece: url.full is
             * the prefix plus the redacted query */
            if (r->query) {
                char *q = full + fl;
                qoff = fl + 1;
                size_t room = fcap - (size_t)fl;
                if (r->query_len < room) {
                    memcpy(q, r->query, r->query_len);
                    fl += (int)r->query_len;
                }
            }
            a[n++] = (struct trc_attr){"url.full", full, (size_t)fl, 0, qoff};
        }
        a[n++] = (struct trc_attr){"url.scheme", sv->u.scheme, strlen(sv->u.scheme), 0, 0};
        a[n++] = (struct trc_attr){"server.address", sv->u.host, strlen(sv->u.host), 0, 0};
        a[n++] = (struct trc_attr){"server.port", NULL, 0, sv->u.port, 0};
    }
    if (ua) a[n++] = (struct trc_attr){"user_agent.original", ua, vl, 0, 0};
    if (status > 0) a[n++] = (struct trc_attr){"http.response.status_code", NULL, 0, status, 0};
    return n;
}


/* A span of request q's trace ending now: id, parent, name, kind and
 * start as given, the trace id and tracestate from q; attributes and
 * headers left empty. */
static void trc_span_init(struct trc_span *s, const struct trc_req *q, const uint8_t *id,
                          const uint8_t *parent, const char *name, int kind,
                          int64_t start_ns)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->trace_id, q->trace_id, 16);
    memcpy(s->span_id, id, 8);
    memcpy(s->parent_id, parent, 8);
    s->trace_state = q->trace_state;
    s->trace_state_len = q->trace_state_len;
    s->name = name;
    s->kind = kind;
    s->start_ns = start_ns;
    s->end_ns = trc_wall_ns();
}
/** Submits r's open CLIENT span ending now; status is the server's
 *  answer (0: none). */
static void trc_end_client(struct trc_tracer *t, struct relais_req *r, int status)
{
    struct trc_req *q = r->trc;
    struct trc_attr a[12];
    struct trc_span s;
    char full[2048];

    q->client_open = 0;
    if (!q->sampled) return;
    trc_span_init(&s, q, q->client_id, q->server_id, "ReverseProxy", TRC_KIND_CLIENT,
                  q->client_start_ns);
    s.error = status == 0 || status >= 400;
    s.attrs = a;
    s.nattrs = trc_client_attrs(r, q->client_server, a, full, sizeof(full), status);
    s.req_hdrs = r->req_hdrs.v;
    s.n_req_hdrs = r->req_hdrs.n;
    if (status > 0 && r->has_resp) {
        s.resp_hdrs = r->resp_hdrs.v;
        s.n_resp_hdrs = r->resp_hdrs.n;
    }
    trc_submit(t, r->w->index, &s);
}

void trc_req_forward(struct relais_req *r)
{
    struct trc_tracer *t = trc_active;
    struct trc_req *q = r->trc;
    struct trc_ctx c;
    char tp[55];

    if (!t || !q) return;
    if (q->client_open) trc_end_client(t, r, 0); /* a retry: that try failed */
    trc_random(t, r->w->index, q->client_id, 8);
    q->client_start_ns = trc_wall_ns();
    q->client_server = r->server;
    q->client_open = 1;
    memcpy(c.trace_id, q->trace_id, 16);
    memcpy(c.span_id, q->client_id, 8);
    c.flags = q->sampled ? 1 : 0;
    trc_format_traceparent(&c, tp);
    msg_hdrs_del(&r->req_hdrs, "traceparent", 11);
    msg_hdrs_add(&r->req_hdrs, "traceparent", 11, tp, sizeof(tp), 1);
}

void trc_req_end(struct relais_req *r)
{
    struct trc_tracer *t = trc_active;
    struct trc_req *q = r->trc;
    struct trc_attr a[20];
    struct trc_span s;
    size_t n = 0, vl;
    const char *ua;

    if (!t || !q) return;
    if (q->client_open) trc_end_client(t, r, r->origin_status);
    if (!q->sampled) return;
    trc_span_init(&s, q, q->server_id, q->parent_id, "EntryPoint", TRC_KIND_SERVER, q->start_ns);
    s.error = r->status >= 500;
    if (r->ep_name) a[n++] = (struct trc_attr){"entry_point", r->ep_name, strlen(r->ep_name), 0, 0};
    a[n++] = (struct trc_attr){"http.request.method", r->method, r->method_len, 0, 0};
    a[n++] = (struct trc_attr){"network.protocol.version", r->version >= 20 ? "2"
                                                           : r->version == 10 ? "1.0" : "1.1",
                               r->version >= 20 ? 1u : 3u, 0, 0};
    a[n++] = (struct trc_attr){"http.request.body.size", NULL, 0, (int64_t)r->req_body_bytes, 0};
    a[n++] = (struct trc_attr){"url.path", r->path, r->path_len, 0, 0};
    if (r->query)
        a[n++] = (struct trc_attr){"url.query", r->query, r->query_len, 0, 1}; /* all query */
    a[n++] = (struct trc_attr){"url.scheme", r->tls ? "https" : "http", r->tls ? 5u : 4u, 0, 0};
    ua = msg_api_get(&r->req_hdrs, "User-Agent", 0, &vl);
    if (ua) a[n++] = (struct trc_attr){"user_agent.original", ua, vl, 0, 0};
    if (r->host_len) a[n++] = (struct trc_attr){"server.address", r->host, r->host_len, 0, 0};
    a[n++] = (struct trc_attr){"client.address", r->client_ip, strlen(r->client_ip), 0, 0};
    if (r->client_port) a[n++] = (struct trc_attr){"client.port", NULL, 0, r->client_port, 0};
    if (r->router) {
        a[n++] = (struct trc_attr){"traefik.router.name", r->router->name,
                                   strlen(r->router->name), 0, 0};
        if (r->router->rule_text)
            a[n++] = (struct trc_attr){"http.route", r->router->rule_text,
                                       strlen(r->router->rule_text), 0, 0};
    }
    if (r->service)
        a[n++] = (struct trc_attr){"traefik.service.name", r->service->name,
                                   strlen(r->service->name), 0, 0};
    if (r->status > 0) a[n++] = (struct trc_attr){"http.response.status_code", NULL, 0, r->status, 0};
    s.attrs = a;
    s.nattrs = n;
    s.req_hdrs = r->req_hdrs.v;
    s.n_req_hdrs = r->req_hdrs.n;
    if (r->has_resp) {
        s.resp_hdrs = r->resp_hdrs.v;
        s.n_resp_hdrs = r->resp_hdrs.n;
    }
    trc_submit(t, r->w->index, &s);
}
