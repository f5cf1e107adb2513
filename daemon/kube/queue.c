/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <string.h>

#include "json-util.h"
#include "log.h"
#include "queue-internal.h"
#include "queue.h"
#include "string-util.h"

#define LEASES_API "/apis/coordination.k8s.io/v1"
/* Longest object name the API server accepts (a DNS subdomain). */
#define QUEUE_NAME_MAX 253U
/* Tickets the watch remembers; beyond it the queue is off (a fleet larger than any we test). */
#define QUEUE_ENTRIES_MAX 100000U
/* Back-off of a failed write of our ticket. */
#define QUEUE_RETRY_MIN_USEC (1 * USEC_PER_SEC)
#define QUEUE_RETRY_MAX_USEC (30 * USEC_PER_SEC)


/* ---- pure decisions ---------------------------------------------------------------------- */

static const char * const queue_verdict_table[_QUEUE_VERDICT_MAX] = {
        [QUEUE_OFF]     = "off",
        [QUEUE_JOINING] = "joining",
        [QUEUE_WAITING] = "waiting",
        [QUEUE_TURN]    = "turn",
};

const char *queue_verdict_to_string(QueueVerdict v) {
        return v >= 0 && v < _QUEUE_VERDICT_MAX ? queue_verdict_table[v] : NULL;
}

int queue_ticket_name(const char *lock_name, const char *identity, char **ret) {
        char *s;

        if (isempty(lock_name) || isempty(identity) || !ret)
                return -EINVAL;
        s = strjoin(lock_name, "-q-", identity);
        if (!s)
                return -ENOMEM;
        if (strlen(s) > QUEUE_NAME_MAX) {
                free(s);
                return -ENAMETOOLONG;
        }
        *ret = s;
        return 0;
}

