/* SPDX-License-Identifier: Apache-2.0 */
/* The sentinel watcher against a real folder and real inotify: the file as apt and dpkg write it
 * (created, renamed into place, removed), a symlinked folder like /var/run, a folder that appears
 * later, and the package list beside it. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "sentinel.h"
#include "string-util.h"
#include "tests.h"
#include "time-util.h"

typedef struct Record {
        unsigned calls;
        bool present;
        usec_t at_usec;
        bool free_in_handler;
} Record;

static void on_change(Sentinel *s, bool present, void *userdata) {
        Record *rec = userdata;

        rec->calls++;
        rec->present = present;
        rec->at_usec = now_usec(CLOCK_MONOTONIC);
        if (rec->free_in_handler)
                sentinel_free(s);
}

/* Runs the loop until the handler has been called `calls` times in total, or the timeout. */
static void run_until(sd_event *e, Record *rec, unsigned calls, usec_t timeout_usec) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (rec->calls < calls) {
                usec_t n = now_usec(CLOCK_MONOTONIC);
                if (n >= end)
                        break;
                ASSERT_OK(sd_event_run(e, end - n));
        }
}

/* Dispatches whatever is queued, so a handler that fires too often is caught. */
static void run_idle(sd_event *e, usec_t usec) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + usec;

        for (usec_t n; (n = now_usec(CLOCK_MONOTONIC)) < end;)
                ASSERT_OK(sd_event_run(e, end - n));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *path) {
        (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-sentinel-XXXXXX");

        ASSERT_TRUE(d);
        ASSERT_TRUE(mkdtemp(d));
        return d;
}

static void write_file(const char *path, const char *content) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, strlen(content)), (long long) strlen(content));
        ASSERT_OK(close(fd));
}

static void write_raw(const char *path, const char *content, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, content, size), (long long) size);
        ASSERT_OK(close(fd));
}

