/* SPDX-License-Identifier: Apache-2.0 */
#include "time-util.h"
#include "tests.h"

#define MIN_ USEC_PER_MINUTE

TEST(elapsed_clock_ignores_steps_of_the_wall_clock) {
        ElapsedClock c = {};
        usec_t wall = 1800000000ULL * USEC_PER_SEC, mono = 5 * USEC_PER_HOUR, since = wall - 5 * MIN_;

        ASSERT_EQ(elapsed_clock_get(&c, since, wall, mono), 5 * MIN_);
        /* ten minutes later, the wall clock stepped an hour back, then an hour forward */
        ASSERT_EQ(elapsed_clock_get(&c, since, wall + 10 * MIN_ - USEC_PER_HOUR, mono + 10 * MIN_), 15 * MIN_);
        ASSERT_EQ(elapsed_clock_get(&c, since, wall + 11 * MIN_ + USEC_PER_HOUR, mono + 11 * MIN_), 16 * MIN_);
        /* a new instant (a new phase) is read afresh */
        ASSERT_EQ(elapsed_clock_get(&c, wall + 20 * MIN_, wall + 21 * MIN_, mono + 21 * MIN_), 1 * MIN_);
}

TEST(elapsed_clock_counts_from_before_this_boot) {
        /* The phase began 30 minutes ago, before the machine's last boot: the monotonic clock has
         * run 20 s. Found by review: an anchor kept as a monotonic instant was cut to the uptime,
         * and the ten-minute kubelet warning never came for a node whose new kernel reboots it. */
        ElapsedClock c = {};
        usec_t wall = 1800000000ULL * USEC_PER_SEC, mono = 20 * USEC_PER_SEC;

        ASSERT_EQ(elapsed_clock_get(&c, wall - 30 * MIN_, wall, mono), 30 * MIN_);
        ASSERT_EQ(elapsed_clock_get(&c, wall - 30 * MIN_, wall + MIN_, mono + MIN_), 31 * MIN_);
}

TEST(elapsed_clock_from_a_future_instant) {
        /* The wall clock was stepped back after the instant was written: nothing has elapsed yet,
         * then the count goes on from there; the zeroed structure reads at its first use. */
        ElapsedClock c = {};
        usec_t wall = 1800000000ULL * USEC_PER_SEC, mono = 0;

        ASSERT_EQ(elapsed_clock_get(&c, wall + USEC_PER_HOUR, wall, mono), 0);
        ASSERT_EQ(elapsed_clock_get(&c, wall + USEC_PER_HOUR, wall + 2 * MIN_, mono + 2 * MIN_), 2 * MIN_);
        c = (ElapsedClock) {};
        ASSERT_EQ(elapsed_clock_get(&c, 0, wall, mono), wall);
}

int main(void) {
        RUN(elapsed_clock_ignores_steps_of_the_wall_clock);
        RUN(elapsed_clock_counts_from_before_this_boot);
        RUN(elapsed_clock_from_a_future_instant);
        return 0;
}
