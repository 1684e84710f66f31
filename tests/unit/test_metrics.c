/*
 * Unit tests of metrics.c: configuration (defaults, errors with key
 * paths), per-thread cells summed at render from several threads (while a
 * scraper renders), histogram buckets with _sum and _count, label
 * escaping, the series cap, the UDP gauge and mt_stats.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "metrics.h"
#include "static_config.h"
#include "tap.h"

#define NTHREADS 4  /* worker threads writing at once */
#define NREQ 20000  /* 200 GET per thread */
#define NERR 1000   /* 503 POST per thread */

static uint32_t t_router, t_service; /* ids of the test router / service */
static volatile int t_writing;       /* writers still running */

/* Configures from YAML text; returns mt_configure's result and copies the
 * first error (if any) into err. */
static int configure(const char *yaml, char *err, size_t errlen)
{
    struct conf_error ce;
    json_t *doc = conf_parse(yaml, strlen(yaml), CONF_YAML, "test.yaml", &ce);
    struct conf_session *s = conf_session_new("");
    int rc;

    if (!doc) {
        snprintf(err, errlen, "parse: %s", ce.msg);
        conf_session_free(s);
        return -2;
    }
    rc = mt_configure(conf_cfg_get(conf_session_root(s, doc), "metrics"));
    if (err) snprintf(err, errlen, "%s", conf_session_nerrors(s) ? conf_session_error(s, 0) : "");
    conf_session_free(s);
    json_decref(doc);
    return rc;
}

/* Writer thread: worker index (intptr_t) arg counts NREQ GET 200 (10 ms)
 * and NERR POST 503 (700 ms, one retry each). */
