/*
 * control — see control.h.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "accesslog.h"
#include "api.h"
#include "dashboard/dashboard.h"
#include "tracing.h"
#include "cluster.h"
#include "conf.h"
#include "control.h"
#include "host_api.h"
#include "kvconf.h"
#include "log.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "proxy.h"
#include "resolvers.h"
#include "sdnotify.h"
#include "snapshot.h"
#include "static_config.h"
#include "static_live.h"
#include "tls.h"
#include "tlsstore.h"
#include "upgrade.h"
#include "worker.h"

/** A configured provider (the SDK's opaque relais_provider). */
struct relais_provider {
    char *name;                     /* "file", as configured */
    const struct pl_plugin *plugin; /* provider plugin */
    const relais_provider_ops *ops; /* its operations */
    void *inst;                     /* its instance */
    json_t *tree;                   /* last accepted configuration */
    json_t *origins;                /* which document defined each object */
    int failed;                     /* last publish was rejected */
};

static struct event_base *ctl_base;        /* control loop */
static struct relais_provider *ctl_provs;  /* providers */
static size_t ctl_nprovs;                  /* how many */
static struct sc_config *ctl_sc;           /* static configuration */
static struct pl_set *ctl_plugins;         /* loaded plugins */
static struct snapshot *ctl_last;          /* last built (own reference) */
static struct event *ctl_apply_ev;         /* throttled rebuild */
static uint64_t ctl_last_apply_ms;         /* when last applied */
static int ctl_pending;                    /* a rebuild is scheduled */
static int ctl_live;                       /* workers run: publish builds */
static struct event *ctl_release_ev;       /* snapshots to free */
static pthread_mutex_t ctl_rel_lock = PTHREAD_MUTEX_INITIALIZER; /* guards list */
static struct snapshot **ctl_rel;          /* released snapshots */
static size_t ctl_nrel, ctl_caprel;        /* list size */
static int ctl_stopping;                   /* SIGTERM seen */
/** Longest wait for the providers' first configuration before the
 *  process says it is ready anyway. */
#define CTL_READY_MAX_MS 5000
static const char *ctl_pidfile;            /* --pid-file, or NULL */
static struct event *ctl_ready_ev;         /* waits for the first
                                              configuration (readiness) */
static uint64_t ctl_started_ms;            /* when the workers started */
static int ctl_is_ready;                   /* readiness announced */
static json_t *ctl_csrc;                   /* cluster mode: documents read
                                              from etcd, provider name ->
                                              tree (cluster.c) */

/* Frees the snapshots the workers released (control thread). */
static void ctl_release_run(evutil_socket_t fd, short what, void *arg)
{
    struct snapshot **list;
    size_t n;

    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&ctl_rel_lock);
    list = ctl_rel;
    n = ctl_nrel;
    ctl_rel = NULL;
    ctl_nrel = ctl_caprel = 0;
    pthread_mutex_unlock(&ctl_rel_lock);
    for (size_t i = 0; i < n; i++) snap_free(list[i]);
    free(list);
}

/* snap release hook: any thread hands the snapshot to the control loop. */
static void ctl_release(struct snapshot *s)
{
    int ok = 1;

    pthread_mutex_lock(&ctl_rel_lock);
    if (ctl_nrel == ctl_caprel) {
        size_t nc = ctl_caprel ? ctl_caprel * 2 : 8;
        struct snapshot **nl = realloc(ctl_rel, nc * sizeof(*nl));
        if (nl) {
            ctl_rel = nl;
            ctl_caprel = nc;
        } else {
            ok = 0;
        }
    }
    if (ok) ctl_rel[ctl_nrel++] = s;
    pthread_mutex_unlock(&ctl_rel_lock);
    /* out of memory: leak rather than destroy plugin state off-thread */
    if (ok && ctl_release_ev) event_active(ctl_release_ev, EV_READ, 0);
}

