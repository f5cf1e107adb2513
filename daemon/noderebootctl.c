/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootctl: what noderebootd on this node is doing and waiting for (its state file, the
 * maintenance window, the cluster's lock slots and this Node), and an administrator's release of a
 * stuck lock slot. It reads the daemon's configuration and never writes the state file. The async
 * Kubernetes client runs on an sd-event loop that this command-line tool turns until its answers
 * are in. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>
#include <unistd.h>

#include "boot-id.h"
#include "build-config.h"
#include "config.h"
#include "fileio.h"
#include "json-util.h"
#include "kube-client.h"
#include "kubeconfig.h"
#include "lock.h"
#include "queue.h"
#include "log.h"
#include "node.h"
#include "pause.h"
#include "proxy.h"
#include "reboot-machine.h"
#include "state-file.h"
#include "string-util.h"
#include "window.h"
#include "ctl.h"

/* As state-file.c writes it. */
#define STATE_FILE_NAME "state"
#define STATE_FILE_SIZE_MAX (64U * 1024U)
#define ANNOTATION_PREFIX "nodereboot.io/"

typedef enum Command {
        COMMAND_STATUS,
        COMMAND_UNLOCK,
        COMMAND_LIST,
        COMMAND_PAUSE,
        COMMAND_RESUME,
        COMMAND_REQUEST,
        COMMAND_CANCEL,
} Command;

static const char *arg_config = NULL;
static const char *arg_state_dir = NULL;
static bool arg_json = false;
static bool arg_yes = false;
static bool arg_all = false;
static Command arg_command;
static const char *arg_slot = NULL;
static const char *arg_node = NULL;
static const char *arg_reason = NULL;
static const char *arg_kubeconfig = NULL;
static bool arg_ignore_window = false;

/* ---- formatting ------------------------------------------------------------------------- */

static const char *yes_no(bool b) {
        return b ? "yes" : "no";
}

static void print_field(const char *key, const char *fmt, ...) _printf_(2, 3);
static void print_field(const char *key, const char *fmt, ...) {
        va_list ap;

        printf("%-16s", key);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

/* What the Node of an expired slot's holder says: whether a waiting node takes the slot over
 * (the holder is gone, or Ready and idle) or it is stuck (NotReady, cordoned by us, mid-cycle). */
typedef struct SlotVerdict {
        bool known;                     /* the holder's Node was read, or is gone */
        bool free;
        char *why;                      /* "node-b is NotReady and mid-cycle", "Node node-b no longer exists" */
} SlotVerdict;

/* "held by node-b since 2026-11-27 10:02:03 UTC (5min ago), renewed 12 s ago, expires in 29min";
 * v (may be NULL) says what became of an expired holder. */
static char *describe_slot(const LockSlotInfo *s, usec_t now, const SlotVerdict *v) {
        char since[WHEN_MAX], renewed[TIME_MAX], until[TIME_MAX];
        usec_t expires = s->renew_time > 0 && s->duration_sec > 0 ?
                s->renew_time + (usec_t) s->duration_sec * USEC_PER_SEC : 0;

        switch (s->state) {
        case LOCK_SLOT_MISSING:
                return strdup("free (no Lease yet)");
        case LOCK_SLOT_VACANT:
                if (s->renew_time > 0)
                        return strdup_printf("free since %s", format_when(since, sizeof since, s->renew_time, now));
                return strdup("free");
        default:
                break;
        }

        format_when(since, sizeof since, s->acquire_time, now);
        if (s->renew_time > 0)
                format_rel(renewed, sizeof renewed, s->renew_time, now);
        else
                snprintf(renewed, sizeof renewed, "at an unknown time");
        if (s->state == LOCK_SLOT_EXPIRED && v && v->known && !v->free)
                return strdup_printf("held by %s since %s, renewed %s, expired %s, STUCK: %s; a waiting node "
                                     "does not take it over (release it with 'noderebootctl unlock %s' "
                                     "once %s is dealt with)",
                                     s->holder, since, renewed, format_rel(until, sizeof until, expires, now),
                                     v->why, s->name, s->holder);
        if (s->state == LOCK_SLOT_EXPIRED && v && v->known)
                return strdup_printf("held by %s since %s, renewed %s, expired %s (free to take: %s)",
                                     s->holder, since, renewed, format_rel(until, sizeof until, expires, now),
                                     v->why);
        if (s->state == LOCK_SLOT_EXPIRED)
                return strdup_printf("held by %s since %s, renewed %s, expired %s (free to take only if %s "
                                     "is gone, or Ready and idle)",
                                     s->holder, since, renewed, format_rel(until, sizeof until, expires, now),
                                     s->holder);
        if (expires == 0)
                return strdup_printf("held by %s since %s, renewed %s, never expires (unreadable times)",
                                     s->holder, since, renewed);
        return strdup_printf("held by %s since %s, renewed %s, expires %s", s->holder, since, renewed,
                             format_rel(until, sizeof until, expires, now));
}

/* Deep copy of a slot list a lock handler lent us. */
static int slot_infos_copy(const LockSlotInfo *src, size_t n, LockSlotInfo **ret) {
        LockSlotInfo *d = calloc(MAX(n, (size_t) 1), sizeof *d);

        if (!d)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                d[i] = src[i];
                d[i].name = strdup(src[i].name);
                d[i].holder = src[i].holder ? strdup(src[i].holder) : NULL;
                d[i].resource_version = src[i].resource_version ? strdup(src[i].resource_version) : NULL;
                if (!d[i].name || (src[i].holder && !d[i].holder) ||
                    (src[i].resource_version && !d[i].resource_version)) {
                        lock_slot_infos_free(d, i + 1);
                        return -ENOMEM;
                }
        }
        *ret = d;
        return 0;
}

static const LockSlotInfo *find_slot(const LockSlotInfo *slots, size_t n, const char *name) {
        for (size_t i = 0; slots && i < n; i++)
                if (streq_ptr(slots[i].name, name))
                        return slots + i;
        return NULL;
}

/* ---- status: gathering ------------------------------------------------------------------ */

typedef struct Status {
        usec_t now;                     /* CLOCK_REALTIME of this node */

        char *state_path;
        bool state_exists;
        int state_error;                /* < 0: the state file could not be read */
        char *state_error_text;
        RebootState state;

        char boot_id[BOOT_ID_MAX];
        int boot_id_error;

        bool sentinel_present;

        char *window_text;
        bool window_open;
        usec_t window_next;             /* USEC_INFINITY: never */

        /* the cluster part */
        char *cluster_error;            /* why it is (partly) unavailable, NULL when complete */
        bool slots_done;
        int slots_error;
        LockSlotInfo *slots;
        size_t n_slots;
        usec_t server_now;
        bool node_done;
        int node_error;
        json_object *node;
        bool cluster_done;              /* both of the above */
        SlotVerdict *verdicts;          /* n_slots entries, for the expired ones; NULL when unread */
        struct HolderCheck *holder_checks;
        unsigned verdicts_pending;
        bool verdicts_done;

        /* the lock queue ([Lock] Queue=yes) */
        const char *node_name;          /* borrowed from the config */
        bool queue_done;
        int queue_error;                /* -ENOENT: no ticket list (the namespace is missing) */
        QueueStanding queue;

        /* noderebootctl pause: of the group, of this node */
        bool pause_done;
        int pause_error;
        PauseState pause;

        char *waiting_for;
} Status;

static void status_done(Status *s) {
        pause_state_done(&s->pause);
        free(s->state_path);
        free(s->state_error_text);
        reboot_state_done(&s->state);
        free(s->window_text);
        free(s->cluster_error);
        if (s->verdicts)
                for (size_t i = 0; i < s->n_slots; i++)
                        free(s->verdicts[i].why);
        free(s->verdicts);
        free(s->holder_checks);
        lock_slot_infos_free(s->slots, s->n_slots);
        json_object_put(s->node);
        queue_standing_done(&s->queue);
        free(s->waiting_for);
}

/* Read-only, unlike state_file_load(): a corrupt file is reported, never moved aside. */
static int status_read_state(Status *s, const char *dir) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        size_t size;
        int r;

        s->state_path = strjoin(dir, "/" STATE_FILE_NAME);
        if (!s->state_path)
                return -ENOMEM;

        r = read_full_file(s->state_path, STATE_FILE_SIZE_MAX, &text, &size);
        if (r == -ENOENT)
                return 0;       /* idle */
        s->state_exists = true;
        if (r == -EACCES) {
                s->state_error = r;
                s->state_error_text = strdup("permission denied (run as root or as a member of group nodereboot)");
                return 0;
        }
        if (r < 0) {
                s->state_error = r;
                s->state_error_text = strdup(strerror(ERRNO_VALUE(r)));
                return 0;
        }
        r = state_from_json(text, size, &s->state, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                s->state_error = r;
                s->state_error_text = r == -EPROTONOSUPPORT ?
                        strdup_printf("written by a newer nodereboot: %s", strna(error)) :
                        strdup_printf("corrupt: %s", strna(error));
                reboot_state_done(&s->state);
        }
        return 0;
}

