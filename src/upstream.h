/*
 * upstream — connections to servers and the per-worker keep-alive pools.
 * Module prefix: up_.
 *
 * Pools are keyed by the server's pool key
 * ("https://127.0.0.1:8443|t@file#3": URL and transport), not by snapshot
 * objects, so a configuration change keeps the idle connections of
 * unchanged servers, and two transports to one server never share a
 * connection.  An https:// server is connected with TLS on its
 * transport's context (SNI, verification, client certificate); the
 * transport also sets how many connections a key keeps idle and for how
 * long.  Thread-safety: a pool and its connections belong to one worker.
 */
#ifndef RELAIS_UPSTREAM_H
#define RELAIS_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct stream;
struct event_base;
struct snap_server;
struct up_pool;
struct h2u_stream;

/** A connection to a server. */
struct up_conn {
    struct stream *bev;  /* the socket */
    struct up_pool *pool;     /* owning pool */
    char *key;                /* pool key (owned copy) */
    uint64_t hash;            /* hash of key */
    int reused;               /* 1 when taken from the pool */
    int idle;                 /* 1 while parked in the pool */
    uint64_t idle_since;      /* ms when parked */
    unsigned requests;        /* requests carried so far */
    int max_idle;             /* idle connections its key may keep */
    int64_t idle_ms;          /* idle lifetime (0 = unlimited) */
    int tls;                  /* 1 for a TLS connection (https://) */
    struct h2u_stream *h2s;   /* this is one stream of an HTTP/2
                                 connection (bev is virtual; h2up.h), or
                                 NULL for a socket connection */
    struct up_conn *next;     /* pool list links */
    struct up_conn *prev;
};

/** New pool for a worker: at most max_idle idle connections per key,
 *  closed after idle_ms (defaults for servers without a transport). */
struct up_pool *up_pool_new(struct event_base *base, int max_idle,
                            int64_t idle_ms);

/** Closes every idle connection and frees; NULL is a no-op. */
void up_pool_free(struct up_pool *p);

/** A connection to sv ready for a request, or NULL: a new stream of an
 *  HTTP/2 connection with room (unless h1_only), else an idle HTTP/1.1
 *  connection removed from the pool.  reused is 1. */
struct up_conn *up_pool_take(struct up_pool *p, const struct snap_server *sv, int h1_only);

/** Starts a new non-blocking connection to sv (callbacks unset; the
 *  caller sets them and waits for ST_CONNECTED, which for an https://
 *  server follows the TLS handshake).  NULL on immediate failure, with
 *  the reason in err (may be NULL). */
struct up_conn *up_connect(struct up_pool *p, const struct snap_server *sv, int h1_only,
                           char *err, size_t errlen);

/** 1 when sv may be spoken to in HTTP/2: an h2c:// URL, or https://
 *  through a transport without disableHTTP2 (ALPN decides). */
int up_h2_capable(const struct snap_server *sv);

/**
 * After ST_CONNECTED of a new connection: when it speaks HTTP/2 (h2c://,
 * or "h2" selected by ALPN), it becomes an HTTP/2 connection of the pool
 * and *c is replaced by its first stream (return 1); 0 when it is an
 * HTTP/1.1 connection (*c unchanged); -1 when out of memory (*c freed and
 * NULL).
 */
int up_h2_adopt(struct up_conn **c);

/** The pool's loop. */
struct event_base *up_pool_base(const struct up_pool *p);

/** Parks c in its pool for reuse (or frees it when the pool is full). */
void up_pool_put(struct up_conn *c);

/** Closes and frees; NULL is a no-op. */
void up_conn_free(struct up_conn *c);

/** Idle connections in the pool (tests, metrics). */
size_t up_pool_idle(const struct up_pool *p);

#endif /* RELAIS_UPSTREAM_H */
