/* SPDX-License-Identifier: Apache-2.0 */
/* The state file: every field survives a save and a load; a missing file is idle; anything the
 * daemon cannot understand is moved aside intact with a loud error naming the field, and the
 * daemon starts from idle; a file from a newer nodereboot is left alone; saving leaves no
 * temporary files, and a crash's leftover temporary file does not disturb loading. */

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "json-util.h"
#include "macro.h"
#include "state-file.h"
#include "string-util.h"
#include "capture.h"
#include "tests.h"

static char *test_root;

/* A fresh empty folder per test, inside test_root. */
static char *make_dir(void) {
        static unsigned n;
        char *d = strdup_printf("%s/%u", test_root, n++);

        ASSERT_TRUE(d);
        ASSERT_OK(mkdir(d, 0755));
        return d;
}

static void remove_dir(char *d) {
        DIR *dir = opendir(d);
        struct dirent *de;

        ASSERT_TRUE(dir);
        while ((de = readdir(dir))) {
                _cleanup_free_ char *p = NULL;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                p = strjoin(d, "/", de->d_name);
                ASSERT_TRUE(p);
                if (unlink(p) < 0)
                        ASSERT_OK(rmdir(p));
        }
        closedir(dir);
        ASSERT_OK(rmdir(d));
        free(d);
}

static void write_raw(const char *dir, const char *name, const void *data, size_t size) {
        _cleanup_free_ char *p = strjoin(dir, "/", name);
        _cleanup_close_ int fd = -EBADF;

        ASSERT_TRUE(p);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, data, size), (ssize_t) size);
}

static void write_text(const char *dir, const char *name, const char *text) {
        write_raw(dir, name, text, strlen(text));
}

static bool file_exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = strjoin(dir, "/", name);

        ASSERT_TRUE(p);
        return access(p, F_OK) >= 0;
}

/* The names in dir starting with prefix; asserts there are exactly n and returns the first. */
static char *only_entry(const char *dir, const char *prefix, unsigned n) {
        DIR *d = opendir(dir);
        struct dirent *de;
        char *found = NULL;
        unsigned count = 0;

        ASSERT_TRUE(d);
        while ((de = readdir(d)))
                if (startswith(de->d_name, prefix)) {
                        count++;
                        if (!found) {
                                found = strdup(de->d_name);
                                ASSERT_TRUE(found);
                        }
                }
        closedir(d);
        if (count != n)
                fprintf(stderr, "%u entries with prefix %s in %s, expected %u\n", count, prefix, dir, n);
        ASSERT_EQ(count, n);
        return found;
}

