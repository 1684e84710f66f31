/*
 * h2up — HTTP/2 towards servers.  See h2up.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "h2up.h"
#include "log.h"
#include "message.h"
#include "relais.h"
#include "stream.h"
#include "upstream.h"

#define H2U_WINDOW (1 << 20)     /* stream window we announce */
#define H2U_CONN_WINDOW (16 << 20) /* connection window we announce */
#define H2U_MAX_HEAD (256 * 1024) /* response head / trailer bytes kept */
#define H2U_MAX_FIELDS 1024       /* response head / trailer fields kept */

/** One request on a connection. */
struct h2u_stream {
    struct h2u_conn *hc;        /* its connection */
    int32_t id;                 /* stream id, 0 before h2u_submit */
    struct up_conn *uc;         /* proxy.c's up_conn for it, or NULL once
                                   it let go (h2u_close) */
    struct stream *vs;          /* its virtual stream (owned by uc) */
    struct h2_fields head;     /* final response head */
    struct h2_fields trailers; /* response trailers */
    int status;                 /* final status, 0 before */
    int head_done;              /* the final head was wholly received */
    int head_ended;             /* ... with END_STREAM (no body, no
                                   trailers: gRPC's Trailers-Only) */
    int remote_ended;           /* the server ended the stream */
    unsigned interim;           /* 100 Continue heads seen */
    int in_trailers;            /* the HEADERS being received are trailers */
    int too_big;                /* a head passed a limit: reset */
    nghttp2_nv *req_trailers;   /* request trailers to send (one block,
                                   h2_trailer_block), or NULL */
    size_t nreq_trailers;       /* how many */
    int out_ended;              /* proxy.c ended the request body */
    int deferred;               /* the data source waits for output */
    int reading;                /* proxy.c takes the response body */
    size_t unconsumed;          /* body bytes whose window is held */
    int taken;                  /* output was taken: tell the user */
    int closed;                 /* the stream closed on the wire */
    struct h2u_stream *next;    /* connection's list */
    struct h2u_stream *prev;
};

/** An HTTP/2 connection to a server. */
struct h2u_conn {
    struct h2u_conn **list;     /* the pool's list it is linked in */
    struct h2u_conn *next;      /* list links */
    struct h2u_conn *prev;
    struct up_conn *sock;       /* the socket connection (owned) */
    struct event_base *base;    /* its loop */
    nghttp2_session *s;         /* the session */
    struct h2u_stream *streams; /* streams */
    unsigned nstreams;          /* how many */
    unsigned frees;             /* streams freed so far (wraps): a scan
                                   of streams that calls out restarts
                                   when it changed */
    int goaway;                 /* GOAWAY received or sent: no new stream */
    int dead;                   /* the socket failed: freed at turn end */
    int sending;                /* inside h2u_send */
    struct event *ev_send;      /* end-of-turn send / free */
    struct event *ev_idle;      /* idle timeout */
    int64_t idle_ms;            /* its length (0 = none) */
};

static void h2u_send(struct h2u_conn *hc);

/* Schedules a send (or the free of a dead connection) at the end of the
 * loop turn. */
static void h2u_send_soon(struct h2u_conn *hc)
{
    if (hc->ev_send) event_active(hc->ev_send, EV_WRITE, 1);
}

/* The connection failed: no new streams, freed at the end of the turn
 * (never under an nghttp2 call). */
static void h2u_die(struct h2u_conn *hc)
{
    hc->dead = 1;
    hc->goaway = 1;
    h2u_send_soon(hc);
}

/* Arms the idle timer when hc has no stream, stops it otherwise. */
static void h2u_idle(struct h2u_conn *hc)
{
    if (!hc->ev_idle) return;
    if (hc->nstreams == 0 && hc->idle_ms > 0) {
        struct timeval tv = {hc->idle_ms / 1000, (hc->idle_ms % 1000) * 1000};
        evtimer_add(hc->ev_idle, &tv);
    } else {
        evtimer_del(hc->ev_idle);
    }
}

