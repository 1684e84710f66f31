/*
 * Unit tests of src/accesslog.c: the common line byte for byte (Traefik's
 * CLF), the JSON line parsed back with every Traefik key and its type,
 * configuration errors by key path, filters (status ranges, minDuration,
 * retryAttempts, OR), field modes (keep / drop / redact), header modes
 * (default drop, keep with canonical names and joined repeats, redact),
 * bufferingSize, an overlong line, ring overflow on a pipe nobody reads
 * (al_write never blocks, drops counted, nothing else lost), reopen after a
 * rename (logrotate), and 4 threads x 10,000 lines (each exactly once,
 * never interleaved).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "conf.h"
#include "tap.h"

static char dir[64];                /* the test's temporary directory */
static struct conf_session *sess;   /* session of the last mk() */
static int64_t t0;                  /* 26/Nov/2026:04:00:00 UTC, ns */

/** Monotonic clock, ms. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** Builds an access log from a JSON text (errors kept in sess). */
static struct al_log *mk(const char *json, unsigned nworkers)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    struct al_log *l = NULL;

    if (!v) {
        printf("# bad test JSON: %s\n", e.text);
        return NULL;
    }
    conf_session_free(sess);
    sess = conf_session_new("accessLog");
    if (al_new(conf_session_root(sess, v), nworkers, &l) < 0) l = NULL;
    json_decref(v);
    for (size_t i = 0; i < conf_session_nerrors(sess); i++)
        printf("# error: %s\n", conf_session_error(sess, i));
    return l;
}

/** Reads a whole file (NUL-terminated, caller frees); "" when missing. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    n = (long)fread(buf, 1, (size_t)n, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/** Prints s as TAP comments when the last test failed. */
static int diag_last_failed; /* tap_failed at the previous call */
static void diag_if_failed(const char *s)
{
    if (tap_failed != diag_last_failed) {
        printf("#   got:\n");
        while (*s) {
            const char *e = strchr(s, '\n');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            printf("#   %.*s\n", (int)n, s);
            s += n + (e != NULL);
        }
    }
    diag_last_failed = tap_failed;
}

/** Number of '\n' in s. */
static size_t nlines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/** A header. */
static struct msg_hdr H(const char *n, const char *v)
{
    struct msg_hdr h = {n, v, (uint32_t)strlen(n), (uint32_t)strlen(v)};
    return h;
}

/** The sample exchange: GET /a?b=c from 127.0.0.1:51000, 200, 12 bytes,
 *  3.4 ms, router r1@file. */
static struct al_record sample(void)
{
    struct al_record r;

    memset(&r, 0, sizeof r);
    r.client_ip = "127.0.0.1";
    r.client_port = 51000;
    r.start_ns = t0 + 123456000;
    r.duration_ns = 3400000;
    r.origin_duration_ns = 3000000;
    r.method = "GET";
    r.method_len = 3;
    r.path = "/a";
    r.path_len = 2;
    r.query = "b=c";
    r.query_len = 3;
    r.protocol = "HTTP/1.1";
    r.authority = "example.com:8080";
    r.authority_len = 16;
    r.entry_point = "web";
    r.router = "r1@file";
    r.service = "s1@file";
    r.service_url = "http://127.0.0.1:8080";
    r.status = 200;
    r.origin_status = 200;
    r.content_size = 12;
    r.origin_content_size = 12;
    r.request_count = 1;
    return r;
}

