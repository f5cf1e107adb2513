/* SPDX-License-Identifier: Apache-2.0 */
/* The drain. First the pure decision which pods it leaves alone, then whole drains against the
 * test API server, each a user story:
 *   - a drain evicts every pod it should, leaves DaemonSet, mirror and finished pods alone, waits
 *     for pods that were terminating already, and does not wait forever for one stuck terminating;
 *   - a PodDisruptionBudget that never allows an eviction is retried at a steady pace (never a
 *     tight loop) until the timeout, which names each pod and the budget that holds it;
 *   - a budget that allows one eviction at a time still drains the node, as the ReplicaSet
 *     controller brings the evicted replicas up elsewhere;
 *   - like kubectl drain, the drain evicts the pods listed when it starts: a pod the scheduler puts
 *     on the cordoned node later is neither evicted nor waited for; and stopping a drain in the
 *     middle leaves nothing running: no request, no handler call;
 *   - a 409 means the pod is gone only when its UID precondition failed; the API server's own
 *     conflicts on the budget are retried until the pod is really gone;
 *   - a budget in a state that needs a human (403 "disruptions allowed is negative", 500 "more
 *     than one PodDisruptionBudget") is retried until the timeout, said in the status line, in the
 *     timeout's message and once in an Event on the Node; a 403 from RBAC ends the drain at once;
 *   - a 429 is retried after the server's Retry-After, or pdb_retry_usec without one;
 *   - against a server without policy/v1 evictions the drain falls back to policy/v1beta1;
 *   - a pod selector limits the drain, and API throttling (429 without a budget) is not mistaken
 *     for a PodDisruptionBudget. */
#include <string.h>

#include "drain.h"
#include "json-util.h"
#include "kube-test-server.h"
#include "string-util.h"
#include "fixtures.h"
#include "tests.h"

/* The pure decision: which pods the drain leaves alone. */

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

/* -------------------------------------------------------------------------------------------- */
/* Against the test API server */

static KubeTestServer *server;
static sd_event *event;
static KubeClient *client;

static void server_setup(const char *objects) {
        Kubeconfig k = {};

        /* evicted pods are gone after 1% of their grace period */
        ASSERT_OK(kube_test_server_start(&server, "--deletion-scale 0.01"));
        ASSERT_OK(kube_test_control(server, "POST", "/objects", objects, NULL));

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

/* Objects, as JSON text. All pods live in namespace "shop". */

static char *node(const char *name, bool unschedulable) {
        return strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
                             "\"spec\":{%s},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
                             name, unschedulable ? "\"unschedulable\":true" : "");
}

static char *node_not_ready(const char *name) {
        return strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"},"
                             "\"spec\":{},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}",
                             name);
}

static char *replicaset(const char *app, unsigned replicas) {
        return strdup_printf("{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"%s\","
                             "\"namespace\":\"shop\",\"uid\":\"rs-%s\"},\"spec\":{\"replicas\":%u,"
                             "\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{\"metadata\":{"
                             "\"labels\":{\"app\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}}}",
                             app, app, replicas, app, app);
}

static char *pdb(const char *name, const char *app, unsigned min_available) {
        return strdup_printf("{\"apiVersion\":\"policy/v1\",\"kind\":\"PodDisruptionBudget\",\"metadata\":{"
                             "\"name\":\"%s\",\"namespace\":\"shop\"},\"spec\":{\"minAvailable\":%u,"
                             "\"selector\":{\"matchLabels\":{\"app\":\"%s\"}}}}", name, min_available, app);
}

/* extra_metadata and extra go right after the labels and after the spec (",\"status\":{...}"). */
static char *pod(const char *name, const char *node_name, const char *app, const char *extra_metadata,
                 const char *extra) {
        return strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
                             "\"namespace\":\"shop\",\"labels\":{\"app\":\"%s\"}%s},\"spec\":{\"nodeName\":\"%s\","
                             "\"terminationGracePeriodSeconds\":30,\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}%s}",
                             name, app, strempty(extra_metadata), node_name, strempty(extra));
}

static char *replica(const char *name, const char *node_name, const char *app) {
        _cleanup_free_ char *owner = strdup_printf(",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
                                                   "\"kind\":\"ReplicaSet\",\"name\":\"%s\",\"uid\":\"rs-%s\","
                                                   "\"controller\":true}]", app, app);
        ASSERT_TRUE(owner);
        return pod(name, node_name, app, owner, NULL);
}

/* A pod deleted at `since` with the given grace period: its deletionTimestamp says when the grace
 * period ends, as the API server sets it. Posted first as it was, then as it is now (the server
 * strips deletion fields from new objects). */
static char *terminating(const char *name, const char *node_name, usec_t since, unsigned grace) {
        char ts[FORMAT_RFC3339_MAX];
        _cleanup_free_ char *before = NULL, *after = NULL, *md = NULL;

        ASSERT_TRUE(format_rfc3339(ts, sizeof ts, since + grace * USEC_PER_SEC, false));
        md = strdup_printf(",\"deletionTimestamp\":\"%s\",\"deletionGracePeriodSeconds\":%u", ts, grace);
        before = pod(name, node_name, "bare", NULL, NULL);
        after = pod(name, node_name, "bare", md, NULL);
        ASSERT_TRUE(md && before && after);
        return strjoin(before, ",", after);
}

/* Joins object texts (taking them) into a JSON array. */
static char *objects(char *first, ...) {
        _cleanup_free_ char *s = strdup("[");
        va_list ap;

        ASSERT_TRUE(s);
        va_start(ap, first);
        for (char *o = first; o; o = va_arg(ap, char *)) {
                char *t;

                ASSERT_TRUE(o);
                t = strjoin(s, s[1] ? "," : "", o);
                ASSERT_TRUE(t);
                free(s);
                free(o);
                s = t;
        }
        va_end(ap);
        {
                char *t = strjoin(s, "]");
                ASSERT_TRUE(t);
                free(s);
                s = t;
        }
        return TAKE_PTR(s);
}

