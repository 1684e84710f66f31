/*
 * fuzz_labels — libFuzzer target for the Docker label decoder: container
 * labels → label pairs (plugins/providers/docker/docker.c: dk_create's
 * options, dk_container, dk_label, the default service / router / server,
 * target.c's address and port, constraints.c) → the dynamic
 * configuration tree (kvc_decode in label mode, src/kvconf.c), exactly as
 * the provider publishes them through provider_publish_kv('.', "traefik")
 * and the host decodes them (src/control.c ctl_publish_kv).
 *
 * docker.c is compiled into this target (#include) so that its static
 * functions run unchanged against a fake host table: configuration reads
 * go to src/conf.c's accessors, log lines are formatted and dropped,
 * timers and HTTP calls are inert, provider_publish_kv runs the checks.
 *
 * Input: text, one directive per line (any other line is a label
 * "key=value" of the current container; without a @container line the
 * labels belong to a container named "web"):
 *   @option KEY VALUE     provider option (exposedByDefault, defaultRule,
 *                         network, useBindPortIP, labelPrefix,
 *                         constraints, ...), given as a string
 *   @container NAME       a new container (at most 8): running, exposing
 *                         80/tcp, on network "bridge" with 172.17.0.N
 *   @port SPEC            another exposed port ("8080/tcp")
 *   @noports              no exposed port
 *   @net NAME IP          another network (IPv6 when IP has a ':')
 *   @mode MODE            HostConfig.NetworkMode ("host", "container:web")
 *   @bind SPEC IP PORT    a port binding (NetworkSettings.Ports)
 *   @state STATE          running (default), paused, restarting, stopped
 *
 * Properties (abort on violation), in the fake provider_publish_kv:
 *  - the provider publishes with separator '.' and root "traefik", the
 *    pairs sorted by key, every key under "traefik." and every value set;
 *  - kvc_decode of the pairs as the host does it: see kvcheck.h (order
 *    independence, round trip, leaves from values, errors);
 *  - a second build from the same containers publishes nothing (the
 *    provider publishes only on change);
 *  - bad options make dk_create fail with an error recorded.
 *
 * Build and run: tests/fuzz/run.sh (see tests/fuzz/README.md).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_labels: property violated: %s (%s:%d)\n",   \
                    #cond, __FILE__, __LINE__);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

#include "conf.h"
#include "kvcheck.h"

/* The provider itself, static functions included. */
#include "docker.c"

#define FZ_MAX_INPUT 65536   /* longest input tried */
#define FZ_MAX_CONTAINERS 8  /* @container lines honoured */

/** What the fake host observed. */
struct fz_state {
    size_t published; /* provider_publish_kv calls */
    size_t decoded;   /* of which decoded without error */
};

static struct fz_state fz_st; /* reset per input */

/* relais_host.log: formats (so format bugs show under ASan) and drops. */
static void fz_log(int level, const char *who, const char *fmt, ...)
    RELAIS_PRINTF(3, 4);
static void fz_log(int level, const char *who, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    (void)level;
    (void)who;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
}

/* relais_host.provider_publish_kv: the checks of the file comment. */
static int fz_publish(relais_provider *prov, const relais_kv *pairs, size_t n,
                      int sep, const char *root)
{
    struct kvc_options opt = {(char)sep, root, sep == '.'};
    struct kvc_pair *kp;
    size_t i;

    (void)prov;
    fz_st.published++;
    FZ_CHECK(sep == '.' && root && !strcmp(root, "traefik"));
    kp = calloc(n ? n : 1, sizeof *kp);
    if (!kp) abort();
    for (i = 0; i < n; i++) {
        FZ_CHECK(pairs[i].key && pairs[i].value);
        FZ_CHECK(!strncmp(pairs[i].key, "traefik.", 8));
        if (i) FZ_CHECK(strcmp(pairs[i - 1].key, pairs[i].key) <= 0);
        kp[i].key = pairs[i].key;
        kp[i].value = pairs[i].value;
    }
    fz_st.decoded += (size_t)fzkv_check(kp, n, &opt);
    free(kp);
    return 0;
}

