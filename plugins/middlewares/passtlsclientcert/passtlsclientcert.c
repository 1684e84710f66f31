/*
 * passtlsclientcert — Traefik's passTLSClientCert middleware (config key
 * "passTLSClientCert").  Module prefix: ptc_.
 *
 * It passes the certificate chain the client presented on a mutual-TLS
 * connection to the upstream in two request headers:
 *
 *   X-Forwarded-Tls-Client-Cert       (pem: true) every certificate as the
 *       base64 of its DER (a PEM body without its delimiters and line
 *       breaks), certificates separated by ",", leaf first;
 *   X-Forwarded-Tls-Client-Cert-Info  (info: {...}) the selected fields of
 *       every certificate, URL-query-escaped as a whole.  Unescaped, one
 *       certificate reads
 *         Subject="DC=..,C=..,ST=..,L=..,O=..,OU=..,SN=..,CN=..";
 *         Issuer="DC=..,C=..,ST=..,L=..,O=..,SN=..,CN..";
 *         SerialNumber="<decimal>";NB="<unix>";NA="<unix>";
 *         SAN="<dns..>,<emails..>,<ips..>,<uris..>"
 *       (fields joined by ";", absent or empty ones left out), and
 *       certificates are joined by ",".  In a distinguished name the DC,
 *       C, ST, L, O and OU parts list every value in certificate order (a
 *       DC even when empty, the others only when not empty); SN and CN hold
 *       the last value of the name, left out when empty.  The issuer has no
 *       OU option, as in Traefik.
 *
 * Incoming headers of both names are always removed first: a client cannot
 * forge them.  On a plain connection, or without a client certificate,
 * nothing is added.
 *
 *   http:
 *     middlewares:
 *       mtls:
 *         passTLSClientCert:
 *           pem: true
 *           info: {notAfter: true, sans: true, subject: {commonName: true}}
 *
 * Unknown options and options of the wrong type are reported with their key
 * path (the middleware is then disabled).  Built only against the SDK
 * header; links OpenSSL's libcrypto to read the DER.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <relais/plugin.h>

/** Header carrying the certificates (pem). */
#define PTC_HDR_CERT "X-Forwarded-Tls-Client-Cert"
/** Header carrying the selected fields (info). */
#define PTC_HDR_INFO "X-Forwarded-Tls-Client-Cert-Info"
/** Certificates of the client's chain looked at (leaf included); more are
 *  ignored.  OpenSSL's own cap on a received chain is 100 KiB. */
#define PTC_MAX_CERTS 32u
/** Cap on one header value (and on any intermediate text). */
#define PTC_VALUE_MAX (1024u * 1024u)

/** Which parts of a distinguished name go into the info header. */
struct ptc_dn {
    int present;             /* the subject / issuer map was given */
    int country;             /* C= parts */
    int province;            /* ST= parts */
    int locality;            /* L= parts */
    int organization;        /* O= parts */
    int organizational_unit; /* OU= parts (subject only) */
    int serial_number;       /* SN= part */
    int common_name;         /* CN= part */
    int domain_component;    /* DC= parts */
};

/** One configured instance (`http.middlewares.NAME.passTLSClientCert`);
 *  read-only after create, shared by every worker thread. */
struct ptc_inst {
    const relais_host *host; /* host function table */
    int has_peer_cert;       /* the host offers req_tls_peer_cert */
    int pem;                 /* set X-Forwarded-Tls-Client-Cert */
    int info;                /* set X-Forwarded-Tls-Client-Cert-Info */
    int not_after;           /* info: NA= */
    int not_before;          /* info: NB= */
    int sans;                /* info: SAN= */
    int serial_number;       /* info: SerialNumber= */
    struct ptc_dn subject;   /* info: Subject= */
    struct ptc_dn issuer;    /* info: Issuer= */
};

/** A growing text buffer with a hard cap; failures are sticky. */
struct ptc_buf {
    char *p;    /* the bytes (malloc), not NUL-terminated */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    int failed; /* an append hit PTC_VALUE_MAX or ran out of memory */
};