/* Builds a snapshot from the providers' trees and publishes it. */
static void ctl_apply(void)
{
    size_t nsrc = ctl_nprovs + json_object_size(ctl_csrc);
    struct snap_source *src = calloc(nsrc ? nsrc : 1, sizeof(*src));
    struct snapshot *s;
    size_t n = 0;
    struct timespec t0, t1;
    const char *cname;
    json_t *ctree;

    if (!src) return;
    for (size_t i = 0; i < ctl_nprovs; i++) {
        if (!ctl_provs[i].tree) continue;
        src[n].provider = ctl_provs[i].name;
        src[n].tree = ctl_provs[i].tree;
        src[n].origins = ctl_provs[i].origins;
        n++;
    }
    json_object_foreach(ctl_csrc, cname, ctree) {
        src[n].provider = cname;
        src[n].tree = ctree;
        src[n].origins = NULL;
        n++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s = snap_build(src, n, ctl_last, ctl_sc, ctl_plugins, host_table());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(src);
    if (!s) return;
    log_info("config", "configuration %llu applied: %zu routers, %zu services, "
             "%zu middlewares, %zu disabled (built in %.1f ms)",
             (unsigned long long)s->gen, s->nrouters, s->nservices, s->nmws, s->nerrors,
             (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (ctl_last) snap_unref(ctl_last);
    ctl_last = s;
    snap_ref(s);
    wk_publish(s);
    if (s->nerrors) {
        char msg[128];
        snprintf(msg, sizeof(msg), "configuration %llu: %zu object(s) invalid (see the API)",
                 (unsigned long long)s->gen, s->nerrors);
        cl_report(s->nrouters, s->nservices, msg);
    } else {
        cl_report(s->nrouters, s->nservices, NULL);
    }
    mt_reload(1);
    ctl_last_apply_ms = wk_now_ms();
    rs_sync(s); /* certificates the routers need */
}

/* A resolver's certificate set changed: rebuild at once (certificates
 * are not throttled: a challenge or a renewal waits for them). */
static void ctl_certs_changed(void)
{
    if (ctl_live) ctl_apply();
}

/* Throttle timer: apply the latest configuration. */
static void ctl_apply_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    ctl_pending = 0;
    ctl_apply();
}

/* Schedules a rebuild: now, or once providersThrottleDuration has passed
 * since the previous one. */
static void ctl_schedule(void)
{
    uint64_t now = wk_now_ms(), due;
    struct timeval tv;

    if (!ctl_live || ctl_pending) return;
    due = ctl_last_apply_ms + (uint64_t)ctl_sc->throttle_ms;
    if (ctl_last_apply_ms == 0 || now >= due) {
        ctl_apply();
        return;
    }
    ctl_pending = 1;
    tv.tv_sec = (time_t)((due - now) / 1000);
    tv.tv_usec = (suseconds_t)(((due - now) % 1000) * 1000);
    evtimer_add(ctl_apply_ev, &tv);
}

/* Keeps tree (and origins, may be NULL) as the provider's configuration,
 * taking the references, and schedules the rebuild. */
static void ctl_accept(relais_provider *p, json_t *tree, json_t *origins)
{
    json_decref(p->tree);
    json_decref(p->origins);
    p->tree = tree;
    p->origins = origins;
    p->failed = 0;
    cl_provider_changed(p->name, tree); /* the leader publishes it */
    ctl_schedule();
}

/* Cluster mode: a document read from etcd (tree owned; NULL = gone) is
 * served as provider name's configuration. */
static void ctl_cluster_source(const char *name, json_t *tree)
{
    if (!ctl_csrc) ctl_csrc = json_object();
    if (!ctl_csrc) {
        json_decref(tree);
        return;
    }
    if (tree)
        json_object_set_new(ctl_csrc, name, tree);
    else if (json_object_get(ctl_csrc, name))
        json_object_del(ctl_csrc, name);
    else
        return;
    ctl_schedule();
}

/* provider_publish_kv: decode the pairs (Traefik's KV or label layout). */
static int ctl_publish_kv(relais_provider *p, const relais_kv *pairs, size_t n, int sep,
                          const char *root)
{
    struct kvc_pair *kp = calloc(n ? n : 1, sizeof(*kp));
    struct kvc_options opt = {(char)sep, root, sep == '.'};
    struct kvc_error err;
    json_t *tree;

    if (!kp) return -1;
    for (size_t i = 0; i < n; i++) {
        kp[i].key = pairs[i].key;
        kp[i].value = pairs[i].value;
    }
    tree = (sep == '/' || sep == '.') ? kvc_decode(kp, n, &opt, &err) : NULL;
    free(kp);
    if (!tree) {
        if (sep == '/' || sep == '.')
            log_error("config", "provider %s: key %s: %s (previous configuration kept)",
                      p->name, err.key, err.msg);
        else
            log_error("config", "provider %s: separator must be '/' or '.'", p->name);
        p->failed = 1;
        mt_reload(0);
        return -1;
    }
    ctl_accept(p, tree, NULL);
    return 0;
}

/* provider_publish: parse, merge, keep; schedule the rebuild. */
static int ctl_publish(relais_provider *p, const relais_doc *docs, size_t n)
{
    json_t **trees = calloc(n ? n : 1, sizeof(*trees));
    const char **sources = calloc(n ? n : 1, sizeof(*sources));
    json_t *merged = NULL, *origins = NULL;
    int rc = -1;
    size_t i;

    if (!trees || !sources) goto done;
    for (i = 0; i < n; i++) {
        struct conf_error err;
        int fmt = docs[i].format == RELAIS_DOC_JSON ? CONF_JSON
                  : docs[i].format == RELAIS_DOC_YAML ? CONF_YAML : CONF_AUTO;
        trees[i] = conf_parse(docs[i].data, docs[i].len, fmt, docs[i].source, &err);
        sources[i] = docs[i].source;
        if (!trees[i]) {
            log_error("config", "%s:%d:%d: %s (provider %s: previous configuration kept)",
                      docs[i].source ? docs[i].source : "?", err.line, err.column, err.msg,
                      p->name);
            p->failed = 1;
            mt_reload(0);
            goto done;
        }
    }
    merged = snap_merge_docs(trees, sources, n, p->name, &origins);
    if (!merged) goto done;
    ctl_accept(p, merged, origins);
    rc = 0;
done:
    for (i = 0; trees && i < n; i++) json_decref(trees[i]);
    free(trees);
    free(sources);
    return rc;
}

static const char *ctl_provider_name(relais_provider *p)
{
    return p->name;
}

/* Creates the providers of the static configuration.  0, or -1 after
 * logging every error. */
static int ctl_create_providers(void)
{
    json_t *provs = ctl_sc->providers;
    const char *key;
    json_t *val;
    int errors = 0;

    ctl_provs = calloc(json_object_size(provs) + 1, sizeof(*ctl_provs));
    if (!ctl_provs) return -1;
    json_object_foreach(provs, key, val) {
        struct relais_provider *p;
        struct conf_session *s;
        char path[300];
        json_t *opts;
        const struct pl_plugin *pl;

        if (!strcasecmp(key, "providersThrottleDuration")) continue;
        /* "providers.docker" is the docker provider named docker; a key
         * that is no provider type names a second instance whose type is
         * given: "providers.docker2: {type: docker, ...}" (relais) */
        pl = pl_find(ctl_plugins, RELAIS_KIND_PROVIDER, key);
        if (!pl) {
            const char *type = NULL;
            json_t *tv = NULL;
            const char *k2;
            json_t *v2;
            json_object_foreach(val, k2, v2)
                if (!strcasecmp(k2, "type")) tv = v2;
            type = json_string_value(tv);
            if (type) pl = pl_find(ctl_plugins, RELAIS_KIND_PROVIDER, type);
            if (!pl) {
                if (type)
                    log_error("config", "%s: providers.%s.type: no loaded plugin provides the "
                              "\"%s\" provider", ctl_sc->path, key, type);
                else
                    log_error("config", "%s: providers.%s: no loaded plugin provides the \"%s\" "
                              "provider (a second instance names its type: {type: file, ...})",
                              ctl_sc->path, key, key);
                errors++;
                continue;
            }
        }
        if (strchr(key, '@') || strchr(key, '.')) {
            log_error("config", "%s: providers.%s: a provider name may not contain '@' or '.'",
                      ctl_sc->path, key);
            errors++;
            continue;
        }
        p = &ctl_provs[ctl_nprovs];
        p->name = strdup(key);
        p->plugin = pl;
        p->ops = pl->desc->ops;
        snprintf(path, sizeof(path), "providers.%s", key);
        s = conf_session_new(path);
        /* the plugin sees its own options only: "type" is the host's */
        opts = json_is_object(val) ? json_copy(val) : json_incref(val);
        if (json_is_object(opts)) {
            const char *k2;
            json_t *v2;
            void *tmp;
            json_object_foreach_safe(opts, tmp, k2, v2)
                if (!strcasecmp(k2, "type") && pl != pl_find(ctl_plugins, RELAIS_KIND_PROVIDER, key))
                    json_object_del(opts, k2);
        }
        if (p->ops->create(host_table(), conf_session_root(s, opts), p, &p->inst) != 0 ||
            conf_session_nerrors(s)) {
            for (size_t i = 0; i < conf_session_nerrors(s); i++)
                log_error("config", "%s: %s", ctl_sc->path, conf_session_error(s, i));
            if (!conf_session_nerrors(s))
                log_error("config", "%s: %s: the %s provider refused its options",
                          ctl_sc->path, path, key);
            if (p->inst && p->ops->destroy) p->ops->destroy(p->inst);
            free(p->name);
            memset(p, 0, sizeof(*p));
            errors++;
        } else {
            ctl_nprovs++;
        }
        conf_session_free(s);
        json_decref(opts);
    }
    return errors ? -1 : 0;
}

/* Stops and frees the providers. */
static void ctl_free_providers(int started)
{
    for (size_t i = 0; i < ctl_nprovs; i++) {
        struct relais_provider *p = &ctl_provs[i];
        if (started && p->ops->stop) p->ops->stop(p->inst);
        if (p->ops->destroy) p->ops->destroy(p->inst);
        json_decref(p->tree);
        json_decref(p->origins);
        free(p->name);
    }
    free(ctl_provs);
    ctl_provs = NULL;
    ctl_nprovs = 0;
}

#define CTL_TICKET_ROTATE_S (12 * 3600) /* TLS session ticket key lifetime */
static struct event *ctl_ticket_ev; /* rotates the ticket keys */

/* Timer: a new TLS session ticket key (the previous two still decrypt). */
static void ctl_ticket_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    tls_tickets_rotate();
}

/* Common set-up of ctl_run and ctl_check. */
static int ctl_setup(struct sc_config *sc, struct pl_set *plugins)
{
    ctl_sc = sc;
    ctl_plugins = plugins;
    evthread_use_pthreads();
    ctl_base = event_base_new();
    if (!ctl_base) return -1;
    host_set_control_base(ctl_base);
    host_set_publish(ctl_publish, ctl_publish_kv, ctl_provider_name);
    snap_set_release_hook(ctl_release);
    ctl_release_ev = event_new(ctl_base, -1, 0, ctl_release_run, NULL);
    ctl_apply_ev = evtimer_new(ctl_base, ctl_apply_run, NULL);
    ctl_ticket_ev = event_new(ctl_base, -1, EV_PERSIST, ctl_ticket_run, NULL);
    if (ctl_ticket_ev) {
        struct timeval tv = {CTL_TICKET_ROTATE_S, 0};
        event_add(ctl_ticket_ev, &tv);
    }
    return (ctl_release_ev && ctl_apply_ev && ctl_ticket_ev) ? 0 : -1;
}

/* Frees what ctl_setup made. */
static void ctl_teardown(void)
{
    json_decref(ctl_csrc);
    ctl_csrc = NULL;
    if (ctl_last) snap_unref(ctl_last);
    ctl_last = NULL;
    snap_set_release_hook(NULL);
    ctl_release_run(-1, 0, NULL);
    if (ctl_apply_ev) event_free(ctl_apply_ev);
    if (ctl_release_ev) event_free(ctl_release_ev);
    if (ctl_ticket_ev) event_free(ctl_ticket_ev);
    ctl_apply_ev = ctl_release_ev = ctl_ticket_ev = NULL;
    rs_stop();
    ts_global_free();
    tls_global_free();
    host_set_control_base(NULL);
    if (ctl_base) event_base_free(ctl_base);
    ctl_base = NULL;
}

static int ctl_access_log(const struct sc_config *sc, struct al_log **out);
static int ctl_tracing(const struct sc_config *sc, int check, struct trc_tracer **out);

/* Reads the static metrics map (metrics.c).  0, or -1 after logging its
 * errors with the file and key path. */
static int ctl_metrics(const struct sc_config *sc)
{
    struct conf_session *s = conf_session_new("");
    int rc = mt_configure(conf_cfg_get(conf_session_root(s, sc->root), "metrics"));

    for (size_t i = 0; i < conf_session_nerrors(s); i++)
        log_error("config", "%s: %s", sc->path, conf_session_error(s, i));
    if (conf_session_nerrors(s)) rc = -1;
    conf_session_free(s);
    return rc;
}

int ctl_check(struct sc_config *sc, struct pl_set *plugins)
{
    int bad = 0;

    if (ctl_setup(sc, plugins) < 0) return 1;
    if (cl_configure(sc) < 0) bad = 1;
    if (cl_role() != CL_PROXY && ctl_create_providers() < 0) bad = 1;
    if (rs_check(sc) < 0) bad = 1;
    if (ctl_metrics(sc) < 0) bad = 1;
    {
        struct al_log *l = NULL;
        if (ctl_access_log(sc, &l) < 0) bad = 1;
        al_free(l);
    }
    if (ctl_tracing(sc, 1, NULL) < 0) bad = 1;
    for (size_t i = 0; i < ctl_nprovs; i++) {
        struct relais_provider *p = &ctl_provs[i];
        if (!p->ops->load_once) continue;
        if (p->ops->load_once(p->inst) != 0 || p->failed || !p->tree) bad = 1;
    }
    ctl_live = 1;
    ctl_apply();
    if (ctl_last && ctl_last->nerrors) {
        log_error("config", "%zu object(s) of the dynamic configuration are invalid",
                  ctl_last->nerrors);
        bad = 1;
    }
    ctl_live = 0;
    wk_publish(NULL);
    ctl_free_providers(0);
    ctl_teardown();
    mt_stop();
    if (!bad) printf("configuration OK\n");
    return bad;
}

/* SIGTERM / SIGINT: graceful stop. */
static void ctl_on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    int64_t accept = 0;

    if (ctl_stopping) return;
    ctl_stopping = 1;
    sdn_notify("STOPPING=1");
    __atomic_store_n(&wk_terminating, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < ctl_sc->neps; i++)
        if (ctl_sc->eps[i].accept_grace_ms > accept) accept = ctl_sc->eps[i].accept_grace_ms;
    log_info("control", "signal %d: stopping (grace %lld ms)", (int)sig,
             (long long)(ctl_sc->neps ? ctl_sc->eps[0].grace_ms : 0));
    if (accept > 0) {
        /* requests are still accepted (ping turns terminatingStatusCode
           so that a load balancer in front takes this node out) */
        struct timeval tv = {accept / 1000, (accept % 1000) * 1000};
        log_info("control", "accepting requests for %lld ms more (requestAcceptGraceTimeout)",
                 (long long)accept);
        event_base_loopexit(ctl_base, &tv);
        return;
    }
    event_base_loopexit(ctl_base, NULL);
}

