/*
 * tcp — see tcp.h.
 *
 * Life of a relayed connection (struct tcp_conn): created by tcp_take
 * with the client stream; the server stream connects (dial timeout); the
 * PROXY header, when the service asks for one, is the first thing in the
 * server's output; then each side's input is moved to the other side's
 * output as long as that output is below TCP_BUF_CAP.  A side's EOF is
 * passed on (st_shutdown_write) once its bytes are all written; the
 * connection ends when both directions are shut, on an error, or when it
 * stayed idle (no byte read either way) for the idle timeout.  Callbacks
 * free the connection as their last action only.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "api.h"
#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "proxyproto.h"
#include "snapshot.h"
#include "static_config.h"
#include "stream.h"
#include "tcp.h"
#include "tlsstore.h"
#include "worker.h"

#define TCP_MAX_SERVERS 10000     /* servers of one service */
#define TCP_MAX_WEIGHTED_DEPTH 8  /* weighted services nested at most */
#define TCP_MW_BUCKETS 256        /* inFlightConn hash buckets */
#define TCP_MW_MAX_IPS 65536      /* inFlightConn distinct sources tracked */
#define TCP_DEFAULT_DIAL_MS 30000 /* dialTimeout when none is configured */

/** Middleware kinds. */
enum tcp_mw_kind { TCP_MW_ALLOW = 1, TCP_MW_INFLIGHT };

/** One source address counted by inFlightConn. */
struct tcp_ipcnt {
    struct tcp_ipcnt *next; /* bucket chain */
    uint8_t addr[16];       /* mapped address */
    uint32_t n;             /* connections open */
};

/** A TCP middleware. */
struct tcp_mw {
    char *name;                         /* "name@provider" */
    int kind;                           /* enum tcp_mw_kind, 0 when disabled */
    struct na_cidr *ranges;             /* ipAllowList.sourceRange */
    size_t nranges;                     /* how many */
    int64_t amount;                     /* inFlightConn.amount */
    pthread_mutex_t lock;               /* guards the counters */
    struct tcp_ipcnt *b[TCP_MW_BUCKETS]; /* counters by address hash */
    size_t nent;                        /* counters allocated */
    int status;                         /* enum snap_status */
    char *error;                        /* why disabled */
};

/** One server of a TCP service. */
struct tcp_server {
    char *address;                /* "host:port" as configured */
    struct sockaddr_storage addr; /* resolved */
    socklen_t addrlen;            /* its length */
    uint32_t weight;              /* weight (default 1) */
};

/** A TCP service: loadBalancer or weighted. */
struct tcp_service {
    char *name;                   /* "name@provider" */
    struct tcp_server *servers;   /* loadBalancer.servers */
    size_t nservers;              /* how many */
    uint64_t total;               /* sum of the weights */
    struct tcp_service **kids;    /* weighted.services, resolved */
    char **kid_names;             /* their qualified names */
    uint32_t *kid_w;              /* their weights */
    size_t nkids;                 /* how many */
    uint64_t kid_total;           /* sum of kid_w */
    uint64_t rr;                  /* picks so far (atomic) */
    int pp_version;               /* proxyProtocol.version, 0 = none */
    int64_t dial_ms;              /* dial timeout (serversTransport) */
    int weighted;                 /* 1: a weighted service */
    int status;                   /* enum snap_status */
    char *error;                  /* why disabled */
};

/** A TCP router. */
struct tcp_router {
    char *name;                   /* "name@provider" */
    rule_t *rule;                 /* compiled TCP rule */
    int64_t priority;             /* explicit or the rule's length */
    unsigned char *eps;           /* eps[i] = 1 when bound to entry point i */
    struct tcp_mw **mws;          /* middlewares in order */
    size_t nmws;                  /* how many */
    struct tcp_service *service;  /* target */
    int tls;                      /* TLS connections only */
    int passthrough;              /* tls.passthrough: relay the TLS bytes */
    int catchall;                 /* rule is exactly HostSNI(`*`) */
    const struct ts_options *tls_opts; /* TLS options (termination) */
    char *cert_resolver;          /* tls.certResolver, or NULL */
    json_t *tls_domains;          /* tls.domains (new reference), or NULL */
    int status;                   /* enum snap_status */
    char *error;                  /* why disabled */
};

/** An HTTPS router's host on an entry point (Traefik's HTTPS muxer). */
struct tcp_host {
    char *s;      /* lowercase host, or wildcard suffix */
    size_t len;   /* its length */
    int wildcard; /* 1 for "*.suffix" */
};

/** Per entry point tables. */
struct tcp_ep {
    struct tcp_router **plain; /* non-TLS TCP routers, by priority */
    size_t nplain;             /* how many */
    struct tcp_router **tls;   /* TLS TCP routers, by priority */
    size_t ntls;               /* how many */
    struct tcp_host *https;    /* hosts of the HTTPS routers */
    size_t nhttps;             /* how many */
    size_t cap_https;          /* room in https */
    int https_any;             /* the entry point has HTTPS routers */
};

/** The tcp part of a snapshot. */
struct tcp_snap {
    struct tcp_router *routers;  /* every router */
    size_t nrouters;             /* how many */
    struct tcp_service **svcs;   /* every service */
    size_t nsvcs;                /* how many */
    struct tcp_mw **mws;         /* every middleware */
    size_t nmws;                 /* how many */
    struct tcp_ep *eps;          /* per entry point */
    size_t neps;                 /* = static entry points */
};

/** A relayed connection. */
struct tcp_conn {
    struct worker *w;                 /* owning worker */
    int ep;                           /* entry point (connection caps) */
    struct wk_snapref *ref;           /* snapshot held (r lives there) */
    const struct tcp_router *r;       /* its router */
    struct stream *cs;                /* client side */
    struct stream *us;                /* server side, NULL before the dial */
    struct event *timer;              /* idle timeout */
    int64_t idle_ms;                  /* idle timeout, 0 = none */
    uint64_t last_ms;                 /* last byte read, either side */
    int connected;                    /* server connection established */
    int c_eof;                        /* client sent its FIN */
    int u_eof;                        /* server sent its FIN */
    int c_shut;                       /* FIN passed to the client */
    int u_shut;                       /* FIN passed to the server */
    struct tcp_mw **counted;          /* inFlightConn middlewares counting us */
    size_t ncounted;                  /* how many */
    uint8_t caddr[16];                /* client address, mapped form */
    char client_ip[48];               /* its text */
    struct sockaddr_storage client;   /* client address */
    struct sockaddr_storage local;    /* address the client reached */
    struct tcp_conn *next;            /* worker's list */
    struct tcp_conn *prev;
};

