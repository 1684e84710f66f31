/*
 * etcd — see etcd.h.
 *
 * Pieces:
 * - helpers: base64 (keys and values cross the JSON gateway as base64),
 *   int64 fields (written as strings by the gateway), the end of a prefix
 *   range, the reading of an error answer;
 * - struct etc_call: one unary call (range, put, deleterange, txn, lease
 *   grant / keepalive / revoke, and the internal authenticate).  It starts
 *   from a zero timer (never inside the function that made it), tries the
 *   endpoints one after the other from the client's current one, and ends
 *   with exactly one callback unless cancelled;
 * - the token: one authenticate call at a time (c->auth); calls and
 *   watches needing a token wait (state CS_TOKEN / WS_TOKEN) and are woken
 *   when it ends;
 * - struct etc_watch: one watch stream (POST /v3/watch: one JSON object per
 *   message, cut out of the chunked body by brace depth), reconnected with
 *   backoff on the next endpoint from the revision after the last one it
 *   delivered; a liveness read on its member every ETC_PROBE_MS.
 *
 * Lifetime: the user may cancel a call or watch, or free the client, from
 * any callback.  Every entry from the event loop brackets its object with
 * enter/leave: the object's busy count and the client's depth.  A
 * cancelled object is only marked dead while busy and freed at its last
 * leave; a client freed from a callback is freed when the depth returns to
 * zero.  Code after a user callback checks the dead / dying marks.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "etcd.h"
#include "httpc.h"
#include "log.h"
#include "tls.h"

#define ETC_WHO "etcd"                 /* log origin */
#define ETC_MAX_ENDPOINTS 32           /* endpoints of a client */
#define ETC_DEFAULT_TIMEOUT_MS 5000    /* timeout_ms when 0 */
#define ETC_BACKOFF_MIN_MS 100         /* first watch reconnect delay */
#define ETC_BACKOFF_MAX_MS 5000        /* longest watch reconnect delay */
#define ETC_PROBE_MS 2000              /* liveness read period of a watch */
#define ETC_MSG 300                    /* room for a failure message */

/* gRPC status codes the gateway puts in "code" */
#define ETC_GRPC_DEADLINE 4            /* DeadlineExceeded */
#define ETC_GRPC_PERMISSION 7          /* PermissionDenied */
#define ETC_GRPC_UNAVAILABLE 14        /* Unavailable */
#define ETC_GRPC_UNAUTHENTICATED 16    /* Unauthenticated */

/* ====================================================================== */
/* types                                                                   */
/* ====================================================================== */

/** One endpoint. */
struct etc_ep {
    char *url;  /* "http://127.0.0.1:2379" (no trailing slash) */
    char *host; /* the host alone (SNI and verification for https) */
    int tls;    /* https */
};

/** A growing byte buffer capped at ETC_MAX_BODY. */
struct etc_buf {
    char *p;    /* bytes (NUL-terminated when len > 0), or NULL */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    int over;   /* something was dropped: over the cap or out of memory */
};

/** What a call does. */
enum etc_kind { K_RANGE, K_PUT, K_DELETE, K_TXN, K_GRANT, K_KEEPALIVE, K_REVOKE, K_AUTH };

/** Where a call stands. */
enum etc_cstate {
    CS_START = 0, /* created, its start timer armed */
    CS_TOKEN,     /* waiting for the authenticate call */
    CS_HTTP,      /* an attempt in flight */
    CS_DONE       /* ended (callback made or cancelled) */
};

/** One call. */
struct etc_call {
    struct etc_client *c;    /* the client */
    struct etc_call *prev;   /* the client's list of calls */
    struct etc_call *next;   /* idem */
    int kind;                /* enum etc_kind */
    int state;               /* enum etc_cstate */
    char *body;              /* the JSON request (owned) */
    etc_range_cb range_cb;   /* K_RANGE: the callback */
    etc_done_cb done_cb;     /* the other kinds: the callback (K_AUTH: none) */
    void *arg;               /* their argument */
    struct event *ev;        /* the start timer */
    relais_http_call *hc;    /* the attempt in flight, or NULL */
    size_t ep;               /* its endpoint */
    uint64_t gen;            /* the token generation it sent */
    uint32_t tried;          /* endpoints tried (bit i = endpoint i) */
    int renewed;             /* the token was renewed once for it */
    int wake;                /* an ended authenticate call must wake it */
    int status;              /* HTTP status of the attempt */
    struct etc_buf resp;     /* its body */
    int last_timeout;        /* the last endpoint failure was a timeout */
    char last[2 * ETC_MSG];  /* the last endpoint failure ("url: why") */
    int busy;                /* loop callbacks on the stack for it */
    int dead;                /* ended or cancelled: freed at busy 0 */
};

/** Where a watch stands. */
enum etc_wstate {
    WS_WAIT = 0, /* its timer brings the next connection (backoff) */
    WS_TOKEN,    /* waiting for the authenticate call */
    WS_OPENING,  /* stream requested, "created" not yet seen */
    WS_OPEN,     /* created: events flow; the timer brings the probe */
    WS_ENDED     /* ended for good or cancelled */
};

/** One watch. */
struct etc_watch {
    struct etc_client *c;     /* the client */
    struct etc_watch *prev;   /* the client's list of watches */
    struct etc_watch *next;   /* idem */
    char *key_b64;            /* the key, base64 */
    char *end_b64;            /* the range end (prefix), base64, or NULL */
    int64_t next_rev;         /* first revision not delivered yet; 0 =
                                 from now, until the stream is created */
    int64_t stream_start;     /* the start_revision the stream asked for
                                 (0 = now): older events are dropped */
    etc_events_cb on_events;  /* the user's callbacks */
    etc_watch_end_cb on_end;  /* idem */
    void *arg;                /* their argument */
    int state;                /* enum etc_wstate */
    struct event *timer;      /* backoff, creation deadline or probe period */
    int64_t backoff_ms;       /* the next reconnect delay */
    relais_http_call *hc;     /* the stream, or NULL */
    size_t ep;                /* its endpoint */
    uint64_t gen;             /* the token generation it sent */
    int status;               /* HTTP status of the stream */
    struct etc_buf buf;       /* stream bytes not yet cut into messages */
    size_t scan;              /* splitter: bytes of buf scanned */
    int sdepth;               /* splitter: brace depth */
    int in_str;               /* splitter: inside a string */
    int esc;                  /* splitter: after a backslash */
    relais_http_call *probe;  /* the liveness read in flight, or NULL */
    int probe_status;         /* its HTTP status */
    int renewed;              /* the token was renewed since the last
                                 created stream */
    int resumed;              /* broke at least once (log the resumption) */
    int wake;                 /* an ended authenticate call must wake it */
    int busy;                 /* loop callbacks on the stack for it */
    int dead;                 /* ended or cancelled: freed at busy 0 */
};

/** The client. */
struct etc_client {
    struct event_base *base;               /* the loop */
    struct etc_ep ep[ETC_MAX_ENDPOINTS];   /* the endpoints */
    size_t nep;                            /* how many */
    size_t cur;                            /* the one in use */
    char *user;                            /* username, or NULL */
    char *pass;                            /* its password ("" when none) */
    SSL_CTX *ssl_ctx;                      /* for https endpoints, or NULL */
    int64_t timeout_ms;                    /* per attempt */
    char *token;                           /* the token, "" = the server has
                                              auth disabled, NULL = none */
    uint64_t token_gen;                    /* bumped when token changes */
    struct etc_call *auth;                 /* authenticate in flight, or NULL */
    struct etc_call *calls;                /* every call */
    struct etc_watch *watches;             /* every watch */
    int depth;                             /* loop callbacks on the stack */
    int dying;                             /* etc_free called meanwhile */
};

static void etc_call_attempt(struct etc_call *call);
static void etc_auth_ensure(struct etc_client *c);
static void etc_watch_connect(struct etc_watch *w);

/* ====================================================================== */
/* helpers                                                                 */
/* ====================================================================== */

