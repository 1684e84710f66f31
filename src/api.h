/*
 * api — relais' REST API in Traefik's shape (/api/overview, /api/rawdata,
 * /api/entrypoints, /api/{http,tcp,udp}/{routers,services,middlewares},
 * /api/version) and the dashboard page (/dashboard/).  Module prefix: api_.
 *
 * What the API shows of a configuration is built once per snapshot on the
 * control thread (api_build: every object's configuration as its provider
 * wrote it, secrets redacted, with its status, errors and users) and kept
 * in the snapshot, immutable; a worker answering a request only copies
 * from it and adds what changes between snapshots (server health).
 *
 * Nothing here decides where the API is reachable: proxy.c sends a request
 * to api_serve only on entry point traefik with api.insecure, or through a
 * router whose service is api@internal / dashboard@internal (with whatever
 * middlewares the user put in front).
 */
#ifndef RELAIS_API_H
#define RELAIS_API_H

#include <jansson.h>
#include <stddef.h>

struct snapshot;
struct snap_source;
struct sc_config;
struct relais_req;

/**
 * Builds the API's view of snap from the providers' documents src[0..n)
 * (new reference; NULL when memory runs out).  Control thread, at the end
 * of snap_build; the result is never modified afterwards.
 */
json_t *api_build(const struct snapshot *snap, const struct snap_source *src, size_t n,
                  const struct sc_config *sc);

/**
 * Answers r (its path starts with /api, /dashboard or is "/") from
 * r->snap: sets the response (px_api_respond and friends); the caller
 * finishes the request.  Worker thread.
 */
void api_serve(struct relais_req *r);

/** Where /api/relais/stats takes its counters (metrics.c; returns a new
 *  object, any thread), or NULL: the endpoint answers 404.  Set before
 *  the workers start. */
void api_set_stats(json_t *(*fn)(void));

/** The dashboard page (static storage), or NULL: /dashboard/ answers
 *  404.  Set before the workers start. */
void api_set_dashboard(const unsigned char *html, size_t len);

/** Replaces, in place, every string, number or boolean under a secret key
 *  of v (conf_key_secret; recursively) by "xxxx". */
void api_redact(json_t *v);

/** {"status": "enabled"|"warning"|"disabled", "error": [messages]} for
 *  an object of status st (enum snap_status) and error (messages joined
 *  by "; ", or NULL); new reference or NULL. */
json_t *api_status(int st, const char *error);

/** A list of the names of the entry points i of sc with eps[i] set (by
 *  name; tombstones left out); new reference. */
json_t *api_ep_names(const unsigned char *eps, const struct sc_config *sc);

#endif /* RELAIS_API_H */