/* ------------------------------------------------------------- streams */

/* Unlinks and frees hs; its up_conn (if any) forgets it.  The caller
 * tells the virtual stream first. */
static void h2u_stream_free(struct h2u_stream *hs)
{
    struct h2u_conn *hc = hs->hc;

    if (hs->next) hs->next->prev = hs->prev;
    if (hs->prev) hs->prev->next = hs->next;
    else if (hc->streams == hs) hc->streams = hs->next;
    hc->nstreams--;
    hc->frees++;
    if (hs->id && !hs->closed) nghttp2_session_set_stream_user_data(hc->s, hs->id, NULL);
    if (hs->uc) hs->uc->h2s = NULL;
    h2_fields_free(&hs->head);
    h2_fields_free(&hs->trailers);
    free(hs->req_trailers);
    free(hs);
    h2u_idle(hc);
}

/* Ends hs for its user with an error (reset, dead connection) and frees
 * it.  May call back into proxy.c. */
static void h2u_stream_fail(struct h2u_stream *hs)
{
    struct stream *vs = hs->vs;

    hs->vs = NULL;
    h2u_stream_free(hs);
    if (vs) {
        st_virtual_detach(vs);
        st_virtual_error(vs);
    }
}

/* proxy.c wrote request body bytes. */
static int h2u_vs_output(struct stream *vs, void *ctx)
{
    struct h2u_stream *hs = ctx;

    (void)vs;
    if (hs->hc->dead) return -1;
    if (hs->id && hs->deferred) {
        hs->deferred = 0;
        nghttp2_session_resume_data(hs->hc->s, hs->id);
    }
    h2u_send_soon(hs->hc);
    return 0;
}

/* proxy.c reads the response body (on) or holds it. */
static void h2u_vs_interest(struct stream *vs, void *ctx, int on)
{
    struct h2u_stream *hs = ctx;

    (void)vs;
    hs->reading = on;
    if (on && hs->unconsumed && hs->id && !hs->closed && !hs->hc->dead) {
        nghttp2_session_consume_stream(hs->hc->s, hs->id, hs->unconsumed);
        hs->unconsumed = 0;
        h2u_send_soon(hs->hc);
    }
}

/* proxy.c ended the request body. */
static void h2u_vs_end(struct stream *vs, void *ctx)
{
    struct h2u_stream *hs = ctx;

    hs->out_ended = 1;
    h2u_vs_output(vs, ctx);
}

static const struct st_vops h2u_vops = {h2u_vs_output, h2u_vs_interest, h2u_vs_end};

/* The data source of a request body: the virtual stream's output; at its
 * end the trailers, if any, follow in a HEADERS frame. */
static ssize_t h2u_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                             uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    struct h2u_stream *hs = src->ptr;
    struct evbuffer *out;
    int n;

    (void)ud;
    if (!hs->vs) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    out = st_output(hs->vs);
    n = evbuffer_remove(out, buf, len);
    if (n < 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (n > 0) hs->taken = 1;
    if (evbuffer_get_length(out) == 0 && hs->out_ended) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (hs->nreq_trailers) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(s, id, hs->req_trailers, hs->nreq_trailers) != 0)
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

/* ------------------------------------------------------- nghttp2 hooks */

static int h2u_on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    struct h2u_stream *hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);

    (void)ud;
    if (!hs || fr->hd.type != NGHTTP2_HEADERS) return 0;
    /* a HEADERS frame after the final head carries trailers */
    hs->in_trailers = hs->status >= 200;
    if (!hs->in_trailers) h2_fields_free(&hs->head); /* a new (interim) head */
    return 0;
}