static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        ASSERT_TRUE(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static char *read_back(const char *dir, const char *name, size_t *ret_size) {
        _cleanup_free_ char *p = strjoin(dir, "/", name);
        char *text;

        ASSERT_TRUE(p);
        ASSERT_OK(read_full_file(p, 1024 * 1024, &text, ret_size));
        return text;
}

static void assert_contains(const char *haystack, const char *needle) {
        if (!strstr(haystack, needle)) {
                fprintf(stderr, "\"%s\" does not contain \"%s\"\n", haystack, needle);
                abort();
        }
}

static void assert_idle(const RebootState *s) {
        ASSERT_EQ(s->phase, REBOOT_PHASE_IDLE);
        ASSERT_EQ(s->rollback_to, REBOOT_PHASE_IDLE);
        ASSERT_TRUE(!s->lease);
        ASSERT_FALSE(s->cordoned);
        ASSERT_FALSE(s->node_was_unschedulable);
        ASSERT_FALSE(s->drained);
        ASSERT_STREQ(s->boot_id, "");
        ASSERT_EQ(s->reboot_attempts, 0);
        ASSERT_EQ(s->failed_cycles, 0);
        ASSERT_TRUE(s->phase_since == 0);
        ASSERT_TRUE(s->pending_since == 0);
        ASSERT_TRUE(s->retry_after == 0);
        ASSERT_TRUE(!s->reason);
        ASSERT_TRUE(!s->last_error);
}

static void assert_state_equal(const RebootState *a, const RebootState *b) {
        ASSERT_EQ(a->phase, b->phase);
        ASSERT_EQ(a->rollback_to, b->rollback_to);
        ASSERT_TRUE(streq_ptr(a->lease, b->lease));
        ASSERT_TRUE(streq_ptr(a->lease_machine_id, b->lease_machine_id));
        ASSERT_EQ(a->cordoned, b->cordoned);
        ASSERT_EQ(a->node_was_unschedulable, b->node_was_unschedulable);
        ASSERT_EQ(a->drained, b->drained);
        ASSERT_STREQ(a->boot_id, b->boot_id);
        ASSERT_EQ(a->reboot_attempts, b->reboot_attempts);
        ASSERT_EQ(a->failed_cycles, b->failed_cycles);
        ASSERT_TRUE(a->phase_since == b->phase_since);
        ASSERT_TRUE(a->pending_since == b->pending_since);
        ASSERT_TRUE(a->retry_after == b->retry_after);
        ASSERT_TRUE(streq_ptr(a->reason, b->reason));
        ASSERT_TRUE(streq_ptr(a->last_error, b->last_error));
        ASSERT_TRUE(streq_ptr(a->kernel_before, b->kernel_before));
        ASSERT_TRUE(streq_ptr(a->kernel_after, b->kernel_after));
        ASSERT_EQ(a->stats.reboots, b->stats.reboots);
        ASSERT_EQ(a->stats.failed_cycles, b->stats.failed_cycles);
        ASSERT_TRUE(a->stats.last_reboot == b->stats.last_reboot);
        ASSERT_TRUE(a->stats.last_lock_wait == b->stats.last_lock_wait);
        ASSERT_TRUE(a->stats.last_drain == b->stats.last_drain);
}

/* A state with every field away from its default. */
static void make_full_state(RebootState *s) {
        reboot_state_init(s);
        s->phase = REBOOT_PHASE_ROLLING_BACK;
        s->rollback_to = REBOOT_PHASE_PENDING;
        s->lease = strdup("nodereboot-1");
        s->lease_machine_id = strdup("3d1219c7c4c5404aaa1f6d2a48adfda4");
        s->cordoned = true;
        s->node_was_unschedulable = true;
        s->drained = true;
        strcpy(s->boot_id, "0123456789abcdef0123456789abcdef");
        s->reboot_attempts = 3;
        s->failed_cycles = UINT_MAX;
        ASSERT_OK(parse_rfc3339("2026-11-27T10:02:03.123456Z", &s->phase_since));
        s->pending_since = 1;
        s->retry_after = USEC_INFINITY;
        s->reason = strdup("linux-image-6.1.0-28-amd64 \"quoted\" back\\slash/ü\nsecond line\ttab");
        s->last_error = strdup("drain timed out: pod kube-system/coredns-5d78c9869d-abcde");
        s->kernel_before = strdup("6.1.0-13-amd64");
        s->kernel_after = strdup("6.1.0-28-amd64");
        ASSERT_TRUE(s->kernel_before && s->kernel_after);
        s->stats.reboots = 17;
        s->stats.failed_cycles = UINT_MAX;
        ASSERT_OK(parse_rfc3339("2026-11-27T09:58:01.5Z", &s->stats.last_reboot));
        s->stats.last_lock_wait = 3 * USEC_PER_HOUR + 7 * USEC_PER_MSEC;
        s->stats.last_drain = 1 * USEC_PER_MSEC;
        ASSERT_TRUE(s->lease && s->lease_machine_id && s->reason && s->last_error);
}

/* The JSON of a full state as a json-c object, to tamper with one member. */
static json_object *full_state_object(void) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *text = NULL;
        json_object *o;

        make_full_state(&s);
        ASSERT_OK(state_to_json(&s, &text));
        ASSERT_OK(json_parse(text, strlen(text), &o));
        return o;
}

