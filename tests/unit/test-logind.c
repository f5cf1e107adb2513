/* SPDX-License-Identifier: Apache-2.0 */
/* The logind client against python3-dbusmock's logind template on a private dbus-daemon: which
 * method a reboot request reaches, how refusals and timeouts come back, which inhibitors count as
 * blockers, and what happens without a bus or when the bus goes away. */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>

#include "logind.h"
#include "string-util.h"
#include "tests.h"
#include "time-util.h"

#define PYTHON "/usr/bin/python3"
#define DBUS_DAEMON "/usr/bin/dbus-daemon"

/* The test bench: a dbus-daemon and the mock, both children of this process. They get SIGTERM
 * from the kernel if this process dies (an assertion aborts), and from bench_stop() otherwise. */
static char bench_dir[] = "/tmp/test-logind-XXXXXX";
static char bench_address[PATH_MAX + 32];
static pid_t bus_pid = -1, mock_pid = -1;
static sd_bus *control;           /* the test's own connection, for the mock's control interface */

static pid_t spawn(const char *const argv[], int keep_fd) {
        pid_t parent = getpid(), pid;

        pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                if (keep_fd >= 0)
                        (void) fcntl(keep_fd, F_SETFD, 0);
                execv(argv[0], (char **) argv);
                _exit(127);
        }
        return pid;
}

static void stop_child(pid_t *pid) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + 5 * USEC_PER_SEC;

        if (*pid <= 0)
                return;
        (void) kill(*pid, SIGTERM);
        while (waitpid(*pid, NULL, WNOHANG) == 0) {
                if (now_usec(CLOCK_MONOTONIC) > end) {
                        (void) kill(*pid, SIGKILL);
                        (void) waitpid(*pid, NULL, 0);
                        break;
                }
                (void) usleep(10000);
        }
        *pid = -1;
}

