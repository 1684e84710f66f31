/*
 * upgrade — hitless binary upgrade, as HAProxy's seamless reload and
 * nginx's USR2 do it: the running process starts the (new) binary with
 * its listening sockets, the new process serves from them at once, and
 * when it is ready the old one stops accepting and drains.  No socket is
 * ever closed or re-bound, so no connection waiting in a backlog is lost.
 * Module prefix: ug_.
 *
 * Old side (control thread): SIGUSR2 → ug_start forks and execs the
 * binary relais was started as (an absolute path taken at start, so a
 * replaced file is the one run), with the same arguments and
 * RELAIS_LISTEN_FDS="fd,fd,..." and RELAIS_UPGRADE_FD=<pipe>; it waits
 * for one byte on the pipe (the new process is ready) and then stops as
 * for SIGTERM; if the pipe closes first or nothing comes in
 * UG_READY_TIMEOUT_MS, the new process is killed and the old one keeps
 * serving.
 *
 * New side: ug_inherit (main, before anything else opens files) reads
 * the sockets; wk_start asks ug_take for those bound to each entry
 * point's address; sockets no entry point took are closed; ug_ready tells
 * the old process once the workers run and the providers' first
 * configuration is applied.
 *
 * `relais --upgrade --pid-file F` sends SIGUSR2 to the pid in F and waits
 * until F names another process (the new one writes it when ready).
 */
#ifndef RELAIS_UPGRADE_H
#define RELAIS_UPGRADE_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;

/** The pid file `relais --upgrade` reads when none is given. */
#define RELAIS_DEFAULT_PIDFILE "/run/relais/relais.pid"

/** How long the old process waits for the new one to be ready. */
#define UG_READY_TIMEOUT_MS 60000

/** Inherited sockets accepted at most. */
#define UG_MAX_FDS 1024

/** Remembers how relais was started (argv is kept, not copied; the
 *  executable's absolute path is resolved now).  main, first. */
void ug_init(int argc, char **argv);

/** Reads RELAIS_LISTEN_FDS / RELAIS_UPGRADE_FD left by an upgrading
 *  parent (and removes them from the environment).  Returns the number of
 *  inherited sockets (0 when not started by an upgrade).  main. */
size_t ug_inherit(void);

/** Moves up to max inherited sockets of type (SOCK_STREAM / SOCK_DGRAM)
 *  bound to sa into fds; returns how many.  Control thread (wk_start). */
size_t ug_take(const struct sockaddr *sa, socklen_t salen, int type, int *fds, size_t max);

/** Closes the inherited sockets no entry point took (logged). */
void ug_close_rest(void);

/** New process: tells the old one it serves (once; no-op when not
 *  upgrading).  Control thread. */
void ug_ready(void);

/**
 * Old process: starts the new binary with fds (listening sockets, kept
 * open here) and watches for its readiness on base.  on_ready(pid) is
 * called when it is ready (the caller stops gracefully); a failure is
 * logged and leaves this process serving.  0 when started, -1 when an
 * upgrade is already running or the start failed (logged).  Control
 * thread.
 */
int ug_start(struct event_base *base, const int *fds, size_t n, void (*on_ready)(pid_t pid));

/** Frees the upgrade's state (control thread, at exit). */
void ug_free(void);

/** `relais --upgrade`: signals the relais whose pid is in pidfile and
 *  waits for the new one (up to UG_READY_TIMEOUT_MS + 5 s).  Exit status
 *  for main: 0 upgraded, 1 failed (said on stderr). */
int ug_command(const char *pidfile);

/** The pid file (kept, not copied) that a failed upgrade rewrites with
 *  this process' pid, so that `relais --upgrade` sees the failure. */
void ug_set_pidfile(const char *pidfile);

/** Writes getpid() to pidfile (atomically: temp file + rename).  0 / -1
 *  (logged). */
int ug_write_pidfile(const char *pidfile);

/** Removes pidfile if it still names this process. */
void ug_remove_pidfile(const char *pidfile);

#endif /* RELAIS_UPGRADE_H */
