/*
 * rule — see rule.h.
 *
 * The text is parsed by recursive descent into an immutable tree: && and ||
 * chains become one n-ary node each, ! a unary node, every matcher a leaf
 * holding its decoded arguments (hosts lowercased), its compiled PCRE2
 * pattern or its address ranges.  Matching walks the tree with
 * short-circuit evaluation; the only mutable state it touches is a
 * per-thread block (PCRE2 match data, match context with a JIT stack, and a
 * scratch buffer for query decoding) created on first use in each thread
 * and freed by a pthread key destructor when the thread exits.
 *
 * Columns in errors are 1-based byte offsets into the rule text.
 */
#include "config.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rule.h"

#define RULE_MAX_TEXT 65536        /* longest rule text, bytes */
#define RULE_MAX_DEPTH 64          /* deepest nesting of ( and ! */
#define RULE_MAX_MATCHERS 1000     /* most matchers in one rule */
#define RULE_MAX_ARGS 1000         /* most arguments of one matcher */
#define RULE_MAX_HEADER_VALUES 1024 /* most values of a header examined */
#define RULE_MAX_QUERY (1u << 20)  /* longest query examined, bytes */
#define RULE_MATCH_DATA_PAIRS 32   /* ovector pairs of the per-thread data */
#define RULE_MATCH_LIMIT 1000000   /* PCRE2 match limit (backtracking cap) */
#define RULE_JIT_STACK_MIN (32 * 1024)  /* JIT stack, initial size */
#define RULE_JIT_STACK_MAX (512 * 1024) /* JIT stack, largest size */

/** Node kinds: operators, then one per matcher. */
enum rule_kind {
    RULE_AND,          /* all kids */
    RULE_OR,           /* any kid */
    RULE_NOT,          /* kids[0] is false */
    RULE_HOST,         /* host equals one of args (or wildcard suffix) */
    RULE_HOST_REGEXP,  /* re finds a match in the host */
    RULE_PATH,         /* path equals one of args */
    RULE_PATH_PREFIX,  /* path starts with one of args */
    RULE_PATH_REGEXP,  /* re finds a match in the path */
    RULE_METHOD,       /* method equals one of args, any case */
    RULE_HEADER,       /* header args[0] has a value equal to args[1] */
    RULE_HEADER_REGEXP, /* header args[0] has a value re matches */
    RULE_QUERY,        /* query has key args[0] (with value args[1]) */
    RULE_QUERY_REGEXP, /* query has key args[0] with a value re matches */
    RULE_CLIENT_IP,    /* client address is in one of cidrs */
    /* TCP rules (rule_parse_tcp) */
    RULE_HOST_SNI,     /* SNI equals one of args ("*" = any connection) */
    RULE_HOST_SNI_REGEXP, /* re finds a match in the SNI */
    RULE_ALPN          /* the client offered one of args */
};

/** One decoded string argument. */
struct rule_str {
    char *s;      /* bytes, NUL-terminated, owned (lowercase for Host) */
    size_t len;   /* length without the NUL */
    int wildcard; /* Host only: 1 when written "*.suffix"; s is the suffix */
};

/** One ClientIP range. */
struct rule_cidr {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char addr[16];  /* network, host bits cleared (4 used for v4) */
    int bits;                /* prefix length */
};

/** A node of the parsed tree; immutable after rule_parse. */
struct rule_node {
    enum rule_kind kind;      /* what this node tests */
    size_t nkids;             /* operators: number of kids */
    struct rule_node **kids;  /* operators: the operands, owned */
    size_t nargs;             /* matchers: number of args */
    struct rule_str *args;    /* matchers: string arguments, owned */
    size_t ncidrs;            /* ClientIP: number of ranges */
    struct rule_cidr *cidrs;  /* ClientIP: the ranges, owned */
    pcre2_code *re;           /* *Regexp: compiled pattern, owned */
};

/** A parsed rule. */
struct rule {
    struct rule_node *root; /* the tree, owned */
    size_t nmatchers;       /* number of matcher leaves */
};

/** Parser state for one rule_parse call. */
struct rule_parser {
    const char *text;        /* the rule text */
    size_t len;              /* its length */
    size_t pos;              /* current byte offset */
    int depth;               /* current nesting of ( and ! */
    int tcp;                 /* 1: TCP matchers (rule_parse_tcp) */
    size_t nmatchers;        /* matchers parsed so far */
    struct rule_error *err;  /* where the first error goes */
};

/** A matcher name, its node kind and how many arguments it takes. */
struct rule_def {
    const char *name;   /* as written in rules (case-sensitive) */
    enum rule_kind kind; /* node kind */
    size_t min_args;    /* fewest arguments */
    size_t max_args;    /* most arguments */
};

static const struct rule_def rule_defs[] = {
    {"Host", RULE_HOST, 1, RULE_MAX_ARGS},
    {"HostRegexp", RULE_HOST_REGEXP, 1, 1},
    {"Path", RULE_PATH, 1, RULE_MAX_ARGS},
    {"PathPrefix", RULE_PATH_PREFIX, 1, RULE_MAX_ARGS},
    {"PathRegexp", RULE_PATH_REGEXP, 1, 1},
    {"Method", RULE_METHOD, 1, RULE_MAX_ARGS},
    {"Header", RULE_HEADER, 2, 2},
    {"HeaderRegexp", RULE_HEADER_REGEXP, 2, 2},
    {"Query", RULE_QUERY, 1, 2},
    {"QueryRegexp", RULE_QUERY_REGEXP, 2, 2},
    {"ClientIP", RULE_CLIENT_IP, 1, RULE_MAX_ARGS},
};

/* The matchers of TCP routers' rules (Traefik v3 tcp.routers). */
static const struct rule_def rule_tcp_defs[] = {
    {"HostSNI", RULE_HOST_SNI, 1, RULE_MAX_ARGS},
    {"HostSNIRegexp", RULE_HOST_SNI_REGEXP, 1, 1},
    {"ClientIP", RULE_CLIENT_IP, 1, RULE_MAX_ARGS},
    {"ALPN", RULE_ALPN, 1, RULE_MAX_ARGS},
};

