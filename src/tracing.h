/*
 * tracing — OpenTelemetry tracing (Traefik v3's `tracing` section),
 * exported as OTLP/HTTP JSON.  Module prefix: trc_.
 *
 * Spans: one SERVER span per request ("EntryPoint": entry point, router,
 * service, method, path, status...) and one CLIENT span per forward to a
 * server ("ReverseProxy", child of the SERVER span); the CLIENT span's id
 * is the parent-id of the W3C traceparent sent to the server.  A request
 * answered by relais itself (404, ping, 503 no server) has the SERVER
 * span only.  Status ERROR: SERVER spans for 5xx; CLIENT spans for 4xx,
 * 5xx or no response (OpenTelemetry's HTTP conventions, as Traefik).
 *
 * Propagation (W3C Trace Context): a valid incoming traceparent is the
 * parent (its tracestate is forwarded unchanged and recorded); an invalid
 * one is ignored (and its tracestate dropped).  Sampling is parent-based:
 * the incoming sampled flag is followed either way; a new trace is
 * sampled when its id falls under sampleRate (OpenTelemetry's
 * TraceIdRatioBased over the id's last 8 bytes).  An unsampled request is
 * still given ids, and the server still receives a traceparent (flags 00)
 * carrying the same trace id, as OpenTelemetry's SDK does; nothing of it
 * is exported.
 *
 * Configuration (static, the tracing map): serviceName (default "relais"),
 * sampleRate (0..1, default 1), resourceAttributes (also the older
 * globalAttributes), capturedRequestHeaders, capturedResponseHeaders,
 * safeQueryParams (other query values are REDACTED in url.query / url.full),
 * addInternals (accepted; relais traces its own answers anyway),
 * otlp.http {endpoint (default http://localhost:4318/v1/traces), headers,
 * tls {ca, cert, key, insecureSkipVerify}}; otlp.grpc is refused.  relais
 * caps: queueSize (spans queued per worker, default 2048), batchSize
 * (spans per export, default 512), flushInterval (default 5s), exportTimeout
 * (default 10s), maxRetries (default 4, backoff from 200 ms doubling).
 *
 * Threading: the request path never blocks nor takes a shared lock: a
 * finished span is encoded to JSON on its worker into that worker's own
 * single-producer single-consumer ring; a full ring drops the span and
 * counts it.  One exporter thread batches the rings' spans into an
 * ExportTraceServiceRequest and POSTs it (its own event loop and the
 * host's HTTP client, https included), retrying a failed export a bounded
 * number of times; one batch at most is held.  Drops are logged at most
 * once a second.  trc_new / trc_flush / trc_free on the control thread;
 * trc_submit and the request hooks on worker thread `worker` only.
 */
#ifndef RELAIS_TRACING_H
#define RELAIS_TRACING_H

#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

#include "message.h"

/** Longest encoded span; a longer one is dropped and counted. */
#define TRC_SPAN_MAX (32u * 1024u)

/** Span kinds (OTLP's SpanKind numbers). */
enum trc_kind { TRC_KIND_INTERNAL = 1, TRC_KIND_SERVER = 2, TRC_KIND_CLIENT = 3 };

/** One span attribute: a string (s != NULL) or an integer. */
struct trc_attr {
    const char *key; /* attribute name */
    const char *s;   /* string value, or NULL for an integer */
    size_t n;        /* its length */
    int64_t i;       /* the integer when s is NULL */
    int query;       /* 0: plain; k > 0: s[k-1..n) is a query whose
                        values not in safeQueryParams are REDACTED */
};

/** A finished span, everything borrowed for the duration of the call. */
struct trc_span {
    uint8_t trace_id[16];         /* trace id */
    uint8_t span_id[8];           /* this span's id */
    uint8_t parent_id[8];         /* parent span id; all zero: a root */
    const char *trace_state;      /* W3C tracestate, or NULL */
    size_t trace_state_len;       /* its length */
    const char *name;             /* span name */
    int kind;                     /* enum trc_kind */
    int64_t start_ns;             /* start, ns since the epoch */
    int64_t end_ns;               /* end, ns since the epoch */
    int error;                    /* status ERROR (else unset) */
    const struct trc_attr *attrs; /* attributes */
    size_t nattrs;                /* how many */
    const struct msg_hdr *req_hdrs;  /* request headers (captured ones
                                        become http.request.header.*) */
    size_t n_req_hdrs;               /* how many */
    const struct msg_hdr *resp_hdrs; /* response headers (likewise
                                        http.response.header.*) */
    size_t n_resp_hdrs;              /* how many */
};

