/*
 * udp — see udp.h.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "snapshot.h"
#include "static_config.h"
#include "udp.h"
#include "worker.h"

#define UDP_BUCKETS 1024          /* session hash buckets per entry point */
#define UDP_MAX_DGRAM 65535       /* largest datagram relayed */
#define UDP_BATCH 64              /* datagrams read per wake-up */
#define UDP_MAX_SERVERS 10000     /* servers of one service */

/** One server of a UDP service. */
struct udp_server {
    char *address;                /* "host:port" as configured */
    struct sockaddr_storage addr; /* resolved */
    socklen_t addrlen;            /* its length */
    uint32_t weight;              /* weight (default 1) */
};

/** A UDP service (loadBalancer). */
struct udp_service {
    char *name;                 /* "name@provider" */
    struct udp_server *servers; /* its servers */
    size_t nservers;            /* how many */
    uint64_t total;             /* sum of the weights */
    uint64_t rr;                /* picks so far (atomic) */
    int status;                 /* enum snap_status */
    char *error;                /* why disabled */
};

/** A UDP router. */
struct udp_router {
    char *name;                  /* "name@provider" */
    unsigned char *eps;          /* eps[i] = 1 when bound to entry point i */
    struct udp_service *service; /* target */
    int status;                  /* enum snap_status */
    char *error;                 /* why disabled */
};

/** The udp part of a snapshot. */
struct udp_snap {
    struct udp_router *routers;  /* every router */
    size_t nrouters;             /* how many */
    struct udp_service **svcs;   /* every service */
    size_t nsvcs;                /* how many */
    struct udp_router **by_ep;   /* per entry point: its router or NULL */
    size_t neps;                 /* = static entry points */
};

struct udp_listener;

/** A session: one client address and its socket towards a server. */
struct udp_session {
    struct udp_listener *l;          /* owning entry point */
    struct sockaddr_storage client;  /* client address (the key) */
    socklen_t clen;                  /* its length */
    unsigned bucket;                 /* hash bucket */
    int fd;                          /* connected socket to the server */
    struct event *ev;                /* replies readable */
    struct event *timer;             /* expiry */
    uint64_t last_ms;                /* last datagram either way */
    struct udp_session *hnext;       /* bucket chain */
    struct udp_session *next;        /* listener's list */
    struct udp_session *prev;
};

/** One UDP entry point on its worker. */
struct udp_listener {
    struct worker *w;                         /* owning worker */
    int ep;                                   /* entry point index */
    int fd;                                   /* bound socket */
    struct event *ev;                         /* datagrams readable */
    int64_t timeout_ms;                       /* session idle lifetime */
    struct udp_session *b[UDP_BUCKETS];       /* sessions by client */
    struct udp_session *list;                 /* every session */
    size_t nsess;                             /* how many */
};

/** A worker's UDP entry points. */
struct udp_worker {
    struct udp_listener **l; /* listeners */
    size_t n;                /* how many */
};

/* ================================================================ build */

/* Frees a service; NULL is a no-op. */
static void udp_svc_free(struct udp_service *sv)
{
    if (!sv) return;
    for (size_t i = 0; i < sv->nservers; i++) free(sv->servers[i].address);
    free(sv->servers);
    free(sv->name);
    free(sv->error);
    free(sv);
}

/* Builds service qname (never NULL unless out of memory). */
static struct udp_service *udp_svc_build(const char *qname, json_t *cfg)
{
    struct udp_service *sv = calloc(1, sizeof(*sv));
    struct conf_session *s;
    const relais_cfg *root, *lb, *servers;
    char path[512];
    size_t i, n;

