/*
 * Unit tests for src/conf.c: YAML/JSON documents into jansson, durations,
 * and the typed configuration accessors with their error paths.
 */
#include "config.h"

#include "conf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

/** Parses a YAML string (NUL-terminated) as "test.yaml". */
static json_t *yaml(const char *s, struct conf_error *err)
{
    return conf_parse(s, strlen(s), CONF_YAML, "test.yaml", err);
}

/** Parses a JSON string as "test.json". */
static json_t *jsn(const char *s, struct conf_error *err)
{
    return conf_parse(s, strlen(s), CONF_JSON, "test.json", err);
}

/** True when the last recorded error of s is exactly want. */
static int last_error_is(const struct conf_session *s, const char *want)
{
    size_t n = conf_session_nerrors(s);
    const char *got = n ? conf_session_error(s, n - 1) : NULL;

    if (got && strcmp(got, want) == 0) return 1;
    printf("#   got error: %s\n#  want error: %s\n", got ? got : "(none)",
           want);
    return 0;
}

/** True when the error is at line:column and msg contains want. */
static int err_is(const struct conf_error *e, int line, int column,
                  const char *want)
{
    if (e->line == line && e->column == column && strstr(e->msg, want))
        return 1;
    printf("#   got %s:%d:%d: %s\n", e->source, e->line, e->column, e->msg);
    return 0;
}