/* ================================================================ build */

/* Frees a middleware; NULL is a no-op. */
static void tcp_mw_free(struct tcp_mw *m)
{
    if (!m) return;
    for (size_t i = 0; i < TCP_MW_BUCKETS; i++) {
        while (m->b[i]) {
            struct tcp_ipcnt *e = m->b[i];
            m->b[i] = e->next;
            free(e);
        }
    }
    pthread_mutex_destroy(&m->lock);
    free(m->ranges);
    free(m->name);
    free(m->error);
    free(m);
}

/* Builds middleware qname from cfg (never NULL unless out of memory; a
 * bad one comes back disabled). */
static struct tcp_mw *tcp_mw_build(const char *qname, json_t *cfg, const char *origin)
{
    struct tcp_mw *m = calloc(1, sizeof(*m));
    struct conf_session *s;
    const relais_cfg *root, *opts, *sr;
    const char *type = NULL;
    char path[512];

    if (!m) return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->name = strdup(qname);
    snprintf(path, sizeof(path), "tcp.middlewares.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (conf_cfg_type(root) != RELAIS_CFG_MAP || conf_cfg_len(root) != 1) {
        conf_cfg_error(root, NULL, "expected exactly one middleware type (ipAllowList, inFlightConn)");
        goto done;
    }
    opts = conf_cfg_at(root, 0, &type);
    if (!strcasecmp(type, "ipAllowList") || !strcasecmp(type, "ipWhiteList")) {
        m->kind = TCP_MW_ALLOW;
        sr = conf_cfg_get(opts, "sourceRange");
        if (conf_cfg_type(sr) != RELAIS_CFG_LIST || conf_cfg_len(sr) == 0) {
            conf_cfg_error(opts, "sourceRange", "expected a list of IP addresses or CIDR ranges");
            goto done;
        }
        m->ranges = calloc(conf_cfg_len(sr), sizeof(*m->ranges));
        if (!m->ranges) goto done;
        for (size_t i = 0; i < conf_cfg_len(sr); i++) {
            const relais_cfg *it = conf_cfg_at(sr, i, NULL);
            const char *str;
            if (conf_cfg_string(it, NULL, &str) != RELAIS_CFG_OK) continue;
            if (na_parse_cidr(str, &m->ranges[m->nranges]) < 0)
                conf_cfg_error(it, NULL, "expected an IP address or CIDR range, got \"%s\"", str);
            else
                m->nranges++;
        }
    } else if (!strcasecmp(type, "inFlightConn")) {
        m->kind = TCP_MW_INFLIGHT;
        if (conf_cfg_int(opts, "amount", &m->amount) != RELAIS_CFG_OK || m->amount < 1)
            conf_cfg_error(opts, "amount", "expected a number of connections >= 1");
    } else {
        conf_cfg_error(root, type, "unknown TCP middleware type \"%s\" (ipAllowList, inFlightConn)",
                       type);
    }
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "TCP middleware %s", qname);
        m->status = SNAP_DISABLED;
        m->error = snap_errors(s, what, origin);
        m->kind = 0;
    }
    conf_session_free(s);
    return m;
}

/* Frees a service; NULL is a no-op. */
static void tcp_svc_free(struct tcp_service *sv)
{
    if (!sv) return;
    for (size_t i = 0; i < sv->nservers; i++) free(sv->servers[i].address);
    free(sv->servers);
    for (size_t i = 0; i < sv->nkids; i++) free(sv->kid_names[i]);
    free(sv->kid_names);
    free(sv->kids);
    free(sv->kid_w);
    free(sv->name);
    free(sv->error);
    free(sv);
}

/* The dial timeout of tcp.serversTransports.<name> in the provider's
 * tree (name qualified or not), into *ms.  0, or -1 when it does not
 * exist (error recorded on node/key). */
static int tcp_transport(const struct snap_source *srcs, size_t nsrc, const char *provider,
                         const char *name, const relais_cfg *node, const char *key,
                         int64_t *ms)
{
    char *q = snap_qualify(name, provider);
    int found = -1;

    for (size_t i = 0; q && found < 0 && i < nsrc; i++) {
        json_t *sec = snap_subsection(srcs[i].tree, "tcp", "serversTransports");
        const char *k;
        json_t *v;
        json_object_foreach(sec, k, v) {
            char *kq = snap_qualify(k, srcs[i].provider);
            if (kq && !strcmp(kq, q)) {
                json_t *d = NULL;
                const char *dk;
                json_t *dv;
                json_object_foreach(v, dk, dv)
                    if (!strcasecmp(dk, "dialTimeout")) d = dv;
                found = 0;
                if (json_is_string(d)) {
                    if (conf_parse_duration(json_string_value(d), ms) < 0)
                        conf_cfg_error(node, key, "serversTransport \"%s\": bad dialTimeout", q);
                } else if (json_is_integer(d)) {
                    *ms = json_integer_value(d) * 1000;
                }
            }
            free(kq);
            if (found == 0) break;
        }
    }
    if (found < 0) conf_cfg_error(node, key, "serversTransport \"%s\" does not exist", q ? q : name);
    free(q);
    return found;
}

