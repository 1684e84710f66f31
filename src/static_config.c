/*
 * static_config — see static_config.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "relais.h"
#include "static_config.h"

/* Reads an optional duration at node.key into *out (left as is when
 * absent). */
static void sc_duration(const relais_cfg *node, const char *key, int64_t *out)
{
    int64_t v;

    if (conf_cfg_duration(node, key, &v) == RELAIS_CFG_OK) {
        if (v < 0) conf_cfg_error(node, key, "expected a positive duration");
        else *out = v;
    }
}

/* Reads an optional positive size at node.key into *out. */
static void sc_size(const relais_cfg *node, const char *key, size_t lo,
                    size_t hi, size_t *out)
{
    int64_t v;

    if (conf_cfg_int(node, key, &v) != RELAIS_CFG_OK) return;
    if (v < (int64_t)lo || v > (int64_t)hi)
        conf_cfg_error(node, key, "expected an integer from %zu to %zu", lo, hi);
    else
        *out = (size_t)v;
}

/* Warns about keys of a map that are not in known (NULL-terminated). */
static void sc_warn_unknown(const char *file, const relais_cfg *node,
                            const char *const *known)
{
    size_t i, n = conf_cfg_len(node);
    const char *key;

    if (conf_cfg_type(node) != RELAIS_CFG_MAP) return;
    for (i = 0; i < n; i++) {
        const relais_cfg *child = conf_cfg_at(node, i, &key);
        const char *const *k;
        for (k = known; *k; k++)
            if (!strcasecmp(*k, key)) break;
        if (!*k)
            log_warn("config", "%s: %s: unknown or not yet supported key, ignored",
                     file, conf_node_path(child));
    }
}

/* Reads entryPoints.X.http.tls (true, {} or options / certResolver /
 * domains).  Errors go to the session. */
static void sc_ep_http_tls(const relais_cfg *http, struct sc_entrypoint *ep)
{
    const relais_cfg *t = conf_cfg_get(http, "tls"), *d;
    const char *s, *k;
    int b;

    if (!t) return;
    switch (conf_cfg_type(t)) {
    case RELAIS_CFG_BOOL:
        conf_cfg_bool(t, NULL, &b);
        ep->http_tls = b;
        return;
    case RELAIS_CFG_NULL:
        ep->http_tls = 1;
        return;
    case RELAIS_CFG_MAP:
        break;
    default:
        conf_cfg_error(t, NULL, "expected a map (options, certResolver, domains)");
        return;
    }
    ep->http_tls = 1;
    for (size_t i = 0; i < conf_cfg_len(t); i++) {
        conf_cfg_at(t, i, &k);
        if (strcasecmp(k, "options") && strcasecmp(k, "certResolver") && strcasecmp(k, "domains"))
            conf_cfg_error(t, k, "unknown key (expected options, certResolver, domains)");
    }
    if (conf_cfg_string(t, "options", &s) == RELAIS_CFG_OK) ep->tls_options = strdup(s);
    if (conf_cfg_string(t, "certResolver", &s) == RELAIS_CFG_OK) ep->tls_resolver = strdup(s);
    d = conf_cfg_get(t, "domains");
    if (d && conf_cfg_type(d) != RELAIS_CFG_LIST)
        conf_cfg_error(d, NULL, "expected a list of {main, sans}");
    else if (d)
        ep->tls_domains = json_incref(conf_node_json(d));
}

/* Reads entryPoints.X.http.redirections.entryPoint.  The target port is
 * resolved once every entry point is known (sc_resolve_redirects). */
static void sc_ep_redirect(const relais_cfg *http, struct sc_entrypoint *ep)
{
    const relais_cfg *r = conf_cfg_get(conf_cfg_get(http, "redirections"), "entryPoint");
    const char *s;

    if (!r) return;
    if (conf_cfg_type(r) != RELAIS_CFG_MAP) {
        conf_cfg_error(r, NULL, "expected a map (to, scheme, permanent)");
        return;
    }
    switch (conf_cfg_string(r, "to", &s)) {
    case RELAIS_CFG_OK:
        ep->redirect_to = strdup(s);
        break;
    case RELAIS_CFG_MISSING:
        conf_cfg_error(r, "to", "missing: expected an entry point name or a port");
        break;
    default:
        break;
    }
    ep->redirect_permanent = 1;
    conf_cfg_bool(r, "permanent", &ep->redirect_permanent);
    if (conf_cfg_string(r, "scheme", &s) == RELAIS_CFG_OK) ep->redirect_scheme = strdup(s);
    else ep->redirect_scheme = strdup("https");
}

/* Reads a list of addresses / CIDR ranges at node (already known to be
 * there) into *out / *n.  Errors go to the session. */
