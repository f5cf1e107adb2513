/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootd: command line, configuration, then the manager's event loop. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "build-config.h"
#include "config.h"
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
               "     --check-config    Load and check the configuration, then exit\n"
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

int main(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *state_dir;
        int r;

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
        if (r < 0)
                /* Already logged with file, line and key. EX_CONFIG keeps systemd from restarting us
                 * in a loop (RestartPreventExitStatus=78 in the unit). */
                return EX_CONFIG;
        log_set_max_level(config->log_level);

        if (arg_check_config) {
                printf("Configuration OK.\n");
                return EXIT_SUCCESS;
        }

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
                return r == -EINVAL || r == -ENOENT || r == -EOPNOTSUPP ? EX_CONFIG : EXIT_FAILURE;

        r = manager_run(m);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m"), EXIT_FAILURE;
        return EXIT_SUCCESS;
}
