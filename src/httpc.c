/*
 * httpc — see httpc.h.
 *
 * A call goes CONNECTING → HEAD (request written, waiting for the status
 * line and fields) → BODY (Content-Length, chunked or until close) → done.
 * Callbacks may cancel the call: the call is then only marked, and freed
 * when the callback returns (a depth count, as in proxy.c).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "arena.h"
#include "http1.h"
#include "httpc.h"
#include "message.h"
#include "netaddr.h"
#include "stream.h"
#include "tls.h"

#define HC_MAX_HEAD (64 * 1024)   /* cap on a response head */
#define HC_MAX_FIELDS 200         /* cap on response header fields */
#define HC_MAX_REQ (1024 * 1024)  /* cap on the request head */

/** Phases of a call. */
enum hc_state { HC_CONNECTING = 0, HC_HEAD, HC_BODY, HC_DONE };

/** One request in flight (the SDK's relais_http_call). */
struct relais_http_call {
    struct stream *st;            /* the connection */
    struct event *timer;          /* whole-exchange timeout, or NULL */
    relais_http_callbacks cb;     /* the plugin's callbacks (copied) */
    void *arg;                    /* their argument */
    int state;                    /* enum hc_state */
    int head_req;                 /* HEAD request: no response body */
    int chunked;                  /* chunked response body */
    int close_delim;              /* body ends with the connection */
    int64_t left;                 /* Content-Length bytes still to come */
    struct h1_chunk chunk;        /* chunked decoder */
    int depth;                    /* callbacks on the stack */
    int dead;                     /* cancelled or done: free at depth 0 */
    char *fail;                   /* a setup failure to report from the
                                     timer (allocated), or NULL */
};

/* Frees the call for real. */
static void hc_free(relais_http_call *c)
{
    if (c->timer) event_free(c->timer);
    st_free(c->st);
    free(c->fail);
    free(c);
}

/* Leaves a callback section; frees a dead call at the outermost one. */
static void hc_leave(relais_http_call *c)
{
    if (--c->depth == 0 && c->dead) hc_free(c);
}

/* Ends the call with on_done (once). */
static void hc_finish(relais_http_call *c, int error, const char *msg)
{
    if (c->dead) return;
    c->state = HC_DONE;
    if (c->cb.on_done) c->cb.on_done(c->arg, error, msg);
    c->dead = 1;
}

/* Delivers body bytes. */
static void hc_data(relais_http_call *c, const char *p, size_t n)
{
    if (n && c->cb.on_data && !c->dead) c->cb.on_data(c->arg, p, n);
}

/* Consumes body bytes from the input; finishes when complete. */
static void hc_body(relais_http_call *c)
{
    struct evbuffer *in = st_input(c->st);

    while (!c->dead && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        if (c->close_delim) {
            hc_data(c, v.iov_base, v.iov_len);
            evbuffer_drain(in, v.iov_len);
        } else if (!c->chunked) {
            size_t n = (int64_t)v.iov_len < c->left ? v.iov_len : (size_t)c->left;
            hc_data(c, v.iov_base, n);
            evbuffer_drain(in, n);
            c->left -= (int64_t)n;
            if (c->left == 0) {
                hc_finish(c, 0, NULL);
                return;
            }
        } else {
            size_t doff = 0, dlen = 0;
            ssize_t used = h1_chunk_parse(&c->chunk, v.iov_base, v.iov_len, &doff, &dlen);
            if (used < 0) {
                hc_finish(c, -1, "bad chunked framing in the response");
                return;
            }
            if (dlen) hc_data(c, (const char *)v.iov_base + doff, dlen);
            if (c->dead) return;
            evbuffer_drain(in, (size_t)used);
            if (h1_chunk_done(&c->chunk)) {
                hc_finish(c, 0, NULL);
                return;
            }
            if (used == 0) break;
        }
    }
}