/* Builds service qname from cfg (never NULL unless out of memory). */
static struct tcp_service *tcp_svc_build(const char *qname, const char *provider, json_t *cfg,
                                         const char *origin, const struct snap_source *srcs,
                                         size_t nsrc)
{
    struct tcp_service *sv = calloc(1, sizeof(*sv));
    struct conf_session *s;
    const relais_cfg *root, *lb, *servers, *pp, *wt;
    const char *str;
    char path[512];
    size_t i, n;

    if (!sv) return NULL;
    sv->name = strdup(qname);
    sv->dial_ms = TCP_DEFAULT_DIAL_MS;
    snprintf(path, sizeof(path), "tcp.services.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map (loadBalancer or weighted)");
        goto done;
    }
    lb = conf_cfg_get(root, "loadBalancer");
    wt = conf_cfg_get(root, "weighted");
    if (wt && !lb) {
        const relais_cfg *list = conf_cfg_get(wt, "services");
        sv->weighted = 1;
        if (conf_cfg_type(list) != RELAIS_CFG_LIST || conf_cfg_len(list) == 0) {
            conf_cfg_error(wt, "services", "expected a list of {name, weight}");
            goto done;
        }
        n = conf_cfg_len(list);
        sv->kid_names = calloc(n, sizeof(char *));
        sv->kid_w = calloc(n, sizeof(uint32_t));
        sv->kids = calloc(n, sizeof(*sv->kids));
        if (!sv->kid_names || !sv->kid_w || !sv->kids) goto done;
        for (i = 0; i < n; i++) {
            const relais_cfg *it = conf_cfg_at(list, i, NULL);
            int64_t w = 1;
            if (conf_cfg_string(it, "name", &str) != RELAIS_CFG_OK) {
                conf_cfg_error(it, "name", "missing: expected a service name");
                continue;
            }
            if (conf_cfg_int(it, "weight", &w) == RELAIS_CFG_OK && (w < 0 || w > 1000000)) {
                conf_cfg_error(it, "weight", "expected a weight from 0 to 1000000");
                continue;
            }
            sv->kid_names[sv->nkids] = snap_qualify(str, provider);
            sv->kid_w[sv->nkids] = (uint32_t)w;
            sv->kid_total += (uint64_t)w;
            sv->nkids++;
        }
        goto done;
    }
    if (!lb) {
        conf_cfg_error(root, NULL, "expected loadBalancer or weighted");
        goto done;
    }
    servers = conf_cfg_get(lb, "servers");
    if (conf_cfg_type(servers) != RELAIS_CFG_LIST) {
        conf_cfg_error(lb, "servers", "expected a list of servers with an address");
        goto done;
    }
    n = conf_cfg_len(servers);
    if (n > TCP_MAX_SERVERS) {
        conf_cfg_error(lb, "servers", "at most %d servers", TCP_MAX_SERVERS);
        goto done;
    }
    sv->servers = calloc(n ? n : 1, sizeof(*sv->servers));
    if (!sv->servers) goto done;
    for (i = 0; i < n; i++) {
        const relais_cfg *it = conf_cfg_at(servers, i, NULL);
        struct tcp_server *srv = &sv->servers[sv->nservers];
        int64_t w = 1;
        char msg[300];

        if (conf_cfg_string(it, "address", &str) != RELAIS_CFG_OK) {
            if (!conf_cfg_get(it, "address"))
                conf_cfg_error(it, "address", "missing: expected an address such as \"127.0.0.1:8080\"");
            continue;
        }
        if (conf_cfg_int(it, "weight", &w) == RELAIS_CFG_OK && (w < 0 || w > 1000000)) {
            conf_cfg_error(it, "weight", "expected a weight from 0 to 1000000");
            continue;
        }
        if (conf_cfg_get(it, "tls")) {
            int b = 0;
            if (conf_cfg_bool(it, "tls", &b) == RELAIS_CFG_OK && b) {
                conf_cfg_error(it, "tls", "TLS towards TCP servers is not supported yet");
                continue;
            }
        }
        if (na_resolve(str, SOCK_STREAM, &srv->addr, &srv->addrlen, msg, sizeof(msg)) < 0) {
            conf_cfg_error(it, "address", "%s", msg);
            continue;
        }
        srv->address = strdup(str);
        srv->weight = (uint32_t)w;
        sv->total += (uint64_t)w;
        sv->nservers++;
    }
    pp = conf_cfg_get(lb, "proxyProtocol");
    if (pp) {
        int64_t v = 2;
        if (conf_cfg_type(pp) != RELAIS_CFG_MAP) {
            conf_cfg_error(pp, NULL, "expected a map with a version (1 or 2)");
        } else if (conf_cfg_int(pp, "version", &v) == RELAIS_CFG_INVALID) {
            /* error recorded */
        } else if (v != 1 && v != 2) {
            conf_cfg_error(pp, "version", "expected 1 or 2, got %lld", (long long)v);
        } else {
            sv->pp_version = (int)v;
        }
    }
    if (conf_cfg_string(lb, "serversTransport", &str) == RELAIS_CFG_OK)
        tcp_transport(srcs, nsrc, provider, str, lb, "serversTransport", &sv->dial_ms);
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "TCP service %s", qname);
        sv->status = SNAP_DISABLED;
        sv->error = snap_errors(s, what, origin);
    }
    conf_session_free(s);
    return sv;
}

/* The service / middleware called q in t, or NULL. */
static struct tcp_service *tcp_find_svc(const struct tcp_snap *t, const char *q)
{
    for (size_t i = 0; i < t->nsvcs; i++)
        if (!strcmp(t->svcs[i]->name, q)) return t->svcs[i];
    return NULL;
}

static struct tcp_mw *tcp_find_mw(const struct tcp_snap *t, const char *q)
{
    for (size_t i = 0; i < t->nmws; i++)
        if (!strcmp(t->mws[i]->name, q)) return t->mws[i];
    return NULL;
}

/* 1 when weighted service sv reaches a usable server within depth
 * levels (cycles and dead ends are errors). */
static int tcp_svc_usable(const struct tcp_service *sv, int depth)
{
    if (!sv || sv->status == SNAP_DISABLED || depth > TCP_MAX_WEIGHTED_DEPTH) return 0;
    if (!sv->weighted) return 1;
    for (size_t i = 0; i < sv->nkids; i++)
        if (!tcp_svc_usable(sv->kids[i], depth + 1)) return 0;
    return 1;
}

/* Resolves the weighted services' children (after every service is
 * built); a missing or cyclic child disables the service. */
static void tcp_svc_link(struct tcp_snap *t, struct snapshot *snap)
{
    size_t i, j;

    for (i = 0; i < t->nsvcs; i++) {
        struct tcp_service *sv = t->svcs[i];
        if (!sv->weighted || sv->status == SNAP_DISABLED) continue;
        for (j = 0; j < sv->nkids; j++) {
            sv->kids[j] = sv->kid_names[j] ? tcp_find_svc(t, sv->kid_names[j]) : NULL;
            if (!sv->kids[j] && !sv->error) {
                char msg[600];
                snprintf(msg, sizeof(msg), "tcp.services.%s.weighted.services[%zu].name: "
                         "service \"%s\" does not exist", sv->name, j,
                         sv->kid_names[j] ? sv->kid_names[j] : "");
                log_error("config", "TCP service %s disabled: %s", sv->name, msg);
                sv->error = strdup(msg);
                sv->status = SNAP_DISABLED;
                snap->nerrors++;
            }
        }
    }
    for (i = 0; i < t->nsvcs; i++) {
        struct tcp_service *sv = t->svcs[i];
        if (!sv->weighted || sv->status == SNAP_DISABLED) continue;
        if (!tcp_svc_usable(sv, 0)) {
            char msg[600];
            snprintf(msg, sizeof(msg), "tcp.services.%s.weighted.services: a child service is "
                     "disabled or the services form a cycle", sv->name);
            log_error("config", "TCP service %s disabled: %s", sv->name, msg);
            sv->error = strdup(msg);
            sv->status = SNAP_DISABLED;
            snap->nerrors++;
        }
    }
}