static const char etc_b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 (padded) of s[0..n) as a new string, or NULL. */
static char *etc_b64enc(const char *s, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;

    if (!out) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        size_t rest = n - i;
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (rest > 1) v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (rest > 2) v |= (uint32_t)(unsigned char)s[i + 2];
        *o++ = etc_b64chars[(v >> 18) & 63];
        *o++ = etc_b64chars[(v >> 12) & 63];
        *o++ = rest > 1 ? etc_b64chars[(v >> 6) & 63] : '=';
        *o++ = rest > 2 ? etc_b64chars[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* The value of base64 character ch, or -1. */
static int etc_b64val(unsigned char ch)
{
    const char *p = ch ? strchr(etc_b64chars, ch) : NULL;
    return p ? (int)(p - etc_b64chars) : -1;
}

/* Decodes base64 s[0..n) (padding optional) into a new NUL-terminated
 * buffer, its length in *len.  NULL when malformed or out of memory. */
static char *etc_b64dec(const char *s, size_t n, size_t *len)
{
    char *out;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    while (n > 0 && s[n - 1] == '=') n--;
    out = malloc(n / 4 * 3 + 4);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        int v = etc_b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits >= 6) { /* one character alone cannot encode a byte */
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* The end of the range of keys that start with key[0..n) into out (n + 1
 * bytes): key up to its last byte below 0xff, that byte incremented; "\0"
 * (no upper bound) when there is none.  Returns the length. */
static size_t etc_prefix_end(const char *key, size_t n, char *out)
{
    while (n > 0) {
        unsigned char b = (unsigned char)key[n - 1];
        if (b < 0xff) {
            memcpy(out, key, n);
            out[n - 1] = (char)(b + 1);
            return n;
        }
        n--;
    }
    out[0] = '\0';
    return 1;
}

/* Sets name in o to the base64 of s[0..n).  0 / -1. */
static int etc_jset_b64(json_t *o, const char *name, const char *s, size_t n)
{
    char *b = etc_b64enc(s, n);
    int rc = b ? json_object_set_new(o, name, json_string(b)) : -1;

    free(b);
    return rc;
}

/* Sets name in o to v, written as the gateway writes int64: a string. */
static int etc_jset_int(json_t *o, const char *name, int64_t v)
{
    char b[24];

    snprintf(b, sizeof(b), "%" PRId64, v);
    return json_object_set_new(o, name, json_string(b));
}

/* Sets "key" (and "range_end" with prefix) of o for key.  An empty key
 * with prefix means every key ("\0" .. "\0").  0 / -1. */
static int etc_jset_range(json_t *o, const char *key, int prefix)
{
    size_t n = strlen(key);
    char *end;
    size_t en;
    int rc;

    if (!prefix) return etc_jset_b64(o, "key", key, n);
    if (n == 0) {
        if (etc_jset_b64(o, "key", "", 1) < 0) return -1;
        return etc_jset_b64(o, "range_end", "", 1);
    }
    if (etc_jset_b64(o, "key", key, n) < 0 || !(end = malloc(n + 1))) return -1;
    en = etc_prefix_end(key, n, end);
    rc = etc_jset_b64(o, "range_end", end, en);
    free(end);
    return rc;
}

/* An int64 field of the gateway (a decimal string, or a JSON integer);
 * 0 when absent or malformed (proto3 omits zero values). */
static int64_t etc_jint(const json_t *v)
{
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long x;
        errno = 0;
        x = strtoll(s, &end, 10);
        if (end == s || *end || errno) return 0;
        return (int64_t)x;
    }
    return 0;
}

/* header.revision of an answer (0 when absent). */
static int64_t etc_jrev(const json_t *j)
{
    return etc_jint(json_object_get(json_object_get(j, "header"), "revision"));
}

/* Appends data to b under ETC_MAX_BODY (sets b->over past it). */
static void etc_buf_add(struct etc_buf *b, const char *data, size_t len)
{
    if (!b->over && hc_body_append(&b->p, &b->len, &b->cap, data, len, ETC_MAX_BODY) < 0)
        b->over = 1;
}

/* Empties b (keeps the allocation). */
static void etc_buf_reset(struct etc_buf *b)
{
    b->len = 0;
    b->over = 0;
}

/* Frees b's bytes. */
static void etc_buf_free(struct etc_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/** What a failed answer means. */
enum etc_verdict {
    V_ENDPOINT = 0, /* the member cannot serve: try the next endpoint */
    V_TOKEN,        /* the token is invalid: fetch a new one */
    V_AUTH,         /* credentials refused, permission denied */
    V_REJECTED      /* etcd refused the request itself */
};

/* Reads an error answer: the gateway's {"error":"..","message":"..",
 * "code":N}, or, in a stream, {"error":{"grpc_code":N,"message":".."}}
 * (j may be NULL).  Fills msg and returns the verdict; *not_applied is set
 * when the answer proves the request did nothing (member without leader,
 * overloaded).  has_user: the client holds credentials. */
static int etc_classify(const json_t *j, int status, int has_user, char *msg, size_t msglen,
                        int *not_applied)
{
    const json_t *e = json_object_get(j, "error");
    const char *m = NULL;
    int64_t code = etc_jint(json_object_get(j, "code"));

    *not_applied = 0;
    if (json_is_object(e)) {
        m = json_string_value(json_object_get(e, "message"));
        code = etc_jint(json_object_get(e, "grpc_code"));
        if (!status) status = (int)etc_jint(json_object_get(e, "http_code"));
    } else {
        m = json_string_value(json_object_get(j, "message"));
        if (!m) m = json_string_value(e);
    }
    if (m && *m) snprintf(msg, msglen, "%s", m);
    else snprintf(msg, msglen, "HTTP status %d", status);
    if (m && (strstr(m, "no leader") || strstr(m, "not capable") || strstr(m, "too many requests")))
        *not_applied = 1;
    if (code == ETC_GRPC_UNAUTHENTICATED || status == 401 || (m && strstr(m, "invalid auth token")))
        return has_user ? V_TOKEN : V_AUTH;
    if (m && strstr(m, "user name is empty")) return has_user ? V_TOKEN : V_AUTH;
    if (code == ETC_GRPC_PERMISSION || status == 403 ||
        (m && (strstr(m, "permission denied") || strstr(m, "authentication failed"))))
        return V_AUTH;
    if (status >= 500 || code == ETC_GRPC_UNAVAILABLE || code == ETC_GRPC_DEADLINE)
        return V_ENDPOINT;
    return V_REJECTED;
}

/* Notes that endpoint i failed (why): the client moves on from it when it
 * is the current one (logged once per move; with a single endpoint the
 * caller gets the error anyway: debug only). */
static void etc_ep_failed(struct etc_client *c, size_t i, const char *why)
{
    if (c->cur != i) return;
    c->cur = (i + 1) % c->nep;
    if (c->nep > 1)
        log_warn(ETC_WHO, "%s: %s; now using %s", c->ep[i].url, why, c->ep[c->cur].url);
    else
        log_debug(ETC_WHO, "%s: %s", c->ep[i].url, why);
}

/* Starts an HTTP POST of body to path on endpoint i (timeout_ms 0 = a
 * stream), with the token when one is held.  The call, or NULL with why
 * set (no callback then). */
static relais_http_call *etc_post(struct etc_client *c, size_t i, const char *path,
                                  const char *body, uint64_t timeout_ms,
                                  const relais_http_callbacks *cb, void *arg, char *why,
                                  size_t whylen)
{
    char url[512];
    relais_header hdr[3];
    relais_http_req rq;
    relais_http_call *hc;
    SSL *ssl = NULL;
    size_t nh = 0;

    snprintf(url, sizeof(url), "%s%s", c->ep[i].url, path);
    hdr[nh++] = (relais_header){"Content-Type", "application/json"};
    /* grpc-gateway forwards Grpc-Metadata-* as gRPC metadata: etcd's
     * WithRequireLeader ("hasleader"), so a member without leader fails
     * fast and cancels its watches */
    hdr[nh++] = (relais_header){"Grpc-Metadata-hasleader", "true"};
    if (c->token && *c->token && strcmp(path, "/v3/auth/authenticate") != 0)
        hdr[nh++] = (relais_header){"Authorization", c->token};
    memset(&rq, 0, sizeof(rq));
    rq.size = sizeof(rq);
    rq.method = "POST";
    rq.url = url;
    rq.headers = hdr;
    rq.nheaders = nh;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout_ms = timeout_ms;
    if (c->ep[i].tls) {
        ssl = tls_client_ssl(c->ssl_ctx, c->ep[i].host, NULL, 0, why, whylen);
        if (!ssl) return NULL;
    }
    hc = hc_request_ssl(c->base, &rq, ssl, cb, arg);
    if (!hc) snprintf(why, whylen, "cannot start a request (out of memory, or unresolvable)");
    return hc;
}

/* ====================================================================== */
/* object lifetimes                                                        */
/* ====================================================================== */

/* Frees the client for real (every call and watch is gone). */
static void etc_client_free_now(struct etc_client *c)
{
    for (size_t i = 0; i < c->nep; i++) {
        free(c->ep[i].url);
        free(c->ep[i].host);
    }
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    free(c->user);
    free(c->pass);
    free(c->token);
    free(c);
}

/* Leaves a loop callback of c; frees a client freed meanwhile. */
static void etc_client_leave(struct etc_client *c)
{
    if (--c->depth == 0 && c->dying && !c->calls && !c->watches) etc_client_free_now(c);
}

/* Unlinks and frees a call. */
static void etc_call_free(struct etc_call *call)
{
    struct etc_client *c = call->c;

    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    if (c->auth == call) c->auth = NULL;
    hc_cancel(call->hc);
    if (call->ev) event_free(call->ev);
    free(call->body);
    etc_buf_free(&call->resp);
    free(call);
}

/* Enters a loop callback for call. */
static void etc_call_enter(struct etc_call *call)
{
    call->c->depth++;
    call->busy++;
}

/* Leaves it: frees a dead call, then maybe the client. */
static void etc_call_leave(struct etc_call *call)
{
    struct etc_client *c = call->c;

    if (--call->busy == 0 && call->dead) etc_call_free(call);
    etc_client_leave(c);
}

/* Stops whatever the call has in flight and marks it dead (no callback
 * follows); freed now unless busy. */
static void etc_call_kill(struct etc_call *call)
{
    if (call->dead) return;
    call->dead = 1;
    call->state = CS_DONE;
    hc_cancel(call->hc);
    call->hc = NULL;
    if (call->ev) event_del(call->ev);
    if (!call->busy) etc_call_free(call);
}

/* Unlinks and frees a watch. */
static void etc_watch_free(struct etc_watch *w)
{
    struct etc_client *c = w->c;

    if (w->prev) w->prev->next = w->next;
    else c->watches = w->next;
    if (w->next) w->next->prev = w->prev;
    hc_cancel(w->hc);
    hc_cancel(w->probe);
    if (w->timer) event_free(w->timer);
    free(w->key_b64);
    free(w->end_b64);
    etc_buf_free(&w->buf);
    free(w);
}

/* Enters a loop callback for w. */
static void etc_watch_enter(struct etc_watch *w)
{
    w->c->depth++;
    w->busy++;
}

/* Leaves it: frees a dead watch, then maybe the client. */
static void etc_watch_leave(struct etc_watch *w)
{
    struct etc_client *c = w->c;

    if (--w->busy == 0 && w->dead) etc_watch_free(w);
    etc_client_leave(c);
}

/* Stops the stream, the probe and the timer of w. */
static void etc_watch_stop_io(struct etc_watch *w)
{
    hc_cancel(w->hc);
    w->hc = NULL;
    hc_cancel(w->probe);
    w->probe = NULL;
    if (w->timer) event_del(w->timer);
}

/* Marks w dead (no callback follows); freed now unless busy. */
static void etc_watch_kill(struct etc_watch *w)
{
    if (w->dead) return;
    w->dead = 1;
    w->state = WS_ENDED;
    etc_watch_stop_io(w);
    if (!w->busy) etc_watch_free(w);
}

/* ====================================================================== */
/* calls                                                                   */
/* ====================================================================== */

/* The gateway path of a kind. */
static const char *etc_path(int kind)
{
    switch (kind) {
    case K_RANGE: return "/v3/kv/range";
    case K_PUT: return "/v3/kv/put";
    case K_DELETE: return "/v3/kv/deleterange";
    case K_TXN: return "/v3/kv/txn";
    case K_GRANT: return "/v3/lease/grant";
    case K_KEEPALIVE: return "/v3/lease/keepalive";
    case K_REVOKE: return "/v3/lease/revoke";
    default: return "/v3/auth/authenticate";
    }
}

/* The name of a kind, for messages. */
static const char *etc_kind_name(int kind)
{
    static const char *const names[] = {"range", "put", "delete", "txn", "lease grant",
                                        "lease keepalive", "lease revoke", "authenticate"};
    return names[kind];
}

static void etc_auth_done(struct etc_client *c, int err, const char *msg, const char *token);

/* Ends call with err (callback unless cancelled); res / revision / value
 * are the results.  The call is dead afterwards (freed by the leave of
 * its entry). */
static void etc_call_end(struct etc_call *call, int err, const char *msg,
                         const struct etc_range *res, int64_t revision, int64_t value,
                         const char *token)
{
    struct etc_client *c = call->c;

    if (call->dead) return;
    call->dead = 1;
    call->state = CS_DONE;
    hc_cancel(call->hc);
    call->hc = NULL;
    if (call->ev) event_del(call->ev);
    if (!msg) msg = "";
    if (call->kind == K_AUTH) etc_auth_done(c, err, msg, token);
    else if (call->kind == K_RANGE) call->range_cb(call->arg, err, msg, err ? NULL : res);
    else if (call->done_cb) call->done_cb(call->arg, err, msg, revision, value);
}

/* Fills kv from a gateway KeyValue j (decoded strings new, to free with
 * etc_kv_clear).  0, or -1 when malformed. */
static int etc_kv_from_json(const json_t *j, struct etc_kv *kv)
{
    const json_t *k = json_object_get(j, "key"), *v = json_object_get(j, "value");
    char *key, *val;
    size_t kl = 0, vl = 0;

    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(j) || !json_is_string(k)) return -1;
    key = etc_b64dec(json_string_value(k), json_string_length(k), &kl);
    if (!key) return -1;
    if (json_is_string(v)) val = etc_b64dec(json_string_value(v), json_string_length(v), &vl);
    else val = strdup(""); /* an empty value is omitted */
    if (!val) {
        free(key);
        return -1;
    }
    kv->key = key;
    kv->key_len = kl;
    kv->value = val;
    kv->value_len = vl;
    kv->create_revision = etc_jint(json_object_get(j, "create_revision"));
    kv->mod_revision = etc_jint(json_object_get(j, "mod_revision"));
    kv->version = etc_jint(json_object_get(j, "version"));
    kv->lease = etc_jint(json_object_get(j, "lease"));
    return 0;
}

/* Frees the strings of kv. */
static void etc_kv_clear(struct etc_kv *kv)
{
    free((char *)kv->key);
    free((char *)kv->value);
}

/* Hands a successful range answer j to the caller. */
static void etc_range_result(struct etc_call *call, const json_t *j)
{
    const json_t *kvs = json_object_get(j, "kvs");
    size_t n = json_array_size(kvs), i, ok = 0;
    struct etc_kv *a = calloc(n ? n : 1, sizeof(*a));
    struct etc_range r;

    if (!a) {
        etc_call_end(call, ETC_ERR_PROTOCOL, "out of memory", NULL, 0, 0, NULL);
        return;
    }
    for (i = 0; i < n; i++, ok++)
        if (etc_kv_from_json(json_array_get(kvs, i), &a[i]) < 0) break;
    if (i < n) {
        etc_call_end(call, ETC_ERR_PROTOCOL, "range: a key or value that is not base64", NULL,
                     0, 0, NULL);
    } else {
        r.revision = etc_jrev(j);
        r.kvs = a;
        r.n = n;
        r.more = json_is_true(json_object_get(j, "more"));
        etc_call_end(call, ETC_OK, "", &r, r.revision, 0, NULL);
    }
    for (i = 0; i < ok; i++) etc_kv_clear(&a[i]);
    free(a);
}

/* Hands a successful (HTTP 200) answer to the caller, by kind. */
static void etc_call_success(struct etc_call *call)
{
    json_t *j = call->resp.len ? json_loadb(call->resp.p, call->resp.len, 0, NULL) : NULL;
    const json_t *r = j;
    int64_t rev, value = 0;
    const char *s;

    if (!json_is_object(j)) {
        json_decref(j);
        etc_call_end(call, ETC_ERR_PROTOCOL, "an answer that is not a JSON object", NULL, 0, 0,
                     NULL);
        return;
    }
    if (call->kind == K_KEEPALIVE) { /* a stream: {"result":..} or {"error":..} */
        r = json_object_get(j, "result");
        if (!json_is_object(r)) {
            char msg[ETC_MSG];
            int na;
            int v = etc_classify(j, 0, call->c->user != NULL, msg, sizeof(msg), &na);
            json_decref(j);
            etc_call_end(call, v == V_AUTH || v == V_TOKEN ? ETC_ERR_AUTH : ETC_ERR_REJECTED,
                         msg, NULL, 0, 0, NULL);
            return;
        }
    }
    rev = etc_jrev(r);
    switch (call->kind) {
    case K_RANGE:
        etc_range_result(call, r);
        json_decref(j);
        return;
    case K_AUTH:
        s = json_string_value(json_object_get(r, "token"));
        if (!s || !*s) {
            json_decref(j);
            etc_call_end(call, ETC_ERR_PROTOCOL, "authenticate: no token in the answer", NULL, 0,
                         0, NULL);
            return;
        }
        etc_call_end(call, ETC_OK, "", NULL, rev, 0, s);
        json_decref(j);
        return;
    case K_DELETE: value = etc_jint(json_object_get(r, "deleted")); break;
    case K_TXN: value = json_is_true(json_object_get(r, "succeeded")); break;
    case K_GRANT:
        s = json_string_value(json_object_get(r, "error"));
        if (s && *s) {
            char msg[ETC_MSG];
            snprintf(msg, sizeof(msg), "%s", s);
            json_decref(j);
            etc_call_end(call, ETC_ERR_REJECTED, msg, NULL, 0, 0, NULL);
            return;
        }
        value = etc_jint(json_object_get(r, "ID"));
        break;
    case K_KEEPALIVE: value = etc_jint(json_object_get(r, "TTL")); break;
    default: break;
    }
    json_decref(j);
    etc_call_end(call, ETC_OK, "", NULL, rev, value, NULL);
}

/* The attempt on call->ep failed at the endpoint (why); certain: the
 * request was not applied.  Moves on to the next endpoint, or ends the
 * call when it must not be retried or every endpoint was tried. */
static void etc_call_ep_fail(struct etc_call *call, const char *why, int timeout, int certain)
{
    struct etc_client *c = call->c;
    char msg[3 * ETC_MSG];

    snprintf(call->last, sizeof(call->last), "%.280s: %.280s", c->ep[call->ep].url, why);
    call->last_timeout = timeout;
    etc_ep_failed(c, call->ep, why);
    if (call->kind == K_TXN && !certain) {
        snprintf(msg, sizeof(msg), "%s (txn outcome unknown)", call->last);
        etc_call_end(call, timeout ? ETC_ERR_TIMEOUT : ETC_ERR_UNAVAILABLE, msg, NULL, 0, 0,
                     NULL);
        return;
    }
    etc_call_attempt(call);
}

/* httpc: the response head. */
static void etc_call_on_response(void *arg, int status, relais_hdrs *h)
{
    struct etc_call *call = arg;

    (void)h;
    call->status = status;
}

/* httpc: body bytes. */
static void etc_call_on_data(void *arg, const char *data, size_t len)
{
    struct etc_call *call = arg;

    etc_buf_add(&call->resp, data, len);
}

/* httpc: the end of an attempt. */
static void etc_call_on_done(void *arg, int error, const char *message)
{
    struct etc_call *call = arg;
    struct etc_client *c = call->c;
    char msg[ETC_MSG];
    json_t *j;
    int v, na;

    call->hc = NULL;
    etc_call_enter(call);
    if (error) {
        if (!message) message = "request failed";
        etc_call_ep_fail(call, message, !strcmp(message, "timeout"),
                         !strncmp(message, "connect:", 8));
        goto out;
    }
    if (call->resp.over) {
        etc_call_end(call, ETC_ERR_PROTOCOL, "answer over the size cap", NULL, 0, 0, NULL);
        goto out;
    }
    if (call->status == 200) {
        etc_call_success(call);
        goto out;
    }
    j = call->resp.len ? json_loadb(call->resp.p, call->resp.len, 0, NULL) : NULL;
    v = etc_classify(j, call->status, c->user != NULL, msg, sizeof(msg), &na);
    json_decref(j);
    if (call->kind == K_AUTH && strstr(msg, "authentication is not enabled")) {
        etc_call_end(call, ETC_OK, "", NULL, 0, 0, ""); /* go on without a token */
        goto out;
    }
    switch (v) {
    case V_ENDPOINT: etc_call_ep_fail(call, msg, 0, na); break;
    case V_TOKEN:
        if (call->kind == K_AUTH || call->renewed) {
            etc_call_end(call, ETC_ERR_AUTH, msg, NULL, 0, 0, NULL);
            break;
        }
        call->renewed = 1;
        if (call->gen == c->token_gen) { /* drop it (unless renewed meanwhile) */
            free(c->token);
            c->token = NULL;
            c->token_gen++;
            log_debug(ETC_WHO, "%s: %s: fetching a new token", c->ep[call->ep].url, msg);
        }
        call->tried &= ~(1u << call->ep); /* the same endpoint again */
        etc_call_attempt(call);
        break;
    case V_AUTH: etc_call_end(call, ETC_ERR_AUTH, msg, NULL, 0, 0, NULL); break;
    default: etc_call_end(call, ETC_ERR_REJECTED, msg, NULL, 0, 0, NULL); break;
    }
out:
    etc_call_leave(call);
}

/* Starts the next attempt of call: waits for a token first when one is
 * needed; else the first endpoint not tried yet from the current one; ends
 * the call when every endpoint was tried.  Loop context only. */
static void etc_call_attempt(struct etc_call *call)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), etc_call_on_response,
                                             etc_call_on_data, etc_call_on_done};
    struct etc_client *c = call->c;
    char why[ETC_MSG];

    while (!call->dead) {
        size_t i, k;
        if (call->kind != K_AUTH && c->user && !c->token) {
            call->state = CS_TOKEN;
            etc_auth_ensure(c);
            return;
        }
        for (k = 0; k < c->nep; k++) {
            i = (c->cur + k) % c->nep;
            if (!(call->tried & (1u << i))) break;
        }
        if (k == c->nep) {
            char msg[3 * ETC_MSG];
            if (c->nep > 1)
                snprintf(msg, sizeof(msg), "%s: every endpoint failed (last: %s)",
                         etc_kind_name(call->kind), call->last);
            else
                snprintf(msg, sizeof(msg), "%s: %s", etc_kind_name(call->kind), call->last);
            etc_call_end(call, call->last_timeout ? ETC_ERR_TIMEOUT : ETC_ERR_UNAVAILABLE, msg,
                         NULL, 0, 0, NULL);
            return;
        }
        i = (c->cur + k) % c->nep;
        call->tried |= 1u << i;
        call->ep = i;
        call->gen = c->token_gen;
        call->status = 0;
        etc_buf_reset(&call->resp);
        call->state = CS_HTTP;
        call->hc = etc_post(c, i, etc_path(call->kind), call->body, (uint64_t)c->timeout_ms, &cb,
                            call, why, sizeof(why));
        if (call->hc) return;
        snprintf(call->last, sizeof(call->last), "%.280s: %.280s", c->ep[i].url, why);
        call->last_timeout = 0;
        etc_ep_failed(c, i, why);
    }
}

