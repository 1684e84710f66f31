/*
 * test_rule — unit tests of the rule module (Traefik v3 router rules).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "rule.h"
#include "tap.h"

#define RULE_TEST_BIG 70000 /* scratch for long rules */

/** A fake request: the fields rule_req points into, plus headers. */
struct treq {
    struct rule_req r;            /* what rule_match sees */
    struct sockaddr_storage ss;   /* client address storage */
    const char *hdr[8][2];        /* header name/value pairs, NULL-ended */
};

/** Header callback over treq.hdr: idx-th value of name (any case). */
static const char *t_header(void *arg, const char *name, size_t nlen,
                            size_t idx, size_t *vlen)
{
    struct treq *t = arg;
    size_t i, seen = 0;

    for (i = 0; i < 8 && t->hdr[i][0]; i++) {
        if (strlen(t->hdr[i][0]) != nlen ||
            strncasecmp(t->hdr[i][0], name, nlen))
            continue;
        if (seen++ == idx) {
            *vlen = strlen(t->hdr[i][1]);
            return t->hdr[i][1];
        }
    }
    return NULL;
}

/** Fills t with a request; any string may be NULL; ip may be NULL (no
 *  client) or an IPv4/IPv6 literal. */
static void t_init(struct treq *t, const char *method, const char *host,
                   const char *path, const char *query, const char *ip)
{
    memset(t, 0, sizeof(*t));
    t->r.method = method;
    t->r.method_len = method ? strlen(method) : 0;
    t->r.host = host;
    t->r.host_len = host ? strlen(host) : 0;
    t->r.path = path;
    t->r.path_len = path ? strlen(path) : 0;
    t->r.query = query;
    t->r.query_len = query ? strlen(query) : 0;
    t->r.header = t_header;
    t->r.header_arg = t;
    if (ip) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
        } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
        } else {
            abort();
        }
        t->r.client = (const struct sockaddr *)&t->ss;
    }
}

/** Parses text and matches it against t: 1/0, or -1 when it does not
 *  parse. */
static int m(const char *text, const struct treq *t)
{
    struct rule_error e;
    rule_t *r = rule_parse(text, &e);
    int v;

    if (!r) {
        printf("# parse error in %s: column %d: %s\n", text, e.column, e.msg);
        return -1;
    }
    v = rule_match(r, &t->r);
    rule_free(r);
    return v;
}

/** 1 when text fails to parse at column col with msg containing sub. */
static int perr(const char *text, int col, const char *sub)
{
    struct rule_error e;
    rule_t *r = rule_parse(text, &e);

    if (r) {
        rule_free(r);
        printf("# parsed unexpectedly: %s\n", text);
        return 0;
    }
    if (e.column != col || !strstr(e.msg, sub)) {
        printf("# got column %d: %s\n", e.column, e.msg);
        return 0;
    }
    return 1;
}

/** Collected rule_hosts output. */
struct hosts {
    char s[512]; /* "host,*.suffix," in callback order */
    int n;       /* callbacks */
};

/** rule_hosts callback appending to a struct hosts. */
static void hosts_cb(void *arg, const char *h, size_t len, int wildcard)
{
    struct hosts *hs = arg;
    size_t l = strlen(hs->s);

    snprintf(hs->s + l, sizeof(hs->s) - l, "%s%.*s,", wildcard ? "*." : "",
             (int)len, h);
    hs->n++;
}

/** rule_hosts of text: returns its result, hosts in *hs. */
static int hosts_of(const char *text, struct hosts *hs)
{
    rule_t *r = rule_parse(text, NULL);
    int v;

    memset(hs, 0, sizeof(*hs));
    if (!r) return -1;
    v = rule_hosts(r, hosts_cb, hs);
    rule_free(r);
    return v;
}

