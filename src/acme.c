/*
 * acme — see acme.h.
 *
 * Pieces:
 * - crypto helpers: base64url, JWK and its thumbprint, JWS (RS256,
 *   ES256, ES384), CSR, the tls-alpn-01 certificate, key generation in a
 *   helper thread (struct acme_keygen);
 * - struct acme_xfer: one ACME exchange (GET, or a signed POST that first
 *   fetches a nonce when none is cached and retries badNonce answers);
 * - the session (struct acme): directory, then the account (stored key
 *   reused, newAccount answers 200 for a known key, 201 for a new one);
 * - struct acme_order: one wanted domain set.  It stays for the life of
 *   the resolver: IDLE while its certificate is good, running an order
 *   otherwise, BACKOFF after a failure.  The renewal timer restarts IDLE
 *   ones whose stored certificate is due.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_store.h"
#include "httpc.h"
#include "log.h"
#include "message.h"

#define ACME_MAX_BODY (2u * 1024 * 1024) /* cap on one response body */
#define ACME_MAX_NONCES 16               /* cached nonces kept */
#define ACME_MAX_BADNONCE 10             /* badNonce retries of one request */
#define ACME_MAX_POLLS 60                /* polls of one authz or order */
#define ACME_MAX_DOMAINS 100             /* names in one certificate */
#define ACME_MAX_ORDERS 10000            /* wanted domain sets */
#define ACME_HTTP_TIMEOUT_MS 30000       /* one exchange with the CA */
#define ACME_BACKOFF_MAX_S 3600          /* cap on the retry delay */
#define ACME_ACCOUNT_KEY KT_RSA2048      /* new account keys (PKCS#1 in the
                                            storage, as Traefik reads it) */
#define ACME_CHAL_WAIT_MS 30000          /* wait for a challenge hook that
                                            answered "pending" */

/** Key types (Traefik's keyType). */
enum acme_kt { KT_EC256 = 0, KT_EC384, KT_RSA2048, KT_RSA4096, KT_RSA8192 };

static const struct {
    const char *traefik; /* keyType as configured */
    const char *lego;    /* KeyType as stored in acme.json */
} acme_kt_names[] = {
    {"EC256", "P256"}, {"EC384", "P384"}, {"RSA2048", "2048"}, {"RSA4096", "4096"}, {"RSA8192", "8192"},
};

/* ====================================================================== */
/* crypto helpers                                                          */
/* ====================================================================== */

char *acme_b64url(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *d = data;
    char *out, *o;

    if (len > SIZE_MAX / 2) return NULL;
    out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) return NULL;
    o = out;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < len) v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < len) v |= d[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        if (i + 1 < len) *o++ = tbl[(v >> 6) & 63];
        if (i + 2 < len) *o++ = tbl[v & 63];
    }
    *o = '\0';
    return out;
}

/* The canonical JWK text (RFC 7638 §3.2: required members only, sorted,
 * no whitespace) for RSA (a1 = n, a2 = e) or EC (a1 = crv, a2 = x,
 * a3 = y).  A new string, or NULL. */
static char *acme_jwk_canon(const char *kty, const char *a1, const char *a2, const char *a3)
{
    char *s = NULL;
    int r;

    if (!strcmp(kty, "RSA"))
        r = asprintf(&s, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", a2, a1);
    else if (!strcmp(kty, "EC") && a3)
        r = asprintf(&s, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", a1, a2, a3);
    else
        return NULL;
    return r < 0 ? NULL : s;
}

int acme_jwk_thumbprint_members(const char *kty, const char *a1, const char *a2, const char *a3,
                                char *out, size_t outlen)
{
    unsigned char md[32];
    char *canon = acme_jwk_canon(kty, a1, a2, a3), *b;
    int rc = -1;

    if (!canon) return -1;
    if (EVP_Digest(canon, strlen(canon), md, NULL, EVP_sha256(), NULL) == 1 &&
        (b = acme_b64url(md, sizeof(md))) != NULL) {
        if (strlen(b) < outlen) {
            memcpy(out, b, strlen(b) + 1);
            rc = 0;
        }
        free(b);
    }
    free(canon);
    return rc;
}

/* base64url of a BIGNUM parameter of key, padded to pad bytes (0 = none).
 * A new string or NULL. */
static char *acme_bn_param(EVP_PKEY *key, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    unsigned char *buf = NULL;
    char *s = NULL;
    int n;

    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return NULL;
    n = pad ? pad : BN_num_bytes(bn);
    if (n <= 0) n = 1;
    buf = malloc((size_t)n);
    if (buf && BN_bn2binpad(bn, buf, n) == n) s = acme_b64url(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return s;
}

/* Fills the JWK members of key's public half (see acme_jwk_canon).  The
 * strings are new; *kty is static.  0 / -1. */
static int acme_jwk_members(EVP_PKEY *key, const char **kty, char **a1, char **a2, char **a3)
{
    *a1 = *a2 = *a3 = NULL;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        *kty = "RSA";
        *a1 = acme_bn_param(key, OSSL_PKEY_PARAM_RSA_N, 0);
        *a2 = acme_bn_param(key, OSSL_PKEY_PARAM_RSA_E, 0);
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        int bits = EVP_PKEY_get_bits(key);
        int sz = bits == 384 ? 48 : 32;
        if (bits != 256 && bits != 384) return -1;
        *kty = "EC";
        *a1 = strdup(bits == 384 ? "P-384" : "P-256");
        *a2 = acme_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, sz);
        *a3 = acme_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, sz);
        if (!*a3) goto fail;
    } else {
        return -1;
    }
    if (*a1 && *a2) return 0;
fail:
    free(*a1);
    free(*a2);
    free(*a3);
    *a1 = *a2 = *a3 = NULL;
    return -1;
}

char *acme_jwk(EVP_PKEY *key)
{
    const char *kty;
    char *a1, *a2, *a3, *s;

    if (acme_jwk_members(key, &kty, &a1, &a2, &a3) < 0) return NULL;
    s = acme_jwk_canon(kty, a1, a2, a3);
    free(a1);
    free(a2);
    free(a3);
    return s;
}

/* The thumbprint of key into out (base64url, 44 bytes + NUL).  0 / -1. */
static int acme_thumbprint(EVP_PKEY *key, char *out, size_t outlen)
{
    const char *kty;
    char *a1, *a2, *a3;
    int rc;

    if (acme_jwk_members(key, &kty, &a1, &a2, &a3) < 0) return -1;
    rc = acme_jwk_thumbprint_members(kty, a1, a2, a3, out, outlen);
    free(a1);
    free(a2);
    free(a3);
    return rc;
}

/* The JWS alg of key and its digest; NULL for unsupported keys. */
static const char *acme_alg(EVP_PKEY *key, const EVP_MD **md)
{
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        *md = EVP_sha256();
        return "RS256";
    }
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        if (EVP_PKEY_get_bits(key) == 256) {
            *md = EVP_sha256();
            return "ES256";
        }
        if (EVP_PKEY_get_bits(key) == 384) {
            *md = EVP_sha384();
            return "ES384";
        }
    }
    return NULL;
}

/* Signs data with key; for EC the DER signature is turned into the JWS
 * form r || s (RFC 7518 §3.4).  A new base64url string, or NULL. */
static char *acme_sign(EVP_PKEY *key, const EVP_MD *md, const char *data, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL, raw[96];
    size_t slen = 0;
    char *out = NULL;

    if (!ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, key) != 1 ||
        EVP_DigestSign(ctx, NULL, &slen, (const unsigned char *)data, len) != 1 ||
        !(sig = malloc(slen)) ||
        EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)data, len) != 1)
        goto done;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
        int sz = EVP_PKEY_get_bits(key) == 384 ? 48 : 32;
        if (!es) goto done;
        if (BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, sz) == sz &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + sz, sz) == sz)
            out = acme_b64url(raw, (size_t)sz * 2);
        ECDSA_SIG_free(es);
    } else {
        out = acme_b64url(sig, slen);
    }
done:
    free(sig);
    EVP_MD_CTX_free(ctx);
    return out;
}

char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload)
{
    const EVP_MD *md = NULL;
    const char *alg = acme_alg(key, &md);
    json_t *prot = NULL, *jws = NULL;
    char *ptext = NULL, *p64 = NULL, *b64 = NULL, *input = NULL, *sig = NULL, *out = NULL;

    if (!alg) return NULL;
    prot = json_pack("{ssssss}", "alg", alg, "nonce", nonce, "url", url);
    if (!prot) goto done;
    if (kid) {
        json_object_set_new(prot, "kid", json_string(kid));
    } else {
        char *jwk = acme_jwk(key);
        json_t *j = jwk ? json_loads(jwk, 0, NULL) : NULL;
        free(jwk);
        if (!j) goto done;
        json_object_set_new(prot, "jwk", j);
    }
    ptext = json_dumps(prot, JSON_COMPACT | JSON_SORT_KEYS);
    if (!ptext || !(p64 = acme_b64url(ptext, strlen(ptext)))) goto done;
    b64 = acme_b64url(payload ? payload : "", payload ? strlen(payload) : 0);
    if (!b64 || asprintf(&input, "%s.%s", p64, b64) < 0) {
        input = NULL;
        goto done;
    }
    sig = acme_sign(key, md, input, strlen(input));
    if (!sig) goto done;
    jws = json_pack("{ssssss}", "protected", p64, "payload", b64, "signature", sig);
    if (jws) out = json_dumps(jws, JSON_COMPACT);
done:
    json_decref(prot);
    json_decref(jws);
    free(ptext);
    free(p64);
    free(b64);
    free(input);
    free(sig);
    return out;
}

