/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-id128.h>

#include <limits.h>
#include <regex.h>

#include "build-config.h"
#include "blockers.h"
#include "boot-id.h"
#include "drain.h"
#include "fileio.h"
#include "http-client.h"
#include "json-util.h"
#include "kube-client.h"
#include "kubeconfig.h"
#include "lock.h"
#include "queue.h"
#include "log.h"
#include "logind.h"
#include "manager.h"
#include "metrics-exporter.h"
#include "metrics-server.h"
#include "metrics-values.h"
#include "node.h"
#include "notifier.h"
#include "package-lock.h"
#include "prometheus-alerts.h"
#include "parse-util.h"
#include "pause.h"
#include "proxy.h"
#include "published-status.h"
#include "reboot-machine.h"
#include "reboot-request.h"
#include "regex-util.h"
#include "recovery-gate.h"
#include "sentinel.h"
#include "sentinel-command.h"
#include "state-file.h"
#include "string-util.h"
#include "window.h"

#define ACTION_BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define ACTION_BACKOFF_MAX_USEC (30 * USEC_PER_SEC)
#define REBOOT_RETRY_USEC (10 * USEC_PER_SEC)
#define INHIBITOR_RECHECK_USEC (10 * USEC_PER_SEC)
#define READY_RECHECK_USEC (2 * USEC_PER_SEC)
#define KUBELET_LATE_USEC (10 * USEC_PER_MINUTE)
#define KUBECONFIG_SETTLE_USEC (2 * USEC_PER_SEC)
#define KUBECONFIG_RETRY_USEC (5 * USEC_PER_SEC)
#define LOCK_KICK_JITTER_USEC (100 * USEC_PER_MSEC)
/* How often the package manager's lock is looked at, only while we wait for it: the cycle goes on
 * within this (plus one API call) of the release. */
#define PACKAGE_LOCK_POLL_USEC (500 * USEC_PER_MSEC)
/* A read that found no pause counts for the attempts to take a slot within this (a release wakes a
 * waiting node several times in a row). */
#define PAUSE_CLEAR_VALID_USEC (1 * USEC_PER_SEC)
/* How often a node held back by Prometheus alerts (or an unreachable Prometheus) asks again. */
#define ALERTS_RECHECK_USEC (30 * USEC_PER_SEC)
/* How long a drained node waits for Prometheus before it gives the cycle up. */
#define ALERTS_DRAINED_WAIT_USEC (10 * USEC_PER_MINUTE)
/* The clock of the lock's local deadline: it runs on while the machine is suspended (or the VM
 * paused), as the lease's expiry on the API server does. */
#define HOLD_CLOCK CLOCK_BOOTTIME

typedef enum RestoreStep {
        RESTORE_UNCORDON,
        RESTORE_MARKS,
        RESTORE_RELEASE_DELAY,
        RESTORE_RELEASE,
        RESTORE_DONE,
} RestoreStep;

struct Manager {
        sd_event *event;
        Config *config;
        char *state_dir;

        Kubeconfig *kubeconfig;
        KubeClient *client;
        Logind *logind;
        Sentinel *sentinel;
        Sentinel *kubeconfig_watch;     /* until the kubeconfig exists (a node not joined yet) */
        sd_event_source *kubeconfig_retry;      /* it exists but cannot be used yet */
        Lock *lock;
        Queue *queue;                   /* NULL: [Lock] Queue=no, or no ticket name fits */
        Window *window;
        Drain *drain;
        BlockersCheck *blockers;
        bool blockers_clear;            /* the last check found nothing; consumed by the next acquire */
        bool blocked_by_pods;           /* the last check found a blocker */
        HttpClient *http;               /* NULL without [Blockers] PrometheusURL= */
        regex_t alert_regex;            /* AlertFilterRegex=, when alert_regex_set */
        bool alert_regex_set;
        AlertsCheck *alerts;            /* the check in flight */
        bool alerts_clear;              /* the last check found nothing; consumed by the next step */
        bool blocked_by_alerts;
        usec_t alerts_drained_since;    /* CLOCK_MONOTONIC: drained, held by Prometheus since */
        char *alerts_posted;            /* what the last RebootBlockedByAlerts Event said */
        bool taint_set;                 /* we set the PreferNoSchedule taint while waiting */
        bool package_manager_busy;      /* the last look found a package manager lock held */
        bool package_lock_warned;       /* a lock file that cannot be checked was logged */
        bool sentinel_seen;             /* the handler last said "present" */
        SentinelCommand *command;       /* [Sentinel] Command=, NULL without one */
        bool command_known;             /* it answered "required" or "not required" once */
        bool command_required;          /* its last such answer */
        char *command_error;            /* why its last run failed, NULL when it did not */
        Sentinel *request_watch;        /* <state dir>/request: noderebootctl request */
        bool request_seen;              /* a request of this boot is there */
        bool request_ignores_window;    /* ... made with --ignore-window */
        char *request_reason;           /* "requested" or "requested: <text>" */
        char *published;                /* the nodereboot.io/status last written to our Node */
        char *publishing;               /* ... being written */
        char *marks_status;             /* ... being written with the cycle's marks (one patch) */
        bool published_ahead;           /* the removal of the marks wrote the idle status already */
        bool restore_combined;          /* the uncordon in flight removes the marks too */
        bool restore_plain;             /* ... was refused: uncordon alone, then the marks */
        bool restore_labeled;           /* [Marks] PostRebootLabels= were sent in this restore */
        bool drain_marks_noted;         /* the drain's cordon went without our marks */
        sd_event_source *publish_timer; /* a failed write is tried again */
        unsigned publish_failures;      /* in a row, for the back-off */
        char *publish_refused;          /* the status the API server refused (403, 422): not again */
        sd_event_source *publish_defer; /* the changes of one turn of the loop: one write */
        PauseWatch *pause_watch;        /* while paused (noderebootctl pause): shows the resume at once */
        bool pause_busy;                /* the read before a slot is taken is under way */
        bool pause_recheck_busy;        /* the read again in LOCKED is under way */
        bool pause_poll_only;           /* the pause cannot be watched (403 on list): read every 30 s */
        bool pause_watch_failing;       /* the watch reported an error since it last listed */
        bool pause_rechecked;           /* LOCKED: read again, uncached, before the Node is touched */
        BlockersCheck *gate_preflight;  /* does [Recovery] WaitForPodsSelector= match a pod here? */
        bool gate_preflight_ok;         /* ... it did, in this pending period */
        bool gate_preflight_warned;
        usec_t pause_clear_at;          /* CLOCK_MONOTONIC: the last read found nothing paused */
        char *pause_said;               /* the pause the last RebootPaused Event was posted for */

        RebootState state;
        RebootPolicy policy;
        char boot_id[BOOT_ID_MAX];
        usec_t boot_time;               /* CLOCK_REALTIME */
        char machine_id[SD_ID128_STRING_MAX];   /* /etc/machine-id now; "" when unreadable */
        char *lock_machine_id;          /* what the Lock checks and writes: ours, or the one the
                                         * held slot was taken under; NULL: nothing */
        bool state_was_corrupt;

        RebootAction action;            /* the action being carried out, NONE while waiting for events */
        unsigned action_failures;       /* consecutive failures of that action, for the back-off */
        sd_event_source *action_timer;  /* re-runs the action (back-off, waits) */
        RestoreStep restore_step;
        char *restore_refusal;          /* the API server's message when it refused our uncordon */
        usec_t reboot_deadline;         /* CLOCK_MONOTONIC: logind accepted, the machine must be gone by then */
        usec_t drained_at;              /* CLOCK_MONOTONIC, for [Reboot] DelaySec= */
        ElapsedClock phase_clock;       /* the time since state.phase_since */
        usec_t retry_anchor_for;        /* the retry_after that retry_at is for */
        usec_t retry_at;                /* CLOCK_MONOTONIC: retry_after, moved to that clock */
        usec_t drain_deadline;          /* CLOCK_MONOTONIC, of the drain under way (kept across pauses);
                                         * 0 before it started, USEC_INFINITY for none */

        /* Operations in flight; only their handlers clear these, so one never runs twice at once. */
        bool lock_busy;
        bool lock_again;                /* a slot changed while an acquire was in flight */
        bool node_busy;
        bool logind_busy;
        bool renew_busy;
        usec_t renew_started;           /* HOLD_CLOCK, of the renewal in flight */
        usec_t acquire_started;         /* HOLD_CLOCK, of the acquire in flight */

        /* Step-down: the slot is ours until hold_deadline (HOLD_CLOCK; 0: not proven since we
         * started), the last successful write of it plus the TTL minus a margin. Past it, another
         * node may take the slot by the rules of the lock: we evict nothing and never reboot until
         * a renewal succeeds again. */
        usec_t hold_deadline;
        sd_event_source *hold_timer;
        bool evictions_paused;
        bool kubelet_late_warned;       /* the KubeletNotBack Event of this boot was posted */
        RecoveryGate *recovery_gate;    /* [Recovery] WaitForPodsSelector=, once the Node is Ready */
        bool recovery_warned;           /* its RecoveryTimedOut Event was posted */
        char *held_watched;             /* the slot lock_watch_held() watches, NULL when none */
        char *lost_slot;                /* a slot we learnt is no longer ours: never watched again */
        char *renew_slot;               /* the slot the renewal in flight is for */

        sd_event_source *renew_timer;
        sd_event_source *recheck_timer; /* pending: safety net besides the lease watch */
        sd_event_source *kick_timer;    /* pending: a jittered re-try after a slot freed */
        bool lock_watching;
        QueueVerdict queue_verdict;     /* what the queue said last */
        unsigned queue_ahead;           /* how many were ahead of us when we last looked */
        usec_t queue_moved_at;          /* CLOCK_MONOTONIC: when fewer were ahead than before */
        sd_event_source *follow_timer;  /* the line stood still: follow the slots anyway */

        char *waiting;                  /* what the current step waits for, for STATUS= */
        bool blocked[_METRICS_BLOCK_MAX];       /* why, when it is something that holds the reboot */
        char *status;                   /* last STATUS= sent */
        MetricsExporter *metrics;       /* NULL: [Metrics] has neither a textfile nor an endpoint */
        Notifier *notifier;             /* NULL: [Notify] has no URL */
        sd_event_source *blocked_timer; /* pending: [Notify] BlockedTooLongSec= */
        usec_t blocked_notified_for;    /* the pending_since blocked-too-long was sent for */
        sd_event_source *stop_timer;    /* stopping: notifications still being delivered */
        bool stopping;                  /* SIGTERM came: no more state changes */
        usec_t stop_deadline;
};

static void manager_run_action(Manager *m);
static int manager_dispatch(Manager *m, RebootEvent event, const RebootEventData *data);
static void manager_set_taint(Manager *m, bool present);
static void on_best_effort_done(KubeClient *c, int error, const KubeResponse *response, void *userdata);

/* For the crash tests only: $NODEREBOOT_TEST_CRASH_AT names a point ("saved:draining",
 * "lock-acquired", "reboot-requested", "uncordoned", "released") where the daemon kills itself
 * with SIGKILL, exactly as a power cut or OOM kill would. */
static void crash_point(const char *point) {
        const char *want = getenv("NODEREBOOT_TEST_CRASH_AT");

        if (want && streq(want, point)) {
                log_notice("Crash point %s reached, killing ourselves (NODEREBOOT_TEST_CRASH_AT).", point);
                (void) raise(SIGKILL);
        }
}

static usec_t now_realtime(void) {
        return now_usec(CLOCK_REALTIME);
}

static usec_t random_jitter(usec_t max) {
        uint64_t r = 0;

        if (max == 0)
                return 0;
        (void) getrandom(&r, sizeof r, GRND_NONBLOCK);
        return r % max;
}

static const char *format_clock(char *buf, size_t size, usec_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (t == 0 || t == USEC_INFINITY || !gmtime_r(&s, &tm))
                snprintf(buf, size, "never");
        else
                strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm);
        return buf;
}

/* ---- status ---------------------------------------------------------------------------- */

static bool manager_reboot_required(Manager *m);
static bool manager_required_by_request_only(Manager *m);

/* Whether the wait of a pending node is the loop guard's (not RetrySec='s after a failure). */
static bool manager_loop_guard_holds(Manager *m) {
        return m->state.phase == REBOOT_PHASE_PENDING && m->state.stats.loops > 0 &&
                m->state.retry_after > 0 && m->state.retry_after == m->state.stats.loop_guard_until &&
                now_realtime() < m->state.stats.loop_guard_until;
}

static void manager_update_metrics(Manager *m) {
        MetricsValues v;

        if (!m->metrics)
                return;
        metrics_values_from_state(&v, &m->state, manager_reboot_required(m), m->blocked, m->config->node_name,
                                  m->config->metrics_kured_compatible);
        v.command_configured = m->command;
        v.command_failed = m->command_error;
        v.reboot_loops = manager_loop_guard_holds(m) ? m->state.stats.loops : 0;
        v.notify_configured = m->notifier;
        v.notifications_failed = notifier_failures(m->notifier);
        metrics_exporter_update(m->metrics, &v);
}

/* ---- what noderebootctl list reads: nodereboot.io/status on our Node (published-status.h) ---- */

static void manager_publish_status(Manager *m);

static int on_publish_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->publish_timer = sd_event_source_disable_unref(m->publish_timer);
        manager_publish_status(m);
        return 0;
}

static void on_status_published(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Manager *m = userdata;

        if ((error == -EACCES && response->status != 401) || error == -EINVAL || error == -EPROTO) {
                /* Refused (an admission policy older than this daemon, RBAC): the operator's to
                 * fix, said once; this status is not sent again, the next change is. */
                const char *why = node_refusal(response);

                if (!m->publish_refused)
                        log_warning("The API server refused the status annotation %s on Node %s%s%s; noderebootctl "
                                    "list will not show this node (apply this version's packaging/kubernetes/"
                                    "admission-policy.yaml and rbac.yaml).", PUBLISHED_STATUS_ANNOTATION,
                                    m->config->node_name, why ? ": " : "", strempty(why));
                free(m->publish_refused);
                m->publish_refused = TAKE_PTR(m->publishing);
                m->published = mfree(m->published);
                manager_publish_status(m);      /* a change while the refused write was under way */
                return;
        }
        if (error < 0) {
                /* Best effort: the cycle never waits for it. What the Node shows is unknown now; the
                 * next change, or the timer (10 s doubling to 10 min), writes it again. */
                usec_t delay = MIN(10 * USEC_PER_SEC << MIN(m->publish_failures, 6U), 10 * USEC_PER_MINUTE);

                m->publish_failures++;
                log_debug_errno(error, "Failed to publish the status on Node %s, trying again: %m",
                                m->config->node_name);
                m->publishing = mfree(m->publishing);
                m->published = mfree(m->published);
                if (!m->publish_timer &&
                    sd_event_add_time_relative(m->event, &m->publish_timer, CLOCK_MONOTONIC, delay,
                                               USEC_PER_SEC, on_publish_timer, m) < 0)
                        log_debug("Failed to arm the publish timer.");
                return;
        }
        if (m->publish_refused)
                log_info("The status annotation on Node %s is accepted again.", m->config->node_name);
        m->publish_failures = 0;
        m->publish_refused = mfree(m->publish_refused);
        free(m->published);
        m->published = TAKE_PTR(m->publishing);
        manager_publish_status(m);      /* a change while the write was under way */
}

static void manager_publish_status(Manager *m) {
        _cleanup_free_ char *s = NULL;
        const char *blocked = NULL;
        int r;

        /* LOCKED lasts until the Node is read, then DRAINING: the slot's Lease says it meanwhile. A
         * slot given back before the Node was touched (a pause, a cancel) leaves the Node alone. */
        /* (marks_status: a patch of the cycle's marks carries it, in flight) */
        /* RECOVERING is not written: the Node's new bootID says it (noderebootctl list). */
        if (!m->client || !m->config->annotate_nodes || m->publishing || m->marks_status || m->stopping ||
            m->state.phase == REBOOT_PHASE_LOCKED || m->state.phase == REBOOT_PHASE_RECOVERING ||
            (m->state.phase == REBOOT_PHASE_ROLLING_BACK && !m->state.cordoned))
                return;
        if (m->published_ahead) {
                /* The end of the cycle is published: not the last steps before it. */
                if (m->state.phase == REBOOT_PHASE_RECOVERING || m->state.phase == REBOOT_PHASE_ROLLING_BACK)
                        return;
                m->published_ahead = false;
        }
        for (MetricsBlock b = 0; b < _METRICS_BLOCK_MAX; b++)
                if (m->blocked[b]) {
                        blocked = metrics_block_to_string(b);
                        break;
                }
        s = published_status_format(&m->state, m->config->lock_name, blocked, m->boot_id);
        if (!s) {
                log_oom();
                return;
        }
        if (streq_ptr(s, m->published) || streq_ptr(s, m->publish_refused))
                return;
        /* A retry is due from the timer: a change does not hurry it. */
        if (m->publish_timer)
                return;
        char *annotations[] = { (char *) PUBLISHED_STATUS_ANNOTATION, s, NULL };
        char *labels[] = { (char *) PUBLISHED_STATE_LABEL, (char *) reboot_phase_to_string(m->state.phase), NULL };
        r = node_patch_annotations_and_labels(m->client, m->config->node_name, annotations, labels,
                                              on_status_published, m);
        if (r < 0) {
                log_debug_errno(r, "Failed to publish the status, ignoring: %m");
                return;
        }
        m->publishing = TAKE_PTR(s);
}

static int on_publish_defer(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        m->publish_defer = sd_event_source_disable_unref(m->publish_defer);
        manager_publish_status(m);
        return 0;
}

/* After everything else of this turn of the loop: a new wait and what blocks it are one write. */
static void manager_publish_status_soon(Manager *m) {
        if (m->publish_defer || !m->client || !m->config->annotate_nodes)
                return;
        if (sd_event_add_defer(m->event, &m->publish_defer, on_publish_defer, m) < 0) {
                manager_publish_status(m);
                return;
        }
        (void) sd_event_source_set_priority(m->publish_defer, SD_EVENT_PRIORITY_IDLE);
}

static void manager_update_status(Manager *m) {
        _cleanup_free_ char *s = NULL;
        const char *phase = reboot_phase_to_string(m->state.phase);

        manager_update_metrics(m);
        manager_publish_status_soon(m);

        if (m->waiting)
                s = strdup_printf("%s: %s", phase, m->waiting);
        else if (m->state.phase == REBOOT_PHASE_IDLE)
                s = strdup_printf("idle: no reboot required (watching %s)", m->config->sentinel_path);
        else
                s = strdup(phase);
        if (!s)
                return;
        if (m->command_error) {
                char *t = strdup_printf("%s; [Sentinel] Command= failed: %s", s, m->command_error);
                if (t) {
                        free(s);
                        s = t;
                }
        }
        if (m->state.last_error && m->state.phase != REBOOT_PHASE_IDLE) {
                char *t = strdup_printf("%s; last error: %s", s, m->state.last_error);
                if (t) {
                        free(s);
                        s = t;
                }
        }
        if (streq_ptr(s, m->status))
                return;

        (void) sd_notifyf(false, "STATUS=%s", s);
        free(m->status);
        m->status = TAKE_PTR(s);
}