/* ------------------------------------------------------------------ */
/* Per-thread match state                                              */
/* ------------------------------------------------------------------ */

/** Mutable state of one thread's matches. */
struct rule_tls {
    pcre2_match_data *md;       /* ovector for pcre2_match */
    pcre2_match_context *mctx;  /* match limit and JIT stack */
    pcre2_jit_stack *jit;       /* JIT stack, NULL when none */
    char *buf;                  /* query decoding scratch */
    size_t cap;                 /* its size, at most RULE_MAX_QUERY */
};

static __thread struct rule_tls *rule_tls_cur; /* this thread's state */
static pthread_key_t rule_tls_key;             /* frees it at thread exit */
static pthread_once_t rule_tls_once = PTHREAD_ONCE_INIT; /* creates the key */
static int rule_tls_key_ok;                    /* 1 when the key exists */

/** Frees one thread's state; NULL is a no-op.  Called by the key
 *  destructor on the exiting thread. */
static void rule_tls_free(void *p)
{
    struct rule_tls *t = p;

    if (!t) return;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mctx);
    pcre2_jit_stack_free(t->jit);
    free(t->buf);
    free(t);
    if (rule_tls_cur == t) rule_tls_cur = NULL;
}

/** pthread_once body: creates the key whose destructor frees state. */
static void rule_tls_make_key(void)
{
    rule_tls_key_ok = pthread_key_create(&rule_tls_key, rule_tls_free) == 0;
}

/** The calling thread's state, created on first use; NULL when out of
 *  memory (the caller then reports "no match"). */
static struct rule_tls *rule_tls_get(void)
{
    struct rule_tls *t = rule_tls_cur;

    if (t) return t;
    pthread_once(&rule_tls_once, rule_tls_make_key);
    t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->md = pcre2_match_data_create(RULE_MATCH_DATA_PAIRS, NULL);
    t->mctx = pcre2_match_context_create(NULL);
    if (!t->md || !t->mctx) goto fail;
    pcre2_set_match_limit(t->mctx, RULE_MATCH_LIMIT);
    t->jit = pcre2_jit_stack_create(RULE_JIT_STACK_MIN, RULE_JIT_STACK_MAX,
                                    NULL);
    if (t->jit) pcre2_jit_stack_assign(t->mctx, NULL, t->jit);
    if (rule_tls_key_ok) pthread_setspecific(rule_tls_key, t);
    rule_tls_cur = t;
    return t;
fail:
    rule_tls_free(t);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Tree                                                                */
/* ------------------------------------------------------------------ */

/** Frees a node and everything under it; NULL is a no-op.  Recursion is
 *  bounded by RULE_MAX_DEPTH (and-/or-chains are flat). */
static void rule_node_free(struct rule_node *n)
{
    size_t i;

    if (!n) return;
    for (i = 0; i < n->nkids; i++) rule_node_free(n->kids[i]);
    free(n->kids);
    for (i = 0; i < n->nargs; i++) free(n->args[i].s);
    free(n->args);
    free(n->cidrs);
    pcre2_code_free(n->re);
    free(n);
}

/** A new zeroed node of kind k, or NULL when out of memory. */
static struct rule_node *rule_node_new(enum rule_kind k)
{
    struct rule_node *n = calloc(1, sizeof(*n));

    if (n) n->kind = k;
    return n;
}

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

/** Records an error at 0-based offset pos (first error wins); returns
 *  NULL so callers can `return rule_fail(...)`. */
static void *rule_fail(struct rule_parser *p, size_t pos, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
static void *rule_fail(struct rule_parser *p, size_t pos, const char *fmt,
                       ...)
{
    va_list ap;

    if (p->err->column) return NULL;
    p->err->column = (int)pos + 1;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    return NULL;
}

/** Skips blanks (space, tab, CR, LF, VT, FF). */
static void rule_skip_ws(struct rule_parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' &&
            c != '\f')
            break;
        p->pos++;
    }
}

/** Current byte after blanks, or 0 at the end. */
static char rule_peek(struct rule_parser *p)
{
    rule_skip_ws(p);
    return p->pos < p->len ? p->text[p->pos] : 0;
}

/** 1 when the two bytes at the current position are c c (after blanks);
 *  consumes them then. */
static int rule_accept2(struct rule_parser *p, char c)
{
    rule_skip_ws(p);
    if (p->pos + 1 < p->len && p->text[p->pos] == c &&
        p->text[p->pos + 1] == c) {
        p->pos += 2;
        return 1;
    }
    return 0;
}

/** Parses one string literal at the current position (a backtick string,
 *  raw; or a double-quoted one with \" and \\ escapes).  On success fills
 *  *out with a malloc'd NUL-terminated copy and returns 0; on failure
 *  records the error and returns -1. */
static int rule_string(struct rule_parser *p, struct rule_str *out)
{
    size_t start = p->pos, i, n = 0;
    char q = p->text[p->pos];
    char *s;

    /* First pass: find the closing quote, check escapes, count bytes. */
    for (i = start + 1; i < p->len && p->text[i] != q; i++, n++) {
        if (q == '"' && p->text[i] == '\\') {
            char e = i + 1 < p->len ? p->text[i + 1] : 0;
            if (e != '"' && e != '\\') {
                rule_fail(p, i,
                          "invalid escape in double-quoted string (only \\\" "
                          "and \\\\ are allowed)");
                return -1;
            }
            i++;
        }
    }
    if (i >= p->len) {
        rule_fail(p, start, "unterminated string (missing closing %c)", q);
        return -1;
    }
    s = malloc(n + 1);
    if (!s) {
        rule_fail(p, start, "out of memory");
        return -1;
    }
    /* Second pass: copy, resolving escapes. */
    n = 0;
    for (i = start + 1; p->text[i] != q; i++) {
        if (q == '"' && p->text[i] == '\\') i++;
        s[n++] = p->text[i];
    }
    s[n] = 0;
    p->pos = i + 1;
    out->s = s;
    out->len = n;
    out->wildcard = 0;
    return 0;
}