/* Reads a router's tls key.  Errors go to the router's session. */
static void tcp_router_tls(struct snapshot *snap, struct tcp_router *r, const relais_cfg *root,
                           const char *provider, const struct sc_config *sc)
{
    const relais_cfg *t = conf_cfg_get(root, "tls");
    const char *opts = NULL, *k, *why = NULL;
    int b;

    if (!t) return;
    switch (conf_cfg_type(t)) {
    case RELAIS_CFG_BOOL:
        conf_cfg_bool(t, NULL, &b);
        r->tls = b;
        break;
    case RELAIS_CFG_NULL:
        r->tls = 1;
        break;
    case RELAIS_CFG_MAP:
        r->tls = 1;
        for (size_t i = 0; i < conf_cfg_len(t); i++) {
            conf_cfg_at(t, i, &k);
            if (strcasecmp(k, "passthrough") && strcasecmp(k, "options") &&
                strcasecmp(k, "certResolver") && strcasecmp(k, "domains"))
                conf_cfg_error(t, k, "unknown key (expected passthrough, options, certResolver, "
                                     "domains)");
        }
        conf_cfg_bool(t, "passthrough", &r->passthrough);
        conf_cfg_string(t, "options", &opts);
        {
            const char *res;
            const relais_cfg *d = conf_cfg_get(t, "domains");
            if (conf_cfg_string(t, "certResolver", &res) == RELAIS_CFG_OK && *res) {
                if (!sc_resolver(sc, res))
                    conf_cfg_error(t, "certResolver",
                                   "certificate resolver \"%s\" does not exist "
                                   "(certificatesResolvers in the static configuration)", res);
                r->cert_resolver = strdup(res);
            }
            if (d && conf_cfg_type(d) != RELAIS_CFG_LIST)
                conf_cfg_error(d, NULL, "expected a list of {main, sans}");
            else if (d)
                r->tls_domains = json_incref(conf_node_json(d));
        }
        break;
    default:
        conf_cfg_error(t, NULL, "expected a map (passthrough, options, certResolver, domains)");
        return;
    }
    if (!r->tls || r->passthrough) return;
    if (opts && *opts) {
        char *q = strcmp(opts, "default") ? snap_qualify(opts, provider) : strdup("default");
        r->tls_opts = q && snap->tls ? ts_conf_options(snap->tls, q, &why) : NULL;
        if (!r->tls_opts) {
            if (why) conf_cfg_error(t, "options", "TLS options \"%s\" are disabled: %s", q, why);
            else conf_cfg_error(t, "options", "TLS options \"%s\" do not exist", q ? q : opts);
        }
        free(q);
    } else if (snap->tls) {
        r->tls_opts = ts_conf_options(snap->tls, "default", NULL);
    }
}

/* Compiles router qname into r (errors disable it). */
static void tcp_router_build(struct snapshot *snap, struct tcp_snap *t, struct tcp_router *r,
                             const char *qname, const char *provider, json_t *cfg,
                             const char *origin, const struct sc_config *sc)
{
    struct conf_session *s;
    const relais_cfg *root, *mws;
    const char *str;
    char path[512], *q, *warn = NULL;
    size_t i, n;

    r->name = strdup(qname);
    r->eps = calloc(sc->neps ? sc->neps : 1, 1);
    snprintf(path, sizeof(path), "tcp.routers.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (!r->name || !r->eps) {
        conf_cfg_error(root, NULL, "out of memory");
        goto done;
    }
    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map with a rule and a service");
        goto done;
    }
    tcp_router_tls(snap, r, root, provider, sc);
    switch (conf_cfg_string(root, "rule", &str)) {
    case RELAIS_CFG_OK: {
        struct rule_error err;
        r->rule = rule_parse_tcp(str, &err);
        if (!r->rule) {
            conf_cfg_error(root, "rule", "column %d: %s", err.column, err.msg);
        } else {
            r->catchall = rule_tcp_catchall(r->rule);
            if (!r->tls && rule_tcp_needs_sni(r->rule))
                conf_cfg_error(root, "rule", "HostSNI with a host name or HostSNIRegexp needs "
                                             "tls on the router (a non-TLS connection has no "
                                             "server name; use HostSNI(`*`))");
        }
        r->priority = (int64_t)strlen(str);
        break;
    }
    case RELAIS_CFG_MISSING:
        conf_cfg_error(root, "rule", "missing: expected a rule such as HostSNI(`*`)");
        break;
    default:
        break;
    }
    {
        int64_t p;
        if (conf_cfg_int(root, "priority", &p) == RELAIS_CFG_OK && p != 0) r->priority = p;
    }
    warn = snap_read_eps(root, sc, r->eps, 0);
    mws = conf_cfg_get(root, "middlewares");
    if (mws && conf_cfg_type(mws) != RELAIS_CFG_LIST) {
        conf_cfg_error(mws, NULL, "expected a list of middleware names");
    } else if (mws) {
        n = conf_cfg_len(mws);
        r->mws = calloc(n ? n : 1, sizeof(*r->mws));
        for (i = 0; r->mws && i < n; i++) {
            const relais_cfg *it = conf_cfg_at(mws, i, NULL);
            struct tcp_mw *m;
            if (conf_cfg_string(it, NULL, &str) != RELAIS_CFG_OK) continue;
            q = snap_qualify(str, provider);
            m = q ? tcp_find_mw(t, q) : NULL;
            if (!m) conf_cfg_error(it, NULL, "TCP middleware \"%s\" does not exist", q ? q : str);
            else if (m->status == SNAP_DISABLED)
                conf_cfg_error(it, NULL, "TCP middleware \"%s\" is disabled", q);
            else r->mws[r->nmws++] = m;
            free(q);
        }
    }
    switch (conf_cfg_string(root, "service", &str)) {
    case RELAIS_CFG_OK:
        q = snap_qualify(str, provider);
        r->service = q ? tcp_find_svc(t, q) : NULL;
        if (!r->service)
            conf_cfg_error(root, "service", "TCP service \"%s\" does not exist", q ? q : str);
        else if (r->service->status == SNAP_DISABLED)
            conf_cfg_error(root, "service", "TCP service \"%s\" is disabled", q);
        free(q);
        break;
    case RELAIS_CFG_MISSING:
        conf_cfg_error(root, "service", "missing: expected the name of a TCP service");
        break;
    default:
        break;
    }
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "TCP router %s", qname);
        r->status = SNAP_DISABLED;
        r->error = snap_errors(s, what, origin);
        snap->nerrors++;
    } else if (warn) {
        log_warn("config", "TCP router %s: %s", qname, warn);
        r->status = SNAP_WARNING;
        r->error = warn;
        warn = NULL;
    }
    free(warn);
    conf_session_free(s);
}

