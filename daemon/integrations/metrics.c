/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

static const char *const block_names[_METRICS_BLOCK_MAX] = {
        [METRICS_BLOCK_WINDOW] = "window",
        [METRICS_BLOCK_BLOCKERS] = "blockers",
        [METRICS_BLOCK_PACKAGE_MANAGER] = "package_manager",
        [METRICS_BLOCK_INHIBITOR] = "inhibitor",
        [METRICS_BLOCK_ALERTS] = "alerts",
        [METRICS_BLOCK_LOOP_GUARD] = "loop_guard",
        [METRICS_BLOCK_PAUSE] = "pause",
};

const char *metrics_block_to_string(MetricsBlock b) {
        return b >= 0 && b < _METRICS_BLOCK_MAX ? block_names[b] : NULL;
}

/* A label value: backslash, double quote and line feed escaped, as the format asks. */
static void put_label_value(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void put_unsigned(FILE *f, const char *name, const char *type, const char *help, unsigned value) {
        put_family(f, name, type, help);
        fprintf(f, "%s %u\n", name, value);
}

/* A gauge of one sample in seconds with millisecond precision, the way Prometheus prints them. */
static void put_seconds(FILE *f, const char *name, const char *help, usec_t t) {
        if (t == USEC_INFINITY)
                t = 0;
        put_family(f, name, "gauge", help);
        fprintf(f, "%s %" PRIu64 ".%03" PRIu64 "\n", name, t / USEC_PER_SEC, t % USEC_PER_SEC / USEC_PER_MSEC);
}

int metrics_format(const MetricsValues *v, char **ret) {
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        if (!v || !ret || !v->version || !v->node || !v->states || v->state >= v->n_states)
                return -EINVAL;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        put_family(f, "nodereboot_info", "gauge", "The version of nodereboot and the node it runs on (always 1).");
        fputs("nodereboot_info{version=\"", f);
        put_label_value(f, v->version);
        fputs("\",node=\"", f);
        put_label_value(f, v->node);
        fputs("\"} 1\n", f);

        put_unsigned(f, "nodereboot_reboot_required", "gauge",
                     "Whether this node needs a reboot that has not happened yet (1) or not (0).", v->reboot_required);

        put_family(f, "nodereboot_state", "gauge", "The state of this node's reboot cycle (1 for the current one).");
        for (size_t i = 0; i < v->n_states; i++) {
                fputs("nodereboot_state{state=\"", f);
                put_label_value(f, v->states[i]);
                fprintf(f, "\"} %d\n", i == v->state);
        }

        put_unsigned(f, "nodereboot_lock_held", "gauge",
                     "Whether this node holds a slot of the cluster-wide reboot lock.", v->lock_held);

        put_unsigned(f, "nodereboot_reboots_total", "counter",
                     "Reboots this node went through in nodereboot's cycles.", v->reboots);

        put_unsigned(f, "nodereboot_cycles_failed_total", "counter",
                     "Reboot cycles given up and rolled back (uncordoned, slot released) after an error.",
                     v->cycles_failed);

        put_seconds(f, "nodereboot_last_reboot_timestamp_seconds",
                    "When the machine came up from its last reboot by nodereboot (Unix time; 0: never).",
                    v->last_reboot);

        put_seconds(f, "nodereboot_lock_wait_seconds",
                    "How long the last cycle waited from \"reboot required\" until it held a lock slot.", v->lock_wait);

        put_seconds(f, "nodereboot_drain_duration_seconds", "How long the last drain took.", v->drain);

        put_unsigned(f, "nodereboot_reboot_loops", "gauge",
                     "Reboots required again within [Reboot] LoopGuardSec= of the last one, in a row (0: no loop).",
                     v->reboot_loops);

        put_family(f, "nodereboot_reboot_blocked", "gauge",
                   "Whether a needed reboot waits, and why (1 for each reason that holds it now).");
        for (MetricsBlock b = 0; b < _METRICS_BLOCK_MAX; b++)
                fprintf(f, "nodereboot_reboot_blocked{reason=\"%s\"} %d\n", block_names[b], v->blocked[b]);

        if (v->command_configured) {
                put_unsigned(f, "nodereboot_sentinel_command_failed", "gauge",
                             "Whether the last run of [Sentinel] Command= failed (an error never requires a reboot).",
                             v->command_failed);
        }

        if (v->notify_configured) {
                put_unsigned(f, "nodereboot_notifications_failed_total", "counter",
                             "Notifications given up after their retries since the daemon started.",
                             v->notifications_failed);
        }

        if (v->kured_compatible) {
                /* kured's own metric, with its help text's meaning, for dashboards and the alert
                 * kured's documentation recommends. */
                put_family(f, "kured_reboot_required", "gauge", "OS requires reboot due to software updates.");
                fputs("kured_reboot_required{node=\"", f);
                put_label_value(f, v->node);
                fprintf(f, "\"} %d\n", v->reboot_required);
        }

        if (ferror(f)) {
                fclose(f);
                free(text);
                return -ENOMEM;
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