/** Compiles a *Regexp argument (unanchored search, $ only at the very end
 *  like Go, UTF-8 tolerant of invalid input, caseless when asked) and
 *  JIT-compiles it when the library can.  Returns the code or NULL with
 *  the error recorded at the argument's column. */
static pcre2_code *rule_compile(struct rule_parser *p, const char *mname,
                                const struct rule_str *a, size_t col,
                                int caseless)
{
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF |
                    PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re;
    PCRE2_UCHAR msg[160];

    if (caseless) opts |= PCRE2_CASELESS;
    re = pcre2_compile((PCRE2_SPTR)a->s, a->len, opts, &ec, &eo, NULL);
    if (!re) {
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        return rule_fail(p, col,
                         "%s: invalid regular expression: %s at offset %zu",
                         mname, (const char *)msg, (size_t)eo);
    }
    /* Silently keep the interpreter when JIT is unsupported or fails. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/** Parses one address or CIDR of ClientIP into *c.  Returns 0, or -1 when
 *  it is neither (nothing recorded). */
static int rule_cidr_parse(const struct rule_str *a, struct rule_cidr *c)
{
    char buf[INET6_ADDRSTRLEN + 1];
    const char *slash = memchr(a->s, '/', a->len);
    size_t alen = slash ? (size_t)(slash - a->s) : a->len;
    int max, i;

    if (alen == 0 || alen >= sizeof(buf)) return -1;
    memcpy(buf, a->s, alen);
    buf[alen] = 0;
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    c->bits = max;
    if (slash) {
        const char *d = slash + 1, *end = a->s + a->len;
        int v = 0;
        if (d == end || end - d > 3) return -1;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9') return -1;
            v = v * 10 + (*d - '0');
        }
        if (v > max) return -1;
        c->bits = v;
    }
    /* Clear the host bits, as Go's net.ParseCIDR does. */
    for (i = 0; i < max / 8; i++) {
        int keep = c->bits - i * 8;
        if (keep >= 8) continue;
        c->addr[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
    }
    return 0;
}

/** 1 when the len bytes at s are all ASCII. */
static int rule_is_ascii(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/** Checks and prepares a matcher's arguments (lowercases hosts, compiles
 *  patterns, parses ranges) into n.  cols[i] is the 0-based offset of
 *  argument i.  Returns 0, or -1 with the error recorded. */
static int rule_build(struct rule_parser *p, const struct rule_def *d,
                      struct rule_node *n, const size_t *cols)
{
    size_t i, j;

    switch (d->kind) {
    case RULE_HOST:
        for (i = 0; i < n->nargs; i++) {
            struct rule_str *a = &n->args[i];
            if (a->len == 0) {
                rule_fail(p, cols[i], "Host: empty host");
                return -1;
            }
            if (!rule_is_ascii(a->s, a->len)) {
                rule_fail(p, cols[i],
                          "Host: non-ASCII characters are not allowed in "
                          "\"%s\"",
                          a->s);
                return -1;
            }
            for (j = 0; j < a->len; j++)
                if (a->s[j] >= 'A' && a->s[j] <= 'Z') a->s[j] += 'a' - 'A';
            /* "a.com." and "a.com" are the same host. */
            if (a->len > 1 && a->s[a->len - 1] == '.') a->s[--a->len] = 0;
            if (a->len > 2 && a->s[0] == '*' && a->s[1] == '.') {
                memmove(a->s, a->s + 2, a->len - 1);
                a->len -= 2;
                a->wildcard = 1;
            }
        }
        return 0;
    case RULE_HOST_REGEXP:
        if (!rule_is_ascii(n->args[0].s, n->args[0].len)) {
            rule_fail(p, cols[0],
                      "HostRegexp: non-ASCII characters are not allowed");
            return -1;
        }
        n->re = rule_compile(p, d->name, &n->args[0], cols[0], 1);
        return n->re ? 0 : -1;
    case RULE_PATH:
    case RULE_PATH_PREFIX:
        for (i = 0; i < n->nargs; i++) {
            if (n->args[i].len == 0 || n->args[i].s[0] != '/') {
                rule_fail(p, cols[i], "%s: path \"%s\" does not start with '/'",
                          d->name, n->args[i].s);
                return -1;
            }
        }
        return 0;
    case RULE_PATH_REGEXP:
        n->re = rule_compile(p, d->name, &n->args[0], cols[0], 0);
        return n->re ? 0 : -1;
    case RULE_METHOD:
        for (i = 0; i < n->nargs; i++) {
            if (n->args[i].len == 0) {
                rule_fail(p, cols[i], "Method: empty method");
                return -1;
            }
        }
        return 0;
    case RULE_HEADER:
    case RULE_HEADER_REGEXP:
        if (n->args[0].len == 0) {
            rule_fail(p, cols[0], "%s: empty header name", d->name);
            return -1;
        }
        if (d->kind == RULE_HEADER_REGEXP) {
            n->re = rule_compile(p, d->name, &n->args[1], cols[1], 0);
            return n->re ? 0 : -1;
        }
        return 0;
    case RULE_QUERY:
        return 0;
    case RULE_QUERY_REGEXP:
        n->re = rule_compile(p, d->name, &n->args[1], cols[1], 0);
        return n->re ? 0 : -1;
    case RULE_CLIENT_IP:
        n->cidrs = calloc(n->nargs, sizeof(*n->cidrs));
        if (!n->cidrs) {
            rule_fail(p, cols[0], "out of memory");
            return -1;
        }
        for (i = 0; i < n->nargs; i++) {
            if (rule_cidr_parse(&n->args[i], &n->cidrs[i]) < 0) {
                rule_fail(p, cols[i],
                          "ClientIP: invalid IP address or CIDR \"%s\"",
                          n->args[i].s);
                return -1;
            }
        }
        n->ncidrs = n->nargs;
        return 0;
    case RULE_HOST_SNI:
        for (i = 0; i < n->nargs; i++) {
            struct rule_str *a = &n->args[i];
            if (a->len == 0) {
                rule_fail(p, cols[i], "HostSNI: empty host");
                return -1;
            }
            if (!rule_is_ascii(a->s, a->len)) {
                rule_fail(p, cols[i], "HostSNI: non-ASCII characters are not allowed in \"%s\"",
                          a->s);
                return -1;
            }
            for (j = 0; j < a->len; j++)
                if (a->s[j] >= 'A' && a->s[j] <= 'Z') a->s[j] += 'a' - 'A';
            if (a->len > 1 && a->s[a->len - 1] == '.') a->s[--a->len] = 0;
            if (a->len > 2 && a->s[0] == '*' && a->s[1] == '.') {
                memmove(a->s, a->s + 2, a->len - 1);
                a->len -= 2;
                a->wildcard = 1;
            } else if (a->len == 1 && a->s[0] == '*' && n->nargs > 1) {
                rule_fail(p, cols[i], "HostSNI: `*` must be the only argument");
                return -1;
            }
        }
        return 0;
    case RULE_HOST_SNI_REGEXP:
        if (!rule_is_ascii(n->args[0].s, n->args[0].len)) {
            rule_fail(p, cols[0], "HostSNIRegexp: non-ASCII characters are not allowed");
            return -1;
        }
        n->re = rule_compile(p, d->name, &n->args[0], cols[0], 1);
        return n->re ? 0 : -1;
    case RULE_ALPN:
        for (i = 0; i < n->nargs; i++) {
            if (n->args[i].len == 0 || n->args[i].len > 255) {
                rule_fail(p, cols[i], "ALPN: a protocol name has 1 to 255 bytes");
                return -1;
            }
            if (!strcmp(n->args[i].s, "acme-tls/1")) {
                rule_fail(p, cols[i], "ALPN: \"acme-tls/1\" is reserved for ACME challenges");
                return -1;
            }
        }
        return 0;
    default:
        return 0;
    }
}

/** Parses a matcher at the current position (an identifier), its
 *  parenthesised argument list, and builds its leaf.  Returns the node or
 *  NULL with the error recorded. */
static struct rule_node *rule_matcher(struct rule_parser *p)
{
    size_t start = p->pos, nlen, i, cap = 0, ndefs;
    const struct rule_def *d = NULL, *defs;
    struct rule_node *n = NULL;
    size_t *cols = NULL;
    char c;

    while (p->pos < p->len) {
        c = p->text[p->pos];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_'))
            break;
        p->pos++;
    }
    nlen = p->pos - start;
    defs = p->tcp ? rule_tcp_defs : rule_defs;
    ndefs = p->tcp ? sizeof(rule_tcp_defs) / sizeof(rule_tcp_defs[0])
                   : sizeof(rule_defs) / sizeof(rule_defs[0]);
    for (i = 0; i < ndefs; i++) {
        if (strlen(defs[i].name) == nlen &&
            !memcmp(defs[i].name, p->text + start, nlen)) {
            d = &defs[i];
            break;
        }
    }
    if (!d) {
        /* Suggest the right spelling when only the case differs. */
        for (i = 0; i < ndefs; i++) {
            if (strlen(defs[i].name) == nlen &&
                !strncasecmp(defs[i].name, p->text + start, nlen))
                return rule_fail(p, start,
                                 "unknown matcher \"%.*s\" (matcher names "
                                 "are case-sensitive: did you mean \"%s\"?)",
                                 (int)(nlen > 64 ? 64 : nlen),
                                 p->text + start, defs[i].name);
        }
        if (p->tcp)
            return rule_fail(p, start,
                             "unknown matcher \"%.*s\" (TCP rules use HostSNI, "
                             "HostSNIRegexp, ClientIP and ALPN)",
                             (int)(nlen > 64 ? 64 : nlen), p->text + start);
        return rule_fail(p, start, "unknown matcher \"%.*s\"",
                         (int)(nlen > 64 ? 64 : nlen), p->text + start);
    }
    if (p->nmatchers >= RULE_MAX_MATCHERS)
        return rule_fail(p, start, "too many matchers (the limit is %d)",
                         RULE_MAX_MATCHERS);
    p->nmatchers++;
    if (rule_peek(p) != '(')
        return rule_fail(p, p->pos, "expected '(' after matcher name %s",
                         d->name);
    p->pos++;
    n = rule_node_new(d->kind);
    if (!n) return rule_fail(p, start, "out of memory");
    for (;;) {
        c = rule_peek(p);
        if (c != '`' && c != '"') {
            rule_fail(p, p->pos,
                      "expected a string argument in backticks or double "
                      "quotes");
            goto fail;
        }
        if (n->nargs == RULE_MAX_ARGS) {
            rule_fail(p, p->pos, "%s: too many arguments (the limit is %d)",
                      d->name, RULE_MAX_ARGS);
            goto fail;
        }
        if (n->nargs == cap) {
            size_t ncap = cap ? cap * 2 : 2;
            struct rule_str *na;
            size_t *nc;
            if (ncap > RULE_MAX_ARGS) ncap = RULE_MAX_ARGS;
            na = realloc(n->args, ncap * sizeof(*na));
            if (!na) {
                rule_fail(p, p->pos, "out of memory");
                goto fail;
            }
            n->args = na;
            nc = realloc(cols, ncap * sizeof(*nc));
            if (!nc) {
                rule_fail(p, p->pos, "out of memory");
                goto fail;
            }
            cols = nc;
            cap = ncap;
        }
        cols[n->nargs] = p->pos;
        if (rule_string(p, &n->args[n->nargs]) < 0) goto fail;
        n->nargs++;
        c = rule_peek(p);
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == ')') {
            p->pos++;
            break;
        }
        rule_fail(p, p->pos, "expected ')' or ',' after argument");
        goto fail;
    }
    if (n->nargs < d->min_args || n->nargs > d->max_args) {
        if (d->min_args == d->max_args)
            rule_fail(p, start, "%s: expected %zu argument%s, got %zu",
                      d->name, d->min_args, d->min_args == 1 ? "" : "s",
                      n->nargs);
        else
            rule_fail(p, start, "%s: expected %zu to %zu arguments, got %zu",
                      d->name, d->min_args, d->max_args, n->nargs);
        goto fail;
    }
    if (rule_build(p, d, n, cols) < 0) goto fail;
    free(cols);
    return n;
fail:
    free(cols);
    rule_node_free(n);
    return NULL;
}

static struct rule_node *rule_or(struct rule_parser *p);

/** unary := '!' unary | '(' or ')' | matcher.  Returns the node or NULL
 *  with the error recorded. */
static struct rule_node *rule_unary(struct rule_parser *p)
{
    char c = rule_peek(p);
    size_t start = p->pos;
    struct rule_node *n, *k;

    if (c == '!' || c == '(') {
        if (p->depth >= RULE_MAX_DEPTH)
            return rule_fail(p, start, "nesting deeper than %d levels",
                             RULE_MAX_DEPTH);
        p->depth++;
        p->pos++;
        if (c == '!') {
            k = rule_unary(p);
            if (!k) return NULL;
            n = rule_node_new(RULE_NOT);
            if (n) n->kids = malloc(sizeof(*n->kids));
            if (!n || !n->kids) {
                rule_node_free(n);
                rule_node_free(k);
                return rule_fail(p, start, "out of memory");
            }
            n->kids[0] = k;
            n->nkids = 1;
        } else {
            n = rule_or(p);
            if (!n) return NULL;
            if (rule_peek(p) != ')') {
                rule_node_free(n);
                return rule_fail(p, p->pos, "expected '&&', '||' or ')'");
            }
            p->pos++;
        }
        p->depth--;
        return n;
    }
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_')
        return rule_matcher(p);
    if (p->pos >= p->len)
        return rule_fail(p, p->pos,
                         "expected a matcher, '(' or '!' but the rule ended");
    return rule_fail(p, p->pos, "expected a matcher, '(' or '!'");
}

/** Parses a chain of operands joined by op ("&&" when kind is RULE_AND,
 *  "||" for RULE_OR) into one n-ary node (or the single operand itself).
 *  Returns the node or NULL with the error recorded. */
static struct rule_node *rule_chain(struct rule_parser *p, enum rule_kind kind)
{
    struct rule_node *first, *n = NULL, *k;
    size_t cap = 0;
    char op = kind == RULE_AND ? '&' : '|';

    first = kind == RULE_AND ? rule_unary(p) : rule_chain(p, RULE_AND);
    if (!first) return NULL;
    while (rule_accept2(p, op)) {
        k = kind == RULE_AND ? rule_unary(p) : rule_chain(p, RULE_AND);
        if (!k) goto fail;
        if (!n) {
            n = rule_node_new(kind);
            if (!n) {
                rule_node_free(k);
                rule_fail(p, p->pos, "out of memory");
                goto fail;
            }
            n->kids = malloc(4 * sizeof(*n->kids));
            if (!n->kids) {
                rule_node_free(k);
                rule_fail(p, p->pos, "out of memory");
                goto fail;
            }
            cap = 4;
            n->kids[n->nkids++] = first;
            first = NULL;
        }
        /* Every operand holds a matcher, so nkids <= RULE_MAX_MATCHERS. */
        if (n->nkids == cap) {
            struct rule_node **nk = realloc(n->kids, 2 * cap * sizeof(*nk));
            if (!nk) {
                rule_node_free(k);
                rule_fail(p, p->pos, "out of memory");
                goto fail;
            }
            n->kids = nk;
            cap *= 2;
        }
        n->kids[n->nkids++] = k;
    }
    return n ? n : first;
fail:
    rule_node_free(first);
    rule_node_free(n);
    return NULL;
}

/** or := and ('||' and)* */
static struct rule_node *rule_or(struct rule_parser *p)
{
    return rule_chain(p, RULE_OR);
}

/** Parses text with the HTTP (tcp = 0) or TCP (tcp = 1) matchers. */
static rule_t *rule_parse_mode(const char *text, struct rule_error *err, int tcp)
{
    struct rule_error dummy;
    struct rule_parser p;
    struct rule_node *root;
    rule_t *r;

    if (!err) err = &dummy;
    memset(err, 0, sizeof(*err));
    memset(&p, 0, sizeof(p));
    p.err = err;
    p.tcp = tcp;
    if (!text) {
        rule_fail(&p, 0, "empty rule");
        return NULL;
    }
    p.text = text;
    p.len = strnlen(text, RULE_MAX_TEXT + 1);
    if (p.len > RULE_MAX_TEXT) {
        rule_fail(&p, 0, "rule longer than %d bytes", RULE_MAX_TEXT);
        return NULL;
    }
    if (rule_peek(&p) == 0 && p.pos >= p.len) {
        rule_fail(&p, 0, "empty rule");
        return NULL;
    }
    root = rule_or(&p);
    if (!root) return NULL;
    if (rule_peek(&p) != 0 || p.pos < p.len) {
        rule_node_free(root);
        rule_fail(&p, p.pos, "expected '&&', '||' or end of rule");
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        rule_node_free(root);
        rule_fail(&p, 0, "out of memory");
        return NULL;
    }
    r->root = root;
    r->nmatchers = p.nmatchers;
    return r;
}

rule_t *rule_parse(const char *text, struct rule_error *err)
{
    return rule_parse_mode(text, err, 0);
}

rule_t *rule_parse_tcp(const char *text, struct rule_error *err)
{
    return rule_parse_mode(text, err, 1);
}

void rule_free(rule_t *r)
{
    if (!r) return;
    rule_node_free(r->root);
    free(r);
}

/* ------------------------------------------------------------------ */
/* Matching                                                            */
/* ------------------------------------------------------------------ */

/** 1 when re finds a match anywhere in the len bytes at s (NULL = ""). */
static int rule_search(const pcre2_code *re, const char *s, size_t len)
{
    struct rule_tls *t = rule_tls_get();

    if (!t) return 0;
    if (!s) {
        s = "";
        len = 0;
    }
    /* 0 means "ovector too small", still a match. */
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, t->md, t->mctx) >= 0;
}

