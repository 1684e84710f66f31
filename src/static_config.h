/*
 * static_config — the static configuration (relais.yaml / relais.json) in
 * Traefik's shape plus relais' own keys.  Module prefix: sc_.
 *
 * Read at start on the control thread.  A version (struct sc_config) is
 * immutable once made and then read from any thread.  The runtime-safe
 * part (log.level, accessLog, entryPoints) can change while relais runs
 * (static_live.c): each change makes a new version with sc_derive.
 *
 * Entry points live in slots shared by every version of the process
 * (SC_MAX_EPS of them): a slot's index never changes and its contents are
 * never rewritten while the process runs, so an index or a pointer to a
 * slot stays valid in any thread (a connection keeps its entry point's
 * configuration).  At start the slots are the entry points sorted by
 * name; a later version keeps the slot of every unchanged entry point,
 * marks removed ones as tombstones (ep_dead) and appends added or changed
 * ones.  Tombstones are never reused: after SC_MAX_EPS slots a change
 * that adds one is refused (a restart starts afresh).
 */
#ifndef RELAIS_STATIC_CONFIG_H
#define RELAIS_STATIC_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h"

/** Entry point slots of one process (see the file comment). */
#define SC_MAX_EPS 64

/** One entry point (listener). */
struct sc_entrypoint {
    char *name;                   /* key under entryPoints */
    json_t *cfg;                  /* its map as configured (own reference):
                                     an entry point whose map is unchanged
                                     keeps its slot at a change */
    char *address;                /* as configured, e.g. ":8080" */
    struct sockaddr_storage addr; /* parsed address */
    socklen_t addrlen;            /* its length */
    int64_t read_timeout_ms;      /* respondingTimeouts.readTimeout: whole
                                     request head + body (0 = none) */
    int64_t write_timeout_ms;     /* respondingTimeouts.writeTimeout (0 = none) */
    int64_t idle_timeout_ms;      /* respondingTimeouts.idleTimeout */
    int64_t head_timeout_ms;      /* relais: time to receive a request head */
    int64_t grace_ms;             /* lifeCycle.graceTimeOut */
    int64_t max_conns;            /* relais: transport.maxConnections: open
                                     client connections on this entry point
                                     (0 = only the global cap); at the cap
                                     the listeners pause and new
                                     connections wait in the backlog */
    int64_t accept_grace_ms;      /* lifeCycle.requestAcceptGraceTimeout:
                                     after SIGTERM, requests are still
                                     accepted this long (ping answers its
                                     terminatingStatusCode) */
    struct na_cidr *trusted;      /* forwardedHeaders.trustedIPs */
    size_t ntrusted;              /* how many */
    int insecure;                 /* forwardedHeaders.insecure */
    size_t max_head;              /* relais: http.maxHeaderBytes (431) */
    size_t max_fields;            /* relais: http.maxHeaderCount (431) */
    size_t max_target;            /* relais: http.maxURILength (414) */
    int64_t max_body;             /* relais: http.maxBodyBytes (413, 0=none) */
    int http_tls;                 /* http.tls set: every router here is TLS */
    char *tls_options;            /* http.tls.options, or NULL */
    char *tls_resolver;           /* http.tls.certResolver, or NULL */
    json_t *tls_domains;          /* http.tls.domains (own reference), or NULL */
    char *redirect_to;            /* http.redirections.entryPoint.to, or NULL */
    char *redirect_scheme;        /* ...scheme (default "https") */
    int redirect_permanent;       /* ...permanent (default true) */
    int redirect_port;            /* the port redirected to (from "to") */
    int udp;                      /* address ends in "/udp": a UDP entry point */
    int as_default;               /* asDefault: routers without entryPoints
                                     use the entry points that say so (all
                                     but "traefik" when none does) */
    int64_t udp_timeout_ms;       /* udp.timeout: idle session lifetime (3s) */
    int pp_enabled;               /* proxyProtocol set: PROXY headers accepted */
    int pp_insecure;              /* proxyProtocol.insecure: from anyone */
    struct na_cidr *pp_trusted;   /* proxyProtocol.trustedIPs */
    size_t npp_trusted;           /* how many */
    uint32_t h2_max_streams;      /* http2.maxConcurrentStreams (250) */
    uint32_t h2_max_resets;       /* relais: http2.maxResetsPerSecond: client
                                     stream resets tolerated per second
                                     (rapid reset), then GOAWAY (200) */
    uint32_t h2_max_control;      /* relais: http2.maxControlFramesPerSecond:
                                     SETTINGS and PING (100) */
    char **mws;                   /* http.middlewares ("name@provider"),
                                     run before every router's */
    size_t nmws;                  /* how many */
};

/** Default transport towards servers (serversTransport in Traefik). */
struct sc_transport {
    int64_t dial_timeout_ms;            /* forwardingTimeouts.dialTimeout */
    int64_t response_header_timeout_ms; /* ...responseHeaderTimeout (0 = none) */
    int64_t idle_conn_timeout_ms;       /* ...idleConnTimeout */
    int max_idle_per_host;              /* maxIdleConnsPerHost (per thread) */
};

struct sc_slots;

