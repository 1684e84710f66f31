/*
 * blockcache — see blockcache.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blockcache.h"

#define BC_UNCACHED UINT32_MAX /* header class of a block of its own size */

/* The header in front of each block (16 bytes: the block stays aligned
 * as malloc's). */
struct bc_hdr {
    uint32_t cls;  /* size class, or BC_UNCACHED */
    uint32_t pad;  /* padding */
    size_t size;   /* bytes usable after the header */
};

/* Class of a request of size bytes under s, or BC_UNCACHED. */
static uint32_t bc_class(const struct bc_shape *s, size_t size)
{
    uint32_t k = 0;
    size_t cap = s->min;

    if (size <= s->floor || size > s->min << (s->classes - 1)) return BC_UNCACHED;
    while (cap < size) {
        cap <<= 1;
        k++;
    }
    return k;
}

void *bc_alloc(struct bc_cache *c, const struct bc_shape *s, size_t size)
{
    uint32_t k = bc_class(s, size);
    struct bc_hdr *h;

    if (k != BC_UNCACHED) {
        size = s->min << k;
        if (c->free[k]) {
            void *p = c->free[k];
            memcpy(&c->free[k], p, sizeof(void *));
            c->kept -= size;
            return p;
        }
    } else if (size > SIZE_MAX - sizeof(*h)) {
        return NULL;
    }
    h = malloc(sizeof(*h) + size);
    if (!h) return NULL;
    h->cls = k;
    h->pad = 0;
    h->size = size;
    return h + 1;
}

void bc_free(struct bc_cache *c, const struct bc_shape *s, void *p)
{
    struct bc_hdr *h;

    if (!p) return;
    h = (struct bc_hdr *)p - 1;
    if (h->cls != BC_UNCACHED && c->kept + h->size <= s->keep) {
        memcpy(p, &c->free[h->cls], sizeof(void *));
        c->free[h->cls] = p;
        c->kept += h->size;
        return;
    }
    free(h);
}

void *bc_realloc(struct bc_cache *c, const struct bc_shape *s, void *p, size_t size)
{
    struct bc_hdr *h;
    void *np;

    if (!p) return bc_alloc(c, s, size);
    if (size == 0) {
        bc_free(c, s, p);
        return NULL;
    }
    h = (struct bc_hdr *)p - 1;
    if (size <= h->size && (h->cls != BC_UNCACHED || size == h->size)) return p;
    np = bc_alloc(c, s, size);
    if (!np) return NULL;
    memcpy(np, p, size < h->size ? size : h->size);
    bc_free(c, s, p);
    return np;
}

void bc_clear(struct bc_cache *c)
{
    for (int k = 0; k < BC_MAX_CLASSES; k++) {
        while (c->free[k]) {
            void *p = c->free[k];
            memcpy(&c->free[k], p, sizeof(void *));
            free((struct bc_hdr *)p - 1);
        }
    }
    c->kept = 0;
}
