/* SPDX-License-Identifier: Apache-2.0 */
/* <state dir>/state: one JSON object, every field of RebootState, written with write_file_atomic()
 * so a crash leaves either the old or the new file (and at worst a stray state.tmp-<pid>, which
 * nothing reads). Absent values are written as null; on reading, null and a missing member mean
 * the same. Only "version" and "phase" are required; unknown members are ignored. A file that
 * cannot be understood is never deleted: it is renamed to state.corrupt-<UTC time> for a human to
 * look at, and the daemon starts from idle and reconciles with the cluster. A file from a newer
 * nodereboot is left alone: "repairing" it would throw away what the newer version knew. */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "json-util.h"
#include "log.h"
#include "state-file.h"
#include "string-util.h"

#define STATE_FILE_NAME "state"
#define STATE_FILE_SIZE_MAX (64U * 1024U)
#define STATE_FILE_MODE 0644
/* state.corrupt-<time>, then -1 … -999 when several corrupt files are set aside in one second. */
#define CORRUPT_SUFFIX_MAX 1000
/* 9999-12-31T23:59:59.999999Z, the last instant RFC 3339 can write with four year digits. */
#define TIMESTAMP_MAX ((usec_t) 253402300799ULL * USEC_PER_SEC + USEC_PER_SEC - 1)
/* How much of a wrong value an error message quotes. */
#define QUOTE_MAX 64

/* Rolling back ends in pending (a new cycle after the back-off) or idle. */
static bool rollback_phase_is_valid(RebootPhase p) {
        return p == REBOOT_PHASE_IDLE || p == REBOOT_PHASE_PENDING;
}

/* s holds n characters: "" or 32 lowercase hexadecimal digits. */
/* As lock_set_machine_id() takes it: 1..128 of [A-Za-z0-9_.-]. */
static bool machine_id_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 128)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '.' || *p == '-'))
                        return false;
        return true;
}