    if (!sv) return NULL;
    sv->name = strdup(qname);
    snprintf(path, sizeof(path), "udp.services.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    lb = conf_cfg_get(root, "loadBalancer");
    if (conf_cfg_type(root) != RELAIS_CFG_MAP || !lb) {
        conf_cfg_error(root, NULL, "expected a map with a loadBalancer");
        goto done;
    }
    servers = conf_cfg_get(lb, "servers");
    if (conf_cfg_type(servers) != RELAIS_CFG_LIST) {
        conf_cfg_error(lb, "servers", "expected a list of servers with an address");
        goto done;
    }
    n = conf_cfg_len(servers);
    if (n > UDP_MAX_SERVERS) {
        conf_cfg_error(lb, "servers", "at most %d servers", UDP_MAX_SERVERS);
        goto done;
    }
    sv->servers = calloc(n ? n : 1, sizeof(*sv->servers));
    if (!sv->servers) goto done;
    for (i = 0; i < n; i++) {
        const relais_cfg *it = conf_cfg_at(servers, i, NULL);
        struct udp_server *srv = &sv->servers[sv->nservers];
        const char *str;
        int64_t w = 1;
        char msg[300];

        if (conf_cfg_string(it, "address", &str) != RELAIS_CFG_OK) {
            if (!conf_cfg_get(it, "address"))
                conf_cfg_error(it, "address", "missing: expected an address such as \"127.0.0.1:53\"");
            continue;
        }
        if (conf_cfg_int(it, "weight", &w) == RELAIS_CFG_OK && (w < 0 || w > 1000000)) {
            conf_cfg_error(it, "weight", "expected a weight from 0 to 1000000");
            continue;
        }
        if (na_resolve(str, SOCK_DGRAM, &srv->addr, &srv->addrlen, msg, sizeof(msg)) < 0) {
            conf_cfg_error(it, "address", "%s", msg);
            continue;
        }
        srv->address = strdup(str);
        srv->weight = (uint32_t)w;
        sv->total += (uint64_t)w;
        sv->nservers++;
    }
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "UDP service %s", qname);
        sv->status = SNAP_DISABLED;
        sv->error = snap_errors(s, what, NULL);
    }
    conf_session_free(s);
    return sv;
}

/* Compiles router qname into r (errors disable it). */
static void udp_router_build(struct snapshot *snap, struct udp_snap *u, struct udp_router *r,
                             const char *qname, const char *provider, json_t *cfg,
                             const struct sc_config *sc)
{
    struct conf_session *s;
    const relais_cfg *root;
    const char *str;
    char path[512], *q, *warn = NULL;
    size_t i;

    r->name = strdup(qname);
    r->eps = calloc(sc->neps ? sc->neps : 1, 1);
    snprintf(path, sizeof(path), "udp.routers.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (!r->name || !r->eps || conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map with entryPoints and a service");
        goto done;
    }
    warn = snap_read_eps(root, sc, r->eps, 1);
    switch (conf_cfg_string(root, "service", &str)) {
    case RELAIS_CFG_OK:
        q = snap_qualify(str, provider);
        r->service = NULL;
        for (i = 0; q && i < u->nsvcs; i++)
            if (!strcmp(u->svcs[i]->name, q)) r->service = u->svcs[i];
        if (!r->service)
            conf_cfg_error(root, "service", "UDP service \"%s\" does not exist", q ? q : str);
        else if (r->service->status == SNAP_DISABLED)
            conf_cfg_error(root, "service", "UDP service \"%s\" is disabled", q);
        free(q);
        break;
    case RELAIS_CFG_MISSING:
        conf_cfg_error(root, "service", "missing: expected the name of a UDP service");
        break;
    default:
        break;
    }
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "UDP router %s", qname);
        r->status = SNAP_DISABLED;
        r->error = snap_errors(s, what, NULL);
        snap->nerrors++;
    } else if (warn) {
        log_warn("config", "UDP router %s: %s", qname, warn);
        r->status = SNAP_WARNING;
        r->error = warn;
        warn = NULL;
    }
    free(warn);
    conf_session_free(s);
}

void udp_snap_free(struct udp_snap *u)
{
    if (!u) return;
    for (size_t i = 0; i < u->nrouters; i++) {
        free(u->routers[i].name);
        free(u->routers[i].eps);
        free(u->routers[i].error);
    }
    free(u->routers);
    for (size_t i = 0; i < u->nsvcs; i++) udp_svc_free(u->svcs[i]);
    free(u->svcs);
    free(u->by_ep);
    free(u);
}

