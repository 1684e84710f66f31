/*
 * basicauth — Traefik's basicAuth middleware (config key "basicAuth").
 * Module prefix: bsa_.
 *
 * Lets a request through only with `Authorization: Basic base64(user:pw)`
 * naming a known user whose password matches the stored hash:
 *
 *   http:
 *     middlewares:
 *       auth:
 *         basicAuth:
 *           users: ["test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/"]
 *           usersFile: /etc/relais/htpasswd   # merged with users
 *           realm: traefik                    # the default
 *           headerField: X-WebAuth-User       # the user name, upstream
 *           removeHeader: true                # drop Authorization upstream
 *
 * Hashes, chosen by prefix as Traefik (go-http-auth's CheckSecret) does:
 *   {SHA}base64   SHA-1 of the password (htpasswd -s);
 *   $2a$ $2b$ $2x$ $2y$   bcrypt (htpasswd -B), and $5$ / $6$ SHA-crypt,
 *                 verified by the system's libcrypt (libxcrypt's crypt_rn,
 *                 crypt_r elsewhere);
 *   anything else of the form $magic$salt$hash   MD5-crypt with that magic:
 *                 $apr1$ (htpasswd -m, openssl passwd -apr1) and $1$.
 * The final digests are compared in constant time (CRYPTO_memcmp).  A
 * failure answers 401 `WWW-Authenticate: Basic realm="<realm>"`,
 * `Content-Type: text/plain`, body "401 Unauthorized\n".
 *
 * No password, hash or Authorization header is ever logged: DEBUG lines
 * say "authentication failed" (no user name: it might be a mistyped
 * password) and "authentication succeeded for user NAME".
 *
 * Built only against the SDK header; links libcrypto and libcrypt.
 */
#include <crypt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <relais/plugin.h>

#include "mwauth.h"

/** Who the log lines come from. */
#define BSA_WHO "basicAuth"
/** Largest decoded "user:password", in bytes (longer fails the login). */
#define BSA_CRED_MAX 4096u
/** Longest magic or salt of an MD5-crypt hash considered. */
#define BSA_MD5_PART_MAX 64u

/** One configured instance (`http.middlewares.NAME.basicAuth`); read-only
 *  after create, shared by every worker thread. */
struct bsa_inst {
    const relais_host *host;   /* host function table */
    char *name;                /* the middleware's name, for log lines */
    struct mwauth_users users; /* name -> hash */
    struct mwauth_opts opts;   /* realm, headerField, removeHeader */
    char *www_authenticate;    /* `Basic realm="<realm>"` */
    EVP_MD *md5;               /* MD5, fetched once (MD5-crypt) */
    EVP_MD *sha1;              /* SHA-1, fetched once ({SHA}) */
};

/** Options of the middleware map (Traefik's BasicAuth fields). */
static const char *const bsa_keys[] = {"users", "usersFile", "realm",
                                       "headerField", "removeHeader"};

/* ---- hashes ------------------------------------------------------------- */

/** Any thread.  The 64 characters of crypt's base64. */
static const char bsa_itoa64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** Any thread.  Appends the n low 6-bit groups of v to out (least
 *  significant first, as crypt writes them). */
static void bsa_to64(char **out, uint32_t v, int n)
{
    while (n-- > 0) {
        *(*out)++ = bsa_itoa64[v & 0x3f];
        v >>= 6;
    }
}

/**
 * Any thread.  MD5-crypt (Poul-Henning Kamp's algorithm, the one behind
 * $1$ and Apache's $apr1$) of pw[0..pwlen) with salt[0..slen) and magic
 * (e.g. "$apr1$"), written as "<magic><salt>$<22 characters>" into out
 * (cap bytes, NUL-terminated).  0, or -1 when a digest call fails or out is
 * too small.
 */