static int h2u_on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                         size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                         void *ud)
{
    struct h2u_stream *hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
    int rc;

    (void)flags;
    (void)ud;
    if (!hs || hs->too_big) return 0;
    if (!hs->in_trailers && nlen == 7 && !memcmp(name, ":status", 7)) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++) st = st * 10 + (value[i] - '0');
        if (vlen != 3 || st < 100) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (st >= 200) hs->status = st;
        else if (st == 100) hs->interim++;
        return 0;
    }
    if (nlen && name[0] == ':') return 0; /* nghttp2 checked them */
    rc = h2_fields_add(hs->in_trailers ? &hs->trailers : &hs->head, name, nlen, value, vlen,
                       H2U_MAX_FIELDS, H2U_MAX_HEAD);
    if (rc < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (rc > 0) {
        log_warn("http2", "a server's response head or trailers passed %d bytes / %d fields: "
                          "stream reset", H2U_MAX_HEAD, H2U_MAX_FIELDS);
        hs->too_big = 1;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int h2u_on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    struct h2u_conn *hc = ud;
    struct h2u_stream *hs;
    int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    if (fr->hd.type == NGHTTP2_GOAWAY) {
        hc->goaway = 1; /* streams above last_stream_id close (refused) */
        return 0;
    }
    hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
    if (!hs || !hs->vs) return 0;
    if (end) hs->remote_ended = 1;
    if (fr->hd.type == NGHTTP2_HEADERS) {
        if (!hs->in_trailers) {
            if (hs->status >= 200) {
                hs->head_done = 1;
                hs->head_ended = end;
            }
            struct stream *vs = hs->vs;
            /* a head (final or 100): the user looks at it now */
            st_virtual_wake(vs);
            /* the user may have let go of the stream meanwhile */
            hs = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
            if (!hs || !hs->vs) return 0;
        }
        if (end && hs->status >= 200) st_virtual_eof(hs->vs);
    } else if (fr->hd.type == NGHTTP2_DATA && end) {
        st_virtual_eof(hs->vs);
    }
    return 0;
}

static int h2u_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                       size_t len, void *ud)
{
    struct h2u_stream *hs = nghttp2_session_get_stream_user_data(s, id);

    (void)flags;
    (void)ud;
    return h2_stream_data(s, id, hs ? hs->vs : NULL, hs && hs->reading,
                          hs ? &hs->unconsumed : NULL, data, len);
}

static int h2u_on_stream_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    struct h2u_stream *hs = nghttp2_session_get_stream_user_data(s, id);

    (void)ud;
    if (!hs) return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    hs->closed = 1;
    if (err != NGHTTP2_NO_ERROR || !hs->vs || !st_eof(hs->vs)) {
        /* reset (or closed before the response ended): the user sees an
           error; REFUSED_STREAM after GOAWAY is retried by proxy.c when
           the request allows it */
        if (hs->vs && err != NGHTTP2_NO_ERROR)
            log_debug("http2", "server stream %d closed: %s", id, nghttp2_http2_strerror(err));
        if (hs->uc || hs->vs) {
            h2u_stream_fail(hs);
            return 0;
        }
    }
    if (!hs->uc) h2u_stream_free(hs);
    return 0;
}

/* ---------------------------------------------------------- connection */

/* Frees hc: streams fail, the socket closes, the list forgets it. */
static void h2u_conn_release(struct h2u_conn *hc)
{
    hc->dead = 1;
    while (hc->streams) {
        struct h2u_stream *hs = hc->streams;
        if (hs->vs) h2u_stream_fail(hs);
        else h2u_stream_free(hs);
    }
    if (hc->next) hc->next->prev = hc->prev;
    if (hc->prev) hc->prev->next = hc->next;
    else if (*hc->list == hc) *hc->list = hc->next;
    nghttp2_session_del(hc->s);
    if (hc->ev_send) event_free(hc->ev_send);
    if (hc->ev_idle) event_free(hc->ev_idle);
    up_conn_free(hc->sock);
    free(hc);
}

