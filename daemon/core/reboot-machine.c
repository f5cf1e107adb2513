/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <limits.h>
#include <string.h>

#include "reboot-machine.h"
#include "string-util.h"

static const char *const phase_names[_REBOOT_PHASE_MAX] = {
        [REBOOT_PHASE_IDLE] = "idle",
        [REBOOT_PHASE_PENDING] = "pending",
        [REBOOT_PHASE_LOCKED] = "locked",
        [REBOOT_PHASE_DRAINING] = "draining",
        [REBOOT_PHASE_REBOOTING] = "rebooting",
        [REBOOT_PHASE_RECOVERING] = "recovering",
        [REBOOT_PHASE_ROLLING_BACK] = "rolling-back",
};

static const char *const event_names[_REBOOT_EVENT_MAX] = {
        [REBOOT_EVENT_START] = "start",
        [REBOOT_EVENT_SENTINEL] = "sentinel",
        [REBOOT_EVENT_TICK] = "tick",
        [REBOOT_EVENT_LOCK_ACQUIRED] = "lock-acquired",
        [REBOOT_EVENT_LOCK_LOST] = "lock-lost",
        [REBOOT_EVENT_NODE_READ] = "node-read",
        [REBOOT_EVENT_DRAINED] = "drained",
        [REBOOT_EVENT_DRAIN_FAILED] = "drain-failed",
        [REBOOT_EVENT_REBOOT_ALLOWED] = "reboot-allowed",
        [REBOOT_EVENT_REBOOT_REQUESTED] = "reboot-requested",
        [REBOOT_EVENT_REBOOT_FAILED] = "reboot-failed",
        [REBOOT_EVENT_NODE_READY] = "node-ready",
        [REBOOT_EVENT_RESTORED] = "restored",
        [REBOOT_EVENT_PAUSED] = "paused",
};

static const char *const action_names[_REBOOT_ACTION_MAX] = {
        [REBOOT_ACTION_NONE] = "none",
        [REBOOT_ACTION_ACQUIRE] = "acquire",
        [REBOOT_ACTION_READ_NODE] = "read-node",
        [REBOOT_ACTION_DRAIN] = "drain",
        [REBOOT_ACTION_CHECK_INHIBITORS] = "check-inhibitors",
        [REBOOT_ACTION_REBOOT] = "reboot",
        [REBOOT_ACTION_WAIT_REBOOT] = "wait-reboot",
        [REBOOT_ACTION_WAIT_READY] = "wait-ready",
        [REBOOT_ACTION_RESTORE] = "restore",
};

const char *reboot_phase_to_string(RebootPhase p) {
        return p >= 0 && p < _REBOOT_PHASE_MAX ? phase_names[p] : NULL;
}

RebootPhase reboot_phase_from_string(const char *s) {
        if (s)
                for (int i = 0; i < _REBOOT_PHASE_MAX; i++)
                        if (streq(s, phase_names[i]))
                                return (RebootPhase) i;
        return _REBOOT_PHASE_INVALID;
}

const char *reboot_event_to_string(RebootEvent e) {
        return e >= 0 && e < _REBOOT_EVENT_MAX ? event_names[e] : NULL;
}

const char *reboot_action_to_string(RebootAction a) {
        return a >= 0 && a < _REBOOT_ACTION_MAX ? action_names[a] : NULL;
}

bool reboot_phase_holds_lock(RebootPhase p) {
        return p == REBOOT_PHASE_LOCKED || p == REBOOT_PHASE_DRAINING || p == REBOOT_PHASE_REBOOTING ||
                p == REBOOT_PHASE_RECOVERING || p == REBOOT_PHASE_ROLLING_BACK;
}

void reboot_state_init(RebootState *s) {
        *s = (RebootState) {
                .phase = REBOOT_PHASE_IDLE,
                .rollback_to = REBOOT_PHASE_IDLE,
        };
}

void reboot_state_done(RebootState *s) {
        free(s->lease);
        free(s->lease_machine_id);
        free(s->reason);
        free(s->last_error);
        free(s->kernel_before);
        free(s->kernel_after);
        reboot_state_init(s);
}

int reboot_state_copy(RebootState *dst, const RebootState *src) {
        RebootState t = *src;

        t.lease = NULL;
        t.lease_machine_id = NULL;
        t.reason = NULL;
        t.last_error = NULL;
        t.kernel_before = NULL;
        t.kernel_after = NULL;
        if (free_and_strdup(&t.lease, src->lease) < 0 ||
            free_and_strdup(&t.lease_machine_id, src->lease_machine_id) < 0 ||
            free_and_strdup(&t.reason, src->reason) < 0 ||
            free_and_strdup(&t.last_error, src->last_error) < 0 ||
            free_and_strdup(&t.kernel_before, src->kernel_before) < 0 ||
            free_and_strdup(&t.kernel_after, src->kernel_after) < 0) {
                reboot_state_done(&t);
                return -ENOMEM;
        }
        reboot_state_done(dst);
        *dst = t;
        return 0;
}

