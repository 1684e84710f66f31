/*
 * cluster — cluster mode on etcd (see cluster.h for the contract and the
 * key layout).
 *
 * Life of a node:
 *
 *   cl_start ─► lease grant ─► keepalive every TTL/3 ─► (expired: grant
 *        │                                               again, campaign)
 *        ├──► range P/ (all keys) ─► watch P/ from revision+1
 *        │        every batch: the cache (cl.kv) is updated, changed
 *        │        documents go to the control thread's source callback
 *        └──► controller: campaign (txn: create P/leader if absent)
 *                 leader: publish the providers' trees (txn fenced by
 *                 P/leader's create revision); lost: stop publishing,
 *                 campaign again when P/leader goes away (watch) or every
 *                 TTL (timer)
 *
 * Everything runs on the control thread; the etcd client never calls back
 * from inside a call.
 */
#include "config.h"

#include "cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "dynvalidate.h"
#include "etcd.h"
#include "log.h"
#include "static_config.h"

#define CL_MAX_ENDPOINTS 32          /* cluster.etcd.endpoints cap */
#define CL_MAX_DOC (1536u * 1024)    /* a document's cap (etcd's request
                                        limit is 1.5 MiB) */
#define CL_MAX_KEYS 4096             /* keys kept from the prefix */
#define CL_MAX_TXN_OPS 100           /* operations per publish txn (etcd's
                                        --max-txn-ops default is 128) */
#define CL_MAX_CBS 8                 /* leader / static callbacks */
#define CL_RETRY_MIN_MS 200          /* first retry after an etcd failure */
#define CL_RETRY_MAX_MS 5000         /* retries back off up to this */
#define CL_STOP_MAX_MS 2000          /* a stop waits this long for the
                                        lease revoke */

/** A registered callback. */
struct cl_cb {
    void (*leader)(int leader, void *arg);      /* leadership change, or NULL */
    void (*stat)(const json_t *doc, void *arg); /* P/static change, or NULL */
    void *arg;                                  /* given back */
};

/** The module's state (one cluster per process). */
static struct {
    enum cl_role role;             /* configured role */
    char *node;                    /* nodeName */
    char *prefix;                  /* P */
    int64_t ttl_s;                 /* leaseTTL in seconds */
    char *endpoints[CL_MAX_ENDPOINTS]; /* etcd endpoints */
    size_t nendpoints;             /* how many */
    char *username, *password;     /* etcd credentials, or NULL */
    char *tls_ca, *tls_cert, *tls_key; /* TLS files, or NULL */
    int tls_insecure;              /* insecureSkipVerify */
    int64_t timeout_ms;            /* per endpoint attempt */
    char *api;                     /* this node's API address, or NULL */
    const char *file;              /* static file, for messages */

    struct event_base *base;       /* control loop */
    struct etc_client *etc;        /* the client */
    cl_source_cb source;           /* documents to the control thread */

    int64_t lease;                 /* node lease, 0 while none */
    uint64_t lease_ok_ms;          /* last successful grant/keepalive */
    struct etc_call *lease_call;   /* grant or keepalive in flight */
    struct event *lease_ev;        /* keepalive / regrant timer */
    int64_t lease_retry_ms;        /* backoff of grant failures */

    int leader;                    /* this node leads */
    int64_t leader_rev;            /* P/leader's create revision while leading */
    struct etc_call *camp_call;    /* campaign txn in flight */
    struct event *camp_ev;         /* campaign timer (every TTL) */

    struct etc_call *load_call;    /* initial range in flight */
    struct etc_watch *watch;       /* watch on P/ */
    struct event *load_ev;         /* reload timer (failure, compaction) */
    int64_t load_retry_ms;         /* its backoff */
    int64_t rev;                   /* etcd revision read up to */
    int64_t conf_rev;              /* revision of the last change applied
                                      (configuration, certificates, static
                                      options), shown in the node status */
    int loaded;                    /* the first range was applied */
    json_t *kv;                    /* cache: key below P/ -> value (string) */
    json_t *served;                /* provider name -> the key below P/
                                      ("config/NAME" or "apply/NAME") whose
                                      document the source serves as NAME */
    json_t *refused;               /* provider name -> true while
                                      P/apply/NAME is refused (the name
                                      collision rule, cl_sync) */

    json_t *local;                 /* controller: provider -> tree to publish */
    json_t *declared;              /* controller: provider -> true (runs it) */
    struct etc_call *pub_call;     /* publish txn in flight */
    struct event *pub_ev;          /* publish timer */
    int pub_dirty;                 /* local changed since the last publish */

    struct etc_call *status_call;  /* status put in flight */
    struct event *status_ev;       /* status debounce timer */
    int status_dirty;              /* status changed meanwhile */
    size_t routers, services;      /* served counts */
    char *last_error;              /* last error, or NULL */
    int64_t last_error_time;       /* its time (unix s) */
    int64_t started;               /* start time (unix s) */

    struct cl_cb cbs[CL_MAX_CBS];  /* registered callbacks */
    size_t ncbs;                   /* how many */
} cl;

static void cl_campaign(void);
static void cl_publish_schedule(int64_t delay_ms);
static void cl_status_schedule(void);
static void cl_load(void);

/* Milliseconds of a monotonic clock. */
static uint64_t cl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Arms ev after ms milliseconds. */
static void cl_arm(struct event *ev, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    if (ev) evtimer_add(ev, &tv);
}

/* "P/" + rest into a new string, or NULL. */
static char *cl_key(const char *rest)
{
    size_t n = strlen(cl.prefix) + 1 + strlen(rest) + 1;
    char *k = malloc(n);

    if (k) snprintf(k, n, "%s/%s", cl.prefix, rest);
    return k;
}

/* Records err as the node's last error (logged by the caller). */
static void cl_error(const char *fmt, ...) RELAIS_PRINTF(1, 2);
static void cl_error(const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(cl.last_error);
    cl.last_error = strdup(buf);
    cl.last_error_time = (int64_t)time(NULL);
    log_error("cluster", "%s", buf);
    cl_status_schedule();
}

/* ---- configuration -------------------------------------------------- */

