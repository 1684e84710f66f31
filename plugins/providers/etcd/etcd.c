/*
 * etcd — provider plugin reading the dynamic configuration from etcd v3
 * (Traefik's etcd provider: config key "etcd"; options endpoints
 * (["127.0.0.1:2379"]), rootKey ("traefik"), username/password, tls {ca,
 * cert, key, insecureSkipVerify}).  An endpoint is "host:port",
 * "http://host:port" or "https://host:port"; with a tls block, host:port
 * means https.  tls values are a file path or PEM text (ABI 1.2: the host
 * client does the TLS).  Logs go under "provider NAME" (the instance name,
 * "etcd" for the unnamed one).  Module prefix: ec_.
 *
 * Protocol: etcd's JSON gateway (/v3/) through the host's asynchronous HTTP
 * client.  Start lists every key under ROOT/ (kv/range), publishes the
 * pairs with provider_publish_kv and remembers the store revision R; then a
 * watch (a streaming response, one JSON object per message) from R+1 keeps
 * an in-memory key→value map up to date; a burst of events is published
 * once, 50 ms after its first event.  When the stream or a call fails, the
 * next endpoint is tried after an exponential backoff (100 ms → 5 s); the
 * watch resumes from the last revision seen so nothing is missed (a
 * compacted revision makes it list again).  The failure is logged once per
 * outage and the last configuration keeps serving: nothing is published
 * because the source is down.  While watching, a small linearizable read
 * every 3 s checks that the member still serves (a hung member or one cut
 * from its quorum would keep the stream open but silent); when it fails the
 * watch moves to the next endpoint.  With username/password a token from
 * /v3/auth/authenticate goes in the Authorization header (renewed when the
 * server calls it invalid).
 *
 * Everything runs on the control thread; nothing blocks.  Built against
 * the SDK header and jansson (JSON documents; links -ljansson); the watch
 * stream's message splitter and the base64 codec are local.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <relais/plugin.h>

#include "pvtls.h"

#define EC_MAX_ENDPOINTS 32            /* endpoints option cap */
#define EC_MAX_BODY (64u << 20)        /* response / message cap: 64 MiB */
#define EC_MAX_KEYS 1000000u           /* keys kept in memory */
#define EC_MAX_NODES (16u << 20)       /* JSON values per document */
#define EC_MAX_DEPTH 64                /* JSON nesting cap */
#define EC_BACKOFF_MIN 100             /* first retry delay, ms */
#define EC_BACKOFF_MAX 5000            /* longest retry delay, ms */
#define EC_DEBOUNCE_MS 50              /* event burst → one publish */
#define EC_CALL_TIMEOUT 5000           /* range / auth call timeout, ms */
#define EC_HEALTH_MS 3000              /* liveness check period while watching */
#define EC_HEALTH_TIMEOUT 2000         /* liveness check timeout, ms */

/* ======================================================================
 * JSON (jansson) helpers
 * ==================================================================== */

/* Checks, before parsing, that the text s[0..n) stays under EC_MAX_NODES
 * values and EC_MAX_DEPTH nesting levels (jansson caps neither the value
 * count, and a 64 MiB "[1,1,...]" would take gigabytes, nor the depth
 * below 2048).  Every value is the root, the
 * first item of a container or follows a comma, so 1 + commas + opening
 * brackets bounds the count.  Strings are skipped.  0, or -1 over a cap. */
static int ec_json_bounded(const char *s, size_t n)
{
    size_t values = 1;
    int depth = 0, in_str = 0, esc = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > EC_MAX_DEPTH + 1) return -1;
            values++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',') {
            values++;
        }
        if (values > EC_MAX_NODES) return -1;
    }
    return 0;
}

/* Parses s[0..n) (one JSON value of any type, nothing after it; NUL
 * escapes allowed) into a new jansson value (caller: json_decref), or
 * NULL when malformed, over a cap or out of memory. */
static json_t *ec_json_parse(const char *s, size_t n)
{
    json_error_t err;

    if (n > EC_MAX_BODY || ec_json_bounded(s, n) < 0) return NULL;
    return json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
}

/* Integer value of v: a non-negative JSON integer, or a string of 1 to 18
 * decimal digits (etcd's gateway writes int64 as strings).  0 or -1 (v NULL
 * or anything else). */
static int ec_j_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > 999999999999999999LL) return -1;
        *out = (int64_t)x;
        return 0;
    }
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        size_t len = json_string_length(v);
        int64_t x = 0;
        if (len == 0 || len > 18) return -1;
        for (size_t i = 0; i < len; i++) {
            if (t[i] < '0' || t[i] > '9') return -1;
            x = x * 10 + (t[i] - '0');
        }
        *out = x;
        return 0;
    }
    return -1;
}

/* A copy of string value v (caller frees; it ends at a decoded NUL, if
 * any), or NULL when v is NULL / not a string / no memory. */
