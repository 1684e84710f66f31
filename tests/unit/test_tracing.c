/*
 * Unit tests of src/tracing.c: traceparent parsing (valid, uppercase hex,
 * all-zero ids, lengths, version 00 vs future versions, ff), formatting,
 * the TraceIdRatioBased decision over 100,000 random ids (within 1 %),
 * one span's OTLP JSON byte for byte and parsed back with jansson (query
 * redaction, captured headers, escaping), configuration errors by key
 * path, ring overflow counted (exporter held), export with retries
 * against an in-process receiver that answers 503 first, and 4 threads x
 * 5,000 spans (each exported exactly once or counted as dropped).
 */
#include "config.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"
#include "tracing.h"

static struct conf_session *sess; /* session of the last mk() */

/** Builds a tracer from a JSON text (errors kept in sess, printed). */
static struct trc_tracer *mk(const char *json, unsigned nworkers, int check, int *rc)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    struct trc_tracer *t = NULL;

    if (!v) {
        printf("# bad test JSON: %s\n", e.text);
        *rc = -2;
        return NULL;
    }
    conf_session_free(sess);
    sess = conf_session_new("tracing");
    *rc = trc_new(conf_session_root(sess, v), nworkers, check, &t);
    json_decref(v);
    for (size_t i = 0; i < conf_session_nerrors(sess); i++)
        printf("# error: %s\n", conf_session_error(sess, i));
    return t;
}

/** 1 when some error of the last mk() contains s. */
static int has_error(const char *s)
{
    for (size_t i = 0; i < conf_session_nerrors(sess); i++)
        if (strstr(conf_session_error(sess, i), s)) return 1;
    return 0;
}

/* ------------------------------------------------------------- receiver */

/** An in-process OTLP receiver: answers `fail` POSTs with 503, then 200;
 *  counts the spans of the bodies it accepts and keeps their ids. */
struct rcv {
    int fd;                /* listening socket */
    int port;              /* its port */
    int fail;              /* POSTs still to refuse */
    int stop;              /* stop asked */
    pthread_t th;          /* the thread */
    pthread_mutex_t mu;    /* guards the counters and ids */
    int posts;             /* POSTs seen */
    size_t spans;          /* spans accepted */
    json_t *ids;           /* spanId -> count */
    char *last;            /* last accepted body (malloc) */
};