/** 1 when the n bytes at a equal those at lower ignoring ASCII case;
 *  lower is already lowercase.  (strncasecmp is locale-aware and slower.) */
static inline int rule_eq_nocase(const char *a, const char *lower, size_t n)
{
    size_t i;

    /* Hosts usually arrive lowercase already. */
    if (!memcmp(a, lower, n)) return 1;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c != (unsigned char)lower[i]) return 0;
    }
    return 1;
}

/** 1 when the request host equals one of the Host arguments or ends in a
 *  wildcard's ".suffix" with at least one byte before the dot. */
static int rule_host_match(const struct rule_node *n, const char *h,
                           size_t hl)
{
    size_t i;

    if (!h || hl == 0) return 0;
    if (hl > 1 && h[hl - 1] == '.') hl--;
    for (i = 0; i < n->nargs; i++) {
        const struct rule_str *a = &n->args[i];
        if (a->wildcard) {
            if (hl > a->len + 1 && h[hl - a->len - 1] == '.' &&
                rule_eq_nocase(h + hl - a->len, a->s, a->len))
                return 1;
        } else if (hl == a->len && rule_eq_nocase(h, a->s, hl)) {
            return 1;
        }
    }
    return 0;
}

/** Value of a hex digit, or -1. */
static int rule_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/** Decodes a query component (%XX and '+' as space, like Go's
 *  url.QueryUnescape) of len bytes at s into out (room for len bytes).
 *  Returns the decoded length, or -1 on a malformed escape. */