static char *ec_j_str(const json_t *v)
{
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/* ======================================================================
 * base64 (standard alphabet, padding optional)
 * ==================================================================== */

/* Value of a base64 character, or -1. */
static int ec_b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 text s (NUL-terminated) into a new NUL-terminated string
 * (caller frees).  NULL when malformed or when the result holds a NUL byte
 * (keys and values cross the SDK as C strings). */
static char *ec_b64dec(const char *s)
{
    size_t n = strlen(s), o = 0;
    unsigned acc = 0;
    int bits = 0;
    char *out;

    while (n > 0 && s[n - 1] == '=') n--;
    out = malloc(n * 3 / 4 + 2);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        int v = ec_b64val((unsigned char)s[i]);
        if (v < 0) goto fail;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o] = (char)((acc >> bits) & 0xff);
            if (out[o] == 0) goto fail;
            o++;
        }
    }
    if (bits >= 6) goto fail; /* a lone trailing character */
    out[o] = 0;
    return out;
fail:
    free(out);
    return NULL;
}

/* Encodes len bytes of s as base64 into a new string (caller frees). */
static char *ec_b64enc(const char *s, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i;

    if (!out) return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned char)s[i] << 16 | (unsigned char)s[i + 1] << 8 | (unsigned char)s[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned char)s[i] << 16 | (i + 1 < len ? (unsigned char)s[i + 1] << 8 : 0);
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
    return out;
}

/* The body of an auth/authenticate call, {"name":..,"password":..}, as a
 * new string (caller frees), or NULL when a field is not valid UTF-8 or
 * on no memory. */
static char *ec_auth_body(const char *user, const char *password)
{
    json_t *o = json_pack("{s:s, s:s}", "name", user, "password", password);
    char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return out;
}

/* ======================================================================
 * The provider
 * ==================================================================== */

/** One key and its value, kept sorted by key. */
struct ec_pair {
    char *key; /* full etcd key, e.g. "traefik/http/routers/r/rule" */
    char *val; /* its value */
};

/** What the call in flight is. */
enum ec_phase { EC_IDLE, EC_AUTH, EC_LIST, EC_WATCH };

/** The provider instance. */
struct ec {
    char who[96];               /* "provider NAME", for the log */
    const relais_host *host;    /* host table */
    relais_provider *prov;      /* our handle */
    char *endpoints[EC_MAX_ENDPOINTS]; /* base URLs "http(s)://host:port" */
    size_t nendpoints;          /* how many */
    size_t cur;                 /* endpoint in use */
    char *root;                 /* rootKey */
    char *key_b64;              /* base64 of "ROOT/" */
    char *end_b64;              /* base64 of the prefix end "ROOT0" */
    char *username;             /* etcd user, or NULL */
    char *password;             /* its password */
    char *token;                /* auth token, or NULL */
    int token_ok;               /* the token served a list or a watch */
    struct pvt_tls tls;         /* the tls block (tls.present: https) */
    struct ec_pair *pairs;      /* the key→value map, sorted by key */
    size_t npairs;              /* entries used */
    size_t cappairs;            /* entries allocated */
    int64_t rev;                /* last store revision seen */
    int need_list;              /* next connection lists (not watches) */
    int phase;                  /* enum ec_phase of the call in flight */
    int next_phase;             /* after EC_AUTH: the phase to go on with */
    relais_http_call *call;     /* call in flight, or NULL */
    int status;                 /* HTTP status of the call in flight */
    int watch_ok;               /* the watch was created */
    char *buf;                  /* body / stream bytes not yet parsed */
    size_t len;                 /* bytes in buf */
    size_t cap;                 /* buf allocation */
    size_t scan;                /* stream splitter: bytes of buf scanned */
    int depth;                  /* stream splitter: brace depth */
    int in_str;                 /* stream splitter: inside a string */
    int esc;                    /* stream splitter: after a backslash */
    int too_big;                /* buf went over EC_MAX_BODY */
    int stream_err;             /* a stream message was bad: reconnect */
    relais_timer *retry;        /* reconnect timer */
    relais_timer *debounce;     /* publish timer */
    relais_timer *health;       /* next liveness check of the endpoint */
    relais_http_call *hcall;    /* liveness check in flight, or NULL */
    int hstatus;                /* its HTTP status */
    int pub_pending;            /* debounce armed */
    uint64_t backoff;           /* next retry delay, ms */
    int failing;                /* an outage was logged */
    int stopped;                /* stop() was called */
};

static void ec_connect(struct ec *e);

/* Resets the receive buffer and the stream splitter. */
static void ec_buf_reset(struct ec *e)
{
    e->len = e->scan = 0;
    e->depth = e->in_str = e->esc = 0;
    e->too_big = 0;
}

