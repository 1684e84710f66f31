/*
 * proxy — see proxy.h.
 *
 * Life of a client connection (struct px_conn):
 *   HEAD   waiting for / parsing a request head (idle or head timeout)
 *   BUSY   an exchange (struct relais_req) is running; request body bytes
 *          are forwarded as they come, the next pipelined request waits in
 *          the input buffer
 *   TUNNEL after a 101 answer: bytes copied both ways
 *   CLOSING the last bytes are being flushed, then the connection is freed
 *
 * Callbacks may close the connection deep inside a call chain; the
 * connection is freed only when the outermost callback returns (depth
 * count), so no callback ever touches freed memory.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "stream.h"

#include "accesslog.h"
#include "api.h"
#include "arena.h"
#include "h2.h"
#include "h2up.h"
#include "health.h"
#include "http1.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "mirror.h"
#include "proxy.h"
#include "service.h"
#include "proxyproto.h"
#include "relais.h"
#include "resolvers.h"
#include "router.h"
#include "snapshot.h"
#include "static_config.h"
#include "tcp.h"
#include "tlshello.h"
#include "tlsstore.h"
#include "tracing.h"
#include "transport.h"
#include "upstream.h"
#include "worker.h"

/** Client connection states. */
enum px_state {
    PX_HEAD = 0, /* waiting for a request head */
    PX_BUSY,     /* an exchange runs */
    PX_TUNNEL,   /* relaying bytes after 101 */
    PX_CLOSING,  /* closing */
    PX_H2,       /* an HTTP/2 connection: h2.c drives it */
    PX_H2_DONE   /* an HTTP/2 stream whose exchange ended: its response
                    leaves through h2.c, then the stream closes */
};

/** Server-side states of an exchange. */
enum px_up_state {
    UP_NONE = 0,   /* not forwarded (yet) */
    UP_CONNECTING, /* waiting for the connection */
    UP_HEAD,       /* request sent (or being sent), waiting for the head */
    UP_BODY,       /* streaming the response body */
    UP_DONE        /* response complete */
};

#define PX_MAX_RESP_HEAD (64 * 1024) /* cap on a server's response head */
#define PX_BODY_GATE (16 * 1024)      /* chunked body bytes validated before
                                         anything goes to a server */
#define PX_BODY_GATE_MS 1000          /* ... or this long, for streams */
#define PX_QUEUE_POLL_MS 20            /* maxConnsPerHost queue re-check */
#define PX_STOP_LINGER_MS 500        /* idle keep-alive connections close this
                                        long after a graceful stop begins */
#define PX_LINGER_MS 2000            /* a connection closed while its client
                                        may still be sending reads and
                                        drops its bytes this long at most
                                        after its write side is shut */
#define PX_H2_SPARE 16               /* stream connections an HTTP/2
                                        connection keeps for reuse */

/** A client connection. */
struct px_conn {
    struct worker *w;               /* owning worker */
    int ep;                         /* entry point index */
    const struct sc_entrypoint *epc; /* its configuration */
    int handed;                     /* given to tcp.c, which counts it
                                       as open until it ends */
    int head_armed;                 /* headerTimeout runs for the head
                                       being received: a fixed deadline,
                                       not re-armed by partial reads */
    struct event *wtimer;           /* writeTimeout: from the end of the
                                       request head to the end of the
                                       response, or NULL */
    struct stream *bev;        /* client socket */
    union {
        struct sockaddr sa;         /* family */
        struct sockaddr_in in4;     /* IPv4 */
        struct sockaddr_in6 in6;    /* IPv6 */
    } peer;                         /* client address (entry points are IP
                                       only: no sockaddr_storage) */
    char peer_ip[48];               /* its text form */
    int peer_port;                  /* its port */
    int trusted;                    /* peer in forwardedHeaders.trustedIPs */
    int state;                      /* enum px_state */
    struct relais_req *r;           /* current exchange */
    struct arena *arena;            /* reused between requests */
    struct event *timer;            /* idle / head / read timeout */
    struct event *gate_timer;       /* body gate deadline (lazily made) */
    int depth;                      /* callbacks on the stack */
    int dead;                       /* free when depth drops to 0 */
    int eof;                        /* the client half-closed: answer what
                                       is buffered, then close */
    int linger;                     /* closing while the client may still
                                       send (its request body was not
                                       wholly read): its bytes are read
                                       and dropped, a lingering close */
    int linger_shut;                /* ... the output is flushed and the
                                       write side shut: the close comes
                                       at the client's end or after
                                       PX_LINGER_MS */
    unsigned nreq;                  /* requests served */
    int tls;                        /* a TLS connection */
    struct event *sniff;            /* waits for the first byte (TLS or
                                       not), or NULL */
    struct wk_snapref *hs_ref;      /* snapshot held from accept to the end
                                       of the TLS handshake, or NULL */
    char *tls_opts;                 /* name of the TLS options the
                                       handshake used (421 check; owned),
                                       NULL on plain connections */
    uint64_t accept_ms;             /* when accepted (PROXY header and
                                       ClientHello deadline) */
    int pp_trusted;                 /* peer may send a PROXY header */
    struct sockaddr_storage *pp_dst; /* destination the PROXY header gave
                                       (owned), or NULL */
    struct px_conn *next;           /* worker's list */
    struct px_conn *prev;
    struct h2_conn *h2;             /* HTTP/2 connection (h2.c), or NULL */
    struct h2_stream *h2s;          /* this connection is one HTTP/2 stream
                                       of parent (bev is a virtual stream),
                                       or NULL */
    struct px_conn *parent;         /* its HTTP/2 connection */
    unsigned nsubs;                 /* HTTP/2: streams open */
    struct px_conn *spare;          /* HTTP/2: freed stream connections
                                       kept for the next streams (linked
                                       by next; px_h2_keep) */
    unsigned nspare;                /* how many */
};

static void px_client_read(struct stream *bev, void *arg);
static void px_client_write(struct stream *bev, void *arg);
static void px_client_event(struct stream *bev, short what, void *arg);
static void px_up_read(struct stream *bev, void *arg);
static void px_up_write(struct stream *bev, void *arg);
static void px_up_event(struct stream *bev, short what, void *arg);
static void px_process(struct px_conn *c);
static void px_sniff(evutil_socket_t fd, short what, void *arg);
static void px_start(struct px_conn *c);
static int px_wait_peek(struct px_conn *c, event_callback_fn cb);
static void px_pp_read(evutil_socket_t fd, short what, void *arg);
static void px_run_chain(struct relais_req *r);
static void px_forward(struct relais_req *r);
static void px_enqueue(struct relais_req *r, struct snap_server *sv);
static void px_connect(struct relais_req *r);
static int px_fail_level(struct snap_server *sv);
static void px_finish(struct relais_req *r);
static void px_pump_request(struct relais_req *r);
static void px_timeout(evutil_socket_t fd, short what, void *arg);
static void px_write_deadline(evutil_socket_t fd, short what, void *arg);
static int px_h2_start(struct px_conn *c);
static int px_h2c_upgrade(struct px_conn *c, const char *buf, size_t len, struct h1_head *h);
static void px_route(struct relais_req *r);

/** A request's copies for mirror services (service.c chose them). */
struct px_mirror {
    struct snap_service *svcs[SVC_MAX_MIRRORS]; /* the mirror services */
    unsigned n;                 /* how many */
    struct evbuffer *body;      /* body bytes kept for them, or NULL when
                                   the body is not mirrored */
    int64_t max;                /* most body bytes kept; beyond, no copy */
    int overflow;               /* the body was larger: nothing is sent */
    int sent;                   /* the copies left */
};

/* Takes one of sv's places under a cap of max requests at once (0: no
 * cap).  1 taken, 0 full.  Any worker (atomic). */
