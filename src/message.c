/*
 * message — see message.h.
 */
#include "config.h"

#include <string.h>

#include "arena.h"
#include "message.h"

/* ASCII lowercase of c. */
static inline unsigned char msg_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

int msg_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; i++)
        if (msg_lower((unsigned char)a[i]) != msg_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int msg_hdrs_init(struct relais_hdrs *h, struct arena *a, uint32_t initial,
                  uint32_t max)
{
    h->arena = a;
    h->n = 0;
    h->max = max;
    h->cap = initial ? initial : 8;
    if (h->cap > max) h->cap = max;
    h->v = arena_alloc(a, sizeof(*h->v) * h->cap);
    return h->v ? 0 : -1;
}

/* Makes room for one more field.  0 / -1. */
static int msg_hdrs_grow(struct relais_hdrs *h)
{
    struct msg_hdr *nv;
    uint32_t ncap;

    if (h->n < h->cap) return 0;
    if (h->n >= h->max) return -1;
    ncap = h->cap * 2;
    if (ncap > h->max) ncap = h->max;
    nv = arena_alloc(h->arena, sizeof(*nv) * ncap);
    if (!nv) return -1;
    memcpy(nv, h->v, sizeof(*nv) * h->n);
    h->v = nv;
    h->cap = ncap;
    return 0;
}

int msg_hdrs_add(struct relais_hdrs *h, const char *name, size_t nlen,
                 const char *value, size_t vlen, int copy)
{
    struct msg_hdr *f;

    if (nlen > UINT32_MAX || vlen > UINT32_MAX || msg_hdrs_grow(h) < 0)
        return -1;
    if (copy) {
        char *p = arena_alloc(h->arena, nlen + vlen + 2);
        if (!p) return -1;
        memcpy(p, name, nlen);
        p[nlen] = '\0';
        memcpy(p + nlen + 1, value, vlen);
        p[nlen + 1 + vlen] = '\0';
        name = p;
        value = p + nlen + 1;
    }
    f = &h->v[h->n++];
    f->name = name;
    f->nlen = (uint32_t)nlen;
    f->value = value;
    f->vlen = (uint32_t)vlen;
    return 0;
}

long msg_hdrs_find(const struct relais_hdrs *h, const char *name, size_t nlen,
                   size_t start)
{
    for (size_t i = start; i < h->n; i++)
        if (h->v[i].nlen == nlen && msg_name_eq(h->v[i].name, nlen, name, nlen))
            return (long)i;
    return -1;
}

size_t msg_hdrs_del(struct relais_hdrs *h, const char *name, size_t nlen)
{
    uint32_t i, j = 0;
    size_t removed = 0;

    for (i = 0; i < h->n; i++) {
        if (h->v[i].nlen == nlen && msg_name_eq(h->v[i].name, nlen, name, nlen)) {
            removed++;
            continue;
        }
        if (j != i) h->v[j] = h->v[i];
        j++;
    }
    h->n = j;
    return removed;
}

size_t msg_api_count(relais_hdrs *h)
{
    return h ? h->n : 0;
}

int msg_api_at(relais_hdrs *h, size_t i, const char **name, size_t *nlen,
               const char **value, size_t *vlen)
{
    if (!h || i >= h->n) return -1;
    if (name) *name = h->v[i].name;
    if (nlen) *nlen = h->v[i].nlen;
    if (value) *value = h->v[i].value;
    if (vlen) *vlen = h->v[i].vlen;
    return 0;
}

const char *msg_api_get(relais_hdrs *h, const char *name, size_t idx,
                        size_t *vlen)
{
    size_t nlen = strlen(name);
    long i = -1;

    if (!h) return NULL;
    do {
        i = msg_hdrs_find(h, name, nlen, (size_t)(i + 1));
    } while (i >= 0 && idx-- > 0);
    if (i < 0) return NULL;
    if (vlen) *vlen = h->v[i].vlen;
    return h->v[i].value;
}

/* 1 when name is a non-empty token and value holds no CR, LF or NUL: a
 * plugin can never inject a header line. */
static int msg_field_ok(const char *name, const char *value, size_t vlen)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    size_t i;

    if (!name[0]) return 0;
    for (i = 0; name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c && strchr(tchar, c))))
            return 0;
    }
    for (i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0') return 0;
    return 1;
}

int msg_api_set(relais_hdrs *h, const char *name, const char *value,
                size_t vlen)
{
    if (!h || !msg_field_ok(name, value, vlen)) return -1;
    msg_hdrs_del(h, name, strlen(name));
    return msg_hdrs_add(h, name, strlen(name), value, vlen, 1);
}

int msg_api_add(relais_hdrs *h, const char *name, const char *value,
                size_t vlen)
{
    if (!h || !msg_field_ok(name, value, vlen)) return -1;
    return msg_hdrs_add(h, name, strlen(name), value, vlen, 1);
}

size_t msg_api_del(relais_hdrs *h, const char *name)
{
    return h ? msg_hdrs_del(h, name, strlen(name)) : 0;
}
