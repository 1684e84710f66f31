/*
 * constraints — parser and evaluator of Traefik's constraint expressions
 * (see constraints.h).  A recursive-descent parser builds a small tree;
 * LabelRegex patterns are compiled once with PCRE2 (UTF, $ only at the
 * end of the subject as in Go).  Module prefix: dkcon_.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "constraints.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKCON_MAX_DEPTH 64          /* nesting of ( and ! */
#define DKCON_MATCH_LIMIT 1000000u  /* PCRE2 backtracking cap per match */

/** Node kinds. */
enum dkcon_op { DKCON_LABEL, DKCON_REGEX, DKCON_NOT, DKCON_AND, DKCON_OR };

/** One node of the expression tree. */
struct dkcon {
    int op;                    /* enum dkcon_op */
    char *key;                 /* LABEL/REGEX: the label name */
    char *value;               /* LABEL: the expected value */
    pcre2_code *re;            /* REGEX: compiled pattern */
    pcre2_match_data *md;      /* REGEX: match scratch space */
    pcre2_match_context *mctx; /* REGEX: match limits */
    struct dkcon *a;           /* NOT/AND/OR: first operand */
    struct dkcon *b;           /* AND/OR: second operand */
};

/** Parser state. */
struct dkcon_p {
    const char *s; /* the source */
    size_t pos;    /* current byte */
    size_t ecol;   /* error column (1-based), 0 while no error */
    char *err;     /* error message buffer */
    size_t errlen; /* its size */
    int depth;     /* current nesting */
};

void dkcon_free(dkcon *e)
{
    if (!e) return;
    dkcon_free(e->a);
    dkcon_free(e->b);
    free(e->key);
    free(e->value);
    pcre2_match_data_free(e->md);
    pcre2_match_context_free(e->mctx);
    pcre2_code_free(e->re);
    free(e);
}

/* Records the first error, at byte offset at.  Returns NULL for tail
 * calls. */
static void *dkcon_fail(struct dkcon_p *p, size_t at, const char *fmt, ...)
{
    va_list ap;

    if (p->ecol) return NULL;
    p->ecol = at + 1;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return NULL;
}

