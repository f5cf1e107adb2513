/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster-wide reboot lock: coordination.k8s.io/v1 Leases "<name>-0" .. "<name>-(N-1)" in one
 * namespace, labelled nodereboot.io/lock=<name>, holderIdentity = node name. A slot is free when it
 * has no holder, its holder stopped renewing (renewTime + leaseDurationSeconds in the past by the
 * API server's clock), or its holder's Node no longer exists. Writes carry the resourceVersion just
 * read; a 409 means someone else won, and the slots are read again. */
#pragma once

#include <stdbool.h>

#include "kube-client.h"

typedef struct Lock Lock;

int lock_new(Lock **ret, KubeClient *client, const char *namespace, const char *name,
             unsigned concurrency, usec_t ttl_usec, const char *identity);
Lock *lock_free(Lock *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lock *, lock_free);

/* error 0: slot holds the lease we hold now. -EBUSY: every slot is held by someone else;
 * holders then describes them ("nodereboot-0 held by node-b since 10:02:03"). Other -errno: the
 * API could not be asked. Handlers may start new lock operations. */
typedef void (*LockHandler)(Lock *l, int error, const char *slot, const char *holders, void *userdata);

/* The operations below return 0 once started: the handler then runs exactly once, later, from the
 * event loop, unless the Lock is freed first. On a negative return the handler never runs. */

/* Takes a free slot (or confirms one we already hold). */
int lock_acquire(Lock *l, LockHandler handler, void *userdata);
/* Renews our slot; -ESTALE when someone else holds it now (or it is gone); -EAGAIN when it kept
 * changing under us (try again soon). */
int lock_renew(Lock *l, const char *slot, LockHandler handler, void *userdata);
/* Clears holderIdentity if we still hold slot; 0 also when it is not ours (nothing to do). */
int lock_release(Lock *l, const char *slot, LockHandler handler, void *userdata);
/* Which slot, if any, names us as holder (slot NULL when none); for adoption at start. */
int lock_find_own(Lock *l, LockHandler handler, void *userdata);

/* Watches the group's leases; changed() runs when any slot changes (e.g. one was released), so a
 * waiting node tries again at once. It also runs once after the watch's first list (a slot may have
 * freed before the watch began). Calling lock_watch() again while watching replaces the handler. */
typedef void (*LockChangedHandler)(Lock *l, void *userdata);
int lock_watch(Lock *l, LockChangedHandler changed, void *userdata);
void lock_unwatch(Lock *l);

/* The label that marks our leases. */
#define LOCK_LABEL "nodereboot.io/lock"
