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

/* ======================================================================
 * Growing buffers and pair lists
 * ==================================================================== */

/** A byte buffer capped at DK_MAX_BODY. */
struct dk_buf {
    char *p;     /* bytes */
    size_t len;  /* bytes used */
    size_t cap;  /* bytes allocated */
    int too_big; /* an append went over the cap (or out of memory) */
};

/* Appends bytes under DK_MAX_BODY; sets too_big instead of growing past. */
static void dk_buf_add(struct dk_buf *b, const char *data, size_t len)
{
    if (b->too_big) return;
    if (b->len + len > DK_MAX_BODY) {
        b->too_big = 1;
        return;
    }
    if (b->len + len > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        char *nb;
        while (nc < b->len + len) nc *= 2;
        nb = realloc(b->p, nc);
        if (!nb) {
            b->too_big = 1;
            return;
        }
        b->p = nb;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

/** One owned key/value pair. */
struct dk_pair {
    char *key; /* "traefik.http.routers.web.rule" */
    char *val; /* its value */
};

/** A list of owned pairs, capped at DK_MAX_PAIRS. */
struct dk_pairs {
    struct dk_pair *v; /* the pairs */
    size_t n;          /* used */
    size_t cap;        /* allocated */
};

/* Frees every pair (the list stays usable, empty). */
static void dk_pairs_clear(struct dk_pairs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].val);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Appends key=val (both taken over; freed on failure, NULL counts as a
 * failure).  0, or -1 at the cap / out of memory. */
static int dk_pairs_add(struct dk_pairs *l, char *key, char *val)
{
    if (!key || !val || l->n >= DK_MAX_PAIRS) goto fail;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        struct dk_pair *nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv) goto fail;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].key = key;
    l->v[l->n].val = val;
    l->n++;
    return 0;
fail:
    free(key);
    free(val);
    return -1;
}

/* qsort comparator: by key. */
static int dk_pair_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dk_pair *)a)->key, ((const struct dk_pair *)b)->key);
}

/* ======================================================================
 * The provider
 * ==================================================================== */

/** The provider instance. */
struct dk {
    const relais_host *host;  /* host table */
    relais_provider *prov;    /* our handle */
    char *sock;               /* the engine's unix socket path */
    int exposed;              /* exposedByDefault */
    char *rule_tpl;           /* defaultRule template */
    char *prefix;             /* labelPrefix ("traefik") */
    int watch;                /* follow /events */
    relais_http_call *lcall;  /* list call in flight, or NULL */
    int lstatus;              /* its HTTP status */
    struct dk_buf lbuf;       /* its body */
    relais_http_call *ecall;  /* event stream in flight, or NULL */
    int estatus;              /* its HTTP status */
    struct dk_buf ebuf;       /* stream bytes not yet handled */
    size_t scan;              /* stream splitter: bytes of ebuf scanned */
    int depth;                /* stream splitter: brace depth */
    int in_str;               /* stream splitter: inside a string */
    int esc;                  /* stream splitter: after a backslash */
    relais_timer *retry;      /* reconnect timer */
    relais_timer *debounce;   /* list-again timer */
    int deb_pending;          /* debounce armed */
    char *last;               /* serialized pairs last published, or NULL */
    char *warned[DK_MAX_WARNED]; /* container ids already warned about */
    size_t nwarned;           /* how many */
    uint64_t backoff;         /* next retry delay, ms */
    int failing;              /* an outage was logged */
    int stopped;              /* stop() was called */
};

static void dk_connect(struct dk *d);

/* Cancels the listing and the event stream in flight, if any (no
 * callback follows). */
static void dk_cancel_calls(struct dk *d)
{
    d->host->http_cancel(d->lcall); /* NULL is a no-op */
    d->host->http_cancel(d->ecall);
    d->lcall = NULL;
    d->ecall = NULL;
}

