/*
 * sdnotify — systemd's readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram of "KEY=VALUE" lines to the unix socket that
 * $NOTIFY_SOCKET names.  Module prefix: sdn_.
 *
 * relais sends READY=1 once it serves (listeners open, the providers'
 * first configuration applied), RELOADING=1 then READY=1 around SIGHUP,
 * STOPPING=1 on a graceful stop, and MAINPID= from the new process of a
 * hitless upgrade before the old one drains (the unit therefore needs
 * NotifyAccess=all: the new process is not the main one yet when it
 * speaks).  Without $NOTIFY_SOCKET every call does nothing, so relais
 * behaves the same outside systemd.  The variable is left in the
 * environment: the process an upgrade starts needs it too.
 *
 * Thread-safety: any thread; nothing is kept between calls.  A call never
 * blocks (the datagram is sent with MSG_DONTWAIT).
 */
#ifndef RELAIS_SDNOTIFY_H
#define RELAIS_SDNOTIFY_H

/** Longest state sent (systemd's own limit is larger). */
#define SDN_STATE_MAX 4096

/**
 * Sends state (newline-separated assignments, e.g. "READY=1") to the
 * socket named by $NOTIFY_SOCKET: a path, or "@name" for the abstract
 * namespace.  Returns 1 when the variable is unset or empty (nothing to
 * do), 0 when the datagram was sent, -1 when it could not be (a bad
 * variable, a socket error: logged once as a warning).
 */
int sdn_notify(const char *state);

/** "RELOADING=1" with "MONOTONIC_USEC=" the current CLOCK_MONOTONIC time
 *  in microseconds, as systemd's reload protocol asks.  As sdn_notify. */
int sdn_reloading(void);

/** "MAINPID=" this process' pid: the new process of a hitless upgrade
 *  becomes the service's main process.  As sdn_notify. */
int sdn_mainpid(void);

#endif /* RELAIS_SDNOTIFY_H */
