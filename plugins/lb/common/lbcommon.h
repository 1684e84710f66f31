/*
 * lbcommon — what the weighted strategies (the plugins under plugins/lb) agree on, as
 * inline functions built into each plugin (each still builds only against
 * the SDK).  Prefix lbc_.
 *
 * Weights as Traefik treats them: servers that are down never take part;
 * a server of weight 0 takes part, as weight 1, only while no server with
 * a positive weight is up ("zero mode").
 */
#ifndef RELAIS_LBCOMMON_H
#define RELAIS_LBCOMMON_H

#include <stddef.h>
#include <stdint.h>

#include <relais/plugin.h>

/** How the first n servers take part: -1 when none is up, 1 in zero mode
 *  (only weight-0 servers are up), 0 otherwise.  Any thread. */
static inline int lbc_mode(const relais_host *h, const relais_servers *s, size_t n)
{
    int any_zero = 0;

    for (size_t i = 0; i < n; i++) {
        if (!h->server_up(s, i)) continue;
        if (h->server_weight(s, i)) return 0;
        any_zero = 1;
    }
    return any_zero ? 1 : -1;
}

/** The weight server i takes part with (lbc_mode's zero_mode): 0 when it
 *  does not (down, or weight 0 outside zero mode).  Any thread. */
static inline uint64_t lbc_weight(const relais_host *h, const relais_servers *s, size_t i,
                                  int zero_mode)
{
    uint32_t w;

    if (!h->server_up(s, i)) return 0;
    w = h->server_weight(s, i);
    if (zero_mode) return w == 0 ? 1 : 0;
    return w;
}

#endif /* RELAIS_LBCOMMON_H */
