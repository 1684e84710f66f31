/*
 * static_config — the static configuration (relais.yaml / relais.json) in
 * Traefik's shape plus relais' own keys.  Module prefix: sc_.
 *
 * Read once at start on the control thread; immutable afterwards and then
 * read from any thread.
 */
#ifndef RELAIS_STATIC_CONFIG_H
#define RELAIS_STATIC_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netaddr.h"

/** One entry point (listener). */
struct sc_entrypoint {
    char *name;                   /* key under entryPoints */
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
    json_t *tls_domains;          /* http.tls.domains (borrowed), or NULL */
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

/** The whole static configuration. */
struct sc_config {
    char *path;                       /* file it was read from */
    json_t *root;                     /* the parsed document (owned) */
    struct sc_entrypoint *eps;        /* entry points, sorted by name */
    size_t neps;                      /* how many */
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

/** Frees; NULL is a no-op. */
void sc_free(struct sc_config *c);

/** The certificatesResolvers.NAME map, or NULL when there is none. */
json_t *sc_resolver(const struct sc_config *c, const char *name);

/** Index of the entry point called name, or -1. */
int sc_entrypoint_index(const struct sc_config *c, const char *name);

#endif /* RELAIS_STATIC_CONFIG_H */