static int px_server_take(struct snap_server *sv, int max)
{
    uint32_t cur = __atomic_load_n(&sv->inflight, __ATOMIC_RELAXED);

    if (max <= 0) {
        __atomic_add_fetch(&sv->inflight, 1, __ATOMIC_RELAXED);
        return 1;
    }
    while (cur < (uint32_t)max)
        if (__atomic_compare_exchange_n(&sv->inflight, &cur, cur + 1, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return 1;
    return 0;
}

/* Removes r from its worker's queue (no-op when not queued). */
static void px_unqueue(struct relais_req *r)
{
    struct worker *w = r->w;

    if (!r->queued) return;
    if (r->wq_prev) r->wq_prev->wq_next = r->wq_next;
    else w->waitq = r->wq_next;
    if (r->wq_next) r->wq_next->wq_prev = r->wq_prev;
    else w->waitq_tail = r->wq_prev;
    r->wq_next = r->wq_prev = NULL;
    r->queued = NULL;
}

struct al_log *px_alog;
static uint64_t px_requests; /* requests so far (access log RequestCount) */

/* Writes r's access-log line (the exchange ended with a response) to the
 * log of its snapshot (the current one when it was not routed).  Worker
 * thread. */
static void px_access_log(struct relais_req *r)
{
    struct al_record a;
    struct px_conn *c = r->conn;
    struct timespec now;
    struct wk_snapref *ref = r->sref ? NULL : wk_acquire(r->w);
    struct al_log *al = r->sref ? r->sref->snap->alog : ref ? ref->snap->alog : NULL;
    SSL *ssl;

    if (!al) {
        if (ref) wk_release(r->w, ref);
        return;
    }
    ssl = c && c->bev ? st_ssl(c->bev) : NULL;
    memset(&a, 0, sizeof(a));
    clock_gettime(CLOCK_REALTIME, &now);
    a.client_ip = c ? c->peer_ip : "-";
    a.client_port = c ? c->peer_port : 0;
    a.start_ns = r->start_ns;
    a.duration_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - r->start_ns;
    if (r->up_start_ms)
        a.origin_duration_ns = (int64_t)(wk_now_ms() - r->up_start_ms) * 1000000;
    a.method = r->method;
    a.method_len = r->method_len;
    a.path = r->path;
    a.path_len = r->path_len;
    a.query = r->query;
    a.query_len = r->query_len;
    a.protocol = r->version >= 20 ? "HTTP/2.0" : r->version >= 11 ? "HTTP/1.1" : "HTTP/1.0";
    a.authority = r->authority;
    a.authority_len = r->authority_len;
    a.entry_point = c ? c->epc->name : NULL;
    a.router = r->router ? r->router->name : NULL;
    a.service = r->service ? r->service->name : NULL;
    a.service_url = r->server ? r->server->url : NULL;
    a.status = r->status;
    a.origin_status = r->origin_status;
    a.content_size = r->local ? r->local_body_len : r->body_out;
    a.origin_content_size = r->local ? 0 : r->body_out;
    a.request_content_size = r->req_body_bytes;
    a.retry_attempts = (unsigned)r->retried;
    a.request_count = __atomic_add_fetch(&px_requests, 1, __ATOMIC_RELAXED);
    if (ssl) {
        const char *v = SSL_get_version(ssl);
        a.tls_version = v && !strncmp(v, "TLSv", 4) ? v + 4 : v;
        a.tls_cipher = SSL_get_cipher_name(ssl);
    }
    a.req_headers = r->req_hdrs.v;
    a.n_req_headers = r->req_hdrs.n;
    if (r->has_resp) {
        if (!r->local) {
            a.origin_headers = r->resp_hdrs.v;
            a.n_origin_headers = r->resp_hdrs.n;
        }
        a.down_headers = r->resp_hdrs.v;
        a.n_down_headers = r->resp_hdrs.n;
    }
    al_write(al, r->w->index, &a);
    if (ref) wk_release(r->w, ref);
}

/* Frees m; NULL is a no-op. */
static void px_mirror_free(struct px_mirror *m)
{
    if (!m) return;
    if (m->body) evbuffer_free(m->body);
    free(m);
}

/* ------------------------------------------------------------ helpers */

/* Reason phrase of a status code. */
static const char *px_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 421: return "Misdirected Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* The body relais sends with its own error statuses (Traefik's texts). */
static const char *px_error_body(int status)
{
    switch (status) {
    case 404: return "404 page not found\n";
    case 414: return "URI Too Long\n";
    case 421: return "Misdirected Request\n";
    case 503: return "no available server\n";
    default: return NULL;
    }
}

/* Frees a stream connection kept by px_h2_keep. */
static void px_spare_free(struct px_conn *c)
{
    if (c->timer) event_free(c->timer);
    if (c->gate_timer) event_free(c->gate_timer);
    if (c->wtimer) event_free(c->wtimer);
    free(c->tls_opts);
    arena_free(c->arena);
    free(c);
}

/* HTTP/2 stream connection c (its stream and exchange gone) is being
 * freed: while its connection goes on and keeps fewer than PX_H2_SPARE,
 * c is kept for its next stream with its timers (stopped), arena (its
 * blocks given back) and TLS options name (the parent's), px_h2_take
 * takes it.  1 when kept. */
static int px_h2_keep(struct px_conn *c)
{
    struct px_conn *p = c->parent;

    if (p->dead || p->nspare >= PX_H2_SPARE || c->bev || c->hs_ref || c->sniff || c->pp_dst ||
        c->h2)
        return 0;
    if (c->timer) event_del(c->timer);
    if (c->gate_timer) event_del(c->gate_timer);
    if (c->wtimer) event_del(c->wtimer);
    if (c->arena) arena_release(c->arena);
    c->next = p->spare;
    p->spare = c;
    p->nspare++;
    return 1;
}

/* A zeroed connection for a stream of c: a kept one (its timers, arena
 * and TLS options name left in place) or a new one.  NULL when out of
 * memory. */
static struct px_conn *px_h2_take(struct px_conn *c)
{
    struct px_conn *sc = c->spare;
    struct px_conn keep;

    if (!sc) return calloc(1, sizeof(*sc));
    c->spare = sc->next;
    c->nspare--;
    keep = *sc;
    memset(sc, 0, sizeof(*sc));
    sc->timer = keep.timer;
    sc->gate_timer = keep.gate_timer;
    sc->wtimer = keep.wtimer;
    sc->arena = keep.arena;
    sc->tls_opts = keep.tls_opts;
    return sc;
}

/* Frees the connection for real. */
static void px_conn_free(struct px_conn *c)
{
    struct worker *w = c->w;

    if (c->parent) {
        /* an HTTP/2 stream: not in the worker's list, not counted */
        if (c->h2s) h2_stream_detach(c->h2s);
        c->parent->nsubs--;
        h2_stream_free_vs(c->parent->h2, c->bev); /* kept for the next */
        c->bev = NULL;
        if (px_h2_keep(c)) return;
    } else {
        if (c->next) c->next->prev = c->prev;
        if (c->prev) c->prev->next = c->next;
        else if (w->conns == c) w->conns = c->next;
        w->nconns--;
        if (!c->handed) wk_conn_closed(w, c->ep);
    }
    h2_conn_free(c->h2);
    while (c->spare) {
        struct px_conn *sc = c->spare;
        c->spare = sc->next;
        px_spare_free(sc);
    }
    if (c->timer) event_free(c->timer);
    if (c->gate_timer) event_free(c->gate_timer);
    if (c->wtimer) event_free(c->wtimer);
    free(c->tls_opts);
    free(c->pp_dst);
    if (c->sniff) event_free(c->sniff);
    if (c->hs_ref) wk_release(w, c->hs_ref);
    if (c->bev) st_free(c->bev);
    arena_free(c->arena);
    {
        int last = !c->parent && w->stopping && w->nconns == 0;
        free(c);
        if (last) event_base_loopexit(w->base, NULL);
    }
}

/* Marks a callback entry (see the file comment). */
static inline void px_enter(struct px_conn *c)
{
    c->depth++;
}

/* Marks a callback exit; frees a closed connection at the outermost one. */
static inline void px_leave(struct px_conn *c)
{
    if (--c->depth == 0 && c->dead) px_conn_free(c);
}

/* Releases an exchange: its server connection, snapshot reference and
 * memory.  A suspended exchange whose client died stays until resumed. */
static void px_req_free(struct relais_req *r)
{
    if (r->status && r->start_ns) px_access_log(r);
    mt_request(r);
    if (r->trc) trc_req_end(r);
    /* req_on_end: last registered first, before the memory goes */
    while (r->nendcb > 0) {
        struct px_endcb e = r->endcb[--r->nendcb];
        e.cb(e.arg);
    }
    if (r->up) {
        up_conn_free(r->up);
        r->up = NULL;
    }
    px_unqueue(r);
    if (r->server) {
        __atomic_sub_fetch(&r->server->inflight, 1, __ATOMIC_RELAXED);
        r->server = NULL;
        /* a place may have freed up for a queued request */
        if (r->w->waitq && r->w->waitq_ev) event_active(r->w->waitq_ev, EV_TIMEOUT, 0);
    }
    px_mirror_free(r->mirror);
    r->mirror = NULL;
    if (r->sref) wk_release(r->w, r->sref);
    r->sref = NULL;
    if (r->conn) {
        r->conn->r = NULL;
        arena_reset(r->conn->arena);
    } else {
        arena_free(r->arena);
    }
}

/* Closes the connection: aborts its exchange and frees it when no
 * callback is running. */
static void px_conn_close(struct px_conn *c)
{
    struct relais_req *r = c->r;

    if (c->dead) return;
    c->dead = 1;
    c->state = PX_CLOSING;
    if (r) {
        if (r->suspended) {
            /* the middleware still holds r: detach it; resume frees it */
            r->aborted = 1;
            r->conn = NULL;
            c->arena = NULL; /* now owned by r */
            c->r = NULL;
        } else {
            px_req_free(r);
        }
    }
    if (c->bev) st_disable(c->bev, ST_READ | ST_WRITE);
    if (c->depth == 0) px_conn_free(c);
}

static void px_timer(struct px_conn *c, int64_t ms);

/* The output of a closing connection is flushed: a lingering one shuts
 * its write side (the client sees the end of the response) and keeps
 * dropping what the client sends until it closes or PX_LINGER_MS pass;
 * any other closes now. */
static void px_conn_flushed(struct px_conn *c)
{
    if (!c->linger) {
        px_conn_close(c);
        return;
    }
    if (c->linger_shut) return;
    c->linger_shut = 1;
    st_shutdown_write(c->bev);
    px_timer(c, PX_LINGER_MS);
}

/* Closes once the output buffer is flushed (lingering when c->linger:
 * px_conn_close_linger). */
static void px_conn_close_after_flush(struct px_conn *c)
{
    struct evbuffer *out = st_output(c->bev);

    c->state = PX_CLOSING;
    if (c->timer) event_del(c->timer);
    if (c->linger) {
        /* the client's bytes are dropped meanwhile: a client blocked
           sending them would never read the response */
        evbuffer_drain(st_input(c->bev), evbuffer_get_length(st_input(c->bev)));
        st_enable(c->bev, ST_READ);
    } else {
        st_disable(c->bev, ST_READ);
    }
    if (evbuffer_get_length(out) == 0) {
        px_conn_flushed(c);
        return;
    }
    st_setwatermark(c->bev, ST_WRITE, 0, 0);
    st_enable(c->bev, ST_WRITE);
    {
        /* bound the flush: a client that never reads is dropped */
        struct timeval tv = {30, 0};
        st_set_timeouts(c->bev, NULL, &tv);
    }
}

/* Sends a complete error or local response on a connection and closes it
 * afterwards when close_after is set. */
static void px_send_simple(struct px_conn *c, int status, const char *body,
                           int close_after)
{
    char head[512];
    size_t blen;
    int n;

    if (!body) body = px_reason(status);
    blen = strlen(body);
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n%s\r\n",
                 status, px_reason(status), blen,
                 close_after ? "Connection: close\r\n" : "");
    evbuffer_add(st_output(c->bev), head, (size_t)n);
    evbuffer_add(st_output(c->bev), body, blen);
    if (close_after) px_conn_close_after_flush(c);
}

/* Closes once the output buffer is flushed, with a lingering close
 * when the client may still be sending (an HTTP/1 connection that has not
 * half-closed): closing a socket that holds unread bytes resets the
 * connection, and the client then loses the response still in flight
 * (RFC 9112 9.6).  For a response that ends before its request body (a
 * server may answer early: gRPC does) or a refused body. */
static void px_conn_close_linger(struct px_conn *c)
{
    if (!c->parent && !c->eof && c->bev && !st_is_virtual(c->bev)) {
        log_debug("http", "%s: closing before the request body's end: lingering close",
                  c->peer_ip);
        c->linger = 1;
    }
    px_conn_close_after_flush(c);
}

/* Arms the connection timer for ms (0 disarms). */
static void px_timer(struct px_conn *c, int64_t ms)
{
    struct timeval tv;

    if (ms <= 0) {
        event_del(c->timer);
        return;
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    event_add(c->timer, &tv);
}

/* The request body cannot be taken (broken framing, too large, too
 * slow): answer status and close when nothing was answered yet, else cut
 * the connection.  The server connection, if any, is dropped: it may hold
 * a partial body. */
static void px_refuse_body(struct relais_req *r, int status)
{
    if (r->resp_started || r->suspended) {
        px_conn_close(r->conn);
        return;
    }
    if (r->up) {
        up_conn_free(r->up);
        r->up = NULL;
    }
    r->client_close = 1;
    r->local = 0;
    px_api_respond(r, status, NULL, 0, NULL, 0);
    px_finish(r);
}

/* Starts headerTimeout for the head about to be received: a deadline
 * (a slow client dripping bytes is cut when it passes), armed once per
 * head; without a headerTimeout, idleTimeout bounds the wait. */
static void px_head_deadline(struct px_conn *c)
{
    c->head_armed = 1;
    px_timer(c, c->epc->head_timeout_ms > 0 ? c->epc->head_timeout_ms : c->epc->idle_timeout_ms);
}

/* writeTimeout passed before the response was written: the connection
 * is cut (nothing else can be said to a client mid-response). */
static void px_write_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;

    (void)fd;
    (void)what;
    px_enter(c);
    if (c->r && !c->r->req_body_done && !c->r->resp_started) {
        /* still receiving the request body: as readTimeout would */
        log_debug("http", "%s: request body not received within writeTimeout", c->peer_ip);
        px_refuse_body(c->r, 408);
    } else {
        /* an abortive close: what the kernel still holds for this slow
           reader is dropped, not trickled out after the cut */
        struct linger lg = {1, 0};
        log_debug("http", "%s: response not written within writeTimeout: closed", c->peer_ip);
        if (c->bev) setsockopt(st_fd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        px_conn_close(c);
    }
    px_leave(c);
}

/* Idle / head timeout. */
static void px_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;
    size_t pending;

    (void)fd;
    (void)what;
    px_enter(c);
    if (c->linger_shut) {
        /* the lingering close's end */
        px_conn_close(c);
    } else if (c->state == PX_H2) {
        /* idleTimeout of an HTTP/2 connection: none while streams run */
        if (c->nsubs) px_timer(c, c->epc->idle_timeout_ms);
        else px_conn_close(c);
    } else if (c->h2s && !(c->state == PX_BUSY && c->r && !c->r->req_body_done)) {
        px_conn_close(c); /* the stream is reset */
    } else if (c->state == PX_HEAD) {
        pending = evbuffer_get_length(st_input(c->bev));
        if (pending) px_send_simple(c, 408, "request timeout\n", 1);
        else px_conn_close(c);
    } else if (c->state == PX_BUSY && c->r && !c->r->req_body_done) {
        /* readTimeout: the request body did not arrive in time */
        log_debug("http", "%s: request body not received within readTimeout", c->peer_ip);
        px_refuse_body(c->r, 408);
    }
    px_leave(c);
}

/* ------------------------------------------------------------ accept */

void px_accept(struct worker *w, int ep, evutil_socket_t fd,
               const struct sockaddr *sa, int salen)
{
    struct px_conn *c = calloc(1, sizeof(*c));
    uint8_t mapped[16];

    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    c->ep = ep;
    c->epc = &w->sc->eps[ep];
    wk_conn_opened(w, ep);
    memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
    na_ntop(sa, c->peer_ip, sizeof(c->peer_ip));
    c->peer_port = na_port(sa);
    na_to_mapped(sa, mapped);
    c->trusted = c->epc->insecure;
    for (size_t i = 0; !c->trusted && i < c->epc->ntrusted; i++)
        if (na_cidr_contains(&c->epc->trusted[i], mapped)) c->trusted = 1;
    c->arena = arena_new(RELAIS_ARENA_CAP);
    c->bev = st_new(w->base, fd);
    c->timer = evtimer_new(w->base, px_timeout, c);
    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    if (!c->arena || !c->bev || !c->timer) {
        if (!c->bev) evutil_closesocket(fd);
        px_conn_free(c);
        return;
    }
    st_setcb(c->bev, px_client_read, px_client_write, px_client_event, c);
    /* libevent reads 4 KiB per call by default: take what is there */
    st_setwatermark(c->bev, ST_READ, 0, RELAIS_BUFFER_HIGH);
    if (c->epc->write_timeout_ms > 0) {
        /* writeTimeout: no progress writing to the client for that long */
        struct timeval tv = {c->epc->write_timeout_ms / 1000,
                             (c->epc->write_timeout_ms % 1000) * 1000};
        st_set_timeouts(c->bev, NULL, &tv);
    }
    c->accept_ms = wk_now_ms();
    if (c->epc->pp_enabled) {
        /* PROXY protocol: the header comes before anything else */
        c->pp_trusted = c->epc->pp_insecure;
        for (size_t i = 0; !c->pp_trusted && i < c->epc->npp_trusted; i++)
            if (na_cidr_contains(&c->epc->pp_trusted[i], mapped)) c->pp_trusted = 1;
        if (px_wait_peek(c, px_pp_read) < 0) px_conn_free(c);
        return;
    }
    px_start(c);
}

/* The deadline of the PROXY header and ClientHello: headerTimeout (30 s
 * when unset) from the accept. */
static int64_t px_peek_ms(const struct px_conn *c)
{
    return c->epc->head_timeout_ms > 0 ? c->epc->head_timeout_ms : 30000;
}

/* Waits for bytes to peek at (cb runs when more arrive): edge-triggered
 * where the backend can, so that bytes left in the socket do not wake the
 * loop again; bounded by px_peek_ms from the accept.  0 / -1. */
static int px_wait_peek(struct px_conn *c, event_callback_fn cb)
{
    int64_t left = px_peek_ms(c) - (int64_t)(wk_now_ms() - c->accept_ms);
    short ev = EV_READ | EV_PERSIST;
    struct timeval tv;

    if (left <= 0) return -1;
    tv.tv_sec = left / 1000;
    tv.tv_usec = (left % 1000) * 1000;
    if (event_base_get_features(c->w->base) & EV_FEATURE_ET) ev |= EV_ET;
    if (c->sniff) event_free(c->sniff);
    c->sniff = event_new(c->w->base, st_fd(c->bev), ev, cb, c);
    return c->sniff && event_add(c->sniff, &tv) == 0 ? 0 : -1;
}

/* 1 when the n bytes at b could start a PROXY header (v1 or v2). */
static int px_pp_prefix(const unsigned char *b, size_t n)
{
    static const unsigned char v1[] = "PROXY ";
    static const unsigned char v2[] = "\r\n\r\n\0\r\nQUIT\n";

    return (n && !memcmp(b, v1, n < 6 ? n : 6)) || (n && !memcmp(b, v2, n < 12 ? n : 12));
}

/* Bytes arrived while waiting for a PROXY header (or the deadline): a
 * header from a trusted peer replaces the client address and is consumed
 * exactly; from another peer it is an error (closed), as is a malformed
 * one.  A trusted peer may also send none.  Then the accept goes on. */
static void px_pp_read(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;
    unsigned char buf[PP_MAX_HEADER];
    struct pp_info info;
    ssize_t n, rc;

    if ((what & EV_TIMEOUT) || wk_now_ms() - c->accept_ms >= (uint64_t)px_peek_ms(c)) {
        px_conn_free(c);
        return;
    }
    n = recv(fd, buf, sizeof(buf), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        px_conn_free(c);
        return;
    }
    rc = pp_parse(buf, (size_t)n, &info);
    if (rc == 0 && px_pp_prefix(buf, (size_t)n) && (size_t)n < sizeof(buf))
        return; /* wait for the rest (edge-triggered: more bytes wake us) */
    if (!c->pp_trusted) {
        if (rc > 0 || (rc == 0 && n >= 6)) {
            log_debug("proxyproto", "%s: PROXY header from an untrusted peer, closed", c->peer_ip);
            px_conn_free(c);
            return;
        }
    } else if (rc > 0) {
        /* consume exactly the header: what follows is the client's */
        if (recv(fd, buf, (size_t)rc, 0) != rc) {
            px_conn_free(c);
            return;
        }
        if (!info.local) {
            uint8_t mapped[16];
            char real[48];
            memcpy(real, c->peer_ip, sizeof(real));
            memcpy(&c->peer, &info.src, sizeof(c->peer));
            if (!c->pp_dst) c->pp_dst = malloc(sizeof(*c->pp_dst));
            if (c->pp_dst) memcpy(c->pp_dst, &info.dst, sizeof(*c->pp_dst));
            na_ntop((struct sockaddr *)&c->peer, c->peer_ip, sizeof(c->peer_ip));
            c->peer_port = na_port((struct sockaddr *)&c->peer);
            na_to_mapped((struct sockaddr *)&c->peer, mapped);
            c->trusted = c->epc->insecure;
            for (size_t i = 0; !c->trusted && i < c->epc->ntrusted; i++)
                if (na_cidr_contains(&c->epc->trusted[i], mapped)) c->trusted = 1;
            log_debug("proxyproto", "%s: PROXY v%d header: client %s:%d", real, info.version,
                      c->peer_ip, c->peer_port);
        }
    } else if (rc < 0 && px_pp_prefix(buf, (size_t)n)) {
        log_debug("proxyproto", "%s: malformed PROXY header, closed", c->peer_ip);
        px_conn_free(c);
        return;
    }
    event_free(c->sniff);
    c->sniff = NULL;
    px_start(c);
}

/* Hands the connection to the TCP router r (tcp.c takes the stream and
 * the snapshot reference) and frees what is left of c. */
static void px_to_tcp(struct px_conn *c, struct wk_snapref *ref, const struct tcp_router *r)
{
    struct stream *s = c->bev;

    c->bev = NULL;
    if (c->hs_ref == ref) c->hs_ref = NULL;
    if (c->sniff) {
        event_free(c->sniff);
        c->sniff = NULL;
    }
    c->handed = 1; /* counted as open until tcp.c ends it */
    tcp_take(c->w, c->ep, s, ref, r, (const struct sockaddr *)&c->peer,
             c->pp_dst ? (const struct sockaddr *)c->pp_dst : NULL);
    px_conn_free(c);
}

/* Starts serving an accepted connection (after its PROXY header, if
 * any): an entry point whose only routers are non-TLS TCP ones hands it
 * over at once (server-first protocols work, as in Traefik); one with
 * TLS routers (HTTP or TCP) or TCP routers waits for the first byte; the
 * others speak plain HTTP. */
static void px_start(struct px_conn *c)
{
    struct worker *w = c->w;
    struct wk_snapref *ref = wk_acquire(w);
    int ep = c->ep;

    if (ref && ep < (int)ref->snap->ntables) {
        unsigned tf = tcp_ep_flags(ref->snap, ep);
        int https = ref->snap->ep_tls[ep];
        if ((tf & TCP_EP_PLAIN) && !(tf & TCP_EP_TLS) && !https) {
            struct rule_tcp_req rq = {NULL, 0, NULL, 0, (const struct sockaddr *)&c->peer};
            const struct tcp_router *r = tcp_route(ref->snap, ep, 0, &rq);
            if (r) {
                px_to_tcp(c, ref, r);
                return;
            }
        } else if (tf || https) {
            int64_t ms = px_peek_ms(c);
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            c->hs_ref = ref;
            c->sniff = event_new(w->base, st_fd(c->bev), EV_READ, px_sniff, c);
            if (!c->sniff || event_add(c->sniff, &tv) < 0) {
                px_conn_free(c);
            }
            return;
        }
    }
    if (ref) wk_release(w, ref);
    st_enable(c->bev, ST_READ);
    px_head_deadline(c);
}

/* TLS termination for the HTTP routers (the snapshot's certificates). */
static void px_https(struct px_conn *c)
{
    const struct snapshot *snap = c->hs_ref->snap;
    SSL *ssl = snap->tls ? ts_ssl_new(snap->tls, snap->tls_hosts) : NULL;

    if (!ssl || st_tls_accept(c->bev, ssl) < 0) {
        SSL_free(ssl);
        px_conn_free(c);
        return;
    }
    c->tls = 1;
    st_enable(c->bev, ST_READ);
    /* the handshake and the first request head: headerTimeout */
    px_head_deadline(c);
}

/* The whole ClientHello may be there (or the deadline passed): route by
 * SNI, ALPN and client address to a TCP router, else to HTTPS. */
static void px_hello(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;
    struct px_peek {
        struct th_hello h;                /* what the hello offers */
        unsigned char buf[TH_MAX_PEEK];   /* the peeked bytes */
    } *pk;
    unsigned char *buf;
    struct th_hello *h;
    const char *alpn[TH_MAX_ALPN];
    const struct tcp_router *r = NULL;
    ssize_t n;
    int rc;

    if ((what & EV_TIMEOUT) || wk_now_ms() - c->accept_ms >= (uint64_t)px_peek_ms(c)) {
        px_conn_free(c);
        return;
    }
    pk = malloc(sizeof(*pk));
    if (!pk) {
        px_conn_free(c);
        return;
    }
    buf = pk->buf;
    h = &pk->h;
    n = recv(fd, buf, TH_MAX_PEEK, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        free(pk);
        return;
    }
    if (n <= 0) {
        free(pk);
        px_conn_free(c);
        return;
    }
    rc = th_parse(buf, (size_t)n, h);
    if (rc == 0) {
        /* more records to come: wait for them (first time: arm) */
        free(pk);
        if (!c->sniff && px_wait_peek(c, px_hello) < 0) px_conn_free(c);
        return;
    }
    if (rc == 1) {
        struct rule_tcp_req rq;
        for (size_t i = 0; i < h->nalpn; i++) alpn[i] = th_alpn(h, i);
        rq.sni = h->has_sni ? h->sni : NULL;
        rq.sni_len = h->has_sni ? strlen(h->sni) : 0;
        rq.alpn = alpn;
        rq.nalpn = h->nalpn;
        rq.client = (const struct sockaddr *)&c->peer;
        r = tcp_route(c->hs_ref->snap, c->ep, 1, &rq);
    }
    free(pk);
    if (c->sniff) {
        event_free(c->sniff);
        c->sniff = NULL;
    }
    if (r) px_to_tcp(c, c->hs_ref, r);
    else px_https(c); /* a malformed hello too: OpenSSL will say */
}

/* The first byte of a connection on an entry point with TLS or TCP
 * routers arrived (or the head timeout): 0x16 starts TLS (a TCP router may
 * take it by its ClientHello, else the HTTPS routers with the snapshot's
 * certificates), anything else goes to a non-TLS TCP router or is plain
 * HTTP. */
static void px_sniff(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;
    unsigned char b;
    ssize_t n;

    event_free(c->sniff);
    c->sniff = NULL;
    if (what & EV_TIMEOUT) {
        px_conn_free(c);
        return;
    }
    n = recv(fd, &b, 1, MSG_PEEK);
    if (n <= 0) {
        px_conn_free(c);
        return;
    }
    if (b == 0x16) {
        if (tcp_ep_flags(c->hs_ref->snap, c->ep) & TCP_EP_TLS) px_hello(fd, EV_READ, c);
        else px_https(c);
        return;
    }
    if (tcp_ep_flags(c->hs_ref->snap, c->ep) & TCP_EP_PLAIN) {
        /* not TLS: the non-TLS TCP routers come before the HTTP ones */
        struct rule_tcp_req rq = {NULL, 0, NULL, 0, (const struct sockaddr *)&c->peer};
        const struct tcp_router *r = tcp_route(c->hs_ref->snap, c->ep, 0, &rq);
        if (r) {
            px_to_tcp(c, c->hs_ref, r);
            return;
        }
    }
    wk_release(c->w, c->hs_ref);
    c->hs_ref = NULL;
    st_enable(c->bev, ST_READ);
    px_head_deadline(c);
}

/* The TLS handshake is over (the first plaintext arrived): remember what
 * it chose and let the snapshot go. */
static void px_handshake_done(struct px_conn *c)
{
    SSL *ssl = st_ssl(c->bev);

    if (ssl && !c->tls_opts) c->tls_opts = strdup(ts_options_name(ts_ssl_options(ssl)));
    wk_release(c->w, c->hs_ref);
    c->hs_ref = NULL;
}

/* ------------------------------------------------------------ request head */

/* 1 when the header name is hop-by-hop (RFC 9110 7.6.1 and the usual
 * extras).  Called for every field of every head: one comparison at most
 * per length. */
static int px_hop_by_hop(const char *n, size_t len)
{
    switch (len) {
    case 2: return msg_name_eq(n, len, "te", 2);
    case 7: return msg_name_eq(n, len, "trailer", 7) || msg_name_eq(n, len, "upgrade", 7);
    case 10: return msg_name_eq(n, len, "connection", 10) || msg_name_eq(n, len, "keep-alive", 10);
    case 16: return msg_name_eq(n, len, "proxy-connection", 16);
    case 17: return msg_name_eq(n, len, "transfer-encoding", 17);
    case 18: return msg_name_eq(n, len, "proxy-authenticate", 18);
    case 19: return msg_name_eq(n, len, "proxy-authorization", 19);
    default: return 0;
    }
}

/* 1 when a TE value lists "trailers" (the one TE a proxy forwards: gRPC
 * servers want it, as Go's ReverseProxy knows). */
static int px_te_trailers(const char *v, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t s, e;
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        s = i;
        while (i < len && v[i] != ',' && v[i] != ';' && v[i] != ' ' && v[i] != '\t') i++;
        e = i;
        if (e - s == 8 && !strncasecmp(v + s, "trailers", 8)) return 1;
        while (i < len && v[i] != ',') i++;
    }
    return 0;
}

