/* SPDX-License-Identifier: Apache-2.0 */
#include "blockers.h"
#include "json-util.h"
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

int main(void) {
        RUN(running_pod_blocks);
        RUN(pending_pod_blocks);
        RUN(finished_pods_do_not_block);
        return 0;
}
