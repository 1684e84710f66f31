/*
 * kvconf — flat key/value pairs (Traefik's KV-store layout, container
 * labels) decoded into a jansson tree shaped like a parsed dynamic file.
 *
 * How a key becomes a path:
 *   - Only keys under opt->root are decoded: the key must start with the
 *     root (compared without regard to case; the root may itself contain
 *     the separator, e.g. "a/b") followed by the separator.  Other keys,
 *     and the key equal to the root itself, are ignored.  A NULL or empty
 *     root decodes every key.
 *   - The rest is split on opt->sep.  An empty segment ("traefik//http")
 *     is an error, except that a key ending in the separator with an
 *     empty value is a folder marker (Consul, etcd UIs) and is skipped.
 *   - Labels only: a segment "name[N]" (as in "tls.domains[0].main") is
 *     the two segments "name" and "N"; "a[0][1]" works too.
 *   - A segment made only of digits is a list index.  A node whose
 *     children are all indices becomes an array ordered by index; the
 *     indices must be exactly 0..N-1.  Mixing indices and names under one
 *     node is an error.
 *   - Names keep their spelling, but two names differing only in case at
 *     the same level are one node.  Its spelling is the byte-wise smallest
 *     of the variants (strcmp), so the tree does not depend on the order of
 *     the pairs; for a store listing keys in byte order (etcd, Redis SCAN
 *     sorted by the provider) this is the first spelling seen.
 *   - The same key given twice (or two spellings of it) must carry the same
 *     value, else it is an error.
 *   - A key that is both a value and a parent ("r/tls" and "r/tls/options")
 *     is an error unless the value is "true" (any case) or empty: Traefik
 *     documents "traefik/http/routers/r/tls = true" next to
 *     "traefik/http/routers/r/tls/certresolver" (and the labels
 *     "...tls=true", "...sticky.cookie=true"); the value is dropped and the
 *     children win.  Alone, "tls = true" stays the string "true" — the
 *     consumer decides what it means for that field.
 *
 * Values stay strings (the typed accessors of conf.c convert "42", "true",
 * "10s"), except in label mode for the slice fields below.
 *
 * Label slice fields.  A label gives a list as one comma-separated value
 * ("traefik.http.routers.r.entrypoints=web, websecure").  Without a schema
 * the decoder splits only leaves whose trailing segments match this list
 * (case-insensitive; '#' stands for a list index).  Each item is trimmed
 * of blanks; empty items are dropped.  Collected from Traefik v3's
 * dynamic-configuration references (docs/content/reference/
 * dynamic-configuration/file.yaml, kv-ref.md, docker-labels.yml: every
 * field given as "foobar, foobar" in labels or as key/0, key/1 in KV):
 *   routers:          entrypoints, middlewares, tls.domains[n].sans
 *   chain:            middlewares
 *   basicauth/digestauth: users
 *   compress:         excludedcontenttypes, includedcontenttypes, encodings
 *   errors:           status            (not healthcheck.status, an int)
 *   forwardauth:      authresponseheaders, authrequestheaders,
 *                     addauthcookiestoresponse
 *   grpcweb:          alloworigins
 *   headers:          accesscontrolallowheaders, accesscontrolallowmethods,
 *                     accesscontrolalloworiginlist,
 *                     accesscontrolalloworiginlistregex,
 *                     accesscontrolexposeheaders, allowedhosts,
 *                     hostsproxyheaders
 *   ipallowlist/ipwhitelist (http and tcp): sourcerange
 *   ipstrategy:       excludedips
 *   stripprefix:      prefixes
 *   stripprefixregex: regex   (not redirectregex/replacepathregex.regex,
 *                              single regexes that may contain commas)
 *   serverstransports: rootcas, spiffe.ids
 *   tls:              certificates[n].stores, options.ciphersuites,
 *                     options.curvepreferences, options.alpnprotocols,
 *                     clientauth.cafiles, defaultgeneratedcert.domain.sans
 *   (passtlsclientcert.info.sans is a boolean and is not split.)
 * A label given with explicit indices ("...entrypoints.0=web") is a list
 * through the index rule and is never split.
 *
 * Limits: 1,000,000 pairs, 4096 bytes per key, 32 segments per key below
 * the root (bracket indices count as segments).
 *
 * Pure functions, no global state; any thread.
 */