_printf_(2, 3)
static void manager_set_waiting(Manager *m, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;

        if (fmt) {
                va_start(ap, fmt);
                if (vasprintf(&s, fmt, ap) < 0)
                        s = NULL;
                va_end(ap);
        }
        if (streq_ptr(s, m->waiting))
                return;
        if (s)
                log_info("%s", s);
        free(m->waiting);
        m->waiting = TAKE_PTR(s);
        memset(m->blocked, 0, sizeof m->blocked);
        manager_update_status(m);
}

/* After manager_set_waiting(): what it waits for holds the reboot back, for the metrics. */
static void manager_set_blocked(Manager *m, MetricsBlock why) {
        if (m->blocked[why])
                return;
        memset(m->blocked, 0, sizeof m->blocked);
        m->blocked[why] = true;
        manager_update_metrics(m);
        manager_publish_status_soon(m);
}

/* ---- timers ---------------------------------------------------------------------------- */

static int on_action_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        manager_run_action(m);
        return 0;
}

static void manager_arm_action_timer(Manager *m, usec_t delay) {
        int r;

        m->action_timer = sd_event_source_disable_unref(m->action_timer);
        r = sd_event_add_time_relative(m->event, &m->action_timer, CLOCK_MONOTONIC, delay, 10 * USEC_PER_MSEC,
                                       on_action_timer, m);
        if (r < 0)
                log_error_errno(r, "Failed to arm timer, the current step waits for the next event: %m");
}

/* Retries the current action after a capped exponential back-off with jitter. */
static void manager_leave_queue(Manager *m);

static usec_t manager_retry_action(Manager *m) {
        usec_t b = ACTION_BACKOFF_MIN_USEC;

        /* Backing off, a node waiting for a slot steps out of line: the next in line goes. */
        if (m->action == REBOOT_ACTION_ACQUIRE)
                manager_leave_queue(m);

        for (unsigned i = 0; i < m->action_failures && b < ACTION_BACKOFF_MAX_USEC; i++)
                b *= 2;
        b = MIN(b, ACTION_BACKOFF_MAX_USEC);
        b = b / 2 + random_jitter(b / 2 + 1);
        m->action_failures++;
        manager_arm_action_timer(m, b);
        return b;
}

static void manager_stop_action(Manager *m) {
        m->action_timer = sd_event_source_disable_unref(m->action_timer);
        m->drain = drain_free(m->drain);
        m->recovery_gate = recovery_gate_free(m->recovery_gate);
        m->recovery_warned = false;
        m->blockers = blockers_check_free(m->blockers);
        m->blockers_clear = false;
        m->alerts = alerts_check_free(m->alerts);
        m->alerts_clear = false;
        m->alerts_drained_since = 0;
        m->pause_rechecked = false;
        m->gate_preflight = blockers_check_free(m->gate_preflight);
        m->action = REBOOT_ACTION_NONE;
        m->action_failures = 0;
        m->reboot_deadline = 0;
        m->drain_deadline = 0;
}

/* ---- lock renewal while holding a slot ------------------------------------------------- */

static void manager_arm_renew(Manager *m, usec_t delay);

/* How long before the lease runs out (by the server's clock) we stop acting on it: covers the
 * error of our estimate of the server's clock and a renewal in flight. */
static usec_t manager_hold_margin(const Manager *m) {
        return MAX(m->config->lock_ttl_usec / 10, USEC_PER_SEC);
}

static bool manager_hold_valid(const Manager *m) {
        return m->hold_deadline > 0 && now_usec(HOLD_CLOCK) < m->hold_deadline;
}

static void manager_pause_evictions(Manager *m);

static int on_hold_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->hold_timer = sd_event_source_disable_unref(m->hold_timer);
        if (!reboot_phase_holds_lock(m->state.phase) || !m->state.lease)
                return 0;
        log_warning("Lock slot %s was last renewed too long ago; it may be taken by another node: "
                    "stopping evictions until it is renewed.", m->state.lease);
        manager_pause_evictions(m);
        return 0;
}

/* A write of our slot that started at `started` succeeded: it is ours until then + TTL. */
static void manager_hold_proven(Manager *m, usec_t started) {
        bool resume = m->evictions_paused;
        int r;

        m->hold_deadline = started + m->config->lock_ttl_usec - manager_hold_margin(m);
        m->hold_timer = sd_event_source_disable_unref(m->hold_timer);
        r = sd_event_add_time(m->event, &m->hold_timer, HOLD_CLOCK, m->hold_deadline, 0, on_hold_timer, m);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the lock deadline timer, ignoring: %m");
        m->evictions_paused = false;
        if (resume && m->action == REBOOT_ACTION_DRAIN) {
                log_info("Lock slot %s renewed; resuming the drain.", strna(m->state.lease));
                manager_run_action(m);
        }
}

static void manager_hold_forget(Manager *m) {
        m->hold_deadline = 0;
        m->hold_timer = sd_event_source_disable_unref(m->hold_timer);
        m->evictions_paused = false;
}

static void manager_unwatch_held(Manager *m) {
        if (!m->held_watched)
                return;
        lock_unwatch_held(m->lock);
        m->held_watched = mfree(m->held_watched);
}

static void on_held_slot_lost(Lock *l, const char *slot, const char *why, void *userdata) {
        Manager *m = userdata;

        m->held_watched = mfree(m->held_watched);
        if (!reboot_phase_holds_lock(m->state.phase) || !streq_ptr(slot, m->state.lease))
                return;
        /* Phases that keep the lease field after the loss (the reboot request is out) must not
         * watch it again: a new watch would report the loss again at once, and again. */
        (void) free_and_strdup(&m->lost_slot, slot);
        log_event(LOG_WARNING, MESSAGE_LOCK_LOST, "Lock slot %s/%s is no longer ours: %s.",
                  m->config->lock_namespace, slot, strna(why));
        if (m->action == REBOOT_ACTION_REBOOT || m->action == REBOOT_ACTION_WAIT_REBOOT)
                return;   /* too late: logind is taking the machine down */
        /* Draining stops at once: the state machine rolls the cycle back. After the reboot the
         * node is brought back as usual and the release becomes a no-op. */
        (void) manager_dispatch(m, REBOOT_EVENT_LOCK_LOST, NULL);
}

static void manager_watch_held(Manager *m) {
        int r;

        if (streq_ptr(m->held_watched, m->state.lease) || streq_ptr(m->lost_slot, m->state.lease))
                return;
        manager_unwatch_held(m);
        r = lock_watch_held(m->lock, m->state.lease, on_held_slot_lost, m);
        if (r < 0) {
                log_warning_errno(r, "Failed to watch lock slot %s, relying on renewals: %m", m->state.lease);
                return;
        }
        m->held_watched = strdup(m->state.lease);
        if (!m->held_watched) {
                lock_unwatch_held(m->lock);
                log_oom();
        }
}

/* Starts renewing the slot we hold; handler gets the answer. */
static int manager_start_renew(Manager *m, LockHandler handler) {
        int r;

        r = lock_renew(m->lock, m->state.lease, handler, m);
        if (r < 0)
                return r;
        m->renew_busy = true;
        m->renew_started = now_usec(HOLD_CLOCK);
        if (free_and_strdup(&m->renew_slot, m->state.lease) < 0)
                log_oom();
        return 0;
}

/* Whether the answer of the renewal that just ended is about the slot we hold now (and not one a
 * previous cycle held). */
static bool manager_renewal_is_current(Manager *m) {
        bool current = reboot_phase_holds_lock(m->state.phase) && m->state.lease &&
                streq_ptr(m->renew_slot, m->state.lease);

        m->renew_busy = false;
        m->renew_slot = mfree(m->renew_slot);
        if (!current && reboot_phase_holds_lock(m->state.phase) && m->state.lease)
                manager_arm_renew(m, 0);   /* renew what we hold now */
        return current;
}

static void on_lock_renewed(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Manager *m = userdata;

        if (!manager_renewal_is_current(m))
                return;
        if (error == -ESTALE || error == -ENOTUNIQ) {
                (void) free_and_strdup(&m->lost_slot, m->state.lease);
                if (error == -ENOTUNIQ)
                        log_error("Lock slot %s is not ours: %s", strna(m->state.lease), strna(holders));
                else
                        log_warning("Lock slot %s is no longer ours.", strna(m->state.lease));
                if (m->action != REBOOT_ACTION_WAIT_REBOOT && m->action != REBOOT_ACTION_REBOOT)
                        (void) manager_dispatch(m, REBOOT_EVENT_LOCK_LOST, NULL);
                return;
        }
        if (error < 0) {
                log_warning_errno(error, "Failed to renew lock slot %s, retrying: %m", strna(m->state.lease));
                manager_arm_renew(m, MIN(m->config->lock_ttl_usec / 10, 10 * USEC_PER_SEC));
                return;
        }
        log_debug("Renewed lock slot %s.", slot);
        manager_arm_renew(m, m->config->lock_ttl_usec / 3);
        manager_hold_proven(m, m->renew_started);
}

static int on_renew_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        if (!reboot_phase_holds_lock(m->state.phase) || !m->state.lease)
                return 0;
        if (m->renew_busy) {
                /* The pre-reboot confirmation is renewing right now; look again shortly. */
                manager_arm_renew(m, USEC_PER_SEC);
                return 0;
        }
        r = manager_start_renew(m, on_lock_renewed);
        if (r < 0) {
                log_warning_errno(r, "Failed to start renewing the lock, retrying: %m");
                manager_arm_renew(m, 10 * USEC_PER_SEC);
                return 0;
        }
        return 0;
}

static void manager_arm_renew(Manager *m, usec_t delay) {
        int r;

        m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
        if (!reboot_phase_holds_lock(m->state.phase) || !m->state.lease)
                return;
        r = sd_event_add_time_relative(m->event, &m->renew_timer, CLOCK_MONOTONIC, delay, USEC_PER_SEC,
                                       on_renew_timer, m);
        if (r < 0)
                log_error_errno(r, "Failed to arm the lock renewal timer: %m");
}

/* ---- waiting for a slot: the lease watch and the safety-net re-check -------------------- */

static int on_kick_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->kick_timer = sd_event_source_disable_unref(m->kick_timer);
        if (m->state.phase != REBOOT_PHASE_PENDING)
                return 0;
        /* Woken by a release, and another waiting node took the slot during our random delay:
         * the watch shows it, so nothing to ask the API server (a release used to cost a list and
         * a losing write from every waiting node). */
        if (!lock_watch_sees_free_slot(m->lock)) {
                log_debug("Every lock slot is held again; not looking.");
                return 0;
        }
        (void) manager_dispatch(m, REBOOT_EVENT_TICK, NULL);
        return 0;
}

static void manager_kick_after(Manager *m, usec_t delay) {
        if (m->kick_timer)
                return;
        if (sd_event_add_time_relative(m->event, &m->kick_timer, CLOCK_MONOTONIC, delay, 1, on_kick_timer, m) < 0)
                log_warning("Failed to arm the lock retry timer, waiting for the periodic re-check.");
}

static void manager_kick(Manager *m, usec_t jitter) {
        manager_kick_after(m, random_jitter(jitter));
}

/* The head of the line goes at once; a node that tries for itself (no queue) after a jitter, so
 * that a fleet does not race for a released slot in the same millisecond. */
static void manager_kick_in_turn(Manager *m, const QueuePlace *p) {
        manager_kick_after(m, p->verdict == QUEUE_TURN ? 0 : random_jitter(LOCK_KICK_JITTER_USEC));
}

typedef struct SlotHolders {
        const char **names;
        size_t n;
} SlotHolders;

static bool queue_holds_slot(const char *holder, void *userdata) {
        const SlotHolders *h = userdata;

        for (size_t i = 0; i < h->n; i++)
                if (streq(h->names[i], holder))
                        return true;
        return false;
}

/* Where we are in the queue for the lock, from what the two watches show (no request). */
static QueueVerdict manager_queue_place(Manager *m, QueuePlace *ret) {
        QueuePlace p;

        if (!m->queue) {
                if (ret)
                        *ret = (QueuePlace) { .verdict = QUEUE_OFF };
                return QUEUE_OFF;
        }
        unsigned free_slots = lock_watch_free_slots(m->lock);

        /* Until the lease watch has listed, only the head may look: a waiting node whose queue
         * watch was quicker must not go for a slot out of turn. */
        if (free_slots == UINT_MAX)
                free_slots = 0;
        /* Read once: the queue asks about every ticket, a thousand of them in a large fleet. */
        const char *names[m->config->concurrency];
        SlotHolders holders = { .names = names, .n = lock_watch_holders(m->lock, names, m->config->concurrency) };

        (void) queue_place(m->queue, free_slots, lock_watch_expired_slots(m->lock, kube_client_server_now(m->client)),
                           lock_watch_live_since(m->lock), queue_holds_slot, &holders, &p);
        if (ret)
                *ret = p;
        return p.verdict;
}

static void on_lock_changed(Lock *l, void *userdata) {
        Manager *m = userdata;
        QueuePlace p;
        QueueVerdict v;

        if (m->state.phase != REBOOT_PHASE_PENDING)
                return;
        v = manager_queue_place(m, &p);
        /* Not our turn: the head of the queue looks, no one else (a release used to send every
         * waiting node to list the slots). */
        if (v == QUEUE_WAITING || v == QUEUE_JOINING)
                return;
        if (m->lock_busy) {
                m->lock_again = true;
                return;
        }
        /* With the queue, only the first in line looks: no need to spread anyone out. Without
         * it, a small random delay keeps waiting nodes from all writing the same slot at once. */
        manager_kick_in_turn(m, &p);
}

static void manager_arm_recheck(Manager *m, usec_t delay);
static void manager_follow_slots(Manager *m, const QueuePlace *p);

#define QUEUE_PLACE_TEXT "waiting in the queue for a lock slot: place"

static void manager_say_queue_place(Manager *m, const QueuePlace *p) {
        _cleanup_free_ char *s = NULL;

        if (p->verdict == QUEUE_JOINING) {
                manager_set_waiting(m, "waiting in the queue for a lock slot: joining it");
                return;
        }
        s = strdup_printf(QUEUE_PLACE_TEXT " %u of %u (%u ahead)", p->ahead + 1, p->total, p->ahead);
        if (!s || !m->waiting || !startswith(m->waiting, QUEUE_PLACE_TEXT)) {
                manager_set_waiting(m, "%s", strna(s));
                return;
        }
        /* Moving up the line: STATUS= follows, the journal gets the first place only (a node at
         * the back of a line of thousands would log every step). */
        if (!streq(s, m->waiting)) {
                log_debug("%s", s);
                free(m->waiting);
                m->waiting = TAKE_PTR(s);
                manager_update_status(m);
        }
}

static void on_queue_changed(Queue *q, void *userdata) {
        Manager *m = userdata;
        QueueVerdict old = m->queue_verdict, v;
        QueuePlace p;

        if (m->state.phase != REBOOT_PHASE_PENDING)
                return;
        v = manager_queue_place(m, &p);
        m->queue_verdict = v;
        manager_follow_slots(m, &p);
        if (v == QUEUE_WAITING || v == QUEUE_JOINING) {
                /* The status follows our place in line, without a request. */
                if (m->action == REBOOT_ACTION_ACQUIRE)
                        manager_say_queue_place(m, &p);
                return;
        }
        if (v == old && v == QUEUE_TURN)
                return;
        if (old == QUEUE_WAITING || old == QUEUE_JOINING) {
                /* First in line now: one full look, as every waiting node used to take when it
                 * began to wait. It finds a slot whose holder's Node is gone (taken at once) and
                 * times the expiry of the others; from then on the watches tell. */
                if (m->lock_busy)
                        m->lock_again = true;
                else
                        (void) manager_dispatch(m, REBOOT_EVENT_TICK, NULL);
                return;
        }
        /* Our turn came (or the queue is off): look at once. A slot that is free is taken; when
         * all are held, the re-check follows their expiry as the watch shows it. */
        if (m->lock_busy) {
                m->lock_again = true;
                return;
        }
        if (lock_watch_sees_free_slot(m->lock))
                manager_kick_in_turn(m, &p);
        else
                /* Every slot held: look at the earliest expiry the watch shows (or at once). */
                manager_arm_recheck(m, 0);
}

static int on_recheck_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void manager_arm_recheck(Manager *m, usec_t delay) {
        int r;

        if (!m->recheck_timer) {
                r = sd_event_add_time_relative(m->event, &m->recheck_timer, CLOCK_MONOTONIC, delay, USEC_PER_SEC,
                                               on_recheck_timer, m);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm the lock re-check timer, ignoring: %m");
                return;
        }
        r = sd_event_source_set_time_relative(m->recheck_timer, delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->recheck_timer, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the lock re-check timer, ignoring: %m");
}

static int on_recheck_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t expiry, now;

        if (m->state.phase != REBOOT_PHASE_PENDING)
                return 0;
        /* Every slot held, and renewed since we last looked, as the lease watch shows: nothing can
         * have freed, so look again at the new earliest expiry rather than asking the API server
         * now. Thousands of waiting nodes through a roll of days would otherwise each list the
         * slots every RecheckSec= and at every holder's expiry. */
        expiry = lock_watch_next_expiry(m->lock);
        now = kube_client_server_now(m->client);
        if (expiry != 0 && expiry != USEC_INFINITY && expiry > now) {
                log_debug("Every lock slot is held and renewed in time; looking again at its expiry.");
                manager_arm_recheck(m, MIN(expiry - now + 500 * USEC_PER_MSEC + random_jitter(500 * USEC_PER_MSEC),
                                           m->config->lock_recheck_usec));
                return 0;
        }
        /* The safety net keeps going for as long as we wait. */
        manager_arm_recheck(m, m->config->lock_recheck_usec);
        (void) manager_dispatch(m, REBOOT_EVENT_TICK, NULL);
        return 0;
}

/* A node in line keeps a ticket only while it may take a slot now: outside its window, blocked by
 * a pod or the package manager, or backing off, it steps out of line and keeps nobody waiting; it
 * comes back at its place (the ticket is dated when the reboot became required). */
static void manager_watch_slots(Manager *m, bool want);

static void manager_leave_queue(Manager *m) {
        if (!m->queue)
                return;
        queue_leave(m->queue);
        m->queue_verdict = QUEUE_OFF;
        m->queue_moved_at = 0;
        m->follow_timer = sd_event_source_disable_unref(m->follow_timer);
        /* Out of line, nothing to take: the slots are followed again from our place. */
        manager_watch_slots(m, false);
}

static void manager_watch_slots(Manager *m, bool want) {
        int r;

        if (want == m->lock_watching)
                return;
        if (!want) {
                lock_unwatch(m->lock);
                m->lock_watching = false;
                return;
        }
        r = lock_watch(m->lock, on_lock_changed, m);
        if (r < 0)
                log_warning_errno(r, "Failed to watch the lock, relying on the periodic re-check: %m");
        else
                m->lock_watching = true;
}

