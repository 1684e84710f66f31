/*
 * resolvers — see resolvers.h.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <jansson.h>

#include "acme.h"
#include "acme_etcd.h"
#include "cluster.h"
#include "conf.h"
#include "log.h"
#include "resolvers.h"
#include "rule.h"
#include "snapshot.h"
#include "static_config.h"
#include "tcp.h"
#include "tlsstore.h"

#define RS_MAX_TOKENS 1024      /* http-01 challenges pending at once */
#define RS_MAX_CERTS 100000     /* certificates held */
#define RS_MAX_NAMES 100        /* names in one certificate (Let's Encrypt's cap) */
#define RS_DEFAULT_CA "https://acme-v02.api.letsencrypt.org/directory"
#define RS_MAX_HTTP_EPS 16      /* httpChallenge entry points remembered */

/** One resolver. */
struct rs_resolver {
    char *name;          /* certificatesResolvers key */
    struct acme *acme;   /* its client */
    int how;             /* ACME_HTTP01 or ACME_TLSALPN01 */
    char *http_ep;       /* httpChallenge entry point name, or NULL: looked
                            up by name for each request, as entry points
                            change slots at run time (static_live.c) */
    struct ae_res *ae;   /* its etcd storage (cluster mode), or NULL */
};

/** One certificate obtained by a resolver. */
struct rs_cert {
    char *resolver;      /* who obtained it */
    char *names;         /* "main,san1,san2" (identity of the set) */
    char *chain;         /* PEM, leaf first */
    char *key;           /* PEM private key */
    int64_t not_after;   /* expiry of the leaf, seconds since the epoch */
};

/** One pending http-01 challenge. */
struct rs_token {
    const char *ep;      /* name of the entry point that answers it
                            (borrowed from its resolver); NULL: a
                            challenge read from etcd (cluster mode),
                            answered on every httpChallenge entry point
                            of this node (on every entry point when it
                            has none) */
    char *token;         /* the token (URL path element) */
    char *key_auth;      /* the answer */
};

static struct rs_resolver *rs_v;       /* resolvers */
static size_t rs_n;                    /* how many */
static void (*rs_changed)(void);       /* asks for a new snapshot */
static struct rs_cert *rs_certs_v;     /* certificates */
static size_t rs_ncerts;               /* how many */
static struct ts_extra_cert *rs_extra; /* the same, as snap_build wants them */
static json_t *rs_wanted;              /* "resolver|names" -> true: asked already */
static struct event *rs_changed_ev;    /* one rs_changed for a burst of etcd's
                                          certificates (a section holds many) */

static void rs_hooks_fill(struct acme_hooks *h, size_t idx);
static int rs_token_add(const char *ep, const char *token, const char *key_auth);
static void rs_token_del(int etcd, const char *token);

static pthread_mutex_t rs_tok_lock = PTHREAD_MUTEX_INITIALIZER; /* guards rs_tok, rs_hep */
static struct rs_token rs_tok[RS_MAX_TOKENS];                   /* token NULL = free */
static const char *rs_hep[RS_MAX_HTTP_EPS]; /* httpChallenge entry point names
                                               of the resolvers (borrowed) */
static size_t rs_nhep;              /* how many (0: etcd's tokens are answered
                                       on every entry point) */
static const struct sc_entrypoint *rs_slots; /* the process's entry point
                                                slots (shared by every
                                                static version, never
                                                rewritten: readable from
                                                any thread), set by rs_start */

/* ---------------------------------------------------------------- options */

/* Reads certificatesResolvers.NAME into cfg, r (challenge type) and
 * *http_ep (the httpChallenge entry point's name, or NULL); strings are
 * borrowed from the static configuration's tree.  Errors go to the
 * session. */
static void rs_read(const struct sc_config *sc, const relais_cfg *node, const char *name,
                    struct acme_cfg *cfg, struct rs_resolver *r, const char **http_ep)
{
    const relais_cfg *acme = conf_cfg_get(node, "acme"), *n;
    static const char *const known[] = {
        "email", "caServer", "storage", "keyType", "httpChallenge", "tlsChallenge",
        "dnsChallenge", "caCertificates", "caSystemCertPool", "caServerName",
        "certificatesDuration", "preferredChain", "eab", "renewBefore",
        "renewCheckInterval", "caInsecureSkipVerify", NULL};
    const char *s, *k;
    int64_t v;