/* The old process after an upgrade: the new one serves, stop as for
 * SIGTERM. */
static void ctl_upgraded(pid_t pid)
{
    if (ctl_stopping) return;
    ctl_stopping = 1;
    log_info("control", "upgraded to pid %ld: stopping (grace %lld ms)", (long)pid,
             (long long)(ctl_sc->neps ? ctl_sc->eps[0].grace_ms : 0));
    event_base_loopexit(ctl_base, NULL);
}

/* SIGUSR2: hitless binary upgrade (see upgrade.h). */
static void ctl_on_usr2(evutil_socket_t sig, short what, void *arg)
{
    const int *fds;
    size_t n = wk_listen_fds(&fds);

    (void)sig;
    (void)what;
    (void)arg;
    if (ctl_stopping) return;
    log_info("control", "SIGUSR2: upgrading");
    ug_start(ctl_base, fds, n, ctl_upgraded);
}

/* Readiness: once the workers run and every provider's first
 * configuration is applied (or after CTL_READY_MAX_MS), the pid file is
 * written and an upgrading parent is told.  Polled every 50 ms. */
static void ctl_check_ready(evutil_socket_t fd, short what, void *arg)
{
    int all = 1;
    struct timeval tv = {0, 50000};

    (void)fd;
    (void)what;
    (void)arg;
    if (ctl_is_ready) return;
    for (size_t i = 0; i < ctl_nprovs; i++)
        if (!ctl_provs[i].tree) all = 0;
    if (!cl_ready()) all = 0;
    if ((!all || ctl_pending) && wk_now_ms() - ctl_started_ms < CTL_READY_MAX_MS) {
        evtimer_add(ctl_ready_ev, &tv);
        return;
    }
    ctl_is_ready = 1;
    if (ctl_pidfile) ug_write_pidfile(ctl_pidfile);
    ug_ready();
    sdn_notify("READY=1"); /* after ug_ready's MAINPID= */
}

