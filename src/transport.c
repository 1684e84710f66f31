/*
 * transport — see transport.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "log.h"
#include "snapshot.h"
#include "static_config.h"
#include "tls.h"
#include "transport.h"

#define TR_MAX_CAS 64        /* rootCAs entries read */
#define TR_MAX_CERTS 16      /* certificates entries read */
#define TR_STAMP_MAX 4096    /* cap of a transport's file stamp */

static uint64_t tr_serial; /* transports made so far (control thread) */

/** What a transport is compiled from, while it is being read. */
struct tr_parse {
    const char *cas[TR_MAX_CAS];         /* rootCAs values (borrowed) */
    const relais_cfg *ca_nodes[TR_MAX_CAS]; /* their nodes, for errors */
    size_t ncas;                         /* how many */
    const char *certs[TR_MAX_CERTS];     /* certificates[i].certFile */
    const char *keys[TR_MAX_CERTS];      /* certificates[i].keyFile */
    const relais_cfg *cert_nodes[TR_MAX_CERTS]; /* their nodes */
    size_t ncerts;                       /* how many */
    char stamp[TR_STAMP_MAX];            /* file modification times */
};

/* Appends v's modification time (files only) to the stamp, capped. */
static void tr_stamp(struct tr_parse *p, const char *v)
{
    struct stat st;
    size_t used = strlen(p->stamp);
    long long t = 0;

    if (tls_is_pem(v)) return;
    if (stat(v, &st) == 0)
        t = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if (used < sizeof(p->stamp)) snprintf(p->stamp + used, sizeof(p->stamp) - used, "|%lld", t);
}

/* Reads the keys of cfg's map into t and p; errors go to root's session. */
static void tr_read(struct tr_transport *t, struct tr_parse *p, const relais_cfg *root)
{
    const relais_cfg *n, *ft;
    const char *s;
    int64_t v;

    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map");
        return;
    }
    if (conf_cfg_string(root, "serverName", &s) == RELAIS_CFG_OK && *s) t->server_name = strdup(s);
    conf_cfg_bool(root, "insecureSkipVerify", &t->insecure);
    conf_cfg_bool(root, "disableHTTP2", &t->disable_http2);
    if (conf_cfg_string(root, "peerCertURI", &s) == RELAIS_CFG_OK && *s)
        t->peer_cert_uri = strdup(s);
    if (conf_cfg_int(root, "maxIdleConnsPerHost", &v) == RELAIS_CFG_OK) {
        if (v < -1 || v > 100000)
            conf_cfg_error(root, "maxIdleConnsPerHost", "expected -1 (no keep-alive) to 100000");
        else
            t->max_idle = v < 0 ? 0 : (int)v;
    }
    if (conf_cfg_int(root, "maxConnsPerHost", &v) == RELAIS_CFG_OK) {
        if (v < 0 || v > 1000000)
            conf_cfg_error(root, "maxConnsPerHost", "expected 0 (no cap) to 1000000");
        else
            t->max_conns = (int)v;
    }
    ft = conf_cfg_get(root, "forwardingTimeouts");
    if (ft && conf_cfg_type(ft) != RELAIS_CFG_MAP) {
        conf_cfg_error(ft, NULL, "expected a map");
    } else if (ft) {
        static const char *const keys[] = {"dialTimeout", "responseHeaderTimeout",
                                           "idleConnTimeout"};
        int64_t *outs[] = {&t->dial_timeout_ms, &t->response_header_timeout_ms,
                           &t->idle_conn_timeout_ms};
        for (size_t i = 0; i < 3; i++) {
            if (conf_cfg_duration(ft, keys[i], &v) != RELAIS_CFG_OK) continue;
            if (v < 0) conf_cfg_error(ft, keys[i], "expected a positive duration");
            else *outs[i] = v;
        }
        /* HTTP/2 health checks: accepted, checked, unused for now */
        conf_cfg_duration(ft, "readIdleTimeout", &v);
        conf_cfg_duration(ft, "pingTimeout", &v);
    }
    if (conf_cfg_get(root, "spiffe"))
        conf_cfg_error(root, "spiffe", "SPIFFE is not supported");
    n = conf_cfg_get(root, "rootCAs");
    if (n && conf_cfg_type(n) == RELAIS_CFG_STRING) {
        conf_cfg_string(n, NULL, &p->cas[0]);
        p->ca_nodes[p->ncas++] = n;
    } else if (n && conf_cfg_type(n) != RELAIS_CFG_LIST) {
        conf_cfg_error(n, NULL, "expected a list of CA files or PEM contents");
    } else if (n) {
        size_t len = conf_cfg_len(n);
        if (len > TR_MAX_CAS) conf_cfg_error(n, NULL, "more than %d CAs", TR_MAX_CAS);
        for (size_t i = 0; i < len && i < TR_MAX_CAS; i++) {
            const relais_cfg *it = conf_cfg_at(n, i, NULL);
            if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
            if (!*s) {
                conf_cfg_error(it, NULL, "expected a CA file or PEM content");
                continue;
            }
            p->cas[p->ncas] = s;
            p->ca_nodes[p->ncas++] = it;
        }
    }
    n = conf_cfg_get(root, "certificates");
    if (n && conf_cfg_type(n) != RELAIS_CFG_LIST) {
        conf_cfg_error(n, NULL, "expected a list of {certFile, keyFile}");
    } else if (n) {
        size_t len = conf_cfg_len(n);
        if (len > TR_MAX_CERTS) conf_cfg_error(n, NULL, "more than %d certificates", TR_MAX_CERTS);
        for (size_t i = 0; i < len && i < TR_MAX_CERTS; i++) {
            const relais_cfg *it = conf_cfg_at(n, i, NULL);
            const char *c = NULL, *k = NULL;
            if (conf_cfg_type(it) != RELAIS_CFG_MAP) {
                conf_cfg_error(it, NULL, "expected a map with certFile and keyFile");
                continue;
            }
            if (conf_cfg_string(it, "certFile", &c) == RELAIS_CFG_MISSING || (c && !*c))
                conf_cfg_error(it, "certFile", "missing: expected a file or PEM content");
            if (conf_cfg_string(it, "keyFile", &k) == RELAIS_CFG_MISSING || (k && !*k))
                conf_cfg_error(it, "keyFile", "missing: expected a file or PEM content");
            if (!c || !*c || !k || !*k) continue;
            p->certs[p->ncerts] = c;
            p->keys[p->ncerts] = k;
            p->cert_nodes[p->ncerts++] = it;
        }
    }
}

