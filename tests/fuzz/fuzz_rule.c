/*
 * fuzz_rule — libFuzzer target for the router rule language (src/rule.c):
 * rule_parse / rule_parse_tcp, rule_match / rule_match_tcp, rule_hosts /
 * rule_sni_hosts, rule_free.
 *
 * Input: the rule text, optionally followed by a NUL byte and a request
 * description, one item per line:
 *     method \n host \n path \n query \n Name: value \n Name: value ...
 * (a missing line is an absent item; the host is also the TLS server name
 * and the header values named "alpn" the offered ALPN protocols of the
 * TCP connection).  The rule is matched against that request and a fixed
 * set of requests, each from four client addresses.
 *
 * Properties checked (abort on violation):
 *  - a rule that does not parse reports a column in 1..len+1 and a
 *    non-empty message;
 *  - matching is deterministic (same answer twice);
 *  - "!(" rule ")" parses (unless over the nesting limit) and matches
 *    exactly the requests the rule does not; "(" rule ")&&(" rule ")"
 *    and "||" match exactly what the rule matches (or fail only on the
 *    limits: nesting, matcher count, length);
 *  - rule_hosts (an index hint) never lies: when it returns 1 the hosts
 *    it reports are lowercase, distinct, and every request the rule
 *    matches has a host (lowercased, one trailing dot removed) that is one
 *    of them or ends in "." + one of the wildcard suffixes;
 *  - TCP: the same for rule_sni_hosts and the server name; a bounded TCP
 *    rule never matches a connection without a server name;
 *    rule_tcp_catchall implies every connection matches.
 *
 * Build and run: tests/fuzz/run.sh (see tests/fuzz/README.md).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "rule.h"

#define FZ_MAX_TEXT 8192    /* longest rule text tried (keeps runs fast) */
#define FZ_MAX_HEADERS 8    /* header lines read from the input */
#define FZ_MAX_HOSTS 256    /* hosts a hint may report before we stop */
#define FZ_NCLIENTS 4       /* client addresses each request is tried from */

#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_rule: property violated: %s (%s:%d)\n",     \
                    #cond, __FILE__, __LINE__);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

/** A request under test: the strings rule_req points into. */
struct fz_req {
    const char *method;             /* method, NULL when absent */
    const char *host;               /* host (also the SNI), NULL if absent */
    const char *path;               /* path, NULL when absent */
    const char *query;              /* raw query, NULL when absent */
    const char *hname[FZ_MAX_HEADERS]; /* header names */
    const char *hval[FZ_MAX_HEADERS];  /* header values */
    size_t nh;                      /* headers used */
};

/** Hosts reported by a hint callback. */
struct fz_hosts {
    char *host[FZ_MAX_HOSTS]; /* copies, NUL-terminated */
    size_t len[FZ_MAX_HOSTS]; /* their lengths */
    int wild[FZ_MAX_HOSTS];   /* wildcard flags */
    size_t n;                 /* used */
    int overflow;             /* more than FZ_MAX_HOSTS were reported */
};

/** The fixed requests every rule is matched against. */
static const struct fz_req fz_fixed[] = {
    {"GET", "example.com", "/", NULL, {NULL}, {NULL}, 0},
    {"POST", "API.Example.COM.", "/api/v1/users", "id=7&x=%41+b&flag",
     {"Content-Type", "X-Forwarded-Proto", "x-forwarded-proto"},
     {"application/json", "https", "wss"}, 3},
    {"get", "a.b.c.example.org", "/static/app.js", "", {"Host"}, {"x"}, 1},
    {"DELETE", "", "", "q=%zz&;=1&=&a=", {NULL}, {NULL}, 0},
    {NULL, NULL, NULL, NULL, {NULL}, {NULL}, 0},
    {"PUT", "[::1]", "/%2F..%2f/a b", "k=v;w", {"alpn", "alpn"},
     {"h2", "http/1.1"}, 2},
    {"OPTIONS", ".", "*", "a=1&a=2&b", {"Accept"}, {""}, 1},
    {"PATCH", "xn--bcher-kva.example", "/caf\xc3\xa9/\xff", "%C3%A9=\xff",
     {"User-Agent"}, {"Mozilla/5.0 \x01\x7f"}, 1},
};

