/* SPDX-License-Identifier: Apache-2.0 */
/* The reboot state machine as an exhaustive table: every phase × every event × every combination
 * of the inputs that matter is checked, either against a row below or, when no row matches,
 * against "ignored: state unchanged, no action". */
#include <string.h>

#include "reboot-machine.h"
#include "tests.h"

#define ANY (-1)
#define P(x) REBOOT_PHASE_##x
#define E(x) REBOOT_EVENT_##x
#define A(x) REBOOT_ACTION_##x

typedef struct Row {
        RebootPhase phase;
        RebootEvent event;
        int sentinel, same_boot, force, drained, maxed, rollback_pending;   /* 0, 1 or ANY */
        RebootPhase next;
        RebootAction action;
} Row;

static const Row table[] = {
        /* phase         event              sen  boot force drnd maxd rbp   next            action */
        { P(IDLE),       E(START),           1, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },
        { P(IDLE),       E(SENTINEL),        1, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },
        { P(IDLE),       E(LOCK_ACQUIRED), ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },

        { P(PENDING),    E(START),           0, ANY, ANY, ANY, ANY, ANY,   P(IDLE),         A(NONE) },
        { P(PENDING),    E(START),           1, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },
        { P(PENDING),    E(SENTINEL),        0, ANY, ANY, ANY, ANY, ANY,   P(IDLE),         A(NONE) },
        { P(PENDING),    E(SENTINEL),        1, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },
        { P(PENDING),    E(TICK),          ANY, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },
        { P(PENDING),    E(LOCK_ACQUIRED), ANY, ANY, ANY, ANY, ANY, ANY,   P(LOCKED),       A(READ_NODE) },

        { P(LOCKED),     E(START),           0, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(LOCKED),     E(START),           1, ANY, ANY, ANY, ANY, ANY,   P(LOCKED),       A(READ_NODE) },
        { P(LOCKED),     E(SENTINEL),        0, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(LOCKED),     E(TICK),          ANY, ANY, ANY, ANY, ANY, ANY,   P(LOCKED),       A(READ_NODE) },
        { P(LOCKED),     E(NODE_READ),     ANY, ANY, ANY, ANY, ANY, ANY,   P(DRAINING),     A(DRAIN) },
        { P(LOCKED),     E(PAUSED),        ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(LOCKED),     E(LOCK_LOST),     ANY, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },

        { P(DRAINING),   E(START),           0, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(DRAINING),   E(START),           1, ANY, ANY,   0, ANY, ANY,   P(DRAINING),     A(DRAIN) },
        { P(DRAINING),   E(START),           1, ANY, ANY,   1, ANY, ANY,   P(DRAINING),     A(CHECK_INHIBITORS) },
        { P(DRAINING),   E(SENTINEL),        0, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(DRAINING),   E(DRAINED),       ANY, ANY, ANY,   0, ANY, ANY,   P(DRAINING),     A(CHECK_INHIBITORS) },
        { P(DRAINING),   E(DRAINED),       ANY, ANY, ANY,   1, ANY, ANY,   P(DRAINING),     A(CHECK_INHIBITORS) },
        { P(DRAINING),   E(DRAIN_FAILED),  ANY, ANY,   0, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(DRAINING),   E(DRAIN_FAILED),  ANY, ANY,   1, ANY, ANY, ANY,   P(DRAINING),     A(CHECK_INHIBITORS) },
        { P(DRAINING),   E(REBOOT_ALLOWED),ANY, ANY, ANY,   1, ANY, ANY,   P(REBOOTING),    A(REBOOT) },
        { P(DRAINING),   E(LOCK_LOST),     ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },

        { P(REBOOTING),  E(START),         ANY,   0, ANY, ANY, ANY, ANY,   P(RECOVERING),   A(WAIT_READY) },
        { P(REBOOTING),  E(START),         ANY,   1, ANY, ANY,   0, ANY,   P(REBOOTING),    A(CHECK_INHIBITORS) },
        { P(REBOOTING),  E(START),         ANY,   1, ANY, ANY,   1, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(REBOOTING),  E(REBOOT_ALLOWED),ANY, ANY, ANY, ANY, ANY, ANY,   P(REBOOTING),    A(REBOOT) },
        { P(REBOOTING),  E(REBOOT_REQUESTED),ANY,ANY, ANY, ANY, ANY, ANY,   P(REBOOTING),    A(WAIT_REBOOT) },
        { P(REBOOTING),  E(REBOOT_FAILED), ANY, ANY, ANY, ANY,   0, ANY,   P(REBOOTING),    A(CHECK_INHIBITORS) },
        { P(REBOOTING),  E(REBOOT_FAILED), ANY, ANY, ANY, ANY,   1, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(REBOOTING),  E(LOCK_LOST),     ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },

        { P(RECOVERING), E(START),         ANY, ANY, ANY, ANY, ANY, ANY,   P(RECOVERING),   A(WAIT_READY) },
        { P(RECOVERING), E(NODE_READY),    ANY, ANY, ANY, ANY, ANY, ANY,   P(RECOVERING),   A(RESTORE) },
        /* the slot is dropped (checked below), the node still brought back */
        { P(RECOVERING), E(LOCK_LOST),     ANY, ANY, ANY, ANY, ANY, ANY,   P(RECOVERING),   A(NONE) },
        { P(RECOVERING), E(RESTORED),        0, ANY, ANY, ANY, ANY, ANY,   P(IDLE),         A(NONE) },
        { P(RECOVERING), E(RESTORED),        1, ANY, ANY, ANY, ANY, ANY,   P(PENDING),      A(ACQUIRE) },

        { P(ROLLING_BACK), E(START),       ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(RESTORE) },
        { P(ROLLING_BACK), E(LOCK_LOST),   ANY, ANY, ANY, ANY, ANY, ANY,   P(ROLLING_BACK), A(NONE) },
        { P(ROLLING_BACK), E(RESTORED),      0, ANY, ANY, ANY, ANY, ANY,   P(IDLE),         A(NONE) },
        { P(ROLLING_BACK), E(RESTORED),      1, ANY, ANY, ANY, ANY,   0,   P(IDLE),         A(NONE) },
        { P(ROLLING_BACK), E(RESTORED),      1, ANY, ANY, ANY, ANY,   1,   P(PENDING),      A(ACQUIRE) },
};

