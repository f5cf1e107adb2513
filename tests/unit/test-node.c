/* SPDX-License-Identifier: Apache-2.0 */
/* The Node object: the pure readers and patch builders, then every write against the test API
 * server: an admin sees the node cordoned by us (and our mark on it), uncordoned without our mark,
 * our labels and annotations, our PreferNoSchedule taint added and removed next to theirs (with no
 * write at all when nothing changes, and a lost race redone), and an Event on the Node. */
#include <string.h>

#include "json-util.h"
#include "kube-test-server.h"
#include "kubeconfig.h"
#include "node.h"
#include "string-util.h"
#include "fixtures.h"
#include "tests.h"

static bool json_equal(json_object *a, const char *text) {
        _cleanup_json_ json_object *b = J(text);

        return json_object_equal(a, b);
}

/* -------------------------------------------------------------------------------------------- */
/* Pure */

TEST(ready_and_unschedulable) {
        _cleanup_json_ json_object *ready = J("{\"spec\":{\"unschedulable\":true},\"status\":{\"conditions\":["
                                              "{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
                                              "{\"type\":\"Ready\",\"status\":\"True\"}]}}");
        _cleanup_json_ json_object *not_ready = J("{\"spec\":{},\"status\":{\"conditions\":["
                                                  "{\"type\":\"Ready\",\"status\":\"Unknown\"}]}}");
        _cleanup_json_ json_object *bare = J("{}");
        _cleanup_json_ json_object *odd = J("{\"spec\":{\"unschedulable\":\"yes\"},\"status\":{\"conditions\":"
                                            "{\"type\":\"Ready\",\"status\":\"True\"}}}");

        ASSERT_TRUE(node_is_ready(ready));
        ASSERT_TRUE(node_is_unschedulable(ready));
        ASSERT_FALSE(node_is_ready(not_ready));
        ASSERT_FALSE(node_is_unschedulable(not_ready));
        ASSERT_FALSE(node_is_ready(bare));
        ASSERT_FALSE(node_is_unschedulable(bare));
        ASSERT_FALSE(node_is_ready(NULL));
        /* wrong types read as absent */
        ASSERT_FALSE(node_is_ready(odd));
        ASSERT_FALSE(node_is_unschedulable(odd));
}

/* After a reboot the Node still says Ready=True with the old bootID until the node controller's
 * grace period runs out; only the kubelet of this boot brings the node back. Boot IDs as the real
 * kubelet reports them: /proc/sys/kernel/random/boot_id, dashed. */
TEST(kubelet_is_back) {
        static const char *const ours = "3f2504e04f8911d39a0c0305e82c3301";
        const usec_t boot = 1764842400ULL * USEC_PER_SEC + 500 * USEC_PER_MSEC; /* 2025-12-04T10:00:00.5Z */
        _cleanup_json_ json_object *stale = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"aaaaaaaa-4f89-11d3-9a0c-0305e82c3301\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                "\"lastHeartbeatTime\":\"2025-12-04T09:59:50Z\"}]}}");
        _cleanup_json_ json_object *back = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3F2504E0-4F89-11D3-9A0C-0305E82C3301\"},"
                "\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
                "{\"type\":\"Ready\",\"status\":\"True\",\"lastHeartbeatTime\":\"2025-12-04T10:00:07Z\"}]}}");
        _cleanup_json_ json_object *same_second = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                "\"lastHeartbeatTime\":\"2025-12-04T10:00:00Z\"}]}}");
        _cleanup_json_ json_object *not_ready = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
                "\"lastHeartbeatTime\":\"2025-12-04T10:00:07Z\"}]}}");
        _cleanup_json_ json_object *old_heartbeat = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                "\"lastHeartbeatTime\":\"2025-12-04T09:59:58Z\"}]}}");
        _cleanup_json_ json_object *no_heartbeat = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3301\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
        _cleanup_json_ json_object *longer_id = J(
                "{\"status\":{\"nodeInfo\":{\"bootID\":\"3f2504e0-4f89-11d3-9a0c-0305e82c330100\"},"
                "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
                "\"lastHeartbeatTime\":\"2025-12-04T10:00:07Z\"}]}}");
        const char *why = NULL;

        ASSERT_FALSE(node_kubelet_is_back(stale, ours, boot, &why));
        ASSERT_TRUE(strstr(why, "another boot") != NULL);
        ASSERT_TRUE(node_kubelet_is_back(back, ours, boot, &why));
        ASSERT_TRUE(why == NULL);
        /* a heartbeat in the boot's own second counts: the API keeps whole seconds */
        ASSERT_TRUE(node_kubelet_is_back(same_second, ours, boot, NULL));
        ASSERT_FALSE(node_kubelet_is_back(not_ready, ours, boot, &why));
        ASSERT_TRUE(strstr(why, "Ready") != NULL);
        ASSERT_FALSE(node_kubelet_is_back(old_heartbeat, ours, boot, &why));
        ASSERT_TRUE(strstr(why, "predates") != NULL);
        ASSERT_FALSE(node_kubelet_is_back(no_heartbeat, ours, boot, NULL));
        ASSERT_FALSE(node_kubelet_is_back(longer_id, ours, boot, NULL));
        ASSERT_FALSE(node_kubelet_is_back(NULL, ours, boot, NULL));
}