/* ---- the buffer -------------------------------------------------------- */

/** Any thread.  Appends n bytes of s to b unless that would pass
 *  PTC_VALUE_MAX (then b->failed is set and nothing is appended). */
static void ptc_buf_add(struct ptc_buf *b, const void *s, size_t n)
{
    size_t want;
    char *np;

    if (b->failed || n == 0) return;
    if (n > PTC_VALUE_MAX || b->len > PTC_VALUE_MAX - n) {
        b->failed = 1;
        return;
    }
    want = b->len + n;
    if (want > b->cap) {
        size_t ncap = b->cap ? b->cap : 512;
        while (ncap < want) ncap *= 2;
        if (ncap > PTC_VALUE_MAX) ncap = PTC_VALUE_MAX;
        np = realloc(b->p, ncap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/** Any thread.  Appends the NUL-terminated string s. */
static void ptc_buf_str(struct ptc_buf *b, const char *s)
{
    ptc_buf_add(b, s, strlen(s));
}

/** Any thread.  Frees the bytes of b (b itself is the caller's). */
static void ptc_buf_release(struct ptc_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- configuration ----------------------------------------------------- */

/** Options of the middleware map. */
static const char *const ptc_keys_top[] = {"pem", "info"};
/** Options of info. */
static const char *const ptc_keys_info[] = {
    "notAfter", "notBefore", "sans", "serialNumber", "subject", "issuer"};
/** Options of info.subject. */
static const char *const ptc_keys_subject[] = {
    "country", "province", "locality", "organization",
    "organizationalUnit", "commonName", "serialNumber", "domainComponent"};
/** Options of info.issuer (Traefik has no organizationalUnit there). */
static const char *const ptc_keys_issuer[] = {
    "country", "province", "locality", "organization",
    "commonName", "serialNumber", "domainComponent"};

#define PTC_NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/**
 * Control thread.  Reports every key of map node that is not one of the n
 * names of known (case-insensitive, as the host matches keys), naming the
 * expected ones.  0 when all are known, else -1 (errors recorded).
 */
static int ptc_check_keys(const relais_host *host, const relais_cfg *node,
                          const char *const *known, size_t n)
{
    char expected[256];
    size_t i, j, len = host->cfg_len(node), used = 0;
    int rc = 0;

    expected[0] = '\0';
    for (j = 0; j < n; j++) {
        int w = snprintf(expected + used, sizeof(expected) - used, "%s%s",
                         j ? ", " : "", known[j]);
        if (w < 0 || (size_t)w >= sizeof(expected) - used) break;
        used += (size_t)w;
    }
    for (i = 0; i < len; i++) {
        const char *key = NULL;

        if (!host->cfg_at(node, i, &key) || !key) continue;
        for (j = 0; j < n; j++)
            if (!strcasecmp(key, known[j])) break;
        if (j == n) {
            host->cfg_error(node, key, "unknown option (expected %s)",
                            expected);
            rc = -1;
        }
    }
    return rc;
}

/**
 * Control thread.  Reads the optional boolean node.key into *out (left as
 * is when absent).  0, or -1 when it is not a boolean (error recorded by
 * the host with the key path).
 */
static int ptc_bool(const relais_host *host, const relais_cfg *node,
                    const char *key, int *out)
{
    return host->cfg_bool(node, key, out) == RELAIS_CFG_INVALID ? -1 : 0;
}

/**
 * Control thread.  Reads map node.key (a distinguished-name selection,
 * subject when subject is 1, else issuer) into *dn.  Absent or null leaves
 * *dn all zero.  0, or -1 after cfg_error.
 */
static int ptc_read_dn(const relais_host *host, const relais_cfg *info,
                       const char *key, int subject, struct ptc_dn *dn)
{
    const relais_cfg *node = host->cfg_get(info, key);
    int t = host->cfg_type(node), rc = 0;

    memset(dn, 0, sizeof(*dn));
    if (t == RELAIS_CFG_ABSENT || t == RELAIS_CFG_NULL) return 0;
    if (t != RELAIS_CFG_MAP) {
        host->cfg_error(info, key, "expected a map of booleans (country, "
                        "province, locality, organization, %scommonName, "
                        "serialNumber, domainComponent)",
                        subject ? "organizationalUnit, " : "");
        return -1;
    }
    dn->present = 1;
    if (subject)
        rc |= ptc_check_keys(host, node, ptc_keys_subject,
                             PTC_NKEYS(ptc_keys_subject));
    else
        rc |= ptc_check_keys(host, node, ptc_keys_issuer,
                             PTC_NKEYS(ptc_keys_issuer));
    rc |= ptc_bool(host, node, "country", &dn->country);
    rc |= ptc_bool(host, node, "province", &dn->province);
    rc |= ptc_bool(host, node, "locality", &dn->locality);
    rc |= ptc_bool(host, node, "organization", &dn->organization);
    if (subject)
        rc |= ptc_bool(host, node, "organizationalUnit",
                       &dn->organizational_unit);
    rc |= ptc_bool(host, node, "commonName", &dn->common_name);
    rc |= ptc_bool(host, node, "serialNumber", &dn->serial_number);
    rc |= ptc_bool(host, node, "domainComponent", &dn->domain_component);
    return rc ? -1 : 0;
}

/** Control thread: frees an instance; NULL is a no-op. */
static void ptc_destroy(void *inst)
{
    free(inst);
}

/**
 * Control thread.  Reads pem (bool) and info (map: notAfter, notBefore,
 * sans, serialNumber booleans; subject and issuer maps of booleans).  Every
 * problem is reported with cfg_error (all of them, not only the first).
 * 0 and *inst set, or -1.
 */
static int ptc_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    struct ptc_inst *p;
    const relais_cfg *info;
    int t, rc = 0;

    p = calloc(1, sizeof(*p));
    if (!p) {
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    p->host = host;
    p->has_peer_cert = RELAIS_HOST_HAS(host, req_tls_peer_cert);
    t = host->cfg_type(cfg);
    if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL && t != RELAIS_CFG_MAP) {
        host->cfg_error(cfg, NULL, "expected a map (pem, info)");
        rc = -1;
    } else if (t == RELAIS_CFG_MAP) {
        rc |= ptc_check_keys(host, cfg, ptc_keys_top, PTC_NKEYS(ptc_keys_top));
        rc |= ptc_bool(host, cfg, "pem", &p->pem);
        info = host->cfg_get(cfg, "info");
        t = host->cfg_type(info);
        if (t == RELAIS_CFG_MAP) {
            p->info = 1;
            rc |= ptc_check_keys(host, info, ptc_keys_info,
                                 PTC_NKEYS(ptc_keys_info));
            rc |= ptc_bool(host, info, "notAfter", &p->not_after);
            rc |= ptc_bool(host, info, "notBefore", &p->not_before);
            rc |= ptc_bool(host, info, "sans", &p->sans);
            rc |= ptc_bool(host, info, "serialNumber", &p->serial_number);
            rc |= ptc_read_dn(host, info, "subject", 1, &p->subject);
            rc |= ptc_read_dn(host, info, "issuer", 0, &p->issuer);
        } else if (t != RELAIS_CFG_ABSENT && t != RELAIS_CFG_NULL) {
            host->cfg_error(cfg, "info", "expected a map (notAfter, notBefore, "
                            "sans, serialNumber, subject, issuer)");
            rc = -1;
        }
    }
    if (rc) {
        ptc_destroy(p);
        return -1;
    }
    if (!p->has_peer_cert)
        host->log(RELAIS_LOG_WARN, "passTLSClientCert",
                  "%s: the host cannot tell client certificates (ABI < 1.3): "
                  "no header will be set", name ? name : "?");
    *inst = p;
    return 0;
}

/* ---- reading certificates ---------------------------------------------- */

/** Any thread.  Appends the UTF-8 form of the UTF-16BE bytes s[0..n) (a
 *  BMPString; a trailing U+0000 terminator dropped, unpaired surrogates as
 *  U+FFFD). */
static void ptc_add_bmp(struct ptc_buf *b, const unsigned char *s, size_t n)
{
    size_t i;

    n &= ~(size_t)1;
    if (n >= 2 && s[n - 1] == 0 && s[n - 2] == 0) n -= 2;
    for (i = 0; i + 1 < n; i += 2) {
        uint32_t c = ((uint32_t)s[i] << 8) | s[i + 1];
        unsigned char u[4];
        size_t k;

        if (c >= 0xD800 && c < 0xDC00 && i + 3 < n) {
            uint32_t lo = ((uint32_t)s[i + 2] << 8) | s[i + 3];
            if (lo >= 0xDC00 && lo < 0xE000) {
                c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            } else {
                c = 0xFFFD;
            }
        } else if (c >= 0xD800 && c < 0xE000) {
            c = 0xFFFD;
        }
        if (c < 0x80) {
            u[0] = (unsigned char)c;
            k = 1;
        } else if (c < 0x800) {
            u[0] = (unsigned char)(0xC0 | (c >> 6));
            u[1] = (unsigned char)(0x80 | (c & 0x3F));
            k = 2;
        } else if (c < 0x10000) {
            u[0] = (unsigned char)(0xE0 | (c >> 12));
            u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            u[2] = (unsigned char)(0x80 | (c & 0x3F));
            k = 3;
        } else {
            u[0] = (unsigned char)(0xF0 | (c >> 18));
            u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            u[3] = (unsigned char)(0x80 | (c & 0x3F));
            k = 4;
        }
        ptc_buf_add(b, u, k);
    }
}

/**
 * Any thread.  Appends the text of an attribute value: the bytes as they
 * are for the 8-bit string types (UTF8String, PrintableString, IA5String,
 * NumericString, T61String), BMPString and UniversalString converted to
 * UTF-8.
 */
static void ptc_add_string(struct ptc_buf *b, const ASN1_STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s), type = ASN1_STRING_type(s);

    if (!d || n <= 0) return;
    if (type == V_ASN1_BMPSTRING) {
        ptc_add_bmp(b, d, (size_t)n);
    } else if (type == V_ASN1_UNIVERSALSTRING) {
        unsigned char *u = NULL;
        int un = ASN1_STRING_to_UTF8(&u, s);
        if (un > 0) ptc_buf_add(b, u, (size_t)un);
        else if (un < 0) b->failed = 1;
        OPENSSL_free(u);
    } else {
        ptc_buf_add(b, d, (size_t)n);
    }
}

/** Any thread.  Appends "PREFIX=value," for entry e of a name, or nothing
 *  when the value is empty and keep_empty is 0. */
static void ptc_add_part(struct ptc_buf *b, const char *prefix,
                         const X509_NAME_ENTRY *e, int keep_empty)
{
    size_t mark = b->len, start;

    ptc_buf_str(b, prefix);
    ptc_buf_add(b, "=", 1);
    start = b->len;
    ptc_add_string(b, X509_NAME_ENTRY_get_data(e));
    if (b->failed) return;
    if (b->len == start && !keep_empty) {
        b->len = mark;
        return;
    }
    ptc_buf_add(b, ",", 1);
}

/** Any thread.  Appends "PREFIX=value," for every entry of nid in name, in
 *  order (empty values skipped unless keep_empty). */
static void ptc_add_all(struct ptc_buf *b, const X509_NAME *name, int nid,
                        const char *prefix, int keep_empty)
{
    int i = -1;

    while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0)
        ptc_add_part(b, prefix, X509_NAME_get_entry(name, i), keep_empty);
}

/** Any thread.  Appends "PREFIX=value," for the last entry of nid in name
 *  (a single-valued field: the last value wins), unless it is empty. */
static void ptc_add_last(struct ptc_buf *b, const X509_NAME *name, int nid,
                         const char *prefix)
{
    int i = -1, last = -1;

    while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) last = i;
    if (last >= 0) ptc_add_part(b, prefix, X509_NAME_get_entry(name, last), 0);
}