/** The path of file `name` in the test directory. */
static const char *fpath(const char *name)
{
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/** Writes the records to a fresh log configured by json_fmt (its %s is
 *  the file path) and returns the file's bytes. */
static char *run(const char *json_fmt, const char *file, const struct al_record *rs,
                 size_t n)
{
    char cfg[2048];
    struct al_log *l;

    unlink(fpath(file));
    snprintf(cfg, sizeof cfg, json_fmt, fpath(file));
    l = mk(cfg, 1);
    if (!l) return strdup("(al_new failed)");
    for (size_t i = 0; i < n; i++) al_write(l, 0, &rs[i]);
    al_free(l);
    return slurp(fpath(file));
}

/* ------------------------------------------------------------ common */

static void test_common(void)
{
    struct msg_hdr hs[2] = {H("user-agent", "curl/8"), H("Accept", "*/*")};
    struct al_record r = sample(), rs[3];
    char *out;
    const char *want =
        "127.0.0.1 - - [26/Nov/2026:04:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 "
        "\"-\" \"curl/8\" 1 \"r1@file\" \"http://127.0.0.1:8080\" 3ms\n";

    r.req_headers = hs;
    r.n_req_headers = 2;
    out = run("{\"filePath\":\"%s\",\"fields\":{\"headers\":{\"names\":"
              "{\"User-Agent\":\"keep\"}}}}",
              "common.log", &r, 1);
    ok(!strcmp(out, want), "common line byte-exact");
    diag_if_failed(out);
    free(out);

    /* defaults: headers dropped (Traefik), so referer and agent are "-" */
    rs[0] = r;
    rs[1] = r; /* user, no router, no server, no query, 0.9 ms, 502 */
    rs[1].username = "alice";
    rs[1].router = NULL;
    rs[1].service_url = NULL;
    rs[1].query = NULL;
    rs[1].duration_ns = 900000;
    rs[1].status = 502;
    rs[1].content_size = 0;
    rs[1].request_count = 2;
    rs[2] = r; /* IPv6, HTTP/1.0, empty query kept as "?" */
    rs[2].client_ip = "::1";
    rs[2].protocol = "HTTP/1.0";
    rs[2].query = "";
    rs[2].query_len = 0;
    rs[2].duration_ns = 12345678901LL;
    out = run("{\"filePath\":\"%s\",\"format\":\"common\"}", "common2.log", rs, 3);
    ok(!strcmp(out,
               "127.0.0.1 - - [26/Nov/2026:04:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 "
               "\"-\" \"-\" 1 \"r1@file\" \"http://127.0.0.1:8080\" 3ms\n"
               "127.0.0.1 - alice [26/Nov/2026:04:00:00 +0000] \"GET /a HTTP/1.1\" 502 0 "
               "\"-\" \"-\" 2 \"-\" \"-\" 0ms\n"
               "::1 - - [26/Nov/2026:04:00:00 +0000] \"GET /a? HTTP/1.0\" 200 12 "
               "\"-\" \"-\" 1 \"r1@file\" \"http://127.0.0.1:8080\" 12345ms\n"),
       "defaults: headers dropped, user, missing router/server as \"-\", IPv6, "
       "ms truncated");
    diag_if_failed(out);
    free(out);

    /* a leap day, the end of a year, and a control byte in the agent */
    {
        struct tm tm = {.tm_year = 2028 - 1900, .tm_mon = 1, .tm_mday = 29,
                        .tm_hour = 23, .tm_min = 59, .tm_sec = 59};
        struct msg_hdr bad[1] = {H("User-Agent", "x\001y")};
        rs[0] = r;
        rs[0].start_ns = (int64_t)timegm(&tm) * 1000000000LL;
        rs[0].req_headers = bad;
        rs[0].n_req_headers = 1;
        out = run("{\"filePath\":\"%s\",\"fields\":{\"headers\":{\"defaultMode\":\"keep\"}}}",
                  "common3.log", rs, 1);
        ok(!strncmp(out, "127.0.0.1 - - [29/Feb/2028:23:59:59 +0000]", 42) &&
               strstr(out, "\"x\\x01y\"") != NULL,
           "leap day date, control byte as \\x01");
        diag_if_failed(out);
        free(out);
    }
}

/* -------------------------------------------------------------- json */

/** The JSON object of line i (0-based) of text, or NULL. */
static json_t *line_json(const char *text, size_t i)
{
    const char *p = text, *e;
    json_error_t err;

    while (i-- && p) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return NULL;
    e = strchr(p, '\n');
    return json_loadb(p, e ? (size_t)(e - p) : strlen(p), 0, &err);
}

/** Whether o.key is the string want. */
static int jstr(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || strcmp(json_string_value(v), want)) {
        printf("#   %s = %s (want \"%s\")\n", key,
               v ? (json_is_string(v) ? json_string_value(v) : "(not a string)") : "(absent)",
               want);
        return 0;
    }
    return 1;
}

/** Whether o.key is the integer want. */
static int jint(json_t *o, const char *key, long long want)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) != want) {
        printf("#   %s: not the integer %lld\n", key, want);
        return 0;
    }
    return 1;
}

