/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootctl pause / resume: writes the pause of the lock group (or of one node) into the
 * cluster, where every waiting daemon sees it (kube/pause.h). Needs an operator's credential: the
 * nodes' ServiceAccount may only read it. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "pause.h"
#include "string-util.h"

typedef struct PauseResult {
        bool done;
        int result;
        char *message;
} PauseResult;

static void on_updated(int result, const char *message, void *userdata) {
        PauseResult *p = userdata;

        p->done = true;
        p->result = result;
        /* the API server's words may quote what an admission webhook said: printed on a terminal */
        p->message = message ? string_replace_control(strdup(message)) : NULL;
}

/* "alice@admin-host": who ran the command, for the record (kubectl shows the credential's user in
 * the audit log; this says who at which terminal). */
static char *who_am_i(void) {
        const char *user = getenv("SUDO_USER");
        struct passwd *pw = NULL;
        char host[256] = "";

        if (isempty(user)) {
                pw = getpwuid(getuid());
                user = pw ? pw->pw_name : NULL;
        }
        (void) gethostname(host, sizeof host - 1);
        return strdup_printf("%s@%s", strna(user), host[0] ? host : "?");
}

int command_pause(Ctl *c, bool pause, const char *node, const char *reason) {
        _cleanup_free_ char *key = NULL, *value = NULL, *by = NULL, *name = NULL, *what = NULL;
        PauseResult res = {};
        int r;

        if (node) {
                key = pause_node_key(node);
                if (!key) {
                        log_error("'%s' is not a node name (expected a DNS subdomain such as worker-1).", node);
                        return EX_USAGE;
                }
                what = strdup_printf("node %s", node);
        } else {
                key = strdup(PAUSE_KEY_GROUP);
                what = strdup_printf("lock group %s", c->config->lock_name);
        }
        name = pause_configmap_name(c->config->lock_name);
        if (!key || !what || !name)
                return log_oom(), EXIT_FAILURE;
        if (pause) {
                if (reason && strlen(reason) > PAUSE_REASON_MAX) {
                        log_error("--reason is %zu characters long; at most %u are kept.", strlen(reason),
                                  PAUSE_REASON_MAX);
                        return EX_USAGE;
                }
                by = who_am_i();
                value = by ? pause_entry_format(reason, by, now_usec(CLOCK_REALTIME)) : NULL;
                if (!value)
                        return log_oom(), EXIT_FAILURE;
        }

        r = ctl_connect(c);
        if (r < 0)
                return connect_error_is_config(r) ? EX_CONFIG : EXIT_FAILURE;
        r = pause_update(c->client, c->config->lock_queue_namespace, c->config->lock_name, key, value, on_updated, &res);
        if (r < 0)
                return log_error_errno(r, "Failed to change ConfigMap %s/%s: %m", c->config->lock_queue_namespace, name),
                       EXIT_FAILURE;
        r = ctl_wait(c, &res.done, now_usec(CLOCK_MONOTONIC) + CTL_DEADLINE_USEC);
        if (r < 0) {
                free(res.message);
                return log_error_errno(r, "No answer from the API server about ConfigMap %s/%s: %m",
                                       c->config->lock_queue_namespace, name), EXIT_FAILURE;
        }
        if (res.result == -EACCES) {
                log_error("Not allowed to change ConfigMap %s/%s%s%s. Pausing and resuming need the "
                          "nodereboot-operator role (packaging/kubernetes/operator-rbac.yaml), which the nodes' "
                          "ServiceAccount does not have: run with --kubeconfig=<an operator's kubeconfig>.",
                          c->config->lock_queue_namespace, name, res.message ? ": " : "", strempty(res.message));
                free(res.message);
                return EXIT_FAILURE;
        }
        if (res.result == -ENOENT && pause) {
                log_error("Namespace %s does not exist%s%s. It holds the lock queue and the pause: apply "
                          "packaging/kubernetes/rbac.yaml (or set [Lock] QueueNamespace= to the namespace that does).",
                          c->config->lock_queue_namespace, res.message ? ": " : "", strempty(res.message));
                free(res.message);
                return EXIT_FAILURE;
        }
        if (res.result < 0) {
                log_error("Failed to %s reboots of %s (ConfigMap %s/%s): %s%s%s", pause ? "pause" : "resume", what,
                          c->config->lock_queue_namespace, name, strerror(ERRNO_VALUE(res.result)),
                          res.message ? ": " : "", strempty(res.message));
                free(res.message);
                return EXIT_FAILURE;
        }
        free(res.message);

        if (pause)
                printf("%s reboots of %s (ConfigMap %s/%s, key %s).\n"
                       "Nodes waiting for a slot stay pending; nodes holding one finish their cycle.\n"
                       "Resume with: noderebootctl resume%s%s\n",
                       res.result > 0 ? "Paused" : "Already paused:", what, c->config->lock_queue_namespace, name, key,
                       node ? " --node " : "", strempty(node));
        else if (res.result > 0)
                printf("Resumed reboots of %s (removed key %s of ConfigMap %s/%s).\n", what, key,
                       c->config->lock_queue_namespace, name);
        else
                printf("Reboots of %s were not paused (ConfigMap %s/%s has no key %s).\n", what,
                       c->config->lock_queue_namespace, name, key);
        return EXIT_SUCCESS;
}
