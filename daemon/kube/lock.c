/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <string.h>
#include <sys/random.h>

#include "json-util.h"
#include "lock-internal.h"
#include "lock.h"
#include "log.h"
#include "node.h"
#include "string-util.h"

#define LEASES_API "/apis/coordination.k8s.io/v1"
/* Slots per group; far beyond any sensible concurrency, and it bounds what one operation reads. */
#define LOCK_CONCURRENCY_MAX 1000U
/* Renew and release re-read after a 409 this many times (a lost response shows up as one 409). */
#define LOCK_REREAD_MAX 3U
/* Leases the watch remembers; a group never has more than its slots plus strays. */
#define LOCK_SEEN_MAX 4096U
/* Longest machine ID we record (systemd's are 32 hex digits). */
#define LOCK_MACHINE_ID_MAX 128U
/* How much of a machine ID the messages show. */
#define LOCK_MACHINE_ID_SHOWN 12U

typedef enum LockOpType {
        LOCK_OP_ACQUIRE,
        LOCK_OP_RENEW,
        LOCK_OP_RELEASE,
        LOCK_OP_FIND_OWN,
        LOCK_OP_LIST,
        LOCK_OP_FORCE_RELEASE,
} LockOpType;

/* One operation in flight: a small state machine that chains API calls and ends in exactly one
 * call of its handler (unless the Lock is freed first). */
typedef struct LockOp LockOp;
struct LockOp {
        Lock *lock;
        LockOpType type;
        LockHandler handler;
        void *userdata;
        KubeCall *call;
        unsigned rounds;                /* reads after a lost write */

        char *slot;                     /* renew/release: the slot; acquire: the slot written */

        /* acquire */
        json_object *list;              /* the last LeaseList read */
        json_object **slots;            /* its items by slot index, borrowed from list or fetched */
        json_object *fetched;           /* array owning leases read by name (missing from the list) */
        LockSlotState *states;          /* of slots, when the holders' Nodes are looked up */
        unsigned *order;                /* the slots whose holders' Nodes we look up, in order */
        unsigned n_order, check_next;
        char **notes;                   /* per slot: why it is not taken, for the holders text */
        bool *refused;                  /* per slot: expired but kept by its holder */
        bool renewing_own;              /* the write renews a slot that already named us */
        bool created;                   /* the write creates the slot */
        char *previous_holder;          /* for the log of a takeover */
        char *reason;

        /* find own: the next slot missing from the list to read by name */
        unsigned probe_next;

        /* renew: lock_set_renew_timeout() */
        sd_event_source *deadline;

        /* list, force release: their handlers */
        LockListHandler list_handler;
        LockForceReleaseHandler force_handler;
        LockSlotInfo before;            /* force release: the lease as first read */

        LockOp *prev, *next;
};

typedef struct LockSeen {
        char *name;
        char *holder;                   /* spec.holderIdentity as last seen, "" for a free slot */
        usec_t expiry;                  /* lock_lease_expiry() of what was last seen */
        bool listed;                    /* ADDED since the last SYNCED */
} LockSeen;

struct Lock {
        KubeClient *client;
        char *namespace;
        char *name;
        char *identity;
        unsigned concurrency;
        usec_t ttl_usec;
        char *collection_path;          /* .../namespaces/<ns>/leases */
        char *list_path;                /* collection_path?labelSelector=nodereboot.io/lock=<name> */
        char *cache_list_path;          /* the same from the API server's cache: resourceVersion=0 */
        char **slot_names;              /* concurrency entries, NULL-terminated */
        LockOp *ops;

        KubeWatch *watch;
        LockChangedHandler changed;
        void *changed_userdata;
        bool synced;                    /* the watch finished its first list */
        usec_t next_expiry;             /* server clock: earliest expiry of a held slot at the last -EBUSY */
        bool refused_expired;           /* the last -EBUSY refused to take over an expired slot */
        LockSeen *seen;                 /* the holder of every lease the watch saw */
        size_t n_seen;

        char *machine_id;               /* NULL: not recorded, not checked */
        char **stuck_reported;          /* per slot: "holder\nrenewTime" of the last refusal we posted */
        char **label_warned;            /* slots we warned about for their missing label */
        char *twin_logged;              /* "slot\nmachine" of the last twin we logged */

        sd_event *event;                /* for the renewal deadline */
        usec_t renew_timeout_usec;      /* 0: none */

        /* lock_watch_held() */
        KubeWatch *held_watch;
        char *held_slot;
        LockLostHandler lost;
        void *lost_userdata;
        bool held_listed;               /* ADDED since the last SYNCED */
};

/* ---- pure decisions ---------------------------------------------------------------------- */

static usec_t lease_time(json_object *lease, const char *field);

static const char * const lock_slot_state_table[_LOCK_SLOT_STATE_MAX] = {
        [LOCK_SLOT_MISSING] = "missing",
        [LOCK_SLOT_VACANT]  = "vacant",
        [LOCK_SLOT_EXPIRED] = "expired",
        [LOCK_SLOT_HELD]    = "held",
};

const char *lock_slot_state_to_string(LockSlotState s) {
        if (s < 0 || s >= _LOCK_SLOT_STATE_MAX)
                return NULL;
        return lock_slot_state_table[s];
}

const char *lock_lease_holder(json_object *lease) {
        const char *h = json_get_string(lease, "spec.holderIdentity");

        return isempty(h) ? NULL : h;
}

usec_t lock_lease_expiry(json_object *lease) {
        const char *renew;
        int64_t duration;
        usec_t renewed;

        renew = json_get_string(lease, "spec.renewTime");
        if (!renew || parse_rfc3339(renew, &renewed) < 0)
                return USEC_INFINITY;
        if (!json_get_int64(lease, "spec.leaseDurationSeconds", &duration) || duration <= 0 ||
            (uint64_t) duration > USEC_INFINITY / USEC_PER_SEC - renewed / USEC_PER_SEC - 1)
                return USEC_INFINITY;
        return renewed + (usec_t) duration * USEC_PER_SEC;
}

LockSlotState lock_slot_state(json_object *lease, usec_t server_now, usec_t *ret_expired_usec) {
        json_object *h;
        usec_t until;

        if (ret_expired_usec)
                *ret_expired_usec = 0;
        if (!lease)
                return LOCK_SLOT_MISSING;
        h = json_get(lease, "spec.holderIdentity");
        if (h && !json_object_is_type(h, json_type_string))
                return LOCK_SLOT_HELD;  /* not something a real API server stores; do not guess */
        if (!lock_lease_holder(lease))
                return LOCK_SLOT_VACANT;

        /* A holder whose lease cannot be timed is treated as alive: taking a lock from a live node
         * is the one mistake this module must not make. A dead one is caught by the ghost check. */
        until = lock_lease_expiry(lease);
        if (until == USEC_INFINITY || until >= server_now)
                return LOCK_SLOT_HELD;
        if (ret_expired_usec)
                *ret_expired_usec = server_now - until;
        return LOCK_SLOT_EXPIRED;
}

static char *format_age(char *buf, size_t size, usec_t age) {
        usec_t s = (age + USEC_PER_SEC / 2) / USEC_PER_SEC;

        if (s < 1000)
                snprintf(buf, size, "%llu s", (unsigned long long) s);
        else
                format_timespan(buf, size, s * USEC_PER_SEC);
        return buf;
}

bool lock_slot_is_free(json_object *lease, usec_t server_now, char **ret_reason) {
        char age[FORMAT_TIMESPAN_MAX];
        usec_t expired;
        LockSlotState s;

        s = lock_slot_state(lease, server_now, &expired);
        if (ret_reason) {
                switch (s) {
                case LOCK_SLOT_MISSING:
                        *ret_reason = strdup("absent");
                        break;
                case LOCK_SLOT_VACANT:
                        *ret_reason = strdup("free");
                        break;
                case LOCK_SLOT_EXPIRED:
                        *ret_reason = strdup_printf("expired %s ago", format_age(age, sizeof age, expired));
                        break;
                default:
                        *ret_reason = strdup_printf("held by %s", lock_lease_holder(lease));
                }
        }
        return s != LOCK_SLOT_HELD;
}

static bool slot_unclaimed(LockSlotState s) {
        return s == LOCK_SLOT_MISSING || s == LOCK_SLOT_VACANT;
}

int lock_choose_slot(const LockSlotState *states, unsigned n, uint64_t rnd) {
        /* First pass: slots nobody claims; second pass: expired ones. */
        for (int pass = 0; pass < 2; pass++) {
                unsigned count = 0, pick;

                for (unsigned i = 0; i < n; i++)
                        if (pass == 0 ? slot_unclaimed(states[i]) : states[i] == LOCK_SLOT_EXPIRED)
                                count++;
                if (count == 0)
                        continue;
                pick = (unsigned) (rnd % count);
                for (unsigned i = 0; i < n; i++)
                        if (pass == 0 ? slot_unclaimed(states[i]) : states[i] == LOCK_SLOT_EXPIRED) {
                                if (pick == 0)
                                        return (int) i;
                                pick--;
                        }
        }
        return -EBUSY;
}

static void reverse_unsigned(unsigned *a, unsigned n) {
        for (unsigned i = 0; i < n / 2; i++) {
                unsigned t = a[i];

                a[i] = a[n - 1 - i];
                a[n - 1 - i] = t;
        }
}

unsigned lock_check_order(const LockSlotState *states, unsigned n, uint64_t rnd, unsigned *ret_order) {
        unsigned k = 0, expired, shift;

        /* The expired ones from a random one on, going round... */
        for (unsigned i = 0; i < n; i++)
                if (states[i] == LOCK_SLOT_EXPIRED)
                        ret_order[k++] = i;
        expired = k;
        if (expired > 1) {
                shift = (unsigned) (rnd % expired);
                reverse_unsigned(ret_order, shift);
                reverse_unsigned(ret_order + shift, expired - shift);
                reverse_unsigned(ret_order, expired);
        }
        /* ...then the live ones, in order: only a deleted Node frees those. */
        for (unsigned i = 0; i < n; i++)
                if (states[i] == LOCK_SLOT_HELD)
                        ret_order[k++] = i;
        return k;
}

char *lock_slot_name(const char *name, unsigned index) {
        return strdup_printf("%s-%u", name, index);
}

int lock_slot_index(const char *name, const char *slot) {
        size_t l;
        unsigned long v = 0;
        const char *p;

        if (!name || !slot)
                return -EINVAL;
        l = strlen(name);
        if (!strneq(slot, name, l) || slot[l] != '-')
                return -EINVAL;
        p = slot + l + 1;
        if (*p == 0 || (*p == '0' && p[1] != 0))
                return -EINVAL;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*p - '0');
                if (v > INT32_MAX)
                        return -EINVAL;
        }
        return (int) v;
}