static void test_json(void)
{
    struct msg_hdr rq[2] = {H("User-Agent", "curl/8"), H("X-Forwarded-For", "203.0.113.7")};
    struct al_record rs[3];
    char *out;
    json_t *o;
    int good;
    static const char *const keys[] = {
        "ClientAddr", "ClientHost", "ClientPort", "ClientUsername",
        "DownstreamContentSize", "DownstreamStatus", "Duration",
        "OriginContentSize", "OriginDuration", "OriginStatus", "Overhead",
        "RequestAddr", "RequestContentSize", "RequestCount", "RequestHost",
        "RequestMethod", "RequestPath", "RequestPort", "RequestProtocol",
        "RequestScheme", "RetryAttempts", "RouterName", "ServiceAddr",
        "ServiceName", "ServiceURL", "StartLocal", "StartUTC",
        "entryPointName", "level", "msg", "time"};
    size_t nkeys = sizeof keys / sizeof keys[0];

    setenv("TZ", "CET-1", 1); /* UTC+1, no DST rule */
    tzset();
    rs[0] = sample();
    rs[1] = sample(); /* TLS, IPv6, compressed, retried, no origin Host port */
    rs[1].client_ip = "::1";
    rs[1].client_port = 5;
    rs[1].tls_version = "1.3";
    rs[1].tls_cipher = "TLS_AES_128_GCM_SHA256";
    rs[1].origin_content_size = 30;
    rs[1].retry_attempts = 2;
    rs[1].authority = "example.com";
    rs[1].authority_len = 11;
    rs[1].start_ns = t0;
    rs[1].username = "bob";
    rs[1].req_headers = rq;
    rs[1].n_req_headers = 2;
    rs[2] = sample(); /* answered by relais itself: no origin fields */
    rs[2].origin_status = 0;
    rs[2].router = NULL;
    rs[2].service = NULL;
    rs[2].service_url = NULL;
    rs[2].entry_point = NULL;
    rs[2].authority = NULL;
    out = run("{\"filePath\":\"%s\",\"format\":\"json\"}", "json.log", rs, 3);
    ok(nlines(out) == 3, "3 JSON lines");

    o = line_json(out, 0);
    ok(o && json_object_size(o) == nkeys, "line 1: an object with %zu keys (got %zu)",
       nkeys, o ? json_object_size(o) : 0);
    good = o != NULL;
    for (size_t i = 0; o && i < nkeys; i++)
        if (!json_object_get(o, keys[i])) {
            printf("#   missing %s\n", keys[i]);
            good = 0;
        }
    ok(good, "line 1: every Traefik key present");
    ok(o && jstr(o, "ClientAddr", "127.0.0.1:51000") && jstr(o, "ClientHost", "127.0.0.1") &&
           jstr(o, "ClientPort", "51000") && jstr(o, "ClientUsername", "-") &&
           jint(o, "DownstreamContentSize", 12) && jint(o, "DownstreamStatus", 200) &&
           jint(o, "Duration", 3400000) && jint(o, "OriginContentSize", 12) &&
           jint(o, "OriginDuration", 3000000) && jint(o, "OriginStatus", 200) &&
           jint(o, "Overhead", 400000) && jstr(o, "RequestAddr", "example.com:8080") &&
           jint(o, "RequestContentSize", 0) && jint(o, "RequestCount", 1) &&
           jstr(o, "RequestHost", "example.com") && jstr(o, "RequestMethod", "GET") &&
           jstr(o, "RequestPath", "/a?b=c") && jstr(o, "RequestPort", "8080") &&
           jstr(o, "RequestProtocol", "HTTP/1.1") && jstr(o, "RequestScheme", "http") &&
           jint(o, "RetryAttempts", 0) && jstr(o, "RouterName", "r1@file") &&
           jstr(o, "ServiceAddr", "127.0.0.1:8080") && jstr(o, "ServiceName", "s1@file") &&
           jstr(o, "ServiceURL", "http://127.0.0.1:8080") &&
           jstr(o, "StartUTC", "2026-11-26T04:00:00.123456Z") &&
           jstr(o, "StartLocal", "2026-11-26T05:00:00.123456+01:00") &&
           jstr(o, "entryPointName", "web") && jstr(o, "level", "info") &&
           jstr(o, "msg", "") && jstr(o, "time", "2026-11-26T05:00:00+01:00"),
       "line 1: values and types (durations in ns, StartUTC RFC 3339 with ns)");
    {
        /* Go's encoder sorts keys: upper case first, then entryPointName,
         * level, msg, time */
        const char *a = strstr(out, "\"ClientAddr\""), *b = strstr(out, "\"TLS");
        const char *c = strstr(out, "\"StartUTC\""), *d = strstr(out, "\"entryPointName\"");
        const char *e = strstr(out, "\"level\""), *f = strstr(out, "\"time\"");
        ok(a == out + 1 && c && d && e && f && c < d && d < e && e < f && (!b || b > strchr(out, '\n')),
           "line 1: keys in Go's sorted order, no TLS keys on a plain connection");
    }
    json_decref(o);

    o = line_json(out, 1);
    ok(o && jstr(o, "ClientAddr", "[::1]:5") && jstr(o, "ClientHost", "203.0.113.7") &&
           jstr(o, "ClientUsername", "bob") && jstr(o, "RequestScheme", "https") &&
           jstr(o, "TLSVersion", "1.3") && jstr(o, "TLSCipher", "TLS_AES_128_GCM_SHA256") &&
           jint(o, "RetryAttempts", 2) && jstr(o, "RequestHost", "example.com") &&
           jstr(o, "RequestPort", "-") && jstr(o, "StartUTC", "2026-11-26T04:00:00Z") &&
           json_is_real(json_object_get(o, "GzipRatio")) &&
           json_real_value(json_object_get(o, "GzipRatio")) == 2.5 &&
           !json_object_get(o, "request_User-Agent"),
       "line 2: IPv6 ClientAddr, X-Forwarded-For as ClientHost, TLS fields, GzipRatio "
       "2.5, RequestPort \"-\", whole-second StartUTC, headers dropped by default");
    json_decref(o);

    o = line_json(out, 2);
    ok(o && !json_object_get(o, "OriginStatus") && !json_object_get(o, "OriginDuration") &&
           !json_object_get(o, "OriginContentSize") && !json_object_get(o, "RouterName") &&
           !json_object_get(o, "ServiceURL") && !json_object_get(o, "RequestAddr") &&
           !json_object_get(o, "entryPointName") && jint(o, "Overhead", 3400000),
       "line 3: no origin, router, service, Host: those keys are absent, "
       "Overhead = Duration");
    json_decref(o);
    free(out);

    /* escaping: quotes, HTML characters, invalid UTF-8, a line separator */
    {
        struct msg_hdr ua[1] = {H("User-Agent", "a\"b<c>&\\d\xff" "e\xe2\x80\xa8" "f\xc3\xa9")};
        rs[0] = sample();
        rs[0].req_headers = ua;
        rs[0].n_req_headers = 1;
        out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"fields\":{\"headers\":"
                  "{\"defaultMode\":\"keep\"}}}",
                  "json2.log", rs, 1);
        o = line_json(out, 0);
        ok(o && jstr(o, "request_User-Agent", "a\"b<c>&\\d\xef\xbf\xbd" "e\xe2\x80\xa8" "f\xc3\xa9") &&
               strstr(out, "\\u003cc\\u003e\\u0026") && strstr(out, "\\ufffd") &&
               strstr(out, "\\u2028"),
           "escaping like Go: \\\" \\u003c \\u003e \\u0026, invalid byte as U+FFFD, "
           "U+2028 escaped, valid UTF-8 kept");
        diag_if_failed(out);
        json_decref(o);
        free(out);
    }
    setenv("TZ", "UTC", 1);
    tzset();
}

