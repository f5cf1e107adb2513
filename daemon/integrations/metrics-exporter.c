/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "metrics-exporter.h"
#include "metrics-server.h"
#include "string-util.h"

struct MetricsExporter {
        char *textfile_path;
        MetricsServer *server;
        char *text;                     /* the last published */
        bool textfile_stale;            /* its last write failed */
        int textfile_error;             /* of that write, logged once */
};

int metrics_exporter_new(MetricsExporter **ret, sd_event *event, const MetricsExporterSettings *settings) {
        _cleanup_(metrics_exporter_freep) MetricsExporter *e = NULL;
        int r;

        if (!ret || !event || !settings)
                return -EINVAL;
        e = calloc(1, sizeof *e);
        if (!e)
                return -ENOMEM;
        if (settings->textfile_path) {
                e->textfile_path = strdup(settings->textfile_path);
                if (!e->textfile_path)
                        return -ENOMEM;
        }
        if (settings->address || settings->listen_fd >= 0) {
                r = metrics_server_new(&e->server, event, settings->address, settings->address_len,
                                       settings->listen_fd);
                if (r < 0)
                        /* Reboots go on without it: an endpoint must never keep a node from its
                         * security updates. */
                        log_error_errno(r, "Failed to serve the metrics on %s, going on without the endpoint: %m",
                                        settings->listen_fd >= 0 ? "the socket systemd passed" :
                                        strna(settings->address_text));
                else
                        log_info("Serving the metrics at http://%s/metrics.",
                                 settings->listen_fd >= 0 ? "(the socket systemd passed)" :
                                 strna(settings->address_text));
        }
        *ret = TAKE_PTR(e);
        return 0;
}

MetricsExporter *metrics_exporter_free(MetricsExporter *e) {
        if (!e)
                return NULL;
        metrics_server_free(e->server);
        free(e->textfile_path);
        free(e->text);
        free(e);
        return NULL;
}

static void metrics_exporter_write_textfile(MetricsExporter *e) {
        int r;

        if (!e->textfile_path)
                return;
        /* 0644 whatever the umask: node_exporter runs as another user. The temporary file beside
         * it ends in .tmp-PID, so the collector (it reads *.prom) never picks it up half-written. */
        r = write_file_atomic_full(e->textfile_path, e->text, strlen(e->text), 0644, WRITE_FILE_EXACT_MODE);
        if (r < 0) {
                if (!e->textfile_stale || r != e->textfile_error)
                        log_warning_errno(r, "Failed to write the metrics to %s (tried again at the next change): %m",
                                          e->textfile_path);
                e->textfile_stale = true;
                e->textfile_error = r;
                return;
        }
        if (e->textfile_stale)
                log_info("Wrote the metrics to %s again.", e->textfile_path);
        e->textfile_stale = false;
}

void metrics_exporter_update(MetricsExporter *e, const MetricsValues *v) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (!e)
                return;
        r = metrics_format(v, &text);
        if (r < 0) {
                log_warning_errno(r, "Failed to format the metrics: %m");
                return;
        }
        if (streq_ptr(text, e->text) && !e->textfile_stale)
                return;
        if (e->server) {
                r = metrics_server_set_text(e->server, text);
                if (r < 0)
                        log_warning_errno(r, "Failed to update the metrics endpoint: %m");
        }
        free(e->text);
        e->text = TAKE_PTR(text);
        metrics_exporter_write_textfile(e);
}