static void sc_cidrs(const relais_cfg *ips, struct na_cidr **out, size_t *n)
{
    size_t i, len;

    if (conf_cfg_type(ips) != RELAIS_CFG_LIST) {
        conf_cfg_error(ips, NULL, "expected a list of IP addresses or CIDR ranges");
        return;
    }
    len = conf_cfg_len(ips);
    *out = calloc(len ? len : 1, sizeof(**out));
    if (!*out) return;
    for (i = 0; i < len; i++) {
        const relais_cfg *it = conf_cfg_at(ips, i, NULL);
        const char *s;
        if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
        if (na_parse_cidr(s, &(*out)[*n]) < 0)
            conf_cfg_error(it, NULL, "expected an IP address or CIDR range, got \"%s\"", s);
        else
            (*n)++;
    }
}

/* Reads entryPoints.X.proxyProtocol (trustedIPs, insecure).  Errors go
 * to the session. */
static void sc_ep_proxy_protocol(const relais_cfg *pp, struct sc_entrypoint *ep)
{
    const relais_cfg *ips;

    if (!pp) return;
    if (conf_cfg_type(pp) != RELAIS_CFG_MAP) {
        conf_cfg_error(pp, NULL, "expected a map (trustedIPs, insecure)");
        return;
    }
    ep->pp_enabled = 1;
    conf_cfg_bool(pp, "insecure", &ep->pp_insecure);
    ips = conf_cfg_get(pp, "trustedIPs");
    if (ips) sc_cidrs(ips, &ep->pp_trusted, &ep->npp_trusted);
}

/* Parses one entry point.  Errors go to the session. */
static void sc_entrypoint(const relais_cfg *node, const char *name,
                          struct sc_entrypoint *ep)
{
    const relais_cfg *t, *fh, *ips, *http;
    const char *addr;
    char msg[256];

    ep->name = strdup(name);
    ep->read_timeout_ms = 60000;
    ep->idle_timeout_ms = 180000;
    ep->head_timeout_ms = 30000;
    ep->grace_ms = 10000;
    ep->max_head = RELAIS_DEFAULT_MAX_HEAD;
    ep->max_fields = RELAIS_DEFAULT_MAX_FIELDS;
    ep->max_target = RELAIS_DEFAULT_MAX_TARGET;
    if (conf_cfg_type(node) != RELAIS_CFG_MAP) {
        conf_cfg_error(node, NULL, "expected a map with an address");
        return;
    }
    ep->udp_timeout_ms = 3000;
    conf_cfg_bool(node, "asDefault", &ep->as_default);
    ep->h2_max_streams = 250;
    ep->h2_max_resets = 200;
    ep->h2_max_control = 100;
    {
        /* http2: Traefik's maxConcurrentStreams, relais' flood limits */
        const relais_cfg *h2 = conf_cfg_get(node, "http2");
        static const struct {
            const char *key;   /* key under http2 */
            size_t off;        /* field */
        } k[] = {{"maxConcurrentStreams", offsetof(struct sc_entrypoint, h2_max_streams)},
                 {"maxResetsPerSecond", offsetof(struct sc_entrypoint, h2_max_resets)},
                 {"maxControlFramesPerSecond", offsetof(struct sc_entrypoint, h2_max_control)}};
        for (size_t i = 0; h2 && i < sizeof(k) / sizeof(k[0]); i++) {
            int64_t v;
            if (conf_cfg_int(h2, k[i].key, &v) != RELAIS_CFG_OK) continue;
            if (v < 1 || v > 1000000)
                conf_cfg_error(h2, k[i].key, "expected 1 to 1000000");
            else
                *(uint32_t *)((char *)ep + k[i].off) = (uint32_t)v;
        }
    }
    switch (conf_cfg_string(node, "address", &addr)) {
    case RELAIS_CFG_OK: {
        size_t al = strlen(addr);
        char tmp[300];
        ep->address = strdup(addr);
        if (al > 4 && !strcasecmp(addr + al - 4, "/udp") && al < sizeof(tmp)) {
            /* "host:port/udp": a UDP entry point */
            memcpy(tmp, addr, al - 4);
            tmp[al - 4] = '\0';
            ep->udp = 1;
            addr = tmp;
        }
        if (na_parse_listen(addr, &ep->addr, &ep->addrlen, msg, sizeof(msg)) < 0)
            conf_cfg_error(node, "address", "%s", msg);
        break;
    }
    case RELAIS_CFG_MISSING:
        conf_cfg_error(node, "address", "missing: expected an address such as \":8080\"");
        break;
    default:
        break;
    }
    t = conf_cfg_get(node, "transport");
    sc_duration(conf_cfg_get(t, "respondingTimeouts"), "readTimeout", &ep->read_timeout_ms);
    sc_duration(conf_cfg_get(t, "respondingTimeouts"), "writeTimeout", &ep->write_timeout_ms);
    sc_duration(conf_cfg_get(t, "respondingTimeouts"), "idleTimeout", &ep->idle_timeout_ms);
    sc_duration(conf_cfg_get(t, "respondingTimeouts"), "headerTimeout", &ep->head_timeout_ms);
    sc_duration(conf_cfg_get(t, "lifeCycle"), "graceTimeOut", &ep->grace_ms);
    sc_duration(conf_cfg_get(t, "lifeCycle"), "requestAcceptGraceTimeout", &ep->accept_grace_ms);
    if (conf_cfg_int(t, "maxConnections", &ep->max_conns) == RELAIS_CFG_OK &&
        (ep->max_conns < 0 || ep->max_conns > 10000000))
        conf_cfg_error(t, "maxConnections", "expected 0 (no cap of its own) to 10000000");
    fh = conf_cfg_get(node, "forwardedHeaders");
    conf_cfg_bool(fh, "insecure", &ep->insecure);
    ips = conf_cfg_get(fh, "trustedIPs");
    if (ips && conf_cfg_type(ips) != RELAIS_CFG_LIST) {
        conf_cfg_error(ips, NULL, "expected a list of IP addresses or CIDR ranges");
    } else if (ips) {
        size_t i, n = conf_cfg_len(ips);
        ep->trusted = calloc(n ? n : 1, sizeof(*ep->trusted));
        for (i = 0; i < n; i++) {
            const relais_cfg *it = conf_cfg_at(ips, i, NULL);
            const char *s;
            if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
            if (na_parse_cidr(s, &ep->trusted[ep->ntrusted]) < 0)
                conf_cfg_error(it, NULL, "expected an IP address or CIDR range, got \"%s\"", s);
            else
                ep->ntrusted++;
        }
    }
    sc_ep_proxy_protocol(conf_cfg_get(node, "proxyProtocol"), ep);
    sc_duration(conf_cfg_get(node, "udp"), "timeout", &ep->udp_timeout_ms);
    if (conf_cfg_get(node, "udp") && !ep->udp)
        conf_cfg_error(node, "udp", "only for a UDP entry point (address \"host:port/udp\")");
    if (ep->udp && ep->pp_enabled)
        conf_cfg_error(node, "proxyProtocol", "not available on a UDP entry point");
    http = conf_cfg_get(node, "http");
    sc_ep_http_tls(http, ep);
    {
        const relais_cfg *ml = conf_cfg_get(http, "middlewares");
        if (ml && conf_cfg_type(ml) != RELAIS_CFG_LIST) {
            conf_cfg_error(ml, NULL, "expected a list of middleware names (name@provider)");
        } else if (ml) {
            size_t n = conf_cfg_len(ml);
            ep->mws = calloc(n ? n : 1, sizeof(*ep->mws));
            for (size_t i = 0; ep->mws && i < n; i++) {
                const char *s;
                if (conf_cfg_string(conf_cfg_at(ml, i, NULL), NULL, &s) == RELAIS_CFG_OK)
                    ep->mws[ep->nmws++] = strdup(s);
            }
        }
    }
    sc_ep_redirect(http, ep);
    sc_size(http, "maxHeaderBytes", 1024, 1024 * 1024, &ep->max_head);
    sc_size(http, "maxHeaderCount", 8, 10000, &ep->max_fields);
    sc_size(http, "maxURILength", 64, 1024 * 1024, &ep->max_target);
    {
        int64_t v;
        if (conf_cfg_int(http, "maxBodyBytes", &v) == RELAIS_CFG_OK) {
            if (v < 0) conf_cfg_error(http, "maxBodyBytes", "expected a size >= 0");
            else ep->max_body = v;
        }
    }
}