/* Generates a key of type kt.  NULL on failure.  Any thread. */
static EVP_PKEY *acme_keygen_now(int kt)
{
    switch (kt) {
    case KT_EC256: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case KT_EC384: return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case KT_RSA2048: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case KT_RSA8192: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)8192);
    default: return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    }
}

/* A BIO's contents as a new string, or NULL. */
static char *acme_bio_str(BIO *b)
{
    char *p, *s;
    long n = BIO_get_mem_data(b, &p);

    if (n < 0 || !(s = malloc((size_t)n + 1))) return NULL;
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

/* key in PEM (traditional form, as lego writes it), a new string or NULL. */
static char *acme_key_pem(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;

    if (b && PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL) == 1)
        s = acme_bio_str(b);
    BIO_free(b);
    return s;
}

/* Adds extension nid with value text to a certificate.  0 / -1. */
static int acme_x509_ext(X509 *x, int nid, const char *text)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    int rc;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, text);
    if (!e) return -1;
    rc = X509_add_ext(x, e, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(e);
    return rc;
}

int acme_alpn_cert(const char *domain, const char *key_auth, char **cert_pem, char **key_pem)
{
    unsigned char md[32], der[34], serial[16];
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    ASN1_OCTET_STRING *os = NULL;
    ASN1_OBJECT *obj = NULL;
    X509_EXTENSION *ext = NULL;
    BIGNUM *bn = NULL;
    BIO *b = NULL;
    char san[300];
    int rc = -1;

    *cert_pem = *key_pem = NULL;
    if (strlen(domain) > 253) return -1;
    if (EVP_Digest(key_auth, strlen(key_auth), md, NULL, EVP_sha256(), NULL) != 1) return -1;
    der[0] = 0x04; /* the extension's value is the DER OCTET STRING of the hash */
    der[1] = 0x20;
    memcpy(der + 2, md, 32);
    if (!(key = acme_keygen_now(KT_EC256)) || !(x = X509_new())) goto done;
    if (RAND_bytes(serial, sizeof(serial)) != 1) goto done;
    serial[0] &= 0x7f;
    if (!(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto done;
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)domain, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, key);
    snprintf(san, sizeof(san), "DNS:%s", domain);
    if (acme_x509_ext(x, NID_subject_alt_name, san) < 0) goto done;
    if (!(os = ASN1_OCTET_STRING_new()) || !ASN1_OCTET_STRING_set(os, der, sizeof(der)) ||
        !(obj = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1)) ||
        !(ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, os)) || X509_add_ext(x, ext, -1) != 1)
        goto done;
    if (X509_sign(x, key, EVP_sha256()) <= 0) goto done;
    if (!(b = BIO_new(BIO_s_mem())) || PEM_write_bio_X509(b, x) != 1) goto done;
    if (!(*cert_pem = acme_bio_str(b)) || !(*key_pem = acme_key_pem(key))) goto done;
    rc = 0;
done:
    if (rc < 0) {
        free(*cert_pem);
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
    }
    BIO_free(b);
    BN_free(bn);
    X509_EXTENSION_free(ext);
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The CSR (DER, base64url) for domains signed with key: CN = domains[0]
 * when it fits (64 characters), SAN = every domain.  A new string or
 * NULL. */
static char *acme_csr(EVP_PKEY *key, char *const *domains, size_t n)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *e = NULL;
    unsigned char *der = NULL;
    char *san = NULL, *out = NULL;
    size_t len = 0;
    int dlen;

    if (!req || !exts) goto done;
    for (size_t i = 0; i < n; i++) len += strlen(domains[i]) + 5;
    if (!(san = malloc(len + 1))) goto done;
    san[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(san, ",");
        strcat(san, "DNS:");
        strcat(san, domains[i]);
    }
    X509_REQ_set_version(req, 0);
    if (strlen(domains[0]) <= 64)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)domains[0], -1, -1, 0);
    if (!(e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)) ||
        !sk_X509_EXTENSION_push(exts, e))
        goto done;
    e = NULL;
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto done;
    dlen = i2d_X509_REQ(req, &der);
    if (dlen > 0) out = acme_b64url(der, (size_t)dlen);
done:
    OPENSSL_free(der);
    free(san);
    X509_EXTENSION_free(e);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return out;
}

int64_t acme_pem_not_after(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    struct tm tm;
    int64_t t = -1;

    if (x && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) t = (int64_t)timegm(&tm);
    X509_free(x);
    BIO_free(b);
    return t;
}

/* 1 when the first certificate of chain_pem matches key_pem. */
static int acme_pair_ok(const char *chain_pem, const char *key_pem)
{
    BIO *b1 = BIO_new_mem_buf(chain_pem, -1), *b2 = BIO_new_mem_buf(key_pem, -1);
    X509 *x = b1 ? PEM_read_bio_X509(b1, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = b2 ? PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL) : NULL;
    int ok = x && k && X509_check_private_key(x, k) == 1;

    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b1);
    BIO_free(b2);
    return ok;
}

/* ====================================================================== */
/* key generation in a helper thread                                       */
/* ====================================================================== */

/** One key generation running in its own thread. */
struct acme_keygen {
    pthread_t th;      /* the generating thread */
    int fds[2];        /* pipe: the thread writes one byte when done */
    struct event *ev;  /* read event on fds[0] (loop thread) */
    int kt;            /* enum acme_kt */
    EVP_PKEY *key;     /* the result (written by the thread before the
                          byte), NULL on failure */
    void (*done)(void *owner, EVP_PKEY *key); /* gets the key (owned) */
    void *owner;       /* its argument */
};

/* The thread: generates, then signals. */
static void *acme_keygen_main(void *arg)
{
    struct acme_keygen *kg = arg;
    char c = 1;

    kg->key = acme_keygen_now(kg->kt);
    while (write(kg->fds[1], &c, 1) < 0 && errno == EINTR) {}
    return NULL;
}

/* Frees kg after its thread ended (joins it). */
static void acme_keygen_free(struct acme_keygen *kg)
{
    if (!kg) return;
    pthread_join(kg->th, NULL);
    if (kg->ev) event_free(kg->ev);
    close(kg->fds[0]);
    close(kg->fds[1]);
    EVP_PKEY_free(kg->key);
    free(kg);
}

/* Loop side: the thread has finished. */
static void acme_keygen_ready(evutil_socket_t fd, short what, void *arg)
{
    struct acme_keygen *kg = arg;
    void (*done)(void *, EVP_PKEY *) = kg->done;
    void *owner = kg->owner;
    EVP_PKEY *key;

    (void)fd;
    (void)what;
    pthread_join(kg->th, NULL);
    key = kg->key;
    kg->key = NULL;
    if (kg->ev) event_free(kg->ev);
    close(kg->fds[0]);
    close(kg->fds[1]);
    free(kg);
    done(owner, key);
}

/* Starts generating a key of type kt; done(owner, key) follows on the loop
 * (key NULL on failure).  NULL when the thread cannot start. */
static struct acme_keygen *acme_keygen_start(struct event_base *base, int kt,
                                             void (*done)(void *, EVP_PKEY *), void *owner)
{
    struct acme_keygen *kg = calloc(1, sizeof(*kg));

    if (!kg) return NULL;
    kg->kt = kt;
    kg->done = done;
    kg->owner = owner;
    if (pipe2(kg->fds, O_CLOEXEC) < 0) {
        free(kg);
        return NULL;
    }
    kg->ev = event_new(base, kg->fds[0], EV_READ, acme_keygen_ready, kg);
    if (!kg->ev || event_add(kg->ev, NULL) < 0 ||
        pthread_create(&kg->th, NULL, acme_keygen_main, kg) != 0) {
        if (kg->ev) event_free(kg->ev);
        close(kg->fds[0]);
        close(kg->fds[1]);
        free(kg);
        return NULL;
    }
    return kg;
}

/* ====================================================================== */
/* state                                                                   */
/* ====================================================================== */

struct acme;
struct acme_xfer;

/** What an exchange calls when it ends: err 0 with a response (any
 *  status), or -1 with msg (transport failure). */
typedef void (*acme_xfer_cb)(void *owner, struct acme_xfer *x, int err, const char *msg);

/** Phases of an exchange. */
enum { XF_IDLE = 0, XF_NONCE, XF_MAIN };

