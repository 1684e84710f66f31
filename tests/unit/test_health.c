/*
 * Unit tests of src/health.c with a fake host (timers and HTTP calls are
 * recorded and fired by hand): configuration errors named by key path,
 * the probe request (URL, method, headers, timeout), verdicts (2xx/3xx,
 * expected status, redirects, transport errors), the interval chosen by
 * state, passive counting (maxFailedAttempts within failureWindow, reset
 * by a success, penalty ended by the recovery timer).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "health.h"
#include "snapshot.h"
#include "tap.h"

/** A fake timer. */
struct relais_timer {
    void (*cb)(void *arg); /* callback */
    void *arg;             /* its argument */
    int armed;             /* started and not fired */
    uint64_t ms;           /* last delay */
};

/** The fake HTTP call (one at a time). */
struct relais_http_call {
    int live; /* not cancelled / done */
};

static struct relais_http_call fake_call;       /* the call in flight */
static relais_http_callbacks fake_cb;           /* its callbacks */
static void *fake_arg;                          /* their argument */
static char fake_url[512], fake_method[16];     /* its request */
static char fake_hdrs[1024];                    /* "N: V\n" lines */
static uint64_t fake_timeout;                   /* its timeout */
static int fake_ncalls;                         /* calls made */
static struct relais_timer *timers[8];          /* timers made */
static int ntimers;                             /* how many */

static relais_timer *f_timer_new(void (*cb)(void *arg), void *arg)
{
    struct relais_timer *t = calloc(1, sizeof(*t));
    t->cb = cb;
    t->arg = arg;
    if (ntimers < 8) timers[ntimers++] = t;
    return t;
}
static int f_timer_start(relais_timer *t, uint64_t ms)
{
    t->armed = 1;
    t->ms = ms;
    return 0;
}
static void f_timer_stop(relais_timer *t) { t->armed = 0; }
static void f_timer_free(relais_timer *t)
{
    for (int i = 0; i < ntimers; i++)
        if (timers[i] == t) timers[i] = NULL;
    free(t);
}
static relais_http_call *f_http(const relais_http_req *req, const relais_http_callbacks *cb,
                                void *arg)
{
    fake_call.live = 1;
    fake_cb = *cb;
    fake_arg = arg;
    snprintf(fake_url, sizeof(fake_url), "%s", req->url);
    snprintf(fake_method, sizeof(fake_method), "%s", req->method);
    fake_hdrs[0] = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t l = strlen(fake_hdrs);
        snprintf(fake_hdrs + l, sizeof(fake_hdrs) - l, "%s: %s\n", req->headers[i].name,
                 req->headers[i].value);
    }
    fake_timeout = req->timeout_ms;
    fake_ncalls++;
    return &fake_call;
}
static void f_cancel(relais_http_call *c)
{
    if (c) c->live = 0;
}

/* Fires timer t (must be armed). */
static void fire(struct relais_timer *t)
{
    t->armed = 0;
    t->cb(t->arg);
}

/* Builds the session and node for a loadBalancer JSON text. */
static int mk(const char *json, struct conf_session **s, const relais_cfg **lb)
{
    json_error_t e;
    json_t *v = json_loads(json, 0, &e);
    if (!v) return -1;
    *s = conf_session_new("http.services.x@t.loadBalancer");
    *lb = conf_session_root(*s, v);
    json_decref(v);
    return 0;
}

