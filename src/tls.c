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

#include <openssl/err.h>
#include <openssl/pem.h>
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

/* 1 when v is PEM text rather than a file name. */
static int tls_is_pem(const char *v)
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

/* Adds every certificate of a file-or-content value to ctx's trust store.
 * 0, or -1 with err set. */
static int tls_load_ca(SSL_CTX *ctx, const char *v, char *err, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *b = tls_open("ca", v, err, errlen);
    X509 *x;
    int n = 0, rc = -1;

    if (!b) return -1;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1) {
            X509_free(x);
            snprintf(err, errlen, "ca: a certificate could not be added");
            goto out;
        }
        X509_free(x);
        n++;
    }
    if (n == 0) {
        snprintf(err, errlen, "ca: %s: no PEM certificate found",
                 tls_is_pem(v) ? "inline value" : v);
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    BIO_free(b);
    return rc;
}

/* Sets the certificate chain and key of ctx from file-or-content values.
 * 0, or -1 with err set. */
static int tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                         size_t errlen)
{
    BIO *cb = NULL, *kb = NULL;
    X509 *x = NULL, *extra;
    EVP_PKEY *pk = NULL;
    char why[160];
    int rc = -1;

    if (!(cb = tls_open("cert", cert, err, errlen))) goto out;
    if (!(kb = tls_open("key", key, err, errlen))) goto out;
    if (!(x = PEM_read_bio_X509(cb, NULL, NULL, NULL))) {
        snprintf(err, errlen, "cert: no PEM certificate found");
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, x) != 1) {
        snprintf(err, errlen, "cert: %s", tls_describe_error(NULL, why, sizeof(why)));
        goto out;
    }
    while ((extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            snprintf(err, errlen, "cert: chain certificate refused");
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the chain reads as an error */
    if (!(pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL))) {
        snprintf(err, errlen, "key: no PEM private key found");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "key: does not match the certificate");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
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
            if (tls_load_ca(ctx, o->ca, err, errlen) < 0) goto fail;
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
