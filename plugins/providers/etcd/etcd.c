/*
 * etcd — provider plugin reading the dynamic configuration from etcd v3
 * (Traefik's etcd provider: config key "etcd"; options endpoints
 * (["127.0.0.1:2379"]), rootKey ("traefik"), username/password; tls is
 * refused for now).  Module prefix: ec_.
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
 * Everything runs on the control thread; nothing blocks.  Built only
 * against the SDK header; the JSON reader and base64 decoder are local.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <relais/plugin.h>

#define EC_WHO "provider etcd"
#define EC_MAX_ENDPOINTS 32            /* endpoints option cap */
#define EC_MAX_BODY (64u << 20)        /* response / message cap: 64 MiB */
#define EC_MAX_KEYS 1000000u           /* keys kept in memory */
#define EC_MAX_NODES (16u << 20)       /* JSON nodes per document */
#define EC_MAX_DEPTH 64                /* JSON nesting cap */
#define EC_BACKOFF_MIN 100             /* first retry delay, ms */
#define EC_BACKOFF_MAX 5000            /* longest retry delay, ms */
#define EC_DEBOUNCE_MS 50              /* event burst → one publish */
#define EC_CALL_TIMEOUT 5000           /* range / auth call timeout, ms */
#define EC_HEALTH_MS 3000              /* liveness check period while watching */
#define EC_HEALTH_TIMEOUT 2000         /* liveness check timeout, ms */

/* ======================================================================
 * Minimal strict JSON reader: parses a whole document into a flat node
 * array (objects and arrays link their children).  Bounded by EC_MAX_NODES
 * and EC_MAX_DEPTH.
 * ==================================================================== */

/** JSON node types. */
enum ec_jtype { EC_J_NULL, EC_J_BOOL, EC_J_NUM, EC_J_STR, EC_J_ARR, EC_J_OBJ };

/** One JSON value (for object members: the value; key holds the name). */
struct ec_jnode {
    int type;       /* enum ec_jtype */
    size_t off;     /* start in the text (strings: after the quote) */
    size_t len;     /* length in the text (strings: raw, without quotes) */
    size_t key_off; /* object member: raw key start (after the quote) */
    size_t key_len; /* object member: raw key length; 0 otherwise */
    int first;      /* first child index, -1 when none */
    int next;       /* next sibling index, -1 when none */
};

/** A parsed document. */
struct ec_json {
    const char *s;          /* the text (not owned) */
    size_t n;               /* its length */
    size_t pos;             /* parse position */
    struct ec_jnode *nodes; /* node array; nodes[0] is the root */
    size_t count;           /* nodes used */
    size_t cap;             /* nodes allocated */
};