int main(void)
{
    static relais_host host;
    struct snap_server sv[2];
    struct relais_servers servers = {sv, 2};
    struct conf_session *s;
    const relais_cfg *lb;
    struct hl_service *h;
    char msg[200];

    host.size = sizeof(host);
    host.timer_new = f_timer_new;
    host.timer_start = f_timer_start;
    host.timer_stop = f_timer_stop;
    host.timer_free = f_timer_free;
    host.http_request = f_http;
    host.http_cancel = f_cancel;
    memset(sv, 0, sizeof(sv));
    for (int i = 0; i < 2; i++) {
        snprintf(msg, sizeof(msg), "http://127.0.0.1:%d", 8001 + i);
        na_parse_url(msg, &sv[i].u, msg + 100, 100);
        sv[i].url = strdup(msg);
        sv[i].up = 1;
    }

    /* nothing configured */
    mk("{\"servers\":[]}", &s, &lb);
    h = (struct hl_service *)1;
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == 0 && h == NULL, "no block: NULL");
    conf_session_free(s);

    /* errors named by key */
    mk("{\"healthCheck\":{\"mode\":\"grpc\",\"interval\":\"0s\",\"status\":42},"
       "\"passiveHealthCheck\":{\"maxFailedAttempts\":0}}", &s, &lb);
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == -1 && h == NULL, "bad config: -1");
    ok(conf_session_nerrors(s) == 3, "3 errors (active stops the parse), got %zu",
       conf_session_nerrors(s));
    ok(conf_session_nerrors(s) >= 1 &&
           strstr(conf_session_error(s, 0), "healthCheck.mode") != NULL,
       "error path: %s", conf_session_nerrors(s) ? conf_session_error(s, 0) : "");
    conf_session_free(s);
    mk("{\"passiveHealthCheck\":{\"maxFailedAttempts\":0}}", &s, &lb);
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == -1 && conf_session_nerrors(s) == 1 &&
           strstr(conf_session_error(s, 0), "passiveHealthCheck.maxFailedAttempts"),
       "maxFailedAttempts 0 refused");
    conf_session_free(s);

    /* active: the probe */
    mk("{\"healthCheck\":{\"path\":\"/h?a=1\",\"interval\":\"2s\",\"unhealthyInterval\":\"500ms\","
       "\"timeout\":\"300ms\",\"port\":9000,\"hostname\":\"hc.test\",\"method\":\"HEAD\","
       "\"headers\":{\"X-A\":\"1\"}}}", &s, &lb);
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == 0 && h, "active config accepted");
    conf_session_free(s);
    hl_start(h);
    ok(ntimers == 2 && timers[0]->armed && timers[0]->ms == 0, "one timer per server, at once");
    fire(timers[1]);
    ok(!strcmp(fake_url, "http://127.0.0.1:9000/h?a=1"), "url %s", fake_url);
    ok(!strcmp(fake_method, "HEAD"), "method");
    ok(!strcmp(fake_hdrs, "Host: hc.test\nX-A: 1\n"), "headers: %s", fake_hdrs);
    ok(fake_timeout == 300, "timeout 300");
    fake_cb.on_response(fake_arg, 500, NULL);
    ok(sv[1].up == 0 && sv[0].up == 1, "500: server 1 down");
    ok(!fake_call.live, "the call is cancelled after the head");
    ok(timers[1]->armed && timers[1]->ms > 400 && timers[1]->ms <= 500,
       "next probe after unhealthyInterval (%llu)", (unsigned long long)timers[1]->ms);
    fire(timers[1]);
    fake_cb.on_response(fake_arg, 302, NULL);
    ok(sv[1].up == 1, "302 with followRedirects: up");
    ok(timers[1]->ms > 1900 && timers[1]->ms <= 2000, "next after interval");
    fire(timers[1]);
    fake_cb.on_done(fake_arg, -1, "connect: Connection refused");
    ok(sv[1].up == 0, "refused: down");
    fire(timers[1]);
    fake_cb.on_response(fake_arg, 204, NULL);
    ok(sv[1].up == 1, "204: up");
    fire(timers[0]);
    ok(fake_ncalls == 5, "5 probes");
    hl_free(h); /* a probe in flight is cancelled */
    ok(!fake_call.live && ntimers == 2 && !timers[0] && !timers[1], "freed: cancelled, timers freed");
    ntimers = 0;

    /* expected status, no redirects */
    mk("{\"healthCheck\":{\"status\":200,\"followRedirects\":false,\"scheme\":\"https\"}}", &s,
       &lb);
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == 0 && h, "status config accepted");
    conf_session_free(s);
    hl_start(h);
    fire(timers[0]);
    ok(!strcmp(fake_url, "https://127.0.0.1:8001/") && !strcmp(fake_method, "GET") &&
           fake_timeout == 5000 && !fake_hdrs[0],
       "defaults: path /, GET, 5s, scheme override (%s)", fake_url);
    fake_cb.on_response(fake_arg, 302, NULL);
    ok(sv[0].up == 0, "302 without followRedirects, status 200: down");
    ok(timers[0]->ms > 29000 && timers[0]->ms <= 30000, "unhealthyInterval defaults to interval");
    fire(timers[0]);
    fake_cb.on_response(fake_arg, 200, NULL);
    ok(sv[0].up == 1, "200: up");
    fire(timers[0]);
    fake_cb.on_response(fake_arg, 201, NULL);
    ok(sv[0].up == 0, "201 != 200: down");
    fire(timers[0]);
    fake_cb.on_response(fake_arg, 200, NULL);
    hl_free(h);
    ntimers = 0;

    /* passive */
    mk("{\"passiveHealthCheck\":{\"failureWindow\":\"100ms\",\"maxFailedAttempts\":2}}", &s, &lb);
    ok(hl_new(&host, lb, "x@t", &servers, NULL, &h) == 0 && h, "passive config accepted");
    conf_session_free(s);
    hl_start(h);
    ok(ntimers == 1 && timers[0]->ms == 10, "one recovery timer (10ms)");
    hl_report(h, 1, RELAIS_OUTCOME_FAILED);
    ok(sv[1].up == 1, "1 failure: still up");
    hl_report(h, 1, RELAIS_OUTCOME_OK);
    hl_report(h, 1, RELAIS_OUTCOME_TIMEOUT);
    ok(sv[1].up == 1, "a success reset the count");
    hl_report(h, 1, RELAIS_OUTCOME_FAILED);
    ok(sv[1].up == 0 && sv[0].up == 1, "2 failures: down");
    fire(timers[0]);
    ok(sv[1].up == 0 && timers[0]->armed, "before the window: still down, timer rearmed");
    usleep(120000);
    fire(timers[0]);
    ok(sv[1].up == 1, "after failureWindow: up");
    hl_report(h, 1, RELAIS_OUTCOME_FAILED);
    usleep(120000);
    hl_report(h, 1, RELAIS_OUTCOME_FAILED);
    ok(sv[1].up == 1, "2 failures in different windows: up");
    hl_report(h, 5, RELAIS_OUTCOME_FAILED); /* out of range: ignored */
    hl_report(NULL, 0, RELAIS_OUTCOME_FAILED);
    hl_free(h);
    hl_free(NULL);

    for (int i = 0; i < 2; i++) free(sv[i].url);
    return tap_done();
}