/* Appends bytes to the receive buffer under EC_MAX_BODY; sets too_big. */
static void ec_buf_add(struct ec *e, const char *data, size_t len)
{
    if (e->too_big) return;
    if (e->len + len > EC_MAX_BODY) {
        e->too_big = 1;
        return;
    }
    if (e->len + len > e->cap) {
        size_t nc = e->cap ? e->cap : 4096;
        char *nb;
        while (nc < e->len + len) nc *= 2;
        nb = realloc(e->buf, nc);
        if (!nb) {
            e->too_big = 1;
            return;
        }
        e->buf = nb;
        e->cap = nc;
    }
    memcpy(e->buf + e->len, data, len);
    e->len += len;
}

/* Frees the map. */
static void ec_map_clear(struct ec *e)
{
    for (size_t i = 0; i < e->npairs; i++) {
        free(e->pairs[i].key);
        free(e->pairs[i].val);
    }
    e->npairs = 0;
}

/* Binary search: index of key, or where it would go (*found set). */
static size_t ec_map_find(const struct ec *e, const char *key, int *found)
{
    size_t lo = 0, hi = e->npairs;

    *found = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->pairs[mid].key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Sets key to val (both taken over; freed on failure).  0 or -1. */
static int ec_map_put(struct ec *e, char *key, char *val)
{
    int found;
    size_t i = ec_map_find(e, key, &found);

    if (found) {
        free(key);
        free(e->pairs[i].val);
        e->pairs[i].val = val;
        return 0;
    }
    if (e->npairs >= EC_MAX_KEYS) goto fail;
    if (e->npairs == e->cappairs) {
        size_t nc = e->cappairs ? e->cappairs * 2 : 64;
        struct ec_pair *np = realloc(e->pairs, nc * sizeof(*np));
        if (!np) goto fail;
        e->pairs = np;
        e->cappairs = nc;
    }
    memmove(&e->pairs[i + 1], &e->pairs[i], (e->npairs - i) * sizeof(*e->pairs));
    e->pairs[i].key = key;
    e->pairs[i].val = val;
    e->npairs++;
    return 0;
fail:
    free(key);
    free(val);
    return -1;
}

/* Removes key (not taken over). */
static void ec_map_del(struct ec *e, const char *key)
{
    int found;
    size_t i = ec_map_find(e, key, &found);

    if (!found) return;
    free(e->pairs[i].key);
    free(e->pairs[i].val);
    memmove(&e->pairs[i], &e->pairs[i + 1], (e->npairs - i - 1) * sizeof(*e->pairs));
    e->npairs--;
}

/* Publishes the whole map (control thread; never after stop). */
static void ec_publish(struct ec *e)
{
    relais_kv *kv;

    e->pub_pending = 0;
    if (e->stopped) return;
    kv = malloc((e->npairs ? e->npairs : 1) * sizeof(*kv));
    if (!kv) {
        e->host->log(RELAIS_LOG_ERROR, e->who, "out of memory publishing %zu keys", e->npairs);
        return;
    }
    for (size_t i = 0; i < e->npairs; i++) {
        kv[i].key = e->pairs[i].key;
        kv[i].value = e->pairs[i].val;
    }
    e->host->log(RELAIS_LOG_DEBUG, e->who, "publishing %zu keys (revision %lld)", e->npairs,
                 (long long)e->rev);
    e->host->provider_publish_kv(e->prov, kv, e->npairs, '/', e->root);
    free(kv);
}

/* Debounce timer callback. */
static void ec_debounce_cb(void *arg)
{
    ec_publish(arg);
}

/* Notes a failure of the endpoint in use: logs once per outage, moves to
 * the next endpoint and schedules a reconnect with exponential backoff. */
static void ec_fail(struct ec *e, const char *what)
{
    if (e->stopped) return;
    if (!e->failing)
        e->host->log(RELAIS_LOG_ERROR, e->who,
                     "%s: %s; retrying (other endpoints too), the last configuration keeps serving",
                     e->endpoints[e->cur], what);
    else
        e->host->log(RELAIS_LOG_DEBUG, e->who, "%s: %s", e->endpoints[e->cur], what);
    e->failing = 1;
    e->phase = EC_IDLE;
    if (e->hcall) {
        e->host->http_cancel(e->hcall);
        e->hcall = NULL;
    }
    if (e->health) e->host->timer_stop(e->health);
    e->cur = (e->cur + 1) % e->nendpoints;
    e->host->timer_start(e->retry, e->backoff);
    e->backoff *= 2;
    if (e->backoff > EC_BACKOFF_MAX) e->backoff = EC_BACKOFF_MAX;
}

/* The endpoint answered properly (a list, or a watch created): end of an
 * outage; the token in use, if any, is known good. */
static void ec_success(struct ec *e)
{
    e->backoff = EC_BACKOFF_MIN;
    e->token_ok = e->token != NULL;
    if (e->failing)
        e->host->log(RELAIS_LOG_INFO, e->who, "%s: reachable again", e->endpoints[e->cur]);
    e->failing = 0;
}

/* Drops the auth token (the server rejected it: expired, revoked, or the
 * member restarted and forgot it); the next connection authenticates
 * again.  A token that had served answers means the server is up: the
 * retry comes at once (backoff reset).  A fresh token rejected keeps the
 * backoff growing, so a server that refuses every token is not hammered. */
static void ec_drop_token(struct ec *e)
{
    if (!e->token) return;
    if (e->token_ok) e->backoff = EC_BACKOFF_MIN;
    free(e->token);
    e->token = NULL;
    e->token_ok = 0;
}

/* Describes an error body ({"error":..,"message":..}) into out. */
static void ec_err_text(struct ec *e, char *out, size_t outlen)
{
    json_t *j;
    char *msg = NULL;

    snprintf(out, outlen, "status %d", e->status);
    if (e->too_big || !(j = ec_json_parse(e->buf, e->len))) return;
    msg = ec_j_str(json_object_get(j, "message"));
    if (!msg) msg = ec_j_str(json_object_get(j, "error"));
    if (msg) snprintf(out, outlen, "status %d: %.200s", e->status, msg);
    free(msg);
    json_decref(j);
}

/* Applies one item of a kv list: a kv object (range) or an event
 * ({"type":..,"kv":{..}}, is_events; "type":"DELETE" deletes).  Tracks the
 * revision of events.  0 (applied or skipped with a warning), or -1 on
 * malformed content or when the map is full. */
static int ec_apply_kv(struct ec *e, const json_t *item, int is_events)
{
    const json_t *kv = is_events ? json_object_get(item, "kv") : item;
    int del = 0;
    int64_t mr;
    char *kb, *key, *vb, *val;

    if (is_events) {
        char *type = ec_j_str(json_object_get(item, "type"));
        del = type && !strcmp(type, "DELETE");
        free(type);
    }
    if (!json_is_object(kv)) return -1;
    if (ec_j_int(json_object_get(kv, "mod_revision"), &mr) == 0 && mr > e->rev && is_events)
        e->rev = mr;
    kb = ec_j_str(json_object_get(kv, "key"));
    if (!kb) return -1;
    key = ec_b64dec(kb);
    free(kb);
    if (!key) {
        e->host->log(RELAIS_LOG_WARN, e->who, "a key that is not valid base64 text is ignored");
        return 0;
    }
    if (del) {
        ec_map_del(e, key);
        free(key);
        return 0;
    }
    vb = ec_j_str(json_object_get(kv, "value"));
    val = vb ? ec_b64dec(vb) : strdup(""); /* an empty value is omitted */
    free(vb);
    if (!val) {
        e->host->log(RELAIS_LOG_WARN, e->who, "%s: value is not text, ignored", key);
        free(key);
        return 0;
    }
    if (ec_map_put(e, key, val) < 0) {
        e->host->log(RELAIS_LOG_ERROR, e->who, "too many keys (cap %u) or out of memory",
                     EC_MAX_KEYS);
        return -1;
    }
    return 0;
}

/* Applies a kv list from a range response ("kvs") or a watch message
 * ("events"): the items of an array, or the values of an object, in order;
 * NULL or a scalar is an empty list.  0, or -1 at the first item
 * ec_apply_kv refuses (the items before it stay applied). */
static int ec_apply_kvs(struct ec *e, const json_t *list, int is_events)
{
    const char *k;
    json_t *item;
    size_t i;

    if (json_is_array(list)) {
        json_array_foreach(list, i, item)
            if (ec_apply_kv(e, item, is_events) < 0) return -1;
    } else if (json_is_object(list)) {
        json_object_foreach((json_t *)list, k, item)
            if (ec_apply_kv(e, item, is_events) < 0) return -1;
    }
    return 0;
}

/* Handles one watch message (a whole JSON object).  0, or -1 when the
 * stream must be dropped (e->need_list set when a re-list is needed). */
static int ec_watch_msg(struct ec *e, const char *s, size_t n)
{
    json_t *j, *res, *evs;
    int rc = -1;
    int64_t v;

    if (!(j = ec_json_parse(s, n))) {
        ec_fail(e, "watch: malformed message");
        return -1;
    }
    res = json_object_get(j, "result");
    if (!res) {
        char *msg = ec_j_str(json_object_get(json_object_get(j, "error"), "message"));
        char what[300];
        snprintf(what, sizeof(what), "watch error: %.200s", msg ? msg : "(no result)");
        free(msg);
        ec_drop_token(e); /* maybe expired: authenticate again */
        ec_fail(e, what);
        goto done;
    }
    if (ec_j_int(json_object_get(res, "compact_revision"), &v) == 0 && v > 0) {
        e->host->log(RELAIS_LOG_WARN, e->who,
                     "revision %lld was compacted (oldest %lld): listing again",
                     (long long)e->rev + 1, (long long)v);
        e->need_list = 1;
        e->phase = EC_IDLE;
        e->host->timer_start(e->retry, 0);
        goto done;
    }
    if (json_is_true(json_object_get(res, "canceled"))) {
        char *why = ec_j_str(json_object_get(res, "cancel_reason"));
        char what[300];
        snprintf(what, sizeof(what), "watch canceled by the server: %.200s",
                 why ? why : "no reason given");
        if (why && (strstr(why, "token") || strstr(why, "Unauthenticated"))) {
            ec_drop_token(e); /* expired or revoked: authenticate again */
        }
        free(why);
        ec_fail(e, what);
        goto done;
    }
    if (json_is_true(json_object_get(res, "created"))) {
        e->watch_ok = 1;
        ec_success(e);
        e->host->timer_start(e->health, EC_HEALTH_MS);
        e->host->log(RELAIS_LOG_DEBUG, e->who, "%s: watching from revision %lld",
                     e->endpoints[e->cur], (long long)e->rev + 1);
    }
    evs = json_object_get(res, "events");
    if (json_array_size(evs) > 0 || json_object_size(evs) > 0) {
        if (ec_apply_kvs(e, evs, 1) < 0) {
            e->need_list = 1;
            ec_fail(e, "watch: bad event");
            goto done;
        }
        if (!e->pub_pending) {
            e->pub_pending = 1;
            e->host->timer_start(e->debounce, EC_DEBOUNCE_MS);
        }
    }
    rc = 0;
done:
    json_decref(j);
    return rc;
}

/* Response head. */
static void ec_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct ec *e = arg;

    (void)headers;
    e->status = status;
    ec_buf_reset(e);
}