int queue_build_ticket(const char *namespace, const char *lock_name, const char *ticket, const char *identity,
                       usec_t since, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        json_object *metadata, *labels, *spec;
        int r;

        if (isempty(namespace) || isempty(lock_name) || isempty(ticket) || isempty(identity) || !ret)
                return -EINVAL;
        if (!o)
                return -ENOMEM;
        if ((r = json_set(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"))) < 0 ||
            (r = json_set(o, "kind", json_object_new_string("Lease"))) < 0 ||
            (r = json_set(o, "metadata", json_object_new_object())) < 0 ||
            (r = json_set(o, "spec", json_object_new_object())) < 0)
                return r;
        metadata = json_get_member(o, "metadata");
        spec = json_get_member(o, "spec");
        if ((r = json_set(metadata, "name", json_object_new_string(ticket))) < 0 ||
            (r = json_set(metadata, "namespace", json_object_new_string(namespace))) < 0 ||
            (r = json_set(metadata, "labels", json_object_new_object())) < 0)
                return r;
        labels = json_get_member(metadata, "labels");
        if ((r = json_set(labels, QUEUE_LABEL, json_object_new_string(lock_name))) < 0 ||
            (r = json_set(spec, "holderIdentity", json_object_new_string(identity))) < 0 ||
            (r = json_set_time(spec, "acquireTime", since)) < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

int queue_build_redate(json_object *ticket, usec_t since, json_object **ret) {
        _cleanup_json_ json_object *copy = NULL;
        json_object *spec;
        int r;

        if (!ticket || !ret)
                return -EINVAL;
        if (isempty(json_get_string(ticket, "metadata.resourceVersion")))
                return -EBADMSG;
        if (json_object_deep_copy(ticket, &copy, NULL) < 0)
                return -ENOMEM;
        spec = json_get_member(copy, "spec");
        if (!spec || !json_object_is_type(spec, json_type_object)) {
                r = json_set(copy, "spec", json_object_new_object());
                if (r < 0)
                        return r;
                spec = json_get_member(copy, "spec");
        }
        r = json_set_time(spec, "acquireTime", since);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(copy);
        return 0;
}

static int strdup_or_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int queue_entry_from_lease(json_object *lease, QueueEntry *e) {
        const char *name = json_get_string(lease, "metadata.name");
        const char *holder = json_get_string(lease, "spec.holderIdentity");
        const char *since = json_get_string(lease, "spec.acquireTime");
        QueueEntry n = { .since = USEC_INFINITY };
        usec_t t;

        if (isempty(name))
                return -EINVAL;
        if (since && parse_rfc3339(since, &t) >= 0)
                n.since = t;
        if (strdup_or_null(name, &n.name) < 0 ||
            strdup_or_null(isempty(holder) ? NULL : holder, &n.holder) < 0 ||
            strdup_or_null(json_get_string(lease, "metadata.uid"), &n.uid) < 0 ||
            strdup_or_null(json_get_string(lease, "metadata.resourceVersion"), &n.resource_version) < 0) {
                queue_entry_done(&n);
                return -ENOMEM;
        }
        *e = n;
        return 0;
}

void queue_entry_done(QueueEntry *e) {
        if (!e)
                return;
        free(e->name);
        free(e->holder);
        free(e->uid);
        free(e->resource_version);
        *e = (QueueEntry) {};
}

static int cmp_str(const char *a, const char *b) {
        return strcmp(strempty(a), strempty(b));
}

int queue_entry_compare(const QueueEntry *a, const QueueEntry *b) {
        int r;

        if (a->since != b->since)
                return a->since < b->since ? -1 : 1;
        r = cmp_str(a->holder, b->holder);
        if (r != 0)
                return r;
        return cmp_str(a->name, b->name);
}

void queue_line_compute(const QueueEntry *entries, size_t n, const char *identity, QueueHoldsSlot holds,
                        void *userdata, QueueLine *ret) {
        QueueLine line = {};

        /* Ours first, so that the count ahead is one pass over the tickets. */
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(entries[i].holder, identity) && (!line.own || queue_entry_compare(entries + i, line.own) < 0))
                        line.own = entries + i;

        for (size_t i = 0; i < n; i++) {
                const QueueEntry *e = entries + i;

                if (!e->holder)
                        continue;
                if (streq(e->holder, identity)) {
                        if (e == line.own)
                                line.total++;
                        continue;
                }
                if (holds && holds(e->holder, userdata))
                        continue;
                line.total++;
                if (line.own && queue_entry_compare(e, line.own) < 0)
                        line.ahead++;
                if (!line.head || queue_entry_compare(e, line.head) < 0)
                        line.head = e;
        }
        *ret = line;
}

bool queue_is_turn(unsigned ahead) {
        return ahead == 0;
}

usec_t queue_pass_over_delay(unsigned ahead, unsigned free_slots, usec_t period) {
        if (free_slots == 0 || free_slots == UINT_MAX || queue_is_turn(ahead))
                return USEC_INFINITY;
        /* With k slots free, the first k in line could all have gone: a node that many places
         * back waits a single period (several passing over the same ticket at once is harmless,
         * the delete carries preconditions), so a front of stopped daemons' tickets costs one
         * period each, not ever longer ones. */
        return (usec_t) (ahead >= free_slots ? ahead + 1 - free_slots : 1) * period;
}

char *queue_list_path(const char *namespace, const char *lock_name) {
        _cleanup_free_ char *ens = url_escape(namespace), *selector = strjoin(QUEUE_LABEL, "=", lock_name),
                *eselector = NULL;

        if (!ens || !selector)
                return NULL;
        eselector = url_escape(selector);
        if (!eselector)
                return NULL;
        return strjoin(LEASES_API "/namespaces/", ens, "/leases?labelSelector=", eselector);
}

int queue_standing_from_list(json_object *list, const char *identity, QueueHoldsSlot holds, void *userdata,
                             QueueStanding *ret) {
        json_object *items = json_get(list, "items");
        QueueEntry *entries = NULL;
        size_t n = 0, length;
        QueueLine line;
        int r = 0;

        if (!items || !json_object_is_type(items, json_type_array) || !ret || isempty(identity))
                return -EBADMSG;
        length = json_array_length(items);
        if (length > 0) {
                entries = calloc(length, sizeof *entries);
                if (!entries)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < length; i++) {
                r = queue_entry_from_lease(json_object_array_get_idx(items, i), entries + n);
                if (r == -EINVAL) {
                        r = 0;
                        continue;
                }
                if (r < 0)
                        goto finish;
                n++;
        }
        queue_line_compute(entries, n, identity, holds, userdata, &line);
        *ret = (QueueStanding) {
                .in_line = line.own,
                .ahead = line.ahead,
                .total = line.total,
        };
        if (line.head && line.head->holder) {
                /* any node may write a ticket's holder; noderebootctl prints it on a terminal */
                ret->head = string_replace_control(strdup(line.head->holder));
                if (!ret->head)
                        r = -ENOMEM;
        }
finish:
        for (size_t i = 0; i < n; i++)
                queue_entry_done(entries + i);
        free(entries);
        return r;
}

void queue_standing_done(QueueStanding *s) {
        if (s)
                s->head = mfree(s->head);
}

/* ---- the Queue --------------------------------------------------------------------------- */

typedef enum OwnTicket {
        OWN_ABSENT,
        OWN_PRESENT,
        OWN_UNKNOWN,            /* may exist: a write's answer was lost, or left from before a restart */
} OwnTicket;

struct Queue {
        KubeClient *client;
        sd_event *event;
        char *namespace;
        char *lock_name;
        char *identity;
        char *ticket;                   /* our ticket's name */
        char *ticket_path;              /* .../namespaces/<ns>/leases/<ticket> */
        char *collection_path;          /* .../namespaces/<ns>/leases */
        char *list_path;                /* ...?labelSelector=nodereboot.io/queue=<name> */

        bool joined;                    /* we want a ticket */
        usec_t since;
        OwnTicket own;
        json_object *own_lease;         /* ours as last read, for a re-date */
        KubeCall *call;                 /* the write of our ticket in flight */
        sd_event_source *retry_timer;
        usec_t retry_usec;
        bool off;
        char *off_reason;
        unsigned failures;              /* consecutive failures (writes of our ticket, the first list) */
        usec_t failing_since;           /* CLOCK_MONOTONIC of the first of them */
        char *failing_reason;           /* set once they turn the queue off: why */
        bool redated;                   /* our ticket was re-dated since the last join */
        usec_t expired_pass_over_usec;  /* queue_set_expired_pass_over() */
        bool no_pass_over;              /* queue_set_pass_over(q, false) */
        QueuePassOverCheck pass_check;  /* queue_set_pass_over_check() */
        void *pass_check_userdata;
        bool pass_asked;                /* the check runs for the stalled head */
        bool pass_confirmed;            /* ... and said go */
        sd_event_source *notify_event;  /* a deferred call of the handler */
        sd_event_source *settle_timer;  /* our ticket is new: the end of QUEUE_SETTLE_USEC */
        usec_t settle_for_since;        /* the since that settle_end is for */
        usec_t settle_end;              /* CLOCK_MONOTONIC */

        KubeWatch *watch;
        bool synced;
        QueueEntry *entries;
        size_t n_entries;
        QueueChangedHandler changed;
        void *userdata;

        /* passing over a head that leaves a slot free */
        char *stall_head;               /* "name\nresourceVersion" of the head we wait for */
        usec_t stall_since;             /* CLOCK_MONOTONIC */
        sd_event_source *stall_timer;
        KubeCall *pass_call;
};

static void queue_reconcile(Queue *q);

static void queue_notify(Queue *q) {
        if (q->changed)
                q->changed(q, q->userdata);
}

static QueueEntry *queue_find(Queue *q, const char *name) {
        for (size_t i = 0; i < q->n_entries; i++)
                if (streq(q->entries[i].name, name))
                        return q->entries + i;
        return NULL;
}

static void queue_remove_at(Queue *q, size_t i) {
        queue_entry_done(q->entries + i);
        q->entries[i] = q->entries[--q->n_entries];
}

static void queue_clear(Queue *q) {
        for (size_t i = 0; i < q->n_entries; i++)
                queue_entry_done(q->entries + i);
        q->entries = mfree(q->entries);
        q->n_entries = 0;
}

static int queue_store(Queue *q, json_object *lease) {
        QueueEntry e, *old;
        int r;

        r = queue_entry_from_lease(lease, &e);
        if (r < 0)
                return r;
        e.listed = true;
        old = queue_find(q, e.name);
        if (old) {
                queue_entry_done(old);
                *old = e;
                return 0;
        }
        if (q->n_entries >= QUEUE_ENTRIES_MAX) {
                queue_entry_done(&e);
                return -E2BIG;
        }
        old = reallocarray(q->entries, q->n_entries + 1, sizeof *q->entries);
        if (!old) {
                queue_entry_done(&e);
                return -ENOMEM;
        }
        q->entries = old;
        q->entries[q->n_entries++] = e;
        return 0;
}

static void queue_turn_off(Queue *q, int error, const char *what) {
        _cleanup_free_ char *why = NULL;

        if (error == -EACCES)
                why = strdup_printf("the API server refused to let us %s tickets in namespace %s (HTTP 403); "
                                    "grant the Role of rbac.yaml there, or set [Lock] QueueNamespace= empty",
                                    what, q->namespace);
        else
                why = strdup_printf("namespace %s does not exist; create it (rbac.yaml does), or set "
                                    "[Lock] QueueNamespace= empty", q->namespace);
        if (!q->off || !streq_ptr(q->off_reason, why))
                log_warning("The lock queue is off, every waiting node tries for a slot itself: %s.", strna(why));
        q->off = true;
        free(q->off_reason);
        q->off_reason = TAKE_PTR(why);
        q->watch = kube_watch_free(q->watch);
        q->synced = false;
        queue_clear(q);
}

static bool status_is_namespace_missing(const KubeResponse *response, const char *namespace) {
        json_object *body = response ? response->body : NULL;

        return response && response->status == 404 &&
                streq_ptr(json_get_string(body, "reason"), "NotFound") &&
                streq_ptr(json_get_string(body, "details.kind"), "namespaces") &&
                streq_ptr(json_get_string(body, "details.name"), namespace);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Queue *q = userdata;

        q->retry_timer = sd_event_source_disable_unref(q->retry_timer);
        queue_reconcile(q);
        return 0;
}

/* Errors no retry can mend: the queue turns off at once rather than after QUEUE_FAIL_OPEN_USEC. */
static bool error_is_lasting(int error) {
        return error == -EPERM || error == -EINVAL || error == -EPROTO || error == -EBADMSG || error == -EFBIG;
}

static int on_notify_event(sd_event_source *s, void *userdata) {
        Queue *q = userdata;

        q->notify_event = sd_event_source_disable_unref(q->notify_event);
        queue_notify(q);
        return 0;
}

/* The handler, from the event loop: for paths that may run inside queue_join(). */
static void queue_notify_later(Queue *q) {
        if (q->notify_event || !q->changed)
                return;
        if (sd_event_add_defer(q->event, &q->notify_event, on_notify_event, q) < 0)
                log_warning("Failed to schedule the lock queue's notification; the next change brings it.");
}

static bool queue_failing_off(Queue *q) {
        return q->failing_reason != NULL;
}

/* A queue that cannot be joined must not keep a node from its slot (see queue_join()). */
static void queue_count_failure(Queue *q, int error, const char *what) {
        usec_t now = now_usec(CLOCK_MONOTONIC);

        if (q->failures++ == 0)
                q->failing_since = now;
        if (!q->joined || queue_failing_off(q))
                return;
        if (!error_is_lasting(error) && now < q->failing_since + QUEUE_FAIL_OPEN_USEC)
                return;
        q->failing_reason = strdup_printf("cannot %s (%s)", what, strerror(ERRNO_VALUE(error)));
        if (!q->failing_reason)
                return;
        log_warning("The lock queue is off until it works again, trying for a slot without it: %s.",
                    q->failing_reason);
        queue_notify_later(q);
}

static void queue_retry_later(Queue *q, int error, const char *what) {
        _cleanup_free_ char *text = strdup_printf("%s our ticket %s/%s in the lock queue", what, q->namespace,
                                                  q->ticket);
        char t[FORMAT_TIMESPAN_MAX];
        int r;

        q->retry_usec = q->retry_usec == 0 ? QUEUE_RETRY_MIN_USEC : MIN(q->retry_usec * 2, QUEUE_RETRY_MAX_USEC);
        log_warning_errno(error, "Failed to %s, retrying in %s: %m", strna(text),
                          format_timespan(t, sizeof t, q->retry_usec));
        q->retry_timer = sd_event_source_disable_unref(q->retry_timer);
        r = sd_event_add_time_relative(q->event, &q->retry_timer, CLOCK_MONOTONIC, q->retry_usec, USEC_PER_SEC / 10,
                                       on_retry_timer, q);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the queue's retry timer: %m");
        queue_count_failure(q, error, strna(text));
}

static void queue_set_own(Queue *q, json_object *lease) {
        json_object_put(q->own_lease);
        q->own_lease = lease ? json_object_get(lease) : NULL;
        q->own = lease ? OWN_PRESENT : OWN_ABSENT;
}

/* Our ticket's state changed by a write's answer: write again if need be, and tell. */
static void queue_own_changed(Queue *q) {
        queue_reconcile(q);
        queue_notify(q);
}

static void queue_write_succeeded(Queue *q) {
        q->retry_usec = 0;
        q->failures = 0;
        if (q->failing_reason)
                log_info("The lock queue works again.");
        q->failing_reason = mfree(q->failing_reason);
}

static void on_ticket_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Queue *q = userdata;
        bool was_off = q->off;

        q->call = NULL;
        if (error == -EACCES || status_is_namespace_missing(response, q->namespace)) {
                q->own = OWN_ABSENT;
                if (q->joined) {
                        queue_turn_off(q, error, "write");
                        if (!was_off)
                                queue_notify(q);
                }
                return;
        }
        if (error == -ESTALE || error == -ENOENT) {
                /* AlreadyExists (ours from before, or a repeat of a create whose answer was lost), or
                 * a re-date that lost to another write: read it again. A re-date of a ticket
                 * deleted meanwhile: create it. */
                if (error == -ENOENT)
                        queue_set_own(q, NULL);
                else {
                        q->own = OWN_UNKNOWN;
                        q->own_lease = json_object_put_and_null(q->own_lease);
                }
                queue_reconcile(q);
                return;
        }
        if (error < 0) {
                q->own = OWN_UNKNOWN;
                queue_retry_later(q, error, "write");
                return;
        }
        queue_write_succeeded(q);
        queue_set_own(q, response->body);
        queue_own_changed(q);
}

static void on_ticket_deleted(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Queue *q = userdata;

        q->call = NULL;
        if (error < 0 && error != -ENOENT) {
                q->own = OWN_UNKNOWN;
                queue_retry_later(q, error, "delete");
                return;
        }
        queue_write_succeeded(q);
        queue_set_own(q, NULL);
        queue_own_changed(q);
}

static void on_ticket_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Queue *q = userdata;

        q->call = NULL;
        if (error < 0 && error != -ENOENT) {
                queue_retry_later(q, error, "read");
                return;
        }
        queue_set_own(q, error == -ENOENT ? NULL : response->body);
        queue_own_changed(q);
}

static int queue_call(Queue *q, const char *method, const char *path, json_object *body, KubeCallHandler handler) {
        /* Creates (a repeat turns into 409 AlreadyExists), reads, writes with a resourceVersion and
         * deletes of our own ticket are all safe to repeat. */
        return kube_client_call(q->client, method, path, NULL, body, KUBE_CALL_IDEMPOTENT, handler, q, &q->call);
}

static usec_t own_since(Queue *q) {
        const char *s = json_get_string(q->own_lease, "spec.acquireTime");
        usec_t t;

        return s && parse_rfc3339(s, &t) >= 0 ? t : USEC_INFINITY;
}

/* Brings our ticket to what we want: present and dated since while joined, absent otherwise. One
 * write at a time; each answer calls this again. */
static void queue_reconcile(Queue *q) {
        _cleanup_json_ json_object *body = NULL;
        int r;

        if (q->call || q->retry_timer)
                return;
        /* While joined, the watch tells whether our ticket exists (one from before a restart
         * included): nothing is written before its first list. */
        if (q->joined && (q->off || !q->synced))
                return;

        if (!q->joined) {
                if (q->own == OWN_ABSENT)
                        return;
                r = queue_call(q, "DELETE", q->ticket_path, NULL, on_ticket_deleted);
        } else if (q->own == OWN_ABSENT) {
                r = queue_build_ticket(q->namespace, q->lock_name, q->ticket, q->identity, q->since, &body);
                if (r >= 0)
                        r = queue_call(q, "POST", q->collection_path, body, on_ticket_written);
        } else if (q->own == OWN_UNKNOWN || !q->own_lease) {
                r = queue_call(q, "GET", q->ticket_path, NULL, on_ticket_read);
        } else if (!q->redated &&
                   (own_since(q) / USEC_PER_MSEC != q->since / USEC_PER_MSEC ||
                    !streq_ptr(json_get_string(q->own_lease, "spec.holderIdentity"), q->identity))) {
                /* Left from an earlier wait: our place is where this reboot became required. */
                r = queue_build_redate(q->own_lease, q->since, &body);
                if (r >= 0) {
                        json_object *spec = json_get_member(body, "spec");
                        r = spec ? json_set(spec, "holderIdentity", json_object_new_string(q->identity)) : -EBADMSG;
                }
                if (r >= 0)
                        r = queue_call(q, "PUT", q->ticket_path, body, on_ticket_written);
                q->redated = true;
        } else
                return;

        if (r < 0)
                queue_retry_later(q, r, q->joined ? "write" : "delete");
}

/* ---- watching the tickets ------------------------------------------------------------------ */

static void queue_sweep(Queue *q) {
        for (size_t i = 0; i < q->n_entries;) {
                if (!q->entries[i].listed) {
                        queue_remove_at(q, i);
                        continue;
                }
                q->entries[i].listed = false;
                i++;
        }
}

static void on_watch_event(KubeWatch *w, KubeWatchEvent event, json_object *object, int error, void *userdata) {
        Queue *q = userdata;
        const char *name = json_get_string(object, "metadata.name");
        bool fire = false, ours = streq_ptr(name, q->ticket);

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
                if (!name)
                        break;
                if (queue_store(q, object) < 0) {
                        log_debug("Cannot keep ticket %s of the lock queue; ignoring it.", name);
                        break;
                }
                if (ours && !q->call) {
                        queue_set_own(q, object);
                        queue_reconcile(q);
                }
                fire = q->synced;
                break;
        case KUBE_WATCH_DELETED:
                if (name) {
                        QueueEntry *e = queue_find(q, name);
                        if (e)
                                queue_remove_at(q, (size_t) (e - q->entries));
                }
                if (ours && !q->call) {
                        /* Passed over, or deleted by an administrator: back in line at our place. */
                        if (q->joined)
                                log_notice("Our ticket %s/%s in the lock queue was deleted; putting it back.",
                                           q->namespace, q->ticket);
                        queue_set_own(q, NULL);
                        queue_reconcile(q);
                }
                fire = q->synced;
                break;
        case KUBE_WATCH_SYNCED:
                queue_sweep(q);
                q->synced = true;
                if (q->failures > 0 && !q->call && !q->retry_timer)
                        queue_write_succeeded(q);   /* the failures were the list's */
                /* From the list on, the watch says whether our ticket exists. A write in flight
                 * tells for itself. */
                if (!q->call) {
                        QueueEntry *e = queue_find(q, q->ticket);
                        if (!e)
                                queue_set_own(q, NULL);
                        else if (q->own != OWN_PRESENT) {
                                /* Ours from before (a restart): read it for its resourceVersion. */
                                q->own = OWN_UNKNOWN;
                                q->own_lease = json_object_put_and_null(q->own_lease);
                        }
                        queue_reconcile(q);
                }
                fire = true;
                break;
        case KUBE_WATCH_ERROR:
                if (error == -EACCES) {
                        queue_turn_off(q, error, "watch");
                        fire = true;
                } else {
                        log_debug_errno(error, "Watch of the lock queue failed, retrying: %m");
                        if (!q->synced) {
                                /* Last: it may notify. */
                                queue_count_failure(q, error, "list the tickets of the lock queue");
                                return;
                        }
                }
                break;
        default:
                break;
        }
        /* Once per turn of the event loop, however many events one read of the stream brought
         * (a thousand tickets come at once when a fleet starts waiting). */
        if (fire)
                queue_notify_later(q);
}

