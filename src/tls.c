/*
 * tls — see tls.h.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define TLS_CACHE_MAX 32 /* cached client contexts (oldest dropped first) */

/** One cached client context. */
struct tls_cached {
    char *key;          /* the options and file times, as one string */
    SSL_CTX *ctx;       /* the context (one reference held by the cache) */
    unsigned long used; /* cache clock at last use (for eviction) */
};

/** The client context cache (guarded by lock). */
static struct {
    pthread_mutex_t lock;                    /* guards the fields below */
    struct tls_cached slot[TLS_CACHE_MAX];   /* entries; key NULL = free */
    unsigned long clock;                     /* use counter */
} tls_cache = {PTHREAD_MUTEX_INITIALIZER, {{0}}, 0};

int tls_is_pem(const char *v)
{
    return strncmp(v, "-----BEGIN", 10) == 0;
}

/* Appends "|<value>@<mtime>" for a file-or-content value to key (cap
 * len).  Content is keyed by itself. */
static void tls_key_part(char *key, size_t len, const char *v)
{
    struct stat st;
    size_t used = strlen(key);
    long long t = 0;

    if (v && !tls_is_pem(v) && stat(v, &st) == 0)
        t = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if (used < len) snprintf(key + used, len - used, "|%s@%lld", v ? v : "-", t);
}

/* A BIO reading a file-or-content value; NULL with err set. */
static BIO *tls_open(const char *what, const char *v, char *err, size_t errlen)
{
    BIO *b = tls_is_pem(v) ? BIO_new_mem_buf(v, -1) : BIO_new_file(v, "r");

    if (!b) {
        if (tls_is_pem(v)) snprintf(err, errlen, "%s: out of memory", what);
        else snprintf(err, errlen, "%s: %s: %s", what, v, strerror(errno ? errno : ENOENT));
        ERR_clear_error();
    }
    return b;
}

int tls_store_add_pem(X509_STORE *store, const char *what, const char *v, char *err,
                      size_t errlen)
{
    char pfx[64] = "";
    BIO *b;
    X509 *x;
    int n = 0, rc = -1;

    if (what) snprintf(pfx, sizeof(pfx), "%s: ", what);
    b = tls_is_pem(v) ? BIO_new_mem_buf(v, -1) : BIO_new_file(v, "r");
    if (!b) {
        if (tls_is_pem(v)) snprintf(err, errlen, "%sout of memory", pfx);
        else snprintf(err, errlen, "%s%s: %s", pfx, v, strerror(errno ? errno : ENOENT));
        ERR_clear_error();
        return -1;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1) {
            X509_free(x);
            snprintf(err, errlen, "%sa certificate could not be added", pfx);
            goto out;
        }
        X509_free(x);
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "%s%s: no PEM certificate found", pfx,
                 tls_is_pem(v) ? "inline value" : v);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

