/* SPDX-License-Identifier: Apache-2.0 */
/* The lock queue's decisions without a server: ticket names and bodies, the order of tickets, a
 * node's place (slot holders out of line), whose turn it is, when the head is passed over. */
#include <limits.h>
#include <string.h>

#include "json-util.h"
#include "queue-internal.h"
#include "string-util.h"
#include "fixtures.h"
#include "tests.h"

TEST(ticket_names) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        char long_node[260];

        ASSERT_OK(queue_ticket_name("nodereboot", "node-a.example.com", &a));
        ASSERT_STREQ(a, "nodereboot-q-node-a.example.com");
        memset(long_node, 'a', sizeof long_node - 1);
        long_node[sizeof long_node - 1] = '\0';
        ASSERT_ERROR(queue_ticket_name("nodereboot", long_node, &b), ENAMETOOLONG);
        /* 253 characters fit, 254 do not */
        long_node[253 - strlen("nodereboot-q-")] = '\0';
        ASSERT_OK(queue_ticket_name("nodereboot", long_node, &b));
        ASSERT_EQ(strlen(b), 253u);
        long_node[253 - strlen("nodereboot-q-")] = 'a';
        long_node[254 - strlen("nodereboot-q-")] = '\0';
        ASSERT_ERROR(queue_ticket_name("nodereboot", long_node, &a), ENAMETOOLONG);
        ASSERT_ERROR(queue_ticket_name("", "n1", &a), EINVAL);
}

TEST(ticket_bodies) {
        _cleanup_json_ json_object *t = NULL, *read = NULL, *redated = NULL;
        QueueEntry e = {};

        ASSERT_OK(queue_build_ticket("nodereboot", "nodereboot", "nodereboot-q-n1", "n1",
                                     T("2026-12-05T04:00:01.250000Z"), &t));
        ASSERT_STREQ(json_get_string(t, "kind"), "Lease");
        ASSERT_STREQ(json_get_string(t, "metadata.name"), "nodereboot-q-n1");
        ASSERT_STREQ(json_get_string(t, "metadata.namespace"), "nodereboot");
        ASSERT_STREQ(json_object_get_string(json_get_member(json_get(t, "metadata.labels"), QUEUE_LABEL)),
                     "nodereboot");
        ASSERT_STREQ(json_get_string(t, "spec.holderIdentity"), "n1");
        ASSERT_STREQ(json_get_string(t, "spec.acquireTime"), "2026-12-05T04:00:01.250000Z");
        /* never renewed: waiting costs nothing, so no renewTime or duration */
        ASSERT_TRUE(!json_get(t, "spec.renewTime") && !json_get(t, "spec.leaseDurationSeconds"));

        read = J("{\"metadata\":{\"name\":\"nodereboot-q-n1\",\"uid\":\"u-1\",\"resourceVersion\":\"7\"},"
                 "\"spec\":{\"holderIdentity\":\"n1\",\"acquireTime\":\"2026-12-01T00:00:00.000000Z\"}}");
        ASSERT_OK(queue_entry_from_lease(read, &e));
        ASSERT_STREQ(e.name, "nodereboot-q-n1");
        ASSERT_STREQ(e.holder, "n1");
        ASSERT_STREQ(e.uid, "u-1");
        ASSERT_STREQ(e.resource_version, "7");
        ASSERT_EQ(e.since, T("2026-12-01T00:00:00Z"));
        queue_entry_done(&e);

        /* a re-date keeps the resourceVersion (the write's precondition) */
        ASSERT_OK(queue_build_redate(read, T("2026-12-05T04:00:01Z"), &redated));
        ASSERT_STREQ(json_get_string(redated, "metadata.resourceVersion"), "7");
        ASSERT_STREQ(json_get_string(redated, "spec.acquireTime"), "2026-12-05T04:00:01.000000Z");
        json_object_put(redated);
        redated = J("{\"metadata\":{\"name\":\"x\"}}");
        {
                json_object *o = NULL;
                ASSERT_ERROR(queue_build_redate(redated, 1, &o), EBADMSG);
        }
}