static json_object *stored_pod(const char *name) {
        _cleanup_free_ char *path = strjoin("/objects?kind=Pod&namespace=shop&name=", name);
        _cleanup_json_ json_object *items = NULL;

        ASSERT_OK(kube_test_control_json(server, "GET", path, NULL, &items));
        if (json_array_length(items) == 0)
                return NULL;
        return json_object_get(json_object_array_get_idx(items, 0));
}

static bool pod_exists(const char *name) {
        _cleanup_json_ json_object *p = stored_pod(name);

        return p;
}

static char *eviction_path(const char *name) {
        return strjoin("/api/v1/namespaces/shop/pods/", name, "/eviction");
}

static int evictions(const char *name) {
        _cleanup_free_ char *path = eviction_path(name);
        int n = kube_test_count_requests(server, "POST", path);

        ASSERT_OK(n);
        return n;
}

/* The log entries of the eviction requests for a pod, oldest first. */
static json_object *eviction_log(const char *name) {
        _cleanup_free_ char *path = eviction_path(name);
        _cleanup_json_ json_object *log = NULL;
        json_object *out = json_object_new_array();

        ASSERT_TRUE(out);
        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (streq_ptr(json_get_string(e, "method"), "POST") && streq_ptr(json_get_string(e, "path"), path))
                        ASSERT_OK(json_object_array_add(out, json_object_get(e)));
        }
        return out;
}

static double json_get_double(json_object *o, const char *path) {
        json_object *v = json_get(o, path);

        ASSERT_TRUE(v);
        return json_object_get_double(v);
}

typedef struct DrainResult {
        Drain *drain;
        bool done;
        int error;
        char *message;
        unsigned n_done;
        unsigned n_progress;
        char **progress;
} DrainResult;

static void drain_result_done(DrainResult *r) {
        r->drain = drain_free(r->drain);
        free(r->message);
        strv_free(r->progress);
}

static void on_drain_done(Drain *d, int error, const char *message, void *userdata) {
        DrainResult *r = userdata;

        ASSERT_TRUE(d == r->drain);
        ASSERT_TRUE(message);
        r->n_done++;
        r->done = true;
        r->error = error;
        r->message = strdup(message);
        ASSERT_TRUE(r->message);
        fprintf(stderr, "    done: %s (%s)\n", strerror(ERRNO_VALUE(error)), message);
        /* what the manager does: free the drain from inside its handler */
        r->drain = drain_free(d);
}

static void on_drain_progress(Drain *d, const char *progress, void *userdata) {
        DrainResult *r = userdata;

        ASSERT_TRUE(d == r->drain);
        ASSERT_FALSE(r->done);
        r->n_progress++;
        fprintf(stderr, "    progress: %s\n", progress);
        /* reported only when it changes */
        if (r->progress)
                ASSERT_FALSE(streq(r->progress[strv_length(r->progress) - 1], progress));
        ASSERT_OK(strv_extend(&r->progress, progress));
}

static bool progress_seen(const DrainResult *r, const char *prefix) {
        for (char **p = r->progress; p && *p; p++)
                if (startswith(*p, prefix))
                        return true;
        return false;
}

static void drain(DrainResult *r, const char *node_name, const DrainOptions *o) {
        ASSERT_OK(drain_start(&r->drain, event, client, node_name, o, on_drain_done, on_drain_progress, r));
        ASSERT_TRUE(r->drain);
}

static void run_drain(DrainResult *r, const char *node_name, const DrainOptions *o, usec_t limit) {
        drain(r, node_name, o);
        ASSERT_OK(kube_test_run_until(event, &r->done, limit));
        ASSERT_EQ(r->n_done, 1);
        ASSERT_TRUE(r->drain == NULL);
}

static void assert_cordoned_by_us(const char *node_name) {
        _cleanup_free_ char *path = strjoin("/objects?kind=Node&name=", node_name);
        _cleanup_json_ json_object *items = NULL;
        json_object *n, *a;

        ASSERT_OK(kube_test_control_json(server, "GET", path, NULL, &items));
        n = json_object_array_get_idx(items, 0);
        ASSERT_TRUE(json_get_bool(n, "spec.unschedulable", false));
        a = json_get_member(json_get(n, "metadata.annotations"), "nodereboot.io/cordoned");
        ASSERT_TRUE(a);
        ASSERT_STREQ(json_object_get_string(a), "true");
}

