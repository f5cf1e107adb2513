/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <microhttpd.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "metrics.h"
#include "metrics-server.h"
#include "string-util.h"

#define CONNECTION_LIMIT 16U
#define PER_ADDRESS_LIMIT 4U
#define CONNECTION_TIMEOUT_SEC 10U
#define CONNECTION_MEMORY 32768U

struct MetricsServer {
        sd_event *event;
        struct MHD_Daemon *daemon;
        sd_event_source *io;
        sd_event_source *timer;
        char *text;
        size_t text_size;
};

static void metrics_server_arm(MetricsServer *s);

_printf_(2, 0)
static void on_mhd_log(void *userdata, const char *fmt, va_list ap) {
        _cleanup_free_ char *m = NULL;

        if (vasprintf(&m, fmt, ap) < 0)
                return;
        /* libmicrohttpd ends its messages with a line feed */
        log_debug("metrics endpoint: %s", strstrip(m));
}

/* For HEAD, libmicrohttpd sends the headers of the same answer (Content-Length included) and
 * leaves the body out itself. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *content_type,
                              const char *body, size_t size) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        r = MHD_create_response_from_buffer(size, (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
            MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) {
                MHD_destroy_response(r);
                return MHD_NO;
        }
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES) {
                MHD_destroy_response(r);
                return MHD_NO;
        }
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result on_request(void *userdata, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **request) {
        static const char not_found[] = "Not found: the metrics are at /metrics.\n";
        static const char not_allowed[] = "Only GET and HEAD are answered.\n";
        static int seen;
        MetricsServer *s = userdata;

        /* The first call brings the headers only: answer once the request is complete (a body,
         * which no scrape sends, is read and dropped). */
        if (!*request) {
                *request = &seen;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
                return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", not_allowed,
                              sizeof not_allowed - 1);
        if (!streq(url, "/metrics"))
                return answer(c, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", not_found, sizeof not_found - 1);
        return answer(c, MHD_HTTP_OK, METRICS_CONTENT_TYPE, strempty(s->text), s->text_size);
}

static void metrics_server_run(MetricsServer *s) {
        if (MHD_run(s->daemon) != MHD_YES)
                log_debug("metrics endpoint: libmicrohttpd could not run its connections.");
        metrics_server_arm(s);
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        metrics_server_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        metrics_server_run(userdata);
        return 0;
}

/* A timer only while libmicrohttpd asks for one: a connection that may time out, or work it has
 * left for the next run. An idle endpoint has none. */
static void metrics_server_arm(MetricsServer *s) {
        MHD_UNSIGNED_LONG_LONG ms;
        int r;

        if (MHD_get_timeout(s->daemon, &ms) != MHD_YES) {
                if (s->timer)
                        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                return;
        }
        if (s->timer) {
                r = sd_event_source_set_time_relative(s->timer, (uint64_t) ms * USEC_PER_MSEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(s->event, &s->timer, CLOCK_MONOTONIC, (uint64_t) ms * USEC_PER_MSEC,
                                               USEC_PER_MSEC, on_timer, s);
        if (r < 0)
                log_warning_errno(r, "metrics endpoint: failed to arm its timer: %m");
}

int metrics_server_new(MetricsServer **ret, sd_event *event, const struct sockaddr *address, socklen_t address_len,
                       int listen_fd) {
        _cleanup_(metrics_server_freep) MetricsServer *s = NULL;
        const union MHD_DaemonInfo *info;
        int r;

        if (!ret || !event || (listen_fd < 0 && !address))
                return -EINVAL;
        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);

        struct MHD_OptionItem options[] = {
                listen_fd >= 0 ?
                        (struct MHD_OptionItem) { MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL } :
                        (struct MHD_OptionItem) { MHD_OPTION_SOCK_ADDR, 0, (void *) address },
                { MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, NULL },
                { MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_ADDRESS_LIMIT, NULL },
                { MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_SEC, NULL },
                { MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL },
                { MHD_OPTION_END, 0, NULL },
        };
        /* MHD_USE_EPOLL without a thread of its own: we poll its epoll descriptor. IPv6
         * addresses as given (no dual stack: [::1] is ::1 only). The logger first, so that it
         * also gets what goes wrong while the options are applied. */
        s->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                                     (listen_fd < 0 && address->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                                     0, NULL, NULL, on_request, s,
                                     MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                                     MHD_OPTION_ARRAY, options,
                                     MHD_OPTION_END);
        (void) address_len;
        if (!s->daemon)
                /* libmicrohttpd says why only in its log (address in use, say): the caller names
                 * the address. */
                return errno > 0 ? -errno : -EADDRNOTAVAIL;

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0)
                return -EOPNOTSUPP;
        r = sd_event_add_io(event, &s->io, info->epoll_fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->io, "metrics-endpoint");
        metrics_server_arm(s);
        *ret = TAKE_PTR(s);
        return 0;
}

MetricsServer *metrics_server_free(MetricsServer *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->timer);
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        sd_event_unref(s->event);
        free(s->text);
        free(s);
        return NULL;
}

int metrics_server_set_text(MetricsServer *s, const char *text) {
        char *t;

        if (!s || !text)
                return -EINVAL;
        t = strdup(text);
        if (!t)
                return -ENOMEM;
        free(s->text);
        s->text = t;
        s->text_size = strlen(t);
        return 0;
}

int metrics_server_passed_socket(void) {
        char **names = NULL;
        int n, fd = -ENOENT;

        n = sd_listen_fds_with_names(true, &names);
        for (int i = 0; i < n; i++) {
                if (fd < 0 && streq_ptr(names[i], "metrics") &&
                    sd_is_socket(SD_LISTEN_FDS_START + i, AF_UNSPEC, SOCK_STREAM, 1) > 0)
                        fd = SD_LISTEN_FDS_START + i;
                else {
                        log_warning("Closing the file descriptor %s that systemd passed: not the metrics' "
                                    "listening socket.", strna(names[i]));
                        (void) close(SD_LISTEN_FDS_START + i);
                }
        }
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        return fd;
}