static void on_status_slots(Lock *l, int error, const LockSlotInfo *slots, size_t n, usec_t server_now,
                            void *userdata) {
        Status *s = userdata;

        s->slots_done = true;
        s->cluster_done = s->node_done;
        s->server_now = server_now;
        s->slots_error = error < 0 ? error : slot_infos_copy(slots, n, &s->slots);
        if (s->slots_error >= 0)
                s->n_slots = n;
}

static void on_status_node(KubeClient *c, int error, json_object *node, void *userdata) {
        Status *s = userdata;

        s->node_done = true;
        s->cluster_done = s->slots_done;
        s->node_error = error;
        if (error >= 0)
                s->node = json_object_get(node);
}

static void status_add_cluster_error(Status *s, const char *fmt, ...) _printf_(2, 3);
static void status_add_cluster_error(Status *s, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        char *t;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m)
                return;
        t = s->cluster_error ? strjoin(s->cluster_error, "; ", m) : strdup(m);
        if (!t)
                return;
        free(s->cluster_error);
        s->cluster_error = t;
}

typedef struct HolderCheck {
        Status *status;
        size_t index;
} HolderCheck;

static void on_status_holder(KubeClient *client, int error, json_object *node, void *userdata) {
        HolderCheck *hc = userdata;
        Status *s = hc->status;
        SlotVerdict *v = s->verdicts + hc->index;
        const char *holder = s->slots[hc->index].holder;
        _cleanup_free_ char *why = NULL;

        if (error == -ENOENT) {
                v->known = v->free = true;
                v->why = strdup_printf("Node %s no longer exists", holder);
        } else if (error >= 0) {
                v->known = true;
                v->free = lock_holder_is_idle(node, &why);
                v->why = v->free ? strdup_printf("%s is Ready and idle", holder) :
                                   strdup_printf("%s is %s", holder, strna(why));
        }
        if (v->known && !v->why)
                v->known = false;       /* out of memory: say what the slot is without it */
        if (--s->verdicts_pending == 0)
                s->verdicts_done = true;
}

/* The Node of each expired slot's holder, to tell a stuck slot from a free one. Best effort. */
static void status_judge_expired(Ctl *c, Status *s, usec_t deadline) {
        int r;

        if (!s->slots || s->slots_error < 0 || s->n_slots == 0)
                return;
        s->verdicts = calloc(s->n_slots, sizeof *s->verdicts);
        s->holder_checks = calloc(s->n_slots, sizeof *s->holder_checks);
        if (!s->verdicts || !s->holder_checks)
                return;
        for (size_t i = 0; i < s->n_slots; i++) {
                if (s->slots[i].state != LOCK_SLOT_EXPIRED || !s->slots[i].holder)
                        continue;
                s->holder_checks[i] = (HolderCheck) { .status = s, .index = i };
                r = node_get(c->client, s->slots[i].holder, on_status_holder, s->holder_checks + i);
                if (r >= 0)
                        s->verdicts_pending++;
        }
        s->verdicts_done = s->verdicts_pending == 0;
        /* What is still in flight at the deadline is dropped with the client, unanswered. */
        (void) ctl_wait(c, &s->verdicts_done, deadline);
}

static bool status_holds_slot(const char *holder, void *userdata) {
        const Status *s = userdata;

        for (size_t i = 0; s->slots && i < s->n_slots; i++)
                if (streq_ptr(s->slots[i].holder, holder))
                        return true;
        return false;
}

static void on_status_queue(KubeClient *client, int error, const KubeResponse *response, void *userdata) {
        Status *s = userdata;

        s->queue_done = true;
        s->queue_error = error;
        if (error >= 0)
                s->queue_error = queue_standing_from_list(response->body, s->node_name, status_holds_slot, s,
                                                          &s->queue);
}

/* Our place in the lock queue: one list of the tickets, judged as the daemon judges them. */
static void status_gather_queue(Ctl *c, Status *s, usec_t deadline) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c->config->lock_queue || s->slots_error < 0)
                return;
        s->node_name = c->config->node_name;
        path = queue_list_path(c->config->lock_queue_namespace, c->config->lock_name);
        r = path ? kube_client_call(c->client, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_status_queue, s, NULL) :
                -ENOMEM;
        if (r >= 0)
                r = ctl_wait(c, &s->queue_done, deadline);
        if (r < 0) {
                s->queue_done = true;
                s->queue_error = r;
        }
}

static void on_status_pause(int error, const PauseState *state, void *userdata) {
        Status *s = userdata;

        s->pause_done = true;
        s->pause_error = error;
        if (error >= 0) {
                s->pause = *state;
                /* taken over: the caller's copy is freed after we return */
                *(PauseState *) state = (PauseState) {};
        }
}

static void status_gather_pause(Ctl *c, Status *s, usec_t deadline) {
        int r = pause_get(c->client, c->config->lock_queue_namespace, c->config->lock_name, c->config->node_name,
                          on_status_pause, s);

        if (r >= 0)
                r = ctl_wait(c, &s->pause_done, deadline);
        if (r < 0) {
                s->pause_done = true;
                s->pause_error = r;
        }
}

