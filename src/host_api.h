/*
 * host_api — the relais_host function table given to plugins.
 * Module prefix: host_.
 */
#ifndef RELAIS_HOST_API_H
#define RELAIS_HOST_API_H

#include <relais/plugin.h>

struct event_base;

/** The table (static storage, valid for the process' life). */
const relais_host *host_table(void);

/** Sets the control thread's event loop (timers/watches created outside
 *  worker threads go there). */
void host_set_control_base(struct event_base *base);

/** The calling thread's event loop: its worker's, else the control
 *  loop. */
struct event_base *host_loop(void);

/** Sets the callbacks providers reach through provider_publish,
 *  provider_publish_kv and provider_name. */
void host_set_publish(int (*publish)(relais_provider *prov,
                                     const relais_doc *docs, size_t n),
                      int (*publish_kv)(relais_provider *prov,
                                        const relais_kv *pairs, size_t n,
                                        int sep, const char *root),
                      const char *(*name)(relais_provider *prov));

#endif /* RELAIS_HOST_API_H */