/* Resolves every entry point's redirection target to a port: "to" is
 * another entry point's name (among eps[0..n)), or a port (":443" or
 * "443"). */
static void sc_resolve_redirects(struct sc_entrypoint *eps, size_t n, const relais_cfg *node)
{
    for (size_t i = 0; i < n; i++) {
        struct sc_entrypoint *ep = &eps[i];
        const char *to = ep->redirect_to, *num;
        char *end;
        long port;
        size_t idx;

        if (!to) continue;
        num = to[0] == ':' ? to + 1 : to;
        port = strtol(num, &end, 10);
        if (*num && !*end && port > 0 && port < 65536) {
            ep->redirect_port = (int)port;
            continue;
        }
        for (idx = 0; idx < n; idx++)
            if (eps[idx].name && !strcmp(eps[idx].name, to)) break;
        if (idx == n) {
            const relais_cfg *r = conf_cfg_get(
                conf_cfg_get(conf_cfg_get(conf_cfg_get(node, ep->name), "http"), "redirections"),
                "entryPoint");
            conf_cfg_error(r, "to", "entry point \"%s\" does not exist", to);
            continue;
        }
        ep->redirect_port = na_port((const struct sockaddr *)&eps[idx].addr);
    }
}

json_t *sc_resolver(const struct sc_config *c, const char *name)
{
    const char *k;
    json_t *v;

    json_object_foreach(c->resolvers, k, v)
        if (!strcmp(k, name)) return v;
    return NULL;
}

/* qsort comparator of entry points by name. */
static int sc_ep_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sc_entrypoint *)a)->name,
                  ((const struct sc_entrypoint *)b)->name);
}