static void test_scalars(void)
{
    struct conf_error e;
    const char *doc =
        "n1: null\nn2: Null\nn3: NULL\nn4: ~\nn5:\n"
        "b1: true\nb2: True\nb3: TRUE\nb4: false\nb5: False\nb6: FALSE\n"
        "i1: 42\ni2: -17\ni3: +8\ni4: 0o17\ni5: 0x1F\ni6: 007\n"
        "i7: 99999999999999999999\ni8: 0x\n"
        "f1: 1.5\nf2: -.5\nf3: 1e3\nf4: 2.5E-2\nf5: 3.\nf6: .inf\nf7: .nan\n"
        "f8: 1e999\n"
        "s1: yes\ns2: \"42\"\ns3: 'true'\ns4: \"\"\ns5: hello world\n"
        "s6: |\n  lit\n  two\ns7: >\n  fold\n  ed\ns8: !!str 12\n"
        "s9: \"a\\0b\"\ns10: 1.2.3\ns11: 0o8\ns12: '~'\ns13: TRue\n";
    json_t *r = yaml(doc, &e);
    json_t *v;

    ok(r != NULL, "scalar document parses (%s)", r ? "" : e.msg);
    if (!r) return;
    ok(json_is_null(json_object_get(r, "n1")) &&
           json_is_null(json_object_get(r, "n2")) &&
           json_is_null(json_object_get(r, "n3")) &&
           json_is_null(json_object_get(r, "n4")) &&
           json_is_null(json_object_get(r, "n5")),
       "null, Null, NULL, ~ and empty are null");
    ok(json_is_true(json_object_get(r, "b1")) &&
           json_is_true(json_object_get(r, "b2")) &&
           json_is_true(json_object_get(r, "b3")),
       "true, True, TRUE are true");
    ok(json_is_false(json_object_get(r, "b4")) &&
           json_is_false(json_object_get(r, "b5")) &&
           json_is_false(json_object_get(r, "b6")),
       "false, False, FALSE are false");
    v = json_object_get(r, "i1");
    ok(json_is_integer(v) && json_integer_value(v) == 42, "42 is an integer");
    v = json_object_get(r, "i2");
    ok(json_is_integer(v) && json_integer_value(v) == -17, "-17");
    v = json_object_get(r, "i3");
    ok(json_is_integer(v) && json_integer_value(v) == 8, "+8");
    v = json_object_get(r, "i4");
    ok(json_is_integer(v) && json_integer_value(v) == 15, "0o17 is 15");
    v = json_object_get(r, "i5");
    ok(json_is_integer(v) && json_integer_value(v) == 31, "0x1F is 31");
    v = json_object_get(r, "i6");
    ok(json_is_integer(v) && json_integer_value(v) == 7, "007 is 7");
    v = json_object_get(r, "i7");
    ok(json_is_string(v) &&
           strcmp(json_string_value(v), "99999999999999999999") == 0,
       "an integer that overflows stays a string");
    v = json_object_get(r, "i8");
    ok(json_is_string(v) && strcmp(json_string_value(v), "0x") == 0,
       "0x alone is a string");
    v = json_object_get(r, "f1");
    ok(json_is_real(v) && json_real_value(v) == 1.5, "1.5 is a real");
    v = json_object_get(r, "f2");
    ok(json_is_real(v) && json_real_value(v) == -0.5, "-.5 is a real");
    v = json_object_get(r, "f3");
    ok(json_is_real(v) && json_real_value(v) == 1000.0, "1e3 is a real");
    v = json_object_get(r, "f4");
    ok(json_is_real(v) && json_real_value(v) == 0.025, "2.5E-2 is a real");
    v = json_object_get(r, "f5");
    ok(json_is_real(v) && json_real_value(v) == 3.0, "3. is a real");
    v = json_object_get(r, "f6");
    ok(json_is_string(v) && strcmp(json_string_value(v), ".inf") == 0,
       ".inf stays a string (JSON has no infinity)");
    v = json_object_get(r, "f7");
    ok(json_is_string(v) && strcmp(json_string_value(v), ".nan") == 0,
       ".nan stays a string");
    v = json_object_get(r, "f8");
    ok(json_is_string(v), "1e999 (overflow) stays a string");
    v = json_object_get(r, "s1");
    ok(json_is_string(v) && strcmp(json_string_value(v), "yes") == 0,
       "yes is a string (YAML 1.2, not 1.1)");
    v = json_object_get(r, "s2");
    ok(json_is_string(v) && strcmp(json_string_value(v), "42") == 0,
       "double-quoted 42 is a string");
    v = json_object_get(r, "s3");
    ok(json_is_string(v) && strcmp(json_string_value(v), "true") == 0,
       "single-quoted true is a string");
    v = json_object_get(r, "s4");
    ok(json_is_string(v) && json_string_length(v) == 0,
       "\"\" is an empty string, not null");
    v = json_object_get(r, "s5");
    ok(json_is_string(v) && strcmp(json_string_value(v), "hello world") == 0,
       "plain text");
    v = json_object_get(r, "s6");
    ok(json_is_string(v) && strcmp(json_string_value(v), "lit\ntwo\n") == 0,
       "literal block");
    v = json_object_get(r, "s7");
    ok(json_is_string(v) && strcmp(json_string_value(v), "fold ed\n") == 0,
       "folded block");
    v = json_object_get(r, "s8");
    ok(json_is_string(v) && strcmp(json_string_value(v), "12") == 0,
       "!!str 12 is a string");
    v = json_object_get(r, "s9");
    ok(json_is_string(v) && json_string_length(v) == 3 &&
           memcmp(json_string_value(v), "a\0b", 3) == 0,
       "\\0 escape kept inside a string");
    v = json_object_get(r, "s10");
    ok(json_is_string(v) && strcmp(json_string_value(v), "1.2.3") == 0,
       "1.2.3 is a string");
    v = json_object_get(r, "s11");
    ok(json_is_string(v) && strcmp(json_string_value(v), "0o8") == 0,
       "0o8 is a string");
    v = json_object_get(r, "s12");
    ok(json_is_string(v) && strcmp(json_string_value(v), "~") == 0,
       "quoted ~ is a string");
    v = json_object_get(r, "s13");
    ok(json_is_string(v) && strcmp(json_string_value(v), "TRue") == 0,
       "TRue is a string");
    ok(json_is_object(r) && json_object_size(r) == 40, "40 keys (%zu)",
       json_object_size(r));
    json_decref(r);

    r = yaml("list: [1, two, \"3\", {a: b}]\nflow: {x: 1, y: [a, b]}\n", &e);
    ok(r && json_array_size(json_object_get(r, "list")) == 4 &&
           json_is_integer(json_array_get(json_object_get(r, "list"), 0)) &&
           json_is_string(json_array_get(json_object_get(r, "list"), 2)) &&
           json_is_object(json_array_get(json_object_get(r, "list"), 3)),
       "flow sequences and mappings");
    json_decref(r);
}

