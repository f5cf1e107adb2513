/* SPDX-License-Identifier: Apache-2.0 */
/* [Sentinel] Command=: what exit statuses mean, and real runs of real programs: required, not
 * required, a status that is neither, not found (127), a signal, a timeout (its children killed
 * too), no shell in between, stdin from /dev/null, the output capped, and the runs repeated. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sentinel-command.h"
#include "string-util.h"
#include "tests.h"

TEST(verdicts) {
        char buf[128];
        const char *m;

        ASSERT_EQ(command_verdict(CLD_EXITED, 1, 1, false, buf, sizeof buf, &m), COMMAND_REQUIRED);
        ASSERT_TRUE(!m);
        ASSERT_EQ(command_verdict(CLD_EXITED, 0, 1, false, buf, sizeof buf, &m), COMMAND_NOT_REQUIRED);
        ASSERT_EQ(command_verdict(CLD_EXITED, 100, 100, false, buf, sizeof buf, &m), COMMAND_REQUIRED);
        ASSERT_EQ(command_verdict(CLD_EXITED, 1, 100, false, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_STREQ(m, "exit status 1, neither 0 (not required) nor 100 (required)");
        ASSERT_EQ(command_verdict(CLD_EXITED, 127, 1, false, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_TRUE(strstr(m, "not found"));
        ASSERT_EQ(command_verdict(CLD_EXITED, 126, 1, false, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_TRUE(strstr(m, "could not be executed"));
        ASSERT_EQ(command_verdict(CLD_KILLED, SIGSEGV, 1, false, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_STREQ(m, "killed by signal SEGV");
        ASSERT_EQ(command_verdict(CLD_DUMPED, SIGABRT, 1, false, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_STREQ(m, "killed by signal ABRT (core dumped)");
        /* killed by us: the timeout, whatever the status says */
        ASSERT_EQ(command_verdict(CLD_KILLED, SIGKILL, 1, true, buf, sizeof buf, &m), COMMAND_FAILED);
        ASSERT_TRUE(strstr(m, "did not finish in time"));
        ASSERT_EQ(command_verdict(CLD_EXITED, 1, 1, true, buf, sizeof buf, &m), COMMAND_FAILED);
}

typedef struct Runs {
        unsigned n;
        CommandVerdict verdict;
        char *output;
        char *message;
        usec_t at;
} Runs;

static void on_run(SentinelCommand *c, CommandVerdict verdict, const char *output, const char *message,
                   void *userdata) {
        Runs *r = userdata;

        r->n++;
        r->verdict = verdict;
        free(r->output);
        free(r->message);
        r->output = strdup(output);
        r->message = message ? strdup(message) : NULL;
        r->at = now_usec(CLOCK_MONOTONIC);
}

/* One run of argv (split like the configuration); returns the Runs after the first. */
static void run_once(const char *command, int required, usec_t timeout, Runs *r) {
        _cleanup_strv_free_ char **argv = NULL;
        SentinelCommand *c = NULL;
        sd_event *e = NULL;

        *r = (Runs) {};
        ASSERT_OK(strv_split_command(command, &argv));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_command_new(&c, e, argv, required, USEC_PER_HOUR, timeout, on_run, r));
        for (unsigned i = 0; r->n == 0 && i < 1000; i++)
                ASSERT_OK(sd_event_run(e, 20 * USEC_PER_MSEC));
        ASSERT_EQ(r->n, 1);
        sentinel_command_free(c);
        sd_event_unref(e);
}

static void runs_done(Runs *r) {
        free(r->output);
        free(r->message);
}