static void status_gather_cluster(Ctl *c, Status *s) {
        usec_t deadline;
        int r;

        r = ctl_connect(c);
        if (r < 0) {
                status_add_cluster_error(s, "cannot use kubeconfig %s: %s", c->config->kubeconfig,
                                         strerror(ERRNO_VALUE(r)));
                return;
        }

        r = lock_list(c->lock, on_status_slots, s);
        if (r < 0) {
                s->slots_done = true;
                s->slots_error = r;
        }
        r = node_get(c->client, c->config->node_name, on_status_node, s);
        if (r < 0) {
                s->node_done = true;
                s->node_error = r;
        }

        s->cluster_done = s->slots_done && s->node_done;
        deadline = now_usec(CLOCK_MONOTONIC) + CTL_DEADLINE_USEC;
        r = ctl_wait(c, &s->cluster_done, deadline);
        if (r < 0) {
                if (!s->slots_done)
                        s->slots_error = r;
                if (!s->node_done)
                        s->node_error = r;
        } else {
                status_judge_expired(c, s, deadline);
                status_gather_queue(c, s, deadline);
                status_gather_pause(c, s, deadline);
        }
        /* Whatever is still in flight is cancelled here, before the loop goes. */
        c->lock = lock_free(c->lock);

        if (s->slots_error < 0)
                status_add_cluster_error(s, "cannot list the lock slots %s/%s-* at %s: %s",
                                         c->config->lock_namespace, c->config->lock_name,
                                         c->kubeconfig->server_display, strerror(ERRNO_VALUE(s->slots_error)));
        if (s->node_error == -ENOENT)
                status_add_cluster_error(s, "Node %s does not exist", c->config->node_name);
        else if (s->node_error < 0)
                status_add_cluster_error(s, "cannot read Node %s at %s: %s", c->config->node_name,
                                         c->kubeconfig->server_display, strerror(ERRNO_VALUE(s->node_error)));
}

/* ---- status: the one-line summary ------------------------------------------------------- */

/* An expired slot whose holder keeps it: a waiting node does not take it over. */
static bool slot_is_stuck(const Status *s, size_t i) {
        return s->verdicts && s->slots[i].state == LOCK_SLOT_EXPIRED && s->verdicts[i].known &&
                !s->verdicts[i].free;
}

static char *waiting_for_lock(const Ctl *c, const Status *s) {
        _cleanup_free_ char *held = strdup("");
        const char *node = c->config->node_name;
        char since[TIME_MAX];

        if (!s->slots || s->slots_error < 0)
                return strdup("a lock slot (the cluster state is unavailable)");

        for (size_t i = 0; i < s->n_slots; i++)
                if (streq_ptr(s->slots[i].holder, node))
                        return strdup_printf("noderebootd to take up lock slot %s, which names this node already",
                                             s->slots[i].name);
        unsigned free_slots = 0;
        for (size_t i = 0; i < s->n_slots && i < c->config->concurrency; i++)
                if (s->slots[i].state == LOCK_SLOT_MISSING || s->slots[i].state == LOCK_SLOT_VACANT)
                        free_slots++;
        /* The daemon's rule: its turn when nobody is ahead, or fewer than the free slots. */
        if (s->queue_done && s->queue_error >= 0 && s->queue.in_line && s->queue.ahead > 0 &&
            s->queue.ahead >= free_slots)
                return strdup_printf("its turn in the lock queue: place %u of %u, %u node%s ahead (first: %s)",
                                     s->queue.ahead + 1, s->queue.total, s->queue.ahead,
                                     s->queue.ahead == 1 ? "" : "s", strna(s->queue.head));
        for (size_t i = 0; i < s->n_slots && i < c->config->concurrency; i++)
                if (s->slots[i].state != LOCK_SLOT_HELD && !slot_is_stuck(s, i))
                        return strdup_printf("noderebootd to take lock slot %s, which is free "
                                             "(is the service running?)", s->slots[i].name);
        for (size_t i = 0; i < s->n_slots && i < c->config->concurrency; i++) {
                _cleanup_free_ char *stuck = slot_is_stuck(s, i) ?
                        strdup_printf(", stuck: %s (see 'noderebootctl unlock')", s->verdicts[i].why) : NULL;
                char *t = strdup_printf("%s%s%s held by %s since %s%s", held, isempty(held) ? "" : "; ",
                                        s->slots[i].name, strna(s->slots[i].holder),
                                        format_abs(since, sizeof since, s->slots[i].acquire_time), strempty(stuck));
                if (!t)
                        return NULL;
                free(held);
                held = t;
        }
        return strdup_printf("the lock: %s", held);
}

static char *status_waiting_for(const Ctl *c, const Status *s) {
        const RebootState *st = &s->state;
        const char *node = c->config->node_name, *lease = strna(st->lease);
        char when[WHEN_MAX];
        _cleanup_free_ char *text = NULL;
        const LockSlotInfo *own;

        if (s->state_error < 0)
                return strdup("unknown: the state file cannot be read");

        switch (st->phase) {
        case REBOOT_PHASE_IDLE:
                text = s->sentinel_present ?
                        strdup_printf("noderebootd to notice the reboot request %s (is the service running?)",
                                      c->config->sentinel_path) :
                        strdup("nothing: no reboot is required");
                break;
        case REBOOT_PHASE_PENDING:
                if (st->retry_after > s->now)
                        text = strdup_printf("the back-off after a failed attempt, until %s",
                                             format_when(when, sizeof when, st->retry_after, s->now));
                else if (!s->window_open)
                        text = strdup_printf("the maintenance window %s, opens %s", s->window_text,
                                             format_when(when, sizeof when, s->window_next, s->now));
                else if (pause_state_holds(&s->pause)) {
                        _cleanup_free_ char *d = pause_describe(&s->pause, c->config->lock_name);
                        text = strdup_printf("noderebootctl resume%s: %s", s->pause.group.set ? "" : " --node",
                                             strna(d));
                } else
                        text = waiting_for_lock(c, s);
                break;
        case REBOOT_PHASE_LOCKED:
                if (c->config->drain_delay_usec > 0 && s->now < st->phase_since + c->config->drain_delay_usec)
                        text = strdup_printf("the drain delay; cordoning %s (holding lock slot %s)",
                                             format_when(when, sizeof when,
                                                         st->phase_since + c->config->drain_delay_usec, s->now),
                                             lease);
                else
                        text = strdup_printf("noderebootd to read Node %s and cordon it (holding lock slot %s)",
                                             node, lease);
                break;
        case REBOOT_PHASE_DRAINING:
                text = st->drained ?
                        strdup_printf("the reboot: drained; confirming lock slot %s and checking logind's "
                                      "shutdown inhibitors", lease) :
                        strdup_printf("the drain of Node %s to finish (holding lock slot %s)", node, lease);
                break;
        case REBOOT_PHASE_REBOOTING:
                if (s->boot_id_error >= 0 && st->boot_id[0] && !streq(st->boot_id, s->boot_id))
                        text = strdup_printf("noderebootd to start in this new boot, then Node %s to be Ready, "
                                             "the uncordon and the release of lock slot %s", node, lease);
                else if (st->retry_after > s->now)
                        text = strdup_printf("the next reboot attempt %s (%u of %u requests made)",
                                             format_when(when, sizeof when, st->retry_after, s->now),
                                             st->reboot_attempts, c->config->reboot_max_attempts);
                else
                        text = strdup_printf("the machine to go down (reboot request %u of %u)",
                                             st->reboot_attempts, c->config->reboot_max_attempts);
                break;
        case REBOOT_PHASE_RECOVERING:
                if (s->node && !node_is_ready(s->node))
                        text = strdup_printf("Node %s to become Ready, then the uncordon and the release of "
                                             "lock slot %s", node, lease);
                else if (c->config->recovery_pod_selector)
                        /* the daemon's STATUS= names the pods and why they are not ready */
                        text = strdup_printf("the pods on this node matching [Recovery] WaitForPodsSelector=%s to be "
                                             "Ready in this boot (see systemctl status noderebootd; past TimeoutSec= "
                                             "the node stays cordoned), then the release of lock slot %s",
                                             c->config->recovery_pod_selector, lease);
                else
                        text = strdup_printf("noderebootd to %s and release lock slot %s",
                                             st->cordoned && !st->node_was_unschedulable ?
                                             "uncordon the node" : "remove its marks", lease);
                break;
        case REBOOT_PHASE_ROLLING_BACK:
                text = strdup_printf("noderebootd to give this cycle up: %srelease lock slot %s, then %s",
                                     st->cordoned && !st->node_was_unschedulable ? "uncordon the node, " : "",
                                     lease,
                                     st->rollback_to == REBOOT_PHASE_PENDING ? "try again after the back-off" :
                                     "go idle");
                break;
        default:
                text = strdup("unknown");
        }
        if (!text)
                return NULL;

        /* The lease the state names is someone else's now: say so, it explains what follows. */
        own = s->slots_error >= 0 ? find_slot(s->slots, s->n_slots, st->lease) : NULL;
        if (reboot_phase_holds_lock(st->phase) && st->lease && own && !streq_ptr(own->holder, node)) {
                char *t = own->holder ?
                        strdup_printf("%s (note: lock slot %s is held by %s now, not by this node)", text,
                                      st->lease, own->holder) :
                        strdup_printf("%s (note: lock slot %s is free now, not held by this node)", text,
                                      st->lease);
                if (!t)
                        return NULL;
                free(text);
                text = t;
        }
        return TAKE_PTR(text);
}

