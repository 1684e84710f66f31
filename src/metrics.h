/*
 * metrics — Traefik's Prometheus metrics under the relais_ prefix, and the
 * request totals the API's live statistics read.  Module prefix: mt_.
 *
 * Families (Traefik v3's names, traefik_ -> relais_):
 *   relais_config_reloads_total, relais_config_last_reload_success,
 *   relais_open_connections{entrypoint,protocol},
 *   relais_tls_certs_not_after{cn,serial,sans},
 *   relais_{entrypoint,router,service}_requests_total,
 *   ..._request_duration_seconds (histogram), ..._requests_bytes_total,
 *   ..._responses_bytes_total {code,method,protocol} plus entrypoint /
 *   router+service / service, relais_service_retries_total{service},
 *   relais_service_server_up{service,url}; relais' own
 *   relais_config_reloads_failure_total and
 *   relais_metrics_series_dropped_total.
 *
 * Hot path: each worker thread writes only its own cells (single writer,
 * relaxed atomic stores, no lock, no shared read-modify-write); the scraper
 * sums every worker's cells at render time.  Routers and services are keyed
 * by a small integer id interned on the control thread when a snapshot is
 * built (snap_router.mt_id, snap_service.mt_id), so a request hashes no
 * string.  A cell is keyed by (family, id, service id, code, method,
 * protocol); cells live in per-worker append-only chunks whose count is
 * published with a release store, so the scraper iterates while the worker
 * appends.  At most maxSeries cells per worker: the excess is counted in
 * relais_metrics_series_dropped_total.
 *
 * Routers and services that left the configuration are no longer exported
 * (their cells stay, bounded by maxSeries, and count again if the name
 * comes back).  Counting is always on: the API's statistics read it too.
 *
 * Thread-safety: mt_configure, mt_start, mt_stop, mt_intern, mt_reload on
 * the control thread; mt_request / mt_observe / mt_udp_session on worker
 * thread `worker` only; mt_render and mt_stats from any thread.
 */
#ifndef RELAIS_METRICS_H
#define RELAIS_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

struct sc_config;
struct relais_req;

/** Default cap on the series (cells) of one worker (metrics.prometheus.
 *  maxSeries, relais). */
#define MT_DEFAULT_MAX_SERIES 10000
/** Most histogram buckets. */
#define MT_MAX_BUCKETS 32
/** Most names interned per kind (routers, services); ids fit 20 bits. */
#define MT_MAX_NAMES 65536

/** What an interned name is. */
enum mt_kind { MT_ROUTER = 0, MT_SERVICE = 1 };

/** Request protocols (Traefik's protocol label). */
enum mt_proto {
    MT_PROTO_HTTP = 0,      /* "http" */
    MT_PROTO_WEBSOCKET = 1, /* "websocket": an Upgrade: websocket request */
    MT_PROTO_SSE = 2,       /* "sse": Accept: text/event-stream */
    MT_PROTO_GRPC = 3,      /* "grpc": Content-Type application/grpc */
    MT_PROTO_GRPC_WEB = 4,  /* "grpc-web": application/grpc-web */
    MT_NPROTO = 5
};

/** One finished exchange, as mt_observe counts it. */
struct mt_obs {
    int ep;              /* entry point index (< sc->neps), -1: none */
    uint32_t router;     /* router id (mt_intern), 0: none */
    uint32_t service;    /* service id, 0: none */
    int status;          /* response status (1..999) */
    int method;          /* mt_method_index */
    int proto;           /* enum mt_proto */
    uint64_t dur_us;     /* duration, µs */
    uint64_t req_bytes;  /* request body bytes */
    uint64_t resp_bytes; /* response body bytes */
    unsigned retries;    /* retry attempts */
};

/**
 * Reads the static `metrics` map (node may be NULL: defaults):
 * metrics.prometheus.buckets, addEntryPointsLabels, addRoutersLabels,
 * addServicesLabels, maxSeries (relais).  entryPoint and manualRouting
 * are the endpoint's (static_config.c) and accepted here.  0, or -1 with
 * the errors recorded in node's session (key paths).  Control thread,
 * before mt_start.
 */
int mt_configure(const relais_cfg *node);

/** 1 when metrics.prometheus was configured (mt_configure). */
int mt_prometheus_enabled(void);

/**
 * Allocates the per-worker storage for nworkers workers of sc (kept, read
 * at render for the entry point names).  0 / -1 (out of memory).  Control
 * thread, before the workers start.
 */
int mt_start(const struct sc_config *sc, unsigned nworkers);

/** Frees the per-worker storage and the name registry, and resets the
 *  configuration to the defaults.  Control thread, after the workers
 *  stopped (or never started). */
void mt_stop(void);

/** The static configuration changed at run time (static_live.c): entry
 *  points are named and listed from sc from now on.  The previous
 *  version must stay readable until every worker applied the change
 *  (a scrape runs on a worker).  No-op before mt_start.  Control
 *  thread. */
void mt_set_static(const struct sc_config *sc);

/** The id of name (1..MT_MAX_NAMES-1), the same for the same name for
 *  the life of the process; 0 when the registry is full or memory ran
 *  out (that object is then not counted per name).  Control thread. */
uint32_t mt_intern(int kind, const char *name);

/** A configuration was applied (ok = 1: reloads_total + 1, last success
 *  = now) or a provider's document was rejected (ok = 0).  Control
 *  thread. */
void mt_reload(int ok);

/** The index of a method for the method label: the standard methods
 *  (RFC 9110 and PATCH) have their own; any other counts as "OTHER",
 *  which keeps the label space bounded. */
int mt_method_index(const char *m, size_t len);

/** Counts one exchange on worker `worker`.  Worker thread. */
void mt_observe(unsigned worker, const struct mt_obs *o);

/** Counts a finished exchange of proxy.c (no response status: not
 *  counted).  Worker thread r->w. */
void mt_request(const struct relais_req *r);

/** A UDP session of entry point ep opened (delta 1) or ended (-1) on
 *  worker `worker`.  Worker thread. */
void mt_udp_session(unsigned worker, int ep, int delta);

/** The text exposition format 0.0.4 of every family (malloc'd, length in
 *  *len), or NULL when out of memory.  Any thread. */
char *mt_render(size_t *len);

/** {"entryPoints": {name: {"requests": N, "openConnections": N}},
 *   "routers": {name: {"requests": N, "errors": N}}, "services": {...}}
 *  (errors: status >= 500; totals over workers, codes and methods; only
 *  objects of the current configuration).  New reference, NULL when out
 *  of memory.  Any thread. */
json_t *mt_stats(void);

#endif /* RELAIS_METRICS_H */
