/*
 * relaisctl — the cluster's command-line tool: shared declarations of its
 * source files (relaisctl.c: options, etcd and HTTP calls, output;
 * relaisctl_apply.c: apply, backup, restore; relaisctl_show.c: get,
 * status, certs).  Module prefix: rc_.
 *
 * relaisctl talks to the etcd cluster of a relais cluster through the
 * core's etcd client (etcd.h), one blocking call at a time: each call runs
 * the event loop until its callback has answered.  The layout of the keys
 * under the prefix is the contract of cluster.h.
 *
 * Exit statuses: 0 success, 1 bad input or a refusal (the message says
 * why), 2 etcd unreachable.
 */
#ifndef RELAIS_RELAISCTL_H
#define RELAIS_RELAISCTL_H

#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"

struct event_base;
struct sc_config;
struct pl_set;

#define RC_EXIT_OK 0      /* success */
#define RC_EXIT_BAD 1     /* bad input, refused, etcd said no */
#define RC_EXIT_UNREACH 2 /* no etcd endpoint answered */

#define RC_MAX_ENDPOINTS 32           /* --endpoints entries */
#define RC_MAX_INPUT (64u << 20)      /* cap on a file relaisctl reads */
#define RC_MAX_PEM (1u << 20)         /* cap on a certificate or key file */

/** Options and state of one run. */
struct rc_ctx {
    char *endpoints[RC_MAX_ENDPOINTS]; /* etcd endpoints (owned) */
    size_t nendpoints;            /* how many */
    char *prefix;                 /* key prefix P, no trailing '/' (owned) */
    char *username;               /* etcd user, or NULL (owned) */
    char *password;               /* its password, or NULL (owned) */
    char *cacert;                 /* CA file for etcd's TLS, or NULL (owned) */
    char *cert;                   /* client certificate file, or NULL (owned) */
    char *key;                    /* its key file, or NULL (owned) */
    int insecure;                 /* do not verify etcd's certificate */
    int64_t timeout_ms;           /* per endpoint attempt */
    const char *config;           /* --config: a node's static file, or NULL */
    const char *plugin_dir;       /* --plugin-dir, or NULL */
    int json;                     /* -o json */
    struct event_base *base;      /* the event loop calls run on */
    struct etc_client *etcd;      /* the etcd client, made on first use */
};

/** One key/value copied out of a range answer. */
struct rc_kv {
    char *key;              /* full key, NUL-terminated (owned) */
    size_t key_len;         /* its length */
    char *value;            /* value bytes, NUL-terminated (owned) */
    size_t value_len;       /* their length */
    int64_t mod_revision;   /* revision of its last change */
    int64_t lease;          /* lease id, 0 for none */
};

/** A range answer. */
struct rc_range {
    int64_t revision;       /* the store's revision */
    struct rc_kv *kvs;      /* the pairs, by key (owned) */
    size_t n;               /* how many */
};

/** Prints "relaisctl: MESSAGE" on stderr. */
void rc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** The key P/suffix, in a new string (exits on out of memory). */
char *rc_key(const struct rc_ctx *c, const char *suffix);

/** The key of kv relative to P/ (kv is under the prefix). */
const char *rc_rel(const struct rc_ctx *c, const struct rc_kv *kv);

/* etcd calls: each returns RC_EXIT_OK, or RC_EXIT_UNREACH / RC_EXIT_BAD
 * after printing why (the endpoints tried when none answered). */

/** Reads key (or every key under it with prefix) into out. */
int rc_get(struct rc_ctx *c, const char *key, int prefix, struct rc_range *out);
/** Writes key = value[0..len); *rev gets the new revision. */
int rc_put(struct rc_ctx *c, const char *key, const char *value, size_t len, int64_t *rev);
/** Deletes key; *rev the revision after, *deleted how many keys went. */
int rc_delete(struct rc_ctx *c, const char *key, int64_t *rev, int64_t *deleted);
/** One transaction without compares running ops[0..n); *rev as above. */
int rc_txn(struct rc_ctx *c, const struct etc_op *ops, size_t n, int64_t *rev);
/** Frees what a range answer holds (r itself is not freed). */
void rc_range_free(struct rc_range *r);

