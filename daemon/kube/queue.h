/* SPDX-License-Identifier: Apache-2.0 */
/* The queue for the lock: first come, first served, at a cost that does not grow with the fleet.
 *
 * Each node that wants a slot and may take one now (its window open, nothing blocking it) keeps a
 * ticket: a Lease "<Name>-q-<node>" in [Lock] QueueNamespace=, labelled nodereboot.io/queue=<Name>,
 * holderIdentity = the node, acquireTime = when its reboot became required. Every waiting node
 * watches the tickets (events, no requests) and works out its place: the tickets ordered by
 * acquireTime, then name, leaving out nodes that hold a slot. Only the first in line looks at the
 * slots; everyone else stays quiet. With several slots free they go one after the other: the next
 * node is first once the one before it holds its slot. So a released slot costs one list and one
 * write, whatever the number of waiting nodes, and slots go in order.
 *
 * The queue only says who should try; every safety property stays with the lock (writes fenced by
 * resourceVersion, the API server's clock, the takeover rules). A ticket cannot lock anything out:
 * when a slot stays free and the node at the head does not take it within QUEUE_PASS_OVER_USEC
 * (its daemon stopped, its host gone), the next in line deletes that ticket (with the UID and
 * resourceVersion it saw as preconditions) and goes; a live daemon whose ticket was deleted puts
 * it back at its old place. Tickets are never renewed, so waiting costs nothing. When the namespace
 * does not exist or the credential may not write there, the queue is off and every waiting node
 * tries for itself, as before. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "kube-client.h"

typedef struct Queue Queue;

/* lock_name labels the tickets; identity is this node. -EINVAL for empty arguments, -ENAMETOOLONG
 * when the ticket name would not be a valid object name (over 253 characters). */
int queue_new(Queue **ret, KubeClient *client, sd_event *event, const char *namespace, const char *lock_name,
              const char *identity);
Queue *queue_free(Queue *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(Queue *, queue_free);

/* A ticket of ours may exist from before a restart (the daemon stopped while waiting or mid-cycle):
 * the next queue_leave() deletes it even if this process never joined. */
void queue_suspect_ticket(Queue *q);

/* Runs when this node's place may have changed (a ticket came or went, the head was passed over,
 * the queue turned off). Call queue_place() to learn it. May free the Queue. */
typedef void (*QueueChangedHandler)(Queue *q, void *userdata);

/* Takes a ticket dated since (CLOCK_REALTIME: when the reboot became required), or keeps
 * the one we have (re-dated to since, once per join: two hosts that share a node name do not
 * fight over it), and watches the tickets. Joining again while joined only updates the handler
 * (since stays that of the join).
 * Nothing is written before the watch's first list. Failures are retried by the Queue itself; a
 * 403, or a 404 for the namespace, turns the queue off (queue_place() then says QUEUE_OFF) until
 * the next queue_join(); so do failures that cannot pass (TLS, a refused body) at once, and
 * others (5xx, 429, timeouts) that last QUEUE_FAIL_OPEN_USEC: a queue that cannot be joined must
 * not keep a node from its slot. */
int queue_join(Queue *q, usec_t since, QueueChangedHandler changed, void *userdata);
/* Stops watching and deletes our ticket, in the background (retried; done when it is gone). */
void queue_leave(Queue *q);

typedef enum QueueVerdict {
        QUEUE_OFF,              /* no queue: try for a slot as if there were none */
        QUEUE_JOINING,          /* our ticket is not yet written, or the watch has not listed: wait */
        QUEUE_WAITING,          /* others are ahead of us: wait */
        QUEUE_TURN,             /* our turn: try for a slot */
        _QUEUE_VERDICT_MAX,
        _QUEUE_VERDICT_INVALID = -EINVAL,
} QueueVerdict;

typedef struct QueuePlace {
        QueueVerdict verdict;
        unsigned ahead;         /* tickets before ours (WAITING, TURN) */
        unsigned total;         /* tickets in line, ours included */
        const char *reason;     /* QUEUE_OFF: why (borrowed from the Queue, valid until the next call) */
        bool settling;          /* our reboot became required less than QUEUE_SETTLE_USEC ago */
} QueuePlace;

/* Whether holder (a ticket's node) holds a slot now: such tickets are not in line. */
typedef bool (*QueueHoldsSlot)(const char *holder, void *userdata);

/* Our place, given the number of slots the lease watch shows free (UINT_MAX: it cannot tell) and
 * held but expired, and since when it has shown them without a break (lock_watch_live_since()).
 * It is our turn when no one is ahead. Also where a head that leaves a slot untaken is passed
 * over: while we wait with a slot free, a timer runs, and when it fires (the handler is called)
 * and the same head is still first, it is deleted. The timer counts only time during which both
 * watches saw the cluster (an unreachable API server hides what the head did). With a slot
 * expired but none free, the same happens after the period set by queue_set_expired_pass_over()
 * (its holder may be coming back: the head rightly waits). */
QueueVerdict queue_place(Queue *q, unsigned free_slots, unsigned expired_slots, usec_t slots_seen_since,
                         QueueHoldsSlot holds, void *userdata, QueuePlace *ret);
/* Default: never (a head is passed over only for a free slot). */
void queue_set_expired_pass_over(Queue *q, usec_t period);
/* Whether a head that leaves a slot untaken may be passed over (default yes). No while the lock
 * group is paused: every head then rightly waits. */
void queue_set_pass_over(Queue *q, bool allowed);
/* Asked once before a head is passed over (NULL: never asked, the default); the owner answers
 * with queue_pass_over_answer(): go, or not (then it calls queue_set_pass_over(q, false) until it
 * is allowed again). The owner of a paused lock group reads the pause here: nodes far back in line
 * do not otherwise know of it. */
typedef void (*QueuePassOverCheck)(Queue *q, void *userdata);
void queue_set_pass_over_check(Queue *q, QueuePassOverCheck check, void *userdata);
void queue_pass_over_answer(Queue *q, bool go);

const char *queue_verdict_to_string(QueueVerdict v);

/* For noderebootctl status. The path that lists group lock_name's tickets in namespace, newly
 * allocated (NULL on OOM). */
char *queue_list_path(const char *namespace, const char *lock_name);
/* Where identity stands among the tickets of a LeaseList, slot holders (holds) out of line:
 * ret_in_line false when identity has no ticket; ret_head (may be NULL) gets the first in line that
 * is not identity, newly allocated, NULL when none. -EBADMSG when list has no items array. */
typedef struct QueueStanding {
        bool in_line;
        unsigned ahead;
        unsigned total;
        char *head;
} QueueStanding;
int queue_standing_from_list(json_object *list, const char *identity, QueueHoldsSlot holds, void *userdata,
                             QueueStanding *ret);
void queue_standing_done(QueueStanding *s);

/* The label of tickets; its value is the lock's Name=. */
#define QUEUE_LABEL "nodereboot.io/queue"
/* How long a free slot may stay untaken by the head of the queue before the next in line passes
 * it over (one more such period for each further place back). */
#define QUEUE_PASS_OVER_USEC (20 * USEC_PER_SEC)
/* A node goes no sooner than this after its reboot became required, even when first in line: one
 * whose reboot became required a moment earlier may not have written its ticket yet. */
#define QUEUE_SETTLE_USEC (2 * USEC_PER_SEC)
/* How long the ticket may keep failing (API server overloaded or unreachable) before the node
 * tries for a slot without it. Long enough that a brown-out of the API server does not turn a
 * whole fleet into a herd. */
#define QUEUE_FAIL_OPEN_USEC (60 * USEC_PER_SEC)