/**
 * Any thread.  Appends `;`-separated field LABEL="..." for the selected
 * parts of name (DC, C, ST, L, O, OU, SN, CN in that order, the final ","
 * removed); appends nothing when no part is there.  *first says whether a
 * field was already written (a ";" is needed) and is updated.
 */
static void ptc_add_dn(struct ptc_buf *b, const char *label,
                       const struct ptc_dn *dn, const X509_NAME *name,
                       int *first)
{
    size_t mark = b->len, start;

    if (!dn->present || !name) return;
    if (!*first) ptc_buf_add(b, ";", 1);
    ptc_buf_str(b, label);
    ptc_buf_add(b, "=\"", 2);
    start = b->len;
    if (dn->domain_component)
        ptc_add_all(b, name, NID_domainComponent, "DC", 1);
    if (dn->country) ptc_add_all(b, name, NID_countryName, "C", 0);
    if (dn->province) ptc_add_all(b, name, NID_stateOrProvinceName, "ST", 0);
    if (dn->locality) ptc_add_all(b, name, NID_localityName, "L", 0);
    if (dn->organization) ptc_add_all(b, name, NID_organizationName, "O", 0);
    if (dn->organizational_unit)
        ptc_add_all(b, name, NID_organizationalUnitName, "OU", 0);
    if (dn->serial_number) ptc_add_last(b, name, NID_serialNumber, "SN");
    if (dn->common_name) ptc_add_last(b, name, NID_commonName, "CN");
    if (b->failed) return;
    if (b->len == start) {
        b->len = mark;
        return;
    }
    b->len--; /* every part ends with ",": drop the last one */
    ptc_buf_add(b, "\"", 1);
    *first = 0;
}