/* ---- passing over a head that leaves a slot free ------------------------------------------ */

static int on_stall_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Queue *q = userdata;

        q->stall_timer = sd_event_source_disable_unref(q->stall_timer);
        queue_notify(q);
        return 0;
}

static void on_passed_over(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        Queue *q = userdata;

        q->pass_call = NULL;
        if (error < 0 && error != -ENOENT && error != -ESTALE)
                log_warning_errno(error, "Failed to pass over the head of the lock queue: %m");
        /* Done or not, the watch shows what the queue looks like now. */
}

static void queue_pass_over(Queue *q, const QueueEntry *head) {
        _cleanup_json_ json_object *body = json_object_new_object(), *pre = json_object_new_object();
        _cleanup_free_ char *path = NULL, *ename = url_escape(head->name);
        char t[FORMAT_TIMESPAN_MAX];
        int r;

        if (q->pass_call || !body || !pre || !ename)
                return;
        path = strjoin(q->collection_path, "/", ename);
        if (!path)
                return;
        /* Only the ticket we judged: a head that wrote it since (it is alive) keeps its place. */
        if ((head->uid && json_set(pre, "uid", json_object_new_string(head->uid)) < 0) ||
            (head->resource_version &&
             json_set(pre, "resourceVersion", json_object_new_string(head->resource_version)) < 0) ||
            json_set(body, "kind", json_object_new_string("DeleteOptions")) < 0 ||
            json_set(body, "apiVersion", json_object_new_string("v1")) < 0 ||
            json_set(body, "preconditions", TAKE_PTR(pre)) < 0)
                return;
        log_notice("Passing over %s at the head of the lock queue: a lock slot has been free for %s and it "
                   "did not take it (its daemon is stopped, or its host is gone). Deleting its ticket %s/%s; "
                   "a live daemon puts it back.", strna(head->holder),
                   format_timespan(t, sizeof t, now_usec(CLOCK_MONOTONIC) - q->stall_since), q->namespace, head->name);
        /* Not retried: a delete that lands after an outage would judge the head by what we saw
         * before it. */
        r = kube_client_call(q->client, "DELETE", path, NULL, body, 0, on_passed_over, q, &q->pass_call);
        if (r < 0)
                log_warning_errno(r, "Failed to pass over the head of the lock queue: %m");
}

