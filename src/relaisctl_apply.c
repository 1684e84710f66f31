/*
 * relaisctl_apply — the commands that write the cluster's configuration:
 * apply (P/apply/NAME), backup and restore.  See relaisctl.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acme_store.h"
#include "dynvalidate.h"
#include "plugin_loader.h"
#include "relaisctl.h"
#include "static_config.h"
#include "tls.h"

#define RC_TXN_MAX_OPS 100            /* operations per restore txn (etcd: 128) */
#define RC_TXN_MAX_BYTES (1u << 20)   /* value bytes per restore txn (etcd's
                                         request cap is 1.5 MiB, base64 on
                                         the wire adds a third) */
#define RC_BACKUP_VERSION 1           /* "relaisctl_backup" of this format */

/* ------------------------------------------------------------------ */
/* validation against the cluster's other documents                    */

/** Where dv findings are printed. */
struct rc_report {
    const char *file;   /* prefix of each line */
    const char *what;   /* inserted after it ("apply/x: "), or "" */
};

/* Prints one finding: "FILE: key.path: reason" (errors), "FILE: warning:
 * ..." (warnings). */
static void rc_report(void *arg, int error, const char *path, const char *msg)
{
    const struct rc_report *r = arg;

    fprintf(stderr, "%s: %s%s%s%s%s\n", r->file, error ? "" : "warning: ", r->what, path,
            *path ? ": " : "", msg);
}

/** A set of dynamic documents by provider, the validation's context. */
struct rc_docs {
    char **provider;    /* provider names (owned) */
    char **origin;      /* their names in messages (owned) */
    json_t **doc;       /* the documents (references) */
    size_t n;           /* how many */
};

/* Appends a document (taking the reference). */
static void rc_docs_add(struct rc_docs *d, const char *provider, const char *origin, json_t *doc)
{
    char **p = realloc(d->provider, (d->n + 1) * sizeof(*p));
    char **o = p ? realloc(d->origin, (d->n + 1) * sizeof(*o)) : NULL;
    json_t **j = o ? realloc(d->doc, (d->n + 1) * sizeof(*j)) : NULL;

    if (p) d->provider = p;
    if (o) d->origin = o;
    if (j) d->doc = j;
    if (!p || !o || !j || !(d->provider[d->n] = strdup(provider)) ||
        !(d->origin[d->n] = strdup(origin))) {
        fputs("relaisctl: out of memory\n", stderr);
        exit(RC_EXIT_BAD);
    }
    d->doc[d->n++] = doc;
}

/* Frees the set. */
static void rc_docs_free(struct rc_docs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->provider[i]);
        free(d->origin[i]);
        json_decref(d->doc[i]);
    }
    free(d->provider);
    free(d->origin);
    free(d->doc);
    memset(d, 0, sizeof(*d));
}

/* Adds the JSON documents of a range under P/<dir>/ to d, provider = the
 * rest of the key, except skip (may be NULL); unreadable ones are
 * skipped with a warning. */
static void rc_docs_from(struct rc_ctx *c, struct rc_docs *d, const struct rc_range *r,
                         const char *dir, const char *skip)
{
    size_t dl = strlen(dir);

    for (size_t i = 0; i < r->n; i++) {
        const char *rel = rc_rel(c, &r->kvs[i]), *name;
        json_t *doc;
        if (strncmp(rel, dir, dl) || rel[dl] != '/') continue;
        name = rel + dl + 1;
        if (!*name || strchr(name, '/') || (skip && !strcmp(name, skip))) continue;
        doc = json_loadb(r->kvs[i].value, r->kvs[i].value_len, 0, NULL);
        if (!json_is_object(doc)) {
            rc_err("warning: %s is not a JSON document: left out of the validation",
                   r->kvs[i].key);
            json_decref(doc);
            continue;
        }
        rc_docs_add(d, name, r->kvs[i].key, doc);
    }
}

/*
 * Validates d's document number mine (provider d->provider[mine]) with
 * the others as its context, printing each finding with file and what.
 * 0 when valid, else RC_EXIT_BAD (the errors printed).
 */