static long rule_unescape(const char *s, size_t len, char *out)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi, lo;
            if (i + 2 >= len) return -1;
            hi = rule_hex(s[i + 1]);
            lo = rule_hex(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (s[i] == '+') {
            out[n++] = ' ';
        } else {
            out[n++] = s[i];
        }
    }
    return (long)n;
}

/** Query and QueryRegexp: walks the raw query as Go's url.ParseQuery does
 *  ('&'-separated pairs, split at the first '=', pairs containing ';' or a
 *  malformed escape skipped) and tests each pair whose decoded key is
 *  args[0]. */
static int rule_query_match(const struct rule_node *n,
                            const struct rule_req *req)
{
    const char *q = req->query, *end, *pair, *pe, *eq;
    struct rule_tls *t;
    long kl, vl;

    if (!q || req->query_len > RULE_MAX_QUERY) return 0;
    t = rule_tls_get();
    if (!t) return 0;
    if (t->cap < req->query_len) {
        size_t ncap = t->cap ? t->cap : 256;
        char *nb;
        while (ncap < req->query_len) ncap *= 2;
        if (ncap > RULE_MAX_QUERY) ncap = RULE_MAX_QUERY;
        nb = realloc(t->buf, ncap);
        if (!nb) return 0;
        t->buf = nb;
        t->cap = ncap;
    }
    end = q + req->query_len;
    for (pair = q; pair < end; pair = pe + 1) {
        pe = memchr(pair, '&', (size_t)(end - pair));
        if (!pe) pe = end;
        if (pe == pair || memchr(pair, ';', (size_t)(pe - pair))) continue;
        eq = memchr(pair, '=', (size_t)(pe - pair));
        kl = rule_unescape(pair, (size_t)((eq ? eq : pe) - pair), t->buf);
        if (kl < 0 || (size_t)kl != n->args[0].len ||
            memcmp(t->buf, n->args[0].s, (size_t)kl))
            continue;
        if (eq) {
            vl = rule_unescape(eq + 1, (size_t)(pe - eq - 1), t->buf);
            if (vl < 0) continue;
        } else {
            vl = 0;
        }
        if (n->kind == RULE_QUERY) {
            if (n->nargs == 1) return 1;
            if ((size_t)vl == n->args[1].len &&
                !memcmp(t->buf, n->args[1].s, (size_t)vl))
                return 1;
        } else if (rule_search(n->re, t->buf, (size_t)vl)) {
            return 1;
        }
    }
    return 0;
}

