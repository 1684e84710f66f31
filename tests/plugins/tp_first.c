/*
 * tp_first — test-only load-balancing strategy (config key "first"): always
 * the first server that is up, -1 when none is.  Module prefix: tpf_.
 */
#include <stdint.h>
#include <stdlib.h>

#include <relais/plugin.h>

/** create: keeps the host table as the instance. */
static int tpf_create(const relais_host *host, const relais_cfg *cfg,
                      const relais_servers *servers, void **inst)
{
    (void)cfg;
    (void)servers;
    *inst = (void *)host;
    return 0;
}

/** destroy: nothing to free. */
static void tpf_destroy(void *inst)
{
    (void)inst;
}

/** Worker thread: index of the first server up, or -1. */
static int tpf_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    const relais_host *host = inst;
    size_t i, n = host->servers_count(servers);

    (void)req;
    for (i = 0; i < n && i < INT32_MAX; i++)
        if (host->server_up(servers, i)) return (int)i;
    return -1;
}

/** The operations table. */
static const relais_lb_ops tpf_ops = {
    .size = sizeof(relais_lb_ops),
    .create = tpf_create,
    .destroy = tpf_destroy,
    .pick = tpf_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "tp_first",
    .version = "0.0.1",
    .config_key = "first",
    .description = "test: always the first server up",
    .load = NULL,
    .unload = NULL,
    .ops = &tpf_ops,
};
