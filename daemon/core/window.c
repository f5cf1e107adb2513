/* SPDX-License-Identifier: Apache-2.0 */
/* The maintenance window, with kured's input forms (--reboot-days, --start-time, --end-time,
 * --time-zone).
 *
 * Meaning, in the window's time zone:
 * - The day list names the day on which a window *opens*. "fri" with 22:00-04:00 is open from
 *   Friday 22:00 to Saturday 04:00; it is not open early on Friday morning (that would be
 *   Thursday's window).
 * - A window opens at the first instant the local clock reads the start time (or later) on a
 *   listed day, and closes at the first instant it reads the end time (or later): on the same day
 *   when end > start, on the next day when end < start, and 24 hours later when end == start (so
 *   00:00-00:00 is the whole day). The start is inside, the end is not.
 * - Daylight saving time falls out of that rule: a start in the hour that is skipped in spring
 *   opens when the clock jumps; a window that lies entirely in the skipped hour does not open that
 *   day; in autumn's repeated hour the window opens at the first pass, and an end inside the
 *   repeated hour closes it at the first pass too.
 *
 * glibc has no per-call time zone API, so evaluating the window switches $TZ and calls tzset(),
 * then restores the previous $TZ. That changes process-global state; it is acceptable because the
 * daemon (and noderebootctl) is single-threaded. Do not call these functions from a thread. */

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "string-util.h"
#include "window.h"

#define ZONEINFO_DIR "/usr/share/zoneinfo"

/* Any UTC offset ever used lies well within this, so every instant whose local clock reads a
 * given wall time is within this distance of that wall time read as UTC. */
#define OFFSET_MAX_SEC ((int64_t) 26 * 3600)

/* A Saturday in the year 9999: beyond it usec_t arithmetic on the results is not worth the risk. */
#define WINDOW_TIME_MAX_SEC ((int64_t) 253402214400)

/* How many days ahead window_next_open() looks: a weekly window whose opening falls into a skipped
 * hour is missed once, so two weeks suffice; the rest is margin for zones that skipped days. */
#define NEXT_OPEN_SEARCH_DAYS 35

typedef enum ZoneKind {
        ZONE_UTC,
        ZONE_LOCAL,             /* the process's own zone: $TZ if set, else /etc/localtime */
        ZONE_NAMED,             /* an IANA name under the zoneinfo folder */
} ZoneKind;

struct Window {
        bool days[7];           /* indexed by tm_wday (0 = Sunday): the days a window opens */
        unsigned start;         /* seconds after local midnight */
        unsigned end;
        ZoneKind zone_kind;
        char *zone;             /* as described: "UTC", "Local" or the IANA name */
        char *tz;               /* the $TZ value while evaluating; NULL: leave $TZ alone */
};

static const char *const day_names[7][3] = {
        { "su", "sun", "sunday" },
        { "mo", "mon", "monday" },
        { "tu", "tue", "tuesday" },
        { "we", "wed", "wednesday" },
        { "th", "thu", "thursday" },
        { "fr", "fri", "friday" },
        { "sa", "sat", "saturday" },
};

#define DAYS_EXPECTED \
        "expected a comma-separated list of days or ranges like mon,wed or mon-fri " \
        "(su, sun, sunday or 0 for Sunday … sa, sat, saturday or 6)"
#define TIME_EXPECTED "expected a time of day like 02:00, 14:30:00 or 3pm"
#define ZONE_EXPECTED "expected an IANA time zone name like Europe/Berlin, UTC or Local"

static int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *s;

        if (!ret_error)
                return -EINVAL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        if (!s)
                return -ENOMEM;
        *ret_error = s;
        return -EINVAL;
}

