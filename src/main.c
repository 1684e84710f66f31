/*
 * main — command line of the relais daemon.
 */
#include "config.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "control.h"
#include "evmem.h"
#include "upgrade.h"
#include "host_api.h"
#include "log.h"
#include "plugin_loader.h"
#include "relais.h"
#include "static_config.h"

/* Prints the usage text to f. */
static void usage(FILE *f)
{
    fprintf(f,
            "Usage: relais [OPTIONS]\n"
            "\n"
            "A reverse proxy and load balancer for dynamic infrastructure.\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE     static configuration (YAML or JSON); default:\n"
            "                        ./relais.yaml, ./relais.yml, ./relais.json,\n"
            "                        " RELAIS_DEFAULT_CONFIG "\n"
            "      --check           validate the static configuration and the dynamic\n"
            "                        configuration its providers point to, then exit\n"
            "      --plugin-dir DIR  load plugins from DIR (overrides plugins.directory)\n"
            "      --list-plugins    print the plugins that load, then exit\n"
            "      --pid-file FILE   write the pid to FILE once serving (removed at exit)\n"
            "      --upgrade         hitless binary upgrade of the relais whose pid is in\n"
            "                        --pid-file (default " RELAIS_DEFAULT_PIDFILE "): it starts\n"
            "                        the binary again with its listening sockets and\n"
            "                        drains once the new process serves; waits for it\n"
            "      --workers N       worker threads (overrides workers; 0 = one per core)\n"
            "      --log-level L     DEBUG, INFO, WARN or ERROR (overrides log.level)\n"
            "      --KEY.PATH=VALUE  any static key, as Traefik's flags write it\n"
            "                        (--entryPoints.web.address=:8080); overrides the file\n"
            "  -V, --version         print the version and exit\n"
            "  -h, --help            print this help and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop gracefully, SIGHUP re-reads the static file's\n"
            "run-time keys (entry points, log level, access log) and the providers,\n"
            "SIGUSR1 reopens the log file, SIGUSR2 upgrades (as --upgrade).\n");
}

/* The first default configuration file that exists, or NULL. */
static const char *default_config(void)
{
    static const char *const paths[] = {"relais.yaml", "relais.yml", "relais.json",
                                        RELAIS_DEFAULT_CONFIG, NULL};
    for (const char *const *p = paths; *p; p++)
        if (access(*p, R_OK) == 0) return *p;
    return NULL;
}

