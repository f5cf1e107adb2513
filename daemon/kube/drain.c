/* SPDX-License-Identifier: Apache-2.0 */
/* The drain is a small state machine per pod, driven by three kinds of input: the replies to our
 * eviction requests, one watch on the node's pods (which both lists them and reports when they are
 * gone), and per-pod timers (PDB retries, back-off, skip-wait-for-delete). Nothing polls.
 *
 *   UNDECIDED --first SYNCED--> SKIPPED | TERMINATING (already being deleted) | QUEUED
 *   QUEUED --slot free--> EVICTING --201--> TERMINATING --DELETED / new UID / finished--> GONE
 *                                   --404, 409 UID precondition--> GONE
 *                                   --429 naming a budget, 403 for the budget's state,
 *                                     500 "more than one PodDisruptionBudget"--> BLOCKED --timer--> QUEUED
 *                                   --other 409--> CHECKING (list it by name) --gone, other UID--> GONE
 *                                                                             --still ours--> RETRY
 *                                   --other, or 429 throttling--> RETRY --timer--> QUEUED
 *                                   --403 (RBAC)--> the drain fails
 *   (after the first SYNCED) a new pod --> LATE: as kubectl drain, not evicted, not waited for
 *
 * Every change only marks the drain dirty; one deferred event source then reports progress or
 * finishes. So the user's handlers never run inside a kube-client handler, and the watch is never
 * freed from inside its own handler. */

#include <assert.h>
#include <string.h>

#include "drain.h"
#include "eviction-answer.h"
#include "json-util.h"
#include "log.h"
#include "node.h"
#include "string-util.h"

#define DRAIN_PDB_RETRY_DEFAULT_USEC (5 * USEC_PER_SEC)
#define DRAIN_RETRY_INITIAL_USEC (1 * USEC_PER_SEC)
#define DRAIN_RETRY_MAX_USEC (30 * USEC_PER_SEC)
#define DRAIN_RETRY_AFTER_MAX_USEC (10 * USEC_PER_MINUTE)
/* Evictions in flight at once: the API server sees a steady trickle, not a burst of hundreds. */
#define DRAIN_EVICTIONS_IN_FLIGHT_MAX 10U
/* Nodes run at most a few hundred pods; a list far beyond that is a mistake we do not follow. */
#define DRAIN_PODS_MAX 10000U
/* Pods named in the timeout message before "and N more". */
#define DRAIN_MESSAGE_PODS_MAX 10U

#define EVICTION_POLICY_V1 "policy/v1"
#define EVICTION_POLICY_V1BETA1 "policy/v1beta1"

#define free_and_replace(a, b)                  \
        ({                                      \
                free(a);                        \
                (a) = (b);                      \
                (b) = NULL;                     \
                0;                              \
        })

typedef enum PodState {
        POD_UNDECIDED,          /* listed before the first SYNCED */
        POD_SKIPPED,            /* left alone */
        POD_QUEUED,             /* to be evicted once a slot is free */
        POD_EVICTING,           /* eviction request in flight */
        POD_BLOCKED,            /* a budget forbids it now (429; its state: 403, 500); timer armed */
        POD_RETRY,              /* eviction failed otherwise; back-off timer armed */
        POD_CHECKING,           /* a 409 not about the UID: re-reading the pod to learn whether it is gone */
        POD_TERMINATING,        /* evicted, or already being deleted: waiting until it is gone */
        POD_GONE,
        POD_LATE,               /* arrived after the drain started: neither evicted nor waited for */
} PodState;

typedef struct DrainPod {
        Drain *drain;
        char *namespace;
        char *name;
        char *uid;
        PodState state;

        json_object *object;    /* while UNDECIDED: the pod as listed */
        usec_t deletion_usec;   /* metadata.deletionTimestamp (CLOCK_REALTIME), 0 when none */
        bool evicted;           /* by us */
        const char *eviction_version;   /* sent with the request in flight */
        unsigned attempts;      /* failed evictions in a row, for back-off */
        unsigned listed_epoch;

        /* The last eviction was refused by a PodDisruptionBudget. Kept while the retry is queued
         * and in flight, so the status line does not flicker with every retry. */
        bool blocked;
        char *blocked_by;       /* PodDisruptionBudget name, when the server named it */
        char *blocked_why;      /* why, when it is not simply "no disruption allowed now" */
        char **blocked_reported; /* the blocked texts already logged and posted as Events */
        char *error_message;    /* last failure, for the timeout message */

        KubeCall *call;
        sd_event_source *timer;
} DrainPod;

struct Drain {
        sd_event *event;
        KubeClient *client;
        char *node;
        usec_t timeout_usec;
        int64_t grace_period_sec;
        usec_t skip_wait_for_delete_usec;
        usec_t pdb_retry_usec;
        LabelSelector *selector;

        DrainDoneHandler done;
        DrainProgressHandler progress;
        void *userdata;

        KubeCall *cordon_call;
        char *cordon_path;
        bool cordon_mark;               /* !node_was_unschedulable */
        bool cordon_extras;             /* the cordon in flight carries DrainOptions' extras */
        bool extras_dropped;            /* ... was refused with them: sent again without */
        KubeWatch *watch;
        sd_event_source *timeout_source;
        sd_event_source *defer_source;

        DrainPod **pods;
        size_t n_pods;
        unsigned n_in_flight;
        unsigned epoch;
        bool cordoned;
        bool synced;
        int watch_error;
        const char *eviction_version;

        usec_t start_usec;      /* CLOCK_MONOTONIC */
        unsigned n_evicted;
        unsigned n_late;        /* pods that arrived after the drain started, which it left alone */

        bool finishing;
        int result;
        char *result_message;
        char *last_progress;
};

#define IN_SET_TO_EVICT(s) \
        ((s) == POD_QUEUED || (s) == POD_EVICTING || (s) == POD_BLOCKED || (s) == POD_RETRY || \
         (s) == POD_CHECKING)

static void drain_changed(Drain *d);
static void drain_finish(Drain *d, int error, char *message);
static void pod_pump(Drain *d);

/* -------------------------------------------------------------------------------------------- */
/* Pure parts */

static bool pod_is_finished(json_object *pod) {
        const char *phase = json_get_string(pod, "status.phase");

        return streq_ptr(phase, "Succeeded") || streq_ptr(phase, "Failed");
}

static bool pod_is_daemonset_managed(json_object *pod) {
        json_object *owners = json_get(pod, "metadata.ownerReferences");
        size_t n = json_array_length(owners);

        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(owners, i);

                if (streq_ptr(json_get_string(o, "kind"), "DaemonSet") &&
                    json_get_bool(o, "controller", false))
                        return true;
        }
        return false;
}