/* Notes that the engine failed (what: why): logs once per outage, cancels
 * both calls and schedules a reconnect with exponential backoff. */
static void dk_fail(struct dk *d, const char *what)
{
    if (d->stopped) return;
    if (!d->failing)
        d->host->log(RELAIS_LOG_ERROR, DK_WHO,
                     "unix://%s: %s; retrying, the last configuration keeps serving", d->sock,
                     what);
    else
        d->host->log(RELAIS_LOG_DEBUG, DK_WHO, "unix://%s: %s", d->sock, what);
    d->failing = 1;
    dk_cancel_calls(d);
    d->host->timer_stop(d->debounce);
    d->deb_pending = 0;
    d->host->timer_start(d->retry, d->backoff);
    d->backoff *= 2;
    if (d->backoff > DK_BACKOFF_MAX) d->backoff = DK_BACKOFF_MAX;
}

/* Replaces non-alphanumerics of name with '-' (Traefik's normalize) into a
 * new string, or NULL when out of memory. */
static char *dk_normalize(const char *name)
{
    char *s = strdup(name);

    for (char *p = s; p && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '-';
    return s;
}

/* Expands the defaultRule template for a container name into a new string
 * (caller frees), or NULL when out of memory.  The template was validated
 * at create: only the two supported forms occur. */
static char *dk_rule(const struct dk *d, const char *name)
{
    char *norm = dk_normalize(name), *out = NULL;
    size_t sz = 0;
    FILE *f;
    const char *p = d->rule_tpl;

    if (!norm) return NULL;
    f = open_memstream(&out, &sz);
    if (!f) {
        free(norm);
        return NULL;
    }
    while (*p) {
        if (!strncmp(p, DK_TPL_NORM, strlen(DK_TPL_NORM))) {
            fputs(norm, f);
            p += strlen(DK_TPL_NORM);
        } else if (!strncmp(p, DK_TPL_NAME, strlen(DK_TPL_NAME))) {
            fputs(name, f);
            p += strlen(DK_TPL_NAME);
        } else {
            fputc(*p++, f);
        }
    }
    fclose(f);
    free(norm);
    return out;
}

/* Warns once per container id (id, name) about a missing port label. */
static void dk_warn_port(struct dk *d, const char *id, const char *name)
{
    for (size_t i = 0; i < d->nwarned; i++)
        if (!strcmp(d->warned[i], id)) return;
    d->host->log(RELAIS_LOG_WARN, DK_WHO,
                 "container %s: no traefik.http.services.<name>.loadbalancer.server.port label "
                 "(required with host networking); skipped",
                 name);
    if (d->nwarned < DK_MAX_WARNED) {
        char *c = strdup(id);
        if (c) d->warned[d->nwarned++] = c;
    }
}

/* If key (already rewritten to "traefik.") is "traefik.http.services.SVC.
 * loadbalancer.server.FIELD", returns FIELD and sets *svc (a new string);
 * else NULL. */
static const char *dk_server_field(const char *key, char **svc)
{
    static const char pre[] = "traefik.http.services.";
    static const char mid[] = ".loadbalancer.server.";
    const char *s, *m;

    if (strncasecmp(key, pre, sizeof(pre) - 1)) return NULL;
    s = key + sizeof(pre) - 1;
    m = strchr(s, '.');
    if (!m || m == s || strncasecmp(m, mid, sizeof(mid) - 1)) return NULL;
    if (strchr(m + sizeof(mid) - 1, '.')) return NULL;
    *svc = strndup(s, (size_t)(m - s));
    return *svc ? m + sizeof(mid) - 1 : NULL;
}

/* Name of the http router or service a key names (kind "routers" or
 * "services") as a new string, or NULL when the key is not one. */
static char *dk_obj_name(const char *key, const char *kind)
{
    char pre[64];
    const char *s, *e;

    snprintf(pre, sizeof(pre), "traefik.http.%s.", kind);
    if (strncasecmp(key, pre, strlen(pre))) return NULL;
    s = key + strlen(pre);
    e = strchr(s, '.');
    if (!e || e == s) return NULL;
    return strndup(s, (size_t)(e - s));
}

/* 1 when list (n strings) holds s. */
static int dk_has(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s)) return 1;
    return 0;
}