/* 1 when s is a valid node name or prefix component set. */
static int cl_name_ok(const char *s, int slash)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 * (slash ? 4 : 1)) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-' || (slash && *s == '/')))
            return 0;
    return 1;
}

/* Frees the configured strings. */
static void cl_clear_config(void)
{
    free(cl.node);
    free(cl.prefix);
    for (size_t i = 0; i < cl.nendpoints; i++) free(cl.endpoints[i]);
    free(cl.username);
    free(cl.password);
    free(cl.tls_ca);
    free(cl.tls_cert);
    free(cl.tls_key);
    free(cl.api);
    memset(&cl, 0, sizeof(cl));
}

/* Copies the optional string node.key into *out (NULL when absent). */
static void cl_opt_string(const relais_cfg *node, const char *key, char **out)
{
    const char *s;

    if (conf_cfg_string(node, key, &s) == RELAIS_CFG_OK && *s) *out = strdup(s);
}

int cl_configure(const struct sc_config *sc)
{
    static const char *const known[] = {"role", "nodeName", "prefix", "leaseTTL", "etcd", NULL};
    static const char *const eknown[] = {"endpoints", "username", "password", "tls", "timeout",
                                         NULL};
    struct conf_session *s;
    const relais_cfg *root, *c, *e, *t, *eps;
    const char *str, *key;
    char host[256];
    int64_t v;
    size_t i, nerr;
    int rc = 0;

    cl_clear_config();
    cl.file = sc->path;
    if (!conf_json_get(sc->root, "cluster")) return 0;
    s = conf_session_new("");
    root = conf_session_root(s, sc->root);
    c = conf_cfg_get(root, "cluster");
    if (conf_cfg_type(c) != RELAIS_CFG_MAP) {
        conf_cfg_error(c, NULL, "expected a map (role, nodeName, prefix, leaseTTL, etcd)");
        goto done;
    }
    for (i = 0; i < conf_cfg_len(c); i++) {
        const relais_cfg *ch = conf_cfg_at(c, i, &key);
        const char *const *k;
        for (k = known; *k && strcasecmp(*k, key); k++) {}
        if (!*k) conf_cfg_error(ch, NULL, "unknown key (expected role, nodeName, prefix, leaseTTL, etcd)");
    }
    if (conf_cfg_string(c, "role", &str) != RELAIS_CFG_OK) {
        if (!conf_cfg_get(c, "role")) conf_cfg_error(c, "role", "missing: controller or proxy");
    } else if (!strcasecmp(str, "controller")) {
        cl.role = CL_CONTROLLER;
    } else if (!strcasecmp(str, "proxy")) {
        cl.role = CL_PROXY;
    } else {
        conf_cfg_error(c, "role", "expected controller or proxy, got \"%s\"", str);
    }
    if (conf_cfg_string(c, "nodeName", &str) == RELAIS_CFG_OK) {
        if (!cl_name_ok(str, 0))
            conf_cfg_error(c, "nodeName", "expected 1 to 63 characters of A-Z a-z 0-9 . _ -");
        else
            cl.node = strdup(str);
    } else if (!conf_cfg_get(c, "nodeName")) {
        if (gethostname(host, sizeof(host)) != 0 || !cl_name_ok(host, 0))
            conf_cfg_error(c, "nodeName", "missing, and the host name is not a usable node name");
        else
            cl.node = strdup(host);
    }
    cl.prefix = strdup("relais");
    if (conf_cfg_string(c, "prefix", &str) == RELAIS_CFG_OK) {
        size_t n = strlen(str);
        if (!cl_name_ok(str, 1) || str[0] == '/' || str[n - 1] == '/' || strstr(str, "//"))
            conf_cfg_error(c, "prefix", "expected key components of A-Z a-z 0-9 . _ - separated "
                                        "by '/' (no leading or trailing '/')");
        else {
            free(cl.prefix);
            cl.prefix = strdup(str);
        }
    }
    cl.ttl_s = 10;
    if (conf_cfg_duration(c, "leaseTTL", &v) == RELAIS_CFG_OK) {
        if (v < 2000 || v > 3600000 || v % 1000)
            conf_cfg_error(c, "leaseTTL", "expected whole seconds from 2s to 3600s");
        else
            cl.ttl_s = v / 1000;
    }
    e = conf_cfg_get(c, "etcd");
    if (conf_cfg_type(e) != RELAIS_CFG_MAP) {
        conf_cfg_error(c, "etcd", "expected a map (endpoints, username, password, tls, timeout)");
        goto done;
    }
    for (i = 0; i < conf_cfg_len(e); i++) {
        const relais_cfg *ch = conf_cfg_at(e, i, &key);
        const char *const *k;
        for (k = eknown; *k && strcasecmp(*k, key); k++) {}
        if (!*k) conf_cfg_error(ch, NULL, "unknown key (expected endpoints, username, password, "
                                          "tls, timeout)");
    }
    eps = conf_cfg_get(e, "endpoints");
    if (conf_cfg_type(eps) != RELAIS_CFG_LIST || conf_cfg_len(eps) == 0 ||
        conf_cfg_len(eps) > CL_MAX_ENDPOINTS) {
        conf_cfg_error(e, "endpoints", "expected a list of 1 to %d endpoints (host:port or URL)",
                       CL_MAX_ENDPOINTS);
    } else {
        for (i = 0; i < conf_cfg_len(eps); i++)
            if (conf_cfg_string(conf_cfg_at(eps, i, NULL), NULL, &str) == RELAIS_CFG_OK)
                cl.endpoints[cl.nendpoints++] = strdup(str);
    }
    cl_opt_string(e, "username", &cl.username);
    cl_opt_string(e, "password", &cl.password);
    if ((cl.username != NULL) != (cl.password != NULL))
        conf_cfg_error(e, cl.username ? "password" : "username", "username and password go together");
    t = conf_cfg_get(e, "tls");
    if (t && conf_cfg_type(t) != RELAIS_CFG_MAP) {
        conf_cfg_error(e, "tls", "expected a map (ca, cert, key, insecureSkipVerify)");
    } else if (t) {
        cl_opt_string(t, "ca", &cl.tls_ca);
        cl_opt_string(t, "cert", &cl.tls_cert);
        cl_opt_string(t, "key", &cl.tls_key);
        conf_cfg_bool(t, "insecureSkipVerify", &cl.tls_insecure);
        if ((cl.tls_cert != NULL) != (cl.tls_key != NULL))
            conf_cfg_error(t, cl.tls_cert ? "key" : "cert", "cert and key go together");
    }
    cl.timeout_ms = 5000;
    if (conf_cfg_duration(e, "timeout", &v) == RELAIS_CFG_OK) {
        if (v < 100 || v > 600000)
            conf_cfg_error(e, "timeout", "expected a duration from 100ms to 10m");
        else
            cl.timeout_ms = v;
    }
    if (sc->api_insecure && sc->api_ep >= 0) cl.api = strdup(sc->eps[sc->api_ep].address);
done:
    nerr = conf_session_nerrors(s);
    for (i = 0; i < nerr; i++) log_error("config", "%s: %s", sc->path, conf_session_error(s, i));
    if (nerr) rc = -1;
    conf_session_free(s);
    if (rc == 0 && cl.role == CL_PROXY && sc->providers && json_object_size(sc->providers)) {
        const char *k;
        json_t *val;
        json_object_foreach(sc->providers, k, val)
            if (strcasecmp(k, "providersThrottleDuration"))
                log_warn("config", "%s: providers.%s: ignored on a cluster proxy node (proxies "
                         "read the configuration from etcd)", sc->path, k);
    }
    if (rc < 0) {
        const char *f = cl.file;
        cl_clear_config();
        cl.file = f;
    }
    return rc;
}