/* Body bytes.  For the watch stream, complete top-level JSON objects are
 * cut out (brace depth outside strings) and handled at once. */
static void ec_on_data(void *arg, const char *data, size_t len)
{
    struct ec *e = arg;

    ec_buf_add(e, data, len);
    if (e->phase != EC_WATCH || e->status != 200 || e->stream_err) return;
    if (e->too_big) {
        e->stream_err = 1;
        ec_fail(e, "watch: message over 64 MiB");
        if (e->call) {
            e->host->http_cancel(e->call);
            e->call = NULL;
        }
        return;
    }
    while (e->scan < e->len) {
        char c = e->buf[e->scan++];
        if (e->in_str) {
            if (e->esc) e->esc = 0;
            else if (c == '\\') e->esc = 1;
            else if (c == '"') e->in_str = 0;
            continue;
        }
        if (c == '"') e->in_str = 1;
        else if (c == '{' || c == '[') e->depth++;
        else if ((c == '}' || c == ']') && --e->depth == 0) {
            size_t start = 0, end = e->scan;
            while (start < end && e->buf[start] != '{' && e->buf[start] != '[') start++;
            if (ec_watch_msg(e, e->buf + start, end - start) < 0) {
                /* ec_watch_msg scheduled the reconnect */
                e->stream_err = 1;
                if (e->call) {
                    e->host->http_cancel(e->call);
                    e->call = NULL;
                }
                return;
            }
            memmove(e->buf, e->buf + end, e->len - end);
            e->len -= end;
            e->scan = 0;
        }
    }
}