bool drain_pod_is_skipped_full(json_object *pod, const LabelSelector *selector, const char **ret_reason) {
        const char *reason = NULL;

        if (json_get_member(json_get(pod, "metadata.annotations"), "kubernetes.io/config.mirror"))
                reason = "mirror pod";
        else if (pod_is_daemonset_managed(pod))
                reason = "managed by a DaemonSet";
        else if (pod_is_finished(pod))
                reason = "finished";
        else if (!label_selector_matches(selector, json_get(pod, "metadata.labels")))
                reason = "not selected by the pod selector";

        if (ret_reason)
                *ret_reason = reason;
        return reason;
}

bool drain_pod_is_skipped(json_object *pod, const char **ret_reason) {
        return drain_pod_is_skipped_full(pod, NULL, ret_reason);
}

/* -------------------------------------------------------------------------------------------- */
/* The pod table */

static const char *pod_state_to_string(PodState s) {
        static const char *const table[] = {
                [POD_UNDECIDED] = "undecided",
                [POD_SKIPPED] = "skipped",
                [POD_QUEUED] = "queued",
                [POD_EVICTING] = "evicting",
                [POD_BLOCKED] = "blocked",
                [POD_RETRY] = "retry",
                [POD_CHECKING] = "checking",
                [POD_TERMINATING] = "terminating",
                [POD_GONE] = "gone",
                [POD_LATE] = "late",
        };
        return s < ELEMENTSOF(table) ? table[s] : "?";
}

static void pod_stop(DrainPod *p) {
        if (p->call) {
                p->call = kube_call_cancel(p->call);
                p->drain->n_in_flight--;
        }
        p->timer = sd_event_source_disable_unref(p->timer);
}

static DrainPod *pod_free(DrainPod *p) {
        if (!p)
                return NULL;
        pod_stop(p);
        json_object_put(p->object);
        free(p->namespace);
        free(p->name);
        free(p->uid);
        free(p->blocked_by);
        free(p->blocked_why);
        strv_free(p->blocked_reported);
        free(p->error_message);
        return mfree(p);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DrainPod *, pod_free);

static DrainPod *pod_find_uid(Drain *d, const char *uid) {
        for (size_t i = 0; i < d->n_pods; i++)
                if (streq_ptr(d->pods[i]->uid, uid))
                        return d->pods[i];
        return NULL;
}

static bool pod_is_pending(const DrainPod *p) {
        return p->state != POD_SKIPPED && p->state != POD_GONE && p->state != POD_LATE;
}

/* The pod of the drain's that goes by this name and still matters. */
static DrainPod *pod_find_pending(Drain *d, const char *namespace, const char *name) {
        for (size_t i = 0; i < d->n_pods; i++) {
                DrainPod *p = d->pods[i];

                if (pod_is_pending(p) && streq(p->namespace, namespace) && streq(p->name, name))
                        return p;
        }
        return NULL;
}

static void pod_clear_blocked(DrainPod *p) {
        p->blocked = false;
        p->blocked_by = mfree(p->blocked_by);
        p->blocked_why = mfree(p->blocked_why);
}

/* Leaves whatever the pod was doing (request, timer) and enters state. */
static void pod_enter(DrainPod *p, PodState state) {
        if (p->state == state)
                return;
        log_debug("Pod %s/%s: %s -> %s", p->namespace, p->name, pod_state_to_string(p->state),
                  pod_state_to_string(state));
        if (p->state == POD_EVICTING && state == POD_GONE)
                /* gone before our eviction's reply arrived: let it arrive, to count it */
                p->timer = sd_event_source_disable_unref(p->timer);
        else
                pod_stop(p);
        if (state != POD_UNDECIDED)
                p->object = json_object_put_and_null(p->object);
        if (!IN_SET_TO_EVICT(state))
                pod_clear_blocked(p);
        p->state = state;
        drain_changed(p->drain);
}

static void pod_set_error(DrainPod *p, const char *message) {
        (void) free_and_strdup(&p->error_message, message);
}

/* -------------------------------------------------------------------------------------------- */
/* Timers */

static int pod_arm_timer(DrainPod *p, usec_t delay, sd_event_time_handler_t callback) {
        int r;

        p->timer = sd_event_source_disable_unref(p->timer);
        /* a little slack lets timers coalesce; the default (250 ms) would swamp short retry periods */
        r = sd_event_add_time_relative(p->drain->event, &p->timer, CLOCK_MONOTONIC, delay,
                                       CLAMP(delay / 20, USEC_PER_MSEC, 250 * USEC_PER_MSEC), callback, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->timer, "drain-pod-timer");
        return 0;
}

static int on_pod_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        DrainPod *p = userdata;

        pod_enter(p, POD_QUEUED);
        pod_pump(p->drain);
        return 0;
}

static int on_pod_skip_wait(sd_event_source *s, uint64_t usec, void *userdata) {
        DrainPod *p = userdata;

        log_debug("Pod %s/%s has been terminating for longer than the skip-wait timeout, not waiting for it.",
                  p->namespace, p->name);
        pod_enter(p, POD_SKIPPED);
        return 0;
}

/* A terminating pod is waited for, unless skip_wait_for_delete_usec says it has taken too long. */
static void pod_terminating(DrainPod *p) {
        Drain *d = p->drain;
        usec_t now, end;
        int r;

        pod_enter(p, POD_TERMINATING);
        if (d->skip_wait_for_delete_usec == 0 || d->skip_wait_for_delete_usec == USEC_INFINITY ||
            p->deletion_usec == 0 || p->timer)
                return;

        /* As kubectl: time since the deletionTimestamp, judged by the server's clock. */
        now = kube_client_server_now(d->client);
        end = p->deletion_usec + d->skip_wait_for_delete_usec;
        if (now >= end) {
                log_debug("Pod %s/%s has been terminating for longer than the skip-wait timeout, "
                          "not waiting for it.", p->namespace, p->name);
                pod_enter(p, POD_SKIPPED);
                return;
        }
        r = pod_arm_timer(p, end - now, on_pod_skip_wait);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the skip-wait timer of pod %s/%s, waiting for it: %m",
                                  p->namespace, p->name);
}

/* -------------------------------------------------------------------------------------------- */
/* Evictions */

