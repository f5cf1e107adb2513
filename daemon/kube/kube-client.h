/* SPDX-License-Identifier: Apache-2.0 */
/* An asynchronous Kubernetes API client: a libcurl multi handle driven by sd-event (socket and
 * timer callbacks), JSON bodies through json-c, TLS verified unless the kubeconfig says otherwise,
 * bearer tokens (token files re-read when they change or on 401) and client certificates.
 *
 * Errors are negative errno values, mapped once here:
 *   2xx -> 0, 404 -> -ENOENT, 409 -> -ESTALE, 410 -> -EKEYEXPIRED (watch resourceVersion too old),
 *   401/403 -> -EACCES, 429 -> -EBUSY, 422/400 -> -EINVAL, other 4xx -> -EPROTO,
 *   5xx -> -EIO, timeouts -> -ETIMEDOUT, connection failures -> -ECONNREFUSED,
 *   TLS verification failures -> -EPERM, bodies over the cap -> -EFBIG,
 *   malformed JSON -> -EBADMSG. */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "kubeconfig.h"
#include "time-util.h"

typedef struct KubeClient KubeClient;
typedef struct KubeCall KubeCall;
typedef struct KubeWatch KubeWatch;

typedef struct KubeResponse {
        long status;                    /* HTTP status, 0 when no response arrived */
        json_object *body;              /* parsed body (also for errors: a Status object), or NULL */
        usec_t retry_after_usec;        /* from Retry-After, 0 when absent */
} KubeResponse;

typedef enum KubeCallFlags {
        /* Safe to repeat: retried with capped exponential back-off and jitter on connection
         * errors, timeouts, 5xx and 429 (honouring Retry-After), up to the client's retry limit.
         * GETs and writes carrying a resourceVersion precondition are idempotent. */
        KUBE_CALL_IDEMPOTENT = 1 << 0,
        /* Do not retry on 429: the caller wants to see it (evictions blocked by a PDB). */
        KUBE_CALL_NO_RETRY_ON_429 = 1 << 1,
} KubeCallFlags;

/* Called exactly once per call unless the call is cancelled. response is never NULL. The handler
 * may free or cancel other calls and start new ones, and free the client. response->body is
 * borrowed (json_object_get() it to keep it); the call is freed when the handler returns. Handlers
 * never run from inside kube_client_call() or any libcurl callback, only from the event loop. */
typedef void (*KubeCallHandler)(KubeClient *c, int error, const KubeResponse *response, void *userdata);

/* The kubeconfig is copied; it may be freed afterwards. event NULL means sd_event_default(). */
int kube_client_new(KubeClient **ret, sd_event *event, const Kubeconfig *kubeconfig);
/* Safe from inside any handler. Calls started without ret_call are cancelled and freed; calls and
 * watches whose owners hold them are stopped (no handler runs again) and stay valid until their
 * owners pass them to kube_call_cancel() / kube_watch_free(), in either order. */
KubeClient *kube_client_free(KubeClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeClient *, kube_client_free);

/* Limits, for tests; defaults: 10 s connect, 30 s per request, 5 retries, 16 MiB bodies,
 * back-off from 200 ms doubling to 30 s. */
void kube_client_set_timeouts(KubeClient *c, usec_t connect_usec, usec_t request_usec);
void kube_client_set_retry(KubeClient *c, unsigned max_retries, usec_t initial_usec, usec_t max_usec);
/* Cap on a response body (default 16 MiB); larger bodies fail with -EFBIG. */
void kube_client_set_max_body_size(KubeClient *c, size_t max_size);
/* timeoutSeconds of watch requests; 0 (the default) picks 290..310 s at random per request. */
void kube_client_set_watch_timeout(KubeClient *c, unsigned seconds);
/* The User-Agent of every later request: "<program>/<version> (node <node_name>)", or
 * "<program>/<version>" when node_name is NULL (default: "noderebootd/<version>"). All nodes share
 * one ServiceAccount, so this is what tells them apart in the API server's audit log. -EINVAL for
 * empty parts, or parts with spaces, control characters, '/', '(' or ')'. */
int kube_client_set_user_agent(KubeClient *c, const char *program, const char *node_name);
/* The proxy for every later connection, as returned by proxy_for_server(); NULL or "" connects
 * directly (the default). libcurl never picks a proxy from the environment on its own, and does not
 * apply NO_PROXY itself: the caller matched it against the server's real host (libcurl would see the
 * tls-server-name). Credentials in the URL are used for the proxy and wiped on free. */
