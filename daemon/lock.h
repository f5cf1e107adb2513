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

/* After an acquire ended in -EBUSY: the earliest moment (API server's clock, CLOCK_REALTIME usec)
 * at which one of the held slots expires unless renewed; USEC_INFINITY when none can be timed.
 * A waiting node tries again then: an expiry changes no object, so the watch does not see it. */
usec_t lock_next_expiry(Lock *l);

/* Watches the group's leases; changed() runs when any slot changes (e.g. one was released), so a
 * waiting node tries again at once. It also runs once after the watch's first list (a slot may have
 * freed before the watch began). Calling lock_watch() again while watching replaces the handler. */
typedef void (*LockChangedHandler)(Lock *l, void *userdata);
int lock_watch(Lock *l, LockChangedHandler changed, void *userdata);
void lock_unwatch(Lock *l);

/* For noderebootctl: what the group looks like, and an administrator's release of a stuck slot. */

typedef enum LockSlotState {
        LOCK_SLOT_MISSING,      /* no Lease object yet: free, to be created */
        LOCK_SLOT_VACANT,       /* holderIdentity absent or empty: free */
        LOCK_SLOT_EXPIRED,      /* renewTime + leaseDurationSeconds before the server's now: free */
        LOCK_SLOT_HELD,         /* a holder that renews in time, or whose times cannot be read */
        _LOCK_SLOT_STATE_MAX,
        _LOCK_SLOT_STATE_INVALID = -EINVAL,
} LockSlotState;

const char *lock_slot_state_to_string(LockSlotState s);

typedef struct LockSlotInfo {
        char *name;                     /* "<name>-<index>" */
        unsigned index;
        LockSlotState state;            /* by the API server's clock */
        char *holder;                   /* holderIdentity; NULL when MISSING or VACANT */
        usec_t acquire_time;            /* CLOCK_REALTIME; 0 when absent or unreadable */
        usec_t renew_time;
        int64_t duration_sec;           /* leaseDurationSeconds; 0 when absent */
        int64_t transitions;            /* leaseTransitions */
        char *resource_version;         /* NULL when MISSING */
} LockSlotInfo;

/* The name of slot index in group name ("<name>-<index>"), newly allocated, NULL on OOM. */
char *lock_slot_name(const char *name, unsigned index);
/* The index of slot in group name, or -EINVAL when slot does not name a slot of that group. */
int lock_slot_index(const char *name, const char *slot);

void lock_slot_info_done(LockSlotInfo *s);
void lock_slot_infos_free(LockSlotInfo *s, size_t n);

/* slots (borrowed for the call) are ordered by index: every slot below the concurrency, MISSING
 * where no Lease exists, then any leases of the group at higher indexes (left over from a larger
 * Concurrency=). server_now is the API server's clock at the answer. */
typedef void (*LockListHandler)(Lock *l, int error, const LockSlotInfo *slots, size_t n, usec_t server_now,
                                void *userdata);
int lock_list(Lock *l, LockListHandler handler, void *userdata);

/* Clears holderIdentity of slot whoever holds it, writing with the resourceVersion just read, so a
 * concurrent change is never overwritten. Only a Lease named like a slot of the group and labelled
 * as one is touched. slot (borrowed for the call) describes the lease before the write.
 *   0: released, or already free (slot->holder NULL: nothing was written);
 *   -ESTALE: it changed between our read and our write (409), nothing written; slot describes it as
 *            read again afterwards (NULL when that read failed);
 *   -ENOENT: no such Lease; -EPERM: the Lease is not labelled as a slot of this group;
 *   -EINVAL (returned at once): slot does not name a slot of the group; other -errno: API errors. */
typedef void (*LockForceReleaseHandler)(Lock *l, int error, const LockSlotInfo *slot, void *userdata);
int lock_force_release(Lock *l, const char *slot, LockForceReleaseHandler handler, void *userdata);

/* The label that marks our leases. */
#define LOCK_LABEL "nodereboot.io/lock"
