/*
 * log — the daemon's own log (not the access log).  Module prefix: log_.
 *
 * Lines are "time level [who] message" (common) or one JSON object per line
 * (json), written with one write(2) each so that threads never interleave.
 * Thread-safety: any thread; the level is read without a lock.
 */
#ifndef RELAIS_LOG_H
#define RELAIS_LOG_H

#include <stdarg.h>

#include <relais/plugin.h> /* RELAIS_LOG_* levels, RELAIS_PRINTF */

/** Output format. */
enum log_format { LOG_FORMAT_COMMON = 0, LOG_FORMAT_JSON = 1 };

/** Sets the level (RELAIS_LOG_*) messages must reach to be written. */
void log_set_level(int level);

/** Current level. */
int log_get_level(void);

/** Parses "ERROR", "WARN", "INFO", "DEBUG" (any case; also "TRACE" as
 *  DEBUG, "FATAL"/"PANIC" as ERROR).  Returns the level or -1. */
int log_parse_level(const char *s);

/** Sets the format. */
void log_set_format(int format);

/** Sends the log to path (appended, created 0640) instead of stderr.
 *  NULL returns to stderr.  0, or -1 with errno. */
int log_open(const char *path);

/** Reopens the current file (logrotate); no-op on stderr. */
int log_reopen(void);

/** Writes one message at level from who (may be NULL). */
void log_msg(int level, const char *who, const char *fmt, ...)
    RELAIS_PRINTF(3, 4);

/** va_list form of log_msg. */
void log_vmsg(int level, const char *who, const char *fmt, va_list ap);

#define log_error(who, ...) log_msg(RELAIS_LOG_ERROR, who, __VA_ARGS__)
#define log_warn(who, ...) log_msg(RELAIS_LOG_WARN, who, __VA_ARGS__)
#define log_info(who, ...) log_msg(RELAIS_LOG_INFO, who, __VA_ARGS__)
#define log_debug(who, ...)                                                   \
    do {                                                                      \
        if (log_get_level() >= RELAIS_LOG_DEBUG)                              \
            log_msg(RELAIS_LOG_DEBUG, who, __VA_ARGS__);                      \
    } while (0)

#endif /* RELAIS_LOG_H */
