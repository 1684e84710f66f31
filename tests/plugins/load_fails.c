/*
 * load_fails — test-only plugin: load() returns -1.
 * Everything else in it is valid, so the loader must refuse it for exactly
 * that reason.
 */
#include <stdint.h>
#include <stddef.h>

#include <relais/plugin.h>

/** create: never reached (the plugin is refused). */
static int t_create(const relais_host *host, const relais_cfg *cfg,
                    const relais_servers *servers, void **inst)
{
    (void)host;
    (void)cfg;
    (void)servers;
    *inst = NULL;
    return 0;
}

/** destroy: nothing to free. */
static void t_destroy(void *inst)
{
    (void)inst;
}

/** pick: always the first server. */
static int t_pick(void *inst, const relais_servers *servers, relais_req *req)
{
    (void)inst;
    (void)servers;
    (void)req;
    return 0;
}

/** load: refuses to load. */
static int t_load(const relais_host *host)
{
    (void)host;
    return -1;
}

/** The operations table. */
static const relais_lb_ops t_ops = {
    .size = sizeof(relais_lb_ops),
    .create = t_create,
    .destroy = t_destroy,
    .pick = t_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "load_fails",
    .version = "0.0.1",
    .config_key = "loadFails",
    .description = "test: load() returns -1",
    .load = t_load,
    .unload = NULL,
    .ops = &t_ops,
};