/* ----------------------------------------------------------- config */

static void test_config_errors(void)
{
    static const struct {
        const char *json; /* accessLog */
        const char *err;  /* expected error text (prefix) */
    } cases[] = {
        {"{\"format\":\"xml\"}", "accessLog.format: expected common or json"},
        {"{\"bufferingSize\":-1}", "accessLog.bufferingSize: expected a number of lines"},
        {"{\"filters\":{\"statusCodes\":[\"200\",\"abc\"]}}",
         "accessLog.filters.statusCodes[1]: expected a status code or a range"},
        {"{\"filters\":{\"statusCodes\":[\"302-300\"]}}",
         "accessLog.filters.statusCodes[0]: expected a status code or a range"},
        {"{\"filters\":{\"minDuration\":\"soon\"}}", "accessLog.filters.minDuration: "},
        {"{\"fields\":{\"defaultMode\":\"hide\"}}",
         "accessLog.fields.defaultMode: expected keep, drop or redact"},
        {"{\"fields\":{\"names\":{\"ClientHost\":\"hide\"}}}",
         "accessLog.fields.names.ClientHost: expected keep, drop or redact"},
        {"{\"fields\":{\"headers\":{\"names\":{\"Authorization\":\"x\"}}}}",
         "accessLog.fields.headers.names.Authorization: expected keep, drop or redact"},
        {"[1]", "accessLog: expected a map"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct al_log *l = mk(cases[i].json, 1);
        ok(!l && conf_session_nerrors(sess) >= 1 &&
               !strncmp(conf_session_error(sess, 0), cases[i].err, strlen(cases[i].err)),
           "%s -> %s", cases[i].json,
           conf_session_nerrors(sess) ? conf_session_error(sess, 0) : "(no error)");
        al_free(l);
    }
    {
        char cfg[256];
        struct al_log *l;
        snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s/file/sub.log\"}", dir);
        close(open(fpath("file"), O_WRONLY | O_CREAT, 0600));
        l = mk(cfg, 1);
        ok(!l && conf_session_nerrors(sess) == 1 &&
               strstr(conf_session_error(sess, 0), "accessLog.filePath: cannot open"),
           "unopenable filePath: %s",
           conf_session_nerrors(sess) ? conf_session_error(sess, 0) : "(no error)");
        /* parent directories are created, like Traefik */
        snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s/d1/d2/x.log\",\"addInternals\":true}", dir);
        l = mk(cfg, 1);
        struct stat st;
        ok(l && stat(fpath("d1/d2/x.log"), &st) == 0 && (st.st_mode & 0777) == 0640 &&
               al_add_internals(l) == 1,
           "missing directories created, file mode 0640, addInternals read");
        al_free(l);
        l = mk("null", 2);
        ok(l && al_dropped(l) == 0 && al_add_internals(l) == 0,
           "null accessLog: defaults (standard output)");
        al_free(l);
        al_free(NULL);
        ok(1, "al_free(NULL) is a no-op");
    }
}

