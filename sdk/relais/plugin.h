/*
 * relais plugin SDK — the one boundary between the relais host and its
 * plugins (providers, middlewares, load-balancing strategies).
 *
 * A plugin is a shared object that exports one symbol, RELAIS_PLUGIN_SYMBOL,
 * a `relais_plugin` descriptor.  Only plain C types and opaque handles cross
 * this boundary: no libevent, OpenSSL, PCRE2 or jansson type appears here,
 * and the host binary exports no symbol a plugin could link against.  All
 * host services reach the plugin through the `relais_host` function table.
 *
 * ABI policy (see the changelog at the bottom):
 *  - the first four fields of `relais_plugin` (magic, abi_major, abi_minor,
 *    size) never change;
 *  - structs and enums are append-only; appending bumps RELAIS_ABI_MINOR
 *    (fill operation tables with designated initializers, .create = ...,
 *    so that a field appended later is zero in an older plugin's source);
 *    anything else (removal, reordering, changed meaning) bumps
 *    RELAIS_ABI_MAJOR and resets the minor;
 *  - the host loads a plugin when magic matches, major == host major,
 *    minor <= host minor and the descriptor is at least as large as the
 *    first version of it; otherwise it refuses that plugin with a message
 *    naming the file and both version pairs, and goes on without it;
 *  - a plugin built against a newer minor may test for a host function with
 *    RELAIS_HOST_HAS(host, field) before calling it.
 *
 * Threading contract:
 *  - descriptor `load`/`unload`, every `create` and `destroy`, and all
 *    provider operations run on the control thread;
 *  - middleware `on_request`/`on_response` and LB `pick`/`report` run on any
 *    worker thread, concurrently for one instance: state shared between
 *    requests is the plugin's to guard (see relais/atomic.h);
 *  - a relais_req belongs to the worker thread that runs it: use it only from
 *    a callback that received it, or from a timer created on that thread.
 */
#ifndef RELAIS_PLUGIN_H
#define RELAIS_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** "RPLG": first field of every descriptor. */
#define RELAIS_PLUGIN_MAGIC 0x52504c47u
/** ABI version this header describes. */
#define RELAIS_ABI_MAJOR 1
#define RELAIS_ABI_MINOR 5
/** Name of the one symbol a plugin exports. */
#define RELAIS_PLUGIN_SYMBOL "relais_plugin_descriptor"

/** Visibility for the exported descriptor (plugins build with hidden default). */
#if defined(__GNUC__)
#define RELAIS_EXPORT __attribute__((visibility("default")))
#define RELAIS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RELAIS_EXPORT
#define RELAIS_PRINTF(f, a)
#endif

/* ---- opaque handles ---------------------------------------------------- */

typedef struct relais_host relais_host;           /* host function table */
typedef struct relais_cfg relais_cfg;             /* configuration node */
typedef struct relais_req relais_req;             /* one request/response exchange */
typedef struct relais_hdrs relais_hdrs;           /* a header list */
typedef struct relais_servers relais_servers;     /* the servers of an LB */
typedef struct relais_provider relais_provider;   /* a running provider */
typedef struct relais_timer relais_timer;         /* a one-shot timer */
typedef struct relais_watch relais_watch;         /* a file-descriptor watch */
typedef struct relais_http_call relais_http_call; /* an HTTP request in flight
                                                     (ABI 1.1) */

/* ---- enums (append-only) ----------------------------------------------- */

/** What a plugin provides. */
enum relais_kind {
    RELAIS_KIND_PROVIDER = 1,   /* publishes dynamic configuration */
    RELAIS_KIND_MIDDLEWARE = 2, /* acts on requests and responses */
    RELAIS_KIND_LB = 3          /* picks a server for a request */
};

/** Log levels. */
enum relais_log_level {
    RELAIS_LOG_ERROR = 0,
    RELAIS_LOG_WARN = 1,
    RELAIS_LOG_INFO = 2,
    RELAIS_LOG_DEBUG = 3
};

/** What a middleware callback tells the host. */
enum relais_verdict {
    RELAIS_NEXT = 0,    /* go on with the next middleware / the service */
    RELAIS_DONE = 1,    /* the middleware answered (host->respond) */
    RELAIS_SUSPEND = 2, /* the middleware will call host->req_resume later */
    RELAIS_ERROR = -1   /* internal failure: the host answers 500 */
};

