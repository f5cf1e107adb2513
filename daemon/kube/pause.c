/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "json-util.h"
#include "log.h"
#include "pause.h"
#include "string-util.h"

/* A pause and a resume racing each other (two operators, or one twice) are redone from a fresh
 * read this many times. */
#define PAUSE_UPDATE_ATTEMPTS_MAX 8U

void pause_entry_done(PauseEntry *e) {
        e->reason = mfree(e->reason);
        e->by = mfree(e->by);
        e->set = false;
        e->since = 0;
}

void pause_state_done(PauseState *s) {
        pause_entry_done(&s->group);
        pause_entry_done(&s->node);
        s->nodes_paused = 0;
}

char *pause_configmap_name(const char *lock_name) {
        return strjoin(lock_name, "-pause");
}

static bool configmap_key_is_valid(const char *k) {
        /* [-._a-zA-Z0-9]+, at most 253 (validation.IsConfigMapKey). */
        if (isempty(k) || strlen(k) > 253 || streq(k, ".") || streq(k, ".."))
                return false;
        for (const char *p = k; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '-' || *p == '.' || *p == '_'))
                        return false;
        return true;
}

char *pause_node_key(const char *node) {
        _cleanup_free_ char *k = NULL;

        if (isempty(node))
                return NULL;
        k = strjoin(PAUSE_KEY_NODE_PREFIX, node);
        if (!k || !configmap_key_is_valid(k))
                return NULL;
        return TAKE_PTR(k);
}

/* Printable ASCII, cut to PAUSE_REASON_MAX: it goes to STATUS=, Events and the journal. */
static char *sanitize(const char *s) {
        char *r;
        size_t n;

        if (isempty(s))
                return NULL;
        n = MIN(strlen(s), (size_t) PAUSE_REASON_MAX);
        r = strndup(s, n);
        if (!r)
                return NULL;
        for (char *p = r; *p; p++)
                if (*p < ' ' || *p > '~')
                        *p = '?';
        return r;
}

int pause_entry_parse(const char *value, PauseEntry *ret) {
        _cleanup_json_ json_object *o = NULL;
        PauseEntry e = { .set = true };
        const char *since;

        if (value && json_parse(value, strlen(value), &o) >= 0 && json_object_is_type(o, json_type_object)) {
                const char *reason = json_get_string(o, "reason"), *by = json_get_string(o, "by");

                if (reason && !(e.reason = sanitize(reason)))
                        goto oom;
                if (by && !(e.by = sanitize(by)))
                        goto oom;
                since = json_get_string(o, "since");
                if (since && parse_rfc3339(since, &e.since) < 0)
                        e.since = 0;
        } else if (!isempty(value) && !(e.reason = sanitize(value)))
                goto oom;
        *ret = e;
        return 0;
oom:
        pause_entry_done(&e);
        return -ENOMEM;
}