TEST(drain_evicts_what_it_must) {
        usec_t now = now_usec(CLOCK_REALTIME), start;
        DrainOptions o = {
                .timeout_usec = 30 * USEC_PER_SEC,
                .grace_period_sec = 5,
                .skip_wait_for_delete_usec = USEC_PER_HOUR,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {}, quiet = {}, stuck = {}, waited = {};
        _cleanup_free_ char *seed = NULL, *dying = NULL;
        _cleanup_json_ json_object *log = NULL;
        json_object *body;

        seed = objects(node("n1", false), node("n2", false), node("n3", true),
                       replicaset("web", 2), replica("web-a", "n1", "web"), replica("web-b", "n1", "web"),
                       pod("agent-n1", "n1", "agent",
                           ",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\","
                           "\"name\":\"agent\",\"uid\":\"ds-agent\",\"controller\":true}]", NULL),
                       pod("etcd-n1", "n1", "etcd", ",\"annotations\":{\"kubernetes.io/config.mirror\":\"abc\"}",
                           NULL),
                       pod("job-done", "n1", "job", NULL, ",\"status\":{\"phase\":\"Succeeded\"}"),
                       pod("bare", "n1", "bare", NULL, NULL),
                       pod("agent-n3", "n3", "agent",
                           ",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\","
                           "\"name\":\"agent\",\"uid\":\"ds-agent\",\"controller\":true}]", NULL),
                       /* a node whose kubelet is down: its pod's deletion, two hours old, is never
                        * confirmed */
                       node_not_ready("n4"), terminating("stuck", "n4", now - 2 * USEC_PER_HOUR, 30),
                       NULL);
        server_setup(seed);
        /* terminating from now on, gone after 300 s × 0.01 (the server counts in whole seconds) */
        dying = objects(terminating("dying", "n1", now_usec(CLOCK_REALTIME), 300), NULL);
        ASSERT_OK(kube_test_control(server, "POST", "/objects", dying, NULL));
        ASSERT_TRUE(pod_exists("dying"));

        start = now_usec(CLOCK_MONOTONIC);
        run_drain(&r, "n1", &o, 20 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        /* it did wait for "dying" (the simulated kubelet takes 2..3 s), not just for the evicted pods */
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start >= 1500 * USEC_PER_MSEC);
        ASSERT_STREQ(r.message, "evicted 3 pods, waited for 1 already terminating, left 3 alone");
        assert_cordoned_by_us("n1");

        /* evicted and gone */
        ASSERT_EQ(evictions("web-a"), 1);
        ASSERT_EQ(evictions("web-b"), 1);
        ASSERT_EQ(evictions("bare"), 1);
        ASSERT_FALSE(pod_exists("web-a"));
        ASSERT_FALSE(pod_exists("web-b"));
        ASSERT_FALSE(pod_exists("bare"));
        /* waited for, not evicted */
        ASSERT_EQ(evictions("dying"), 0);
        ASSERT_FALSE(pod_exists("dying"));
        ASSERT_TRUE(progress_seen(&r, "waiting for 1 pod to terminate"));
        /* left alone */
        ASSERT_EQ(evictions("agent-n1"), 0);
        ASSERT_EQ(evictions("etcd-n1"), 0);
        ASSERT_EQ(evictions("job-done"), 0);
        ASSERT_TRUE(pod_exists("agent-n1"));
        ASSERT_TRUE(pod_exists("etcd-n1"));
        ASSERT_TRUE(pod_exists("job-done"));
        ASSERT_TRUE(progress_seen(&r, "cordoning node n1"));

        /* the request: policy/v1, with the grace period asked for */
        log = eviction_log("web-a");
        body = json_get(json_object_array_get_idx(log, 0), "body");
        ASSERT_STREQ(json_get_string(body, "apiVersion"), "policy/v1");
        ASSERT_STREQ(json_get_string(body, "kind"), "Eviction");
        ASSERT_STREQ(json_get_string(body, "metadata.name"), "web-a");
        ASSERT_STREQ(json_get_string(body, "metadata.namespace"), "shop");
        ASSERT_EQ(json_get_double(body, "deleteOptions.gracePeriodSeconds"), 5);
        /* only the pod we listed: the server enforces the UID (409 on a mismatch), so the
         * evictions above succeeding proves it is the right one */
        ASSERT_TRUE(!isempty(json_get_string(body, "deleteOptions.preconditions.uid")));
        drain_result_done(&r);

        /* a node already cordoned by an admin with nothing to evict: done at once */
        run_drain(&quiet, "n3", &(DrainOptions) { .timeout_usec = USEC_INFINITY, .grace_period_sec = -1 },
                  5 * USEC_PER_SEC);
        ASSERT_EQ(quiet.error, 0);
        ASSERT_EQ(evictions("agent-n3"), 0);
        drain_result_done(&quiet);

        /* a pod stuck terminating for longer than skip_wait_for_delete_usec is not waited for... */
        run_drain(&stuck, "n4", &(DrainOptions) { .timeout_usec = 10 * USEC_PER_SEC, .grace_period_sec = -1,
                                                  .skip_wait_for_delete_usec = USEC_PER_HOUR },
                  5 * USEC_PER_SEC);
        ASSERT_EQ(stuck.error, 0);
        ASSERT_EQ(evictions("stuck"), 0);
        ASSERT_TRUE(pod_exists("stuck"));
        drain_result_done(&stuck);

        /* ...but it is without that option, until the timeout says what holds the drain */
        run_drain(&waited, "n4", &(DrainOptions) { .timeout_usec = 500 * USEC_PER_MSEC, .grace_period_sec = -1 },
                  5 * USEC_PER_SEC);
        ASSERT_EQ(waited.error, -ETIMEDOUT);
        ASSERT_STREQ(waited.message, "1 pod remains: shop/stuck (terminating)");
        ASSERT_EQ(evictions("stuck"), 0);
        drain_result_done(&waited);

        server_teardown();
}

TEST(drain_blocked_by_pdb_times_out) {
        DrainOptions o = {
                .timeout_usec = 2 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *log = NULL;
        usec_t start;
        int n;

        seed = objects(node("n1", false), node("n2", false), replicaset("web", 2),
                       replica("web-a", "n1", "web"), replica("web-b", "n1", "web"), pdb("web-pdb", "web", 2),
                       NULL);
        server_setup(seed);

        start = now_usec(CLOCK_MONOTONIC);
        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, -ETIMEDOUT);
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start >= o.timeout_usec);
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start < o.timeout_usec + 2 * USEC_PER_SEC);
        ASSERT_TRUE(startswith(r.message, "2 pods remain:"));
        ASSERT_TRUE(strstr(r.message, "shop/web-a (blocked by PodDisruptionBudget web-pdb)"));
        ASSERT_TRUE(strstr(r.message, "shop/web-b (blocked by PodDisruptionBudget web-pdb)"));
        ASSERT_TRUE(progress_seen(&r, "evicting 2 of 2 pods, 2 blocked by PodDisruptionBudget web-pdb"));
        /* the status line stays put while the retries go on: no flicker with every request */
        ASSERT_TRUE(r.n_progress <= 5);

        /* retried every pdb_retry_usec: about 2 s / 200 ms + 1 times, never in a tight loop */
        n = evictions("web-a");
        ASSERT_TRUE(n >= 4);
        ASSERT_TRUE(n <= 11);
        log = eviction_log("web-a");
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);
                int64_t status = 0;

                ASSERT_TRUE(json_get_int64(e, "status", &status));
                ASSERT_EQ(status, 429);
                /* the server's arrival times: one request held up on a loaded machine arrives late
                 * and the next one on time, so single gaps may be shorter, never a tight loop */
                if (i > 0)
                        ASSERT_TRUE(json_get_double(e, "time") -
                                    json_get_double(json_object_array_get_idx(log, i - 1), "time") >= 0.05);
        }
        {
                size_t k = json_array_length(log);
                double span = json_get_double(json_object_array_get_idx(log, k - 1), "time") -
                              json_get_double(json_object_array_get_idx(log, 0), "time");

                ASSERT_TRUE(span / (double) (k - 1) >= 0.18);   /* about pdb_retry_usec apart */
        }

        /* nothing more happens after the end */
        n = evictions("web-b");
        ASSERT_OK(kube_test_run_for(event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(evictions("web-b"), n);
        ASSERT_TRUE(pod_exists("web-a"));
        ASSERT_TRUE(pod_exists("web-b"));

        drain_result_done(&r);
        server_teardown();
}

TEST(drain_one_at_a_time) {
        DrainOptions o = {
                .timeout_usec = 30 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        const char *names[] = { "web-a", "web-b", "web-c" };
        unsigned blocked = 0;

        seed = objects(node("n1", false), node("n2", false), replicaset("web", 3),
                       replica("web-a", "n1", "web"), replica("web-b", "n1", "web"), replica("web-c", "n1", "web"),
                       pdb("web-pdb", "web", 2), NULL);
        server_setup(seed);

        run_drain(&r, "n1", &o, 25 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_json_ json_object *log = eviction_log(names[i]);
                int64_t status = 0;

                ASSERT_FALSE(pod_exists(names[i]));
                ASSERT_TRUE(json_array_length(log) >= 1);
                /* the last request for each pod succeeded; the ones before were held by the budget */
                ASSERT_TRUE(json_get_int64(json_object_array_get_idx(log, json_array_length(log) - 1), "status",
                                           &status));
                ASSERT_EQ(status, 201);
                blocked += json_array_length(log) - 1;
        }
        /* the budget did hold some back: this drained one at a time */
        ASSERT_TRUE(blocked >= 2);
        ASSERT_TRUE(progress_seen(&r, "evicting 2 of 3 pods, 2 blocked by PodDisruptionBudget web-pdb"));

        drain_result_done(&r);
        server_teardown();
}

/* A pod that tolerates node.kubernetes.io/unschedulable, as the real scheduler places it on a
 * cordoned node (DaemonSet-like agents, operators that add the toleration). */
static char *tolerating_pod(const char *name, const char *node_name, const char *app) {
        return strdup_printf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
                             "\"namespace\":\"shop\",\"labels\":{\"app\":\"%s\"}},\"spec\":{\"nodeName\":\"%s\","
                             "\"terminationGracePeriodSeconds\":30,\"tolerations\":[{\"key\":"
                             "\"node.kubernetes.io/unschedulable\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],"
                             "\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
                             name, app, node_name);
}

static void wait_for_progress(DrainResult *r, const char *prefix, usec_t limit) {
        for (usec_t end = now_usec(CLOCK_MONOTONIC) + limit; !progress_seen(r, prefix);) {
                ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) < end);
                ASSERT_FALSE(r->done);
                ASSERT_OK(sd_event_run(event, 100 * USEC_PER_MSEC));
        }
}