/** The whole static configuration (one version of it). */
struct sc_config {
    int refs;                         /* references (atomic): sc_free drops
                                         one, the last frees */
    char *path;                       /* file it was read from ("command
                                         line" when none) */
    char *file;                       /* that file, NULL when none */
    char **overrides;                 /* command-line flags "key.path=value"
                                         applied over the file (copies) */
    size_t noverrides;                /* how many */
    char *plugin_dir_override;        /* --plugin-dir, or NULL */
    json_t *root;                     /* the parsed document (owned) */
    struct sc_entrypoint *eps;        /* entry point slots (SC_MAX_EPS,
                                         shared by every version: see the
                                         file comment); at start sorted by
                                         name */
    size_t neps;                      /* slots in use in this version:
                                         entry points and tombstones */
    uint64_t ep_dead;                 /* bit i: slot i is no entry point of
                                         this version (removed or replaced;
                                         its connections drain) */
    uint64_t ep_new;                  /* bit i: slot i was written by this
                                         version and is not committed yet
                                         (sc_commit) */
    struct sc_slots *slots;           /* owner of eps, or NULL when eps is
                                         the caller's (unit tests) */
    json_t *providers;                /* providers map (borrowed from root) */
    int64_t throttle_ms;              /* providers.providersThrottleDuration */
    int log_level;                    /* log.level */
    int log_format;                   /* log.format */
    char *log_file;                   /* log.filePath, NULL = stderr */
    char *plugin_dir;                 /* plugins.directory */
    char **plugin_load;               /* plugins.load, NULL = every plugin */
    size_t nplugin_load;              /* how many names */
    unsigned workers;                 /* worker threads */
    struct sc_transport transport;    /* serversTransport defaults */
    json_t *resolvers;                /* certificatesResolvers (borrowed), or NULL */
    int64_t max_conns;                /* relais: global.maxConnections, open
                                         client connections in all (default:
                                         half the file descriptor limit) */
    int ping;                         /* ping is configured */
    int ping_ep;                      /* ping.entryPoint's index (-1 with
                                         manualRouting) */
    int ping_manual;                  /* ping.manualRouting: only routers
                                         to ping@internal answer */
    int ping_status;                  /* ping.terminatingStatusCode (503) */
    int api;                          /* api is configured: the services
                                         api@internal and dashboard@internal
                                         exist (routers must use them) */
    int api_insecure;                 /* api.insecure: /api and /dashboard
                                         answered on entry point traefik
                                         without any router */
    int api_dashboard;                /* api.dashboard (default true) */
    int api_debug;                    /* api.debug (accepted, no effect) */
    int api_ep;                       /* the traefik entry point's index
                                         with insecure, else -1 */
    int prom;                         /* metrics.prometheus is configured:
                                         prometheus@internal exists */
    int prom_ep;                      /* metrics.prometheus.entryPoint's
                                         index (-1 with manualRouting) */
    int prom_manual;                  /* metrics.prometheus.manualRouting */
    char *traefik_ep_made;            /* the address of the entry point
                                         "traefik" relais created because
                                         api.insecure, ping or metrics use
                                         it and none was defined, or NULL */
};

/**
 * Reads and validates the file (path NULL: an empty document), after
 * applying overrides[0..n): Traefik-style flags "key.path=value" (keys
 * matched without regard to case, missing maps created, the value typed
 * like a YAML scalar; no "=value" means true).  Returns the config, or
 * NULL after printing every error ("FILE: key.path: reason") to the log.
 */
struct sc_config *sc_load(const char *path, const char *plugin_dir_override,
                          const char *const *overrides, size_t n);

/** Drops a reference (the last frees the version; slots it wrote and
 *  did not commit are cleared); NULL is a no-op.  Control thread. */
void sc_free(struct sc_config *c);

/** Takes a reference; returns c. */
struct sc_config *sc_ref(struct sc_config *c);

/**
 * Reads doc (taken over) as the next version of prev: every key is read
 * and checked as sc_load does, the entry points are placed in prev's
 * slots (unchanged ones keep theirs, new or changed ones get new slots,
 * written but not committed), workers and the command line come from
 * prev.  No info or warning line is logged.  Returns the version, or NULL
 * with err set to "who: key.path: reason" (several joined by "; ").
 * Control thread.
 */
struct sc_config *sc_derive(const struct sc_config *prev, json_t *doc, const char *who,
                            char *err, size_t errlen);

/** Validates doc (borrowed) alone, as sc_load would, without side effect.
 *  0, or -1 with err set as sc_derive does. */
int sc_check_doc(json_t *doc, const char *who, char *err, size_t errlen);

/** Makes the slots c wrote part of the process (after which no other
 *  version derived from c's predecessor may be committed).  Control
 *  thread. */
void sc_commit(struct sc_config *c);

/** Reads c's file again with c's command-line flags applied (a new
 *  document), or NULL with err set to "FILE:LINE:COL: reason". */
json_t *sc_reload_doc(const struct sc_config *c, char *err, size_t errlen);

/** The certificatesResolvers.NAME map, or NULL when there is none. */
json_t *sc_resolver(const struct sc_config *c, const char *name);

/** Index of the entry point called name in this version (tombstones
 *  skipped), or -1. */
int sc_entrypoint_index(const struct sc_config *c, const char *name);

/** 1 when slot i is an entry point of version c (not a tombstone). */
static inline int sc_ep_live(const struct sc_config *c, size_t i)
{
    return i < c->neps && !(i < 64 && (c->ep_dead >> i & 1));
}

/** Fills idx with the slots of c's entry points sorted by name; returns
 *  how many (at most SC_MAX_EPS). */
size_t sc_ep_sorted(const struct sc_config *c, int *idx);

#endif /* RELAIS_STATIC_CONFIG_H */