static void test_anchors(void)
{
    struct conf_error e;
    json_t *r, *v;
    char *dump;
    const char *doc =
        "base: &b {a: 1, b: 2}\n"
        "other: &o {c: 3, a: 9}\n"
        "copy: *b\n"
        "merged:\n  <<: *b\n  b: 20\n  d: 4\n"
        "multi:\n  b: 0\n  <<: [*b, *o]\n"
        "inline:\n  <<: {z: 26}\n  y: 25\n"
        "scalar: &s hello\n"
        "again: *s\n"
        "list: &l [1, 2]\n"
        "lists: [*l, *l]\n";

    r = yaml(doc, &e);
    ok(r != NULL, "anchors document parses (%s)", r ? "" : e.msg);
    if (!r) return;
    v = json_object_get(r, "copy");
    ok(json_equal(v, json_object_get(r, "base")) &&
           v != json_object_get(r, "base"),
       "alias is an equal deep copy");
    dump = json_dumps(json_object_get(r, "merged"), JSON_SORT_KEYS | JSON_COMPACT);
    ok(dump && strcmp(dump, "{\"a\":1,\"b\":20,\"d\":4}") == 0,
       "merge key: explicit key wins (%s)", dump ? dump : "");
    free(dump);
    dump = json_dumps(json_object_get(r, "multi"), JSON_SORT_KEYS | JSON_COMPACT);
    ok(dump && strcmp(dump, "{\"a\":1,\"b\":0,\"c\":3}") == 0,
       "merge list: earlier source wins, explicit key before it wins (%s)",
       dump ? dump : "");
    free(dump);
    dump = json_dumps(json_object_get(r, "inline"), JSON_SORT_KEYS | JSON_COMPACT);
    ok(dump && strcmp(dump, "{\"y\":25,\"z\":26}") == 0, "inline merge (%s)",
       dump ? dump : "");
    free(dump);
    ok(json_object_get(json_object_get(r, "merged"), "<<") == NULL,
       "<< is not kept as a key");
    ok(strcmp(json_string_value(json_object_get(r, "again")), "hello") == 0,
       "scalar alias");
    dump = json_dumps(json_object_get(r, "lists"), JSON_COMPACT);
    ok(dump && strcmp(dump, "[[1,2],[1,2]]") == 0, "sequence aliases (%s)",
       dump ? dump : "");
    free(dump);
    json_decref(r);

    r = yaml("'<<': 1\n", &e);
    ok(r && json_integer_value(json_object_get(r, "<<")) == 1,
       "quoted << is an ordinary key");
    json_decref(r);

    r = yaml("a: 1\nb: *nope\n", &e);
    ok(!r && err_is(&e, 2, 4, "undefined alias \"nope\""), "undefined alias");
    r = yaml("a: &x [1, *x]\n", &e);
    ok(!r && strstr(e.msg, "undefined alias"), "recursive alias refused");
    r = yaml("a: &x 1\nb:\n  <<: *x\n", &e);
    ok(!r && err_is(&e, 3, 7, "merge key"), "merge of a scalar refused (%s)",
       e.msg);
    r = yaml("a: &x 1\nb:\n  <<: [*x]\n", &e);
    ok(!r && strstr(e.msg, "merge key"), "merge of a list of scalars refused");
}

static void test_billion_laughs(void)
{
    struct conf_error e;
    json_t *r;
    const char *doc =
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    char deep[2000];
    size_t i;

    r = yaml(doc, &e);
    ok(!r && strstr(e.msg, "too many nodes") && e.line >= 6,
       "billion laughs refused (%d: %s)", e.line, e.msg);
    json_decref(r);

    /* small expansions still work */
    r = yaml("a: &a [x, y]\nb: &b [*a, *a]\nc: [*b, *b]\n", &e);
    ok(r && json_array_size(json_array_get(json_object_get(r, "c"), 1)) == 2,
       "modest aliasing accepted");
    json_decref(r);

    /* nesting cap */
    for (i = 0; i < 300; i++) deep[i] = '[';
    memcpy(deep, "a: ", 3);
    deep[300] = '\0';
    r = yaml(deep, &e);
    ok(!r && strstr(e.msg, "nesting too deep"), "nesting cap (%s)", e.msg);
    for (i = 0; i < 200; i++) deep[3 + i] = '[';
    for (i = 0; i < 200; i++) deep[203 + i] = ']';
    deep[403] = '\0';
    r = yaml(deep, &e);
    ok(r != NULL, "200 levels accepted (%s)", r ? "" : e.msg);
    json_decref(r);

    /* an alias cannot push the nesting past the cap */
    {
        char two[1200];
        size_t n = 0;

        n += (size_t)sprintf(two + n, "a: &a ");
        for (i = 0; i < 200; i++) two[n++] = '[';
        for (i = 0; i < 200; i++) two[n++] = ']';
        n += (size_t)sprintf(two + n, "\nb: ");
        for (i = 0; i < 100; i++) two[n++] = '[';
        n += (size_t)sprintf(two + n, "*a");
        for (i = 0; i < 100; i++) two[n++] = ']';
        two[n] = '\0';
        r = yaml(two, &e);
        ok(!r && e.line == 2 && strstr(e.msg, "nesting too deep"),
           "alias past the nesting cap refused (%d: %s)", e.line, e.msg);
    }
    r = yaml("a: &a x\n*a : 1\n", &e);
    ok(!r && err_is(&e, 2, 1, "aliases are not supported as mapping keys"),
       "alias as a key refused");
}

