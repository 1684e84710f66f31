/*
 * router — see router.h.
 *
 * Every entry gets a rank (its position in priority order).  Each index
 * bucket holds the ranks of its entries in ascending order, so a lookup
 * merges at most a handful of sorted lists (exact host, each wildcard
 * suffix of the host, host-less) and stops at the first matching rule:
 * the cost depends on the rules that can match this host, not on the size
 * of the table.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "router.h"

#define RT_MAX_HOST 256   /* longer hosts cannot be indexed */
#define RT_MAX_LISTS 40   /* exact + suffixes (labels) + host-less */

/** A list of ranks. */
struct rt_list {
    uint32_t *v; /* ranks, ascending */
    uint32_t n;  /* used */
    uint32_t cap; /* allocated */
};

/** One bucket of a host index. */
struct rt_slot {
    char *key;          /* lowercase host or wildcard suffix; NULL = empty */
    uint64_t hash;      /* hash of key */
    struct rt_list list; /* entries indexed under key */
};

/** An open-addressing hash of host → rank list. */
struct rt_index {
    struct rt_slot *slots; /* 2^k slots */
    size_t mask;           /* slots - 1 */
    size_t used;           /* occupied slots */
};

/** The table. */
struct rt_table {
    struct rt_entry *entries;  /* in rank order */
    size_t n;                  /* entries */
    struct rt_index exact;     /* exact hosts */
    struct rt_index wild;      /* wildcard suffixes ("example.com") */
    struct rt_list hostless;   /* rules with no host constraint */
};

/* FNV-1a over the lowercase bytes of s[0..len). */
static uint64_t rt_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c |= 0x20;
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Appends rank r to l unless it is already the last one.  0 / -1. */
static int rt_list_add(struct rt_list *l, uint32_t r)
{
    if (l->n && l->v[l->n - 1] == r) return 0;
    if (l->n == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 4;
        uint32_t *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv) return -1;
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = r;
    return 0;
}

/* Case-insensitive equality of key (lowercase, NUL-terminated) with
 * s[0..len). */
static int rt_key_eq(const char *key, const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c |= 0x20;
        if ((unsigned char)key[i] != c) return 0;
    }
    return key[i] == '\0';
}

/* Finds the slot for s[0..len) in ix: the occupied one or the empty one
 * where it would go. */
static struct rt_slot *rt_index_slot(const struct rt_index *ix, const char *s,
                                     size_t len, uint64_t h)
{
    size_t i = (size_t)h & ix->mask;

    for (;;) {
        struct rt_slot *sl = &ix->slots[i];
        if (!sl->key || (sl->hash == h && rt_key_eq(sl->key, s, len)))
            return sl;
        i = (i + 1) & ix->mask;
    }
}

/* Prepares ix for up to n keys.  0 / -1. */
static int rt_index_init(struct rt_index *ix, size_t n)
{
    size_t cap = 16;

    while (cap < n * 2 + 1) cap <<= 1;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    ix->mask = cap - 1;
    ix->used = 0;
    return ix->slots ? 0 : -1;
}

/* Adds rank r under key s[0..len) (lowercased).  0 / -1. */
static int rt_index_add(struct rt_index *ix, const char *s, size_t len,
                        uint32_t r)
{
    uint64_t h = rt_hash(s, len);
    struct rt_slot *sl = rt_index_slot(ix, s, len, h);

    if (!sl->key) {
        sl->key = malloc(len + 1);
        if (!sl->key) return -1;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            sl->key[i] = (char)((c >= 'A' && c <= 'Z') ? (c | 0x20) : c);
        }
        sl->key[len] = '\0';
        sl->hash = h;
        ix->used++;
    }
    return rt_list_add(&sl->list, r);
}

/* The list under s[0..len), or NULL. */
static const struct rt_list *rt_index_get(const struct rt_index *ix,
                                          const char *s, size_t len)
{
    struct rt_slot *sl;

    if (!ix->used) return NULL;
    sl = rt_index_slot(ix, s, len, rt_hash(s, len));
    return sl->key ? &sl->list : NULL;
}

