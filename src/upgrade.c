/*
 * upgrade.c — hitless binary upgrade.  See upgrade.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "sdnotify.h"
#include "upgrade.h"

extern char **environ;

/** One inherited socket. */
struct ug_sock {
    int fd;                       /* the descriptor, -1 once taken */
    int type;                     /* SO_TYPE */
    struct sockaddr_storage addr; /* getsockname */
    socklen_t addrlen;            /* its length */
};

static char **ug_argv;                 /* relais' arguments (a copy of
                                          main's array; strings borrowed) */
static char ug_exe[PATH_MAX];          /* absolute path of the binary */
static struct ug_sock *ug_socks;       /* inherited sockets */
static size_t ug_nsocks;               /* how many */
static int ug_ready_fd = -1;           /* new side: pipe to the parent */
/* old side */
static pid_t ug_child = -1;            /* the new process, -1 when none */
static struct event *ug_pipe_ev;       /* its readiness pipe */
static struct event *ug_timer;         /* UG_READY_TIMEOUT_MS */
static int ug_pipe_rd = -1;            /* read end */
static void (*ug_on_ready)(pid_t);     /* caller's continuation */
static const char *ug_pidfile;         /* --pid-file, or NULL */

void ug_init(int argc, char **argv)
{
    /* main rewrites its argv in place: keep the pointers as they are */
    ug_argv = calloc((size_t)argc + 1, sizeof(*ug_argv));
    if (ug_argv) memcpy(ug_argv, argv, (size_t)argc * sizeof(*argv));
    /* the path as started (not /proc/self/exe, which names the old,
       possibly deleted, file): a new binary at that path is what runs */
    if (strchr(argv[0], '/')) {
        if (!realpath(argv[0], ug_exe)) snprintf(ug_exe, sizeof(ug_exe), "%s", argv[0]);
        return;
    }
    {
        const char *path = getenv("PATH");
        char buf[PATH_MAX];
        while (path && *path) {
            const char *c = strchr(path, ':');
            size_t l = c ? (size_t)(c - path) : strlen(path);
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)l, l ? path : ".", argv[0]);
            if (access(buf, X_OK) == 0 && realpath(buf, ug_exe)) return;
            path = c ? c + 1 : NULL;
        }
    }
    snprintf(ug_exe, sizeof(ug_exe), "%s", argv[0]);
}

size_t ug_inherit(void)
{
    const char *list = getenv("RELAIS_LISTEN_FDS"), *rd = getenv("RELAIS_UPGRADE_FD");
    char *end;

    if (rd) {
        long v = strtol(rd, &end, 10);
        if (!*end && v > 2 && v < INT_MAX && fcntl((int)v, F_GETFD) >= 0) {
            ug_ready_fd = (int)v;
            fcntl(ug_ready_fd, F_SETFD, FD_CLOEXEC);
        }
    }
    while (list && *list && ug_nsocks < UG_MAX_FDS) {
        long v = strtol(list, &end, 10);
        struct ug_sock s;
        socklen_t tl = sizeof(s.type);
        if (end == list) break;
        list = *end == ',' ? end + 1 : end;
        if (v <= 2 || v >= INT_MAX) continue;
        memset(&s, 0, sizeof(s));
        s.fd = (int)v;
        s.addrlen = sizeof(s.addr);
        if (getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &s.type, &tl) < 0 ||
            getsockname(s.fd, (struct sockaddr *)&s.addr, &s.addrlen) < 0)
            continue;
        fcntl(s.fd, F_SETFD, FD_CLOEXEC);
        fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
        {
            struct ug_sock *v2 = realloc(ug_socks, (ug_nsocks + 1) * sizeof(*ug_socks));
            if (!v2) break;
            ug_socks = v2;
            ug_socks[ug_nsocks++] = s;
        }
    }
    unsetenv("RELAIS_LISTEN_FDS");
    unsetenv("RELAIS_UPGRADE_FD");
    return ug_nsocks;
}

/* 1 when a and b are the same address (family, port, host). */
static int ug_same(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) return 0;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
    }
    return 0;
}

size_t ug_take(const struct sockaddr *sa, socklen_t salen, int type, int *fds, size_t max)
{
    size_t n = 0;

    (void)salen;
    for (size_t i = 0; i < ug_nsocks && n < max; i++) {
        if (ug_socks[i].fd < 0 || ug_socks[i].type != type ||
            !ug_same((const struct sockaddr *)&ug_socks[i].addr, sa))
            continue;
        fds[n++] = ug_socks[i].fd;
        ug_socks[i].fd = -1;
    }
    return n;
}

