/*
 * plugin_loader — loads plugin shared objects with libltdl and checks their
 * descriptor against the host's ABI.  Module prefix: pl_.
 *
 * Thread-safety: control thread only; the registry is read-only once
 * loading is over, and then may be read from any thread.
 */
#ifndef RELAIS_PLUGIN_LOADER_H
#define RELAIS_PLUGIN_LOADER_H

#include <stddef.h>

#include <relais/plugin.h>

/** One loaded plugin. */
struct pl_plugin {
    char *path;                  /* file it was loaded from */
    void *handle;                /* lt_dlhandle */
    const relais_plugin *desc;   /* its descriptor (inside the object) */
};

/** The registry of loaded plugins. */
struct pl_set {
    struct pl_plugin *items; /* loaded plugins */
    size_t n;                /* how many */
    size_t cap;              /* allocated */
    size_t refused;          /* how many files were refused */
};

/** New empty registry; NULL on allocation failure. */
struct pl_set *pl_set_new(void);

/** Calls every plugin's unload, closes them, frees; NULL is a no-op. */
void pl_set_free(struct pl_set *set);

/**
 * Checks a descriptor against the host ABI.  Returns 0 when acceptable;
 * otherwise -1 with msg filled ("bad magic 0x...", "ABI 2.0, host 1.0",
 * ...).  Exposed for the unit tests.
 */
int pl_check_descriptor(const relais_plugin *d, char *msg, size_t msglen);

/**
 * Loads one file.  Refusals (cannot open, no descriptor, bad magic, other
 * major, newer minor, too small descriptor or ops table, unknown kind,
 * duplicate name or duplicate (kind, config key), load() failed) are
 * logged as one error naming the file and both version pairs, counted in
 * set->refused, and return -1; nothing aborts.
 */
int pl_load_file(struct pl_set *set, const char *path, const relais_host *host);

/**
 * Loads plugins from dir: every *.so in it when names is NULL, else the
 * files called NAME.so for each of the n names (a missing one is an error
 * logged and counted as refused).  Returns the number loaded.
 */
size_t pl_load_dir(struct pl_set *set, const char *dir, const char *const *names,
                   size_t n, const relais_host *host);

/** The plugin of that kind answering to config_key (case-insensitive), or
 *  NULL. */
const struct pl_plugin *pl_find(const struct pl_set *set, int kind,
                                const char *config_key);

#endif /* RELAIS_PLUGIN_LOADER_H */