/** Type of a configuration node. */
enum relais_cfg_type {
    RELAIS_CFG_ABSENT = 0, /* no such node */
    RELAIS_CFG_NULL = 1,
    RELAIS_CFG_BOOL = 2,
    RELAIS_CFG_INT = 3,
    RELAIS_CFG_REAL = 4,
    RELAIS_CFG_STRING = 5,
    RELAIS_CFG_LIST = 6,
    RELAIS_CFG_MAP = 7
};

/** Result of a typed configuration accessor. */
enum relais_cfg_rc {
    RELAIS_CFG_OK = 0,      /* value stored in *out */
    RELAIS_CFG_MISSING = 1, /* key absent (or null): *out untouched */
    RELAIS_CFG_INVALID = -1 /* wrong type or format: an error naming the
                               key path was recorded, *out untouched */
};

/** Format of a published document. */
enum relais_doc_format {
    RELAIS_DOC_AUTO = 0, /* from the source name's extension, else YAML */
    RELAIS_DOC_YAML = 1,
    RELAIS_DOC_JSON = 2
};

/** Outcome reported to an LB strategy. */
enum relais_outcome {
    RELAIS_OUTCOME_OK = 0,      /* a response head arrived */
    RELAIS_OUTCOME_FAILED = 1,  /* connect or protocol failure */
    RELAIS_OUTCOME_TIMEOUT = 2  /* no response in time */
};

/** fd watch events. */
enum relais_watch_events {
    RELAIS_WATCH_READ = 1,
    RELAIS_WATCH_WRITE = 2
};

/* ---- plain data crossing the boundary ---------------------------------- */

/** One document a provider publishes (a file, an HTTP body, ...). */
typedef struct relais_doc {
    const char *source; /* name used in messages: a path, a URL, a key */
    const char *data;   /* the document's bytes (need not be NUL-terminated) */
    size_t len;         /* number of bytes in data */
    int format;         /* enum relais_doc_format */
} relais_doc;

/** One key and value a provider publishes from a key/value source
 *  (ABI 1.1). */
typedef struct relais_kv {
    const char *key;   /* e.g. "traefik/http/routers/r1/rule" */
    const char *value; /* its value */
} relais_kv;

/** One header of a locally generated response. */
typedef struct relais_header {
    const char *name;  /* NUL-terminated header name */
    const char *value; /* NUL-terminated header value */
} relais_header;

/** An HTTP request made through host->http_request (ABI 1.1). */
typedef struct relais_http_req {
    uint32_t size;               /* sizeof(relais_http_req) as compiled */
    const char *method;          /* "GET", "POST", ... */
    const char *url;             /* "http://127.0.0.1:2379/v3/kv/range";
                                    with unix_socket set, the host part
                                    only names the Host header */
    const char *unix_socket;     /* connect to this unix socket instead of
                                    the URL's host and port; may be NULL */
    const relais_header *headers; /* extra request headers */
    size_t nheaders;             /* how many */
    const char *body;            /* request body, may be NULL */
    size_t body_len;             /* its length (Content-Length is set) */
    uint64_t timeout_ms;         /* the whole exchange; 0 = none (streams) */
    /* -- ABI 1.2: TLS for https:// URLs (Traefik's tls block) -- */
    const char *tls_ca;          /* trusted CAs: a PEM file path or PEM
                                    text; NULL = the system's store */
    const char *tls_cert;        /* client certificate (file or PEM), or NULL */
    const char *tls_key;         /* its private key (file or PEM), or NULL */
    int tls_insecure;            /* 1 = the server's certificate is not
                                    verified (insecureSkipVerify) */
} relais_http_req;

/** What the host calls back with, on the thread that made the request
 *  (ABI 1.1). */
typedef struct relais_http_callbacks {
    uint32_t size; /* sizeof(relais_http_callbacks) as compiled */
    /** The response head; headers are valid during the call only.  May be
     *  NULL. */
    void (*on_response)(void *arg, int status, relais_hdrs *headers);
    /** A piece of the decoded body (chunked framing removed).  May be
     *  NULL. */
    void (*on_data)(void *arg, const char *data, size_t len);
    /** The end, exactly once: error 0 when the whole response arrived,
     *  else -1 with a message (refused, timeout, broken response).  The
     *  call is freed after it returns. */
    void (*on_done)(void *arg, int error, const char *message);
} relais_http_callbacks;