/* Applies one "a.b.c=value" flag to root.  0, or -1 with msg. */
static int sc_override(json_t *root, const char *flag, char *msg, size_t msglen)
{
    const char *eq = strchr(flag, '='), *p = flag, *dot;
    json_t *node = root, *val;
    char key[256];

    for (;;) {
        size_t kl;
        const char *k;
        json_t *v, *child = NULL;

        dot = strchr(p, '.');
        if (dot && eq && dot > eq) dot = NULL;
        kl = dot ? (size_t)(dot - p) : (eq ? (size_t)(eq - p) : strlen(p));
        if (kl == 0 || kl >= sizeof(key)) {
            snprintf(msg, msglen, "expected --key.path=value, got \"--%s\"", flag);
            return -1;
        }
        memcpy(key, p, kl);
        key[kl] = '\0';
        json_object_foreach(node, k, v)
            if (!strcasecmp(k, key)) child = v;
        if (!dot) {
            struct conf_error err;
            char *doc;
            size_t dl;
            if (!eq) {
                val = json_true();
            } else {
                /* type the value the way a YAML scalar is typed */
                dl = strlen(eq + 1) + 8;
                doc = malloc(dl);
                if (!doc) return -1;
                snprintf(doc, dl, "v: %s\n", eq + 1);
                val = conf_parse(doc, strlen(doc), CONF_YAML, "command line", &err);
                free(doc);
                if (val) {
                    json_t *x = json_incref(json_object_get(val, "v"));
                    json_decref(val);
                    val = x ? x : json_string("");
                }
                if (!val) val = json_string(eq + 1);
            }
            json_object_foreach(node, k, v)
                if (!strcasecmp(k, key)) {
                    json_object_set_new(node, k, val);
                    return 0;
                }
            json_object_set_new(node, key, val);
            return 0;
        }
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(node, key, child);
        }
        node = child;
        p = dot + 1;
    }
}

/* 1 when v says true (a boolean, or the text "true" of a flag). */
static int sc_jtrue(const json_t *v)
{
    return json_is_true(v) || (json_is_string(v) && !strcasecmp(json_string_value(v), "true"));
}

/* 1 when the feature node x (ping, metrics.prometheus) is on and answers
 * on its default entry point "traefik" (no manualRouting, no other
 * entryPoint). */
static int sc_uses_traefik_ep(json_t *x)
{
    json_t *e;

    if (sc_jtrue(x)) return 1;
    if (!json_is_object(x) || sc_jtrue(conf_json_get(x, "manualRouting"))) return 0;
    e = conf_json_get(x, "entryPoint");
    return !e || (json_is_string(e) && !strcmp(json_string_value(e), "traefik"));
}

/* Traefik's default entry point: when api.insecure, ping or
 * metrics.prometheus answer on the entry point "traefik" and the
 * configuration defines none (but defines entry points), it is created
 * on ":8080".  Done on the document before it is read, so that entry
 * point is read like any other; c->traefik_ep_made says it happened. */
static void sc_default_traefik_ep(struct sc_config *c)
{
    json_t *eps = conf_json_get(c->root, "entryPoints"), *api = conf_json_get(c->root, "api");
    int need = 0;

    if (!json_is_object(eps) || json_object_size(eps) == 0 || json_object_get(eps, "traefik"))
        return;
    if (json_is_object(api) && sc_jtrue(conf_json_get(api, "insecure"))) need = 1;
    if (sc_uses_traefik_ep(conf_json_get(c->root, "ping"))) need = 1;
    if (sc_uses_traefik_ep(conf_json_get(conf_json_get(c->root, "metrics"), "prometheus"))) need = 1;
    if (!need) return;
    if (json_object_set_new(eps, "traefik", json_pack("{s:s}", "address", ":8080")) == 0)
        c->traefik_ep_made = strdup(":8080");
}

/** Entry point slots shared by the versions of one process. */
struct sc_slots {
    struct sc_entrypoint ep[SC_MAX_EPS]; /* the slots */
    size_t n;                            /* committed slots (entry points
                                            and tombstones) */
    int refs;                            /* versions sharing them (atomic) */
};

/* Frees what one entry point holds and zeroes it. */
static void sc_ep_clear(struct sc_entrypoint *ep)
{
    free(ep->name);
    free(ep->address);
    free(ep->trusted);
    free(ep->pp_trusted);
    free(ep->tls_options);
    free(ep->tls_resolver);
    free(ep->redirect_to);
    free(ep->redirect_scheme);
    for (size_t j = 0; j < ep->nmws; j++) free(ep->mws[j]);
    free(ep->mws);
    json_decref(ep->tls_domains);
    json_decref(ep->cfg);
    memset(ep, 0, sizeof(*ep));
}

/* 1 when the two entry points are configured alike (an unchanged entry
 * point keeps its slot and its connections). */
static int sc_ep_same(const struct sc_entrypoint *a, const struct sc_entrypoint *b)
{
    return a->name && b->name && !strcmp(a->name, b->name) && json_equal(a->cfg, b->cfg) &&
           a->redirect_port == b->redirect_port;
}

/* Places the entry points tmp[0..n) (taken over, sorted by name) in slots:
 * prev's slots when prev is given (an unchanged one keeps its slot, the
 * others are appended), else new slots from 0.  Errors go to root's
 * session. */
static void sc_place_eps(struct sc_config *c, const struct sc_config *prev,
                         struct sc_entrypoint *tmp, size_t n, const relais_cfg *root)
{
    struct sc_slots *sl;