static bool state_equal(const RebootState *a, const RebootState *b) {
        return a->phase == b->phase &&
                a->rollback_to == b->rollback_to &&
                streq_ptr(a->lease, b->lease) &&
                streq_ptr(a->lease_machine_id, b->lease_machine_id) &&
                a->cordoned == b->cordoned &&
                a->node_was_unschedulable == b->node_was_unschedulable &&
                a->drained == b->drained &&
                streq(a->boot_id, b->boot_id) &&
                a->reboot_attempts == b->reboot_attempts &&
                a->failed_cycles == b->failed_cycles &&
                a->phase_since == b->phase_since &&
                a->pending_since == b->pending_since &&
                a->retry_after == b->retry_after &&
                streq_ptr(a->reason, b->reason) &&
                streq_ptr(a->last_error, b->last_error) &&
                streq_ptr(a->kernel_before, b->kernel_before) &&
                streq_ptr(a->kernel_after, b->kernel_after) &&
                a->stats.reboots == b->stats.reboots &&
                a->stats.failed_cycles == b->stats.failed_cycles &&
                a->stats.last_reboot == b->stats.last_reboot &&
                a->stats.last_lock_wait == b->stats.last_lock_wait &&
                a->stats.last_drain == b->stats.last_drain &&
                a->stats.loops == b->stats.loops &&
                a->stats.loop_counted_for == b->stats.loop_counted_for &&
                a->stats.loop_guard_until == b->stats.loop_guard_until;
}

/* From since to now, in whole milliseconds (as the state file keeps it); 0 when unknown. */
static usec_t duration_ms(usec_t since, usec_t now) {
        if (since == 0 || since == USEC_INFINITY || now <= since)
                return 0;
        return (now - since) / USEC_PER_MSEC * USEC_PER_MSEC;
}

static void enter(RebootState *n, RebootPhase phase, usec_t now) {
        if (n->phase != phase)
                n->phase_since = now;
        n->phase = phase;
}

/* The slot is no longer ours (released, lost or never wanted). */
static void drop_lease(RebootState *n) {
        n->lease = mfree(n->lease);
        n->lease_machine_id = mfree(n->lease_machine_id);
}

/* Records the slot just won, and the machine ID it is held under. */
static int take_lease(RebootState *n, const RebootEventData *d) {
        if (free_and_strdup(&n->lease, d->lease) < 0 ||
            free_and_strdup(&n->lease_machine_id, d->machine_id) < 0)
                return -ENOMEM;
        return 0;
}

/* Forgets everything about the cycle that ended; keeps failed_cycles and last_error for the
 * caller to decide. */
static void end_cycle(RebootState *n) {
        drop_lease(n);
        n->cordoned = false;
        n->node_was_unschedulable = false;
        n->drained = false;
        n->boot_id[0] = 0;
        n->reboot_attempts = 0;
        n->rollback_to = REBOOT_PHASE_IDLE;
}

static int set_string(char **p, const char *v) {
        return free_and_strdup(p, v);
}

/* Undo what this cycle did to the node and the lock, then go to "to". A rollback to pending waits
 * until retry_after. */
static int roll_back(RebootState *n, RebootPhase to, usec_t retry_after, const char *error, usec_t now,
                     RebootAction *action) {
        enter(n, REBOOT_PHASE_ROLLING_BACK, now);
        n->rollback_to = to;
        n->retry_after = retry_after;
        if (error) {
                n->failed_cycles++;
                n->stats.failed_cycles++;
                if (set_string(&n->last_error, error) < 0)
                        return -ENOMEM;
        }
        *action = REBOOT_ACTION_RESTORE;
        return 0;
}

static usec_t reboot_backoff(const RebootPolicy *p, unsigned attempts) {
        usec_t b = p->reboot_retry_usec;

        for (unsigned i = 1; i < attempts && b < p->retry_usec; i++)
                b *= 2;
        return MIN(b, MAX(p->retry_usec, p->reboot_retry_usec));
}

/* The reboot did not happen (logind refused, or the same boot is still running): try again after
 * a back-off, or give the cycle up once the attempts are used up. */
