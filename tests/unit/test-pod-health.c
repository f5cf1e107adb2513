/* SPDX-License-Identifier: Apache-2.0 */
#include "json-util.h"
#include "pod-health.h"
#include "string-util.h"
#include "tests.h"

/* This boot began at 2026-01-01T10:00:00Z. */
static usec_t boot_time(void) {
        usec_t t;

        ASSERT_OK(parse_rfc3339("2026-01-01T10:00:00Z", &t));
        return t;
}

static json_object *parse(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

/* A DaemonSet-like pod with one container "c"; state is the container's state object, ready the
 * pod's Ready condition, extra more metadata members (",\"deletionTimestamp\":...") or "". */
static json_object *pod(const char *name, const char *phase, const char *state, const char *ready, const char *extra) {
        _cleanup_free_ char *s = strdup_printf(
                "{\"metadata\":{\"namespace\":\"kube-system\",\"name\":\"%s\",\"uid\":\"u-%s\"%s},"
                "\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"c\",\"image\":\"csi\"}]},"
                "\"status\":{\"phase\":\"%s\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\","
                "\"message\":\"containers with unready status: [c]\"}],"
                "\"containerStatuses\":[{\"name\":\"c\",\"ready\":true,\"restartCount\":1,\"state\":%s}]}}",
                name, name, extra, phase, ready, state);
        ASSERT_TRUE(s);
        return parse(s);
}

#define FRESH "{\"running\":{\"startedAt\":\"2026-01-01T10:00:40Z\"}}"
#define STALE "{\"running\":{\"startedAt\":\"2025-12-20T08:00:00Z\"}}"

static int check(json_object *p, char **ret) {
        return pod_health_check_pod(p, boot_time(), ret);
}

TEST(fresh_running_ready_pod_is_ready) {
        _cleanup_json_ json_object *p = pod("csi-a", "Running", FRESH, "True", "");
        char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 1);
        ASSERT_TRUE(!reason);
}

/* The status the kubelet of the previous boot posted: Running, Ready=True, but the container
 * started before this boot. It must not pass. */
TEST(stale_ready_status_from_before_the_boot_is_not_ready) {
        _cleanup_json_ json_object *p = pod("csi-a", "Running", STALE, "True", "");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 0);
        ASSERT_TRUE(strstr(reason, "container c runs since 2025-12-20T08:00:00Z, before this boot"));
}

TEST(start_time_has_whole_seconds) {
        /* a container started in the boot's first second shows the second the boot began in */
        _cleanup_json_ json_object *same = pod("a", "Running", "{\"running\":{\"startedAt\":\"2026-01-01T10:00:00Z\"}}",
                                               "True", "");
        _cleanup_json_ json_object *before = pod("b", "Running",
                                                 "{\"running\":{\"startedAt\":\"2026-01-01T09:59:59Z\"}}", "True", "");

        ASSERT_EQ(check(same, NULL), 1);
        ASSERT_EQ(pod_health_check_pod(same, boot_time() + 900 * USEC_PER_MSEC, NULL), 1);
        ASSERT_EQ(check(before, NULL), 0);
}

TEST(restarting_after_the_reboot_is_not_ready) {
        _cleanup_json_ json_object *p = pod("csi-a", "Running", "{\"waiting\":{\"reason\":\"ContainerCreating\"}}",
                                            "False", "");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 0);
        ASSERT_STREQ(reason, "container c not running (waiting: ContainerCreating)");
}

TEST(fresh_but_not_ready_says_why) {
        _cleanup_json_ json_object *p = pod("csi-a", "Running", FRESH, "False", "");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 0);
        ASSERT_STREQ(reason, "not Ready: containers with unready status: [c]");
}

TEST(terminating_pod_is_not_ready) {
        _cleanup_json_ json_object *p = pod("csi-a", "Running", FRESH, "True",
                                            ",\"deletionTimestamp\":\"2026-01-01T10:01:00Z\"");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 0);
        ASSERT_STREQ(reason, "being deleted");
}

