/*
 * tlsstore — see tlsstore.h.
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
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
#include "tls.h"
#include "tlsstore.h"

#define TS_MAX_CERTS 100000   /* certificates per configuration */
#define TS_MAX_OPTIONS 1000   /* TLS option sets per configuration */
#define TS_MAX_ALPN 16        /* alpnProtocols entries */
#define TS_MAX_CAFILES 64     /* clientAuth.caFiles entries */
#define TS_MAX_ALPN01 1024    /* TLS-ALPN-01 challenges at once */

/** Traefik's clientAuthType values. */
enum ts_auth {
    TS_NO_CLIENT_CERT = 0,
    TS_REQUEST_CLIENT_CERT,
    TS_REQUIRE_ANY_CLIENT_CERT,
    TS_VERIFY_CLIENT_CERT_IF_GIVEN,
    TS_REQUIRE_AND_VERIFY_CLIENT_CERT,
};

/** A string-keyed open-addressing map (keys owned, values borrowed). */
struct ts_map {
    char **keys;  /* slot keys, NULL = empty */
    void **vals;  /* slot values */
    size_t cap;   /* slots (power of two) */
    size_t n;     /* used slots */
};

/** One certificate with its chain and key. */
struct ts_cert {
    X509 *leaf;            /* the certificate */
    STACK_OF(X509) *chain; /* the rest of the chain */
    EVP_PKEY *key;         /* its private key */
};

/** One set of TLS options (tls.options.NAME). */
struct ts_options {
    char *name;              /* "default" or "name@provider" */
    SSL_CTX *ctx;            /* server context for them */
    int min_version;         /* TLS1_2_VERSION, ... */
    int max_version;         /* 0 = the highest */
    char *ciphers;           /* OpenSSL cipher list for TLS <= 1.2 */
    char *groups;            /* OpenSSL groups list, NULL = default */
    int sni_strict;          /* refuse unknown or missing names */
    unsigned char alpn[256]; /* alpnProtocols, wire format, in order */
    size_t alpn_len;         /* its length */
    int auth;                /* enum ts_auth */
    X509_STORE *ca_store;    /* clientAuth.caFiles, or NULL */
    STACK_OF(X509_NAME) *ca_names; /* their subjects, sent in the request */
    int no_tickets;          /* disableSessionTickets */
    char *error;             /* why disabled, NULL when usable */
};

/** The built TLS configuration. */
struct ts_conf {
    int refs;                   /* references (atomic) */
    json_t *key;                /* what it was built from (reuse check) */
    struct ts_cert *certs;      /* every loaded certificate */
    size_t ncerts;              /* how many */
    struct ts_map exact;        /* name -> struct ts_cert* */
    struct ts_map wild;         /* suffix of "*.suffix" -> struct ts_cert* */
    struct ts_cert dflt;        /* tls.stores.default.defaultCertificate,
                                   or the generated one (borrowed refs) */
    int dflt_owned;             /* dflt holds references of its own */
    struct ts_options **opts;   /* every option set */
    size_t nopts;               /* how many */
    struct ts_options *dopts;   /* the "default" ones */
};

/** Host names -> options of one snapshot. */
struct ts_hosts {
    struct ts_map exact; /* host -> options (TS_CONFLICT when disputed) */
    struct ts_map wild;  /* wildcard suffix -> options */
};

/** Marks a host claimed by different options. */
static char ts_conflict_mark;
#define TS_CONFLICT ((void *)&ts_conflict_mark)

/** SSL ex_data slots. */
static int ts_idx_conf = -1;  /* const struct ts_conf * */
static int ts_idx_hosts = -1; /* const struct ts_hosts * */
static int ts_idx_opts = -1;  /* chosen const struct ts_options * */
static int ts_idx_noh2 = -1;  /* non-NULL: never choose h2 (TCP routers) */
static int ts_idx_alpn01 = -1; /* non-NULL when serving acme-tls/1 */
static pthread_once_t ts_once = PTHREAD_ONCE_INIT;