bool lock_holder_renews_on_time(json_object *lease, usec_t server_now) {
        int64_t duration = 0;
        usec_t renew = lease_time(lease, "spec.renewTime"), d, margin;

        if (renew == 0 || !json_get_int64(lease, "spec.leaseDurationSeconds", &duration) || duration <= 0)
                return false;
        d = (usec_t) duration * USEC_PER_SEC;
        margin = MAX(d / 10, LOCK_RENEWAL_MARGIN_MIN_USEC);
        return server_now <= renew + d / 3 + margin;
}

int64_t lock_ttl_to_seconds(usec_t ttl_usec) {
        usec_t s = ttl_usec / USEC_PER_SEC + (ttl_usec % USEC_PER_SEC > 0);

        return (int64_t) CLAMP(s, (usec_t) 1, (usec_t) INT32_MAX);
}

/* A deep copy of lease with its spec object, refusing leases we could not write conditionally. */
static int lock_copy_lease(json_object *lease, json_object **ret, json_object **ret_spec) {
        _cleanup_json_ json_object *copy = NULL;
        json_object *spec;

        if (!lease || !json_object_is_type(lease, json_type_object))
                return -EINVAL;
        /* Without a resourceVersion the PUT would be unconditional and could overwrite a lease that
         * someone else took in the meantime. */
        if (isempty(json_get_string(lease, "metadata.resourceVersion")))
                return -EBADMSG;
        if (json_object_deep_copy(lease, &copy, NULL) < 0)
                return -ENOMEM;

        spec = json_get_member(copy, "spec");
        if (!spec || !json_object_is_type(spec, json_type_object)) {
                int r = json_set(copy, "spec", json_object_new_object());
                if (r < 0)
                        return r;
                spec = json_get_member(copy, "spec");
        }
        *ret_spec = spec;
        *ret = TAKE_PTR(copy);
        return 0;
}

int lock_build_take(json_object *lease, const char *identity, usec_t ttl_usec, usec_t now,
                    json_object **ret) {
        _cleanup_json_ json_object *copy = NULL;
        json_object *spec;
        int64_t transitions = 0;
        int r;

        if (isempty(identity))
                return -EINVAL;
        r = lock_copy_lease(lease, &copy, &spec);
        if (r < 0)
                return r;

        (void) json_get_int64(lease, "spec.leaseTransitions", &transitions);
        transitions = CLAMP(transitions, (int64_t) 0, (int64_t) INT32_MAX - 1);
        if (!streq_ptr(lock_lease_holder(lease), identity))
                transitions++;

        if ((r = json_set(spec, "holderIdentity", json_object_new_string(identity))) < 0 ||
            (r = json_set(spec, "leaseDurationSeconds", json_object_new_int64(lock_ttl_to_seconds(ttl_usec)))) < 0 ||
            (r = json_set_time(spec, "acquireTime", now)) < 0 ||
            (r = json_set_time(spec, "renewTime", now)) < 0 ||
            (r = json_set(spec, "leaseTransitions", json_object_new_int64(transitions))) < 0)
                return r;

        *ret = TAKE_PTR(copy);
        return 0;
}

int lock_build_renew(json_object *lease, usec_t ttl_usec, usec_t now, json_object **ret) {
        _cleanup_json_ json_object *copy = NULL;
        json_object *spec;
        int r;

        r = lock_copy_lease(lease, &copy, &spec);
        if (r < 0)
                return r;
        if ((r = json_set(spec, "leaseDurationSeconds", json_object_new_int64(lock_ttl_to_seconds(ttl_usec)))) < 0 ||
            (r = json_set_time(spec, "renewTime", now)) < 0)
                return r;

        *ret = TAKE_PTR(copy);
        return 0;
}

int lock_build_release(json_object *lease, usec_t now, json_object **ret) {
        _cleanup_json_ json_object *copy = NULL;
        json_object *spec, *annotations;
        int r;

        r = lock_copy_lease(lease, &copy, &spec);
        if (r < 0)
                return r;
        json_object_object_del(spec, "holderIdentity");
        annotations = json_get(copy, "metadata.annotations");
        if (annotations && json_object_is_type(annotations, json_type_object))
                json_object_object_del(annotations, LOCK_ANNOTATION_MACHINE_ID);
        r = json_set_time(spec, "renewTime", now);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(copy);
        return 0;
}

