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
        ep->tls_domains = conf_node_json(d);
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
 * another entry point's name, or a port (":443" or "443"). */
static void sc_resolve_redirects(struct sc_config *c, const relais_cfg *eps)
{
    for (size_t i = 0; i < c->neps; i++) {
        struct sc_entrypoint *ep = &c->eps[i];
        const char *to = ep->redirect_to, *num;
        char *end;
        long port;
        int idx;

        if (!to) continue;
        num = to[0] == ':' ? to + 1 : to;
        port = strtol(num, &end, 10);
        if (*num && !*end && port > 0 && port < 65536) {
            ep->redirect_port = (int)port;
            continue;
        }
        idx = sc_entrypoint_index(c, to);
        if (idx < 0) {
            const relais_cfg *r = conf_cfg_get(
                conf_cfg_get(conf_cfg_get(conf_cfg_get(eps, ep->name), "http"), "redirections"),
                "entryPoint");
            conf_cfg_error(r, "to", "entry point \"%s\" does not exist", to);
            continue;
        }
        ep->redirect_port = na_port((const struct sockaddr *)&c->eps[idx].addr);
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

struct sc_config *sc_load(const char *path, const char *plugin_dir_override,
                          const char *const *overrides, size_t noverrides)
{
    static const char *const top_known[] = {
        "entryPoints", "providers", "log", "plugins", "workers",
        "serversTransport", "global", "certificatesResolvers", "ping", "accessLog", "api",
        "metrics", "tracing", "cluster", NULL};
    struct conf_error cerr;
    struct conf_session *s = NULL;
    struct sc_config *c = calloc(1, sizeof(*c));
    const relais_cfg *root, *eps, *lg, *pl, *tr;
    const char *str;
    int64_t v;
    size_t i, nerr;

    if (!c) return NULL;
    c->path = strdup(path ? path : "command line");
    c->root = path ? conf_load_file(path, &cerr) : json_object();
    if (!c->root) {
        if (cerr.line)
            log_error("config", "%s:%d:%d: %s", path, cerr.line, cerr.column, cerr.msg);
        else
            log_error("config", "%s: %s", path, cerr.msg);
        goto fail;
    }
    for (i = 0; i < noverrides; i++) {
        char msg[300];
        if (sc_override(c->root, overrides[i], msg, sizeof(msg)) < 0) {
            log_error("config", "command line: %s", msg);
            goto fail;
        }
    }
    path = c->path;
    sc_default_traefik_ep(c);
    s = conf_session_new("");
    root = conf_session_root(s, c->root);
    sc_warn_unknown(path, root, top_known);

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
    } else {
        c->neps = conf_cfg_len(eps);
        c->eps = calloc(c->neps, sizeof(*c->eps));
        for (i = 0; i < c->neps; i++) {
            const char *name;
            const relais_cfg *ep = conf_cfg_at(eps, i, &name);
            sc_entrypoint(ep, name, &c->eps[i]);
        }
        qsort(c->eps, c->neps, sizeof(*c->eps), sc_ep_cmp);
        sc_resolve_redirects(c, eps);
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
            sc_warn_unknown(path, ap, api_known);
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
    for (i = 0; i < nerr; i++)
        log_error("config", "%s: %s", path, conf_session_error(s, i));
    if (nerr) goto fail;
    if (c->traefik_ep_made)
        log_info("config", "%s: entry point traefik created on %s (api.insecure, ping or "
                 "metrics answer there and none is defined)", path, c->traefik_ep_made);
    if (c->api_insecure)
        log_warn("config", "%s: api.insecure: the API and the dashboard answer anyone who "
                 "reaches entry point traefik (%s), with no authentication", path,
                 c->eps[c->api_ep].address);
    conf_session_free(s);
    return c;
fail:
    conf_session_free(s);
    sc_free(c);
    return NULL;
}

void sc_free(struct sc_config *c)
{
    size_t i;

    if (!c) return;
    for (i = 0; i < c->neps; i++) {
        free(c->eps[i].name);
        free(c->eps[i].address);
        free(c->eps[i].trusted);
        free(c->eps[i].pp_trusted);
        free(c->eps[i].tls_options);
        free(c->eps[i].tls_resolver);
        free(c->eps[i].redirect_to);
        free(c->eps[i].redirect_scheme);
        for (size_t j = 0; j < c->eps[i].nmws; j++) free(c->eps[i].mws[j]);
        free(c->eps[i].mws);
    }
    free(c->eps);
    for (i = 0; i < c->nplugin_load; i++) free(c->plugin_load[i]);
    free(c->plugin_load);
    free(c->plugin_dir);
    free(c->log_file);
    free(c->traefik_ep_made);
    free(c->path);
    json_decref(c->root);
    free(c);
}

int sc_entrypoint_index(const struct sc_config *c, const char *name)
{
    for (size_t i = 0; i < c->neps; i++)
        if (!strcmp(c->eps[i].name, name)) return (int)i;
    return -1;
}
