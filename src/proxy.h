/*
 * proxy — client connections and the request exchange: HTTP/1.1 on the
 * client side, routing, the middleware chain, load balancing and
 * forwarding to a server with both bodies streamed under back-pressure.
 * Module prefix: px_.
 *
 * struct relais_req (the SDK's request) is the exchange; it carries no
 * HTTP/1.1-specific field that a plugin could see, so an HTTP/2 stream can
 * produce the same shape.  Thread-safety: everything here runs on the
 * worker thread that accepted the connection.
 */
#ifndef RELAIS_PROXY_H
#define RELAIS_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include <relais/plugin.h>

#include "http1.h"
#include "message.h"

struct worker;
struct arena;
struct px_conn;
struct up_conn;
struct wk_snapref;
struct snap_middleware;
struct snapshot;
struct snap_router;
struct snap_service;
struct snap_server;
struct event;
struct trc_req;

/** The exchange (the SDK's opaque relais_req). */
struct relais_req {
    struct px_conn *conn;          /* client connection; NULL once it died
                                      while a middleware was suspended */
    struct worker *w;              /* owning worker */
    struct arena *arena;           /* per-request memory */
    struct wk_snapref *sref;       /* snapshot reference held */
    struct snapshot *snap;         /* = sref->snap */
    int ep;                        /* entry point index */
    const char *ep_name;           /* entry point name */
    char client_ip[48];            /* client address text */
    int client_port;               /* client port */
    void *tls;                     /* the client connection's SSL (borrowed;
                                      NULL on plain connections), for
                                      req_is_tls and req_tls_peer_cert */
    /* request model (version-independent) */
    const char *method;  size_t method_len;   /* method */
    const char *scheme;  size_t scheme_len;   /* "http" / "https" */
    const char *authority; size_t authority_len; /* Host / :authority */
    const char *host;    size_t host_len;     /* authority without port */
    const char *path;    size_t path_len;     /* path without query */
    const char *query;   size_t query_len;    /* query or NULL */
    struct relais_hdrs req_hdrs;  /* request headers, hop-by-hop removed */
    int version;                  /* client HTTP version: 10, 11 (20 later) */
    int is_head;                  /* HEAD request: no response body */
    int want_upgrade;             /* Connection: upgrade + Upgrade */
    const char *upgrade; size_t upgrade_len; /* Upgrade value */
    int client_close;             /* client wants the connection closed */
    int expect_continue;          /* Expect: 100-continue */
    int gate_wait;                /* waiting for body bytes to validate */
    int gate_passed;              /* the body gate let the request through */
    int tunnel_shut;              /* client EOF in a tunnel: half-close the
                                     server side once flushed */
    /* request body framing (as received) */
    int req_chunked;              /* chunked body */
    int req_h2_raw;               /* HTTP/2 body of unknown length: the
                                     client's bytes are chunked here */
    int64_t req_left;             /* Content-Length bytes still to read */
    int req_body_done;            /* whole body read from the client */
    uint64_t req_body_bytes;      /* payload bytes read */
    struct h1_chunk req_chunk;    /* chunked decoder state */
    /* routing and chain */
    struct snap_router *router;   /* matched router */
    struct snap_service *service; /* its service */
    struct snap_server *server;   /* picked server */
    int server_idx;               /* its index */
    struct snap_middleware **chain; /* the middlewares that apply: the entry
                                       point's, then the router's (chains
                                       expanded) */
    size_t nchain;                /* how many */
    size_t mw_pos;                /* middlewares whose on_request ran */
    void **mw_ctx;                /* per-middleware request slots */
    int mw_cur;                   /* middleware whose on_response runs, -1 */
    unsigned char *mw_filter;     /* mw_filter[i] = 1: middleware i filters
                                     the response body (arena), or NULL */
    int filter_cur;               /* middleware whose on_response_body runs,
                                     -1 when none */
    int filtering;                /* some middleware filters the body */
    int filter_failed;            /* a filter failed: the response is cut */
    int resp_has_body;            /* the response carries a body */
    struct px_endcb *endcb;       /* req_on_end callbacks (arena), or NULL */
    unsigned nendcb;              /* how many */
    int suspended;                /* a middleware suspended the chain */
    int aborted;                  /* the client is gone */
    /* response */
    int status;                   /* response status, 0 before */
    struct relais_hdrs resp_hdrs; /* response headers */
    int has_resp;                 /* resp_hdrs valid */
    int local;                    /* answered by relais or a middleware */
    int internal_answer;          /* answered by an internal service (ping,
                                     api, prometheus): not in metrics */
    const char *local_body; size_t local_body_len; /* local response body */
    int resp_started;             /* head sent to the client */
    int resp_head_ended;          /* the server's HTTP/2 head ended its
                                     stream (Trailers-Only): an HTTP/2
                                     client gets it the same way */
    size_t head_alone;            /* the client's output held only the
                                     response head when it was queued:
                                     its length (0 otherwise), so that a
                                     server failing before any body byte
                                     can still be answered 502 */
    size_t body_out;              /* response body bytes queued for the
                                     client */
    /* trailers (ABI 1.5), empty lists until used (trailers_init) */
    struct relais_hdrs req_trailers;  /* the client's (HTTP/2) */
    struct relais_hdrs resp_trailers; /* the server's */
    unsigned char trailers_init;  /* bit 1: req_trailers ready, 2: resp */
    int te_trailers;              /* the client sent "TE: trailers" */
    /* request body filters (ABI 1.5) */
    unsigned char *mw_rfilter;    /* mw_rfilter[i] = 1: middleware i filters
                                     the request body (arena), or NULL */
    int rfilter_cur;              /* middleware whose on_request_body runs,
                                     -1 when none */
    int req_filtering;            /* some middleware filters the body */
    int rfilter_failed;           /* a request filter failed */
    /* upstream */
    struct up_conn *up;           /* server connection */
    int up_h2;                    /* it is an HTTP/2 stream (h2up.c) */
    int up_chunked;               /* the request body goes chunked to an
                                     HTTP/1.1 server */
    unsigned up_interim;          /* 100 Continue heads relayed (HTTP/2
                                     server) */
    int up_state;                 /* enum px_up_state */
    int resp_chunked;             /* server body chunked */
    int resp_close_delim;         /* server body ends at close */
    int64_t resp_left;            /* server Content-Length left */
    struct h1_chunk resp_chunk;   /* decoder of the server body */
    int client_chunked;           /* body re-encoded chunked to client */
    int up_reusable;              /* server connection may be pooled */
    int retried;                  /* already retried once */
    int resp_timer_armed;         /* response-header timeout started */
    int up_paused;                /* server reads paused (back-pressure) */
    int client_paused;            /* client reads paused (back-pressure) */
    uint64_t start_ms;            /* when the head was complete */
    uint64_t up_start_ms;         /* when sent upstream */
    /* service tree (service.c) */
    const char **set_cookies;     /* sticky Set-Cookie values to add to the
                                     server's response (arena), or NULL */
    unsigned nset_cookies;        /* how many */
    struct px_mirror *mirror;     /* copies for mirror services (heap), or
                                     NULL */
    int origin_status;            /* the server's status, 0 when none */
    int64_t start_ns;             /* wall clock at the head (access log
                                     only, else 0) */
    struct trc_req *trc;          /* tracing state (arena), NULL when
                                     tracing is off */
    /* waiting for a server at its maxConnsPerHost */
    struct snap_server *queued;   /* the server waited for, or NULL */
    uint64_t queue_deadline_ms;   /* when the wait ends with 504 */
    struct relais_req *wq_next;   /* the worker's queue links */
    struct relais_req *wq_prev;
};