static void bench_stop(void) {
        control = sd_bus_flush_close_unref(control);
        stop_child(&mock_pid);
        stop_child(&bus_pid);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void bench_cleanup(void) {
        bench_stop();
        if (!strstr(bench_dir, "XXXXXX"))
                (void) nftw(bench_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An aborted assertion skips atexit(): kill the children here, and keep the folder (the mock's
 * log is in it) for a look. */
static void on_fatal_signal(int sig) {
        static const char msg[] = "test-logind: bench folder kept: ";

        if (mock_pid > 0)
                (void) kill(mock_pid, SIGTERM);
        if (bus_pid > 0)
                (void) kill(bus_pid, SIGTERM);
        (void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void) !write(STDERR_FILENO, bench_dir, strlen(bench_dir));
        (void) !write(STDERR_FILENO, "\n", 1);
        signal(sig, SIG_DFL);
        raise(sig);
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        ASSERT_TRUE(f);
        ASSERT_TRUE(fputs(content, f) >= 0);
        ASSERT_OK(fclose(f));
}

static bool mock_ready(void) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0;

        if (sd_bus_call_method(control, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "NameHasOwner", &error, &reply, "s",
                               "org.freedesktop.login1") < 0)
                return false;
        ASSERT_OK(sd_bus_message_read(reply, "b", &has));
        return has;
}

static void bench_start(void) {
        _cleanup_free_ char *conf = strjoin(bench_dir, "/bus.conf"),
                *sock = strjoin(bench_dir, "/system_bus_socket"),
                *conf_arg = NULL, *log = strjoin(bench_dir, "/mock.log"), *config = NULL;
        char fd_arg[64], line[PATH_MAX + 64] = {};
        usec_t end;
        int pipefd[2];
        size_t n = 0;

        ASSERT_TRUE(conf && sock && log);
        config = strdup_printf(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>system</type>\n"
                "  <listen>unix:path=%s</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n"
                "    <allow user=\"*\"/>\n"
                "    <allow own=\"*\"/>\n"
                "    <allow send_destination=\"*\"/>\n"
                "    <allow receive_sender=\"*\"/>\n"
                "  </policy>\n"
                "</busconfig>\n", sock);
        ASSERT_TRUE(config);
        write_file(conf, config);

        /* --nofork keeps it our child; the address it prints says it listens. */
        ASSERT_OK(pipe2(pipefd, O_CLOEXEC));
        conf_arg = strjoin("--config-file=", conf);
        ASSERT_TRUE(conf_arg);
        (void) snprintf(fd_arg, sizeof(fd_arg), "--print-address=%d", pipefd[1]);
        bus_pid = spawn((const char *const[]) { DBUS_DAEMON, conf_arg, "--nofork", fd_arg, NULL }, pipefd[1]);
        ASSERT_OK(close(pipefd[1]));
        while (n < sizeof(line) - 1 && !strchr(line, '\n')) {
                ssize_t k = read(pipefd[0], line + n, sizeof(line) - 1 - n);
                ASSERT_TRUE(k > 0);
                n += (size_t) k;
        }
        ASSERT_OK(close(pipefd[0]));

        (void) snprintf(bench_address, sizeof(bench_address), "unix:path=%s", sock);
        ASSERT_OK(setenv("DBUS_SYSTEM_BUS_ADDRESS", bench_address, 1));

        mock_pid = spawn((const char *const[]) {
                PYTHON, "-m", "dbusmock", "--system", "--template", "logind", "-l", log, NULL }, -1);

        ASSERT_OK(sd_bus_new(&control));
        ASSERT_OK(sd_bus_set_address(control, bench_address));
        ASSERT_OK(sd_bus_set_bus_client(control, true));
        ASSERT_OK(sd_bus_start(control));

        end = now_usec(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;
        while (!mock_ready()) {
                int status;

                ASSERT_TRUE(waitpid(mock_pid, &status, WNOHANG) == 0);   /* the mock died */
                ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) < end);
                (void) usleep(20000);
        }
}

static void check_prerequisites(void) {
        static const struct {
                const char *package, *file;
        } need[] = {
                { "python3-dbusmock", "/usr/lib/python3/dist-packages/dbusmock/templates/logind.py" },
                { "dbus",             DBUS_DAEMON },
        };
        bool ok = true;

        for (size_t i = 0; i < ELEMENTSOF(need); i++) {
                _cleanup_free_ char *cmd = strdup_printf("dpkg -s %s >/dev/null 2>&1", need[i].package);

                ASSERT_TRUE(cmd);
                if (system(cmd) != 0 || access(need[i].file, F_OK) < 0) {
                        fprintf(stderr, "test-logind needs the Debian package %s (apt-get install %s).\n",
                                need[i].package, need[i].package);
                        ok = false;
                }
        }
        ASSERT_TRUE(ok);
        ASSERT_TRUE(access(PYTHON, X_OK) >= 0);
}

/* ---- the mock's control interface ---- */

#define MOCK_IFACE "org.freedesktop.DBus.Mock"

static void mock_call(const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        int r;

        ASSERT_OK(sd_bus_message_new_method_call(control, &m, "org.freedesktop.login1",
                                                 "/org/freedesktop/login1", MOCK_IFACE, member));
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        ASSERT_OK(r);
        r = sd_bus_call(control, m, 0, &error, &reply);
        if (r < 0)
                fprintf(stderr, "%s: %s\n", member, strna(error.message));
        ASSERT_OK(r);
}

static void mock_add_method(const char *name, const char *in, const char *out, const char *code) {
        mock_call("AddMethod", "sssss", "", name, in, out, code);
}

static void mock_set_block_inhibited(const char *value) {
        mock_call("UpdateProperties", "sa{sv}", "", 1, "BlockInhibited", "s", value);
}

/* Calls of one method the mock saw since the last ClearCalls; the first argument of the last one
 * (a "b" or "t") goes to *ret_arg. */
static unsigned mock_calls(const char *method, uint64_t *ret_arg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        unsigned n = 0;

        ASSERT_OK(sd_bus_call_method(control, "org.freedesktop.login1", "/org/freedesktop/login1",
                                     MOCK_IFACE, "GetMethodCalls", &error, &reply, "s", method));
        ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "(tav)"));
        for (;;) {
                uint64_t when;
                char type;
                const char *contents;

                if (sd_bus_message_enter_container(reply, 'r', "tav") <= 0)
                        break;
                ASSERT_OK(sd_bus_message_read(reply, "t", &when));
                ASSERT_OK(sd_bus_message_enter_container(reply, 'a', "v"));
                if (sd_bus_message_peek_type(reply, &type, &contents) > 0) {
                        ASSERT_OK(sd_bus_message_enter_container(reply, 'v', NULL));
                        ASSERT_OK(sd_bus_message_peek_type(reply, &type, NULL));
                        if (type == 'b') {
                                int b;
                                ASSERT_OK(sd_bus_message_read_basic(reply, 'b', &b));
                                if (ret_arg)
                                        *ret_arg = (uint64_t) b;
                        } else if (type == 't') {
                                uint64_t t;
                                ASSERT_OK(sd_bus_message_read_basic(reply, 't', &t));
                                if (ret_arg)
                                        *ret_arg = t;
                        } else
                                ASSERT_OK(sd_bus_message_skip(reply, NULL));
                        ASSERT_OK(sd_bus_message_exit_container(reply));
                }
                while (sd_bus_message_at_end(reply, false) == 0)
                        ASSERT_OK(sd_bus_message_skip(reply, "v"));
                ASSERT_OK(sd_bus_message_exit_container(reply));
                ASSERT_OK(sd_bus_message_exit_container(reply));
                n++;
        }
        return n;
}

