/*
 * control — the control thread: providers, configuration merge and
 * snapshot swaps (throttled), signals, and the return path of released
 * snapshots.  Module prefix: ctl_.
 */
#ifndef RELAIS_CONTROL_H
#define RELAIS_CONTROL_H

struct sc_config;
struct pl_set;

/** Runs the daemon until stopped: starts providers and workers, serves
 *  signals.  Returns the exit status.  Main thread. */
int ctl_run(struct sc_config *sc, struct pl_set *plugins);

/** --check: validates provider options and every dynamic document the
 *  providers can read synchronously, reporting file, key path and reason.
 *  Returns 0 when everything is valid, 1 otherwise. */
int ctl_check(struct sc_config *sc, struct pl_set *plugins);

/** Where the pid is written once relais is ready (NULL: nowhere); removed
 *  at exit if it still names this process.  Before ctl_run. */
void ctl_set_pidfile(const char *path);

#endif /* RELAIS_CONTROL_H */