/** host->req_set_authority (ABI 1.4): the Host the request goes upstream
 *  with (when the service passes the host header) and its host part for
 *  later middlewares.  0 / -1 (bad characters). */
int px_api_set_authority(relais_req *r, const char *authority, size_t len);

/** One req_on_end registration. */
struct px_endcb {
    void (*cb)(void *arg); /* called once when the exchange ends */
    void *arg;             /* its argument */
};

/** host->req_on_end (ABI 1.4).  0 / -1 (more than PX_MAX_ENDCB). */
int px_api_on_end(relais_req *r, void (*cb)(void *arg), void *arg);

/** host->resp_body_filter / resp_body_write (ABI 1.4).  0 / -1. */
int px_api_body_filter(relais_req *r);
int px_api_body_write(relais_req *r, const char *data, size_t len);

struct al_log;
/** The current access log (accesslog.c), or NULL: control thread only.
 *  Each snapshot holds a reference to the one current when it was built
 *  (snapshot.c) and a request writes to its snapshot's: a request keeps
 *  the log it started with when the log changes (static_live.c). */
extern struct al_log *px_alog;

/** Accepts a client connection on entry point ep.  Worker thread. */
void px_accept(struct worker *w, int ep, evutil_socket_t fd,
               const struct sockaddr *sa, int salen);

/** Graceful stop: idle connections close now, busy ones after their
 *  response.  Worker thread. */
void px_shutdown(struct worker *w);

/** Closes every connection now.  Worker thread. */
void px_close_all(struct worker *w);

/** Graceful stop of the connections of entry point slot ep only (it was
 *  removed; wk_draining says so to the exchanges): HTTP/2 ones get a
 *  GOAWAY, idle ones close after a short linger, busy ones after their
 *  response.  Worker thread. */
void px_drain(struct worker *w, int ep);

/** Closes the connections of entry point slot ep now.  Worker thread. */
void px_close_ep(struct worker *w, int ep);

/** SDK entry points implemented here (host_api.c fills the table). */
int px_api_respond(relais_req *req, int status, const relais_header *headers,
                   size_t nheaders, const char *body, size_t len);
void px_api_resume(relais_req *req, int verdict);

/** Like px_api_respond with a malloc'd body whose ownership passes to
 *  the request (freed when it ends, also on failure: -1). */
int px_respond_heap(relais_req *req, int status, const relais_header *headers,
                    size_t nheaders, char *body, size_t len);

/** The Prometheus exposition (metrics.c's mt_render: malloc'd text,
 *  length in *len), or NULL before metrics are set up: then
 *  prometheus@internal answers 503.  Set before the workers start. */
extern char *(*px_prom_render)(size_t *len);
int px_api_set_path(relais_req *req, const char *path, size_t len);
/** host->resp_trailers, req_trailers, req_body_filter, req_body_write
 *  (ABI 1.5). */
relais_hdrs *px_api_resp_trailers(relais_req *req);
relais_hdrs *px_api_req_trailers(relais_req *req);
int px_api_req_body_filter(relais_req *req);
int px_api_req_body_write(relais_req *req, const char *data, size_t len);
int px_api_set_query(relais_req *req, const char *query, size_t len);

#endif /* RELAIS_PROXY_H */