#define DK_MAX_OBJS 64 /* routers / services per container */

/* Adds the pairs of one container (node c of the list) to out.  Skips
 * containers that are not running, disabled, or lack a port label.
 * 0, or -1 when out of memory / over the cap. */
static int dk_container(struct dk *d, const struct dk_json *j, int c, struct dk_pairs *out)
{
    struct dk_pairs own = {0};
    char *id = NULL, *state = NULL, *name = NULL, *enable = NULL;
    char *routers[DK_MAX_OBJS], *svcs[DK_MAX_OBJS], *ports[DK_MAX_OBJS], *schemes[DK_MAX_OBJS];
    char *routed_svc[DK_MAX_OBJS];
    size_t nr = 0, ns = 0, nrs = 0;
    int names, labels, rc = 0, enabled;
    size_t plen = strlen(d->prefix);

    memset(ports, 0, sizeof(ports));
    memset(schemes, 0, sizeof(schemes));
    id = dk_j_str(j, dk_j_get(j, c, "Id"));
    state = dk_j_str(j, dk_j_get(j, c, "State"));
    names = dk_j_get(j, c, "Names");
    if (names >= 0 && j->nodes[names].type == DK_J_ARR) name = dk_j_str(j, j->nodes[names].first);
    if (!id || !state || !name) goto done; /* not a container we understand */
    if (strcmp(state, "running")) goto done;
    if (name[0] == '/') memmove(name, name + 1, strlen(name));
    labels = dk_j_get(j, c, "Labels");
    for (int l = labels >= 0 && j->nodes[labels].type == DK_J_OBJ ? j->nodes[labels].first : -1;
         l >= 0; l = j->nodes[l].next) {
        char *k = dk_j_dec(j->s + j->nodes[l].key_off, j->nodes[l].key_len);
        char *v = dk_j_str(j, l), *nk = NULL, *svc = NULL;
        const char *rest = NULL, *field;

        if (k && !strncmp(k, d->prefix, plen) && k[plen] == '.') rest = k + plen + 1;
        else if (k && !strcmp(d->prefix, "relais") && !strncmp(k, "traefik.", 8)) rest = k + 8;
        if (!rest || !v || asprintf(&nk, "traefik.%s", rest) < 0) {
            free(k);
            free(v);
            continue;
        }
        free(k);
        if (!strcasecmp(nk, "traefik.enable")) {
            free(enable);
            enable = v;
            free(nk);
            continue;
        }
        if (strncasecmp(nk, "traefik.http.", 13) && strncasecmp(nk, "traefik.tcp.", 12) &&
            strncasecmp(nk, "traefik.udp.", 12) && strncasecmp(nk, "traefik.tls.", 12)) {
            free(nk);
            free(v);
            continue;
        }
        field = dk_server_field(nk, &svc);
        if (field && (!strcasecmp(field, "port") || !strcasecmp(field, "scheme"))) {
            size_t i;
            for (i = 0; i < ns && strcmp(svcs[i], svc); i++) {}
            if (i == ns && ns < DK_MAX_OBJS) {
                svcs[ns] = svc;
                ports[ns] = schemes[ns] = NULL;
                ns++;
                svc = NULL;
            }
            if (i < ns) {
                char **slot = !strcasecmp(field, "port") ? &ports[i] : &schemes[i];
                free(*slot);
                *slot = v;
                v = NULL;
            }
            free(svc);
            free(v);
            free(nk);
            continue;
        }
        free(svc);
        if (dk_pairs_add(&own, nk, v) < 0) {
            rc = -1;
            goto done;
        }
    }
    enabled = enable ? !strcasecmp(enable, "true") : d->exposed;
    if (!enabled) goto done;
    {
        size_t withport = 0;
        for (size_t i = 0; i < ns; i++)
            if (ports[i]) withport++;
        if (!withport) {
            dk_warn_port(d, id, name);
            goto done;
        }
    }
    /* routers and which of them name a service */
    for (size_t i = 0; i < own.n; i++) {
        char *r = dk_obj_name(own.v[i].key, "routers");
        const char *dot;
        if (!r) continue;
        dot = own.v[i].key + strlen("traefik.http.routers.") + strlen(r);
        if (!strcasecmp(dot, ".service") && nrs < DK_MAX_OBJS && (routed_svc[nrs] = strdup(r)))
            nrs++;
        if (!dk_has(routers, nr, r) && nr < DK_MAX_OBJS) routers[nr++] = r;
        else free(r);
    }
    /* services named only by other labels also count */
    for (size_t i = 0; i < own.n && ns < DK_MAX_OBJS; i++) {
        char *s = dk_obj_name(own.v[i].key, "services");
        if (s && !dk_has(svcs, ns, s)) {
            svcs[ns] = s;
            ports[ns] = schemes[ns] = NULL;
            ns++;
        } else {
            free(s);
        }
    }
    /* servers from the port labels */
    for (size_t i = 0; i < ns; i++) {
        char *k = NULL, *v = NULL;
        if (!ports[i]) continue;
        if (asprintf(&k, "traefik.http.services.%s.loadbalancer.servers.0.url", svcs[i]) < 0)
            k = NULL;
        if (asprintf(&v, "%s://127.0.0.1:%s", schemes[i] ? schemes[i] : "http", ports[i]) < 0)
            v = NULL;
        if (dk_pairs_add(&own, k, v) < 0) {
            rc = -1;
            goto done;
        }
    }
    if (nr == 0) {
        /* no router: one named after the container, with defaultRule */
        char *norm = dk_normalize(name), *k1 = NULL, *k2 = NULL;
        if (norm && asprintf(&k1, "traefik.http.routers.%s.rule", norm) < 0) k1 = NULL;
        if (norm && asprintf(&k2, "traefik.http.routers.%s.service", norm) < 0) k2 = NULL;
        if (dk_pairs_add(&own, k1, dk_rule(d, name)) < 0 ||
            dk_pairs_add(&own, k2, strdup(svcs[0])) < 0)
            rc = -1;
        free(norm);
        if (rc < 0) goto done;
    } else if (ns == 1) {
        /* routers without a service use the container's only service */
        for (size_t i = 0; i < nr; i++) {
            char *k = NULL;
            if (dk_has(routed_svc, nrs, routers[i])) continue;
            if (asprintf(&k, "traefik.http.routers.%s.service", routers[i]) < 0) k = NULL;
            if (dk_pairs_add(&own, k, strdup(svcs[0])) < 0) {
                rc = -1;
                goto done;
            }
        }
    }
    for (size_t i = 0; i < own.n; i++) {
        if (dk_pairs_add(out, own.v[i].key, own.v[i].val) < 0) {
            own.v[i].key = own.v[i].val = NULL;
            for (size_t k = i + 1; k < own.n; k++) own.v[k - i - 1] = own.v[k];
            own.n -= i + 1;
            rc = -1;
            goto done;
        }
    }
    free(own.v);
    memset(&own, 0, sizeof(own));
done:
    dk_pairs_clear(&own);
    for (size_t i = 0; i < nr; i++) free(routers[i]);
    for (size_t i = 0; i < nrs; i++) free(routed_svc[i]);
    for (size_t i = 0; i < ns; i++) {
        free(svcs[i]);
        free(ports[i]);
        free(schemes[i]);
    }
    free(id);
    free(state);
    free(name);
    free(enable);
    return rc;
}

