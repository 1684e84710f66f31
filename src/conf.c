/*
 * conf — configuration documents (YAML or JSON) read into a jansson tree,
 * and the host side of the SDK's typed configuration accessors.
 *
 * YAML is read with libyaml's event API and built into json_t values here:
 * plain scalars are typed with the YAML 1.2 core schema, quoted ones stay
 * strings, aliases become deep copies of their anchored node (bounded by a
 * node budget against "billion laughs"), merge keys are applied, duplicate
 * keys are refused.  JSON goes through jansson directly.
 *
 * Thread-safety: control thread only; nothing here is shared.
 */
#include "config.h"

#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h> /* isfinite (a macro: no libm needed) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* ---- limits ------------------------------------------------------------- */

#define CONF_MAX_NODES 1000000u   /* json values per document, copies included */
#define CONF_MAX_ALIASES 100000u  /* alias expansions per document */
#define CONF_MAX_ANCHORS 100000u  /* distinct anchor names per document */
#define CONF_MAX_DEPTH 256        /* container nesting, aliases included */
#define CONF_MAX_FILE (64u << 20) /* bytes conf_load_file reads at most */
#define CONF_MAX_ERRORS 100u      /* errors a session records (then one more) */
#define CONF_MAX_SESSION_NODES (1u << 22) /* relais_cfg nodes per session */
#define CONF_MAX_PATH 4096        /* bytes of a node path (longer: truncated) */
#define CONF_MAX_MSG 1024         /* bytes of one recorded error message */
#define CONF_MAX_SHOWN 48         /* bytes of a string value quoted in errors */

#define CONF_TAG_STR "tag:yaml.org,2002:str"

/* ---- errors ------------------------------------------------------------- */

/** Fills err's position and message (source is set by conf_parse). */
static void conf_err_set(struct conf_error *err, int line, int column,
                         const char *fmt, ...) RELAIS_PRINTF(4, 5);

static void conf_err_set(struct conf_error *err, int line, int column,
                         const char *fmt, ...)
{
    va_list ap;

    err->line = line > 0 ? line : 0;
    err->column = column > 0 ? column : 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/** 1-based line and column of byte offset off in data[0..len). */
static void conf_offset_pos(const char *data, size_t len, size_t off,
                            int *line, int *column)
{
    size_t i;
    int l = 1, c = 1;

    if (off > len) off = len;
    for (i = 0; i < off; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
            c++; /* count characters, not UTF-8 continuation bytes */
        }
    }
    *line = l;
    *column = c;
}

/* ---- YAML scalars ------------------------------------------------------- */

/** True when s[0..len) is [0-9]+ (at least one digit). */
static int conf_all_digits(const char *s, size_t len, int (*isdig)(int))
{
    size_t i;

    if (len == 0) return 0;
    for (i = 0; i < len; i++)
        if (!isdig((unsigned char)s[i])) return 0;
    return 1;
}

/** Decimal digit test (locale-independent). */
static int conf_isdec(int c) { return c >= '0' && c <= '9'; }
/** Octal digit test. */
static int conf_isoct(int c) { return c >= '0' && c <= '7'; }
/** Hexadecimal digit test. */
static int conf_ishex(int c)
{
    return conf_isdec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/** True when s is a core-schema decimal integer: [-+]?[0-9]+. */
static int conf_is_decint(const char *s, size_t len)
{
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        s++;
        len--;
    }
    return conf_all_digits(s, len, conf_isdec);
}

/** True when s is a core-schema float:
 *  [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int conf_is_float(const char *s, size_t len)
{
    size_t i = 0, n;

    if (i < len && (s[i] == '-' || s[i] == '+')) i++;
    if (i < len && s[i] == '.') {
        i++;
        for (n = 0; i < len && conf_isdec(s[i]); i++) n++;
        if (n == 0) return 0;
    } else {
        for (n = 0; i < len && conf_isdec(s[i]); i++) n++;
        if (n == 0) return 0;
        if (i < len && s[i] == '.') {
            i++;
            while (i < len && conf_isdec(s[i])) i++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+')) i++;
        for (n = 0; i < len && conf_isdec(s[i]); i++) n++;
        if (n == 0) return 0;
    }
    return i == len;
}

/** Types a plain scalar s[0..len) (NUL-terminated) with the YAML 1.2 core
 *  schema.  New reference, NULL on allocation failure.  Values JSON cannot
 *  hold (out-of-range integers, .inf, .nan, 1e999) stay strings. */
static json_t *conf_plain_scalar(const char *s, size_t len)
{
    char *end;

    if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
        strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
        strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 ||
        strcmp(s, "FALSE") == 0)
        return json_false();
    if (conf_is_decint(s, len)) {
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == 0 && end == s + len) return json_integer(v);
        return json_stringn(s, len);
    }
    if (len > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        int hex = s[1] == 'x';

        if (conf_all_digits(s + 2, len - 2, hex ? conf_ishex : conf_isoct)) {
            unsigned long long v;

            errno = 0;
            v = strtoull(s + 2, &end, hex ? 16 : 8);
            if (errno == 0 && end == s + len && v <= (unsigned long long)INT64_MAX)
                return json_integer((json_int_t)v);
        }
        return json_stringn(s, len);
    }
    if (conf_is_float(s, len)) {
        double d = strtod(s, &end);

        if (end == s + len && isfinite(d)) return json_real(d);
    }
    return json_stringn(s, len);
}