/* 1 when name is listed in a Connection header of fields. */
static int px_conn_listed(const char *buf, const struct h1_head *h,
                          const char *name, size_t nlen)
{
    for (size_t i = 0; i < h->nfields; i++) {
        const struct h1_field *f = &h->fields[i];
        size_t pos = 0, st, el;
        if (!h1_span_eq(buf, f->name, "connection")) continue;
        while (h1_list_next(buf + f->value.off, f->value.len, &pos, &st, &el))
            if (msg_name_eq(buf + f->value.off + st, el, name, nlen)) return 1;
    }
    return 0;
}

#define PX_CONN_TOKENS 16 /* Connection tokens kept per head; more: rescan */

/** The field names a head's Connection fields list, collected once per
 *  head so that each field is not checked by rescanning them all. */
struct px_conn_tokens {
    const char *p[PX_CONN_TOKENS]; /* token starts (in the head's buffer) */
    size_t len[PX_CONN_TOKENS];    /* their lengths */
    size_t n;                      /* how many */
    int over;                      /* more than PX_CONN_TOKENS: use
                                      px_conn_listed */
};

/* Collects the tokens of h's Connection fields into ct. */
static void px_conn_tokens(const char *buf, const struct h1_head *h, struct px_conn_tokens *ct)
{
    ct->n = 0;
    ct->over = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        const struct h1_field *f = &h->fields[i];
        size_t pos = 0, st, el;
        if (f->name.len != 10 || !h1_span_eq(buf, f->name, "connection")) continue;
        while (h1_list_next(buf + f->value.off, f->value.len, &pos, &st, &el)) {
            if (ct->n == PX_CONN_TOKENS) {
                ct->over = 1;
                return;
            }
            ct->p[ct->n] = buf + f->value.off + st;
            ct->len[ct->n++] = el;
        }
    }
}

/* 1 when name is listed by the Connection fields collected in ct (h and
 * buf: the head, for the rare head with more tokens than kept). */
static int px_conn_has(const struct px_conn_tokens *ct, const char *buf,
                       const struct h1_head *h, const char *name, size_t nlen)
{
    if (ct->over) return px_conn_listed(buf, h, name, nlen);
    for (size_t i = 0; i < ct->n; i++)
        if (ct->len[i] == nlen && msg_name_eq(ct->p[i], ct->len[i], name, nlen)) return 1;
    return 0;
}

/* A header name and its length (tables scanned per field). */
struct px_name {
    const char *s; /* lowercase name */
    size_t len;    /* strlen(s) */
};
#define PX_NAME(lit) {lit, sizeof(lit) - 1}

/* The X-Forwarded-* family that only trusted peers may send. */
static int px_forwarded_header(const char *n, size_t len)
{
    static const struct px_name xh[] = {
        PX_NAME("x-forwarded-for"), PX_NAME("x-forwarded-proto"), PX_NAME("x-forwarded-host"),
        PX_NAME("x-forwarded-port"), PX_NAME("x-forwarded-server"), PX_NAME("x-real-ip"),
        PX_NAME("x-forwarded-uri"), PX_NAME("x-forwarded-method"), PX_NAME("x-forwarded-prefix"),
        PX_NAME("x-forwarded-tls-client-cert"), PX_NAME("x-forwarded-tls-client-cert-info")};
    if (len < 9 || (n[0] | 0x20) != 'x') return 0;
    for (size_t i = 0; i < sizeof(xh) / sizeof(xh[0]); i++)
        if (len == xh[i].len && msg_name_eq(n, len, xh[i].s, len)) return 1;
    return 0;
}

/* The fields px_add_forwarded looks for, in the order of px_fwd_names. */
enum { PXF_FOR, PXF_PROTO, PXF_HOST, PXF_PORT, PXF_SERVER, PXF_REAL_IP, PXF_N };

/* This host's name for X-Forwarded-Server, made once (any thread). */
static char px_server_name[256];
static size_t px_server_name_len;
static pthread_once_t px_server_name_once = PTHREAD_ONCE_INIT;

static void px_server_name_init(void)
{
    if (gethostname(px_server_name, sizeof(px_server_name) - 1) != 0 || !px_server_name[0])
        strcpy(px_server_name, "relais");
    px_server_name_len = strlen(px_server_name);
}

/* Finds, in one pass over h, the first field of each name px_add_forwarded
 * looks at: at[k] is its index or -1. */
static void px_fwd_scan(const struct relais_hdrs *h, long at[PXF_N])
{
    static const struct px_name nm[PXF_N] = {
        PX_NAME("x-forwarded-for"), PX_NAME("x-forwarded-proto"), PX_NAME("x-forwarded-host"),
        PX_NAME("x-forwarded-port"), PX_NAME("x-forwarded-server"), PX_NAME("x-real-ip")};

    for (int k = 0; k < PXF_N; k++) at[k] = -1;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct msg_hdr *f = &h->v[i];
        if (f->nlen < 9 || (f->name[0] | 0x20) != 'x') continue;
        for (int k = 0; k < PXF_N; k++) {
            if (at[k] < 0 && f->nlen == nm[k].len && msg_name_eq(f->name, f->nlen, nm[k].s, nm[k].len)) {
                at[k] = (long)i;
                break;
            }
        }
    }
}

/* Adds X-Forwarded-* and X-Real-Ip as Traefik does: X-Forwarded-For gets
 * the peer appended (its first field kept, the others dropped), the others
 * are set only when absent; X-Forwarded-Port is the port of
 * X-Forwarded-Host, else the entry point's scheme default.  Worker
 * thread.  0 / -1 (header cap or out of memory). */
static int px_add_forwarded(struct relais_req *r, struct px_conn *c)
{
    struct relais_hdrs *h = &r->req_hdrs;
    size_t ipl = strlen(c->peer_ip), hl = 0;
    const char *host = NULL;
    long at[PXF_N];
    char buf[512];

    pthread_once(&px_server_name_once, px_server_name_init);
    px_fwd_scan(h, at);
    /* values stay where they are (arena or head copy) when fields move */
    if (at[PXF_HOST] >= 0) {
        host = h->v[at[PXF_HOST]].value;
        hl = h->v[at[PXF_HOST]].vlen;
    } else if (r->authority_len) {
        host = r->authority;
        hl = r->authority_len;
    }
    if (at[PXF_FOR] >= 0) {
        const char *v = h->v[at[PXF_FOR]].value;
        size_t vl = h->v[at[PXF_FOR]].vlen;
        if (vl + ipl + 3 < sizeof(buf)) {
            memcpy(buf, v, vl);
            memcpy(buf + vl, ", ", 2);
            memcpy(buf + vl + 2, c->peer_ip, ipl);
            msg_hdrs_del(h, "X-Forwarded-For", 15);
            if (msg_hdrs_add(h, "X-Forwarded-For", 15, buf, vl + 2 + ipl, 1) < 0) return -1;
        }
    } else if (msg_hdrs_add(h, "X-Forwarded-For", 15, c->peer_ip, ipl, 1) < 0) {
        return -1;
    }
    if (at[PXF_PROTO] < 0 &&
        msg_hdrs_add(h, "X-Forwarded-Proto", 17, c->tls ? "https" : "http", c->tls ? 5 : 4,
                     0) < 0)
        return -1;
    if (at[PXF_HOST] < 0 && r->authority_len &&
        msg_hdrs_add(h, "X-Forwarded-Host", 16, r->authority, r->authority_len, 0) < 0)
        return -1;
    if (at[PXF_PORT] < 0) {
        const char *colon = NULL;
        if (host && hl < 256) {
            for (size_t i = hl; i > 0; i--)
                if (host[i - 1] == ':') {
                    colon = host + i - 1;
                    break;
                }
            if (colon && memchr(colon, ']', hl - (size_t)(colon - host))) colon = NULL;
        }
        if (colon) {
            if (msg_hdrs_add(h, "X-Forwarded-Port", 16, colon + 1,
                             hl - (size_t)(colon + 1 - host), 1) < 0)
                return -1;
        } else if (msg_hdrs_add(h, "X-Forwarded-Port", 16, c->tls ? "443" : "80",
                                c->tls ? 3 : 2, 0) < 0) {
            return -1;
        }
    }
    if (at[PXF_SERVER] < 0 &&
        msg_hdrs_add(h, "X-Forwarded-Server", 18, px_server_name, px_server_name_len, 0) < 0)
        return -1;
    if (at[PXF_REAL_IP] < 0 && msg_hdrs_add(h, "X-Real-Ip", 9, c->peer_ip, ipl, 1) < 0)
        return -1;
    return 0;
}

/* Splits the request-target into path/query/authority.  0, or the status
 * to answer. */
static int px_target(struct relais_req *r, const char *t, size_t tl)
{
    const char *q;

    if (tl && t[0] == '/') {
        /* origin-form */
    } else if (tl > 7 && (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8))) {
        /* absolute-form: the authority in it wins over Host (RFC 9112 3.2.2) */
        const char *a = t + (t[4] == ':' ? 7 : 8), *end = t + tl, *p = a;
        while (p < end && *p != '/' && *p != '?') p++;
        if (p == a) return 400;
        r->authority = a;
        r->authority_len = (size_t)(p - a);
        if (p == end || *p == '?') {
            /* no path: "/" then the query */
            r->path = "/";
            r->path_len = 1;
            if (p < end) {
                r->query = p + 1;
                r->query_len = (size_t)(end - p - 1);
            }
            return 0;
        }
        tl = (size_t)(end - p);
        t = p;
    } else if (tl == 1 && t[0] == '*') {
        if (!(r->method_len == 7 && !memcmp(r->method, "OPTIONS", 7))) return 400;
        r->path = t;
        r->path_len = 1;
        return 0;
    } else if (r->method_len == 7 && !memcmp(r->method, "CONNECT", 7)) {
        return 405;
    } else {
        return 400;
    }
    q = memchr(t, '?', tl);
    r->path = t;
    r->path_len = q ? (size_t)(q - t) : tl;
    if (q) {
        r->query = q + 1;
        r->query_len = tl - r->path_len - 1;
    }
    return 0;
}

/* Sets r->host from r->authority (port removed). */
static void px_host_from_authority(struct relais_req *r)
{
    const char *a = r->authority;
    size_t n = r->authority_len;

    r->host = a;
    r->host_len = n;
    if (!n) return;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', n);
        if (rb) r->host_len = (size_t)(rb - a + 1);
        return;
    }
    for (size_t i = n; i > 0; i--) {
        if (a[i - 1] == ':') {
            r->host_len = i - 1;
            return;
        }
        if (a[i - 1] < '0' || a[i - 1] > '9') return;
    }
}

/* rule_req header callback over the request headers. */
static const char *px_rule_header(void *arg, const char *name, size_t nlen,
                                  size_t idx, size_t *vlen)
{
    struct relais_hdrs *h = arg;
    long i = -1;

    do {
        i = msg_hdrs_find(h, name, nlen, (size_t)(i + 1));
    } while (i >= 0 && idx-- > 0);
    if (i < 0) return NULL;
    *vlen = h->v[i].vlen;
    return h->v[i].value;
}

/* A new exchange on c (in c's arena): the client's address, entry
 * point, start time; c becomes busy.  NULL when out of memory. */
static struct relais_req *px_req_new(struct px_conn *c)
{
    struct relais_req *r = arena_alloc(c->arena, sizeof(*r));
    struct timespec ts;

    if (!r) return NULL;
    memset(r, 0, sizeof(*r));
    r->conn = c;
    r->w = c->w;
    r->arena = c->arena;
    r->ep = c->ep;
    r->ep_name = c->epc->name;
    memcpy(r->client_ip, c->peer_ip, sizeof(r->client_ip));
    r->client_port = c->peer_port;
    r->mw_cur = -1;
    r->filter_cur = -1;
    r->rfilter_cur = -1;
    if (c->tls) r->tls = st_ssl(c->parent ? c->parent->bev : c->bev);
    r->start_ms = wk_now_ms();
    /* the access log's StartUTC, metrics' and traces' durations */
    clock_gettime(CLOCK_REALTIME, &ts);
    r->start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    c->r = r;
    c->state = PX_BUSY;
    c->nreq++;
    return r;
}

/* Parses a head at the front of the client's input and starts the
 * exchange.  Returns 1 when an exchange started, 0 when more bytes are
 * needed, -1 when the connection was answered and is closing (or is
 * HTTP/2 now: px_h2c_upgrade). */
static int px_parse_head(struct px_conn *c)
{
    struct evbuffer *in = st_input(c->bev);
    const struct sc_entrypoint *ep = c->epc;
    struct h1_field fields_stack[128], *fields = fields_stack;
    struct h1_limits lim = {ep->max_head, ep->max_fields, ep->max_target};
    struct h1_head head;
    struct px_conn_tokens ctok; /* what Connection lists */
    struct relais_req *r;
    size_t len = evbuffer_get_length(in), n, i;
    const unsigned char *data;
    char *copy;
    int rc, st;

    if (len == 0) return 0;
    n = len < ep->max_head ? len : ep->max_head;
    data = evbuffer_pullup(in, (ev_ssize_t)n);
    if (!data) {
        px_send_simple(c, 500, "out of memory\n", 1);
        return -1;
    }
    if (ep->max_fields > sizeof(fields_stack) / sizeof(fields_stack[0])) {
        fields = arena_alloc(c->arena, ep->max_fields * sizeof(*fields));
        if (!fields) {
            px_send_simple(c, 500, "out of memory\n", 1);
            return -1;
        }
    }
    rc = h1_parse_request((const char *)data, n, &head, fields, &lim);
    if (rc == 0) {
        if (len >= ep->max_head) {
            px_send_simple(c, 431, "request header fields too large\n", 1);
            return -1;
        }
        if (!c->head_armed && len > 0) px_head_deadline(c);
        return 0;
    }
    if (rc < 0) {
        st = -rc;
        log_debug("http", "%s: request refused with %d", c->peer_ip, st);
        px_send_simple(c, st, NULL, 1);
        return -1;
    }
    if ((head.flags & H1_F_UPGRADE) && px_h2c_upgrade(c, (const char *)data, (size_t)rc, &head))
        return -1; /* HTTP/2 from here on */
    px_timer(c, 0);
    c->head_armed = 0;
    if (ep->write_timeout_ms > 0) {
        /* writeTimeout (Traefik's): the response must be written within
           this long of the end of the request head */
        struct timeval tv = {ep->write_timeout_ms / 1000, (ep->write_timeout_ms % 1000) * 1000};
        if (!c->wtimer) c->wtimer = evtimer_new(c->w->base, px_write_deadline, c);
        if (c->wtimer) evtimer_add(c->wtimer, &tv);
    }

    /* the exchange owns a copy of the head: spans become pointers */
    r = px_req_new(c);
    copy = r ? arena_alloc(c->arena, (size_t)rc) : NULL;
    if (!r || !copy) {
        px_send_simple(c, 500, "out of memory\n", 1);
        return -1;
    }
    memcpy(copy, data, (size_t)rc);
    evbuffer_drain(in, (size_t)rc);

    r->method = copy + head.method.off;
    r->method_len = head.method.len;
    r->is_head = r->method_len == 4 && !memcmp(r->method, "HEAD", 4);
    r->scheme = "http";
    r->scheme_len = 4;
    r->version = head.version;
    r->authority = copy + head.host.off;
    r->authority_len = head.host.len;
    st = px_target(r, copy + head.target.off, head.target.len);
    if (st) {
        px_send_simple(c, st, NULL, 1);
        return -1;
    }
    px_host_from_authority(r);
    r->client_close = (head.flags & H1_F_CONN_CLOSE) ||
                      (head.version == 10 && !(head.flags & H1_F_CONN_KEEPALIVE));
    /* HTTP/1.0 keep-alive is not offered: the connection closes */
    if (head.version == 10) r->client_close = 1;
    r->want_upgrade = (head.flags & H1_F_CONN_UPGRADE) && (head.flags & H1_F_UPGRADE);
    r->expect_continue = (head.flags & H1_F_EXPECT_CONTINUE) != 0;

    if (msg_hdrs_init(&r->req_hdrs, c->arena, (uint32_t)head.nfields + 8,
                      (uint32_t)ep->max_fields + 32) < 0) {
        px_send_simple(c, 500, "out of memory\n", 1);
        return -1;
    }
    px_conn_tokens(copy, &head, &ctok);
    for (i = 0; i < head.nfields; i++) {
        const char *nm = copy + fields[i].name.off, *vl = copy + fields[i].value.off;
        size_t nl = fields[i].name.len, vlen = fields[i].value.len;
        if (nl == 7 && msg_name_eq(nm, nl, "upgrade", 7)) {
            r->upgrade = vl;
            r->upgrade_len = vlen;
        }
        if (nl == 2 && msg_name_eq(nm, nl, "te", 2) && px_te_trailers(vl, vlen))
            r->te_trailers = 1;
        if (px_hop_by_hop(nm, nl) || px_conn_has(&ctok, copy, &head, nm, nl)) continue;
        if (!c->trusted && px_forwarded_header(nm, nl)) continue;
        if (msg_hdrs_add(&r->req_hdrs, nm, nl, vl, vlen, 0) < 0) {
            px_send_simple(c, 431, NULL, 1);
            return -1;
        }
    }
    if (r->te_trailers && msg_hdrs_add(&r->req_hdrs, "TE", 2, "trailers", 8, 0) < 0) {
        px_send_simple(c, 431, NULL, 1);
        return -1;
    }
    if (px_add_forwarded(r, c) < 0) {
        px_send_simple(c, 431, NULL, 1);
        return -1;
    }
    if (trc_active) trc_req_start(r);

    /* body framing */
    if (head.flags & H1_F_CHUNKED) {
        r->req_chunked = 1;
        h1_chunk_init(&r->req_chunk, 4096, 16384);
    } else if (head.content_length > 0) {
        r->req_left = head.content_length; /* its cap is checked once routed */
    } else {
        r->req_body_done = 1;
    }
    if (!r->req_body_done && ep->read_timeout_ms > 0) px_timer(c, ep->read_timeout_ms);
    return 1;
}

/* Value of a hex digit, or -1. */
static int px_hex(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The path rules are matched against: percent-encoded unreserved
 * characters decoded (RFC 3986 6.2.2.2), so that "/%61dmin" cannot slip
 * past PathPrefix(`/admin`); other escapes stay as sent.  The path sent
 * upstream is unchanged.  Returns r->path when there is nothing to do. */
static const char *px_match_path(struct relais_req *r, size_t *len)
{
    const char *p = r->path;
    size_t n = r->path_len, i, o = 0;
    char *out;

    *len = n;
    if (!memchr(p, '%', n)) return p;
    out = arena_alloc(r->arena, n + 1);
    if (!out) return p;
    for (i = 0; i < n; i++) {
        int hi, lo, c;
        if (p[i] == '%' && i + 2 < n &&
            (hi = px_hex((unsigned char)p[i + 1])) >= 0 &&
            (lo = px_hex((unsigned char)p[i + 2])) >= 0) {
            c = hi * 16 + lo;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
                out[o++] = (char)c;
                i += 2;
                continue;
            }
        }
        out[o++] = p[i];
    }
    *len = o;
    return out;
}

