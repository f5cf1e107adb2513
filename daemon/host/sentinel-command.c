/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "regex-util.h"
#include "sentinel-command.h"
#include "string-util.h"

static const char *const verdict_names[_COMMAND_VERDICT_MAX] = {
        [COMMAND_NOT_REQUIRED] = "not-required",
        [COMMAND_REQUIRED] = "required",
        [COMMAND_FAILED] = "failed",
};

const char *command_verdict_to_string(CommandVerdict v) {
        return v >= 0 && v < _COMMAND_VERDICT_MAX ? verdict_names[v] : NULL;
}

CommandVerdict command_verdict(int code, int status, int required_status, bool timed_out, char *buf,
                               size_t size, const char **ret_message) {
        const char *m = NULL;
        CommandVerdict v = COMMAND_FAILED;

        if (timed_out)
                m = "it did not finish in time and was killed";
        else if (code == CLD_EXITED) {
                if (status == required_status)
                        v = COMMAND_REQUIRED;
                else if (status == 0)
                        v = COMMAND_NOT_REQUIRED;
                else if (status == 127)
                        m = "exit status 127: the command was not found";
                else if (status == 126)
                        m = "exit status 126: the command could not be executed";
                else {
                        snprintf(buf, size, "exit status %d, neither 0 (not required) nor %d (required)", status,
                                 required_status);
                        m = buf;
                }
        } else if (code == CLD_KILLED || code == CLD_DUMPED) {
                snprintf(buf, size, "killed by signal %s%s", sigabbrev_np(status) ?: "?",
                         code == CLD_DUMPED ? " (core dumped)" : "");
                m = buf;
        } else
                m = "it ended in a way that was not understood";
        if (ret_message)
                *ret_message = m;
        return v;
}

struct SentinelCommand {
        sd_event *event;
        char **argv;
        int required_status;
        usec_t interval_usec;
        usec_t timeout_usec;
        SentinelCommandHandler handler;
        void *userdata;

        regex_t required_output;        /* when has_required_output */
        bool has_required_output;
        pid_t pid;                      /* 0 when no run is in progress */
        bool timed_out;
        int output_fd;
        char *output;
        size_t output_size;
        sd_event_source *child;
        sd_event_source *output_source;
        sd_event_source *timeout;
        sd_event_source *next;          /* the next run */
};

static void sentinel_command_schedule(SentinelCommand *c, usec_t delay);

/* Reads what is there; returns false at the end of the output (or an error). */
static bool read_output(SentinelCommand *c) {
        char buf[4096];

        for (;;) {
                ssize_t k = read(c->output_fd, buf, sizeof buf);

                if (k < 0)
                        return errno == EAGAIN || errno == EINTR;
                if (k == 0)
                        return false;
                size_t keep = MIN((size_t) k, SENTINEL_COMMAND_OUTPUT_MAX - c->output_size);
                if (keep > 0) {
                        memcpy(c->output + c->output_size, buf, keep);
                        c->output_size += keep;
                        c->output[c->output_size] = 0;
                }
        }
}

static void stop_reading(SentinelCommand *c) {
        c->output_source = sd_event_source_disable_unref(c->output_source);
        if (c->output_fd >= 0)
                (void) close(c->output_fd);
        c->output_fd = -EBADF;
}

static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SentinelCommand *c = userdata;

        if (!read_output(c))
                /* the end, or a grandchild's: the run ends when the child does */
                c->output_source = sd_event_source_disable_unref(c->output_source);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        SentinelCommand *c = userdata;
        const char *message = NULL;
        CommandVerdict v;
        char buf[128];

        c->child = sd_event_source_disable_unref(c->child);
        c->timeout = sd_event_source_disable_unref(c->timeout);
        if (c->output_fd >= 0)
                (void) read_output(c);
        stop_reading(c);
        c->pid = 0;

        v = command_verdict(si->si_code, si->si_status, c->required_status, c->timed_out, buf, sizeof buf, &message);
        if (v == COMMAND_REQUIRED && c->has_required_output && regexec(&c->required_output, strempty(c->output), 0,
                                                                        NULL, 0) != 0) {
                /* The status of "required" is also that of many errors (Python's, dnf's): without
                 * the words that say it, it is not believed. */
                v = COMMAND_FAILED;
                snprintf(buf, sizeof buf, "exit status %d, but what it printed does not match RequiredOutputRegex=",
                         c->required_status);
                message = buf;
        }
        sentinel_command_schedule(c, c->interval_usec);
        c->handler(c, v, c->output ?: "", message, c->userdata);
        c->output = mfree(c->output);   /* 64 KiB, not kept between runs */
        c->output_size = 0;
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        SentinelCommand *c = userdata;

        c->timeout = sd_event_source_disable_unref(c->timeout);
        c->timed_out = true;
        /* Its process group: what it started goes too; and itself, should it have left the
         * group (setsid()). */
        if (c->pid > 0) {
                (void) kill(-c->pid, SIGKILL);
                (void) kill(c->pid, SIGKILL);
        }
        return 0;
}

