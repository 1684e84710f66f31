/*
 * snapshot — see snapshot.h.
 */
#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accesslog.h"
#include "api.h"
#include "conf.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "proxy.h"
#include "router.h"
#include "service.h"
#include "snapshot.h"
#include "static_config.h"
#include "tcp.h"
#include "tlsstore.h"
#include "transport.h"
#include "udp.h"

static void (*snap_release_hook)(struct snapshot *s); /* control's queue */
static uint64_t snap_next_gen = 1;                  /* control thread only */

void snap_set_release_hook(void (*hook)(struct snapshot *s))
{
    snap_release_hook = hook;
}

void snap_ref(struct snapshot *s)
{
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void snap_unref(struct snapshot *s)
{
    if (!s) return;
    if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (snap_release_hook) snap_release_hook(s);
    else snap_free(s);
}

/* Drops a reference to a shared middleware; destroys it at zero. */
static void snap_mw_unref(struct snap_middleware *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (m->inst && m->ops && m->ops->destroy) m->ops->destroy(m->inst);
    json_decref(m->cfg);
    for (size_t i = 0; i < m->nmembers; i++) free(m->members[i]);
    free(m->members);
    free(m->name);
    free(m->error);
    free(m);
}

/* Drops a reference to a shared service; destroys it at zero. */
static void snap_svc_unref(struct snap_service *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    hl_free(s->health); /* before the servers it probes */
    svc_clear(s);
    free(s->origin);
    if (s->lb_inst && s->lb_ops && s->lb_ops->destroy)
        s->lb_ops->destroy(s->lb_inst);
    for (size_t i = 0; i < s->servers.n; i++) {
        free(s->servers.v[i].url);
        free(s->servers.v[i].pool_key);
    }
    free(s->servers.v);
    tr_unref(s->transport);
    json_decref(s->cfg);
    free(s->name);
    free(s->error);
    free(s);
}

void snap_free(struct snapshot *s)
{
    size_t i;

    if (!s) return;
    for (i = 0; i < s->nrouters; i++) {
        struct snap_router *r = &s->routers[i];
        free(r->name);
        free(r->rule_text);
        rule_free(r->rule);
        free(r->eps);
        free(r->tls_on);
        free(r->mws);
        free(r->cert_resolver);
        json_decref(r->tls_domains);
        free(r->error);
    }
    free(s->routers);
    for (i = 0; s->tables && i < s->ntables; i++) rt_table_free(s->tables[i]);
    free(s->tables);
    for (i = 0; s->tls_tables && i < s->ntables; i++) rt_table_free(s->tls_tables[i]);
    free(s->tls_tables);
    free(s->ep_tls);
    tcp_snap_free(s->tcp);
    udp_snap_free(s->udp);
    json_decref(s->api);
    ts_hosts_free(s->tls_hosts);
    ts_conf_unref(s->tls);
    al_free(s->alog);
    for (i = 0; s->ep_mws && i < s->ntables; i++) free(s->ep_mws[i]);
    for (i = 0; s->ep_mw_error && i < s->ntables; i++) free(s->ep_mw_error[i]);
    free(s->ep_mws);
    free(s->ep_nmws);
    free(s->ep_mw_error);
    for (i = 0; i < s->nmws; i++) snap_mw_unref(s->mws[i]);
    free(s->mws);
    for (i = 0; i < s->nservices; i++) snap_svc_unref(s->services[i]);
    free(s->services);
    for (i = 0; i < s->ntransports; i++) tr_unref(s->transports[i]);
    free(s->transports);
    free(s);
}

/* Builds "name@provider" unless name already has a provider. */
char *snap_qualify(const char *name, const char *provider)
{
    char *q;
    size_t n;

    if (strchr(name, '@')) return strdup(name);
    n = strlen(name) + strlen(provider) + 2;
    q = malloc(n);
    if (q) snprintf(q, n, "%s@%s", name, provider);
    return q;
}

/* Logs and returns a copy of the errors of session s joined by "; ".
 * origin (the source document, may be NULL) prefixes each logged line. */
char *snap_errors(struct conf_session *s, const char *what,
                         const char *origin)
{
    size_t i, n = conf_session_nerrors(s), len = 0;
    char *out;

    for (i = 0; i < n; i++) len += strlen(conf_session_error(s, i)) + 2;
    out = malloc(len + 1);
    if (!out) return NULL;
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        if (i) strcat(out, "; ");
        strcat(out, conf_session_error(s, i));
        if (origin)
            log_error("config", "%s: %s disabled: %s", origin, what, conf_session_error(s, i));
        else
            log_error("config", "%s disabled: %s", what, conf_session_error(s, i));
    }
    return out;
}

/* Finds a shared object of the previous snapshot by name. */
static struct snap_middleware *snap_prev_mw(const struct snapshot *prev,
                                            const char *name)
{
    if (!prev) return NULL;
    for (size_t i = 0; i < prev->nmws; i++)
        if (!strcmp(prev->mws[i]->name, name)) return prev->mws[i];
    return NULL;
}

static struct snap_service *snap_prev_svc(const struct snapshot *prev,
                                          const char *name)
{
    if (!prev) return NULL;
    for (size_t i = 0; i < prev->nservices; i++)
        if (!strcmp(prev->services[i]->name, name)) return prev->services[i];
    return NULL;
}

/* Creates (or reuses) the middleware qname from cfg.  Never NULL unless
 * out of memory; a bad one comes back disabled with its error. */
/* Reads a chain middleware ({middlewares: [names]}), qualifying the names
 * with the chain's own provider.  Errors go to opts' session. */
