/*
 * kvconf — flat key/value configuration (Traefik's KV-store layout and
 * container labels) decoded into the same jansson tree a YAML or JSON
 * dynamic file gives.  Module prefix: kvc_.
 *
 * Used by the providers that read etcd, Redis, Consul-like stores (keys
 * "traefik/http/routers/r1/rule", separator '/') and container labels
 * ("traefik.http.routers.r1.rule", separator '.').
 *
 * Pure functions; any thread.
 */
#ifndef RELAIS_KVCONF_H
#define RELAIS_KVCONF_H

#include <jansson.h>
#include <stddef.h>

/** One key and its value (both NUL-terminated). */
struct kvc_pair {
    const char *key;   /* full key, e.g. "traefik/http/routers/r1/rule" */
    const char *value; /* its value as stored */
};

/** Why a set of pairs could not be decoded. */
struct kvc_error {
    char key[512];  /* the offending key */
    char msg[256];  /* what is wrong */
};

/** Decoding options. */
struct kvc_options {
    char sep;          /* path separator: '/' (KV) or '.' (labels) */
    const char *root;  /* prefix to match and strip ("traefik"); pairs
                          outside it are ignored; matched without regard
                          to case */
    int labels;        /* 1: container-label rules (see kvconf.c) */
};

/**
 * Decodes pairs[0..n) into a new tree (a new reference), or NULL with
 * *err filled: an empty path segment, a key that is both a value and a
 * parent ("a/b" and "a/b/c"), list indices that are not 0..N-1, a key
 * deeper than 32 segments or longer than 4 KiB, more than 1,000,000
 * pairs.  Numeric segments make lists; values stay strings (the typed
 * accessors convert them).
 */
json_t *kvc_decode(const struct kvc_pair *pairs, size_t n,
                   const struct kvc_options *opt, struct kvc_error *err);

#endif /* RELAIS_KVCONF_H */
