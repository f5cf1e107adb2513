/* SPDX-License-Identifier: Apache-2.0 */
/* Whether pods count as healthy *in this boot*: the verdict behind [Recovery] WaitForPodsSelector=.
 * After a reboot the Pods that survived it (DaemonSet pods are not evicted) keep the status the
 * kubelet of the previous boot posted, Running and Ready=True, until the kubelet of the new boot
 * posts theirs, which it may do well after it posted the Node Ready. So a pod counts only if it is
 * Running, not being deleted, Ready=True, and every container runs since this boot. Pure. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "time-util.h"

/* Pods named in a summary before "and N more". */
#define POD_HEALTH_MESSAGE_PODS_MAX 5U

/* Whether one pod is ready in the boot that began at boot_time (CLOCK_REALTIME of this host).
 * 1: ready (*ret_reason untouched); 0: not, *ret_reason (may be NULL) a newly allocated
 * human-readable why ("container c runs since before this boot (its status is not from the
 * kubelet of this boot yet)"); -ENOMEM. */
int pod_health_check_pod(json_object *pod, usec_t boot_time, char **ret_reason);

/* A Succeeded or Failed pod: it never runs again (a controller replaces it with a new pod, which
 * is judged on its own); such pods are left out of the verdict. */
bool pod_health_pod_is_finished(json_object *pod);

/* The verdict over pods (a JSON array of Pod objects, e.g. a PodList's items; NULL for none),
 * leaving finished pods out. 1: at least one pod counts and every such pod is ready; 0: not,
 * with *ret_message (may be NULL) newly allocated: which pods are not ready and why, in
 * namespace/name order ("1 of 2 pods not ready: kube-system/csi-x (not Ready: ...)"), or, when no
 * pod counts, "no pod on this node matches WaitForPodsSelector=<selector>". -ENOMEM. */
int pod_health_summarize(json_object *pods, usec_t boot_time, const char *selector, char **ret_message);
