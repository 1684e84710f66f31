/*
 * headers — Traefik v3's headers middleware (config key "headers").
 * Module prefix: hm_.
 *
 * Three groups of options, as in Traefik (pkg/middlewares/headers, with
 * the security part from unrolled/secure):
 *
 *  custom headers   customRequestHeaders / customResponseHeaders: a map of
 *                   header names to values; a value replaces every header
 *                   of that name, an empty value removes them.  Names are
 *                   sent in Go's canonical form ("x-foo" -> "X-Foo").
 *  CORS             accessControlAllowOriginList (exact origins or "*"),
 *                   accessControlAllowOriginListRegex (PCRE2, unanchored:
 *                   an origin containing a match is allowed),
 *                   accessControlAllowMethods / AllowHeaders / ExposeHeaders
 *                   (joined with ","), accessControlAllowCredentials,
 *                   accessControlMaxAge, addVaryHeader.
 *                   A preflight (OPTIONS with Origin and
 *                   Access-Control-Request-Method) is answered here with
 *                   200 and no body: Access-Control-Allow-Credentials: true
 *                   (when set), -Allow-Headers and -Allow-Methods (when not
 *                   empty), -Allow-Origin (the matching list item, "*" for
 *                   the wildcard, or the origin itself for a regex match,
 *                   only when allowed) and -Max-Age (always, "0" by
 *                   default).  Other responses get -Allow-Origin when the
 *                   Origin is allowed, -Allow-Credentials and
 *                   -Expose-Headers when configured whatever the Origin,
 *                   and with addVaryHeader "Origin" appended to the first
 *                   Vary value (",Origin"; left alone when it is exactly
 *                   "Origin").
 *  security         allowedHosts (case-insensitive, compared with the
 *                   authority as sent, or the first non-empty header of
 *                   hostsProxyHeaders; another host gets 500 "Bad Host\n"),
 *                   Strict-Transport-Security from stsSeconds (+
 *                   "; includeSubDomains", "; preload") only when the
 *                   request is HTTPS — a TLS connection or a request header
 *                   of sslProxyHeaders with exactly its value — unless
 *                   forceSTSHeader; X-Frame-Options (customFrameOptionsValue
 *                   or DENY), X-Content-Type-Options: nosniff,
 *                   X-XSS-Protection (customBrowserXSSValue or
 *                   "1; mode=block"), Public-Key-Pins (HTTPS only),
 *                   Content-Security-Policy(-Report-Only), Referrer-Policy,
 *                   Permissions-Policy.  isDevelopment turns off the host
 *                   check, STS and Public-Key-Pins.
 *
 * Order, as in Traefik: the preflight answer first (no host check, no
 * custom or security header on it), then the custom request headers, then
 * the host check and the HTTPS decision (which see the modified request).
 * On the response: the security headers, then the custom response headers,
 * then the CORS headers (so a custom value can replace or remove a
 * security header, and CORS wins over both).  The "Bad Host" answer gets
 * the custom response headers and the CORS headers too.
 *
 *   http:
 *     middlewares:
 *       api-cors:
 *         headers:
 *           accessControlAllowMethods: [GET, OPTIONS, PUT]
 *           accessControlAllowOriginList: [https://foo.bar.org]
 *           accessControlMaxAge: 100
 *           addVaryHeader: true
 *           stsSeconds: 31536000
 *
 * A configuration with no option set is refused ("headers configuration
 * not valid"), as in Traefik; unknown options, options of the wrong type,
 * invalid header names or values and regexes that do not compile are
 * reported with their key path (the middleware is then disabled).  The
 * options Traefik v3 removed (sslRedirect, sslTemporaryRedirect, sslHost,
 * sslForceHost, featurePolicy) are reported as such.
 *
 * Built only against the SDK header; links libpcre2-8.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcre2.h>

#include <relais/plugin.h>

/** Who the log lines name. */
#define HM_WHO "headers"
/** Cap on the entries of one map or list option. */
#define HM_MAX_ITEMS 1024u
/** Cap on one header value and on a joined list. */
#define HM_MAX_VALUE 65536u
/** Cap on one header name. */
#define HM_MAX_NAME 256u

/** One header name and value (custom headers, sslProxyHeaders). */
struct hm_kv {
    char *name;  /* header name (owned, NUL-terminated) */
    char *value; /* value (owned, NUL-terminated; "" removes) */
    size_t vlen; /* strlen(value) */
};

/** A list of strings. */
struct hm_list {
    char **v; /* the items (owned) */
    size_t n; /* how many */
};

/** One configured instance (`http.middlewares.NAME.headers`); read-only
 *  after create, shared by every worker thread. */