/** Any thread.  Appends the text form of an IP address (4 or 16 bytes):
 *  dotted quad for IPv4 and IPv4-mapped IPv6, else RFC 5952 (lowercase,
 *  the first longest run of two or more zero groups as "::").  Other
 *  lengths append nothing and return -1. */
static int ptc_add_ip(struct ptc_buf *b, const unsigned char *a, int n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0xff, 0xff};
    char txt[64];
    unsigned g[8];
    int i, j, zs = -1, zl = 0;
    size_t used = 0;

    if (n == 16 && !memcmp(a, mapped, 12)) {
        a += 12;
        n = 4;
    }
    if (n == 4) {
        snprintf(txt, sizeof(txt), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        ptc_buf_str(b, txt);
        return 0;
    }
    if (n != 16) return -1;
    for (i = 0; i < 8; i++) g[i] = ((unsigned)a[2 * i] << 8) | a[2 * i + 1];
    for (i = 0; i < 8; i = j + 1) {
        for (j = i; j < 8 && g[j] == 0; j++) {}
        if (j - i >= 2 && j - i > zl) {
            zs = i;
            zl = j - i;
        }
    }
    for (i = 0; i < 8; i++) {
        if (i == zs) {
            used += (size_t)snprintf(txt + used, sizeof(txt) - used, "::");
            i += zl - 1;
            continue;
        }
        used += (size_t)snprintf(txt + used, sizeof(txt) - used, "%s%x",
                                 (i && i != zs + zl) ? ":" : "", g[i]);
    }
    ptc_buf_str(b, txt);
    return 0;
}

