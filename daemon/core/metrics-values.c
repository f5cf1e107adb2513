/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "build-config.h"
#include "metrics-values.h"

static const char *const *state_names(void) {
        static const char *names[_REBOOT_PHASE_MAX];

        if (!names[0])
                for (RebootPhase p = 0; p < _REBOOT_PHASE_MAX; p++)
                        names[p] = reboot_phase_to_string(p);
        return names;
}

/* Until the machine has rebooted; a rollback that ends pending still needs one. */
static bool reboot_still_required(const RebootState *s, bool sentinel_present) {
        switch (s->phase) {
        case REBOOT_PHASE_PENDING:
        case REBOOT_PHASE_LOCKED:
        case REBOOT_PHASE_DRAINING:
        case REBOOT_PHASE_REBOOTING:
                return true;
        case REBOOT_PHASE_ROLLING_BACK:
                return s->rollback_to == REBOOT_PHASE_PENDING || sentinel_present;
        default:
                return sentinel_present;
        }
}

void metrics_values_from_state(MetricsValues *ret, const RebootState *s, bool sentinel_present,
                               const bool blocked[_METRICS_BLOCK_MAX], const char *node, bool kured_compatible) {
        *ret = (MetricsValues) {
                .version = PACKAGE_VERSION,
                .node = node,
                .states = state_names(),
                .n_states = _REBOOT_PHASE_MAX,
                .state = (size_t) s->phase,
                .reboot_required = reboot_still_required(s, sentinel_present),
                .lock_held = s->lease && reboot_phase_holds_lock(s->phase),
                .reboots = s->stats.reboots,
                .cycles_failed = s->stats.failed_cycles,
                .last_reboot = s->stats.last_reboot,
                .lock_wait = s->stats.last_lock_wait,
                .drain = s->stats.last_drain,
                .kured_compatible = kured_compatible,
        };
        if (blocked)
                memcpy(ret->blocked, blocked, sizeof ret->blocked);
}