int lock_build_new(const char *namespace, const char *name, const char *slot, const char *identity,
                   usec_t ttl_usec, usec_t now, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        json_object *metadata, *labels, *spec;
        int r;

        if (isempty(namespace) || isempty(name) || isempty(slot) || isempty(identity))
                return -EINVAL;

        o = json_object_new_object();
        metadata = json_object_new_object();
        labels = json_object_new_object();
        spec = json_object_new_object();
        if (!o || !metadata || !labels || !spec) {
                json_object_put(metadata);
                json_object_put(labels);
                json_object_put(spec);
                return -ENOMEM;
        }
        if ((r = json_set(labels, LOCK_LABEL, json_object_new_string(name))) < 0 ||
            (r = json_set(metadata, "name", json_object_new_string(slot))) < 0 ||
            (r = json_set(metadata, "namespace", json_object_new_string(namespace))) < 0) {
                json_object_put(labels);
                json_object_put(metadata);
                json_object_put(spec);
                return r;
        }
        r = json_set(metadata, "labels", labels);
        if (r < 0) {
                json_object_put(metadata);
                json_object_put(spec);
                return r;
        }
        if ((r = json_set(spec, "holderIdentity", json_object_new_string(identity))) < 0 ||
            (r = json_set(spec, "leaseDurationSeconds", json_object_new_int64(lock_ttl_to_seconds(ttl_usec)))) < 0 ||
            (r = json_set_time(spec, "acquireTime", now)) < 0 ||
            (r = json_set_time(spec, "renewTime", now)) < 0 ||
            (r = json_set(spec, "leaseTransitions", json_object_new_int64(0))) < 0) {
                json_object_put(metadata);
                json_object_put(spec);
                return r;
        }
        if ((r = json_set(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"))) < 0 ||
            (r = json_set(o, "kind", json_object_new_string("Lease"))) < 0) {
                json_object_put(metadata);
                json_object_put(spec);
                return r;
        }
        if ((r = json_set(o, "metadata", metadata)) < 0) {
                json_object_put(spec);
                return r;
        }
        if ((r = json_set(o, "spec", spec)) < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

/* "10:02:03" on the server's day, "2026-11-25 10:02:03" on another (UTC). */
static char *format_clock(char *buf, size_t size, usec_t t, usec_t now) {
        time_t a = (time_t) (t / USEC_PER_SEC), b = (time_t) (now / USEC_PER_SEC);
        struct tm ta, tb;

        if (!gmtime_r(&a, &ta) || !gmtime_r(&b, &tb)) {
                snprintf(buf, size, "?");
                return buf;
        }
        if (ta.tm_year == tb.tm_year && ta.tm_yday == tb.tm_yday)
                strftime(buf, size, "%H:%M:%S", &ta);
        else
                strftime(buf, size, "%Y-%m-%d %H:%M:%S", &ta);
        return buf;
}

char *lock_format_holders(json_object * const *leases, char * const *slot_names, unsigned n,
                          usec_t server_now) {
        return lock_format_holders_noted(leases, slot_names, NULL, n, server_now);
}

char *lock_format_holders_noted(json_object * const *leases, char * const *slot_names, char * const *notes,
                                unsigned n, usec_t server_now) {
        _cleanup_free_ char *text = strdup("");

        if (!text)
                return NULL;

        for (unsigned i = 0; i < n; i++) {
                char since[64] = "?", age[FORMAT_TIMESPAN_MAX], expired_age[FORMAT_TIMESPAN_MAX];
                _cleanup_free_ char *renewed = NULL;
                const char *holder, *s;
                LockSlotState state;
                usec_t t, expired;
                char *joined;

                if (notes && notes[i]) {
                        joined = strdup_printf("%s%s%s", text, isempty(text) ? "" : "; ", notes[i]);
                        if (!joined)
                                return NULL;
                        free(text);
                        text = joined;
                        continue;
                }

                state = lock_slot_state(leases[i], server_now, &expired);
                if (state != LOCK_SLOT_HELD && state != LOCK_SLOT_EXPIRED)
                        continue;
                holder = lock_lease_holder(leases[i]) ?: "(unreadable holder)";

                s = json_get_string(leases[i], "spec.acquireTime");
                if (s && parse_rfc3339(s, &t) >= 0)
                        format_clock(since, sizeof since, t, server_now);

                s = json_get_string(leases[i], "spec.renewTime");
                if (!s || parse_rfc3339(s, &t) < 0)
                        renewed = strdup("renew time unknown");
                else if (state == LOCK_SLOT_EXPIRED)
                        renewed = strdup_printf("renewed %s ago, expired %s ago",
                                                format_age(age, sizeof age, server_now > t ? server_now - t : 0),
                                                format_age(expired_age, sizeof expired_age, expired));
                else
                        renewed = strdup_printf("renewed %s ago",
                                                format_age(age, sizeof age, server_now > t ? server_now - t : 0));
                if (!renewed)
                        return NULL;

                joined = strdup_printf("%s%s%s held by %s since %s (%s)", text, isempty(text) ? "" : "; ",
                                       slot_names[i], holder, since, renewed);
                if (!joined)
                        return NULL;
                free(text);
                text = joined;
        }
        return TAKE_PTR(text);
}

void lock_index_list(json_object *list, const char *name, unsigned n, json_object **slots) {
        json_object *items = json_get(list, "items");
        size_t m = json_array_length(items);

        for (unsigned i = 0; i < n; i++)
                slots[i] = NULL;
        for (size_t j = 0; j < m; j++) {
                json_object *item = json_object_array_get_idx(items, j);
                int idx = lock_slot_index(name, json_get_string(item, "metadata.name"));

                if (idx >= 0 && (unsigned) idx < n)
                        slots[idx] = item;
        }
}

json_object *lock_find_holder(json_object *list, const char *name, const char *identity,
                              const char **ret_slot) {
        json_object *items = json_get(list, "items");
        size_t m = json_array_length(items);
        json_object *best = NULL;
        int best_idx = -1;

        /* The lowest index wins, so the answer does not depend on the list's order. */
        for (size_t j = 0; j < m; j++) {
                json_object *item = json_object_array_get_idx(items, j);
                int idx = lock_slot_index(name, json_get_string(item, "metadata.name"));

                if (idx < 0 || !streq_ptr(lock_lease_holder(item), identity))
                        continue;
                if (!best || idx < best_idx) {
                        best = item;
                        best_idx = idx;
                }
        }
        if (ret_slot)
                *ret_slot = best ? json_get_string(best, "metadata.name") : NULL;
        return best;
}


const char *lock_lease_machine_id(json_object *lease) {
        json_object *v = json_get_member(json_get(lease, "metadata.annotations"), LOCK_ANNOTATION_MACHINE_ID);

        if (!v || !json_object_is_type(v, json_type_string) || isempty(json_object_get_string(v)))
                return NULL;
        return json_object_get_string(v);
}

LockOwner lock_lease_owner(json_object *lease, const char *identity, const char *machine_id) {
        const char *theirs;

        if (!identity || !streq_ptr(lock_lease_holder(lease), identity))
                return LOCK_OWNER_OTHER;
        theirs = lock_lease_machine_id(lease);
        if (!machine_id || !theirs || streq(theirs, machine_id))
                return LOCK_OWNER_US;
        return LOCK_OWNER_TWIN;
}

json_object *lock_find_own_lease(json_object *list, const char *name, const char *identity,
                                 const char *machine_id, json_object **ret_twin) {
        json_object *items = json_get(list, "items");
        size_t m = json_array_length(items);
        json_object *best[2] = {};
        int best_idx[2] = { -1, -1 };

        /* The lowest index wins, so the answer does not depend on the list's order. */
        for (size_t j = 0; j < m; j++) {
                json_object *item = json_object_array_get_idx(items, j);
                int idx = lock_slot_index(name, json_get_string(item, "metadata.name"));
                LockOwner o;
                unsigned k;

                if (idx < 0)
                        continue;
                o = lock_lease_owner(item, identity, machine_id);
                if (o == LOCK_OWNER_OTHER)
                        continue;
                k = o == LOCK_OWNER_US ? 0 : 1;
                if (!best[k] || idx < best_idx[k]) {
                        best[k] = item;
                        best_idx[k] = idx;
                }
        }
        if (ret_twin)
                *ret_twin = best[1];
        return best[0];
}

/* "1234abcd5678…" */
static char *machine_id_short(char *buf, size_t size, const char *id) {
        if (strlen(id) > LOCK_MACHINE_ID_SHOWN)
                snprintf(buf, size, "%.*s…", (int) LOCK_MACHINE_ID_SHOWN, id);
        else
                snprintf(buf, size, "%s", id);
        return buf;
}

char *lock_format_twin(const char *slot, const char *identity, const char *their_machine_id,
                       const char *our_machine_id) {
        char a[LOCK_MACHINE_ID_SHOWN + 8], b[LOCK_MACHINE_ID_SHOWN + 8];

        return strdup_printf("lease %s is held under our name %s by machine %s, we are %s: "
                             "two hosts share [Node] Name=%s", slot, identity,
                             machine_id_short(a, sizeof a, strna(their_machine_id)),
                             machine_id_short(b, sizeof b, strna(our_machine_id)), identity);
}

int lock_lost_reason(json_object *lease, const char *identity, const char *machine_id, char **ret) {
        const char *holder = lock_lease_holder(lease);
        char a[LOCK_MACHINE_ID_SHOWN + 8];
        char *why;

        if (!lease)
                why = strdup("its Lease was deleted");
        else
                switch (lock_lease_owner(lease, identity, machine_id)) {
                case LOCK_OWNER_US:
                        *ret = NULL;
                        return 0;
                case LOCK_OWNER_TWIN:
                        why = strdup_printf("held under our name by machine %s (two hosts share [Node] Name=%s)",
                                            machine_id_short(a, sizeof a, lock_lease_machine_id(lease)), identity);
                        break;
                default:
                        why = holder ? strdup_printf("taken by %s", holder) : strdup("released (no holder)");
                }
        if (!why)
                return -ENOMEM;
        *ret = why;
        return 1;
}

LockLabel lock_lease_label(json_object *lease, const char *name) {
        json_object *v = json_get_member(json_get(lease, "metadata.labels"), LOCK_LABEL);

        if (!v)
                return LOCK_LABEL_MISSING;
        if (json_object_is_type(v, json_type_string) && streq_ptr(json_object_get_string(v), name))
                return LOCK_LABEL_OURS;
        return LOCK_LABEL_FOREIGN;
}

/* o[key] as an object, made (or replacing a non-object) when needed. */
static json_object *json_ensure_object(json_object *o, const char *key) {
        json_object *v = json_get_member(o, key);

        if (v && json_object_is_type(v, json_type_object))
                return v;
        if (json_set(o, key, json_object_new_object()) < 0)
                return NULL;
        return json_get_member(o, key);
}

int lock_mark_lease(json_object *body, const char *name, const char *machine_id) {
        json_object *metadata, *labels, *annotations;
        int r;

        if (!body || !json_object_is_type(body, json_type_object) || isempty(name))
                return -EINVAL;
        metadata = json_ensure_object(body, "metadata");
        labels = metadata ? json_ensure_object(metadata, "labels") : NULL;
        if (!labels)
                return -ENOMEM;
        r = json_set(labels, LOCK_LABEL, json_object_new_string(name));
        if (r < 0 || !machine_id)
                return r;
        annotations = json_ensure_object(metadata, "annotations");
        if (!annotations)
                return -ENOMEM;
        return json_set(annotations, LOCK_ANNOTATION_MACHINE_ID, json_object_new_string(machine_id));
}

bool lock_status_is_already_exists(json_object *status, const char *slot) {
        return streq_ptr(json_get_string(status, "kind"), "Status") &&
                streq_ptr(json_get_string(status, "reason"), "AlreadyExists") &&
                streq_ptr(json_get_string(status, "details.kind"), "leases") &&
                streq_ptr(json_get_string(status, "details.name"), slot);
}

char *lock_format_stuck(const char *slot, const char *holder, usec_t expired_usec, const char *why) {
        char age[FORMAT_TIMESPAN_MAX];

        return strdup_printf("%s held by %s, expired %s ago, but %s is %s: not taking it over (a node that "
                             "does not come back must not be followed); run 'noderebootctl unlock %s' once "
                             "%s is dealt with", slot, holder, format_age(age, sizeof age, expired_usec),
                             holder, why, slot, holder);
}

bool lock_holder_is_idle(json_object *node, char **ret_why) {
        json_object *conditions = json_get(node, "status.conditions");
        json_object *annotations = json_get(node, "metadata.annotations");
        const char *ready = NULL, *what[4];
        _cleanup_free_ char *text = NULL;
        size_t n = 0;

        if (ret_why)
                *ret_why = NULL;

        for (size_t i = 0; i < json_array_length(conditions); i++) {
                json_object *c = json_object_array_get_idx(conditions, i);

                if (streq_ptr(json_get_string(c, "type"), "Ready")) {
                        ready = json_get_string(c, "status");
                        break;
                }
        }
        if (!streq_ptr(ready, "True"))
                what[n++] = streq_ptr(ready, "False") ? "NotReady" :
                            streq_ptr(ready, "Unknown") ? "unreachable (Ready=Unknown)" :
                            "of unknown readiness (no Ready condition)";
        if (streq_ptr(json_get_string(json_get_member(annotations, NODE_ANNOTATION_CORDONED), ""), "true"))
                what[n++] = "cordoned by nodereboot";
        if (json_get_member(annotations, NODE_ANNOTATION_IN_PROGRESS))
                what[n++] = "mid-cycle";
        if (n == 0)
                return true;
        if (!ret_why)
                return false;

        /* "a", "a and b", "a, b and c" */
        text = strdup(what[0]);
        for (size_t i = 1; text && i < n; i++) {
                char *t = strjoin(text, i == n - 1 ? " and " : ", ", what[i]);

                free(text);
                text = t;
        }
        *ret_why = TAKE_PTR(text);
        return false;
}

/* ---- slots as an administrator sees them --------------------------------------------------- */

void lock_slot_info_done(LockSlotInfo *s) {
        if (!s)
                return;
        free(s->name);
        free(s->holder);
        free(s->resource_version);
        *s = (LockSlotInfo) {};
}

void lock_slot_infos_free(LockSlotInfo *s, size_t n) {
        if (!s)
                return;
        for (size_t i = 0; i < n; i++)
                lock_slot_info_done(s + i);
        free(s);
}

static usec_t lease_time(json_object *lease, const char *field) {
        const char *s = json_get_string(lease, field);
        usec_t t;

        if (!s || parse_rfc3339(s, &t) < 0)
                return 0;
        return t;
}

int lock_slot_info_from_lease(json_object *lease, const char *slot, unsigned index, usec_t server_now,
                              LockSlotInfo *ret) {
        LockSlotInfo s = {
                .index = index,
                .state = lock_slot_state(lease, server_now, NULL),
        };
        const char *holder = lock_lease_holder(lease);

        if (!slot || !ret)
                return -EINVAL;

        s.name = strdup(slot);
        if (!s.name)
                goto oom;
        if (lease) {
                /* A holder that is not a string (HELD) is shown as such rather than as nobody. */
                if (!holder && s.state == LOCK_SLOT_HELD)
                        holder = "(unreadable holder)";
                if (holder && !(s.holder = strdup(holder)))
                        goto oom;
                /* any node may write any slot's holder; noderebootctl prints it on a terminal */
                string_replace_control(s.holder);
                s.acquire_time = lease_time(lease, "spec.acquireTime");
                s.renew_time = lease_time(lease, "spec.renewTime");
                (void) json_get_int64(lease, "spec.leaseDurationSeconds", &s.duration_sec);
                (void) json_get_int64(lease, "spec.leaseTransitions", &s.transitions);
                if (free_and_strdup(&s.resource_version, json_get_string(lease, "metadata.resourceVersion")) < 0)
                        goto oom;
        }
        *ret = s;
        return 0;

oom:
        lock_slot_info_done(&s);
        return -ENOMEM;
}

static int slot_info_compare(const void *a, const void *b) {
        const LockSlotInfo *x = a, *y = b;

        return x->index < y->index ? -1 : x->index > y->index;
}

int lock_slots_from_list(json_object *list, const char *name, unsigned concurrency, usec_t server_now,
                         LockSlotInfo **ret, size_t *ret_n) {
        json_object *items = json_get(list, "items");
        size_t m = json_array_length(items), n = concurrency;
        _cleanup_free_ json_object **slots = NULL;
        LockSlotInfo *infos = NULL;
        int r;

        if (!name || !ret || !ret_n)
                return -EINVAL;
        if (concurrency > LOCK_LIST_MAX)
                return -E2BIG;

        /* Which lease fills each slot below the concurrency, and how many lie beyond it. */
        slots = calloc(MAX(concurrency, 1U), sizeof *slots);
        if (!slots)
                return -ENOMEM;
        for (size_t j = 0; j < m; j++) {
                json_object *item = json_object_array_get_idx(items, j);
                int idx = lock_slot_index(name, json_get_string(item, "metadata.name"));

                if (idx < 0)
                        continue;
                if ((unsigned) idx < concurrency) {
                        if (!slots[idx])
                                slots[idx] = item;
                } else if (++n > LOCK_LIST_MAX)
                        return -E2BIG;
        }

        infos = calloc(MAX(n, (size_t) 1), sizeof *infos);
        if (!infos)
                return -ENOMEM;
        for (unsigned i = 0; i < concurrency; i++) {
                _cleanup_free_ char *slot = lock_slot_name(name, i);

                r = slot ? lock_slot_info_from_lease(slots[i], slot, i, server_now, infos + i) : -ENOMEM;
                if (r < 0)
                        goto fail;
        }
        n = concurrency;
        for (size_t j = 0; j < m; j++) {
                json_object *item = json_object_array_get_idx(items, j);
                const char *slot = json_get_string(item, "metadata.name");
                int idx = lock_slot_index(name, slot);

                if (idx < 0 || (unsigned) idx < concurrency)
                        continue;
                r = lock_slot_info_from_lease(item, slot, (unsigned) idx, server_now, infos + n);
                if (r < 0)
                        goto fail;
                n++;
        }
        qsort(infos + concurrency, n - concurrency, sizeof *infos, slot_info_compare);

        *ret = infos;
        *ret_n = n;
        return 0;

fail:
        lock_slot_infos_free(infos, n);
        return r;
}

/* ---- operations -------------------------------------------------------------------------- */

static uint64_t random_u64(void) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        return now_usec(CLOCK_MONOTONIC) ^ ((uint64_t) getpid() << 32);
}

static char *lock_slot_path(Lock *l, const char *slot) {
        _cleanup_free_ char *e = url_escape(slot);

        if (!e)
                return NULL;
        return strjoin(l->collection_path, "/", e);
}

static LockOp *lock_op_free(LockOp *op) {
        if (!op)
                return NULL;
        if (op->lock) {
                if (op->prev)
                        op->prev->next = op->next;
                else
                        op->lock->ops = op->next;
                if (op->next)
                        op->next->prev = op->prev;
        }
        kube_call_cancel(op->call);
        sd_event_source_disable_unref(op->deadline);
        free(op->slot);
        json_object_put(op->list);
        free(op->slots);
        json_object_put(op->fetched);
        free(op->states);
        free(op->order);
        if (op->notes && op->lock)
                for (unsigned i = 0; i < op->lock->concurrency; i++)
                        free(op->notes[i]);
        free(op->notes);
        free(op->refused);
        free(op->previous_holder);
        free(op->reason);
        lock_slot_info_done(&op->before);
        free(op);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(LockOp *, lock_op_free);

static int lock_op_new(Lock *l, LockOpType type, const char *slot, LockHandler handler, void *userdata,
                       LockOp **ret) {
        _cleanup_(lock_op_freep) LockOp *op = NULL;

        /* list and force release set their own handlers */
        if (!l || (!handler && type != LOCK_OP_LIST && type != LOCK_OP_FORCE_RELEASE))
                return -EINVAL;

        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        op->type = type;
        op->handler = handler;
        op->userdata = userdata;
        if (slot) {
                op->slot = strdup(slot);
                if (!op->slot)
                        return -ENOMEM;
        }
        if (type == LOCK_OP_ACQUIRE || type == LOCK_OP_FIND_OWN) {
                op->slots = calloc(l->concurrency, sizeof *op->slots);
                op->states = calloc(l->concurrency, sizeof *op->states);
                op->order = calloc(l->concurrency, sizeof *op->order);
                op->notes = calloc(l->concurrency, sizeof *op->notes);
                op->refused = calloc(l->concurrency, sizeof *op->refused);
                op->fetched = json_object_new_array();
                if (!op->slots || !op->states || !op->order || !op->notes || !op->refused || !op->fetched)
                        return -ENOMEM;
        }

        op->lock = l;
        op->next = l->ops;
        if (l->ops)
                l->ops->prev = op;
        l->ops = op;

        *ret = TAKE_PTR(op);
        return 0;
}

/* Ends the operation: frees it first, then runs the handler, which may free the Lock. Callers
 * return right after. */
static void lock_op_finish(LockOp *op, int error, const char *slot, const char *holders) {
        LockHandler handler = op->handler;
        void *userdata = op->userdata;
        Lock *l = op->lock;
        _cleanup_free_ char *s = NULL, *h = NULL;

        if (slot) {
                s = strdup(slot);
                if (!s && error >= 0)
                        error = -ENOMEM;
        }
        if (holders) {
                h = strdup(holders);
                if (!h && error >= 0)
                        error = -ENOMEM;
        }
        lock_op_free(op);
        handler(l, error, error >= 0 ? s : NULL, h, userdata);
}

static int lock_op_call(LockOp *op, const char *method, const char *path, json_object *body,
                        KubeCallHandler handler) {
        /* Reads, writes with a resourceVersion precondition and creates (a repeat turns into
         * 409 AlreadyExists) are all safe to repeat. */
        return kube_client_call(op->lock->client, method, path, NULL, body, KUBE_CALL_IDEMPOTENT,
                                handler, op, &op->call);
}

static int lock_op_read_slot(LockOp *op, KubeCallHandler handler) {
        _cleanup_free_ char *path = lock_slot_path(op->lock, op->slot);

        if (!path)
                return -ENOMEM;
        return lock_op_call(op, "GET", path, NULL, handler);
}

static int lock_op_write_slot(LockOp *op, json_object *body, KubeCallHandler handler) {
        _cleanup_free_ char *path = lock_slot_path(op->lock, op->slot);

        if (!path)
                return -ENOMEM;
        return lock_op_call(op, "PUT", path, body, handler);
}

/* Warns once per slot that a tool removed the group's label from a slot's Lease (a GitOps
 * controller that rewrote it): the labelled list and watch no longer see it. Our next write to it
 * puts the label back; once it is back, a later removal is reported again. */
static void lock_label_restored(Lock *l, const char *slot) {
        for (size_t i = 0; l->label_warned && l->label_warned[i]; i++)
                if (streq(l->label_warned[i], slot)) {
                        free(l->label_warned[i]);
                        memmove(l->label_warned + i, l->label_warned + i + 1,
                                (strv_length(l->label_warned + i + 1) + 1) * sizeof(char *));
                        return;
                }
}

static void lock_check_label(Lock *l, const char *slot, json_object *lease) {
        LockLabel label = lock_lease_label(lease, l->name);

        if (label == LOCK_LABEL_OURS) {
                lock_label_restored(l, slot);
                return;
        }
        if (strv_contains(l->label_warned, slot))
                return;
        (void) strv_extend(&l->label_warned, slot);
        if (label == LOCK_LABEL_MISSING)
                log_warning("Lock slot Lease %s/%s lacks its label %s=%s (did a tool rewrite it?), so lists and "
                            "watches of the group miss it; using it by name, and our next write to it puts the "
                            "label back.", l->namespace, slot, LOCK_LABEL, l->name);
        else
                log_warning("Lease %s/%s is named like a slot of lock %s but labelled %s=%s; not touching it.",
                            l->namespace, slot, l->name, LOCK_LABEL,
                            strna(json_get_string(json_get_member(json_get(lease, "metadata.labels"), LOCK_LABEL), "")));
}

/* The message for a slot held under our name by another machine, logged once per slot and machine. */
static char *lock_twin_message(Lock *l, const char *slot, json_object *lease) {
        _cleanup_free_ char *key = strjoin(slot, "\n", strna(lock_lease_machine_id(lease)));
        char *m = lock_format_twin(slot, l->identity, lock_lease_machine_id(lease), l->machine_id);

        if (!m || !key)
                return m;
        if (!streq_ptr(l->twin_logged, key)) {
                log_error("Refusing lock slot %s: %s.", slot, m);
                free(l->twin_logged);
                l->twin_logged = TAKE_PTR(key);
        } else
                log_debug("Refusing lock slot %s: %s.", slot, m);
        return m;
}

static void lock_acquire_list(LockOp *op);
static void lock_acquire_check_holders(LockOp *op);
static void lock_acquire_decide(LockOp *op);

static void lock_acquire_busy(LockOp *op, const char *why) {
        Lock *l = op->lock;
        _cleanup_free_ char *holders = NULL;

        /* Refused slots already expired: counting them would have the caller retry at once, in a
         * loop. They are looked at again by the periodic re-check, or when their lease changes. */
        l->next_expiry = USEC_INFINITY;
        l->refused_expired = false;
        for (unsigned i = 0; i < l->concurrency; i++) {
                if (lock_lease_holder(op->slots[i]) && !op->refused[i] && !op->notes[i])
                        l->next_expiry = MIN(l->next_expiry, lock_lease_expiry(op->slots[i]));
                if (op->refused[i] || op->notes[i])
                        l->refused_expired = true;
        }

        holders = lock_format_holders_noted(op->slots, l->slot_names, op->notes, l->concurrency,
                                            kube_client_server_now(l->client));
        if (!holders) {
                lock_op_finish(op, -ENOMEM, NULL, NULL);
                return;
        }
        if (isempty(holders) && why) {
                free(holders);
                holders = strdup(why);
                if (!holders) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
        }
        lock_op_finish(op, -EBUSY, NULL, holders);
}

/* A write of ours lost (409) or met a deleted slot (404): read the slots again, a bounded number
 * of times. If our own write went through and only its answer was lost, the next list shows us as
 * the holder. */
static void lock_acquire_lost(LockOp *op, const char *what) {
        log_debug("Lost the write of lock slot %s (%s), reading the slots again.", op->slot, what);
        if (++op->rounds >= LOCK_CONFLICT_ROUNDS_MAX) {
                lock_acquire_busy(op, "every attempt lost to another node");
                return;
        }
        lock_acquire_list(op);
}

static void lock_on_acquire_fetched(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        int idx = lock_slot_index(l->name, op->slot);
        LockLabel label;

        op->call = NULL;
        if (error == -ENOENT) {
                lock_acquire_lost(op, "created and deleted meanwhile");
                return;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }
        if (idx < 0 || (unsigned) idx >= l->concurrency ||
            !streq_ptr(json_get_string(response->body, "metadata.name"), op->slot)) {
                lock_op_finish(op, -EBADMSG, NULL, NULL);
                return;
        }

        label = lock_lease_label(response->body, l->name);
        if (label == LOCK_LABEL_OURS) {
                /* A plain race: another node (or a lost answer of ours) created it after our list. */
                lock_acquire_lost(op, "created meanwhile");
                return;
        }

        /* The list could not show it: its label is gone (or names another group). Decide with the
         * lease as read by name; the write that takes or renews it puts the label back. */
        if (json_object_array_add(op->fetched, json_object_get(response->body)) < 0) {
                json_object_put(response->body);
                lock_op_finish(op, -ENOMEM, NULL, NULL);
                return;
        }
        op->slots[idx] = response->body;
        lock_check_label(l, op->slot, response->body);
        if (label == LOCK_LABEL_FOREIGN) {
                op->notes[idx] = strdup_printf("%s is labelled %s=%s, not as a slot of %s: not touching it",
                                               op->slot, LOCK_LABEL,
                                               strna(json_get_string(json_get_member(json_get(response->body, "metadata.labels"),
                                                                                     LOCK_LABEL), "")),
                                               l->name);
                if (!op->notes[idx]) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
        }
        if (++op->rounds >= LOCK_CONFLICT_ROUNDS_MAX) {
                lock_acquire_busy(op, "every attempt lost to another node");
                return;
        }
        lock_acquire_decide(op);
}

/* The end of a write of ours that failed: a conflict (409) or a deleted slot (404) is a lost
 * round, anything else ends the operation. False when there was no error. */
static bool lock_acquire_write_failed(LockOp *op, int error) {
        if (error == -ESTALE || error == -ENOENT) {
                lock_acquire_lost(op, error == -ESTALE ? "conflict" : "gone");
                return true;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return true;
        }
        return false;
}

static void lock_acquire_won(LockOp *op) {
        lock_label_restored(op->lock, op->slot);      /* our write carried it */
        lock_op_finish(op, 0, op->slot, NULL);
}

/* The slot we created renewed once: proof that we may write it. RBAC can limit update to the slot
 * names it lists, but not create: with Concurrency= above those names, a node could create a slot,
 * cordon and drain, and then never renew or confirm it again, stranded. */
static void lock_on_created_verified(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;

        op->call = NULL;
        if (error == -EACCES) {
                log_error("Created lock slot %s/%s, but the API server does not let us update it (%s). RBAC "
                          "grants update only on the slot names it lists: list %s in rbac.yaml's Role, or lower "
                          "[Lock] Concurrency=. Not using it; it expires unused.",
                          op->lock->namespace, op->slot,
                          strna(json_get_string(response->body, "message")), op->slot);
                lock_op_finish(op, -EACCES, NULL, NULL);
                return;
        }
        if (!lock_acquire_write_failed(op, error))
                lock_acquire_won(op);
}

static void lock_on_acquire_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        int r;

        op->call = NULL;

        if (error == -ESTALE && op->created && lock_status_is_already_exists(response->body, op->slot)) {
                /* The list did not show this slot, yet it exists: created just now by another node,
                 * or a tool removed its label. Read it by name to tell which. */
                r = lock_op_read_slot(op, lock_on_acquire_fetched);
                if (r < 0)
                        lock_op_finish(op, r, NULL, NULL);
                return;
        }
        /* 409: someone else wrote the slot first (or created it first); 404: it was deleted. */
        if (lock_acquire_write_failed(op, error))
                return;

        if (op->created) {
                _cleanup_json_ json_object *body = NULL;
                _cleanup_free_ char *path = NULL;

                log_info("Created lock slot %s and took it.", op->slot);
                r = lock_build_renew(response->body, op->lock->ttl_usec, kube_client_server_now(op->lock->client),
                                     &body);
                if (r >= 0)
                        r = lock_mark_lease(body, op->lock->name, op->lock->machine_id);
                path = r >= 0 ? lock_slot_path(op->lock, op->slot) : NULL;
                if (r >= 0 && !path)
                        r = -ENOMEM;
                if (r >= 0)
                        r = lock_op_call(op, "PUT", path, body, lock_on_created_verified);
                if (r < 0)
                        lock_op_finish(op, r, NULL, NULL);
                return;
        }

        if (op->renewing_own && op->rounds > 0)
                /* We lost a write earlier in this operation, yet the slot names us: the write went
                 * through and only its answer was lost (the repeat met itself as a 409). */
                log_info("Took lock slot %s (an earlier write of ours went through).", op->slot);
        else if (op->renewing_own)
                log_debug("Lock slot %s already names us, renewed it.", op->slot);
        else if (op->previous_holder)
                log_info("Took over lock slot %s from %s: %s.", op->slot, op->previous_holder, op->reason);
        else
                log_info("Took lock slot %s (%s).", op->slot, op->reason);
        lock_acquire_won(op);
}

/* Writes slot index: a takeover (PUT with the resourceVersion read) or a create (POST). Either
 * carries the group's label and our machine ID. */
static void lock_acquire_take(LockOp *op, unsigned index, const char *reason) {
        Lock *l = op->lock;
        json_object *lease = op->slots[index];
        _cleanup_json_ json_object *body = NULL;
        _cleanup_free_ char *path = NULL;
        usec_t now = kube_client_server_now(l->client);
        const char *holder;
        int r;

        if (free_and_strdup(&op->slot, l->slot_names[index]) < 0 ||
            free_and_strdup(&op->reason, reason) < 0) {
                lock_op_finish(op, -ENOMEM, NULL, NULL);
                return;
        }
        holder = lock_lease_holder(lease);
        r = free_and_strdup(&op->previous_holder, holder && !streq(holder, l->identity) ? holder : NULL);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }

        op->created = !lease;
        if (lease) {
                r = op->renewing_own ? lock_build_renew(lease, l->ttl_usec, now, &body) :
                                       lock_build_take(lease, l->identity, l->ttl_usec, now, &body);
                if (r >= 0)
                        r = lock_mark_lease(body, l->name, l->machine_id);
                if (r < 0) {
                        lock_op_finish(op, r, NULL, NULL);
                        return;
                }
                path = lock_slot_path(l, op->slot);
                if (!path) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
                r = lock_op_call(op, "PUT", path, body, lock_on_acquire_written);
        } else {
                r = lock_build_new(l->namespace, l->name, op->slot, l->identity, l->ttl_usec, now, &body);
                if (r >= 0)
                        r = lock_mark_lease(body, l->name, l->machine_id);
                if (r < 0) {
                        lock_op_finish(op, r, NULL, NULL);
                        return;
                }
                r = lock_op_call(op, "POST", l->collection_path, body, lock_on_acquire_written);
        }
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
}

bool lock_status_is_node_not_found(json_object *status, const char *node) {
        return streq_ptr(json_get_string(status, "kind"), "Status") &&
                streq_ptr(json_get_string(status, "reason"), "NotFound") &&
                streq_ptr(json_get_string(status, "details.kind"), "nodes") &&
                streq_ptr(json_get_string(status, "details.name"), node);
}

static void lock_on_stuck_event_posted(KubeClient *c, int error, const KubeResponse *response,
                                       void *userdata) {
        if (error < 0)
                log_debug_errno(error, "Failed to post the %s Event, ignoring: %s", LOCK_EVENT_REASON_STUCK,
                                node_refusal(response) ?: strerror(ERRNO_VALUE(error)));
}

/* A refused takeover is worth one warning and one Event on the holder's Node per holder and
 * renewal, not one per retry of ours. */
static void lock_report_stuck(Lock *l, unsigned index, json_object *lease, const char *text) {
        const char *holder = lock_lease_holder(lease);
        _cleanup_free_ char *key = strjoin(holder, "\n", strempty(json_get_string(lease, "spec.renewTime")));
        int r;

        if (!key)
                return;
        if (streq_ptr(l->stuck_reported[index], key)) {
                log_debug("Reboot lock stuck: %s.", text);
                return;
        }
        free(l->stuck_reported[index]);
        l->stuck_reported[index] = TAKE_PTR(key);

        log_warning("Reboot lock stuck: %s.", text);
        {
                /* Every waiting node sees the same stuck slot: one Event for all of them. */
                _cleanup_free_ char *event_key = strjoin(LOCK_EVENT_REASON_STUCK, "\n", l->namespace, "/",
                                                         json_get_string(lease, "metadata.name") ?: "", "\n",
                                                         l->stuck_reported[index]);
                r = event_key ? node_post_event_once(l->client, holder, event_key, "Warning",
                                                     LOCK_EVENT_REASON_STUCK, text, lock_on_stuck_event_posted,
                                                     NULL) : -ENOMEM;
        }
        if (r < 0)
                log_debug_errno(r, "Failed to post the %s Event on Node %s, ignoring: %m",
                                LOCK_EVENT_REASON_STUCK, holder);
}

/* An expired slot whose holder's Node was read (or could not be): true when we took it over. */
static bool lock_acquire_judge_expired(LockOp *op, unsigned i, int error, json_object *node) {
        Lock *l = op->lock;
        json_object *lease = op->slots[i];
        const char *holder = lock_lease_holder(lease);
        char age[FORMAT_TIMESPAN_MAX];
        _cleanup_free_ char *why = NULL, *reason = NULL;
        bool readable = false;
        usec_t expired;

        (void) lock_slot_state(lease, kube_client_server_now(l->client), &expired);
        if (error >= 0 && streq_ptr(json_get_string(node, "kind"), "Node") &&
            streq_ptr(json_get_string(node, "metadata.name"), holder)) {
                readable = true;
                if (lock_holder_is_idle(node, &why)) {
                        /* Its daemon died or was removed while idle: nothing to follow it into. */
                        reason = strdup_printf("expired %s ago, and %s is Ready and idle",
                                               format_age(age, sizeof age, expired), holder);
                        if (!reason) {
                                lock_op_finish(op, -ENOMEM, NULL, NULL);
                                return true;
                        }
                        lock_acquire_take(op, i, reason);
                        return true;
                }
        } else if (error == -ENOENT)
                why = strdup("not known to be healthy (its Node lookup got a 404 that does not say it is gone)");
        else if (error < 0)
                why = strdup_printf("not known to be healthy (its Node could not be read: %s)",
                                    strerror(-error));
        else
                why = strdup("not known to be healthy (the answer for its Node was not a Node)");
        if (!why) {
                lock_op_finish(op, -ENOMEM, NULL, NULL);
                return true;
        }

        op->notes[i] = lock_format_stuck(l->slot_names[i], holder, expired, why);
        if (!op->notes[i]) {
                lock_op_finish(op, -ENOMEM, NULL, NULL);
                return true;
        }
        op->refused[i] = true;
        if (readable)
                lock_report_stuck(l, i, lease, op->notes[i]);
        else
                log_debug("Not taking over lock slot %s: %s.", l->slot_names[i], op->notes[i]);
        return false;
}

static void lock_on_holder_checked(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        unsigned i = op->order[op->check_next];
        const char *holder = lock_lease_holder(op->slots[i]);

        op->call = NULL;

        /* Only the API server's own word that this Node is gone counts: a 404 from a proxy, or
         * "could not find the requested resource" for a wrong URL, must not let us take a live
         * node's lock. */
        if (error == -ENOENT && lock_status_is_node_not_found(response->body, holder)) {
                _cleanup_free_ char *reason = strdup_printf("holder Node %s no longer exists", holder);

                if (!reason) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
                lock_acquire_take(op, i, reason);
                return;
        }

        if (op->states[i] == LOCK_SLOT_EXPIRED) {
                if (lock_acquire_judge_expired(op, i, error, response->body))
                        return;
        } else if (error < 0 && error != -ENOENT)
                log_debug_errno(error, "Could not look up Node %s holding lock slot %s, assuming it exists: %m",
                                holder, l->slot_names[i]);
        else if (error == -ENOENT)
                log_debug("Node %s holding lock slot %s: 404 without a NotFound Status, assuming it exists.",
                          holder, l->slot_names[i]);

        op->check_next++;
        lock_acquire_check_holders(op);
}

/* No slot is unclaimed: look up the holders' Nodes, one GET each, served from the API server's
 * cache. An expired slot is taken when its holder is gone or idle, a live one only when gone. */
static void lock_acquire_check_holders(LockOp *op) {
        Lock *l = op->lock;

        for (; op->check_next < op->n_order; op->check_next++) {
                unsigned i = op->order[op->check_next];
                const char *holder = lock_lease_holder(op->slots[i]);
                _cleanup_free_ char *e = NULL, *path = NULL;
                int r;

                if (!holder || op->notes[i] || streq(holder, l->identity))
                        continue;
                e = url_escape(holder);
                if (!e) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
                path = strjoin("/api/v1/nodes/", e, "?resourceVersion=0");
                if (!path) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
                r = lock_op_call(op, "GET", path, NULL, lock_on_holder_checked);
                if (r < 0) {
                        lock_op_finish(op, r, NULL, NULL);
                        return;
                }
                return;
        }

        lock_acquire_busy(op, NULL);
}

static void lock_acquire_decide(LockOp *op) {
        Lock *l = op->lock;
        _cleanup_free_ char *reason = NULL;
        usec_t now = kube_client_server_now(l->client);
        uint64_t rnd = random_u64();
        int idx, twin = -1;

        for (unsigned i = 0; i < l->concurrency; i++) {
                if (op->notes[i])
                        continue;
                switch (lock_lease_owner(op->slots[i], l->identity, l->machine_id)) {
                case LOCK_OWNER_US:
                        op->renewing_own = true;
                        lock_acquire_take(op, i, "already ours");
                        return;
                case LOCK_OWNER_TWIN:
                        if (twin < 0)
                                twin = (int) i;
                        break;
                default:
                        break;
                }
        }
        if (twin >= 0) {
                /* Another host runs under our name: neither of us may take anything. */
                _cleanup_free_ char *m = lock_twin_message(l, l->slot_names[twin], op->slots[twin]);

                lock_op_finish(op, m ? -ENOTUNIQ : -ENOMEM, NULL, m);
                return;
        }

        for (unsigned i = 0; i < l->concurrency; i++)
                op->states[i] = op->notes[i] ? LOCK_SLOT_HELD : lock_slot_state(op->slots[i], now, NULL);

        idx = lock_choose_slot(op->states, l->concurrency, rnd);
        if (idx >= 0 && slot_unclaimed(op->states[idx])) {
                (void) lock_slot_is_free(op->slots[idx], now, &reason);
                if (!reason) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
                lock_acquire_take(op, (unsigned) idx, reason);
                return;
        }

        /* Nothing unclaimed: only now pay for looking up the holders' Nodes, and only of those
         * that expired or missed a renewal: a holder that renews on time runs, and a Node deleted
         * under it is found once it stops (reading every holder's Node at every look cost each
         * node Concurrency= requests per cycle). */
        op->n_order = lock_check_order(op->states, l->concurrency, rnd, op->order);
        {
                unsigned j = 0;

                for (unsigned k = 0; k < op->n_order; k++) {
                        unsigned i = op->order[k];

                        if (op->states[i] != LOCK_SLOT_HELD || !lock_holder_renews_on_time(op->slots[i], now))
                                op->order[j++] = i;
                }
                op->n_order = j;
        }
        op->check_next = 0;
        lock_acquire_check_holders(op);
}

static int lock_take_list(LockOp *op, int error, const KubeResponse *response) {
        if (error < 0)
                return error;
        if (!response->body || !json_object_is_type(json_get(response->body, "items"), json_type_array))
                return -EBADMSG;

        json_object_put(op->list);
        op->list = json_object_get(response->body);
        if (op->slots)
                lock_index_list(op->list, op->lock->name, op->lock->concurrency, op->slots);
        if (op->notes)
                for (unsigned i = 0; i < op->lock->concurrency; i++) {
                        op->notes[i] = mfree(op->notes[i]);
                        op->refused[i] = false;
                }
        return 0;
}

static void lock_on_acquire_listed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        int r;

        op->call = NULL;
        r = lock_take_list(op, error, response);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
        op->renewing_own = false;
        lock_acquire_decide(op);
}

static void lock_acquire_list(LockOp *op) {
        int r;

        r = lock_op_call(op, "GET", op->lock->list_path, NULL, lock_on_acquire_listed);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
}

int lock_acquire(Lock *l, LockHandler handler, void *userdata) {
        LockOp *op;
        int r;

        r = lock_op_new(l, LOCK_OP_ACQUIRE, NULL, handler, userdata, &op);
        if (r < 0)
                return r;
        /* A waiting node's look at the slots may come from the API server's cache: every write
         * that acts on it carries the resourceVersion it read, so a stale view costs a 409, and
         * the retry after one reads the current state (lock_acquire_list()). */
        r = lock_op_call(op, "GET", l->cache_list_path, NULL, lock_on_acquire_listed);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

static void lock_on_renew_read(KubeClient *c, int error, const KubeResponse *response, void *userdata);

/* After a 409 or 404 on our write: read the slot again (a bounded number of times) and let
 * handler look who holds it now. */
static void lock_op_reread(LockOp *op, KubeCallHandler handler) {
        int r;

        if (++op->rounds >= LOCK_REREAD_MAX) {
                lock_op_finish(op, -EAGAIN, NULL, NULL);
                return;
        }
        r = lock_op_read_slot(op, handler);
        if (r < 0)
                lock_op_finish(op, r, NULL, NULL);
}

static void lock_on_renew_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;

        op->call = NULL;
        if (error == -ESTALE || error == -ENOENT) {
                /* Someone wrote the lease since we read it, or our own repeated write met itself:
                 * read again and look who holds it. */
                lock_op_reread(op, lock_on_renew_read);
                return;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }
        lock_label_restored(op->lock, op->slot);      /* our write carried it */
        lock_op_finish(op, 0, op->slot, NULL);
}

static void lock_on_renew_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        _cleanup_json_ json_object *body = NULL;
        int r;

        op->call = NULL;
        if (error == -ENOENT) {
                lock_op_finish(op, -ESTALE, NULL, NULL);
                return;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }
        switch (lock_lease_owner(response->body, l->identity, l->machine_id)) {
        case LOCK_OWNER_US:
                break;
        case LOCK_OWNER_TWIN: {
                _cleanup_free_ char *m = lock_twin_message(l, op->slot, response->body);

                lock_op_finish(op, m ? -ENOTUNIQ : -ENOMEM, NULL, m);
                return;
        }
        default:
                log_debug("Lock slot %s is held by %s now, not by us.", op->slot,
                          strna(lock_lease_holder(response->body)));
                lock_op_finish(op, -ESTALE, NULL, NULL);
                return;
        }

        lock_check_label(l, op->slot, response->body);
        r = lock_build_renew(response->body, l->ttl_usec, kube_client_server_now(l->client), &body);
        if (r >= 0)
                r = lock_mark_lease(body, l->name, l->machine_id);
        if (r >= 0)
                r = lock_op_write_slot(op, body, lock_on_renew_written);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
}