/* ---- what the handlers saw ---- */

typedef struct Result {
        unsigned calls;
        int error;
        char *message;
        bool blocked;
        char *holders;
        bool free_logind;
} Result;

static void result_reset(Result *res) {
        free(res->message);
        free(res->holders);
        *res = (Result) {};
}

static void on_reboot(Logind *l, int error, const char *error_message, void *userdata) {
        Result *res = userdata;

        res->calls++;
        res->error = error;
        free(res->message);
        res->message = error_message ? strdup(error_message) : NULL;
        if (res->free_logind)
                logind_free(l);
}

static void on_inhibit(Logind *l, int error, bool blocked, const char *holders, void *userdata) {
        Result *res = userdata;

        res->calls++;
        res->error = error;
        res->blocked = blocked;
        free(res->holders);
        res->holders = holders ? strdup(holders) : NULL;
        if (res->free_logind)
                logind_free(l);
}

static void run_until(sd_event *e, const unsigned *calls, unsigned want, usec_t timeout_usec) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (*calls < want) {
                usec_t n = now_usec(CLOCK_MONOTONIC);
                if (n >= end)
                        break;
                ASSERT_OK(sd_event_run(e, end - n));
        }
}

static void run_for(sd_event *e, usec_t usec) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + usec;

        for (usec_t n; (n = now_usec(CLOCK_MONOTONIC)) < end;)
                ASSERT_OK(sd_event_run(e, end - n));
}

static void reboot_and_wait(sd_event *e, Logind *l, Result *res) {
        result_reset(res);
        ASSERT_OK(logind_reboot(l, on_reboot, res));
        ASSERT_EQ(res->calls, 0);        /* never from inside the call */
        run_until(e, &res->calls, 1, 10 * USEC_PER_SEC);
        ASSERT_EQ(res->calls, 1);
}

static void check_and_wait(sd_event *e, Logind *l, Result *res) {
        result_reset(res);
        ASSERT_OK(logind_check_shutdown_block(l, on_inhibit, res));
        ASSERT_EQ(res->calls, 0);
        run_until(e, &res->calls, 1, 10 * USEC_PER_SEC);
        ASSERT_EQ(res->calls, 1);
}

