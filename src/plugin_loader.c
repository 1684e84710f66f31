/*
 * plugin_loader — see plugin_loader.h.
 *
 * Every file goes through the same gate: open (libltdl), find the one
 * descriptor symbol, check it against the host ABI (pl_check_descriptor),
 * check it does not clash with a plugin already loaded, then call its
 * load().  Any failure is one error line naming the file and both ABI
 * version pairs; the file is closed again and loading goes on.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ltdl.h>

#include "log.h"
#include "plugin_loader.h"

/** Log "who" of this module. */
#define PL_WHO "plugins"
/** Longest path handled. */
#define PL_PATH_MAX 4096
/** Cap on the plugins one set holds. */
#define PL_MAX_PLUGINS 1024
/** Cap on the *.so files one directory scan considers. */
#define PL_MAX_DIR_FILES 4096
/** Room for one refusal reason. */
#define PL_MSG_MAX 512

/*
 * Sizes of the ABI 1.0 structures: the end of their last 1.0 field.  These
 * never change when later minors append fields, so a 1.0 plugin keeps
 * loading in a 1.x host.
 */
#define PL_DESC_V1_0_SIZE (offsetof(relais_plugin, ops) + sizeof(void *))
#define PL_PROVIDER_OPS_V1_0_SIZE                                             \
    (offsetof(relais_provider_ops, destroy) + sizeof(void (*)(void)))
#define PL_MIDDLEWARE_OPS_V1_0_SIZE                                           \
    (offsetof(relais_middleware_ops, on_response) + sizeof(void (*)(void)))
#define PL_LB_OPS_V1_0_SIZE                                                   \
    (offsetof(relais_lb_ops, report) + sizeof(void (*)(void)))

/* Number of live sets: libltdl is initialised while it is > 0. */
static unsigned pl_lt_users;

/** Human name of a kind, for messages. */
static const char *pl_kind_name(uint32_t kind)
{
    switch (kind) {
    case RELAIS_KIND_PROVIDER: return "provider";
    case RELAIS_KIND_MIDDLEWARE: return "middleware";
    case RELAIS_KIND_LB: return "lb";
    default: return "unknown";
    }
}

/**
 * Formats the plugin's ABI pair into buf ("1.0", or "?.?" when d is NULL
 * or its magic is wrong and the fields mean nothing).
 */
static const char *pl_abi_pair(const relais_plugin *d, char *buf, size_t len)
{
    if (!d || d->magic != RELAIS_PLUGIN_MAGIC)
        snprintf(buf, len, "?.?");
    else
        snprintf(buf, len, "%u.%u", (unsigned)d->abi_major,
                 (unsigned)d->abi_minor);
    return buf;
}

/**
 * Checks the kind-specific operations table of a descriptor whose head
 * already passed.  0, or -1 with a reason (without the version suffix) in
 * msg.
 */
static int pl_check_ops(const relais_plugin *d, char *msg, size_t msglen)
{
    uint32_t osize;
    size_t need;
    const char *missing = NULL;

    if (!d->ops) {
        snprintf(msg, msglen, "no operations table");
        return -1;
    }
    memcpy(&osize, d->ops, sizeof(osize));
    switch (d->kind) {
    case RELAIS_KIND_PROVIDER: need = PL_PROVIDER_OPS_V1_0_SIZE; break;
    case RELAIS_KIND_MIDDLEWARE: need = PL_MIDDLEWARE_OPS_V1_0_SIZE; break;
    default: need = PL_LB_OPS_V1_0_SIZE; break;
    }
    if (osize < need) {
        snprintf(msg, msglen, "%s operations table too small (%u bytes, "
                 "ABI 1.0 needs %zu)", pl_kind_name(d->kind), osize, need);
        return -1;
    }
    if (d->kind == RELAIS_KIND_PROVIDER) {
        const relais_provider_ops *o = d->ops;
        if (!o->create) missing = "create";
        else if (!o->start) missing = "start";
        else if (!o->stop) missing = "stop";
        else if (!o->destroy) missing = "destroy";
    } else if (d->kind == RELAIS_KIND_MIDDLEWARE) {
        const relais_middleware_ops *o = d->ops;
        if (!o->create) missing = "create";
        else if (!o->destroy) missing = "destroy";
        else if (!o->on_request) missing = "on_request";
    } else {
        const relais_lb_ops *o = d->ops;
        if (!o->create) missing = "create";
        else if (!o->destroy) missing = "destroy";
        else if (!o->pick) missing = "pick";
    }
    if (missing) {
        snprintf(msg, msglen, "%s operation %s is NULL", pl_kind_name(d->kind),
                 missing);
        return -1;
    }
    return 0;
}