/** One exchange with the CA (reused by its owner, one at a time). */
struct acme_xfer {
    struct acme *a;          /* the resolver */
    void *owner;             /* order or resolver, passed to done */
    acme_xfer_cb done;       /* the end */
    relais_http_call *call;  /* the HTTP call in flight, or NULL */
    struct event *fail_ev;   /* reports a failure to start from the loop */
    char fail_msg[160];      /* that failure */
    int phase;               /* XF_* */
    int plain_get;           /* unsigned GET (the directory) */
    int use_jwk;             /* sign with the jwk (newAccount), not kid */
    int want_pem;            /* Accept: application/pem-certificate-chain */
    int badnonce;            /* badNonce retries made */
    char *url;               /* the target (owned) */
    char *payload;           /* JSON payload (owned), NULL = POST-as-GET */
    int status;              /* response status */
    char *location;          /* Location (owned) or NULL */
    int retry_after;         /* Retry-After in seconds, or -1 */
    char *body;              /* response body (owned, NUL-terminated) */
    size_t len;              /* its length */
    size_t cap;              /* allocated */
    int overflow;            /* the body passed ACME_MAX_BODY */
};

/** States of a wanted domain set. */
enum acme_ostate {
    OS_IDLE = 0,   /* certificate stored and good (or nothing to do) */
    OS_WAIT,       /* waiting for the session (directory, account) */
    OS_KEYGEN,     /* generating the certificate key */
    OS_NEWORDER,   /* POST newOrder */
    OS_AUTHZ,      /* POST-as-GET an authorization */
    OS_CHALLENGE,  /* POST {} to the challenge */
    OS_POLL_AUTHZ, /* polling the authorization */
    OS_FINALIZE,   /* POST finalize */
    OS_POLL_ORDER, /* polling the order */
    OS_CERT,       /* downloading the certificate */
    OS_BACKOFF,    /* failed; retried when the timer fires */
    OS_CHAL_WAIT   /* the challenge hook is publishing (acme_challenge_ready) */
};

/** One wanted domain set and the order that gets its certificate. */
struct acme_order {
    struct acme *a;            /* the resolver */
    struct acme_order *next;   /* list of the resolver */
    char **domains;            /* main first, then SANs (owned) */
    size_t n;                  /* how many */
    int how;                   /* enum acme_challenge of the next attempt */
    int state;                 /* enum acme_ostate */
    unsigned failures;         /* consecutive failed attempts */
    struct acme_xfer x;        /* the exchange */
    struct event *timer;       /* polls and backoff */
    struct acme_keygen *kg;    /* key generation in flight, or NULL */
    EVP_PKEY *key;             /* the certificate key of this attempt */
    char *order_url;           /* the order (Location of newOrder) */
    char *finalize_url;        /* its finalize URL */
    char *cert_url;            /* its certificate URL */
    char **authz;              /* authorization URLs (owned) */
    size_t nauthz;             /* how many */
    size_t iauthz;             /* the one being worked on */
    char *chal_url;            /* the challenge being answered */
    char *chal_token;          /* its token (http-01 hook key) */
    char *chal_domain;         /* its identifier (tls-alpn-01 hook key) */
    int chal_set;              /* hook set: ACME_HTTP01 / ACME_TLSALPN01 / 0 */
    int polls;                 /* polls made in the current poll state */
    int chal_answered;         /* the CA shows the challenge answered
                                  already: poll instead of POST */
};

/** Session states. */
enum { SS_IDLE = 0, SS_DIR, SS_KEYGEN, SS_ACCOUNT, SS_READY };

/** One certificate resolver. */
struct acme {
    struct event_base *base;   /* the loop */
    struct acme_hooks hooks;   /* the caller's hooks (copied) */
    char who[96];              /* "acme RESOLVER" for logs */
    char *resolver;            /* resolver name (storage section) */
    char *ca_server;           /* directory URL */
    char *email;               /* contact, or NULL */
    int kt;                    /* certificate key type (enum acme_kt) */
    char *ca_file;             /* CA trusted for the CA's HTTPS, or NULL */
    int insecure;              /* skip verification of the CA */
    char *storage;             /* storage file */
    int64_t renew_before_s;    /* renewal window */
    int64_t check_ms;          /* renewal check period */
    struct as_data store;      /* our storage section */
    int sstate;                /* SS_* */
    struct acme_xfer sx;       /* the session's exchange */
    struct acme_keygen *skg;   /* account key generation, or NULL */
    char *url_nonce;           /* directory: newNonce */
    char *url_account;         /* directory: newAccount */
    char *url_order;           /* directory: newOrder */
    EVP_PKEY *akey;            /* account key, or NULL */
    char *kid;                 /* account URL once registered */
    char thumb[64];            /* JWK thumbprint of akey */
    char *nonces[ACME_MAX_NONCES]; /* cached unused nonces */
    size_t nnonces;            /* how many */
    struct acme_order *orders; /* wanted domain sets */
    size_t norders;            /* how many */
    struct event *renew_timer; /* periodic renewal check */
    struct event *start_ev;    /* delivers the stored certificates */
    struct acme_storage ext;   /* external storage (ext.save set), or the
                                  file (ext.save NULL) */
    int active;                /* 1 = may order and renew (always with the
                                  file; acme_set_active otherwise) */
};

static void acme_order_fail(struct acme_order *o, const char *fmt, ...) RELAIS_PRINTF(2, 3);
static void acme_order_begin(struct acme_order *o);
static void acme_order_start(struct acme_order *o);
static void acme_session_kick(struct acme *a);

/* ====================================================================== */
/* exchanges                                                               */
/* ====================================================================== */

static void acme_xfer_send(struct acme_xfer *x);

/* Keeps a nonce for later (the oldest is dropped when full). */
static void acme_nonce_push(struct acme *a, const char *v, size_t len)
{
    char *s;

    if (len == 0 || len > 256 || !(s = strndup(v, len))) return;
    if (a->nnonces == ACME_MAX_NONCES) {
        free(a->nonces[0]);
        memmove(a->nonces, a->nonces + 1, (ACME_MAX_NONCES - 1) * sizeof(char *));
        a->nnonces--;
    }
    a->nonces[a->nnonces++] = s;
}

/* Takes the newest cached nonce (owned by the caller), or NULL. */
static char *acme_nonce_pop(struct acme *a)
{
    return a->nnonces ? a->nonces[--a->nnonces] : NULL;
}

/* Sets x up for owner (once). */
static int acme_xfer_init(struct acme_xfer *x, struct acme *a, void *owner);

/* Forgets the response of the previous attempt. */
static void acme_xfer_reset_resp(struct acme_xfer *x)
{
    x->status = 0;
    free(x->location);
    x->location = NULL;
    x->retry_after = -1;
    x->len = 0;
    x->overflow = 0;
    if (x->body) x->body[0] = '\0';
}

/* Cancels what is in flight; x can be reused. */
static void acme_xfer_cancel(struct acme_xfer *x)
{
    hc_cancel(x->call);
    x->call = NULL;
    if (x->fail_ev) event_del(x->fail_ev);
    x->phase = XF_IDLE;
}

/* Frees x's resources (not x). */
static void acme_xfer_clear(struct acme_xfer *x)
{
    acme_xfer_cancel(x);
    if (x->fail_ev) event_free(x->fail_ev);
    x->fail_ev = NULL;
    free(x->url);
    free(x->payload);
    free(x->location);
    free(x->body);
    x->url = x->payload = x->location = x->body = NULL;
}

/* Ends the exchange: calls done. */
static void acme_xfer_end(struct acme_xfer *x, int err, const char *msg)
{
    x->phase = XF_IDLE;
    x->done(x->owner, x, err, msg);
}

/* Deferred failure to start a call. */
static void acme_xfer_failed(evutil_socket_t fd, short what, void *arg)
{
    struct acme_xfer *x = arg;

    (void)fd;
    (void)what;
    acme_xfer_end(x, -1, x->fail_msg);
}

/* Reports msg from the loop (never from inside the caller's frame). */
static void acme_xfer_fail_later(struct acme_xfer *x, const char *msg)
{
    struct timeval now = {0, 0};

    snprintf(x->fail_msg, sizeof(x->fail_msg), "%s", msg);
    event_add(x->fail_ev, &now);
}

/* httpc: response head. */
static void acme_xfer_on_response(void *arg, int status, relais_hdrs *h)
{
    struct acme_xfer *x = arg;
    const char *v;
    size_t vl;

    x->status = status;
    if ((v = msg_api_get(h, "Replay-Nonce", 0, &vl)) != NULL) acme_nonce_push(x->a, v, vl);
    if (x->phase != XF_MAIN) return;
    if ((v = msg_api_get(h, "Location", 0, &vl)) != NULL) {
        free(x->location);
        x->location = strndup(v, vl);
    }
    if ((v = msg_api_get(h, "Retry-After", 0, &vl)) != NULL && vl > 0 && vl < 10) {
        char tmp[12];
        memcpy(tmp, v, vl);
        tmp[vl] = '\0';
        x->retry_after = atoi(tmp);
    }
}

/* httpc: body bytes (capped). */
static void acme_xfer_on_data(void *arg, const char *data, size_t len)
{
    struct acme_xfer *x = arg;

    if (x->phase != XF_MAIN || x->overflow) return;
    if (hc_body_append(&x->body, &x->len, &x->cap, data, len, ACME_MAX_BODY) < 0)
        x->overflow = 1;
}