/* Parses the response head; 1 when the body phase began, 0 to wait. */
static int hc_head(relais_http_call *c)
{
    struct evbuffer *in = st_input(c->st);
    struct h1_field fields[HC_MAX_FIELDS];
    struct h1_limits lim = {HC_MAX_HEAD, HC_MAX_FIELDS, 1};
    struct h1_head head;
    struct relais_hdrs hdrs;
    struct arena *a;
    size_t len, n;
    const char *data;
    int rc;

    for (;;) {
        len = evbuffer_get_length(in);
        if (!len) return 0;
        n = len < HC_MAX_HEAD ? len : HC_MAX_HEAD;
        data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        rc = h1_parse_response(data, n, &head, fields, &lim);
        if (rc == 0 && len < HC_MAX_HEAD) return 0;
        if (rc <= 0) {
            hc_finish(c, -1, "invalid response head");
            return 0;
        }
        if (head.status >= 200 || head.status == 101) break;
        evbuffer_drain(in, (size_t)rc); /* interim response */
    }
    if (head.status == 101) {
        hc_finish(c, -1, "unexpected 101 response");
        return 0;
    }
    a = arena_new(HC_MAX_HEAD * 2);
    if (!a || msg_hdrs_init(&hdrs, a, (uint32_t)head.nfields + 1, HC_MAX_FIELDS) < 0) {
        arena_free(a);
        hc_finish(c, -1, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < head.nfields; i++)
        msg_hdrs_add(&hdrs, data + fields[i].name.off, fields[i].name.len,
                     data + fields[i].value.off, fields[i].value.len, 1);
    if (c->head_req || head.status == 204 || head.status == 304) {
        c->left = 0;
    } else if (head.flags & H1_F_CHUNKED) {
        c->chunked = 1;
        h1_chunk_init(&c->chunk, 4096, 16384);
    } else if (head.content_length >= 0) {
        c->left = head.content_length;
    } else {
        c->close_delim = 1;
    }
    evbuffer_drain(in, (size_t)rc);
    c->state = HC_BODY;
    if (c->cb.on_response) c->cb.on_response(c->arg, head.status, &hdrs);
    arena_free(a);
    if (c->dead) return 0;
    if (!c->chunked && !c->close_delim && c->left == 0) {
        hc_finish(c, 0, NULL);
        return 0;
    }
    return 1;
}

/* Connection readable. */
static void hc_on_read(struct stream *s, void *arg)
{
    relais_http_call *c = arg;

    (void)s;
    c->depth++;
    if (c->state == HC_HEAD && hc_head(c) == 1) hc_body(c);
    else if (c->state == HC_BODY) hc_body(c);
    hc_leave(c);
}

/* Connection events: connected, EOF, errors, timeouts. */
static void hc_on_event(struct stream *s, short what, void *arg)
{
    relais_http_call *c = arg;
    char msg[160];

    (void)s;
    c->depth++;
    if (what & ST_CONNECTED) {
        c->state = HC_HEAD;
        st_enable(c->st, ST_READ);
    } else if ((what & ST_EOF) && c->state == HC_BODY && c->close_delim) {
        hc_body(c);
        hc_finish(c, 0, NULL);
    } else if (what & ST_TIMEOUT) {
        hc_finish(c, -1, "timeout");
    } else {
        int e = errno;
        if (what & ST_EOF)
            snprintf(msg, sizeof(msg), "connection closed before the response ended");
        else if (*st_tls_error(c->st))
            snprintf(msg, sizeof(msg), "TLS: %s", st_tls_error(c->st));
        else
            snprintf(msg, sizeof(msg), "%s: %s",
                     c->state == HC_CONNECTING ? "connect" : "connection", strerror(e));
        hc_finish(c, -1, msg);
    }
    hc_leave(c);
}

/* Whole-exchange timeout. */
static void hc_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    relais_http_call *c = arg;

    (void)fd;
    (void)what;
    c->depth++;
    hc_finish(c, -1, c->fail ? c->fail : "timeout");
    hc_leave(c);
}

/* Sets up client TLS on the connection.  0, or -1 with err set. */
static int hc_tls(relais_http_call *c, const relais_http_req *req, const struct na_url *u,
                  char *err, size_t errlen)
{
    struct tls_client_opts o = {req->tls_ca, req->tls_cert, req->tls_key, req->tls_insecure};
    SSL_CTX *ctx = tls_client_ctx(&o, err, errlen);
    SSL *ssl;

    if (!ctx) return -1;
    ssl = tls_client_ssl(ctx, u->host, NULL, 0, err, errlen);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (!ssl) return -1;
    if (st_tls_connect(c->st, ssl) < 0) {
        SSL_free(ssl);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Opens the socket and starts connecting.  0 / -1. */
static int hc_open(relais_http_call *c, struct event_base *base,
                   const relais_http_req *req, const struct na_url *u)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd;

    memset(&ss, 0, sizeof(ss));
    if (req->unix_socket) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        if (strlen(req->unix_socket) >= sizeof(sun->sun_path)) return -1;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, req->unix_socket);
        sl = sizeof(*sun);
    } else {
        struct addrinfo hints, *res = NULL;
        char port[16];
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        snprintf(port, sizeof(port), "%d", u->port);
        /* synchronous resolution: names are expected to be literals or
         * local (providers and auth servers are configured addresses) */
        if (getaddrinfo(u->host, port, &hints, &res) != 0 || !res) return -1;
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        sl = res->ai_addrlen;
        freeaddrinfo(res);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    c->st = st_new(base, fd);
    if (!c->st) {
        close(fd);
        return -1;
    }
    st_setcb(c->st, hc_on_read, NULL, hc_on_event, c);
    return st_connect(c->st, (struct sockaddr *)&ss, sl);
}

relais_http_call *hc_request(struct event_base *base, const relais_http_req *reqin,
                             const relais_http_callbacks *cb, void *arg)
{
    return hc_request_ssl(base, reqin, NULL, cb, arg);
}