static bool matches(int cond, int v) {
        return cond == ANY || cond == v;
}

static const RebootPolicy policy = {
        .max_attempts = 3,
        .force_reboot = false,
        .retry_usec = 3600 * USEC_PER_SEC,
        .reboot_retry_usec = 60 * USEC_PER_SEC,
};

static void make_state(RebootState *s, RebootPhase phase, int drained, int maxed, int rollback_pending) {
        reboot_state_init(s);
        s->phase = phase;
        s->phase_since = 1000;
        if (phase != P(IDLE)) {
                s->pending_since = 900;
                s->reason = strdup("linux-image-amd64");
        }
        if (phase >= P(LOCKED))
                s->lease = strdup("nodereboot-0");
        if (phase >= P(DRAINING)) {
                s->cordoned = true;
                s->drained = drained;
        }
        if (phase == P(REBOOTING) || phase == P(RECOVERING)) {
                strcpy(s->boot_id, "0123456789abcdef0123456789abcdef");
                s->reboot_attempts = maxed ? policy.max_attempts : 1;
        }
        if (phase == P(ROLLING_BACK))
                s->rollback_to = rollback_pending ? P(PENDING) : P(IDLE);
}

TEST(exhaustive_table) {
        unsigned checked = 0, listed = 0;

        for (int phase = 0; phase < _REBOOT_PHASE_MAX; phase++)
        for (int event = 0; event < _REBOOT_EVENT_MAX; event++)
        for (int sen = 0; sen <= 1; sen++)
        for (int boot = 0; boot <= 1; boot++)
        for (int force = 0; force <= 1; force++)
        for (int drained = 0; drained <= 1; drained++)
        for (int maxed = 0; maxed <= 1; maxed++)
        for (int rbp = 0; rbp <= 1; rbp++) {
                RebootState s, n;
                RebootAction action = _REBOOT_ACTION_INVALID;
                RebootPolicy p = policy;
                const Row *row = NULL;
                RebootEventData d = {
                        .sentinel_present = sen,
                        .same_boot = boot,
                        .lease = "nodereboot-1",
                        .boot_id = "fedcba9876543210fedcba9876543210",
                        .message = "something failed",
                        .reason = "libc6",
                };
                int r;

                p.force_reboot = force;
                make_state(&s, phase, drained, maxed, rbp);
                reboot_state_init(&n);

                for (size_t i = 0; i < ELEMENTSOF(table); i++)
                        if (table[i].phase == phase && table[i].event == event &&
                            matches(table[i].sentinel, sen) && matches(table[i].same_boot, boot) &&
                            matches(table[i].force, force) && matches(table[i].drained, drained) &&
                            matches(table[i].maxed, maxed) && matches(table[i].rollback_pending, rbp)) {
                                ASSERT_TRUE(!row); /* rows must not overlap */
                                row = &table[i];
                        }

                r = reboot_machine_step(&s, event, &d, &p, 5000, &n, &action);
                ASSERT_OK(r);

                if (row) {
                        if (n.phase != row->next || action != row->action) {
                                fprintf(stderr, "%s + %s (sentinel=%d same_boot=%d force=%d drained=%d "
                                        "maxed=%d rollback_pending=%d): got %s/%s, expected %s/%s\n",
                                        reboot_phase_to_string(phase), reboot_event_to_string(event),
                                        sen, boot, force, drained, maxed, rbp,
                                        reboot_phase_to_string(n.phase), reboot_action_to_string(action),
                                        reboot_phase_to_string(row->next),
                                        reboot_action_to_string(row->action));
                                abort();
                        }
                        listed++;
                } else {
                        if (r != 0 || action != A(NONE)) {
                                fprintf(stderr, "%s + %s (sentinel=%d same_boot=%d drained=%d maxed=%d) "
                                        "should be ignored, got %s/%s changed=%d\n",
                                        reboot_phase_to_string(phase), reboot_event_to_string(event),
                                        sen, boot, drained, maxed,
                                        reboot_phase_to_string(n.phase), reboot_action_to_string(action), r);
                                abort();
                        }
                }
                /* every phase change is stamped */
                if (n.phase != s.phase)
                        ASSERT_EQ(n.phase_since, 5000);
                /* a lease is held only in the phases that hold one; a lost slot is dropped (it is
                 * not ours to renew or release) and the node still brought back */
                if (n.phase == P(IDLE) || n.phase == P(PENDING))
                        ASSERT_TRUE(!n.lease);
                else if (event == E(LOCK_LOST) && s.phase != P(IDLE) && s.phase != P(PENDING))
                        ASSERT_TRUE(!n.lease);
                else
                        ASSERT_TRUE(n.lease);

                checked++;
                reboot_state_done(&s);
                reboot_state_done(&n);
        }

        fprintf(stderr, "    %u combinations checked, %u against table rows\n", checked, listed);
        ASSERT_EQ(checked, (unsigned) _REBOOT_PHASE_MAX * _REBOOT_EVENT_MAX * 64);
}