/* Allocates the ex_data slots (once). */
static void ts_init_indexes(void)
{
    ts_idx_conf = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ts_idx_hosts = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ts_idx_opts = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ts_idx_noh2 = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ts_idx_alpn01 = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---------------------------------------------------------------- maps */

/* FNV-1a over s[0..len), lowercased. */
static uint64_t ts_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)tolower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot for key s[0..len) (its own or the empty one it would take). */
static size_t ts_map_slot(const struct ts_map *m, const char *s, size_t len)
{
    size_t i = (size_t)ts_hash(s, len) & (m->cap - 1);

    while (m->keys[i] &&
           (strlen(m->keys[i]) != len || strncasecmp(m->keys[i], s, len) != 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

/* The value for s[0..len), or NULL. */
static void *ts_map_get(const struct ts_map *m, const char *s, size_t len)
{
    size_t i;

    if (!m->cap) return NULL;
    i = ts_map_slot(m, s, len);
    return m->keys[i] ? m->vals[i] : NULL;
}

/* Sets s -> v (replace = 0 keeps an existing value).  0, 1 when the key
 * existed, -1 out of memory. */
static int ts_map_put(struct ts_map *m, const char *s, size_t len, void *v, int replace)
{
    size_t i;

    if ((m->n + 1) * 2 > m->cap) {
        struct ts_map g = {0};
        g.cap = m->cap ? m->cap * 2 : 16;
        g.keys = calloc(g.cap, sizeof(char *));
        g.vals = calloc(g.cap, sizeof(void *));
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return -1;
        }
        for (i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = ts_map_slot(&g, m->keys[i], strlen(m->keys[i]));
            g.keys[j] = m->keys[i];
            g.vals[j] = m->vals[i];
        }
        g.n = m->n;
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    i = ts_map_slot(m, s, len);
    if (m->keys[i]) {
        if (replace) m->vals[i] = v;
        return 1;
    }
    m->keys[i] = strndup(s, len);
    if (!m->keys[i]) return -1;
    for (char *p = m->keys[i]; *p; p++) *p = (char)tolower((unsigned char)*p);
    m->vals[i] = v;
    m->n++;
    return 0;
}

/* Frees the map's keys and arrays. */
static void ts_map_free(struct ts_map *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* The document that defined key ("certificates[2]", "options.foo") in
 * source s, or NULL. */
static const char *ts_origin(const struct ts_source *s, const char *key)
{
    return s->origins ? json_string_value(json_object_get(s->origins, key)) : NULL;
}

/* Logs the errors of a session, each prefixed with the document that
 * defined the object (key in the origins), and counts them. */
static void ts_log_errors(struct conf_session *cs, const struct ts_source *s, size_t *nerrors,
                          const char *suffix)
{
    for (size_t i = 0; i < conf_session_nerrors(cs); i++) {
        const char *e = conf_session_error(cs, i), *org = NULL;
        char key[64];
        unsigned idx;
        /* "tls.certificates[3].certFile: ..." -> origin of certificates[3] */
        if (sscanf(e, "tls.certificates[%u]", &idx) == 1) {
            snprintf(key, sizeof(key), "tls.certificates[%u]", idx);
            org = ts_origin(s, key);
        }
        if (!org && s->origins) {
            const char *k;
            json_t *v;
            json_object_foreach(s->origins, k, v) { /* any document of it */
                org = json_string_value(v);
                break;
            }
        }
        log_error("config", "%s%s%s%s", org ? org : "", org ? ": " : "", e, suffix);
        (*nerrors)++;
    }
}

/* ---------------------------------------------------------------- certificates */

/* Indexes the names of cert c (DNS SANs, else the CN).  0 / -1. */
static int ts_index_cert(struct ts_conf *tc, struct ts_cert *c)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(c->leaf, NID_subject_alt_name, NULL, NULL);
    int ndns = 0, rc = 0;

    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        const char *n;
        size_t len;
        if (g->type != GEN_DNS) continue;
        n = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        len = (size_t)ASN1_STRING_length(g->d.dNSName);
        if (!len || memchr(n, '\0', len)) continue;
        ndns++;
        if (len > 2 && n[0] == '*' && n[1] == '.') {
            if (ts_map_put(&tc->wild, n + 2, len - 2, c, 0) < 0) rc = -1;
        } else if (ts_map_put(&tc->exact, n, len, c, 0) < 0) {
            rc = -1;
        }
    }
    GENERAL_NAMES_free(sans);
    if (ndns == 0) {
        char cn[256];
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(c->leaf), NID_commonName, cn,
                                            sizeof(cn));
        if (len > 2 && cn[0] == '*' && cn[1] == '.') {
            if (ts_map_put(&tc->wild, cn + 2, (size_t)len - 2, c, 0) < 0) rc = -1;
        } else if (len > 0 && ts_map_put(&tc->exact, cn, (size_t)len, c, 0) < 0) {
            rc = -1;
        }
    }
    ERR_clear_error();
    return rc;
}

/* Frees the references of one certificate. */
static void ts_cert_clear(struct ts_cert *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->chain, X509_free);
    EVP_PKEY_free(c->key);
    memset(c, 0, sizeof(*c));
}

/* Reads the certificates list of one source.  Errors are logged. */
static void ts_read_certs(struct ts_conf *tc, const struct ts_source *s, size_t *cap,
                          size_t *nerrors)
{
    struct conf_session *cs = conf_session_new("tls");
    const relais_cfg *root = conf_session_root(cs, s->tls);
    const relais_cfg *list = conf_cfg_get(root, "certificates");
    char err[400];

    if (!list) goto out;
    if (conf_cfg_type(list) != RELAIS_CFG_LIST) {
        conf_cfg_error(list, NULL, "expected a list of {certFile, keyFile}");
        goto out;
    }
    for (size_t i = 0; i < conf_cfg_len(list); i++) {
        const relais_cfg *it = conf_cfg_at(list, i, NULL);
        const char *cf = NULL, *kf = NULL;
        struct ts_cert c = {0};
        int bad = 0;
        if (conf_cfg_type(it) != RELAIS_CFG_MAP) {
            conf_cfg_error(it, NULL, "expected a map with certFile and keyFile");
            continue;
        }
        if (conf_cfg_string(it, "certFile", &cf) != RELAIS_CFG_OK) {
            if (!conf_cfg_get(it, "certFile")) conf_cfg_error(it, "certFile", "missing");
            bad = 1;
        }
        if (conf_cfg_string(it, "keyFile", &kf) != RELAIS_CFG_OK) {
            if (!conf_cfg_get(it, "keyFile")) conf_cfg_error(it, "keyFile", "missing");
            bad = 1;
        }
        if (bad) continue;
        if (tls_load_cert(cf, kf, &c.leaf, &c.chain, &c.key, err, sizeof(err)) < 0) {
            /* "certFile: /x: No such file" -> the key path of that field */
            char *colon = strchr(err, ':');
            if (colon && (!strncmp(err, "certFile", 8) || !strncmp(err, "keyFile", 7))) {
                *colon = '\0';
                conf_cfg_error(it, err, "%s", colon + 2);
            } else {
                conf_cfg_error(it, NULL, "%s", err);
            }
            continue;
        }
        if (tc->ncerts >= TS_MAX_CERTS) {
            conf_cfg_error(it, NULL, "more than %d certificates", TS_MAX_CERTS);
            ts_cert_clear(&c);
            break;
        }
        if (tc->ncerts == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct ts_cert *n = realloc(tc->certs, nc * sizeof(*n));
            if (!n) {
                ts_cert_clear(&c);
                break;
            }
            tc->certs = n;
            *cap = nc;
        }
        tc->certs[tc->ncerts++] = c;
    }
out:
    ts_log_errors(cs, s, nerrors, " (certificate skipped)");
    conf_session_free(cs);
}

/* Reads tls.stores.default.defaultCertificate of one source into tc->dflt
 * (the first source that sets it wins). */