/* In line, only the nodes near its front follow the slots: every take, renewal and release would
 * otherwise be sent to every waiting node, thousands of watch events per node cycle for the API
 * server. A node starts following once fewer than 2 x Concurrency are ahead of it (no sooner than
 * its first 2 s in line, when the nodes that asked before it are all in) and stops beyond 3 x. */
static int on_follow_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        QueuePlace p;

        m->follow_timer = sd_event_source_disable_unref(m->follow_timer);
        if (m->state.phase != REBOOT_PHASE_PENDING || !m->queue)
                return 0;
        (void) manager_queue_place(m, &p);
        manager_follow_slots(m, &p);
        return 0;
}

/* Whether the line in front of us stood still for long: as many pass-over periods as nodes are
 * ahead, plus one. The tickets ahead may then be those of nodes that are gone (stopped daemons,
 * deleted machines); only a node that follows the slots sees a slot stay free and passes them
 * over, so we follow them too. In a moving line it does not happen to nodes far back. */
static bool manager_line_stands_still(Manager *m, const QueuePlace *p) {
        usec_t now = now_usec(CLOCK_MONOTONIC), limit = (usec_t) (p->ahead + 1) * QUEUE_PASS_OVER_USEC;

        if (m->queue_moved_at == 0 || p->ahead < m->queue_ahead)
                m->queue_moved_at = now;
        m->queue_ahead = p->ahead;
        if (now >= m->queue_moved_at + limit)
                return true;
        if (m->follow_timer)
                (void) sd_event_source_set_time(m->follow_timer, m->queue_moved_at + limit);
        else if (sd_event_add_time(m->event, &m->follow_timer, CLOCK_MONOTONIC, m->queue_moved_at + limit,
                                   USEC_PER_SEC, on_follow_timer, m) < 0)
                log_debug("Failed to arm the queue's follow timer; the periodic re-check looks instead.");
        return false;
}

static void manager_follow_slots(Manager *m, const QueuePlace *p) {
        unsigned c = m->config->concurrency;

        if (m->state.phase != REBOOT_PHASE_PENDING)
                return;
        if (p->verdict == QUEUE_OFF || p->verdict == QUEUE_TURN)
                manager_watch_slots(m, true);
        else if (p->verdict == QUEUE_WAITING && !p->settling) {
                bool still = manager_line_stands_still(m, p);

                manager_watch_slots(m, p->ahead < 2 * c || still ? true :
                                    p->ahead >= 3 * c ? false : m->lock_watching);
        }
}

static void manager_unwatch_pause(Manager *m);

static void manager_update_pending_watchers(Manager *m) {
        if (m->state.phase == REBOOT_PHASE_PENDING) {
                /* With the queue, our place decides (manager_follow_slots()). */
                if (!m->queue)
                        manager_watch_slots(m, true);
                if (!m->recheck_timer)
                        manager_arm_recheck(m, m->config->lock_recheck_usec);
        } else {
                manager_watch_slots(m, false);
                m->recheck_timer = sd_event_source_disable_unref(m->recheck_timer);
                m->kick_timer = sd_event_source_disable_unref(m->kick_timer);
                m->blocked_by_pods = false;
                manager_leave_queue(m);
                manager_unwatch_pause(m);
                m->pause_said = mfree(m->pause_said);
                m->gate_preflight_ok = m->gate_preflight_warned = false;
        }
}

/* ---- actions --------------------------------------------------------------------------- */

static void on_lock_acquired(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Manager *m = userdata;
        bool again = m->lock_again;

        m->lock_busy = false;
        m->lock_again = false;

        if (error >= 0) {
                /* Dispatched whatever the current phase: a slot nobody wants any more is given back
                 * by the state machine. */
                m->action_failures = 0;
                m->lost_slot = mfree(m->lost_slot);
                manager_hold_proven(m, m->acquire_started);
                manager_leave_queue(m);
                crash_point("lock-acquired");
                log_event(LOG_NOTICE, MESSAGE_LOCK_ACQUIRED, "Acquired lock slot %s/%s.",
                          m->config->lock_namespace, slot);
                (void) manager_dispatch(m, REBOOT_EVENT_LOCK_ACQUIRED, &(RebootEventData) {
                                .lease = slot,
                                .machine_id = m->lock_machine_id,
                        });
                return;
        }
        if (m->action != REBOOT_ACTION_ACQUIRE)
                return;
        if (error == -ENOTUNIQ) {
                /* Another host runs under our node name: an image cloned with its configuration.
                 * No restart fixes that; wait for the periodic re-check and say why. */
                m->action_failures = 0;
                manager_leave_queue(m);
                manager_set_waiting(m, "refusing the lock: %s", strna(holders));
                return;
        }
        if (error == -EBUSY) {
                m->action_failures = 0;
                manager_set_waiting(m, "waiting for the lock: %s", strna(holders));
                manager_set_taint(m, true);
                {
                        /* A holder that stops renewing frees its slot without any write the
                         * watch could see: look again right after the earliest expiry. */
                        usec_t expiry = lock_next_expiry(m->lock), now = kube_client_server_now(m->client);

                        if (expiry != USEC_INFINITY) {
                                usec_t delay = expiry > now ? expiry - now : 0;
                                if (delay < m->config->lock_recheck_usec)
                                        manager_arm_recheck(m, delay + 500 * USEC_PER_MSEC +
                                                            random_jitter(500 * USEC_PER_MSEC));
                        }
                }
                if (again)
                        manager_kick(m, LOCK_KICK_JITTER_USEC);
                return;
        }
        usec_t b = manager_retry_action(m);
        char t[FORMAT_TIMESPAN_MAX];
        log_warning_errno(error, "Failed to acquire the lock, retrying in %s: %m",
                          format_timespan(t, sizeof t, b));
        manager_set_waiting(m, "cannot reach the lock (%s), retrying", strerror(ERRNO_VALUE(error)));
}

/* Whether dpkg or apt is at work ([Blockers] PackageManagerLocks=): a reboot now could leave it
 * half done. Says so in STATUS= and looks again shortly; only while it waits, so an idle node
 * never wakes up for this. */
static bool manager_package_manager_busy(Manager *m, const char *prefix) {
        const char *path = NULL;
        char holder[32];
        pid_t pid = 0;
        int r, error = 0;

        r = package_locks_test(m->config->package_manager_locks, &path, &pid, &error);
        if (error < 0 && !m->package_lock_warned) {
                m->package_lock_warned = true;
                log_warning_errno(error, "Failed to check one of [Blockers] PackageManagerLocks=, ignoring it: %m");
        }
        if (r <= 0) {
                if (m->package_manager_busy)
                        log_info("The package manager is done; going on.");
                m->package_manager_busy = false;
                return false;
        }

        m->package_manager_busy = true;
        if (pid > 0)
                snprintf(holder, sizeof holder, "pid %i", (int) pid);
        else
                snprintf(holder, sizeof holder, "pid unknown");
        manager_set_waiting(m, "%swaiting for the package manager (%s) to release %s", prefix, holder, path);
        manager_set_blocked(m, METRICS_BLOCK_PACKAGE_MANAGER);
        manager_arm_action_timer(m, PACKAGE_LOCK_POLL_USEC);
        return true;
}

static void manager_acquire(Manager *m);

static void on_blockers_checked(int error, const char *blocker, void *userdata) {
        Manager *m = userdata;

        m->blockers = blockers_check_free(m->blockers);
        if (m->action != REBOOT_ACTION_ACQUIRE)
                return;
        if (error < 0) {
                usec_t b = manager_retry_action(m);
                char t[FORMAT_TIMESPAN_MAX];
                log_warning_errno(error, "Failed to check for blocking pods, retrying in %s: %m",
                                  format_timespan(t, sizeof t, b));
                manager_set_waiting(m, "cannot check for blocking pods (%s), retrying", strerror(ERRNO_VALUE(error)));
                manager_set_blocked(m, METRICS_BLOCK_BLOCKERS);     /* unknown: held, as if blocked */
                return;
        }
        m->blocked_by_pods = !!blocker;
        if (blocker) {
                char t[FORMAT_TIMESPAN_MAX];
                manager_leave_queue(m);
                manager_set_waiting(m, "reboot blocked: %s; checking again in %s", blocker,
                                    format_timespan(t, sizeof t, m->config->lock_recheck_usec));
                manager_set_blocked(m, METRICS_BLOCK_BLOCKERS);
                manager_arm_action_timer(m, m->config->lock_recheck_usec);
                return;
        }
        m->action_failures = 0;
        m->blockers_clear = true;
        manager_acquire(m);
}

static void manager_set_taint(Manager *m, bool present) {
        int r;

        if (isempty(m->config->prefer_no_schedule_taint) || m->taint_set == present)
                return;
        r = node_set_taint(m->client, m->config->node_name, m->config->prefer_no_schedule_taint, present,
                           on_best_effort_done, m);
        if (r < 0)
                log_debug_errno(r, "Failed to %s the PreferNoSchedule taint, ignoring: %m", present ? "set" : "remove");
        else
                m->taint_set = present;
}

/* [Blockers] PodSelector=: true while a check is under way or found a blocker (the caller stops
 * there); false when none is configured or the last check found nothing. */
static bool manager_check_blockers(Manager *m) {
        int r;

        if (!m->config->blocking_pod_selectors || m->blockers_clear)
                return false;
        if (m->blockers)
                return true;
        r = blockers_check(&m->blockers, m->client, m->config->node_name, m->config->blocking_pod_selectors,
                           on_blockers_checked, m);
        if (r == -ENODATA)
                return false;
        if (r < 0) {
                log_error_errno(r, "Failed to check for blocking pods: %m");
                (void) manager_retry_action(m);
        }
        return true;
}

static void manager_post_event(Manager *m, const char *type, const char *reason, const char *message);
static void manager_allow_reboot(Manager *m);
static char *manager_kernel_change(Manager *m);

/* Held back by Prometheus (its alerts, or no answer): say so, leave the line before the slot,
 * and ask again in ALERTS_RECHECK_USEC. A drained node (it holds its slot, the node is cordoned)
 * waits at most ALERTS_DRAINED_WAIT_USEC, then gives the cycle up: uncordoned, the slot released,
 * the next attempt after [Reboot] RetrySec=. */
static void manager_alerts_blocked(Manager *m, const char *what) {
        bool drained = m->action == REBOOT_ACTION_CHECK_INHIBITORS;
        char t[FORMAT_TIMESPAN_MAX];
        usec_t now = now_usec(CLOCK_MONOTONIC);

        m->blocked_by_alerts = true;
        /* A pod check that passed before this wait is no longer fresh when the wait ends. */
        m->blockers_clear = false;
        if (!drained)
                manager_leave_queue(m);
        else {
                if (m->alerts_drained_since == 0)
                        m->alerts_drained_since = now;
                if (now - m->alerts_drained_since >= ALERTS_DRAINED_WAIT_USEC && !m->config->force_reboot) {
                        _cleanup_free_ char *e = strdup_printf("%s for %s after the drain", what,
                                                               format_timespan(t, sizeof t, ALERTS_DRAINED_WAIT_USEC));
                        m->alerts_drained_since = 0;
                        (void) manager_dispatch(m, REBOOT_EVENT_DRAIN_FAILED, &(RebootEventData) { .message = e ?: what });
                        return;
                }
        }
        manager_set_waiting(m, "%s%s; checking again in %s", drained ? "drained; " : "", what,
                            format_timespan(t, sizeof t, ALERTS_RECHECK_USEC));
        manager_set_blocked(m, METRICS_BLOCK_ALERTS);
        if (!streq_ptr(what, m->alerts_posted)) {
                manager_post_event(m, "Warning", "RebootBlockedByAlerts", what);
                (void) free_and_strdup(&m->alerts_posted, what);
        }
        manager_arm_action_timer(m, ALERTS_RECHECK_USEC);
}

static void on_alerts_checked(int error, char **blocking, const char *message, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *what = NULL;

        m->alerts = alerts_check_free(m->alerts);
        if (m->action != REBOOT_ACTION_ACQUIRE && m->action != REBOOT_ACTION_CHECK_INHIBITORS)
                return;
        if (error >= 0 && strv_length(blocking) == 0) {
                if (m->blocked_by_alerts)
                        log_info("No Prometheus alert holds the reboot back any more.");
                m->blocked_by_alerts = false;
                m->alerts_drained_since = 0;
                m->alerts_posted = mfree(m->alerts_posted);
                /* Good for this step only, which goes on at once from the check (nothing
                 * asynchronous comes before it once the answer is here): what stops it before it
                 * reaches the check (the window, the queue) makes the next step ask again. */
                m->alerts_clear = true;
                if (m->action == REBOOT_ACTION_CHECK_INHIBITORS)
                        manager_allow_reboot(m);
                else
                        manager_run_action(m);
                m->alerts_clear = false;
                return;
        }
        if (error < 0)
                what = strdup_printf("reboot blocked: %s", message);
        else {
                _cleanup_free_ char *names = alerts_join(blocking);
                what = strdup_printf("reboot blocked by Prometheus alerts: %s", strna(names));
        }
        manager_alerts_blocked(m, what ?: "reboot blocked by Prometheus alerts");
}

/* Whether Prometheus's alerts are being asked for or hold the step back (the caller waits for
 * on_alerts_checked()). A clear answer lets exactly one step through. Right before the reboot
 * only firing alerts count: alerts our own drain starts (pods not ready, targets down) are
 * pending at first. */
static bool manager_check_alerts(Manager *m) {
        AlertsSettings settings = {
                .url = m->config->prometheus_url,
                .ca_file = m->config->prometheus_ca_file,
                .bearer_token_file = m->config->prometheus_bearer_token_file,
                .basic_auth_file = m->config->prometheus_basic_auth_file,
                .filter = {
                        .regex = m->alert_regex_set ? &m->alert_regex : NULL,
                        .match_only = m->config->alert_filter_match_only,
                        .firing_only = m->config->alert_firing_only || m->action == REBOOT_ACTION_CHECK_INHIBITORS,
                },
        };
        _cleanup_free_ char *what = NULL;
        int r;

        if (!m->http)
                return false;
        if (m->alerts_clear) {
                m->alerts_clear = false;
                return false;
        }
        if (m->alerts)
                return true;
        r = alerts_check(&m->alerts, m->http, &settings, on_alerts_checked, m);
        if (r < 0) {
                /* A secret that cannot be read: fail safe, as for an unreachable server. */
                what = strdup_printf("reboot blocked: cannot ask Prometheus for its alerts (%s)", strerror(ERRNO_VALUE(r)));
                manager_alerts_blocked(m, what ?: "reboot blocked: cannot ask Prometheus for its alerts");
        }
        return true;
}

/* ---- the health gate, looked at before the cycle: does its selector match a pod here? ------- */

static void manager_acquire(Manager *m);

static void on_gate_preflight(int error, const char *match, void *userdata) {
        Manager *m = userdata;
        char t[FORMAT_TIMESPAN_MAX];

        m->gate_preflight = blockers_check_free(m->gate_preflight);
        if (m->action != REBOOT_ACTION_ACQUIRE)
                return;
        if (error < 0) {
                usec_t b = manager_retry_action(m);

                log_warning_errno(error, "Failed to list the pods matching [Recovery] WaitForPodsSelector=%s, "
                                  "retrying in %s: %m", m->config->recovery_pod_selector, format_timespan(t, sizeof t, b));
                manager_set_waiting(m, "cannot list the pods of [Recovery] WaitForPodsSelector= (%s), retrying",
                                    strerror(ERRNO_VALUE(error)));
                return;
        }
        if (!match) {
                /* The gate would wait for a pod that is not there: the node would stay cordoned
                 * after its reboot. Better not begin (a DaemonSet may yet come to this node). */
                manager_leave_queue(m);
                if (!m->gate_preflight_warned)
                        log_warning("[Recovery] WaitForPodsSelector=%s matches no pod on node %s: after a reboot it "
                                    "would stay cordoned. Not rebooting until one does (fix the selector, or run "
                                    "the DaemonSet on this node).", m->config->recovery_pod_selector,
                                    m->config->node_name);
                m->gate_preflight_warned = true;
                manager_set_waiting(m, "reboot held: [Recovery] WaitForPodsSelector=%s matches no pod on this node; "
                                    "checking again in %s", m->config->recovery_pod_selector,
                                    format_timespan(t, sizeof t, m->config->lock_recheck_usec));
                manager_set_blocked(m, METRICS_BLOCK_BLOCKERS);
                manager_arm_action_timer(m, m->config->lock_recheck_usec);
                return;
        }
        m->action_failures = 0;
        m->gate_preflight_ok = true;
        manager_acquire(m);
}

/* Once per pending period, before the slot: true while the look is under way or found nothing. */
static bool manager_check_gate_preflight(Manager *m) {
        char *selectors[] = { m->config->recovery_pod_selector, NULL };
        int r;

        if (!m->config->recovery_pod_selector || m->gate_preflight_ok)
                return false;
        if (m->gate_preflight)
                return true;
        r = blockers_check(&m->gate_preflight, m->client, m->config->node_name, selectors, on_gate_preflight, m);
        if (r == -ENODATA)
                return false;
        if (r < 0) {
                log_error_errno(r, "Failed to list the pods of [Recovery] WaitForPodsSelector=: %m");
                (void) manager_retry_action(m);
        }
        return true;
}

/* ---- an operator's pause (noderebootctl pause, kept in the cluster: kube/pause.h) ----------- */

static void manager_say_paused(Manager *m, const PauseState *s) {
        _cleanup_free_ char *d = pause_describe(s, m->config->lock_name);

        manager_set_waiting(m, "%s", d ?: "reboots are paused");
        manager_set_blocked(m, METRICS_BLOCK_PAUSE);
        if (d && !streq_ptr(d, m->pause_said)) {
                log_notice("%s; the node waits for noderebootctl resume.", d);
                manager_post_event(m, "Normal", "RebootPaused", d);
                free(m->pause_said);
                m->pause_said = TAKE_PTR(d);
        }
}

static void manager_unwatch_pause(Manager *m) {
        m->pause_watch = pause_watch_free(m->pause_watch);
        m->pause_watch_failing = false;
        queue_set_pass_over(m->queue, true);
}

static void on_pause_changed(int error, const PauseState *s, void *userdata) {
        Manager *m = userdata;

        if (m->state.phase != REBOOT_PHASE_PENDING)
                return;
        if (error < 0) {
                /* The watch retries by itself; the pause it saw last stands, and the node reads it
                 * every 30 s meanwhile (manager_check_pause()), so a resume is not missed. One the
                 * Role does not allow to watch at all is not watched again. */
                log_debug_errno(error, "Watch of the pause ConfigMap failed, retrying: %m");
                m->pause_watch_failing = true;
                if (error == -EACCES)
                        m->pause_poll_only = true;
                if (m->action == REBOOT_ACTION_ACQUIRE)
                        manager_arm_action_timer(m, ALERTS_RECHECK_USEC);
                return;
        }
        if (!pause_watch_synced(m->pause_watch))
                return;
        m->pause_watch_failing = false;
        queue_set_pass_over(m->queue, !s->group.set);
        if (pause_state_holds(s)) {
                if (s->node.set && !s->group.set)
                        manager_leave_queue(m);
                if (m->action == REBOOT_ACTION_ACQUIRE)
                        manager_say_paused(m, s);
                return;
        }
        log_notice("Reboots resumed%s.", s->nodes_paused > 0 ? " for this node" : "");
        m->pause_said = mfree(m->pause_said);
        m->pause_clear_at = now_usec(CLOCK_MONOTONIC);
        /* Not from inside the watch's handler: the action frees the watch and goes on. */
        if (m->action == REBOOT_ACTION_ACQUIRE)
                manager_arm_action_timer(m, 0);
}

