/*
 * file — the file provider (config key "file"), as Traefik's: the dynamic
 * configuration comes from one file (`filename`) or from every *.yaml,
 * *.yml and *.json file of a directory (`directory`, sorted by name, not
 * recursive, hidden files ignored), re-read when it changes (`watch`,
 * default true) and on SIGHUP.  Module prefix: fp_.
 *
 * Watching: inotify on the DIRECTORY (editors and `mv` replace files, so a
 * watch on the file itself would be lost), filtered by name, debounced by a
 * 50 ms host timer; then everything is re-read and published as a whole.
 * A document that does not parse makes provider_publish fail and the host
 * keeps the previous configuration.
 *
 * All calls run on the control thread.  Built only against the SDK headers.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <relais/plugin.h>

/** Largest file read. */
#define FP_MAX_FILE_SIZE (64u * 1024u * 1024u)
/** Most configuration files read from one directory. */
#define FP_MAX_FILES 10000u
/** Debounce delay after a change, in ms. */
#define FP_DEBOUNCE_MS 10
/** Longest path handled. */
#define FP_PATH_MAX 4096
/** Events inotify reports on the watched directory. */
#define FP_INOTIFY_MASK                                                       \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM |   \
     IN_ATTRIB)

/** One provider instance. */
struct fp_inst {
    const relais_host *host; /* host function table */
    relais_provider *prov;   /* the host's handle for publishing */
    char *filename;          /* `filename` option (owned), or NULL */
    char *directory;         /* `directory` option (owned), or NULL */
    char *watch_dir;         /* directory watched (owned) */
    const char *base;        /* filename's last component (in filename) */
    int watch;               /* `watch` option */
    int ifd;                 /* inotify descriptor, -1 when none */
    relais_watch *w;         /* host watch on ifd, or NULL */
    relais_timer *debounce;  /* debounce timer, or NULL */
    int have_hash;           /* 1 once a publish was accepted */
    uint64_t last_hash;      /* hash of what was last accepted */
};

/** One document read from disk. */
struct fp_file {
    char *path; /* its path (owned) */
    char *data; /* its bytes (owned) */
    size_t len; /* number of bytes */
};

/** The files of one read. */
struct fp_files {
    struct fp_file *items; /* files, in publishing order */
    size_t n;              /* how many */
    size_t cap;            /* allocated */
};

/** Who the messages are from: the provider's configured name. */
static const char *fp_who(const struct fp_inst *fp)
{
    const char *n = NULL;

    if (fp->host->provider_name) n = fp->host->provider_name(fp->prov);
    return n ? n : "file";
}

/** Frees the files of a read (not the struct itself). */
static void fp_files_clear(struct fp_files *fs)
{
    size_t i;

    for (i = 0; i < fs->n; i++) {
        free(fs->items[i].path);
        free(fs->items[i].data);
    }
    free(fs->items);
    memset(fs, 0, sizeof(*fs));
}

/**
 * Reads path whole (at most FP_MAX_FILE_SIZE bytes) and appends it to fs
 * (at most FP_MAX_FILES entries).  0, or -1 after logging.
 */
static int fp_read_file(struct fp_inst *fp, const char *path,
                        struct fp_files *fs)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0, cap;
    int fd, rc = -1;

    if (fs->n >= FP_MAX_FILES) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "more than %u files to "
                      "read", FP_MAX_FILES);
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: %s",
                      path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: not a "
                      "regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > FP_MAX_FILE_SIZE) goto toobig;
    /* One byte more than the size seen, to notice a file still growing. */
    cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (!buf) goto nomem;
    for (;;) {
        ssize_t r;
        if (len == cap) {
            size_t ncap = cap * 2;
            char *nb;
            if (cap > FP_MAX_FILE_SIZE) goto toobig;
            if (ncap > (size_t)FP_MAX_FILE_SIZE + 1)
                ncap = (size_t)FP_MAX_FILE_SIZE + 1;
            nb = realloc(buf, ncap);
            if (!nb) goto nomem;
            buf = nb;
            cap = ncap;
        }
        r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: %s",
                          path, strerror(errno));
            goto out;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    if (len > FP_MAX_FILE_SIZE) goto toobig;
    if (fs->n == fs->cap) {
        size_t ncap = fs->cap ? fs->cap * 2 : 8;
        struct fp_file *ni = realloc(fs->items, ncap * sizeof(*ni));
        if (!ni) goto nomem;
        fs->items = ni;
        fs->cap = ncap;
    }
    fs->items[fs->n].path = strdup(path);
    if (!fs->items[fs->n].path) goto nomem;
    fs->items[fs->n].data = buf;
    fs->items[fs->n].len = len;
    fs->n++;
    buf = NULL;
    rc = 0;
    goto out;