static void queue_stall_reset(Queue *q) {
        q->stall_head = mfree(q->stall_head);
        q->stall_timer = sd_event_source_disable_unref(q->stall_timer);
        q->pass_asked = q->pass_confirmed = false;
}

static void queue_watch_stall(Queue *q, const QueueLine *line, unsigned free_slots, unsigned expired_slots,
                              usec_t slots_seen_since) {
        usec_t delay = queue_pass_over_delay(line->ahead, free_slots, QUEUE_PASS_OVER_USEC), now, deadline, seen;

        if (delay == USEC_INFINITY && free_slots == 0 && expired_slots > 0 && q->expired_pass_over_usec > 0)
                delay = queue_pass_over_delay(line->ahead, MIN(expired_slots, (unsigned) UINT_MAX - 1),
                                              q->expired_pass_over_usec);
        _cleanup_free_ char *key = NULL;
        int r;

        if (delay == USEC_INFINITY || !line->head || q->no_pass_over) {
                queue_stall_reset(q);
                return;
        }
        key = strjoin(line->head->name, "\n", strempty(line->head->resource_version));
        if (!key)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (!streq_ptr(q->stall_head, key)) {
                queue_stall_reset(q);
                q->stall_head = TAKE_PTR(key);
                q->stall_since = now;
        }
        /* The clock runs only while both watches see: a slot that looked free while the API
         * server was unreachable may have been taken, and the head could not take it either. */
        seen = MAX(kube_watch_live_since(q->watch), slots_seen_since);
        deadline = seen == USEC_INFINITY ? now + delay : MAX(q->stall_since, seen) + delay;
        if (seen != USEC_INFINITY && now >= deadline) {
                if (q->pass_check && !q->pass_confirmed) {
                        if (!q->pass_asked) {
                                q->pass_asked = true;
                                q->pass_check(q, q->pass_check_userdata);
                        }
                        return;
                }
                queue_pass_over(q, line->head);
                queue_stall_reset(q);
                return;
        }
        if (q->stall_timer) {
                r = sd_event_source_set_time(q->stall_timer, deadline);
                if (r >= 0)
                        return;
                q->stall_timer = sd_event_source_disable_unref(q->stall_timer);
        }
        r = sd_event_add_time(q->event, &q->stall_timer, CLOCK_MONOTONIC, deadline, USEC_PER_SEC / 10,
                              on_stall_timer, q);
        if (r < 0)
                log_warning_errno(r, "Failed to arm the queue's pass-over timer: %m");
}