/** Client addresses tried for every request. */
static const char *const fz_clients[FZ_NCLIENTS] = {
    "127.0.0.1", "10.1.2.3", "::ffff:192.168.0.9", "2001:db8::1"};

/** Header callback: idx-th value of name (any case) in the fz_req. */
static const char *fz_header(void *arg, const char *name, size_t nlen,
                             size_t idx, size_t *vlen)
{
    const struct fz_req *q = arg;
    size_t i, seen = 0;

    for (i = 0; i < q->nh; i++) {
        if (strlen(q->hname[i]) != nlen || strncasecmp(q->hname[i], name, nlen))
            continue;
        if (seen++ == idx) {
            *vlen = strlen(q->hval[i]);
            return q->hval[i];
        }
    }
    return NULL;
}

/** Fills *r from q with client address ss (filled from clients[ci]). */
static void fz_rule_req(const struct fz_req *q, int ci,
                        struct sockaddr_storage *ss, struct rule_req *r)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, fz_clients[ci], &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, fz_clients[ci], &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
    memset(r, 0, sizeof *r);
    r->method = q->method;
    r->method_len = q->method ? strlen(q->method) : 0;
    r->host = q->host;
    r->host_len = q->host ? strlen(q->host) : 0;
    r->path = q->path;
    r->path_len = q->path ? strlen(q->path) : 0;
    r->query = q->query;
    r->query_len = q->query ? strlen(q->query) : 0;
    r->client = (const struct sockaddr *)ss;
    r->header = fz_header;
    r->header_arg = (void *)q;
}

/** Hint callback: records one host. */
static void fz_host_cb(void *arg, const char *host, size_t len, int wildcard)
{
    struct fz_hosts *h = arg;

    if (h->n == FZ_MAX_HOSTS) {
        h->overflow = 1;
        return;
    }
    h->host[h->n] = malloc(len + 1);
    if (!h->host[h->n]) abort();
    memcpy(h->host[h->n], host, len);
    h->host[h->n][len] = 0;
    h->len[h->n] = len;
    h->wild[h->n] = wildcard;
    h->n++;
}

/** Frees the copies of a host set. */
static void fz_hosts_free(struct fz_hosts *h)
{
    size_t i;

    for (i = 0; i < h->n; i++) free(h->host[i]);
    h->n = 0;
}

/** Checks a reported host set: lowercase, distinct entries. */
static void fz_hosts_sane(const struct fz_hosts *h)
{
    size_t i, j;

    for (i = 0; i < h->n; i++) {
        FZ_CHECK(h->len[i] > 0);
        FZ_CHECK(strlen(h->host[i]) == h->len[i]);
        for (j = 0; j < h->len[i]; j++)
            FZ_CHECK(!(h->host[i][j] >= 'A' && h->host[i][j] <= 'Z'));
        for (j = 0; j < i; j++)
            FZ_CHECK(!(h->wild[i] == h->wild[j] && h->len[i] == h->len[j] &&
                       !memcmp(h->host[i], h->host[j], h->len[i])));
    }
}

/**
 * 1 when host (as a request carries it) is covered by the hint set: the
 * lowercased host with one trailing dot removed equals an exact entry or
 * ends in "." + a wildcard suffix with at least one byte before the dot.
 */
static int fz_hosts_cover(const struct fz_hosts *h, const char *host)
{
    size_t hl = host ? strlen(host) : 0, i, j;
    char *c;
    int ok = 0;

    if (hl == 0) return 0;
    c = malloc(hl + 1);
    if (!c) abort();
    for (j = 0; j < hl; j++)
        c[j] = (host[j] >= 'A' && host[j] <= 'Z') ? (char)(host[j] + 32) : host[j];
    c[hl] = 0;
    if (hl > 1 && c[hl - 1] == '.') c[--hl] = 0;
    for (i = 0; i < h->n && !ok; i++) {
        if (!h->wild[i]) {
            ok = hl == h->len[i] && !memcmp(c, h->host[i], hl);
        } else {
            size_t sl = h->len[i];
            ok = hl > sl + 1 && c[hl - sl - 1] == '.' &&
                 !memcmp(c + hl - sl, h->host[i], sl);
        }
    }
    free(c);
    return ok;
}