toobig:
    fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: larger "
                  "than %u bytes", path, FP_MAX_FILE_SIZE);
    goto out;
nomem:
    fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: out of "
                  "memory", path);
out:
    free(buf);
    if (fd >= 0) close(fd);
    return rc;
}

/** 1 when name (a directory entry) is a configuration file of ours. */
static int fp_is_conf_name(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (name[0] == '.' || !dot) return 0;
    return !strcmp(dot, ".yaml") || !strcmp(dot, ".yml") ||
           !strcmp(dot, ".json");
}

/** qsort comparator over char* (strcmp order). */
static int fp_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/**
 * Reads every configuration file of fp->directory, sorted by name, into
 * fs.  0, or -1 after logging.
 */
static int fp_read_dir(struct fp_inst *fp, struct fp_files *fs)
{
    DIR *dh;
    struct dirent *de;
    char **names = NULL, path[FP_PATH_MAX];
    size_t n = 0, cap = 0, i;
    int rc = -1;

    dh = opendir(fp->directory);
    if (!dh) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read directory "
                      "%s: %s", fp->directory, strerror(errno));
        return -1;
    }
    while ((de = readdir(dh)) != NULL) {
        struct stat st;
        const char *dot = strrchr(de->d_name, '.');
        if (de->d_name[0] != '.' && dot && !strcmp(dot, ".toml")) {
            fp->host->log(RELAIS_LOG_WARN, fp_who(fp), "ignoring %s/%s: TOML "
                          "is not supported, use YAML or JSON", fp->directory,
                          de->d_name);
            continue;
        }
        if (!fp_is_conf_name(de->d_name)) continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", fp->directory,
                             de->d_name) >= sizeof(path))
            continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n >= FP_MAX_FILES) {
            fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "directory %s holds "
                          "more than %u configuration files", fp->directory,
                          FP_MAX_FILES);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (!nn) goto nomem;
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) goto nomem;
        n++;
    }
    if (n) qsort(names, n, sizeof(*names), fp_cmp_names);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", fp->directory, names[i]);
        if (fp_read_file(fp, path, fs) < 0) goto out;
    }
    rc = 0;
    goto out;
nomem:
    fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "out of memory reading %s",
                  fp->directory);
out:
    for (i = 0; i < n; i++) free(names[i]);
    free(names);
    closedir(dh);
    return rc;
}

/** FNV-1a over the files' paths and bytes (detects "nothing changed"). */
static uint64_t fp_hash(const struct fp_files *fs)
{
    uint64_t h = 1469598103934665603ull;
    size_t i, j;

    for (i = 0; i < fs->n; i++) {
        const char *p = fs->items[i].path;
        for (j = 0; p[j]; j++) h = (h ^ (unsigned char)p[j]) * 1099511628211ull;
        h = (h ^ 0xffu) * 1099511628211ull;
        for (j = 0; j < fs->items[i].len; j++)
            h = (h ^ (unsigned char)fs->items[i].data[j]) * 1099511628211ull;
        h = (h ^ 0xfeu) * 1099511628211ull;
    }
    return h;
}

/**
 * Reads everything and publishes it.  force 0 skips publishing when the
 * bytes are those last accepted (a touch, an editor's extra events).
 * 0 when published (or unchanged), -1 on a read error (logged, nothing
 * published) or when the host rejected the documents.
 */