struct hm_inst {
    const relais_host *host;      /* host function table */
    int has_custom;               /* a custom header map is not empty */
    int has_cors;                 /* a CORS option is set */
    int has_secure;               /* a security option is set */
    struct hm_kv *req_hdrs;       /* customRequestHeaders */
    size_t nreq;                  /* how many */
    struct hm_kv *resp_hdrs;      /* customResponseHeaders */
    size_t nresp;                 /* how many */
    int allow_credentials;        /* accessControlAllowCredentials */
    char *allow_headers;          /* accessControlAllowHeaders joined, or NULL */
    char *allow_methods;          /* accessControlAllowMethods joined, or NULL */
    char *expose_headers;         /* accessControlExposeHeaders joined, or NULL */
    struct hm_list origins;       /* accessControlAllowOriginList */
    pcre2_code **origin_re;       /* accessControlAllowOriginListRegex */
    size_t nre;                   /* how many */
    char max_age[24];             /* accessControlMaxAge as text */
    int add_vary;                 /* addVaryHeader */
    struct hm_list allowed_hosts; /* allowedHosts */
    struct hm_list host_hdrs;     /* hostsProxyHeaders */
    struct hm_kv *ssl_hdrs;       /* sslProxyHeaders */
    size_t nssl;                  /* how many */
    int is_dev;                   /* isDevelopment */
    struct hm_kv sec_all[8];      /* security headers for every request
                                     (names are literals, values owned) */
    size_t nsec_all;              /* how many */
    struct hm_kv sec_ssl[2];      /* security headers for HTTPS requests
                                     only (STS, Public-Key-Pins), as above */
    size_t nsec_ssl;              /* how many */
};

/** The per-request slot (*ctx) once the security part passed: a tag, not
 *  memory.  HM_CTX_SSL is or-ed in when the request counts as HTTPS. */
#define HM_CTX_PASSED 1u
#define HM_CTX_SSL 2u

/* ---- small helpers ----------------------------------------------------- */

/** Any thread.  1 when c may appear in a header name (an RFC 9110 token
 *  character). */
static int hm_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/** Control thread.  Rewrites the token name in place the way Go's
 *  textproto.CanonicalMIMEHeaderKey does: the first letter and every letter
 *  after '-' upper case, the others lower case. */
