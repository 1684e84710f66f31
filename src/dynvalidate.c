/*
 * dynvalidate — see dynvalidate.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "dynvalidate.h"
#include "host_api.h"
#include "log.h"
#include "snapshot.h"
#include "tls.h"

#define DV_MAX_FILE (1024 * 1024)      /* cap on a file inlined into a document */
#define DV_MAX_CAPTURE (16 * 1024 * 1024) /* cap on the log read back */

/* ------------------------------------------------------------------ */
/* log capture                                                         */

static int dv_cap_fd = -1;        /* the capture file (unlinked), -1: none */
static int dv_cap_level_before;   /* the log level to restore */

int dv_capture_start(int level)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    int fd;

    if (dv_cap_fd >= 0) return -1;
    snprintf(path, sizeof(path), "%s/relais-log.XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) return -1;
    if (log_open(path) < 0) {
        unlink(path);
        close(fd);
        return -1;
    }
    unlink(path); /* both descriptors keep it */
    dv_cap_fd = fd;
    dv_cap_level_before = log_get_level();
    log_set_level(level);
    log_set_format(LOG_FORMAT_JSON);
    return 0;
}

/* The RELAIS_LOG_* level of a JSON log line's level name. */
static int dv_level(const char *name)
{
    if (!name) return RELAIS_LOG_INFO;
    if (!strcmp(name, "error")) return RELAIS_LOG_ERROR;
    if (!strcmp(name, "warn")) return RELAIS_LOG_WARN;
    if (!strcmp(name, "debug")) return RELAIS_LOG_DEBUG;
    return RELAIS_LOG_INFO;
}

void dv_capture_end(void (*cb)(void *arg, int level, const char *module, const char *message),
                    void *arg)
{
    char *buf = NULL, *p, *nl;
    size_t len = 0, cap = 0;
    ssize_t r;

    if (dv_cap_fd < 0) return;
    log_open(NULL);
    log_set_format(LOG_FORMAT_COMMON);
    log_set_level(dv_cap_level_before);
    if (lseek(dv_cap_fd, 0, SEEK_SET) == 0) {
        for (;;) {
            if (len + 4096 + 1 > cap) {
                size_t nc = cap ? cap * 2 : 65536;
                char *nb = nc <= DV_MAX_CAPTURE ? realloc(buf, nc) : NULL;
                if (!nb) break;
                buf = nb;
                cap = nc;
            }
            r = read(dv_cap_fd, buf + len, cap - len - 1);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            len += (size_t)r;
        }
    }
    close(dv_cap_fd);
    dv_cap_fd = -1;
    if (!buf) return;
    buf[len] = '\0';
    for (p = buf; *p; p = nl ? nl + 1 : p + strlen(p)) {
        json_t *line;
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line = json_loads(p, 0, NULL);
        if (json_is_object(line) && cb)
            cb(arg, dv_level(json_string_value(json_object_get(line, "level"))),
               json_string_value(json_object_get(line, "module")) ?: "",
               json_string_value(json_object_get(line, "message")) ?: "");
        json_decref(line);
    }
    free(buf);
}

/* ------------------------------------------------------------------ */
/* validation                                                          */

/** The state of one dv_check while its log lines are read back. */
struct dv_run {
    const struct dv_source *src; /* the sources */
    size_t n;                    /* how many */
    const char *mine;            /* the provider whose findings count */
    dv_report_cb cb;             /* where they go */
    void *arg;                   /* its argument */
    int errors;                  /* errors attributed to mine */
};

/* 1 when s holds "@mine" at a name boundary (followed by the end, '.',
 * '[', '"', ' ', ')', ',' or ';'). */
static int dv_names_mine(const char *s, const char *mine)
{
    size_t ml = strlen(mine);

    for (const char *p = strchr(s, '@'); p; p = strchr(p + 1, '@'))
        if (!strncmp(p + 1, mine, ml) && strchr(".[\" ),;", p[1 + ml])) return 1;
    return 0;
}