static int eviction_body(Drain *d, DrainPod *p, json_object **ret) {
        _cleanup_json_ json_object *body = NULL;
        json_object *metadata, *options;

        body = json_object_new_object();
        metadata = json_object_new_object();
        if (!body || !metadata) {
                json_object_put(metadata);
                return -ENOMEM;
        }
        if (json_object_object_add(body, "metadata", metadata) < 0) {
                json_object_put(metadata);
                return -ENOMEM;
        }
        if (json_object_object_add(body, "apiVersion", json_object_new_string(d->eviction_version)) < 0 ||
            json_object_object_add(body, "kind", json_object_new_string("Eviction")) < 0 ||
            json_object_object_add(metadata, "name", json_object_new_string(p->name)) < 0 ||
            json_object_object_add(metadata, "namespace", json_object_new_string(p->namespace)) < 0)
                return -ENOMEM;

        if (d->grace_period_sec >= 0 || p->uid) {
                options = json_object_new_object();
                if (!options)
                        return -ENOMEM;
                if (json_object_object_add(body, "deleteOptions", options) < 0) {
                        json_object_put(options);
                        return -ENOMEM;
                }
                if (d->grace_period_sec >= 0 &&
                    json_object_object_add(options, "gracePeriodSeconds",
                                           json_object_new_int64(d->grace_period_sec)) < 0)
                        return -ENOMEM;
                if (p->uid) {
                        /* Only the pod we listed: a late retry must not evict a new pod that took
                         * its name (a StatefulSet's replacement, possibly on another node). */
                        json_object *pre = json_object_new_object();

                        if (!pre || json_object_object_add(options, "preconditions", pre) < 0) {
                                json_object_put(pre);
                                return -ENOMEM;
                        }
                        if (json_object_object_add(pre, "uid", json_object_new_string(p->uid)) < 0)
                                return -ENOMEM;
                }
        }

        /* json-c's adders store NULL as JSON null on allocation failure: check what we built */
        if (!json_get_string(body, "apiVersion") || !json_get_string(body, "kind") ||
            !json_get_string(body, "metadata.name") || !json_get_string(body, "metadata.namespace") ||
            (d->grace_period_sec >= 0 && !json_get(body, "deleteOptions.gracePeriodSeconds")) ||
            (p->uid && !json_get_string(body, "deleteOptions.preconditions.uid")))
                return -ENOMEM;

        *ret = TAKE_PTR(body);
        return 0;
}

static void pod_arm_retry(DrainPod *p, usec_t delay) {
        int r;

        r = pod_arm_timer(p, delay, on_pod_retry);
        if (r < 0)
                drain_finish(p->drain, r, strdup_printf("could not arm a timer for pod %s/%s: %s",
                                                        p->namespace, p->name, strerror(ERRNO_VALUE(r))));
}

/* A failure that says nothing about budgets: retry with exponential back-off. message may be
 * p->error_message. */
static void pod_retry_later(DrainPod *p, int error, const char *message) {
        usec_t delay;

        pod_set_error(p, message ?: strerror(ERRNO_VALUE(error)));
        delay = DRAIN_RETRY_INITIAL_USEC << MIN(p->attempts, 10U);
        delay = MIN(delay, DRAIN_RETRY_MAX_USEC);
        p->attempts++;

        log_debug_errno(error, "Eviction of pod %s/%s failed (%s), retrying in %.1fs: %m",
                        p->namespace, p->name, strna(p->error_message), (double) delay / USEC_PER_SEC);
        pod_clear_blocked(p);
        pod_enter(p, POD_RETRY);
        pod_arm_retry(p, delay);
}

/* The server's Retry-After (API Priority and Fairness sends one, so does a budget still being
 * processed), else details.retryAfterSeconds, else ours. */
static usec_t retry_after(const Drain *d, const KubeResponse *response) {
        int64_t seconds;
        usec_t delay;

        delay = response->retry_after_usec;
        if (delay == 0 && json_get_int64(response->body, "details.retryAfterSeconds", &seconds) &&
            seconds > 0)
                delay = (usec_t) MIN(seconds, (int64_t) 3600) * USEC_PER_SEC;
        if (delay == 0)
                delay = d->pdb_retry_usec;
        return MIN(delay, DRAIN_RETRY_AFTER_MAX_USEC);
}

/* "blocked by PodDisruptionBudget web-pdb", "blocked by PodDisruptionBudget web-pdb: pdb
 * disruptions allowed is negative", "blocked: more than one PodDisruptionBudget selects the pod..." */
static char *pod_blocked_text(const DrainPod *p) {
        if (p->blocked_by)
                return strdup_printf("blocked by PodDisruptionBudget %s%s%s", p->blocked_by,
                                     p->blocked_why ? ": " : "", strempty(p->blocked_why));
        if (p->blocked_why)
                return strdup_printf("blocked: %s", p->blocked_why);
        return strdup("blocked by a PodDisruptionBudget");
}

static void on_event_posted(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        if (error < 0)
                log_debug_errno(error, "Failed to post an Event about a blocked eviction, ignoring: %s",
                                node_refusal(response) ?: strerror(ERRNO_VALUE(error)));
}

/* A budget whose state needs a human (a negative disruptionsAllowed, two budgets for one pod): say
 * so in the journal and as an Event on the Node, once per pod and reason, not with every retry. */
static void pod_report_blocked(DrainPod *p) {
        Drain *d = p->drain;
        _cleanup_free_ char *text = pod_blocked_text(p), *message = NULL;
        int r;

        if (!text || strv_contains(p->blocked_reported, text))
                return;

        log_warning("Eviction of pod %s/%s %s; retrying until the drain times out.",
                    p->namespace, p->name, text);
        message = strdup_printf("Eviction of pod %s/%s %s; nodereboot retries it until the drain times out.",
                                p->namespace, p->name, text);
        if (message) {
                r = node_post_event(d->client, d->node, "Warning", "EvictionBlocked", message,
                                    on_event_posted, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to post an Event about pod %s/%s, ignoring: %m",
                                        p->namespace, p->name);
        }
        /* best effort: a failed post is not repeated with every retry either */
        (void) strv_push(&p->blocked_reported, TAKE_PTR(text));
}

/* A PodDisruptionBudget forbids the eviction now: retry this pod after delay, on a timer of its
 * own. name and why (either may be NULL) are taken over. */
static void pod_blocked(DrainPod *p, char *name, char *why, const char *message, usec_t delay) {
        _cleanup_free_ char *n = name, *w = why;

        log_debug("Eviction of pod %s/%s blocked by %s%s%s%s (%s), retrying in %.1fs",
                  p->namespace, p->name, n ? "PodDisruptionBudget " : "a PodDisruptionBudget", strempty(n),
                  w ? ": " : "", strempty(w), strna(message), (double) delay / USEC_PER_SEC);

        pod_enter(p, POD_BLOCKED);
        p->blocked = true;
        free_and_replace(p->blocked_by, n);
        free_and_replace(p->blocked_why, w);
        pod_set_error(p, message);
        p->attempts = 0;
        drain_changed(p->drain);
        pod_arm_retry(p, delay);
}

/* 429: a PodDisruptionBudget forbids the eviction now (its Status names the budget), or the API
 * server throttles us (priority and fairness, with Retry-After). Either way: retry this pod after
 * Retry-After, or pdb_retry_usec without one. */