/* The start timer: the first attempt, from the loop. */
static void etc_call_start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct etc_call *call = arg;

    (void)fd;
    (void)what;
    etc_call_enter(call);
    if (!call->dead && call->state == CS_START) etc_call_attempt(call);
    etc_call_leave(call);
}

/* A new call of kind with body j (consumed), started from the loop.  NULL
 * when out of memory or when c is being freed. */
static struct etc_call *etc_call_new(struct etc_client *c, int kind, json_t *j,
                                     etc_range_cb rcb, etc_done_cb dcb, void *arg)
{
    struct etc_call *call;
    struct timeval now = {0, 0};

    if (!c || c->dying || !j) {
        json_decref(j);
        return NULL;
    }
    call = calloc(1, sizeof(*call));
    if (!call) {
        json_decref(j);
        return NULL;
    }
    call->c = c;
    call->kind = kind;
    call->range_cb = rcb;
    call->done_cb = dcb;
    call->arg = arg;
    call->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    call->ev = evtimer_new(c->base, etc_call_start_cb, call);
    if (!call->body || !call->ev || evtimer_add(call->ev, &now) < 0) {
        if (call->ev) event_free(call->ev);
        free(call->body);
        free(call);
        return NULL;
    }
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    return call;
}

/* ====================================================================== */
/* the token                                                               */
/* ====================================================================== */