/* ---- YAML builder ------------------------------------------------------- */

/** State of one YAML document being built. */
struct conf_yb {
    yaml_parser_t parser;   /* libyaml parser over the input */
    struct conf_error *err; /* where the first error goes */
    const char *data;       /* the input (for reader-error positions) */
    size_t len;             /* bytes in data */
    json_t *anchors;        /* anchor name -> [value, nodes, height] */
    size_t nodes;           /* json values made so far, alias copies included */
    size_t aliases;         /* aliases expanded so far */
};

/** Error at a libyaml mark (0-based line/column in the mark). */
#define CONF_YB_ERR(b, mark, ...)                                             \
    conf_err_set((b)->err, (int)(mark).line + 1, (int)(mark).column + 1,      \
                 __VA_ARGS__)

/** Records the parser's own error (scanner, parser, reader, memory). */
static void conf_yb_parser_error(struct conf_yb *b)
{
    yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    int line, column;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        conf_err_set(b->err, 0, 0, "out of memory");
        break;
    case YAML_READER_ERROR:
        conf_offset_pos(b->data, b->len, p->problem_offset, &line, &column);
        if (p->problem_value >= 0)
            conf_err_set(b->err, line, column, "%s (#%X)", problem,
                         (unsigned)p->problem_value);
        else
            conf_err_set(b->err, line, column, "%s", problem);
        break;
    default:
        if (p->context)
            CONF_YB_ERR(b, p->problem_mark, "%s at line %d: %s", p->context,
                        (int)p->context_mark.line + 1, problem);
        else
            CONF_YB_ERR(b, p->problem_mark, "%s", problem);
        break;
    }
}

/** Next event into *ev (the caller deletes it).  0, or -1 with the error
 *  recorded (nothing to delete then). */
static int conf_yb_next(struct conf_yb *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev)) {
        conf_yb_parser_error(b);
        return -1;
    }
    return 0;
}

/** Counts one new json value against the budget.  0, or -1 recorded. */
static int conf_yb_count(struct conf_yb *b, const yaml_mark_t *mark)
{
    if (b->nodes >= CONF_MAX_NODES) {
        CONF_YB_ERR(b, *mark, "too many nodes");
        return -1;
    }
    b->nodes++;
    return 0;
}

static int conf_yb_node(struct conf_yb *b, const yaml_event_t *ev, int depth,
                        json_t **out, size_t *nodes, int *height);

/** Builds a scalar.  Arguments as conf_yb_node. */
static int conf_yb_scalar(struct conf_yb *b, const yaml_event_t *ev,
                          json_t **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;

    if (conf_yb_count(b, &ev->start_mark) < 0) return -1;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        (tag && strcmp(tag, CONF_TAG_STR) == 0))
        *out = json_stringn(v, len);
    else
        *out = conf_plain_scalar(v, len);
    if (!*out) {
        CONF_YB_ERR(b, ev->start_mark, "cannot store scalar (bad UTF-8 or out of memory)");
        return -1;
    }
    return 0;
}

/** Expands an alias into a deep copy of its anchored node. */
static int conf_yb_alias(struct conf_yb *b, const yaml_event_t *ev, int depth,
                         json_t **out, size_t *nodes, int *height)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_t *entry = json_object_get(b->anchors, name);
    size_t n;
    int h;

    if (!entry) {
        CONF_YB_ERR(b, ev->start_mark, "undefined alias \"%s\"", name);
        return -1;
    }
    n = (size_t)json_integer_value(json_array_get(entry, 1));
    h = (int)json_integer_value(json_array_get(entry, 2));
    if (depth + h > CONF_MAX_DEPTH) {
        CONF_YB_ERR(b, ev->start_mark, "nesting too deep");
        return -1;
    }
    if (b->aliases >= CONF_MAX_ALIASES || n > CONF_MAX_NODES - b->nodes) {
        CONF_YB_ERR(b, ev->start_mark, "too many nodes (alias \"%s\")", name);
        return -1;
    }
    *out = json_deep_copy(json_array_get(entry, 0));
    if (!*out) {
        conf_err_set(b->err, 0, 0, "out of memory");
        return -1;
    }
    b->aliases++;
    b->nodes += n;
    *nodes = n;
    *height = h;
    return 0;
}

/** Builds a sequence whose start event is ev. */
static int conf_yb_sequence(struct conf_yb *b, const yaml_event_t *ev,
                            int depth, json_t **out, size_t *nodes,
                            int *height)
{
    json_t *arr = NULL, *child;
    yaml_event_t e;
    size_t n = 1, cn;
    int h = 0, ch, rc;

    if (depth >= CONF_MAX_DEPTH) {
        CONF_YB_ERR(b, ev->start_mark, "nesting too deep");
        return -1;
    }
    if (conf_yb_count(b, &ev->start_mark) < 0) return -1;
    arr = json_array();
    if (!arr) goto oom;
    for (;;) {
        if (conf_yb_next(b, &e) < 0) goto fail;
        if (e.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        rc = conf_yb_node(b, &e, depth + 1, &child, &cn, &ch);
        yaml_event_delete(&e);
        if (rc < 0) goto fail;
        if (json_array_append_new(arr, child) < 0) goto oom;
        n += cn;
        if (ch > h) h = ch;
    }
    *out = arr;
    *nodes = n;
    *height = h + 1;
    return 0;
oom:
    conf_err_set(b->err, 0, 0, "out of memory");
fail:
    json_decref(arr);
    return -1;
}

/** Adds the merge-key value v (a mapping or a list of mappings) to the
 *  merges list.  Consumes nothing; 0 or -1 recorded. */
static int conf_yb_add_merge(struct conf_yb *b, json_t *merges, json_t *v,
                             const yaml_mark_t *mark)
{
    size_t i;

    if (json_is_object(v)) return json_array_append(merges, v) < 0 ? -1 : 0;
    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++)
            if (!json_is_object(json_array_get(v, i))) goto bad;
        return json_array_extend(merges, v) < 0 ? -1 : 0;
    }