/* ---- status: text --------------------------------------------------------------------------- */

static void status_print_text(const Ctl *c, const Status *s) {
        const RebootState *st = &s->state;
        const Config *cfg = c->config;
        char t1[WHEN_MAX];

        print_field("Node:", "%s", cfg->node_name);
        if (s->state_error < 0) {
                print_field("State file:", "%s: %s", s->state_path, strna(s->state_error_text));
        } else {
                print_field("State:", "%s since %s", reboot_phase_to_string(st->phase),
                            st->phase_since ? format_when(t1, sizeof t1, st->phase_since, s->now) : "-");
                if (st->phase == REBOOT_PHASE_ROLLING_BACK)
                        print_field("Then:", "%s", reboot_phase_to_string(st->rollback_to));
                if (st->pending_since)
                        print_field("Required since:", "%s", format_when(t1, sizeof t1, st->pending_since, s->now));
                print_field("Reason:", "%s", st->reason ?: "-");
                print_field("Lease:", "%s", st->lease ?: "-");
                if (!st->cordoned)
                        print_field("Cordoned:", "no");
                else if (st->node_was_unschedulable)
                        print_field("Cordoned:", "no: the node was already unschedulable before this cycle "
                                    "(an admin's cordon; it stays cordoned)");
                else
                        print_field("Cordoned:", "yes, by nodereboot (the node was schedulable before; "
                                    "uncordoned after the reboot)");
                print_field("Drained:", "%s", yes_no(st->drained));
                print_field("Boot ID:", "recorded %s%s, current %s", st->boot_id[0] ? st->boot_id : "-",
                            !st->boot_id[0] || s->boot_id_error < 0 ? "" :
                            streq(st->boot_id, s->boot_id) ? " (this boot)" : " (an earlier boot)",
                            s->boot_id_error < 0 ? "unknown" : s->boot_id);
                print_field("Attempts:", "%u reboot request%s this cycle, %u failed cycle%s", st->reboot_attempts,
                            st->reboot_attempts == 1 ? "" : "s", st->failed_cycles,
                            st->failed_cycles == 1 ? "" : "s");
                print_field("Retry after:", "%s", format_when(t1, sizeof t1, st->retry_after, s->now));
                /* it may quote the API server, and so an admission webhook */
                _cleanup_free_ char *last_error = string_replace_control(strdup(strempty(st->last_error)));
                print_field("Last error:", "%s", isempty(last_error) ? "-" : last_error);
                print_field("State file:", "%s%s", s->state_path, s->state_exists ? "" : " (none: idle)");
        }
        print_field("Sentinel:", "%s (%s)", cfg->sentinel_path, s->sentinel_present ? "present" : "absent");
        if (s->window_open)
                print_field("Window:", "%s: open now", s->window_text);
        else if (s->window_next == USEC_INFINITY)
                print_field("Window:", "%s: closed, never opens", s->window_text);
        else
                print_field("Window:", "%s: closed, opens %s", s->window_text,
                            format_when(t1, sizeof t1, s->window_next, s->now));

        print_field("Lock:", "%s/%s, Concurrency=%u", cfg->lock_namespace, cfg->lock_name, cfg->concurrency);
        if (s->slots && s->slots_error >= 0) {
                int width = 0;

                for (size_t i = 0; i < s->n_slots; i++)
                        width = MAX(width, (int) MIN(strlen(s->slots[i].name), (size_t) 64));
                for (size_t i = 0; i < s->n_slots; i++) {
                        _cleanup_free_ char *d = describe_slot(s->slots + i, s->server_now,
                                                               s->verdicts ? s->verdicts + i : NULL);

                        printf("  %-*s  %s%s\n", width, s->slots[i].name, strna(d),
                               i >= cfg->concurrency ? " [beyond Concurrency=]" : "");
                }
                print_field("Server time:", "%s", format_abs(t1, sizeof t1, s->server_now));
        }
        if (s->pause_done && s->pause_error < 0)
                print_field("Paused:", "cannot read ConfigMap %s/%s-pause: %s", cfg->lock_queue_namespace, cfg->lock_name,
                            strerror(ERRNO_VALUE(s->pause_error)));
        else if (s->pause_done) {
                _cleanup_free_ char *d = pause_describe(&s->pause, cfg->lock_name);
                print_field("Paused:", "%s", d ?: "no");
        }
        if (!cfg->lock_queue)
                print_field("Queue:", "off ([Lock] Queue=no)");
        else if (s->queue_done && s->queue_error < 0)
                print_field("Queue:", "%s: cannot be read: %s", cfg->lock_queue_namespace,
                            strerror(ERRNO_VALUE(s->queue_error)));
        else if (s->queue_done && s->queue.in_line)
                print_field("Queue:", "%s: place %u of %u (%u ahead%s%s)", cfg->lock_queue_namespace,
                            s->queue.ahead + 1, s->queue.total, s->queue.ahead,
                            s->queue.ahead > 0 ? ", first " : "", s->queue.ahead > 0 ? strna(s->queue.head) : "");
        else if (s->queue_done)
                print_field("Queue:", "%s: this node is not in line (%u node%s waiting)", cfg->lock_queue_namespace,
                            s->queue.total, s->queue.total == 1 ? "" : "s");
        if (s->node) {
                json_object *annotations = json_get(s->node, "metadata.annotations");
                bool any = false;

                print_field("Node object:", "%s, %s",
                            node_is_unschedulable(s->node) ? "unschedulable" : "schedulable",
                            node_is_ready(s->node) ? "Ready" : "not Ready");
                if (annotations && json_object_is_type(annotations, json_type_object)) {
                        json_object_object_foreach(annotations, key, value)
                                if (startswith(key, ANNOTATION_PREFIX)) {
                                        /* anyone who may annotate the Node wrote it: no escapes */
                                        _cleanup_free_ char *k = string_replace_control(strdup(key)),
                                                *v = string_replace_control(strdup(json_object_get_string(value)));

                                        printf("  %s=%s\n", strna(k), strna(v));
                                        any = true;
                                }
                }
                if (!any)
                        printf("  (no %s annotations)\n", ANNOTATION_PREFIX);
        }
        if (s->cluster_error)
                print_field("Cluster:", "unavailable: %s", s->cluster_error);
        print_field("Waiting for:", "%s", strna(s->waiting_for));
}

