/*
 * test_http1 — unit tests of the strict HTTP/1.1 head parser and the
 * chunked decoder (src/http1.c).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "tap.h"

#define NFIELDS 100

static struct h1_field fl[NFIELDS]; /* fields of the last parse */
static struct h1_head hd;           /* head of the last parse */
static const char *cur;             /* buffer of the last parse */
static const struct h1_limits lim = {8192, NFIELDS, 4096}; /* test limits */

/** Parses a request held in a NUL-terminated string. */
static int req(const char *s)
{
    cur = s;
    return h1_parse_request(s, strlen(s), &hd, fl, &lim);
}

/** Parses a request of n bytes (may hold NULs). */
static int reqn(const char *s, size_t n)
{
    cur = s;
    return h1_parse_request(s, n, &hd, fl, &lim);
}

/** Parses a request with explicit limits. */
static int reql(const char *s, size_t mh, size_t mf, size_t mt)
{
    struct h1_limits l = {mh, mf, mt};

    cur = s;
    return h1_parse_request(s, strlen(s), &hd, fl, &l);
}

/** Parses a response held in a NUL-terminated string. */
static int resp(const char *s)
{
    cur = s;
    return h1_parse_response(s, strlen(s), &hd, fl, &lim);
}

/** 1 if the span of the last parsed buffer is exactly want (bytes). */
static int sp(struct h1_span s, const char *want)
{
    return s.len == strlen(want) && memcmp(cur + s.off, want, s.len) == 0;
}

/** Request "GET / HTTP/1.1" + Host + the given extra field lines. */
static int reqh(const char *fields)
{
    static char buf[4096];

    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n", fields);
    return req(buf);
}

/** POST with Host and extra fields (for framing). */
static int post(const char *fields)
{
    static char buf[4096];

    snprintf(buf, sizeof buf, "POST /u HTTP/1.1\r\nHost: h\r\n%s\r\n", fields);
    return req(buf);
}

/** Response "HTTP/1.1 200 OK" + the given extra field lines. */
static int resph(const char *fields)
{
    static char buf[4096];

    snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s\r\n", fields);
    return resp(buf);
}