static void ts_read_store(struct ts_conf *tc, const struct ts_source *s, size_t *nerrors)
{
    struct conf_session *cs = conf_session_new("tls");
    const relais_cfg *root = conf_session_root(cs, s->tls);
    const relais_cfg *stores = conf_cfg_get(root, "stores");
    const relais_cfg *d, *dc;
    const char *cf, *kf, *k;
    char err[400];

    if (!stores) goto out;
    if (conf_cfg_type(stores) != RELAIS_CFG_MAP) {
        conf_cfg_error(stores, NULL, "expected a map of store names");
        goto out;
    }
    for (size_t i = 0; i < conf_cfg_len(stores); i++) {
        conf_cfg_at(stores, i, &k);
        if (strcasecmp(k, "default") != 0)
            conf_cfg_error(stores, k, "only the store named default exists");
    }
    d = conf_cfg_get(stores, "default");
    dc = d ? conf_cfg_get(d, "defaultCertificate") : NULL;
    if (!dc || tc->dflt.leaf) goto out;
    if (conf_cfg_string(dc, "certFile", &cf) != RELAIS_CFG_OK ||
        conf_cfg_string(dc, "keyFile", &kf) != RELAIS_CFG_OK) {
        conf_cfg_error(dc, NULL, "expected certFile and keyFile");
        goto out;
    }
    if (tls_load_cert(cf, kf, &tc->dflt.leaf, &tc->dflt.chain, &tc->dflt.key, err,
                      sizeof(err)) < 0) {
        conf_cfg_error(dc, NULL, "%s", err);
        goto out;
    }
    tc->dflt_owned = 1;
out:
    ts_log_errors(cs, s, nerrors, "");
    conf_session_free(cs);
}

/* Loads one resolver certificate from PEM text.  Logged on failure. */
static void ts_read_extra(struct ts_conf *tc, const struct ts_extra_cert *e, size_t *cap)
{
    struct ts_cert c = {0};
    char err[400];

    if (tls_load_cert(e->chain_pem, e->key_pem, &c.leaf, &c.chain, &c.key, err, sizeof(err)) < 0) {
        log_error("tls", "%s: certificate refused: %s", e->source ? e->source : "resolver", err);
        return;
    }
    if (tc->ncerts == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct ts_cert *n = realloc(tc->certs, nc * sizeof(*n));
        if (!n) {
            ts_cert_clear(&c);
            return;
        }
        tc->certs = n;
        *cap = nc;
    }
    tc->certs[tc->ncerts++] = c;
}

/* ---------------------------------------------------------------- options */

static int ts_client_hello(SSL *ssl, int *alert, void *arg);
static int ts_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg);

/* Traefik's VersionTLSxx names.  0 when unknown. */
static int ts_version(const char *s)
{
    if (!strcmp(s, "VersionTLS10")) return TLS1_VERSION;
    if (!strcmp(s, "VersionTLS11")) return TLS1_1_VERSION;
    if (!strcmp(s, "VersionTLS12")) return TLS1_2_VERSION;
    if (!strcmp(s, "VersionTLS13")) return TLS1_3_VERSION;
    return 0;
}

/* Go's curve names -> OpenSSL's group names.  NULL when unknown. */
static const char *ts_curve(const char *s)
{
    static const char *const map[][2] = {
        {"CurveP256", "P-256"}, {"secp256r1", "P-256"}, {"P256", "P-256"},
        {"CurveP384", "P-384"}, {"secp384r1", "P-384"}, {"P384", "P-384"},
        {"CurveP521", "P-521"}, {"secp521r1", "P-521"}, {"P521", "P-521"},
        {"X25519", "X25519"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcasecmp(s, map[i][0])) return map[i][1];
    return NULL;
}

/* The OpenSSL name of the TLS <= 1.2 suite with IANA (Go) name s, or
 * NULL.  1 in *tls13 when s is a TLS 1.3 suite (not configurable, as in
 * Traefik). */
static const char *ts_cipher(SSL_CTX *ctx, const char *s, int *tls13)
{
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(ctx);

    *tls13 = !strcmp(s, "TLS_AES_128_GCM_SHA256") || !strcmp(s, "TLS_AES_256_GCM_SHA384") ||
             !strcmp(s, "TLS_CHACHA20_POLY1305_SHA256");
    for (int i = 0; all && i < sk_SSL_CIPHER_num(all); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
        const char *std = SSL_CIPHER_standard_name(c);
        if (std && !strcmp(std, s)) return SSL_CIPHER_get_name(c);
    }
    return NULL;
}

/* Frees one option set; NULL is a no-op. */
static void ts_options_free(struct ts_options *o)
{
    if (!o) return;
    free(o->name);
    SSL_CTX_free(o->ctx);
    free(o->ciphers);
    free(o->groups);
    X509_STORE_free(o->ca_store);
    sk_X509_NAME_pop_free(o->ca_names, X509_NAME_free);
    free(o->error);
    free(o);
}

/* Reads clientAuth into o.  Errors go to the session. */
static void ts_read_client_auth(struct ts_options *o, const relais_cfg *ca)
{
    static const char *const types[] = {"NoClientCert", "RequestClientCert",
                                        "RequireAnyClientCert", "VerifyClientCertIfGiven",
                                        "RequireAndVerifyClientCert"};
    const relais_cfg *files = conf_cfg_get(ca, "caFiles");
    const char *s, *k;
    int typed = 0;

    for (size_t i = 0; i < conf_cfg_len(ca); i++) {
        conf_cfg_at(ca, i, &k);
        if (strcasecmp(k, "caFiles") && strcasecmp(k, "clientAuthType"))
            conf_cfg_error(ca, k, "unknown option (expected caFiles, clientAuthType)");
    }
    switch (conf_cfg_string(ca, "clientAuthType", &s)) {
    case RELAIS_CFG_OK: {
        size_t i;
        for (i = 0; i < 5 && strcmp(s, types[i]); i++) {}
        if (i == 5)
            conf_cfg_error(ca, "clientAuthType",
                           "expected NoClientCert, RequestClientCert, RequireAnyClientCert, "
                           "VerifyClientCertIfGiven or RequireAndVerifyClientCert, got \"%s\"", s);
        else
            o->auth = (int)i;
        typed = 1;
        break;
    }
    case RELAIS_CFG_MISSING:
        break;
    default:
        return;
    }
    if (files && conf_cfg_type(files) != RELAIS_CFG_LIST) {
        conf_cfg_error(files, NULL, "expected a list of CA files (or PEM text)");
        return;
    }
    if (files && conf_cfg_len(files) > TS_MAX_CAFILES) {
        conf_cfg_error(files, NULL, "at most %d CA files", TS_MAX_CAFILES);
        return;
    }
    if (files && conf_cfg_len(files) > 0) {
        o->ca_store = X509_STORE_new();
        o->ca_names = sk_X509_NAME_new_null();
        if (!o->ca_store || !o->ca_names) return;
        for (size_t i = 0; i < conf_cfg_len(files); i++) {
            const relais_cfg *f = conf_cfg_at(files, i, NULL);
            BIO *b;
            X509 *x;
            int n = 0;
            if (conf_cfg_string(f, NULL, &s) != RELAIS_CFG_OK) continue;
            b = strncmp(s, "-----BEGIN", 10) ? BIO_new_file(s, "r") : BIO_new_mem_buf(s, -1);
            if (!b) {
                conf_cfg_error(f, NULL, "%s: cannot be read", s);
                ERR_clear_error();
                continue;
            }
            while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
                X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));
                X509_STORE_add_cert(o->ca_store, x);
                if (nm && !sk_X509_NAME_push(o->ca_names, nm)) X509_NAME_free(nm);
                X509_free(x);
                n++;
            }
            ERR_clear_error();
            BIO_free(b);
            if (n == 0) conf_cfg_error(f, NULL, "no PEM certificate found");
        }
        /* CA files without a type: verify what is given, as Traefik
         * treats them as a request to check client certificates */
        if (!typed) o->auth = TS_REQUIRE_AND_VERIFY_CLIENT_CERT;
    }
    if ((o->auth == TS_VERIFY_CLIENT_CERT_IF_GIVEN ||
         o->auth == TS_REQUIRE_AND_VERIFY_CLIENT_CERT) && !o->ca_store)
        conf_cfg_error(ca, "caFiles", "clientAuthType %s needs caFiles", types[o->auth]);
}

