/*
 * docker — provider plugin reading the dynamic configuration from the
 * labels of running Docker containers (Traefik v3's docker provider, a
 * subset: config key "docker"; options endpoint (unix:// only),
 * exposedByDefault, defaultRule ({{ normalize .Name }} / {{ .Name }}),
 * constraints, network, useBindPortIP, watch, and relais' labelPrefix).
 * Module prefix: dk_.
 *
 * Protocol: the Engine API over its unix socket through the host's
 * asynchronous HTTP client.  GET /containers/json lists the running
 * containers, then GET /containers/{id}/json inspects each of them, one
 * after the other.  Their labels become label pairs ("traefik.http....")
 * that are published with provider_publish_kv('.', "traefik") in one call,
 * only when they changed.
 *
 * Per container: traefik.enable (else exposedByDefault) and the
 * constraints expression (constraints.c, over all its labels) decide
 * whether it is routed.  Every HTTP service of the container gets one
 * server: its `loadbalancer.server.url` label as it is, else
 * scheme://ADDRESS:PORT where target.c chooses the address (network label
 * or option, host networking → 127.0.0.1, container:<id>, first network;
 * useBindPortIP) and the port (the service's port label, else the one
 * exposed TCP port).  A container whose server cannot be built (no port,
 * several ports, no address, url with port) is skipped with one warning
 * naming it (again only when the reason changes).  A container without a
 * service gets one named after it; without a router, one named after it
 * with defaultRule.
 *
 * With watch, GET /events (a stream of JSON objects) is followed: a
 * container event lists again 100 ms later.  When the engine goes away the
 * failure is logged once, the last configuration keeps serving, and both
 * calls are retried with a backoff 100 ms → 5 s; a successful list ends
 * the outage.
 *
 * Everything runs on the control thread; nothing blocks.  Built against
 * the SDK header, jansson and PCRE2 (constraints).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <relais/plugin.h>

#include "constraints.h"
#include "target.h"

#define DK_MAX_BODY (64u << 20)        /* response / event message cap */
#define DK_MAX_PAIRS 200000u           /* label pairs published */
#define DK_MAX_WARNED 4096u            /* warnings remembered (not repeated) */
#define DK_MAX_CONTAINERS 10000u       /* running containers inspected */
#define DK_MAX_OBJS 64                 /* routers / services per container */
#define DK_BACKOFF_MIN 100             /* first retry delay, ms */
#define DK_BACKOFF_MAX 5000            /* longest retry delay, ms */
#define DK_DEBOUNCE_MS 100             /* event burst → one list */
#define DK_CALL_TIMEOUT 5000           /* list / inspect call timeout, ms */
#define DK_TPL_NORM "{{ normalize .Name }}" /* defaultRule template forms */
#define DK_TPL_NAME "{{ .Name }}"

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

/** A set of remembered warnings ("id\tmessage"), so that each is logged
 *  once while it stays true. */
struct dk_seen {
    char *v[DK_MAX_WARNED]; /* the entries */
    size_t n;               /* how many */
};

/** The provider instance. */
struct dk {
    const relais_host *host;  /* host table */
    relais_provider *prov;    /* our handle */
    char *sock;               /* the engine's unix socket path */
    int exposed;              /* exposedByDefault */
    char *rule_tpl;           /* defaultRule template */
    char *prefix;             /* labelPrefix ("traefik") */
    char *network;            /* option network, or NULL */
    int use_bind_ip;          /* option useBindPortIP */
    dkcon *cons;              /* option constraints, or NULL (keep all) */
    int watch;                /* follow /events */
    relais_http_call *lcall;  /* list call in flight, or NULL */
    int lstatus;              /* its HTTP status */
    struct dk_buf lbuf;       /* its body */
    relais_http_call *icall;  /* inspect call in flight, or NULL */
    int istatus;              /* its HTTP status */
    struct dk_buf ibuf;       /* its body */
    char **ids;               /* scan: ids of the running containers listed */
    size_t nids;              /* how many */
    size_t inext;             /* scan: index of the id inspected now */
    json_t **docs;            /* scan: inspect documents received */
    size_t ndocs;             /* how many */
    size_t nlisted;           /* scan: containers in the list (any state) */
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
    struct dk_seen *warned;   /* warnings logged during the last build */
    struct dk_seen *warning;  /* warnings of the build in progress */
    uint64_t backoff;         /* next retry delay, ms */
    int failing;              /* an outage was logged */
    int stopped;              /* stop() was called */
    char who[96];             /* "provider NAME" (its configured name), for the log */
};

