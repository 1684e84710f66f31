/*
 * relaisctl — command line of the cluster's tool: options, the connection
 * to etcd, blocking calls over the core's asynchronous etcd and HTTP
 * clients, and output helpers.  See relaisctl.h and man/relaisctl.8.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dynvalidate.h"
#include "etcd.h"
#include "host_api.h"
#include "httpc.h"
#include "log.h"
#include "message.h"
#include "plugin_loader.h"
#include "relais.h"
#include "relaisctl.h"
#include "static_config.h"
#include "tls.h"
#include "tlsstore.h"

/* ------------------------------------------------------------------ */
/* options                                                             */

/** Codes of the global options (above any command's own). */
enum {
    RC_OPT_ENDPOINTS = 256, /* --endpoints */
    RC_OPT_PREFIX,          /* --prefix */
    RC_OPT_USERNAME,        /* --username */
    RC_OPT_PASSWORD,        /* --password */
    RC_OPT_CACERT,          /* --cacert */
    RC_OPT_CERT,            /* --cert */
    RC_OPT_KEY,             /* --key */
    RC_OPT_INSECURE,        /* --insecure-skip-tls-verify */
    RC_OPT_TIMEOUT,         /* --timeout */
    RC_OPT_CONFIG,          /* --config */
    RC_OPT_PLUGIN_DIR,      /* --plugin-dir */
    RC_OPT_OUTPUT,          /* -o, --output */
    RC_OPT_HELP,            /* -h, --help */
    RC_OPT_VERSION          /* -V, --version */
};

static const struct option rc_global_opts[] = {
    {"endpoints", required_argument, NULL, RC_OPT_ENDPOINTS},
    {"prefix", required_argument, NULL, RC_OPT_PREFIX},
    {"username", required_argument, NULL, RC_OPT_USERNAME},
    {"password", required_argument, NULL, RC_OPT_PASSWORD},
    {"cacert", required_argument, NULL, RC_OPT_CACERT},
    {"cert", required_argument, NULL, RC_OPT_CERT},
    {"key", required_argument, NULL, RC_OPT_KEY},
    {"insecure-skip-tls-verify", no_argument, NULL, RC_OPT_INSECURE},
    {"timeout", required_argument, NULL, RC_OPT_TIMEOUT},
    {"config", required_argument, NULL, RC_OPT_CONFIG},
    {"plugin-dir", required_argument, NULL, RC_OPT_PLUGIN_DIR},
    {"output", required_argument, NULL, RC_OPT_OUTPUT},
    {"help", no_argument, NULL, RC_OPT_HELP},
    {"version", no_argument, NULL, RC_OPT_VERSION},
    {NULL, 0, NULL, 0}};

static const char rc_usage_text[] =
    "Usage: relaisctl [OPTIONS] COMMAND [ARGS...]\n"
    "\n"
    "The command-line tool of a relais cluster: its configuration, certificates\n"
    "and nodes, in etcd.\n"
    "\n"
    "Commands:\n"
    "  apply FILE [--name NAME] [--dry-run]   validate a dynamic document, then\n"
    "                                         store it for every node\n"
    "  apply --delete NAME                    remove an applied document\n"
    "  get routers|services|middlewares [NAME] [--api URL]\n"
    "                                         list the configuration (from etcd,\n"
    "                                         or from a node's API)\n"
    "  status                                 leader, generation, nodes\n"
    "  certs list                             certificates (imported and ACME)\n"
    "  certs import NAME --cert FILE --key FILE\n"
    "  certs delete NAME\n"
    "  backup FILE|-                          the cluster's configuration to a file\n"
    "  restore FILE|- [--force]               and back\n"
    "\n"
    "Options (before or after the command):\n"
    "      --endpoints A,B,C  etcd endpoints (default 127.0.0.1:2379)\n"
    "      --prefix P         key prefix (default relais)\n"
    "      --username U       etcd user\n"
    "      --password P       its password (or RELAISCTL_PASSWORD)\n"
    "      --cacert FILE      CA of etcd's certificate (https)\n"
    "      --cert FILE        client certificate for etcd (before the command\n"
    "      --key FILE         word with certs import)\n"
    "      --insecure-skip-tls-verify\n"
    "                         do not verify etcd's certificate\n"
    "      --timeout D        per endpoint attempt (default 5s)\n"
    "      --config FILE      take the above from a node's static file (its\n"
    "                         cluster section; flags win), and its entry points\n"
    "                         and plugins for validation\n"
    "      --plugin-dir DIR   plugins for validation (default: the config's\n"
    "                         plugins.directory, else " RELAIS_PLUGINS_DIR ")\n"
    "  -o, --output FORMAT    table (default) or json\n"
    "  -V, --version          print the version and exit\n"
    "  -h, --help             print this help (or a command's) and exit\n"
    "\n"
    "Exit status: 0 success, 1 bad input or refused, 2 etcd unreachable.\n";