static int parse_day(const char *s, int *ret) {
        if (s[0] >= '0' && s[0] <= '6' && s[1] == 0) {
                *ret = s[0] - '0';
                return 0;
        }
        for (int d = 0; d < 7; d++)
                for (size_t i = 0; i < ELEMENTSOF(day_names[d]); i++)
                        if (strcasecmp(s, day_names[d][i]) == 0) {
                                *ret = d;
                                return 0;
                        }
        return -EINVAL;
}

/* On -EINVAL, *ret_bad is a copy of the offending item. */
static int parse_days(const char *text, bool ret_days[static 7], char **ret_bad) {
        _cleanup_free_ char *copy = NULL;
        bool days[7] = {};
        char *p, *item;

        copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        if (isempty(strstrip(copy))) {
                /* No days at all: a window that never opens. */
                memcpy(ret_days, days, sizeof days);
                return 0;
        }

        p = copy;
        while ((item = strsep(&p, ","))) {
                _cleanup_free_ char *orig = NULL;
                char *a = strstrip(item), *b, *dash;
                int from, to;

                orig = strdup(a);
                if (!orig)
                        return -ENOMEM;

                dash = strchr(a, '-');
                if (dash) {
                        *dash = 0;
                        b = strstrip(dash + 1);
                        a = strstrip(a);
                } else
                        b = a;

                if (isempty(a) || isempty(b) || parse_day(a, &from) < 0 || parse_day(b, &to) < 0) {
                        *ret_bad = TAKE_PTR(orig);
                        return -EINVAL;
                }

                /* A range may wrap past Saturday: fri-mon is fri,sat,sun,mon. */
                for (int d = from;; d = (d + 1) % 7) {
                        days[d] = true;
                        if (d == to)
                                break;
                }
        }

        memcpy(ret_days, days, sizeof days);
        return 0;
}

static int parse_digits(const char **p, unsigned min_digits, unsigned max_digits, unsigned *ret) {
        unsigned v = 0, n = 0;

        while (n < max_digits && isdigit((unsigned char) (*p)[n])) {
                v = v * 10 + (unsigned) ((*p)[n] - '0');
                n++;
        }
        if (n < min_digits)
                return -EINVAL;
        *p += n;
        *ret = v;
        return 0;
}

/* kured's layouts 15:04, 15:04:05, 03:04pm, 15, 03pm, 3pm; also 3:30am, 3:30:15 PM. */
static int parse_time_of_day(const char *s, unsigned *ret) {
        unsigned h, m = 0, sec = 0;
        int ampm = -1;          /* -1: 24-hour clock, 0: am, 1: pm */

        if (parse_digits(&s, 1, 2, &h) < 0)
                return -EINVAL;
        if (*s == ':') {
                s++;
                if (parse_digits(&s, 2, 2, &m) < 0)
                        return -EINVAL;
                if (*s == ':') {
                        s++;
                        if (parse_digits(&s, 2, 2, &sec) < 0)
                                return -EINVAL;
                }
        }
        if (strcasecmp(s, "am") == 0 || strcasecmp(s, " am") == 0)
                ampm = 0;
        else if (strcasecmp(s, "pm") == 0 || strcasecmp(s, " pm") == 0)
                ampm = 1;
        else if (*s != 0)
                return -EINVAL;

        if (m > 59 || sec > 59)
                return -EINVAL;
        if (ampm >= 0) {
                if (h < 1 || h > 12)
                        return -EINVAL;
                h = h % 12 + (ampm ? 12 : 0);     /* 12am is midnight, 12pm noon */
        } else if (h > 23)
                return -EINVAL;

        *ret = h * 3600 + m * 60 + sec;
        return 0;
}

static const char *zoneinfo_dir(void) {
        const char *e = getenv("TZDIR");    /* glibc honours it too */
        return isempty(e) ? ZONEINFO_DIR : e;
}

/* 0 if name is a relative path of plain components naming a TZif file under the zoneinfo folder;
 * -EINVAL for a malformed name, -ENOENT when there is no such zone. */