/** Reads one HTTP request from fd; returns its body (malloc) or NULL. */
static char *rcv_read(int fd)
{
    size_t cap = 1 << 16, len = 0, need = 0, hl = 0;
    char *buf = malloc(cap + 1), *end;

    while (buf) {
        ssize_t n;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = 0;
        if (!hl && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            char *cl = strcasestr(buf, "content-length:");
            hl = (size_t)(end - buf) + 4;
            need = hl + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (hl && len >= need) {
            memmove(buf, buf + hl, len - hl);
            buf[len - hl] = 0;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

/** The receiver thread. */
static void *rcv_main(void *arg)
{
    struct rcv *r = arg;

    for (;;) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int c, refuse;
        char *body;

        pthread_mutex_lock(&r->mu);
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        pthread_mutex_unlock(&r->mu);
        if (poll(&p, 1, 20) <= 0) continue;
        c = accept(r->fd, NULL, NULL);
        if (c < 0) continue;
        body = rcv_read(c);
        pthread_mutex_lock(&r->mu);
        r->posts++;
        refuse = r->fail > 0;
        if (refuse) r->fail--;
        if (body && !refuse) {
            json_t *doc = json_loads(body, 0, NULL);
            json_t *spans;

            spans = json_object_get(
                json_array_get(
                    json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0),
                                    "scopeSpans"),
                    0),
                "spans");
            for (size_t i = 0; i < json_array_size(spans); i++) {
                const char *id = json_string_value(
                    json_object_get(json_array_get(spans, i), "spanId"));
                json_t *n = id ? json_object_get(r->ids, id) : NULL;
                json_object_set_new(r->ids, id ? id : "?",
                                    json_integer(n ? json_integer_value(n) + 1 : 1));
                r->spans++;
            }
            json_decref(doc);
            free(r->last);
            r->last = body;
            body = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        free(body);
        {
            const char *a = refuse ? "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n\r\n"
                                   : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
            ssize_t w = write(c, a, strlen(a));
            (void)w;
        }
        close(c);
    }
    return NULL;
}

/** Starts a receiver on 127.0.0.1 (an ephemeral port). */
static int rcv_start(struct rcv *r, int fail)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;

    memset(r, 0, sizeof(*r));
    r->fail = fail;
    r->ids = json_object();
    pthread_mutex_init(&r->mu, NULL);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(r->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(r->fd, 64) < 0) return -1;
    getsockname(r->fd, (struct sockaddr *)&sa, &sl);
    r->port = ntohs(sa.sin_port);
    return pthread_create(&r->th, NULL, rcv_main, r) ? -1 : 0;
}

/** Stops and frees a receiver. */
static void rcv_stop(struct rcv *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    close(r->fd);
    json_decref(r->ids);
    free(r->last);
    pthread_mutex_destroy(&r->mu);
}

/* ---------------------------------------------------------------- tests */

/** traceparent parsing and formatting. */
static void test_traceparent(void)
{
    struct trc_ctx c;
    char out[56];
    const char *good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    ok(trc_parse_traceparent(good, strlen(good), &c) == 0 && c.flags == 1 &&
           c.trace_id[0] == 0x0a && c.trace_id[15] == 0x9c && c.span_id[0] == 0xb7 &&
           c.span_id[7] == 0x31,
       "a valid traceparent is parsed");
    trc_format_traceparent(&c, out);
    out[55] = 0;
    ok(!strcmp(out, good), "formatted back byte for byte");
    ok(trc_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", 55, &c) ==
               0 &&
           c.flags == 0,
       "flags 00 (not sampled) is valid");
    ok(trc_parse_traceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", 55, &c) <
           0,
       "uppercase hex in the trace id is refused");
    ok(trc_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01", 55, &c) <
           0,
       "uppercase hex in the parent id is refused");
    ok(trc_parse_traceparent("00-00000000000000000000000000000000-b7ad6b7169203331-01", 55, &c) <
           0,
       "an all-zero trace id is refused");
    ok(trc_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", 55, &c) <
           0,
       "an all-zero parent id is refused");
    ok(trc_parse_traceparent(good, 54, &c) < 0, "too short is refused");
    ok(trc_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x", 57,
                             &c) < 0,
       "version 00 with trailing data is refused");
    ok(trc_parse_traceparent("00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01", 55, &c) <
           0,
       "a wrong separator is refused");
    ok(trc_parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55, &c) <
           0,
       "version ff is refused");
    ok(trc_parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds",
                             strlen("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-holds"),
                             &c) == 0 &&
           c.flags == 1,
       "a future version with more fields after '-' is parsed (its first four fields)");
    ok(trc_parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55, &c) ==
           0,
       "a future version of exactly 55 characters is parsed");
    ok(trc_parse_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", 56, &c) <
           0,
       "a future version continued without '-' is refused");
    ok(trc_parse_traceparent("0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 54, &c) < 0,
       "a one-digit version is refused");
}

/** TraceIdRatioBased over random ids; ids from the workers' generators. */
static void test_sampling(void)
{
    int rc;
    struct trc_tracer *t = mk("{\"otlp\":{\"http\":{\"endpoint\":\"http://127.0.0.1:9/v1/traces\"}}}",
                              2, 0, &rc);
    uint8_t id[16], id2[16];
    const double rates[] = {0.1, 0.25, 0.5, 0.9};
    int zero = 0;

    ok(t != NULL, "tracer created");
    if (!t) return;
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        int n = 0;
        for (int i = 0; i < 100000; i++) {
            trc_random(t, 0, id, 16);
            n += trc_ratio_sampled(id, rates[k]);
        }
        ok(n >= (int)(100000 * (rates[k] - 0.01)) && n <= (int)(100000 * (rates[k] + 0.01)),
           "sampleRate %.2f: %d of 100000 sampled (within 1 %%)", rates[k], n);
    }
    ok(trc_ratio_sampled(id, 1.0) == 1 && trc_ratio_sampled(id, 0.0) == 0,
       "rate 1 samples, rate 0 does not");
    memset(id, 0xff, 16);
    ok(trc_ratio_sampled(id, 0.999999) == 0, "the highest id is not sampled at 0.999999");
    memset(id, 0, 16);
    id[0] = 1;
    ok(trc_ratio_sampled(id, 0.000001) == 1, "a low id is sampled at 0.000001 (deterministic)");
    for (int i = 0; i < 10000; i++) {
        trc_random(t, 1, id, 8);
        if (!memcmp(id, "\0\0\0\0\0\0\0\0", 8)) zero++;
    }
    trc_random(t, 0, id, 16);
    trc_random(t, 1, id2, 16);
    ok(!zero && memcmp(id, id2, 16), "ids are never zero and differ between workers");
    trc_free(t);
}

