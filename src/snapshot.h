/*
 * snapshot — the compiled, immutable runtime form of the dynamic
 * configuration: routers per entry point, middleware instances, services
 * with their LB instances and servers.  Module prefix: snap_.
 *
 * Built on the control thread from every provider's documents (names
 * namespaced name@provider, merged, validated, compiled); an error is
 * local to its object (a router with a bad rule is disabled and reported,
 * the rest applies).  Published with one atomic pointer store; workers hold
 * references (see worker.c) and the last reference sends the snapshot back
 * to the control thread to be freed there, because plugin instances are
 * destroyed on the control thread.
 *
 * Middleware instances and services (with LB state and server health) are
 * shared with the previous snapshot when their configuration is unchanged.
 */
#ifndef RELAIS_SNAPSHOT_H
#define RELAIS_SNAPSHOT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <relais/plugin.h>

#include "netaddr.h"
#include "rule.h"

struct pl_set;
struct pl_plugin;
struct sc_config;
struct rt_table;
struct ts_conf;
struct ts_hosts;
struct ts_options;
struct tcp_snap;
struct udp_snap;
struct tr_transport;
struct hl_service;
struct al_log;

/** Object states as the API reports them. */
enum snap_status { SNAP_ENABLED = 0, SNAP_WARNING = 1, SNAP_DISABLED = 2 };

/** Services relais answers itself (name@internal), for routers to use. */
enum snap_internal {
    SNAP_INT_NONE = 0,       /* a real service */
    SNAP_INT_PING = 1,       /* ping@internal (ping configured) */
    SNAP_INT_API = 2,        /* api@internal or dashboard@internal (api
                                configured): /api/... and /dashboard/ */
    SNAP_INT_PROMETHEUS = 3, /* prometheus@internal (metrics.prometheus) */
};

/** One server of a service. */
struct snap_server {
    char *url;                    /* as configured */
    struct na_url u;              /* parsed */
    struct sockaddr_storage addr; /* resolved address */
    socklen_t addrlen;            /* its length */
    char *pool_key;               /* "scheme://host:port|transport#serial":
                                     per-worker pools are keyed by it, so
                                     unchanged servers keep their idle
                                     connections and two transports (or
                                     two versions of one) share none */
    uint64_t pool_hash;           /* hash of pool_key */
    uint32_t weight;              /* weight (default 1) */
    int up;                       /* 1 usable (health; atomic) */
    uint32_t inflight;            /* requests in flight (atomic) */
    const struct tr_transport *transport; /* how to connect (the service's,
                                     borrowed) */
    char sticky[17];              /* sticky cookie value: lowercase hex of
                                     FNV-1a-64 of url (Traefik v3's) */
    uint64_t warned_ms;           /* last connection failure logged at
                                     WARN (atomic): at most one a second,
                                     the others at DEBUG */
};

/** The SDK's opaque server set: a service's servers. */
struct relais_servers {
    struct snap_server *v; /* servers */
    size_t n;              /* how many */
};

/** What a service is (the one key under http.services.NAME). */
enum snap_svc_kind {
    SNAP_SVC_LB = 0,        /* loadBalancer: servers and a strategy */
    SNAP_SVC_WEIGHTED = 1,  /* weighted: child services by weight */
    SNAP_SVC_MIRRORING = 2, /* mirroring: a main service and mirrors */
    SNAP_SVC_FAILOVER = 3,  /* failover: service, then fallback */
};

/** A sticky cookie (loadBalancer.sticky.cookie, weighted.sticky.cookie). */
struct snap_cookie {
    char *name;  /* cookie name (sanitized, or Traefik's generated one) */
    char *attrs; /* "; Path=/; Domain=..; Max-Age=..; HttpOnly; Secure;
                    SameSite=.." as sent after name=value */
};

/** A child of a weighted, mirroring or failover service. */
struct snap_child {
    char *name;                /* qualified service name */
    char *where;               /* key path of the name, for errors */
    struct snap_service *svc;  /* resolved in the same snapshot (borrowed;
                                  NULL until linked) */
    uint32_t weight;           /* weighted: its weight */
    uint32_t percent;          /* mirroring: share of requests mirrored */
    char sticky[17];           /* weighted sticky value: hex FNV-1a-64 of
                                  name */
};

