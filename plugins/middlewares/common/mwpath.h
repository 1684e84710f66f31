/*
 * mwpath — a request path as Go's net/url holds it (Path decoded, RawPath
 * the escaped spelling when it differs from Go's own escaping), shared by
 * the path middlewares (addPrefix, stripPrefix, stripPrefixRegex,
 * replacePath, replacePathRegex) so that they edit the path exactly as
 * Traefik v3 does.  Module prefix: mwp_.
 *
 * The host holds one string, the path sent upstream (escaped, as sent by
 * the client or as set by the previous middleware).  mwp_load decodes it
 * the way Go's server parses a request target (url.ParseRequestURI);
 * mwp_store writes back what Go's URL.RequestURI() would send
 * (EscapedPath(): RawPath when it is a valid spelling of Path, else Path
 * escaped; "/" when empty).  A path with an invalid %-escape (Go's server
 * refuses it with 400 before Traefik sees it) is kept literally: Path and
 * RawPath are the bytes as sent and mwp_store writes RawPath unchanged.
 *
 * All functions are pure or use the request's memory (host->req_alloc);
 * any thread.
 */
#ifndef MWPATH_H
#define MWPATH_H

#include <stddef.h>

#include <relais/plugin.h>

/** Longest path handled (the host's own cap on a path). */
#define MWP_MAX 65536u

/** A request path, Go-style.  Strings live in the request's memory and
 *  are NUL-terminated. */
struct mwp_path {
    char *path;      /* URL.Path: decoded */
    size_t path_len; /* its length */
    char *raw;       /* URL.RawPath, or NULL when "" */
    size_t raw_len;  /* its length (0 when raw is NULL) */
    int literal;     /* the path had an invalid %-escape: kept as sent */
};

/** Decodes %XX escapes of s[0..n) into out (room for n bytes; '+' stays).
 *  Returns 0 and sets *outn, or -1 at the first bad escape and sets *bad
 *  to its offset. */
int mwp_unescape(const char *s, size_t n, char *out, size_t *outn,
                 size_t *bad);

/** Escapes s[0..n) as Go's url escape(s, encodePath) into out (room for
 *  3n bytes); returns the length written. */
size_t mwp_escape(const char *s, size_t n, char *out);

/** 1 when s[0..n) is a valid escaped path spelling (Go's validEncoded). */
int mwp_valid_encoded(const char *s, size_t n);

/** Formats Go's url.EscapeError text for the bad escape at s+bad:
 *  `invalid URL escape "%zz"` into out (cap bytes, NUL-terminated). */
void mwp_escape_error(const char *s, size_t n, size_t bad, char *out,
                      size_t cap);

/** Loads the request's current path into *p (request memory).  0, or -1
 *  when out of memory. */
int mwp_load(const relais_host *host, relais_req *req, struct mwp_path *p);

/** Sets p->path/raw from pieces: path = a + b (b may be NULL), with
 *  ensureLeadingSlash applied when lead is 1; same for the raw side from
 *  ra + rb when ra is not NULL (raw becomes NULL otherwise).  Request
 *  memory; 0 or -1 (out of memory / too long). */
int mwp_set(const relais_host *host, relais_req *req, struct mwp_path *p,
            const char *a, size_t alen, const char *b, size_t blen,
            const char *ra, size_t ralen, const char *rb, size_t rblen,
            int lead);

/** Go's EscapedPath() of p into request memory; *len set.  NULL when out
 *  of memory. */
char *mwp_escaped(const relais_host *host, relais_req *req,
                  const struct mwp_path *p, size_t *len);

/** Stores p as the path sent upstream (RequestURI's path part: "/" when
 *  empty).  0, or -1 (out of memory, or the host refused the path). */
int mwp_store(const relais_host *host, relais_req *req,
              const struct mwp_path *p);

/** Answers as Go's http.Error(w, msg, code) does: status, Content-Type
 *  text/plain; charset=utf-8, X-Content-Type-Options: nosniff, body msg
 *  followed by "\n".  Returns RELAIS_DONE, or RELAIS_ERROR. */
int mwp_http_error(const relais_host *host, relais_req *req, int status,
                   const char *msg);

/* ---- configuration helpers (control thread) ---- */

/** Cap on the items of a list option (prefixes, regex). */
#define MWP_MAX_ITEMS 256u

/** Checks that cfg (the map under the middleware's key) is a map (or
 *  null / absent) whose keys are all among the n names of known
 *  (case-insensitive); reports each unknown key with cfg_error naming the
 *  expected ones.  0, or -1 after cfg_error. */
int mwp_cfg_keys(const relais_host *host, const relais_cfg *cfg,
                 const char *const *known, size_t n);

/** Reads the list of strings cfg.key into *out (malloc'd copies, *n
 *  items; absent or null: none).  A string is taken as a comma-separated
 *  list (Traefik's label form).  Every item is also NUL-terminated.  0, or
 *  -1 after cfg_error (wrong type, more than MWP_MAX_ITEMS items, out of
 *  memory). */
int mwp_cfg_strings(const relais_host *host, const relais_cfg *cfg,
                    const char *key, char ***out, size_t *n);

/** Frees what mwp_cfg_strings returned; NULL is a no-op. */
void mwp_strings_free(char **v, size_t n);

#endif /* MWPATH_H */