/** One span, byte for byte and parsed back. */
static void test_encode(void)
{
    int rc;
    struct trc_tracer *t = mk("{\"capturedRequestHeaders\":[\"X-Req\"],"
                              "\"capturedResponseHeaders\":[\"x-resp\"],"
                              "\"safeQueryParams\":[\"keep\"]}",
                              1, 0, &rc);
    struct msg_hdr rq[] = {{"X-Req", "a\"b", 5, 3}, {"Other", "no", 5, 2}, {"x-req", "two", 5, 3}};
    struct msg_hdr rs[] = {{"X-Resp", "r", 6, 1}};
    struct trc_attr a[] = {
        {"http.request.method", "GET", 3, 0, 0},
        {"url.query", "keep=1&secret=2&flag", 20, 0, 1},
        {"url.full", "http://h/p?secret=x&keep=y", 26, 0, 12},
        {"http.response.status_code", NULL, 0, 502, 0},
        {"ctl", "a\nb\x01\xff", 5, 0, 0},
    };
    struct trc_span s;
    char buf[4096];
    size_t n;
    const char *want =
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
        "\"parentSpanId\":\"b1b2b3b4b5b6b7b8\",\"traceState\":\"k=v\",\"name\":\"EntryPoint\","
        "\"kind\":2,\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000001000000\",\"attributes\":["
        "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
        "{\"key\":\"url.query\",\"value\":{\"stringValue\":\"keep=1&secret=REDACTED&flag\"}},"
        "{\"key\":\"url.full\",\"value\":{\"stringValue\":\"http://h/p?secret=REDACTED&keep=y\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"502\"}},"
        "{\"key\":\"ctl\",\"value\":{\"stringValue\":\"a\\u000ab\\u0001\\ufffd\"}},"
        "{\"key\":\"http.request.header.x-req\",\"value\":{\"arrayValue\":{\"values\":["
        "{\"stringValue\":\"a\\\"b\"},{\"stringValue\":\"two\"}]}}},"
        "{\"key\":\"http.response.header.x-resp\",\"value\":{\"arrayValue\":{\"values\":["
        "{\"stringValue\":\"r\"}]}}}],\"status\":{\"code\":2}}";
    json_t *doc;
    json_error_t e;

    ok(t != NULL, "tracer with captured headers and safe params");
    if (!t) return;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 16; i++) s.trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++) s.span_id[i] = (uint8_t)(0xa1 + i);
    for (int i = 0; i < 8; i++) s.parent_id[i] = (uint8_t)(0xb1 + i);
    s.trace_state = "k=v";
    s.trace_state_len = 3;
    s.name = "EntryPoint";
    s.kind = TRC_KIND_SERVER;
    s.start_ns = 1700000000000000000LL;
    s.end_ns = 1700000000001000000LL;
    s.error = 1;
    s.attrs = a;
    s.nattrs = sizeof(a) / sizeof(a[0]);
    s.req_hdrs = rq;
    s.n_req_hdrs = 3;
    s.resp_hdrs = rs;
    s.n_resp_hdrs = 1;
    n = trc_encode_span(t, &s, buf, sizeof(buf));
    buf[n] = 0;
    ok(n > 0 && !strcmp(buf, want), "the span's OTLP JSON, byte for byte");
    if (strcmp(buf, want)) printf("# got  %s\n# want %s\n", buf, want);
    doc = json_loads(buf, 0, &e);
    ok(doc && json_integer_value(json_object_get(doc, "kind")) == 2 &&
           !strcmp(json_string_value(json_object_get(doc, "traceId")),
                   "0102030405060708090a0b0c0d0e0f10") &&
           json_integer_value(json_object_get(json_object_get(doc, "status"), "code")) == 2 &&
           json_array_size(json_object_get(doc, "attributes")) == 7,
       "it parses back with jansson (kind, ids, status, 7 attributes)");
    json_decref(doc);
    ok(trc_encode_span(t, &s, buf, 100) == 0, "a buffer too small gives 0");
    memset(s.parent_id, 0, 8);
    s.trace_state = NULL;
    s.error = 0;
    s.nattrs = 0;
    s.n_req_hdrs = s.n_resp_hdrs = 0;
    n = trc_encode_span(t, &s, buf, sizeof(buf));
    buf[n] = 0;
    ok(!strstr(buf, "parentSpanId") && !strstr(buf, "traceState") && !strstr(buf, "status") &&
           strstr(buf, "\"attributes\":[]}"),
       "a root span without state, status or attributes omits them");
    trc_free(t);
}

