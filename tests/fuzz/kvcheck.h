/*
 * kvcheck.h — the properties of kvc_decode (src/kvconf.c) that fuzz_kv and
 * fuzz_labels both check.  Included by the two targets only (static
 * functions, no state); FZ_CHECK must be defined before inclusion.
 *
 * fzkv_check(pairs, n, opt) decodes the pairs and aborts when:
 *  - a failure leaves the error message empty or unterminated;
 *  - the result is not an object, or json_dumps fails on it;
 *  - decoding the same pairs in reverse order does not give the same
 *    outcome (both fail, or both succeed with json_equal trees): the
 *    tree must not depend on the order of the pairs (kvconf.c promises
 *    it for spellings; conflicts and list indices are order-free too);
 *  - a leaf string is not a substring of some input value (values are
 *    kept, or split and trimmed in label mode, never invented);
 *  - flattening the tree back into pairs (objects by key, lists by index,
 *    under the same root and separator) and decoding those does not give
 *    an equal tree (skipped when the tree holds an empty list or object,
 *    which pairs cannot express, or when a flattened key would break the
 *    depth or length limit: splitting a label list adds a level).
 */
#ifndef RELAIS_FUZZ_KVCHECK_H
#define RELAIS_FUZZ_KVCHECK_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvconf.h"

/** Pairs built by flattening a tree (owned strings). */
struct fzkv_flat {
    struct kvc_pair *v; /* the pairs (key and value malloc'd) */
    size_t n;           /* used */
    size_t cap;         /* allocated */
    int inexpressible;  /* an empty list / object below the root was seen */
};

/** Appends an owned key and value. */
static void fzkv_flat_add(struct fzkv_flat *f, char *key, char *value)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 64;
        struct kvc_pair *nv = realloc(f->v, nc * sizeof *nv);
        if (!nv) abort();
        f->v = nv;
        f->cap = nc;
    }
    f->v[f->n].key = key;
    f->v[f->n].value = value;
    f->n++;
}

/** Frees the flattened pairs. */
static void fzkv_flat_free(struct fzkv_flat *f)
{
    size_t i;

    for (i = 0; i < f->n; i++) {
        free((char *)f->v[i].key);
        free((char *)f->v[i].value);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

/** prefix + sep + part (just part when prefix is empty), new string. */
static char *fzkv_join(const char *prefix, char sep, const char *part)
{
    size_t a = strlen(prefix), b = strlen(part);
    char *s = malloc(a + b + 2);

    if (!s) abort();
    if (a) {
        memcpy(s, prefix, a);
        s[a++] = sep;
    }
    memcpy(s + a, part, b + 1);
    return s;
}

/** Flattens v, found at key path prefix (depth segments below the root),
 *  into f.  Keys kvc_decode would refuse for their size (deeper than 32
 *  segments, longer than 4096 bytes: a split label list adds a level)
 *  make the tree inexpressible. */
static void fzkv_flatten(const json_t *v, const char *prefix, char sep,
                         struct fzkv_flat *f, int depth)
{
    const char *k;
    json_t *c;
    size_t i;
    char idx[32], *key;

    if (json_is_object(v)) {
        if (depth > 0 && json_object_size(v) == 0) f->inexpressible = 1;
        json_object_foreach((json_t *)v, k, c) {
            key = fzkv_join(prefix, sep, k);
            fzkv_flatten(c, key, sep, f, depth + 1);
            free(key);
        }
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0) f->inexpressible = 1;
        json_array_foreach(v, i, c) {
            snprintf(idx, sizeof idx, "%zu", i);
            key = fzkv_join(prefix, sep, idx);
            fzkv_flatten(c, key, sep, f, depth + 1);
            free(key);
        }
    } else {
        FZ_CHECK(json_is_string(v)); /* values stay strings */
        if (depth > 32 || strlen(prefix) > 4096) f->inexpressible = 1;
        key = strdup(prefix);
        if (!key) abort();
        fzkv_flat_add(f, key, strdup(json_string_value(v)));
        if (!f->v[f->n - 1].value) abort();
    }
}

/** 1 when s occurs in some value of pairs[0..n). */
static int fzkv_in_values(const struct kvc_pair *pairs, size_t n, const char *s)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (pairs[i].key && pairs[i].value && strstr(pairs[i].value, s)) return 1;
    return 0;
}

/** Checks every leaf of v against the input values. */
static void fzkv_leaves(const json_t *v, const struct kvc_pair *pairs, size_t n)
{
    const char *k;
    json_t *c;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c) fzkv_leaves(c, pairs, n);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c) fzkv_leaves(c, pairs, n);
    } else {
        FZ_CHECK(json_is_string(v));
        FZ_CHECK(fzkv_in_values(pairs, n, json_string_value(v)));
    }
}

/** Decodes and checks a failure's error; returns the tree or NULL. */
static json_t *fzkv_decode(const struct kvc_pair *pairs, size_t n,
                           const struct kvc_options *opt)
{
    struct kvc_error err;
    json_t *t;

    memset(&err, 0x5a, sizeof err);
    t = kvc_decode(pairs, n, opt, &err);
    if (!t) {
        FZ_CHECK(memchr(err.msg, 0, sizeof err.msg) && err.msg[0]);
        FZ_CHECK(memchr(err.key, 0, sizeof err.key) != NULL);
    } else {
#ifdef FZ_KNOWN_TOPLEVEL_LIST
        /* known bug (corpus/kv/crash_toplevel_list): a top level made only
         * of list indices decodes to an array; built with this macro the
         * target treats it as a refusal, to look for other bugs */
        if (!json_is_object(t)) {
            json_decref(t);
            return NULL;
        }
#endif
        FZ_CHECK(json_is_object(t));
    }
    return t;
}

/**
 * Runs every check of the file comment on pairs[0..n) decoded with opt.
 * Returns 1 when the pairs decoded, 0 when they did not.
 */
static int fzkv_check(const struct kvc_pair *pairs, size_t n,
                      const struct kvc_options *opt)
{
    struct kvc_pair *rev;
    struct fzkv_flat flat;
    json_t *t, *t2;
    char *dump, *root;
    size_t i, rl;

    t = fzkv_decode(pairs, n, opt);
    /* order independence */
    rev = malloc((n ? n : 1) * sizeof *rev);
    if (!rev) abort();
    for (i = 0; i < n; i++) rev[i] = pairs[n - 1 - i];
    t2 = fzkv_decode(rev, n, opt);
    free(rev);
    FZ_CHECK(!t == !t2);
    if (t) FZ_CHECK(json_equal(t, t2));
    json_decref(t2);
    if (!t) return 0;
    dump = json_dumps(t, JSON_COMPACT);
    FZ_CHECK(dump != NULL);
    free(dump);
    fzkv_leaves(t, pairs, n);
    /* round trip through flattened pairs */
    root = strdup(opt->root ? opt->root : "");
    if (!root) abort();
    rl = strlen(root);
    while (rl && root[rl - 1] == opt->sep) root[--rl] = 0;
    memset(&flat, 0, sizeof flat);
    fzkv_flatten(t, root, opt->sep, &flat, 0);
    if (!flat.inexpressible) {
        t2 = fzkv_decode(flat.v, flat.n, opt);
        FZ_CHECK(t2 && json_equal(t, t2));
        json_decref(t2);
    }
    fzkv_flat_free(&flat);
    free(root);
    json_decref(t);
    return 1;
}

#endif /* RELAIS_FUZZ_KVCHECK_H */