TEST(runs) {
        Runs r;

        run_once("/bin/sh -c 'echo Reboot is required; exit 1'", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_REQUIRED);
        ASSERT_STREQ(r.output, "Reboot is required\n");
        runs_done(&r);

        run_once("true", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_NOT_REQUIRED);
        runs_done(&r);

        run_once("/bin/sh -c 'echo oops >&2; exit 3'", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_FAILED);
        ASSERT_STREQ(r.message, "exit status 3, neither 0 (not required) nor 1 (required)");
        ASSERT_STREQ(r.output, "oops\n");
        runs_done(&r);

        run_once("needs-restarting-that-is-not-installed -r", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_FAILED);
        ASSERT_TRUE(strstr(r.message, "127"));
        runs_done(&r);

        run_once("/bin/sh -c 'kill -SEGV $$'", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_FAILED);
        ASSERT_STREQ(r.message, "killed by signal SEGV");
        runs_done(&r);

        /* no shell: $HOME, ; and > are just words */
        run_once("echo \"$HOME\" ; > x", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_NOT_REQUIRED);
        ASSERT_STREQ(r.output, "$HOME ; > x\n");
        ASSERT_TRUE(access("x", F_OK) < 0);
        runs_done(&r);

        /* stdin is /dev/null: cat ends at once */
        run_once("cat", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_NOT_REQUIRED);
        ASSERT_STREQ(r.output, "");
        runs_done(&r);

        /* at most 64 KiB of output */
        run_once("/bin/sh -c 'head -c 200000 /dev/zero | tr \"\\\\0\" a; exit 1'", 1, 10 * USEC_PER_SEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_REQUIRED);
        ASSERT_EQ(strlen(r.output), SENTINEL_COMMAND_OUTPUT_MAX);
        runs_done(&r);
}

TEST(timeout_kills_the_group) {
        char pidfile[] = "/tmp/test-sentinel-command-XXXXXX";
        _cleanup_free_ char *command = NULL;
        usec_t start = now_usec(CLOCK_MONOTONIC);
        int fd = mkstemp(pidfile);
        pid_t grandchild = 0;
        FILE *f;
        Runs r;

        ASSERT_TRUE(fd >= 0);
        close(fd);
        /* a child that started one of its own: both go */
        command = strdup_printf("/bin/sh -c 'sleep 60 & echo $! > %s; sleep 60'", pidfile);
        run_once(command, 1, 300 * USEC_PER_MSEC, &r);
        ASSERT_EQ(r.verdict, COMMAND_FAILED);
        ASSERT_TRUE(strstr(r.message, "did not finish in time"));
        ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) - start < 5 * USEC_PER_SEC);
        runs_done(&r);
        f = fopen(pidfile, "re");
        ASSERT_TRUE(f);
        ASSERT_EQ(fscanf(f, "%d", &grandchild), 1);
        fclose(f);
        unlink(pidfile);
        /* killed (a zombie reaped by init at most): gone within a moment */
        for (unsigned i = 0; i < 100 && kill(grandchild, 0) >= 0; i++)
                usleep(20000);
        {
                char path[64], state = 0;
                snprintf(path, sizeof path, "/proc/%d/stat", (int) grandchild);
                f = fopen(path, "re");
                if (f) {
                        ASSERT_EQ(fscanf(f, "%*d %*s %c", &state), 1);
                        fclose(f);
                        ASSERT_TRUE(state == 'Z');
                }
        }
}

TEST(repeats) {
        _cleanup_strv_free_ char **argv = NULL;
        SentinelCommand *c = NULL;
        sd_event *e = NULL;
        Runs r = {};
        usec_t first;

        ASSERT_OK(strv_split_command("true", &argv));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(sentinel_command_new(&c, e, argv, 1, 300 * USEC_PER_MSEC, USEC_PER_SEC, on_run, &r));
        for (unsigned i = 0; r.n < 1 && i < 500; i++)
                ASSERT_OK(sd_event_run(e, 20 * USEC_PER_MSEC));
        first = r.at;
        for (unsigned i = 0; r.n < 3 && i < 500; i++)
                ASSERT_OK(sd_event_run(e, 20 * USEC_PER_MSEC));
        ASSERT_EQ(r.n, 3);
        /* about one interval apart (the timer may be late by up to a second of slack) */
        ASSERT_TRUE(r.at - first >= 600 * USEC_PER_MSEC);
        sentinel_command_free(c);
        sd_event_unref(e);
        runs_done(&r);
}

int main(void) {
        sigset_t mask;

        /* as the daemon does: sd_event_add_child() needs SIGCHLD blocked */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        ASSERT_OK(sigprocmask(SIG_BLOCK, &mask, NULL));
        RUN(verdicts);
        RUN(runs);
        RUN(timeout_kills_the_group);
        RUN(repeats);
        return 0;
}
