/*
 * small_desc — test-only plugin: descriptor size 8.
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

/** The operations table. */
static const relais_lb_ops t_ops = {
    .size = sizeof(relais_lb_ops),
    .create = t_create,
    .destroy = t_destroy,
    .pick = t_pick,
    .report = NULL,
};

RELAIS_PLUGIN_DECLARE = {
    RELAIS_PLUGIN_MAGIC, RELAIS_ABI_MAJOR, RELAIS_ABI_MINOR, 8,
    .kind = RELAIS_KIND_LB,
    .name = "small_desc",
    .version = "0.0.1",
    .config_key = "smallDesc",
    .description = "test: descriptor size 8",
    .load = NULL,
    .unload = NULL,
    .ops = &t_ops,
};