/* Builds one option set from its map (name qualified).  Never NULL but
 * for memory; errors end up in o->error. */
static struct ts_options *ts_read_options(const char *name, json_t *v, const char *origin,
                                          size_t *nerrors)
{
    struct ts_options *o = calloc(1, sizeof(*o));
    char path[600], list[2048];
    struct conf_session *cs;
    const relais_cfg *root, *n;
    const char *s, *k;
    static const char *const known[] = {
        "minVersion", "maxVersion", "cipherSuites", "curvePreferences", "sniStrict",
        "alpnProtocols", "clientAuth", "preferServerCipherSuites", "disableSessionTickets", NULL};

    if (!o) return NULL;
    o->name = strdup(name);
    o->min_version = TLS1_2_VERSION;
    snprintf(path, sizeof(path), "tls.options.%s", name);
    cs = conf_session_new(path);
    root = conf_session_root(cs, v);
    o->ctx = SSL_CTX_new(TLS_server_method());
    if (!o->name || !o->ctx) {
        ts_options_free(o);
        conf_session_free(cs);
        return NULL;
    }
    tls_server_ctx_setup(o->ctx);
    {
        /* Traefik's default ALPN list (alpnProtocols replaces it): h2,
           http/1.1, acme-tls/1 */
        static const unsigned char d[] = "\x02h2\x08http/1.1\x0a" "acme-tls/1";
        memcpy(o->alpn, d, sizeof(d) - 1);
        o->alpn_len = sizeof(d) - 1;
    }
    if (json_is_null(v)) goto build;
    if (conf_cfg_type(root) != RELAIS_CFG_MAP) {
        conf_cfg_error(root, NULL, "expected a map of TLS options");
        goto done;
    }
    for (size_t i = 0; i < conf_cfg_len(root); i++) {
        size_t j;
        conf_cfg_at(root, i, &k);
        for (j = 0; known[j] && strcasecmp(known[j], k); j++) {}
        if (!known[j]) conf_cfg_error(root, k, "unknown TLS option");
    }
    if (conf_cfg_string(root, "minVersion", &s) == RELAIS_CFG_OK) {
        if (!(o->min_version = ts_version(s)))
            conf_cfg_error(root, "minVersion", "expected VersionTLS10 to VersionTLS13, got \"%s\"", s);
    }
    if (conf_cfg_string(root, "maxVersion", &s) == RELAIS_CFG_OK) {
        if (!(o->max_version = ts_version(s)))
            conf_cfg_error(root, "maxVersion", "expected VersionTLS10 to VersionTLS13, got \"%s\"", s);
    }
    if (o->max_version && o->min_version > o->max_version)
        conf_cfg_error(root, "maxVersion", "lower than minVersion");
    conf_cfg_bool(root, "sniStrict", &o->sni_strict);
    conf_cfg_bool(root, "disableSessionTickets", &o->no_tickets);
    {
        int psc;
        conf_cfg_bool(root, "preferServerCipherSuites", &psc); /* deprecated, ignored */
    }
    if ((n = conf_cfg_get(root, "cipherSuites")) != NULL) {
        size_t used = 0;
        list[0] = '\0';
        if (conf_cfg_type(n) != RELAIS_CFG_LIST) {
            conf_cfg_error(n, NULL, "expected a list of cipher suite names");
        } else {
            for (size_t i = 0; i < conf_cfg_len(n); i++) {
                const relais_cfg *it = conf_cfg_at(n, i, NULL);
                const char *ossl;
                int t13;
                if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
                ossl = ts_cipher(o->ctx, s, &t13);
                if (t13) continue; /* TLS 1.3 suites are not configurable */
                if (!ossl) {
                    conf_cfg_error(it, NULL, "unknown cipher suite \"%s\"", s);
                    continue;
                }
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         used ? ":" : "", ossl);
                if (used >= sizeof(list)) {
                    conf_cfg_error(n, NULL, "too many cipher suites");
                    break;
                }
            }
            if (list[0]) o->ciphers = strdup(list);
        }
    }
    if ((n = conf_cfg_get(root, "curvePreferences")) != NULL) {
        size_t used = 0;
        list[0] = '\0';
        if (conf_cfg_type(n) != RELAIS_CFG_LIST) {
            conf_cfg_error(n, NULL, "expected a list of curve names");
        } else {
            for (size_t i = 0; i < conf_cfg_len(n); i++) {
                const relais_cfg *it = conf_cfg_at(n, i, NULL);
                const char *g;
                if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
                if (!(g = ts_curve(s))) {
                    conf_cfg_error(it, NULL,
                                   "unknown curve \"%s\" (expected CurveP256, CurveP384, "
                                   "CurveP521 or X25519)", s);
                    continue;
                }
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         used ? ":" : "", g);
                if (used >= sizeof(list)) break;
            }
            if (list[0]) o->groups = strdup(list);
        }
    }
    if ((n = conf_cfg_get(root, "alpnProtocols")) != NULL) {
        if (conf_cfg_type(n) != RELAIS_CFG_LIST) {
            conf_cfg_error(n, NULL, "expected a list of protocol names");
        } else if (conf_cfg_len(n) > TS_MAX_ALPN) {
            conf_cfg_error(n, NULL, "at most %d protocols", TS_MAX_ALPN);
        } else {
            o->alpn_len = 0;
            for (size_t i = 0; i < conf_cfg_len(n); i++) {
                const relais_cfg *it = conf_cfg_at(n, i, NULL);
                size_t l;
                if (conf_cfg_string(it, NULL, &s) != RELAIS_CFG_OK) continue;
                l = strlen(s);
                if (l == 0 || l > 255 || o->alpn_len + 1 + l > sizeof(o->alpn)) {
                    conf_cfg_error(it, NULL, "bad protocol name");
                    continue;
                }
                o->alpn[o->alpn_len++] = (unsigned char)l;
                memcpy(o->alpn + o->alpn_len, s, l);
                o->alpn_len += l;
            }
        }
    }
    if ((n = conf_cfg_get(root, "clientAuth")) != NULL) {
        if (conf_cfg_type(n) != RELAIS_CFG_MAP)
            conf_cfg_error(n, NULL, "expected a map (caFiles, clientAuthType)");
        else
            ts_read_client_auth(o, n);
    }
