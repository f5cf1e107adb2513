/* SPDX-License-Identifier: Apache-2.0 */
/* What the metrics say about a node, from its reboot state. Pure. */
#pragma once

#include "metrics.h"
#include "reboot-machine.h"

/* Fills ret from s. sentinel_present: the sentinel exists now (it makes an idle node's reboot
 * required before its cycle starts); blocked: why a needed reboot waits now (NULL: nothing).
 * Strings are borrowed from the arguments and static tables. */
void metrics_values_from_state(MetricsValues *ret, const RebootState *s, bool sentinel_present,
                               const bool blocked[_METRICS_BLOCK_MAX], const char *node, bool kured_compatible);
