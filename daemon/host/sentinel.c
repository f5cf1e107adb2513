/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "log.h"
#include "sentinel.h"
#include "string-util.h"

#define SENTINEL_RECHECK_USEC (10 * USEC_PER_SEC)
#define SENTINEL_REASON_FILE_MAX (64U * 1024U)
#define SENTINEL_REASON_PACKAGES_MAX 50
/* Longer names exist in no archive; a longer line is junk, not a package to name in full. */
#define PACKAGE_NAME_MAX 255U
#define PACKAGE_ARCH_MAX 32U
#define SENTINEL_SETTLE_ACCURACY_USEC (10 * USEC_PER_MSEC)

/* Everything that can make the file appear or vanish (dpkg and apt write a temp file and rename it),
 * and the folder itself going away. */
#define SENTINEL_INOTIFY_MASK                                                                   \
        (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_CLOSE_WRITE |     \
         IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct Sentinel {
        sd_event *event;
        char *path;
        char *dir;              /* as given; resolved again each time a watch is set up */
        char *name;
        char *pkgs_name;        /* <name>.pkgs, the reason beside it */
        sd_event_source *inotify_source;
        /* Polls while the folder is missing (or inotify cannot be used), and sets the watch up
         * again after the folder went away. */
        sd_event_source *timer_source;
        usec_t recheck_usec;
        /* A new sentinel counts once it has existed this long; runs while it settles. */
        usec_t settle_usec;
        sd_event_source *settle_source;
        bool present;           /* what the handler was told: there and settled */
        SentinelHandler handler;
        void *userdata;
};

static bool sentinel_check(Sentinel *s) {
        if (access(s->path, F_OK) >= 0)
                return true;
        if (errno != ENOENT && errno != ENOTDIR)
                log_debug("Cannot check %s, assuming absent: %m", s->path);
        return false;
}

static void sentinel_notify(Sentinel *s, bool present) {
        s->present = present;
        if (s->handler)
                s->handler(s, present, s->userdata);
}

static int on_settled(sd_event_source *source, uint64_t usec, void *userdata) {
        Sentinel *s = userdata;

        s->settle_source = sd_event_source_disable_unref(s->settle_source);
        if (!s->present && sentinel_check(s))
                sentinel_notify(s, true);
        return 0;
}

/* Runs the handler last: it may free the Sentinel. */
static void sentinel_update(Sentinel *s) {
        int r;

        if (!sentinel_check(s)) {
                /* Gone while settling: it never counted. */
                s->settle_source = sd_event_source_disable_unref(s->settle_source);
                if (s->present)
                        sentinel_notify(s, false);
                return;
        }
        if (s->present || s->settle_source)
                return;
        if (s->settle_usec > 0) {
                /* A timer from the first sight of it, not a poll: touching it again changes nothing. */
                r = sd_event_add_time_relative(s->event, &s->settle_source, CLOCK_MONOTONIC, s->settle_usec,
                                               SENTINEL_SETTLE_ACCURACY_USEC, on_settled, s);
                if (r >= 0) {
                        (void) sd_event_source_set_description(s->settle_source, "sentinel-settle");
                        return;
                }
                log_debug_errno(r, "Failed to arm the settle timer for %s, taking it as settled: %m", s->path);
        }
        sentinel_notify(s, true);
}

/* The reason changed: only worth telling while the sentinel counts (it is read when it does). */
static void sentinel_reason_changed(Sentinel *s, uint32_t mask) {
        if (!s->present || !s->handler)
                return;
        if (!(mask & (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE)))
                return;
        s->handler(s, true, s->userdata);
}

static int sentinel_arm_timer(Sentinel *s, usec_t usec);

static int on_inotify(sd_event_source *source, const struct inotify_event *ev, void *userdata) {
        Sentinel *s = userdata;

        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
                /* The folder went away (or moved): this watch is dead or points elsewhere. Set up a
                 * new one from the timer, outside this dispatch, so the old watch is gone first
                 * (a folder created again may get the same inode number). */
                (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
                if (sentinel_arm_timer(s, 0) < 0)
                        log_debug("Failed to schedule a new watch on %s, checking now.", s->dir);
                sentinel_update(s);
                return 0;
        }

        /* len == 0: an event on the folder itself, or a queue overflow (anything may have
         * happened). */
        if (ev->len == 0 || streq(ev->name, s->name))
                sentinel_update(s);
        else if (streq(ev->name, s->pkgs_name))
                sentinel_reason_changed(s, ev->mask);
        return 0;
}

static int sentinel_watch(Sentinel *s) {
        _cleanup_free_ char *resolved = NULL;
        int r;

        s->inotify_source = sd_event_source_disable_unref(s->inotify_source);

        /* /var/run is usually a link to /run: watch the folder it names. */
        resolved = realpath(s->dir, NULL);
        if (!resolved)
                return -errno;

        r = sd_event_add_inotify(s->event, &s->inotify_source, resolved, SENTINEL_INOTIFY_MASK,
                                 on_inotify, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->inotify_source, "sentinel-inotify");
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Sentinel *s = userdata;
        int r;

        r = sentinel_watch(s);
        if (r < 0) {
                if (r != -ENOENT && r != -ENOTDIR)
                        log_debug_errno(r, "Cannot watch %s, checking every %s: %m", s->dir,
                                        format_timespan((char[FORMAT_TIMESPAN_MAX]) {}, FORMAT_TIMESPAN_MAX,
                                                        s->recheck_usec));
                r = sentinel_arm_timer(s, s->recheck_usec);
                if (r < 0)
                        log_debug_errno(r, "Failed to arm the recheck timer for %s: %m", s->path);
        }

        sentinel_update(s);
        return 0;
}

static int sentinel_arm_timer(Sentinel *s, usec_t usec) {
        /* 0 would mean sd-event's default slack of 250 ms: an immediate re-watch is meant. */
        usec_t accuracy = MAX(MIN(usec / 10, USEC_PER_SEC), (usec_t) 1);
        int r;

        if (!s->timer_source) {
                r = sd_event_add_time_relative(s->event, &s->timer_source, CLOCK_MONOTONIC, usec,
                                               accuracy, on_timer, s);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(s->timer_source, "sentinel-recheck");
                return 0;
        }

        r = sd_event_source_set_time_relative(s->timer_source, usec);
        if (r < 0)
                return r;
        r = sd_event_source_set_time_accuracy(s->timer_source, accuracy);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

static int split_path(const char *path, char **ret_dir, char **ret_name) {
        _cleanup_free_ char *dir = NULL, *name = NULL;
        const char *slash;

        if (isempty(path) || endswith(path, "/"))
                return -EINVAL;

        slash = strrchr(path, '/');
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        name = strdup(slash ? slash + 1 : path);
        if (!dir || !name)
                return -ENOMEM;
        if (streq(name, ".") || streq(name, ".."))
                return -EINVAL;

        *ret_dir = TAKE_PTR(dir);
        *ret_name = TAKE_PTR(name);
        return 0;
}

int sentinel_new(Sentinel **ret, sd_event *event, const char *path, usec_t settle_usec,
                 SentinelHandler handler, void *userdata) {
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        int r;

        if (!ret || !event || !path)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->handler = handler;
        s->userdata = userdata;
        s->recheck_usec = SENTINEL_RECHECK_USEC;
        s->settle_usec = settle_usec == USEC_INFINITY ? 0 : settle_usec;

        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        r = split_path(path, &s->dir, &s->name);
        if (r < 0)
                return r;
        s->pkgs_name = strjoin(s->name, ".pkgs");
        if (!s->pkgs_name)
                return -ENOMEM;

        /* Watch first, then look: a file created in between is then seen by one or the other. */
        r = sentinel_watch(s);
        if (r < 0) {
                if (r != -ENOENT && r != -ENOTDIR)
                        log_debug_errno(r, "Cannot watch %s, checking periodically instead: %m", s->dir);
                r = sentinel_arm_timer(s, s->recheck_usec);
                if (r < 0)
                        return r;
        }

        s->present = sentinel_check(s);
        *ret = TAKE_PTR(s);
        return 0;
}

Sentinel *sentinel_free(Sentinel *s) {
        if (!s)
                return NULL;

        sd_event_source_disable_unref(s->inotify_source);
        sd_event_source_disable_unref(s->timer_source);
        sd_event_source_disable_unref(s->settle_source);
        sd_event_unref(s->event);
        free(s->path);
        free(s->dir);
        free(s->name);
        free(s->pkgs_name);
        return mfree(s);
}

bool sentinel_present(Sentinel *s) {
        return s && s->present;
}

void sentinel_set_recheck_interval(Sentinel *s, usec_t usec) {
        if (!s)
                return;
        s->recheck_usec = usec > 0 ? usec : SENTINEL_RECHECK_USEC;
        /* Polling now: the new interval applies from now on. */
        if (!s->inotify_source && s->timer_source)
                if (sentinel_arm_timer(s, s->recheck_usec) < 0)
                        log_debug("Failed to re-arm the recheck timer for %s.", s->path);
}

/* ---- reason ---- */

/* Reads at most max bytes of a regular file (a FIFO or device there must not block or flood us);
 * *ret_truncated tells whether there was more. */
static int read_file_head(const char *path, size_t max, char **ret, size_t *ret_size, bool *ret_truncated) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;

        buf = malloc(max + 2);
        if (!buf)
                return -ENOMEM;

        /* One byte more than allowed tells whether the file is longer. */
        while (n < max + 1) {
                ssize_t k = read(fd, buf + n, max + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }

        *ret_truncated = n > max;
        buf[MIN(n, max)] = 0;
        *ret_size = MIN(n, max);
        *ret = TAKE_PTR(buf);
        return 0;
}

typedef struct Package {
        const char *name;
        size_t index;
        bool duplicate;
} Package;

static int package_compare_name(const void *a, const void *b) {
        const Package *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

static int package_compare_index(const void *a, const void *b) {
        const Package *x = a, *y = b;

        return x->index < y->index ? -1 : x->index > y->index;
}

static bool char_is_lower_or_digit(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool sentinel_package_name_is_valid(const char *name) {
        const char *colon;
        size_t n;

        if (!name)
                return false;
        colon = strchr(name, ':');
        n = colon ? (size_t) (colon - name) : strlen(name);

        /* deb-control(5): at least two characters, lower case letters, digits, '+', '-' and '.',
         * starting with an alphanumeric character. */
        if (n < 2 || n > PACKAGE_NAME_MAX || !char_is_lower_or_digit(name[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!char_is_lower_or_digit(name[i]) && !strchr("+-.", name[i]))
                        return false;
        if (!colon)
                return true;

        /* An architecture: amd64, arm64, i386, x32, … */
        n = strlen(colon + 1);
        if (n == 0 || n > PACKAGE_ARCH_MAX || !char_is_lower_or_digit(colon[1]))
                return false;
        for (const char *p = colon + 1; *p; p++)
                if (!char_is_lower_or_digit(*p) && *p != '-')
                        return false;
        return true;
}

int sentinel_read_reason(const char *path, char **ret, unsigned *ret_n_invalid) {
        _cleanup_free_ char *pkgs_path = NULL, *data = NULL, *result = NULL;
        _cleanup_free_ Package *packages = NULL;
        size_t n_packages = 0, n_unique = 0, n_shown = 0, size = 0, data_size = 0;
        unsigned n_invalid = 0;
        bool truncated = false, full = false;
        char *p, *line;
        int r;

        if (isempty(path) || !ret)
                return -EINVAL;

        pkgs_path = strjoin(path, ".pkgs");
        if (!pkgs_path)
                return -ENOMEM;

        r = read_file_head(pkgs_path, SENTINEL_REASON_FILE_MAX, &data, &data_size, &truncated);
        if (r == -ENOENT) {
                *ret = NULL;
                if (ret_n_invalid)
                        *ret_n_invalid = 0;
                return 0;
        }
        if (r < 0)
                return r;

        /* A NUL in junk must not hide the lines after it: it ends a line like a newline. */
        for (size_t i = 0; i < data_size; i++)
                if (data[i] == 0)
                        data[i] = '\n';

        /* A line cut off at the cap is not a package name. */
        if (truncated) {
                p = strrchr(data, '\n');
                if (p)
                        *p = 0;
                else
                        data[0] = 0;
        }

        /* At most one entry per two bytes (a name and its newline). */
        packages = calloc(strlen(data) / 2 + 1, sizeof(Package));
        if (!packages)
                return -ENOMEM;

        /* The reason goes into STATUS=, the journal, the state file and a node annotation: only
         * package names pass, which are printable ASCII. */
        for (p = data; (line = strsep(&p, "\n"));) {
                line = strstrip(line);
                if (isempty(line))
                        continue;
                if (!sentinel_package_name_is_valid(line)) {
                        n_invalid++;
                        continue;
                }
                packages[n_packages] = (Package) { .name = line, .index = n_packages };
                n_packages++;
        }

        if (n_invalid > 0)
                log_debug("%s: skipped %u lines that are not package names.", pkgs_path, n_invalid);
        if (ret_n_invalid)
                *ret_n_invalid = n_invalid;

        if (n_packages == 0) {
                *ret = NULL;
                return 0;
        }

        /* Sorting keeps this O(n log n) for a file of thousands of lines; the first occurrence of
         * each name stays, in file order. */
        qsort(packages, n_packages, sizeof(Package), package_compare_name);
        for (size_t i = 1; i < n_packages; i++)
                packages[i].duplicate = streq(packages[i].name, packages[i - 1].name);
        qsort(packages, n_packages, sizeof(Package), package_compare_index);

        /* Names in file order while they fit, leaving room for ", and N more" and the NUL. */
        result = malloc(SENTINEL_REASON_MAX);
        if (!result)
                return -ENOMEM;
        p = result;
        *p = 0;
        for (size_t i = 0; i < n_packages; i++) {
                size_t len;

                if (packages[i].duplicate)
                        continue;
                n_unique++;
                if (full)
                        continue;
                len = strlen(packages[i].name) + (n_shown > 0 ? 2 : 0);
                if (n_shown >= SENTINEL_REASON_PACKAGES_MAX ||
                    size + len > SENTINEL_REASON_MAX - sizeof(", and 18446744073709551615 more")) {
                        full = true;
                        continue;
                }
                if (n_shown++ > 0)
                        p = stpcpy(p, ", ");
                p = stpcpy(p, packages[i].name);
                size += len;
        }
        if (n_unique > n_shown)
                (void) snprintf(p, SENTINEL_REASON_MAX - size, ", and %zu more", n_unique - n_shown);

        *ret = TAKE_PTR(result);
        return 0;
}