static void hm_canonical(char *name)
{
    int upper = 1;

    for (char *p = name; *p; p++) {
        if (upper && *p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
        else if (!upper && *p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        upper = *p == '-';
    }
}

/** Control thread.  strdup that reports running out of memory at node. */
static char *hm_strdup(const relais_host *host, const relais_cfg *node,
                       const char *s)
{
    char *d = strdup(s);

    if (!d) host->cfg_error(node, NULL, "out of memory");
    return d;
}

/** Control thread.  Frees the items of l (l itself is the caller's). */
static void hm_list_release(struct hm_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/** Control thread.  Frees n name/value pairs and the array. */
static void hm_kvs_free(struct hm_kv *kv, size_t n)
{
    if (!kv) return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

/** Control thread: frees an instance; NULL is a no-op. */
static void hm_destroy(void *inst)
{
    struct hm_inst *p = inst;

    if (!p) return;
    hm_kvs_free(p->req_hdrs, p->nreq);
    hm_kvs_free(p->resp_hdrs, p->nresp);
    hm_kvs_free(p->ssl_hdrs, p->nssl);
    free(p->allow_headers);
    free(p->allow_methods);
    free(p->expose_headers);
    hm_list_release(&p->origins);
    for (size_t i = 0; i < p->nre; i++) pcre2_code_free(p->origin_re[i]);
    free(p->origin_re);
    hm_list_release(&p->allowed_hosts);
    hm_list_release(&p->host_hdrs);
    for (size_t i = 0; i < p->nsec_all; i++) free(p->sec_all[i].value);
    for (size_t i = 0; i < p->nsec_ssl; i++) free(p->sec_ssl[i].value);
    free(p);
}

/* ---- configuration ----------------------------------------------------- */

/** Options of the middleware map (Traefik v3's dynamic.Headers). */
static const char *const hm_keys[] = {
    "customRequestHeaders", "customResponseHeaders",
    "accessControlAllowCredentials", "accessControlAllowHeaders",
    "accessControlAllowMethods", "accessControlAllowOriginList",
    "accessControlAllowOriginListRegex", "accessControlExposeHeaders",
    "accessControlMaxAge", "addVaryHeader", "allowedHosts",
    "hostsProxyHeaders", "sslProxyHeaders", "stsSeconds",
    "stsIncludeSubdomains", "stsPreload", "forceSTSHeader", "frameDeny",
    "customFrameOptionsValue", "contentTypeNosniff", "browserXssFilter",
    "customBrowserXSSValue", "contentSecurityPolicy",
    "contentSecurityPolicyReportOnly", "publicKey", "referrerPolicy",
    "permissionsPolicy", "isDevelopment"};
/** Options of Traefik v2 that v3 removed, and what replaces them. */
static const char *const hm_removed[][2] = {
    {"sslRedirect", "the redirectScheme middleware or the entry point redirection"},
    {"sslTemporaryRedirect", "the redirectScheme middleware or the entry point redirection"},
    {"sslHost", "the redirectRegex middleware"},
    {"sslForceHost", "the redirectRegex middleware"},
    {"featurePolicy", "permissionsPolicy"}};

#define HM_N(a) (sizeof(a) / sizeof((a)[0]))

/** Control thread.  Reports every key of cfg that is not an option.
 *  0, or -1 (errors recorded). */
static int hm_check_keys(const relais_host *host, const relais_cfg *cfg)
{
    size_t i, j, len = host->cfg_len(cfg);
    int rc = 0;

    for (i = 0; i < len; i++) {
        const char *key = NULL;

        if (!host->cfg_at(cfg, i, &key) || !key) continue;
        for (j = 0; j < HM_N(hm_keys); j++)
            if (!strcasecmp(key, hm_keys[j])) break;
        if (j < HM_N(hm_keys)) continue;
        rc = -1;
        for (j = 0; j < HM_N(hm_removed); j++)
            if (!strcasecmp(key, hm_removed[j][0])) break;
        if (j < HM_N(hm_removed))
            host->cfg_error(cfg, key, "removed in Traefik v3 (use %s)",
                            hm_removed[j][1]);
        else
            host->cfg_error(cfg, key, "unknown option of the headers middleware");
    }
    return rc;
}

/** Control thread.  0 when the NUL-terminated s has no CR, LF or other
 *  control character but tab; else -1 after an error at node. */
static int hm_check_value(const relais_host *host, const relais_cfg *node,
                          const char *key, const char *s)
{
    size_t n = strlen(s);

    if (n > HM_MAX_VALUE) {
        host->cfg_error(node, key, "value longer than %u bytes", HM_MAX_VALUE);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            host->cfg_error(node, key, "invalid character 0x%02x in a header value",
                            c);
            return -1;
        }
    }
    return 0;
}

/** Control thread.  0 when name is a valid header name, else -1 after an
 *  error at node.key. */
static int hm_check_name(const relais_host *host, const relais_cfg *node,
                         const char *key, const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > HM_MAX_NAME) {
        host->cfg_error(node, key, "invalid header name (1 to %u token characters)",
                        HM_MAX_NAME);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!hm_tchar((unsigned char)name[i])) {
            host->cfg_error(node, key, "invalid header name \"%s\"", name);
            return -1;
        }
    return 0;
}

/**
 * Control thread.  Reads the optional map cfg.key of header names to
 * string values into *out / *n (names canonical, a null value read as "").
 * Absent or null: nothing.  0, or -1 after cfg_error.
 */
static int hm_read_map(const relais_host *host, const relais_cfg *cfg,
                       const char *key, struct hm_kv **out, size_t *n)
{
    const relais_cfg *node = host->cfg_get(cfg, key);
    int t = host->cfg_type(node), rc = 0;
    size_t len, i;
    struct hm_kv *kv;

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, key, "expected a map of header names to values");
        return -1;
    }
    len = host->cfg_len(node);
    if (len == 0) return 0;
    if (len > HM_MAX_ITEMS) {
        host->cfg_error(cfg, key, "more than %u headers", HM_MAX_ITEMS);
        return -1;
    }
    kv = calloc(len, sizeof(*kv));
    if (!kv) {
        host->cfg_error(cfg, key, "out of memory");
        return -1;
    }
    *out = kv;
    for (i = 0; i < len; i++) {
        const char *name = NULL, *value = "";
        const relais_cfg *child = host->cfg_at(node, i, &name);
        int r;

        if (!child || !name) continue;
        r = host->cfg_string(child, NULL, &value);
        if (r == RELAIS_CFG_INVALID) {
            rc = -1;
            continue;
        }
        if (r == RELAIS_CFG_MISSING) value = "";
        if (hm_check_name(host, node, name, name) < 0 ||
            hm_check_value(host, node, name, value) < 0) {
            rc = -1;
            continue;
        }
        kv[*n].name = hm_strdup(host, child, name);
        kv[*n].value = hm_strdup(host, child, value);
        if (!kv[*n].name || !kv[*n].value) {
            free(kv[*n].name);
            free(kv[*n].value);
            kv[*n].name = kv[*n].value = NULL;
            rc = -1;
            continue;
        }
        hm_canonical(kv[*n].name);
        kv[*n].vlen = strlen(value);
        (*n)++;
    }
    return rc;
}

/** Control thread.  Appends a copy of s[0..len) to l (capped at
 *  HM_MAX_ITEMS).  0, or -1 after an error at node.key. */
static int hm_list_add(const relais_host *host, const relais_cfg *node,
                       const char *key, struct hm_list *l, const char *s,
                       size_t len)
{
    char **nv;
    char *d;

    if (l->n >= HM_MAX_ITEMS) {
        host->cfg_error(node, key, "more than %u items", HM_MAX_ITEMS);
        return -1;
    }
    nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
    d = malloc(len + 1);
    if (nv) l->v = nv;
    if (!nv || !d) {
        free(d);
        host->cfg_error(node, key, "out of memory");
        return -1;
    }
    memcpy(d, s, len);
    d[len] = '\0';
    l->v[l->n++] = d;
    return 0;
}