/* ---------------------------------------------------------- filters */

/** The RequestCount values of the JSON lines in text, as a string
 *  "a,b,c". */
static void counts(const char *text, char *out, size_t cap)
{
    size_t n = nlines(text);
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = line_json(text, i);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%lld", i ? "," : "",
                 o ? (long long)json_integer_value(json_object_get(o, "RequestCount")) : -1LL);
        json_decref(o);
    }
}

static void test_filters(void)
{
    struct al_record rs[8];
    char got[256];
    char *out;
    /* id: status, duration ms, retries */
    static const int spec[8][3] = {{200, 1, 0}, {301, 1, 0}, {303, 1, 0}, {404, 5, 0},
                                   {500, 11, 0}, {500, 10, 0}, {503, 1, 1}, {302, 1, 0}};

    for (int i = 0; i < 8; i++) {
        rs[i] = sample();
        rs[i].request_count = (uint64_t)i + 1;
        rs[i].status = spec[i][0];
        rs[i].duration_ns = spec[i][1] * 1000000LL;
        rs[i].retry_attempts = (unsigned)spec[i][2];
    }
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"statusCodes\":"
              "[\"200\",\"300-302\"]}}", "f1.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "1,2,8"), "statusCodes 200, 300-302: kept %s", got);
    free(out);
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"statusCodes\":"
              "\"404,500-599\"}}", "f1b.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "4,5,6,7"), "statusCodes as one \"404,500-599\" string: kept %s", got);
    free(out);
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"minDuration\":\"10ms\"}}",
              "f2.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "5"), "minDuration 10ms: only longer than 10 ms (10 ms exactly is "
                          "not kept): %s", got);
    free(out);
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"retryAttempts\":true}}",
              "f3.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "7"), "retryAttempts: only retried: %s", got);
    free(out);
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"statusCodes\":[\"404\"],"
              "\"retryAttempts\":true,\"minDuration\":\"10ms\"}}", "f4.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "4,5,7"), "all three filters: ANY match keeps (OR): %s", got);
    free(out);
    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"filters\":{\"retryAttempts\":false,"
              "\"statusCodes\":[]}}", "f5.log", rs, 8);
    counts(out, got, sizeof got);
    ok(!strcmp(got, "1,2,3,4,5,6,7,8"), "empty filters keep everything: %s", got);
    free(out);
}

/* ----------------------------------------------------------- fields */

