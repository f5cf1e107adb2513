/* SPDX-License-Identifier: Apache-2.0 */
/* The persisted reboot state: versioned JSON in <state dir>/state, replaced atomically. A missing
 * file means idle; a file that cannot be understood is moved aside as state.corrupt-<time>. */
#pragma once

#include "reboot-machine.h"

#define STATE_FILE_VERSION 1

/* 0 and the state; 0 and an idle state when there is no file; -EBADMSG (after moving the file
 * aside and logging which field was wrong) with an idle state when it is corrupt; other -errno
 * when it cannot be read. ret must be initialised with reboot_state_init(). */
int state_file_load(const char *dir, RebootState *ret);
/* Never writes what state_file_load() would reject: -EINVAL or -ERANGE for a value out of its
 * range, -EBADMSG for a string that is not UTF-8, -EFBIG for a file larger than the loader reads;
 * the file on disk is then left as it was. Other -errno: it could not be written. */
int state_file_save(const char *dir, const RebootState *s);

/* The JSON form, shared with noderebootctl status --json. */
int state_to_json(const RebootState *s, char **ret);
int state_from_json(const char *text, size_t size, RebootState *ret, char **ret_error);
