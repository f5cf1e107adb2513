/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "pod-health.h"
#include "string-util.h"

bool pod_health_pod_is_finished(json_object *pod) {
        const char *phase = json_get_string(pod, "status.phase");

        return streq_ptr(phase, "Succeeded") || streq_ptr(phase, "Failed");
}

static json_object *pod_condition(json_object *pod, const char *type) {
        json_object *conditions = json_get(pod, "status.conditions");

        for (size_t i = 0; i < json_array_length(conditions); i++) {
                json_object *c = json_object_array_get_idx(conditions, i);

                if (streq_ptr(json_get_string(c, "type"), type))
                        return c;
        }
        return NULL;
}

static json_object *container_status(json_object *pod, const char *name) {
        json_object *statuses = json_get(pod, "status.containerStatuses");

        for (size_t i = 0; i < json_array_length(statuses); i++) {
                json_object *s = json_object_array_get_idx(statuses, i);

                if (streq_ptr(json_get_string(s, "name"), name))
                        return s;
        }
        return NULL;
}

/* Why a container of the pod does not run in this boot; NULL (with 0) when it does.
 *
 * The freshness rule: state.running.startedAt at or after the boot. The container runtime stamps it
 * with this host's clock, the clock boot_time comes from, so no skew between machines enters (the
 * Node's heartbeat is judged the same way, node_kubelet_is_back()). A container that survived the
 * reboot cannot exist: every container running in this boot was started in it, so a startedAt
 * before the boot is the status the kubelet of the previous boot posted. startedAt has whole
 * seconds: one second of slack. */
static int container_not_running(json_object *pod, json_object *spec_container, usec_t boot_time, char **ret) {
        const char *name = json_get_string(spec_container, "name"), *started;
        json_object *s, *state;
        usec_t t;

        s = container_status(pod, name);
        if (!s) {
                *ret = strdup_printf("no status for container %s yet", strna(name));
                return *ret ? 0 : -ENOMEM;
        }
        state = json_get(s, "state");
        if (!json_get(state, "running")) {
                const char *what = json_get(state, "waiting") ? "waiting" :
                        json_get(state, "terminated") ? "terminated" : "in no known state";
                const char *reason = json_get_string(state, json_get(state, "waiting") ? "waiting.reason" :
                                                     "terminated.reason");

                *ret = reason ? strdup_printf("container %s not running (%s: %s)", strna(name), what, reason) :
                        strdup_printf("container %s not running (%s)", strna(name), what);
                return *ret ? 0 : -ENOMEM;
        }
        started = json_get_string(state, "running.startedAt");
        if (!started || parse_rfc3339(started, &t) < 0) {
                *ret = strdup_printf("container %s reports no start time", strna(name));
                return *ret ? 0 : -ENOMEM;
        }
        if (t + USEC_PER_SEC <= boot_time) {
                *ret = strdup_printf("container %s runs since %s, before this boot (no status from the kubelet of "
                                     "this boot yet)", strna(name), started);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = NULL;
        return 0;
}

int pod_health_check_pod(json_object *pod, usec_t boot_time, char **ret_reason) {
        _cleanup_free_ char *reason = NULL;
        json_object *containers, *ready;
        const char *phase;
        int r;

        if (json_get(pod, "metadata.deletionTimestamp")) {
                reason = strdup("being deleted");
                goto not_ready;
        }
        phase = json_get_string(pod, "status.phase");
        if (!streq_ptr(phase, "Running")) {
                reason = strdup_printf("phase %s", phase ?: "unknown");
                goto not_ready;
        }

        containers = json_get(pod, "spec.containers");
        if (json_array_length(containers) == 0) {
                reason = strdup("no containers in its spec");
                goto not_ready;
        }
        for (size_t i = 0; i < json_array_length(containers); i++) {
                r = container_not_running(pod, json_object_array_get_idx(containers, i), boot_time, &reason);
                if (r < 0)
                        return r;
                if (reason)
                        goto not_ready_allocated;
        }

        /* Checked after freshness: a stale Ready=True says nothing, a fresh Ready=False says why. */
        ready = pod_condition(pod, "Ready");
        if (!streq_ptr(json_get_string(ready, "status"), "True")) {
                const char *message = json_get_string(ready, "message") ?: json_get_string(ready, "reason");

                reason = message ? strdup_printf("not Ready: %s", message) : strdup("not Ready");
                goto not_ready;
        }
        return 1;

not_ready:
        if (!reason)
                return -ENOMEM;
not_ready_allocated:
        if (ret_reason)
                *ret_reason = TAKE_PTR(reason);
        return 0;
}

typedef struct PodVerdict {
        char *name;             /* namespace/name */
        char *reason;           /* NULL: ready */
} PodVerdict;

static int verdict_compare(const void *a, const void *b) {
        return strcmp(((const PodVerdict *) a)->name, ((const PodVerdict *) b)->name);
}

static void verdicts_free(PodVerdict *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].name);
                free(v[i].reason);
        }
        free(v);
}

/* "1 of 2 pods not ready: ns/a (why); ns/b (why) and 3 more" */
static char *summary_text(const PodVerdict *v, size_t n, size_t n_not_ready) {
        char *s;
        size_t shown = 0;

        s = strdup_printf("%zu of %zu pod%s not ready:", n_not_ready, n, n == 1 ? "" : "s");
        for (size_t i = 0; s && i < n; i++) {
                char *t;

                if (!v[i].reason)
                        continue;
                if (shown == POD_HEALTH_MESSAGE_PODS_MAX)
                        t = strdup_printf("%s and %zu more", s, n_not_ready - shown);
                else
                        t = strdup_printf("%s%s %s (%s)", s, shown > 0 ? ";" : "", v[i].name, v[i].reason);
                free(s);
                s = t;
                if (++shown > POD_HEALTH_MESSAGE_PODS_MAX)
                        break;
        }
        return s;
}

int pod_health_summarize(json_object *pods, usec_t boot_time, const char *selector, char **ret_message) {
        size_t n = 0, n_not_ready = 0, total = json_array_length(pods);
        PodVerdict *v = NULL;
        char *message;
        int r = 0;

        if (total > 0) {
                v = calloc(total, sizeof(PodVerdict));
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < total; i++) {
                json_object *pod = json_object_array_get_idx(pods, i);

                if (pod_health_pod_is_finished(pod))
                        continue;
                v[n].name = strdup_printf("%s/%s", strna(json_get_string(pod, "metadata.namespace")),
                                          strna(json_get_string(pod, "metadata.name")));
                if (!v[n].name) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = pod_health_check_pod(pod, boot_time, &v[n].reason);
                n++;
                if (r < 0)
                        goto finish;
                if (r == 0)
                        n_not_ready++;
        }

        if (n > 0 && n_not_ready == 0) {
                r = 1;
                goto finish;
        }
        if (ret_message) {
                if (n == 0)
                        /* A gate that passes on nothing is no gate: a DaemonSet's pod always exists on
                         * its node, so none means it is not created or not bound yet (or the selector
                         * is wrong, which an operator must see). */
                        message = strdup_printf("no pod on this node matches WaitForPodsSelector=%s", strempty(selector));
                else {
                        qsort(v, n, sizeof(PodVerdict), verdict_compare);
                        message = summary_text(v, n, n_not_ready);
                }
                if (!message) {
                        r = -ENOMEM;
                        goto finish;
                }
                *ret_message = message;
        }
        r = 0;

finish:
        verdicts_free(v, n);
        return r;
}
