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
    struct up_conn *next;     /* pool list links */
    struct up_conn *prev;
};

/** New pool for a worker: at most max_idle idle connections per key,
 *  closed after idle_ms (defaults for servers without a transport). */
struct up_pool *up_pool_new(struct event_base *base, int max_idle,
                            int64_t idle_ms);

/** Closes every idle connection and frees; NULL is a no-op. */
void up_pool_free(struct up_pool *p);

/** An idle connection to sv, removed from the pool, or NULL. */
struct up_conn *up_pool_take(struct up_pool *p, const struct snap_server *sv);

/** Starts a new non-blocking connection to sv (callbacks unset; the
 *  caller sets them and waits for ST_CONNECTED, which for an https://
 *  server follows the TLS handshake).  NULL on immediate failure, with
 *  the reason in err (may be NULL). */
struct up_conn *up_connect(struct up_pool *p, const struct snap_server *sv, char *err,
                           size_t errlen);

/** Parks c in its pool for reuse (or frees it when the pool is full). */
void up_pool_put(struct up_conn *c);

/** Closes and frees; NULL is a no-op. */
void up_conn_free(struct up_conn *c);

/** Idle connections in the pool (tests, metrics). */
size_t up_pool_idle(const struct up_pool *p);

#endif /* RELAIS_UPSTREAM_H */