/** Header and HeaderRegexp: 1 when some value of header args[0] (at most
 *  RULE_MAX_HEADER_VALUES are examined) equals args[1] / matches re. */
static int rule_header_match(const struct rule_node *n,
                             const struct rule_req *req)
{
    size_t i, vl;
    const char *v;

    if (!req->header) return 0;
    for (i = 0; i < RULE_MAX_HEADER_VALUES; i++) {
        vl = 0;
        v = req->header(req->header_arg, n->args[0].s, n->args[0].len, i, &vl);
        if (!v) break;
        if (n->kind == RULE_HEADER) {
            if (vl == n->args[1].len && (vl == 0 || !memcmp(v, n->args[1].s, vl)))
                return 1;
        } else if (rule_search(n->re, v, vl)) {
            return 1;
        }
    }
    return 0;
}

/** 1 when the 16- or 4-byte address a lies in c (same family). */
static int rule_cidr_has(const struct rule_cidr *c, const unsigned char *a)
{
    int full = c->bits / 8, rest = c->bits % 8;

    if (full && memcmp(a, c->addr, (size_t)full)) return 0;
    if (rest) {
        unsigned char m = (unsigned char)(0xff << (8 - rest));
        if ((a[full] & m) != c->addr[full]) return 0;
    }
    return 1;
}