    memset(cfg, 0, sizeof(*cfg));
    cfg->resolver = name;
    cfg->ca_server = RS_DEFAULT_CA;
    cfg->storage = "acme.json";
    *http_ep = NULL;
    if (conf_cfg_type(node) != RELAIS_CFG_MAP || !acme) {
        conf_cfg_error(node, "acme", "missing: relais resolvers are ACME resolvers");
        return;
    }
    if (conf_cfg_type(acme) != RELAIS_CFG_MAP) {
        conf_cfg_error(acme, NULL, "expected a map of ACME options");
        return;
    }
    for (size_t i = 0; i < conf_cfg_len(acme); i++) {
        size_t j;
        conf_cfg_at(acme, i, &k);
        for (j = 0; known[j] && strcasecmp(known[j], k); j++) {}
        if (!known[j]) conf_cfg_error(acme, k, "unknown ACME option");
    }
    if (conf_cfg_string(acme, "email", &s) == RELAIS_CFG_OK) cfg->email = s;
    if (conf_cfg_string(acme, "caServer", &s) == RELAIS_CFG_OK) cfg->ca_server = s;
    if (conf_cfg_string(acme, "storage", &s) == RELAIS_CFG_OK) {
        cfg->storage = s;
        if (cl_role() != CL_NONE)
            log_info("acme", "certificatesResolvers.%s.acme.storage is ignored in cluster mode: "
                     "the account and certificates are in etcd under %s/acme/%s", name,
                     cl_prefix(), name);
    }
    if (conf_cfg_string(acme, "keyType", &s) == RELAIS_CFG_OK) {
        static const char *const types[] = {"EC256", "EC384", "RSA2048", "RSA4096", "RSA8192",
                                            NULL};
        size_t j;
        for (j = 0; types[j] && strcmp(types[j], s); j++) {}
        if (!types[j])
            conf_cfg_error(acme, "keyType",
                           "expected EC256, EC384, RSA2048, RSA4096 or RSA8192, got \"%s\"", s);
        cfg->key_type = s;
    }
    n = conf_cfg_get(acme, "caCertificates");
    if (n && conf_cfg_type(n) == RELAIS_CFG_LIST) {
        if (conf_cfg_len(n) > 1)
            conf_cfg_error(n, NULL, "relais takes one CA file (a file may hold several)");
        else if (conf_cfg_len(n) == 1 &&
                 conf_cfg_string(conf_cfg_at(n, 0, NULL), NULL, &s) == RELAIS_CFG_OK)
            cfg->ca_certificates = s;
    } else if (n && conf_cfg_string(n, NULL, &s) == RELAIS_CFG_OK) {
        cfg->ca_certificates = s;
    } else if (n) {
        conf_cfg_error(n, NULL, "expected a list of CA files");
    }
    conf_cfg_bool(acme, "caInsecureSkipVerify", &cfg->ca_insecure);
    if (conf_cfg_int(acme, "certificatesDuration", &v) == RELAIS_CFG_OK) {
        /* Traefik renews when a third of the duration (hours) is left */
        if (v <= 0) conf_cfg_error(acme, "certificatesDuration", "expected hours > 0");
        else cfg->renew_before_s = v * 3600 / 3;
    }
    if (conf_cfg_duration(acme, "renewBefore", &v) == RELAIS_CFG_OK) cfg->renew_before_s = v / 1000;
    if (conf_cfg_duration(acme, "renewCheckInterval", &v) == RELAIS_CFG_OK) cfg->check_interval_ms = v;
    if (conf_cfg_get(acme, "dnsChallenge"))
        conf_cfg_error(acme, "dnsChallenge", "not supported (use httpChallenge or tlsChallenge)");
    n = conf_cfg_get(acme, "httpChallenge");
    if (n) {
        r->how = ACME_HTTP01;
        if (conf_cfg_string(n, "entryPoint", &s) != RELAIS_CFG_OK) {
            conf_cfg_error(n, "entryPoint", "missing: expected the entry point of port 80");
        } else if (sc_entrypoint_index(sc, s) < 0) {
            conf_cfg_error(n, "entryPoint", "entry point \"%s\" does not exist", s);
        } else {
            *http_ep = s;
        }
    }
    if (conf_cfg_get(acme, "tlsChallenge")) {
        if (r->how) conf_cfg_error(acme, "tlsChallenge", "only one challenge type per resolver");
        r->how = ACME_TLSALPN01;
    }
    if (!r->how)
        conf_cfg_error(acme, NULL, "expected httpChallenge or tlsChallenge");
}

