/*
 * tlsstore — the server side of TLS as the dynamic configuration describes
 * it (Traefik's `tls` section): certificates with their names, the default
 * certificate, TLS options (one OpenSSL context each) and the choice made
 * for each handshake.  Module prefix: ts_.
 *
 * A ts_conf is immutable once built and shared by consecutive snapshots
 * while the `tls` section (and the certificates resolvers deliver) are
 * unchanged, so that reloads that do not touch TLS cost nothing.  The
 * per-snapshot part, which TLS options each host name uses (from the
 * routers' Host rules), is a ts_hosts.
 *
 * A handshake: the SSL is made from the default options' context
 * (ts_ssl_new); the ClientHello callback reads SNI and ALPN, picks the
 * options for the name (ts_hosts), switches to their context, applies
 * versions, ciphers, curves and client authentication, and selects the
 * certificate: exact name, then wildcard, then the default one (refused
 * under sniStrict).  ALPN "acme-tls/1" serves a TLS-ALPN-01 challenge
 * certificate when one is set for the name (ts_alpn01_set).
 *
 * Thread-safety: built and freed on the control thread; read by workers
 * during handshakes through the snapshot that references it.
 */
#ifndef RELAIS_TLSSTORE_H
#define RELAIS_TLSSTORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct ts_conf;
struct ts_options;
struct ts_hosts;

/** One source of `tls` configuration: a provider's merged tree. */
struct ts_source {
    const char *provider; /* "file", "docker", ... (namespaces options) */
    json_t *tls;          /* the tree's `tls` object, or NULL */
    json_t *origins;      /* "tls.certificates[i]" / "tls.options.NAME" -> source
                             document (for messages), or NULL */
};

/** A certificate delivered by a resolver (ACME), PEM text. */
struct ts_extra_cert {
    const char *chain_pem; /* leaf first */
    const char *key_pem;   /* private key */
    const char *source;    /* for messages, e.g. "acme le" */
};

/**
 * Builds the TLS configuration from every source plus extra certificates.
 * Errors are logged with their key path ("tls.certificates[1].certFile:
 * ..."); a bad certificate is skipped, bad options are disabled (routers
 * naming them are disabled by the snapshot).  *nerrors is increased by the
 * number of objects in error.  Reuses prev when nothing changed (its
 * reference count goes up).  NULL only when memory runs out.  Control
 * thread.
 */
struct ts_conf *ts_conf_build(const struct ts_source *src, size_t nsrc,
                              const struct ts_extra_cert *extra, size_t nextra,
                              struct ts_conf *prev, size_t *nerrors);

/** Reference counting (any thread); the last unref frees. */
void ts_conf_ref(struct ts_conf *c);
void ts_conf_unref(struct ts_conf *c);

/** The options called name ("default", "foo@file"); NULL when unknown.
 *  *error receives the reason when they exist but are disabled. */
const struct ts_options *ts_conf_options(const struct ts_conf *c, const char *name,
                                         const char **error);

/** The i-th certificate c serves (configured, from resolvers, and a
 *  configured default certificate; not the generated one), NULL past the
 *  end.  Borrowed: valid while c is.  Any thread (read only). */
X509 *ts_conf_cert(const struct ts_conf *c, size_t i);

/** Name of options (for logs and the API). */
const char *ts_options_name(const struct ts_options *o);

/** Host name → options for one snapshot: built from the TLS routers'
 *  Host rules.  A host claimed by different options falls back to the
 *  default ones (logged, as Traefik does). */
struct ts_hosts *ts_hosts_new(void);
/** Records that host (lowercase; wildcard = "*.suffix" form passed as the
 *  suffix with wildcard 1) is served by routers with options o.  0 / -1. */
int ts_hosts_add(struct ts_hosts *h, const char *host, size_t len, int wildcard,
                 const struct ts_options *o, const char *router);
/** Frees; NULL is a no-op. */
void ts_hosts_free(struct ts_hosts *h);

/** Options for a host name (request Host header or SNI), or NULL for the
 *  default ones. */
const struct ts_options *ts_hosts_lookup(const struct ts_hosts *h, const char *host,
                                         size_t len);

/** ALPN on ssl never chooses h2 (TLS terminated for a TCP router: the
 *  bytes go to a server of unknown protocol).  Before the handshake. */
void ts_ssl_no_h2(SSL *ssl);

/**
 * A new server-side SSL for one connection with conf and hosts (both must
 * outlive the handshake: the connection holds the snapshot).  NULL when
 * out of memory.  Worker thread.
 */
SSL *ts_ssl_new(const struct ts_conf *conf, const struct ts_hosts *hosts);

/** After the handshake: the options it used (for the 421 check). */
const struct ts_options *ts_ssl_options(const SSL *ssl);

/** 1 when the handshake served a TLS-ALPN-01 challenge (the connection
 *  is to be closed at once). */
int ts_ssl_is_alpn01(const SSL *ssl);

/** Sets (cert_pem non-NULL) or clears the TLS-ALPN-01 challenge
 *  certificate for domain.  0 / -1.  Any thread. */
int ts_alpn01_set(const char *domain, const char *cert_pem, const char *key_pem);

/** Frees process-wide state (challenge certificates) at exit. */
void ts_global_free(void);

#endif /* RELAIS_TLSSTORE_H */