static void test_errors(void)
{
    struct rule_error e;
    char *big;
    size_t i, n;

    ok(perr("", 1, "empty rule"), "empty rule");
    ok(perr("   \t ", 1, "empty rule"), "blank rule");
    ok(perr(NULL, 1, "empty rule"), "NULL rule");
    ok(perr("Hots(`a`)", 1, "unknown matcher \"Hots\""), "unknown matcher");
    ok(perr("  Host(`a`) && Foo(`b`)", 16, "unknown matcher \"Foo\""),
       "unknown matcher column after operator");
    ok(perr("host(`a`)", 1, "did you mean \"Host\""),
       "matcher names are case-sensitive, with a hint");
    ok(perr("Host(`a` `b`)", 10, "expected ')' or ',' after argument"),
       "missing comma");
    ok(perr("Host(`a`", 9, "expected ')' or ',' after argument"),
       "missing close paren after argument");
    ok(perr("Host(`a`) &&", 13, "expected a matcher, '(' or '!'"),
       "dangling &&");
    ok(perr("Host(`a`) &&  ", 15, "rule ended"), "dangling && says ended");
    ok(perr("Host(`a`) Path(`/`)", 11, "expected '&&', '||' or end of rule"),
       "trailing garbage");
    ok(perr("Host(`a`) & Path(`/`)", 11, "expected '&&', '||' or end"),
       "single &");
    ok(perr("Host(`a`) | Path(`/`)", 11, "expected '&&', '||' or end"),
       "single |");
    ok(perr("(Host(`a`)", 11, "expected '&&', '||' or ')'"),
       "unclosed parenthesis");
    ok(perr("Host(`a`))", 10, "end of rule"), "extra )");
    ok(perr(")", 1, "expected a matcher, '(' or '!'"), "lone )");
    ok(perr("&& Host(`a`)", 1, "expected a matcher"), "leading &&");
    ok(perr("Host", 5, "expected '(' after matcher name Host"), "no (");
    ok(perr("Host()", 6, "expected a string argument"), "no argument");
    ok(perr("Host(a)", 6, "expected a string argument"), "bare argument");
    ok(perr("Host(`a`,)", 10, "expected a string argument"),
       "trailing comma");
    ok(perr("Host(`a)", 6, "unterminated string"), "unterminated backtick");
    ok(perr("Host(\"a)", 6, "unterminated string"), "unterminated quote");
    ok(perr("Host(\"a\\nb\")", 8, "invalid escape"), "bad escape");
    ok(perr("HostRegexp(`(abc`)", 12,
            "HostRegexp: invalid regular expression: missing closing "
            "parenthesis at offset 4"),
       "invalid regex reports PCRE2 message and offset");
    ok(perr("Path(`/`) || PathRegexp(`[a`)", 25,
            "PathRegexp: invalid regular expression: missing terminating ]"),
       "invalid regex in PathRegexp");
    ok(perr("HeaderRegexp(`X`, `*a`)", 19, "HeaderRegexp: invalid regular"),
       "invalid regex in HeaderRegexp");
    ok(perr("QueryRegexp(`k`, `a{2,1}`)", 18, "QueryRegexp: invalid regular"),
       "invalid regex in QueryRegexp");
    ok(perr("ClientIP(`10.0.0.0/33`)", 10,
            "ClientIP: invalid IP address or CIDR \"10.0.0.0/33\""),
       "CIDR prefix too long");
    ok(perr("ClientIP(`10.0.0`)", 10, "invalid IP address"), "short IPv4");
    ok(perr("ClientIP(`::1/129`)", 10, "invalid IP address"), "v6 /129");
    ok(perr("ClientIP(`10.0.0.0/`)", 10, "invalid IP address"), "empty /");
    ok(perr("ClientIP(`10.0.0.0/8x`)", 10, "invalid IP address"), "bad /");
    ok(perr("ClientIP(`a.example.com`)", 10, "invalid IP address"),
       "hostname is no IP");
    ok(perr("Header(`X`)", 1, "Header: expected 2 arguments, got 1"),
       "Header with 1 argument");
    ok(perr("HostRegexp(`a`, `b`)", 1, "HostRegexp: expected 1 argument, got 2"),
       "HostRegexp with 2 arguments");
    ok(perr("Query(`a`,`b`,`c`)", 1, "Query: expected 1 to 2 arguments, got 3"),
       "Query with 3 arguments");
    ok(perr("Path(`foo`)", 6, "does not start with '/'"), "relative Path");
    ok(perr("PathPrefix(``)", 12, "does not start with '/'"),
       "empty PathPrefix");
    ok(perr("Host(``)", 6, "Host: empty host"), "empty Host");
    ok(perr("Host(`\xc3\xa9.com`)", 6, "non-ASCII"), "non-ASCII Host");
    ok(perr("Method(``)", 8, "empty method"), "empty Method");
    ok(perr("Header(``, `x`)", 8, "empty header name"), "empty header name");
    ok(perr("Host(`a`) @", 11, "expected '&&'"), "stray character");

    /* err may be NULL. */
    ok(rule_parse("Hots(`a`)", NULL) == NULL, "NULL err is accepted");

    /* Nesting: 64 levels parse, 65 do not. */
    big = malloc(RULE_TEST_BIG);
    for (n = 64; n <= 65; n++) {
        size_t k = 0;
        for (i = 0; i < n; i++) big[k++] = '(';
        k += (size_t)sprintf(big + k, "Host(`a`)");
        for (i = 0; i < n; i++) big[k++] = ')';
        big[k] = 0;
        rule_t *r = rule_parse(big, &e);
        if (n == 64) {
            ok(r != NULL, "64 nested parentheses parse");
        } else {
            ok(!r && e.column == 65 && strstr(e.msg, "nesting deeper than 64"),
               "65 nested parentheses: column %d: %s", e.column, e.msg);
        }
        rule_free(r);
    }
    for (n = 64; n <= 65; n++) {
        size_t k = 0;
        for (i = 0; i < n; i++) big[k++] = '!';
        k += (size_t)sprintf(big + k, "Host(`a`)");
        big[k] = 0;
        rule_t *r = rule_parse(big, &e);
        if (n == 64) {
            struct treq t;
            t_init(&t, "GET", "a", "/", NULL, NULL);
            ok(r && rule_match(r, &t.r) == 1, "64 nots parse (even: true)");
        } else {
            ok(!r && e.column == 65 && strstr(e.msg, "nesting"),
               "65 nots: column %d: %s", e.column, e.msg);
        }
        rule_free(r);
    }

    /* Matchers: 1000 parse, 1001 do not. */
    for (n = 1000; n <= 1001; n++) {
        size_t k = 0;
        for (i = 0; i < n; i++)
            k += (size_t)sprintf(big + k, "%sPath(`/%zu`)", i ? "||" : "", i);
        rule_t *r = rule_parse(big, &e);
        if (n == 1000) {
            struct treq t;
            t_init(&t, "GET", "a", "/999", NULL, NULL);
            ok(r && rule_match(r, &t.r) == 1, "1000 matchers parse and match");
            t_init(&t, "GET", "a", "/1000", NULL, NULL);
            ok(r && rule_match(r, &t.r) == 0, "1000 matchers: miss");
        } else {
            /* column of the 1001st matcher */
            size_t col = (size_t)(strstr(big, "||Path(`/1000`)") - big) + 3;
            ok(!r && (size_t)e.column == col &&
                   strstr(e.msg, "too many matchers"),
               "1001 matchers: column %d: %s", e.column, e.msg);
        }
        rule_free(r);
    }

    /* Length: 65536 bytes parse, 65537 do not. */
    memset(big, ' ', 65537);
    memcpy(big, "Host(`a`)", 9);
    big[65536] = 0;
    {
        rule_t *r = rule_parse(big, &e);
        ok(r != NULL, "65536-byte rule parses");
        rule_free(r);
    }
    big[65536] = ' ';
    big[65537] = 0;
    ok(rule_parse(big, &e) == NULL && e.column == 1 &&
           strstr(e.msg, "longer than 65536"),
       "65537-byte rule rejected: %s", e.msg);
    free(big);
}

