/* SPDX-License-Identifier: Apache-2.0 */
#include "blockers.h"
#include "json-util.h"
#include "kube-test-server.h"
#include "string-util.h"
#include "tests.h"

static json_object *parse(const char *text) {
        json_object *o = NULL;
        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

TEST(running_pod_blocks) {
        _cleanup_json_ json_object *l = parse(
                "{\"items\":[{\"metadata\":{\"namespace\":\"db\",\"name\":\"done\"},\"status\":{\"phase\":\"Succeeded\"}},"
                "{\"metadata\":{\"namespace\":\"db\",\"name\":\"going\",\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
                "\"status\":{\"phase\":\"Running\"}},"
                "{\"metadata\":{\"namespace\":\"db\",\"name\":\"primary-0\"},\"status\":{\"phase\":\"Running\"}}]}");
        _cleanup_free_ char *p = blockers_first_blocking_pod(l);
        ASSERT_STREQ(p, "db/primary-0");
}

TEST(pending_pod_blocks) {
        _cleanup_json_ json_object *l = parse("{\"items\":[{\"metadata\":{\"namespace\":\"a\",\"name\":\"b\"},\"status\":{\"phase\":\"Pending\"}}]}");
        _cleanup_free_ char *p = blockers_first_blocking_pod(l);
        ASSERT_STREQ(p, "a/b");
}

TEST(finished_pods_do_not_block) {
        _cleanup_json_ json_object *l = parse(
                "{\"items\":[{\"metadata\":{\"name\":\"x\"},\"status\":{\"phase\":\"Failed\"}},"
                "{\"metadata\":{\"name\":\"y\"},\"status\":{\"phase\":\"Unknown\"}}]}");
        ASSERT_TRUE(!blockers_first_blocking_pod(l));
        _cleanup_json_ json_object *empty = parse("{\"items\":[]}");
        ASSERT_TRUE(!blockers_first_blocking_pod(empty));
        ASSERT_TRUE(!blockers_first_blocking_pod(NULL));
}

/* Against the test API server: a check reads the pods from the API server's cache
 * (resourceVersion=0) with a page size, which kube-apiserver 1.28's watch cache ignores (it answers
 * the whole list at once, reference case 26); pages after a fresh list follow continue tokens
 * without a resourceVersion (test-kube-client's watch_pages). The blocker is found either way. */
typedef struct Check {
        bool done;
        int error;
        char *blocker;
} Check;

static void on_checked(int error, const char *blocker, void *userdata) {
        Check *c = userdata;

        c->done = true;
        c->error = error;
        c->blocker = blocker ? strdup(blocker) : NULL;
}

TEST(pages_from_the_cache) {
        _cleanup_(kube_test_server_stopp) KubeTestServer *server = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(kube_client_freep) KubeClient *client = NULL;
        _cleanup_(blockers_check_freep) BlockersCheck *b = NULL;
        _cleanup_json_ json_object *log = NULL;
        char seed[4096];
        size_t n = 0;
        char *selectors[] = { (char *) "app=db", NULL };
        unsigned lists = 0, continued = 0;
        Kubeconfig k = {};
        Check c = {};

        /* four finished db pods on n1, then a running one; and a running one on n2 */
        n += (size_t) snprintf(seed + n, sizeof seed - n, "[");
        for (int i = 0; i < 6; i++)
                n += (size_t) snprintf(seed + n, sizeof seed - n,
                        "%s{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"db-%d\","
                        "\"namespace\":\"default\",\"labels\":{\"app\":\"db\"}},\"spec\":{\"nodeName\":\"%s\","
                        "\"containers\":[{\"name\":\"c\",\"image\":\"db\"}]},\"status\":{\"phase\":\"%s\"}}",
                        i ? "," : "", i, i == 5 ? "n2" : "n1", i < 4 ? "Succeeded" : "Running");
        n += (size_t) snprintf(seed + n, sizeof seed - n, "]");
        ASSERT_TRUE(n < sizeof seed);
        ASSERT_OK(kube_test_server_start(&server, NULL));
        ASSERT_OK(kube_test_control(server, "POST", "/objects", seed, NULL));
        ASSERT_OK(kube_test_control(server, "DELETE", "/log", NULL, NULL));
        ASSERT_OK(sd_event_new(&event));
        kube_test_server_kubeconfig(server, &k);
        ASSERT_OK(kube_client_new(&client, event, &k));
        kube_client_set_list_page_size(client, 2);

        ASSERT_OK(blockers_check(&b, client, "n1", selectors, on_checked, &c));
        ASSERT_OK(kube_test_run_until(event, &c.done, 20 * USEC_PER_SEC));
        ASSERT_OK(c.error);
        ASSERT_STREQ(c.blocker, "pod default/db-4 matches blocking selector app=db");

        ASSERT_OK(kube_test_control_json(server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (!streq_ptr(json_get_string(e, "path"), "/api/v1/pods"))
                        continue;
                lists++;
                ASSERT_STREQ(json_get_string(e, "query.limit"), "2");
                if (json_get_string(e, "query.continue")) {
                        continued++;
                        ASSERT_TRUE(json_get_string(e, "query.resourceVersion") == NULL);
                } else
                        ASSERT_STREQ(json_get_string(e, "query.resourceVersion"), "0");
        }
        ASSERT_EQ(lists, 1U);           /* the cache's answer: every pod, limit ignored */
        ASSERT_EQ(continued, 0U);
        free(c.blocker);
}

int main(void) {
        RUN(running_pod_blocks);
        RUN(pending_pod_blocks);
        RUN(finished_pods_do_not_block);
        if (!kube_test_server_available()) {
                fprintf(stderr, "The test API server is not available, skipping the rest.\n");
                return 77;
        }
        RUN(pages_from_the_cache);
        return 0;
}