TEST(created_and_removed) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required"),
                *other = strjoin(dir, "/reboot-required.dpkg-tmp"), *pkgs = strjoin(dir, "/reboot-required.pkgs");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};
        usec_t t0;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        ASSERT_FALSE(sentinel_present(s));

        /* Created the way update-notifier's hook does it: a plain write. One loop iteration is
         * enough: the first inotify event for the name already changes the presence. */
        t0 = now_usec(CLOCK_MONOTONIC);
        write_file(path, "*** System restart required ***\n");
        ASSERT_OK(sd_event_run(e, 2 * USEC_PER_SEC));
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);
        ASSERT_TRUE(sentinel_present(s));
        fprintf(stderr, "    latency from creating the file to the handler: %llu us\n",
                (unsigned long long) (rec.at_usec - t0));
        ASSERT_TRUE(rec.at_usec - t0 < 500 * USEC_PER_MSEC);

        /* IN_CLOSE_WRITE, IN_ATTRIB and a rewrite follow: presence did not change, no call. */
        ASSERT_OK(chmod(path, 0600));
        write_file(path, "again\n");
        run_idle(e, 100 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 1);

        /* Another file in the folder, even one named like it, is not the sentinel. */
        write_file(other, "x");
        run_idle(e, 50 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 1);

        /* The package list beside it changed: the handler is told, to read the reason again. */
        write_file(pkgs, "linux-image-6.1.0-28-amd64\n");
        run_until(e, &rec, 2, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_TRUE(rec.present);
        run_idle(e, 50 * USEC_PER_MSEC);
        unsigned before = rec.calls;

        t0 = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(unlink(path));
        run_until(e, &rec, before + 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, before + 1);
        ASSERT_FALSE(rec.present);
        ASSERT_FALSE(sentinel_present(s));
        fprintf(stderr, "    latency from removing the file to the handler: %llu us\n",
                (unsigned long long) (rec.at_usec - t0));

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(renamed_into_place) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required"),
                *tmp = strjoin(dir, "/reboot-required.dpkg-new"), *moved = strjoin(dir, "/moved-away");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};
        usec_t t0;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        ASSERT_FALSE(sentinel_present(s));

        /* dpkg and apt write a temp file and rename it over the name: only IN_MOVED_TO names it. */
        write_file(tmp, "*** System restart required ***\n");
        run_idle(e, 50 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 0);

        t0 = now_usec(CLOCK_MONOTONIC);
        ASSERT_OK(rename(tmp, path));
        run_until(e, &rec, 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);
        fprintf(stderr, "    latency from rename() to the handler: %llu us\n",
                (unsigned long long) (rec.at_usec - t0));

        /* Replaced by another rename while present: no change, no call. */
        write_file(tmp, "again\n");
        ASSERT_OK(rename(tmp, path));
        run_idle(e, 100 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 1);

        /* Renamed away (IN_MOVED_FROM) counts as removed. */
        ASSERT_OK(rename(path, moved));
        run_until(e, &rec, 2, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_FALSE(rec.present);

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(present_at_start) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};

        write_file(path, "x");
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        /* The first look is the starting state, not a change. */
        ASSERT_TRUE(sentinel_present(s));
        run_idle(e, 50 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 0);

        ASSERT_OK(unlink(path));
        run_until(e, &rec, 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 1);
        ASSERT_FALSE(rec.present);

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(symlinked_folder) {
        _cleanup_free_ char *dir = make_tmpdir(), *real = strjoin(dir, "/run"),
                *link = strjoin(dir, "/var-run"), *path = strjoin(dir, "/var-run/reboot-required"),
                *real_path = strjoin(dir, "/run/reboot-required");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};

        /* /var/run -> /run: the watch goes on the folder the link names. */
        ASSERT_OK(mkdir(real, 0755));
        ASSERT_OK(symlink("run", link));

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        ASSERT_FALSE(sentinel_present(s));

        write_file(real_path, "x");
        run_until(e, &rec, 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);

        ASSERT_OK(unlink(path));
        run_until(e, &rec, 2, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_FALSE(rec.present);

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(folder_created_later_and_removed) {
        _cleanup_free_ char *dir = make_tmpdir(), *sub = strjoin(dir, "/later"),
                *path = strjoin(dir, "/later/reboot-required");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};
        usec_t t0;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        ASSERT_FALSE(sentinel_present(s));
        sentinel_set_recheck_interval(s, 50 * USEC_PER_MSEC);

        /* The folder appears: the timer notices and puts the watch on it. */
        ASSERT_OK(mkdir(sub, 0755));
        run_idle(e, 200 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 0);

        /* From now on inotify, not the timer: with the timer at an hour (were it still polling, it
         * would be re-armed to that), the file is still seen within one loop iteration. */
        sentinel_set_recheck_interval(s, USEC_PER_HOUR);
        t0 = now_usec(CLOCK_MONOTONIC);
        write_file(path, "x");
        ASSERT_OK(sd_event_run(e, 2 * USEC_PER_SEC));
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);
        fprintf(stderr, "    latency in a folder created later: %llu us\n",
                (unsigned long long) (rec.at_usec - t0));

        /* The folder goes away with the file in it: absent, and back to the timer. */
        rm_rf(sub);
        run_until(e, &rec, 2, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_FALSE(rec.present);
        sentinel_set_recheck_interval(s, 50 * USEC_PER_MSEC);
        run_idle(e, 120 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 2);

        /* The folder comes back together with the file: the timer's look finds it. */
        ASSERT_OK(mkdir(sub, 0755));
        write_file(path, "x");
        run_until(e, &rec, 3, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 3);
        ASSERT_TRUE(rec.present);

        /* And the new folder is watched by inotify again. */
        sentinel_set_recheck_interval(s, USEC_PER_HOUR);
        ASSERT_OK(unlink(path));
        ASSERT_OK(sd_event_run(e, 2 * USEC_PER_SEC));
        ASSERT_EQ(rec.calls, 4);
        ASSERT_FALSE(rec.present);

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(folder_renamed_away) {
        _cleanup_free_ char *dir = make_tmpdir(), *sub = strjoin(dir, "/run"),
                *away = strjoin(dir, "/old-run"), *path = strjoin(dir, "/run/reboot-required"),
                *away_path = strjoin(dir, "/old-run/reboot-required");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};

        ASSERT_OK(mkdir(sub, 0755));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));
        sentinel_set_recheck_interval(s, 50 * USEC_PER_MSEC);

        /* The watched folder moves (IN_MOVE_SELF): what happens in it no longer matters... */
        ASSERT_OK(rename(sub, away));
        run_idle(e, 100 * USEC_PER_MSEC);
        write_file(away_path, "x");
        run_idle(e, 100 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 0);

        /* ...and a new folder under the name is found and watched. */
        ASSERT_OK(mkdir(sub, 0755));
        run_idle(e, 150 * USEC_PER_MSEC);
        write_file(path, "x");
        run_until(e, &rec, 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(free_from_handler) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required");
        Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = { .free_in_handler = true };

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 0, on_change, &rec));

        /* The handler frees the watcher while later events for it are still queued. */
        write_file(path, "x");
        ASSERT_OK(unlink(path));
        write_file(path, "x");
        run_idle(e, 100 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 1);

        sd_event_unref(e);
        rm_rf(dir);
}