/* Builds t's client context from p.  Errors (with the key paths of the
 * values at fault) go to the nodes' session. */
static void tr_build_ctx(struct tr_transport *t, struct tr_parse *p, const relais_cfg *root)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char err[512];
    size_t i;
    int bad = 0;

    if (!ctx) {
        conf_cfg_error(root, NULL, "out of memory");
        return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    /* rootCAs are read even when insecure, so that a bad one is reported */
    for (i = 0; i < p->ncas; i++) {
        tr_stamp(p, p->cas[i]);
        if (tls_store_add_pem(SSL_CTX_get_cert_store(ctx), NULL, p->cas[i], err, sizeof(err)) < 0) {
            conf_cfg_error(p->ca_nodes[i], NULL, "%s", err);
            bad = 1;
        }
    }
    if (p->ncas == 0 && !t->insecure && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        conf_cfg_error(root, NULL, "the system's CA store cannot be loaded");
        bad = 1;
    }
    /* client certificates: every one is checked; OpenSSL presents one per
     * key type, the first listed of each */
    for (i = 0; i < p->ncerts; i++) {
        X509 *leaf = NULL;
        STACK_OF(X509) *chain = NULL;
        EVP_PKEY *pkey = NULL;

        tr_stamp(p, p->certs[i]);
        tr_stamp(p, p->keys[i]);
        if (tls_load_cert(p->certs[i], p->keys[i], &leaf, &chain, &pkey, err, sizeof(err)) < 0) {
            const char *sep = strstr(err, ": ");
            int iskey = !strncmp(err, "keyFile", 7);
            conf_cfg_error(p->cert_nodes[i], iskey ? "keyFile" : "certFile", "%s",
                           sep ? sep + 2 : err);
            bad = 1;
            continue;
        }
        if (i == 0 || SSL_CTX_get0_certificate(ctx) == NULL) {
            if (SSL_CTX_use_certificate(ctx, leaf) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
                SSL_CTX_set1_chain(ctx, chain) != 1) {
                conf_cfg_error(p->cert_nodes[i], "certFile", "the certificate cannot be used");
                bad = 1;
            }
        }
        X509_free(leaf);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(pkey);
        ERR_clear_error();
    }
    if (bad) {
        SSL_CTX_free(ctx);
        return;
    }
    t->ctx = ctx;
}

/* Frees a transport (refs reached zero). */
static void tr_free(struct tr_transport *t)
{
    SSL_CTX_free(t->ctx);
    json_decref(t->cfg);
    free(t->name);
    free(t->stamp);
    free(t->pool_tag);
    free(t->server_name);
    free(t->peer_cert_uri);
    free(t->error);
    free(t);
}

void tr_ref(struct tr_transport *t)
{
    if (t) __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
}

void tr_unref(struct tr_transport *t)
{
    if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    tr_free(t);
}

/* Compiles a transport; see tr_build.  sc is set for the static one: its
 * timeouts and keep-alive limit come from sc (already checked there). */