static void test_matchers(void)
{
    struct treq t;

    t_init(&t, "GET", "a.example.com", "/api/v1/users", "x=1", "10.1.2.3");

    /* Host */
    ok(m("Host(`a.example.com`)", &t) == 1, "Host equal");
    ok(m("Host(`A.Example.COM`)", &t) == 1, "Host rule case-insensitive");
    ok(m("Host(`b.example.com`)", &t) == 0, "Host different");
    ok(m("Host(`example.com`)", &t) == 0, "Host is not a suffix match");
    ok(m("Host(`a.example.co`)", &t) == 0, "Host shorter");
    ok(m("Host(`b.com`, `a.example.com`)", &t) == 1, "Host v2 multiple");
    ok(m("Host(`a.example.com.`)", &t) == 1, "Host rule with trailing dot");
    t_init(&t, "GET", "A.EXAMPLE.com", "/", NULL, NULL);
    ok(m("Host(`a.example.com`)", &t) == 1, "request host any case");
    t_init(&t, "GET", "a.example.com.", "/", NULL, NULL);
    ok(m("Host(`a.example.com`)", &t) == 1, "request host trailing dot");
    t_init(&t, "GET", NULL, "/", NULL, NULL);
    ok(m("Host(`a.example.com`)", &t) == 0, "no host: no match");

    /* Wildcard Host */
    t_init(&t, "GET", "a.example.com", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 1, "wildcard one label");
    t_init(&t, "GET", "x.Y.EXAMPLE.com", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 1, "wildcard two labels, any case");
    t_init(&t, "GET", "example.com", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 0, "wildcard needs a label");
    t_init(&t, "GET", ".example.com", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 0, "wildcard needs a non-empty label");
    t_init(&t, "GET", "aexample.com", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 0, "wildcard needs the dot");
    t_init(&t, "GET", "a.example.com.evil", "/", NULL, NULL);
    ok(m("Host(`*.example.com`)", &t) == 0, "wildcard is a suffix");

    /* HostRegexp */
    t_init(&t, "GET", "a.example.com", "/", NULL, NULL);
    ok(m("HostRegexp(`^.+\\.example\\.com$`)", &t) == 1, "HostRegexp");
    ok(m("HostRegexp(`^[a-z]+\\.EXAMPLE\\.com$`)", &t) == 1,
       "HostRegexp caseless");
    ok(m("HostRegexp(`example`)", &t) == 1, "HostRegexp unanchored");
    ok(m("HostRegexp(`^example`)", &t) == 0, "HostRegexp anchored miss");
    t_init(&t, "GET", "a.example.com\n", "/", NULL, NULL);
    ok(m("HostRegexp(`com$`)", &t) == 0, "$ only at the very end (as Go)");

    /* Path, PathPrefix, PathRegexp */
    t_init(&t, "GET", "h", "/api/v1/users", NULL, NULL);
    ok(m("Path(`/api/v1/users`)", &t) == 1, "Path equal");
    ok(m("Path(`/api/v1/user`)", &t) == 0, "Path shorter");
    ok(m("Path(`/api/v1/users/`)", &t) == 0, "Path longer");
    ok(m("Path(`/API/v1/users`)", &t) == 0, "Path case-sensitive");
    ok(m("Path(`/x`, `/api/v1/users`)", &t) == 1, "Path v2 multiple");
    ok(m("PathPrefix(`/api`)", &t) == 1, "PathPrefix");
    ok(m("PathPrefix(`/ap`)", &t) == 1, "PathPrefix is a plain prefix (v3)");
    ok(m("PathPrefix(`/api/v1/users`)", &t) == 1, "PathPrefix whole path");
    ok(m("PathPrefix(`/api/v1/users/`)", &t) == 0, "PathPrefix longer");
    ok(m("PathPrefix(`/web`)", &t) == 0, "PathPrefix other");
    ok(m("PathPrefix(`/`)", &t) == 1, "PathPrefix /");
    ok(m("PathRegexp(`^/api/v[0-9]+`)", &t) == 1, "PathRegexp");
    ok(m("PathRegexp(`v1/u`)", &t) == 1, "PathRegexp unanchored");
    ok(m("PathRegexp(`^/api/v[2-9]`)", &t) == 0, "PathRegexp miss");
    ok(m("PathRegexp(`^/API`)", &t) == 0, "PathRegexp case-sensitive");
    t_init(&t, "GET", "h", "/caf\xc3\xa9", NULL, NULL);
    ok(m("PathRegexp(`^/caf.$`)", &t) == 1, "PathRegexp: . is a UTF-8 char");
    t_init(&t, "GET", "h", "/bad\xff", NULL, NULL);
    ok(m("PathRegexp(`^/bad`)", &t) == 1, "PathRegexp: invalid UTF-8 ok");
    ok(m("PathRegexp(`^/bad.$`)", &t) == 0,
       "PathRegexp: invalid byte is no character");
    t_init(&t, "GET", "h", NULL, NULL, NULL);
    ok(m("PathPrefix(`/`)", &t) == 0, "no path: PathPrefix false");
    ok(m("PathRegexp(`^$`)", &t) == 1, "no path: regex sees empty string");

    /* Method */
    t_init(&t, "GET", "h", "/", NULL, NULL);
    ok(m("Method(`GET`)", &t) == 1, "Method");
    ok(m("Method(`get`)", &t) == 1, "Method any case");
    ok(m("Method(`POST`)", &t) == 0, "Method other");
    ok(m("Method(`GE`)", &t) == 0, "Method prefix is not equal");
    ok(m("Method(`POST`, `GET`)", &t) == 1, "Method v2 multiple");

    /* Header, HeaderRegexp */
    t_init(&t, "GET", "h", "/", NULL, NULL);
    t.hdr[0][0] = "X-Env";
    t.hdr[0][1] = "staging";
    t.hdr[1][0] = "Accept";
    t.hdr[1][1] = "text/html";
    t.hdr[2][0] = "x-env";
    t.hdr[2][1] = "prod";
    t.hdr[3][0] = "X-Empty";
    t.hdr[3][1] = "";
    ok(m("Header(`X-Env`, `staging`)", &t) == 1, "Header first value");
    ok(m("Header(`X-Env`, `prod`)", &t) == 1, "Header second value");
    ok(m("Header(`x-env`, `prod`)", &t) == 1, "Header name any case");
    ok(m("Header(`X-Env`, `Prod`)", &t) == 0, "Header value exact");
    ok(m("Header(`X-Env`, `pro`)", &t) == 0, "Header value not prefix");
    ok(m("Header(`X-Other`, `prod`)", &t) == 0, "Header absent");
    ok(m("Header(`X-Empty`, ``)", &t) == 1, "Header empty value");
    ok(m("Header(`X-Env`, \"stag\\\\ing\")", &t) == 0, "Header escaped \\");
    ok(m("HeaderRegexp(`Accept`, `html`)", &t) == 1, "HeaderRegexp search");
    ok(m("HeaderRegexp(`X-Env`, `^pr`)", &t) == 1, "HeaderRegexp 2nd value");
    ok(m("HeaderRegexp(`X-Env`, `^dev`)", &t) == 0, "HeaderRegexp miss");
    ok(m("HeaderRegexp(`X-None`, `.*`)", &t) == 0, "HeaderRegexp absent");
    t.hdr[4][0] = "Q";
    t.hdr[4][1] = "a\"b";
    ok(m("Header(`Q`, \"a\\\"b\")", &t) == 1, "double-quoted with \\\"");
    t.r.header = NULL;
    ok(m("Header(`X-Env`, `staging`)", &t) == 0, "no header callback");

    /* ClientIP is tested on its own below. */
}