int tls_load_cert(const char *cert, const char *key, X509 **leafp,
                  STACK_OF(X509) **chainp, EVP_PKEY **pkeyp, char *err, size_t errlen)
{
    BIO *cb = NULL, *kb = NULL;
    X509 *x = NULL, *extra;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *pk = NULL;
    int rc = -1;

    if (!(cb = tls_open("certFile", cert, err, errlen))) goto out;
    if (!(kb = tls_open("keyFile", key, err, errlen))) goto out;
    if (!(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        snprintf(err, errlen, "certFile: %s: no PEM certificate found",
                 tls_is_pem(cert) ? "inline value" : cert);
        goto out;
    }
    if (!(chain = sk_X509_new_null())) goto oom;
    while ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_num(chain) >= 16 || !sk_X509_push(chain, extra)) {
            X509_free(extra);
            snprintf(err, errlen, "certFile: more than 16 chain certificates");
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    if (!(pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
        snprintf(err, errlen, "keyFile: %s: no PEM private key found",
                 tls_is_pem(key) ? "inline value" : key);
        goto out;
    }
    if (X509_check_private_key(x, pk) != 1) {
        snprintf(err, errlen, "keyFile: the key does not match the certificate");
        goto out;
    }
    *leafp = x;
    *chainp = chain;
    *pkeyp = pk;
    x = NULL;
    chain = NULL;
    pk = NULL;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    ERR_clear_error();
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

/* Sets the certificate chain and key of ctx from file-or-content values.
 * 0, or -1 with err set. */
static int tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                         size_t errlen)
{
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *pk = NULL;
    int rc = -1;

    if (tls_load_cert(cert, key, &x, &chain, &pk, err, errlen) < 0) return -1;
    if (SSL_CTX_use_cert_and_key(ctx, x, pk, chain, 1) != 1) {
        snprintf(err, errlen, "cert: refused by OpenSSL");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pk);
    return rc;
}

/* Builds a client context (no cache).  NULL with err set. */
static SSL_CTX *tls_client_build(const struct tls_client_opts *o, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (o->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->ca && *o->ca) {
            if (tls_store_add_pem(SSL_CTX_get_cert_store(ctx), "ca", o->ca, err, errlen) < 0) goto fail;
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            snprintf(err, errlen, "the system's CA store cannot be loaded");
            goto fail;
        }
    }
    if ((o->cert && *o->cert) || (o->key && *o->key)) {
        if (!o->cert || !*o->cert || !o->key || !*o->key) {
            snprintf(err, errlen, "cert and key go together");
            goto fail;
        }
        if (tls_load_pair(ctx, o->cert, o->key, err, errlen) < 0) goto fail;
    }
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx(const struct tls_client_opts *o, char *err, size_t errlen)
{
    char key[4096];
    SSL_CTX *ctx = NULL;
    size_t i, victim = 0;

    snprintf(key, sizeof(key), "%d", o->insecure ? 1 : 0);
    tls_key_part(key, sizeof(key), o->ca);
    tls_key_part(key, sizeof(key), o->cert);
    tls_key_part(key, sizeof(key), o->key);
    pthread_mutex_lock(&tls_cache.lock);
    for (i = 0; i < TLS_CACHE_MAX; i++) {
        struct tls_cached *c = &tls_cache.slot[i];
        if (c->key && strcmp(c->key, key) == 0) {
            c->used = ++tls_cache.clock;
            SSL_CTX_up_ref(c->ctx);
            ctx = c->ctx;
            break;
        }
    }
    pthread_mutex_unlock(&tls_cache.lock);
    if (ctx) return ctx;

    ctx = tls_client_build(o, err, errlen);
    if (!ctx) return NULL;
    pthread_mutex_lock(&tls_cache.lock);
    for (i = 0; i < TLS_CACHE_MAX; i++) {
        if (!tls_cache.slot[i].key) {
            victim = i;
            break;
        }
        if (tls_cache.slot[i].used < tls_cache.slot[victim].used) victim = i;
    }
    {
        struct tls_cached *c = &tls_cache.slot[victim];
        char *k = strdup(key);
        if (k) {
            free(c->key);
            SSL_CTX_free(c->ctx);
            c->key = k;
            c->ctx = ctx;
            c->used = ++tls_cache.clock;
            SSL_CTX_up_ref(ctx);
        }
    }
    pthread_mutex_unlock(&tls_cache.lock);
    return ctx;
}

SSL *tls_client_ssl(SSL_CTX *ctx, const char *host, const unsigned char *alpn,
                    size_t alpn_len, char *err, size_t errlen)
{
    SSL *ssl = SSL_new(ctx);
    char name[256];
    size_t n = strlen(host);
    unsigned char ip[16];
    int is_ip;

    if (!ssl) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= sizeof(name)) {
        snprintf(err, errlen, "server name too long");
        goto fail;
    }
    memcpy(name, host, n);
    name[n] = '\0';
    is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    if (!is_ip && n && SSL_set_tlsext_host_name(ssl, name) != 1) {
        snprintf(err, errlen, "bad server name %s", name);
        goto fail;
    }
    if (SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        int rc = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : SSL_set1_host(ssl, name);
        if (rc != 1) {
            snprintf(err, errlen, "bad server name %s", name);
            goto fail;
        }
    }
    if (alpn && alpn_len && SSL_set_alpn_protos(ssl, alpn, (unsigned)alpn_len) != 0) {
        snprintf(err, errlen, "bad ALPN list");
        goto fail;
    }
    return ssl;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

const char *tls_describe_error(const SSL *ssl, char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

    if (!len) return buf;
    if (vr != X509_V_OK) {
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
    } else if (e) {
        const char *r = ERR_reason_error_string(e);
        if (r) snprintf(buf, len, "%s", r);
        else ERR_error_string_n(e, buf, len);
    } else {
        snprintf(buf, len, "TLS failure");
    }
    ERR_clear_error();
    return buf;
}

/* ---- generated default certificate -------------------------------------- */

static pthread_mutex_t tls_gen_lock = PTHREAD_MUTEX_INITIALIZER; /* guards tls_gen_* */
static X509 *tls_gen_cert;    /* the generated certificate, or NULL */
static EVP_PKEY *tls_gen_key; /* its key */

/* Makes a self-signed certificate for CN cn (also its only SAN when
 * san is not NULL), EC P-256, valid from now for days.  0 / -1. */
static int tls_make_selfsigned(const char *cn, const char *san, int days, X509 **xp,
                               EVP_PKEY **kp)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *nm;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int rc = -1;

    if (!k || !x) goto out;
    if (RAND_bytes(serial, sizeof(serial)) != 1) goto out;
    serial[0] &= 0x7f;
    if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto out;
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
    X509_set_pubkey(x, k);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, nm);
    if (san) {
        char v[300];
        X509_EXTENSION *ext;
        snprintf(v, sizeof(v), "DNS:%s", san);
        ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, v);
        if (!ext) goto out;
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x, k, EVP_sha256())) goto out;
    *xp = x;
    *kp = k;
    x = NULL;
    k = NULL;
    rc = 0;