TEST(round_trip_every_field) {
        _cleanup_(reboot_state_done) RebootState s, t, u;
        _cleanup_free_ char *text = NULL, *error = NULL;
        char *dir = make_dir();
        struct stat st;
        _cleanup_free_ char *path = strjoin(dir, "/state");

        make_full_state(&s);
        reboot_state_init(&t);
        reboot_state_init(&u);

        /* The pure halves. */
        ASSERT_OK(state_to_json(&s, &text));
        assert_contains(text, "\"version\": 1");
        assert_contains(text, "\"phase\": \"rolling-back\"");
        assert_contains(text, "\"phase_since\": \"2026-11-27T10:02:03.123456Z\"");
        assert_contains(text, "\"pending_since\": \"1970-01-01T00:00:00.000001Z\"");
        assert_contains(text, "\"retry_after\": \"infinity\"");
        assert_contains(text, "\"reboots_total\": 17");
        assert_contains(text, "\"last_reboot\": \"2026-11-27T09:58:01.500000Z\"");
        assert_contains(text, "\"last_lock_wait_ms\": 10800007");
        assert_contains(text, "\"last_drain_ms\": 1");
        ASSERT_OK(state_from_json(text, strlen(text), &t, &error));
        ASSERT_TRUE(!error);
        assert_state_equal(&s, &t);

        /* Through the file. */
        ASSERT_OK(state_file_save(dir, &s));
        ASSERT_OK(state_file_load(dir, &u));
        assert_state_equal(&s, &u);
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0644);
        ASSERT_TRUE(S_ISREG(st.st_mode));

        remove_dir(dir);
}

TEST(round_trip_every_phase) {
        char *dir = make_dir();

        for (RebootPhase p = 0; p < _REBOOT_PHASE_MAX; p++)
                for (RebootPhase rb = REBOOT_PHASE_IDLE; rb <= REBOOT_PHASE_PENDING; rb++) {
                        _cleanup_(reboot_state_done) RebootState s, t;

                        reboot_state_init(&s);
                        reboot_state_init(&t);
                        s.phase = p;
                        s.rollback_to = rb;
                        s.reboot_attempts = (unsigned) p;
                        s.phase_since = 1764237723000000ULL + p;
                        ASSERT_OK(state_file_save(dir, &s));
                        ASSERT_OK(state_file_load(dir, &t));
                        assert_state_equal(&s, &t);
                }
        remove_dir(dir);
}

TEST(round_trip_idle_writes_nulls) {
        _cleanup_(reboot_state_done) RebootState s, t;
        _cleanup_free_ char *text = NULL;

        reboot_state_init(&s);
        reboot_state_init(&t);
        ASSERT_OK(state_to_json(&s, &text));
        assert_contains(text, "\"lease\": null");
        assert_contains(text, "\"phase_since\": null");
        assert_contains(text, "\"reason\": null");
        assert_contains(text, "\"boot_id\": \"\"");
        ASSERT_OK(state_from_json(text, strlen(text), &t, NULL));
        assert_idle(&t);
}

TEST(missing_file_is_idle) {
        _cleanup_(reboot_state_done) RebootState s;
        char *dir = make_dir();
        _cleanup_free_ char *nowhere = strjoin(dir, "/does-not-exist");

        /* A state left over in ret is replaced by idle. */
        make_full_state(&s);
        ASSERT_EQ(state_file_load(dir, &s), 0);
        assert_idle(&s);
        ASSERT_EQ(count_entries(dir), 0);

        ASSERT_EQ(state_file_load(nowhere, &s), 0);
        assert_idle(&s);
        remove_dir(dir);
}

TEST(omitted_and_null_read_alike) {
        static const char *const texts[] = {
                "{\"version\": 1, \"phase\": \"pending\"}",
                "{\"version\": 1, \"phase\": \"pending\", \"rollback_to\": null, \"lease\": null, "
                "\"cordoned\": null, \"node_was_unschedulable\": null, \"drained\": null, \"boot_id\": null, "
                "\"reboot_attempts\": null, \"failed_cycles\": null, \"phase_since\": null, "
                "\"pending_since\": null, \"retry_after\": null, \"reason\": null, \"last_error\": null}",
                /* unknown members are ignored */
                "  {\"phase\": \"pending\", \"version\": 1, \"from_the_future_but_same_version\": [1, 2]}\n\n",
        };
        char *dir = make_dir();

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(reboot_state_done) RebootState s;
                _cleanup_free_ char *error = NULL;

                reboot_state_init(&s);
                ASSERT_OK(state_from_json(texts[i], strlen(texts[i]), &s, &error));
                ASSERT_TRUE(!error);
                ASSERT_EQ(s.phase, REBOOT_PHASE_PENDING);
                s.phase = REBOOT_PHASE_IDLE;
                assert_idle(&s);

                write_text(dir, "state", texts[i]);
                reboot_state_done(&s);
                ASSERT_OK(state_file_load(dir, &s));
                ASSERT_EQ(s.phase, REBOOT_PHASE_PENDING);
                ASSERT_EQ(count_entries(dir), 1);
        }
        remove_dir(dir);
}