/* Reads every resolver; with base, starts them.  0, or -1 when one is
 * misconfigured. */
static int rs_load(struct event_base *base, const struct sc_config *sc)
{
    struct conf_session *cs = conf_session_new("certificatesResolvers");
    const relais_cfg *root = conf_session_root(cs, sc->resolvers);
    int rc = 0;
    size_t n = conf_cfg_len(root);

    if (!sc->resolvers) {
        conf_session_free(cs);
        return 0;
    }
    if (base) {
        rs_v = calloc(n ? n : 1, sizeof(*rs_v));
        if (!rs_v) {
            conf_session_free(cs);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const relais_cfg *node = conf_cfg_at(root, i, &name);
        struct acme_cfg cfg;
        struct rs_resolver r = {0};
        const char *http_ep;
        size_t before = conf_session_nerrors(cs);
        char err[300];
        static const struct acme_hooks proto = {0};

        rs_read(sc, node, name, &cfg, &r, &http_ep);
        if (conf_session_nerrors(cs) > before || !base) continue;
        {
            struct acme_hooks h = proto;
            struct acme_storage st = {0};
            rs_hooks_fill(&h, rs_n);
            r.name = strdup(name);
            r.http_ep = http_ep ? strdup(http_ep) : NULL;
            snprintf(err, sizeof(err), "out of memory");
            if (r.name && http_ep && !r.http_ep) {
                free(r.name);
                r.name = NULL;
            }
            if (r.name && cl_role() != CL_NONE) {
                r.ae = ae_resolver(name, &st);
                if (!r.ae) snprintf(err, sizeof(err), "cannot be stored in etcd");
            }
            if (r.name && (cl_role() == CL_NONE || r.ae))
                r.acme = acme_new_stored(base, &cfg, &h, r.ae ? &st : NULL, err, sizeof(err));
        }
        if (!r.acme) {
            log_error("config", "certificatesResolvers.%s: %s", name, err);
            free(r.name);
            free(r.http_ep);
            rc = -1;
            continue;
        }
        ae_attach(r.ae, r.acme);
        if (r.http_ep) {
            size_t j;
            pthread_mutex_lock(&rs_tok_lock);
            for (j = 0; j < rs_nhep && strcmp(rs_hep[j], r.http_ep); j++) {}
            if (j == rs_nhep && rs_nhep < RS_MAX_HTTP_EPS) rs_hep[rs_nhep++] = r.http_ep;
            pthread_mutex_unlock(&rs_tok_lock);
        }
        rs_v[rs_n++] = r;
        log_info("acme", "resolver %s: %s challenge, CA %s", name,
                 r.how == ACME_HTTP01 ? "http-01" : "tls-alpn-01", cfg.ca_server);
    }
    for (size_t i = 0; i < conf_session_nerrors(cs); i++) {
        log_error("config", "%s: %s", sc->path ? sc->path : "static configuration",
                  conf_session_error(cs, i));
        rc = -1;
    }
    conf_session_free(cs);
    return rc;
}

/* ---------------------------------------------------------------- hooks */

/* The resolver index an acme hook's arg carries. */
static struct rs_resolver *rs_of(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;

    return i < rs_n ? &rs_v[i] : NULL;
}

/* http-01: publish token -> key authorization on the resolver's entry point. */
static int rs_http01_set(void *arg, const char *token, const char *key_auth)
{
    struct rs_resolver *r = rs_of(arg);

    if (!r) return -1;
    if (r->ae) return ae_http01_set(r->ae, token, key_auth); /* every node, via etcd */
    return rs_token_add(r->http_ep, token, key_auth);
}

/* Adds token -> key_auth answered on the entry point called ep (NULL:
 * see struct rs_token; ep must live until rs_stop).  0, or -1 (table
 * full, out of memory). */
static int rs_token_add(const char *ep, const char *token, const char *key_auth)
{
    int rc = -1;

    pthread_mutex_lock(&rs_tok_lock);
    for (size_t i = 0; i < RS_MAX_TOKENS; i++) {
        if (rs_tok[i].token) continue;
        rs_tok[i].token = strdup(token);
        rs_tok[i].key_auth = strdup(key_auth);
        rs_tok[i].ep = ep;
        if (rs_tok[i].token && rs_tok[i].key_auth) {
            rc = 0;
        } else {
            free(rs_tok[i].token);
            free(rs_tok[i].key_auth);
            rs_tok[i].token = rs_tok[i].key_auth = NULL;
        }
        break;
    }
    pthread_mutex_unlock(&rs_tok_lock);
    return rc;
}

/* http-01: forget token. */
static void rs_http01_clear(void *arg, const char *token)
{
    struct rs_resolver *r = rs_of(arg);

    if (r && r->ae) ae_http01_clear(r->ae, token);
    else rs_token_del(0, token);
}

/* Removes token: the entries of the resolvers (etcd 0), or those read
 * from etcd (etcd 1). */
static void rs_token_del(int etcd, const char *token)
{
    pthread_mutex_lock(&rs_tok_lock);
    for (size_t i = 0; i < RS_MAX_TOKENS; i++) {
        if (!rs_tok[i].token || strcmp(rs_tok[i].token, token)) continue;
        if ((rs_tok[i].ep == NULL) != etcd) continue;
        free(rs_tok[i].token);
        free(rs_tok[i].key_auth);
        rs_tok[i].token = rs_tok[i].key_auth = NULL;
    }
    pthread_mutex_unlock(&rs_tok_lock);
}

int rs_http01_answer(int ep, const char *token, size_t len, char *out, size_t cap)
{
    int n = -1;
    /* the request's entry point by name: the slot index of a name changes
       when its entry point is changed at run time (a SIGHUP, P/static),
       the slot's name never does */
    const char *epn = rs_slots && ep >= 0 && ep < SC_MAX_EPS ? rs_slots[ep].name : NULL;

    if (!epn) return -1;
    pthread_mutex_lock(&rs_tok_lock);
    for (size_t i = 0; i < RS_MAX_TOKENS && n < 0; i++) {
        const struct rs_token *t = &rs_tok[i];
        size_t kl;
        if (!t->token || strlen(t->token) != len || memcmp(t->token, token, len)) continue;
        if (!t->ep) { /* from etcd: on our httpChallenge entry points */
            size_t j;
            for (j = 0; j < rs_nhep && strcmp(rs_hep[j], epn); j++) {}
            if (rs_nhep && j == rs_nhep) continue;
        } else if (strcmp(t->ep, epn)) {
            continue;
        }
        kl = strlen(t->key_auth);
        if (kl < cap) {
            memcpy(out, t->key_auth, kl);
            n = (int)kl;
        }
    }
    pthread_mutex_unlock(&rs_tok_lock);
    return n;
}

/* tls-alpn-01: the challenge certificate goes to the handshake code (of
 * every node, through etcd, in cluster mode). */
static int rs_alpn01_set(void *arg, const char *domain, const char *cert_pem, const char *key_pem)
{
    struct rs_resolver *r = rs_of(arg);

    if (r && r->ae) return ae_alpn01_set(r->ae, domain, cert_pem, key_pem);
    return ts_alpn01_set(domain, cert_pem, key_pem);
}

/* tls-alpn-01: withdraw it. */
static void rs_alpn01_clear(void *arg, const char *domain)
{
    struct rs_resolver *r = rs_of(arg);

    if (r && r->ae) ae_alpn01_clear(r->ae, domain);
    else ts_alpn01_set(domain, NULL, NULL);
}

/* etcd: an http-01 challenge of the ordering node appeared or is gone.
 * 0 once the answer table holds it (or no longer does), -1 when it could
 * not be kept (then acme_etcd does not acknowledge it). */
static int rs_ae_http01(const char *token, const char *key_auth)
{
    rs_token_del(1, token);
    if (key_auth && rs_token_add(NULL, token, key_auth) < 0) {
        log_error("acme", "http-01 token from etcd not kept (%d pending at most)", RS_MAX_TOKENS);
        return -1;
    }
    return 0;
}

/* etcd: a tls-alpn-01 challenge certificate appeared or is gone.  0 once
 * the handshake code has it (or no longer does), -1 when not usable. */
static int rs_ae_alpn01(const char *domain, const char *cert_pem, const char *key_pem)
{
    if (ts_alpn01_set(domain, cert_pem, key_pem) < 0 && cert_pem) {
        log_error("acme", "tls-alpn-01 certificate for %s from etcd not usable", domain);
        return -1;
    }
    return 0;
}

/* Rebuilds the array snap_build reads. */
static void rs_rebuild_extra(void)
{
    struct ts_extra_cert *x = calloc(rs_ncerts ? rs_ncerts : 1, sizeof(*x));

    if (!x) return;
    for (size_t i = 0; i < rs_ncerts; i++) {
        x[i].chain_pem = rs_certs_v[i].chain;
        x[i].key_pem = rs_certs_v[i].key;
        x[i].source = rs_certs_v[i].resolver;
    }
    free(rs_extra);
    rs_extra = x;
}

/* Keeps a certificate of resolver (replacing the one for the same names)
 * and asks for a new snapshot.  With only_newer (cluster mode: etcd's
 * copies and the ordering node's own), an identical one or one expiring
 * sooner than the one held changes nothing.  from_etcd: for the log. */
static void rs_cert_set(const char *resolver, const char *main_domain, const char *const *sans,
                        size_t nsans, const char *chain_pem, const char *key_pem,
                        int64_t not_after, int only_newer, int from_etcd)
{
    char names[8192];
    size_t used, i;
    struct rs_cert c;

    used = (size_t)snprintf(names, sizeof(names), "%s", main_domain);
    for (i = 0; i < nsans && used < sizeof(names); i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, ",%s", sans[i]);
    for (i = 0; only_newer && i < rs_ncerts; i++) {
        const struct rs_cert *o = &rs_certs_v[i];
        if (strcmp(o->resolver, resolver) || strcmp(o->names, names)) continue;
        if (!strcmp(o->chain, chain_pem) || o->not_after > not_after) return;
    }
    c.resolver = strdup(resolver);
    c.names = strdup(names);
    c.chain = strdup(chain_pem);
    c.key = strdup(key_pem);
    c.not_after = not_after;
    if (!c.resolver || !c.names || !c.chain || !c.key) goto fail;
    for (i = 0; i < rs_ncerts; i++) {
        if (strcmp(rs_certs_v[i].resolver, c.resolver) || strcmp(rs_certs_v[i].names, c.names))
            continue;
        free(rs_certs_v[i].resolver);
        free(rs_certs_v[i].names);
        free(rs_certs_v[i].chain);
        free(rs_certs_v[i].key);
        rs_certs_v[i] = c;
        break;
    }
    if (i == rs_ncerts) {
        struct rs_cert *n;
        if (rs_ncerts >= RS_MAX_CERTS) goto fail;
        n = realloc(rs_certs_v, (rs_ncerts + 1) * sizeof(*n));
        if (!n) goto fail;
        rs_certs_v = n;
        rs_certs_v[rs_ncerts++] = c;
    }
    log_info("acme", "resolver %s: certificate for %s in use (valid until %lld)%s", resolver,
             names, (long long)not_after, from_etcd ? " (from etcd)" : "");
    rs_rebuild_extra();
    if (from_etcd && rs_changed_ev) {
        struct timeval now = {0, 0};
        event_add(rs_changed_ev, &now); /* once for the whole section */
    } else if (rs_changed) {
        rs_changed();
    }
    return;
fail:
    free(c.resolver);
    free(c.names);
    free(c.chain);
    free(c.key);
}

/* A certificate arrived from a resolver's client (storage, issue or
 * renewal). */
static void rs_on_cert(void *arg, const char *main_domain, const char *const *sans, size_t nsans,
                       const char *chain_pem, const char *key_pem, int64_t not_after)
{
    struct rs_resolver *r = rs_of(arg);

    if (r)
        rs_cert_set(r->name, main_domain, sans, nsans, chain_pem, key_pem, not_after,
                    r->ae != NULL, 0);
}

/* rs_changed_ev: etcd's certificates of one burst are in. */
static void rs_changed_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (rs_changed) rs_changed();
}