/* ACME http-01: GET /.well-known/acme-challenge/TOKEN on the resolver's
 * entry point is answered before any router (Traefik's acme-http@internal
 * has the highest priority).  1 when answered. */
static int px_acme_http01(struct relais_req *r)
{
    static const char pfx[] = "/.well-known/acme-challenge/";
    char ka[512];
    int n;
    relais_header h[1] = {{"Content-Type", "text/plain"}};

    if (r->path_len <= sizeof(pfx) - 1 || memcmp(r->path, pfx, sizeof(pfx) - 1) != 0) return 0;
    if (!(r->method_len == 3 && !memcmp(r->method, "GET", 3)) &&
        !(r->method_len == 4 && !memcmp(r->method, "HEAD", 4)))
        return 0;
    n = rs_http01_answer(r->ep, r->path + sizeof(pfx) - 1, r->path_len - (sizeof(pfx) - 1), ka,
                         sizeof(ka));
    if (n < 0) return 0;
    px_api_respond(r, 200, h, 1, ka, (size_t)n);
    px_finish(r);
    return 1;
}

/* 1 when the request's method is m. */
static int px_method_is(const struct relais_req *r, const char *m)
{
    return r->method_len == strlen(m) && !memcmp(r->method, m, r->method_len);
}

/* entryPoints.X.http.redirections.entryPoint: every request on this
 * entry point goes to scheme://host:port of the target entry point. */
static void px_redirect_ep(struct relais_req *r)
{
    const struct sc_entrypoint *ep = r->conn->epc;
    const char *scheme = ep->redirect_scheme ? ep->redirect_scheme : "https";
    char host[300], loc[8192], port[16] = "";
    relais_header h[1];
    size_t hl = r->host_len < sizeof(host) - 1 ? r->host_len : sizeof(host) - 1;
    int status, n;

    memcpy(host, r->host, hl);
    host[hl] = '\0';
    if (ep->redirect_port && !((!strcmp(scheme, "https") && ep->redirect_port == 443) ||
                               (!strcmp(scheme, "http") && ep->redirect_port == 80)))
        snprintf(port, sizeof(port), ":%d", ep->redirect_port);
    n = snprintf(loc, sizeof(loc), "%s://%s%s%.*s", scheme, host, port, (int)r->path_len,
                 r->path);
    if (r->query_len && n > 0 && (size_t)n < sizeof(loc))
        n += snprintf(loc + n, sizeof(loc) - (size_t)n, "?%.*s", (int)r->query_len, r->query);
    if (n <= 0 || (size_t)n >= sizeof(loc)) {
        px_api_respond(r, 414, NULL, 0, px_error_body(414), strlen(px_error_body(414)));
        px_finish(r);
        return;
    }
    /* Traefik v3: permanent is 301 for GET/HEAD and 308 otherwise;
     * temporary is 302 / 307 */
    if (ep->redirect_permanent)
        status = px_method_is(r, "GET") || px_method_is(r, "HEAD") ? 301 : 308;
    else
        status = px_method_is(r, "GET") || px_method_is(r, "HEAD") ? 302 : 307;
    h[0].name = "Location";
    h[0].value = loc;
    px_api_respond(r, status, h, 1, NULL, 0);
    px_finish(r);
}

/* 1 when the Host of a TLS request is served with other TLS options than
 * the handshake used (Traefik's domain fronting check: 421). */
static int px_misdirected(struct relais_req *r)
{
    const struct ts_options *o;
    char host[256];
    size_t hl = r->host_len;
    const char *want;

    if (!r->snap->tls_hosts || !hl || hl >= sizeof(host)) return 0;
    memcpy(host, r->host, hl);
    host[hl] = '\0';
    o = ts_hosts_lookup(r->snap->tls_hosts, host, strlen(host));
    want = ts_options_name(o);
    return strcmp(want, r->conn->tls_opts ? r->conn->tls_opts : "") != 0;
}

/* Matches the router and runs the chain. */
/* Answers a ping: 200 "OK", or ping.terminatingStatusCode once a
 * graceful stop began (Traefik's body: the status text). */
static void px_ping_answer(struct relais_req *r)
{
    static const relais_header ct = {"Content-Type", "text/plain; charset=utf-8"};
    int st = __atomic_load_n(&wk_terminating, __ATOMIC_RELAXED) ? r->w->sc->ping_status : 200;
    const char *body = px_reason(st);

    r->local = 0;
    px_api_respond(r, st, &ct, 1, body, strlen(body));
    px_finish(r);
}

char *(*px_prom_render)(size_t *len);