/* qsort order of routers: priority descending, then name. */
static int tcp_router_cmp(const void *a, const void *b)
{
    const struct tcp_router *x = *(struct tcp_router *const *)a;
    const struct tcp_router *y = *(struct tcp_router *const *)b;

    if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
    return strcmp(x->name, y->name);
}

/** Argument of the host callbacks. */
struct tcp_hosts_arg {
    struct snapshot *snap;         /* for tls_hosts */
    const struct tcp_router *r;    /* TCP router (tls_hosts), or NULL */
    struct tcp_ep *ep;             /* HTTPS host list being filled, or NULL */
};

/* rule_sni_hosts callback: the TCP router's names -> its TLS options. */
static void tcp_tls_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct tcp_hosts_arg *ha = arg;

    ts_hosts_add(ha->snap->tls_hosts, host, len, wildcard, ha->r->tls_opts, ha->r->name);
}

/* rule_hosts callback: an HTTPS router's host on an entry point. */
static void tcp_https_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct tcp_ep *ep = ((struct tcp_hosts_arg *)arg)->ep;
    char *c;

    if (ep->nhttps == ep->cap_https) {
        size_t nc = ep->cap_https ? ep->cap_https * 2 : 8;
        struct tcp_host *nh = realloc(ep->https, nc * sizeof(*nh));
        if (!nh) return; /* a missing hint only changes precedence */
        ep->https = nh;
        ep->cap_https = nc;
    }
    c = malloc(len + 1);
    if (!c) return;
    memcpy(c, host, len);
    c[len] = '\0';
    ep->https[ep->nhttps].s = c;
    ep->https[ep->nhttps].len = len;
    ep->https[ep->nhttps].wildcard = wildcard;
    ep->nhttps++;
}

void tcp_snap_free(struct tcp_snap *t)
{
    size_t i, j;

    if (!t) return;
    for (i = 0; i < t->nrouters; i++) {
        struct tcp_router *r = &t->routers[i];
        free(r->name);
        rule_free(r->rule);
        free(r->eps);
        free(r->mws);
        free(r->cert_resolver);
        json_decref(r->tls_domains);
        free(r->error);
    }
    free(t->routers);
    for (i = 0; i < t->nsvcs; i++) tcp_svc_free(t->svcs[i]);
    free(t->svcs);
    for (i = 0; i < t->nmws; i++) tcp_mw_free(t->mws[i]);
    free(t->mws);
    for (i = 0; t->eps && i < t->neps; i++) {
        free(t->eps[i].plain);
        free(t->eps[i].tls);
        for (j = 0; j < t->eps[i].nhttps; j++) free(t->eps[i].https[j].s);
        free(t->eps[i].https);
    }
    free(t->eps);
    free(t);
}

int tcp_snap_build(struct snapshot *snap, const struct snap_source *src, size_t nsrc,
                   const struct sc_config *sc)
{
    struct tcp_snap *t = calloc(1, sizeof(*t));
    size_t i, e, nr = 0, capm = 0, caps = 0;
    const char *k;
    json_t *v, *sec;
    char *q;

    if (!t) return -1;
    snap->tcp = t;
    for (i = 0; i < nsrc; i++) {
        sec = snap_subsection(src[i].tree, "tcp", "middlewares");
        json_object_foreach(sec, k, v) {
            struct tcp_mw *m;
            q = snap_qualify(k, src[i].provider);
            m = q ? tcp_mw_build(q, v, snap_origin(&src[i], "tcp", "middlewares", k)) : NULL;
            free(q);
            if (!m) return -1;
            if (snap_push((void ***)&t->mws, &t->nmws, &capm, m) < 0) {
                tcp_mw_free(m);
                return -1;
            }
            if (m->status == SNAP_DISABLED) snap->nerrors++;
        }
        sec = snap_subsection(src[i].tree, "tcp", "services");
        json_object_foreach(sec, k, v) {
            struct tcp_service *sv;
            q = snap_qualify(k, src[i].provider);
            sv = q ? tcp_svc_build(q, src[i].provider, v, snap_origin(&src[i], "tcp", "services", k), src,
                                   nsrc)
                   : NULL;
            free(q);
            if (!sv) return -1;
            if (snap_push((void ***)&t->svcs, &t->nsvcs, &caps, sv) < 0) {
                tcp_svc_free(sv);
                return -1;
            }
            if (sv->status == SNAP_DISABLED) snap->nerrors++;
        }
        nr += json_object_size(snap_subsection(src[i].tree, "tcp", "routers"));
    }
    tcp_svc_link(t, snap);
    t->routers = calloc(nr ? nr : 1, sizeof(*t->routers));
    t->neps = sc->neps;
    t->eps = calloc(sc->neps ? sc->neps : 1, sizeof(*t->eps));
    if (!t->routers || !t->eps) return -1;
    for (i = 0; i < nsrc; i++) {
        sec = snap_subsection(src[i].tree, "tcp", "routers");
        json_object_foreach(sec, k, v) {
            q = snap_qualify(k, src[i].provider);
            if (!q) return -1;
            tcp_router_build(snap, t, &t->routers[t->nrouters++], q, src[i].provider, v,
                             snap_origin(&src[i], "tcp", "routers", k), sc);
            free(q);
        }
    }
    for (e = 0; e < sc->neps; e++) {
        struct tcp_ep *ep = &t->eps[e];
        ep->plain = calloc(t->nrouters ? t->nrouters : 1, sizeof(*ep->plain));
        ep->tls = calloc(t->nrouters ? t->nrouters : 1, sizeof(*ep->tls));
        if (!ep->plain || !ep->tls) return -1;
        for (i = 0; i < t->nrouters; i++) {
            struct tcp_router *r = &t->routers[i];
            if (r->status == SNAP_DISABLED || !r->eps[e]) continue;
            if (r->tls) ep->tls[ep->ntls++] = r;
            else ep->plain[ep->nplain++] = r;
        }
        qsort(ep->plain, ep->nplain, sizeof(*ep->plain), tcp_router_cmp);
        qsort(ep->tls, ep->ntls, sizeof(*ep->tls), tcp_router_cmp);
        /* Traefik's HTTPS muxer: which SNI an HTTPS router claims */
        for (i = 0; i < snap->nrouters; i++) {
            const struct snap_router *hr = &snap->routers[i];
            struct tcp_hosts_arg ha = {snap, NULL, ep};
            if (hr->status == SNAP_DISABLED || !hr->tls || !hr->eps || !hr->eps[e]) continue;
            ep->https_any = 1;
            if (hr->rule) rule_hosts(hr->rule, tcp_https_host, &ha);
        }
    }
    /* TLS options by SNI for the terminating TCP routers */
    for (i = 0; i < t->nrouters; i++) {
        struct tcp_router *r = &t->routers[i];
        struct tcp_hosts_arg ha = {snap, r, NULL};
        if (r->status == SNAP_DISABLED || !r->tls || r->passthrough || !r->rule || !r->tls_opts ||
            !snap->tls_hosts)
            continue;
        rule_sni_hosts(r->rule, tcp_tls_host, &ha);
    }
    return 0;
}

