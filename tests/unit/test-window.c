/* SPDX-License-Identifier: Apache-2.0 */
/* The maintenance window: every day and time form kured accepts; windows that wrap past midnight
 * or last the whole day; the days around daylight saving changes in Europe/Berlin and
 * America/New_York, for both "is it open now" and "when does it open next"; invalid input with
 * messages that name the setting and the expected form; a window with no days never opens. */

#include <string.h>
#include <time.h>

#include "macro.h"
#include "string-util.h"
#include "tests.h"
#include "window.h"

static usec_t at(const char *rfc3339) {
        usec_t t;

        if (parse_rfc3339(rfc3339, &t) < 0) {
                fprintf(stderr, "bad test time %s\n", rfc3339);
                abort();
        }
        return t;
}

static Window *make(const char *days, const char *start, const char *end, const char *tz) {
        Window *w = NULL;
        char *error = NULL;
        int r;

        r = window_new(&w, days, start, end, tz, &error);
        if (r < 0) {
                fprintf(stderr, "window_new(\"%s\", \"%s\", \"%s\", \"%s\"): %s: %s\n", days, start, end, tz,
                        strerror(-r), strna(error));
                abort();
        }
        ASSERT_TRUE(!error);
        ASSERT_TRUE(w);
        return w;
}

static void check_in_at(const Window *w, usec_t t, bool expected, const char *what, int line) {
        if (window_contains(w, t) != expected) {
                _cleanup_free_ char *d = window_describe(w);
                fprintf(stderr, "line %d: window %s %s %s, expected %s\n", line, strna(d),
                        expected ? "does not contain" : "contains", what, expected ? "inside" : "outside");
                abort();
        }
}
#define check_in(w, time, expected) check_in_at(w, at(time), expected, time, __LINE__)

static void check_next_at(const Window *w, usec_t from, const char *from_text, const char *expected, int line) {
        usec_t n = window_next_open(w, from), e = expected ? at(expected) : USEC_INFINITY;

        if (n != e) {
                _cleanup_free_ char *d = window_describe(w);
                char buf[FORMAT_RFC3339_MAX];
                fprintf(stderr, "line %d: window %s opens next after %s at %s, expected %s\n", line, strna(d),
                        from_text, n == USEC_INFINITY ? "never" : format_rfc3339(buf, sizeof buf, n, true),
                        strna(expected));
                abort();
        }
}
#define check_next(w, from, expected) check_next_at(w, at(from), from, expected, __LINE__)

static void check_describe(const Window *w, const char *expected) {
        _cleanup_free_ char *d = window_describe(w);
        ASSERT_STREQ(d, expected);
}

/* Which weekdays a day list selects, as a bit mask (bit 0 = Sunday): noon of each day of the week
 * 2026-11-22 (a Sunday) … 2026-11-28 in a whole-day window. */
static unsigned day_mask(const char *days) {
        _cleanup_(window_freep) Window *w = make(days, "00:00", "00:00", "UTC");
        unsigned mask = 0;

        for (unsigned d = 0; d < 7; d++)
                if (window_contains(w, at("2026-11-22T12:00:00Z") + d * USEC_PER_DAY))
                        mask |= 1U << d;
        return mask;
}

#define SU 0x01U
#define MO 0x02U
#define TU 0x04U
#define WE 0x08U
#define TH 0x10U
#define FR 0x20U
#define SA 0x40U

TEST(days_every_form) {
        static const char *const names[7][4] = {
                { "su", "sun", "sunday", "0" },
                { "mo", "mon", "monday", "1" },
                { "tu", "tue", "tuesday", "2" },
                { "we", "wed", "wednesday", "3" },
                { "th", "thu", "thursday", "4" },
                { "fr", "fri", "friday", "5" },
                { "sa", "sat", "saturday", "6" },
        };
        static const struct {
                const char *days;
                unsigned mask;
        } lists[] = {
                { "su,mo,tu,we,th,fr,sa", 0x7f },               /* kured's default */
                { "sun,mon,tue,wed,thu,fri,sat", 0x7f },
                { "sunday,monday,tuesday,wednesday,thursday,friday,saturday", 0x7f },
                { "0,1,2,3,4,5,6", 0x7f },
                { "MON,Tue,wEdNeSdAy", MO | TU | WE },
                { "SU,Sa", SU | SA },
                { "mon-fri", MO | TU | WE | TH | FR },
                { "1-5", MO | TU | WE | TH | FR },
                { "Monday-Friday", MO | TU | WE | TH | FR },
                { "fri-mon", FR | SA | SU | MO },                /* wraps past Saturday */
                { "5-1", FR | SA | SU | MO },
                { "sat-sun", SA | SU },
                { "6-0", SA | SU },
                { "sun-sat", 0x7f },
                { "mon-sun", 0x7f },
                { "0-6", 0x7f },
                { "we-we", WE },
                { " mon , wed - fri ", MO | WE | TH | FR },
                { "mo,mo,monday,1", MO },
                { "tu,th-fr,0", TU | TH | FR | SU },
        };

        for (unsigned d = 0; d < 7; d++)
                for (unsigned i = 0; i < 4; i++) {
                        if (day_mask(names[d][i]) != 1U << d)
                                fprintf(stderr, "%s: %#x\n", names[d][i], day_mask(names[d][i]));
                        ASSERT_EQ(day_mask(names[d][i]), 1U << d);
                }
        for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                if (day_mask(lists[i].days) != lists[i].mask)
                        fprintf(stderr, "%s: %#x, expected %#x\n", lists[i].days, day_mask(lists[i].days),
                                lists[i].mask);
                ASSERT_EQ(day_mask(lists[i].days), lists[i].mask);
        }
}