/* relais_host.http_request: never reached (the provider is not started). */
static relais_http_call *fz_http_request(const relais_http_req *req,
                                         const relais_http_callbacks *cb,
                                         void *arg)
{
    (void)req;
    (void)cb;
    (void)arg;
    return NULL;
}

/* relais_host.http_cancel / timer_free / timer_stop: inert. */
static void fz_http_cancel(relais_http_call *call) { (void)call; }
static void fz_timer_free(relais_timer *t) { (void)t; }
static void fz_timer_stop(relais_timer *t) { (void)t; }

/** The fake host table. */
static relais_host fz_host;

/** Fills fz_host once. */
static void fz_host_init(void)
{
    fz_host.size = sizeof fz_host;
    fz_host.abi_major = RELAIS_ABI_MAJOR;
    fz_host.abi_minor = RELAIS_ABI_MINOR;
    fz_host.log = fz_log;
    fz_host.cfg_type = conf_cfg_type;
    fz_host.cfg_get = conf_cfg_get;
    fz_host.cfg_len = conf_cfg_len;
    fz_host.cfg_at = conf_cfg_at;
    fz_host.cfg_string = conf_cfg_string;
    fz_host.cfg_int = conf_cfg_int;
    fz_host.cfg_bool = conf_cfg_bool;
    fz_host.cfg_real = conf_cfg_real;
    fz_host.cfg_duration = conf_cfg_duration;
    fz_host.cfg_error = conf_cfg_error;
    fz_host.http_request = fz_http_request;
    fz_host.http_cancel = fz_http_cancel;
    fz_host.timer_free = fz_timer_free;
    fz_host.timer_stop = fz_timer_stop;
    fz_host.provider_publish_kv = fz_publish;
}

/** s when it is valid UTF-8 (jansson takes it), else NULL. */
static const char *fz_utf8(const char *s)
{
    json_t *v = json_string(s);

    json_decref(v);
    return v ? s : NULL;
}

/** A new inspect document for container number i called name. */
static json_t *fz_container(size_t i, const char *name)
{
    char id[65], ip[32], nm[512];

    snprintf(id, sizeof id, "%064zx", (size_t)0xc0ffee00 + i);
    snprintf(ip, sizeof ip, "172.17.0.%zu", i + 2);
    snprintf(nm, sizeof nm, "/%s", name);
    return json_pack("{s:s, s:s?, s:{s:b, s:b, s:b}, s:{s:{}, s:{s:{}}},"
                     " s:{s:{s:{s:s}}, s:{}}, s:{s:s}}",
                     "Id", id, "Name", fz_utf8(nm),
                     "State", "Running", 1, "Paused", 0, "Restarting", 0,
                     "Config", "Labels", "ExposedPorts", "80/tcp",
                     "NetworkSettings", "Networks", "bridge", "IPAddress", ip,
                     "Ports", "HostConfig", "NetworkMode", "bridge");
}

/** Sets obj.key to a new string value when both are valid UTF-8 (and obj
 *  an object); otherwise nothing. */
static void fz_set(json_t *obj, const char *key, const char *value)
{
    json_t *v = json_string(value);

    if (v) json_object_set_new(obj, key, v); /* takes v even on failure */
}

/** Member key of member key0 of object o (NULL when absent). */
static json_t *fz_get2(json_t *o, const char *key0, const char *key)
{
    return json_object_get(json_object_get(o, key0), key);
}

/** Splits s at its first space: returns the rest (NULL when no space). */
static char *fz_word(char *s)
{
    char *sp = s ? strchr(s, ' ') : NULL;

    if (sp) *sp++ = 0;
    return sp;
}

/** Applies one directive line (after '@'): an option, or a change to the
 *  current container (docs[*nd - 1]; "web" is created when there is
 *  none), or a new container. */