static void pod_too_many_requests(DrainPod *p, EvictionVerdict *v, const KubeResponse *response) {
        usec_t delay = retry_after(p->drain, response);

        if (v->answer == EVICTION_ANSWER_PDB_BUDGET) {
                pod_blocked(p, TAKE_PTR(v->pdb), NULL, v->message, delay);
                return;
        }

        log_debug("Eviction of pod %s/%s throttled by the API server (%s), retrying in %.1fs",
                  p->namespace, p->name, strna(v->message), (double) delay / USEC_PER_SEC);
        pod_clear_blocked(p);
        pod_enter(p, POD_RETRY);
        pod_set_error(p, "throttled by the API server");
        p->attempts = 0;
        pod_arm_retry(p, delay);
}

static void on_pod_reread(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        DrainPod *p = userdata;
        Drain *d = p->drain;
        json_object *items = json_get(response->body, "items"), *pod;
        const char *uid, *deletion;

        /* the call is over: pod_enter() must not cancel it; any state change would have */
        p->call = NULL;
        d->n_in_flight--;

        if (d->finishing)
                return;
        assert(p->state == POD_CHECKING);

        if (error >= 0 && !json_object_is_type(items, json_type_array))
                error = -EBADMSG;
        pod = json_array_length(items) > 0 ? json_object_array_get_idx(items, 0) : NULL;
        uid = json_get_string(pod, "metadata.uid");
        deletion = json_get_string(pod, "metadata.deletionTimestamp");

        if (error >= 0 && (!pod || (uid && !streq_ptr(uid, p->uid)))) {
                log_debug("Pod %s/%s is gone (re-read after a conflict).", p->namespace, p->name);
                pod_enter(p, POD_GONE);
        } else if (error >= 0 && pod_is_finished(pod)) {
                log_debug("Pod %s/%s finished (re-read after a conflict).", p->namespace, p->name);
                pod_enter(p, POD_GONE);
        } else if (error >= 0 && deletion) {
                if (p->deletion_usec == 0 && parse_rfc3339(deletion, &p->deletion_usec) < 0)
                        p->deletion_usec = kube_client_server_now(d->client);
                pod_terminating(p);
        } else {
                if (error < 0)
                        log_debug_errno(error, "Failed to re-read pod %s/%s after a conflict, retrying: %m",
                                        p->namespace, p->name);
                /* still ours and running: the conflict was the server's, try again later */
                pod_retry_later(p, -ESTALE, p->error_message);
        }
        pod_pump(d);
}

/* A 409 that does not say the pod is gone: read the pod to learn whether it is. By a list with a
 * field selector, not a GET: our RBAC grants list and watch on pods, not get. */
static void pod_recheck(DrainPod *p, const char *message) {
        Drain *d = p->drain;
        _cleanup_free_ char *ns = NULL, *name = NULL, *path = NULL;
        int r;

        log_debug("Eviction of pod %s/%s met a conflict (%s), re-reading the pod.", p->namespace, p->name,
                  strna(message));
        pod_set_error(p, message ?: "conflict");
        pod_clear_blocked(p);
        pod_enter(p, POD_CHECKING);

        ns = url_escape(p->namespace);
        name = url_escape(p->name);
        if (ns && name)
                path = strjoin("/api/v1/namespaces/", ns, "/pods?fieldSelector=metadata.name%3D", name);
        if (!path) {
                pod_retry_later(p, -ENOMEM, p->error_message);
                return;
        }
        r = kube_client_call(d->client, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pod_reread, p,
                             &p->call);
        if (r < 0) {
                pod_retry_later(p, r, p->error_message);
                return;
        }
        d->n_in_flight++;
}

static void on_eviction(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        DrainPod *p = userdata;
        Drain *d = p->drain;
        _cleanup_(eviction_verdict_done) EvictionVerdict v = {};

        /* the call is over: pod_enter() must not cancel it */
        p->call = NULL;
        d->n_in_flight--;

        if (d->finishing)
                return;

        if (p->state != POD_EVICTING) {
                /* the pod went while we asked: only the count is left to do */
                if (error >= 0) {
                        p->evicted = true;
                        d->n_evicted++;
                }
                drain_changed(d);
                pod_pump(d);
                return;
        }

        if (eviction_verdict_from_response(error, response, p->name, &v) < 0) {
                pod_retry_later(p, -ENOMEM, NULL);
                pod_pump(d);
                return;
        }

        if (v.answer == EVICTION_ANSWER_EVICTED) {
                log_debug("Evicted pod %s/%s.", p->namespace, p->name);
                p->evicted = true;
                p->attempts = 0;
                d->n_evicted++;
                pod_terminating(p);

        } else if (v.answer == EVICTION_ANSWER_VERSION_UNSUPPORTED) {
                if (!streq(p->eviction_version, EVICTION_POLICY_V1)) {
                        drain_finish(d, -EOPNOTSUPP,
                                     strdup_printf("the API server supports neither policy/v1 nor "
                                                   "policy/v1beta1 evictions: %s", strna(v.message)));
                        return;
                }
                if (streq(d->eviction_version, EVICTION_POLICY_V1)) {
                        log_info("The API server does not know policy/v1 evictions, using policy/v1beta1.");
                        d->eviction_version = EVICTION_POLICY_V1BETA1;
                }
                pod_clear_blocked(p);
                pod_enter(p, POD_QUEUED);

        } else if (p->deletion_usec > 0 && error != -EACCES) {
                /* deleted meanwhile by someone else: whatever the server says, it is going */
                log_debug_errno(error, "Eviction of pod %s/%s failed, but it is terminating already: %m",
                                p->namespace, p->name);
                pod_terminating(p);

        } else
                switch (v.answer) {
                case EVICTION_ANSWER_PDB_BUDGET:
                case EVICTION_ANSWER_THROTTLED:
                        pod_too_many_requests(p, &v, response);
                        break;
                case EVICTION_ANSWER_GONE:
                        log_debug("Pod %s/%s is gone already.", p->namespace, p->name);
                        pod_enter(p, POD_GONE);
                        break;
                case EVICTION_ANSWER_REPLACED:
                        /* The UID precondition failed: the pod we listed is gone, another took its name. */
                        log_debug("Pod %s/%s was replaced before its eviction; the one we listed is gone.",
                                  p->namespace, p->name);
                        pod_enter(p, POD_GONE);
                        break;
                case EVICTION_ANSWER_CONFLICT:
                        pod_recheck(p, v.message);
                        break;
                case EVICTION_ANSWER_PDB_FORBIDS:
                case EVICTION_ANSWER_TWO_PDBS:
                        pod_blocked(p, TAKE_PTR(v.pdb), TAKE_PTR(v.why), v.message, retry_after(d, response));
                        pod_report_blocked(p);
                        break;
                case EVICTION_ANSWER_FORBIDDEN:
                        drain_finish(d, error, strdup_printf("not allowed to evict pod %s/%s: %s",
                                                             p->namespace, p->name,
                                                             v.message ?: strerror(ERRNO_VALUE(error))));
                        return;
                default:
                        pod_retry_later(p, error, v.message);
                }

        pod_pump(d);
}