void ug_close_rest(void)
{
    for (size_t i = 0; i < ug_nsocks; i++) {
        if (ug_socks[i].fd < 0) continue;
        log_info("upgrade", "inherited socket %d matches no entry point: closed", ug_socks[i].fd);
        close(ug_socks[i].fd);
        ug_socks[i].fd = -1;
    }
    free(ug_socks);
    ug_socks = NULL;
    ug_nsocks = 0;
}

void ug_ready(void)
{
    if (ug_ready_fd < 0) return;
    sdn_mainpid(); /* systemd: the main process from now on (before the old one drains) */
    if (write(ug_ready_fd, "R", 1) != 1)
        log_warn("upgrade", "cannot tell the old process we are ready: %s", strerror(errno));
    else
        log_info("upgrade", "ready: the old process (pid %ld) drains", (long)getppid());
    close(ug_ready_fd);
    ug_ready_fd = -1;
}

/* Old side: the upgrade ends (ok: the new process serves). */
static void ug_end(int ok)
{
    pid_t child = ug_child;

    if (ug_pipe_ev) event_free(ug_pipe_ev);
    if (ug_timer) event_free(ug_timer);
    ug_pipe_ev = ug_timer = NULL;
    if (ug_pipe_rd >= 0) close(ug_pipe_rd);
    ug_pipe_rd = -1;
    ug_child = -1;
    if (ok) {
        ug_on_ready(child);
        return;
    }
    if (child > 0) {
        kill(child, SIGTERM);
        waitpid(child, NULL, WNOHANG);
    }
    /* rewritten with the same pid: `relais --upgrade` sees the failure */
    if (ug_pidfile) ug_write_pidfile(ug_pidfile);
}

void ug_set_pidfile(const char *pidfile)
{
    ug_pidfile = pidfile;
}

/* Old side: the pipe is readable (a byte: ready; EOF: the new process
 * died). */