/* etcd: a certificate of a resolver (of this node's or not). */
static void rs_ae_cert(const char *resolver, const char *main_domain, const char *const *sans,
                       size_t nsans, const char *chain_pem, const char *key_pem, int64_t not_after)
{
    rs_cert_set(resolver, main_domain, sans, nsans, chain_pem, key_pem, not_after, 1, 1);
}

/* An order failed this round (acme.c retries with backoff). */
static void rs_on_error(void *arg, const char *main_domain, const char *message)
{
    struct rs_resolver *r = rs_of(arg);

    log_error("acme", "resolver %s: certificate for %s not obtained: %s", r ? r->name : "?",
              main_domain, message);
}

/* Fills the hook table of resolver idx (used by rs_load). */
static void rs_hooks_fill(struct acme_hooks *h, size_t idx)
{
    h->arg = (void *)(uintptr_t)idx;
    h->http01_set = rs_http01_set;
    h->http01_clear = rs_http01_clear;
    h->alpn01_set = rs_alpn01_set;
    h->alpn01_clear = rs_alpn01_clear;
    h->on_cert = rs_on_cert;
    h->on_error = rs_on_error;
}

/* ---------------------------------------------------------------- lifecycle */

int rs_check(const struct sc_config *sc)
{
    return rs_load(NULL, sc);
}

