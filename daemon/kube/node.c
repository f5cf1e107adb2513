/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include "json-util.h"
#include "log.h"
#include "node.h"
#include "string-util.h"

/* A JSON patch of the taints that lost a race (409, or 422 from a failed resourceVersion test)
 * is redone from a fresh read this many times before the error is handed on. */
#define NODE_TAINT_ATTEMPTS_MAX 5U
#define NODE_TAINT_EFFECT "PreferNoSchedule"
/* The API server refuses longer Event notes in events.k8s.io/v1; stay within it for core/v1 too. */
#define NODE_EVENT_MESSAGE_MAX 1024U
#define NODE_EVENT_COMPONENT "nodereboot"

/* What one request needs when its reply arrives; freed after the user's handler ran. */
typedef struct NodeCall {
        NodeHandler node_handler;
        NodeDoneHandler done_handler;
        void *userdata;

        /* node_set_taint() */
        char *name;
        char *key;
        bool present;
        unsigned attempts;
} NodeCall;

static NodeCall *node_call_free(NodeCall *nc) {
        if (!nc)
                return NULL;
        free(nc->name);
        free(nc->key);
        return mfree(nc);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(NodeCall *, node_call_free);

static void node_call_destroy(void *userdata) {
        node_call_free(userdata);
}

static NodeCall *node_call_new(NodeHandler node_handler, NodeDoneHandler done_handler, void *userdata) {
        NodeCall *nc = calloc(1, sizeof(NodeCall));

        if (!nc)
                return NULL;
        nc->node_handler = node_handler;
        nc->done_handler = done_handler;
        nc->userdata = userdata;
        return nc;
}

static bool node_name_is_valid(const char *name) {
        /* A DNS subdomain; we only need it to be one path segment. */
        return !isempty(name) && strlen(name) <= 253 && !strchr(name, '/');
}

static char *node_path(const char *name) {
        _cleanup_free_ char *e = url_escape(name);

        if (!e)
                return NULL;
        return strjoin("/api/v1/nodes/", e);
}

/* Hands the result to the user and frees the context. */
const char *node_refusal(const KubeResponse *response) {
        if (!response || (response->status != 403 && response->status != 422))
                return NULL;
        return json_get_string(response->body, "message") ?: "refused";
}

static void node_call_finish(KubeClient *c, NodeCall *nc, int error, const KubeResponse *response) {
        if (nc->done_handler)
                nc->done_handler(c, error, response, nc->userdata);
        node_call_free(nc);
}

static void on_node_done(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        node_call_finish(c, userdata, error, response);
}

static int node_call_start(KubeClient *c, const char *method, const char *path, const char *content_type,
                           json_object *body, KubeCallFlags flags, KubeCallHandler handler, NodeCall *nc) {
        return kube_client_call_full(c, method, path, content_type, body, flags, handler, nc,
                                     node_call_destroy, NULL);
}

/* -------------------------------------------------------------------------------------------- */

static int node_check(json_object *node) {
        if (!node || !json_object_is_type(node, json_type_object) ||
            !streq_ptr(json_get_string(node, "kind"), "Node") ||
            !json_get_string(node, "metadata.name"))
                return -EBADMSG;
        return 0;
}

static void on_node_get(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        _cleanup_(node_call_freep) NodeCall *nc = userdata;
        json_object *node = NULL;

        if (error >= 0) {
                error = node_check(response->body);
                if (error >= 0)
                        node = response->body;
        }
        nc->node_handler(c, error, node, nc->userdata);
}

int node_get(KubeClient *c, const char *name, NodeHandler handler, void *userdata) {
        _cleanup_(node_call_freep) NodeCall *nc = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c || !node_name_is_valid(name) || !handler)
                return -EINVAL;

        nc = node_call_new(handler, NULL, userdata);
        path = node_path(name);
        if (!nc || !path)
                return -ENOMEM;

        r = node_call_start(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_node_get, nc);
        if (r < 0)
                return r;
        TAKE_PTR(nc);
        return 0;
}

static json_object *node_condition(json_object *node, const char *type) {
        json_object *conditions = json_get(node, "status.conditions");
        size_t n = json_array_length(conditions);

        for (size_t i = 0; i < n; i++) {
                json_object *cond = json_object_array_get_idx(conditions, i);

                if (streq_ptr(json_get_string(cond, "type"), type))
                        return cond;
        }
        return NULL;
}