/* Answers with the Prometheus exposition (prometheus@internal). */
static void px_prometheus(struct relais_req *r)
{
    static const relais_header ct = {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"};
    static const relais_header allow = {"Allow", "GET, HEAD"};
    size_t len = 0;
    char *text;

    r->local = 0;
    if (!px_method_is(r, "GET") && !px_method_is(r, "HEAD")) {
        px_api_respond(r, 405, &allow, 1, NULL, 0);
    } else if (!px_prom_render || !(text = px_prom_render(&len))) {
        px_api_respond(r, 503, NULL, 0, NULL, 0);
    } else if (px_respond_heap(r, 200, &ct, 1, text, len) < 0) {
        px_api_respond(r, 500, NULL, 0, NULL, 0);
    }
    px_finish(r);
}

/* The answer of an internal service (enum snap_internal).  Metrics do
 * not count it (Traefik's addInternals off). */
static void px_internal(struct relais_req *r, int what)
{
    r->internal_answer = 1;
    switch (what) {
    case SNAP_INT_PING:
        px_ping_answer(r);
        return;
    case SNAP_INT_PROMETHEUS:
        px_prometheus(r);
        return;
    default:
        r->local = 0;
        api_serve(r);
        px_finish(r);
        return;
    }
}

/* 1 when p[0..n) is prefix itself or starts with prefix + "/". */
static int px_path_under(const char *p, size_t n, const char *prefix)
{
    size_t l = strlen(prefix);
    return n >= l && !memcmp(p, prefix, l) && (n == l || p[l] == '/');
}

/* What relais answers on an entry point before any router, without one
 * being configured (Traefik's internal routers): GET or HEAD /ping on
 * ping.entryPoint; /metrics on metrics.prometheus.entryPoint; with
 * api.insecure, /api/..., /dashboard/... and / on entry point traefik.
 * None of it with manualRouting (then only routers to the @internal
 * services answer).  1 when answered. */
static int px_internal_auto(struct relais_req *r)
{
    const struct sc_config *sc = r->w->sc;
    const char *p = r->path;
    size_t n = r->path_len;

    if (sc->ping && !sc->ping_manual && r->ep == sc->ping_ep && n == 5 &&
        !memcmp(p, "/ping", 5) && (px_method_is(r, "GET") || px_method_is(r, "HEAD"))) {
        px_internal(r, SNAP_INT_PING);
        return 1;
    }
    if (sc->prom && !sc->prom_manual && r->ep == sc->prom_ep && n == 8 &&
        !memcmp(p, "/metrics", 8)) {
        px_internal(r, SNAP_INT_PROMETHEUS);
        return 1;
    }
    if (sc->api_insecure && r->ep == sc->api_ep &&
        (px_path_under(p, n, "/api") || px_path_under(p, n, "/dashboard") ||
         (n == 1 && p[0] == '/'))) {
        px_internal(r, SNAP_INT_API);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ HTTP/2 */

#define PX_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" /* RFC 9113 3.4 */

/* An HTTP/2 session for c with its entry point's limits, or NULL. */
static struct h2_conn *px_h2_new(struct px_conn *c)
{
    const struct sc_entrypoint *ep = c->epc;
    struct h2_limits lim = {ep->h2_max_streams, ep->max_head, ep->max_fields,
                            ep->h2_max_resets, ep->h2_max_control};

    return h2_conn_new(c, c->w->base, c->bev, &lim);
}

/* Hands c to h2.c (ALPN h2, the h2c preface, or an h2c upgrade, which
 * made c->h2 already).  0, or -1 (c closed). */
static int px_h2_start(struct px_conn *c)
{
    if (!c->h2) c->h2 = px_h2_new(c);
    if (!c->h2) {
        px_conn_close(c);
        return -1;
    }
    c->state = PX_H2;
    c->head_armed = 0;
    px_timer(c, c->epc->idle_timeout_ms);
    h2_conn_begin(c->h2);
    return 0;
}

/* h2c by Upgrade (RFC 7540 3.2; Traefik serves it, with Go's h2c): the
 * request head buf[0..len), parsed into h, that offers "Upgrade: h2c" with
 * one HTTP2-Settings field, both listed in Connection, on a plain
 * connection, is answered 101 and the connection is HTTP/2 from there on,
 * the request its stream 1.  A request with a body is served over
 * HTTP/1.1 instead (Go reads the body first; relais holds none back), as
 * is an h2c offer on TLS (h2c is cleartext only) or one made otherwise:
 * then H1_F_UPGRADE is cleared from h, so that the Upgrade is not
 * forwarded to the server either.  1 when upgraded (the head consumed),
 * 0 when the request goes on as HTTP/1.1. */
static int px_h2c_upgrade(struct px_conn *c, const char *buf, size_t len, struct h1_head *h)
{
    const struct h1_field *settings = NULL;
    struct h2_field *f;
    size_t n = 0, nsettings = 0;
    int h2c = 0;

    for (size_t i = 0; i < h->nfields; i++) {
        const struct h1_field *fl = &h->fields[i];
        size_t pos = 0, st, el;
        if (h1_span_eq(buf, fl->name, "http2-settings")) {
            settings = fl;
            nsettings++;
        } else if (h1_span_eq(buf, fl->name, "upgrade")) {
            while (h1_list_next(buf + fl->value.off, fl->value.len, &pos, &st, &el))
                if (msg_name_eq(buf + fl->value.off + st, el, "h2c", 3)) h2c = 1;
        }
    }
    if (!h2c) return 0; /* websocket and the like */
    if (c->tls || c->parent || h->version != 11 || !(h->flags & H1_F_CONN_UPGRADE) ||
        nsettings != 1 || !px_conn_listed(buf, h, "http2-settings", 14) ||
        h->content_length > 0 || (h->flags & H1_F_CHUNKED))
        goto http1;
    f = arena_alloc(c->arena, (h->nfields + 4) * sizeof(*f));
    if (!f) goto http1;
    f[n++] = (struct h2_field){":method", 7, buf + h->method.off, h->method.len};
    f[n++] = (struct h2_field){":scheme", 7, "http", 4};
    f[n++] = (struct h2_field){":authority", 10, buf + h->host.off, h->host.len};
    f[n++] = (struct h2_field){":path", 5, buf + h->target.off, h->target.len};
    for (size_t i = 0; i < h->nfields; i++) {
        /* hop-by-hop fields are px_h2_request's to drop, as for any
           stream; those Connection lists are only known here */
        const char *nm = buf + h->fields[i].name.off;
        size_t nl = h->fields[i].name.len;
        if (h1_span_eq(buf, h->fields[i].name, "host") || px_conn_listed(buf, h, nm, nl)) continue;
        f[n++] = (struct h2_field){nm, nl, buf + h->fields[i].value.off, h->fields[i].value.len};
    }
    c->h2 = px_h2_new(c);
    if (!c->h2 ||
        h2_conn_upgrade(c->h2, buf + settings->value.off, settings->value.len, f, n) < 0) {
        h2_conn_free(c->h2);
        c->h2 = NULL;
        goto http1;
    }
    log_debug("http", "%s: upgraded to h2c", c->peer_ip);
    evbuffer_drain(st_input(c->bev), len);
    px_h2_start(c);
    return 1;
http1:
    h->flags &= ~H1_F_UPGRADE;
    return 0;
}

struct px_conn *px_h2_stream_open(struct px_conn *c, struct stream *vs, struct h2_stream *hs)
{
    struct px_conn *sc = px_h2_take(c);

    if (!sc) return NULL;
    sc->w = c->w;
    sc->ep = c->ep;
    sc->epc = c->epc;
    sc->handed = 1;
    sc->peer = c->peer;
    memcpy(sc->peer_ip, c->peer_ip, sizeof(sc->peer_ip));
    sc->peer_port = c->peer_port;
    sc->trusted = c->trusted;
    sc->tls = c->tls;
    if (c->tls_opts && !sc->tls_opts) sc->tls_opts = strdup(c->tls_opts);
    if (!sc->arena) sc->arena = arena_new(RELAIS_ARENA_CAP);
    if (!sc->timer) sc->timer = evtimer_new(c->w->base, px_timeout, sc);
    sc->parent = c;
    c->nsubs++;
    if (!sc->arena || !sc->timer || (c->tls_opts && !sc->tls_opts)) {
        px_conn_free(sc); /* not attached yet: vs stays the caller's */
        return NULL;
    }
    sc->bev = vs;
    sc->h2s = hs;
    sc->state = PX_HEAD;
    st_setcb(vs, px_client_read, px_client_write, px_client_event, sc);
    st_setwatermark(vs, ST_READ, 0, RELAIS_BUFFER_HIGH);
    px_timer(c, c->epc->idle_timeout_ms); /* activity on the connection */
    return sc;
}

void px_h2_stream_closed(struct px_conn *sc)
{
    sc->h2s = NULL; /* h2.c forgot the stream already */
    px_conn_close(sc);
}

void px_h2_conn_closed(struct px_conn *c)
{
    px_conn_close(c);
}

/* HTTP/2 names are lowercase; towards HTTP/1.1 servers they go in Go's
 * canonical form (Traefik's: "user-agent" -> "User-Agent"), copied into
 * r's arena.  NULL when out of memory. */
static const char *px_canonical(struct relais_req *r, const char *n, size_t l)
{
    char *c = arena_alloc(r->arena, l + 1);
    int up = 1;

    if (!c) return NULL;
    for (size_t i = 0; i < l; i++) {
        c[i] = up && n[i] >= 'a' && n[i] <= 'z' ? (char)(n[i] - 32) : n[i];
        up = n[i] == '-';
    }
    c[l] = '\0';
    return c;
}

#define PX_MAX_TRAILERS 64 /* trailer fields kept per message */

/* r's request (which = 1) or response (2) trailers, made empty on first
 * use; NULL when out of memory. */
static struct relais_hdrs *px_trailers(struct relais_req *r, int which)
{
    struct relais_hdrs *t = which == 1 ? &r->req_trailers : &r->resp_trailers;

    if (!(r->trailers_init & which)) {
        if (msg_hdrs_init(t, r->arena, 4, PX_MAX_TRAILERS) < 0) return NULL;
        r->trailers_init |= (unsigned char)which;
    }
    return t;
}

relais_hdrs *px_api_req_trailers(relais_req *r)
{
    return px_trailers(r, 1);
}

relais_hdrs *px_api_resp_trailers(relais_req *r)
{
    return px_trailers(r, 2);
}

int px_h2_trailer(struct px_conn *c, const char *name, size_t nlen, const char *value,
                  size_t vlen)
{
    struct relais_req *r = c->r;
    struct relais_hdrs *t;
    const char *nm, *vl;

    if (!r) return 0; /* the exchange ended: nothing wants them */
    t = px_trailers(r, 1);
    nm = px_canonical(r, name, nlen);
    vl = arena_strndup(r->arena, value, vlen);
    if (!t || !nm || !vl) return -1;
    return msg_hdrs_add(t, nm, nlen, vl, vlen, 0);
}

void px_h2_request(struct px_conn *c, const struct h2_field *f, size_t n, int end_stream)
{
    const struct sc_entrypoint *ep = c->epc;
    struct relais_req *r = px_req_new(c);
    const char *path = NULL, *cookie = NULL;
    size_t path_len = 0, cookie_len = 0;
    int64_t clen = -1;
    int st = 0;

    if (!r) {
        px_conn_close(c);
        return;
    }
    r->version = 20;
    r->scheme = c->tls ? "https" : "http";
    r->scheme_len = c->tls ? 5 : 4;
    if (msg_hdrs_init(&r->req_hdrs, c->arena, (uint32_t)n + 8, (uint32_t)ep->max_fields + 32) < 0)
        st = 500;
    for (size_t i = 0; !st && i < n; i++) {
        const char *nm = f[i].name, *vl = arena_strndup(r->arena, f[i].value, f[i].vlen);
        size_t nl = f[i].nlen, vlen = f[i].vlen;
        if (!vl) {
            st = 500;
        } else if (nl && nm[0] == ':') {
            /* nghttp2 checked the pseudo-headers' set and order */
            if (nl == 7 && !memcmp(nm, ":method", 7)) {
                r->method = vl;
                r->method_len = vlen;
            } else if (nl == 5 && !memcmp(nm, ":path", 5)) {
                path = vl;
                path_len = vlen;
            } else if (nl == 10 && !memcmp(nm, ":authority", 10)) {
                r->authority = vl;
                r->authority_len = vlen;
            }
        } else if (nl == 4 && !memcmp(nm, "host", 4)) {
            if (!r->authority) {
                r->authority = vl;
                r->authority_len = vlen;
            }
        } else if (nl == 6 && !memcmp(nm, "cookie", 6)) {
            /* cookies split across fields are joined for HTTP/1.1 (RFC
               9113 8.2.3) */
            if (!cookie) {
                cookie = vl;
                cookie_len = vlen;
            } else {
                char *j = arena_alloc(r->arena, cookie_len + 2 + vlen);
                if (!j) {
                    st = 500;
                    break;
                }
                memcpy(j, cookie, cookie_len);
                memcpy(j + cookie_len, "; ", 2);
                memcpy(j + cookie_len + 2, vl, vlen);
                cookie = j;
                cookie_len += 2 + vlen;
            }
        } else if (px_hop_by_hop(nm, nl) || (!c->trusted && px_forwarded_header(nm, nl))) {
            if (nl == 2 && !memcmp(nm, "te", 2) && px_te_trailers(vl, vlen)) r->te_trailers = 1;
            continue;
        } else {
            if (nl == 14 && !memcmp(nm, "content-length", 14)) {
                char *e;
                long long v = strtoll(vl, &e, 10);
                if (e == vl || *e || v < 0) st = 400;
                else clen = v;
            }
            if (!st && msg_hdrs_add(&r->req_hdrs, px_canonical(r, nm, nl), nl, vl, vlen, 0) < 0)
                st = 431;
        }
    }
    if (!st && cookie && msg_hdrs_add(&r->req_hdrs, "Cookie", 6, cookie, cookie_len, 0) < 0)
        st = 431;
    if (!st && r->te_trailers && msg_hdrs_add(&r->req_hdrs, "Te", 2, "trailers", 8, 0) < 0)
        st = 431;
    if (!st && (!r->method || !path || !r->authority || !r->authority_len)) st = 400;
    if (!st) st = px_target(r, path, path_len);
    if (st) {
        if (!r->method) r->method = "GET", r->method_len = 3;
        if (!r->path) r->path = "/", r->path_len = 1;
        r->req_body_done = 1;
        px_api_respond(r, st, NULL, 0, NULL, 0);
        px_finish(r);
        return;
    }
    r->is_head = r->method_len == 4 && !memcmp(r->method, "HEAD", 4);
    px_host_from_authority(r);
    if (px_add_forwarded(r, c) < 0) {
        px_api_respond(r, 431, NULL, 0, NULL, 0);
        r->req_body_done = 1;
        px_finish(r);
        return;
    }
    if (trc_active) trc_req_start(r);
    /* body framing: DATA frames until END_STREAM; an unknown length goes
       to the server chunked */
    if (end_stream) {
        r->req_body_done = 1;
        if (clen > 0) st = 400;
    } else if (clen >= 0) {
        r->req_left = clen; /* nghttp2 checks DATA against it */
        if (clen == 0) r->req_body_done = 1;
    } else {
        r->req_chunked = 1;
        r->req_h2_raw = 1;
    }
    if (ep->write_timeout_ms > 0) {
        struct timeval tv = {ep->write_timeout_ms / 1000, (ep->write_timeout_ms % 1000) * 1000};
        if (!c->wtimer) c->wtimer = evtimer_new(c->w->base, px_write_deadline, c);
        if (c->wtimer) evtimer_add(c->wtimer, &tv);
    }
    if (!r->req_body_done && ep->read_timeout_ms > 0) px_timer(c, ep->read_timeout_ms);
    st_enable(c->bev, ST_READ);
    px_route(r);
}

static void px_route(struct relais_req *r)
{
    struct px_conn *c = r->conn;
    struct rule_req rq;
    struct snap_router *rt;

    r->sref = wk_acquire(r->w);
    if (!r->sref) {
        px_api_respond(r, 503, NULL, 0, NULL, 0);
        px_finish(r);
        return;
    }
    r->snap = r->sref->snap;
    memset(&rq, 0, sizeof(rq));
    rq.method = r->method;
    rq.method_len = r->method_len;
    rq.host = r->host;
    rq.host_len = r->host_len;
    rq.path = px_match_path(r, &rq.path_len);
    rq.query = r->query;
    rq.query_len = r->query_len;
    rq.client = (const struct sockaddr *)&c->peer;
    rq.header = px_rule_header;
    rq.header_arg = &r->req_hdrs;
    if (px_acme_http01(r)) return;
    if (!c->tls && c->epc->redirect_to) {
        px_redirect_ep(r);
        return;
    }
    if (c->tls && px_misdirected(r)) {
        px_api_respond(r, 421, NULL, 0, px_error_body(421), strlen(px_error_body(421)));
        px_finish(r);
        return;
    }
    if (px_internal_auto(r)) return;
    rt = (r->ep < (int)r->snap->ntables)
             ? rt_match(c->tls ? r->snap->tls_tables[r->ep] : r->snap->tables[r->ep], &rq)
             : NULL;
    if (!rt) {
        px_api_respond(r, 404, NULL, 0, px_error_body(404), strlen(px_error_body(404)));
        px_finish(r);
        return;
    }
    r->router = rt;
    r->service = rt->service;
    {
        /* the body cap (the router's replaces the entry point's), by the
           declared length; px_pump_request counts a chunked body */
        int64_t cap = rt->max_body > 0 ? rt->max_body : r->conn->epc->max_body;
        if (cap > 0 && r->req_left > cap) {
            px_refuse_body(r, 413);
            return;
        }
    }
    {
        /* the entry point's middlewares first, then the router's */
        size_t ne = r->ep < (int)r->snap->ntables && r->snap->ep_mws ? r->snap->ep_nmws[r->ep] : 0;
        r->nchain = ne + rt->nmws;
        if (ne == 0) {
            r->chain = rt->mws;
        } else {
            r->chain = arena_alloc(r->arena, r->nchain * sizeof(*r->chain));
            if (r->chain) {
                memcpy(r->chain, r->snap->ep_mws[r->ep], ne * sizeof(*r->chain));
                if (rt->nmws) memcpy(r->chain + ne, rt->mws, rt->nmws * sizeof(*r->chain));
            }
        }
        if (r->nchain) {
            r->mw_ctx = arena_alloc(r->arena, r->nchain * sizeof(void *));
            if (!r->chain || !r->mw_ctx) {
                r->chain = NULL;
                r->nchain = 0;
                px_api_respond(r, 500, NULL, 0, NULL, 0);
                px_finish(r);
                return;
            }
            memset(r->mw_ctx, 0, r->nchain * sizeof(void *));
        }
    }
    px_run_chain(r);
}

/* ------------------------------------------------------------ the chain */

/* Applies one verdict of the middleware at r->mw_pos - 1.  Returns 1 to
 * go on with the chain. */
static int px_verdict(struct relais_req *r, int verdict)
{
    switch (verdict) {
    case RELAIS_NEXT:
        return 1;
    case RELAIS_DONE:
        if (!r->local) px_api_respond(r, 500, NULL, 0, NULL, 0);
        r->mw_pos--; /* the one that answered gets no on_response */
        px_finish(r);
        return 0;
    case RELAIS_SUSPEND:
        r->suspended = 1;
        return 0;
    default:
        log_error("middleware", "%s failed on a request", r->router->mws[r->mw_pos - 1]->name);
        r->mw_pos--;
        r->local = 0;
        px_api_respond(r, 500, NULL, 0, NULL, 0);
        px_finish(r);
        return 0;
    }
}

/* Runs the remaining on_request callbacks, then forwards. */
static void px_run_chain(struct relais_req *r)
{
    while (r->mw_pos < r->nchain) {
        struct snap_middleware *m = r->chain[r->mw_pos];
        int v = m->ops->on_request(m->inst, r, &r->mw_ctx[r->mw_pos]);
        r->mw_pos++;
        if (!px_verdict(r, v)) return;
    }
    px_forward(r);
}

void px_api_resume(relais_req *r, int verdict)
{
    struct px_conn *c = r->conn;

    if (!r->suspended) return;
    r->suspended = 0;
    if (r->aborted || !c) {
        /* the client went away meanwhile */
        r->conn = NULL;
        px_req_free(r);
        return;
    }
    px_enter(c);
    if (px_verdict(r, verdict)) px_run_chain(r);
    px_leave(c);
}

/* Runs on_response of the middlewares that passed the request, last
 * first. */
static void px_run_responses(struct relais_req *r)
{
    if (!r->chain) return;
    while (r->mw_pos > 0) {
        struct snap_middleware *m = r->chain[--r->mw_pos];
        r->mw_cur = (int)r->mw_pos;
        if (m->ops->on_response &&
            m->ops->on_response(m->inst, r, &r->mw_ctx[r->mw_pos]) == RELAIS_ERROR)
            log_error("middleware", "%s failed on a response", m->name);
    }
    r->mw_cur = -1;
}

/* 1 when the plugin's operations table has on_response_body (ABI 1.4). */
static int px_has_body_op(const relais_middleware_ops *o)
{
    return o->size >= offsetof(relais_middleware_ops, on_response_body) +
                          sizeof(o->on_response_body) &&
           o->on_response_body != NULL;
}

int px_api_body_filter(relais_req *r)
{
    if (r->mw_cur < 0 || (size_t)r->mw_cur >= r->nchain || !r->resp_has_body ||
        r->resp_started || !px_has_body_op(r->chain[r->mw_cur]->ops))
        return -1;
    if (!r->mw_filter) {
        r->mw_filter = arena_alloc(r->arena, r->nchain);
        if (!r->mw_filter) return -1;
        memset(r->mw_filter, 0, r->nchain);
    }
    r->mw_filter[r->mw_cur] = 1;
    r->filtering = 1;
    return 0;
}

/* The next filter outwards from position p (towards the client), or -1
 * for the client itself. */
static int px_filter_next(const struct relais_req *r, int p)
{
    for (int i = p - 1; i >= 0; i--)
        if (r->mw_filter[i]) return i;
    return -1;
}

/* Appends len bytes to out, as one chunk when chunked (len > 0). */
static void px_add_framed(struct evbuffer *out, const char *data, size_t len, int chunked)
{
    if (!len) return;
    if (chunked) {
        char hdr[32];
        int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
        evbuffer_add(out, hdr, (size_t)hl);
        evbuffer_add(out, data, len);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, len);
    }
}

/* Moves n bytes from in to out (zero-copy), as one chunk when chunked. */
static void px_move_framed(struct evbuffer *in, struct evbuffer *out, size_t n, int chunked)
{
    if (!n) return;
    if (chunked) {
        char hdr[32];
        int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
        evbuffer_add(out, hdr, (size_t)hl);
        evbuffer_remove_buffer(in, out, n);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_remove_buffer(in, out, n);
    }
}

/* Feeds n bytes of in, piece by piece, to run(r, p, piece, len, 0) and
 * drains them (the body filters' input, either direction). */
static void px_feed(struct relais_req *r, struct evbuffer *in, size_t n, int p,
                    void (*run)(struct relais_req *, int, const char *, size_t, int))
{
    while (n > 0) {
        struct evbuffer_iovec v;
        size_t take;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        take = v.iov_len < n ? v.iov_len : n;
        run(r, p, v.iov_base, take, 0);
        evbuffer_drain(in, take);
        n -= take;
    }
}

/* Ends a chunked body to the client: the last chunk, the response
 * trailers (what the middlewares left of them), the final CRLF.  Other
 * framings carry no trailers: they are dropped (HTTP/2 clients get them
 * from px_finish). */
static void px_client_end(struct relais_req *r)
{
    struct evbuffer *out = st_output(r->conn->bev);
    const struct relais_hdrs *t = &r->resp_trailers;

    if (!r->client_chunked) return;
    evbuffer_add(out, "0\r\n", 3);
    if (r->trailers_init & 2)
        for (uint32_t i = 0; i < t->n; i++) {
            if (px_hop_by_hop(t->v[i].name, t->v[i].nlen) ||
                msg_name_eq(t->v[i].name, t->v[i].nlen, "content-length", 14))
                continue;
            evbuffer_add(out, t->v[i].name, t->v[i].nlen);
            evbuffer_add(out, ": ", 2);
            evbuffer_add(out, t->v[i].value, t->v[i].vlen);
            evbuffer_add(out, "\r\n", 2);
        }
    evbuffer_add(out, "\r\n", 2);
}

/* Writes body bytes to the client in its framing; last ends the body. */
static void px_client_body(struct relais_req *r, const char *data, size_t len, int last)
{
    px_add_framed(st_output(r->conn->bev), data, len, r->client_chunked);
    if (last) px_client_end(r);
}

/* Passes body bytes to the filter at position p (-1: the client); last
 * ends the body there and outwards. */
static void px_filter_run(struct relais_req *r, int p, const char *data, size_t len, int last)
{
    struct snap_middleware *m;
    int save, rc;

    if (r->filter_failed) return;
    if (p < 0) {
        px_client_body(r, data, len, last);
        return;
    }
    m = r->chain[p];
    save = r->filter_cur;
    r->filter_cur = p;
    rc = m->ops->on_response_body(m->inst, r, &r->mw_ctx[p], data, len, last);
    r->filter_cur = save;
    if (rc == RELAIS_ERROR) {
        log_error("middleware", "%s failed on a response body", m->name);
        r->filter_failed = 1;
        return;
    }
    if (last) px_filter_run(r, px_filter_next(r, p), NULL, 0, 1);
}

int px_api_body_write(relais_req *r, const char *data, size_t len)
{
    if (r->filter_cur < 0 || !r->conn || r->filter_failed) return -1;
    if (len) px_filter_run(r, px_filter_next(r, r->filter_cur), data, len, 0);
    return r->filter_failed ? -1 : 0;
}

/* Moves n body bytes from in to the client: through the filters when
 * there are some, else framed for the client (zero-copy). */
static void px_body_move(struct relais_req *r, struct evbuffer *in, size_t n)
{
    if (!n) return;
    r->body_out += n;
    if (!r->filtering) px_move_framed(in, st_output(r->conn->bev), n, r->client_chunked);
    else px_feed(r, in, n, px_filter_next(r, (int)r->nchain), px_filter_run);
}

/* The body ended: the filters flush, the client framing ends. */
static void px_body_end(struct relais_req *r)
{
    if (r->filtering) px_filter_run(r, px_filter_next(r, (int)r->nchain), NULL, 0, 1);
    else px_client_end(r);
}

/* px_api_respond's body: copy = 1 copies body into the arena, 0 keeps
 * the pointer (the caller guarantees it lives as long as the request). */
static int px_respond(relais_req *r, int status, const relais_header *headers, size_t nheaders,
                      const char *body, size_t len, int copy)
{
    const char *b = NULL;

    if (r->resp_started || status < 100 || status > 999) return -1;
    if (msg_hdrs_init(&r->resp_hdrs, r->arena, (uint32_t)nheaders + 4, 1024) < 0)
        return -1;
    for (size_t i = 0; i < nheaders; i++)
        if (msg_api_add(&r->resp_hdrs, headers[i].name, headers[i].value,
                        strlen(headers[i].value)) < 0)
            return -1;
    if (!body && px_error_body(status) == NULL && status >= 400) {
        body = px_reason(status);
        len = strlen(body);
        copy = 0; /* static text */
    }
    if (len && copy) {
        char *c = arena_alloc(r->arena, len);
        if (!c) return -1;
        memcpy(c, body, len);
        b = c;
    } else if (len) {
        b = body;
    }
    if (msg_hdrs_find(&r->resp_hdrs, "Content-Type", 12, 0) < 0 && len)
        msg_hdrs_add(&r->resp_hdrs, "Content-Type", 12, "text/plain; charset=utf-8", 25, 0);
    r->status = status;
    r->has_resp = 1;
    r->local = 1;
    r->local_body = b;
    r->local_body_len = len;
    return 0;
}

int px_api_respond(relais_req *r, int status, const relais_header *headers,
                   size_t nheaders, const char *body, size_t len)
{
    return px_respond(r, status, headers, nheaders, body, len, 1);
}

int px_respond_heap(relais_req *r, int status, const relais_header *headers, size_t nheaders,
                    char *body, size_t len)
{
    if (px_api_on_end(r, free, body) < 0) {
        free(body);
        return -1;
    }
    return px_respond(r, status, headers, nheaders, body, len, 0);
}

int px_api_set_path(relais_req *r, const char *path, size_t len)
{
    char *p;

    /* an empty path is allowed (ABI 1.4): it reads back empty and goes
     * upstream as "/", as in Go (stripPrefix of the whole path) */
    if (len > 65536) return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f || path[i] == '?' ||
            path[i] == '#')
            return -1;
    p = arena_strndup(r->arena, path ? path : "", len);
    if (!p) return -1;
    r->path = p;
    r->path_len = len;
    return 0;
}

#define PX_MAX_ENDCB 16 /* req_on_end registrations per request */

int px_api_on_end(relais_req *r, void (*cb)(void *arg), void *arg)
{
    if (!cb || r->nendcb >= PX_MAX_ENDCB) return -1;
    if (!r->endcb) {
        r->endcb = arena_alloc(r->arena, PX_MAX_ENDCB * sizeof(*r->endcb));
        if (!r->endcb) return -1;
    }
    r->endcb[r->nendcb].cb = cb;
    r->endcb[r->nendcb].arg = arg;
    r->nendcb++;
    return 0;
}

int px_api_set_authority(relais_req *r, const char *a, size_t len)
{
    char *p;

    if (len == 0 || len > 1024) return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)a[i] <= 0x20 || a[i] == 0x7f || a[i] == '/' || a[i] == '?' ||
            a[i] == '#' || a[i] == '@' || a[i] == ',')
            return -1;
    p = arena_strndup(r->arena, a, len);
    if (!p) return -1;
    r->authority = p;
    r->authority_len = len;
    px_host_from_authority(r);
    return 0;
}

int px_api_set_query(relais_req *r, const char *query, size_t len)
{
    char *q;

    if (!query) {
        r->query = NULL;
        r->query_len = 0;
        return 0;
    }
    if (len > 65536) return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)query[i] <= 0x20 || query[i] == 0x7f || query[i] == '#')
            return -1;
    q = arena_strndup(r->arena, query, len);
    if (!q) return -1;
    r->query = q;
    r->query_len = len;
    return 0;
}

/* ------------------------------------------------------------ to the server */

/* Appends the request head for server sv to out.  pass_host: the
 * client's Host goes on (else the server's own).  mirror_len >= 0 writes
 * a mirror's copy instead: no Transfer-Encoding, Content-Length:
 * mirror_len (when the request had a body), Connection: close.  0 / -1
 * (out of memory). */
/* Room px_up_path needs. */
static size_t px_up_path_room(const struct relais_req *r, const struct snap_server *sv)
{
    return strlen(sv->u.path) + r->path_len + r->query_len + 3;
}

/* The request-target towards server sv into buf (px_up_path_room bytes):
 * the server URL's path prefix, the request's path and query.  Returns
 * its length. */
static size_t px_up_path(const struct relais_req *r, const struct snap_server *sv, char *buf)
{
    size_t n = 0;

    if (sv->u.path[0]) {
        size_t pl = strlen(sv->u.path);
        if (sv->u.path[pl - 1] == '/' && r->path[0] == '/') pl--;
        memcpy(buf, sv->u.path, pl);
        n = pl;
    }
    if (r->path_len) {
        memcpy(buf + n, r->path, r->path_len);
        n += r->path_len;
    } else if (!sv->u.path[0]) {
        buf[n++] = '/';
    }
    if (r->query) {
        buf[n++] = '?';
        memcpy(buf + n, r->query, r->query_len);
        n += r->query_len;
    }
    return n;
}

/* The Host (or :authority) towards sv: the client's when the service
 * passes it, else the server's own, without the port when it is the
 * scheme's default. */
static void px_up_host(const struct relais_req *r, const struct snap_server *sv, int pass_host,
                       const char **host, size_t *len)
{
    int port_default;

    if (pass_host && r->authority_len) {
        *host = r->authority;
        *len = r->authority_len;
        return;
    }
    port_default = (sv->u.port == 80 && strcmp(sv->u.scheme, "https") != 0) ||
                   (sv->u.port == 443 && !strcmp(sv->u.scheme, "https"));
    *host = sv->u.hostport;
    *len = port_default ? (size_t)(strrchr(sv->u.hostport, ':') - sv->u.hostport)
                        : strlen(sv->u.hostport);
}