/* ================================================================ route */

unsigned tcp_ep_flags(const struct snapshot *snap, int ep)
{
    const struct tcp_snap *t = snap ? snap->tcp : NULL;
    unsigned f = 0;

    if (!t || ep < 0 || (size_t)ep >= t->neps) return 0;
    if (t->eps[ep].nplain) f |= TCP_EP_PLAIN;
    if (t->eps[ep].ntls) f |= TCP_EP_TLS;
    return f;
}

/* 1 when an HTTPS router of ep claims the server name (exact or
 * wildcard; sni is lowercase). */
static int tcp_https_claims(const struct tcp_ep *ep, const char *sni, size_t len)
{
    for (size_t i = 0; i < ep->nhttps; i++) {
        const struct tcp_host *h = &ep->https[i];
        if (h->wildcard) {
            if (len > h->len + 1 && sni[len - h->len - 1] == '.' &&
                !memcmp(sni + len - h->len, h->s, h->len))
                return 1;
        } else if (h->len == len && !memcmp(sni, h->s, len)) {
            return 1;
        }
    }
    return 0;
}

const struct tcp_router *tcp_route(const struct snapshot *snap, int ep, int tls,
                                   const struct rule_tcp_req *req)
{
    const struct tcp_snap *t = snap ? snap->tcp : NULL;
    const struct tcp_ep *e;
    size_t i;

    if (!t || ep < 0 || (size_t)ep >= t->neps) return NULL;
    e = &t->eps[ep];
    if (!tls) {
        for (i = 0; i < e->nplain; i++)
            if (rule_match_tcp(e->plain[i]->rule, req)) return e->plain[i];
        return NULL;
    }
    if (req->sni && req->sni_len && tcp_https_claims(e, req->sni, req->sni_len)) return NULL;
    for (i = 0; i < e->ntls; i++)
        if (!e->tls[i]->catchall && rule_match_tcp(e->tls[i]->rule, req)) return e->tls[i];
    if (e->https_any) return NULL;
    for (i = 0; i < e->ntls; i++)
        if (e->tls[i]->catchall) return e->tls[i];
    return NULL;
}

void tcp_foreach_resolver(const struct snapshot *snap,
                          void (*cb)(void *arg, const char *router, const char *resolver,
                                     const rule_t *rule, json_t *domains),
                          void *arg)
{
    const struct tcp_snap *t = snap->tcp;

    for (size_t i = 0; t && i < t->nrouters; i++) {
        const struct tcp_router *r = &t->routers[i];
        if (r->status == SNAP_DISABLED || !r->tls || r->passthrough || !r->cert_resolver) continue;
        cb(arg, r->name, r->cert_resolver, r->rule, r->tls_domains);
    }
}

const char *tcp_router_name(const struct tcp_router *r)
{
    return r->name;
}

/* ================================================================ relay */

/* Picks a server of sv (weights; weighted services recurse), or NULL. */
static const struct tcp_server *tcp_pick(struct tcp_service *sv, int depth)
{
    uint64_t n, acc = 0;
    size_t i;

    if (!sv || depth > TCP_MAX_WEIGHTED_DEPTH) return NULL;
    if (sv->weighted) {
        if (!sv->kid_total) return NULL;
        n = __atomic_fetch_add(&sv->rr, 1, __ATOMIC_RELAXED) % sv->kid_total;
        for (i = 0; i < sv->nkids; i++) {
            acc += sv->kid_w[i];
            if (n < acc) return tcp_pick(sv->kids[i], depth + 1);
        }
        return NULL;
    }
    if (!sv->total) return NULL;
    n = __atomic_fetch_add(&sv->rr, 1, __ATOMIC_RELAXED) % sv->total;
    for (i = 0; i < sv->nservers; i++) {
        acc += sv->servers[i].weight;
        if (n < acc) return &sv->servers[i];
    }
    return NULL;
}

/* The service that owns the picked server (for its PROXY version and
 * dial timeout): the leaf loadBalancer of sv for server srv. */
static const struct tcp_service *tcp_leaf(const struct tcp_service *sv,
                                          const struct tcp_server *srv, int depth)
{
    if (!sv || depth > TCP_MAX_WEIGHTED_DEPTH) return NULL;
    if (!sv->weighted)
        return srv >= sv->servers && srv < sv->servers + sv->nservers ? sv : NULL;
    for (size_t i = 0; i < sv->nkids; i++) {
        const struct tcp_service *l = tcp_leaf(sv->kids[i], srv, depth + 1);
        if (l) return l;
    }
    return NULL;
}

/* Hash bucket of a mapped address. */
static unsigned tcp_bucket(const uint8_t a[16])
{
    unsigned h = 2166136261u;

    for (int i = 0; i < 16; i++) h = (h ^ a[i]) * 16777619u;
    return h % TCP_MW_BUCKETS;
}

/* inFlightConn: counts one more connection from a; 0, or -1 when the
 * source is at its amount (or memory ran out). */
