/*
 * h2 — HTTP/2 towards clients.  See h2.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "blockcache.h"
#include "h2.h"
#include "log.h"
#include "relais.h"
#include "message.h"
#include "stream.h"
#include "worker.h"

#define H2_WINDOW (1 << 20)   /* initial stream window we announce */
#define H2_FIELDS_MAX 1024    /* hard cap on fields per request */
/* NGHTTP2_ERR_TOO_MANY_CONTINUATIONS (nghttp2 1.61, and the CVE-2024-28182
 * backports such as Debian's 1.52.0-1+deb12u2): an enum constant, which
 * older headers lack */
#define H2_ERR_CONTINUATIONS (-905)
#define H2_LINGER_MS 1000     /* after an error, how long the GOAWAY may
                                 take to leave */
#define H2_UPGRADE_SETTINGS 192 /* most bytes of an HTTP2-Settings payload
                                   (32 settings) */
#define H2_SPARE 16           /* finished streams (and virtual streams) a
                                 connection keeps for its next ones */
#define H2_SPARE_FIELDS 32    /* a kept stream keeps its field list's
                                 memory up to this many fields ... */
#define H2_SPARE_BLOB 2048    /* ... and this many bytes */

/* The session's allocator keeps freed blocks of 64, 128, ... 2048 bytes,
   16 KiB at most per connection, for nghttp2's next allocations (a stream,
   its frames and field copies come and go per request). */
static const struct bc_shape h2_mem_shape = {64, 6, 0, 16 * 1024};

/** A stream of a connection. */
struct h2_stream {
    struct h2_conn *hc;         /* its connection */
    int32_t id;                 /* stream id */
    struct px_conn *sub;        /* proxy.c's client connection for it, or
                                   NULL once detached */
    struct stream *vs;          /* its virtual stream (owned by sub) */
    struct h2_fields head;      /* request fields being received */
    int too_big;                /* the head passed a limit */
    int head_done;              /* the request head went to proxy.c */
    int responded;              /* the response head was submitted */
    int out_ended;              /* the response body ended */
    int deferred;               /* the data source waits for output */
    int reading;                /* proxy.c takes the body */
    size_t unconsumed;          /* body bytes whose stream window was not
                                   given back yet */
    int taken;                  /* output was taken: tell the owner */
    nghttp2_nv *trailers;       /* response trailers to send (one block,
                                   h2_trailer_block), or NULL */
    size_t ntrailers;           /* how many */
    size_t tbytes;              /* request trailer bytes received */
    struct h2_stream *next;     /* connection's list */
    struct h2_stream *prev;
};

/** An HTTP/2 connection. */
struct h2_conn {
    struct px_conn *c;          /* proxy.c's connection */
    struct event_base *base;    /* its loop */
    struct stream *bev;         /* the socket stream (owned by c) */
    nghttp2_session *s;         /* the session */
    struct h2_limits lim;       /* limits */
    struct h2_stream *streams;  /* open streams */
    struct event *ev_send;      /* end-of-turn send */
    int sending;                /* inside h2_send */
    int closing;                /* the connection is over: no more frames */
    uint64_t window_start;      /* start of the current 1 s window (ms) */
    uint32_t resets;            /* RST_STREAM received in it */
    uint32_t control;           /* SETTINGS and PING received in it */
    uint32_t nstreams;          /* streams in the list (what
                                   maxConcurrentStreams caps) */
    unsigned frees;             /* streams freed so far (wraps): a scan of
                                   streams that calls out restarts when it
                                   changed */
    int settings_out;           /* our SETTINGS frame left (see h2_send) */
    struct h2_stream *upgraded; /* stream 1 of an h2c upgrade whose request
                                   h2_conn_begin hands to proxy.c, or NULL */
    int terminated;             /* a GOAWAY with an error is queued (a
                                   limit passed, or a connection error):
                                   input is ignored, the connection ends
                                   once the GOAWAY is sent */
    struct bc_cache mem;        /* the session's allocator (h2_mem_shape) */
    struct h2_stream *spare;    /* finished streams kept for reuse (linked
                                   by next), H2_SPARE at most */
    unsigned nspare;            /* how many */
    struct st_vcache vcache;    /* virtual streams kept for reuse */
};

static void h2_send(struct h2_conn *hc);

/* ---------------------------------------------- the session's memory */

/* nghttp2's malloc, free and realloc: the connection's block cache. */
static void *h2_mem_malloc(size_t size, void *ud)
{
    return bc_alloc(&((struct h2_conn *)ud)->mem, &h2_mem_shape, size);
}