static int bsa_md5crypt(const EVP_MD *md5, const unsigned char *pw,
                        size_t pwlen, const char *salt, size_t slen,
                        const char *magic, char *out, size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char alt[16], fin[16];
    size_t mlen = strlen(magic), i, left;
    char *p;
    int rc = -1;

    if (!ctx || cap < mlen + slen + 1 + 22 + 1) goto out;
    /* the alternate sum: password, salt, password */
    if (!EVP_DigestInit_ex(ctx, md5, NULL) ||
        !EVP_DigestUpdate(ctx, pw, pwlen) ||
        !EVP_DigestUpdate(ctx, salt, slen) ||
        !EVP_DigestUpdate(ctx, pw, pwlen) ||
        !EVP_DigestFinal_ex(ctx, alt, NULL))
        goto out;
    /* the main sum: password, magic, salt, then the alternate sum repeated
     * over the password's length */
    if (!EVP_DigestInit_ex(ctx, md5, NULL) ||
        !EVP_DigestUpdate(ctx, pw, pwlen) ||
        !EVP_DigestUpdate(ctx, magic, mlen) ||
        !EVP_DigestUpdate(ctx, salt, slen))
        goto out;
    for (left = pwlen; left > 0; left -= left > 16 ? 16 : left)
        if (!EVP_DigestUpdate(ctx, alt, left > 16 ? 16 : left)) goto out;
    /* then, for each bit of the length from the lowest: a NUL byte when it
     * is set, else the password's first byte */
    for (i = pwlen; i; i >>= 1)
        if (!EVP_DigestUpdate(ctx, (i & 1) ? (const unsigned char *)"" : pw,
                              1))
            goto out;
    if (!EVP_DigestFinal_ex(ctx, fin, NULL)) goto out;
    /* 1000 rounds that stir in password, salt and the previous sum */
    for (i = 0; i < 1000; i++) {
        if (!EVP_DigestInit_ex(ctx, md5, NULL)) goto out;
        if (i & 1) {
            if (!EVP_DigestUpdate(ctx, pw, pwlen)) goto out;
        } else if (!EVP_DigestUpdate(ctx, fin, 16)) {
            goto out;
        }
        if (i % 3 && !EVP_DigestUpdate(ctx, salt, slen)) goto out;
        if (i % 7 && !EVP_DigestUpdate(ctx, pw, pwlen)) goto out;
        if (i & 1) {
            if (!EVP_DigestUpdate(ctx, fin, 16)) goto out;
        } else if (!EVP_DigestUpdate(ctx, pw, pwlen)) {
            goto out;
        }
        if (!EVP_DigestFinal_ex(ctx, fin, NULL)) goto out;
    }
    /* the text: magic, salt, '$', then the sum in crypt's base64, bytes
     * taken in the published order */
    memcpy(out, magic, mlen);
    memcpy(out + mlen, salt, slen);
    p = out + mlen + slen;
    *p++ = '$';
    bsa_to64(&p, ((uint32_t)fin[0] << 16) | ((uint32_t)fin[6] << 8) | fin[12], 4);
    bsa_to64(&p, ((uint32_t)fin[1] << 16) | ((uint32_t)fin[7] << 8) | fin[13], 4);
    bsa_to64(&p, ((uint32_t)fin[2] << 16) | ((uint32_t)fin[8] << 8) | fin[14], 4);
    bsa_to64(&p, ((uint32_t)fin[3] << 16) | ((uint32_t)fin[9] << 8) | fin[15], 4);
    bsa_to64(&p, ((uint32_t)fin[4] << 16) | ((uint32_t)fin[10] << 8) | fin[5], 4);
    bsa_to64(&p, fin[11], 2);
    *p = '\0';
    rc = 0;

out:
    OPENSSL_cleanse(alt, sizeof(alt));
    OPENSSL_cleanse(fin, sizeof(fin));
    EVP_MD_CTX_free(ctx);
    return rc;
}

/** Any thread.  1 when the password matches a {SHA} secret. */
static int bsa_check_sha(const struct bsa_inst *p, const char *secret,
                         const unsigned char *pw, size_t pwlen)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char enc[64];
    long n;
    int ok = 0;

    if (EVP_Digest(pw, pwlen, d, &dlen, p->sha1, NULL) &&
        (n = mwauth_b64_encode(d, dlen, enc, sizeof(enc))) > 0)
        ok = mwauth_ct_equal(secret + 5, strlen(secret + 5), enc, (size_t)n);
    OPENSSL_cleanse(d, sizeof(d));
    OPENSSL_cleanse(enc, sizeof(enc));
    return ok;
}

/** Any thread (crypt_rn / crypt_r are reentrant with their own data).
 *  1 when the password matches a secret that libcrypt verifies (bcrypt,
 *  SHA-crypt).  A password holding a NUL byte never
 *  matches (crypt reads C strings). */