static void test_query(void)
{
    struct treq t;

    t_init(&t, "GET", "h", "/",
           "a=1&name=John+Doe&e=%41%62c&flag&x=&k%20y=v%26w&dup=1&dup=2", NULL);
    ok(m("Query(`a`, `1`)", &t) == 1, "Query key=value");
    ok(m("Query(`a`, `2`)", &t) == 0, "Query wrong value");
    ok(m("Query(`a`)", &t) == 1, "Query key present");
    ok(m("Query(`b`)", &t) == 0, "Query key absent");
    ok(m("Query(`name`, `John Doe`)", &t) == 1, "Query + is a space");
    ok(m("Query(`name`, `John+Doe`)", &t) == 0, "Query value is decoded");
    ok(m("Query(`e`, `Abc`)", &t) == 1, "Query percent-decoding");
    ok(m("Query(`flag`)", &t) == 1, "Query key without =");
    ok(m("Query(`flag`, ``)", &t) == 1, "Query key without = has value ''");
    ok(m("Query(`x`, ``)", &t) == 1, "Query empty value");
    ok(m("Query(`k y`, `v&w`)", &t) == 1, "Query decoded key and value");
    ok(m("Query(`dup`, `2`)", &t) == 1, "Query repeated key, 2nd value");
    ok(m("QueryRegexp(`dup`, `^[2-3]$`)", &t) == 1, "QueryRegexp any value");
    ok(m("QueryRegexp(`name`, `^John Doe$`)", &t) == 1,
       "QueryRegexp sees decoded value");
    ok(m("QueryRegexp(`a`, `^[2-9]`)", &t) == 0, "QueryRegexp miss");
    ok(m("QueryRegexp(`nokey`, `.*`)", &t) == 0, "QueryRegexp absent key");

    t_init(&t, "GET", "h", "/", "bad=%zz&ok=1&semi=1;x=2&trail=%4", NULL);
    ok(m("Query(`bad`)", &t) == 0, "pair with malformed escape is dropped");
    ok(m("Query(`ok`, `1`)", &t) == 1, "other pairs still count");
    ok(m("Query(`semi`)", &t) == 0, "pair with ';' is dropped (as Go)");
    ok(m("Query(`x`)", &t) == 0, "';' is no separator");
    ok(m("Query(`trail`)", &t) == 0, "truncated escape dropped");

    t_init(&t, "GET", "h", "/", NULL, NULL);
    ok(m("Query(`a`)", &t) == 0, "no query: Query false");
    ok(m("!Query(`a`)", &t) == 1, "no query: !Query true");
    t_init(&t, "GET", "h", "/", "", NULL);
    ok(m("Query(`a`)", &t) == 0, "empty query");
    t_init(&t, "GET", "h", "/", "&&a=1&", NULL);
    ok(m("Query(`a`, `1`)", &t) == 1, "empty pairs skipped");
}