/** A W3C trace context (parsed or to send). */
struct trc_ctx {
    uint8_t trace_id[16]; /* trace id */
    uint8_t span_id[8];   /* parent-id field */
    uint8_t flags;        /* trace-flags (bit 0: sampled) */
};

/** Per-request state (the request's arena), NULL when tracing is off. */
struct trc_req {
    uint8_t trace_id[16];     /* the trace */
    uint8_t parent_id[8];     /* the incoming parent, all zero when none */
    uint8_t server_id[8];     /* the SERVER span */
    uint8_t client_id[8];     /* the open CLIENT span */
    int sampled;              /* exported */
    int client_open;          /* a CLIENT span runs */
    int64_t start_ns;         /* SERVER span start, ns since the epoch */
    int64_t client_start_ns;  /* CLIENT span start */
    const void *client_server; /* the server of the open CLIENT span
                                  (struct snap_server) */
    const char *trace_state;  /* incoming tracestate (valid parent only) */
    size_t trace_state_len;   /* its length */
};

/** A tracer (opaque). */
struct trc_tracer;

/** The tracer the workers use, or NULL: set by the control thread before
 *  the workers start and cleared after they stopped. */
extern struct trc_tracer *trc_active;

/**
 * Parses a traceparent value (W3C Trace Context level 1): version 00 is
 * exactly 55 characters; a higher version (not ff) may be longer if the
 * 56th character is '-'; lowercase hex only; all-zero trace or parent ids
 * are invalid.  0 with *out filled, or -1.
 */
int trc_parse_traceparent(const char *s, size_t len, struct trc_ctx *out);

/** Writes "00-<trace>-<parent>-<flags>" (55 bytes, no NUL) into out. */
void trc_format_traceparent(const struct trc_ctx *c, char out[55]);

/** 1 when a new trace with this id is sampled under ratio (0..1). */
int trc_ratio_sampled(const uint8_t trace_id[16], double ratio);

/**
 * Reads the tracing node (a map, null or true for all defaults) for
 * nworkers workers and starts the exporter.  0 with *out set, or -1 with
 * the errors reported on node by key path ("tracing.sampleRate: expected
 * a number from 0 to 1").  check: validate only, no thread (--check).
 */
int trc_new(const relais_cfg *node, unsigned nworkers, int check, struct trc_tracer **out);

/** Sends what is queued (bounded by about two seconds), stops, frees;
 *  NULL is a no-op. */
void trc_free(struct trc_tracer *t);

/** Exports everything queued before the call (one attempt per batch plus
 *  its retries); returns once done.  For tests. */
void trc_flush(struct trc_tracer *t);

/** Tests: while held the exporter takes nothing from the rings. */
void trc_hold(struct trc_tracer *t, int on);

/** Sample rate configured. */
double trc_sample_rate(const struct trc_tracer *t);

/** Fills n random bytes from worker `worker`'s generator (worker thread
 *  only; never all zero for n >= 8). */
void trc_random(struct trc_tracer *t, unsigned worker, uint8_t *out, size_t n);

/**
 * Encodes span s as one OTLP JSON span object into buf[0..cap).  Returns
 * the length, or 0 when it does not fit.
 */
size_t trc_encode_span(const struct trc_tracer *t, const struct trc_span *s, char *buf,
                       size_t cap);

/** Hot path, worker thread `worker`: encodes s into that worker's ring.
 *  Never blocks; a span that does not fit is dropped and counted. */
void trc_submit(struct trc_tracer *t, unsigned worker, const struct trc_span *s);

/** Spans dropped: queues full or too long. */
uint64_t trc_dropped_queue(const struct trc_tracer *t);

/** Spans dropped: exports that failed for good. */
uint64_t trc_dropped_export(const struct trc_tracer *t);

/** Spans exported (acknowledged with a 2xx). */
uint64_t trc_exported(const struct trc_tracer *t);

/* ---- the request hooks (proxy.c), worker thread ---------------------- */

struct relais_req;

/** Request head parsed (headers complete): reads traceparent / tracestate,
 *  decides sampling, sets r->trc.  No-op when tracing is off. */
void trc_req_start(struct relais_req *r);

/** The request is about to go to r->server (before the connection is
 *  taken or made): ends a previous CLIENT span (a retry), starts one, and
 *  sets the traceparent header of r's request headers to it. */
void trc_req_forward(struct relais_req *r);

/** The exchange ends: submits the CLIENT and SERVER spans (sampled). */
void trc_req_end(struct relais_req *r);

#endif /* RELAIS_TRACING_H */