bool node_is_ready(json_object *node) {
        return streq_ptr(json_get_string(node_condition(node, "Ready"), "status"), "True");
}

/* The kubelet reports /proc/sys/kernel/random/boot_id as it is, with dashes. */
static bool boot_ids_equal(const char *reported, const char *ours) {
        size_t n = 0;

        if (!reported || !ours)
                return false;
        for (const char *p = reported; *p; p++) {
                if (*p == '-')
                        continue;
                if (!ours[n] || tolower((unsigned char) *p) != ours[n])
                        return false;
                n++;
        }
        return n > 0 && !ours[n];
}

bool node_kubelet_is_back(json_object *node, const char *boot_id, usec_t boot_time, const char **ret_reason) {
        const char *reason = NULL;
        json_object *ready;
        usec_t heartbeat;

        ready = node_condition(node, "Ready");
        if (isempty(json_get_string(node, "status.nodeInfo.bootID")))
                reason = "waiting for the kubelet of this boot (the Node reports no boot ID)";
        else if (!boot_ids_equal(json_get_string(node, "status.nodeInfo.bootID"), boot_id))
                reason = "waiting for the kubelet of this boot (the Node still reports another boot)";
        else if (!ready || !streq_ptr(json_get_string(ready, "status"), "True"))
                reason = "waiting for the kubelet of this boot to report the node Ready";
        else if (parse_rfc3339(json_get_string(ready, "lastHeartbeatTime"), &heartbeat) < 0 ||
                 /* lastHeartbeatTime has whole seconds */
                 heartbeat + USEC_PER_SEC <= boot_time)
                reason = "waiting for the kubelet of this boot (the Ready heartbeat predates the boot)";

        if (ret_reason)
                *ret_reason = reason;
        return !reason;
}

bool node_is_unschedulable(json_object *node) {
        return json_get_bool(node, "spec.unschedulable", false);
}

/* -------------------------------------------------------------------------------------------- */