static void *writer(void *arg)
{
    unsigned wi = (unsigned)(intptr_t)arg;
    struct mt_obs o = {0};

    o.ep = 0;
    o.router = t_router;
    o.service = t_service;
    for (int i = 0; i < NREQ; i++) {
        o.status = 200;
        o.method = mt_method_index("GET", 3);
        o.dur_us = 10000;
        o.req_bytes = 5;
        o.resp_bytes = 7;
        o.retries = 0;
        mt_observe(wi, &o);
    }
    for (int i = 0; i < NERR; i++) {
        o.status = 503;
        o.method = mt_method_index("POST", 4);
        o.dur_us = 700000;
        o.req_bytes = 0;
        o.resp_bytes = 20;
        o.retries = 1;
        mt_observe(wi, &o);
    }
    __atomic_sub_fetch(&t_writing, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Scraper thread: renders until the writers are done; counts renders. */
static void *scraper(void *arg)
{
    int *renders = arg;

    while (__atomic_load_n(&t_writing, __ATOMIC_ACQUIRE) > 0) {
        size_t len;
        char *t = mt_render(&len);
        if (t && len == strlen(t)) (*renders)++;
        free(t);
    }
    return NULL;
}

/* 1 when text has the line (whole line). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; p && (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) return 1;
    return 0;
}

int main(void)
{
    struct sc_entrypoint eps[2];
    struct sc_config sc;
    pthread_t th[NTHREADS], scr;
    char err[512], line[512];
    char *text;
    size_t len;
    int renders = 0;
    json_t *st;

    memset(eps, 0, sizeof(eps));
    memset(&sc, 0, sizeof(sc));
    eps[0].name = "web";
    eps[1].name = "dns";
    eps[1].udp = 1;
    sc.eps = eps;
    sc.neps = 2;

    /* ---- configuration */
    ok(configure("entryPoints: {}\n", err, sizeof(err)) == 0 && !mt_prometheus_enabled(),
       "no metrics key: defaults, prometheus off");
    ok(configure("metrics: {prometheus: {}}\n", err, sizeof(err)) == 0 &&
       mt_prometheus_enabled(), "prometheus: {} turns it on");
    ok(configure("metrics: {prometheus: {buckets: [0.5, 0.1]}}\n", err, sizeof(err)) < 0 &&
       strstr(err, "metrics.prometheus.buckets") && strstr(err, "increasing"),
       "decreasing buckets refused with the key path (%s)", err);
    ok(configure("metrics: {prometheus: {buckets: [0.1, fast]}}\n", err, sizeof(err)) < 0 &&
       strstr(err, "metrics.prometheus.buckets[1]"),
       "a bucket that is no number is refused at its index (%s)", err);
    ok(configure("metrics: {prometheus: {buckets: \"0.1,0.3,2\"}}\n", err, sizeof(err)) == 0,
       "buckets as a comma list (command-line flag form)");
    ok(configure("metrics: {prometheus: {addRoutersLabels: maybe}}\n", err, sizeof(err)) < 0 &&
       strstr(err, "metrics.prometheus.addRoutersLabels"), "bad boolean: %s", err);
    ok(configure("metrics: {prometheus: {maxSeries: 0}}\n", err, sizeof(err)) < 0 &&
       strstr(err, "metrics.prometheus.maxSeries"), "maxSeries 0 refused: %s", err);
    ok(configure("metrics: {prometheus: {bukets: [1]}}\n", err, sizeof(err)) < 0 &&
       strstr(err, "metrics.prometheus.bukets") && strstr(err, "unknown"),
       "unknown key refused: %s", err);
    ok(configure("metrics: {prometheus: {entryPoint: traefik, manualRouting: true}}\n", err,
                 sizeof(err)) == 0, "entryPoint and manualRouting accepted (the endpoint's)");
    ok(mt_method_index("PATCH", 5) > 0 && mt_method_index("PROPFIND", 8) == 0 &&
       mt_method_index("get", 3) == 0, "standard methods have an index, others OTHER");

    /* ---- per-thread cells summed at render, while a scraper renders */
    ok(configure("metrics: {prometheus: {buckets: [0.05, 0.5], addRoutersLabels: true}}\n",
                 err, sizeof(err)) == 0, "configured: %s", err);
    ok(mt_start(&sc, NTHREADS) == 0, "started for %d workers", NTHREADS);
    t_router = mt_intern(MT_ROUTER, "r1@file");
    t_service = mt_intern(MT_SERVICE, "s1@file");
    ok(t_router > 0 && t_service > 0 && mt_intern(MT_ROUTER, "r1@file") == t_router,
       "interned ids are stable");
    t_writing = NTHREADS;
    pthread_create(&scr, NULL, scraper, &renders);
    for (intptr_t i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, writer, (void *)i);
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    pthread_join(scr, NULL);
    ok(1, "%d renders ran while %d threads counted", renders, NTHREADS);
    mt_udp_session(1, 1, 1);
    mt_udp_session(2, 1, 1);
    mt_udp_session(2, 1, -1);
    mt_udp_session(3, 1, 1);
    mt_reload(1);
    mt_reload(0);
    text = mt_render(&len);
    ok(text != NULL && len == strlen(text), "rendered %zu bytes", len);
    if (!text) return tap_done();
    snprintf(line, sizeof(line),
             "relais_entrypoint_requests_total{code=\"200\",method=\"GET\",protocol=\"http\","
             "entrypoint=\"web\"} %d", NTHREADS * NREQ);
    ok(has_line(text, line), "entry point requests summed over threads: %s", line);
    snprintf(line, sizeof(line),
             "relais_router_requests_total{code=\"503\",method=\"POST\",protocol=\"http\","
             "router=\"r1@file\",service=\"s1@file\"} %d", NTHREADS * NERR);
    ok(has_line(text, line), "router requests with router and service labels");
    snprintf(line, sizeof(line),
             "relais_service_requests_bytes_total{code=\"200\",method=\"GET\",protocol=\"http\","
             "service=\"s1@file\"} %d", NTHREADS * NREQ * 5);
    ok(has_line(text, line), "request bytes summed");
    snprintf(line, sizeof(line),
             "relais_service_responses_bytes_total{code=\"503\",method=\"POST\",protocol=\"http\","
             "service=\"s1@file\"} %d", NTHREADS * NERR * 20);
    ok(has_line(text, line), "response bytes summed");
    /* histogram of the 200s (10 ms: first bucket) and the 503s (700 ms:
       only +Inf) */
    snprintf(line, sizeof(line),
             "relais_entrypoint_request_duration_seconds_bucket{code=\"200\",method=\"GET\","
             "protocol=\"http\",entrypoint=\"web\",le=\"0.05\"} %d", NTHREADS * NREQ);
    ok(has_line(text, line), "200s in the 0.05 bucket");
    snprintf(line, sizeof(line),
             "relais_entrypoint_request_duration_seconds_bucket{code=\"503\",method=\"POST\","
             "protocol=\"http\",entrypoint=\"web\",le=\"0.5\"} 0");
    ok(has_line(text, line), "503s (700 ms) not in the 0.5 bucket");
    snprintf(line, sizeof(line),
             "relais_entrypoint_request_duration_seconds_bucket{code=\"503\",method=\"POST\","
             "protocol=\"http\",entrypoint=\"web\",le=\"+Inf\"} %d", NTHREADS * NERR);
    ok(has_line(text, line), "503s in +Inf");
    snprintf(line, sizeof(line),
             "relais_entrypoint_request_duration_seconds_sum{code=\"503\",method=\"POST\","
             "protocol=\"http\",entrypoint=\"web\"} %.6f", NTHREADS * NERR * 0.7);
    ok(has_line(text, line), "_sum in seconds: %s", line);
    snprintf(line, sizeof(line),
             "relais_entrypoint_request_duration_seconds_count{code=\"200\",method=\"GET\","
             "protocol=\"http\",entrypoint=\"web\"} %d", NTHREADS * NREQ);
    ok(has_line(text, line), "_count");
    snprintf(line, sizeof(line), "relais_service_retries_total{service=\"s1@file\"} %d",
             NTHREADS * NERR);
    ok(has_line(text, line), "retries summed");
    ok(has_line(text, "relais_open_connections{entrypoint=\"dns\",protocol=\"UDP\"} 2"),
       "UDP sessions summed over workers");
    ok(has_line(text, "relais_open_connections{entrypoint=\"web\",protocol=\"TCP\"} 0"),
       "TCP entry point gauge");
    ok(has_line(text, "relais_config_reloads_total 1") &&
       has_line(text, "relais_config_reloads_failure_total 1"), "reload counters");
    ok(has_line(text, "# TYPE relais_entrypoint_request_duration_seconds histogram") &&
       has_line(text, "# TYPE relais_router_requests_total counter"), "TYPE lines");
    ok(has_line(text, "relais_metrics_series_dropped_total 0"), "nothing dropped");
    free(text);

    st = mt_stats();
    ok(st && json_integer_value(json_object_get(json_object_get(json_object_get(st, "routers"),
                                                                "r1@file"), "requests")) ==
                 NTHREADS * (NREQ + NERR) &&
           json_integer_value(json_object_get(json_object_get(json_object_get(st, "services"),
                                                              "s1@file"), "errors")) ==
               NTHREADS * NERR &&
           json_integer_value(json_object_get(json_object_get(json_object_get(st, "entryPoints"),
                                                              "dns"), "openConnections")) == 2,
       "mt_stats: requests, errors (>= 500), open connections");
    json_decref(st);

    /* ---- label escaping: quote, backslash, newline */
    {
        struct mt_obs o = {0};
        o.ep = 0;
        o.router = mt_intern(MT_ROUTER, "we\"ird\\na\nme");
        o.service = t_service;
        o.status = 204;
        o.method = mt_method_index("PROPFIND", 8);
        o.proto = MT_PROTO_WEBSOCKET;
        mt_observe(0, &o);
        text = mt_render(&len);
        ok(text && has_line(text, "relais_router_requests_total{code=\"204\",method=\"OTHER\","
                                  "protocol=\"websocket\",router=\"we\\\"ird\\\\na\\nme\","
                                  "service=\"s1@file\"} 1"),
           "quotes, backslashes and newlines escaped in label values");
        free(text);
    }
    mt_stop();

    /* ---- routers off by default; the series cap */
    ok(configure("metrics: {prometheus: {maxSeries: 5}}\n", err, sizeof(err)) == 0, "cap 5");
    ok(mt_start(&sc, 1) == 0, "started for 1 worker");
    {
        struct mt_obs o = {0};
        o.ep = 0;
        o.router = mt_intern(MT_ROUTER, "r@x");
        o.status = 100;
        mt_observe(0, &o); /* 2 cells: entry point and router */
        o.router = 0;
        for (int code = 200; code < 210; code++) {
            o.status = code;
            mt_observe(0, &o);
            mt_observe(0, &o);
        }
    }
    text = mt_render(&len);
    ok(text && has_line(text, "relais_metrics_series_dropped_total 14"),
       "5 label sets kept, the other 7 (x2) counted as dropped");
    ok(text && has_line(text, "relais_entrypoint_requests_total{code=\"202\",method=\"OTHER\","
                              "protocol=\"http\",entrypoint=\"web\"} 2") &&
           !strstr(text, "code=\"203\""), "the first label sets are counted");
    ok(text && !strstr(text, "relais_router_"), "no router families by default");
    free(text);
    mt_stop();
    return tap_done();
}