int rs_start(struct event_base *base, const struct sc_config *sc, void (*changed)(void))
{
    rs_changed = changed;
    rs_slots = sc->eps;
    rs_wanted = json_object();
    snap_set_extra_certs(rs_certs);
    if (cl_role() != CL_NONE) {
        static const struct ae_hooks h = {rs_ae_cert, rs_ae_http01, rs_ae_alpn01};
        rs_changed_ev = evtimer_new(base, rs_changed_run, NULL);
        if (!rs_changed_ev || ae_start(base, &h) < 0) {
            log_error("acme", "cannot start the etcd storage of the certificates");
            return -1;
        }
    }
    return rs_load(base, sc);
}

const struct ts_extra_cert *rs_certs(size_t *n)
{
    *n = rs_extra ? rs_ncerts : 0;
    return rs_extra;
}

/** Collects the Host names of a rule (rule_hosts callback). */
struct rs_names {
    const char *v[RS_MAX_NAMES]; /* names (borrowed from the rule) */
    size_t len[RS_MAX_NAMES];    /* their lengths */
    size_t n;                    /* how many */
    int wildcard;                /* a HostRegexp-style wildcard was seen */
};

/* rule_hosts callback. */
static void rs_host(void *arg, const char *host, size_t len, int wildcard)
{
    struct rs_names *rn = arg;

    if (wildcard) {
        rn->wildcard = 1;
        return;
    }
    if (rn->n < RS_MAX_NAMES) {
        rn->v[rn->n] = host;
        rn->len[rn->n++] = len;
    }
}