/* Handles a finished container list: builds the pairs of every enabled
 * running container and publishes them when they changed. */
static void dk_list_done(struct dk *d)
{
    struct dk_json j;
    struct dk_pairs all = {0};
    relais_kv *kv = NULL;
    char *ser = NULL;
    size_t sz = 0, ncont = 0;
    FILE *f;

    if (d->lbuf.too_big || dk_json_parse(&j, d->lbuf.p, d->lbuf.len) < 0 ||
        j.nodes[0].type != DK_J_ARR) {
        if (!d->lbuf.too_big) dk_json_free(&j);
        dk_fail(d, "containers/json: malformed response");
        return;
    }
    for (int c = j.nodes[0].first; c >= 0; c = j.nodes[c].next, ncont++) {
        if (dk_container(d, &j, c, &all) < 0) {
            d->host->log(RELAIS_LOG_ERROR, DK_WHO, "too many labels (cap %u) or out of memory",
                         DK_MAX_PAIRS);
            goto done;
        }
    }
    if (d->failing)
        d->host->log(RELAIS_LOG_INFO, DK_WHO, "unix://%s: reachable again", d->sock);
    d->failing = 0;
    d->backoff = DK_BACKOFF_MIN;
    if (all.n) qsort(all.v, all.n, sizeof(*all.v), dk_pair_cmp);
    f = open_memstream(&ser, &sz);
    if (!f) goto done;
    for (size_t i = 0; i < all.n; i++) fprintf(f, "%s=%s\n", all.v[i].key, all.v[i].val);
    fclose(f);
    if (!ser) goto done;
    if (d->last && !strcmp(d->last, ser)) {
        d->host->log(RELAIS_LOG_DEBUG, DK_WHO, "%zu containers, nothing changed", ncont);
        goto done;
    }
    kv = malloc((all.n ? all.n : 1) * sizeof(*kv));
    if (!kv) goto done;
    for (size_t i = 0; i < all.n; i++) {
        kv[i].key = all.v[i].key;
        kv[i].value = all.v[i].val;
    }
    d->host->log(RELAIS_LOG_INFO, DK_WHO, "%zu running containers: publishing %zu labels", ncont,
                 all.n);
    if (d->host->provider_publish_kv(d->prov, kv, all.n, '.', "traefik") == 0) {
        free(d->last);
        d->last = ser;
        ser = NULL;
    }
done:
    free(kv);
    free(ser);
    dk_pairs_clear(&all);
    dk_json_free(&j);
}