static void dk_connect(struct dk *d);
static void dk_inspect_next(struct dk *d);

/* Empties a warning set (stays usable). */
static void dk_seen_clear(struct dk_seen *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    s->n = 0;
}

/* Logs "container NAME: MSG" at level unless the last build or this one
 * logged it for the same container id already; remembers it for the next
 * build (so a warning comes again only after its cause went away). */
static void dk_warn(struct dk *d, int level, const char *id, const char *name, const char *msg)
{
    char *key = NULL;
    int seen = 0;

    if (asprintf(&key, "%s\t%s", id, msg) < 0) key = NULL;
    if (key) {
        for (size_t i = 0; i < d->warning->n; i++)
            if (!strcmp(d->warning->v[i], key)) {
                free(key); /* already said during this build */
                return;
            }
        for (size_t i = 0; i < d->warned->n && !seen; i++)
            if (!strcmp(d->warned->v[i], key)) seen = 1;
    }
    if (!seen) d->host->log(level, d->who, "container %s: %s", name, msg);
    if (key && d->warning->n < DK_MAX_WARNED) d->warning->v[d->warning->n++] = key;
    else free(key);
}

/* Drops the scan in progress: ids and inspect documents. */
static void dk_scan_clear(struct dk *d)
{
    for (size_t i = 0; i < d->nids; i++) free(d->ids[i]);
    free(d->ids);
    d->ids = NULL;
    d->nids = d->inext = 0;
    for (size_t i = 0; i < d->ndocs; i++) json_decref(d->docs[i]);
    free(d->docs);
    d->docs = NULL;
    d->ndocs = 0;
}

/* Cancels the listing, the inspection and the event stream in flight, if
 * any (no callback follows). */
static void dk_cancel_calls(struct dk *d)
{
    d->host->http_cancel(d->lcall); /* NULL is a no-op */
    d->host->http_cancel(d->icall);
    d->host->http_cancel(d->ecall);
    d->lcall = NULL;
    d->icall = NULL;
    d->ecall = NULL;
}

/* Notes that the engine failed (what: why): logs once per outage, cancels
 * every call and schedules a reconnect with exponential backoff. */