/* Handles a finished kv/range response. */
static void ec_list_done(struct ec *e)
{
    json_t *j;
    int64_t rev = 0;

    if (!(j = ec_json_parse(e->buf, e->len))) {
        ec_fail(e, "range: malformed response");
        return;
    }
    if (ec_j_int(json_object_get(json_object_get(j, "header"), "revision"), &rev) < 0) {
        json_decref(j);
        ec_fail(e, "range: no revision in the response");
        return;
    }
    ec_map_clear(e);
    if (ec_apply_kvs(e, json_object_get(j, "kvs"), 0) < 0) {
        json_decref(j);
        ec_fail(e, "range: bad key/value");
        return;
    }
    json_decref(j);
    e->rev = rev;
    e->need_list = 0;
    ec_success(e);
    e->host->log(RELAIS_LOG_INFO, e->who, "%s: %zu keys under %s/ at revision %lld",
                 e->endpoints[e->cur], e->npairs, e->root, (long long)rev);
    if (e->pub_pending) e->host->timer_stop(e->debounce);
    ec_publish(e);
    e->phase = EC_WATCH;
    ec_connect(e);
}

/* Handles a finished auth/authenticate response. */
static void ec_auth_done(struct ec *e)
{
    json_t *j;

    if (!(j = ec_json_parse(e->buf, e->len))) {
        ec_fail(e, "authenticate: malformed response");
        return;
    }
    free(e->token);
    e->token = ec_j_str(json_object_get(j, "token"));
    e->token_ok = 0;
    json_decref(j);
    if (!e->token) {
        ec_fail(e, "authenticate: no token in the response");
        return;
    }
    e->phase = e->next_phase;
    ec_connect(e);
}