TEST(drain_late_pod_and_free_in_the_middle) {
        DrainOptions o = {
                .timeout_usec = USEC_INFINITY,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL, *late = NULL;
        unsigned n_progress;
        int a, b, all;

        seed = objects(node("n1", false), node("n2", false), replicaset("web", 2),
                       replica("web-a", "n1", "web"), replica("web-b", "n1", "web"), pdb("web-pdb", "web", 2),
                       NULL);
        server_setup(seed);

        drain(&r, "n1", &o);
        wait_for_progress(&r, "evicting 2 of 2 pods, 2 blocked", 10 * USEC_PER_SEC);

        /* The real scheduler puts a pod that tolerates node.kubernetes.io/unschedulable on the
         * cordoned node. kubectl drain evicts only the pods it listed after the cordon; so does the
         * drain: evicting this one would only bring it back, again and again until the timeout. */
        late = tolerating_pod("late", "n1", "late");
        ASSERT_OK(kube_test_control(server, "POST", "/objects", late, NULL));
        ASSERT_OK(kube_test_run_for(event, 1500 * USEC_PER_MSEC));
        ASSERT_EQ(evictions("late"), 0);
        ASSERT_TRUE(pod_exists("late"));
        ASSERT_FALSE(progress_seen(&r, "evicting 3"));
        ASSERT_FALSE(r.done);

        /* stop it while its retry timers are armed and its watch is open */
        r.drain = drain_free(r.drain);
        n_progress = r.n_progress;
        a = evictions("web-a");
        b = evictions("web-b");
        all = kube_test_count_requests(server, NULL, NULL);
        ASSERT_OK(all);
        ASSERT_OK(kube_test_run_for(event, 1 * USEC_PER_SEC));
        ASSERT_EQ(evictions("web-a"), a);
        ASSERT_EQ(evictions("web-b"), b);
        /* no request at all since (the two counting requests go to the control API) */
        ASSERT_EQ(kube_test_count_requests(server, NULL, NULL), all);
        ASSERT_EQ(r.n_done, 0);
        ASSERT_EQ(r.n_progress, n_progress);
        ASSERT_TRUE(pod_exists("web-a"));

        drain_result_done(&r);
        server_teardown();
}

/* Pods that show up on the node after the drain listed it, a new pod under the name of one it
 * evicted (a StatefulSet's replacement) among them, are left alone and not waited for. */
TEST(drain_leaves_pods_that_arrive_later_alone) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL, *late = NULL, *again = NULL, *changed = NULL;
        _cleanup_json_ json_object *first = NULL, *now = NULL;

        seed = objects(node("n1", false), node("n2", false), pod("db-0", "n1", "db", NULL, NULL),
                       pod("slow", "n1", "slow", NULL, NULL), NULL);
        server_setup(seed);
        /* keeps the drain going for 2 s */
        ASSERT_OK(kube_test_control(server, "POST", "/faults",
                                    "{\"action\":\"status\",\"status\":429,\"method\":\"POST\","
                                    "\"match\":\"/pods/slow/eviction$\",\"retry_after\":2,\"count\":1}", NULL));
        first = stored_pod("db-0");
        ASSERT_TRUE(first);

        drain(&r, "n1", &o);
        wait_for_progress(&r, "evicting 1 of 2 pods", 10 * USEC_PER_SEC);
        for (usec_t end = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC; pod_exists("db-0");) {
                ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) < end);
                ASSERT_OK(kube_test_run_for(event, 50 * USEC_PER_MSEC));
        }
        ASSERT_FALSE(r.done);

        late = tolerating_pod("late", "n1", "late");
        again = tolerating_pod("db-0", "n1", "db");
        ASSERT_OK(kube_test_control(server, "POST", "/objects", late, NULL));
        ASSERT_OK(kube_test_control(server, "POST", "/objects", again, NULL));
        now = stored_pod("db-0");
        ASSERT_TRUE(now);
        ASSERT_FALSE(streq(json_get_string(first, "metadata.uid"), json_get_string(now, "metadata.uid")));
        ASSERT_OK(kube_test_run_for(event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(evictions("late"), 0);
        ASSERT_EQ(evictions("db-0"), 1);
        /* a change to a late pod does not make it the drain's either */
        changed = tolerating_pod("late", "n1", "late-changed");
        ASSERT_OK(kube_test_control(server, "POST", "/objects", changed, NULL));

        ASSERT_OK(kube_test_run_until(event, &r.done, 10 * USEC_PER_SEC));
        ASSERT_EQ(r.error, 0);
        ASSERT_STREQ(r.message, "evicted 2 pods, waited for 0 already terminating, left 0 alone, "
                     "did not chase 2 that arrived later");
        ASSERT_EQ(evictions("slow"), 2);
        ASSERT_FALSE(pod_exists("slow"));
        ASSERT_EQ(evictions("late"), 0);
        ASSERT_TRUE(pod_exists("late"));
        /* only the first db-0 was evicted: once, and the new one is there still */
        ASSERT_EQ(evictions("db-0"), 1);
        ASSERT_TRUE(pod_exists("db-0"));
        for (char **p = r.progress; p && *p; p++)
                ASSERT_FALSE(strstr(*p, "of 3 pods") || strstr(*p, "of 4 pods"));

        drain_result_done(&r);
        server_teardown();
}

TEST(drain_falls_back_to_v1beta1) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = 0,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *first = NULL;
        json_object *last;

        seed = objects(node("n1", false), pod("old-a", "n1", "old", NULL, NULL), NULL);
        server_setup(seed);
        /* as a server from before policy/v1 answers */
        ASSERT_OK(kube_test_control(server, "POST", "/faults",
                                    "{\"action\":\"status\",\"status\":404,\"method\":\"POST\",\"match\":\"/eviction$\","
                                    "\"message\":\"the server could not find the requested resource\",\"count\":1}",
                                    NULL));

        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        ASSERT_FALSE(pod_exists("old-a"));

        first = eviction_log("old-a");
        ASSERT_EQ(json_array_length(first), 2);
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(first, 0), "body.apiVersion"), "policy/v1");
        last = json_object_array_get_idx(first, 1);
        ASSERT_STREQ(json_get_string(last, "body.apiVersion"), "policy/v1beta1");
        /* grace 0 is sent as such, not left out */
        ASSERT_EQ(json_get_double(last, "body.deleteOptions.gracePeriodSeconds"), 0);
        drain_result_done(&r);

        server_teardown();
}

