/*
 * accesslog — the access log (Traefik's accessLog section): one line per
 * finished exchange, in the common log format or as one JSON object per
 * line with Traefik's field names.  Module prefix: al_.
 *
 * Configuration (static, the accessLog map): filePath (absent: standard
 * output), format (common | json), bufferingSize (lines kept before a
 * write), filters (statusCodes "200" / "300-302", retryAttempts,
 * minDuration; a line is kept when ANY configured filter matches),
 * fields (defaultMode and names: keep | drop | redact per field;
 * headers.defaultMode (default drop) and headers.names per header),
 * addInternals (read and exposed, the caller decides).
 *
 * Off the hot path: al_write formats the line on the calling worker into
 * that worker's own single-producer single-consumer ring (AL_RING_BYTES);
 * no lock, no syscall, no allocation.  When the ring is full the line is
 * dropped and counted (al_dropped): a slow disk never blocks a worker.
 * One writer thread drains every ring with writev(2) in batches
 * (bufferingSize lines, or whatever is there after at most
 * AL_FLUSH_MS), and reopens the file on al_reopen (logrotate).
 *
 * Thread-safety: al_new, al_reopen, al_flush, al_ref, al_free on the
 * control thread; al_write on worker thread `worker` only (one producer
 * per ring); al_dropped from any thread.  A log is reference-counted:
 * each snapshot holds one (its requests write there), so a log replaced
 * at run time is closed once the last request that used it ended.
 */
#ifndef RELAIS_ACCESSLOG_H
#define RELAIS_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

#include "message.h"

/** Bytes of one worker's ring (a power of two). */
#define AL_RING_BYTES (1u << 20)

/** Longest line; a longer one is dropped and counted. */
#define AL_LINE_MAX (64u * 1024u)

/** The writer is never more than this many ms behind a queued line. */
#define AL_FLUSH_MS 100

/**
 * One finished exchange, everything borrowed for the duration of al_write.
 * Strings are NUL-terminated unless a length is given; NULL means absent.
 */
struct al_record {
    const char *client_ip;     /* client address text, no port ("::1") */
    int client_port;           /* client port (0: unknown) */
    const char *username;      /* authenticated user, or NULL */
    int64_t start_ns;          /* start, ns since the epoch (UTC) */
    int64_t duration_ns;       /* whole exchange, ns */
    int64_t origin_duration_ns;/* time spent on the origin, ns */
    const char *method;        /* request method */
    size_t method_len;         /* its length */
    const char *path;          /* path without the query */
    size_t path_len;           /* its length */
    const char *query;         /* query without '?', or NULL */
    size_t query_len;          /* its length */
    const char *protocol;      /* "HTTP/1.1" */
    const char *authority;     /* Host header (host[:port]), or NULL */
    size_t authority_len;      /* its length */
    const char *entry_point;   /* entry point name, or NULL */
    const char *router;        /* router name ("r1@file"), or NULL */
    const char *service;       /* service name, or NULL */
    const char *service_url;   /* server URL ("http://10.0.0.2:80"), or NULL */
    int status;                /* status sent to the client */
    int origin_status;         /* status from the origin, 0 when none */
    uint64_t content_size;     /* response body bytes sent to the client */
    uint64_t origin_content_size; /* response body bytes from the origin */
    uint64_t request_content_size; /* request body bytes from the client */
    unsigned retry_attempts;   /* retries made */
    uint64_t request_count;    /* global request counter value */
    const char *tls_version;   /* "1.3", or NULL on plain connections */
    const char *tls_cipher;    /* cipher name, or NULL */
    const char *tls_client_subject; /* client certificate subject, or NULL */
    const struct msg_hdr *req_headers;    /* request headers */
    size_t n_req_headers;                 /* how many */
    const struct msg_hdr *origin_headers; /* origin response headers */
    size_t n_origin_headers;              /* how many */
    const struct msg_hdr *down_headers;   /* headers sent to the client */
    size_t n_down_headers;                /* how many */
};

/** An access log (opaque). */
struct al_log;

/**
 * Reads the accessLog map `node` (a map, or null for all defaults) for
 * nworkers workers (worker indexes 0..nworkers-1), opens the file
 * (O_APPEND|O_CREAT, 0640) and starts the writer thread.
 * Returns 0 with *out set, or -1 with the errors reported on node by key
 * path (conf_cfg_error: "accessLog.format: expected common or json").
 */
int al_new(const relais_cfg *node, unsigned nworkers, struct al_log **out);

/**
 * Hot path, worker thread `worker`: applies the filters, formats the line
 * into that worker's ring.  Never blocks, never makes a syscall; a line
 * that does not fit is dropped and counted.
 */
void al_write(struct al_log *l, unsigned worker, const struct al_record *r);

/** Asks the writer to reopen the file at its next turn (SIGUSR1 after
 *  logrotate moved it).  No-op on standard output. */
void al_reopen(struct al_log *l);

/** Blocks until every line queued before the call is written (or lost to
 *  a write error).  For shutdown and tests. */
void al_flush(struct al_log *l);

/** Takes a reference (NULL is a no-op); returns l. */
struct al_log *al_ref(struct al_log *l);

/** Drops a reference; the last one writes everything queued, stops the
 *  thread and closes.  NULL is a no-op. */
void al_free(struct al_log *l);

/** Lines lost: rings full, too long, or write errors. */
uint64_t al_dropped(const struct al_log *l);

/** The addInternals setting (1 or 0). */
int al_add_internals(const struct al_log *l);

#endif /* RELAIS_ACCESSLOG_H */