    if (prev && prev->slots) {
        sl = prev->slots;
        __atomic_add_fetch(&sl->refs, 1, __ATOMIC_RELAXED);
    } else {
        sl = calloc(1, sizeof(*sl));
        if (!sl) {
            for (size_t i = 0; i < n; i++) sc_ep_clear(&tmp[i]);
            return;
        }
        sl->refs = 1;
    }
    c->slots = sl;
    c->eps = sl->ep;
    c->neps = sl->n;
    /* every committed slot is a tombstone until an entry point keeps it */
    c->ep_dead = sl->n >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << sl->n) - 1);
    for (size_t i = 0; i < n; i++) {
        int k = prev && prev->slots ? sc_entrypoint_index(prev, tmp[i].name) : -1;
        if (k >= 0 && sc_ep_same(&tmp[i], &sl->ep[k])) {
            c->ep_dead &= ~((uint64_t)1 << k);
            sc_ep_clear(&tmp[i]);
            continue;
        }
        if (c->neps >= SC_MAX_EPS) {
            conf_cfg_error(conf_cfg_get(root, "entryPoints"), tmp[i].name,
                           "no entry point slot left (%d were used since start: "
                           "restart relais to add or change more)", SC_MAX_EPS);
            sc_ep_clear(&tmp[i]);
            continue;
        }
        sl->ep[c->neps] = tmp[i];
        c->ep_new |= (uint64_t)1 << c->neps;
        c->neps++;
    }
}

/* Reads c->root into c, the next version of prev (NULL at start).
 * Errors: logged as "who: key.path: reason" when err is NULL, else joined
 * into err.  quiet: no warning or info line.  0 / -1. */
