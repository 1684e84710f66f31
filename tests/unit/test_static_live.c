/*
 * test_static_live — sl_apply, the entry point of cluster mode's etcd key
 * <prefix>/static: overlay checks and messages, entry points added and
 * removed on running workers (their sockets), log level, access log, the
 * return to the file alone.  One worker thread, no snapshot (nothing
 * connects).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "log.h"
#include "proxy.h"
#include "static_config.h"
#include "static_live.h"
#include "tap.h"
#include "worker.h"

static int changed_calls;             /* changed() hook runs */
static struct sc_config *changed_sc;  /* its last argument */
static struct event_base *base;       /* the "control loop" */

/* The control module's hook, recorded. */
static void changed(struct sc_config *sc)
{
    changed_calls++;
    changed_sc = sc;
}

/* A loopback TCP port nothing uses now. */
static int free_tcp_port(void)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &l);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Binds a socket (no SO_REUSEPORT) to 127.0.0.1:port; fd or -1. */
static int hold(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 once port is listened on (want = 1: a plain bind fails) or free
 * (want = 0), waiting up to 2 s (the workers apply changes on their
 * threads); 0 when it is not. */
static int listening(int port, int want)
{
    for (int i = 0; i < 200; i++) {
        int fd = hold(port), on = fd < 0;
        if (fd >= 0) close(fd);
        if (on == want) return 1;
        event_base_loop(base, EVLOOP_NONBLOCK); /* frees the versions replaced */
        usleep(10000);
    }
    return 0;
}

/* Parses JSON text (test data). */
static json_t *J(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);

    if (!v) fprintf(stderr, "# bad test JSON: %s\n", e.text);
    return v;
}

/* sl_apply with a JSON text overlay ("null": NULL). */
static int apply(const char *text, char *err, size_t errlen)
{
    json_t *ov = strcmp(text, "null") ? J(text) : NULL;
    int rc;

    err[0] = '\0';
    rc = sl_apply(ov, "etcd key relais/static", err, errlen);
    json_decref(ov);
    return rc;
}

