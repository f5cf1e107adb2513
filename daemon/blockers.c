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

static void blockers_done(BlockersCheck *b, int error, const char *blocker) {
        BlockersHandler handler = b->handler;
        void *userdata = b->userdata;

        /* The handler may free the check; nothing of it is used afterwards. */
        handler(error, blocker, userdata);
}

static void on_pods_listed(KubeClient *c, int error, const KubeResponse *response, void *userdata) {
        BlockersCheck *b = userdata;
        _cleanup_free_ char *pod = NULL, *text = NULL;
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
        r = blockers_next(b);
        if (r <= 0)
                blockers_done(b, r, NULL);
}

/* Starts the next LIST; 0 when every selector has been checked. */
static int blockers_next(BlockersCheck *b) {
        _cleanup_free_ char *node = NULL, *sel = NULL, *path = NULL;
        int r;

        if (!b->selectors || !b->selectors[b->next])
                return 0;
        node = url_escape(b->node);
        sel = url_escape(b->selectors[b->next]);
        if (!node || !sel)
                return -ENOMEM;
        path = strdup_printf("/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&labelSelector=%s", node, sel);
        if (!path)
                return -ENOMEM;
        r = kube_client_call(b->client, "GET", path, NULL, NULL, KUBE_CALL_IDEMPOTENT, on_pods_listed, b,
                             &b->call);
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