static int sc_read(struct sc_config *c, const struct sc_config *prev, const char *who,
                   char *err, size_t errlen, int quiet)
{
    static const char *const top_known[] = {
        "entryPoints", "providers", "log", "plugins", "workers",
        "serversTransport", "global", "certificatesResolvers", "ping", "accessLog", "api",
        "metrics", "tracing", "cluster", NULL};
    struct conf_session *s;
    const relais_cfg *root, *eps, *lg, *pl, *tr;
    const char *str, *path = who;
    const char *plugin_dir_override = c->plugin_dir_override;
    int64_t v;
    size_t i, nerr;

    sc_default_traefik_ep(c);
    s = conf_session_new("");
    if (!s) return -1;
    root = conf_session_root(s, c->root);
    if (!quiet) sc_warn_unknown(path, root, top_known);

    c->log_level = RELAIS_LOG_INFO;
    c->log_format = LOG_FORMAT_COMMON;
    lg = conf_cfg_get(root, "log");
    if (conf_cfg_string(lg, "level", &str) == RELAIS_CFG_OK) {
        c->log_level = log_parse_level(str);
        if (c->log_level < 0) {
            conf_cfg_error(lg, "level", "expected one of DEBUG, INFO, WARN, ERROR, got \"%s\"", str);
            c->log_level = RELAIS_LOG_INFO;
        }
    }
    if (conf_cfg_string(lg, "format", &str) == RELAIS_CFG_OK) {
        if (!strcasecmp(str, "json")) c->log_format = LOG_FORMAT_JSON;
        else if (!strcasecmp(str, "common")) c->log_format = LOG_FORMAT_COMMON;
        else conf_cfg_error(lg, "format", "expected \"common\" or \"json\", got \"%s\"", str);
    }
    if (conf_cfg_string(lg, "filePath", &str) == RELAIS_CFG_OK && *str)
        c->log_file = strdup(str);

    eps = conf_cfg_get(root, "entryPoints");
    if (!eps || conf_cfg_type(eps) != RELAIS_CFG_MAP || conf_cfg_len(eps) == 0) {
        conf_cfg_error(root, "entryPoints", "expected a map of at least one entry point");
    } else if (conf_cfg_len(eps) > SC_MAX_EPS) {
        conf_cfg_error(root, "entryPoints", "at most %d entry points", SC_MAX_EPS);
    } else {
        size_t n = conf_cfg_len(eps);
        struct sc_entrypoint *tmp = calloc(n, sizeof(*tmp));
        if (tmp) {
            for (i = 0; i < n; i++) {
                const char *name;
                const relais_cfg *ep = conf_cfg_at(eps, i, &name);
                sc_entrypoint(ep, name, &tmp[i]);
                tmp[i].cfg = json_incref(conf_node_json(ep));
            }
            qsort(tmp, n, sizeof(*tmp), sc_ep_cmp);
            sc_resolve_redirects(tmp, n, eps);
            sc_place_eps(c, prev, tmp, n, root);
            free(tmp);
        }
    }

    c->resolvers = conf_node_json(conf_cfg_get(root, "certificatesResolvers"));
    if (c->resolvers && !json_is_object(c->resolvers)) {
        conf_cfg_error(conf_cfg_get(root, "certificatesResolvers"), NULL,
                       "expected a map of resolver names");
        c->resolvers = NULL;
    }
    c->throttle_ms = 2000;
    c->providers = json_object_get(c->root, "providers");
    if (!c->providers) {
        /* case-insensitive lookup through the session */
        c->providers = conf_node_json(conf_cfg_get(root, "providers"));
    }
    sc_duration(conf_cfg_get(root, "providers"), "providersThrottleDuration", &c->throttle_ms);

    pl = conf_cfg_get(root, "plugins");
    if (plugin_dir_override)
        c->plugin_dir = strdup(plugin_dir_override);
    else if (conf_cfg_string(pl, "directory", &str) == RELAIS_CFG_OK)
        c->plugin_dir = strdup(str);
    else
        c->plugin_dir = strdup(RELAIS_PLUGINS_DIR);
    {
        const relais_cfg *ld = conf_cfg_get(pl, "load");
        if (ld && conf_cfg_type(ld) != RELAIS_CFG_LIST) {
            conf_cfg_error(ld, NULL, "expected a list of plugin names");
        } else if (ld) {
            size_t n = conf_cfg_len(ld);
            c->plugin_load = calloc(n ? n : 1, sizeof(char *));
            for (i = 0; i < n; i++) {
                if (conf_cfg_string(conf_cfg_at(ld, i, NULL), NULL, &str) == RELAIS_CFG_OK) {
                    if (strchr(str, '/'))
                        conf_cfg_error(conf_cfg_at(ld, i, NULL), NULL,
                                       "expected a plugin name, not a path");
                    else
                        c->plugin_load[c->nplugin_load++] = strdup(str);
                }
            }
        }
    }

    {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = ncpu > 0 ? (unsigned)ncpu : 1;
        if (conf_cfg_int(root, "workers", &v) == RELAIS_CFG_OK) {
            if (v < 0 || v > RELAIS_MAX_WORKERS)
                conf_cfg_error(root, "workers", "expected 0 (one per core) to %d", RELAIS_MAX_WORKERS);
            else if (v > 0)
                c->workers = (unsigned)v;
        }
        if (c->workers > RELAIS_MAX_WORKERS) c->workers = RELAIS_MAX_WORKERS;
    }

    c->transport.dial_timeout_ms = 30000;
    c->transport.idle_conn_timeout_ms = 90000;
    c->transport.max_idle_per_host = 200;
    tr = conf_cfg_get(root, "serversTransport");
    sc_duration(conf_cfg_get(tr, "forwardingTimeouts"), "dialTimeout", &c->transport.dial_timeout_ms);
    sc_duration(conf_cfg_get(tr, "forwardingTimeouts"), "responseHeaderTimeout",
                &c->transport.response_header_timeout_ms);
    sc_duration(conf_cfg_get(tr, "forwardingTimeouts"), "idleConnTimeout",
                &c->transport.idle_conn_timeout_ms);
    if (conf_cfg_int(tr, "maxIdleConnsPerHost", &v) == RELAIS_CFG_OK) {
        if (v < 0 || v > 100000) conf_cfg_error(tr, "maxIdleConnsPerHost", "expected 0 to 100000");
        else c->transport.max_idle_per_host = (int)v;
    }

    {
        /* global.maxConnections: by default half the descriptors this
           process may open (a client connection may need a server one) */
        struct rlimit rl;
        const relais_cfg *gl = conf_cfg_get(root, "global");
        c->max_conns = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur > 256)
            c->max_conns = (int64_t)(rl.rlim_cur - 64) / 2;
        else if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY)
            c->max_conns = 1000000;
        if (conf_cfg_int(gl, "maxConnections", &v) == RELAIS_CFG_OK) {
            if (v < 1 || v > 10000000)
                conf_cfg_error(gl, "maxConnections", "expected 1 to 10000000");
            else
                c->max_conns = v;
        }
    }
    {
        /* ping: {entryPoint: traefik, manualRouting, terminatingStatusCode} */
        const relais_cfg *pg = conf_cfg_get(root, "ping");
        const char *epn = "traefik";
        int on = 0;
        c->ping_ep = -1;
        c->ping_status = 503;
        if (pg && (conf_cfg_type(pg) == RELAIS_CFG_BOOL || conf_cfg_type(pg) == RELAIS_CFG_STRING)) {
            if (conf_cfg_bool(pg, NULL, &on) == RELAIS_CFG_OK && on) c->ping = 1;
        } else if (pg && conf_cfg_type(pg) == RELAIS_CFG_MAP) {
            c->ping = 1;
            conf_cfg_string(pg, "entryPoint", &epn);
            conf_cfg_bool(pg, "manualRouting", &c->ping_manual);
            if (conf_cfg_int(pg, "terminatingStatusCode", &v) == RELAIS_CFG_OK) {
                if (v < 100 || v > 599)
                    conf_cfg_error(pg, "terminatingStatusCode", "expected a status from 100 to 599");
                else
                    c->ping_status = (int)v;
            }
        } else if (pg && conf_cfg_type(pg) != RELAIS_CFG_NULL) {
            conf_cfg_error(pg, NULL, "expected a map (entryPoint, manualRouting, "
                                     "terminatingStatusCode)");
        }
        if (c->ping && !c->ping_manual) {
            c->ping_ep = sc_entrypoint_index(c, epn);
            if (c->ping_ep < 0 || c->eps[c->ping_ep].udp)
                conf_cfg_error(pg, "entryPoint", "no TCP entry point named \"%s\"", epn);
        }
    }

    {
        /* api: true, or {insecure, dashboard (true), debug} */
        static const char *const api_known[] = {"insecure", "dashboard", "debug",
                                                "disableDashboardAd", NULL};
        const relais_cfg *ap = conf_cfg_get(root, "api");
        int on = 0;
        c->api_ep = -1;
        c->api_dashboard = 1;
        if (ap && (conf_cfg_type(ap) == RELAIS_CFG_BOOL || conf_cfg_type(ap) == RELAIS_CFG_STRING)) {
            if (conf_cfg_bool(ap, NULL, &on) == RELAIS_CFG_OK && on) c->api = 1;
        } else if (ap && conf_cfg_type(ap) == RELAIS_CFG_MAP) {
            c->api = 1;
            if (!quiet) sc_warn_unknown(path, ap, api_known);
            conf_cfg_bool(ap, "insecure", &c->api_insecure);
            conf_cfg_bool(ap, "dashboard", &c->api_dashboard);
            conf_cfg_bool(ap, "debug", &c->api_debug);
        } else if (ap && conf_cfg_type(ap) != RELAIS_CFG_NULL) {
            conf_cfg_error(ap, NULL, "expected a map (insecure, dashboard, debug)");
        }
        if (c->api_insecure) {
            c->api_ep = sc_entrypoint_index(c, "traefik");
            if (c->api_ep < 0 || c->eps[c->api_ep].udp)
                conf_cfg_error(ap, "insecure", "needs a TCP entry point named \"traefik\"");
        }
    }
    {
        /* metrics.prometheus: entryPoint and manualRouting here, the rest
           in metrics.c */
        const relais_cfg *pr = conf_cfg_get(conf_cfg_get(root, "metrics"), "prometheus");
        const char *epn = "traefik";
        int on = 0;
        c->prom_ep = -1;
        if (pr && (conf_cfg_type(pr) == RELAIS_CFG_BOOL || conf_cfg_type(pr) == RELAIS_CFG_STRING)) {
            if (conf_cfg_bool(pr, NULL, &on) == RELAIS_CFG_OK && on) c->prom = 1;
        } else if (pr && conf_cfg_type(pr) == RELAIS_CFG_MAP) {
            c->prom = 1;
            conf_cfg_string(pr, "entryPoint", &epn);
            conf_cfg_bool(pr, "manualRouting", &c->prom_manual);
        } else if (pr && conf_cfg_type(pr) != RELAIS_CFG_NULL) {
            conf_cfg_error(pr, NULL, "expected a map (entryPoint, manualRouting, buckets, ...)");
        }
        if (c->prom && !c->prom_manual) {
            c->prom_ep = sc_entrypoint_index(c, epn);
            if (c->prom_ep < 0 || c->eps[c->prom_ep].udp)
                conf_cfg_error(pr, "entryPoint", "no TCP entry point named \"%s\"", epn);
        }
    }

    nerr = conf_session_nerrors(s);
    if (err && errlen) {
        size_t len = 0;
        err[0] = '\0';
        for (i = 0; i < nerr && len + 1 < errlen; i++) {
            int k = i ? snprintf(err + len, errlen - len, "; %s", conf_session_error(s, i))
                      : snprintf(err, errlen, "%s: %s", who, conf_session_error(s, 0));
            if (k < 0) break;
            len += (size_t)k;
        }
    } else {
        for (i = 0; i < nerr; i++)
            log_error("config", "%s: %s", path, conf_session_error(s, i));
    }
    conf_session_free(s);
    if (nerr) return -1;
    if (!c->slots) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", who);
        return -1;
    }
    if (!quiet && c->traefik_ep_made)
        log_info("config", "%s: entry point traefik created on %s (api.insecure, ping or "
                 "metrics answer there and none is defined)", path, c->traefik_ep_made);
    if (!quiet && c->api_insecure)
        log_warn("config", "%s: api.insecure: the API and the dashboard answer anyone who "
                 "reaches entry point traefik (%s), with no authentication", path,
                 c->eps[c->api_ep].address);
    return 0;
}