static void dk_fail(struct dk *d, const char *what)
{
    if (d->stopped) return;
    if (!d->failing)
        d->host->log(RELAIS_LOG_ERROR, d->who,
                     "unix://%s: %s; retrying, the last configuration keeps serving", d->sock,
                     what);
    else
        d->host->log(RELAIS_LOG_DEBUG, d->who, "unix://%s: %s", d->sock, what);
    d->failing = 1;
    dk_cancel_calls(d);
    dk_scan_clear(d);
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

/* Name of the object a key names under pre ("traefik.http.routers.") as a
 * new string, with *rest set to what follows its name ("rule", "" when
 * nothing); NULL when the key is not under pre or has no name. */
static char *dk_obj_name(const char *key, const char *pre, const char **rest)
{
    size_t pl = strlen(pre);
    const char *s, *e;

    if (strncasecmp(key, pre, pl)) return NULL;
    s = key + pl;
    e = strchr(s, '.');
    if (e == s || !*s) return NULL;
    if (!e) e = s + strlen(s);
    *rest = *e ? e + 1 : e;
    return strndup(s, (size_t)(e - s));
}

/** One HTTP service of a container while its pairs are built. */
struct dk_svc {
    char *name;         /* service name */
    const char *port;   /* loadbalancer.server.port label, or NULL */
    const char *scheme; /* loadbalancer.server.scheme label, or NULL */
    const char *url;    /* loadbalancer.server.url label, or NULL */
    int nolb;           /* a weighted / mirroring / failover service */
};

/** The routers and services of one container. */
struct dk_objs {
    struct dk_svc svc[DK_MAX_OBJS]; /* HTTP services */
    size_t ns;                      /* how many */
    char *routers[DK_MAX_OBJS];     /* HTTP router names */
    int routed[DK_MAX_OBJS];        /* router i has a service label */
    size_t nr;                      /* how many */
    int http;                       /* some traefik.http.* label */
    int tcpudp;                     /* some tcp/udp router or service label */
};

/* The service called name in o (added when new, name taken over in every
 * case), or NULL when over the cap / name is NULL. */
static struct dk_svc *dk_svc_get(struct dk_objs *o, char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < o->ns; i++)
        if (!strcmp(o->svc[i].name, name)) {
            free(name);
            return &o->svc[i];
        }
    if (o->ns >= DK_MAX_OBJS) {
        free(name);
        return NULL;
    }
    memset(&o->svc[o->ns], 0, sizeof(o->svc[0]));
    o->svc[o->ns].name = name;
    return &o->svc[o->ns++];
}

/* Notes router name (taken over) in o; routed when the key was its
 * "service". */
static void dk_router_note(struct dk_objs *o, char *name, int routed)
{
    size_t i;

    if (!name) return;
    for (i = 0; i < o->nr && strcmp(o->routers[i], name); i++) {}
    if (i == o->nr) {
        if (o->nr >= DK_MAX_OBJS) {
            free(name);
            return;
        }
        o->routers[o->nr] = name;
        o->routed[o->nr++] = 0;
    } else {
        free(name);
    }
    if (routed) o->routed[i] = 1;
}

/* Frees what o holds. */
static void dk_objs_free(struct dk_objs *o)
{
    for (size_t i = 0; i < o->ns; i++) free(o->svc[i].name);
    for (size_t i = 0; i < o->nr; i++) free(o->routers[i]);
}

/* Sorts one label (k, v) of a container into own (pairs to publish) and o
 * (routers, services, server fields).  v stays owned by the inspect
 * document, which outlives the build.  0, or -1 when out of memory / over
 * the pair cap. */
static int dk_label(struct dk *d, const char *k, const char *v, struct dk_pairs *own,
                    struct dk_objs *o)
{
    size_t plen = strlen(d->prefix);
    const char *rest = NULL, *sub;
    char *nk = NULL, *name;