/* Skips JSON whitespace. */
static void ec_j_ws(struct ec_json *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                             j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* Appends a node; its index, or -1 when the cap is reached / no memory. */
static int ec_j_node(struct ec_json *j, int type)
{
    if (j->count >= j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 64;
        struct ec_jnode *nn;
        if (nc > EC_MAX_NODES) nc = EC_MAX_NODES;
        if (j->count >= nc) return -1;
        nn = realloc(j->nodes, nc * sizeof(*nn));
        if (!nn) return -1;
        j->nodes = nn;
        j->cap = nc;
    }
    memset(&j->nodes[j->count], 0, sizeof(j->nodes[0]));
    j->nodes[j->count].type = type;
    j->nodes[j->count].first = -1;
    j->nodes[j->count].next = -1;
    return (int)j->count++;
}

/* Scans a string at pos (on the quote); sets raw offset/length.  Validates
 * escapes and rejects control characters.  0 or -1. */
static int ec_j_string(struct ec_json *j, size_t *off, size_t *len)
{
    size_t p = j->pos + 1;

    *off = p;
    while (p < j->n) {
        unsigned char c = (unsigned char)j->s[p];
        if (c == '"') {
            *len = p - *off;
            j->pos = p + 1;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            if (p + 1 >= j->n) return -1;
            c = (unsigned char)j->s[p + 1];
            if (c == 'u') {
                for (int k = 2; k < 6; k++) {
                    char h = p + (size_t)k < j->n ? j->s[p + (size_t)k] : 0;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return -1;
                }
                p += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0) return -1;
            p += 2;
            continue;
        }
        p++;
    }
    return -1;
}

/* Parses one value at pos (depth for the nesting cap); its node index or
 * -1 on a syntax error / cap. */
static int ec_j_value(struct ec_json *j, int depth)
{
    int idx, prev = -1;
    char c;

    if (depth > EC_MAX_DEPTH) return -1;
    ec_j_ws(j);
    if (j->pos >= j->n) return -1;
    c = j->s[j->pos];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        idx = ec_j_node(j, obj ? EC_J_OBJ : EC_J_ARR);
        if (idx < 0) return -1;
        j->nodes[idx].off = j->pos++;
        ec_j_ws(j);
        if (j->pos < j->n && j->s[j->pos] == (obj ? '}' : ']')) {
            j->pos++;
            return idx;
        }
        for (;;) {
            size_t koff = 0, klen = 0;
            int child;
            ec_j_ws(j);
            if (obj) {
                if (j->pos >= j->n || j->s[j->pos] != '"') return -1;
                if (ec_j_string(j, &koff, &klen) < 0) return -1;
                ec_j_ws(j);
                if (j->pos >= j->n || j->s[j->pos] != ':') return -1;
                j->pos++;
            }
            child = ec_j_value(j, depth + 1);
            if (child < 0) return -1;
            j->nodes[child].key_off = koff;
            j->nodes[child].key_len = klen;
            if (prev < 0) j->nodes[idx].first = child;
            else j->nodes[prev].next = child;
            prev = child;
            ec_j_ws(j);
            if (j->pos >= j->n) return -1;
            if (j->s[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->s[j->pos] == (obj ? '}' : ']')) {
                j->pos++;
                return idx;
            }
            return -1;
        }
    }
    if (c == '"') {
        idx = ec_j_node(j, EC_J_STR);
        if (idx < 0) return -1;
        if (ec_j_string(j, &j->nodes[idx].off, &j->nodes[idx].len) < 0) return -1;
        return idx;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t wl = strlen(w);
        if (j->n - j->pos < wl || memcmp(j->s + j->pos, w, wl)) return -1;
        idx = ec_j_node(j, c == 'n' ? EC_J_NULL : EC_J_BOOL);
        if (idx < 0) return -1;
        j->nodes[idx].off = j->pos;
        j->nodes[idx].len = wl;
        j->pos += wl;
        return idx;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t p = j->pos;
        if (j->s[p] == '-') p++;
        if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return -1;
        if (j->s[p] == '0') p++;
        else while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
        if (p < j->n && j->s[p] == '.') {
            p++;
            if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return -1;
            while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
        }
        if (p < j->n && (j->s[p] == 'e' || j->s[p] == 'E')) {
            p++;
            if (p < j->n && (j->s[p] == '+' || j->s[p] == '-')) p++;
            if (p >= j->n || j->s[p] < '0' || j->s[p] > '9') return -1;
            while (p < j->n && j->s[p] >= '0' && j->s[p] <= '9') p++;
        }
        idx = ec_j_node(j, EC_J_NUM);
        if (idx < 0) return -1;
        j->nodes[idx].off = j->pos;
        j->nodes[idx].len = p - j->pos;
        j->pos = p;
        return idx;
    }
    return -1;
}

/* Parses s[0..n) into j (j->nodes owned by j: ec_json_free).  The whole text
 * must be one value.  0, or -1 with nothing left to free. */
static int ec_json_parse(struct ec_json *j, const char *s, size_t n)
{
    memset(j, 0, sizeof(*j));
    if (n > EC_MAX_BODY) return -1;
    j->s = s;
    j->n = n;
    if (ec_j_value(j, 0) == 0) {
        ec_j_ws(j);
        if (j->pos == j->n) return 0;
    }
    free(j->nodes);
    j->nodes = NULL;
    return -1;
}

/* Frees the node array of a parsed document. */
static void ec_json_free(struct ec_json *j)
{
    free(j->nodes);
    j->nodes = NULL;
}

/* Member `key` of object node idx (raw key compare: our keys need no
 * escapes), or -1. */
static int ec_j_get(const struct ec_json *j, int idx, const char *key)
{
    size_t kl = strlen(key);

    if (idx < 0 || j->nodes[idx].type != EC_J_OBJ) return -1;
    for (int c = j->nodes[idx].first; c >= 0; c = j->nodes[c].next)
        if (j->nodes[c].key_len == kl && !memcmp(j->s + j->nodes[c].key_off, key, kl)) return c;
    return -1;
}

/* Integer value of node idx: a JSON number or a string of digits (etcd
 * writes int64 as strings).  0 or -1. */
static int ec_j_int(const struct ec_json *j, int idx, int64_t *out)
{
    const struct ec_jnode *nd;
    int64_t v = 0;

    if (idx < 0) return -1;
    nd = &j->nodes[idx];
    if ((nd->type != EC_J_NUM && nd->type != EC_J_STR) || nd->len == 0 || nd->len > 18) return -1;
    for (size_t i = 0; i < nd->len; i++) {
        char c = j->s[nd->off + i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

/* 1 when node idx is the literal true. */
static int ec_j_true(const struct ec_json *j, int idx)
{
    return idx >= 0 && j->nodes[idx].type == EC_J_BOOL && j->s[j->nodes[idx].off] == 't';
}

/* Value of a hex digit (validated by the parser). */
static unsigned ec_hex(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* Decodes string node idx (escapes, \u to UTF-8) into a new NUL-terminated
 * string (caller frees), or NULL when not a string / no memory. */
static char *ec_j_str(const struct ec_json *j, int idx)
{
    const struct ec_jnode *nd;
    char *out;
    size_t o = 0;

    if (idx < 0 || j->nodes[idx].type != EC_J_STR) return NULL;
    nd = &j->nodes[idx];
    out = malloc(nd->len + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < nd->len;) {
        const char *p = j->s + nd->off + i;
        if (*p != '\\') {
            out[o++] = *p;
            i++;
            continue;
        }
        if (p[1] != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            out[o++] = to[strchr(from, p[1]) - from];
            i += 2;
            continue;
        }
        {
            unsigned cp = ec_hex(p[2]) << 12 | ec_hex(p[3]) << 8 | ec_hex(p[4]) << 4 | ec_hex(p[5]);
            i += 6;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= nd->len && p[6] == '\\' && p[7] == 'u') {
                unsigned lo = ec_hex(p[8]) << 12 | ec_hex(p[9]) << 8 | ec_hex(p[10]) << 4 | ec_hex(p[11]);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            /* 6 raw bytes always hold the UTF-8 form (at most 4 bytes) */
            if (cp < 0x80) out[o++] = (char)cp;
            else if (cp < 0x800) {
                out[o++] = (char)(0xc0 | cp >> 6);
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                out[o++] = (char)(0xe0 | cp >> 12);
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[o++] = (char)(0xf0 | cp >> 18);
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            }
        }
    }
    out[o] = 0;
    return out;
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

/* Writes s as a JSON string literal (quotes, escapes) into a new string. */
static char *ec_jquote(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n * 6 + 3);

    if (!out) return NULL;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = 0;
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
    const relais_host *host;    /* host table */
    relais_provider *prov;      /* our handle */
    char *endpoints[EC_MAX_ENDPOINTS]; /* base URLs "http://host:port" */
    size_t nendpoints;          /* how many */
    size_t cur;                 /* endpoint in use */
    char *root;                 /* rootKey */
    char *key_b64;              /* base64 of "ROOT/" */
    char *end_b64;              /* base64 of the prefix end "ROOT0" */
    char *username;             /* etcd user, or NULL */
    char *password;             /* its password */
    char *token;                /* auth token, or NULL */
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
        e->host->log(RELAIS_LOG_ERROR, EC_WHO, "out of memory publishing %zu keys", e->npairs);
        return;
    }
    for (size_t i = 0; i < e->npairs; i++) {
        kv[i].key = e->pairs[i].key;
        kv[i].value = e->pairs[i].val;
    }
    e->host->log(RELAIS_LOG_DEBUG, EC_WHO, "publishing %zu keys (revision %lld)", e->npairs,
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
        e->host->log(RELAIS_LOG_ERROR, EC_WHO,
                     "%s: %s; retrying (other endpoints too), the last configuration keeps serving",
                     e->endpoints[e->cur], what);
    else
        e->host->log(RELAIS_LOG_DEBUG, EC_WHO, "%s: %s", e->endpoints[e->cur], what);
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

/* The endpoint answered properly: end of an outage. */
static void ec_success(struct ec *e)
{
    e->backoff = EC_BACKOFF_MIN;
    if (e->failing)
        e->host->log(RELAIS_LOG_INFO, EC_WHO, "%s: reachable again", e->endpoints[e->cur]);
    e->failing = 0;
}

/* Describes an error body ({"error":..,"message":..}) into out. */
static void ec_err_text(struct ec *e, char *out, size_t outlen)
{
    struct ec_json j;
    char *msg = NULL;

    snprintf(out, outlen, "status %d", e->status);
    if (e->too_big || ec_json_parse(&j, e->buf, e->len) < 0) return;
    msg = ec_j_str(&j, ec_j_get(&j, 0, "message"));
    if (!msg) msg = ec_j_str(&j, ec_j_get(&j, 0, "error"));
    if (msg) snprintf(out, outlen, "status %d: %.200s", e->status, msg);
    free(msg);
    ec_json_free(&j);
}

/* Applies a kv list (array node) from a range response or events.  For
 * events (is_events) handles "type":"DELETE".  Tracks the revision.
 * 0, or -1 on malformed content. */
static int ec_apply_kvs(struct ec *e, const struct ec_json *j, int arr, int is_events)
{
    for (int c = arr >= 0 ? j->nodes[arr].first : -1; c >= 0; c = j->nodes[c].next) {
        int kvn = is_events ? ec_j_get(j, c, "kv") : c;
        int del = 0;
        int64_t mr;
        char *kb, *key, *vb, *val;

        if (is_events) {
            char *type = ec_j_str(j, ec_j_get(j, c, "type"));
            del = type && !strcmp(type, "DELETE");
            free(type);
        }
        if (kvn < 0) return -1;
        if (ec_j_int(j, ec_j_get(j, kvn, "mod_revision"), &mr) == 0 && mr > e->rev && is_events)
            e->rev = mr;
        kb = ec_j_str(j, ec_j_get(j, kvn, "key"));
        if (!kb) return -1;
        key = ec_b64dec(kb);
        free(kb);
        if (!key) {
            e->host->log(RELAIS_LOG_WARN, EC_WHO, "a key that is not valid base64 text is ignored");
            continue;
        }
        if (del) {
            ec_map_del(e, key);
            free(key);
            continue;
        }
        vb = ec_j_str(j, ec_j_get(j, kvn, "value"));
        val = vb ? ec_b64dec(vb) : strdup(""); /* an empty value is omitted */
        free(vb);
        if (!val) {
            e->host->log(RELAIS_LOG_WARN, EC_WHO, "%s: value is not text, ignored", key);
            free(key);
            continue;
        }
        if (ec_map_put(e, key, val) < 0) {
            e->host->log(RELAIS_LOG_ERROR, EC_WHO, "too many keys (cap %u) or out of memory",
                         EC_MAX_KEYS);
            return -1;
        }
    }
    return 0;
}

/* Handles one watch message (a whole JSON object).  0, or -1 when the
 * stream must be dropped (e->need_list set when a re-list is needed). */
static int ec_watch_msg(struct ec *e, const char *s, size_t n)
{
    struct ec_json j;
    int res, rc = -1;
    int64_t v;

    if (ec_json_parse(&j, s, n) < 0) {
        ec_fail(e, "watch: malformed message");
        return -1;
    }
    res = ec_j_get(&j, 0, "result");
    if (res < 0) {
        char *msg = ec_j_str(&j, ec_j_get(&j, ec_j_get(&j, 0, "error"), "message"));
        char what[300];
        snprintf(what, sizeof(what), "watch error: %.200s", msg ? msg : "(no result)");
        free(msg);
        if (e->token) {
            free(e->token); /* maybe expired: authenticate again */
            e->token = NULL;
        }
        ec_fail(e, what);
        goto done;
    }
    if (ec_j_int(&j, ec_j_get(&j, res, "compact_revision"), &v) == 0 && v > 0) {
        e->host->log(RELAIS_LOG_WARN, EC_WHO,
                     "revision %lld was compacted (oldest %lld): listing again",
                     (long long)e->rev + 1, (long long)v);
        e->need_list = 1;
        e->phase = EC_IDLE;
        e->host->timer_start(e->retry, 0);
        goto done;
    }
    if (ec_j_true(&j, ec_j_get(&j, res, "canceled"))) {
        char *why = ec_j_str(&j, ec_j_get(&j, res, "cancel_reason"));
        char what[300];
        snprintf(what, sizeof(what), "watch canceled by the server: %.200s",
                 why ? why : "no reason given");
        if (why && (strstr(why, "token") || strstr(why, "Unauthenticated"))) {
            free(e->token); /* expired or revoked: authenticate again */
            e->token = NULL;
        }
        free(why);
        ec_fail(e, what);
        goto done;
    }
    if (ec_j_true(&j, ec_j_get(&j, res, "created"))) {
        e->watch_ok = 1;
        ec_success(e);
        e->host->timer_start(e->health, EC_HEALTH_MS);
        e->host->log(RELAIS_LOG_DEBUG, EC_WHO, "%s: watching from revision %lld",
                     e->endpoints[e->cur], (long long)e->rev + 1);
    }
    {
        int evs = ec_j_get(&j, res, "events");
        if (evs >= 0 && j.nodes[evs].first >= 0) {
            if (ec_apply_kvs(e, &j, evs, 1) < 0) {
                e->need_list = 1;
                ec_fail(e, "watch: bad event");
                goto done;
            }
            if (!e->pub_pending) {
                e->pub_pending = 1;
                e->host->timer_start(e->debounce, EC_DEBOUNCE_MS);
            }
        }
    }
    rc = 0;
done:
    ec_json_free(&j);
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
    struct ec_json j;
    int hdr;
    int64_t rev = 0;

    if (ec_json_parse(&j, e->buf, e->len) < 0) {
        ec_json_free(&j);
        ec_fail(e, "range: malformed response");
        return;
    }
    hdr = ec_j_get(&j, 0, "header");
    if (ec_j_int(&j, ec_j_get(&j, hdr, "revision"), &rev) < 0) {
        ec_json_free(&j);
        ec_fail(e, "range: no revision in the response");
        return;
    }
    ec_map_clear(e);
    if (ec_apply_kvs(e, &j, ec_j_get(&j, 0, "kvs"), 0) < 0) {
        ec_json_free(&j);
        ec_fail(e, "range: bad key/value");
        return;
    }
    ec_json_free(&j);
    e->rev = rev;
    e->need_list = 0;
    ec_success(e);
    e->host->log(RELAIS_LOG_INFO, EC_WHO, "%s: %zu keys under %s/ at revision %lld",
                 e->endpoints[e->cur], e->npairs, e->root, (long long)rev);
    if (e->pub_pending) e->host->timer_stop(e->debounce);
    ec_publish(e);
    e->phase = EC_WATCH;
    ec_connect(e);
}

/* Handles a finished auth/authenticate response. */
static void ec_auth_done(struct ec *e)
{
    struct ec_json j;

    if (ec_json_parse(&j, e->buf, e->len) < 0) {
        ec_json_free(&j);
        ec_fail(e, "authenticate: malformed response");
        return;
    }
    free(e->token);
    e->token = ec_j_str(&j, ec_j_get(&j, 0, "token"));
    ec_json_free(&j);
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
        if (e->status == 401 || strstr(what, "token")) {
            free(e->token);
            e->token = NULL;
        }
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
        char *u = ec_jquote(e->username), *p = ec_jquote(e->password ? e->password : "");
        if (u && p && asprintf(&body, "{\"name\":%s,\"password\":%s}", u, p) < 0) body = NULL;
        free(u);
        free(p);
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
        ec_fail(e, "out of memory");
        return;
    }
    snprintf(url, sizeof(url), "%s%s", e->endpoints[e->cur], path);
    req.url = url;
    req.body = body;
    req.body_len = strlen(body);
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
    free(e->buf);
    free(e);
}

/* Validates and stores one endpoint ("host:port" or "http://host:port").
 * 0, or -1 after cfg_error on node.key. */
static int ec_add_endpoint(struct ec *e, const relais_cfg *node, const char *key, const char *s)
{
    const char *hp = s;
    char *u;

    if (!strncmp(s, "https://", 8)) {
        e->host->cfg_error(node, key, "\"%s\": https (tls) is not supported yet", s);
        return -1;
    }
    if (!strncmp(s, "http://", 7)) hp += 7;
    if (!*hp || strchr(hp, '/') || strchr(hp, ' ') || strstr(hp, "://") || strlen(hp) > 256) {
        e->host->cfg_error(node, key, "\"%s\": expected host:port", s);
        return -1;
    }
    if (e->nendpoints >= EC_MAX_ENDPOINTS) {
        e->host->cfg_error(node, key, "at most %d endpoints", EC_MAX_ENDPOINTS);
        return -1;
    }
    if (asprintf(&u, "http://%s", hp) < 0) return -1;
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
    e->backoff = EC_BACKOFF_MIN;
    if (!RELAIS_HOST_HAS(host, http_request) || !RELAIS_HOST_HAS(host, provider_publish_kv)) {
        host->cfg_error(cfg, NULL, "this relais lacks the HTTP client / KV publishing (ABI 1.1)");
        bad = 1;
    }
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
    if (host->cfg_type(host->cfg_get(cfg, "tls")) > RELAIS_CFG_NULL) {
        host->cfg_error(cfg, "tls", "not supported yet");
        bad = 1;
    }
    for (size_t i = 0; i < host->cfg_len(cfg); i++) {
        const char *k;
        host->cfg_at(cfg, i, &k);
        if (k && strcasecmp(k, "endpoints") && strcasecmp(k, "rootKey") &&
            strcasecmp(k, "username") && strcasecmp(k, "password") && strcasecmp(k, "tls")) {
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
