/* SPDX-License-Identifier: Apache-2.0 */
/* One watch (list, then stream) of the node's pods that match the selector, filtered by the API
 * server (fieldSelector spec.nodeName, labelSelector) and again here. Every change only marks the
 * gate dirty; a deferred event source then judges the pods and calls the handler if the verdict
 * changed, so the handler never runs inside a kube-client handler. */

#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "label-selector.h"
#include "log.h"
#include "pod-health.h"
#include "recovery-gate.h"
#include "string-util.h"

/* Nodes run at most a few hundred pods; a watch that shows more matching ones is not followed. */
#define RECOVERY_GATE_PODS_MAX 10000U

typedef struct GatePod {
        char *uid;
        json_object *pod;
        unsigned listed_epoch;  /* the list it was last ADDED by */
} GatePod;

struct RecoveryGate {
        sd_event *event;
        KubeClient *client;
        char *node;
        char *selector;
        LabelSelector *parsed;
        usec_t boot_time;

        RecoveryGateHandler handler;
        void *userdata;

        KubeWatch *watch;
        sd_event_source *defer_source;
        sd_event_source *timeout_source;

        GatePod *pods;
        size_t n_pods;
        unsigned epoch;
        bool synced;            /* listed at least once */
        int watch_error;        /* the last failure of the watch, 0 after a list */

        bool reported;          /* the handler was called at least once */
        bool ready;
        bool timed_out;
        char *message;
};

static void gate_pod_done(GatePod *p) {
        free(p->uid);
        json_object_put(p->pod);
}

RecoveryGate *recovery_gate_free(RecoveryGate *g) {
        if (!g)
                return NULL;
        kube_watch_free(g->watch);
        sd_event_source_disable_unref(g->defer_source);
        sd_event_source_disable_unref(g->timeout_source);
        for (size_t i = 0; i < g->n_pods; i++)
                gate_pod_done(&g->pods[i]);
        free(g->pods);
        label_selector_free(g->parsed);
        free(g->node);
        free(g->selector);
        free(g->message);
        sd_event_unref(g->event);
        return mfree(g);
}

bool recovery_gate_is_ready(const RecoveryGate *g) {
        return g && g->ready;
}

static void gate_changed(RecoveryGate *g) {
        int r;

        r = sd_event_source_set_enabled(g->defer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Failed to schedule the recovery gate's check, ignoring: %m");
}

static GatePod *gate_find(RecoveryGate *g, const char *uid) {
        for (size_t i = 0; i < g->n_pods; i++)
                if (streq(g->pods[i].uid, uid))
                        return &g->pods[i];
        return NULL;
}

static void gate_forget(RecoveryGate *g, GatePod *p) {
        size_t i = (size_t) (p - g->pods);

        gate_pod_done(p);
        memmove(g->pods + i, g->pods + i + 1, (g->n_pods - i - 1) * sizeof(GatePod));
        g->n_pods--;
}

static int gate_remember(RecoveryGate *g, const char *uid, json_object *pod, KubeWatchEvent event) {
        GatePod *p = gate_find(g, uid);

        if (!p) {
                GatePod *a;

                if (g->n_pods >= RECOVERY_GATE_PODS_MAX)
                        return -E2BIG;
                a = reallocarray(g->pods, g->n_pods + 1, sizeof(GatePod));
                if (!a)
                        return -ENOMEM;
                g->pods = a;
                p = &g->pods[g->n_pods];
                *p = (GatePod) { .uid = strdup(uid) };
                if (!p->uid)
                        return -ENOMEM;
                g->n_pods++;
        }
        json_object_put(p->pod);
        p->pod = json_object_get(pod);
        if (event == KUBE_WATCH_ADDED)
                p->listed_epoch = g->epoch;
        return 0;
}

static void on_pod_event(RecoveryGate *g, KubeWatchEvent event, json_object *pod) {
        const char *uid = json_get_string(pod, "metadata.uid");
        GatePod *p;
        int r;

        if (!uid)
                return;
        p = gate_find(g, uid);
        /* The server filters by label too; a pod whose labels changed so that it no longer matches
         * arrives as DELETED from a real API server, but judge what we got. */
        if (event == KUBE_WATCH_DELETED || !label_selector_matches(g->parsed, json_get(pod, "metadata.labels"))) {
                if (p)
                        gate_forget(g, p);
        } else {
                r = gate_remember(g, uid, pod, event);
                if (r < 0)
                        log_debug_errno(r, "Failed to remember pod %s/%s, ignoring: %m",
                                        strna(json_get_string(pod, "metadata.namespace")),
                                        strna(json_get_string(pod, "metadata.name")));
        }
        gate_changed(g);
}

static void on_synced(RecoveryGate *g) {
        size_t n = 0;

        /* After a relist every pod that still exists came again as ADDED: those that did not are
         * gone (their DELETED fell into the gap the relist covers). */
        for (size_t i = 0; i < g->n_pods; i++) {
                if (g->synced && g->pods[i].listed_epoch != g->epoch) {
                        gate_pod_done(&g->pods[i]);
                        continue;
                }
                g->pods[n++] = g->pods[i];
        }
        g->n_pods = n;
        g->synced = true;
        g->epoch++;
        g->watch_error = 0;
        gate_changed(g);
}

static void on_watch(KubeWatch *w, KubeWatchEvent event, json_object *object, int error, void *userdata) {
        RecoveryGate *g = userdata;

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
        case KUBE_WATCH_DELETED:
                on_pod_event(g, event, object);
                break;
        case KUBE_WATCH_SYNCED:
                on_synced(g);
                break;
        case KUBE_WATCH_ERROR:
                /* The watch retries by itself; the pods we saw stay what we judge by. */
                log_debug_errno(error, "Watch of the pods of node %s matching %s failed, it retries: %m", g->node,
                                g->selector);
                g->watch_error = error;
                gate_changed(g);
                break;
        default:
                break;
        }
}