static void snap_chain(struct snap_middleware *m, const char *qname, const relais_cfg *opts)
{
    const relais_cfg *list = conf_cfg_get(opts, "middlewares");
    const char *provider = strchr(qname, '@'), *k;
    size_t n;

    provider = provider ? provider + 1 : "";
    for (size_t i = 0; i < conf_cfg_len(opts); i++) {
        conf_cfg_at(opts, i, &k);
        if (strcasecmp(k, "middlewares")) conf_cfg_error(opts, k, "unknown option (expected middlewares)");
    }
    if (!list) {
        conf_cfg_error(opts, "middlewares", "missing: expected a list of middleware names");
        return;
    }
    if (conf_cfg_type(list) != RELAIS_CFG_LIST) {
        conf_cfg_error(list, NULL, "expected a list of middleware names");
        return;
    }
    n = conf_cfg_len(list);
    m->members = calloc(n ? n : 1, sizeof(*m->members));
    if (!m->members) return;
    for (size_t i = 0; i < n; i++) {
        const char *s;
        if (conf_cfg_string(conf_cfg_at(list, i, NULL), NULL, &s) != RELAIS_CFG_OK) continue;
        if ((m->members[m->nmembers] = snap_qualify(s, provider)) != NULL) m->nmembers++;
    }
}

static struct snap_middleware *snap_middleware(const char *qname, json_t *cfg,
                                               const char *origin,
                                               const struct snapshot *prev,
                                               const struct pl_set *plugins,
                                               const relais_host *host)
{
    struct snap_middleware *m, *old = snap_prev_mw(prev, qname);
    struct conf_session *s;
    const relais_cfg *root;
    const char *type = NULL;
    char path[512];

    if (old && old->status != SNAP_DISABLED && json_equal(old->cfg, cfg)) {
        __atomic_add_fetch(&old->refs, 1, __ATOMIC_RELAXED);
        return old;
    }
    m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->refs = 1;
    m->name = strdup(qname);
    m->cfg = json_incref(cfg);
    snprintf(path, sizeof(path), "http.middlewares.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (conf_cfg_type(root) != RELAIS_CFG_MAP || conf_cfg_len(root) != 1) {
        conf_cfg_error(root, NULL, "expected exactly one middleware type, e.g. stripPrefix: {...}");
    } else {
        const relais_cfg *opts = conf_cfg_at(root, 0, &type);
        m->plugin = strcasecmp(type, "chain") ? pl_find(plugins, RELAIS_KIND_MIDDLEWARE, type)
                                              : NULL;
        if (!strcasecmp(type, "chain")) {
            snap_chain(m, qname, opts);
        } else if (!m->plugin) {
            conf_cfg_error(root, type, "no loaded plugin provides the middleware type \"%s\"", type);
        } else {
            m->ops = m->plugin->desc->ops;
            if (m->ops->create(host, opts, qname, &m->inst) != 0 &&
                conf_session_nerrors(s) == 0)
                conf_cfg_error(root, type, "the %s plugin refused this configuration", type);
        }
    }
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "middleware %s", qname);
        m->status = SNAP_DISABLED;
        m->error = snap_errors(s, what, origin);
        if (m->inst && m->ops->destroy) m->ops->destroy(m->inst);
        m->inst = NULL;
    }
    conf_session_free(s);
    return m;
}

/* Resolves a server's address (control thread; may block on DNS).
 * 0 / -1 with msg. */
static int snap_resolve(struct snap_server *sv, char *msg, size_t msglen)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", sv->u.port);
    rc = getaddrinfo(sv->u.host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(msg, msglen, "cannot resolve \"%s\": %s", sv->u.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&sv->addr, res->ai_addr, res->ai_addrlen);
    sv->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* The transport named q in the snapshot being built, or NULL. */
static struct tr_transport *snap_find_tr(const struct snapshot *s, const char *q)
{
    for (size_t i = 0; s && i < s->ntransports; i++)
        if (!strcmp(s->transports[i]->name, q)) return s->transports[i];
    return NULL;
}

/* The name loadBalancer.serversTransport gives in the service cfg
 * (qualified with the service's provider), TR_DEFAULT_NAME when absent, or
 * NULL when it is not a non-empty string (the service reports it). */
static char *snap_svc_tr_name(json_t *cfg, const char *qname)
{
    json_t *lb = NULL, *v = NULL;
    const char *k, *at = strrchr(qname, '@');

    json_object_foreach(cfg, k, v) {
        if (!strcasecmp(k, "loadBalancer")) lb = v;
    }
    v = NULL;
    json_object_foreach(lb, k, v) {
        if (!strcasecmp(k, "serversTransport")) break;
        v = NULL; /* json_object_foreach leaves v on the last value */
    }
    if (!v || json_is_null(v)) return strdup(TR_DEFAULT_NAME);
    if (!json_is_string(v) || !json_string_length(v)) return NULL;
    return snap_qualify(json_string_value(v), at ? at + 1 : "");
}

/* The kinds of service, as their keys. */
static const char *const snap_svc_keys[] = {"loadBalancer", "weighted", "mirroring", "failover"};

/* Which kind of service cfg is (enum snap_svc_kind), -1 when it names
 * none of them, -2 when it names several. */
static int snap_svc_kind(json_t *cfg)
{
    const char *k;
    json_t *v;
    int kind = -1;

    json_object_foreach(cfg, k, v) {
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(k, snap_svc_keys[i])) continue;
            kind = kind == -1 ? i : -2;
        }
    }
    return kind;
}

/* Reads loadBalancer.timeouts or a router's timeouts (node: the parent
 * map) into dial / rh (milliseconds, 0 when absent). */
static void snap_timeouts(const relais_cfg *node, int64_t *dial, int64_t *rh)
{
    const relais_cfg *t = conf_cfg_get(node, "timeouts");

    if (!t) return;
    if (conf_cfg_type(t) != RELAIS_CFG_MAP) {
        conf_cfg_error(t, NULL, "expected a map (dialTimeout, responseHeaderTimeout)");
        return;
    }
    conf_cfg_duration(t, "dialTimeout", dial);
    conf_cfg_duration(t, "responseHeaderTimeout", rh);
    if (*dial < 0) conf_cfg_error(t, "dialTimeout", "expected a positive duration");
    if (*rh < 0) conf_cfg_error(t, "responseHeaderTimeout", "expected a positive duration");
}