TEST(timestamps_with_offsets) {
        _cleanup_(reboot_state_done) RebootState s;
        const char *text = "{\"version\": 1, \"phase\": \"pending\", \"pending_since\": \"2026-11-27T11:02:03.5+01:00\"}";
        usec_t want;

        reboot_state_init(&s);
        ASSERT_OK(state_from_json(text, strlen(text), &s, NULL));
        ASSERT_OK(parse_rfc3339("2026-11-27T10:02:03.500000Z", &want));
        ASSERT_TRUE(s.pending_since == want);
}

/* Writes content as the state file, loads it, and checks the whole corrupt-file contract. */
static void check_corrupt(const char *dir, const void *content, size_t size, const char *expect_in_log) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *log = NULL, *moved = NULL, *back = NULL, *path = NULL;
        size_t back_size;
        Capture c;
        int r;

        write_raw(dir, "state", content, size);

        /* Whatever ret held is replaced by idle. */
        make_full_state(&s);
        capture_begin(&c);
        r = state_file_load(dir, &s);
        log = capture_end(&c);
        if (r != -EBADMSG)
                fprintf(stderr, "load returned %d for \"%.*s\", log: %s\n", r, (int) MIN(size, 200), (const char *) content, log);
        ASSERT_ERROR(r, EBADMSG);
        assert_idle(&s);

        /* Moved aside, not deleted, content intact. */
        ASSERT_FALSE(file_exists(dir, "state"));
        moved = only_entry(dir, "state.corrupt-", 1);
        ASSERT_EQ(strlen(moved), strlen("state.corrupt-20261127T100203"));
        ASSERT_TRUE(moved[strlen("state.corrupt-") + 8] == 'T');
        for (size_t i = strlen("state.corrupt-"); moved[i]; i++)
                ASSERT_TRUE(moved[i] == 'T' || (moved[i] >= '0' && moved[i] <= '9'));
        back = read_back(dir, moved, &back_size);
        ASSERT_EQ(back_size, size);
        ASSERT_TRUE(size == 0 || memcmp(back, content, size) == 0);

        /* A loud error naming the file, what was wrong, and where it went. */
        path = strjoin(dir, "/state");
        assert_contains(log, path);
        assert_contains(log, "corrupt");
        assert_contains(log, moved);
        assert_contains(log, expect_in_log);

        /* The next start finds no state file: idle, quietly. */
        reboot_state_done(&s);
        ASSERT_EQ(state_file_load(dir, &s), 0);
        assert_idle(&s);

        {
                _cleanup_free_ char *m = strjoin(dir, "/", moved);
                ASSERT_OK(unlink(m));
        }
}

TEST(corrupt_invalid_json) {
        static const struct {
                const char *text;
                const char *expect;
        } cases[] = {
                { "", "invalid JSON" },
                { "\n", "invalid JSON" },
                { "{\"version\": 1, \"phase\": }", "invalid JSON" },
                { "{\"version\": 1, \"phase\": \"idle\"", "invalid JSON" },
                { "{\"version\": 1, \"phase\": \"idle\"}}", "invalid JSON" },
                { "{\"version\": 1, \"phase\": \"idle\"} {}", "invalid JSON" },
                { "version=1\nphase=idle\n", "invalid JSON" },
                { "[]", "JSON object" },
                { "[{\"version\": 1, \"phase\": \"idle\"}]", "JSON object" },
                { "\"idle\"", "JSON object" },
                { "null", "the value is null" },
                { "true", "JSON object" },
        };
        char *dir = make_dir();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_corrupt(dir, cases[i].text, strlen(cases[i].text), cases[i].expect);

        /* Binary: the zero-filled file a crash can leave on some file systems, a valid object with
         * NULs after it, and random bytes. */
        {
                char zeros[512] = {};
                const char valid_then_nul[] = "{\"version\": 1, \"phase\": \"idle\"}\n\0\0\0";
                const unsigned char garbage[] = { 0x7f, 'E', 'L', 'F', 0xff, 0xfe, 0x00, 0x01, '{' };

                check_corrupt(dir, zeros, sizeof zeros, "invalid JSON");
                check_corrupt(dir, valid_then_nul, sizeof valid_then_nul - 1, "invalid JSON");
                check_corrupt(dir, garbage, sizeof garbage, "invalid JSON");
        }
        remove_dir(dir);
}