/** Any thread.  Appends the subject alternative names of x of one type
 *  (GEN_DNS, GEN_EMAIL, GEN_IPADD, GEN_URI) in certificate order, each
 *  preceded by "," unless *first.  */
static void ptc_add_sans_of(struct ptc_buf *b, const GENERAL_NAMES *gens,
                            int type, int *first)
{
    int i, n = sk_GENERAL_NAME_num(gens);

    for (i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        size_t mark = b->len;

        if (g->type != type) continue;
        if (!*first) ptc_buf_add(b, ",", 1);
        if (type == GEN_IPADD) {
            if (ptc_add_ip(b, ASN1_STRING_get0_data(g->d.iPAddress),
                           ASN1_STRING_length(g->d.iPAddress)) < 0) {
                b->len = mark;
                continue;
            }
        } else {
            /* dNSName, rfc822Name, uniformResourceIdentifier: IA5String */
            ptc_buf_add(b, ASN1_STRING_get0_data(g->d.ia5),
                        (size_t)ASN1_STRING_length(g->d.ia5));
        }
        *first = 0;
    }
}

/** Any thread.  Appends the info fields of one certificate (see the top of
 *  the file), joined by ";". */
static void ptc_add_info(const struct ptc_inst *p, struct ptc_buf *b, X509 *x)
{
    int first = 1;

    ptc_add_dn(b, "Subject", &p->subject, X509_get_subject_name(x), &first);
    ptc_add_dn(b, "Issuer", &p->issuer, X509_get_issuer_name(x), &first);
    if (p->serial_number) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *dec = bn ? BN_bn2dec(bn) : NULL;

        if (!dec) {
            b->failed = 1;
        } else if (dec[0]) {
            ptc_buf_str(b, first ? "SerialNumber=\"" : ";SerialNumber=\"");
            ptc_buf_str(b, dec);
            ptc_buf_add(b, "\"", 1);
            first = 0;
        }
        OPENSSL_free(dec);
        BN_free(bn);
    }
    for (int k = 0; k < 2; k++) {
        int want = k == 0 ? p->not_before : p->not_after;
        const ASN1_TIME *at = !want ? NULL
                              : k == 0 ? X509_get0_notBefore(x)
                                       : X509_get0_notAfter(x);
        struct tm tm;
        char txt[64];

        if (!at) continue;
        memset(&tm, 0, sizeof(tm));
        if (!ASN1_TIME_to_tm(at, &tm)) {
            b->failed = 1;
            return;
        }
        /* seconds since the epoch, printed unsigned as Traefik does */
        snprintf(txt, sizeof(txt), "%s%s=\"%llu\"", first ? "" : ";",
                 k == 0 ? "NB" : "NA",
                 (unsigned long long)(long long)timegm(&tm));
        ptc_buf_str(b, txt);
        first = 0;
    }
    if (p->sans) {
        GENERAL_NAMES *gens =
            X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        size_t mark = b->len;
        int none = 1;

        if (!gens) return;
        ptc_buf_str(b, first ? "SAN=\"" : ";SAN=\"");
        ptc_add_sans_of(b, gens, GEN_DNS, &none);
        ptc_add_sans_of(b, gens, GEN_EMAIL, &none);
        ptc_add_sans_of(b, gens, GEN_IPADD, &none);
        ptc_add_sans_of(b, gens, GEN_URI, &none);
        GENERAL_NAMES_free(gens);
        if (none) b->len = mark; /* no SAN of these types: no field */
        else ptc_buf_add(b, "\"", 1);
    }
}