static void fz_directive(char *line, json_t *opts, json_t **docs, size_t *nd)
{
    char *rest = fz_word(line), *a1 = rest ? rest : line + strlen(line), *a2, *a3;
    json_t *c;

    if (!strcmp(line, "option")) {
        a2 = fz_word(a1); /* the value is the rest of the line */
        fz_set(opts, a1, a2 ? a2 : "");
        return;
    }
    if (!strcmp(line, "container")) {
        if (*nd < FZ_MAX_CONTAINERS && (docs[*nd] = fz_container(*nd, a1))) (*nd)++;
        return;
    }
    if (!*nd && (docs[0] = fz_container(0, "web"))) *nd = 1;
    if (!*nd) return;
    c = docs[*nd - 1];
    a2 = fz_word(a1);
    a3 = fz_word(a2);
    fz_word(a3);
    if (!strcmp(line, "port")) {
        json_object_set_new(fz_get2(c, "Config", "ExposedPorts"), a1, json_object());
    } else if (!strcmp(line, "noports")) {
        json_object_clear(fz_get2(c, "Config", "ExposedPorts"));
    } else if (!strcmp(line, "net") && a2) {
        json_t *n = json_object();
        fz_set(n, strchr(a2, ':') ? "GlobalIPv6Address" : "IPAddress", a2);
        json_object_set_new(fz_get2(c, "NetworkSettings", "Networks"), a1, n);
    } else if (!strcmp(line, "mode")) {
        fz_set(json_object_get(c, "HostConfig"), "NetworkMode", a1);
    } else if (!strcmp(line, "bind") && a2 && a3) {
        json_object_set_new(fz_get2(c, "NetworkSettings", "Ports"), a1,
                            json_pack("[{s:s?, s:s?}]", "HostIp", fz_utf8(a2), "HostPort",
                                      fz_utf8(a3)));
    } else if (!strcmp(line, "state")) {
        json_t *st = json_object_get(c, "State");
        json_object_set_new(st, "Running", json_boolean(strcmp(a1, "stopped")));
        json_object_set_new(st, "Paused", json_boolean(!strcmp(a1, "paused")));
        json_object_set_new(st, "Restarting", json_boolean(!strcmp(a1, "restarting")));
    }
}

/** Runs one build of d over copies of docs[0..nd). */
static void fz_build(struct dk *d, json_t **docs, size_t nd)
{
    size_t i;

    d->docs = calloc(nd ? nd : 1, sizeof *d->docs);
    if (!d->docs) abort();
    for (i = 0; i < nd; i++) d->docs[i] = json_incref(docs[i]);
    d->ndocs = nd;
    dk_build(d); /* publishes, then drops the documents (dk_scan_clear) */
    FZ_CHECK(d->docs == NULL && d->ndocs == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs[FZ_MAX_CONTAINERS], *opts;
    struct conf_session *s;
    size_t nd = 0, i, first;
    void *inst = NULL;
    char *buf, *p;

    if (size > FZ_MAX_INPUT) return 0;
    if (!fz_host.size) fz_host_init();
    memset(&fz_st, 0, sizeof fz_st);
    buf = malloc(size + 1);
    opts = json_object();
    if (!buf || !opts) abort();
    memcpy(buf, data, size);
    buf[size] = 0;
    for (p = buf; *p;) {
        char *nl = strchr(p, '\n'), *eq;

        if (nl) *nl = 0;
        if (*p == '@') {
            fz_directive(p + 1, opts, docs, &nd);
        } else if ((eq = strchr(p, '=')) != NULL) {
            *eq = 0;
            if (!nd && (docs[0] = fz_container(0, "web"))) nd = 1;
            if (nd)
                fz_set(fz_get2(docs[nd - 1], "Config", "Labels"), p, eq + 1);
        }
        if (!nl) break;
        p = nl + 1;
    }
    s = conf_session_new("providers.docker");
    if (!s) abort();
    if (dk_create(&fz_host, conf_session_root(s, opts), NULL, &inst) < 0) {
        FZ_CHECK(conf_session_nerrors(s) > 0); /* a refusal says why */
        inst = NULL;
    }
    if (inst) {
        struct dk *d = inst;

        fz_build(d, docs, nd);
        FZ_CHECK(fz_st.published == 1); /* the first build publishes */
        first = fz_st.published;
        fz_build(d, docs, nd);
        FZ_CHECK(fz_st.published == first); /* nothing changed */
        dk_destroy(d);
    }
    conf_session_free(s);
    for (i = 0; i < nd; i++) json_decref(docs[i]);
    json_decref(opts);
    free(buf);
    return 0;
}