static int pod_evict(DrainPod *p) {
        Drain *d = p->drain;
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *ns = NULL, *name = NULL, *path = NULL;
        int r;

        r = eviction_body(d, p, &body);
        if (r < 0)
                return r;
        ns = url_escape(p->namespace);
        name = url_escape(p->name);
        if (!ns || !name)
                return -ENOMEM;
        path = strjoin("/api/v1/namespaces/", ns, "/pods/", name, "/eviction");
        if (!path)
                return -ENOMEM;

        /* An eviction is safe to repeat (a second one finds the pod terminating or gone), so the
         * client may retry it on connection errors, timeouts and 5xx; but a 429 is the PDB's
         * answer, which we must see to report it and to retry on our own schedule. */
        pod_enter(p, POD_EVICTING);
        r = kube_client_call(d->client, "POST", path, NULL, body,
                             KUBE_CALL_IDEMPOTENT | KUBE_CALL_NO_RETRY_ON_429, on_eviction, p, &p->call);
        if (r < 0)
                return r;
        p->eviction_version = d->eviction_version;
        d->n_in_flight++;
        return 0;
}

/* Starts queued evictions while slots are free. */
static void pod_pump(Drain *d) {
        int r;

        if (d->finishing)
                return;
        for (size_t i = 0; i < d->n_pods && d->n_in_flight < DRAIN_EVICTIONS_IN_FLIGHT_MAX; i++) {
                DrainPod *p = d->pods[i];

                if (p->state != POD_QUEUED)
                        continue;
                log_debug("Evicting pod %s/%s (%s).", p->namespace, p->name, d->eviction_version);
                r = pod_evict(p);
                if (r < 0) {
                        pod_retry_later(p, r, NULL);
                        if (d->finishing)
                                return;
                }
        }
}

/* -------------------------------------------------------------------------------------------- */
/* The watch */

static void pod_decide(DrainPod *p, json_object *pod) {
        Drain *d = p->drain;
        const char *reason;

        if (drain_pod_is_skipped_full(pod, d->selector, &reason)) {
                log_debug("Not evicting pod %s/%s: %s.", p->namespace, p->name, reason);
                pod_enter(p, POD_SKIPPED);
        } else if (p->deletion_usec > 0) {
                log_debug("Pod %s/%s is terminating already, waiting for it.", p->namespace, p->name);
                pod_terminating(p);
        } else
                pod_enter(p, POD_QUEUED);
}

/* A pod the drain knows changed. */
static void pod_changed(DrainPod *p, json_object *pod) {
        switch (p->state) {
        case POD_UNDECIDED:
                if (p->drain->synced)
                        pod_decide(p, pod);
                else {
                        json_object_put(p->object);
                        p->object = json_object_get(pod);
                }
                break;

        case POD_QUEUED:
        case POD_EVICTING:
        case POD_BLOCKED:
        case POD_RETRY:
        case POD_CHECKING:
        case POD_TERMINATING:
                if (pod_is_finished(pod)) {
                        /* a finished pod holds no workload any more: nothing left to wait for */
                        log_debug("Pod %s/%s finished.", p->namespace, p->name);
                        pod_enter(p, POD_GONE);
                } else if (p->deletion_usec > 0 && p->state != POD_EVICTING)
                        /* deleted by someone else, or our eviction took effect: wait for it */
                        pod_terminating(p);
                break;

        case POD_SKIPPED:
        case POD_GONE:
        case POD_LATE:
                break;
        }
}

static int pod_add(Drain *d, const char *namespace, const char *name, const char *uid, DrainPod **ret) {
        _cleanup_(pod_freep) DrainPod *p = NULL;
        DrainPod **a;

        if (d->n_pods >= DRAIN_PODS_MAX)
                return -E2BIG;

        p = calloc(1, sizeof(DrainPod));
        if (!p)
                return -ENOMEM;
        p->drain = d;
        p->namespace = strdup(namespace);
        p->name = strdup(name);
        p->uid = strdup(uid);
        if (!p->namespace || !p->name || !p->uid)
                return -ENOMEM;

        a = reallocarray(d->pods, d->n_pods + 1, sizeof(DrainPod *));
        if (!a)
                return -ENOMEM;
        d->pods = a;
        d->pods[d->n_pods++] = p;
        *ret = TAKE_PTR(p);
        return 0;
}

/* Forgets a pod that arrived late and is gone again (so a node with churn does not fill the table). */
static void pod_forget(Drain *d, DrainPod *p) {
        for (size_t i = 0; i < d->n_pods; i++)
                if (d->pods[i] == p) {
                        memmove(d->pods + i, d->pods + i + 1, (d->n_pods - i - 1) * sizeof(DrainPod *));
                        d->n_pods--;
                        pod_free(p);
                        return;
                }
}

/* Like kubectl drain, the drain covers the pods listed when it starts, after the cordon. A pod that
 * shows up later was put here by a scheduler that ignores the cordon (the pod tolerates
 * node.kubernetes.io/unschedulable, or names the node itself): evicting it would only bring it
 * back, again and again until the timeout. It is noted once, and neither evicted nor waited for. */
static void pod_arrived_late(Drain *d, const char *namespace, const char *name, const char *uid,
                             json_object *pod) {
        const char *reason;
        DrainPod *p;
        int r;

        if (drain_pod_is_skipped_full(pod, d->selector, &reason))
                log_debug("Pod %s/%s arrived after the drain started (%s).", namespace, name, reason);
        else {
                log_info("Pod %s/%s arrived after the drain started; not evicting it, as kubectl drain does.",
                         namespace, name);
                d->n_late++;
        }

        /* remembered only so that it is noted once */
        r = pod_add(d, namespace, name, uid, &p);
        if (r < 0) {
                log_debug_errno(r, "Failed to remember pod %s/%s, ignoring: %m", namespace, name);
                return;
        }
        p->state = POD_LATE;
        p->listed_epoch = d->epoch;
}

