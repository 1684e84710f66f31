/*
 * ipdenylist — relais' ipDenyList middleware (config key "ipDenyList").
 * Module prefix: ipdl_.
 *
 * A relais addition, not a Traefik v3 middleware: the opposite decision of
 * ipAllowList with the very same options.  A request whose client address
 * is inside sourceRange is refused with rejectStatusCode (default 403) and
 * Go's status text as the body ("Forbidden"); every other request goes on,
 * including one whose address the ipStrategy cannot choose or parse (depth
 * beyond the X-Forwarded-For elements, every element excluded): a deny
 * list only refuses what it names.
 *
 *   http:
 *     middlewares:
 *       blocked:
 *         ipDenyList:
 *           sourceRange: ["198.51.100.0/24", "2001:db8:bad::/48"]
 *           ipStrategy: {depth: 1}
 *           rejectStatusCode: 403
 *
 * The work is shared with ipAllowList in
 * plugins/middlewares/common/mwipfilter.c.
 */
#include <relais/plugin.h>

#include "mwipfilter.h"

/** Control thread: a deny-list instance (see mwf_create). */
static int ipdl_create(const relais_host *host, const relais_cfg *cfg,
                       const char *name, void **inst)
{
    (void)name;
    return mwf_create(host, cfg, 0, inst);
}

/** The middleware operations. */
static const relais_middleware_ops ipdl_ops = {
    .size = sizeof(relais_middleware_ops),
    .create = ipdl_create,
    .destroy = mwf_destroy,
    .on_request = mwf_on_request,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    RELAIS_KIND_MIDDLEWARE,
    "ipdenylist",
    "1.0.0",
    "ipDenyList",
    "refuses client addresses inside sourceRange (relais; opposite of ipAllowList)",
    NULL,
    NULL,
    &ipdl_ops,
};
