/* SPDX-License-Identifier: Apache-2.0 */
/* [Sentinel] Command=: a program that says whether this machine needs a reboot (on RPM systems
 * `needs-restarting -r`, which exits 1 when one is needed and 0 when not), run at start and then
 * every interval, directly (execvp(), never through a shell), as the daemon's own user, with
 * stdin from /dev/null, its output captured (64 KiB at most) and a timeout. Any exit status but
 * "required" and 0 is an error, and an error never requires a reboot: kured, which treats every
 * non-zero status as "required", reboots in a loop when the command is missing (127). */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef enum CommandVerdict {
        COMMAND_NOT_REQUIRED,
        COMMAND_REQUIRED,
        COMMAND_FAILED,
        _COMMAND_VERDICT_MAX,
        _COMMAND_VERDICT_INVALID = -EINVAL,
} CommandVerdict;

/* What a finished child's code and status (si_code, si_status of waitid()) mean, and in words for a failure (static
 * or written to buf): 126 cannot execute, 127 not found, a signal, another status. timed_out: we
 * killed it. Pure. */
CommandVerdict command_verdict(int code, int status, int required_status, bool timed_out, char *buf,
                               size_t size, const char **ret_message);

typedef struct SentinelCommand SentinelCommand;

/* After every run. output: what it printed (stdout and stderr together, NUL-terminated, maybe
 * cut at 64 KiB); message: the error for COMMAND_FAILED, else NULL. Both valid during the call,
 * which must not free the SentinelCommand. */
typedef void (*SentinelCommandHandler)(SentinelCommand *c, CommandVerdict verdict, const char *output,
                                       const char *message, void *userdata);

/* argv is copied. The first run starts from the event loop right away. SIGCHLD must be blocked
 * (sd_event_add_child()). */
int sentinel_command_new(SentinelCommand **ret, sd_event *event, char **argv, int required_status,
                         usec_t interval_usec, usec_t timeout_usec, SentinelCommandHandler handler,
                         void *userdata);
/* "Required" also needs what the command printed to match regex (POSIX extended): dnf and
 * Python exit 1 on most errors, the status needs-restarting -r uses for "required". -EINVAL for
 * a regex that does not compile. */
int sentinel_command_set_required_output(SentinelCommand *c, const char *regex);
/* Kills a run in progress. */
SentinelCommand *sentinel_command_free(SentinelCommand *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SentinelCommand *, sentinel_command_free);

/* The output a handler gets at most; the rest is read and dropped. */
#define SENTINEL_COMMAND_OUTPUT_MAX (64U * 1024U)

const char *command_verdict_to_string(CommandVerdict v);