/* Helper for the story tests below: one step, asserting the outcome. */
static void step(RebootState *s, RebootEvent e, const RebootEventData *d, const RebootPolicy *p, usec_t now,
                 RebootPhase expect_phase, RebootAction expect_action) {
        RebootState n;
        RebootAction a;

        reboot_state_init(&n);
        ASSERT_OK(reboot_machine_step(s, e, d, p, now, &n, &a));
        if (n.phase != expect_phase || a != expect_action) {
                fprintf(stderr, "%s + %s: got %s/%s, expected %s/%s\n", reboot_phase_to_string(s->phase),
                        reboot_event_to_string(e), reboot_phase_to_string(n.phase), reboot_action_to_string(a),
                        reboot_phase_to_string(expect_phase), reboot_action_to_string(expect_action));
                abort();
        }
        reboot_state_done(s);
        *s = n;
}

TEST(admin_cordon_is_remembered) {
        /* A node an admin cordoned beforehand: the fact is recorded before the cordon and survives
         * to the restore step. */
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .lease = "nodereboot-0", .node_unschedulable = true,
                              .boot_id = "00000000000000000000000000000001" };

        reboot_state_init(&s);
        step(&s, E(SENTINEL), &d, &policy, 1, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, 2, P(LOCKED), A(READ_NODE));
        ASSERT_STREQ(s.lease, "nodereboot-0");
        step(&s, E(NODE_READ), &d, &policy, 3, P(DRAINING), A(DRAIN));
        ASSERT_TRUE(s.cordoned);
        ASSERT_TRUE(s.node_was_unschedulable);
        step(&s, E(DRAINED), &d, &policy, 4, P(DRAINING), A(CHECK_INHIBITORS));
        step(&s, E(REBOOT_ALLOWED), &d, &policy, 5, P(REBOOTING), A(REBOOT));
        ASSERT_STREQ(s.boot_id, "00000000000000000000000000000001");
        ASSERT_EQ(s.reboot_attempts, 1);
        step(&s, E(REBOOT_REQUESTED), &d, &policy, 6, P(REBOOTING), A(WAIT_REBOOT));
        d.same_boot = false;
        step(&s, E(START), &d, &policy, 7, P(RECOVERING), A(WAIT_READY));
        ASSERT_TRUE(s.node_was_unschedulable);
        step(&s, E(NODE_READY), &d, &policy, 8, P(RECOVERING), A(RESTORE));
        d.sentinel_present = false;
        step(&s, E(RESTORED), &d, &policy, 9, P(IDLE), A(NONE));
        ASSERT_TRUE(!s.lease);
        ASSERT_FALSE(s.cordoned);
        reboot_state_done(&s);
}