enum cl_role cl_role(void)
{
    return cl.role;
}

int cl_ready(void)
{
    return !cl.role || cl.loaded;
}

/* ---- node status ----------------------------------------------------- */

static void cl_status_run(evutil_socket_t fd, short what, void *arg);

/* Asks for a status write soon (debounced). */
static void cl_status_schedule(void)
{
    if (!cl.etc) return;
    cl.status_dirty = 1;
    if (!cl.status_call && cl.status_ev && !evtimer_pending(cl.status_ev, NULL))
        cl_arm(cl.status_ev, 100);
}

/* Status put ended. */
static void cl_status_done(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    (void)arg;
    (void)revision;
    (void)value;
    cl.status_call = NULL;
    if (err) {
        log_debug("cluster", "node status not written: %s", message);
        cl.status_dirty = 1;
        cl_arm(cl.status_ev, 1000);
    } else if (cl.status_dirty) {
        cl_arm(cl.status_ev, 100);
    }
}

/* Timer: writes P/nodes/<name> on the node lease. */
static void cl_status_run(evutil_socket_t fd, short what, void *arg)
{
    json_t *o;
    char *text, *key;
    json_t *gen;

    (void)fd;
    (void)what;
    (void)arg;
    if (cl.status_call || !cl.lease) return;
    cl.status_dirty = 0;
    gen = json_object_get(cl.kv, "generation");
    o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "name", cl.node, "role",
                  cl.role == CL_CONTROLLER ? "controller" : "proxy", "version", PACKAGE_VERSION,
                  "leader", cl.leader, "started", (json_int_t)cl.started, "revision",
                  (json_int_t)cl.conf_rev, "generation",
                  (json_int_t)(gen ? strtoll(json_string_value(gen), NULL, 10) : 0), "routers",
                  (json_int_t)cl.routers, "services", (json_int_t)cl.services, "updated",
                  (json_int_t)time(NULL));
    if (!o) return;
    json_object_set_new(o, "api", cl.api ? json_string(cl.api) : json_null());
    json_object_set_new(o, "lastError", cl.last_error ? json_string(cl.last_error) : json_null());
    json_object_set_new(o, "lastErrorTime",
                        cl.last_error ? json_integer(cl.last_error_time) : json_null());
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    {
        char rest[100];
        snprintf(rest, sizeof(rest), "nodes/%s", cl.node);
        key = cl_key(rest);
    }
    if (text && key)
        cl.status_call = etc_put(cl.etc, key, text, strlen(text), cl.lease, cl_status_done, NULL);
    free(text);
    free(key);
}

void cl_report(size_t routers, size_t services, const char *last_error)
{
    if (!cl.role) return;
    cl.routers = routers;
    cl.services = services;
    if (last_error) {
        free(cl.last_error);
        cl.last_error = strdup(last_error);
        cl.last_error_time = (int64_t)time(NULL);
    }
    cl_status_schedule();
}

/* ---- leadership ------------------------------------------------------ */

/* Tells the registered callbacks about a leadership change. */
static void cl_set_leader(int leader, int64_t rev)
{
    if (cl.leader == leader) return;
    cl.leader = leader;
    cl.leader_rev = leader ? rev : 0;
    if (leader)
        log_info("cluster", "node %s leads the controllers (%s/leader created at revision %lld)",
                 cl.node, cl.prefix, (long long)rev);
    else
        log_warn("cluster", "node %s no longer leads the controllers", cl.node);
    for (size_t i = 0; i < cl.ncbs; i++)
        if (cl.cbs[i].leader) cl.cbs[i].leader(leader, cl.cbs[i].arg);
    cl_status_schedule();
    if (leader) cl_publish_schedule(0);
}

/* P/leader read after a lost campaign: ours when it is on our lease. */
static void cl_campaign_read(void *arg, int err, const char *message,
                             const struct etc_range *res)
{
    (void)arg;
    (void)message;
    cl.camp_call = NULL;
    if (err || !res || res->n != 1) return;
    if (cl.lease && res->kvs[0].lease == cl.lease && res->kvs[0].value_len == strlen(cl.node) &&
        !memcmp(res->kvs[0].value, cl.node, res->kvs[0].value_len))
        cl_set_leader(1, res->kvs[0].create_revision);
}