int main(void)
{
    char dir[] = "/tmp/relais-sl.XXXXXX", path[256], alog[300], plain[300], err[2048], ov[1024];
    int p1 = free_tcp_port(), p2, p3, busy, calls;
    struct sc_config *sc;
    FILE *f;

    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof(path), "%s/relais.yaml", dir);
    snprintf(alog, sizeof(alog), "%s/access.log", dir);
    f = fopen(path, "w");
    fprintf(f, "entryPoints:\n  web:\n    address: \"127.0.0.1:%d\"\nworkers: 1\n"
               "log:\n  level: INFO\n", p1);
    fclose(f);
    log_set_level(RELAIS_LOG_ERROR); /* the test's own output stays TAP */
    sc = sc_load(path, NULL, NULL, 0);
    ok(sc && sc->neps == 1, "the file loads");
    if (!sc) return tap_done();
    evthread_use_pthreads();
    base = event_base_new();
    wk_set_count(1);
    ok(wk_start(sc, 1) == 0, "one worker runs");
    ok(apply("{}", err, sizeof(err)) < 0 && strstr(err, "once relais runs"),
       "before sl_start: refused (%s)", err);
    ok(sl_start(base, sc, changed) == 0 && sl_current() == sc, "sl_start");
    ok(listening(p1, 1), "web listens");

    /* ---- refused overlays change nothing */
    ok(apply("{\"providers\": {}}", err, sizeof(err)) < 0 &&
       !strcmp(err, "etcd key relais/static: providers: only log, accessLog and entryPoints "
                    "can change at run time"), "another key: %s", err);
    ok(apply("{\"log\": {\"format\": \"json\"}}", err, sizeof(err)) < 0 &&
       strstr(err, "etcd key relais/static: log.format: only log.level"), "log.format: %s", err);
    ok(apply("[1]", err, sizeof(err)) < 0 && strstr(err, "expected a map"), "not a map: %s",
       err);
    ok(apply("{\"entryPoints\": {\"x\": 5}}", err, sizeof(err)) < 0 &&
       strstr(err, "entryPoints.x: expected a map"), "an entry point that is no map: %s", err);
    ok(apply("{\"entryPoints\": {\"x\": {\"address\": \"nowhere\"}}}", err, sizeof(err)) < 0 &&
       !strncmp(err, "etcd key relais/static: entryPoints.x.address: ", 47),
       "a bad address, with the origin and the key path: %s", err);
    ok(apply("{\"log\": {\"level\": \"LOUD\"}}", err, sizeof(err)) < 0 &&
       strstr(err, "etcd key relais/static: log.level: expected one of"), "a bad level: %s", err);
    ok(apply("{\"entryPoints\": {\"web\": null}}", err, sizeof(err)) < 0 &&
       strstr(err, "entryPoints: expected a map of at least one entry point"),
       "no entry point left: %s", err);
    ok(changed_calls == 0 && sl_current() == sc, "nothing changed");

    /* ---- an entry point added, the log level */
    p2 = free_tcp_port();
    snprintf(ov, sizeof(ov), "{\"entryPoints\": {\"x\": {\"address\": \"127.0.0.1:%d\"}}, "
                             "\"log\": {\"level\": \"DEBUG\"}}", p2);
    ok(apply(ov, err, sizeof(err)) == 0, "x added: %s", err);
    ok(changed_calls == 1 && changed_sc == sl_current() && changed_sc != sc,
       "the control hook got the new version");
    ok(sc_entrypoint_index(sl_current(), "x") == 1 && sc_entrypoint_index(sl_current(), "web") == 0,
       "web keeps slot 0, x is appended in slot 1");
    ok(listening(p2, 1) && listening(p1, 1), "x listens, web still does");
    ok(log_get_level() == RELAIS_LOG_DEBUG, "the log level is DEBUG");
    log_set_level(RELAIS_LOG_ERROR);
    ok(apply(ov, err, sizeof(err)) == 0 && changed_calls == 1, "the same overlay: no change");

    /* ---- an address in use changes nothing */
    p3 = free_tcp_port();
    busy = hold(p3);
    snprintf(ov, sizeof(ov), "{\"entryPoints\": {\"x\": {\"address\": \"127.0.0.1:%d\"}, "
                             "\"y\": {\"address\": \"127.0.0.1:%d\"}}}", p2, p3);
    calls = changed_calls;
    ok(apply(ov, err, sizeof(err)) < 0 && strstr(err, "etcd key relais/static: "
                                                      "entryPoints.y.address: cannot listen on") &&
       strstr(err, strerror(EADDRINUSE)), "address in use: %s", err);
    ok(changed_calls == calls && sc_entrypoint_index(sl_current(), "y") < 0, "nothing changed");
    close(busy);

    /* ---- an access log that cannot open changes nothing; one that can */
    /* an overlay is whole: x stays only if it says so */
    snprintf(plain, sizeof(plain), "%s/plain", dir);
    f = fopen(plain, "w");
    fclose(f);
    snprintf(ov, sizeof(ov), "{\"accessLog\": {\"filePath\": \"%s/a.log\"}, \"entryPoints\": "
                             "{\"x\": {\"address\": \"127.0.0.1:%d\"}}}", plain, p2);
    calls = changed_calls;
    ok(apply(ov, err, sizeof(err)) < 0 &&
       strstr(err, "etcd key relais/static: accessLog.filePath: cannot open"),
       "access log that does not open (under a plain file): %s", err);
    ok(!px_alog && changed_calls == calls && listening(p2, 1), "nothing changed");
    snprintf(ov, sizeof(ov), "{\"accessLog\": {\"filePath\": \"%s\"}, \"entryPoints\": "
                             "{\"web\": null, \"x\": {\"address\": \"127.0.0.1:%d\"}}}", alog, p2);
    ok(apply(ov, err, sizeof(err)) == 0, "access log on, web removed: %s", err);
    ok(px_alog != NULL && access(alog, F_OK) == 0, "the access log is open");
    ok(sc_entrypoint_index(sl_current(), "web") < 0 && !sc_ep_live(sl_current(), 0) &&
       sc_entrypoint_index(sl_current(), "x") == 1, "web is a tombstone, x keeps its slot");
    ok(listening(p1, 0) && listening(p2, 1), "web stopped listening, x did not");

    /* ---- back to the file */
    ok(apply("null", err, sizeof(err)) == 0, "back to the file: %s", err);
    ok(!px_alog, "no access log again");
    ok(sc_entrypoint_index(sl_current(), "web") == 2 && sc_entrypoint_index(sl_current(), "x") < 0,
       "web is back in a new slot, x is gone");
    ok(listening(p1, 1) && listening(p2, 0), "web listens again, x does not");
    calls = changed_calls;
    ok(apply("null", err, sizeof(err)) == 0 && changed_calls == calls, "null again: no change");

    wk_stop(0);
    sl_stop();
    sc_free(sc);
    event_base_free(base);
    unlink(alog);
    unlink(plain);
    unlink(path);
    rmdir(dir);
    return tap_done();
}