TEST(statistics_follow_the_cycles) {
        /* Two cycles: one that reboots, one rolled back. The counters survive both, the durations
         * are those of the last cycle, in whole milliseconds. */
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .lease = "nodereboot-0",
                              .boot_id = "00000000000000000000000000000001", .boot_time = 5000 * USEC_PER_SEC };
        usec_t t = 1000 * USEC_PER_SEC;

        reboot_state_init(&s);
        step(&s, E(SENTINEL), &d, &policy, t, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, t + 42 * USEC_PER_SEC + 1500, P(LOCKED), A(READ_NODE));
        ASSERT_EQ(s.stats.last_lock_wait, 42 * USEC_PER_SEC + 1000);
        d.kernel = "6.1.0-13-amd64";
        step(&s, E(NODE_READ), &d, &policy, t + 50 * USEC_PER_SEC, P(DRAINING), A(DRAIN));
        ASSERT_STREQ(s.kernel_before, "6.1.0-13-amd64");
        ASSERT_TRUE(!s.kernel_after);
        step(&s, E(DRAINED), &d, &policy, t + 80 * USEC_PER_SEC, P(DRAINING), A(CHECK_INHIBITORS));
        ASSERT_EQ(s.stats.last_drain, 30 * USEC_PER_SEC);
        /* a second DRAINED (a restart drained again) does not change the first drain's time */
        step(&s, E(DRAINED), &d, &policy, t + 90 * USEC_PER_SEC, P(DRAINING), A(CHECK_INHIBITORS));
        ASSERT_EQ(s.stats.last_drain, 30 * USEC_PER_SEC);
        step(&s, E(REBOOT_ALLOWED), &d, &policy, t + 91 * USEC_PER_SEC, P(REBOOTING), A(REBOOT));
        ASSERT_EQ(s.stats.reboots, 0);
        d.same_boot = false;
        step(&s, E(START), &d, &policy, t + 200 * USEC_PER_SEC, P(RECOVERING), A(WAIT_READY));
        ASSERT_EQ(s.stats.reboots, 1);
        ASSERT_EQ(s.stats.last_reboot, 5000 * USEC_PER_SEC);
        d.kernel = "6.1.0-28-amd64";
        step(&s, E(NODE_READY), &d, &policy, t + 210 * USEC_PER_SEC, P(RECOVERING), A(RESTORE));
        ASSERT_STREQ(s.kernel_before, "6.1.0-13-amd64");
        ASSERT_STREQ(s.kernel_after, "6.1.0-28-amd64");
        /* still required: a second cycle, whose drain fails */
        step(&s, E(RESTORED), &d, &policy, t + 220 * USEC_PER_SEC, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.failed_cycles, 0);
        step(&s, E(LOCK_ACQUIRED), &d, &policy, t + 230 * USEC_PER_SEC, P(LOCKED), A(READ_NODE));
        ASSERT_EQ(s.stats.last_lock_wait, 10 * USEC_PER_SEC);
        step(&s, E(NODE_READ), &d, &policy, t + 231 * USEC_PER_SEC, P(DRAINING), A(DRAIN));
        step(&s, E(DRAIN_FAILED), &d, &policy, t + 300 * USEC_PER_SEC, P(ROLLING_BACK), A(RESTORE));
        ASSERT_EQ(s.stats.failed_cycles, 1);
        ASSERT_EQ(s.failed_cycles, 1);
        step(&s, E(RESTORED), &d, &policy, t + 301 * USEC_PER_SEC, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.reboots, 1);
        ASSERT_EQ(s.stats.failed_cycles, 1);
        ASSERT_EQ(s.stats.last_drain, 30 * USEC_PER_SEC);
        reboot_state_done(&s);
}

