/*
 * fuzz_config — libFuzzer target for the dynamic-configuration document
 * loader (src/conf.c): conf_parse for YAML and JSON, then a typed walk of
 * the tree through the SDK accessors (conf_session, conf_cfg_*).
 *
 * Input: the first byte picks the format — odd ('Y') YAML, even ('J')
 * JSON; bit 1 set ('[' / 'Z' ...) passes CONF_AUTO with a source name
 * ending in ".JSON" / ".yml" instead of the explicit format.  The rest is
 * the document.
 *
 * Properties checked (abort on violation):
 *  - a failed parse fills the error: a non-empty message, line and column
 *    >= 0, the source name;
 *  - a successful parse is an object, and it survives serialisation:
 *    json_dumps then jansson's loader gives an equal tree; for trees
 *    without NUL bytes in strings, conf_parse(JSON) of the dump succeeds
 *    and is equal too (what YAML produced, the JSON loader takes back);
 *  - the typed walk (every node, depth first, capped at FZ_MAX_WALK
 *    nodes): conf_cfg_type agrees with the json type, conf_cfg_len with
 *    the size, conf_cfg_at(i) gives the i-th element / member with its key
 *    and conf_cfg_get(key) finds the same member, past the end gives NULL;
 *    paths extend the parent's path; every typed reader answers OK,
 *    MISSING or INVALID as its contract says for the node's type, with the
 *    value (integers and reals read back from their text form, booleans
 *    from true/false strings, durations never negative and equal to
 *    conf_parse_duration's); errors are recorded (at most 101) and
 *    readable.
 *
 * Build and run: tests/fuzz/run.sh (see tests/fuzz/README.md).
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"

#define FZ_MAX_INPUT (256u * 1024u) /* longest document tried */
#define FZ_MAX_WALK 20000u          /* nodes visited by the typed walk */

#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz_config: property violated: %s (%s:%d)\n",   \
                    #cond, __FILE__, __LINE__);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)

/** State of one typed walk. */
struct fz_walk {
    struct conf_session *s; /* the session the nodes come from */
    size_t visited;         /* nodes visited so far */
};

/** The relais_cfg type a json value must report. */
static int fz_type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return RELAIS_CFG_MAP;
    case JSON_ARRAY: return RELAIS_CFG_LIST;
    case JSON_STRING: return RELAIS_CFG_STRING;
    case JSON_INTEGER: return RELAIS_CFG_INT;
    case JSON_REAL: return RELAIS_CFG_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return RELAIS_CFG_BOOL;
    case JSON_NULL: return RELAIS_CFG_NULL;
    }
    return -1;
}

/** 1 when some string (value or key) under v holds a NUL byte. */
static int fz_has_nul(const json_t *v)
{
    const char *k;
    json_t *c;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING:
        return strlen(json_string_value(v)) != json_string_length(v);
    case JSON_ARRAY:
        json_array_foreach(v, i, c) if (fz_has_nul(c)) return 1;
        return 0;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, c) if (fz_has_nul(c)) return 1;
        return 0;
    default:
        return 0;
    }
}

