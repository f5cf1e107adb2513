/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootctl request / cancel: a reboot of this node asked for by hand. The request is a file
 * in the daemon's state folder (host/reboot-request.h) that the daemon watches like the sentinel:
 * it goes through the window (unless --ignore-window), the blockers and the lock like any other
 * reboot. cancel withdraws it while the node has not begun to drain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ctl.h"
#include "fileio.h"
#include "log.h"
#include "reboot-machine.h"
#include "reboot-request.h"
#include "state-file.h"
#include "string-util.h"

/* The daemon's phase, as its state file says (IDLE when there is none). Never moves a file
 * aside: that is the daemon's business. */
static int read_phase(const char *dir, RebootPhase *ret) {
        _cleanup_free_ char *path = strjoin(dir, "/state"), *text = NULL, *error = NULL;
        _cleanup_(reboot_state_done) RebootState s;
        size_t size;
        int r;

        reboot_state_init(&s);
        if (!path)
                return -ENOMEM;
        r = read_full_file(path, 64U * 1024U, &text, &size);
        if (r == -ENOENT) {
                *ret = REBOOT_PHASE_IDLE;
                return 0;
        }
        if (r < 0)
                return r;
        r = state_from_json(text, size, &s, &error);
        if (r < 0)
                return r;
        *ret = s.phase;
        return 0;
}

/* Draining, or rebooting: the request of this boot is being carried out. (After the reboot, a
 * request of this new boot asks for one more cycle, which has not begun.) */
static bool phase_past_drain(RebootPhase p) {
        return p == REBOOT_PHASE_DRAINING || p == REBOOT_PHASE_REBOOTING;
}

int command_request(Ctl *c, const char *reason, bool ignore_window) {
        _cleanup_(reboot_request_done) RebootRequest req = {};
        _cleanup_free_ char *path = reboot_request_path(c->state_dir);
        RebootPhase phase = REBOOT_PHASE_IDLE;
        int r;

        if (!path)
                return log_oom(), EXIT_FAILURE;
        if (reason) {
                if (strlen(reason) > REBOOT_REQUEST_REASON_MAX) {
                        log_error("--reason is %zu characters long; at most %u are allowed.", strlen(reason),
                                  REBOOT_REQUEST_REASON_MAX);
                        return EX_USAGE;
                }
                for (const char *p = reason; *p; p++)
                        if (*p < ' ' || *p > '~') {
                                log_error("--reason may hold printable ASCII only (it goes to the Node, Events and chat).");
                                return EX_USAGE;
                        }
                req.reason = strdup(reason);
                if (!req.reason)
                        return log_oom(), EXIT_FAILURE;
        }
        r = boot_id_read(req.boot_id);
        if (r < 0)
                return log_error_errno(r, "Failed to read this boot's ID: %m"), EXIT_FAILURE;
        req.ignore_window = ignore_window;
        req.requested_at = now_usec(CLOCK_REALTIME);
        r = reboot_request_write(c->state_dir, &req);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m%s", path,
                                       r == -EACCES || r == -EPERM ? " (run as root)" : ""), EXIT_FAILURE;
        (void) read_phase(c->state_dir, &phase);
        printf("Requested a reboot of this node%s%s (%s).\n", reason ? ": " : "", strempty(reason), path);
        if (phase_past_drain(phase))
                printf("A reboot is under way already (state %s); this request is done with it.\n",
                       reboot_phase_to_string(phase));
        else if (phase == REBOOT_PHASE_RECOVERING || phase == REBOOT_PHASE_ROLLING_BACK)
                printf("A cycle is ending (state %s); this request starts a new one after it.\n",
                       reboot_phase_to_string(phase));
        else if (phase != REBOOT_PHASE_IDLE)
                printf("The node waits for a reboot already (state %s); this request goes with it.\n",
                       reboot_phase_to_string(phase));
        else
                printf("It waits for %sthe blockers and a lock slot like any other reboot; "
                       "withdraw it with: noderebootctl cancel\n",
                       ignore_window ? "" : "the maintenance window, ");
        return EXIT_SUCCESS;
}

int command_cancel(Ctl *c) {
        _cleanup_(reboot_request_done) RebootRequest req = {};
        _cleanup_free_ char *path = reboot_request_path(c->state_dir), *error = NULL;
        char boot_id[BOOT_ID_MAX] = "";
        RebootPhase phase = REBOOT_PHASE_IDLE;
        int r;

        if (!path)
                return log_oom(), EXIT_FAILURE;
        r = reboot_request_read(c->state_dir, &req, &error);
        if (r == -ENOENT) {
                printf("No reboot of this node was requested (%s does not exist).\n", path);
                return EXIT_SUCCESS;
        }
        if (r < 0 && r != -EBADMSG)
                return log_error_errno(r, "Failed to read %s: %m", path), EXIT_FAILURE;
        (void) boot_id_read(boot_id);
        r = read_phase(c->state_dir, &phase);
        if (r >= 0 && phase_past_drain(phase) && !error && streq(req.boot_id, boot_id)) {
                log_error("Too late to cancel: the node is %s already (state %s); the cycle finishes.",
                          phase == REBOOT_PHASE_DRAINING ? "draining" : "rebooting", reboot_phase_to_string(phase));
                return EXIT_FAILURE;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "Failed to remove %s: %m", path), EXIT_FAILURE;
        /* The daemon may have begun to drain between our look and the removal. */
        if (read_phase(c->state_dir, &phase) >= 0 && phase_past_drain(phase) && !error) {
                log_error("Removed the request as the node began to drain (state %s): unless something else "
                          "requires the reboot, the daemon gives the cycle up and uncordons the node; see "
                          "noderebootctl status.", reboot_phase_to_string(phase));
                return EXIT_FAILURE;
        }
        if (error)
                printf("Removed %s, which was not a request nodereboot could read (%s).\n", path, error);
        else
                printf("Cancelled the reboot requested%s%s.\n", req.reason ? ": " : "", strempty(req.reason));
        if (access(c->config->sentinel_path, F_OK) >= 0)
                printf("%s still exists: the packages still require a reboot.\n", c->config->sentinel_path);
        return EXIT_SUCCESS;
}
