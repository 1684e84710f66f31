/*
 * tcp — Traefik v3's `tcp` section: TCP routers (HostSNI, HostSNIRegexp,
 * ClientIP, ALPN rules; TLS passthrough or termination), TCP services
 * (loadBalancer with weights and PROXY protocol towards servers,
 * weighted), TCP middlewares (ipAllowList, inFlightConn) and the relay
 * that moves bytes both ways.  Module prefix: tcp_.
 *
 * Building (control thread): tcp_snap_build compiles the providers'
 * `tcp` sections into the snapshot's tcp part; errors are local to their
 * object and reported with their key path ("tcp.routers.r@file.rule:
 * column 3: ...").  TCP routers' HostSNI names feed the snapshot's
 * tls_hosts (TLS options chosen at the handshake).
 *
 * Routing (worker thread, from proxy.c's accept path), as Traefik's
 * entry point muxer does:
 *  - a non-TLS connection goes to the first non-TLS TCP router whose rule
 *    matches (HostSNI(`*`), ClientIP), else to the HTTP routers;
 *  - a TLS connection (ClientHello peeked): an HTTPS router whose Host
 *    names the SNI first, then a TCP TLS router with a specific rule, then
 *    any HTTPS router, then a TCP TLS HostSNI(`*`) router.
 *
 * Relay (worker thread): the client stream (plaintext after termination,
 * or raw TLS bytes under passthrough) and a server stream; each side reads
 * while the other's output holds less than TCP_BUF_CAP (back-pressure),
 * a FIN is passed on as a half-close once the bytes before it are
 * written, an idle timeout (the entry point's idleTimeout) and a dial
 * timeout bound the connection.
 */
#ifndef RELAIS_TCP_H
#define RELAIS_TCP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rule.h"

struct snapshot;
struct snap_source;
struct sc_config;
struct stream;
struct worker;
struct wk_snapref;
struct tcp_snap;
struct tcp_router;
struct tcp_conn;

/* Output bytes above which the other side stops being read. */
#define TCP_BUF_CAP (256 * 1024)

/* tcp_ep_flags bits. */
#define TCP_EP_PLAIN 0x01 /* the entry point has non-TLS TCP routers */
#define TCP_EP_TLS 0x02   /* ... TLS TCP routers (the hello is needed) */

/**
 * Compiles the `tcp` sections of src into snap->tcp (the HTTP part, TLS
 * configuration and tls_hosts must be built already).  Disabled objects
 * are logged and counted in snap->nerrors.  0, or -1 when memory ran out.
 * Control thread.
 */
int tcp_snap_build(struct snapshot *snap, const struct snap_source *src, size_t nsrc,
                   const struct sc_config *sc);

/** Frees the tcp part; NULL is a no-op.  Control thread (last snapshot
 *  reference). */
void tcp_snap_free(struct tcp_snap *t);

/** TCP_EP_* flags of entry point ep in snap (0 when it has no TCP
 *  router).  Any thread. */
unsigned tcp_ep_flags(const struct snapshot *snap, int ep);

/**
 * The TCP router that takes a connection on entry point ep, or NULL when
 * it belongs to the HTTP(S) routers.  tls: 1 when the connection starts
 * with a ClientHello (req carries its SNI and ALPN), 0 otherwise.  Any
 * thread.
 */
const struct tcp_router *tcp_route(const struct snapshot *snap, int ep, int tls,
                                   const struct rule_tcp_req *req);

/** Calls cb for every enabled TLS-terminating router of snap that names a
 *  certificate resolver (its rule gives the HostSNI names, domains may be
 *  NULL).  Control thread. */
void tcp_foreach_resolver(const struct snapshot *snap,
                          void (*cb)(void *arg, const char *router, const char *resolver,
                                     const rule_t *rule, json_t *domains),
                          void *arg);

/** Name of a router ("name@provider"). */
const char *tcp_router_name(const struct tcp_router *r);

/**
 * Takes a client connection routed to r: applies r's middlewares (a
 * refusal closes it), terminates TLS when r says so (else the peeked
 * bytes are still in the socket and are relayed as they are), connects a
 * server of r's service (PROXY header first when configured) and relays.
 * Takes ownership of cs and of ref (the snapshot r lives in), in every
 * case.  client is the client address (the PROXY header's when one was
 * received), local the address the client connected to.  Worker thread.
 */
void tcp_take(struct worker *w, int ep, struct stream *cs, struct wk_snapref *ref,
              const struct tcp_router *r, const struct sockaddr *client,
              const struct sockaddr *local);

/** Closes every relayed connection of w now.  Worker thread. */
void tcp_close_all(struct worker *w);

/** Closes w's relayed connections of entry point slot ep now (the end of
 *  its grace after it was removed).  Worker thread. */
void tcp_close_ep(struct worker *w, int ep);

/** For the API: adds every TCP router, service and middleware of t to
 *  routers / services / mws as "name@provider" -> {"status", "error",
 *  and for routers "using"} (api_status).  t may be NULL.  Control
 *  thread. */
void tcp_api_status(const struct tcp_snap *t, const struct sc_config *sc, json_t *routers,
                    json_t *services, json_t *mws);

#endif /* RELAIS_TCP_H */