/** Checks the scalar readers on node n (key NULL: the node itself). */
static void fz_scalar(const relais_cfg *n)
{
    json_t *v = conf_node_json(n);
    const char *str = NULL;
    int64_t iv = 0, ms = -1;
    double dv = 0;
    int bv = -1, rc, t = fz_type_of(v);

    rc = conf_cfg_string(n, NULL, &str);
    switch (t) {
    case RELAIS_CFG_NULL:
        FZ_CHECK(rc == RELAIS_CFG_MISSING);
        break;
    case RELAIS_CFG_MAP:
    case RELAIS_CFG_LIST:
        FZ_CHECK(rc == RELAIS_CFG_INVALID);
        break;
    default:
        FZ_CHECK(rc == RELAIS_CFG_OK && str);
        break;
    }
    if (t == RELAIS_CFG_STRING) FZ_CHECK(str == json_string_value(v));
    if (t == RELAIS_CFG_INT) {
        char *end;
        long long x = strtoll(str, &end, 10);
        FZ_CHECK(*end == 0 && x == json_integer_value(v));
    }
    if (t == RELAIS_CFG_REAL) {
        char *end;
        double x = strtod(str, &end);
        FZ_CHECK(*end == 0 && x == json_real_value(v));
    }
    if (t == RELAIS_CFG_BOOL)
        FZ_CHECK(!strcmp(str, json_is_true(v) ? "true" : "false"));

    rc = conf_cfg_int(n, NULL, &iv);
    if (t == RELAIS_CFG_NULL) FZ_CHECK(rc == RELAIS_CFG_MISSING);
    if (t == RELAIS_CFG_INT) FZ_CHECK(rc == RELAIS_CFG_OK && iv == json_integer_value(v));
    if (t == RELAIS_CFG_REAL && rc == RELAIS_CFG_OK)
        FZ_CHECK((double)iv == json_real_value(v));
    if (t == RELAIS_CFG_BOOL || t == RELAIS_CFG_MAP || t == RELAIS_CFG_LIST)
        FZ_CHECK(rc == RELAIS_CFG_INVALID);
    if (t == RELAIS_CFG_STRING && rc == RELAIS_CFG_OK) {
        char *end;
        const char *s = json_string_value(v);
        long long x = strtoll(s, &end, 10);
        FZ_CHECK(*end == 0 && x == iv && s[0] != ' ');
    }

    rc = conf_cfg_bool(n, NULL, &bv);
    if (t == RELAIS_CFG_NULL) FZ_CHECK(rc == RELAIS_CFG_MISSING);
    if (t == RELAIS_CFG_BOOL) FZ_CHECK(rc == RELAIS_CFG_OK && bv == json_is_true(v));
    if (t == RELAIS_CFG_STRING) {
        const char *s = json_string_value(v);
        int want = !strcasecmp(s, "true") ? 1 : !strcasecmp(s, "false") ? 0 : -1;
        FZ_CHECK(want < 0 ? rc == RELAIS_CFG_INVALID : (rc == RELAIS_CFG_OK && bv == want));
    }
    if (t == RELAIS_CFG_INT || t == RELAIS_CFG_REAL || t == RELAIS_CFG_MAP ||
        t == RELAIS_CFG_LIST)
        FZ_CHECK(rc == RELAIS_CFG_INVALID);

    rc = conf_cfg_real(n, NULL, &dv);
    if (t == RELAIS_CFG_NULL) FZ_CHECK(rc == RELAIS_CFG_MISSING);
    if (t == RELAIS_CFG_INT || t == RELAIS_CFG_REAL)
        FZ_CHECK(rc == RELAIS_CFG_OK && dv == json_number_value(v));
    if (t == RELAIS_CFG_BOOL || t == RELAIS_CFG_MAP || t == RELAIS_CFG_LIST)
        FZ_CHECK(rc == RELAIS_CFG_INVALID);
    if (rc == RELAIS_CFG_OK) FZ_CHECK(dv == dv); /* never NaN */

    rc = conf_cfg_duration(n, NULL, &ms);
    if (t == RELAIS_CFG_NULL) FZ_CHECK(rc == RELAIS_CFG_MISSING);
    if (t == RELAIS_CFG_BOOL || t == RELAIS_CFG_MAP || t == RELAIS_CFG_LIST)
        FZ_CHECK(rc == RELAIS_CFG_INVALID);
    if (rc == RELAIS_CFG_OK) FZ_CHECK(ms >= 0);
    if (t == RELAIS_CFG_STRING) {
        int64_t ms2 = -1;
        int r2 = conf_parse_duration(json_string_value(v), &ms2);
        FZ_CHECK((r2 == 0) == (rc == RELAIS_CFG_OK));
        if (r2 == 0) FZ_CHECK(ms2 == ms);
    }
    if (t == RELAIS_CFG_INT && json_integer_value(v) >= 0 &&
        json_integer_value(v) <= INT64_MAX / 1000)
        FZ_CHECK(rc == RELAIS_CFG_OK && ms == json_integer_value(v) * 1000);
}