static int px_write_upstream_head(struct relais_req *r, const struct snap_server *sv,
                                  int pass_host, int64_t mirror_len, struct evbuffer *out)
{
    size_t cap = 256 + r->method_len + px_up_path_room(r, sv) + r->authority_len, n = 0;
    char *buf;
    struct relais_hdrs *h = &r->req_hdrs;
    const char *host;
    size_t hostlen;

    cap += strlen(sv->u.hostport) + r->upgrade_len + 64;
    for (uint32_t i = 0; i < h->n; i++) cap += h->v[i].nlen + h->v[i].vlen + 4;
    buf = arena_alloc(r->arena, cap);
    if (!buf) return -1;
#define PX_PUT(p, l)                                                          \
    do {                                                                      \
        memcpy(buf + n, (p), (l));                                            \
        n += (l);                                                             \
    } while (0)
    PX_PUT(r->method, r->method_len);
    buf[n++] = ' ';
    n += px_up_path(r, sv, buf + n);
    PX_PUT(" HTTP/1.1\r\nHost: ", 17);
    px_up_host(r, sv, pass_host, &host, &hostlen);
    PX_PUT(host, hostlen);
    PX_PUT("\r\n", 2);
    for (uint32_t i = 0; i < h->n; i++) {
        if (msg_name_eq(h->v[i].name, h->v[i].nlen, "host", 4)) continue;
        if (mirror_len >= 0 &&
            (msg_name_eq(h->v[i].name, h->v[i].nlen, "content-length", 14) ||
             msg_name_eq(h->v[i].name, h->v[i].nlen, "transfer-encoding", 17)))
            continue;
        PX_PUT(h->v[i].name, h->v[i].nlen);
        PX_PUT(": ", 2);
        PX_PUT(h->v[i].value, h->v[i].vlen);
        PX_PUT("\r\n", 2);
    }
    if (mirror_len >= 0) {
        /* a mirror's copy: the kept body by length, one request per
           connection */
        if (mirror_len > 0 || r->req_chunked || r->req_body_bytes > 0 || r->req_left > 0)
            n += (size_t)snprintf(buf + n, cap - n, "Content-Length: %lld\r\n",
                                  (long long)mirror_len);
        PX_PUT("Connection: close\r\n\r\n", 21);
        return evbuffer_add(out, buf, n);
    }
    if (r->up_chunked) PX_PUT("Transfer-Encoding: chunked\r\n", 28);
    if (r->want_upgrade) {
        PX_PUT("Connection: Upgrade\r\nUpgrade: ", 30);
        PX_PUT(r->upgrade, r->upgrade_len);
        PX_PUT("\r\n", 2);
    }
    PX_PUT("\r\n", 2);
#undef PX_PUT
    return evbuffer_add(out, buf, n);
}

/* Sends r's head on its HTTP/2 server stream (h2up.c), from the request
 * model: the same target and authority an HTTP/1.1 server would get.
 * 0 / -1. */
static int px_submit_h2(struct relais_req *r)
{
    const struct snap_server *sv = r->server;
    struct h2u_head hd;
    char *path = arena_alloc(r->arena, px_up_path_room(r, sv));

    if (!path) return -1;
    hd.method = r->method;
    hd.method_len = r->method_len;
    hd.scheme = !strcmp(sv->u.scheme, "https") ? "https" : "http";
    px_up_host(r, sv, r->service->pass_host_header, &hd.authority, &hd.authority_len);
    hd.path = path;
    hd.path_len = px_up_path(r, sv, path);
    hd.hdrs = &r->req_hdrs;
    hd.end_stream = !(r->req_chunked || r->req_left > 0);
    return h2u_submit(r->up, &hd);
}

/* 1 when r may be sent again after a pooled connection died under it
 * (Go's rule, which Traefik follows): GET, HEAD, OPTIONS, TRACE, or a
 * request carrying Idempotency-Key / X-Idempotency-Key. */
static int px_idempotent(const struct relais_req *r)
{
    if (px_method_is(r, "GET") || px_method_is(r, "HEAD") || px_method_is(r, "OPTIONS") ||
        px_method_is(r, "TRACE"))
        return 1;
    return msg_hdrs_find(&r->req_hdrs, "Idempotency-Key", 15, 0) >= 0 ||
           msg_hdrs_find(&r->req_hdrs, "X-Idempotency-Key", 17, 0) >= 0;
}

/* Answers the client with status when nothing was sent yet, else cuts the
 * connection; the exchange ends. */
static void px_fail(struct relais_req *r, int status)
{
    struct px_conn *c = r->conn;

    if (r->up) {
        up_conn_free(r->up);
        r->up = NULL;
    }
    if (r->resp_started) {
        px_conn_close(c);
        return;
    }
    r->local = 0;
    px_api_respond(r, status, NULL, 0, NULL, 0);
    px_finish(r);
}

/* Reports the outcome to the LB strategy and to the service's passive
 * health check.  Worker thread. */
static void px_report(struct relais_req *r, int outcome)
{
    struct snap_service *s = r->service;

    if (s && s->lb_ops && s->lb_ops->report && r->server)
        s->lb_ops->report(s->lb_inst, &s->servers, r->server_idx, outcome,
                          (wk_now_ms() - r->up_start_ms) * 1000);
    if (s && s->health && r->server) hl_report(s->health, r->server_idx, outcome);
}

/* Starts the response-header timeout: it runs from the moment the whole
 * request (body included) was handed to the server, as Traefik's
 * responseHeaderTimeout does. */
static void px_arm_response_timeout(struct relais_req *r)
{
    const struct tr_transport *tr = r->server ? r->server->transport : NULL;
    int64_t ms = tr ? tr->response_header_timeout_ms
                    : r->w->sc->transport.response_header_timeout_ms;

    /* the router's timeouts, then the service's, then the transport's */
    if (r->router && r->router->resp_header_ms > 0) ms = r->router->resp_header_ms;
    else if (r->service && r->service->resp_header_ms > 0) ms = r->service->resp_header_ms;
    struct timeval tv;

    if (ms <= 0 || !r->up || r->up_state != UP_HEAD || r->resp_timer_armed) return;
    r->resp_timer_armed = 1;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    st_set_timeouts(r->up->bev, &tv, NULL);
}

/* The server connection is usable: send the head and whatever body bytes
 * are already there. */
static void px_up_ready(struct relais_req *r)
{
    struct stream *ub = r->up->bev;
    const struct sc_config *sc = r->w->sc;

    r->up_state = UP_HEAD;
    r->up_h2 = r->up->h2s != NULL;
    st_setcb(ub, px_up_read, px_up_write, px_up_event, r);
    st_setwatermark(ub, ST_READ, 0, RELAIS_BUFFER_HIGH);
    st_setwatermark(ub, ST_WRITE, RELAIS_BUFFER_HIGH / 2, 0);
    (void)sc;
    st_set_timeouts(ub, NULL, NULL);
    if (r->up_h2) {
        /* HTTP/2 server: no Upgrade (no extended CONNECT here) */
        if (r->want_upgrade) {
            log_warn("http", "%s: an Upgrade request cannot go to an HTTP/2 server: 502",
                     r->server->url);
            px_fail(r, 502);
            return;
        }
        r->up_chunked = 0;
        if (px_submit_h2(r) < 0) {
            px_fail(r, 502);
            return;
        }
    } else {
        r->up_chunked = r->req_chunked || r->req_filtering;
        if (px_write_upstream_head(r, r->server, r->service->pass_host_header, -1,
                                   st_output(ub)) < 0) {
            px_fail(r, 500);
            return;
        }
    }
    st_enable(ub, ST_READ | ST_WRITE);
    px_pump_request(r);
}

/* Gets a server connection: pooled or new.  A new one is bounded by the
 * transport's dialTimeout, TLS handshake included (a handshake waiting
 * for the server is a read, hence the read timeout too). */
static void px_connect(struct relais_req *r)
{
    const struct tr_transport *tr = r->server->transport;
    int64_t dial_ms = tr ? tr->dial_timeout_ms : r->w->sc->transport.dial_timeout_ms;
    char err[300];

    if (r->router && r->router->dial_ms > 0) dial_ms = r->router->dial_ms;
    else if (r->service && r->service->dial_ms > 0) dial_ms = r->service->dial_ms;
    if (r->trc) trc_req_forward(r);

    r->up = r->retried ? NULL : up_pool_take(r->w->pool, r->server, r->want_upgrade);
    if (r->up) {
        px_up_ready(r);
        return;
    }
    r->up = up_connect(r->w->pool, r->server, r->want_upgrade, err, sizeof(err));
    if (!r->up) {
        log_msg(px_fail_level(r->server), "http", "cannot connect to %s: %s", r->server->url,
                err);
        px_report(r, RELAIS_OUTCOME_FAILED);
        px_fail(r, 502);
        return;
    }
    r->up_state = UP_CONNECTING;
    st_setcb(r->up->bev, NULL, NULL, px_up_event, r);
    if (dial_ms > 0) {
        struct timeval tv = {dial_ms / 1000, (dial_ms % 1000) * 1000};
        st_set_timeouts(r->up->bev, r->up->tls ? &tv : NULL, &tv);
    }
    st_enable(r->up->bev, ST_WRITE);
}

/* The level a connection failure to sv is logged at: WARN at most once a
 * second per server (a dead server under load would flood the log), DEBUG
 * for the others.  Any worker. */
static int px_fail_level(struct snap_server *sv)
{
    uint64_t now = wk_now_ms(), last = __atomic_load_n(&sv->warned_ms, __ATOMIC_RELAXED);

    if (now - last >= 1000 &&
        __atomic_compare_exchange_n(&sv->warned_ms, &last, now, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        return RELAIS_LOG_WARN;
    return RELAIS_LOG_DEBUG;
}

/* A new server connection failed before it was usable: logs why (the TLS
 * reason for a handshake, the socket error or the timeout otherwise). */
static void px_log_connect_failure(struct relais_req *r, short what, int err)
{
    const char *tls = r->up ? st_tls_error(r->up->bev) : "";
    int lv = px_fail_level(r->server);

    if (what & ST_TIMEOUT)
        log_msg(lv, "http", "%s: %s timed out (dialTimeout)", r->server->url,
                r->up && r->up->tls && st_tls_handshaking(r->up->bev) ? "TLS handshake"
                                                                      : "connect");
    else if (tls && *tls)
        log_msg(lv, "http", "%s: TLS handshake failed: %s", r->server->url, tls);
    else
        log_msg(lv, "http", "%s: connect failed: %s", r->server->url,
                err ? strerror(err) : "connection closed");
}

/* Body gate: a chunked body whose framing is broken must not reach a
 * server, not even its head.  Before forwarding, the chunked bytes already
 * buffered are checked with a scratch decoder.  Returns 1 to forward now
 * (body complete, PX_BODY_GATE bytes valid, Expect: 100-continue, or
 * force), 0 to wait for more bytes, -1 when it answered 400. */
static int px_body_gate(struct relais_req *r, int force)
{
    struct px_conn *c = r->conn;
    struct evbuffer *in = st_input(c->bev);
    struct evbuffer_iovec v[64];
    struct h1_chunk probe;
    size_t seen = 0;
    int n, i, done = 0, bad = 0;

    if (!r->req_chunked || r->req_h2_raw || r->req_body_done || r->expect_continue ||
        r->gate_passed || force) {
        r->gate_passed = 1;
        return 1;
    }
    probe = r->req_chunk;
    n = evbuffer_peek(in, -1, NULL, v, 64);
    if (n > 64) n = 64;
    for (i = 0; i < n && !done && !bad; i++) {
        size_t off = 0;
        while (off < v[i].iov_len) {
            size_t doff, dlen;
            ssize_t used = h1_chunk_parse(&probe, (const char *)v[i].iov_base + off,
                                          v[i].iov_len - off, &doff, &dlen);
            if (used < 0) {
                bad = 1;
                break;
            }
            if (used == 0) break;
            off += (size_t)used;
            seen += (size_t)used;
            if (h1_chunk_done(&probe)) {
                done = 1;
                break;
            }
        }
    }
    if (bad) {
        log_debug("http", "%s: bad chunked request body, nothing forwarded", c->peer_ip);
        px_refuse_body(r, 400);
        return -1;
    }
    if (done || seen >= PX_BODY_GATE) r->gate_passed = 1;
    return r->gate_passed;
}

/* The body gate's deadline: forward what a streaming client sent so far. */
static void px_gate_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct px_conn *c = arg;
    struct relais_req *r = c->r;

    (void)fd;
    (void)what;
    px_enter(c);
    if (r && r->gate_wait) {
        r->gate_wait = 0;
        if (px_body_gate(r, 1) == 1) px_forward(r);
    }
    px_leave(c);
}

/* Sends the copies of r to its mirror services: one server of each
 * (picked by the service tree, cookies ignored), the head as the main
 * server would get it and the kept body.  Worker thread. */
static void px_mirror_send(struct relais_req *r)
{
    struct px_mirror *m = r->mirror;
    struct evbuffer *buf;

    if (!m || m->sent) return;
    m->sent = 1;
    if (m->overflow) {
        log_debug("http", "%s: request body larger than the mirrors' maxBodySize: not mirrored",
                  r->conn ? r->conn->peer_ip : "-");
        return;
    }
    buf = evbuffer_new();
    if (!buf) return;
    for (unsigned i = 0; i < m->n; i++) {
        struct snap_service *leaf = NULL;
        struct svc_choice ch;
        int64_t len = m->body ? (int64_t)evbuffer_get_length(m->body) : 0;
        int idx;

        memset(&ch, 0, sizeof(ch));
        idx = svc_pick(r, m->svcs[i], &leaf, &ch);
        if (idx < 0) continue;
        evbuffer_drain(buf, evbuffer_get_length(buf));
        if (px_write_upstream_head(r, &leaf->servers.v[idx], leaf->pass_host_header, len, buf) <
            0)
            continue;
        if (len > 0) {
            const unsigned char *body = evbuffer_pullup(m->body, -1);
            if (!body || evbuffer_add(buf, body, (size_t)len) < 0) continue;
        }
        mr_send(r->w, r->snap, &leaf->servers.v[idx], buf);
    }
    evbuffer_free(buf);
    if (m->body) {
        evbuffer_free(m->body);
        m->body = NULL;
    }
}

/* Keeps n body bytes at p for the mirrors (or gives up beyond their
 * cap). */
static void px_mirror_keep(struct relais_req *r, const void *p, size_t n)
{
    struct px_mirror *m = r->mirror;

    if (!m || !m->body || m->overflow || m->sent || !n) return;
    if ((int64_t)(evbuffer_get_length(m->body) + n) > m->max) {
        m->overflow = 1;
        evbuffer_free(m->body);
        m->body = NULL;
        return;
    }
    if (evbuffer_add(m->body, p, n) < 0) m->overflow = 1;
}

/* Keeps the first n bytes of in (not drained) for the mirrors. */
static void px_mirror_keep_buf(struct relais_req *r, struct evbuffer *in, size_t n)
{
    struct px_mirror *m = r->mirror;
    struct evbuffer_ptr pos;
    char tmp[16384];

    if (!m || !m->body || m->overflow || m->sent || !n) return;
    if (evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET) < 0) return;
    while (n > 0 && m->body && !m->overflow) {
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, tmp, n < sizeof(tmp) ? n : sizeof(tmp));
        if (got <= 0) break;
        px_mirror_keep(r, tmp, (size_t)got);
        if (evbuffer_ptr_set(in, &pos, (size_t)got, EVBUFFER_PTR_ADD) < 0) break;
        n -= (size_t)got;
    }
}

/* Prepares r's copies for the mirrors ch chose: sent at once when there
 * is no body to keep, else when the body is complete. */
static void px_mirror_start(struct relais_req *r, const struct svc_choice *ch)
{
    struct px_mirror *m = calloc(1, sizeof(*m));

    if (!m) return;
    memcpy(m->svcs, ch->mirrors, ch->nmirrors * sizeof(*m->svcs));
    m->n = ch->nmirrors;
    m->max = ch->mirror_max;
    r->mirror = m;
    if (ch->mirror_body && !r->req_body_done) {
        m->body = evbuffer_new();
        if (!m->body) m->overflow = 1;
        return;
    }
    px_mirror_send(r);
}

/* Picks a server (walking the service tree) and forwards. */
static void px_forward(struct relais_req *r)
{
    struct snap_service *s = r->service, *leaf = NULL;
    struct svc_choice ch;
    int idx;

    if (r->local) {
        px_finish(r);
        return;
    }
    if (r->router && r->router->internal) {
        /* a router to ping@internal, api@internal, prometheus@internal */
        px_internal(r, r->router->internal);
        return;
    }
    switch (px_body_gate(r, 0)) {
    case -1:
        return;
    case 0: {
        struct px_conn *c = r->conn;
        struct timeval tv = {PX_BODY_GATE_MS / 1000, (PX_BODY_GATE_MS % 1000) * 1000};
        if (!c->gate_timer) c->gate_timer = evtimer_new(c->w->base, px_gate_timeout, c);
        if (!c->gate_timer) break;
        r->gate_wait = 1;
        evtimer_add(c->gate_timer, &tv);
        return;
    }
    default:
        break;
    }
    if (r->conn->gate_timer) evtimer_del(r->conn->gate_timer);
    r->gate_wait = 0;
    memset(&ch, 0, sizeof(ch));
    idx = svc_pick(r, s, &leaf, &ch);
    if (idx < 0) {
        px_api_respond(r, 503, NULL, 0, px_error_body(503), strlen(px_error_body(503)));
        px_finish(r);
        return;
    }
    r->service = s = leaf;
    if (ch.ncookies) {
        r->set_cookies = arena_alloc(r->arena, ch.ncookies * sizeof(*r->set_cookies));
        if (r->set_cookies) {
            memcpy(r->set_cookies, ch.cookies, ch.ncookies * sizeof(*r->set_cookies));
            r->nset_cookies = ch.ncookies;
        }
    }
    if (ch.nmirrors) px_mirror_start(r, &ch);
    r->server_idx = idx;
    {
        struct snap_server *sv = &s->servers.v[idx];
        int max = sv->transport ? sv->transport->max_conns : 0;
        if (!px_server_take(sv, max)) {
            px_enqueue(r, sv);
            return;
        }
        r->server = sv;
    }
    r->up_start_ms = wk_now_ms();
    px_connect(r);
}

/* The queue of requests waiting for a server at its maxConnsPerHost:
 * oldest first, each for its own server (a full server does not hold up
 * the others); a wait ends with a place (the request goes on), or at its
 * deadline (504).  Polled every PX_QUEUE_POLL_MS (a place freed on
 * another worker) and run at once when a request of this worker ends. */
static void px_queue_run(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct relais_req *r, *next;
    uint64_t now = wk_now_ms();

    (void)fd;
    (void)what;
    for (r = w->waitq; r; r = next) {
        struct px_conn *c = r->conn;
        struct snap_server *sv = r->queued;
        int max = sv->transport ? sv->transport->max_conns : 0;
        next = r->wq_next;
        if (px_server_take(sv, max)) {
            px_unqueue(r);
            r->server = sv;
            r->up_start_ms = wk_now_ms();
            px_enter(c);
            px_connect(r);
            px_leave(c);
            next = w->waitq; /* the list may have changed: start over */
            continue;
        }
        if (now >= r->queue_deadline_ms) {
            px_unqueue(r);
            log_warn("http", "%s: no place on %s (maxConnsPerHost %d) in time: 504",
                     c->peer_ip, sv->url, max);
            px_enter(c);
            px_fail(r, 504);
            px_leave(c);
            next = w->waitq;
            continue;
        }
    }
    if (w->waitq) {
        struct timeval tv = {0, PX_QUEUE_POLL_MS * 1000};
        evtimer_add(w->waitq_ev, &tv);
    }
}