/* ---- kind-specific operation tables ------------------------------------ */

/**
 * Middleware operations.  One instance per configured middleware
 * (`http.middlewares.NAME`), shared by every router that lists it.
 */
typedef struct relais_middleware_ops {
    uint32_t size; /* sizeof(relais_middleware_ops) as the plugin compiled it */
    /** Control thread.  cfg is the map under the plugin's config key.
     *  Returns 0 and sets *inst, or -1 after reporting errors with
     *  host->cfg_error (the middleware and its routers are then disabled). */
    int (*create)(const relais_host *host, const relais_cfg *cfg,
                  const char *name, void **inst);
    /** Control thread, once no request uses the instance any more. */
    void (*destroy)(void *inst);
    /** Worker thread.  ctx is a per-request slot for this middleware
     *  (NULL at first; memory from host->req_alloc lives as long as req).
     *  Returns an enum relais_verdict. */
    int (*on_request)(void *inst, relais_req *req, void **ctx);
    /** Worker thread, may be NULL.  The response head is reachable through
     *  host->resp_headers / resp_status.  Returns RELAIS_NEXT or
     *  RELAIS_ERROR. */
    int (*on_response)(void *inst, relais_req *req, void **ctx);
    /** Worker thread, may be NULL (ABI 1.4).  Called only for requests on
     *  which this middleware called host->resp_body_filter from
     *  on_response: each piece of the response body, in order, as it
     *  streams (data valid during the call only), then once with last = 1
     *  (len may be 0).  What the client (or the next outer middleware)
     *  gets is what the filter writes with host->resp_body_write: any
     *  amount, at any call.  Returns RELAIS_NEXT, or RELAIS_ERROR to cut
     *  the response (its head is already sent). */
    int (*on_response_body)(void *inst, relais_req *req, void **ctx, const char *data,
                            size_t len, int last);
    /** Worker thread, may be NULL (ABI 1.5).  Called only for requests on
     *  which this middleware called host->req_body_filter from on_request:
     *  each piece of the request body (payload bytes, framing removed), in
     *  order, as it streams from the client, then once with last = 1 (len
     *  may be 0; the request's trailers are complete then).  What the
     *  server (or the next inner middleware) gets is what the filter
     *  writes with host->req_body_write.  Returns RELAIS_NEXT, or
     *  RELAIS_ERROR to abort the exchange (400 when nothing was answered
     *  yet, else the connection is cut). */
    int (*on_request_body)(void *inst, relais_req *req, void **ctx, const char *data,
                           size_t len, int last);
} relais_middleware_ops;

/**
 * Load-balancing strategy operations.  One instance per service.
 */
typedef struct relais_lb_ops {
    uint32_t size; /* sizeof(relais_lb_ops) as the plugin compiled it */
    /** Control thread.  cfg is the service's loadBalancer map; servers is
     *  valid for the instance's whole life.  0 or -1 (after cfg_error). */
    int (*create)(const relais_host *host, const relais_cfg *cfg,
                  const relais_servers *servers, void **inst);
    /** Control thread. */
    void (*destroy)(void *inst);
    /** Worker thread: the index of the server to use, or -1 when none is
     *  available (the host answers 503). */
    int (*pick)(void *inst, const relais_servers *servers, relais_req *req);
    /** Worker thread, may be NULL: what happened to a picked server. */
    void (*report)(void *inst, const relais_servers *servers, int server,
                   int outcome, uint64_t latency_us);
} relais_lb_ops;

/**
 * Provider operations.  One instance per configured provider
 * (`providers.NAME`); all calls on the control thread.
 */