TEST(times_every_form) {
        static const struct {
                const char *text;
                unsigned seconds;
        } times[] = {
                { "15:04", 15 * 3600 + 4 * 60 },                /* kured's layouts */
                { "15:04:05", 15 * 3600 + 4 * 60 + 5 },
                { "03:04pm", 15 * 3600 + 4 * 60 },
                { "15", 15 * 3600 },
                { "03pm", 15 * 3600 },
                { "3pm", 15 * 3600 },
                { "3:30am", 3 * 3600 + 30 * 60 },               /* and friends */
                { "03:04PM", 15 * 3600 + 4 * 60 },
                { "3:04Pm", 15 * 3600 + 4 * 60 },
                { "3 pm", 15 * 3600 },
                { "3:30:15 am", 3 * 3600 + 30 * 60 + 15 },
                { "2:00", 2 * 3600 },
                { "02:00", 2 * 3600 },
                { "02:00:30", 2 * 3600 + 30 },
                { "0:00", 0 },
                { "0", 0 },
                { "00", 0 },
                { "7", 7 * 3600 },
                { "9am", 9 * 3600 },
                { "12am", 0 },                                  /* midnight */
                { "12:30am", 30 * 60 },
                { "12pm", 12 * 3600 },                          /* noon */
                { "12:59:59pm", 12 * 3600 + 59 * 60 + 59 },
                { "11pm", 23 * 3600 },
                { "23:59:59", 86399 },
        };
        usec_t monday = at("2026-11-23T00:00:00Z");

        for (size_t i = 0; i < ELEMENTSOF(times); i++) {
                usec_t t = monday + times[i].seconds * USEC_PER_SEC;

                /* As a start: open from that second on. */
                if (times[i].seconds < 86399) {
                        _cleanup_(window_freep) Window *w = make("mon", times[i].text, "23:59:59", "UTC");

                        ASSERT_TRUE(window_contains(w, t));
                        if (times[i].seconds > 0)
                                ASSERT_FALSE(window_contains(w, t - 1));
                        ASSERT_TRUE(window_next_open(w, monday) == t);
                }
                /* As an end: open until just before that second. */
                if (times[i].seconds > 0) {
                        _cleanup_(window_freep) Window *w = make("mon", "0:00", times[i].text, "UTC");

                        ASSERT_TRUE(window_contains(w, t - 1));
                        ASSERT_FALSE(window_contains(w, t));
                }
        }
}

TEST(kured_default_window) {
        _cleanup_(window_freep) Window *w = make("su,mo,tu,we,th,fr,sa", "0:00", "23:59:59", "UTC");

        check_describe(w, "every day 00:00-23:59:59 UTC");
        check_in(w, "2026-11-27T00:00:00Z", true);
        check_in(w, "2026-11-27T12:00:00Z", true);
        check_in(w, "2026-11-27T23:59:58Z", true);
        /* kured's end is exclusive too: the last second of the day is outside. */
        check_in(w, "2026-11-27T23:59:59Z", false);
        check_next(w, "2026-11-27T23:59:59.5Z", "2026-11-28T00:00:00Z");
}