static void test_errors(void)
{
    struct conf_error e;
    json_t *r;

    r = yaml("a: 1\nb: 2\na: 3\n", &e);
    ok(!r && err_is(&e, 3, 1, "duplicate key \"a\""),
       "YAML duplicate key at 3:1");
    ok(strcmp(e.source, "test.yaml") == 0, "source is kept");
    r = yaml("x:\n  y: 1\n  z: 2\n  y: 3\n", &e);
    ok(!r && err_is(&e, 4, 3, "duplicate key \"y\""),
       "nested YAML duplicate key at 4:3");
    r = jsn("{\n  \"a\": 1,\n  \"a\": 2\n}\n", &e);
    ok(!r && e.line == 3 && strstr(e.msg, "duplicate"),
       "JSON duplicate key on line 3 (%d:%d %s)", e.line, e.column, e.msg);
    ok(strcmp(e.source, "test.json") == 0, "JSON source is kept");

    r = yaml("a: 1\nb: [1, 2\nc: 3\n", &e);
    ok(!r && e.line == 3 && e.column == 2 &&
           strstr(e.msg, "flow sequence"),
       "unterminated flow sequence (%d:%d %s)", e.line, e.column, e.msg);
    r = yaml("a: b: c\n", &e);
    ok(!r && err_is(&e, 1, 5, "mapping values are not allowed"),
       "mapping value in a plain scalar at 1:5");
    r = yaml("a:\n  b: 1\n c: 2\n", &e);
    ok(!r && e.line == 3 && e.column == 2,
       "bad indentation at 3:2 (%d:%d %s)", e.line, e.column, e.msg);
    r = yaml("a: \"unterminated\n", &e);
    ok(!r && e.line == 2 && strstr(e.msg, "quoted scalar"),
       "unterminated quote (%d:%d %s)", e.line, e.column, e.msg);
    r = jsn("{\"a\": 1,\n \"b\": }\n", &e);
    ok(!r && e.line == 2 && e.column > 0, "JSON syntax error on line 2 (%d:%d %s)",
       e.line, e.column, e.msg);
    r = yaml("a: 1\n\x01\n", &e);
    ok(!r && e.line == 2 && e.column == 1 && strstr(e.msg, "control"),
       "control byte refused at 2:1 (%d:%d %s)", e.line, e.column, e.msg);

    r = yaml("[a, b]: 1\n", &e);
    ok(!r && err_is(&e, 1, 1, "mapping keys must be scalars"),
       "non-scalar key refused");

    r = yaml("- a\n- b\n", &e);
    ok(!r && err_is(&e, 1, 1, "top level must be a mapping"),
       "YAML top-level list refused");
    r = yaml("just text\n", &e);
    ok(!r && strstr(e.msg, "top level must be a mapping"),
       "YAML top-level scalar refused");
    r = jsn("\n  [1, 2]", &e);
    ok(!r && err_is(&e, 2, 3, "top level must be a mapping"),
       "JSON top-level array refused at 2:3");
    r = yaml("a: 1\n---\nb: 2\n", &e);
    ok(!r && err_is(&e, 2, 1, "multiple documents"),
       "second document refused at 2:1");

    r = yaml("", &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "empty YAML is {}");
    json_decref(r);
    r = yaml("# only\n  # comments\n", &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "comments only is {}");
    json_decref(r);
    r = yaml("---\n...\n", &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "empty explicit document is {}");
    json_decref(r);
    r = jsn(" \n\t", &e);
    ok(r && json_is_object(r) && json_object_size(r) == 0,
       "blank JSON is {}");
    json_decref(r);
    r = conf_parse(NULL, 0, CONF_YAML, "nothing", &e);
    ok(r && json_object_size(r) == 0, "NULL, 0 is {}");
    json_decref(r);

    /* auto format from the source name */
    r = conf_parse("{\"a\": 1}", 8, CONF_AUTO, "x/dyn.JSON", &e);
    ok(r && json_integer_value(json_object_get(r, "a")) == 1,
       "CONF_AUTO: .JSON is JSON");
    json_decref(r);
    r = conf_parse("a: [1]", 6, CONF_AUTO, "dyn.yml", &e);
    ok(r && json_is_array(json_object_get(r, "a")), "CONF_AUTO: .yml is YAML");
    json_decref(r);
    r = conf_parse("{\"a\": 1, \"a\": 2}", 16, CONF_AUTO, "dyn.conf", &e);
    ok(!r && strstr(e.msg, "duplicate key"),
       "CONF_AUTO: other names are YAML (flow mapping, duplicate)");
}

