/*
 * docker — provider plugin reading the dynamic configuration from the
 * labels of running Docker containers (Traefik's docker provider, a
 * subset: config key "docker"; options endpoint (unix:// only),
 * exposedByDefault, defaultRule ({{ normalize .Name }} / {{ .Name }}),
 * network and useBindPortIP (accepted, unused with host networking),
 * watch, and relais' labelPrefix).  Module prefix: dk_.
 *
 * Protocol: the Engine API over its unix socket through the host's
 * asynchronous HTTP client.  GET /containers/json lists the running
 * containers; their labels become label pairs ("traefik.http....") that are
 * published with provider_publish_kv('.', "traefik") in one call, only when
 * they changed.  With host networking a container has no address of its
 * own: a service's `loadbalancer.server.port` label becomes
 * `loadbalancer.servers.0.url=http://127.0.0.1:PORT` (the port label is
 * required; a container without one is skipped with one warning).  A
 * container without a router gets one named after it with defaultRule.
 * With watch, GET /events (a stream of JSON objects) is followed: a
 * container event lists again 100 ms later.  When the engine goes away the
 * failure is logged once, the last configuration keeps serving, and both
 * calls are retried with a backoff 100 ms → 5 s; a successful list ends
 * the outage.
 *
 * Everything runs on the control thread; nothing blocks.  Built only
 * against the SDK header; the JSON reader is local.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <relais/plugin.h>

#define DK_WHO "provider docker"
#define DK_MAX_BODY (64u << 20)        /* response / event message cap */
#define DK_MAX_NODES (16u << 20)       /* JSON nodes per document */
#define DK_MAX_DEPTH 64                /* JSON nesting cap */
#define DK_MAX_PAIRS 200000u           /* label pairs published */
#define DK_MAX_WARNED 1024u            /* containers remembered as warned */
#define DK_BACKOFF_MIN 100             /* first retry delay, ms */
#define DK_BACKOFF_MAX 5000            /* longest retry delay, ms */
#define DK_DEBOUNCE_MS 100             /* event burst → one list */
#define DK_CALL_TIMEOUT 5000           /* list call timeout, ms */
#define DK_TPL_NORM "{{ normalize .Name }}" /* defaultRule template forms */
#define DK_TPL_NAME "{{ .Name }}"

/* ======================================================================
 * Minimal strict JSON reader: parses a whole document into a flat node
 * array (objects and arrays link their children).  Bounded by DK_MAX_NODES
 * and DK_MAX_DEPTH.
 * ==================================================================== */

 * array (objects and arrays link their children).  Bounded by DK_MAX_NODES
 * and DK_MAX_DEPTH.
 * ==================================================================== */

/** JSON node types. */
enum dk_jtype { DK_J_NULL, DK_J_BOOL, DK_J_NUM, DK_J_STR, DK_J_ARR, DK_J_OBJ };

/** One JSON value (for object members: the value; key holds the name). */
struct dk_jnode {
    int type;       /* enum dk_jtype */
    size_t off;     /* start in the text (strings: after the quote) */
    size_t len;     /* length in the text (strings: raw, without quotes) */
    size_t key_off; /* object member: raw key start (after the quote) */
    size_t key_len; /* object member: raw key length; 0 otherwise */
    int first;      /* first child index, -1 when none */
    int next;       /* next sibling index, -1 when none */
};

/** A parsed document. */
struct dk_json {
    const char *s;          /* the text (not owned) */
    size_t n;               /* its length */
    size_t pos;             /* parse position */
    struct dk_jnode *nodes; /* node array; nodes[0] is the root */
    size_t count;           /* nodes used */
    size_t cap;             /* nodes allocated */
};