static int bsa_check_crypt(const char *secret, const unsigned char *pw,
                           size_t pwlen)
{
    struct crypt_data *cd;
    char *copy, *res;
    int ok = 0;

    if (memchr(pw, '\0', pwlen)) return 0;
    copy = malloc(pwlen + 1);
    cd = calloc(1, sizeof(*cd));
    if (copy && cd) {
        memcpy(copy, pw, pwlen);
        copy[pwlen] = '\0';
#ifdef CRYPT_OUTPUT_SIZE
        /* libxcrypt's crypt_rn: NULL on failure.  Also, unlike crypt_r, no
         * sanitizer runtime intercepts it (their crypt_r interceptor has no
         * real function to call when libcrypt arrives by dlopen). */
        res = crypt_rn(copy, secret, cd, (int)sizeof(*cd));
#else
        res = crypt_r(copy, secret, cd);
#endif
        /* failures give NULL or a string starting with '*' */
        if (res && res[0] != '*')
            ok = mwauth_ct_equal(res, strlen(res), secret, strlen(secret));
    }
    if (copy) {
        OPENSSL_cleanse(copy, pwlen + 1);
        free(copy);
    }
    if (cd) {
        OPENSSL_cleanse(cd, sizeof(*cd));
        free(cd);
    }
    return ok;
}

/** Any thread.  1 when the password matches a "$magic$salt$hash" secret by
 *  MD5-crypt with that magic (what go-http-auth does for any secret that
 *  is neither {SHA} nor bcrypt); 0 otherwise, also when malformed. */
static int bsa_check_md5(const struct bsa_inst *p, const char *secret,
                         const unsigned char *pw, size_t pwlen)
{
    const char *d1 = strchr(secret, '$'), *d2, *d3;
    char magic[BSA_MD5_PART_MAX + 3];
    char out[2 * BSA_MD5_PART_MAX + 32];
    size_t mlen, slen;
    int ok = 0;

    if (!d1 || !(d2 = strchr(d1 + 1, '$')) || !(d3 = strchr(d2 + 1, '$')))
        return 0;
    mlen = (size_t)(d2 - d1 - 1);
    slen = (size_t)(d3 - d2 - 1);
    if (mlen > BSA_MD5_PART_MAX || slen > BSA_MD5_PART_MAX) return 0;
    magic[0] = '$';
    memcpy(magic + 1, d1 + 1, mlen);
    magic[mlen + 1] = '$';
    magic[mlen + 2] = '\0';
    if (bsa_md5crypt(p->md5, pw, pwlen, d2 + 1, slen, magic, out,
                     sizeof(out)) == 0)
        ok = mwauth_ct_equal(out, strlen(out), secret, strlen(secret));
    OPENSSL_cleanse(out, sizeof(out));
    return ok;
}

/** Any thread.  1 when pw[0..pwlen) matches the stored secret (chosen by
 *  its prefix as go-http-auth's CheckSecret does), else 0. */
static int bsa_check_secret(const struct bsa_inst *p, const char *secret,
                            const unsigned char *pw, size_t pwlen)
{
    static const char *const crypt_prefixes[] = {"$2a$", "$2b$", "$2x$",
                                                 "$2y$", "$5$", "$6$"};
    size_t i;

    if (secret[0] == '\0') return 0;
    if (!strncmp(secret, "{SHA}", 5)) return bsa_check_sha(p, secret, pw, pwlen);
    for (i = 0; i < sizeof(crypt_prefixes) / sizeof(crypt_prefixes[0]); i++)
        if (!strncmp(secret, crypt_prefixes[i], strlen(crypt_prefixes[i])))
            return bsa_check_crypt(secret, pw, pwlen);
    return bsa_check_md5(p, secret, pw, pwlen);
}

/* ---- lifecycle ---------------------------------------------------------- */

/** Control thread.  Frees an instance; NULL is a no-op. */
static void bsa_destroy(void *inst)
{
    struct bsa_inst *p = inst;

    if (!p) return;
    mwauth_users_release(&p->users);
    mwauth_opts_release(&p->opts);
    free(p->www_authenticate);
    free(p->name);
    EVP_MD_free(p->md5);
    EVP_MD_free(p->sha1);
    free(p);
}

