/*
 * message — header lists of requests and responses, independent of the HTTP
 * version (the SDK's relais_hdrs).  Module prefix: msg_.
 *
 * Names and values point into the owning request's arena (the head is
 * copied there once) or into constant strings; nothing is freed singly.
 * Thread-safety: owned by one worker thread.
 */
#ifndef RELAIS_MESSAGE_H
#define RELAIS_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

struct arena;

/** One header field. */
struct msg_hdr {
    const char *name;  /* field name (not NUL-terminated) */
    const char *value; /* field value (not NUL-terminated) */
    uint32_t nlen;     /* name length */
    uint32_t vlen;     /* value length */
};

/** A header list (the SDK's opaque relais_hdrs). */
struct relais_hdrs {
    struct msg_hdr *v;   /* fields, in order */
    uint32_t n;          /* fields used */
    uint32_t cap;        /* fields allocated */
    uint32_t max;        /* hard cap on fields */
    struct arena *arena; /* where fields and copies are allocated */
};

/** Prepares an empty list allocating from a, holding at most max fields.
 *  0, or -1 when out of memory. */
int msg_hdrs_init(struct relais_hdrs *h, struct arena *a, uint32_t initial,
                  uint32_t max);

/** Appends a field; with copy the bytes are copied into the arena.
 *  0, or -1 (cap reached or out of memory). */
int msg_hdrs_add(struct relais_hdrs *h, const char *name, size_t nlen,
                 const char *value, size_t vlen, int copy);

/** Index of the first field called name at or after start, or -1. */
long msg_hdrs_find(const struct relais_hdrs *h, const char *name, size_t nlen,
                   size_t start);

/** Removes every field called name; returns how many. */
size_t msg_hdrs_del(struct relais_hdrs *h, const char *name, size_t nlen);

/** Case-insensitive equality of a[0..alen) and b[0..blen). */
int msg_name_eq(const char *a, size_t alen, const char *b, size_t blen);

/* SDK host functions over relais_hdrs (see relais_host). */
size_t msg_api_count(relais_hdrs *h);
int msg_api_at(relais_hdrs *h, size_t i, const char **name, size_t *nlen,
               const char **value, size_t *vlen);
const char *msg_api_get(relais_hdrs *h, const char *name, size_t idx,
                        size_t *vlen);
int msg_api_set(relais_hdrs *h, const char *name, const char *value,
                size_t vlen);
int msg_api_add(relais_hdrs *h, const char *name, const char *value,
                size_t vlen);
size_t msg_api_del(relais_hdrs *h, const char *name);

#endif /* RELAIS_MESSAGE_H */