static int tcp_inflight_acquire(struct tcp_mw *m, const uint8_t a[16])
{
    struct tcp_ipcnt *e;
    unsigned b = tcp_bucket(a);
    int rc = -1;

    pthread_mutex_lock(&m->lock);
    for (e = m->b[b]; e; e = e->next)
        if (!memcmp(e->addr, a, 16)) break;
    if (!e && m->nent < TCP_MW_MAX_IPS && (e = calloc(1, sizeof(*e))) != NULL) {
        memcpy(e->addr, a, 16);
        e->next = m->b[b];
        m->b[b] = e;
        m->nent++;
    }
    if (e && e->n < (uint64_t)m->amount) {
        e->n++;
        rc = 0;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* inFlightConn: one connection from a ended. */
static void tcp_inflight_release(struct tcp_mw *m, const uint8_t a[16])
{
    struct tcp_ipcnt **pp, *e;
    unsigned b = tcp_bucket(a);

    pthread_mutex_lock(&m->lock);
    for (pp = &m->b[b]; (e = *pp) != NULL; pp = &e->next) {
        if (memcmp(e->addr, a, 16)) continue;
        if (e->n) e->n--;
        if (!e->n) {
            *pp = e->next;
            free(e);
            m->nent--;
        }
        break;
    }
    pthread_mutex_unlock(&m->lock);
}

/* Frees the connection: streams, timer, counters, snapshot reference. */
static void tcp_conn_free(struct tcp_conn *c)
{
    struct worker *w = c->w;

    if (c->next) c->next->prev = c->prev;
    if (c->prev) c->prev->next = c->next;
    else if (w->tcp_conns == c) w->tcp_conns = c->next;
    w->nconns--;
    wk_conn_closed(w, c->ep);
    for (size_t i = 0; i < c->ncounted; i++) tcp_inflight_release(c->counted[i], c->caddr);
    free(c->counted);
    if (c->timer) event_free(c->timer);
    st_free(c->cs);
    st_free(c->us);
    if (c->ref) wk_release(w, c->ref);
    free(c);
    if (w->stopping && w->nconns == 0) event_base_loopexit(w->base, NULL);
}

/* Moves from's input to to's output while that output is below the cap. */
static void tcp_pump(struct stream *from, struct stream *to)
{
    struct evbuffer *in = st_input(from), *out = st_output(to);

    if (evbuffer_get_length(in) && evbuffer_get_length(out) < TCP_BUF_CAP)
        evbuffer_add_buffer(out, in);
}

/* Passes FINs on once everything before them is written; frees the
 * connection when both directions are shut.  Returns 1 when freed (the
 * caller must not touch c). */
static int tcp_progress(struct tcp_conn *c)
{
    if (!c->connected) return 0;
    if (c->c_eof && !c->u_shut && !evbuffer_get_length(st_input(c->cs))) {
        if (!evbuffer_get_length(st_output(c->us))) {
            st_shutdown_write(c->us);
            c->u_shut = 1;
        } else {
            st_setwatermark(c->us, ST_WRITE, 0, 0);
        }
    }
    if (c->u_eof && !c->c_shut && !evbuffer_get_length(st_input(c->us))) {
        if (!evbuffer_get_length(st_output(c->cs))) {
            st_shutdown_write(c->cs);
            c->c_shut = 1;
        } else {
            st_setwatermark(c->cs, ST_WRITE, 0, 0);
        }
    }
    if (c->u_shut && c->c_shut) {
        tcp_conn_free(c);
        return 1;
    }
    return 0;
}

static void tcp_client_read(struct stream *s, void *arg)
{
    struct tcp_conn *c = arg;

    (void)s;
    c->last_ms = wk_now_ms();
    if (c->connected) tcp_pump(c->cs, c->us);
}

static void tcp_server_read(struct stream *s, void *arg)
{
    struct tcp_conn *c = arg;

    (void)s;
    c->last_ms = wk_now_ms();
    tcp_pump(c->us, c->cs);
}

/* The client's output drained: take more from the server. */
static void tcp_client_write(struct stream *s, void *arg)
{
    struct tcp_conn *c = arg;

    (void)s;
    if (c->us) tcp_pump(c->us, c->cs);
    tcp_progress(c);
}

/* The server's output drained: take more from the client. */
static void tcp_server_write(struct stream *s, void *arg)
{
    struct tcp_conn *c = arg;

    (void)s;
    tcp_pump(c->cs, c->us);
    tcp_progress(c);
}

static void tcp_client_event(struct stream *s, short what, void *arg)
{
    struct tcp_conn *c = arg;

    if ((what & ST_EOF) && !(what & ST_ERROR)) {
        c->c_eof = 1;
        if (c->connected) {
            tcp_pump(c->cs, c->us);
            tcp_progress(c);
        }
        return;
    }
    if ((what & ST_ERROR) && st_ssl(s) && *st_tls_error(s))
        log_debug("tcp", "%s: router %s: TLS: %s", c->client_ip, c->r->name, st_tls_error(s));
    else
        log_debug("tcp", "%s: router %s: client connection %s", c->client_ip, c->r->name,
                  (what & ST_TIMEOUT) ? "timed out" : "failed");
    tcp_conn_free(c);
}

static void tcp_server_event(struct stream *s, short what, void *arg)
{
    struct tcp_conn *c = arg;

    (void)s;
    if (what & ST_CONNECTED) {
        c->connected = 1;
        st_set_timeouts(c->us, NULL, NULL);
        st_enable(c->us, ST_READ);
        st_enable(c->cs, ST_READ);
        tcp_pump(c->cs, c->us); /* plaintext already decrypted, if any */
        tcp_progress(c);
        return;
    }
    if ((what & ST_EOF) && !(what & ST_ERROR) && c->connected) {
        c->u_eof = 1;
        tcp_pump(c->us, c->cs);
        tcp_progress(c);
        return;
    }
    log_debug("tcp", "%s: router %s: server connection %s", c->client_ip, c->r->name,
              (what & ST_TIMEOUT) ? "timed out" : c->connected ? "failed" : "refused");
    tcp_conn_free(c);
}

/* Idle timer: closes when nothing was read for the idle timeout. */
static void tcp_idle(evutil_socket_t fd, short what, void *arg)
{
    struct tcp_conn *c = arg;
    uint64_t now = wk_now_ms(), since = now - c->last_ms;

    (void)fd;
    (void)what;
    if (since >= (uint64_t)c->idle_ms) {
        log_debug("tcp", "%s: router %s: idle for %lld ms, closed", c->client_ip, c->r->name,
                  (long long)c->idle_ms);
        tcp_conn_free(c);
        return;
    }
    {
        uint64_t left = (uint64_t)c->idle_ms - since;
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
        event_add(c->timer, &tv);
    }
}

/* An IPv4-mapped IPv6 address as AF_INET (in place). */
static void tcp_unmap(struct sockaddr_storage *ss)
{
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in a4;

    if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) return;
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_port = a6->sin6_port;
    memcpy(&a4.sin_addr, a6->sin6_addr.s6_addr + 12, 4);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, &a4, sizeof(a4));
}