/* List call: response head. */
static void dk_l_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct dk *d = arg;

    d->lstatus = status;
    d->lbuf.len = 0;
    d->lbuf.too_big = 0;
}

/* List call: body bytes. */
static void dk_l_on_data(void *arg, const char *data, size_t len)
{
    struct dk *d = arg;

    dk_buf_add(&d->lbuf, data, len);
}

/* List call: end. */
static void dk_l_on_done(void *arg, int error, const char *message)
{
    struct dk *d = arg;
    char what[300];

    d->lcall = NULL;
    if (d->stopped) return;
    if (error) {
        snprintf(what, sizeof(what), "containers/json: %.200s", message ? message : "failed");
        dk_fail(d, what);
    } else if (d->lstatus != 200) {
        snprintf(what, sizeof(what), "containers/json: status %d", d->lstatus);
        dk_fail(d, what);
    } else {
        dk_list_done(d);
    }
}

/* Starts the container list call (cancelling one in flight). */
static void dk_list(struct dk *d)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), dk_l_on_response,
                                             dk_l_on_data, dk_l_on_done};
    relais_http_req req;

    if (d->stopped) return;
    if (d->lcall) d->host->http_cancel(d->lcall);
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "GET";
    req.url = "http://docker/containers/json";
    req.unix_socket = d->sock;
    req.timeout_ms = DK_CALL_TIMEOUT;
    d->lstatus = 0;
    d->lbuf.len = 0;
    d->lbuf.too_big = 0;
    d->lcall = d->host->http_request(&req, &cb, d);
    if (!d->lcall) dk_fail(d, "cannot start a request");
}