int kube_client_set_proxy(KubeClient *c, const char *proxy);

/* Starts METHOD on path ("/api/v1/nodes/n1?x=y"), relative to the server URL. body may be NULL;
 * content_type defaults to application/json (use application/merge-patch+json,
 * application/strategic-merge-patch+json or application/json-patch+json for PATCH).
 * ret_call may be NULL when the caller never cancels. */
int kube_client_call(KubeClient *c, const char *method, const char *path, const char *content_type,
                     json_object *body, KubeCallFlags flags, KubeCallHandler handler, void *userdata,
                     KubeCall **ret_call);
/* The same, for a call nobody holds (ret_call NULL) whose userdata the handler owns: when the
 * client is freed before the answer came, userdata_free(userdata) runs instead of the handler. */
int kube_client_call_full(KubeClient *c, const char *method, const char *path, const char *content_type,
                          json_object *body, KubeCallFlags flags, KubeCallHandler handler, void *userdata,
                          void (*userdata_free)(void *), KubeCall **ret_call);
/* Cancels a call in flight; its handler is not called. Accepts NULL; returns NULL. */
KubeCall *kube_call_cancel(KubeCall *call);

/* Our best estimate of the API server's clock (CLOCK_REALTIME usec): the local clock corrected by
 * the offset seen in the last response's Date header. Lease expiry is judged by this. */
usec_t kube_client_server_now(KubeClient *c);

/* Events of a watch. After every (re)list the handler gets each listed item as ADDED, then one
 * KUBE_WATCH_SYNCED with object NULL; consumers rebuild their view from ADDED after a SYNCED is
 * expected. KUBE_WATCH_ERROR (object NULL, error set) reports a failed list or stream; the watch
 * retries by itself with back-off. */
typedef enum KubeWatchEvent {
        KUBE_WATCH_ADDED,
        KUBE_WATCH_MODIFIED,
        KUBE_WATCH_DELETED,
        KUBE_WATCH_SYNCED,
        KUBE_WATCH_ERROR,
        _KUBE_WATCH_EVENT_MAX,
        _KUBE_WATCH_EVENT_INVALID = -EINVAL,
} KubeWatchEvent;

/* object is borrowed for the duration of the call. The handler may free the watch (and the client). */
typedef void (*KubeWatchHandler)(KubeWatch *w, KubeWatchEvent event, json_object *object, int error,
                                 void *userdata);

/* Lists collection_path (may carry labelSelector/fieldSelector in its query) in pages
 * (limit=<page size>, then continue=<token> until the server gives none; the items of every page
 * are ADDED, then SYNCED once), then streams ?watch=1&resourceVersion=<last seen>&
 * allowWatchBookmarks=true; when the stream ends it resumes from the last resourceVersion; on 410
 * Gone (also of a page's continue token) it lists again from the first page. Runs until freed. */
int kube_client_watch(KubeClient *c, const char *collection_path, KubeWatchHandler handler,
                      void *userdata, KubeWatch **ret);

typedef enum KubeWatchFlags {
        /* The first list may be served from the API server's watch cache (resourceVersion=0), as
         * client-go's informers list: possibly a moment old, and the watch from its
         * resourceVersion brings the rest. For callers whose writes are fenced by resourceVersion
         * preconditions anyway; an API server of thousands of nodes then reads nothing from
         * etcd. A list after 410 Gone reads the current state. */
        KUBE_WATCH_LIST_FROM_CACHE = 1 << 0,
} KubeWatchFlags;
int kube_client_watch_full(KubeClient *c, const char *collection_path, KubeWatchFlags flags,
                           KubeWatchHandler handler, void *userdata, KubeWatch **ret);

/* How many items a list asks for per page (limit=): KUBE_LIST_PAGE_SIZE unless set (tests). */
#define KUBE_LIST_PAGE_SIZE 500U
void kube_client_set_list_page_size(KubeClient *c, unsigned n);
unsigned kube_client_get_list_page_size(KubeClient *c);
KubeWatch *kube_watch_free(KubeWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeWatch *, kube_watch_free);

/* Since when (CLOCK_MONOTONIC) the watch has seen every change without a break: its last list,
 * or the start of the stream after its last failure. USEC_INFINITY while it is failing and before
 * its first list. Waiting that is judged by what a watch shows (nothing changed for so long)
 * counts from here: a server that was unreachable showed nothing. */
usec_t kube_watch_live_since(KubeWatch *w);

const char *kube_watch_event_to_string(KubeWatchEvent e);