/* Builds {"metadata":{<field>:{k:v|null,...}}} from the pair list. */
static int metadata_patch(const char *field, char **pairs, json_object **ret) {
        _cleanup_json_ json_object *patch = NULL;
        json_object *metadata, *map;

        patch = json_object_new_object();
        metadata = json_object_new_object();
        map = json_object_new_object();
        if (!patch || !metadata || !map) {
                json_object_put(metadata);
                json_object_put(map);
                return -ENOMEM;
        }
        if (json_object_object_add(patch, "metadata", metadata) < 0) {
                json_object_put(metadata);
                json_object_put(map);
                return -ENOMEM;
        }
        if (json_object_object_add(metadata, field, map) < 0) {
                json_object_put(map);
                return -ENOMEM;
        }

        for (char **p = pairs; p && p[0]; p += 2) {
                json_object *v = NULL;

                if (isempty(p[0]))
                        return -EINVAL;
                if (p[1]) {
                        v = json_object_new_string(p[1]);
                        if (!v)
                                return -ENOMEM;
                }
                /* a NULL member serializes as JSON null, which a merge patch reads as "remove" */
                if (json_object_object_add(map, p[0], v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }

        *ret = TAKE_PTR(patch);
        return 0;
}

/* {"metadata":{"annotations":{pairs}},"spec":{"unschedulable":true|null}}; no metadata without pairs. */
static int schedulability_patch(bool unschedulable, char **pairs, json_object **ret) {
        _cleanup_json_ json_object *patch = NULL, *spec = NULL;
        int r;

        if (!pairs[0]) {
                patch = json_object_new_object();
                if (!patch)
                        return -ENOMEM;
        } else {
                r = metadata_patch("annotations", pairs, &patch);
                if (r < 0)
                        return r;
        }

        spec = json_object_new_object();
        if (!spec)
                return -ENOMEM;
        /* uncordon: null removes the field, which reads as false, as "kubectl uncordon" leaves it */
        if (unschedulable) {
                json_object *v = json_object_new_boolean(true);

                if (!v)
                        return -ENOMEM;
                if (json_object_object_add(spec, "unschedulable", v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        } else if (json_object_object_add(spec, "unschedulable", NULL) < 0)
                return -ENOMEM;
        if (json_object_object_add(patch, "spec", spec) < 0)
                return -ENOMEM;
        TAKE_PTR(spec);

        *ret = TAKE_PTR(patch);
        return 0;
}

int node_unschedulable_patch(bool unschedulable, bool mark, json_object **ret) {
        char *pairs[] = { (char *) NODE_ANNOTATION_CORDONED, unschedulable ? (char *) "true" : NULL, NULL };
        char *none[] = { NULL };

        return schedulability_patch(unschedulable, unschedulable && !mark ? none : pairs, ret);
}

int node_cordon_patch(bool mark, usec_t now, json_object **ret) {
        char since[FORMAT_RFC3339_MAX];
        char *pairs[] = {
                (char *) NODE_ANNOTATION_IN_PROGRESS, format_rfc3339(since, sizeof since, now, false),
                mark ? (char *) NODE_ANNOTATION_CORDONED : NULL, (char *) "true",
                NULL,
        };

        return schedulability_patch(true, pairs, ret);
}

static int node_merge_patch(KubeClient *c, const char *name, json_object *patch, NodeDoneHandler handler,
                            void *userdata) {
        _cleanup_(node_call_freep) NodeCall *nc = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        nc = node_call_new(NULL, handler, userdata);
        path = node_path(name);
        if (!nc || !path)
                return -ENOMEM;

        /* A merge patch of absolute values gives the same result however often it is applied. */
        r = node_call_start(c, "PATCH", path, "application/merge-patch+json", patch, KUBE_CALL_IDEMPOTENT,
                            on_node_done, nc);
        if (r < 0)
                return r;
        TAKE_PTR(nc);
        return 0;
}

int node_patch_merge(KubeClient *c, const char *name, json_object *patch, NodeDoneHandler handler, void *userdata) {
        if (!c || !node_name_is_valid(name) || !patch)
                return -EINVAL;
        return node_merge_patch(c, name, patch, handler, userdata);
}

int node_set_unschedulable(KubeClient *c, const char *name, bool unschedulable, NodeDoneHandler handler,
                           void *userdata) {
        _cleanup_json_ json_object *patch = NULL;
        int r;

        if (!c || !node_name_is_valid(name))
                return -EINVAL;

        r = node_unschedulable_patch(unschedulable, true, &patch);
        if (r < 0)
                return r;
        return node_merge_patch(c, name, patch, handler, userdata);
}

static int node_patch_metadata(KubeClient *c, const char *name, const char *field, char **pairs,
                               NodeDoneHandler handler, void *userdata) {
        _cleanup_json_ json_object *patch = NULL;
        int r;

        if (!c || !node_name_is_valid(name))
                return -EINVAL;

        r = metadata_patch(field, pairs, &patch);
        if (r < 0)
                return r;
        return node_merge_patch(c, name, patch, handler, userdata);
}

int node_patch_annotations(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler,
                           void *userdata) {
        return node_patch_metadata(c, name, "annotations", pairs, handler, userdata);
}

int node_patch_labels(KubeClient *c, const char *name, char **pairs, NodeDoneHandler handler,
                      void *userdata) {
        return node_patch_metadata(c, name, "labels", pairs, handler, userdata);
}

int node_patch_add_metadata(json_object *patch, const char *field, char **pairs) {
        _cleanup_json_ json_object *extra = NULL;
        json_object *metadata, *map, *have;
        int r;

        if (!pairs || !pairs[0])
                return 0;
        r = metadata_patch(field, pairs, &extra);
        if (r < 0)
                return r;
        map = json_get(extra, "metadata");
        map = json_get_member(map, field);
        metadata = json_get(patch, "metadata");
        if (!metadata) {
                metadata = json_object_new_object();
                if (!metadata || json_object_object_add(patch, "metadata", metadata) < 0) {
                        json_object_put(metadata);
                        return -ENOMEM;
                }
        }
        have = json_get_member(metadata, field);
        if (!have) {
                if (json_object_object_add(metadata, field, json_object_get(map)) < 0) {
                        json_object_put(map);
                        return -ENOMEM;
                }
                return 0;
        }
        json_object_object_foreach(map, key, value)
                if (json_object_object_add(have, key, json_object_get(value)) < 0) {
                        json_object_put(value);
                        return -ENOMEM;
                }
        return 0;
}

int node_patch_annotations_and_labels(KubeClient *c, const char *name, char **annotations, char **labels,
                                      NodeDoneHandler handler, void *userdata) {
        _cleanup_json_ json_object *patch = NULL, *other = NULL;
        json_object *map;
        int r;

        if (!c || !node_name_is_valid(name))
                return -EINVAL;
        r = metadata_patch("annotations", annotations, &patch);
        if (r >= 0)
                r = metadata_patch("labels", labels, &other);
        if (r < 0)
                return r;
        map = json_get(other, "metadata.labels");
        if (json_object_object_add(json_get(patch, "metadata"), "labels", json_object_get(map)) < 0) {
                json_object_put(map);
                return -ENOMEM;
        }
        return node_merge_patch(c, name, patch, handler, userdata);
}

/* -------------------------------------------------------------------------------------------- */

static bool taint_is_ours(json_object *taint, const char *key) {
        return streq_ptr(json_get_string(taint, "key"), key) &&
                streq_ptr(json_get_string(taint, "effect"), NODE_TAINT_EFFECT);
}

int node_taints_update(json_object *node, const char *key, bool present, json_object **ret_taints) {
        _cleanup_json_ json_object *taints = NULL;
        json_object *old = json_get(node, "spec.taints");
        size_t n = json_array_length(old);
        bool found = false;

        if (isempty(key))
                return -EINVAL;

        for (size_t i = 0; i < n; i++)
                if (taint_is_ours(json_object_array_get_idx(old, i), key))
                        found = true;
        if (found == present) {
                *ret_taints = NULL;
                return 0;
        }

        taints = json_object_new_array();
        if (!taints)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *t = json_object_array_get_idx(old, i);

                if (taint_is_ours(t, key))
                        continue;
                if (json_object_array_add(taints, json_object_get(t)) < 0) {
                        json_object_put(t);
                        return -ENOMEM;
                }
        }
        if (present) {
                json_object *t = json_object_new_object(), *k = json_object_new_string(key),
                        *e = json_object_new_string(NODE_TAINT_EFFECT);
                bool ok = t && k && e;

                if (ok && json_object_object_add(t, "key", k) >= 0)
                        k = NULL;
                else
                        ok = false;
                if (ok && json_object_object_add(t, "effect", e) >= 0)
                        e = NULL;
                else
                        ok = false;
                if (ok && json_object_array_add(taints, t) >= 0)
                        t = NULL;
                else
                        ok = false;
                json_object_put(t);
                json_object_put(k);
                json_object_put(e);
                if (!ok)
                        return -ENOMEM;
        }

        *ret_taints = TAKE_PTR(taints);
        return 1;
}

static int json_patch_op(json_object *patch, const char *op, const char *path, json_object *value) {
        json_object *o = json_object_new_object();
        json_object *jop = json_object_new_string(op), *jpath = json_object_new_string(path);

        if (!o || !jop || !jpath)
                goto fail;
        if (json_object_object_add(o, "op", jop) < 0)
                goto fail;
        jop = NULL;
        if (json_object_object_add(o, "path", jpath) < 0)
                goto fail;
        jpath = NULL;
        if (json_object_object_add(o, "value", json_object_get(value)) < 0) {
                json_object_put(value);
                goto fail;
        }
        if (json_object_array_add(patch, o) < 0)
                goto fail;
        return 0;

fail:
        json_object_put(o);
        json_object_put(jop);
        json_object_put(jpath);
        return -ENOMEM;
}

/* test the resourceVersion just read, then write the whole taint list: a concurrent writer makes
 * the test fail (422) rather than lose its change. */
static int taint_patch(json_object *node, json_object *taints, json_object **ret) {
        _cleanup_json_ json_object *patch = NULL, *rv = NULL, *spec = NULL;
        const char *resource_version = json_get_string(node, "metadata.resourceVersion");
        int r;

        if (!resource_version)
                return -EBADMSG;

        patch = json_object_new_array();
        rv = json_object_new_string(resource_version);
        if (!patch || !rv)
                return -ENOMEM;
        r = json_patch_op(patch, "test", "/metadata/resourceVersion", rv);
        if (r < 0)
                return r;

        if (json_get(node, "spec.taints"))
                r = json_patch_op(patch, "replace", "/spec/taints", taints);
        else if (json_get(node, "spec"))
                r = json_patch_op(patch, "add", "/spec/taints", taints);
        else {
                spec = json_object_new_object();
                if (!spec)
                        return -ENOMEM;
                if (json_object_object_add(spec, "taints", json_object_get(taints)) < 0) {
                        json_object_put(taints);
                        return -ENOMEM;
                }
                r = json_patch_op(patch, "add", "/spec", spec);
        }
        if (r < 0)
                return r;

        *ret = TAKE_PTR(patch);
        return 0;
}

static void on_taint_patched(KubeClient *c, int error, const KubeResponse *response, void *userdata);

/* Returns 1 when the write was started, 0 when nothing needs to change, < 0 on error. */
static int taint_write(KubeClient *c, NodeCall *nc, json_object *node) {
        _cleanup_json_ json_object *taints = NULL, *patch = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = node_check(node);
        if (r < 0)
                return r;
        r = node_taints_update(node, nc->key, nc->present, &taints);
        if (r <= 0)
                return r;
        r = taint_patch(node, taints, &patch);
        if (r < 0)
                return r;
        path = node_path(nc->name);
        if (!path)
                return -ENOMEM;

        nc->attempts++;
        /* Carries a resourceVersion precondition, so it is safe to repeat. */
        r = node_call_start(c, "PATCH", path, "application/json-patch+json", patch, KUBE_CALL_IDEMPOTENT,
                            on_taint_patched, nc);
        if (r < 0)
                return r;
        return 1;
}

static void on_taint_read(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        NodeCall *nc = userdata;
        int r = error;

        if (r >= 0)
                r = taint_write(c, nc, response->body);
        if (r <= 0) /* an error, or nothing to change: no write */
                node_call_finish(c, nc, r, r == error ? response : NULL);
}

static int taint_read(KubeClient *c, NodeCall *nc) {
        _cleanup_free_ char *path = node_path(nc->name);

        if (!path)
                return -ENOMEM;
        return node_call_start(c, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_taint_read, nc);
}

static void on_taint_patched(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        NodeCall *nc = userdata;
        const char *message = json_get_string(response->body, "message");
        int r;

        /* 422 is also how an admission policy's evaluation error or reasonless denial answers:
         * that is a refusal, not a lost race. */
        if (error < 0 && (response->status == 409 || response->status == 422) &&
            !(message && strstr(message, "ValidatingAdmissionPolicy")) &&
            nc->attempts < NODE_TAINT_ATTEMPTS_MAX) {
                log_debug_errno(error, "Taint %s on node %s lost a race (HTTP %ld), reading the node again.",
                                nc->key, nc->name, response->status);
                r = taint_read(c, nc);
                if (r < 0)
                        node_call_finish(c, nc, r, NULL);
                return;
        }
        node_call_finish(c, nc, error, response);
}

int node_set_taint(KubeClient *c, const char *name, const char *key, bool present, NodeDoneHandler handler,
                   void *userdata) {
        _cleanup_(node_call_freep) NodeCall *nc = NULL;
        int r;

        if (!c || !node_name_is_valid(name) || isempty(key))
                return -EINVAL;

        nc = node_call_new(NULL, handler, userdata);
        if (!nc)
                return -ENOMEM;
        nc->name = strdup(name);
        nc->key = strdup(key);
        if (!nc->name || !nc->key)
                return -ENOMEM;
        nc->present = present;

        r = taint_read(c, nc);
        if (r < 0)
                return r;
        TAKE_PTR(nc);
        return 0;
}

/* -------------------------------------------------------------------------------------------- */

static void on_event_posted(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        /* AlreadyExists means an earlier attempt of this very call arrived and only its reply
         * was lost, or (with a key) another node reported the same thing first. */
        if (error == -ESTALE)
                error = 0;
        node_call_finish(c, userdata, error, response);
}

static int json_add_string(json_object *o, const char *key, const char *value) {
        return json_set(o, key, json_object_new_string(value));
}

static int json_add_object(json_object *o, const char *key, json_object **ret) {
        json_object *v = json_object_new_object();
        int r = json_set(o, key, v);

        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

/* Cuts at a UTF-8 character boundary. */
static char *message_truncate(const char *message) {
        size_t n = strlen(message);

        if (n <= NODE_EVENT_MESSAGE_MAX)
                return strdup(message);
        n = NODE_EVENT_MESSAGE_MAX;
        while (n > 0 && ((unsigned char) message[n] & 0xC0) == 0x80)
                n--;
        return strndup(message, n);
}

/* FNV-1a: a stable name for an Event many nodes may post about the same thing. */
static uint64_t event_key_hash(const char *key) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (const unsigned char *p = (const unsigned char *) key; *p; p++)
                h = (h ^ *p) * UINT64_C(0x100000001b3);
        return h;
}

static int event_body(const char *name, const char *key, const char *type, const char *reason,
                      const char *message, usec_t now, json_object **ret) {
        _cleanup_json_ json_object *ev = NULL;
        _cleanup_free_ char *event_name = NULL, *text = NULL;
        char timestamp[FORMAT_RFC3339_MAX];
        json_object *metadata, *involved, *source, *count;
        uint8_t random[8];
        char hex[sizeof random * 2 + 1];
        int r;

        if (key) {
                uint64_t h = event_key_hash(key);

                for (size_t i = 0; i < sizeof random; i++)
                        random[i] = (uint8_t) (h >> (i * 8));
        } else if (getrandom(random, sizeof random, GRND_NONBLOCK) != (ssize_t) sizeof random)
                /* no entropy yet this early in boot: uniqueness is all we need */
                for (size_t i = 0; i < sizeof random; i++)
                        random[i] = (uint8_t) ((now >> (i * 8)) ^ (uint64_t) getpid() ^ (i * 0x9d));
        for (size_t i = 0; i < sizeof random; i++)
                sprintf(hex + i * 2, "%02x", random[i]);

        event_name = strjoin(name, ".", hex);
        text = message_truncate(message);
        if (!event_name || !text)
                return -ENOMEM;
        if (!format_rfc3339(timestamp, sizeof timestamp, now, false))
                return -EINVAL;

        ev = json_object_new_object();
        if (!ev)
                return -ENOMEM;
        if ((r = json_add_string(ev, "apiVersion", "v1")) < 0 ||
            (r = json_add_string(ev, "kind", "Event")) < 0 ||
            (r = json_add_object(ev, "metadata", &metadata)) < 0 ||
            (r = json_add_string(metadata, "name", event_name)) < 0 ||
            (r = json_add_string(metadata, "namespace", "default")) < 0 ||
            (r = json_add_object(ev, "involvedObject", &involved)) < 0 ||
            (r = json_add_string(involved, "apiVersion", "v1")) < 0 ||
            (r = json_add_string(involved, "kind", "Node")) < 0 ||
            (r = json_add_string(involved, "name", name)) < 0 ||
            (r = json_add_string(involved, "uid", name)) < 0 ||   /* kubectl describe selects on uid = name */
            (r = json_add_string(ev, "reason", reason)) < 0 ||
            (r = json_add_string(ev, "message", text)) < 0 ||
            (r = json_add_string(ev, "type", type)) < 0 ||
            (r = json_add_object(ev, "source", &source)) < 0 ||
            (r = json_add_string(source, "component", NODE_EVENT_COMPONENT)) < 0 ||
            (r = json_add_string(source, "host", name)) < 0 ||
            (r = json_add_string(ev, "firstTimestamp", timestamp)) < 0 ||
            (r = json_add_string(ev, "lastTimestamp", timestamp)) < 0)
                return r;

        count = json_object_new_int(1);
        if (!count)
                return -ENOMEM;
        if (json_object_object_add(ev, "count", count) < 0) {
                json_object_put(count);
                return -ENOMEM;
        }

        *ret = TAKE_PTR(ev);
        return 0;
}

int node_post_event(KubeClient *c, const char *name, const char *type, const char *reason,
                    const char *message, NodeDoneHandler handler, void *userdata) {
        return node_post_event_once(c, name, NULL, type, reason, message, handler, userdata);
}

int node_post_event_once(KubeClient *c, const char *name, const char *key, const char *type, const char *reason,
                         const char *message, NodeDoneHandler handler, void *userdata) {
        _cleanup_(node_call_freep) NodeCall *nc = NULL;
        _cleanup_json_ json_object *body = NULL;
        int r;

        if (!c || !node_name_is_valid(name) || isempty(reason) || !message ||
            !(streq_ptr(type, "Normal") || streq_ptr(type, "Warning")))
                return -EINVAL;

        r = event_body(name, key, type, reason, message, kube_client_server_now(c), &body);
        if (r < 0)
                return r;

        nc = node_call_new(NULL, handler, userdata);
        if (!nc)
                return -ENOMEM;

        /* Safe to repeat: the name is fixed, so a repeat finds the first one (409, see above). */
        r = node_call_start(c, "POST", "/api/v1/namespaces/default/events", NULL, body, KUBE_CALL_IDEMPOTENT,
                            on_event_posted, nc);
        if (r < 0)
                return r;
        TAKE_PTR(nc);
        return 0;
}

const char *node_kernel_version(json_object *node) {
        const char *k = json_get_string(node, "status.nodeInfo.kernelVersion");

        if (isempty(k) || strlen(k) > 128)
                return NULL;
        for (const char *p = k; *p; p++)
                if (*p < ' ' || *p > '~')
                        return NULL;
        return k;
}
