/* SPDX-License-Identifier: Apache-2.0 */
/* Reboot blockers: a pod on this node, not finished, that matches one of the configured label
 * selectors ([Blockers] PodSelector=, kured's --blocking-pod-selector) holds the reboot back
 * before the lock is even asked for. Several selectors are OR'ed. */
#pragma once

#include "kube-client.h"

typedef struct BlockersCheck BlockersCheck;

/* error 0 and blocker NULL: nothing blocks. error 0 and blocker "pod ns/name matches app=db":
 * blocked. error < 0: the API could not be asked (callers treat that as blocked). */
typedef void (*BlockersHandler)(int error, const char *blocker, void *userdata);

/* Runs one LIST per selector, in order, stopping at the first blocker. */
int blockers_check(BlockersCheck **ret, KubeClient *c, const char *node, char **selectors,
                   BlockersHandler handler, void *userdata);
/* Cancels a check in flight (no handler call). Accepts NULL; returns NULL. */
BlockersCheck *blockers_check_free(BlockersCheck *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BlockersCheck *, blockers_check_free);

/* Pure: the first pod of a PodList that blocks (not Succeeded, Failed or Unknown, not being
 * deleted), as "ns/name", or NULL. */
char *blockers_first_blocking_pod(json_object *pod_list);