static void test_fields(void)
{
    struct msg_hdr rq[5] = {H("user-agent", "curl/8"), H("Authorization", "Basic eA=="),
                            H("x-multi", "a"), H("X-MULTI", "b"), H("Accept", "*/*")};
    struct msg_hdr og[1] = {H("Content-Type", "text/plain")};
    struct msg_hdr dn[2] = {H("Content-Type", "text/plain"), H("Server", "relais")};
    struct al_record r = sample();
    char *out;
    json_t *o;

    r.req_headers = rq;
    r.n_req_headers = 5;
    r.origin_headers = og;
    r.n_origin_headers = 1;
    r.down_headers = dn;
    r.n_down_headers = 2;

    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"fields\":{\"names\":"
              "{\"ClientHost\":\"drop\",\"RouterName\":\"redact\",\"downstreamstatus\":\"drop\","
              "\"Duration\":\"redact\",\"NoSuchField\":\"drop\"}}}", "m1.log", &r, 1);
    o = line_json(out, 0);
    ok(o && !json_object_get(o, "ClientHost") && !json_object_get(o, "DownstreamStatus") &&
           jstr(o, "RouterName", "REDACTED") && jstr(o, "Duration", "REDACTED") &&
           jstr(o, "ClientAddr", "127.0.0.1:51000") && !json_object_get(o, "request_User-Agent"),
       "fields.names: drop removes the key, redact writes \"REDACTED\" (names "
       "case-insensitive, unknown ignored), headers dropped by default");
    json_decref(o);
    free(out);

    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"fields\":{\"defaultMode\":\"drop\","
              "\"names\":{\"RequestHost\":\"keep\"}}}", "m2.log", &r, 1);
    o = line_json(out, 0);
    ok(o && json_object_size(o) == 4 && jstr(o, "RequestHost", "example.com") &&
           jstr(o, "level", "info") && jstr(o, "msg", "") && json_object_get(o, "time"),
       "defaultMode drop + RequestHost keep: RequestHost, level, msg, time only");
    diag_if_failed(out);
    json_decref(o);
    free(out);

    out = run("{\"filePath\":\"%s\",\"format\":\"json\",\"fields\":{\"defaultMode\":\"drop\","
              "\"headers\":{\"defaultMode\":\"keep\",\"names\":{\"authorization\":\"redact\","
              "\"User-Agent\":\"drop\"}}}}", "m3.log", &r, 1);
    o = line_json(out, 0);
    ok(o && jstr(o, "request_Authorization", "REDACTED") &&
           !json_object_get(o, "request_User-Agent") && jstr(o, "request_X-Multi", "a,b") &&
           jstr(o, "request_Accept", "*/*") && jstr(o, "origin_Content-Type", "text/plain") &&
           jstr(o, "downstream_Content-Type", "text/plain") &&
           jstr(o, "downstream_Server", "relais") && json_object_size(o) == 9,
       "headers.defaultMode keep: request_/origin_/downstream_ keys with canonical "
       "names, repeats joined with ',', per-header redact and drop");
    diag_if_failed(out);
    {
        const char *a = strstr(out, "request_Accept"), *b = strstr(out, "request_Authorization");
        const char *c = strstr(out, "request_X-Multi"), *d = strstr(out, "downstream_Content");
        const char *e = strstr(out, "\"level\""), *f = strstr(out, "origin_Content");
        ok(d && e && f && a && b && c && d < e && e < f && f < a && a < b && b < c,
           "header keys sorted like Go (downstream_ < level < origin_ < request_, "
           "names sorted)");
    }
    json_decref(o);
    free(out);

    out = run("{\"filePath\":\"%s\",\"fields\":{\"names\":{\"ClientHost\":\"drop\","
              "\"RouterName\":\"redact\",\"ClientUsername\":\"redact\"},\"headers\":{"
              "\"names\":{\"User-Agent\":\"redact\",\"Referer\":\"keep\"}}}}", "m4.log", &r, 1);
    ok(!strcmp(out, "- - REDACTED [26/Nov/2026:04:00:00 +0000] \"GET /a?b=c HTTP/1.1\" 200 12 "
                    "\"-\" \"REDACTED\" 1 \"REDACTED\" \"http://127.0.0.1:8080\" 3ms\n"),
       "common format: dropped field '-', redacted \"REDACTED\", missing Referer '-'");
    diag_if_failed(out);
    free(out);
}

/* -------------------------------------------------- buffering / long */

static void test_buffering(void)
{
    char cfg[256];
    struct al_record r = sample();
    struct al_log *l;
    int64_t t, waited;
    char *s;
    int ok1;

    unlink(fpath("b.log"));
    snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s\",\"bufferingSize\":5}", fpath("b.log"));
    l = mk(cfg, 1);
    for (int i = 0; i < 3; i++) al_write(l, 0, &r);
    t = now_ms();
    usleep(30000);
    s = slurp(fpath("b.log"));
    waited = now_ms() - t;
    if (waited < AL_FLUSH_MS - 20)
        ok(strlen(s) == 0, "bufferingSize 5: 3 lines wait (%lld ms later the file is empty)",
           (long long)waited);
    else
        ok(1, "# SKIP the check came %lld ms late", (long long)waited);
    free(s);
    ok1 = 0;
    while (now_ms() - t < 3000) {
        s = slurp(fpath("b.log"));
        ok1 = nlines(s) == 3;
        free(s);
        if (ok1) break;
        usleep(5000);
    }
    waited = now_ms() - t;
    ok(ok1 && waited >= AL_FLUSH_MS - 15,
       "...and are written after about %d ms anyway (%lld ms)", AL_FLUSH_MS, (long long)waited);
    for (int i = 0; i < 5; i++) al_write(l, 0, &r);
    t = now_ms();
    ok1 = 0;
    while (now_ms() - t < 3000) {
        s = slurp(fpath("b.log"));
        ok1 = nlines(s) == 8;
        free(s);
        if (ok1) break;
        usleep(2000);
    }
    ok(ok1, "5 more lines reach bufferingSize and are written (%lld ms)",
       (long long)(now_ms() - t));
    al_free(l);

    /* a line longer than AL_LINE_MAX is dropped and counted */
    {
        size_t n = AL_LINE_MAX + 10;
        char *p = malloc(n);
        memset(p, 'a', n);
        p[0] = '/';
        unlink(fpath("long.log"));
        snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s\"}", fpath("long.log"));
        l = mk(cfg, 1);
        r.path = p;
        r.path_len = n;
        al_write(l, 0, &r);
        r = sample();
        al_write(l, 0, &r);
        al_flush(l);
        s = slurp(fpath("long.log"));
        ok(al_dropped(l) == 1 && nlines(s) == 1, "overlong line dropped and counted, "
                                                  "the next one written");
        free(s);
        al_write(l, 7, &r); /* no such worker */
        ok(al_dropped(l) == 2, "a worker index out of range is counted, not a crash");
        al_free(l);
        free(p);
    }
}