static void manager_acquire(Manager *m);

static void on_pause_read(int error, const PauseState *s, void *userdata) {
        Manager *m = userdata;
        int r;

        m->pause_busy = false;
        if (m->action != REBOOT_ACTION_ACQUIRE || m->pause_watch)
                return;
        if (error < 0) {
                /* Not knowing is as good as paused: no slot is taken. */
                usec_t b = manager_retry_action(m);
                char t[FORMAT_TIMESPAN_MAX];

                log_warning_errno(error, "Failed to read ConfigMap %s/%s-pause (whether reboots are paused), "
                                  "retrying in %s: %m%s", m->config->lock_queue_namespace, m->config->lock_name,
                                  format_timespan(t, sizeof t, b),
                                  error == -EACCES ? " (the credential was refused: a revoked token, or a Role "
                                  "without the pause ConfigMap: apply this version's packaging/kubernetes/rbac.yaml)" : "");
                manager_set_waiting(m, "cannot tell whether reboots are paused (%s), retrying",
                                    error == -EACCES ? "the API server refused the credential" :
                                    strerror(ERRNO_VALUE(error)));
                manager_set_blocked(m, METRICS_BLOCK_PAUSE);
                return;
        }
        m->action_failures = 0;
        if (!pause_state_holds(s)) {
                m->pause_clear_at = now_usec(CLOCK_MONOTONIC);
                manager_acquire(m);
                return;
        }
        /* Paused: watched from now on, so that the resume is seen at once (read every 30 s when
         * the Role allows no watch). A paused group keeps its place in line (and nobody passes
         * over its head); a paused node steps out. */
        if (m->pause_poll_only)
                manager_arm_action_timer(m, ALERTS_RECHECK_USEC);
        else {
                r = pause_watch_new(&m->pause_watch, m->client, m->config->lock_queue_namespace, m->config->lock_name,
                                    m->config->node_name, on_pause_changed, m);
                if (r < 0) {
                        log_warning_errno(r, "Failed to watch the pause ConfigMap: %m");
                        (void) manager_retry_action(m);
                        return;
                }
        }
        queue_set_pass_over(m->queue, !s->group.set);
        if (s->node.set && !s->group.set)
                manager_leave_queue(m);
        manager_say_paused(m, s);
}

/* Right before a slot is taken: whether an operator paused reboots. True while the read is under
 * way or a pause holds (the caller stops there). */
static bool manager_check_pause(Manager *m) {
        int r;

        if (m->pause_watch) {
                const PauseState *s = pause_watch_state(m->pause_watch);

                if (m->pause_watch_failing)
                        /* It does not see changes now (an outage, a Role that allows get only):
                         * a resume must not go unseen. Read instead, below. */
                        manager_unwatch_pause(m);
                else if (!pause_watch_synced(m->pause_watch)) {
                        manager_set_waiting(m, "checking whether reboots are paused");
                        return true;
                } else if (pause_state_holds(s)) {
                        manager_say_paused(m, s);
                        return true;
                } else
                        /* Resumed: the watch's word counts only as fresh as the resume it showed
                         * (pause_clear_at); later, a read. */
                        manager_unwatch_pause(m);
        }
        if (m->pause_clear_at > 0 && now_usec(CLOCK_MONOTONIC) < m->pause_clear_at + PAUSE_CLEAR_VALID_USEC)
                return false;
        if (m->pause_busy)
                return true;
        r = pause_get(m->client, m->config->lock_queue_namespace, m->config->lock_name, m->config->node_name,
                      on_pause_read, m);
        if (r < 0) {
                log_error_errno(r, "Failed to read the pause ConfigMap: %m");
                (void) manager_retry_action(m);
                return true;
        }
        m->pause_busy = true;
        return true;
}

/* The next in line is about to pass over the head of the queue (it left a slot untaken): unless
 * the group is paused, when every head rightly waits. Nodes back in line have not read the pause;
 * this is the one read they make. An error lets the pass-over go: a live head puts its ticket back
 * at its place. */
static void on_pass_over_pause(int error, const PauseState *s, void *userdata) {
        Manager *m = userdata;
        int r;

        if (!m->queue)
                return;
        if (error < 0 || !s->group.set || m->state.phase != REBOOT_PHASE_PENDING || m->pause_poll_only) {
                /* (Without a watch nothing would allow it again: the head is passed over as
                 * before, and a live head puts its ticket back at its place.) */
                queue_pass_over_answer(m->queue, true);
                return;
        }
        if (!m->pause_watch) {
                /* Watched from now on: the resume allows passing over again. */
                r = pause_watch_new(&m->pause_watch, m->client, m->config->lock_queue_namespace,
                                    m->config->lock_name, m->config->node_name, on_pause_changed, m);
                if (r < 0) {
                        log_warning_errno(r, "Failed to watch the pause ConfigMap: %m");
                        queue_pass_over_answer(m->queue, true);
                        return;
                }
        }
        queue_set_pass_over(m->queue, false);
        queue_pass_over_answer(m->queue, false);
}

static void on_pass_over_check(Queue *q, void *userdata) {
        Manager *m = userdata;
        int r;

        r = pause_get(m->client, m->config->lock_queue_namespace, m->config->lock_name, NULL, on_pass_over_pause, m);
        if (r < 0)
                queue_pass_over_answer(q, true);
}

/* A node paused by itself waits out of line, without a request: the watch shows the resume. */
static bool manager_paused_out_of_line(Manager *m) {
        const PauseState *s;

        if (!m->pause_watch || !pause_watch_synced(m->pause_watch) || m->pause_watch_failing)
                return false;
        s = pause_watch_state(m->pause_watch);
        if (!s->node.set || s->group.set)
                return false;
        manager_leave_queue(m);
        manager_say_paused(m, s);
        return true;
}

static void manager_acquire(Manager *m) {
        usec_t now = now_realtime();
        char buf[64];
        int r;

        /* A pause watch that shows the resume has done its job (not freed inside its handler). */
        if (m->pause_watch && pause_watch_synced(m->pause_watch) &&
            !pause_state_holds(pause_watch_state(m->pause_watch)))
                manager_unwatch_pause(m);

        if (m->command && !m->command_known && !m->sentinel_seen) {
                /* A cycle the command began before a restart: it goes on once the command says
                 * the reboot is still required (it runs at start). */
                manager_leave_queue(m);
                manager_set_waiting(m, "waiting for [Sentinel] Command= to say whether a reboot is still required");
                return;
        }
        if (m->state.retry_after > now) {
                manager_leave_queue(m);
                if (manager_loop_guard_holds(m)) {
                        manager_set_waiting(m, "reboot loop stopped: a reboot was required again within [Reboot] "
                                            "LoopGuardSec= of the last one (%u time%s in a row); next attempt at %s",
                                            m->state.stats.loops, m->state.stats.loops == 1 ? "" : "s",
                                            format_clock(buf, sizeof buf, m->state.retry_after));
                        manager_set_blocked(m, METRICS_BLOCK_LOOP_GUARD);
                } else
                        manager_set_waiting(m, "backing off after a failed attempt until %s",
                                            format_clock(buf, sizeof buf, m->state.retry_after));
                manager_arm_action_timer(m, m->state.retry_after - now);
                return;
        }
        if (m->window && !window_contains(m->window, now) &&
            !(m->request_seen && m->request_ignores_window && !m->sentinel_seen && !m->command_required)) {
                usec_t next = window_next_open(m->window, now);
                _cleanup_free_ char *w = window_describe(m->window);

                manager_leave_queue(m);
                manager_set_waiting(m, "outside the maintenance window %s, opens %s", strna(w),
                                    format_clock(buf, sizeof buf, next));
                manager_set_blocked(m, METRICS_BLOCK_WINDOW);
                if (next != USEC_INFINITY)
                        manager_arm_action_timer(m, next > now ? next - now : USEC_PER_SEC);
                return;
        }
        if (manager_paused_out_of_line(m))
                return;
        /* Looked at again after the blocker check, right before the lock is taken. */
        if (manager_package_manager_busy(m, "")) {
                manager_leave_queue(m);
                return;
        }
        /* A node that a pod blocked looks again before it gets back in line: in line, it would
         * come first at its old place and keep the nodes behind it waiting at every look. */
        if (m->blocked_by_pods && manager_check_blockers(m))
                return;
        if (m->blocked_by_alerts && manager_check_alerts(m))
                return;
        if (m->queue) {
                QueuePlace p;

                /* Dated by this node's clock: the API server's is known only to the second (the
                 * Date header), and nodes whose reboots became required within the same second
                 * must keep their order. Node clocks are kept by NTP; one that is off by minutes
                 * jumps or loses its place, and nothing else (slots are judged by the server's). */
                r = queue_join(m->queue, m->state.pending_since > 0 ? m->state.pending_since :
                               m->state.phase_since > 0 ? m->state.phase_since : now, on_queue_changed, m);
                if (r >= 0) {
                        (void) manager_queue_place(m, &p);
                        manager_follow_slots(m, &p);
                } else {
                        log_warning_errno(r, "Failed to join the lock queue, trying for a slot without it: %m");
                        manager_watch_slots(m, true);
                        p.verdict = QUEUE_OFF;
                }
                if (p.verdict == QUEUE_WAITING || p.verdict == QUEUE_JOINING) {
                        m->queue_verdict = p.verdict;
                        manager_say_queue_place(m, &p);
                        /* Pods and alerts are looked at again when our turn comes, right
                         * before the slot. */
                        m->blockers_clear = false;
                        m->alerts_clear = false;
                        return;
                }
        }
        if (manager_check_pause(m))
                return;
        if (manager_check_gate_preflight(m))
                return;
        if (manager_check_blockers(m))
                return;
        if (manager_check_alerts(m))
                return;
        m->blockers_clear = false;
        if (m->lock_busy) {
                m->lock_again = true;
                return;
        }
        r = lock_acquire(m->lock, on_lock_acquired, m);
        if (r < 0) {
                log_error_errno(r, "Failed to start acquiring the lock: %m");
                (void) manager_retry_action(m);
                return;
        }
        m->lock_busy = true;
        m->acquire_started = now_usec(HOLD_CLOCK);
        if (!m->waiting)
                manager_set_waiting(m, "trying to take a lock slot");
}

static void on_node_read(KubeClient *c, int error, json_object *node, void *userdata) {
        Manager *m = userdata;

        m->node_busy = false;
        if (m->action != REBOOT_ACTION_READ_NODE)
                return;
        if (error < 0) {
                log_warning_errno(error, "Failed to read Node %s, retrying: %m", m->config->node_name);
                manager_set_waiting(m, "cannot read Node %s (%s), retrying", m->config->node_name,
                                    strerror(ERRNO_VALUE(error)));
                m->pause_rechecked = false;     /* the pause is read again right before the cordon */
                (void) manager_retry_action(m);
                return;
        }
        (void) manager_dispatch(m, REBOOT_EVENT_NODE_READ,
                                &(RebootEventData) { .node_unschedulable = node_is_unschedulable(node),
                                                     .kernel = node_kernel_version(node) });
}

static void manager_read_node(Manager *m);

static void on_pause_rechecked(int error, const PauseState *s, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *d = NULL;

        m->pause_recheck_busy = false;
        if (m->action != REBOOT_ACTION_READ_NODE)
                return;
        if (error < 0) {
                usec_t b = manager_retry_action(m);
                char t[FORMAT_TIMESPAN_MAX];

                log_warning_errno(error, "Failed to read whether reboots are paused, holding lock slot %s and "
                                  "retrying in %s: %m", strna(m->state.lease), format_timespan(t, sizeof t, b));
                manager_set_waiting(m, "holding lock slot %s; cannot tell whether reboots are paused (%s), retrying",
                                    strna(m->state.lease), strerror(ERRNO_VALUE(error)));
                return;
        }
        if (pause_state_holds(s)) {
                d = pause_describe(s, m->config->lock_name);
                log_notice("%s (while the slot was being taken); giving lock slot %s back.", strna(d),
                           strna(m->state.lease));
                (void) manager_dispatch(m, REBOOT_EVENT_PAUSED, NULL);
                return;
        }
        m->pause_rechecked = true;
        manager_read_node(m);
}

/* How long the current phase has lasted. Read off the wall clock once per phase and process
 * (phase_since is on disk: a restart does not start the count over), then counted on the monotonic
 * clock: a wall clock stepped an hour back or forward must neither stretch a wait by an hour (the
 * slot held, the rollout stalled) nor cut it short or raise a false alarm. */
static usec_t manager_phase_elapsed(Manager *m) {
        /* A phase may have begun before this boot (RECOVERING across a crash of the new kernel, a
         * reboot nobody asked for): it has lasted longer than the monotonic clock has run. */
        return elapsed_clock_get(&m->phase_clock, m->state.phase_since, now_realtime(),
                                 now_usec(CLOCK_MONOTONIC));
}

static void manager_read_node(Manager *m) {
        usec_t elapsed = manager_phase_elapsed(m);
        int r;

        /* [Drain] DelaySec=: a pause between taking the lock and touching the node. */
        if (m->config->drain_delay_usec > 0 && elapsed < m->config->drain_delay_usec) {
                manager_set_waiting(m, "holding lock slot %s, cordoning after the drain delay", m->state.lease);
                manager_arm_action_timer(m, m->config->drain_delay_usec - elapsed);
                return;
        }
        if (m->node_busy)
                return;
        if (!m->pause_rechecked && m->pause_clear_at > 0 &&
            now_usec(CLOCK_MONOTONIC) < m->pause_clear_at + PAUSE_CLEAR_VALID_USEC)
                m->pause_rechecked = true;      /* the read before the slot is as fresh as its cache */
        if (!m->pause_rechecked) {
                /* A pause can come while the slot is being taken (seconds on a slow API server,
                 * the time of an incident): read it once more, uncached, before the Node is touched. */
                if (m->pause_recheck_busy)
                        return;
                r = pause_get(m->client, m->config->lock_queue_namespace, m->config->lock_name, m->config->node_name,
                              on_pause_rechecked, m);
                if (r < 0) {
                        log_error_errno(r, "Failed to read the pause ConfigMap: %m");
                        (void) manager_retry_action(m);
                        return;
                }
                m->pause_recheck_busy = true;
                manager_set_waiting(m, "holding lock slot %s, checking that reboots are not paused", m->state.lease);
                return;
        }
        r = node_get(m->client, m->config->node_name, on_node_read, m);
        if (r < 0) {
                log_error_errno(r, "Failed to read the Node: %m");
                (void) manager_retry_action(m);
                return;
        }
        m->node_busy = true;
        manager_set_waiting(m, "holding lock slot %s, reading Node %s", m->state.lease, m->config->node_name);
}

/* Marks, labels, the taint and Events: the cycle goes on without them, but a refusal by the API
 * server (an admission policy whose ConfigMap does not list a configured label, RBAC) is the
 * operator's to fix, so it is a warning with the server's own words. */
static void on_best_effort_done(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Manager *m = userdata;
        const char *message = node_refusal(response);

        if (error >= 0)
                return;
        if (message)
                log_warning_errno(error, "The API server refused an update of Node %s (its marks, labels, taint or "
                                  "an Event), going on without it: %s", m->config->node_name, message);
        else
                log_debug_errno(error, "Best-effort update of Node %s failed, ignoring: %m", m->config->node_name);
}

static void manager_post_event(Manager *m, const char *type, const char *reason, const char *message) {
        int r;

        r = node_post_event(m->client, m->config->node_name, type, reason, message, on_best_effort_done, m);
        if (r < 0)
                log_debug_errno(r, "Failed to post event %s, ignoring: %m", reason);
}

static void on_drain_progress(Drain *d, const char *progress, void *userdata) {
        Manager *m = userdata;

        if (drain_marks_dropped(d) && !m->drain_marks_noted) {
                /* The cordon went without the status: what the Node shows is not what we thought. */
                m->drain_marks_noted = true;
                m->published = mfree(m->published);
                manager_publish_status_soon(m);
        }

        manager_set_waiting(m, "holding lock slot %s, draining: %s", strna(m->state.lease), progress);
}

static void on_drain_done(Drain *d, int error, const char *message, void *userdata) {
        Manager *m = userdata;

        /* The drain object frees itself with the action; keep it until we leave the handler. */
        if (error >= 0) {
                log_info("Node %s drained.", m->config->node_name);
                m->drained_at = now_usec(CLOCK_MONOTONIC);
                (void) manager_dispatch(m, REBOOT_EVENT_DRAINED, NULL);
                return;
        }
        _cleanup_free_ char *msg = strdup_printf("drain failed: %s",
                                                 message ?: strerror(ERRNO_VALUE(error)));
        log_event(LOG_WARNING, MESSAGE_DRAIN_FAILED, "Failed to drain node %s: %s%s",
                  m->config->node_name, message ?: strerror(ERRNO_VALUE(error)),
                  m->config->force_reboot ? "; rebooting anyway (ForceReboot=yes)" :
                  "; undoing the cordon and releasing the lock");
        manager_post_event(m, "Warning", "DrainFailed", msg ?: "drain failed");
        (void) manager_dispatch(m, REBOOT_EVENT_DRAIN_FAILED, &(RebootEventData) { .message = msg });
}

static void manager_label_node(Manager *m, char **labels);

/* The cycle's marks (why, and the published status) go with the cordon: one patch, not three. The
 * status counts as written (if the cordon is refused, the cycle rolls back and publishes anew). */
static void manager_cordon_marks(Manager *m, DrainOptions *o, char *annotations[static 5], char *labels[static 3],
                                 char **ret_status) {
        _cleanup_free_ char *status = NULL;
        size_t n = 0;

        *ret_status = NULL;
        if (!m->config->annotate_nodes)
                return;
        annotations[n++] = (char *) NODE_ANNOTATION_REASON;
        annotations[n++] = m->state.reason ?: (char *) "reboot required";
        /* (not while a publish is in flight: the two would race for the annotation) */
        if (!m->publishing && !m->publish_refused)
                status = published_status_format(&m->state, m->config->lock_name, NULL, m->boot_id);
        if (status) {
                annotations[n++] = (char *) PUBLISHED_STATUS_ANNOTATION;
                annotations[n++] = status;
                labels[0] = (char *) PUBLISHED_STATE_LABEL;
                labels[1] = (char *) reboot_phase_to_string(m->state.phase);
                labels[2] = NULL;
                o->cordon_labels = labels;
        }
        annotations[n] = NULL;
        o->cordon_annotations = annotations;
        *ret_status = TAKE_PTR(status);
}