static void h2_mem_free(void *p, void *ud)
{
    bc_free(&((struct h2_conn *)ud)->mem, &h2_mem_shape, p);
}

static void *h2_mem_realloc(void *p, size_t size, void *ud)
{
    return bc_realloc(&((struct h2_conn *)ud)->mem, &h2_mem_shape, p, size);
}

/* nghttp2's calloc: h2_mem_malloc, zeroed (NULL when n * size
 * overflows). */
static void *h2_mem_calloc(size_t n, size_t size, void *ud)
{
    void *p;

    if (size && n > SIZE_MAX / size) return NULL;
    p = h2_mem_malloc(n * size, ud);
    if (p) memset(p, 0, n * size);
    return p;
}

/* Schedules a send at the end of the loop turn. */
static void h2_send_soon(struct h2_conn *hc)
{
    if (hc->ev_send && !hc->closing) event_active(hc->ev_send, EV_WRITE, 1);
}

/* The connection is over: no more frames; proxy.c is told at the end of
 * the turn (h2_on_send_event), when no nghttp2 call is on the stack. */
static void h2_die(struct h2_conn *hc)
{
    if (hc->closing) return;
    hc->closing = 1;
    if (hc->ev_send) event_active(hc->ev_send, EV_WRITE, 1);
}

/* Ends the connection on an error: one GOAWAY with code (and the last
 * stream processed); nghttp2 ignores every frame from now on, and once the
 * GOAWAY is sent it wants neither to read nor to write, so h2_send ends
 * the connection when the output is flushed, H2_LINGER_MS at most. */
static void h2_terminate(struct h2_conn *hc, uint32_t code)
{
    static const struct timeval linger = {H2_LINGER_MS / 1000, (H2_LINGER_MS % 1000) * 1000};

    if (hc->terminated) return;
    hc->terminated = 1;
    if (nghttp2_session_terminate_session(hc->s, code) != 0) {
        h2_die(hc);
        return;
    }
    st_set_timeouts(hc->bev, NULL, &linger); /* a client that does not read */
    h2_send_soon(hc);
}

/* Counts a control frame or reset in the current second; 1 when a limit
 * is passed (the connection ends: GOAWAY ENHANCE_YOUR_CALM). */
static int h2_flood(struct h2_conn *hc, uint32_t *counter, uint32_t limit, const char *what)
{
    uint64_t now = wk_now_ms();

    if (now - hc->window_start >= 1000) {
        hc->window_start = now;
        hc->resets = 0;
        hc->control = 0;
    }
    if (hc->terminated) return 1;
    if (++*counter <= limit) return 0;
    log_warn("http2", "client sent more than %u %s per second: GOAWAY", limit, what);
    h2_terminate(hc, NGHTTP2_ENHANCE_YOUR_CALM);
    return 1;
}

/* ---------------------------------------------------- virtual streams */

/* proxy.c wrote response bytes: let the data source send them. */
static int h2_vs_output(struct stream *vs, void *ctx)
{
    struct h2_stream *hs = ctx;

    (void)vs;
    if (hs->hc->closing) return -1;
    if (hs->responded && hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->hc->s, hs->id);
    }
    h2_send_soon(hs->hc);
    return 0;
}

/* proxy.c reads the body (on) or holds it: the stream window follows. */
static void h2_vs_interest(struct stream *vs, void *ctx, int on)
{
    struct h2_stream *hs = ctx;

    (void)vs;
    hs->reading = on;
    if (on && hs->unconsumed && !hs->hc->closing) {
        nghttp2_session_consume_stream(hs->hc->s, hs->id, hs->unconsumed);
        hs->unconsumed = 0;
        h2_send_soon(hs->hc);
    }
}

/* proxy.c ended the response body. */
static void h2_vs_end(struct stream *vs, void *ctx)
{
    struct h2_stream *hs = ctx;

    hs->out_ended = 1;
    h2_vs_output(vs, ctx);
}

static const struct st_vops h2_vops = {h2_vs_output, h2_vs_interest, h2_vs_end};

/* ------------------------------------------------------------ streams */

/* Empties fl for its next use, keeping its memory while it is small
 * (H2_SPARE_FIELDS, H2_SPARE_BLOB), else freeing it. */
static void h2_fields_clear(struct h2_fields *fl)
{
    if (fl->cap > H2_SPARE_FIELDS || fl->bcap > H2_SPARE_BLOB) {
        h2_fields_free(fl);
        return;
    }
    fl->n = 0;
    fl->blen = 0;
}

