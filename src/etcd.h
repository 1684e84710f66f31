/*
 * etcd — an etcd v3 client for the core: cluster mode (leader election,
 * publishing the configuration, ACME storage and its lock) and relaisctl.
 * Module prefix: etc_.
 *
 * Protocol: etcd's JSON gateway (POST /v3/kv/range, /v3/kv/put,
 * /v3/kv/deleterange, /v3/kv/txn, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/lease/revoke, /v3/watch, /v3/auth/authenticate), through the host's
 * asynchronous HTTP client (httpc.c) on the caller's event loop; keys and
 * values are bytes (base64 on the wire, handled here).
 *
 * Endpoints: every call goes to the current endpoint; a connection
 * failure, a timeout or a 5xx moves the client to the next endpoint and
 * the call is retried there (each endpoint once per call) before it fails.
 * Exception: a txn is retried only when its failure proves it was not
 * applied (connection refused, "no leader"); after a timeout or a
 * connection lost mid-request its outcome is unknown, so it ends with
 * ETC_ERR_TIMEOUT / ETC_ERR_UNAVAILABLE (message "... outcome unknown")
 * and the caller reads before deciding (a compare that held once would
 * fail on a retry and report the wrong branch).  A put or delete retried
 * that way may apply twice (same end state, a later revision).
 * Requests carry etcd's "require leader" metadata: a member cut from its
 * quorum answers "no leader" at once instead of hanging.
 * Reads are linearizable (etcd's default).  With username/password a token
 * is fetched first (one fetch shared by the calls and watches waiting for
 * it) and sent in the Authorization header; an "invalid auth token"
 * answer fetches a new one and retries once.  A server with auth disabled
 * is used without a token.
 *
 * Watches are streams: the client keeps each one open, moves it to the next
 * endpoint when it breaks (backoff 100 ms .. 5 s) and resumes after the
 * last revision it delivered, so no event is lost or repeated; a revision
 * compacted meanwhile ends the watch with ETC_ERR_COMPACTED (the caller
 * reads again and watches from there).  A stream whose creation is not
 * confirmed within timeout_ms, or whose member fails a liveness read
 * (every 2 s, on the watched key), is moved as if it broke: a paused or
 * partitioned member keeps a stream open but silent.
 *
 * Limits: responses and watch messages are capped (ETC_MAX_BODY), values
 * too (etcd's own 1.5 MiB request cap applies to puts).
 *
 * Thread: one client belongs to one event loop (the control thread in
 * relais, the main loop in relaisctl); callbacks run on it, never from
 * inside the call that started them.
 */
#ifndef RELAIS_ETCD_H
#define RELAIS_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct etc_client;
struct etc_call;
struct etc_watch;

#define ETC_MAX_BODY (64u << 20) /* cap on a response or watch message */

/** Error codes given to callbacks (0 = success). */
enum etc_err {
    ETC_OK = 0,
    ETC_ERR_UNAVAILABLE = -1, /* no endpoint answered (message says why) */
    ETC_ERR_TIMEOUT = -2,     /* the call's deadline passed */
    ETC_ERR_REJECTED = -3,    /* etcd answered an error (message: its text) */
    ETC_ERR_COMPACTED = -4,   /* a watch's start revision is compacted */
    ETC_ERR_AUTH = -5,        /* authentication failed */
    ETC_ERR_PROTOCOL = -6     /* an answer that does not parse */
};

/** Client options (strings are copied by etc_new). */
struct etc_opts {
    const char *const *endpoints; /* "http://127.0.0.1:2379",
                                     "https://...", or "host:port"
                                     (http; https when tls_ca, tls_cert
                                     or tls_insecure is set; port 2379
                                     when absent) */
    size_t nendpoints;            /* how many (1..32) */
    const char *username;         /* or NULL */
    const char *password;         /* or NULL */
    const char *tls_ca;           /* CA file or PEM, or NULL */
    const char *tls_cert;         /* client certificate file or PEM, or NULL */
    const char *tls_key;          /* its key, or NULL */
    int tls_insecure;             /* do not verify the server */
    int64_t timeout_ms;           /* per endpoint attempt (default 5000
                                     when 0): a call tries each endpoint
                                     once, so it lasts at most nendpoints
                                     times this (plus a token fetch); also
                                     a watch's wait for its creation */
};

/** One key/value as etcd returns it (valid during the callback only). */
struct etc_kv {
    const char *key;        /* bytes, NUL-terminated for convenience */
    size_t key_len;         /* length */
    const char *value;      /* bytes, NUL-terminated */
    size_t value_len;       /* length */
    int64_t create_revision; /* revision of its creation */
    int64_t mod_revision;   /* revision of its last change */
    int64_t version;        /* changes since creation */
    int64_t lease;          /* lease id, 0 for none */
};

/** A range result. */
struct etc_range {
    int64_t revision;       /* the store's revision of the answer */
    const struct etc_kv *kvs; /* the pairs, by key */
    size_t n;               /* how many */
    int more;               /* a limit cut the list */
};

/** Called with a range result (NULL on error).  err: enum etc_err;
 *  message: "" or why. */
