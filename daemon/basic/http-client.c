/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "curl-event.h"
#include "http-client.h"
#include "log.h"
#include "proxy.h"
#include "string-util.h"

#define DEFAULT_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define DEFAULT_MAX_BODY ((size_t) 1024 * 1024)

struct HttpRequest {
        HttpClient *client;
        HttpRequest *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        char *body;                     /* what we send, kept for libcurl */
        char *answer;
        size_t answer_size;
        size_t max_body;
        bool too_big;
        char error[CURL_ERROR_SIZE];
        HttpHandler handler;
        void *userdata;
};

struct HttpClient {
        CurlEvent *curl;
        char *user_agent;
        char *proxy;                    /* NULL: the environment's */
        char *no_proxy;
        HttpRequest *requests;
        bool dispatching;               /* handlers are running: a free waits for them */
        bool freed;
};

static void http_client_destroy(HttpClient *c);

static void request_free(HttpRequest *r) {
        if (!r)
                return;
        if (r->client) {
                if (r->easy)
                        (void) curl_multi_remove_handle(curl_event_multi(r->client->curl), r->easy);
                if (r->next)
                        r->next->prev = r->prev;
                if (r->prev)
                        r->prev->next = r->next;
                else
                        r->client->requests = r->next;
        }
        if (r->easy)
                curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        if (r->body)
                explicit_bzero(r->body, strlen(r->body));
        free(r->body);
        free(r->answer);
        free(r);
}

static int error_from_curl(CURLcode code) {
        switch (code) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
                return -EHOSTUNREACH;
        case CURLE_FILESIZE_EXCEEDED:
        case CURLE_WRITE_ERROR:
                return -EFBIG;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
                return -EPROTO;
        default:
                return -EIO;
        }
}

