/*
 * Unit tests of acme (the crypto building blocks) and acme_store (the
 * acme.json storage).
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme.h"
#include "acme_store.h"
#include "tap.h"

/* Decodes base64url text into a new buffer (NUL-terminated), *len set. */
static unsigned char *b64url_dec(const char *s, size_t *len)
{
    return as_b64_decode(s, len);
}

/* Verifies a flattened JWS made by acme_jws with key; fills the decoded
 * protected header.  1 when the signature verifies. */
static int jws_verify(const char *jws, EVP_PKEY *key, json_t **prot, char **payload)
{
    json_t *j = json_loads(jws, 0, NULL);
    const char *p64 = json_string_value(json_object_get(j, "protected"));
    const char *b64 = json_string_value(json_object_get(j, "payload"));
    const char *s64 = json_string_value(json_object_get(j, "signature"));
    unsigned char *sig = NULL, *ptxt = NULL, *der = NULL;
    size_t slen = 0, plen = 0;
    char *input = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = 0;

    *prot = NULL;
    *payload = NULL;
    if (!p64 || !b64 || !s64) goto done;
    ptxt = b64url_dec(p64, &plen);
    *prot = ptxt ? json_loads((char *)ptxt, 0, NULL) : NULL;
    *payload = (char *)b64url_dec(b64, &plen);
    sig = b64url_dec(s64, &slen);
    if (!sig || asprintf(&input, "%s.%s", p64, b64) < 0) goto done;
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        /* r || s back to DER */
        ECDSA_SIG *es = ECDSA_SIG_new();
        int half = (int)slen / 2, dl;
        ECDSA_SIG_set0(es, BN_bin2bn(sig, half, NULL), BN_bin2bn(sig + half, half, NULL));
        dl = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (dl <= 0) goto done;
        free(sig);
        sig = malloc((size_t)dl);
        memcpy(sig, der, (size_t)dl);
        slen = (size_t)dl;
    }
    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
         EVP_DigestVerify(ctx, sig, slen, (unsigned char *)input, strlen(input)) == 1;
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(ptxt);
    free(input);
    json_decref(j);
    return ok;
}

static void test_b64url(void)
{
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
             {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    unsigned char bin[] = {0xfb, 0xff, 0xbf};
    char *s;

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        s = acme_b64url(v[i].in, strlen(v[i].in));
        ok(s && !strcmp(s, v[i].out), "base64url(\"%s\") = \"%s\" (got %s)", v[i].in, v[i].out,
           s ? s : "NULL");
        free(s);
    }
    s = acme_b64url(bin, 3);
    ok(s && !strcmp(s, "-_-_"), "base64url uses - and _ (got %s)", s ? s : "NULL");
    free(s);
    s = acme_b64url(bin, 2);
    ok(s && !strcmp(s, "-_8"), "base64url has no padding (got %s)", s ? s : "NULL");
    free(s);
}

static void test_std_b64(void)
{
    size_t len = 0;
    char *s = as_b64_encode((const unsigned char *)"foob", 4);
    unsigned char *d;

    ok(s && !strcmp(s, "Zm9vYg=="), "base64 with padding (got %s)", s ? s : "NULL");
    d = as_b64_decode(s ? s : "", &len);
    ok(d && len == 4 && !memcmp(d, "foob", 4), "base64 decodes back");
    free(s);
    free(d);
    d = as_b64_decode("Zm9v\nYmFy", &len);
    ok(d && len == 6 && !strcmp((char *)d, "foobar"), "base64 decode skips newlines");
    free(d);
    ok(as_b64_decode("Zm9v!", &len) == NULL, "base64 decode refuses junk");
    ok(as_b64_decode("Zm9vY", &len) == NULL, "base64 decode refuses a lone character");
}