/* Starts the authenticate call unless one is in flight.  Loop context. */
static void etc_auth_ensure(struct etc_client *c)
{
    json_t *j;
    struct etc_call *a;

    if (c->auth) return;
    j = json_pack("{s:s, s:s}", "name", c->user, "password", c->pass);
    a = etc_call_new(c, K_AUTH, j, NULL, NULL, NULL);
    if (!a) { /* out of memory (or not UTF-8): fail the waiters */
        etc_auth_done(c, ETC_ERR_AUTH, "cannot build the authenticate request", NULL);
        return;
    }
    c->auth = a;
    /* started by its timer, like any call: never a callback from here */
}

/* The first call marked for waking (the mark is cleared), or NULL. */
static struct etc_call *etc_next_wake_call(struct etc_client *c)
{
    for (struct etc_call *x = c->calls; x; x = x->next)
        if (x->wake) {
            x->wake = 0;
            if (!x->dead && x->state == CS_TOKEN) return x;
        }
    return NULL;
}

/* The first watch marked for waking (the mark is cleared), or NULL. */
static struct etc_watch *etc_next_wake_watch(struct etc_client *c)
{
    for (struct etc_watch *x = c->watches; x; x = x->next)
        if (x->wake) {
            x->wake = 0;
            if (!x->dead && x->state == WS_TOKEN) return x;
        }
    return NULL;
}

