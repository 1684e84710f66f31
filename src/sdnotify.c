/*
 * sdnotify — see sdnotify.h.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

static int sdn_warned; /* a failure was logged already (atomic) */

/* Logs the first failure only: a broken socket would otherwise repeat the
 * same warning at every reload. */
static int sdn_fail(const char *what, const char *addr, int err)
{
    if (!__atomic_exchange_n(&sdn_warned, 1, __ATOMIC_RELAXED))
        log_warn("sdnotify", "NOTIFY_SOCKET %s: %s: %s", addr, what, strerror(err));
    return -1;
}

int sdn_notify(const char *state)
{
    const char *addr = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    socklen_t salen;
    size_t alen, slen;
    ssize_t n;
    int fd, err;

    if (!addr || !*addr) return 1;
    alen = strlen(addr);
    slen = strlen(state);
    if ((addr[0] != '/' && addr[0] != '@') || alen >= sizeof(sa.sun_path) || alen < 2)
        return sdn_fail("not a unix socket path or @name", addr, EINVAL);
    if (slen == 0 || slen > SDN_STATE_MAX) return sdn_fail("state too long", addr, EMSGSIZE);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, addr, alen);
    if (addr[0] == '@') sa.sun_path[0] = '\0'; /* abstract: no NUL at the end */
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen +
                        (addr[0] == '@' ? 0 : 1));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return sdn_fail("socket", addr, errno);
    n = sendto(fd, state, slen, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    err = errno;
    close(fd);
    if (n < 0) return sdn_fail("sendto", addr, err);
    if ((size_t)n != slen) return sdn_fail("sendto", addr, EMSGSIZE);
    log_debug("sdnotify", "sent %.*s", (int)strcspn(state, "\n"), state);
    return 0;
}

int sdn_reloading(void)
{
    struct timespec ts;
    char st[96];

    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(st, sizeof(st), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    return sdn_notify(st);
}

int sdn_mainpid(void)
{
    char st[48];

    snprintf(st, sizeof(st), "MAINPID=%ld", (long)getpid());
    return sdn_notify(st);
}
