/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "log.h"
#include "proxy.h"
#include "string-util.h"


void ctl_done(Ctl *c) {
        /* The lock and the client cancel what is in flight; let nothing run afterwards. */
        c->lock = lock_free(c->lock);
        c->client = kube_client_free(c->client);
        c->kubeconfig = kubeconfig_free(c->kubeconfig);
        c->event = sd_event_unref(c->event);
        c->window = window_free(c->window);
        c->config = config_free(c->config);
        c->state_dir = mfree(c->state_dir);
}

/* Turns the loop until *done or the deadline. */
int ctl_wait(Ctl *c, const bool *done, usec_t deadline) {
        while (!*done) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_event_run(c->event, deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads the kubeconfig and sets up the client and the lock. The loaders log what is wrong. */
int ctl_connect(Ctl *c) {
        _cleanup_free_ char *proxy = NULL;
        int r;

        r = kubeconfig_load(c->kubeconfig_path ?: c->config->kubeconfig, c->config->context, &c->kubeconfig);
        if (r < 0)
                return r;
        r = sd_event_new(&c->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create an event loop: %m");
        r = kube_client_new(&c->client, c->event, c->kubeconfig);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the Kubernetes client: %m");
        /* The nodes share one ServiceAccount: the User-Agent tells the tool's requests (and this
         * node) apart in the API server's audit log. */
        r = kube_client_set_user_agent(c->client, "noderebootctl", c->config->node_name);
        if (r < 0)
                return log_error_errno(r, "Failed to set the User-Agent: %m");
        /* The daemon's proxy: [Kubernetes] Proxy=/NoProxy=, else HTTPS_PROXY/NO_PROXY of this shell. */
        r = proxy_for_server(c->config->proxy, c->config->no_proxy, c->kubeconfig->server, &proxy, NULL);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "%s is not a usable proxy URL (expected e.g. http://proxy:3128)",
                                       c->config->proxy ? "[Kubernetes] Proxy=" : "HTTPS_PROXY");
        r = kube_client_set_proxy(c->client, proxy);
        if (proxy)
                explicit_bzero(proxy, strlen(proxy));
        if (r < 0)
                return log_error_errno(r, "Failed to set the proxy: %m");
        /* One quick retry: an administrator at a terminal wants an answer, not a back-off. */
        kube_client_set_timeouts(c->client, CTL_CONNECT_TIMEOUT_USEC, CTL_REQUEST_TIMEOUT_USEC);
        kube_client_set_retry(c->client, 1, 200 * USEC_PER_MSEC, USEC_PER_SEC);
        r = lock_new(&c->lock, c->client, c->config->lock_namespace, c->config->lock_name,
                     c->config->concurrency, c->config->lock_ttl_usec, c->config->node_name);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the lock: %m");
        return 0;
}

bool connect_error_is_config(int r) {
        /* As noderebootd: a missing or unusable kubeconfig is a configuration error. */
        return r == -ENOENT || r == -EINVAL || r == -EOPNOTSUPP;
}

/* "2026-11-27 10:02:03 UTC"; "-" for 0. */
const char *format_abs(char *buf, size_t size, usec_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (t == 0)
                snprintf(buf, size, "-");
        else if (t == USEC_INFINITY)
                snprintf(buf, size, "never");
        else if (!gmtime_r(&s, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

/* "2min 3s ago", "in 5min", "now", to the second. */
const char *format_rel(char *buf, size_t size, usec_t t, usec_t now) {
        char span[FORMAT_TIMESPAN_MAX];
        usec_t d = t > now ? t - now : now - t;

        d = (d + USEC_PER_SEC / 2) / USEC_PER_SEC * USEC_PER_SEC;
        if (d == 0)
                snprintf(buf, size, "now");
        else if (t > now)
                snprintf(buf, size, "in %s", format_timespan(span, sizeof span, d));
        else
                snprintf(buf, size, "%s ago", format_timespan(span, sizeof span, d));
        return buf;
}

/* "2026-11-27 10:02:03 UTC (2min 3s ago)". */
const char *format_when(char *buf, size_t size, usec_t t, usec_t now) {
        char a[TIME_MAX], rel[TIME_MAX];

        if (t == 0 || t == USEC_INFINITY)
                return format_abs(buf, size, t);
        snprintf(buf, size, "%s (%s)", format_abs(a, sizeof a, t), format_rel(rel, sizeof rel, t, now));
        return buf;
}