/** Any thread.  Appends s[0..n) escaped as Go's url.QueryEscape does:
 *  A-Z a-z 0-9 - _ . ~ kept, space as "+", every other byte as %XX. */
static void ptc_add_query_escaped(struct ptc_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n && !b->failed; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[3];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
            c == '~') {
            ptc_buf_add(b, &s[i], 1);
        } else if (c == ' ') {
            ptc_buf_add(b, "+", 1);
        } else {
            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            ptc_buf_add(b, e, 3);
        }
    }
}

/** Any thread.  Appends the base64 of der[0..n) (no line breaks, padded). */
static void ptc_add_base64(struct ptc_buf *b, const unsigned char *der,
                           size_t n)
{
    size_t out = 4 * ((n + 2) / 3);
    unsigned char *tmp;
    int w;

    if (n > INT32_MAX / 2 || out + 1 > PTC_VALUE_MAX) {
        b->failed = 1;
        return;
    }
    tmp = malloc(out + 1);
    if (!tmp) {
        b->failed = 1;
        return;
    }
    w = EVP_EncodeBlock(tmp, der, (int)n);
    if (w > 0) ptc_buf_add(b, tmp, (size_t)w);
    free(tmp);
}

/* ---- the request ------------------------------------------------------- */

/**
 * Worker thread.  Removes incoming X-Forwarded-Tls-Client-Cert(-Info)
 * headers, then, when the client presented certificates, sets the selected
 * ones.  RELAIS_NEXT, or RELAIS_ERROR when memory runs out or a value
 * passes PTC_VALUE_MAX (the host answers 500).
 */