static void test_client_ip(void)
{
    struct treq t;

    t_init(&t, "GET", "h", "/", NULL, "192.168.1.20");
    ok(m("ClientIP(`192.168.0.0/16`)", &t) == 1, "v4 in /16");
    ok(m("ClientIP(`192.169.0.0/16`)", &t) == 0, "v4 not in /16");
    ok(m("ClientIP(`192.168.1.20`)", &t) == 1, "v4 single address");
    ok(m("ClientIP(`192.168.1.20/32`)", &t) == 1, "v4 /32 equal");
    ok(m("ClientIP(`192.168.1.21/32`)", &t) == 0, "v4 /32 other");
    ok(m("ClientIP(`192.168.1.21`)", &t) == 0, "v4 single other");
    ok(m("ClientIP(`0.0.0.0/0`)", &t) == 1, "v4 /0 matches all v4");
    ok(m("ClientIP(`192.168.1.16/29`)", &t) == 1, "v4 /29 in");
    ok(m("ClientIP(`192.168.1.24/29`)", &t) == 0, "v4 /29 out");
    ok(m("ClientIP(`192.168.1.99/24`)", &t) == 1, "host bits are cleared");
    ok(m("ClientIP(`192.168.1.16/31`)", &t) == 0, "v4 /31 out");
    ok(m("ClientIP(`::/0`)", &t) == 0, "v4 client not in v6 range");
    ok(m("ClientIP(`10.0.0.0/8`, `192.168.1.0/24`)", &t) == 1,
       "v2 multiple ranges");
    ok(m("!ClientIP(`10.0.0.0/8`)", &t) == 1, "negated range");

    t_init(&t, "GET", "h", "/", NULL, "2001:db8::1");
    ok(m("ClientIP(`2001:db8::/32`)", &t) == 1, "v6 /32");
    ok(m("ClientIP(`2001:db9::/32`)", &t) == 0, "v6 /32 other");
    ok(m("ClientIP(`2001:db8::1`)", &t) == 1, "v6 single");
    ok(m("ClientIP(`2001:db8::1/128`)", &t) == 1, "v6 /128");
    ok(m("ClientIP(`2001:db8::2/128`)", &t) == 0, "v6 /128 other");
    ok(m("ClientIP(`2001:db8::/127`)", &t) == 1, "v6 /127");
    ok(m("ClientIP(`::/0`)", &t) == 1, "v6 /0");
    ok(m("ClientIP(`0.0.0.0/0`)", &t) == 0, "v6 client not in v4 range");

    t_init(&t, "GET", "h", "/", NULL, "::1");
    ok(m("ClientIP(`::1`)", &t) == 1, "::1");
    ok(m("ClientIP(`127.0.0.1`)", &t) == 0, "::1 is not 127.0.0.1");

    t_init(&t, "GET", "h", "/", NULL, "::ffff:10.1.2.3");
    ok(m("ClientIP(`10.0.0.0/8`)", &t) == 1, "v4-mapped client in v4 range");
    ok(m("ClientIP(`10.1.2.3`)", &t) == 1, "v4-mapped client v4 address");
    ok(m("ClientIP(`11.0.0.0/8`)", &t) == 0, "v4-mapped client out");
    ok(m("ClientIP(`::ffff:10.1.2.3`)", &t) == 1, "mapped as written");

    t_init(&t, "GET", "h", "/", NULL, NULL);
    ok(m("ClientIP(`0.0.0.0/0`)", &t) == 0, "no client address");
}

