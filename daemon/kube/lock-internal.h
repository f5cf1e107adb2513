/* SPDX-License-Identifier: Apache-2.0 */
/* The pure decisions of the lock module, exposed for tests: when a Lease slot is free, which free
 * slot to take, the bodies of the writes, the "held by" text. No I/O, no logging. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "lock.h"
#include "time-util.h"

/* How many times an operation reads the slots again after losing a write (409) before it gives up. */
#define LOCK_CONFLICT_ROUNDS_MAX 5U

/* spec.holderIdentity, or NULL when absent, empty or not a string. */
const char *lock_lease_holder(json_object *lease);

/* Judges one slot by the API server's clock. lease NULL means the slot does not exist.
 * Conservative on bad data: a lease with a holder but without a parsable renewTime, or without a
 * positive leaseDurationSeconds, is HELD (it never expires; only the ghost check can free it), and
 * so is one whose holderIdentity is not a string. An absent spec or holder is VACANT.
 * Who the holder is does not matter here; callers check for their own identity first.
 * ret_expired_usec (may be NULL) gets how long ago an EXPIRED lease ran out, 0 otherwise. */
LockSlotState lock_slot_state(json_object *lease, usec_t server_now, usec_t *ret_expired_usec);

/* Convenience on top of lock_slot_state(): true for MISSING, VACANT and EXPIRED; ret_reason (may be
 * NULL) gets a newly allocated text for the log ("free", "absent", "expired 95 s ago", "held by x"). */
bool lock_slot_is_free(json_object *lease, usec_t server_now, char **ret_reason);

/* Picks the slot to take: a random one among the MISSING and VACANT slots, else a random one among
 * the EXPIRED ones (an expired holder may be a slow reboot; prefer slots nobody claims).
 * rnd is any random number. Returns the index, or -EBUSY when every slot is HELD. */
int lock_choose_slot(const LockSlotState *states, unsigned n, uint64_t rnd);

/* When no slot is unclaimed: the order in which the holders' Nodes are looked up. The EXPIRED slots
 * first (taken over when the holder is gone, or Ready and idle), starting at a random one and
 * going round, so that waiting nodes spread; then the HELD ones (taken over only when the holder's
 * Node is gone). ret_order gets up to n indexes; returns how many. */
unsigned lock_check_order(const LockSlotState *states, unsigned n, uint64_t rnd, unsigned *ret_order);

/* Who holds lease, seen from identity on machine machine_id:
 *   US: holderIdentity is identity and the LOCK_ANNOTATION_MACHINE_ID annotation is absent or
 *       empty (an older version wrote it), equals machine_id, or machine_id is NULL (no check);
 *   TWIN: holderIdentity is identity but another machine wrote it (two hosts share a name);
 *   OTHER: anyone else, or nobody. */
typedef enum LockOwner {
        LOCK_OWNER_OTHER,
        LOCK_OWNER_US,
        LOCK_OWNER_TWIN,
} LockOwner;
LockOwner lock_lease_owner(json_object *lease, const char *identity, const char *machine_id);
/* The LOCK_ANNOTATION_MACHINE_ID annotation, or NULL when absent, empty or not a string. */
const char *lock_lease_machine_id(json_object *lease);

/* Whether lease still names us while we hold it: 0 (ret NULL) when lock_lease_owner() says US,
 * 1 and why not ("released (no holder)", "taken by node-b", "held under our name by machine
 * 1234abcd5678…") otherwise; lease NULL means it was deleted. -ENOMEM. */
int lock_lost_reason(json_object *lease, const char *identity, const char *machine_id, char **ret);

/* What a Lease's LOCK_LABEL says about it as slot of group name, when read by its name. */
typedef enum LockLabel {
        LOCK_LABEL_OURS,                /* labelled as a slot of name */
        LOCK_LABEL_MISSING,             /* no such label: a tool removed it; still our slot */
        LOCK_LABEL_FOREIGN,             /* labelled for another group: never touched */
} LockLabel;
LockLabel lock_lease_label(json_object *lease, const char *name);

/* Puts back the label LOCK_LABEL=name on a body about to be written (a tool may have removed it)
 * and, when machine_id is not NULL, records it in LOCK_ANNOTATION_MACHINE_ID. */
int lock_mark_lease(json_object *body, const char *name, const char *machine_id);

/* Whether a 409's body is the API server saying that Lease slot already exists (reason
 * AlreadyExists, details naming it), rather than a write conflict. */
bool lock_status_is_already_exists(json_object *status, const char *slot);

/* The texts of a refusal. stuck: "nodereboot-0 held by node-b, expired 95 s ago, but node-b is
 * NotReady and mid-cycle: not taking it over (a node that does not come back must not be
 * followed); run 'noderebootctl unlock nodereboot-0' once node-b is dealt with". twin: "lease
 * nodereboot-0 is held under our name node-a by machine 1234abcd5678…, we are 5678abcd1234…: two
 * hosts share [Node] Name=node-a". NULL on OOM. */