static int zone_validate(const char *name) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *component = name;
        char magic[4];
        struct stat st;
        ssize_t n;

        if (isempty(name) || name[0] == '/')
                return -EINVAL;
        for (const char *p = name;; p++) {
                if (*p == '/' || *p == 0) {
                        size_t l = (size_t) (p - component);
                        if (l == 0 || (l == 1 && component[0] == '.') ||
                            (l == 2 && component[0] == '.' && component[1] == '.'))
                                return -EINVAL;
                        if (*p == 0)
                                break;
                        component = p + 1;
                } else if (!isalnum((unsigned char) *p) && !strchr("._-+", *p))
                        return -EINVAL;
        }

        path = strjoin(zoneinfo_dir(), "/", name);
        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -ENOENT;
        n = read(fd, magic, sizeof magic);
        if (n < 0)
                return -errno;
        if (n != sizeof magic || memcmp(magic, "TZif", sizeof magic) != 0)
                return -ENOENT;
        return 0;
}

int window_new(Window **ret, const char *days, const char *start, const char *end, const char *time_zone,
               char **ret_error) {
        _cleanup_(window_freep) Window *w = NULL;
        _cleanup_free_ char *bad = NULL;
        int r;

        if (!ret || !days || !start || !end || !time_zone)
                return -EINVAL;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;

        r = parse_days(days, w->days, &bad);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_error(ret_error, "Days=\"%s\": \"%s\" is not a day or range; " DAYS_EXPECTED,
                                 days, bad);

        if (parse_time_of_day(start, &w->start) < 0)
                return set_error(ret_error, "StartTime=\"%s\": " TIME_EXPECTED, start);
        if (parse_time_of_day(end, &w->end) < 0)
                return set_error(ret_error, "EndTime=\"%s\": " TIME_EXPECTED, end);

        if (strcasecmp(time_zone, "UTC") == 0) {
                w->zone_kind = ZONE_UTC;
                w->zone = strdup("UTC");
                w->tz = strdup("UTC0");
                if (!w->zone || !w->tz)
                        return -ENOMEM;
        } else if (strcasecmp(time_zone, "Local") == 0) {
                w->zone_kind = ZONE_LOCAL;
                w->zone = strdup("Local");
                if (!w->zone)
                        return -ENOMEM;
        } else {
                r = zone_validate(time_zone);
                if (r == -ENOMEM)
                        return r;
                if (r == -EINVAL)
                        return set_error(ret_error, "TimeZone=\"%s\": " ZONE_EXPECTED, time_zone);
                if (r < 0)
                        return set_error(ret_error, "TimeZone=\"%s\": no such time zone in %s (%s); "
                                         ZONE_EXPECTED, time_zone, zoneinfo_dir(), strerror(-r));
                w->zone_kind = ZONE_NAMED;
                w->zone = strdup(time_zone);
                w->tz = strjoin(":", time_zone);
                if (!w->zone || !w->tz)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(w);
        return 0;
}

Window *window_free(Window *w) {
        if (!w)
                return NULL;
        free(w->zone);
        free(w->tz);
        return mfree(w);
}

/* The previous $TZ, restored by zone_leave(). */
typedef struct ZoneSwitch {
        bool active;
        bool had_tz;
        char *saved_tz;
} ZoneSwitch;

static int zone_enter(const Window *w, ZoneSwitch *ret) {
        const char *old = getenv("TZ");
        ZoneSwitch s = { .had_tz = !!old };

        if (!w->tz) {
                /* Local: the process's own zone, whatever $TZ says. */
                tzset();
                *ret = s;
                return 0;
        }
        if (old) {
                s.saved_tz = strdup(old);
                if (!s.saved_tz)
                        return -ENOMEM;
        }
        if (setenv("TZ", w->tz, 1) < 0) {
                free(s.saved_tz);
                return -errno;
        }
        tzset();
        s.active = true;
        *ret = s;
        return 0;
}

static void zone_leave(ZoneSwitch *s) {
        if (s->active) {
                if (s->had_tz)
                        (void) setenv("TZ", s->saved_tz, 1);
                else
                        (void) unsetenv("TZ");
                tzset();
        }
        s->saved_tz = mfree(s->saved_tz);
        s->active = false;
}

/* The local wall clock at instant t, as seconds since the epoch read as UTC. */
static bool wall_at(int64_t t, int64_t *ret) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!localtime_r(&tt, &tm))
                return false;
        *ret = t + tm.tm_gmtoff;
        return true;
}