static void test_files(void)
{
    char ypath[] = "/tmp/test_conf_XXXXXX.yaml";
    char jpath[] = "/tmp/test_conf_XXXXXX.json";
    struct conf_error e;
    json_t *r;
    int fd;

    fd = mkstemps(ypath, 5);
    ok(fd >= 0 && write(fd, "http:\n  routers: {}\n", 20) == 20,
       "temp YAML written");
    close(fd);
    fd = mkstemps(jpath, 5);
    ok(fd >= 0 && write(fd, "{\"http\": 1,\n\"x\": [}", 19) == 19,
       "temp JSON written");
    close(fd);

    r = conf_load_file(ypath, &e);
    ok(r && json_is_object(json_object_get(json_object_get(r, "http"),
                                           "routers")),
       "YAML file loaded");
    json_decref(r);
    r = conf_load_file(jpath, &e);
    ok(!r && e.line == 2 && strcmp(e.source, jpath) == 0,
       "JSON file error names the file and line 2 (%s:%d %s)", e.source,
       e.line, e.msg);
    r = conf_load_file("/nonexistent/relais.yaml", &e);
    ok(!r && strstr(e.msg, "No such file or directory") &&
           strcmp(e.source, "/nonexistent/relais.yaml") == 0,
       "missing file: strerror (%s)", e.msg);
    r = conf_load_file("/tmp", &e);
    ok(!r && strstr(e.msg, "Is a directory"), "directory refused (%s)", e.msg);
    unlink(ypath);
    unlink(jpath);
}

static void test_durations(void)
{
    static const struct {
        const char *s; /* input */
        int rc;        /* expected return */
        int64_t ms;    /* expected value when rc == 0 */
    } cases[] = {
        {"300ms", 0, 300},
        {"1.5h", 0, 5400000},
        {"2h45m", 0, 9900000},
        {"1m30s", 0, 90000},
        {"10s", 0, 10000},
        {"1h2m3s", 0, 3723000},
        {"250ms", 0, 250},
        {"1.5s", 0, 1500},
        {"10us", 0, 1},
        {"10\xc2\xb5s", 0, 1},
        {"10\xce\xbcs", 0, 1},
        {"999999ns", 0, 1},
        {"1000000ns", 0, 1},
        {"1000001ns", 0, 2},
        {"1ns", 0, 1},
        {"0", 0, 0},
        {"0s", 0, 0},
        {"+5s", 0, 5000},
        {"10", 0, 10000},
        {"2.5", 0, 2500},
        {".5s", 0, 500},
        {"1.s", 0, 1000},
        {"1h0.5m", 0, 3630000},
        {"0.001s", 0, 1},
        {"2562047h", 0, 9223369200000},
        {"", -1, 0},
        {"-5s", -1, 0},
        {"-0", -1, 0},
        {"5", 0, 5000},
        {"5x", -1, 0},
        {"s", -1, 0},
        {".s", -1, 0},
        {"1s5", -1, 0},
        {"5 s", -1, 0},
        {" 5s", -1, 0},
        {"1d", -1, 0},
        {"2562048h", -1, 0},
        {"99999999999999999999s", -1, 0},
        {"1e3s", -1, 0},
        {"+", -1, 0},
        {"1..5s", -1, 0},
    };
    size_t i;
    int64_t ms;
    int rc;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms = -42;
        rc = conf_parse_duration(cases[i].s, &ms);
        if (cases[i].rc == 0)
            ok(rc == 0 && ms == cases[i].ms,
               "duration \"%s\" = %lld ms (got rc %d, %lld)", cases[i].s,
               (long long)cases[i].ms, rc, (long long)ms);
        else
            ok(rc == -1 && ms == -42, "duration \"%s\" refused (rc %d)",
               cases[i].s, rc);
    }
    ok(conf_parse_duration(NULL, &ms) == -1, "NULL duration refused");
}

