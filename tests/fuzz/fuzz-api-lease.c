/* SPDX-License-Identifier: Apache-2.0 */
/* Lease and LeaseList answers as the lock and the queue read them. Input: 8 bytes of the server's
 * clock, then JSON (a LeaseList, or a Lease). Invariants: the slots of a group come ordered by
 * index, every index below the concurrency present; a slot without holder is MISSING or VACANT; a
 * slot is free exactly when no live holder has it; a Lease we take or renew reads back as held by
 * us and not expired; a released one as vacant; the queue's order of tickets is a total order. */
#include <string.h>

#include "fuzz-util.h"
#include "json-util.h"
#include "lock-internal.h"
#include "lock.h"
#include "queue-internal.h"

#define GROUP "nodereboot"
#define TTL_USEC (30 * USEC_PER_MINUTE)

static void check_lease(json_object *lease, usec_t now) {
        _cleanup_json_ json_object *taken = NULL, *renewed = NULL, *released = NULL;
        _cleanup_free_ char *why = NULL;
        LockSlotState state = lock_slot_state(lease, now, NULL);
        const char *holder = lock_lease_holder(lease);

        fuzz_assert(state >= 0 && state < _LOCK_SLOT_STATE_MAX && lock_slot_state_to_string(state));
        /* a holder that is not a string reads as none, yet the slot is held (not free) */
        fuzz_assert(!(holder && state == LOCK_SLOT_VACANT));
        if (state == LOCK_SLOT_HELD || state == LOCK_SLOT_VACANT)
                fuzz_assert(lock_slot_is_free(lease, now, &why) == (state == LOCK_SLOT_VACANT));
        (void) lock_lease_expiry(lease);
        (void) lock_holder_renews_on_time(lease, now);
        (void) lock_lease_label(lease, GROUP);

        if (lock_build_take(lease, "fuzz-node", TTL_USEC, now, &taken) >= 0) {
                fuzz_assert(streq_ptr(lock_lease_holder(taken), "fuzz-node"));
                fuzz_assert(lock_slot_state(taken, now, NULL) == LOCK_SLOT_HELD);
                fuzz_assert(lock_lease_owner(taken, "fuzz-node", NULL) != LOCK_OWNER_OTHER);
                if (lock_build_renew(taken, TTL_USEC, now + USEC_PER_MINUTE, &renewed) >= 0) {
                        fuzz_assert(streq_ptr(lock_lease_holder(renewed), "fuzz-node"));
                        fuzz_assert(lock_slot_state(renewed, now + USEC_PER_MINUTE, NULL) == LOCK_SLOT_HELD);
                        fuzz_assert(lock_lease_expiry(renewed) >= now + USEC_PER_MINUTE);
                }
                if (lock_build_release(taken, now, &released) >= 0)
                        fuzz_assert(lock_slot_state(released, now, NULL) == LOCK_SLOT_VACANT);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_json_ json_object *o = NULL;
        LockSlotInfo *slots = NULL;
        QueueEntry *entries = NULL;
        size_t n = 0, m = 0;
        json_object *items;
        uint64_t raw;
        usec_t now;

        if (size < 8 || size > 256U * 1024U)
                return 0;
        memcpy(&raw, data, 8);
        now = raw % ((usec_t) 4102444800ULL * USEC_PER_SEC);    /* before 2100 */
        if (json_parse((const char *) data + 8, size - 8, &o) < 0)
                return 0;

        items = json_get_member(o, "items");
        if (!json_object_is_type(items, json_type_array)) {
                check_lease(o, now);
                return 0;
        }

        for (unsigned concurrency = 1; concurrency <= 3; concurrency += 2) {
                if (lock_slots_from_list(o, GROUP, concurrency, now, &slots, &n) < 0)
                        continue;
                fuzz_assert(n >= concurrency);
                for (size_t i = 0; i < n; i++) {
                        fuzz_assert(i >= concurrency || slots[i].index == i);
                        fuzz_assert(i == 0 || slots[i].index > slots[i - 1].index);
                        fuzz_assert((slots[i].holder == NULL) ==
                                    (slots[i].state == LOCK_SLOT_MISSING || slots[i].state == LOCK_SLOT_VACANT));
                        fuzz_assert(lock_slot_index(GROUP, slots[i].name) == (int) slots[i].index);
                        fuzz_assert_no_control(slots[i].holder);
                }
                lock_slot_infos_free(slots, n);
        }

        m = json_object_array_length(items);
        if (m > 64)
                m = 64;
        entries = calloc(m, sizeof *entries);
        fuzz_assert(entries);
        for (size_t i = 0; i < m; i++) {
                json_object *lease = json_object_array_get_idx(items, i);
                const char *holder;

                check_lease(lease, now);
                holder = lock_lease_holder(lease);
                if (holder) {
                        const char *slot = NULL;
                        json_object *found = lock_find_holder(o, GROUP, holder, &slot);

                        fuzz_assert(!found || streq_ptr(lock_lease_holder(found), holder));
                }
                if (queue_entry_from_lease(lease, &entries[i]) < 0)
                        entries[i] = (QueueEntry) {};
        }
        for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < m; j++) {
                        if (!entries[i].name || !entries[j].name)
                                continue;
                        int a = queue_entry_compare(&entries[i], &entries[j]);
                        int b = queue_entry_compare(&entries[j], &entries[i]);

                        fuzz_assert((a > 0) == (b < 0) && (a == 0) == (b == 0));
                        if (i == j)
                                fuzz_assert(a == 0);
                        /* transitive: i <= j <= k gives i <= k */
                        for (size_t k = 0; k < MIN(m, (size_t) 16); k++)
                                if (entries[k].name && a <= 0 && queue_entry_compare(&entries[j], &entries[k]) <= 0)
                                        fuzz_assert(queue_entry_compare(&entries[i], &entries[k]) <= 0);
                }
        for (size_t i = 0; i < m; i++)
                queue_entry_done(&entries[i]);
        free(entries);
        return 0;
}