TEST(loop_guard) {
        /* Required again 10 min after the machine came up from our reboot (LoopGuardSec=1h):
         * pending, but not before 1 h; a sentinel that comes and goes is not a new loop; after
         * the guard: reset. Still required when the node is back from the next reboots (however
         * long that took): 1 h, then 2 h. */
        RebootPolicy p = policy;
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .reason = "linux-image-amd64" };
        usec_t up = 10000 * USEC_PER_SEC, t = up + 600 * USEC_PER_SEC;

        p.loop_guard_usec = USEC_PER_HOUR;
        reboot_state_init(&s);
        s.stats.reboots = 1;
        s.stats.last_reboot = up;
        s.kernel_before = strdup("6.1.0-13-amd64");
        step(&s, E(SENTINEL), &d, &p, t, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 1);
        ASSERT_EQ(s.retry_after, t + USEC_PER_HOUR);
        ASSERT_EQ(s.stats.loop_guard_until, t + USEC_PER_HOUR);
        ASSERT_TRUE(!s.kernel_before);          /* a new cycle records its own */
        /* it went away and came back: the same loop, the same wait */
        d.sentinel_present = false;
        step(&s, E(SENTINEL), &d, &p, t + 1, P(IDLE), A(NONE));
        d.sentinel_present = true;
        step(&s, E(SENTINEL), &d, &p, t + 2, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 1);
        ASSERT_EQ(s.retry_after, t + USEC_PER_HOUR);
        /* after the guard: an ordinary new requirement */
        d.sentinel_present = false;
        step(&s, E(SENTINEL), &d, &p, t + 3, P(IDLE), A(NONE));
        d.sentinel_present = true;
        step(&s, E(SENTINEL), &d, &p, up + 2 * USEC_PER_HOUR, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 0);
        ASSERT_EQ(s.retry_after, 0);

        /* back from a reboot that took 3 h (a slow kubelet), and still required: a loop */
        reboot_state_done(&s);
        reboot_state_init(&s);
        s.phase = P(RECOVERING);
        s.stats.last_reboot = up;
        s.lease = strdup("nodereboot-0");
        t = up + 3 * USEC_PER_HOUR;
        step(&s, E(RESTORED), &d, &p, t, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 1);
        ASSERT_EQ(s.retry_after, t + USEC_PER_HOUR);
        /* and again after the next reboot: twice as long */
        {
                RebootStats kept = s.stats;

                reboot_state_done(&s);
                s.phase = P(RECOVERING);
                s.stats = kept;
        }
        s.stats.last_reboot = up + 5 * USEC_PER_HOUR;
        t = up + 6 * USEC_PER_HOUR;
        step(&s, E(RESTORED), &d, &p, t, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 2);
        ASSERT_EQ(s.retry_after, t + 2 * USEC_PER_HOUR);

        /* off */
        p.loop_guard_usec = 0;
        reboot_state_done(&s);
        reboot_state_init(&s);
        s.stats.last_reboot = up;
        step(&s, E(SENTINEL), &d, &p, up + 1, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 0);
        ASSERT_EQ(s.retry_after, 0);
        reboot_state_done(&s);
}

TEST(request_is_no_loop_and_pause_gives_the_slot_back) {
        /* An operator's request right after our reboot is on purpose: no loop guard. */
        RebootPolicy p = policy;
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .by_request = true, .reason = "requested" };
        usec_t up = 10000 * USEC_PER_SEC, t = up + 60 * USEC_PER_SEC, since;

        p.loop_guard_usec = USEC_PER_HOUR;
        reboot_state_init(&s);
        s.stats.last_reboot = up;
        step(&s, E(SENTINEL), &d, &p, t, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.stats.loops, 0);
        ASSERT_EQ(s.retry_after, 0);
        since = s.pending_since;

        /* Paused while the slot was being taken: the slot goes back, the node waits at its
         * place in line (pending_since kept), with no back-off and no failure counted. */
        d = (RebootEventData) { .lease = "nodereboot-0", .sentinel_present = true };
        step(&s, E(LOCK_ACQUIRED), &d, &p, t + 1, P(LOCKED), A(READ_NODE));
        step(&s, E(PAUSED), NULL, &p, t + 2, P(ROLLING_BACK), A(RESTORE));
        ASSERT_EQ(s.rollback_to, P(PENDING));
        ASSERT_EQ(s.retry_after, 0);
        ASSERT_EQ(s.failed_cycles, 0);
        ASSERT_FALSE(s.cordoned);
        step(&s, E(RESTORED), &d, &p, t + 3, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.pending_since, since);
        ASSERT_TRUE(!s.lease);
        reboot_state_done(&s);
}