/* ---- tests ---- */

/* A daemon started on a machine without a system bus keeps running and reports why it cannot
 * reboot. */
TEST(no_bus) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};

        ASSERT_OK(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent", 1));
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));

        reboot_and_wait(e, l, &res);
        ASSERT_TRUE(res.error < 0);
        ASSERT_TRUE(res.message && strstr(res.message, "RebootWithFlags"));
        fprintf(stderr, "    reboot without a bus: %s\n", res.message);

        check_and_wait(e, l, &res);
        ASSERT_TRUE(res.error < 0);
        ASSERT_FALSE(res.blocked);
        ASSERT_TRUE(res.holders == NULL);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* On a logind without RebootWithFlags (before v248, and the mock's template) the reboot still
 * happens, through Reboot(interactive=false). */
TEST(reboot_falls_back_to_reboot) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};
        uint64_t arg = 42;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        mock_call("ClearCalls", "");

        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_TRUE(res.message == NULL);
        ASSERT_EQ(mock_calls("Reboot", &arg), 1);
        ASSERT_EQ(arg, 0);                      /* interactive = false */
        ASSERT_EQ(mock_calls("PowerOff", NULL), 0);

        /* An old logind that rejects the arguments instead of the method falls back as well. */
        mock_add_method("RebootWithFlags", "t", "",
                        "raise dbus.exceptions.DBusException('Invalid flags', "
                        "name='org.freedesktop.DBus.Error.InvalidArgs')");
        mock_call("ClearCalls", "");
        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_EQ(mock_calls("RebootWithFlags", NULL), 1);
        ASSERT_EQ(mock_calls("Reboot", NULL), 1);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* A current logind gets RebootWithFlags(0) and nothing else: one request, one reboot. */
TEST(reboot_with_flags) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};
        uint64_t arg = 42;

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        mock_add_method("RebootWithFlags", "t", "", "");
        mock_call("ClearCalls", "");

        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_EQ(mock_calls("RebootWithFlags", &arg), 1);
        ASSERT_EQ(arg, 0);
        ASSERT_EQ(mock_calls("Reboot", NULL), 0);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* A refusal (polkit, a missing CAP_SYS_BOOT) reaches the caller as an errno and logind's words,
 * and is not asked again through Reboot. */
TEST(reboot_refused) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        mock_add_method("RebootWithFlags", "t", "",
                        "raise dbus.exceptions.DBusException('Access denied by the test', "
                        "name='org.freedesktop.DBus.Error.AccessDenied')");
        mock_call("ClearCalls", "");

        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, -EACCES);
        ASSERT_STREQ(res.message, "Access denied by the test");
        ASSERT_EQ(mock_calls("RebootWithFlags", NULL), 1);
        ASSERT_EQ(mock_calls("Reboot", NULL), 0);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* logind that does not answer in time: -ETIMEDOUT, not a hang. */
TEST(reboot_timeout) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        logind_set_method_timeout(l, 200 * USEC_PER_MSEC);
        mock_add_method("RebootWithFlags", "t", "", "time.sleep(0.6)");

        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, -ETIMEDOUT);
        ASSERT_TRUE(res.message != NULL);
        fprintf(stderr, "    timeout: %s\n", res.message);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
        (void) usleep(600000);            /* let the mock finish sleeping */
}

/* The manager may drop the client at any time (shutdown, reload): no handler runs afterwards,
 * even when it is dropped from inside a handler with another request still pending. */
