/*
 * relaisctl_show — the commands that read the cluster: get (routers,
 * services, middlewares from etcd or a node's API), status (leader,
 * generation, nodes) and certs (list, import, delete).  See relaisctl.h.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme_store.h"
#include "api.h"
#include "conf.h"
#include "relaisctl.h"
#include "snapshot.h"
#include "tls.h"

#define RC_MAX_PAGES 10000 /* pages of an API list followed */

/* No own options. */
static int rc_show_no_opt(void *arg, int val, const char *optarg)
{
    (void)arg;
    (void)val;
    (void)optarg;
    return -1;
}

/* Prints v as indented JSON on stdout (consumes v). */
static int rc_print_json(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_INDENT(2)) : NULL;

    json_decref(v);
    if (!s) {
        rc_err("out of memory");
        return RC_EXIT_BAD;
    }
    puts(s);
    free(s);
    return RC_EXIT_OK;
}

/* Compares two JSON objects by their "name" for qsort. */
static int rc_by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));

    return strcmp(x ? x : "", y ? y : "");
}

/* Sorts the array l of objects by name, in place. */
static void rc_sort(json_t *l)
{
    size_t n = json_array_size(l);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));

    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(l, i));
    qsort(v, n, sizeof(*v), rc_by_name);
    json_array_clear(l);
    for (size_t i = 0; i < n; i++) json_array_append_new(l, v[i]);
    free(v);
}

/* ------------------------------------------------------------------ */
/* get                                                                 */

/** The kinds get lists. */
enum rc_kind { RC_ROUTERS = 0, RC_SERVICES = 1, RC_MIDDLEWARES = 2 };

static const char rc_get_usage[] =
    "Usage: relaisctl get routers|services|middlewares [NAME] [--api URL] [-o json]\n"
    "\n"
    "Lists the HTTP routers, services or middlewares: from etcd (every\n"
    "provider the controllers publish, P/config/*, and every applied\n"
    "document, P/apply/*; names as name@provider) or, with --api, from a\n"
    "node's API (Traefik's /api/http/...: with their status).  NAME selects\n"
    "one object (name or name@provider).\n"
    "\n"
    "  --api URL     a node's API, e.g. http://127.0.0.1:8080\n"
    "  -o json       JSON instead of a table\n"
    "\n"
    "Connection options: see relaisctl --help.\n";

/** get's own options. */
struct rc_get_opts {
    const char *api; /* --api */
};

/* Takes one of get's options. */
static int rc_get_opt(void *arg, int val, const char *optarg)
{
    struct rc_get_opts *g = arg;

    if (val == 'a') g->api = optarg;
    return 0;
}

/* 1 when the object called qname ("x@p") is selected by want (NULL: all;
 * "x@p": that one; "x": x of any provider). */
static int rc_selected(const char *qname, const char *want)
{
    const char *at;

    if (!want) return 1;
    if (strchr(want, '@')) return !strcmp(qname, want);
    at = strrchr(qname, '@');
    return at ? (size_t)(at - qname) == strlen(want) && !strncmp(qname, want, strlen(want))
              : !strcmp(qname, want);
}

/* The lowercased first key of the object cfg as a new JSON string (the
 * API's "type"), or NULL. */
static json_t *rc_type(json_t *cfg)
{
    const char *k = json_is_object(cfg) ? json_object_iter_key(json_object_iter(cfg)) : NULL;
    char buf[128];
    size_t i;

    if (!k) return NULL;
    for (i = 0; k[i] && i + 1 < sizeof(buf); i++) buf[i] = (char)tolower((unsigned char)k[i]);
    buf[i] = '\0';
    return json_string(buf);
}

/* Appends to out the objects of the kind from the documents under P/dir/
 * in r (API-like: the configuration, name, provider, type). */
