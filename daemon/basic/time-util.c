/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "string-util.h"
#include "time-util.h"

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                abort();
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

usec_t elapsed_clock_get(ElapsedClock *c, usec_t since, usec_t now_wall, usec_t now_mono) {
        if (!c->set || c->since != since) {
                *c = (ElapsedClock) {
                        .set = true,
                        .since = since,
                        .read_at = now_mono,
                        .elapsed_then = now_wall > since ? now_wall - since : 0,
                };
        }
        return c->elapsed_then + (now_mono > c->read_at ? now_mono - c->read_at : 0);
}

static const struct {
        const char *suffix;
        usec_t usec;
} units[] = {
        /* longest suffixes first, so "min" is not read as "m" + garbage, "ms" not as "m" */
        { "seconds", USEC_PER_SEC },
        { "second",  USEC_PER_SEC },
        { "minutes", USEC_PER_MINUTE },
        { "minute",  USEC_PER_MINUTE },
        { "hours",   USEC_PER_HOUR },
        { "hour",    USEC_PER_HOUR },
        { "days",    USEC_PER_DAY },
        { "day",     USEC_PER_DAY },
        { "weeks",   7 * USEC_PER_DAY },
        { "week",    7 * USEC_PER_DAY },
        { "msec",    USEC_PER_MSEC },
        { "usec",    1 },
        { "sec",     USEC_PER_SEC },
        { "min",     USEC_PER_MINUTE },
        { "hr",      USEC_PER_HOUR },
        { "ms",      USEC_PER_MSEC },
        { "us",      1 },
        { "s",       USEC_PER_SEC },
        { "m",       USEC_PER_MINUTE },
        { "h",       USEC_PER_HOUR },
        { "d",       USEC_PER_DAY },
        { "w",       7 * USEC_PER_DAY },
};

int parse_timespan(const char *s, usec_t *ret) {
        usec_t total = 0;
        bool any = false;

        if (!s)
                return -EINVAL;
        while (isspace((unsigned char) *s))
                s++;
        if (streq(s, "infinity")) {
                *ret = USEC_INFINITY;
                return 0;
        }

        for (;;) {
                usec_t whole = 0, frac = 0, frac_div = 1, unit = USEC_PER_SEC;
                bool digits = false;

                while (isspace((unsigned char) *s))
                        s++;
                if (*s == 0)
                        break;

                for (; isdigit((unsigned char) *s); s++) {
                        if (whole > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        whole = whole * 10 + (usec_t) (*s - '0');
                        digits = true;
                }
                if (*s == '.') {
                        s++;
                        for (; isdigit((unsigned char) *s); s++) {
                                if (frac_div < 1000000000ULL) {
                                        frac = frac * 10 + (usec_t) (*s - '0');
                                        frac_div *= 10;
                                }
                                digits = true;
                        }
                }
                if (!digits)
                        return -EINVAL;

                while (isspace((unsigned char) *s))
                        s++;
                if (isalpha((unsigned char) *s)) {
                        size_t i;

                        for (i = 0; i < ELEMENTSOF(units); i++) {
                                size_t l = strlen(units[i].suffix);
                                if (strneq(s, units[i].suffix, l) && !isalpha((unsigned char) s[l])) {
                                        unit = units[i].usec;
                                        s += l;
                                        break;
                                }
                        }
                        if (i >= ELEMENTSOF(units))
                                return -EINVAL;
                }

                if (whole > UINT64_MAX / unit)
                        return -ERANGE;
                if (total + whole * unit < total)
                        return -ERANGE;
                total += whole * unit + frac * unit / frac_div;
                any = true;
        }

        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

char *format_timespan(char *buf, size_t size, usec_t t) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "d", USEC_PER_DAY },
                { "h", USEC_PER_HOUR },
                { "min", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },
                { "ms", USEC_PER_MSEC },
                { "us", 1 },
        };
        char *p = buf;
        size_t l = size;

        if (t == USEC_INFINITY) {
                snprintf(buf, size, "infinity");
                return buf;
        }
        if (t == 0) {
                snprintf(buf, size, "0");
                return buf;
        }
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                usec_t n = t / table[i].usec;
                int k;

                if (n == 0)
                        continue;
                k = snprintf(p, l, "%s%llu%s", p > buf ? " " : "", (unsigned long long) n, table[i].suffix);
                if (k < 0 || (size_t) k >= l)
                        break;
                p += k;
                l -= (size_t) k;
                t -= n * table[i].usec;
        }
        return buf;
}

static int parse_digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

int parse_rfc3339(const char *s, usec_t *ret) {
        struct tm tm = {};
        int year, mon, day, hour, min, sec, offset = 0;
        usec_t frac = 0, frac_div = 1;
        time_t t;

        if (!s)
                return -EINVAL;
        if (parse_digits(&s, 4, &year) < 0 || *s++ != '-' ||
            parse_digits(&s, 2, &mon) < 0 || *s++ != '-' ||
            parse_digits(&s, 2, &day) < 0 || (*s != 'T' && *s != 't' && *s != ' '))
                return -EINVAL;
        s++;
        if (parse_digits(&s, 2, &hour) < 0 || *s++ != ':' ||
            parse_digits(&s, 2, &min) < 0 || *s++ != ':' ||
            parse_digits(&s, 2, &sec) < 0)
                return -EINVAL;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++)
                        if (frac_div < USEC_PER_SEC) {
                                frac = frac * 10 + (usec_t) (*s - '0');
                                frac_div *= 10;
                        }
        }
        if (*s == 'Z' || *s == 'z')
                s++;
        else if (*s == '+' || *s == '-') {
                int sign = *s == '-' ? -1 : 1, oh, om;
                s++;
                if (parse_digits(&s, 2, &oh) < 0 || *s++ != ':' || parse_digits(&s, 2, &om) < 0)
                        return -EINVAL;
                offset = sign * (oh * 3600 + om * 60);
        } else
                return -EINVAL;
        if (*s != 0)
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
                return -EINVAL;

        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t == (time_t) -1 || t - offset < 0)
                return -ERANGE;

        *ret = (usec_t) (t - offset) * USEC_PER_SEC + frac * (USEC_PER_SEC / frac_div);
        return 0;
}

char *format_rfc3339(char *buf, size_t size, usec_t t, bool micro) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&sec, &tm)) {
                snprintf(buf, size, "1970-01-01T00:00:00Z");
                return buf;
        }
        if (micro)
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06lluZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         (unsigned long long) (t % USEC_PER_SEC));
        else
                snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return buf;
}