/* ---------------------------------------------------------- overflow */

/** Drains a pipe, counting lines, until EOF. */
static void *pipe_reader(void *arg)
{
    int fd = *(int *)arg;
    static size_t lines;
    char buf[65536];
    ssize_t n;

    lines = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
    return &lines;
}

static void test_overflow(void)
{
    int pfd[2];
    char cfg[256], path[300];
    struct al_log *l;
    struct al_record r = sample();
    const int total = 30000;
    int64_t t, worst = 0, all;
    pthread_t th;
    void *res;
    size_t got;

    memset(path, 'p', sizeof path);
    path[0] = '/';
    r.path = path;
    r.path_len = 200; /* ~300-byte lines: 30,000 of them are ~9 MB */
    if (pipe(pfd) < 0) {
        ok(0, "pipe: %s", strerror(errno));
        return;
    }
    snprintf(cfg, sizeof cfg, "{\"filePath\":\"/dev/fd/%d\"}", pfd[1]);
    l = mk(cfg, 1);
    close(pfd[1]); /* the log has its own descriptor */
    ok(l != NULL, "log on a pipe nobody reads");
    if (!l) return;
    all = now_ms();
    for (int i = 0; i < total; i++) {
        struct timespec a, b;
        int64_t us;
        clock_gettime(CLOCK_MONOTONIC, &a);
        r.request_count = (uint64_t)i;
        al_write(l, 0, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        if (us > worst) worst = us;
    }
    all = now_ms() - all;
    ok(all < 5000 && al_dropped(l) > 0,
       "%d lines in %lld ms while the writer is stuck: never blocked (slowest call "
       "%lld us), %llu dropped and counted", total, (long long)all, (long long)worst,
       (unsigned long long)al_dropped(l));
    t = now_ms();
    pthread_create(&th, NULL, pipe_reader, &pfd[0]);
    al_free(l); /* the writer finishes once the reader drains the pipe */
    pthread_join(th, &res);
    got = *(size_t *)res;
    close(pfd[0]);
    /* al_dropped read before al_free: recount from the numbers */
    ok(got > 0 && got < (size_t)total, "reader got %zu lines after %lld ms", got,
       (long long)(now_ms() - t));
    {
        /* nothing lost beyond what was counted: run again, keep the count */
        if (pipe(pfd) < 0) return;
        snprintf(cfg, sizeof cfg, "{\"filePath\":\"/dev/fd/%d\"}", pfd[1]);
        l = mk(cfg, 1);
        close(pfd[1]);
        for (int i = 0; i < total; i++) al_write(l, 0, &r);
        uint64_t dropped = al_dropped(l);
        pthread_create(&th, NULL, pipe_reader, &pfd[0]);
        al_flush(l);
        ok(al_dropped(l) == dropped, "no more drops once the reader drains");
        al_free(l);
        pthread_join(th, &res);
        got = *(size_t *)res;
        close(pfd[0]);
        ok(got + dropped == (size_t)total, "written %zu + dropped %llu == %d", got,
           (unsigned long long)dropped, total);
    }
}

/* ------------------------------------------------------------ reopen */

static void test_reopen(void)
{
    char cfg[256];
    struct al_record r = sample();
    struct al_log *l;
    char *a, *b;

    unlink(fpath("rot.log"));
    unlink(fpath("rot.log.1"));
    snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s\",\"format\":\"json\"}", fpath("rot.log"));
    l = mk(cfg, 2);
    for (int i = 1; i <= 10; i++) {
        r.request_count = (uint64_t)i;
        al_write(l, (unsigned)i % 2, &r);
    }
    al_flush(l);
    ok(rename(fpath("rot.log"), fpath("rot.log.1")) == 0, "logrotate renames the file");
    al_reopen(l);
    for (int i = 11; i <= 20; i++) {
        r.request_count = (uint64_t)i;
        al_write(l, 0, &r);
    }
    al_flush(l);
    a = slurp(fpath("rot.log.1"));
    b = slurp(fpath("rot.log"));
    {
        char ga[128], gb[128];
        counts(a, ga, sizeof ga);
        counts(b, gb, sizeof gb);
        ok(nlines(a) == 10 && nlines(b) == 10 && strstr(gb, "11,12,13") == gb,
           "after al_reopen new lines land in a new file of the same name (old: %s; "
           "new: %s)", ga, gb);
    }
    free(a);
    free(b);
    al_free(l);
}