static void test_thumbprint(void)
{
    /* RFC 7638 section 3.1 */
    const char *n =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvzq"
        "Y368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu"
        "0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    char out[64];

    ok(acme_jwk_thumbprint_members("RSA", n, "AQAB", NULL, out, sizeof(out)) == 0 &&
           !strcmp(out, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"),
       "RFC 7638 example thumbprint (got %s)", out);
    ok(acme_jwk_thumbprint_members("oct", "x", "y", NULL, out, sizeof(out)) == -1,
       "thumbprint refuses an unknown kty");
}

/* One JWS test for key (alg expected). */
static void test_jws_key(EVP_PKEY *key, const char *alg)
{
    json_t *prot = NULL;
    char *payload = NULL, *jws, *jwk;

    jws = acme_jws(key, NULL, "nonce-1", "https://ca/new-acct", "{\"a\":1}");
    ok(jws != NULL, "%s: JWS with jwk built", alg);
    ok(jws && jws_verify(jws, key, &prot, &payload), "%s: signature verifies with OpenSSL", alg);
    ok(prot && !strcmp(json_string_value(json_object_get(prot, "alg")) ?: "", alg),
       "%s: protected alg", alg);
    ok(prot && !strcmp(json_string_value(json_object_get(prot, "nonce")) ?: "", "nonce-1") &&
           !strcmp(json_string_value(json_object_get(prot, "url")) ?: "", "https://ca/new-acct"),
       "%s: protected nonce and url", alg);
    jwk = acme_jwk(key);
    {
        json_t *j1 = jwk ? json_loads(jwk, 0, NULL) : NULL;
        ok(prot && j1 && json_equal(json_object_get(prot, "jwk"), j1) &&
               !json_object_get(prot, "kid"),
           "%s: protected jwk is the public key, no kid", alg);
        json_decref(j1);
    }
    ok(payload && !strcmp(payload, "{\"a\":1}"), "%s: payload", alg);
    json_decref(prot);
    free(payload);
    free(jws);
    jws = acme_jws(key, "https://ca/acct/1", "n2", "https://ca/authz/1", NULL);
    ok(jws && jws_verify(jws, key, &prot, &payload), "%s: POST-as-GET JWS verifies", alg);
    ok(prot && !strcmp(json_string_value(json_object_get(prot, "kid")) ?: "", "https://ca/acct/1") &&
           !json_object_get(prot, "jwk"),
       "%s: kid, no jwk", alg);
    ok(payload && payload[0] == '\0', "%s: empty payload", alg);
    {
        json_t *j = jws ? json_loads(jws, 0, NULL) : NULL;
        ok(j && !strcmp(json_string_value(json_object_get(j, "payload")) ?: "x", ""),
           "%s: payload member is the empty string", alg);
        json_decref(j);
    }
    json_decref(prot);
    free(payload);
    free(jws);
    free(jwk);
}

static void test_jws(void)
{
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    char *jwk;

    test_jws_key(ec, "ES256");
    test_jws_key(rsa, "RS256");
    jwk = acme_jwk(ec);
    ok(jwk && !strncmp(jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31) && strlen(jwk) == 31 + 43 + 7 + 43 + 2 &&
           !strncmp(jwk + 31 + 43, "\",\"y\":\"", 7),
       "EC JWK canonical form (%s)", jwk ? jwk : "NULL");
    free(jwk);
    jwk = acme_jwk(rsa);
    ok(jwk && !strncmp(jwk, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"", 29), "RSA JWK canonical form");
    free(jwk);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
}

static void test_alpn_cert(void)
{
    char *cp = NULL, *kp = NULL;
    unsigned char md[32];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    BIO *b;
    int idx, found_san = 0;
    X509_EXTENSION *e;
    ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);

    ok(acme_alpn_cert("c.relais.test", "tok.thumb", &cp, &kp) == 0, "tls-alpn-01 certificate built");
    b = BIO_new_mem_buf(cp ? cp : "", -1);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(kp ? kp : "", -1);
    k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    ok(x && k && X509_check_private_key(x, k) == 1, "certificate and key match");
    idx = x ? X509_get_ext_by_OBJ(x, obj, -1) : -1;
    e = idx >= 0 ? X509_get_ext(x, idx) : NULL;
    ok(e && X509_EXTENSION_get_critical(e) == 1, "acmeIdentifier extension present, critical");
    EVP_Digest("tok.thumb", 9, md, NULL, EVP_sha256(), NULL);
    {
        ASN1_OCTET_STRING *v = e ? X509_EXTENSION_get_data(e) : NULL;
        ok(v && ASN1_STRING_length(v) == 34 && ASN1_STRING_get0_data(v)[0] == 0x04 &&
               ASN1_STRING_get0_data(v)[1] == 0x20 && !memcmp(ASN1_STRING_get0_data(v) + 2, md, 32),
           "extension holds DER OCTET STRING of SHA-256(key authorization)");
    }
    {
        GENERAL_NAMES *gn = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
        for (int i = 0; gn && i < sk_GENERAL_NAME_num(gn); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gn, i);
            if (g->type == GEN_DNS && !strcmp((char *)ASN1_STRING_get0_data(g->d.dNSName), "c.relais.test"))
                found_san++;
        }
        ok(gn && sk_GENERAL_NAME_num(gn) == 1 && found_san == 1, "SAN is exactly the domain");
        GENERAL_NAMES_free(gn);
    }
    ok(x && X509_check_host(x, "c.relais.test", 0, 0, NULL) == 1, "certificate is for the domain");
    {
        int64_t na = cp ? acme_pem_not_after(cp) : -1;
        int64_t now = (int64_t)time(NULL);
        ok(na > now + 6 * 86400 && na <= now + 7 * 86400 + 5, "acme_pem_not_after (%lld)", (long long)na);
    }
    ok(acme_pem_not_after("junk") == -1, "acme_pem_not_after of junk is -1");
    ASN1_OBJECT_free(obj);
    X509_free(x);
    EVP_PKEY_free(k);
    free(cp);
    free(kp);
}