void ctl_set_pidfile(const char *path)
{
    ctl_pidfile = path;
    ug_set_pidfile(path);
}

/* static_live hook: sc is the static configuration from now on; the
 * snapshot is rebuilt with it at once. */
static void ctl_static_changed(struct sc_config *sc)
{
    ctl_sc = sc;
    ctl_apply();
}

/* SIGHUP: the static file's runtime-safe part is read again, providers
 * re-read their sources. */
static void ctl_on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_info("control", "SIGHUP: reloading the static configuration and the providers");
    sdn_reloading();
    sl_reload_file();
    for (size_t i = 0; i < ctl_nprovs; i++)
        if (ctl_provs[i].ops->reload) ctl_provs[i].ops->reload(ctl_provs[i].inst);
    sdn_notify("READY=1");
}

/* SIGUSR1: reopen the log file. */
static void ctl_on_usr1(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    log_reopen();
    al_reopen(px_alog);
}

/* Opens the static accessLog (if any) for sc's workers into *out.  0, or
 * -1 after logging its errors with the file and key path. */
static int ctl_access_log(const struct sc_config *sc, struct al_log **out)
{
    struct conf_session *s = conf_session_new("");
    const relais_cfg *node = conf_cfg_get(conf_session_root(s, sc->root), "accessLog");
    int rc = 0;

    *out = NULL;
    if (node && al_new(node, sc->workers, out) < 0) {
        for (size_t i = 0; i < conf_session_nerrors(s); i++)
            log_error("config", "%s: %s", sc->path, conf_session_error(s, i));
        rc = -1;
    }
    conf_session_free(s);
    return rc;
}