TEST(bad_tickets_go_last) {
        _cleanup_json_ json_object *a = J("{\"metadata\":{\"name\":\"q-a\"},\"spec\":{\"holderIdentity\":\"a\","
                                          "\"acquireTime\":\"garbage\"}}");
        _cleanup_json_ json_object *b = J("{\"metadata\":{\"name\":\"q-b\"},\"spec\":{\"holderIdentity\":\"b\","
                                          "\"acquireTime\":\"2030-01-01T00:00:00Z\"}}");
        _cleanup_json_ json_object *c = J("{\"metadata\":{},\"spec\":{}}");
        QueueEntry ea = {}, eb = {}, ec = {};

        ASSERT_OK(queue_entry_from_lease(a, &ea));
        ASSERT_OK(queue_entry_from_lease(b, &eb));
        ASSERT_EQ(ea.since, USEC_INFINITY);
        ASSERT_TRUE(queue_entry_compare(&eb, &ea) < 0);
        ASSERT_ERROR(queue_entry_from_lease(c, &ec), EINVAL);
        queue_entry_done(&ea);
        queue_entry_done(&eb);
}

static bool holds(const char *holder, void *userdata) {
        char **holders = userdata;

        return strv_contains(holders, holder);
}

static QueueEntry E(const char *holder, usec_t since) {
        return (QueueEntry) {
                .name = strdup_printf("nodereboot-q-%s", strempty(holder)),
                .holder = holder ? strdup(holder) : NULL,
                .since = since,
        };
}

TEST(place_in_line) {
        QueueEntry e[6];
        char *holding[] = { (char *) "d", NULL };
        QueueLine line;

        /* c asked first, then a and b at the same instant (by name), d holds a slot, e has no holder */
        e[0] = E("a", 2000);
        e[1] = E("b", 2000);
        e[2] = E("c", 1000);
        e[3] = E("d", 500);
        e[4] = E(NULL, 1);
        e[5] = E("f", 3000);

        queue_line_compute(e, 6, "b", holds, holding, &line);
        ASSERT_TRUE(line.own == e + 1);
        ASSERT_EQ(line.ahead, 2u);      /* c, a; not d (holds a slot), not the ticket without holder */
        ASSERT_EQ(line.total, 4u);      /* c, a, b, f */
        ASSERT_TRUE(line.head == e + 2);

        queue_line_compute(e, 6, "c", holds, holding, &line);
        ASSERT_EQ(line.ahead, 0u);
        ASSERT_TRUE(line.head == e + 0);        /* the first that is not ours */

        /* without the holder rule d would be first */
        queue_line_compute(e, 6, "c", NULL, NULL, &line);
        ASSERT_EQ(line.ahead, 1u);
        ASSERT_TRUE(line.head == e + 3);

        /* not in the tickets (not written yet, or not seen by the watch yet) */
        queue_line_compute(e, 6, "zz", holds, holding, &line);
        ASSERT_TRUE(!line.own);
        ASSERT_EQ(line.ahead, 0u);

        for (size_t i = 0; i < 6; i++)
                queue_entry_done(e + i);
}

TEST(turns) {
        ASSERT_TRUE(queue_is_turn(0));          /* the head looks even with every slot held */
        ASSERT_FALSE(queue_is_turn(1));         /* with slots free too: one at a time, in order */
        ASSERT_FALSE(queue_is_turn(7));
}

TEST(pass_over_delays) {
        const usec_t p = QUEUE_PASS_OVER_USEC;

        /* nothing free, or our turn: no pass-over */
        ASSERT_EQ(queue_pass_over_delay(3, 0, p), USEC_INFINITY);
        ASSERT_EQ(queue_pass_over_delay(0, 1, p), USEC_INFINITY);
        ASSERT_EQ(queue_pass_over_delay(5, UINT_MAX, p), USEC_INFINITY);
        /* a slot free: the second in line waits one period, the third two, ... */
        ASSERT_EQ(queue_pass_over_delay(1, 1, p), p);
        ASSERT_EQ(queue_pass_over_delay(2, 1, p), 2 * p);
        /* within the first (free slots) places: one period, so that a front of stopped heads
         * costs one period each */
        ASSERT_EQ(queue_pass_over_delay(1, 3, p), p);
        ASSERT_EQ(queue_pass_over_delay(2, 3, p), p);
        ASSERT_EQ(queue_pass_over_delay(2, 2, p), p);
        ASSERT_EQ(queue_pass_over_delay(4, 2, p), 3 * p);
}

TEST(verdict_names) {
        ASSERT_STREQ(queue_verdict_to_string(QUEUE_TURN), "turn");
        ASSERT_STREQ(queue_verdict_to_string(QUEUE_OFF), "off");
        ASSERT_TRUE(!queue_verdict_to_string(_QUEUE_VERDICT_MAX));
}

int main(void) {
        RUN(ticket_names);
        RUN(ticket_bodies);
        RUN(bad_tickets_go_last);
        RUN(place_in_line);
        RUN(turns);
        RUN(pass_over_delays);
        RUN(verdict_names);
        return 0;
}