TEST(corrupt_truncated) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *text = NULL;
        char *dir = make_dir();
        size_t n;

        make_full_state(&s);
        ASSERT_OK(state_to_json(&s, &text));
        n = strlen(text);
        ASSERT_TRUE(n > 100);
        ASSERT_TRUE(text[n - 1] == '\n' && text[n - 2] == '}');

        /* Every cut short of the closing brace is a truncated file. */
        for (size_t len = 1; len <= n - 2; len++)
                check_corrupt(dir, text, len, "invalid JSON");
        remove_dir(dir);
}

TEST(corrupt_wrong_fields) {
        static const struct {
                const char *field;
                const char *value;      /* JSON text; NULL removes the member */
                const char *expect;
        } cases[] = {
                { "version", NULL, "missing" },
                { "version", "\"1\"", "expected the number 1" },
                { "version", "1.0", "expected the number 1" },
                { "version", "0", "expected the number 1" },
                { "version", "-3", "expected the number 1" },
                { "version", "null", "expected the number 1" },
                { "phase", NULL, "missing" },
                { "phase", "3", "\"rolling-back\"" },
                { "phase", "\"exploding\"", "got \"exploding\"" },
                { "phase", "\"Idle\"", "one of \"idle\"" },
                { "phase", "null", "one of" },
                { "rollback_to", "true", "\"pending\"" },
                { "rollback_to", "\"draining\"", "got \"draining\"" },
                { "rollback_to", "\"later\"", "got \"later\"" },
                { "lease", "5", "a string or null" },
                { "lease", "[\"nodereboot-0\"]", "a string or null" },
                { "lease", "\"node\\u0000reboot-0\"", "without NUL" },
                { "lease_machine_id", "7", "a string or null" },
                { "lease_machine_id", "\"\"", "a machine ID" },
                { "lease_machine_id", "\"a b\"", "a machine ID" },
                { "cordoned", "\"yes\"", "true or false" },
                { "cordoned", "1", "true or false" },
                { "node_was_unschedulable", "0", "true or false" },
                { "drained", "\"false\"", "true or false" },
                { "boot_id", "123", "32 lowercase hexadecimal" },
                { "boot_id", "\"0123456789ABCDEF0123456789ABCDEF\"", "32 lowercase hexadecimal" },
                { "boot_id", "\"0123456789abcdef0123456789abcde\"", "32 lowercase hexadecimal" },
                { "boot_id", "\"0123456789abcdef0123456789abcdef0\"", "32 lowercase hexadecimal" },
                { "boot_id", "\"0123456789abcdef0123456789abcdeg\"", "32 lowercase hexadecimal" },
                { "boot_id", "\"01234567-89ab-cdef-0123-456789abcdef\"", "32 lowercase hexadecimal" },
                { "reboot_attempts", "\"3\"", "whole number" },
                { "reboot_attempts", "-1", "whole number" },
                { "reboot_attempts", "4294967296", "whole number" },
                { "reboot_attempts", "1.5", "whole number" },
                { "failed_cycles", "true", "whole number" },
                { "phase_since", "12345", "RFC 3339" },
                { "phase_since", "\"yesterday\"", "got \"yesterday\"" },
                { "pending_since", "\"2026-13-01T00:00:00Z\"", "RFC 3339" },
                { "pending_since", "\"2026-11-27 10:02\"", "RFC 3339" },
                { "retry_after", "true", "RFC 3339" },
                { "kernel_before", "5", "a string or null" },
                { "kernel_after", "[\"6.1\"]", "a string or null" },
                { "reboots_total", "\"3\"", "whole number" },
                { "reboots_total", "-1", "whole number" },
                { "cycles_failed_total", "4294967296", "whole number" },
                { "last_reboot", "1764237483", "RFC 3339" },
                { "last_lock_wait_ms", "-5", "milliseconds" },
                { "last_lock_wait_ms", "2.5", "milliseconds" },
                { "last_drain_ms", "\"30s\"", "milliseconds" },
                { "last_drain_ms", "9007199254740993", "milliseconds" },
                { "retry_after", "\"10000-01-01T00:00:00Z\"", "RFC 3339" },
                { "reason", "[\"linux-image\"]", "a string or null" },
                { "last_error", "{}", "a string or null" },
        };
        char *dir = make_dir();

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_object *o = full_state_object();
                _cleanup_(reboot_state_done) RebootState s;
                _cleanup_free_ char *error = NULL, *expect_field = NULL;
                const char *text;

                if (cases[i].value) {
                        json_object *v = NULL;
                        if (!streq(cases[i].value, "null"))
                                ASSERT_OK(json_parse(cases[i].value, strlen(cases[i].value), &v));
                        ASSERT_OK(json_object_object_add(o, cases[i].field, v));
                } else
                        json_object_object_del(o, cases[i].field);
                text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
                ASSERT_TRUE(text);

                /* The pure half says which field and what it expected. */
                reboot_state_init(&s);
                ASSERT_ERROR(state_from_json(text, strlen(text), &s, &error), EBADMSG);
                ASSERT_TRUE(error);
                expect_field = strdup_printf("field \"%s\"", cases[i].field);
                assert_contains(error, expect_field);
                assert_contains(error, cases[i].expect);
                assert_idle(&s);
                /* ... and works without an error pointer. */
                ASSERT_ERROR(state_from_json(text, strlen(text), &s, NULL), EBADMSG);

                /* The file is moved aside, and the log says the same. */
                check_corrupt(dir, text, strlen(text), expect_field);
        }
        remove_dir(dir);
}

