/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "blockers.h"
#include "json-util.h"
#include "string-util.h"

struct BlockersCheck {
        KubeClient *client;
        char *node;
        char **selectors;
        size_t next;
        KubeCall *call;
        BlockersHandler handler;
        void *userdata;
};

BlockersCheck *blockers_check_free(BlockersCheck *b) {
        if (!b)
                return NULL;
        kube_call_cancel(b->call);
        free(b->node);
        strv_free(b->selectors);
        return mfree(b);
}

char *blockers_first_blocking_pod(json_object *pod_list) {
        json_object *items = json_get(pod_list, "items");

        for (size_t i = 0; i < json_array_length(items); i++) {
                json_object *pod = json_object_array_get_idx(items, i);
                const char *phase = json_get_string(pod, "status.phase");

                if (phase && (streq(phase, "Succeeded") || streq(phase, "Failed") || streq(phase, "Unknown")))
                        continue;
                if (json_get(pod, "metadata.deletionTimestamp"))
                        continue;
                return strdup_printf("%s/%s", strna(json_get_string(pod, "metadata.namespace")),
                                     strna(json_get_string(pod, "metadata.name")));
        }
        return NULL;
}

static int blockers_next(BlockersCheck *b);
static int blockers_list(BlockersCheck *b, const char *selector, const char *continue_token);

static void blockers_done(BlockersCheck *b, int error, const char *blocker) {
        BlockersHandler handler = b->handler;
        void *userdata = b->userdata;

        /* The handler may free the check; nothing of it is used afterwards. */
        handler(error, blocker, userdata);
}

static void on_pods_listed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        BlockersCheck *b = userdata;
        _cleanup_free_ char *pod = NULL, *text = NULL;
        const char *next;
        int r;

        b->call = NULL;
        if (error < 0) {
                blockers_done(b, error, NULL);
                return;
        }
        pod = blockers_first_blocking_pod(response->body);
        if (pod) {
                text = strdup_printf("pod %s matches blocking selector %s", pod, b->selectors[b->next - 1]);
                blockers_done(b, text ? 0 : -ENOMEM, text);
                return;
        }
        next = json_get_string(response->body, "metadata.continue");
        if (!isempty(next)) {
                /* this selector's next page */
                r = blockers_list(b, b->selectors[b->next - 1], next);
                if (r < 0)
                        blockers_done(b, r, NULL);
                return;
        }
        r = blockers_next(b);
        if (r <= 0)
                blockers_done(b, r, NULL);
}

/* One page of the pods on this node matching selector. The first comes from the API server's
 * cache (resourceVersion=0: a point check, and one a large cluster serves without reading every
 * pod from etcd); pages after it follow the server's continue token. */
static int blockers_list(BlockersCheck *b, const char *selector, const char *continue_token) {
        _cleanup_free_ char *node = NULL, *sel = NULL, *token = NULL, *path = NULL;
        unsigned limit = kube_client_get_list_page_size(b->client);

        node = url_escape(b->node);
        sel = url_escape(selector);
        token = continue_token ? url_escape(continue_token) : NULL;
        if (!node || !sel || (continue_token && !token))
                return -ENOMEM;
        if (token)
                path = strdup_printf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&labelSelector=%s&limit=%u"
                                     "&continue=%s", node, sel, limit, token);
        else
                path = strdup_printf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&labelSelector=%s&limit=%u"
                                     "&resourceVersion=0", node, sel, limit);
        if (!path)
                return -ENOMEM;
        return kube_client_call(b->client, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pods_listed, b,
                                &b->call);
}

/* Starts the next selector's LIST; 0 when every selector has been checked. */
static int blockers_next(BlockersCheck *b) {
        int r;

        if (!b->selectors || !b->selectors[b->next])
                return 0;
        r = blockers_list(b, b->selectors[b->next], NULL);
        if (r < 0)
                return r;
        b->next++;
        return 1;
}

int blockers_check(BlockersCheck **ret, KubeClient *c, const char *node, char **selectors,
                   BlockersHandler handler, void *userdata) {
        _cleanup_(blockers_check_freep) BlockersCheck *b = NULL;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        *b = (BlockersCheck) { .client = c, .handler = handler, .userdata = userdata };
        b->node = strdup(node);
        if (!b->node)
                return -ENOMEM;
        for (char **s = selectors; s && *s; s++)
                if (strv_extend(&b->selectors, *s) < 0)
                        return -ENOMEM;

        r = blockers_next(b);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENODATA;    /* nothing to check: callers skip the check */
        *ret = TAKE_PTR(b);
        return 0;
}