static void test_operators(void)
{
    struct treq t;

    t_init(&t, "GET", "a", "/x", NULL, NULL);
    /* A=Host(`a`) true, B=Host(`b`) false, C=Path(`/x`) true,
     * F=Path(`/y`) false */
    ok(m("Host(`a`) || Host(`b`) && Path(`/y`)", &t) == 1,
       "A || B && F == A || (B && F)");
    ok(m("(Host(`a`) || Host(`b`)) && Path(`/y`)", &t) == 0,
       "(A || B) && F");
    ok(m("Host(`b`) && Path(`/y`) || Path(`/x`)", &t) == 1,
       "B && F || C == (B && F) || C");
    ok(m("Host(`b`) && (Path(`/y`) || Path(`/x`))", &t) == 0,
       "B && (F || C)");
    ok(m("!Host(`b`) && Path(`/x`)", &t) == 1, "!B && C == (!B) && C");
    ok(m("!Host(`a`) && Path(`/x`)", &t) == 0, "!A && C");
    ok(m("!(Host(`a`) && Path(`/y`))", &t) == 1, "!(A && F)");
    ok(m("!Host(`a`) || Path(`/x`)", &t) == 1, "!A || C");
    ok(m("!!Host(`a`)", &t) == 1, "double negation");
    ok(m("! ( Host(`a`) )", &t) == 0, "blanks after ! and (");
    ok(m("Host(`a`)&&Path(`/x`)", &t) == 1, "no blanks");
    ok(m("\n\tHost ( `a` , `c` )\r\n&&\nPath(\"/x\")  ", &t) == 1,
       "blanks everywhere, double quotes");
    ok(m("Host(`b`) || Host(`c`) || Host(`a`)", &t) == 1, "or chain");
    ok(m("Host(`a`) && Path(`/x`) && Method(`GET`) && !Method(`POST`)", &t) ==
           1,
       "and chain");
    ok(m("Host(`a`) && Path(`/x`) && Method(`PUT`)", &t) == 0,
       "and chain, last false");
    ok(m("((((Host(`a`)))))", &t) == 1, "redundant parentheses");
}