/* qsort order of router pointers by name. */
static int udp_router_cmp(const void *a, const void *b)
{
    return strcmp((*(struct udp_router *const *)a)->name, (*(struct udp_router *const *)b)->name);
}

int udp_snap_build(struct snapshot *snap, const struct snap_source *src, size_t nsrc,
                   const struct sc_config *sc)
{
    struct udp_snap *u = calloc(1, sizeof(*u));
    struct udp_router **sorted = NULL;
    size_t i, e, nr = 0, ns = 0;
    const char *k;
    json_t *v;

    if (!u) return -1;
    snap->udp = u;
    for (i = 0; i < nsrc; i++) {
        ns += json_object_size(snap_subsection(src[i].tree, "udp", "services"));
        nr += json_object_size(snap_subsection(src[i].tree, "udp", "routers"));
    }
    u->svcs = calloc(ns ? ns : 1, sizeof(*u->svcs));
    u->routers = calloc(nr ? nr : 1, sizeof(*u->routers));
    u->neps = sc->neps;
    u->by_ep = calloc(sc->neps ? sc->neps : 1, sizeof(*u->by_ep));
    sorted = calloc(nr ? nr : 1, sizeof(*sorted));
    if (!u->svcs || !u->routers || !u->by_ep || !sorted) goto oom;
    for (i = 0; i < nsrc; i++) {
        json_object_foreach(snap_subsection(src[i].tree, "udp", "services"), k, v) {
            char *q = snap_qualify(k, src[i].provider);
            struct udp_service *sv = q ? udp_svc_build(q, v) : NULL;
            free(q);
            if (!sv) goto oom;
            u->svcs[u->nsvcs++] = sv;
            if (sv->status == SNAP_DISABLED) snap->nerrors++;
        }
    }
    for (i = 0; i < nsrc; i++) {
        json_object_foreach(snap_subsection(src[i].tree, "udp", "routers"), k, v) {
            char *q = snap_qualify(k, src[i].provider);
            if (!q) goto oom;
            udp_router_build(snap, u, &u->routers[u->nrouters], q, src[i].provider, v, sc);
            sorted[u->nrouters] = &u->routers[u->nrouters];
            u->nrouters++;
            free(q);
        }
    }
    /* one router per entry point: the first by name */
    qsort(sorted, u->nrouters, sizeof(*sorted), udp_router_cmp);
    for (i = 0; i < u->nrouters; i++) {
        struct udp_router *r = sorted[i];
        if (r->status == SNAP_DISABLED) continue;
        for (e = 0; e < sc->neps; e++) {
            if (!r->eps[e]) continue;
            if (u->by_ep[e] && u->by_ep[e] != r) {
                char msg[600];
                snprintf(msg, sizeof(msg), "udp.routers.%s.entryPoints: entry point \"%s\" "
                         "already has the UDP router %s", r->name, sc->eps[e].name,
                         u->by_ep[e]->name);
                log_error("config", "UDP router %s disabled: %s", r->name, msg);
                r->status = SNAP_DISABLED;
                r->error = strdup(msg);
                snap->nerrors++;
                for (size_t e2 = 0; e2 < e; e2++)
                    if (u->by_ep[e2] == r) u->by_ep[e2] = NULL;
                break;
            }
            u->by_ep[e] = r;
        }
    }
    free(sorted);
    return 0;
oom:
    free(sorted);
    return -1;
}

/* ================================================================ relay */

