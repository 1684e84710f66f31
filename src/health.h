/*
 * health — server health of a service: Traefik's active healthCheck
 * (periodic HTTP probes from the control thread) and passiveHealthCheck
 * (failures of proxied requests reported by the workers).  Module prefix:
 * hl_.
 *
 * The state lives on the shared snap_service, so it survives reloads that
 * keep the service.  The result is the server's `up` flag (atomic), which
 * the LB strategies read through host->server_up: up = the last probe
 * passed (or no healthCheck) and no passive penalty is running.
 */
#ifndef RELAIS_HEALTH_H
#define RELAIS_HEALTH_H

#include <stddef.h>

#include <relais/plugin.h>

struct relais_servers;
struct tr_transport;
struct hl_service;

/**
 * Control thread.  Reads loadBalancer.healthCheck and
 * loadBalancer.passiveHealthCheck under lb (errors are reported on lb's
 * session with conf_cfg_error).  servers (borrowed; must outlive the
 * result and keep its array) are the service's servers, tr its transport
 * (borrowed, may be NULL: the TLS settings of https probes), name the
 * service's qualified name (copied).  Returns 0 with *out set (NULL when
 * neither block is present), or -1 after reporting a configuration error
 * or when out of memory (*out NULL).  Nothing runs until hl_start.
 */
int hl_new(const relais_host *host, const relais_cfg *lb, const char *name,
           struct relais_servers *servers, const struct tr_transport *tr,
           struct hl_service **out);

/** Control thread: starts the probes (the first at once) and the passive
 *  recovery timer.  NULL is a no-op. */
void hl_start(struct hl_service *h);

/** Control thread: stops everything (a probe in flight is cancelled) and
 *  frees h.  NULL is a no-op. */
void hl_free(struct hl_service *h);

/**
 * Any worker thread: the outcome (enum relais_outcome) of a request sent
 * to server idx.  With passiveHealthCheck, maxFailedAttempts failures
 * within failureWindow mark the server down for failureWindow (logged
 * once); a success clears the count.  NULL h is a no-op.
 */
void hl_report(struct hl_service *h, size_t idx, int outcome);

/** Milliseconds of a monotonic clock shared by every thread. */
uint64_t hl_now_ms(void);

#endif /* RELAIS_HEALTH_H */
