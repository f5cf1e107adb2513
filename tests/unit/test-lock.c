/* SPDX-License-Identifier: Apache-2.0 */
/* The lock's decisions without a server: when a slot is free (by the API server's clock, never the
 * node's), which slot to take, what the writes carry, what "held by" says. The behaviour against
 * the test API server is in test-lock-server.c. */
#include <string.h>

#include "json-util.h"
#include "lock-internal.h"
#include "string-util.h"
#include "tests.h"

static usec_t T(const char *s) {
        usec_t t;

        ASSERT_OK(parse_rfc3339(s, &t));
        return t;
}

static json_object *J(const char *text) {
        json_object *o;

        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

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

TEST(state_names) {
        ASSERT_STREQ(lock_slot_state_to_string(LOCK_SLOT_EXPIRED), "expired");
        ASSERT_TRUE(lock_slot_state_to_string(_LOCK_SLOT_STATE_MAX) == NULL);
        ASSERT_TRUE(lock_slot_state_to_string(_LOCK_SLOT_STATE_INVALID) == NULL);
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
        RUN(state_names);
        return 0;
}