/** A service (shared by consecutive snapshots while unchanged). */
struct snap_service {
    int kind;                    /* enum snap_svc_kind */
    char *name;                  /* "name@provider" */
    int refs;                    /* snapshots holding it (atomic) */
    json_t *cfg;                 /* its configuration, for reuse checks */
    struct relais_servers servers; /* loadBalancer.servers */
    const struct pl_plugin *lb;  /* strategy plugin */
    const relais_lb_ops *lb_ops; /* its operations */
    void *lb_inst;               /* the strategy's instance */
    int pass_host_header;        /* passHostHeader (default true) */
    struct tr_transport *transport; /* loadBalancer.serversTransport, or
                                    default@internal (a reference) */
    int status;                  /* enum snap_status */
    char *error;                 /* why disabled, NULL when enabled */
    struct hl_service *health;   /* healthCheck / passiveHealthCheck state
                                    (health.c), or NULL; runs while the
                                    service lives, freed with it */
    struct snap_cookie *sticky;  /* sticky cookie, or NULL */
    int64_t dial_ms;             /* loadBalancer.timeouts.dialTimeout
                                    (0 = the transport's) */
    int64_t resp_header_ms;      /* ...responseHeaderTimeout (0 = the
                                    transport's) */
    /* weighted, mirroring, failover (never shared between snapshots:
       children are pointers into the snapshot that built them) */
    struct snap_child *kids;     /* weighted: the services; mirroring: the
                                    main service then the mirrors;
                                    failover: service, fallback */
    size_t nkids;                /* how many */
    uint16_t *seq;               /* weighted: smooth round-robin order of
                                    kids over one period of the weights */
    size_t nseq;                 /* its length */
    uint64_t rr;                 /* weighted: requests so far (atomic) */
    int mirror_body;             /* mirroring.mirrorBody (default true) */
    int64_t max_body;            /* mirroring.maxBodySize (-1: relais' cap,
                                    SVC_MIRROR_BODY_MAX) */
    uint64_t mirrored_total;     /* mirroring: requests seen (atomic) */
    char *origin;                /* the document that defined it, or NULL */
    int link_mark;               /* svc_link's walk state (control thread) */
    size_t link_height;          /* svc_link: levels of services below */
    uint32_t mt_id;              /* metrics id of name (mt_intern), 0: none */
};

/** A middleware instance (shared while unchanged). */
struct snap_middleware {
    char *name;                      /* "name@provider" */
    char **members;                  /* chain: the qualified names it lists
                                        (no plugin instance), or NULL */
    size_t nmembers;                 /* how many */
    int refs;                        /* snapshots holding it (atomic) */
    json_t *cfg;                     /* its configuration map */
    const struct pl_plugin *plugin;  /* the plugin providing its type */
    const relais_middleware_ops *ops; /* the plugin's operations */
    void *inst;                      /* the plugin's instance */
    int status;                      /* enum snap_status */
    char *error;                     /* why disabled */
};

/** A router. */
struct snap_router {
    char *name;                    /* "name@provider" */
    char *rule_text;               /* rule as written */
    rule_t *rule;                  /* compiled rule */
    int64_t priority;              /* explicit or the rule's length */
    unsigned char *eps;            /* eps[i] = 1 when bound to entry point i */
    struct snap_middleware **mws;  /* chain in the router's order */
    size_t nmws;                   /* chain length */
    struct snap_service *service;  /* target */
    int tls;                       /* TLS on at least one entry point */
    unsigned char *tls_on;         /* tls_on[i] = 1: on entry point i the
                                      router serves TLS connections only
                                      (its tls key, or that entry point's
                                      http.tls when it has none) */
    const struct ts_options *tls_opts; /* its TLS options (default: NULL) */
    char *cert_resolver;           /* tls.certResolver, or NULL */
    json_t *tls_domains;           /* tls.domains (new reference), or NULL */
    int64_t dial_ms;               /* timeouts.dialTimeout (0 = the
                                      service's or transport's) */
    int64_t resp_header_ms;        /* timeouts.responseHeaderTimeout */
    int64_t max_body;              /* maxBodyBytes (relais): request body
                                      cap for this router (413), 0 = the
                                      entry point's http.maxBodyBytes */
    int internal;                  /* enum snap_internal: its service is
                                      one relais answers itself (service
                                      stays NULL) */
    int status;                    /* enum snap_status */
    char *error;                   /* why disabled */
    uint32_t mt_id;                /* metrics id of name (mt_intern), 0: none */
};

