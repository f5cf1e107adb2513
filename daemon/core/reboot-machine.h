/* SPDX-License-Identifier: Apache-2.0 */
/* The reboot state machine: a pure function from (persisted state, event) to (next state, one
 * action). No I/O. The manager persists the next state before it runs the action (write-ahead),
 * and every action is idempotent, so a crash anywhere is resumed by redoing the current step. */
#pragma once

#include <stdbool.h>

#include "boot-id.h"
#include "time-util.h"

typedef enum RebootPhase {
        REBOOT_PHASE_IDLE,              /* nothing to do */
        REBOOT_PHASE_PENDING,           /* reboot required; waiting for window, blockers, back-off, lock */
        REBOOT_PHASE_LOCKED,            /* holds a lock slot; node not touched yet */
        REBOOT_PHASE_DRAINING,          /* recorded prior unschedulable; cordoning and evicting */
        REBOOT_PHASE_REBOOTING,         /* recorded the boot ID; asked logind to reboot */
        REBOOT_PHASE_RECOVERING,        /* new boot; waiting for Ready, then uncordon and release */
        REBOOT_PHASE_ROLLING_BACK,      /* giving up this cycle: uncordon if ours, release, then
                                         * back to pending (with back-off) or idle */
        _REBOOT_PHASE_MAX,
        _REBOOT_PHASE_INVALID = -EINVAL,
} RebootPhase;

typedef enum RebootEvent {
        REBOOT_EVENT_START,             /* daemon (re)started; data.same_boot, data.sentinel_present */
        REBOOT_EVENT_SENTINEL,          /* sentinel presence changed; data.sentinel_present, data.reason */
        REBOOT_EVENT_TICK,              /* re-evaluate: a timer fired, a lock slot freed, a gate opened */
        REBOOT_EVENT_LOCK_ACQUIRED,     /* data.lease */
        REBOOT_EVENT_LOCK_LOST,         /* our lease is held by someone else now */
        REBOOT_EVENT_NODE_READ,         /* data.node_unschedulable: spec.unschedulable before cordon */
        REBOOT_EVENT_DRAINED,
        REBOOT_EVENT_DRAIN_FAILED,      /* data.message */
        REBOOT_EVENT_REBOOT_ALLOWED,    /* no shutdown block inhibitor; data.boot_id is the current boot */
        REBOOT_EVENT_REBOOT_REQUESTED,  /* logind accepted the request */
        REBOOT_EVENT_REBOOT_FAILED,     /* logind refused, or the machine still runs after the timeout; data.message */
        REBOOT_EVENT_NODE_READY,
        REBOOT_EVENT_RESTORED,          /* uncordoned if ours, marks removed, lease released */
        REBOOT_EVENT_PAUSED,            /* LOCKED: an operator paused reboots meanwhile; give the slot back */
        _REBOOT_EVENT_MAX,
        _REBOOT_EVENT_INVALID = -EINVAL,
} RebootEvent;

typedef enum RebootAction {
        REBOOT_ACTION_NONE,             /* wait for the next event */
        REBOOT_ACTION_ACQUIRE,          /* when window, blockers and back-off allow: take a slot */
        REBOOT_ACTION_READ_NODE,        /* read spec.unschedulable, report NODE_READ */
        REBOOT_ACTION_DRAIN,            /* cordon (idempotent), evict, wait; DRAINED or DRAIN_FAILED */
        REBOOT_ACTION_CHECK_INHIBITORS, /* when back-off allows: REBOOT_ALLOWED, or wait and re-check */
        REBOOT_ACTION_REBOOT,           /* ask logind; REBOOT_REQUESTED or REBOOT_FAILED */
        REBOOT_ACTION_WAIT_REBOOT,      /* arm the reboot timeout; REBOOT_FAILED when it passes */
        REBOOT_ACTION_WAIT_READY,       /* wait for the Node to be Ready; NODE_READY */
        REBOOT_ACTION_RESTORE,          /* uncordon if we cordoned, remove marks, release; RESTORED */
        _REBOOT_ACTION_MAX,
        _REBOOT_ACTION_INVALID = -EINVAL,
} RebootAction;