/* Creates (or reuses) the service qname from cfg.  snap is the snapshot
 * being built (its transports are compiled).  A weighted, mirroring or
 * failover service is always new (its children are resolved later, by
 * svc_link, in this snapshot); a loadBalancer is shared with prev while
 * its configuration and transport are unchanged. */
static struct snap_service *snap_service(const char *qname, json_t *cfg,
                                         const char *origin,
                                         const struct snapshot *prev,
                                         const struct snapshot *snap,
                                         const struct pl_set *plugins,
                                         const relais_host *host)
{
    struct snap_service *sv, *old = snap_prev_svc(prev, qname);
    struct conf_session *s;
    const relais_cfg *root, *lb, *servers;
    const char *strategy = "wrr", *at = strrchr(qname, '@');
    char path[512], *trname = NULL;
    struct tr_transport *tr = NULL;
    size_t i, n;
    int kind = json_is_object(cfg) ? snap_svc_kind(cfg) : -1;

    if (kind == SNAP_SVC_LB) {
        trname = snap_svc_tr_name(cfg, qname);
        tr = trname ? snap_find_tr(snap, trname) : NULL;
    }
    if (kind == SNAP_SVC_LB && old && old->status != SNAP_DISABLED &&
        json_equal(old->cfg, cfg) && old->transport == tr) {
        free(trname);
        __atomic_add_fetch(&old->refs, 1, __ATOMIC_RELAXED);
        return old;
    }
    sv = calloc(1, sizeof(*sv));
    if (!sv) {
        free(trname);
        return NULL;
    }
    sv->refs = 1;
    sv->name = strdup(qname);
    sv->mt_id = mt_intern(MT_SERVICE, qname);
    sv->origin = origin ? strdup(origin) : NULL;
    sv->cfg = json_incref(cfg);
    sv->pass_host_header = 1;
    snprintf(path, sizeof(path), "http.services.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    lb = conf_cfg_get(root, "loadBalancer");
    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map");
        goto done;
    }
    if (kind < 0) {
        conf_cfg_error(root, NULL, "expected exactly one of loadBalancer, weighted, mirroring, "
                                   "failover");
        goto done;
    }
    if (kind != SNAP_SVC_LB) {
        if (svc_parse(sv, conf_cfg_get(root, snap_svc_keys[kind]), kind, at ? at + 1 : "") < 0)
            conf_cfg_error(root, NULL, "out of memory");
        goto done;
    }
    if (conf_cfg_type(lb) != RELAIS_CFG_MAP) {
        conf_cfg_error(lb, NULL, "expected a map with servers");
        goto done;
    }
    snap_timeouts(lb, &sv->dial_ms, &sv->resp_header_ms);
    svc_cookie_parse(lb, qname, &sv->sticky);
    if (!trname) {
        conf_cfg_error(lb, "serversTransport", "expected the name of a serversTransport");
    } else if (!tr) {
        conf_cfg_error(lb, "serversTransport", "no serversTransport named \"%s\"", trname);
    } else if (tr->status == SNAP_DISABLED) {
        conf_cfg_error(lb, "serversTransport", "serversTransport %s is disabled: %s", trname,
                       tr->error ? tr->error : "bad configuration");
    } else {
        tr_ref(tr);
        sv->transport = tr;
    }
    conf_cfg_bool(lb, "passHostHeader", &sv->pass_host_header);
    {
        /* responseForwarding.flushInterval: relais writes response bytes
         * to the client as they arrive (never held), which is what any
         * flushInterval asks for; the value is only validated */
        const relais_cfg *rf = conf_cfg_get(lb, "responseForwarding");
        int64_t fi;
        if (rf && conf_cfg_type(rf) != RELAIS_CFG_MAP)
            conf_cfg_error(rf, NULL, "expected a map (flushInterval)");
        else if (rf)
            conf_cfg_duration(rf, "flushInterval", &fi);
    }
    conf_cfg_string(lb, "strategy", &strategy);
    servers = conf_cfg_get(lb, "servers");
    if (conf_cfg_type(servers) != RELAIS_CFG_LIST) {
        conf_cfg_error(lb, "servers", "expected a list of servers with a url");
        goto done;
    }
    n = conf_cfg_len(servers);
    sv->servers.v = calloc(n ? n : 1, sizeof(*sv->servers.v));
    if (!sv->servers.v) goto done;
    for (i = 0; i < n; i++) {
        const relais_cfg *it = conf_cfg_at(servers, i, NULL);
        struct snap_server *srv = &sv->servers.v[sv->servers.n];
        const char *url;
        int64_t w = 1;
        char msg[300];

        if (conf_cfg_string(it, "url", &url) != RELAIS_CFG_OK) {
            if (conf_cfg_get(it, "url") == NULL)
                conf_cfg_error(it, "url", "missing: expected a URL such as \"http://127.0.0.1:8080\"");
            continue;
        }
        if (na_parse_url(url, &srv->u, msg, sizeof(msg)) < 0) {
            conf_cfg_error(it, "url", "%s", msg);
            continue;
        }
        if (conf_cfg_int(it, "weight", &w) == RELAIS_CFG_OK && (w < 0 || w > 1000000)) {
            conf_cfg_error(it, "weight", "expected a weight from 0 to 1000000");
            continue;
        }
        if (snap_resolve(srv, msg, sizeof(msg)) < 0) {
            conf_cfg_error(it, "url", "%s", msg);
            continue;
        }
        srv->url = strdup(url);
        svc_sticky_value(url, srv->sticky);
        srv->weight = (uint32_t)w;
        srv->up = 1;
        srv->transport = sv->transport;
        {
            const char *tag = sv->transport ? sv->transport->pool_tag : "";
            size_t kl = strlen(srv->u.scheme) + strlen(srv->u.hostport) + strlen(tag) + 5;
            srv->pool_key = malloc(kl);
            if (srv->pool_key)
                snprintf(srv->pool_key, kl, "%s://%s|%s", srv->u.scheme, srv->u.hostport, tag);
            srv->pool_hash = srv->pool_key ? svc_hash(srv->pool_key) : 0;
        }
        sv->servers.n++;
    }
    if (hl_new(host, lb, qname, &sv->servers, sv->transport, &sv->health) < 0 &&
        conf_session_nerrors(s) == 0)
        conf_cfg_error(lb, NULL, "out of memory for the health checks");
    sv->lb = pl_find(plugins, RELAIS_KIND_LB, strategy);
    if (!sv->lb) {
        conf_cfg_error(lb, "strategy", "no loaded plugin provides the load-balancing strategy \"%s\"",
                       strategy);
        goto done;
    }
    sv->lb_ops = sv->lb->desc->ops;
    if (conf_session_nerrors(s) == 0 &&
        sv->lb_ops->create(host, lb, &sv->servers, &sv->lb_inst) != 0 &&
        conf_session_nerrors(s) == 0)
        conf_cfg_error(lb, "strategy", "the %s strategy refused this configuration", strategy);
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "service %s", qname);
        sv->status = SNAP_DISABLED;
        sv->error = snap_errors(s, what, origin);
        if (sv->lb_inst && sv->lb_ops->destroy) sv->lb_ops->destroy(sv->lb_inst);
        sv->lb_inst = NULL;
    } else if (sv->health) {
        hl_start(sv->health);
    }
    conf_session_free(s);
    free(trname);
    return sv;
}