static void ug_on_pipe(evutil_socket_t fd, short what, void *arg)
{
    char c;
    ssize_t r;
    int status = 0;

    (void)what;
    (void)arg;
    r = read(fd, &c, 1);
    if (r == 1) {
        log_info("upgrade", "the new process (pid %ld) is ready: draining this one",
                 (long)ug_child);
        ug_end(1);
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (ug_child > 0 && waitpid(ug_child, &status, 0) == ug_child)
        log_error("upgrade", "upgrade failed: the new process exited (%s %d) before it was "
                             "ready; this one keeps serving",
                  WIFEXITED(status) ? "status" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else
        log_error("upgrade", "upgrade failed: the new process closed its pipe; this one keeps "
                             "serving");
    ug_child = -1;
    ug_end(0);
}

/* Old side: no readiness in time. */
static void ug_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_error("upgrade", "upgrade failed: the new process (pid %ld) was not ready within %d s; "
                         "it is stopped, this one keeps serving",
              (long)ug_child, UG_READY_TIMEOUT_MS / 1000);
    ug_end(0);
}

int ug_start(struct event_base *base, const int *fds, size_t n, void (*on_ready)(pid_t pid))
{
    int p[2] = {-1, -1};
    char *list = NULL, rdenv[64], **envp = NULL;
    size_t ne = 0, i, len = 32;
    pid_t pid;
    struct timeval tv = {UG_READY_TIMEOUT_MS / 1000, 0};

    if (ug_child > 0) {
        log_warn("upgrade", "an upgrade is already running (new pid %ld)", (long)ug_child);
        return -1;
    }
    if (!ug_argv || access(ug_exe, X_OK) != 0) {
        log_error("upgrade", "cannot run %s: %s", ug_exe, strerror(errno));
        return -1;
    }
    /* everything the child needs is prepared before fork: after it only
       async-signal-safe calls */
    for (i = 0; i < n; i++) len += 12;
    list = malloc(len);
    while (environ && environ[ne]) ne++;
    envp = calloc(ne + 3, sizeof(*envp));
    if (!list || !envp || pipe2(p, O_CLOEXEC) < 0) goto fail;
    {
        size_t off = (size_t)snprintf(list, len, "RELAIS_LISTEN_FDS=");
        for (i = 0; i < n; i++)
            off += (size_t)snprintf(list + off, len - off, "%s%d", i ? "," : "", fds[i]);
    }
    snprintf(rdenv, sizeof(rdenv), "RELAIS_UPGRADE_FD=%d", p[1]);
    {
        size_t k = 0;
        for (i = 0; i < ne; i++)
            if (strncmp(environ[i], "RELAIS_LISTEN_FDS=", 18) &&
                strncmp(environ[i], "RELAIS_UPGRADE_FD=", 18))
                envp[k++] = environ[i];
        envp[k++] = list;
        envp[k++] = rdenv;
        envp[k] = NULL;
    }
    log_info("upgrade", "starting %s with %zu listening socket(s)", ug_exe, n);
    pid = fork();
    if (pid < 0) goto fail;
    if (pid == 0) {
        /* the child: keep the sockets and the pipe across exec */
        sigset_t none;
        for (i = 0; i < n; i++) fcntl(fds[i], F_SETFD, 0);
        fcntl(p[1], F_SETFD, 0);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(ug_exe, ug_argv, envp);
        _exit(127);
    }
    close(p[1]);
    free(list);
    free(envp);
    ug_child = pid;
    ug_pipe_rd = p[0];
    ug_on_ready = on_ready;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    ug_pipe_ev = event_new(base, p[0], EV_READ | EV_PERSIST, ug_on_pipe, NULL);
    ug_timer = evtimer_new(base, ug_on_timeout, NULL);
    if (ug_pipe_ev) event_add(ug_pipe_ev, NULL);
    if (ug_timer) evtimer_add(ug_timer, &tv);
    return 0;
fail:
    log_error("upgrade", "cannot start the new process: %s", strerror(errno));
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    free(list);
    free(envp);
    return -1;
}

void ug_free(void)
{
    free(ug_argv);
    ug_argv = NULL;
    if (ug_pipe_ev) event_free(ug_pipe_ev);
    if (ug_timer) event_free(ug_timer);
    ug_pipe_ev = ug_timer = NULL;
    if (ug_pipe_rd >= 0) close(ug_pipe_rd);
    ug_pipe_rd = -1;
    ug_close_rest();
}

/* The pid in pidfile, or -1. */
static long ug_read_pid(const char *pidfile)
{
    FILE *f = fopen(pidfile, "r");
    long pid = -1;

    if (!f) return -1;
    if (fscanf(f, "%ld", &pid) != 1) pid = -1;
    fclose(f);
    return pid;
}

int ug_write_pidfile(const char *pidfile)
{
    char tmp[PATH_MAX];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", pidfile, (long)getpid());
    f = fopen(tmp, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 ||
        rename(tmp, pidfile) < 0) {
        log_error("control", "cannot write the pid file %s: %s", pidfile, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

void ug_remove_pidfile(const char *pidfile)
{
    if (pidfile && ug_read_pid(pidfile) == (long)getpid()) unlink(pidfile);
}

/* The identity of pidfile's current version (inode and change time), 0
 * when absent. */
static unsigned long long ug_file_id(const char *pidfile)
{
    struct stat st;

    if (stat(pidfile, &st) < 0) return 0;
    return ((unsigned long long)st.st_ino << 32) ^ (unsigned long long)st.st_ctim.tv_nsec ^
           ((unsigned long long)st.st_ctim.tv_sec << 20);
}

int ug_command(const char *pidfile)
{
    long pid = ug_read_pid(pidfile), now;
    unsigned long long id = ug_file_id(pidfile);
    struct timespec ts = {0, 50 * 1000000};

    if (pid <= 0) {
        fprintf(stderr, "relais: --upgrade: no pid in %s\n", pidfile);
        return 1;
    }
    if (kill((pid_t)pid, SIGUSR2) < 0) {
        fprintf(stderr, "relais: --upgrade: cannot signal pid %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    for (int i = 0; i < (UG_READY_TIMEOUT_MS + 5000) / 50; i++) {
        nanosleep(&ts, NULL);
        now = ug_read_pid(pidfile);
        if (now > 0 && now != pid) {
            printf("relais: upgraded: pid %ld -> %ld\n", pid, now);
            return 0;
        }
        if (now == pid && ug_file_id(pidfile) != id) break; /* it failed */
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) break;
    }
    fprintf(stderr, "relais: --upgrade: no new process took over from pid %ld (see its log)\n",
            pid);
    return 1;
}
