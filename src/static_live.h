/*
 * static_live — the static options that can change while relais runs:
 * log.level, accessLog and entryPoints.  Module prefix: sl_.
 *
 * The effective static configuration is the file (as read at start, with
 * the command-line flags; its runtime-safe keys as read by the last good
 * SIGHUP) plus an overlay (cluster mode: the etcd key <prefix>/static).
 * A change is validated whole first, with the checks and messages of the
 * start; any error (a bad key, an address in use, an access log that does
 * not open) changes nothing.  Applied, it
 *   - sets the log level;
 *   - swaps the access log: each snapshot holds the log that was current
 *     when it was built, so requests in flight finish writing to the old
 *     one, which is closed when the last of them ended;
 *   - starts the listeners of added entry points on every worker
 *     (SO_REUSEPORT, as at start), stops those of removed ones at once
 *     (their connections drain: they close after their exchange, the rest
 *     at the end of the entry point's lifeCycle.graceTimeOut), and treats
 *     a changed one (same name, another definition) as removed + added,
 *     sharing its sockets when the address stays; unchanged entry points
 *     and their connections are not touched;
 *   - rebuilds the snapshot: routers naming an added entry point serve
 *     there, those naming a removed one get the usual error or warning.
 * Entry points keep stable indexes (slots, see static_config.h); the
 * workers switch to the new version on their own threads, and the
 * previous one is freed once they all did (RCU-like): the request path
 * takes no lock.
 *
 * Other static options are read at start only: a SIGHUP that finds them
 * changed in the file logs one WARN line per key path and leaves them.
 *
 * Cluster mode: sl_start registers with cluster.c (cl_on_static), so the
 * etcd key <prefix>/static is the overlay; an overlay that is refused is
 * logged and shown as the node's last error (cl_report).
 *
 * Thread-safety: control thread only.
 */
#ifndef RELAIS_STATIC_LIVE_H
#define RELAIS_STATIC_LIVE_H

#include <stddef.h>

#include <jansson.h>

struct event_base;
struct sc_config;

/**
 * Starts the module once the workers run (wk_start succeeded).  sc is the
 * running version (the module takes a reference), base the control loop.
 * changed(sc) is what the control module does when a change is applied:
 * make sc the version it builds snapshots from, then build and publish
 * one at once.  0 / -1 (memory).
 */
int sl_start(struct event_base *base, struct sc_config *sc,
             void (*changed)(struct sc_config *sc));

/**
 * Applies overlay over the file: a JSON object in the static file's shape
 * holding only
 *   log         {level: ...} (only the level changes at run time);
 *   accessLog   the whole section, replacing the file's; JSON null: no
 *               access log;
 *   entryPoints a map: a name absent from the file is added, a name
 *               present replaces the file's definition, JSON null
 *               removes the file's entry point.
 * NULL: back to the file alone.  origin names where the overlay came from
 * ("etcd key relais/static"), for the messages.  Any other key is refused
 * ("only log, accessLog and entryPoints can change at run time").
 * Returns 0 when applied (or nothing changed), or -1 with err set to
 * "ORIGIN: key.path: reason" and nothing changed (the running
 * configuration keeps serving).  Control thread, after sl_start.
 */
int sl_apply(const json_t *overlay, const char *origin, char *err, size_t errlen);

/**
 * SIGHUP: reads the static file again (same path and command-line flags
 * as at start) and applies its runtime-safe part with the current
 * overlay, as sl_apply does; other keys that changed are logged at WARN
 * ("providers.docker: changed in FILE, needs a restart") and not applied;
 * a broken file is logged ("FILE: key.path: reason") and changes
 * nothing.  Control thread.
 */
void sl_reload_file(void);

/** The running version (borrowed), or NULL before sl_start. */
const struct sc_config *sl_current(void);

/** Frees the module's state, after wk_stop (the workers are gone): the
 *  versions replaced meanwhile, the running one (unless another holder
 *  keeps it), the overlay.  The control module must not use the version
 *  it was given by changed() afterwards.  Control thread. */
void sl_stop(void);

#endif /* RELAIS_STATIC_LIVE_H */