static void test_hosts(void)
{
    struct hosts hs;

    ok(hosts_of("Host(`A.com`)", &hs) == 1 && !strcmp(hs.s, "a.com,"),
       "Host: lowercase host (%s)", hs.s);
    ok(hosts_of("Host(`*.Example.com`)", &hs) == 1 &&
           !strcmp(hs.s, "*.example.com,") && hs.n == 1,
       "wildcard reported as suffix (%s)", hs.s);
    ok(hosts_of("Host(`a.com.`)", &hs) == 1 && !strcmp(hs.s, "a.com,"),
       "trailing dot dropped (%s)", hs.s);
    ok(hosts_of("Host(`a.com`, `b.com`)", &hs) == 1 && hs.n == 2 &&
           strstr(hs.s, "a.com,") && strstr(hs.s, "b.com,"),
       "Host with 2 args (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) && PathPrefix(`/api`)", &hs) == 1 &&
           !strcmp(hs.s, "a.com,"),
       "Host && other (%s)", hs.s);
    ok(hosts_of("PathPrefix(`/api`) && Host(`a.com`)", &hs) == 1 &&
           !strcmp(hs.s, "a.com,"),
       "other && Host (%s)", hs.s);
    ok(hosts_of("Host(`a.com`, `b.com`) && Host(`c.com`)", &hs) == 1 &&
           !strcmp(hs.s, "c.com,"),
       "both sides of && bounded: the smaller (%s)", hs.s);
    ok(hosts_of("Host(`c.com`) && Host(`a.com`, `b.com`)", &hs) == 1 &&
           !strcmp(hs.s, "c.com,"),
       "&&: the smaller side first (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) || Host(`b.com`)", &hs) == 1 && hs.n == 2 &&
           strstr(hs.s, "a.com,") && strstr(hs.s, "b.com,"),
       "Host || Host: union (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) || Host(`A.com`)", &hs) == 1 && hs.n == 1 &&
           !strcmp(hs.s, "a.com,"),
       "union without repeats (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) || Host(`*.a.com`)", &hs) == 1 && hs.n == 2,
       "host and wildcard of the same name are distinct (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) || PathPrefix(`/x`)", &hs) == 0 && hs.n == 0,
       "Host || other: unbounded");
    ok(hosts_of("!Host(`a.com`)", &hs) == 0 && hs.n == 0, "!Host: unbounded");
    ok(hosts_of("HostRegexp(`a`)", &hs) == 0 && hs.n == 0,
       "HostRegexp: unbounded");
    ok(hosts_of("PathPrefix(`/`)", &hs) == 0, "no Host: unbounded");
    ok(hosts_of("(Host(`a.com`) || Host(`b.com`)) && Path(`/`)", &hs) == 1 &&
           hs.n == 2,
       "(Host || Host) && other (%s)", hs.s);
    ok(hosts_of("(Host(`a.com`) && Path(`/`)) || (Host(`b.com`) && "
                "Method(`GET`))",
                &hs) == 1 &&
           hs.n == 2,
       "(Host && x) || (Host && y) (%s)", hs.s);
    ok(hosts_of("(Host(`a.com`) && Path(`/`)) || Method(`GET`)", &hs) == 0,
       "(Host && x) || y: unbounded");
    ok(hosts_of("!Host(`a.com`) && Host(`b.com`)", &hs) == 1 &&
           !strcmp(hs.s, "b.com,"),
       "!Host && Host (%s)", hs.s);
    ok(hosts_of("Host(`a.com`) || (Host(`b.com`) || Host(`c.com`))", &hs) ==
               1 &&
           hs.n == 3,
       "nested union (%s)", hs.s);
}