TEST(corrupt_too_large) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *reason = NULL, *text = NULL;
        char *dir = make_dir();

        /* Just under the cap: fine. */
        reboot_state_init(&s);
        reason = malloc(60 * 1024);
        ASSERT_TRUE(reason);
        memset(reason, 'x', 60 * 1024 - 1);
        reason[60 * 1024 - 1] = 0;
        s.reason = strdup(reason);
        ASSERT_OK(state_file_save(dir, &s));
        reboot_state_done(&s);
        ASSERT_OK(state_file_load(dir, &s));
        ASSERT_STREQ(s.reason, reason);

        /* Over it: corrupt, even though it is valid JSON. */
        text = strdup_printf("{\"version\": 1, \"phase\": \"idle\", \"reason\": \"%s%s\"}", reason, reason);
        ASSERT_TRUE(text);
        check_corrupt(dir, text, strlen(text), "larger than 64 KiB");
        remove_dir(dir);
}

TEST(corrupt_name_taken) {
        const char *bad = "{\"version\": 1, \"phase\": \"exploding\"}";
        char *dir = make_dir();
        time_t now = time(NULL);
        _cleanup_free_ char *moved = NULL;
        unsigned ours = 0;
        DIR *d;
        struct dirent *de;

        /* Earlier corrupt files for this second and the next two: none is replaced. */
        for (int i = 0; i < 3; i++) {
                char name[64], stamp[32];
                time_t t = now + i;
                struct tm tm;

                ASSERT_TRUE(gmtime_r(&t, &tm));
                ASSERT_TRUE(strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm) > 0);
                snprintf(name, sizeof name, "state.corrupt-%s", stamp);
                write_text(dir, name, "earlier");
        }

        for (int round = 0; round < 2; round++) {
                _cleanup_(reboot_state_done) RebootState s;
                Capture c;

                reboot_state_init(&s);
                write_text(dir, "state", bad);
                capture_begin(&c);
                ASSERT_ERROR(state_file_load(dir, &s), EBADMSG);
                free(capture_end(&c));
        }

        ASSERT_FALSE(file_exists(dir, "state"));
        moved = only_entry(dir, "state.corrupt-", 5);
        d = opendir(dir);
        ASSERT_TRUE(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *content = NULL;
                if (!startswith(de->d_name, "state.corrupt-"))
                        continue;
                content = read_back(dir, de->d_name, NULL);
                if (streq(content, bad))
                        ours++;
                else
                        ASSERT_STREQ(content, "earlier");
        }
        closedir(d);
        ASSERT_EQ(ours, 2);
        remove_dir(dir);
}