/* Only the pods the selector selects; and a 429 that is the API server throttling us (no budget
 * named) is retried after its Retry-After, without claiming a PodDisruptionBudget. */
TEST(drain_selector_and_throttling) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = 0,
                .pod_selector = "app in (web)",
                .pdb_retry_usec = 100 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *log = NULL;
        DrainResult bad = {};

        seed = objects(node("n1", false), pod("sel-web", "n1", "web", NULL, NULL),
                       pod("sel-other", "n1", "other", NULL, NULL), NULL);
        server_setup(seed);
        ASSERT_OK(kube_test_control(server, "POST", "/faults",
                                    "{\"action\":\"status\",\"status\":429,\"method\":\"POST\","
                                    "\"match\":\"/eviction$\",\"retry_after\":1,\"count\":1}", NULL));

        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        ASSERT_STREQ(r.message, "evicted 1 pod, waited for 0 already terminating, left 1 alone");
        ASSERT_FALSE(pod_exists("sel-web"));
        ASSERT_TRUE(pod_exists("sel-other"));
        ASSERT_EQ(evictions("sel-other"), 0);
        for (char **p = r.progress; p && *p; p++)
                ASSERT_FALSE(strstr(*p, "PodDisruptionBudget"));

        log = eviction_log("sel-web");
        ASSERT_EQ(json_array_length(log), 2);
        /* Retry-After: 1 wins over pdb_retry_usec */
        ASSERT_TRUE(json_get_double(json_object_array_get_idx(log, 1), "time") -
                    json_get_double(json_object_array_get_idx(log, 0), "time") >= 0.9);
        drain_result_done(&r);

        /* a selector that does not parse is refused up front */
        o.pod_selector = "app in (web";
        ASSERT_ERROR(drain_start(&bad.drain, event, client, "n1", &o, on_drain_done, on_drain_progress, &bad),
                     EINVAL);
        ASSERT_TRUE(bad.drain == NULL);

        server_teardown();
}

/* Status bodies as kube-apiserver 1.28 sends them (see pkg/registry/core/pod/storage/eviction.go
 * and the captures of a real server). */
#define STATUS_HEAD "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","

/* The eviction's update of the budget's status kept conflicting; the pod runs on. */
#define PDB_CONFLICT_409 \
        STATUS_HEAD "\"message\":\"Operation cannot be fulfilled on poddisruptionbudgets.policy \\\"web-pdb\\\": " \
        "the object has been modified; please apply your changes to the latest version and try again\"," \
        "\"reason\":\"Conflict\",\"details\":{\"name\":\"web-pdb\",\"group\":\"policy\"," \
        "\"kind\":\"poddisruptionbudgets\"},\"code\":409}"