TEST(unschedulable_patch) {
        _cleanup_json_ json_object *on = NULL, *off = NULL, *unmarked = NULL;

        ASSERT_OK(node_unschedulable_patch(true, true, &on));
        ASSERT_TRUE(json_equal(on, "{\"spec\":{\"unschedulable\":true},"
                                   "\"metadata\":{\"annotations\":{\"nodereboot.io/cordoned\":\"true\"}}}"));
        ASSERT_OK(node_unschedulable_patch(false, true, &off));
        ASSERT_TRUE(json_equal(off, "{\"spec\":{\"unschedulable\":null},"
                                    "\"metadata\":{\"annotations\":{\"nodereboot.io/cordoned\":null}}}"));
        /* a node an admin cordoned before us gets no mark: nothing may later take it for ours */
        ASSERT_OK(node_unschedulable_patch(true, false, &unmarked));
        ASSERT_TRUE(json_equal(unmarked, "{\"spec\":{\"unschedulable\":true}}"));
}

/* The drain's cordon carries the mid-cycle mark in the same write, whoever cordoned the node
 * first: the lock never takes an expired slot from a holder that bears it. */
TEST(cordon_patch) {
        _cleanup_json_ json_object *ours = NULL, *admins = NULL;
        const usec_t now = 1764842400ULL * USEC_PER_SEC;

        ASSERT_OK(node_cordon_patch(true, now, &ours));
        ASSERT_TRUE(json_equal(ours, "{\"spec\":{\"unschedulable\":true},\"metadata\":{\"annotations\":{"
                                     "\"nodereboot.io/reboot-in-progress\":\"2025-12-04T10:00:00Z\","
                                     "\"nodereboot.io/cordoned\":\"true\"}}}"));
        ASSERT_OK(node_cordon_patch(false, now, &admins));
        ASSERT_TRUE(json_equal(admins, "{\"spec\":{\"unschedulable\":true},\"metadata\":{\"annotations\":{"
                                       "\"nodereboot.io/reboot-in-progress\":\"2025-12-04T10:00:00Z\"}}}"));
}