/* The ACME problem type of the response (without the urn prefix), or "". */
static void acme_problem(const struct acme_xfer *x, char *type, size_t tlen, char *detail,
                         size_t dlen)
{
    json_t *j = x->body && x->len ? json_loads(x->body, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *d = json_string_value(json_object_get(j, "detail"));
    const char *pfx = "urn:ietf:params:acme:error:";

    if (t && !strncmp(t, pfx, strlen(pfx))) t += strlen(pfx);
    snprintf(type, tlen, "%s", t ? t : "");
    snprintf(detail, dlen, "%s", d ? d : "");
    json_decref(j);
}

/* httpc: the end. */
static void acme_xfer_on_done(void *arg, int error, const char *message)
{
    struct acme_xfer *x = arg;
    char type[64], detail[8];

    x->call = NULL;
    if (error) {
        acme_xfer_end(x, -1, message ? message : "request failed");
        return;
    }
    if (x->phase == XF_NONCE) {
        if (!x->a->nnonces) {
            acme_xfer_end(x, -1, "newNonce gave no Replay-Nonce");
            return;
        }
        x->phase = XF_MAIN;
        acme_xfer_send(x);
        return;
    }
    if (x->overflow) {
        acme_xfer_end(x, -1, "response body too large");
        return;
    }
    if (x->status == 400 && !x->plain_get) {
        acme_problem(x, type, sizeof(type), detail, sizeof(detail));
        if (!strcmp(type, "badNonce") && x->badnonce < ACME_MAX_BADNONCE) {
            x->badnonce++;
            log_debug(x->a->who, "badNonce from %s, retrying (%d)", x->url, x->badnonce);
            acme_xfer_send(x);
            return;
        }
    }
    acme_xfer_end(x, 0, NULL);
}

/* Sends the current phase of x (a nonce first when none is cached). */
static void acme_xfer_send(struct acme_xfer *x)
{
    struct acme *a = x->a;
    relais_header hdr[3];
    relais_http_req rq;
    relais_http_callbacks cb = {sizeof(cb), acme_xfer_on_response, acme_xfer_on_data,
                                acme_xfer_on_done};
    char *jws = NULL, *nonce = NULL;
    size_t nh = 0;

    memset(&rq, 0, sizeof(rq));
    rq.size = sizeof(rq);
    rq.timeout_ms = ACME_HTTP_TIMEOUT_MS;
    rq.tls_ca = a->ca_file;
    rq.tls_insecure = a->insecure;
    rq.headers = hdr;
    hdr[nh++] = (relais_header){"User-Agent", "relais-acme/" PACKAGE_VERSION};
    acme_xfer_reset_resp(x);
    if (x->plain_get) {
        x->phase = XF_MAIN;
        rq.method = "GET";
        rq.url = x->url;
    } else if (!a->nnonces) {
        x->phase = XF_NONCE;
        if (!a->url_nonce) {
            acme_xfer_fail_later(x, "no newNonce URL");
            return;
        }
        rq.method = "HEAD";
        rq.url = a->url_nonce;
    } else {
        x->phase = XF_MAIN;
        nonce = acme_nonce_pop(a);
        jws = acme_jws(a->akey, x->use_jwk ? NULL : a->kid, nonce, x->url, x->payload);
        free(nonce);
        if (!jws) {
            acme_xfer_fail_later(x, "cannot sign the request");
            return;
        }
        rq.method = "POST";
        rq.url = x->url;
        rq.body = jws;
        rq.body_len = strlen(jws);
        hdr[nh++] = (relais_header){"Content-Type", "application/jose+json"};
        if (x->want_pem) hdr[nh++] = (relais_header){"Accept", "application/pem-certificate-chain"};
    }
    rq.nheaders = nh;
    x->call = hc_request(a->base, &rq, &cb, x);
    free(jws);
    if (!x->call) acme_xfer_fail_later(x, "cannot start the HTTP request (bad URL?)");
}

/* Flags of acme_xfer_start. */
enum { XFL_GET = 1, XFL_JWK = 2, XFL_PEM = 4 };

/* Starts an exchange: GET (XFL_GET), or a signed POST of payload (NULL =
 * POST-as-GET) with the kid, or the jwk with XFL_JWK; XFL_PEM asks for a
 * PEM chain.  Strings copied.  Exactly one done call follows, from the
 * loop (unless cancelled). */
static void acme_xfer_start(struct acme_xfer *x, const char *url, int flags,
                            const char *payload, acme_xfer_cb done)
{
    acme_xfer_cancel(x);
    free(x->url);
    free(x->payload);
    x->url = strdup(url);
    x->payload = payload ? strdup(payload) : NULL;
    x->plain_get = !!(flags & XFL_GET);
    x->use_jwk = !!(flags & XFL_JWK);
    x->want_pem = !!(flags & XFL_PEM);
    x->badnonce = 0;
    x->done = done;
    if (!x->url || (payload && !x->payload)) {
        acme_xfer_fail_later(x, "out of memory");
        return;
    }
    acme_xfer_send(x);
}

static int acme_xfer_init(struct acme_xfer *x, struct acme *a, void *owner)
{
    memset(x, 0, sizeof(*x));
    x->a = a;
    x->owner = owner;
    x->retry_after = -1;
    x->fail_ev = evtimer_new(a->base, acme_xfer_failed, x);
    return x->fail_ev ? 0 : -1;
}

/* The response body as JSON (a new reference) or NULL. */
static json_t *acme_xfer_json(const struct acme_xfer *x)
{
    return x->body && x->len ? json_loads(x->body, 0, NULL) : NULL;
}

/* A readable description of an unexpected response into buf. */
static const char *acme_xfer_err(const struct acme_xfer *x, const char *what, char *buf,
                                 size_t len)
{
    json_t *j = acme_xfer_json(x);
    const char *t = json_string_value(json_object_get(j, "type"));
    const char *d = json_string_value(json_object_get(j, "detail"));

    snprintf(buf, len, "%s: HTTP %d%s%s%s%s", what, x->status, t ? " " : "", t ? t : "",
             d ? ": " : "", d ? d : "");
    json_decref(j);
    return buf;
}

/* ====================================================================== */
/* session: directory and account                                          */
/* ====================================================================== */

/* The session failed: every waiting order fails with msg. */
static void acme_session_fail(struct acme *a, const char *msg)
{
    a->sstate = SS_IDLE;
    log_error(a->who, "%s", msg);
    for (struct acme_order *o = a->orders; o; o = o->next)
        if (o->state == OS_WAIT) acme_order_fail(o, "%s", msg);
}

/* The session is ready: waiting orders start. */
static void acme_session_ready(struct acme *a)
{
    a->sstate = SS_READY;
    for (struct acme_order *o = a->orders; o; o = o->next)
        if (o->state == OS_WAIT) acme_order_start(o);
}

/* Saves the storage section (the file, or the external storage), logging
 * a failure. */
static void acme_save(struct acme *a)
{
    char err[512];

    if (a->ext.save) {
        if (a->ext.save(a->ext.arg, &a->store) < 0)
            log_error(a->who, "cannot save to the shared storage");
        return;
    }
    if (as_save(a->storage, a->resolver, &a->store, err, sizeof(err)) < 0)
        log_error(a->who, "cannot save the storage: %s", err);
}

/* newAccount answered. */
static void acme_account_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme *a = owner;
    char buf[600];

    if (err) {
        snprintf(buf, sizeof(buf), "newAccount: %s", msg);
        acme_session_fail(a, buf);
        return;
    }
    if ((x->status != 200 && x->status != 201) || !x->location) {
        acme_session_fail(a, acme_xfer_err(x, "newAccount", buf, sizeof(buf)));
        return;
    }
    free(a->kid);
    a->kid = strdup(x->location);
    if (!a->kid) {
        acme_session_fail(a, "out of memory");
        return;
    }
    if (x->status == 200 && a->store.has_account && a->store.acct.uri &&
        !strcmp(a->store.acct.uri, a->kid)) {
        log_info(a->who, "account reused: %s", a->kid);
    } else {
        unsigned char *der = NULL;
        int dl = i2d_PrivateKey(a->akey, &der);
        json_t *body = acme_xfer_json(x);
        free(a->store.acct.email);
        free(a->store.acct.uri);
        free(a->store.acct.body_json);
        free(a->store.acct.key_der);
        free(a->store.acct.key_type);
        a->store.acct.email = a->email ? strdup(a->email) : NULL;
        a->store.acct.uri = strdup(a->kid);
        a->store.acct.body_json = body ? json_dumps(body, JSON_COMPACT) : NULL;
        a->store.acct.key_der = NULL;
        a->store.acct.key_der_len = 0;
        if (dl > 0 && (a->store.acct.key_der = malloc((size_t)dl)) != NULL) {
            memcpy(a->store.acct.key_der, der, (size_t)dl);
            a->store.acct.key_der_len = (size_t)dl;
        }
        a->store.acct.key_type = strdup(acme_kt_names[a->kt].lego);
        a->store.has_account = a->store.acct.key_der != NULL;
        OPENSSL_free(der);
        json_decref(body);
        log_info(a->who, "account %s: %s", x->status == 201 ? "registered" : "found", a->kid);
        acme_save(a);
    }
    acme_session_ready(a);
}