static int fp_publish(struct fp_inst *fp, int force)
{
    struct fp_files fs = {0};
    relais_doc *docs = NULL;
    uint64_t h;
    size_t i;
    int rc = -1;

    if (fp->filename ? fp_read_file(fp, fp->filename, &fs)
                     : fp_read_dir(fp, &fs))
        goto out;
    h = fp_hash(&fs);
    if (!force && fp->have_hash && h == fp->last_hash) {
        rc = 0;
        goto out;
    }
    if (fs.n) {
        docs = calloc(fs.n, sizeof(*docs));
        if (!docs) {
            fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "out of memory");
            goto out;
        }
    }
    for (i = 0; i < fs.n; i++) {
        docs[i].source = fs.items[i].path;
        docs[i].data = fs.items[i].data;
        docs[i].len = fs.items[i].len;
        docs[i].format = RELAIS_DOC_AUTO;
    }
    if (fp->host->provider_publish(fp->prov, docs, fs.n) != 0) {
        fp->have_hash = 0;
        goto out;
    }
    fp->have_hash = 1;
    fp->last_hash = h;
    rc = 0;
out:
    free(docs);
    fp_files_clear(&fs);
    return rc;
}

/**
 * Control thread.  Reads the options: exactly one of filename/directory
 * (an empty string counts as unset), watch (default true).  Unknown keys
 * are ignored.  Nothing is read from disk yet.  0, or -1 after cfg_error.
 */
static int fp_create(const relais_host *host, const relais_cfg *cfg,
                     relais_provider *prov, void **inst)
{
    const char *filename = NULL, *directory = NULL;
    struct fp_inst *fp = NULL;
    int watch = 1;
    char *slash;

    if (host->cfg_string(cfg, "filename", &filename) == RELAIS_CFG_INVALID ||
        host->cfg_string(cfg, "directory", &directory) ==
            RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "watch", &watch) == RELAIS_CFG_INVALID)
        return -1;
    if (filename && !filename[0]) filename = NULL;
    if (directory && !directory[0]) directory = NULL;
    if (!filename && !directory) {
        host->cfg_error(cfg, NULL, "either filename or directory must be set");
        return -1;
    }
    if (filename && directory) {
        host->cfg_error(cfg, NULL,
                        "filename and directory are mutually exclusive");
        return -1;
    }
    if (strlen(filename ? filename : directory) >= FP_PATH_MAX - 256) {
        host->cfg_error(cfg, filename ? "filename" : "directory",
                        "path too long");
        return -1;
    }
    fp = calloc(1, sizeof(*fp));
    if (!fp) goto nomem;
    fp->host = host;
    fp->prov = prov;
    fp->watch = watch != 0;
    fp->ifd = -1;
    if (filename) {
        if (!(fp->filename = strdup(filename))) goto nomem;
        slash = strrchr(fp->filename, '/');
        if (!slash) {
            fp->watch_dir = strdup(".");
            fp->base = fp->filename;
        } else {
            fp->watch_dir = slash == fp->filename
                                ? strdup("/")
                                : strndup(fp->filename,
                                          (size_t)(slash - fp->filename));
            fp->base = slash + 1;
        }
    } else {
        if (!(fp->directory = strdup(directory))) goto nomem;
        fp->watch_dir = strdup(directory);
    }
    if (!fp->watch_dir) goto nomem;
    *inst = fp;
    return 0;

nomem:
    if (fp) {
        free(fp->filename);
        free(fp->directory);
        free(fp->watch_dir);
        free(fp);
    }
    host->cfg_error(cfg, NULL, "out of memory");
    return -1;
}

/** Control thread: reads the source once and publishes it (--check). */
static int fp_load_once(void *inst)
{
    return fp_publish(inst, 1);
}

/** Control thread, debounce timer fired: re-read and publish if changed. */
static void fp_on_timer(void *arg)
{
    struct fp_inst *fp = arg;

    fp_publish(fp, 0);
}

/** 1 when a change of name (in the watched directory) concerns us. */
static int fp_relevant(const struct fp_inst *fp, const char *name)
{
    /* Kubernetes ConfigMap volumes swap the "..data" symlink. */
    if (!strcmp(name, "..data")) return 1;
    if (fp->filename) return !strcmp(name, fp->base);
    return fp_is_conf_name(name);
}