/* Finds a middleware / service by qualified name in the snapshot. */
static struct snap_middleware *snap_find_mw(struct snapshot *s, const char *q)
{
    for (size_t i = 0; i < s->nmws; i++)
        if (!strcmp(s->mws[i]->name, q)) return s->mws[i];
    return NULL;
}

static struct snap_service *snap_find_svc(struct snapshot *s, const char *q)
{
    for (size_t i = 0; i < s->nservices; i++)
        if (!strcmp(s->services[i]->name, q)) return s->services[i];
    return NULL;
}

/* Compiles router qname of provider into r (errors make it disabled). */
static void snap_eps_successors(const struct sc_config *sc, unsigned char *eps);

/* Reads the router's tls key (true, {} or options / certResolver /
 * domains), or takes the entry points' http.tls defaults.  Errors go to
 * the router's session. */
static void snap_router_tls(struct snapshot *snap, struct snap_router *r,
                            const relais_cfg *root, const char *provider,
                            const struct sc_config *sc)
{
    const relais_cfg *t = conf_cfg_get(root, "tls"), *d;
    const char *opts = NULL, *resolver = NULL, *k, *why = NULL;
    char *q;
    int b;

    r->tls_on = calloc(sc->neps ? sc->neps : 1, 1);
    if (!r->tls_on) {
        conf_cfg_error(root, NULL, "out of memory");
        return;
    }
    if (t) {
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
                if (strcasecmp(k, "options") && strcasecmp(k, "certResolver") &&
                    strcasecmp(k, "domains"))
                    conf_cfg_error(t, k, "unknown key (expected options, certResolver, domains)");
            }
            conf_cfg_string(t, "options", &opts);
            conf_cfg_string(t, "certResolver", &resolver);
            d = conf_cfg_get(t, "domains");
            if (d && conf_cfg_type(d) != RELAIS_CFG_LIST)
                conf_cfg_error(d, NULL, "expected a list of {main, sans}");
            else if (d)
                r->tls_domains = json_incref(conf_node_json(d));
            break;
        default:
            conf_cfg_error(t, NULL, "expected a map (options, certResolver, domains)");
            return;
        }
    } else {
        /* entryPoints.X.http.tls: TLS on those entry points only, with
         * the defaults of the first of them */
        for (size_t e = 0; e < sc->neps; e++) {
            const struct sc_entrypoint *ep = &sc->eps[e];
            if (!r->eps[e] || !ep->http_tls || !sc_ep_live(sc, e)) continue;
            r->tls_on[e] = 1;
            if (r->tls) continue;
            r->tls = 1;
            opts = ep->tls_options;
            resolver = ep->tls_resolver;
            if (ep->tls_domains) r->tls_domains = json_incref(ep->tls_domains);
        }
        snap_eps_successors(sc, r->tls_on);
    }
    if (t && r->tls) memcpy(r->tls_on, r->eps, sc->neps);
    if (!r->tls) return;
    if (opts && *opts) {
        q = strcmp(opts, "default") ? snap_qualify(opts, provider) : strdup("default");
        r->tls_opts = q && snap->tls ? ts_conf_options(snap->tls, q, &why) : NULL;
        if (!r->tls_opts) {
            if (why)
                conf_cfg_error(t ? t : root, "options", "TLS options \"%s\" are disabled: %s", q,
                               why);
            else
                conf_cfg_error(t ? t : root, "options", "TLS options \"%s\" do not exist",
                               q ? q : opts);
        }
        free(q);
    } else if (snap->tls) {
        r->tls_opts = ts_conf_options(snap->tls, "default", NULL);
    }
    if (resolver && *resolver) {
        if (!sc_resolver(sc, resolver))
            conf_cfg_error(t ? t : root, "certResolver",
                           "certificate resolver \"%s\" does not exist (certificatesResolvers "
                           "in the static configuration)", resolver);
        r->cert_resolver = strdup(resolver);
    }
}

/** A growing list of middlewares (a router's chain). */
struct snap_mwlist {
    struct snap_middleware **v; /* the list */
    size_t n;                   /* used */
    size_t cap;                 /* allocated */
};

#define SNAP_MAX_CHAIN 64       /* middlewares in one expanded chain */
#define SNAP_MAX_CHAIN_DEPTH 10 /* chains within chains */

/* Appends middleware qname to l, expanding a chain into its members
 * (depth guards against loops).  0, or -1 with the reason in why. */