/* checkAndDecrement() on a budget whose status.disruptionsAllowed is negative */
#define PDB_NEGATIVE_403 \
        STATUS_HEAD "\"message\":\"poddisruptionbudget.policy \\\"web-pdb\\\" is forbidden: pdb disruptions " \
        "allowed is negative\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"web-pdb\",\"group\":\"policy\"," \
        "\"kind\":\"poddisruptionbudget\"},\"code\":403}"

static void add_fault(const char *fault) {
        ASSERT_OK(kube_test_control(server, "POST", "/faults", fault, NULL));
}

/* A fault answering the evictions of pod `name` with `status` and `body`. */
static void add_eviction_fault(const char *name, unsigned status, const char *body, int count) {
        _cleanup_free_ char *fault = NULL, *n = NULL;

        if (count >= 0)
                n = strdup_printf(",\"count\":%d", count);
        fault = strdup_printf("{\"action\":\"status\",\"status\":%u,\"method\":\"POST\","
                              "\"match\":\"/pods/%s/eviction$\",\"body\":%s%s}",
                              status, name, body, strempty(n));
        ASSERT_TRUE(fault);
        add_fault(fault);
}

static int64_t log_status(json_object *log, size_t i) {
        int64_t status = 0;

        ASSERT_TRUE(json_get_int64(json_object_array_get_idx(log, i), "status", &status));
        return status;
}

static double log_gap(json_object *log, size_t i) {
        return json_get_double(json_object_array_get_idx(log, i), "time") -
                json_get_double(json_object_array_get_idx(log, i - 1), "time");
}

/* The Events on Node node_name with this reason. */
static json_object *node_events(const char *node_name, const char *reason) {
        _cleanup_json_ json_object *all = NULL;
        json_object *out = json_object_new_array();

        ASSERT_TRUE(out);
        ASSERT_OK(kube_test_control_json(server, "GET", "/objects?kind=Event&namespace=default", NULL, &all));
        for (size_t i = 0; i < json_array_length(all); i++) {
                json_object *e = json_object_array_get_idx(all, i);

                if (streq_ptr(json_get_string(e, "involvedObject.kind"), "Node") &&
                    streq_ptr(json_get_string(e, "involvedObject.name"), node_name) &&
                    streq_ptr(json_get_string(e, "reason"), reason))
                        ASSERT_OK(json_object_array_add(out, json_object_get(e)));
        }
        return out;
}

/* Best effort, so posted in the background: give it a moment to arrive. */
static json_object *wait_for_node_events(const char *node_name, const char *reason, size_t n) {
        for (usec_t end = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;;) {
                json_object *events = node_events(node_name, reason);

                if (json_array_length(events) >= n || now_usec(CLOCK_MONOTONIC) >= end)
                        return events;
                json_object_put(events);
                ASSERT_OK(kube_test_run_for(event, 100 * USEC_PER_MSEC));
        }
}

/* The API server could not update the budget's status for conflicts and said 409, twice: the pod
 * still runs, so the drain re-reads it, evicts it again after a back-off and waits until it is
 * really gone. */
TEST(drain_pdb_conflict_is_not_gone) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *log = NULL;

        seed = objects(node("n1", false), node("n2", false), pod("web-a", "n1", "web", NULL, NULL), NULL);
        server_setup(seed);
        add_eviction_fault("web-a", 409, PDB_CONFLICT_409, 2);

        run_drain(&r, "n1", &o, 15 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        ASSERT_STREQ(r.message, "evicted 1 pod, waited for 0 already terminating, left 0 alone");
        ASSERT_FALSE(pod_exists("web-a"));

        log = eviction_log("web-a");
        ASSERT_EQ(json_array_length(log), 3);
        ASSERT_EQ(log_status(log, 0), 409);
        ASSERT_EQ(log_status(log, 1), 409);
        ASSERT_EQ(log_status(log, 2), 201);
        /* with back-off, not in a tight loop */
        ASSERT_TRUE(log_gap(log, 1) >= 0.9);
        ASSERT_TRUE(log_gap(log, 2) >= 1.8);
        /* after each conflict it read the pod again, by a list (our RBAC has no get on pods) */
        ASSERT_TRUE(kube_test_count_requests(server, "GET", "/api/v1/namespaces/shop/pods") >= 2);

        drain_result_done(&r);
        server_teardown();
}

/* Only the UID precondition failing means the pod we listed is gone. A resourceVersion
 * precondition failing (the server sets one itself for pods that are not ready) names the pod
 * too, but the pod is there. */
TEST(drain_uid_precondition_conflict_means_gone) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;

        seed = objects(node("n1", false), node("n2", false), pod("uid-a", "n1", "a", NULL, NULL),
                       pod("rv-b", "n1", "b", NULL, NULL), NULL);
        server_setup(seed);
        add_eviction_fault("uid-a", 409,
                           STATUS_HEAD "\"message\":\"Operation cannot be fulfilled on Pod \\\"uid-a\\\": the UID in "
                           "the precondition (00000000-0000-0000-0000-000000000000) does not match the UID in "
                           "record (aa52df4f-411e-4804-88f2-24949394f376). The object might have been deleted and "
                           "then recreated\",\"reason\":\"Conflict\",\"details\":{\"name\":\"uid-a\",\"kind\":\"Pod\"},"
                           "\"code\":409}", 1);
        add_eviction_fault("rv-b", 409,
                           STATUS_HEAD "\"message\":\"Operation cannot be fulfilled on Pod \\\"rv-b\\\": the "
                           "ResourceVersion in the precondition (1) does not match the ResourceVersion in record "
                           "(248). The object might have been modified\",\"reason\":\"Conflict\","
                           "\"details\":{\"name\":\"rv-b\",\"kind\":\"Pod\"},\"code\":409}", 1);

        run_drain(&r, "n1", &o, 15 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        /* uid-a counts among those gone by others' doing */
        ASSERT_STREQ(r.message, "evicted 1 pod, waited for 1 already terminating, left 0 alone");

        /* taken as gone at once: not evicted again, not waited for (the fault said so, the pod is
         * in fact still there, which proves the drain believed the 409) */
        ASSERT_EQ(evictions("uid-a"), 1);
        ASSERT_TRUE(pod_exists("uid-a"));
        /* not gone: evicted once more, and waited for until it was gone */
        ASSERT_EQ(evictions("rv-b"), 2);
        ASSERT_FALSE(pod_exists("rv-b"));

        drain_result_done(&r);
        server_teardown();
}