static void on_pod_event(Drain *d, KubeWatchEvent event, json_object *pod) {
        const char *namespace = json_get_string(pod, "metadata.namespace"),
                *name = json_get_string(pod, "metadata.name"),
                *uid = json_get_string(pod, "metadata.uid"),
                *deletion = json_get_string(pod, "metadata.deletionTimestamp");
        DrainPod *p, *old;
        int r;

        if (!namespace || !name || !uid) {
                log_debug("Ignoring a pod event without namespace, name or UID.");
                return;
        }

        p = pod_find_uid(d, uid);

        if (event == KUBE_WATCH_DELETED) {
                if (p && p->state == POD_LATE)
                        pod_forget(d, p);
                else if (p && pod_is_pending(p)) {
                        log_debug("Pod %s/%s is gone.", namespace, name);
                        pod_enter(p, POD_GONE);
                }
                return;
        }

        if (!p) {
                old = pod_find_pending(d, namespace, name);
                if (old && old->state == POD_UNDECIDED) {
                        /* listed anew before the drain began its work: the new one is what counts */
                        log_debug("Pod %s/%s was replaced (UID %s -> %s).", namespace, name, old->uid, uid);
                        if (free_and_strdup(&old->uid, uid) < 0) {
                                drain_finish(d, -ENOMEM, NULL);
                                return;
                        }
                        old->deletion_usec = 0;
                        p = old;
                } else {
                        if (old) {
                                /* a new pod under the old name: the one we listed is gone */
                                log_debug("Pod %s/%s was replaced (UID %s -> %s).", namespace, name, old->uid,
                                          uid);
                                pod_enter(old, POD_GONE);
                        }
                        if (d->synced) {
                                pod_arrived_late(d, namespace, name, uid, pod);
                                return;
                        }
                        r = pod_add(d, namespace, name, uid, &p);
                        if (r < 0) {
                                drain_finish(d, r, strdup_printf("could not track pod %s/%s: %s", namespace,
                                                                 name, strerror(ERRNO_VALUE(r))));
                                return;
                        }
                        drain_changed(d);
                }
        }

        if (event == KUBE_WATCH_ADDED)
                p->listed_epoch = d->epoch;
        if (p->state == POD_LATE)
                return;
        if (deletion && p->deletion_usec == 0 && parse_rfc3339(deletion, &p->deletion_usec) < 0)
                /* unreadable, but set: it is terminating, from now on as far as we can tell */
                p->deletion_usec = kube_client_server_now(d->client);

        pod_changed(p, pod);
}

static void on_synced(Drain *d) {
        if (!d->synced) {
                d->synced = true;
                log_debug("Listed %zu pods on node %s.", d->n_pods, d->node);
                for (size_t i = 0; i < d->n_pods; i++) {
                        DrainPod *p = d->pods[i];

                        if (p->state == POD_UNDECIDED) {
                                _cleanup_json_ json_object *o = TAKE_PTR(p->object);
                                pod_decide(p, o);
                        }
                }
        } else {
                /* After a relist every pod that still exists came again as ADDED: those that did
                 * not are gone (their DELETED fell into the gap the relist covers). */
                size_t n = 0;

                for (size_t i = 0; i < d->n_pods; i++) {
                        DrainPod *p = d->pods[i];

                        if (p->listed_epoch != d->epoch && p->state == POD_LATE) {
                                pod_free(p);
                                continue;
                        }
                        if (p->listed_epoch != d->epoch && pod_is_pending(p)) {
                                log_debug("Pod %s/%s is gone (not listed again).", p->namespace, p->name);
                                pod_enter(p, POD_GONE);
                        }
                        d->pods[n++] = p;
                }
                d->n_pods = n;
        }

        d->epoch++;
        d->watch_error = 0;
        drain_changed(d);
}

static void on_watch(KubeWatch *w, KubeWatchEvent event, json_object *object, int error, void *userdata) {
        Drain *d = userdata;

        if (d->finishing)
                return;

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
        case KUBE_WATCH_DELETED:
                on_pod_event(d, event, object);
                break;
        case KUBE_WATCH_SYNCED:
                on_synced(d);
                break;
        case KUBE_WATCH_ERROR:
                if (error == -EACCES) {
                        drain_finish(d, error,
                                     strdup_printf("not allowed to list the pods of node %s", d->node));
                        return;
                }
                log_debug_errno(error, "Watch of the pods on node %s failed, it retries: %m", d->node);
                d->watch_error = error;
                drain_changed(d);
                return;
        default:
                return;
        }
        pod_pump(d);
}

/* -------------------------------------------------------------------------------------------- */
/* Cordon */

bool drain_marks_dropped(const Drain *d) {
        return d && d->extras_dropped;
}

static void on_cordoned(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Drain *d = userdata;
        _cleanup_free_ char *path = NULL, *node = NULL;
        int r;

        d->cordon_call = NULL;
        if (d->finishing)
                return;
        if (error < 0 && d->cordon_extras && (response->status == 403 || response->status == 422)) {
                /* An admission policy that does not know our marks: the cordon matters, they do not. */
                _cleanup_json_ json_object *patch = NULL;

                log_warning("The API server refused the cordon of node %s with our marks (%s); cordoning "
                            "without them.", d->node, json_get_string(response->body, "message") ?: "refused");
                d->cordon_extras = false;
                d->extras_dropped = true;
                r = node_cordon_patch(d->cordon_mark, now_usec(CLOCK_REALTIME), &patch);
                if (r >= 0)
                        r = kube_client_call(c, "PATCH", d->cordon_path, "application/merge-patch+json", patch,
                                             KUBE_CALL_IDEMPOTENT, on_cordoned, d, &d->cordon_call);
                if (r >= 0)
                        return;
                error = r;
        }
        if (error < 0) {
                drain_finish(d, error, strdup_printf("could not cordon node %s: %s", d->node,
                                                     json_get_string(response->body, "message") ?:
                                                     strerror(ERRNO_VALUE(error))));
                return;
        }
        log_debug("Cordoned node %s.", d->node);
        d->cordoned = true;
        drain_changed(d);

        node = url_escape(d->node);
        if (!node) {
                drain_finish(d, -ENOMEM, NULL);
                return;
        }
        path = strjoin("/api/v1/pods?fieldSelector=spec.nodeName%3D", node);
        if (!path) {
                drain_finish(d, -ENOMEM, NULL);
                return;
        }
        r = kube_client_watch(d->client, path, on_watch, d, &d->watch);
        if (r < 0) {
                drain_finish(d, r, strdup_printf("could not watch the pods of node %s: %s", d->node,
                                                 strerror(ERRNO_VALUE(r))));
                return;
        }
}

/* -------------------------------------------------------------------------------------------- */
/* Progress, timeout, the end */

typedef struct Counts {
        unsigned to_evict, blocked, terminating, total, skipped, gone, evicted, waited;
        const char *pdb;        /* the PDB blocking all blocked pods, if one and known */
        bool pdbs_differ;
        const char *why;        /* the reason all blocked pods share, if one and unusual */
        bool whys_differ;
} Counts;

