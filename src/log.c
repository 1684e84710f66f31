/*
 * log — see log.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_level = RELAIS_LOG_INFO;   /* threshold */
static int log_format = LOG_FORMAT_COMMON; /* output format */
static int log_fd = 2;                     /* where lines go */
static char log_path[4096];                /* file path, "" for stderr */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER; /* guards fd swap */

static const char *const log_names[] = {"ERR", "WRN", "INF", "DBG"};
static const char *const log_json_names[] = {"error", "warn", "info", "debug"};

void log_set_level(int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int log_get_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int log_parse_level(const char *s)
{
    if (!s) return -1;
    if (!strcasecmp(s, "error") || !strcasecmp(s, "fatal") ||
        !strcasecmp(s, "panic"))
        return RELAIS_LOG_ERROR;
    if (!strcasecmp(s, "warn") || !strcasecmp(s, "warning"))
        return RELAIS_LOG_WARN;
    if (!strcasecmp(s, "info")) return RELAIS_LOG_INFO;
    if (!strcasecmp(s, "debug") || !strcasecmp(s, "trace"))
        return RELAIS_LOG_DEBUG;
    return -1;
}

void log_set_format(int format)
{
    log_format = format;
}

int log_open(const char *path)
{
    int fd = 2, old;

    if (path && *path) {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) return -1;
    }
    pthread_mutex_lock(&log_lock);
    old = log_fd;
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path ? path : "");
    pthread_mutex_unlock(&log_lock);
    if (old > 2) close(old);
    return 0;
}

int log_reopen(void)
{
    char path[sizeof(log_path)];

    pthread_mutex_lock(&log_lock);
    memcpy(path, log_path, sizeof(path));
    pthread_mutex_unlock(&log_lock);
    if (!path[0]) return 0;
    return log_open(path);
}

/* Appends s to out[*n..cap) escaped for a JSON string. */
static void log_json_escape(char *out, size_t *n, size_t cap, const char *s)
{
    for (; *s && *n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)c;
        } else if (c < 0x20) {
            *n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x", c);
        } else {
            out[(*n)++] = (char)c;
        }
    }
}

void log_vmsg(int level, const char *who, const char *fmt, va_list ap)
{
    char msg[2048], line[4096 + 64], ts[40];
    struct timeval tv;
    struct tm tm;
    size_t n = 0;
    ssize_t w;

    if (level > log_get_level()) return;
    if (level < 0) level = 0;
    if (level > 3) level = 3;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_format == LOG_FORMAT_JSON) {
        n = (size_t)snprintf(line, sizeof(line),
                             "{\"time\":\"%s.%03dZ\",\"level\":\"%s\",", ts,
                             (int)(tv.tv_usec / 1000), log_json_names[level]);
        if (who) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\"module\":\"");
            log_json_escape(line, &n, sizeof(line) - 8, who);
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\",");
        }
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"message\":\"");
        log_json_escape(line, &n, sizeof(line) - 4, msg);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}\n");
    } else {
        n = (size_t)snprintf(line, sizeof(line), "%s.%03dZ %s %s%s%s%s\n", ts,
                             (int)(tv.tv_usec / 1000), log_names[level],
                             who ? "[" : "", who ? who : "", who ? "] " : "",
                             msg);
    }
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    w = write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, n);
    (void)w;
}

void log_msg(int level, const char *who, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(level, who, fmt, ap);
    va_end(ap);
}