static void rc_get_from_docs(struct rc_ctx *c, const struct rc_range *r, const char *dir,
                             int kind, const char *want, json_t *out)
{
    static const char *const secs[] = {"routers", "services", "middlewares"};
    size_t dl = strlen(dir);

    for (size_t i = 0; i < r->n; i++) {
        const char *rel = rc_rel(c, &r->kvs[i]), *prov, *k;
        json_t *doc, *sec, *v;
        if (strncmp(rel, dir, dl) || rel[dl] != '/') continue;
        prov = rel + dl + 1;
        if (!*prov || strchr(prov, '/')) continue;
        doc = json_loadb(r->kvs[i].value, r->kvs[i].value_len, 0, NULL);
        if (!json_is_object(doc)) {
            rc_err("warning: %s is not a JSON document: skipped", r->kvs[i].key);
            json_decref(doc);
            continue;
        }
        sec = snap_subsection(doc, "http", secs[kind]);
        json_object_foreach(json_is_object(sec) ? sec : NULL, k, v) {
            char *q = snap_qualify(k, prov);
            json_t *o;
            if (!q || !rc_selected(q, want) || !json_is_object(v)) {
                free(q);
                continue;
            }
            o = json_deep_copy(v);
            if (o) {
                api_redact(o);
                json_t *type = kind != RC_ROUTERS ? rc_type(v) : NULL;
                if (type) json_object_set_new(o, "type", type);
                json_object_set_new(o, "name", json_string(q));
                json_object_set_new(o, "provider", json_string(prov));
                json_array_append_new(out, o);
            }
            free(q);
        }
        json_decref(doc);
    }
}

/* Reads every page of URL/api/http/KIND into out.  0 or an exit status. */
static int rc_get_from_api(struct rc_ctx *c, const char *api, int kind, const char *want,
                           json_t *out)
{
    static const char *const paths[] = {"routers", "services", "middlewares"};
    char base[2048], url[2300];
    size_t bl;
    long page = 1;

    snprintf(base, sizeof(base), "%s%s", strstr(api, "://") ? "" : "http://", api);
    bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/') base[--bl] = '\0';
    for (int n = 0; n < RC_MAX_PAGES; n++) {
        int status;
        char *body = NULL, *next = NULL;
        size_t len;
        json_t *l, *v;
        size_t i;
        snprintf(url, sizeof(url), "%s/api/http/%s?per_page=100&page=%ld", base, paths[kind],
                 page);
        if (rc_http_get(c, url, &status, &body, &len, &next) < 0) return RC_EXIT_UNREACH;
        if (status != 200) {
            rc_err("%s: HTTP status %d%s%.200s", url, status, len ? ": " : "", body);
            free(body);
            free(next);
            return RC_EXIT_BAD;
        }
        l = json_loadb(body, len, 0, NULL);
        free(body);
        if (!json_is_array(l)) {
            rc_err("%s: the answer is not a JSON list", url);
            json_decref(l);
            free(next);
            return RC_EXIT_BAD;
        }
        json_array_foreach(l, i, v) {
            const char *nm = json_string_value(json_object_get(v, "name"));
            if (nm && rc_selected(nm, want)) json_array_append(out, v);
        }
        json_decref(l);
        page = next ? strtol(next, NULL, 10) : 1;
        free(next);
        if (page <= 1) break;
    }
    return RC_EXIT_OK;
}

/* A comma-joined copy of the strings of list l (new, "" when none). */
static char *rc_join(json_t *l)
{
    size_t n = 1, i;
    json_t *v;
    char *s;

    json_array_foreach(l, i, v) if (json_is_string(v)) n += json_string_length(v) + 1;
    s = calloc(1, n);
    if (!s) return NULL;
    json_array_foreach(l, i, v) {
        if (!json_is_string(v)) continue;
        if (*s) strcat(s, ",");
        strcat(s, json_string_value(v));
    }
    return s;
}