/* Debounce timer: list again. */
static void dk_debounce_cb(void *arg)
{
    struct dk *d = arg;

    d->deb_pending = 0;
    dk_list(d);
}

/* Handles one event message (a whole JSON object): a container event that
 * can change what is routed lists again DK_DEBOUNCE_MS later. */
static void dk_event_msg(struct dk *d, const char *s, size_t n)
{
    static const char *const actions[] = {"start", "die", "stop", "pause", "unpause",
                                          "destroy", "kill", "restart", "rename", "update",
                                          "oom", NULL};
    struct dk_json j;
    char *type, *action;
    int hit = 0;

    if (dk_json_parse(&j, s, n) < 0) {
        d->host->log(RELAIS_LOG_DEBUG, DK_WHO, "a malformed event is ignored");
        return;
    }
    type = dk_j_str(&j, dk_j_get(&j, 0, "Type"));
    action = dk_j_str(&j, dk_j_get(&j, 0, "Action"));
    if (!action) action = dk_j_str(&j, dk_j_get(&j, 0, "status"));
    if (action && (!type || !strcmp(type, "container")))
        for (size_t i = 0; actions[i]; i++)
            if (!strcmp(action, actions[i])) hit = 1;
    if (hit) {
        d->host->log(RELAIS_LOG_DEBUG, DK_WHO, "container event %s", action);
        if (!d->deb_pending) {
            d->deb_pending = 1;
            d->host->timer_start(d->debounce, DK_DEBOUNCE_MS);
        }
    }
    free(type);
    free(action);
    dk_json_free(&j);
}

/* Event stream: response head. */
static void dk_e_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct dk *d = arg;

    d->estatus = status;
}

/* Event stream: bytes; complete top-level JSON objects are cut out (brace
 * depth outside strings) and handled at once. */
static void dk_e_on_data(void *arg, const char *data, size_t len)
{
    struct dk *d = arg;

    if (d->estatus != 200) return;
    dk_buf_add(&d->ebuf, data, len);
    if (d->ebuf.too_big) {
        /* a message over the cap: drop what we have and resynchronize */
        d->ebuf.len = d->scan = 0;
        d->depth = d->in_str = d->esc = 0;
        d->ebuf.too_big = 0;
        return;
    }
    while (d->scan < d->ebuf.len) {
        char c = d->ebuf.p[d->scan++];
        if (d->in_str) {
            if (d->esc) d->esc = 0;
            else if (c == '\\') d->esc = 1;
            else if (c == '"') d->in_str = 0;
            continue;
        }
        if (c == '"') d->in_str = 1;
        else if (c == '{' || c == '[') d->depth++;
        else if ((c == '}' || c == ']') && --d->depth <= 0) {
            size_t start = 0, end = d->scan;
            d->depth = 0;
            while (start < end && d->ebuf.p[start] != '{' && d->ebuf.p[start] != '[') start++;
            dk_event_msg(d, d->ebuf.p + start, end - start);
            if (d->stopped || !d->ecall) return;
            memmove(d->ebuf.p, d->ebuf.p + end, d->ebuf.len - end);
            d->ebuf.len -= end;
            d->scan = 0;
        }
    }
}

/* Event stream: end (the engine went away or refused). */
static void dk_e_on_done(void *arg, int error, const char *message)
{
    struct dk *d = arg;
    char what[300];

    d->ecall = NULL;
    if (d->stopped) return;
    if (error) snprintf(what, sizeof(what), "events: %.200s", message ? message : "failed");
    else if (d->estatus != 200) snprintf(what, sizeof(what), "events: status %d", d->estatus);
    else snprintf(what, sizeof(what), "events: stream ended");
    dk_fail(d, what);
}

