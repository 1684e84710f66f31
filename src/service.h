/*
 * service — the service tree above the load balancers: weighted services
 * (canary releases), mirroring, failover, and sticky sessions (cookies)
 * on load balancers and weighted services.  Module prefix: svc_.
 *
 * A service of the snapshot is one of four kinds (enum snap_svc_kind).  A
 * loadBalancer is a leaf: servers and a strategy plugin.  The other three
 * name child services, resolved by name once every service of a snapshot
 * is built (svc_link), cycles refused.  For each request the tree is
 * walked from the router's service down to one leaf and one of its
 * servers (svc_pick); the walk honours sticky cookies, skips children
 * with no usable server, chooses the mirrors that get a copy and notes
 * the Set-Cookie headers the response must carry.
 *
 * Thread-safety: parsing and linking on the control thread while the
 * snapshot is built; svc_up and svc_pick on worker threads (counters are
 * atomic, everything else is read-only).
 */
#ifndef RELAIS_SERVICE_H
#define RELAIS_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

struct snapshot;
struct snap_service;
struct snap_cookie;

/** Nesting depth a request's walk follows at most (a deeper tree is
 *  refused when linked). */
#define SVC_MAX_DEPTH 16

/** Set-Cookie headers one response carries at most (one per sticky level
 *  walked). */
#define SVC_MAX_COOKIES 4

/** Mirror services one request feeds at most (further ones are skipped). */
#define SVC_MAX_MIRRORS 8

/** Body bytes a mirrored request keeps for its mirrors when maxBodySize is
 *  -1 (Traefik: unlimited; relais caps every buffer): 16 MiB.  A larger
 *  body is not mirrored, as with a set maxBodySize. */
#define SVC_MIRROR_BODY_MAX (16 * 1024 * 1024)

/** What a walk decided besides the leaf and its server (worker thread;
 *  strings point into the snapshot or the request's arena). */
struct svc_choice {
    const char *cookies[SVC_MAX_COOKIES]; /* "name=value; Path=/..." to
                                             add as Set-Cookie */
    unsigned ncookies;                    /* how many */
    struct snap_service *mirrors[SVC_MAX_MIRRORS]; /* mirror services that
                                             get a copy of this request */
    unsigned nmirrors;                    /* how many */
    int mirror_body;                      /* copy the body to them */
    int64_t mirror_max;                   /* largest body mirrored */
};

/* ---- control thread: building ------------------------------------------ */

/**
 * Reads parent.sticky (parent: a loadBalancer or weighted map) into a new
 * cookie; qname is the service's qualified name (Traefik's generated
 * cookie name derives from it).  *out is NULL when there is no sticky
 * cookie.  0, or -1 after conf_cfg_error on parent's session (or out of
 * memory).
 */
int svc_cookie_parse(const relais_cfg *parent, const char *qname, struct snap_cookie **out);

/** Frees a cookie; NULL is a no-op. */
void svc_cookie_free(struct snap_cookie *c);

/** The 64-bit FNV-1a hash of the NUL-terminated s (sticky values, pool
 *  keys).  Pure. */
uint64_t svc_hash(const char *s);

/** Writes the sticky value of s (lowercase hex of its 64-bit FNV-1a hash,
 *  no padding) into out (17 bytes). */
void svc_sticky_value(const char *s, char out[17]);

/**
 * Reads a weighted / mirroring / failover service (node: the map under
 * that key; kind: enum snap_svc_kind) into sv's children and settings;
 * child names are qualified with provider.  Errors go to node's session.
 * 0, or -1 when out of memory.
 */
int svc_parse(struct snap_service *sv, const relais_cfg *node, int kind, const char *provider);

/** Frees what svc_parse and svc_cookie_parse gave sv (children, order,
 *  cookie). */
void svc_clear(struct snap_service *sv);

/**
 * Resolves the children of every weighted, mirroring and failover service
 * of snap, then disables (logging why, with the origin document) those
 * naming a missing or disabled service, those in a cycle and those nested
 * deeper than SVC_MAX_DEPTH.  Returns how many it disabled.  Control
 * thread, before the routers are built.
 */
size_t svc_link(struct snapshot *snap);

/* ---- worker threads: serving ------------------------------------------- */

/** 1 when s can take a request: a leaf with a server up (weight > 0), a
 *  weighted service with such a child, a failover whose service or
 *  fallback is, a mirroring whose main service is. */
int svc_up(const struct snap_service *s);

/**
 * Walks the tree from s for request r: sticky cookies first (a cookie
 * naming a usable server or child pins it), else weighted round robin
 * over usable children, failover by health, the strategy plugin at the
 * leaf.  Fills *leaf and ch and returns the server index in (*leaf), or
 * -1 when nothing is available (the caller answers 503).  Worker thread.
 */
int svc_pick(relais_req *r, struct snap_service *s, struct snap_service **leaf,
             struct svc_choice *ch);

/** The value of cookie name in r's Cookie headers, or NULL (*len set).
 *  Worker thread. */
const char *svc_req_cookie(relais_req *r, const char *name, size_t *len);

#endif /* RELAIS_SERVICE_H */
