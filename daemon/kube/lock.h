/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster-wide reboot lock: coordination.k8s.io/v1 Leases "<name>-0" .. "<name>-(N-1)" in one
 * namespace, labelled nodereboot.io/lock=<name>, holderIdentity = node name, and the holder's machine
 * ID in an annotation. A slot is free when it has no holder, or its holder's Node no longer exists,
 * or its holder stopped renewing (renewTime + leaseDurationSeconds in the past by the API server's
 * clock) while its Node is demonstrably healthy and idle: Ready, not cordoned by us, no cycle mark.
 * An expired holder that is NotReady or mid-cycle keeps its slot (a node that does not come back
 * must not be followed into the same bad image) until an administrator releases it. Writes carry
 * the resourceVersion just read; a 409 means someone else won, and the slots are read again. */
#pragma once

#include <stdbool.h>

#include "kube-client.h"

typedef struct Lock Lock;

int lock_new(Lock **ret, KubeClient *client, const char *namespace, const char *name,
             unsigned concurrency, usec_t ttl_usec, const char *identity);
Lock *lock_free(Lock *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lock *, lock_free);

/* error 0: slot holds the lease we hold now. -EBUSY: every slot is held by someone else;
 * holders then describes them ("nodereboot-0 held by node-b since 10:02:03"), including why an
 * expired slot is not taken over ("..., expired 95 s ago, but node-b is NotReady and mid-cycle: not
 * taking it over ...; run 'noderebootctl unlock nodereboot-0' once node-b is dealt with").
 * -ENOTUNIQ: a slot names us but was written by another machine (two hosts share [Node] Name=);
 * holders then carries the message for the log and the status. Other -errno: the API could not be
 * asked. Handlers may start new lock operations. */
typedef void (*LockHandler)(Lock *l, int error, const char *slot, const char *holders, void *userdata);

/* The machine ID (/etc/machine-id) recorded with every take and renewal in the Lease annotation
 * LOCK_ANNOTATION_MACHINE_ID. A slot held under our identity by another machine ID is not ours:
 * acquire, renew and find_own refuse it with -ENOTUNIQ, release leaves it alone. A lease without
 * the annotation (written by an older version) is ours and gets it with our next write. NULL
 * (the default, for noderebootctl) records nothing and checks nothing. -EINVAL for an empty ID or
 * one with characters other than [A-Za-z0-9_.-], or longer than 128. */
int lock_set_machine_id(Lock *l, const char *machine_id);

/* Bounds every later lock_renew(), all its reads, writes and retries, to timeout_usec on event's
 * CLOCK_MONOTONIC: past it the request in flight is abandoned and the handler gets -ETIMEDOUT (a
 * renewal may still have reached the server; the next one reads the slot afresh). 0 or
 * USEC_INFINITY: no bound beyond the client's own timeouts and retries (the default). */
int lock_set_renew_timeout(Lock *l, sd_event *event, usec_t timeout_usec);

/* The operations below return 0 once started: the handler then runs exactly once, later, from the
 * event loop, unless the Lock is freed first. On a negative return the handler never runs. */

/* Takes a free slot (or confirms one we already hold). */
int lock_acquire(Lock *l, LockHandler handler, void *userdata);
/* Renews our slot (and puts back the group's label if a tool removed it); -ESTALE when someone
 * else holds it now (or it is gone); -ENOTUNIQ when it names us but another machine wrote it;
 * -EAGAIN when it kept changing under us (try again soon); -ETIMEDOUT past lock_set_renew_timeout(). */
int lock_renew(Lock *l, const char *slot, LockHandler handler, void *userdata);
/* Clears holderIdentity if we still hold slot; 0 also when it is not ours (nothing to do). */
int lock_release(Lock *l, const char *slot, LockHandler handler, void *userdata);
/* Which slot, if any, names us as holder (slot NULL when none); for adoption at start. A slot held
 * under our name by another machine ID is not ours: -ENOTUNIQ (with the message in holders) when no
 * other slot is. Slots missing from the labelled list are also read by name (a lease whose label a
 * tool removed is still a slot). */
int lock_find_own(Lock *l, LockHandler handler, void *userdata);

/* After an acquire ended in -EBUSY: the earliest moment (API server's clock, CLOCK_REALTIME usec)
 * at which one of the held slots expires unless renewed; USEC_INFINITY when none can be timed.
 * A waiting node tries again then: an expiry changes no object, so the watch does not see it.
 * Slots that already expired but were refused for takeover (their holder is NotReady, cordoned by
 * us or mid-cycle, or its Node could not be read) do not count, so a waiting node does not retry
 * them in a tight loop: they are looked at again by the slow periodic re-check, or at once when the
 * watch sees their holder change (released by its holder or an administrator, taken by another). */
usec_t lock_next_expiry(Lock *l);