static int rc_validate(struct rc_ctx *c, const struct rc_docs *d, size_t mine, const char *file,
                       const char *what, struct sc_config *sc, struct pl_set *pl)
{
    struct dv_source *src = calloc(d->n, sizeof(*src));
    struct rc_report rep = {file, what};
    size_t n = 0;
    int errors;

    if (!src) return RC_EXIT_BAD;
    /* mine last: a conflict (tls.options.default) is then its own */
    for (size_t i = 0; i < d->n; i++) {
        if (i == mine) continue;
        src[n].provider = d->provider[i];
        src[n].doc = d->doc[i];
        src[n].origin = d->origin[i];
        n++;
    }
    src[n].provider = d->provider[mine];
    src[n].doc = d->doc[mine];
    src[n].origin = d->origin[mine];
    n++;
    errors = dv_check(src, n, d->provider[mine], sc, pl, c->base, rc_report, &rep);
    free(src);
    if (errors < 0) {
        rc_err("out of memory while validating");
        return RC_EXIT_BAD;
    }
    return errors ? RC_EXIT_BAD : RC_EXIT_OK;
}

/* Warns about top-level keys relais ignores. */
static void rc_unknown_top(const char *file, json_t *doc)
{
    static const char *const known[] = {"http", "tcp", "udp", "tls", NULL};
    const char *k;
    json_t *v;

    json_object_foreach(doc, k, v) {
        int ok = 0;
        for (size_t i = 0; known[i]; i++)
            if (!strcasecmp(k, known[i])) ok = 1;
        if (!ok) fprintf(stderr, "%s: warning: %s: unknown key, ignored\n", file, k);
    }
}

/* ------------------------------------------------------------------ */
/* apply                                                               */

static const char rc_apply_usage[] =
    "Usage: relaisctl apply FILE [--name NAME] [--dry-run]\n"
    "       relaisctl apply --delete NAME\n"
    "\n"
    "Validates the dynamic document FILE (YAML or JSON; - for stdin) as\n"
    "relais --check does, with the cluster's other documents, then stores it\n"
    "as P/apply/NAME: every node serves its objects as name@NAME.  Certificate\n"
    "and users files it names are replaced by their contents.  Each error is\n"
    "printed as FILE: key.path: reason, and nothing is written.\n"
    "\n"
    "  --name NAME   the document's name (default: FILE's base name without\n"
    "                extension); 1 to 63 of A-Z a-z 0-9 _ -\n"
    "  --dry-run     validate only\n"
    "  --delete NAME remove the document NAME\n"
    "\n"
    "Connection options: see relaisctl --help.\n";

/** apply's own options. */
struct rc_apply_opts {
    const char *name;   /* --name */
    const char *del;    /* --delete */
    int dry_run;        /* --dry-run */
};

/* Takes one of apply's options. */
static int rc_apply_opt(void *arg, int val, const char *optarg)
{
    struct rc_apply_opts *a = arg;

    if (val == 'n') a->name = optarg;
    else if (val == 'd') a->del = optarg;
    else if (val == 'D') a->dry_run = 1;
    return 0;
}

/* The default name of file: its base name without the extension (into
 * buf). */
static void rc_base_name(const char *file, char *buf, size_t len)
{
    const char *b = strrchr(file, '/'), *dot;

    b = b ? b + 1 : file;
    dot = strrchr(b, '.');
    snprintf(buf, len, "%.*s", (int)(dot && dot > b ? dot - b : (long)strlen(b)), b);
}

/* Checks an apply name.  0, or RC_EXIT_BAD after printing why. */
static int rc_check_apply_name(const char *name, int from_file)
{
    if (!rc_valid_name(name, 0)) {
        rc_err("\"%s\": a document name is 1 to 63 of A-Z a-z 0-9 _ -%s", name,
               from_file ? " (give one with --name)" : "");
        return RC_EXIT_BAD;
    }
    if (!strcmp(name, "internal") || !strcmp(name, "cluster")) {
        rc_err("\"%s\" is a provider name relais keeps for itself (--name)", name);
        return RC_EXIT_BAD;
    }
    return RC_EXIT_OK;
}