/**
 * Control thread.  Reads users, usersFile, realm, headerField and
 * removeHeader (every problem reported with cfg_error, by key path).
 * 0 and *inst set, or -1.
 */
static int bsa_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    struct bsa_inst *p;
    int t, rc = 0;
    size_t n;

    t = host->cfg_type(cfg);
    if (t != RELAIS_CFG_MAP && t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
        host->cfg_error(cfg, NULL, "expected a map (users, usersFile, realm, "
                        "headerField, removeHeader)");
        return -1;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    p->host = host;
    p->name = strdup(name ? name : "?");
    p->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    p->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    if (!p->name || !p->md5 || !p->sha1) {
        host->cfg_error(cfg, NULL, "out of memory or no MD5/SHA-1 in OpenSSL");
        bsa_destroy(p);
        return -1;
    }
    if (t == RELAIS_CFG_MAP)
        rc |= mwauth_check_keys(host, cfg, bsa_keys,
                                sizeof(bsa_keys) / sizeof(bsa_keys[0]));
    rc |= mwauth_opts_load(host, cfg, &p->opts);
    rc |= mwauth_users_load(host, cfg, 2, &p->users);
    if (!rc) {
        n = strlen(p->opts.realm) + sizeof("Basic realm=\"\"");
        p->www_authenticate = malloc(n);
        if (!p->www_authenticate) {
            host->cfg_error(cfg, NULL, "out of memory");
            rc = -1;
        } else {
            snprintf(p->www_authenticate, n, "Basic realm=\"%s\"",
                     p->opts.realm);
        }
    }
    if (rc) {
        bsa_destroy(p);
        return -1;
    }
    if (p->users.n == 0)
        host->log(RELAIS_LOG_WARN, BSA_WHO, "%s: no users: every request "
                  "will be refused", p->name);
    *inst = p;
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

/**
 * Worker thread.  Checks the Basic credentials of req (Go's
 * Request.BasicAuth: the first Authorization header, scheme "Basic "
 * case-insensitive, strict base64, user before the first ':').  On success
 * sets headerField / removes Authorization and returns RELAIS_NEXT; else
 * answers 401 and returns RELAIS_DONE.  The decoded credentials are wiped
 * before returning.
 */
static int bsa_on_request(void *inst, relais_req *req, void **ctx)
{
    struct bsa_inst *p = inst;
    const relais_host *host = p->host;
    unsigned char cred[BSA_CRED_MAX];
    relais_hdrs *h = host->req_headers(req);
    const char *v = NULL, *secret;
    size_t vlen = 0, ulen = 0;
    const unsigned char *colon;
    long n = -1;
    int ok = 0, rc;

    (void)ctx;
    if (h) v = host->hdr_get(h, "Authorization", 0, &vlen);
    if (v && vlen >= 6 && !strncasecmp(v, "Basic ", 6))
        n = mwauth_b64_decode(v + 6, vlen - 6, cred, sizeof(cred));
    if (n >= 0 && (colon = memchr(cred, ':', (size_t)n)) != NULL) {
        ulen = (size_t)(colon - cred);
        secret = mwauth_users_find(&p->users, (const char *)cred, ulen);
        if (secret)
            ok = bsa_check_secret(p, secret, colon + 1,
                                  (size_t)n - ulen - 1);
    }
    if (ok) {
        char shown[128];

        host->log(RELAIS_LOG_DEBUG, BSA_WHO,
                  "%s: authentication succeeded for user %s", p->name,
                  mwauth_printable((const char *)cred, ulen, shown,
                                   sizeof(shown)));
        rc = mwauth_accept(host, req, &p->opts, (const char *)cred, ulen);
    } else {
        host->log(RELAIS_LOG_DEBUG, BSA_WHO, "%s: authentication failed",
                  p->name);
        rc = mwauth_unauthorized(host, req, p->www_authenticate);
    }
    OPENSSL_cleanse(cred, sizeof(cred));
    return rc;
}

/** The operations table. */
static const relais_middleware_ops bsa_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = bsa_create,
    .destroy = bsa_destroy,
    .on_request = bsa_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "basicauth",
    .version = "1.0.0",
    .config_key = "basicAuth",
    .description = "HTTP Basic authentication (htpasswd: bcrypt, apr1, SHA1)",
    .load = NULL,
    .unload = NULL,
    .ops = &bsa_ops,
};
