/* SPDX-License-Identifier: Apache-2.0 */
/* The lock: first its decisions without a server (when a slot is free by the API server's clock,
 * never the node's; which slot to take; what the writes carry; what "held by" says), then whole
 * operations of several nodes against the test API server. */
#include <signal.h>
#include <string.h>

#include "json-util.h"
#include "kube-test-server.h"
#include "lock-internal.h"
#include "node.h"
#include "string-util.h"
#include "fixtures.h"
#include "tests.h"

/* A lease as the API server returns it; NULL arguments leave the field out. */
static json_object *lease(const char *slot, const char *holder, const char *acquire, const char *renew,
                          const char *duration) {
        _cleanup_free_ char *text = NULL;

        text = strdup_printf(
                "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                "\"metadata\":{\"name\":\"%s\",\"namespace\":\"kube-system\",\"resourceVersion\":\"42\","
                "\"labels\":{\"nodereboot.io/lock\":\"nodereboot\"},\"annotations\":{\"x.io/keep\":\"me\"}},"
                "\"spec\":{%s%s%s%s%s%s%s%s%s\"leaseTransitions\":3}}",
                slot,
                holder ? "\"holderIdentity\":\"" : "", holder ?: "", holder ? "\"," : "",
                acquire ? "\"acquireTime\":\"" : "", acquire ?: "", acquire ? "\"," : "",
                renew ? "\"renewTime\":\"" : "", renew ?: "", renew ? "\"," : "");
        ASSERT_TRUE(text);
        if (duration) {
                /* splice "leaseDurationSeconds": <duration>, in front of leaseTransitions */
                char *p = strstr(text, "\"leaseTransitions\"");
                _cleanup_free_ char *head = strndup(text, (size_t) (p - text));
                char *t2 = strdup_printf("%s\"leaseDurationSeconds\":%s,%s", head, duration, p);
                ASSERT_TRUE(t2);
                free(text);
                text = t2;
        }
        return J(text);
}

#define NOW "2026-11-27T10:02:15Z"

TEST(slot_missing_and_vacant) {
        _cleanup_json_ json_object *a = lease("nodereboot-0", NULL, NULL, NULL, NULL);
        _cleanup_json_ json_object *b = lease("nodereboot-0", "", "garbage", "garbage", "\"x\"");
        _cleanup_json_ json_object *c = J("{\"metadata\":{\"name\":\"nodereboot-0\",\"resourceVersion\":\"1\"}}");
        _cleanup_json_ json_object *d = J("{\"metadata\":{\"name\":\"nodereboot-0\"},"
                                          "\"spec\":{\"holderIdentity\":null}}");
        _cleanup_free_ char *reason = NULL;

        ASSERT_EQ(lock_slot_state(NULL, T(NOW), NULL), LOCK_SLOT_MISSING);
        ASSERT_EQ(lock_slot_state(a, T(NOW), NULL), LOCK_SLOT_VACANT);
        /* an empty holder is free whatever the times say */
        ASSERT_EQ(lock_slot_state(b, T(NOW), NULL), LOCK_SLOT_VACANT);
        ASSERT_EQ(lock_slot_state(c, T(NOW), NULL), LOCK_SLOT_VACANT);
        ASSERT_EQ(lock_slot_state(d, T(NOW), NULL), LOCK_SLOT_VACANT);
        ASSERT_TRUE(lock_lease_holder(b) == NULL);

        ASSERT_TRUE(lock_slot_is_free(NULL, T(NOW), &reason));
        ASSERT_STREQ(reason, "absent");
        reason = mfree(reason);
        ASSERT_TRUE(lock_slot_is_free(a, T(NOW), &reason));
        ASSERT_STREQ(reason, "free");
}

TEST(slot_expiry_boundaries) {
        /* renewed 10:01:00 for 60 s: runs out at 10:02:00 exactly */
        _cleanup_json_ json_object *l = lease("nodereboot-0", "node-b", "2026-11-27T10:00:00Z",
                                              "2026-11-27T10:01:00.000000Z", "60");
        _cleanup_free_ char *reason = NULL;
        usec_t expired = 1;

        ASSERT_EQ(lock_slot_state(l, T("2026-11-27T10:01:59Z"), &expired), LOCK_SLOT_HELD);
        ASSERT_EQ(expired, 0);
        /* at the very instant it is still held: expiry needs renewTime + duration < now */
        ASSERT_EQ(lock_slot_state(l, T("2026-11-27T10:02:00Z"), NULL), LOCK_SLOT_HELD);
        ASSERT_EQ(lock_slot_state(l, T("2026-11-27T10:02:00.000001Z"), &expired), LOCK_SLOT_EXPIRED);
        ASSERT_EQ(expired, 1);
        ASSERT_EQ(lock_slot_state(l, T("2026-11-27T10:03:35Z"), &expired), LOCK_SLOT_EXPIRED);
        ASSERT_EQ(expired, 95 * USEC_PER_SEC);

        ASSERT_TRUE(lock_slot_is_free(l, T("2026-11-27T10:03:35Z"), &reason));
        ASSERT_STREQ(reason, "expired 95 s ago");
        reason = mfree(reason);
        ASSERT_FALSE(lock_slot_is_free(l, T("2026-11-27T10:01:30Z"), &reason));
        ASSERT_STREQ(reason, "held by node-b");
}

TEST(slot_expiry_uses_the_given_server_clock) {
        usec_t local = now_usec(CLOCK_REALTIME);
        char renewed[FORMAT_RFC3339_MAX];
        _cleanup_json_ json_object *fresh_locally = NULL, *stale_locally = NULL;

        /* renewed 30 s ago by our clock, TTL 60 s: fresh for us; the server runs an hour ahead */
        format_rfc3339(renewed, sizeof renewed, local - 30 * USEC_PER_SEC, true);
        fresh_locally = lease("nodereboot-0", "node-b", renewed, renewed, "60");
        ASSERT_EQ(lock_slot_state(fresh_locally, local, NULL), LOCK_SLOT_HELD);
        ASSERT_EQ(lock_slot_state(fresh_locally, local + USEC_PER_HOUR, NULL), LOCK_SLOT_EXPIRED);

        /* renewed an hour ago by our clock, TTL 60 s: stale for us; the server runs an hour behind */
        format_rfc3339(renewed, sizeof renewed, local - USEC_PER_HOUR, true);
        stale_locally = lease("nodereboot-0", "node-b", renewed, renewed, "60");
        ASSERT_EQ(lock_slot_state(stale_locally, local, NULL), LOCK_SLOT_EXPIRED);
        ASSERT_EQ(lock_slot_state(stale_locally, local - USEC_PER_HOUR + 10 * USEC_PER_SEC, NULL),
                  LOCK_SLOT_HELD);
}

TEST(slot_bad_fields_are_held) {
        /* An hour after the times in these leases, any sane lease would have expired. */
        usec_t later = T("2026-11-27T11:00:00Z");
        const struct {
                const char *renew, *duration;
        } cases[] = {
                { NULL,                     "60" },     /* no renewTime */
                { "yesterday",              "60" },     /* unparsable */
                { "2026-11-27T10:00:00",    "60" },     /* no zone */
                { "2026-11-27T10:00:00Z",   NULL },     /* no duration */
                { "2026-11-27T10:00:00Z",   "0" },
                { "2026-11-27T10:00:00Z",   "-5" },
                { "2026-11-27T10:00:00Z",   "\"60\"" }, /* wrong type */
                { "2026-11-27T10:00:00Z",   "9223372036854775807" }, /* overflow */
        };
        _cleanup_json_ json_object *numeric_holder =
                J("{\"metadata\":{\"name\":\"nodereboot-0\",\"resourceVersion\":\"1\"},"
                  "\"spec\":{\"holderIdentity\":7,\"renewTime\":\"2026-11-27T10:00:00Z\","
                  "\"leaseDurationSeconds\":60}}");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *l = lease("nodereboot-0", "node-b", "2026-11-27T10:00:00Z",
                                                      cases[i].renew, cases[i].duration);
                ASSERT_EQ(lock_slot_state(l, later, NULL), LOCK_SLOT_HELD);
                ASSERT_FALSE(lock_slot_is_free(l, later, NULL));
        }
        ASSERT_EQ(lock_slot_state(numeric_holder, later, NULL), LOCK_SLOT_HELD);

        /* with sane fields the same lease has long expired */
        {
                _cleanup_json_ json_object *l = lease("nodereboot-0", "node-b", "2026-11-27T10:00:00Z",
                                                      "2026-11-27T10:00:00+00:00", "60");
                ASSERT_EQ(lock_slot_state(l, later, NULL), LOCK_SLOT_EXPIRED);
        }
}

TEST(choose_slot) {
        const LockSlotState held[] = { LOCK_SLOT_HELD, LOCK_SLOT_HELD, LOCK_SLOT_HELD };
        const LockSlotState mixed[] = { LOCK_SLOT_HELD, LOCK_SLOT_EXPIRED, LOCK_SLOT_VACANT,
                                        LOCK_SLOT_HELD, LOCK_SLOT_MISSING };
        const LockSlotState expired[] = { LOCK_SLOT_HELD, LOCK_SLOT_EXPIRED, LOCK_SLOT_EXPIRED };
        bool seen[5] = {};

        ASSERT_ERROR(lock_choose_slot(held, ELEMENTSOF(held), 17), EBUSY);
        ASSERT_ERROR(lock_choose_slot(NULL, 0, 17), EBUSY);

        /* unclaimed slots first, and both of them get picked for some random value */
        for (uint64_t rnd = 0; rnd < 16; rnd++) {
                int i = lock_choose_slot(mixed, ELEMENTSOF(mixed), rnd);
                ASSERT_TRUE(i == 2 || i == 4);
                seen[i] = true;
        }
        ASSERT_TRUE(seen[2] && seen[4]);

        /* only expired ones left: any of them */
        seen[1] = seen[2] = false;
        for (uint64_t rnd = 0; rnd < 16; rnd++) {
                int i = lock_choose_slot(expired, ELEMENTSOF(expired), rnd);
                ASSERT_TRUE(i == 1 || i == 2);
                seen[i] = true;
        }
        ASSERT_TRUE(seen[1] && seen[2]);
        ASSERT_EQ(lock_choose_slot(expired, ELEMENTSOF(expired), UINT64_MAX), 2);
}

TEST(slot_names) {
        _cleanup_free_ char *n = lock_slot_name("nodereboot", 12);

        ASSERT_STREQ(n, "nodereboot-12");
        ASSERT_EQ(lock_slot_index("nodereboot", "nodereboot-0"), 0);
        ASSERT_EQ(lock_slot_index("nodereboot", "nodereboot-12"), 12);
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot-"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot-01"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot-1x"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", "other-0"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot-99999999999"), EINVAL);
        ASSERT_ERROR(lock_slot_index("nodereboot", NULL), EINVAL);
        /* a group whose name extends ours is a different group */
        ASSERT_ERROR(lock_slot_index("nodereboot", "nodereboot-gpu-0"), EINVAL);
        ASSERT_EQ(lock_slot_index("nodereboot-gpu", "nodereboot-gpu-0"), 0);
}

TEST(ttl_seconds) {
        ASSERT_EQ(lock_ttl_to_seconds(0), 1);
        ASSERT_EQ(lock_ttl_to_seconds(1), 1);
        ASSERT_EQ(lock_ttl_to_seconds(1500 * USEC_PER_MSEC), 2);
        ASSERT_EQ(lock_ttl_to_seconds(30 * USEC_PER_MINUTE), 1800);
        ASSERT_EQ(lock_ttl_to_seconds(USEC_INFINITY - 1), INT32_MAX);
}

TEST(build_take) {
        _cleanup_json_ json_object *old = lease("nodereboot-1", "node-x", "2026-11-27T09:00:00Z",
                                                "2026-11-27T09:10:00Z", "600");
        _cleanup_json_ json_object *vacant = lease("nodereboot-1", NULL, NULL, NULL, NULL);
        _cleanup_json_ json_object *mine = lease("nodereboot-1", "node-a", NULL, NULL, NULL);
        _cleanup_json_ json_object *no_rv = J("{\"metadata\":{\"name\":\"nodereboot-1\"},\"spec\":{}}");
        _cleanup_json_ json_object *body = NULL, *body2 = NULL, *body3 = NULL, *none = NULL;
        int64_t v;

        ASSERT_OK(lock_build_take(old, "node-a", 1800 * USEC_PER_SEC, T("2026-11-27T10:02:15.5Z"), &body));
        ASSERT_STREQ(json_get_string(body, "spec.holderIdentity"), "node-a");
        ASSERT_STREQ(json_get_string(body, "spec.acquireTime"), "2026-11-27T10:02:15.500000Z");
        ASSERT_STREQ(json_get_string(body, "spec.renewTime"), "2026-11-27T10:02:15.500000Z");
        ASSERT_TRUE(json_get_int64(body, "spec.leaseDurationSeconds", &v));
        ASSERT_EQ(v, 1800);
        ASSERT_TRUE(json_get_int64(body, "spec.leaseTransitions", &v));
        ASSERT_EQ(v, 4);
        /* the precondition and everything else of the object ride along */
        ASSERT_STREQ(json_get_string(body, "metadata.resourceVersion"), "42");
        ASSERT_STREQ(json_get_string(body, "metadata.name"), "nodereboot-1");
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(body, "metadata.labels"),
                                                            "nodereboot.io/lock")), "nodereboot");
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(body, "metadata.annotations"),
                                                            "x.io/keep")), "me");
        /* the lease read is not modified */
        ASSERT_STREQ(json_get_string(old, "spec.holderIdentity"), "node-x");

        /* a vacant slot changes holder too */
        ASSERT_OK(lock_build_take(vacant, "node-a", USEC_PER_MINUTE, T(NOW), &body2));
        ASSERT_TRUE(json_get_int64(body2, "spec.leaseTransitions", &v));
        ASSERT_EQ(v, 4);
        /* our own slot does not */
        ASSERT_OK(lock_build_take(mine, "node-a", USEC_PER_MINUTE, T(NOW), &body3));
        ASSERT_TRUE(json_get_int64(body3, "spec.leaseTransitions", &v));
        ASSERT_EQ(v, 3);

        /* never an unconditional write */
        ASSERT_ERROR(lock_build_take(no_rv, "node-a", USEC_PER_MINUTE, T(NOW), &none), EBADMSG);
        ASSERT_ERROR(lock_build_take(old, "", USEC_PER_MINUTE, T(NOW), &none), EINVAL);
        ASSERT_ERROR(lock_build_take(NULL, "node-a", USEC_PER_MINUTE, T(NOW), &none), EINVAL);
        ASSERT_TRUE(none == NULL);
}