/* Frees the keys and lists of ix. */
static void rt_index_free(struct rt_index *ix)
{
    if (!ix->slots) return;
    for (size_t i = 0; i <= ix->mask; i++) {
        free(ix->slots[i].key);
        free(ix->slots[i].list.v);
    }
    free(ix->slots);
}

/* qsort comparator: priority descending, then name ascending. */
static int rt_entry_cmp(const void *a, const void *b)
{
    const struct rt_entry *x = a, *y = b;
    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

/** Context of rule_hosts' callback while indexing one entry. */
struct rt_add_ctx {
    struct rt_table *t; /* table being built */
    uint32_t rank;      /* rank of the entry */
    int failed;         /* an allocation failed */
};

/* rule_hosts callback: index the entry under host. */
static void rt_add_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct rt_add_ctx *c = arg;
    struct rt_index *ix = wildcard ? &c->t->wild : &c->t->exact;

    if (rt_index_add(ix, host, len, c->rank) < 0) c->failed = 1;
}

struct rt_table *rt_table_new(const struct rt_entry *entries, size_t n)
{
    struct rt_table *t = calloc(1, sizeof(*t));
    size_t i;

    if (!t) return NULL;
    t->n = n;
    t->entries = malloc((n ? n : 1) * sizeof(*t->entries));
    if (!t->entries || rt_index_init(&t->exact, n) < 0 ||
        rt_index_init(&t->wild, n / 4 + 1) < 0)
        goto fail;
    if (n) memcpy(t->entries, entries, n * sizeof(*entries));
    qsort(t->entries, n, sizeof(*t->entries), rt_entry_cmp);
    for (i = 0; i < n; i++) {
        struct rt_add_ctx c = {t, (uint32_t)i, 0};
        if (!t->entries[i].rule ||
            !rule_hosts(t->entries[i].rule, rt_add_host, &c)) {
            if (rt_list_add(&t->hostless, (uint32_t)i) < 0) goto fail;
        }
        if (c.failed) goto fail;
    }
    return t;
fail:
    rt_table_free(t);
    return NULL;
}

void rt_table_free(struct rt_table *t)
{
    if (!t) return;
    rt_index_free(&t->exact);
    rt_index_free(&t->wild);
    free(t->hostless.v);
    free(t->entries);
    free(t);
}

size_t rt_size(const struct rt_table *t)
{
    return t ? t->n : 0;
}

void *rt_match(const struct rt_table *t, const struct rule_req *req)
{
    const struct rt_list *lists[RT_MAX_LISTS];
    uint32_t pos[RT_MAX_LISTS];
    size_t nl = 0, i;
    const char *h = req->host;
    size_t hl = req->host_len;

    if (!t || !t->n) return NULL;
    if (h && hl && hl <= RT_MAX_HOST) {
        const struct rt_list *l = rt_index_get(&t->exact, h, hl);
        if (l) lists[nl++] = l;
        if (t->wild.used) {
            /* every proper suffix after a dot: a.b.c -> b.c, c */
            for (i = 0; i < hl && nl < RT_MAX_LISTS - 1; i++) {
                if (h[i] != '.' || i + 1 >= hl) continue;
                l = rt_index_get(&t->wild, h + i + 1, hl - i - 1);
                if (l) lists[nl++] = l;
            }
        }
    }
    if (t->hostless.n) lists[nl++] = &t->hostless;
    memset(pos, 0, sizeof(pos[0]) * nl);
    for (;;) {
        uint32_t best = UINT32_MAX;
        size_t bl = 0;
        for (i = 0; i < nl; i++) {
            if (pos[i] < lists[i]->n && lists[i]->v[pos[i]] < best) {
                best = lists[i]->v[pos[i]];
                bl = i;
            }
        }
        if (best == UINT32_MAX) return NULL;
        pos[bl]++;
        /* the same rank may sit in two lists (Host(a) || Host(*.a)) */
        for (i = 0; i < nl; i++)
            if (pos[i] < lists[i]->n && lists[i]->v[pos[i]] == best) pos[i]++;
        if (!t->entries[best].rule || rule_match(t->entries[best].rule, req))
            return t->entries[best].data;
    }
}