build:
    if (!conf_session_nerrors(cs)) {
        if (!o->ciphers) /* Go's defaults: AEAD suites, CBC ones below 1.2 */
            o->ciphers = strdup(o->min_version < TLS1_2_VERSION
                                    ? "ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES+SHA1"
                                    : "ECDHE+AESGCM:ECDHE+CHACHA20");
        if (!o->ciphers || SSL_CTX_set_cipher_list(o->ctx, o->ciphers) != 1)
            conf_cfg_error(root, "cipherSuites", "refused by OpenSSL");
        if (o->groups && SSL_CTX_set1_groups_list(o->ctx, o->groups) != 1)
            conf_cfg_error(root, "curvePreferences", "refused by OpenSSL");
        SSL_CTX_set_min_proto_version(o->ctx, o->min_version);
        SSL_CTX_set_max_proto_version(o->ctx, o->max_version);
        /* below TLS 1.2 OpenSSL 3 needs security level 0 (SHA-1) */
        if (o->min_version < TLS1_2_VERSION) SSL_CTX_set_security_level(o->ctx, 0);
        if (o->no_tickets) SSL_CTX_set_options(o->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_client_hello_cb(o->ctx, ts_client_hello, NULL);
        SSL_CTX_set_alpn_select_cb(o->ctx, ts_alpn_select, NULL);
        ERR_clear_error();
    }
done:
    if (conf_session_nerrors(cs)) {
        size_t len = 0, cnt = conf_session_nerrors(cs);
        for (size_t i = 0; i < cnt; i++) len += strlen(conf_session_error(cs, i)) + 2;
        o->error = malloc(len + 1);
        if (o->error) o->error[0] = '\0';
        for (size_t i = 0; i < cnt; i++) {
            log_error("config", "%s%sTLS options %s disabled: %s", origin ? origin : "",
                      origin ? ": " : "", name, conf_session_error(cs, i));
            if (o->error) {
                if (i) strcat(o->error, "; ");
                strcat(o->error, conf_session_error(cs, i));
            }
        }
        if (!o->error) o->error = strdup("invalid");
        (*nerrors)++;
    }
    conf_session_free(cs);
    return o;
}

/* The `options` map of a tls section, or NULL. */
static json_t *ts_child(json_t *tls, const char *key)
{
    const char *k;
    json_t *v;

    json_object_foreach(tls, k, v)
        if (!strcasecmp(k, key)) return v;
    return NULL;
}

/* ---------------------------------------------------------------- build */

/* Adds "path@mtime" to files for every string in v that names a regular
 * file (certificates, keys, CA files), so that a file replaced on disk
 * makes the next build load it again. */
static void ts_key_files(json_t *v, json_t *files, int depth)
{
    struct stat st;
    const char *k, *str;
    json_t *c;
    size_t i;

    if (depth > 8) return;
    if (json_is_object(v)) {
        json_object_foreach(v, k, c) ts_key_files(c, files, depth + 1);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c) ts_key_files(c, files, depth + 1);
    } else if ((str = json_string_value(v)) != NULL && str[0] == '/' &&
               stat(str, &st) == 0 && S_ISREG(st.st_mode)) {
        json_array_append_new(files, json_sprintf("%s@%lld.%09ld", str,
                                                  (long long)st.st_mtim.tv_sec,
                                                  (long)st.st_mtim.tv_nsec));
    }
}

/* The reuse key: every source's tls section (with the times of the files
 * it names) and the extra certificates. */