/** ClientIP: 1 when the client address is in one of the ranges; an
 *  IPv4-mapped IPv6 client is also tested against the IPv4 ranges. */
static int rule_client_match(const struct rule_node *n,
                             const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *v4 = NULL, *v6 = NULL;
    size_t i;

    if (!sa) return 0;
    if (sa->sa_family == AF_INET) {
        v4 = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)
                 ->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        v6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (!memcmp(v6, mapped, sizeof(mapped))) v4 = v6 + 12;
    } else {
        return 0;
    }
    for (i = 0; i < n->ncidrs; i++) {
        const struct rule_cidr *c = &n->cidrs[i];
        if (c->family == AF_INET ? v4 && rule_cidr_has(c, v4)
                                 : v6 && rule_cidr_has(c, v6))
            return 1;
    }
    return 0;
}

/** 1 when the len bytes at s equal one of n's args (case-insensitively
 *  when nocase), or start with one when prefix. */
static int rule_str_match(const struct rule_node *n, const char *s,
                          size_t len, int prefix, int nocase)
{
    size_t i;

    if (!s) {
        s = "";
        len = 0;
    }
    for (i = 0; i < n->nargs; i++) {
        const struct rule_str *a = &n->args[i];
        if (prefix ? len < a->len : len != a->len) continue;
        if (nocase ? !strncasecmp(s, a->s, a->len) : !memcmp(s, a->s, a->len))
            return 1;
    }
    return 0;
}

/** Evaluates node n against req, short-circuiting.  Read-only on n;
 *  recursion bounded by RULE_MAX_DEPTH. */
static int rule_eval(const struct rule_node *n, const struct rule_req *req)
{
    size_t i;

    switch (n->kind) {
    case RULE_AND:
        for (i = 0; i < n->nkids; i++)
            if (!rule_eval(n->kids[i], req)) return 0;
        return 1;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++)
            if (rule_eval(n->kids[i], req)) return 1;
        return 0;
    case RULE_NOT:
        return !rule_eval(n->kids[0], req);
    case RULE_HOST:
        return rule_host_match(n, req->host, req->host_len);
    case RULE_HOST_REGEXP:
        return req->host && rule_search(n->re, req->host, req->host_len);
    case RULE_PATH:
        return rule_str_match(n, req->path, req->path_len, 0, 0);
    case RULE_PATH_PREFIX:
        return rule_str_match(n, req->path, req->path_len, 1, 0);
    case RULE_PATH_REGEXP:
        return rule_search(n->re, req->path, req->path_len);
    case RULE_METHOD:
        return req->method &&
               rule_str_match(n, req->method, req->method_len, 0, 1);
    case RULE_HEADER:
    case RULE_HEADER_REGEXP:
        return rule_header_match(n, req);
    case RULE_QUERY:
    case RULE_QUERY_REGEXP:
        return rule_query_match(n, req);
    case RULE_CLIENT_IP:
        return rule_client_match(n, req->client);
    case RULE_HOST_SNI:
    case RULE_HOST_SNI_REGEXP:
    case RULE_ALPN:
        return 0; /* TCP matchers never match an HTTP request */
    }
    return 0;
}

int rule_match(const rule_t *r, const struct rule_req *req)
{
    if (!r || !req) return 0;
    return rule_eval(r->root, req);
}

/* ------------------------------------------------------------------ */
/* Host hints                                                          */
/* ------------------------------------------------------------------ */

/** Number of hosts (with repeats) that bound n, or 0 when unbounded:
 *  Host → its args; && → the smallest bounded operand; || → the sum when
 *  every operand is bounded; anything else → 0. */
static size_t rule_hosts_count(const struct rule_node *n)
{
    size_t i, c, best = 0;

    switch (n->kind) {
    case RULE_HOST:
        return n->nargs;
    case RULE_AND:
        for (i = 0; i < n->nkids; i++) {
            c = rule_hosts_count(n->kids[i]);
            if (c && (!best || c < best)) best = c;
        }
        return best;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++) {
            c = rule_hosts_count(n->kids[i]);
            if (!c) return 0;
            best += c;
        }
        return best;
    default:
        return 0;
    }
}

/** Appends the hosts counted by rule_hosts_count(n) (> 0) to out at *k;
 *  out has room for them. */
static void rule_hosts_collect(const struct rule_node *n,
                               const struct rule_str **out, size_t *k)
{
    size_t i, c, best = 0, bi = 0;

    switch (n->kind) {
    case RULE_HOST:
        for (i = 0; i < n->nargs; i++) out[(*k)++] = &n->args[i];
        return;
    case RULE_AND:
        for (i = 0; i < n->nkids; i++) {
            c = rule_hosts_count(n->kids[i]);
            if (c && (!best || c < best)) {
                best = c;
                bi = i;
            }
        }
        rule_hosts_collect(n->kids[bi], out, k);
        return;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++) rule_hosts_collect(n->kids[i], out, k);
        return;
    default:
        return;
    }
}

/** qsort order of host pointers: by wildcard flag, then length, then
 *  bytes (0 when equal). */
static int rule_hosts_cmp(const void *x, const void *y)
{
    const struct rule_str *a = *(const struct rule_str *const *)x;
    const struct rule_str *b = *(const struct rule_str *const *)y;

    if (a->wildcard != b->wildcard) return a->wildcard - b->wildcard;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return memcmp(a->s, b->s, a->len);
}

int rule_hosts(const rule_t *r,
               void (*cb)(void *arg, const char *host, size_t len,
                          int wildcard),
               void *arg)
{
    const struct rule_str **hs;
    size_t n, k = 0, i;

    if (!r || !cb) return 0;
    n = rule_hosts_count(r->root);
    if (!n) return 0;
    hs = malloc(n * sizeof(*hs));
    if (!hs) return 0; /* no hint is always safe */
    rule_hosts_collect(r->root, hs, &k);
    /* Sort so repeats are adjacent; report each distinct one once. */
    qsort(hs, k, sizeof(*hs), rule_hosts_cmp);
    for (i = 0; i < k; i++)
        if (i == 0 || rule_hosts_cmp(&hs[i - 1], &hs[i]))
            cb(arg, hs[i]->s, hs[i]->len, hs[i]->wildcard);
    free(hs);
    return 1;
}

