/*
 * ipallowlist — Traefik's ipAllowList middleware (config key
 * "ipAllowList").  Module prefix: ipal_.
 *
 * Lets a request through only when its client address is inside
 * sourceRange; otherwise answers rejectStatusCode (default 403) with Go's
 * status text as the body ("Forbidden").
 *
 *   http:
 *     middlewares:
 *       office:
 *         ipAllowList:
 *           sourceRange: ["127.0.0.1/32", "192.168.1.7", "2001:db8::/32"]
 *           ipStrategy: {depth: 2}          # or excludedIPs: [...]
 *           rejectStatusCode: 404
 *
 * The client address is the connection's, or, with ipStrategy, one taken
 * from X-Forwarded-For (depth counted from the right; excludedIPs skipped
 * from the right; ipv6Subnet groups IPv6 addresses) exactly as Traefik v3
 * documents it.  The work is shared with ipDenyList in
 * plugins/middlewares/common/mwipfilter.c.
 */
#include <relais/plugin.h>

#include "mwipfilter.h"

/** Control thread: an allow-list instance (see mwf_create). */
static int ipal_create(const relais_host *host, const relais_cfg *cfg,
                       const char *name, void **inst)
{
    (void)name;
    return mwf_create(host, cfg, 1, inst);
}

/** The middleware operations. */
static const relais_middleware_ops ipal_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = ipal_create,
    .destroy = mwf_destroy,
    .on_request = mwf_on_request,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "ipallowlist",
    "1.0.0",
    "ipAllowList",
    "lets through only client addresses inside sourceRange (Traefik ipAllowList)",
    NULL,
    NULL,
    &ipal_ops,
};