/* Prints one line per loaded plugin. */
static void list_plugins(const struct pl_set *set)
{
    static const char *const kinds[] = {"?", "provider", "middleware", "lb"};
    printf("%-16s %-10s %-11s %-20s %s\n", "NAME", "VERSION", "KIND", "KEY", "ABI");
    for (size_t i = 0; i < set->n; i++) {
        const relais_plugin *d = set->items[i].desc;
        printf("%-16s %-10s %-11s %-20s %u.%u\n", d->name, d->version ? d->version : "-",
               d->kind <= 3 ? kinds[d->kind] : "?", d->config_key, d->abi_major,
               d->abi_minor);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"plugin-dir", required_argument, NULL, 'p'},
        {"list-plugins", no_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"log-level", required_argument, NULL, 'L'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {"pid-file", required_argument, NULL, 'P'},
        {"upgrade", no_argument, NULL, 'U'},
        {NULL, 0, NULL, 0}};
    const char *config = NULL, *plugin_dir = NULL, *level = NULL, *pidfile = NULL;
    int check = 0, list = 0, upgrade = 0, workers = -1, o, rc;
    struct sc_config *sc = NULL;
    struct pl_set *plugins = NULL;
    const char *overrides[argc + 2]; /* argc is small: on the stack; one
                                        more for --log-level */
    char level_flag[32];             /* "log.level=L" */
    size_t noverrides = 0;
    int i, j;

    em_install(); /* before any other libevent call */
    {
        /* as many descriptors as allowed: every connection is one (the
           default global.maxConnections is half of them) */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* how relais was started, for a later upgrade; sockets an upgrading
       parent passed on */
    ug_init(argc, argv);
    ug_inherit();
    /* buffers come and go by tens of KiB per request: keep freed memory
     * instead of returning it to the kernel and faulting it back in */
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    /* Traefik-style flags (--entryPoints.web.address=:80) override the
     * static file: take them out before getopt sees the rest */
    for (i = j = 1; i < argc; i++) {
        const char *a = argv[i], *eq;
        if (!strcmp(a, "--")) {
            while (i < argc) argv[j++] = argv[i++];
            break;
        }
        eq = strchr(a, '=');
        if (a[0] == '-' && a[1] == '-' && strchr(a, '.') && (!eq || strchr(a, '.') < eq))
            overrides[noverrides++] = a + 2;
        else
            argv[j++] = argv[i];
    }
    argc = j;
    argv[argc] = NULL;
    while ((o = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'k': check = 1; break;
        case 'p': plugin_dir = optarg; break;
        case 'P': pidfile = optarg; break;
        case 'U': upgrade = 1; break;
        case 'l': list = 1; break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > RELAIS_MAX_WORKERS) {
                fprintf(stderr, "relais: --workers expects 0 to %d\n", RELAIS_MAX_WORKERS);
                return 2;
            }
            workers = (int)v;
            break;
        }
        case 'L':
            if (log_parse_level(optarg) < 0) {
                fprintf(stderr, "relais: --log-level expects DEBUG, INFO, WARN or ERROR\n");
                return 2;
            }
            level = optarg;
            break;
        case 'V':
            printf("relais %s (%s)\n", PACKAGE_VERSION, RELAIS_CODENAME);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "relais: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (upgrade) {
        rc = ug_command(pidfile ? pidfile : RELAIS_DEFAULT_PIDFILE);
        ug_free();
        return rc;
    }
    if (level) log_set_level(log_parse_level(level));
    if (list && !config && !default_config()) {
        plugins = pl_set_new();
        pl_load_dir(plugins, plugin_dir ? plugin_dir : RELAIS_PLUGINS_DIR, NULL, 0,
                    host_table());
        list_plugins(plugins);
        pl_set_free(plugins);
        return 0;
    }
    if (!config) config = default_config();
    if (level) {
        /* as a flag, so that a SIGHUP re-reading the file keeps it */
        snprintf(level_flag, sizeof(level_flag), "log.level=%s", level);
        overrides[noverrides++] = level_flag;
    }
    if (!config && noverrides == (level ? 1u : 0u)) {
        fprintf(stderr, "relais: no configuration: use --config FILE or "
                        "--entryPoints.NAME.address=... flags\n");
        return 2;
    }
    sc = sc_load(config, plugin_dir, overrides, noverrides);
    if (!sc) return 1;
    if (!level) log_set_level(sc->log_level);
    log_set_format(sc->log_format);
    if (sc->log_file && !check && log_open(sc->log_file) < 0) {
        log_error("log", "cannot open %s", sc->log_file);
        sc_free(sc);
        return 1;
    }
    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        sc->workers = n > 0 ? (unsigned)n : 1;
    } else if (workers > 0) {
        sc->workers = (unsigned)workers;
    }
    plugins = pl_set_new();
    if (!plugins) {
        sc_free(sc);
        return 1;
    }
    pl_load_dir(plugins, sc->plugin_dir, (const char *const *)sc->plugin_load,
                sc->plugin_load ? sc->nplugin_load : 0, host_table());
    if (list) {
        list_plugins(plugins);
        rc = 0;
    } else if (check) {
        rc = ctl_check(sc, plugins);
        if (plugins->refused) rc = 1;
    } else {
        ctl_set_pidfile(pidfile);
        rc = ctl_run(sc, plugins);
    }
    pl_set_free(plugins);
    sc_free(sc);
    return rc;
}