/* Sends what the session has, then tells streams whose output went. */
static void h2u_send(struct h2u_conn *hc)
{
    struct evbuffer *out = st_output(hc->sock->bev);
    const uint8_t *data;
    ssize_t n = 0;

    if (hc->sending || hc->dead) return;
    hc->sending = 1;
    /* the socket's output is capped: the rest waits for its write
       callback (request bodies stay in their streams meanwhile) */
    while (evbuffer_get_length(out) < RELAIS_BUFFER_HIGH &&
           (n = nghttp2_session_mem_send(hc->s, &data)) > 0)
        if (evbuffer_add(out, data, (size_t)n) < 0) break;
    hc->sending = 0;
    if (n < 0) {
        log_debug("http2", "%s: send: %s", hc->sock->key, nghttp2_strerror((int)n));
        h2u_die(hc);
        return;
    }
    /* a user told may free any stream, its own included: after a free
       the scan starts again (each stream's flag is cleared before it is
       told, so it is told once and the scan ends) */
    for (struct h2u_stream *hs = hc->streams; hs;) {
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
        h2u_die(hc);
}

static void h2u_on_send_event(evutil_socket_t fd, short what, void *arg)
{
    struct h2u_conn *hc = arg;

    (void)fd;
    (void)what;
    if (hc->dead) h2u_conn_release(hc);
    else h2u_send(hc);
}

static void h2u_on_idle(evutil_socket_t fd, short what, void *arg)
{
    struct h2u_conn *hc = arg;

    (void)fd;
    (void)what;
    if (hc->nstreams) return;
    nghttp2_session_terminate_session(hc->s, NGHTTP2_NO_ERROR);
    h2u_send(hc);
    h2u_die(hc);
}

static void h2u_on_read(struct stream *bev, void *arg)
{
    struct h2u_conn *hc = arg;
    struct evbuffer *in = st_input(bev);

    while (evbuffer_get_length(in) > 0 && !hc->dead) {
        struct evbuffer_iovec v;
        ssize_t n;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        n = nghttp2_session_mem_recv(hc->s, v.iov_base, v.iov_len);
        if (n < 0) {
            log_warn("http2", "%s: bad HTTP/2 from the server: %s", hc->sock->key,
                     nghttp2_strerror((int)n));
            h2u_send(hc);
            h2u_die(hc);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    h2u_send(hc);
}

static void h2u_on_write(struct stream *bev, void *arg)
{
    (void)bev;
    h2u_send(arg);
}

static void h2u_on_event(struct stream *bev, short what, void *arg)
{
    struct h2u_conn *hc = arg;

    (void)bev;
    if (what & (ST_EOF | ST_ERROR | ST_TIMEOUT)) {
        if (hc->nstreams)
            log_debug("http2", "%s: connection lost with %u streams open", hc->sock->key,
                      hc->nstreams);
        h2u_die(hc);
    }
}

struct h2u_conn *h2u_conn_new(struct h2u_conn **list, struct up_conn *sock, int64_t idle_ms)
{
    struct h2u_conn *hc = calloc(1, sizeof(*hc));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    nghttp2_settings_entry iv[3];
    int rc = -1;

    if (!hc) {
        up_conn_free(sock);
        return NULL;
    }
    hc->list = list;
    hc->sock = sock;
    hc->base = sock->pool ? up_pool_base(sock->pool) : NULL;
    hc->idle_ms = idle_ms;
    if (!hc->base) goto out;
    hc->ev_send = event_new(hc->base, -1, 0, h2u_on_send_event, hc);
    hc->ev_idle = evtimer_new(hc->base, h2u_on_idle, hc);
    if (!hc->ev_send || !hc->ev_idle || nghttp2_session_callbacks_new(&cb) != 0 ||
        nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, h2u_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, h2u_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2u_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2u_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2u_on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    if (nghttp2_session_client_new2(&hc->s, cb, hc, opt) != 0) goto out;
    iv[0] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    iv[1] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2U_WINDOW};
    iv[2] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2U_MAX_HEAD};
    if (nghttp2_submit_settings(hc->s, NGHTTP2_FLAG_NONE, iv, 3) != 0) goto out;
    nghttp2_session_set_local_window_size(hc->s, NGHTTP2_FLAG_NONE, 0, H2U_CONN_WINDOW);
    rc = 0;
out:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (rc < 0) {
        if (hc->s) nghttp2_session_del(hc->s);
        if (hc->ev_send) event_free(hc->ev_send);
        if (hc->ev_idle) event_free(hc->ev_idle);
        up_conn_free(sock);
        free(hc);
        return NULL;
    }
    hc->next = *list;
    if (*list) (*list)->prev = hc;
    *list = hc;
    st_setcb(sock->bev, h2u_on_read, h2u_on_write, h2u_on_event, hc);
    st_setwatermark(sock->bev, ST_READ, 0, 0);
    st_setwatermark(sock->bev, ST_WRITE, 0, 0);
    st_set_timeouts(sock->bev, NULL, NULL);
    st_enable(sock->bev, ST_READ | ST_WRITE);
    if (evbuffer_get_length(st_input(sock->bev))) h2u_on_read(sock->bev, hc);
    else h2u_send_soon(hc);
    return hc;
}

void h2u_conn_free(struct h2u_conn *hc)
{
    if (hc) h2u_conn_release(hc);
}

struct h2u_conn *h2u_find(struct h2u_conn *list, const char *key)
{
    for (struct h2u_conn *hc = list; hc; hc = hc->next) {
        if (hc->goaway || hc->dead || strcmp(hc->sock->key, key) != 0) continue;
        if (hc->nstreams <
            nghttp2_session_get_remote_settings(hc->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS))
            return hc;
    }
    return NULL;
}

struct up_conn *h2u_open(struct h2u_conn *hc)
{
    struct up_conn *c = calloc(1, sizeof(*c));
    struct h2u_stream *hs = calloc(1, sizeof(*hs));

    if (!c || !hs) goto fail;
    c->bev = st_new_virtual(hc->base, &h2u_vops, hs);
    if (!c->bev) goto fail;
    c->pool = hc->sock->pool;
    c->h2s = hs;
    c->tls = hc->sock->tls;
    hs->hc = hc;
    hs->uc = c;
    hs->vs = c->bev;
    hs->next = hc->streams;
    if (hc->streams) hc->streams->prev = hs;
    hc->streams = hs;
    hc->nstreams++;
    h2u_idle(hc);
    return c;
fail:
    free(hs);
    free(c);
    return NULL;
}

/* 1 for a field HTTP/2 does not carry to a server (RFC 9113 8.2.2; Host
 * becomes :authority).  te passes only as "trailers". */
static int h2u_skip(const struct msg_hdr *f)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "upgrade", "host", NULL};
    for (const char *const *h = hop; *h; h++)
        if (msg_name_eq(f->name, f->nlen, *h, strlen(*h))) return 1;
    if (msg_name_eq(f->name, f->nlen, "te", 2))
        return !(f->vlen == 8 && !strncasecmp(f->value, "trailers", 8));
    return 0;
}