static int on_settle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Queue *q = userdata;

        q->settle_timer = sd_event_source_disable_unref(q->settle_timer);
        queue_notify(q);
        return 0;
}

/* Whether our reboot became required too recently to go: a node whose reboot became required a
 * moment before ours may not have written its ticket yet (under load, its daemon needs a while to
 * see its sentinel and write). Arms a timer for the end of it. */
static bool queue_settling(Queue *q) {
        usec_t mono = now_usec(CLOCK_MONOTONIC);

        if (q->since == USEC_INFINITY)
                return false;
        /* Read off the wall clock once per ticket date, then counted on the monotonic clock: a wall
         * clock stepped back an hour must not keep us out of line for that hour. */
        if (q->settle_for_since != q->since) {
                usec_t now = now_usec(CLOCK_REALTIME), end = q->since + QUEUE_SETTLE_USEC;

                q->settle_for_since = q->since;
                q->settle_end = mono + (now >= end ? 0 : MIN(end - now, QUEUE_SETTLE_USEC));
        }
        if (mono >= q->settle_end)
                return false;
        if (!q->settle_timer &&
            sd_event_add_time(q->event, &q->settle_timer, CLOCK_MONOTONIC, q->settle_end, USEC_PER_SEC / 100,
                              on_settle_timer, q) < 0)
                return false;
        return true;
}