/** Reads the request description after the NUL (see the file comment)
 *  from the writable text s into *q (pointers into s). */
static void fz_read_req(char *s, struct fz_req *q)
{
    const char **slot[4] = {&q->method, &q->host, &q->path, &q->query};
    int i = 0;

    memset(q, 0, sizeof *q);
    while (s) {
        char *nl = strchr(s, '\n');

        if (nl) *nl = 0;
        if (i < 4) {
            *slot[i++] = s;
        } else if (q->nh < FZ_MAX_HEADERS) {
            char *colon = strchr(s, ':');
            if (colon) {
                *colon = 0;
                q->hname[q->nh] = s;
                q->hval[q->nh++] = colon + 1 + (colon[1] == ' ');
            }
        }
        s = nl ? nl + 1 : NULL;
    }
}

/** "(a)" op "(a)" or "!(" a ")" into a new string. */
static char *fz_wrap(const char *a, const char *op)
{
    size_t n = strlen(a);
    char *s = malloc(2 * n + 16);

    if (!s) abort();
    if (op)
        sprintf(s, "(%s)%s(%s)", a, op, a);
    else
        sprintf(s, "!(%s)", a);
    return s;
}

/** 1 when a parse failure is one of the size limits (not a syntax error). */
static int fz_limit_error(const struct rule_error *e)
{
    return strstr(e->msg, "nesting deeper") || strstr(e->msg, "too many matchers") ||
           strstr(e->msg, "longer than");
}

/** The HTTP checks for text (which parsed as r) over the request set. */
static void fz_http(const char *text, rule_t *r, const struct fz_req *reqs,
                    size_t nreq)
{
    struct fz_hosts *hosts = calloc(1, sizeof *hosts);
    rule_t *neg, *and2, *or2;
    struct rule_error e;
    char *t;
    int bounded;
    size_t i;

    if (!hosts) abort();
    t = fz_wrap(text, NULL);
    neg = rule_parse(t, &e);
    if (!neg) FZ_CHECK(fz_limit_error(&e));
    free(t);
    t = fz_wrap(text, "&&");
    and2 = rule_parse(t, &e);
    if (!and2) FZ_CHECK(fz_limit_error(&e));
    free(t);
    t = fz_wrap(text, "||");
    or2 = rule_parse(t, &e);
    if (!or2) FZ_CHECK(fz_limit_error(&e));
    free(t);
    bounded = rule_hosts(r, fz_host_cb, hosts);
    FZ_CHECK(bounded == 0 || bounded == 1);
    if (!bounded) FZ_CHECK(hosts->n == 0);
    fz_hosts_sane(hosts);
    if (bounded) FZ_CHECK(hosts->n > 0 || hosts->overflow);
    for (i = 0; i < nreq; i++) {
        struct sockaddr_storage ss;
        struct rule_req rq;
        int ci, m;

        for (ci = 0; ci < FZ_NCLIENTS; ci++) {
            fz_rule_req(&reqs[i], ci, &ss, &rq);
            m = rule_match(r, &rq);
            FZ_CHECK(m == 0 || m == 1);
            FZ_CHECK(rule_match(r, &rq) == m);
            if (neg) FZ_CHECK(rule_match(neg, &rq) == !m);
            if (and2) FZ_CHECK(rule_match(and2, &rq) == m);
            if (or2) FZ_CHECK(rule_match(or2, &rq) == m);
            if (m && bounded && !hosts->overflow)
                FZ_CHECK(fz_hosts_cover(hosts, reqs[i].host));
        }
    }
    rule_free(neg);
    rule_free(and2);
    rule_free(or2);
    fz_hosts_free(hosts);
    free(hosts);
}