static int snap_mw_expand(struct snapshot *snap, const char *qname, struct snap_mwlist *l,
                          int depth, char *why, size_t whylen)
{
    struct snap_middleware *m = snap_find_mw(snap, qname);

    if (!m) {
        snprintf(why, whylen, "middleware \"%s\" does not exist", qname);
        return -1;
    }
    if (m->status == SNAP_DISABLED) {
        snprintf(why, whylen, "middleware \"%s\" is disabled", qname);
        return -1;
    }
    if (m->members) {
        if (depth >= SNAP_MAX_CHAIN_DEPTH) {
            snprintf(why, whylen, "chain \"%s\" nests too deep (a loop?)", qname);
            return -1;
        }
        for (size_t i = 0; i < m->nmembers; i++) {
            char sub[500];
            if (snap_mw_expand(snap, m->members[i], l, depth + 1, sub, sizeof(sub)) < 0) {
                snprintf(why, whylen, "chain \"%s\": %s", qname, sub);
                return -1;
            }
        }
        return 0;
    }
    if (l->n >= SNAP_MAX_CHAIN) {
        snprintf(why, whylen, "more than %d middlewares", SNAP_MAX_CHAIN);
        return -1;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        struct snap_middleware **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = m;
    return 0;
}

/* Resolves entryPoints.X.http.middlewares for every entry point into
 * snap->ep_mws.  An entry point whose middlewares do not resolve serves
 * no router (snap->ep_mw_error says why): its requests would otherwise
 * skip, say, an authentication meant for all of them.  0 / -1 (memory). */
static int snap_ep_middlewares(struct snapshot *snap, const struct sc_config *sc)
{
    size_t e, any = 0;

    for (e = 0; e < sc->neps; e++) any += sc->eps[e].nmws;
    if (!any) return 0;
    /* a tombstone slot whose entry point was changed takes the new
       definition's middlewares (snap_read_eps routes it like that one);
       another one serves nothing */
    snap->ep_mws = calloc(sc->neps, sizeof(*snap->ep_mws));
    snap->ep_nmws = calloc(sc->neps, sizeof(*snap->ep_nmws));
    snap->ep_mw_error = calloc(sc->neps, sizeof(*snap->ep_mw_error));
    if (!snap->ep_mws || !snap->ep_nmws || !snap->ep_mw_error) return -1;
    for (e = 0; e < sc->neps; e++) {
        struct snap_mwlist l = {NULL, 0, 0};
        int live = sc_ep_live(sc, e);
        int def = live ? (int)e : sc_entrypoint_index(sc, sc->eps[e].name);
        for (size_t i = 0; def >= 0 && i < sc->eps[def].nmws; i++) {
            const char *name = sc->eps[def].mws[i];
            char why[600], msg[700];
            if (!strchr(name, '@')) {
                snprintf(why, sizeof(why), "middleware \"%s\" needs its provider (\"%s@file\")",
                         name, name);
            } else if (snap_mw_expand(snap, name, &l, 0, why, sizeof(why)) == 0) {
                continue;
            }
            snprintf(msg, sizeof(msg), "http.middlewares[%zu]: %s", i, why);
            if (!snap->ep_mw_error[e]) {
                snap->ep_mw_error[e] = strdup(msg);
                if (live)
                    log_error("config", "entryPoints.%s.%s: nothing is served on this entry "
                              "point", sc->eps[e].name, msg);
            }
        }
        snap->ep_mws[e] = l.v;
        snap->ep_nmws[e] = l.n;
    }
    return 0;
}

static void snap_router(struct snapshot *snap, struct snap_router *r,
                        const char *qname, const char *provider, json_t *cfg,
                        const char *origin, const struct sc_config *sc)
{
    struct conf_session *s;
    const relais_cfg *root, *mws;
    const char *str;
    char path[512], *q, *warn = NULL;
    size_t i, n;

    r->name = strdup(qname);
    r->mt_id = mt_intern(MT_ROUTER, qname);
    r->eps = calloc(sc->neps ? sc->neps : 1, 1);
    snprintf(path, sizeof(path), "http.routers.%s", qname);
    s = conf_session_new(path);
    root = conf_session_root(s, cfg);
    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map with a rule and a service");
        goto done;
    }
    switch (conf_cfg_string(root, "rule", &str)) {
    case RELAIS_CFG_OK: {
        struct rule_error err;
        r->rule_text = strdup(str);
        r->rule = rule_parse(str, &err);
        if (!r->rule)
            conf_cfg_error(root, "rule", "column %d: %s", err.column, err.msg);
        r->priority = (int64_t)strlen(str);
        break;
    }
    case RELAIS_CFG_MISSING:
        conf_cfg_error(root, "rule", "missing: expected a rule such as Host(`example.com`)");
        break;
    default:
        break;
    }
    {
        int64_t p;
        if (conf_cfg_int(root, "priority", &p) == RELAIS_CFG_OK && p != 0)
            r->priority = p;
    }
    warn = snap_read_eps(root, sc, r->eps, 0);
    mws = conf_cfg_get(root, "middlewares");
    if (mws && conf_cfg_type(mws) != RELAIS_CFG_LIST) {
        conf_cfg_error(mws, NULL, "expected a list of middleware names");
    } else if (mws) {
        struct snap_mwlist l = {NULL, 0, 0};
        n = conf_cfg_len(mws);
        for (i = 0; i < n; i++) {
            const relais_cfg *it = conf_cfg_at(mws, i, NULL);
            char why[600];
            if (conf_cfg_string(it, NULL, &str) != RELAIS_CFG_OK) continue;
            q = snap_qualify(str, provider);
            if (!q || snap_mw_expand(snap, q, &l, 0, why, sizeof(why)) < 0)
                conf_cfg_error(it, NULL, "%s", q ? why : "out of memory");
            free(q);
        }
        r->mws = l.v;
        r->nmws = l.n;
    }
    snap_router_tls(snap, r, root, provider, sc);
    snap_timeouts(root, &r->dial_ms, &r->resp_header_ms);
    if (conf_cfg_int(root, "maxBodyBytes", &r->max_body) == RELAIS_CFG_OK && r->max_body < 0)
        conf_cfg_error(root, "maxBodyBytes", "expected a size in bytes >= 0");
    switch (conf_cfg_string(root, "service", &str)) {
    case RELAIS_CFG_OK:
        q = snap_qualify(str, provider);
        /* services relais answers itself (proxy.c), when configured */
        if (q && !strcmp(q, "ping@internal") && sc->ping)
            r->internal = SNAP_INT_PING;
        else if (q && (!strcmp(q, "api@internal") || !strcmp(q, "dashboard@internal")) && sc->api)
            r->internal = SNAP_INT_API;
        else if (q && !strcmp(q, "prometheus@internal") && sc->prom)
            r->internal = SNAP_INT_PROMETHEUS;
        if (r->internal) {
            free(q);
            break;
        }
        r->service = q ? snap_find_svc(snap, q) : NULL;
        if (!r->service)
            conf_cfg_error(root, "service", "service \"%s\" does not exist", q ? q : str);
        else if (r->service->status == SNAP_DISABLED)
            conf_cfg_error(root, "service", "service \"%s\" is disabled", q);
        free(q);
        break;
    case RELAIS_CFG_MISSING:
        conf_cfg_error(root, "service", "missing: expected the name of a service");
        break;
    default:
        break;
    }
done:
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "router %s", qname);
        r->status = SNAP_DISABLED;
        r->error = snap_errors(s, what, origin);
        snap->nerrors++;
    } else if (warn) {
        log_warn("config", "%s%srouter %s: %s", origin ? origin : "", origin ? ": " : "",
                 qname, warn);
        r->status = SNAP_WARNING;
        r->error = warn;
        warn = NULL;
    }
    free(warn);
    conf_session_free(s);
}