/* Skips blanks. */
static void dkcon_ws(struct dkcon_p *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

/* New node of kind op with operands a, b (taken over; freed on failure).
 * NULL (error recorded at at) when out of memory. */
static dkcon *dkcon_node(struct dkcon_p *p, int op, dkcon *a, dkcon *b, size_t at)
{
    dkcon *n = calloc(1, sizeof(*n));

    if (!n) {
        dkcon_free(a);
        dkcon_free(b);
        return dkcon_fail(p, at, "out of memory");
    }
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

/* Parses a string literal at pos (backquoted or double-quoted) into a new
 * NUL-terminated string; NULL after recording an error. */
static char *dkcon_string(struct dkcon_p *p)
{
    size_t start = p->pos, len = 0;
    char q = p->s[p->pos], *out;

    if (q != '`' && q != '"')
        return dkcon_fail(p, p->pos, "expected a string in backquotes or double quotes");
    out = malloc(strlen(p->s + start) + 1);
    if (!out) return dkcon_fail(p, start, "out of memory");
    p->pos++;
    for (;;) {
        char c = p->s[p->pos];
        if (c == 0 || (q == '"' && c == '\n')) {
            free(out);
            return dkcon_fail(p, start, "unterminated string");
        }
        p->pos++;
        if (c == q) break;
        if (q == '"' && c == '\\') {
            char e = p->s[p->pos];
            const char *from = "\"\\nrt", *to = "\"\\\n\r\t", *hit = e ? strchr(from, e) : NULL;
            if (!hit) {
                free(out);
                return dkcon_fail(p, p->pos - 1, "unknown escape sequence in a string");
            }
            c = to[hit - from];
            p->pos++;
        }
        out[len++] = c;
    }
    out[len] = 0;
    return out;
}

/* Compiles the pattern of a LabelRegex node (string at byte offset at);
 * 0, or -1 after recording an error. */
static int dkcon_compile(struct dkcon_p *p, dkcon *n, size_t at)
{
    int ec;
    PCRE2_SIZE eoff;
    PCRE2_UCHAR msg[160];

    n->re = pcre2_compile((PCRE2_SPTR)n->value, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &eoff,
                          NULL);
    if (!n->re) {
        pcre2_get_error_message(ec, msg, sizeof(msg));
        dkcon_fail(p, at, "invalid regular expression `%s` (at offset %zu): %s", n->value,
                   (size_t)eoff, (const char *)msg);
        return -1;
    }
    n->md = pcre2_match_data_create_from_pattern(n->re, NULL);
    n->mctx = pcre2_match_context_create(NULL);
    if (!n->md || !n->mctx) {
        dkcon_fail(p, at, "out of memory");
        return -1;
    }
    pcre2_set_match_limit(n->mctx, DKCON_MATCH_LIMIT);
    return 0;
}

/* Parses Label(...) / LabelRegex(...) at pos; NULL after an error. */
static dkcon *dkcon_call(struct dkcon_p *p)
{
    size_t start = p->pos, nlen, sat;
    int op;
    dkcon *n;

    while ((p->s[p->pos] >= 'a' && p->s[p->pos] <= 'z') ||
           (p->s[p->pos] >= 'A' && p->s[p->pos] <= 'Z') ||
           (p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '_')
        p->pos++;
    nlen = p->pos - start;
    if (nlen == 0) {
        if (p->s[start] == 0) return dkcon_fail(p, start, "unexpected end of the expression");
        return dkcon_fail(p, start, "unexpected '%c': expected Label, LabelRegex, '!' or '('",
                          p->s[start]);
    }
    if (nlen == 5 && !memcmp(p->s + start, "Label", 5)) op = DKCON_LABEL;
    else if (nlen == 10 && !memcmp(p->s + start, "LabelRegex", 10)) op = DKCON_REGEX;
    else
        return dkcon_fail(p, start, "unknown function %.*s (expected Label or LabelRegex)",
                          (int)(nlen > 64 ? 64 : nlen), p->s + start);
    n = dkcon_node(p, op, NULL, NULL, start);
    if (!n) return NULL;
    dkcon_ws(p);
    if (p->s[p->pos] != '(') {
        dkcon_free(n);
        return dkcon_fail(p, p->pos, "expected '(' after %.*s", (int)nlen, p->s + start);
    }
    p->pos++;
    dkcon_ws(p);
    if (!(n->key = dkcon_string(p))) goto fail;
    dkcon_ws(p);
    if (p->s[p->pos] != ',') {
        dkcon_fail(p, p->pos, "expected ',' between the arguments of %.*s", (int)nlen,
                   p->s + start);
        goto fail;
    }
    p->pos++;
    dkcon_ws(p);
    sat = p->pos;
    if (!(n->value = dkcon_string(p))) goto fail;
    dkcon_ws(p);
    if (p->s[p->pos] != ')') {
        dkcon_fail(p, p->pos, "expected ')': %.*s takes two arguments", (int)nlen, p->s + start);
        goto fail;
    }
    p->pos++;
    if (op == DKCON_REGEX && dkcon_compile(p, n, sat) < 0) goto fail;
    return n;
fail:
    dkcon_free(n);
    return NULL;
}

static dkcon *dkcon_or(struct dkcon_p *p);

/* unary := '!' unary | '(' or ')' | call */
static dkcon *dkcon_unary(struct dkcon_p *p)
{
    size_t at;
    dkcon *n;

    dkcon_ws(p);
    at = p->pos;
    if (p->s[at] != '!' && p->s[at] != '(') return dkcon_call(p);
    if (++p->depth > DKCON_MAX_DEPTH) return dkcon_fail(p, at, "nested too deeply");
    p->pos++;
    if (p->s[at] == '!') {
        n = dkcon_unary(p);
        if (n) n = dkcon_node(p, DKCON_NOT, n, NULL, at);
    } else {
        n = dkcon_or(p);
        dkcon_ws(p);
        if (n && p->s[p->pos] != ')') {
            dkcon_free(n);
            n = dkcon_fail(p, p->pos, "expected ')' to close the '(' at column %zu", at + 1);
        } else if (n) {
            p->pos++;
        }
    }
    p->depth--;
    return n;
}

/* and := unary ('&&' unary)* */
static dkcon *dkcon_and(struct dkcon_p *p)
{
    dkcon *l = dkcon_unary(p), *r;

    while (l) {
        size_t at;
        dkcon_ws(p);
        at = p->pos;
        if (p->s[at] != '&') break;
        if (p->s[at + 1] != '&') {
            dkcon_free(l);
            return dkcon_fail(p, at, "expected '&&'");
        }
        p->pos += 2;
        r = dkcon_unary(p);
        if (!r) {
            dkcon_free(l);
            return NULL;
        }
        l = dkcon_node(p, DKCON_AND, l, r, at);
    }
    return l;
}

/* or := and ('||' and)* */
static dkcon *dkcon_or(struct dkcon_p *p)
{
    dkcon *l = dkcon_and(p), *r;

    while (l) {
        size_t at;
        dkcon_ws(p);
        at = p->pos;
        if (p->s[at] != '|') break;
        if (p->s[at + 1] != '|') {
            dkcon_free(l);
            return dkcon_fail(p, at, "expected '||'");
        }
        p->pos += 2;
        r = dkcon_and(p);
        if (!r) {
            dkcon_free(l);
            return NULL;
        }
        l = dkcon_node(p, DKCON_OR, l, r, at);
    }
    return l;
}

dkcon *dkcon_parse(const char *src, size_t *col, char *err, size_t errlen)
{
    struct dkcon_p p;
    char dummy[1];
    dkcon *e;

    memset(&p, 0, sizeof(p));
    p.s = src;
    p.err = err && errlen ? err : dummy;
    p.errlen = err && errlen ? errlen : sizeof(dummy);
    if (strlen(src) > DKCON_MAX_LEN) {
        dkcon_fail(&p, DKCON_MAX_LEN, "longer than %d bytes", DKCON_MAX_LEN);
        e = NULL;
    } else {
        e = dkcon_or(&p);
        dkcon_ws(&p);
        if (e && src[p.pos]) {
            dkcon_free(e);
            e = dkcon_fail(&p, p.pos, "unexpected '%c' after a complete expression", src[p.pos]);
        }
    }
    if (!e && !p.ecol) dkcon_fail(&p, 0, "invalid expression");
    if (col) *col = e ? 0 : p.ecol;
    return e;
}

int dkcon_match(const dkcon *e, dkcon_lookup_fn lookup, void *arg)
{
    const char *v;
    int rc;

    switch (e->op) {
    case DKCON_NOT: return !dkcon_match(e->a, lookup, arg);
    case DKCON_AND: return dkcon_match(e->a, lookup, arg) && dkcon_match(e->b, lookup, arg);
    case DKCON_OR: return dkcon_match(e->a, lookup, arg) || dkcon_match(e->b, lookup, arg);
    case DKCON_LABEL:
        v = lookup(arg, e->key);
        return !strcmp(v ? v : "", e->value);
    default:
        v = lookup(arg, e->key);
        if (!v) v = "";
        rc = pcre2_match(e->re, (PCRE2_SPTR)v, strlen(v), 0, 0, e->md, e->mctx);
        return rc >= 0;
    }
}
