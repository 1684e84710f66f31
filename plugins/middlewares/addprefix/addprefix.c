/*
 * addprefix — Traefik's addPrefix middleware (config key "addPrefix").
 * Module prefix: apx_.
 *
 *   http:
 *     middlewares:
 *       add-foo:
 *         addPrefix:
 *           prefix: /foo
 *
 * The prefix is put in front of the path as Traefik v3 does it: on the
 * decoded path and, when the request spelled its path with escapes of its
 * own, on that spelling too (Go's URL.Path / URL.RawPath), then a leading
 * "/" is added when the result lacks one; the path sent upstream is Go's
 * URL.RequestURI() of the result (mwpath.h).  The query is untouched.
 * prefix is required and may not be empty ("prefix cannot be empty").
 */
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"

/** One configured instance; read-only after create. */
struct apx_inst {
    const relais_host *host; /* host function table */
    char *prefix;            /* the prefix (owned, NUL-terminated) */
    size_t prefix_len;       /* its length (> 0) */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void apx_destroy(void *inst)
{
    struct apx_inst *a = inst;

    if (!a) return;
    free(a->prefix);
    free(a);
}

/** Control thread.  Reads prefix (required, non-empty string).  0, or -1
 *  after cfg_error. */
static int apx_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"prefix"};
    const char *p = NULL;
    struct apx_inst *a;
    int rc;

    (void)name;
    if (mwp_cfg_keys(host, cfg, keys, 1) < 0) return -1;
    rc = host->cfg_string(cfg, "prefix", &p);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (rc == RELAIS_CFG_MISSING || !p[0]) {
        host->cfg_error(cfg, "prefix", "prefix cannot be empty");
        return -1;
    }
    if (strlen(p) > MWP_MAX) {
        host->cfg_error(cfg, "prefix", "longer than %u bytes", MWP_MAX);
        return -1;
    }
    a = calloc(1, sizeof(*a));
    if (!a || !(a->prefix = strdup(p))) {
        free(a);
        host->cfg_error(cfg, NULL, "out of memory");
        return -1;
    }
    a->host = host;
    a->prefix_len = strlen(p);
    *inst = a;
    return 0;
}

/** Worker thread.  Prefixes the path; RELAIS_NEXT, or RELAIS_ERROR (out
 *  of memory, path too long). */
static int apx_on_request(void *inst, relais_req *req, void **ctx)
{
    struct apx_inst *a = inst;
    const relais_host *host = a->host;
    struct mwp_path p;

    (void)ctx;
    if (mwp_load(host, req, &p) < 0) return RELAIS_ERROR;
    if (mwp_set(host, req, &p, a->prefix, a->prefix_len, p.path, p.path_len,
                p.raw ? a->prefix : NULL, a->prefix_len, p.raw, p.raw_len,
                1) < 0)
        return RELAIS_ERROR;
    return mwp_store(host, req, &p) < 0 ? RELAIS_ERROR : RELAIS_NEXT;
}

/** The operations table. */
static const relais_middleware_ops apx_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = apx_create,
    .destroy = apx_destroy,
    .on_request = apx_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "addprefix",
    .version = "1.0.0",
    .config_key = "addPrefix",
    .description = "adds a prefix to the request path",
    .load = NULL,
    .unload = NULL,
    .ops = &apx_ops,
};