    if (!strncmp(k, d->prefix, plen) && k[plen] == '.') rest = k + plen + 1;
    else if (!strcmp(d->prefix, "relais") && !strncmp(k, "traefik.", 8)) rest = k + 8;
    if (!rest) return 0;
    if (strncasecmp(rest, "http.", 5) && strncasecmp(rest, "tcp.", 4) &&
        strncasecmp(rest, "udp.", 4) && strncasecmp(rest, "tls.", 4))
        return 0; /* enable, docker.network, ...: read elsewhere */
    if (asprintf(&nk, "traefik.%s", rest) < 0) return -1;
    if (!strncasecmp(rest, "http.", 5)) o->http = 1;
    if (!strncasecmp(rest, "tcp.routers.", 12) || !strncasecmp(rest, "tcp.services.", 13) ||
        !strncasecmp(rest, "udp.routers.", 12) || !strncasecmp(rest, "udp.services.", 13))
        o->tcpudp = 1;
    if ((name = dk_obj_name(nk, "traefik.http.services.", &sub)) != NULL) {
        struct dk_svc *s = dk_svc_get(o, name);
        const char *field = NULL;
        char *sk = NULL;
        int other = 0;
        if (!s) {
            free(nk); /* over the cap of services per container */
            return 0;
        }
        if (!strncasecmp(sub, "weighted.", 9) || !strncasecmp(sub, "mirroring.", 10) ||
            !strncasecmp(sub, "failover.", 9))
            s->nolb = 1;
        if (!strncasecmp(sub, "loadbalancer.server.", 20) && !strchr(sub + 20, '.'))
            field = sub + 20;
        if (!field) return dk_pairs_add(own, nk, strdup(v));
        if (!strcasecmp(field, "port")) s->port = v;
        else if (!strcasecmp(field, "scheme")) s->scheme = v;
        else if (!strcasecmp(field, "url")) s->url = v;
        else other = 1; /* weight, preservePath...: a field of the one server */
        if (other && asprintf(&sk, "traefik.http.services.%s.loadbalancer.servers.0.%s", s->name,
                              field) < 0)
            sk = NULL;
        free(nk); /* field pointed into it */
        return other ? dk_pairs_add(own, sk, strdup(v)) : 0;
    } else if ((name = dk_obj_name(nk, "traefik.http.routers.", &sub)) != NULL) {
        dk_router_note(o, name, !strcasecmp(sub, "service"));
    }
    return dk_pairs_add(own, nk, strdup(v));
}

/** What a constraint lookup reads: the container's labels. */
struct dk_lk {
    const json_t *labels; /* Config.Labels object (may be NULL) */
};

/* dkcon_lookup_fn over Config.Labels. */
static const char *dk_lookup(void *arg, const char *key)
{
    const struct dk_lk *l = arg;

    return json_string_value(json_object_get(l->labels, key));
}

/* dkt_find_fn over the documents of the current scan. */
static const json_t *dk_find(void *arg, const char *ref)
{
    struct dk *d = arg;

    for (size_t i = 0; i < d->ndocs; i++)
        if (dkt_is(d->docs[i], ref)) return d->docs[i];
    return NULL;
}

/* Adds the server of every load-balancer service of o, the default
 * service and router, and the service of routers without one, to own, for
 * the container (insp, id, name; norm: its normalized name).  0; 1 when
 * the container must be skipped (warned); -1 when out of memory / over
 * the cap. */
static int dk_http_defaults(struct dk *d, const json_t *insp, const char *id, const char *name,
                            const char *norm, struct dk_objs *o, struct dk_pairs *own)
{
    struct dkt_opts to = {d->prefix, d->network, d->use_bind_ip};
    char why[DKT_MSG_LEN + 120], note[DKT_MSG_LEN], hp[DKT_MSG_LEN];

    if (o->ns == 0 && !dk_svc_get(o, strdup(norm))) return -1;
    /* one server per load-balancer service */
    for (size_t i = 0; i < o->ns; i++) {
        struct dk_svc *s = &o->svc[i];
        char *k = NULL, *v = NULL;
        if (s->nolb) continue;
        if (s->url && (s->port || s->scheme)) {
            snprintf(why, sizeof(why),
                     "service %.80s: a server url label excludes the port and scheme labels; "
                     "skipped",
                     s->name);
            dk_warn(d, RELAIS_LOG_WARN, id, name, why);
            return 1;
        }
        if (s->url) {
            v = strdup(s->url);
        } else {
            if (dkt_server(insp, s->port, &to, dk_find, d, hp, sizeof(hp), note, sizeof(note)) <
                0) {
                snprintf(why, sizeof(why), "%s; skipped", hp);
                dk_warn(d, RELAIS_LOG_WARN, id, name, why);
                return 1;
            }
            if (note[0])
                dk_warn(d, strncmp(note, "network", 7) ? RELAIS_LOG_INFO : RELAIS_LOG_WARN, id,
                        name, note);
            if (asprintf(&v, "%s://%s", s->scheme ? s->scheme : "http", hp) < 0) v = NULL;
        }
        if (asprintf(&k, "traefik.http.services.%s.loadbalancer.servers.0.url", s->name) < 0)
            k = NULL;
        if (dk_pairs_add(own, k, v) < 0) return -1;
    }
    if (o->nr == 0 && o->ns != 1) {
        dk_warn(d, RELAIS_LOG_WARN, id, name, "several services and no router: no default router");
    } else if (o->nr == 0) {
        /* no router: one named after the container, with defaultRule */
        char *k1 = NULL, *k2 = NULL;
        if (asprintf(&k1, "traefik.http.routers.%s.rule", norm) < 0) k1 = NULL;
        if (asprintf(&k2, "traefik.http.routers.%s.service", norm) < 0) k2 = NULL;
        if (dk_pairs_add(own, k1, dk_rule(d, name)) < 0) {
            free(k2);
            return -1;
        }
        if (dk_pairs_add(own, k2, strdup(o->svc[0].name)) < 0) return -1;
    } else if (o->ns == 1) {
        /* routers without a service use the container's only service */
        for (size_t i = 0; i < o->nr; i++) {
            char *k = NULL;
            if (o->routed[i]) continue;
            if (asprintf(&k, "traefik.http.routers.%s.service", o->routers[i]) < 0) k = NULL;
            if (dk_pairs_add(own, k, strdup(o->svc[0].name)) < 0) return -1;
        }
    }
    return 0;
}