TEST(build_renew_and_release) {
        _cleanup_json_ json_object *l = lease("nodereboot-0", "node-a", "2026-11-27T09:00:00Z",
                                              "2026-11-27T09:10:00Z", "600");
        _cleanup_json_ json_object *renew = NULL, *release = NULL;
        int64_t v;

        ASSERT_OK(lock_build_renew(l, 900 * USEC_PER_SEC, T(NOW), &renew));
        ASSERT_STREQ(json_get_string(renew, "spec.holderIdentity"), "node-a");
        ASSERT_STREQ(json_get_string(renew, "spec.acquireTime"), "2026-11-27T09:00:00Z");
        ASSERT_STREQ(json_get_string(renew, "spec.renewTime"), "2026-11-27T10:02:15.000000Z");
        ASSERT_TRUE(json_get_int64(renew, "spec.leaseDurationSeconds", &v));
        ASSERT_EQ(v, 900);
        ASSERT_TRUE(json_get_int64(renew, "spec.leaseTransitions", &v));
        ASSERT_EQ(v, 3);
        ASSERT_STREQ(json_get_string(renew, "metadata.resourceVersion"), "42");

        ASSERT_OK(lock_build_release(l, T(NOW), &release));
        ASSERT_TRUE(json_get(release, "spec.holderIdentity") == NULL);
        ASSERT_TRUE(lock_lease_holder(release) == NULL);
        ASSERT_STREQ(json_get_string(release, "spec.renewTime"), "2026-11-27T10:02:15.000000Z");
        ASSERT_STREQ(json_get_string(release, "metadata.resourceVersion"), "42");
        ASSERT_EQ(lock_slot_state(release, T(NOW), NULL), LOCK_SLOT_VACANT);
}

TEST(build_new) {
        _cleanup_json_ json_object *o = NULL;
        int64_t v;

        ASSERT_OK(lock_build_new("kube-system", "nodereboot", "nodereboot-2", "node-a", 90 * USEC_PER_SEC,
                                 T(NOW), &o));
        ASSERT_STREQ(json_get_string(o, "apiVersion"), "coordination.k8s.io/v1");
        ASSERT_STREQ(json_get_string(o, "kind"), "Lease");
        ASSERT_STREQ(json_get_string(o, "metadata.name"), "nodereboot-2");
        ASSERT_STREQ(json_get_string(o, "metadata.namespace"), "kube-system");
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(o, "metadata.labels"), LOCK_LABEL)),
                     "nodereboot");
        ASSERT_TRUE(json_get(o, "metadata.resourceVersion") == NULL);
        ASSERT_STREQ(json_get_string(o, "spec.holderIdentity"), "node-a");
        ASSERT_TRUE(json_get_int64(o, "spec.leaseDurationSeconds", &v));
        ASSERT_EQ(v, 90);
        ASSERT_TRUE(json_get_int64(o, "spec.leaseTransitions", &v));
        ASSERT_EQ(v, 0);
        ASSERT_EQ(lock_slot_state(o, T(NOW), NULL), LOCK_SLOT_HELD);
        ASSERT_EQ(lock_slot_state(o, T(NOW) + 91 * USEC_PER_SEC, NULL), LOCK_SLOT_EXPIRED);
}

TEST(format_holders) {
        char *names[] = { (char *) "nodereboot-0", (char *) "nodereboot-1", (char *) "nodereboot-2",
                          (char *) "nodereboot-3", (char *) "nodereboot-4", NULL };
        json_object *leases[5] = {
                lease("nodereboot-0", "node-b", "2026-11-27T10:02:03Z", "2026-11-27T10:02:03.250Z", "600"),
                NULL,
                lease("nodereboot-2", NULL, NULL, NULL, NULL),
                lease("nodereboot-3", "node-c", "2026-11-25T23:59:59Z", "2026-11-27T09:00:00Z", "60"),
                lease("nodereboot-4", "node-d", NULL, NULL, "60"),
        };
        _cleanup_free_ char *text = NULL, *none = NULL;

        text = lock_format_holders(leases, names, 5, T(NOW));
        ASSERT_STREQ(text,
                     "nodereboot-0 held by node-b since 10:02:03 (renewed 12 s ago); "
                     "nodereboot-3 held by node-c since 2026-11-25 23:59:59 "
                     "(renewed 1h 2min 15s ago, expired 1h 1min 15s ago); "
                     "nodereboot-4 held by node-d since ? (renew time unknown)");

        none = lock_format_holders(leases + 1, names + 1, 2, T(NOW));
        ASSERT_STREQ(none, "");

        for (size_t i = 0; i < ELEMENTSOF(leases); i++)
                json_object_put(leases[i]);
}

TEST(index_and_find) {
        _cleanup_json_ json_object *list = J(
                "{\"kind\":\"LeaseList\",\"items\":["
                "{\"metadata\":{\"name\":\"nodereboot-7\"},\"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-1\"},\"spec\":{\"holderIdentity\":\"node-b\"}},"
                "{\"metadata\":{\"name\":\"other-0\"},\"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-2\"},\"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"spec\":{}}, 5]}");
        _cleanup_json_ json_object *empty = J("{\"items\":[]}");
        json_object *slots[3];
        const char *slot = "x";

        lock_index_list(list, "nodereboot", 3, slots);
        ASSERT_TRUE(slots[0] == NULL);
        ASSERT_STREQ(lock_lease_holder(slots[1]), "node-b");
        ASSERT_STREQ(lock_lease_holder(slots[2]), "node-a");

        /* any index of our group, the lowest first; other groups never */
        ASSERT_TRUE(lock_find_holder(list, "nodereboot", "node-a", &slot));
        ASSERT_STREQ(slot, "nodereboot-2");
        ASSERT_TRUE(lock_find_holder(list, "nodereboot", "node-z", &slot) == NULL);
        ASSERT_TRUE(slot == NULL);
        ASSERT_TRUE(lock_find_holder(empty, "nodereboot", "node-a", NULL) == NULL);
        ASSERT_TRUE(lock_find_holder(NULL, "nodereboot", "node-a", NULL) == NULL);
}

TEST(slots_from_list) {
        /* What noderebootctl shows: every slot below the concurrency (missing ones too), then
         * leftovers of a larger Concurrency=, by index; other names never. */
        _cleanup_json_ json_object *list = J(
                "{\"kind\":\"LeaseList\",\"items\":["
                "{\"metadata\":{\"name\":\"nodereboot-12\",\"resourceVersion\":\"9\"},"
                " \"spec\":{\"holderIdentity\":\"node-z\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-0\",\"resourceVersion\":\"7\"},"
                " \"spec\":{\"holderIdentity\":\"node-b\",\"acquireTime\":\"2026-11-27T10:00:00Z\","
                "  \"renewTime\":\"2026-11-27T10:02:00.500000Z\",\"leaseDurationSeconds\":60,"
                "  \"leaseTransitions\":4}},"
                "{\"metadata\":{\"name\":\"other-0\"},\"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-3\",\"resourceVersion\":\"8\"},"
                " \"spec\":{\"holderIdentity\":\"node-c\",\"renewTime\":\"2026-11-27T09:00:00Z\","
                "  \"leaseDurationSeconds\":60}},"
                "{\"metadata\":{\"name\":\"nodereboot-2\",\"resourceVersion\":\"6\"},\"spec\":{}},"
                "{\"metadata\":{\"name\":\"nodereboot-x\"}}, 5]}");
        _cleanup_json_ json_object *empty = J("{\"items\":[]}");
        LockSlotInfo *s = NULL;
        size_t n = 0;

        ASSERT_OK(lock_slots_from_list(list, "nodereboot", 3, T(NOW), &s, &n));
        ASSERT_EQ(n, 5);
        ASSERT_STREQ(s[0].name, "nodereboot-0");
        ASSERT_EQ(s[0].index, 0);
        ASSERT_EQ(s[0].state, LOCK_SLOT_HELD);
        ASSERT_STREQ(s[0].holder, "node-b");
        ASSERT_EQ(s[0].acquire_time, T("2026-11-27T10:00:00Z"));
        ASSERT_EQ(s[0].renew_time, T("2026-11-27T10:02:00.5Z"));
        ASSERT_EQ(s[0].duration_sec, 60);
        ASSERT_EQ(s[0].transitions, 4);
        ASSERT_STREQ(s[0].resource_version, "7");

        ASSERT_STREQ(s[1].name, "nodereboot-1");
        ASSERT_EQ(s[1].state, LOCK_SLOT_MISSING);
        ASSERT_TRUE(!s[1].holder && !s[1].resource_version && s[1].renew_time == 0);

        ASSERT_STREQ(s[2].name, "nodereboot-2");
        ASSERT_EQ(s[2].state, LOCK_SLOT_VACANT);
        ASSERT_TRUE(s[2].holder == NULL);
        ASSERT_STREQ(s[2].resource_version, "6");

        /* beyond Concurrency=3, ordered by index */
        ASSERT_STREQ(s[3].name, "nodereboot-3");
        ASSERT_EQ(s[3].index, 3);
        ASSERT_EQ(s[3].state, LOCK_SLOT_EXPIRED);
        ASSERT_STREQ(s[3].holder, "node-c");
        ASSERT_STREQ(s[4].name, "nodereboot-12");
        ASSERT_EQ(s[4].index, 12);
        ASSERT_EQ(s[4].state, LOCK_SLOT_HELD);    /* no renew time: never expires */
        lock_slot_infos_free(s, n);

        ASSERT_OK(lock_slots_from_list(empty, "nodereboot", 2, T(NOW), &s, &n));
        ASSERT_EQ(n, 2);
        ASSERT_EQ(s[0].state, LOCK_SLOT_MISSING);
        ASSERT_EQ(s[1].state, LOCK_SLOT_MISSING);
        lock_slot_infos_free(s, n);

        /* a list without items is an empty list; another group's name is no slot of ours */
        ASSERT_OK(lock_slots_from_list(empty, "other", 1, T(NOW), &s, &n));
        ASSERT_EQ(n, 1);
        ASSERT_STREQ(s[0].name, "other-0");
        lock_slot_infos_free(s, n);
        ASSERT_ERROR(lock_slots_from_list(empty, "nodereboot", LOCK_LIST_MAX + 1, T(NOW), &s, &n), E2BIG);
}

TEST(node_not_found) {
        _cleanup_json_ json_object *real = J(
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                "\"message\":\"nodes \\\"node-x\\\" not found\",\"reason\":\"NotFound\","
                "\"details\":{\"name\":\"node-x\",\"kind\":\"nodes\"},\"code\":404}");
        _cleanup_json_ json_object *no_resource = J(
                "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"details\":{},"
                "\"message\":\"the server could not find the requested resource\",\"code\":404}");
        _cleanup_json_ json_object *proxy = J("{\"error\":\"not found\"}");

        ASSERT_TRUE(lock_status_is_node_not_found(real, "node-x"));
        ASSERT_FALSE(lock_status_is_node_not_found(real, "node-y"));
        ASSERT_FALSE(lock_status_is_node_not_found(no_resource, "node-x"));
        ASSERT_FALSE(lock_status_is_node_not_found(proxy, "node-x"));
        ASSERT_FALSE(lock_status_is_node_not_found(NULL, "node-x"));
}

TEST(state_names) {
        ASSERT_STREQ(lock_slot_state_to_string(LOCK_SLOT_EXPIRED), "expired");
        ASSERT_TRUE(lock_slot_state_to_string(_LOCK_SLOT_STATE_MAX) == NULL);
        ASSERT_TRUE(lock_slot_state_to_string(_LOCK_SLOT_STATE_INVALID) == NULL);
}

/* A Node as the API server returns it: Ready status ("True", "False", "Unknown"; NULL: no
 * condition) and extra annotations (a JSON object body, may be NULL). */
static json_object *node_json(const char *name, const char *ready, const char *annotations) {
        _cleanup_free_ char *text = strdup_printf(
                "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"annotations\":{%s}},"
                "\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"}%s%s%s]}}",
                name, strempty(annotations), ready ? ",{\"type\":\"Ready\",\"status\":\"" : "", strempty(ready),
                ready ? "\"}" : "");

        ASSERT_TRUE(text);
        return J(text);
}