/* ---- status: JSON --------------------------------------------------------------------------- */

static int json_put(json_object *o, const char *key, json_object *v) {
        /* NULL v is JSON null */
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_put_new(json_object *o, const char *key, json_object *v) {
        return v ? json_put(o, key, v) : -ENOMEM;
}

static int json_put_string(json_object *o, const char *key, const char *s) {
        return s ? json_put_new(o, key, json_object_new_string(s)) : json_put(o, key, NULL);
}

static int json_put_time(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        if (t == 0)
                return json_put(o, key, NULL);
        if (t == USEC_INFINITY)
                return json_put_new(o, key, json_object_new_string("infinity"));
        return json_put_new(o, key, json_object_new_string(format_rfc3339(buf, sizeof buf, t, true)));
}

static int slot_to_json(const LockSlotInfo *i, const SlotVerdict *v, const char *node, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        usec_t expires = i->renew_time > 0 && i->duration_sec > 0 ?
                i->renew_time + (usec_t) i->duration_sec * USEC_PER_SEC : 0;
        int r;

        if (!o)
                return -ENOMEM;
        if ((r = json_put_string(o, "name", i->name)) < 0 ||
            (r = json_put_new(o, "index", json_object_new_int64(i->index))) < 0 ||
            (r = json_put_string(o, "state", lock_slot_state_to_string(i->state))) < 0 ||
            (r = json_put_string(o, "holder", i->holder)) < 0 ||
            (r = json_put_new(o, "this_node", json_object_new_boolean(streq_ptr(i->holder, node)))) < 0 ||
            (r = json_put_time(o, "acquire_time", i->acquire_time)) < 0 ||
            (r = json_put_time(o, "renew_time", i->renew_time)) < 0 ||
            (r = (i->duration_sec > 0 ?
                  json_put_new(o, "lease_duration_sec", json_object_new_int64(i->duration_sec)) :
                  json_put(o, "lease_duration_sec", NULL))) < 0 ||
            (r = json_put_time(o, "expire_time", expires)) < 0 ||
            (r = json_put_string(o, "stuck", i->state == LOCK_SLOT_EXPIRED && v && v->known && !v->free ?
                                 v->why : NULL)) < 0 ||
            (r = json_put_string(o, "resource_version", i->resource_version)) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int status_to_json(const Ctl *c, const Status *s, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *state_file = json_object_new_object(),
                *boot = json_object_new_object(), *sentinel = json_object_new_object(),
                *window = json_object_new_object(), *lock = json_object_new_object(),
                *cluster = json_object_new_object();
        const Config *cfg = c->config;
        const RebootState *st = &s->state;
        int r;

        if (!o || !state_file || !boot || !sentinel || !window || !lock || !cluster)
                return -ENOMEM;

        if ((r = json_put_string(o, "node", cfg->node_name)) < 0)
                return r;

        if ((r = json_put_string(state_file, "path", s->state_path)) < 0 ||
            (r = json_put_new(state_file, "exists", json_object_new_boolean(s->state_exists))) < 0 ||
            (r = json_put_string(state_file, "error", s->state_error < 0 ? s->state_error_text : NULL)) < 0 ||
            (r = json_put(o, "state_file", TAKE_PTR(state_file))) < 0)
                return r;

        if (s->state_error < 0) {
                if ((r = json_put(o, "state", NULL)) < 0 || (r = json_put(o, "phase_age_sec", NULL)) < 0)
                        return r;
        } else {
                _cleanup_free_ char *text = NULL;
                json_object *state = NULL;

                /* The state file's own form (state_to_json), so both read the same. */
                r = state_to_json(st, &text);
                if (r >= 0)
                        r = json_parse(text, strlen(text), &state);
                if (r < 0)
                        return r;
                if ((r = json_put(o, "state", state)) < 0)
                        return r;
                r = st->phase_since > 0 && st->phase_since <= s->now ?
                        json_put_new(o, "phase_age_sec",
                                     json_object_new_int64((int64_t) ((s->now - st->phase_since) / USEC_PER_SEC))) :
                        json_put(o, "phase_age_sec", NULL);
                if (r < 0)
                        return r;
        }

        if ((r = json_put_string(boot, "recorded", s->state_error >= 0 && st->boot_id[0] ? st->boot_id : NULL)) < 0 ||
            (r = json_put_string(boot, "current", s->boot_id_error >= 0 ? s->boot_id : NULL)) < 0 ||
            (r = (s->state_error >= 0 && st->boot_id[0] && s->boot_id_error >= 0 ?
                  json_put_new(boot, "same_boot", json_object_new_boolean(streq(st->boot_id, s->boot_id))) :
                  json_put(boot, "same_boot", NULL))) < 0 ||
            (r = json_put(o, "boot_id", TAKE_PTR(boot))) < 0)
                return r;

        if ((r = json_put_string(sentinel, "path", cfg->sentinel_path)) < 0 ||
            (r = json_put_new(sentinel, "present", json_object_new_boolean(s->sentinel_present))) < 0 ||
            (r = json_put(o, "sentinel", TAKE_PTR(sentinel))) < 0)
                return r;

        if ((r = json_put_string(window, "description", s->window_text)) < 0 ||
            (r = json_put_new(window, "open", json_object_new_boolean(s->window_open))) < 0 ||
            (r = json_put_time(window, "next_open", s->window_open ? s->now :
                               s->window_next == USEC_INFINITY ? 0 : s->window_next)) < 0 ||
            (r = json_put(o, "window", TAKE_PTR(window))) < 0)
                return r;

        if ((r = json_put_string(lock, "namespace", cfg->lock_namespace)) < 0 ||
            (r = json_put_string(lock, "name", cfg->lock_name)) < 0 ||
            (r = json_put_new(lock, "concurrency", json_object_new_int64(cfg->concurrency))) < 0)
                return r;
        {
                _cleanup_json_ json_object *q = json_object_new_object();
                bool known = cfg->lock_queue && s->queue_done && s->queue_error >= 0;

                if (!q)
                        return -ENOMEM;
                if ((r = json_put_new(q, "enabled", json_object_new_boolean(cfg->lock_queue))) < 0 ||
                    (r = json_put_string(q, "namespace", cfg->lock_queue_namespace)) < 0 ||
                    (r = json_put(q, "in_line", known ? json_object_new_boolean(s->queue.in_line) : NULL)) < 0 ||
                    (r = json_put(q, "place", known && s->queue.in_line ?
                                      json_object_new_int64(s->queue.ahead + 1) : NULL)) < 0 ||
                    (r = json_put(q, "waiting", known ? json_object_new_int64(s->queue.total) : NULL)) < 0 ||
                    (r = json_put_string(q, "first", known ? s->queue.head : NULL)) < 0 ||
                    (r = json_put(lock, "queue", TAKE_PTR(q))) < 0)
                        return r;
        }
        if ((r = json_put(o, "lock", TAKE_PTR(lock))) < 0)
                return r;
        if (s->pause_done && s->pause_error >= 0) {
                _cleanup_json_ json_object *p = json_object_new_object();
                _cleanup_free_ char *d = pause_describe(&s->pause, cfg->lock_name);

                if (!p)
                        return -ENOMEM;
                if ((r = json_put_new(p, "group", json_object_new_boolean(s->pause.group.set))) < 0 ||
                    (r = json_put_new(p, "node", json_object_new_boolean(s->pause.node.set))) < 0 ||
                    (r = json_put_string(p, "description", d)) < 0 ||
                    (r = json_put(o, "paused", TAKE_PTR(p))) < 0)
                        return r;
        } else if ((r = json_put(o, "paused", NULL)) < 0)
                return r;

        if ((r = json_put_new(cluster, "available", json_object_new_boolean(!s->cluster_error))) < 0 ||
            (r = json_put_string(cluster, "error", s->cluster_error)) < 0 ||
            (r = json_put_string(cluster, "server", c->kubeconfig ? c->kubeconfig->server_display : NULL)) < 0 ||
            (r = json_put_time(cluster, "server_time", s->slots && s->slots_error >= 0 ? s->server_now : 0)) < 0)
                return r;
        if (s->slots && s->slots_error >= 0) {
                _cleanup_json_ json_object *a = json_object_new_array();

                if (!a)
                        return -ENOMEM;
                for (size_t i = 0; i < s->n_slots; i++) {
                        json_object *slot = NULL;

                        r = slot_to_json(s->slots + i, s->verdicts ? s->verdicts + i : NULL, cfg->node_name, &slot);
                        if (r < 0)
                                return r;
                        if (json_object_array_add(a, slot) < 0) {
                                json_object_put(slot);
                                return -ENOMEM;
                        }
                }
                r = json_put(cluster, "slots", TAKE_PTR(a));
        } else
                r = json_put(cluster, "slots", NULL);
        if (r < 0)
                return r;
        if (s->node) {
                _cleanup_json_ json_object *n = json_object_new_object(), *ann = json_object_new_object();
                json_object *annotations = json_get(s->node, "metadata.annotations");

                if (!n || !ann)
                        return -ENOMEM;
                if (annotations && json_object_is_type(annotations, json_type_object)) {
                        json_object_object_foreach(annotations, key, value)
                                if (startswith(key, ANNOTATION_PREFIX) &&
                                    (r = json_put_string(ann, key, json_object_get_string(value))) < 0)
                                        return r;
                }
                if ((r = json_put_string(n, "name", cfg->node_name)) < 0 ||
                    (r = json_put_new(n, "unschedulable",
                                      json_object_new_boolean(node_is_unschedulable(s->node)))) < 0 ||
                    (r = json_put_new(n, "ready", json_object_new_boolean(node_is_ready(s->node)))) < 0 ||
                    (r = json_put(n, "annotations", TAKE_PTR(ann))) < 0 ||
                    (r = json_put(cluster, "node", TAKE_PTR(n))) < 0)
                        return r;
        } else if ((r = json_put(cluster, "node", NULL)) < 0)
                return r;
        if ((r = json_put(o, "cluster", TAKE_PTR(cluster))) < 0 ||
            (r = json_put_string(o, "waiting_for", s->waiting_for)) < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

static int command_status(Ctl *c) {
        _cleanup_(status_done) Status s = { .now = now_usec(CLOCK_REALTIME) };
        int r;

        reboot_state_init(&s.state);

        r = status_read_state(&s, c->state_dir);
        if (r < 0)
                return log_oom(), EXIT_FAILURE;
        s.boot_id_error = boot_id_read(s.boot_id);
        s.sentinel_present = access(c->config->sentinel_path, F_OK) >= 0;
        s.window_text = window_describe(c->window);
        s.window_open = window_contains(c->window, s.now);
        s.window_next = window_next_open(c->window, s.now);
        if (!s.state_path || !s.window_text || (s.state_error < 0 && !s.state_error_text))
                return log_oom(), EXIT_FAILURE;

        status_gather_cluster(c, &s);

        s.waiting_for = status_waiting_for(c, &s);
        if (!s.waiting_for)
                return log_oom(), EXIT_FAILURE;

        if (arg_json) {
                _cleanup_json_ json_object *o = NULL;

                r = status_to_json(c, &s, &o);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the status as JSON: %m"), EXIT_FAILURE;
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                              JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        } else
                status_print_text(c, &s);
        fflush(stdout);

        /* The cluster part is best effort: it is reported, and the local part stands on its own. */
        if (s.cluster_error)
                log_error("The cluster part of the status is unavailable: %s", s.cluster_error);
        if (s.state_error < 0) {
                log_error("Cannot read the state file %s: %s", s.state_path, s.state_error_text);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

/* ---- unlock --------------------------------------------------------------------------------- */

typedef struct Listing {
        bool done;
        int error;
        LockSlotInfo *slots;            /* owned copies of what the handler saw */
        size_t n;
        usec_t server_now;
} Listing;

static void on_unlock_listed(Lock *l, int error, const LockSlotInfo *slots, size_t n, usec_t server_now,
                             void *userdata) {
        Listing *li = userdata;

        li->done = true;
        li->server_now = server_now;
        li->error = error < 0 ? error : slot_infos_copy(slots, n, &li->slots);
        if (li->error >= 0)
                li->n = n;
}

typedef struct Release {
        bool done;
        int error;
        bool have_slot;
        LockSlotInfo slot;
} Release;

static void on_released(Lock *l, int error, const LockSlotInfo *slot, void *userdata) {
        Release *rel = userdata;

        rel->done = true;
        rel->error = error;
        if (slot) {
                /* Only the holder and the times are reported; the strings are borrowed. */
                rel->have_slot = true;
                rel->slot = *slot;
                rel->slot.name = NULL;
                rel->slot.resource_version = NULL;
                rel->slot.holder = slot->holder ? strdup(slot->holder) : NULL;
                if (slot->holder && !rel->slot.holder)
                        rel->error = -ENOMEM;
        }
}

/* Returns true when released (or free already). */
static bool unlock_one(Ctl *c, const char *slot, usec_t deadline) {
        const Config *cfg = c->config;
        Release rel = {};
        char since[WHEN_MAX];
        bool ok = false;
        int r;

        r = lock_force_release(c->lock, slot, on_released, &rel);
        if (r >= 0)
                r = ctl_wait(c, &rel.done, deadline);
        if (r < 0) {
                log_error_errno(r, "Failed to release lock slot %s/%s: %m", cfg->lock_namespace, slot);
                goto finish;
        }

        switch (rel.error) {
        case 0:
                if (rel.slot.holder)
                        printf("Released %s; it was held by %s since %s.\n", slot, rel.slot.holder,
                               format_when(since, sizeof since, rel.slot.acquire_time, now_usec(CLOCK_REALTIME)));
                else
                        printf("%s is free already; nothing was written.\n", slot);
                ok = true;
                break;
        case -ESTALE:
                if (rel.have_slot && rel.slot.holder)
                        log_error("Lock slot %s changed while it was being released (now held by %s since %s); "
                                  "nothing was overwritten. Check with 'noderebootctl status' and run again.",
                                  slot, rel.slot.holder,
                                  format_when(since, sizeof since, rel.slot.acquire_time, now_usec(CLOCK_REALTIME)));
                else
                        log_error("Lock slot %s changed while it was being released; nothing was overwritten. "
                                  "Check with 'noderebootctl status' and run again.", slot);
                break;
        case -ENOENT:
                if ((unsigned) lock_slot_index(cfg->lock_name, slot) < cfg->concurrency) {
                        printf("%s does not exist: it is free; nothing was written.\n", slot);
                        ok = true;
                } else
                        log_error("Lease %s/%s does not exist.", cfg->lock_namespace, slot);
                break;
        case -EPERM:
                log_error("Lease %s/%s is not labelled %s=%s: it is not a slot of this lock group; "
                          "not touching it. If a tool removed the label of a slot, put it back "
                          "(kubectl label lease -n %s %s %s=%s) and run again.", cfg->lock_namespace, slot,
                          LOCK_LABEL, cfg->lock_name, cfg->lock_namespace, slot, LOCK_LABEL, cfg->lock_name);
                break;
        default:
                log_error_errno(rel.error, "Failed to release lock slot %s/%s: %m", cfg->lock_namespace, slot);
        }

finish:
        lock_slot_info_done(&rel.slot);
        return ok;
}

static int command_unlock(Ctl *c) {
        const Config *cfg = c->config;
        _cleanup_strv_free_ char **targets = NULL;
        Listing li = {};
        usec_t deadline;
        bool failed = false;
        int r, ret = EXIT_SUCCESS;

        if (arg_slot && lock_slot_index(cfg->lock_name, arg_slot) < 0) {
                log_error("'%s' is not a slot of lock group %s (its slots are %s-0 … %s-%u).", arg_slot,
                          cfg->lock_name, cfg->lock_name, cfg->lock_name, cfg->concurrency - 1);
                return EX_USAGE;
        }

        r = ctl_connect(c);
        if (r < 0)
                return connect_error_is_config(r) ? EX_CONFIG : EXIT_FAILURE;
        deadline = now_usec(CLOCK_MONOTONIC) + CTL_DEADLINE_USEC;

        /* With --yes and one slot, lock_force_release() reads the slot itself; otherwise the group
         * is listed first, to show it or to find the held slots. Listing writes nothing. */
        if (!arg_yes || arg_all) {
                r = lock_list(c->lock, on_unlock_listed, &li);
                if (r >= 0)
                        r = ctl_wait(c, &li.done, deadline);
                if (r >= 0)
                        r = li.error;
                if (r < 0) {
                        log_error_errno(r, "Failed to list the lock slots %s/%s-* at %s: %m", cfg->lock_namespace,
                                        cfg->lock_name, c->kubeconfig->server_display);
                        ret = EXIT_FAILURE;
                        goto finish;
                }

                for (size_t i = 0; i < li.n; i++) {
                        bool wanted = arg_all || streq(li.slots[i].name, arg_slot);

                        if (!wanted)
                                continue;
                        if (!li.slots[i].holder) {
                                if (!arg_all)
                                        printf("%s is free; nothing to release.\n", li.slots[i].name);
                                continue;
                        }
                        if (strv_extend(&targets, li.slots[i].name) < 0) {
                                ret = (log_oom(), EXIT_FAILURE);
                                goto finish;
                        }
                        if (!arg_yes) {
                                _cleanup_free_ char *d = describe_slot(li.slots + i, li.server_now, NULL);

                                printf("Would release %s/%s: %s.\n", cfg->lock_namespace, li.slots[i].name,
                                       strna(d));
                        }
                }
                if (!arg_all && !targets && !find_slot(li.slots, li.n, arg_slot)) {
                        log_error("Lease %s/%s does not exist (or is not labelled %s=%s).", cfg->lock_namespace,
                                  arg_slot, LOCK_LABEL, cfg->lock_name);
                        ret = EXIT_FAILURE;
                        goto finish;
                }
                if (arg_all && !targets) {
                        printf("No slot of %s/%s is held; nothing to release.\n", cfg->lock_namespace,
                               cfg->lock_name);
                        goto finish;
                }
                if (!targets)
                        goto finish;
                if (!arg_yes) {
                        printf("\nOnly release a slot whose holder is gone or stuck: while a holder is still "
                               "draining or rebooting,\nanother node may take the slot and go down at the same "
                               "time. See noderebootctl(1).\n");
                        log_error("Nothing was changed. Run 'noderebootctl unlock %s --yes' to release %s.",
                                  arg_all ? "--all" : arg_slot, arg_all && strv_length(targets) > 1 ? "them" : "it");
                        ret = EXIT_FAILURE;
                        goto finish;
                }
        } else if (strv_extend(&targets, arg_slot) < 0) {
                ret = (log_oom(), EXIT_FAILURE);
                goto finish;
        }

        for (char **t = targets; t && *t; t++)
                if (!unlock_one(c, *t, deadline))
                        failed = true;
        if (failed)
                ret = EXIT_FAILURE;

finish:
        lock_slot_infos_free(li.slots, li.n);
        return ret;
}

/* ---- command line --------------------------------------------------------------------------- */

static void help(void) {
        printf("%1$s [OPTIONS...] COMMAND\n\n"
               "Shows what noderebootd on this node and the fleet do; pauses, requests and releases.\n\n"
               "Commands:\n"
               "  status [--json]          This node's reboot state, the window, the lock slots, the Node\n"
               "  list [--json]            Every node of the lock group: state, reason, slot or place in\n"
               "                           line, last reboot and kernels; the slots; whether paused\n"
               "  pause [--node NAME] [--reason TEXT]\n"
               "                           Stop the lock group (or node NAME) from taking lock slots\n"
               "  resume [--node NAME]     Lift that pause\n"
               "  request [--reason TEXT] [--ignore-window]\n"
               "                           Reboot this node as if its packages required it\n"
               "  cancel                   Withdraw that request before the node drains\n"
               "  unlock SLOT [--yes]      Release lock slot SLOT (e.g. nodereboot-0) whoever holds it\n"
               "  unlock --all [--yes]     Release every held slot of the lock group\n\n"
               "Options:\n"
               "  -h --help                Show this help\n"
               "     --version             Show the version\n"
               "  -c --config=FILE         Read FILE (and FILE.d/*.conf) instead of the standard folders\n"
               "     --state-dir=DIR       The daemon's state folder (default: $STATE_DIRECTORY or\n"
               "                           /var/lib/nodereboot)\n"
               "     --json                status, list: print one JSON object\n"
               "     --kubeconfig=FILE     Use FILE's credential (pause and resume need an operator's)\n"
               "     --node=NAME           pause, resume: one node instead of the whole lock group\n"
               "     --reason=TEXT         pause, request: why (kept in the cluster or the request)\n"
               "     --ignore-window       request: do not wait for the maintenance window\n"
               "  -y --yes                 unlock: really release (without it, only show what would be)\n"
               "     --all                 unlock: every held slot of the group\n"
               "\nExit status: 0 done, 1 failure (or unlock without --yes), 64 usage, 78 configuration.\n"
               "See noderebootctl(1).\n",
               program_invocation_short_name);
}

/* Returns 1 to go on, 0 to exit successfully, < 0 on a usage error (logged). */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_STATE_DIR,
                ARG_JSON,
                ARG_ALL,
                ARG_KUBECONFIG,
                ARG_NODE,
                ARG_REASON,
                ARG_IGNORE_WINDOW,
        };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h'           },
                { "version",   no_argument,       NULL, ARG_VERSION   },
                { "config",    required_argument, NULL, 'c'           },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "json",      no_argument,       NULL, ARG_JSON      },
                { "yes",       no_argument,       NULL, 'y'           },
                { "all",       no_argument,       NULL, ARG_ALL       },
                { "kubeconfig", required_argument, NULL, ARG_KUBECONFIG },
                { "node",      required_argument, NULL, ARG_NODE      },
                { "reason",    required_argument, NULL, ARG_REASON    },
                { "ignore-window", no_argument,   NULL, ARG_IGNORE_WINDOW },
                {}
        };
        const char *verb;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "hc:y", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("noderebootctl %s\n", PACKAGE_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'y':
                        arg_yes = true;
                        break;
                case ARG_ALL:
                        arg_all = true;
                        break;
                case ARG_KUBECONFIG:
                        arg_kubeconfig = optarg;
                        break;
                case ARG_NODE:
                        arg_node = optarg;
                        break;
                case ARG_REASON:
                        arg_reason = optarg;
                        break;
                case ARG_IGNORE_WINDOW:
                        arg_ignore_window = true;
                        break;
                case '?':
                default:
                        if (optopt && optopt < 0x100)
                                log_error("Unknown option -%c, or it lacks its argument; see --help.", optopt);
                        else
                                log_error("Unknown option %s, or it lacks its argument; see --help.",
                                          argv[optind - 1]);
                        return -EINVAL;
                }

        if (optind >= argc) {
                log_error("No command given; see --help.");
                return -EINVAL;
        }
        verb = argv[optind++];

        if ((arg_node && !STR_IN_SET(verb, "pause", "resume")) ||
            (arg_reason && !STR_IN_SET(verb, "pause", "request")) ||
            (arg_ignore_window && !streq(verb, "request")) ||
            (arg_json && !STR_IN_SET(verb, "status", "list"))) {
                log_error("%s does not take %s; see --help.", verb,
                          arg_node && !STR_IN_SET(verb, "pause", "resume") ? "--node" :
                          arg_reason && !STR_IN_SET(verb, "pause", "request") ? "--reason" :
                          arg_ignore_window && !streq(verb, "request") ? "--ignore-window" : "--json");
                return -EINVAL;
        }
        if (STR_IN_SET(verb, "list", "pause", "resume", "request", "cancel")) {
                arg_command = streq(verb, "list") ? COMMAND_LIST : streq(verb, "pause") ? COMMAND_PAUSE :
                        streq(verb, "resume") ? COMMAND_RESUME : streq(verb, "request") ? COMMAND_REQUEST :
                        COMMAND_CANCEL;
                if (arg_yes || arg_all) {
                        log_error("--yes and --all belong to the unlock command.");
                        return -EINVAL;
                }
                if (optind < argc) {
                        log_error("%s takes no arguments ('%s' given).", verb, argv[optind]);
                        return -EINVAL;
                }
        } else if (streq(verb, "status")) {
                arg_command = COMMAND_STATUS;
                if (arg_yes || arg_all) {
                        log_error("--yes and --all belong to the unlock command.");
                        return -EINVAL;
                }
                if (optind < argc) {
                        log_error("status takes no arguments ('%s' given).", argv[optind]);
                        return -EINVAL;
                }
        } else if (streq(verb, "unlock")) {
                arg_command = COMMAND_UNLOCK;
                if (arg_json) {
                        log_error("--json belongs to the status command.");
                        return -EINVAL;
                }
                if (optind < argc)
                        arg_slot = argv[optind++];
                if (optind < argc) {
                        log_error("unlock takes one slot ('%s' given too).", argv[optind]);
                        return -EINVAL;
                }
                if (!!arg_slot == arg_all) {
                        log_error("unlock needs either a SLOT (e.g. nodereboot-0) or --all.");
                        return -EINVAL;
                }
        } else {
                log_error("Unknown command '%s'; the commands are status, list, pause, resume, request, cancel "
                          "and unlock, see --help.", verb);
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(ctl_done) Ctl c = {};
        _cleanup_free_ char *window_error = NULL;
        const char *state_dir;
        int r;

        /* It holds the same token and key as the daemon: no core dump of them, no key log. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) unsetenv("SSLKEYLOGFILE");

        log_open();
        /* The library's progress messages are for the daemon's journal; this tool prints its own. */
        log_set_max_level(LOG_NOTICE);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EX_USAGE : EXIT_SUCCESS;

        r = config_new(&c.config);
        if (r < 0)
                return log_oom(), EXIT_FAILURE;
        r = arg_config ? config_load_file(c.config, arg_config) : config_load_default(c.config, NULL);
        if (r >= 0)
                r = config_verify(c.config);
        if (r < 0)
                return r == -ENOMEM ? EXIT_FAILURE : EX_CONFIG;        /* logged with file, line and key */
        r = window_new(&c.window, c.config->window_days, c.config->window_start, c.config->window_end,
                       c.config->window_time_zone, &window_error);
        if (r == -ENOMEM)
                return log_oom(), EXIT_FAILURE;
        if (r < 0) {
                log_error("Invalid maintenance window: %s", strna(window_error));
                return EX_CONFIG;
        }

        state_dir = arg_state_dir ?: getenv("STATE_DIRECTORY");
        if (isempty(state_dir))
                state_dir = "/var/lib/nodereboot";
        /* systemd passes a colon-separated list when several folders are configured; we use the first. */
        c.state_dir = strndup(state_dir, strcspn(state_dir, ":"));
        if (!c.state_dir)
                return log_oom(), EXIT_FAILURE;

        c.kubeconfig_path = arg_kubeconfig;
        switch (arg_command) {
        case COMMAND_STATUS:
                return command_status(&c);
        case COMMAND_UNLOCK:
                return command_unlock(&c);
        case COMMAND_LIST:
                return command_list(&c, arg_json);
        case COMMAND_PAUSE:
        case COMMAND_RESUME:
                return command_pause(&c, arg_command == COMMAND_PAUSE, arg_node, arg_reason);
        case COMMAND_REQUEST:
                return command_request(&c, arg_reason, arg_ignore_window);
        case COMMAND_CANCEL:
                return command_cancel(&c);
        }
        return EXIT_FAILURE;
}
