/* SPDX-License-Identifier: Apache-2.0 */
/* The health gate before the uncordon ([Recovery] WaitForPodsSelector=): a watch of the pods bound
 * to the node that match a label selector, judged by pod_health_summarize() against this boot, and
 * a timeout after which the gate says so (and keeps watching: a gate that times out still opens
 * when the pods become ready). */
#pragma once

#include <stdbool.h>

#include "kube-client.h"

typedef struct RecoveryGate RecoveryGate;

/* Called whenever the verdict or its message changes, and once when the timeout passes (timed_out
 * stays true from then on). ready: every matching pod is ready in this boot (message NULL); else
 * message says which are not and why, or that the pods cannot be watched. Never called from inside
 * recovery_gate_new(); the handler may free the gate. message is valid during the call only. */
typedef void (*RecoveryGateHandler)(RecoveryGate *g, bool ready, bool timed_out, const char *message,
                                    void *userdata);

/* selector: a label selector (-EINVAL when it does not parse). boot_time: CLOCK_REALTIME of this
 * boot's start (see pod-health.h). timeout_usec: 0 or USEC_INFINITY for none. */
int recovery_gate_new(RecoveryGate **ret, sd_event *event, KubeClient *client, const char *node,
                      const char *selector, usec_t boot_time, usec_t timeout_usec,
                      RecoveryGateHandler handler, void *userdata);
/* Stops the watch (no handler is called). Accepts NULL; returns NULL. */
RecoveryGate *recovery_gate_free(RecoveryGate *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(RecoveryGate *, recovery_gate_free);

/* The last verdict reported: true once every matching pod was seen ready in this boot. */
bool recovery_gate_is_ready(const RecoveryGate *g);