static int lock_check_slot(Lock *l, const char *slot) {
        if (!l)
                return -EINVAL;
        return lock_slot_index(l->name, slot) < 0 ? -EINVAL : 0;
}

static int lock_on_renew_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        LockOp *op = userdata;
        char t[FORMAT_TIMESPAN_MAX];

        log_debug("Renewal of lock slot %s took longer than %s, giving up on it.", op->slot,
                  format_timespan(t, sizeof t, op->lock->renew_timeout_usec));
        /* Cancels the request in flight; it may still have reached the server, which is harmless:
         * the next renewal reads the slot afresh. */
        lock_op_finish(op, -ETIMEDOUT, NULL, NULL);
        return 0;
}

int lock_renew(Lock *l, const char *slot, LockHandler handler, void *userdata) {
        LockOp *op;
        int r;

        r = lock_check_slot(l, slot);
        if (r < 0)
                return r;
        r = lock_op_new(l, LOCK_OP_RENEW, slot, handler, userdata, &op);
        if (r < 0)
                return r;
        if (l->renew_timeout_usec > 0) {
                r = sd_event_add_time_relative(l->event, &op->deadline, CLOCK_MONOTONIC, l->renew_timeout_usec,
                                               10 * USEC_PER_MSEC, lock_on_renew_deadline, op);
                if (r < 0) {
                        lock_op_free(op);
                        return r;
                }
                (void) sd_event_source_set_description(op->deadline, "lock-renew-deadline");
        }
        r = lock_op_read_slot(op, lock_on_renew_read);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

static void lock_on_release_read(KubeClient *c, int error, const KubeResponse *response, void *userdata);

static void lock_on_release_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;

        op->call = NULL;
        if (error == -ESTALE || error == -ENOENT) {
                lock_op_reread(op, lock_on_release_read);
                return;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }

        log_info("Released lock slot %s.", op->slot);
        lock_label_restored(op->lock, op->slot);      /* our write carried it */
        lock_op_finish(op, 0, op->slot, NULL);
}

