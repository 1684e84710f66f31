/*
 * mwregex — regular expressions with Go's regexp semantics on PCRE2, for
 * the middlewares whose options are Go regexps in Traefik
 * (stripPrefixRegex, replacePathRegex, redirectRegex, redirectScheme).
 * Module prefix: mwr_.
 *
 * Go's regexp (RE2 syntax) is matched by PCRE2 compiled with UTF,
 * MATCH_INVALID_UTF (invalid bytes never match, never fail the match),
 * DOLLAR_ENDONLY ("$" is the end of the text, as in Go without (?m)) and
 * no UCP (\w \d \s \b are ASCII, as in Go).  Nothing is anchored unless
 * the pattern says so, as in Go.  Replacement follows Go's
 * Regexp.ReplaceAllString and Regexp.Expand: $1, ${1}, $name, ${name},
 * $$; "$1x" means the group named "1x" (empty), a malformed "$" is kept.
 *
 * A compiled expression is immutable and shared by every worker thread;
 * matching allocates its own match data.  Compile on the control thread.
 */
#ifndef MWREGEX_H
#define MWREGEX_H

#include <stddef.h>

/** Cap on any text built here (a replaced URL, a path). */
#define MWR_MAX (1024u * 1024u)

/** A compiled expression (opaque). */
struct mwr_re;

/** A growing text with a hard cap (MWR_MAX); failures are sticky. */
struct mwr_buf {
    char *p;    /* the bytes (malloc), NUL-terminated when not failed */
    size_t len; /* bytes used (without the NUL) */
    size_t cap; /* bytes allocated */
    int failed; /* the cap was reached or memory ran out */
};

/** Appends n bytes of s to b (nothing once b->failed). */
void mwr_buf_add(struct mwr_buf *b, const char *s, size_t n);
/** Frees the bytes of b (b itself is the caller's). */
void mwr_buf_release(struct mwr_buf *b);

/** Control thread.  Compiles the NUL-terminated pattern.  Returns the
 *  expression, or NULL with a message in err (errcap bytes). */
struct mwr_re *mwr_compile(const char *pattern, char *err, size_t errcap);

/** Frees an expression; NULL is a no-op. */
void mwr_free(struct mwr_re *re);

/** Number of capture groups. */
size_t mwr_groups(const struct mwr_re *re);

/** Any thread.  Finds the leftmost match in s[0..n) starting at or after
 *  start (the text before start is context, as in Go).  On a match,
 *  ov[0..2*(groups+1)) holds start/end offsets ((size_t)-1 for a group
 *  that did not take part); ov must have that room.  1 match, 0 none, -1
 *  error (out of memory, match limits). */
int mwr_find(const struct mwr_re *re, const char *s, size_t n, size_t start,
             size_t *ov);

/** Any thread.  1 when re matches somewhere in s[0..n), 0 when not, -1
 *  on error. */
int mwr_match(const struct mwr_re *re, const char *s, size_t n);

/** Any thread.  Go's re.ReplaceAllString(s, tmpl): appends the result to
 *  out.  0, or -1 (out->failed, or a match error). */
int mwr_replace_all(const struct mwr_re *re, const char *s, size_t n,
                    const char *tmpl, struct mwr_buf *out);

#endif /* MWREGEX_H */