/* ------------------------------------------------------- multithread */

#define NT 4
#define PER 10000

/** One producer thread. */
struct prod {
    struct al_log *l; /* the log */
    unsigned w;       /* worker index */
};

/** Writes PER lines with ids w*PER + i, pausing 1 ms every 100 lines (a
 *  fast proxy: 100,000 lines/s per worker). */
static void *producer(void *arg)
{
    struct prod *p = arg;
    struct al_record r = sample();
    char path[32];

    for (unsigned i = 0; i < PER; i++) {
        r.request_count = (uint64_t)p->w * PER + i;
        r.path_len = (size_t)snprintf(path, sizeof path, "/t%u/%u", p->w, i);
        r.path = path;
        r.query = NULL;
        al_write(p->l, p->w, &r);
        if (i % 100 == 99) usleep(1000);
    }
    return NULL;
}

static void test_threads(void)
{
    char cfg[256];
    struct al_log *l;
    pthread_t th[NT];
    struct prod pr[NT];
    unsigned char *seen = calloc(NT * PER, 1);
    char *s, *p, *e;
    size_t lines = 0, bad = 0, dup = 0, missing = 0;
    int64_t t = now_ms();

    unlink(fpath("mt.log"));
    snprintf(cfg, sizeof cfg, "{\"filePath\":\"%s\",\"bufferingSize\":100}", fpath("mt.log"));
    l = mk(cfg, NT);
    for (unsigned i = 0; i < NT; i++) {
        pr[i].l = l;
        pr[i].w = i;
        pthread_create(&th[i], NULL, producer, &pr[i]);
    }
    for (unsigned i = 0; i < NT; i++) pthread_join(th[i], NULL);
    ok(al_dropped(l) == 0, "4 x %d lines: none dropped (%lld ms)", PER,
       (long long)(now_ms() - t));
    al_free(l);
    s = slurp(fpath("mt.log"));
    for (p = s; *p; p = e + 1) {
        unsigned w, i, id;
        char tail[64];
        e = strchr(p, '\n');
        if (!e) {
            bad++;
            break;
        }
        *e = 0;
        lines++;
        /* "127.0.0.1 - - [..] "GET /tW/I HTTP/1.1" 200 12 "-" "-" ID "r1@file" ... */
        if (sscanf(p, "127.0.0.1 - - [26/Nov/2026:04:00:00 +0000] \"GET /t%u/%u HTTP/1.1\" "
                      "200 12 \"-\" \"-\" %u \"r1@file\" \"http://127.0.0.1:8080\" %63s",
                   &w, &i, &id, tail) != 4 ||
            strcmp(tail, "3ms") || w >= NT || i >= PER || id != w * PER + i) {
            if (bad++ < 3) printf("#   bad line: %s\n", p);
            continue;
        }
        if (seen[id]++) dup++;
    }
    for (size_t i = 0; i < NT * PER; i++) missing += !seen[i];
    ok(lines == NT * PER && !bad && !dup && !missing,
       "%zu lines, %zu malformed or interleaved, %zu duplicated, %zu missing", lines, bad,
       dup, missing);
    free(s);
    free(seen);
}

int main(void)
{
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 26, .tm_hour = 4};

    setenv("TZ", "UTC", 1);
    tzset();
    t0 = (int64_t)timegm(&tm) * 1000000000LL;
    snprintf(dir, sizeof dir, "/tmp/test_accesslog.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_common();
    test_json();
    test_config_errors();
    test_filters();
    test_fields();
    test_buffering();
    test_overflow();
    test_reopen();
    test_threads();
    conf_session_free(sess);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    }
    return tap_done();
}