int udp_listen(const struct sc_entrypoint *ep)
{
    int fd, zero = 0;

    fd = socket(ep->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (ep->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ep->addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, (const struct sockaddr *)&ep->addr, ep->addrlen) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Hash of a client address. */
static unsigned udp_hash(const struct sockaddr_storage *ss)
{
    const unsigned char *p;
    size_t n;
    unsigned h = 2166136261u;

    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        p = a->sin6_addr.s6_addr;
        n = 16;
        h = (h ^ a->sin6_port) * 16777619u;
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        p = (const unsigned char *)&a->sin_addr;
        n = 4;
        h = (h ^ a->sin_port) * 16777619u;
    }
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h % UDP_BUCKETS;
}

/* 1 when two client addresses are the same (address and port). */
static int udp_same(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return 0;
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
    }
    {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
}

/* Ends a session. */
static void udp_session_free(struct udp_session *s)
{
    struct udp_listener *l = s->l;
    struct udp_session **pp;

    for (pp = &l->b[s->bucket]; *pp; pp = &(*pp)->hnext)
        if (*pp == s) {
            *pp = s->hnext;
            break;
        }
    if (s->next) s->next->prev = s->prev;
    if (s->prev) s->prev->next = s->next;
    else l->list = s->next;
    l->nsess--;
    mt_udp_session(l->w->index, l->ep, -1);
    if (s->ev) event_free(s->ev);
    if (s->timer) event_free(s->timer);
    if (s->fd >= 0) close(s->fd);
    free(s);
}

/* Replies from the server: back to the client through the entry point's
 * socket. */
static void udp_reply(evutil_socket_t fd, short what, void *arg)
{
    struct udp_session *s = arg;
    static __thread unsigned char buf[UDP_MAX_DGRAM];

    (void)what;
    for (int i = 0; i < UDP_BATCH; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0) break; /* EAGAIN, or an ICMP error: the session expires */
        s->last_ms = wk_now_ms();
        if (sendto(s->l->fd, buf, (size_t)n, 0, (struct sockaddr *)&s->client, s->clen) < 0)
            log_debug("udp", "reply to a client dropped: %s", strerror(errno));
    }
}

/* Session expiry check. */
static void udp_expire(evutil_socket_t fd, short what, void *arg)
{
    struct udp_session *s = arg;
    uint64_t since = wk_now_ms() - s->last_ms, to = (uint64_t)s->l->timeout_ms;

    (void)fd;
    (void)what;
    if (since >= to) {
        char ip[48];
        na_ntop((struct sockaddr *)&s->client, ip, sizeof(ip));
        log_debug("udp", "%s:%d: session expired", ip, na_port((struct sockaddr *)&s->client));
        udp_session_free(s);
        return;
    }
    {
        uint64_t left = to - since;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
        event_add(s->timer, &tv);
    }
}

/* Opens a session for the client in l (picking a server of the entry
 * point's router's service), or NULL when there is no route or no room. */
static struct udp_session *udp_session_new(struct udp_listener *l,
                                           const struct sockaddr_storage *client, socklen_t clen,
                                           unsigned bucket)
{
    struct wk_snapref *ref;
    const struct udp_snap *u;
    const struct udp_router *r;
    const struct udp_server *srv = NULL;
    struct udp_session *s;
    struct timeval tv;

    if (l->nsess >= UDP_MAX_SESSIONS) return NULL;
    ref = wk_acquire(l->w);
    if (!ref) return NULL;
    u = ref->snap->udp;
    r = u && (size_t)l->ep < u->neps ? u->by_ep[l->ep] : NULL;
    if (r && r->service && r->service->total) {
        struct udp_service *sv = r->service;
        uint64_t n = __atomic_fetch_add(&sv->rr, 1, __ATOMIC_RELAXED) % sv->total, acc = 0;
        for (size_t i = 0; i < sv->nservers && !srv; i++) {
            acc += sv->servers[i].weight;
            if (n < acc) srv = &sv->servers[i];
        }
    }
    if (!srv) {
        wk_release(l->w, ref);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) goto fail;
    s->l = l;
    s->fd = socket(srv->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0 || connect(s->fd, (const struct sockaddr *)&srv->addr, srv->addrlen) < 0)
        goto fail;
    s->ev = event_new(l->w->base, s->fd, EV_READ | EV_PERSIST, udp_reply, s);
    s->timer = evtimer_new(l->w->base, udp_expire, s);
    tv.tv_sec = l->timeout_ms / 1000;
    tv.tv_usec = (l->timeout_ms % 1000) * 1000;
    if (!s->ev || !s->timer || event_add(s->ev, NULL) < 0 || event_add(s->timer, &tv) < 0)
        goto fail;
    memcpy(&s->client, client, sizeof(s->client));
    s->clen = clen;
    s->bucket = bucket;
    s->hnext = l->b[bucket];
    l->b[bucket] = s;
    s->next = l->list;
    if (l->list) l->list->prev = s;
    l->list = s;
    l->nsess++;
    mt_udp_session(l->w->index, l->ep, 1);
    {
        char ip[48];
        na_ntop((const struct sockaddr *)client, ip, sizeof(ip));
        log_debug("udp", "%s:%d: session via router %s to %s", ip,
                  na_port((const struct sockaddr *)client), r->name, srv->address);
    }
    wk_release(l->w, ref);
    return s;
fail:
    wk_release(l->w, ref);
    if (s) {
        if (s->ev) event_free(s->ev);
        if (s->timer) event_free(s->timer);
        if (s->fd >= 0) close(s->fd);
        free(s);
    }
    return NULL;
}