/* Prints the objects as a table (with a STATUS column when status). */
static void rc_get_table(json_t *objs, int kind, int status)
{
    static const char *const hr[] = {"NAME", "PROVIDER", "RULE", "SERVICE", "ENTRYPOINTS",
                                     "STATUS"};
    static const char *const hs[] = {"NAME", "PROVIDER", "TYPE", "SERVERS", "STATUS"};
    static const char *const hm[] = {"NAME", "PROVIDER", "TYPE", "STATUS"};
    size_t ncols = kind == RC_ROUTERS ? 6 : kind == RC_SERVICES ? 5 : 4;
    struct rc_table t;
    json_t *o;
    size_t i;

    if (!status) ncols--;
    rc_table_init(&t, ncols, kind == RC_ROUTERS ? hr : kind == RC_SERVICES ? hs : hm);
    json_array_foreach(objs, i, o) {
        const char *cells[6] = {NULL};
        const char *prov = json_string_value(json_object_get(o, "provider"));
        char *svc = NULL, *eps = NULL, nserv[32];
        cells[0] = json_string_value(json_object_get(o, "name"));
        cells[1] = prov;
        if (kind == RC_ROUTERS) {
            const char *s = json_string_value(json_object_get(o, "service"));
            json_t *use = json_object_get(o, "using");
            cells[2] = json_string_value(json_object_get(o, "rule"));
            svc = s ? snap_qualify(s, prov ? prov : "") : NULL;
            cells[3] = svc;
            eps = rc_join(use ? use : json_object_get(o, "entryPoints"));
            cells[4] = eps;
        } else {
            cells[2] = json_string_value(json_object_get(o, "type"));
        }
        if (kind == RC_SERVICES) {
            json_t *lb = conf_json_get(o, "loadBalancer");
            json_t *sv = conf_json_get(lb, "servers");
            if (json_is_array(sv)) snprintf(nserv, sizeof(nserv), "%zu", json_array_size(sv));
            else nserv[0] = '\0';
            cells[3] = nserv;
        }
        if (status) cells[ncols - 1] = json_string_value(json_object_get(o, "status"));
        rc_table_row(&t, cells);
        free(svc);
        free(eps);
    }
    rc_table_print(&t);
}