/* Sends newAccount with the account key. */
static void acme_account_send(struct acme *a)
{
    json_t *p = json_pack("{sb}", "termsOfServiceAgreed", 1);
    char *payload, *mail = NULL;

    if (a->email && *a->email && asprintf(&mail, "mailto:%s", a->email) > 0)
        json_object_set_new(p, "contact", json_pack("[s]", mail));
    free(mail);
    payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload || acme_thumbprint(a->akey, a->thumb, sizeof(a->thumb)) < 0) {
        free(payload);
        acme_session_fail(a, "cannot build newAccount");
        return;
    }
    a->sstate = SS_ACCOUNT;
    acme_xfer_start(&a->sx, a->url_account, XFL_JWK, payload, acme_account_done);
    free(payload);
}

/* The account key was generated. */
static void acme_account_key_done(void *owner, EVP_PKEY *key)
{
    struct acme *a = owner;

    a->skg = NULL;
    if (!key) {
        acme_session_fail(a, "account key generation failed");
        return;
    }
    EVP_PKEY_free(a->akey);
    a->akey = key;
    acme_account_send(a);
}

/* Duplicates a JSON string member or NULL. */
static char *acme_jdup(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? strdup(s) : NULL;
}

/* The directory answered. */
static void acme_dir_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme *a = owner;
    json_t *j;
    char buf[600];

    if (err) {
        snprintf(buf, sizeof(buf), "directory %s: %s", a->ca_server, msg);
        acme_session_fail(a, buf);
        return;
    }
    j = x->status == 200 ? acme_xfer_json(x) : NULL;
    free(a->url_nonce);
    free(a->url_account);
    free(a->url_order);
    a->url_nonce = acme_jdup(j, "newNonce");
    a->url_account = acme_jdup(j, "newAccount");
    a->url_order = acme_jdup(j, "newOrder");
    json_decref(j);
    if (!a->url_nonce || !a->url_account || !a->url_order) {
        acme_session_fail(a, acme_xfer_err(x, "directory: not an ACME directory", buf,
                                           sizeof(buf)));
        return;
    }
    if (a->akey) {
        acme_account_send(a);
        return;
    }
    a->sstate = SS_KEYGEN;
    a->skg = acme_keygen_start(a->base, ACME_ACCOUNT_KEY, acme_account_key_done, a);
    if (!a->skg) acme_session_fail(a, "cannot start key generation");
}

/* Starts the session unless it runs or is ready. */
static void acme_session_kick(struct acme *a)
{
    if (a->sstate != SS_IDLE) return;
    a->sstate = SS_DIR;
    acme_xfer_start(&a->sx, a->ca_server, XFL_GET, NULL, acme_dir_done);
}

/* ====================================================================== */
/* orders                                                                  */
/* ====================================================================== */

/* Clears the challenge hook if one is set. */
static void acme_chal_clear(struct acme_order *o)
{
    struct acme *a = o->a;

    if (o->chal_set == ACME_HTTP01 && a->hooks.http01_clear)
        a->hooks.http01_clear(a->hooks.arg, o->chal_token);
    else if (o->chal_set == ACME_TLSALPN01 && a->hooks.alpn01_clear)
        a->hooks.alpn01_clear(a->hooks.arg, o->chal_domain);
    o->chal_set = 0;
    free(o->chal_url);
    free(o->chal_token);
    free(o->chal_domain);
    o->chal_url = o->chal_token = o->chal_domain = NULL;
}

/* Forgets everything of the current attempt (not the domain set). */
static void acme_order_reset(struct acme_order *o)
{
    acme_chal_clear(o);
    acme_xfer_cancel(&o->x);
    if (o->timer) event_del(o->timer);
    acme_keygen_free(o->kg);
    o->kg = NULL;
    EVP_PKEY_free(o->key);
    o->key = NULL;
    free(o->order_url);
    free(o->finalize_url);
    free(o->cert_url);
    o->order_url = o->finalize_url = o->cert_url = NULL;
    for (size_t i = 0; i < o->nauthz; i++) free(o->authz[i]);
    free(o->authz);
    o->authz = NULL;
    o->nauthz = o->iauthz = 0;
    o->polls = 0;
}

/* Arms the order's timer for ms milliseconds. */
static void acme_order_timer(struct acme_order *o, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(o->timer, &tv);
}

static void acme_order_fail(struct acme_order *o, const char *fmt, ...)
{
    struct acme *a = o->a;
    char msg[1024];
    int64_t delay;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    acme_order_reset(o);
    o->failures++;
    delay = o->failures >= 13 ? ACME_BACKOFF_MAX_S : (int64_t)1 << (o->failures - 1);
    if (delay > ACME_BACKOFF_MAX_S) delay = ACME_BACKOFF_MAX_S;
    log_error(a->who, "certificate for %s: %s (retry in %lld s)", o->domains[0], msg,
              (long long)delay);
    o->state = OS_BACKOFF;
    acme_order_timer(o, delay * 1000);
    if (a->hooks.on_error) a->hooks.on_error(a->hooks.arg, o->domains[0], msg);
}

/* Delivers a certificate through on_cert. */
static void acme_deliver(struct acme *a, const struct as_cert *c)
{
    int64_t na = acme_pem_not_after(c->cert_pem);

    if (na < 0) {
        log_warn(a->who, "stored certificate for %s does not parse, ignored", c->main);
        return;
    }
    if (a->hooks.on_cert)
        a->hooks.on_cert(a->hooks.arg, c->main, (const char *const *)c->sans, c->nsans,
                         c->cert_pem, c->key_pem, na);
}

/* The certificate was downloaded. */
static void acme_cert_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    struct acme *a = o->a;
    struct as_cert *c;
    char buf[600], *key_pem;

    if (err) {
        acme_order_fail(o, "certificate download: %s", msg);
        return;
    }
    if (x->status != 200 || !x->body || !strstr(x->body, "-----BEGIN CERTIFICATE-----")) {
        acme_order_fail(o, "%s", acme_xfer_err(x, "certificate download", buf, sizeof(buf)));
        return;
    }
    key_pem = acme_key_pem(o->key);
    if (!key_pem || !acme_pair_ok(x->body, key_pem)) {
        free(key_pem);
        acme_order_fail(o, "the certificate does not match its key");
        return;
    }
    if (as_cert_put(&a->store, o->domains[0], (const char *const *)o->domains + 1, o->n - 1,
                    x->body, key_pem) < 0) {
        free(key_pem);
        acme_order_fail(o, "out of memory");
        return;
    }
    free(key_pem);
    log_info(a->who, "certificate obtained for %s (%zu name%s)", o->domains[0], o->n,
             o->n > 1 ? "s" : "");
    acme_save(a);
    acme_order_reset(o);
    o->failures = 0;
    o->state = OS_IDLE;
    c = as_cert_find(&a->store, o->domains[0], (const char *const *)o->domains + 1, o->n - 1);
    if (c) acme_deliver(a, c);
}

static void acme_order_obj(struct acme_order *o, json_t *j, const char *what);

/* A poll of the order answered. */
static void acme_poll_order_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    json_t *j;
    char buf[600];

    if (err) {
        acme_order_fail(o, "order: %s", msg);
        return;
    }
    if (x->status != 200 || !(j = acme_xfer_json(x))) {
        acme_order_fail(o, "%s", acme_xfer_err(x, "order", buf, sizeof(buf)));
        return;
    }
    acme_order_obj(o, j, "order");
    json_decref(j);
}

/* Poll delay: Retry-After (1..30 s) or 250 ms doubling up to 2 s. */
static int64_t acme_poll_delay(struct acme_order *o)
{
    int64_t ms;

    if (o->x.retry_after > 0) return (o->x.retry_after > 30 ? 30 : o->x.retry_after) * 1000;
    ms = (int64_t)250 << (o->polls < 4 ? o->polls : 4);
    return ms > 2000 ? 2000 : ms;
}

/* Acts on an order object (after finalize or a poll): valid → download,
 * processing / ready → poll (bounded), invalid → fail. */
static void acme_order_obj(struct acme_order *o, json_t *j, const char *what)
{
    const char *st = json_string_value(json_object_get(j, "status"));

    if (!st) {
        acme_order_fail(o, "%s: no status", what);
        return;
    }
    if (!strcmp(st, "valid")) {
        const char *cu = json_string_value(json_object_get(j, "certificate"));
        if (!cu || !(o->cert_url = strdup(cu))) {
            acme_order_fail(o, "%s: valid without a certificate URL", what);
            return;
        }
        o->state = OS_CERT;
        acme_xfer_start(&o->x, o->cert_url, XFL_PEM, NULL, acme_cert_done);
        return;
    }
    if (!strcmp(st, "processing") || !strcmp(st, "ready") || !strcmp(st, "pending")) {
        if (++o->polls > ACME_MAX_POLLS || !o->order_url) {
            acme_order_fail(o, "%s: still %s after %d polls", what, st, ACME_MAX_POLLS);
            return;
        }
        o->state = OS_POLL_ORDER;
        acme_order_timer(o, acme_poll_delay(o));
        return;
    }
    {
        json_t *e = json_object_get(j, "error");
        const char *d = json_string_value(json_object_get(e, "detail"));
        acme_order_fail(o, "%s is %s%s%s", what, st, d ? ": " : "", d ? d : "");
    }
}