TEST(invalid_paths) {
        sd_event *e = NULL;
        Sentinel *s = NULL;
        Record rec = {};

        ASSERT_OK(sd_event_new(&e));
        ASSERT_ERROR(sentinel_new(&s, e, "", 0, on_change, &rec), EINVAL);
        ASSERT_ERROR(sentinel_new(&s, e, "/run/", 0, on_change, &rec), EINVAL);
        ASSERT_ERROR(sentinel_new(&s, e, "/run/..", 0, on_change, &rec), EINVAL);
        ASSERT_TRUE(s == NULL);
        sd_event_unref(e);
}

TEST(read_reason) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required"),
                *pkgs = strjoin(dir, "/reboot-required.pkgs");
        char *reason = (char *) 1;

        /* No list: no reason, not an error. */
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_TRUE(reason == NULL);

        /* As update-notifier appends: one package a line, duplicates, blank lines, spaces. */
        write_file(pkgs, "linux-image-6.1.0-28-amd64\n\nlibc6\n  linux-image-6.1.0-28-amd64  \r\n"
                         "libc6\n\t\ndbus\n");
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_STREQ(reason, "linux-image-6.1.0-28-amd64, libc6, dbus");
        reason = mfree(reason);

        /* No newline at the end. */
        write_file(pkgs, "libssl3");
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_STREQ(reason, "libssl3");
        reason = mfree(reason);

        /* Only blank lines: no package named, no reason. */
        write_file(pkgs, "\n \n\n");
        reason = (char *) 1;
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_TRUE(reason == NULL);

        /* A control character, binary junk or invalid UTF-8 never reaches the reason: such lines
         * are not package names, and are counted. */
        write_file(pkgs, "evil\033[2Jname\nlibc6:amd64\n\xff\xfe\x80junk\nCaps\nx\n-dash\nlibstdc++6\n"
                         "python3.11\nlib\xc3\xa9\nfoo:\nfoo:AMD64\n");
        unsigned n_invalid = 0;
        ASSERT_OK(sentinel_read_reason(path, &reason, &n_invalid));
        ASSERT_STREQ(reason, "libc6:amd64, libstdc++6, python3.11");
        ASSERT_EQ(n_invalid, 8);
        reason = mfree(reason);

        /* A folder under the name is refused, not read. */
        ASSERT_OK(unlink(pkgs));
        ASSERT_OK(mkdir(pkgs, 0755));
        ASSERT_TRUE(sentinel_read_reason(path, &reason, NULL) < 0);
        ASSERT_OK(rmdir(pkgs));

        rm_rf(dir);
}

TEST(package_names) {
        ASSERT_TRUE(sentinel_package_name_is_valid("libc6"));
        ASSERT_TRUE(sentinel_package_name_is_valid("g++"));
        ASSERT_TRUE(sentinel_package_name_is_valid("0ad"));
        ASSERT_TRUE(sentinel_package_name_is_valid("linux-image-6.1.0-28-amd64"));
        ASSERT_TRUE(sentinel_package_name_is_valid("libc6:i386"));
        ASSERT_TRUE(sentinel_package_name_is_valid("libgcc-s1:arm64"));
        ASSERT_FALSE(sentinel_package_name_is_valid(NULL));
        ASSERT_FALSE(sentinel_package_name_is_valid(""));
        ASSERT_FALSE(sentinel_package_name_is_valid("a"));
        ASSERT_FALSE(sentinel_package_name_is_valid("-a"));
        ASSERT_FALSE(sentinel_package_name_is_valid("+a"));
        ASSERT_FALSE(sentinel_package_name_is_valid("Libc6"));
        ASSERT_FALSE(sentinel_package_name_is_valid("lib c6"));
        ASSERT_FALSE(sentinel_package_name_is_valid("libc6_2.36"));
        ASSERT_FALSE(sentinel_package_name_is_valid("libc6:"));
        ASSERT_FALSE(sentinel_package_name_is_valid("libc6:-x"));
        ASSERT_FALSE(sentinel_package_name_is_valid("libc6:amd64:x"));
        ASSERT_FALSE(sentinel_package_name_is_valid("caf\xc3\xa9"));
}

/* unattended-upgrades' kernel hook touches the sentinel, then appends the package: the sentinel
 * counts only once it has existed for the settle time, and a touch meanwhile changes nothing. */