/**
 * Control thread.  Reads the optional list of strings cfg.key into *l.  A
 * single string is read as Traefik reads one: a comma-separated list
 * (items trimmed of blanks, empty ones dropped).  Absent or null: empty.
 * With check_values, every item must be a valid header value.  0, or -1
 * after cfg_error.
 */
static int hm_read_list(const relais_host *host, const relais_cfg *cfg,
                        const char *key, struct hm_list *l, int check_values)
{
    const relais_cfg *node = host->cfg_get(cfg, key);
    int t = host->cfg_type(node), rc = 0;
    const char *s;

    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t == RELAIS_CFG_LIST) {
        size_t len = host->cfg_len(node);
        for (size_t i = 0; i < len; i++) {
            const relais_cfg *item = host->cfg_at(node, i, NULL);
            int r = host->cfg_string(item, NULL, &s);
            if (r == RELAIS_CFG_INVALID) {
                rc = -1;
                continue;
            }
            if (r == RELAIS_CFG_MISSING) s = "";
            if (check_values && hm_check_value(host, item, NULL, s) < 0) {
                rc = -1;
                continue;
            }
            if (hm_list_add(host, cfg, key, l, s, strlen(s)) < 0) return -1;
        }
        return rc;
    }
    if (t == RELAIS_CFG_STRING || t == RELAIS_CFG_INT || t == RELAIS_CFG_REAL) {
        const char *p, *e, *end;
        if (host->cfg_string(node, NULL, &s) != RELAIS_CFG_OK) return -1;
        if (check_values && hm_check_value(host, cfg, key, s) < 0) return -1;
        for (p = s; *p; p = *e ? e + 1 : e) {
            e = strchr(p, ',');
            if (!e) e = p + strlen(p);
            end = e;
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
            if (end > p && hm_list_add(host, cfg, key, l, p, (size_t)(end - p)) < 0)
                return -1;
        }
        return 0;
    }
    host->cfg_error(cfg, key, "expected a list of strings");
    return -1;
}

/** Control thread.  *out = the items of l joined with ",", or NULL when l
 *  is empty.  0, or -1 after an error at cfg.key (too long, no memory). */
static int hm_join(const relais_host *host, const relais_cfg *cfg,
                   const char *key, const struct hm_list *l, char **out)
{
    size_t len = 0, i;
    char *s;

    *out = NULL;
    if (l->n == 0) return 0;
    for (i = 0; i < l->n; i++) len += strlen(l->v[i]) + 1;
    if (len > HM_MAX_VALUE) {
        host->cfg_error(cfg, key, "the joined value is longer than %u bytes",
                        HM_MAX_VALUE);
        return -1;
    }
    s = malloc(len);
    if (!s) {
        host->cfg_error(cfg, key, "out of memory");
        return -1;
    }
    s[0] = '\0';
    for (i = 0; i < l->n; i++) {
        if (i) strcat(s, ",");
        strcat(s, l->v[i]);
    }
    *out = s;
    return 0;
}

/** Control thread.  Reads list cfg.key and joins it into *out (see
 *  hm_join); *set tells whether the list had items.  0, or -1. */
static int hm_read_joined(const relais_host *host, const relais_cfg *cfg,
                          const char *key, char **out, int *set)
{
    struct hm_list l = {0};
    int rc = hm_read_list(host, cfg, key, &l, 1);

    if (rc == 0) rc = hm_join(host, cfg, key, &l, out);
    if (l.n) *set = 1;
    hm_list_release(&l);
    return rc;
}

/** Control thread.  Reads the optional string cfg.key into *out (a copy,
 *  NULL when absent or empty); a valid header value.  0, or -1. */
static int hm_read_str(const relais_host *host, const relais_cfg *cfg,
                       const char *key, char **out)
{
    const char *s = NULL;
    int r = host->cfg_string(cfg, key, &s);

    *out = NULL;
    if (r == RELAIS_CFG_INVALID) return -1;
    if (r == RELAIS_CFG_MISSING || !s[0]) return 0;
    if (hm_check_value(host, cfg, key, s) < 0) return -1;
    *out = strdup(s);
    if (!*out) {
        host->cfg_error(cfg, key, "out of memory");
        return -1;
    }
    return 0;
}

/** Control thread.  Reads the optional boolean cfg.key into *out (0 when
 *  absent).  0, or -1. */
static int hm_read_bool(const relais_host *host, const relais_cfg *cfg,
                        const char *key, int *out)
{
    *out = 0;
    return host->cfg_bool(cfg, key, out) == RELAIS_CFG_INVALID ? -1 : 0;
}

/** Control thread.  Compiles the regexes of accessControlAllowOriginListRegex
 *  (JIT when available).  0, or -1 after an error naming the bad one. */
static int hm_read_regexes(const relais_host *host, const relais_cfg *cfg,
                           struct hm_inst *p)
{
    static const char key[] = "accessControlAllowOriginListRegex";
    struct hm_list l = {0};
    int rc = hm_read_list(host, cfg, key, &l, 0);