/* Moves every pair of from to the end of to (from ends up empty).  0, or
 * -1 at the cap / out of memory (the pairs not moved are freed). */
static int dk_pairs_move(struct dk_pairs *to, struct dk_pairs *from)
{
    int rc = 0;

    for (size_t i = 0; i < from->n; i++) {
        if (rc == 0 && dk_pairs_add(to, from->v[i].key, from->v[i].val) < 0) {
            rc = -1; /* dk_pairs_add freed this pair */
            continue;
        }
        if (rc < 0) {
            free(from->v[i].key);
            free(from->v[i].val);
        }
    }
    free(from->v);
    memset(from, 0, sizeof(*from));
    return rc;
}

/* Adds the pairs of one container (its inspect document) to out.  Skips
 * containers that are not running, disabled, filtered out by the
 * constraints, or whose server cannot be built (warned).  0, or -1 when
 * out of memory / over the cap. */
static int dk_container(struct dk *d, const json_t *insp, struct dk_pairs *out)
{
    struct dk_pairs own = {0};
    struct dk_objs o;
    const json_t *state = json_object_get(insp, "State"), *labels, *lv;
    const char *id = json_string_value(json_object_get(insp, "Id"));
    const char *name = json_string_value(json_object_get(insp, "Name"));
    const char *enable, *lk;
    char *norm = NULL;
    int rc = 0, r;

    memset(&o, 0, sizeof(o));
    if (!id || !name) goto done; /* not a container we understand */
    if (name[0] == '/') name++;
    if (!json_is_true(json_object_get(state, "Running")) ||
        json_is_true(json_object_get(state, "Paused")) ||
        json_is_true(json_object_get(state, "Restarting")))
        goto done;
    labels = json_object_get(json_object_get(insp, "Config"), "Labels");
    if (!json_is_object(labels)) labels = NULL;
    enable = dkt_label(insp, d->prefix, "enable");
    if (!(enable ? !strcasecmp(enable, "true") : d->exposed)) goto done;
    if (d->cons) {
        struct dk_lk l = {labels};
        if (!dkcon_match(d->cons, dk_lookup, &l)) {
            d->host->log(RELAIS_LOG_DEBUG, d->who, "container %s: left out by the constraints",
                         name);
            goto done;
        }
    }
    if (labels)
        json_object_foreach((json_t *)labels, lk, lv) {
            const char *v = json_string_value(lv);
            if (v && dk_label(d, lk, v, &own, &o) < 0) {
                rc = -1;
                goto done;
            }
        }
    /* TCP/UDP only: no HTTP defaults, as Traefik */
    if (o.http || !o.tcpudp) {
        if (!(norm = dk_normalize(name))) {
            rc = -1;
            goto done;
        }
        r = dk_http_defaults(d, insp, id, name, norm, &o, &own);
        if (r != 0) {
            rc = r < 0 ? -1 : 0;
            goto done;
        }
    }
    rc = dk_pairs_move(out, &own);
done:
    dk_pairs_clear(&own);
    dk_objs_free(&o);
    free(norm);
    return rc;
}