TEST(pending_pod_and_missing_status) {
        _cleanup_json_ json_object *pending = pod("a", "Pending", "{\"waiting\":{}}", "False", "");
        _cleanup_json_ json_object *bare = parse(
                "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"b\"},\"spec\":{\"containers\":[{\"name\":\"c\"}]},"
                "\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
        _cleanup_free_ char *r1 = NULL, *r2 = NULL;

        ASSERT_EQ(check(pending, &r1), 0);
        ASSERT_STREQ(r1, "phase Pending");
        /* Ready=True with no container status at all proves nothing either */
        ASSERT_EQ(check(bare, &r2), 0);
        ASSERT_STREQ(r2, "no status for container c yet");
}

TEST(terminated_container) {
        _cleanup_json_ json_object *p = pod("a", "Running", "{\"terminated\":{\"reason\":\"Error\",\"exitCode\":1}}",
                                            "False", "");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(check(p, &reason), 0);
        ASSERT_STREQ(reason, "container c not running (terminated: Error)");
}

static json_object *list_of(json_object **pods, size_t n) {
        json_object *a = json_object_new_array();

        ASSERT_TRUE(a);
        for (size_t i = 0; i < n; i++)
                ASSERT_OK(json_object_array_add(a, pods[i]));
        return a;
}

TEST(summary_all_ready) {
        json_object *pods[] = {
                pod("csi-b", "Running", FRESH, "True", ""),
                pod("csi-a", "Running", FRESH, "True", ""),
                /* a finished pod is left out, not counted as not ready */
                pod("job-x", "Succeeded", "{\"terminated\":{\"reason\":\"Completed\"}}", "False", ""),
        };
        _cleanup_json_ json_object *l = list_of(pods, 3);
        char *message = NULL;

        ASSERT_EQ(pod_health_summarize(l, boot_time(), "app=csi", &message), 1);
        ASSERT_TRUE(!message);
}

TEST(summary_names_the_pods_not_ready_in_order) {
        json_object *pods[] = {
                pod("csi-c", "Running", FRESH, "True", ""),
                pod("csi-b", "Running", STALE, "True", ""),
                pod("csi-a", "Running", "{\"waiting\":{\"reason\":\"CrashLoopBackOff\"}}", "False", ""),
        };
        _cleanup_json_ json_object *l = list_of(pods, 3);
        _cleanup_free_ char *message = NULL;

        ASSERT_EQ(pod_health_summarize(l, boot_time(), "app=csi", &message), 0);
        ASSERT_STREQ(message, "2 of 3 pods not ready: kube-system/csi-a (container c not running (waiting: "
                     "CrashLoopBackOff)); kube-system/csi-b (container c runs since 2025-12-20T08:00:00Z, before "
                     "this boot (no status from the kubelet of this boot yet))");
}

TEST(summary_caps_the_names) {
        json_object *pods[POD_HEALTH_MESSAGE_PODS_MAX + 3];
        _cleanup_json_ json_object *l = NULL;
        _cleanup_free_ char *message = NULL;

        for (size_t i = 0; i < ELEMENTSOF(pods); i++) {
                char name[16];
                snprintf(name, sizeof name, "p%02zu", i);
                pods[i] = pod(name, "Pending", "{\"waiting\":{}}", "False", "");
        }
        l = list_of(pods, ELEMENTSOF(pods));
        ASSERT_EQ(pod_health_summarize(l, boot_time(), "app=csi", &message), 0);
        ASSERT_TRUE(startswith(message, "8 of 8 pods not ready: kube-system/p00 (phase Pending);"));
        ASSERT_TRUE(strstr(message, "kube-system/p04 (phase Pending) and 3 more"));
        ASSERT_FALSE(strstr(message, "p05"));
}

/* A gate that passes on nothing is no gate. */
TEST(summary_of_no_pods_waits) {
        _cleanup_json_ json_object *empty = json_object_new_array();
        json_object *done[] = { pod("job-x", "Failed", "{\"terminated\":{\"reason\":\"Error\"}}", "False", "") };
        _cleanup_json_ json_object *finished = list_of(done, 1);
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL;

        ASSERT_EQ(pod_health_summarize(empty, boot_time(), "app=csi", &m1), 0);
        ASSERT_STREQ(m1, "no pod on this node matches WaitForPodsSelector=app=csi");
        ASSERT_EQ(pod_health_summarize(NULL, boot_time(), "app=csi", &m2), 0);
        ASSERT_STREQ(m2, "no pod on this node matches WaitForPodsSelector=app=csi");
        ASSERT_EQ(pod_health_summarize(finished, boot_time(), "app=csi", &m3), 0);
        ASSERT_STREQ(m3, "no pod on this node matches WaitForPodsSelector=app=csi");
        ASSERT_EQ(pod_health_summarize(empty, boot_time(), "app=csi", NULL), 0);
}

int main(void) {
        RUN(fresh_running_ready_pod_is_ready);
        RUN(stale_ready_status_from_before_the_boot_is_not_ready);
        RUN(start_time_has_whole_seconds);
        RUN(restarting_after_the_reboot_is_not_ready);
        RUN(fresh_but_not_ready_says_why);
        RUN(terminating_pod_is_not_ready);
        RUN(pending_pod_and_missing_status);
        RUN(terminated_container);
        RUN(summary_all_ready);
        RUN(summary_names_the_pods_not_ready_in_order);
        RUN(summary_caps_the_names);
        RUN(summary_of_no_pods_waits);
        return 0;
}