TEST(taints_update) {
        _cleanup_json_ json_object *none = J("{\"spec\":{}}");
        _cleanup_json_ json_object *theirs = J("{\"spec\":{\"taints\":[{\"key\":\"gpu\",\"value\":\"x\","
                                               "\"effect\":\"NoSchedule\"}]}}");
        _cleanup_json_ json_object *ours = J("{\"spec\":{\"taints\":[{\"key\":\"gpu\",\"effect\":\"NoSchedule\"},"
                                             "{\"key\":\"nodereboot.io/reboot\",\"effect\":\"PreferNoSchedule\"},"
                                             "{\"key\":\"nodereboot.io/reboot\",\"effect\":\"NoExecute\"}]}}");
        json_object *t = NULL;

        ASSERT_EQ(node_taints_update(none, "nodereboot.io/reboot", true, &t), 1);
        ASSERT_TRUE(json_equal(t, "[{\"key\":\"nodereboot.io/reboot\",\"effect\":\"PreferNoSchedule\"}]"));
        t = json_object_put_and_null(t);

        ASSERT_EQ(node_taints_update(theirs, "nodereboot.io/reboot", true, &t), 1);
        ASSERT_TRUE(json_equal(t, "[{\"key\":\"gpu\",\"value\":\"x\",\"effect\":\"NoSchedule\"},"
                                  "{\"key\":\"nodereboot.io/reboot\",\"effect\":\"PreferNoSchedule\"}]"));
        t = json_object_put_and_null(t);

        /* nothing to do: no new list */
        ASSERT_EQ(node_taints_update(none, "nodereboot.io/reboot", false, &t), 0);
        ASSERT_TRUE(t == NULL);
        ASSERT_EQ(node_taints_update(theirs, "nodereboot.io/reboot", false, &t), 0);
        ASSERT_EQ(node_taints_update(ours, "nodereboot.io/reboot", true, &t), 0);
        ASSERT_TRUE(t == NULL);

        /* removal takes only our PreferNoSchedule taint, not an admin's taint under the same key */
        ASSERT_EQ(node_taints_update(ours, "nodereboot.io/reboot", false, &t), 1);
        ASSERT_TRUE(json_equal(t, "[{\"key\":\"gpu\",\"effect\":\"NoSchedule\"},"
                                  "{\"key\":\"nodereboot.io/reboot\",\"effect\":\"NoExecute\"}]"));
        t = json_object_put_and_null(t);

        ASSERT_ERROR(node_taints_update(none, "", true, &t), EINVAL);
}

/* -------------------------------------------------------------------------------------------- */
/* Against the test API server */

static KubeTestServer *server;
static sd_event *event;
static KubeClient *client;

typedef struct Result {
        bool done;
        int error;
        json_object *node;
} Result;

static void on_done(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Result *r = userdata;

        ASSERT_FALSE(r->done);          /* exactly once */
        r->done = true;
        r->error = error;
}

static void on_node(KubeClient *c, int error, json_object *node, void *userdata) {
        Result *r = userdata;

        ASSERT_FALSE(r->done);
        r->done = true;
        r->error = error;
        ASSERT_TRUE(error < 0 ? !node : !!node);
        r->node = node ? json_object_get(node) : NULL;
}

static int wait_for(Result *r) {
        ASSERT_OK(kube_test_run_until(event, &r->done, 20 * USEC_PER_SEC));
        return r->error;
}

static json_object *control(const char *method, const char *path, const char *body) {
        json_object *reply = NULL;

        ASSERT_OK(kube_test_control_json(server, method, path, body, &reply));
        return reply;
}

/* The node as stored by the server, read behind the API. */
static json_object *stored_node(const char *name) {
        _cleanup_free_ char *path = strjoin("/objects?kind=Node&name=", name);
        _cleanup_json_ json_object *items = control("GET", path, NULL);

        ASSERT_EQ(json_array_length(items), 1);
        return json_object_get(json_object_array_get_idx(items, 0));
}

static const char *annotation(json_object *node, const char *key) {
        json_object *v = json_get_member(json_get(node, "metadata.annotations"), key);

        return v ? json_object_get_string(v) : NULL;
}

static const char *label(json_object *node, const char *key) {
        json_object *v = json_get_member(json_get(node, "metadata.labels"), key);

        return v ? json_object_get_string(v) : NULL;
}

/* How many requests of method to path the server has seen since the last clear. */
static int requests(const char *method, const char *path) {
        int n = kube_test_count_requests(server, method, path);

        ASSERT_OK(n);
        return n;
}

static void clear_log(void) {
        json_object_put(control("DELETE", "/log", NULL));
}