/* Builds the pairs of every inspected container and publishes them when
 * they changed; ends the scan. */
static void dk_build(struct dk *d)
{
    struct dk_pairs all = {0};
    struct dk_seen *sw;
    relais_kv *kv = NULL;
    char *ser = NULL;
    size_t sz = 0;
    FILE *f;

    dk_seen_clear(d->warning);
    for (size_t i = 0; i < d->ndocs; i++) {
        if (dk_container(d, d->docs[i], &all) < 0) {
            d->host->log(RELAIS_LOG_ERROR, d->who, "too many labels (cap %u) or out of memory",
                         DK_MAX_PAIRS);
            goto done;
        }
    }
    /* the warnings of this build are the ones not to repeat next time */
    sw = d->warned;
    d->warned = d->warning;
    d->warning = sw;
    if (d->failing)
        d->host->log(RELAIS_LOG_INFO, d->who, "unix://%s: reachable again", d->sock);
    d->failing = 0;
    d->backoff = DK_BACKOFF_MIN;
    if (all.n) qsort(all.v, all.n, sizeof(*all.v), dk_pair_cmp);
    f = open_memstream(&ser, &sz);
    if (!f) goto done;
    for (size_t i = 0; i < all.n; i++) fprintf(f, "%s=%s\n", all.v[i].key, all.v[i].val);
    fclose(f);
    if (!ser) goto done;
    if (d->last && !strcmp(d->last, ser)) {
        d->host->log(RELAIS_LOG_DEBUG, d->who, "%zu containers, nothing changed", d->nlisted);
        goto done;
    }
    kv = malloc((all.n ? all.n : 1) * sizeof(*kv));
    if (!kv) goto done;
    for (size_t i = 0; i < all.n; i++) {
        kv[i].key = all.v[i].key;
        kv[i].value = all.v[i].val;
    }
    d->host->log(RELAIS_LOG_INFO, d->who, "%zu running containers: publishing %zu labels",
                 d->ndocs, all.n);
    if (d->host->provider_publish_kv(d->prov, kv, all.n, '.', "traefik") == 0) {
        free(d->last);
        d->last = ser;
        ser = NULL;
    }
done:
    free(kv);
    free(ser);
    dk_pairs_clear(&all);
    dk_scan_clear(d);
}

/* 1 when id looks like an Engine API container id (hex). */
static int dk_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) return 0;
    return 1;
}

/* Handles a finished container list: remembers the ids of the running
 * containers and starts inspecting them. */
static void dk_list_done(struct dk *d)
{
    json_error_t err;
    json_t *arr, *c;
    size_t i;

    dk_scan_clear(d);
    /* JSON_ALLOW_NUL: a \u0000 ends the C string, as the former reader did */
    arr = d->lbuf.too_big
              ? NULL
              : json_loadb(d->lbuf.p ? d->lbuf.p : "", d->lbuf.len, JSON_ALLOW_NUL, &err);
    if (!json_is_array(arr)) {
        json_decref(arr);
        dk_fail(d, "containers/json: malformed response");
        return;
    }
    d->nlisted = json_array_size(arr);
    d->ids = calloc(d->nlisted ? d->nlisted : 1, sizeof(*d->ids));
    d->docs = calloc(d->nlisted ? d->nlisted : 1, sizeof(*d->docs));
    if (!d->ids || !d->docs) {
        json_decref(arr);
        dk_scan_clear(d);
        d->host->log(RELAIS_LOG_ERROR, d->who, "out of memory");
        return;
    }
    json_array_foreach(arr, i, c) {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *st = json_string_value(json_object_get(c, "State"));
        if (!id || !st || strcmp(st, "running") || !dk_id_ok(id)) continue;
        if (d->nids >= DK_MAX_CONTAINERS) {
            d->host->log(RELAIS_LOG_WARN, d->who, "more than %u running containers: the rest "
                         "is left out", DK_MAX_CONTAINERS);
            break;
        }
        if (!(d->ids[d->nids] = strdup(id))) break;
        d->nids++;
    }
    json_decref(arr);
    dk_inspect_next(d);
}

