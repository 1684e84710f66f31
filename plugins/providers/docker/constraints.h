/*
 * constraints — Traefik's provider constraint expressions, as the docker
 * provider's `constraints` option takes them:
 *
 *   Label(`key`, `value`)        the label key equals value (an absent
 *                                label has the value "")
 *   LabelRegex(`key`, `regex`)   the label's value matches regex (PCRE2;
 *                                unanchored like Go's regexp.MatchString,
 *                                which Traefik calls; anchor with ^...$)
 *   !e   e && e   e || e   (e)   not binds tightest, then and, then or
 *
 * Strings are backquoted (raw, no escapes) or double-quoted (escapes \" \\
 * \n \r \t).  Module prefix: dkcon_.  Pure; an expression is immutable
 * after parsing except for the regex match scratch space, so one
 * expression is used by one thread at a time (the provider's control
 * thread).
 */
#ifndef RELAIS_DOCKER_CONSTRAINTS_H
#define RELAIS_DOCKER_CONSTRAINTS_H

#include <stddef.h>

/** A parsed expression (opaque). */
typedef struct dkcon dkcon;

/** Looks a label up for dkcon_match: its NUL-terminated value, or NULL
 *  when the container has no such label. */
typedef const char *(*dkcon_lookup_fn)(void *arg, const char *key);

/** Longest expression accepted, in bytes. */
#define DKCON_MAX_LEN 8192

/**
 * Parses src (NUL-terminated).  Returns the expression (caller frees with
 * dkcon_free), or NULL with *col set to the 1-based byte column of the
 * error and err to a message (truncated to errlen).  Out of memory is
 * reported the same way, at column 1.
 */
dkcon *dkcon_parse(const char *src, size_t *col, char *err, size_t errlen);

/** 1 when the labels that lookup(arg, key) answers satisfy e, else 0. */
int dkcon_match(const dkcon *e, dkcon_lookup_fn lookup, void *arg);

/** Frees an expression; NULL is a no-op. */
void dkcon_free(dkcon *e);

#endif /* RELAIS_DOCKER_CONSTRAINTS_H */