static void lock_on_release_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        _cleanup_json_ json_object *body = NULL;
        int r;

        op->call = NULL;
        if (error == -ENOENT) {
                log_debug("Lock slot %s does not exist, nothing to release.", op->slot);
                lock_op_finish(op, 0, op->slot, NULL);
                return;
        }
        if (error < 0) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }
        switch (lock_lease_owner(response->body, l->identity, l->machine_id)) {
        case LOCK_OWNER_US:
                break;
        case LOCK_OWNER_TWIN:
                log_warning("Not releasing lock slot %s: it names us, but machine %s wrote it (two hosts share "
                            "[Node] Name=%s?).", op->slot, strna(lock_lease_machine_id(response->body)),
                            l->identity);
                lock_op_finish(op, 0, op->slot, NULL);
                return;
        default:
                /* Never touch another node's lease; this is also how a repeated release whose first
                 * answer was lost ends. */
                log_debug("Lock slot %s is not ours (holder: %s), nothing to release.", op->slot,
                          strna(lock_lease_holder(response->body)));
                lock_op_finish(op, 0, op->slot, NULL);
                return;
        }

        lock_check_label(l, op->slot, response->body);
        r = lock_build_release(response->body, kube_client_server_now(l->client), &body);
        if (r >= 0)
                r = lock_mark_lease(body, l->name, NULL);
        if (r >= 0)
                r = lock_op_write_slot(op, body, lock_on_release_written);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
}