TEST(settles) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required");
        _cleanup_(sentinel_freep) Sentinel *s = NULL;
        sd_event *e = NULL;
        Record rec = {};
        usec_t t0;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_new(&s, e, path, 300 * USEC_PER_MSEC, on_change, &rec));

        t0 = now_usec(CLOCK_MONOTONIC);
        write_file(path, "");
        run_idle(e, 150 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 0);
        ASSERT_FALSE(sentinel_present(s));
        write_file(path, "touched again\n");
        run_until(e, &rec, 1, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 1);
        ASSERT_TRUE(rec.present);
        ASSERT_TRUE(rec.at_usec - t0 >= 300 * USEC_PER_MSEC);
        ASSERT_TRUE(rec.at_usec - t0 < 1000 * USEC_PER_MSEC);

        ASSERT_OK(unlink(path));
        run_until(e, &rec, 2, 2 * USEC_PER_SEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_FALSE(rec.present);

        /* Gone again before it settled: it never counted, no call at all. */
        write_file(path, "");
        run_idle(e, 100 * USEC_PER_MSEC);
        ASSERT_OK(unlink(path));
        run_idle(e, 500 * USEC_PER_MSEC);
        ASSERT_EQ(rec.calls, 2);
        ASSERT_FALSE(sentinel_present(s));

        s = sentinel_free(s);

        /* Already there at start: counts at once (see sentinel_new()). */
        write_file(path, "");
        ASSERT_OK(sentinel_new(&s, e, path, 10 * USEC_PER_SEC, on_change, &rec));
        ASSERT_TRUE(sentinel_present(s));

        s = sentinel_free(s);
        sd_event_unref(e);
        rm_rf(dir);
}

TEST(read_reason_caps) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = strjoin(dir, "/reboot-required"),
                *pkgs = strjoin(dir, "/reboot-required.pkgs"), *content = NULL, *reason = NULL;
        size_t n = 0;
        FILE *f;

        /* 60 distinct packages, each listed twice: 50 named, 10 counted. */
        f = open_memstream(&content, &n);
        ASSERT_TRUE(f);
        for (int round = 0; round < 2; round++)
                for (int i = 0; i < 60; i++)
                        fprintf(f, "pkg%02d\n", i);
        ASSERT_OK(fclose(f));
        write_file(pkgs, content);
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_TRUE(startswith(reason, "pkg00, pkg01, "));
        ASSERT_TRUE(endswith(reason, ", pkg49, and 10 more"));
        ASSERT_TRUE(strstr(reason, "pkg50") == NULL);
        content = mfree(content);
        reason = mfree(reason);

        /* A huge file: only the first 64 KiB are read, and the line cut there is dropped. */
        f = open_memstream(&content, &n);
        ASSERT_TRUE(f);
        for (int i = 0; i < 20000; i++)
                fprintf(f, "package-%05d\n", i);   /* 14 bytes a line: 280 000 bytes */
        ASSERT_OK(fclose(f));
        write_file(pkgs, content);
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        /* 65536 / 14 = 4681 whole lines, the 4682nd is cut. */
        ASSERT_TRUE(endswith(reason, ", and 4631 more"));
        content = mfree(content);
        reason = mfree(reason);

        /* Long names: the reason stops at 1 KiB, whole names only, and counts the rest. */
        f = open_memstream(&content, &n);
        ASSERT_TRUE(f);
        for (int i = 0; i < 40; i++)
                fprintf(f, "linux-headers-6.1.0-28-cloud-amd64-with-a-long-suffix-%02d\n", i);
        ASSERT_OK(fclose(f));
        write_file(pkgs, content);
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_TRUE(strlen(reason) < SENTINEL_REASON_MAX);
        ASSERT_TRUE(strlen(reason) > SENTINEL_REASON_MAX - 100);
        ASSERT_TRUE(startswith(reason, "linux-headers-6.1.0-28-cloud-amd64-with-a-long-suffix-00, "));
        ASSERT_TRUE(endswith(reason, " more"));
        ASSERT_TRUE(strstr(reason, "suffix-39") == NULL);
        content = mfree(content);
        reason = mfree(reason);

        /* A NUL in junk does not hide the names after it. */
        write_raw(pkgs, "libc6\n\0\0junk\0dbus\n", 17);
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_STREQ(reason, "libc6, junk, dbus");
        reason = mfree(reason);

        /* One 1 MiB line: not a package name (too long), and nothing else is read. */
        content = malloc(1024 * 1024 + 1);
        ASSERT_TRUE(content);
        memset(content, 'a', 1024 * 1024);
        content[1024 * 1024] = 0;
        write_file(pkgs, content);
        reason = (char *) 1;
        ASSERT_OK(sentinel_read_reason(path, &reason, NULL));
        ASSERT_TRUE(reason == NULL);

        rm_rf(dir);
}

int main(void) {
        RUN(created_and_removed);
        RUN(renamed_into_place);
        RUN(present_at_start);
        RUN(symlinked_folder);
        RUN(folder_created_later_and_removed);
        RUN(folder_renamed_away);
        RUN(free_from_handler);
        RUN(invalid_paths);
        RUN(read_reason);
        RUN(read_reason_caps);
        RUN(package_names);
        RUN(settles);
        return 0;
}