/* Campaign txn ended: value 1 = this node created P/leader. */
static void cl_campaign_done(void *arg, int err, const char *message, int64_t revision,
                             int64_t value)
{
    (void)arg;
    cl.camp_call = NULL;
    if (err) {
        /* outcome unknown after a timeout: the next campaign (which finds
           our own key) settles it */
        log_debug("cluster", "campaign: %s", message);
        return;
    }
    if (value == 1) {
        cl_set_leader(1, revision);
        return;
    }
    /* P/leader exists: it may be ours, on our current lease (a campaign
       whose answer was lost, or leadership given up while etcd was away
       and the lease survived): then this node still leads */
    {
        char *key = cl_key("leader");
        if (key) cl.camp_call = etc_get(cl.etc, key, 0, 0, 0, cl_campaign_read, NULL);
        free(key);
    }
}

/* Campaigns for P/leader when this controller does not lead and holds a
 * lease.  A key left by this node itself under an older lease (a fast
 * restart) is not ours: it expires within the TTL. */
static void cl_campaign(void)
{
    struct etc_cmp cmp;
    struct etc_op op;
    char *key;

    if (cl.role != CL_CONTROLLER || cl.leader || cl.camp_call || !cl.lease || !cl.etc) return;
    key = cl_key("leader");
    if (!key) return;
    memset(&cmp, 0, sizeof(cmp));
    cmp.key = key;
    cmp.target = ETC_CMP_VERSION;
    cmp.op = ETC_EQ;
    cmp.number = 0;
    memset(&op, 0, sizeof(op));
    op.type = ETC_OP_PUT;
    op.key = key;
    op.value = cl.node;
    op.value_len = strlen(cl.node);
    op.lease = cl.lease;
    cl.camp_call = etc_txn(cl.etc, &cmp, 1, &op, 1, NULL, 0, cl_campaign_done, NULL);
    free(key);
}

/* Timer: campaign again (a lost watch event must not leave the cluster
 * without a leader), and check the leader's lease is still fresh. */
static void cl_campaign_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (cl.leader && cl_now_ms() - cl.lease_ok_ms > (uint64_t)cl.ttl_s * 1000u) {
        /* no keepalive answered for a whole TTL: the lease may be gone;
           stop publishing (the fencing compare would refuse anyway) */
        cl_set_leader(0, 0);
    }
    cl_campaign();
    cl_arm(cl.camp_ev, cl.ttl_s * 1000 / 2);
}

/* ---- lease ------------------------------------------------------------ */

static void cl_lease_run(evutil_socket_t fd, short what, void *arg);

/* Grant or keepalive ended. */
static void cl_lease_done(void *arg, int err, const char *message, int64_t revision,
                          int64_t value)
{
    int grant = arg != NULL;

    (void)revision;
    cl.lease_call = NULL;
    if (err) {
        log_warn("cluster", "etcd lease %s: %s (retrying)", grant ? "grant" : "keepalive", message);
        cl.lease_retry_ms = cl.lease_retry_ms ? cl.lease_retry_ms * 2 : CL_RETRY_MIN_MS;
        if (cl.lease_retry_ms > CL_RETRY_MAX_MS) cl.lease_retry_ms = CL_RETRY_MAX_MS;
        cl_arm(cl.lease_ev, cl.lease_retry_ms);
        return;
    }
    cl.lease_retry_ms = 0;
    if (grant) {
        cl.lease = value;
        cl.lease_ok_ms = cl_now_ms();
        log_info("cluster", "node %s (%s) holds etcd lease %llx (TTL %llds)", cl.node,
                 cl.role == CL_CONTROLLER ? "controller" : "proxy", (unsigned long long)value,
                 (long long)cl.ttl_s);
        cl_status_schedule();
        cl_campaign();
    } else if (value <= 0) {
        log_warn("cluster", "etcd lease %llx expired: granting a new one",
                 (unsigned long long)cl.lease);
        cl.lease = 0;
        cl_set_leader(0, 0);
        cl_arm(cl.lease_ev, 0);
        return;
    } else {
        cl.lease_ok_ms = cl_now_ms();
    }
    cl_arm(cl.lease_ev, cl.ttl_s * 1000 / 3);
}

/* Timer: grant a lease, or keep the current one alive. */
static void cl_lease_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (cl.lease_call || !cl.etc) return;
    if (!cl.lease)
        cl.lease_call = etc_lease_grant(cl.etc, cl.ttl_s, cl_lease_done, (void *)1);
    else
        cl.lease_call = etc_lease_keepalive(cl.etc, cl.lease, cl_lease_done, NULL);
    if (!cl.lease_call) cl_arm(cl.lease_ev, 1000);
}

/* ---- reading the prefix ---------------------------------------------- */

/* The certificates of P/certs/... as provider "cluster"'s tree (new
 * reference), or NULL when there is none. */
static json_t *cl_certs_tree(void)
{
    json_t *list = json_array(), *tree;
    const char *k;
    json_t *v;

    json_object_foreach(cl.kv, k, v) {
        json_t *doc, *c, *kk;
        json_error_t je;
        if (strncmp(k, "certs/", 6)) continue;
        doc = json_loads(json_string_value(v), 0, &je);
        c = json_object_get(doc, "certificate");
        kk = json_object_get(doc, "key");
        if (!json_is_string(c) || !json_is_string(kk)) {
            cl_error("etcd key %s/%s: expected {\"certificate\": PEM, \"key\": PEM}", cl.prefix, k);
        } else {
            json_array_append_new(list, json_pack("{s:O, s:O}", "certFile", c, "keyFile", kk));
        }
        json_decref(doc);
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    tree = json_pack("{s:{s:o}}", "tls", "certificates", list);
    return tree;
}

/* "a/b" into a new string, or NULL (memory). */
static char *cl_join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *k = malloc(n);

    if (k) snprintf(k, n, "%s/%s", a, b);
    return k;
}

/* The cached document at key (below P/) parsed for the source callback:
 * a new reference to a JSON object, or NULL after recording why as the
 * node's last error; kept says what the caller does then: 1 = the
 * document served as name so far stays, 0 = nothing is served as name. */