static int reboot_did_not_happen(RebootState *n, const RebootPolicy *p, const char *message, usec_t now,
                                 RebootAction *action) {
        _cleanup_free_ char *e = NULL;

        if (n->reboot_attempts >= p->max_attempts) {
                e = strdup_printf("reboot requested %u times but the machine did not restart%s%s",
                                  n->reboot_attempts, message ? ": " : "", strempty(message));
                if (!e)
                        return -ENOMEM;
                return roll_back(n, REBOOT_PHASE_PENDING, now + p->retry_usec, e, now, action);
        }

        if (message && set_string(&n->last_error, message) < 0)
                return -ENOMEM;
        n->retry_after = now + reboot_backoff(p, n->reboot_attempts);
        *action = REBOOT_ACTION_CHECK_INHIBITORS;
        return 0;
}

/* A reboot required again within LoopGuardSec of the last one we did (the machine came up
 * then), or still required when the node is back from it: the update did not take (the new
 * kernel was not booted, a package asks again after every boot). Wait exponentially longer each
 * time in a row (the guard's time, then twice that, up to 64 times) instead of rebooting in a
 * loop; counted once per reboot of ours (a sentinel that comes and goes is no new loop), and a
 * requirement after the guard resets the count. Also a new cycle: the kernels are the next
 * cycle's to record. */
static void guard_loop(RebootState *n, const RebootPolicy *p, usec_t now, bool still_required, bool by_request) {
        bool within;

        n->kernel_before = mfree(n->kernel_before);
        n->kernel_after = mfree(n->kernel_after);
        if (by_request)
                return;         /* on purpose: neither a loop nor the end of one */
        within = n->stats.last_reboot > 0 && n->stats.last_reboot != USEC_INFINITY &&
                (still_required || (now >= n->stats.last_reboot && now - n->stats.last_reboot < p->loop_guard_usec));
        if (p->loop_guard_usec == 0 || !within) {
                n->stats.loops = 0;
                return;
        }
        if (n->stats.loop_counted_for != n->stats.last_reboot) {
                if (n->stats.loops < UINT_MAX)
                        n->stats.loops++;
                n->stats.loop_counted_for = n->stats.last_reboot;
                n->stats.loop_guard_until = usec_add(now, p->loop_guard_usec << MIN(n->stats.loops - 1, 6U));
        }
        n->retry_after = MAX(n->retry_after, n->stats.loop_guard_until);
}

static int step_idle(RebootState *n, RebootEvent ev, const RebootEventData *d, const RebootPolicy *p, usec_t now,
                     RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
        case REBOOT_EVENT_SENTINEL:
                if (!d->sentinel_present)
                        return 0;
                enter(n, REBOOT_PHASE_PENDING, now);
                n->pending_since = now;
                if (set_string(&n->reason, d->reason) < 0)
                        return -ENOMEM;
                guard_loop(n, p, now, false, d->by_request);
                *action = REBOOT_ACTION_ACQUIRE;
                return 0;

        case REBOOT_EVENT_LOCK_ACQUIRED:
                /* A late answer to an acquire that is no longer wanted: give the slot back. */
                if (take_lease(n, d) < 0)
                        return -ENOMEM;
                return roll_back(n, REBOOT_PHASE_IDLE, 0, NULL, now, action);

        default:
                return 0;
        }
}

static int step_pending(RebootState *n, RebootEvent ev, const RebootEventData *d, usec_t now,
                        RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
        case REBOOT_EVENT_SENTINEL:
                if (!d->sentinel_present) {
                        enter(n, REBOOT_PHASE_IDLE, now);
                        n->reason = mfree(n->reason);
                        n->pending_since = 0;
                        n->retry_after = 0;
                        return 0;
                }
                if (ev == REBOOT_EVENT_SENTINEL && d->reason && set_string(&n->reason, d->reason) < 0)
                        return -ENOMEM;
                /* Only an operator's request left (the packages' sentinel went): no loop to stop. */
                if (d->by_request && n->retry_after > 0 && n->retry_after == n->stats.loop_guard_until)
                        n->retry_after = 0;
                *action = REBOOT_ACTION_ACQUIRE;
                return 0;

        case REBOOT_EVENT_TICK:
                *action = REBOOT_ACTION_ACQUIRE;
                return 0;

        case REBOOT_EVENT_LOCK_ACQUIRED:
                n->stats.last_lock_wait = duration_ms(n->pending_since, now);
                enter(n, REBOOT_PHASE_LOCKED, now);
                /* The wait before taking the slot is over: left set, a wall clock stepped back
                 * would make it look ahead again and hold the drained node and its slot. */
                n->retry_after = 0;
                if (take_lease(n, d) < 0)
                        return -ENOMEM;
                *action = REBOOT_ACTION_READ_NODE;
                return 0;

        default:
                return 0;
        }
}