/** Configuration errors by key path; --check makes no thread. */
static void test_config(void)
{
    int rc;
    struct trc_tracer *t;

    t = mk("{\"sampleRate\":2}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.sampleRate: expected a number from 0 to 1"),
       "sampleRate 2: tracing.sampleRate: expected a number from 0 to 1");
    t = mk("{\"sampleRate\":\"x\"}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.sampleRate"), "sampleRate \"x\" refused with its path");
    t = mk("{\"otlp\":{\"grpc\":{}}}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.otlp.grpc: not supported: use otlp.http"),
       "otlp.grpc: not supported: use otlp.http");
    t = mk("{\"otlp\":{\"http\":{\"endpoint\":\"ftp://x\"}}}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.otlp.http.endpoint"), "a bad endpoint is refused");
    t = mk("{\"capturedRequestHeaders\":\"X\"}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.capturedRequestHeaders"), "a header list must be a list");
    t = mk("{\"queueSize\":1}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.queueSize: expected a number from 16"), "queueSize range");
    t = mk("{\"flushInterval\":\"soon\"}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.flushInterval"), "flushInterval must be a duration");
    t = mk("{\"resourceAttributes\":{\"a\":[1]}}", 1, 1, &rc);
    ok(rc < 0 && has_error("tracing.resourceAttributes.a"), "a resource attribute is a scalar");
    t = mk("{\"otlp\":{\"http\":{\"tls\":{\"cert\":\"c.pem\"}}}}", 1, 1, &rc);
    ok(rc < 0 && has_error("cert and key go together"), "tls cert without key refused");
    t = mk("{\"serviceName\":\"x\",\"sampleRate\":0.5,\"resourceAttributes\":{\"a\":\"b\","
           "\"n\":1},\"globalAttributes\":{\"g\":true},\"addInternals\":true,"
           "\"otlp\":{\"http\":{\"endpoint\":\"https://127.0.0.1:1/v1/traces\","
           "\"headers\":{\"Authorization\":\"Bearer x\"},\"tls\":{\"insecureSkipVerify\":true}}}}",
           1, 1, &rc);
    ok(rc == 0 && t == NULL, "a full configuration passes --check (no tracer made)");
    t = mk("null", 1, 1, &rc);
    ok(rc == 0, "tracing: null means all defaults");
}

/** A full ring drops and counts; nothing blocks. */
static void test_overflow(void)
{
    int rc;
    struct trc_tracer *t = mk("{\"queueSize\":16,\"maxRetries\":0,\"flushInterval\":\"1h\","
                              "\"otlp\":{\"http\":{\"endpoint\":\"http://127.0.0.1:9/v1/traces\"}}}",
                              1, 0, &rc);
    struct trc_span s;
    struct trc_attr a = {"k", "v", 1, 0, 0};

    ok(t != NULL, "tracer with queueSize 16");
    if (!t) return;
    trc_hold(t, 1);
    memset(&s, 0, sizeof(s));
    s.name = "x";
    s.kind = TRC_KIND_INTERNAL;
    s.attrs = &a;
    s.nattrs = 1;
    for (int i = 0; i < 20; i++) {
        trc_random(t, 0, s.trace_id, 16);
        trc_random(t, 0, s.span_id, 8);
        trc_submit(t, 0, &s);
    }
    ok(trc_dropped_queue(t) == 4, "20 spans into a queue of 16: 4 dropped (got %llu)",
       (unsigned long long)trc_dropped_queue(t));
    trc_submit(t, 7, &s);
    ok(trc_dropped_queue(t) == 4, "a bad worker index is ignored");
    trc_hold(t, 0);
    trc_flush(t);
    ok(trc_dropped_export(t) == 16 && trc_exported(t) == 0,
       "the 16 queued are dropped when the receiver is dead (got %llu)",
       (unsigned long long)trc_dropped_export(t));
    trc_free(t);
}