TEST(free_with_calls_in_flight) {
        Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {}, other = {};

        ASSERT_OK(sd_event_new(&e));
        mock_add_method("RebootWithFlags", "t", "", "time.sleep(0.2)");

        ASSERT_OK(logind_new(&l, e));
        ASSERT_OK(logind_reboot(l, on_reboot, &res));
        ASSERT_OK(logind_check_shutdown_block(l, on_inhibit, &other));
        run_for(e, 20 * USEC_PER_MSEC);
        l = logind_free(l);
        run_for(e, 400 * USEC_PER_MSEC);
        ASSERT_EQ(res.calls, 0);
        ASSERT_EQ(other.calls, 0);

        /* The first answer frees the client; the second request is cancelled with it. */
        ASSERT_OK(logind_new(&l, e));
        res.free_logind = true;
        ASSERT_OK(logind_check_shutdown_block(l, on_inhibit, &res));
        ASSERT_OK(logind_reboot(l, on_reboot, &other));
        run_for(e, 600 * USEC_PER_MSEC);
        ASSERT_EQ(res.calls, 1);
        ASSERT_EQ(other.calls, 0);

        result_reset(&res);
        result_reset(&other);
        sd_event_unref(e);
}

/* A block inhibitor on shutdown (an admin's "systemd-inhibit --mode=block", a package upgrade)
 * stops the reboot and is named; kubelet's delay inhibitor does not. */
TEST(shutdown_block_inhibitors) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));

        /* The template has no BlockInhibited: the question cannot be answered. */
        check_and_wait(e, l, &res);
        ASSERT_TRUE(res.error < 0);
        ASSERT_FALSE(res.blocked);

        mock_call("AddProperty", "ssv", "", "BlockInhibited", "s", "");
        mock_add_method("ListInhibitors", "", "a(ssssuu)",
                        "ret = [('shutdown:sleep', 'apt', 'Upgrading packages', 'block', 0, 1234),"
                        "       ('shutdown', 'kubelet', 'Kubelet needs time to handle node shutdown',"
                        "        'delay', 0, 99),"
                        "       ('sleep:idle', 'gnome', 'Playing a film', 'block', 1000, 5),"
                        "       ('handle-power-key:shutdown', 'backup', 'Nightly\\nbackup', 'block',"
                        "        0, 77)]");

        mock_set_block_inhibited("shutdown:sleep");
        check_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_TRUE(res.blocked);
        /* Delay and sleep-only inhibitors are not named; a newline cannot split STATUS=. */
        ASSERT_STREQ(res.holders, "apt (Upgrading packages), backup (Nightly backup)");

        mock_set_block_inhibited("sleep");
        check_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_FALSE(res.blocked);
        ASSERT_TRUE(res.holders == NULL);

        mock_set_block_inhibited("sleep:idle:handle-lid-switch");
        check_and_wait(e, l, &res);
        ASSERT_FALSE(res.blocked);

        /* Only kubelet's graceful node shutdown holds shutdown, as a delay: not a blocker (logind
         * lists it in DelayInhibited, not in BlockInhibited). */
        mock_add_method("ListInhibitors", "", "a(ssssuu)",
                        "ret = [('shutdown', 'kubelet', 'Kubelet needs time to handle node shutdown',"
                        "        'delay', 0, 99)]");
        mock_set_block_inhibited("");
        check_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_FALSE(res.blocked);

        /* BlockInhibited is what logind enforces: when the list no longer names a holder (it went
         * away between the two calls), still blocked for this look. */
        mock_set_block_inhibited("shutdown");
        check_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_TRUE(res.blocked);
        ASSERT_STREQ(res.holders, "unknown holder");

        /* Many holders: a status line, not a list of all. */
        mock_add_method("ListInhibitors", "", "a(ssssuu)",
                        "ret = [('shutdown', 'job%d' % i, 'why', 'block', 0, i) for i in range(20)]");
        check_and_wait(e, l, &res);
        ASSERT_TRUE(res.blocked);
        ASSERT_TRUE(startswith(res.holders, "job0 (why), job1 (why), "));
        ASSERT_TRUE(endswith(res.holders, "job15 (why), and 4 more"));

        mock_set_block_inhibited("");
        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* The template's own Inhibit() and ListInhibitors(): a real inhibitor taken over the bus. */