TEST(holder_is_idle) {
        /* User story (issue 6, item 4): a node that never comes back from its reboot keeps its
         * expired slot; only one whose daemon died while it was idle gives it up. */
        static const struct {
                const char *ready, *annotations, *why;
        } cases[] = {
                { "True",    NULL,                                                  NULL },
                { "True",    "\"nodereboot.io/cordoned\":\"false\"",                NULL },
                { "True",    "\"nodereboot.io/last-reboot\":\"2026-11-27T09:00:00Z\"", NULL },
                { "False",   NULL,                                                  "NotReady" },
                { "Unknown", NULL,                                                  "unreachable (Ready=Unknown)" },
                { NULL,      NULL,                                                  "of unknown readiness (no Ready condition)" },
                { "True",    "\"nodereboot.io/cordoned\":\"true\"",                 "cordoned by nodereboot" },
                { "True",    "\"nodereboot.io/reboot-in-progress\":\"2026-11-27T10:00:00Z\"", "mid-cycle" },
                { "True",    "\"nodereboot.io/reboot-in-progress\":\"\"",           "mid-cycle" },
                { "False",   "\"nodereboot.io/reboot-in-progress\":\"2026-11-27T10:00:00Z\"",
                  "NotReady and mid-cycle" },
                { "Unknown", "\"nodereboot.io/cordoned\":\"true\",\"nodereboot.io/reboot-in-progress\":\"x\"",
                  "unreachable (Ready=Unknown), cordoned by nodereboot and mid-cycle" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *n = node_json("node-b", cases[i].ready, cases[i].annotations);
                _cleanup_free_ char *why = NULL;
                bool idle = lock_holder_is_idle(n, &why);

                fprintf(stderr, "    Ready=%s %s: %s\n", strna(cases[i].ready), strempty(cases[i].annotations),
                        idle ? "idle" : why);
                ASSERT_EQ(idle, cases[i].why == NULL);
                if (cases[i].why)
                        ASSERT_STREQ(why, cases[i].why);
                else
                        ASSERT_TRUE(why == NULL);
                ASSERT_EQ(lock_holder_is_idle(n, NULL), idle);
        }
        /* nothing known is nothing demonstrated */
        ASSERT_FALSE(lock_holder_is_idle(NULL, NULL));
}

TEST(holder_renews_on_time) {
        /* renewed at 10:00:00 for 300 s: due again at 10:01:40, margin 30 s (a tenth) */
        _cleanup_json_ json_object *a = lease("nodereboot-0", "n2", NULL, "2026-11-27T10:00:00Z", "300");
        /* 30 s: due after 10 s, margin 5 s (the floor) */
        _cleanup_json_ json_object *b = lease("nodereboot-0", "n2", NULL, "2026-11-27T10:00:00Z", "30");
        _cleanup_json_ json_object *c = lease("nodereboot-0", "n2", NULL, "garbage", "30");
        _cleanup_json_ json_object *d = lease("nodereboot-0", "n2", NULL, "2026-11-27T10:00:00Z", NULL);

        ASSERT_TRUE(lock_holder_renews_on_time(a, T("2026-11-27T10:02:10Z")));
        ASSERT_FALSE(lock_holder_renews_on_time(a, T("2026-11-27T10:02:11Z")));
        ASSERT_TRUE(lock_holder_renews_on_time(b, T("2026-11-27T10:00:15Z")));
        ASSERT_FALSE(lock_holder_renews_on_time(b, T("2026-11-27T10:00:16Z")));
        /* times that cannot be read: its Node is looked up */
        ASSERT_FALSE(lock_holder_renews_on_time(c, T("2026-11-27T10:00:01Z")));
        ASSERT_FALSE(lock_holder_renews_on_time(d, T("2026-11-27T10:00:01Z")));
}

TEST(check_order) {
        /* Expired slots first, from a random one round; then the live ones; never unclaimed ones. */
        const LockSlotState s[] = { LOCK_SLOT_HELD, LOCK_SLOT_EXPIRED, LOCK_SLOT_VACANT, LOCK_SLOT_EXPIRED,
                                    LOCK_SLOT_HELD, LOCK_SLOT_EXPIRED, LOCK_SLOT_MISSING };
        static const unsigned want[3][5] = {
                { 1, 3, 5, 0, 4 },
                { 3, 5, 1, 0, 4 },
                { 5, 1, 3, 0, 4 },
        };
        const LockSlotState held[] = { LOCK_SLOT_HELD, LOCK_SLOT_HELD };
        unsigned order[ELEMENTSOF(s)];

        for (uint64_t rnd = 0; rnd < 6; rnd++) {
                ASSERT_EQ(lock_check_order(s, ELEMENTSOF(s), rnd, order), 5);
                for (unsigned k = 0; k < 5; k++)
                        ASSERT_EQ(order[k], want[rnd % 3][k]);
        }
        ASSERT_EQ(lock_check_order(held, 2, 7, order), 2);
        ASSERT_EQ(order[0], 0);
        ASSERT_EQ(order[1], 1);
        ASSERT_EQ(lock_check_order(s + 2, 1, 7, order), 0);
        ASSERT_EQ(lock_check_order(NULL, 0, 7, order), 0);
}

/* A lease held by holder with the machine-ID annotation (NULL: without it). */
static json_object *lease_by_machine(const char *holder, const char *machine) {
        _cleanup_free_ char *text = strdup_printf(
                "{\"metadata\":{\"name\":\"nodereboot-0\",\"resourceVersion\":\"5\",\"annotations\":{%s%s%s}},"
                "\"spec\":{\"holderIdentity\":\"%s\",\"renewTime\":\"2026-11-27T10:00:00Z\","
                "\"leaseDurationSeconds\":60}}",
                machine ? "\"" LOCK_ANNOTATION_MACHINE_ID "\":\"" : "", strempty(machine), machine ? "\"" : "",
                holder);

        ASSERT_TRUE(text);
        return J(text);
}

TEST(lease_owner) {
        /* User story (issue 6, item 7.5): two hosts cloned with the same [Node] Name= never both
         * believe they hold the same slot; a lease of an older version is still ours. */
        static const struct {
                const char *holder, *theirs, *ours;
                LockOwner owner;
                const char *lost;       /* lock_lost_reason(), NULL: still ours */
        } cases[] = {
                { "node-a", NULL,     "aaaa",     LOCK_OWNER_US,    NULL },          /* older version */
                { "node-a", "",       "aaaa",     LOCK_OWNER_US,    NULL },
                { "node-a", "aaaa",   "aaaa",     LOCK_OWNER_US,    NULL },
                { "node-a", "bbbb",   NULL,       LOCK_OWNER_US,    NULL },          /* noderebootctl */
                { "node-a", "1234567890abcdef1234567890abcdef", "aaaa", LOCK_OWNER_TWIN,
                  "held under our name by machine 1234567890ab… (two hosts share [Node] Name=node-a)" },
                { "node-b", "aaaa",   "aaaa",     LOCK_OWNER_OTHER, "taken by node-b" },
                { "",       "aaaa",   "aaaa",     LOCK_OWNER_OTHER, "released (no holder)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *l = lease_by_machine(cases[i].holder, cases[i].theirs);
                _cleanup_free_ char *why = NULL;

                ASSERT_EQ(lock_lease_owner(l, "node-a", cases[i].ours), cases[i].owner);
                ASSERT_EQ(lock_lost_reason(l, "node-a", cases[i].ours, &why), cases[i].lost ? 1 : 0);
                if (cases[i].lost)
                        ASSERT_STREQ(why, cases[i].lost);
                else
                        ASSERT_TRUE(why == NULL);
        }
        {
                _cleanup_free_ char *why = NULL;

                ASSERT_EQ(lock_lease_owner(NULL, "node-a", "aaaa"), LOCK_OWNER_OTHER);
                ASSERT_EQ(lock_lost_reason(NULL, "node-a", "aaaa", &why), 1);
                ASSERT_STREQ(why, "its Lease was deleted");
        }
        {
                _cleanup_json_ json_object *l = lease_by_machine("node-a", "1234");
                ASSERT_STREQ(lock_lease_machine_id(l), "1234");
        }
}

TEST(find_own_lease) {
        _cleanup_json_ json_object *list = J(
                "{\"items\":["
                "{\"metadata\":{\"name\":\"nodereboot-3\"},\"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-2\",\"annotations\":{\"" LOCK_ANNOTATION_MACHINE_ID "\":\"bbbb\"}},"
                " \"spec\":{\"holderIdentity\":\"node-a\"}},"
                "{\"metadata\":{\"name\":\"nodereboot-1\",\"annotations\":{\"" LOCK_ANNOTATION_MACHINE_ID "\":\"cccc\"}},"
                " \"spec\":{\"holderIdentity\":\"node-a\"}}]}");
        json_object *twin = NULL, *own;

        /* the lowest slot that is ours, and the lowest a twin holds */
        own = lock_find_own_lease(list, "nodereboot", "node-a", "bbbb", &twin);
        ASSERT_STREQ(json_get_string(own, "metadata.name"), "nodereboot-2");
        ASSERT_STREQ(json_get_string(twin, "metadata.name"), "nodereboot-1");
        /* the lease of an older version (no annotation) is ours too */
        own = lock_find_own_lease(list, "nodereboot", "node-a", "dddd", &twin);
        ASSERT_STREQ(json_get_string(own, "metadata.name"), "nodereboot-3");
        ASSERT_STREQ(json_get_string(twin, "metadata.name"), "nodereboot-1");
        /* without a machine ID, the lowest one naming us */
        own = lock_find_own_lease(list, "nodereboot", "node-a", NULL, &twin);
        ASSERT_STREQ(json_get_string(own, "metadata.name"), "nodereboot-1");
        ASSERT_TRUE(twin == NULL);
        ASSERT_TRUE(lock_find_own_lease(list, "nodereboot", "node-z", "bbbb", &twin) == NULL);
        ASSERT_TRUE(twin == NULL);
}

TEST(labels_and_marks) {
        /* User story (issue 6, item 7.4): a GitOps tool rewrote a slot's Lease without our label;
         * the lease is still the slot, and our next write puts the label back. */
        _cleanup_json_ json_object *ours = lease("nodereboot-0", "node-a", NULL, NULL, "60");
        _cleanup_json_ json_object *bare = J("{\"metadata\":{\"name\":\"nodereboot-0\",\"resourceVersion\":\"3\"},"
                                             "\"spec\":{\"holderIdentity\":\"node-a\"}}");
        _cleanup_json_ json_object *other_labels = J(
                "{\"metadata\":{\"name\":\"nodereboot-0\",\"labels\":{\"app\":\"x\"},\"annotations\":7}}");
        _cleanup_json_ json_object *foreign = J(
                "{\"metadata\":{\"name\":\"nodereboot-0\",\"labels\":{\"" LOCK_LABEL "\":\"gpu\"}}}");
        _cleanup_json_ json_object *renew = NULL, *release = NULL;

        ASSERT_EQ(lock_lease_label(ours, "nodereboot"), LOCK_LABEL_OURS);
        ASSERT_EQ(lock_lease_label(bare, "nodereboot"), LOCK_LABEL_MISSING);
        ASSERT_EQ(lock_lease_label(other_labels, "nodereboot"), LOCK_LABEL_MISSING);
        ASSERT_EQ(lock_lease_label(foreign, "nodereboot"), LOCK_LABEL_FOREIGN);
        ASSERT_EQ(lock_lease_label(foreign, "gpu"), LOCK_LABEL_OURS);

        /* the renewal of a bare lease carries the label and our machine ID */
        ASSERT_OK(lock_build_renew(bare, USEC_PER_MINUTE, T(NOW), &renew));
        ASSERT_OK(lock_mark_lease(renew, "nodereboot", "aaaa"));
        ASSERT_EQ(lock_lease_label(renew, "nodereboot"), LOCK_LABEL_OURS);
        ASSERT_STREQ(lock_lease_machine_id(renew), "aaaa");
        ASSERT_STREQ(json_get_string(renew, "metadata.resourceVersion"), "3");
        ASSERT_EQ(lock_lease_label(bare, "nodereboot"), LOCK_LABEL_MISSING);    /* the read is untouched */

        /* other labels stay, a broken annotations field is replaced; NULL records no machine */
        ASSERT_OK(lock_mark_lease(other_labels, "nodereboot", "bbbb"));
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(other_labels, "metadata.labels"), "app")), "x");
        ASSERT_STREQ(lock_lease_machine_id(other_labels), "bbbb");
        ASSERT_OK(lock_mark_lease(ours, "nodereboot", NULL));
        ASSERT_TRUE(lock_lease_machine_id(ours) == NULL);
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(ours, "metadata.annotations"), "x.io/keep")), "me");
        ASSERT_ERROR(lock_mark_lease(NULL, "nodereboot", NULL), EINVAL);

        /* a release drops the machine ID with the holder */
        ASSERT_OK(lock_build_release(renew, T(NOW), &release));
        ASSERT_TRUE(lock_lease_machine_id(release) == NULL);
        ASSERT_TRUE(lock_lease_holder(release) == NULL);
        ASSERT_EQ(lock_lease_label(release, "nodereboot"), LOCK_LABEL_OURS);
}