/* Prints the general usage to f. */
static void rc_usage(FILE *f)
{
    fputs(rc_usage_text, f);
}

void rc_err(const char *fmt, ...)
{
    va_list ap;
    char msg[4096];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "relaisctl: %s\n", msg);
}

/* strdup that exits on out of memory. */
static char *rc_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fputs("relaisctl: out of memory\n", stderr);
        exit(RC_EXIT_BAD);
    }
    return d;
}

/* Replaces *slot by a copy of v. */
static void rc_set(char **slot, const char *v)
{
    free(*slot);
    *slot = rc_strdup(v);
}

/* Splits "a, b,c" into c->endpoints.  0, or -1 after printing why. */
static int rc_set_endpoints(struct rc_ctx *c, const char *list, const char *what)
{
    char *copy = rc_strdup(list), *save = NULL, *tok;

    for (size_t i = 0; i < c->nendpoints; i++) free(c->endpoints[i]);
    c->nendpoints = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *e = tok + strlen(tok);
        while (isspace((unsigned char)*tok)) tok++;
        while (e > tok && isspace((unsigned char)e[-1])) *--e = '\0';
        if (!*tok) continue;
        if (c->nendpoints == RC_MAX_ENDPOINTS) {
            rc_err("%s: at most %d endpoints", what, RC_MAX_ENDPOINTS);
            free(copy);
            return -1;
        }
        c->endpoints[c->nendpoints++] = rc_strdup(tok);
    }
    free(copy);
    if (!c->nendpoints) {
        rc_err("%s: no endpoint given", what);
        return -1;
    }
    return 0;
}

/* Applies one global option.  0, 1 (--help, --version done), or -1
 * after printing why. */
static int rc_global_opt(struct rc_ctx *c, int val, const char *arg)
{
    switch (val) {
    case RC_OPT_ENDPOINTS: return rc_set_endpoints(c, arg, "--endpoints");
    case RC_OPT_PREFIX: rc_set(&c->prefix, arg); return 0;
    case RC_OPT_USERNAME: rc_set(&c->username, arg); return 0;
    case RC_OPT_PASSWORD: rc_set(&c->password, arg); return 0;
    case RC_OPT_CACERT: rc_set(&c->cacert, arg); return 0;
    case RC_OPT_CERT: rc_set(&c->cert, arg); return 0;
    case RC_OPT_KEY: rc_set(&c->key, arg); return 0;
    case RC_OPT_INSECURE: c->insecure = 1; return 0;
    case RC_OPT_TIMEOUT:
        if (conf_parse_duration(arg, &c->timeout_ms) < 0 || c->timeout_ms <= 0) {
            rc_err("--timeout: \"%s\" is not a duration such as 5s or 500ms", arg);
            return -1;
        }
        return 0;
    case RC_OPT_CONFIG: c->config = arg; return 0;
    case RC_OPT_PLUGIN_DIR: c->plugin_dir = arg; return 0;
    case RC_OPT_OUTPUT:
        if (!strcmp(arg, "json")) c->json = 1;
        else if (!strcmp(arg, "table")) c->json = 0;
        else {
            rc_err("--output: expected table or json, not \"%s\"", arg);
            return -1;
        }
        return 0;
    case RC_OPT_VERSION:
        printf("relaisctl %s (%s)\n", PACKAGE_VERSION, RELAIS_CODENAME);
        return 1;
    default: return -1;
    }
}

/* A string member of o (any case), or NULL. */
static const char *rc_jstr(json_t *o, const char *key)
{
    return json_string_value(conf_json_get(o, key));
}

/* Fills what the flags left unset from the cluster section of the
 * --config file.  0, or -1 after printing why. */
