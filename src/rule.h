/*
 * rule — Traefik v3's router rule language: parse once, match per request.
 * Module prefix: rule_.
 *
 * Matchers: Host, HostRegexp, Path, PathPrefix, PathRegexp, Method, Header,
 * HeaderRegexp, Query, QueryRegexp, ClientIP; operators ! && || and
 * parentheses; strings in backticks or double quotes.  Regexes are
 * compiled once with PCRE2 (JIT when available).
 *
 * Thread-safety: rule_parse/rule_free on one thread; rule_match is
 * read-only and may run on many threads at once (per-thread PCRE2 match
 * data is managed internally).
 */
#ifndef RELAIS_RULE_H
#define RELAIS_RULE_H

#include <stddef.h>
#include <sys/socket.h>

/** What a rule is matched against; filled by the caller per request. */
struct rule_req {
    const char *method;  /* request method */
    size_t method_len;   /* its length */
    const char *host;    /* host without port, as sent (any case) */
    size_t host_len;     /* its length */
    const char *path;    /* path without the query, as sent */
    size_t path_len;     /* its length */
    const char *query;   /* raw query without '?', NULL when none */
    size_t query_len;    /* its length */
    const struct sockaddr *client; /* client address (AF_INET/AF_INET6) */
    /** idx-th value of the header called name (case-insensitive), or
     *  NULL when there is none. */
    const char *(*header)(void *arg, const char *name, size_t nlen,
                          size_t idx, size_t *vlen);
    void *header_arg; /* passed to header */
};

/** Why a rule did not parse. */
struct rule_error {
    int column;     /* 1-based column (byte offset + 1) in the rule text */
    char msg[256];  /* what was expected, e.g. "expected ')'" */
};

typedef struct rule rule_t;

/** Parses text.  Returns the compiled rule (free with rule_free) or NULL
 *  with *err filled. */
rule_t *rule_parse(const char *text, struct rule_error *err);

/** 1 when the request matches, else 0. */
int rule_match(const rule_t *r, const struct rule_req *req);

/** Frees; NULL is a no-op. */
void rule_free(rule_t *r);

/**
 * Index hints.  When every request the rule matches must have a host from
 * a finite set (Host(`a`) && ..., Host(`a`) || Host(`b`), ...), calls cb
 * once per host (lowercase; wildcard=1 for "*.example.com", passed as the
 * suffix "example.com") and returns 1.  Otherwise calls nothing and
 * returns 0.  Hosts are canonical: lowercase, one trailing dot removed
 * (Host matches "a.com." and "a.com" alike), so an index should look up
 * the request host lowercased with one trailing dot stripped.  A wildcard
 * suffix s matches hosts ending in "." s with at least one byte before.
 */
int rule_hosts(const rule_t *r,
               void (*cb)(void *arg, const char *host, size_t len,
                          int wildcard),
               void *arg);

/* ---- TCP routers' rules (Traefik v3 tcp.routers) ------------------------ */

/** What a TCP rule is matched against: one connection. */
struct rule_tcp_req {
    const char *sni;        /* ClientHello server name (lowercase), NULL
                               when not TLS or none was sent */
    size_t sni_len;         /* its length */
    const char *const *alpn; /* ALPN protocols offered, NUL-terminated */
    size_t nalpn;           /* how many */
    const struct sockaddr *client; /* client address (AF_INET/AF_INET6) */
};

/** Parses a TCP rule: HostSNI (`*` = any connection, names, "*.suffix"),
 *  HostSNIRegexp, ClientIP, ALPN with ! && || and parentheses.  NULL
 *  with *err filled when it does not parse. */
rule_t *rule_parse_tcp(const char *text, struct rule_error *err);

/** 1 when the connection matches the TCP rule r, else 0. */
int rule_match_tcp(const rule_t *r, const struct rule_tcp_req *req);

/** 1 when r is exactly HostSNI(`*`) (Traefik's catch-all route). */
int rule_tcp_catchall(const rule_t *r);

/** 1 when r names a server (HostSNI with a name, HostSNIRegexp): such a
 *  rule only ever matches TLS connections. */
int rule_tcp_needs_sni(const rule_t *r);

/** As rule_hosts, for the HostSNI names of a TCP rule. */
int rule_sni_hosts(const rule_t *r,
                   void (*cb)(void *arg, const char *host, size_t len, int wildcard),
                   void *arg);

#endif /* RELAIS_RULE_H */