TEST(template_inhibitor) {
        _cleanup_(logind_freep) Logind *l = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_event *e = NULL;
        Result res = {};
        int fd, held;

        /* Drop the fixed list: the template's ListInhibitors works again after a Reset. */
        mock_call("Reset", "");
        mock_call("AddProperty", "ssv", "", "BlockInhibited", "s", "");

        ASSERT_OK(sd_bus_call_method(control, "org.freedesktop.login1", "/org/freedesktop/login1",
                                     "org.freedesktop.login1.Manager", "Inhibit", &error, &reply, "ssss",
                                     "shutdown", "unattended-upgrades", "Installing security updates",
                                     "block"));
        ASSERT_OK(sd_bus_message_read(reply, "h", &fd));
        held = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        ASSERT_TRUE(held >= 0);
        mock_set_block_inhibited("shutdown");

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        check_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_TRUE(res.blocked);
        ASSERT_STREQ(res.holders, "unattended-upgrades (Installing security updates)");

        ASSERT_OK(close(held));
        mock_set_block_inhibited("");
        check_and_wait(e, l, &res);
        ASSERT_FALSE(res.blocked);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

/* The system bus restarts (dbus.service restarted, or it came up after us): a request in flight
 * fails, the next one opens a new connection and gets through. */
TEST(bus_restart) {
        _cleanup_(logind_freep) Logind *l = NULL;
        sd_event *e = NULL;
        Result res = {};

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(logind_new(&l, e));
        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);

        /* Gone while a request waits for its answer. */
        mock_add_method("RebootWithFlags", "t", "", "time.sleep(5)");
        result_reset(&res);
        ASSERT_OK(logind_reboot(l, on_reboot, &res));
        run_for(e, 100 * USEC_PER_MSEC);
        /* The bus itself goes first: our connection drops, not just the peer. */
        stop_child(&bus_pid);
        run_until(e, &res.calls, 1, 5 * USEC_PER_SEC);
        ASSERT_EQ(res.calls, 1);
        ASSERT_TRUE(res.error < 0);
        fprintf(stderr, "    bus gone during the call: %s (%s)\n", strerror(-res.error), strna(res.message));
        bench_stop();

        /* Back: the very next request opens a new connection and reaches the new logind. */
        bench_start();
        mock_call("ClearCalls", "");
        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_EQ(mock_calls("Reboot", NULL), 1);

        /* Gone between two requests: the request fails, and the one after the bus is back works. */
        bench_stop();
        run_for(e, 50 * USEC_PER_MSEC);
        reboot_and_wait(e, l, &res);
        ASSERT_TRUE(res.error < 0);
        bench_start();
        mock_call("ClearCalls", "");
        reboot_and_wait(e, l, &res);
        ASSERT_EQ(res.error, 0);
        ASSERT_EQ(mock_calls("Reboot", NULL), 1);

        result_reset(&res);
        l = logind_free(l);
        sd_event_unref(e);
}

int main(void) {
        struct sigaction sa = { .sa_handler = on_fatal_signal, .sa_flags = SA_RESETHAND };

        check_prerequisites();

        ASSERT_TRUE(mkdtemp(bench_dir));
        atexit(bench_cleanup);
        ASSERT_OK(sigaction(SIGABRT, &sa, NULL));
        ASSERT_OK(sigaction(SIGSEGV, &sa, NULL));
        ASSERT_OK(sigaction(SIGTERM, &sa, NULL));
        ASSERT_OK(sigaction(SIGINT, &sa, NULL));

        RUN(no_bus);

        bench_start();
        RUN(reboot_falls_back_to_reboot);
        RUN(reboot_with_flags);
        RUN(reboot_refused);
        RUN(reboot_timeout);
        RUN(free_with_calls_in_flight);
        RUN(shutdown_block_inhibitors);
        RUN(template_inhibitor);
        /* Last: it restarts the bench. */
        mock_call("Reset", "");
        RUN(bus_restart);
        return 0;
}
