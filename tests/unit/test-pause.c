/* SPDX-License-Identifier: Apache-2.0 */
/* The pause as the ConfigMap holds it: what noderebootctl writes, what an operator's kubectl edit
 * may leave, and what is not a pause at all. */
#include "json-util.h"
#include "pause.h"
#include "string-util.h"
#include "tests.h"

static json_object *parse(const char *text) {
        json_object *o = NULL;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

static void test_written_value_reads_back(void) {
        _cleanup_free_ char *v = pause_entry_format("incident 42", "alice@admin", 1764936000ULL * USEC_PER_SEC);
        PauseEntry e = {};

        ASSERT_TRUE(v);
        ASSERT_OK(pause_entry_parse(v, &e));
        ASSERT_TRUE(e.set);
        ASSERT_STREQ(e.reason, "incident 42");
        ASSERT_STREQ(e.by, "alice@admin");
        ASSERT_EQ(e.since, 1764936000ULL * USEC_PER_SEC);
        pause_entry_done(&e);
}

static void test_hand_written_text_is_the_reason(void) {
        PauseEntry e = {};

        /* kubectl edit: data: {group: "change freeze"} */
        ASSERT_OK(pause_entry_parse("change freeze", &e));
        ASSERT_TRUE(e.set);
        ASSERT_STREQ(e.reason, "change freeze");
        ASSERT_TRUE(!e.by && e.since == 0);
        pause_entry_done(&e);

        /* An empty value still pauses; control characters never reach STATUS= or an Event. */
        ASSERT_OK(pause_entry_parse("", &e));
        ASSERT_TRUE(e.set && !e.reason);
        pause_entry_done(&e);
        ASSERT_OK(pause_entry_parse("{\"reason\":\"a\\nb\\u00e9\"}", &e));
        ASSERT_STREQ(e.reason, "a?b??");
        pause_entry_done(&e);
}

static void test_state_of_group_and_node(void) {
        _cleanup_json_ json_object *cm = parse(
                "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"nodereboot-pause\"},\"data\":{"
                "\"group\":\"{\\\"reason\\\":\\\"freeze\\\"}\",\"node.n1\":\"disk\",\"node.n2\":\"x\",\"other\":\"y\"}}");
        PauseState s = {};
        _cleanup_free_ char *d = NULL;

        ASSERT_OK(pause_state_from_configmap(cm, "n1", &s));
        ASSERT_TRUE(s.group.set && s.node.set);
        ASSERT_EQ(s.nodes_paused, 2U);
        ASSERT_STREQ(s.node.reason, "disk");
        d = pause_describe(&s, "nodereboot");
        ASSERT_STREQ(d, "reboots of lock group nodereboot are paused: freeze");
        pause_state_done(&s);

        ASSERT_OK(pause_state_from_configmap(cm, "n3", &s));
        ASSERT_TRUE(s.group.set && !s.node.set);
        pause_state_done(&s);

        /* No ConfigMap, or one without data: nothing paused. */
        ASSERT_OK(pause_state_from_configmap(NULL, "n1", &s));
        ASSERT_FALSE(pause_state_holds(&s));
        ASSERT_TRUE(pause_describe(&s, "nodereboot") == NULL);
}

static void test_node_only(void) {
        _cleanup_json_ json_object *cm = parse("{\"data\":{\"node.n1\":\"{\\\"reason\\\":\\\"disk\\\",\\\"by\\\":\\\"bob@h\\\"}\"}}");
        _cleanup_free_ char *d = NULL;
        PauseState s = {};

        ASSERT_OK(pause_state_from_configmap(cm, "n1", &s));
        ASSERT_TRUE(!s.group.set && s.node.set);
        d = pause_describe(&s, "nodereboot");
        ASSERT_STREQ(d, "reboots of this node are paused by bob@h: disk");
        pause_state_done(&s);
}

static void test_not_a_pause(void) {
        PauseState s = {};
        const char *bad[] = {
                "[]",
                "{\"kind\":\"Secret\",\"data\":{}}",
                "{\"data\":[]}",
                "{\"data\":{\"group\":7}}",
        };

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                _cleanup_json_ json_object *o = parse(bad[i]);
                ASSERT_ERROR(pause_state_from_configmap(o, "n1", &s), EBADMSG);
        }
}

static void test_keys(void) {
        _cleanup_free_ char *k = pause_node_key("worker-1.example.com"), *name = pause_configmap_name("pool-a");

        ASSERT_STREQ(k, "node.worker-1.example.com");
        ASSERT_STREQ(name, "pool-a-pause");
        ASSERT_TRUE(pause_node_key("") == NULL);
        ASSERT_TRUE(pause_node_key("a/b") == NULL);
        ASSERT_TRUE(pause_node_key("a b") == NULL);
}

int main(void) {
        test_written_value_reads_back();
        test_hand_written_text_is_the_reason();
        test_state_of_group_and_node();
        test_node_only();
        test_not_a_pause();
        test_keys();
        return 0;
}