static int step_locked(RebootState *n, RebootEvent ev, const RebootEventData *d, usec_t now,
                       RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
        case REBOOT_EVENT_SENTINEL:
                if (!d->sentinel_present)
                        return roll_back(n, REBOOT_PHASE_IDLE, 0, NULL, now, action);
                if (ev == REBOOT_EVENT_START)
                        *action = REBOOT_ACTION_READ_NODE;
                return 0;

        case REBOOT_EVENT_TICK:
                *action = REBOOT_ACTION_READ_NODE;
                return 0;

        case REBOOT_EVENT_NODE_READ:
                /* Write-ahead: whether the node was already unschedulable is on disk before the
                 * cordon, so the uncordon after the reboot never undoes an admin's cordon. */
                enter(n, REBOOT_PHASE_DRAINING, now);
                n->cordoned = true;
                n->node_was_unschedulable = d->node_unschedulable;
                if (set_string(&n->kernel_before, d->kernel) < 0)
                        return -ENOMEM;
                n->kernel_after = mfree(n->kernel_after);
                n->drained = false;
                *action = REBOOT_ACTION_DRAIN;
                return 0;

        case REBOOT_EVENT_LOCK_LOST:
                enter(n, REBOOT_PHASE_PENDING, now);
                drop_lease(n);
                *action = REBOOT_ACTION_ACQUIRE;
                return 0;

        case REBOOT_EVENT_PAUSED:
                /* Paused between the read before the slot and now (a slow API server): the Node is
                 * untouched; the slot goes back and the node waits at its place, no back-off. */
                return roll_back(n, REBOOT_PHASE_PENDING, 0, NULL, now, action);

        default:
                return 0;
        }
}

static int step_draining(RebootState *n, RebootEvent ev, const RebootEventData *d, const RebootPolicy *p,
                         usec_t now, RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
        case REBOOT_EVENT_SENTINEL:
                if (!d->sentinel_present)
                        return roll_back(n, REBOOT_PHASE_IDLE, 0, NULL, now, action);
                if (ev == REBOOT_EVENT_START)
                        *action = n->drained ? REBOOT_ACTION_CHECK_INHIBITORS : REBOOT_ACTION_DRAIN;
                return 0;

        case REBOOT_EVENT_DRAINED:
                if (!n->drained)
                        n->stats.last_drain = duration_ms(n->phase_since, now);
                n->drained = true;
                *action = REBOOT_ACTION_CHECK_INHIBITORS;
                return 0;

        case REBOOT_EVENT_DRAIN_FAILED:
                if (p->force_reboot) {
                        n->drained = true;
                        if (set_string(&n->last_error, d->message) < 0)
                                return -ENOMEM;
                        *action = REBOOT_ACTION_CHECK_INHIBITORS;
                        return 0;
                }
                return roll_back(n, REBOOT_PHASE_PENDING, now + p->retry_usec,
                                 d->message ?: "drain failed", now, action);

        case REBOOT_EVENT_REBOOT_ALLOWED:
                if (!n->drained)
                        return 0;
                enter(n, REBOOT_PHASE_REBOOTING, now);
                snprintf(n->boot_id, sizeof n->boot_id, "%s", strempty(d->boot_id));
                n->reboot_attempts++;
                *action = REBOOT_ACTION_REBOOT;
                return 0;

        case REBOOT_EVENT_LOCK_LOST:
                /* Whoever took the slot (or the admin who freed it) goes first: back off like any given-up cycle. */
                drop_lease(n);                  /* not ours to release */
                return roll_back(n, REBOOT_PHASE_PENDING, now + p->retry_usec, "lost the lock while draining", now,
                                 action);

        default:
                return 0;
        }
}

static int step_rebooting(RebootState *n, RebootEvent ev, const RebootEventData *d, const RebootPolicy *p,
                          usec_t now, RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
                if (!d->same_boot) {
                        n->stats.reboots++;
                        n->stats.last_reboot = d->boot_time > 0 ? d->boot_time : now;
                        enter(n, REBOOT_PHASE_RECOVERING, now);
                        *action = REBOOT_ACTION_WAIT_READY;
                        return 0;
                }
                return reboot_did_not_happen(n, p, "still the same boot after restart", now, action);

        case REBOOT_EVENT_REBOOT_ALLOWED:
                snprintf(n->boot_id, sizeof n->boot_id, "%s", strempty(d->boot_id));
                n->reboot_attempts++;
                *action = REBOOT_ACTION_REBOOT;
                return 0;

        case REBOOT_EVENT_REBOOT_REQUESTED:
                *action = REBOOT_ACTION_WAIT_REBOOT;
                return 0;

        case REBOOT_EVENT_REBOOT_FAILED:
                return reboot_did_not_happen(n, p, d->message, now, action);

        case REBOOT_EVENT_LOCK_LOST:
                /* Only reported before a reboot request: without the lock we must not go down. */
                drop_lease(n);                  /* not ours to release */
                return roll_back(n, REBOOT_PHASE_PENDING, now + p->retry_usec, "lost the lock before rebooting", now,
                                 action);

        default:
                return 0;
        }
}

