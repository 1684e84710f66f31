/*
 * Unit tests for src/kvconf.c: Traefik KV keys and container labels into
 * the jansson tree a YAML dynamic file gives (compared with conf_parse).
 */
#include "config.h"

#include "conf.h"
#include "kvconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/** Decodes pairs with the given separator, root and mode. */
static json_t *dec(const struct kvc_pair *p, size_t n, char sep,
                   const char *root, int labels, struct kvc_error *e)
{
    struct kvc_options o;

    o.sep = sep;
    o.root = root;
    o.labels = labels;
    return kvc_decode(p, n, &o, e);
}

/** Parses YAML (NUL-terminated); aborts the test run when it fails. */
static json_t *yaml(const char *s)
{
    struct conf_error ce;
    json_t *r = conf_parse(s, strlen(s), CONF_YAML, "test.yaml", &ce);

    if (!r) {
        printf("# YAML failed: %d:%d %s\n", ce.line, ce.column, ce.msg);
        exit(2);
    }
    return r;
}

/** json_equal, printing both trees when they differ. */
static int same(json_t *a, json_t *b)
{
    if (a && b && json_equal(a, b)) return 1;
    {
        char *x = a ? json_dumps(a, JSON_SORT_KEYS) : NULL;
        char *y = b ? json_dumps(b, JSON_SORT_KEYS) : NULL;
        printf("#   got:  %s\n#   want: %s\n", x ? x : "(null)",
               y ? y : "(null)");
        free(x);
        free(y);
    }
    return 0;
}

/** True when decoding failed with exactly this key and a message
 *  containing want. */
static int fails(json_t *r, const struct kvc_error *e, const char *key,
                 const char *want)
{
    if (!r && strcmp(e->key, key) == 0 && strstr(e->msg, want)) return 1;
    printf("#   result %s, error key \"%s\" msg \"%s\"\n",
           r ? "non-NULL" : "NULL", e->key, e->msg);
    printf("#   wanted key \"%s\" msg containing \"%s\"\n", key, want);
    json_decref(r);
    return 0;
}

/** Decodes a YAML document, compares with the decoded pairs, frees both. */
static int equals_yaml(json_t *got, const char *doc)
{
    json_t *want = yaml(doc);
    int r = same(got, want);

    json_decref(want);
    return r;
}

