/*
 * acme_driver — runs the ACME client (src/acme.c) against a real ACME
 * server for tests/integration/test_acme_client.sh.
 *
 * One event loop holds the client, an http-01 responder (evhttp) and a
 * tls-alpn-01 responder (OpenSSL server: ALPN acme-tls/1 only, the
 * challenge certificate chosen by SNI).  It wants the certificates named
 * on the command line and prints one line per event on stdout:
 *
 *   WANT <main> stored|ordered
 *   CERT <main> sans=<a,b|-> not_after=<epoch> serial=<HEX> file=<path>
 *   ERROR <main> <message>
 *   DONE certs=<n> errors=<n>            (or TIMEOUT ...)
 *
 * Options:
 *   --dir URL --ca FILE --storage FILE [--resolver NAME] [--email E]
 *   [--key-type T] [--renew-before S] [--check-ms MS]
 *   --http-port P --alpn-port P
 *   --want http01:MAIN[,SAN...]   --want alpn:MAIN[,SAN...]  (repeatable)
 *   [--wrong-keyauth N]   the first N http-01 challenges are served with a
 *                         wrong key authorization
 *   --expect-certs N [--expect-errors N] [--timeout S] [--out DIR]
 *   [--debug]
 * Exit status: 0 when the expected certificates (and at least the
 * expected errors) arrived before the timeout, 2 on timeout, 1 on setup
 * failures.
 */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "acme.h"
#include "log.h"
#include "tls.h"

#define DRV_MAX_ENTRIES 64 /* challenges set at once */
#define DRV_MAX_WANTS 16   /* --want options */

/** A challenge the responders serve. */
struct drv_entry {
    char *key;  /* token (http-01) or domain (tls-alpn-01); NULL = free */
    char *v1;   /* key authorization, or certificate PEM */
    char *v2;   /* NULL, or key PEM */
};

/** The driver's state. */
struct drv {
    struct event_base *base;           /* the loop */
    struct drv_entry http[DRV_MAX_ENTRIES]; /* http-01 tokens */
    struct drv_entry alpn[DRV_MAX_ENTRIES]; /* tls-alpn-01 domains */
    int wrong_left;                    /* http-01 sets still to spoil */
    int certs;                         /* on_cert calls */
    int errors;                        /* on_error calls */
    int expect_certs;                  /* stop after this many certs ... */
    int expect_errors;                 /* ... and at least this many errors */
    const char *out;                   /* where chains are written */
    int http_hits;                     /* http-01 requests served */
    int alpn_hits;                     /* tls-alpn-01 handshakes done */
    SSL_CTX *alpn_ctx;                 /* the tls-alpn-01 server context */
};

static struct drv D;

/* Sets key in table to (v1, v2) (copies). */
static int drv_set(struct drv_entry *t, const char *key, const char *v1, const char *v2)
{
    struct drv_entry *free_e = NULL;

    for (int i = 0; i < DRV_MAX_ENTRIES; i++) {
        if (t[i].key && !strcasecmp(t[i].key, key)) free_e = &t[i];
        else if (!t[i].key && !free_e) free_e = &t[i];
    }
    if (!free_e) return -1;
    free(free_e->key);
    free(free_e->v1);
    free(free_e->v2);
    free_e->key = strdup(key);
    free_e->v1 = strdup(v1);
    free_e->v2 = v2 ? strdup(v2) : NULL;
    return 0;
}

/* Removes key from table. */
static void drv_clear(struct drv_entry *t, const char *key)
{
    for (int i = 0; i < DRV_MAX_ENTRIES; i++)
        if (t[i].key && !strcasecmp(t[i].key, key)) {
            free(t[i].key);
            free(t[i].v1);
            free(t[i].v2);
            memset(&t[i], 0, sizeof(t[i]));
        }
}

