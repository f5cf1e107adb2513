/* SPDX-License-Identifier: Apache-2.0 */
/* Draining the node the Kubernetes way: cordon, list the node's pods, skip mirror pods and
 * DaemonSet-managed pods, evict the rest through policy/v1 Eviction (a 429 means a
 * PodDisruptionBudget forbids it now: retried after Retry-After or 5 s; so are a budget's 403 and
 * the 500 for two budgets; a 409 means gone only when the UID precondition failed), and wait until
 * every evicted pod is gone, watching the node's pods rather than polling each one. Like kubectl
 * drain, it covers the pods listed when it starts: pods that arrive later are left alone. */
#pragma once

#include <stdbool.h>

#include "kube-client.h"
#include "label-selector.h"

typedef struct Drain Drain;

typedef struct DrainOptions {
        usec_t timeout_usec;            /* whole drain; USEC_INFINITY for none */
        int64_t grace_period_sec;       /* < 0: each pod's own terminationGracePeriodSeconds */
        const char *pod_selector;       /* only pods matching this label selector; NULL: all */
        usec_t skip_wait_for_delete_usec; /* > 0: pods terminating longer than this are not waited for */
        usec_t pdb_retry_usec;          /* retry after a 429 without Retry-After, and after a budget's
                                         * 403 or 500; default 5 s */
        bool node_was_unschedulable;    /* someone else cordoned it: cordon without our mark, so
                                         * nothing of ours ever uncordons it */
        char **cordon_annotations;      /* more key, value pairs for the cordon's patch (the cycle's
                                         * marks: one patch, not two); copied. Refused (an admission
                                         * policy), the cordon is sent again without them. */
        char **cordon_labels;
} DrainOptions;

/* error 0: drained. -ETIMEDOUT: the timeout passed (message says which pods remain and why).
 * Other -errno: the drain could not proceed. */
typedef void (*DrainDoneHandler)(Drain *d, int error, const char *message, void *userdata);
/* Progress for the status line: "evicting 3 of 4 pods, 1 blocked by PodDisruptionBudget web-pdb",
 * with the reason when it is not the usual one ("...web-pdb: pdb disruptions allowed is negative"). */
typedef void (*DrainProgressHandler)(Drain *d, const char *progress, void *userdata);

int drain_start(Drain **ret, sd_event *event, KubeClient *client, const char *node, const DrainOptions *o,
                DrainDoneHandler done, DrainProgressHandler progress, void *userdata);
/* Whether the cordon went without DrainOptions' extras (refused with them). */
bool drain_marks_dropped(const Drain *d);
/* Stops a drain in progress (no handler is called). Accepts NULL; returns NULL. May be called from
 * the done and progress handlers. The message passed to them is valid during the call only. */
Drain *drain_free(Drain *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Drain *, drain_free);

/* Pure: whether the drain leaves this pod alone (mirror pod, DaemonSet pod, finished pod, or not
 * matching the selector); reason says why. */
bool drain_pod_is_skipped(json_object *pod, const char **ret_reason);
/* The same, also skipping pods that selector does not select (NULL selects all). */
bool drain_pod_is_skipped_full(json_object *pod, const LabelSelector *selector, const char **ret_reason);