/**
 * GET url on the event loop (http or https, the system's CAs): *status,
 * the body (new NUL-terminated buffer, capped at RC_MAX_INPUT) and the
 * X-Next-Page header (new string or NULL).  0, or -1 after printing why.
 */
int rc_http_get(struct rc_ctx *c, const char *url, int *status, char **body, size_t *len,
                char **next_page);

/** Reads a file ("-": stdin) of at most max bytes into a new
 *  NUL-terminated buffer.  NULL after printing why. */
char *rc_read_file(const char *path, size_t max, size_t *len);

/** 1 when s is 1..63 characters of [A-Za-z0-9_-] (and '.' with dots). */
int rc_valid_name(const char *s, int dots);

/** "2026-11-26T13:03:26Z" for t into buf. */
void rc_time_iso(int64_t t, char *buf, size_t len);

/** A text table: rows of ncols cells, printed with aligned columns. */
struct rc_table {
    size_t ncols;   /* columns */
    char **cells;   /* rows * ncols cells (owned) */
    size_t nrows;   /* rows, the header included */
    size_t cap;     /* rows allocated */
};
/** Starts a table whose header is the ncols names given. */
void rc_table_init(struct rc_table *t, size_t ncols, const char *const *header);
/** Appends a row of ncols cells (NULL or "" shows as "-"). */
void rc_table_row(struct rc_table *t, const char *const *cells);
/** Prints the table on stdout (two spaces between columns, the last one
 *  not padded) and frees it. */
void rc_table_print(struct rc_table *t);

/**
 * The static configuration validation uses: the --config file's
 * (sc_load), or without it a synthesized one in which every entry point
 * that a router of docs[0..ndocs) names exists (plus "web", and "udp" for
 * UDP routers), with api, ping and metrics.prometheus in manual routing.
 * And the plugins (--plugin-dir, the file's plugins.directory, or the
 * installed directory).  0, or RC_EXIT_BAD after printing why.
 */
int rc_validation_setup(struct rc_ctx *c, json_t *const *docs, size_t ndocs,
                        struct sc_config **sc, struct pl_set **plugins);

/** Parses a dynamic document (YAML or JSON: by the extension of name,
 *  else by its first character) into a new reference; NULL after
 *  printing "NAME:LINE:COLUMN: reason". */
json_t *rc_parse_doc(const char *data, size_t len, const char *name);

/* The commands: argv[0] is the command word; each returns an exit status. */
int rc_cmd_apply(struct rc_ctx *c, int argc, char **argv);
int rc_cmd_backup(struct rc_ctx *c, int argc, char **argv);
int rc_cmd_restore(struct rc_ctx *c, int argc, char **argv);
int rc_cmd_get(struct rc_ctx *c, int argc, char **argv);
int rc_cmd_status(struct rc_ctx *c, int argc, char **argv);
int rc_cmd_certs(struct rc_ctx *c, int argc, char **argv);

/**
 * Parses a command's own options, then settles the connection options
 * (rc_resolve).  opts (ending with a zeroed entry; flag NULL; val below
 * 256) are tried first, then the global options (so `relaisctl status
 * --endpoints X` works) except those opts redefines (certs import's
 * --cert and --key).  Each own option found calls on_opt(arg, val,
 * optarg), which returns 0 or -1 (bad value, after printing why).  The
 * operands are moved to argv[1..*nargs].  --help prints usage on stdout.
 * Returns 0, 1 (help printed: exit 0), or -1 (bad option or
 * configuration, printed: exit 1).
 */
int rc_parse_command(struct rc_ctx *c, int argc, char **argv, const struct option *opts,
                     int (*on_opt)(void *arg, int val, const char *optarg), void *arg,
                     const char *usage, int *nargs);

#endif /* RELAIS_RELAISCTL_H */
