/*
 * redirectscheme — Traefik's redirectScheme middleware (config key
 * "redirectScheme").  Module prefix: rds_.
 *
 *   http:
 *     middlewares:
 *       to-https:
 *         redirectScheme:
 *           scheme: https
 *           port: "8443"
 *           permanent: true
 *
 * The request's URL is written as Traefik's clientRequestURL does
 * (mwredirect.h: scheme from the connection and X-Forwarded-Proto, host
 * and port from the authority, the port left out when it is the scheme's
 * default, then the path and query as they stand), then rewritten with
 * Traefik's expression ^(https?:\/\/)?(\[[\w:.]+\]|[\w\._-]+)?(:\d+)?(.*)$
 * into SCHEME://${2}[:PORT]${4}: the port is dropped unless port is set
 * (and is not 80 for http, 443 for https).  When the URL changes, the
 * client is redirected: 302 (GET) / 307 (other methods), or 301 / 308 with
 * permanent; a request already at the target goes on.  scheme is required
 * ("you must provide a target scheme"); port is a string or a number.
 *
 * Where Traefik is wrong, relais is not: an IPv6 host keeps its brackets
 * ("http://[::1]:8080/" -> "https://[::1]/"; Traefik's SplitHostPort
 * loses them when the authority has a port).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <relais/plugin.h>

#include "mwpath.h"
#include "mwredirect.h"
#include "mwregex.h"

/** Traefik's uriPattern. */
#define RDS_PATTERN "^(https?:\\/\\/)?(\\[[\\w:.]+\\]|[\\w\\._-]+)?(:\\d+)?(.*)$"

/** One configured instance; read-only after create. */
struct rds_inst {
    const relais_host *host; /* host function table */
    struct mwr_re *re;       /* the compiled RDS_PATTERN (owned) */
    char *replacement;       /* SCHEME://${2}[:PORT]${4} (owned) */
    int permanent;           /* 301/308 instead of 302/307 */
};

/** Control thread: frees an instance; NULL is a no-op. */
static void rds_destroy(void *inst)
{
    struct rds_inst *r = inst;

    if (!r) return;
    mwr_free(r->re);
    free(r->replacement);
    free(r);
}

/** Control thread.  Reads scheme (required), port, permanent.  0, or -1
 *  after cfg_error. */
static int rds_create(const relais_host *host, const relais_cfg *cfg,
                      const char *name, void **inst)
{
    static const char *const keys[] = {"scheme", "port", "permanent"};
    const char *scheme = NULL, *port = "";
    struct rds_inst *r;
    char err[256];
    size_t len;
    int rc, perm = 0;

    (void)name;
    if (mwp_cfg_keys(host, cfg, keys, 3) < 0) return -1;
    rc = host->cfg_string(cfg, "scheme", &scheme);
    if (rc == RELAIS_CFG_INVALID) return -1;
    if (rc == RELAIS_CFG_MISSING || !scheme[0]) {
        host->cfg_error(cfg, "scheme", "you must provide a target scheme");
        return -1;
    }
    if (host->cfg_string(cfg, "port", &port) == RELAIS_CFG_INVALID ||
        host->cfg_bool(cfg, "permanent", &perm) == RELAIS_CFG_INVALID)
        return -1;
    if ((!strcmp(scheme, "http") && !strcmp(port, "80")) ||
        (!strcmp(scheme, "https") && !strcmp(port, "443")))
        port = "";
    r = calloc(1, sizeof(*r));
    len = strlen(scheme) + strlen(port) + 16;
    if (!r || !(r->replacement = malloc(len))) {
        host->cfg_error(cfg, NULL, "out of memory");
        rds_destroy(r);
        return -1;
    }
    snprintf(r->replacement, len, "%s://${2}%s%s${4}", scheme,
             port[0] ? ":" : "", port);
    r->re = mwr_compile(RDS_PATTERN, err, sizeof(err));
    if (!r->re) {
        host->cfg_error(cfg, NULL, "%s", err);
        rds_destroy(r);
        return -1;
    }
    r->host = host;
    r->permanent = perm;
    *inst = r;
    return 0;
}

/** Worker thread.  RELAIS_NEXT, RELAIS_DONE (redirected), RELAIS_ERROR. */
static int rds_on_request(void *inst, relais_req *req, void **ctx)
{
    struct rds_inst *r = inst;
    struct mwr_buf url = {0};
    int v;

    (void)ctx;
    if (mwrd_url_client(r->host, req, &url) < 0) {
        mwr_buf_release(&url);
        return RELAIS_ERROR;
    }
    v = mwrd_redirect(r->host, req, r->re, r->replacement, r->permanent,
                      url.p, url.len);
    mwr_buf_release(&url);
    return v;
}

/** The operations table. */
static const relais_middleware_ops rds_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = rds_create,
    .destroy = rds_destroy,
    .on_request = rds_on_request,
    .on_response = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_MIDDLEWARE,
    .name = "redirectscheme",
    .version = "1.0.0",
    .config_key = "redirectScheme",
    .description = "redirects the client to another scheme and port",
    .load = NULL,
    .unload = NULL,
    .ops = &rds_ops,
};
