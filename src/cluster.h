/*
 * cluster — cluster mode on etcd: several relais nodes share one dynamic
 * configuration, one set of certificates and the runtime part of the
 * static configuration through an etcd prefix.  Module prefix: cl_.
 *
 * Static configuration (relais.yaml):
 *
 *   cluster:
 *     role: controller | proxy      required
 *     nodeName: NAME                default: the host name ([A-Za-z0-9._-],
 *                                   1..63 characters)
 *     prefix: relais                etcd key prefix P (no trailing '/')
 *     leaseTTL: 10s                 node and leader leases (2s..3600s): a
 *                                   dead leader is replaced within about
 *                                   this long
 *     etcd:                         the etcd cluster (Traefik's etcd
 *       endpoints: [host:port, ...] provider option names)
 *       username: ...               optional
 *       password: ...
 *       tls: {ca, cert, key, insecureSkipVerify}
 *       timeout: 5s                 per endpoint attempt
 *
 * Roles: a *controller* runs the providers of its static configuration as
 * a single node does and serves the result itself; the controllers elect
 * one leader on an etcd lease and only the leader publishes.  A *proxy*
 * runs no provider (those in its file are ignored with a warning): it
 * reads the prefix, watches it, and keeps serving the last configuration
 * it applied while etcd is unreachable.
 *
 * Layout under P (the contract with relaisctl; JSON values are UTF-8):
 *
 *   P/leader             the leading controller's node name (text), on its
 *                        lease.  Campaign: a txn creating the key only if
 *                        absent; a controller that lost watches it and
 *                        campaigns again when it is deleted or expires.
 *   P/config/<provider>  one provider's configuration as the leader's
 *                        provider published it: one JSON document in
 *                        Traefik's dynamic schema (http, tcp, udp, tls),
 *                        object names without "@provider"; file paths of
 *                        certificates and users files replaced by their
 *                        contents so that every node can use them.
 *                        Written only by the leader, all changed keys and
 *                        P/generation in one txn whose compare is that
 *                        P/leader still has the leader's create revision
 *                        (a deposed leader cannot write).
 *   P/generation         decimal counter, +1 per published change.
 *   P/apply/<name>       documents written by `relaisctl apply` (dynamic
 *                        schema, JSON), served by every node as provider
 *                        <name> (objects are "x@<name>").  Name collision:
 *                        a controller's provider keeps its name, so the
 *                        document is refused (node's lastError) while
 *                        P/config/<name> exists, and on a controller also
 *                        while that controller runs a provider <name>;
 *                        checked whenever either key changes: the
 *                        document is withdrawn when P/config/<name>
 *                        appears and served again when it goes.
 *   P/certs/<name>       certificates written by `relaisctl certs import`:
 *                        {"certificate": "PEM chain", "key": "PEM key"};
 *                        every node serves them (default store), as
 *                        tls.certificates of provider "cluster".
 *   P/static             runtime static options: a JSON object with only
 *                        log, accessLog and entryPoints (static_live.h);
 *                        absent = the file alone.
 *   P/nodes/<name>       each node's status on its own lease (JSON):
 *                        {"name", "role", "version", "leader": bool,
 *                         "started": unix s, "revision": etcd revision of
 *                         the configuration applied, "generation",
 *                         "routers", "services", "api": "host:port" or
 *                         null, "lastError": text or null,
 *                         "lastErrorTime": unix s or null, "updated"}.
 *   P/acme/...           ACME account, certificates, challenges and the
 *                        ordering lock (resolvers.c, acme_etcd.h), and
 *                        P/acme/acks/<kind>/<id>/<node>: each node's
 *                        acknowledgement, on its lease, that it answers
 *                        challenge P/acme/challenges/<kind>/<id>; the
 *                        ordering node tells the CA to validate once every
 *                        node listed under P/nodes/ acknowledged (at most
 *                        AE_ACK_MAX_MS later).
 *
 * Proxies apply every change of one etcd revision together (a txn is one
 * revision, so a half-published change is never served).
 *
 * Thread: everything here runs on the control thread.
 */
#ifndef RELAIS_CLUSTER_H
#define RELAIS_CLUSTER_H
#include <jansson.h>
#include <stdint.h>

struct event_base;
struct sc_config;
struct etc_client;

/** Node roles. */
enum cl_role {
    CL_NONE = 0,       /* no cluster section: a single node */
    CL_CONTROLLER = 1, /* runs providers, may lead and publish */
    CL_PROXY = 2       /* reads etcd only */
};

/** A source of configuration seen by the control thread: the cluster
 *  module calls it with a provider name and that provider's tree (owned
 *  by the callee; NULL = the provider is gone).  Control thread. */
typedef void (*cl_source_cb)(const char *provider, json_t *tree);

/**
 * Reads the cluster section of sc (NULL section: cluster mode off, 0).
 * Every error is logged as "FILE: cluster.key: reason"; returns -1 then.
 * Also used by --check.  Control thread, before cl_start.
 */
int cl_configure(const struct sc_config *sc);

/** The configured role (CL_NONE outside cluster mode). */
enum cl_role cl_role(void);

/**
 * Starts cluster mode on base: the etcd client, the node lease and status,
 * the leader campaign (controller) and the watch of the prefix.  source
 * receives the documents read from etcd (P/config/... on proxies, P/apply/...
 * and the certificates of P/certs/... on every node).  0, or -1 after
 * logging (only for local failures: an unreachable etcd is retried in the
 * background).  Control thread.
 */
int cl_start(struct event_base *base, cl_source_cb source);

/** Declares one of this controller's providers (before cl_start): the
 *  leader never deletes P/config/<provider> of a declared provider that
 *  has not published yet (a provider slow to start after a takeover must
 *  not empty the proxies), only of providers it does not run. */
void cl_provider_declare(const char *provider);

/**
 * A controller's provider published tree (borrowed; NULL = gone): the
 * leader puts it under P/config/<provider> (coalesced, one txn per burst).
 * No-op on proxies and outside cluster mode.  Control thread.
 */
void cl_provider_changed(const char *provider, const json_t *tree);

/** 1 once the prefix was read (always 1 outside cluster mode): a proxy
 *  is ready only then.  Control thread. */
int cl_ready(void);

/** Records the configuration now served (for P/nodes/<name>): counts and
 *  the last error (NULL = none).  Control thread. */
void cl_report(size_t routers, size_t services, const char *last_error);

/** Stops: revokes the node lease (the leader key goes with it, so another
 *  controller takes over at once) within a short bound, frees.  Control
 *  thread. */
void cl_stop(void);

/* For other core modules (resolvers.c, static_live.c): */

/** The shared etcd client, or NULL outside cluster mode. */
struct etc_client *cl_etcd(void);
/** The key prefix P ("relais"). */
const char *cl_prefix(void);
/** This node's name. */
const char *cl_node_name(void);
/** This node's lease id, 0 while none is granted. */
int64_t cl_lease(void);
/** 1 while this node is the leading controller. */
int cl_is_leader(void);
/** Registers cb, called on the control thread whenever this node gains
 *  (leader = 1) or loses (0) the leadership. */
void cl_on_leader(void (*cb)(int leader, void *arg), void *arg);
/** Registers cb for P/static: called with the document (borrowed; NULL
 *  when the key is absent) at start and on every change. */
void cl_on_static(void (*cb)(const json_t *doc, void *arg), void *arg);

#endif /* RELAIS_CLUSTER_H */
