/*
 * Unit tests of src/transport.c: a serversTransport's keys (serverName,
 * rootCAs, certificates, forwardingTimeouts, maxIdleConnsPerHost), errors
 * named by key path, sharing an unchanged transport, a new pool tag for a
 * changed one, SNI from serverName, peerCertURI without a certificate.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "snapshot.h"
#include "tap.h"
#include "tls.h"
#include "transport.h"

static char dir[] = "/tmp/test_transport.XXXXXX"; /* scratch directory */
static char crt[256], key[256];                    /* PEM files in it */

/* Writes the generated certificate and key as PEM files.  0 / -1. */
static int write_pem(void)
{
    X509 *x;
    EVP_PKEY *k;
    FILE *f;
    int rc = 0;

    if (!mkdtemp(dir) || tls_generated_cert(&x, &k) < 0) return -1;
    snprintf(crt, sizeof(crt), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    if (!(f = fopen(crt, "w"))) return -1;
    if (PEM_write_X509(f, x) != 1) rc = -1;
    fclose(f);
    if (!(f = fopen(key, "w"))) return -1;
    if (PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1) rc = -1;
    fclose(f);
    return rc;
}

/* A transport from JSON text (with %s replaced by crt, then key). */
static struct tr_transport *build(const char *fmt, struct tr_transport *prev)
{
    char text[2048];
    json_t *cfg;
    struct tr_transport *t;

    snprintf(text, sizeof(text), fmt, crt, crt, key);
    cfg = json_loads(text, 0, NULL);
    if (!cfg) return NULL;
    t = tr_build("t@file", cfg, "http.serversTransports.t@file", NULL, prev);
    json_decref(cfg);
    return t;
}

int main(void)
{
    static const char *good =
        "{\"serverName\": \"backend.test\", \"rootCAs\": [\"%s\"],"
        " \"certificates\": [{\"certFile\": \"%s\", \"keyFile\": \"%s\"}],"
        " \"forwardingTimeouts\": {\"dialTimeout\": \"2s\", \"responseHeaderTimeout\": \"1500ms\"},"
        " \"maxIdleConnsPerHost\": 5, \"disableHTTP2\": true}";
    struct tr_transport *a, *b, *c, *bad;
    SSL *ssl;
    char err[256];

    ok(write_pem() == 0, "test PEM files written");
    a = build(good, NULL);
    ok(a && a->status == SNAP_ENABLED && a->ctx, "a good transport is enabled with a context");
    ok(a && a->dial_timeout_ms == 2000 && a->response_header_timeout_ms == 1500 &&
           a->idle_conn_timeout_ms == 90000 && a->max_idle == 5 && a->disable_http2,
       "timeouts, defaults and keep-alive limit read");
    ok(a && a->server_name && !strcmp(a->server_name, "backend.test"), "serverName read");
    ok(a && a->pool_tag && !strncmp(a->pool_tag, "t@file#", 7), "pool tag is name#serial");
    b = build(good, a);
    ok(b == a && a->refs == 2, "an unchanged transport is shared (refs 2)");
    tr_unref(b);
    c = build("{\"rootCAs\": [\"%s\"], \"maxIdleConnsPerHost\": -1}", a);
    ok(c && c != a && c->max_idle == 0 && strcmp(c->pool_tag, a->pool_tag) != 0,
       "a changed transport is new, with another pool tag; -1 = no keep-alive");
    ssl = a ? tr_ssl(a, "127.0.0.1", 1, err, sizeof(err)) : NULL;
    ok(ssl && SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) &&
           !strcmp(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "backend.test"),
       "SNI is the serverName, not the URL's IP");
    SSL_free(ssl);
    ssl = c ? tr_ssl(c, "127.0.0.1", 0, err, sizeof(err)) : NULL;
    ok(ssl && !SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "no SNI for an IP literal");
    ok(c && tr_check_peer(c, ssl, err, sizeof(err)) == 0, "no peerCertURI: any peer passes");
    SSL_free(ssl);
    tr_unref(c);
    tr_unref(a);

    bad = build("{\"rootCAs\": [\"%s\", \"/nonexistent/ca.pem\"]}", NULL);
    ok(bad && bad->status == SNAP_DISABLED && !bad->ctx && bad->error &&
           strstr(bad->error, "http.serversTransports.t@file.rootCAs[1]: /nonexistent/ca.pem: "
                              "No such file or directory"),
       "a missing rootCAs file disables it, named by key path (%s)",
       bad && bad->error ? bad->error : "-");
    ok(bad && tr_ssl(bad, "x", 0, err, sizeof(err)) == NULL, "a disabled transport makes no SSL");
    tr_unref(bad);
    bad = build("{\"certificates\": [{\"certFile\": \"%s\"}], \"maxIdleConnsPerHost\": \"x\","
                " \"forwardingTimeouts\": {\"dialTimeout\": \"-1s\"}, \"peerCertURI\": \"%s\"}",
                NULL);
    ok(bad && bad->status == SNAP_DISABLED && bad->error &&
           strstr(bad->error, "certificates[0].keyFile: missing") &&
           strstr(bad->error, "maxIdleConnsPerHost: expected an integer") &&
           strstr(bad->error, "forwardingTimeouts.dialTimeout"),
       "every bad key is reported by path (%s)", bad && bad->error ? bad->error : "-");
    tr_unref(bad);
    bad = build("{\"insecureSkipVerify\": true, \"peerCertURI\": \"spiffe://x/%s\"}", NULL);
    ok(bad && bad->status == SNAP_ENABLED && bad->insecure && bad->peer_cert_uri,
       "insecureSkipVerify and peerCertURI read");
    ok(bad && tr_check_peer(bad, NULL, err, sizeof(err)) == -1 && strstr(err, "peerCertURI"),
       "peerCertURI without a peer certificate fails");
    tr_unref(bad);
    tr_unref(NULL);

    unlink(crt);
    unlink(key);
    rmdir(dir);
    tls_cache_clear();
    tls_global_free();
    return tap_done();
}