typedef struct relais_provider_ops {
    uint32_t size; /* sizeof(relais_provider_ops) as the plugin compiled it */
    /** Validate options and prepare; nothing is watched yet.  0, or -1
     *  after host->cfg_error. */
    int (*create)(const relais_host *host, const relais_cfg *cfg,
                  relais_provider *prov, void **inst);
    /** Begin publishing (timers, watches).  May publish synchronously.
     *  0, or -1 (logged; the provider is dropped). */
    int (*start)(void *inst);
    /** Read the source once and publish synchronously (used by --check).
     *  May be NULL when the provider cannot.  0, or -1. */
    int (*load_once)(void *inst);
    /** Re-read the source (SIGHUP).  May be NULL. */
    void (*reload)(void *inst);
    /** Stop watching; publish nothing afterwards. */
    void (*stop)(void *inst);
    /** Free the instance. */
    void (*destroy)(void *inst);
} relais_provider_ops;

/* ---- the descriptor ---------------------------------------------------- */

/** The one exported symbol of a plugin (RELAIS_PLUGIN_SYMBOL). */
typedef struct relais_plugin {
    uint32_t magic;       /* RELAIS_PLUGIN_MAGIC, forever first */
    uint16_t abi_major;   /* RELAIS_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* RELAIS_ABI_MINOR the plugin was built with */
    uint32_t size;        /* sizeof(relais_plugin) as the plugin compiled it */
    uint32_t kind;        /* enum relais_kind */
    const char *name;     /* unique plugin name, e.g. "stripprefix" */
    const char *version;  /* the plugin's own version string */
    const char *config_key; /* key it answers to: "stripPrefix", "wrr", "file" */
    const char *description; /* one line for --list-plugins, may be NULL */
    /** Control thread, once, after the checks passed.  May be NULL.
     *  Non-zero refuses the plugin. */
    int (*load)(const relais_host *host);
    /** Control thread, once at exit.  May be NULL. */
    void (*unload)(void);
    /** relais_provider_ops / relais_middleware_ops / relais_lb_ops. */
    const void *ops;
} relais_plugin;

/** Fills the fixed head of a descriptor. */
#define RELAIS_PLUGIN_HEAD                                                    \
    RELAIS_PLUGIN_MAGIC, RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR,                  \
        (uint32_t)sizeof(relais_plugin)

/** Declares the exported descriptor:
 *  RELAIS_PLUGIN_DECLARE = { RELAIS_PLUGIN_HEAD, RELAIS_KIND_LB, ... }; */
#define RELAIS_PLUGIN_DECLARE                                                 \
    RELAIS_EXPORT const relais_plugin relais_plugin_descriptor

/* ---- the host function table ------------------------------------------- */

/**
 * Everything the host offers.  Passed to `load` and every `create`; valid
 * until `unload`.  Strings returned by accessors are not NUL-terminated
 * unless stated; they stay valid until the next change of the same object
 * or the end of the callback, whichever is first.
 */
struct relais_host {
    uint32_t size;      /* sizeof(relais_host) in the host */
    uint16_t abi_major; /* the host's RELAIS_ABI_MAJOR */
    uint16_t abi_minor; /* the host's RELAIS_ABI_MINOR */

    /* -- logging -- */
    /** Any thread.  who names the plugin or instance. */
    void (*log)(int level, const char *who, const char *fmt, ...)
        RELAIS_PRINTF(3, 4);

    /* -- configuration nodes (valid during the create call that got them;
     *    copy what you keep) -- */
    /** enum relais_cfg_type of node (RELAIS_CFG_ABSENT for NULL). */
    int (*cfg_type)(const relais_cfg *node);
    /** Child of a map by key (case-insensitive), or NULL. */
    const relais_cfg *(*cfg_get)(const relais_cfg *node, const char *key);
    /** Number of items of a list or entries of a map, else 0. */
    size_t (*cfg_len)(const relais_cfg *node);
    /** i-th list item, or i-th map value with *key set to its key
     *  (key may be NULL).  NULL when out of range. */
    const relais_cfg *(*cfg_at)(const relais_cfg *node, size_t i,
                                const char **key);
    /** Typed reads of node.key (key NULL reads node itself).  Scalars are
     *  converted the way Traefik reads labels: "42" is an int, "true" a
     *  bool.  Return enum relais_cfg_rc; NUL-terminated strings. */
    int (*cfg_string)(const relais_cfg *node, const char *key,
                      const char **out);
    int (*cfg_int)(const relais_cfg *node, const char *key, int64_t *out);
    int (*cfg_bool)(const relais_cfg *node, const char *key, int *out);
    int (*cfg_real)(const relais_cfg *node, const char *key, double *out);
    /** Durations as Traefik writes them ("1m30s", "250ms") or a number of
     *  seconds; result in milliseconds. */
    int (*cfg_duration)(const relais_cfg *node, const char *key,
                        int64_t *out_ms);
    /** Records an error at node.key (key may be NULL) that the host reports
     *  with the full key path. */
    void (*cfg_error)(const relais_cfg *node, const char *key,
                      const char *fmt, ...) RELAIS_PRINTF(3, 4);