/* Unlinks and frees hs (its sub must be gone): while the connection
 * goes on and keeps fewer than H2_SPARE, hs is kept for its next stream
 * (h2_stream_new), with its field list's memory. */
static void h2_stream_free(struct h2_stream *hs)
{
    struct h2_conn *hc = hs->hc;

    if (hs->next) hs->next->prev = hs->prev;
    if (hs->prev) hs->prev->next = hs->next;
    else if (hc->streams == hs) hc->streams = hs->next;
    hc->nstreams--;
    hc->frees++;
    free(hs->trailers);
    if (hc->closing || hc->nspare >= H2_SPARE) {
        h2_fields_free(&hs->head);
        free(hs);
        return;
    }
    h2_fields_clear(&hs->head);
    {
        struct h2_fields head = hs->head;
        memset(hs, 0, sizeof(*hs));
        hs->head = head;
    }
    hs->next = hc->spare;
    hc->spare = hs;
    hc->nspare++;
}

/* The data source of a response: the virtual stream's output. */
static ssize_t h2_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *hs = src->ptr;
    struct evbuffer *out;
    int n;

    (void)ud;
    if (!hs->vs) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* detached: reset */
    out = st_output(hs->vs);
    n = evbuffer_remove(out, buf, len);
    if (n < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (n > 0) hs->taken = 1;
    if (evbuffer_get_length(out) == 0 && hs->out_ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (hs->ntrailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(s, id, hs->trailers, hs->ntrailers) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return n;
    }
    if (n == 0) {
        hs->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return n;
}

int h2_fields_add(struct h2_fields *fl, const uint8_t *name, size_t nlen, const uint8_t *value,
                  size_t vlen, size_t max_fields, size_t max_bytes)
{
    if (fl->n >= max_fields || fl->blen + nlen + vlen > max_bytes) return 1;
    if (fl->n == fl->cap) {
        size_t nc = fl->cap ? fl->cap * 2 : 16;
        struct h2_field *nf = realloc(fl->f, nc * sizeof(*nf));
        if (!nf) return -1;
        fl->f = nf;
        fl->cap = nc;
    }
    if (fl->blen + nlen + vlen > fl->bcap) {
        size_t nc = fl->bcap ? fl->bcap : 1024;
        char *nb;
        while (nc < fl->blen + nlen + vlen) nc *= 2;
        nb = realloc(fl->blob, nc);
        if (!nb) return -1;
        /* fields point into the blob: move them along */
        for (size_t i = 0; i < fl->n; i++) {
            fl->f[i].name = nb + (fl->f[i].name - fl->blob);
            fl->f[i].value = nb + (fl->f[i].value - fl->blob);
        }
        fl->blob = nb;
        fl->bcap = nc;
    }
    memcpy(fl->blob + fl->blen, name, nlen);
    fl->f[fl->n].name = fl->blob + fl->blen;
    fl->f[fl->n].nlen = nlen;
    fl->blen += nlen;
    memcpy(fl->blob + fl->blen, value, vlen);
    fl->f[fl->n].value = fl->blob + fl->blen;
    fl->f[fl->n].vlen = vlen;
    fl->blen += vlen;
    fl->n++;
    return 0;
}

void h2_fields_free(struct h2_fields *fl)
{
    free(fl->f);
    free(fl->blob);
    memset(fl, 0, sizeof(*fl));
}

/* Appends a received request field to hs (copied); the entry point's
 * limits mark the head too big (431).  0 / -1 (out of memory). */
static int h2_add_field(struct h2_stream *hs, const uint8_t *name, size_t nlen,
                        const uint8_t *value, size_t vlen)
{
    const struct h2_limits *lim = &hs->hc->lim;
    size_t maxf = lim->max_fields < H2_FIELDS_MAX ? lim->max_fields : H2_FIELDS_MAX;
    int rc;

    if (hs->too_big) return 0;
    rc = h2_fields_add(&hs->head, name, nlen, value, vlen, maxf, lim->max_head);
    if (rc > 0) hs->too_big = 1;
    return rc < 0 ? -1 : 0;
}

/* ------------------------------------------------------ nghttp2 hooks */

/* A new stream id of hc (a kept one when there is one), linked in its
 * list; NULL when out of memory. */
static struct h2_stream *h2_stream_new(struct h2_conn *hc, int32_t id)
{
    struct h2_stream *hs = hc->spare;

    if (hs) {
        hc->spare = hs->next; /* zeroed by h2_stream_free but its fields */
        hc->nspare--;
    } else {
        hs = calloc(1, sizeof(*hs));
        if (!hs) return NULL;
    }
    hs->hc = hc;
    hs->id = id;
    hs->next = hc->streams;
    if (hc->streams) hc->streams->prev = hs;
    hc->streams = hs;
    hc->nstreams++;
    return hs;
}

static int h2_on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *hs;

    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (hc->nstreams >= hc->lim.max_streams) {
        /* past the SETTINGS_MAX_CONCURRENT_STREAMS we announced: a stream
           error (RFC 9113 5.1.2), the connection goes on; its fields are
           decoded (HPACK state) and dropped */
        if (nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, fr->hd.stream_id,
                                      NGHTTP2_REFUSED_STREAM) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
    }
    hs = h2_stream_new(hc, fr->hd.stream_id);
    if (!hs) return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, hs->id, hs);
    return 0;
}