static json_t *cl_doc(const char *key, const char *name, int kept)
{
    json_t *v = json_object_get(cl.kv, key), *tree;
    json_error_t je;
    char after[300];

    if (kept)
        snprintf(after, sizeof(after), "the previous configuration of %s is kept", name);
    else
        snprintf(after, sizeof(after), "nothing is served as provider %s", name);
    tree = v ? json_loads(json_string_value(v), JSON_REJECT_DUPLICATES, &je) : NULL;
    if (tree && json_is_object(tree)) return tree;
    if (tree)
        cl_error("etcd key %s/%s: expected a JSON object (dynamic configuration); %s", cl.prefix,
                 key, after);
    else if (v)
        cl_error("etcd key %s/%s: %d:%d: %s; %s", cl.prefix, key, je.line, je.column, je.text,
                 after);
    json_decref(tree);
    return NULL;
}

/*
 * Settles what the source callback serves as provider name from the cache,
 * after P/config/<name> or P/apply/<name> changed (apply_changed: the
 * latter did).  The name collision rule: a controller's provider keeps its
 * name, so P/apply/<name> is refused while P/config/<name> exists, and on
 * a controller also while it runs a provider of that name; it is served
 * again as soon as neither holds.  The rule is applied whichever of the
 * two keys changed: an applied document is withdrawn when the controllers
 * start publishing the name, and comes back when they stop.  A refusal is
 * recorded as the node's last error when it begins and when the refused
 * document changes (not at every publish of the provider that wins).
 * Proxies serve P/config/<name> as provider name; controllers serve their
 * own providers, never P/config/.  A document that does not parse keeps
 * the one served so far when it comes from the same key, else nothing is
 * served as name (a document the controllers deleted, or a refused one,
 * must not stay).
 */
static void cl_sync(const char *name, int apply_changed)
{
    char *ck = cl_join("config", name), *ak = cl_join("apply", name);
    json_t *cfg, *app, *tree;
    const char *want = NULL, *cur;
    int local;

    if (!ck || !ak) goto out;
    cfg = json_object_get(cl.kv, ck);
    app = json_object_get(cl.kv, ak);
    local = cl.role == CL_CONTROLLER && json_object_get(cl.declared, name);
    if (cfg && cl.role == CL_PROXY) want = ck;
    else if (app && !cfg && !local) want = ak;
    if (app && (cfg || local)) {
        if (!json_object_get(cl.refused, name) || apply_changed)
            cl_error("etcd key %s/%s refused: provider name %s is %s; %s (apply the document "
                     "under another name)", cl.prefix, ak, name,
                     cfg ? "published by the controllers" : "one of this controller's providers",
                     cfg ? "the controllers' configuration is served under it"
                         : "this controller's provider is served under it");
        json_object_set_new(cl.refused, name, json_true());
    } else if (json_object_get(cl.refused, name)) {
        json_object_del(cl.refused, name);
        if (app)
            log_info("cluster", "etcd key %s/%s: %s/%s is gone, provider name %s is free: the "
                     "document is served", cl.prefix, ak, cl.prefix, ck, name);
    }
    cur = json_string_value(json_object_get(cl.served, name));
    tree = want ? cl_doc(want, name, cur && !strcmp(cur, want)) : NULL;
    if (tree) {
        json_object_set_new(cl.served, name, json_string(want));
        cl.source(name, tree);
    } else if (cur && (!want || strcmp(cur, want))) {
        json_object_del(cl.served, name); /* cur goes with it */
        cl.source(name, NULL);
    }
out:
    free(ck);
    free(ak);
}

/* Applies one changed key (below P/) after the cache was updated; the
 * provider names whose P/config/ or P/apply/ key changed are collected in
 * names (name -> true when its P/apply/ key changed) for cl_sync. */
static void cl_changed(const char *key, int *certs, json_t *names)
{
    if (!strncmp(key, "config/", 7) || !strncmp(key, "apply/", 6)) {
        const char *name = strchr(key, '/') + 1;
        int apply = key[0] == 'a' || json_is_true(json_object_get(names, name));
        json_object_set_new(names, name, json_boolean(apply));
    } else if (!strncmp(key, "certs/", 6)) {
        *certs = 1;
    } else if (!strcmp(key, "static")) {
        json_t *v = json_object_get(cl.kv, key), *doc = NULL;
        json_error_t je;
        if (v) {
            doc = json_loads(json_string_value(v), 0, &je);
            if (!json_is_object(doc)) {
                cl_error("etcd key %s/static: expected a JSON object (log, accessLog, "
                         "entryPoints); the running static options are kept", cl.prefix);
                json_decref(doc);
                return;
            }
        }
        for (size_t i = 0; i < cl.ncbs; i++)
            if (cl.cbs[i].stat) cl.cbs[i].stat(doc, cl.cbs[i].arg);
        json_decref(doc);
    } else if (!strcmp(key, "leader")) {
        json_t *v = json_object_get(cl.kv, key);
        if (!v && cl.leader) cl_set_leader(0, 0);
        if (!v) cl_campaign();
    }
}

/* Applies the keys of changed (below P/, cached already) in one go: each
 * key by cl_changed, then each provider name touched by cl_sync once.
 * 1 when a certificate of P/certs/ changed (the caller hands the
 * certificates over). */
static int cl_apply_changes(json_t *changed)
{
    json_t *names = json_object(), *v;
    const char *k;
    int certs = 0;

    json_object_foreach(changed, k, v) cl_changed(k, &certs, names);
    json_object_foreach(names, k, v) cl_sync(k, json_is_true(v));
    json_decref(names);
    return certs;
}

/* Stores key = value (value NULL: deleted) in the cache.  1 when it
 * changed. */
static int cl_cache_set(const char *key, const char *value, size_t len)
{
    json_t *old = json_object_get(cl.kv, key);

    if (!value) {
        if (!old) return 0;
        json_object_del(cl.kv, key);
        return 1;
    }
    if (old && strlen(json_string_value(old)) == len && !memcmp(json_string_value(old), value, len))
        return 0;
    if (json_object_size(cl.kv) >= CL_MAX_KEYS && !old) {
        cl_error("etcd prefix %s/: more than %d keys; key %s ignored", cl.prefix, CL_MAX_KEYS, key);
        return 0;
    }
    json_object_set_new(cl.kv, key, json_stringn_nocheck(value, len));
    return 1;
}

