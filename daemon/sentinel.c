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
        sd_event_source *inotify_source;
        /* Polls while the folder is missing (or inotify cannot be used), and sets the watch up
         * again after the folder went away. */
        sd_event_source *timer_source;
        usec_t recheck_usec;
        bool present;
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

/* Runs the handler last: it may free the Sentinel. */
static void sentinel_update(Sentinel *s) {
        bool present = sentinel_check(s);

        if (present == s->present)
                return;
        s->present = present;
        if (s->handler)
                s->handler(s, present, s->userdata);
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

int sentinel_new(Sentinel **ret, sd_event *event, const char *path, SentinelHandler handler,
                 void *userdata) {
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

        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        r = split_path(path, &s->dir, &s->name);
        if (r < 0)
                return r;

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
        sd_event_unref(s->event);
        free(s->path);
        free(s->dir);
        free(s->name);
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
static int read_file_head(const char *path, size_t max, char **ret, bool *ret_truncated) {
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

int sentinel_read_reason(const char *path, char **ret) {
        _cleanup_free_ char *pkgs_path = NULL, *data = NULL, *result = NULL;
        _cleanup_free_ Package *packages = NULL;
        size_t n_packages = 0, n_unique = 0, n_shown = 0, size = 0;
        bool truncated = false;
        char *p, *line;
        int r;

        if (isempty(path) || !ret)
                return -EINVAL;

        pkgs_path = strjoin(path, ".pkgs");
        if (!pkgs_path)
                return -ENOMEM;

        r = read_file_head(pkgs_path, SENTINEL_REASON_FILE_MAX, &data, &truncated);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;

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

        for (p = data; (line = strsep(&p, "\n"));) {
                line = strstrip(line);
                if (isempty(line))
                        continue;
                /* The reason goes into STATUS=, the journal and a node annotation: one line. */
                for (char *c = line; *c; c++)
                        if ((unsigned char) *c < 0x20 || *c == 0x7f)
                                *c = ' ';
                packages[n_packages] = (Package) { .name = line, .index = n_packages };
                n_packages++;
        }

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

        for (size_t i = 0; i < n_packages; i++) {
                if (packages[i].duplicate)
                        continue;
                n_unique++;
                if (n_shown >= SENTINEL_REASON_PACKAGES_MAX)
                        continue;
                n_shown++;
                size += strlen(packages[i].name) + 2;
        }

        result = malloc(size + 64);
        if (!result)
                return -ENOMEM;
        p = result;
        *p = 0;
        n_shown = 0;
        for (size_t i = 0; i < n_packages && n_shown < SENTINEL_REASON_PACKAGES_MAX; i++) {
                if (packages[i].duplicate)
                        continue;
                if (n_shown++ > 0)
                        p = stpcpy(p, ", ");
                p = stpcpy(p, packages[i].name);
        }
        if (n_unique > n_shown)
                (void) sprintf(p, ", and %zu more", n_unique - n_shown);

        *ret = TAKE_PTR(result);
        return 0;
}
