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

/* leaseDurationSeconds for a TTL: whole seconds, rounded up, at least 1. */
int64_t lock_ttl_to_seconds(usec_t ttl_usec);

/* Request bodies. The PUT bodies are deep copies of the lease just read, so they carry its
 * metadata.resourceVersion as the write precondition and keep labels and annotations.
 * take: holder = identity, acquireTime = renewTime = now, leaseDurationSeconds from ttl,
 *       leaseTransitions + 1 when the holder changes.
 * renew: renewTime = now, leaseDurationSeconds from ttl.
 * release: holderIdentity removed, renewTime = now (the time it became free).
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

/* renewTime + leaseDurationSeconds of a lease, or USEC_INFINITY when it cannot be timed. */
usec_t lock_lease_expiry(json_object *lease);