/* (Re)connects: the event stream (with watch) and a fresh list.  Failures
 * go through dk_fail. */
static void dk_connect(struct dk *d)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), dk_e_on_response,
                                             dk_e_on_data, dk_e_on_done};
    relais_http_req req;

    if (d->stopped) return;
    if (d->watch) {
        if (d->ecall) d->host->http_cancel(d->ecall);
        memset(&req, 0, sizeof(req));
        req.size = sizeof(req);
        req.method = "GET";
        /* filters={"type":["container"]} */
        req.url = "http://docker/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D";
        req.unix_socket = d->sock;
        req.timeout_ms = 0; /* a stream */
        d->estatus = 0;
        d->ebuf.len = d->scan = 0;
        d->ebuf.too_big = 0;
        d->depth = d->in_str = d->esc = 0;
        d->ecall = d->host->http_request(&req, &cb, d);
        if (!d->ecall) {
            dk_fail(d, "cannot start a request");
            return;
        }
    }
    dk_list(d);
}

/* Retry timer: connect again. */
static void dk_retry_cb(void *arg)
{
    dk_connect(arg);
}

/* Frees an instance (control thread); NULL is a no-op. */
static void dk_destroy(void *inst)
{
    struct dk *d = inst;

    if (!d) return;
    dk_cancel_calls(d);
    d->host->timer_free(d->retry);
    d->host->timer_free(d->debounce);
    for (size_t i = 0; i < d->nwarned; i++) free(d->warned[i]);
    free(d->sock);
    free(d->rule_tpl);
    free(d->prefix);
    free(d->lbuf.p);
    free(d->ebuf.p);
    free(d->last);
    free(d);
}

/* 1 when the defaultRule template uses only the supported {{ }} forms. */
static int dk_tpl_ok(const char *t)
{
    const char *p = t;

    while ((p = strstr(p, "{{")) != NULL) {
        if (!strncmp(p, DK_TPL_NORM, strlen(DK_TPL_NORM))) p += strlen(DK_TPL_NORM);
        else if (!strncmp(p, DK_TPL_NAME, strlen(DK_TPL_NAME))) p += strlen(DK_TPL_NAME);
        else return 0;
    }
    return 1;
}

/* Control thread: validates the options (errors through cfg_error naming
 * the key) and builds an idle instance in *inst.  0, or -1 with nothing
 * left allocated. */
