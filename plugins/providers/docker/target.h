/*
 * target — where the docker provider sends a container's traffic, from the
 * container's inspect document (GET /containers/{id}/json, Engine API
 * 1.41), the way Traefik v3's docker provider chooses:
 *
 * Address:
 *   1. the network named by the label <prefix>.docker.network, else by the
 *      provider option `network`, when the container is attached to it
 *      (NetworkSettings.Networks[name].IPAddress, else its
 *      GlobalIPv6Address);
 *   2. HostConfig.NetworkMode "host" → 127.0.0.1;
 *   3. "container:<id>" → the address of that container (its own network
 *      label first, else the one of step 1);
 *   4. the first network (document order) that has an address.
 * Port: the service's port label, else the one TCP port the container
 *   exposes (Config.ExposedPorts and NetworkSettings.Ports keys); none, or
 *   several, and no label → the container is skipped.
 * useBindPortIP: the first binding of that port in NetworkSettings.Ports
 *   (PORT/tcp, PORT/udp) gives HostIp:HostPort; a binding without a usable
 *   HostIp ("", 0.0.0.0, ::) or no binding falls back to the address and
 *   port above (as Traefik does, with an informational note).
 *
 * Module prefix: dkt_.  Pure functions over jansson values; any thread.
 */
#ifndef RELAIS_DOCKER_TARGET_H
#define RELAIS_DOCKER_TARGET_H

#include <jansson.h>
#include <stddef.h>

/** Options of the choice. */
struct dkt_opts {
    const char *prefix;  /* label prefix, e.g. "traefik" or "relais"; with
                            "relais", traefik.* labels are read too */
    const char *network; /* provider option `network`, NULL or "" if unset */
    int use_bind_ip;     /* provider option useBindPortIP */
};

/** Finds the inspect document of a running container named by ref (a full
 *  id, an id prefix or a name, as in NetworkMode "container:<ref>"), or
 *  NULL when there is none.  The document stays owned by the caller. */
typedef const json_t *(*dkt_find_fn)(void *arg, const char *ref);

/** Size of an out (host:port or reason) or note buffer that always
 *  suffices. */
#define DKT_MSG_LEN 320

/** 1 when inspect document insp is the container ref names: its full Id,
 *  an Id prefix (at least 4 characters) or its Name (with or without the
 *  leading '/'). */
int dkt_is(const json_t *insp, const char *ref);

/**
 * Value of the label <prefix>.<suffix> of inspect document insp
 * (Config.Labels), else with prefix "relais" of traefik.<suffix>; NULL
 * when absent.  Valid while insp lives.
 */
const char *dkt_label(const json_t *insp, const char *prefix, const char *suffix);

/**
 * The container's address (step 1-4 above) into out[len] as a host for a
 * URL (IPv6 in brackets).  0, or -1 with the reason in out.  note (may be
 * NULL) receives a warning worth logging ("" when none): a named network
 * the container is not attached to.
 */
int dkt_address(const json_t *insp, const struct dkt_opts *o, dkt_find_fn find, void *arg,
                char *out, size_t len, char *note, size_t notelen);

/**
 * The one TCP port the container exposes, as a number into *port.  0, or
 * -1 with the reason in why (no port / several ports, listed).
 */
int dkt_port(const json_t *insp, int *port, char *why, size_t whylen);

/**
 * Where a service of the container is reached: "host:port" into out.
 * port_label is the service's loadbalancer.server.port label, or NULL.
 * 0, or -1 with the reason the container is skipped in out.  note (may be
 * NULL) receives an informational message ("" when none).
 */
int dkt_server(const json_t *insp, const char *port_label, const struct dkt_opts *o,
               dkt_find_fn find, void *arg, char *out, size_t len, char *note, size_t notelen);

#endif /* RELAIS_DOCKER_TARGET_H */
