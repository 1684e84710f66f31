/*
 * tls — OpenSSL contexts for relais.  Module prefix: tls_.
 *
 * Client side (this file's first half): contexts for outgoing TLS (the
 * host's HTTP client for providers, later HTTPS servers), built from
 * Traefik-style options (ca, cert, key, insecureSkipVerify) and cached so
 * that a provider polling every 200 ms does not load the CA store each
 * time.  The byte-moving part of TLS lives in stream.c (st_tls_*).
 *
 * Values named "file or content" follow Traefik's FileOrContent: a value
 * that starts with "-----BEGIN" is PEM text, anything else a file path.
 *
 * Thread-safety: every function may be called from any thread (the cache
 * has a lock; a context, once built, is read-only and reference-counted).
 */
#ifndef RELAIS_TLS_H
#define RELAIS_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/** Options of an outgoing TLS connection (strings borrowed). */
struct tls_client_opts {
    const char *ca;     /* trusted CAs, file or content; NULL = the system's */
    const char *cert;   /* client certificate chain, file or content, or NULL */
    const char *key;    /* its private key, file or content (with cert) */
    int insecure;       /* 1 = do not verify the server's certificate */
};

/**
 * A client context for o: from the cache when the same options (and the
 * same file modification times) were seen before, else built.  Returns a
 * new reference (release with SSL_CTX_free), or NULL with a message in
 * err (e.g. "ca: /x.pem: No such file or directory").
 */
SSL_CTX *tls_client_ctx(const struct tls_client_opts *o, char *err, size_t errlen);

/**
 * A client connection object on ctx for a server named host (a DNS name
 * or an IP literal, brackets allowed): sends SNI for names and, unless the
 * context is insecure, verifies the certificate against host.  alpn is a
 * wire-format protocol list (or NULL).  NULL with err set on failure.
 */
SSL *tls_client_ssl(SSL_CTX *ctx, const char *host, const unsigned char *alpn,
                    size_t alpn_len, char *err, size_t errlen);

/**
 * Describes why a TLS operation on ssl failed (verification result first,
 * then the OpenSSL error queue, which is cleared) into buf.  ssl may be
 * NULL.  Returns buf.
 */
const char *tls_describe_error(const SSL *ssl, char *buf, size_t len);

/** 1 when v is PEM text rather than a file name (FileOrContent). */
int tls_is_pem(const char *v);

/**
 * Adds every certificate of a file-or-content value to store.  0, or -1
 * with err set, prefixed with "what: " when what is not NULL
 * ("ca: /x.pem: No such file or directory").  Any thread.
 */
int tls_store_add_pem(X509_STORE *store, const char *what, const char *v, char *err,
                      size_t errlen);

/** Drops every cached client context (at exit, for leak checkers). */
void tls_cache_clear(void);

/* ---- building blocks of the server side (tlsstore.c) -------------------- */

/**
 * Loads a certificate chain and its key from file-or-content values: the
 * leaf, the rest of the chain (possibly empty) and the key, which must
 * match.  New references on success (0); -1 with err set ("certFile:
 * /x.pem: No such file or directory", "keyFile: does not match ...").
 */
int tls_load_cert(const char *cert, const char *key, X509 **leaf,
                  STACK_OF(X509) **chain, EVP_PKEY **pkey, char *err, size_t errlen);

/**
 * The self-signed certificate served when no other applies and no default
 * certificate is configured (Traefik's generated default), made once per
 * process (EC P-256, CN "RELAIS DEFAULT CERT").  Borrowed references,
 * valid until exit; 0, or -1 when it cannot be made.
 */
int tls_generated_cert(X509 **leaf, EVP_PKEY **pkey);

/**
 * Prepares a server context: session tickets encrypted with the process'
 * shared key ring (every worker, every context, across reloads), no
 * server-side session cache, partial writes.  Any thread.
 */
void tls_server_ctx_setup(SSL_CTX *ctx);

/** Rotates the ticket keys: a new key encrypts, the previous two still
 *  decrypt.  Called by the control thread every 12 hours. */
void tls_tickets_rotate(void);

/** Frees the generated certificate and the ticket keys (at exit). */
void tls_global_free(void);

#endif /* RELAIS_TLS_H */