/* The first instant at which the local clock reads wall (seconds since the epoch read as UTC) or
 * later. Instants whose clock reads exactly wall are found from the offsets in effect around it;
 * when there is none (wall lies in a skipped hour), the answer is the end of the gap. */
static bool instant_at_wall(int64_t wall, int64_t *ret) {
        const int64_t probes[] = { wall - OFFSET_MAX_SEC, wall, wall + OFFSET_MAX_SEC };
        int64_t best = INT64_MAX, lo, hi;

        for (size_t i = 0; i < ELEMENTSOF(probes); i++) {
                int64_t w, t, tw;

                if (!wall_at(probes[i], &w))
                        return false;
                t = wall - (w - probes[i]);     /* wall read with the offset in effect there */
                if (!wall_at(t, &tw))
                        return false;
                if (tw == wall && t < best)
                        best = t;
        }
        if (best != INT64_MAX) {
                *ret = best;
                return true;
        }

        /* In a gap: the clock jumps from before wall to after it. Find the jump. Near a gap the clock
         * only moves forward, so "reads wall or later" is monotonic and a bisection finds it. */
        lo = wall - OFFSET_MAX_SEC;     /* reads before wall */
        hi = wall + OFFSET_MAX_SEC;     /* reads after wall */
        while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2, w;

                if (!wall_at(mid, &w))
                        return false;
                if (w >= wall)
                        hi = mid;
                else
                        lo = mid;
        }
        *ret = hi;
        return true;
}

/* The local calendar date of instant t, shifted by delta days: as UTC midnight seconds, plus its
 * weekday. */
static bool local_date(int64_t t, int delta, int64_t *ret_midnight, int *ret_wday) {
        time_t tt = (time_t) t, m;
        struct tm tm, d;

        if (!localtime_r(&tt, &tm))
                return false;
        d = (struct tm) {
                .tm_year = tm.tm_year,
                .tm_mon = tm.tm_mon,
                .tm_mday = tm.tm_mday + delta,
        };
        m = timegm(&d);         /* normalises the date and fills in tm_wday */
        if (m == (time_t) -1)
                return false;
        *ret_midnight = (int64_t) m;
        *ret_wday = d.tm_wday;
        return true;
}

/* The window that opens on the local date midnight (as UTC seconds), as instants [open, close). */
static bool window_on(const Window *w, int64_t midnight, int64_t *ret_open, int64_t *ret_close) {
        int64_t close_wall = midnight + w->end + (w->end <= w->start ? 24 * 3600 : 0);

        return instant_at_wall(midnight + w->start, ret_open) &&
                instant_at_wall(close_wall, ret_close);
}

static bool window_any_day(const Window *w) {
        for (int d = 0; d < 7; d++)
                if (w->days[d])
                        return true;
        return false;
}

/* Evaluates with the zone in effect. Returns the first moment >= t inside the window (t when
 * inside), or USEC_INFINITY; with only_containing, only tells whether t is inside (t or
 * USEC_INFINITY). */