TEST(newer_version_left_alone) {
        static const char *const texts[] = {
                "{\"version\": 2, \"phase\": \"pending\"}",
                /* everything else may have changed meaning: not judged, not repaired */
                "{\"version\": 2, \"phase\": \"teleporting\", \"cordoned\": \"maybe\", \"boot_id\": 7}",
                "{\"version\": 99999999999, \"state\": {\"phase\": \"idle\"}}",
        };
        char *dir = make_dir();

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                _cleanup_(reboot_state_done) RebootState s;
                _cleanup_free_ char *log = NULL, *back = NULL, *error = NULL;
                Capture c;

                reboot_state_init(&s);
                ASSERT_ERROR(state_from_json(texts[i], strlen(texts[i]), &s, &error), EPROTONOSUPPORT);
                assert_contains(error, "newer");

                write_text(dir, "state", texts[i]);
                capture_begin(&c);
                ASSERT_ERROR(state_file_load(dir, &s), EPROTONOSUPPORT);
                log = capture_end(&c);
                assert_idle(&s);
                assert_contains(log, "newer nodereboot");
                assert_contains(log, dir);

                /* Untouched: same content, nothing moved aside. */
                back = read_back(dir, "state", NULL);
                ASSERT_STREQ(back, texts[i]);
                ASSERT_EQ(count_entries(dir), 1);
        }
        remove_dir(dir);
}

TEST(save_leaves_no_temporary_file) {
        _cleanup_(reboot_state_done) RebootState s, t;
        _cleanup_free_ char *own_tmp = strdup_printf("state.tmp-%d", (int) getpid());
        char *dir = make_dir();

        make_full_state(&s);
        reboot_state_init(&t);
        ASSERT_OK(state_file_save(dir, &s));
        ASSERT_EQ(count_entries(dir), 1);
        ASSERT_TRUE(file_exists(dir, "state"));

        /* Saving again replaces the file. */
        s.phase = REBOOT_PHASE_RECOVERING;
        s.reboot_attempts = 1;
        ASSERT_OK(state_file_save(dir, &s));
        ASSERT_EQ(count_entries(dir), 1);
        ASSERT_OK(state_file_load(dir, &t));
        assert_state_equal(&s, &t);

        /* A leftover from a crash of an earlier process with our PID is overwritten and gone. */
        write_text(dir, own_tmp, "{\"version\": 1, \"pha");
        ASSERT_OK(state_file_save(dir, &s));
        ASSERT_FALSE(file_exists(dir, own_tmp));
        ASSERT_EQ(count_entries(dir), 1);

        remove_dir(dir);
}

TEST(leftover_temporary_file_ignored) {
        _cleanup_(reboot_state_done) RebootState s, t;
        char *dir = make_dir();

        make_full_state(&s);
        reboot_state_init(&t);

        /* Crash before the rename, no state yet: still idle, nothing moved. */
        write_text(dir, "state.tmp-4242", "{\"version\": 1, \"phase\": \"drain");
        ASSERT_EQ(state_file_load(dir, &t), 0);
        assert_idle(&t);

        /* Crash before the rename of a later save: the last complete state wins. */
        ASSERT_OK(state_file_save(dir, &s));
        ASSERT_OK(state_file_load(dir, &t));
        assert_state_equal(&s, &t);
        ASSERT_TRUE(file_exists(dir, "state.tmp-4242"));
        ASSERT_EQ(count_entries(dir), 2);

        remove_dir(dir);
}

TEST(unreadable_is_not_corrupt) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *sub = NULL;
        char *dir = make_dir();

        /* A folder where the file should be cannot be read; that is not corruption, so nothing
         * is renamed. */
        sub = strjoin(dir, "/state");
        ASSERT_OK(mkdir(sub, 0755));
        reboot_state_init(&s);
        ASSERT_ERROR(state_file_load(dir, &s), EISDIR);
        ASSERT_TRUE(file_exists(dir, "state"));
        ASSERT_EQ(count_entries(dir), 1);
        ASSERT_OK(rmdir(sub));

        /* Saving into a folder that does not exist fails. */
        ASSERT_ERROR(state_file_save(sub, &s), ENOENT);
        remove_dir(dir);
}

