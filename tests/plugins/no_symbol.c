/*
 * no_symbol — test-only plugin: a shared object that exports no
 * descriptor symbol (its descriptor-like data is hidden and named
 * otherwise), so the loader must refuse it.
 */
#include <relais/plugin.h>

/** Exported, but not the descriptor symbol. */
RELAIS_EXPORT int not_a_relais_plugin = 1;

/** A descriptor the loader cannot see (hidden visibility). */
const relais_plugin hidden_descriptor = {
    RELAIS_PLUGIN_HEAD,
    .kind = RELAIS_KIND_LB,
    .name = "no_symbol",
    .version = "0.0.1",
    .config_key = "noSymbol",
    .description = "test: exports no descriptor",
    .load = NULL,
    .unload = NULL,
    .ops = NULL,
};