json_t *snap_subsection(json_t *tree, const char *top, const char *section)
{
    const char *k;
    json_t *v, *t = NULL;

    json_object_foreach(tree, k, v)
        if (!strcasecmp(k, top)) t = v;
    if (!json_is_object(t)) return NULL;
    json_object_foreach(t, k, v)
        if (!strcasecmp(k, section)) return json_is_object(v) ? v : NULL;
    return NULL;
}

/* Binds every tombstone slot of sc whose name is an entry point again
 * (it was changed) like that entry point. */
static void snap_eps_successors(const struct sc_config *sc, unsigned char *eps)
{
    for (size_t i = 0; sc->ep_dead && i < sc->neps; i++) {
        int k;
        if (sc_ep_live(sc, i) || !sc->eps[i].name) continue;
        k = sc_entrypoint_index(sc, sc->eps[i].name);
        if (k >= 0) eps[i] = eps[k];
    }
}

char *snap_read_eps(const relais_cfg *root, const struct sc_config *sc, unsigned char *eps,
                    int udp)
{
    const relais_cfg *list = conf_cfg_get(root, "entryPoints");
    const char *str;
    char *warn = NULL;
    size_t nok = 0;

    if (!list) {
        /* Traefik's default entry points: those with asDefault, or when
           none has it every one but "traefik" (the internal one, where
           the API and ping answer) */
        int any = 0;
        for (size_t i = 0; i < sc->neps; i++)
            if (sc_ep_live(sc, i) && !sc->eps[i].udp == !udp && sc->eps[i].as_default) any = 1;
        for (size_t i = 0; i < sc->neps; i++) {
            eps[i] = sc_ep_live(sc, i) && !sc->eps[i].udp == !udp &&
                     (any ? sc->eps[i].as_default : strcmp(sc->eps[i].name, "traefik") != 0);
            nok += eps[i];
        }
        snap_eps_successors(sc, eps);
        if (!nok)
            conf_cfg_error(root, "entryPoints", "no valid entry point for this router "
                                                "(\"traefik\" is never a default one: name it)");
        return NULL;
    }
    if (conf_cfg_type(list) != RELAIS_CFG_LIST) {
        conf_cfg_error(list, NULL, "expected a list of entry point names");
        return NULL;
    }
    for (size_t i = 0; i < conf_cfg_len(list); i++) {
        const relais_cfg *it = conf_cfg_at(list, i, NULL);
        char msg[700];
        int idx;
        if (conf_cfg_string(it, NULL, &str) != RELAIS_CFG_OK) continue;
        idx = sc_entrypoint_index(sc, str);
        msg[0] = '\0';
        if (idx < 0)
            snprintf(msg, sizeof(msg), "%s: entry point \"%s\" does not exist",
                     conf_node_path(it), str);
        else if (sc->eps[idx].udp && !udp)
            snprintf(msg, sizeof(msg), "%s: entry point \"%s\" is a UDP entry point",
                     conf_node_path(it), str);
        else if (!sc->eps[idx].udp && udp)
            snprintf(msg, sizeof(msg), "%s: entry point \"%s\" is not a UDP entry point "
                     "(address \"host:port/udp\")", conf_node_path(it), str);
        else
            eps[idx] = 1, nok++;
        if (msg[0]) {
            /* Traefik: a warning while the router has another entry point */
            size_t ol = warn ? strlen(warn) : 0, ml = strlen(msg);
            char *nw = realloc(warn, ol + ml + 3);
            if (!nw) continue;
            if (ol) memcpy(nw + ol, "; ", 2), ol += 2;
            memcpy(nw + ol, msg, ml + 1);
            warn = nw;
        }
    }
    if (!nok) {
        conf_cfg_error(list, NULL, "no valid entry point for this router%s%s",
                       warn ? ": " : "", warn ? warn : "");
        free(warn);
        warn = NULL;
    }
    snap_eps_successors(sc, eps);
    return warn;
}