    /* -- the request (worker thread) -- */
    /** Method, e.g. "GET". */
    const char *(*req_method)(relais_req *req, size_t *len);
    /** "http" or "https". */
    const char *(*req_scheme)(relais_req *req, size_t *len);
    /** Authority (host[:port]) as the client sent it. */
    const char *(*req_authority)(relais_req *req, size_t *len);
    /** Path, without the query, as sent (not decoded). */
    const char *(*req_path)(relais_req *req, size_t *len);
    /** Query without '?', or NULL when there is none. */
    const char *(*req_query)(relais_req *req, size_t *len);
    /** Replace the path / the query (NULL removes it) sent upstream.
     *  0, or -1 when too long. */
    int (*req_set_path)(relais_req *req, const char *path, size_t len);
    int (*req_set_query)(relais_req *req, const char *query, size_t len);
    /** Request headers (hop-by-hop ones already removed). */
    relais_hdrs *(*req_headers)(relais_req *req);
    /** Client address as text ("192.0.2.1", "2001:db8::1") and port. */
    const char *(*req_client_ip)(relais_req *req);
    int (*req_client_port)(relais_req *req);
    /** 1 when the client connection is TLS. */
    int (*req_is_tls)(relais_req *req);
    /** Names of the entry point, router and service (NUL-terminated;
     *  router/service NULL before routing). */
    const char *(*req_entrypoint)(relais_req *req);
    const char *(*req_router)(relais_req *req);
    const char *(*req_service)(relais_req *req);
    /** Memory that lives as long as req; NULL when the request's memory cap
     *  is reached. */
    void *(*req_alloc)(relais_req *req, size_t size);
    /** Answer locally: status, extra headers, body (copied).  The
     *  middleware then returns RELAIS_DONE (or, when suspended, calls
     *  req_resume(req, RELAIS_DONE)).  0, or -1. */
    int (*respond)(relais_req *req, int status, const relais_header *headers,
                   size_t nheaders, const char *body, size_t len);
    /** Ends a RELAIS_SUSPEND: verdict as on_request would have returned.
     *  Worker thread of req only. */
    void (*req_resume)(relais_req *req, int verdict);

    /* -- the response (in on_response) -- */
    /** Status of the response, 0 when none yet. */
    int (*resp_status)(relais_req *req);
    /** Replace the status sent to the client. */
    void (*resp_set_status)(relais_req *req, int status);
    /** Response headers, NULL when no response head exists yet. */
    relais_hdrs *(*resp_headers)(relais_req *req);

    /* -- header lists (names case-insensitive) -- */
    size_t (*hdr_count)(relais_hdrs *h);
    /** i-th header; 0, or -1 out of range. */
    int (*hdr_at)(relais_hdrs *h, size_t i, const char **name, size_t *nlen,
                  const char **value, size_t *vlen);
    /** Value of the idx-th header called name, or NULL. */
    const char *(*hdr_get)(relais_hdrs *h, const char *name, size_t idx,
                           size_t *vlen);
    /** Remove every header called name, then add one (copied).  0 or -1. */
    int (*hdr_set)(relais_hdrs *h, const char *name, const char *value,
                   size_t vlen);
    /** Append one header (copied).  0 or -1. */
    int (*hdr_add)(relais_hdrs *h, const char *name, const char *value,
                   size_t vlen);
    /** Remove every header called name; returns how many. */
    size_t (*hdr_del)(relais_hdrs *h, const char *name);