/* The verdict now: 1 ready, 0 not (with *ret_message), -ENOMEM. */
static int gate_judge(RecoveryGate *g, char **ret_message) {
        _cleanup_json_ json_object *pods = NULL;
        _cleanup_free_ char *message = NULL;
        int r;

        if (!g->synced) {
                *ret_message = g->watch_error < 0 ?
                        strdup_printf("cannot list the pods matching WaitForPodsSelector=%s: %s", g->selector,
                                      strerror(ERRNO_VALUE(g->watch_error))) :
                        strdup_printf("listing the pods matching WaitForPodsSelector=%s", g->selector);
                return *ret_message ? 0 : -ENOMEM;
        }

        pods = json_object_new_array();
        if (!pods)
                return -ENOMEM;
        for (size_t i = 0; i < g->n_pods; i++)
                if (json_object_array_add(pods, json_object_get(g->pods[i].pod)) < 0) {
                        json_object_put(g->pods[i].pod);
                        return -ENOMEM;
                }

        r = pod_health_summarize(pods, g->boot_time, g->selector, &message);
        if (r != 0)
                return r;
        /* What we judge may be old while the watch fails: say so. */
        if (g->watch_error < 0) {
                char *t = strdup_printf("%s (the watch of the pods fails: %s)", message,
                                        strerror(ERRNO_VALUE(g->watch_error)));
                if (!t)
                        return -ENOMEM;
                free(message);
                message = t;
        }
        *ret_message = TAKE_PTR(message);
        return 0;
}

static void gate_report(RecoveryGate *g, bool force) {
        _cleanup_free_ char *message = NULL;
        bool ready;
        int r;

        r = gate_judge(g, &message);
        if (r < 0) {
                log_oom();
                return;
        }
        ready = r > 0;
        if (!force && g->reported && ready == g->ready && streq_ptr(message, g->message))
                return;
        g->reported = true;
        g->ready = ready;
        free(g->message);
        g->message = TAKE_PTR(message);
        /* The handler may free the gate: nothing of it is used afterwards. */
        g->handler(g, g->ready, g->timed_out, g->message, g->userdata);
}

static int on_defer(sd_event_source *s, void *userdata) {
        RecoveryGate *g = userdata;

        /* Nothing to say before the first list, unless it fails. */
        if (!g->synced && g->watch_error == 0)
                return 0;
        gate_report(g, false);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        RecoveryGate *g = userdata;

        g->timeout_source = sd_event_source_disable_unref(g->timeout_source);
        g->timed_out = true;
        if (g->reported && g->ready)
                return 0;
        gate_report(g, true);
        return 0;
}

int recovery_gate_new(RecoveryGate **ret, sd_event *event, KubeClient *client, const char *node,
                      const char *selector, usec_t boot_time, usec_t timeout_usec,
                      RecoveryGateHandler handler, void *userdata) {
        _cleanup_(recovery_gate_freep) RecoveryGate *g = NULL;
        _cleanup_free_ char *escaped_node = NULL, *escaped_selector = NULL, *path = NULL;
        int r;

        if (!client || isempty(node) || isempty(selector) || !handler)
                return -EINVAL;

        g = calloc(1, sizeof *g);
        if (!g)
                return -ENOMEM;
        *g = (RecoveryGate) {
                .event = sd_event_ref(event),
                .client = client,
                .boot_time = boot_time,
                .handler = handler,
                .userdata = userdata,
        };
        g->node = strdup(node);
        g->selector = strdup(selector);
        if (!g->node || !g->selector)
                return -ENOMEM;
        r = label_selector_parse(selector, &g->parsed);
        if (r < 0)
                return r;

        r = sd_event_add_defer(event, &g->defer_source, on_defer, g);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(g->defer_source, SD_EVENT_OFF);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->defer_source, "recovery-gate");

        if (timeout_usec > 0 && timeout_usec != USEC_INFINITY) {
                r = sd_event_add_time_relative(event, &g->timeout_source, CLOCK_MONOTONIC, timeout_usec,
                                               100 * USEC_PER_MSEC, on_timeout, g);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(g->timeout_source, "recovery-gate-timeout");
        }

        escaped_node = url_escape(node);
        escaped_selector = url_escape(selector);
        if (!escaped_node || !escaped_selector)
                return -ENOMEM;
        path = strdup_printf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&labelSelector=%s", escaped_node,
                             escaped_selector);
        if (!path)
                return -ENOMEM;
        /* From the watch cache, as informers list: a moment old at worst, and the stream brings the
         * rest; nothing is written on the strength of it. */
        r = kube_client_watch_full(client, path, KUBE_WATCH_LIST_FROM_CACHE, on_watch, g, &g->watch);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(g);
        return 0;
}