static int dk_create(const relais_host *host, const relais_cfg *cfg, relais_provider *prov,
                     void **inst)
{
    static const char *const known[] = {"endpoint", "exposedByDefault", "defaultRule", "network",
                                        "useBindPortIP", "watch", "labelPrefix", "tls", NULL};
    struct dk *d = calloc(1, sizeof(*d));
    const char *s;
    int bad = 0, rc, b;

    if (!d) return -1;
    d->host = host;
    d->prov = prov;
    d->backoff = DK_BACKOFF_MIN;
    d->exposed = 1;
    d->watch = 1;
    if (!RELAIS_HOST_HAS(host, http_request) || !RELAIS_HOST_HAS(host, provider_publish_kv)) {
        host->cfg_error(cfg, NULL, "this relais lacks the HTTP client / KV publishing (ABI 1.1)");
        bad = 1;
    }
    rc = host->cfg_string(cfg, "endpoint", &s);
    if (rc == RELAIS_CFG_MISSING) s = "unix:///var/run/docker.sock";
    if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    } else if (!strncmp(s, "unix://", 7) && s[7] == '/' && strlen(s + 7) < 108) {
        d->sock = strdup(s + 7);
    } else if (!strncmp(s, "tcp://", 6) || !strncmp(s, "http://", 7) ||
               !strncmp(s, "https://", 8) || !strncmp(s, "ssh://", 6)) {
        host->cfg_error(cfg, "endpoint", "\"%s\": not supported yet (only unix:///path)", s);
        bad = 1;
    } else {
        host->cfg_error(cfg, "endpoint", "\"%s\": expected unix:///path/to/docker.sock", s);
        bad = 1;
    }
    rc = host->cfg_bool(cfg, "exposedByDefault", &b);
    if (rc == RELAIS_CFG_OK) d->exposed = b;
    else if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_bool(cfg, "watch", &b);
    if (rc == RELAIS_CFG_OK) d->watch = b;
    else if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_bool(cfg, "useBindPortIP", &b);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_string(cfg, "network", &s);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_string(cfg, "defaultRule", &s);
    if (rc == RELAIS_CFG_MISSING) s = "Host(`" DK_TPL_NORM "`)";
    if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    } else if (!*s || !dk_tpl_ok(s)) {
        host->cfg_error(cfg, "defaultRule",
                        "\"%s\": only the templates " DK_TPL_NORM " and " DK_TPL_NAME
                        " are supported",
                        s);
        bad = 1;
    } else {
        d->rule_tpl = strdup(s);
    }
    rc = host->cfg_string(cfg, "labelPrefix", &s);
    if (rc == RELAIS_CFG_MISSING) s = "traefik";
    if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    } else if (!*s || strchr(s, '.') || strchr(s, ' ')) {
        host->cfg_error(cfg, "labelPrefix", "\"%s\": expected a word such as traefik", s);
        bad = 1;
    } else {
        d->prefix = strdup(s);
    }
    if (host->cfg_type(host->cfg_get(cfg, "tls")) > RELAIS_CFG_NULL) {
        host->cfg_error(cfg, "tls", "not supported yet");
        bad = 1;
    }
    for (size_t i = 0; i < host->cfg_len(cfg); i++) {
        const char *k;
        size_t x;
        host->cfg_at(cfg, i, &k);
        if (!k) continue;
        for (x = 0; known[x] && strcasecmp(k, known[x]); x++) {}
        if (!known[x]) {
            host->cfg_error(cfg, k, "unknown option");
            bad = 1;
        }
    }
    if (!bad && (!d->sock || !d->rule_tpl || !d->prefix)) bad = 1;
    if (bad) {
        dk_destroy(d);
        return -1;
    }
    *inst = d;
    return 0;
}

/* Control thread: creates the timers and starts the stream and the first
 * list; the outcome arrives asynchronously.  0, or -1 when a timer cannot
 * be made. */
static int dk_start(void *inst)
{
    struct dk *d = inst;

    d->retry = d->host->timer_new(dk_retry_cb, d);
    d->debounce = d->host->timer_new(dk_debounce_cb, d);
    if (!d->retry || !d->debounce) return -1;
    d->host->log(RELAIS_LOG_INFO, DK_WHO, "watching unix://%s (labels %s.*)", d->sock, d->prefix);
    dk_connect(d);
    return 0;
}

/* Control thread (SIGHUP): lists again. */
static void dk_reload(void *inst)
{
    struct dk *d = inst;

    if (d->stopped || !d->retry) return;
    if (d->failing) return; /* the retry timer is armed */
    dk_list(d);
}

/* Control thread: cancels calls and timers; nothing is published after. */
static void dk_stop(void *inst)
{
    struct dk *d = inst;

    d->stopped = 1;
    dk_cancel_calls(d);
    if (d->retry) d->host->timer_stop(d->retry);
    if (d->debounce) d->host->timer_stop(d->debounce);
    d->deb_pending = 0;
}

static const relais_provider_ops dk_ops = {
    sizeof(relais_provider_ops), dk_create, dk_start, NULL, dk_reload, dk_stop, dk_destroy,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_PROVIDER,
    "docker",
    "0.1.0",
    "docker",
    "routes running Docker containers from their labels (watched)",
    NULL,
    NULL,
    &dk_ops,
};