/* End of a call. */
static void ec_on_done(void *arg, int error, const char *message)
{
    struct ec *e = arg;
    char what[300];

    e->call = NULL;
    if (e->stopped) return;
    if (e->phase == EC_WATCH && e->stream_err) return; /* already handled */
    if (error) {
        snprintf(what, sizeof(what), "%s", message ? message : "request failed");
        ec_fail(e, what);
    } else if (e->status != 200) {
        ec_err_text(e, what, sizeof(what));
        if (e->status == 401 || strstr(what, "token")) ec_drop_token(e);
        ec_fail(e, what);
    } else if (e->too_big) {
        ec_fail(e, "response over 64 MiB");
    } else if (e->phase == EC_AUTH) {
        ec_auth_done(e);
    } else if (e->phase == EC_LIST) {
        ec_list_done(e);
    } else {
        ec_fail(e, "watch stream ended");
    }
}

/* Liveness check head: remember the status. */
static void ec_h_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct ec *e = arg;

    (void)headers;
    e->hstatus = status;
}

/* Liveness check end: a member that cannot serve a linearizable read (down,
 * hung, no quorum) loses the watch, which moves to the next endpoint. */
static void ec_h_on_done(void *arg, int error, const char *message)
{
    struct ec *e = arg;
    char what[300];

    e->hcall = NULL;
    if (e->stopped || e->phase != EC_WATCH) return;
    if (!error && e->hstatus == 200) {
        e->host->timer_start(e->health, EC_HEALTH_MS);
        return;
    }
    if (error) snprintf(what, sizeof(what), "liveness check: %.200s", message ? message : "failed");
    else snprintf(what, sizeof(what), "liveness check: status %d", e->hstatus);
    if (e->call) {
        e->host->http_cancel(e->call);
        e->call = NULL;
    }
    ec_fail(e, what);
}

/* Fills the TLS fields of req from the tls options (borrowed pointers:
 * they live as long as e).  Only on a host of ABI 1.2 or later, whose
 * request struct has them (ec_create refuses tls on an older host). */
static void ec_req_tls(const struct ec *e, relais_http_req *req)
{
    if (!RELAIS_HOST_ABI_AT_LEAST(e->host, 1, 2)) return;
    pvt_apply(&e->tls, req);
}

/* Health timer: a one-key, keys-only linearizable range on the endpoint in
 * use (needs the member to be in a quorum). */
static void ec_health_cb(void *arg)
{
    static const relais_http_callbacks hcb = {sizeof(relais_http_callbacks), ec_h_on_response,
                                              NULL, ec_h_on_done};
    struct ec *e = arg;
    relais_http_req req;
    relais_header hdr;
    char url[600], *body = NULL;

    if (e->stopped || e->phase != EC_WATCH || !e->call || e->hcall) return;
    if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\",\"limit\":\"1\",\"keys_only\":true}",
                 e->key_b64, e->end_b64) < 0)
        return;
    snprintf(url, sizeof(url), "%s/v3/kv/range", e->endpoints[e->cur]);
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "POST";
    req.url = url;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout_ms = EC_HEALTH_TIMEOUT;
    ec_req_tls(e, &req);
    if (e->token) {
        hdr.name = "Authorization";
        hdr.value = e->token;
        req.headers = &hdr;
        req.nheaders = 1;
    }
    e->hstatus = 0;
    e->hcall = e->host->http_request(&req, &hcb, e);
    free(body);
    if (!e->hcall) e->host->timer_start(e->health, EC_HEALTH_MS);
}

/* Starts the call for e->phase (EC_LIST or EC_WATCH; authenticates first
 * when a user is configured and no token is held) on the current endpoint.
 * Failures go through ec_fail. */
static void ec_connect(struct ec *e)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), ec_on_response,
                                             ec_on_data, ec_on_done};
    relais_http_req req;
    relais_header hdr;
    char url[600];
    char *body = NULL;
    const char *path;

    if (e->stopped) return;
    if (e->call) {
        e->host->http_cancel(e->call);
        e->call = NULL;
    }
    if (e->hcall) {
        e->host->http_cancel(e->hcall);
        e->hcall = NULL;
    }
    e->host->timer_stop(e->health);
    if (e->need_list) e->phase = EC_LIST;
    if (e->username && !e->token && e->phase != EC_AUTH) {
        e->next_phase = e->phase;
        e->phase = EC_AUTH;
    }
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "POST";
    req.timeout_ms = EC_CALL_TIMEOUT;
    if (e->phase == EC_AUTH) {
        body = ec_auth_body(e->username, e->password ? e->password : "");
        path = "/v3/auth/authenticate";
    } else if (e->phase == EC_LIST) {
        if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\"}", e->key_b64, e->end_b64) < 0)
            body = NULL;
        path = "/v3/kv/range";
    } else {
        if (asprintf(&body,
                     "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
                     "\"start_revision\":\"%lld\"}}",
                     e->key_b64, e->end_b64, (long long)e->rev + 1) < 0)
            body = NULL;
        path = "/v3/watch";
        req.timeout_ms = 0; /* a stream */
    }
    if (!body) {
        ec_fail(e, e->phase == EC_AUTH ? "authenticate: username or password not UTF-8 text"
                                       : "out of memory");
        return;
    }
    snprintf(url, sizeof(url), "%s%s", e->endpoints[e->cur], path);
    req.url = url;
    req.body = body;
    req.body_len = strlen(body);
    ec_req_tls(e, &req);
    if (e->token && e->phase != EC_AUTH) {
        hdr.name = "Authorization";
        hdr.value = e->token;
        req.headers = &hdr;
        req.nheaders = 1;
    }
    e->status = 0;
    e->watch_ok = 0;
    e->stream_err = 0;
    ec_buf_reset(e);
    e->call = e->host->http_request(&req, &cb, e);
    free(body);
    if (!e->call) ec_fail(e, "cannot start a request (invalid endpoint?)");
}