static json_t *ts_key(const struct ts_source *src, size_t nsrc,
                      const struct ts_extra_cert *extra, size_t nextra)
{
    json_t *k = json_array();

    for (size_t i = 0; k && i < nsrc; i++) {
        json_t *files = json_array();
        ts_key_files(src[i].tls, files, 0);
        json_array_append_new(k, json_pack("{s:s, s:O?, s:o}", "p", src[i].provider, "t",
                                           src[i].tls, "f", files));
    }
    for (size_t i = 0; k && i < nextra; i++)
        json_array_append_new(k, json_pack("{s:s, s:s}", "c", extra[i].chain_pem, "k",
                                           extra[i].key_pem));
    return k;
}

/* Frees a configuration. */
static void ts_conf_free(struct ts_conf *tc)
{
    if (!tc) return;
    json_decref(tc->key);
    for (size_t i = 0; i < tc->ncerts; i++) ts_cert_clear(&tc->certs[i]);
    free(tc->certs);
    ts_map_free(&tc->exact);
    ts_map_free(&tc->wild);
    if (tc->dflt_owned) ts_cert_clear(&tc->dflt);
    for (size_t i = 0; i < tc->nopts; i++) ts_options_free(tc->opts[i]);
    free(tc->opts);
    free(tc);
}

struct ts_conf *ts_conf_build(const struct ts_source *src, size_t nsrc,
                              const struct ts_extra_cert *extra, size_t nextra,
                              struct ts_conf *prev, size_t *nerrors)
{
    struct ts_conf *tc;
    json_t *key = ts_key(src, nsrc, extra, nextra);
    size_t cap = 0, ocap = 0, i;
    const char *k;
    json_t *v;

    pthread_once(&ts_once, ts_init_indexes);
    if (!key) return NULL;
    if (prev && json_equal(prev->key, key)) {
        json_decref(key);
        ts_conf_ref(prev);
        return prev;
    }
    tc = calloc(1, sizeof(*tc));
    if (!tc) {
        json_decref(key);
        return NULL;
    }
    tc->refs = 1;
    tc->key = key;
    for (i = 0; i < nsrc; i++) {
        if (!json_is_object(src[i].tls)) continue;
        ts_read_certs(tc, &src[i], &cap, nerrors);
        ts_read_store(tc, &src[i], nerrors);
    }
    for (i = 0; i < nextra; i++) ts_read_extra(tc, &extra[i], &cap);
    for (i = 0; i < tc->ncerts; i++)
        if (ts_index_cert(tc, &tc->certs[i]) < 0) goto oom;
    if (!tc->dflt.leaf) {
        if (tls_generated_cert(&tc->dflt.leaf, &tc->dflt.key) < 0) {
            log_error("tls", "the default certificate cannot be generated");
        }
    }
    /* options: "default" is global, the others name@provider */
    for (i = 0; i < nsrc; i++) {
        json_t *opts = json_is_object(src[i].tls) ? ts_child(src[i].tls, "options") : NULL;
        if (!json_is_object(opts)) continue;
        json_object_foreach(opts, k, v) {
            char q[512];
            struct ts_options *o;
            if (!strcmp(k, "default")) snprintf(q, sizeof(q), "default");
            else if (strchr(k, '@')) snprintf(q, sizeof(q), "%s", k);
            else snprintf(q, sizeof(q), "%s@%s", k, src[i].provider);
            if (!strcmp(q, "default") && tc->dopts) {
                log_error("config", "tls.options.default is defined by more than one "
                          "provider (%s too); the first definition is kept", src[i].provider);
                (*nerrors)++;
                continue;
            }
            if (tc->nopts >= TS_MAX_OPTIONS) break;
            {
                char okey[600];
                const char *org;
                snprintf(okey, sizeof(okey), "tls.options.%s", k);
                org = ts_origin(&src[i], okey);
                o = ts_read_options(q, v, org, nerrors);
            }
            if (!o) goto oom;
            if (tc->nopts == ocap) {
                size_t nc = ocap ? ocap * 2 : 8;
                struct ts_options **n = realloc(tc->opts, nc * sizeof(*n));
                if (!n) {
                    ts_options_free(o);
                    goto oom;
                }
                tc->opts = n;
                ocap = nc;
            }
            tc->opts[tc->nopts++] = o;
            if (!strcmp(q, "default")) {
                if (o->error) { /* unusable defaults: the built-in ones serve */
                    log_error("config", "tls.options.default is invalid: the built-in "
                              "defaults apply");
                } else {
                    tc->dopts = o;
                }
            }
        }
    }
    if (!tc->dopts) {
        struct ts_options *o = ts_read_options("default", json_null(), NULL, nerrors);
        struct ts_options **n = realloc(tc->opts, (tc->nopts + 1) * sizeof(*n));
        if (!o || !n) {
            ts_options_free(o);
            if (n) tc->opts = n;
            goto oom;
        }
        tc->opts = n;
        tc->opts[tc->nopts++] = o;
        tc->dopts = o;
    }
    return tc;
oom:
    log_error("config", "out of memory while building the TLS configuration");
    ts_conf_free(tc);
    return NULL;
}

void ts_conf_ref(struct ts_conf *c)
{
    if (c) __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void ts_conf_unref(struct ts_conf *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) ts_conf_free(c);
}

const struct ts_options *ts_conf_options(const struct ts_conf *c, const char *name,
                                         const char **error)
{
    if (!strcmp(name, "default")) return c->dopts;
    for (size_t i = 0; i < c->nopts; i++) {
        if (strcmp(c->opts[i]->name, name) != 0) continue;
        if (c->opts[i]->error) {
            if (error) *error = c->opts[i]->error;
            return NULL;
        }
        return c->opts[i];
    }
    if (error) *error = NULL;
    return NULL;
}

const char *ts_options_name(const struct ts_options *o)
{
    return o ? o->name : "default";
}

/* ---------------------------------------------------------------- hosts */

struct ts_hosts *ts_hosts_new(void)
{
    return calloc(1, sizeof(struct ts_hosts));
}