#include "config.h"

#include "kvconf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- limits ------------------------------------------------------------- */

#define KVC_MAX_PAIRS 1000000u /* pairs per call */
#define KVC_MAX_KEY 4096u      /* bytes of one key */
#define KVC_MAX_DEPTH 32       /* segments of one key below the root */
#define KVC_MAX_INDEX 99999999u /* list index values saturate here */
#define KVC_CHUNK 4096u        /* nodes per pool chunk */

/* ---- slice fields (label mode) ------------------------------------------ */

/* Trailing-segment patterns of the fields split on ',' in label mode; see
 * the file comment for where they come from.  '.' separates segments,
 * '#' matches a list index. */
static const char *const kvc_slice_fields[] = {
    "entrypoints",
    "middlewares",
    "domains.#.sans",
    "domain.sans",
    "basicauth.users",
    "digestauth.users",
    "excludedcontenttypes",
    "includedcontenttypes",
    "compress.encodings",
    "errors.status",
    "authresponseheaders",
    "authrequestheaders",
    "addauthcookiestoresponse",
    "alloworigins",
    "accesscontrolallowheaders",
    "accesscontrolallowmethods",
    "accesscontrolalloworiginlist",
    "accesscontrolalloworiginlistregex",
    "accesscontrolexposeheaders",
    "allowedhosts",
    "hostsproxyheaders",
    "sourcerange",
    "excludedips",
    "stripprefix.prefixes",
    "stripprefixregex.regex",
    "rootcas",
    "spiffe.ids",
    "certificates.#.stores",
    "ciphersuites",
    "curvepreferences",
    "alpnprotocols",
    "cafiles",
};

/* ---- types -------------------------------------------------------------- */

/** One node of the intermediate tree (names and values borrowed from the
 *  caller's pairs, valid for the duration of kvc_decode). */
struct kvc_node {
    const char *name;        /* spelling of this segment (not terminated) */
    size_t len;              /* bytes of name */
    const char *value;       /* value set by a key ending here, or NULL */
    const char *value_key;   /* the key that set value (for errors) */
    const char *some_key;    /* a key passing through this node (errors) */
    struct kvc_node *parent; /* parent node, NULL for the root */
    struct kvc_node *first;  /* first child */
    struct kvc_node *last;   /* last child (appending) */
    struct kvc_node *next;   /* next sibling */
    size_t nkids;            /* number of children */
    int numeric;             /* 1 when name is all digits */
    uint32_t index;          /* its value when numeric (saturated) */
};

/** A chunk of the node pool. */
struct kvc_chunk {
    struct kvc_chunk *prev;            /* previously filled chunk */
    size_t used;                       /* nodes handed out from this one */
    struct kvc_node nodes[KVC_CHUNK];  /* storage */
};

/** Hash slot: the child of a parent with a given folded name. */
struct kvc_slot {
    struct kvc_node *node; /* NULL when empty */
    uint64_t hash;         /* full hash of (parent, folded name) */
};

/** State of one kvc_decode call. */
struct kvc_ctx {
    const struct kvc_options *opt; /* caller's options */
    struct kvc_error *err;         /* caller's error (may be a local) */
    struct kvc_chunk *chunks;      /* node pool, newest first */
    struct kvc_slot *slots;        /* open-addressing child index */
    size_t nslots;                 /* capacity (power of two) */
    size_t nused;                  /* occupied slots */
    struct kvc_node *root;         /* the tree root (below opt->root) */
    const char *path[KVC_MAX_DEPTH + 1]; /* names on the way to a leaf */
    size_t plen[KVC_MAX_DEPTH + 1];      /* their lengths */
};

/** One path segment of the key being inserted. */
struct kvc_seg {
    const char *s; /* start, inside the key */
    size_t len;    /* bytes */
};

/* ---- errors ------------------------------------------------------------- */

