/* SPDX-License-Identifier: Apache-2.0 */
/* One-shot HTTP(S) requests on the event loop, for services other than the API server (the
 * Kubernetes client has its own, with retries and watches): each request has a timeout and a
 * size cap on the answer, verifies TLS against the system's trust store or a given CA file,
 * follows no redirects, and goes through the proxy the Kubernetes client would take for its URL
 * (proxy_for_server()). A handler runs exactly once, from the event loop, unless the request is
 * cancelled or the client freed. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "time-util.h"

typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

typedef struct HttpResponse {
        long status;                    /* 0 when no answer came */
        const char *body;               /* NUL-terminated */
        size_t size;
} HttpResponse;

/* error < 0: no complete answer (-ETIMEDOUT, -ECONNREFUSED, -EFBIG past max_body, -EPROTO for
 * TLS, -EIO otherwise); message says what libcurl said. response is never NULL. */
typedef void (*HttpHandler)(HttpRequest *r, int error, const char *message, const HttpResponse *response,
                            void *userdata);

typedef struct HttpOptions {
        const char *ca_file;            /* NULL: the system's trust store */
        const char *bearer_token;       /* Authorization: Bearer <token> */
        const char *basic_auth;         /* "user:password" for Basic authentication */
        const char *content_type;       /* of body */
        const char *accept;
        usec_t timeout_usec;            /* 0: 10 s */
        size_t max_body;                /* 0: 1 MiB */
} HttpOptions;

int http_client_new(HttpClient **ret, sd_event *event, const char *user_agent);
/* Cancels every request in flight; no handler runs. May be called from a handler. */
HttpClient *http_client_free(HttpClient *c);
/* [Kubernetes] Proxy= and NoProxy= (copied; NULL: the environment's, as for the API server). */
int http_client_set_proxy(HttpClient *c, const char *proxy, const char *no_proxy);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* method "GET" or "POST" (body may be NULL). ret (may be NULL) is valid until the handler runs
 * or http_request_cancel(). */
int http_client_request(HttpClient *c, const char *method, const char *url, const char *body,
                        const HttpOptions *options, HttpHandler handler, void *userdata, HttpRequest **ret);
HttpRequest *http_request_cancel(HttpRequest *r);

/* scheme://host[:port] of url, for messages: never the path, query or user information, where
 * webhook secrets live. Newly allocated; "(invalid URL)" copies when it cannot be parsed. */
char *http_url_for_display(const char *url);