static void test_request_basic(void)
{
    const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n"
                    "Accept: */*\r\n\r\nBODY";
    int r = req(s);

    ok(r == (int)strlen(s) - 4, "simple GET: returns head length (%d)", r);
    ok(hd.head_len == (uint32_t)r, "head_len == return");
    ok(sp(hd.method, "GET"), "method span");
    ok(sp(hd.target, "/index.html?q=1"), "target span");
    ok(hd.version == 11, "version 11");
    ok(hd.nfields == 2, "2 fields");
    ok(sp(fl[0].name, "Host") && sp(fl[0].value, "example.com"), "field 0");
    ok(sp(fl[1].name, "Accept") && sp(fl[1].value, "*/*"), "field 1");
    ok(sp(hd.host, "example.com"), "host span");
    ok(hd.flags == H1_F_HAS_HOST, "flags == HAS_HOST");
    ok(hd.content_length == -1, "no content-length: -1");
    ok(hd.fields == fl, "fields pointer set");

    r = req("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(r == 31 && hd.head_len == 31, "leading empty lines counted in head_len");
    ok(hd.method.off == 4 && sp(hd.method, "GET"), "method after empty lines");
    ok(req("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "leading bare LF");
    ok(req("\r") == 0, "lone CR at start: need more");
    ok(req("\r\r\n") == -400, "CR CR at start");
    ok(req("") == 0, "empty buffer: need more");

    r = req("GET / HTTP/1.0\r\n\r\n");
    ok(r == 18 && hd.version == 10 && hd.nfields == 0,
       "HTTP/1.0 without Host accepted");
    ok(hd.host.len == 0 && !(hd.flags & H1_F_HAS_HOST), "no host");
    ok(req("GET / HTTP/1.1\r\n\r\n") == -400, "HTTP/1.1 without Host");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n") == -400,
       "two Host fields");
    ok(req("GET / HTTP/1.1\r\nhOsT: b\r\n\r\n") > 0 && sp(hd.host, "b"),
       "Host name case-insensitive");
    ok(req("GET / HTTP/1.1\r\nHost:\r\n\r\n") > 0 && hd.host.len == 0 &&
           (hd.flags & H1_F_HAS_HOST),
       "empty Host accepted, flag set");
    ok(req("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n") == -400,
       "two Host fields in 1.0");
}

static void test_methods(void)
{
    static const char *const good[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
        "TRACE", "PATCH", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE",
        "LOCK", "UNLOCK", "SEARCH", "MKCALENDAR", "REPORT", "MKACTIVITY",
        "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
        "UNSUBSCRIBE", "PURGE", "LINK", "UNLINK", "BIND", "REBIND",
        "UNBIND", "ACL", "QUERY", "SOURCE", NULL};
    static const char *const bad[] = {
        "get", "FOO", "ANNOUNCE", "PRI", "MKCOLA", "DESCRIBE", "SETUP",
        "Get", "GETS", "UNSUBSCRIBEX", NULL};
    char buf[128];
    int i, all = 1, none = 1;

    for (i = 0; good[i]; i++) {
        snprintf(buf, sizeof buf, "%s /x HTTP/1.1\r\nHost: h\r\n\r\n",
                 good[i]);
        if (req(buf) != (int)strlen(buf) || !sp(hd.method, good[i])) {
            all = 0;
            printf("# method %s refused\n", good[i]);
        }
    }
    ok(all, "all %d known methods accepted", i);
    for (i = 0; bad[i]; i++) {
        snprintf(buf, sizeof buf, "%s /x HTTP/1.1\r\nHost: h\r\n\r\n",
                 bad[i]);
        if (req(buf) != -400) {
            none = 0;
            printf("# method %s accepted\n", bad[i]);
        }
    }
    ok(none, "all %d unknown methods are 400", i);
    ok(req("GE") == 0, "partial method: need more");
    ok(req("UNSUBSCRIBE") == 0, "11-char partial method: need more");
    ok(req("ABCDEFGHIJKL") == -400, "method longer than any known: 400 early");
    ok(req("G@T / HTTP/1.1\r\n") == -400, "non-token char in method");
    ok(req(" GET / HTTP/1.1\r\n") == -400, "leading SP");
    ok(req("GET\t/ HTTP/1.1\r\n") == -400, "HTAB after method");
    ok(req("GET\r\n") == -400, "method then CRLF");
}

static void test_target(void)
{
    static char big[8192];
    int r;

    ok(req("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "two SP before target");
    ok(req("GET /  HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "two SP after target");
    ok(req("GET  HTTP/1.1\r\n") == -400, "empty target");
    ok(req("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "CTL in target");
    ok(req("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "DEL in target");
    ok(req("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n") == -400,
       "UTF-8 in target");
    ok(req("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n") == -400, "HTAB in target");
    ok(req("GET /foo bar/ HTTP/1.1\r\nHost: a\r\n\r\n") == -400,
       "space in target");
    ok(req("GET /\r\n\r\n") == -400, "HTTP/0.9 request line");
    r = req("GET /with_\"q\"|x?a=b#f HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(r > 0 && sp(hd.target, "/with_\"q\"|x?a=b#f"), "quotes, | and # ok");
    r = req("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(r > 0 && sp(hd.target, "*"), "asterisk-form");
    r = req("CONNECT a.b:443 HTTP/1.1\r\nHost: a.b:443\r\n\r\n");
    ok(r > 0 && sp(hd.target, "a.b:443"), "authority-form");

    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 4095);
    strcpy(big + 4100, " HTTP/1.1\r\nHost: a\r\n\r\n");
    r = req(big);
    ok(r > 0 && hd.target.len == 4096, "target of exactly max_target");
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 4096);
    strcpy(big + 4101, " HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(req(big) == -414, "target of max_target + 1: 414");
    big[4101] = '\0';
    ok(req(big) == -414, "414 before the request line is complete");
    big[4100] = '\0';
    ok(req(big) == 0, "max_target bytes of target, line not complete: 0");
    ok(reql("GET /abcdef", 8192, 10, 4) == -414, "small max_target");
}

static void test_version(void)
{
    ok(req("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == -505, "HTTP/2.0: 505");
    ok(req("GET / HTTP/0.9\r\n\r\n") == -505, "HTTP/0.9: 505");
    ok(req("GET / HTTP/5.6") == -505, "HTTP/5.6 without CRLF: 505 early");
    ok(req("GET / HTTP/1.2\r\n") == -505, "HTTP/1.2: 505");
    ok(req("GET / HTTP/1.10\r\n") == -400, "HTTP/1.10: 400");
    ok(req("GET / HTTP/2.00\r\n") == -400, "HTTP/2.00: 400");
    ok(req("GET / http/1.1\r\n") == -400, "lower-case http");
    ok(req("GET / HTTP/1\r\n") == -400, "HTTP/1");
    ok(req("GET / HTTP/11\r\n") == -400, "HTTP/11");
    ok(req("GET / HTTP/1.") == 0, "partial version: need more");
    ok(req("GET / HTTP/1.1") == 0, "version without CRLF: need more");
    ok(req("GET / ICE/1.0\r\n") == -400, "ICE/1.0");
    ok(req("GET / RTSP/1.0\r\n") == -400, "RTSP/1.0");
    ok(req("GET / IHTTP/1.0\r\n") == -400, "IHTTP/1.0");
    ok(req("GET / HTTP/1.1 \r\nHost: a\r\n\r\n") == -400, "SP after version");
    ok(req("GET / HTTP/1.1\n") == -400, "bare LF after version");
    ok(req("GET / HTTP/1.1\rHost: a\r\n\r\n") == -400, "bare CR after version");
}

static void test_fields(void)
{
    char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    int r;

    ok(req("GET / HTTP/1.1\nHost: a\n\n") == -400, "LF-only lines");
    ok(reqh("Foo: 1\rBar: 2\r\n") == -400, "CR inside a value");
    ok(reqh("Foo: 1\nBar: 2\r\n") == -400, "LF inside a value");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\n\rZ") == -400, "CR then junk at end");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\n\n") == -400, "bare LF at end");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\n\r") == 0, "final CR: need more");
    ok(reqh("Foo : bar\r\n") == -400, "SP before colon");
    ok(reqh("Foo\t: bar\r\n") == -400, "HTAB before colon");
    ok(reqh(": bar\r\n") == -400, "empty field name");
    ok(reqh("Fo@: bar\r\n") == -400, "'@' in field name");
    ok(reqh("Foo\x01\test: bar\r\n") == -400, "CTL in field name");
    ok(reqh("Foo\r\n") == -400, "field line without colon");
    ok(reqh("Foo: a\r\n b\r\n") == -400, "obs-fold");
    ok(reqh("Foo: a\r\n\tb\r\n") == -400, "obs-fold with HTAB");
    ok(req("GET / HTTP/1.1\r\n Host: a\r\n\r\n") == -400,
       "SP before the first field");
    ok(reqn(nul, sizeof nul - 1) == -400, "NUL in value");
    ok(reqh("X: a\x01 b\r\n") == -400, "CTL in value");
    ok(reqh("X: a\x7f\r\n") == -400, "DEL in value");
    ok(reqh("X: \x1b[0m\r\n") == -400, "ESC in value");
    r = reqh("X: D\xc3\xbcsseldorf \xff\r\n");
    ok(r > 0 && sp(fl[1].value, "D\xc3\xbcsseldorf \xff"), "obs-text in value");
    r = reqh("X: \t a \t b\t \r\n");
    ok(r > 0 && sp(fl[1].value, "a \t b"), "OWS trimmed, inner WS kept");
    r = reqh("X:\r\n");
    ok(r > 0 && fl[1].value.len == 0, "empty value");
    r = reqh("X:   \t\r\n");
    ok(r > 0 && fl[1].value.len == 0, "whitespace-only value is empty");
    r = reqh("X:v\r\n");
    ok(r > 0 && sp(fl[1].name, "X") && sp(fl[1].value, "v"), "no OWS");
    r = reqh("aaaaaaaaaaaaa:++++++++++\r\n");
    ok(r > 0 && sp(fl[1].value, "++++++++++"), "DUMBPACK");
    r = reqh("!#$%&'*+-.^_`|~09azAZ: x\r\n");
    ok(r > 0 && sp(fl[1].name, "!#$%&'*+-.^_`|~09azAZ"), "all tchar in name");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\nX-Partial") == 0,
       "partial field name: need more");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\nX-Partial: va") == 0,
       "partial value: need more");
    ok(req("GET / HTTP/1.1\r\nHost: a\r\nX: v\r") == 0,
       "value then CR: need more");
}

static void test_limits(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n"; /* 34 */
    char buf[256];
    size_t i, n = strlen(s);
    int all;

    ok(reql(s, 8192, 2, 4096) == (int)n, "max_fields: 2 fields with cap 2");
    ok(reql(s, 8192, 1, 4096) == -431, "max_fields: 2 fields with cap 1");
    ok(reql(s, 8192, 0, 4096) == -431, "max_fields 0");
    ok(reql(s, n, 100, 4096) == (int)n, "head of exactly max_head");
    ok(reql(s, n - 1, 100, 4096) == -431, "head of max_head + 1");
    ok(reql("GET / HTTP/1.1\r\nHost: a\r\n", 64, 100, 4096) == 0,
       "incomplete below max_head: need more");
    memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    memset(buf + 28, 'x', 101);
    buf[129] = '\0';
    ok(reql(buf, 64, 100, 4096) == -431, "incomplete at max_head: 431");
    ok(reql(buf, 130, 100, 4096) == 0, "incomplete, 129 < max_head 130: 0");
    ok(reql(buf, 129, 100, 4096) == -431, "incomplete, len == max_head: 431");
    ok(reql("\r\n\r\n\r\n\r\n", 8, 100, 4096) == -431,
       "only empty lines up to max_head: 431");

    /* every strict prefix of a valid head is "need more" */
    all = 1;
    for (i = 0; i < n; i++)
        if (reqn(s, i) != 0) all = 0;
    ok(all, "every prefix of a valid request: need more");
    ok(reqn(s, n) == (int)n, "full: complete");

    /* an error is reported as soon as the offending byte is present */
    {
        const char *bad = "GET / HTTP/1.1\r\nHost: a\r\nFoo : b\r\n\r\n";
        size_t at = strlen("GET / HTTP/1.1\r\nHost: a\r\nFoo");

        all = 1;
        for (i = 0; i <= at; i++)
            if (reqn(bad, i) != 0) all = 0;
        ok(all, "prefixes before the bad byte: need more");
        ok(reqn(bad, at + 1) == -400, "prefix with the bad byte: 400");
    }
    {
        const char *rs = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        size_t rn = strlen(rs);

        all = 1;
        for (i = 0; i < rn; i++)
            if (h1_parse_response(rs, i, &hd, fl, &lim) != 0) all = 0;
        ok(all, "every prefix of a valid response: need more");
    }
}

static void test_content_length(void)
{
    ok(post("Content-Length: 5\r\n") > 0 && hd.content_length == 5 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_HAS_CL),
       "Content-Length 5, HAS_CL");
    ok(post("Content-Length: 003\r\n") > 0 && hd.content_length == 3,
       "leading zeros");
    ok(post("Content-Length: 0\r\n") > 0 && hd.content_length == 0, "zero");
    ok(post("conTENT-Length: 7\r\n") > 0 && hd.content_length == 7,
       "name case-insensitive");
    ok(post("Content-Length:  42 \r\n") > 0 && hd.content_length == 42,
       "surrounding spaces");
    ok(post("Content-Length:\t42\t  \r\n") > 0 && hd.content_length == 42,
       "surrounding tabs");
    ok(post("Content-Length: 5, 5\r\n") > 0 && hd.content_length == 5,
       "list of identical values");
    ok(post("Content-Length: 5,5 ,  5\r\n") > 0 && hd.content_length == 5,
       "list of three identical values");
    ok(post("Content-Length: 5\r\nContent-Length: 5\r\n") > 0 &&
           hd.content_length == 5,
       "two identical lines");
    ok(post("Content-Length: 5, 6\r\n") == -400, "differing list");
    ok(post("Content-Length: 1\r\nContent-Length: 2\r\n") == -400,
       "differing lines");
    ok(post("Content-Length: 5\r\nContent-Length: 5, 6\r\n") == -400,
       "second line with differing list");
    ok(post("Content-Length:\r\n") == -400, "empty");
    ok(post("Content-Length: +5\r\n") == -400, "plus sign");
    ok(post("Content-Length: -1\r\n") == -400, "minus sign");
    ok(post("Content-Length: 4 2\r\n") == -400, "space inside");
    ok(post("Content-Length: 13 37\r\n") == -400, "space inside #2");
    ok(post("Content-Length: 5,\r\n") == -400, "trailing comma");
    ok(post("Content-Length: ,5\r\n") == -400, "leading comma");
    ok(post("Content-Length: 5,,5\r\n") == -400, "empty list element");
    ok(post("Content-Length: 0x5\r\n") == -400, "hex");
    ok(post("Content-Length: 5a\r\n") == -400, "trailing letter");
    ok(post("Content-Length: 9223372036854775807\r\n") > 0 &&
           hd.content_length == INT64_MAX,
       "INT64_MAX accepted");
    ok(post("Content-Length: 9223372036854775808\r\n") == -400,
       "INT64_MAX + 1: overflow");
    ok(post("Content-Length: 1000000000000000000000\r\n") == -400,
       "huge: overflow");
    ok(req("PUT /url HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n") ==
           -400,
       "differing CL detected before the head is complete");
}

static void test_transfer_encoding(void)
{
    ok(post("Transfer-Encoding: chunked\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CHUNKED | H1_F_TE) &&
           hd.content_length == -1,
       "chunked: CHUNKED|TE");
    ok(post("Transfer-Encoding: ChUnKeD\r\n") > 0 &&
           (hd.flags & H1_F_CHUNKED),
       "chunked case-insensitive");
    ok(post("Transfer-Encoding: chunked \t\r\n") > 0 &&
           (hd.flags & H1_F_CHUNKED),
       "chunked with trailing OWS");
    ok(post("Transfer-Encoding: , chunked ,\r\n") > 0 &&
           (hd.flags & H1_F_CHUNKED),
       "empty list elements ignored");
    ok(post("Transfer-Encoding: gzip, chunked\r\n") == -501, "gzip, chunked");
    ok(post("Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n") ==
           -501,
       "deflate + chunked over two lines");
    ok(post("Transfer-Encoding: identity, chunked\r\n") == -501,
       "identity, chunked");
    ok(post("Transfer-Encoding: gzip\r\n") == -501, "gzip alone");
    ok(post("Transfer-Encoding: identity\r\n") == -501, "identity alone");
    ok(post("Transfer-Encoding: compress\r\n") == -501, "compress");
    ok(post("Transfer-Encoding: pigeons\r\n") == -501, "unknown token");
    ok(post("Transfer-Encoding:\r\n") == -501, "empty value");
    ok(post("Transfer-Encoding: chunked, gzip\r\n") == -400,
       "chunked not last");
    ok(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: deflate\r\n") ==
           -400,
       "chunked not last over two lines");
    ok(post("Transfer-Encoding: chunked, chunked\r\n") == -400,
       "chunked twice");
    ok(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") ==
           -400,
       "chunked twice over two lines");
    ok(post("Transfer-Encoding: xchunked\r\n") == -400, "xchunked");
    ok(post("Transfer-Encoding: chunkedchunked\r\n") == -400,
       "chunkedchunked");
    ok(post("Transfer-Encoding: chunked;x\r\n") == -400, "chunked;x");
    ok(post("Transfer-Encoding: \"chunked\"\r\n") == -400, "quoted chunked");
    ok(post("Transfer-Encoding: gzip, xchunked\r\n") == -400,
       "look-alike after gzip");
    ok(post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") == -400,
       "TE then CL");
    ok(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") == -400,
       "CL then TE");
    ok(post("Content-Length: 1\r\nTransfer-Encoding: identity\r\n") == -400,
       "CL + TE identity");
    ok(post("Content-Length: 10\r\nTransfer-Encoding:\r\n") == -400,
       "CL + empty TE");
    ok(req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == -400,
       "TE in HTTP/1.0");
    ok(req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, g") == 0,
       "partial TE line: need more");
}

static void test_connection(void)
{
    ok(reqh("Connection: close\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CONN_CLOSE),
       "Connection: close");
    ok(reqh("Connection: close\t\r\n") > 0 && (hd.flags & H1_F_CONN_CLOSE),
       "close followed by tab");
    ok(reqh("connection: Keep-Alive\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CONN_KEEPALIVE),
       "Connection: Keep-Alive");
    ok(reqh("Connection: close, token, upgrade, token, keep-alive\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CONN_CLOSE |
                        H1_F_CONN_KEEPALIVE | H1_F_CONN_UPGRADE),
       "Connection list: three flags");
    ok(reqh("Connection: Something\r\nConnection: UPGRADE\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CONN_UPGRADE),
       "Connection over two lines");
    ok(reqh("Connection: closed, keep-alive2\r\n") > 0 &&
           hd.flags == H1_F_HAS_HOST,
       "look-alike tokens set nothing");
    ok(reqh("Connection: upgrade\r\nUpgrade: websocket\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_CONN_UPGRADE | H1_F_UPGRADE),
       "Upgrade header");
    ok(reqh("Expect: 100-continue\r\n") > 0 &&
           hd.flags == (H1_F_HAS_HOST | H1_F_EXPECT_CONTINUE),
       "Expect: 100-continue");
    ok(reqh("expect: 100-Continue\r\n") > 0 &&
           (hd.flags & H1_F_EXPECT_CONTINUE),
       "Expect case-insensitive");
    ok(reqh("Expect: 200-ok\r\n") > 0 && hd.flags == H1_F_HAS_HOST,
       "other Expect: no flag, accepted");
    ok(reqh("Connection : upgrade\r\n") == -400, "Connection SP colon");
}

static void test_helpers(void)
{
    const char *v = "a, b,,c , \"x,\\\"y\" ,  ";
    size_t pos = 0, s = 0, n = 0;
    struct h1_span span = {2, 4};

    ok(h1_span_eq("xxHoStyy", span, "host"), "span_eq case-insensitive");
    ok(!h1_span_eq("xxHoStyy", span, "hos"), "span_eq shorter string");
    ok(!h1_span_eq("xxHoStyy", span, "hosts"), "span_eq longer string");
    span.len = 0;
    ok(h1_span_eq("xx", span, ""), "span_eq empty");

    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 1 && n == 1 && v[s] == 'a',
       "list: a");
    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 1 && n == 1 && v[s] == 'b',
       "list: b");
    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 1 && n == 1 && v[s] == 'c',
       "list: c (empty element skipped, OWS trimmed)");
    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 1 && n == 7 &&
           memcmp(v + s, "\"x,\\\"y\"", 7) == 0,
       "list: quoted string keeps its comma");
    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 0, "list: end");
    ok(h1_list_next(v, strlen(v), &pos, &s, &n) == 0, "list: end again");
    pos = 0;
    ok(h1_list_next("", 0, &pos, &s, &n) == 0, "list: empty value");
    pos = 0;
    ok(h1_list_next(" , ,\t", 5, &pos, &s, &n) == 0, "list: only separators");
    pos = 0;
    ok(h1_list_next("close", 5, &pos, &s, &n) == 1 && s == 0 && n == 5 &&
           pos == 5,
       "list: single element");
    pos = 0;
    ok(h1_list_next("\"a,b", 4, &pos, &s, &n) == 1 && s == 0 && n == 4 &&
           h1_list_next("\"a,b", 4, &pos, &s, &n) == 0,
       "list: unterminated quote runs to the end");
    pos = 0;
    ok(h1_list_next("x\t,\ty", 5, &pos, &s, &n) == 1 && n == 1 &&
           h1_list_next("x\t,\ty", 5, &pos, &s, &n) == 1 && s == 4 && n == 1,
       "list: HTAB is OWS");
}

static void test_response(void)
{
    int r;

    r = resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    ok(r == 38 && hd.status == 200 && hd.version == 11, "200 OK");
    ok(sp(hd.reason, "OK") && hd.content_length == 5 &&
           hd.flags == H1_F_HAS_CL,
       "reason, content-length, flags");
    r = resp("HTTP/1.0 404 Not Found\r\n\r\n");
    ok(r > 0 && hd.status == 404 && hd.version == 10 &&
           sp(hd.reason, "Not Found"),
       "HTTP/1.0 404 Not Found");
    r = resp("HTTP/1.1 200 \r\n\r\n");
    ok(r == 17 && hd.reason.len == 0, "empty reason after SP");
    r = resp("HTTP/1.1 204\r\n\r\n");
    ok(r == 16 && hd.status == 204 && hd.reason.len == 0, "no SP, no reason");
    r = resp("HTTP/1.1 999 X \xe9\t y\r\n\r\n");
    ok(r > 0 && hd.status == 999 && sp(hd.reason, "X \xe9\t y"),
       "999, reason with obs-text and HTAB");
    ok(resp("HTTP/1.1 100 Continue\r\n\r\n") > 0 && hd.status == 100, "100");
    ok(resp("HTTP/1.1 099 X\r\n\r\n") == -400, "status 099");
    ok(resp("HTTP/1.1 20 OK\r\n\r\n") == -400, "2-digit status");
    ok(resp("HTTP/1.1 2000 OK\r\n\r\n") == -400, "4-digit status");
    ok(resp("HTTP/1.1 2x0 OK\r\n\r\n") == -400, "non-digit status");
    ok(resp("HTTP/1.1  200 OK\r\n\r\n") == -400, "two SP before status");
    ok(resp("HTTP/1.1 200 O\x01K\r\n\r\n") == -400, "CTL in reason");
    ok(resp("HTTP/2.0 200 OK\r\n\r\n") == -505, "HTTP/2.0 response");
    ok(resp("HTTP/1.1 200 OK\n\n") == -400, "bare LF in response");
    ok(resp("ICY 200 OK\r\n\r\n") == -400, "ICY response");
    ok(resp("\r\nHTTP/1.1 200 OK\r\n\r\n") == -400,
       "no empty line before a status line");
    ok(resp("HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\n\r\n") > 0 &&
           hd.host.len == 0 && !(hd.flags & H1_F_HAS_HOST),
       "Host ignored in responses");
    ok(resp("HTTP/1.1 20") == 0, "partial status: need more");
    ok(resph("Content-Length: 1\r\nContent-Length: 2\r\n") == -400,
       "differing CL");
    ok(resph("Content-Length: 3, 3\r\n") > 0 && hd.content_length == 3,
       "identical CL list");
    ok(resph("Transfer-Encoding: chunked\r\n") > 0 &&
           hd.flags == (H1_F_CHUNKED | H1_F_TE),
       "response chunked");
    ok(resph("Transfer-Encoding: gzip, chunked\r\n") > 0 &&
           hd.flags == (H1_F_CHUNKED | H1_F_TE),
       "response gzip, chunked: chunked final");
    ok(resph("Transfer-Encoding: chunked, gzip\r\n") > 0 &&
           hd.flags == H1_F_TE,
       "response chunked not final: TE only (close-delimited)");
    ok(resph("Transfer-Encoding: gzip\r\n") > 0 && hd.flags == H1_F_TE,
       "response gzip: TE only");
    ok(resph("Transfer-Encoding: xchunked\r\n") > 0 && hd.flags == H1_F_TE,
       "response look-alike: TE only");
    ok(resph("Transfer-Encoding: chunked, chunked\r\n") == -400,
       "response chunked twice");
    ok(resph("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n") == -400,
       "response TE + CL");
    ok(resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == -400,
       "response TE in HTTP/1.0");
    ok(resph("Connection: close\r\n") > 0 && hd.flags == H1_F_CONN_CLOSE,
       "response Connection: close");
    ok(resph("Foo : bar\r\n") == -400, "response SP before colon");
    ok(resph("Foo: a\r\n b\r\n") == -400, "response obs-fold");
}

/* ------------------------------------------------------------ chunked */

/** Decoding outcome of dechunk(). */
struct dec {
    int err;          /* h1_chunk_parse returned -1 */
    int done;         /* h1_chunk_done at the end */
    size_t consumed;  /* bytes consumed in total */
    size_t plen;      /* payload bytes */
    char payload[512]; /* payload, concatenated */
};

/**
 * Feeds in[0..n) to a fresh decoder in pieces of at most step bytes (a
 * caller that keeps unconsumed bytes and appends the next piece), or split
 * once at `split` when step is 0.
 */
static void dechunk(const char *in, size_t n, size_t step, size_t split,
                    size_t max_line, size_t max_trailer, struct dec *d)
{
    struct h1_chunk c;
    size_t avail = 0, pos = 0, off, len;
    ssize_t r;

    memset(d, 0, sizeof *d);
    h1_chunk_init(&c, max_line, max_trailer);
    for (;;) {
        size_t want = step ? pos + step : (avail < split ? split : n);

        avail = want < n ? want : n;
        do {
            r = h1_chunk_parse(&c, in + pos, avail - pos, &off, &len);
            if (r < 0) {
                d->err = 1;
                d->consumed = pos;
                return;
            }
            if (len) {
                if (d->plen + len <= sizeof d->payload)
                    memcpy(d->payload + d->plen, in + pos + off, len);
                d->plen += len;
            }
            pos += (size_t)r;
        } while (r > 0 && !h1_chunk_done(&c));
        if (h1_chunk_done(&c) || avail == n) break;
    }
    d->done = h1_chunk_done(&c);
    d->consumed = pos;
}

/** 1 if decoding `in` (whole, byte by byte, and split at every offset)
 *  always gives payload `want`, done, with `rest` bytes left over. */
static int chunk_all_ways(const char *in, const char *want, size_t rest)
{
    size_t n = strlen(in), i;
    struct dec d;

    dechunk(in, n, n, 0, 256, 1024, &d);
    if (d.err || !d.done || d.consumed != n - rest || d.plen != strlen(want) ||
        memcmp(d.payload, want, d.plen))
        return 0;
    dechunk(in, n, 1, 0, 256, 1024, &d);
    if (d.err || !d.done || d.consumed != n - rest || d.plen != strlen(want) ||
        memcmp(d.payload, want, d.plen))
        return 0;
    for (i = 1; i < n; i++) {
        dechunk(in, n, 0, i, 256, 1024, &d);
        if (d.err || !d.done || d.consumed != n - rest ||
            d.plen != strlen(want) || memcmp(d.payload, want, d.plen))
            return 0;
    }
    return 1;
}

/** 1 if decoding `in` fails, both whole and byte by byte. */
static int chunk_fails(const char *in, size_t max_line, size_t max_trailer)
{
    size_t n = strlen(in);
    struct dec d1, d2;

    dechunk(in, n, n, 0, max_line, max_trailer, &d1);
    dechunk(in, n, 1, 0, max_line, max_trailer, &d2);
    return d1.err && d2.err;
}

static void test_chunked(void)
{
    struct h1_chunk c;
    struct dec d;
    size_t off, len;
    ssize_t r;
    char big[400];

    ok(chunk_all_ways("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world",
                      0),
       "two chunks, all splits");
    ok(chunk_all_ways("a\r\n0123456789\r\nA\r\nabcdefghij\r\n000\r\n\r\n",
                      "0123456789abcdefghij", 0),
       "hex sizes a/A and 000 last chunk");
    ok(chunk_all_ways("5;a=b;c;d=\"x\\\"y;z\" ; e = f\t;g\r\nhello\r\n0\r\n\r\n",
                      "hello", 0),
       "chunk extensions with quoted-string and BWS");
    ok(chunk_all_ways("5;ilovew3=\"I \\\"love\\\"; \\\\extensions\\\\\";"
                      "somuchlove=\"aretheseparametersfor\";blah;foo=bar\r\n"
                      "hello\r\n6;blahblah;blah\r\n world\r\n0\r\n\r\n",
                      "hello world", 0),
       "llhttp extension quoting case");
    ok(chunk_all_ways("5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain"
                      "\r\nX:\r\n\r\n",
                      "hello", 0),
       "trailer fields");
    ok(chunk_all_ways("3\r\nabc\r\n0;x=1\r\n\r\nGET / HTTP/1.1\r\n", "abc", 16),
       "stops at the end of the body, rest left");
    ok(chunk_all_ways("0\r\n\r\n", "", 0), "empty body");
    ok(chunk_all_ways("1\r\n\r\r\n1\r\n\n\r\n0\r\n\r\n", "\r\n", 0),
       "CR/LF as payload bytes");

    h1_chunk_init(&c, 64, 64);
    r = h1_chunk_parse(&c, "ffffffffffffffff\r\nab", 20, &off, &len);
    ok(r == 20 && off == 18 && len == 2 && c.remaining == UINT64_MAX - 2,
       "16 hex digits: max size, payload run returned");
    ok(!h1_chunk_done(&c), "not done mid-chunk");
    h1_chunk_init(&c, 64, 64);
    r = h1_chunk_parse(&c, "3\r\nabcdef", 9, &off, &len);
    ok(r == 6 && off == 3 && len == 3, "stops after one run of payload");
    r = h1_chunk_parse(&c, "\r\n0\r\n\r\nXYZ", 10, &off, &len);
    ok(r == 7 && len == 0 && h1_chunk_done(&c), "then the last chunk: done");
    r = h1_chunk_parse(&c, "XYZ", 3, &off, &len);
    ok(r == 0 && len == 0, "after done: nothing consumed");
    r = h1_chunk_parse(&c, "", 0, &off, &len);
    ok(r == 0, "empty input: 0");

    ok(chunk_fails("11111111111111111\r\n", 64, 64), "17 hex digits");
    ok(chunk_fails("00000000000000000\r\n", 64, 64), "17 zero digits");
    ok(chunk_fails("\r\n", 64, 64), "empty size line");
    ok(chunk_fails("x\r\n", 64, 64), "non-hex size");
    ok(chunk_fails("-1\r\n", 64, 64), "signed size");
    ok(chunk_fails("0x5\r\nhello\r\n0\r\n\r\n", 64, 64), "0x prefix");
    ok(chunk_fails("5 \r\nhello\r\n0\r\n\r\n", 64, 64),
       "whitespace before CRLF");
    ok(chunk_fails("2 erfrferferf\r\naa\r\n0 rrrr\r\n\r\n", 64, 64),
       "no semicolon before extension");
    ok(chunk_fails("2;\r\naa\r\n0\r\n\r\n", 64, 64), "no extension after ;");
    ok(chunk_fails("2;a=\r\naa\r\n0\r\n\r\n", 64, 64), "empty extension value");
    ok(chunk_fails("2;a b\r\naa\r\n0\r\n\r\n", 64, 64), "two names");
    ok(chunk_fails("2;a=b c\r\naa\r\n0\r\n\r\n", 64, 64), "two values");
    ok(chunk_fails("2;a=\"b\r\naa\r\n0\r\n\r\n", 64, 64), "unterminated quote");
    ok(chunk_fails("2;a=\"b\"c\r\naa\r\n0\r\n\r\n", 64, 64),
       "junk after quoted value");
    ok(chunk_fails("2;a=\"\x01\"\r\naa\r\n0\r\n\r\n", 64, 64),
       "CTL in quoted value");
    ok(chunk_fails("2;a@\r\naa\r\n0\r\n\r\n", 64, 64), "bad extension name");
    ok(chunk_fails("5\nhello\r\n0\r\n\r\n", 64, 64), "bare LF after size");
    ok(chunk_fails("5\r\rhello\r\n0\r\n\r\n", 64, 64), "CR CR after size");
    ok(chunk_fails("3 \n  \r\nfoo\r\n\r\n", 64, 64), "Validate chunk parameters");
    ok(chunk_fails("5\r\nhelloX\r\n0\r\n\r\n", 64, 64), "data not followed by CR");
    ok(chunk_fails("5\r\nhello\n0\r\n\r\n", 64, 64), "data then bare LF");
    ok(chunk_fails("5\r\nhello\rX0\r\n\r\n", 64, 64), "data then CR X");
    ok(chunk_fails("3\r\nfoo\r\n\r\n", 64, 64), "missing last chunk");
    ok(chunk_fails("0\r\n Foo: x\r\n\r\n", 64, 64), "trailer obs-fold");
    ok(chunk_fails("0\r\nFoo x\r\n\r\n", 64, 64), "trailer without colon");
    ok(chunk_fails("0\r\n: x\r\n\r\n", 64, 64), "trailer empty name");
    ok(chunk_fails("0\r\nFoo : x\r\n\r\n", 64, 64), "trailer SP before colon");
    ok(chunk_fails("0\r\nFoo: x\n\r\n", 64, 64), "trailer bare LF");
    ok(chunk_fails("0\r\nFoo: a\x01\r\n\r\n", 64, 64), "trailer CTL in value");
    ok(chunk_fails("0\r\n\rX", 64, 64), "final CR then junk");
    ok(chunk_fails("0\r\n\n", 64, 64), "final bare LF");

    /* caps */
    memset(big, 0, sizeof big);
    strcpy(big, "5;");
    memset(big + 2, 'a', 60);
    strcpy(big + 62, "\r\nhello\r\n0\r\n\r\n");
    dechunk(big, strlen(big), 1, 0, 64, 64, &d);
    ok(!d.err && d.done && d.plen == 5, "size line of 64 bytes with cap 64");
    ok(chunk_fails(big, 63, 64), "size line of 64 bytes with cap 63");
    ok(chunk_all_ways("0\r\nA: 12345\r\n\r\n", "", 0), "trailer within caps");
    dechunk("0\r\nA: 12345\r\n\r\n", 15, 1, 0, 10, 12, &d);
    ok(!d.err && d.done, "trailer line of 10 with cap 10, total 12 of 12");
    ok(chunk_fails("0\r\nA: 12345\r\n\r\n", 9, 64), "trailer line over cap");
    ok(chunk_fails("0\r\nA: 12345\r\n\r\n", 64, 11), "trailer total over cap");
    ok(chunk_fails("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 64, 15),
       "many small trailer lines over the total cap");

    /* errors are sticky */
    h1_chunk_init(&c, 64, 64);
    r = h1_chunk_parse(&c, "z", 1, &off, &len);
    ok(r == -1, "error returned");
    r = h1_chunk_parse(&c, "5\r\nhello", 8, &off, &len);
    ok(r == -1 && len == 0, "error is sticky");
}

/* Every octet at every position of a 24-byte value (the word-at-a-time
 * skip of field values and its byte tail): accepted exactly when it is a
 * field-value byte (HTAB, SP, VCHAR, obs-text); a value that only looks
 * bad past the word boundary is judged the same way. */
static void test_value_octets(void)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    char buf[128];
    int bad = 0, c, pos;

    for (c = 0; c < 256; c++) {
        int want = c == '\t' || (c >= 0x20 && c != 0x7f);
        for (pos = 0; pos < 24; pos++) {
            size_t n = sizeof pre - 1;
            int r;
            memcpy(buf, pre, n);
            memset(buf + n, 'v', 24);
            buf[n + pos] = (char)c;
            memcpy(buf + n + 24, "v\r\n\r\n", 5);
            if (c == '\r' && pos < 24) {
                /* a CR followed by 'v': a bare CR, 400 */
                want = 0;
            }
            r = reqn(buf, n + 29);
            if ((r > 0) != want) {
                if (bad++ < 5) printf("# octet 0x%02x at %d: %d\n", c, pos, r);
            }
            if (r > 0 && fl[1].value.len != 25 && c != '\t' && c != ' ') bad++;
        }
    }
    ok(bad == 0, "field value: each octet at each position judged by its class");
}

int main(void)
{
    test_request_basic();
    test_methods();
    test_target();
    test_version();
    test_fields();
    test_value_octets();
    test_limits();
    test_content_length();
    test_transfer_encoding();
    test_connection();
    test_helpers();
    test_response();
    test_chunked();
    return tap_done();
}