/* Retry timer: connect again (list or watch as needed). */
static void ec_retry_cb(void *arg)
{
    struct ec *e = arg;

    if (e->stopped || e->call) return;
    if (e->phase == EC_IDLE || e->phase == EC_AUTH) e->phase = e->need_list ? EC_LIST : EC_WATCH;
    ec_connect(e);
}

/* Frees an instance (control thread). */
static void ec_destroy(void *inst)
{
    struct ec *e = inst;

    if (!e) return;
    if (e->call) e->host->http_cancel(e->call);
    if (e->hcall) e->host->http_cancel(e->hcall);
    e->host->timer_free(e->health);
    e->host->timer_free(e->retry);
    e->host->timer_free(e->debounce);
    for (size_t i = 0; i < e->nendpoints; i++) free(e->endpoints[i]);
    ec_map_clear(e);
    free(e->pairs);
    free(e->root);
    free(e->key_b64);
    free(e->end_b64);
    free(e->username);
    free(e->password);
    free(e->token);
    pvt_free(&e->tls);
    free(e->buf);
    free(e);
}

/* Validates and stores one endpoint ("host:port", "http://host:port" or
 * "https://host:port"; a bare host:port is https when a tls block was
 * given, so e->tls must be read before).  0, or -1 after cfg_error on
 * node.key. */
static int ec_add_endpoint(struct ec *e, const relais_cfg *node, const char *key, const char *s)
{
    const char *hp = s, *scheme = e->tls.present ? "https" : "http";
    char *u;

    if (!strncmp(s, "https://", 8)) {
        hp += 8;
        scheme = "https";
    } else if (!strncmp(s, "http://", 7)) {
        hp += 7;
        scheme = "http";
    }
    if (!*hp || strchr(hp, '/') || strchr(hp, ' ') || strstr(hp, "://") || strlen(hp) > 256) {
        e->host->cfg_error(node, key, "\"%s\": expected host:port", s);
        return -1;
    }
    if (scheme[4] == 's' && !RELAIS_HOST_ABI_AT_LEAST(e->host, 1, 2)) {
        e->host->cfg_error(node, key, "\"%s\": https needs a relais with ABI 1.2", s);
        return -1;
    }
    if (e->nendpoints >= EC_MAX_ENDPOINTS) {
        e->host->cfg_error(node, key, "at most %d endpoints", EC_MAX_ENDPOINTS);
        return -1;
    }
    if (asprintf(&u, "%s://%s", scheme, hp) < 0) return -1;
    e->endpoints[e->nendpoints++] = u;
    return 0;
}

/* Control thread: validates the options (errors through cfg_error naming
 * the key) and builds an idle instance in *inst.  0, or -1 with nothing
 * left allocated. */