/* The entry for key, or NULL. */
static struct drv_entry *drv_get(struct drv_entry *t, const char *key)
{
    for (int i = 0; i < DRV_MAX_ENTRIES; i++)
        if (t[i].key && !strcasecmp(t[i].key, key)) return &t[i];
    return NULL;
}

/* ---- hooks ---- */

static int h_http01_set(void *arg, const char *token, const char *key_auth)
{
    char spoiled[512];

    (void)arg;
    if (D.wrong_left > 0) {
        D.wrong_left--;
        snprintf(spoiled, sizeof(spoiled), "%sWRONG", key_auth);
        printf("SPOIL %s\n", token);
        fflush(stdout);
        return drv_set(D.http, token, spoiled, NULL);
    }
    return drv_set(D.http, token, key_auth, NULL);
}

static void h_http01_clear(void *arg, const char *token)
{
    (void)arg;
    drv_clear(D.http, token);
}

static int h_alpn01_set(void *arg, const char *domain, const char *cert_pem, const char *key_pem)
{
    (void)arg;
    return drv_set(D.alpn, domain, cert_pem, key_pem);
}

static void h_alpn01_clear(void *arg, const char *domain)
{
    (void)arg;
    drv_clear(D.alpn, domain);
}

/* Stops the loop once what was expected arrived. */
static void drv_check_done(void)
{
    if (D.certs >= D.expect_certs && D.errors >= D.expect_errors) event_base_loopexit(D.base, NULL);
}

static void h_on_cert(void *arg, const char *main_domain, const char *const *sans, size_t nsans,
                      const char *chain_pem, const char *key_pem, int64_t not_after)
{
    char path[1024], sbuf[1024] = "", *hex = NULL;
    BIO *b = BIO_new_mem_buf(chain_pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    FILE *f;

    (void)arg;
    if (x) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        hex = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
    }
    for (size_t i = 0; i < nsans; i++) {
        if (i) strncat(sbuf, ",", sizeof(sbuf) - strlen(sbuf) - 1);
        strncat(sbuf, sans[i], sizeof(sbuf) - strlen(sbuf) - 1);
    }
    snprintf(path, sizeof(path), "%s/%s.%d.pem", D.out, main_domain, D.certs);
    f = fopen(path, "w");
    if (f) {
        fputs(chain_pem, f);
        fclose(f);
    }
    snprintf(path + strlen(path) - 4, 9, ".key");
    f = fopen(path, "w");
    if (f) {
        fputs(key_pem, f);
        fclose(f);
    }
    path[strlen(path) - 4] = '\0';
    printf("CERT %s sans=%s not_after=%lld serial=%s file=%s.pem\n", main_domain,
           nsans ? sbuf : "-", (long long)not_after, hex ? hex : "?", path);
    fflush(stdout);
    OPENSSL_free(hex);
    X509_free(x);
    BIO_free(b);
    D.certs++;
    drv_check_done();
}

static void h_on_error(void *arg, const char *main_domain, const char *message)
{
    (void)arg;
    printf("ERROR %s %s\n", main_domain, message);
    fflush(stdout);
    D.errors++;
    drv_check_done();
}

/* ---- http-01 responder ---- */