/* Queues r for server sv (see px_queue_run). */
static void px_enqueue(struct relais_req *r, struct snap_server *sv)
{
    struct worker *w = r->w;
    const struct tr_transport *tr = sv->transport;
    int64_t wait = tr && tr->dial_timeout_ms > 0 ? tr->dial_timeout_ms : 30000;
    struct timeval tv = {0, PX_QUEUE_POLL_MS * 1000};

    if (r->router && r->router->dial_ms > 0) wait = r->router->dial_ms;
    else if (r->service && r->service->dial_ms > 0) wait = r->service->dial_ms;
    if (!w->waitq_ev) w->waitq_ev = evtimer_new(w->base, px_queue_run, w);
    if (!w->waitq_ev) {
        px_api_respond(r, 503, NULL, 0, px_error_body(503), strlen(px_error_body(503)));
        px_finish(r);
        return;
    }
    r->queued = sv;
    r->queue_deadline_ms = wk_now_ms() + (uint64_t)wait;
    r->wq_next = NULL;
    r->wq_prev = w->waitq_tail;
    if (w->waitq_tail) w->waitq_tail->wq_next = r;
    else w->waitq = r;
    w->waitq_tail = r;
    log_debug("http", "%s: waiting for a place on %s", r->conn ? r->conn->peer_ip : "-", sv->url);
    if (!evtimer_pending(w->waitq_ev, NULL)) evtimer_add(w->waitq_ev, &tv);
}

/* Moves request body bytes from the client to the server, decoding and
 * re-encoding chunked framing, under back-pressure. */
/* 1 when the plugin's operations table has on_request_body (ABI 1.5). */
static int px_has_rbody_op(const relais_middleware_ops *o)
{
    return o->size >= offsetof(relais_middleware_ops, on_request_body) +
                          sizeof(o->on_request_body) &&
           o->on_request_body != NULL;
}

int px_api_req_body_filter(relais_req *r)
{
    /* from on_request only (mw_pos is the running middleware), for a
       request with a body not forwarded yet */
    if (r->mw_cur >= 0 || r->mw_pos >= r->nchain || r->up_state != UP_NONE ||
        !(r->req_chunked || r->req_left > 0) || !px_has_rbody_op(r->chain[r->mw_pos]->ops))
        return -1;
    if (!r->mw_rfilter) {
        r->mw_rfilter = arena_alloc(r->arena, r->nchain);
        if (!r->mw_rfilter) return -1;
        memset(r->mw_rfilter, 0, r->nchain);
    }
    r->mw_rfilter[r->mw_pos] = 1;
    r->req_filtering = 1;
    /* the filtered body's length is not known */
    msg_hdrs_del(&r->req_hdrs, "Content-Length", 14);
    return 0;
}

/* The next request filter inwards from position p (towards the server),
 * or -1 for the server itself. */
static int px_rfilter_next(const struct relais_req *r, int p)
{
    for (size_t i = (size_t)(p + 1); i < r->nchain; i++)
        if (r->mw_rfilter[i]) return (int)i;
    return -1;
}

/* Writes request payload bytes to the server in its framing. */
static void px_up_write_body(struct relais_req *r, const char *data, size_t len)
{
    px_add_framed(st_output(r->up->bev), data, len, r->up_chunked);
}

/* Passes request body bytes to the filter at position p (-1: the
 * server); last ends the body there and inwards (the server's framing
 * ends in px_up_body_end). */
static void px_rfilter_run(struct relais_req *r, int p, const char *data, size_t len, int last)
{
    struct snap_middleware *m;
    int save, rc;

    if (r->rfilter_failed) return;
    if (p < 0) {
        px_up_write_body(r, data, len);
        return;
    }
    m = r->chain[p];
    save = r->rfilter_cur;
    r->rfilter_cur = p;
    rc = m->ops->on_request_body(m->inst, r, &r->mw_ctx[p], data, len, last);
    r->rfilter_cur = save;
    if (rc == RELAIS_ERROR) {
        log_error("middleware", "%s failed on a request body", m->name);
        r->rfilter_failed = 1;
        return;
    }
    if (last) px_rfilter_run(r, px_rfilter_next(r, p), NULL, 0, 1);
}

int px_api_req_body_write(relais_req *r, const char *data, size_t len)
{
    if (r->rfilter_cur < 0 || !r->up || r->rfilter_failed) return -1;
    if (len) px_rfilter_run(r, px_rfilter_next(r, r->rfilter_cur), data, len, 0);
    return r->rfilter_failed ? -1 : 0;
}

/* Moves n request payload bytes (framing removed) from in towards the
 * server: kept for mirrors, through the request filters when there are
 * some, else framed for the server (zero-copy). */
static void px_req_move(struct relais_req *r, struct evbuffer *in, size_t n)
{
    if (!n) return;
    if (r->mirror) px_mirror_keep_buf(r, in, n);
    r->req_body_bytes += n;
    if (!r->req_filtering) px_move_framed(in, st_output(r->up->bev), n, r->up_chunked);
    else px_feed(r, in, n, px_rfilter_next(r, -1), px_rfilter_run);
}

/* The request body ended: the filters flush, the server's framing ends
 * (an HTTP/2 server gets the client's trailers and END_STREAM). */
static void px_up_body_end(struct relais_req *r)
{
    if (r->req_filtering) px_rfilter_run(r, px_rfilter_next(r, -1), NULL, 0, 1);
    if (r->up_h2) {
        if ((r->trailers_init & 1) && h2u_set_trailers(r->up, &r->req_trailers) < 0)
            log_warn("http", "request trailers dropped: out of memory");
        st_shutdown_write(r->up->bev);
    } else if (r->up_chunked) {
        evbuffer_add(st_output(r->up->bev), "0\r\n\r\n", 5);
    }
}

/* Moves request body bytes from the client to the server. */
static void px_pump_request(struct relais_req *r)
{
    struct px_conn *c = r->conn;
    struct evbuffer *in, *out;

    if (!r->up || r->up_state < UP_HEAD) return;
    if (r->req_body_done) {
        px_arm_response_timeout(r);
        return;
    }
    in = st_input(c->bev);
    out = st_output(r->up->bev);
    if (r->req_h2_raw) {
        /* an HTTP/2 body of unknown length: DATA until END_STREAM */
        px_req_move(r, in, evbuffer_get_length(in));
        if (c->eof) r->req_body_done = 1;
    } else if (!r->req_chunked) {
        size_t avail = evbuffer_get_length(in);
        size_t n = (int64_t)avail < r->req_left ? avail : (size_t)r->req_left;
        px_req_move(r, in, n);
        r->req_left -= (int64_t)n;
        if (r->req_left == 0) r->req_body_done = 1;
    } else {
        while (evbuffer_get_length(in) > 0 && !r->req_body_done && !r->rfilter_failed) {
            struct evbuffer_iovec v;
            size_t doff = 0, dlen = 0;
            ssize_t used;

            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
            used = h1_chunk_parse(&r->req_chunk, v.iov_base, v.iov_len, &doff, &dlen);
            if (used < 0) {
                /* broken framing: the server got a partial body; cut */
                log_debug("http", "%s: bad chunked request body", c->peer_ip);
                px_refuse_body(r, 400);
                return;
            }
            if (dlen) {
                evbuffer_drain(in, doff);
                px_req_move(r, in, dlen);
                evbuffer_drain(in, (size_t)used - doff - dlen);
            } else {
                evbuffer_drain(in, (size_t)used);
            }
            if (h1_chunk_done(&r->req_chunk)) r->req_body_done = 1;
            else if (used == 0) break;
        }
    }
    if (r->req_body_done && !r->rfilter_failed) px_up_body_end(r);
    if (r->rfilter_failed) {
        px_refuse_body(r, 400);
        return;
    }
    if (r->req_body_done) {
        px_timer(c, 0);
        px_arm_response_timeout(r);
        if (r->mirror) px_mirror_send(r);
    }
    if (r->router && r->router->max_body > 0 ? (int64_t)r->req_body_bytes > r->router->max_body
                                             : c->epc->max_body > 0 &&
                                                   (int64_t)r->req_body_bytes > c->epc->max_body) {
        px_refuse_body(r, 413);
        return;
    }
    if (!r->req_body_done && evbuffer_get_length(out) > RELAIS_BUFFER_HIGH) {
        st_disable(c->bev, ST_READ);
        r->client_paused = 1;
    }
}

/* ------------------------------------------------------------ to the client */

/* Writes the response head (status, headers, framing) to the client. */
static int px_write_client_head(struct relais_req *r, int has_body,
                                int64_t content_length)
{
    struct px_conn *c = r->conn;
    struct relais_hdrs *h = &r->resp_hdrs;
    size_t cap = 160, n = 0;
    char *buf;
    int keep = !r->client_close && !c->w->stopping && !wk_draining(c->w, c->ep);

    if (c->h2s) {
        /* HTTP/2: a HEADERS frame; the body (if any) follows as DATA */
        int local_len = r->local && !r->filtering;
        int body = !r->is_head && r->status >= 200 && r->status != 204 && r->status != 304 &&
                   (local_len ? content_length > 0 : 1) &&
                   !(r->resp_head_ended && !r->filtering); /* Trailers-Only stays one frame */
        r->resp_started = 1;
        return h2_respond(c->h2s, r->status, h,
                          local_len && r->status != 204 && r->status != 304 ? content_length : -1,
                          body);
    }

    for (uint32_t i = 0; i < h->n; i++) cap += h->v[i].nlen + h->v[i].vlen + 4;
    buf = arena_alloc(r->arena, cap);
    if (!buf) return -1;
    n = (size_t)snprintf(buf, cap, "HTTP/1.1 %d %s\r\n", r->status, px_reason(r->status));
    for (uint32_t i = 0; i < h->n; i++) {
        if (msg_name_eq(h->v[i].name, h->v[i].nlen, "content-length", 14) &&
            (r->local || r->filtering))
            continue;
        memcpy(buf + n, h->v[i].name, h->v[i].nlen);
        n += h->v[i].nlen;
        memcpy(buf + n, ": ", 2);
        n += 2;
        memcpy(buf + n, h->v[i].value, h->v[i].vlen);
        n += h->v[i].vlen;
        memcpy(buf + n, "\r\n", 2);
        n += 2;
    }
    if (r->local && !r->filtering && r->status != 304 && r->status != 204 && r->status >= 200)
        n += (size_t)snprintf(buf + n, cap - n, "Content-Length: %lld\r\n",
                              (long long)content_length);
    if (has_body && r->client_chunked) {
        memcpy(buf + n, "Transfer-Encoding: chunked\r\n", 28);
        n += 28;
    }
    if (!keep) {
        memcpy(buf + n, "Connection: close\r\n", 19);
        n += 19;
        r->client_close = 1;
    }
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    r->resp_started = 1;
    r->head_alone = evbuffer_get_length(st_output(c->bev)) == 0 ? n : 0;
    return evbuffer_add(st_output(c->bev), buf, n);
}

/* Ends the exchange: the response was fully written to the client's
 * buffer (or the exchange was answered locally).  Decides what happens to
 * both connections and starts the next pipelined request. */
static void px_finish(struct relais_req *r)
{
    struct px_conn *c = r->conn;

    if (c->wtimer) evtimer_del(c->wtimer); /* the response is written */

    if (r->local && !r->resp_started) {
        /* a local answer: middlewares see it, then it is written */
        r->resp_has_body = !r->is_head && r->status != 204 && r->status != 304 &&
                           r->status >= 200;
        px_run_responses(r);
        if (!r->req_body_done) r->client_close = 1;
        if (r->filtering) {
            /* a filter transforms it: no Content-Length, framed here */
            r->client_chunked = r->version == 11;
            if (!r->client_chunked) r->client_close = 1;
        }
        if (px_write_client_head(r, r->filtering, (int64_t)r->local_body_len) < 0) {
            px_conn_close(c);
            return;
        }
        if (r->filtering) {
            px_filter_run(r, px_filter_next(r, (int)r->nchain), r->local_body,
                          r->local_body_len, 0);
            px_body_end(r);
            if (r->filter_failed) {
                px_conn_close(c);
                return;
            }
        } else if (r->local_body_len && !r->is_head) {
            evbuffer_add(st_output(c->bev), r->local_body, r->local_body_len);
        }
    }
    if (r->up) {
        if (r->up_reusable && r->req_body_done) {
            r->up->requests++;
            up_pool_put(r->up);
        } else {
            up_conn_free(r->up);
        }
        r->up = NULL;
    }
    if (c->h2s) {
        /* HTTP/2: the response ends with its stream; the connection is
           h2.c's.  Body bytes still coming are dropped. */
        if ((r->trailers_init & 2) && r->resp_trailers.n && r->resp_started &&
            r->resp_has_body && h2_set_trailers(c->h2s, &r->resp_trailers) < 0)
            log_warn("http", "response trailers dropped: out of memory");
        px_req_free(r);
        px_timer(c, 0);
        c->state = PX_H2_DONE;
        st_shutdown_write(c->bev);
        st_enable(c->bev, ST_READ);
        return;
    }
    if (r->client_close || !r->req_body_done) {
        int pending = !r->req_body_done; /* the client may still send */
        px_req_free(r);
        if (pending) px_conn_close_linger(c);
        else px_conn_close_after_flush(c);
        return;
    }
    px_req_free(r);
    c->state = PX_HEAD;
    if (c->eof && evbuffer_get_length(st_input(c->bev)) == 0) {
        px_conn_close_after_flush(c);
        return;
    }
    if (r->client_paused && !c->eof) st_enable(c->bev, ST_READ);
    px_timer(c, c->epc->idle_timeout_ms);
    /* a pipelined request may be waiting; else the connection is idle and
       holds no arena block (the worker's cache has them) */
    if (evbuffer_get_length(st_input(c->bev)) > 0) {
        px_process(c);
    } else {
        arena_release(c->arena);
        st_idle(c->bev);
    }
}

/* Moves response body bytes from the server to the client. */
static void px_pump_response(struct relais_req *r)
{
    struct px_conn *c = r->conn;
    struct evbuffer *in = st_input(r->up->bev);
    struct evbuffer *out = st_output(c->bev);
    int done = 0;

    if (r->resp_close_delim) {
        px_body_move(r, in, evbuffer_get_length(in));
    } else if (!r->resp_chunked) {
        size_t avail = evbuffer_get_length(in);
        size_t n = (int64_t)avail < r->resp_left ? avail : (size_t)r->resp_left;
        px_body_move(r, in, n);
        r->resp_left -= (int64_t)n;
        if (r->resp_left == 0) {
            done = 1;
            if (r->filtering) px_body_end(r);
        }
        if (evbuffer_get_length(in) > 0 && done) r->up_reusable = 0;
    } else {
        while (evbuffer_get_length(in) > 0 && !done) {
            struct evbuffer_iovec v;
            size_t doff = 0, dlen = 0;
            ssize_t used;

            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
            used = h1_chunk_parse(&r->resp_chunk, v.iov_base, v.iov_len, &doff, &dlen);
            if (used < 0) {
                log_warn("http", "%s: bad chunked response body: 502", r->server->url);
                px_report(r, RELAIS_OUTCOME_FAILED);
                if (r->head_alone && !r->filtering && r->body_out == 0 &&
                    evbuffer_get_length(out) == r->head_alone) {
                    /* nothing reached the client yet: take the head back
                       and answer 502 instead of a cut */
                    evbuffer_drain(out, r->head_alone);
                    r->resp_started = 0;
                    r->client_close = 1;
                    px_fail(r, 502);
                    return;
                }
                px_conn_close(c);
                return;
            }
            if (dlen) {
                evbuffer_drain(in, doff);
                px_body_move(r, in, dlen);
                evbuffer_drain(in, (size_t)used - doff - dlen);
            } else {
                evbuffer_drain(in, (size_t)used);
            }
            if (h1_chunk_done(&r->resp_chunk)) done = 1;
            else if (used == 0) break;
        }
        if (done && evbuffer_get_length(in) > 0) r->up_reusable = 0;
        if (done) px_body_end(r);
    }
    if (r->filter_failed) {
        px_conn_close(c);
        return;
    }
    if (done) {
        r->up_state = UP_DONE;
        px_finish(r);
        return;
    }
    if (evbuffer_get_length(out) > RELAIS_BUFFER_HIGH) {
        st_disable(r->up->bev, ST_READ);
        r->up_paused = 1;
    }
}

/* Starts the tunnel after a 101 answer. */
static void px_tunnel(struct relais_req *r)
{
    struct px_conn *c = r->conn;

    c->state = PX_TUNNEL;
    r->req_body_done = 1;
    st_set_timeouts(r->up->bev, NULL, NULL);
    /* anything the client already sent belongs to the new protocol */
    if (evbuffer_get_length(st_input(c->bev)))
        evbuffer_add_buffer(st_output(r->up->bev),
                            st_input(c->bev));
    if (evbuffer_get_length(st_input(r->up->bev)))
        evbuffer_add_buffer(st_output(c->bev),
                            st_input(r->up->bev));
    st_enable(c->bev, ST_READ);
    st_enable(r->up->bev, ST_READ);
}

/* Parses the server's response head.  Returns 1 when the body phase
 * began, 0 when more bytes are needed, -1 when the exchange ended. */
/* Adds the sticky cookies the service tree chose to the server's
 * response (before the middlewares see it, as Traefik does). */
static void px_add_cookies(struct relais_req *r)
{
    for (unsigned i = 0; i < r->nset_cookies; i++)
        msg_hdrs_add(&r->resp_hdrs, "Set-Cookie", 10, r->set_cookies[i],
                     strlen(r->set_cookies[i]), 0);
}