/* Reads path (NULL: an empty document) and applies the flags.  The
 * document, or NULL with err set. */
static json_t *sc_read_file(const char *path, char *const *overrides, size_t n, char *err,
                            size_t errlen)
{
    struct conf_error cerr;
    json_t *root = path ? conf_load_file(path, &cerr) : json_object();

    if (!root) {
        if (cerr.line)
            snprintf(err, errlen, "%s:%d:%d: %s", path, cerr.line, cerr.column, cerr.msg);
        else
            snprintf(err, errlen, "%s: %s", path ? path : "?", cerr.msg);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char msg[300];
        if (sc_override(root, overrides[i], msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "command line: %s", msg);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

/* Copies the command line of from into c.  0 / -1 (memory). */
static int sc_copy_cmdline(struct sc_config *c, const char *path, const char *file,
                           char *const *overrides, size_t n, const char *plugin_dir_override)
{
    c->path = strdup(path);
    c->file = file ? strdup(file) : NULL;
    c->plugin_dir_override = plugin_dir_override ? strdup(plugin_dir_override) : NULL;
    c->overrides = calloc(n ? n : 1, sizeof(*c->overrides));
    if (!c->path || (file && !c->file) || (plugin_dir_override && !c->plugin_dir_override) ||
        !c->overrides)
        return -1;
    for (size_t i = 0; i < n; i++) {
        c->overrides[i] = strdup(overrides[i]);
        if (!c->overrides[i]) return -1;
        c->noverrides++;
    }
    return 0;
}

struct sc_config *sc_load(const char *path, const char *plugin_dir_override,
                          const char *const *overrides, size_t noverrides)
{
    struct sc_config *c = calloc(1, sizeof(*c));
    char err[1024];

    if (!c) return NULL;
    c->refs = 1;
    if (sc_copy_cmdline(c, path ? path : "command line", path, (char *const *)overrides,
                        noverrides, plugin_dir_override) < 0)
        goto fail;
    c->root = sc_read_file(c->file, c->overrides, c->noverrides, err, sizeof(err));
    if (!c->root) {
        log_error("config", "%s", err);
        goto fail;
    }
    if (sc_read(c, NULL, c->path, NULL, 0, 0) < 0) goto fail;
    sc_commit(c);
    return c;
fail:
    sc_free(c);
    return NULL;
}

struct sc_config *sc_derive(const struct sc_config *prev, json_t *doc, const char *who,
                            char *err, size_t errlen)
{
    struct sc_config *c = calloc(1, sizeof(*c));

    if (!c) {
        json_decref(doc);
        snprintf(err, errlen, "%s: out of memory", who);
        return NULL;
    }
    c->refs = 1;
    c->root = doc;
    if (sc_copy_cmdline(c, prev->path, prev->file, prev->overrides, prev->noverrides,
                        prev->plugin_dir_override) < 0) {
        snprintf(err, errlen, "%s: out of memory", who);
        sc_free(c);
        return NULL;
    }
    if (!doc || sc_read(c, prev, who, err, errlen, 1) < 0) {
        if (!doc) snprintf(err, errlen, "%s: out of memory", who);
        sc_free(c);
        return NULL;
    }
    c->workers = prev->workers; /* --workers, and never changed at run time */
    return c;
}

int sc_check_doc(json_t *doc, const char *who, char *err, size_t errlen)
{
    struct sc_config *c = calloc(1, sizeof(*c));
    int rc;

    if (!c) return -1;
    c->refs = 1;
    c->root = json_deep_copy(doc);
    rc = c->root ? sc_read(c, NULL, who, err, errlen, 1) : -1;
    sc_free(c);
    return rc;
}

void sc_commit(struct sc_config *c)
{
    if (!c->slots) return;
    c->slots->n = c->neps;
    c->ep_new = 0;
}

json_t *sc_reload_doc(const struct sc_config *c, char *err, size_t errlen)
{
    return sc_read_file(c->file, c->overrides, c->noverrides, err, errlen);
}

struct sc_config *sc_ref(struct sc_config *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

size_t sc_ep_sorted(const struct sc_config *c, int *idx)
{
    size_t n = 0;

    for (size_t i = 0; i < c->neps && n < SC_MAX_EPS; i++) {
        size_t j;
        if (!sc_ep_live(c, i)) continue;
        /* insertion sort: a few dozen at most */
        for (j = n; j > 0 && strcmp(c->eps[idx[j - 1]].name, c->eps[i].name) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = (int)i;
        n++;
    }
    return n;
}

void sc_free(struct sc_config *c)
{
    size_t i;

    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (c->slots) {
        struct sc_slots *sl = c->slots;
        for (i = 0; i < SC_MAX_EPS; i++)
            if (i < 64 && (c->ep_new >> i & 1)) sc_ep_clear(&sl->ep[i]);
        if (__atomic_sub_fetch(&sl->refs, 1, __ATOMIC_ACQ_REL) == 0) {
            for (i = 0; i < SC_MAX_EPS; i++) sc_ep_clear(&sl->ep[i]);
            free(sl);
        }
    }
    for (i = 0; i < c->nplugin_load; i++) free(c->plugin_load[i]);
    free(c->plugin_load);
    free(c->plugin_dir);
    free(c->log_file);
    free(c->traefik_ep_made);
    free(c->path);
    free(c->file);
    for (i = 0; i < c->noverrides; i++) free(c->overrides[i]);
    free(c->overrides);
    free(c->plugin_dir_override);
    json_decref(c->root);
    free(c);
}

int sc_entrypoint_index(const struct sc_config *c, const char *name)
{
    for (size_t i = 0; i < c->neps; i++)
        if (sc_ep_live(c, i) && c->eps[i].name && !strcmp(c->eps[i].name, name)) return (int)i;
    return -1;
}