static void test_accessors(void)
{
    struct conf_error e;
    struct conf_session *s;
    const relais_cfg *root, *n, *c, *p;
    const char *str, *key;
    int64_t i64;
    double d;
    int b;
    json_t *doc = yaml(
        "Prefixes: [/a, /b, /c]\n"
        "forceSlash: true\n"
        "port: 8080\n"
        "ratio: 0.25\n"
        "whole: 3.0\n"
        "big: 1e30\n"
        "name: web\n"
        "sint: \"-12\"\n"
        "sbool: FALSE\n"
        "sbool2: \"TRUE\"\n"
        "sreal: \"2.5e1\"\n"
        "timeout: 1m30s\n"
        "secs: 2\n"
        "fsecs: 1.5\n"
        "neg: -3\n"
        "nothing: null\n"
        "map: {x: 1}\n"
        "bad: [1]\n",
        &e);

    ok(doc != NULL, "accessor document parses (%s)", doc ? "" : e.msg);
    if (!doc) return;
    s = conf_session_new("http.middlewares.m1@file.stripPrefix");
    root = conf_session_root(s, doc);
    json_decref(doc); /* the session keeps the root alive */
    ok(conf_cfg_type(root) == RELAIS_CFG_MAP, "root is a map");
    ok(strcmp(conf_node_path(root), "http.middlewares.m1@file.stripPrefix") ==
           0,
       "root path is the session's");
    ok(conf_cfg_len(root) == 18, "root has 18 entries");

    /* case-insensitive get, path spelled as in the document */
    n = conf_cfg_get(root, "prefixes");
    ok(n && conf_cfg_type(n) == RELAIS_CFG_LIST && conf_cfg_len(n) == 3,
       "get is case-insensitive");
    ok(strcmp(conf_node_path(n), "http.middlewares.m1@file.stripPrefix.Prefixes") == 0,
       "path uses the document's spelling (%s)", conf_node_path(n));
    c = conf_cfg_at(n, 1, &key);
    ok(c && key == NULL &&
           strcmp(conf_node_path(c),
                  "http.middlewares.m1@file.stripPrefix.Prefixes[1]") == 0,
       "list item path (%s)", c ? conf_node_path(c) : "");
    ok(conf_cfg_string(c, NULL, &str) == RELAIS_CFG_OK && strcmp(str, "/b") == 0,
       "string of a list item");
    ok(conf_cfg_at(n, 3, NULL) == NULL, "list index out of range");
    ok(conf_cfg_int(c, NULL, &i64) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.Prefixes[1]: "
                            "expected an integer, got \"/b\""),
       "error path of a nested list item");
    ok(conf_cfg_get(root, "PORT") != NULL && conf_cfg_get(root, "absent") == NULL,
       "get: PORT found, absent not");
    ok(conf_cfg_get(n, "x") == NULL, "get on a list is NULL");

    /* map iteration */
    c = conf_cfg_at(root, 0, &key);
    ok(c && key && strcmp(key, "Prefixes") == 0, "at(0) of a map");
    c = conf_cfg_at(root, 6, &key);
    ok(c && key && strcmp(key, "name") == 0 &&
           strcmp(conf_node_path(c), "http.middlewares.m1@file.stripPrefix.name") == 0,
       "at(6) of a map, with its path");
    c = conf_cfg_at(root, 2, &key);
    ok(c && key && strcmp(key, "port") == 0, "at(2) after at(6) restarts");
    ok(conf_cfg_at(root, 18, &key) == NULL && key == NULL, "at(18) is NULL");

    /* strings */
    ok(conf_cfg_string(root, "name", &str) == RELAIS_CFG_OK &&
           strcmp(str, "web") == 0, "string");
    ok(conf_cfg_string(root, "port", &str) == RELAIS_CFG_OK &&
           strcmp(str, "8080") == 0, "integer read as a string");
    ok(conf_cfg_string(root, "forceslash", &str) == RELAIS_CFG_OK &&
           strcmp(str, "true") == 0, "bool read as a string");
    ok(conf_cfg_string(root, "ratio", &str) == RELAIS_CFG_OK &&
           strcmp(str, "0.25") == 0, "real read as a string");
    str = "untouched";
    ok(conf_cfg_string(root, "nothing", &str) == RELAIS_CFG_MISSING &&
           strcmp(str, "untouched") == 0, "null string is MISSING");
    ok(conf_cfg_string(root, "absent", &str) == RELAIS_CFG_MISSING,
       "absent string is MISSING");
    ok(conf_cfg_string(root, "prefixes", &str) == RELAIS_CFG_INVALID &&
           strcmp(str, "untouched") == 0 &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.Prefixes: "
                            "expected a string, got a list"),
       "list as a string is INVALID");
    ok(conf_cfg_string(root, "map", &str) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.map: "
                            "expected a string, got a map"),
       "map as a string is INVALID");

    /* ints */
    i64 = 0;
    ok(conf_cfg_int(root, "port", &i64) == RELAIS_CFG_OK && i64 == 8080, "int");
    ok(conf_cfg_int(root, "sint", &i64) == RELAIS_CFG_OK && i64 == -12,
       "int from a string");
    ok(conf_cfg_int(root, "whole", &i64) == RELAIS_CFG_OK && i64 == 3,
       "int from 3.0");
    i64 = 77;
    ok(conf_cfg_int(root, "ratio", &i64) == RELAIS_CFG_INVALID && i64 == 77 &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.ratio: "
                            "expected an integer, got 0.25"),
       "0.25 as an int is INVALID");
    ok(conf_cfg_int(root, "big", &i64) == RELAIS_CFG_INVALID,
       "1e30 as an int is INVALID");
    ok(conf_cfg_int(root, "forceSlash", &i64) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.forceSlash: "
                            "expected an integer, got true"),
       "bool as an int is INVALID");
    ok(conf_cfg_int(root, "name", &i64) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.name: "
                            "expected an integer, got \"web\""),
       "text as an int is INVALID");
    ok(conf_cfg_int(root, "nothing", &i64) == RELAIS_CFG_MISSING,
       "null int is MISSING");

    /* bools */
    b = -1;
    ok(conf_cfg_bool(root, "forceSlash", &b) == RELAIS_CFG_OK && b == 1, "bool");
    ok(conf_cfg_bool(root, "sbool", &b) == RELAIS_CFG_OK && b == 0,
       "plain FALSE is a bool");
    ok(conf_cfg_bool(root, "sbool2", &b) == RELAIS_CFG_OK && b == 1,
       "\"TRUE\" string is a bool");
    b = -1;
    ok(conf_cfg_bool(root, "port", &b) == RELAIS_CFG_INVALID && b == -1 &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.port: "
                            "expected true or false, got 8080"),
       "int as a bool is INVALID");
    ok(conf_cfg_bool(root, "absent", &b) == RELAIS_CFG_MISSING,
       "absent bool is MISSING");

    /* reals */
    ok(conf_cfg_real(root, "ratio", &d) == RELAIS_CFG_OK && d == 0.25, "real");
    ok(conf_cfg_real(root, "port", &d) == RELAIS_CFG_OK && d == 8080.0,
       "int as a real");
    ok(conf_cfg_real(root, "sreal", &d) == RELAIS_CFG_OK && d == 25.0,
       "numeric string as a real");
    ok(conf_cfg_real(root, "name", &d) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.name: "
                            "expected a number, got \"web\""),
       "text as a real is INVALID");
    ok(conf_cfg_real(root, "nothing", &d) == RELAIS_CFG_MISSING,
       "null real is MISSING");

    /* durations */
    ok(conf_cfg_duration(root, "timeout", &i64) == RELAIS_CFG_OK &&
           i64 == 90000, "duration string");
    ok(conf_cfg_duration(root, "secs", &i64) == RELAIS_CFG_OK && i64 == 2000,
       "integer duration is seconds");
    ok(conf_cfg_duration(root, "fsecs", &i64) == RELAIS_CFG_OK && i64 == 1500,
       "real duration is seconds");
    ok(conf_cfg_duration(root, "sint", &i64) == RELAIS_CFG_INVALID &&
           last_error_is(s, "http.middlewares.m1@file.stripPrefix.sint: "
                            "expected a duration such as \"10s\", got \"-12\""),
       "negative duration string is INVALID");
    ok(conf_cfg_duration(root, "neg", &i64) == RELAIS_CFG_INVALID,
       "negative integer duration is INVALID");
    ok(conf_cfg_duration(root, "forceSlash", &i64) == RELAIS_CFG_INVALID,
       "bool duration is INVALID");
    ok(conf_cfg_duration(root, "nothing", &i64) == RELAIS_CFG_MISSING,
       "null duration is MISSING");

    /* key NULL reads the node itself */
    p = conf_cfg_get(root, "port");
    ok(conf_cfg_int(p, NULL, &i64) == RELAIS_CFG_OK && i64 == 8080 &&
           conf_cfg_type(p) == RELAIS_CFG_INT,
       "key NULL reads the node");
    ok(conf_cfg_type(conf_cfg_get(root, "nothing")) == RELAIS_CFG_NULL &&
           conf_cfg_type(conf_cfg_get(root, "ratio")) == RELAIS_CFG_REAL &&
           conf_cfg_type(conf_cfg_get(root, "name")) == RELAIS_CFG_STRING &&
           conf_cfg_type(conf_cfg_get(root, "sbool")) == RELAIS_CFG_BOOL,
       "types");
    ok(conf_node_json(p) == json_object_get(conf_node_json(root), "port"),
       "conf_node_json is the tree's value");

    /* explicit errors */
    conf_cfg_error(root, "PREFIXES", "expected %d items", 2);
    ok(last_error_is(s, "http.middlewares.m1@file.stripPrefix.Prefixes: "
                        "expected 2 items"),
       "cfg_error with a key spells it as the document");
    conf_cfg_error(root, "newKey", "required");
    ok(last_error_is(s, "http.middlewares.m1@file.stripPrefix.newKey: required"),
       "cfg_error with an absent key");
    conf_cfg_error(root, NULL, "whole node");
    ok(last_error_is(s, "http.middlewares.m1@file.stripPrefix: whole node"),
       "cfg_error with key NULL");

    /* NULL tolerance */
    ok(conf_cfg_type(NULL) == RELAIS_CFG_ABSENT && conf_cfg_get(NULL, "a") == NULL &&
           conf_cfg_len(NULL) == 0 && conf_cfg_at(NULL, 0, &key) == NULL &&
           conf_node_json(NULL) == NULL && strcmp(conf_node_path(NULL), "") == 0,
       "NULL node: ABSENT, NULL, 0, \"\"");
    ok(conf_cfg_string(NULL, "a", &str) == RELAIS_CFG_MISSING &&
           conf_cfg_int(NULL, NULL, &i64) == RELAIS_CFG_MISSING &&
           conf_cfg_bool(NULL, "a", &b) == RELAIS_CFG_MISSING &&
           conf_cfg_real(NULL, "a", &d) == RELAIS_CFG_MISSING &&
           conf_cfg_duration(NULL, "a", &i64) == RELAIS_CFG_MISSING,
       "NULL node: readers answer MISSING");
    conf_cfg_error(NULL, "a", "dropped");
    ok(conf_session_nerrors(s) == 15, "15 errors recorded (%zu)",
       conf_session_nerrors(s));
    ok(conf_session_error(s, 15) == NULL, "error index out of range is NULL");
    conf_session_free(s);
    conf_session_free(NULL);
}

