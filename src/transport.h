/*
 * transport — Traefik's serversTransports: how relais talks to a service's
 * servers (TLS towards https:// servers, client certificates, timeouts,
 * keep-alive limits).  Module prefix: tr_.
 *
 * A transport is compiled on the control thread from
 * http.serversTransports.NAME (dynamic configuration) or from the static
 * serversTransport (the default one, "default@internal"), and shared by
 * consecutive snapshots while its configuration and the files it names
 * are unchanged.  A service holds a reference to the transport it uses;
 * its servers point at it (borrowed).  Once built a transport is
 * read-only: workers use it concurrently (tr_ssl, tr_check_peer).
 *
 * Connections made with a transport are pooled under a key that includes
 * tr->pool_tag ("name#serial"): two transports to one server, or two
 * versions of one transport, never share connections.
 */
#ifndef RELAIS_TRANSPORT_H
#define RELAIS_TRANSPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct sc_config;

/** Default name of the static serversTransport. */
#define TR_DEFAULT_NAME "default@internal"

/** A compiled serversTransport. */
struct tr_transport {
    char *name;                         /* "name@provider" */
    int refs;                           /* holders: snapshots and services
                                           (atomic) */
    json_t *cfg;                        /* its configuration (reuse check) */
    char *stamp;                        /* modification times of the files
                                           it read (reuse check) */
    char *pool_tag;                     /* "name#serial", part of pool keys */
    char *server_name;                  /* serverName (SNI and verified
                                           name), NULL = the URL's host */
    int insecure;                       /* insecureSkipVerify */
    int disable_http2;                  /* disableHTTP2: ALPN offers only
                                           http/1.1 */
    char *peer_cert_uri;                /* peerCertURI: a URI SAN the
                                           server's certificate must carry,
                                           or NULL */
    SSL_CTX *ctx;                       /* client context (one reference),
                                           NULL when the transport is
                                           disabled */
    int64_t dial_timeout_ms;            /* forwardingTimeouts.dialTimeout
                                           (connect and TLS handshake; 0 =
                                           none) */
    int64_t response_header_timeout_ms; /* ...responseHeaderTimeout (0 =
                                           none) */
    int64_t idle_conn_timeout_ms;       /* ...idleConnTimeout (0 = none) */
    int max_idle;                       /* maxIdleConnsPerHost (per worker;
                                           0 = no keep-alive) */
    int max_conns;                      /* maxConnsPerHost: requests one
                                           server carries at once (each on
                                           its connection, in use or being
                                           opened), all workers together;
                                           more wait, up to dialTimeout
                                           (then 504); 0 = no cap */
    int status;                         /* enum snap_status */
    char *error;                        /* why disabled (errors with key
                                           paths, "; "-joined), or NULL */
};

/**
 * Compiles the transport qname from cfg (borrowed; the transport keeps a
 * reference).  path is where cfg sits, for error messages
 * ("http.serversTransports.t@file", or "serversTransport" for the static
 * one); origin the document that defined it (or NULL).  When prev (may be
 * NULL) has the same configuration and its files did not change, prev is
 * returned with a new reference instead.  A bad configuration comes back
 * with status SNAP_DISABLED and error set (also logged).  NULL only when
 * memory runs out.  Control thread.
 */
struct tr_transport *tr_build(const char *qname, json_t *cfg, const char *path,
                              const char *origin, struct tr_transport *prev);

/**
 * The default transport, default@internal, from the static configuration
 * (serversTransport: forwardingTimeouts, maxIdleConnsPerHost,
 * insecureSkipVerify, rootCAs, ...); prev as for tr_build.  NULL only when
 * memory runs out.  Control thread.
 */
struct tr_transport *tr_default(const struct sc_config *sc, struct tr_transport *prev);

/** Takes a reference.  Any thread. */
void tr_ref(struct tr_transport *t);

/** Drops a reference, freeing at zero; NULL is a no-op.  Any thread. */
void tr_unref(struct tr_transport *t);

/**
 * A client TLS object for a server whose URL names host (serverName
 * replaces it when set): SNI, certificate verification against that name
 * unless insecureSkipVerify, ALPN "h2, http/1.1" when h2 is set, else
 * "http/1.1".  NULL with err set.  Any
 * thread (the context is shared read-only).
 */
SSL *tr_ssl(const struct tr_transport *t, const char *host, int h2, char *err, size_t errlen);

/**
 * Checks a finished handshake against peerCertURI: 0 when it is not set
 * or the server's certificate carries that URI SAN, -1 with err set.
 * Any thread.
 */
int tr_check_peer(const struct tr_transport *t, SSL *ssl, char *err, size_t errlen);

#endif /* RELAIS_TRANSPORT_H */