/* Number of entries in dir whose name starts with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    if (d) closedir(d);
    return n;
}

/* Writes text to path with mode. */
static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_store(void)
{
    char dir[] = "/tmp/test_acme.XXXXXX", path[256], err[512] = "";
    struct as_data d, e;
    struct stat st;
    const char *sans[] = {"b.example", "c.example"}, *sans_rev[] = {"c.example", "b.example"};
    unsigned char der[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    json_t *root;
    size_t skipped = 9;

    memset(&d, 0, sizeof(d));
    memset(&e, 0, sizeof(e));
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof(path), "%s/acme.json", dir);
    ok(as_load(path, "le", &e, &skipped, err, sizeof(err)) == 0 && !e.has_account && e.ncerts == 0 &&
           skipped == 0,
       "missing file: empty section");

    /* another resolver's section must survive */
    write_file(path, "{\"other\": {\"Account\": null, \"Certificates\": [{\"x\": 1}]}}", 0600);
    d.has_account = 1;
    d.acct.email = strdup("ops@example.com");
    d.acct.uri = strdup("https://ca.example/acme/acct/7");
    d.acct.body_json = strdup("{\"status\":\"valid\",\"contact\":[\"mailto:ops@example.com\"]}");
    d.acct.key_der = malloc(sizeof(der));
    memcpy(d.acct.key_der, der, sizeof(der));
    d.acct.key_der_len = sizeof(der);
    d.acct.key_type = strdup("P256");
    ok(as_cert_put(&d, "a.example", sans, 2, "CERT1\n", "KEY1\n") == 0, "cert put");
    ok(as_cert_put(&d, "z.example", NULL, 0, "CERT2\n", "KEY2\n") == 0, "cert put without SANs");
    ok(as_cert_put(&d, "a.example", sans_rev, 2, "CERT3\n", "KEY3\n") == 0 && d.ncerts == 2,
       "cert put replaces the same domain set (SANs in another order)");
    ok(as_save(path, "le", &d, err, sizeof(err)) == 0, "save (%s)", err);
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "file mode is 0600 (%o)",
       (unsigned)(st.st_mode & 0777));
    ok(count_prefix(dir, "acme.json.tmp") == 0, "no temporary file left");
    root = json_load_file(path, 0, NULL);
    {
        json_t *want = json_pack("{s n s [{s i}]}", "Account", "Certificates", "x", 1);
        ok(root && json_equal(json_object_get(root, "other"), want), "other resolver's section preserved");
        json_decref(want);
    }
    {
        json_t *le = json_object_get(root, "le"), *acc = json_object_get(le, "Account");
        json_t *c0 = json_array_get(json_object_get(le, "Certificates"), 0);
        ok(!strcmp(json_string_value(json_object_get(acc, "Email")) ?: "", "ops@example.com") &&
               !strcmp(json_string_value(json_object_get(acc, "KeyType")) ?: "", "P256") &&
               !strcmp(json_string_value(json_object_get(acc, "PrivateKey")) ?: "", "MAMCAQA=") &&
               !strcmp(json_string_value(json_object_get(json_object_get(acc, "Registration"), "uri")) ?: "",
                       "https://ca.example/acme/acct/7") &&
               !strcmp(json_string_value(json_object_get(json_object_get(json_object_get(acc, "Registration"), "body"), "status")) ?: "",
                       "valid"),
           "Account layout (Email, Registration.body/uri, PrivateKey base64 DER, KeyType)");
        ok(!strcmp(json_string_value(json_object_get(json_object_get(c0, "domain"), "main")) ?: "", "a.example") &&
               json_array_size(json_object_get(json_object_get(c0, "domain"), "sans")) == 2 &&
               !strcmp(json_string_value(json_object_get(c0, "certificate")) ?: "", "Q0VSVDMK") &&
               !strcmp(json_string_value(json_object_get(c0, "key")) ?: "", "S0VZMwo=") &&
               !strcmp(json_string_value(json_object_get(c0, "Store")) ?: "", "default"),
           "Certificates layout (domain.main/sans, certificate/key base64 PEM, Store)");
        c0 = json_array_get(json_object_get(le, "Certificates"), 1);
        ok(json_object_get(json_object_get(c0, "domain"), "sans") == NULL, "no sans member when none");
    }
    json_decref(root);
    ok(as_load(path, "le", &e, &skipped, err, sizeof(err)) == 0, "load back (%s)", err);
    ok(e.has_account && !strcmp(e.acct.email, "ops@example.com") &&
           !strcmp(e.acct.uri, "https://ca.example/acme/acct/7") && e.acct.key_der_len == sizeof(der) &&
           !memcmp(e.acct.key_der, der, sizeof(der)) && !strcmp(e.acct.key_type, "P256") &&
           e.acct.body_json && strstr(e.acct.body_json, "\"status\":\"valid\""),
       "account round trip");
    ok(e.ncerts == 2 && !strcmp(e.certs[0].main, "a.example") && e.certs[0].nsans == 2 &&
           !strcmp(e.certs[0].sans[0], "c.example") && !strcmp(e.certs[0].cert_pem, "CERT3\n") &&
           !strcmp(e.certs[0].key_pem, "KEY3\n") && !strcmp(e.certs[0].store, "default") &&
           !strcmp(e.certs[1].main, "z.example") && e.certs[1].nsans == 0,
       "certificates round trip");
    ok(as_cert_find(&e, "A.example", sans, 2) == &e.certs[0] && as_cert_find(&e, "a.example", sans, 1) == NULL,
       "find matches the set, case-insensitively");
    ok(as_load(path, "other", &e, &skipped, err, sizeof(err)) == 0 && e.ncerts == 0 && skipped == 1,
       "bad certificate entries skipped and counted");

    /* wider permissions refused */
    chmod(path, 0644);
    err[0] = '\0';
    ok(as_load(path, "le", &e, &skipped, err, sizeof(err)) == -1 && strstr(err, "too open") &&
           strstr(err, "644"),
       "mode 0644 refused (%s)", err);
    ok(as_save(path, "le", &d, err, sizeof(err)) == -1, "save refuses to overwrite a 0644 file");
    {
        struct event_base *base = event_base_new();
        struct acme_cfg cfg = {"le", "https://127.0.0.1:1/dir", NULL, "EC256", NULL, 0, path, 0, 0};
        struct acme *a = acme_new(base, &cfg, NULL, err, sizeof(err));
        ok(a == NULL && strstr(err, "too open"), "acme_new refuses a 0644 storage (%s)", err);
        chmod(path, 0600);
        cfg.key_type = "DSA1024";
        a = acme_new(base, &cfg, NULL, err, sizeof(err));
        ok(a == NULL && strstr(err, "keyType"), "acme_new refuses an unknown keyType (%s)", err);
        cfg.key_type = NULL;
        a = acme_new(base, &cfg, NULL, err, sizeof(err));
        ok(a != NULL, "acme_new accepts a 0600 storage whose account belongs to another CA");
        {
            const char *dd[] = {"x.example", "", "y"};
            ok(acme_want(a, dd, 0, ACME_HTTP01) == -1 && acme_want(a, dd, 2, ACME_HTTP01) == -1 &&
                   acme_want(a, dd, 1, (enum acme_challenge)7) == -1,
               "acme_want refuses bad arguments");
        }
        acme_free(a);
        acme_free(NULL);
        event_base_free(base);
    }
    /* empty file (Traefik's touch acme.json) is accepted */
    write_file(path, "", 0600);
    ok(as_load(path, "le", &e, &skipped, err, sizeof(err)) == 0 && e.ncerts == 0, "empty file is empty");
    write_file(path, "{broken", 0600);
    ok(as_load(path, "le", &e, &skipped, err, sizeof(err)) == -1 && strstr(err, "line 1"),
       "broken JSON refused (%s)", err);
    ok(as_save(path, "le", &d, err, sizeof(err)) == -1, "save does not clobber a broken file");

    /* atomic write: an existing file is replaced whole, mode 0600 */
    write_file(path, "old contents", 0600);
    ok(as_write_atomic(path, "new", 3, err, sizeof(err)) == 0, "atomic write");
    {
        char buf[16] = {0};
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f) fclose(f);
        ok(n == 3 && !strcmp(buf, "new"), "atomic write replaced the contents");
    }
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && count_prefix(dir, "acme.json.tmp") == 0,
       "atomic write: 0600, no temporary left");
    {
        char bad[300];
        snprintf(bad, sizeof(bad), "%s/nodir/acme.json", dir);
        ok(as_write_atomic(bad, "x", 1, err, sizeof(err)) == -1, "atomic write into a missing dir fails");
    }
    unlink(path);
    rmdir(dir);
    as_data_clear(&d);
    as_data_clear(&e);
}