typedef void (*etc_range_cb)(void *arg, int err, const char *message,
                             const struct etc_range *res);
/** Called when a put, delete, lease or txn call ends.  revision: the
 *  store's revision after it; value: the lease id (grant), the TTL left
 *  (keepalive: 0 = the lease is gone), deleted count (delete), 1 when the
 *  txn's compares held and its success branch ran, 0 otherwise (txn). */
typedef void (*etc_done_cb)(void *arg, int err, const char *message, int64_t revision,
                            int64_t value);

/** A compare of a txn (etcd's Compare). */
struct etc_cmp {
    const char *key;     /* the key (NUL-terminated) */
    enum { ETC_CMP_VALUE, ETC_CMP_VERSION, ETC_CMP_CREATE, ETC_CMP_MOD,
           ETC_CMP_LEASE } target;   /* what is compared */
    enum { ETC_EQ, ETC_NE, ETC_LT, ETC_GT } op; /* how */
    const char *value;   /* ETC_CMP_VALUE: the bytes */
    size_t value_len;    /* their length */
    int64_t number;      /* the other targets: the number (version 0 =
                            the key does not exist) */
};

/** An operation of a txn branch. */
struct etc_op {
    enum { ETC_OP_PUT, ETC_OP_DELETE, ETC_OP_DELETE_PREFIX } type; /* what */
    const char *key;     /* the key or prefix (NUL-terminated) */
    const char *value;   /* ETC_OP_PUT: the bytes */
    size_t value_len;    /* their length */
    int64_t lease;       /* ETC_OP_PUT: lease id, 0 for none */
};

/** A watch event (valid during the callback only). */
struct etc_event {
    enum { ETC_EV_PUT, ETC_EV_DELETE } type; /* what happened */
    struct etc_kv kv;    /* the pair (value empty for a delete) */
};

/** Called with the events of one revision batch, in order; revision is the
 *  highest revision delivered so far. */
typedef void (*etc_events_cb)(void *arg, const struct etc_event *ev, size_t n,
                              int64_t revision);
/** Called once when a watch ends for good: ETC_ERR_COMPACTED, or
 *  ETC_ERR_AUTH (credentials refused, permission denied).  Not called
 *  after etc_watch_cancel or etc_free. */
typedef void (*etc_watch_end_cb)(void *arg, int err, const char *message);

/** A client on base.  NULL with err set (bad endpoint, unreadable TLS
 *  file). */
struct etc_client *etc_new(struct event_base *base, const struct etc_opts *o, char *err,
                           size_t errlen);

/** Cancels every call and watch (no callback follows) and frees.  NULL is
 *  a no-op. */
void etc_free(struct etc_client *c);

/** The endpoint in use ("http://127.0.0.1:2379"). */
const char *etc_endpoint(const struct etc_client *c);

/* Calls: each returns a handle (cancel with etc_cancel: no callback
 * follows) or NULL when out of memory (no callback).  The handle is valid
 * until its callback returns (etc_cancel inside the callback is a no-op);
 * etc_free may be called from any callback. */

/** Reads key, or every key under it when prefix is set (limit 0 = all;
 *  keys_only skips values). */
struct etc_call *etc_get(struct etc_client *c, const char *key, int prefix, int64_t limit,
                         int keys_only, etc_range_cb cb, void *arg);
/** Writes key = value (lease 0 = none). */
struct etc_call *etc_put(struct etc_client *c, const char *key, const char *value,
                         size_t value_len, int64_t lease, etc_done_cb cb, void *arg);
/** Deletes key, or every key under it with prefix. */
struct etc_call *etc_delete(struct etc_client *c, const char *key, int prefix, etc_done_cb cb,
                            void *arg);
/** A transaction: if every compare holds, the success operations run, else
 *  the failure ones (all in one revision). */
struct etc_call *etc_txn(struct etc_client *c, const struct etc_cmp *cmp, size_t ncmp,
                         const struct etc_op *success, size_t nsuccess,
                         const struct etc_op *failure, size_t nfailure, etc_done_cb cb,
                         void *arg);
/** A new lease of ttl_s seconds: value = its id. */
struct etc_call *etc_lease_grant(struct etc_client *c, int64_t ttl_s, etc_done_cb cb,
                                 void *arg);
/** Renews lease id once: value = the TTL left (0: it expired). */
struct etc_call *etc_lease_keepalive(struct etc_client *c, int64_t id, etc_done_cb cb,
                                     void *arg);
/** Revokes lease id (its keys are deleted). */
struct etc_call *etc_lease_revoke(struct etc_client *c, int64_t id, etc_done_cb cb,
                                  void *arg);
/** Cancels a call (before or inside its callback); NULL is a no-op. */
void etc_cancel(struct etc_call *call);

/** Watches key (or the prefix) from start_revision (0 = from now). */
struct etc_watch *etc_watch(struct etc_client *c, const char *key, int prefix,
                            int64_t start_revision, etc_events_cb on_events,
                            etc_watch_end_cb on_end, void *arg);
/** Stops a watch (also from inside its own callbacks); NULL is a no-op. */
void etc_watch_cancel(struct etc_watch *w);

#endif /* RELAIS_ETCD_H */