/* The key below P/ of an etcd key, or NULL when it is not below P/. */
static const char *cl_rel(const char *key, size_t len)
{
    size_t pl = strlen(cl.prefix);

    if (len <= pl + 1 || memcmp(key, cl.prefix, pl) || key[pl] != '/') return NULL;
    return key + pl + 1;
}

/*
 * The per-key step of a range (cl_load_done) and of a watch batch
 * (cl_on_events): kv is one etcd pair, deleted says that a watch reported
 * its deletion.  Keys outside P/ and the node statuses (P/nodes/..., never
 * cached: the nodes would answer each other) are skipped; a value over
 * CL_MAX_DOC is refused (the node's last error names the key) and leaves
 * the cache as it was.  Otherwise the cache takes the value (or forgets
 * the key) and the key below P/ is set in changed when the cached value
 * changed, or always with force (the first range delivers everything).
 * Returns the key below P/ (pointing into kv->key) when the cache took
 * it, NULL when it was skipped or refused.
 */
static const char *cl_take(const struct etc_kv *kv, int deleted, int force, json_t *changed)
{
    const char *rel = cl_rel(kv->key, kv->key_len);

    if (!rel || !strncmp(rel, "nodes/", 6)) return NULL;
    if (!deleted && kv->value_len > CL_MAX_DOC) {
        cl_error("etcd key %s: value of %zu bytes over the %u cap, ignored", kv->key,
                 kv->value_len, CL_MAX_DOC);
        return NULL;
    }
    if (cl_cache_set(rel, deleted ? NULL : kv->value, kv->value_len) || force)
        json_object_set_new(changed, rel, json_true());
    return rel;
}

/* Watch batch: update the cache, then deliver each changed key. */
static void cl_on_events(void *arg, const struct etc_event *ev, size_t n, int64_t revision)
{
    json_t *changed = json_object();

    (void)arg;
    for (size_t i = 0; i < n; i++) cl_take(&ev[i].kv, ev[i].type == ETC_EV_DELETE, 0, changed);
    cl.rev = revision;
    if (json_object_size(changed) == 0) {
        /* only node statuses moved (or values rewritten unchanged): no
           status write here, or the nodes would answer each other */
        json_decref(changed);
        return;
    }
    cl.conf_rev = revision;
    if (cl_apply_changes(changed)) cl.source("cluster", cl_certs_tree());
    json_decref(changed);
    cl_status_schedule();
    if (cl.leader) cl_publish_schedule(0);
}

/* Watch ended for good (compaction, auth): read everything again. */
static void cl_on_watch_end(void *arg, int err, const char *message)
{
    (void)arg;
    cl.watch = NULL;
    log_warn("cluster", "watch on %s/ ended (%d: %s): reading the prefix again", cl.prefix, err,
             message);
    cl_arm(cl.load_ev, CL_RETRY_MIN_MS);
}

/* The initial (or a repeated) range of P/. */
static void cl_load_done(void *arg, int err, const char *message, const struct etc_range *res)
{
    json_t *seen = json_object(), *changed = json_object();
    const char *k;
    json_t *v;
    void *tmp;
    int certs = 0;
    char *pfx;

    (void)arg;
    cl.load_call = NULL;
    if (err || !res) {
        if (!cl.loaded)
            log_warn("cluster", "cannot read %s/ from etcd: %s (retrying; %s)", cl.prefix, message,
                     cl.role == CL_PROXY ? "nothing is served until the first read"
                                         : "the local providers are served");
        else
            log_warn("cluster", "cannot read %s/ from etcd: %s (retrying; the last configuration "
                     "keeps serving)", cl.prefix, message);
        cl.load_retry_ms = cl.load_retry_ms ? cl.load_retry_ms * 2 : CL_RETRY_MIN_MS;
        if (cl.load_retry_ms > CL_RETRY_MAX_MS) cl.load_retry_ms = CL_RETRY_MAX_MS;
        cl_arm(cl.load_ev, cl.load_retry_ms);
        json_decref(seen);
        json_decref(changed);
        return;
    }
    cl.load_retry_ms = 0;
    for (size_t i = 0; i < res->n; i++) {
        const char *rel = cl_take(&res->kvs[i], 0, !cl.loaded, changed);
        if (rel) json_object_set_new(seen, rel, json_true());
    }
    json_object_foreach_safe(cl.kv, tmp, k, v) {
        if (json_object_get(seen, k)) continue;
        json_object_set_new(changed, k, json_true());
    }
    json_object_foreach(changed, k, v)
        if (!json_object_get(seen, k)) json_object_del(cl.kv, k);
    cl.rev = res->revision;
    if (json_object_size(changed) || !cl.loaded) cl.conf_rev = res->revision;
    if (!cl.loaded && !json_object_get(changed, "static")) json_object_set_new(changed, "static", json_true());
    certs = cl_apply_changes(changed);
    if (certs || !cl.loaded) {
        json_t *t = cl_certs_tree();
        if (t || cl.loaded) cl.source("cluster", t);
    }
    if (!cl.loaded)
        log_info("cluster", "read %zu keys of %s/ at revision %lld", json_object_size(cl.kv),
                 cl.prefix, (long long)cl.rev);
    cl.loaded = 1;
    json_decref(seen);
    json_decref(changed);
    pfx = cl_key("");
    etc_watch_cancel(cl.watch);
    cl.watch = pfx ? etc_watch(cl.etc, pfx, 1, cl.rev + 1, cl_on_events, cl_on_watch_end, NULL)
                   : NULL;
    free(pfx);
    cl_status_schedule();
    if (cl.leader) cl_publish_schedule(0);
    cl_campaign();
}

/* Reads the whole prefix (start, compaction, failure). */
static void cl_load(void)
{
    char *pfx;

    if (cl.load_call || !cl.etc) return;
    pfx = cl_key("");
    if (pfx) cl.load_call = etc_get(cl.etc, pfx, 1, 0, 0, cl_load_done, NULL);
    free(pfx);
    if (!cl.load_call) cl_arm(cl.load_ev, 1000);
}