/* finalize answered. */
static void acme_finalize_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    json_t *j;
    char buf[600];

    if (err) {
        acme_order_fail(o, "finalize: %s", msg);
        return;
    }
    if (x->status != 200 || !(j = acme_xfer_json(x))) {
        acme_order_fail(o, "%s", acme_xfer_err(x, "finalize", buf, sizeof(buf)));
        return;
    }
    o->polls = 0;
    acme_order_obj(o, j, "order");
    json_decref(j);
}

/* Every authorization is valid: finalize with the CSR. */
static void acme_finalize(struct acme_order *o)
{
    char *csr = acme_csr(o->key, o->domains, o->n), *payload = NULL;
    json_t *p;

    if (!csr) {
        acme_order_fail(o, "cannot build the CSR");
        return;
    }
    p = json_pack("{ss}", "csr", csr);
    free(csr);
    if (p) payload = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!payload) {
        acme_order_fail(o, "out of memory");
        return;
    }
    o->state = OS_FINALIZE;
    acme_xfer_start(&o->x, o->finalize_url, 0, payload, acme_finalize_done);
    free(payload);
}

static void acme_authz_next(struct acme_order *o);
static void acme_authz_done(void *owner, struct acme_xfer *x, int err, const char *msg);

/* The challenge POST answered: poll the authorization. */
static void acme_challenge_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    char buf[600];

    if (err) {
        acme_order_fail(o, "challenge: %s", msg);
        return;
    }
    if (x->status != 200) {
        acme_order_fail(o, "%s", acme_xfer_err(x, "challenge", buf, sizeof(buf)));
        return;
    }
    o->state = OS_POLL_AUTHZ;
    o->polls = 0;
    acme_order_timer(o, acme_poll_delay(o));
}

static void acme_chal_go(struct acme_order *o);

/* Picks the wanted challenge of a pending authorization, sets the hook
 * and answers it. */
static void acme_challenge(struct acme_order *o, json_t *az)
{
    struct acme *a = o->a;
    const char *want = o->how == ACME_TLSALPN01 ? "tls-alpn-01" : "http-01";
    const char *dom = json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
    json_t *chs = json_object_get(az, "challenges"), *ch, *found = NULL;
    const char *tok, *url, *cst;
    char *ka = NULL;
    size_t i;
    int rc = -1;

    json_array_foreach(chs, i, ch) {
        const char *t = json_string_value(json_object_get(ch, "type"));
        if (t && !strcmp(t, want)) found = ch;
    }
    tok = json_string_value(json_object_get(found, "token"));
    url = json_string_value(json_object_get(found, "url"));
    cst = json_string_value(json_object_get(found, "status"));
    if (!found || !tok || !url || !dom) {
        acme_order_fail(o, "no %s challenge offered for %s", want, dom ? dom : "?");
        return;
    }
    for (const char *p = tok; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p)) {
            acme_order_fail(o, "bad challenge token for %s", dom);
            return;
        }
    if (asprintf(&ka, "%s.%s", tok, a->thumb) < 0 || !(o->chal_url = strdup(url)) ||
        !(o->chal_token = strdup(tok)) || !(o->chal_domain = strdup(dom))) {
        free(ka);
        acme_order_fail(o, "out of memory");
        return;
    }
    if (o->how == ACME_TLSALPN01) {
        char *cp = NULL, *kp = NULL;
        if (a->hooks.alpn01_set && acme_alpn_cert(dom, ka, &cp, &kp) == 0)
            rc = a->hooks.alpn01_set(a->hooks.arg, dom, cp, kp);
        free(cp);
        if (kp) memset(kp, 0, strlen(kp));
        free(kp);
    } else if (a->hooks.http01_set) {
        rc = a->hooks.http01_set(a->hooks.arg, tok, ka);
    }
    free(ka);
    if (rc < 0) {
        acme_order_fail(o, "cannot set up the %s challenge for %s", want, dom);
        return;
    }
    o->chal_set = o->how;
    o->chal_answered = cst && strcmp(cst, "pending") != 0;
    if (rc > 0) { /* the hook publishes it: acme_challenge_ready follows */
        log_debug(a->who, "%s for %s: waiting until the answer is published", want, dom);
        o->state = OS_CHAL_WAIT;
        acme_order_timer(o, ACME_CHAL_WAIT_MS);
        return;
    }
    acme_chal_go(o);
}

/* The challenge's answer is in place: tell the CA (or just poll when it
 * shows the challenge answered already). */
static void acme_chal_go(struct acme_order *o)
{
    log_info(o->a->who, "answering %s for %s",
             o->chal_set == ACME_TLSALPN01 ? "tls-alpn-01" : "http-01", o->chal_domain);
    if (o->chal_answered) { /* already answered: just poll */
        o->state = OS_POLL_AUTHZ;
        o->polls = 0;
        acme_order_timer(o, 500);
        return;
    }
    o->state = OS_CHALLENGE;
    acme_xfer_start(&o->x, o->chal_url, 0, "{}", acme_challenge_done);
}

void acme_challenge_ready(struct acme *a, const char *key, int ok)
{
    if (!a || !key) return;
    for (struct acme_order *o = a->orders; o; o = o->next) {
        if (o->state != OS_CHAL_WAIT) continue;
        if (o->chal_set == ACME_HTTP01 ? strcmp(o->chal_token, key) != 0
                                       : strcasecmp(o->chal_domain, key) != 0)
            continue;
        event_del(o->timer);
        if (ok) acme_chal_go(o);
        else acme_order_fail(o, "cannot publish the challenge answer for %s", o->chal_domain);
        return;
    }
}

/* An authorization answered (first look or poll). */
static void acme_authz_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    json_t *j;
    const char *st;
    char buf[600];

    if (err) {
        acme_order_fail(o, "authorization: %s", msg);
        return;
    }
    if (x->status != 200 || !(j = acme_xfer_json(x))) {
        acme_order_fail(o, "%s", acme_xfer_err(x, "authorization", buf, sizeof(buf)));
        return;
    }
    st = json_string_value(json_object_get(j, "status"));
    if (st && !strcmp(st, "valid")) {
        acme_chal_clear(o);
        o->iauthz++;
        acme_authz_next(o);
    } else if (st && !strcmp(st, "pending") && o->state == OS_AUTHZ) {
        acme_challenge(o, j);
    } else if (st && (!strcmp(st, "pending") || !strcmp(st, "processing"))) {
        if (++o->polls > ACME_MAX_POLLS) {
            acme_order_fail(o, "authorization still %s after %d polls", st, ACME_MAX_POLLS);
        } else {
            o->state = OS_POLL_AUTHZ;
            acme_order_timer(o, acme_poll_delay(o));
        }
    } else {
        /* invalid (or revoked, expired...): the challenge's error says why */
        const char *dom = json_string_value(json_object_get(json_object_get(j, "identifier"), "value"));
        const char *detail = NULL, *type = NULL;
        json_t *chs = json_object_get(j, "challenges"), *ch;
        size_t i;
        json_array_foreach(chs, i, ch) {
            json_t *e = json_object_get(ch, "error");
            if (e && !detail) {
                detail = json_string_value(json_object_get(e, "detail"));
                type = json_string_value(json_object_get(e, "type"));
            }
        }
        snprintf(buf, sizeof(buf), "authorization for %s is %s%s%s%s%s", dom ? dom : "?",
                 st ? st : "without status", type ? ": " : "", type ? type : "",
                 detail ? ": " : "", detail ? detail : "");
        acme_order_fail(o, "%s", buf);
    }
    json_decref(j);
}

/* Works on the next authorization, or finalizes when none is left. */
static void acme_authz_next(struct acme_order *o)
{
    if (o->iauthz >= o->nauthz) {
        acme_finalize(o);
        return;
    }
    o->state = OS_AUTHZ;
    o->polls = 0;
    acme_xfer_start(&o->x, o->authz[o->iauthz], 0, NULL, acme_authz_done);
}

/* The order's timer: a poll, or the end of a backoff. */
static void acme_order_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct acme_order *o = arg;

    (void)fd;
    (void)what;
    switch (o->state) {
    case OS_POLL_AUTHZ:
        acme_xfer_start(&o->x, o->authz[o->iauthz], 0, NULL, acme_authz_done);
        break;
    case OS_POLL_ORDER:
        acme_xfer_start(&o->x, o->order_url, 0, NULL, acme_poll_order_done);
        break;
    case OS_BACKOFF:
        acme_order_begin(o);
        break;
    case OS_CHAL_WAIT:
        acme_order_fail(o, "the challenge answer for %s was not published within %d s",
                        o->chal_domain, ACME_CHAL_WAIT_MS / 1000);
        break;
    default:
        break;
    }
}

