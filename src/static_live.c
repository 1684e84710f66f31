/*
 * static_live — see static_live.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "accesslog.h"
#include "cluster.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "snapshot.h"
#include "static_config.h"
#include "static_live.h"
#include "worker.h"

/** A replaced version waiting for every worker to switch away from it. */
struct sl_pending {
    struct wk_change *ch;    /* the change the workers apply */
    struct sc_config *old;   /* the version it replaced (a reference) */
    int done;                /* every worker applied it (atomic) */
    struct sl_pending *next; /* older ones */
};

static struct event_base *sl_base;       /* control loop */
static struct sc_config *sl_cur;         /* running version (a reference) */
static json_t *sl_file;                  /* the file side: the document read
                                            at start, its runtime-safe keys
                                            as of the last good SIGHUP */
static json_t *sl_overlay;               /* the overlay applied, or NULL */
static void (*sl_changed)(struct sc_config *sc); /* control module's hook */
static struct event *sl_reap_ev;         /* frees the versions replaced */
static struct sl_pending *sl_pend;       /* versions replaced, newest first */

/** Keys of the overlay (and of the file) that change at run time. */
static const char *const sl_runtime_keys[] = {"log", "accessLog", "entryPoints", NULL};

/* ------------------------------------------------------------ documents */

/* Removes every member of o called key without regard to case. */
static void sl_del_ci(json_t *o, const char *key)
{
    const char *k;
    json_t *v;
    void *tmp;

    json_object_foreach_safe(o, tmp, k, v)
        if (!strcasecmp(k, key)) json_object_del(o, k);
}

/* Sets o.key to v (taken), replacing any member spelled otherwise. */
static void sl_set_ci(json_t *o, const char *key, json_t *v)
{
    sl_del_ci(o, key);
    json_object_set_new(o, key, v);
}

/* The map o.key (made when absent or not a map). */
static json_t *sl_map_ci(json_t *o, const char *key)
{
    json_t *m = conf_json_get(o, key);

    if (!json_is_object(m)) {
        m = json_object();
        sl_set_ci(o, key, m);
    }
    return m;
}

/* Replaces dst's runtime-safe keys (entryPoints, accessLog, log.level) by
 * src's (removing those src lacks). */
static void sl_take_runtime(json_t *dst, json_t *src)
{
    static const char *const whole[] = {"entryPoints", "accessLog"};
    json_t *lv = conf_json_get(conf_json_get(src, "log"), "level");

    for (size_t i = 0; i < 2; i++) {
        json_t *v = conf_json_get(src, whole[i]);
        sl_del_ci(dst, whole[i]);
        if (v) json_object_set_new(dst, whole[i], json_deep_copy(v));
    }
    if (json_is_object(conf_json_get(dst, "log"))) sl_del_ci(conf_json_get(dst, "log"), "level");
    if (lv) json_object_set_new(sl_map_ci(dst, "log"), "level", json_deep_copy(lv));
}

/* The effective document: file with overlay ov (may be NULL) over it.
 * New reference, NULL when memory ran out. */
static json_t *sl_effective(const json_t *file, const json_t *ov)
{
    json_t *d = json_deep_copy(file), *x, *v;
    const char *k;

    if (!d || !ov) return d;
    v = conf_json_get(conf_json_get((json_t *)ov, "log"), "level");
    if (v) json_object_set_new(sl_map_ci(d, "log"), "level", json_deep_copy(v));
    v = conf_json_get((json_t *)ov, "accessLog");
    if (v) {
        sl_del_ci(d, "accessLog");
        if (!json_is_null(v)) json_object_set_new(d, "accessLog", json_deep_copy(v));
    }
    x = conf_json_get((json_t *)ov, "entryPoints");
    if (x) {
        json_t *eps = sl_map_ci(d, "entryPoints");
        json_object_foreach(x, k, v) {
            if (json_is_null(v)) json_object_del(eps, k);
            else json_object_set_new(eps, k, json_deep_copy(v));
        }
    }
    return d;
}