int rc_cmd_get(struct rc_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"api", required_argument, NULL, 'a'},
                                         {NULL, 0, NULL, 0}};
    static const char *const kinds[] = {"routers", "services", "middlewares"};
    struct rc_get_opts g = {NULL};
    int nargs, rc, kind = -1;
    const char *want;
    json_t *out;

    rc = rc_parse_command(c, argc, argv, opts, rc_get_opt, &g, rc_get_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (nargs < 1 || nargs > 2) {
        rc_err("get: expected routers, services or middlewares, and an optional NAME");
        return RC_EXIT_BAD;
    }
    for (int i = 0; i < 3; i++) {
        size_t kl = strlen(kinds[i]); /* "routers" or "router" */
        if (!strcmp(argv[1], kinds[i]) ||
            (strlen(argv[1]) == kl - 1 && !strncmp(argv[1], kinds[i], kl - 1)))
            kind = i;
    }
    if (kind < 0) {
        rc_err("get: \"%s\": expected routers, services or middlewares", argv[1]);
        return RC_EXIT_BAD;
    }
    want = nargs == 2 ? argv[2] : NULL;
    out = json_array();
    if (!out) return RC_EXIT_BAD;
    if (g.api) {
        rc = rc_get_from_api(c, g.api, kind, want, out);
    } else {
        struct rc_range r = {0};
        if ((rc = rc_get(c, c->prefix, 1, &r)) == 0) {
            rc_get_from_docs(c, &r, "config", kind, want, out);
            rc_get_from_docs(c, &r, "apply", kind, want, out);
        }
        rc_range_free(&r);
    }
    if (rc) {
        json_decref(out);
        return rc;
    }
    rc_sort(out);
    if (want && json_array_size(out) == 0) {
        rc_err("no %.*s %s%s", (int)strlen(kinds[kind]) - 1, kinds[kind], want,
               g.api ? " on that node" : " in etcd");
        json_decref(out);
        return RC_EXIT_BAD;
    }
    if (c->json) return rc_print_json(out);
    rc_get_table(out, kind, g.api != NULL);
    json_decref(out);
    return RC_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* status                                                              */

static const char rc_status_usage[] =
    "Usage: relaisctl status [-o json]\n"
    "\n"
    "The cluster as etcd holds it: the leading controller (P/leader), the\n"
    "configuration generation (P/generation), etcd's revision, and one line\n"
    "per node (P/nodes/*): name, role, leader mark, the etcd revision and\n"
    "generation of the configuration it serves, its routers and services,\n"
    "the age of its last status update and its last error.\n"
    "Exit status 2 when etcd is unreachable.\n"
    "\n"
    "Connection options: see relaisctl --help.\n";

/* "3s", "2m5s", "1h2m", "3d4h" for a number of seconds (into buf). */
static void rc_age(int64_t s, char *buf, size_t len)
{
    if (s < 0) s = 0;
    if (s < 60) snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600) snprintf(buf, len, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, len, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else snprintf(buf, len, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

/* A number member of o as text ("" when absent) into buf. */
static const char *rc_num(json_t *o, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(o, key);

    if (json_is_integer(v)) snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v)) snprintf(buf, len, "%s", json_string_value(v));
    else buf[0] = '\0';
    return buf;
}

int rc_cmd_status(struct rc_ctx *c, int argc, char **argv)
{
    struct rc_range nodes = {0}, leader = {0}, gen = {0};
    const char *lname = NULL;
    char *key, gtext[64] = "";
    json_t *list = NULL;
    int nargs, rc;
    int64_t now = (int64_t)time(NULL);

    rc = rc_parse_command(c, argc, argv, NULL, rc_show_no_opt, NULL, rc_status_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (nargs) {
        rc_err("status takes no argument");
        return RC_EXIT_BAD;
    }
    key = rc_key(c, "leader");
    rc = rc_get(c, key, 0, &leader);
    free(key);
    if (!rc) {
        key = rc_key(c, "generation");
        rc = rc_get(c, key, 0, &gen);
        free(key);
    }
    if (!rc) {
        key = rc_key(c, "nodes");
        rc = rc_get(c, key, 1, &nodes);
        free(key);
    }
    if (rc) goto out;
    if (leader.n) lname = leader.kvs[0].value;
    if (gen.n) snprintf(gtext, sizeof(gtext), "%s", gen.kvs[0].value);
    list = json_array();
    for (size_t i = 0; list && i < nodes.n; i++) {
        const char *rel = rc_rel(c, &nodes.kvs[i]) + strlen("nodes/");
        json_t *o = json_loadb(nodes.kvs[i].value, nodes.kvs[i].value_len, 0, NULL);
        json_t *up;
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_pack("{s:s,s:s}", "name", rel, "lastError", "unreadable status (not JSON)");
            if (!o) continue;
        }
        if (!json_is_string(json_object_get(o, "name")))
            json_object_set_new(o, "name", json_string(rel));
        if (lname && !strcmp(json_string_value(json_object_get(o, "name")), lname))
            json_object_set_new(o, "leader", json_true());
        up = json_object_get(o, "updated");
        if (json_is_integer(up))
            json_object_set_new(o, "age", json_integer(now - json_integer_value(up)));
        json_array_append_new(list, o);
    }
    if (!list) {
        rc = RC_EXIT_BAD;
        goto out;
    }
    rc_sort(list);
    if (c->json) {
        json_t *top = json_pack("{s:s,s:I,s:o,s:o,s:O}", "prefix", c->prefix, "revision",
                                (json_int_t)nodes.revision, "leader",
                                lname ? json_string(lname) : json_null(), "generation",
                                gen.n ? json_integer(strtoll(gtext, NULL, 10)) : json_null(),
                                "nodes", list);
        rc = rc_print_json(top);
    } else {
        static const char *const h[] = {"NAME",    "ROLE",     "LEADER",  "REVISION",  "GENERATION",
                                        "ROUTERS", "SERVICES", "UPDATED", "LAST ERROR"};
        struct rc_table t;
        json_t *o;
        size_t i;
        printf("leader:      %s\n", lname ? lname : "none");
        printf("generation:  %s\n", gen.n ? gtext : "none");
        printf("revision:    %lld\n", (long long)nodes.revision);
        printf("nodes:       %zu\n", json_array_size(list));
        if (json_array_size(list)) {
            rc_table_init(&t, 9, h);
            json_array_foreach(list, i, o) {
                char rev[32], g[32], nr[32], ns[32], age[48] = "", err[1200] = "";
                const char *le = json_string_value(json_object_get(o, "lastError"));
                json_t *a = json_object_get(o, "age"), *et = json_object_get(o, "lastErrorTime");
                const char *cells[9];
                if (json_is_integer(a)) {
                    rc_age(json_integer_value(a), age, sizeof(age) - 4);
                    strcat(age, " ago");
                }
                if (le && json_is_integer(et)) {
                    char ea[32];
                    rc_age(now - json_integer_value(et), ea, sizeof(ea));
                    snprintf(err, sizeof(err), "%s (%s ago)", le, ea);
                } else if (le) {
                    snprintf(err, sizeof(err), "%s", le);
                }
                cells[0] = json_string_value(json_object_get(o, "name"));
                cells[1] = json_string_value(json_object_get(o, "role"));
                cells[2] = json_is_true(json_object_get(o, "leader")) ? "*" : "";
                cells[3] = rc_num(o, "revision", rev, sizeof(rev));
                cells[4] = rc_num(o, "generation", g, sizeof(g));
                cells[5] = rc_num(o, "routers", nr, sizeof(nr));
                cells[6] = rc_num(o, "services", ns, sizeof(ns));
                cells[7] = age;
                cells[8] = err;
                rc_table_row(&t, cells);
            }
            rc_table_print(&t);
        }
    }
out:
    json_decref(list);
    rc_range_free(&nodes);
    rc_range_free(&leader);
    rc_range_free(&gen);
    return rc;
}

/* ------------------------------------------------------------------ */
/* certs                                                               */

static const char rc_certs_usage[] =
    "Usage: relaisctl certs list [-o json]\n"
    "       relaisctl certs import NAME --cert FILE --key FILE\n"
    "       relaisctl certs delete NAME\n"
    "\n"
    "list: the certificates every node serves from etcd: those imported\n"
    "(P/certs/NAME) and those the ACME resolvers obtained (P/acme/RESOLVER),\n"
    "with their domains, expiry, issuer and source.\n"
    "import: checks that FILE is a PEM certificate (chain) and KEY its private\n"
    "key, then stores them as P/certs/NAME (NAME: 1 to 63 of A-Z a-z 0-9 . _ -).\n"
    "delete: removes P/certs/NAME.\n"
    "\n"
    "Here --cert and --key name the certificate to import: the client\n"
    "certificate for etcd goes before the command word.\n"
    "Connection options: see relaisctl --help.\n";

/** certs' own options. */
struct rc_certs_opts {
    const char *cert; /* --cert (import) */
    const char *key;  /* --key (import) */
};

/* Takes one of certs' options. */
static int rc_certs_opt(void *arg, int val, const char *optarg)
{
    struct rc_certs_opts *o = arg;

    if (val == 'c') o->cert = optarg;
    else if (val == 'k') o->key = optarg;
    return 0;
}

/** What one certificate shows. */
struct rc_certinfo {
    char domains[2048];  /* DNS and IP SANs (else the CN), comma-joined */
    char not_after[40];  /* its expiry, ISO 8601 UTC */
    int64_t not_after_t; /* the same in Unix seconds */
    char issuer[512];    /* the issuer's CN (else its whole name) */
    char subject[512];   /* the subject, one line */
};

/* Describes the first certificate of the PEM text pem into ci.  0, or -1
 * when there is none. */
static int rc_cert_info(const char *pem, size_t len, struct rc_certinfo *ci)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    GENERAL_NAMES *sans;
    struct tm tm;
    size_t n = 0;

    BIO_free(b);
    memset(ci, 0, sizeof(*ci));
    if (!x) {
        ERR_clear_error();
        return -1;
    }
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char ip[64] = "";
        const char *s = NULL;
        int sl = 0;
        if (g->type == GEN_DNS) {
            s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            sl = ASN1_STRING_length(g->d.dNSName);
        } else if (g->type == GEN_IPADD) {
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            int al = ASN1_STRING_length(g->d.iPAddress);
            if (al == 4) snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
            else if (al == 16)
                for (int k = 0; k < 16; k += 2)
                    snprintf(ip + strlen(ip), sizeof(ip) - strlen(ip), "%s%x", k ? ":" : "",
                             (unsigned)(a[k] << 8 | a[k + 1]));
            s = ip;
            sl = (int)strlen(ip);
        }
        if (!s || sl <= 0 || n + (size_t)sl + 2 >= sizeof(ci->domains)) continue;
        n += (size_t)snprintf(ci->domains + n, sizeof(ci->domains) - n, "%s%.*s", n ? "," : "",
                              sl, s);
    }
    GENERAL_NAMES_free(sans);
    if (!n)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, ci->domains,
                                  sizeof(ci->domains));
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
        ci->not_after_t = (int64_t)timegm(&tm);
        rc_time_iso(ci->not_after_t, ci->not_after, sizeof(ci->not_after));
    }
    if (X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, ci->issuer,
                                  sizeof(ci->issuer)) < 0)
        X509_NAME_oneline(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
    X509_NAME_oneline(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
    X509_free(x);
    ERR_clear_error();
    return 0;
}

/* One certificate as certs list shows it (new object). */
static json_t *rc_cert_entry(const char *name, const char *source, const char *pem, size_t len)
{
    struct rc_certinfo ci;
    json_t *o, *doms;
    char *save = NULL, *d;

    if (!pem || rc_cert_info(pem, len, &ci) < 0)
        return json_pack("{s:s,s:s,s:s}", "name", name, "source", source, "error",
                         "no readable PEM certificate");
    doms = json_array();
    for (d = strtok_r(ci.domains, ",", &save); doms && d; d = strtok_r(NULL, ",", &save))
        json_array_append_new(doms, json_string(d));
    o = json_pack("{s:s,s:o,s:s,s:I,s:s,s:s,s:s}", "name", name, "domains",
                  doms ? doms : json_array(), "notAfter", ci.not_after, "notAfterUnix",
                  (json_int_t)ci.not_after_t, "issuer", ci.issuer, "subject", ci.subject,
                  "source", source);
    return o;
}

/*
 * The ACME certificates of one P/acme/... key (rel: the key relative to
 * P/): the assumption about resolvers.c's layout is all here.  A key
 * P/acme/RESOLVER (no further '/') holds that resolver's section of
 * Traefik's acme.json: {"Account": ..., "Certificates": [{"domain":
 * {"main", "sans"}, "certificate": base64 PEM, "key": base64 PEM,
 * "Store"}]}.  Other keys under P/acme/ (locks, challenges) are skipped.
 * Each certificate is appended to out.
 */
static void rc_acme_certs(const char *rel, const char *value, size_t len, json_t *out)
{
    const char *resolver = rel + strlen("acme/");
    json_t *sec, *certs, *c;
    char source[300];
    size_t i;

    if (!*resolver || strchr(resolver, '/')) return;
    sec = json_loadb(value, len, 0, NULL);
    certs = json_object_get(sec, "Certificates");
    snprintf(source, sizeof(source), "acme:%s", resolver);
    json_array_foreach(json_is_array(certs) ? certs : NULL, i, c) {
        const char *main = json_string_value(json_object_get(json_object_get(c, "domain"), "main"));
        const char *b64 = json_string_value(json_object_get(c, "certificate"));
        unsigned char *pem = NULL;
        size_t pl = 0;
        json_t *e;
        if (b64) pem = as_b64_decode(b64, &pl);
        e = rc_cert_entry(main ? main : "?", source, (const char *)pem, pl);
        if (e) json_array_append_new(out, e);
        free(pem);
    }
    json_decref(sec);
}

/* certs list. */
static int rc_certs_list(struct rc_ctx *c)
{
    struct rc_range r = {0};
    json_t *out;
    int rc;

    if ((rc = rc_get(c, c->prefix, 1, &r)) != 0) return rc;
    out = json_array();
    for (size_t i = 0; out && i < r.n; i++) {
        const char *rel = rc_rel(c, &r.kvs[i]);
        if (!strncmp(rel, "certs/", 6) && rel[6] && !strchr(rel + 6, '/')) {
            json_t *o = json_loadb(r.kvs[i].value, r.kvs[i].value_len, 0, NULL);
            const char *pem = json_string_value(json_object_get(o, "certificate"));
            json_t *e = rc_cert_entry(rel + 6, "relaisctl", pem, pem ? strlen(pem) : 0);
            if (e) json_array_append_new(out, e);
            json_decref(o);
        } else if (!strncmp(rel, "acme/", 5)) {
            rc_acme_certs(rel, r.kvs[i].value, r.kvs[i].value_len, out);
        }
    }
    rc_range_free(&r);
    if (!out) return RC_EXIT_BAD;
    rc_sort(out);
    if (c->json) return rc_print_json(out);
    {
        static const char *const h[] = {"NAME", "DOMAINS", "NOT-AFTER", "ISSUER", "SOURCE"};
        struct rc_table t;
        json_t *o;
        size_t i;
        rc_table_init(&t, 5, h);
        json_array_foreach(out, i, o) {
            char *doms = rc_join(json_object_get(o, "domains"));
            const char *err = json_string_value(json_object_get(o, "error"));
            const char *cells[5];
            cells[0] = json_string_value(json_object_get(o, "name"));
            cells[1] = doms;
            cells[2] = json_string_value(json_object_get(o, "notAfter"));
            cells[3] = err ? err : json_string_value(json_object_get(o, "issuer"));
            cells[4] = json_string_value(json_object_get(o, "source"));
            rc_table_row(&t, cells);
            free(doms);
        }
        rc_table_print(&t);
    }
    json_decref(out);
    return RC_EXIT_OK;
}

/* The PEM text of the file at path: from its first "-----BEGIN" (a
 * preamble such as openssl's "Bag Attributes" is dropped).  New string,
 * or NULL after printing why. */
static char *rc_read_pem(const char *path)
{
    size_t len;
    char *data = rc_read_file(path, RC_MAX_PEM, &len), *b;

    if (!data) return NULL;
    b = strstr(data, "-----BEGIN");
    if (!b || memchr(data, '\0', len)) {
        rc_err("%s: not a PEM file", path);
        free(data);
        return NULL;
    }
    memmove(data, b, strlen(b) + 1);
    return data;
}

/* certs import NAME --cert FILE --key FILE. */
static int rc_certs_import(struct rc_ctx *c, const char *name, const char *certf,
                           const char *keyf)
{
    char *cert = NULL, *key = NULL, *text = NULL, *k, err[512], sub[300];
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *pk = NULL;
    struct rc_certinfo ci;
    json_t *o;
    int rc = RC_EXIT_BAD;
    int64_t rev;

    if (!rc_valid_name(name, 1)) {
        rc_err("\"%s\": a certificate name is 1 to 63 of A-Z a-z 0-9 . _ -", name);
        return RC_EXIT_BAD;
    }
    if (!certf || !keyf) {
        rc_err("certs import %s: --cert FILE and --key FILE are both needed", name);
        return RC_EXIT_BAD;
    }
    if (!(cert = rc_read_pem(certf)) || !(key = rc_read_pem(keyf))) goto out;
    if (tls_load_cert(cert, key, &x, &chain, &pk, err, sizeof(err)) < 0) {
        /* "certFile: inline value: no PEM certificate found" -> the file */
        const char *why = strstr(err, ": ");
        int iskey = !strncmp(err, "keyFile", 7);
        why = why ? why + 2 : err;
        if (!strncmp(why, "inline value: ", 14)) why += 14;
        if (iskey && strstr(why, "does not match"))
            rc_err("%s: the key does not match the certificate %s: nothing imported", keyf, certf);
        else
            rc_err("%s: %s: nothing imported", iskey ? keyf : certf, why);
        goto out;
    }
    rc_cert_info(cert, strlen(cert), &ci);
    if (ci.not_after_t && ci.not_after_t < (int64_t)time(NULL))
        rc_err("warning: %s expired at %s", certf, ci.not_after);
    o = json_pack("{s:s,s:s}", "certificate", cert, "key", key);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) goto out;
    snprintf(sub, sizeof(sub), "certs/%s", name);
    k = rc_key(c, sub);
    rc = rc_put(c, k, text, strlen(text), &rev);
    free(k);
    if (!rc)
        printf("imported %s (%s, not after %s) at revision %lld\n", name, ci.domains,
               ci.not_after, (long long)rev);
out:
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pk);
    if (key) memset(key, 0, strlen(key));
    if (text) memset(text, 0, strlen(text));
    free(cert);
    free(key);
    free(text);
    return rc;
}