static void etc_watch_end(struct etc_watch *w, int err, const char *msg);
static void etc_watch_retry_later(struct etc_watch *w);

/* The authenticate call ended: token (err 0; "" when the server has auth
 * disabled) or a failure.  Wakes every waiter: they go on, or fail. */
static void etc_auth_done(struct etc_client *c, int err, const char *msg, const char *token)
{
    struct etc_call *x;
    struct etc_watch *w;
    char m[ETC_MSG + 40];

    c->auth = NULL;
    if (!err) {
        char *t = strdup(token);
        if (!t) {
            err = ETC_ERR_UNAVAILABLE;
            msg = "out of memory";
        } else {
            free(c->token);
            c->token = t;
            c->token_gen++;
            log_debug(ETC_WHO, "%s", *t ? "new auth token" : "auth is disabled on the server");
        }
    }
    if (err) log_warn(ETC_WHO, "authenticate as %s: %s", c->user, msg);
    snprintf(m, sizeof(m), "authenticate: %s", msg);
    /* mark the waiters of this round first: the callbacks below may add
     * calls, and a waiter may start waiting for a new round */
    for (x = c->calls; x; x = x->next) x->wake = x->state == CS_TOKEN;
    for (w = c->watches; w; w = w->next) w->wake = w->state == WS_TOKEN;
    while (!c->dying && (x = etc_next_wake_call(c)) != NULL) {
        etc_call_enter(x);
        if (err) etc_call_end(x, err, m, NULL, 0, 0, NULL);
        else etc_call_attempt(x);
        etc_call_leave(x);
    }
    while (!c->dying && (w = etc_next_wake_watch(c)) != NULL) {
        etc_watch_enter(w);
        if (!err) etc_watch_connect(w);
        else if (err == ETC_ERR_AUTH) etc_watch_end(w, ETC_ERR_AUTH, m);
        else etc_watch_retry_later(w);
        etc_watch_leave(w);
    }
}

/* ====================================================================== */
/* the public calls                                                        */
/* ====================================================================== */

struct etc_call *etc_get(struct etc_client *c, const char *key, int prefix, int64_t limit,
                         int keys_only, etc_range_cb cb, void *arg)
{
    json_t *j = json_object();

    if (!j || !key || !cb || etc_jset_range(j, key, prefix) < 0 ||
        (limit > 0 && etc_jset_int(j, "limit", limit) < 0) ||
        (keys_only && json_object_set_new(j, "keys_only", json_true()) < 0)) {
        json_decref(j);
        return NULL;
    }
    return etc_call_new(c, K_RANGE, j, cb, NULL, arg);
}

struct etc_call *etc_put(struct etc_client *c, const char *key, const char *value,
                         size_t value_len, int64_t lease, etc_done_cb cb, void *arg)
{
    json_t *j = json_object();

    if (!j || !key || (!value && value_len) || etc_jset_b64(j, "key", key, strlen(key)) < 0 ||
        etc_jset_b64(j, "value", value ? value : "", value_len) < 0 ||
        (lease && etc_jset_int(j, "lease", lease) < 0)) {
        json_decref(j);
        return NULL;
    }
    return etc_call_new(c, K_PUT, j, NULL, cb, arg);
}

struct etc_call *etc_delete(struct etc_client *c, const char *key, int prefix, etc_done_cb cb,
                            void *arg)
{
    json_t *j = json_object();

    if (!j || !key || etc_jset_range(j, key, prefix) < 0) {
        json_decref(j);
        return NULL;
    }
    return etc_call_new(c, K_DELETE, j, NULL, cb, arg);
}