static void exec_child(SentinelCommand *c, int output_fd) _noreturn_;
static void exec_child(SentinelCommand *c, int output_fd) {
        sigset_t none;
        int null_fd;

        /* Between fork() and exec(): async-signal-safe calls only. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) signal(SIGPIPE, SIG_DFL);
        (void) setpgid(0, 0);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 ||
            dup2(output_fd, STDERR_FILENO) < 0)
                _exit(126);
        /* Nothing of the daemon's: libcurl's sockets are not close-on-exec. close_range() is
         * Linux 5.9; before it, one by one. */
        if (close_range(3, ~0U, 0) < 0) {
                struct rlimit rl;
                int max = getrlimit(RLIMIT_NOFILE, &rl) >= 0 && rl.rlim_cur != RLIM_INFINITY ?
                        (int) MIN(rl.rlim_cur, (rlim_t) 65536) : 65536;

                for (int fd = 3; fd < max; fd++)
                        (void) close(fd);
        }
        execvp(c->argv[0], c->argv);
        _exit(errno == ENOENT ? 127 : 126);
}

static int sentinel_command_run(SentinelCommand *c) {
        int fds[2], r;
        pid_t pid;

        c->output = mfree(c->output);
        c->output_size = 0;
        c->timed_out = false;
        c->output = malloc(SENTINEL_COMMAND_OUTPUT_MAX + 1);
        if (!c->output)
                return -ENOMEM;
        c->output[0] = 0;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                (void) close(fds[0]);
                (void) close(fds[1]);
                return r;
        }
        if (pid == 0)
                exec_child(c, fds[1]);
        (void) close(fds[1]);
        /* Also here, against the race with the child's own setpgid(): a kill of the group must
         * find it. */
        (void) setpgid(pid, pid);
        c->pid = pid;
        c->output_fd = fds[0];
        (void) fcntl(c->output_fd, F_SETFL, O_NONBLOCK);

        r = sd_event_add_child(c->event, &c->child, pid, WEXITED, on_child, c);
        if (r < 0) {
                (void) kill(-pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                c->pid = 0;
                stop_reading(c);
                return r;
        }
        r = sd_event_add_io(c->event, &c->output_source, c->output_fd, EPOLLIN, on_output, c);
        if (r >= 0)
                r = sd_event_add_time_relative(c->event, &c->timeout, CLOCK_MONOTONIC, c->timeout_usec,
                                               USEC_PER_SEC / 10, on_timeout, c);
        if (r < 0)
                /* The child runs on; without its output or timeout it is killed now, and its end
                 * reports the failure. */
                (void) on_timeout(NULL, 0, c);
        return 0;
}

static int on_next(sd_event_source *s, uint64_t usec, void *userdata) {
        SentinelCommand *c = userdata;
        int r;

        c->next = sd_event_source_disable_unref(c->next);
        r = sentinel_command_run(c);
        if (r < 0) {
                _cleanup_free_ char *m = strdup_printf("cannot start it: %s", strerror(ERRNO_VALUE(r)));

                sentinel_command_schedule(c, c->interval_usec);
                c->handler(c, COMMAND_FAILED, "", m ?: "cannot start it", c->userdata);
        }
        return 0;
}

static void sentinel_command_schedule(SentinelCommand *c, usec_t delay) {
        int r;

        c->next = sd_event_source_disable_unref(c->next);
        /* A second of slack: the wake-up may fall together with others. */
        r = sd_event_add_time_relative(c->event, &c->next, CLOCK_BOOTTIME, delay, USEC_PER_SEC, on_next, c);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the next run of [Sentinel] Command=: %m");
}

int sentinel_command_new(SentinelCommand **ret, sd_event *event, char **argv, int required_status,
                         usec_t interval_usec, usec_t timeout_usec, SentinelCommandHandler handler,
                         void *userdata) {
        _cleanup_(sentinel_command_freep) SentinelCommand *c = NULL;

        if (!ret || !event || !argv || !argv[0] || !handler || required_status <= 0 || required_status > 255 ||
            interval_usec == 0 || timeout_usec == 0)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->output_fd = -EBADF;
        for (char **a = argv; *a; a++)
                if (strv_extend(&c->argv, *a) < 0)
                        return -ENOMEM;
        c->required_status = required_status;
        c->interval_usec = interval_usec;
        c->timeout_usec = timeout_usec;
        c->handler = handler;
        c->userdata = userdata;
        sentinel_command_schedule(c, 0);
        if (!c->next)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int sentinel_command_set_required_output(SentinelCommand *c, const char *regex) {
        if (!c || !regex)
                return -EINVAL;
        if (c->has_required_output)
                regfree(&c->required_output);
        c->has_required_output = regex_compile(&c->required_output, regex, REG_NOSUB) >= 0;
        return c->has_required_output ? 0 : -EINVAL;
}

SentinelCommand *sentinel_command_free(SentinelCommand *c) {
        if (!c)
                return NULL;
        if (c->has_required_output)
                regfree(&c->required_output);
        sd_event_source_disable_unref(c->child);
        if (c->pid > 0) {
                (void) kill(-c->pid, SIGKILL);
                (void) waitpid(c->pid, NULL, 0);
        }
        sd_event_source_disable_unref(c->timeout);
        sd_event_source_disable_unref(c->next);
        stop_reading(c);
        strv_free(c->argv);
        free(c->output);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}