static int rc_from_config(struct rc_ctx *c)
{
    struct conf_error err;
    json_t *root = conf_load_file(c->config, &err), *cl, *etcd, *tls, *eps, *v;
    const char *s;
    int rc = -1;

    if (!root) {
        if (err.line) rc_err("%s:%d:%d: %s", c->config, err.line, err.column, err.msg);
        else rc_err("%s: %s", c->config, err.msg);
        return -1;
    }
    cl = conf_json_get(root, "cluster");
    if (!json_is_object(cl)) {
        rc_err("%s: no cluster section (cluster: {etcd: {endpoints: [...]}})", c->config);
        goto out;
    }
    etcd = conf_json_get(cl, "etcd");
    tls = conf_json_get(etcd, "tls");
    if (!c->prefix && (s = rc_jstr(cl, "prefix")) != NULL) c->prefix = rc_strdup(s);
    eps = conf_json_get(etcd, "endpoints");
    if (!c->nendpoints && eps) {
        if (json_is_string(eps)) {
            if (rc_set_endpoints(c, json_string_value(eps), "cluster.etcd.endpoints") < 0)
                goto out;
        } else if (json_is_array(eps)) {
            size_t i;
            json_array_foreach(eps, i, v) {
                if (!json_is_string(v) || c->nendpoints == RC_MAX_ENDPOINTS) {
                    rc_err("%s: cluster.etcd.endpoints[%zu]: expected host:port (at most %d)",
                           c->config, i, RC_MAX_ENDPOINTS);
                    goto out;
                }
                c->endpoints[c->nendpoints++] = rc_strdup(json_string_value(v));
            }
        } else {
            rc_err("%s: cluster.etcd.endpoints: expected a list of host:port", c->config);
            goto out;
        }
    }
    if (!c->username && (s = rc_jstr(etcd, "username")) != NULL) c->username = rc_strdup(s);
    if (!c->password && (s = rc_jstr(etcd, "password")) != NULL) c->password = rc_strdup(s);
    if (!c->cacert && (s = rc_jstr(tls, "ca")) != NULL) c->cacert = rc_strdup(s);
    if (!c->cert && (s = rc_jstr(tls, "cert")) != NULL) c->cert = rc_strdup(s);
    if (!c->key && (s = rc_jstr(tls, "key")) != NULL) c->key = rc_strdup(s);
    if (!c->insecure && json_is_true(conf_json_get(tls, "insecureSkipVerify"))) c->insecure = 1;
    v = conf_json_get(etcd, "timeout");
    if (!c->timeout_ms && v) {
        char num[32];
        s = json_string_value(v);
        if (json_is_integer(v)) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            s = num;
        }
        if (!s || conf_parse_duration(s, &c->timeout_ms) < 0 || c->timeout_ms <= 0) {
            rc_err("%s: cluster.etcd.timeout: expected a duration such as 5s", c->config);
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* Settles the connection options: flags, then --config, then
 * RELAISCTL_PASSWORD, then the defaults.  0, or -1 after printing why. */
static int rc_resolve(struct rc_ctx *c)
{
    const char *env = getenv("RELAISCTL_PASSWORD");
    size_t n;

    if (c->config && rc_from_config(c) < 0) return -1;
    if (!c->password && env) c->password = rc_strdup(env);
    if (!c->nendpoints) c->endpoints[c->nendpoints++] = rc_strdup("127.0.0.1:2379");
    if (!c->prefix) c->prefix = rc_strdup("relais");
    n = strlen(c->prefix);
    while (n > 0 && c->prefix[n - 1] == '/') c->prefix[--n] = '\0';
    if (!n) {
        rc_err("--prefix: empty");
        return -1;
    }
    if (!c->timeout_ms) c->timeout_ms = 5000;
    return 0;
}

int rc_parse_command(struct rc_ctx *c, int argc, char **argv, const struct option *opts,
                     int (*on_opt)(void *arg, int val, const char *optarg), void *arg,
                     const char *usage, int *nargs)
{
    struct option all[64];
    size_t n = 0, i, j;
    char **ops;
    int o, nops = 0;

    for (i = 0; opts && opts[i].name && n < 63; i++) all[n++] = opts[i];
    for (i = 0; rc_global_opts[i].name && n < 63; i++) {
        int shadowed = 0;
        for (j = 0; opts && opts[j].name; j++)
            if (!strcmp(opts[j].name, rc_global_opts[i].name)) shadowed = 1;
        if (!shadowed) all[n++] = rc_global_opts[i];
    }
    memset(&all[n], 0, sizeof(all[n]));
    ops = calloc((size_t)argc + 1, sizeof(*ops));
    if (!ops) return -1;
    optind = 0; /* GNU getopt: start over */
    opterr = 0;
    while ((o = getopt_long(argc, argv, "-ho:V", all, NULL)) != -1) {
        int r;
        switch (o) {
        case 1: ops[nops++] = optarg; continue; /* an operand, in order */
        case 'h':
        case RC_OPT_HELP:
            fputs(usage, stdout);
            free(ops);
            return 1;
        case 'o': r = rc_global_opt(c, RC_OPT_OUTPUT, optarg); break;
        case 'V': r = rc_global_opt(c, RC_OPT_VERSION, NULL); break;
        case '?':
        case ':':
            if (optopt > 0 && optopt < 256 && isprint(optopt))
                rc_err("%s: unknown option -%c or missing value", argv[0], optopt);
            else
                rc_err("%s: unknown option %s or missing value", argv[0], argv[optind - 1]);
            fputs(usage, stderr);
            free(ops);
            return -1;
        default:
            r = o >= 256 ? rc_global_opt(c, o, optarg) : on_opt(arg, o, optarg);
            break;
        }
        if (r != 0) {
            free(ops);
            return r;
        }
    }
    for (o = optind; o < argc; o++) ops[nops++] = argv[o]; /* after "--" */
    for (o = 0; o < nops; o++) argv[1 + o] = ops[o];
    argv[1 + nops] = NULL;
    *nargs = nops;
    free(ops);
    return rc_resolve(c) < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* etcd                                                                */

char *rc_key(const struct rc_ctx *c, const char *suffix)
{
    size_t n = strlen(c->prefix) + strlen(suffix) + 2;
    char *k = malloc(n);

    if (!k) {
        fputs("relaisctl: out of memory\n", stderr);
        exit(RC_EXIT_BAD);
    }
    snprintf(k, n, "%s/%s", c->prefix, suffix);
    return k;
}

const char *rc_rel(const struct rc_ctx *c, const struct rc_kv *kv)
{
    size_t n = strlen(c->prefix);

    if (kv->key_len > n && !strncmp(kv->key, c->prefix, n) && kv->key[n] == '/')
        return kv->key + n + 1;
    return kv->key;
}

/** One blocking call's outcome. */
struct rc_wait {
    int done;              /* the callback ran */
    int err;               /* enum etc_err */
    char msg[1024];        /* why, when err */
    struct rc_range *out;  /* range: where the pairs go */
    int64_t revision;      /* put/delete/txn: the revision after */
    int64_t value;         /* delete: keys deleted */
};

/* Range callback: copies the answer. */
static void rc_on_range(void *arg, int err, const char *message, const struct etc_range *res)
{
    struct rc_wait *w = arg;

    w->done = 1;
    w->err = err;
    snprintf(w->msg, sizeof(w->msg), "%s", message ? message : "");
    if (err || !res) return;
    w->out->revision = res->revision;
    w->out->kvs = calloc(res->n ? res->n : 1, sizeof(*w->out->kvs));
    if (!w->out->kvs) {
        w->err = ETC_ERR_PROTOCOL;
        snprintf(w->msg, sizeof(w->msg), "out of memory");
        return;
    }
    for (size_t i = 0; i < res->n; i++) {
        struct rc_kv *d = &w->out->kvs[i];
        const struct etc_kv *s = &res->kvs[i];
        d->key = malloc(s->key_len + 1);
        d->value = malloc(s->value_len + 1);
        if (!d->key || !d->value) {
            free(d->key);
            free(d->value);
            w->err = ETC_ERR_PROTOCOL;
            snprintf(w->msg, sizeof(w->msg), "out of memory");
            return;
        }
        memcpy(d->key, s->key, s->key_len);
        d->key[s->key_len] = '\0';
        memcpy(d->value, s->value, s->value_len);
        d->value[s->value_len] = '\0';
        d->key_len = s->key_len;
        d->value_len = s->value_len;
        d->mod_revision = s->mod_revision;
        d->lease = s->lease;
        w->out->n++;
    }
}

/* Put / delete / txn callback. */
static void rc_on_done(void *arg, int err, const char *message, int64_t revision, int64_t value)
{
    struct rc_wait *w = arg;

    w->done = 1;
    w->err = err;
    snprintf(w->msg, sizeof(w->msg), "%s", message ? message : "");
    w->revision = revision;
    w->value = value;
}

/* The etcd client, made on first use.  NULL after printing why. */
static struct etc_client *rc_client(struct rc_ctx *c)
{
    struct etc_opts o;
    char err[512];

    if (c->etcd) return c->etcd;
    memset(&o, 0, sizeof(o));
    o.endpoints = (const char *const *)c->endpoints;
    o.nendpoints = c->nendpoints;
    o.username = c->username;
    o.password = c->password;
    o.tls_ca = c->cacert;
    o.tls_cert = c->cert;
    o.tls_key = c->key;
    o.tls_insecure = c->insecure;
    o.timeout_ms = c->timeout_ms;
    if (c->username && !c->password) {
        rc_err("--username %s needs a password (--password or RELAISCTL_PASSWORD)",
               c->username);
        return NULL;
    }
    c->etcd = etc_new(c->base, &o, err, sizeof(err));
    if (!c->etcd) rc_err("etcd client: %s", err);
    return c->etcd;
}

/* Runs the loop until w is answered, then maps its error to an exit
 * status, printing why. */
static int rc_finish(struct rc_ctx *c, struct rc_wait *w)
{
    char eps[2048];
    size_t n = 0;

    while (!w->done) event_base_loop(c->base, EVLOOP_ONCE);
    if (w->err == ETC_OK) return RC_EXIT_OK;
    eps[0] = '\0';
    for (size_t i = 0; i < c->nendpoints && n < sizeof(eps); i++)
        n += (size_t)snprintf(eps + n, sizeof(eps) - n, "%s%s", i ? ", " : "", c->endpoints[i]);
    switch (w->err) {
    case ETC_ERR_UNAVAILABLE:
    case ETC_ERR_TIMEOUT:
    case ETC_ERR_PROTOCOL:
        rc_err("etcd unreachable (tried %s): %s", eps, w->msg);
        return RC_EXIT_UNREACH;
    case ETC_ERR_AUTH:
        rc_err("etcd refused the credentials: %s", w->msg);
        return RC_EXIT_BAD;
    default:
        rc_err("etcd: %s", w->msg);
        return RC_EXIT_BAD;
    }
}

int rc_get(struct rc_ctx *c, const char *key, int prefix, struct rc_range *out)
{
    struct rc_wait w = {0};
    struct etc_client *cl = rc_client(c);
    char *k = NULL;

    memset(out, 0, sizeof(*out));
    if (!cl) return RC_EXIT_BAD;
    w.out = out;
    if (prefix) {
        size_t n = strlen(key);
        k = malloc(n + 2);
        if (!k) return RC_EXIT_BAD;
        memcpy(k, key, n);
        /* "P/config" reads "P/config/..." only, never "P/configx" */
        if (n && key[n - 1] != '/') k[n++] = '/';
        k[n] = '\0';
    }
    if (!etc_get(cl, k ? k : key, prefix, 0, 0, rc_on_range, &w)) {
        free(k);
        rc_err("out of memory");
        return RC_EXIT_BAD;
    }
    free(k);
    {
        int rc = rc_finish(c, &w);
        if (rc) rc_range_free(out);
        return rc;
    }
}

int rc_put(struct rc_ctx *c, const char *key, const char *value, size_t len, int64_t *rev)
{
    struct rc_wait w = {0};
    struct etc_client *cl = rc_client(c);
    int rc;

    if (!cl) return RC_EXIT_BAD;
    if (!etc_put(cl, key, value, len, 0, rc_on_done, &w)) return RC_EXIT_BAD;
    rc = rc_finish(c, &w);
    if (rev) *rev = w.revision;
    return rc;
}

int rc_delete(struct rc_ctx *c, const char *key, int64_t *rev, int64_t *deleted)
{
    struct rc_wait w = {0};
    struct etc_client *cl = rc_client(c);
    int rc;

    if (!cl) return RC_EXIT_BAD;
    if (!etc_delete(cl, key, 0, rc_on_done, &w)) return RC_EXIT_BAD;
    rc = rc_finish(c, &w);
    if (rev) *rev = w.revision;
    if (deleted) *deleted = w.value;
    return rc;
}

int rc_txn(struct rc_ctx *c, const struct etc_op *ops, size_t n, int64_t *rev)
{
    struct rc_wait w = {0};
    struct etc_client *cl = rc_client(c);
    int rc;

    if (!cl) return RC_EXIT_BAD;
    if (!etc_txn(cl, NULL, 0, ops, n, NULL, 0, rc_on_done, &w)) return RC_EXIT_BAD;
    rc = rc_finish(c, &w);
    if (rev) *rev = w.revision;
    return rc;
}

void rc_range_free(struct rc_range *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->kvs[i].key);
        free(r->kvs[i].value);
    }
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */

/** One blocking HTTP GET. */
struct rc_http {
    int done;          /* on_done ran */
    int error;         /* its error */
    char msg[512];     /* why */
    int status;        /* response status */
    char *next;        /* X-Next-Page (owned) */
    char *body;        /* the body so far (owned) */
    size_t len;        /* its length */
    size_t cap;        /* allocated */
    int toobig;        /* the body passed RC_MAX_INPUT */
};

/* The response head. */
static void rc_http_head(void *arg, int status, relais_hdrs *h)
{
    struct rc_http *x = arg;
    size_t vlen;
    const char *v = msg_api_get(h, "X-Next-Page", 0, &vlen);

    x->status = status;
    if (v && (x->next = malloc(vlen + 1)) != NULL) {
        memcpy(x->next, v, vlen);
        x->next[vlen] = '\0';
    }
}

/* A piece of the body. */
static void rc_http_data(void *arg, const char *data, size_t len)
{
    struct rc_http *x = arg;

    /* RC_MAX_INPUT counts the terminating NUL */
    if (!x->toobig && hc_body_append(&x->body, &x->len, &x->cap, data, len, RC_MAX_INPUT - 1) < 0)
        x->toobig = 1;
}

/* The end. */
static void rc_http_done(void *arg, int error, const char *message)
{
    struct rc_http *x = arg;

    x->done = 1;
    x->error = error;
    snprintf(x->msg, sizeof(x->msg), "%s", message ? message : "");
}

int rc_http_get(struct rc_ctx *c, const char *url, int *status, char **body, size_t *len,
                char **next_page)
{
    static const relais_header accept = {"Accept", "application/json"};
    relais_http_req req;
    relais_http_callbacks cb = {sizeof(cb), rc_http_head, rc_http_data, rc_http_done};
    struct rc_http x;

    memset(&x, 0, sizeof(x));
    memset(&req, 0, sizeof(req));
    req.size = sizeof(req);
    req.method = "GET";
    req.url = url;
    req.headers = &accept;
    req.nheaders = 1;
    req.timeout_ms = (uint64_t)c->timeout_ms;
    if (!hc_request(c->base, &req, &cb, &x)) {
        rc_err("%s: not a valid http:// or https:// URL", url);
        return -1;
    }
    while (!x.done) event_base_loop(c->base, EVLOOP_ONCE);
    if (x.error || x.toobig) {
        if (x.toobig) rc_err("%s: the answer is larger than %u MiB", url, RC_MAX_INPUT >> 20);
        else rc_err("%s: %s", url, x.msg);
        free(x.body);
        free(x.next);
        return -1;
    }
    *status = x.status;
    *body = x.body ? x.body : calloc(1, 1);
    *len = x.len;
    if (next_page) *next_page = x.next;
    else free(x.next);
    return *body ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

char *rc_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (!f) {
        rc_err("%s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t r;
        if (n + 65536 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc_err("%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = nc;
        }
        r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (n > max) {
            rc_err("%s: larger than %zu bytes", path, max);
            goto fail;
        }
        if (r == 0) break;
    }
    if (ferror(f)) {
        rc_err("%s: read error", path);
        goto fail;
    }
    if (f != stdin) fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    if (f != stdin) fclose(f);
    free(buf);
    return NULL;
}

int rc_valid_name(const char *s, int dots)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-' && !(dots && s[n] == '.'))
            return 0;
    return n >= 1 && n <= 63;
}

void rc_time_iso(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rc_table_init(struct rc_table *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    rc_table_row(t, header);
}

void rc_table_row(struct rc_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, nc * t->ncols * sizeof(*n));
        if (!n) {
            fputs("relaisctl: out of memory\n", stderr);
            exit(RC_EXIT_BAD);
        }
        t->cells = n;
        t->cap = nc;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = rc_strdup(cells[i] && *cells[i] ? cells[i] : "-");
    t->nrows++;
}

void rc_table_print(struct rc_table *t)
{
    size_t *w = calloc(t->ncols, sizeof(*w));

    for (size_t r = 0; w && r < t->nrows; r++)
        for (size_t i = 0; i < t->ncols; i++) {
            size_t l = strlen(t->cells[r * t->ncols + i]);
            if (l > w[i]) w[i] = l;
        }
    for (size_t r = 0; w && r < t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 < t->ncols) printf("%-*s  ", (int)w[i], s);
            else printf("%s\n", s);
        }
    }
    for (size_t k = 0; k < t->nrows * t->ncols; k++) free(t->cells[k]);
    free(t->cells);
    free(w);
    memset(t, 0, sizeof(*t));
}

/* Prints the errors the log captured (loading a static file, plugins). */
static void rc_print_captured(void *arg, int level, const char *module, const char *message)
{
    (void)arg;
    (void)module;
    if (level == RELAIS_LOG_ERROR) rc_err("%s", message);
}

/* Adds name (an entry point a router names) to overrides, as a TCP (udp
 * 0) or UDP entry point, unless it is there or cannot be written as a
 * flag. */
static void rc_add_ep(char ***ov, size_t *n, const char *name, int udp)
{
    char buf[300];
    size_t l = strlen(name);
    char **nv;

    if (!l || l > 200 || strpbrk(name, ".=\\")) return;
    for (size_t i = 0; i < *n; i++)
        if (!strncmp((*ov)[i], "entryPoints.", 12) && !strncmp((*ov)[i] + 12, name, l) &&
            !strncmp((*ov)[i] + 12 + l, ".address=", 9))
            return;
    snprintf(buf, sizeof(buf), "entryPoints.%s.address=127.0.0.1:1%s", name, udp ? "/udp" : "");
    nv = realloc(*ov, (*n + 1) * sizeof(**ov));
    if (!nv) return;
    *ov = nv;
    (*ov)[(*n)++] = rc_strdup(buf);
}

int rc_validation_setup(struct rc_ctx *c, json_t *const *docs, size_t ndocs,
                        struct sc_config **scp, struct pl_set **plp)
{
    static const char *const fixed[] = {"api.dashboard=true", "ping.manualRouting=true",
                                        "metrics.prometheus.manualRouting=true"};
    struct sc_config *sc = NULL;
    struct pl_set *pl;
    char **ov = NULL;
    size_t nov = 0;

    *scp = NULL;
    *plp = NULL;
    dv_capture_start(RELAIS_LOG_ERROR);
    if (c->config) {
        sc = sc_load(c->config, c->plugin_dir, NULL, 0);
    } else {
        for (size_t d = 0; d < ndocs; d++) {
            static const char *const tops[] = {"http", "tcp", "udp"};
            for (size_t t = 0; t < 3; t++) {
                json_t *rs = conf_json_get(conf_json_get(docs[d], tops[t]), "routers"), *r;
                const char *k;
                json_object_foreach(json_is_object(rs) ? rs : NULL, k, r) {
                    json_t *eps = conf_json_get(r, "entryPoints"), *e;
                    size_t i;
                    json_array_foreach(json_is_array(eps) ? eps : NULL, i, e)
                        if (json_is_string(e)) rc_add_ep(&ov, &nov, json_string_value(e), t == 2);
                }
            }
        }
        rc_add_ep(&ov, &nov, "web", 0);
        rc_add_ep(&ov, &nov, "udp", 1);
        for (size_t i = 0; i < 3; i++) {
            char **nv = realloc(ov, (nov + 1) * sizeof(*ov));
            if (!nv) break;
            ov = nv;
            ov[nov++] = rc_strdup(fixed[i]);
        }
        sc = sc_load(NULL, c->plugin_dir, (const char *const *)ov, nov);
    }
    for (size_t i = 0; i < nov; i++) free(ov[i]);
    free(ov);
    if (!sc) {
        dv_capture_end(rc_print_captured, NULL);
        rc_err("%s: the static configuration does not load",
               c->config ? c->config : "(entry points of the documents)");
        return RC_EXIT_BAD;
    }
    pl = pl_set_new();
    if (pl)
        pl_load_dir(pl, sc->plugin_dir, (const char *const *)sc->plugin_load,
                    sc->plugin_load ? sc->nplugin_load : 0, host_table());
    dv_capture_end(rc_print_captured, NULL);
    if (!pl) {
        sc_free(sc);
        return RC_EXIT_BAD;
    }
    if (pl->n == 0)
        rc_err("warning: no plugin loaded from %s: middlewares and load-balancing strategies "
               "cannot be checked (--plugin-dir)", sc->plugin_dir);
    *scp = sc;
    *plp = pl;
    return RC_EXIT_OK;
}

json_t *rc_parse_doc(const char *data, size_t len, const char *name)
{
    const char *dot = strrchr(name, '.'), *p = data;
    struct conf_error err;
    int fmt;
    json_t *doc;

    if (dot && !strcasecmp(dot, ".json")) {
        fmt = CONF_JSON;
    } else if (dot && (!strcasecmp(dot, ".yaml") || !strcasecmp(dot, ".yml"))) {
        fmt = CONF_YAML;
    } else {
        while (p < data + len && isspace((unsigned char)*p)) p++;
        fmt = p < data + len && *p == '{' ? CONF_JSON : CONF_YAML;
    }
    doc = conf_parse(data, len, fmt, name, &err);
    if (!doc) {
        if (err.line) fprintf(stderr, "%s:%d:%d: %s\n", name, err.line, err.column, err.msg);
        else fprintf(stderr, "%s: %s\n", name, err.msg);
        return NULL;
    }
    if (!json_is_object(doc)) {
        fprintf(stderr, "%s: expected a map (http, tcp, udp, tls) at the top\n", name);
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

/** A command word and its function. */
struct rc_command {
    const char *name;                                  /* the word */
    int (*run)(struct rc_ctx *c, int argc, char **argv); /* the command */
};

static const struct rc_command rc_commands[] = {
    {"apply", rc_cmd_apply},   {"get", rc_cmd_get},       {"status", rc_cmd_status},
    {"certs", rc_cmd_certs},   {"backup", rc_cmd_backup}, {"restore", rc_cmd_restore},
    {NULL, NULL}};

/* Frees what the options and the commands left in c. */
static void rc_ctx_free(struct rc_ctx *c)
{
    etc_free(c->etcd);
    if (c->base) event_base_free(c->base);
    for (size_t i = 0; i < c->nendpoints; i++) free(c->endpoints[i]);
    free(c->prefix);
    free(c->username);
    if (c->password) memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->cacert);
    free(c->cert);
    free(c->key);
    memset(c, 0, sizeof(*c));
}

int main(int argc, char **argv)
{
    struct rc_ctx c;
    const struct rc_command *cmd;
    int o, rc = RC_EXIT_BAD;

    memset(&c, 0, sizeof(c));
    signal(SIGPIPE, SIG_IGN);
    log_set_level(RELAIS_LOG_ERROR);
    opterr = 0;
    /* the options before the command word ("+": stop at it) */
    while ((o = getopt_long(argc, argv, "+ho:V", rc_global_opts, NULL)) != -1) {
        int r;
        switch (o) {
        case 'h':
        case RC_OPT_HELP:
            rc_usage(stdout);
            r = 1;
            break;
        case 'o': r = rc_global_opt(&c, RC_OPT_OUTPUT, optarg); break;
        case 'V': r = rc_global_opt(&c, RC_OPT_VERSION, NULL); break;
        case '?':
        case ':':
            rc_err("unknown option %s or missing value", argv[optind - 1]);
            rc_usage(stderr);
            r = -1;
            break;
        default: r = rc_global_opt(&c, o, optarg); break;
        }
        if (r) {
            rc_ctx_free(&c);
            return r > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
        }
    }
    if (optind >= argc) {
        rc_err("no command given");
        rc_usage(stderr);
        rc_ctx_free(&c);
        return RC_EXIT_BAD;
    }
    for (cmd = rc_commands; cmd->name && strcmp(cmd->name, argv[optind]); cmd++) continue;
    if (!cmd->name) {
        rc_err("unknown command \"%s\" (apply, get, status, certs, backup, restore)",
               argv[optind]);
    } else if (!(c.base = event_base_new())) {
        rc_err("cannot create an event loop");
    } else {
        rc = cmd->run(&c, argc - optind, argv + optind);
    }
    rc_ctx_free(&c);
    ts_global_free();
    tls_global_free();
    return rc;
}