/* Appends p to a growable pointer array.  0 / -1. */
int snap_push(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void **na = realloc(*arr, nc * sizeof(void *));
        if (!na) return -1;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

const char *snap_origin(const struct snap_source *src, const char *top, const char *section,
                        const char *name)
{
    char key[700];

    if (!src->origins) return NULL;
    snprintf(key, sizeof(key), "%s.%s.%s", top, section, name);
    return json_string_value(json_object_get(src->origins, key));
}

/** Argument of snap_tls_host. */
struct snap_hosts_arg {
    struct ts_hosts *hosts;        /* the map being filled */
    const struct snap_router *r;   /* the router whose hosts these are */
};

/* rule_hosts callback: host -> the router's TLS options. */
static void snap_tls_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct snap_hosts_arg *ha = arg;

    ts_hosts_add(ha->hosts, host, len, wildcard, ha->r->tls_opts, ha->r->name);
}

/* The `tls` object of a provider's tree (case-insensitive), or NULL. */
static json_t *snap_tls_section(json_t *tree)
{
    const char *k;
    json_t *v;

    json_object_foreach(tree, k, v)
        if (!strcasecmp(k, "tls")) return json_is_object(v) ? v : NULL;
    return NULL;
}

static const struct ts_extra_cert *(*snap_extra_fn)(size_t *n); /* resolver certs */

void snap_set_extra_certs(const struct ts_extra_cert *(*fn)(size_t *n))
{
    snap_extra_fn = fn;
}

/* Builds (or reuses) the snapshot's TLS configuration.  0 / -1 (memory). */
static int snap_build_tls(struct snapshot *snap, const struct snap_source *src, size_t nsrc,
                          const struct snapshot *prev)
{
    struct ts_source *ts = calloc(nsrc ? nsrc : 1, sizeof(*ts));
    const struct ts_extra_cert *extra = NULL;
    size_t nextra = 0;

    if (!ts) return -1;
    for (size_t i = 0; i < nsrc; i++) {
        ts[i].provider = src[i].provider;
        ts[i].tls = snap_tls_section(src[i].tree);
        ts[i].origins = src[i].origins;
    }
    if (snap_extra_fn) extra = snap_extra_fn(&nextra);
    snap->tls = ts_conf_build(ts, nsrc, extra, nextra, prev ? prev->tls : NULL, &snap->nerrors);
    free(ts);
    return snap->tls ? 0 : -1;
}

/* Compiles http.serversTransports of every source after the default
 * transport (default@internal, from the static configuration), sharing
 * unchanged ones with prev.  A bad transport is kept, disabled, for the
 * services that name it to report.  0, or -1 when out of memory. */
static int snap_build_transports(struct snapshot *snap, const struct snap_source *src,
                                 size_t nsrc, const struct snapshot *prev,
                                 const struct sc_config *sc)
{
    size_t i, cap = 0;
    const char *k;
    json_t *v, *sec;
    struct tr_transport *t = tr_default(sc, snap_find_tr(prev, TR_DEFAULT_NAME));

    if (!t || snap_push((void ***)&snap->transports, &snap->ntransports, &cap, t) < 0) goto oom;
    if (t->status == SNAP_DISABLED) snap->nerrors++;
    for (i = 0; i < nsrc; i++) {
        sec = snap_subsection(src[i].tree, "http", "serversTransports");
        json_object_foreach(sec, k, v) {
            char *q = snap_qualify(k, src[i].provider), path[600];
            if (!q) return -1;
            if (snap_find_tr(snap, q)) { /* e.g. a second default@internal */
                log_error("config", "serversTransport %s is defined twice; the first one is kept",
                          q);
                free(q);
                continue;
            }
            snprintf(path, sizeof(path), "http.serversTransports.%s", q);
            t = tr_build(q, v, path, snap_origin(&src[i], "http", "serversTransports", k),
                         snap_find_tr(prev, q));
            free(q);
            if (!t || snap_push((void ***)&snap->transports, &snap->ntransports, &cap, t) < 0)
                goto oom;
            if (t->status == SNAP_DISABLED) snap->nerrors++;
        }
    }
    return 0;
oom:
    tr_unref(t);
    return -1;
}