static int ec_create(const relais_host *host, const relais_cfg *cfg, relais_provider *prov,
                     void **inst)
{
    struct ec *e = calloc(1, sizeof(*e));
    const relais_cfg *eps;
    const char *s;
    int bad = 0, rc;

    if (!e) return -1;
    e->host = host;
    e->prov = prov;
    snprintf(e->who, sizeof(e->who), "provider %s",
             host->provider_name(prov) ? host->provider_name(prov) : "etcd");
    e->backoff = EC_BACKOFF_MIN;
    if (!RELAIS_HOST_HAS(host, http_request) || !RELAIS_HOST_HAS(host, provider_publish_kv)) {
        host->cfg_error(cfg, NULL, "this relais lacks the HTTP client / KV publishing (ABI 1.1)");
        bad = 1;
    }
    if (pvt_read(host, cfg, &e->tls) < 0) bad = 1; /* first: it decides host:port's scheme */
    eps = host->cfg_get(cfg, "endpoints");
    if (eps && host->cfg_type(eps) == RELAIS_CFG_LIST) {
        size_t n = host->cfg_len(eps);
        if (n == 0) {
            host->cfg_error(cfg, "endpoints", "expected at least one endpoint");
            bad = 1;
        }
        for (size_t i = 0; i < n; i++) {
            if (host->cfg_string(host->cfg_at(eps, i, NULL), NULL, &s) != RELAIS_CFG_OK) {
                host->cfg_error(cfg, "endpoints", "item %zu: expected a string host:port", i);
                bad = 1;
                continue;
            }
            if (ec_add_endpoint(e, cfg, "endpoints", s) < 0) bad = 1;
        }
    } else if (eps && host->cfg_type(eps) == RELAIS_CFG_STRING) {
        /* one string, or a comma list as Traefik's CLI flags write it */
        char *dup, *tok, *save = NULL;
        host->cfg_string(cfg, "endpoints", &s);
        dup = strdup(s);
        for (tok = dup ? strtok_r(dup, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
            if (ec_add_endpoint(e, cfg, "endpoints", tok) < 0) bad = 1;
        free(dup);
        if (!e->nendpoints && !bad) {
            host->cfg_error(cfg, "endpoints", "expected at least one endpoint");
            bad = 1;
        }
    } else if (eps && host->cfg_type(eps) != RELAIS_CFG_NULL) {
        host->cfg_error(cfg, "endpoints", "expected a list of host:port");
        bad = 1;
    } else if (ec_add_endpoint(e, cfg, "endpoints", "127.0.0.1:2379") < 0) {
        bad = 1;
    }
    rc = host->cfg_string(cfg, "rootKey", &s);
    if (rc == RELAIS_CFG_OK) {
        size_t l = strlen(s);
        while (l > 0 && s[l - 1] == '/') l--;
        if (l == 0) {
            host->cfg_error(cfg, "rootKey", "expected a non-empty key prefix");
            bad = 1;
        }
        e->root = strndup(s, l);
    } else if (rc == RELAIS_CFG_MISSING) {
        e->root = strdup("traefik");
    } else {
        bad = 1;
    }
    rc = host->cfg_string(cfg, "username", &s);
    if (rc == RELAIS_CFG_OK && *s) e->username = strdup(s);
    else if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_string(cfg, "password", &s);
    if (rc == RELAIS_CFG_OK) e->password = strdup(s);
    else if (rc == RELAIS_CFG_INVALID) bad = 1;
    if (e->password && *e->password && !e->username) {
        host->cfg_error(cfg, "password", "given without username");
        bad = 1;
    }
    for (size_t i = 0; i < host->cfg_len(cfg); i++) {
        const char *k;
        host->cfg_at(cfg, i, &k);
        if (k && strcasecmp(k, "endpoints") && strcasecmp(k, "rootKey") &&
            strcasecmp(k, "username") && strcasecmp(k, "password") && strcasecmp(k, "tls") &&
            strcasecmp(k, "type")) { /* type: a named instance's (control.c) */
            host->cfg_error(cfg, k, "unknown option");
            bad = 1;
        }
    }
    if (!bad && e->root) {
        char *pfx = NULL;
        if (asprintf(&pfx, "%s/", e->root) >= 0) {
            size_t l = strlen(pfx);
            e->key_b64 = ec_b64enc(pfx, l);
            pfx[l - 1]++; /* '/' + 1 = '0': the end of the prefix range */
            e->end_b64 = ec_b64enc(pfx, l);
            free(pfx);
        }
        if (!e->key_b64 || !e->end_b64) bad = 1;
    }
    if (bad) {
        ec_destroy(e);
        return -1;
    }
    *inst = e;
    return 0;
}

/* Control thread: creates the timers and starts the first list; the
 * outcome arrives asynchronously.  0, or -1 when a timer cannot be made. */
static int ec_start(void *inst)
{
    struct ec *e = inst;

    e->retry = e->host->timer_new(ec_retry_cb, e);
    e->debounce = e->host->timer_new(ec_debounce_cb, e);
    e->health = e->host->timer_new(ec_health_cb, e);
    if (!e->retry || !e->debounce || !e->health) return -1;
    e->need_list = 1;
    e->phase = EC_LIST;
    ec_connect(e);
    return 0;
}

/* Control thread (SIGHUP): drops the call in flight and lists again. */
static void ec_reload(void *inst)
{
    struct ec *e = inst;

    if (e->stopped || !e->retry) return;
    e->host->timer_stop(e->retry);
    e->need_list = 1;
    e->phase = EC_LIST;
    ec_connect(e);
}

/* Control thread: cancels calls and timers; nothing is published after. */
static void ec_stop(void *inst)
{
    struct ec *e = inst;

    e->stopped = 1;
    if (e->call) {
        e->host->http_cancel(e->call);
        e->call = NULL;
    }
    if (e->hcall) {
        e->host->http_cancel(e->hcall);
        e->hcall = NULL;
    }
    if (e->retry) e->host->timer_stop(e->retry);
    if (e->debounce) e->host->timer_stop(e->debounce);
    if (e->health) e->host->timer_stop(e->health);
    e->pub_pending = 0;
}

static const relais_provider_ops ec_ops = {
    sizeof(relais_provider_ops), ec_create, ec_start, NULL, ec_reload, ec_stop, ec_destroy,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_PROVIDER,
    "etcd",
    "1.0.0",
    "etcd",
    "reads the dynamic configuration from etcd v3 (watched)",
    NULL,
    NULL,
    &ec_ops,
};