/**
 * Control thread, inotify fd readable: drains the events and (re)arms the
 * debounce timer when one concerns our file(s).
 */
static void fp_on_inotify(int fd, int events, void *arg)
{
    struct fp_inst *fp = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;

    (void)events;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        const char *p;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (p = buf; p < buf + r;) {
            const struct inotify_event *ev = (const void *)p;
            if (ev->mask & IN_Q_OVERFLOW) hit = 1;
            else if (ev->mask & IN_IGNORED)
                fp->host->log(RELAIS_LOG_WARN, fp_who(fp), "%s is no longer "
                              "watched (removed?)", fp->watch_dir);
            else if (ev->len && fp_relevant(fp, ev->name)) hit = 1;
            p += sizeof(*ev) + ev->len;
        }
    }
    if (hit && fp->debounce)
        fp->host->timer_start(fp->debounce, FP_DEBOUNCE_MS);
}

/** Control thread: frees the watch, the inotify fd and the timer. */
static void fp_stop(void *inst)
{
    struct fp_inst *fp = inst;

    if (fp->w) fp->host->watch_free(fp->w);
    fp->w = NULL;
    if (fp->ifd >= 0) close(fp->ifd);
    fp->ifd = -1;
    if (fp->debounce) fp->host->timer_free(fp->debounce);
    fp->debounce = NULL;
}

/**
 * Control thread.  Publishes the source once, then (watch on) watches its
 * directory.  A read error fails the start; a document the host rejects
 * fails it only when not watching (when watching, fixing the file is
 * picked up).  0, or -1 (logged).
 */
static int fp_start(void *inst)
{
    struct fp_inst *fp = inst;
    struct stat st;
    int rc;

    const char *src = fp->filename ? fp->filename : fp->directory;

    /* Tell "cannot read" from "rejected": a missing source is fatal. */
    if (stat(src, &st) != 0) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: %s", src,
                      strerror(errno));
        return -1;
    }
    if (fp->directory && !S_ISDIR(st.st_mode)) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot read %s: not a "
                      "directory", src);
        return -1;
    }
    rc = fp_publish(fp, 1);
    if (!fp->watch) return rc;
    fp->debounce = fp->host->timer_new(fp_on_timer, fp);
    fp->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!fp->debounce || fp->ifd < 0) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot watch %s: %s",
                      fp->watch_dir, fp->ifd < 0 ? strerror(errno)
                                                 : "no timer");
        goto fail;
    }
    if (inotify_add_watch(fp->ifd, fp->watch_dir, FP_INOTIFY_MASK) < 0) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot watch %s: %s",
                      fp->watch_dir, strerror(errno));
        goto fail;
    }
    fp->w = fp->host->watch_new(fp->ifd, RELAIS_WATCH_READ, fp_on_inotify, fp);
    if (!fp->w) {
        fp->host->log(RELAIS_LOG_ERROR, fp_who(fp), "cannot watch %s",
                      fp->watch_dir);
        goto fail;
    }
    return 0;

fail:
    fp_stop(fp);
    return -1;
}

/** Control thread (SIGHUP): re-reads and publishes. */
static void fp_reload(void *inst)
{
    fp_publish(inst, 1);
}

/** Control thread: stops watching (if still) and frees everything. */
static void fp_destroy(void *inst)
{
    struct fp_inst *fp = inst;

    if (!fp) return;
    fp_stop(fp);
    free(fp->filename);
    free(fp->directory);
    free(fp->watch_dir);
    free(fp);
}

/** The operations table. */
static const relais_provider_ops fp_ops = {
    .size = sizeof(relais_provider_ops),
    .create = fp_create,
    .start = fp_start,
    .load_once = fp_load_once,
    .reload = fp_reload,
    .stop = fp_stop,
    .destroy = fp_destroy,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_PROVIDER,
    .name = "file",
    .version = "1.0.0",
    .config_key = "file",
    .description = "dynamic configuration from a file or a directory, "
                   "watched with inotify",
    .load = NULL,
    .unload = NULL,
    .ops = &fp_ops,
};