/* Datagrams from clients. */
static void udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct udp_listener *l = arg;
    static __thread unsigned char buf[UDP_MAX_DGRAM];

    (void)what;
    for (int i = 0; i < UDP_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct udp_session *s;
        unsigned b;
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);

        if (n < 0) break;
        b = udp_hash(&ss);
        for (s = l->b[b]; s; s = s->hnext)
            if (udp_same(&s->client, &ss)) break;
        if (!s) s = udp_session_new(l, &ss, sl, b);
        if (!s) continue; /* no route, no server or no room: dropped */
        s->last_ms = wk_now_ms();
        if (send(s->fd, buf, (size_t)n, 0) < 0)
            log_debug("udp", "datagram to the server dropped: %s", strerror(errno));
    }
}

int udp_attach(struct worker *w, int ep, int fd)
{
    struct udp_listener *l = calloc(1, sizeof(*l)), **nl;

    if (!w->udp) w->udp = calloc(1, sizeof(*w->udp));
    if (!l || !w->udp) goto fail;
    l->w = w;
    l->ep = ep;
    l->fd = fd;
    l->timeout_ms = w->sc->eps[ep].udp_timeout_ms > 0 ? w->sc->eps[ep].udp_timeout_ms : 3000;
    l->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, udp_read, l);
    if (!l->ev || event_add(l->ev, NULL) < 0) goto fail;
    nl = realloc(w->udp->l, (w->udp->n + 1) * sizeof(*nl));
    if (!nl) goto fail;
    w->udp->l = nl;
    nl[w->udp->n++] = l;
    return 0;
fail:
    if (l && l->ev) event_free(l->ev);
    free(l);
    close(fd);
    return -1;
}

/* Frees one listener: its sessions, event and socket. */
static void udp_listener_free(struct udp_listener *l)
{
    while (l->list) udp_session_free(l->list);
    event_free(l->ev);
    close(l->fd);
    free(l);
}

void udp_detach(struct worker *w, int ep)
{
    for (size_t i = 0; w->udp && i < w->udp->n; i++) {
        if (w->udp->l[i]->ep != ep) continue;
        udp_listener_free(w->udp->l[i]);
        w->udp->l[i] = w->udp->l[--w->udp->n];
        return;
    }
}

void udp_stop(struct worker *w)
{
    if (!w->udp) return;
    for (size_t i = 0; i < w->udp->n; i++) udp_listener_free(w->udp->l[i]);
    free(w->udp->l);
    free(w->udp);
    w->udp = NULL;
}

size_t udp_sessions(const struct worker *w)
{
    size_t n = 0;

    for (size_t i = 0; w->udp && i < w->udp->n; i++) n += w->udp->l[i]->nsess;
    return n;
}

void udp_api_status(const struct udp_snap *u, const struct sc_config *sc, json_t *routers,
                    json_t *services)
{
    size_t i;

    if (!u) return;
    for (i = 0; i < u->nrouters; i++) {
        const struct udp_router *r = &u->routers[i];
        json_t *o = api_status(r->status, r->error);
        if (o && r->status != SNAP_DISABLED && r->eps)
            json_object_set_new(o, "using", api_ep_names(r->eps, sc));
        if (o) json_object_set_new(routers, r->name, o);
    }
    for (i = 0; i < u->nsvcs; i++)
        json_object_set_new(services, u->svcs[i]->name,
                            api_status(u->svcs[i]->status, u->svcs[i]->error));
}