char *pause_entry_format(const char *reason, const char *by, usec_t since) {
        _cleanup_json_ json_object *o = json_object_new_object();
        char t[FORMAT_RFC3339_MAX];

        if (!o)
                return NULL;
        if ((reason && json_set(o, "reason", json_object_new_string(reason)) < 0) ||
            (by && json_set(o, "by", json_object_new_string(by)) < 0) ||
            (since > 0 && json_set(o, "since", json_object_new_string(format_rfc3339(t, sizeof t, since, false))) < 0))
                return NULL;
        return strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

int pause_state_from_configmap(json_object *configmap, const char *node, PauseState *ret) {
        _cleanup_free_ char *node_key = NULL;
        PauseState s = {};
        json_object *data;
        int r;

        if (!configmap) {
                *ret = s;
                return 0;
        }
        if (!json_object_is_type(configmap, json_type_object) ||
            (json_get_string(configmap, "kind") && !streq(json_get_string(configmap, "kind"), "ConfigMap")))
                return -EBADMSG;
        data = json_get(configmap, "data");
        if (!data) {
                *ret = s;
                return 0;
        }
        if (!json_object_is_type(data, json_type_object))
                return -EBADMSG;
        /* A node whose name cannot be a key (longer than 248 characters) cannot be paused alone;
         * the group's pause still holds it. */
        if (node)
                node_key = pause_node_key(node);
        json_object_object_foreach(data, key, value) {
                PauseEntry *e = NULL;

                if (!json_object_is_type(value, json_type_string)) {
                        pause_state_done(&s);
                        return -EBADMSG;
                }
                if (startswith(key, PAUSE_KEY_NODE_PREFIX))
                        s.nodes_paused++;
                if (streq(key, PAUSE_KEY_GROUP))
                        e = &s.group;
                else if (node_key && streq(key, node_key))
                        e = &s.node;
                if (!e)
                        continue;       /* other nodes, and keys we do not know (kept as they are) */
                r = pause_entry_parse(json_object_get_string(value), e);
                if (r < 0) {
                        pause_state_done(&s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

static char *describe_entry(const PauseEntry *e, const char *what) {
        char t[FORMAT_RFC3339_MAX];

        return strdup_printf("reboots of %s are paused%s%s%s%s%s%s", what,
                             e->by ? " by " : "", strempty(e->by),
                             e->since ? " since " : "", e->since ? format_rfc3339(t, sizeof t, e->since, false) : "",
                             e->reason ? ": " : "", strempty(e->reason));
}

char *pause_describe(const PauseState *s, const char *lock_name) {
        _cleanup_free_ char *what = NULL;

        if (s->group.set) {
                what = strdup_printf("lock group %s", lock_name);
                return what ? describe_entry(&s->group, what) : NULL;
        }
        if (s->node.set)
                return describe_entry(&s->node, "this node");
        return NULL;
}

/* ---- one read ------------------------------------------------------------------------------- */

typedef struct PauseGet {
        PauseHandler handler;
        void *userdata;
        char *node;
} PauseGet;

static void pause_get_free(void *p) {
        PauseGet *g = p;

        if (!g)
                return;
        free(g->node);
        free(g);
}

static char *configmap_path(const char *namespace, const char *lock_name) {
        _cleanup_free_ char *name = pause_configmap_name(lock_name), *ens = url_escape(namespace),
                *ename = name ? url_escape(name) : NULL;

        if (!ens || !ename)
                return NULL;
        return strjoin("/api/v1/namespaces/", ens, "/configmaps/", ename);
}

static void on_pause_get(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        PauseGet *g = userdata;
        PauseState s = {};

        if (error == -ENOENT)
                error = 0;              /* no ConfigMap: nothing paused */
        else if (error >= 0)
                error = pause_state_from_configmap(response->body, g->node, &s);
        g->handler(error, &s, g->userdata);
        pause_state_done(&s);
        pause_get_free(g);
}

int pause_get(KubeClient *c, const char *namespace, const char *lock_name, const char *node,
              PauseHandler handler, void *userdata) {
        _cleanup_free_ char *path = NULL;
        PauseGet *g;
        int r;

        if (!c || !handler || isempty(namespace) || isempty(lock_name))
                return -EINVAL;
        path = configmap_path(namespace, lock_name);
        g = calloc(1, sizeof(PauseGet));
        if (!path || !g || (node && !(g->node = strdup(node)))) {
                pause_get_free(g);
                return -ENOMEM;
        }
        g->handler = handler;
        g->userdata = userdata;
        r = kube_client_call_full(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pause_get, g,
                                  pause_get_free, NULL);
        if (r < 0)
                pause_get_free(g);
        return r;
}

/* ---- the watch ------------------------------------------------------------------------------ */

struct PauseWatch {
        KubeWatch *watch;
        char *name;
        char *node;
        PauseHandler handler;
        void *userdata;
        PauseState state;
        bool listed;                    /* ADDED since the last SYNCED */
        bool synced;
};

static void pause_watch_set(PauseWatch *w, json_object *configmap) {
        PauseState s = {};
        int r;

        r = pause_state_from_configmap(configmap, w->node, &s);
        if (r < 0) {
                /* An edit by hand that is not a ConfigMap of strings: the last good state stands. */
                log_warning_errno(r, "ConfigMap %s cannot be read as a pause, keeping what it said before: %m",
                                  w->name);
                w->handler(r, &w->state, w->userdata);
                return;
        }
        pause_state_done(&w->state);
        w->state = s;
        w->handler(0, &w->state, w->userdata);
}

static void pause_on_watch(KubeWatch *kw, KubeWatchEvent event, json_object *object, int error, void *userdata) {
        PauseWatch *w = userdata;
        bool listed;

        switch (event) {
        case KUBE_WATCH_ADDED:
        case KUBE_WATCH_MODIFIED:
                if (!streq_ptr(json_get_string(object, "metadata.name"), w->name))
                        return;
                if (event == KUBE_WATCH_ADDED)
                        w->listed = true;
                pause_watch_set(w, object);
                return;
        case KUBE_WATCH_DELETED:
                if (streq_ptr(json_get_string(object, "metadata.name"), w->name))
                        pause_watch_set(w, NULL);
                return;
        case KUBE_WATCH_SYNCED:
                listed = w->listed;
                w->listed = false;
                w->synced = true;
                if (!listed)
                        pause_watch_set(w, NULL);  /* not there (any more) */
                else
                        w->handler(0, &w->state, w->userdata);   /* the first (or a new) complete view */
                return;
        case KUBE_WATCH_ERROR:
                w->handler(error, &w->state, w->userdata);
                return;
        default:
                return;
        }
}

int pause_watch_new(PauseWatch **ret, KubeClient *c, const char *namespace, const char *lock_name,
                    const char *node, PauseHandler handler, void *userdata) {
        _cleanup_(pause_watch_freep) PauseWatch *w = NULL;
        _cleanup_free_ char *selector = NULL, *eselector = NULL, *ens = NULL, *path = NULL;
        int r;

        if (!ret || !c || !handler || isempty(namespace) || isempty(lock_name))
                return -EINVAL;
        w = calloc(1, sizeof(PauseWatch));
        if (!w)
                return -ENOMEM;
        w->handler = handler;
        w->userdata = userdata;
        w->name = pause_configmap_name(lock_name);
        if (!w->name || (node && !(w->node = strdup(node))))
                return -ENOMEM;
        selector = strjoin("metadata.name=", w->name);
        eselector = selector ? url_escape(selector) : NULL;
        ens = url_escape(namespace);
        if (!eselector || !ens)
                return -ENOMEM;
        path = strjoin("/api/v1/namespaces/", ens, "/configmaps?fieldSelector=", eselector);
        if (!path)
                return -ENOMEM;
        r = kube_client_watch(c, path, pause_on_watch, w, &w->watch);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

PauseWatch *pause_watch_free(PauseWatch *w) {
        if (!w)
                return NULL;
        kube_watch_free(w->watch);
        pause_state_done(&w->state);
        free(w->name);
        free(w->node);
        return mfree(w);
}

bool pause_watch_synced(const PauseWatch *w) {
        return w && w->synced;
}

bool pause_watch_live(const PauseWatch *w) {
        return w && w->synced && kube_watch_live_since(w->watch) != USEC_INFINITY;
}

const PauseState *pause_watch_state(const PauseWatch *w) {
        return &w->state;
}

/* ---- noderebootctl's change ----------------------------------------------------------------- */

typedef struct PauseUpdate {
        KubeClient *client;
        char *namespace;
        char *name;
        char *path;
        char *lock_name;
        char *key;
        char *value;
        unsigned attempts;
        PauseUpdateHandler handler;
        void *userdata;
} PauseUpdate;

static void pause_update_free(void *p) {
        PauseUpdate *u = p;

        if (!u)
                return;
        free(u->namespace);
        free(u->name);
        free(u->path);
        free(u->lock_name);
        free(u->key);
        free(u->value);
        free(u);
}

static void pause_update_finish(PauseUpdate *u, int result, const KubeResponse *response) {
        const char *message = response ? json_get_string(response->body, "message") : NULL;

        u->handler(result, message, u->userdata);
        pause_update_free(u);
}

static void pause_update_read(PauseUpdate *u);

static void on_pause_written(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        PauseUpdate *u = userdata;

        /* 409: another change came first (or the ConfigMap was created meanwhile); again from a
         * fresh read. 404 on a delete or update: it went meanwhile; the read tells. */
        if ((error == -ESTALE || error == -ENOENT) && ++u->attempts < PAUSE_UPDATE_ATTEMPTS_MAX) {
                pause_update_read(u);
                return;
        }
        pause_update_finish(u, error < 0 ? error : 1, response);
}

/* 1: the write is under way and owns u. */
static int pause_update_start(PauseUpdate *u, const char *method, const char *path, json_object *body) {
        int r = kube_client_call_full(u->client, method, path, NULL, body, 0, on_pause_written, u,
                                      pause_update_free, NULL);
        return r < 0 ? r : 1;
}

/* 0: nothing to change; 1: a write is under way (and owns u); -errno. */
static int pause_update_write(PauseUpdate *u, json_object *current) {
        _cleanup_json_ json_object *body = NULL;
        json_object *data = json_get(current, "data"), *new_data;
        bool had = data && json_object_object_get_ex(data, u->key, NULL);
        const char *old = had ? json_object_get_string(json_get_member(data, u->key)) : NULL;
        const char *rv = json_get_string(current, "metadata.resourceVersion");

        if (current && data && !json_object_is_type(data, json_type_object))
                return -EBADMSG;
        if (!u->value && !had)
                return 0;               /* nothing to resume */
        if (u->value && had && streq_ptr(old, u->value))
                return 0;
        if (!current) {
                /* The first pause: create it, labelled with the lock group for kubectl -l. */
                body = json_object_new_object();
                json_object *md = json_object_new_object(), *labels = json_object_new_object();

                new_data = json_object_new_object();
                if (!body || !md || !labels || !new_data ||
                    json_set(labels, PAUSE_LABEL, json_object_new_string(u->lock_name)) < 0 ||
                    json_set(md, "name", json_object_new_string(u->name)) < 0 ||
                    json_set(md, "namespace", json_object_new_string(u->namespace)) < 0 ||
                    json_set(md, "labels", labels) < 0 ||
                    json_set(new_data, u->key, json_object_new_string(u->value)) < 0 ||
                    json_set(body, "apiVersion", json_object_new_string("v1")) < 0 ||
                    json_set(body, "kind", json_object_new_string("ConfigMap")) < 0 ||
                    json_set(body, "metadata", md) < 0 || json_set(body, "data", new_data) < 0) {
                        json_object_put(md);
                        return -ENOMEM;
                }
                return pause_update_start(u, "POST", u->path, body);
        }
        if (!rv)
                return -EBADMSG;
        if (!u->value && json_object_object_length(data) == 1) {
                /* The last key: the ConfigMap goes, only as we saw it. */
                _cleanup_free_ char *p = strjoin(u->path, "/", u->name);
                json_object *pre = json_object_new_object();

                body = json_object_new_object();
                if (!p || !pre || !body ||
                    json_set(pre, "resourceVersion", json_object_new_string(rv)) < 0 ||
                    json_set(body, "kind", json_object_new_string("DeleteOptions")) < 0 ||
                    json_set(body, "apiVersion", json_object_new_string("v1")) < 0 ||
                    json_set(body, "preconditions", pre) < 0)
                        return -ENOMEM;
                return pause_update_start(u, "DELETE", p, body);
        }
        /* A PUT of what we read (resourceVersion and all) with the key changed: a change by
         * someone else in between is a 409, and we read again. */
        _cleanup_free_ char *p = strjoin(u->path, "/", u->name);
        if (!p)
                return -ENOMEM;
        body = json_object_get(current);
        if (!data) {
                data = json_object_new_object();
                if (json_set(body, "data", data) < 0)
                        return -ENOMEM;
        }
        if (u->value) {
                if (json_object_object_add(data, u->key, json_object_new_string(u->value)) < 0)
                        return -ENOMEM;
        } else
                json_object_object_del(data, u->key);
        return pause_update_start(u, "PUT", p, body);
}

static void on_pause_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        PauseUpdate *u = userdata;
        int r;

        if (error < 0 && error != -ENOENT) {
                pause_update_finish(u, error, response);
                return;
        }
        r = pause_update_write(u, error == -ENOENT ? NULL : response->body);
        if (r <= 0)
                pause_update_finish(u, r, NULL);
        /* else: the write owns u now */
}

static void pause_update_read(PauseUpdate *u) {
        _cleanup_free_ char *p = strjoin(u->path, "/", u->name);
        int r;

        if (!p) {
                pause_update_finish(u, -ENOMEM, NULL);
                return;
        }
        r = kube_client_call_full(u->client, "GET", p, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pause_read, u,
                                  pause_update_free, NULL);
        if (r < 0)
                pause_update_finish(u, r, NULL);
}

int pause_update(KubeClient *c, const char *namespace, const char *lock_name, const char *key,
                 const char *value, PauseUpdateHandler handler, void *userdata) {
        _cleanup_free_ char *ens = NULL;
        PauseUpdate *u;

        if (!c || !handler || isempty(namespace) || isempty(lock_name) || !configmap_key_is_valid(key))
                return -EINVAL;
        u = calloc(1, sizeof(PauseUpdate));
        if (!u)
                return -ENOMEM;
        u->client = c;
        u->handler = handler;
        u->userdata = userdata;
        ens = url_escape(namespace);
        u->namespace = strdup(namespace);
        u->lock_name = strdup(lock_name);
        u->name = pause_configmap_name(lock_name);
        u->key = strdup(key);
        u->path = ens ? strjoin("/api/v1/namespaces/", ens, "/configmaps") : NULL;
        if (!u->namespace || !u->lock_name || !u->name || !u->key || !u->path ||
            (value && !(u->value = strdup(value)))) {
                pause_update_free(u);
                return -ENOMEM;
        }
        pause_update_read(u);
        return 0;
}