/* "k=v" items (as configured) to the key, value, key, value... list node_patch_labels() takes. */
static char **labels_to_pairs(char **labels) {
        _cleanup_strv_free_ char **pairs = NULL;

        for (char **l = labels; l && *l; l++) {
                const char *eq = strchr(*l, '=');
                _cleanup_free_ char *k = eq ? strndup(*l, (size_t) (eq - *l)) : strdup(*l);

                if (!k || strv_extend(&pairs, k) < 0 || strv_extend(&pairs, eq ? eq + 1 : "") < 0)
                        return NULL;
        }
        return TAKE_PTR(pairs);
}

static void manager_label_node(Manager *m, char **labels) {
        _cleanup_strv_free_ char **pairs = NULL;
        int r;

        if (!labels)
                return;
        pairs = labels_to_pairs(labels);
        if (!pairs) {
                log_oom();
                return;
        }
        r = node_patch_labels(m->client, m->config->node_name, pairs, on_best_effort_done, m);
        if (r < 0)
                log_debug_errno(r, "Failed to label the Node, ignoring: %m");
}

static void manager_pause_evictions(Manager *m) {
        int r;

        if (m->action != REBOOT_ACTION_DRAIN)
                return;
        m->drain = drain_free(m->drain);
        m->evictions_paused = true;
        manager_set_waiting(m, "holding lock slot %s, evictions paused until the slot is renewed",
                            strna(m->state.lease));
        if (m->renew_busy)
                return;   /* its answer resumes the drain */
        r = manager_start_renew(m, on_lock_renewed);
        if (r < 0) {
                log_warning_errno(r, "Failed to start renewing the lock, retrying: %m");
                manager_arm_renew(m, USEC_PER_SEC);
        }
}

static void manager_drain(Manager *m) {
        DrainOptions o = {
                .timeout_usec = m->config->drain_timeout_usec,
                .grace_period_sec = m->config->drain_grace_period_sec,
                .pod_selector = m->config->drain_pod_selector,
                .skip_wait_for_delete_usec = m->config->skip_wait_for_delete_usec,
                .pdb_retry_usec = 5 * USEC_PER_SEC,
                .node_was_unschedulable = m->state.node_was_unschedulable,
        };
        _cleanup_free_ char *msg = NULL, *status = NULL;
        char *annotations[5], *labels[3];
        usec_t now = now_usec(CLOCK_MONOTONIC);
        int r;

        m->drain = drain_free(m->drain);
        if (!manager_hold_valid(m)) {
                manager_pause_evictions(m);
                return;
        }
        if (m->drain_deadline > 0) {
                /* Resumed after a pause: the same drain goes on, within its first deadline. */
                if (m->drain_deadline != USEC_INFINITY)
                        o.timeout_usec = m->drain_deadline > now ? m->drain_deadline - now : 1;
        } else {
                usec_t timeout = m->config->drain_timeout_usec;

                m->drain_deadline = timeout == 0 || timeout == USEC_INFINITY ? USEC_INFINITY : now + timeout;
                manager_label_node(m, m->config->pre_reboot_labels);
                log_event(LOG_NOTICE, MESSAGE_DRAIN_STARTED, "Cordoning and draining node %s%s.",
                          m->config->node_name,
                          m->state.node_was_unschedulable ? " (it was already unschedulable; it will stay so)" : "");
                msg = strdup_printf("nodereboot is draining the node for a reboot (reason: %s)",
                                    m->state.reason ?: "reboot required");
                manager_post_event(m, "Normal", "Draining", msg ?: "draining");
        }

        /* (with every cordon: the same values again when a drain is resumed) */
        manager_cordon_marks(m, &o, annotations, labels, &status);
        m->drain_marks_noted = false;
        r = drain_start(&m->drain, m->event, m->client, m->config->node_name, &o, on_drain_done,
                        on_drain_progress, m);
        if (r < 0) {
                log_error_errno(r, "Failed to start the drain, retrying: %m");
                (void) manager_retry_action(m);
                return;
        }
        if (status) {
                free(m->published);
                m->published = TAKE_PTR(status);
        }
        manager_set_waiting(m, "holding lock slot %s, draining", strna(m->state.lease));
}

static void on_inhibitors_checked(Logind *l, int error, bool blocked, const char *holders, void *userdata) {
        Manager *m = userdata;

        m->logind_busy = false;
        if (m->action != REBOOT_ACTION_CHECK_INHIBITORS)
                return;
        if (error < 0) {
                log_warning_errno(error, "Failed to ask logind about inhibitors, retrying: %m");
                manager_set_waiting(m, "cannot reach logind (%s), retrying", strerror(ERRNO_VALUE(error)));
                (void) manager_retry_action(m);
                return;
        }
        if (blocked) {
                /* A block inhibitor on shutdown is someone saying "not now"; CAP_SYS_BOOT could
                 * override it, we never do. */
                manager_set_waiting(m, "drained; reboot blocked by a shutdown inhibitor held by %s",
                                    strna(holders));
                manager_set_blocked(m, METRICS_BLOCK_INHIBITOR);
                manager_arm_action_timer(m, INHIBITOR_RECHECK_USEC);
                return;
        }
        /* The last look before the reboot: dpkg may have started since the one before the
         * confirmation (apt takes no inhibitor). */
        if (manager_package_manager_busy(m, "drained; "))
                return;
        manager_allow_reboot(m);
}

/* The last steps before the reboot, after the inhibitors and the package manager: the slot still
 * ours by our clock, and Prometheus (an alert may have started firing during the drain). Also
 * where a clear answer of Prometheus goes on from. */
static void manager_allow_reboot(Manager *m) {
        char id[BOOT_ID_MAX];
        int r;

        if (!manager_hold_valid(m)) {
                /* logind took longer than the lease has left: confirm the slot again first. */
                manager_arm_action_timer(m, 0);
                return;
        }
        if (manager_check_alerts(m))
                return;
        r = boot_id_read(id);
        if (r < 0) {
                log_error_errno(r, "Failed to read the boot ID, retrying: %m");
                (void) manager_retry_action(m);
                return;
        }
        (void) manager_dispatch(m, REBOOT_EVENT_REBOOT_ALLOWED, &(RebootEventData) { .boot_id = id });
}

static void on_lock_confirmed(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Manager *m = userdata;
        int r;

        if (!manager_renewal_is_current(m) || m->action != REBOOT_ACTION_CHECK_INHIBITORS)
                return;
        if (error == -ESTALE || error == -ENOTUNIQ) {
                (void) free_and_strdup(&m->lost_slot, m->state.lease);
                log_warning("Lock slot %s is not ours any more before the reboot: %s", strna(m->state.lease),
                            error == -ENOTUNIQ ? strna(holders) : "another node holds it, or nobody");
                (void) manager_dispatch(m, REBOOT_EVENT_LOCK_LOST, NULL);
                return;
        }
        if (error < 0) {
                log_warning_errno(error, "Failed to confirm lock slot %s before rebooting, retrying: %m",
                                  strna(m->state.lease));
                manager_set_waiting(m, "drained; cannot confirm the lock (%s), retrying",
                                    strerror(ERRNO_VALUE(error)));
                (void) manager_retry_action(m);
                return;
        }
        manager_arm_renew(m, m->config->lock_ttl_usec / 3);
        manager_hold_proven(m, m->renew_started);
        if (m->logind_busy)
                return;
        r = logind_check_shutdown_block(m->logind, on_inhibitors_checked, m);
        if (r < 0) {
                log_warning_errno(r, "Failed to ask logind about inhibitors, retrying: %m");
                (void) manager_retry_action(m);
                return;
        }
        m->logind_busy = true;
}

static void manager_check_inhibitors(Manager *m) {
        usec_t now = now_realtime(), mono = now_usec(CLOCK_MONOTONIC);
        char buf[64];
        int r;

        /* The back-off after a failed reboot request, drained and cordoned: read off the wall clock
         * once, then counted on the monotonic one, as in manager_phase_elapsed(). */
        if (m->retry_anchor_for != m->state.retry_after) {
                m->retry_anchor_for = m->state.retry_after;
                m->retry_at = mono + (m->state.retry_after > now ? m->state.retry_after - now : 0);
        }
        if (mono < m->retry_at) {
                manager_set_waiting(m, "reboot did not happen; next attempt at %s",
                                    format_clock(buf, sizeof buf, now + (m->retry_at - mono)));
                manager_arm_action_timer(m, m->retry_at - mono);
                return;
        }
        if (m->config->reboot_delay_usec > 0 && m->drained_at > 0 &&
            mono < m->drained_at + m->config->reboot_delay_usec) {
                manager_set_waiting(m, "drained; rebooting after the reboot delay");
                manager_arm_action_timer(m, m->drained_at + m->config->reboot_delay_usec - mono);
                return;
        }
        /* Waiting for dpkg costs no API calls: the slot is confirmed once it is done. */
        if (manager_package_manager_busy(m, "drained; "))
                return;
        /* Before going down, make sure the slot is still ours: a node that lost its lease (its
         * renewals failed for a whole TTL) must not reboot alongside the node that took it. */
        if (m->renew_busy) {
                manager_arm_action_timer(m, 200 * USEC_PER_MSEC);
                return;
        }
        r = manager_start_renew(m, on_lock_confirmed);
        if (r < 0) {
                log_warning_errno(r, "Failed to confirm the lock, retrying: %m");
                (void) manager_retry_action(m);
                return;
        }
        manager_set_waiting(m, "drained; confirming lock slot %s and checking inhibitors", strna(m->state.lease));
}

static void on_reboot_requested(Logind *l, int error, const char *message, void *userdata) {
        Manager *m = userdata;

        m->logind_busy = false;
        if (m->action != REBOOT_ACTION_REBOOT)
                return;
        if (error < 0) {
                _cleanup_free_ char *msg = strdup_printf("reboot request failed: %s",
                                                         message ?: strerror(ERRNO_VALUE(error)));
                log_event(LOG_ERR, MESSAGE_REBOOT_FAILED, "Reboot request %u of %u failed: %s",
                          m->state.reboot_attempts, m->policy.max_attempts, strna(msg));
                (void) manager_dispatch(m, REBOOT_EVENT_REBOOT_FAILED, &(RebootEventData) { .message = msg });
                return;
        }
        crash_point("reboot-requested");
        log_info("logind accepted the reboot request; waiting for the machine to go down.");
        (void) manager_dispatch(m, REBOOT_EVENT_REBOOT_REQUESTED, NULL);
}

static void manager_reboot(Manager *m) {
        _cleanup_free_ char *msg = NULL;
        int r;

        if (m->logind_busy)
                return;
        log_event(LOG_NOTICE, MESSAGE_REBOOTING, "Rebooting node %s (attempt %u of %u, boot %s), reason: %s.",
                  m->config->node_name, m->state.reboot_attempts, m->policy.max_attempts, m->state.boot_id,
                  m->state.reason ?: "reboot required");
        msg = strdup_printf("nodereboot is rebooting the node (reason: %s)", m->state.reason ?: "reboot required");
        manager_post_event(m, "Normal", "Rebooting", msg ?: "rebooting");

        r = logind_reboot(m->logind, on_reboot_requested, m);
        if (r < 0) {
                log_error_errno(r, "Failed to ask logind to reboot: %m");
                (void) manager_dispatch(m, REBOOT_EVENT_REBOOT_FAILED,
                                        &(RebootEventData) { .message = "could not call logind" });
                return;
        }
        m->logind_busy = true;
        manager_set_waiting(m, "asked logind to reboot (attempt %u of %u)", m->state.reboot_attempts,
                            m->policy.max_attempts);
}

static void on_shutdown_progress_checked(Logind *l, int error, bool in_progress, const char *what,
                                         void *userdata) {
        Manager *m = userdata;
        char t[FORMAT_TIMESPAN_MAX];

        m->logind_busy = false;
        if (m->action != REBOOT_ACTION_WAIT_REBOOT)
                return;
        if (error >= 0 && in_progress) {
                /* Delay inhibitors (kubelet's graceful node shutdown) or slow units hold the
                 * shutdown that is under way: it is no failed attempt, and a second request or a
                 * roll-back now would put the node back into service while it goes down. */
                log_notice("logind is still shutting the machine down %s after accepting the reboot; waiting.",
                           format_timespan(t, sizeof t, m->config->reboot_timeout_usec));
                manager_set_waiting(m, "reboot requested; logind is shutting the machine down (delay inhibitors)");
                m->reboot_deadline = now_usec(CLOCK_MONOTONIC) + m->config->reboot_timeout_usec;
                manager_arm_action_timer(m, m->config->reboot_timeout_usec);
                return;
        }
        if (error < 0)
                log_warning_errno(error, "Failed to ask logind whether the shutdown is under way, "
                                  "taking it as not: %m");
        {
                /* The machine is still up long after logind accepted, and logind is not shutting
                 * it down: the request was lost (a stuck job, a logind restart). */
                _cleanup_free_ char *msg = strdup_printf("the machine is still running %s after logind accepted the reboot",
                                                         format_timespan(t, sizeof t, m->config->reboot_timeout_usec));
                log_event(LOG_ERR, MESSAGE_REBOOT_FAILED, "Reboot did not happen: %s.", strna(msg));
                (void) manager_dispatch(m, REBOOT_EVENT_REBOOT_FAILED, &(RebootEventData) { .message = msg });
        }
}

static void manager_wait_reboot(Manager *m) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        char t[FORMAT_TIMESPAN_MAX];
        int r;

        if (m->reboot_deadline == 0)
                m->reboot_deadline = now + m->config->reboot_timeout_usec;
        if (now >= m->reboot_deadline) {
                if (m->logind_busy)
                        return;
                r = logind_check_shutdown_in_progress(m->logind, on_shutdown_progress_checked, m);
                if (r < 0) {
                        on_shutdown_progress_checked(m->logind, r, false, NULL, m);
                        return;
                }
                m->logind_busy = true;
                return;
        }
        manager_set_waiting(m, "reboot requested, waiting for the machine to go down (timeout %s)",
                            format_timespan(t, sizeof t, m->config->reboot_timeout_usec));
        manager_arm_action_timer(m, m->reboot_deadline - now);
}

/* A kubelet that has not reported for a long while after the boot: say so once, loudly, with
 * what the Node reports, so an operator looks (the slot stays held; see noderebootd(8)). */
static void manager_warn_kubelet_late(Manager *m, json_object *node, const char *why) {
        _cleanup_free_ char *msg = NULL;
        usec_t waiting = manager_phase_elapsed(m);
        char t[FORMAT_TIMESPAN_MAX];

        if (m->kubelet_late_warned || waiting < KUBELET_LATE_USEC)
                return;
        m->kubelet_late_warned = true;
        msg = strdup_printf("node rebooted %s ago (boot %s) and is still not back in service: %s; the Node "
                            "reports boot ID \"%s\", Ready %s",
                            format_timespan(t, sizeof t, waiting / USEC_PER_SEC * USEC_PER_SEC), m->boot_id, why,
                            strempty(json_get_string(node, "status.nodeInfo.bootID")),
                            node_is_ready(node) ? "True" : "not True");
        log_warning("%s.", strna(msg));
        manager_post_event(m, "Warning", "KubeletNotBack", msg ?: "kubelet of this boot not back");
}

/* [Recovery] WaitForPodsSelector=: the Node is Ready in this boot, but the node goes back into
 * service only once the matching pods are Ready in this boot too. Past [Recovery] TimeoutSec= it
 * stays cordoned with the slot held, so the rollout stops instead of spreading a broken node image;
 * the gate keeps watching, and the node heals itself when the pods come up. */
static void on_recovery_gate(RecoveryGate *g, bool ready, bool timed_out, const char *message, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *msg = NULL;
        char t[FORMAT_TIMESPAN_MAX];

        if (m->action != REBOOT_ACTION_WAIT_READY)
                return;
        if (ready) {
                log_info("The pods matching [Recovery] WaitForPodsSelector=%s are Ready in this boot.",
                         m->config->recovery_pod_selector);
                manager_run_action(m);  /* reads the Node once more, then NODE_READY */
                return;
        }
        format_timespan(t, sizeof t, m->config->recovery_timeout_usec);
        if (timed_out && !m->recovery_warned) {
                m->recovery_warned = true;
                msg = strdup_printf("pods matching [Recovery] WaitForPodsSelector=%s are not Ready %s after the node "
                                    "came back: %s; the node stays cordoned and lock slot %s held until they are",
                                    m->config->recovery_pod_selector, t, message, strna(m->state.lease));
                log_warning("%s.", strna(msg));
                manager_post_event(m, "Warning", "RecoveryTimedOut", msg ?: "recovery timed out");
        }
        manager_set_waiting(m, "rebooted; %s%s%sthe node stays cordoned until the pods matching "
                            "WaitForPodsSelector=%s are Ready in this boot: %s",
                            timed_out ? "recovery timed out after " : "", timed_out ? t : "", timed_out ? ", " : "",
                            m->config->recovery_pod_selector, message);
}

/* Whether the health gate lets the Node, Ready in this boot, back into service; starts it first. */
static bool manager_recovery_gate_open(Manager *m, usec_t boot_time) {
        int r;

        if (!m->config->recovery_pod_selector || recovery_gate_is_ready(m->recovery_gate))
                return true;
        if (m->recovery_gate)
                return false;
        /* The earlier of the two readings: a clock stepped forward since the daemon started (NTP
         * after a boot without RTC) must not make containers of this boot look older than it. */
        r = recovery_gate_new(&m->recovery_gate, m->event, m->client, m->config->node_name,
                              m->config->recovery_pod_selector,
                              m->boot_time > 0 ? MIN(boot_time, m->boot_time) : boot_time,
                              m->config->recovery_timeout_usec, on_recovery_gate, m);
        if (r < 0) {
                log_error_errno(r, "Failed to watch the pods matching [Recovery] WaitForPodsSelector=%s: %m",
                                m->config->recovery_pod_selector);
                (void) manager_retry_action(m);
                return false;
        }
        manager_set_waiting(m, "rebooted; Node %s is Ready, waiting for the pods matching WaitForPodsSelector=%s",
                            m->config->node_name, m->config->recovery_pod_selector);
        return false;
}

static void on_node_ready_checked(KubeClient *c, int error, json_object *node, void *userdata) {
        Manager *m = userdata;
        usec_t boot_time;
        const char *why;

        m->node_busy = false;
        if (m->action != REBOOT_ACTION_WAIT_READY)
                return;
        if (error < 0) {
                /* Never give up after the boot: the API may be unreachable for hours (network, CNI,
                 * API server down); the node stays ours to bring back. */
                usec_t b = manager_retry_action(m);
                char t[FORMAT_TIMESPAN_MAX];
                log_warning_errno(error, "Failed to read Node %s after the reboot, retrying in %s: %m",
                                  m->config->node_name, format_timespan(t, sizeof t, b));
                manager_set_waiting(m, "rebooted; cannot reach the API (%s), retrying",
                                    strerror(ERRNO_VALUE(error)));
                return;
        }
        /* Read again each time: NTP may have stepped the clock since the boot. */
        if (boot_time_read(&boot_time) < 0)
                boot_time = m->boot_time;
        if (!node_kubelet_is_back(node, m->boot_id, boot_time, &why)) {
                /* Until the kubelet of this boot speaks, the Node's Ready condition is the one left
                 * from before the reboot: the node stays cordoned and the slot stays ours. */
                m->action_failures = 0;
                manager_set_waiting(m, "rebooted; %s", why);
                manager_warn_kubelet_late(m, node, why);
                manager_arm_action_timer(m, READY_RECHECK_USEC);
                return;
        }
        m->action_failures = 0;
        if (!manager_recovery_gate_open(m, boot_time))
                return;
        (void) manager_dispatch(m, REBOOT_EVENT_NODE_READY,
                                &(RebootEventData) { .kernel = node_kernel_version(node) });
}