/* Checks the overlay's shape (the values are checked with the whole).
 * 0, or -1 with err set. */
static int sl_check_overlay(const json_t *ov, const char *who, char *err, size_t errlen)
{
    const char *k, *k2;
    json_t *v, *v2;

    if (!json_is_object(ov)) {
        snprintf(err, errlen, "%s: expected a map (log, accessLog, entryPoints)", who);
        return -1;
    }
    json_object_foreach((json_t *)ov, k, v) {
        size_t i;
        for (i = 0; sl_runtime_keys[i] && strcasecmp(k, sl_runtime_keys[i]); i++) {
        }
        if (!sl_runtime_keys[i]) {
            snprintf(err, errlen, "%s: %s: only log, accessLog and entryPoints can change at "
                     "run time", who, k);
            return -1;
        }
        if (!strcasecmp(k, "log")) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "%s: %s: expected a map ({level: ...})", who, k);
                return -1;
            }
            json_object_foreach(v, k2, v2) {
                if (strcasecmp(k2, "level")) {
                    snprintf(err, errlen, "%s: %s.%s: only log.level, accessLog and entryPoints "
                             "can change at run time", who, k, k2);
                    return -1;
                }
            }
        } else if (!strcasecmp(k, "entryPoints")) {
            if (!json_is_object(v)) {
                snprintf(err, errlen, "%s: %s: expected a map of entry points (null removes "
                         "one)", who, k);
                return -1;
            }
            json_object_foreach(v, k2, v2) {
                if (!json_is_object(v2) && !json_is_null(v2)) {
                    snprintf(err, errlen, "%s: %s.%s: expected a map with an address, or null "
                             "to remove the entry point", who, k, k2);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Logs that path differs in file (a key read at start only). */
static void sl_warn_key(const char *path, const char *file)
{
    log_warn("config", "%s: changed in %s, needs a restart", path, file);
}

/* Compares one static key k between a and b (either may be NULL); maps
 * are compared one level down (providers.docker).  For log, the level is
 * left out (it changes at run time). */
static void sl_diff_key(const char *k, json_t *a, json_t *b, const char *file)
{
    json_t *la = NULL, *lb = NULL;
    const char *sk;
    json_t *sv;
    char path[512];

    if (!strcasecmp(k, "log")) {
        la = json_is_object(a) ? json_deep_copy(a) : a ? json_incref(a) : json_object();
        lb = json_is_object(b) ? json_deep_copy(b) : b ? json_incref(b) : json_object();
        if (json_is_object(la)) sl_del_ci(la, "level");
        if (json_is_object(lb)) sl_del_ci(lb, "level");
        a = la;
        b = lb;
    }
    if (a && b && json_equal(a, b)) goto out;
    if (json_is_object(a) && json_is_object(b)) {
        json_object_foreach(a, sk, sv) {
            json_t *o = conf_json_get(b, sk);
            if (o && json_equal(sv, o)) continue;
            snprintf(path, sizeof(path), "%s.%s", k, sk);
            sl_warn_key(path, file);
        }
        json_object_foreach(b, sk, sv) {
            if (conf_json_get(a, sk)) continue;
            snprintf(path, sizeof(path), "%s.%s", k, sk);
            sl_warn_key(path, file);
        }
    } else if (a || b) {
        sl_warn_key(k, file);
    }
out:
    json_decref(la);
    json_decref(lb);
}

/* Logs a WARN line per key path other than the runtime-safe ones whose
 * value differs between the running file document a and the new one b. */
static void sl_warn_static(json_t *a, json_t *b, const char *file)
{
    const char *k;
    json_t *v;

    json_object_foreach(a, k, v) {
        if (!strcasecmp(k, "entryPoints") || !strcasecmp(k, "accessLog")) continue;
        sl_diff_key(k, v, conf_json_get(b, k), file);
    }
    json_object_foreach(b, k, v) {
        if (!strcasecmp(k, "entryPoints") || !strcasecmp(k, "accessLog")) continue;
        if (!conf_json_get(a, k)) sl_diff_key(k, NULL, v, file);
    }
}

/* ------------------------------------------------------------ switching */

/* Frees the versions every worker switched away from (all with force:
 * the workers are gone). */
static void sl_reap(int force)
{
    struct sl_pending **pp = &sl_pend, *p;

    while ((p = *pp) != NULL) {
        if (!force && !__atomic_load_n(&p->done, __ATOMIC_ACQUIRE)) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        wk_change_free(p->ch);
        sc_free(p->old);
        free(p);
    }
}

/* Event: a change was applied by every worker. */
static void sl_reap_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sl_reap(0);
}

/* wk_change done hook (the last worker's thread, or wk_stop). */
static void sl_done(void *arg)
{
    struct sl_pending *p = arg;

    __atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
    if (sl_reap_ev) event_active(sl_reap_ev, EV_READ, 0);
}

/* The accessLog section of version c (NULL when none). */
static json_t *sl_alog_node(const struct sc_config *c)
{
    return conf_json_get(c->root, "accessLog");
}

/* Appends ", name" (or "name") to buf. */
static void sl_list_add(char *buf, size_t len, const char *name)
{
    size_t n = strlen(buf);

    if (n + 1 < len) snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
}

/* Makes file + overlay the running static configuration.  file (taken)
 * becomes sl_file on success; overlay is copied.  0, or -1 with err set
 * and nothing changed. */
static int sl_switch(json_t *file, const json_t *overlay, const char *who, char *err,
                     size_t errlen)
{
    struct sc_config *old = sl_cur, *nv;
    struct sl_pending *p = NULL;
    struct wk_change *ch = NULL;
    struct al_log *alog = NULL;
    json_t *ov = overlay ? json_deep_copy(overlay) : NULL;
    uint64_t added, removed = 0;
    unsigned n = wk_count();
    int *fds = NULL, alog_changed;
    char addl[512] = "", reml[512] = "", chgl[512] = "", what[1024] = "";

    if ((overlay && !ov) || !file) goto oom;
    nv = sc_derive(old, sl_effective(file, overlay), who, err, errlen);
    if (!nv) goto fail_doc;
    added = nv->ep_new;
    for (size_t e = 0; e < old->neps; e++)
        if (sc_ep_live(old, e) && !sc_ep_live(nv, e)) removed |= (uint64_t)1 << e;
    fds = malloc(SC_MAX_EPS * (n ? n : 1) * sizeof(*fds));
    p = calloc(1, sizeof(*p));
    if (!fds || !p) goto oom_nv;
    for (size_t i = 0; i < SC_MAX_EPS * (n ? n : 1); i++) fds[i] = -1;
    /* the new listeners first: an address in use changes nothing */
    for (size_t e = 0; e < nv->neps; e++) {
        const struct sc_entrypoint *ep = &nv->eps[e];
        int like = -1;
        if (!(added >> e & 1)) continue;
        for (size_t r = 0; r < old->neps && like < 0; r++)
            if ((removed >> r & 1) && old->eps[r].udp == ep->udp &&
                old->eps[r].addrlen == ep->addrlen &&
                !memcmp(&old->eps[r].addr, &ep->addr, ep->addrlen))
                like = (int)r;
        if (wk_listen_slot(nv, (int)e, like, fds + e * n) < 0) {
            snprintf(err, errlen, "%s: entryPoints.%s.address: cannot listen on %s: %s", who,
                     ep->name, ep->address, strerror(errno));
            goto fail_nv;
        }
    }
    /* then the access log, when its section changed */
    alog_changed = !json_equal(sl_alog_node(old), sl_alog_node(nv)) &&
                   (sl_alog_node(old) || sl_alog_node(nv));
    if (alog_changed && sl_alog_node(nv)) {
        struct conf_session *s = conf_session_new("");
        const relais_cfg *node = s ? conf_cfg_get(conf_session_root(s, nv->root), "accessLog")
                                   : NULL;
        if (!node || al_new(node, nv->workers, &alog) < 0) {
            if (s && conf_session_nerrors(s))
                snprintf(err, errlen, "%s: %s", who, conf_session_error(s, 0));
            else
                snprintf(err, errlen, "%s: accessLog: cannot start it", who);
            conf_session_free(s);
            goto fail_nv;
        }
        conf_session_free(s);
    }
    ch = wk_change_new(nv, added, fds, removed);
    if (!ch) goto oom_nv;
    fds = NULL; /* the change's now */

    /* nothing can fail from here on */
    sc_commit(nv);
    for (size_t e = 0; e < nv->neps; e++) {
        int gone = -1;
        if (!(added >> e & 1)) continue;
        for (size_t r = 0; r < old->neps; r++)
            if ((removed >> r & 1) && !strcmp(old->eps[r].name, nv->eps[e].name)) gone = (int)r;
        sl_list_add(gone >= 0 ? chgl : addl, sizeof(addl), nv->eps[e].name);
        log_info("entrypoint", "%s listening on %s", nv->eps[e].name, nv->eps[e].address);
    }
    for (size_t r = 0; r < old->neps; r++)
        if ((removed >> r & 1) && sc_entrypoint_index(nv, old->eps[r].name) < 0) {
            sl_list_add(reml, sizeof(reml), old->eps[r].name);
            log_info("entrypoint", "%s: stopped listening on %s (its connections drain for "
                     "up to %lld ms)", old->eps[r].name, old->eps[r].address,
                     (long long)old->eps[r].grace_ms);
        }
    if (nv->log_level != old->log_level) {
        static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
        log_set_level(nv->log_level);
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%slog level %s",
                 what[0] ? "; " : "", names[nv->log_level & 3]);
    }
    if (alog_changed) {
        struct al_log *prev = px_alog;
        json_t *fp = conf_json_get(sl_alog_node(nv), "filePath");
        px_alog = alog; /* snapshots built from now on take it */
        al_free(prev);  /* the snapshots that hold it close it */
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%saccess log %s",
                 what[0] ? "; " : "",
                 !alog ? "off" : json_is_string(fp) && *json_string_value(fp)
                                     ? json_string_value(fp) : "on standard output");
    }
    if (addl[0])
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sentry points added: %s",
                 what[0] ? "; " : "", addl);
    if (chgl[0])
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sentry points changed: %s",
                 what[0] ? "; " : "", chgl);
    if (reml[0])
        snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sentry points removed: %s",
                 what[0] ? "; " : "", reml);
    mt_set_static(nv);
    sl_cur = nv;
    json_decref(sl_file);
    sl_file = file;
    json_decref(sl_overlay);
    sl_overlay = ov;
    /* the snapshot first (routers on the new entry points), then the
       workers: a connection is never accepted before its routes exist */
    sl_changed(nv);
    p->ch = ch;
    p->old = old;
    p->next = sl_pend;
    sl_pend = p;
    wk_change_send(ch, sl_done, p);
    log_info("config", "static configuration applied from %s: %s", who,
             what[0] ? what : "nothing that runs changed");
    return 0;

