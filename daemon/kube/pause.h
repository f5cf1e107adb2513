/* SPDX-License-Identifier: Apache-2.0 */
/* An operator's pause of reboots, kept in the cluster: the ConfigMap "<Name>-pause" in the queue's
 * namespace ([Lock] QueueNamespace=, default nodereboot), labelled nodereboot.io/lock=<Name>. That
 * namespace holds nothing but nodereboot's objects: RBAC cannot limit the operators' create by
 * name, and in kube-system a ConfigMap may steer the cluster (CoreDNS imports coredns-custom). Its key "group" pauses every node of the lock
 * group; "node.<node name>" pauses one node. A value is JSON {"reason", "by", "since"} as
 * noderebootctl writes it, or any text (taken as the reason) for a key added with kubectl edit.
 * Removing a key (or the ConfigMap) resumes.
 *
 * The daemon reads it (pause_get()) right before it takes a lock slot, and watches it only while
 * it is paused (PauseWatch), so that a resume is seen at once; noderebootctl changes it
 * (pause_update()), with resourceVersion preconditions. Nodes' credentials may read it only (the
 * Role in packaging/kubernetes/rbac.yaml names it); changing it needs the operator role. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "kube-client.h"
#include "time-util.h"

#define PAUSE_KEY_GROUP "group"
#define PAUSE_KEY_NODE_PREFIX "node."
#define PAUSE_LABEL "nodereboot.io/lock"
/* Longer reasons are cut: the value also goes into Events and STATUS=. */
#define PAUSE_REASON_MAX 256U

typedef struct PauseEntry {
        bool set;
        char *reason;                   /* may be NULL */
        char *by;                       /* who paused, as noderebootctl recorded it; may be NULL */
        usec_t since;                   /* CLOCK_REALTIME, 0 when unknown */
} PauseEntry;

typedef struct PauseState {
        PauseEntry group;
        PauseEntry node;                /* the key of the node asked about */
        unsigned nodes_paused;          /* how many node.* keys there are */
} PauseState;

void pause_entry_done(PauseEntry *e);
void pause_state_done(PauseState *s);
static inline bool pause_state_holds(const PauseState *s) {
        return s->group.set || s->node.set;
}

/* The ConfigMap's name for lock_name, newly allocated. */
char *pause_configmap_name(const char *lock_name);
/* "node.<node>", or NULL when node cannot be a ConfigMap key. */
char *pause_node_key(const char *node);

/* Pure. One value as stored; never fails on odd text (it becomes the reason), -ENOMEM only. */
int pause_entry_parse(const char *value, PauseEntry *ret);
/* Pure. The value to store. */
char *pause_entry_format(const char *reason, const char *by, usec_t since);
/* Pure. What configmap (NULL: there is none) says for node (NULL: the group only). -EBADMSG when
 * it is not a ConfigMap, or its data is not an object of strings. */
int pause_state_from_configmap(json_object *configmap, const char *node, PauseState *ret);
/* "reboots of the lock group are paused by root@host since 2026-12-05 10:00:00 UTC: reason";
 * NULL when nothing holds. For the group first, then the node. */
char *pause_describe(const PauseState *s, const char *lock_name);

typedef void (*PauseHandler)(int error, const PauseState *state, void *userdata);

/* One GET of the ConfigMap; 404 is "not paused". handler runs once, from the event loop (not at
 * all when the client is freed first). */
int pause_get(KubeClient *c, const char *namespace, const char *lock_name, const char *node,
              PauseHandler handler, void *userdata);

/* Lists and watches the ConfigMap (by metadata.name, which the Role's resourceNames allow) and
 * calls handler after every change with what it says now, and on errors (the watch retries by
 * itself; the last state stands). */
typedef struct PauseWatch PauseWatch;
int pause_watch_new(PauseWatch **ret, KubeClient *c, const char *namespace, const char *lock_name,
                    const char *node, PauseHandler handler, void *userdata);
PauseWatch *pause_watch_free(PauseWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(PauseWatch *, pause_watch_free);
/* Whether the watch has listed since it started. */
bool pause_watch_synced(const PauseWatch *w);
/* Whether it sees every change now (not failing, not between a failure and its next list). */
bool pause_watch_live(const PauseWatch *w);
const PauseState *pause_watch_state(const PauseWatch *w);

/* Sets (value non-NULL) or removes (NULL) key in the ConfigMap: read, change, write with a
 * resourceVersion precondition, again after a conflict; creates the ConfigMap for the first key and
 * deletes it when the last goes. handler gets 1 when something changed, 0 when the key already
 * was so (resume of what was not paused), or -errno (-EACCES: not allowed). */
typedef void (*PauseUpdateHandler)(int result, const char *message, void *userdata);
int pause_update(KubeClient *c, const char *namespace, const char *lock_name, const char *key,
                 const char *value, PauseUpdateHandler handler, void *userdata);