static void kvc_fail(struct kvc_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Fills the error with key (truncated to fit) and a formatted message. */
static void kvc_fail(struct kvc_ctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    size_t n = key ? strlen(key) : 0;

    if (n >= sizeof c->err->key) n = sizeof c->err->key - 1;
    if (n) memcpy(c->err->key, key, n);
    c->err->key[n] = '\0';
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
    va_end(ap);
}

/* ---- node pool and child index ------------------------------------------ */

/** A zeroed node from the pool, NULL when out of memory. */
static struct kvc_node *kvc_node_alloc(struct kvc_ctx *c)
{
    struct kvc_node *n;

    if (!c->chunks || c->chunks->used == KVC_CHUNK) {
        struct kvc_chunk *k = malloc(sizeof *k);
        if (!k) return NULL;
        k->prev = c->chunks;
        k->used = 0;
        c->chunks = k;
    }
    n = &c->chunks->nodes[c->chunks->used++];
    memset(n, 0, sizeof *n);
    return n;
}

/** Frees the pool and the index. */
static void kvc_ctx_release(struct kvc_ctx *c)
{
    while (c->chunks) {
        struct kvc_chunk *p = c->chunks->prev;
        free(c->chunks);
        c->chunks = p;
    }
    free(c->slots);
    c->slots = NULL;
}

/** ASCII lower case. */
static unsigned char kvc_lower(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch + 32) : ch;
}

/** Hash of (parent, case-folded name): FNV-1a, then mixed. */
static uint64_t kvc_hash(const struct kvc_node *parent, const char *s,
                         size_t len)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= kvc_lower((unsigned char)s[i]);
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