/* Timer: cl_load. */
static void cl_load_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    cl_load();
}

/* ---- publishing (leader) --------------------------------------------- */

/* dv_inline_files' report: an unreadable file stays a path (the nodes
 * report it when they build); logged here. */
static void cl_inline_report(void *arg, int error, const char *path, const char *msg)
{
    (void)error;
    log_warn("cluster", "provider %s: %s: %s (published as a path)", (const char *)arg, path,
             msg);
}

/* A deep copy of a provider's tree with local files inlined (certificates,
 * CA files, users files): what every node can use.  New reference or
 * NULL. */
static json_t *cl_portable(const char *provider, const json_t *tree)
{
    json_t *t = json_deep_copy(tree);

    if (t) dv_inline_files(t, cl_inline_report, (void *)provider);
    return t;
}

void cl_provider_declare(const char *provider)
{
    if (!cl.role) return;
    if (!cl.declared) cl.declared = json_object();
    json_object_set_new(cl.declared, provider, json_true());
}

void cl_provider_changed(const char *provider, const json_t *tree)
{
    if (cl.role != CL_CONTROLLER) return;
    if (!cl.local) cl.local = json_object();
    if (tree) {
        json_t *p = cl_portable(provider, tree);
        if (p) json_object_set_new(cl.local, provider, p);
    } else {
        json_object_del(cl.local, provider);
    }
    cl.pub_dirty = 1;
    if (cl.leader) cl_publish_schedule(0);
}

/* Publish txn ended. */
static void cl_publish_done(void *arg, int err, const char *message, int64_t revision,
                            int64_t value)
{
    json_t *written = arg, *changed;
    const char *k;
    json_t *v;

    cl.pub_call = NULL;
    if (err) {
        log_warn("cluster", "publishing to etcd: %s (retrying)", message);
        json_decref(written);
        cl.pub_dirty = 1;
        cl_publish_schedule(1000);
        return;
    }
    if (value != 1) {
        log_warn("cluster", "publishing refused: %s/leader is no longer this node's",
                 cl.prefix);
        json_decref(written);
        cl_set_leader(0, 0);
        cl_campaign();
        return;
    }
    /* the watch brings the same values; the cache takes them now so that
       the next diff does not write them again; the watch then finds them
       unchanged, so what depends on them (an applied document waiting for
       its name, cl_sync) is settled here */
    changed = json_object();
    json_object_foreach(written, k, v)
        if (cl_cache_set(k, json_is_string(v) ? json_string_value(v) : NULL,
                         json_is_string(v) ? strlen(json_string_value(v)) : 0))
            json_object_set_new(changed, k, json_true());
    json_decref(written);
    cl_apply_changes(changed);
    json_decref(changed);
    log_info("cluster", "configuration published at revision %lld", (long long)revision);
    if (cl.pub_dirty) cl_publish_schedule(0);
}

/* Timer: the leader writes what differs between its providers and
 * P/config/ in one fenced txn (+ P/generation). */