int lock_release(Lock *l, const char *slot, LockHandler handler, void *userdata) {
        LockOp *op;
        int r;

        r = lock_check_slot(l, slot);
        if (r < 0)
                return r;
        r = lock_op_new(l, LOCK_OP_RELEASE, slot, handler, userdata, &op);
        if (r < 0)
                return r;
        r = lock_op_read_slot(op, lock_on_release_read);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

static void lock_find_own_probe(LockOp *op);

static void lock_on_find_own_probed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        const char *slot = l->slot_names[op->probe_next];

        op->call = NULL;
        if (error < 0 && error != -ENOENT) {
                lock_op_finish(op, error, NULL, NULL);
                return;
        }
        if (error >= 0 && streq_ptr(json_get_string(response->body, "metadata.name"), slot) &&
            lock_lease_label(response->body, l->name) != LOCK_LABEL_FOREIGN) {
                lock_check_label(l, slot, response->body);
                switch (lock_lease_owner(response->body, l->identity, l->machine_id)) {
                case LOCK_OWNER_US:
                        lock_op_finish(op, 0, slot, NULL);
                        return;
                case LOCK_OWNER_TWIN:
                        if (!op->reason) {
                                op->reason = lock_twin_message(l, slot, response->body);
                                if (!op->reason) {
                                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                                        return;
                                }
                        }
                        break;
                default:
                        break;
                }
        }
        op->probe_next++;
        lock_find_own_probe(op);
}

