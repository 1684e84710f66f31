/*
 * acme_etcd — the certificate resolvers' storage in cluster mode: the
 * ACME account and certificates in etcd, the ordering lock, and the
 * challenges shared by every node.  Module prefix: ae_.
 *
 * Keys under P/acme/ (P = cl_prefix(); the contract with relaisctl):
 *
 *   P/acme/<resolver>               that resolver's section exactly as in
 *                                   acme.json (acme_store.h): {"Account":
 *                                   {...}, "Certificates": [...]}, compact
 *                                   JSON, no lease.  Only the lock holder
 *                                   writes it, each time with a txn whose
 *                                   compares are that P/acme/lock still
 *                                   has the create revision it got (a node
 *                                   that lost the lock cannot overwrite a
 *                                   newer certificate) and that the key's
 *                                   mod revision is the one it last read
 *                                   (else it reads, merges, writes again).
 *   P/acme/lock                     the node name of the one node that
 *                                   orders and renews, on its lease.
 *                                   Taken by the leading controller (a txn
 *                                   creating it if absent), released when
 *                                   it stops leading; proxies never take
 *                                   it.  After taking it the holder reads
 *                                   P/acme/ again before ordering anything.
 *   P/acme/challenges/http/<token>  an http-01 key authorization (text),
 *                                   on the ordering node's lease while the
 *                                   challenge runs: every node answers it.
 *   P/acme/challenges/alpn/<domain> a tls-alpn-01 challenge certificate:
 *                                   {"certificate": PEM, "key": PEM}, the
 *                                   same way.
 *   P/acme/acks/<kind>/<id>/<node>  node <node>'s acknowledgement of the
 *                                   challenge P/acme/challenges/<kind>/<id>
 *                                   (kind "http" or "alpn"): the decimal
 *                                   mod revision of the challenge key it
 *                                   installed, on <node>'s own lease (it
 *                                   goes with the node).  Put once the
 *                                   node's answer table holds the
 *                                   challenge, deleted by the node when
 *                                   the challenge key is deleted.
 *
 * Every node (controllers and proxies) reads P/acme/ and watches it: each
 * section's certificates go to on_cert (so the node serves them without
 * a restart) and into its own resolver of that name, if any
 * (acme_store_merge); the challenges go to http01 / alpn01, and each one
 * installed is acknowledged under P/acme/acks/.  The ordering node's
 * challenge hooks put the challenge and report it ready
 * (acme_challenge_ready) once the put is done and every live node (one
 * with a P/nodes/<name> key, read again every AE_ACK_POLL_MS while it
 * waits, so that a node leaving stops counting) has acknowledged that put
 * — or, at the latest, AE_ACK_MAX_MS after the put, with a warning naming
 * the nodes that did not (the CA may then fail to validate on those).
 *
 * Resolver names "lock", "challenges" and "acks", and names holding '/',
 * cannot be stored (ae_resolver refuses them).
 *
 * Thread: the control thread (the etcd client's loop).
 */
#ifndef RELAIS_ACME_ETCD_H
#define RELAIS_ACME_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct acme;
struct acme_storage;
struct ae_res;

#define AE_ACK_MAX_MS 10000 /* cap on the wait for the live nodes'
                               acknowledgements of a challenge, from its
                               put: a stopped or stuck node (its lease
                               still alive) must not hold the certificates
                               of the cluster forever; under ACME_CHAL_WAIT_MS
                               (acme.c), after which the order fails */
#define AE_ACK_POLL_MS 500  /* while waiting: P/nodes/ read again (a node
                               that left no longer counts) */

/** What the etcd side calls on the node (control thread; strings valid
 *  during the call). */
struct ae_hooks {
    /** A certificate of resolver read from etcd (at start, on every
     *  change; the same one may come again). */
    void (*on_cert)(const char *resolver, const char *main_domain, const char *const *sans,
                    size_t nsans, const char *chain_pem, const char *key_pem,
                    int64_t not_after);
    /** An http-01 challenge appeared (key_auth) or is gone (NULL).  0
     *  once the node answers it (or no longer does), -1 when it cannot
     *  (a challenge not installed is not acknowledged). */
    int (*http01)(const char *token, const char *key_auth);
    /** A tls-alpn-01 challenge certificate appeared or is gone (NULL);
     *  returns as http01. */
    int (*alpn01)(const char *domain, const char *cert_pem, const char *key_pem);
};

/**
 * Starts: as soon as the cluster's etcd client exists (cl_etcd()), reads
 * P/acme/ and watches it; on a controller, follows the leadership
 * (cl_on_leader) to take and release the lock.  Resolvers may be added
 * (ae_resolver) before or after.  0, or -1 (out of memory).  Control
 * thread, in cluster mode only.
 */
int ae_start(struct event_base *base, const struct ae_hooks *h);

/**
 * Registers resolver name and fills *st with the storage that saves its
 * section under P/acme/<name> (for acme_new_stored).  NULL (logged) for
 * a name that cannot be a key, or out of memory.
 */
struct ae_res *ae_resolver(const char *name, struct acme_storage *st);

/** Attaches the resolver's client: it gets what etcd holds
 *  (acme_store_merge) and is enabled while this node holds the lock. */
void ae_attach(struct ae_res *r, struct acme *a);

/**
 * Challenge hooks of r's client (acme_hooks semantics): the set functions
 * put the challenge on this node's lease and return 1 (the client is told
 * through acme_challenge_ready once the live nodes acknowledged it, or
 * after AE_ACK_MAX_MS), or -1; the clear functions delete it.
 */
int ae_http01_set(struct ae_res *r, const char *token, const char *key_auth);
void ae_http01_clear(struct ae_res *r, const char *token);
int ae_alpn01_set(struct ae_res *r, const char *domain, const char *cert_pem,
                  const char *key_pem);
void ae_alpn01_clear(struct ae_res *r, const char *domain);

/** 1 while this node holds P/acme/lock (and has read P/acme/ since). */
int ae_ordering(void);

/** Cancels every call and the watch, frees; the lock, the challenges and
 *  the acknowledgements stay on the node lease, which cl_stop revokes.  Call it before
 *  cl_stop, after the clients' acme_free.  Control thread. */
void ae_stop(void);

#endif /* RELAIS_ACME_ETCD_H */