TEST(already_exists) {
        /* The body a real API server (1.28) sends for a create of an existing Lease
         * (the captured kube-apiserver 1.28 reference, case 12-lease-create-already-exists). */
        _cleanup_json_ json_object *real = J(
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                "\"message\":\"leases.coordination.k8s.io \\\"lease11\\\" already exists\","
                "\"reason\":\"AlreadyExists\",\"details\":{\"name\":\"lease11\",\"group\":\"coordination.k8s.io\","
                "\"kind\":\"leases\"},\"code\":409}");
        _cleanup_json_ json_object *conflict = J(
                "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Conflict\","
                "\"details\":{\"name\":\"lease11\",\"group\":\"coordination.k8s.io\",\"kind\":\"leases\"},\"code\":409}");

        ASSERT_TRUE(lock_status_is_already_exists(real, "lease11"));
        ASSERT_FALSE(lock_status_is_already_exists(real, "nodereboot-0"));
        ASSERT_FALSE(lock_status_is_already_exists(conflict, "lease11"));
        ASSERT_FALSE(lock_status_is_already_exists(NULL, "lease11"));
}

TEST(refusal_texts) {
        char *names[] = { (char *) "nodereboot-0", (char *) "nodereboot-1", NULL };
        char *notes[] = { NULL, (char *) "nodereboot-1 held by node-c, expired 2 s ago, but ...", NULL };
        json_object *leases[2] = {
                lease("nodereboot-0", "node-b", "2026-11-27T10:02:03Z", "2026-11-27T10:02:03.250Z", "600"),
                lease("nodereboot-1", "node-c", "2026-11-27T10:00:00Z", "2026-11-27T10:01:13Z", "60"),
        };
        _cleanup_free_ char *stuck = NULL, *twin = NULL, *text = NULL;

        stuck = lock_format_stuck("nodereboot-0", "node-b", 95 * USEC_PER_SEC, "NotReady and mid-cycle");
        ASSERT_STREQ(stuck,
                     "nodereboot-0 held by node-b, expired 95 s ago, but node-b is NotReady and mid-cycle: "
                     "not taking it over (a node that does not come back must not be followed); run "
                     "'noderebootctl unlock nodereboot-0' once node-b is dealt with");
        twin = lock_format_twin("nodereboot-0", "node-a", "1234567890abcdef1234567890abcdef",
                                "5678567856785678567856785678abcd");
        ASSERT_STREQ(twin, "lease nodereboot-0 is held under our name node-a by machine 1234567890ab…, we are "
                     "567856785678…: two hosts share [Node] Name=node-a");

        /* a note replaces what would be said of its slot; the others read as before */
        text = lock_format_holders_noted(leases, names, notes, 2, T(NOW));
        ASSERT_STREQ(text, "nodereboot-0 held by node-b since 10:02:03 (renewed 12 s ago); "
                     "nodereboot-1 held by node-c, expired 2 s ago, but ...");

        for (size_t i = 0; i < ELEMENTSOF(leases); i++)
                json_object_put(leases[i]);
}

/* ---- against the test API server ------------------------------------------------------------ */

#define NS "kube-system"
#define LEASES "/apis/coordination.k8s.io/v1/namespaces/" NS "/leases"
#define MAX_NODES 3

typedef struct Result {
        bool done;
        unsigned calls;
        int error;
        char *slot;
        char *holders;
} Result;

static void result_clear(Result *r) {
        free(r->slot);
        free(r->holders);
        *r = (Result) {};
}

static void on_result(Lock *l, int error, const char *slot, const char *holders, void *userdata) {
        Result *r = userdata;

        r->calls++;
        r->done = true;
        r->error = error;
        free(r->slot);
        free(r->holders);
        r->slot = slot ? strdup(slot) : NULL;
        r->holders = holders ? strdup(holders) : NULL;
        ASSERT_TRUE(!slot || r->slot);
}

typedef struct Env {
        KubeTestServer *server;
        sd_event *event;
        KubeClient *clients[MAX_NODES];
        Lock *locks[MAX_NODES];
} Env;

/* A failed assertion aborts without cleanup; the server must not outlive us (it would hold our
 * stdout open and make meson wait for its timeout). */
static pid_t server_pid;

