/*
 * udp — Traefik v3's `udp` section: UDP routers (entryPoints, service; no
 * rule) and UDP services (loadBalancer.servers[].address with weights),
 * and the datagram relay.  Module prefix: udp_.
 *
 * A UDP entry point ("host:port/udp") has one socket, owned by one worker
 * (entry point index modulo the number of workers), so that one client's
 * datagrams always reach the same session without locking.  A session is
 * keyed by the client address: its first datagram picks a server of the
 * entry point's router's service and opens a connected socket to it;
 * later datagrams go through that socket, replies go back to the client
 * from the entry point's socket.  A session ends after
 * entryPoints.X.udp.timeout (3 s by default) without a datagram either
 * way.
 *
 * An entry point takes one UDP router (Traefik's rule: with several, the
 * first by name is used and the others are reported and disabled).
 */
#ifndef RELAIS_UDP_H
#define RELAIS_UDP_H

#include <jansson.h>
#include <stddef.h>

struct snapshot;
struct snap_source;
struct sc_config;
struct sc_entrypoint;
struct worker;
struct udp_snap;

/* Sessions one UDP entry point keeps at once (new clients beyond are
 * dropped until some expire). */
#define UDP_MAX_SESSIONS 16384

/**
 * Compiles the `udp` sections of src into snap->udp.  Disabled objects
 * are logged ("udp.routers.r@file.service: ...") and counted in
 * snap->nerrors.  0, or -1 when memory ran out.  Control thread.
 */
int udp_snap_build(struct snapshot *snap, const struct snap_source *src, size_t nsrc,
                   const struct sc_config *sc);

/** Frees the udp part; NULL is a no-op. */
void udp_snap_free(struct udp_snap *u);

/** Opens and binds the socket of a UDP entry point (control thread, so
 *  that a bind error stops the start).  fd, or -1 with errno set. */
int udp_listen(const struct sc_entrypoint *ep);

/** Gives the socket fd of entry point ep to worker w (before its thread
 *  starts, or on its thread; the worker then owns fd).  0, or -1 (fd is
 *  closed). */
int udp_attach(struct worker *w, int ep, int fd);

/** Closes w's UDP sockets and sessions (graceful stop, exit).  Worker
 *  thread (or after it ended). */
void udp_stop(struct worker *w);

/** Closes w's socket and sessions of entry point slot ep, if it has it
 *  (the entry point was removed).  Worker thread. */
void udp_detach(struct worker *w, int ep);

/** Number of live sessions of w (tests, logs). */
size_t udp_sessions(const struct worker *w);

/** For the API: adds every UDP router and service of u to routers /
 *  services as "name@provider" -> {"status", "error", and for routers
 *  "using"} (api_status).  u may be NULL.  Control thread. */
void udp_api_status(const struct udp_snap *u, const struct sc_config *sc, json_t *routers,
                    json_t *services);

#endif /* RELAIS_UDP_H */