/* ------------------------------------------------------------------ */
/* TCP rules                                                           */
/* ------------------------------------------------------------------ */

/** HostSNI: "*" matches every connection (TLS or not); a name matches the
 *  ClientHello's server name, case-insensitively; "*.suffix" as Host. */
static int rule_sni_match(const struct rule_node *n, const struct rule_tcp_req *req)
{
    size_t i, hl = req->sni ? req->sni_len : 0;
    const char *h = req->sni;

    for (i = 0; i < n->nargs; i++) {
        const struct rule_str *a = &n->args[i];
        if (!a->wildcard && a->len == 1 && a->s[0] == '*') return 1;
    }
    if (!h || hl == 0) return 0;
    return rule_host_match(n, h, hl);
}

/** ALPN: 1 when one of the offered protocols equals one of args. */
static int rule_alpn_match(const struct rule_node *n, const struct rule_tcp_req *req)
{
    size_t i, j;

    for (j = 0; j < req->nalpn; j++) {
        size_t l = strlen(req->alpn[j]);
        for (i = 0; i < n->nargs; i++)
            if (n->args[i].len == l && !memcmp(n->args[i].s, req->alpn[j], l)) return 1;
    }
    return 0;
}

/** Evaluates a TCP rule's node n against req (short-circuit; recursion
 *  bounded by RULE_MAX_DEPTH). */
static int rule_eval_tcp(const struct rule_node *n, const struct rule_tcp_req *req)
{
    size_t i;

    switch (n->kind) {
    case RULE_AND:
        for (i = 0; i < n->nkids; i++)
            if (!rule_eval_tcp(n->kids[i], req)) return 0;
        return 1;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++)
            if (rule_eval_tcp(n->kids[i], req)) return 1;
        return 0;
    case RULE_NOT:
        return !rule_eval_tcp(n->kids[0], req);
    case RULE_HOST_SNI:
        return rule_sni_match(n, req);
    case RULE_HOST_SNI_REGEXP:
        return req->sni && req->sni_len && rule_search(n->re, req->sni, req->sni_len);
    case RULE_ALPN:
        return rule_alpn_match(n, req);
    case RULE_CLIENT_IP:
        return rule_client_match(n, req->client);
    default:
        return 0; /* HTTP matchers are never in a TCP rule */
    }
}

int rule_match_tcp(const rule_t *r, const struct rule_tcp_req *req)
{
    if (!r || !req) return 0;
    return rule_eval_tcp(r->root, req);
}

int rule_tcp_catchall(const rule_t *r)
{
    const struct rule_node *n = r ? r->root : NULL;

    return n && n->kind == RULE_HOST_SNI && n->nargs == 1 && !n->args[0].wildcard &&
           n->args[0].len == 1 && n->args[0].s[0] == '*';
}

/** 1 when node n (or a node under it) needs a server name: HostSNI with a
 *  name, or HostSNIRegexp. */
static int rule_node_needs_sni(const struct rule_node *n)
{
    size_t i;

    if (n->kind == RULE_HOST_SNI_REGEXP) return 1;
    if (n->kind == RULE_HOST_SNI) {
        for (i = 0; i < n->nargs; i++)
            if (n->args[i].wildcard || n->args[i].len != 1 || n->args[i].s[0] != '*') return 1;
        return 0;
    }
    for (i = 0; i < n->nkids; i++)
        if (rule_node_needs_sni(n->kids[i])) return 1;
    return 0;
}

int rule_tcp_needs_sni(const rule_t *r)
{
    return r && rule_node_needs_sni(r->root);
}

/** Number of HostSNI names bounding n as rule_hosts_count does for Host
 *  (0 = unbounded, e.g. HostSNI(`*`)). */
static size_t rule_sni_count(const struct rule_node *n)
{
    size_t i, c, best = 0;

    switch (n->kind) {
    case RULE_HOST_SNI:
        for (i = 0; i < n->nargs; i++)
            if (!n->args[i].wildcard && n->args[i].len == 1 && n->args[i].s[0] == '*') return 0;
        return n->nargs;
    case RULE_AND:
        for (i = 0; i < n->nkids; i++) {
            c = rule_sni_count(n->kids[i]);
            if (c && (!best || c < best)) best = c;
        }
        return best;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++) {
            c = rule_sni_count(n->kids[i]);
            if (!c) return 0;
            best += c;
        }
        return best;
    default:
        return 0;
    }
}

/** Calls cb for the names counted by rule_sni_count(n) (> 0). */
static void rule_sni_collect(const struct rule_node *n,
                             void (*cb)(void *arg, const char *host, size_t len, int wildcard),
                             void *arg)
{
    size_t i, c, best = 0, bi = 0;

    switch (n->kind) {
    case RULE_HOST_SNI:
        for (i = 0; i < n->nargs; i++) cb(arg, n->args[i].s, n->args[i].len, n->args[i].wildcard);
        return;
    case RULE_AND:
        for (i = 0; i < n->nkids; i++) {
            c = rule_sni_count(n->kids[i]);
            if (c && (!best || c < best)) {
                best = c;
                bi = i;
            }
        }
        rule_sni_collect(n->kids[bi], cb, arg);
        return;
    case RULE_OR:
        for (i = 0; i < n->nkids; i++) rule_sni_collect(n->kids[i], cb, arg);
        return;
    default:
        return;
    }
}

int rule_sni_hosts(const rule_t *r,
                   void (*cb)(void *arg, const char *host, size_t len, int wildcard),
                   void *arg)
{
    if (!r || !cb || !rule_sni_count(r->root)) return 0;
    rule_sni_collect(r->root, cb, arg);
    return 1;
}