/* Puts the PROXY header for c into the server's output.  0 / -1. */
static int tcp_proxy_header(struct tcp_conn *c, int version)
{
    unsigned char buf[PP_MAX_HEADER];
    struct sockaddr_storage src = c->client, dst = c->local;
    size_t n;

    tcp_unmap(&src);
    tcp_unmap(&dst);
    n = pp_build(version, (struct sockaddr *)&src, (struct sockaddr *)&dst, buf, sizeof(buf));
    if (!n && version == 2) n = pp_build(2, NULL, NULL, buf, sizeof(buf));
    if (!n) return -1;
    return evbuffer_add(st_output(c->us), buf, n);
}

void tcp_take(struct worker *w, int ep, struct stream *cs, struct wk_snapref *ref,
              const struct tcp_router *r, const struct sockaddr *client,
              const struct sockaddr *local)
{
    struct tcp_conn *c = calloc(1, sizeof(*c));
    const struct tcp_server *srv;
    const struct tcp_service *leaf;
    size_t i;
    int fd = -1;

    if (!c) {
        st_free(cs);
        wk_release(w, ref);
        wk_conn_closed(w, ep);
        return;
    }
    c->w = w;
    c->ep = ep;
    c->ref = ref;
    c->r = r;
    c->cs = cs;
    c->next = w->tcp_conns;
    if (w->tcp_conns) w->tcp_conns->prev = c;
    w->tcp_conns = c;
    w->nconns++;
    memcpy(&c->client, client,
           client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (local) {
        memcpy(&c->local, local,
               local->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in));
    } else {
        socklen_t ll = sizeof(c->local);
        if (getsockname(st_fd(cs), (struct sockaddr *)&c->local, &ll) < 0)
            memset(&c->local, 0, sizeof(c->local));
    }
    na_ntop(client, c->client_ip, sizeof(c->client_ip));
    na_to_mapped(client, c->caddr);
    st_setcb(cs, tcp_client_read, tcp_client_write, tcp_client_event, c);
    /* middlewares, in the router's order */
    c->counted = calloc(r->nmws ? r->nmws : 1, sizeof(*c->counted));
    if (!c->counted) goto fail;
    for (i = 0; i < r->nmws; i++) {
        struct tcp_mw *m = r->mws[i];
        if (m->kind == TCP_MW_ALLOW) {
            size_t j;
            for (j = 0; j < m->nranges; j++)
                if (na_cidr_contains(&m->ranges[j], c->caddr)) break;
            if (j == m->nranges) {
                log_debug("tcp", "%s: router %s: refused by %s (ipAllowList)", c->client_ip,
                          r->name, m->name);
                goto fail;
            }
        } else if (m->kind == TCP_MW_INFLIGHT) {
            if (tcp_inflight_acquire(m, c->caddr) < 0) {
                log_debug("tcp", "%s: router %s: refused by %s (inFlightConn %lld)",
                          c->client_ip, r->name, m->name, (long long)m->amount);
                goto fail;
            }
            c->counted[c->ncounted++] = m;
        }
    }
    srv = tcp_pick(r->service, 0);
    leaf = srv ? tcp_leaf(r->service, srv, 0) : NULL;
    if (!srv || !leaf) {
        log_debug("tcp", "%s: router %s: no server available", c->client_ip, r->name);
        goto fail;
    }
    /* the client side */
    st_setwatermark(cs, ST_READ, 0, TCP_BUF_CAP);
    st_setwatermark(cs, ST_WRITE, TCP_BUF_CAP / 2, 0);
    if (r->tls && !r->passthrough) {
        const struct snapshot *snap = ref->snap;
        SSL *ssl = snap->tls ? ts_ssl_new(snap->tls, snap->tls_hosts) : NULL;
        if (ssl) ts_ssl_no_h2(ssl);
        if (!ssl || st_tls_accept(cs, ssl) < 0) {
            SSL_free(ssl);
            goto fail;
        }
    }
    /* the server side */
    fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->us = st_new(w->base, fd);
    if (!c->us) {
        close(fd);
        goto fail;
    }
    st_setcb(c->us, tcp_server_read, tcp_server_write, tcp_server_event, c);
    st_setwatermark(c->us, ST_READ, 0, TCP_BUF_CAP);
    st_setwatermark(c->us, ST_WRITE, TCP_BUF_CAP / 2, 0);
    if (leaf->dial_ms > 0) {
        struct timeval tv = {leaf->dial_ms / 1000, (leaf->dial_ms % 1000) * 1000};
        st_set_timeouts(c->us, NULL, &tv);
    }
    if (leaf->pp_version && tcp_proxy_header(c, leaf->pp_version) < 0) goto fail;
    if (st_connect(c->us, (const struct sockaddr *)&srv->addr, srv->addrlen) < 0) {
        log_debug("tcp", "%s: router %s: cannot connect to %s", c->client_ip, r->name,
                  srv->address);
        goto fail;
    }
    c->idle_ms = w->sc->eps[ep].idle_timeout_ms;
    c->last_ms = wk_now_ms();
    if (c->idle_ms > 0) {
        struct timeval tv = {c->idle_ms / 1000, (c->idle_ms % 1000) * 1000};
        c->timer = evtimer_new(w->base, tcp_idle, c);
        if (!c->timer || event_add(c->timer, &tv) < 0) goto fail;
    }
    log_debug("tcp", "%s: router %s -> %s%s", c->client_ip, r->name, srv->address,
              r->tls ? (r->passthrough ? " (TLS passthrough)" : " (TLS terminated)") : "");
    return;
fail:
    tcp_conn_free(c);
}

void tcp_close_all(struct worker *w)
{
    while (w->tcp_conns) tcp_conn_free(w->tcp_conns);
}

void tcp_close_ep(struct worker *w, int ep)
{
    struct tcp_conn *c = w->tcp_conns, *n;

    for (; c; c = n) {
        n = c->next;
        if (c->ep == ep) tcp_conn_free(c);
    }
}

void tcp_api_status(const struct tcp_snap *t, const struct sc_config *sc, json_t *routers,
                    json_t *services, json_t *mws)
{
    size_t i;

    if (!t) return;
    for (i = 0; i < t->nrouters; i++) {
        const struct tcp_router *r = &t->routers[i];
        json_t *o = api_status(r->status, r->error);
        if (o && r->status != SNAP_DISABLED && r->eps)
            json_object_set_new(o, "using", api_ep_names(r->eps, sc));
        if (o) json_object_set_new(routers, r->name, o);
    }
    for (i = 0; i < t->nsvcs; i++)
        json_object_set_new(services, t->svcs[i]->name,
                            api_status(t->svcs[i]->status, t->svcs[i]->error));
    for (i = 0; i < t->nmws; i++)
        json_object_set_new(mws, t->mws[i]->name, api_status(t->mws[i]->status, t->mws[i]->error));
}