int ts_hosts_add(struct ts_hosts *h, const char *host, size_t len, int wildcard,
                 const struct ts_options *o, const char *router)
{
    struct ts_map *m = wildcard ? &h->wild : &h->exact;
    void *cur = ts_map_get(m, host, len);

    if (!cur) return ts_map_put(m, host, len, (void *)o, 0) < 0 ? -1 : 0;
    if (cur != TS_CONFLICT && cur != (void *)o) {
        log_warn("tls", "router %s: host %s%.*s has other TLS options on another router; "
                 "the default TLS options are used for it", router, wildcard ? "*." : "",
                 (int)len, host);
        ts_map_put(m, host, len, TS_CONFLICT, 1);
    }
    return 0;
}

void ts_hosts_free(struct ts_hosts *h)
{
    if (!h) return;
    ts_map_free(&h->exact);
    ts_map_free(&h->wild);
    free(h);
}

const struct ts_options *ts_hosts_lookup(const struct ts_hosts *h, const char *host,
                                         size_t len)
{
    void *v;

    if (!h) return NULL;
    if (len && host[len - 1] == '.') len--;
    v = ts_map_get(&h->exact, host, len);
    if (!v) {
        const char *dot = memchr(host, '.', len);
        if (dot && dot > host) v = ts_map_get(&h->wild, dot + 1, len - (size_t)(dot + 1 - host));
    }
    return v == TS_CONFLICT ? NULL : v;
}

/* ---------------------------------------------------------------- ALPN-01 */

/** One TLS-ALPN-01 challenge certificate. */
struct ts_alpn01 {
    char *domain;  /* lowercase */
    X509 *cert;    /* the challenge certificate */
    EVP_PKEY *key; /* its key */
};

static pthread_mutex_t ts_alpn01_lock = PTHREAD_MUTEX_INITIALIZER; /* guards below */
static struct ts_alpn01 ts_alpn01_v[TS_MAX_ALPN01]; /* challenges, domain NULL = free */
static size_t ts_alpn01_n;                          /* slots in use */

int ts_alpn01_set(const char *domain, const char *cert_pem, const char *key_pem)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;
    size_t i, free_slot = TS_MAX_ALPN01;

    if (cert_pem) {
        BIO *b = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
        if (b) x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (kb) k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        BIO_free(b);
        BIO_free(kb);
        ERR_clear_error();
        if (!x || !k) goto out;
    }
    pthread_mutex_lock(&ts_alpn01_lock);
    for (i = 0; i < TS_MAX_ALPN01; i++) {
        struct ts_alpn01 *a = &ts_alpn01_v[i];
        if (!a->domain) {
            if (free_slot == TS_MAX_ALPN01) free_slot = i;
            continue;
        }
        if (strcasecmp(a->domain, domain) != 0) continue;
        free(a->domain);
        X509_free(a->cert);
        EVP_PKEY_free(a->key);
        memset(a, 0, sizeof(*a));
        ts_alpn01_n--;
        if (free_slot == TS_MAX_ALPN01) free_slot = i;
    }
    if (!x) {
        rc = 0;
    } else if (free_slot < TS_MAX_ALPN01 && (ts_alpn01_v[free_slot].domain = strdup(domain))) {
        ts_alpn01_v[free_slot].cert = x;
        ts_alpn01_v[free_slot].key = k;
        ts_alpn01_n++;
        x = NULL;
        k = NULL;
        rc = 0;
    }
    pthread_mutex_unlock(&ts_alpn01_lock);
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* Serves the challenge certificate for name on ssl when one is set.
 * 1 when it did. */
static int ts_alpn01_use(SSL *ssl, const char *name)
{
    int done = 0;

    if (__atomic_load_n(&ts_alpn01_n, __ATOMIC_RELAXED) == 0) return 0;
    pthread_mutex_lock(&ts_alpn01_lock);
    for (size_t i = 0; i < TS_MAX_ALPN01 && !done; i++) {
        struct ts_alpn01 *a = &ts_alpn01_v[i];
        if (a->domain && !strcasecmp(a->domain, name))
            done = SSL_use_cert_and_key(ssl, a->cert, a->key, NULL, 1) == 1;
    }
    pthread_mutex_unlock(&ts_alpn01_lock);
    return done;
}

void ts_global_free(void)
{
    pthread_mutex_lock(&ts_alpn01_lock);
    for (size_t i = 0; i < TS_MAX_ALPN01; i++) {
        free(ts_alpn01_v[i].domain);
        X509_free(ts_alpn01_v[i].cert);
        EVP_PKEY_free(ts_alpn01_v[i].key);
        memset(&ts_alpn01_v[i], 0, sizeof(ts_alpn01_v[i]));
    }
    ts_alpn01_n = 0;
    pthread_mutex_unlock(&ts_alpn01_lock);
}

/* ---------------------------------------------------------------- handshake */

/* Verify callback for the modes that ask for a certificate but do not
 * check it. */
static int ts_verify_any(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

/* Reads the host_name of a server_name extension body.  0 / -1. */
static int ts_sni(const unsigned char *p, size_t len, char *out, size_t cap)
{
    size_t list, n;

    if (len < 2) return -1;
    list = ((size_t)p[0] << 8) | p[1];
    if (list + 2 != len || list < 3 || p[2] != 0) return -1;
    n = ((size_t)p[3] << 8) | p[4];
    if (n == 0 || n + 5 > len || n >= cap) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[5 + i];
        if (c <= ' ' || c >= 0x7f) return -1;
        out[i] = (char)tolower(c);
    }
    if (out[n - 1] == '.') n--;
    out[n] = '\0';
    return 0;
}

/* 1 when the client's ALPN extension offers proto. */
static int ts_offers(SSL *ssl, const char *proto)
{
    const unsigned char *p;
    size_t len, i, pl = strlen(proto);

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
                                   &p, &len) || len < 2)
        return 0;
    for (i = 2; i < len;) {
        size_t l = p[i];
        if (i + 1 + l > len) return 0;
        if (l == pl && !memcmp(p + i + 1, proto, l)) return 1;
        i += 1 + l;
    }
    return 0;
}