/** Deterministic shuffle (LCG) of n pairs. */
static void shuffle(struct kvc_pair *p, size_t n, unsigned *seed)
{
    size_t i;

    for (i = n; i > 1; i--) {
        size_t j;
        struct kvc_pair t;
        *seed = *seed * 1103515245u + 12345u;
        j = (*seed >> 8) % i;
        t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
}

/* ---- a full KV configuration -------------------------------------------- */

static const struct kvc_pair kv_full[] = {
    {"traefik/http/routers/r1/rule", "Host(`a.example`) && PathPrefix(`/api`)"},
    {"traefik/http/routers/r1/entryPoints/1", "websecure"},
    {"traefik/http/routers/r1/entryPoints/0", "web"},
    {"traefik/http/routers/r1/middlewares/0", "strip"},
    {"traefik/http/routers/r1/middlewares/1", "hdr"},
    {"traefik/http/routers/r1/service", "svc1"},
    {"traefik/http/routers/r1/priority", "42"},
    {"traefik/http/routers/r1/tls", "true"},
    {"traefik/http/routers/r1/tls/certResolver", "le"},
    {"traefik/http/routers/r1/tls/domains/0/main", "a.example"},
    {"traefik/http/routers/r1/tls/domains/0/sans/0", "b.example"},
    {"traefik/http/routers/r1/tls/domains/0/sans/1", "c.example"},
    {"traefik/http/routers/r2/rule", "Path(`/`)"},
    {"traefik/http/routers/r2/service", "svc2"},
    {"traefik/http/services/svc1/loadBalancer/servers/0/url",
     "http://10.0.0.1:80"},
    {"traefik/http/services/svc1/loadBalancer/servers/1/url",
     "http://10.0.0.2:80"},
    {"traefik/http/services/svc1/loadBalancer/servers/1/weight", "3"},
    {"traefik/http/services/svc1/loadBalancer/passHostHeader", "false"},
    {"traefik/http/services/svc1/loadBalancer/healthCheck/path", "/health"},
    {"traefik/http/services/svc1/loadBalancer/healthCheck/interval", "10s"},
    {"traefik/http/services/svc2/weighted/services/0/name", "svc1"},
    {"traefik/http/services/svc2/weighted/services/0/weight", "1"},
    {"traefik/http/middlewares/strip/stripPrefix/prefixes/0", "/api"},
    {"traefik/http/middlewares/strip/stripPrefix/prefixes/1", "/v1"},
    {"traefik/http/middlewares/hdr/headers/customRequestHeaders/X-A", "1"},
    {"traefik/http/middlewares/hdr/headers/customRequestHeaders/X-B", ""},
    {"traefik/tcp/routers/t1/rule", "HostSNI(`*`)"},
    {"traefik/tcp/routers/t1/service", "ts"},
    {"traefik/tcp/routers/t1/tls/passthrough", "true"},
    {"traefik/tcp/services/ts/loadBalancer/servers/0/address", "10.0.0.9:5432"},
    {"traefik/tls/options/modern/minVersion", "VersionTLS13"},
    {"traefik/tls/options/modern/cipherSuites/0", "TLS_AES_128_GCM_SHA256"},
    {"traefik/tls/certificates/0/certFile", "/c.pem"},
    {"traefik/tls/certificates/0/keyFile", "/k.pem"},
    /* outside the root: ignored */
    {"other/http/routers/x/rule", "Path(`/x`)"},
    {"traefikx/http/routers/x/rule", "Path(`/x`)"},
    {"/traefik/http/routers/x/rule", "Path(`/x`)"},
    {"traefik", "root value, ignored"},
};

static const char kv_full_yaml[] =
    "http:\n"
    "  routers:\n"
    "    r1:\n"
    "      rule: \"Host(`a.example`) && PathPrefix(`/api`)\"\n"
    "      entryPoints: [\"web\", \"websecure\"]\n"
    "      middlewares: [\"strip\", \"hdr\"]\n"
    "      service: \"svc1\"\n"
    "      priority: \"42\"\n"
    "      tls:\n"
    "        certResolver: \"le\"\n"
    "        domains:\n"
    "          - main: \"a.example\"\n"
    "            sans: [\"b.example\", \"c.example\"]\n"
    "    r2:\n"
    "      rule: \"Path(`/`)\"\n"
    "      service: \"svc2\"\n"
    "  services:\n"
    "    svc1:\n"
    "      loadBalancer:\n"
    "        servers:\n"
    "          - url: \"http://10.0.0.1:80\"\n"
    "          - url: \"http://10.0.0.2:80\"\n"
    "            weight: \"3\"\n"
    "        passHostHeader: \"false\"\n"
    "        healthCheck:\n"
    "          path: \"/health\"\n"
    "          interval: \"10s\"\n"
    "    svc2:\n"
    "      weighted:\n"
    "        services:\n"
    "          - name: \"svc1\"\n"
    "            weight: \"1\"\n"
    "  middlewares:\n"
    "    strip:\n"
    "      stripPrefix:\n"
    "        prefixes: [\"/api\", \"/v1\"]\n"
    "    hdr:\n"
    "      headers:\n"
    "        customRequestHeaders:\n"
    "          X-A: \"1\"\n"
    "          X-B: \"\"\n"
    "tcp:\n"
    "  routers:\n"
    "    t1:\n"
    "      rule: \"HostSNI(`*`)\"\n"
    "      service: \"ts\"\n"
    "      tls:\n"
    "        passthrough: \"true\"\n"
    "  services:\n"
    "    ts:\n"
    "      loadBalancer:\n"
    "        servers:\n"
    "          - address: \"10.0.0.9:5432\"\n"
    "tls:\n"
    "  options:\n"
    "    modern:\n"
    "      minVersion: \"VersionTLS13\"\n"
    "      cipherSuites: [\"TLS_AES_128_GCM_SHA256\"]\n"
    "  certificates:\n"
    "    - certFile: \"/c.pem\"\n"
    "      keyFile: \"/k.pem\"\n";

static void test_kv_full(void)
{
    struct kvc_error e;
    struct kvc_pair p[NELEM(kv_full)];
    json_t *ref, *r;
    unsigned seed = 7;
    int i, all = 1;

    ref = dec(kv_full, NELEM(kv_full), '/', "traefik", 0, &e);
    ok(ref != NULL, "full KV set decodes (%s: %s)", e.key, e.msg);
    ok(equals_yaml(ref, kv_full_yaml), "full KV set equals the YAML file");
    ok(json_array_size(json_object_get(
           json_object_get(json_object_get(json_object_get(ref, "http"),
                                           "routers"), "r1"),
           "entryPoints")) == 2,
       "entryPoints is an array of 2");
    ok(strcmp(e.msg, "") == 0 && strcmp(e.key, "") == 0,
       "error is cleared on success");

    memcpy(p, kv_full, sizeof p);
    for (i = 0; i < 25; i++) {
        shuffle(p, NELEM(p), &seed);
        r = dec(p, NELEM(p), '/', "traefik", 0, &e);
        if (!r || !json_equal(r, ref)) all = 0;
        json_decref(r);
    }
    ok(all, "25 shuffles of the KV set give the same tree");

    /* the same set with a different root, typed by the accessors */
    {
        struct conf_session *s = conf_session_new("");
        const relais_cfg *root = conf_session_root(s, ref);
        const relais_cfg *r1 = conf_cfg_get(
            conf_cfg_get(conf_cfg_get(root, "http"), "routers"), "r1");
        int64_t prio = 0;
        int b = 1;
        const relais_cfg *lb = conf_cfg_get(
            conf_cfg_get(conf_cfg_get(conf_cfg_get(root, "HTTP"), "services"),
                         "svc1"),
            "loadbalancer");

        ok(conf_cfg_int(r1, "priority", &prio) == 0 && prio == 42,
           "priority \"42\" reads as the integer 42");
        ok(conf_cfg_bool(lb, "passHostHeader", &b) == 0 && b == 0,
           "passHostHeader \"false\" reads as false (case-insensitive path)");
        conf_session_free(s);
    }
    json_decref(ref);
}

/* ---- root matching ------------------------------------------------------ */

static void test_root(void)
{
    struct kvc_error e;
    json_t *r;
    const struct kvc_pair a[] = {
        {"TraEfik/http/routers/r/rule", "Path(`/`)"},
        {"TRAEFIK/http/routers/r/service", "s"},
        {"traefik2/http/routers/x/rule", "no"},
        {"traefi", "no"},
        {"", "no"},
        {"traefik", "no"},
    };
    const struct kvc_pair nested[] = {
        {"a/b/http/routers/r/rule", "Path(`/`)"},
        {"A/B/http/routers/r/service", "s"},
        {"a/c/http/routers/x/rule", "no"},
        {"a/bb/http/routers/x/rule", "no"},
        {"a/http/routers/x/rule", "no"},
        {"a/b", "no"},
    };
    const struct kvc_pair none[] = {
        {"x/y", "1"},
        {"z", "2"},
    };

    r = dec(a, NELEM(a), '/', "traefik", 0, &e);
    ok(r != NULL, "root matched without regard to case");
    ok(equals_yaml(r, "http: {routers: {r: {rule: \"Path(`/`)\", "
                      "service: \"s\"}}}"),
       "only keys under the root are decoded");
    json_decref(r);

    r = dec(a, NELEM(a), '/', "TRAEFIK", 0, &e);
    ok(equals_yaml(r, "http: {routers: {r: {rule: \"Path(`/`)\", "
                      "service: \"s\"}}}"),
       "an upper-case root option matches too");
    json_decref(r);

    r = dec(nested, NELEM(nested), '/', "a/b", 0, &e);
    ok(equals_yaml(r, "http: {routers: {r: {rule: \"Path(`/`)\", "
                      "service: \"s\"}}}"),
       "nested root a/b");
    json_decref(r);

    r = dec(nested, NELEM(nested), '/', "a/b/", 0, &e);
    ok(equals_yaml(r, "http: {routers: {r: {rule: \"Path(`/`)\", "
                      "service: \"s\"}}}"),
       "nested root with a trailing separator");
    json_decref(r);

    r = dec(none, NELEM(none), '/', "traefik", 0, &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "no key under the root: an empty object");
    json_decref(r);

    r = dec(NULL, 0, '/', "traefik", 0, &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "no pairs: an empty object");
    json_decref(r);

    r = dec(none, NELEM(none), '/', NULL, 0, &e);
    ok(equals_yaml(r, "x: {y: \"1\"}\nz: \"2\""),
       "no root: every key is decoded");
    json_decref(r);
}

/* ---- lists -------------------------------------------------------------- */

static void test_lists(void)
{
    struct kvc_error e;
    json_t *r;
    const struct kvc_pair order[] = {
        {"t/l/2", "c"}, {"t/l/0", "a"}, {"t/l/10", "k"}, {"t/l/1", "b"},
        {"t/l/3", "d"}, {"t/l/4", "e"}, {"t/l/5", "f"}, {"t/l/6", "g"},
        {"t/l/7", "h"}, {"t/l/8", "i"}, {"t/l/9", "j"},
        {"t/o/1/x", "1x"}, {"t/o/0/y", "0y"}, {"t/o/1/y", "1y"},
        {"t/o/0/x", "0x"},
        {"t/m/1/0", "m10"}, {"t/m/0/1", "m01"}, {"t/m/0/0", "m00"},
    };
    const struct kvc_pair sparse[] = {
        {"t/l/0", "a"}, {"t/l/2", "c"},
    };
    const struct kvc_pair from1[] = {
        {"t/l/1", "a"}, {"t/l/2", "b"},
    };
    const struct kvc_pair repeated[] = {
        {"t/l/0", "a"}, {"t/l/1", "b"}, {"t/l/01", "c"},
    };
    const struct kvc_pair huge[] = {
        {"t/l/0", "a"}, {"t/l/99999999999999999999", "b"},
    };
    const struct kvc_pair mixed[] = {
        {"t/l/0", "a"}, {"t/l/name", "b"},
    };
    const struct kvc_pair mixed2[] = {
        {"t/l/name", "b"}, {"t/l/0", "a"},
    };

    r = dec(order, NELEM(order), '/', "t", 0, &e);
    ok(r != NULL, "lists decode (%s)", e.msg);
    ok(equals_yaml(r, "l: [a, b, c, d, e, f, g, h, i, j, k]\n"
                      "o: [{x: 0x, y: 0y}, {x: 1x, y: 1y}]\n"
                      "m: [[m00, m01], [m10]]\n"),
       "out-of-order indices, numeric (not string) ordering, nested lists");
    json_decref(r);

    r = dec(sparse, NELEM(sparse), '/', "t", 0, &e);
    ok(fails(r, &e, "t/l/2", "0..1"), "sparse indices: error names t/l/2");
    ok(strstr(e.msg, "gap") != NULL, "sparse message says gap (%s)", e.msg);
    r = dec(from1, NELEM(from1), '/', "t", 0, &e);
    ok(fails(r, &e, "t/l/1", "0..1"), "indices from 1: error");
    r = dec(repeated, NELEM(repeated), '/', "t", 0, &e);
    ok(!r && strstr(e.msg, "repeated") && strncmp(e.key, "t/l/", 4) == 0,
       "indices 1 and 01 collide: error (%s: %s)", e.key, e.msg);
    json_decref(r);
    r = dec(huge, NELEM(huge), '/', "t", 0, &e);
    ok(fails(r, &e, "t/l/99999999999999999999", "0..1"),
       "an overlong index is an error, not an overflow");
    r = dec(mixed, NELEM(mixed), '/', "t", 0, &e);
    ok(fails(r, &e, "t/l/0", "mixed"), "index and name mixed: error");
    r = dec(mixed2, NELEM(mixed2), '/', "t", 0, &e);
    ok(fails(r, &e, "t/l/0", "mixed"), "same, in the other order");
}

/* ---- conflicts, segments, limits ---------------------------------------- */

static void test_errors(void)
{
    struct kvc_error e;
    json_t *r;
    const struct kvc_pair vp[] = {
        {"t/r/rule", "Path(`/`)"}, {"t/r/rule/x", "y"},
    };
    const struct kvc_pair vp2[] = {
        {"t/r/rule/x", "y"}, {"t/r/rule", "Path(`/`)"},
    };
    const struct kvc_pair enable[] = {
        {"t/r/tls", "TRUE"}, {"t/r/tls/options", "o"},
        {"t/r/cookie", ""}, {"t/r/cookie/name", "n"},
        {"t/r/plain", "true"},
    };
    const struct kvc_pair falsy[] = {
        {"t/r/tls", "false"}, {"t/r/tls/options", "o"},
    };
    const struct kvc_pair empty1[] = {{"traefik//http", "x"}};
    const struct kvc_pair empty2[] = {{"traefik/http//routers/r", "x"}};
    const struct kvc_pair trailing[] = {{"traefik/http/", "x"}};
    const struct kvc_pair folders[] = {
        {"traefik/", ""}, {"traefik/http/", ""},
        {"traefik/http/routers/", ""}, {"traefik/http/routers/r/rule", "R"},
    };
    const struct kvc_pair dup_same[] = {
        {"t/a", "1"}, {"t/A", "1"}, {"t/a", "1"},
    };
    const struct kvc_pair dup_diff[] = {
        {"t/a", "1"}, {"t/A", "2"},
    };
    const struct kvc_pair badutf[] = {{"t/a", "\xff\xfe"}};
    const struct kvc_pair badkey[] = {{"t/\xc3", "v"}};
    const struct kvc_pair nullv[] = {{"t/a", NULL}};
    char deep[512], deeper[512], longk[5000], longer[5000];
    struct kvc_pair lim[1];
    struct kvc_options o;
    int i;

    r = dec(vp, NELEM(vp), '/', "t", 0, &e);
    ok(fails(r, &e, "t/r/rule", "parent"), "value and parent: error");
    ok(strstr(e.msg, "t/r/rule/x") != NULL, "message names the child key");
    r = dec(vp2, NELEM(vp2), '/', "t", 0, &e);
    ok(fails(r, &e, "t/r/rule", "parent"), "same, child first");

    r = dec(enable, NELEM(enable), '/', "t", 0, &e);
    ok(equals_yaml(r, "r: {tls: {options: o}, cookie: {name: n}, "
                      "plain: \"true\"}"),
       "tls=true / empty value next to children: children win");
    json_decref(r);
    r = dec(falsy, NELEM(falsy), '/', "t", 0, &e);
    ok(fails(r, &e, "t/r/tls", "parent"), "tls=false with children: error");

    r = dec(empty1, 1, '/', "traefik", 0, &e);
    ok(fails(r, &e, "traefik//http", "empty path segment"),
       "traefik//http: empty segment error");
    r = dec(empty2, 1, '/', "traefik", 0, &e);
    ok(fails(r, &e, "traefik/http//routers/r", "empty path segment"),
       "empty segment in the middle");
    r = dec(trailing, 1, '/', "traefik", 0, &e);
    ok(fails(r, &e, "traefik/http/", "empty path segment"),
       "trailing separator with a value: error");
    r = dec(folders, NELEM(folders), '/', "traefik", 0, &e);
    ok(equals_yaml(r, "http: {routers: {r: {rule: R}}}"),
       "folder markers (trailing separator, empty value) are skipped");
    json_decref(r);

    r = dec(dup_same, NELEM(dup_same), '/', "t", 0, &e);
    ok(equals_yaml(r, "A: \"1\""), "repeated key with the same value: ok");
    json_decref(r);
    r = dec(dup_diff, NELEM(dup_diff), '/', "t", 0, &e);
    ok(fails(r, &e, "t/A", "conflicting values"),
       "same key (up to case), different values: error");

    r = dec(badutf, 1, '/', "t", 0, &e);
    ok(fails(r, &e, "t/a", "UTF-8"), "invalid UTF-8 value: error");
    r = dec(badkey, 1, '/', "t", 0, &e);
    ok(fails(r, &e, "t/\xc3", "UTF-8"), "invalid UTF-8 key: error");
    r = dec(nullv, 1, '/', "t", 0, &e);
    ok(fails(r, &e, "t/a", "missing"), "NULL value: error");

    /* depth: 32 segments below the root are fine, 33 are not */
    strcpy(deep, "t");
    for (i = 0; i < 32; i++) strcat(deep, "/s");
    strcpy(deeper, deep);
    strcat(deeper, "/s");
    lim[0].key = deep;
    lim[0].value = "v";
    r = dec(lim, 1, '/', "t", 0, &e);
    ok(r != NULL, "32 segments below the root decode");
    json_decref(r);
    lim[0].key = deeper;
    r = dec(lim, 1, '/', "t", 0, &e);
    ok(fails(r, &e, deeper, "deeper than 32"), "33 segments: error");

    /* length: 4096 bytes fine, 4097 not */
    memset(longk, 'k', sizeof longk);
    memcpy(longk, "t/", 2);
    longk[4096] = '\0';
    memcpy(longer, longk, 4096);
    longer[4096] = 'k';
    longer[4097] = '\0';
    lim[0].key = longk;
    r = dec(lim, 1, '/', "t", 0, &e);
    ok(r && json_object_size(r) == 1, "a 4096-byte key decodes");
    json_decref(r);
    lim[0].key = longer;
    r = dec(lim, 1, '/', "t", 0, &e);
    ok(!r && strstr(e.msg, "longer than 4096") &&
           strlen(e.key) == sizeof e.key - 1,
       "a 4097-byte key: error, key truncated into the error (%s)", e.msg);
    json_decref(r);

    /* pair count cap: checked before any pair is read */
    lim[0].key = "t/a";
    r = dec(lim, 1000001, '/', "t", 0, &e);
    ok(!r && strstr(e.msg, "1000000"), "more than 1,000,000 pairs: error");
    json_decref(r);

    o.sep = '\0';
    o.root = "t";
    o.labels = 0;
    r = kvc_decode(lim, 1, &o, &e);
    ok(!r && e.msg[0], "NUL separator: error");
    json_decref(r);
    r = kvc_decode(lim, 1, NULL, NULL);
    ok(r == NULL, "NULL options and NULL err: NULL, no crash");
}

/* ---- case merging ------------------------------------------------------- */

static void test_case(void)
{
    struct kvc_error e;
    struct kvc_pair p[] = {
        {"traefik/http/routers/R1/rule", "A"},
        {"traefik/HTTP/Routers/r1/service", "s"},
        {"traefik/http/routers/r1/entrypoints/0", "web"},
        {"traefik/Http/routers/r1/EntryPoints/1", "ws"},
        {"traefik/http/services/s/loadbalancer/servers/0/url", "u"},
    };
    json_t *ref, *r;
    unsigned seed = 99;
    int i, all = 1;

    ref = dec(p, NELEM(p), '/', "traefik", 0, &e);
    ok(equals_yaml(ref, "HTTP:\n"
                        "  Routers: {R1: {rule: A, service: s, "
                        "EntryPoints: [web, ws]}}\n"
                        "  services: {s: {loadbalancer: {servers: "
                        "[{url: u}]}}}\n"),
       "case variants merge; the byte-wise smallest spelling is kept");
    for (i = 0; i < 20; i++) {
        shuffle(p, NELEM(p), &seed);
        r = dec(p, NELEM(p), '/', "traefik", 0, &e);
        if (!r || !json_equal(r, ref)) all = 0;
        json_decref(r);
    }
    ok(all, "spelling does not depend on pair order");
    json_decref(ref);
}

/* ---- labels ------------------------------------------------------------- */

static const struct kvc_pair labels_full[] = {
    {"traefik.enable", "true"},
    {"traefik.docker.network", "front"},
    {"traefik.http.routers.r1.rule", "Header(`X-A`, `b`) || Path(`/a,b`)"},
    {"traefik.http.routers.r1.entrypoints", "web, websecure"},
    {"traefik.http.routers.r1.middlewares", "strip,auth"},
    {"traefik.http.routers.r1.service", "svc"},
    {"traefik.http.routers.r1.tls", "true"},
    {"traefik.http.routers.r1.tls.certresolver", "le"},
    {"traefik.http.routers.r1.tls.domains[1].main", "d.example"},
    {"traefik.http.routers.r1.tls.domains[0].main", "a.example"},
    {"traefik.http.routers.r1.tls.domains[0].sans", "b.example, c.example"},
    {"traefik.http.services.svc.loadbalancer.server.port", "8080"},
    {"traefik.http.services.svc.loadbalancer.healthcheck.status", "200"},
    {"traefik.http.services.multi.loadbalancer.servers.1.url", "http://b"},
    {"traefik.http.services.multi.loadbalancer.servers.0.url", "http://a"},
    {"traefik.http.middlewares.strip.stripprefix.prefixes", "/a,/b"},
    {"traefik.http.middlewares.auth.basicauth.users", "u:h1, v:h2"},
    {"traefik.http.middlewares.rx.redirectregex.regex", "^/(a|b){1,3}$"},
    {"traefik.http.middlewares.rx.redirectregex.replacement", "/x,y"},
    {"traefik.http.middlewares.sr.stripprefixregex.regex", "^/a, ^/b"},
    {"traefik.http.middlewares.err.errors.status", "500-599, 404"},
    {"traefik.http.middlewares.ip.ipallowlist.sourcerange",
     " 10.0.0.0/8 ,\t192.168.0.0/16 , "},
    {"traefik.http.middlewares.ip.ipallowlist.ipstrategy.excludedips",
     "1.2.3.4"},
    {"traefik.http.middlewares.cors.headers.accesscontrolallowmethods",
     "GET,POST"},
    {"traefik.http.middlewares.cors.headers.customresponseheaders.X-List",
     "a, b"},
    {"traefik.http.middlewares.cert.passtlsclientcert.info.sans", "true"},
    {"traefik.http.middlewares.cmp.compress.encodings", "gzip, br"},
    {"traefik.tcp.routers.t.entrypoints", "pg"},
    {"traefik.tcp.routers.t.rule", "HostSNI(`*`)"},
    {"com.docker.compose.project", "demo"},
};

static const char labels_yaml[] =
    "enable: \"true\"\n"
    "docker: {network: front}\n"
    "http:\n"
    "  routers:\n"
    "    r1:\n"
    "      rule: \"Header(`X-A`, `b`) || Path(`/a,b`)\"\n"
    "      entrypoints: [web, websecure]\n"
    "      middlewares: [strip, auth]\n"
    "      service: svc\n"
    "      tls:\n"
    "        certresolver: le\n"
    "        domains:\n"
    "          - main: a.example\n"
    "            sans: [b.example, c.example]\n"
    "          - main: d.example\n"
    "  services:\n"
    "    svc: {loadbalancer: {server: {port: \"8080\"}, "
    "healthcheck: {status: \"200\"}}}\n"
    "    multi: {loadbalancer: {servers: [{url: \"http://a\"}, "
    "{url: \"http://b\"}]}}\n"
    "  middlewares:\n"
    "    strip: {stripprefix: {prefixes: [/a, /b]}}\n"
    "    auth: {basicauth: {users: [\"u:h1\", \"v:h2\"]}}\n"
    "    rx: {redirectregex: {regex: \"^/(a|b){1,3}$\", "
    "replacement: \"/x,y\"}}\n"
    "    sr: {stripprefixregex: {regex: [\"^/a\", \"^/b\"]}}\n"
    "    err: {errors: {status: [\"500-599\", \"404\"]}}\n"
    "    ip: {ipallowlist: {sourcerange: [10.0.0.0/8, 192.168.0.0/16], "
    "ipstrategy: {excludedips: [1.2.3.4]}}}\n"
    "    cors: {headers: {accesscontrolallowmethods: [GET, POST], "
    "customresponseheaders: {X-List: \"a, b\"}}}\n"
    "    cert: {passtlsclientcert: {info: {sans: \"true\"}}}\n"
    "    cmp: {compress: {encodings: [gzip, br]}}\n"
    "tcp:\n"
    "  routers:\n"
    "    t: {entrypoints: [pg], rule: \"HostSNI(`*`)\"}\n";

static void test_labels(void)
{
    struct kvc_error e;
    struct kvc_pair p[NELEM(labels_full)];
    json_t *r, *v;
    unsigned seed = 3;
    int i, all = 1;
    const struct kvc_pair idx[] = {
        {"traefik.http.routers.r.entrypoints.1", "b,c"},
        {"traefik.http.routers.r.entrypoints.0", "a"},
        {"traefik.http.routers.r.middlewares[0]", "m"},
    };
    const struct kvc_pair empty_list[] = {
        {"traefik.http.routers.r.middlewares", ""},
    };
    const struct kvc_pair bad1[] = {{"traefik.a.domains[x].main", "v"}};
    const struct kvc_pair bad2[] = {{"traefik.a.domains[0.main", "v"}};
    const struct kvc_pair bad3[] = {{"traefik.a.[0].main", "v"}};
    const struct kvc_pair bad4[] = {{"traefik.a.b[0]c.d", "v"}};
    const struct kvc_pair bad5[] = {{"traefik..http", "v"}};
    const struct kvc_pair kvbr[] = {{"t/a[0]", "v"}};

    r = dec(labels_full, NELEM(labels_full), '.', "traefik", 1, &e);
    ok(r != NULL, "label set decodes (%s: %s)", e.key, e.msg);
    ok(equals_yaml(r, labels_yaml), "label set equals the YAML file");
    v = json_object_get(json_object_get(
            json_object_get(json_object_get(r, "http"), "routers"), "r1"),
        "rule");
    ok(json_is_string(v) && strchr(json_string_value(v), ','),
       "a rule with commas stays one string");
    v = json_object_get(json_object_get(
            json_object_get(json_object_get(json_object_get(r, "http"),
                                            "services"), "svc"),
            "loadbalancer"), "server");
    ok(json_is_string(json_object_get(v, "port")),
       "server.port stays the string \"8080\"");
    json_decref(r);

    memcpy(p, labels_full, sizeof p);
    for (i = 0; i < 25; i++) {
        shuffle(p, NELEM(p), &seed);
        r = dec(p, NELEM(p), '.', "traefik", 1, &e);
        if (!r || !equals_yaml(r, labels_yaml)) all = 0;
        json_decref(r);
    }
    ok(all, "25 shuffles of the label set give the same tree");

    r = dec(labels_full, NELEM(labels_full), '.', "traefik", 0, &e);
    v = json_object_get(json_object_get(
            json_object_get(json_object_get(r, "http"), "routers"), "r1"),
        "entrypoints");
    ok(json_is_string(v) && strcmp(json_string_value(v), "web, websecure") == 0,
       "without labels=1 a comma list is not split");
    json_decref(r);

    r = dec(idx, NELEM(idx), '.', "traefik", 1, &e);
    ok(equals_yaml(r, "http: {routers: {r: {entrypoints: [a, \"b,c\"], "
                      "middlewares: [m]}}}"),
       "explicit indices on a slice field: a list, items not split");
    json_decref(r);

    r = dec(empty_list, 1, '.', "traefik", 1, &e);
    ok(equals_yaml(r, "http: {routers: {r: {middlewares: []}}}"),
       "an empty slice-field value is an empty list");
    json_decref(r);

    r = dec(bad1, 1, '.', "traefik", 1, &e);
    ok(fails(r, &e, "traefik.a.domains[x].main", "malformed list index"),
       "domains[x]: error");
    r = dec(bad2, 1, '.', "traefik", 1, &e);
    ok(fails(r, &e, "traefik.a.domains[0.main", "malformed list index"),
       "unclosed bracket: error");
    r = dec(bad3, 1, '.', "traefik", 1, &e);
    ok(fails(r, &e, "traefik.a.[0].main", "without a name"),
       "index without a name: error");
    r = dec(bad4, 1, '.', "traefik", 1, &e);
    ok(fails(r, &e, "traefik.a.b[0]c.d", "malformed list index"),
       "text after an index: error");
    r = dec(bad5, 1, '.', "traefik", 1, &e);
    ok(fails(r, &e, "traefik..http", "empty path segment"),
       "traefik..http: empty segment error");
    r = dec(kvbr, 1, '/', "t", 0, &e);
    ok(equals_yaml(r, "\"a[0]\": v"), "brackets are literal in KV mode");
    json_decref(r);
}

/* ---- patterns and scale ------------------------------------------------- */

static void test_patterns(void)
{
    struct kvc_error e;
    json_t *r;
    const struct kvc_pair p[] = {
        {"traefik.tls.stores.default.defaultgeneratedcert.domain.sans", "a,b"},
        {"traefik.x.domains.foo.sans", "a,b"},
        {"traefik.y.domains.0.sans", "a,b"},
        {"traefik.http.services.s.loadbalancer.healthcheck.status", "2,3"},
        {"traefik.http.middlewares.m.replacepathregex.regex", "a,b"},
    };

    r = dec(p, NELEM(p), '.', "traefik", 1, &e);
    ok(equals_yaml(r, "tls: {stores: {default: {defaultgeneratedcert: "
                      "{domain: {sans: [a, b]}}}}}\n"
                      "x: {domains: {foo: {sans: \"a,b\"}}}\n"
                      "y: {domains: [{sans: [a, b]}]}\n"
                      "http: {services: {s: {loadbalancer: {healthcheck: "
                      "{status: \"2,3\"}}}}, middlewares: {m: "
                      "{replacepathregex: {regex: \"a,b\"}}}}\n"),
       "slice patterns: '#' needs an index; status/regex only where lists");
    json_decref(r);
}

static void test_scale(void)
{
    enum { NR = 20000, NL = 3000 };
    struct kvc_pair *p = calloc(2 * NR + NL, sizeof *p);
    char *keys = calloc(2 * NR + NL, 64);
    struct kvc_error e;
    json_t *r, *routers, *list;
    size_t i, n = 0, good = 0;

    if (!p || !keys) exit(2);
    for (i = 0; i < NR; i++) {
        char *k = keys + 64 * n;
        snprintf(k, 64, "traefik/http/routers/r%zu/rule", i);
        p[n].key = k;
        p[n++].value = "Path(`/`)";
        k = keys + 64 * n;
        snprintf(k, 64, "traefik/http/routers/R%zu/service", i);
        p[n].key = k;
        p[n++].value = "s";
    }
    for (i = 0; i < NL; i++) {
        char *k = keys + 64 * n;
        snprintf(k, 64, "traefik/list/%zu", NL - 1 - i);
        p[n].key = k;
        p[n++].value = k + 13;
    }
    r = dec(p, n, '/', "traefik", 0, &e);
    routers = json_object_get(json_object_get(r, "http"), "routers");
    list = json_object_get(r, "list");
    ok(json_object_size(routers) == NR,
       "%d routers, two spellings each, merge into %d nodes", NR, NR);
    for (i = 0; i < NL; i++) {
        const char *v = json_string_value(json_array_get(list, i));
        if (v && (size_t)atoi(v) == i) good++;
    }
    ok(json_array_size(list) == NL && good == NL,
       "a %d-element list given in reverse comes out in order", NL);
    json_decref(r);
    free(keys);
    free(p);
}

/* A list at the top level is refused (it would read as an empty
 * configuration): found by tests/fuzz/fuzz_kv. */
static void test_toplevel_list(void)
{
    struct kvc_error e;
    const struct kvc_pair under[] = {{"traefik/0", "x"}};
    const struct kvc_pair bare[] = {{"0", "x"}, {"1", "y"}};
    json_t *r;

    r = dec(under, NELEM(under), '/', "traefik", 0, &e);
    ok(fails(r, &e, "traefik/0", "list index at the top level"),
       "traefik/0 under the root: refused");
    r = dec(bare, NELEM(bare), '/', NULL, 0, &e);
    ok(fails(r, &e, "0", "list index at the top level"), "0 and 1 without a root: refused");
}

int main(void)
{
    test_toplevel_list();
    test_kv_full();
    test_root();
    test_lists();
    test_errors();
    test_case();
    test_labels();
    test_patterns();
    test_scale();
    return tap_done();
}