/* What the cycles so far came to, for the metrics. Kept across cycles and restarts (the daemon
 * restarts at every reboot, so a counter of the process would always read 0 or 1). */
typedef struct RebootStats {
        unsigned reboots;               /* cycles whose reboot happened (a new boot after our request) */
        unsigned failed_cycles;         /* cycles rolled back with an error, ever */
        usec_t last_reboot;             /* CLOCK_REALTIME when the machine came up from the last of them */
        usec_t last_lock_wait;          /* the last wait from "reboot required" to a lock slot taken */
        usec_t last_drain;              /* how long the last drain took (cordon to drained) */
        unsigned loops;                 /* reboots required again within the loop guard, in a row */
        usec_t loop_counted_for;        /* the last_reboot that loops was last raised for */
        usec_t loop_guard_until;        /* CLOCK_REALTIME: the loop guard holds the node until then */
} RebootStats;

typedef struct RebootState {
        RebootPhase phase;
        RebootPhase rollback_to;        /* ROLLING_BACK only: PENDING or IDLE */
        char *lease;                    /* the slot we hold (or held), NULL when none */
        char *lease_machine_id;         /* the machine ID the slot was taken under (it is renewed and
                                         * released under it, even if /etc/machine-id changed since,
                                         * as on stateless images); NULL when unknown */
        bool cordoned;                  /* we may have cordoned the node (DRAINING was entered) */
        bool node_was_unschedulable;    /* spec.unschedulable before we cordoned */
        bool drained;
        char boot_id[BOOT_ID_MAX];      /* boot at the last reboot request, "" when none */
        unsigned reboot_attempts;       /* reboot requests in this cycle */
        unsigned failed_cycles;         /* cycles rolled back since the last success */
        usec_t phase_since;             /* CLOCK_REALTIME */
        usec_t pending_since;
        usec_t retry_after;             /* CLOCK_REALTIME; no new attempt before */
        char *reason;                   /* packages that asked for the reboot */
        char *last_error;
        char *kernel_before;            /* the Node's kernelVersion when the cycle took its slot */
        char *kernel_after;             /* ... when it was back after the reboot (NULL before) */
        RebootStats stats;
} RebootState;

typedef struct RebootEventData {
        bool sentinel_present;
        bool by_request;                /* required only by an operator's request (noderebootctl
                                         * request): on purpose, never a reboot loop */
        bool same_boot;
        bool node_unschedulable;
        const char *lease;
        const char *machine_id;         /* LOCK_ACQUIRED: the machine ID the slot is held under */
        const char *boot_id;
        usec_t boot_time;               /* START: CLOCK_REALTIME when this boot began, 0 unknown */
        const char *reason;
        const char *message;
        const char *kernel;             /* NODE_READ, NODE_READY: status.nodeInfo.kernelVersion */
} RebootEventData;

typedef struct RebootPolicy {
        unsigned max_attempts;          /* reboot requests before rolling back */
        bool force_reboot;              /* reboot even when the drain fails */
        usec_t retry_usec;              /* back-off after a rolled-back cycle */
        usec_t reboot_retry_usec;       /* first back-off between reboot requests, doubled each time */
        usec_t loop_guard_usec;         /* a reboot required again this soon after ours backs off; 0: off */
} RebootPolicy;

void reboot_state_init(RebootState *s);
void reboot_state_done(RebootState *s);
int reboot_state_copy(RebootState *dst, const RebootState *src);

/* Computes the next state into *ret (initialised by the caller with reboot_state_init(), replaced
 * wholesale) and the action to run. Returns 1 when the state changed and must be persisted before
 * the action runs, 0 when it did not, -ENOMEM. */
int reboot_machine_step(const RebootState *s, RebootEvent event, const RebootEventData *data,
                        const RebootPolicy *policy, usec_t now, RebootState *ret, RebootAction *ret_action);

/* True while we may hold a lease: the manager renews it in these phases. */
bool reboot_phase_holds_lock(RebootPhase p);

const char *reboot_phase_to_string(RebootPhase p);
RebootPhase reboot_phase_from_string(const char *s);
const char *reboot_event_to_string(RebootEvent e);
const char *reboot_action_to_string(RebootAction a);