int rc_cmd_apply(struct rc_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"delete", required_argument, NULL, 'd'},
                                         {"dry-run", no_argument, NULL, 'D'},
                                         {NULL, 0, NULL, 0}};
    struct rc_apply_opts a = {NULL, NULL, 0};
    struct rc_range cfg = {0}, app = {0};
    struct rc_docs docs = {0};
    struct sc_config *sc = NULL;
    struct pl_set *pl = NULL;
    char name[256], *key = NULL, *data = NULL, *out = NULL;
    const char *file;
    json_t *doc = NULL;
    size_t len;
    int nargs, rc, inl;
    int64_t rev = 0, deleted = 0;

    rc = rc_parse_command(c, argc, argv, opts, rc_apply_opt, &a, rc_apply_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (a.del) {
        if (nargs || a.name || a.dry_run) {
            rc_err("apply --delete NAME takes no file, --name or --dry-run");
            return RC_EXIT_BAD;
        }
        if ((rc = rc_check_apply_name(a.del, 0)) != 0) return rc;
        {
            char sub[300];
            snprintf(sub, sizeof(sub), "apply/%s", a.del);
            key = rc_key(c, sub);
        }
        rc = rc_delete(c, key, &rev, &deleted);
        free(key);
        if (rc) return rc;
        if (!deleted) {
            rc_err("no document is applied as %s (%s/apply/%s)", a.del, c->prefix, a.del);
            return RC_EXIT_BAD;
        }
        printf("deleted %s at revision %lld\n", a.del, (long long)rev);
        return RC_EXIT_OK;
    }
    if (nargs != 1) {
        rc_err("apply: expected one FILE (or --delete NAME)");
        fputs(rc_apply_usage, stderr);
        return RC_EXIT_BAD;
    }
    file = argv[1];
    if (a.name) {
        snprintf(name, sizeof(name), "%s", a.name);
    } else if (!strcmp(file, "-")) {
        rc_err("apply -: give the document a --name");
        return RC_EXIT_BAD;
    } else {
        rc_base_name(file, name, sizeof(name));
    }
    if ((rc = rc_check_apply_name(name, !a.name)) != 0) return rc;
    /* 1. the document alone: syntax, shape, files */
    if (!(data = rc_read_file(file, RC_MAX_INPUT, &len))) return RC_EXIT_BAD;
    doc = rc_parse_doc(data, len, file);
    free(data);
    if (!doc) return RC_EXIT_BAD;
    rc_unknown_top(file, doc);
    {
        struct rc_report rep = {file, ""};
        inl = dv_inline_files(doc, rc_report, &rep);
    }
    if (inl) {
        rc_err("%s: %d error(s): %s not applied", file, inl, name);
        json_decref(doc);
        return RC_EXIT_BAD;
    }
    /* 2. with the cluster's other documents */
    key = rc_key(c, "config");
    rc = rc_get(c, key, 1, &cfg);
    free(key);
    if (!rc) {
        key = rc_key(c, "apply");
        rc = rc_get(c, key, 1, &app);
        free(key);
    }
    if (rc) goto out;
    for (size_t i = 0; i < cfg.n; i++) {
        const char *rel = rc_rel(c, &cfg.kvs[i]);
        if (!strcmp(rel + strlen("config/"), name)) {
            rc_err("\"%s\" is the name of a provider the controllers publish (%s): choose "
                   "another --name", name, cfg.kvs[i].key);
            rc = RC_EXIT_BAD;
            goto out;
        }
    }
    rc_docs_from(c, &docs, &cfg, "config", NULL);
    rc_docs_from(c, &docs, &app, "apply", name);
    rc_docs_add(&docs, name, file, json_incref(doc));
    if ((rc = rc_validation_setup(c, docs.doc, docs.n, &sc, &pl)) != 0) goto out;
    rc = rc_validate(c, &docs, docs.n - 1, file, "", sc, pl);
    if (rc) {
        rc_err("%s: invalid: %s not applied", file, name);
        goto out;
    }
    if (a.dry_run) {
        printf("%s is valid (not applied: --dry-run)\n", file);
        goto out;
    }
    /* 3. stored */
    out = json_dumps(doc, JSON_COMPACT);
    if (!out) {
        rc_err("out of memory");
        rc = RC_EXIT_BAD;
        goto out;
    }
    {
        char sub[300];
        snprintf(sub, sizeof(sub), "apply/%s", name);
        key = rc_key(c, sub);
    }
    rc = rc_put(c, key, out, strlen(out), &rev);
    free(key);
    if (!rc) printf("applied %s at revision %lld\n", name, (long long)rev);
out:
    free(out);
    rc_docs_free(&docs);
    rc_range_free(&cfg);
    rc_range_free(&app);
    json_decref(doc);
    if (pl) pl_set_free(pl);
    sc_free(sc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* backup                                                              */

/* 1 when the key (relative to P/) belongs in a backup: not the leader,
 * not a node's status, not on a lease (locks, challenges). */
static int rc_backed_up(const char *rel, int64_t lease)
{
    if (lease) return 0;
    if (!strcmp(rel, "leader") || !strncmp(rel, "nodes/", 6)) return 0;
    return *rel != '\0';
}

static const char rc_backup_usage[] =
    "Usage: relaisctl backup FILE|-\n"
    "\n"
    "Writes every key of the prefix but P/leader, P/nodes/* and the keys held\n"
    "by a lease (locks) to FILE (mode 0600, replaced atomically) or to stdout:\n"
    "{\"relaisctl_backup\": 1, \"prefix\": P, \"revision\": R, \"created\": TIME,\n"
    " \"keys\": {\"config/file\": VALUE, ...}}.  Values are strings, or\n"
    "{\"base64\": ...} when they are not UTF-8 text.\n"
    "\n"
    "Connection options: see relaisctl --help.\n";

/* No own options. */
static int rc_no_opt(void *arg, int val, const char *optarg)
{
    (void)arg;
    (void)val;
    (void)optarg;
    return -1;
}

int rc_cmd_backup(struct rc_ctx *c, int argc, char **argv)
{
    struct rc_range r = {0};
    json_t *keys, *top;
    char created[40], *text = NULL, err[512];
    const char *file;
    size_t n = 0;
    int nargs, rc;

    rc = rc_parse_command(c, argc, argv, NULL, rc_no_opt, NULL, rc_backup_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (nargs != 1) {
        rc_err("backup: expected one FILE (- for stdout)");
        return RC_EXIT_BAD;
    }
    file = argv[1];
    if ((rc = rc_get(c, c->prefix, 1, &r)) != 0) return rc;
    keys = json_object();
    for (size_t i = 0; keys && i < r.n; i++) {
        const char *rel = rc_rel(c, &r.kvs[i]);
        json_t *v;
        if (!rc_backed_up(rel, r.kvs[i].lease)) continue;
        v = json_stringn(r.kvs[i].value, r.kvs[i].value_len);
        if (!v) {
            char *b = as_b64_encode((const unsigned char *)r.kvs[i].value, r.kvs[i].value_len);
            v = b ? json_pack("{s:s}", "base64", b) : NULL;
            free(b);
        }
        if (!v || json_object_set_new(keys, rel, v) < 0) {
            json_decref(keys);
            keys = NULL;
        }
        n++;
    }
    rc_time_iso((int64_t)time(NULL), created, sizeof(created));
    top = keys ? json_pack("{s:i,s:s,s:I,s:s,s:o}", "relaisctl_backup", RC_BACKUP_VERSION,
                           "prefix", c->prefix, "revision", (json_int_t)r.revision, "created",
                           created, "keys", keys)
               : NULL;
    text = top ? json_dumps(top, JSON_INDENT(2)) : NULL;
    json_decref(top);
    if (!text) {
        rc_err("out of memory");
        rc_range_free(&r);
        return RC_EXIT_BAD;
    }
    if (!strcmp(file, "-")) {
        fputs(text, stdout);
        fputc('\n', stdout);
        if (fflush(stdout) != 0) {
            rc_err("stdout: write error");
            rc = RC_EXIT_BAD;
        }
    } else {
        size_t tl = strlen(text);
        text[tl] = '\n'; /* json_dumps' NUL: the file ends with a newline */
        if (as_write_atomic(file, text, tl + 1, err, sizeof(err)) < 0) {
            rc_err("%s: %s", file, err);
            rc = RC_EXIT_BAD;
        } else {
            printf("backed up %zu keys of prefix %s at revision %lld to %s\n", n, c->prefix,
                   (long long)r.revision, file);
        }
    }
    free(text);
    rc_range_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* restore                                                             */

static const char rc_restore_usage[] =
    "Usage: relaisctl restore FILE|- [--force]\n"
    "\n"
    "Validates a backup (its format, every apply/* document as apply does and\n"
    "every certs/* certificate), then writes its keys under the prefix (the\n"
    "current --prefix, whatever the backup's was) in transactions of at most\n"
    "100 keys.  A prefix that holds keys a backup would contain is refused\n"
    "unless --force, which also deletes those the backup does not have.\n"
    "\n"
    "  --force       overwrite a non-empty prefix\n"
    "  --dry-run     validate only\n"
    "\n"
    "Connection options: see relaisctl --help.\n";

/** restore's own options. */
struct rc_restore_opts {
    int force;   /* --force */
    int dry_run; /* --dry-run */
};

/* Takes one of restore's options. */
static int rc_restore_opt(void *arg, int val, const char *optarg)
{
    struct rc_restore_opts *o = arg;

    (void)optarg;
    if (val == 'f') o->force = 1;
    else if (val == 'D') o->dry_run = 1;
    return 0;
}

/** One key to write. */
struct rc_put_item {
    const char *rel;     /* key relative to P/ (borrowed from the backup) */
    char *value;         /* bytes (owned) */
    size_t len;          /* their length */
};

/* Checks a certs/NAME value: {"certificate", "key"} that load and match.
 * NULL, or the reason (static text or err). */
static const char *rc_check_cert_value(const char *v, size_t len, char *err, size_t errlen)
{
    json_t *o = json_loadb(v, len, 0, NULL);
    const char *cert = json_string_value(json_object_get(o, "certificate"));
    const char *key = json_string_value(json_object_get(o, "key"));
    X509 *x = NULL;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *pk = NULL;
    const char *why = NULL;

    if (!cert || !key || !tls_is_pem(cert) || !tls_is_pem(key)) {
        why = "expected {\"certificate\": PEM, \"key\": PEM}";
    } else if (tls_load_cert(cert, key, &x, &chain, &pk, err, errlen) < 0) {
        why = err;
    }
    X509_free(x);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(pk);
    json_decref(o);
    return why;
}

/* Reads and checks the backup at file: fills items (sorted as in the
 * file) and the apply documents; prints every error.  0 or RC_EXIT_BAD. */
static int rc_restore_load(const char *file, json_t *top, struct rc_put_item **itemsp,
                           size_t *nitems, struct rc_docs *docs)
{
    json_t *keys = json_object_get(top, "keys"), *v;
    struct rc_put_item *items;
    const char *k;
    int bad = 0;
    size_t n = 0;

    if (!json_is_object(top) || json_integer_value(json_object_get(top, "relaisctl_backup")) !=
                                    RC_BACKUP_VERSION) {
        fprintf(stderr, "%s: not a relaisctl backup (\"relaisctl_backup\": %d missing)\n", file,
                RC_BACKUP_VERSION);
        return RC_EXIT_BAD;
    }
    if (!json_is_object(keys)) {
        fprintf(stderr, "%s: keys: expected a map of key to value\n", file);
        return RC_EXIT_BAD;
    }
    items = calloc(json_object_size(keys) + 1, sizeof(*items));
    if (!items) return RC_EXIT_BAD;
    json_object_foreach(keys, k, v) {
        struct rc_put_item *it = &items[n];
        const char *s = json_string_value(v), *b64 = json_string_value(json_object_get(v, "base64"));
        if (!rc_backed_up(k, 0) || k[0] == '/' || strstr(k, "//")) {
            fprintf(stderr, "%s: keys.%s: not a key relaisctl restores\n", file, k);
            bad = 1;
            continue;
        }
        if (s) {
            it->len = json_string_length(v);
            it->value = malloc(it->len + 1);
            if (it->value) memcpy(it->value, s, it->len + 1);
        } else if (b64 && json_object_size(v) == 1) {
            it->value = (char *)as_b64_decode(b64, &it->len);
            if (!it->value) {
                fprintf(stderr, "%s: keys.%s.base64: not base64\n", file, k);
                bad = 1;
                continue;
            }
        } else {
            fprintf(stderr, "%s: keys.%s: expected a string or {\"base64\": ...}\n", file, k);
            bad = 1;
            continue;
        }
        if (!it->value) {
            bad = 1;
            continue;
        }
        it->rel = k;
        n++;
        if (!strncmp(k, "config/", 7) || !strncmp(k, "apply/", 6)) {
            int apply = k[0] == 'a';
            const char *name = k + (apply ? 6 : 7);
            json_t *doc = json_loadb(it->value, it->len, 0, NULL);
            if (!json_is_object(doc) || !*name || strchr(name, '/')) {
                fprintf(stderr, "%s: keys.%s: not a JSON dynamic document\n", file, k);
                json_decref(doc);
                if (apply) bad = 1; /* the leader republishes config/NAME anyway */
                continue;
            }
            rc_docs_add(docs, name, k, doc);
        } else if (!strncmp(k, "certs/", 6)) {
            char err[512];
            const char *why = rc_check_cert_value(it->value, it->len, err, sizeof(err));
            if (why) {
                fprintf(stderr, "%s: keys.%s: %s\n", file, k, why);
                bad = 1;
            }
        }
    }
    *itemsp = items;
    *nitems = n;
    return bad ? RC_EXIT_BAD : RC_EXIT_OK;
}

/* Frees the items. */
static void rc_items_free(struct rc_put_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) free(items[i].value);
    free(items);
}

/* Orders the items: everything, then generation last (a node reading
 * the generation sees the configuration it counts). */
static int rc_item_cmp(const void *a, const void *b)
{
    const struct rc_put_item *x = a, *y = b;
    int gx = !strcmp(x->rel, "generation"), gy = !strcmp(y->rel, "generation");

    if (gx != gy) return gx - gy;
    return strcmp(x->rel, y->rel);
}

int rc_cmd_restore(struct rc_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {{"force", no_argument, NULL, 'f'},
                                         {"dry-run", no_argument, NULL, 'D'},
                                         {NULL, 0, NULL, 0}};
    struct rc_restore_opts ro = {0, 0};
    struct rc_put_item *items = NULL;
    struct rc_docs docs = {0};
    struct rc_range cur = {0};
    struct sc_config *sc = NULL;
    struct pl_set *pl = NULL;
    struct etc_op *ops = NULL;
    char **keys = NULL;
    size_t nitems = 0, nops = 0, ndel = 0, ntxn = 0, len;
    json_t *top = NULL;
    json_error_t jerr;
    const char *file, *bprefix;
    char *data;
    int nargs, rc;
    int64_t rev = 0;

    rc = rc_parse_command(c, argc, argv, opts, rc_restore_opt, &ro, rc_restore_usage, &nargs);
    if (rc) return rc > 0 ? RC_EXIT_OK : RC_EXIT_BAD;
    if (nargs != 1) {
        rc_err("restore: expected one FILE (- for stdin)");
        return RC_EXIT_BAD;
    }
    file = argv[1];
    if (!(data = rc_read_file(file, RC_MAX_INPUT, &len))) return RC_EXIT_BAD;
    top = json_loadb(data, len, 0, &jerr);
    free(data);
    if (!top) {
        fprintf(stderr, "%s:%d:%d: %s\n", file, jerr.line, jerr.column, jerr.text);
        return RC_EXIT_BAD;
    }
    /* 1. the file: format, keys, certificates, apply documents */
    rc = rc_restore_load(file, top, &items, &nitems, &docs);
    if (!rc && docs.n) {
        if ((rc = rc_validation_setup(c, docs.doc, docs.n, &sc, &pl)) != 0) goto out;
        for (size_t i = 0; i < docs.n; i++) {
            char what[300];
            if (strncmp(docs.origin[i], "apply/", 6)) continue;
            snprintf(what, sizeof(what), "keys.%s: ", docs.origin[i]);
            if (rc_validate(c, &docs, i, file, what, sc, pl)) rc = RC_EXIT_BAD;
        }
    }
    if (rc) {
        rc_err("%s: invalid backup: nothing restored", file);
        goto out;
    }
    bprefix = json_string_value(json_object_get(top, "prefix"));
    if (ro.dry_run) {
        printf("%s is valid: %zu keys (not restored: --dry-run)\n", file, nitems);
        goto out;
    }
    /* 2. the target prefix */
    if ((rc = rc_get(c, c->prefix, 1, &cur)) != 0) goto out;
    keys = calloc(cur.n + 1, sizeof(*keys));
    if (!keys) {
        rc = RC_EXIT_BAD;
        goto out;
    }
    for (size_t i = 0; i < cur.n; i++) {
        const char *rel = rc_rel(c, &cur.kvs[i]);
        if (!rc_backed_up(rel, cur.kvs[i].lease)) continue;
        keys[ndel++] = cur.kvs[i].key; /* present now; dropped below if restored */
    }
    if (ndel && !ro.force) {
        rc_err("prefix %s is not empty (%zu keys, %s first): use --force to overwrite it", c->prefix,
               ndel, keys[0]);
        rc = RC_EXIT_BAD;
        goto out;
    }
    /* 3. the operations: stale keys deleted, then the backup's keys
     * (generation last), at most RC_TXN_MAX_OPS and RC_TXN_MAX_BYTES of
     * values per transaction */
    qsort(items, nitems, sizeof(*items), rc_item_cmp);
    ops = calloc(ndel + nitems + 1, sizeof(*ops));
    if (!ops) {
        rc = RC_EXIT_BAD;
        goto out;
    }
    for (size_t i = 0; i < ndel; i++) {
        const char *rel = keys[i] + strlen(c->prefix) + 1;
        int kept = 0;
        for (size_t j = 0; j < nitems && !kept; j++) kept = !strcmp(items[j].rel, rel);
        if (kept) continue;
        ops[nops].type = ETC_OP_DELETE;
        ops[nops].key = keys[i];
        nops++;
    }
    ndel = nops;
    for (size_t i = 0; i < nitems; i++) {
        ops[nops].type = ETC_OP_PUT;
        ops[nops].key = rc_key(c, items[i].rel);
        ops[nops].value = items[i].value;
        ops[nops].value_len = items[i].len;
        nops++;
    }
    for (size_t i = 0; i < nops;) {
        size_t j = i, bytes = 0;
        while (j < nops && j - i < RC_TXN_MAX_OPS &&
               (j == i || bytes + ops[j].value_len <= RC_TXN_MAX_BYTES))
            bytes += ops[j++].value_len;
        if ((rc = rc_txn(c, ops + i, j - i, &rev)) != 0) {
            rc_err("restore stopped after %zu of %zu operations (%zu transactions): run it again "
                   "with --force", i, nops, ntxn);
            goto out;
        }
        ntxn++;
        i = j;
    }
    printf("restored %zu keys into prefix %s in %zu transaction%s, revision %lld", nitems,
           c->prefix, ntxn, ntxn == 1 ? "" : "s", (long long)rev);
    if (ndel) printf(" (%zu stale keys deleted)", ndel);
    if (bprefix && strcmp(bprefix, c->prefix)) printf(" (backup of prefix %s)", bprefix);
    printf("\n");
out:
    for (size_t i = ndel; ops && i < nops; i++) free((char *)ops[i].key);
    free(ops);
    free(keys);
    rc_range_free(&cur);
    rc_items_free(items, nitems);
    rc_docs_free(&docs);
    if (pl) pl_set_free(pl);
    sc_free(sc);
    json_decref(top);
    return rc;
}