static void manager_wait_ready(Manager *m) {
        int r;

        if (m->node_busy)
                return;
        r = node_get(m->client, m->config->node_name, on_node_ready_checked, m);
        if (r < 0) {
                log_error_errno(r, "Failed to read the Node: %m");
                (void) manager_retry_action(m);
                return;
        }
        m->node_busy = true;
        if (!m->waiting)
                manager_set_waiting(m, "rebooted; checking that the kubelet of this boot reports Node %s Ready",
                                    m->config->node_name);
}

static void manager_restore(Manager *m);

static void manager_restore_step_failed(Manager *m, int error, const char *message, const char *what) {
        usec_t b = manager_retry_action(m);
        char t[FORMAT_TIMESPAN_MAX];

        log_warning_errno(error, "Failed to %s, retrying in %s: %s", what, format_timespan(t, sizeof t, b),
                          message ?: strerror(ERRNO_VALUE(error)));
        manager_set_waiting(m, "cannot %s (%s), retrying", what, message ?: strerror(ERRNO_VALUE(error)));
}

static void manager_restore_step_done(Manager *m) {
        m->action_failures = 0;
        m->restore_step++;
        manager_restore(m);
}

/* The API server refused our uncordon (RBAC, an admission policy): if the Node is schedulable
 * anyway, the cordon it would undo never happened (it was refused the same way) or was undone by
 * someone else, and there is nothing left to undo. A Node that is unschedulable keeps the slot
 * held: it is out of service, and releasing would let one more node go. */
static void on_uncordon_refused_checked(KubeClient *c, int error, json_object *node, void *userdata) {
        Manager *m = userdata;

        m->node_busy = false;
        if (m->action != REBOOT_ACTION_RESTORE || m->restore_step != RESTORE_UNCORDON)
                return;
        if (error >= 0 && !node_is_unschedulable(node)) {
                log_notice("Node %s is schedulable already; nothing to uncordon.", m->config->node_name);
                manager_restore_step_done(m);
                return;
        }
        manager_restore_step_failed(m, error < 0 ? error : -EACCES,
                                    error < 0 ? NULL : m->restore_refusal, "uncordon the node");
}

static void on_restore_step_done(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Manager *m = userdata;
        static const char *const what[] = {
                [RESTORE_UNCORDON] = "uncordon the node",
                [RESTORE_MARKS] = "remove our marks from the node",
        };
        const char *message = error < 0 ? node_refusal(response) : NULL;
        bool refused = message;
        _cleanup_free_ char *marks_status = m->restore_step == RESTORE_MARKS || m->restore_combined ?
                TAKE_PTR(m->marks_status) : NULL;
        bool combined = m->restore_combined;
        int r;

        m->node_busy = false;
        m->restore_combined = false;
        manager_publish_status_soon(m);         /* whatever the marks did not carry */
        if (m->action != REBOOT_ACTION_RESTORE)
                return;
        if (error < 0 && error != -ENOENT) {
                if (refused && marks_status) {
                        /* An admission policy that does not know the status or its label (older than
                         * this daemon): the marks go without them, the uncordon too. */
                        log_warning("The API server refused the status annotation with the marks on Node %s (%s); "
                                    "removing the marks without it (apply this version's "
                                    "packaging/kubernetes/admission-policy.yaml).", m->config->node_name, message);
                        free(m->publish_refused);
                        m->publish_refused = TAKE_PTR(marks_status);
                        manager_restore(m);
                        return;
                }
                if (refused && combined) {
                        /* An admission policy that does not know our marks: the uncordon matters. */
                        log_warning("The API server refused the uncordon of Node %s with the removal of our marks "
                                    "(%s); uncordoning alone.", m->config->node_name, message);
                        m->restore_plain = true;
                        manager_restore(m);
                        return;
                }
                if (refused && m->restore_step == RESTORE_UNCORDON) {
                        (void) free_and_strdup(&m->restore_refusal, message);
                        r = node_get(m->client, m->config->node_name, on_uncordon_refused_checked, m);
                        if (r >= 0) {
                                m->node_busy = true;
                                return;
                        }
                }
                if (refused && m->restore_step == RESTORE_MARKS) {
                        /* Annotations only: not worth holding a slot the fleet waits for. */
                        log_warning("The API server refused to remove our marks from Node %s, leaving them: %s",
                                    m->config->node_name, message);
                        manager_restore_step_done(m);
                        return;
                }
                manager_restore_step_failed(m, error, message, what[m->restore_step]);
                return;
        }
        if (m->restore_step == RESTORE_UNCORDON) {
                crash_point("uncordoned");
                log_info("Uncordoned node %s.", m->config->node_name);
        }
        if ((m->restore_step == RESTORE_MARKS || combined) && marks_status) {
                free(m->published);
                m->published = TAKE_PTR(marks_status);
                m->published_ahead = true;
        }
        if (combined)
                m->restore_step++;      /* the marks went with the uncordon */
        manager_restore_step_done(m);
}

static void on_lock_released(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Manager *m = userdata;

        m->lock_busy = false;
        if (m->action != REBOOT_ACTION_RESTORE)
                return;
        if (error < 0) {
                manager_restore_step_failed(m, error, NULL, "release the lock");
                return;
        }
        crash_point("released");
        log_event(LOG_NOTICE, MESSAGE_LOCK_RELEASED, "Released lock slot %s/%s.", m->config->lock_namespace,
                  strna(m->state.lease));
        manager_restore_step_done(m);
}

static char *manager_current_reason(Manager *m);

/* The status the node will publish once it is restored, when that is idle (it goes with the removal
 * of the marks, one patch), else NULL. */
static char *manager_status_after_restore(Manager *m) {
        _cleanup_(reboot_state_done) RebootState next;
        RebootAction action;

        reboot_state_init(&next);
        if (!m->config->annotate_nodes || m->publishing || m->publish_refused || manager_reboot_required(m) ||
            reboot_machine_step(&m->state, REBOOT_EVENT_RESTORED, NULL, &m->policy, now_realtime(), &next, &action) < 0 ||
            next.phase != REBOOT_PHASE_IDLE)
                return NULL;
        return published_status_format(&next, m->config->lock_name, NULL, NULL);
}

/* Removes the cycle's marks (and, when the node will be idle, publishes that: one patch), with the
 * uncordon when uncordon is true. */
static int manager_unmark(Manager *m, bool uncordon) {
        bool recovered = m->state.phase == REBOOT_PHASE_RECOVERING;
        char now[FORMAT_RFC3339_MAX];
        _cleanup_free_ char *status = manager_status_after_restore(m);
        _cleanup_json_ json_object *patch = NULL;
        /* A NULL value removes the key; the list ends at the first NULL key. */
        char *pairs[] = {
                (char *) PUBLISHED_STATUS_ANNOTATION, status,
                (char *) NODE_ANNOTATION_LAST_REBOOT, format_rfc3339(now, sizeof now, now_realtime(), false),
                (char *) NODE_ANNOTATION_IN_PROGRESS, NULL,
                (char *) NODE_ANNOTATION_CORDONED, NULL,
                (char *) NODE_ANNOTATION_REASON, NULL,
                NULL, NULL,
        };
        char *labels[] = { (char *) PUBLISHED_STATE_LABEL, (char *) "idle", NULL };
        char **first = pairs + (status ? 0 : 2) + (recovered ? 0 : 2);
        int r;

        if (status && !recovered) {
                /* (the status pair stands where the last-reboot one would) */
                pairs[2] = pairs[0];
                pairs[3] = pairs[1];
                first = pairs + 2;
        }
        if (uncordon)
                r = node_unschedulable_patch(false, true, &patch);
        else {
                patch = json_object_new_object();
                r = patch ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = node_patch_add_metadata(patch, "annotations", first);
        if (r >= 0 && status)
                r = node_patch_add_metadata(patch, "labels", labels);
        if (r >= 0)
                r = node_patch_merge(m->client, m->config->node_name, patch, on_restore_step_done, m);
        if (r < 0)
                return r;
        if (recovered && !m->restore_labeled) {
                manager_label_node(m, m->config->post_reboot_labels);
                m->restore_labeled = true;
        }
        free(m->marks_status);
        m->marks_status = TAKE_PTR(status);
        m->restore_combined = uncordon;
        m->node_busy = true;
        return 0;
}

static void manager_restore(Manager *m) {
        bool recovered = m->state.phase == REBOOT_PHASE_RECOVERING;
        int r;

        switch (m->restore_step) {
        case RESTORE_UNCORDON:
                /* Only what we did is undone: a node that was unschedulable before we came stays so. */
                if (!m->state.cordoned || m->state.node_was_unschedulable) {
                        m->restore_step++;
                        manager_restore(m);
                        return;
                }
                if (m->node_busy)
                        return;
                manager_set_waiting(m, "uncordoning node %s", m->config->node_name);
                if (m->config->annotate_nodes && !m->restore_plain) {
                        /* The marks go with the uncordon: one patch, not two. */
                        r = manager_unmark(m, true);
                        if (r >= 0)
                                return;
                }
                r = node_set_unschedulable(m->client, m->config->node_name, false, on_restore_step_done, m);
                if (r < 0) {
                        manager_restore_step_failed(m, r, NULL, "uncordon the node");
                        return;
                }
                m->node_busy = true;
                return;

        case RESTORE_MARKS:
                /* Before DRAINING (recorded before any write to the Node) nothing was marked: a
                 * cycle given up or cancelled while pending or locked leaves the Node untouched. */
                if (!m->state.cordoned) {
                        m->restore_step++;
                        manager_restore(m);
                        return;
                }
                if (m->node_busy)
                        return;
                r = manager_unmark(m, false);
                if (r < 0)
                        manager_restore_step_failed(m, r, NULL, "remove our marks from the node");
                return;

        case RESTORE_RELEASE_DELAY:
                m->restore_step++;
                if (recovered && m->config->lock_release_delay_usec > 0 && m->state.lease) {
                        char t[FORMAT_TIMESPAN_MAX];
                        manager_set_waiting(m, "holding lock slot %s for the release delay (%s)", m->state.lease,
                                            format_timespan(t, sizeof t, m->config->lock_release_delay_usec));
                        manager_arm_action_timer(m, m->config->lock_release_delay_usec);
                        return;
                }
                manager_restore(m);
                return;

        case RESTORE_RELEASE:
                if (!m->state.lease) {
                        m->restore_step++;
                        manager_restore(m);
                        return;
                }
                if (m->lock_busy) {
                        manager_arm_action_timer(m, 200 * USEC_PER_MSEC);
                        return;
                }
                manager_set_waiting(m, "releasing lock slot %s", m->state.lease);
                manager_unwatch_held(m);   /* our own release is no loss */
                r = lock_release(m->lock, m->state.lease, on_lock_released, m);
                if (r < 0) {
                        manager_restore_step_failed(m, r, NULL, "release the lock");
                        return;
                }
                m->lock_busy = true;
                return;

        case RESTORE_DONE:
        default:
                if (recovered) {
                        _cleanup_free_ char *kernels = manager_kernel_change(m), *msg = NULL;

                        log_event(LOG_NOTICE, MESSAGE_RECOVERED,
                                  "Node %s rebooted and is back in service (boot %s%s%s).", m->config->node_name,
                                  m->boot_id, kernels ? ", kernel " : "", strempty(kernels));
                        msg = strdup_printf("nodereboot rebooted the node%s%s%s; it is back in service",
                                            kernels ? " (kernel " : "", strempty(kernels), kernels ? ")" : "");
                        manager_post_event(m, "Normal", "Rebooted",
                                           msg ?: "nodereboot rebooted the node; it is back in service");
                } else if (!m->state.cordoned) {
                        /* Given back before the Node was touched: a pause, a cancel, a sentinel
                         * that went away. Nothing was abandoned. */
                        log_info("Gave lock slot %s back before touching node %s.", strna(m->state.lease),
                                 m->config->node_name);
                } else {
                        log_event(LOG_WARNING, MESSAGE_ROLLED_BACK,
                                  "Reboot cycle of node %s given up%s%s; the node is back in service.",
                                  m->config->node_name, m->state.last_error ? ": " : "",
                                  strempty(m->state.last_error));
                        if (m->state.last_error)
                                manager_post_event(m, "Warning", "RebootAbandoned", m->state.last_error);
                }
                /* Required still (or again): the sentinel, the command or a request made meanwhile. */
                _cleanup_free_ char *reason = manager_current_reason(m);
                (void) manager_dispatch(m, REBOOT_EVENT_RESTORED, &(RebootEventData) {
                                .reason = reason,
                                .sentinel_present = manager_reboot_required(m),
                                .by_request = manager_required_by_request_only(m),
                        });
                return;
        }
}

static void manager_run_action(Manager *m) {
        m->action_timer = sd_event_source_disable_unref(m->action_timer) ;

        switch (m->action) {
        case REBOOT_ACTION_NONE:
                break;
        case REBOOT_ACTION_ACQUIRE:
                manager_acquire(m);
                break;
        case REBOOT_ACTION_READ_NODE:
                manager_read_node(m);
                break;
        case REBOOT_ACTION_DRAIN:
                manager_drain(m);
                break;
        case REBOOT_ACTION_CHECK_INHIBITORS:
                manager_check_inhibitors(m);
                break;
        case REBOOT_ACTION_REBOOT:
                manager_reboot(m);
                break;
        case REBOOT_ACTION_WAIT_REBOOT:
                manager_wait_reboot(m);
                break;
        case REBOOT_ACTION_WAIT_READY:
                manager_wait_ready(m);
                break;
        case REBOOT_ACTION_RESTORE:
                manager_restore(m);
                break;
        default:
                log_error("Unknown action %d, ignoring.", m->action);
        }
}

/* ---- the state machine driver ---------------------------------------------------------- */

/* While we hold a slot: renew it (also right after a restart that resumed holding one) and watch
 * it, except while our own release of it is under way. */
/* The Lock writes and checks the machine ID the held slot was taken under (recorded in the state
 * file), else ours: a machine ID that changed across the reboot (stateless images) must not make
 * our own slot look like another host's. */
static void manager_sync_lock_machine_id(Manager *m) {
        const char *want = m->machine_id[0] ? m->machine_id : NULL;
        int r;

        if (reboot_phase_holds_lock(m->state.phase) && m->state.lease && m->state.lease_machine_id)
                want = m->state.lease_machine_id;
        if (streq_ptr(want, m->lock_machine_id))
                return;
        r = lock_set_machine_id(m->lock, want);
        if (r < 0) {
                log_warning_errno(r, "Failed to set the machine ID of the lock, ignoring: %m");
                return;
        }
        if (want && m->machine_id[0] && !streq(want, m->machine_id))
                log_notice("The machine ID changed since lock slot %s was taken (%s, now %s); holding it under the "
                           "old one until it is released.", strna(m->state.lease), want, m->machine_id);
        if (free_and_strdup(&m->lock_machine_id, want) < 0)
                log_oom();
}

static void manager_update_hold(Manager *m) {
        manager_sync_lock_machine_id(m);
        if (!reboot_phase_holds_lock(m->state.phase) || !m->state.lease) {
                m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
                manager_hold_forget(m);
                manager_unwatch_held(m);
                return;
        }
        if (!m->renew_timer && !m->renew_busy)
                manager_arm_renew(m, m->config->lock_ttl_usec / 3);
        if (!(m->action == REBOOT_ACTION_RESTORE && m->restore_step >= RESTORE_RELEASE))
                manager_watch_held(m);
}

/* "A → B" (or "A, unchanged") from the cycle's kernel versions; NULL when either is unknown. */
static char *manager_kernel_change(Manager *m) {
        if (!m->state.kernel_before || !m->state.kernel_after)
                return NULL;
        if (streq(m->state.kernel_before, m->state.kernel_after))
                return strdup_printf("%s, unchanged", m->state.kernel_after);
        return strdup_printf("%s → %s", m->state.kernel_before, m->state.kernel_after);
}

static void manager_notify(Manager *m, NotifyEvent event) {
        NotifyFacts facts = {
                .event = event,
                .node = m->config->node_name,
                .state = reboot_phase_to_string(m->state.phase),
                .reason = m->state.reason,
                .error = m->state.last_error,
                .waiting = m->waiting,
                .kernel_before = m->state.kernel_before,
                .kernel_after = m->state.kernel_after,
                .time = now_realtime(),
                .since = m->state.pending_since,
        };

        if (notifier_wants(m->notifier, event))
                notifier_send(m->notifier, &facts);
}

static int on_blocked_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->blocked_timer = sd_event_source_disable_unref(m->blocked_timer);
        if (m->state.phase != REBOOT_PHASE_PENDING || m->blocked_notified_for == m->state.pending_since)
                return 0;
        m->blocked_notified_for = m->state.pending_since;
        log_notice("Pending for longer than [Notify] BlockedTooLongSec=; notifying.");
        manager_notify(m, NOTIFY_BLOCKED_TOO_LONG);
        return 0;
}

/* While pending: a timer for pending_since + BlockedTooLongSec (by the wall clock, like
 * pending_since; also across a restart). */
static void manager_update_blocked_timer(Manager *m) {
        usec_t at;
        int r;

        if (m->state.phase != REBOOT_PHASE_PENDING || !notifier_wants(m->notifier, NOTIFY_BLOCKED_TOO_LONG) ||
            m->state.pending_since == 0 || m->blocked_notified_for == m->state.pending_since) {
                m->blocked_timer = sd_event_source_disable_unref(m->blocked_timer);
                return;
        }
        at = usec_add(m->state.pending_since, m->config->notify_blocked_too_long_usec);
        if (m->blocked_timer) {
                r = sd_event_source_set_time(m->blocked_timer, at);
                if (r >= 0)
                        return;
                m->blocked_timer = sd_event_source_disable_unref(m->blocked_timer);
        }
        r = sd_event_add_time(m->event, &m->blocked_timer, CLOCK_REALTIME, at, USEC_PER_SEC, on_blocked_timer, m);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the blocked-too-long notification: %m");
}

