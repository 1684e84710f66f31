/*
 * resolvers — Traefik's certificatesResolvers wired into relais: one ACME
 * client (acme.c) per resolver of the static configuration, the domains
 * each TLS router needs, the challenges answered (http-01 on the
 * httpChallenge entry point, tls-alpn-01 in the TLS handshake), and the
 * certificates handed to every snapshot.  Module prefix: rs_.
 *
 * Domains of a router (as Traefik): each tls.domains entry {main, sans}
 * is one certificate; without tls.domains, the Host names of the rule
 * make one certificate, the first as main and the others as SANs.
 *
 * Cluster mode (cl_role() != CL_NONE): the resolvers keep their account
 * and certificates in etcd (acme_etcd.h: P/acme/<resolver>, storage:
 * ignored), only the node holding P/acme/lock orders and renews, every
 * node serves the certificates of P/acme/ as soon as they are written
 * and answers the challenges published there (http-01 tokens on the
 * httpChallenge entry points of its own resolvers, or on every entry
 * point when it declares none).
 *
 * Threading: everything on the control thread, except rs_http01_answer,
 * which workers call (the token table has a lock).
 */
#ifndef RELAIS_RESOLVERS_H
#define RELAIS_RESOLVERS_H

#include <stddef.h>

struct event_base;
struct sc_config;
struct snapshot;
struct ts_extra_cert;

/**
 * Creates a client per resolver (certificatesResolvers.NAME.acme).  Bad
 * options are logged with their key path and that resolver is left out;
 * `changed` is called (control thread) whenever the set of certificates
 * changes, so that the caller builds a new snapshot.  0, or -1 when a
 * resolver is misconfigured (check mode reports it and fails).
 */
int rs_start(struct event_base *base, const struct sc_config *sc, void (*changed)(void));

/** Only validates the resolvers' options (relais --check).  0 / -1. */
int rs_check(const struct sc_config *sc);

/** Asks the resolvers for what the routers of snap need (new domain sets
 *  only).  Control thread, after each snapshot is published. */
void rs_sync(const struct snapshot *snap);

/** The certificates obtained so far, for snap_build (valid until the next
 *  change; control thread). */
const struct ts_extra_cert *rs_certs(size_t *n);

/**
 * The key authorization for an http-01 token requested on entry point
 * slot ep (static_config.h), copied into out (cap bytes).  The slot is
 * matched by its entry point's name, so a challenge is answered on the
 * httpChallenge entry point also after that entry point changed slots at
 * run time (SIGHUP, P/static).  Returns its length, or -1 when no
 * challenge with that token is pending there.  Any thread (workers).
 */
int rs_http01_answer(int ep, const char *token, size_t len, char *out, size_t cap);

/** Stops and frees every resolver.  Control thread. */
void rs_stop(void);

#endif /* RELAIS_RESOLVERS_H */