void queue_set_pass_over(Queue *q, bool allowed) {
        if (q)
                q->no_pass_over = !allowed;
}

void queue_set_pass_over_check(Queue *q, QueuePassOverCheck check, void *userdata) {
        if (!q)
                return;
        q->pass_check = check;
        q->pass_check_userdata = userdata;
}

void queue_pass_over_answer(Queue *q, bool go) {
        if (!q || !q->pass_asked)
                return;
        q->pass_asked = false;
        if (!go)
                return;
        q->pass_confirmed = true;
        queue_notify_later(q);          /* the owner looks at its place again: the pass-over goes */
}

void queue_set_expired_pass_over(Queue *q, usec_t period) {
        if (q)
                q->expired_pass_over_usec = period == USEC_INFINITY ? 0 : period;
}

QueueVerdict queue_place(Queue *q, unsigned free_slots, unsigned expired_slots, usec_t slots_seen_since,
                         QueueHoldsSlot holds, void *userdata, QueuePlace *ret) {
        QueuePlace p = { .verdict = QUEUE_JOINING };
        QueueLine line;

        if (!q || q->off || (queue_failing_off(q) && q->own != OWN_PRESENT)) {
                p.verdict = QUEUE_OFF;
                p.reason = q ? (q->off ? q->off_reason : q->failing_reason) : NULL;
                if (q)
                        queue_stall_reset(q);
        } else if (q->joined && q->synced && q->own == OWN_PRESENT) {
                queue_line_compute(q->entries, q->n_entries, q->identity, holds, userdata, &line);
                if (line.own) {
                        p.ahead = line.ahead;
                        p.total = line.total;
                        p.verdict = queue_is_turn(line.ahead) ? QUEUE_TURN : QUEUE_WAITING;
                        p.settling = queue_settling(q);
                        if (p.verdict == QUEUE_TURN && p.settling)
                                p.verdict = QUEUE_WAITING;
                        queue_watch_stall(q, &line, free_slots, expired_slots, slots_seen_since);
                }
        }
        if (ret)
                *ret = p;
        return p.verdict;
}