/* newOrder answered. */
static void acme_neworder_done(void *owner, struct acme_xfer *x, int err, const char *msg)
{
    struct acme_order *o = owner;
    json_t *j, *az, *v;
    const char *st, *fin;
    char buf[600];
    size_t i;

    if (err) {
        acme_order_fail(o, "newOrder: %s", msg);
        return;
    }
    if (x->status != 201 || !x->location || !(j = acme_xfer_json(x))) {
        if (x->status == 401 || x->status == 403) o->a->sstate = SS_IDLE; /* re-check the account */
        acme_order_fail(o, "%s", acme_xfer_err(x, "newOrder", buf, sizeof(buf)));
        return;
    }
    st = json_string_value(json_object_get(j, "status"));
    fin = json_string_value(json_object_get(j, "finalize"));
    az = json_object_get(j, "authorizations");
    o->order_url = strdup(x->location);
    o->finalize_url = fin ? strdup(fin) : NULL;
    if (!st || !o->order_url || !o->finalize_url || !json_is_array(az) ||
        json_array_size(az) > ACME_MAX_DOMAINS) {
        json_decref(j);
        acme_order_fail(o, "newOrder: incomplete order object");
        return;
    }
    o->authz = calloc(json_array_size(az) + 1, sizeof(char *));
    if (!o->authz) {
        json_decref(j);
        acme_order_fail(o, "out of memory");
        return;
    }
    json_array_foreach(az, i, v) {
        const char *u = json_string_value(v);
        if (u && (o->authz[o->nauthz] = strdup(u)) != NULL) o->nauthz++;
    }
    log_info(o->a->who, "order %s for %s: %s, %zu authorization%s", o->order_url, o->domains[0],
             st, o->nauthz, o->nauthz == 1 ? "" : "s");
    if (!strcmp(st, "pending")) {
        o->iauthz = 0;
        acme_authz_next(o);
    } else if (!strcmp(st, "ready")) {
        acme_finalize(o);
    } else {
        o->polls = 0;
        acme_order_obj(o, j, "new order");
    }
    json_decref(j);
}

/* The certificate key of the attempt is ready: send newOrder. */
static void acme_order_key_done(void *owner, EVP_PKEY *key)
{
    struct acme_order *o = owner;
    json_t *p = NULL, *ids = NULL;
    char *payload = NULL;

    o->kg = NULL;
    if (!key) {
        acme_order_fail(o, "certificate key generation failed");
        return;
    }
    o->key = key;
    if (o->a->sstate != SS_READY) { /* the session was reset meanwhile */
        o->state = OS_WAIT;
        acme_session_kick(o->a);
        return;
    }
    ids = json_array();
    for (size_t i = 0; ids && i < o->n; i++)
        json_array_append_new(ids, json_pack("{ssss}", "type", "dns", "value", o->domains[i]));
    p = ids ? json_pack("{so}", "identifiers", ids) : NULL;
    if (p) payload = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!payload) {
        acme_order_fail(o, "out of memory");
        return;
    }
    log_info(o->a->who, "ordering a certificate for %s", o->domains[0]);
    o->state = OS_NEWORDER;
    acme_xfer_start(&o->x, o->a->url_order, 0, payload, acme_neworder_done);
    free(payload);
}

/* The session is ready: generate the key (kept when the session was
 * reset during an attempt), then newOrder. */
static void acme_order_start(struct acme_order *o)
{
    if (o->key) {
        EVP_PKEY *k = o->key;
        o->key = NULL;
        acme_order_key_done(o, k);
        return;
    }
    o->state = OS_KEYGEN;
    o->kg = acme_keygen_start(o->a->base, o->a->kt, acme_order_key_done, o);
    if (!o->kg) acme_order_fail(o, "cannot start key generation");
}

/* Starts an attempt. */
static void acme_order_begin(struct acme_order *o)
{
    acme_order_reset(o);
    o->state = OS_WAIT;
    if (o->a->sstate == SS_READY) acme_order_start(o);
    else acme_session_kick(o->a);
}

/* Frees an order (after acme_order_reset). */
static void acme_order_free(struct acme_order *o)
{
    acme_order_reset(o);
    acme_xfer_clear(&o->x);
    if (o->timer) event_free(o->timer);
    for (size_t i = 0; i < o->n; i++) free(o->domains[i]);
    free(o->domains);
    free(o);
}

/* 1 when the stored certificate c needs no new order now. */
static int acme_cert_good(struct acme *a, const struct as_cert *c)
{
    int64_t na = acme_pem_not_after(c->cert_pem);

    return na >= 0 && na - (int64_t)time(NULL) > a->renew_before_s;
}

/* ====================================================================== */
/* the resolver                                                            */
/* ====================================================================== */

/* The order for exactly this domain set, or NULL. */
static struct acme_order *acme_order_find(struct acme *a, char *const *d, size_t n)
{
    for (struct acme_order *o = a->orders; o; o = o->next) {
        size_t i, j;
        if (o->n != n || strcasecmp(o->domains[0], d[0]) != 0) continue;
        for (i = 1; i < n; i++) {
            for (j = 1; j < n; j++)
                if (!strcasecmp(o->domains[j], d[i])) break;
            if (j == n) break;
        }
        if (i == n) return o;
    }
    return NULL;
}

/* Restarts the idle orders whose certificate is missing or due (only
 * while active). */
static void acme_renew_pass(struct acme *a)
{
    if (!a->active) return;
    for (struct acme_order *o = a->orders; o; o = o->next) {
        struct as_cert *c;
        if (o->state != OS_IDLE) continue;
        c = as_cert_find(&a->store, o->domains[0], (const char *const *)o->domains + 1, o->n - 1);
        if (c && acme_cert_good(a, c)) continue;
        log_info(a->who, "certificate for %s %s", o->domains[0],
                 c ? "expires soon: renewing" : "is missing: ordering");
        acme_order_begin(o);
    }
}

/* Renewal check timer. */
static void acme_renew_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    acme_renew_pass(arg);
}

/* Start-up: delivers the stored certificates. */
static void acme_start_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct acme *a = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < a->store.ncerts; i++) acme_deliver(a, &a->store.certs[i]);
}

/* Host (authority) part of a URL, into buf. */
static void acme_url_host(const char *url, char *buf, size_t len)
{
    const char *p = strstr(url ? url : "", "://");
    size_t n;

    p = p ? p + 3 : (url ? url : "");
    n = strcspn(p, "/?#");
    snprintf(buf, len, "%.*s", (int)n, p);
}

int acme_want(struct acme *a, const char *const *domains, size_t n, enum acme_challenge how)
{
    struct acme_order *o;
    struct as_cert *c;
    char **d;
    size_t k = 0;

    if (!a || !domains || n == 0 || n > ACME_MAX_DOMAINS) return -1;
    if (how != ACME_HTTP01 && how != ACME_TLSALPN01) return -1;
    d = calloc(n, sizeof(char *));
    if (!d) return -1;
    for (size_t i = 0; i < n; i++) { /* drop duplicates, keep the order */
        size_t j;
        if (!domains[i] || !*domains[i] || strlen(domains[i]) > 253) goto fail;
        for (j = 0; j < k; j++)
            if (!strcasecmp(d[j], domains[i])) break;
        if (j < k) continue;
        if (!(d[k] = strdup(domains[i]))) goto fail;
        k++;
    }
    o = acme_order_find(a, d, k);
    if (o) {
        o->how = how;
        for (size_t i = 0; i < k; i++) free(d[i]);
        free(d);
        if (o->state != OS_IDLE) return 1;
        c = as_cert_find(&a->store, o->domains[0], (const char *const *)o->domains + 1, o->n - 1);
        if (c && acme_cert_good(a, c)) return 0;
        if (!a->active) {
            log_debug(a->who, "certificate for %s: left to the node that orders", o->domains[0]);
            return 1;
        }
        acme_order_begin(o);
        return 1;
    }
    if (a->norders >= ACME_MAX_ORDERS || !(o = calloc(1, sizeof(*o)))) goto fail;
    o->a = a;
    o->domains = d;
    o->n = k;
    o->how = how;
    o->timer = evtimer_new(a->base, acme_order_on_timer, o);
    if (!o->timer || acme_xfer_init(&o->x, a, o) < 0) {
        if (o->timer) event_free(o->timer);
        free(o);
        goto fail;
    }
    o->next = a->orders;
    a->orders = o;
    a->norders++;
    c = as_cert_find(&a->store, d[0], (const char *const *)d + 1, k - 1);
    if (c && acme_cert_good(a, c)) {
        log_debug(a->who, "certificate for %s served from the storage", d[0]);
        return 0;
    }
    if (!a->active) {
        log_debug(a->who, "certificate for %s: left to the node that orders", d[0]);
        return 1;
    }
    acme_order_begin(o);
    return 1;
fail:
    for (size_t i = 0; i < n; i++) free(d[i]);
    free(d);
    return -1;
}

/* The account key of acct when acct is usable with a's CA (its URL on the
 * caServer's host, a key we can sign with): a new key, or NULL after
 * logging why not (when quiet is 0). */