static void test_session_paths(void)
{
    struct conf_error e;
    struct conf_session *s = conf_session_new("");
    json_t *doc = yaml("list: [{a: x}, {a: [1, 2]}]\n", &e);
    const relais_cfg *root = conf_session_root(s, doc), *n;
    int64_t v;
    size_t i;

    json_decref(doc);
    ok(strcmp(conf_node_path(root), "") == 0, "empty root path");
    n = conf_cfg_at(conf_cfg_get(conf_cfg_at(conf_cfg_get(root, "list"), 1, NULL),
                                 "a"),
                    0, NULL);
    ok(n && strcmp(conf_node_path(n), "list[1].a[0]") == 0,
       "nested path without a root prefix (%s)", n ? conf_node_path(n) : "");
    ok(conf_cfg_int(conf_cfg_at(conf_cfg_get(root, "list"), 0, NULL), "a", &v) ==
               RELAIS_CFG_INVALID &&
           last_error_is(s, "list[0].a: expected an integer, got \"x\""),
       "error path without a root prefix");

    /* error cap: 100 errors, then one "too many errors" */
    for (i = 0; i < 150; i++) conf_cfg_error(root, "k", "e%zu", i);
    ok(conf_session_nerrors(s) == 101, "errors capped at 100 + 1 (%zu)",
       conf_session_nerrors(s));
    ok(strcmp(conf_session_error(s, 99), "k: e98") == 0 &&
           strcmp(conf_session_error(s, 100), "too many errors") == 0,
       "last errors: k: e98, too many errors");
    conf_session_free(s);
}