TEST(plain_window) {
        _cleanup_(window_freep) Window *w = make("mon-fri", "2:00", "5am", "UTC");

        check_describe(w, "mon-fri 02:00-05:00 UTC");
        check_in(w, "2026-11-27T01:59:59.999999Z", false);      /* Friday */
        check_in(w, "2026-11-27T02:00:00Z", true);
        check_in(w, "2026-11-27T04:59:59.999999Z", true);
        check_in(w, "2026-11-27T05:00:00Z", false);
        check_in(w, "2026-11-28T03:00:00Z", false);             /* Saturday */

        /* Inside: now, to the microsecond. */
        check_next(w, "2026-11-27T03:00:00.123456Z", "2026-11-27T03:00:00.123456Z");
        check_next(w, "2026-11-27T02:00:00Z", "2026-11-27T02:00:00Z");
        /* Before it, after it, over the weekend. */
        check_next(w, "2026-11-27T00:00:00Z", "2026-11-27T02:00:00Z");
        check_next(w, "2026-11-27T05:00:00Z", "2026-11-30T02:00:00Z");
        check_next(w, "2026-11-28T12:00:00Z", "2026-11-30T02:00:00Z");
        check_next(w, "2026-11-26T23:59:59Z", "2026-11-27T02:00:00Z");
}