/** The TCP checks for text (which parsed as r) over the request set. */
static void fz_tcp(const char *text, rule_t *r, const struct fz_req *reqs,
                   size_t nreq)
{
    struct fz_hosts *hosts = calloc(1, sizeof *hosts);
    struct rule_error e;
    rule_t *neg;
    char *t, *sni;
    int bounded, all;
    size_t i, j;

    if (!hosts) abort();
    t = fz_wrap(text, NULL);
    neg = rule_parse_tcp(t, &e);
    if (!neg) FZ_CHECK(fz_limit_error(&e));
    free(t);
    bounded = rule_sni_hosts(r, fz_host_cb, hosts);
    FZ_CHECK(bounded == 0 || bounded == 1);
    if (!bounded) FZ_CHECK(hosts->n == 0);
    all = rule_tcp_catchall(r);
    if (all) FZ_CHECK(!bounded);
    (void)rule_tcp_needs_sni(r);
    for (i = 0; i < nreq; i++) {
        const char *alpn[FZ_MAX_HEADERS + 1];
        struct rule_tcp_req tq;
        struct sockaddr_storage ss;
        struct rule_req rq;
        size_t na = 0;
        int ci, m, with_sni;

        for (j = 0; j < reqs[i].nh; j++)
            if (!strcasecmp(reqs[i].hname[j], "alpn")) alpn[na++] = reqs[i].hval[j];
        alpn[na] = NULL;
        /* the server name is lowercase (as the ClientHello reader gives) */
        sni = reqs[i].host ? strdup(reqs[i].host) : NULL;
        for (j = 0; sni && sni[j]; j++)
            if (sni[j] >= 'A' && sni[j] <= 'Z') sni[j] += 32;
        for (with_sni = 0; with_sni < 2; with_sni++) {
            for (ci = 0; ci < FZ_NCLIENTS; ci++) {
                fz_rule_req(&reqs[i], ci, &ss, &rq);
                memset(&tq, 0, sizeof tq);
                tq.sni = with_sni ? sni : NULL;
                tq.sni_len = tq.sni ? strlen(tq.sni) : 0;
                tq.alpn = alpn;
                tq.nalpn = na;
                tq.client = rq.client;
                m = rule_match_tcp(r, &tq);
                FZ_CHECK(m == 0 || m == 1);
                FZ_CHECK(rule_match_tcp(r, &tq) == m);
                if (neg) FZ_CHECK(rule_match_tcp(neg, &tq) == !m);
                if (all) FZ_CHECK(m == 1);
                if (m && bounded && !hosts->overflow)
                    FZ_CHECK(tq.sni && fz_hosts_cover(hosts, tq.sni));
            }
        }
        free(sni);
    }
    rule_free(neg);
    fz_hosts_free(hosts);
    free(hosts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz_req reqs[sizeof fz_fixed / sizeof fz_fixed[0] + 1];
    size_t nreq = sizeof fz_fixed / sizeof fz_fixed[0], tlen;
    struct rule_error e;
    char *buf;
    rule_t *r;
    int tcp;

    if (size > FZ_MAX_TEXT) return 0;
    buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = 0;
    tlen = strlen(buf);
    memcpy(reqs, fz_fixed, sizeof fz_fixed);
    if (tlen < size) fz_read_req(buf + tlen + 1, &reqs[nreq++]);
    for (tcp = 0; tcp < 2; tcp++) {
        memset(&e, 0x5a, sizeof e); /* must be overwritten on failure */
        r = tcp ? rule_parse_tcp(buf, &e) : rule_parse(buf, &e);
        if (!r) {
            FZ_CHECK(e.column >= 1 && (size_t)e.column <= tlen + 1);
            FZ_CHECK(memchr(e.msg, 0, sizeof e.msg) && e.msg[0]);
            continue;
        }
        if (tcp)
            fz_tcp(buf, r, reqs, nreq);
        else
            fz_http(buf, r, reqs, nreq);
        rule_free(r);
    }
    /* a NULL text and a NULL error are handled */
    FZ_CHECK(rule_parse(NULL, NULL) == NULL);
    free(buf);
    return 0;
}