/* The events of the transition old -> the current state. */
static void manager_notify_transition(Manager *m, RebootPhase old, unsigned old_failed_cycles, unsigned old_loops) {
        RebootPhase now = m->state.phase;

        if (now == REBOOT_PHASE_PENDING && m->state.stats.loops > old_loops) {
                char buf[64];
                _cleanup_free_ char *msg = strdup_printf(
                                "a reboot is required again within [Reboot] LoopGuardSec= of the last one (%u time%s "
                                "in a row, reason: %s): not rebooting before %s", m->state.stats.loops,
                                m->state.stats.loops == 1 ? "" : "s", strna(m->state.reason),
                                format_clock(buf, sizeof buf, m->state.retry_after));
                log_warning("Reboot loop stopped: %s.", strna(msg));
                manager_post_event(m, "Warning", "RebootLoopStopped", msg ?: "reboot loop stopped");
        }

        if (now == REBOOT_PHASE_DRAINING && old != REBOOT_PHASE_DRAINING)
                manager_notify(m, NOTIFY_DRAIN_START);
        else if (now == REBOOT_PHASE_REBOOTING && old == REBOOT_PHASE_DRAINING)
                manager_notify(m, NOTIFY_REBOOT);
        else if (old == REBOOT_PHASE_RECOVERING && (now == REBOOT_PHASE_IDLE || now == REBOOT_PHASE_PENDING))
                manager_notify(m, NOTIFY_BACK_IN_SERVICE);
        else if (now == REBOOT_PHASE_ROLLING_BACK && m->state.stats.failed_cycles > old_failed_cycles)
                manager_notify(m, NOTIFY_FAILED);
        manager_update_blocked_timer(m);
}

static int manager_dispatch(Manager *m, RebootEvent event, const RebootEventData *data) {
        RebootState next;
        RebootAction action;
        RebootPhase old = m->state.phase;
        unsigned old_failed_cycles = m->state.stats.failed_cycles, old_loops = m->state.stats.loops;
        int r;

        if (m->stopping)
                return 0;       /* the next start resumes from the saved state */
        reboot_state_init(&next);
        r = reboot_machine_step(&m->state, event, data, &m->policy, now_realtime(), &next, &action);
        if (r < 0) {
                log_error_errno(r, "Failed to compute the next state: %m");
                return sd_event_exit(m->event, r);
        }

        log_debug("Event %s in %s → %s, action %s.", reboot_event_to_string(event),
                  reboot_phase_to_string(old), reboot_phase_to_string(next.phase),
                  reboot_action_to_string(action));

        if (r > 0) {
                /* Write-ahead: the new state is on disk before anything acts on it. If it cannot
                 * be written, stop: systemd restarts us and we resume from the last saved state. */
                r = state_file_save(m->state_dir, &next);
                if (r == -EINVAL || r == -ERANGE || r == -EBADMSG || r == -EFBIG) {
                        /* A state the next start would reject as corrupt: never written. Keep the
                         * one we have, on disk and here; the event is dropped. */
                        reboot_state_done(&next);
                        log_error_errno(r, "Refusing to save a state %s/state could not be read back from (event %s), "
                                        "keeping state %s: %m", m->state_dir, reboot_event_to_string(event),
                                        reboot_phase_to_string(m->state.phase));
                        return r;
                }
                if (r < 0) {
                        reboot_state_done(&next);
                        log_error_errno(r, "Failed to save the state to %s/state, stopping: %m", m->state_dir);
                        return sd_event_exit(m->event, r);
                }
                reboot_state_done(&m->state);
                m->state = next;
                /* A phase's monotonic count starts now, not at its first use: a clock step in
                 * between would count as time spent in it. */
                (void) manager_phase_elapsed(m);
                {
                        char point[64];
                        snprintf(point, sizeof point, "saved:%s", reboot_phase_to_string(m->state.phase));
                        crash_point(point);
                }
        } else
                reboot_state_done(&next);

        if (m->state.phase != old) {
                log_set_context(NULL, reboot_phase_to_string(m->state.phase));
                log_event(LOG_NOTICE, MESSAGE_STATE_CHANGED, "State %s → %s.", reboot_phase_to_string(old),
                          reboot_phase_to_string(m->state.phase));
                if (old == REBOOT_PHASE_IDLE && m->state.phase == REBOOT_PHASE_PENDING)
                        log_event(LOG_NOTICE, MESSAGE_REBOOT_REQUIRED, "Reboot required (reason: %s).",
                                  m->state.reason ?: "not given");
                manager_update_pending_watchers(m);
                manager_notify_transition(m, old, old_failed_cycles, old_loops);
                if (old == REBOOT_PHASE_PENDING || m->state.phase == REBOOT_PHASE_IDLE) {
                        /* kured removes its taint when no reboot is needed; after a restart we
                         * do not know whether we set it, so idle always cleans up. */
                        if (m->state.phase == REBOOT_PHASE_IDLE && !isempty(m->config->prefer_no_schedule_taint))
                                m->taint_set = true;
                        manager_set_taint(m, false);
                }
        }

        if (action == REBOOT_ACTION_NONE) {
                if (m->state.phase != old) {
                        manager_stop_action(m);
                        manager_set_waiting(m, NULL);
                }
                manager_update_hold(m);
                manager_update_status(m);
                return 0;
        }

        if (action != m->action || m->state.phase != old) {
                manager_stop_action(m);
                m->action = action;
                m->restore_step = RESTORE_UNCORDON;
                m->restore_plain = false;
                m->restore_labeled = false;
                manager_set_waiting(m, NULL);
        }
        manager_update_hold(m);
        manager_run_action(m);
        manager_update_status(m);
        return 0;
}

/* ---- start-up -------------------------------------------------------------------------- */

/* The packages behind the sentinel; only names that pass Debian's grammar, so the reason is
 * printable ASCII wherever it goes (journal, STATUS=, state file, Node annotation). */
static char *manager_read_reason(Manager *m) {
        _cleanup_free_ char *reason = NULL;
        unsigned n_invalid = 0;
        int r;

        r = sentinel_read_reason(m->config->sentinel_path, &reason, &n_invalid);
        if (r < 0) {
                log_warning_errno(r, "Failed to read %s.pkgs, ignoring: %m", m->config->sentinel_path);
                return NULL;
        }
        if (n_invalid > 0)
                log_warning("Ignored %u lines of %s.pkgs that are not package names.", n_invalid,
                            m->config->sentinel_path);
        return TAKE_PTR(reason);
}

/* Either source may require the reboot: the sentinel file, or [Sentinel] Command=. Until the
 * command first answers (at start), a cycle it began in this boot is taken to be still wanted:
 * a restart of the daemon must not drop it (manager_acquire() waits for the answer). */
static bool manager_required_by_request_only(Manager *m) {
        return m->request_seen && !m->sentinel_seen && !m->command_required;
}

static bool manager_reboot_required(Manager *m) {
        if (m->sentinel_seen || m->command_required || m->request_seen)
                return true;
        return m->command && !m->command_known &&
                (m->state.phase == REBOOT_PHASE_PENDING || m->state.phase == REBOOT_PHASE_LOCKED ||
                 m->state.phase == REBOOT_PHASE_DRAINING);
}

/* The reason the command gives: its program, printable ASCII only (it goes to the Node, the
 * Events and the notifications; its arguments stay on this machine). */
static char *manager_command_reason(Manager *m) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *r = NULL;

        if (strv_split_command(m->config->sentinel_command, &argv) < 0)
                return NULL;
        r = strdup_printf("reported by [Sentinel] Command=%s", argv[0]);

        if (!r)
                return NULL;
        for (char *p = r; *p; p++)
                if (*p < ' ' || *p > '~')
                        *p = '?';
        if (strlen(r) > 256)
                strcpy(r + 253, "...");
        return TAKE_PTR(r);
}

/* Why a reboot is required now, from the first source that says so; NULL when none does. */
static char *manager_current_reason(Manager *m) {
        if (m->sentinel_seen)
                return manager_read_reason(m);
        if (m->command_required)
                return manager_command_reason(m);
        if (m->request_seen)
                return strdup(m->request_reason);
        return NULL;
}

/* A source of the requirement (sentinel, command, request) changed: the machine hears whether a
 * reboot is required now, by whom, and why (reason NULL: the one recorded stands). */
static void manager_dispatch_required(Manager *m, RebootEvent event, const char *reason) {
        (void) manager_dispatch(m, event, &(RebootEventData) {
                        .sentinel_present = manager_reboot_required(m),
                        .by_request = manager_required_by_request_only(m),
                        .reason = reason,
                });
}

static void on_sentinel(Sentinel *s, bool present, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *reason = NULL;

        if (present && m->sentinel_seen)
                log_info("Package list %s.pkgs changed.", m->config->sentinel_path);
        else
                log_info("Sentinel %s %s.", m->config->sentinel_path, present ? "appeared" : "disappeared");
        m->sentinel_seen = present;
        reason = manager_current_reason(m);
        manager_dispatch_required(m, REBOOT_EVENT_SENTINEL, reason);
}

static void on_command(SentinelCommand *c, CommandVerdict verdict, const char *output, const char *message,
                       void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *reason = NULL;
        bool was_known = m->command_known, was_required = m->command_required;

        if (verdict == COMMAND_FAILED) {
                /* Never a reboot: the last answer stands, and the error shows. */
                size_t n = strcspn(output, "\n");

                log_warning("[Sentinel] Command=%s failed: %s%s%.*s", m->config->sentinel_command, message,
                            n > 0 ? "; it printed: " : "", (int) MIN(n, (size_t) 200), output);
                if (!streq_ptr(m->command_error, message))
                        (void) free_and_strdup(&m->command_error, message);
                manager_update_status(m);
                return;
        }
        if (m->command_error)
                log_info("[Sentinel] Command=%s works again.", m->config->sentinel_command);
        m->command_error = mfree(m->command_error);
        m->command_known = true;
        m->command_required = verdict == COMMAND_REQUIRED;
        if (was_known && was_required == m->command_required) {
                manager_update_status(m);
                return;
        }
        log_info("[Sentinel] Command=%s says a reboot is %s.", m->config->sentinel_command,
                 m->command_required ? "required" : "not required");
        reason = manager_current_reason(m);
        manager_dispatch_required(m, REBOOT_EVENT_SENTINEL, reason);
}

/* noderebootctl request: whether a request of this boot is there (host/reboot-request.h). One of
 * an earlier boot was done by that boot's end, whoever rebooted: it is removed. A file that is not
 * a request is left for the operator to look at, and logged. Returns whether request_seen changed. */
static bool manager_read_request(Manager *m) {
        _cleanup_(reboot_request_done) RebootRequest req = {};
        _cleanup_free_ char *error = NULL;
        bool was = m->request_seen;
        int r;

        m->request_seen = false;
        r = reboot_request_read(m->state_dir, &req, &error);
        if (r == -ENOENT)
                return was;
        if (r == -EBADMSG) {
                log_warning("Ignoring %s/" REBOOT_REQUEST_FILE ", which is not a reboot request: %s "
                            "(noderebootctl request writes it; noderebootctl cancel removes it).",
                            m->state_dir, strna(error));
                return was;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to read %s/" REBOOT_REQUEST_FILE ", ignoring: %m", m->state_dir);
                return was;
        }
        if (!streq(req.boot_id, m->boot_id)) {
                log_info("The reboot requested%s%s in boot %s is done (this is boot %s); removing the request.",
                         req.reason ? ": " : "", strempty(req.reason), req.boot_id, m->boot_id);
                r = reboot_request_remove(m->state_dir);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove %s/" REBOOT_REQUEST_FILE ": %m", m->state_dir);
                return was;
        }
        free(m->request_reason);
        m->request_reason = req.reason ? strdup_printf("requested: %s", req.reason) : strdup("requested");
        if (!m->request_reason) {
                log_oom();
                return was;
        }
        m->request_seen = true;
        m->request_ignores_window = req.ignore_window;
        return !was;
}

static void on_request(Sentinel *s, bool present, void *userdata) {
        Manager *m = userdata;
        bool was = m->request_seen;

        _cleanup_free_ char *old_reason = m->request_reason ? strdup(m->request_reason) : NULL;

        (void) manager_read_request(m);
        if (was == m->request_seen) {
                /* Requested again with another reason: the cycle it began says the new one. */
                if (manager_required_by_request_only(m) && !streq_ptr(old_reason, m->request_reason)) {
                        log_info("Reboot requested again with noderebootctl (reason: %s).", m->request_reason);
                        manager_dispatch_required(m, REBOOT_EVENT_SENTINEL, m->request_reason);
                }
                return;
        }
        if (m->request_seen)
                log_info("Reboot requested with noderebootctl (reason: %s%s).", m->request_reason,
                         m->request_ignores_window ? ", outside the maintenance window too" : "");
        else
                log_info("The reboot requested with noderebootctl was withdrawn.");
        /* (with the sentinel or the command there too, their reason stands) */
        manager_dispatch_required(m, REBOOT_EVENT_SENTINEL,
                                  manager_required_by_request_only(m) ? m->request_reason : NULL);
}

static void manager_resume(Manager *m) {
        _cleanup_free_ char *reason = NULL;
        bool present = sentinel_present(m->sentinel);
        bool same_boot = m->state.boot_id[0] && streq(m->state.boot_id, m->boot_id);

        m->sentinel_seen = present;
        (void) manager_read_request(m);
        reason = manager_current_reason(m);
        present = manager_reboot_required(m);
        log_info("Resuming in state %s (%s boot, sentinel %s).", reboot_phase_to_string(m->state.phase),
                 m->state.boot_id[0] ? (same_boot ? "same" : "new") : "no recorded",
                 present ? "present" : "absent");
        (void) manager_dispatch(m, REBOOT_EVENT_START, &(RebootEventData) {
                        .sentinel_present = present,
                        .by_request = manager_required_by_request_only(m),
                        .same_boot = same_boot,
                        .boot_time = m->boot_time,
                        .reason = reason,
                });
        /* Pending for longer than BlockedTooLongSec= already: the daemon that ran then sent it
         * (a restart, an upgrade); not again. */
        if (m->state.phase == REBOOT_PHASE_PENDING && m->state.pending_since > 0 &&
            now_realtime() >= usec_add(m->state.pending_since, m->config->notify_blocked_too_long_usec))
                m->blocked_notified_for = m->state.pending_since;
        manager_update_blocked_timer(m);
}

/* An acquire asked for while the start-up lookup was in flight waited for it (lock_busy): run it
 * now, or the node would wait for the periodic re-check. */
static void manager_acquire_if_asked(Manager *m) {
        if (!m->lock_again)
                return;
        m->lock_again = false;
        if (m->action == REBOOT_ACTION_ACQUIRE)
                manager_acquire(m);
}

static void on_own_lease_found(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Manager *m = userdata;

        m->lock_busy = false;
        if (error < 0) {
                log_warning_errno(error, "Failed to look for a lock slot held under our name, ignoring: %m");
                manager_acquire_if_asked(m);
                return;
        }
        if (!slot || streq_ptr(slot, m->state.lease)) {
                manager_acquire_if_asked(m);
                return;
        }
        if (m->state.phase == REBOOT_PHASE_IDLE || m->state.phase == REBOOT_PHASE_PENDING) {
                /* A slot held under our name that our state does not know: we crashed between
                 * winning it and saving that. Adopt it; the state machine keeps it if a reboot is
                 * still required and gives it back otherwise. */
                log_notice("Found lock slot %s held under our name; adopting it.", slot);
                (void) manager_dispatch(m, REBOOT_EVENT_LOCK_ACQUIRED, &(RebootEventData) {
                                .lease = slot,
                                .machine_id = m->lock_machine_id,
                        });
        } else
                log_warning("Lock slot %s names us, but our state records %s; leaving it alone.", slot,
                            strna(m->state.lease));
        manager_acquire_if_asked(m);
}

/* After a corrupt state file we do not know how far the last cycle got. The Node's
 * nodereboot.io/cordoned annotation tells whether we cordoned it; if so, undo that and release
 * whatever we hold, then start over. */
static void on_reconcile_node(KubeClient *c, int error, json_object *node, void *userdata) {
        Manager *m = userdata;
        const char *v;
        int r;

        m->node_busy = false;
        if (error < 0) {
                log_warning_errno(error, "Failed to read Node %s to reconcile the lost state, retrying: %m",
                                  m->config->node_name);
                manager_set_waiting(m, "reconciling a lost state file with the cluster (%s), retrying",
                                    strerror(ERRNO_VALUE(error)));
                r = node_get(m->client, m->config->node_name, on_reconcile_node, m);
                if (r >= 0)
                        m->node_busy = true;
                return;
        }

        v = json_get_string(json_get_member(json_get(node, "metadata.annotations"), NODE_ANNOTATION_CORDONED), "");
        if (streq_ptr(v, "true") && node_is_unschedulable(node)) {
                RebootState s;

                log_notice("Node %s carries our cordon mark; undoing the interrupted cycle.", m->config->node_name);
                reboot_state_init(&s);
                s.phase = REBOOT_PHASE_ROLLING_BACK;
                s.rollback_to = REBOOT_PHASE_PENDING;
                s.cordoned = true;
                s.phase_since = now_realtime();
                (void) free_and_strdup(&s.last_error, "state file was corrupt; undoing the interrupted cycle");
                r = state_file_save(m->state_dir, &s);
                if (r < 0) {
                        reboot_state_done(&s);
                        log_error_errno(r, "Failed to save the state: %m");
                        (void) sd_event_exit(m->event, r);
                        return;
                }
                reboot_state_done(&m->state);
                m->state = s;
        }
        m->state_was_corrupt = false;
        manager_resume(m);
        if (!m->lock_busy && lock_find_own(m->lock, on_own_lease_found, m) >= 0)
                m->lock_busy = true;
}

/* Stopping (the machine going down for its reboot, say): the notifications under way get
 * NOTIFY_STOP_GRACE_USEC to arrive, looked at every 50 ms. */
#define NOTIFY_STOP_GRACE_USEC (3 * USEC_PER_SEC)

static int on_stop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        unsigned pending = notifier_pending(m->notifier);

        if (pending > 0 && now_usec(CLOCK_MONOTONIC) < m->stop_deadline)
                return sd_event_source_set_time_relative(s, 50 * USEC_PER_MSEC) < 0 ? sd_event_exit(m->event, 0) : 0;
        if (pending > 0)
                log_warning("Stopping with %u notification%s not delivered.", pending, pending == 1 ? "" : "s");
        return sd_event_exit(m->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        if (m->stop_timer)
                return 0;
        log_info("Received %s, stopping; the cycle resumes from state %s at the next start.",
                 strsignal((int) si->ssi_signo), reboot_phase_to_string(m->state.phase));
        (void) sd_notify(false, "STOPPING=1\nSTATUS=stopping");
        if (notifier_pending(m->notifier) == 0)
                return sd_event_exit(m->event, 0);
        /* Nothing of the cycle runs on: only the deliveries. */
        m->stopping = true;
        manager_stop_action(m);
        m->stop_deadline = now_usec(CLOCK_MONOTONIC) + NOTIFY_STOP_GRACE_USEC;
        if (sd_event_add_time_relative(m->event, &m->stop_timer, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_stop_timer,
                                       m) < 0)
                return sd_event_exit(m->event, 0);
        (void) sd_event_source_set_enabled(m->stop_timer, SD_EVENT_ON);
        return 0;
}