static const char seed[] =
        "["
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n1\","
        "  \"labels\":{\"kubernetes.io/hostname\":\"n1\"},\"annotations\":{\"admin.example.com/note\":\"keep\"}},"
        "  \"spec\":{\"taints\":[{\"key\":\"dedicated\",\"value\":\"db\",\"effect\":\"NoSchedule\"}]},"
        "  \"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}},"
        "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"n2\"},"
        "  \"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}"
        "]";

static void server_setup(void) {
        Kubeconfig k = {};

        ASSERT_OK(kube_test_server_start(&server, NULL));
        json_object_put(control("POST", "/objects", seed));

        ASSERT_OK(sd_event_new(&event));
        kube_test_server_kubeconfig(server, &k);
        ASSERT_OK(kube_client_new(&client, event, &k));
        kube_client_set_retry(client, 5, 10 * USEC_PER_MSEC, 100 * USEC_PER_MSEC);
}

static void server_teardown(void) {
        client = kube_client_free(client);
        event = sd_event_unref(event);
        server = kube_test_server_stop(server);
}

TEST(get) {
        Result r = {}, missing = {}, n2 = {};

        ASSERT_OK(node_get(client, "n1", on_node, &r));
        ASSERT_OK(wait_for(&r));
        ASSERT_STREQ(json_get_string(r.node, "metadata.name"), "n1");
        ASSERT_TRUE(node_is_ready(r.node));
        ASSERT_FALSE(node_is_unschedulable(r.node));
        json_object_put(r.node);

        ASSERT_OK(node_get(client, "n2", on_node, &n2));
        ASSERT_OK(wait_for(&n2));
        ASSERT_FALSE(node_is_ready(n2.node));
        json_object_put(n2.node);

        ASSERT_OK(node_get(client, "nope", on_node, &missing));
        ASSERT_ERROR(wait_for(&missing), ENOENT);

        ASSERT_ERROR(node_get(client, "", on_node, &r), EINVAL);
        ASSERT_ERROR(node_get(client, "a/b", on_node, &r), EINVAL);
}

static bool has_taint(json_object *node, const char *key, const char *effect) {
        json_object *taints = json_get(node, "spec.taints");

        for (size_t i = 0; i < json_array_length(taints); i++) {
                json_object *t = json_object_array_get_idx(taints, i);

                if (streq_ptr(json_get_string(t, "key"), key) && streq_ptr(json_get_string(t, "effect"), effect))
                        return true;
        }
        return false;
}

/* The node as stored once the node lifecycle controller has caught up with an uncordon: like the
 * real one (doNoScheduleTaintingPass, run from its informer), the test server's controller takes
 * its node.kubernetes.io/unschedulable taint off a moment after the write, not within it. */
static json_object *stored_node_untainted(const char *name) {
        for (unsigned i = 0; i < 100 * TEST_SLOW; i++) {
                json_object *node = stored_node(name);

                if (!has_taint(node, "node.kubernetes.io/unschedulable", "NoSchedule"))
                        return node;
                json_object_put(node);
                (void) usleep(50 * 1000);
        }
        return stored_node(name);
}

/* An admin sees which cordon is ours, and our uncordon leaves their annotations alone. */
TEST(cordon_and_uncordon) {
        _cleanup_json_ json_object *cordoned = NULL, *again = NULL, *uncordoned = NULL;
        Result a = {}, b = {}, c = {}, missing = {};

        ASSERT_OK(node_set_unschedulable(client, "n1", true, on_done, &a));
        ASSERT_OK(wait_for(&a));
        cordoned = stored_node("n1");
        ASSERT_TRUE(node_is_unschedulable(cordoned));
        ASSERT_STREQ(annotation(cordoned, NODE_ANNOTATION_CORDONED), "true");
        ASSERT_STREQ(annotation(cordoned, "admin.example.com/note"), "keep");

        /* idempotent */
        ASSERT_OK(node_set_unschedulable(client, "n1", true, on_done, &b));
        ASSERT_OK(wait_for(&b));
        again = stored_node("n1");
        ASSERT_TRUE(node_is_unschedulable(again));
        ASSERT_STREQ(annotation(again, NODE_ANNOTATION_CORDONED), "true");

        ASSERT_OK(node_set_unschedulable(client, "n1", false, on_done, &c));
        ASSERT_OK(wait_for(&c));
        uncordoned = stored_node_untainted("n1");
        ASSERT_FALSE(node_is_unschedulable(uncordoned));
        ASSERT_TRUE(annotation(uncordoned, NODE_ANNOTATION_CORDONED) == NULL);
        ASSERT_STREQ(annotation(uncordoned, "admin.example.com/note"), "keep");
        /* the taint an admin set is untouched by all this */
        ASSERT_EQ(json_array_length(json_get(uncordoned, "spec.taints")), 1);

        ASSERT_OK(node_set_unschedulable(client, "gone", true, on_done, &missing));
        ASSERT_ERROR(wait_for(&missing), ENOENT);
}

