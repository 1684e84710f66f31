/*
 * Unit tests of src/tls.c's server building blocks: session tickets made
 * with the shared key ring resume on another context (another worker, a
 * reloaded configuration), still resume after one and two rotations, and
 * no longer after three; the generated default certificate; client
 * contexts cached by options.  Handshakes run in memory (BIO pairs).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tap.h"
#include "tls.h"

/* A server context with the generated certificate and the shared tickets. */
static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    X509 *x;
    EVP_PKEY *k;

    if (!ctx || tls_generated_cert(&x, &k) < 0) return NULL;
    tls_server_ctx_setup(ctx);
    SSL_CTX_use_certificate(ctx, x);
    SSL_CTX_use_PrivateKey(ctx, k);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION); /* tickets at once */
    return ctx;
}

/* Runs a handshake between a client SSL on cctx (resuming sess when not
 * NULL) and a server SSL on sctx, in memory.  Returns 1 on success and
 * sets *reused and *out (the client's session, a new reference). */
static int handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *sess, int *reused,
                     SSL_SESSION **out)
{
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *cb, *sb;
    int done = 0, i, rc = 0;

    if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0)) goto out;
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (sess) SSL_set_session(c, sess);
    for (i = 0; i < 100 && done != 3; i++) {
        if (!(done & 1) && SSL_do_handshake(c) == 1) done |= 1;
        if (!(done & 2) && SSL_do_handshake(s) == 1) done |= 2;
    }
    if (done != 3) goto out;
    *reused = SSL_session_reused(c);
    /* a connection freed without a shutdown marks its session as not
     * resumable: close both sides properly first */
    SSL_shutdown(c);
    SSL_shutdown(s);
    *out = SSL_get1_session(c);
    rc = 1;
out:
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    return rc;
}

int main(void)
{
    SSL_CTX *a = server_ctx(), *b = server_ctx();
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL_SESSION *s0 = NULL, *s1 = NULL;
    X509 *x1, *x2;
    EVP_PKEY *k1, *k2;
    int reused = -1;

    ok(a && b && cctx, "contexts made");
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    ok(handshake(cctx, a, NULL, &reused, &s0) && reused == 0, "full handshake on context A");
    ok(handshake(cctx, b, s0, &reused, &s1) && reused == 1,
       "its ticket resumes on context B (another worker or configuration)");
    SSL_SESSION_free(s1);
    tls_tickets_rotate();
    ok(handshake(cctx, a, s0, &reused, &s1) && reused == 1, "resumes after one rotation");
    SSL_SESSION_free(s1);
    tls_tickets_rotate();
    ok(handshake(cctx, a, s0, &reused, &s1) && reused == 1, "resumes after two rotations");
    SSL_SESSION_free(s1);
    tls_tickets_rotate();
    ok(handshake(cctx, a, s0, &reused, &s1) && reused == 0,
       "no longer resumes after three rotations (full handshake instead)");
    SSL_SESSION_free(s1);
    SSL_SESSION_free(s0);

    ok(tls_generated_cert(&x1, &k1) == 0 && tls_generated_cert(&x2, &k2) == 0 && x1 == x2,
       "the generated certificate is made once");
    {
        char cn[64] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(x1), NID_commonName, cn, sizeof(cn));
        ok(!strcmp(cn, "RELAIS DEFAULT CERT"), "its CN is RELAIS DEFAULT CERT (got %s)", cn);
    }
    {
        struct tls_client_opts o1 = {NULL, NULL, NULL, 1}, o2 = {NULL, NULL, NULL, 0};
        char err[200];
        SSL_CTX *c1 = tls_client_ctx(&o1, err, sizeof(err));
        SSL_CTX *c2 = tls_client_ctx(&o1, err, sizeof(err));
        SSL_CTX *c3 = tls_client_ctx(&o2, err, sizeof(err));
        struct tls_client_opts bad = {"/nonexistent/ca.pem", NULL, NULL, 0};
        SSL_CTX *c4 = tls_client_ctx(&bad, err, sizeof(err));
        ok(c1 && c1 == c2, "client contexts are cached by options");
        ok(c3 && c3 != c1, "other options, another context");
        ok(!c4 && strstr(err, "ca: /nonexistent/ca.pem: No such file"),
           "a missing CA file is named (%s)", err);
        SSL_CTX_free(c1);
        SSL_CTX_free(c2);
        SSL_CTX_free(c3);
    }
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cctx);
    tls_global_free();
    return tap_done();
}