/** One snapshot. */
struct snapshot {
    int refs;                       /* references (atomic) */
    uint64_t gen;                   /* generation, increasing */
    struct snap_router *routers;    /* every router, enabled or not */
    size_t nrouters;                /* how many */
    struct snap_service **services; /* every service */
    size_t nservices;               /* how many */
    struct snap_middleware **mws;   /* every middleware */
    size_t nmws;                    /* how many */
    struct rt_table **tables;       /* per entry point (static config order):
                                       routers for plain connections */
    struct rt_table **tls_tables;   /* per entry point: routers for TLS
                                       connections */
    unsigned char *ep_tls;          /* ep_tls[i] = 1 when entry point i has
                                       TLS routers (connections are sniffed) */
    size_t ntables;                 /* = number of entry points */
    struct snap_middleware ***ep_mws; /* per entry point: its
                                       http.middlewares, run before the
                                       router's (NULL when none anywhere) */
    size_t *ep_nmws;                /* their counts */
    char **ep_mw_error;             /* per entry point: why its middlewares
                                       do not resolve (it then serves no
                                       router), or NULL */
    struct ts_conf *tls;            /* certificates and TLS options */
    struct ts_hosts *tls_hosts;     /* host -> TLS options */
    size_t nerrors;                 /* objects disabled */
    struct tcp_snap *tcp;           /* the tcp section (tcp.c), or NULL */
    struct udp_snap *udp;           /* the udp section (udp.c), or NULL */
    json_t *api;                    /* what the API shows of this snapshot
                                       (api.c's api_build; immutable once
                                       published, read by workers), or NULL
                                       when the api is not configured */
    struct tr_transport **transports; /* http.serversTransports, the
                                       default (default@internal) first;
                                       references */
    size_t ntransports;             /* how many */
    struct al_log *alog;            /* the access log current when it was
                                       built (px_alog; a reference), or
                                       NULL: its requests write there */
};

/** One provider's current configuration: its merged tree. */
struct snap_source {
    const char *provider; /* provider name, e.g. "file" */
    json_t *tree;         /* merged dynamic configuration (borrowed) */
    json_t *origins;      /* "section.name" -> source document (borrowed,
                             may be NULL), for error messages */
};

/**
 * Compiles the sources into a new snapshot (refs = 1), sharing unchanged
 * middlewares and services with prev (may be NULL).  Object errors are
 * logged and recorded; this fails (NULL) only when memory runs out.
 * Control thread.
 */
struct snapshot *snap_build(const struct snap_source *src, size_t nsrc,
                            const struct snapshot *prev,
                            const struct sc_config *sc,
                            const struct pl_set *plugins,
                            const relais_host *host);

struct ts_extra_cert;
/** Sets where snap_build finds the certificates resolvers (ACME) hold
 *  (fn returns an array valid until the next call; control thread). */
void snap_set_extra_certs(const struct ts_extra_cert *(*fn)(size_t *n));

/* ---- helpers shared by the http, tcp and udp sections (control thread) */

/** "name@provider" unless name already has a provider (new string, NULL
 *  when out of memory). */
char *snap_qualify(const char *name, const char *provider);

/** The object tree.<top>.<section>, keys matched without case, or NULL. */
json_t *snap_subsection(json_t *tree, const char *top, const char *section);

/** The document that defined top.section.name in src (see
 *  snap_merge_docs), or NULL. */
const char *snap_origin(const struct snap_source *src, const char *top, const char *section,
                        const char *name);

struct conf_session;
/** Logs the errors of session s for object what ("router r@file"),
 *  prefixed with origin when not NULL, and returns them joined by "; "
 *  (malloc'd, NULL when out of memory). */
char *snap_errors(struct conf_session *s, const char *what, const char *origin);

/** Appends p to a growable pointer array.  0 / -1. */
int snap_push(void ***arr, size_t *n, size_t *cap, void *p);

/** Reads a router's entryPoints list into eps[] (1 = bound); when the
 *  list is absent, the default TCP (udp = 0) or UDP (udp = 1) entry
 *  points: those with asDefault, or when none has it all but the one
 *  called "traefik".  A tombstone slot of sc whose name is an entry point
 *  again (it was changed) is bound like that one: requests still arriving
 *  on its draining connections are routed.  A name that does not exist (or is of the other
 *  kind) is a warning while another one is valid, as in Traefik: the
 *  warnings are returned (malloc'd, "; "-joined, NULL when none; the
 *  router then has status warning); no valid entry point at all is an
 *  error in root's session. */
char *snap_read_eps(const relais_cfg *root, const struct sc_config *sc, unsigned char *eps,
                   int udp);

/** Takes a reference.  Any thread. */
void snap_ref(struct snapshot *s);

/** Drops a reference; the last one hands the snapshot to the release hook
 *  (set by the control module) or frees it at once when there is none.
 *  Any thread. */
void snap_unref(struct snapshot *s);

/** Sets where the last reference sends a snapshot (control thread). */
void snap_set_release_hook(void (*hook)(struct snapshot *s));

/** Frees a snapshot now, destroying plugin instances no other snapshot
 *  uses.  Control thread.  NULL is a no-op. */
void snap_free(struct snapshot *s);

/**
 * Merges a provider's documents into one tree (new reference): sections
 * are merged by object name, lists (tls.certificates) are concatenated; a
 * name defined twice keeps the first and logs the conflict.  When origins
 * is not NULL it receives a new object mapping "top.section.name" (and
 * "top.section[i]" for list items) to the source that defined it.
 */
json_t *snap_merge_docs(json_t *const *docs, const char *const *sources,
                        size_t n, const char *provider, json_t **origins);

#endif /* RELAIS_SNAPSHOT_H */