static int step_recovering(RebootState *n, RebootEvent ev, const RebootEventData *d, const RebootPolicy *p, usec_t now,
                           RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
                *action = REBOOT_ACTION_WAIT_READY;
                return 0;

        case REBOOT_EVENT_NODE_READY:
                if (d->kernel && set_string(&n->kernel_after, d->kernel) < 0)
                        return -ENOMEM;
                *action = REBOOT_ACTION_RESTORE;
                return 0;

        case REBOOT_EVENT_LOCK_LOST:
                /* An administrator freed the slot (the kubelet never came back, say), or it was
                 * taken: the node is still ours to bring back, the slot no longer ours to renew or
                 * release. */
                drop_lease(n);
                return 0;

        case REBOOT_EVENT_RESTORED:
                end_cycle(n);
                n->failed_cycles = 0;
                n->last_error = mfree(n->last_error);
                n->retry_after = 0;
                if (d->sentinel_present) {
                        /* Still (or again) required after the reboot: a new cycle. */
                        enter(n, REBOOT_PHASE_PENDING, now);
                        n->pending_since = now;
                        if (d->reason && set_string(&n->reason, d->reason) < 0)
                                return -ENOMEM;
                        guard_loop(n, p, now, true, d->by_request);
                        *action = REBOOT_ACTION_ACQUIRE;
                } else {
                        enter(n, REBOOT_PHASE_IDLE, now);
                        n->pending_since = 0;
                        n->reason = mfree(n->reason);
                }
                return 0;

        default:
                return 0;
        }
}

static int step_rolling_back(RebootState *n, RebootEvent ev, const RebootEventData *d, usec_t now,
                             RebootAction *action) {
        switch (ev) {
        case REBOOT_EVENT_START:
                *action = REBOOT_ACTION_RESTORE;
                return 0;

        case REBOOT_EVENT_LOCK_LOST:
                drop_lease(n);                  /* nothing left to release */
                return 0;

        case REBOOT_EVENT_RESTORED: {
                RebootPhase to = n->rollback_to == REBOOT_PHASE_PENDING && d->sentinel_present ?
                        REBOOT_PHASE_PENDING : REBOOT_PHASE_IDLE;

                end_cycle(n);
                enter(n, to, now);
                if (to == REBOOT_PHASE_PENDING)
                        *action = REBOOT_ACTION_ACQUIRE;
                else {
                        n->pending_since = 0;
                        n->retry_after = 0;
                        n->reason = mfree(n->reason);
                }
                return 0;
        }

        default:
                return 0;
        }
}

int reboot_machine_step(const RebootState *s, RebootEvent event, const RebootEventData *data,
                        const RebootPolicy *policy, usec_t now, RebootState *ret, RebootAction *ret_action) {
        static const RebootEventData empty = {};
        RebootAction action = REBOOT_ACTION_NONE;
        RebootState n;
        int r;

        if (!data)
                data = &empty;

        reboot_state_init(&n);
        r = reboot_state_copy(&n, s);
        if (r < 0)
                return r;

        switch (s->phase) {
        case REBOOT_PHASE_IDLE:
                r = step_idle(&n, event, data, policy, now, &action);
                break;
        case REBOOT_PHASE_PENDING:
                r = step_pending(&n, event, data, now, &action);
                break;
        case REBOOT_PHASE_LOCKED:
                r = step_locked(&n, event, data, now, &action);
                break;
        case REBOOT_PHASE_DRAINING:
                r = step_draining(&n, event, data, policy, now, &action);
                break;
        case REBOOT_PHASE_REBOOTING:
                r = step_rebooting(&n, event, data, policy, now, &action);
                break;
        case REBOOT_PHASE_RECOVERING:
                r = step_recovering(&n, event, data, policy, now, &action);
                break;
        case REBOOT_PHASE_ROLLING_BACK:
                r = step_rolling_back(&n, event, data, now, &action);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0) {
                reboot_state_done(&n);
                return r;
        }

        r = !state_equal(s, &n);
        reboot_state_done(ret);
        *ret = n;
        *ret_action = action;
        return r;
}