struct snapshot *snap_build(const struct snap_source *src, size_t nsrc,
                            const struct snapshot *prev,
                            const struct sc_config *sc,
                            const struct pl_set *plugins,
                            const relais_host *host)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    size_t i, e, capm = 0, caps = 0, nr = 0;
    const char *k;
    json_t *v, *sec;
    char *q;

    if (!snap) return NULL;
    snap->refs = 1;
    snap->gen = snap_next_gen++;
    snap->alog = px_alog ? al_ref(px_alog) : NULL;
    /* transports first: services refer to them */
    if (snap_build_transports(snap, src, nsrc, prev, sc) < 0) goto oom;
    /* middlewares and services first: routers refer to them */
    for (i = 0; i < nsrc; i++) {
        sec = snap_subsection(src[i].tree, "http", "middlewares");
        json_object_foreach(sec, k, v) {
            struct snap_middleware *m;
            q = snap_qualify(k, src[i].provider);
            m = q ? snap_middleware(q, v, snap_origin(&src[i], "http", "middlewares", k), prev,
                                    plugins, host)
                  : NULL;
            free(q);
            if (!m || snap_push((void ***)&snap->mws, &snap->nmws, &capm, m) < 0) goto oom;
            if (m->status == SNAP_DISABLED) snap->nerrors++;
        }
        sec = snap_subsection(src[i].tree, "http", "services");
        json_object_foreach(sec, k, v) {
            struct snap_service *sv;
            q = snap_qualify(k, src[i].provider);
            sv = q ? snap_service(q, v, snap_origin(&src[i], "http", "services", k), prev,
                                  snap, plugins, host)
                   : NULL;
            free(q);
            if (!sv || snap_push((void ***)&snap->services, &snap->nservices, &caps, sv) < 0)
                goto oom;
            if (sv->status == SNAP_DISABLED) snap->nerrors++;
        }
        sec = snap_subsection(src[i].tree, "http", "routers");
        nr += json_object_size(sec);
    }
    /* weighted, mirroring and failover services name others, maybe of
       another provider: resolved once all exist */
    snap->nerrors += svc_link(snap);
    if (snap_build_tls(snap, src, nsrc, prev) < 0) goto oom;
    if (snap_ep_middlewares(snap, sc) < 0) goto oom;
    snap->routers = calloc(nr ? nr : 1, sizeof(*snap->routers));
    if (!snap->routers) goto oom;
    for (i = 0; i < nsrc; i++) {
        sec = snap_subsection(src[i].tree, "http", "routers");
        json_object_foreach(sec, k, v) {
            q = snap_qualify(k, src[i].provider);
            if (!q) goto oom;
            snap_router(snap, &snap->routers[snap->nrouters++], q, src[i].provider, v,
                        snap_origin(&src[i], "http", "routers", k), sc);
            free(q);
        }
    }
    snap->ntables = sc->neps;
    snap->tables = calloc(sc->neps ? sc->neps : 1, sizeof(*snap->tables));
    snap->tls_tables = calloc(sc->neps ? sc->neps : 1, sizeof(*snap->tls_tables));
    snap->ep_tls = calloc(sc->neps ? sc->neps : 1, 1);
    snap->tls_hosts = ts_hosts_new();
    if (!snap->tables || !snap->tls_tables || !snap->ep_tls || !snap->tls_hosts) goto oom;
    for (e = 0; e < sc->neps; e++) {
        for (int tls = 0; tls < 2; tls++) {
            struct rt_entry *ents = malloc((snap->nrouters ? snap->nrouters : 1) * sizeof(*ents));
            size_t ne = 0;
            if (!ents) goto oom;
            for (i = 0; i < snap->nrouters; i++) {
                struct snap_router *r = &snap->routers[i];
                if (r->status == SNAP_DISABLED || !r->eps[e] || !r->tls_on || r->tls_on[e] != tls)
                    continue;
                if (snap->ep_mw_error && snap->ep_mw_error[e]) continue; /* see above */
                ents[ne].rule = r->rule;
                ents[ne].priority = r->priority;
                ents[ne].name = r->name;
                ents[ne].data = r;
                ne++;
            }
            if (tls) {
                snap->ep_tls[e] = ne > 0;
                snap->tls_tables[e] = rt_table_new(ents, ne);
            } else {
                snap->tables[e] = rt_table_new(ents, ne);
            }
            free(ents);
            if (!(tls ? snap->tls_tables[e] : snap->tables[e])) goto oom;
        }
    }
    /* which TLS options each host name gets at the handshake */
    for (i = 0; i < snap->nrouters; i++) {
        struct snap_router *r = &snap->routers[i];
        struct snap_hosts_arg ha = {snap->tls_hosts, r};
        if (r->status == SNAP_DISABLED || !r->tls || !r->rule || !r->tls_opts) continue;
        rule_hosts(r->rule, snap_tls_host, &ha);
    }
    /* tcp and udp sections (TCP routers' HostSNI names join tls_hosts) */
    if (tcp_snap_build(snap, src, nsrc, sc) < 0 || udp_snap_build(snap, src, nsrc, sc) < 0)
        goto oom;
    /* what the API shows of it (only when the API exists) */
    if (sc->api && !(snap->api = api_build(snap, src, nsrc, sc))) goto oom;
    return snap;
oom:
    log_error("config", "out of memory while building the configuration");
    snap_free(snap);
    return NULL;
}

/* Merges the object src into dst section by section, name by name. */
static void snap_merge_into(json_t *dst, json_t *src, const char *source,
                            const char *provider, json_t *origins)
{
    const char *top, *secname, *name;
    json_t *tv, *sv, *ov;

    json_object_foreach(src, top, tv) {
        json_t *dtop = json_object_get(dst, top);
        if (!json_is_object(tv)) {
            if (!dtop) json_object_set(dst, top, tv);
            continue;
        }
        if (!dtop) {
            dtop = json_object();
            json_object_set_new(dst, top, dtop);
        }
        json_object_foreach(tv, secname, sv) {
            json_t *dsec = json_object_get(dtop, secname);
            if (json_is_array(sv)) {
                /* lists (tls.certificates) add up across documents */
                size_t base = json_is_array(dsec) ? json_array_size(dsec) : 0;
                if (!dsec) json_object_set_new(dtop, secname, dsec = json_array());
                if (!json_is_array(dsec)) continue;
                json_array_extend(dsec, sv);
                for (size_t j = 0; origins && source && j < json_array_size(sv); j++) {
                    char key[600];
                    snprintf(key, sizeof(key), "%s.%s[%zu]", top, secname, base + j);
                    json_object_set_new(origins, key, json_string(source));
                }
                continue;
            }
            if (!json_is_object(sv)) {
                if (!dsec) json_object_set(dtop, secname, sv);
                continue;
            }
            if (!dsec) {
                dsec = json_object();
                json_object_set_new(dtop, secname, dsec);
            }
            json_object_foreach(sv, name, ov) {
                if (json_object_get(dsec, name)) {
                    log_error("config", "%s: %s.%s.%s@%s is defined more than once; "
                              "the first definition is kept", source, top, secname,
                              name, provider);
                    continue;
                }
                json_object_set(dsec, name, ov);
                if (origins && source) {
                    char key[700];
                    snprintf(key, sizeof(key), "%s.%s.%s", top, secname, name);
                    json_object_set_new(origins, key, json_string(source));
                }
            }
        }
    }
}

json_t *snap_merge_docs(json_t *const *docs, const char *const *sources,
                        size_t n, const char *provider, json_t **origins)
{
    json_t *out = json_object();
    json_t *org = origins ? json_object() : NULL;

    for (size_t i = 0; out && i < n; i++)
        if (json_is_object(docs[i])) snap_merge_into(out, docs[i], sources[i], provider, org);
    if (origins) *origins = org;
    return out;
}