int pl_check_descriptor(const relais_plugin *d, char *msg, size_t msglen)
{
    char why[PL_MSG_MAX], pair[32];

    if (!d) {
        snprintf(msg, msglen, "no descriptor (ABI ?.?, host %d.%d)",
                 RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        return -1;
    }
    if (d->magic != RELAIS_PLUGIN_MAGIC) {
        snprintf(msg, msglen, "bad magic 0x%08x (ABI ?.?, host %d.%d)",
                 (unsigned)d->magic, RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        return -1;
    }
    if (d->abi_major != RELAIS_ABI_MAJOR) {
        snprintf(msg, msglen, "ABI %u.%u, host supports %d.%d (major differs)",
                 (unsigned)d->abi_major, (unsigned)d->abi_minor,
                 RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        return -1;
    }
    if (d->abi_minor > RELAIS_ABI_MINOR) {
        snprintf(msg, msglen,
                 "ABI %u.%u, host supports %d.%d (plugin needs a newer host)",
                 (unsigned)d->abi_major, (unsigned)d->abi_minor,
                 RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        return -1;
    }
    /* From here on the head is trusted; the reason gets the pair suffix. */
    if (d->size < PL_DESC_V1_0_SIZE) {
        snprintf(why, sizeof(why), "descriptor too small (%u bytes, "
                 "ABI 1.0 needs %zu)", (unsigned)d->size, PL_DESC_V1_0_SIZE);
        goto refuse;
    }
    if (d->kind != RELAIS_KIND_PROVIDER && d->kind != RELAIS_KIND_MIDDLEWARE &&
        d->kind != RELAIS_KIND_LB) {
        snprintf(why, sizeof(why), "unknown kind %u", (unsigned)d->kind);
        goto refuse;
    }
    if (!d->name || !d->name[0]) {
        snprintf(why, sizeof(why), "empty plugin name");
        goto refuse;
    }
    if (!d->config_key || !d->config_key[0]) {
        snprintf(why, sizeof(why), "empty config key");
        goto refuse;
    }
    if (pl_check_ops(d, why, sizeof(why)) < 0) goto refuse;
    if (msglen) msg[0] = '\0';
    return 0;

refuse:
    snprintf(msg, msglen, "%s (ABI %s, host %d.%d)", why,
             pl_abi_pair(d, pair, sizeof(pair)), RELAIS_ABI_MAJOR,
             RELAIS_ABI_MINOR);
    return -1;
}

struct pl_set *pl_set_new(void)
{
    struct pl_set *set;

    if (pl_lt_users == 0 && lt_dlinit() != 0) {
        log_msg(RELAIS_LOG_ERROR, PL_WHO, "cannot initialise libltdl: %s",
                lt_dlerror());
        return NULL;
    }
    set = calloc(1, sizeof(*set));
    if (!set) {
        if (pl_lt_users == 0) lt_dlexit();
        return NULL;
    }
    pl_lt_users++;
    return set;
}

void pl_set_free(struct pl_set *set)
{
    size_t i;

    if (!set) return;
    /* Unload in reverse order of loading. */
    for (i = set->n; i-- > 0;) {
        struct pl_plugin *p = &set->items[i];
        if (p->desc->unload) p->desc->unload();
        lt_dlclose((lt_dlhandle)p->handle);
        free(p->path);
    }
    free(set->items);
    free(set);
    if (pl_lt_users > 0 && --pl_lt_users == 0) lt_dlexit();
}

/** Logs the one refusal line for path and counts it. */
static void pl_refuse(struct pl_set *set, const char *path, const char *msg)
{
    log_msg(RELAIS_LOG_ERROR, PL_WHO, "refusing plugin %s: %s", path, msg);
    set->refused++;
}

/**
 * Checks d against the plugins already in set: same name, or same kind and
 * config key (case-insensitive).  0, or -1 with a full reason in msg.
 */
static int pl_check_clash(const struct pl_set *set, const relais_plugin *d,
                          char *msg, size_t msglen)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
        const struct pl_plugin *p = &set->items[i];
        if (!strcmp(p->desc->name, d->name)) {
            snprintf(msg, msglen, "a plugin named \"%s\" is already loaded "
                     "from %s (ABI %u.%u, host %d.%d)", d->name, p->path,
                     (unsigned)d->abi_major, (unsigned)d->abi_minor,
                     RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
            return -1;
        }
        if (p->desc->kind == d->kind &&
            !strcasecmp(p->desc->config_key, d->config_key)) {
            snprintf(msg, msglen, "%s config key \"%s\" is already provided "
                     "by plugin \"%s\" from %s (ABI %u.%u, host %d.%d)",
                     pl_kind_name(d->kind), d->config_key, p->desc->name,
                     p->path, (unsigned)d->abi_major, (unsigned)d->abi_minor,
                     RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
            return -1;
        }
    }
    return 0;
}

int pl_load_file(struct pl_set *set, const char *path, const relais_host *host)
{
    char msg[PL_MSG_MAX + PL_PATH_MAX];
    lt_dlhandle h = NULL;
    const relais_plugin *d;
    struct pl_plugin *p;
    char *copy = NULL;
    int rc;

    if (!set || !path) return -1;
    if (set->n >= PL_MAX_PLUGINS) {
        snprintf(msg, sizeof(msg), "too many plugins (cap %d) (ABI ?.?, "
                 "host %d.%d)", PL_MAX_PLUGINS, RELAIS_ABI_MAJOR,
                 RELAIS_ABI_MINOR);
        goto refuse;
    }
    h = lt_dlopen(path);
    if (!h) {
        const char *e = lt_dlerror();
        snprintf(msg, sizeof(msg), "cannot open: %s (ABI ?.?, host %d.%d)",
                 e ? e : "unknown error", RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        goto refuse;
    }
    d = lt_dlsym(h, RELAIS_PLUGIN_SYMBOL);
    if (!d) {
        snprintf(msg, sizeof(msg), "no symbol %s (ABI ?.?, host %d.%d)",
                 RELAIS_PLUGIN_SYMBOL, RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        goto refuse;
    }
    if (pl_check_descriptor(d, msg, sizeof(msg)) < 0) goto refuse;
    if (pl_check_clash(set, d, msg, sizeof(msg)) < 0) goto refuse;
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 8;
        struct pl_plugin *items = realloc(set->items, ncap * sizeof(*items));
        if (!items) goto nomem;
        set->items = items;
        set->cap = ncap;
    }
    copy = strdup(path);
    if (!copy) goto nomem;
    if (d->load && (rc = d->load(host)) != 0) {
        snprintf(msg, sizeof(msg), "load() failed (returned %d) (ABI %u.%u, "
                 "host %d.%d)", rc, (unsigned)d->abi_major,
                 (unsigned)d->abi_minor, RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
        goto refuse;
    }
    p = &set->items[set->n++];
    p->path = copy;
    p->handle = h;
    p->desc = d;
    log_msg(RELAIS_LOG_INFO, PL_WHO, "loaded %s plugin %s %s (key %s, ABI "
            "%u.%u) from %s", pl_kind_name(d->kind), d->name,
            d->version ? d->version : "", d->config_key,
            (unsigned)d->abi_major, (unsigned)d->abi_minor, path);
    return 0;

nomem:
    snprintf(msg, sizeof(msg), "out of memory (ABI %u.%u, host %d.%d)",
             (unsigned)d->abi_major, (unsigned)d->abi_minor, RELAIS_ABI_MAJOR,
             RELAIS_ABI_MINOR);
refuse:
    pl_refuse(set, path, msg);
    free(copy);
    if (h) lt_dlclose(h);
    return -1;
}

/** qsort comparator over char* (strcmp order). */
static int pl_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/** 1 when name ends in ".so" and is not hidden nor just ".so". */
static int pl_is_so_name(const char *name)
{
    size_t len = strlen(name);
    return name[0] != '.' && len > 3 && !strcmp(name + len - 3, ".so");
}

/**
 * Lists the regular *.so files of dir into a sorted array of strdup'ed
 * names (*out, *count).  0, or -1 after logging (directory unreadable, too
 * many files, no memory).
 */
static int pl_list_dir(const char *dir, char ***out, size_t *count)
{
    DIR *dh;
    struct dirent *de;
    char path[PL_PATH_MAX];
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    dh = opendir(dir);
    if (!dh) {
        log_msg(RELAIS_LOG_ERROR, PL_WHO, "cannot read plugin directory %s: "
                "%s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(dh)) != NULL) {
        struct stat st;
        if (!pl_is_so_name(de->d_name)) continue;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >=
            sizeof(path))
            continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n >= PL_MAX_DIR_FILES) {
            log_msg(RELAIS_LOG_ERROR, PL_WHO, "plugin directory %s holds more "
                    "than %d *.so files", dir, PL_MAX_DIR_FILES);
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
    qsort(names, n, sizeof(*names), pl_cmp_names);
    *out = names;
    *count = n;
    names = NULL;
    n = 0;
    rc = 0;
    goto out;
nomem:
    log_msg(RELAIS_LOG_ERROR, PL_WHO, "out of memory reading %s", dir);
out:
    while (n > 0) free(names[--n]);
    free(names);
    closedir(dh);
    return rc;
}

size_t pl_load_dir(struct pl_set *set, const char *dir,
                   const char *const *names, size_t n, const relais_host *host)
{
    char path[PL_PATH_MAX], msg[PL_MSG_MAX];
    char **found = NULL;
    size_t nfound = 0, loaded = 0, i;
    struct stat st;

    if (!set || !dir) return 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        const char *why = "not a directory";
        if (stat(dir, &st) != 0) why = strerror(errno);
        log_msg(RELAIS_LOG_ERROR, PL_WHO, "plugin directory %s: %s", dir, why);
        if (names) set->refused += n;
        return 0;
    }
    if (names) {
        for (i = 0; i < n; i++) {
            const char *name = names[i];
            if (!name || !name[0] || strchr(name, '/') ||
                (size_t)snprintf(path, sizeof(path), "%s/%s.so", dir, name) >=
                    sizeof(path)) {
                snprintf(msg, sizeof(msg), "invalid plugin name \"%s\" "
                         "(ABI ?.?, host %d.%d)", name ? name : "(null)",
                         RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
                pl_refuse(set, name ? name : "(null)", msg);
                continue;
            }
            if (stat(path, &st) != 0) {
                snprintf(msg, sizeof(msg), "%s (ABI ?.?, host %d.%d)",
                         strerror(errno), RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR);
                pl_refuse(set, path, msg);
                continue;
            }
            if (pl_load_file(set, path, host) == 0) loaded++;
        }
        return loaded;
    }
    if (pl_list_dir(dir, &found, &nfound) < 0) return 0;
    for (i = 0; i < nfound; i++) {
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, found[i]) <
                sizeof(path) &&
            pl_load_file(set, path, host) == 0)
            loaded++;
        free(found[i]);
    }
    free(found);
    return loaded;
}

const struct pl_plugin *pl_find(const struct pl_set *set, int kind,
                                const char *config_key)
{
    size_t i;

    if (!set || !config_key) return NULL;
    for (i = 0; i < set->n; i++) {
        const relais_plugin *d = set->items[i].desc;
        if ((int)d->kind == kind && !strcasecmp(d->config_key, config_key))
            return &set->items[i];
    }
    return NULL;
}
