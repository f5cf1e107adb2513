/* SPDX-License-Identifier: Apache-2.0 */
/* This node's Node object: read it, cordon and uncordon (merge patch of spec.unschedulable),
 * our annotations, labels and PreferNoSchedule taint, and Kubernetes Events about it. */
#pragma once

#include <stdbool.h>

#include "kube-client.h"

#define NODE_ANNOTATION_IN_PROGRESS  "nodereboot.io/reboot-in-progress"   /* RFC 3339, while a cycle runs */
#define NODE_ANNOTATION_REQUIRED     "nodereboot.io/reboot-required-since" /* most recent need */
#define NODE_ANNOTATION_CORDONED     "nodereboot.io/cordoned"              /* "true" when we cordoned */
#define NODE_ANNOTATION_LAST_REBOOT  "nodereboot.io/last-reboot"           /* RFC 3339 of the last finished cycle */
#define NODE_ANNOTATION_REASON       "nodereboot.io/reboot-reason"

/* node is borrowed: valid during the call only (take a reference to keep it); NULL on error. */
typedef void (*NodeHandler)(KubeClient *c, int error, json_object *node, void *userdata);
/* response: the API server's last answer (status 0 when none arrived); NULL when the call ended
 * before any request was made. */
typedef void (*NodeDoneHandler)(KubeClient *c, int error, const KubeResponse *response, void *userdata);

/* When the API server refused a request for what it asked (403 Forbidden from RBAC or an
 * admission policy, 422 Invalid), the message of its Status, which names what it refused; NULL
 * for anything else (success, no answer, 401, 409, 429, 5xx). */
const char *node_refusal(const KubeResponse *response);

int node_get(KubeClient *c, const char *name, NodeHandler handler, void *userdata);

bool node_is_ready(json_object *node);          /* condition Ready == "True" */

/* Whether the kubelet of *this* boot says the node is back: status.nodeInfo.bootID is boot_id (32
 * hex digits; the Node's dashed form compares equal) and Ready is "True" with a lastHeartbeatTime
 * not older than boot_time (CLOCK_REALTIME; the kubelet stamps it with this host's clock, so no
 * skew enters). After a reboot the Node keeps Ready=True and the old bootID until the node
 * controller's grace period runs out (40 s in 1.28): neither alone proves anything.
 * Returns true, or false with ret_reason (may be NULL) set to a static text for STATUS=. */
bool node_kubelet_is_back(json_object *node, const char *boot_id, usec_t boot_time, const char **ret_reason);
bool node_is_unschedulable(json_object *node);  /* spec.unschedulable */
/* status.nodeInfo.kernelVersion when it is printable ASCII of at most 128 characters (what the
 * kubelet reports: uname -r), else NULL. Borrowed from node. */
const char *node_kernel_version(json_object *node);

/* Merge patch: spec.unschedulable plus the nodereboot.io/cordoned annotation (set or removed). */
int node_set_unschedulable(KubeClient *c, const char *name, bool unschedulable, NodeDoneHandler handler,
                           void *userdata);
/* Merge patch of metadata.annotations / metadata.labels: value NULL removes the key.
 * pairs: NULL-terminated list of key, value, key, value... The list ends at a NULL key, so a
 * removal as the last pair still needs the terminating NULL: { "k", NULL, NULL }. */
int node_patch_annotations(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler, void *userdata);
int node_patch_labels(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler, void *userdata);
/* Adds key, value pairs (as node_patch_annotations() takes them) to metadata.<field> of a merge
 * patch, so that one patch carries them with what it already changes. */
int node_patch_add_metadata(json_object *patch, const char *field, char **pairs);
/* Sends a merge patch built by the caller (node_unschedulable_patch() + node_patch_add_metadata()). */
int node_patch_merge(KubeClient *c, const char *name, json_object *patch, NodeDoneHandler handler, void *userdata);
/* Both in one merge patch. */
int node_patch_annotations_and_labels(KubeClient *c, const char *name, char **annotations, char **labels,
                                      NodeDoneHandler handler, void *userdata);
/* Adds or removes a PreferNoSchedule taint (read, JSON patch with a test of resourceVersion). */
int node_set_taint(KubeClient *c, const char *name, const char *key, bool present, NodeDoneHandler handler,
                   void *userdata);
/* Posts a core/v1 Event on the Node (type "Normal" or "Warning"); best effort for callers. */
int node_post_event(KubeClient *c, const char *name, const char *type, const char *reason,
                    const char *message, NodeDoneHandler handler, void *userdata);
/* The same, named after key (the same key gives the same Event name): what many nodes report about
 * one thing (a stuck lock slot) is posted once, the others' posts end in AlreadyExists (success). */
int node_post_event_once(KubeClient *c, const char *name, const char *key, const char *type, const char *reason,
                         const char *message, NodeDoneHandler handler, void *userdata);

/* Pure parts, shared with drain.c (which cordons with a call it can cancel) and the tests. */
/* The merge patch node_set_unschedulable() sends. */
/* The merge patch node_set_unschedulable() sends. Cordoning adds our nodereboot.io/cordoned mark
 * only with mark (when we are the ones who make the node unschedulable: the reconciliation after
 * a lost state file uncordons what carries it); uncordoning always removes it. */
int node_unschedulable_patch(bool unschedulable, bool mark, json_object **ret);
/* The drain's cordon: the patch above plus the nodereboot.io/reboot-in-progress mark (RFC 3339 of
 * now), always, in the same write: a node cordoned for a reboot is never without the mark that
 * tells other nodes it is mid-cycle (the lock never takes an expired slot from such a holder). */
int node_cordon_patch(bool mark, usec_t now, json_object **ret);
/* The node's spec.taints with the PreferNoSchedule taint `key` added or removed (other taints kept
 * as they are). Returns 1 and the new array when something changes, 0 and NULL when not. */
int node_taints_update(json_object *node, const char *key, bool present, json_object **ret_taints);