    if (rc == 0 && l.n) {
        p->origin_re = calloc(l.n, sizeof(*p->origin_re));
        if (!p->origin_re) {
            host->cfg_error(cfg, key, "out of memory");
            rc = -1;
        }
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        int err = 0;
        PCRE2_SIZE off = 0;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)l.v[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err,
                                       &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof(msg));
            host->cfg_error(cfg, key,
                            "error occurred during origin parsing: \"%s\": %s at "
                            "offset %zu", l.v[i], (const char *)msg, (size_t)off);
            rc = -1;
            break;
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional */
        p->origin_re[p->nre++] = re;
    }
    hm_list_release(&l);
    return rc;
}

/** Control thread.  Adds name: value (value copied) to the security
 *  headers of every request (ssl 0) or of HTTPS requests (ssl 1).  0 or
 *  -1 (no memory, reported at cfg). */
static int hm_sec_add(const relais_host *host, const relais_cfg *cfg,
                      struct hm_inst *p, int ssl, const char *name,
                      const char *value)
{
    struct hm_kv *kv;

    if ((ssl && p->nsec_ssl >= HM_N(p->sec_ssl)) ||
        (!ssl && p->nsec_all >= HM_N(p->sec_all))) {
        host->cfg_error(cfg, NULL, "too many security headers"); /* cannot happen */
        return -1;
    }
    kv = ssl ? &p->sec_ssl[p->nsec_ssl] : &p->sec_all[p->nsec_all];
    kv->name = (char *)name; /* a string literal, never freed */
    kv->value = hm_strdup(host, cfg, value);
    if (!kv->value) return -1;
    kv->vlen = strlen(value);
    if (ssl) p->nsec_ssl++;
    else p->nsec_all++;
    return 0;
}

/**
 * Control thread.  Reads the security options and builds the list of
 * security headers; sets p->has_secure.  0, or -1 after cfg_error.
 */
static int hm_read_secure(const relais_host *host, const relais_cfg *cfg,
                          struct hm_inst *p)
{
    int64_t sts = 0;
    int sub = 0, pre = 0, force = 0, deny = 0, nosniff = 0, xss = 0, rc = 0;
    char *frame = NULL, *cxss = NULL, *csp = NULL, *cspro = NULL, *pk = NULL,
         *ref = NULL, *perm = NULL;
    char sts_txt[96];

    rc |= hm_read_list(host, cfg, "allowedHosts", &p->allowed_hosts, 0);
    rc |= hm_read_list(host, cfg, "hostsProxyHeaders", &p->host_hdrs, 0);
    for (size_t i = 0; rc == 0 && i < p->host_hdrs.n; i++)
        if (hm_check_name(host, cfg, "hostsProxyHeaders", p->host_hdrs.v[i]) < 0)
            rc = -1;
    rc |= hm_read_map(host, cfg, "sslProxyHeaders", &p->ssl_hdrs, &p->nssl);
    if (host->cfg_int(cfg, "stsSeconds", &sts) == RELAIS_CFG_INVALID) rc = -1;
    rc |= hm_read_bool(host, cfg, "stsIncludeSubdomains", &sub);
    rc |= hm_read_bool(host, cfg, "stsPreload", &pre);
    rc |= hm_read_bool(host, cfg, "forceSTSHeader", &force);
    rc |= hm_read_bool(host, cfg, "frameDeny", &deny);
    rc |= hm_read_str(host, cfg, "customFrameOptionsValue", &frame);
    rc |= hm_read_bool(host, cfg, "contentTypeNosniff", &nosniff);
    rc |= hm_read_bool(host, cfg, "browserXssFilter", &xss);
    rc |= hm_read_str(host, cfg, "customBrowserXSSValue", &cxss);
    rc |= hm_read_str(host, cfg, "contentSecurityPolicy", &csp);
    rc |= hm_read_str(host, cfg, "contentSecurityPolicyReportOnly", &cspro);
    rc |= hm_read_str(host, cfg, "publicKey", &pk);
    rc |= hm_read_str(host, cfg, "referrerPolicy", &ref);
    rc |= hm_read_str(host, cfg, "permissionsPolicy", &perm);
    rc |= hm_read_bool(host, cfg, "isDevelopment", &p->is_dev);
    if (rc) goto out;