bad:
    CONF_YB_ERR(b, *mark, "the value of a merge key (<<) must be a mapping "
                          "or a list of mappings");
    return -1;
}

/** Builds a mapping whose start event is ev: explicit keys first, then the
 *  merge sources in order (an earlier source wins over a later one). */
static int conf_yb_mapping(struct conf_yb *b, const yaml_event_t *ev,
                           int depth, json_t **out, size_t *nodes,
                           int *height)
{
    json_t *obj = NULL, *merges = NULL, *child = NULL, *m, *mv;
    yaml_event_t k, v;
    int have_k = 0, h = 0, ch, rc, is_merge;
    size_t n = 1, cn, i;
    const char *key, *mk;

    if (depth >= CONF_MAX_DEPTH) {
        CONF_YB_ERR(b, ev->start_mark, "nesting too deep");
        return -1;
    }
    if (conf_yb_count(b, &ev->start_mark) < 0) return -1;
    obj = json_object();
    merges = json_array();
    if (!obj || !merges) goto oom;
    for (;;) {
        if (conf_yb_next(b, &k) < 0) goto fail;
        have_k = 1;
        if (k.type == YAML_MAPPING_END_EVENT) break;
        if (k.type == YAML_ALIAS_EVENT) {
            CONF_YB_ERR(b, k.start_mark,
                        "aliases are not supported as mapping keys");
            goto fail;
        }
        if (k.type != YAML_SCALAR_EVENT) {
            CONF_YB_ERR(b, k.start_mark, "mapping keys must be scalars");
            goto fail;
        }
        key = (const char *)k.data.scalar.value;
        if (memchr(key, '\0', k.data.scalar.length)) {
            CONF_YB_ERR(b, k.start_mark, "mapping key contains a NUL byte");
            goto fail;
        }
        is_merge = k.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                   strcmp(key, "<<") == 0;
        if (!is_merge && json_object_get(obj, key)) {
            CONF_YB_ERR(b, k.start_mark, "duplicate key \"%s\"", key);
            goto fail;
        }
        if (conf_yb_next(b, &v) < 0) goto fail;
        rc = conf_yb_node(b, &v, depth + 1, &child, &cn, &ch);
        if (rc < 0) {
            yaml_event_delete(&v);
            goto fail;
        }
        n += cn;
        if (ch > h) h = ch;
        if (is_merge) {
            rc = conf_yb_add_merge(b, merges, child, &v.start_mark);
            json_decref(child);
        } else {
            rc = json_object_set_new(obj, key, child);
            if (rc < 0) conf_err_set(b->err, 0, 0, "out of memory");
        }
        child = NULL;
        yaml_event_delete(&v);
        yaml_event_delete(&k);
        have_k = 0;
        if (rc < 0) goto fail;
    }
    yaml_event_delete(&k);
    have_k = 0;
    json_array_foreach(merges, i, m) {
        json_object_foreach(m, mk, mv) {
            if (!json_object_get(obj, mk) && json_object_set(obj, mk, mv) < 0)
                goto oom;
        }
    }
    json_decref(merges);
    *out = obj;
    *nodes = n;
    *height = h + 1;
    return 0;
oom:
    conf_err_set(b->err, 0, 0, "out of memory");
fail:
    if (have_k) yaml_event_delete(&k);
    json_decref(obj);
    json_decref(merges);
    return -1;
}

/** Remembers value under anchor name (a later definition replaces an
 *  earlier one, as YAML says).  0 or -1 recorded. */
static int conf_yb_anchor(struct conf_yb *b, const yaml_event_t *ev,
                          const char *name, json_t *value, size_t nodes,
                          int height)
{
    json_t *entry;

    if (json_object_size(b->anchors) >= CONF_MAX_ANCHORS &&
        !json_object_get(b->anchors, name)) {
        CONF_YB_ERR(b, ev->start_mark, "too many anchors");
        return -1;
    }
    entry = json_pack("[O,I,i]", value, (json_int_t)nodes, height);
    if (!entry || json_object_set_new(b->anchors, name, entry) < 0) {
        conf_err_set(b->err, 0, 0, "out of memory");
        return -1;
    }
    return 0;
}

/**
 * Builds the node that starts with event ev (not consumed: the caller
 * deletes it), depth being the number of enclosing containers.  On success
 * *out is a new reference, *nodes the json values it holds and *height its
 * container height (0 for a scalar).  -1 with the error recorded.
 */
