/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "json-util.h"
#include "reboot-request.h"
#include "string-util.h"

#define REBOOT_REQUEST_SIZE_MAX (16U * 1024U)

void reboot_request_done(RebootRequest *r) {
        r->reason = mfree(r->reason);
}

char *reboot_request_path(const char *dir) {
        return strjoin(dir, "/" REBOOT_REQUEST_FILE);
}

static bool boot_id_is_valid(const char *s) {
        if (strlen(s) != BOOT_ID_MAX - 1)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int fail(char **ret_error, const char *field, const char *expected) {
        if (ret_error)
                *ret_error = field ? strdup_printf("field %s: %s", field, expected) : strdup(expected);
        return -EBADMSG;
}

int reboot_request_parse(const char *text, RebootRequest *ret, char **ret_error) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *perr = NULL;
        RebootRequest r = {};
        const char *reason, *boot_id, *at;
        json_object *iw;

        if (ret_error)
                *ret_error = NULL;
        if (json_parse_with_error(text, strlen(text), &o, &perr) < 0) {
                if (ret_error)
                        *ret_error = strdup_printf("not JSON (%s)", strna(perr));
                return -EBADMSG;
        }
        if (!json_object_is_type(o, json_type_object))
                return fail(ret_error, NULL, "not a JSON object");
        boot_id = json_get_string(o, "boot_id");
        if (!boot_id || !boot_id_is_valid(boot_id))
                return fail(ret_error, "boot_id", "expected 32 lowercase hex digits");
        at = json_get_string(o, "requested_at");
        if (!at || parse_rfc3339(at, &r.requested_at) < 0)
                return fail(ret_error, "requested_at", "expected an RFC 3339 time");
        iw = json_get(o, "ignore_window");
        if (iw && !json_object_is_type(iw, json_type_boolean))
                return fail(ret_error, "ignore_window", "expected true or false");
        r.ignore_window = iw && json_object_get_boolean(iw);
        reason = json_get_string(o, "reason");
        if (json_get(o, "reason") && !reason)
                return fail(ret_error, "reason", "expected a string");
        if (!isempty(reason)) {
                size_t n = strlen(reason);

                if (n > REBOOT_REQUEST_REASON_MAX)
                        return fail(ret_error, "reason", "longer than 256 characters");
                for (size_t i = 0; i < n; i++)
                        if (reason[i] < ' ' || reason[i] > '~')
                                return fail(ret_error, "reason", "only printable ASCII");
                r.reason = strdup(reason);
                if (!r.reason)
                        return -ENOMEM;
        }
        strcpy(r.boot_id, boot_id);
        *ret = r;
        return 0;
}

char *reboot_request_format(const RebootRequest *r) {
        _cleanup_json_ json_object *o = json_object_new_object();
        char t[FORMAT_RFC3339_MAX];

        if (!o ||
            (r->reason && json_set(o, "reason", json_object_new_string(r->reason)) < 0) ||
            json_set(o, "ignore_window", json_object_new_boolean(r->ignore_window)) < 0 ||
            json_set(o, "boot_id", json_object_new_string(r->boot_id)) < 0 ||
            json_set(o, "requested_at", json_object_new_string(format_rfc3339(t, sizeof t, r->requested_at, false))) < 0)
                return NULL;
        return strjoin(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE), "\n");
}

int reboot_request_read(const char *dir, RebootRequest *ret, char **ret_error) {
        _cleanup_free_ char *path = reboot_request_path(dir), *text = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!path)
                return -ENOMEM;
        r = read_full_file(path, REBOOT_REQUEST_SIZE_MAX, &text, NULL);
        if (r == -EFBIG) {
                if (ret_error)
                        *ret_error = strdup("larger than 16 KiB");
                return -EBADMSG;
        }
        if (r < 0)
                return r;
        return reboot_request_parse(text, ret, ret_error);
}

int reboot_request_write(const char *dir, const RebootRequest *r) {
        _cleanup_free_ char *path = reboot_request_path(dir), *text = reboot_request_format(r);

        if (!path || !text)
                return -ENOMEM;
        /* Written by root (noderebootctl), read by the daemon's own user: 0644 (nothing in it is
         * secret; the folder, 0750, keeps others out anyway). */
        return write_file_atomic_full(path, text, strlen(text), 0644, WRITE_FILE_EXACT_MODE);
}

int reboot_request_remove(const char *dir) {
        _cleanup_free_ char *path = reboot_request_path(dir);

        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
