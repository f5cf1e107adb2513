/* SPDX-License-Identifier: Apache-2.0 */
/* The drain. First the pure decision which pods it leaves alone, then whole drains against the
 * test API server, each a user story:
 *   - a drain evicts every pod it should, leaves DaemonSet, mirror and finished pods alone, waits
 *     for pods that were terminating already, and does not wait forever for one stuck terminating;
 *   - a PodDisruptionBudget that never allows an eviction is retried at a steady pace (never a
 *     tight loop) until the timeout, which names each pod and the budget that holds it;
 *   - a budget that allows one eviction at a time still drains the node, as the ReplicaSet
 *     controller brings the evicted replicas up elsewhere;
 *   - a pod scheduled onto the node during the drain is evicted too, and stopping a drain in the
 *     middle leaves nothing running: no request, no handler call;
 *   - against a server without policy/v1 evictions the drain falls back to policy/v1beta1. */
#include <string.h>

#include "drain.h"
#include "json-util.h"
#include "kube-test-server.h"
#include "string-util.h"
#include "tests.h"

/* The pure decision: which pods the drain leaves alone. */

static json_object *J(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

#define POD_HEAD "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\",\"uid\":\"u1\""

TEST(skip_mirror_pod) {
        _cleanup_json_ json_object *pod = J(POD_HEAD ",\"annotations\":{\"kubernetes.io/config.mirror\":\"abc\","
                                            "\"kubernetes.io/config.source\":\"file\"},"
                                            "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\","
                                            "\"name\":\"n1\",\"uid\":\"x\",\"controller\":true}]},"
                                            "\"status\":{\"phase\":\"Running\"}}");
        const char *reason = NULL;

        ASSERT_TRUE(drain_pod_is_skipped(pod, &reason));
        ASSERT_STREQ(reason, "mirror pod");
}

TEST(skip_daemonset_pod) {
        _cleanup_json_ json_object *pod = J(POD_HEAD ",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
                                            "\"kind\":\"DaemonSet\",\"name\":\"fluentd\",\"uid\":\"x\","
                                            "\"controller\":true,\"blockOwnerDeletion\":true}]},"
                                            "\"status\":{\"phase\":\"Running\"}}");
        /* a DaemonSet that merely owns the pod, without being its controller, does not count */
        _cleanup_json_ json_object *owned = J(POD_HEAD ",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
                                              "\"kind\":\"DaemonSet\",\"name\":\"fluentd\",\"uid\":\"x\"}]},"
                                              "\"status\":{\"phase\":\"Running\"}}");
        const char *reason = NULL;

        ASSERT_TRUE(drain_pod_is_skipped(pod, &reason));
        ASSERT_STREQ(reason, "managed by a DaemonSet");
        ASSERT_FALSE(drain_pod_is_skipped(owned, &reason));
        ASSERT_TRUE(reason == NULL);
}

TEST(skip_finished_pods) {
        _cleanup_json_ json_object *ok = J(POD_HEAD "},\"status\":{\"phase\":\"Succeeded\"}}");
        _cleanup_json_ json_object *failed = J(POD_HEAD "},\"status\":{\"phase\":\"Failed\"}}");
        _cleanup_json_ json_object *pending = J(POD_HEAD "},\"status\":{\"phase\":\"Pending\"}}");
        const char *reason = NULL;

        ASSERT_TRUE(drain_pod_is_skipped(ok, &reason));
        ASSERT_STREQ(reason, "finished");
        ASSERT_TRUE(drain_pod_is_skipped(failed, &reason));
        ASSERT_STREQ(reason, "finished");
        ASSERT_FALSE(drain_pod_is_skipped(pending, NULL));
}

TEST(skip_pods_the_selector_leaves_out) {
        _cleanup_json_ json_object *web = J(POD_HEAD ",\"labels\":{\"app\":\"web\",\"tier\":\"front\"}},"
                                            "\"status\":{\"phase\":\"Running\"}}");
        _cleanup_json_ json_object *bare = J(POD_HEAD "},\"status\":{\"phase\":\"Running\"}}");
        _cleanup_(label_selector_freep) LabelSelector *s = NULL, *all = NULL;
        const char *reason = NULL;

        ASSERT_OK(label_selector_parse("app in (web,api),tier!=db", &s));
        ASSERT_OK(label_selector_parse("", &all));

        ASSERT_FALSE(drain_pod_is_skipped_full(web, s, &reason));
        ASSERT_TRUE(drain_pod_is_skipped_full(bare, s, &reason));
        ASSERT_STREQ(reason, "not selected by the pod selector");
        ASSERT_FALSE(drain_pod_is_skipped_full(bare, all, NULL));
        ASSERT_FALSE(drain_pod_is_skipped_full(bare, NULL, NULL));
        /* without a selector argument nothing is left out for its labels */
        ASSERT_FALSE(drain_pod_is_skipped(bare, NULL));
}

TEST(normal_and_terminating_pods_are_drained) {
        _cleanup_json_ json_object *rs = J(POD_HEAD ",\"labels\":{\"app\":\"web\"},\"ownerReferences\":["
                                           "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-1\","
                                           "\"uid\":\"r\",\"controller\":true}]},"
                                           "\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\"}}");
        /* already terminating: not evicted again, but waited for, so not "skipped" */
        _cleanup_json_ json_object *dying = J(POD_HEAD ",\"deletionTimestamp\":\"2026-11-27T10:00:00Z\"},"
                                              "\"status\":{\"phase\":\"Running\"}}");
        _cleanup_json_ json_object *bare = J("{}");
        const char *reason = "unset";

        ASSERT_FALSE(drain_pod_is_skipped(rs, &reason));
        ASSERT_TRUE(reason == NULL);
        ASSERT_FALSE(drain_pod_is_skipped(dying, NULL));
        ASSERT_FALSE(drain_pod_is_skipped(bare, NULL));
        ASSERT_FALSE(drain_pod_is_skipped(NULL, NULL));
}