static Counts drain_count(const Drain *d) {
        Counts c = {};

        for (size_t i = 0; i < d->n_pods; i++) {
                const DrainPod *p = d->pods[i];

                switch (p->state) {
                case POD_UNDECIDED:
                case POD_LATE:
                        continue;
                case POD_SKIPPED:
                        c.skipped++;
                        continue;
                case POD_QUEUED:
                case POD_EVICTING:
                case POD_BLOCKED:
                case POD_RETRY:
                case POD_CHECKING:
                        c.to_evict++;
                        if (p->blocked) {
                                if (!p->blocked_by || (c.pdb && !streq(c.pdb, p->blocked_by)))
                                        c.pdbs_differ = true;
                                else
                                        c.pdb = p->blocked_by;
                                if (c.blocked > 0 && !streq_ptr(c.why, p->blocked_why))
                                        c.whys_differ = true;
                                c.why = p->blocked_why;
                                c.blocked++;
                        }
                        break;
                case POD_TERMINATING:
                        c.terminating++;
                        if (!p->evicted)
                                c.waited++;
                        break;
                case POD_GONE:
                        c.gone++;
                        if (!p->evicted)
                                c.waited++;
                        break;
                }
                c.total++;
        }
        c.evicted = d->n_evicted;
        return c;
}

static char *drain_progress_text(const Drain *d) {
        Counts c = drain_count(d);
        _cleanup_free_ char *blocked = NULL, *waiting = NULL;

        if (!d->cordoned)
                return strdup_printf("cordoning node %s", d->node);
        if (!d->synced)
                return d->watch_error < 0 ?
                        strdup_printf("listing the pods of node %s (failed: %s, retrying)", d->node,
                                      strerror(ERRNO_VALUE(d->watch_error))) :
                        strdup_printf("listing the pods of node %s", d->node);

        if (c.to_evict == 0)
                return c.terminating > 0 ?
                        strdup_printf("waiting for %u pod%s to terminate", c.terminating,
                                      c.terminating == 1 ? "" : "s") :
                        strdup("all pods gone");

        if (c.blocked > 0) {
                /* the reason, when all blocked pods share it: "1 blocked by PodDisruptionBudget
                 * web-pdb: pdb disruptions allowed is negative", "1 blocked: more than one..." */
                const char *why = c.whys_differ ? NULL : c.why;

                if (c.pdb && !c.pdbs_differ)
                        blocked = strdup_printf(", %u blocked by PodDisruptionBudget %s%s%s", c.blocked,
                                                c.pdb, why ? ": " : "", strempty(why));
                else if (why)
                        blocked = strdup_printf(", %u blocked: %s", c.blocked, why);
                else
                        blocked = strdup_printf(", %u blocked by a PodDisruptionBudget", c.blocked);
                if (!blocked)
                        return NULL;
        }
        if (c.terminating > 0) {
                waiting = strdup_printf(", %u terminating", c.terminating);
                if (!waiting)
                        return NULL;
        }
        return strdup_printf("evicting %u of %u pod%s%s%s", c.to_evict, c.total, c.total == 1 ? "" : "s",
                             strempty(blocked), strempty(waiting));
}

static char *pod_remains_text(const DrainPod *p) {
        if (p->blocked)
                return pod_blocked_text(p);

        switch (p->state) {
        case POD_QUEUED:
                return strdup("waiting to be evicted");
        case POD_EVICTING:
                return strdup("eviction in progress");
        case POD_RETRY:
        case POD_CHECKING:
                return strdup_printf("eviction failing: %s", strna(p->error_message));
        case POD_TERMINATING:
                return strdup("terminating");
        default:
                return strdup(pod_state_to_string(p->state));
        }
}

/* "2 pods remain: ns/a (blocked by PodDisruptionBudget x), ns/b (terminating)" */
static char *drain_timeout_text(const Drain *d) {
        _cleanup_free_ char *s = NULL;
        unsigned n = 0, shown = 0;

        if (!d->cordoned)
                return strdup_printf("timed out cordoning node %s", d->node);
        if (!d->synced)
                return strdup_printf("timed out listing the pods of node %s%s%s", d->node,
                                     d->watch_error < 0 ? ": " : "",
                                     d->watch_error < 0 ? strerror(ERRNO_VALUE(d->watch_error)) : "");

        for (size_t i = 0; i < d->n_pods; i++)
                if (pod_is_pending(d->pods[i]))
                        n++;

        s = strdup_printf("%u pod%s remain%s:", n, n == 1 ? "" : "s", n == 1 ? "s" : "");
        if (!s)
                return NULL;
        for (size_t i = 0; i < d->n_pods && shown < DRAIN_MESSAGE_PODS_MAX; i++) {
                const DrainPod *p = d->pods[i];
                _cleanup_free_ char *why = NULL;
                char *t;

                if (!pod_is_pending(p))
                        continue;
                why = pod_remains_text(p);
                t = strdup_printf("%s%s %s/%s (%s)", s, shown > 0 ? "," : "", p->namespace, p->name,
                                  strna(why));
                if (!t)
                        return NULL;
                free_and_replace(s, t);
                shown++;
        }
        if (n > shown) {
                char *t = strdup_printf("%s, and %u more", s, n - shown);
                if (!t)
                        return NULL;
                free_and_replace(s, t);
        }
        return TAKE_PTR(s);
}

static void drain_stop(Drain *d) {
        for (size_t i = 0; i < d->n_pods; i++)
                pod_stop(d->pods[i]);
        d->cordon_call = kube_call_cancel(d->cordon_call);
        d->watch = kube_watch_free(d->watch);
        d->timeout_source = sd_event_source_disable_unref(d->timeout_source);
}

static bool drain_pods_gone(const Drain *d) {
        if (!d->synced)
                return false;
        for (size_t i = 0; i < d->n_pods; i++)
                if (pod_is_pending(d->pods[i]))
                        return false;
        return true;
}

/* Every pod gone, and no reply to an eviction outstanding (a pod may go before our request for it
 * returns; waiting for the reply keeps the counts right). */
static bool drain_is_done(const Drain *d) {
        return drain_pods_gone(d) && d->n_in_flight == 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Drain *d = userdata;

        /* the pods are gone, only a reply is late: that is success, not a timeout */
        if (drain_pods_gone(d))
                drain_finish(d, 0, NULL);
        else
                drain_finish(d, -ETIMEDOUT, drain_timeout_text(d));
        return 0;
}

static void drain_report(Drain *d) {
        _cleanup_free_ char *text = drain_progress_text(d);

        if (!text || !d->progress || streq_ptr(text, d->last_progress))
                return;
        free_and_replace(d->last_progress, text);
        d->progress(d, d->last_progress, d->userdata);
}