static int px_parse_response(struct relais_req *r)
{
    struct px_conn *c = r->conn;
    struct evbuffer *in = st_input(r->up->bev);
    struct h1_field fields[256];
    struct h1_limits lim = {PX_MAX_RESP_HEAD, 256, 1};
    struct h1_head head;
    struct px_conn_tokens ctok; /* what Connection lists */
    const unsigned char *data;
    size_t len, n, i;
    char *copy;
    int rc, has_body;

    for (;;) {
        len = evbuffer_get_length(in);
        if (!len) return 0;
        n = len < PX_MAX_RESP_HEAD ? len : PX_MAX_RESP_HEAD;
        data = evbuffer_pullup(in, (ev_ssize_t)n);
        rc = h1_parse_response((const char *)data, n, &head, fields, &lim);
        if (rc == 0 && len < PX_MAX_RESP_HEAD) return 0;
        if (rc <= 0) {
            log_warn("http", "invalid response head from %s", r->server->url);
            px_report(r, RELAIS_OUTCOME_FAILED);
            px_fail(r, 502);
            return -1;
        }
        if (head.status >= 200 || head.status == 101) break;
        /* interim responses: 100 and 103 are relayed, others dropped */
        if ((head.status == 100 || head.status == 103) && r->version == 11)
            evbuffer_remove_buffer(in, st_output(c->bev), (size_t)rc);
        else
            evbuffer_drain(in, (size_t)rc);
    }
    st_set_timeouts(r->up->bev, NULL, NULL);
    px_report(r, RELAIS_OUTCOME_OK);
    copy = arena_alloc(r->arena, (size_t)rc);
    if (!copy || msg_hdrs_init(&r->resp_hdrs, r->arena, (uint32_t)head.nfields + 4, 1024) < 0) {
        px_fail(r, 500);
        return -1;
    }
    memcpy(copy, data, (size_t)rc);
    evbuffer_drain(in, (size_t)rc);
    r->status = head.status;
    r->origin_status = head.status;
    r->has_resp = 1;
    px_conn_tokens(copy, &head, &ctok);
    for (i = 0; i < head.nfields; i++) {
        const char *nm = copy + fields[i].name.off;
        size_t nl = fields[i].name.len;
        if (px_hop_by_hop(nm, nl) || px_conn_has(&ctok, copy, &head, nm, nl)) continue;
        msg_hdrs_add(&r->resp_hdrs, nm, nl, copy + fields[i].value.off,
                     fields[i].value.len, 0);
    }
    r->up_reusable = head.version >= 11 && !(head.flags & H1_F_CONN_CLOSE);
    if (head.status == 101) {
        if (!r->want_upgrade) {
            px_fail(r, 502);
            return -1;
        }
        px_add_cookies(r);
        px_run_responses(r);
        {
            char buf[512];
            int hn;
            struct relais_hdrs *h = &r->resp_hdrs;
            struct evbuffer *out = st_output(c->bev);
            hn = snprintf(buf, sizeof(buf), "HTTP/1.1 101 Switching Protocols\r\n");
            evbuffer_add(out, buf, (size_t)hn);
            for (uint32_t k = 0; k < h->n; k++)
                evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)h->v[k].nlen, h->v[k].name,
                                    (int)h->v[k].vlen, h->v[k].value);
            evbuffer_add_printf(out, "Connection: Upgrade\r\nUpgrade: %.*s\r\n\r\n",
                                (int)r->upgrade_len, r->upgrade);
        }
        r->resp_started = 1;
        px_tunnel(r);
        return -1;
    }
    has_body = !(r->is_head || head.status == 204 || head.status == 304);
    if (!has_body) {
        r->resp_left = 0;
    } else if (head.flags & H1_F_CHUNKED) {
        r->resp_chunked = 1;
        h1_chunk_init(&r->resp_chunk, 4096, 16384);
        r->client_chunked = r->version == 11;
        if (!r->client_chunked) r->client_close = 1;
    } else if (head.content_length >= 0) {
        r->resp_left = head.content_length;
    } else {
        r->resp_close_delim = 1;
        r->up_reusable = 0;
        r->client_chunked = r->version == 11;
        if (!r->client_chunked) r->client_close = 1;
    }
    if (has_body && (r->resp_chunked || r->resp_close_delim))
        msg_hdrs_del(&r->resp_hdrs, "Content-Length", 14);
    r->resp_has_body = has_body;
    px_add_cookies(r);
    px_run_responses(r);
    if (r->filtering) {
        r->client_chunked = r->version == 11;
        if (!r->client_chunked) r->client_close = 1;
    }
    if (px_write_client_head(r, has_body, 0) < 0) {
        px_conn_close(c);
        return -1;
    }
    r->up_state = UP_BODY;
    return 1;
}

/* The response head of an HTTP/2 server (h2up.c), like px_parse_response
 * for HTTP/1.1: 1 when the body phase began, 0 when it has not arrived
 * (100 Continue heads are relayed to HTTP/1.1 clients that asked), -1
 * when the exchange ended.  The body ends with the server's END_STREAM
 * (ST_EOF); a Content-Length it sent is kept for the client (nghttp2
 * checks the DATA against it). */
static int px_h2_response(struct relais_req *r)
{
    struct px_conn *c = r->conn;
    const struct h2_field *f;
    size_t n;
    unsigned interim = 0;
    int status = 0, has_body, has_len = 0, ended = 0;

    if (!h2u_response(r->up, &status, &f, &n, &interim, &ended)) {
        for (; r->up_interim < interim; r->up_interim++)
            if (r->version == 11 && r->expect_continue && !r->resp_started)
                evbuffer_add(st_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        return 0;
    }
    st_set_timeouts(r->up->bev, NULL, NULL);
    px_report(r, RELAIS_OUTCOME_OK);
    if (msg_hdrs_init(&r->resp_hdrs, r->arena, (uint32_t)n + 4, 1024) < 0) {
        px_fail(r, 500);
        return -1;
    }
    r->status = status;
    r->origin_status = status;
    r->has_resp = 1;
    r->resp_head_ended = ended;
    for (size_t i = 0; i < n; i++) {
        const char *nm, *vl;
        if (px_hop_by_hop(f[i].name, f[i].nlen)) continue;
        nm = px_canonical(r, f[i].name, f[i].nlen);
        vl = arena_strndup(r->arena, f[i].value, f[i].vlen);
        if (!nm || !vl || msg_hdrs_add(&r->resp_hdrs, nm, f[i].nlen, vl, f[i].vlen, 0) < 0) {
            px_fail(r, 502);
            return -1;
        }
        if (f[i].nlen == 14 && !memcmp(f[i].name, "content-length", 14)) has_len = 1;
    }
    r->up_reusable = 0; /* the stream ends with the exchange */
    has_body = !(r->is_head || status == 204 || status == 304);
    if (!has_body) {
        r->resp_left = 0;
    } else {
        r->resp_close_delim = 1;
        if (!has_len) {
            r->client_chunked = r->version == 11;
            if (!r->client_chunked) r->client_close = 1;
        }
    }
    r->resp_has_body = has_body;
    px_add_cookies(r);
    px_run_responses(r);
    if (r->filtering) {
        r->client_chunked = r->version == 11;
        if (!r->client_chunked) r->client_close = 1;
    }
    if (px_write_client_head(r, has_body, 0) < 0) {
        px_conn_close(c);
        return -1;
    }
    r->up_state = UP_BODY;
    return 1;
}

/* Copies an HTTP/2 server's response trailers into the exchange (at its
 * END_STREAM), names in Go's canonical form as for the head. */
static void px_take_trailers(struct relais_req *r)
{
    const struct h2_field *f;
    size_t n;
    struct relais_hdrs *t;

    if (!r->up || !r->up_h2) return;
    f = h2u_trailers(r->up, &n);
    if (!n || !(t = px_trailers(r, 2))) return;
    for (size_t i = 0; i < n; i++) {
        const char *nm = px_canonical(r, f[i].name, f[i].nlen);
        const char *vl = arena_strndup(r->arena, f[i].value, f[i].vlen);
        if (!nm || !vl || msg_hdrs_add(t, nm, f[i].nlen, vl, f[i].vlen, 0) < 0) {
            log_warn("http", "%s: response trailers past %d fields dropped", r->server->url,
                     PX_MAX_TRAILERS);
            return;
        }
    }
}

/* ------------------------------------------------------------ callbacks */

/* Processes what the client sent, according to the state. */
static void px_process(struct px_conn *c)
{
    if (c->state == PX_HEAD && c->nreq == 0 && !c->parent) {
        /* HTTP/2 with prior knowledge (h2c): the preface, not a head */
        struct evbuffer *in = st_input(c->bev);
        size_t len = evbuffer_get_length(in), k = sizeof(PX_H2_PREFACE) - 1;
        const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)(len < k ? len : k));
        if (p && !memcmp(p, PX_H2_PREFACE, len < k ? len : k)) {
            if (len >= k) px_h2_start(c);
            else if (!c->head_armed) px_head_deadline(c);
            return;
        }
    }
    while (!c->dead && c->state == PX_HEAD) {
        int rc;
        /* while stopping, a request on a kept connection is still
           answered, with Connection: close (px_write_client_head) */
        rc = px_parse_head(c);
        if (rc == 0 && c->eof) {
            /* a partial head and no more bytes will come */
            if (evbuffer_get_length(st_input(c->bev)))
                px_send_simple(c, 400, NULL, 1);
            else
                px_conn_close_after_flush(c);
            return;
        }
        if (rc <= 0) return;
        px_route(c->r);
        /* px_route may have finished the exchange and looped back here
         * through px_finish (pipelining); stop when busy. */
        return;
    }
    if (c->dead) return;
    if (c->state == PX_BUSY && c->r && c->r->gate_wait) {
        c->r->gate_wait = 0;
        px_forward(c->r);
    } else if (c->state == PX_BUSY && c->r) {
        px_pump_request(c->r);
    }
}

static void px_client_read(struct stream *bev, void *arg)
{
    struct px_conn *c = arg;

    px_enter(c);
    if (c->hs_ref) {
        const unsigned char *proto = NULL;
        unsigned plen = 0;
        px_handshake_done(c);
        SSL_get0_alpn_selected(st_ssl(c->bev), &proto, &plen);
        if (plen == 2 && !memcmp(proto, "h2", 2)) {
            px_h2_start(c);
            px_leave(c);
            return;
        }
    }
    if (c->state == PX_H2_DONE) {
        /* a body the exchange did not want: dropped */
        evbuffer_drain(st_input(bev), evbuffer_get_length(st_input(bev)));
    } else if (c->state == PX_TUNNEL && c->r && c->r->up) {
        struct evbuffer *out = st_output(c->r->up->bev);
        evbuffer_add_buffer(out, st_input(bev));
        if (evbuffer_get_length(out) > RELAIS_BUFFER_HIGH) {
            st_disable(bev, ST_READ);
            c->r->client_paused = 1;
        }
    } else if (c->state == PX_CLOSING && c->linger) {
        /* a lingering close: what the client still sends is dropped */
        evbuffer_drain(st_input(bev), evbuffer_get_length(st_input(bev)));
    } else if (c->state != PX_CLOSING) {
        px_process(c);
    }
    px_leave(c);
}

static void px_client_write(struct stream *bev, void *arg)
{
    struct px_conn *c = arg;
    struct relais_req *r = c->r;

    px_enter(c);
    if (c->state == PX_CLOSING) {
        if (evbuffer_get_length(st_output(bev)) == 0) px_conn_flushed(c);
    } else if (r && r->up && r->up_paused &&
               evbuffer_get_length(st_output(bev)) <= RELAIS_BUFFER_HIGH / 2) {
        r->up_paused = 0;
        st_enable(r->up->bev, ST_READ);
        if (c->state == PX_TUNNEL) {
            evbuffer_add_buffer(st_output(bev), st_input(r->up->bev));
        } else if (r->up_state == UP_BODY) {
            px_pump_response(r);
        }
    }
    px_leave(c);
}

static void px_client_event(struct stream *bev, short what, void *arg)
{
    struct px_conn *c = arg;

    (void)bev;
    px_enter(c);
    if (c->parent && (what & ST_EOF) && !(what & ST_ERROR)) {
        /* an HTTP/2 stream's END_STREAM: the request body is complete */
        c->eof = 1;
        if (c->state == PX_BUSY && c->r) px_pump_request(c->r);
    } else if (c->linger && (what & ST_EOF) && !(what & ST_ERROR)) {
        /* the lingering client ended: the close resets nothing now, once
           the response is out */
        c->eof = 1;
        c->linger = 0;
        st_disable(bev, ST_READ);
        if (c->linger_shut || evbuffer_get_length(st_output(bev)) == 0) px_conn_close(c);
    } else if (c->state == PX_TUNNEL && (what & ST_EOF) && !(what & ST_ERROR) &&
        c->r && c->r->up) {
        /* the client finished sending: pass its FIN on once its bytes are
         * written, and keep relaying the server's answer */
        struct relais_req *r = c->r;
        struct evbuffer *out = st_output(r->up->bev);
        evbuffer_add_buffer(out, st_input(c->bev));
        c->eof = 1;
        r->tunnel_shut = 1;
        if (evbuffer_get_length(out) == 0) {
            shutdown(st_fd(r->up->bev), SHUT_WR);
        } else {
            st_setwatermark(r->up->bev, ST_WRITE, 0, 0);
            st_enable(r->up->bev, ST_WRITE);
        }
    } else if ((what & ST_EOF) && !(what & ST_ERROR) &&
        ((c->state == PX_BUSY && c->r && c->r->req_body_done) ||
         (c->state == PX_HEAD && evbuffer_get_length(st_input(c->bev)) > 0))) {
        /* half-close after whole requests: answer them, then close
         * (HAProxy's behaviour; a request is not aborted by the FIN) */
        c->eof = 1;
        if (c->state == PX_HEAD) px_process(c);
    } else if (what & (ST_EOF | ST_ERROR | ST_TIMEOUT)) {
        if ((what & ST_ERROR) && c->tls && *st_tls_error(bev))
            log_debug("tls", "%s: TLS %s: %s", c->peer_ip,
                      c->hs_ref ? "handshake failed" : "error", st_tls_error(bev));
        px_conn_close(c);
    }
    px_leave(c);
}

static void px_up_read(struct stream *bev, void *arg)
{
    struct relais_req *r = arg;
    struct px_conn *c = r->conn;

    px_enter(c);
    if (c->state == PX_TUNNEL) {
        struct evbuffer *out = st_output(c->bev);
        evbuffer_add_buffer(out, st_input(bev));
        if (evbuffer_get_length(out) > RELAIS_BUFFER_HIGH) {
            st_disable(bev, ST_READ);
            r->up_paused = 1;
        }
    } else if (r->up_state == UP_HEAD) {
        if ((r->up_h2 ? px_h2_response(r) : px_parse_response(r)) == 1) px_pump_response(r);
    } else if (r->up_state == UP_BODY) {
        px_pump_response(r);
    }
    px_leave(c);
}

static void px_up_write(struct stream *bev, void *arg)
{
    struct relais_req *r = arg;
    struct px_conn *c = r->conn;

    px_enter(c);
    if (r->tunnel_shut && evbuffer_get_length(st_output(bev)) == 0) {
        r->tunnel_shut = 0;
        shutdown(st_fd(bev), SHUT_WR);
    } else if (r->client_paused &&
        evbuffer_get_length(st_output(bev)) <= RELAIS_BUFFER_HIGH / 2) {
        r->client_paused = 0;
        st_enable(c->bev, ST_READ);
        if (c->state == PX_TUNNEL)
            evbuffer_add_buffer(st_output(bev), st_input(c->bev));
        else
            px_pump_request(r);
    }
    px_leave(c);
}

static void px_up_event(struct stream *bev, short what, void *arg)
{
    struct relais_req *r = arg;
    struct px_conn *c = r->conn;

    int err = errno;
    char why[300];

    (void)bev;
    px_enter(c);
    if ((what & ST_CONNECTED) && r->up->tls && r->server->transport &&
        tr_check_peer(r->server->transport, st_ssl(r->up->bev), why, sizeof(why)) < 0) {
        log_warn("http", "%s: TLS handshake refused: %s", r->server->url, why);
        px_report(r, RELAIS_OUTCOME_FAILED);
        px_fail(r, 502);
    } else if (what & ST_CONNECTED) {
        st_set_timeouts(r->up->bev, NULL, NULL);
        /* h2c://, or "h2" chosen by ALPN: the connection becomes an
           HTTP/2 one of the pool and r gets its first stream */
        if (up_h2_adopt(&r->up) < 0) {
            px_fail(r, 502);
        } else {
            px_up_ready(r);
        }
    } else if (c->state == PX_TUNNEL) {
        px_conn_close_after_flush(c);
        if (r->up) {
            up_conn_free(r->up);
            r->up = NULL;
        }
    } else if (r->up_state == UP_CONNECTING) {
        px_log_connect_failure(r, what, err);
        px_report(r, (what & ST_TIMEOUT) ? RELAIS_OUTCOME_TIMEOUT : RELAIS_OUTCOME_FAILED);
        px_fail(r, (what & ST_TIMEOUT) ? 504 : 502);
    } else if (r->up_state == UP_HEAD) {
        if (what & ST_TIMEOUT) {
            px_report(r, RELAIS_OUTCOME_TIMEOUT);
            px_fail(r, 504);
        } else if (r->up->reused && !r->retried && r->req_body_bytes == 0 &&
                   r->req_body_done && px_idempotent(r) &&
                   evbuffer_get_length(st_input(r->up->bev)) == 0) {
            /* a pooled connection the server had closed: retry once on a
             * fresh one (nothing of the body was consumed) */
            up_conn_free(r->up);
            r->up = NULL;
            r->retried = 1;
            r->resp_timer_armed = 0;
            px_connect(r);
        } else {
            /* TLS 1.3: a server refusing the client certificate says so
             * after the handshake, at the first read */
            const char *tls = st_tls_error(r->up->bev);
            if (tls && *tls)
                log_warn("http", "%s: TLS failed: %s", r->server->url, tls);
            else if (!r->up->reused)
                log_warn("http", "%s: connection closed before the response head%s%s",
                         r->server->url, (what & ST_ERROR) ? ": " : "",
                         (what & ST_ERROR) ? strerror(err) : "");
            px_report(r, RELAIS_OUTCOME_FAILED);
            px_fail(r, 502);
        }
    } else if (r->up_state == UP_BODY) {
        if ((what & ST_EOF) && r->resp_close_delim) {
            px_pump_response(r);
            if (!c->dead && c->r == r) {
                px_take_trailers(r);
                px_body_end(r);
                r->up_reusable = 0;
                r->up_state = UP_DONE;
                px_finish(r);
            }
        } else {
            /* the server broke the body: the client must see a cut */
            px_conn_close(c);
        }
    }
    px_leave(c);
}

/* ------------------------------------------------------------ stop */

/* Graceful stop of w's connections on slot ep (ep < 0: all). */
static void px_drain_conns(struct worker *w, int ep)
{
    struct px_conn *c, *n;

    for (c = w->conns; c; c = n) {
        n = c->next;
        if (ep >= 0 && c->ep != ep) continue;
        if (c->state == PX_H2) {
            h2_conn_shutdown(c->h2); /* GOAWAY; it closes once its streams end */
            continue;
        }
        if (c->state != PX_HEAD || evbuffer_get_length(st_input(c->bev)) != 0) continue;
        /* an idle connection closes after a short linger, not at once: a
           client that sends now gets its answer (with Connection: close)
           instead of a reset; a connection that has carried no request
           yet was just accepted and its request is on the way: it keeps
           its head timeout */
        if (c->nreq > 0) px_timer(c, PX_STOP_LINGER_MS);
    }
}

void px_shutdown(struct worker *w)
{
    px_drain_conns(w, -1);
    if (w->nconns == 0) event_base_loopexit(w->base, NULL);
}

void px_drain(struct worker *w, int ep)
{
    px_drain_conns(w, ep);
}

void px_close_ep(struct worker *w, int ep)
{
    struct px_conn *c = w->conns;

    while (c) {
        if (c->ep != ep || c->dead) {
            c = c->next;
            continue;
        }
        px_enter(c);
        px_conn_close(c);
        px_leave(c);
        c = w->conns; /* closing may free more than c: from the start */
    }
}

void px_close_all(struct worker *w)
{
    while (w->conns) {
        struct px_conn *c = w->conns;
        px_enter(c);
        px_conn_close(c);
        if (c->depth == 1 && c->dead) {
            /* px_leave frees it */
        }
        px_leave(c);
    }
}