#define RULE_THREADS 4
#define RULE_ITERS 10000

/** Shared input of the thread test. */
struct tharg {
    const rule_t *r; /* rule under test */
    int id;          /* thread number */
    int bad;         /* wrong answers seen */
};

/** Thread body: alternates matching and non-matching requests. */
static void *thread_main(void *p)
{
    struct tharg *a = p;
    char path[64];
    struct treq t;
    int i;

    for (i = 0; i < RULE_ITERS; i++) {
        int want = (i + a->id) % 3 != 0;
        snprintf(path, sizeof(path), want ? "/api/v%d/item" : "/api/x%d/item",
                 i);
        t_init(&t, "GET", "T.Example.com", path, want ? "k=v" : "k=w", NULL);
        if (rule_match(a->r, &t.r) != want) a->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    pthread_t th[RULE_THREADS];
    struct tharg a[RULE_THREADS];
    rule_t *r = rule_parse("HostRegexp(`^[a-z]+\\.example\\.com$`) && "
                           "PathRegexp(`^/api/v[0-9]+/`) && "
                           "QueryRegexp(`k`, `^v$`)",
                           NULL);
    int i, bad = 0, started = 0;

    ok(r != NULL, "thread test rule parses");
    if (!r) return;
    for (i = 0; i < RULE_THREADS; i++) {
        a[i].r = r;
        a[i].id = i;
        a[i].bad = 0;
        if (pthread_create(&th[i], NULL, thread_main, &a[i]) == 0) started++;
    }
    ok(started == RULE_THREADS, "%d threads started", started);
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
    }
    ok(bad == 0, "%d x %d concurrent matches, %d wrong", RULE_THREADS,
       RULE_ITERS, bad);
    rule_free(r);
}

int main(void)
{
    rule_free(NULL);
    ok(1, "rule_free(NULL) is a no-op");
    ok(rule_match(NULL, NULL) == 0, "rule_match(NULL) is 0");
    test_errors();
    test_matchers();
    test_query();
    test_client_ip();
    test_operators();
    test_hosts();
    test_threads();
    return tap_done();
}
