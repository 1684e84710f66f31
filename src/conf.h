/*
 * conf — configuration documents (YAML or JSON) read into a jansson tree,
 * and the host side of the SDK's typed configuration accessors.
 * Module prefix: conf_.
 *
 * YAML plain scalars are typed with the YAML 1.2 core schema (null, true,
 * false, integers, floats); quoted scalars stay strings.  Anchors and
 * aliases are resolved; duplicate keys are an error.
 *
 * Thread-safety: control thread only (sessions are not shared).
 */
#ifndef RELAIS_CONF_H
#define RELAIS_CONF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

/** Document formats. */
enum conf_format { CONF_AUTO = 0, CONF_YAML = 1, CONF_JSON = 2 };

/** Where and why a document did not parse. */
struct conf_error {
    char source[256]; /* file name or other source */
    int line;         /* 1-based, 0 when unknown */
    int column;       /* 1-based, 0 when unknown */
    char msg[256];    /* the reason */
};

/** Parses data[0..len) (format CONF_AUTO: from source's extension, .json
 *  is JSON, anything else YAML).  Returns a new reference, or NULL with
 *  *err filled.  An empty document is an empty object. */
json_t *conf_parse(const char *data, size_t len, int format,
                   const char *source, struct conf_error *err);

/** Reads and parses a file (format from the extension). */
json_t *conf_load_file(const char *path, struct conf_error *err);

/** Parses a Traefik duration ("1h2m3s", "250ms", "1.5s", "10us" rounded
 *  up to 1 ms, or a bare number of seconds).  0 ok, -1 bad. */
int conf_parse_duration(const char *s, int64_t *ms);

/**
 * A session of typed reads over one tree: it owns the relais_cfg nodes it
 * hands out and collects errors with their full key paths.
 */
struct conf_session;

/** New session; root_path prefixes every reported path (may be ""). */
struct conf_session *conf_session_new(const char *root_path);

/** Frees the session and every node it handed out; NULL is a no-op. */
void conf_session_free(struct conf_session *s);

/** The node for value (borrowed; valid while the session lives). */
const relais_cfg *conf_session_root(struct conf_session *s, json_t *value);

/** Number of errors recorded, and the i-th as "path: message". */
size_t conf_session_nerrors(const struct conf_session *s);
const char *conf_session_error(const struct conf_session *s, size_t i);

/** The json value behind a node (borrowed), NULL for NULL. */
json_t *conf_node_json(const relais_cfg *node);

/** The full key path of a node ("http.routers.r1@file.rule"). */
const char *conf_node_path(const relais_cfg *node);

/* The accessors, with the SDK's signatures (relais_host fills from them). */
int conf_cfg_type(const relais_cfg *node);
const relais_cfg *conf_cfg_get(const relais_cfg *node, const char *key);
size_t conf_cfg_len(const relais_cfg *node);
const relais_cfg *conf_cfg_at(const relais_cfg *node, size_t i,
                              const char **key);
int conf_cfg_string(const relais_cfg *node, const char *key, const char **out);
int conf_cfg_int(const relais_cfg *node, const char *key, int64_t *out);
int conf_cfg_bool(const relais_cfg *node, const char *key, int *out);
int conf_cfg_real(const relais_cfg *node, const char *key, double *out);
int conf_cfg_duration(const relais_cfg *node, const char *key,
                      int64_t *out_ms);
void conf_cfg_error(const relais_cfg *node, const char *key, const char *fmt,
                    ...) RELAIS_PRINTF(3, 4);
/** va_list form of conf_cfg_error. */
void conf_cfg_verror(const relais_cfg *node, const char *key, const char *fmt,
                     va_list ap);

/** The member of object o called key, compared without regard to case
 *  (Traefik's keys are), or NULL (also when o is not an object). */
json_t *conf_json_get(json_t *o, const char *key);

/** 1 when the configuration key key[0..n) names a secret (users, key,
 *  privateKey, credentials, or any key containing password, secret or
 *  token, without regard to case): its values are never shown in
 *  messages or by the API. */
int conf_key_secret(const char *key, size_t n);

#endif /* RELAIS_CONF_H */