/* The ClientHello callback: picks options and certificate (see the top
 * of tlsstore.h).  Worker thread. */
static int ts_client_hello(SSL *ssl, int *alert, void *arg)
{
    const struct ts_conf *tc = SSL_get_ex_data(ssl, ts_idx_conf);
    const struct ts_hosts *hosts = SSL_get_ex_data(ssl, ts_idx_hosts);
    const struct ts_options *o;
    const struct ts_cert *c = NULL;
    const unsigned char *p;
    size_t len;
    char sni[256];
    int has_sni = 0;

    (void)arg;
    if (!tc) return SSL_CLIENT_HELLO_SUCCESS; /* not ours */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len)) {
        if (ts_sni(p, len, sni, sizeof(sni)) < 0) {
            *alert = SSL_AD_DECODE_ERROR;
            return SSL_CLIENT_HELLO_ERROR;
        }
        has_sni = 1;
    }
    /* TLS-ALPN-01 (RFC 8737): only the challenge certificate, only this */
    if (has_sni && ts_offers(ssl, "acme-tls/1")) {
        if (!ts_alpn01_use(ssl, sni)) {
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
        SSL_set_ex_data(ssl, ts_idx_alpn01, (void *)1);
        SSL_set_ex_data(ssl, ts_idx_opts, tc->dopts);
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    o = has_sni ? ts_hosts_lookup(hosts, sni, strlen(sni)) : NULL;
    if (!o) o = tc->dopts;
    SSL_set_ex_data(ssl, ts_idx_opts, (void *)o);
    if (o != tc->dopts) {
        SSL_set_SSL_CTX(ssl, o->ctx);
        SSL_set_options(ssl, SSL_CTX_get_options(o->ctx));
        SSL_set_min_proto_version(ssl, o->min_version);
        SSL_set_max_proto_version(ssl, o->max_version);
        if (o->min_version < TLS1_2_VERSION) SSL_set_security_level(ssl, 0);
        SSL_set_cipher_list(ssl, o->ciphers);
        if (o->groups) SSL_set1_groups_list(ssl, o->groups);
    }
    switch (o->auth) {
    case TS_REQUEST_CLIENT_CERT:
        SSL_set_verify(ssl, SSL_VERIFY_PEER, ts_verify_any);
        break;
    case TS_REQUIRE_ANY_CLIENT_CERT:
        SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, ts_verify_any);
        break;
    case TS_VERIFY_CLIENT_CERT_IF_GIVEN:
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        break;
    case TS_REQUIRE_AND_VERIFY_CLIENT_CERT:
        SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    default:
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        break;
    }
    if (o->auth != TS_NO_CLIENT_CERT) {
        if (o->ca_store) SSL_set1_verify_cert_store(ssl, o->ca_store);
        if (o->ca_names) SSL_set_client_CA_list(ssl, SSL_dup_CA_list(o->ca_names));
    }
    if (has_sni) {
        c = ts_map_get(&tc->exact, sni, strlen(sni));
        if (!c) {
            const char *dot = strchr(sni, '.');
            if (dot && dot > sni) c = ts_map_get(&tc->wild, dot + 1, strlen(dot + 1));
        }
    }
    if (!c && o->sni_strict) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        ERR_clear_error();
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (!c) c = &tc->dflt;
    if (!c->leaf || SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, 1) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        ERR_clear_error();
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* ALPN selection: the first of the options' protocols, in their order,
 * that the client offers and relais speaks (http/1.1 for now; h2 once
 * the HTTP/2 front end exists).  No overlap: no ALPN in the answer. */
static int ts_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct ts_options *o = SSL_get_ex_data(ssl, ts_idx_opts);
    size_t i, j;

    (void)arg;
    if (SSL_get_ex_data(ssl, ts_idx_alpn01)) {
        for (j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1 + in[j] > inlen) break;
            if (in[j] == 10 && !memcmp(in + j + 1, "acme-tls/1", 10)) {
                *out = in + j + 1;
                *outlen = 10;
                return SSL_TLSEXT_ERR_OK;
            }
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (!o) return SSL_TLSEXT_ERR_NOACK;
    for (i = 0; i < o->alpn_len; i += 1u + o->alpn[i]) {
        const unsigned char *p = o->alpn + i + 1;
        size_t l = o->alpn[i];
        /* what relais speaks (a TCP router's server speaks its own
           protocol: http/1.1 at most, never h2 unasked) */
        if (!(l == 8 && !memcmp(p, "http/1.1", 8)) &&
            !(l == 2 && !memcmp(p, "h2", 2) && !SSL_get_ex_data(ssl, ts_idx_noh2)))
            continue;
        for (j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1 + in[j] > inlen) break;
            if (in[j] == l && !memcmp(in + j + 1, p, l)) {
                *out = in + j + 1;
                *outlen = (unsigned char)l;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

void ts_ssl_no_h2(SSL *ssl)
{
    SSL_set_ex_data(ssl, ts_idx_noh2, (void *)1);
}

SSL *ts_ssl_new(const struct ts_conf *conf, const struct ts_hosts *hosts)
{
    SSL *ssl = SSL_new(conf->dopts->ctx);

    if (!ssl) {
        ERR_clear_error();
        return NULL;
    }
    SSL_set_ex_data(ssl, ts_idx_conf, (void *)conf);
    SSL_set_ex_data(ssl, ts_idx_hosts, (void *)hosts);
    return ssl;
}

const struct ts_options *ts_ssl_options(const SSL *ssl)
{
    return SSL_get_ex_data(ssl, ts_idx_opts);
}

int ts_ssl_is_alpn01(const SSL *ssl)
{
    return SSL_get_ex_data(ssl, ts_idx_alpn01) != NULL;
}

X509 *ts_conf_cert(const struct ts_conf *c, size_t i)
{
    if (!c) return NULL;
    if (i < c->ncerts) return c->certs[i].leaf;
    if (i == c->ncerts && c->dflt_owned) return c->dflt.leaf;
    return NULL;
}
