/*
 * upstream — see upstream.h.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include "stream.h"
#include <event2/event.h>
#include <openssl/ssl.h>

#include "h2up.h"
#include "log.h"
#include "relais.h"
#include "snapshot.h"
#include "transport.h"
#include "upstream.h"
#include "worker.h"

#define UP_BUCKETS 1024     /* hash buckets of a pool */
#define UP_MAX_KEYS 65536   /* distinct servers a pool remembers */

/** Idle connections of one server. */
struct up_bucket {
    char *key;               /* pool key */
    uint64_t hash;           /* its hash */
    struct up_conn *head;    /* most recently parked first */
    int count;               /* idle connections */
    struct up_bucket *next;  /* hash chain */
};

/** A worker's pool. */
struct up_pool {
    struct event_base *base;              /* worker loop */
    struct up_bucket *buckets[UP_BUCKETS]; /* hash of servers */
    size_t nkeys;                         /* buckets allocated */
    size_t idle;                          /* idle connections in all */
    int max_idle;                         /* per server */
    int64_t idle_ms;                      /* idle lifetime */
    struct event *sweep;                  /* periodic idle expiry */
    struct h2u_conn *h2;                  /* HTTP/2 connections (h2up.c
                                             links and unlinks them) */
};

/* The bucket for key/hash, created when create is set. */
static struct up_bucket *up_bucket(struct up_pool *p, const char *key,
                                   uint64_t hash, int create)
{
    struct up_bucket **slot = &p->buckets[hash % UP_BUCKETS], *b;

    for (b = *slot; b; b = b->next)
        if (b->hash == hash && !strcmp(b->key, key)) return b;
    if (!create || p->nkeys >= UP_MAX_KEYS) return NULL;
    b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->key = strdup(key);
    if (!b->key) {
        free(b);
        return NULL;
    }
    b->hash = hash;
    b->next = *slot;
    *slot = b;
    p->nkeys++;
    return b;
}

/* Unlinks an idle connection from its bucket. */
static void up_unlink(struct up_conn *c)
{
    struct up_bucket *b;

    if (!c->idle) return;
    b = up_bucket(c->pool, c->key, c->hash, 0);
    if (b) {
        if (c->prev) c->prev->next = c->next;
        else b->head = c->next;
        if (c->next) c->next->prev = c->prev;
        b->count--;
    }
    c->pool->idle--;
    c->idle = 0;
    c->next = c->prev = NULL;
}

void up_conn_free(struct up_conn *c)
{
    if (!c) return;
    if (c->h2s) h2u_close(c); /* an HTTP/2 stream: reset unless done */
    up_unlink(c);
    if (c->bev) st_free(c->bev);
    free(c->key);
    free(c);
}

/* An idle connection got data or EOF: it is dead for us. */
static void up_idle_read(struct stream *bev, void *arg)
{
    (void)bev;
    up_conn_free(arg);
}

/* An idle connection got an event (EOF, error). */
static void up_idle_event(struct stream *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    up_conn_free(arg);
}

/* Periodic sweep: closes connections idle longer than idle_ms. */
static void up_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct up_pool *p = arg;
    uint64_t now = wk_now_ms();

    (void)fd;
    (void)what;
    for (size_t i = 0; i < UP_BUCKETS; i++) {
        for (struct up_bucket *b = p->buckets[i]; b; b = b->next) {
            struct up_conn *c = b->head, *n;
            for (; c; c = n) {
                n = c->next;
                if (c->idle_ms > 0 && now - c->idle_since >= (uint64_t)c->idle_ms)
                    up_conn_free(c);
            }
        }
    }
}

struct up_pool *up_pool_new(struct event_base *base, int max_idle,
                            int64_t idle_ms)
{
    struct up_pool *p = calloc(1, sizeof(*p));
    struct timeval tv = {1, 0};

    if (!p) return NULL;
    p->base = base;
    p->max_idle = max_idle;
    p->idle_ms = idle_ms;
    p->sweep = event_new(base, -1, EV_PERSIST, up_sweep, p);
    if (!p->sweep) {
        free(p);
        return NULL;
    }
    event_add(p->sweep, &tv);
    return p;
}

void up_pool_free(struct up_pool *p)
{
    if (!p) return;
    for (size_t i = 0; i < UP_BUCKETS; i++) {
        struct up_bucket *b = p->buckets[i], *nb;
        p->buckets[i] = NULL;
        for (; b; b = nb) {
            struct up_conn *c, *n;
            nb = b->next;
            /* not through up_unlink: it would look the bucket up in a
               chain whose earlier buckets are already freed */
            for (c = b->head; c; c = n) {
                n = c->next;
                c->idle = 0;
                p->idle--;
                up_conn_free(c);
            }
            free(b->key);
            free(b);
        }
    }
    while (p->h2) h2u_conn_free(p->h2);
    event_free(p->sweep);
    free(p);
}