static void on_abort(int sig) {
        if (server_pid > 0)
                (void) kill(server_pid, SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void env_start(Env *e, const char *args) {
        *e = (Env) {};
        ASSERT_OK(kube_test_server_start(&e->server, args));
        server_pid = e->server->pid;
        (void) signal(SIGABRT, on_abort);
        ASSERT_OK(sd_event_new(&e->event));
}

static void env_stop(Env *e) {
        for (unsigned i = 0; i < MAX_NODES; i++) {
                e->locks[i] = lock_free(e->locks[i]);
                e->clients[i] = kube_client_free(e->clients[i]);
        }
        /* let cancelled transfers wind down before the loop goes */
        (void) kube_test_run_for(e->event, 10 * USEC_PER_MSEC);
        e->event = sd_event_unref(e->event);
        e->server = kube_test_server_stop(e->server);
        server_pid = 0;
}

/* Node i is "node-<letter>", with its own client (own connections) and Lock. */
static Lock *env_node(Env *e, unsigned i, const char *identity, unsigned concurrency, usec_t ttl) {
        Kubeconfig k;

        ASSERT_TRUE(i < MAX_NODES);
        if (!e->clients[i]) {
                kube_test_server_kubeconfig(e->server, &k);
                ASSERT_OK(kube_client_new(&e->clients[i], e->event, &k));
        }
        e->locks[i] = lock_free(e->locks[i]);
        ASSERT_OK(lock_new(&e->locks[i], e->clients[i], NS, "nodereboot", concurrency, ttl, identity));
        return e->locks[i];
}

static void wait_result(Env *e, Result *r) {
        ASSERT_OK(kube_test_run_until(e->event, &r->done, 20 * USEC_PER_SEC));
        ASSERT_EQ(r->calls, 1);
}

static void control(Env *e, const char *method, const char *path, const char *body) {
        ASSERT_OK(kube_test_control(e->server, method, path, body, NULL));
}

static void make_node(Env *e, const char *name) {
        _cleanup_free_ char *body = strdup_printf(
                "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\"}}", name);
        control(e, "POST", "/objects", body);
}

/* Puts a lease behind the API, as another node (or an old version of us) left it. */
static void make_lease(Env *e, const char *slot, const char *holder, usec_t renewed, int duration) {
        char t[FORMAT_RFC3339_MAX];
        _cleanup_free_ char *body = strdup_printf(
                "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\","
                "\"labels\":{\"" LOCK_LABEL "\":\"nodereboot\"}},"
                "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
                "\"acquireTime\":\"%s\",\"renewTime\":\"%s\",\"leaseTransitions\":7}}",
                slot, holder, duration, format_rfc3339(t, sizeof t, renewed, true), t);
        control(e, "POST", "/objects", body);
}

typedef struct Get {
        bool done;
        int error;
        json_object *body;
} Get;

static void on_get(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Get *g = userdata;

        g->done = true;
        g->error = error;
        g->body = json_object_get(response->body);
}

/* The lease as a client sees it (through the API), or NULL when it does not exist. */
static json_object *read_lease(Env *e, const char *slot) {
        _cleanup_free_ char *path = strjoin(LEASES "/", slot);
        Kubeconfig k;
        _cleanup_(kube_client_freep) KubeClient *c = NULL;
        Get g = {};

        kube_test_server_kubeconfig(e->server, &k);
        ASSERT_OK(kube_client_new(&c, e->event, &k));
        ASSERT_OK(kube_client_call(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_get, &g, NULL));
        ASSERT_OK(kube_test_run_until(e->event, &g.done, 10 * USEC_PER_SEC));
        if (g.error == -ENOENT) {
                json_object_put(g.body);
                return NULL;
        }
        ASSERT_OK(g.error);
        return g.body;
}

static char *lease_holder(Env *e, const char *slot) {
        _cleanup_json_ json_object *l = read_lease(e, slot);
        const char *h = lock_lease_holder(l);

        return h ? strdup(h) : NULL;
}

/* Requests in the server's log: method (NULL: any), path containing needle (NULL: any), status
 * (0: any). */
static int count_log(Env *e, const char *method, const char *needle, long status) {
        _cleanup_json_ json_object *log = NULL;
        int n = 0;

        ASSERT_OK(kube_test_control_json(e->server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *entry = json_object_array_get_idx(log, i);
                const char *path = json_get_string(entry, "path");
                int64_t st = 0;

                if (method && !streq_ptr(json_get_string(entry, "method"), method))
                        continue;
                if (needle && (!path || !strstr(path, needle)))
                        continue;
                (void) json_get_int64(entry, "status", &st);
                if (status != 0 && st != status)
                        continue;
                n++;
        }
        return n;
}

TEST(server_two_slots_three_nodes) {
        /* User story: with Concurrency=2, two of three nodes that want to reboot at the same moment
         * get the two slots, and the third is told who holds them. */
        Env e;
        Result r[MAX_NODES] = {};
        const char *ids[MAX_NODES] = { "node-a", "node-b", "node-c" };
        _cleanup_free_ char *h0 = NULL, *h1 = NULL;
        unsigned ok = 0, busy = 0;
        Result again = {}, own = {}, none = {};
        int64_t v;

        env_start(&e, NULL);
        for (unsigned i = 0; i < MAX_NODES; i++)
                make_node(&e, ids[i]);

        /* all three at once: the slots do not exist yet, so they race to create them */
        for (unsigned i = 0; i < MAX_NODES; i++)
                ASSERT_OK(lock_acquire(env_node(&e, i, ids[i], 2, USEC_PER_MINUTE), on_result, &r[i]));
        for (unsigned i = 0; i < MAX_NODES; i++)
                wait_result(&e, &r[i]);

        for (unsigned i = 0; i < MAX_NODES; i++) {
                fprintf(stderr, "    %s: %s %s %s\n", ids[i], r[i].error >= 0 ? "got" : strerror(-r[i].error),
                        strna(r[i].slot), strempty(r[i].holders));
                if (r[i].error == 0) {
                        ok++;
                        ASSERT_TRUE(r[i].slot);
                        ASSERT_TRUE(r[i].holders == NULL);
                } else {
                        busy++;
                        ASSERT_ERROR(r[i].error, EBUSY);
                        ASSERT_TRUE(r[i].slot == NULL);
                        ASSERT_TRUE(r[i].holders);
                        ASSERT_TRUE(strstr(r[i].holders, "nodereboot-0 held by node-"));
                        ASSERT_TRUE(strstr(r[i].holders, "nodereboot-1 held by node-"));
                        ASSERT_TRUE(strstr(r[i].holders, " since "));
                        ASSERT_TRUE(strstr(r[i].holders, "s ago)"));
                }
        }
        ASSERT_EQ(ok, 2);
        ASSERT_EQ(busy, 1);

        /* what the cluster shows: two leases, two different holders, both ours to describe */
        h0 = lease_holder(&e, "nodereboot-0");
        h1 = lease_holder(&e, "nodereboot-1");
        ASSERT_TRUE(h0 && h1 && !streq(h0, h1));
        {
                _cleanup_json_ json_object *l = read_lease(&e, "nodereboot-0");
                ASSERT_STREQ(json_object_get_string(json_get_member(json_get(l, "metadata.labels"), LOCK_LABEL)),
                             "nodereboot");
                ASSERT_TRUE(json_get_int64(l, "spec.leaseDurationSeconds", &v));
                ASSERT_EQ(v, 60);
                ASSERT_TRUE(json_get_string(l, "spec.renewTime"));
                ASSERT_TRUE(json_get_string(l, "spec.acquireTime"));
        }
        /* the slots were created (POST), at most once each */
        ASSERT_EQ(count_log(&e, "POST", "/leases", 201), 2);

        /* asking again while holding confirms the same slot */
        for (unsigned i = 0; i < MAX_NODES; i++)
                if (r[i].error == 0) {
                        ASSERT_OK(lock_acquire(e.locks[i], on_result, &again));
                        wait_result(&e, &again);
                        ASSERT_OK(again.error);
                        ASSERT_STREQ(again.slot, r[i].slot);
                        result_clear(&again);

                        ASSERT_OK(lock_find_own(e.locks[i], on_result, &own));
                        wait_result(&e, &own);
                        ASSERT_OK(own.error);
                        ASSERT_STREQ(own.slot, r[i].slot);
                        result_clear(&own);
                } else {
                        ASSERT_OK(lock_find_own(e.locks[i], on_result, &none));
                        wait_result(&e, &none);
                        ASSERT_OK(none.error);
                        ASSERT_TRUE(none.slot == NULL);
                        result_clear(&none);
                }

        for (unsigned i = 0; i < MAX_NODES; i++)
                result_clear(&r[i]);
        env_stop(&e);
}

typedef struct Waiter {
        Env *env;
        Lock *lock;
        unsigned changes;
        usec_t first_change_usec;
        bool acquire_on_change;
        Result acquired;
} Waiter;

static void on_changed(Lock *l, void *userdata) {
        Waiter *w = userdata;

        ASSERT_TRUE(l == w->lock);
        w->changes++;
        if (w->first_change_usec == 0)
                w->first_change_usec = now_usec(CLOCK_MONOTONIC);
        if (w->acquire_on_change && !w->acquired.done) {
                w->acquire_on_change = false;
                ASSERT_OK(lock_acquire(l, on_result, &w->acquired));
        }
}

TEST(server_release_hands_off) {
        /* User story: when the node holding the only slot releases it, a waiting node hears of it
         * at once through its watch and takes the slot: hand-off in well under a second. */
        Env e;
        Result a = {}, b = {}, rel = {}, other = {}, missing = {};
        Waiter w = {};
        usec_t t_start, t_done, t_changed, t_acquired;
        bool synced_changed;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-b");

        ASSERT_OK(lock_acquire(env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE), on_result, &a));
        wait_result(&e, &a);
        ASSERT_OK(a.error);
        ASSERT_STREQ(a.slot, "nodereboot-0");

        ASSERT_OK(lock_acquire(env_node(&e, 1, "node-b", 1, USEC_PER_MINUTE), on_result, &b));
        wait_result(&e, &b);
        ASSERT_ERROR(b.error, EBUSY);
        ASSERT_TRUE(strstr(b.holders, "nodereboot-0 held by node-a since "));

        /* node-b waits: its watch reports the first list once, then stays quiet while nothing
         * changes */
        w = (Waiter) { .env = &e, .lock = e.locks[1] };
        ASSERT_OK(lock_watch(e.locks[1], on_changed, &w));
        synced_changed = false;
        for (usec_t until = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;
             w.changes == 0 && now_usec(CLOCK_MONOTONIC) < until;)
                ASSERT_OK(kube_test_run_for(e.event, 20 * USEC_PER_MSEC));
        synced_changed = w.changes == 1;
        ASSERT_TRUE(synced_changed);
        ASSERT_OK(kube_test_run_for(e.event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(w.changes, 1);

        /* node-c's release of node-a's slot writes nothing */
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_release(env_node(&e, 2, "node-c", 1, USEC_PER_MINUTE), "nodereboot-0", on_result, &other));
        wait_result(&e, &other);
        ASSERT_OK(other.error);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        ASSERT_EQ(count_log(&e, "GET", LEASES "/nodereboot-0", 200), 1);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-a");
        }
        /* nor does the release of a slot that does not exist */
        ASSERT_OK(lock_release(e.locks[2], "nodereboot-5", on_result, &missing));
        wait_result(&e, &missing);
        ASSERT_OK(missing.error);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        ASSERT_EQ(count_log(&e, "POST", NULL, 0), 0);
        ASSERT_ERROR(lock_release(e.locks[2], "other-0", on_result, &missing), EINVAL);

        /* node-a releases; node-b acts on the watch event as the manager does */
        ASSERT_OK(kube_test_run_for(e.event, 100 * USEC_PER_MSEC));
        ASSERT_EQ(w.changes, 1);        /* a foreign no-op release is no change */
        w.changes = 0;
        w.first_change_usec = 0;
        w.acquire_on_change = true;
        t_start = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(lock_release(e.locks[0], a.slot, on_result, &rel));
        wait_result(&e, &rel);
        t_done = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(rel.error);
        ASSERT_STREQ(rel.slot, "nodereboot-0");
        ASSERT_OK(kube_test_run_until(e.event, &w.acquired.done, TEST_SLOW * 5 * USEC_PER_SEC));
        t_acquired = now_usec(CLOCK_MONOTONIC);
        t_changed = w.first_change_usec;
        ASSERT_TRUE(t_changed > 0);

        fprintf(stderr, "    hand-off: release took %.1f ms; changed() %.1f ms after the release answered "
                "(%.1f ms after it started); node-b held the slot %.1f ms after the release answered\n",
                (double) (t_done - t_start) / 1000.0,
                t_changed > t_done ? (double) (t_changed - t_done) / 1000.0 : 0.0,
                (double) (t_changed - t_start) / 1000.0,
                (double) (t_acquired - t_done) / 1000.0);
        ASSERT_TRUE(t_changed < t_done + TEST_SLOW * 100 * USEC_PER_MSEC);
        ASSERT_TRUE(t_acquired < t_done + TEST_SLOW * 500 * USEC_PER_MSEC);
        ASSERT_OK(w.acquired.error);
        ASSERT_STREQ(w.acquired.slot, "nodereboot-0");
        {
                _cleanup_json_ json_object *l = read_lease(&e, "nodereboot-0");
                int64_t v;

                ASSERT_STREQ(lock_lease_holder(l), "node-b");
                ASSERT_TRUE(json_get_int64(l, "spec.leaseTransitions", &v));
                ASSERT_EQ(v, 1);        /* created by a (0), b took it over (1) */
        }
        /* and node-a, back from its reboot, finds nothing of its own */
        result_clear(&a);
        ASSERT_OK(lock_find_own(e.locks[0], on_result, &a));
        wait_result(&e, &a);
        ASSERT_OK(a.error);
        ASSERT_TRUE(a.slot == NULL);

        lock_unwatch(e.locks[1]);
        result_clear(&a);
        result_clear(&b);
        result_clear(&rel);
        result_clear(&other);
        result_clear(&missing);
        result_clear(&w.acquired);
        env_stop(&e);
}

TEST(server_takeover_expired_and_ghost) {
        /* User stories: a lease whose holder stopped renewing long ago is taken over; a lease held
         * by a Node that no longer exists (autoscaler scale-in) is taken over as soon as its
         * holder misses a renewal, without waiting for its TTL (kured #137, #400, #847). */
        Env e;
        Result r = {};
        usec_t now = now_usec(CLOCK_REALTIME);
        int64_t v;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-x");

        /* node-x exists and renewed 10 s ago (TTL 60 s, so due every 20 s): busy, and its Node is
         * not looked up: a holder that renews on time runs */
        make_lease(&e, "nodereboot-0", "node-x", now - 10 * USEC_PER_SEC, 60);
        ASSERT_OK(lock_acquire(env_node(&e, 0, "node-a", 1, USEC_PER_HOUR), on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 held by node-x since "));
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/", 0), 0);
        result_clear(&r);

        /* renewed 40 s ago: it missed one (due at 20 s, margin 6 s), not expired yet: its Node is
         * looked up, exists, and the slot stays its */
        make_lease(&e, "nodereboot-0", "node-x", now - 40 * USEC_PER_SEC, 60);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(e.locks[0], on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/node-x", 200), 1);
        result_clear(&r);

        /* node-x stopped renewing 10 min ago (TTL 60 s), and its Node is Ready and idle (its daemon
         * died): taken over, after one look at that Node */
        make_lease(&e, "nodereboot-0", "node-x", now - 600 * USEC_PER_SEC, 60);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(e.locks[0], on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/", 0), 1);
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/node-x", 200), 1);
        {
                _cleanup_json_ json_object *l = read_lease(&e, "nodereboot-0");
                ASSERT_STREQ(lock_lease_holder(l), "node-a");
                ASSERT_TRUE(json_get_int64(l, "spec.leaseTransitions", &v));
                ASSERT_EQ(v, 8);
                ASSERT_TRUE(json_get_int64(l, "spec.leaseDurationSeconds", &v));
                ASSERT_EQ(v, 3600);
        }
        result_clear(&r);

        /* a ghost: node-gone renewed 25 min ago (TTL 1 h: due every 20 min, margin 6 min: not
         * missed yet): not looked up, busy */
        make_lease(&e, "nodereboot-0", "node-gone", now - 25 * 60 * USEC_PER_SEC, 3600);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(e.locks[0], on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/", 0), 0);
        result_clear(&r);

        /* 27 min ago: a renewal missed, its Node is gone: taken over, 33 min before it expires */
        make_lease(&e, "nodereboot-0", "node-gone", now - 27 * 60 * USEC_PER_SEC, 3600);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(e.locks[0], on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/node-gone", 404), 1);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-a");
        }
        result_clear(&r);

        /* with a free slot at hand, nobody's Node is looked up */
        make_lease(&e, "nodereboot-0", "node-gone", now - USEC_PER_SEC, 3600);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(env_node(&e, 0, "node-a", 2, USEC_PER_HOUR), on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-1");
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/", 0), 0);
        result_clear(&r);

        env_stop(&e);
}

TEST(server_clock_is_the_servers) {
        /* User story: a node whose clock is wrong neither steals a live lease nor waits on a dead
         * one: expiry is judged by the API server's clock (its Date header). */
        Env e;
        Result r = {};
        usec_t now = now_usec(CLOCK_REALTIME);

        env_start(&e, "--clock-offset -3600");
        make_node(&e, "node-a");
        make_node(&e, "node-x");

        /* renewed 2 min ago by our clock, TTL 60 s: expired for us; the server is an hour behind,
         * so by its clock it was renewed in the future: held */
        make_lease(&e, "nodereboot-0", "node-x", now - 120 * USEC_PER_SEC, 60);
        ASSERT_OK(lock_acquire(env_node(&e, 0, "node-a", 1, USEC_PER_HOUR), on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-x");
        }
        result_clear(&r);

        /* renewed 10 s ago by our clock, TTL 60 s: fresh for us; the server is an hour ahead:
         * expired by its clock, taken */
        control(&e, "POST", "/clock", "{\"offset\": 3600}");
        make_lease(&e, "nodereboot-0", "node-x", now - 10 * USEC_PER_SEC, 60);
        ASSERT_OK(lock_acquire(e.locks[0], on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        {
                _cleanup_json_ json_object *l = read_lease(&e, "nodereboot-0");
                usec_t renewed;

                ASSERT_STREQ(lock_lease_holder(l), "node-a");
                /* and what we wrote is in the server's time, an hour ahead of ours */
                ASSERT_OK(parse_rfc3339(json_get_string(l, "spec.renewTime"), &renewed));
                ASSERT_TRUE(renewed > now + 3590 * USEC_PER_SEC);
        }
        result_clear(&r);
        env_stop(&e);
}

TEST(server_conflicts_are_retried) {
        /* User story: losing a write race (409) makes the node read again and retry, not fail. */
        Env e;
        Result r = {};
        usec_t now = now_usec(CLOCK_REALTIME);
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-b");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);

        /* create: the POST loses once */
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"method\":\"POST\",\"action\":\"conflict\",\"count\":1}]");
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "POST", "/leases", 409), 1);
        ASSERT_EQ(count_log(&e, "POST", "/leases", 201), 1);
        result_clear(&r);

        /* renew: the PUT loses once */
        control(&e, "DELETE", "/log", NULL);
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"method\":\"PUT\",\"action\":\"conflict\",\"count\":1}]");
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 409), 1);
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 200), 1);
        result_clear(&r);

        /* release: the PUT loses once */
        control(&e, "DELETE", "/log", NULL);
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"method\":\"PUT\",\"action\":\"conflict\",\"count\":1}]");
        ASSERT_OK(lock_release(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 409), 1);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_TRUE(h == NULL);
        }
        result_clear(&r);

        /* takeover of a vacant slot: the PUT loses once */
        control(&e, "DELETE", "/log", NULL);
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"method\":\"PUT\",\"action\":\"conflict\",\"count\":1}]");
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 409), 1);
        ASSERT_EQ(count_log(&e, "GET", "/leases", 200), 2);
        result_clear(&r);

        /* a race lost for good is bounded: busy after a few rounds, renew gives up with -EAGAIN */
        make_lease(&e, "nodereboot-0", "node-b", now - USEC_PER_HOUR, 60);
        control(&e, "DELETE", "/log", NULL);
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"method\":\"PUT\",\"action\":\"conflict\",\"count\":100}]");
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 held by node-b"));
        ASSERT_TRUE(strstr(r.holders, "expired"));
        ASSERT_EQ(count_log(&e, "PUT", NULL, 409), (int) LOCK_CONFLICT_ROUNDS_MAX);
        result_clear(&r);

        make_lease(&e, "nodereboot-0", "node-a", now, 60);
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EAGAIN);
        result_clear(&r);
        control(&e, "DELETE", "/faults", NULL);

        env_stop(&e);
}

TEST(server_renew) {
        /* User story: a holder keeps its slot by renewing it; once another node holds it (the
         * holder was gone past its TTL), renewing says so, and releasing leaves it alone. */
        Env e;
        Result r = {};
        usec_t before, after;
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);

        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        result_clear(&r);
        {
                _cleanup_json_ json_object *lease0 = read_lease(&e, "nodereboot-0");
                ASSERT_OK(parse_rfc3339(json_get_string(lease0, "spec.renewTime"), &before));
        }
        /* the client knows the server's clock from whole-second Date headers, ±0.5 s: wait longer */
        ASSERT_OK(kube_test_run_for(e.event, 1200 * USEC_PER_MSEC));
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);
        {
                _cleanup_json_ json_object *lease0 = read_lease(&e, "nodereboot-0");
                ASSERT_OK(parse_rfc3339(json_get_string(lease0, "spec.renewTime"), &after));
                ASSERT_TRUE(after > before);
                ASSERT_STREQ(lock_lease_holder(lease0), "node-a");
        }

        /* node-b took it over meanwhile */
        make_lease(&e, "nodereboot-0", "node-b", now_usec(CLOCK_REALTIME), 60);
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ESTALE);
        result_clear(&r);

        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_release(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-b");
        }
        result_clear(&r);

        /* a slot that is gone is not ours either */
        control(&e, "DELETE", "/objects/Lease/" NS "/nodereboot-0", NULL);
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ESTALE);
        result_clear(&r);

        env_stop(&e);
}