TEST(refuses_to_write_what_it_cannot_read) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *text = NULL;

        reboot_state_init(&s);
        s.phase = _REBOOT_PHASE_MAX;
        ASSERT_ERROR(state_to_json(&s, &text), EINVAL);

        reboot_state_init(&s);
        s.rollback_to = REBOOT_PHASE_DRAINING;
        ASSERT_ERROR(state_to_json(&s, &text), EINVAL);

        reboot_state_init(&s);
        strcpy(s.boot_id, "0123456789ABCDEF0123456789ABCDEF");
        ASSERT_ERROR(state_to_json(&s, &text), EINVAL);

        reboot_state_init(&s);
        strcpy(s.boot_id, "0123");
        ASSERT_ERROR(state_to_json(&s, &text), EINVAL);

        reboot_state_init(&s);
        s.lease_machine_id = strdup("not/a/machine/id");
        ASSERT_ERROR(state_to_json(&s, &text), EINVAL);
        reboot_state_done(&s);

        reboot_state_init(&s);
        s.retry_after = USEC_INFINITY - 1;
        ASSERT_ERROR(state_to_json(&s, &text), ERANGE);
        ASSERT_TRUE(!text);

        /* Strings that are not UTF-8: the reader refuses them (below), so the writer does. */
        reboot_state_init(&s);
        s.reason = strdup("libc6, caf\xe9");
        ASSERT_ERROR(state_to_json(&s, &text), EBADMSG);
        reboot_state_done(&s);
        reboot_state_init(&s);
        s.last_error = strdup("\xc0\xaf overlong");
        ASSERT_ERROR(state_to_json(&s, &text), EBADMSG);
        reboot_state_done(&s);
        reboot_state_init(&s);
        s.lease = strdup("\xed\xa0\x80 surrogate");
        ASSERT_ERROR(state_to_json(&s, &text), EBADMSG);
        reboot_state_done(&s);
        ASSERT_TRUE(!text);
}

/* A state the loader would move aside as corrupt is never written: the file on disk stays as it
 * was, and loads. */
TEST(save_refuses_and_keeps_the_previous_file) {
        _cleanup_(reboot_state_done) RebootState s, back;
        _cleanup_free_ char *big = NULL;
        char *dir = make_dir();

        reboot_state_init(&s);
        reboot_state_init(&back);
        s.phase = REBOOT_PHASE_PENDING;
        s.reason = strdup("linux-image-6.1.0-28-amd64");
        ASSERT_OK(state_file_save(dir, &s));

        /* Larger than the 64 KiB the loader reads. */
        big = malloc(65 * 1024);
        ASSERT_TRUE(big);
        memset(big, 'x', 65 * 1024 - 1);
        big[65 * 1024 - 1] = 0;
        free(s.reason);
        s.reason = TAKE_PTR(big);
        s.phase = REBOOT_PHASE_LOCKED;
        ASSERT_ERROR(state_file_save(dir, &s), EFBIG);

        /* Invalid UTF-8. */
        free(s.reason);
        s.reason = strdup("pkg \xff\xfe");
        ASSERT_ERROR(state_file_save(dir, &s), EBADMSG);

        ASSERT_EQ(count_entries(dir), 1);
        ASSERT_OK(state_file_load(dir, &back));
        ASSERT_EQ(back.phase, REBOOT_PHASE_PENDING);
        ASSERT_STREQ(back.reason, "linux-image-6.1.0-28-amd64");
        remove_dir(dir);
}

TEST(corrupt_invalid_utf8) {
        char *dir = make_dir();
        static const char text[] = "{\"version\": 1, \"phase\": \"pending\", \"reason\": \"caf\xe9\"}";

        check_corrupt(dir, text, strlen(text), "field \"reason\": expected a string of valid UTF-8");
        remove_dir(dir);
}

int main(void) {
        char tmpl[] = "/tmp/test-state-file-XXXXXX";

        umask(022);
        test_root = mkdtemp(tmpl);
        ASSERT_TRUE(test_root);

        RUN(round_trip_every_field);
        RUN(round_trip_every_phase);
        RUN(round_trip_idle_writes_nulls);
        RUN(missing_file_is_idle);
        RUN(omitted_and_null_read_alike);
        RUN(timestamps_with_offsets);
        RUN(corrupt_invalid_json);
        RUN(corrupt_truncated);
        RUN(corrupt_wrong_fields);
        RUN(corrupt_too_large);
        RUN(corrupt_name_taken);
        RUN(newer_version_left_alone);
        RUN(save_leaves_no_temporary_file);
        RUN(leftover_temporary_file_ignored);
        RUN(unreadable_is_not_corrupt);
        RUN(refuses_to_write_what_it_cannot_read);
        RUN(save_refuses_and_keeps_the_previous_file);
        RUN(corrupt_invalid_utf8);

        ASSERT_OK(rmdir(test_root));
        return 0;
}