/* A Traefik-written file (RSA PKCS#1 account key) loads and its key is
 * usable for signing. */
static void test_traefik_file(void)
{
    char dir[] = "/tmp/test_acme.XXXXXX", path[256], err[512] = "", *text = NULL, *k64;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048), *back;
    unsigned char *der = NULL;
    int dl = i2d_PrivateKey(rsa, &der);
    struct as_data e;
    const unsigned char *p;

    memset(&e, 0, sizeof(e));
    if (!mkdtemp(dir)) return;
    snprintf(path, sizeof(path), "%s/acme.json", dir);
    k64 = as_b64_encode(der, (size_t)dl);
    if (asprintf(&text,
                 "{\n  \"myresolver\": {\n    \"Account\": {\n      \"Email\": \"you@example.com\",\n"
                 "      \"Registration\": {\n        \"body\": {\n          \"status\": \"valid\",\n"
                 "          \"contact\": [\"mailto:you@example.com\"]\n        },\n"
                 "        \"uri\": \"https://acme-v02.api.letsencrypt.org/acme/acct/123\"\n      },\n"
                 "      \"PrivateKey\": \"%s\",\n      \"KeyType\": \"4096\"\n    },\n"
                 "    \"Certificates\": [\n      {\n        \"domain\": {\"main\": \"example.com\"},\n"
                 "        \"certificate\": \"LS0tLS1CRUdJTg==\",\n        \"key\": \"LS0tLS1CRUdJTg==\",\n"
                 "        \"Store\": \"default\"\n      }\n    ]\n  }\n}\n",
                 k64) < 0)
        text = NULL;
    write_file(path, text ? text : "", 0600);
    ok(as_load(path, "myresolver", &e, NULL, err, sizeof(err)) == 0 && e.has_account && e.ncerts == 1 &&
           !strcmp(e.certs[0].cert_pem, "-----BEGIN") && !strcmp(e.acct.key_type, "4096"),
       "Traefik's acme.json loads (%s)", err);
    p = e.acct.key_der;
    back = p ? d2i_AutoPrivateKey(NULL, &p, (long)e.acct.key_der_len) : NULL;
    ok(back && EVP_PKEY_eq(back, rsa) == 1, "its PKCS#1 account key parses back");
    {
        json_t *prot = NULL;
        char *payload = NULL, *jws = back ? acme_jws(back, "kid", "n", "u", "{}") : NULL;
        ok(jws && jws_verify(jws, rsa, &prot, &payload), "and signs RS256");
        json_decref(prot);
        free(payload);
        free(jws);
    }
    EVP_PKEY_free(back);
    EVP_PKEY_free(rsa);
    OPENSSL_free(der);
    free(k64);
    free(text);
    as_data_clear(&e);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_b64url();
    test_std_b64();
    test_thumbprint();
    test_jws();
    test_alpn_cert();
    test_store();
    test_traefik_file();
    return tap_done();
}