TEST(reboot_that_never_happens_rolls_back) {
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .lease = "nodereboot-0", .same_boot = true,
                              .boot_id = "00000000000000000000000000000001", .message = "Access denied" };
        usec_t now = 100 * USEC_PER_SEC;

        reboot_state_init(&s);
        step(&s, E(SENTINEL), &d, &policy, now, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, now, P(LOCKED), A(READ_NODE));
        step(&s, E(NODE_READ), &d, &policy, now, P(DRAINING), A(DRAIN));
        step(&s, E(DRAINED), &d, &policy, now, P(DRAINING), A(CHECK_INHIBITORS));
        for (unsigned i = 1; i <= policy.max_attempts; i++) {
                step(&s, E(REBOOT_ALLOWED), &d, &policy, now, P(REBOOTING), A(REBOOT));
                ASSERT_EQ(s.reboot_attempts, i);
                if (i < policy.max_attempts) {
                        step(&s, E(REBOOT_FAILED), &d, &policy, now, P(REBOOTING), A(CHECK_INHIBITORS));
                        /* back-off doubles: 60 s, 120 s */
                        ASSERT_EQ(s.retry_after, now + (60 * USEC_PER_SEC << (i - 1)));
                        ASSERT_STREQ(s.last_error, "Access denied");
                }
        }
        /* the last attempt: a restart finds the same boot */
        step(&s, E(START), &d, &policy, now, P(ROLLING_BACK), A(RESTORE));
        ASSERT_EQ(s.rollback_to, P(PENDING));
        ASSERT_EQ(s.retry_after, now + policy.retry_usec);
        ASSERT_EQ(s.failed_cycles, 1);
        ASSERT_TRUE(strstr(s.last_error, "did not restart"));
        step(&s, E(RESTORED), &d, &policy, now, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.reboot_attempts, 0);
        ASSERT_EQ(s.retry_after, now + policy.retry_usec);   /* the back-off survives the rollback */
        ASSERT_TRUE(!s.lease);
        reboot_state_done(&s);
}

TEST(drain_failure_keeps_admin_cordon_and_backs_off) {
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .lease = "nodereboot-0", .message = "timed out" };

        reboot_state_init(&s);
        step(&s, E(SENTINEL), &d, &policy, 1, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, 2, P(LOCKED), A(READ_NODE));
        step(&s, E(NODE_READ), &d, &policy, 3, P(DRAINING), A(DRAIN));
        step(&s, E(DRAIN_FAILED), &d, &policy, 4, P(ROLLING_BACK), A(RESTORE));
        ASSERT_TRUE(s.cordoned);           /* restore must uncordon: we cordoned it */
        ASSERT_FALSE(s.node_was_unschedulable);
        ASSERT_STREQ(s.last_error, "timed out");
        ASSERT_EQ(s.retry_after, 4 + policy.retry_usec);
        reboot_state_done(&s);
}

/* An admin's unlock (or a takeover) while draining: the cycle is given up and the node lets the
 * slot's new holder go first, backing off like any given-up cycle instead of taking it straight
 * back. */
TEST(lock_lost_while_draining_backs_off) {
        RebootState s;
        RebootEventData d = { .sentinel_present = true, .lease = "nodereboot-0" };

        reboot_state_init(&s);
        step(&s, E(SENTINEL), &d, &policy, 1, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, 2, P(LOCKED), A(READ_NODE));
        step(&s, E(NODE_READ), &d, &policy, 3, P(DRAINING), A(DRAIN));
        step(&s, E(LOCK_LOST), &d, &policy, 4, P(ROLLING_BACK), A(RESTORE));
        ASSERT_TRUE(s.cordoned);
        ASSERT_EQ(s.retry_after, 4 + policy.retry_usec);
        ASSERT_STREQ(s.last_error, "lost the lock while draining");
        step(&s, E(RESTORED), &d, &policy, 5, P(PENDING), A(ACQUIRE));
        ASSERT_EQ(s.retry_after, 4 + policy.retry_usec);
        /* the slot taken after the back-off: no wait is left to honour (a clock stepped back an
         * hour would otherwise put it ahead again, with the node drained and the slot held) */
        step(&s, E(LOCK_ACQUIRED), &d, &policy, 4 + policy.retry_usec, P(LOCKED), A(READ_NODE));
        ASSERT_EQ(s.retry_after, 0);
        reboot_state_done(&s);
}