    p->has_secure = p->allowed_hosts.n || p->host_hdrs.n || p->nssl || sts != 0 ||
                    sub || pre || force || deny || frame || nosniff || xss ||
                    cxss || csp || cspro || pk || ref || perm || p->is_dev;
    /* as unrolled/secure: STS only on HTTPS unless forced, never in
     * development; Public-Key-Pins only on HTTPS, never in development */
    if (sts != 0 && !p->is_dev) {
        snprintf(sts_txt, sizeof(sts_txt), "max-age=%lld%s%s", (long long)sts,
                 sub ? "; includeSubDomains" : "", pre ? "; preload" : "");
        rc |= hm_sec_add(host, cfg, p, !force, "Strict-Transport-Security", sts_txt);
    }
    if (frame || deny)
        rc |= hm_sec_add(host, cfg, p, 0, "X-Frame-Options", frame ? frame : "DENY");
    if (nosniff) rc |= hm_sec_add(host, cfg, p, 0, "X-Content-Type-Options", "nosniff");
    if (cxss || xss)
        rc |= hm_sec_add(host, cfg, p, 0, "X-XSS-Protection", cxss ? cxss : "1; mode=block");
    if (pk && !p->is_dev) rc |= hm_sec_add(host, cfg, p, 1, "Public-Key-Pins", pk);
    if (csp) rc |= hm_sec_add(host, cfg, p, 0, "Content-Security-Policy", csp);
    if (cspro)
        rc |= hm_sec_add(host, cfg, p, 0, "Content-Security-Policy-Report-Only", cspro);
    if (ref) rc |= hm_sec_add(host, cfg, p, 0, "Referrer-Policy", ref);
    if (perm) rc |= hm_sec_add(host, cfg, p, 0, "Permissions-Policy", perm);
out:
    free(frame);
    free(cxss);
    free(csp);
    free(cspro);
    free(pk);
    free(ref);
    free(perm);
    return rc ? -1 : 0;
}

/**
 * Control thread.  Builds an instance from the map under "headers".
 * Returns 0 with *inst set, or -1 after reporting every problem found with
 * host->cfg_error.
 */