TEST(server_lost_answer) {
        /* User story: our write went through but its answer was lost (timeout); the client's repeat
         * meets it as a 409: we still know that we hold the slot. The server's "drop" fault closes
         * the connection before processing, so a slow first attempt stands in: it is processed
         * after the client gave up on it, before the repeat arrives. */
        Env e;
        Result r = {};
        usec_t now = now_usec(CLOCK_REALTIME);
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-x");
        make_lease(&e, "nodereboot-0", "node-x", now - USEC_PER_HOUR, 60);
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);
        kube_client_set_timeouts(e.clients[0], USEC_PER_SEC, 500 * USEC_PER_MSEC);

        /* attempt 1 sleeps 0.8 s, then writes (the client gave up at 0.5 s); attempt 2 sleeps 3 s
         * (the client gives up at its 0.5 s); attempt 3 arrives after attempt 1 wrote: 409 */
        control(&e, "POST", "/faults",
                "[{\"match\":\"leases/nodereboot-0\",\"method\":\"PUT\",\"action\":\"delay\",\"delay\":0.8,\"count\":1},"
                " {\"match\":\"leases/nodereboot-0\",\"method\":\"PUT\",\"action\":\"delay\",\"delay\":3,\"count\":1}]");
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-a");
        }
        fprintf(stderr, "    PUTs: %d answered 409, lists: %d\n", count_log(&e, "PUT", NULL, 409),
                count_log(&e, "GET", "/leases", 200));
        ASSERT_TRUE(count_log(&e, "PUT", NULL, 409) >= 1);
        ASSERT_TRUE(count_log(&e, "GET", "/leases", 200) >= 2);
        result_clear(&r);

        /* let the slow attempt 2 finish on the server before it goes */
        ASSERT_OK(kube_test_run_for(e.event, 3 * USEC_PER_SEC));
        env_stop(&e);
}

/* Writes more Leases than the server keeps history for (its watch cache is per resource, as on a
 * real server, where the kubelets' node Leases push the lock's old events out), so that a watch of
 * the lock resuming from before them gets 410 Gone and lists again. */
static void flood_history(Env *e) {
        static unsigned generation = 0;
        _cleanup_free_ char *body = strdup("[");

        generation++;
        for (unsigned i = 0; i < 2100; i++) {
                char *n = strdup_printf("%s%s{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                                        "\"metadata\":{\"name\":\"filler-%u-%u\",\"namespace\":\"default\"}}",
                                        body, i > 0 ? "," : "", generation, i);
                ASSERT_TRUE(n);
                free(body);
                body = n;
        }
        {
                char *n = strjoin(body, "]");
                ASSERT_TRUE(n);
                free(body);
                body = n;
        }
        control(e, "POST", "/objects", body);
}

/* Plain lists (not watches) of the group's leases in the server's log. */
static int count_lists(Env *e) {
        _cleanup_json_ json_object *log = NULL;
        int n = 0;

        ASSERT_OK(kube_test_control_json(e->server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *entry = json_object_array_get_idx(log, i);

                if (streq_ptr(json_get_string(entry, "method"), "GET") &&
                    streq_ptr(json_get_string(entry, "path"), LEASES) &&
                    !json_get(entry, "query.watch"))
                        n++;
        }
        return n;
}

static void run_until_changes(Env *e, Waiter *w, unsigned n, usec_t timeout) {
        for (usec_t until = now_usec(CLOCK_MONOTONIC) + timeout;
             w->changes < n && now_usec(CLOCK_MONOTONIC) < until;)
                ASSERT_OK(kube_test_run_for(e->event, 20 * USEC_PER_MSEC));
}

TEST(server_watch_outlives_outages) {
        /* User story: a waiting node's watch survives stream restarts, API outages and re-lists
         * without false alarms, and a slot freed while it was away is reported once it is back. */
        Env e;
        Result a = {};
        Waiter w = {};
        int lists;
        usec_t t0;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        ASSERT_OK(lock_acquire(env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE), on_result, &a));
        wait_result(&e, &a);
        ASSERT_OK(a.error);

        (void) env_node(&e, 1, "node-b", 1, USEC_PER_MINUTE);
        kube_client_set_watch_timeout(e.clients[1], 1);         /* the server ends the stream every 1 s */
        w = (Waiter) { .env = &e, .lock = e.locks[1] };
        ASSERT_OK(lock_watch(e.locks[1], on_changed, &w));
        run_until_changes(&e, &w, 1, 5 * USEC_PER_SEC);
        ASSERT_EQ(w.changes, 1);                /* the first list */
        ASSERT_OK(kube_test_run_for(e.event, 2500 * USEC_PER_MSEC));
        ASSERT_EQ(w.changes, 1);                /* stream restarts are no change */

        /* an outage long enough for the server to forget where the watch was: it lists again and
         * finds the same lease, which is no change either */
        lists = count_lists(&e);
        control(&e, "POST", "/outage", "{\"seconds\": 1}");
        flood_history(&e);
        for (usec_t until = now_usec(CLOCK_MONOTONIC) + 15 * USEC_PER_SEC;
             count_lists(&e) == lists && now_usec(CLOCK_MONOTONIC) < until;)
                ASSERT_OK(kube_test_run_for(e.event, 100 * USEC_PER_MSEC));
        ASSERT_TRUE(count_lists(&e) > lists);
        ASSERT_OK(kube_test_run_for(e.event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(w.changes, 1);

        /* the same, but an admin clears the slot while the API is away */
        control(&e, "POST", "/outage", "{\"seconds\": 1}");
        make_lease(&e, "nodereboot-0", "", now_usec(CLOCK_REALTIME), 60);
        flood_history(&e);
        t0 = now_usec(CLOCK_MONOTONIC);
        run_until_changes(&e, &w, 2, 15 * USEC_PER_SEC);
        ASSERT_EQ(w.changes, 2);
        fprintf(stderr, "    slot freed during a 1 s outage reported %.1f s after it began\n",
                (double) (now_usec(CLOCK_MONOTONIC) - t0) / USEC_PER_SEC);
        ASSERT_OK(kube_test_run_for(e.event, 1500 * USEC_PER_MSEC));
        ASSERT_EQ(w.changes, 2);

        lock_unwatch(e.locks[1]);
        result_clear(&a);
        env_stop(&e);
}

TEST(server_free_cancels) {
        /* Freeing the lock while operations and a watch are in flight runs no handler afterwards. */
        Env e;
        Result r1 = {}, r2 = {};
        Waiter w = {};
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);
        control(&e, "POST", "/faults", "[{\"match\":\"leases\",\"action\":\"delay\",\"delay\":0.3}]");
        w = (Waiter) { .env = &e, .lock = l };
        ASSERT_OK(lock_acquire(l, on_result, &r1));
        ASSERT_OK(lock_release(l, "nodereboot-0", on_result, &r2));
        ASSERT_OK(lock_watch(l, on_changed, &w));
        ASSERT_OK(kube_test_run_for(e.event, 50 * USEC_PER_MSEC));
        e.locks[0] = lock_free(e.locks[0]);
        ASSERT_OK(kube_test_run_for(e.event, USEC_PER_SEC));
        ASSERT_EQ(r1.calls, 0);
        ASSERT_EQ(r2.calls, 0);
        ASSERT_EQ(w.changes, 0);
        control(&e, "DELETE", "/faults", NULL);
        env_stop(&e);
}

typedef struct Listed {
        bool done;
        unsigned calls;
        int error;
        size_t n;
        char *holders[4];
        LockSlotState states[4];
} Listed;

static void on_listed(Lock *l, int error, const LockSlotInfo *slots, size_t n, usec_t server_now,
                      void *userdata) {
        Listed *r = userdata;

        r->calls++;
        r->done = true;
        r->error = error;
        r->n = n;
        ASSERT_TRUE(server_now > 0);
        for (size_t i = 0; i < n && i < ELEMENTSOF(r->holders); i++) {
                r->holders[i] = slots[i].holder ? strdup(slots[i].holder) : NULL;
                r->states[i] = slots[i].state;
        }
}

static void listed_clear(Listed *r) {
        for (size_t i = 0; i < ELEMENTSOF(r->holders); i++)
                free(r->holders[i]);
        *r = (Listed) {};
}

typedef struct Forced {
        bool done;
        unsigned calls;
        int error;
        bool have_slot;
        char *holder;
        usec_t renew_time;
} Forced;

static void on_forced(Lock *l, int error, const LockSlotInfo *slot, void *userdata) {
        Forced *r = userdata;

        r->calls++;
        r->done = true;
        r->error = error;
        r->have_slot = slot != NULL;
        r->holder = slot && slot->holder ? strdup(slot->holder) : NULL;
        r->renew_time = slot ? slot->renew_time : 0;
}

static void force(Env *e, Lock *l, const char *slot, Forced *r) {
        free(r->holder);
        *r = (Forced) {};
        ASSERT_OK(lock_force_release(l, slot, on_forced, r));
        ASSERT_OK(kube_test_run_until(e->event, &r->done, 20 * USEC_PER_SEC));
        ASSERT_EQ(r->calls, 1);
}

TEST(server_list_and_force_release) {
        /* User story: an administrator lists the group's slots and releases one left held by a node
         * that will not come back; the write carries the resourceVersion just read, so a change in
         * between is reported and never overwritten, and no lease outside the group is touched. */
        Env e;
        Listed ls = {};
        Forced f = {};
        usec_t now = now_usec(CLOCK_REALTIME);
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-b");
        make_lease(&e, "nodereboot-0", "node-b", now, 3600);
        make_lease(&e, "nodereboot-5", "node-c", now - USEC_PER_HOUR, 60);   /* a leftover, expired */
        l = env_node(&e, 0, "admin", 2, USEC_PER_MINUTE);

        ASSERT_OK(lock_list(l, on_listed, &ls));
        ASSERT_OK(kube_test_run_until(e.event, &ls.done, 20 * USEC_PER_SEC));
        ASSERT_EQ(ls.calls, 1);
        ASSERT_OK(ls.error);
        ASSERT_EQ(ls.n, 3);
        ASSERT_EQ(ls.states[0], LOCK_SLOT_HELD);
        ASSERT_STREQ(ls.holders[0], "node-b");
        ASSERT_EQ(ls.states[1], LOCK_SLOT_MISSING);
        ASSERT_EQ(ls.states[2], LOCK_SLOT_EXPIRED);
        ASSERT_STREQ(ls.holders[2], "node-c");
        listed_clear(&ls);

        /* a concurrent write between our read and our write: 409, reported, nothing overwritten */
        control(&e, "DELETE", "/log", NULL);
        control(&e, "POST", "/faults",
                "[{\"match\":\"leases/nodereboot-0\",\"method\":\"PUT\",\"action\":\"conflict\",\"count\":1}]");
        force(&e, l, "nodereboot-0", &f);
        ASSERT_ERROR(f.error, ESTALE);
        ASSERT_TRUE(f.have_slot);
        ASSERT_STREQ(f.holder, "node-b");
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 409), 1);
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 200), 0);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-b");
        }
        control(&e, "DELETE", "/faults", NULL);

        /* the release itself: one read, one conditional write */
        control(&e, "DELETE", "/log", NULL);
        force(&e, l, "nodereboot-0", &f);
        ASSERT_OK(f.error);
        ASSERT_STREQ(f.holder, "node-b");
        ASSERT_EQ(count_log(&e, "GET", "/leases/nodereboot-0", 200), 1);
        ASSERT_EQ(count_log(&e, "PUT", "/leases/nodereboot-0", 200), 1);
        {
                _cleanup_json_ json_object *lease = read_lease(&e, "nodereboot-0");
                json_object *put = NULL, *log = NULL;

                ASSERT_TRUE(lock_lease_holder(lease) == NULL);
                /* labels kept; the write carried the resourceVersion read */
                ASSERT_STREQ(json_get_string(json_get_member(json_get(lease, "metadata.labels"), LOCK_LABEL), ""),
                             "nodereboot");
                ASSERT_OK(kube_test_control_json(e.server, "GET", "/log", NULL, &log));
                for (size_t i = 0; i < json_array_length(log); i++)
                        if (streq_ptr(json_get_string(json_object_array_get_idx(log, i), "method"), "PUT"))
                                put = json_object_array_get_idx(log, i);
                ASSERT_TRUE(put);
                ASSERT_FALSE(isempty(json_get_string(put, "body.metadata.resourceVersion")));
                json_object_put(log);
        }

        /* already free: nothing written */
        control(&e, "DELETE", "/log", NULL);
        force(&e, l, "nodereboot-0", &f);
        ASSERT_OK(f.error);
        ASSERT_TRUE(f.have_slot && f.holder == NULL);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);

        /* a leftover slot beyond the concurrency is still the group's */
        force(&e, l, "nodereboot-5", &f);
        ASSERT_OK(f.error);
        ASSERT_STREQ(f.holder, "node-c");

        /* a lease named like a slot but not labelled as one is not ours to touch */
        control(&e, "POST", "/objects",
                "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                "\"metadata\":{\"name\":\"nodereboot-1\",\"namespace\":\"" NS "\"},"
                "\"spec\":{\"holderIdentity\":\"something-else\",\"leaseDurationSeconds\":10}}");
        control(&e, "DELETE", "/log", NULL);
        force(&e, l, "nodereboot-1", &f);
        ASSERT_ERROR(f.error, EPERM);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-1");
                ASSERT_STREQ(h, "something-else");
        }

        /* no such lease; not a slot name at all */
        force(&e, l, "nodereboot-7", &f);
        ASSERT_ERROR(f.error, ENOENT);
        ASSERT_FALSE(f.have_slot);
        ASSERT_ERROR(lock_force_release(l, "other-0", on_forced, &f), EINVAL);
        ASSERT_ERROR(lock_force_release(l, "nodereboot-0", NULL, &f), EINVAL);
        ASSERT_ERROR(lock_list(l, NULL, NULL), EINVAL);

        /* the API down: the error, no slots */
        free(f.holder);
        env_stop(&e);
}