/* Slots missing from the labelled list may still exist without their label: read them by name.
 * At start only, and normally none are missing once the group's slots were used. */
static void lock_find_own_probe(LockOp *op) {
        Lock *l = op->lock;
        int r;

        for (; op->probe_next < l->concurrency; op->probe_next++) {
                if (op->slots[op->probe_next])
                        continue;
                r = free_and_strdup(&op->slot, l->slot_names[op->probe_next]);
                if (r >= 0)
                        r = lock_op_read_slot(op, lock_on_find_own_probed);
                if (r < 0)
                        lock_op_finish(op, r, NULL, NULL);
                return;
        }
        if (op->reason)
                lock_op_finish(op, -ENOTUNIQ, NULL, op->reason);
        else
                lock_op_finish(op, 0, NULL, NULL);
}

static void lock_on_find_own_listed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        json_object *own, *twin = NULL;
        int r;

        op->call = NULL;
        r = lock_take_list(op, error, response);
        if (r < 0) {
                lock_op_finish(op, r, NULL, NULL);
                return;
        }
        own = lock_find_own_lease(op->list, l->name, l->identity, l->machine_id, &twin);
        if (own) {
                lock_op_finish(op, 0, json_get_string(own, "metadata.name"), NULL);
                return;
        }
        if (twin) {
                op->reason = lock_twin_message(l, json_get_string(twin, "metadata.name"), twin);
                if (!op->reason) {
                        lock_op_finish(op, -ENOMEM, NULL, NULL);
                        return;
                }
        }
        op->probe_next = 0;
        lock_find_own_probe(op);
}

int lock_find_own(Lock *l, LockHandler handler, void *userdata) {
        LockOp *op;
        int r;

        r = lock_op_new(l, LOCK_OP_FIND_OWN, NULL, handler, userdata, &op);
        if (r < 0)
                return r;
        r = lock_op_call(op, "GET", l->list_path, NULL, lock_on_find_own_listed);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

/* ---- list and force release (noderebootctl) ---------------------------------------------- */

static void lock_on_listed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        LockListHandler handler = op->list_handler;
        void *ud = op->userdata;
        LockSlotInfo *slots = NULL;
        size_t n = 0;
        usec_t now = kube_client_server_now(l->client);
        int r;

        op->call = NULL;
        r = lock_take_list(op, error, response);
        if (r >= 0)
                r = lock_slots_from_list(op->list, l->name, l->concurrency, now, &slots, &n);
        /* Freed before the handler runs: it may free the Lock. */
        lock_op_free(op);
        handler(l, r, r >= 0 ? slots : NULL, r >= 0 ? n : 0, now, ud);
        lock_slot_infos_free(slots, n);
}

int lock_list(Lock *l, LockListHandler handler, void *userdata) {
        LockOp *op;
        int r;

        if (!l || !handler)
                return -EINVAL;
        r = lock_op_new(l, LOCK_OP_LIST, NULL, NULL, userdata, &op);
        if (r < 0)
                return r;
        op->list_handler = handler;
        r = lock_op_call(op, "GET", l->list_path, NULL, lock_on_listed);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

/* Ends a force release: info (may be NULL) is handed to the handler after the op is gone. */
static void lock_force_finish(LockOp *op, int error, LockSlotInfo *info) {
        LockForceReleaseHandler handler = op->force_handler;
        void *userdata = op->userdata;
        Lock *l = op->lock;
        LockSlotInfo copy = {};

        if (info) {
                copy = *info;
                *info = (LockSlotInfo) {};
        }
        lock_op_free(op);
        handler(l, error, info ? &copy : NULL, userdata);
        lock_slot_info_done(&copy);
}

/* A Lease of that name labelled as one of the group's slots: an administrator's tool writes
 * nothing it cannot tell is a slot (a lease that lost its label is released by its holder, or
 * after an administrator puts the label back). */
static bool lock_lease_in_group(json_object *lease, const char *name, const char *slot) {
        return streq_ptr(json_get_string(lease, "metadata.name"), slot) &&
                lock_lease_label(lease, name) == LOCK_LABEL_OURS;
}

static void lock_on_force_read(KubeClient *c, int error, const KubeResponse *response, void *userdata);

static void lock_on_force_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        int r;

        op->call = NULL;
        if (error == -ESTALE) {
                /* Someone wrote the lease after our read, or a repeat of our own write met the
                 * first one: read again to tell which. */
                op->rounds++;
                r = lock_op_read_slot(op, lock_on_force_read);
                if (r < 0)
                        lock_force_finish(op, -ESTALE, NULL);
                return;
        }
        if (error < 0) {
                lock_force_finish(op, error, NULL);
                return;
        }
        log_debug("Force-released lock slot %s (held by %s).", op->slot, strna(op->before.holder));
        lock_force_finish(op, 0, &op->before);
}

static void lock_on_force_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        LockOp *op = userdata;
        Lock *l = op->lock;
        _cleanup_json_ json_object *body = NULL;
        LockSlotInfo info = {};
        int r;

        op->call = NULL;
        if (error < 0) {
                /* After a lost write, a failed re-read leaves it unknown whether the lease changed. */
                lock_force_finish(op, op->rounds > 0 && error != -ENOENT ? -ESTALE : error, NULL);
                return;
        }
        r = lock_slot_info_from_lease(response->body, op->slot, (unsigned) lock_slot_index(l->name, op->slot),
                                      kube_client_server_now(l->client), &info);
        if (r < 0) {
                lock_force_finish(op, r, NULL);
                return;
        }
        /* Never touch a lease that merely looks like a slot: it has to carry the group's label. */
        if (!lock_lease_in_group(response->body, l->name, op->slot)) {
                lock_force_finish(op, -EPERM, &info);
                lock_slot_info_done(&info);
                return;
        }

        if (op->rounds > 0) {
                /* Read again after a 409: free now means the release went through (ours, whose
                 * answer was lost, or somebody else's); a holder means it changed under us. */
                if (!info.holder)
                        lock_force_finish(op, 0, &op->before);
                else
                        lock_force_finish(op, -ESTALE, &info);
                lock_slot_info_done(&info);
                return;
        }

        lock_slot_info_done(&op->before);
        op->before = info;
        if (!op->before.holder) {
                lock_force_finish(op, 0, &op->before);
                return;
        }

        r = lock_build_release(response->body, kube_client_server_now(l->client), &body);
        if (r >= 0)
                r = lock_op_write_slot(op, body, lock_on_force_written);
        if (r < 0)
                lock_force_finish(op, r, NULL);
}

int lock_force_release(Lock *l, const char *slot, LockForceReleaseHandler handler, void *userdata) {
        LockOp *op;
        int r;

        if (!handler)
                return -EINVAL;
        r = lock_check_slot(l, slot);
        if (r < 0)
                return r;
        r = lock_op_new(l, LOCK_OP_FORCE_RELEASE, slot, NULL, userdata, &op);
        if (r < 0)
                return r;
        op->force_handler = handler;
        r = lock_op_read_slot(op, lock_on_force_read);
        if (r < 0) {
                lock_op_free(op);
                return r;
        }
        return 0;
}

/* ---- watch ------------------------------------------------------------------------------- */

static void lock_seen_clear(Lock *l) {
        for (size_t i = 0; i < l->n_seen; i++) {
                free(l->seen[i].name);
                free(l->seen[i].holder);
        }
        l->seen = mfree(l->seen);
        l->n_seen = 0;
}

static LockSeen *lock_seen_find(Lock *l, const char *name) {
        for (size_t i = 0; i < l->n_seen; i++)
                if (streq(l->seen[i].name, name))
                        return l->seen + i;
        return NULL;
}

static void lock_seen_remove_at(Lock *l, size_t i) {
        free(l->seen[i].name);
        free(l->seen[i].holder);
        l->seen[i] = l->seen[--l->n_seen];
}

/* Records a lease's holder; true when the lease is new or its holder differs from what we saw.
 * Only that can free a slot for a waiting node: a renewal (the same holder, a new renewTime) says
 * the slot is still held, so it wakes no waiting node and costs the API server no request — with
 * thousands of nodes waiting, every renewal used to send each of them to list the leases. A slot
 * that expires without any write is found by the periodic recheck, as before. */
static bool lock_seen_update(Lock *l, const char *name, const char *holder, usec_t expiry, bool listed) {
        LockSeen *s = lock_seen_find(l, name);
        bool changed;

        if (!s) {
                LockSeen *n;

                if (l->n_seen >= LOCK_SEEN_MAX)
                        return true;
                n = reallocarray(l->seen, l->n_seen + 1, sizeof *l->seen);
                if (!n)
                        return true;
                l->seen = n;
                s = l->seen + l->n_seen;
                *s = (LockSeen) { .name = strdup(name) };
                if (!s->name)
                        return true;
                l->n_seen++;
        }
        changed = !s->holder || !streq(s->holder, strempty(holder));
        if (changed && free_and_strdup(&s->holder, strempty(holder)) < 0)
                s->holder = mfree(s->holder);
        s->expiry = expiry;
        s->listed = s->listed || listed;
        return changed;
}

/* After a (re)list: forgets leases the list no longer had; true when there were any. */
static bool lock_seen_sweep(Lock *l) {
        bool removed = false;

        for (size_t i = 0; i < l->n_seen;) {
                if (!l->seen[i].listed) {
                        lock_seen_remove_at(l, i);
                        removed = true;
                        continue;
                }
                l->seen[i].listed = false;
                i++;
        }
        return removed;
}

usec_t lock_watch_next_expiry(Lock *l) {
        usec_t e = USEC_INFINITY;

        if (!l || !l->watch || !l->synced || l->refused_expired)
                return 0;
        for (unsigned i = 0; i < l->concurrency; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (!s || isempty(s->holder))
                        return 0;
                e = MIN(e, s->expiry);
        }
        return e;
}

unsigned lock_watch_free_slots(Lock *l) {
        unsigned n = 0;

        if (!l || !l->watch || !l->synced)
                return UINT_MAX;
        for (unsigned i = 0; i < l->concurrency; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (!s || isempty(s->holder))
                        n++;
        }
        return n;
}