static void drv_http_cb(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    const char *pfx = "/.well-known/acme-challenge/";
    struct drv_entry *e = NULL;
    struct evbuffer *b;

    (void)arg;
    if (uri && !strncmp(uri, pfx, strlen(pfx))) e = drv_get(D.http, uri + strlen(pfx));
    if (!e) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    D.http_hits++;
    b = evbuffer_new();
    evbuffer_add(b, e->v1, strlen(e->v1));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* ---- tls-alpn-01 responder ---- */

/* ALPN: only acme-tls/1. */
static int drv_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int l = in[i];
        if (i + 1 + l > inlen) break;
        if (l == 10 && !memcmp(in + i + 1, "acme-tls/1", 10)) {
            *out = in + i + 1;
            *outlen = (unsigned char)l;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* SNI: the challenge certificate of that domain. */
static int drv_sni(SSL *ssl, int *al, void *arg)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    struct drv_entry *e = name ? drv_get(D.alpn, name) : NULL;
    BIO *b1, *b2;
    X509 *x;
    EVP_PKEY *k;
    int ok;

    (void)arg;
    if (!e) {
        *al = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    b1 = BIO_new_mem_buf(e->v1, -1);
    b2 = BIO_new_mem_buf(e->v2, -1);
    x = PEM_read_bio_X509(b1, NULL, NULL, NULL);
    k = PEM_read_bio_PrivateKey(b2, NULL, NULL, NULL);
    ok = x && k && SSL_use_certificate(ssl, x) == 1 && SSL_use_PrivateKey(ssl, k) == 1;
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(b1);
    BIO_free(b2);
    if (!ok) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* A tls-alpn-01 connection: done at handshake end or on close. */
static void drv_alpn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & BEV_EVENT_CONNECTED) {
        D.alpn_hits++;
        return; /* the validator closes */
    }
    bufferevent_free(bev);
}

/* Discards what the validator might send. */
static void drv_alpn_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void drv_alpn_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    SSL *ssl = SSL_new(D.alpn_ctx);
    struct bufferevent *bev;
    struct timeval tv = {10, 0};

    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    if (!ssl) {
        evutil_closesocket(fd);
        return;
    }
    bev = bufferevent_openssl_socket_new(D.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, drv_alpn_read, NULL, drv_alpn_event, NULL);
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ);
}

