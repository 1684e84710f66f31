/*
 * digestauth — Traefik's digestAuth middleware (config key "digestAuth").
 * Module prefix: dga_.
 *
 * HTTP Digest authentication (RFC 2617 / RFC 7616) with MD5 and qop=auth,
 * as Traefik does it (github.com/abbot/go-http-auth, Traefik's fork):
 *
 *   http:
 *     middlewares:
 *       auth:
 *         digestAuth:
 *           users: ["test:traefik:a2688e031edb4be6a3797f3882655c05"]
 *           usersFile: /etc/relais/htdigest   # merged with users
 *           realm: traefik                    # the default
 *           headerField: X-WebAuth-User
 *           removeHeader: true
 *
 * Users are htdigest lines name:realm:HA1 (HA1 = MD5(name:realm:password)
 * in hex); only those of the configured realm can log in.
 *
 * The challenge (401, `Content-Type: text/plain`, body "401
 * Unauthorized\n"):
 *   WWW-Authenticate: Digest realm="R", nonce="N", opaque="O",
 *                     algorithm="MD5", qop="auth"
 * with `, stale=true` appended when the credentials were right but the
 * nonce is unknown (forgotten, or from an earlier configuration) or its
 * nonce count did not grow (a replay or out-of-order requests).  The nonce
 * is 12 random bytes in base64 (16 characters), new for every challenge and
 * remembered with the highest nonce count seen; the opaque value is random
 * per instance.  At most DGA_NONCES_MAX nonces are remembered; when full,
 * the DGA_EVICT least recently used are forgotten (go-http-auth's client
 * cache: 1000 + 100, purging 200).
 *
 * A request passes when, in this order: the Authorization header is
 * `Digest <params>`; opaque matches; algorithm is absent or "MD5"; qop is
 * "auth"; uri equals the request target (path?query) or its path is a
 * prefix of the request's path (go-http-auth's leniency, also for absolute
 * URIs); the user name:realm is known; response equals
 * MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri)) (constant-time); nc is
 * hexadecimal and not zero; the nonce is remembered and nc is larger than
 * its last one.
 *
 * Nothing secret is logged (no HA1, no response, no header).  Built only
 * against the SDK header; links libcrypto.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <relais/plugin.h>

#include "mwauth.h"

/** Who the log lines come from. */
#define DGA_WHO "digestAuth"
/** Length of a nonce / the opaque value: base64 of 12 random bytes. */
#define DGA_NONCE_LEN 16u
/** Most nonces remembered (go-http-auth: ClientCacheSize + Tolerance). */
#define DGA_NONCES_MAX 1100u
/** How many of the least recently used go when the table is full. */
#define DGA_EVICT 200u
/** Hash buckets of the nonce table (a power of two). */
#define DGA_BUCKETS 2048u
/** Longest Authorization header value looked at (longer fails). */
#define DGA_HEADER_MAX 8192u

/** What checking the credentials concluded. */
enum dga_result {
    DGA_FAIL = 0,  /* wrong or malformed: a fresh challenge */
    DGA_OK = 1,    /* authenticated */
    DGA_STALE = 2  /* right credentials, unknown nonce or old nc */
};

/** One remembered nonce. */
struct dga_nonce {
    char nonce[DGA_NONCE_LEN]; /* its text (not NUL-terminated) */
    uint64_t nc;               /* highest nonce count accepted, 0 = none */
    uint64_t seen;             /* sequence number of its last use */
    int32_t next;              /* next entry in its bucket, or free list; -1 */
    int used;                  /* 1 when in the table */
};

/** One configured instance (`http.middlewares.NAME.digestAuth`); the
 *  nonce table is shared by every worker thread under lock. */
struct dga_inst {
    const relais_host *host;         /* host function table */
    char *name;                      /* the middleware's name, for logs */
    struct mwauth_users users;       /* "name:realm" -> HA1 */
    struct mwauth_opts opts;         /* realm, headerField, removeHeader */
    char opaque[DGA_NONCE_LEN + 1];  /* opaque value of this instance */
    EVP_MD *md5;                     /* MD5, fetched once */
    pthread_mutex_t lock;            /* guards everything below */
    int lock_ready;                  /* lock was initialised */
    struct dga_nonce *nonces;        /* DGA_NONCES_MAX entries */
    int32_t *buckets;                /* DGA_BUCKETS chain heads, -1 = none */
    int32_t free_head;               /* first free entry, -1 = none */
    size_t count;                    /* entries in use */
    uint64_t seq;                    /* last sequence number handed out */
    uint64_t *scratch;               /* DGA_NONCES_MAX values for eviction */
};

