/*
 * service.c — weighted, mirroring and failover services, sticky cookies,
 * and the per-request walk down the service tree.  See service.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "arena.h"
#include "conf.h"
#include "log.h"
#include "message.h"
#include "proxy.h"
#include "service.h"
#include "snapshot.h"

/** Length a weighted service's round-robin period is scaled down to when
 *  the weights add up to more. */
#define SVC_SEQ_MAX 4096

/* ------------------------------------------------------------ cookies */

uint64_t svc_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void svc_sticky_value(const char *s, char out[17])
{
    snprintf(out, 17, "%llx", (unsigned long long)svc_hash(s));
}

void svc_cookie_free(struct snap_cookie *c)
{
    if (!c) return;
    free(c->name);
    free(c->attrs);
    free(c);
}

/* 1 when c may appear in a cookie name (an RFC 7230 token character). */
static int svc_token_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^`|~", c) != NULL;
}

/* Traefik's generated cookie name for service qname: "_" and the first
 * five hex digits of SHA-1("_TRAEFIK_BACKEND_" + qname), so that sessions
 * pinned by Traefik keep their cookie name.  out: 7 bytes. */
static void svc_default_name(const char *qname, char out[7])
{
    static const char pre[] = "_TRAEFIK_BACKEND_";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    out[0] = '_';
    memset(out + 1, '0', 5);
    out[6] = '\0';
    if (ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, pre, sizeof(pre) - 1) == 1 &&
        EVP_DigestUpdate(ctx, qname, strlen(qname)) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 3)
        snprintf(out + 1, 6, "%02x%02x%x", md[0], md[1], md[2] >> 4);
    EVP_MD_CTX_free(ctx);
}

/* 1 when s may go into a Set-Cookie attribute value (no ';', no control
 * characters). */
static int svc_attr_ok(const char *s)
{
    for (; *s; s++)
        if (*s == ';' || (unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

int svc_cookie_parse(const relais_cfg *parent, const char *qname, struct snap_cookie **out)
{
    const relais_cfg *st = conf_cfg_get(parent, "sticky"), *ck;
    const char *name = NULL, *path = "/", *domain = NULL, *same = NULL;
    int secure = 0, http_only = 0, rc = -1, bad = 0;
    int64_t max_age = 0;
    char gen[7], attrs[1024], *nm = NULL;
    size_t n = 0;
    struct snap_cookie *c = NULL;

    *out = NULL;
    if (!st) return 0;
    if (conf_cfg_type(st) != RELAIS_CFG_MAP) {
        conf_cfg_error(st, NULL, "expected a map with a cookie");
        return -1;
    }
    ck = conf_cfg_get(st, "cookie");
    if (!ck) return 0;
    /* labels and key-value stores say sticky.cookie=true for {} */
    if (conf_cfg_type(ck) == RELAIS_CFG_BOOL || conf_cfg_type(ck) == RELAIS_CFG_STRING) {
        int on = 0;
        if (conf_cfg_bool(ck, NULL, &on) != RELAIS_CFG_OK) return -1;
        if (!on) return 0;
    } else if (conf_cfg_type(ck) != RELAIS_CFG_MAP) {
        conf_cfg_error(ck, NULL, "expected a map (name, secure, httpOnly, sameSite, maxAge, path, "
                                 "domain)");
        return -1;
    } else {
        if (conf_cfg_string(ck, "name", &name) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_bool(ck, "secure", &secure) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_bool(ck, "httpOnly", &http_only) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_int(ck, "maxAge", &max_age) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_string(ck, "path", &path) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_string(ck, "domain", &domain) > RELAIS_CFG_MISSING) bad = 1;
        if (conf_cfg_string(ck, "sameSite", &same) > RELAIS_CFG_MISSING) bad = 1;
        if (same && *same && strcasecmp(same, "none") && strcasecmp(same, "lax") &&
            strcasecmp(same, "strict")) {
            conf_cfg_error(ck, "sameSite", "expected none, lax or strict");
            bad = 1;
        }
        if (!*path) path = "/";
        if (!svc_attr_ok(path)) {
            conf_cfg_error(ck, "path", "must not contain ';' or control characters");
            bad = 1;
        }
        if (domain && !svc_attr_ok(domain)) {
            conf_cfg_error(ck, "domain", "must not contain ';' or control characters");
            bad = 1;
        }
        if (bad) return -1;
    }
    if (name && *name) {
        nm = strdup(name);
        for (char *p = nm; p && *p; p++)
            if (!svc_token_char((unsigned char)*p)) *p = '_';
    } else {
        svc_default_name(qname, gen);
        nm = strdup(gen);
    }
    /* attributes in the order Go's http.Cookie writes them */
    n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; Path=%s", path);
    if (domain && *domain && n < sizeof(attrs))
        n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; Domain=%s", domain);
    if (max_age != 0 && n < sizeof(attrs))
        n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; Max-Age=%lld",
                              (long long)(max_age > 0 ? max_age : 0));
    if (http_only && n < sizeof(attrs)) n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; HttpOnly");
    if (secure && n < sizeof(attrs)) n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; Secure");
    if (same && *same && n < sizeof(attrs))
        n += (size_t)snprintf(attrs + n, sizeof(attrs) - n, "; SameSite=%s",
                              !strcasecmp(same, "none") ? "None"
                              : !strcasecmp(same, "lax") ? "Lax"
                                                         : "Strict");
    if (n >= sizeof(attrs)) {
        conf_cfg_error(ck, NULL, "the cookie's attributes are longer than %zu bytes",
                       sizeof(attrs) - 1);
        goto done;
    }
    c = calloc(1, sizeof(*c));
    if (c && nm) {
        c->name = nm;
        nm = NULL;
        c->attrs = strdup(attrs);
    }
    if (!c || !c->attrs) {
        conf_cfg_error(parent, "sticky", "out of memory");
        goto done;
    }
    *out = c;
    c = NULL;
    rc = 0;
done:
    svc_cookie_free(c);
    free(nm);
    return rc;
}

/* ------------------------------------------------------------ parsing */

/* Appends a child named by node (a string) to sv; where is the key path
 * reported when the name does not resolve.  0 / -1 (out of memory). */
static int svc_add_kid(struct snap_service *sv, const relais_cfg *node, const char *key,
                       const char *provider, uint32_t weight, uint32_t percent, const char *what)
{
    const char *name = NULL;
    const relais_cfg *n = key ? conf_cfg_get(node, key) : node;
    struct snap_child *k, *v;
    char path[700];

    switch (conf_cfg_string(node, key, &name)) {
    case RELAIS_CFG_OK:
        if (*name) break;
        /* fall through */
    case RELAIS_CFG_MISSING:
        conf_cfg_error(node, key, "missing: expected the name of %s", what);
        return 0;
    default:
        return 0;
    }
    v = realloc(sv->kids, (sv->nkids + 1) * sizeof(*sv->kids));
    if (!v) return -1;
    sv->kids = v;
    k = &v[sv->nkids];
    memset(k, 0, sizeof(*k));
    snprintf(path, sizeof(path), "%s", conf_node_path(n));
    k->name = snap_qualify(name, provider);
    k->where = strdup(path);
    if (!k->name || !k->where) {
        free(k->name);
        free(k->where);
        return -1;
    }
    k->weight = weight;
    k->percent = percent;
    svc_sticky_value(k->name, k->sticky);
    sv->nkids++;
    return 0;
}

/* Builds a weighted service's smooth round-robin order: over one period
 * every child of weight w appears w times (weights scaled down to
 * SVC_SEQ_MAX in total), interleaved.  0 / -1 (out of memory). */
static int svc_build_seq(struct snap_service *sv)
{
    uint64_t total = 0;
    int64_t *cur = NULL;
    uint32_t *w = NULL;
    size_t i, j;
    int rc = -1;

    for (i = 0; i < sv->nkids; i++) total += sv->kids[i].weight;
    if (total == 0) return 0; /* nothing to pick: every request gets 503 */
    w = calloc(sv->nkids, sizeof(*w));
    cur = calloc(sv->nkids, sizeof(*cur));
    if (!w || !cur) goto done;
    for (i = 0; i < sv->nkids; i++) {
        w[i] = sv->kids[i].weight;
        if (total > SVC_SEQ_MAX && w[i])
            w[i] = (uint32_t)((w[i] * (uint64_t)SVC_SEQ_MAX + total / 2) / total) ?: 1;
    }
    total = 0;
    for (i = 0; i < sv->nkids; i++) total += w[i];
    sv->seq = malloc(total * sizeof(*sv->seq));
    if (!sv->seq) goto done;
    for (j = 0; j < total; j++) {
        size_t best = 0;
        for (i = 0; i < sv->nkids; i++) {
            cur[i] += w[i];
            if (cur[i] > cur[best]) best = i;
        }
        cur[best] -= (int64_t)total;
        sv->seq[j] = (uint16_t)best;
    }
    sv->nseq = (size_t)total;
    rc = 0;
done:
    free(w);
    free(cur);
    return rc;
}

int svc_parse(struct snap_service *sv, const relais_cfg *node, int kind, const char *provider)
{
    const relais_cfg *list;
    size_t i, n;

    sv->kind = kind;
    if (conf_cfg_type(node) != RELAIS_CFG_MAP) {
        conf_cfg_error(node, NULL, "expected a map");
        return 0;
    }
    switch (kind) {
    case SNAP_SVC_WEIGHTED:
        list = conf_cfg_get(node, "services");
        if (conf_cfg_type(list) != RELAIS_CFG_LIST || conf_cfg_len(list) == 0) {
            conf_cfg_error(node, "services", "expected a list of services with a name and a "
                                             "weight");
            return 0;
        }
        if (conf_cfg_len(list) > 65535) {
            conf_cfg_error(node, "services", "at most 65535 services");
            return 0;
        }
        n = conf_cfg_len(list);
        for (i = 0; i < n; i++) {
            const relais_cfg *it = conf_cfg_at(list, i, NULL);
            int64_t w = 1;
            if (conf_cfg_int(it, "weight", &w) == RELAIS_CFG_OK && (w < 0 || w > 1000000)) {
                conf_cfg_error(it, "weight", "expected a weight from 0 to 1000000");
                continue;
            }
            if (svc_add_kid(sv, it, "name", provider, (uint32_t)w, 0, "a service") < 0) return -1;
        }
        if (svc_cookie_parse(node, sv->name, &sv->sticky) < 0) return 0;
        return svc_build_seq(sv);
    case SNAP_SVC_MIRRORING: {
        int64_t max = -1;
        sv->mirror_body = 1;
        if (svc_add_kid(sv, node, "service", provider, 0, 0, "the main service") < 0) return -1;
        conf_cfg_bool(node, "mirrorBody", &sv->mirror_body);
        if (conf_cfg_int(node, "maxBodySize", &max) == RELAIS_CFG_OK && max < -1) {
            conf_cfg_error(node, "maxBodySize", "expected -1 (no limit) or a size in bytes");
            return 0;
        }
        sv->max_body = (max < 0 || max > SVC_MIRROR_BODY_MAX) ? SVC_MIRROR_BODY_MAX : max;
        list = conf_cfg_get(node, "mirrors");
        if (list && conf_cfg_type(list) != RELAIS_CFG_LIST) {
            conf_cfg_error(node, "mirrors", "expected a list of mirrors with a name and a percent");
            return 0;
        }
        n = conf_cfg_len(list);
        for (i = 0; list && i < n; i++) {
            const relais_cfg *it = conf_cfg_at(list, i, NULL);
            int64_t p = 0;
            if (conf_cfg_int(it, "percent", &p) == RELAIS_CFG_OK && (p < 0 || p > 100)) {
                conf_cfg_error(it, "percent", "expected a percentage from 0 to 100");
                continue;
            }
            if (svc_add_kid(sv, it, "name", provider, 0, (uint32_t)p, "a mirror service") < 0)
                return -1;
        }
        return 0;
    }
    case SNAP_SVC_FAILOVER:
        if (svc_add_kid(sv, node, "service", provider, 0, 0, "the main service") < 0) return -1;
        if (svc_add_kid(sv, node, "fallback", provider, 0, 0, "the fallback service") < 0)
            return -1;
        return 0;
    default:
        return 0;
    }
}

void svc_clear(struct snap_service *sv)
{
    for (size_t i = 0; i < sv->nkids; i++) {
        free(sv->kids[i].name);
        free(sv->kids[i].where);
    }
    free(sv->kids);
    sv->kids = NULL;
    sv->nkids = 0;
    free(sv->seq);
    sv->seq = NULL;
    sv->nseq = 0;
    svc_cookie_free(sv->sticky);
    sv->sticky = NULL;
}

/* ------------------------------------------------------------ linking */

/* Disables sv with msg, logged with its origin document. */
static void svc_disable(struct snap_service *sv, const char *msg)
{
    sv->status = SNAP_DISABLED;
    free(sv->error);
    sv->error = strdup(msg);
    if (sv->origin)
        log_error("config", "%s: service %s disabled: %s", sv->origin, sv->name, msg);
    else
        log_error("config", "service %s disabled: %s", sv->name, msg);
}

/* The service named q in snap, or NULL. */
static struct snap_service *svc_find(struct snapshot *snap, const char *q)
{
    for (size_t i = 0; i < snap->nservices; i++)
        if (!strcmp(snap->services[i]->name, q)) return snap->services[i];
    return NULL;
}

/* Depth-first walk for cycles and depth: marks 1 while on the stack, 2
 * when done (height in link_height).  stack holds the path from the root.
 * Disables every service of a cycle found.  Returns *disabled count. */
static void svc_walk(struct snap_service *sv, struct snap_service **stack, size_t depth,
                     size_t *disabled)
{
    size_t i, j, h = 0;

    if (sv->kind == SNAP_SVC_LB || sv->link_mark == 2) return;
    if (depth >= SVC_MAX_DEPTH) {
        if (sv->status != SNAP_DISABLED) {
            char msg[200];
            snprintf(msg, sizeof(msg), "services nested deeper than %d levels", SVC_MAX_DEPTH);
            svc_disable(sv, msg);
            (*disabled)++;
        }
        sv->link_mark = 2;
        return;
    }
    sv->link_mark = 1;
    stack[depth] = sv;
    for (i = 0; i < sv->nkids; i++) {
        struct snap_service *k = sv->kids[i].svc;
        if (!k) continue;
        if (k->link_mark == 1) {
            /* a cycle: stack[j] == k ... stack[depth] == sv -> k */
            char msg[1024];
            size_t n = 0, from = 0;
            for (j = 0; j <= depth; j++)
                if (stack[j] == k) from = j;
            n += (size_t)snprintf(msg, sizeof(msg), "service cycle: ");
            for (j = from; j <= depth && n < sizeof(msg); j++)
                n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s -> ", stack[j]->name);
            if (n < sizeof(msg)) snprintf(msg + n, sizeof(msg) - n, "%s", k->name);
            for (j = from; j <= depth; j++) {
                if (stack[j]->status == SNAP_DISABLED) continue;
                svc_disable(stack[j], msg);
                (*disabled)++;
            }
            continue;
        }
        svc_walk(k, stack, depth + 1, disabled);
        if (k->link_height + 1 > h) h = k->link_height + 1;
    }
    sv->link_height = h;
    sv->link_mark = 2;
}

size_t svc_link(struct snapshot *snap)
{
    struct snap_service *stack[SVC_MAX_DEPTH + 1];
    size_t i, j, disabled = 0;
    int changed = 1;
    char msg[1024];

    for (i = 0; i < snap->nservices; i++) {
        struct snap_service *sv = snap->services[i];
        if (sv->kind == SNAP_SVC_LB) continue;
        sv->link_mark = 0;
        for (j = 0; j < sv->nkids; j++) {
            sv->kids[j].svc = svc_find(snap, sv->kids[j].name);
            if (!sv->kids[j].svc && sv->status != SNAP_DISABLED) {
                snprintf(msg, sizeof(msg), "%s: no service named \"%s\"", sv->kids[j].where,
                         sv->kids[j].name);
                svc_disable(sv, msg);
                disabled++;
            }
        }
    }
    for (i = 0; i < snap->nservices; i++)
        svc_walk(snap->services[i], stack, 0, &disabled);
    /* a service naming a disabled one is disabled too, up the tree */
    while (changed) {
        changed = 0;
        for (i = 0; i < snap->nservices; i++) {
            struct snap_service *sv = snap->services[i];
            if (sv->kind == SNAP_SVC_LB || sv->status == SNAP_DISABLED) continue;
            for (j = 0; j < sv->nkids; j++) {
                if (!sv->kids[j].svc || sv->kids[j].svc->status != SNAP_DISABLED) continue;
                snprintf(msg, sizeof(msg), "%s: service \"%s\" is disabled", sv->kids[j].where,
                         sv->kids[j].name);
                svc_disable(sv, msg);
                disabled++;
                changed = 1;
                break;
            }
        }
    }
    return disabled;
}

/* ------------------------------------------------------------ serving */

/* 1 when server i of leaf s can take a request. */
static int svc_server_ok(const struct snap_service *s, size_t i)
{
    return s->servers.v[i].weight > 0 && __atomic_load_n(&s->servers.v[i].up, __ATOMIC_RELAXED);
}

/* svc_up with a depth bound (the tree was checked when linked; the bound
 * only guards the worker). */
static int svc_up_at(const struct snap_service *s, int depth)
{
    size_t i;

    if (!s || s->status == SNAP_DISABLED || depth > SVC_MAX_DEPTH) return 0;
    switch (s->kind) {
    case SNAP_SVC_LB:
        for (i = 0; i < s->servers.n; i++)
            if (svc_server_ok(s, i)) return 1;
        return 0;
    case SNAP_SVC_WEIGHTED:
        for (i = 0; i < s->nkids; i++)
            if (s->kids[i].weight > 0 && svc_up_at(s->kids[i].svc, depth + 1)) return 1;
        return 0;
    case SNAP_SVC_MIRRORING:
        return s->nkids > 0 && svc_up_at(s->kids[0].svc, depth + 1);
    case SNAP_SVC_FAILOVER:
        return s->nkids == 2 &&
               (svc_up_at(s->kids[0].svc, depth + 1) || svc_up_at(s->kids[1].svc, depth + 1));
    default:
        return 0;
    }
}

int svc_up(const struct snap_service *s)
{
    return svc_up_at(s, 0);
}

const char *svc_req_cookie(relais_req *r, const char *name, size_t *len)
{
    const struct relais_hdrs *h = &r->req_hdrs;
    size_t nl = strlen(name);

    for (uint32_t i = 0; i < h->n; i++) {
        const char *p, *e;
        if (!msg_name_eq(h->v[i].name, h->v[i].nlen, "cookie", 6)) continue;
        p = h->v[i].value;
        e = p + h->v[i].vlen;
        while (p < e) {
            const char *semi = memchr(p, ';', (size_t)(e - p)), *eq, *end;
            end = semi ? semi : e;
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            eq = memchr(p, '=', (size_t)(end - p));
            if (eq && (size_t)(eq - p) == nl && !memcmp(p, name, nl)) {
                const char *v = eq + 1, *ve = end;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                    v++;
                    ve--;
                }
                *len = (size_t)(ve - v);
                return v;
            }
            p = semi ? semi + 1 : e;
        }
    }
    *len = 0;
    return NULL;
}

/* Notes a Set-Cookie "name=value<attrs>" for the response (arena). */
static void svc_set_cookie(relais_req *r, struct svc_choice *ch, const struct snap_cookie *c,
                           const char *value)
{
    size_t n = strlen(c->name) + strlen(value) + strlen(c->attrs) + 2;
    char *s;

    if (ch->ncookies >= SVC_MAX_COOKIES) return;
    s = arena_alloc(r->arena, n);
    if (!s) return;
    snprintf(s, n, "%s=%s%s", c->name, value, c->attrs);
    ch->cookies[ch->ncookies++] = s;
}

/* 1 when the cookie value v (vl bytes) equals the NUL-terminated s. */
static int svc_value_is(const char *v, size_t vl, const char *s)
{
    return strlen(s) == vl && !memcmp(v, s, vl);
}

/* Which mirrors of mirroring service s get this request (Traefik's rule:
 * after t requests a mirror of percent p has had ceil(t*p/100)). */
static void svc_mirrors(struct snap_service *s, struct svc_choice *ch)
{
    uint64_t t = __atomic_add_fetch(&s->mirrored_total, 1, __ATOMIC_RELAXED);

    if (ch->nmirrors == 0) {
        ch->mirror_body = s->mirror_body;
        ch->mirror_max = s->max_body;
    }
    for (size_t i = 1; i < s->nkids; i++) {
        uint64_t p = s->kids[i].percent;
        if ((t * p + 99) / 100 == ((t - 1) * p + 99) / 100) continue;
        if (ch->nmirrors < SVC_MAX_MIRRORS) ch->mirrors[ch->nmirrors++] = s->kids[i].svc;
    }
}

/* svc_pick with a depth bound. */
static int svc_pick_at(relais_req *r, struct snap_service *s, struct snap_service **leaf,
                       struct svc_choice *ch, int depth)
{
    const char *v;
    size_t vl, i;

    if (!s || s->status == SNAP_DISABLED || depth > SVC_MAX_DEPTH) return -1;
    switch (s->kind) {
    case SNAP_SVC_LB: {
        int idx;
        if (!s->lb_inst) return -1;
        if (s->sticky && (v = svc_req_cookie(r, s->sticky->name, &vl)) != NULL) {
            for (i = 0; i < s->servers.n; i++) {
                if (!svc_server_ok(s, i)) continue;
                if (svc_value_is(v, vl, s->servers.v[i].sticky) ||
                    svc_value_is(v, vl, s->servers.v[i].url)) {
                    *leaf = s;
                    return (int)i;
                }
            }
        }
        idx = s->lb_ops->pick(s->lb_inst, &s->servers, r);
        if (idx < 0 || (size_t)idx >= s->servers.n) return -1;
        if (s->sticky) svc_set_cookie(r, ch, s->sticky, s->servers.v[idx].sticky);
        *leaf = s;
        return idx;
    }
    case SNAP_SVC_WEIGHTED: {
        uint64_t at;
        if (s->sticky && (v = svc_req_cookie(r, s->sticky->name, &vl)) != NULL) {
            for (i = 0; i < s->nkids; i++) {
                if (s->kids[i].weight == 0 || !svc_up_at(s->kids[i].svc, depth + 1)) continue;
                if (svc_value_is(v, vl, s->kids[i].sticky) ||
                    svc_value_is(v, vl, s->kids[i].name))
                    return svc_pick_at(r, s->kids[i].svc, leaf, ch, depth + 1);
            }
        }
        if (s->nseq == 0) return -1;
        at = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
        for (i = 0; i < s->nseq; i++) {
            struct snap_child *k = &s->kids[s->seq[(at + i) % s->nseq]];
            if (!svc_up_at(k->svc, depth + 1)) continue;
            if (s->sticky) svc_set_cookie(r, ch, s->sticky, k->sticky);
            return svc_pick_at(r, k->svc, leaf, ch, depth + 1);
        }
        return -1;
    }
    case SNAP_SVC_MIRRORING:
        if (s->nkids == 0) return -1;
        svc_mirrors(s, ch);
        return svc_pick_at(r, s->kids[0].svc, leaf, ch, depth + 1);
    case SNAP_SVC_FAILOVER:
        if (s->nkids != 2) return -1;
        if (svc_up_at(s->kids[0].svc, depth + 1))
            return svc_pick_at(r, s->kids[0].svc, leaf, ch, depth + 1);
        return svc_pick_at(r, s->kids[1].svc, leaf, ch, depth + 1);
    default:
        return -1;
    }
}

int svc_pick(relais_req *r, struct snap_service *s, struct snap_service **leaf,
             struct svc_choice *ch)
{
    return svc_pick_at(r, s, leaf, ch, 0);
}