static int on_defer(sd_event_source *s, void *userdata) {
        Drain *d = userdata;
        char buf[FORMAT_TIMESPAN_MAX];
        usec_t elapsed;
        Counts c;

        if (!d->finishing) {
                if (!drain_is_done(d)) {
                        drain_report(d); /* may free d */
                        return 0;
                }
                d->finishing = true;
                d->result = 0;
        }

        drain_stop(d);

        elapsed = now_usec(CLOCK_MONOTONIC) - d->start_usec;
        c = drain_count(d);
        if (d->result >= 0) {
                _cleanup_free_ char *late = d->n_late > 0 ?
                        strdup_printf(", did not chase %u that arrived later", d->n_late) : NULL;

                free(d->result_message);
                d->result_message = strdup_printf("evicted %u pod%s, waited for %u already terminating, "
                                                  "left %u alone%s", c.evicted, c.evicted == 1 ? "" : "s",
                                                  c.waited, c.skipped, strempty(late));
                log_info("Drained node %s in %s: %s.", d->node,
                         format_timespan(buf, sizeof buf, elapsed / USEC_PER_MSEC * USEC_PER_MSEC),
                         strna(d->result_message));
        } else
                /* the manager logs the outcome at the level it chooses; this is the drain's record */
                log_info("Drain of node %s stopped after %s (evicted %u, skipped %u): %s", d->node,
                         format_timespan(buf, sizeof buf, elapsed / USEC_PER_MSEC * USEC_PER_MSEC),
                         c.evicted, c.skipped, strna(d->result_message));

        d->done(d, d->result, strempty(d->result_message), d->userdata);      /* may free d */
        return 0;
}

/* Something changed: report it (or finish) once the current dispatch is over. */
static void drain_changed(Drain *d) {
        int r;

        if (!d->defer_source)
                return;
        r = sd_event_source_set_enabled(d->defer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the drain's progress report, ignoring: %m");
}

/* Ends the drain with error (message may be NULL, and is taken over). The end itself is deferred. */
static void drain_finish(Drain *d, int error, char *message) {
        if (d->finishing) {
                free(message);
                return;
        }
        d->finishing = true;
        d->result = error;
        d->result_message = message ?: (error < 0 ? strdup(strerror(ERRNO_VALUE(error))) : NULL);
        drain_changed(d);
}

/* -------------------------------------------------------------------------------------------- */

Drain *drain_free(Drain *d) {
        if (!d)
                return NULL;

        drain_stop(d);
        d->defer_source = sd_event_source_disable_unref(d->defer_source);
        for (size_t i = 0; i < d->n_pods; i++)
                pod_free(d->pods[i]);
        free(d->pods);
        label_selector_free(d->selector);
        sd_event_unref(d->event);
        free(d->node);
        free(d->cordon_path);
        free(d->result_message);
        free(d->last_progress);
        return mfree(d);
}

int drain_start(Drain **ret, sd_event *event, KubeClient *client, const char *node, const DrainOptions *o,
                DrainDoneHandler done, DrainProgressHandler progress, void *userdata) {
        _cleanup_(drain_freep) Drain *d = NULL;
        _cleanup_json_ json_object *patch = NULL;
        _cleanup_free_ char *escaped = NULL, *path = NULL;
        char b1[FORMAT_TIMESPAN_MAX], b2[FORMAT_TIMESPAN_MAX];
        int r;

        if (!ret || !event || !client || isempty(node) || strchr(node, '/') || !o || !done)
                return -EINVAL;

        d = calloc(1, sizeof(Drain));
        if (!d)
                return -ENOMEM;
        d->event = sd_event_ref(event);
        d->client = client;
        d->done = done;
        d->progress = progress;
        d->userdata = userdata;
        d->timeout_usec = o->timeout_usec == 0 ? USEC_INFINITY : o->timeout_usec;
        d->grace_period_sec = o->grace_period_sec;
        d->skip_wait_for_delete_usec = o->skip_wait_for_delete_usec;
        d->pdb_retry_usec = o->pdb_retry_usec > 0 ? o->pdb_retry_usec : DRAIN_PDB_RETRY_DEFAULT_USEC;
        d->eviction_version = EVICTION_POLICY_V1;
        d->start_usec = now_usec(CLOCK_MONOTONIC);
        d->node = strdup(node);
        if (!d->node)
                return -ENOMEM;

        r = label_selector_parse(o->pod_selector, &d->selector);
        if (r < 0)
                return r;

        r = sd_event_add_defer(event, &d->defer_source, on_defer, d);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(d->defer_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(d->defer_source, "drain-defer");

        if (d->timeout_usec != USEC_INFINITY) {
                r = sd_event_add_time_relative(event, &d->timeout_source, CLOCK_MONOTONIC, d->timeout_usec,
                                               CLAMP(d->timeout_usec / 100, USEC_PER_MSEC, USEC_PER_SEC),
                                               on_timeout, d);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(d->timeout_source, "drain-timeout");
        }

        r = node_cordon_patch(!o->node_was_unschedulable, now_usec(CLOCK_REALTIME), &patch);
        if (r < 0)
                return r;
        d->cordon_mark = !o->node_was_unschedulable;
        d->cordon_extras = (o->cordon_annotations && o->cordon_annotations[0]) ||
                (o->cordon_labels && o->cordon_labels[0]);
        r = node_patch_add_metadata(patch, "annotations", o->cordon_annotations);
        if (r >= 0)
                r = node_patch_add_metadata(patch, "labels", o->cordon_labels);
        if (r < 0)
                return r;
        escaped = url_escape(node);
        if (!escaped)
                return -ENOMEM;
        path = strjoin("/api/v1/nodes/", escaped);
        if (!path)
                return -ENOMEM;
        d->cordon_path = strdup(path);
        if (!d->cordon_path)
                return -ENOMEM;
        /* the same merge patch as node_set_unschedulable(), on a call we can cancel */
        r = kube_client_call(client, "PATCH", path, "application/merge-patch+json", patch,
                             KUBE_CALL_IDEMPOTENT, on_cordoned, d, &d->cordon_call);
        if (r < 0)
                return r;

        if (d->grace_period_sec >= 0)
                (void) format_timespan(b2, sizeof b2, (usec_t) d->grace_period_sec * USEC_PER_SEC);
        log_event(LOG_INFO, MESSAGE_DRAIN_STARTED, "Draining node %s (timeout %s, grace period %s%s%s).",
                  node, format_timespan(b1, sizeof b1, d->timeout_usec),
                  d->grace_period_sec >= 0 ? b2 : "of each pod",
                  isempty(o->pod_selector) ? "" : ", pods selected by ", strempty(o->pod_selector));
        drain_changed(d);

        *ret = TAKE_PTR(d);
        return 0;
}