/* Watches the group's leases; changed() runs when any slot changes (e.g. one was released), so a
 * waiting node tries again at once. It also runs once after the watch's first list (a slot may have
 * freed before the watch began). Calling lock_watch() again while watching replaces the handler. */
typedef void (*LockChangedHandler)(Lock *l, void *userdata);
int lock_watch(Lock *l, LockChangedHandler changed, void *userdata);
/* What the watch shows, without a request: false only when it is in sync and every slot's Lease
 * exists with a holder, so a waiting node woken by another node's release need not look once the
 * slot was taken (expired slots are not seen here: lock_next_expiry() times those). True when the
 * watch cannot tell. */
bool lock_watch_sees_free_slot(Lock *l);
/* How many slots the watch shows free (no Lease, or no holder); UINT_MAX when it cannot tell. */
unsigned lock_watch_free_slots(Lock *l);
/* How many held slots the watch shows expired by server_now (0 when it cannot tell). */
unsigned lock_watch_expired_slots(Lock *l, usec_t server_now);
/* Since when the watch has shown the slots without a break (kube_watch_live_since()); USEC_INFINITY
 * without a watch or while it fails. */
usec_t lock_watch_live_since(Lock *l);
/* The holders of the slots as the watch shows them (borrowed, valid until the next event), at most
 * max; 0 when it cannot tell. */
size_t lock_watch_holders(Lock *l, const char **ret, size_t max);
/* Whether the watch shows identity holding a slot (false when it cannot tell). */
bool lock_watch_shows_holder(Lock *l, const char *identity);
/* The earliest expiry (API server's clock) of the slots as the watch shows them, every one held:
 * renewals keep moving it, and no request is needed to follow them. 0 when the watch cannot tell
 * (not in sync, a slot free or missing) or the last look refused to take over an expired slot (a
 * holder mid-cycle or NotReady: only a look at its Node tells when it may be taken). */
usec_t lock_watch_next_expiry(Lock *l);
void lock_unwatch(Lock *l);

/* While holding slot: watches that one Lease by name (fieldSelector metadata.name=<slot>, so a
 * Lease whose label was removed is still seen) and calls lost() once, within a second, when it no
 * longer names us: released (an administrator's noderebootctl unlock), taken by another node, held
 * under our name by another machine ID, or deleted. why says which ("taken by node-b"). The watch
 * resumes by itself when the server ends it and lists again after 410 Gone; after lost() it stops.
 * Calling it again replaces the slot and the handler. lost() may free the Lock. */
typedef void (*LockLostHandler)(Lock *l, const char *slot, const char *why, void *userdata);
int lock_watch_held(Lock *l, const char *slot, LockLostHandler lost, void *userdata);
void lock_unwatch_held(Lock *l);

/* For noderebootctl: what the group looks like, and an administrator's release of a stuck slot. */

typedef enum LockSlotState {
        LOCK_SLOT_MISSING,      /* no Lease object yet: free, to be created */
        LOCK_SLOT_VACANT,       /* holderIdentity absent or empty: free */
        LOCK_SLOT_EXPIRED,      /* renewTime + leaseDurationSeconds before the server's now: free
                                 * if its holder's Node is gone, or Ready and idle (see above) */
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
 * as one is touched (unlike the daemon's own operations, which use a slot whose label a tool
 * removed: the administrator's tool writes nothing it cannot tell is a slot). slot (borrowed for
 * the call) describes the lease before the write.
 *   0: released, or already free (slot->holder NULL: nothing was written);
 *   -ESTALE: it changed between our read and our write (409), nothing written; slot describes it as
 *            read again afterwards (NULL when that read failed);
 *   -ENOENT: no such Lease; -EPERM: the Lease is not labelled as a slot of this group;
 *   -EINVAL (returned at once): slot does not name a slot of the group; other -errno: API errors. */
typedef void (*LockForceReleaseHandler)(Lock *l, int error, const LockSlotInfo *slot, void *userdata);
int lock_force_release(Lock *l, const char *slot, LockForceReleaseHandler handler, void *userdata);

/* Whether the Node of an expired slot's holder shows a daemon that died while idle, so its slot may
 * be taken over: condition Ready == True, no nodereboot.io/cordoned=true, no
 * nodereboot.io/reboot-in-progress. Otherwise false and ret_why (may be NULL) gets what keeps the
 * slot, newly allocated: "NotReady and mid-cycle", "unreachable (Ready=Unknown)", "cordoned by
 * nodereboot". -ENOMEM is reported as false with ret_why NULL. */
bool lock_holder_is_idle(json_object *node, char **ret_why);

/* The label that marks our leases. */
#define LOCK_LABEL "nodereboot.io/lock"
/* The machine ID of the host that holds the slot (see lock_set_machine_id()). */
#define LOCK_ANNOTATION_MACHINE_ID "nodereboot.io/holder-machine-id"
/* The reason of the Warning Event posted on a holder's Node whose expired slot is not taken over. */
#define LOCK_EVENT_REASON_STUCK "RebootLockStuck"