/* ---- issue 6: stuck holders, lost labels, cloned names, the held slot ------------------------- */

/* A Node that is Ready or not (its kubelet keeps posting Ready=False), with extra annotations
 * (JSON members, may be NULL). Replaces a Node of that name. */
static void make_node_full(Env *e, const char *name, bool ready, const char *annotations) {
        _cleanup_free_ char *body = strdup_printf(
                "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"annotations\":{%s}},"
                "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\",\"reason\":\"%s\"}]}}",
                name, strempty(annotations), ready ? "True" : "False", ready ? "KubeletReady" : "KubeletNotReady");
        _cleanup_free_ char *path = strjoin("/nodes/", name, "/ready");

        control(e, "POST", "/objects", body);
        control(e, "POST", path, ready ? "{\"ready\": true}" : "{\"ready\": false}");
}

/* make_lease() with the group label's value (NULL: no label at all) and the machine-ID annotation
 * (NULL: none, as an older version wrote it). */
static void make_lease_full(Env *e, const char *slot, const char *holder, usec_t renewed, int duration,
                            const char *label, const char *machine) {
        char t[FORMAT_RFC3339_MAX];
        _cleanup_free_ char *body = strdup_printf(
                "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
                "\"metadata\":{\"name\":\"%s\",\"namespace\":\"" NS "\",\"labels\":{%s%s%s},\"annotations\":{%s%s%s}},"
                "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
                "\"acquireTime\":\"%s\",\"renewTime\":\"%s\",\"leaseTransitions\":7}}",
                slot, label ? "\"" LOCK_LABEL "\":\"" : "", strempty(label), label ? "\"" : "",
                machine ? "\"" LOCK_ANNOTATION_MACHINE_ID "\":\"" : "", strempty(machine), machine ? "\"" : "",
                holder, duration, format_rfc3339(t, sizeof t, renewed, true), t);
        control(e, "POST", "/objects", body);
}

/* Events with this reason on Node node; ret_message (may be NULL) gets the last one's message. */
static int count_events(Env *e, const char *node, const char *reason, char **ret_message) {
        _cleanup_json_ json_object *events = NULL;
        int n = 0;

        ASSERT_OK(kube_test_control_json(e->server, "GET", "/objects?kind=Event&namespace=default", NULL, &events));
        for (size_t i = 0; i < json_array_length(events); i++) {
                json_object *ev = json_object_array_get_idx(events, i);

                if (!streq_ptr(json_get_string(ev, "reason"), reason) ||
                    !streq_ptr(json_get_string(ev, "involvedObject.name"), node))
                        continue;
                ASSERT_STREQ(json_get_string(ev, "type"), "Warning");
                ASSERT_STREQ(json_get_string(ev, "involvedObject.kind"), "Node");
                if (ret_message) {
                        free(*ret_message);
                        *ret_message = strdup(strempty(json_get_string(ev, "message")));
                }
                n++;
        }
        return n;
}

static int wait_events(Env *e, const char *node, const char *reason, int n, char **ret_message) {
        int k = 0;

        for (usec_t until = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC; now_usec(CLOCK_MONOTONIC) < until;) {
                k = count_events(e, node, reason, ret_message);
                if (k >= n)
                        break;
                ASSERT_OK(kube_test_run_for(e->event, 50 * USEC_PER_MSEC));
        }
        return k;
}

static char *lease_label(Env *e, const char *slot) {
        _cleanup_json_ json_object *l = read_lease(e, slot);
        const char *v = json_get_string(json_get_member(json_get(l, "metadata.labels"), LOCK_LABEL), "");

        return v ? strdup(v) : NULL;
}

static char *lease_machine(Env *e, const char *slot) {
        _cleanup_json_ json_object *l = read_lease(e, slot);
        const char *v = lock_lease_machine_id(l);

        return v ? strdup(v) : NULL;
}

/* The query parameter key of the last request for path (exact), or NULL. */
static char *last_query(Env *e, const char *method, const char *path, const char *key) {
        _cleanup_json_ json_object *log = NULL;
        char *v = NULL;

        ASSERT_OK(kube_test_control_json(e->server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *entry = json_object_array_get_idx(log, i);

                if (streq_ptr(json_get_string(entry, "method"), method) &&
                    streq_ptr(json_get_string(entry, "path"), path)) {
                        free(v);
                        v = strdup(strempty(json_get_string(json_get_member(json_get(entry, "query"), key), "")));
                }
        }
        return v;
}

TEST(server_stuck_holder_keeps_its_slot) {
        /* User story (issue 6, item 4): node-b rebooted into a bad kernel and does not come back;
         * its lease expires. The next node does not follow it into the same image: the rollout
         * stops and says why, one Warning Event on node-b tells the administrator, and
         * `noderebootctl unlock` lets the fleet go on. */
        Env e;
        Result r = {};
        Forced f = {};
        _cleanup_free_ char *message = NULL;
        usec_t now = now_usec(CLOCK_REALTIME), renewed_c;
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-c");
        make_node_full(&e, "node-b", false,
                       "\"" NODE_ANNOTATION_IN_PROGRESS "\":\"2026-11-27T10:00:00Z\","
                       "\"" NODE_ANNOTATION_CORDONED "\":\"true\"");
        make_lease(&e, "nodereboot-0", "node-b", now - 95 * USEC_PER_SEC, 60);     /* expired 35 s ago */
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);

        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        fprintf(stderr, "    %s\n", strempty(r.holders));
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 held by node-b, expired 3"));
        ASSERT_TRUE(strstr(r.holders, "s ago, but node-b is NotReady, cordoned by nodereboot and mid-cycle: not "
                           "taking it over (a node that does not come back must not be followed); run "
                           "'noderebootctl unlock nodereboot-0' once node-b is dealt with"));
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0"), *rv = NULL;

                ASSERT_STREQ(h, "node-b");
                ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
                /* one read of its Node, served from the API server's cache */
                ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/node-b", 200), 1);
                rv = last_query(&e, "GET", "/api/v1/nodes/node-b", "resourceVersion");
                ASSERT_STREQ(rv, "0");
        }
        /* no tight loop on a slot that expired long ago */
        ASSERT_EQ(lock_next_expiry(l), USEC_INFINITY);
        ASSERT_EQ(wait_events(&e, "node-b", LOCK_EVENT_REASON_STUCK, 1, &message), 1);
        ASSERT_STREQ(message, r.holders);
        result_clear(&r);

        /* asking again (the periodic re-check) posts no second Event for the same renewal */
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        result_clear(&r);
        ASSERT_OK(kube_test_run_for(e.event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(count_events(&e, "node-b", LOCK_EVENT_REASON_STUCK, NULL), 1);

        /* Ready again but still mid-cycle (its daemon died before finishing): kept, and a renewal
         * seen since is a new situation worth one more Event */
        make_node_full(&e, "node-b", true, "\"" NODE_ANNOTATION_IN_PROGRESS "\":\"2026-11-27T10:00:00Z\"");
        make_lease(&e, "nodereboot-0", "node-b", now - 90 * USEC_PER_SEC, 60);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "but node-b is mid-cycle: not taking it over"));
        result_clear(&r);
        ASSERT_EQ(wait_events(&e, "node-b", LOCK_EVENT_REASON_STUCK, 2, NULL), 2);

        /* its Node cannot be read: not demonstrably healthy, kept, no Event */
        control(&e, "POST", "/faults",
                "[{\"match\":\"nodes/node-b\",\"method\":\"GET\",\"action\":\"status\",\"status\":403,\"count\":1}]");
        make_lease(&e, "nodereboot-0", "node-b", now - 85 * USEC_PER_SEC, 60);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "but node-b is not known to be healthy (its Node could not be read: "));
        result_clear(&r);
        control(&e, "DELETE", "/faults", NULL);
        ASSERT_OK(kube_test_run_for(e.event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(count_events(&e, "node-b", LOCK_EVENT_REASON_STUCK, NULL), 2);

        /* with Concurrency=2 the other slot's live holder sets the next try, not the stuck one */
        renewed_c = now_usec(CLOCK_REALTIME);
        make_lease(&e, "nodereboot-1", "node-c", renewed_c, 60);
        l = env_node(&e, 0, "node-a", 2, USEC_PER_MINUTE);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 held by node-b, expired "));
        ASSERT_TRUE(strstr(r.holders, "; nodereboot-1 held by node-c since "));
        ASSERT_EQ(lock_next_expiry(l), renewed_c + 60 * USEC_PER_SEC);
        result_clear(&r);

        /* the administrator's unlock lets the fleet go on */
        force(&e, env_node(&e, 1, "admin", 2, USEC_PER_MINUTE), "nodereboot-0", &f);
        ASSERT_OK(f.error);
        ASSERT_STREQ(f.holder, "node-b");
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);

        /* an expired holder whose Node was deleted is gone for good: taken over */
        make_lease(&e, "nodereboot-0", "node-gone", now - 95 * USEC_PER_SEC, 60);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "GET", "/api/v1/nodes/node-gone", 404), 1);
        result_clear(&r);

        free(f.holder);
        env_stop(&e);
}