/* One txn compare as the gateway's Compare object, or NULL. */
static json_t *etc_cmp_json(const struct etc_cmp *m)
{
    static const char *const targets[] = {"VALUE", "VERSION", "CREATE", "MOD", "LEASE"};
    static const char *const fields[] = {"value", "version", "create_revision", "mod_revision",
                                         "lease"};
    static const char *const ops[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
    json_t *o = json_object();
    int rc;

    if (!o || !m->key || (unsigned)m->target > ETC_CMP_LEASE || (unsigned)m->op > ETC_GT) {
        json_decref(o);
        return NULL;
    }
    rc = etc_jset_b64(o, "key", m->key, strlen(m->key));
    rc |= json_object_set_new(o, "target", json_string(targets[m->target]));
    rc |= json_object_set_new(o, "result", json_string(ops[m->op]));
    if (m->target == ETC_CMP_VALUE) {
        if (!m->value && m->value_len) rc = -1;
        else rc |= etc_jset_b64(o, fields[m->target], m->value ? m->value : "", m->value_len);
    } else {
        rc |= etc_jset_int(o, fields[m->target], m->number);
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One txn operation as the gateway's RequestOp object, or NULL. */
static json_t *etc_op_json(const struct etc_op *op)
{
    json_t *o = json_object(), *r = json_object();
    int rc = 0;

    if (!o || !r || !op->key) goto fail;
    if (op->type == ETC_OP_PUT) {
        if (!op->value && op->value_len) goto fail;
        rc |= etc_jset_b64(r, "key", op->key, strlen(op->key));
        rc |= etc_jset_b64(r, "value", op->value ? op->value : "", op->value_len);
        if (op->lease) rc |= etc_jset_int(r, "lease", op->lease);
        rc |= json_object_set(o, "request_put", r);
    } else if (op->type == ETC_OP_DELETE || op->type == ETC_OP_DELETE_PREFIX) {
        rc |= etc_jset_range(r, op->key, op->type == ETC_OP_DELETE_PREFIX);
        rc |= json_object_set(o, "request_delete_range", r);
    } else {
        goto fail;
    }
    if (rc) goto fail;
    json_decref(r);
    return o;
fail:
    json_decref(o);
    json_decref(r);
    return NULL;
}

struct etc_call *etc_txn(struct etc_client *c, const struct etc_cmp *cmp, size_t ncmp,
                         const struct etc_op *success, size_t nsuccess,
                         const struct etc_op *failure, size_t nfailure, etc_done_cb cb,
                         void *arg)
{
    json_t *j = json_object(), *a[3] = {json_array(), json_array(), json_array()};
    int rc = !j || !a[0] || !a[1] || !a[2];
    size_t i;

    for (i = 0; !rc && i < ncmp; i++) rc = json_array_append_new(a[0], etc_cmp_json(&cmp[i]));
    for (i = 0; !rc && i < nsuccess; i++)
        rc = json_array_append_new(a[1], etc_op_json(&success[i]));
    for (i = 0; !rc && i < nfailure; i++)
        rc = json_array_append_new(a[2], etc_op_json(&failure[i]));
    if (!rc) rc = json_object_set(j, "compare", a[0]) | json_object_set(j, "success", a[1]) |
                  json_object_set(j, "failure", a[2]);
    for (i = 0; i < 3; i++) json_decref(a[i]);
    if (rc) {
        json_decref(j);
        return NULL;
    }
    return etc_call_new(c, K_TXN, j, NULL, cb, arg);
}

/* A lease call of kind with {"<field>": v}. */
static struct etc_call *etc_lease_call(struct etc_client *c, int kind, const char *field,
                                       int64_t v, etc_done_cb cb, void *arg)
{
    json_t *j = json_object();

    if (!j || etc_jset_int(j, field, v) < 0) {
        json_decref(j);
        return NULL;
    }
    return etc_call_new(c, kind, j, NULL, cb, arg);
}

struct etc_call *etc_lease_grant(struct etc_client *c, int64_t ttl_s, etc_done_cb cb, void *arg)
{
    return etc_lease_call(c, K_GRANT, "TTL", ttl_s, cb, arg);
}

struct etc_call *etc_lease_keepalive(struct etc_client *c, int64_t id, etc_done_cb cb,
                                     void *arg)
{
    return etc_lease_call(c, K_KEEPALIVE, "ID", id, cb, arg);
}

struct etc_call *etc_lease_revoke(struct etc_client *c, int64_t id, etc_done_cb cb, void *arg)
{
    return etc_lease_call(c, K_REVOKE, "ID", id, cb, arg);
}

void etc_cancel(struct etc_call *call)
{
    if (call) etc_call_kill(call);
}

/* ====================================================================== */
/* watches                                                                 */
/* ====================================================================== */

/* Arms w's timer for ms. */
static void etc_watch_timer(struct etc_watch *w, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(w->timer, &tv);
}

/* Ends w for good with err (on_end unless cancelled). */
static void etc_watch_end(struct etc_watch *w, int err, const char *msg)
{
    if (w->dead) return;
    w->dead = 1;
    w->state = WS_ENDED;
    etc_watch_stop_io(w);
    log_info(ETC_WHO, "watch ended: %s", msg);
    if (w->on_end) w->on_end(w->arg, err, msg);
}

/* Schedules the next connection after the backoff delay (which grows). */
static void etc_watch_retry_later(struct etc_watch *w)
{
    etc_watch_stop_io(w);
    w->state = WS_WAIT;
    etc_watch_timer(w, w->backoff_ms);
    w->backoff_ms *= 2;
    if (w->backoff_ms > ETC_BACKOFF_MAX_MS) w->backoff_ms = ETC_BACKOFF_MAX_MS;
}

/* The stream broke (why): the endpoint is noted failed and the watch
 * reconnects later, from next_rev. */
static void etc_watch_break(struct etc_watch *w, const char *why)
{
    struct etc_client *c = w->c;

    if (w->dead) return;
    log_debug(ETC_WHO, "watch on %s broke: %s", c->ep[w->ep].url, why);
    etc_ep_failed(c, w->ep, why);
    w->resumed = 1;
    etc_watch_retry_later(w);
}

/* The token was refused on w's stream (why): a new one once, else the
 * watch ends with ETC_ERR_AUTH. */
static void etc_watch_token_refused(struct etc_watch *w, const char *why)
{
    struct etc_client *c = w->c;

    if (w->renewed) {
        etc_watch_end(w, ETC_ERR_AUTH, why);
        return;
    }
    w->renewed = 1;
    if (w->gen == c->token_gen) {
        free(c->token);
        c->token = NULL;
        c->token_gen++;
    }
    etc_watch_stop_io(w);
    etc_watch_connect(w);
}

/* Delivers the events of one watch message (array evs).  0, or -1 when
 * the watch was cancelled by the callback or the message is malformed
 * (then broken). */
static int etc_watch_events(struct etc_watch *w, const json_t *evs)
{
    size_t n = json_array_size(evs), k = 0, i;
    struct etc_event *a;
    int64_t top = 0;
    int rc = 0;

    if (n == 0) return 0;
    a = calloc(n, sizeof(*a));
    if (!a) {
        etc_watch_break(w, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const json_t *e = json_array_get(evs, i);
        const char *type = json_string_value(json_object_get(e, "type"));
        if (etc_kv_from_json(json_object_get(e, "kv"), &a[k].kv) < 0) {
            etc_watch_break(w, "malformed event");
            rc = -1;
            goto out;
        }
        a[k].type = type && !strcmp(type, "DELETE") ? ETC_EV_DELETE : ETC_EV_PUT;
        if (w->stream_start && a[k].kv.mod_revision < w->stream_start) { /* already seen */
            etc_kv_clear(&a[k].kv);
            continue;
        }
        if (a[k].kv.mod_revision > top) top = a[k].kv.mod_revision;
        k++;
    }
    if (k) {
        if (top + 1 > w->next_rev) w->next_rev = top + 1;
        w->on_events(w->arg, a, k, w->next_rev - 1);
        if (w->dead) rc = -1;
    }
out:
    for (i = 0; i < k; i++) etc_kv_clear(&a[i].kv);
    free(a);
    return rc;
}

/* Handles one message of w's stream (s[0..n), a JSON object).  0, or -1
 * when the stream is over (broken, ended, cancelled). */
static int etc_watch_msg(struct etc_watch *w, const char *s, size_t n)
{
    struct etc_client *c = w->c;
    json_t *j = json_loadb(s, n, 0, NULL);
    const json_t *r = json_object_get(j, "result");
    char msg[3 * ETC_MSG];
    int64_t v;
    int rc = -1;

    if (!json_is_object(j)) {
        etc_watch_break(w, "malformed watch message");
        goto out;
    }
    if (!json_is_object(r)) { /* the stream failed: {"error":{..}} */
        int na, verdict = etc_classify(j, 0, c->user != NULL, msg, sizeof(msg), &na);
        if (verdict == V_TOKEN) etc_watch_token_refused(w, msg);
        else if (verdict == V_AUTH) etc_watch_end(w, ETC_ERR_AUTH, msg);
        else etc_watch_break(w, msg);
        goto out;
    }
    if ((v = etc_jint(json_object_get(r, "compact_revision"))) > 0) {
        snprintf(msg, sizeof(msg),
                 "revision %" PRId64 " is compacted (the oldest kept is %" PRId64 ")",
                 w->next_rev, v);
        etc_watch_end(w, ETC_ERR_COMPACTED, msg);
        goto out;
    }
    if (json_is_true(json_object_get(r, "canceled"))) {
        const char *why = json_string_value(json_object_get(r, "cancel_reason"));
        snprintf(msg, sizeof(msg), "watch canceled by the server: %s",
                 why && *why ? why : "no reason given");
        if (why && (strstr(why, "Unauthenticated") || strstr(why, "invalid auth token") ||
                    strstr(why, "user name is empty")) && c->user)
            etc_watch_token_refused(w, msg);
        else if (why && (strstr(why, "PermissionDenied") || strstr(why, "Unauthenticated") ||
                         strstr(why, "user name is empty") ||
                         strstr(why, "authentication failed")))
            etc_watch_end(w, ETC_ERR_AUTH, msg);
        else
            etc_watch_break(w, msg);
        goto out;
    }
    if (json_is_true(json_object_get(r, "created")) && w->state == WS_OPENING) {
        w->state = WS_OPEN;
        w->backoff_ms = ETC_BACKOFF_MIN_MS;
        w->renewed = 0;
        if (w->next_rev == 0) w->next_rev = etc_jrev(r) + 1;
        event_del(w->timer);
        etc_watch_timer(w, ETC_PROBE_MS);
        if (w->resumed)
            log_info(ETC_WHO, "watch resumed on %s from revision %" PRId64, c->ep[w->ep].url,
                     w->next_rev);
    }
    if (etc_watch_events(w, json_object_get(r, "events")) < 0) goto out;
    rc = 0;
out:
    json_decref(j);
    return rc;
}

/* httpc: the stream's head. */
static void etc_watch_on_response(void *arg, int status, relais_hdrs *h)
{
    struct etc_watch *w = arg;

    (void)h;
    w->status = status;
}

/* httpc: stream bytes: complete top-level JSON objects are cut out and
 * handled in order. */
static void etc_watch_on_data(void *arg, const char *data, size_t len)
{
    struct etc_watch *w = arg;

    etc_buf_add(&w->buf, data, len);
    if (w->status != 200) return; /* an error answer: read at the end */
    etc_watch_enter(w);
    if (w->buf.over) {
        etc_watch_break(w, "watch message over the size cap");
        goto out;
    }
    while (!w->dead && w->hc && w->scan < w->buf.len) {
        char ch = w->buf.p[w->scan++];
        if (w->in_str) {
            if (w->esc) w->esc = 0;
            else if (ch == '\\') w->esc = 1;
            else if (ch == '"') w->in_str = 0;
            continue;
        }
        if (ch == '"') {
            w->in_str = 1;
        } else if (ch == '{' || ch == '[') {
            w->sdepth++;
        } else if ((ch == '}' || ch == ']') && --w->sdepth <= 0) {
            size_t start = 0, end = w->scan;
            w->sdepth = 0;
            while (start < end && w->buf.p[start] != '{') start++;
            if (etc_watch_msg(w, w->buf.p + start, end - start) < 0) goto out;
            memmove(w->buf.p, w->buf.p + end, w->buf.len - end);
            w->buf.len -= end;
            w->buf.p[w->buf.len] = '\0';
            w->scan = 0;
        }
    }
out:
    etc_watch_leave(w);
}

/* httpc: the stream ended. */
static void etc_watch_on_done(void *arg, int error, const char *message)
{
    struct etc_watch *w = arg;
    struct etc_client *c = w->c;
    char msg[ETC_MSG + 40];

    w->hc = NULL;
    etc_watch_enter(w);
    if (w->dead || (w->state != WS_OPENING && w->state != WS_OPEN)) goto out;
    if (error) {
        snprintf(msg, sizeof(msg), "%s", message ? message : "stream failed");
        etc_watch_break(w, msg);
    } else if (w->status != 200) {
        json_t *j = w->buf.len ? json_loadb(w->buf.p, w->buf.len, 0, NULL) : NULL;
        int na, v = etc_classify(j, w->status, c->user != NULL, msg, sizeof(msg), &na);
        json_decref(j);
        if (v == V_TOKEN) etc_watch_token_refused(w, msg);
        else if (v == V_AUTH) etc_watch_end(w, ETC_ERR_AUTH, msg);
        else etc_watch_break(w, msg);
    } else {
        etc_watch_break(w, "the stream ended");
    }
out:
    etc_watch_leave(w);
}

/* httpc: the liveness read's head. */
static void etc_probe_on_response(void *arg, int status, relais_hdrs *h)
{
    struct etc_watch *w = arg;

    (void)h;
    w->probe_status = status;
}

/* httpc: the liveness read ended: a member that cannot serve it (down,
 * paused, without quorum) loses the stream. */
static void etc_probe_on_done(void *arg, int error, const char *message)
{
    struct etc_watch *w = arg;
    char msg[ETC_MSG];

    w->probe = NULL;
    etc_watch_enter(w);
    if (!w->dead && w->state == WS_OPEN) {
        if (!error && w->probe_status < 500) {
            etc_watch_timer(w, ETC_PROBE_MS);
        } else {
            if (error)
                snprintf(msg, sizeof(msg), "liveness read: %s", message ? message : "failed");
            else
                snprintf(msg, sizeof(msg), "liveness read: HTTP status %d", w->probe_status);
            etc_watch_break(w, msg);
        }
    }
    etc_watch_leave(w);
}

/* Starts the liveness read of w (a keys-only read of its key). */
static void etc_watch_probe(struct etc_watch *w)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), etc_probe_on_response,
                                             NULL, etc_probe_on_done};
    char body[ETC_MSG * 4], why[ETC_MSG];
    int n;

    n = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"limit\":\"1\",\"keys_only\":true}",
                 w->key_b64);
    if (n < 0 || (size_t)n >= sizeof(body))
        snprintf(body, sizeof(body), "{\"key\":\"AA==\",\"limit\":\"1\",\"keys_only\":true}");
    w->probe_status = 0;
    w->probe = etc_post(w->c, w->ep, "/v3/kv/range", body, (uint64_t)w->c->timeout_ms, &cb, w,
                        why, sizeof(why));
    if (!w->probe) etc_watch_timer(w, ETC_PROBE_MS);
}