/* Copies path into out without the "@mine" suffixes of its segments. */
static void dv_strip_provider(const char *path, const char *mine, char *out, size_t outlen)
{
    size_t ml = strlen(mine), o = 0;

    for (const char *p = path; *p && o + 1 < outlen; p++) {
        if (*p == '@' && !strncmp(p + 1, mine, ml) && strchr(".[", p[1 + ml])) {
            p += ml;
            continue;
        }
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* One captured log line: attributes it (see dv_check) and reports it. */
static void dv_line(void *arg, int level, const char *module, const char *msg)
{
    struct dv_run *r = arg;
    const char *p = msg, *q, *colon;
    char path[1024], clean[1024];
    int mine = 0;

    (void)module;
    if (level > RELAIS_LOG_WARN) return;
    /* "ORIGIN: ..." */
    for (size_t i = 0; i < r->n; i++) {
        size_t ol = r->src[i].origin ? strlen(r->src[i].origin) : 0;
        if (ol && !strncmp(p, r->src[i].origin, ol) && p[ol] == ':' && p[ol + 1] == ' ') {
            if (!strcmp(r->src[i].provider, r->mine)) mine = 1;
            p += ol + 2;
            break;
        }
    }
    /* "router NAME disabled: ..." (any kind of object) */
    if ((q = strstr(p, " disabled: ")) != NULL) {
        const char *name = q;
        while (name > p && name[-1] != ' ') name--;
        if (dv_names_mine(name, r->mine) && (size_t)(q - name) > strlen(r->mine)) mine = 1;
        p = q + strlen(" disabled: ");
    } else if (!strncmp(p, "router ", 7) || !strncmp(p, "TCP router ", 11) ||
               !strncmp(p, "UDP router ", 11)) {
        /* a router's warnings: "router NAME: ..." */
        const char *name = strchr(p, ' ');
        if (p[0] != 'r') name = strchr(name + 1, ' ');
        q = name ? strstr(name + 1, ": ") : NULL;
        if (q) {
            char nm[512];
            snprintf(nm, sizeof(nm), "%.*s", (int)(q - name - 1), name + 1);
            if (dv_names_mine(nm, r->mine)) mine = 1;
            p = q + 2;
        }
    }
    /* a conflict on the default TLS options, mine coming last */
    if (strstr(p, "tls.options.default is defined by more than one provider (")) {
        char too[300];
        snprintf(too, sizeof(too), "(%s too)", r->mine);
        if (strstr(p, too)) mine = 1;
    }
    /* "KEY.PATH: reason" */
    path[0] = '\0';
    colon = strstr(p, ": ");
    if (colon && (size_t)(colon - p) < sizeof(path) && memchr(p, ' ', (size_t)(colon - p)) == NULL &&
        memchr(p, '.', (size_t)(colon - p)) != NULL) {
        snprintf(path, sizeof(path), "%.*s", (int)(colon - p), p);
        if (dv_names_mine(path, r->mine)) mine = 1;
        p = colon + 2;
    }
    if (mine) {
        dv_strip_provider(path, r->mine, clean, sizeof(clean));
        if (level == RELAIS_LOG_ERROR) r->errors++;
        if (r->cb) r->cb(r->arg, level == RELAIS_LOG_ERROR, clean, p);
    } else if (dv_names_mine(msg, r->mine) && r->cb) {
        /* another provider's object that uses one of mine */
        r->cb(r->arg, 0, "", msg);
    }
}

int dv_check(const struct dv_source *src, size_t n, const char *mine, const struct sc_config *sc,
             const struct pl_set *plugins, struct event_base *base, dv_report_cb cb, void *arg)
{
    struct snap_source *ss = calloc(n ? n : 1, sizeof(*ss));
    struct dv_run run = {src, n, mine, cb, arg, 0};
    struct snapshot *s = NULL;
    int rc = -1, captured;
    size_t i;

    if (!ss) return -1;
    host_set_control_base(base);
    captured = dv_capture_start(RELAIS_LOG_WARN) == 0;
    for (i = 0; i < n; i++) {
        json_t *d = src[i].doc;
        const char *o = src[i].origin;
        ss[i].provider = src[i].provider;
        ss[i].tree = snap_merge_docs(&d, &o, 1, src[i].provider, &ss[i].origins);
        if (!ss[i].tree) break;
    }
    if (i == n) s = snap_build(ss, n, NULL, sc, plugins, host_table());
    if (s) {
        snap_unref(s); /* no release hook: freed now, on this thread */
        rc = 0;
    }
    if (captured) dv_capture_end(dv_line, &run);
    host_set_control_base(NULL);
    for (i = 0; i < n; i++) {
        json_decref(ss[i].tree);
        json_decref(ss[i].origins);
    }
    free(ss);
    return rc < 0 ? -1 : run.errors;
}

/* ------------------------------------------------------------------ */
/* inlining files                                                      */

/* Reads the file at path (at most DV_MAX_FILE bytes) into a new
 * NUL-terminated buffer; *len gets its length.  NULL with err set. */
static char *dv_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(DV_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, DV_MAX_FILE + 1, f);
    if (ferror(f) || n > DV_MAX_FILE) {
        snprintf(err, errlen, ferror(f) ? "cannot read %s" : "%s is larger than 1 MiB", path);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The file named by v (a string) as a new JSON string of its contents;
 * v itself (a new reference) when it is empty or PEM text.  NULL with err
 * set. */
static json_t *dv_file_value(json_t *v, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    json_t *out;
    char *data;
    size_t len;

    if (!s || !*s || tls_is_pem(s)) return json_incref(v);
    data = dv_read_file(s, &len, err, errlen);
    if (!data) return NULL;
    out = json_stringn(data, len);
    if (!out) snprintf(err, errlen, "%s is not a text (PEM) file", s);
    free(data);
    return out;
}

/** What dv_inline_files passes around. */
struct dv_inline {
    dv_report_cb cb; /* where errors go */
    void *arg;       /* its argument */
    int errors;      /* how many */
};

/* Reports an error at path. */
static void dv_inline_error(struct dv_inline *in, const char *path, const char *msg)
{
    in->errors++;
    if (in->cb) in->cb(in->arg, 1, path, msg);
}

/* Replaces the file path in o[key] (any case) by the file's contents. */
static void dv_inline_key(struct dv_inline *in, json_t *o, const char *key, const char *path)
{
    const char *k;
    json_t *v, *nv;
    char err[600], p[1200];

    if (!json_is_object(o)) return;
    json_object_foreach(o, k, v) {
        if (strcasecmp(k, key) || !json_is_string(v)) continue;
        snprintf(p, sizeof(p), "%s.%s", path, k);
        nv = dv_file_value(v, err, sizeof(err));
        if (!nv) dv_inline_error(in, p, err);
        else json_object_set_new(o, k, nv);
        return;
    }
}

/* Replaces every file path of the list l (strings) by its contents. */
static void dv_inline_list(struct dv_inline *in, json_t *l, const char *path)
{
    char err[600], p[1200];

    for (size_t i = 0; json_is_array(l) && i < json_array_size(l); i++) {
        json_t *nv, *v = json_array_get(l, i);
        if (!json_is_string(v)) continue;
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        nv = dv_file_value(v, err, sizeof(err));
        if (!nv) dv_inline_error(in, p, err);
        else json_array_set_new(l, i, nv);
    }
}

/* A list of {certFile, keyFile}: both inlined. */
static void dv_inline_certs(struct dv_inline *in, json_t *l, const char *path)
{
    char p[1024];

    for (size_t i = 0; json_is_array(l) && i < json_array_size(l); i++) {
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        dv_inline_key(in, json_array_get(l, i), "certFile", p);
        dv_inline_key(in, json_array_get(l, i), "keyFile", p);
    }
}

/* The actual key of o matching key without case, or NULL. */
static const char *dv_key(json_t *o, const char *key)
{
    const char *k;
    json_t *v;

    if (!json_is_object(o)) return NULL;
    json_object_foreach(o, k, v)
        if (!strcasecmp(k, key)) return k;
    return NULL;
}

/* basicAuth / digestAuth map m: usersFile's entries appended to users. */
static void dv_inline_users(struct dv_inline *in, json_t *m, const char *path)
{
    const char *uk = dv_key(m, "usersFile"), *lk;
    json_t *users;
    char err[600], p[1200], *data, *line, *save = NULL;
    size_t len;

    if (!uk || !json_is_string(json_object_get(m, uk))) return;
    snprintf(p, sizeof(p), "%s.%s", path, uk);
    if (!*json_string_value(json_object_get(m, uk))) {
        json_object_del(m, uk);
        return;
    }
    lk = dv_key(m, "users");
    users = lk ? json_object_get(m, lk) : NULL;
    if (users && !json_is_array(users)) {
        dv_inline_error(in, p, "users is not a list: usersFile's entries cannot be added to it");
        return;
    }
    data = dv_read_file(json_string_value(json_object_get(m, uk)), &len, err, sizeof(err));
    if (!data) {
        dv_inline_error(in, p, err);
        return;
    }
    if (!users) {
        users = json_array();
        json_object_set_new(m, "users", users);
    }
    for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *e = line + strlen(line);
        while (*line == ' ' || *line == '\t' || *line == '\r') line++;
        while (e > line && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        *e = '\0';
        if (!*line || *line == '#') continue;
        if (json_array_append_new(users, json_string(line)) < 0)
            dv_inline_error(in, p, "an entry is not valid UTF-8 text");
    }
    memset(data, 0, len); /* password hashes */
    free(data);
    json_object_del(m, uk);
}

int dv_inline_files(json_t *doc, dv_report_cb cb, void *arg)
{
    struct dv_inline in = {cb, arg, 0};
    json_t *tls = conf_json_get(doc, "tls"), *sec, *v;
    const char *k, *top;
    char p[1024];

    dv_inline_certs(&in, conf_json_get(tls, "certificates"), "tls.certificates");
    sec = conf_json_get(tls, "stores");
    json_object_foreach(json_is_object(sec) ? sec : NULL, k, v) {
        snprintf(p, sizeof(p), "tls.stores.%s.defaultCertificate", k);
        dv_inline_key(&in, conf_json_get(v, "defaultCertificate"), "certFile", p);
        dv_inline_key(&in, conf_json_get(v, "defaultCertificate"), "keyFile", p);
    }
    sec = conf_json_get(tls, "options");
    json_object_foreach(json_is_object(sec) ? sec : NULL, k, v) {
        snprintf(p, sizeof(p), "tls.options.%s.clientAuth.caFiles", k);
        dv_inline_list(&in, conf_json_get(conf_json_get(v, "clientAuth"), "caFiles"), p);
    }
    for (int t = 0; t < 2; t++) {
        top = t ? "tcp" : "http";
        sec = conf_json_get(conf_json_get(doc, top), "serversTransports");
        json_object_foreach(json_is_object(sec) ? sec : NULL, k, v) {
            json_t *at = t ? conf_json_get(v, "tls") : v;
            snprintf(p, sizeof(p), "%s.serversTransports.%s%s.rootCAs", top, k, t ? ".tls" : "");
            dv_inline_list(&in, conf_json_get(at, "rootCAs"), p);
            snprintf(p, sizeof(p), "%s.serversTransports.%s%s.certificates", top, k,
                     t ? ".tls" : "");
            dv_inline_certs(&in, conf_json_get(at, "certificates"), p);
        }
    }
    sec = conf_json_get(conf_json_get(doc, "http"), "middlewares");
    json_object_foreach(json_is_object(sec) ? sec : NULL, k, v) {
        const char *types[] = {"basicAuth", "digestAuth"};
        for (size_t i = 0; i < 2; i++) {
            const char *tk = dv_key(v, types[i]);
            if (!tk) continue;
            snprintf(p, sizeof(p), "http.middlewares.%s.%s", k, tk);
            dv_inline_users(&in, json_object_get(v, tk), p);
        }
    }
    return in.errors;
}