/* List call: response head. */
static void dk_l_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct dk *d = arg;

    (void)headers;
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

/* Inspect call: response head. */
static void dk_i_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct dk *d = arg;

    (void)headers;
    d->istatus = status;
    d->ibuf.len = 0;
    d->ibuf.too_big = 0;
}

/* Inspect call: body bytes. */
static void dk_i_on_data(void *arg, const char *data, size_t len)
{
    struct dk *d = arg;

    dk_buf_add(&d->ibuf, data, len);
}

/* Inspect call: end.  A container gone meanwhile (404) is left out; any
 * other failure fails the whole scan. */
static void dk_i_on_done(void *arg, int error, const char *message)
{
    struct dk *d = arg;
    char what[300];
    json_error_t err;
    json_t *doc;

    d->icall = NULL;
    if (d->stopped) return;
    if (error) {
        snprintf(what, sizeof(what), "containers/%.12s/json: %.200s", d->ids[d->inext],
                 message ? message : "failed");
        dk_fail(d, what);
        return;
    }
    if (d->istatus == 200) {
        doc = d->ibuf.too_big ? NULL
                              : json_loadb(d->ibuf.p ? d->ibuf.p : "", d->ibuf.len,
                                           JSON_ALLOW_NUL, &err);
        if (!json_is_object(doc)) {
            json_decref(doc);
            snprintf(what, sizeof(what), "containers/%.12s/json: malformed response",
                     d->ids[d->inext]);
            dk_fail(d, what);
            return;
        }
        d->docs[d->ndocs++] = doc;
    } else if (d->istatus != 404) {
        snprintf(what, sizeof(what), "containers/%.12s/json: status %d", d->ids[d->inext],
                 d->istatus);
        dk_fail(d, what);
        return;
    }
    d->inext++;
    dk_inspect_next(d);
}

/* Inspects the next listed container, or builds the configuration when
 * every one was inspected. */
static void dk_inspect_next(struct dk *d)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), dk_i_on_response,
                                             dk_i_on_data, dk_i_on_done};
    relais_http_req req;
    char url[128];

    if (d->stopped) return;
    if (d->inext >= d->nids) {
        dk_build(d);
        return;
    }
    snprintf(url, sizeof(url), "http://docker/containers/%s/json", d->ids[d->inext]);
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "GET";
    req.url = url;
    req.unix_socket = d->sock;
    req.timeout_ms = DK_CALL_TIMEOUT;
    d->istatus = 0;
    d->ibuf.len = 0;
    d->ibuf.too_big = 0;
    d->icall = d->host->http_request(&req, &cb, d);
    if (!d->icall) dk_fail(d, "cannot start a request");
}

/* Starts the container list call (cancelling a list or a scan in
 * flight). */