static EVP_PKEY *acme_account_key(struct acme *a, const struct as_account *acct, int quiet)
{
    char h1[256], h2[256];
    const unsigned char *p = acct->key_der;
    EVP_PKEY *k;

    acme_url_host(acct->uri, h1, sizeof(h1));
    acme_url_host(a->ca_server, h2, sizeof(h2));
    if (strcasecmp(h1, h2) != 0) {
        if (!quiet)
            log_info(a->who, "stored account belongs to %s, not %s: a new one is made", h1, h2);
        return NULL;
    }
    k = acct->key_der ? d2i_AutoPrivateKey(NULL, &p, (long)acct->key_der_len) : NULL;
    if (!k || !acme_alg(k, &(const EVP_MD *){NULL})) {
        EVP_PKEY_free(k);
        if (!quiet) log_warn(a->who, "stored account key unusable: a new account is made");
        return NULL;
    }
    return k;
}

struct acme *acme_new(struct event_base *base, const struct acme_cfg *cfg,
                      const struct acme_hooks *hooks, char *err, size_t errlen)
{
    return acme_new_stored(base, cfg, hooks, NULL, err, errlen);
}

struct acme *acme_new_stored(struct event_base *base, const struct acme_cfg *cfg,
                             const struct acme_hooks *hooks, const struct acme_storage *st,
                             char *err, size_t errlen)
{
    struct acme *a;
    size_t skipped = 0;
    struct timeval now = {0, 0}, iv;
    int file = !st || !st->save;

    if (!base || !cfg || !cfg->resolver || !*cfg->resolver || !cfg->ca_server ||
        (file && (!cfg->storage || !*cfg->storage))) {
        snprintf(err, errlen, "acme: resolver, caServer and storage are required");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->base = base;
    if (hooks) a->hooks = *hooks;
    if (!file) a->ext = *st;
    a->active = file;
    snprintf(a->who, sizeof(a->who), "acme %s", cfg->resolver);
    a->kt = -1;
    if (!cfg->key_type || !*cfg->key_type) a->kt = KT_RSA4096;
    for (int i = 0; a->kt < 0 && i < (int)(sizeof(acme_kt_names) / sizeof(acme_kt_names[0])); i++)
        if (!strcasecmp(cfg->key_type, acme_kt_names[i].traefik)) a->kt = i;
    if (a->kt < 0) {
        snprintf(err, errlen, "acme %s: unknown keyType \"%s\" (EC256, EC384, RSA2048, RSA4096, RSA8192)",
                 cfg->resolver, cfg->key_type);
        goto fail;
    }
    a->resolver = strdup(cfg->resolver);
    a->ca_server = strdup(cfg->ca_server);
    a->email = cfg->email && *cfg->email ? strdup(cfg->email) : NULL;
    a->ca_file = cfg->ca_certificates && *cfg->ca_certificates ? strdup(cfg->ca_certificates) : NULL;
    a->insecure = cfg->ca_insecure;
    a->storage = file ? strdup(cfg->storage) : NULL;
    a->renew_before_s = cfg->renew_before_s > 0 ? cfg->renew_before_s : 30 * 86400;
    a->check_ms = cfg->check_interval_ms > 0 ? cfg->check_interval_ms : 86400000;
    if (!a->resolver || !a->ca_server || (file && !a->storage) ||
        (cfg->email && *cfg->email && !a->email) ||
        (a->ca_file == NULL && cfg->ca_certificates && *cfg->ca_certificates)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (file && as_load(a->storage, a->resolver, &a->store, &skipped, err, errlen) < 0) goto fail;
    if (skipped) log_warn(a->who, "%zu stored certificate(s) could not be read, ignored", skipped);
    if (a->store.has_account) a->akey = acme_account_key(a, &a->store.acct, 0);
    if (acme_xfer_init(&a->sx, a, a) < 0 ||
        !(a->renew_timer = event_new(base, -1, EV_PERSIST, acme_renew_check, a)) ||
        !(a->start_ev = evtimer_new(base, acme_start_deliver, a))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    iv.tv_sec = (time_t)(a->check_ms / 1000);
    iv.tv_usec = (suseconds_t)((a->check_ms % 1000) * 1000);
    event_add(a->renew_timer, &iv);
    event_add(a->start_ev, &now);
    if (file)
        log_info(a->who, "resolver ready: CA %s, %zu stored certificate(s), account %s",
                 a->ca_server, a->store.ncerts, a->akey ? "stored" : "to be registered");
    else
        log_info(a->who, "resolver ready: CA %s, shared storage, ordering paused until "
                 "enabled", a->ca_server);
    return a;
fail:
    acme_free(a);
    return NULL;
}

void acme_set_active(struct acme *a, int on)
{
    if (!a || !!on == a->active) return;
    a->active = !!on;
    if (a->active) {
        log_info(a->who, "ordering enabled: this node orders and renews");
        acme_renew_pass(a);
        return;
    }
    log_info(a->who, "ordering paused: another node orders and renews");
    for (struct acme_order *o = a->orders; o; o = o->next) {
        if (o->state == OS_IDLE) continue;
        acme_order_reset(o); /* clears a challenge still set */
        o->state = OS_IDLE;
    }
    acme_xfer_cancel(&a->sx);
    acme_keygen_free(a->skg);
    a->skg = NULL;
    if (a->sstate != SS_READY) a->sstate = SS_IDLE;
}

/* Takes acct (from the shared storage) as the resolver's account when it
 * is usable with our CA and differs from ours; whatever runs with the
 * old account is restarted. */
static void acme_account_merge(struct acme *a, const struct as_account *acct)
{
    const struct as_account *mine = &a->store.acct;
    EVP_PKEY *k;
    int was;

    if (a->store.has_account && mine->uri && acct->uri && !strcmp(mine->uri, acct->uri) &&
        mine->key_der_len == acct->key_der_len &&
        (!acct->key_der_len || !memcmp(mine->key_der, acct->key_der, acct->key_der_len)))
        return; /* the same */
    if (!(k = acme_account_key(a, acct, 1))) return; /* not for our CA: ours stays */
    if (as_account_copy(&a->store.acct, acct) < 0) {
        EVP_PKEY_free(k);
        return;
    }
    a->store.has_account = 1;
    was = a->active;
    if (was) acme_set_active(a, 0); /* nothing may sign with the old key */
    EVP_PKEY_free(a->akey);
    a->akey = k;
    free(a->kid);
    a->kid = NULL;
    a->sstate = SS_IDLE; /* the next order looks the account up again */
    log_info(a->who, "account from the shared storage: %s", acct->uri ? acct->uri : "?");
    if (was) acme_set_active(a, 1);
}

size_t acme_store_merge(struct acme *a, const struct as_data *d, int replace)
{
    size_t n = 0, dropped = 0;

    if (!a || !d) return 0;
    for (size_t i = 0; replace && i < a->store.ncerts;) {
        const struct as_cert *c = &a->store.certs[i];
        if (as_cert_find((struct as_data *)d, c->main, (const char *const *)c->sans, c->nsans)) {
            i++;
            continue;
        }
        log_info(a->who, "certificate for %s deleted from the shared storage", c->main);
        as_cert_del(&a->store, i);
        dropped++;
    }
    for (size_t i = 0; i < d->ncerts; i++) {
        const struct as_cert *c = &d->certs[i];
        struct as_cert *mine = as_cert_find(&a->store, c->main, (const char *const *)c->sans,
                                            c->nsans);
        int64_t theirs = acme_pem_not_after(c->cert_pem);
        if (theirs < 0) continue;
        if (mine && acme_pem_not_after(mine->cert_pem) >= theirs) continue;
        if (as_cert_put(&a->store, c->main, (const char *const *)c->sans, c->nsans,
                        c->cert_pem, c->key_pem) == 0)
            n++;
    }
    if (n) { /* a failed order whose certificate came from elsewhere rests */
        for (struct acme_order *o = a->orders; o; o = o->next) {
            struct as_cert *c;
            if (o->state != OS_BACKOFF) continue;
            c = as_cert_find(&a->store, o->domains[0], (const char *const *)o->domains + 1,
                             o->n - 1);
            if (c && acme_cert_good(a, c)) {
                acme_order_reset(o);
                o->failures = 0;
                o->state = OS_IDLE;
            }
        }
    }
    if (d->has_account) acme_account_merge(a, &d->acct);
    if (dropped) acme_renew_pass(a); /* wanted ones are ordered again */
    return n + dropped;
}

const struct as_data *acme_store_data(const struct acme *a)
{
    return a ? &a->store : NULL;
}

void acme_free(struct acme *a)
{
    struct acme_order *o, *next;

    if (!a) return;
    for (o = a->orders; o; o = next) {
        next = o->next;
        acme_order_free(o);
    }
    acme_keygen_free(a->skg);
    acme_xfer_clear(&a->sx);
    if (a->renew_timer) event_free(a->renew_timer);
    if (a->start_ev) event_free(a->start_ev);
    for (size_t i = 0; i < a->nnonces; i++) free(a->nonces[i]);
    EVP_PKEY_free(a->akey);
    as_data_clear(&a->store);
    free(a->kid);
    free(a->url_nonce);
    free(a->url_account);
    free(a->url_order);
    free(a->resolver);
    free(a->ca_server);
    free(a->email);
    free(a->ca_file);
    free(a->storage);
    free(a);
}