/* Asks resolver r for one set of names (once per set). */
static void rs_want(struct rs_resolver *r, const char *const *names, size_t n)
{
    char key[8192];
    size_t used;

    if (!n) return;
    used = (size_t)snprintf(key, sizeof(key), "%s|", r->name);
    for (size_t i = 0; i < n && used < sizeof(key); i++)
        used += (size_t)snprintf(key + used, sizeof(key) - used, "%s%s", i ? "," : "", names[i]);
    if (used >= sizeof(key) || json_object_get(rs_wanted, key)) return;
    json_object_set_new(rs_wanted, key, json_true());
    if (acme_want(r->acme, names, n, r->how) < 0)
        log_error("acme", "resolver %s: cannot ask for %s", r->name, key + strlen(r->name) + 1);
}

/* Asks the resolver called resolver for what a router needs: each
 * tls.domains entry, else the names its rule gives (hosts: rule_hosts for
 * HTTP, rule_sni_hosts for TCP). */
static void rs_router(const char *router, const char *resolver, const rule_t *rule,
                      json_t *domains,
                      int (*hosts)(const rule_t *, void (*)(void *, const char *, size_t, int),
                                   void *))
{
    struct rs_resolver *r = NULL;

    for (size_t j = 0; j < rs_n; j++)
        if (!strcmp(rs_v[j].name, resolver)) r = &rs_v[j];
    if (!r) return;
    if (json_is_array(domains) && json_array_size(domains) > 0) {
        size_t k;
        json_t *d;
        json_array_foreach(domains, k, d) {
            const char *names[RS_MAX_NAMES];
            size_t n = 0, m;
            json_t *sans = NULL, *s;
            const char *key;
            json_t *v;
            json_object_foreach(d, key, v) {
                if (!strcasecmp(key, "main") && json_is_string(v)) names[n++] = json_string_value(v);
                if (!strcasecmp(key, "sans")) sans = v;
            }
            if (!n) continue;
            json_array_foreach(sans, m, s)
                if (json_is_string(s) && n < RS_MAX_NAMES) names[n++] = json_string_value(s);
            rs_want(r, names, n);
        }
    } else if (rule) {
        struct rs_names rn = {0};
        char buf[RS_MAX_NAMES][256];
        const char *names[RS_MAX_NAMES];
        size_t n = 0;
        if (!hosts(rule, rs_host, &rn)) {
            log_warn("acme", "router %s: no host name in its rule and no tls.domains: no "
                     "certificate asked from %s", router, r->name);
            return;
        }
        for (size_t j = 0; j < rn.n; j++) {
            if (rn.len[j] >= sizeof(buf[0])) continue;
            memcpy(buf[n], rn.v[j], rn.len[j]);
            buf[n][rn.len[j]] = '\0';
            names[n] = buf[n];
            n++;
        }
        if (rn.wildcard)
            log_warn("acme", "router %s: wildcard hosts need dns-01, which relais does not "
                     "do; they are left out", router);
        rs_want(r, names, n);
    }
}