/* Skips JSON whitespace. */
static void dk_j_ws(struct dk_json *j)
{
    while (j->pos < j->n && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t' ||
                             j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
        j->pos++;
}

/* Appends a node; its index, or -1 when the cap is reached / no memory. */
static int dk_j_node(struct dk_json *j, int type)
{
    if (j->count >= j->cap) {
        size_t nc = j->cap ? j->cap * 2 : 64;
        struct dk_jnode *nn;
        if (nc > DK_MAX_NODES) nc = DK_MAX_NODES;
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
static int dk_j_string(struct dk_json *j, size_t *off, size_t *len)
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
static int dk_j_value(struct dk_json *j, int depth)
{
    int idx, prev = -1;
    char c;

    if (depth > DK_MAX_DEPTH) return -1;
    dk_j_ws(j);
    if (j->pos >= j->n) return -1;
    c = j->s[j->pos];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        idx = dk_j_node(j, obj ? DK_J_OBJ : DK_J_ARR);
        if (idx < 0) return -1;
        j->nodes[idx].off = j->pos++;
        dk_j_ws(j);
        if (j->pos < j->n && j->s[j->pos] == (obj ? '}' : ']')) {
            j->pos++;
            return idx;
        }
        for (;;) {
            size_t koff = 0, klen = 0;
            int child;
            dk_j_ws(j);
            if (obj) {
                if (j->pos >= j->n || j->s[j->pos] != '"') return -1;
                if (dk_j_string(j, &koff, &klen) < 0) return -1;
                dk_j_ws(j);
                if (j->pos >= j->n || j->s[j->pos] != ':') return -1;
                j->pos++;
            }
            child = dk_j_value(j, depth + 1);
            if (child < 0) return -1;
            j->nodes[child].key_off = koff;
            j->nodes[child].key_len = klen;
            if (prev < 0) j->nodes[idx].first = child;
            else j->nodes[prev].next = child;
            prev = child;
            dk_j_ws(j);
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
        idx = dk_j_node(j, DK_J_STR);
        if (idx < 0) return -1;
        if (dk_j_string(j, &j->nodes[idx].off, &j->nodes[idx].len) < 0) return -1;
        return idx;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t wl = strlen(w);
        if (j->n - j->pos < wl || memcmp(j->s + j->pos, w, wl)) return -1;
        idx = dk_j_node(j, c == 'n' ? DK_J_NULL : DK_J_BOOL);
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
        idx = dk_j_node(j, DK_J_NUM);
        if (idx < 0) return -1;
        j->nodes[idx].off = j->pos;
        j->nodes[idx].len = p - j->pos;
        j->pos = p;
        return idx;
    }
    return -1;
}

/* Parses s[0..n) into j (j->nodes owned by j: dk_json_free).  The whole text
 * must be one value.  0, or -1 with nothing left to free. */
static int dk_json_parse(struct dk_json *j, const char *s, size_t n)
{
    memset(j, 0, sizeof(*j));
    if (n > DK_MAX_BODY) return -1;
    j->s = s;
    j->n = n;
    if (dk_j_value(j, 0) == 0) {
        dk_j_ws(j);
        if (j->pos == j->n) return 0;
    }
    free(j->nodes);
    j->nodes = NULL;
    return -1;
}

/* Frees the node array of a parsed document. */
static void dk_json_free(struct dk_json *j)
{
    free(j->nodes);
    j->nodes = NULL;
}

/* Member `key` of object node idx (raw key compare: our keys need no
 * escapes), or -1. */
static int dk_j_get(const struct dk_json *j, int idx, const char *key)
{
    size_t kl = strlen(key);

    if (idx < 0 || j->nodes[idx].type != DK_J_OBJ) return -1;
    for (int c = j->nodes[idx].first; c >= 0; c = j->nodes[c].next)
        if (j->nodes[c].key_len == kl && !memcmp(j->s + j->nodes[c].key_off, key, kl)) return c;
    return -1;
}

/* Value of a hex digit (validated by the parser). */
static unsigned dk_hex(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* Decodes the raw JSON string text s[0..len) (escapes validated by the
 * parser; \u to UTF-8) into a new NUL-terminated string (caller frees), or
 * NULL when out of memory. */
static char *dk_j_dec(const char *s, size_t len)
{
    char *out;
    size_t o = 0;

    out = malloc(len + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < len;) {
        const char *p = s + i;
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
            unsigned cp = dk_hex(p[2]) << 12 | dk_hex(p[3]) << 8 | dk_hex(p[4]) << 4 | dk_hex(p[5]);
            i += 6;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= len && p[6] == '\\' && p[7] == 'u') {
                unsigned lo = dk_hex(p[8]) << 12 | dk_hex(p[9]) << 8 | dk_hex(p[10]) << 4 | dk_hex(p[11]);
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


/* Decodes string node idx into a new string (caller frees), or NULL when
 * not a string / no memory. */
static char *dk_j_str(const struct dk_json *j, int idx)
{
    if (idx < 0 || j->nodes[idx].type != DK_J_STR) return NULL;
    return dk_j_dec(j->s + j->nodes[idx].off, j->nodes[idx].len);
}
