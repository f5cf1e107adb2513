/* SPDX-License-Identifier: Apache-2.0 */
/* noderebootctl list: the fleet at a glance, read from the cluster (never from this node's files):
 * every node of the lock group as its daemon published it on its Node (published-status.h),
 * checked against the lock slots (a holder is at least "locked") and placed in the queue; then the
 * slots and their holders, and whether the group (or a node) is paused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ctl.h"
#include "json-util.h"
#include "log.h"
#include "pause.h"
#include "published-status.h"
#include "queue.h"
#include "string-util.h"

/* Nodes are listed in pages of this many (a Node object carries its image list: tens of KiB). */
#define LIST_NODES_PAGE 100U

typedef struct ListedNode {
        char *name;
        PublishedStatus st;
        bool unreadable;                /* its annotation is not a status (edited by hand) */
        bool unschedulable;
        char *boot_id;                  /* status.nodeInfo.bootID, dashes removed */
        char *holds;                    /* the slot it holds, by the Leases */
        bool in_line;
        unsigned place, total;
        PauseEntry pause;
} ListedNode;

typedef struct List {
        Ctl *ctl;
        ListedNode *nodes;
        size_t n_nodes;
        char *continue_token;
        bool nodes_done;
        int nodes_error;
        LockSlotInfo *slots;
        size_t n_slots;
        usec_t server_now;
        bool slots_done;
        int slots_error;
        json_object *tickets;
        bool tickets_done;
        int tickets_error;
        json_object *pause_cm;
        bool pause_done;
        int pause_error;
} List;

static void list_done(List *l) {
        for (size_t i = 0; i < l->n_nodes; i++) {
                free(l->nodes[i].name);
                free(l->nodes[i].boot_id);
                published_status_done(&l->nodes[i].st);
                free(l->nodes[i].holds);
                pause_entry_done(&l->nodes[i].pause);
        }
        free(l->nodes);
        free(l->continue_token);
        lock_slot_infos_free(l->slots, l->n_slots);
        json_object_put(l->tickets);
        json_object_put(l->pause_cm);
}

static int list_nodes_page(List *l);