static void cl_publish_run(evutil_socket_t fd, short what, void *arg)
{
    struct etc_op ops[CL_MAX_TXN_OPS + 1];
    char *keys[CL_MAX_TXN_OPS + 1];
    char *vals[CL_MAX_TXN_OPS + 1];
    size_t nops = 0, i;
    json_t *written = NULL;
    struct etc_cmp cmp;
    char *lkey = NULL, gen[32];
    const char *k;
    json_t *v;
    json_t *g;

    (void)fd;
    (void)what;
    (void)arg;
    if (!cl.leader || cl.pub_call || !cl.loaded) return;
    cl.pub_dirty = 0;
    written = json_object();
    memset(ops, 0, sizeof(ops));
    json_object_foreach(cl.local, k, v) {
        char rel[300];
        char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        json_t *cur;
        snprintf(rel, sizeof(rel), "config/%s", k);
        cur = json_object_get(cl.kv, rel);
        if (!text || (cur && !strcmp(json_string_value(cur), text))) {
            free(text);
            continue;
        }
        if (strlen(text) > CL_MAX_DOC) {
            cl_error("provider %s: configuration of %zu bytes over etcd's %u-byte value cap, not "
                     "published", k, strlen(text), CL_MAX_DOC);
            free(text);
            continue;
        }
        if (nops == CL_MAX_TXN_OPS) {
            free(text);
            cl.pub_dirty = 1; /* the rest in the next txn */
            break;
        }
        keys[nops] = cl_key(rel);
        vals[nops] = text;
        ops[nops].type = ETC_OP_PUT;
        ops[nops].key = keys[nops];
        ops[nops].value = text;
        ops[nops].value_len = strlen(text);
        json_object_set_new(written, rel, json_string(text));
        nops++;
    }
    json_object_foreach(cl.kv, k, v) {
        if (strncmp(k, "config/", 7) || json_object_get(cl.local, k + 7) ||
            json_object_get(cl.declared, k + 7))
            continue;
        if (nops == CL_MAX_TXN_OPS) {
            cl.pub_dirty = 1;
            break;
        }
        keys[nops] = cl_key(k);
        vals[nops] = NULL;
        ops[nops].type = ETC_OP_DELETE;
        ops[nops].key = keys[nops];
        json_object_set_new(written, k, json_null());
        nops++;
    }
    if (nops == 0) {
        json_decref(written);
        return;
    }
    g = json_object_get(cl.kv, "generation");
    snprintf(gen, sizeof(gen), "%lld", (g ? strtoll(json_string_value(g), NULL, 10) : 0) + 1);
    keys[nops] = cl_key("generation");
    vals[nops] = NULL;
    ops[nops].type = ETC_OP_PUT;
    ops[nops].key = keys[nops];
    ops[nops].value = gen;
    ops[nops].value_len = strlen(gen);
    json_object_set_new(written, "generation", json_string(gen));
    nops++;
    lkey = cl_key("leader");
    memset(&cmp, 0, sizeof(cmp));
    cmp.key = lkey;
    cmp.target = ETC_CMP_CREATE;
    cmp.op = ETC_EQ;
    cmp.number = cl.leader_rev;
    for (i = 0; i < nops; i++)
        if (!keys[i]) break;
    if (i == nops && lkey)
        cl.pub_call = etc_txn(cl.etc, &cmp, 1, ops, nops, NULL, 0, cl_publish_done, written);
    if (!cl.pub_call) {
        json_decref(written);
        cl.pub_dirty = 1;
        cl_publish_schedule(1000);
    }
    for (i = 0; i < nops; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(lkey);
}

/* Schedules a publish in delay_ms (a burst of provider changes becomes
 * one txn: the control thread's throttle already spaces them). */
static void cl_publish_schedule(int64_t delay_ms)
{
    if (!cl.pub_ev || cl.pub_call) return;
    if (evtimer_pending(cl.pub_ev, NULL) && delay_ms > 0) return;
    cl_arm(cl.pub_ev, delay_ms);
}

/* ---- start / stop ----------------------------------------------------- */

int cl_start(struct event_base *base, cl_source_cb source)
{
    struct etc_opts o;
    char err[256];

    if (!cl.role) return 0;
    memset(&o, 0, sizeof(o));
    o.endpoints = (const char *const *)cl.endpoints;
    o.nendpoints = cl.nendpoints;
    o.username = cl.username;
    o.password = cl.password;
    o.tls_ca = cl.tls_ca;
    o.tls_cert = cl.tls_cert;
    o.tls_key = cl.tls_key;
    o.tls_insecure = cl.tls_insecure;
    o.timeout_ms = cl.timeout_ms;
    cl.base = base;
    cl.source = source;
    cl.started = (int64_t)time(NULL);
    cl.kv = json_object();
    cl.served = json_object();
    cl.refused = json_object();
    cl.etc = etc_new(base, &o, err, sizeof(err));
    if (!cl.etc) {
        log_error("config", "%s: cluster.etcd: %s", cl.file, err);
        return -1;
    }
    cl.lease_ev = evtimer_new(base, cl_lease_run, NULL);
    cl.camp_ev = evtimer_new(base, cl_campaign_run, NULL);
    cl.load_ev = evtimer_new(base, cl_load_run, NULL);
    cl.pub_ev = evtimer_new(base, cl_publish_run, NULL);
    cl.status_ev = evtimer_new(base, cl_status_run, NULL);
    if (!cl.kv || !cl.served || !cl.refused || !cl.lease_ev || !cl.camp_ev || !cl.load_ev || !cl.pub_ev || !cl.status_ev) {
        log_error("cluster", "out of memory");
        return -1;
    }
    log_info("cluster", "node %s starts as %s on etcd %s (prefix %s/)", cl.node,
             cl.role == CL_CONTROLLER ? "controller" : "proxy", etc_endpoint(cl.etc), cl.prefix);
    cl_arm(cl.lease_ev, 0);
    if (cl.role == CL_CONTROLLER) cl_arm(cl.camp_ev, cl.ttl_s * 1000 / 2);
    cl_load();
    return 0;
}

/* Revoke ended (or timed out): leave the loop's stop to the caller. */
static void cl_revoke_done(void *arg, int err, const char *message, int64_t revision,
                           int64_t value)
{
    int *done = arg;

    (void)err;
    (void)message;
    (void)revision;
    (void)value;
    *done = 1;
}

/* Timer: the revoke took too long. */
static void cl_revoke_late(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

void cl_stop(void)
{
    if (!cl.role) return;
    if (cl.etc && cl.lease && cl.base) {
        /* revoke the lease so that another controller leads at once and
           this node's status disappears; bounded by the client's timeout */
        int done = 0, late = 0;
        struct etc_call *c;
        struct event *bound = evtimer_new(cl.base, cl_revoke_late, &late);
        struct event *evs[] = {cl.lease_ev, cl.camp_ev, cl.load_ev, cl.pub_ev, cl.status_ev};
        for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
            if (evs[i]) evtimer_del(evs[i]);
        etc_cancel(cl.lease_call);
        cl.lease_call = NULL;
        c = etc_lease_revoke(cl.etc, cl.lease, cl_revoke_done, &done);
        cl_arm(bound, CL_STOP_MAX_MS);
        while (c && bound && !done && !late)
            if (event_base_loop(cl.base, EVLOOP_ONCE) < 0) break;
        if (bound) event_free(bound);
        if (done)
            log_info("cluster", "etcd lease of node %s revoked", cl.node);
        else
            log_warn("cluster", "etcd lease of node %s not revoked within %d ms: it expires "
                     "within leaseTTL", cl.node, CL_STOP_MAX_MS);
    }
    etc_free(cl.etc);
    cl.etc = NULL;
    if (cl.lease_ev) event_free(cl.lease_ev);
    if (cl.camp_ev) event_free(cl.camp_ev);
    if (cl.load_ev) event_free(cl.load_ev);
    if (cl.pub_ev) event_free(cl.pub_ev);
    if (cl.status_ev) event_free(cl.status_ev);
    json_decref(cl.kv);
    json_decref(cl.served);
    json_decref(cl.refused);
    json_decref(cl.local);
    json_decref(cl.declared);
    free(cl.last_error);
    {
        const char *f = cl.file;
        cl_clear_config();
        cl.file = f;
    }
}

/* ---- accessors -------------------------------------------------------- */

struct etc_client *cl_etcd(void)
{
    return cl.etc;
}

const char *cl_prefix(void)
{
    return cl.prefix ? cl.prefix : "relais";
}

const char *cl_node_name(void)
{
    return cl.node ? cl.node : "";
}

int64_t cl_lease(void)
{
    return cl.lease;
}

int cl_is_leader(void)
{
    return cl.leader;
}

void cl_on_leader(void (*cb)(int leader, void *arg), void *arg)
{
    if (cl.ncbs < CL_MAX_CBS) cl.cbs[cl.ncbs++] = (struct cl_cb){cb, NULL, arg};
}

void cl_on_static(void (*cb)(const json_t *doc, void *arg), void *arg)
{
    if (cl.ncbs < CL_MAX_CBS) cl.cbs[cl.ncbs++] = (struct cl_cb){NULL, cb, arg};
}