/* w's timer: the next connection, the creation deadline, or the probe. */
static void etc_watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct etc_watch *w = arg;
    char msg[ETC_MSG];

    (void)fd;
    (void)what;
    etc_watch_enter(w);
    if (w->dead) goto out;
    if (w->state == WS_WAIT) {
        etc_watch_connect(w);
    } else if (w->state == WS_OPENING) {
        snprintf(msg, sizeof(msg), "no watch created within %" PRId64 " ms", w->c->timeout_ms);
        etc_watch_break(w, msg);
    } else if (w->state == WS_OPEN && !w->probe) {
        etc_watch_probe(w);
    }
out:
    etc_watch_leave(w);
}

/* Opens w's stream on the current endpoint from next_rev (waits for a
 * token first when one is needed).  Loop context. */
static void etc_watch_connect(struct etc_watch *w)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), etc_watch_on_response,
                                             etc_watch_on_data, etc_watch_on_done};
    struct etc_client *c = w->c;
    json_t *j, *cr;
    char *body = NULL, why[ETC_MSG];

    if (w->dead) return;
    etc_watch_stop_io(w);
    if (c->user && !c->token) {
        w->state = WS_TOKEN;
        etc_auth_ensure(c);
        return;
    }
    j = json_object();
    cr = json_object();
    if (j && cr && json_object_set_new(cr, "key", json_string(w->key_b64)) == 0 &&
        (!w->end_b64 || json_object_set_new(cr, "range_end", json_string(w->end_b64)) == 0) &&
        (!w->next_rev || etc_jset_int(cr, "start_revision", w->next_rev) == 0) &&
        json_object_set(j, "create_request", cr) == 0)
        body = json_dumps(j, JSON_COMPACT);
    json_decref(cr);
    json_decref(j);
    w->ep = c->cur;
    if (!body) {
        log_warn(ETC_WHO, "watch: out of memory");
        etc_watch_retry_later(w);
        return;
    }
    w->gen = c->token_gen;
    w->status = 0;
    w->stream_start = w->next_rev;
    etc_buf_reset(&w->buf);
    w->scan = 0;
    w->sdepth = w->in_str = w->esc = 0;
    w->state = WS_OPENING;
    w->hc = etc_post(c, w->ep, "/v3/watch", body, 0, &cb, w, why, sizeof(why));
    free(body);
    if (!w->hc) {
        etc_watch_break(w, why);
        return;
    }
    etc_watch_timer(w, c->timeout_ms); /* the creation deadline */
}