int manager_new(Manager **ret, Config *config, const char *state_dir) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->config = config;
        reboot_state_init(&m->state);
        m->state_dir = strdup(state_dir);
        if (!m->state_dir)
                return -ENOMEM;

        m->policy = (RebootPolicy) {
                .max_attempts = config->reboot_max_attempts,
                .force_reboot = config->force_reboot,
                .retry_usec = config->retry_usec,
                .reboot_retry_usec = MIN(REBOOT_RETRY_USEC, config->retry_usec),
                .loop_guard_usec = config->loop_guard_usec,
        };

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        manager_stop_action(m);
        sd_event_source_disable_unref(m->renew_timer);
        sd_event_source_disable_unref(m->hold_timer);
        free(m->held_watched);
        free(m->lost_slot);
        free(m->lock_machine_id);
        free(m->restore_refusal);
        free(m->renew_slot);
        sd_event_source_disable_unref(m->recheck_timer);
        sd_event_source_disable_unref(m->kick_timer);
        sd_event_source_disable_unref(m->follow_timer);
        drain_free(m->drain);
        blockers_check_free(m->blockers);
        blockers_check_free(m->gate_preflight);
        queue_free(m->queue);
        lock_free(m->lock);
        window_free(m->window);
        sentinel_free(m->sentinel);
        sentinel_free(m->kubeconfig_watch);
        sentinel_command_free(m->command);
        sd_event_source_disable_unref(m->blocked_timer);
        sd_event_source_disable_unref(m->stop_timer);
        notifier_free(m->notifier);
        alerts_check_free(m->alerts);
        http_client_free(m->http);
        if (m->alert_regex_set)
                regfree(&m->alert_regex);
        free(m->alerts_posted);
        free(m->command_error);
        pause_watch_free(m->pause_watch);
        free(m->pause_said);
        sentinel_free(m->request_watch);
        free(m->request_reason);
        free(m->published);
        free(m->publishing);
        free(m->publish_refused);
        free(m->marks_status);
        sd_event_source_disable_unref(m->publish_timer);
        sd_event_source_disable_unref(m->publish_defer);
        metrics_exporter_free(m->metrics);
        sd_event_source_disable_unref(m->kubeconfig_retry);
        logind_free(m->logind);
        kube_client_free(m->client);
        kubeconfig_free(m->kubeconfig);
        sd_event_unref(m->event);
        reboot_state_done(&m->state);
        config_free(m->config);
        free(m->state_dir);
        free(m->waiting);
        free(m->status);
        return mfree(m);
}

/* Two hosts cloned from one image with the same [Node] Name= must not both believe they hold a
 * slot: the lock records the machine ID with the holder and refuses a slot another machine holds
 * under our name. */
static int manager_set_machine_id(Manager *m) {
        char id[SD_ID128_STRING_MAX];
        sd_id128_t mid;
        int r;

        r = sd_id128_get_machine(&mid);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the machine ID, two hosts sharing [Node] Name=%s "
                                  "would not be told apart: %m", m->config->node_name);
                return 0;
        }
        memcpy(m->machine_id, sd_id128_to_string(mid, id), sizeof m->machine_id);
        manager_sync_lock_machine_id(m);
        return 0;
}

/* [Kubernetes] Proxy=/NoProxy=, or the environment's HTTPS_PROXY/NO_PROXY, matched against the
 * server's real host. The proxy is logged without its credentials. */
static int manager_setup_proxy(Manager *m) {
        _cleanup_free_ char *proxy = NULL, *shown = NULL;
        ProxySource source;
        int r;

        r = proxy_for_server(m->config->proxy, m->config->no_proxy, m->kubeconfig->server, &proxy, &source);
        if (r == -EINVAL)
                return log_error_errno(r, "%s is not a usable proxy URL (expected e.g. http://proxy:3128)",
                                       m->config->proxy ? "[Kubernetes] Proxy=" : "HTTPS_PROXY");
        if (r < 0)
                return log_error_errno(r, "Failed to pick the proxy for the API server: %m");
        if (r == 0) {
                if (source != PROXY_SOURCE_NONE)
                        log_info("Connecting to the API server directly: %s matches its host.",
                                 m->config->no_proxy ? "[Kubernetes] NoProxy=" : "NO_PROXY");
        } else {
                r = proxy_url_redact(proxy, &shown);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the proxy URL: %m");
                log_info("Connecting to the API server through proxy %s (from %s).", shown,
                         source == PROXY_SOURCE_CONFIG ? "[Kubernetes] Proxy=" : "the environment");
        }
        r = kube_client_set_proxy(m->client, proxy);
        if (proxy)
                explicit_bzero(proxy, strlen(proxy));
        if (r < 0)
                return log_error_errno(r, "Failed to set the proxy: %m");
        return 0;
}

/* Everything that needs the cluster: the kubeconfig, the client, the lock, logind, the sentinel;
 * then resume the cycle. */
static int manager_start_cluster(Manager *m) {
        int r;

        r = kubeconfig_load(m->config->kubeconfig, m->config->context, &m->kubeconfig);
        if (r < 0)
                return r;   /* logged by the loader, naming file and field */
        if (m->kubeconfig->insecure_skip_tls_verify)
                log_warning("kubeconfig %s: insecure-skip-tls-verify is set; the API server's identity is NOT verified.",
                            m->kubeconfig->path);

        r = kube_client_new(&m->client, m->event, m->kubeconfig);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Kubernetes client: %m");
        r = kube_client_set_user_agent(m->client, "noderebootd", m->config->node_name);
        if (r < 0)
                return log_error_errno(r, "Failed to set the User-Agent: %m");
        r = manager_setup_proxy(m);
        if (r < 0)
                return r;

        r = lock_new(&m->lock, m->client, m->config->lock_namespace, m->config->lock_name,
                     m->config->concurrency, m->config->lock_ttl_usec, m->config->node_name);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the lock: %m");
        r = manager_set_machine_id(m);
        if (r < 0)
                return r;
        if (m->config->lock_queue) {
                r = queue_new(&m->queue, m->client, m->event, m->config->lock_queue_namespace, m->config->lock_name,
                              m->config->node_name);
                if (r == -ENAMETOOLONG)
                        log_warning("Node name %s is too long for a ticket %s-q-%s in the lock queue; this node "
                                    "tries for a slot without the queue.", m->config->node_name,
                                    m->config->lock_name, m->config->node_name);
                else if (r < 0)
                        return log_error_errno(r, "Failed to set up the lock queue: %m");
                else {
                        /* A slot that expired stays untaken while its holder may be coming back;
                         * the head of the line is passed over for it only as slowly. */
                        queue_set_expired_pass_over(m->queue, m->config->lock_ttl_usec);
                        /* A paused group's head rightly leaves its slot untaken. */
                        queue_set_pass_over_check(m->queue, on_pass_over_check, m);
                        /* Stopped while waiting, or right after taking a slot (the ticket goes
                         * then, in the background): a ticket may be left; it goes when we next
                         * leave the line. */
                        if (m->state.phase == REBOOT_PHASE_PENDING || m->state.phase == REBOOT_PHASE_LOCKED ||
                            m->state.phase == REBOOT_PHASE_DRAINING)
                                queue_suspect_ticket(m->queue);
                }
        }
        /* A renewal that takes longer than the margin would outlive our local deadline. */
        r = lock_set_renew_timeout(m->lock, m->event, manager_hold_margin(m));
        if (r < 0)
                return log_error_errno(r, "Failed to bound the lock renewals: %m");

        r = logind_new(&m->logind, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the logind client: %m");

        r = sentinel_new(&m->sentinel, m->event, m->config->sentinel_path, m->config->sentinel_settle_usec,
                         on_sentinel, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", m->config->sentinel_path);
        {
                _cleanup_free_ char *request = reboot_request_path(m->state_dir);

                if (!request)
                        return log_oom();
                r = sentinel_new(&m->request_watch, m->event, request, 0, on_request, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch %s: %m", request);
        }
        if (m->config->sentinel_command) {
                _cleanup_strv_free_ char **argv = NULL;

                r = strv_split_command(m->config->sentinel_command, &argv);
                if (r >= 0)     /* checked when the configuration was read */
                        r = sentinel_command_new(&m->command, m->event, argv, (int) m->config->sentinel_required_status,
                                                 m->config->sentinel_command_interval_usec,
                                                 m->config->sentinel_command_timeout_usec, on_command, m);
                if (r >= 0 && m->config->sentinel_required_output)
                        r = sentinel_command_set_required_output(m->command, m->config->sentinel_required_output);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up [Sentinel] Command=%s: %m",
                                               m->config->sentinel_command);
        }

        log_info("nodereboot %s starting on node %s: sentinel %s, lock %s/%s-[0..%u), API %s, state %s/state.",
                 PACKAGE_VERSION, m->config->node_name, m->config->sentinel_path,
                 m->config->lock_namespace, m->config->lock_name, m->config->concurrency,
                 m->kubeconfig->server_display, m->state_dir);

        if (m->state_was_corrupt) {
                r = node_get(m->client, m->config->node_name, on_reconcile_node, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to start reconciling with the cluster: %m");
                m->node_busy = true;
        } else {
                manager_resume(m);
                /* Adopts (or gives back) a slot won just before a crash that lost that fact: only
                 * idle or pending can have lost it; later states name their slot, and renewing it
                 * checks it (a look at every start of a new boot cost each cycle a list and a read
                 * per slot missing from it). */
                if ((m->state.phase == REBOOT_PHASE_IDLE || m->state.phase == REBOOT_PHASE_PENDING) &&
                    !m->lock_busy && lock_find_own(m->lock, on_own_lease_found, m) >= 0)
                        m->lock_busy = true;
        }

        return 0;
}

static void manager_join(Manager *m);

static int on_kubeconfig_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->kubeconfig_retry = sd_event_source_disable_unref(m->kubeconfig_retry);
        manager_join(m);
        return 0;
}

/* The kubeconfig is there: join the cluster. A file provisioning is still writing, or whose mode
 * or group it fixes a moment later, is not usable yet: say why and try again shortly, rather than
 * exit for good (exit 78 would keep systemd from ever restarting us). */
static void manager_join(Manager *m) {
        int r;

        if (m->client)
                return;
        r = manager_start_cluster(m);
        if (r >= 0) {
                log_notice("Joined the cluster with kubeconfig %s.", m->config->kubeconfig);
                manager_update_status(m);
                return;
        }
        /* Undo what got set up, so the next try starts clean. */
        m->sentinel = sentinel_free(m->sentinel);
        m->request_watch = sentinel_free(m->request_watch);
        m->logind = logind_free(m->logind);
        m->queue = queue_free(m->queue);
        m->lock = lock_free(m->lock);
        m->client = kube_client_free(m->client);
        m->kubeconfig = kubeconfig_free(m->kubeconfig);
        manager_set_waiting(m, "kubeconfig %s is not usable yet (%s; see the journal), trying again every %s",
                            m->config->kubeconfig, strerror(ERRNO_VALUE(r)), "5s");
        r = sd_event_add_time_relative(m->event, &m->kubeconfig_retry, CLOCK_MONOTONIC, KUBECONFIG_RETRY_USEC,
                                       USEC_PER_SEC, on_kubeconfig_retry, m);
        if (r < 0)
                (void) sd_event_exit(m->event, r);
}

static void on_kubeconfig_appeared(Sentinel *s, bool present, void *userdata) {
        Manager *m = userdata;

        /* The watch stays until the manager is freed: this is its own handler. */
        if (!present || m->client || m->kubeconfig_retry)
                return;
        log_notice("Kubeconfig %s appeared; joining the cluster.", m->config->kubeconfig);
        manager_set_waiting(m, NULL);
        manager_join(m);
}

static void on_notification_failed(Notifier *n, void *userdata) {
        manager_update_metrics(userdata);
}

/* [Notify] URL= and the URLs in the files of URLFile= (one a line; blank lines and # comments
 * skipped). A bad URL is named by file and line, never shown: URLs are secrets. */
static int manager_setup_notify(Manager *m) {
        _cleanup_strv_free_ char **urls = NULL;
        NotifierSettings settings = {
                .type = m->config->notify_type,
                .ca_file = m->config->notify_ca_file,
                .events = m->config->notify_events,
                .timeout_usec = m->config->notify_timeout_usec,
                .retries = m->config->notify_retries,
                .proxy = m->config->proxy,
                .no_proxy = m->config->no_proxy,
        };
        int r;

        STRV_FOREACH(u, m->config->notify_urls)
                if (strv_extend(&urls, *u) < 0)
                        return log_oom();
        STRV_FOREACH(path, m->config->notify_url_files) {
                _cleanup_free_ char *text = NULL;
                unsigned line = 0;
                char *state = NULL;

                r = read_full_file(*path, 64 * 1024, &text, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to read [Notify] URLFile=%s: %m", *path);
                for (char *l = strtok_r(text, "\n", &state); l; l = strtok_r(NULL, "\n", &state)) {
                        _cleanup_free_ char *post = NULL;
                        NotifyType t;

                        line++;
                        l = strstrip(l);
                        if (isempty(l) || l[0] == '#')
                                continue;
                        r = notify_resolve_url(l, m->config->notify_type, &t, &post);
                        erase_and_free(TAKE_PTR(post));
                        if (r < 0) {
                                explicit_bzero(text, strlen(text));
                                return log_error_errno(r, "%s:%u: not a notification URL (slack://T/B/X, "
                                                       "teams://HOST/PATH, https:// or http://); not shown, as "
                                                       "it may be a secret.", *path, line);
                        }
                        if (strv_extend(&urls, l) < 0)
                                return log_oom();
                }
                explicit_bzero(text, strlen(text));
        }
        if (!urls)
                return 0;
        settings.urls = urls;
        for (NotifyEvent e = 0; e < _NOTIFY_EVENT_MAX; e++)
                settings.templates[e] = m->config->notify_templates[e];
        r = notifier_new(&m->notifier, m->event, &settings, on_notification_failed, m);
        STRV_FOREACH(u, urls)
                explicit_bzero(*u, strlen(*u));
        if (r < 0)
                return r == -ENOMEM ? log_oom() : r;
        log_info("Notifying %zu URL%s of: %s%s%s%s%s.", strv_length(urls), strv_length(urls) == 1 ? "" : "s",
                 settings.events & (1U << NOTIFY_DRAIN_START) ? "drain-start " : "",
                 settings.events & (1U << NOTIFY_REBOOT) ? "reboot " : "",
                 settings.events & (1U << NOTIFY_BACK_IN_SERVICE) ? "back-in-service " : "",
                 settings.events & (1U << NOTIFY_FAILED) ? "failed " : "",
                 settings.events & (1U << NOTIFY_BLOCKED_TOO_LONG) ? "blocked-too-long" : "");
        return 0;
}

static int manager_setup_alerts(Manager *m) {
        _cleanup_free_ char *display = NULL;
        int r;

        if (!m->config->prometheus_url)
                return 0;
        if (m->config->alert_filter_regex) {
                if (regex_compile(&m->alert_regex, m->config->alert_filter_regex, REG_NOSUB) < 0)
                        return log_error_errno(-EINVAL, "[Blockers] AlertFilterRegex=%s is not a regular expression.",
                                               m->config->alert_filter_regex);
                m->alert_regex_set = true;
        }
        r = http_client_new(&m->http, m->event, "noderebootd/" PACKAGE_VERSION);
        if (r >= 0)
                r = http_client_set_proxy(m->http, m->config->proxy, m->config->no_proxy);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the HTTP client for Prometheus: %m");
        display = http_url_for_display(m->config->prometheus_url);
        log_info("Prometheus alerts at %s hold reboots back%s%s%s.", strna(display),
                 m->config->alert_filter_regex ? (m->config->alert_filter_match_only ?
                                                  " (only alerts matching " : " (except alerts matching ") : "",
                 strempty(m->config->alert_filter_regex), m->config->alert_filter_regex ? ")" : "");
        return 0;
}

/* Off unless [Metrics] names a textfile or an address, or systemd passes the socket of
 * nodereboot-metrics.socket (which then wins over ListenAddress=). */
static int manager_setup_metrics(Manager *m) {
        MetricsExporterSettings settings = {
                .textfile_path = m->config->metrics_textfile_path,
                .listen_fd = metrics_server_passed_socket(),
                .address_text = m->config->metrics_listen_address,
        };
        struct sockaddr_storage address;
        int r;

        if (settings.listen_fd < 0 && m->config->metrics_listen_address) {
                r = parse_socket_address(m->config->metrics_listen_address, &address, &settings.address_len);
                if (r < 0)      /* checked when the configuration was read */
                        return log_error_errno(r, "[Metrics] ListenAddress=%s is not an address to listen on.",
                                               m->config->metrics_listen_address);
                settings.address = (const struct sockaddr *) &address;
        }
        if (!settings.textfile_path && !settings.address && settings.listen_fd < 0)
                return 0;
        r = metrics_exporter_new(&m->metrics, m->event, &settings);
        if (r < 0)
                return r;       /* logged, naming the address */
        manager_update_metrics(m);
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *window_error = NULL;
        sigset_t mask;
        int r;

        log_set_context(m->config->node_name, "starting");

        r = window_new(&m->window, m->config->window_days, m->config->window_start, m->config->window_end,
                       m->config->window_time_zone, &window_error);
        if (r < 0)
                return log_error_errno(r, "Invalid maintenance window: %s", strna(window_error));

        r = boot_id_read(m->boot_id);
        if (r < 0)
                return log_error_errno(r, "Failed to read the boot ID: %m");
        r = boot_time_read(&m->boot_time);
        if (r < 0)
                return log_error_errno(r, "Failed to determine when this boot began: %m");

        r = state_file_load(m->state_dir, &m->state);
        if (r == -EBADMSG)
                m->state_was_corrupt = true;   /* moved aside and logged by the loader */
        else if (r < 0)
                return log_error_errno(r, "Failed to load the state from %s: %m", m->state_dir);
        log_set_context(NULL, reboot_phase_to_string(m->state.phase));

        r = manager_setup_metrics(m);
        if (r < 0)
                return r;
        r = manager_setup_alerts(m);
        if (r < 0)
                return r;
        r = manager_setup_notify(m);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);      /* [Sentinel] Command=: sd_event_add_child() */
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to handle signals: %m");

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");

        /* A node image carries the package before it joins a cluster: until the kubeconfig is there
         * (wherever Kubeconfig= says), wait for it, up and idle, rather than fail or be skipped by a
         * unit condition that could only name the default path. */
        if (access(m->config->kubeconfig, F_OK) < 0 && errno == ENOENT) {
                /* Settled, so a file that provisioning is still writing is not read half done. */
                r = sentinel_new(&m->kubeconfig_watch, m->event, m->config->kubeconfig, KUBECONFIG_SETTLE_USEC,
                                 on_kubeconfig_appeared, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to watch for %s: %m", m->config->kubeconfig);
                log_notice("Kubeconfig %s does not exist yet (this node has not joined a cluster): waiting for it.",
                           m->config->kubeconfig);
                (void) sd_notify(false, "READY=1");
                manager_set_waiting(m, "waiting for the kubeconfig %s (not joined to a cluster yet)",
                                    m->config->kubeconfig);
                return 0;
        }
        r = manager_start_cluster(m);
        if (r < 0)
                return r;
        (void) sd_notify(false, "READY=1");
        manager_update_status(m);
        return 0;
}

int manager_run(Manager *m) {
        return sd_event_loop(m->event);
}