/* A budget whose status allows a negative number of disruptions answers 403, not 429: that is no
 * RBAC refusal, and it is retried while it lasts, said in the status line and once in an Event;
 * when it lasts until the timeout, the message says why. */
TEST(drain_pdb_403_is_retried_and_reported) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {}, stuck = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *log = NULL, *events = NULL, *more = NULL;
        const char *m;

        seed = objects(node("n1", false), node("n2", false), node("n3", false),
                       pod("web-a", "n1", "web", NULL, NULL), pod("web-b", "n3", "web", NULL, NULL), NULL);
        server_setup(seed);
        add_eviction_fault("web-a", 403, PDB_NEGATIVE_403, 3);
        add_eviction_fault("web-b", 403, PDB_NEGATIVE_403, -1);

        run_drain(&r, "n1", &o, 15 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        ASSERT_FALSE(pod_exists("web-a"));
        ASSERT_TRUE(progress_seen(&r, "evicting 1 of 1 pod, 1 blocked by PodDisruptionBudget web-pdb: "
                                  "pdb disruptions allowed is negative"));
        log = eviction_log("web-a");
        ASSERT_EQ(json_array_length(log), 4);
        for (size_t i = 0; i < 3; i++)
                ASSERT_EQ(log_status(log, i), 403);
        ASSERT_EQ(log_status(log, 3), 201);
        for (size_t i = 1; i < 4; i++)
                ASSERT_TRUE(log_gap(log, i) >= 0.18);

        /* one Event for three refusals */
        events = wait_for_node_events("n1", "EvictionBlocked", 1);
        ASSERT_EQ(json_array_length(events), 1);
        m = json_get_string(json_object_array_get_idx(events, 0), "message");
        ASSERT_TRUE(m && strstr(m, "shop/web-a"));
        ASSERT_TRUE(m && strstr(m, "PodDisruptionBudget web-pdb: pdb disruptions allowed is negative"));
        ASSERT_STREQ(json_get_string(json_object_array_get_idx(events, 0), "type"), "Warning");
        drain_result_done(&r);

        /* for good: the timeout names the pod and why */
        o.timeout_usec = 1500 * USEC_PER_MSEC;
        run_drain(&stuck, "n3", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(stuck.error, -ETIMEDOUT);
        ASSERT_STREQ(stuck.message, "1 pod remains: shop/web-b (blocked by PodDisruptionBudget web-pdb: "
                     "pdb disruptions allowed is negative)");
        ASSERT_TRUE(evictions("web-b") >= 4);
        more = wait_for_node_events("n3", "EvictionBlocked", 1);
        ASSERT_EQ(json_array_length(more), 1);
        drain_result_done(&stuck);

        server_teardown();
}

/* Two budgets select one pod: the real server answers 500 "This pod has more than one
 * PodDisruptionBudget, which the eviction subresource does not support." until someone removes one.
 * Retried until the timeout, which says why; and once a budget is gone, the drain goes through. */
TEST(drain_two_pdbs_are_retried_and_reported) {
        DrainOptions o = {
                .timeout_usec = 1500 * USEC_PER_MSEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {}, again = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *events = NULL, *log = NULL;
        size_t n;

        seed = objects(node("n1", false), node("n2", false), pod("two-a", "n1", "two", NULL, NULL),
                       pdb("two-min", "two", 0), pdb("two-other", "two", 0), NULL);
        server_setup(seed);

        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, -ETIMEDOUT);
        ASSERT_STREQ(r.message, "1 pod remains: shop/two-a (blocked: more than one PodDisruptionBudget selects "
                     "the pod, which evictions do not support)");
        ASSERT_TRUE(progress_seen(&r, "evicting 1 of 1 pod, 1 blocked: more than one PodDisruptionBudget"));
        ASSERT_TRUE(pod_exists("two-a"));
        events = wait_for_node_events("n1", "EvictionBlocked", 1);
        ASSERT_EQ(json_array_length(events), 1);
        ASSERT_TRUE(strstr(json_get_string(json_object_array_get_idx(events, 0), "message"),
                           "more than one PodDisruptionBudget"));
        drain_result_done(&r);

        /* someone removes a budget while the drain retries */
        o.timeout_usec = 20 * USEC_PER_SEC;
        drain(&again, "n1", &o);
        wait_for_progress(&again, "evicting 1 of 1 pod, 1 blocked: more than one PodDisruptionBudget",
                          10 * USEC_PER_SEC);
        ASSERT_OK(kube_test_control(server, "DELETE", "/objects/PodDisruptionBudget/shop/two-other",
                                    NULL, NULL));
        ASSERT_OK(kube_test_run_until(event, &again.done, 10 * USEC_PER_SEC));
        ASSERT_EQ(again.error, 0);
        ASSERT_FALSE(pod_exists("two-a"));

        /* many refusals (the client retries each 5xx itself, too), one Event per drain */
        log = eviction_log("two-a");
        n = json_array_length(log);
        ASSERT_TRUE(n >= 6);
        for (size_t i = 0; i + 1 < n; i++)
                ASSERT_EQ(log_status(log, i), 500);
        ASSERT_EQ(log_status(log, n - 1), 201);
        json_object_put(events);
        events = node_events("n1", "EvictionBlocked");
        ASSERT_EQ(json_array_length(events), 2);
        drain_result_done(&again);

        server_teardown();
}

/* A 403 from RBAC ends the drain at once, even while another pod's budget refuses with a 403 of its
 * own that is retried. */
TEST(drain_rbac_403_fails_at_once) {
        DrainOptions o = {
                .timeout_usec = 30 * USEC_PER_SEC,
                .grace_period_sec = -1,
                .pdb_retry_usec = 200 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        usec_t start;
        int n;

        seed = objects(node("n1", false), node("n2", false), pod("web-a", "n1", "web", NULL, NULL),
                       pod("bare", "n1", "bare", NULL, NULL), NULL);
        server_setup(seed);
        add_eviction_fault("web-a", 403, PDB_NEGATIVE_403, -1);
        /* the RBAC refusal comes second, after the budget's was seen and retried */
        add_fault("{\"action\":\"status\",\"status\":429,\"method\":\"POST\",\"match\":\"/pods/bare/eviction$\","
                  "\"retry_after\":1,\"count\":1}");
        add_eviction_fault("bare", 403,
                           STATUS_HEAD "\"message\":\"pods \\\"bare\\\" is forbidden: User "
                           "\\\"system:serviceaccount:nodereboot:nodereboot\\\" cannot create resource "
                           "\\\"pods/eviction\\\" in API group \\\"\\\" in the namespace \\\"shop\\\"\","
                           "\"reason\":\"Forbidden\",\"details\":{\"name\":\"bare\",\"kind\":\"pods\"},\"code\":403}",
                           -1);

        start = now_usec(CLOCK_MONOTONIC);
        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, -EACCES);
        ASSERT_STREQ(r.message, "not allowed to evict pod shop/bare: pods \"bare\" is forbidden: User "
                     "\"system:serviceaccount:nodereboot:nodereboot\" cannot create resource \"pods/eviction\" "
                     "in API group \"\" in the namespace \"shop\"");
        /* at the first RBAC refusal: after the Retry-After of 1 s, long before the timeout */
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start < 3 * USEC_PER_SEC);
        ASSERT_EQ(evictions("bare"), 2);
        ASSERT_TRUE(evictions("web-a") >= 2);

        /* and nothing more after it */
        n = evictions("web-a");
        ASSERT_OK(kube_test_run_for(event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(evictions("web-a"), n);
        ASSERT_TRUE(pod_exists("bare"));

        drain_result_done(&r);
        server_teardown();
}

/* API Priority and Fairness answers 429 with a Retry-After header: the retry waits that long; a
 * 429 without one is retried after pdb_retry_usec. Neither is a PodDisruptionBudget. */
TEST(drain_429_waits_for_retry_after) {
        DrainOptions o = {
                .timeout_usec = 20 * USEC_PER_SEC,
                .grace_period_sec = 0,
                .pdb_retry_usec = 300 * USEC_PER_MSEC,
        };
        DrainResult r = {};
        _cleanup_free_ char *seed = NULL;
        _cleanup_json_ json_object *with = NULL, *without = NULL;
        double gap;

        seed = objects(node("n1", false), pod("apf-a", "n1", "a", NULL, NULL),
                       pod("apf-b", "n1", "b", NULL, NULL), NULL);
        server_setup(seed);
        add_fault("{\"action\":\"status\",\"status\":429,\"method\":\"POST\",\"match\":\"/pods/apf-a/eviction$\","
                  "\"headers\":{\"Retry-After\":\"1\"},\"count\":1,"
                  "\"body\":" STATUS_HEAD "\"message\":\"Too many requests, please try again later.\","
                  "\"reason\":\"TooManyRequests\",\"details\":{},\"code\":429}}");
        add_fault("{\"action\":\"status\",\"status\":429,\"method\":\"POST\",\"match\":\"/pods/apf-b/eviction$\","
                  "\"count\":1,"
                  "\"body\":" STATUS_HEAD "\"message\":\"Too many requests, please try again later.\","
                  "\"reason\":\"TooManyRequests\",\"details\":{},\"code\":429}}");

        run_drain(&r, "n1", &o, 10 * USEC_PER_SEC);
        ASSERT_EQ(r.error, 0);
        ASSERT_STREQ(r.message, "evicted 2 pods, waited for 0 already terminating, left 0 alone");
        for (char **p = r.progress; p && *p; p++)
                ASSERT_FALSE(strstr(*p, "PodDisruptionBudget"));

        with = eviction_log("apf-a");
        ASSERT_EQ(json_array_length(with), 2);
        ASSERT_EQ(log_status(with, 0), 429);
        gap = log_gap(with, 1);
        fprintf(stderr, "    retry after Retry-After: 1 came after %.3f s\n", gap);
        /* Around the delay: the event loop's "now" can be a busy iteration old (valgrind: longer). */
        ASSERT_TRUE(gap >= 1.0 - TEST_SLOW * 0.05 && gap < 1.0 + TEST_SLOW * 0.6);

        without = eviction_log("apf-b");
        ASSERT_EQ(json_array_length(without), 2);
        ASSERT_EQ(log_status(without, 0), 429);
        gap = log_gap(without, 1);
        fprintf(stderr, "    retry without Retry-After came after %.3f s\n", gap);
        ASSERT_TRUE(gap >= 0.3 - TEST_SLOW * 0.02 && gap < 0.3 + TEST_SLOW * 0.5);

        drain_result_done(&r);
        server_teardown();
}

int main(void) {
        RUN(skip_mirror_pod);
        RUN(skip_daemonset_pod);
        RUN(skip_finished_pods);
        RUN(skip_pods_the_selector_leaves_out);
        RUN(normal_and_terminating_pods_are_drained);

        if (!kube_test_server_available()) {
                fprintf(stderr, "The test API server is not available, skipping the rest.\n");
                return 77;
        }
        RUN(drain_evicts_what_it_must);
        RUN(drain_blocked_by_pdb_times_out);
        RUN(drain_one_at_a_time);
        RUN(drain_late_pod_and_free_in_the_middle);
        RUN(drain_leaves_pods_that_arrive_later_alone);
        RUN(drain_falls_back_to_v1beta1);
        RUN(drain_selector_and_throttling);
        RUN(drain_pdb_conflict_is_not_gone);
        RUN(drain_uid_precondition_conflict_means_gone);
        RUN(drain_pdb_403_is_retried_and_reported);
        RUN(drain_two_pdbs_are_retried_and_reported);
        RUN(drain_rbac_403_fails_at_once);
        RUN(drain_429_waits_for_retry_after);
        return 0;
}