/* certs delete NAME. */
static int rc_certs_delete(struct rc_ctx *c, const char *name)
{
    char sub[300], *k;
    int64_t rev = 0, n = 0;
    int rc;

    if (!rc_valid_name(name, 1)) {
        rc_err("\"%s\": a certificate name is 1 to 63 of A-Z a-z 0-9 . _ -", name);
        return RC_EXIT_BAD;
    }
    snprintf(sub, sizeof(sub), "certs/%s", name);
    k = rc_key(c, sub);
    rc = rc_delete(c, k, &rev, &n);
    free(k);
    if (rc) return rc;
    if (!n) {
        rc_err("no certificate %s (%s/certs/%s)", name, c->prefix, name);
        return RC_EXIT_BAD;
    }
    printf("deleted certificate %s at revision %lld\n", name, (long long)rev);
    return RC_EXIT_OK;
}

int rc_cmd_certs(struct rc_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"cert", required_argument, NULL, 'c'},
                                         {"key", required_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    struct rc_certs_opts o = {NULL, NULL};
    int nargs, rc;

    rc = rc_parse_command(c, argc, argv, opts, rc_certs_opt, &o, rc_certs_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (nargs >= 1 && (o.cert || o.key) && strcmp(argv[1], "import")) {
        rc_err("certs %s: --cert and --key belong to certs import (etcd's client certificate "
               "goes before the command word)", argv[1]);
        return RC_EXIT_BAD;
    }
    if (nargs == 1 && !strcmp(argv[1], "list")) return rc_certs_list(c);
    if (nargs == 2 && !strcmp(argv[1], "import")) return rc_certs_import(c, argv[2], o.cert, o.key);
    if (nargs == 2 && !strcmp(argv[1], "delete")) return rc_certs_delete(c, argv[2]);
    rc_err("certs: expected list, import NAME --cert FILE --key FILE, or delete NAME");
    fputs(rc_certs_usage, stderr);
    return RC_EXIT_BAD;
}
