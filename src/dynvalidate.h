/*
 * dynvalidate — validating dynamic documents without a running daemon
 * (relaisctl apply and restore), and making a document self-contained
 * (file paths replaced by the files' contents) before it goes to etcd.
 * Module prefix: dv_.
 *
 * Validation is relais' own: the documents are merged and compiled into a
 * snapshot exactly as the control thread does (snap_merge_docs,
 * snap_build, the plugins' create()), the snapshot is freed at once, and
 * the errors the build logs are collected and attributed to the document
 * they come from (their origin or the "@provider" of their key path).
 * Nothing is bound, no server is contacted, no health check runs.
 *
 * Thread: the caller's (one thread; the log is redirected while a build
 * runs, so no other thread may log meanwhile).
 */
#ifndef RELAIS_DYNVALIDATE_H
#define RELAIS_DYNVALIDATE_H

#include <jansson.h>
#include <stddef.h>

struct sc_config;
struct pl_set;
struct event_base;

/** Receives one finding.  error: 1 for an error, 0 for a warning; path: a
 *  key path inside the document ("http.routers.r1.rule", "@provider"
 *  suffixes removed) or "" when the finding has none; msg: the reason. */
typedef void (*dv_report_cb)(void *arg, int error, const char *path, const char *msg);

/** One dynamic document given to dv_check. */
struct dv_source {
    const char *provider; /* provider name its objects get ("x@provider") */
    json_t *doc;          /* the document (borrowed) */
    const char *origin;   /* its name in messages (a file name) */
};

/**
 * Validates src[0..n) together as relais serves them: with the entry
 * points, api, ping and metrics of sc and the plugins of plugins.  base
 * is the host's control loop meanwhile (plugins may arm timers there; the
 * loop is not run) and none after: for tools such as relaisctl, not for
 * use inside the daemon.  Findings about
 * the objects of provider mine are reported through cb (the errors that
 * relais would log, each with the key path inside mine's document, and the
 * warnings); findings about other providers' objects are reported as
 * warnings only when they name one of mine's objects ("x@mine").
 * Returns the number of errors attributed to mine (0: valid), or -1 when
 * memory runs out.
 */
int dv_check(const struct dv_source *src, size_t n, const char *mine, const struct sc_config *sc,
             const struct pl_set *plugins, struct event_base *base, dv_report_cb cb, void *arg);

/**
 * Makes doc self-contained, in place: file paths in tls.certificates[]
 * (certFile, keyFile), tls.stores.*.defaultCertificate,
 * tls.options.*.clientAuth.caFiles[], http.serversTransports.*
 * (rootCAs[], certificates[]), tcp.serversTransports.*.tls (rootCAs[],
 * certificates[]) are replaced by the files' PEM contents (relais reads
 * either), and the usersFile of basicAuth and digestAuth middlewares is
 * replaced by its entries appended to users (blank lines and # comments
 * dropped).  Values that are PEM text already are kept.  Relative paths
 * are relative to the current directory.  Each file that cannot be read
 * is reported through cb as an error at its key path; returns the number
 * of errors (doc is then partly changed).
 */
int dv_inline_files(json_t *doc, dv_report_cb cb, void *arg);

/**
 * Sends what the log receives from now on to a private buffer instead of
 * stderr, at level (RELAIS_LOG_*) and above.  dv_capture_end returns the
 * log to stderr in the common format at the level it had before.  Not
 * nested; for programs that log to stderr (relaisctl).  0, or -1 when the
 * buffer cannot be made.
 */
int dv_capture_start(int level);

/** Ends a capture: calls cb for each captured line (level RELAIS_LOG_*,
 *  module or "", message), in order. */
void dv_capture_end(void (*cb)(void *arg, int level, const char *module, const char *message),
                    void *arg);

#endif /* RELAIS_DYNVALIDATE_H */