oom_nv:
    snprintf(err, errlen, "%s: out of memory", who);
fail_nv:
    if (fds)
        for (size_t i = 0; i < SC_MAX_EPS * (n ? n : 1); i++)
            if (fds[i] >= 0) close(fds[i]);
    free(fds);
    free(p);
    al_free(alog);
    sc_free(nv);
fail_doc:
    json_decref(file);
    json_decref(ov);
    return -1;
oom:
    snprintf(err, errlen, "%s: out of memory", who);
    goto fail_doc;
}

/* ------------------------------------------------------------ entry points */

/* Cluster mode: the etcd key P/static changed (doc borrowed, NULL when
 * the key is absent): it is the overlay from now on.  An error is logged
 * and shown in this node's status; the running options are kept. */
static void sl_on_static(const json_t *doc, void *arg)
{
    char origin[300], err[2048];
    struct snapshot *s;

    (void)arg;
    snprintf(origin, sizeof(origin), "etcd key %s/static", cl_prefix());
    if (sl_apply(doc, origin, err, sizeof(err)) == 0) return;
    log_error("config", "%s (the running static options are kept)", err);
    s = wk_current();
    cl_report(s ? s->nrouters : 0, s ? s->nservices : 0, err);
    if (s) snap_unref(s);
}

int sl_start(struct event_base *base, struct sc_config *sc,
             void (*changed)(struct sc_config *sc))
{
    sl_base = base;
    sl_changed = changed;
    sl_file = json_deep_copy(sc->root);
    sl_reap_ev = event_new(base, -1, 0, sl_reap_run, NULL);
    if (!sl_file || !sl_reap_ev) {
        json_decref(sl_file);
        sl_file = NULL;
        if (sl_reap_ev) event_free(sl_reap_ev);
        sl_reap_ev = NULL;
        return -1;
    }
    sl_cur = sc_ref(sc);
    /* cluster mode: P/static is the overlay (etcd is read once the
       control loop runs, so its first value comes after this); a no-op
       otherwise */
    cl_on_static(sl_on_static, NULL);
    return 0;
}