/* Lowercase copies of the names of h's fields into nv (from index *n),
 * the bytes in *lower (malloc'd, freed by the caller).  0 / -1. */
static int h2u_nv_fields(const struct relais_hdrs *h, nghttp2_nv *nv, size_t *n, char **lower)
{
    size_t total = 0;

    for (uint32_t i = 0; i < h->n; i++) total += h->v[i].nlen;
    *lower = malloc(total ? total : 1);
    if (!*lower) return -1;
    total = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct msg_hdr *f = &h->v[i];
        if (h2u_skip(f)) continue;
        for (size_t k = 0; k < f->nlen; k++)
            (*lower)[total + k] = (char)tolower((unsigned char)f->name[k]);
        nv[(*n)++] = (nghttp2_nv){(uint8_t *)*lower + total, (uint8_t *)f->value, f->nlen,
                                  f->vlen, NGHTTP2_NV_FLAG_NONE};
        total += f->nlen;
    }
    return 0;
}

int h2u_submit(struct up_conn *c, const struct h2u_head *hd)
{
    struct h2u_stream *hs = c->h2s;
    struct h2u_conn *hc;
    nghttp2_nv *nv;
    nghttp2_data_provider dp;
    char *lower = NULL;
    size_t n = 0;
    int32_t id = -1;

    if (!hs || hs->id) return -1;
    hc = hs->hc;
    if (hc->dead) return -1;
    nv = malloc((hd->hdrs->n + 4) * sizeof(*nv));
    if (!nv) return -1;
    nv[n++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)hd->method, 7, hd->method_len,
                           NGHTTP2_NV_FLAG_NONE};
    nv[n++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)hd->scheme, 7, strlen(hd->scheme),
                           NGHTTP2_NV_FLAG_NONE};
    nv[n++] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)hd->authority, 10,
                           hd->authority_len, NGHTTP2_NV_FLAG_NONE};
    nv[n++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)hd->path, 5, hd->path_len,
                           NGHTTP2_NV_FLAG_NONE};
    if (h2u_nv_fields(hd->hdrs, nv, &n, &lower) == 0) {
        dp.source.ptr = hs;
        dp.read_callback = h2u_read_body;
        id = nghttp2_submit_request(hc->s, NULL, nv, n, hd->end_stream ? NULL : &dp, hs);
    }
    free(nv);
    free(lower);
    if (id < 0) {
        log_debug("http2", "%s: request refused: %s", hc->sock->key,
                  id == -1 ? "out of memory" : nghttp2_strerror(id));
        return -1;
    }
    hs->id = id;
    if (hd->end_stream) hs->out_ended = 1;
    h2u_send_soon(hc);
    return 0;
}

