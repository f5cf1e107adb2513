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
typedef void (*NodeDoneHandler)(KubeClient *c, int error, void *userdata);

int node_get(KubeClient *c, const char *name, NodeHandler handler, void *userdata);

bool node_is_ready(json_object *node);          /* condition Ready == "True" */
bool node_is_unschedulable(json_object *node);  /* spec.unschedulable */

/* Merge patch: spec.unschedulable plus the nodereboot.io/cordoned annotation (set or removed). */
int node_set_unschedulable(KubeClient *c, const char *name, bool unschedulable, NodeDoneHandler handler,
                           void *userdata);
/* Merge patch of metadata.annotations / metadata.labels: value NULL removes the key.
 * pairs: NULL-terminated list of key, value, key, value... The list ends at a NULL key, so a
 * removal as the last pair still needs the terminating NULL: { "k", NULL, NULL }. */
int node_patch_annotations(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler, void *userdata);
int node_patch_labels(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler, void *userdata);
/* Adds or removes a PreferNoSchedule taint (read, JSON patch with a test of resourceVersion). */
int node_set_taint(KubeClient *c, const char *name, const char *key, bool present, NodeDoneHandler handler,
                   void *userdata);
/* Posts a core/v1 Event on the Node (type "Normal" or "Warning"); best effort for callers. */
int node_post_event(KubeClient *c, const char *name, const char *type, const char *reason,
                    const char *message, NodeDoneHandler handler, void *userdata);

/* Pure parts, shared with drain.c (which cordons with a call it can cancel) and the tests. */
/* The merge patch node_set_unschedulable() sends. */
int node_unschedulable_patch(bool unschedulable, json_object **ret);
/* The node's spec.taints with the PreferNoSchedule taint `key` added or removed (other taints kept
 * as they are). Returns 1 and the new array when something changes, 0 and NULL when not. */
int node_taints_update(json_object *node, const char *key, bool present, json_object **ret_taints);