TEST(server_unlabelled_slot) {
        /* User story (issue 6, item 7.4): a GitOps tool rewrote a slot's Lease without the
         * nodereboot.io/lock label. Nodes still find it by name, say who holds it, and put the label
         * back with the next write they make anyway. */
        Env e;
        Result r = {};
        usec_t now = now_usec(CLOCK_REALTIME);
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-b");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);

        /* free, but invisible to the list: the create meets AlreadyExists once, then it is read by
         * name and taken, with the label back */
        make_lease_full(&e, "nodereboot-0", "", now, 60, NULL, NULL);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        ASSERT_EQ(count_log(&e, "POST", "/leases", 409), 1);
        ASSERT_EQ(count_log(&e, "POST", "/leases", 0), 1);
        ASSERT_EQ(count_log(&e, "GET", LEASES "/nodereboot-0", 200), 1);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0"), *v = lease_label(&e, "nodereboot-0");
                ASSERT_STREQ(h, "node-a");
                ASSERT_STREQ(v, "nodereboot");
        }
        result_clear(&r);

        /* held by node-b: reported as such after one create, not "every attempt lost" after five */
        make_lease_full(&e, "nodereboot-0", "node-b", now_usec(CLOCK_REALTIME), 60, NULL, NULL);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 held by node-b since "));
        ASSERT_EQ(count_log(&e, "POST", "/leases", 0), 1);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        result_clear(&r);

        /* ours: found at start by name, and our renewal puts the label back */
        make_lease_full(&e, "nodereboot-0", "node-a", now_usec(CLOCK_REALTIME), 60, NULL, NULL);
        ASSERT_OK(lock_find_own(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        {
                _cleanup_free_ char *v = lease_label(&e, "nodereboot-0");
                ASSERT_STREQ(v, "nodereboot");
        }
        result_clear(&r);

        /* labelled for another group: said so, never written */
        make_lease_full(&e, "nodereboot-0", "", now_usec(CLOCK_REALTIME), 60, "gpu", NULL);
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, EBUSY);
        ASSERT_TRUE(strstr(r.holders, "nodereboot-0 is labelled nodereboot.io/lock=gpu, not as a slot of nodereboot"));
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        result_clear(&r);

        /* released by its holder: that write puts the label back too */
        make_lease_full(&e, "nodereboot-0", "node-a", now_usec(CLOCK_REALTIME), 60, NULL, NULL);
        ASSERT_OK(lock_release(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        {
                _cleanup_free_ char *h = lease_holder(&e, "nodereboot-0"), *v = lease_label(&e, "nodereboot-0");
                ASSERT_TRUE(h == NULL);
                ASSERT_STREQ(v, "nodereboot");
        }
        result_clear(&r);

        env_stop(&e);
}

#define MACHINE_A "aaaaaaaaaaaa0000aaaaaaaaaaaa0000"
#define MACHINE_B "bbbbbbbbbbbb1111bbbbbbbbbbbb1111"

TEST(server_two_hosts_one_name) {
        /* User story (issue 6, item 7.5): a cloned image gave two hosts the same [Node] Name=node-a.
         * They never both believe they hold the slot: the second one is told, by a distinct
         * error, and a lease written by an older version (no machine ID) is still adopted. */
        Env e;
        Result r = {};
        _cleanup_free_ char *m = NULL;
        Lock *a, *b, *ctl;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        a = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);
        b = env_node(&e, 1, "node-a", 1, USEC_PER_MINUTE);
        ASSERT_OK(lock_set_machine_id(a, MACHINE_A));
        ASSERT_OK(lock_set_machine_id(b, MACHINE_B));

        ASSERT_OK(lock_acquire(a, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        result_clear(&r);
        m = lease_machine(&e, "nodereboot-0");
        ASSERT_STREQ(m, MACHINE_A);

        /* the twin: acquire, renew (the pre-reboot confirmation) and find_own all refuse */
        ASSERT_OK(lock_acquire(b, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ENOTUNIQ);
        ASSERT_TRUE(r.slot == NULL);
        ASSERT_STREQ(r.holders, "lease nodereboot-0 is held under our name node-a by machine aaaaaaaaaaaa…, "
                     "we are bbbbbbbbbbbb…: two hosts share [Node] Name=node-a");
        result_clear(&r);
        ASSERT_OK(lock_renew(b, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ENOTUNIQ);
        ASSERT_TRUE(strstr(r.holders, "two hosts share [Node] Name=node-a"));
        result_clear(&r);
        ASSERT_OK(lock_find_own(b, on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ENOTUNIQ);
        ASSERT_TRUE(r.slot == NULL);
        result_clear(&r);
        /* its release leaves the other host's slot alone */
        control(&e, "DELETE", "/log", NULL);
        ASSERT_OK(lock_release(b, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_EQ(count_log(&e, "PUT", NULL, 0), 0);
        result_clear(&r);
        /* the rightful holder goes on */
        ASSERT_OK(lock_renew(a, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        result_clear(&r);
        ASSERT_OK(lock_find_own(a, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);

        /* noderebootctl (no machine ID) sees node-a's slot */
        ctl = env_node(&e, 2, "node-a", 1, USEC_PER_MINUTE);
        ASSERT_OK(lock_find_own(ctl, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);

        /* a lease from before machine IDs is ours, and gets ours with the write */
        make_lease(&e, "nodereboot-0", "node-a", now_usec(CLOCK_REALTIME), 60);
        ASSERT_OK(lock_acquire(b, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);
        m = mfree(m);
        m = lease_machine(&e, "nodereboot-0");
        ASSERT_STREQ(m, MACHINE_B);
        /* and now the other host is the twin */
        ASSERT_OK(lock_renew(a, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_ERROR(r.error, ENOTUNIQ);
        result_clear(&r);

        ASSERT_ERROR(lock_set_machine_id(a, ""), EINVAL);
        ASSERT_ERROR(lock_set_machine_id(a, "a b"), EINVAL);
        ASSERT_ERROR(lock_set_machine_id(a, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), EINVAL);
        ASSERT_OK(lock_set_machine_id(a, NULL));
        env_stop(&e);
}

typedef struct Lost {
        bool done;
        unsigned calls;
        char *slot;
        char *why;
        usec_t when;
} Lost;

static void on_lost(Lock *l, const char *slot, const char *why, void *userdata) {
        Lost *x = userdata;

        x->calls++;
        x->done = true;
        x->when = now_usec(CLOCK_MONOTONIC);
        free(x->slot);
        free(x->why);
        x->slot = strdup(slot);
        x->why = strdup(why);
}

static void lost_clear(Lost *x) {
        free(x->slot);
        free(x->why);
        *x = (Lost) {};
}

/* Holds nodereboot-0 as node-a and watches it. */
static void hold_and_watch(Env *e, Lock *l, Lost *x) {
        Result r = {};

        make_lease(e, "nodereboot-0", "", now_usec(CLOCK_REALTIME), 60);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(e, &r);
        ASSERT_OK(r.error);
        ASSERT_STREQ(r.slot, "nodereboot-0");
        result_clear(&r);
        lost_clear(x);
        ASSERT_OK(lock_watch_held(l, "nodereboot-0", on_lost, x));
        ASSERT_OK(kube_test_run_for(e->event, 300 * USEC_PER_MSEC));
        ASSERT_EQ(x->calls, 0);
}

/* Runs until lost() ran; returns how long after t0 it did. */
static usec_t wait_lost(Env *e, Lost *x, usec_t t0) {
        ASSERT_OK(kube_test_run_until(e->event, &x->done, 10 * USEC_PER_SEC));
        ASSERT_EQ(x->calls, 1);
        ASSERT_STREQ(x->slot, "nodereboot-0");
        fprintf(stderr, "    lost after %.1f ms: %s\n", (double) (x->when - t0) / USEC_PER_MSEC, x->why);
        return x->when - t0;
}

/* Watches of the one lease by name in the server's log. */
static int count_held_watches(Env *e) {
        _cleanup_json_ json_object *log = NULL;
        int n = 0;

        ASSERT_OK(kube_test_control_json(e->server, "GET", "/log", NULL, &log));
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *entry = json_object_array_get_idx(log, i);
                json_object *q = json_get(entry, "query");

                if (json_get_member(q, "watch") &&
                    streq_ptr(json_get_string(json_get_member(q, "fieldSelector"), ""), "metadata.name=nodereboot-0"))
                        n++;
        }
        return n;
}

TEST(server_watch_held) {
        /* User story (issue 6, item 5): a holder learns within a second that its slot is gone (an
         * administrator's unlock, another node's takeover, a deleted Lease, a twin), also after the
         * server ended its watch, or forgot where it was; its own renewals are no alarm. */
        Env e;
        Lost x = {};
        Result r = {};
        Forced f = {};
        usec_t t0;
        Lock *l, *admin;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        make_node(&e, "node-b");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);
        ASSERT_OK(lock_set_machine_id(l, MACHINE_A));
        admin = env_node(&e, 1, "admin", 1, USEC_PER_MINUTE);
        kube_client_set_watch_timeout(e.clients[0], 1);         /* the server ends the watch every 1 s */

        /* the server ends the watch every second; renewals in between: no alarm */
        control(&e, "DELETE", "/log", NULL);
        hold_and_watch(&e, l, &x);
        for (unsigned i = 0; i < 3; i++) {
                ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
                wait_result(&e, &r);
                ASSERT_OK(r.error);
                result_clear(&r);
                ASSERT_OK(kube_test_run_for(e.event, 800 * USEC_PER_MSEC));
        }
        ASSERT_EQ(x.calls, 0);
        fprintf(stderr, "    %d watches of the held lease so far\n", count_held_watches(&e));
        ASSERT_TRUE(count_held_watches(&e) >= 2);

        /* an administrator's unlock, on a watch that was re-established */
        t0 = now_usec(CLOCK_MONOTONIC);
        force(&e, admin, "nodereboot-0", &f);
        ASSERT_OK(f.error);
        ASSERT_TRUE(wait_lost(&e, &x, t0) < USEC_PER_SEC);
        ASSERT_STREQ(x.why, "released (no holder)");
        ASSERT_OK(kube_test_run_for(e.event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(x.calls, 1);                  /* once */

        /* another node took it */
        hold_and_watch(&e, l, &x);
        t0 = now_usec(CLOCK_MONOTONIC);
        make_lease(&e, "nodereboot-0", "node-b", now_usec(CLOCK_REALTIME), 60);
        ASSERT_TRUE(wait_lost(&e, &x, t0) < USEC_PER_SEC);
        ASSERT_STREQ(x.why, "taken by node-b");

        /* a host with the same name wrote it */
        hold_and_watch(&e, l, &x);
        t0 = now_usec(CLOCK_MONOTONIC);
        make_lease_full(&e, "nodereboot-0", "node-a", now_usec(CLOCK_REALTIME), 60, "nodereboot", MACHINE_B);
        ASSERT_TRUE(wait_lost(&e, &x, t0) < USEC_PER_SEC);
        ASSERT_TRUE(startswith(x.why, "held under our name by machine bbbbbbbbbbbb"));

        /* the Lease deleted */
        hold_and_watch(&e, l, &x);
        t0 = now_usec(CLOCK_MONOTONIC);
        control(&e, "DELETE", "/objects/Lease/" NS "/nodereboot-0", NULL);
        ASSERT_TRUE(wait_lost(&e, &x, t0) < USEC_PER_SEC);
        ASSERT_STREQ(x.why, "its Lease was deleted");

        /* a tool removes the label: still ours, still watched by name; then taken */
        hold_and_watch(&e, l, &x);
        make_lease_full(&e, "nodereboot-0", "node-a", now_usec(CLOCK_REALTIME), 60, NULL, MACHINE_A);
        ASSERT_OK(kube_test_run_for(e.event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(x.calls, 0);
        t0 = now_usec(CLOCK_MONOTONIC);
        make_lease_full(&e, "nodereboot-0", "node-b", now_usec(CLOCK_REALTIME), 60, NULL, NULL);
        ASSERT_TRUE(wait_lost(&e, &x, t0) < USEC_PER_SEC);
        ASSERT_STREQ(x.why, "taken by node-b");

        /* released while the API was away and the server forgot where the watch was (410): the
         * watch lists again and sees it */
        hold_and_watch(&e, l, &x);
        control(&e, "POST", "/outage", "{\"seconds\": 1}");
        make_lease(&e, "nodereboot-0", "", now_usec(CLOCK_REALTIME), 60);
        flood_history(&e);
        t0 = now_usec(CLOCK_MONOTONIC);
        wait_lost(&e, &x, t0);
        ASSERT_STREQ(x.why, "released (no holder)");

        /* deleted while the API was away: the new list lacks it */
        hold_and_watch(&e, l, &x);
        control(&e, "POST", "/outage", "{\"seconds\": 1}");
        control(&e, "DELETE", "/objects/Lease/" NS "/nodereboot-0", NULL);
        flood_history(&e);
        t0 = now_usec(CLOCK_MONOTONIC);
        wait_lost(&e, &x, t0);
        ASSERT_TRUE(streq(x.why, "its Lease no longer exists") || streq(x.why, "its Lease was deleted"));

        /* unwatched: nothing more */
        hold_and_watch(&e, l, &x);
        lock_unwatch_held(l);
        force(&e, admin, "nodereboot-0", &f);
        ASSERT_OK(kube_test_run_for(e.event, 500 * USEC_PER_MSEC));
        ASSERT_EQ(x.calls, 0);

        ASSERT_ERROR(lock_watch_held(l, "other-0", on_lost, &x), EINVAL);
        ASSERT_ERROR(lock_watch_held(l, "nodereboot-0", NULL, &x), EINVAL);
        lost_clear(&x);
        free(f.holder);
        env_stop(&e);
}

TEST(server_renew_timeout) {
        /* User story (issue 6, item 5): a renewal that hangs does not outlive the margin the
         * holder set; it ends with -ETIMEDOUT, and the next one works. */
        Env e;
        Result r = {};
        usec_t t0, took;
        Lock *l;

        env_start(&e, NULL);
        make_node(&e, "node-a");
        l = env_node(&e, 0, "node-a", 1, USEC_PER_MINUTE);
        ASSERT_OK(lock_acquire(l, on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        result_clear(&r);

        ASSERT_ERROR(lock_set_renew_timeout(l, NULL, USEC_PER_SEC), EINVAL);
        ASSERT_OK(lock_set_renew_timeout(l, e.event, 300 * USEC_PER_MSEC));
        control(&e, "POST", "/faults",
                "[{\"match\":\"leases/nodereboot-0\",\"method\":\"GET\",\"action\":\"delay\",\"delay\":1.5,\"count\":1}]");
        t0 = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        took = now_usec(CLOCK_MONOTONIC) - t0;
        fprintf(stderr, "    renewal gave up after %.1f ms\n", (double) took / USEC_PER_MSEC);
        ASSERT_ERROR(r.error, ETIMEDOUT);
        ASSERT_TRUE(took >= 300 * USEC_PER_MSEC && took < 800 * USEC_PER_MSEC);
        result_clear(&r);

        ASSERT_OK(lock_renew(l, "nodereboot-0", on_result, &r));
        wait_result(&e, &r);
        ASSERT_OK(r.error);
        result_clear(&r);
        ASSERT_OK(lock_set_renew_timeout(l, NULL, 0));

        /* let the delayed request finish on the server before it goes */
        ASSERT_OK(kube_test_run_for(e.event, 1500 * USEC_PER_MSEC));
        env_stop(&e);
}

int main(void) {
        RUN(slot_missing_and_vacant);
        RUN(slot_expiry_boundaries);
        RUN(slot_expiry_uses_the_given_server_clock);
        RUN(slot_bad_fields_are_held);
        RUN(choose_slot);
        RUN(slot_names);
        RUN(ttl_seconds);
        RUN(build_take);
        RUN(build_renew_and_release);
        RUN(build_new);
        RUN(format_holders);
        RUN(index_and_find);
        RUN(slots_from_list);
        RUN(node_not_found);
        RUN(state_names);
        RUN(holder_is_idle);
        RUN(check_order);
        RUN(holder_renews_on_time);
        RUN(lease_owner);
        RUN(find_own_lease);
        RUN(labels_and_marks);
        RUN(already_exists);
        RUN(refusal_texts);

        if (!kube_test_server_available()) {
                fprintf(stderr, "test API server not available ($SOURCE_ROOT, /usr/bin/python3): "
                        "server tests NOT RUN\n");
                return 0;
        }
        RUN(server_two_slots_three_nodes);
        RUN(server_release_hands_off);
        RUN(server_takeover_expired_and_ghost);
        RUN(server_clock_is_the_servers);
        RUN(server_conflicts_are_retried);
        RUN(server_renew);
        RUN(server_lost_answer);
        RUN(server_watch_outlives_outages);
        RUN(server_free_cancels);
        RUN(server_list_and_force_release);
        RUN(server_stuck_holder_keeps_its_slot);
        RUN(server_unlabelled_slot);
        RUN(server_two_hosts_one_name);
        RUN(server_watch_held);
        RUN(server_renew_timeout);
        return 0;
}