usec_t lock_watch_live_since(Lock *l) {
        return l && l->watch && l->synced ? kube_watch_live_since(l->watch) : USEC_INFINITY;
}

unsigned lock_watch_expired_slots(Lock *l, usec_t server_now) {
        unsigned n = 0;

        if (!l || !l->watch || !l->synced)
                return 0;
        for (unsigned i = 0; i < l->concurrency; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (s && !isempty(s->holder) && s->expiry != USEC_INFINITY && s->expiry < server_now)
                        n++;
        }
        return n;
}

size_t lock_watch_holders(Lock *l, const char **ret, size_t max) {
        size_t n = 0;

        if (!l || !l->watch || !l->synced)
                return 0;
        for (unsigned i = 0; i < l->concurrency && n < max; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (s && !isempty(s->holder))
                        ret[n++] = s->holder;
        }
        return n;
}

bool lock_watch_shows_holder(Lock *l, const char *identity) {
        if (!l || !l->watch || !l->synced || isempty(identity))
                return false;
        for (unsigned i = 0; i < l->concurrency; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (s && streq_ptr(s->holder, identity))
                        return true;
        }
        return false;
}

bool lock_watch_sees_free_slot(Lock *l) {
        if (!l || !l->watch || !l->synced)
                return true;
        for (unsigned i = 0; i < l->concurrency; i++) {
                LockSeen *s = lock_seen_find(l, l->slot_names[i]);

                if (!s || isempty(s->holder))
                        return true;
        }
        return false;
}

static void lock_on_watch_event(KubeWatch *w, KubeWatchEvent event, json_object *object, int error,
                                void *userdata) {
        Lock *l = userdata;
        const char *name = json_get_string(object, "metadata.name");
        bool fire = false;

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
                if (!name)
                        break;
                /* A re-list repeats every lease as ADDED: only a new lease or a new holder counts. */
                fire = lock_seen_update(l, name, lock_lease_holder(object), lock_lease_expiry(object),
                                        event == KUBE_WATCH_ADDED);
                fire = fire && l->synced;
                break;
        case KUBE_WATCH_DELETED:
                if (name) {
                        LockSeen *s = lock_seen_find(l, name);
                        if (s)
                                lock_seen_remove_at(l, (size_t) (s - l->seen));
                }
                fire = l->synced;
                break;
        case KUBE_WATCH_SYNCED:
                /* The first list counts as a change: a slot may have freed between the caller's
                 * last attempt and the start of the watch. */
                fire = lock_seen_sweep(l) || !l->synced;
                l->synced = true;
                break;
        case KUBE_WATCH_ERROR:
                log_debug_errno(error, "Watch of lock %s failed, retrying: %m", l->name);
                break;
        default:
                break;
        }

        if (fire) {
                log_debug("Lock %s changed (%s%s%s).", l->name, kube_watch_event_to_string(event),
                          name ? " " : "", strempty(name));
                /* Last thing we do: the handler may unwatch or free the Lock. */
                if (l->changed)
                        l->changed(l, l->changed_userdata);
        }
}

int lock_watch(Lock *l, LockChangedHandler changed, void *userdata) {
        int r;

        if (!l || !changed)
                return -EINVAL;

        l->changed = changed;
        l->changed_userdata = userdata;
        if (l->watch)
                return 0;

        l->synced = false;
        r = kube_client_watch_full(l->client, l->list_path, KUBE_WATCH_LIST_FROM_CACHE, lock_on_watch_event, l,
                                   &l->watch);
        if (r < 0) {
                l->changed = NULL;
                l->changed_userdata = NULL;
                return r;
        }
        return 0;
}

void lock_unwatch(Lock *l) {
        if (!l)
                return;
        l->watch = kube_watch_free(l->watch);
        l->changed = NULL;
        l->changed_userdata = NULL;
        l->synced = false;
        lock_seen_clear(l);
}

/* ---- the held slot ----------------------------------------------------------------------- */

/* Ends the watch of the held slot and tells the owner; last thing the caller does. */
static void lock_held_lost(Lock *l, const char *why) {
        LockLostHandler lost = l->lost;
        void *userdata = l->lost_userdata;
        _cleanup_free_ char *slot = TAKE_PTR(l->held_slot);

        /* Freeing the watch from inside its own handler is allowed. */
        lock_unwatch_held(l);
        log_debug("Lock slot %s is no longer ours: %s.", strna(slot), why);
        if (lost)
                lost(l, slot, why, userdata);
}

static void lock_on_held_event(KubeWatch *w, KubeWatchEvent event, json_object *object, int error,
                               void *userdata) {
        Lock *l = userdata;
        const char *name = json_get_string(object, "metadata.name");
        _cleanup_free_ char *why = NULL;
        bool listed;

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
                if (!streq_ptr(name, l->held_slot))
                        return;         /* the field selector shows nothing else; do not trust it blindly */
                if (event == KUBE_WATCH_ADDED)
                        l->held_listed = true;
                if (lock_lost_reason(object, l->identity, l->machine_id, &why) == 0)
                        return;         /* still ours: our own renewals look like this */
                lock_held_lost(l, why ?: "lost");
                return;
        case KUBE_WATCH_DELETED:
                if (streq_ptr(name, l->held_slot))
                        lock_held_lost(l, "its Lease was deleted");
                return;
        case KUBE_WATCH_SYNCED:
                /* A (re)list that did not show the lease: it was deleted while we were not looking. */
                listed = l->held_listed;
                l->held_listed = false;
                if (!listed)
                        lock_held_lost(l, "its Lease no longer exists");
                return;
        case KUBE_WATCH_ERROR:
                log_debug_errno(error, "Watch of lock slot %s failed, retrying: %m", strna(l->held_slot));
                return;
        default:
                return;
        }
}

int lock_watch_held(Lock *l, const char *slot, LockLostHandler lost, void *userdata) {
        _cleanup_free_ char *selector = NULL, *eselector = NULL, *path = NULL, *s = NULL;
        int r;

        if (!l || !lost)
                return -EINVAL;
        r = lock_check_slot(l, slot);
        if (r < 0)
                return r;

        selector = strjoin("metadata.name=", slot);
        if (!selector)
                return -ENOMEM;
        eselector = url_escape(selector);
        s = strdup(slot);
        if (!eselector || !s)
                return -ENOMEM;
        path = strjoin(l->collection_path, "?fieldSelector=", eselector);
        if (!path)
                return -ENOMEM;

        lock_unwatch_held(l);
        l->held_slot = TAKE_PTR(s);
        l->lost = lost;
        l->lost_userdata = userdata;
        l->held_listed = false;
        r = kube_client_watch(l->client, path, lock_on_held_event, l, &l->held_watch);
        if (r < 0) {
                lock_unwatch_held(l);
                return r;
        }
        return 0;
}

void lock_unwatch_held(Lock *l) {
        if (!l)
                return;
        l->held_watch = kube_watch_free(l->held_watch);
        l->held_slot = mfree(l->held_slot);
        l->lost = NULL;
        l->lost_userdata = NULL;
        l->held_listed = false;
}

/* ---- object ------------------------------------------------------------------------------ */

static bool machine_id_is_valid(const char *s) {
        size_t n = 0;

        for (const char *p = s; *p; p++, n++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return n > 0 && n <= LOCK_MACHINE_ID_MAX;
}

int lock_set_machine_id(Lock *l, const char *machine_id) {
        if (!l)
                return -EINVAL;
        if (machine_id && !machine_id_is_valid(machine_id))
                return -EINVAL;
        return free_and_strdup(&l->machine_id, machine_id);
}

int lock_set_renew_timeout(Lock *l, sd_event *event, usec_t timeout_usec) {
        if (!l)
                return -EINVAL;
        if (timeout_usec == USEC_INFINITY)
                timeout_usec = 0;
        if (timeout_usec > 0 && !event)
                return -EINVAL;
        if (event != l->event) {
                sd_event_unref(l->event);
                l->event = event ? sd_event_ref(event) : NULL;
        }
        l->renew_timeout_usec = timeout_usec;
        return 0;
}

int lock_new(Lock **ret, KubeClient *client, const char *namespace, const char *name,
             unsigned concurrency, usec_t ttl_usec, const char *identity) {
        _cleanup_(lock_freep) Lock *l = NULL;
        _cleanup_free_ char *ens = NULL, *selector = NULL, *eselector = NULL;

        if (!ret || !client || isempty(namespace) || isempty(name) || isempty(identity))
                return -EINVAL;
        if (concurrency < 1 || concurrency > LOCK_CONCURRENCY_MAX)
                return -ERANGE;
        if (ttl_usec == 0 || ttl_usec == USEC_INFINITY)
                return -ERANGE;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->client = client;
        l->concurrency = concurrency;
        l->ttl_usec = ttl_usec;
        l->next_expiry = USEC_INFINITY;
        l->namespace = strdup(namespace);
        l->name = strdup(name);
        l->identity = strdup(identity);
        if (!l->namespace || !l->name || !l->identity)
                return -ENOMEM;

        ens = url_escape(namespace);
        selector = strjoin(LOCK_LABEL, "=", name);
        if (!ens || !selector)
                return -ENOMEM;
        eselector = url_escape(selector);
        if (!eselector)
                return -ENOMEM;
        l->collection_path = strjoin(LEASES_API "/namespaces/", ens, "/leases");
        if (!l->collection_path)
                return -ENOMEM;
        l->list_path = strjoin(l->collection_path, "?labelSelector=", eselector);
        if (!l->list_path)
                return -ENOMEM;
        l->cache_list_path = strjoin(l->list_path, "&resourceVersion=0");
        if (!l->cache_list_path)
                return -ENOMEM;

        l->slot_names = calloc(concurrency + 1, sizeof *l->slot_names);
        l->stuck_reported = calloc(concurrency, sizeof *l->stuck_reported);
        if (!l->slot_names || !l->stuck_reported)
                return -ENOMEM;
        for (unsigned i = 0; i < concurrency; i++) {
                l->slot_names[i] = lock_slot_name(name, i);
                if (!l->slot_names[i])
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

Lock *lock_free(Lock *l) {
        if (!l)
                return NULL;

        /* Cancels every call in flight; no handler runs afterwards. */
        while (l->ops)
                lock_op_free(l->ops);
        lock_unwatch(l);
        lock_unwatch_held(l);
        sd_event_unref(l->event);

        if (l->stuck_reported)
                for (unsigned i = 0; i < l->concurrency; i++)
                        free(l->stuck_reported[i]);
        free(l->stuck_reported);
        strv_free(l->label_warned);
        free(l->twin_logged);
        free(l->machine_id);
        strv_free(l->slot_names);
        free(l->list_path);
        free(l->cache_list_path);
        free(l->collection_path);
        free(l->identity);
        free(l->name);
        free(l->namespace);
        free(l);
        return NULL;
}

usec_t lock_next_expiry(Lock *l) {
        return l ? l->next_expiry : USEC_INFINITY;
}
