/* SPDX-License-Identifier: Apache-2.0 */
/* The node's reboot state as Prometheus metrics, in the text exposition format (version 0.0.4,
 * what node_exporter's textfile collector and every Prometheus scrape read). Pure: values in,
 * text out. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "time-util.h"

/* Why a node that needs a reboot does not go on: the label of nodereboot_reboot_blocked. */
typedef enum MetricsBlock {
        METRICS_BLOCK_WINDOW,           /* outside [Window] */
        METRICS_BLOCK_BLOCKERS,         /* pods that match [Blockers] PodSelector= */
        METRICS_BLOCK_PACKAGE_MANAGER,  /* dpkg (or another package manager) holds its lock */
        METRICS_BLOCK_INHIBITOR,        /* a shutdown inhibitor in logind */
        METRICS_BLOCK_ALERTS,           /* Prometheus alerts ([Blockers] PrometheusURL=) */
        METRICS_BLOCK_LOOP_GUARD,       /* required again right after our reboot ([Reboot] LoopGuardSec=) */
        METRICS_BLOCK_PAUSE,            /* an operator paused the lock group or this node (noderebootctl pause) */
        _METRICS_BLOCK_MAX,
        _METRICS_BLOCK_INVALID = -EINVAL,
} MetricsBlock;

typedef struct MetricsValues {
        const char *version;
        const char *node;
        const char *const *states;      /* every state's name, for the one-hot nodereboot_state */
        size_t n_states;
        size_t state;                   /* index into states */
        bool reboot_required;
        bool lock_held;
        unsigned reboots;
        unsigned cycles_failed;
        usec_t last_reboot;             /* CLOCK_REALTIME; 0: never */
        usec_t lock_wait;               /* of the last cycle; 0: none yet */
        usec_t drain;
        bool blocked[_METRICS_BLOCK_MAX];
        bool kured_compatible;          /* also kured_reboot_required{node=…} */
        bool command_configured;        /* [Sentinel] Command= is set: */
        bool command_failed;            /* its last run failed */
        unsigned reboot_loops;          /* required again within the loop guard, in a row */
        bool notify_configured;         /* [Notify] has URLs: */
        unsigned notifications_failed;  /* deliveries given up since the daemon started */
} MetricsValues;

/* The exposition text, newly allocated. -EINVAL when version, node or states are missing or state
 * is out of range. */
int metrics_format(const MetricsValues *v, char **ret);

const char *metrics_block_to_string(MetricsBlock b);

/* What a scrape's Content-Type says. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