struct event_base *up_pool_base(const struct up_pool *p)
{
    return p->base;
}

int up_h2_capable(const struct snap_server *sv)
{
    if (!strcmp(sv->u.scheme, "h2c")) return 1;
    return !strcmp(sv->u.scheme, "https") && sv->transport && !sv->transport->disable_http2;
}

int up_h2_adopt(struct up_conn **cp)
{
    struct up_conn *c = *cp;
    struct h2u_conn *hc;
    int h2 = !strncmp(c->key, "h2c://", 6);

    if (!h2 && c->tls) {
        const unsigned char *proto = NULL;
        unsigned plen = 0;
        SSL_get0_alpn_selected(st_ssl(c->bev), &proto, &plen);
        h2 = plen == 2 && !memcmp(proto, "h2", 2);
    }
    if (!h2) return 0;
    hc = h2u_conn_new(&c->pool->h2, c, c->idle_ms);
    *cp = hc ? h2u_open(hc) : NULL;
    return *cp ? 1 : -1;
}

struct up_conn *up_pool_take(struct up_pool *p, const struct snap_server *sv, int h1_only)
{
    struct up_bucket *b;
    struct up_conn *c;

    if (!sv->pool_key) return NULL;
    if (!h1_only && p->h2 && up_h2_capable(sv)) {
        struct h2u_conn *hc = h2u_find(p->h2, sv->pool_key);
        if (hc && (c = h2u_open(hc)) != NULL) {
            c->reused = 1;
            return c;
        }
    }
    b = up_bucket(p, sv->pool_key, sv->pool_hash, 0);
    if (!b || !b->head) return NULL;
    c = b->head;
    up_unlink(c);
    c->reused = 1;
    st_setcb(c->bev, NULL, NULL, NULL, NULL);
    return c;
}

struct up_conn *up_connect(struct up_pool *p, const struct snap_server *sv, int h1_only,
                           char *err, size_t errlen)
{
    struct up_conn *c = calloc(1, sizeof(*c));
    const struct tr_transport *tr = sv->transport;
    evutil_socket_t fd = -1;
    SSL *ssl = NULL;
    char why[300] = "out of memory";
    int one = 1;

    if (!c) goto fail;
    c->pool = p;
    c->key = strdup(sv->pool_key ? sv->pool_key : "");
    c->hash = sv->pool_hash;
    c->max_idle = tr ? tr->max_idle : p->max_idle;
    c->idle_ms = tr ? tr->idle_conn_timeout_ms : p->idle_ms;
    c->tls = !strcmp(sv->u.scheme, "https");
    if (!c->key) goto fail;
    if (c->tls) {
        if (!tr) {
            snprintf(why, sizeof(why), "no serversTransport for an https server");
            goto fail;
        }
        ssl = tr_ssl(tr, sv->u.host, !h1_only && !tr->disable_http2, why, sizeof(why));
        if (!ssl) goto fail;
    }
    fd = socket(sv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, sizeof(why), "socket: %s", strerror(errno));
        goto fail;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->bev = st_new(p->base, fd);
    if (!c->bev) {
        close(fd);
        goto fail;
    }
    if (ssl) {
        if (st_tls_connect(c->bev, ssl) < 0) goto fail;
        ssl = NULL; /* the stream's now */
    }
    if (st_connect(c->bev, (const struct sockaddr *)&sv->addr, sv->addrlen) < 0) {
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        goto fail;
    }
    return c;
fail:
    if (err && errlen) snprintf(err, errlen, "%s", why);
    SSL_free(ssl);
    up_conn_free(c);
    return NULL;
}

void up_pool_put(struct up_conn *c)
{
    struct up_pool *p = c->pool;
    struct up_bucket *b = up_bucket(p, c->key, c->hash, 1);

    if (c->h2s || !b || b->count >= c->max_idle ||
        evbuffer_get_length(st_input(c->bev)) > 0) {
        up_conn_free(c);
        return;
    }
    st_set_timeouts(c->bev, NULL, NULL);
    st_setcb(c->bev, up_idle_read, NULL, up_idle_event, c);
    st_enable(c->bev, ST_READ);
    c->idle = 1;
    c->idle_since = wk_now_ms();
    c->prev = NULL;
    c->next = b->head;
    if (b->head) b->head->prev = c;
    b->head = c;
    b->count++;
    p->idle++;
}

size_t up_pool_idle(const struct up_pool *p)
{
    return p ? p->idle : 0;
}