static int list_add_node(List *l, json_object *node) {
        json_object *annotations = json_get(node, "metadata.annotations");
        const char *name = json_get_string(node, "metadata.name");
        const char *text = json_get_string(json_get_member(annotations, PUBLISHED_STATUS_ANNOTATION), "");
        PublishedStatus st = {};
        ListedNode *n;
        bool unreadable = false;

        if (!name)
                return 0;
        if (published_status_parse(text, &st) < 0)
                unreadable = true;
        else if (!streq_ptr(st.lock, l->ctl->config->lock_name)) {
                published_status_done(&st);     /* another lock group (node pool) */
                return 0;
        }
        n = reallocarray(l->nodes, l->n_nodes + 1, sizeof(ListedNode));
        if (!n) {
                published_status_done(&st);
                return -ENOMEM;
        }
        l->nodes = n;
        n = &l->nodes[l->n_nodes];
        *n = (ListedNode) { .st = st, .unreadable = unreadable, .unschedulable = json_get_bool(node, "spec.unschedulable", false) };
        n->name = strdup(name);
        {
                const char *b = json_get_string(node, "status.nodeInfo.bootID");
                char id[64] = "";
                size_t k = 0;

                for (const char *p = b; p && *p && k + 1 < sizeof id; p++)
                        if (*p != '-')
                                id[k++] = (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
                n->boot_id = k > 0 ? strdup(id) : NULL;
        }
        if (!n->name) {
                published_status_done(&n->st);
                n->boot_id = mfree(n->boot_id);
                return -ENOMEM;
        }
        l->n_nodes++;
        return 0;
}

static void on_nodes(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        List *l = userdata;
        json_object *items = json_get(response->body, "items");
        const char *token;
        int r = error;

        if (r >= 0 && !json_object_is_type(items, json_type_array))
                r = -EBADMSG;
        for (size_t i = 0; r >= 0 && i < json_array_length(items); i++)
                r = list_add_node(l, json_object_array_get_idx(items, i));
        if (r >= 0) {
                token = json_get_string(response->body, "metadata.continue");
                free(l->continue_token);
                l->continue_token = isempty(token) ? NULL : strdup(token);
                if (!isempty(token) && !l->continue_token)
                        r = -ENOMEM;
        }
        if (r >= 0 && l->continue_token) {
                r = list_nodes_page(l);
                if (r >= 0)
                        return;
        }
        l->nodes_error = r;
        l->nodes_done = true;
}

static int list_nodes_page(List *l) {
        _cleanup_free_ char *path = NULL, *etoken = NULL;

        if (l->continue_token) {
                etoken = url_escape(l->continue_token);
                if (!etoken)
                        return -ENOMEM;
        }
        /* Only Nodes whose daemon published a state (the label) carry what we show. */
        path = strdup_printf("/api/v1/nodes?labelSelector=%s&limit=%u%s%s", PUBLISHED_STATE_LABEL, LIST_NODES_PAGE,
                             etoken ? "&continue=" : "", strempty(etoken));
        if (!path)
                return -ENOMEM;
        return kube_client_call(l->ctl->client, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_nodes, l, NULL);
}

static void on_slots(Lock *lock, int error, const LockSlotInfo *slots, size_t n, usec_t server_now, void *userdata) {
        List *l = userdata;

        l->slots_done = true;
        l->slots_error = error;
        l->server_now = server_now;
        if (error >= 0) {
                l->slots = calloc(n ?: 1, sizeof(LockSlotInfo));
                if (!l->slots) {
                        l->slots_error = -ENOMEM;
                        return;
                }
                for (size_t i = 0; i < n; i++) {
                        l->slots[i] = (LockSlotInfo) { .index = slots[i].index, .state = slots[i].state,
                                                       .renew_time = slots[i].renew_time,
                                                       .duration_sec = slots[i].duration_sec };
                        l->slots[i].name = strdup(slots[i].name);
                        l->slots[i].holder = slots[i].holder ? strdup(slots[i].holder) : NULL;
                        l->n_slots = i + 1;
                        if (!l->slots[i].name || (slots[i].holder && !l->slots[i].holder)) {
                                l->slots_error = -ENOMEM;
                                return;
                        }
                }
        }
}

static void on_tickets(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        List *l = userdata;

        l->tickets_done = true;
        l->tickets_error = error;
        if (error >= 0)
                l->tickets = json_object_get(response->body);
}

static void on_pause(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        List *l = userdata;

        l->pause_done = true;
        l->pause_error = error == -ENOENT ? 0 : error;
        if (error >= 0)
                l->pause_cm = json_object_get(response->body);
}

static bool list_holds_slot(const char *holder, void *userdata) {
        const List *l = userdata;

        for (size_t i = 0; i < l->n_slots; i++)
                if (l->slots[i].state == LOCK_SLOT_HELD && streq_ptr(l->slots[i].holder, holder))
                        return true;
        return false;
}

static int compare_nodes(const void *a, const void *b) {
        return strcmp(((const ListedNode *) a)->name, ((const ListedNode *) b)->name);
}

/* The state to show: what the daemon published, corrected by the slots (a holder whose daemon
 * has not published since it took the slot is "locked"; one that says it holds none is not). */
static const char *node_state(const ListedNode *n) {
        if (n->unreadable)
                return "unknown";
        if (n->holds && (streq(n->st.state, "idle") || streq(n->st.state, "pending")))
                return "locked";
        /* The kubelet of a new boot reported: the machine is back, the daemon brings it back into
         * service (it does not write "recovering" itself). */
        if ((streq(n->st.state, "rebooting") || streq(n->st.state, "draining")) && n->st.boot_id && n->boot_id &&
            !streq(n->st.boot_id, n->boot_id))
                return "recovering";
        return n->st.state;
}

static const char *place_of(const ListedNode *n, char *buf, size_t size) {
        if (n->holds)
                return n->holds;
        if (n->in_line)
                snprintf(buf, size, "%u of %u in line", n->place, n->total);
        else
                snprintf(buf, size, "-");
        return buf;
}

static char *kernels_of(const ListedNode *n) {
        if (!n->st.kernel_before && !n->st.kernel_after)
                return strdup("-");
        return strdup_printf("%s → %s", n->st.kernel_before ?: "?", n->st.kernel_after ?: "?");
}

static char *describe_pause(const PauseEntry *e) {
        char t[TIME_MAX];

        return strdup_printf("paused%s%s%s%s%s%s", e->by ? " by " : "", strempty(e->by),
                             e->since ? " since " : "", e->since ? format_abs(t, sizeof t, e->since) : "",
                             e->reason ? ": " : "", strempty(e->reason));
}

static void list_print_text(const List *l, const PauseState *group) {
        usec_t now = now_usec(CLOCK_REALTIME);

        printf("%-20s %-12s %-22s %-18s %-26s %-22s %-10s %s\n", "NODE", "STATE", "SINCE", "SLOT/LINE", "REASON",
               "LAST REBOOT", "RESULT", "KERNEL");
        for (size_t i = 0; i < l->n_nodes; i++) {
                const ListedNode *n = &l->nodes[i];
                char since[TIME_MAX], last[TIME_MAX], place[64];
                _cleanup_free_ char *kernels = kernels_of(n), *reason = NULL;
                const char *why = n->st.blocked;

                if (n->pause.set)
                        why = "pause";
                reason = why && streq(node_state(n), "pending") ?
                        strdup_printf("%s [%s]", n->st.reason ?: "-", why) : strdup(n->st.reason ?: "-");
                printf("%-20s %-12s %-22s %-18s %-26s %-22s %-10s %s\n", n->name, node_state(n),
                       n->st.since ? format_rel(since, sizeof since, n->st.since, now) : "-",
                       place_of(n, place, sizeof place), strna(reason),
                       format_abs(last, sizeof last, n->st.last_reboot),
                       n->st.result ? (startswith(n->st.result, "failed") ? "failed" : n->st.result) : "-",
                       strna(kernels));
        }
        if (l->n_nodes == 0)
                printf("(no Node carries the label %s for lock group %s: no daemon has published its state)\n",
                       PUBLISHED_STATE_LABEL, l->ctl->config->lock_name);

        printf("\nLock %s/%s, Concurrency=%u:", l->ctl->config->lock_namespace, l->ctl->config->lock_name,
               l->ctl->config->concurrency);
        if (l->slots_error < 0)
                printf(" cannot list the slots: %s\n", strerror(ERRNO_VALUE(l->slots_error)));
        else {
                putchar('\n');
                for (size_t i = 0; i < l->n_slots; i++) {
                        const LockSlotInfo *s = &l->slots[i];
                        char rel[TIME_MAX];

                        if (s->holder && s->state != LOCK_SLOT_VACANT && s->state != LOCK_SLOT_MISSING)
                                printf("  %-18s %s by %s, renewed %s\n", s->name,
                                       s->state == LOCK_SLOT_EXPIRED ? "expired, last held" : "held",
                                       s->holder, format_rel(rel, sizeof rel, s->renew_time, l->server_now));
                        else
                                printf("  %-18s free\n", s->name);
                }
        }
        if (l->pause_error < 0)
                printf("Paused:  cannot read ConfigMap %s/%s-pause: %s\n", l->ctl->config->lock_queue_namespace,
                       l->ctl->config->lock_name, strerror(ERRNO_VALUE(l->pause_error)));
        else if (group->group.set) {
                _cleanup_free_ char *d = describe_pause(&group->group);
                printf("Paused:  the whole lock group, %s\n", strna(d));
        } else
                printf("Paused:  no\n");
        for (size_t i = 0; i < l->n_nodes; i++)
                if (l->nodes[i].pause.set) {
                        _cleanup_free_ char *d = describe_pause(&l->nodes[i].pause);
                        printf("  node %s %s\n", l->nodes[i].name, strna(d));
                }
}

/* JSON null is json-c's NULL: added as it is. */
static int put_value(json_object *o, const char *key, json_object *v, bool present) {
        if (!present)
                return json_object_object_add(o, key, NULL) < 0 ? -ENOMEM : 0;
        return json_set(o, key, v);
}

static int put_string(json_object *o, const char *key, const char *v) {
        return put_value(o, key, v ? json_object_new_string(v) : NULL, v);
}

static int put_time(json_object *o, const char *key, usec_t t) {
        char buf[FORMAT_RFC3339_MAX];

        return put_string(o, key, t == 0 || t == USEC_INFINITY ? NULL : format_rfc3339(buf, sizeof buf, t, false));
}

static int pause_to_json(const PauseEntry *e, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;

        if (!e->set) {
                *ret = NULL;
                return 0;
        }
        o = json_object_new_object();
        if (!o || put_string(o, "reason", e->reason) < 0 || put_string(o, "by", e->by) < 0 ||
            put_time(o, "since", e->since) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int list_to_json(const List *l, const PauseState *group, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *nodes = json_object_new_array(),
                *slots = json_object_new_array(), *lock = json_object_new_object();
        json_object *p = NULL;

        if (!o || !nodes || !slots || !lock ||
            put_string(lock, "namespace", l->ctl->config->lock_namespace) < 0 ||
            put_string(lock, "name", l->ctl->config->lock_name) < 0 ||
            json_set(lock, "concurrency", json_object_new_int64(l->ctl->config->concurrency)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_nodes; i++) {
                const ListedNode *n = &l->nodes[i];
                json_object *e = json_object_new_object(), *np = NULL;

                if (!e || json_object_array_add(nodes, e) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
                if (put_string(e, "name", n->name) < 0 || put_string(e, "state", node_state(n)) < 0 ||
                    put_time(e, "since", n->st.since) < 0 || put_string(e, "reason", n->st.reason) < 0 ||
                    put_string(e, "blocked", n->pause.set ? "pause" : n->st.blocked) < 0 ||
                    put_string(e, "slot", n->holds) < 0 ||
                    put_value(e, "queue_place", n->in_line ? json_object_new_int64(n->place) : NULL, n->in_line) < 0 ||
                    put_value(e, "queue_total", n->in_line ? json_object_new_int64(n->total) : NULL, n->in_line) < 0 ||
                    json_set(e, "unschedulable", json_object_new_boolean(n->unschedulable)) < 0 ||
                    put_time(e, "last_reboot", n->st.last_reboot) < 0 || put_string(e, "result", n->st.result) < 0 ||
                    put_string(e, "kernel_before", n->st.kernel_before) < 0 ||
                    put_string(e, "kernel_after", n->st.kernel_after) < 0 ||
                    pause_to_json(&n->pause, &np) < 0 || put_value(e, "paused", np, np) < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_slots; i++) {
                const LockSlotInfo *s = &l->slots[i];
                json_object *e = json_object_new_object();

                if (!e || json_object_array_add(slots, e) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
                if (put_string(e, "name", s->name) < 0 || put_string(e, "state", lock_slot_state_to_string(s->state)) < 0 ||
                    put_string(e, "holder", s->state == LOCK_SLOT_HELD || s->state == LOCK_SLOT_EXPIRED ? s->holder : NULL) < 0 ||
                    put_time(e, "renew_time", s->renew_time) < 0)
                        return -ENOMEM;
        }
        if (pause_to_json(&group->group, &p) < 0 || put_value(o, "paused", p, p) < 0 ||
            json_set(o, "lock", TAKE_PTR(lock)) < 0 || json_set(o, "nodes", TAKE_PTR(nodes)) < 0 ||
            json_set(o, "slots", TAKE_PTR(slots)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int command_list(Ctl *c, bool json) {
        _cleanup_(list_done) List l = { .ctl = c };
        _cleanup_(pause_state_done) PauseState group = {};
        _cleanup_free_ char *queue_path = NULL, *cm = NULL, *ens = NULL, *pause_path = NULL;
        usec_t deadline;
        int r;

        r = ctl_connect(c);
        if (r < 0)
                return connect_error_is_config(r) ? EX_CONFIG : EXIT_FAILURE;
        deadline = now_usec(CLOCK_MONOTONIC) + CTL_DEADLINE_USEC;

        /* Four reads at once: the Nodes, the slots, the queue, the pause. */
        r = list_nodes_page(&l);
        if (r < 0)
                return log_error_errno(r, "Failed to list the Nodes: %m"), EXIT_FAILURE;
        r = lock_list(c->lock, on_slots, &l);
        if (r < 0) {
                l.slots_done = true;
                l.slots_error = r;
        }
        if (c->config->lock_queue) {
                queue_path = queue_list_path(c->config->lock_queue_namespace, c->config->lock_name);
                r = queue_path ? kube_client_call(c->client, "GET", queue_path, NULL, NULL, KUBE_CALL_IDEMPOTENT,
                                                  on_tickets, &l, NULL) : -ENOMEM;
                if (r < 0) {
                        l.tickets_done = true;
                        l.tickets_error = r;
                }
        } else
                l.tickets_done = true;
        cm = pause_configmap_name(c->config->lock_name);
        ens = url_escape(c->config->lock_queue_namespace);
        pause_path = cm && ens ? strjoin("/api/v1/namespaces/", ens, "/configmaps/", cm) : NULL;
        r = pause_path ? kube_client_call(c->client, "GET", pause_path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pause,
                                          &l, NULL) : -ENOMEM;
        if (r < 0) {
                l.pause_done = true;
                l.pause_error = r;
        }
        r = ctl_wait(c, &l.nodes_done, deadline);
        if (r >= 0)
                r = ctl_wait(c, &l.slots_done, deadline);
        if (r >= 0)
                r = ctl_wait(c, &l.tickets_done, deadline);
        if (r >= 0)
                r = ctl_wait(c, &l.pause_done, deadline);
        if (r < 0)
                return log_error_errno(r, "No answer from the API server: %m"), EXIT_FAILURE;
        if (l.nodes_error < 0) {
                log_error_errno(l.nodes_error, "Failed to list the Nodes: %m%s",
                                l.nodes_error == -EACCES ? " (the nodes' ClusterRole of packaging/kubernetes/rbac.yaml "
                                "grants list on nodes; apply this version's)" : "");
                return EXIT_FAILURE;
        }

        qsort(l.nodes, l.n_nodes, sizeof(ListedNode), compare_nodes);
        if (l.pause_cm && pause_state_from_configmap(l.pause_cm, NULL, &group) < 0)
                l.pause_error = -EBADMSG;
        for (size_t i = 0; i < l.n_nodes; i++) {
                ListedNode *n = &l.nodes[i];

                for (size_t j = 0; j < l.n_slots; j++)
                        if ((l.slots[j].state == LOCK_SLOT_HELD || l.slots[j].state == LOCK_SLOT_EXPIRED) &&
                            streq_ptr(l.slots[j].holder, n->name)) {
                                n->holds = strdup(l.slots[j].name);
                                if (!n->holds)
                                        return log_oom(), EXIT_FAILURE;
                        }
                if (l.tickets) {
                        QueueStanding st = {};

                        if (queue_standing_from_list(l.tickets, n->name, list_holds_slot, &l, &st) >= 0 && st.in_line) {
                                n->in_line = true;
                                n->place = st.ahead + 1;
                                n->total = st.total;
                        }
                        queue_standing_done(&st);
                }
                if (l.pause_cm) {
                        PauseState ps = {};

                        if (pause_state_from_configmap(l.pause_cm, n->name, &ps) >= 0 && ps.node.set) {
                                n->pause = ps.node;
                                ps.node = (PauseEntry) {};
                        }
                        pause_state_done(&ps);
                }
        }

        if (json) {
                _cleanup_json_ json_object *o = NULL;

                r = list_to_json(&l, &group, &o);
                if (r < 0)
                        return log_oom(), EXIT_FAILURE;
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        } else
                list_print_text(&l, &group);
        if (l.slots_error < 0 || l.tickets_error < 0 || l.pause_error < 0) {
                log_error("Part of the list is unavailable:%s%s%s",
                          l.slots_error < 0 ? " the lock slots" : "", l.tickets_error < 0 ? " the queue" : "",
                          l.pause_error < 0 ? " the pause" : "");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}