    /* -- servers of an LB (any thread) -- */
    size_t (*servers_count)(const relais_servers *s);
    /** Weight (>= 0; 0 means never picked unless alone). */
    uint32_t (*server_weight)(const relais_servers *s, size_t i);
    /** 1 when the core considers the server usable (health). */
    int (*server_up)(const relais_servers *s, size_t i);
    /** The server's URL as configured (NUL-terminated), a stable key. */
    const char *(*server_url)(const relais_servers *s, size_t i);
    /** Requests in flight to the server, all worker threads summed. */
    uint32_t (*server_inflight)(const relais_servers *s, size_t i);

    /* -- providers (control thread) -- */
    /** Replace everything this provider published with docs (merged in
     *  order).  0 when accepted; -1 when a document does not parse: the
     *  reason (source, line, column) is logged and the provider's previous
     *  configuration stays in force. */
    int (*provider_publish)(relais_provider *prov, const relais_doc *docs,
                            size_t ndocs);
    /** The provider's name as configured ("file", "docker.remote"). */
    const char *(*provider_name)(relais_provider *prov);

    /* -- time, timers, fd watches -- */
    /** Monotonic milliseconds, cached once per event-loop turn. */
    uint64_t (*now_ms)(void);
    /** New one-shot timer on the calling thread's event loop. */
    relais_timer *(*timer_new)(void (*cb)(void *arg), void *arg);
    /** (Re)arms the timer; 0 or -1. */
    int (*timer_start)(relais_timer *t, uint64_t ms);
    void (*timer_stop)(relais_timer *t);
    /** Stops and frees; NULL is a no-op. */
    void (*timer_free)(relais_timer *t);
    /** Watches fd (events: RELAIS_WATCH_*) on the calling thread's loop
     *  until freed; cb gets the events that fired. */
    relais_watch *(*watch_new)(int fd, int events,
                               void (*cb)(int fd, int events, void *arg),
                               void *arg);
    void (*watch_free)(relais_watch *w);

    /* -- threads -- */
    /** Index of the calling worker thread (0..thread_count()-1), or
     *  thread_count() on the control thread. */
    unsigned (*thread_index)(void);
    /** Number of worker threads. */
    unsigned (*thread_count)(void);

    /* -- ABI 1.1: asynchronous HTTP client -- */
    /** Starts a request on the calling thread's event loop (one
     *  connection per request).  NULL, with no callback, when the request
     *  is invalid (bad URL, unsupported scheme); otherwise on_done follows
     *  exactly once unless http_cancel comes first (a TLS setup problem,
     *  such as an unreadable CA file, arrives there as an error).  Since
     *  ABI 1.2, https:// URLs are served, with the request's tls_ fields. */
    relais_http_call *(*http_request)(const relais_http_req *req,
                                      const relais_http_callbacks *cb,
                                      void *arg);
    /** Cancels a request: no callback follows.  Allowed inside its own
     *  callbacks.  NULL is a no-op. */
    void (*http_cancel)(relais_http_call *call);

    /* -- ABI 1.1: key/value sources -- */
    /** Replaces everything this provider published with the configuration
     *  that the pairs describe in Traefik's layout: sep '/' for KV stores
     *  ("ROOT/http/routers/r1/rule"), '.' for container labels
     *  ("ROOT.http.routers.r1.rule", comma lists for list fields); root is
     *  the key prefix ("traefik"), pairs outside it are ignored.  0, or -1
     *  when the pairs do not decode (logged with the key; the previous
     *  configuration stays). */
    int (*provider_publish_kv)(relais_provider *prov, const relais_kv *pairs,
                               size_t n, int sep, const char *root);

    /* -- ABI 1.3: the client's TLS certificate -- */
    /** The certificate chain the client presented, element idx (0 = its
     *  certificate, then the intermediates it sent), as DER bytes valid as
     *  long as req; NULL with *len = 0 on a plain connection, without a
     *  client certificate, or past the end.  Worker thread. */
    const unsigned char *(*req_tls_peer_cert)(relais_req *req, size_t idx, size_t *len);