TEST(annotations_and_labels) {
        _cleanup_json_ json_object *after_set = NULL, *after_remove = NULL;
        char *set[] = { (char *) NODE_ANNOTATION_IN_PROGRESS, (char *) "2026-11-27T10:00:00Z",
                        (char *) NODE_ANNOTATION_REASON, (char *) "linux-image-6.1", NULL };
        /* a removal as the last pair: the list still ends with a NULL key */
        char *remove[] = { (char *) NODE_ANNOTATION_REASON, (char *) "kept? no: replaced",
                           (char *) NODE_ANNOTATION_IN_PROGRESS, NULL, NULL };
        char *labels[] = { (char *) "nodereboot.io/state", (char *) "draining", NULL };
        char *unlabel[] = { (char *) "nodereboot.io/state", NULL, NULL };
        Result a = {}, b = {}, c = {}, d = {};
        _cleanup_json_ json_object *labelled = NULL, *unlabelled = NULL;

        ASSERT_OK(node_patch_annotations(client, "n1", set, on_done, &a));
        ASSERT_OK(wait_for(&a));
        after_set = stored_node("n1");
        ASSERT_STREQ(annotation(after_set, NODE_ANNOTATION_IN_PROGRESS), "2026-11-27T10:00:00Z");
        ASSERT_STREQ(annotation(after_set, NODE_ANNOTATION_REASON), "linux-image-6.1");
        ASSERT_STREQ(annotation(after_set, "admin.example.com/note"), "keep");

        ASSERT_OK(node_patch_annotations(client, "n1", remove, on_done, &b));
        ASSERT_OK(wait_for(&b));
        after_remove = stored_node("n1");
        ASSERT_TRUE(annotation(after_remove, NODE_ANNOTATION_IN_PROGRESS) == NULL);
        ASSERT_STREQ(annotation(after_remove, NODE_ANNOTATION_REASON), "kept? no: replaced");
        ASSERT_STREQ(annotation(after_remove, "admin.example.com/note"), "keep");

        ASSERT_OK(node_patch_labels(client, "n1", labels, on_done, &c));
        ASSERT_OK(wait_for(&c));
        labelled = stored_node("n1");
        ASSERT_STREQ(label(labelled, "nodereboot.io/state"), "draining");
        ASSERT_STREQ(label(labelled, "kubernetes.io/hostname"), "n1");

        ASSERT_OK(node_patch_labels(client, "n1", unlabel, on_done, &d));
        ASSERT_OK(wait_for(&d));
        unlabelled = stored_node("n1");
        ASSERT_TRUE(label(unlabelled, "nodereboot.io/state") == NULL);
        ASSERT_STREQ(label(unlabelled, "kubernetes.io/hostname"), "n1");
}

