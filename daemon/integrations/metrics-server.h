/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics over HTTP: GET /metrics answers the latest exposition text. libmicrohttpd in its
 * external-polling mode with epoll: its one epoll descriptor is an I/O source of the daemon's
 * sd-event loop, and a timer runs only while a connection wants one. So an idle endpoint wakes
 * the daemon never, and a scrape is served between two steps of the reboot cycle, never during
 * one. Bounded: 16 connections (4 per client address), 10 s of inactivity, 32 KiB per connection. */
#pragma once

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct MetricsServer MetricsServer;

/* Listens on address (parse_socket_address()), or serves listen_fd (a listening stream socket
 * passed by systemd, taken over) when it is >= 0. */
int metrics_server_new(MetricsServer **ret, sd_event *event, const struct sockaddr *address, socklen_t address_len,
                       int listen_fd);
MetricsServer *metrics_server_free(MetricsServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsServer *, metrics_server_free);

/* The text the next scrapes get (copied). */
int metrics_server_set_text(MetricsServer *s, const char *text);

/* The listening socket systemd passed for the metrics (nodereboot-metrics.socket,
 * FileDescriptorName=metrics), or -ENOENT when there is none. */
int metrics_server_passed_socket(void);