/* Timeout of the whole run. */
static void drv_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
    event_base_loopexit(D.base, NULL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", 1, NULL, 'd'},         {"ca", 1, NULL, 'c'},          {"storage", 1, NULL, 's'},
        {"resolver", 1, NULL, 'r'},    {"email", 1, NULL, 'e'},       {"key-type", 1, NULL, 'k'},
        {"renew-before", 1, NULL, 'R'}, {"check-ms", 1, NULL, 'C'},   {"http-port", 1, NULL, 'H'},
        {"alpn-port", 1, NULL, 'A'},   {"want", 1, NULL, 'w'},        {"wrong-keyauth", 1, NULL, 'W'},
        {"expect-certs", 1, NULL, 'n'}, {"expect-errors", 1, NULL, 'E'}, {"timeout", 1, NULL, 't'},
        {"out", 1, NULL, 'o'},         {"debug", 0, NULL, 'D'},       {NULL, 0, NULL, 0}};
    struct acme_cfg cfg = {"le", NULL, NULL, "EC256", NULL, 0, NULL, 0, 0};
    struct acme_hooks hooks = {NULL, h_http01_set, h_http01_clear, h_alpn01_set, h_alpn01_clear,
                               h_on_cert, h_on_error};
    const char *wants[DRV_MAX_WANTS];
    int nwants = 0, http_port = 0, alpn_port = 0, timeout_s = 60, timed_out = 0, rc = 1, c;
    struct evhttp *http = NULL;
    struct evconnlistener *lis = NULL;
    struct event *tev = NULL;
    struct acme *a = NULL;
    struct sockaddr_in sin;
    struct timeval tv;
    char err[1024];

    signal(SIGPIPE, SIG_IGN);
    D.out = ".";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': cfg.ca_server = optarg; break;
        case 'c': cfg.ca_certificates = optarg; break;
        case 's': cfg.storage = optarg; break;
        case 'r': cfg.resolver = optarg; break;
        case 'e': cfg.email = optarg; break;
        case 'k': cfg.key_type = optarg; break;
        case 'R': cfg.renew_before_s = strtoll(optarg, NULL, 10); break;
        case 'C': cfg.check_interval_ms = strtoll(optarg, NULL, 10); break;
        case 'H': http_port = atoi(optarg); break;
        case 'A': alpn_port = atoi(optarg); break;
        case 'w':
            if (nwants < DRV_MAX_WANTS) wants[nwants++] = optarg;
            break;
        case 'W': D.wrong_left = atoi(optarg); break;
        case 'n': D.expect_certs = atoi(optarg); break;
        case 'E': D.expect_errors = atoi(optarg); break;
        case 't': timeout_s = atoi(optarg); break;
        case 'o': D.out = optarg; break;
        case 'D': log_set_level(RELAIS_LOG_DEBUG); break;
        default: fprintf(stderr, "acme_driver: bad option\n"); return 1;
        }
    }
    if (!cfg.ca_server || !cfg.storage || !http_port || !alpn_port) {
        fprintf(stderr, "acme_driver: --dir, --storage, --http-port, --alpn-port are required\n");
        return 1;
    }
    D.base = event_base_new();
    /* http-01 responder */
    http = evhttp_new(D.base);
    if (!http || evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)http_port) < 0) {
        fprintf(stderr, "acme_driver: cannot listen on 127.0.0.1:%d\n", http_port);
        goto done;
    }
    evhttp_set_gencb(http, drv_http_cb, NULL);
    /* tls-alpn-01 responder */
    D.alpn_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(D.alpn_ctx, TLS1_2_VERSION);
    SSL_CTX_set_alpn_select_cb(D.alpn_ctx, drv_alpn_select, NULL);
    SSL_CTX_set_tlsext_servername_callback(D.alpn_ctx, drv_sni);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)alpn_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lis = evconnlistener_new_bind(D.base, drv_alpn_accept, NULL,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                  (struct sockaddr *)&sin, sizeof(sin));
    if (!lis) {
        fprintf(stderr, "acme_driver: cannot listen on 127.0.0.1:%d\n", alpn_port);
        goto done;
    }
    a = acme_new(D.base, &cfg, &hooks, err, sizeof(err));
    if (!a) {
        printf("NEWFAIL %s\n", err);
        goto done;
    }
    for (int i = 0; i < nwants; i++) {
        const char *spec = wants[i], *colon = strchr(spec, ':');
        enum acme_challenge how = ACME_HTTP01;
        char *list, *save = NULL, *tok;
        const char *doms[32];
        size_t nd = 0;
        int r;

        if (!colon) continue;
        if (!strncmp(spec, "alpn:", 5)) how = ACME_TLSALPN01;
        list = strdup(colon + 1);
        for (tok = strtok_r(list, ",", &save); tok && nd < 32; tok = strtok_r(NULL, ",", &save))
            doms[nd++] = tok;
        r = acme_want(a, doms, nd, how);
        printf("WANT %s %s\n", nd ? doms[0] : "-", r == 0 ? "stored" : r == 1 ? "ordered" : "refused");
        fflush(stdout);
        free(list);
    }
    tev = evtimer_new(D.base, drv_timeout, &timed_out);
    tv.tv_sec = timeout_s;
    tv.tv_usec = 0;
    evtimer_add(tev, &tv);
    if (D.certs < D.expect_certs || D.errors < D.expect_errors || D.expect_certs == 0)
        event_base_dispatch(D.base);
    printf("%s certs=%d errors=%d http01_hits=%d alpn01_hits=%d\n", timed_out ? "TIMEOUT" : "DONE",
           D.certs, D.errors, D.http_hits, D.alpn_hits);
    rc = timed_out ? 2 : 0;
done:
    acme_free(a);
    if (tev) event_free(tev);
    if (lis) evconnlistener_free(lis);
    if (http) evhttp_free(http);
    SSL_CTX_free(D.alpn_ctx);
    for (int i = 0; i < DRV_MAX_ENTRIES; i++) {
        struct drv_entry *es[2] = {&D.http[i], &D.alpn[i]};
        for (int j = 0; j < 2; j++) {
            free(es[j]->key);
            free(es[j]->v1);
            free(es[j]->v2);
        }
    }
    tls_cache_clear();
    event_base_free(D.base);
    return rc;
}