/** Walks node n (depth first), checking every accessor on it. */
static void fz_walk(struct fz_walk *w, const relais_cfg *n, int depth)
{
    json_t *v = conf_node_json(n);
    const char *path = conf_node_path(n), *key;
    size_t len, i, plen = strlen(path);
    const relais_cfg *c, *g;

    FZ_CHECK(v != NULL);
    if (++w->visited > FZ_MAX_WALK) return;
    FZ_CHECK(conf_cfg_type(n) == fz_type_of(v));
    fz_scalar(n);
    len = conf_cfg_len(n);
    if (json_is_object(v)) FZ_CHECK(len == json_object_size(v));
    else if (json_is_array(v)) FZ_CHECK(len == json_array_size(v));
    else FZ_CHECK(len == 0);
    for (i = 0; i < len && w->visited <= FZ_MAX_WALK; i++) {
        key = (const char *)1;
        c = conf_cfg_at(n, i, &key);
        FZ_CHECK(c != NULL);
        if (json_is_object(v)) {
            FZ_CHECK(key != NULL);
            FZ_CHECK(json_object_get(v, key) == conf_node_json(c));
            g = conf_cfg_get(n, key);
            FZ_CHECK(g && conf_node_json(g) == conf_node_json(c));
            /* a typed read through the parent's key agrees */
            if (json_is_string(conf_node_json(c))) {
                const char *s = NULL;
                FZ_CHECK(conf_cfg_string(n, key, &s) == RELAIS_CFG_OK &&
                         s == json_string_value(conf_node_json(c)));
            }
        } else {
            FZ_CHECK(key == NULL);
            FZ_CHECK(json_array_get(v, i) == conf_node_json(c));
        }
        /* the child's path extends ours */
        FZ_CHECK(!strncmp(conf_node_path(c), path, plen));
        if (depth < 300) fz_walk(w, c, depth + 1);
    }
    FZ_CHECK(conf_cfg_at(n, len, NULL) == NULL);
    if (!json_is_object(v)) FZ_CHECK(conf_cfg_get(n, "rule") == NULL);
}

/** Checks the error of a failed parse. */
static void fz_check_error(const struct conf_error *e, const char *source)
{
    FZ_CHECK(memchr(e->msg, 0, sizeof e->msg) && e->msg[0]);
    FZ_CHECK(e->line >= 0 && e->column >= 0);
    FZ_CHECK(!strcmp(e->source, source));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf_error err;
    struct fz_walk w;
    const char *source;
    json_t *root, *back;
    char *doc, *dump;
    int json, fmt;
    size_t i;

    if (size < 1 || size > FZ_MAX_INPUT) return 0;
    json = !(data[0] & 1);
    fmt = (data[0] & 2) ? CONF_AUTO : json ? CONF_JSON : CONF_YAML;
    source = json ? "fuzz.JSON" : "fuzz.yml";
    /* an exact-size heap copy: reads past the end are caught */
    doc = malloc(size - 1 ? size - 1 : 1);
    if (!doc) abort();
    memcpy(doc, data + 1, size - 1);
    memset(&err, 0x5a, sizeof err);
    root = conf_parse(doc, size - 1, fmt, source, &err);
    if (!root) {
        fz_check_error(&err, source);
        free(doc);
        return 0;
    }
    FZ_CHECK(json_is_object(root));

    /* serialisation round trip */
    dump = json_dumps(root, JSON_COMPACT);
    FZ_CHECK(dump != NULL);
    back = json_loads(dump, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    FZ_CHECK(back && json_equal(root, back));
    json_decref(back);
    if (!fz_has_nul(root)) {
        back = conf_parse(dump, strlen(dump), CONF_JSON, "dump.json", &err);
        if (!back) fprintf(stderr, "dump: %s\nerror: %s\n", dump, err.msg);
        FZ_CHECK(back && json_equal(root, back));
        json_decref(back);
    }
    free(dump);

    /* typed walk */
    w.s = conf_session_new(json ? "fuzz" : "");
    w.visited = 0;
    FZ_CHECK(w.s != NULL);
    fz_walk(&w, conf_session_root(w.s, root), 0);
    conf_cfg_error(conf_session_root(w.s, root), "http", "fuzz %s", "error");
    FZ_CHECK(conf_session_nerrors(w.s) <= 101);
    for (i = 0; i < conf_session_nerrors(w.s); i++)
        FZ_CHECK(conf_session_error(w.s, i) != NULL);
    FZ_CHECK(conf_session_error(w.s, conf_session_nerrors(w.s)) == NULL);
    conf_session_free(w.s);
    json_decref(root);
    free(doc);
    return 0;
}