static int hm_create(const relais_host *host, const relais_cfg *cfg,
                     const char *name, void **inst)
{
    struct hm_inst *p;
    int64_t max_age = 0;
    int t, rc = 0, cors = 0;

    t = host->cfg_type(cfg);
    if (t != RELAIS_CFG_MAP && t != RELAIS_CFG_NULL && t != RELAIS_CFG_ABSENT) {
        host->cfg_error(cfg, NULL, "expected a map of header options");
        return -1;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    p->host = host;
    if (t == RELAIS_CFG_MAP) {
        rc |= hm_check_keys(host, cfg);
        rc |= hm_read_map(host, cfg, "customRequestHeaders", &p->req_hdrs, &p->nreq);
        rc |= hm_read_map(host, cfg, "customResponseHeaders", &p->resp_hdrs,
                          &p->nresp);
        rc |= hm_read_bool(host, cfg, "accessControlAllowCredentials",
                           &p->allow_credentials);
        rc |= hm_read_joined(host, cfg, "accessControlAllowHeaders",
                             &p->allow_headers, &cors);
        rc |= hm_read_joined(host, cfg, "accessControlAllowMethods",
                             &p->allow_methods, &cors);
        rc |= hm_read_joined(host, cfg, "accessControlExposeHeaders",
                             &p->expose_headers, &cors);
        rc |= hm_read_list(host, cfg, "accessControlAllowOriginList", &p->origins, 1);
        rc |= hm_read_regexes(host, cfg, p);
        if (host->cfg_int(cfg, "accessControlMaxAge", &max_age) == RELAIS_CFG_INVALID)
            rc = -1;
        rc |= hm_read_bool(host, cfg, "addVaryHeader", &p->add_vary);
        rc |= hm_read_secure(host, cfg, p);
    }
    if (rc) goto fail;
    /* Go's strconv.Itoa(int(...)) of an int64 on a 64-bit system */
    snprintf(p->max_age, sizeof(p->max_age), "%lld", (long long)max_age);
    p->has_custom = p->nreq || p->nresp;
    p->has_cors = cors || p->allow_credentials || p->origins.n || p->nre ||
                  max_age != 0 || p->add_vary;
    if (!p->has_custom && !p->has_cors && !p->has_secure) {
        host->cfg_error(cfg, NULL, "headers configuration not valid: no option set");
        goto fail;
    }
    for (size_t i = 0; i < p->nreq; i++)
        if (!strcasecmp(p->req_hdrs[i].name, "Host") && p->req_hdrs[i].vlen)
            host->log(RELAIS_LOG_WARN, HM_WHO,
                      "%s: customRequestHeaders.Host: the host offers no way to "
                      "change the upstream authority; ignored", name ? name : "?");
    *inst = p;
    return 0;
fail:
    hm_destroy(p);
    return -1;
}

/* ---- requests and responses -------------------------------------------- */

/** Any thread.  The first value of header name in h, or "" (as Go's
 *  Header.Get); *len its length. */
static const char *hm_get(const relais_host *host, relais_hdrs *h,
                          const char *name, size_t *len)
{
    const char *v = h ? host->hdr_get(h, name, 0, len) : NULL;

    if (!v) {
        *len = 0;
        return "";
    }
    return v;
}

/**
 * Any thread.  Whether origin[0..len) is allowed, as Traefik's
 * isOriginAllowed: the first list item equal to it or "*" gives that item,
 * else the first regex that matches somewhere in it gives the origin
 * itself.  Returns 1 with *val / *vlen set, 0 when refused, -1 when memory
 * ran out.
 */
static int hm_origin_allowed(const struct hm_inst *p, const char *origin,
                             size_t len, const char **val, size_t *vlen)
{
    for (size_t i = 0; i < p->origins.n; i++) {
        const char *it = p->origins.v[i];
        size_t n = strlen(it);
        if ((n == 1 && it[0] == '*') || (n == len && !memcmp(it, origin, len))) {
            *val = it;
            *vlen = n;
            return 1;
        }
    }
    for (size_t i = 0; i < p->nre; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->origin_re[i], NULL);
        int r;
        if (!md) return -1;
        r = pcre2_match(p->origin_re[i], (PCRE2_SPTR)origin, len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (r >= 0) {
            *val = origin;
            *vlen = len;
            return 1;
        }
    }
    return 0;
}

/**
 * Worker thread.  Traefik's PostRequestModifyResponseHeaders on the
 * response headers rh: the custom response headers, then
 * Access-Control-Allow-Origin when the request's Origin is allowed,
 * -Allow-Credentials, -Expose-Headers and Vary.  0, or -1 (no memory).
 */
static int hm_modify_response(const struct hm_inst *p, relais_req *req,
                              relais_hdrs *rh)
{
    const relais_host *host = p->host;
    const char *origin, *val, *vary;
    size_t olen, vlen, varylen;
    char *buf;
    int r;

    for (size_t i = 0; i < p->nresp; i++) {
        const struct hm_kv *kv = &p->resp_hdrs[i];
        if (kv->vlen == 0) host->hdr_del(rh, kv->name);
        else if (host->hdr_set(rh, kv->name, kv->value, kv->vlen) < 0) return -1;
    }
    if (p->origins.n || p->nre) {
        origin = hm_get(host, host->req_headers(req), "Origin", &olen);
        r = hm_origin_allowed(p, origin, olen, &val, &vlen);
        if (r < 0) return -1;
        if (r && host->hdr_set(rh, "Access-Control-Allow-Origin", val, vlen) < 0)
            return -1;
    }
    if (p->allow_credentials &&
        host->hdr_set(rh, "Access-Control-Allow-Credentials", "true", 4) < 0)
        return -1;
    if (p->expose_headers &&
        host->hdr_set(rh, "Access-Control-Expose-Headers", p->expose_headers,
                      strlen(p->expose_headers)) < 0)
        return -1;
    if (!p->add_vary) return 0;
    vary = hm_get(host, rh, "Vary", &varylen);
    if (varylen == 6 && !memcmp(vary, "Origin", 6)) return 0;
    if (varylen > HM_MAX_VALUE) return -1;
    buf = host->req_alloc(req, varylen + 8);
    if (!buf) return -1;
    memcpy(buf, vary, varylen);
    if (varylen) buf[varylen++] = ',';
    memcpy(buf + varylen, "Origin", 6);
    return host->hdr_set(rh, "Vary", buf, varylen + 6);
}

/**
 * Worker thread.  Answers a CORS preflight request: 200, no body, the
 * Access-Control-* headers Traefik's processCorsHeaders sets.  RELAIS_DONE,
 * or RELAIS_ERROR.
 */
static int hm_preflight(const struct hm_inst *p, relais_req *req,
                        const char *origin, size_t olen)
{
    const relais_host *host = p->host;
    relais_header out[5];
    size_t n = 0, vlen;
    const char *val;
    char *o;
    int r;

    if (p->allow_credentials)
        out[n++] = (relais_header){"Access-Control-Allow-Credentials", "true"};
    if (p->allow_headers)
        out[n++] = (relais_header){"Access-Control-Allow-Headers", p->allow_headers};
    if (p->allow_methods)
        out[n++] = (relais_header){"Access-Control-Allow-Methods", p->allow_methods};
    r = hm_origin_allowed(p, origin, olen, &val, &vlen);
    if (r < 0) return RELAIS_ERROR;
    if (r) {
        o = host->req_alloc(req, vlen + 1);
        if (!o) return RELAIS_ERROR;
        memcpy(o, val, vlen);
        o[vlen] = '\0';
        out[n++] = (relais_header){"Access-Control-Allow-Origin", o};
    }
    out[n++] = (relais_header){"Access-Control-Max-Age", p->max_age};
    if (host->respond(req, 200, out, n, NULL, 0) < 0) return RELAIS_ERROR;
    return RELAIS_DONE;
}

/** Worker thread.  Applies customRequestHeaders to the request headers h
 *  (the Host entry is left out: see hm_create).  0, or -1. */
static int hm_modify_request(const struct hm_inst *p, relais_hdrs *h)
{
    const relais_host *host = p->host;

    for (size_t i = 0; i < p->nreq; i++) {
        const struct hm_kv *kv = &p->req_hdrs[i];
        if (!strcasecmp(kv->name, "Host")) continue;
        if (kv->vlen == 0) host->hdr_del(h, kv->name);
        else if (host->hdr_set(h, kv->name, kv->value, kv->vlen) < 0) return -1;
    }
    return 0;
}

/**
 * Worker thread.  The security part of the request: the allowedHosts
 * check (a refused host is answered 500 "Bad Host\n", with the custom
 * response and CORS headers) and the HTTPS decision stored in *ctx.
 * RELAIS_NEXT, RELAIS_DONE or RELAIS_ERROR.
 */
static int hm_secure_request(const struct hm_inst *p, relais_req *req,
                             relais_hdrs *h, void **ctx)
{
    static const relais_header bad[] = {
        {"Content-Type", "text/plain; charset=utf-8"},
        {"X-Content-Type-Options", "nosniff"}};
    const relais_host *host = p->host;
    const char *hostname, *v, *scheme;
    size_t hlen, vl, sl, i;
    int ssl;

    if (p->allowed_hosts.n && !p->is_dev) {
        hostname = host->req_authority(req, &hlen);
        if (!hostname) hlen = 0;
        for (i = 0; i < p->host_hdrs.n; i++) {
            v = hm_get(host, h, p->host_hdrs.v[i], &vl);
            if (vl) {
                hostname = v;
                hlen = vl;
                break;
            }
        }
        for (i = 0; i < p->allowed_hosts.n; i++)
            if (strlen(p->allowed_hosts.v[i]) == hlen &&
                !strncasecmp(p->allowed_hosts.v[i], hostname, hlen))
                break;
        if (i == p->allowed_hosts.n) {
            relais_hdrs *rh;
            if (host->respond(req, 500, bad, 2, "Bad Host\n", 9) < 0)
                return RELAIS_ERROR;
            rh = host->resp_headers(req);
            if (rh && hm_modify_response(p, req, rh) < 0) return RELAIS_ERROR;
            return RELAIS_DONE;
        }
    }
    scheme = host->req_scheme(req, &sl);
    ssl = host->req_is_tls(req) || (scheme && sl == 5 && !strncasecmp(scheme, "https", 5));
    for (i = 0; !ssl && i < p->nssl; i++) {
        v = hm_get(host, h, p->ssl_hdrs[i].name, &vl);
        ssl = vl == p->ssl_hdrs[i].vlen && !memcmp(v, p->ssl_hdrs[i].value, vl);
    }
    *ctx = (void *)(uintptr_t)(HM_CTX_PASSED | (ssl ? HM_CTX_SSL : 0));
    return RELAIS_NEXT;
}

/**
 * Worker thread.  A preflight is answered; otherwise the custom request
 * headers are applied and the security checks run.  Returns an enum
 * relais_verdict.
 */
static int hm_on_request(void *inst, relais_req *req, void **ctx)
{
    const struct hm_inst *p = inst;
    const relais_host *host = p->host;
    relais_hdrs *h = host->req_headers(req);
    const char *m, *origin;
    size_t mlen, olen, alen;

    if (!h) return RELAIS_ERROR;
    if (p->has_cors) {
        m = host->req_method(req, &mlen);
        origin = hm_get(host, h, "Origin", &olen);
        (void)hm_get(host, h, "Access-Control-Request-Method", &alen);
        if (m && mlen == 7 && !memcmp(m, "OPTIONS", 7) && olen && alen)
            return hm_preflight(p, req, origin, olen);
    }
    if (p->has_custom && hm_modify_request(p, h) < 0) return RELAIS_ERROR;
    if (p->has_secure) return hm_secure_request(p, req, h, ctx);
    return RELAIS_NEXT;
}

/**
 * Worker thread.  The security headers (those for HTTPS only when the
 * request counted as HTTPS), then the custom response and CORS headers.
 * RELAIS_NEXT, or RELAIS_ERROR when memory ran out.
 */
static int hm_on_response(void *inst, relais_req *req, void **ctx)
{
    const struct hm_inst *p = inst;
    const relais_host *host = p->host;
    relais_hdrs *rh = host->resp_headers(req);
    uintptr_t tag = (uintptr_t)*ctx;

    if (!rh) return RELAIS_NEXT;
    if (tag & HM_CTX_PASSED) {
        for (size_t i = 0; i < p->nsec_all; i++)
            if (host->hdr_set(rh, p->sec_all[i].name, p->sec_all[i].value,
                              p->sec_all[i].vlen) < 0)
                return RELAIS_ERROR;
        for (size_t i = 0; (tag & HM_CTX_SSL) && i < p->nsec_ssl; i++)
            if (host->hdr_set(rh, p->sec_ssl[i].name, p->sec_ssl[i].value,
                              p->sec_ssl[i].vlen) < 0)
                return RELAIS_ERROR;
    }
    if ((p->has_custom || p->has_cors) && hm_modify_response(p, req, rh) < 0)
        return RELAIS_ERROR;
    return RELAIS_NEXT;
}

/* ---- the descriptor ---------------------------------------------------- */

/** Middleware operations. */
static const relais_middleware_ops hm_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = hm_create,
    .destroy = hm_destroy,
    .on_request = hm_on_request,
    .on_response = hm_on_response,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "headers",
    "1.0.0",
    "headers",
    "Traefik's headers middleware: custom headers, CORS, security headers",
    NULL,
    NULL,
    &hm_ops};