    /* -- ABI 1.4: response body filters (compress, ...) -- */
    /** From on_response: this middleware will transform the body (its
     *  on_response_body is called).  The host drops Content-Length and
     *  frames the body itself (chunked for HTTP/1.1).  0, or -1 when the
     *  middleware has no on_response_body or the response has no body
     *  (HEAD, 1xx, 204, 304). */
    int (*resp_body_filter)(relais_req *req);
    /** From on_response_body: passes bytes on towards the client.  0 / -1. */
    int (*resp_body_write)(relais_req *req, const char *data, size_t len);
    /** Sets the request's authority ("host[:port]"): the Host header it is
     *  forwarded with (when the service passes the host header) and what
     *  req_authority returns afterwards.  0, or -1 for an invalid value.
     *  (Also since 1.4: req_set_path accepts an empty path, which reads
     *  back empty and is sent as "/".) */
    int (*req_set_authority)(relais_req *req, const char *authority, size_t len);
    /** Calls cb(arg) once when the exchange ends, whatever the reason
     *  (answered, failed, client gone, relais stopping), on the request's
     *  worker thread, before its memory is released; the last one
     *  registered runs first.  At most 16 per request.  For state a
     *  middleware must release (a counter of requests in flight, an
     *  encoder).  0 / -1. */
    int (*req_on_end)(relais_req *req, void (*cb)(void *arg), void *arg);

    /* -- ABI 1.5: trailers and request body filters (gRPC, gRPC-Web) -- */
    /** The response's trailer fields (HTTP/2 trailers, e.g. gRPC's
     *  grpc-status and grpc-message), never NULL during the exchange.
     *  Empty until the server's body has ended: complete in the last
     *  on_response_body call, where a filter may read, change or delete
     *  them; what remains then is sent to the client when its protocol
     *  can carry trailers (HTTP/2, or a chunked HTTP/1.1 response) and
     *  dropped otherwise. */
    relais_hdrs *(*resp_trailers)(relais_req *req);
    /** The request's trailer fields (from an HTTP/2 client), never NULL
     *  during the exchange; complete when the request body has ended (the
     *  last on_request_body call).  Forwarded to HTTP/2 servers. */
    relais_hdrs *(*req_trailers)(relais_req *req);
    /** From on_request: this middleware will transform the request body
     *  (its on_request_body is called).  The host drops the request's
     *  Content-Length and frames the body itself towards the server
     *  (chunked for HTTP/1.1 servers, DATA frames for HTTP/2 ones).  0, or
     *  -1 when the middleware has no on_request_body or the request has no
     *  body (nothing to filter: on_request_body is never called then). */
    int (*req_body_filter)(relais_req *req);
    /** From on_request_body: passes bytes on towards the server (or the
     *  next inner filter).  0 / -1. */
    int (*req_body_write)(relais_req *req, const char *data, size_t len);
};

/** True when the host's table contains `field` (a plugin built against a
 *  newer minor can test before calling). */
#define RELAIS_HOST_HAS(host, field)                                          \
    ((host)->size >= offsetof(relais_host, field) + sizeof((host)->field) &&  \
     (host)->field != NULL)

/** True when the host implements at least ABI maj.min (for behaviour that
 *  a minor version added without a new field, e.g. https:// in 1.2). */
#define RELAIS_HOST_ABI_AT_LEAST(host, maj, min)                              \
    ((host)->abi_major == (maj) && (host)->abi_minor >= (min))

/*
 * ABI changelog (newest last).  Every change to a struct or enum above is
 * listed here with the version it introduced.
 *
 * 1.0  First stable ABI: relais_plugin descriptor, relais_host table,
 *      provider, middleware and lb operation tables.
 * 1.1  Asynchronous HTTP client: relais_http_call, relais_http_req,
 *      relais_http_callbacks; relais_host.http_request, http_cancel.
 *      Key/value sources: relais_kv; relais_host.provider_publish_kv.
 * 1.2  relais_http_req: tls_ca, tls_cert, tls_key, tls_insecure (the host
 *      client speaks https://); RELAIS_HOST_ABI_AT_LEAST.
 * 1.3  relais_host.req_tls_peer_cert (passTLSClientCert and other
 *      client-certificate middlewares).
 * 1.4  relais_middleware_ops.on_response_body; relais_host.resp_body_filter,
 *      resp_body_write (streaming response body transformation),
 *      req_set_authority, req_on_end; req_set_path accepts an empty path.
 * 1.5  relais_middleware_ops.on_request_body; relais_host.resp_trailers,
 *      req_trailers, req_body_filter, req_body_write (gRPC-Web and other
 *      protocol bridges); hop-by-hop removal keeps "te: trailers".
 */

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_PLUGIN_H */