/** Export with retries: 503 twice, then 200. */
static void test_retry(void)
{
    struct rcv r;
    char cfg[512];
    int rc;
    struct trc_tracer *t;
    struct trc_span s;

    ok(rcv_start(&r, 2) == 0, "receiver started");
    snprintf(cfg, sizeof(cfg),
             "{\"serviceName\":\"svc\",\"resourceAttributes\":{\"env\":\"test\"},"
             "\"flushInterval\":\"1h\",\"otlp\":{\"http\":{\"endpoint\":"
             "\"http://127.0.0.1:%d/v1/traces\",\"headers\":{\"X-Key\":\"k\"}}}}",
             r.port);
    t = mk(cfg, 1, 0, &rc);
    ok(t != NULL, "tracer to the receiver");
    if (!t) {
        rcv_stop(&r);
        return;
    }
    memset(&s, 0, sizeof(s));
    s.name = "x";
    s.kind = TRC_KIND_SERVER;
    for (int i = 0; i < 3; i++) {
        trc_random(t, 0, s.trace_id, 16);
        trc_random(t, 0, s.span_id, 8);
        trc_submit(t, 0, &s);
    }
    trc_flush(t);
    pthread_mutex_lock(&r.mu);
    ok(r.posts == 3 && r.spans == 3, "503, 503, then 200: 3 POSTs, the 3 spans arrive once");
    {
        json_t *doc = json_loads(r.last ? r.last : "", 0, NULL);
        json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
        json_t *attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
        json_t *scope = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0),
                                        "scope");
        int name = 0, env = 0;
        for (size_t i = 0; i < json_array_size(attrs); i++) {
            json_t *at = json_array_get(attrs, i);
            const char *k = json_string_value(json_object_get(at, "key"));
            const char *v = json_string_value(
                json_object_get(json_object_get(at, "value"), "stringValue"));
            if (k && v && !strcmp(k, "service.name") && !strcmp(v, "svc")) name = 1;
            if (k && v && !strcmp(k, "env") && !strcmp(v, "test")) env = 1;
        }
        ok(name && env && !strcmp(json_string_value(json_object_get(scope, "name")), "relais"),
           "the resource has service.name and resourceAttributes, the scope is relais");
        json_decref(doc);
    }
    pthread_mutex_unlock(&r.mu);
    ok(trc_exported(t) == 3 && trc_dropped_export(t) == 0, "counters: 3 exported, 0 dropped");
    trc_free(t);
    rcv_stop(&r);
}

/** One producer thread of test_threads. */
struct prod {
    struct trc_tracer *t; /* the tracer */
    unsigned worker;      /* its ring */
    int n;                /* spans to submit */
};

/** Submits p->n spans on ring p->worker. */
static void *prod_main(void *arg)
{
    struct prod *p = arg;
    struct trc_span s;
    struct trc_attr a = {"http.request.method", "GET", 3, 0, 0};

    memset(&s, 0, sizeof(s));
    s.name = "EntryPoint";
    s.kind = TRC_KIND_SERVER;
    s.attrs = &a;
    s.nattrs = 1;
    for (int i = 0; i < p->n; i++) {
        trc_random(p->t, p->worker, s.trace_id, 16);
        trc_random(p->t, p->worker, s.span_id, 8);
        trc_submit(p->t, p->worker, &s);
        if (i % 1000 == 999) usleep(1000);
    }
    return NULL;
}

/** 4 threads x 5,000 spans: each arrives once or is counted dropped. */
static void test_threads(void)
{
    struct rcv r;
    char cfg[512];
    int rc, dup = 0;
    struct trc_tracer *t;
    struct prod p[4];
    pthread_t th[4];
    const char *k;
    json_t *v;

    ok(rcv_start(&r, 0) == 0, "receiver started");
    snprintf(cfg, sizeof(cfg),
             "{\"queueSize\":8192,\"batchSize\":1000,\"flushInterval\":\"50ms\","
             "\"otlp\":{\"http\":{\"endpoint\":\"http://127.0.0.1:%d/v1/traces\"}}}",
             r.port);
    t = mk(cfg, 4, 0, &rc);
    ok(t != NULL, "tracer with 4 rings");
    if (!t) {
        rcv_stop(&r);
        return;
    }
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (struct prod){t, i, 5000};
        pthread_create(&th[i], NULL, prod_main, &p[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    trc_flush(t);
    pthread_mutex_lock(&r.mu);
    json_object_foreach(r.ids, k, v) if (json_integer_value(v) != 1) dup++;
    ok(r.spans + trc_dropped_queue(t) == 20000 && dup == 0,
       "20000 spans: %zu received once each + %llu dropped", r.spans,
       (unsigned long long)trc_dropped_queue(t));
    ok(r.spans >= 10000, "most of them arrived (%zu)", r.spans);
    pthread_mutex_unlock(&r.mu);
    trc_free(t);
    rcv_stop(&r);
}

int main(void)
{
    test_traceparent();
    test_sampling();
    test_encode();
    test_config();
    test_overflow();
    test_retry();
    test_threads();
    conf_session_free(sess);
    return tap_done();
}