static void dk_list(struct dk *d)
{
    static const relais_http_callbacks cb = {sizeof(relais_http_callbacks), dk_l_on_response,
                                             dk_l_on_data, dk_l_on_done};
    relais_http_req req;

    if (d->stopped) return;
    d->host->http_cancel(d->lcall);
    d->host->http_cancel(d->icall);
    d->lcall = d->icall = NULL;
    dk_scan_clear(d);
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
                                          "oom", "health_status", NULL};
    json_error_t err;
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, &err);
    const char *type, *action;
    int hit = 0;

    if (!json_is_object(j)) {
        json_decref(j);
        d->host->log(RELAIS_LOG_DEBUG, d->who, "a malformed event is ignored");
        return;
    }
    type = json_string_value(json_object_get(j, "Type"));
    action = json_string_value(json_object_get(j, "Action"));
    if (!action) action = json_string_value(json_object_get(j, "status"));
    if (action && (!type || !strcmp(type, "container")))
        for (size_t i = 0; actions[i]; i++) {
            size_t al = strlen(actions[i]);
            /* "health_status: healthy" carries its value after a colon */
            if (!strncmp(action, actions[i], al) && (action[al] == 0 || action[al] == ':'))
                hit = 1;
        }
    if (hit) {
        d->host->log(RELAIS_LOG_DEBUG, d->who, "container event %s", action);
        if (!d->deb_pending) {
            d->deb_pending = 1;
            d->host->timer_start(d->debounce, DK_DEBOUNCE_MS);
        }
    }
    json_decref(j);
}

/* Event stream: response head. */
static void dk_e_on_response(void *arg, int status, relais_hdrs *headers)
{
    struct dk *d = arg;

    (void)headers;
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
    dk_scan_clear(d);
    d->host->timer_free(d->retry);
    d->host->timer_free(d->debounce);
    if (d->warned) dk_seen_clear(d->warned);
    if (d->warning) dk_seen_clear(d->warning);
    free(d->warned);
    free(d->warning);
    dkcon_free(d->cons);
    free(d->network);
    free(d->sock);
    free(d->rule_tpl);
    free(d->prefix);
    free(d->lbuf.p);
    free(d->ibuf.p);
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
    static const char *const known[] = {"endpoint",      "exposedByDefault", "defaultRule",
                                        "network",       "useBindPortIP",    "watch",
                                        "labelPrefix",   "constraints",      "tls",
                                        NULL};
    struct dk *d = calloc(1, sizeof(*d));
    const char *s;
    int bad = 0, rc, b;

    if (!d) return -1;
    d->warned = calloc(1, sizeof(*d->warned));
    d->warning = calloc(1, sizeof(*d->warning));
    d->host = host;
    d->prov = prov;
    snprintf(d->who, sizeof(d->who), "provider %s",
             host->provider_name && host->provider_name(prov) ? host->provider_name(prov)
                                                               : "docker");
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
    if (rc == RELAIS_CFG_OK) d->use_bind_ip = b;
    else if (rc == RELAIS_CFG_INVALID) bad = 1;
    rc = host->cfg_string(cfg, "network", &s);
    if (rc == RELAIS_CFG_INVALID) bad = 1;
    else if (rc == RELAIS_CFG_OK && *s && !(d->network = strdup(s))) bad = 1;
    rc = host->cfg_string(cfg, "constraints", &s);
    if (rc == RELAIS_CFG_INVALID) {
        bad = 1;
    } else if (rc == RELAIS_CFG_OK && s[strspn(s, " \t\r\n")]) {
        char err[300];
        size_t col = 0;
        d->cons = dkcon_parse(s, &col, err, sizeof(err));
        if (!d->cons) {
            host->cfg_error(cfg, "constraints", "column %zu: %s", col, err);
            bad = 1;
        }
    }
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
    if (!bad && (!d->sock || !d->rule_tpl || !d->prefix || !d->warned || !d->warning)) bad = 1;
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
    d->host->log(RELAIS_LOG_INFO, d->who, "watching unix://%s (labels %s.*%s)", d->sock, d->prefix,
                 d->cons ? ", with constraints" : "");
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
    "0.2.0",
    "docker",
    "routes running Docker containers from their labels (watched)",
    NULL,
    NULL,
    &dk_ops,
};