/** The parameters of a Digest Authorization header that are used; each
 *  points into a per-request buffer (NUL-terminated), NULL when absent. */
struct dga_params {
    const char *username;  /* username */
    const char *uri;       /* uri */
    const char *nonce;     /* nonce */
    const char *nc;        /* nc */
    const char *cnonce;    /* cnonce */
    const char *qop;       /* qop */
    const char *response;  /* response */
    const char *opaque;    /* opaque */
    const char *algorithm; /* algorithm */
};

/** Options of the middleware map (Traefik's DigestAuth fields). */
static const char *const dga_keys[] = {"users", "usersFile", "realm",
                                       "headerField", "removeHeader"};

/* ---- the nonce table (caller holds the lock) ---------------------------- */

/** Any thread.  Bucket of a nonce's text. */
static uint32_t dga_hash(const char *s)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < DGA_NONCE_LEN; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h & (DGA_BUCKETS - 1);
}

/** Lock held.  Index of the entry for nonce s[0..len), or -1. */
static int32_t dga_find(const struct dga_inst *p, const char *s, size_t len)
{
    int32_t i;

    if (len != DGA_NONCE_LEN) return -1;
    for (i = p->buckets[dga_hash(s)]; i >= 0; i = p->nonces[i].next)
        if (!memcmp(p->nonces[i].nonce, s, DGA_NONCE_LEN)) return i;
    return -1;
}

/** Lock held.  Takes entry i out of its bucket onto the free list. */
static void dga_remove(struct dga_inst *p, int32_t i)
{
    int32_t *link = &p->buckets[dga_hash(p->nonces[i].nonce)];

    while (*link >= 0 && *link != i) link = &p->nonces[*link].next;
    if (*link == i) *link = p->nonces[i].next;
    p->nonces[i].used = 0;
    p->nonces[i].next = p->free_head;
    p->free_head = i;
    p->count--;
}

/** Any thread.  Orders two sequence numbers. */
static int dga_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/** Lock held.  Forgets the DGA_EVICT least recently used nonces
 *  (sequence numbers are unique, so exactly that many). */
static void dga_evict(struct dga_inst *p)
{
    size_t i, n = 0;
    uint64_t limit;

    for (i = 0; i < DGA_NONCES_MAX; i++)
        if (p->nonces[i].used) p->scratch[n++] = p->nonces[i].seen;
    if (n < DGA_EVICT) return;
    qsort(p->scratch, n, sizeof(p->scratch[0]), dga_u64_cmp);
    limit = p->scratch[DGA_EVICT - 1];
    for (i = 0; i < DGA_NONCES_MAX; i++)
        if (p->nonces[i].used && p->nonces[i].seen <= limit)
            dga_remove(p, (int32_t)i);
}

/** Lock held.  Remembers nonce s (DGA_NONCE_LEN characters) with no nonce
 *  count yet, making room first when the table is full. */
static void dga_insert(struct dga_inst *p, const char *s)
{
    int32_t i;
    uint32_t b;

    if (p->free_head < 0) dga_evict(p);
    if (p->free_head < 0) return; /* cannot happen */
    i = p->free_head;
    p->free_head = p->nonces[i].next;
    memcpy(p->nonces[i].nonce, s, DGA_NONCE_LEN);
    p->nonces[i].nc = 0;
    p->nonces[i].seen = ++p->seq;
    p->nonces[i].used = 1;
    b = dga_hash(s);
    p->nonces[i].next = p->buckets[b];
    p->buckets[b] = i;
    p->count++;
}

/**
 * Any thread.  Accepts nonce s[0..len) with count nc: DGA_OK and the count
 * recorded when the nonce is remembered and nc is larger than its last
 * count; DGA_STALE otherwise.  Takes the lock.
 */