static usec_t window_next_open_in_zone(const Window *w, usec_t t, bool only_containing) {
        int64_t sec = (int64_t) (t / USEC_PER_SEC);
        int last = only_containing ? 1 : NEXT_OPEN_SEARCH_DAYS;

        /* Yesterday's window may still be open (it wraps past midnight, or lasts 24 hours); so
         * may tomorrow's in a zone that turns the clock back across midnight. */
        for (int delta = -1; delta <= last; delta++) {
                int64_t midnight, open, close;
                int wday;

                if (!local_date(sec, delta, &midnight, &wday))
                        return USEC_INFINITY;
                if (!w->days[wday])
                        continue;
                if (!window_on(w, midnight, &open, &close))
                        return USEC_INFINITY;
                if (open >= close || close <= sec)
                        continue;       /* empty that day (a skipped hour), or over */
                if (open <= sec)
                        return t;
                if (only_containing)
                        continue;
                return (usec_t) open * USEC_PER_SEC;
        }
        return USEC_INFINITY;
}

static usec_t window_evaluate(const Window *w, usec_t t, bool only_containing) {
        ZoneSwitch z = {};
        usec_t r;

        if (!w || !window_any_day(w))
                return USEC_INFINITY;
        if (t >= (usec_t) WINDOW_TIME_MAX_SEC * USEC_PER_SEC)
                return USEC_INFINITY;
        if (zone_enter(w, &z) < 0)
                return USEC_INFINITY;   /* out of memory for $TZ: treat as closed, evaluated again later */
        r = window_next_open_in_zone(w, t, only_containing);
        zone_leave(&z);
        return r;
}

bool window_contains(const Window *w, usec_t realtime) {
        return realtime != USEC_INFINITY && window_evaluate(w, realtime, true) == realtime;
}

usec_t window_next_open(const Window *w, usec_t realtime) {
        return window_evaluate(w, realtime, false);
}

static char *days_describe(const bool days[static 7]) {
        /* Monday first, as people write "mon-fri"; runs may wrap past Sunday ("sat-mon"). */
        static const int order[7] = { 1, 2, 3, 4, 5, 6, 0 };
        char buf[64] = "";
        size_t n = 0, first = 0;
        bool any = false;

        for (size_t i = 0; i < 7; i++)
                n += days[order[i]];
        if (n == 7)
                return strdup("every day");
        if (n == 0)
                return strdup("no day");

        /* Start at the beginning of a run, so a run across Sunday/Monday is not split. */
        for (size_t i = 0; i < 7; i++)
                if (days[order[i]] && !days[order[(i + 6) % 7]]) {
                        first = i;
                        break;
                }

        for (size_t i = 0; i < 7;) {
                size_t len = 0;
                int a = order[(first + i) % 7];

                if (!days[a]) {
                        i++;
                        continue;
                }
                while (i + len < 7 && days[order[(first + i + len) % 7]])
                        len++;
                if (len >= 3)
                        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s-%s", any ? "," : "",
                                 day_names[a][1], day_names[order[(first + i + len - 1) % 7]][1]);
                else
                        for (size_t j = 0; j < len; j++)
                                snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s",
                                         any || j > 0 ? "," : "", day_names[order[(first + i + j) % 7]][1]);
                any = true;
                i += len;
        }
        return strdup(buf);
}

static void time_describe(char buf[static 16], unsigned t) {
        if (t % 60)
                snprintf(buf, 16, "%02u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
        else
                snprintf(buf, 16, "%02u:%02u", t / 3600, t / 60 % 60);
}

char *window_describe(const Window *w) {
        _cleanup_free_ char *days = NULL;
        char start[16], end[16];

        if (!w)
                return NULL;
        if (!window_any_day(w))
                return strdup_printf("never (no days) %s", w->zone);

        days = days_describe(w->days);
        if (!days)
                return NULL;
        time_describe(start, w->start);
        time_describe(end, w->end);

        if (w->start == w->end)
                return w->start == 0 ?
                        strdup_printf("%s all day %s", days, w->zone) :
                        strdup_printf("%s %s for 24h %s", days, start, w->zone);
        return strdup_printf("%s %s-%s%s %s", days, start, end,
                             w->end < w->start ? " (next day)" : "", w->zone);
}