/* An administrator unlocks the slot of a node whose kubelet does not come back: the daemon stops
 * renewing and will not release what is not its own, but still brings its node back. */
TEST(lock_lost_after_the_reboot_drops_the_slot) {
        RebootState s;
        RebootEventData d = { .sentinel_present = false, .same_boot = false };

        make_state(&s, P(RECOVERING), 1, 0, 0);
        step(&s, E(LOCK_LOST), &d, &policy, 10, P(RECOVERING), A(NONE));
        ASSERT_TRUE(!s.lease);
        ASSERT_TRUE(s.cordoned);
        ASSERT_FALSE(reboot_phase_holds_lock(s.phase) && s.lease);
        step(&s, E(NODE_READY), &d, &policy, 11, P(RECOVERING), A(RESTORE));
        step(&s, E(RESTORED), &d, &policy, 12, P(IDLE), A(NONE));
        reboot_state_done(&s);

        make_state(&s, P(ROLLING_BACK), 1, 0, 1);
        step(&s, E(LOCK_LOST), &d, &policy, 10, P(ROLLING_BACK), A(NONE));
        ASSERT_TRUE(!s.lease);
        reboot_state_done(&s);
}

/* The slot is recorded with the machine ID it was taken under, and both are forgotten together. */
TEST(lease_keeps_its_machine_id) {
        RebootState s;
        RebootEventData d = { .sentinel_present = false, .lease = "nodereboot-0",
                              .machine_id = "3d1219c7c4c5404aaa1f6d2a48adfda4" };

        reboot_state_init(&s);
        d.sentinel_present = true;
        step(&s, E(SENTINEL), &d, &policy, 1, P(PENDING), A(ACQUIRE));
        step(&s, E(LOCK_ACQUIRED), &d, &policy, 2, P(LOCKED), A(READ_NODE));
        ASSERT_STREQ(s.lease_machine_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");
        d.sentinel_present = false;
        step(&s, E(SENTINEL), &d, &policy, 3, P(ROLLING_BACK), A(RESTORE));
        ASSERT_STREQ(s.lease_machine_id, "3d1219c7c4c5404aaa1f6d2a48adfda4");   /* released under it */
        step(&s, E(RESTORED), &d, &policy, 4, P(IDLE), A(NONE));
        ASSERT_TRUE(!s.lease && !s.lease_machine_id);
        reboot_state_done(&s);
}

TEST(strings) {
        for (int i = 0; i < _REBOOT_PHASE_MAX; i++)
                ASSERT_EQ(reboot_phase_from_string(reboot_phase_to_string(i)), i);
        ASSERT_EQ(reboot_phase_from_string("bogus"), _REBOOT_PHASE_INVALID);
        ASSERT_EQ(reboot_phase_from_string(NULL), _REBOOT_PHASE_INVALID);
        for (int i = 0; i < _REBOOT_EVENT_MAX; i++)
                ASSERT_TRUE(reboot_event_to_string(i));
        for (int i = 0; i < _REBOOT_ACTION_MAX; i++)
                ASSERT_TRUE(reboot_action_to_string(i));
        ASSERT_TRUE(!reboot_phase_to_string(_REBOOT_PHASE_MAX));
}

int main(void) {
        RUN(exhaustive_table);
        RUN(admin_cordon_is_remembered);
        RUN(lock_lost_while_draining_backs_off);
        RUN(lock_lost_after_the_reboot_drops_the_slot);
        RUN(lease_keeps_its_machine_id);
        RUN(statistics_follow_the_cycles);
        RUN(loop_guard);
        RUN(request_is_no_loop_and_pause_gives_the_slot_back);
        RUN(reboot_that_never_happens_rolls_back);
        RUN(drain_failure_keeps_admin_cordon_and_backs_off);
        RUN(strings);
        return 0;
}
