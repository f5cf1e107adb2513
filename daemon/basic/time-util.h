/* SPDX-License-Identifier: Apache-2.0 */
/* Time values: usec_t everywhere, systemd-style time spans ("90s", "15min", "1h 30min"), and the
 * RFC 3339 timestamps the Kubernetes API uses. Pure, no logging. */
#pragma once

#include <stdint.h>
#include <time.h>

#include "macro.h"

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC  ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MINUTE)
#define USEC_PER_DAY  (24ULL * USEC_PER_HOUR)
#define NSEC_PER_USEC ((uint64_t) 1000ULL)

usec_t now_usec(clockid_t clock);

/* How long since a wall-clock instant that is kept on disk (it survives restarts and reboots):
 * read off the wall clock once, then counted on the monotonic clock, so that a step of the wall
 * clock neither stretches nor cuts the count. Kept as a duration, not as a monotonic instant: an
 * instant from before this boot lies before the monotonic clock's zero. */
typedef struct ElapsedClock {
        bool set;
        usec_t since;           /* CLOCK_REALTIME: the instant counted from */
        usec_t read_at;         /* CLOCK_MONOTONIC: when it was read */
        usec_t elapsed_then;    /* how long since it, then */
} ElapsedClock;

/* The time since `since` (wall clock), given both clocks now; a new `since` is read afresh. */
usec_t elapsed_clock_get(ElapsedClock *c, usec_t since, usec_t now_wall, usec_t now_mono);
/* a + b, saturating at USEC_INFINITY. */
static inline usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

/* "90", "90s", "1min 30s", "1h", "500ms", "2d", "infinity". A bare number is seconds. */
int parse_timespan(const char *s, usec_t *ret);
/* Shortest exact form, "1h 30min", "0" for zero, "infinity". */
char *format_timespan(char *buf, size_t size, usec_t t);
#define FORMAT_TIMESPAN_MAX 64

/* RFC 3339 with optional fraction and offset ("2026-11-27T10:02:03.123456Z", "...+01:00"). */
int parse_rfc3339(const char *s, usec_t *ret);
/* UTC with microseconds (Kubernetes MicroTime) or whole seconds (Kubernetes Time). */
char *format_rfc3339(char *buf, size_t size, usec_t t, bool micro);
#define FORMAT_RFC3339_MAX 40