/* ---- joining and leaving --------------------------------------------------------------------- */

int queue_join(Queue *q, usec_t since, QueueChangedHandler changed, void *userdata) {
        int r;

        if (!q || !changed)
                return -EINVAL;
        q->changed = changed;
        q->userdata = userdata;
        /* The date is the join's: a caller that asks again while in line keeps its place. */
        if (q->joined)
                return 0;

        if (!q->joined) {
                /* Every join tries again: an administrator may have created the namespace. */
                q->off = false;
                q->off_reason = mfree(q->off_reason);
                q->failures = 0;
                q->failing_reason = mfree(q->failing_reason);
        }
        q->redated = false;
        q->joined = true;
        q->since = since;
        if (!q->watch) {
                q->synced = false;
                r = kube_client_watch_full(q->client, q->list_path, KUBE_WATCH_LIST_FROM_CACHE, on_watch_event, q,
                                           &q->watch);
                if (r < 0)
                        return r;
        }
        queue_reconcile(q);
        return 0;
}

void queue_leave(Queue *q) {
        if (!q)
                return;
        q->joined = false;
        q->changed = NULL;
        q->userdata = NULL;
        q->watch = kube_watch_free(q->watch);
        q->synced = false;
        queue_clear(q);
        queue_stall_reset(q);
        q->no_pass_over = false;        /* the next time in line asks again (queue_set_pass_over_check) */
        q->pass_call = kube_call_cancel(q->pass_call);
        /* A retry timer of a create is moot now; a delete goes out at once. */
        q->retry_timer = sd_event_source_disable_unref(q->retry_timer);
        q->retry_usec = 0;
        q->failures = 0;
        q->failing_reason = mfree(q->failing_reason);
        q->notify_event = sd_event_source_disable_unref(q->notify_event);
        q->settle_timer = sd_event_source_disable_unref(q->settle_timer);
        if (q->off)
                q->own = OWN_ABSENT;
        queue_reconcile(q);
}