TEST(weekly_window) {
        _cleanup_(window_freep) Window *w = make("wed", "10:00", "10:01", "UTC");

        check_next(w, "2026-11-25T10:01:00Z", "2026-12-02T10:00:00Z");
        check_next(w, "2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
        check_in(w, "2026-11-25T10:00:59Z", true);
        check_in(w, "2026-12-02T10:00:30Z", true);
        check_in(w, "2026-12-01T10:00:30Z", false);
}

TEST(wrap_past_midnight) {
        /* The day list names the day the window opens: Friday 22:00 to Saturday 04:00. */
        _cleanup_(window_freep) Window *w = make("fri", "22:00", "04:00", "UTC");

        check_describe(w, "fri 22:00-04:00 (next day) UTC");
        check_in(w, "2026-11-27T21:59:59Z", false);             /* Friday */
        check_in(w, "2026-11-27T22:00:00Z", true);
        check_in(w, "2026-11-27T23:59:59Z", true);
        check_in(w, "2026-11-28T00:00:00Z", true);              /* Saturday */
        check_in(w, "2026-11-28T03:59:59Z", true);
        check_in(w, "2026-11-28T04:00:00Z", false);
        check_in(w, "2026-11-28T22:30:00Z", false);             /* Saturday is not listed */
        check_in(w, "2026-11-27T02:00:00Z", false);             /* that would be Thursday's window */
        check_next(w, "2026-11-28T02:00:00Z", "2026-11-28T02:00:00Z");
        check_next(w, "2026-11-28T04:00:00Z", "2026-12-04T22:00:00Z");
        check_next(w, "2026-11-27T02:00:00Z", "2026-11-27T22:00:00Z");

        /* Across the end of the week: Saturday night into Sunday. */
        {
                _cleanup_(window_freep) Window *s = make("sa", "11pm", "1am", "UTC");

                check_in(s, "2026-11-29T00:30:00Z", true);      /* Sunday */
                check_in(s, "2026-11-29T23:30:00Z", false);
                check_next(s, "2026-11-29T01:00:00Z", "2026-12-05T23:00:00Z");
        }
}

TEST(whole_day) {
        _cleanup_(window_freep) Window *w = make("mon", "00:00", "00:00", "UTC");
        _cleanup_(window_freep) Window *v = make("mon", "02:00", "02:00", "UTC");

        check_describe(w, "mon all day UTC");
        check_in(w, "2026-11-22T23:59:59Z", false);             /* Sunday */
        check_in(w, "2026-11-23T00:00:00Z", true);              /* Monday */
        check_in(w, "2026-11-23T12:00:00Z", true);
        check_in(w, "2026-11-23T23:59:59.999999Z", true);
        check_in(w, "2026-11-24T00:00:00Z", false);
        check_next(w, "2026-11-24T00:00:00Z", "2026-11-30T00:00:00Z");

        /* Equal times not at midnight: 24 hours from the start. */
        check_describe(v, "mon 02:00 for 24h UTC");
        check_in(v, "2026-11-23T01:59:59Z", false);
        check_in(v, "2026-11-23T02:00:00Z", true);
        check_in(v, "2026-11-24T01:59:59Z", true);
        check_in(v, "2026-11-24T02:00:00Z", false);

        /* Every day, all day: always open. */
        {
                _cleanup_(window_freep) Window *a = make("0-6", "0", "0", "UTC");

                check_describe(a, "every day all day UTC");
                for (usec_t t = at("2026-11-22T00:00:00Z"); t < at("2026-12-01T00:00:00Z"); t += 17 * USEC_PER_MINUTE + 1)
                        ASSERT_TRUE(window_contains(a, t));
        }
}

TEST(berlin_spring_forward) {
        /* 2026-03-29 (a Sunday), 01:00Z: the clock jumps from 02:00 CET to 03:00 CEST. */
        _cleanup_(window_freep) Window *around = make("sun", "01:00", "04:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *inside = make("sun", "02:00", "03:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *starts_in_gap = make("sun", "02:30", "05:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *daily = make("mo-su", "03:00", "04:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *night = make("sat", "22:00", "04:00", "Europe/Berlin");

        /* 01:00 CET is 00:00Z; 04:00 CEST is 02:00Z: three hours on the clock, two in fact. */
        check_describe(around, "sun 01:00-04:00 Europe/Berlin");
        check_in(around, "2026-03-28T23:59:59Z", false);
        check_in(around, "2026-03-29T00:00:00Z", true);
        check_in(around, "2026-03-29T00:59:59Z", true);
        check_in(around, "2026-03-29T01:00:00Z", true);
        check_in(around, "2026-03-29T01:59:59Z", true);
        check_in(around, "2026-03-29T02:00:00Z", false);
        check_next(around, "2026-03-28T12:00:00Z", "2026-03-29T00:00:00Z");
        /* A week later, summer time: 01:00 CEST is 23:00Z the day before. */
        check_next(around, "2026-03-29T02:00:00Z", "2026-04-04T23:00:00Z");

        /* Entirely in the skipped hour: does not open that day, but the week after. */
        check_in(inside, "2026-03-29T00:59:59Z", false);
        check_in(inside, "2026-03-29T01:00:00Z", false);
        check_in(inside, "2026-03-29T01:30:00Z", false);
        check_next(inside, "2026-03-28T12:00:00Z", "2026-04-05T00:00:00Z");
        check_next(inside, "2026-03-22T00:00:00Z", "2026-03-22T01:00:00Z");   /* 02:00 CET the week before */

        /* Starting in the skipped hour: opens when the clock jumps. */
        check_in(starts_in_gap, "2026-03-29T00:59:59Z", false);
        check_in(starts_in_gap, "2026-03-29T01:00:00Z", true);
        check_in(starts_in_gap, "2026-03-29T02:59:59Z", true);
        check_in(starts_in_gap, "2026-03-29T03:00:00Z", false);
        check_next(starts_in_gap, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z");

        /* Every day at 03:00: 02:00Z in winter, 01:00Z from the change on. */
        check_next(daily, "2026-03-27T12:00:00Z", "2026-03-28T02:00:00Z");
        check_next(daily, "2026-03-28T03:00:00Z", "2026-03-29T01:00:00Z");
        check_next(daily, "2026-03-29T02:00:00Z", "2026-03-30T01:00:00Z");
        check_in(daily, "2026-03-29T01:59:59Z", true);
        check_in(daily, "2026-03-29T02:00:00Z", false);
        check_in(daily, "2026-03-28T02:30:00Z", true);
        check_in(daily, "2026-03-30T01:30:00Z", true);
        check_in(daily, "2026-03-30T02:30:00Z", false);

        /* Overnight across the change: Saturday 22:00 CET (21:00Z) to Sunday 04:00 CEST (02:00Z). */
        check_in(night, "2026-03-28T20:59:59Z", false);
        check_in(night, "2026-03-28T21:00:00Z", true);
        check_in(night, "2026-03-29T01:59:59Z", true);
        check_in(night, "2026-03-29T02:00:00Z", false);
}

TEST(berlin_fall_back) {
        /* 2026-10-25 (a Sunday), 01:00Z: the clock goes back from 03:00 CEST to 02:00 CET, so
         * 02:00-03:00 happens twice (00:00Z-01:00Z and 01:00Z-02:00Z). */
        _cleanup_(window_freep) Window *hour = make("sun", "02:00", "03:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *half = make("sun", "02:00", "02:30", "Europe/Berlin");
        _cleanup_(window_freep) Window *late = make("sun", "02:30", "04:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *daily = make("0-6", "02:30", "03:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *night = make("sat", "22:00", "04:00", "Europe/Berlin");
        _cleanup_(window_freep) Window *day = make("sun", "00:00", "00:00", "Europe/Berlin");

        /* Opens at the first 02:00 and closes when the clock first reads 03:00: both passes. */
        check_in(hour, "2026-10-24T23:59:59Z", false);
        check_in(hour, "2026-10-25T00:00:00Z", true);
        check_in(hour, "2026-10-25T00:59:59Z", true);
        check_in(hour, "2026-10-25T01:30:00Z", true);
        check_in(hour, "2026-10-25T01:59:59Z", true);
        check_in(hour, "2026-10-25T02:00:00Z", false);
        check_next(hour, "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z");
        /* The week after, winter time: 02:00 CET is 01:00Z. */
        check_next(hour, "2026-10-25T02:00:00Z", "2026-11-01T01:00:00Z");

        /* An end inside the repeated hour closes at its first pass; the window opens once. */
        check_in(half, "2026-10-25T00:29:59Z", true);
        check_in(half, "2026-10-25T00:30:00Z", false);
        check_in(half, "2026-10-25T01:00:00Z", false);
        check_in(half, "2026-10-25T01:15:00Z", false);
        check_next(half, "2026-10-25T00:30:00Z", "2026-11-01T01:00:00Z");

        check_next(late, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z");
        check_in(late, "2026-10-25T02:59:59Z", true);          /* 03:59:59 CET */
        check_in(late, "2026-10-25T03:00:00Z", false);

        check_next(daily, "2026-10-25T00:45:00Z", "2026-10-25T00:45:00Z");
        check_next(daily, "2026-10-25T02:00:00Z", "2026-10-26T01:30:00Z");
        check_next(daily, "2026-10-24T01:00:00Z", "2026-10-25T00:30:00Z");

        /* Overnight: Saturday 22:00 CEST (20:00Z) to Sunday 04:00 CET (03:00Z), seven hours. */
        check_in(night, "2026-10-24T19:59:59Z", false);
        check_in(night, "2026-10-24T20:00:00Z", true);
        check_in(night, "2026-10-25T02:59:59Z", true);
        check_in(night, "2026-10-25T03:00:00Z", false);

        /* The whole Sunday lasts 25 hours: 00:00 CEST (22:00Z Saturday) to 00:00 CET (23:00Z). */
        check_in(day, "2026-10-24T21:59:59Z", false);
        check_in(day, "2026-10-24T22:00:00Z", true);
        check_in(day, "2026-10-25T22:59:59Z", true);
        check_in(day, "2026-10-25T23:00:00Z", false);
}

TEST(new_york) {
        /* kured's own example: weekdays 9am-5pm. 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00Z;
         * 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00Z. */
        _cleanup_(window_freep) Window *office = make("mon,tue,wed,thu,fri", "9am", "5pm", "America/New_York");
        _cleanup_(window_freep) Window *gap = make("sun", "2:30am", "3:30am", "America/New_York");
        _cleanup_(window_freep) Window *night = make("sat", "22:00", "04:00", "America/New_York");

        check_describe(office, "mon-fri 09:00-17:00 America/New_York");
        check_in(office, "2026-03-06T13:59:59Z", false);       /* Friday, EST */
        check_in(office, "2026-03-06T14:00:00Z", true);
        check_in(office, "2026-03-06T21:59:59Z", true);
        check_in(office, "2026-03-06T22:00:00Z", false);
        check_in(office, "2026-03-07T15:00:00Z", false);       /* Saturday */
        check_in(office, "2026-03-09T12:59:59Z", false);       /* Monday, EDT */
        check_in(office, "2026-03-09T13:00:00Z", true);
        check_in(office, "2026-03-09T20:59:59Z", true);
        check_in(office, "2026-03-09T21:00:00Z", false);
        check_next(office, "2026-03-06T22:00:00Z", "2026-03-09T13:00:00Z");
        check_next(office, "2026-10-30T21:00:00Z", "2026-11-02T14:00:00Z");

        check_in(gap, "2026-03-08T06:59:59Z", false);
        check_in(gap, "2026-03-08T07:00:00Z", true);
        check_in(gap, "2026-03-08T07:29:59Z", true);
        check_in(gap, "2026-03-08T07:30:00Z", false);
        check_next(gap, "2026-03-08T00:00:00Z", "2026-03-08T07:00:00Z");

        /* Saturday 22:00 EDT (02:00Z Sunday) to Sunday 04:00 EST (09:00Z): seven hours. */
        check_in(night, "2026-11-01T01:59:59Z", false);
        check_in(night, "2026-11-01T02:00:00Z", true);
        check_in(night, "2026-11-01T05:30:00Z", true);          /* 01:30 EDT */
        check_in(night, "2026-11-01T06:30:00Z", true);          /* 01:30 EST */
        check_in(night, "2026-11-01T08:59:59Z", true);
        check_in(night, "2026-11-01T09:00:00Z", false);
        check_next(night, "2026-11-01T09:00:00Z", "2026-11-08T03:00:00Z");
}

/* contains() and next_open() agree everywhere: from any moment, the next opening is inside the
 * window, nothing before it is, and it stays the answer until it is reached. */
static void check_consistent(const Window *w, usec_t from, usec_t until, usec_t step) {
        usec_t expected = USEC_INFINITY;

        for (usec_t t = from; t < until; t += step) {
                usec_t n = window_next_open(w, t);
                bool in = window_contains(w, t);

                ASSERT_TRUE(n != USEC_INFINITY);
                ASSERT_TRUE(n >= t);
                ASSERT_TRUE(window_contains(w, n));
                ASSERT_EQ(in, n == t);
                if (!in && expected != USEC_INFINITY && t < expected)
                        ASSERT_TRUE(n == expected);
                expected = in ? USEC_INFINITY : n;
        }
}

TEST(contains_and_next_open_agree) {
        static const struct {
                const char *days, *start, *end, *tz;
        } windows[] = {
                { "sun", "01:00", "04:00", "Europe/Berlin" },
                { "sun", "02:00", "03:00", "Europe/Berlin" },
                { "sun", "02:30", "02:45", "Europe/Berlin" },
                { "0-6", "02:30", "03:00", "Europe/Berlin" },
                { "sat,sun", "22:00", "02:30", "Europe/Berlin" },
                { "sun", "00:00", "00:00", "Europe/Berlin" },
                { "mon-fri", "9am", "5pm", "America/New_York" },
                { "sat-mon", "1:30am", "1:45am", "America/New_York" },
                { "fri", "23:00", "01:00", "UTC" },
        };

        for (size_t i = 0; i < ELEMENTSOF(windows); i++) {
                _cleanup_(window_freep) Window *w = make(windows[i].days, windows[i].start, windows[i].end,
                                                         windows[i].tz);

                /* Each evaluation switches $TZ twice, which re-reads the zone file: keep the
                 * sample count moderate, with a step that drifts through all times of day. */
                check_consistent(w, at("2026-03-05T00:00:00Z"), at("2026-04-02T00:00:00Z"),
                                 37 * USEC_PER_MINUTE + 13 * USEC_PER_SEC);
                check_consistent(w, at("2026-10-22T00:00:00Z"), at("2026-11-05T00:00:00Z"),
                                 37 * USEC_PER_MINUTE + 13 * USEC_PER_SEC);
        }
}

TEST(local_follows_tz) {
        const char *saved = getenv("TZ");
        _cleanup_free_ char *copy = saved ? strdup(saved) : NULL;
        _cleanup_(window_freep) Window *w = make("mon-fri", "9am", "5pm", "Local");

        /* "Local" is the process's own zone: $TZ when set, as for Go's time.Local. */
        check_describe(w, "mon-fri 09:00-17:00 Local");
        ASSERT_OK(setenv("TZ", "America/New_York", 1));
        check_in(w, "2026-03-06T14:00:00Z", true);
        check_in(w, "2026-03-06T13:59:59Z", false);
        ASSERT_OK(setenv("TZ", "Asia/Tokyo", 1));
        check_in(w, "2026-03-06T00:00:00Z", true);              /* 09:00 JST */
        check_in(w, "2026-03-06T14:00:00Z", false);
        check_next(w, "2026-03-06T14:00:00Z", "2026-03-09T00:00:00Z");
        ASSERT_STREQ(getenv("TZ"), "Asia/Tokyo");

        if (copy)
                ASSERT_OK(setenv("TZ", copy, 1));
        else
                ASSERT_OK(unsetenv("TZ"));
        tzset();
}

TEST(tz_restored) {
        _cleanup_(window_freep) Window *w = make("mon-fri", "9am", "5pm", "Europe/Berlin");
        _cleanup_(window_freep) Window *u = make("mon-fri", "9am", "5pm", "utc");
        const char *saved = getenv("TZ");
        _cleanup_free_ char *copy = saved ? strdup(saved) : NULL;
        time_t t = 1764237723;  /* 2026-11-27T10:02:03Z */
        struct tm tm;

        ASSERT_OK(setenv("TZ", "Asia/Tokyo", 1));
        tzset();
        ASSERT_TRUE(window_contains(w, (usec_t) t * USEC_PER_SEC));
        ASSERT_TRUE(window_next_open(u, (usec_t) t * USEC_PER_SEC) == (usec_t) t * USEC_PER_SEC);
        ASSERT_STREQ(getenv("TZ"), "Asia/Tokyo");
        ASSERT_TRUE(localtime_r(&t, &tm));
        ASSERT_EQ(tm.tm_gmtoff, 9 * 3600);
        ASSERT_EQ(tm.tm_hour, 19);

        ASSERT_OK(unsetenv("TZ"));
        tzset();
        ASSERT_TRUE(window_contains(w, (usec_t) t * USEC_PER_SEC));
        ASSERT_TRUE(!getenv("TZ"));

        if (copy)
                ASSERT_OK(setenv("TZ", copy, 1));
        tzset();
}

TEST(time_zones_accepted) {
        static const char *const zones[] = {
                "UTC", "utc", "Local", "local", "Etc/UTC", "Etc/GMT+5", "US/Eastern",
                "America/Argentina/Buenos_Aires", "Europe/Berlin", "Asia/Kolkata",
        };

        for (size_t i = 0; i < ELEMENTSOF(zones); i++) {
                _cleanup_(window_freep) Window *w = make("mon", "0:00", "1:00", zones[i]);
                ASSERT_TRUE(w);
        }

        /* A half-hour offset: 02:00 IST is 20:30Z the day before. */
        {
                _cleanup_(window_freep) Window *w = make("tue", "02:00", "03:00", "Asia/Kolkata");
                check_next(w, "2026-11-23T12:00:00Z", "2026-11-23T20:30:00Z");
        }
        /* Etc/GMT+5 is five hours *behind* UTC (POSIX sign). */
        {
                _cleanup_(window_freep) Window *w = make("mon", "00:00", "01:00", "Etc/GMT+5");
                check_in(w, "2026-11-23T05:30:00Z", true);
        }
}

static void check_invalid(const char *days, const char *start, const char *end, const char *tz, const char *expected) {
        _cleanup_free_ char *error = NULL;
        Window *w = NULL;

        ASSERT_ERROR(window_new(&w, days, start, end, tz, &error), EINVAL);
        ASSERT_TRUE(!w);
        ASSERT_TRUE(error);
        if (!strstr(error, expected)) {
                fprintf(stderr, "error \"%s\" does not contain \"%s\"\n", error, expected);
                abort();
        }
        /* Without an error pointer, just the error. */
        ASSERT_ERROR(window_new(&w, days, start, end, tz, NULL), EINVAL);
        ASSERT_TRUE(!w);
}

TEST(invalid_input) {
        static const char *const bad_days[] = {
                "funday", "mon-", "-mon", "-", "7", "10", "-1", "m", "mond", "mon,,tue", ",", "mon,",
                "mon;tue", "mon tue", "mon-fri-sat", "monday-", "0x1",
        };
        static const char *const bad_times[] = {
                "25:00", "24:00", "12:60", "12:00:60", "13pm", "0am", "00pm", "", " ", "abc", "1:2",
                "12:5", "15:04:5", "3pmx", "3 pm ", " 3pm", "3  pm", "-1", "+3", "1:00:00:00", "3p",
                "123", "2:00 ", "noon", "3:00 p.m.",
        };
        static const char *const bad_zones[] = {
                "", "../etc/passwd", "/etc/localtime", "/usr/share/zoneinfo/UTC", "Europe/../Europe/Berlin",
                "./UTC", "Europe//Berlin", "Europe/Berlin/", "Europe/Berlin ", "Europe\\Berlin",
                "Europe/Berlin\n", "Mars/Olympus_Mons", "Europe", "zone.tab", "Europe/berlin",
        };

        /* The message names the setting, the value and the expected form. */
        {
                _cleanup_free_ char *error = NULL;
                Window *w = NULL;

                ASSERT_ERROR(window_new(&w, "mon", "25:00", "04:00", "UTC", &error), EINVAL);
                ASSERT_STREQ(error, "StartTime=\"25:00\": expected a time of day like 02:00, 14:30:00 or 3pm");
        }
        check_invalid("mon", "2:00", "3:00 p.m.", "UTC",
                      "EndTime=\"3:00 p.m.\": expected a time of day like 02:00, 14:30:00 or 3pm");
        check_invalid("mon,funday", "2:00", "3:00", "UTC",
                      "Days=\"mon,funday\": \"funday\" is not a day or range; expected");
        check_invalid("mon - fry", "2:00", "3:00", "UTC", "\"mon - fry\" is not a day or range");
        check_invalid("mon", "2:00", "3:00", "Mars/Olympus_Mons",
                      "TimeZone=\"Mars/Olympus_Mons\": no such time zone in /usr/share/zoneinfo");
        check_invalid("mon", "2:00", "3:00", "../etc/passwd",
                      "TimeZone=\"../etc/passwd\": expected an IANA time zone name like Europe/Berlin, UTC or Local");

        for (size_t i = 0; i < ELEMENTSOF(bad_days); i++)
                check_invalid(bad_days[i], "2:00", "3:00", "UTC", "Days=\"");
        for (size_t i = 0; i < ELEMENTSOF(bad_times); i++) {
                check_invalid("mon", bad_times[i], "3:00", "UTC", "StartTime=\"");
                check_invalid("mon", "3:00", bad_times[i], "UTC", "EndTime=\"");
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_zones); i++)
                check_invalid("mon", "2:00", "3:00", bad_zones[i], "TimeZone=\"");

        /* The first wrong setting is the one reported. */
        check_invalid("funday", "25:00", "26:00", "Mars/Olympus_Mons", "Days=");
        check_invalid("mon", "25:00", "26:00", "Mars/Olympus_Mons", "StartTime=");

        /* NULL is a programming error, not a setting. */
        {
                Window *w = NULL;
                ASSERT_ERROR(window_new(&w, NULL, "2:00", "3:00", "UTC", NULL), EINVAL);
                ASSERT_ERROR(window_new(&w, "mon", "2:00", "3:00", NULL, NULL), EINVAL);
                ASSERT_TRUE(!w);
        }
}

TEST(empty_day_set) {
        static const char *const empty[] = { "", "  " };

        for (size_t i = 0; i < ELEMENTSOF(empty); i++) {
                _cleanup_(window_freep) Window *w = make(empty[i], "00:00", "00:00", "Europe/Berlin");

                check_describe(w, "never (no days) Europe/Berlin");
                for (usec_t t = at("2026-11-22T00:00:00Z"); t < at("2026-12-01T00:00:00Z"); t += 13 * USEC_PER_MINUTE)
                        ASSERT_FALSE(window_contains(w, t));
                ASSERT_TRUE(window_next_open(w, at("2026-11-22T00:00:00Z")) == USEC_INFINITY);
                ASSERT_TRUE(window_next_open(w, 0) == USEC_INFINITY);
        }
}

TEST(describe) {
        static const struct {
                const char *days, *start, *end, *tz, *text;
        } cases[] = {
                { "mon-fri", "2:00", "5:00", "Europe/Berlin", "mon-fri 02:00-05:00 Europe/Berlin" },
                { "mon,wed,fri", "02:00:30", "5pm", "UTC", "mon,wed,fri 02:00:30-17:00 UTC" },
                { "sat,sun", "22:00", "04:00", "UTC", "sat,sun 22:00-04:00 (next day) UTC" },
                { "fri-mon", "1am", "2am", "UTC", "fri-mon 01:00-02:00 UTC" },
                { "su,mo", "1am", "2am", "UTC", "sun,mon 01:00-02:00 UTC" },
                { "mon,tue,thu,fri,sat", "1am", "2am", "UTC", "mon,tue,thu-sat 01:00-02:00 UTC" },
                { "mon,tue,thu,fri,sat,sun", "1am", "2am", "UTC", "thu-tue 01:00-02:00 UTC" },
                { "0,2,4,6", "1am", "2am", "Local", "tue,thu,sat,sun 01:00-02:00 Local" },
                { "mon-sun", "12am", "12am", "UTC", "every day all day UTC" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(window_freep) Window *w = make(cases[i].days, cases[i].start, cases[i].end, cases[i].tz);
                check_describe(w, cases[i].text);
        }
        ASSERT_TRUE(!window_describe(NULL));
}

TEST(edges) {
        _cleanup_(window_freep) Window *w = make("thu", "00:00", "01:00", "UTC");

        /* The epoch was a Thursday. */
        ASSERT_TRUE(window_contains(w, 0));
        ASSERT_TRUE(window_next_open(w, 0) == 0);
        ASSERT_FALSE(window_contains(w, USEC_INFINITY));
        ASSERT_TRUE(window_next_open(w, USEC_INFINITY) == USEC_INFINITY);
        ASSERT_TRUE(window_next_open(w, USEC_INFINITY - 1) == USEC_INFINITY);
        ASSERT_FALSE(window_contains(NULL, 0));
        ASSERT_TRUE(window_next_open(NULL, 0) == USEC_INFINITY);
        ASSERT_TRUE(!window_free(NULL));
}

int main(void) {
        RUN(days_every_form);
        RUN(times_every_form);
        RUN(kured_default_window);
        RUN(plain_window);
        RUN(weekly_window);
        RUN(wrap_past_midnight);
        RUN(whole_day);
        RUN(berlin_spring_forward);
        RUN(berlin_fall_back);
        RUN(new_york);
        RUN(contains_and_next_open_agree);
        RUN(local_follows_tz);
        RUN(tz_restored);
        RUN(time_zones_accepted);
        RUN(invalid_input);
        RUN(empty_day_set);
        RUN(describe);
        RUN(edges);
        return 0;
}
