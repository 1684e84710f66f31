/*
 * relais.h — project-wide constants shared by the core modules.
 */
#ifndef RELAIS_RELAIS_H
#define RELAIS_RELAIS_H

#include "config.h"

/** Codename printed by --version (a cheese, Traefik-style). */
#define RELAIS_CODENAME "comte"

/** Upper bound of worker threads. */
#define RELAIS_MAX_WORKERS 256

/** Default cap of one request's arena memory. */
#define RELAIS_ARENA_CAP (1024 * 1024)

/** Defaults of the HTTP/1.1 limits (overridable per entry point). */
#define RELAIS_DEFAULT_MAX_HEAD (64 * 1024)
#define RELAIS_DEFAULT_MAX_FIELDS 100
#define RELAIS_DEFAULT_MAX_TARGET (16 * 1024)

/** Watermark above which the reader of the other side is paused. */
#define RELAIS_BUFFER_HIGH (256 * 1024)

/** Bytes read from a socket in one call (libevent's default is 4 KiB). */
#define RELAIS_IO_CHUNK (64 * 1024)

/** Macro to silence unused results explicitly. */
#define RL_UNUSED(x) ((void)(x))

#endif /* RELAIS_RELAIS_H */