void queue_suspect_ticket(Queue *q) {
        if (q && q->own == OWN_ABSENT && !q->call)
                q->own = OWN_UNKNOWN;
}

int queue_new(Queue **ret, KubeClient *client, sd_event *event, const char *namespace, const char *lock_name,
              const char *identity) {
        _cleanup_(queue_freep) Queue *q = NULL;
        _cleanup_free_ char *ens = NULL, *selector = NULL, *eselector = NULL, *eticket = NULL;
        int r;

        if (!ret || !client || !event || isempty(namespace) || isempty(lock_name) || isempty(identity))
                return -EINVAL;

        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        q->client = client;
        q->event = sd_event_ref(event);
        q->own = OWN_ABSENT;
        q->namespace = strdup(namespace);
        q->lock_name = strdup(lock_name);
        q->identity = strdup(identity);
        if (!q->namespace || !q->lock_name || !q->identity)
                return -ENOMEM;
        r = queue_ticket_name(lock_name, identity, &q->ticket);
        if (r < 0)
                return r;

        ens = url_escape(namespace);
        selector = strjoin(QUEUE_LABEL, "=", lock_name);
        eticket = url_escape(q->ticket);
        if (!ens || !selector || !eticket)
                return -ENOMEM;
        eselector = url_escape(selector);
        if (!eselector)
                return -ENOMEM;
        q->collection_path = strjoin(LEASES_API "/namespaces/", ens, "/leases");
        if (!q->collection_path)
                return -ENOMEM;
        q->list_path = strjoin(q->collection_path, "?labelSelector=", eselector);
        q->ticket_path = strjoin(q->collection_path, "/", eticket);
        if (!q->list_path || !q->ticket_path)
                return -ENOMEM;

        *ret = TAKE_PTR(q);
        return 0;
}

Queue *queue_free(Queue *q) {
        if (!q)
                return NULL;
        q->call = kube_call_cancel(q->call);
        q->pass_call = kube_call_cancel(q->pass_call);
        q->watch = kube_watch_free(q->watch);
        queue_clear(q);
        queue_stall_reset(q);
        sd_event_source_disable_unref(q->retry_timer);
        sd_event_source_disable_unref(q->notify_event);
        sd_event_source_disable_unref(q->settle_timer);
        json_object_put(q->own_lease);
        sd_event_unref(q->event);
        free(q->off_reason);
        free(q->failing_reason);
        free(q->list_path);
        free(q->ticket_path);
        free(q->collection_path);
        free(q->ticket);
        free(q->identity);
        free(q->lock_name);
        free(q->namespace);
        free(q);
        return NULL;
}