static int conf_yb_node(struct conf_yb *b, const yaml_event_t *ev, int depth,
                        json_t **out, size_t *nodes, int *height)
{
    const yaml_char_t *anchor = NULL;
    int rc;

    *nodes = 1;
    *height = 0;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        rc = conf_yb_scalar(b, ev, out);
        break;
    case YAML_ALIAS_EVENT:
        return conf_yb_alias(b, ev, depth, out, nodes, height);
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        rc = conf_yb_sequence(b, ev, depth, out, nodes, height);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        rc = conf_yb_mapping(b, ev, depth, out, nodes, height);
        break;
    default:
        CONF_YB_ERR(b, ev->start_mark, "unexpected YAML event");
        return -1;
    }
    if (rc < 0) return -1;
    if (anchor && conf_yb_anchor(b, ev, (const char *)anchor, *out, *nodes,
                                 *height) < 0) {
        json_decref(*out);
        return -1;
    }
    return 0;
}

/** Parses the first (only) YAML document of data into an object. */
static json_t *conf_parse_yaml(const char *data, size_t len,
                               struct conf_error *err)
{
    struct conf_yb b;
    yaml_event_t ev;
    json_t *root = NULL;
    yaml_mark_t root_mark;
    size_t n;
    int h, have_ev = 0;

    memset(&b, 0, sizeof b);
    b.err = err;
    b.data = data;
    b.len = len;
    if (!yaml_parser_initialize(&b.parser)) {
        conf_err_set(err, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)data, len);
    b.anchors = json_object();
    if (!b.anchors) {
        conf_err_set(err, 0, 0, "out of memory");
        goto fail;
    }
    if (conf_yb_next(&b, &ev) < 0) goto fail; /* STREAM-START */
    yaml_event_delete(&ev);
    if (conf_yb_next(&b, &ev) < 0) goto fail;
    if (ev.type == YAML_STREAM_END_EVENT) { /* nothing but comments */
        yaml_event_delete(&ev);
        root = json_object();
        if (!root) conf_err_set(err, 0, 0, "out of memory");
        goto done;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (conf_yb_next(&b, &ev) < 0) goto fail;
    have_ev = 1;
    root_mark = ev.start_mark;
    if (conf_yb_node(&b, &ev, 0, &root, &n, &h) < 0) goto fail;
    yaml_event_delete(&ev);
    have_ev = 0;
    if (conf_yb_next(&b, &ev) < 0) goto fail; /* DOCUMENT-END */
    yaml_event_delete(&ev);
    if (conf_yb_next(&b, &ev) < 0) goto fail;
    have_ev = 1;
    if (ev.type != YAML_STREAM_END_EVENT) {
        CONF_YB_ERR(&b, ev.start_mark,
                    "multiple documents (only one is allowed)");
        goto fail;
    }
    yaml_event_delete(&ev);
    have_ev = 0;
    if (json_is_null(root)) { /* "---" alone, or "~" */
        json_decref(root);
        root = json_object();
        if (!root) conf_err_set(err, 0, 0, "out of memory");
    } else if (!json_is_object(root)) {
        CONF_YB_ERR(&b, root_mark, "top level must be a mapping");
        goto fail;
    }
    goto done;
fail:
    if (have_ev) yaml_event_delete(&ev);
    json_decref(root);
    root = NULL;
done:
    json_decref(b.anchors);
    yaml_parser_delete(&b.parser);
    return root;
}

/* ---- JSON --------------------------------------------------------------- */

/** Parses a JSON document (an object; whitespace only is {}). */
static json_t *conf_parse_json(const char *data, size_t len,
                               struct conf_error *err)
{
    json_error_t je;
    json_t *root;
    size_t i = 0;
    int line, column;

    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 BOM */
        data += 3;
        len -= 3;
    }
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' ||
                       data[i] == '\n'))
        i++;
    if (i == len) {
        root = json_object();
        if (!root) conf_err_set(err, 0, 0, "out of memory");
        return root;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        conf_err_set(err, je.line, je.column, "%s", je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        conf_offset_pos(data, len, i, &line, &column);
        conf_err_set(err, line, column, "top level must be a mapping");
        return NULL;
    }
    return root;
}

/* ---- documents ---------------------------------------------------------- */

/** CONF_JSON when name ends in ".json" (any case), else CONF_YAML. */
static int conf_format_of(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n >= 5 && strcasecmp(name + n - 5, ".json") == 0) return CONF_JSON;
    return CONF_YAML;
}

json_t *conf_parse(const char *data, size_t len, int format,
                   const char *source, struct conf_error *err)
{
    struct conf_error scratch;

    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    snprintf(err->source, sizeof err->source, "%s", source ? source : "");
    if (!data) {
        if (len) {
            conf_err_set(err, 0, 0, "no data");
            return NULL;
        }
        data = "";
    }
    if (format == CONF_AUTO) format = conf_format_of(source);
    if (format == CONF_JSON) return conf_parse_json(data, len, err);
    if (format == CONF_YAML) return conf_parse_yaml(data, len, err);
    conf_err_set(err, 0, 0, "unknown document format %d", format);
    return NULL;
}