int h2u_set_trailers(struct up_conn *c, const struct relais_hdrs *t)
{
    struct h2u_stream *hs = c->h2s;

    if (!hs) return -1;
    free(hs->req_trailers);
    hs->req_trailers = NULL;
    hs->nreq_trailers = 0;
    if (!t || !t->n) return 0;
    hs->req_trailers = h2_trailer_block(t, &hs->nreq_trailers);
    return hs->req_trailers ? 0 : -1;
}

int h2u_response(struct up_conn *c, int *status, const struct h2_field **f, size_t *n,
                 unsigned *interim, int *ended)
{
    struct h2u_stream *hs = c->h2s;

    if (!hs) return 0;
    *interim = hs->interim;
    if (!hs->head_done) return 0;
    *status = hs->status;
    *ended = hs->head_ended;
    *f = hs->head.f;
    *n = hs->head.n;
    return 1;
}

const struct h2_field *h2u_trailers(struct up_conn *c, size_t *n)
{
    struct h2u_stream *hs = c->h2s;

    *n = hs ? hs->trailers.n : 0;
    return hs ? hs->trailers.f : NULL;
}

void h2u_close(struct up_conn *c)
{
    struct h2u_stream *hs = c->h2s;
    struct h2u_conn *hc;

    if (!hs) return;
    hc = hs->hc;
    c->h2s = NULL;
    hs->uc = NULL;
    hs->vs = NULL; /* the virtual stream is the caller's to free */
    if (hs->id && !hs->closed && !hc->dead) {
        /* still open on the wire: cancelled unless both sides ended (it
           is closing by itself); its close frees hs */
        if (!hs->remote_ended || !hs->out_ended) {
            nghttp2_submit_rst_stream(hc->s, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_CANCEL);
            h2u_send_soon(hc);
        }
        return;
    }
    h2u_stream_free(hs);
}

unsigned h2u_streams(const struct h2u_conn *hc)
{
    return hc ? hc->nstreams : 0;
}
