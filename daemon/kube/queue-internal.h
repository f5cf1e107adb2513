/* SPDX-License-Identifier: Apache-2.0 */
/* The pure decisions of the queue, exposed for tests: ticket names and bodies, the order of
 * tickets, a node's place and turn, when the head is passed over. No I/O, no logging. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "queue.h"
#include "time-util.h"

/* "<lock_name>-q-<identity>", newly allocated; -ENAMETOOLONG beyond 253 characters. */
int queue_ticket_name(const char *lock_name, const char *identity, char **ret);

/* A ticket Lease for POST: labelled QUEUE_LABEL=lock_name, holderIdentity = identity,
 * acquireTime = since. */
int queue_build_ticket(const char *namespace, const char *lock_name, const char *ticket, const char *identity,
                       usec_t since, json_object **ret);
/* A copy of ticket (as read, with its resourceVersion) dated since, for a PUT. */
int queue_build_redate(json_object *ticket, usec_t since, json_object **ret);

/* What the queue keeps of a ticket. */
typedef struct QueueEntry {
        char *name;
        char *holder;                   /* spec.holderIdentity; NULL when absent */
        usec_t since;                   /* spec.acquireTime; USEC_INFINITY when absent or unreadable */
        char *uid;
        char *resource_version;
        bool listed;                    /* ADDED since the last SYNCED */
} QueueEntry;

/* Reads a ticket Lease into e (fields newly allocated). -EINVAL without a name. */
int queue_entry_from_lease(json_object *lease, QueueEntry *e);
void queue_entry_done(QueueEntry *e);

/* The order of tickets: earlier since first (an unreadable one last), then by holder, then by name. */
int queue_entry_compare(const QueueEntry *a, const QueueEntry *b);

/* Whether a ticket is in line: it names a holder that holds no slot now. */
typedef struct QueueLine {
        unsigned ahead;                 /* in line before ours */
        unsigned total;                 /* in line, ours included */
        const QueueEntry *head;         /* the first in line that is not ours; NULL when none */
        const QueueEntry *own;          /* ours; NULL when the tickets lack it */
} QueueLine;
void queue_line_compute(const QueueEntry *entries, size_t n, const char *identity, QueueHoldsSlot holds,
                        void *userdata, QueueLine *ret);

/* Our turn: nobody ahead. Strictly one at a time, even with several slots free: the next in line
 * goes once the one before it holds its slot (one round trip later), so a head whose daemon is slow
 * to run is never overtaken. */
bool queue_is_turn(unsigned ahead);

/* While a slot stays free and it is not our turn: how long after the stall began we pass over the
 * head. Within the first (free slots) places one period; past them each place one more, so that
 * the head is passed over soon, and mostly by a near live node. USEC_INFINITY when nothing is
 * free. */
usec_t queue_pass_over_delay(unsigned ahead, unsigned free_slots, usec_t period);