json_t *conf_load_file(const char *path, struct conf_error *err)
{
    struct conf_error scratch;
    struct stat st;
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0, ncap;
    ssize_t r;
    json_t *root = NULL;
    int fd;

    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    snprintf(err->source, sizeof err->source, "%s", path ? path : "");
    if (!path) {
        conf_err_set(err, 0, 0, "no file name");
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        conf_err_set(err, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        conf_err_set(err, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        conf_err_set(err, 0, 0, "cannot read: %s", strerror(EISDIR));
        goto out;
    }
    if (S_ISREG(st.st_mode) && st.st_size > (off_t)CONF_MAX_FILE)
        goto too_large;
    /* Read to the end (the file may grow, or be a pipe): at most
     * CONF_MAX_FILE bytes, one more proves it too large. */
    for (;;) {
        if (len == cap) {
            if (cap == (size_t)CONF_MAX_FILE + 1) goto too_large;
            ncap = cap ? cap * 2 : 65536;
            if (ncap > (size_t)CONF_MAX_FILE + 1)
                ncap = (size_t)CONF_MAX_FILE + 1;
            nbuf = realloc(buf, ncap);
            if (!nbuf) {
                conf_err_set(err, 0, 0, "out of memory");
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            conf_err_set(err, 0, 0, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    root = conf_parse(buf ? buf : "", len, conf_format_of(path), path, err);
    goto out;
too_large:
    conf_err_set(err, 0, 0, "file too large (more than %u MiB)",
                 CONF_MAX_FILE >> 20);
out:
    free(buf);
    close(fd);
    return root;
}

/* ---- durations ---------------------------------------------------------- */

/** Nanoseconds in the unit u[0..n), 0 when unknown. */
static uint64_t conf_unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *name; /* unit as written */
        uint64_t ns;      /* its length in nanoseconds */
    } units[] = {
        {"ns", 1ull},
        {"us", 1000ull},
        {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
        {"ms", 1000000ull},
        {"s", 1000000000ull},
        {"m", 60ull * 1000000000ull},
        {"h", 3600ull * 1000000000ull},
    };
    size_t i;

    for (i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

int conf_parse_duration(const char *s, int64_t *ms)
{
    const uint64_t limit = (uint64_t)INT64_MAX; /* in nanoseconds */
    uint64_t total = 0, whole, frac, scale, unit, part;
    int first = 1, digits;
    const char *u;
    double fpart;

    if (!s || !*s) return -1;
    if (*s == '+') s++;
    if (!*s) return -1;
    if (strcmp(s, "0") == 0) {
        if (ms) *ms = 0;
        return 0;
    }
    while (*s) {
        whole = 0;
        frac = 0;
        scale = 1;
        digits = 0;
        for (; conf_isdec((unsigned char)*s); s++, digits++) {
            if (whole > (limit - (uint64_t)(*s - '0')) / 10) return -1;
            whole = whole * 10 + (uint64_t)(*s - '0');
        }
        if (*s == '.') {
            for (s++; conf_isdec((unsigned char)*s); s++, digits++) {
                if (scale > UINT64_MAX / 100) continue; /* precision enough */
                frac = frac * 10 + (uint64_t)(*s - '0');
                scale *= 10;
            }
        }
        if (digits == 0) return -1; /* no number, or a lone "." */
        u = s;
        while (*s && *s != '.' && !conf_isdec((unsigned char)*s)) s++;
        if (s == u) {
            if (!first || *s) return -1; /* a unit is missing */
            unit = 1000000000ull;      /* a bare number: seconds */
        } else {
            unit = conf_unit_ns(u, (size_t)(s - u));
            if (!unit) return -1;
        }
        if (whole > limit / unit) return -1;
        part = whole * unit;
        if (frac) {
            fpart = (double)frac * ((double)unit / (double)scale);
            if (fpart >= (double)(limit - part)) return -1;
            part += (uint64_t)fpart;
        }
        if (part > limit - total) return -1;
        total += part;
        first = 0;
    }
    if (ms) *ms = (int64_t)(total / 1000000u + (total % 1000000u ? 1 : 0));
    return 0;
}

/* ---- sessions and nodes ------------------------------------------------- */

/** A configuration node handed to plugins (the SDK's opaque relais_cfg). */
struct relais_cfg {
    json_t *value;                /* the json value (borrowed from the tree) */
    const struct relais_cfg *parent; /* enclosing node, NULL for a root */
    char *key;                    /* map key as spelled, NULL otherwise */
    size_t index;                 /* list index when parent is a list */
    struct conf_session *session; /* owner */
    char *path;                   /* full key path, built on first use */
    char *text;                   /* scalar converted to text, on first use */
    void *iter;                   /* map iterator at position iter_i */
    size_t iter_i;                /* position of iter (valid when iter) */
    struct relais_cfg *next;      /* session's list of every node */
};

/** A session of typed reads (see conf.h). */
struct conf_session {
    char *root_path;          /* prefix of every path, "" for none */
    struct relais_cfg *nodes; /* every node handed out (linked by next) */
    size_t nnodes;            /* length of nodes, capped */
    char *errors[CONF_MAX_ERRORS + 1]; /* "path: message", then "too many" */
    size_t nerrors;           /* used entries of errors */
};

struct conf_session *conf_session_new(const char *root_path)
{
    struct conf_session *s = calloc(1, sizeof *s);

    if (!s) return NULL;
    s->root_path = strdup(root_path ? root_path : "");
    if (!s->root_path) {
        free(s);
        return NULL;
    }
    return s;
}

void conf_session_free(struct conf_session *s)
{
    struct relais_cfg *n, *next;
    size_t i;

    if (!s) return;
    for (n = s->nodes; n; n = next) {
        next = n->next;
        if (!n->parent) json_decref(n->value); /* roots hold a reference */
        free(n->key);
        free(n->path);
        free(n->text);
        free(n);
    }
    for (i = 0; i < s->nerrors; i++) free(s->errors[i]);
    free(s->root_path);
    free(s);
}

/** New node for value under parent (key copied, or index).  Owned by the
 *  session; NULL when out of memory or over the session's node cap. */
static struct relais_cfg *conf_node_new(struct conf_session *s, json_t *value,
                                        const struct relais_cfg *parent,
                                        const char *key, size_t index)
{
    struct relais_cfg *n;

    if (!s || !value || s->nnodes >= CONF_MAX_SESSION_NODES) return NULL;
    n = calloc(1, sizeof *n);
    if (!n) return NULL;
    if (key && !(n->key = strdup(key))) {
        free(n);
        return NULL;
    }
    n->value = value;
    n->parent = parent;
    n->index = index;
    n->session = s;
    n->next = s->nodes;
    s->nodes = n;
    s->nnodes++;
    return n;
}

const relais_cfg *conf_session_root(struct conf_session *s, json_t *value)
{
    struct relais_cfg *n = conf_node_new(s, value, NULL, NULL, 0);

    if (n) json_incref(value);
    return n;
}

size_t conf_session_nerrors(const struct conf_session *s)
{
    return s ? s->nerrors : 0;
}

const char *conf_session_error(const struct conf_session *s, size_t i)
{
    return s && i < s->nerrors ? s->errors[i] : NULL;
}

json_t *conf_node_json(const relais_cfg *node)
{
    return node ? node->value : NULL;
}

/** Joins a parent path and a child part: "p.key", "p[3]", or the part alone
 *  when p is "".  Capped at CONF_MAX_PATH bytes.  New string or NULL. */
static char *conf_path_join(const char *p, const char *key, size_t index)
{
    char idx[32];
    const char *part = key;
    const char *sep = *p ? "." : "";
    char *out;
    size_t n;

    if (!key) {
        snprintf(idx, sizeof idx, "[%zu]", index);
        part = idx;
        sep = "";
    }
    n = strlen(p) + strlen(sep) + strlen(part);
    if (n > CONF_MAX_PATH) n = CONF_MAX_PATH;
    out = malloc(n + 1);
    if (!out) return NULL;
    snprintf(out, n + 1, "%s%s%s", p, sep, part);
    return out;
}

const char *conf_node_path(const relais_cfg *node)
{
    struct relais_cfg *n = (struct relais_cfg *)node; /* caches the path */

    if (!n) return "";
    if (!n->parent) return n->session->root_path;
    if (!n->path)
        n->path = conf_path_join(conf_node_path(n->parent), n->key, n->index);
    return n->path ? n->path : "";
}

/* ---- accessors ---------------------------------------------------------- */

int conf_cfg_type(const relais_cfg *node)
{
    if (!node) return RELAIS_CFG_ABSENT;
    switch (json_typeof(node->value)) {
    case JSON_OBJECT: return RELAIS_CFG_MAP;
    case JSON_ARRAY: return RELAIS_CFG_LIST;
    case JSON_STRING: return RELAIS_CFG_STRING;
    case JSON_INTEGER: return RELAIS_CFG_INT;
    case JSON_REAL: return RELAIS_CFG_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return RELAIS_CFG_BOOL;
    case JSON_NULL: return RELAIS_CFG_NULL;
    }
    return RELAIS_CFG_ABSENT;
}

/** The key of obj matching key (exact first, then case-insensitive), and
 *  its value in *value; NULL when none. */
static const char *conf_find_key(json_t *obj, const char *key, json_t **value)
{
    const char *k;
    json_t *v;
    void *it;

    it = json_object_iter_at(obj, key);
    if (it) {
        *value = json_object_iter_value(it);
        return json_object_iter_key(it);
    }
    json_object_foreach(obj, k, v) {
        if (strcasecmp(k, key) == 0) {
            *value = v;
            return k;
        }
    }
    return NULL;
}

const relais_cfg *conf_cfg_get(const relais_cfg *node, const char *key)
{
    const char *k;
    json_t *v;

    if (!node || !key || !json_is_object(node->value)) return NULL;
    k = conf_find_key(node->value, key, &v);
    if (!k) return NULL;
    return conf_node_new(node->session, v, node, k, 0);
}

size_t conf_cfg_len(const relais_cfg *node)
{
    if (!node) return 0;
    if (json_is_array(node->value)) return json_array_size(node->value);
    if (json_is_object(node->value)) return json_object_size(node->value);
    return 0;
}

const relais_cfg *conf_cfg_at(const relais_cfg *node, size_t i,
                              const char **key)
{
    struct relais_cfg *n = (struct relais_cfg *)node; /* iterator cache */
    struct relais_cfg *c;
    size_t j;
    void *it;

    if (key) *key = NULL;
    if (!n) return NULL;
    if (json_is_array(n->value)) {
        if (i >= json_array_size(n->value)) return NULL;
        return conf_node_new(n->session, json_array_get(n->value, i), n, NULL,
                             i);
    }
    if (!json_is_object(n->value) || i >= json_object_size(n->value))
        return NULL;
    /* Resume from the cached position when walking forward (the usual
     * for-loop), else from the start: O(1) per step in order. */
    if (n->iter && n->iter_i <= i) {
        it = n->iter;
        j = n->iter_i;
    } else {
        it = json_object_iter(n->value);
        j = 0;
    }
    for (; it && j < i; j++) it = json_object_iter_next(n->value, it);
    if (!it) return NULL;
    n->iter = it;
    n->iter_i = i;
    c = conf_node_new(n->session, json_object_iter_value(it), n,
                      json_object_iter_key(it), 0);
    if (c && key) *key = c->key;
    return c;
}

/** Describes v for "got ..." in messages into buf[0..size). */
static const char *conf_describe(json_t *v, char *buf, size_t size)
{
    size_t len;

    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a map";
    case JSON_ARRAY: return "a list";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    case JSON_REAL:
        snprintf(buf, size, "%g", json_real_value(v));
        return buf;
    case JSON_STRING:
        len = json_string_length(v);
        if (len > CONF_MAX_SHOWN)
            snprintf(buf, size, "\"%.*s...\"", CONF_MAX_SHOWN,
                     json_string_value(v));
        else
            snprintf(buf, size, "\"%s\"", json_string_value(v));
        return buf;
    }
    return "?";
}

json_t *conf_json_get(json_t *o, const char *key)
{
    const char *k;
    json_t *v;

    if (!json_is_object(o)) return NULL;
    json_object_foreach(o, k, v)
        if (!strcasecmp(k, key)) return v;
    return NULL;
}

int conf_key_secret(const char *key, size_t n)
{
    static const char *const whole[] = {"users", "key", "hmacencoded", "privatekey",
                                        "credentials", NULL};
    static const char *const part[] = {"password", "secret", "token", NULL};
    char comp[64];

    if (n >= sizeof(comp)) return 0;
    for (size_t i = 0; i < n; i++) comp[i] = (char)tolower((unsigned char)key[i]);
    comp[n] = '\0';
    for (int i = 0; whole[i]; i++)
        if (!strcmp(comp, whole[i])) return 1;
    for (int i = 0; part[i]; i++)
        if (strstr(comp, part[i])) return 1;
    return 0;
}

/** 1 when a key path names a secret (a password, token, key, users
 *  list...): its values are never shown in messages. */
static int conf_path_secret(const char *path)
{
    const char *p = path;

    while (p && *p) {
        const char *e = strchr(p, '.'), *b = strchr(p, '[');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (b && (!e || b < e)) n = (size_t)(b - p);
        if (conf_key_secret(p, n)) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/** Records "path: what, got X" for a value of the wrong type at node
 *  (only the kind of X under a secret's key). */
static void conf_bad_type(const relais_cfg *node, const char *what)
{
    char buf[CONF_MAX_SHOWN + 16];

    if (conf_path_secret(conf_node_path(node))) {
        const json_t *v = node->value;
        conf_cfg_error(node, NULL, "%s, got %s (not shown: a secret)", what,
                       json_is_string(v)    ? "a string"
                       : json_is_integer(v) ? "an integer"
                       : json_is_number(v)  ? "a number"
                       : json_is_boolean(v) ? "a boolean"
                       : json_is_array(v)   ? "a list"
                       : json_is_object(v)  ? "a map"
                                            : "something else");
        return;
    }
    conf_cfg_error(node, NULL, "%s, got %s", what,
                   conf_describe(node->value, buf, sizeof buf));
}

/** The node to read for (node, key): node itself or its child; NULL when
 *  absent or null (then the reader answers MISSING). */
static const relais_cfg *conf_target(const relais_cfg *node, const char *key)
{
    const relais_cfg *t = key ? conf_cfg_get(node, key) : node;

    if (!t || json_is_null(t->value)) return NULL;
    return t;
}

/** Text of a real that reads back to the same value. */
static void conf_real_text(double d, char *buf, size_t size)
{
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

int conf_cfg_string(const relais_cfg *node, const char *key, const char **out)
{
    const relais_cfg *t = conf_target(node, key);
    struct relais_cfg *m;
    char buf[64];

    if (!t) return RELAIS_CFG_MISSING;
    m = (struct relais_cfg *)t; /* caches the converted text */
    switch (json_typeof(t->value)) {
    case JSON_STRING:
        if (out) *out = json_string_value(t->value);
        return RELAIS_CFG_OK;
    case JSON_INTEGER:
    case JSON_REAL:
    case JSON_TRUE:
    case JSON_FALSE:
        if (!m->text) {
            if (json_is_real(t->value))
                conf_real_text(json_real_value(t->value), buf, sizeof buf);
            else
                conf_describe(t->value, buf, sizeof buf);
            m->text = strdup(json_is_boolean(t->value)
                                 ? (json_is_true(t->value) ? "true" : "false")
                                 : buf);
            if (!m->text) {
                conf_cfg_error(t, NULL, "out of memory");
                return RELAIS_CFG_INVALID;
            }
        }
        if (out) *out = m->text;
        return RELAIS_CFG_OK;
    default:
        conf_bad_type(t, "expected a string");
        return RELAIS_CFG_INVALID;
    }
}

/** Parses s as [-+]?[0-9]+ into *v; 0, or -1 (format or range). */
static int conf_str_int(const char *s, int64_t *v)
{
    char *end;
    long long r;

    if (!conf_is_decint(s, strlen(s))) return -1;
    errno = 0;
    r = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *v = r;
    return 0;
}

int conf_cfg_int(const relais_cfg *node, const char *key, int64_t *out)
{
    const relais_cfg *t = conf_target(node, key);
    int64_t v;
    double d;

    if (!t) return RELAIS_CFG_MISSING;
    switch (json_typeof(t->value)) {
    case JSON_INTEGER:
        v = json_integer_value(t->value);
        break;
    case JSON_REAL:
        d = json_real_value(t->value);
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            goto bad;
        v = (int64_t)d;
        if ((double)v != d) goto bad; /* has a fractional part */
        break;
    case JSON_STRING:
        if (conf_str_int(json_string_value(t->value), &v) < 0) goto bad;
        break;
    default:
        goto bad;
    }
    if (out) *out = v;
    return RELAIS_CFG_OK;
bad:
    conf_bad_type(t, "expected an integer");
    return RELAIS_CFG_INVALID;
}

int conf_cfg_bool(const relais_cfg *node, const char *key, int *out)
{
    const relais_cfg *t = conf_target(node, key);
    const char *s;
    int v;

    if (!t) return RELAIS_CFG_MISSING;
    if (json_is_boolean(t->value)) {
        v = json_is_true(t->value);
    } else if (json_is_string(t->value) &&
               (strcasecmp((s = json_string_value(t->value)), "true") == 0 ||
                strcasecmp(s, "false") == 0)) {
        v = strcasecmp(s, "true") == 0;
    } else {
        conf_bad_type(t, "expected true or false");
        return RELAIS_CFG_INVALID;
    }
    if (out) *out = v;
    return RELAIS_CFG_OK;
}

/** Parses s as a decimal integer or float (no inf/nan); 0 or -1. */
static int conf_str_real(const char *s, double *v)
{
    size_t len = strlen(s);
    char *end;
    double d;

    if (!conf_is_float(s, len)) return -1; /* covers integers too */
    d = strtod(s, &end);
    if (*end || !isfinite(d)) return -1;
    *v = d;
    return 0;
}

int conf_cfg_real(const relais_cfg *node, const char *key, double *out)
{
    const relais_cfg *t = conf_target(node, key);
    double v;

    if (!t) return RELAIS_CFG_MISSING;
    if (json_is_number(t->value)) {
        v = json_number_value(t->value);
    } else if (!json_is_string(t->value) ||
               conf_str_real(json_string_value(t->value), &v) < 0) {
        conf_bad_type(t, "expected a number");
        return RELAIS_CFG_INVALID;
    }
    if (out) *out = v;
    return RELAIS_CFG_OK;
}

int conf_cfg_duration(const relais_cfg *node, const char *key,
                      int64_t *out_ms)
{
    const relais_cfg *t = conf_target(node, key);
    json_int_t i;
    int64_t v;
    double d;

    if (!t) return RELAIS_CFG_MISSING;
    switch (json_typeof(t->value)) {
    case JSON_STRING:
        if (conf_parse_duration(json_string_value(t->value), &v) < 0) goto bad;
        break;
    case JSON_INTEGER:
        i = json_integer_value(t->value);
        if (i < 0 || i > INT64_MAX / 1000) goto bad;
        v = (int64_t)i * 1000;
        break;
    case JSON_REAL:
        d = json_real_value(t->value) * 1000.0;
        if (!(d >= 0.0) || d >= 9.2e18) goto bad;
        v = (int64_t)d;
        if ((double)v < d) v++; /* round up to whole milliseconds */
        break;
    default:
        goto bad;
    }
    if (out_ms) *out_ms = v;
    return RELAIS_CFG_OK;
bad:
    conf_bad_type(t, "expected a duration such as \"10s\"");
    return RELAIS_CFG_INVALID;
}

void conf_cfg_error(const relais_cfg *node, const char *key, const char *fmt,
                    ...)
{
    va_list ap;

    va_start(ap, fmt);
    conf_cfg_verror(node, key, fmt, ap);
    va_end(ap);
}

void conf_cfg_verror(const relais_cfg *node, const char *key, const char *fmt,
                     va_list ap)
{
    struct conf_session *s;
    char msg[CONF_MAX_MSG];
    const char *path, *k = key;
    char *sub = NULL, *line;
    json_t *v;
    size_t n;

    if (!node || !fmt) return; /* no session to record it in */
    s = node->session;
    if (s->nerrors > CONF_MAX_ERRORS) return;
    if (s->nerrors == CONF_MAX_ERRORS) {
        line = strdup("too many errors");
        if (line) s->errors[s->nerrors++] = line;
        return;
    }
    vsnprintf(msg, sizeof msg, fmt, ap);
    path = conf_node_path(node);
    if (key) {
        /* spell the key as the document does when it is there */
        if (json_is_object(node->value)) {
            const char *dk = conf_find_key(node->value, key, &v);

            if (dk) k = dk;
        }
        sub = conf_path_join(path, k, 0);
        if (!sub) return;
        path = sub;
    }
    n = strlen(path) + strlen(msg) + 3;
    line = malloc(n);
    if (line) {
        if (*path)
            snprintf(line, n, "%s: %s", path, msg);
        else
            snprintf(line, n, "%s", msg);
        s->errors[s->nerrors++] = line;
    }
    free(sub);
}