static void on_dispatch(CurlEvent *ce, void *userdata) {
        HttpClient *c = userdata;
        CURLMsg *m;
        int n;

        /* Every finished transfer now: curl tells of each only once. A handler may free the
         * client; the free then waits until the loop is done. */
        c->dispatching = true;
        while (!c->freed && (m = curl_multi_info_read(curl_event_multi(ce), &n))) {
                HttpRequest *r = NULL;
                HttpResponse response = {};
                int error = 0;

                if (m->msg != CURLMSG_DONE)
                        continue;
                (void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                if (!r)
                        continue;
                if (m->data.result != CURLE_OK)
                        error = r->too_big ? -EFBIG : error_from_curl(m->data.result);
                (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &response.status);
                response.body = r->answer ?: "";
                response.size = r->answer_size;
                /* Taken out of the client first: the handler may free the client. */
                (void) curl_multi_remove_handle(curl_event_multi(ce), r->easy);
                if (r->next)
                        r->next->prev = r->prev;
                if (r->prev)
                        r->prev->next = r->next;
                else
                        c->requests = r->next;
                r->client = NULL;
                r->handler(r, error, error < 0 ? (r->error[0] ? r->error : curl_easy_strerror(m->data.result)) : NULL,
                           &response, r->userdata);
                request_free(r);
        }
        c->dispatching = false;
        if (c->freed)
                http_client_destroy(c);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *userdata) {
        HttpRequest *r = userdata;
        size_t n = size * nmemb;
        char *t;

        if (r->answer_size + n > r->max_body) {
                r->too_big = true;
                return 0;
        }
        t = realloc(r->answer, r->answer_size + n + 1);
        if (!t)
                return 0;
        memcpy(t + r->answer_size, p, n);
        r->answer_size += n;
        t[r->answer_size] = 0;
        r->answer = t;
        return n;
}

int http_client_new(HttpClient **ret, sd_event *event, const char *user_agent) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;
        int r;

        if (!ret || !event || !user_agent)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->user_agent = strdup(user_agent);
        if (!c->user_agent)
                return -ENOMEM;
        r = curl_event_new(&c->curl, event, "http-curl", on_dispatch, c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static void http_client_destroy(HttpClient *c) {
        curl_event_free(c->curl);
        free(c->user_agent);
        erase_and_free(c->proxy);
        free(c->no_proxy);
        free(c);
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        curl_event_stop(c->curl);
        while (c->requests)
                request_free(c->requests);
        if (c->dispatching)
                c->freed = true;
        else
                http_client_destroy(c);
        return NULL;
}

int http_client_set_proxy(HttpClient *c, const char *proxy, const char *no_proxy) {
        if (!c)
                return -EINVAL;
        erase_and_free(c->proxy);
        free(c->no_proxy);
        c->proxy = proxy ? strdup(proxy) : NULL;
        c->no_proxy = no_proxy ? strdup(no_proxy) : NULL;
        if ((proxy && !c->proxy) || (no_proxy && !c->no_proxy))
                return -ENOMEM;
        return 0;
}

HttpRequest *http_request_cancel(HttpRequest *r) {
        request_free(r);
        return NULL;
}

static int add_header(HttpRequest *r, const char *name, const char *value) {
        _cleanup_free_ char *h = strjoin(name, ": ", value);
        struct curl_slist *l;

        if (!h)
                return -ENOMEM;
        l = curl_slist_append(r->headers, h);
        explicit_bzero(h, strlen(h));
        if (!l)
                return -ENOMEM;
        r->headers = l;
        return 0;
}

int http_client_request(HttpClient *c, const char *method, const char *url, const char *body,
                        const HttpOptions *o, HttpHandler handler, void *userdata, HttpRequest **ret) {
        static const HttpOptions defaults = {};
        _cleanup_free_ char *proxy = NULL;
        HttpRequest *r;
        CURL *e;
        int k;

        if (!c || !method || !url || !handler || (!streq(method, "GET") && !streq(method, "POST")))
                return -EINVAL;
        if (!o)
                o = &defaults;
        /* The proxy the Kubernetes client would take for this URL: [Kubernetes] Proxy= and
         * NoProxy=, else HTTPS_PROXY and NO_PROXY. */
        k = proxy_for_server(c->proxy, c->no_proxy, url, &proxy, NULL);
        if (k < 0)
                return k;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->handler = handler;
        r->userdata = userdata;
        r->max_body = o->max_body > 0 ? o->max_body : DEFAULT_MAX_BODY;
        e = r->easy = curl_easy_init();
        if (!e)
                goto oom;
        if (body) {
                r->body = strdup(body);
                if (!r->body)
                        goto oom;
        }
        if (o->bearer_token) {
                char *v = strjoin("Bearer ", o->bearer_token);

                if (!v)
                        goto oom;
                k = add_header(r, "Authorization", v);
                explicit_bzero(v, strlen(v));
                free(v);
                if (k < 0)
                        goto fail_k;
        }
        if (o->content_type && (k = add_header(r, "Content-Type", o->content_type)) < 0)
                goto fail_k;
        if (o->accept && (k = add_header(r, "Accept", o->accept)) < 0)
                goto fail_k;
        /* No "Expect: 100-continue" round trip for a small body. */
        if (body && (k = add_header(r, "Expect", "")) < 0)
                goto fail_k;

        if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PRIVATE, r) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_WRITEDATA, r) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
            curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http") != CURLE_OK ||
#else
            curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTPS | CURLPROTO_HTTP)) != CURLE_OK ||
#endif
            curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_PROXY, proxy ?: "") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOPROXY, "") != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                             (long) ((o->timeout_usec > 0 ? o->timeout_usec : DEFAULT_TIMEOUT_USEC) / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) r->max_body) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK ||
            (o->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file) != CURLE_OK) ||
            (o->basic_auth && (curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC) != CURLE_OK ||
                               curl_easy_setopt(e, CURLOPT_USERPWD, o->basic_auth) != CURLE_OK)) ||
            (streq(method, "POST") && (curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
                                       curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ?: "") != CURLE_OK)))
                goto oom;
        if (proxy)
                explicit_bzero(proxy, strlen(proxy));
        if (curl_multi_add_handle(curl_event_multi(c->curl), e) != CURLM_OK)
                goto oom;
        r->client = c;
        r->next = c->requests;
        if (r->next)
                r->next->prev = r;
        c->requests = r;
        if (ret)
                *ret = r;
        return 0;

oom:
        k = -ENOMEM;
fail_k:
        request_free(r);
        return k;
}

char *http_url_for_display(const char *url) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;

        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
                if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
                        out = strdup_printf("%s://%s:%s", scheme, host, port);
                else
                        out = strdup_printf("%s://%s", scheme, host);
        } else
                out = strdup("(invalid URL)");
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        return out;
}