/* Starts the static tracing (if configured and not false) for sc's
 * workers into *out; with check, only validates.  0, or -1 after logging
 * its errors with the file and key path. */
static int ctl_tracing(const struct sc_config *sc, int check, struct trc_tracer **out)
{
    struct conf_session *s = conf_session_new("");
    const relais_cfg *node = conf_cfg_get(conf_session_root(s, sc->root), "tracing");
    struct trc_tracer *t = NULL;
    int rc = 0, on = 1;

    if (out) *out = NULL;
    if (node && conf_cfg_type(node) == RELAIS_CFG_BOOL) conf_cfg_bool(node, NULL, &on);
    if (node && on && trc_new(node, sc->workers, check, &t) < 0) {
        for (size_t i = 0; i < conf_session_nerrors(s); i++)
            log_error("config", "%s: %s", sc->path, conf_session_error(s, i));
        rc = -1;
    }
    if (out) *out = t;
    conf_session_free(s);
    return rc;
}

int ctl_run(struct sc_config *sc, struct pl_set *plugins)
{
    struct event *sigs[5] = {NULL, NULL, NULL, NULL, NULL};
    int64_t grace = 0;
    int rc = 1;

    signal(SIGPIPE, SIG_IGN);
    if (ctl_setup(sc, plugins) < 0) goto out;
    if (cl_configure(sc) < 0) goto out;
    /* a cluster proxy runs no provider: etcd is its only source */
    if (cl_role() != CL_PROXY && ctl_create_providers() < 0) goto out;
    for (size_t i = 0; i < ctl_nprovs; i++) cl_provider_declare(ctl_provs[i].name);
    if (cl_start(ctl_base, ctl_cluster_source) < 0) goto out_providers;
    if (rs_start(ctl_base, sc, ctl_certs_changed) < 0)
        log_error("control", "a certificate resolver is left out (see above)");
    /* the access log before any snapshot: each one holds the log its
       requests write to */
    if (ctl_access_log(sc, &px_alog) < 0) goto out_providers;
    /* an empty configuration first: workers always have a snapshot */
    ctl_live = 1;
    ctl_apply();
    ctl_last_apply_ms = 0;
    /* providers start before the listeners open, so that what they can
     * publish at once (the file provider) is served from the first
     * request; LB strategies size their per-thread state from the worker
     * count, which is therefore set first */
    wk_set_count(sc->workers);
    if (ctl_metrics(sc) < 0 || mt_start(sc, sc->workers) < 0) goto out_providers;
    px_prom_render = mt_render; /* prometheus@internal */
    api_set_stats(mt_stats);    /* /api/relais/stats */
    api_set_dashboard(dash_index_html, dash_index_html_len); /* /dashboard/ */
    if (ctl_tracing(sc, 0, &trc_active) < 0) goto out_providers;
    for (size_t i = 0; i < ctl_nprovs; i++) {
        struct relais_provider *p = &ctl_provs[i];
        if (p->ops->start(p->inst) != 0)
            log_error("control", "provider %s failed to start", p->name);
    }
    if (wk_start(sc, sc->workers) < 0) {
        for (size_t i = 0; i < ctl_nprovs; i++)
            if (ctl_provs[i].ops->stop) ctl_provs[i].ops->stop(ctl_provs[i].inst);
        goto out_providers;
    }
    if (sl_start(ctl_base, sc, ctl_static_changed) < 0)
        log_error("control", "static options cannot change at run time (out of memory)");
    sigs[0] = evsignal_new(ctl_base, SIGTERM, ctl_on_stop, NULL);
    sigs[1] = evsignal_new(ctl_base, SIGINT, ctl_on_stop, NULL);
    sigs[2] = evsignal_new(ctl_base, SIGHUP, ctl_on_hup, NULL);
    sigs[3] = evsignal_new(ctl_base, SIGUSR1, ctl_on_usr1, NULL);
    sigs[4] = evsignal_new(ctl_base, SIGUSR2, ctl_on_usr2, NULL);
    for (int i = 0; i < 5; i++) event_add(sigs[i], NULL);
    ctl_started_ms = wk_now_ms();
    ctl_ready_ev = evtimer_new(ctl_base, ctl_check_ready, NULL);
    if (ctl_ready_ev) ctl_check_ready(-1, 0, NULL);
    for (size_t i = 0; i < sc->neps; i++) {
        log_info("entrypoint", "%s listening on %s", sc->eps[i].name, sc->eps[i].address);
        if (sc->eps[i].grace_ms > grace) grace = sc->eps[i].grace_ms;
    }
    log_info("control", "relais %s started with %u worker thread(s)", PACKAGE_VERSION,
             sc->workers);
    event_base_dispatch(ctl_base);
    ctl_live = 0;
    for (size_t i = 0; i < ctl_nprovs; i++)
        if (ctl_provs[i].ops->stop) ctl_provs[i].ops->stop(ctl_provs[i].inst);
    cl_stop(); /* the lease goes: another controller leads at once */
    /* the entry points as they are now (some may have been added or
       changed at run time) */
    for (size_t i = 0; i < ctl_sc->neps; i++)
        if (sc_ep_live(ctl_sc, i) && ctl_sc->eps[i].grace_ms > grace)
            grace = ctl_sc->eps[i].grace_ms;
    wk_stop(grace);
    mt_stop(); /* workers are gone */
    /* workers are gone: the access log has every line */
    al_free(px_alog);
    px_alog = NULL;
    trc_free(trc_active); /* sends what is queued (about 2 s at most) */
    trc_active = NULL;
    /* workers are gone: their released snapshots are queued */
    ctl_release_run(-1, 0, NULL);
    for (int i = 0; i < 5; i++)
        if (sigs[i]) event_free(sigs[i]);
    if (ctl_ready_ev) event_free(ctl_ready_ev);
    ctl_ready_ev = NULL;
    ug_free();
    if (ctl_pidfile) ug_remove_pidfile(ctl_pidfile);
    for (size_t i = 0; i < ctl_nprovs; i++) {
        struct relais_provider *p = &ctl_provs[i];
        if (p->ops->destroy) p->ops->destroy(p->inst);
        p->ops = NULL;
    }
    rc = 0;
    log_info("control", "stopped");
    {
        /* providers are destroyed already: only free the bookkeeping */
        for (size_t i = 0; i < ctl_nprovs; i++) {
            json_decref(ctl_provs[i].tree);
            json_decref(ctl_provs[i].origins);
            free(ctl_provs[i].name);
        }
        free(ctl_provs);
        ctl_provs = NULL;
        ctl_nprovs = 0;
    }
    sl_stop(); /* ctl_sc is not used from here on */
    ctl_teardown();
    return rc;
out_providers:
    ctl_live = 0;
    cl_stop();
    al_free(px_alog);
    px_alog = NULL;
    mt_stop();
    trc_free(trc_active);
    trc_active = NULL;
    ctl_free_providers(0);
out:
    ctl_teardown();
    return rc;
}