static int dga_use_nonce(struct dga_inst *p, const char *s, size_t len,
                         uint64_t nc)
{
    int32_t i;
    int rc = DGA_STALE;

    pthread_mutex_lock(&p->lock);
    i = dga_find(p, s, len);
    if (i >= 0 && !(p->nonces[i].nc != 0 && p->nonces[i].nc >= nc)) {
        p->nonces[i].nc = nc;
        p->nonces[i].seen = ++p->seq;
        rc = DGA_OK;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/** Any thread.  Writes a fresh random token (base64 of 12 random bytes,
 *  DGA_NONCE_LEN characters) and a NUL into out.  0, or -1. */
static int dga_random_token(char out[DGA_NONCE_LEN + 1])
{
    unsigned char r[12];

    if (RAND_bytes(r, sizeof(r)) != 1) return -1;
    if (mwauth_b64_encode(r, sizeof(r), out, DGA_NONCE_LEN + 1) !=
        (long)DGA_NONCE_LEN)
        return -1;
    return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/** Any thread.  1 for what Go's strings.TrimSpace removes (ASCII part). */
static int dga_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

/**
 * Any thread.  Records one list element e (NUL-terminated, already trimmed
 * and unescaped, in writable memory) into *pp: "key=value" with the value
 * unquoted when it starts and ends with '"'; an element without '=' is a
 * key with an empty value.  Later keys replace earlier ones.
 */
static void dga_pair(char *e, struct dga_params *pp)
{
    char *eq = strchr(e, '='), *v;
    size_t n;

    if (!eq) return; /* a bare key: none of the keys used has no value */
    *eq = '\0';
    v = eq + 1;
    n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v[n - 1] = '\0';
        v++;
    }
    if (!strcmp(e, "username")) pp->username = v;
    else if (!strcmp(e, "uri")) pp->uri = v;
    else if (!strcmp(e, "nonce")) pp->nonce = v;
    else if (!strcmp(e, "nc")) pp->nc = v;
    else if (!strcmp(e, "cnonce")) pp->cnonce = v;
    else if (!strcmp(e, "qop")) pp->qop = v;
    else if (!strcmp(e, "response")) pp->response = v;
    else if (!strcmp(e, "opaque")) pp->opaque = v;
    else if (!strcmp(e, "algorithm")) pp->algorithm = v;
}

/**
 * Any thread.  Parses the parameters s[0..len) of a Digest header the way
 * go-http-auth's ParsePairs does: the text is trimmed, split on commas
 * outside double quotes (inside them a backslash takes the next character
 * literally and is dropped; the quotes stay until the value is unquoted),
 * each element trimmed.  buf (len + 1 bytes) receives the elements; *pp
 * points into it.
 */
static void dga_parse(const char *s, size_t len, char *buf,
                      struct dga_params *pp)
{
    size_t i = 0, o = 0, start = 0;
    int quote = 0, escape = 0;

    memset(pp, 0, sizeof(*pp));
    while (len && dga_is_space(s[len - 1])) len--;
    while (i < len && dga_is_space(s[i])) i++;
    for (; i <= len; i++) {
        char c = i < len ? s[i] : ',';
        int end = i == len;

        if (!end && escape) {
            buf[o++] = c;
            escape = 0;
        } else if (!end && quote) {
            if (c == '\\') {
                escape = 1;
            } else {
                if (c == '"') quote = 0;
                buf[o++] = c;
            }
        } else if (c == ',') {
            /* an element ends (the last only when not empty) */
            size_t a = start, b = o;

            if (end && o == start) break;
            while (a < b && dga_is_space(buf[a])) a++;
            while (b > a && dga_is_space(buf[b - 1])) b--;
            buf[b] = '\0';
            dga_pair(buf + a, pp);
            o = b + 1;
            start = o;
        } else {
            if (c == '"') quote = 1;
            buf[o++] = c;
        }
    }
}

/** Any thread.  Parses nc (hexadecimal, at least one digit, fitting 64
 *  bits) into *out.  0, or -1. */
static int dga_parse_nc(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (!s || !s[0]) return -1;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        unsigned d;

        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return -1;
        if (v > (UINT64_MAX >> 4)) return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}

/**
 * Any thread.  The path part of a digest uri (before '?' or '#'; for an
 * absolute URI "scheme://authority/path" the path after the authority,
 * "" when none), as [*start, *start + *len).
 */
static void dga_uri_path(const char *uri, const char **start, size_t *len)
{
    const char *p = uri, *sep = strstr(uri, "://");

    if (uri[0] != '/' && sep) {
        p = sep + 3;
        p += strcspn(p, "/?#");
        if (*p != '/') p += strlen(p); /* no path at all */
    }
    *start = p;
    *len = strcspn(p, "?#");
}

/** Any thread.  Writes the lowercase hex MD5 of the n parts joined by ':'
 *  into out (33 bytes).  0, or -1. */
static int dga_md5_hex(const EVP_MD *md5, const char *const *parts,
                       const size_t *lens, size_t n, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char d[16];
    size_t i;
    int rc = -1;

    if (!ctx || !EVP_DigestInit_ex(ctx, md5, NULL)) goto out;
    for (i = 0; i < n; i++)
        if ((i && !EVP_DigestUpdate(ctx, ":", 1)) ||
            !EVP_DigestUpdate(ctx, parts[i], lens[i]))
            goto out;
    if (!EVP_DigestFinal_ex(ctx, d, NULL)) goto out;
    for (i = 0; i < 16; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[32] = '\0';
    rc = 0;

out:
    OPENSSL_cleanse(d, sizeof(d));
    EVP_MD_CTX_free(ctx);
    return rc;
}

/**
 * Worker thread.  Checks the Digest credentials of req (see the file
 * comment for the order of the checks).  On DGA_OK, *user points at the
 * user name (in request memory).  DGA_FAIL on any malformed input.
 */
static int dga_check(struct dga_inst *p, relais_req *req, const char **user)
{
    const relais_host *host = p->host;
    relais_hdrs *h = host->req_headers(req);
    const char *v = NULL, *secret, *method, *path, *query, *up;
    size_t vlen = 0, mlen = 0, plen = 0, qlen = 0, ulen, kl, uplen;
    struct dga_params pp;
    char *buf, *key, ha2[33], kd[33];
    const char *parts[6];
    size_t lens[6];
    uint64_t nc;
    int rc = DGA_FAIL;

    if (h) v = host->hdr_get(h, "Authorization", 0, &vlen);
    /* go-http-auth: SplitN(header, " ", 2), the first part exactly "Digest" */
    if (!v || vlen < 7 || vlen > DGA_HEADER_MAX || memcmp(v, "Digest ", 7))
        return DGA_FAIL;
    buf = host->req_alloc(req, vlen + 1);
    if (!buf) return DGA_FAIL;
    dga_parse(v + 7, vlen - 7, buf, &pp);
    if (!pp.opaque || strcmp(pp.opaque, p->opaque)) return DGA_FAIL;
    if (pp.algorithm && strcmp(pp.algorithm, "MD5")) return DGA_FAIL;
    if (!pp.qop || strcmp(pp.qop, "auth")) return DGA_FAIL;
    if (!pp.uri || !pp.username || !pp.nonce || !pp.response) return DGA_FAIL;
    /* the uri is the request target, or a path prefix of it */
    method = host->req_method(req, &mlen);
    path = host->req_path(req, &plen);
    query = host->req_query(req, &qlen);
    ulen = strlen(pp.uri);
    if (!(ulen == plen + (query ? qlen + 1 : 0) &&
          !memcmp(pp.uri, path, plen) &&
          (!query || (pp.uri[plen] == '?' &&
                      !memcmp(pp.uri + plen + 1, query, qlen))))) {
        dga_uri_path(pp.uri, &up, &uplen);
        if (uplen > plen || memcmp(path, up, uplen)) return DGA_FAIL;
    }
    /* the user, in the configured realm */
    kl = strlen(pp.username) + 1 + strlen(p->opts.realm);
    key = host->req_alloc(req, kl + 1);
    if (!key) return DGA_FAIL;
    snprintf(key, kl + 1, "%s:%s", pp.username, p->opts.realm);
    secret = mwauth_users_find(&p->users, key, kl);
    if (!secret) return DGA_FAIL; /* (go-http-auth would go on with "") */
    parts[0] = method;
    lens[0] = mlen;
    parts[1] = pp.uri;
    lens[1] = ulen;
    if (dga_md5_hex(p->md5, parts, lens, 2, ha2) < 0) return DGA_FAIL;
    parts[0] = secret;
    parts[1] = pp.nonce;
    parts[2] = pp.nc ? pp.nc : "";
    parts[3] = pp.cnonce ? pp.cnonce : "";
    parts[4] = pp.qop;
    parts[5] = ha2;
    for (size_t i = 0; i < 6; i++) lens[i] = strlen(parts[i]);
    if (dga_md5_hex(p->md5, parts, lens, 6, kd) < 0) goto out;
    if (!mwauth_ct_equal(kd, 32, pp.response, strlen(pp.response))) goto out;
    /* the cryptography holds; now the session */
    if (dga_parse_nc(pp.nc, &nc) < 0 || nc == 0) goto out;
    rc = dga_use_nonce(p, pp.nonce, strlen(pp.nonce), nc);
    if (rc == DGA_OK) *user = pp.username;

out:
    OPENSSL_cleanse(kd, sizeof(kd));
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

/** Control thread.  Frees an instance; NULL is a no-op. */
static void dga_destroy(void *inst)
{
    struct dga_inst *p = inst;

    if (!p) return;
    mwauth_users_release(&p->users);
    mwauth_opts_release(&p->opts);
    if (p->lock_ready) pthread_mutex_destroy(&p->lock);
    free(p->nonces);
    free(p->buckets);
    free(p->scratch);
    free(p->name);
    EVP_MD_free(p->md5);
    free(p);
}

/**
 * Control thread.  Reads users, usersFile, realm, headerField and
 * removeHeader (every problem reported with cfg_error, by key path), makes
 * the opaque value and the empty nonce table.  0 and *inst set, or -1.
 */
static int dga_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    struct dga_inst *p;
    int t, rc = 0;
    size_t i;

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
    p->nonces = calloc(DGA_NONCES_MAX, sizeof(*p->nonces));
    p->buckets = malloc(DGA_BUCKETS * sizeof(*p->buckets));
    p->scratch = malloc(DGA_NONCES_MAX * sizeof(*p->scratch));
    if (!p->name || !p->md5 || !p->nonces || !p->buckets || !p->scratch ||
        dga_random_token(p->opaque) < 0 ||
        pthread_mutex_init(&p->lock, NULL) != 0) {
        host->cfg_error(cfg, NULL, "out of memory, no MD5 in OpenSSL or no "
                        "random bytes");
        dga_destroy(p);
        return -1;
    }
    p->lock_ready = 1;
    for (i = 0; i < DGA_BUCKETS; i++) p->buckets[i] = -1;
    for (i = 0; i < DGA_NONCES_MAX; i++)
        p->nonces[i].next = i + 1 < DGA_NONCES_MAX ? (int32_t)(i + 1) : -1;
    p->free_head = 0;
    if (t == RELAIS_CFG_MAP)
        rc |= mwauth_check_keys(host, cfg, dga_keys,
                                sizeof(dga_keys) / sizeof(dga_keys[0]));
    rc |= mwauth_opts_load(host, cfg, &p->opts);
    rc |= mwauth_users_load(host, cfg, 3, &p->users);
    if (rc) {
        dga_destroy(p);
        return -1;
    }
    if (p->users.n == 0)
        host->log(RELAIS_LOG_WARN, DGA_WHO, "%s: no users: every request "
                  "will be refused", p->name);
    *inst = p;
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

/**
 * Worker thread.  Lets req through (headerField, removeHeader) when its
 * Digest credentials hold; else answers 401 with a fresh nonce (stale=true
 * when only the nonce was at fault) and returns RELAIS_DONE.
 */
static int dga_on_request(void *inst, relais_req *req, void **ctx)
{
    struct dga_inst *p = inst;
    const relais_host *host = p->host;
    const char *user = NULL;
    char nonce[DGA_NONCE_LEN + 1], *value;
    size_t n;
    int r;

    (void)ctx;
    r = dga_check(p, req, &user);
    if (r == DGA_OK) {
        char shown[128];

        host->log(RELAIS_LOG_DEBUG, DGA_WHO,
                  "%s: authentication succeeded for user %s", p->name,
                  mwauth_printable(user, strlen(user), shown, sizeof(shown)));
        return mwauth_accept(host, req, &p->opts, user, strlen(user));
    }
    host->log(RELAIS_LOG_DEBUG, DGA_WHO, "%s: authentication failed%s",
              p->name, r == DGA_STALE ? ", possibly because out of order "
                                        "requests (stale nonce)" : "");
    if (dga_random_token(nonce) < 0) return RELAIS_ERROR;
    n = strlen(p->opts.realm) + strlen(p->opaque) + DGA_NONCE_LEN + 96;
    value = host->req_alloc(req, n);
    if (!value) return RELAIS_ERROR;
    snprintf(value, n, "Digest realm=\"%s\", nonce=\"%s\", opaque=\"%s\", "
             "algorithm=\"MD5\", qop=\"auth\"%s", p->opts.realm, nonce,
             p->opaque, r == DGA_STALE ? ", stale=true" : "");
    pthread_mutex_lock(&p->lock);
    dga_insert(p, nonce);
    pthread_mutex_unlock(&p->lock);
    return mwauth_unauthorized(host, req, value);
}

/** The operations table. */
static const relais_middleware_ops dga_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = dga_create,
    .destroy = dga_destroy,
    .on_request = dga_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "digestauth",
    .version = "1.0.0",
    .config_key = "digestAuth",
    .description = "HTTP Digest authentication (MD5, qop=auth; htdigest)",
    .load = NULL,
    .unload = NULL,
    .ops = &dga_ops,
};
