/* SPDX-License-Identifier: Apache-2.0 */
/* Where the metrics go: a textfile for node_exporter's textfile collector, replaced atomically
 * whenever a value changes, and the HTTP endpoint (metrics-server.h). Both are written only when
 * the text changes, never on a timer. */
#pragma once

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "metrics.h"

typedef struct MetricsExporter MetricsExporter;

typedef struct MetricsExporterSettings {
        const char *textfile_path;      /* NULL: no textfile */
        const struct sockaddr *address; /* NULL and listen_fd < 0: no endpoint */
        socklen_t address_len;
        const char *address_text;       /* for messages */
        int listen_fd;                  /* a socket passed by systemd (taken over), or -1 */
} MetricsExporterSettings;

/* An endpoint that cannot listen (address in use, say) is logged, naming the address, and left
 * out: the exporter goes on with the textfile. Fails only on bad arguments and OOM. */
int metrics_exporter_new(MetricsExporter **ret, sd_event *event, const MetricsExporterSettings *settings);
MetricsExporter *metrics_exporter_free(MetricsExporter *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsExporter *, metrics_exporter_free);

/* Publishes v when its text differs from the last. A textfile that cannot be written is logged
 * (once until it works again) and tried again at the next change; nothing else depends on it. */
void metrics_exporter_update(MetricsExporter *e, const MetricsValues *v);