out:
    ERR_clear_error();
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int tls_generated_cert(X509 **leaf, EVP_PKEY **pkey)
{
    int rc = 0;

    pthread_mutex_lock(&tls_gen_lock);
    if (!tls_gen_cert)
        rc = tls_make_selfsigned("RELAIS DEFAULT CERT", NULL, 365, &tls_gen_cert, &tls_gen_key);
    *leaf = tls_gen_cert;
    *pkey = tls_gen_key;
    pthread_mutex_unlock(&tls_gen_lock);
    return rc;
}

/* ---- session tickets ----------------------------------------------------- */

#define TLS_TICKET_KEYS 3 /* the current key and two previous ones */

/** One ticket key. */
struct tls_ticket_key {
    unsigned char name[16]; /* key name sent in the ticket */
    unsigned char aes[32];  /* AES-256-CBC key */
    unsigned char hmac[32]; /* HMAC-SHA256 key */
    int set;                /* 1 once generated */
};

static pthread_rwlock_t tls_tk_lock = PTHREAD_RWLOCK_INITIALIZER; /* guards tls_tk */
static struct tls_ticket_key tls_tk[TLS_TICKET_KEYS]; /* [0] encrypts */

/* Fills one key with random bytes.  0 / -1. */
static int tls_ticket_new(struct tls_ticket_key *k)
{
    if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
        RAND_bytes(k->hmac, sizeof(k->hmac)) != 1)
        return -1;
    k->set = 1;
    return 0;
}

void tls_tickets_rotate(void)
{
    struct tls_ticket_key k;

    if (tls_ticket_new(&k) < 0) return;
    pthread_rwlock_wrlock(&tls_tk_lock);
    memmove(&tls_tk[1], &tls_tk[0], (TLS_TICKET_KEYS - 1) * sizeof(tls_tk[0]));
    tls_tk[0] = k;
    pthread_rwlock_unlock(&tls_tk_lock);
    OPENSSL_cleanse(&k, sizeof(k));
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb):
 * enc=1 picks the current key, enc=0 finds the named one (2 = accept and
 * issue a fresh ticket: the key is old).  Any worker thread. */
static int tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ticket_key k;
    OSSL_PARAM params[3];
    int i, found = -1;

    (void)ssl;
    pthread_rwlock_rdlock(&tls_tk_lock);
    if (enc) {
        found = tls_tk[0].set ? 0 : -1;
    } else {
        for (i = 0; i < TLS_TICKET_KEYS; i++)
            if (tls_tk[i].set && !memcmp(name, tls_tk[i].name, 16)) found = i;
    }
    if (found >= 0) k = tls_tk[found];
    pthread_rwlock_unlock(&tls_tk_lock);
    if (found < 0) return enc ? -1 : 0;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            EVP_MAC_CTX_set_params(hctx, params) != 1)
            found = -1;
    } else if (EVP_DecryptInit_ex(ectx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
               EVP_MAC_CTX_set_params(hctx, params) != 1) {
        found = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    if (found < 0) return -1;
    return (!enc && found > 0) ? 2 : 1;
}

void tls_server_ctx_setup(SSL_CTX *ctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, tls_tickets_rotate);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"relais", 6);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
}

void tls_global_free(void)
{
    pthread_mutex_lock(&tls_gen_lock);
    X509_free(tls_gen_cert);
    EVP_PKEY_free(tls_gen_key);
    tls_gen_cert = NULL;
    tls_gen_key = NULL;
    pthread_mutex_unlock(&tls_gen_lock);
    pthread_rwlock_wrlock(&tls_tk_lock);
    OPENSSL_cleanse(tls_tk, sizeof(tls_tk));
    pthread_rwlock_unlock(&tls_tk_lock);
    tls_cache_clear();
}

void tls_cache_clear(void)
{
    pthread_mutex_lock(&tls_cache.lock);
    for (size_t i = 0; i < TLS_CACHE_MAX; i++) {
        free(tls_cache.slot[i].key);
        SSL_CTX_free(tls_cache.slot[i].ctx);
        tls_cache.slot[i].key = NULL;
        tls_cache.slot[i].ctx = NULL;
    }
    pthread_mutex_unlock(&tls_cache.lock);
}