static int h2_on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                        size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);

    (void)flags;
    (void)ud;
    if (!hs) return 0;
    if (hs->head_done) {
        /* trailers: to the exchange, under the head's limits */
        hs->tbytes += nlen + vlen;
        if (!hs->sub) return 0;
        if (hs->tbytes > hs->hc->lim.max_head ||
            px_h2_trailer(hs->sub, (const char *)name, nlen, (const char *)value, vlen) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
        return 0;
    }
    return h2_add_field(hs, name, nlen, value, vlen) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* The request head of hs is complete: a client connection for it. */
static void h2_request(struct h2_conn *hc, struct h2_stream *hs, int end_stream)
{
    static const nghttp2_nv big[] = {
        {(uint8_t *)":status", (uint8_t *)"431", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    struct stream *vs;

    hs->head_done = 1;
    if (hs->too_big) {
        /* Request Header Fields Too Large, then the stream ends */
        nghttp2_submit_response(hc->s, hs->id, big, 1, NULL);
        return;
    }
    vs = st_new_virtual_cached(&hc->vcache, hc->base, &h2_vops, hs);
    hs->sub = vs ? px_h2_stream_open(hc->c, vs, hs) : NULL;
    if (!hs->sub) {
        st_free_cached(&hc->vcache, vs);
        nghttp2_submit_rst_stream(hc->s, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    hs->vs = vs;
    px_h2_request(hs->sub, hs->head.f, hs->head.n, end_stream);
    /* the fields were copied by proxy.c (hs lives on: only nghttp2's
       stream close frees it); their memory serves the next stream */
    h2_fields_clear(&hs->head);
}

static int h2_on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    struct h2_conn *hc = ud;
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
    int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (fr->hd.type) {
    case NGHTTP2_HEADERS:
        if (hs && !hs->head_done && fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
            h2_request(hc, hs, end);
        } else if (hs && end && hs->vs) {
            st_virtual_eof(hs->vs); /* trailers end the body */
        }
        break;
    case NGHTTP2_DATA:
        if (hs && end && hs->vs) st_virtual_eof(hs->vs);
        break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
        if (!(fr->hd.flags & NGHTTP2_FLAG_ACK))
            h2_flood(hc, &hc->control, hc->lim.max_control, "SETTINGS or PING frames");
        break;
    case NGHTTP2_RST_STREAM:
        h2_flood(hc, &hc->resets, hc->lim.max_resets, "stream resets");
        break;
    default:
        break;
    }
    return 0;
}

int h2_stream_data(nghttp2_session *s, int32_t id, struct stream *vs, int reading,
                   size_t *unconsumed, const uint8_t *data, size_t len)
{
    /* the connection window comes back at once; the stream's when read */
    nghttp2_session_consume_connection(s, len);
    if (!vs) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    if (evbuffer_add(st_input(vs), data, len) < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (reading) nghttp2_session_consume_stream(s, id, len);
    else *unconsumed += len;
    st_virtual_input(vs);
    return 0;
}

static int h2_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                      size_t len, void *ud)
{
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(s, id);

    (void)flags;
    (void)ud;
    return h2_stream_data(s, id, hs ? hs->vs : NULL, hs && hs->reading,
                          hs ? &hs->unconsumed : NULL, data, len);
}

static int h2_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    struct h2_stream *hs = nghttp2_session_get_stream_user_data(s, id);
    struct px_conn *sub;

    (void)err;
    (void)ud;
    if (!hs) return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    sub = hs->sub;
    if (hs->vs) st_virtual_detach(hs->vs);
    hs->sub = NULL;
    hs->vs = NULL;
    h2_stream_free(hs);
    if (sub) px_h2_stream_closed(sub); /* frees sub and its virtual stream */
    return 0;
}

/* --------------------------------------------------------- connection */

/* The first bytes nghttp2 sends, data[0..n): our SETTINGS frame, its
 * first entry SETTINGS_MAX_CONCURRENT_STREAMS with the value nghttp2 was
 * given (h2_nghttp2_streams), put back to the configured one on the wire
 * before it goes to out.  (Past a limit the peer acknowledged nghttp2
 * answers a connection error, RFC 9113 5.1.2 wants a stream error: the
 * configured limit is ours to enforce, h2_on_begin_headers.)  0 / -1. */
static int h2_settings_out(struct h2_conn *hc, struct evbuffer *out, const uint8_t *data,
                           size_t n)
{
    uint8_t f[64];
    uint32_t v = hc->lim.max_streams;

    hc->settings_out = 1;
    if (n > sizeof(f) || n < 15 || data[3] != NGHTTP2_SETTINGS || (data[4] & NGHTTP2_FLAG_ACK) ||
        data[9] != 0 || data[10] != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
        return evbuffer_add(out, data, n); /* not the frame h2_conn_new made */
    memcpy(f, data, n);
    f[11] = (uint8_t)(v >> 24);
    f[12] = (uint8_t)(v >> 16);
    f[13] = (uint8_t)(v >> 8);
    f[14] = (uint8_t)v;
    return evbuffer_add(out, f, n);
}

/* Sends what the session has (end of turn, or after reading), then tells
 * streams whose output was taken. */
static void h2_send(struct h2_conn *hc)
{
    struct evbuffer *out = st_output(hc->bev);
    const uint8_t *data;
    ssize_t n = 0;

    if (hc->sending || hc->closing) return;
    hc->sending = 1;
    /* the socket's output is capped: the rest waits for its write
       callback, and the streams' windows hold their servers meanwhile */
    while (evbuffer_get_length(out) < RELAIS_BUFFER_HIGH &&
           (n = nghttp2_session_mem_send(hc->s, &data)) > 0) {
        if (!hc->settings_out) {
            if (h2_settings_out(hc, out, data, (size_t)n) < 0) break;
            continue;
        }
        if (evbuffer_add(out, data, (size_t)n) < 0) break;
    }
    hc->sending = 0;
    if (n < 0) {
        log_debug("http2", "send: %s", nghttp2_strerror((int)n));
        h2_die(hc);
        return;
    }
    /* a user told may free any stream, its own included (a freed stream
       is kept zeroed for reuse or freed): after a free the scan starts
       again (each flag is cleared before its stream is told, so each is
       told once and the scan ends) */
    for (struct h2_stream *hs = hc->streams; hs;) {
        unsigned frees = hc->frees;
        if (!hs->taken || !hs->vs) {
            hs = hs->next;
            continue;
        }
        hs->taken = 0;
        st_virtual_taken(hs->vs);
        hs = hc->frees == frees ? hs->next : hc->streams;
    }
    if (!nghttp2_session_want_read(hc->s) && !nghttp2_session_want_write(hc->s) &&
        evbuffer_get_length(out) == 0)
        h2_die(hc);
}

static void h2_on_send_event(evutil_socket_t fd, short what, void *arg)
{
    struct h2_conn *hc = arg;

    (void)fd;
    (void)what;
    if (hc->closing) {
        px_h2_conn_closed(hc->c); /* frees hc */
        return;
    }
    h2_send(hc);
}

/* The GOAWAY error code for a fatal error of nghttp2_session_mem_recv
 * (one it queued no GOAWAY for). */
static uint32_t h2_error_code(int err)
{
    switch (err) {
    case NGHTTP2_ERR_FLOODED:   /* the client does not read our answers */
    case H2_ERR_CONTINUATIONS:  /* a CONTINUATION flood */
        return NGHTTP2_ENHANCE_YOUR_CALM;
    case NGHTTP2_ERR_NOMEM:
    case NGHTTP2_ERR_CALLBACK_FAILURE:
        return NGHTTP2_INTERNAL_ERROR;
    default:
        return NGHTTP2_PROTOCOL_ERROR;
    }
}

/* Bytes from the client. */
static void h2_on_read(struct stream *bev, void *arg)
{
    struct h2_conn *hc = arg;
    struct evbuffer *in = st_input(bev);

    while (evbuffer_get_length(in) > 0 && !hc->closing) {
        struct evbuffer_iovec v;
        ssize_t n;
        if (hc->terminated) {
            /* the GOAWAY is on its way: what follows is not read */
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        n = nghttp2_session_mem_recv(hc->s, v.iov_base, v.iov_len);
        if (n < 0) {
            log_debug("http2", "receive: %s", nghttp2_strerror((int)n));
            /* a connection error: nghttp2 queued a GOAWAY for protocol
               errors; the others (floods, our failures) get one here */
            h2_terminate(hc, h2_error_code((int)n));
            continue;
        }
        evbuffer_drain(in, (size_t)n);
    }
    h2_send(hc);
}

/* The socket's output drained. */
static void h2_on_write(struct stream *bev, void *arg)
{
    struct h2_conn *hc = arg;

    (void)bev;
    h2_send(hc);
}

static void h2_on_event(struct stream *bev, short what, void *arg)
{
    struct h2_conn *hc = arg;

    (void)bev;
    if (what & (ST_EOF | ST_ERROR | ST_TIMEOUT)) h2_die(hc);
}

/* The concurrent stream limit nghttp2 enforces itself (as a connection
 * error) for an announced max: twice as many, so that a client past max
 * gets stream errors, one that ignores them too the connection error. */
static uint32_t h2_nghttp2_streams(uint32_t max)
{
    return max > INT32_MAX / 2 ? INT32_MAX : 2 * max;
}

struct h2_conn *h2_conn_new(struct px_conn *c, struct event_base *base, struct stream *bev,
                            const struct h2_limits *lim)
{
    struct h2_conn *hc = calloc(1, sizeof(*hc));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[3];
    nghttp2_mem mem = {hc, h2_mem_malloc, h2_mem_free, h2_mem_calloc, h2_mem_realloc};
    int rc = -1;

    if (!hc) return NULL;
    hc->c = c;
    hc->base = base;
    hc->bev = bev;
    hc->lim = *lim;
    hc->window_start = wk_now_ms();
    hc->vcache.cap = H2_SPARE;
    hc->ev_send = event_new(base, -1, 0, h2_on_send_event, hc);
    if (!hc->ev_send || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* closed streams are not kept for RFC 7540's priority tree (RFC 9113
       deprecates it; a dependency on a closed stream gets the default
       priority): less work and memory per stream */
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_send_header_block_length(opt, 256 * 1024);
    if (nghttp2_session_server_new3(&hc->s, cb, hc, opt, &mem) != 0) goto out;
    /* nghttp2 gets a higher stream limit than the one announced (see
       h2_settings_out); the entry must stay the first */
    iv[0] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                     h2_nghttp2_streams(lim->max_streams)};
    iv[1] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW};
    iv[2] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                     (uint32_t)(lim->max_head + 32 * lim->max_fields)};
    if (nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, iv, 3) != 0) goto out;
    /* the connection window: as large as a stream's, given back as read */
    nghttp2_session_set_local_window_size(hc->s, NGHTTP2_FLAG_NONE, 0, 16 * H2_WINDOW);
    rc = 0;
out:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (rc < 0) {
        if (hc->s) nghttp2_session_del(hc->s);
        bc_clear(&hc->mem);
        if (hc->ev_send) event_free(hc->ev_send);
        free(hc);
        return NULL;
    }
    return hc;
}

/* Decodes base64url text s[0..n) (RFC 4648 section 5, without padding;
 * trailing '=' tolerated) into out[0..cap).  The byte count, or -1 when
 * s is not base64url or does not fit. */
static ssize_t h2_b64url(const char *s, size_t n, uint8_t *out, size_t cap)
{
    unsigned acc = 0, bits = 0;
    size_t o = 0;

    while (n && s[n - 1] == '=') n--;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-') v = 62;
        else if (c == '_') v = 63;
        else return -1;
        acc = ((acc << 6) | (unsigned)v) & 0x3fff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return bits >= 6 ? -1 : (ssize_t)o; /* one character alone is no byte */
}

int h2_conn_upgrade(struct h2_conn *hc, const char *settings, size_t slen,
                    const struct h2_field *f, size_t n)
{
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    uint8_t payload[H2_UPGRADE_SETTINGS];
    ssize_t plen = h2_b64url(settings, slen, payload, sizeof(payload));
    struct h2_stream *hs;
    int head = 0;

    if (plen < 0 || plen % 6 || hc->upgraded || hc->streams) return -1;
    for (size_t i = 0; i < n; i++)
        if (f[i].nlen == 7 && !memcmp(f[i].name, ":method", 7) && f[i].vlen == 4 &&
            !memcmp(f[i].value, "HEAD", 4))
            head = 1;
    hs = h2_stream_new(hc, 1);
    if (!hs) return -1;
    /* the settings as the client's first SETTINGS (not acknowledged),
       stream 1 half-closed (remote), hs its user data */
    if (nghttp2_session_upgrade2(hc->s, payload, (size_t)plen, head, hs) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (h2_add_field(hs, (const uint8_t *)f[i].name, f[i].nlen, (const uint8_t *)f[i].value,
                         f[i].vlen) < 0)
            return -1;
    /* HTTP/2 names are lowercase (the fields point into the blob) */
    for (size_t i = 0; i < hs->head.n; i++) {
        char *nm = hs->head.blob + (hs->head.f[i].name - hs->head.blob);
        for (size_t k = 0; k < hs->head.f[i].nlen; k++)
            nm[k] = (char)tolower((unsigned char)nm[k]);
    }
    if (evbuffer_add(st_output(hc->bev), sw, sizeof(sw) - 1) < 0) return -1;
    hc->upgraded = hs;
    return 0;
}

void h2_conn_begin(struct h2_conn *hc)
{
    st_setcb(hc->bev, h2_on_read, h2_on_write, h2_on_event, hc);
    st_setwatermark(hc->bev, ST_WRITE, 0, 0);
    st_enable(hc->bev, ST_READ);
    if (hc->upgraded) {
        /* the request that asked for the upgrade: stream 1 */
        struct h2_stream *hs = hc->upgraded;
        hc->upgraded = NULL;
        h2_request(hc, hs, 1);
    }
    if (evbuffer_get_length(st_input(hc->bev))) h2_on_read(hc->bev, hc);
    else h2_send(hc);
}

void h2_conn_free(struct h2_conn *hc)
{
    if (!hc) return;
    hc->closing = 1;
    /* streams still open: their client connections go first */
    while (hc->streams) {
        struct h2_stream *hs = hc->streams;
        struct px_conn *sub = hs->sub;
        if (hs->vs) st_virtual_detach(hs->vs);
        hs->sub = NULL;
        hs->vs = NULL;
        h2_stream_free(hs);
        if (sub) px_h2_stream_closed(sub);
    }
    while (hc->spare) {
        struct h2_stream *hs = hc->spare;
        hc->spare = hs->next;
        h2_fields_free(&hs->head);
        free(hs);
    }
    st_vcache_clear(&hc->vcache);
    nghttp2_session_del(hc->s);
    bc_clear(&hc->mem);
    if (hc->ev_send) event_free(hc->ev_send);
    free(hc);
}

void h2_conn_shutdown(struct h2_conn *hc)
{
    if (!hc || hc->closing) return;
    nghttp2_submit_goaway(hc->s, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->s),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_send_soon(hc);
}

/* 1 for a header HTTP/2 does not carry (RFC 9113 8.2.2).  Called for
 * every response field: the length picks the candidates first. */
static int h2_hop(const char *n, size_t l)
{
    switch (l) {
    case 2: return msg_name_eq(n, l, "te", 2);
    case 7: return msg_name_eq(n, l, "upgrade", 7) || msg_name_eq(n, l, "trailer", 7);
    case 10: return msg_name_eq(n, l, "connection", 10) || msg_name_eq(n, l, "keep-alive", 10);
    case 16: return msg_name_eq(n, l, "proxy-connection", 16);
    case 17: return msg_name_eq(n, l, "transfer-encoding", 17);
    default: return 0;
    }
}

/* Copies name[0..n) to dst in lowercase (ASCII, as tolower in the C
 * locale). */
static void h2_lower_copy(char *dst, const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        dst[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
}

/* Writes v in decimal at the end of buf[0..cap) (no NUL): its first
 * character; cap must hold 20 digits. */
static char *h2_decimal(char *buf, size_t cap, uint64_t v)
{
    char *p = buf + cap;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

#define H2_RESPOND_FIELDS 32    /* response fields h2_respond takes on its
                                   stack (more: malloc) */
#define H2_RESPOND_NAMES 4096   /* bytes of field names likewise */

int h2_respond(struct h2_stream *hs, int status, const struct relais_hdrs *h, int64_t clen,
               int has_body)
{
    struct h2_conn *hc = hs->hc;
    nghttp2_nv nv_stack[H2_RESPOND_FIELDS + 2], *nv = nv_stack;
    char lower_stack[H2_RESPOND_NAMES], *lower = lower_stack;
    nghttp2_data_provider dp;
    char st[3], cl[20], *clp = NULL;
    size_t n = 0, total = 0;
    unsigned code = (unsigned)(status < 0 ? -status : status) % 1000;
    int rc;

    if (hc->closing || hs->responded) return -1;
    for (uint32_t i = 0; i < h->n; i++) total += h->v[i].nlen;
    /* the common head fits on the stack; a big one is malloc'd */
    if (h->n > H2_RESPOND_FIELDS) nv = malloc((h->n + 2) * sizeof(*nv));
    if (total > sizeof(lower_stack)) lower = malloc(total);
    if (!nv || !lower) {
        if (nv != nv_stack) free(nv);
        if (lower != lower_stack) free(lower);
        return -1;
    }
    st[0] = (char)('0' + code / 100);
    st[1] = (char)('0' + code / 10 % 10);
    st[2] = (char)('0' + code % 10);
    nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE};
    total = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct msg_hdr *f = &h->v[i];
        if (h2_hop(f->name, f->nlen)) continue;
        if (clen >= 0 && f->nlen == 14 && msg_name_eq(f->name, f->nlen, "content-length", 14))
            continue;
        h2_lower_copy(lower + total, f->name, f->nlen);
        nv[n++] = (nghttp2_nv){(uint8_t *)lower + total, (uint8_t *)f->value, f->nlen, f->vlen,
                               NGHTTP2_NV_FLAG_NONE};
        total += f->nlen;
    }
    if (clen >= 0) {
        clp = h2_decimal(cl, sizeof(cl), (uint64_t)clen);
        nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clp,
                               14, (size_t)(cl + sizeof(cl) - clp), NGHTTP2_NV_FLAG_NONE};
    }
    dp.source.ptr = hs;
    dp.read_callback = h2_read_body;
    /* nghttp2 copies the fields */
    rc = nghttp2_submit_response(hc->s, hs->id, nv, n, has_body ? &dp : NULL);
    if (nv != nv_stack) free(nv);
    if (lower != lower_stack) free(lower);
    if (rc != 0) return -1;
    hs->responded = 1;
    if (!has_body) hs->out_ended = 1;
    h2_send_soon(hc);
    return 0;
}

void *h2_trailer_block(const struct relais_hdrs *t, size_t *n)
{
    size_t total = 0, k = 0;
    nghttp2_nv *nv;
    char *bytes;

    *n = 0;
    if (!t || !t->n) return NULL;
    for (uint32_t i = 0; i < t->n; i++) total += t->v[i].nlen + t->v[i].vlen;
    nv = malloc(t->n * sizeof(*nv) + total + 1);
    if (!nv) return NULL;
    bytes = (char *)(nv + t->n);
    for (uint32_t i = 0; i < t->n; i++) {
        const struct msg_hdr *f = &t->v[i];
        if (h2_hop(f->name, f->nlen) || !f->nlen || f->name[0] == ':') continue;
        h2_lower_copy(bytes, f->name, f->nlen);
        memcpy(bytes + f->nlen, f->value, f->vlen);
        nv[k++] = (nghttp2_nv){(uint8_t *)bytes, (uint8_t *)bytes + f->nlen, f->nlen, f->vlen,
                               NGHTTP2_NV_FLAG_NONE};
        bytes += f->nlen + f->vlen;
    }
    *n = k;
    return nv;
}

int h2_set_trailers(struct h2_stream *hs, const struct relais_hdrs *t)
{
    free(hs->trailers);
    hs->trailers = NULL;
    hs->ntrailers = 0;
    if (!t || !t->n) return 0;
    hs->trailers = h2_trailer_block(t, &hs->ntrailers);
    return hs->trailers ? 0 : -1;
}

void h2_stream_free_vs(struct h2_conn *hc, struct stream *vs)
{
    if (hc && !hc->closing) st_free_cached(&hc->vcache, vs);
    else st_free(vs);
}

void h2_stream_detach(struct h2_stream *hs)
{
    struct h2_conn *hc = hs->hc;

    hs->sub = NULL;
    hs->vs = NULL;
    if (hc->closing) return;
    if (!hs->out_ended || !hs->responded)
        nghttp2_submit_rst_stream(hc->s, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
    else if (hs->deferred)
        nghttp2_session_resume_data(hc->s, hs->id);
    h2_send_soon(hc);
}