static struct tr_transport *tr_compile(const char *qname, json_t *cfg, const char *path,
                                       const char *origin, struct tr_transport *prev,
                                       const struct sc_config *sc)
{
    struct tr_transport *t = calloc(1, sizeof(*t));
    struct tr_parse *p = calloc(1, sizeof(*p));
    struct conf_session *s = NULL;
    const relais_cfg *root;
    char tag[64];

    if (!t || !p) goto oom;
    t->refs = 1;
    t->name = strdup(qname);
    t->cfg = json_incref(cfg);
    t->dial_timeout_ms = 30000;
    t->idle_conn_timeout_ms = 90000;
    t->max_idle = 200;
    s = conf_session_new(path);
    if (!t->name || !s) goto oom;
    root = conf_session_root(s, cfg);
    tr_read(t, p, root);
    if (sc) { /* the static configuration already read these */
        t->dial_timeout_ms = sc->transport.dial_timeout_ms;
        t->response_header_timeout_ms = sc->transport.response_header_timeout_ms;
        t->idle_conn_timeout_ms = sc->transport.idle_conn_timeout_ms;
        t->max_idle = sc->transport.max_idle_per_host;
    }
    if (conf_session_nerrors(s) == 0) tr_build_ctx(t, p, root);
    t->stamp = strdup(p->stamp);
    if (!t->stamp) goto oom;
    if (conf_session_nerrors(s)) {
        char what[600];
        snprintf(what, sizeof(what), "serversTransport %s", qname);
        t->status = SNAP_DISABLED;
        t->error = snap_errors(s, what, origin);
        SSL_CTX_free(t->ctx);
        t->ctx = NULL;
    } else if (prev && prev->status != SNAP_DISABLED && json_equal(prev->cfg, cfg) &&
               !strcmp(prev->stamp, t->stamp)) {
        /* unchanged: keep the old one, and with it its pooled connections */
        conf_session_free(s);
        free(p);
        tr_free(t);
        tr_ref(prev);
        return prev;
    }
    snprintf(tag, sizeof(tag), "#%llu", (unsigned long long)++tr_serial);
    t->pool_tag = malloc(strlen(qname) + strlen(tag) + 1);
    if (!t->pool_tag) goto oom;
    sprintf(t->pool_tag, "%s%s", qname, tag);
    conf_session_free(s);
    free(p);
    return t;
oom:
    conf_session_free(s);
    free(p);
    if (t) tr_free(t);
    return NULL;
}

struct tr_transport *tr_build(const char *qname, json_t *cfg, const char *path,
                              const char *origin, struct tr_transport *prev)
{
    return tr_compile(qname, cfg, path, origin, prev, NULL);
}

struct tr_transport *tr_default(const struct sc_config *sc, struct tr_transport *prev)
{
    json_t *cfg = NULL, *v;
    const char *k;
    struct tr_transport *t;

    json_object_foreach(sc->root, k, v) {
        if (!strcasecmp(k, "serversTransport") && json_is_object(v)) cfg = json_incref(v);
    }
    if (!cfg) cfg = json_object();
    if (!cfg) return NULL;
    t = tr_compile(TR_DEFAULT_NAME, cfg, "serversTransport", sc->path, prev, sc);
    json_decref(cfg);
    return t;
}

SSL *tr_ssl(const struct tr_transport *t, const char *host, int h2, char *err, size_t errlen)
{
    static const unsigned char alpn_h2[] = "\x02h2\x08http/1.1";
    static const unsigned char alpn[] = "\x08http/1.1";

    if (!t->ctx) {
        snprintf(err, errlen, "serversTransport %s is disabled", t->name);
        return NULL;
    }
    return tls_client_ssl(t->ctx, t->server_name ? t->server_name : host, h2 ? alpn_h2 : alpn,
                          h2 ? sizeof(alpn_h2) - 1 : sizeof(alpn) - 1, err, errlen);
}

int tr_check_peer(const struct tr_transport *t, SSL *ssl, char *err, size_t errlen)
{
    X509 *x;
    GENERAL_NAMES *names;
    int found = 0;

    if (!t->peer_cert_uri) return 0;
    x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (!x) {
        snprintf(err, errlen, "the server sent no certificate (peerCertURI %s)", t->peer_cert_uri);
        return -1;
    }
    names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_URI) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
            int len = ASN1_STRING_length(g->d.uniformResourceIdentifier);
            found = (size_t)len == strlen(t->peer_cert_uri) &&
                    memcmp(d, t->peer_cert_uri, (size_t)len) == 0;
        }
    }
    GENERAL_NAMES_free(names);
    if (!found) {
        snprintf(err, errlen, "the server's certificate has no URI SAN %s (peerCertURI)",
                 t->peer_cert_uri);
        return -1;
    }
    return 0;
}
