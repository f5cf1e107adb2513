/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootd: command line, configuration, then the manager's event loop. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sysexits.h>

#include "build-config.h"
#include "config.h"
#include "kubeconfig.h"
#include "log.h"
#include "manager.h"

static const char *arg_config = NULL;
static const char *arg_state_dir = NULL;
static bool arg_check_config = false;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Reboots this Kubernetes node safely when the OS asks for it.\n\n"
               "  -h --help            Show this help\n"
               "     --version         Show the version\n"
               "  -c --config=FILE     Read FILE (and FILE.d/*.conf) instead of the standard folders\n"
               "     --state-dir=DIR   Keep the state in DIR (default: $STATE_DIRECTORY or /var/lib/nodereboot)\n"
               "     --check-config    Check the configuration, the kubeconfig and its credentials, then exit\n"
               "\nSee noderebootd(8) and nodereboot.conf(5).\n",
               program_invocation_short_name);
}

/* Returns 1 to go on, 0 to exit successfully, < 0 on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_STATE_DIR,
                ARG_CHECK_CONFIG,
        };
        static const struct option options[] = {
                { "help",         no_argument,       NULL, 'h'              },
                { "version",      no_argument,       NULL, ARG_VERSION      },
                { "config",       required_argument, NULL, 'c'              },
                { "state-dir",    required_argument, NULL, ARG_STATE_DIR    },
                { "check-config", no_argument,       NULL, ARG_CHECK_CONFIG },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("noderebootd %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_CHECK_CONFIG:
                        arg_check_config = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("%s takes no positional arguments ('%s' given); see --help.",
                          program_invocation_short_name, argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* Errors that no restart can fix: systemd must not restart us every RestartSec= (the unit has
 * RestartPreventExitStatus=78). A kubeconfig that is missing (-ENOENT), invalid (-EINVAL), of an
 * unsupported kind (-EOPNOTSUPP), unreadable for our user (-EACCES) or open to others (-EPERM). */
static bool error_is_config(int r) {
        return r == -EINVAL || r == -ENOENT || r == -EOPNOTSUPP || r == -EACCES || r == -EPERM;
}

#define SERVICE_USER "nodereboot"       /* User= of nodereboot.service */

/* Run as root, --check-config would read files the service's user cannot: try each one as that
 * user, in a child that drops to it. Returns the number of files it cannot read (logged), 0 when
 * there is no such user (a build machine) or we are not root. */
static unsigned check_readable_by_service_user(char * const *paths) {
        unsigned errors = 0;
        struct passwd *pw;

        if (geteuid() != 0)
                return 0;
        pw = getpwnam(SERVICE_USER);
        if (!pw)
                return 0;

        for (char * const *p = paths; *p; p++) {
                int status = 0;
                pid_t pid;

                pid = fork();
                if (pid < 0) {
                        log_warning_errno(errno, "Failed to check %s as user " SERVICE_USER ", ignoring: %m", *p);
                        continue;
                }
                if (pid == 0) {
                        int fd;

                        if (initgroups(SERVICE_USER, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
                            setuid(pw->pw_uid) < 0)
                                _exit(2);
                        fd = open(*p, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                        _exit(fd < 0 ? (errno == ENOENT ? 0 : 1) : 0);
                }
                if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) == 2) {
                        log_warning("Could not check whether user " SERVICE_USER " can read %s, ignoring.", *p);
                        continue;
                }
                if (WEXITSTATUS(status) == 1) {
                        log_error("%s: the service runs as user " SERVICE_USER ", who cannot read it (its mode, "
                                  "owner or a folder above it). Fix: chgrp " SERVICE_USER " %s; chmod 0640 %s",
                                  *p, *p, *p);
                        errors++;
                }
        }
        return errors;
}

/* --check-config: every check the daemon does before it touches anything, each error reported
 * (not only the first), then 78 if there was any. */
static int check_config(const Config *config, int config_result) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        unsigned errors = config_result < 0;
        int r;

        /* A configuration that did not load still names a kubeconfig (the default, or what was read
         * before the error): check it too. */
        if (!isempty(config->kubeconfig) && config->kubeconfig[0] == '/' &&
            access(config->kubeconfig, F_OK) < 0 && errno == ENOENT)
                /* An image not joined yet: the daemon waits for the file; nothing to check. */
                log_notice("Kubeconfig %s does not exist yet; the daemon waits for it.", config->kubeconfig);
        else if (!isempty(config->kubeconfig) && config->kubeconfig[0] == '/') {
                char *files[4] = {};
                size_t n = 0;

                files[n++] = config->kubeconfig;
                r = kubeconfig_load(config->kubeconfig, config->context, &k);
                if (r < 0)
                        errors++;
                else {
                        if (k->token_file)
                                files[n++] = k->token_file;
                        if (k->client_key_file)
                                files[n++] = k->client_key_file;
                }
                errors += check_readable_by_service_user(files);
        }

        if (errors > 0) {
                log_error("The check found errors, see above; the daemon would not start.");
                return EX_CONFIG;
        }
        printf("Configuration OK.\n");
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *state_dir;
        int r;

        /* First of all: no core dump (nor ptrace by our own user) may expose the token or the key. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* TLS libraries write session keys where this names, which would let anyone who captured
         * the traffic read the bearer token in it. */
        (void) unsetenv("SSLKEYLOGFILE");

        log_open();

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EX_USAGE : EXIT_SUCCESS;

        r = config_new(&config);
        if (r < 0)
                return log_oom(), EXIT_FAILURE;
        r = arg_config ? config_load_file(config, arg_config) : config_load_default(config, NULL);
        if (r >= 0)
                r = config_verify(config);
        if (arg_check_config)
                return check_config(config, r);
        if (r < 0)
                /* Already logged with file, line and key. EX_CONFIG keeps systemd from restarting us
                 * in a loop (RestartPreventExitStatus=78 in the unit). */
                return EX_CONFIG;
        log_set_max_level(config->log_level);

        state_dir = arg_state_dir ?: getenv("STATE_DIRECTORY");
        if (isempty(state_dir))
                state_dir = "/var/lib/nodereboot";
        else if (strchr(state_dir, ':'))
                /* systemd passes a colon-separated list when several folders are configured. */
                log_warning("$STATE_DIRECTORY lists several folders, using the first.");

        {
                _cleanup_free_ char *first = strndup(state_dir, strcspn(state_dir, ":"));
                if (!first)
                        return log_oom(), EXIT_FAILURE;
                r = manager_new(&m, TAKE_PTR(config), first);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to create the manager: %m"), EXIT_FAILURE;

        r = manager_start(m);
        if (r < 0)
                return error_is_config(r) ? EX_CONFIG : EXIT_FAILURE;

        r = manager_run(m);
        if (r < 0 && error_is_config(r))
                return EX_CONFIG;       /* a kubeconfig that appeared while we waited, and is bad */
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;
        return EXIT_SUCCESS;
}
