/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: structured journald entries when stderr is connected to the journal, plain text on
 * stderr otherwise. Every entry carries the node name and the current state as journal fields. */
#pragma once

#include <syslog.h>

#include "macro.h"

/* MESSAGE_ID= values for the key events of a reboot cycle (journalctl MESSAGE_ID=...). */
#define MESSAGE_REBOOT_REQUIRED  "e89eae3078e64dd7a0433ba2ddd5011f"
#define MESSAGE_LOCK_ACQUIRED    "e5b345a09f624969abf36242865725dc"
#define MESSAGE_DRAIN_STARTED    "bbd2d01249c643a086d03d8694a2b857"
#define MESSAGE_REBOOTING        "a1bcab02030b4270969644c01193ec1b"
#define MESSAGE_REBOOT_FAILED    "d7fafbac4b474ab6b1d5770339bfc6be"
#define MESSAGE_RECOVERED        "4b7cbd21b94445cca9b9344bf3e89098"
#define MESSAGE_LOCK_RELEASED    "4e9447c6c09346a1a460daa2f40a15e9"
#define MESSAGE_LOCK_LOST        "09bb1ad378cf4348ae487c76ce741cc7"
#define MESSAGE_DRAIN_FAILED     "44391e099ce74d7c90d4984cdd55c911"
#define MESSAGE_STATE_CHANGED    "e30b7c4b52404d1e98bd1669bf004d01"
#define MESSAGE_ROLLED_BACK      "c85c76cba25649ceb41971a2eeacc9c7"

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
/* Chooses journald when $JOURNAL_STREAM names our stderr (as systemd sets it), stderr otherwise. */
void log_open(void);
void log_set_context(const char *node, const char *state);

/* Returns -ERRNO_VALUE(error), so "return log_error_errno(r, ...)" propagates the error.
 * With error != 0, %m in the format prints strerror(error). */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *message_id, const char *fmt, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...) \
        log_internal(level, error, __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)
#define log_full(level, ...) ((void) log_full_errno(level, 0, __VA_ARGS__))

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)

/* A key event: same as log_full_errno, plus MESSAGE_ID=. */
#define log_event(level, message_id, ...) \
        ((void) log_internal(level, 0, __FILE__, __LINE__, __func__, message_id, __VA_ARGS__))

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