/* tcp_foreach_resolver callback. */
static void rs_tcp_router(void *arg, const char *router, const char *resolver, const rule_t *rule,
                          json_t *domains)
{
    (void)arg;
    rs_router(router, resolver, rule, domains, rule_sni_hosts);
}

void rs_sync(const struct snapshot *snap)
{
    if (!snap) return;
    for (size_t i = 0; i < snap->nrouters; i++) {
        const struct snap_router *rt = &snap->routers[i];
        if (rt->status == SNAP_DISABLED || !rt->tls || !rt->cert_resolver) continue;
        rs_router(rt->name, rt->cert_resolver, rt->rule, rt->tls_domains, rule_hosts);
    }
    tcp_foreach_resolver(snap, rs_tcp_router, NULL);
}

void rs_stop(void)
{
    for (size_t i = 0; i < rs_n; i++) {
        acme_free(rs_v[i].acme);
        free(rs_v[i].name);
    }
    if (cl_role() != CL_NONE) ae_stop(); /* after the clients: their last clears */
    if (rs_changed_ev) event_free(rs_changed_ev);
    rs_changed_ev = NULL;
    for (size_t i = 0; i < rs_ncerts; i++) {
        free(rs_certs_v[i].resolver);
        free(rs_certs_v[i].names);
        free(rs_certs_v[i].chain);
        free(rs_certs_v[i].key);
    }
    free(rs_certs_v);
    rs_certs_v = NULL;
    rs_ncerts = 0;
    free(rs_extra);
    rs_extra = NULL;
    json_decref(rs_wanted);
    rs_wanted = NULL;
    snap_set_extra_certs(NULL);
    pthread_mutex_lock(&rs_tok_lock);
    for (size_t i = 0; i < RS_MAX_TOKENS; i++) {
        free(rs_tok[i].token);
        free(rs_tok[i].key_auth);
        rs_tok[i].token = rs_tok[i].key_auth = NULL;
    }
    rs_nhep = 0;
    rs_slots = NULL;
    pthread_mutex_unlock(&rs_tok_lock);
    /* the tokens and rs_hep borrowed these names */
    for (size_t i = 0; i < rs_n; i++) free(rs_v[i].http_ep);
    free(rs_v);
    rs_v = NULL;
    rs_n = 0;
}