static bool boot_id_is_valid(const char *s, size_t n) {
        if (n == 0)
                return true;
        if (n != 32)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* json_object_object_add() leaves v to the caller when it fails. NULL v is a JSON null. */
static int json_add(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_add_new(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        return json_add(o, key, v);
}

static int json_add_string_or_null(json_object *o, const char *key, const char *s) {
        return s ? json_add_new(o, key, json_object_new_string(s)) : json_add(o, key, NULL);
}

static int json_add_timestamp(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        if (t == 0)
                return json_add(o, key, NULL);
        if (t == USEC_INFINITY)
                return json_add_new(o, key, json_object_new_string("infinity"));
        if (t > TIMESTAMP_MAX)
                return -ERANGE;
        return json_add_new(o, key, json_object_new_string(format_rfc3339(buf, sizeof buf, t, true)));
}

/* Durations in whole milliseconds; longer than DURATION_MS_MAX (about 285 years) is refused. */
#define DURATION_MS_MAX ((int64_t) 1 << 53)

static int json_add_duration_ms(json_object *o, const char *key, usec_t d) {
        if (d == USEC_INFINITY || d / USEC_PER_MSEC > (usec_t) DURATION_MS_MAX)
                return -ERANGE;
        return json_add_new(o, key, json_object_new_int64((int64_t) (d / USEC_PER_MSEC)));
}

int state_to_json(const RebootState *s, char **ret) {
        _cleanup_json_ json_object *o = NULL;
        const char *phase, *rollback_to, *text;
        char *copy;
        int r;

        if (!s || !ret)
                return -EINVAL;
        /* Never write what state_from_json() would refuse. */
        phase = reboot_phase_to_string(s->phase);
        rollback_to = reboot_phase_to_string(s->rollback_to);
        if (!phase || !rollback_phase_is_valid(s->rollback_to) ||
            !boot_id_is_valid(s->boot_id, strnlen(s->boot_id, sizeof s->boot_id)) ||
            (s->lease_machine_id && !machine_id_is_valid(s->lease_machine_id)))
                return -EINVAL;
        /* The reader refuses strings that are not UTF-8 (they would reach the journal and the
         * Node's annotations from there). */
        if ((s->lease && !utf8_is_valid(s->lease)) || (s->reason && !utf8_is_valid(s->reason)) ||
            (s->last_error && !utf8_is_valid(s->last_error)) ||
            (s->kernel_before && !utf8_is_valid(s->kernel_before)) ||
            (s->kernel_after && !utf8_is_valid(s->kernel_after)))
                return -EBADMSG;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        if ((r = json_add_new(o, "version", json_object_new_int(STATE_FILE_VERSION))) < 0 ||
            (r = json_add_new(o, "phase", json_object_new_string(phase))) < 0 ||
            (r = json_add_new(o, "rollback_to", json_object_new_string(rollback_to))) < 0 ||
            (r = json_add_string_or_null(o, "lease", s->lease)) < 0 ||
            (r = json_add_string_or_null(o, "lease_machine_id", s->lease_machine_id)) < 0 ||
            (r = json_add_new(o, "cordoned", json_object_new_boolean(s->cordoned))) < 0 ||
            (r = json_add_new(o, "node_was_unschedulable", json_object_new_boolean(s->node_was_unschedulable))) < 0 ||
            (r = json_add_new(o, "drained", json_object_new_boolean(s->drained))) < 0 ||
            (r = json_add_new(o, "boot_id", json_object_new_string(s->boot_id))) < 0 ||
            (r = json_add_new(o, "reboot_attempts", json_object_new_int64(s->reboot_attempts))) < 0 ||
            (r = json_add_new(o, "failed_cycles", json_object_new_int64(s->failed_cycles))) < 0 ||
            (r = json_add_timestamp(o, "phase_since", s->phase_since)) < 0 ||
            (r = json_add_timestamp(o, "pending_since", s->pending_since)) < 0 ||
            (r = json_add_timestamp(o, "retry_after", s->retry_after)) < 0 ||
            (r = json_add_string_or_null(o, "reason", s->reason)) < 0 ||
            (r = json_add_string_or_null(o, "last_error", s->last_error)) < 0 ||
            (r = json_add_string_or_null(o, "kernel_before", s->kernel_before)) < 0 ||
            (r = json_add_string_or_null(o, "kernel_after", s->kernel_after)) < 0 ||
            (r = json_add_new(o, "reboots_total", json_object_new_int64(s->stats.reboots))) < 0 ||
            (r = json_add_new(o, "cycles_failed_total", json_object_new_int64(s->stats.failed_cycles))) < 0 ||
            (r = json_add_timestamp(o, "last_reboot", s->stats.last_reboot)) < 0 ||
            (r = json_add_duration_ms(o, "last_lock_wait_ms", s->stats.last_lock_wait)) < 0 ||
            (r = json_add_duration_ms(o, "last_drain_ms", s->stats.last_drain)) < 0 ||
            (r = json_add_new(o, "reboot_loops", json_object_new_int64(s->stats.loops))) < 0 ||
            (r = json_add_timestamp(o, "loop_counted_for", s->stats.loop_counted_for)) < 0 ||
            (r = json_add_timestamp(o, "loop_guard_until", s->stats.loop_guard_until)) < 0)
                return r;

        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        copy = strjoin(text, "\n");
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* Sets *ret_error to 'field "name": expected <what>, got <value>' (or "missing"). */
static void field_error_format(char **ret_error, const char *field, json_object *got, const char *expected) {
        _cleanup_free_ char *quoted = NULL;
        const char *j;

        if (!ret_error)
                return;
        if (!got) {
                *ret_error = strdup_printf("field \"%s\": missing, expected %s", field, expected);
                return;
        }
        j = json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (j && strlen(j) > QUOTE_MAX) {
                int n = QUOTE_MAX;

                /* Do not cut a UTF-8 sequence in half. */
                while (n > 0 && ((unsigned char) j[n] & 0xc0) == 0x80)
                        n--;
                quoted = strdup_printf("%.*s…", n, j);
        } else
                quoted = strdup(strna(j));
        *ret_error = strdup_printf("field \"%s\": expected %s, got %s", field, expected, strna(quoted));
}

/* Returns -EBADMSG from a function small enough to inline, so that the compiler sees that every
 * "return field_error(...)" fails and leaves the output parameters unset. */
static int field_error(char **ret_error, const char *field, json_object *got, const char *expected) {
        field_error_format(ret_error, field, got, expected);
        return -EBADMSG;
}

/* NULL when absent or null; -EBADMSG when not a string or when it holds a NUL character. */
static int get_string(json_object *o, const char *field, const char *expected, const char **ret,
                      char **ret_error) {
        json_object *v = json_get_member(o, field);
        const char *s;

        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return field_error(ret_error, field, v, expected);
        s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return field_error(ret_error, field, v, "a string without NUL characters");
        if (!utf8_is_valid(s)) {
                /* Not quoted: the bytes themselves must not reach the journal. */
                if (ret_error)
                        *ret_error = strdup_printf("field \"%s\": expected a string of valid UTF-8", field);
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

static int get_string_dup(json_object *o, const char *field, char **ret, char **ret_error) {
        const char *s;
        int r;

        r = get_string(o, field, "a string or null", &s, ret_error);
        if (r < 0)
                return r;
        return free_and_strdup(ret, s);
}

static int get_bool(json_object *o, const char *field, bool *ret, char **ret_error) {
        json_object *v = json_get_member(o, field);

        if (!v) {
                *ret = false;
                return 0;
        }
        if (!json_object_is_type(v, json_type_boolean))
                return field_error(ret_error, field, v, "true or false");
        *ret = json_object_get_boolean(v);
        return 0;
}

static int get_unsigned(json_object *o, const char *field, unsigned *ret, char **ret_error) {
        json_object *v = json_get_member(o, field);
        int64_t i;

        if (!v) {
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return field_error(ret_error, field, v, "a whole number from 0 to 4294967295");
        i = json_object_get_int64(v);
        if (i < 0 || i > (int64_t) UINT_MAX)
                return field_error(ret_error, field, v, "a whole number from 0 to 4294967295");
        *ret = (unsigned) i;
        return 0;
}

static int get_duration_ms(json_object *o, const char *field, usec_t *ret, char **ret_error) {
        static const char expected[] = "a whole number of milliseconds from 0 to 9007199254740992";
        json_object *v = json_get_member(o, field);
        int64_t i;

        if (!v) {
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return field_error(ret_error, field, v, expected);
        i = json_object_get_int64(v);
        if (i < 0 || i > DURATION_MS_MAX)
                return field_error(ret_error, field, v, expected);
        *ret = (usec_t) i * USEC_PER_MSEC;
        return 0;
}

static int get_timestamp(json_object *o, const char *field, usec_t *ret, char **ret_error) {
        static const char expected[] = "an RFC 3339 time like \"2026-11-27T10:02:03.123456Z\", \"infinity\" or null";
        const char *s;
        usec_t t;
        int r;

        r = get_string(o, field, expected, &s, ret_error);
        if (r < 0)
                return r;
        if (!s)
                t = 0;
        else if (streq(s, "infinity"))
                t = USEC_INFINITY;
        else if (parse_rfc3339(s, &t) < 0 || t > TIMESTAMP_MAX)
                return field_error(ret_error, field, json_get_member(o, field), expected);
        *ret = t;
        return 0;
}

static char *phase_list(void) {
        _cleanup_free_ char *l = NULL;

        for (RebootPhase p = 0; p < _REBOOT_PHASE_MAX; p++) {
                char *t = strdup_printf("%s%s\"%s\"", strempty(l), l ? ", " : "one of ",
                                        reboot_phase_to_string(p));
                if (!t)
                        return NULL;
                free(l);
                l = t;
        }
        return TAKE_PTR(l);
}

int state_from_json(const char *text, size_t size, RebootState *ret, char **ret_error) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *parse_error = NULL;
        json_object *v;
        const char *str;
        int64_t version;
        int r;

        reboot_state_init(&s);

        if (!text || !ret)
                return -EINVAL;

        r = json_parse_with_error(text, size, &o, ret_error ? &parse_error : NULL);
        if (r == -EBADMSG || r == -EFBIG) {
                if (ret_error)
                        *ret_error = strdup_printf("invalid JSON: %s", strna(parse_error));
                return -EBADMSG;
        }
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object)) {
                if (ret_error)
                        *ret_error = strdup("expected a JSON object at the top level");
                return -EBADMSG;
        }

        /* The version first: a newer one may have changed the meaning of everything else. */
        v = json_get_member(o, "version");
        if (!v || !json_object_is_type(v, json_type_int))
                return field_error(ret_error, "version", v, "the number " STRINGIFY(STATE_FILE_VERSION));
        version = json_object_get_int64(v);
        if (version > STATE_FILE_VERSION) {
                if (ret_error)
                        *ret_error = strdup_printf("field \"version\": %" PRIi64 " is newer than the version %d "
                                                   "this nodereboot understands", version, STATE_FILE_VERSION);
                return -EPROTONOSUPPORT;
        }
        if (version != STATE_FILE_VERSION)
                return field_error(ret_error, "version", v, "the number " STRINGIFY(STATE_FILE_VERSION));

        v = json_get_member(o, "phase");
        if (!v || !json_object_is_type(v, json_type_string) ||
            (s.phase = reboot_phase_from_string(json_object_get_string(v))) < 0) {
                _cleanup_free_ char *phases = phase_list();
                if (!phases)
                        return -ENOMEM;
                return field_error(ret_error, "phase", v, phases);
        }

        r = get_string(o, "rollback_to", "\"idle\", \"pending\" or null", &str, ret_error);
        if (r < 0)
                return r;
        if (str) {
                s.rollback_to = reboot_phase_from_string(str);
                if (!rollback_phase_is_valid(s.rollback_to))
                        return field_error(ret_error, "rollback_to", json_get_member(o, "rollback_to"),
                                           "\"idle\", \"pending\" or null");
        }

        r = get_string(o, "boot_id", "32 lowercase hexadecimal digits, \"\" or null", &str, ret_error);
        if (r < 0)
                return r;
        if (str) {
                if (strlen(str) >= sizeof s.boot_id || !boot_id_is_valid(str, strlen(str)))
                        return field_error(ret_error, "boot_id", json_get_member(o, "boot_id"),
                                           "32 lowercase hexadecimal digits, \"\" or null");
                strcpy(s.boot_id, str);
        }

        r = get_string_dup(o, "lease_machine_id", &s.lease_machine_id, ret_error);
        if (r < 0)
                return r;
        if (s.lease_machine_id && !machine_id_is_valid(s.lease_machine_id))
                return field_error(ret_error, "lease_machine_id", json_get_member(o, "lease_machine_id"),
                                   "a machine ID (1 to 128 letters, digits, '_', '.', '-') or null");

        if ((r = get_string_dup(o, "lease", &s.lease, ret_error)) < 0 ||
            (r = get_bool(o, "cordoned", &s.cordoned, ret_error)) < 0 ||
            (r = get_bool(o, "node_was_unschedulable", &s.node_was_unschedulable, ret_error)) < 0 ||
            (r = get_bool(o, "drained", &s.drained, ret_error)) < 0 ||
            (r = get_unsigned(o, "reboot_attempts", &s.reboot_attempts, ret_error)) < 0 ||
            (r = get_unsigned(o, "failed_cycles", &s.failed_cycles, ret_error)) < 0 ||
            (r = get_timestamp(o, "phase_since", &s.phase_since, ret_error)) < 0 ||
            (r = get_timestamp(o, "pending_since", &s.pending_since, ret_error)) < 0 ||
            (r = get_timestamp(o, "retry_after", &s.retry_after, ret_error)) < 0 ||
            (r = get_string_dup(o, "reason", &s.reason, ret_error)) < 0 ||
            (r = get_string_dup(o, "last_error", &s.last_error, ret_error)) < 0 ||
            (r = get_string_dup(o, "kernel_before", &s.kernel_before, ret_error)) < 0 ||
            (r = get_string_dup(o, "kernel_after", &s.kernel_after, ret_error)) < 0 ||
            (r = get_unsigned(o, "reboots_total", &s.stats.reboots, ret_error)) < 0 ||
            (r = get_unsigned(o, "cycles_failed_total", &s.stats.failed_cycles, ret_error)) < 0 ||
            (r = get_timestamp(o, "last_reboot", &s.stats.last_reboot, ret_error)) < 0 ||
            (r = get_duration_ms(o, "last_lock_wait_ms", &s.stats.last_lock_wait, ret_error)) < 0 ||
            (r = get_duration_ms(o, "last_drain_ms", &s.stats.last_drain, ret_error)) < 0 ||
            (r = get_unsigned(o, "reboot_loops", &s.stats.loops, ret_error)) < 0 ||
            (r = get_timestamp(o, "loop_counted_for", &s.stats.loop_counted_for, ret_error)) < 0 ||
            (r = get_timestamp(o, "loop_guard_until", &s.stats.loop_guard_until, ret_error)) < 0)
                return r;

        reboot_state_done(ret);
        *ret = s;
        reboot_state_init(&s);
        return 0;
}

static int rename_noreplace(const char *from, const char *to) {
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return -errno;

        /* The file system cannot refuse to replace atomically. Only this daemon writes to the
         * folder, so checking first is good enough. */
        if (access(to, F_OK) >= 0)
                return -EEXIST;
        if (errno != ENOENT)
                return -errno;
        if (rename(from, to) < 0)
                return -errno;
        return 0;
}

/* Renames path to <dir>/state.corrupt-<UTC time>[-N], never replacing a file. */
static int state_file_move_aside(const char *dir, const char *path, char **ret) {
        _cleanup_close_ int dfd = -EBADF;
        time_t now = (time_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
        char stamp[32];
        struct tm tm;

        if (!gmtime_r(&now, &tm))
                return -EINVAL;
        if (strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm) == 0)
                return -EINVAL;

        for (unsigned i = 0; i < CORRUPT_SUFFIX_MAX; i++) {
                _cleanup_free_ char *target = NULL;
                int r;

                target = i == 0 ?
                        strdup_printf("%s/" STATE_FILE_NAME ".corrupt-%s", dir, stamp) :
                        strdup_printf("%s/" STATE_FILE_NAME ".corrupt-%s-%u", dir, stamp, i);
                if (!target)
                        return -ENOMEM;

                r = rename_noreplace(path, target);
                if (r == -EEXIST)
                        continue;
                if (r < 0)
                        return r;

                /* Make the rename itself durable, so the corrupt file is not back after a power cut. */
                dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0)
                        (void) fsync(dfd);
                *ret = TAKE_PTR(target);
                return 0;
        }
        return -EEXIST;
}

int state_file_load(const char *dir, RebootState *ret) {
        _cleanup_(reboot_state_done) RebootState s;
        _cleanup_free_ char *path = NULL, *text = NULL, *error = NULL, *moved = NULL;
        size_t size;
        int r;

        reboot_state_init(&s);

        if (!dir || !ret)
                return -EINVAL;

        path = strjoin(dir, "/" STATE_FILE_NAME);
        if (!path)
                return -ENOMEM;

        r = read_full_file(path, STATE_FILE_SIZE_MAX, &text, &size);
        if (r == -ENOENT) {
                log_debug("No state file %s, starting from idle.", path);
                reboot_state_done(ret);
                return 0;
        }
        if (r == -EFBIG) {
                error = strdup_printf("the file is larger than %u KiB", STATE_FILE_SIZE_MAX / 1024);
                goto corrupt;
        }
        if (r < 0)
                return r;

        r = state_from_json(text, size, &s, &error);
        if (r == -EPROTONOSUPPORT) {
                log_error("State file %s was written by a newer nodereboot (%s). Leaving it untouched; "
                          "upgrade nodereboot, or move the file away to start from idle.", path, strna(error));
                return r;
        }
        if (r == -EBADMSG)
                goto corrupt;
        if (r < 0)
                return r;

        reboot_state_done(ret);
        *ret = s;
        reboot_state_init(&s);
        return 0;

corrupt:
        r = state_file_move_aside(dir, path, &moved);
        if (r < 0)
                return log_error_errno(r, "State file %s is corrupt (%s), and moving it aside failed: %m",
                                       path, strna(error));
        log_error("State file %s is corrupt: %s. Moved it to %s for inspection; starting from idle and "
                  "reconciling with the cluster.", path, strna(error), moved);
        reboot_state_done(ret);
        return -EBADMSG;
}

int state_file_save(const char *dir, const RebootState *s) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (!dir || !s)
                return -EINVAL;

        r = state_to_json(s, &text);
        if (r < 0)
                return r;
        /* state_file_load() would move a larger file aside as corrupt. */
        if (strlen(text) > STATE_FILE_SIZE_MAX)
                return -EFBIG;
        path = strjoin(dir, "/" STATE_FILE_NAME);
        if (!path)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), STATE_FILE_MODE);
}
