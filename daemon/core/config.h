/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's configuration: systemd-style INI files read with inih from /usr/lib/nodereboot/,
 * /etc/nodereboot/ and /run/nodereboot/ (each nodereboot.conf plus nodereboot.conf.d/ drop-ins (*.conf),
 * later overriding earlier, drop-ins sorted by file name across all three folders). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "notify-message.h"
#include "time-util.h"

typedef struct Config {
        /* [Node] */
        char *node_name;                        /* Name=, default: the host name */

        /* [Kubernetes] */
        char *kubeconfig;                       /* Kubeconfig=, default /etc/nodereboot/kubeconfig */
        char *context;                          /* Context=, default: the kubeconfig's current-context */
        char *proxy;                            /* Proxy=, default unset: HTTPS_PROXY from the environment */
        char *no_proxy;                         /* NoProxy=, default unset: NO_PROXY from the environment */

        /* [Sentinel] */
        char *sentinel_path;                    /* Path=, default /var/run/reboot-required */
        usec_t sentinel_settle_usec;            /* SettleSec=, default 10s: how long it must exist */
        char *sentinel_command;                 /* Command=, default empty: the file only */
        unsigned sentinel_required_status;      /* RequiredExitStatus=, default 1 */
        char *sentinel_required_output;         /* RequiredOutputRegex=, default empty: the status only */
        usec_t sentinel_command_interval_usec;  /* CommandIntervalSec=, default 1h */
        usec_t sentinel_command_timeout_usec;   /* CommandTimeoutSec=, default 5min */

        /* [Lock] */
        char *lock_namespace;                   /* Namespace=, default kube-system */
        char *lock_name;                        /* Name=, default nodereboot; slots are <Name>-<i> */
        unsigned concurrency;                   /* Concurrency=, default 1, 1..1000 */
        usec_t lock_ttl_usec;                   /* TTLSec=, default 30min; leaseDurationSeconds */
        usec_t lock_release_delay_usec;         /* ReleaseDelaySec=, default 0: hold after recovery */
        usec_t lock_recheck_usec;               /* RecheckSec=, default 5min: safety-net re-check */
        bool lock_queue;                        /* Queue=, default yes: first come, first served */
        char *lock_queue_namespace;             /* QueueNamespace=, default nodereboot: the tickets */

        /* [Window] */
        char *window_days;                      /* Days=, default "mon,tue,wed,thu,fri,sat,sun" */
        char *window_start;                     /* StartTime=, default "00:00" */
        char *window_end;                       /* EndTime=, default "23:59:59" */
        char *window_time_zone;                 /* TimeZone=, default "UTC" */

        /* [Drain] */
        usec_t drain_timeout_usec;              /* TimeoutSec=, default 30min; infinity allowed */
        int64_t drain_grace_period_sec;         /* GracePeriodSec=, default -1: each pod's own */
        bool force_reboot;                      /* ForceReboot=, default no */
        usec_t drain_delay_usec;                /* DelaySec=, default 0: pause between lock and cordon */
        char *drain_pod_selector;               /* PodSelector=, default empty: all pods */
        usec_t skip_wait_for_delete_usec;       /* SkipWaitForDeleteTimeoutSec=, default 0: off */

        /* [Recovery] */
        char *recovery_pod_selector;            /* WaitForPodsSelector=, default empty: no health gate */
        usec_t recovery_timeout_usec;           /* TimeoutSec=, default 10min; 0 or infinity: no timeout */

        /* [Reboot] */
        unsigned reboot_max_attempts;           /* MaxAttempts=, default 3 */
        usec_t reboot_timeout_usec;             /* TimeoutSec=, default 10min: a reboot not done by then failed */
        usec_t reboot_delay_usec;               /* DelaySec=, default 0: pause between drain and reboot */
        usec_t retry_usec;                      /* RetrySec=, default 1h: back-off after a failed cycle */
        usec_t loop_guard_usec;                 /* LoopGuardSec=, default 1h: required again this soon backs off */

        /* [Blockers] */
        char **blocking_pod_selectors;          /* PodSelector=, repeatable; any match on this node blocks */
        char **package_manager_locks;           /* PackageManagerLocks=, absolute paths; any locked blocks */
        char *prometheus_url;                   /* PrometheusURL=, default empty: no alert check */
        char *prometheus_ca_file;               /* PrometheusCAFile= */
        char *prometheus_bearer_token_file;     /* PrometheusBearerTokenFile= */
        char *prometheus_basic_auth_file;       /* PrometheusBasicAuthFile=, "user:password" */
        char *alert_filter_regex;               /* AlertFilterRegex=, POSIX extended */
        bool alert_filter_match_only;           /* AlertFilterMatchOnly=, default no */
        bool alert_firing_only;                 /* AlertFiringOnly=, default no */

        /* [Marks] */
        bool annotate_nodes;                    /* AnnotateNodes=, default yes */
        char **pre_reboot_labels;               /* PreRebootLabels=, "k=v k2=v2", repeatable */
        char **post_reboot_labels;              /* PostRebootLabels= */
        char *prefer_no_schedule_taint;         /* PreferNoScheduleTaint=, default empty: off */

        /* [Notify] */
        char **notify_urls;                     /* URL=, repeatable; secrets */
        char **notify_url_files;                /* URLFile=, repeatable: one URL a line */
        int notify_type;                        /* Type=, a NotifyType, default auto */
        char *notify_ca_file;                   /* CAFile= */
        unsigned notify_events;                 /* Events=, 1 << NotifyEvent each, default all */
        usec_t notify_blocked_too_long_usec;    /* BlockedTooLongSec=, default 2h */
        usec_t notify_timeout_usec;             /* TimeoutSec=, default 10s */
        unsigned notify_retries;                /* Retries=, default 3 */
        char *notify_templates[_NOTIFY_EVENT_MAX];      /* Message<Event>=, NULL: the default */

        /* [Metrics] */
        char *metrics_textfile_path;            /* TextfilePath=, default empty: no textfile */
        char *metrics_listen_address;           /* ListenAddress=, default empty: no endpoint */
        bool metrics_kured_compatible;          /* KuredCompatible=, default no */

        /* [Daemon] */
        int log_level;                          /* LogLevel=, default info */
} Config;

/* Fills in every default. */
int config_new(Config **ret);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Reads the standard folders (root_prefix is prepended to each, for tests; NULL for "/").
 * On bad input logs "FILE:LINE: ..." naming the key and the expected form and returns -EINVAL;
 * unknown keys are warnings. */
int config_load_default(Config *c, const char *root_prefix);
/* Reads exactly one file and, if it exists, the drop-ins in FILE.d/ (sorted). */
int config_load_file(Config *c, const char *path);
/* Checks cross-field rules after loading (e.g. TTL > 0); logs and returns -EINVAL. */
int config_verify(const Config *c);