TEST(taint) {
        _cleanup_json_ json_object *added = NULL, *removed = NULL, *bare = NULL;
        Result a = {}, b = {}, c = {}, d = {}, e = {};

        clear_log();
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", true, on_done, &a));
        ASSERT_OK(wait_for(&a));
        added = stored_node("n1");
        ASSERT_TRUE(has_taint(added, "nodereboot.io/reboot", "PreferNoSchedule"));
        ASSERT_TRUE(has_taint(added, "dedicated", "NoSchedule"));
        ASSERT_EQ(json_array_length(json_get(added, "spec.taints")), 2);
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 1);

        /* present already: one read, no write */
        clear_log();
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", true, on_done, &b));
        ASSERT_OK(wait_for(&b));
        ASSERT_EQ(requests("GET", "/api/v1/nodes/n1"), 1);
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 0);

        clear_log();
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", false, on_done, &c));
        ASSERT_OK(wait_for(&c));
        removed = stored_node("n1");
        ASSERT_FALSE(has_taint(removed, "nodereboot.io/reboot", "PreferNoSchedule"));
        ASSERT_TRUE(has_taint(removed, "dedicated", "NoSchedule"));
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 1);

        clear_log();
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", false, on_done, &d));
        ASSERT_OK(wait_for(&d));
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 0);

        /* a NotReady node: only the node lifecycle controller's not-ready taints, which stay */
        ASSERT_OK(node_set_taint(client, "n2", "nodereboot.io/reboot", true, on_done, &e));
        ASSERT_OK(wait_for(&e));
        bare = stored_node("n2");
        ASSERT_TRUE(has_taint(bare, "nodereboot.io/reboot", "PreferNoSchedule"));
        for (size_t i = 0; i < json_array_length(json_get(bare, "spec.taints")); i++) {
                const char *key = json_get_string(json_object_array_get_idx(json_get(bare, "spec.taints"), i),
                                                  "key");
                ASSERT_TRUE(streq_ptr(key, "nodereboot.io/reboot") || startswith(key, "node.kubernetes.io/"));
        }
}

/* Someone else writes the node between our read and our write: we read again and win, without
 * losing their change; a node that keeps changing under us gives up after a bound. */
TEST(taint_lost_races) {
        _cleanup_json_ json_object *node = NULL;
        Result a = {}, b = {};

        clear_log();
        json_object_put(control("POST", "/faults",
                                "{\"action\":\"conflict\",\"method\":\"PATCH\",\"match\":\"^/api/v1/nodes/n1$\","
                                "\"count\":2}"));
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", true, on_done, &a));
        ASSERT_OK(wait_for(&a));
        node = stored_node("n1");
        ASSERT_TRUE(has_taint(node, "nodereboot.io/reboot", "PreferNoSchedule"));
        ASSERT_TRUE(has_taint(node, "dedicated", "NoSchedule"));
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 3);
        ASSERT_EQ(requests("GET", "/api/v1/nodes/n1"), 3);
        json_object_put(control("DELETE", "/faults", NULL));

        clear_log();
        json_object_put(control("POST", "/faults",
                                "{\"action\":\"conflict\",\"method\":\"PATCH\",\"match\":\"^/api/v1/nodes/n1$\"}"));
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/reboot", false, on_done, &b));
        ASSERT_ERROR(wait_for(&b), ESTALE);
        ASSERT_EQ(requests("PATCH", "/api/v1/nodes/n1"), 5);
        json_object_put(control("DELETE", "/faults", NULL));
}

/* The write itself is a JSON patch that tests the resourceVersion it was computed from. */
TEST(taint_patch_shape) {
        _cleanup_json_ json_object *log = NULL;
        json_object *patch = NULL;
        Result a = {};

        clear_log();
        ASSERT_OK(node_set_taint(client, "n1", "nodereboot.io/other", true, on_done, &a));
        ASSERT_OK(wait_for(&a));
        log = control("GET", "/log", NULL);
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (streq_ptr(json_get_string(e, "method"), "PATCH"))
                        patch = e;
        }
        ASSERT_TRUE(patch);
        ASSERT_STREQ(json_get_string(patch, "content_type"), "application/json-patch+json");
        ASSERT_EQ(json_array_length(json_get(patch, "body")), 2);
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(json_get(patch, "body"), 0), "op"), "test");
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(json_get(patch, "body"), 0), "path"),
                     "/metadata/resourceVersion");
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(json_get(patch, "body"), 1), "path"),
                     "/spec/taints");
}