const struct sc_config *sl_current(void)
{
    return sl_cur;
}

int sl_apply(const json_t *overlay, const char *origin, char *err, size_t errlen)
{
    if (!origin) origin = "static overlay";
    if (!sl_cur) {
        snprintf(err, errlen, "%s: the static configuration can change only once relais runs",
                 origin);
        return -1;
    }
    if (overlay && sl_check_overlay(overlay, origin, err, errlen) < 0) return -1;
    if (overlay ? sl_overlay && json_equal(overlay, sl_overlay) : !sl_overlay) return 0;
    return sl_switch(json_deep_copy(sl_file), overlay, origin, err, errlen);
}

void sl_reload_file(void)
{
    char err[2048];
    const char *path;
    json_t *doc, *nf;

    if (!sl_cur) return;
    path = sl_cur->path;
    if (!sl_cur->file) {
        log_info("config", "SIGHUP: no static file to read again (command-line flags only)");
        return;
    }
    doc = sc_reload_doc(sl_cur, err, sizeof(err));
    if (!doc) {
        log_error("config", "SIGHUP: %s (static configuration not changed)", err);
        return;
    }
    if (sc_check_doc(doc, path, err, sizeof(err)) < 0) {
        log_error("config", "SIGHUP: %s (static configuration not changed)", err);
        json_decref(doc);
        return;
    }
    sl_warn_static(sl_file, doc, path);
    nf = json_deep_copy(sl_file);
    if (nf) sl_take_runtime(nf, doc);
    json_decref(doc);
    if (nf && json_equal(nf, sl_file)) {
        log_info("config", "SIGHUP: %s: no runtime-safe static option (log.level, accessLog, "
                 "entryPoints) changed", path);
        json_decref(nf);
        return;
    }
    if (sl_switch(nf, sl_overlay, path, err, sizeof(err)) < 0)
        log_error("config", "SIGHUP: %s (static configuration not changed)", err);
}

void sl_stop(void)
{
    sl_reap(1);
    if (sl_reap_ev) event_free(sl_reap_ev);
    sl_reap_ev = NULL;
    sc_free(sl_cur);
    sl_cur = NULL;
    json_decref(sl_file);
    sl_file = NULL;
    json_decref(sl_overlay);
    sl_overlay = NULL;
    sl_changed = NULL;
    sl_base = NULL;
}