char *lock_format_stuck(const char *slot, const char *holder, usec_t expired_usec, const char *why);
char *lock_format_twin(const char *slot, const char *identity, const char *their_machine_id,
                       const char *our_machine_id);

/* Whether the holder of a held lease renews on time, as a running daemon does every third of the
 * lease's duration: renewTime + leaseDurationSeconds/3 + a margin (a tenth of the duration, at
 * least LOCK_RENEWAL_MARGIN_MIN_USEC) is not past server_now. False when the times cannot be read.
 * A waiting node reads the Node of a held slot's holder (to take the slot of a Node deleted under
 * it) only when this is false. */
bool lock_holder_renews_on_time(json_object *lease, usec_t server_now);
#define LOCK_RENEWAL_MARGIN_MIN_USEC (5 * USEC_PER_SEC)

/* leaseDurationSeconds for a TTL: whole seconds, rounded up, at least 1. */
int64_t lock_ttl_to_seconds(usec_t ttl_usec);

/* Request bodies. The PUT bodies are deep copies of the lease just read, so they carry its
 * metadata.resourceVersion as the write precondition and keep labels and annotations.
 * take: holder = identity, acquireTime = renewTime = now, leaseDurationSeconds from ttl,
 *       leaseTransitions + 1 when the holder changes.
 * renew: renewTime = now, leaseDurationSeconds from ttl.
 * release: holderIdentity and the machine ID annotation removed, renewTime = now (the time it
 *          became free).
 * new: a fresh Lease for POST, labelled LOCK_LABEL=name, held by identity. */
int lock_build_take(json_object *lease, const char *identity, usec_t ttl_usec, usec_t now,
                    json_object **ret);
int lock_build_renew(json_object *lease, usec_t ttl_usec, usec_t now, json_object **ret);
int lock_build_release(json_object *lease, usec_t now, json_object **ret);
int lock_build_new(const char *namespace, const char *name, const char *slot, const char *identity,
                   usec_t ttl_usec, usec_t now, json_object **ret);

/* "nodereboot-0 held by node-b since 10:02:03 (renewed 12 s ago); nodereboot-1 ..." for every
 * HELD or EXPIRED slot (times in UTC, ages by the server's clock); "" when none is held.
 * leases[i] may be NULL (missing slot). Returns NULL on OOM. */
char *lock_format_holders(json_object * const *leases, char * const *slot_names, unsigned n,
                          usec_t server_now);
/* The same, where notes (may be NULL; notes[i] may be NULL) replaces what is said of slot i, held
 * or not: a refused takeover, a lease labelled for another group. */
char *lock_format_holders_noted(json_object * const *leases, char * const *slot_names, char * const *notes,
                                unsigned n, usec_t server_now);

/* Whether a 404's body is the API server saying that Node node does not exist (a Status with reason
 * NotFound and details naming the node), rather than a proxy's or a wrong URL's 404. */
bool lock_status_is_node_not_found(json_object *status, const char *node);

/* Sorts the items of a LeaseList into slots[0..n-1] (borrowed; NULL where the slot is missing).
 * Items of other names are ignored. */
void lock_index_list(json_object *list, const char *name, unsigned n, json_object **slots);

/* One lease (NULL: missing) as a LockSlotInfo; slot is its name, index its index in the group.
 * Judged by server_now like lock_slot_state(). Fields it lacks read as absent (0/NULL). */
int lock_slot_info_from_lease(json_object *lease, const char *slot, unsigned index, usec_t server_now,
                              LockSlotInfo *ret);

/* The slots of group name as a LeaseList shows them, ordered by index: every slot below
 * concurrency (MISSING where the list lacks it), then leases of the group at higher indexes
 * (left over from a larger Concurrency=). Items whose names are not slots of the group are ignored.
 * -E2BIG beyond LOCK_LIST_MAX slots. */
int lock_slots_from_list(json_object *list, const char *name, unsigned concurrency, usec_t server_now,
                         LockSlotInfo **ret, size_t *ret_n);
#define LOCK_LIST_MAX 4096U

/* The slot of the group (among the items of a LeaseList, any index) whose holder is identity,
 * or NULL. Returns the lease; ret_slot (may be NULL) gets its name (borrowed from the lease). */
json_object *lock_find_holder(json_object *list, const char *name, const char *identity,
                              const char **ret_slot);
/* The same with the machine check of lock_lease_owner(): the lowest slot that is US; ret_twin
 * (may be NULL) gets the lowest one that is TWIN (borrowed), or NULL. */
json_object *lock_find_own_lease(json_object *list, const char *name, const char *identity,
                                 const char *machine_id, json_object **ret_twin);

/* renewTime + leaseDurationSeconds of a lease, or USEC_INFINITY when it cannot be timed. */
usec_t lock_lease_expiry(json_object *lease);