relais_http_call *hc_request_ssl(struct event_base *base, const relais_http_req *reqin, SSL *ssl,
                                 const relais_http_callbacks *cb, void *arg)
{
    relais_http_call *c;
    relais_http_req rq, *req = &rq;
    struct na_url u;
    const char *path, *q;
    char msg[300];
    struct evbuffer *out;
    int tls;

    if (!base || !reqin || !cb || reqin->size < sizeof(uint32_t) || cb->size < sizeof(uint32_t)) {
        SSL_free(ssl);
        return NULL;
    }
    /* fields the plugin's (older) struct lacks read as zero */
    memset(&rq, 0, sizeof(rq));
    memcpy(&rq, reqin, reqin->size < sizeof(rq) ? reqin->size : sizeof(rq));
    if (!req->method || !req->url || na_parse_url(req->url, &u, msg, sizeof(msg)) < 0) {
        SSL_free(ssl);
        return NULL;
    }
    tls = !strcmp(u.scheme, "https");
    for (const char *m = req->method; *m; m++)
        if (*m <= ' ' || *m >= 0x7f) tls = -1;
    if (tls < 0 || (!tls && strcmp(u.scheme, "http") != 0) || (ssl && !tls)) {
        SSL_free(ssl);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        SSL_free(ssl);
        return NULL;
    }
    memcpy(&c->cb, cb, cb->size < sizeof(c->cb) ? cb->size : sizeof(c->cb));
    c->arg = arg;
    c->head_req = !strcmp(req->method, "HEAD");
    if (hc_open(c, base, req, &u) < 0) {
        SSL_free(ssl);
        hc_free(c);
        return NULL;
    }
    if (ssl && st_tls_connect(c->st, ssl) < 0) {
        SSL_free(ssl);
        hc_free(c);
        return NULL;
    }
    if (tls && !ssl && hc_tls(c, req, &u, msg, sizeof(msg)) < 0) {
        /* reported through on_done, from the loop (never from here) */
        c->fail = strdup(msg);
        c->timer = evtimer_new(base, hc_on_timeout, c);
        if (!c->fail || !c->timer) {
            hc_free(c);
            return NULL;
        }
        st_disable(c->st, ST_WRITE);
        {
            struct timeval now = {0, 0};
            evtimer_add(c->timer, &now);
        }
        return c;
    }
    out = st_output(c->st);
    /* the URL's path and query as written (na_url keeps only the path) */
    path = strstr(req->url, "://");
    path = path ? strpbrk(path + 3, "/?") : NULL;
    q = path && *path == '?' ? path : NULL;
    evbuffer_add_printf(out, "%s %s%s HTTP/1.1\r\n", req->method, q ? "/" : "",
                        path ? path : "/");
    {
        /* a Host among the request's headers replaces the URL's */
        int own_host = 0;
        for (size_t i = 0; i < req->nheaders; i++)
            if (req->headers[i].name && !strcasecmp(req->headers[i].name, "Host")) own_host = 1;
        if (!own_host)
            evbuffer_add_printf(out, "Host: %s\r\n",
                                u.port == (tls ? 443 : 80) && !strchr(u.host, ':') ? u.host
                                                                                   : u.hostport);
    }
    evbuffer_add(out, "Connection: close\r\n", 19);
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *n = req->headers[i].name, *v = req->headers[i].value;
        if (!n || !v || strpbrk(n, "\r\n:") || strpbrk(v, "\r\n")) continue;
        evbuffer_add_printf(out, "%s: %s\r\n", n, v);
    }
    if (req->body || strcmp(req->method, "GET"))
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", req->body ? req->body_len : 0);
    evbuffer_add(out, "\r\n", 2);
    if (req->body && req->body_len) evbuffer_add(out, req->body, req->body_len);
    if (evbuffer_get_length(out) > HC_MAX_REQ + req->body_len) {
        hc_free(c);
        return NULL;
    }
    if (req->timeout_ms) {
        struct timeval tv = {(time_t)(req->timeout_ms / 1000),
                             (suseconds_t)((req->timeout_ms % 1000) * 1000)};
        c->timer = evtimer_new(base, hc_on_timeout, c);
        if (!c->timer) {
            hc_free(c);
            return NULL;
        }
        evtimer_add(c->timer, &tv);
    }
    return c;
}

void hc_cancel(relais_http_call *c)
{
    if (!c || c->dead) return;
    c->dead = 1;
    if (c->depth == 0) hc_free(c);
}

int hc_body_append(char **buf, size_t *used, size_t *cap, const char *data, size_t len,
                   size_t max)
{
    if (len > max || *used > max - len) return -1;
    if (*used + len + 1 > *cap) {
        size_t nc = *cap ? *cap : 4096;
        char *nb;
        while (nc < *used + len + 1) nc *= 2;
        nb = realloc(*buf, nc);
        if (!nb) return -1;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *used, data, len);
    *used += len;
    (*buf)[*used] = '\0';
    return 0;
}