static int ptc_on_request(void *inst, relais_req *req, void **ctx)
{
    const struct ptc_inst *p = inst;
    const relais_host *host = p->host;
    relais_hdrs *h = host->req_headers(req);
    const unsigned char *der[PTC_MAX_CERTS];
    size_t len[PTC_MAX_CERTS], n = 0, i;
    struct ptc_buf pem = {0}, raw = {0}, esc = {0};
    int rc = RELAIS_ERROR;

    (void)ctx;
    if (!h) return RELAIS_ERROR;
    host->hdr_del(h, PTC_HDR_CERT);
    host->hdr_del(h, PTC_HDR_INFO);
    if ((!p->pem && !p->info) || !p->has_peer_cert || !host->req_is_tls(req))
        return RELAIS_NEXT;
    while (n < PTC_MAX_CERTS &&
           (der[n] = host->req_tls_peer_cert(req, n, &len[n])) != NULL &&
           len[n] > 0)
        n++;
    if (n == 0) return RELAIS_NEXT;

    if (p->pem) {
        for (i = 0; i < n; i++) {
            if (i) ptc_buf_add(&pem, ",", 1);
            ptc_add_base64(&pem, der[i], len[i]);
        }
        if (pem.failed ||
            host->hdr_set(h, PTC_HDR_CERT, pem.p ? pem.p : "", pem.len) < 0)
            goto out;
    }
    if (p->info) {
        for (i = 0; i < n; i++) {
            const unsigned char *d = der[i];
            X509 *x;

            if (len[i] > INT32_MAX) goto out;
            if (i) ptc_buf_add(&raw, ",", 1);
            x = d2i_X509(NULL, &d, (long)len[i]);
            if (!x) continue; /* cannot happen: OpenSSL parsed it already */
            ptc_add_info(p, &raw, x);
            X509_free(x);
        }
        if (raw.failed) goto out;
        ptc_add_query_escaped(&esc, raw.p ? raw.p : "", raw.len);
        if (esc.failed ||
            host->hdr_set(h, PTC_HDR_INFO, esc.p ? esc.p : "", esc.len) < 0)
            goto out;
    }
    rc = RELAIS_NEXT;

out:
    if (rc != RELAIS_NEXT)
        host->log(RELAIS_LOG_ERROR, "passTLSClientCert",
                  "cannot build the client certificate headers (out of "
                  "memory or larger than %u bytes)", PTC_VALUE_MAX);
    ptc_buf_release(&pem);
    ptc_buf_release(&raw);
    ptc_buf_release(&esc);
    return rc;
}

/** The operations table. */
static const relais_middleware_ops ptc_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = ptc_create,
    .destroy = ptc_destroy,
    .on_request = ptc_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "passtlsclientcert",
    .version = "1.0.0",
    .config_key = "passTLSClientCert",
    .description = "passes the client's TLS certificate to the upstream "
                   "(X-Forwarded-Tls-Client-Cert, -Info)",
    .load = NULL,
    .unload = NULL,
    .ops = &ptc_ops,
};