/* Values under a secret's key never appear in messages. */
static void test_secrets(void)
{
    struct conf_error e;
    struct conf_session *s = conf_session_new("providers.redis");
    json_t *doc = yaml("password: hunter2\nusers: [[\"bob:s3cr3t\"]]\nauthToken: {a: b}\n"
                       "tls: {key: PEMTEXT}\nname: abc\n", &e);
    const relais_cfg *root = conf_session_root(s, doc);
    const char *str;
    int64_t v;

    json_decref(doc);
    conf_cfg_int(root, "password", &v);
    ok(last_error_is(s, "providers.redis.password: expected an integer, got a string (not "
                        "shown: a secret)"),
       "a password's value is not shown");
    conf_cfg_string(conf_cfg_at(conf_cfg_get(root, "users"), 0, NULL), NULL, &str);
    ok(last_error_is(s, "providers.redis.users[0]: expected a string, got a list (not shown: a "
                        "secret)"),
       "a users entry is not shown");
    conf_cfg_string(root, "authToken", &str);
    ok(last_error_is(s, "providers.redis.authToken: expected a string, got a map (not shown: a "
                        "secret)"),
       "a token is not shown");
    conf_cfg_bool(conf_cfg_get(root, "tls"), "key", &e.line);
    ok(last_error_is(s, "providers.redis.tls.key: expected true or false, got a string (not "
                        "shown: a secret)"),
       "a key is not shown");
    conf_cfg_int(root, "name", &v);
    ok(last_error_is(s, "providers.redis.name: expected an integer, got \"abc\""),
       "other values are shown");
    conf_session_free(s);
}

int main(void)
{
    test_secrets();
    test_scalars();
    test_anchors();
    test_billion_laughs();
    test_errors();
    test_files();
    test_durations();
    test_accessors();
    test_session_paths();
    return tap_done();
}