/** Case-insensitive equality of two (pointer, length) names. */
static int kvc_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;

    if (alen != blen) return 0;
    for (i = 0; i < alen; i++)
        if (kvc_lower((unsigned char)a[i]) != kvc_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/** Grows the index to twice its size (or 1024 slots).  0 ok, -1 no
 *  memory. */
static int kvc_index_grow(struct kvc_ctx *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 1024;
    struct kvc_slot *s = calloc(n, sizeof *s);
    size_t i;

    if (!s) return -1;
    for (i = 0; i < c->nslots; i++) {
        size_t j;
        if (!c->slots[i].node) continue;
        j = (size_t)c->slots[i].hash & (n - 1);
        while (s[j].node) j = (j + 1) & (n - 1);
        s[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = s;
    c->nslots = n;
    return 0;
}

/** True when the segment is a non-empty run of ASCII digits. */
static int kvc_all_digits(const char *s, size_t len)
{
    size_t i;

    if (len == 0) return 0;
    for (i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/**
 * The child of parent named seg (any case), created when missing.  The
 * stored spelling becomes the strcmp-smallest seen.  key is recorded for
 * error messages.  NULL on out of memory (err filled).
 */
static struct kvc_node *kvc_child(struct kvc_ctx *c, struct kvc_node *parent,
                                  const struct kvc_seg *seg, const char *key)
{
    uint64_t h = kvc_hash(parent, seg->s, seg->len);
    struct kvc_node *n;
    size_t j;

    if ((c->nused + 1) * 2 > c->nslots && kvc_index_grow(c) < 0) goto oom;
    j = (size_t)h & (c->nslots - 1);
    for (; c->slots[j].node; j = (j + 1) & (c->nslots - 1)) {
        n = c->slots[j].node;
        if (c->slots[j].hash != h || n->parent != parent ||
            !kvc_name_eq(n->name, n->len, seg->s, seg->len))
            continue;
        /* same name up to case: keep the byte-wise smallest spelling */
        if (memcmp(seg->s, n->name, seg->len) < 0) n->name = seg->s;
        return n;
    }
    n = kvc_node_alloc(c);
    if (!n) goto oom;
    n->name = seg->s;
    n->len = seg->len;
    n->parent = parent;
    n->some_key = key;
    n->numeric = kvc_all_digits(seg->s, seg->len);
    if (n->numeric) {
        uint32_t v = 0;
        size_t i;
        for (i = 0; i < seg->len; i++) {
            v = v * 10 + (uint32_t)(seg->s[i] - '0');
            if (v > KVC_MAX_INDEX) {
                v = KVC_MAX_INDEX;
                break;
            }
        }
        n->index = v;
    }
    if (parent->last)
        parent->last->next = n;
    else
        parent->first = n;
    parent->last = n;
    parent->nkids++;
    c->slots[j].node = n;
    c->slots[j].hash = h;
    c->nused++;
    return n;
oom:
    kvc_fail(c, key, "out of memory");
    return NULL;
}

/* ---- keys --------------------------------------------------------------- */

/**
 * Where the part of key below the root starts, or NULL when key is not
 * under the root (or is the root itself).  root/rootlen: the root with
 * trailing separators removed; rootlen 0 means no root.
 */
static const char *kvc_below_root(const char *key, const char *root,
                                  size_t rootlen, char sep)
{
    if (rootlen == 0) return key;
    if (strncasecmp(key, root, rootlen) != 0) return NULL;
    if (key[rootlen] != sep) return NULL;
    return key + rootlen + 1;
}

/**
 * Splits rest (the key below the root) into segs.  Label mode splits
 * "name[N]" into "name", "N".  Returns the number of segments, 0 for a
 * key to skip (folder marker), -1 on error (err filled).
 */
static int kvc_split(struct kvc_ctx *c, const char *key, const char *rest,
                     const char *value, struct kvc_seg *segs)
{
    char sep = c->opt->sep;
    int labels = c->opt->labels;
    const char *p = rest;
    int n = 0;

    if (*p == '\0') {
        if (*value == '\0') return 0;
        kvc_fail(c, key, "empty path segment");
        return -1;
    }
    for (;;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);

        if (len == 0) {
            /* "root/a/" with an empty value: a folder marker */
            if (!e && n > 0 && *value == '\0') return 0;
            kvc_fail(c, key, "empty path segment");
            return -1;
        }
        if (labels && memchr(p, '[', len)) {
            const char *b = memchr(p, '[', len);
            const char *end = p + len;

            if (b == p) {
                kvc_fail(c, key, "list index without a name");
                return -1;
            }
            if (n >= KVC_MAX_DEPTH) goto deep;
            segs[n].s = p;
            segs[n].len = (size_t)(b - p);
            n++;
            while (b < end) {
                const char *q = b + 1;
                const char *close;
                if (*b != '[') goto bad_index;
                close = memchr(q, ']', (size_t)(end - q));
                if (!close || !kvc_all_digits(q, (size_t)(close - q)))
                    goto bad_index;
                if (n >= KVC_MAX_DEPTH) goto deep;
                segs[n].s = q;
                segs[n].len = (size_t)(close - q);
                n++;
                b = close + 1;
            }
        } else {
            if (n >= KVC_MAX_DEPTH) goto deep;
            segs[n].s = p;
            segs[n].len = len;
            n++;
        }
        if (!e) break;
        p = e + 1;
    }
    return n;
deep:
    kvc_fail(c, key, "key is deeper than %d segments", KVC_MAX_DEPTH);
    return -1;
bad_index:
    kvc_fail(c, key, "malformed list index (expected name[N])");
    return -1;
}

/** Inserts one pair.  0 ok (or skipped), -1 error (err filled). */
static int kvc_insert(struct kvc_ctx *c, const char *key, const char *value,
                      const char *root, size_t rootlen)
{
    struct kvc_seg segs[KVC_MAX_DEPTH];
    struct kvc_node *n = c->root;
    const char *rest;
    int nseg, i;

    rest = kvc_below_root(key, root, rootlen, c->opt->sep);
    if (!rest) return 0;
    if (strlen(key) > KVC_MAX_KEY) {
        kvc_fail(c, key, "key longer than %u bytes", KVC_MAX_KEY);
        return -1;
    }
    nseg = kvc_split(c, key, rest, value, segs);
    if (nseg <= 0) return nseg;
    for (i = 0; i < nseg; i++) {
        n = kvc_child(c, n, &segs[i], key);
        if (!n) return -1;
    }
    if (n->value && strcmp(n->value, value) != 0) {
        kvc_fail(c, key, "conflicting values for the same key (\"%s\" set "
                 "it too)", n->value_key);
        return -1;
    }
    if (!n->value) {
        n->value = value;
        n->value_key = key;
    }
    return 0;
}

/* ---- building the json tree --------------------------------------------- */

/** True when the last segments of the path (c->path[0..depth)) match the
 *  pattern ('.'-separated, '#' = a list index, case-insensitive). */
static int kvc_path_matches(const struct kvc_ctx *c, size_t depth,
                            const char *pat)
{
    size_t k = 1, i;
    const char *p;

    for (p = pat; *p; p++)
        if (*p == '.') k++;
    if (k > depth) return 0;
    p = pat;
    for (i = depth - k; i < depth; i++) {
        const char *e = strchr(p, '.');
        size_t len = e ? (size_t)(e - p) : strlen(p);

        if (len == 1 && *p == '#') {
            if (!kvc_all_digits(c->path[i], c->plen[i])) return 0;
        } else if (!kvc_name_eq(p, len, c->path[i], c->plen[i])) {
            return 0;
        }
        p = e ? e + 1 : p + len;
    }
    return 1;
}

/** True when the leaf at c->path[0..depth) is a label slice field. */
static int kvc_is_slice(const struct kvc_ctx *c, size_t depth)
{
    size_t i;

    for (i = 0; i < sizeof kvc_slice_fields / sizeof kvc_slice_fields[0]; i++)
        if (kvc_path_matches(c, depth, kvc_slice_fields[i])) return 1;
    return 0;
}

/** A blank (space, tab, newline) character. */
static int kvc_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/** The array of the comma-separated, trimmed, non-empty items of value,
 *  or NULL (err filled) on bad UTF-8 or no memory. */
static json_t *kvc_split_list(struct kvc_ctx *c, const char *key,
                              const char *value)
{
    json_t *arr = json_array();
    const char *p = value;

    if (!arr) goto oom;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *b = p;

        while (b < end && kvc_blank(*b)) b++;
        while (end > b && kvc_blank(end[-1])) end--;
        if (end > b) {
            json_t *s = json_stringn(b, (size_t)(end - b));
            if (!s) {
                kvc_fail(c, key, "value is not valid UTF-8");
                json_decref(arr);
                return NULL;
            }
            if (json_array_append_new(arr, s) < 0) goto oom;
        }
        if (!e) break;
        p = e + 1;
    }
    return arr;
oom:
    json_decref(arr);
    kvc_fail(c, key, "out of memory");
    return NULL;
}

/** Orders numeric nodes by index. */
static int kvc_cmp_index(const void *a, const void *b)
{
    const struct kvc_node *x = *(struct kvc_node *const *)a;
    const struct kvc_node *y = *(struct kvc_node *const *)b;

    return (x->index > y->index) - (x->index < y->index);
}

/** True for a value that may sit on a node that also has children. */
static int kvc_enabler(const char *v)
{
    return *v == '\0' || strcasecmp(v, "true") == 0;
}

static json_t *kvc_build(struct kvc_ctx *c, const struct kvc_node *n,
                         size_t depth);

/** Builds the array of n's numeric children (sorted; 0..N-1 checked). */
static json_t *kvc_build_array(struct kvc_ctx *c, const struct kvc_node *n,
                               size_t depth)
{
    struct kvc_node **v = malloc(n->nkids * sizeof *v);
    json_t *arr = NULL;
    struct kvc_node *k;
    size_t i = 0;

    if (!v || !(arr = json_array())) {
        kvc_fail(c, n->some_key, "out of memory");
        goto fail;
    }
    for (k = n->first; k; k = k->next) v[i++] = k;
    qsort(v, n->nkids, sizeof *v, kvc_cmp_index);
    for (i = 0; i < n->nkids; i++) {
        if (v[i]->index != i) {
            kvc_fail(c, v[i]->some_key,
                     "list indices must be exactly 0..%zu (index %u %s)",
                     n->nkids - 1, (unsigned)v[i]->index,
                     v[i]->index < i ? "is repeated" : "leaves a gap");
            goto fail;
        }
    }
    for (i = 0; i < n->nkids; i++) {
        json_t *e = kvc_build(c, v[i], depth + 1);
        if (!e) goto fail;
        if (json_array_append_new(arr, e) < 0) {
            kvc_fail(c, v[i]->some_key, "out of memory");
            goto fail;
        }
    }
    free(v);
    return arr;
fail:
    free(v);
    json_decref(arr);
    return NULL;
}

/** Builds the object of n's named children. */
static json_t *kvc_build_object(struct kvc_ctx *c, const struct kvc_node *n,
                                size_t depth)
{
    json_t *obj = json_object();
    struct kvc_node *k;

    if (!obj) {
        kvc_fail(c, n->some_key, "out of memory");
        return NULL;
    }
    for (k = n->first; k; k = k->next) {
        json_t *e = kvc_build(c, k, depth + 1);
        if (!e) goto fail;
        if (json_object_setn_new(obj, k->name, k->len, e) < 0) {
            kvc_fail(c, k->some_key, "key is not valid UTF-8");
            goto fail;
        }
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

/**
 * The json value of node n, whose name is at depth-1 of c->path (depth 0:
 * the root).  A new reference, or NULL with err filled.
 */
static json_t *kvc_build(struct kvc_ctx *c, const struct kvc_node *n,
                         size_t depth)
{
    struct kvc_node *k;
    size_t nnum = 0;
    json_t *s;

    if (depth > 0) {
        c->path[depth - 1] = n->name;
        c->plen[depth - 1] = n->len;
    }
    if (n->nkids == 0) {
        if (c->opt->labels && kvc_is_slice(c, depth))
            return kvc_split_list(c, n->value_key, n->value);
        s = json_string(n->value);
        if (!s) kvc_fail(c, n->value_key, "value is not valid UTF-8");
        return s;
    }
    if (n->value && !kvc_enabler(n->value)) {
        kvc_fail(c, n->value_key,
                 "key has a value and is also the parent of other keys "
                 "(e.g. \"%s\")", n->first->some_key);
        return NULL;
    }
    for (k = n->first; k; k = k->next) nnum += (size_t)k->numeric;
    if (nnum == n->nkids && depth == 0) {
        /* a configuration is a map: a list at the top would be taken for
           an empty configuration */
        kvc_fail(c, n->first->some_key, "list index at the top level (expected http, tcp, "
                                        "udp or tls)");
        return NULL;
    }
    if (nnum == n->nkids) return kvc_build_array(c, n, depth);
    if (nnum != 0) {
        for (k = n->first; k && !k->numeric; k = k->next) {}
        kvc_fail(c, k ? k->some_key : n->some_key,
                 "list indices mixed with names under one key");
        return NULL;
    }
    return kvc_build_object(c, n, depth);
}

/* ---- entry point -------------------------------------------------------- */

json_t *kvc_decode(const struct kvc_pair *pairs, size_t n,
                   const struct kvc_options *opt, struct kvc_error *err)
{
    struct kvc_error local;
    struct kvc_ctx c;
    const char *root = opt && opt->root ? opt->root : "";
    size_t rootlen = strlen(root);
    json_t *out = NULL;
    size_t i;

    memset(&c, 0, sizeof c);
    c.err = err ? err : &local;
    c.err->key[0] = '\0';
    c.err->msg[0] = '\0';
    c.opt = opt;
    /* any separator but NUL and the label index brackets */
    if (!opt || opt->sep == '\0' || opt->sep == '[' || opt->sep == ']') {
        kvc_fail(&c, "", "invalid options (separator)");
        return NULL;
    }
    if (n > KVC_MAX_PAIRS) {
        kvc_fail(&c, "", "more than %u pairs", KVC_MAX_PAIRS);
        return NULL;
    }
    if (n && !pairs) {
        kvc_fail(&c, "", "no pairs given");
        return NULL;
    }
    while (rootlen && root[rootlen - 1] == opt->sep) rootlen--;
    c.root = kvc_node_alloc(&c);
    if (!c.root) {
        kvc_fail(&c, "", "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        if (!pairs[i].key || !pairs[i].value) {
            kvc_fail(&c, pairs[i].key ? pairs[i].key : "",
                     "missing key or value");
            goto done;
        }
        if (kvc_insert(&c, pairs[i].key, pairs[i].value, root, rootlen) < 0)
            goto done;
    }
    if (c.root->nkids == 0)
        out = json_object(); /* nothing under the root: an empty document */
    else
        out = kvc_build(&c, c.root, 0);
    if (!out && !c.err->msg[0]) kvc_fail(&c, "", "out of memory");
done:
    kvc_ctx_release(&c);
    return out;
}