TEST(event) {
        _cleanup_json_ json_object *events = NULL;
        json_object *ev = NULL;
        Result a = {}, bad = {};

        ASSERT_OK(node_post_event(client, "n1", "Normal", "RebootScheduled", "Rebooting n1 for linux-image-6.1",
                                  on_done, &a));
        ASSERT_OK(wait_for(&a));

        events = control("GET", "/objects?kind=Event&namespace=default", NULL);
        for (size_t i = 0; i < json_array_length(events); i++) {
                json_object *e = json_object_array_get_idx(events, i);

                if (streq_ptr(json_get_string(e, "reason"), "RebootScheduled"))
                        ev = e;
        }
        ASSERT_TRUE(ev);
        ASSERT_TRUE(startswith(json_get_string(ev, "metadata.name"), "n1."));
        ASSERT_EQ(strlen(json_get_string(ev, "metadata.name")), strlen("n1.") + 16);
        ASSERT_STREQ(json_get_string(ev, "involvedObject.kind"), "Node");
        ASSERT_STREQ(json_get_string(ev, "involvedObject.name"), "n1");
        ASSERT_STREQ(json_get_string(ev, "involvedObject.uid"), "n1");   /* as the kubelet does: kubectl selects on it */
        ASSERT_STREQ(json_get_string(ev, "type"), "Normal");
        ASSERT_STREQ(json_get_string(ev, "message"), "Rebooting n1 for linux-image-6.1");
        ASSERT_STREQ(json_get_string(ev, "source.component"), "nodereboot");
        ASSERT_STREQ(json_get_string(ev, "source.host"), "n1");
        ASSERT_TRUE(json_get_string(ev, "firstTimestamp"));
        ASSERT_STREQ(json_get_string(ev, "firstTimestamp"), json_get_string(ev, "lastTimestamp"));
        int64_t count = 0;
        ASSERT_TRUE(json_get_int64(ev, "count", &count));
        ASSERT_EQ(count, 1);

        ASSERT_ERROR(node_post_event(client, "n1", "Bad", "R", "m", on_done, &bad), EINVAL);
        ASSERT_ERROR(node_post_event(client, "n1", "Normal", "", "m", on_done, &bad), EINVAL);
}

/* Many waiting nodes report the same stuck slot: one Event, every post a success. */
TEST(event_once) {
        _cleanup_json_ json_object *events = NULL;
        Result a = {}, b = {}, c = {};
        unsigned n = 0;

        ASSERT_OK(node_post_event_once(client, "n1", "stuck nodereboot-0 n1 10:00", "Warning", "LockStuckTest",
                                       "seen by n2", on_done, &a));
        ASSERT_OK(wait_for(&a));
        ASSERT_OK(node_post_event_once(client, "n1", "stuck nodereboot-0 n1 10:00", "Warning", "LockStuckTest",
                                       "seen by n3", on_done, &b));
        ASSERT_OK(wait_for(&b));
        ASSERT_OK(node_post_event_once(client, "n1", "stuck nodereboot-0 n1 10:30", "Warning", "LockStuckTest",
                                       "seen by n3, later renewal", on_done, &c));
        ASSERT_OK(wait_for(&c));
        ASSERT_OK(a.error);
        ASSERT_OK(b.error);
        ASSERT_OK(c.error);

        events = control("GET", "/objects?kind=Event&namespace=default", NULL);
        for (size_t i = 0; i < json_array_length(events); i++)
                if (streq_ptr(json_get_string(json_object_array_get_idx(events, i), "reason"), "LockStuckTest"))
                        n++;
        ASSERT_EQ(n, 2u);
}

int main(void) {
        RUN(ready_and_unschedulable);
        RUN(kubelet_is_back);
        RUN(unschedulable_patch);
        RUN(cordon_patch);
        RUN(taints_update);

        if (!kube_test_server_available()) {
                fprintf(stderr, "The test API server is not available, skipping the rest.\n");
                return 77;
        }
        server_setup();
        RUN(get);
        RUN(cordon_and_uncordon);
        RUN(annotations_and_labels);
        RUN(taint);
        RUN(taint_lost_races);
        RUN(taint_patch_shape);
        RUN(event);
        RUN(event_once);
        server_teardown();
        return 0;
}