struct etc_watch *etc_watch(struct etc_client *c, const char *key, int prefix,
                            int64_t start_revision, etc_events_cb on_events,
                            etc_watch_end_cb on_end, void *arg)
{
    struct etc_watch *w;
    json_t *j;

    if (!c || c->dying || !key || !on_events || start_revision < 0) return NULL;
    w = calloc(1, sizeof(*w));
    j = json_object();
    if (!w || !j || etc_jset_range(j, key, prefix) < 0) goto fail;
    w->key_b64 = strdup(json_string_value(json_object_get(j, "key")));
    if (prefix) w->end_b64 = strdup(json_string_value(json_object_get(j, "range_end")));
    json_decref(j);
    j = NULL;
    w->c = c;
    w->next_rev = start_revision;
    w->on_events = on_events;
    w->on_end = on_end;
    w->arg = arg;
    w->backoff_ms = ETC_BACKOFF_MIN_MS;
    w->state = WS_WAIT;
    w->timer = evtimer_new(c->base, etc_watch_timer_cb, w);
    if (!w->key_b64 || (prefix && !w->end_b64) || !w->timer) goto fail;
    etc_watch_timer(w, 0); /* connects from the loop */
    w->next = c->watches;
    if (c->watches) c->watches->prev = w;
    c->watches = w;
    return w;
fail:
    json_decref(j);
    if (w) {
        if (w->timer) event_free(w->timer);
        free(w->key_b64);
        free(w->end_b64);
        free(w);
    }
    return NULL;
}

void etc_watch_cancel(struct etc_watch *w)
{
    if (w) etc_watch_kill(w);
}

/* ====================================================================== */
/* the client                                                              */
/* ====================================================================== */

/* Parses endpoint s into e ("http://h:p", "https://h:p", "h:p", "h";
 * tls_default for the bare forms).  0, or -1 with err set. */
static int etc_parse_ep(const char *s, int tls_default, struct etc_ep *e, char *err,
                        size_t errlen)
{
    const char *hp = s, *port = NULL;
    char host[300];
    size_t n, hl;
    int tls = tls_default;

    if (!strncmp(s, "https://", 8)) {
        hp = s + 8;
        tls = 1;
    } else if (!strncmp(s, "http://", 7)) {
        hp = s + 7;
        tls = 0;
    } else if (strstr(s, "://")) {
        snprintf(err, errlen, "endpoint \"%.100s\": scheme must be http or https", s);
        return -1;
    }
    n = strlen(hp);
    if (n > 0 && hp[n - 1] == '/') n--;
    if (n == 0 || n >= sizeof(host) - 8 || memchr(hp, '/', n) || memchr(hp, ' ', n) ||
        memchr(hp, '@', n)) {
        snprintf(err, errlen, "endpoint \"%.100s\": expected [http(s)://]host[:port]", s);
        return -1;
    }
    if (hp[0] == '[') {
        const char *rb = memchr(hp, ']', n);
        if (!rb) goto bad;
        hl = (size_t)(rb - hp) + 1;
        if (hl < n) {
            if (hp[hl] != ':') goto bad;
            port = hp + hl + 1;
        }
    } else {
        const char *colon = memchr(hp, ':', n);
        hl = colon ? (size_t)(colon - hp) : n;
        if (colon) {
            if (memchr(colon + 1, ':', n - hl - 1)) goto bad; /* IPv6 needs brackets */
            port = colon + 1;
        }
    }
    if (hl == 0) goto bad;
    if (port) {
        size_t pl = n - (size_t)(port - hp);
        long pv = 0;
        if (pl == 0 || pl > 5) goto bad;
        for (size_t i = 0; i < pl; i++) {
            if (port[i] < '0' || port[i] > '9') goto bad;
            pv = pv * 10 + (port[i] - '0');
        }
        if (pv < 1 || pv > 65535) goto bad;
        if (asprintf(&e->url, "%s://%.*s", tls ? "https" : "http", (int)n, hp) < 0) e->url = NULL;
    } else if (asprintf(&e->url, "%s://%.*s:2379", tls ? "https" : "http", (int)n, hp) < 0) {
        e->url = NULL;
    }
    if (hp[0] == '[') e->host = strndup(hp + 1, hl - 2);
    else e->host = strndup(hp, hl);
    e->tls = tls;
    if (!e->url || !e->host) {
        free(e->url);
        free(e->host);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
bad:
    snprintf(err, errlen, "endpoint \"%.100s\": expected [http(s)://]host[:port]", s);
    return -1;
}

struct etc_client *etc_new(struct event_base *base, const struct etc_opts *o, char *err,
                           size_t errlen)
{
    struct etc_client *c;
    int tls_default, any_tls = 0;

    if (!base || !o || !o->endpoints || o->nendpoints < 1 || o->nendpoints > ETC_MAX_ENDPOINTS) {
        snprintf(err, errlen, "between 1 and %d endpoints expected", ETC_MAX_ENDPOINTS);
        return NULL;
    }
    if (o->password && *o->password && !(o->username && *o->username)) {
        snprintf(err, errlen, "a password without a username");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : ETC_DEFAULT_TIMEOUT_MS;
    tls_default = (o->tls_ca && *o->tls_ca) || (o->tls_cert && *o->tls_cert) || o->tls_insecure;
    for (size_t i = 0; i < o->nendpoints; i++) {
        if (!o->endpoints[i] || etc_parse_ep(o->endpoints[i], tls_default, &c->ep[i], err,
                                             errlen) < 0) {
            if (!o->endpoints[i]) snprintf(err, errlen, "endpoint %zu is NULL", i);
            goto fail;
        }
        c->nep++;
        any_tls |= c->ep[i].tls;
    }
    if (any_tls) {
        struct tls_client_opts to = {o->tls_ca && *o->tls_ca ? o->tls_ca : NULL,
                                     o->tls_cert && *o->tls_cert ? o->tls_cert : NULL,
                                     o->tls_key && *o->tls_key ? o->tls_key : NULL,
                                     o->tls_insecure};
        char e2[256];
        c->ssl_ctx = tls_client_ctx(&to, e2, sizeof(e2));
        if (!c->ssl_ctx) {
            snprintf(err, errlen, "tls: %s", e2);
            goto fail;
        }
    }
    if (o->username && *o->username) {
        c->user = strdup(o->username);
        c->pass = strdup(o->password ? o->password : "");
        if (!c->user || !c->pass) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    return c;
fail:
    etc_client_free_now(c);
    return NULL;
}

void etc_free(struct etc_client *c)
{
    if (!c || c->dying) return;
    c->dying = 1;
    /* kill every object; busy ones are freed at their leave */
    for (struct etc_call *x = c->calls, *nx; x; x = nx) {
        nx = x->next;
        if (!x->dead) etc_call_kill(x);
        else if (!x->busy) etc_call_free(x);
    }
    for (struct etc_watch *x = c->watches, *nx; x; x = nx) {
        nx = x->next;
        if (!x->dead) etc_watch_kill(x);
        else if (!x->busy) etc_watch_free(x);
    }
    if (c->depth == 0) etc_client_free_now(c);
}

const char *etc_endpoint(const struct etc_client *c)
{
    return c->ep[c->cur].url;
}
