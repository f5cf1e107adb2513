/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "fileio.h"
#include "log.h"
#include "string-util.h"
#include "capture.h"
#include "tests.h"

/* --- fixtures --------------------------------------------------------------------------------- */

static char *tmpdir_new(void) {
        char *d = strdup("/tmp/test-config-XXXXXX");

        ASSERT_TRUE(d);
        ASSERT_TRUE(mkdtemp(d));
        return d;
}

static void rm_rf(const char *path) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s'", path);

        ASSERT_TRUE(cmd);
        ASSERT_TRUE(startswith(path, "/tmp/test-config-"));
        ASSERT_EQ(system(cmd), 0);
}

static void mkdir_p(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        ASSERT_TRUE(p);
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        ASSERT_TRUE(mkdir(p, 0755) == 0 || errno == EEXIST);
                        *s = '/';
                }
        ASSERT_TRUE(mkdir(p, 0755) == 0 || errno == EEXIST);
}

/* Writes text to dir/rel, creating folders on the way. */
static char *write_at(const char *dir, const char *rel, const char *text) {
        char *path = strjoin(dir, "/", rel);
        _cleanup_free_ char *parent = NULL;

        ASSERT_TRUE(path);
        parent = strdup(path);
        ASSERT_TRUE(parent);
        *strrchr(parent, '/') = 0;
        mkdir_p(parent);
        ASSERT_OK(write_file_atomic(path, text, strlen(text), 0644));
        return path;
}

static char *hostname_lower(void) {
        char buf[HOST_NAME_MAX + 1] = "";

        ASSERT_OK(gethostname(buf, sizeof buf - 1));
        for (char *p = buf; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return strdup(buf);
}

/* Loads text as one file (no drop-ins); returns the loader's result and what it logged. */
static int load_text(const char *text, Config **ret, char **ret_log, char **ret_path) {
        _cleanup_free_ char *dir = tmpdir_new(), *path = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        Capture cap;
        int r;

        path = write_at(dir, "nodereboot.conf", text);
        ASSERT_OK(config_new(&c));
        capture_begin(&cap);
        r = config_load_file(c, path);
        *ret_log = capture_end(&cap);
        rm_rf(dir);
        if (ret)
                *ret = TAKE_PTR(c);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return r;
}

static size_t strv_len(char **l) {
        return strv_length(l);
}

/* --- tests ------------------------------------------------------------------------------------ */

TEST(defaults) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *host = hostname_lower();

        ASSERT_OK(config_new(&c));
        ASSERT_STREQ(c->node_name, host);
        ASSERT_STREQ(c->kubeconfig, "/etc/nodereboot/kubeconfig");
        ASSERT_TRUE(c->context == NULL);
        ASSERT_STREQ(c->sentinel_path, "/var/run/reboot-required");
        ASSERT_STREQ(c->lock_namespace, "kube-system");
        ASSERT_STREQ(c->lock_name, "nodereboot");
        ASSERT_EQ(c->concurrency, 1);
        ASSERT_EQ(c->lock_ttl_usec, 30 * USEC_PER_MINUTE);
        ASSERT_EQ(c->lock_release_delay_usec, 0);
        ASSERT_EQ(c->lock_recheck_usec, 5 * USEC_PER_MINUTE);
        ASSERT_STREQ(c->window_days, "mon,tue,wed,thu,fri,sat,sun");
        ASSERT_STREQ(c->window_start, "00:00");
        ASSERT_STREQ(c->window_end, "23:59:59");
        ASSERT_STREQ(c->window_time_zone, "UTC");
        ASSERT_EQ(c->drain_timeout_usec, 30 * USEC_PER_MINUTE);
        ASSERT_EQ(c->drain_grace_period_sec, -1);
        ASSERT_FALSE(c->force_reboot);
        ASSERT_EQ(c->drain_delay_usec, 0);
        ASSERT_TRUE(c->drain_pod_selector == NULL);
        ASSERT_TRUE(c->recovery_pod_selector == NULL);
        ASSERT_EQ(c->recovery_timeout_usec, 10 * USEC_PER_MINUTE);
        ASSERT_EQ(c->skip_wait_for_delete_usec, 0);
        ASSERT_EQ(c->reboot_max_attempts, 3);
        ASSERT_EQ(c->reboot_timeout_usec, 10 * USEC_PER_MINUTE);
        ASSERT_EQ(c->reboot_delay_usec, 0);
        ASSERT_EQ(c->retry_usec, USEC_PER_HOUR);
        ASSERT_TRUE(c->blocking_pod_selectors == NULL);
        ASSERT_EQ(strv_len(c->package_manager_locks), 2);
        ASSERT_STREQ(c->package_manager_locks[0], "/var/lib/dpkg/lock-frontend");
        ASSERT_STREQ(c->package_manager_locks[1], "/var/lib/dpkg/lock");
        ASSERT_EQ(c->sentinel_settle_usec, 10 * USEC_PER_SEC);
        ASSERT_TRUE(c->annotate_nodes);
        ASSERT_TRUE(c->pre_reboot_labels == NULL);
        ASSERT_TRUE(c->post_reboot_labels == NULL);
        ASSERT_TRUE(c->prefer_no_schedule_taint == NULL);
        ASSERT_EQ(c->log_level, LOG_INFO);

        ASSERT_TRUE(config_free(NULL) == NULL);
}

TEST(empty_root_keeps_defaults) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *root = tmpdir_new();

        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_default(c, root));
        ASSERT_EQ(c->concurrency, 1);
        ASSERT_STREQ(c->lock_name, "nodereboot");
        rm_rf(root);
}

TEST(folders_and_dropins) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *root = tmpdir_new(), *masked = NULL, *link = NULL;

        /* Main files: /usr/lib, then /etc, then /run. */
        free(write_at(root, "usr/lib/nodereboot/nodereboot.conf",
                      "[Lock]\nConcurrency=2\nNamespace=from-usr\nName=usr\n[Window]\nStartTime=01:00\n"));
        free(write_at(root, "etc/nodereboot/nodereboot.conf",
                      "[Lock]\nConcurrency=3\nNamespace=from-etc\n[Reboot]\nMaxAttempts=7\n"));
        free(write_at(root, "run/nodereboot/nodereboot.conf", "[Lock]\nNamespace=from-run\n"));

        /* Drop-ins, all read after all main files, sorted by name across the folders. */
        free(write_at(root, "usr/lib/nodereboot/nodereboot.conf.d/10-a.conf",
                      "[Lock]\nConcurrency=10\nName=usr-10\n"));
        /* Same name in a later folder replaces the earlier file entirely (Concurrency=10 is gone). */
        free(write_at(root, "etc/nodereboot/nodereboot.conf.d/10-a.conf", "[Lock]\nName=etc-10\n"));
        free(write_at(root, "etc/nodereboot/nodereboot.conf.d/05-z.conf",
                      "[Window]\nTimeZone=Asia/Tokyo\nEndTime=05:00\n"));
        free(write_at(root, "run/nodereboot/nodereboot.conf.d/20-b.conf", "[Window]\nTimeZone=Europe/Berlin\n"));
        free(write_at(root, "usr/lib/nodereboot/nodereboot.conf.d/30-c.conf", "[Window]\nDays=mon\n"));
        free(write_at(root, "usr/lib/nodereboot/nodereboot.conf.d/40-d.conf", "[Reboot]\nMaxAttempts=9\n"));
        /* A later drop-in linked to /dev/null masks an earlier one of the same name. */
        masked = strjoin(root, "/run/nodereboot/nodereboot.conf.d/30-c.conf");
        ASSERT_TRUE(masked);
        ASSERT_OK(symlink("/dev/null", masked));
        /* Ignored: other suffixes, hidden files, folders. */
        free(write_at(root, "etc/nodereboot/nodereboot.conf.d/99-x.conf.bak", "[Lock]\nConcurrency=abc\n"));
        free(write_at(root, "etc/nodereboot/nodereboot.conf.d/.99-hidden.conf", "[Lock]\nConcurrency=abc\n"));
        free(write_at(root, "etc/nodereboot/nodereboot.conf.d/98-dir.conf/x", "junk"));
        /* A symlinked drop-in is followed. */
        free(write_at(root, "elsewhere/50-linked.conf", "[Daemon]\nLogLevel=debug\n"));
        link = strjoin(root, "/etc/nodereboot/nodereboot.conf.d/50-linked.conf");
        ASSERT_TRUE(link);
        {
                _cleanup_free_ char *target = strjoin(root, "/elsewhere/50-linked.conf");
                ASSERT_TRUE(target);
                ASSERT_OK(symlink(target, link));
        }

        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_default(c, root));

        ASSERT_EQ(c->concurrency, 3);                           /* /etc main; 10-a.conf was replaced */
        ASSERT_STREQ(c->lock_namespace, "from-run");            /* /run main wins over /etc and /usr/lib */
        ASSERT_STREQ(c->lock_name, "etc-10");                   /* drop-in over main files */
        ASSERT_STREQ(c->window_start, "01:00");                 /* only /usr/lib set it */
        ASSERT_STREQ(c->window_end, "05:00");
        ASSERT_STREQ(c->window_time_zone, "Europe/Berlin");     /* 20-b.conf sorts after 05-z.conf */
        ASSERT_STREQ(c->window_days, "mon,tue,wed,thu,fri,sat,sun"); /* 30-c.conf masked */
        ASSERT_EQ(c->reboot_max_attempts, 9);                   /* /usr/lib drop-in over /etc main */
        ASSERT_EQ(c->log_level, LOG_DEBUG);
        ASSERT_OK(config_verify(c));
        rm_rf(root);
}

TEST(root_prefix_with_trailing_slash) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *root = tmpdir_new(), *prefix = NULL;

        free(write_at(root, "etc/nodereboot/nodereboot.conf", "[Lock]\nConcurrency=4\n"));
        prefix = strjoin(root, "/");
        ASSERT_TRUE(prefix);
        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_default(c, prefix));
        ASSERT_EQ(c->concurrency, 4);
        rm_rf(root);
}

TEST(load_file_and_dropins) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *dir = tmpdir_new(), *path = NULL, *missing = NULL, *log = NULL;
        Capture cap;

        path = write_at(dir, "my.conf", "[Lock]\nConcurrency=5\nName=mine\n");
        free(write_at(dir, "my.conf.d/20-b.conf", "[Lock]\nName=second\n"));
        free(write_at(dir, "my.conf.d/10-a.conf", "[Lock]\nName=first\nConcurrency=6\n"));
        free(write_at(dir, "my.conf.d/30-c.txt", "[Lock]\nName=ignored\n"));
        /* The standard folders are not read: nothing under dir/etc matters here. */
        free(write_at(dir, "nodereboot.conf", "[Lock]\nConcurrency=99\n"));

        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_file(c, path));
        ASSERT_EQ(c->concurrency, 6);
        ASSERT_STREQ(c->lock_name, "second");

        /* Without FILE.d. */
        c = config_free(c);
        ASSERT_OK(config_new(&c));
        free(path);
        path = write_at(dir, "other.conf", "[Lock]\nConcurrency=8\n");
        ASSERT_OK(config_load_file(c, path));
        ASSERT_EQ(c->concurrency, 8);

        /* A missing file is an error naming it. */
        missing = strjoin(dir, "/missing.conf");
        ASSERT_TRUE(missing);
        capture_begin(&cap);
        ASSERT_ERROR(config_load_file(c, missing), ENOENT);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, missing);
        rm_rf(dir);
}

TEST(every_key) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL;

        ASSERT_OK(load_text(
                "# a comment\n"
                "; another comment\n"
                "[Node]\n"
                "Name=node-a.example.com\n"
                "[Kubernetes]\n"
                "Kubeconfig=/var/lib/nodereboot/kubeconfig\n"
                "Context=prod\n"
                "[Sentinel]\n"
                "Path=/run/reboot-needed\n"
                "SettleSec=2s\n"
                "[Lock]\n"
                "Namespace=nodereboot-system\n"
                "Name=pool-a\n"
                "Concurrency=1000\n"
                "TTLSec=1h\n"
                "ReleaseDelaySec=90s\n"
                "RecheckSec=2min\n"
                "[Window]\n"
                "Days=sat,sun\n"
                "StartTime=02:00\n"
                "EndTime=04:30\n"
                "TimeZone=Europe/Berlin\n"
                "[Drain]\n"
                "TimeoutSec=infinity\n"
                "GracePeriodSec=0\n"
                "ForceReboot=on\n"
                "DelaySec=15\n"
                "PodSelector=app!=critical,tier in (web, api)\n"
                "SkipWaitForDeleteTimeoutSec=5min\n"
                "[Reboot]\n"
                "MaxAttempts=100\n"
                "TimeoutSec=20min\n"
                "DelaySec=500ms\n"
                "RetrySec=1h 30min\n"
                "[Blockers]\n"
                "PodSelector=app=backup\n"
                "PodSelector=job-name, !skip\n"
                "PackageManagerLocks=/var/lib/rpm/.rpm.lock  /run/lock/x\n"
                "[Marks]\n"
                "AnnotateNodes=false\n"
                "PreRebootLabels=nodereboot.io/rebooting=true example.com/x=\n"
                "PostRebootLabels=nodereboot.io/rebooting=false\n"
                "PreferNoScheduleTaint=nodereboot.io/reboot-pending\n"
                "[Daemon]\n"
                "LogLevel=warning\n"
                "[Sentinel]\n"
                "Command=/usr/bin/needs-restarting -r\n"
                "RequiredExitStatus=100\n"
                "CommandIntervalSec=30min\n"
                "CommandTimeoutSec=90s\n"
                "[Blockers]\n"
                "PrometheusURL=https://prometheus.example.com:9090/prom\n"
                "PrometheusCAFile=/etc/ssl/prom-ca.pem\n"
                "PrometheusBearerTokenFile=/run/credentials/nodereboot.service/prom-token\n"
                "PrometheusBasicAuthFile=/etc/nodereboot/prom-basic\n"
                "AlertFilterRegex=^(Watchdog|InfoInhibitor)$\n"
                "AlertFilterMatchOnly=yes\n"
                "AlertFiringOnly=yes\n"
                "[Notify]\n"
                "URL=slack://T0/B0/X\n"
                "URL=https://alerts.example.com/hook\n"
                "URLFile=/run/credentials/nodereboot.service/notify-url\n"
                "Type=webhook\n"
                "CAFile=/etc/ssl/ca.pem\n"
                "Events=failed blocked-too-long\n"
                "BlockedTooLongSec=30min\n"
                "TimeoutSec=5s\n"
                "Retries=0\n"
                "MessageDrainStart=Draining %node%\n"
                "MessageReboot=R %reason%\n"
                "MessageBackInService=B\n"
                "MessageFailed=F %error%\n"
                "MessageBlockedTooLong=W %waiting% 100%%\n"
                "[Metrics]\n"
                "TextfilePath=/var/lib/prometheus/node-exporter/nodereboot.prom\n"
                "ListenAddress=[::1]:9798\n"
                "KuredCompatible=yes\n",
                &c, &log, NULL));

        ASSERT_STREQ(log, "");
        ASSERT_STREQ(c->node_name, "node-a.example.com");
        ASSERT_STREQ(c->kubeconfig, "/var/lib/nodereboot/kubeconfig");
        ASSERT_STREQ(c->context, "prod");
        ASSERT_STREQ(c->sentinel_path, "/run/reboot-needed");
        ASSERT_STREQ(c->lock_namespace, "nodereboot-system");
        ASSERT_STREQ(c->lock_name, "pool-a");
        ASSERT_EQ(c->concurrency, 1000);
        ASSERT_EQ(c->lock_ttl_usec, USEC_PER_HOUR);
        ASSERT_EQ(c->lock_release_delay_usec, 90 * USEC_PER_SEC);
        ASSERT_EQ(c->lock_recheck_usec, 2 * USEC_PER_MINUTE);
        ASSERT_STREQ(c->window_days, "sat,sun");
        ASSERT_STREQ(c->window_start, "02:00");
        ASSERT_STREQ(c->window_end, "04:30");
        ASSERT_STREQ(c->window_time_zone, "Europe/Berlin");
        ASSERT_TRUE(c->drain_timeout_usec == USEC_INFINITY);
        ASSERT_EQ(c->drain_grace_period_sec, 0);
        ASSERT_TRUE(c->force_reboot);
        ASSERT_EQ(c->drain_delay_usec, 15 * USEC_PER_SEC);
        ASSERT_STREQ(c->drain_pod_selector, "app!=critical,tier in (web, api)");
        ASSERT_EQ(c->skip_wait_for_delete_usec, 5 * USEC_PER_MINUTE);
        ASSERT_EQ(c->reboot_max_attempts, 100);
        ASSERT_EQ(c->reboot_timeout_usec, 20 * USEC_PER_MINUTE);
        ASSERT_EQ(c->reboot_delay_usec, 500 * USEC_PER_MSEC);
        ASSERT_EQ(c->retry_usec, 90 * USEC_PER_MINUTE);
        ASSERT_EQ(strv_len(c->blocking_pod_selectors), 2);
        ASSERT_STREQ(c->blocking_pod_selectors[0], "app=backup");
        ASSERT_STREQ(c->blocking_pod_selectors[1], "job-name, !skip");
        ASSERT_EQ(c->sentinel_settle_usec, 2 * USEC_PER_SEC);
        ASSERT_EQ(strv_len(c->package_manager_locks), 2);
        ASSERT_STREQ(c->package_manager_locks[0], "/var/lib/rpm/.rpm.lock");
        ASSERT_STREQ(c->package_manager_locks[1], "/run/lock/x");
        ASSERT_FALSE(c->annotate_nodes);
        ASSERT_EQ(strv_len(c->pre_reboot_labels), 2);
        ASSERT_STREQ(c->pre_reboot_labels[0], "nodereboot.io/rebooting=true");
        ASSERT_STREQ(c->pre_reboot_labels[1], "example.com/x=");
        ASSERT_EQ(strv_len(c->post_reboot_labels), 1);
        ASSERT_STREQ(c->post_reboot_labels[0], "nodereboot.io/rebooting=false");
        ASSERT_STREQ(c->prefer_no_schedule_taint, "nodereboot.io/reboot-pending");
        ASSERT_EQ(c->log_level, LOG_WARNING);
        ASSERT_STREQ(c->sentinel_command, "/usr/bin/needs-restarting -r");
        ASSERT_EQ(c->sentinel_required_status, 100);
        ASSERT_EQ(c->sentinel_command_interval_usec, 30 * USEC_PER_MINUTE);
        ASSERT_EQ(c->sentinel_command_timeout_usec, 90 * USEC_PER_SEC);
        ASSERT_STREQ(c->prometheus_url, "https://prometheus.example.com:9090/prom");
        ASSERT_STREQ(c->prometheus_ca_file, "/etc/ssl/prom-ca.pem");
        ASSERT_STREQ(c->prometheus_bearer_token_file, "/run/credentials/nodereboot.service/prom-token");
        ASSERT_STREQ(c->prometheus_basic_auth_file, "/etc/nodereboot/prom-basic");
        ASSERT_STREQ(c->alert_filter_regex, "^(Watchdog|InfoInhibitor)$");
        ASSERT_TRUE(c->alert_filter_match_only);
        ASSERT_TRUE(c->alert_firing_only);
        ASSERT_EQ(strv_len(c->notify_urls), 2);
        ASSERT_STREQ(c->notify_urls[0], "slack://T0/B0/X");
        ASSERT_STREQ(c->notify_url_files[0], "/run/credentials/nodereboot.service/notify-url");
        ASSERT_EQ(c->notify_type, NOTIFY_TYPE_WEBHOOK);
        ASSERT_STREQ(c->notify_ca_file, "/etc/ssl/ca.pem");
        ASSERT_EQ(c->notify_events, (1U << NOTIFY_FAILED) | (1U << NOTIFY_BLOCKED_TOO_LONG));
        ASSERT_EQ(c->notify_blocked_too_long_usec, 30 * USEC_PER_MINUTE);
        ASSERT_EQ(c->notify_timeout_usec, 5 * USEC_PER_SEC);
        ASSERT_EQ(c->notify_retries, 0);
        ASSERT_STREQ(c->notify_templates[NOTIFY_DRAIN_START], "Draining %node%");
        ASSERT_STREQ(c->notify_templates[NOTIFY_BLOCKED_TOO_LONG], "W %waiting% 100%%");
        ASSERT_STREQ(c->metrics_textfile_path, "/var/lib/prometheus/node-exporter/nodereboot.prom");
        ASSERT_STREQ(c->metrics_listen_address, "[::1]:9798");
        ASSERT_TRUE(c->metrics_kured_compatible);
        /* Concurrency=1000 makes the longest slot "pool-a-999": fine. */
        ASSERT_OK(config_verify(c));
}

TEST(value_forms) {
        static const struct {
                const char *text;
                size_t offset;
                usec_t expected;
        } spans[] = {
                { "[Lock]\nTTLSec=90\n", offsetof(Config, lock_ttl_usec), 90 * USEC_PER_SEC },
                { "[Lock]\nTTLSec=10s\n", offsetof(Config, lock_ttl_usec), 10 * USEC_PER_SEC },
                { "[Lock]\nTTLSec=15min\n", offsetof(Config, lock_ttl_usec), 15 * USEC_PER_MINUTE },
                { "[Lock]\nReleaseDelaySec=0\n", offsetof(Config, lock_release_delay_usec), 0 },
                { "[Drain]\nTimeoutSec=2h\n", offsetof(Config, drain_timeout_usec), 2 * USEC_PER_HOUR },
                { "[Drain]\nTimeoutSec=0\n", offsetof(Config, drain_timeout_usec), 0 },
        };
        static const struct {
                const char *value;
                bool expected;
        } bools[] = {
                { "yes", true }, { "no", false }, { "true", true }, { "false", false }, { "on", true },
                { "off", false }, { "1", true }, { "0", false }, { "YES", true },
        };

        for (size_t i = 0; i < ELEMENTSOF(spans); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *log = NULL;

                ASSERT_OK(load_text(spans[i].text, &c, &log, NULL));
                ASSERT_EQ(*(usec_t *) ((uint8_t *) c + spans[i].offset), spans[i].expected);
        }

        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *log = NULL, *text = NULL;

                text = strdup_printf("[Drain]\nForceReboot=%s\n[Marks]\nAnnotateNodes=%s\n",
                                     bools[i].value, bools[i].value);
                ASSERT_TRUE(text);
                ASSERT_OK(load_text(text, &c, &log, NULL));
                ASSERT_EQ(c->force_reboot, bools[i].expected);
                ASSERT_EQ(c->annotate_nodes, bools[i].expected);
        }

        {
                /* Indented lines are assignments of their own, not continuations; whitespace around
                 * '=' is dropped; CRLF line ends work. */
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *log = NULL;

                ASSERT_OK(load_text("[Lock]\n  Name = indented  \r\n\tConcurrency=7\r\n", &c, &log, NULL));
                ASSERT_STREQ(c->lock_name, "indented");
                ASSERT_EQ(c->concurrency, 7);
        }
        {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *log = NULL;

                /* An explicit node name is not lower-cased behind the user's back: it must be valid. */
                ASSERT_ERROR(load_text("[Node]\nName=Upper-Is-Not-Lowered\n", &c, &log, NULL), EINVAL);
                c = config_free(c);
                free(log);
                log = NULL;
                ASSERT_OK(load_text("[Daemon]\nLogLevel=err\n[Drain]\nGracePeriodSec=300\n", &c, &log, NULL));
                ASSERT_EQ(c->log_level, LOG_ERR);
                ASSERT_EQ(c->drain_grace_period_sec, 300);
        }
}

TEST(bad_values) {
        /* Each value is on line 3 of its file; the message must name file, line, key and value. */
        static const struct {
                const char *section, *key, *value, *expected;
        } bad[] = {
                { "Node", "Name", "Node_A", "expected a DNS-1123 subdomain" },
                { "Node", "Name", "-node", "DNS-1123" },
                { "Kubernetes", "Kubeconfig", "relative/kubeconfig", "expected an absolute path" },
                { "Sentinel", "Path", "reboot-required", "expected an absolute path" },
                { "Lock", "Namespace", "Kube-System", "expected a DNS-1123 label" },
                { "Lock", "Namespace", "a.b", "DNS-1123 label" },
                { "Lock", "Name", "bad_name", "expected a DNS-1123 subdomain" },
                { "Lock", "Name", "a234567890123456789012345678901234567890123456789012345678901x",
                  "at most 61 characters" },
                { "Lock", "Concurrency", "abc", "expected an integer between 1 and 1000" },
                { "Lock", "Concurrency", "0", "expected an integer between 1 and 1000" },
                { "Lock", "Concurrency", "1001", "expected an integer between 1 and 1000" },
                { "Lock", "Concurrency", "-1", "expected an integer between 1 and 1000" },
                { "Lock", "Concurrency", "99999999999999999999", "between 1 and 1000" },
                { "Lock", "TTLSec", "9s", "at least 10s" },
                { "Lock", "TTLSec", "infinity", "at least 10s" },
                { "Lock", "TTLSec", "soon", "at least 10s" },
                { "Lock", "ReleaseDelaySec", "5 parsecs", "expected a time span" },
                { "Lock", "ReleaseDelaySec", "infinity", "expected a time span" },
                { "Lock", "RecheckSec", "0", "at least 1s" },
                { "Drain", "TimeoutSec", "forever", "or infinity" },
                { "Drain", "GracePeriodSec", "-5", "expected an integer >= 0" },
                { "Drain", "GracePeriodSec", "30s", "expected an integer >= 0" },
                { "Drain", "ForceReboot", "maybe", "expected a boolean" },
                { "Drain", "PodSelector", "app in (web", "expected a label selector" },
                { "Drain", "DelaySec", "1x", "expected a time span" },
                { "Drain", "SkipWaitForDeleteTimeoutSec", "1 2 3 x", "expected a time span" },
                { "Reboot", "MaxAttempts", "0", "expected an integer between 1 and 100" },
                { "Reboot", "MaxAttempts", "101", "expected an integer between 1 and 100" },
                { "Reboot", "TimeoutSec", "infinity", "expected a time span" },
                { "Reboot", "RetrySec", "1y", "expected a time span" },
                { "Reboot", "DelaySec", "-1s", "expected a time span" },
                { "Blockers", "PodSelector", "=x", "expected a label selector" },
                { "Recovery", "WaitForPodsSelector", "app in (csi", "expected a label selector" },
                { "Recovery", "TimeoutSec", "soon", "or 0 or infinity for no timeout" },
                { "Blockers", "PackageManagerLocks", "/ok relative/lock", "space-separated absolute paths" },
                { "Sentinel", "SettleSec", "2h", "at most 1h" },
                { "Marks", "AnnotateNodes", "2", "expected a boolean" },
                { "Marks", "PreRebootLabels", "novalue", "key=value labels" },
                { "Marks", "PreRebootLabels", "a=1 -bad=2", "key=value labels" },
                { "Marks", "PostRebootLabels", "k=a=b", "key=value labels" },
                { "Marks", "PostRebootLabels", "k=-bad", "key=value labels" },
                { "Marks", "PostRebootLabels", "Bad_Prefix/k=v", "key=value labels" },
                { "Marks", "PreferNoScheduleTaint", "bad key", "expected a taint key" },
                { "Daemon", "LogLevel", "loud", "expected a log level" },
                { "Sentinel", "Command", "needs-restarting 'unterminated", "expected a command line" },
                { "Sentinel", "RequiredExitStatus", "0", "between 1 and 255" },
                { "Sentinel", "CommandIntervalSec", "5s", "at least 10s" },
                { "Sentinel", "CommandTimeoutSec", "2h", "between 1s and 1h" },
                { "Blockers", "PrometheusCAFile", "ca.pem", "absolute path" },
                { "Blockers", "AlertFilterRegex", "(Watchdog", "regular expression" },
                { "Blockers", "AlertFiringOnly", "sometimes", "expected a boolean" },
                { "Notify", "Type", "discord", "auto, slack, teams or webhook" },
                { "Notify", "Events", "drain-start rebooted", "among drain-start" },
                { "Notify", "BlockedTooLongSec", "1s", "at least 5s" },
                { "Notify", "Retries", "11", "between 0 and 10" },
                { "Notify", "URLFile", "urls.txt", "absolute path" },
                { "Notify", "MessageReboot", "Rebooting %hostname%", "placeholders among" },
                { "Metrics", "ListenAddress", "localhost:9798", "numeric IPv4 address" },
                { "Metrics", "ListenAddress", "127.0.0.1:0", "numeric IPv4 address" },
                { "Metrics", "TextfilePath", "nodereboot.prom", "absolute path" },
                { "Metrics", "KuredCompatible", "2", "expected a boolean" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *text = NULL, *log = NULL, *path = NULL, *where = NULL;

                text = strdup_printf("# line 1\n[%s]\n%s=%s\n[Lock]\nConcurrency=2\n",
                                     bad[i].section, bad[i].key, bad[i].value);
                ASSERT_TRUE(text);
                ASSERT_ERROR(load_text(text, &c, &log, &path), EINVAL);
                where = strdup_printf("%s:3: [%s] %s=%s: ", path, bad[i].section, bad[i].key, bad[i].value);
                ASSERT_TRUE(where);
                ASSERT_CONTAINS(log, where);
                ASSERT_CONTAINS(log, bad[i].expected);
                /* One line; reading stopped at the error, so Concurrency=2 was not applied. */
                ASSERT_EQ(strchr(log, '\n') - log + 1, (long) strlen(log));
                ASSERT_EQ(c->concurrency, 1);
        }
}

/* A notification URL is a secret: a bad one is named by file, line and key, never shown. */
TEST(bad_notify_url_not_shown) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL, *path = NULL, *where = NULL;

        ASSERT_ERROR(load_text("# line 1\n[Notify]\nURL=ftp://hooks.example.com/SECRET-TOKEN\n", &c, &log, &path),
                     EINVAL);
        where = strdup_printf("%s:3: [Notify] URL=: expected a notification URL", path);
        ASSERT_CONTAINS(log, where);
        ASSERT_TRUE(!strstr(log, "SECRET-TOKEN"));
}

/* A Prometheus URL may hold a password: a bad one is not shown either. */
TEST(bad_prometheus_url_not_shown) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL, *path = NULL;

        ASSERT_ERROR(load_text("[Blockers]\nPrometheusURL=prometheus:PASSWORD@host\n", &c, &log, &path), EINVAL);
        ASSERT_CONTAINS(log, "[Blockers] PrometheusURL=: expected an http:// or https:// URL");
        ASSERT_TRUE(!strstr(log, "PASSWORD"));
}

TEST(bad_value_keeps_old_list) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL;

        /* A bad item leaves the list as it was: all or nothing per assignment. */
        ASSERT_ERROR(load_text("[Marks]\nPreRebootLabels=a=1\nPreRebootLabels=b=2 !!!\n", &c, &log, NULL), EINVAL);
        ASSERT_EQ(strv_len(c->pre_reboot_labels), 1);
        ASSERT_STREQ(c->pre_reboot_labels[0], "a=1");
}

TEST(unknown_key_warns_and_continues) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL, *path = NULL, *expected = NULL;

        ASSERT_OK(load_text("[Lock]\nName=x\n\n\n\n\nFoo=bar\nConcurrency=4\n", &c, &log, &path));
        expected = strdup_printf("%s:7: unknown key [Lock] Foo=, ignoring", path);
        ASSERT_TRUE(expected);
        ASSERT_CONTAINS(log, expected);
        ASSERT_EQ(c->concurrency, 4);
        ASSERT_STREQ(c->lock_name, "x");

        /* Keys are case-sensitive, as in systemd. */
        c = config_free(c);
        free(log);
        log = NULL;
        ASSERT_OK(load_text("[Lock]\nconcurrency=4\n", &c, &log, NULL));
        ASSERT_CONTAINS(log, ":2: unknown key [Lock] concurrency=, ignoring");
        ASSERT_EQ(c->concurrency, 1);
}

TEST(unknown_section_fails) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL, *path = NULL, *expected = NULL;

        ASSERT_ERROR(load_text("[Lock]\nConcurrency=2\n[Lokc]\nConcurrency=3\n", &c, &log, &path), EINVAL);
        expected = strdup_printf("%s:4: unknown section [Lokc]", path);
        ASSERT_TRUE(expected);
        ASSERT_CONTAINS(log, expected);

        c = config_free(c);
        free(log);
        log = NULL;
        ASSERT_ERROR(load_text("Concurrency=2\n", &c, &log, NULL), EINVAL);
        ASSERT_CONTAINS(log, ":1: assignment Concurrency= outside of any [Section]");
}

TEST(syntax_errors) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL, *path = NULL, *expected = NULL, *text = NULL, *longline = NULL;

        ASSERT_ERROR(load_text("[Lock]\nConcurrency=2\njust words\n", &c, &log, &path), EINVAL);
        expected = strdup_printf("%s:3: cannot parse line", path);
        ASSERT_TRUE(expected);
        ASSERT_CONTAINS(log, expected);

        c = config_free(c);
        free(log);
        log = NULL;
        ASSERT_ERROR(load_text("[Lock\nConcurrency=2\n", &c, &log, NULL), EINVAL);
        ASSERT_CONTAINS(log, ":1: cannot parse line");

        /* A line too long for inih's buffer is an error, not silently split in two. */
        longline = malloc(400);
        ASSERT_TRUE(longline);
        memset(longline, 'a', 399);
        longline[399] = 0;
        text = strdup_printf("[Drain]\nPodSelector=%s\n", longline);
        ASSERT_TRUE(text);
        c = config_free(c);
        free(log);
        log = NULL;
        ASSERT_ERROR(load_text(text, &c, &log, NULL), EINVAL);
        ASSERT_CONTAINS(log, ":2: line too long");
        ASSERT_TRUE(c->drain_pod_selector == NULL);

        /* NUL bytes. */
        {
                _cleanup_free_ char *dir = tmpdir_new(), *p = NULL;
                Capture cap;

                p = strjoin(dir, "/nul.conf");
                ASSERT_TRUE(p);
                ASSERT_OK(write_file_atomic(p, "[Lock]\nName=a\0b\n", 16, 0644));
                c = config_free(c);
                ASSERT_OK(config_new(&c));
                capture_begin(&cap);
                ASSERT_ERROR(config_load_file(c, p), EINVAL);
                free(log);
                log = capture_end(&cap);
                ASSERT_CONTAINS(log, "NUL byte");
                rm_rf(dir);
        }
}

TEST(list_semantics) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *dir = tmpdir_new(), *path = NULL;

        path = write_at(dir, "n.conf",
                        "[Marks]\n"
                        "PreRebootLabels=a=1 b=2\n"
                        "PreRebootLabels=c=3\n"
                        "PostRebootLabels=x=1\n"
                        "PostRebootLabels=\n"                  /* reset */
                        "PostRebootLabels=y=2\n"
                        "[Blockers]\n"
                        "PodSelector=app=one\n"
                        "PodSelector=app=two\n");
        /* Drop-ins append to and reset lists set by the main file. */
        free(write_at(dir, "n.conf.d/10.conf", "[Marks]\nPreRebootLabels=d=4\n[Blockers]\nPodSelector=\n"));
        free(write_at(dir, "n.conf.d/20.conf", "[Blockers]\nPodSelector=app=three\n"));

        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_file(c, path));
        ASSERT_EQ(strv_len(c->pre_reboot_labels), 4);
        ASSERT_STREQ(c->pre_reboot_labels[0], "a=1");
        ASSERT_STREQ(c->pre_reboot_labels[1], "b=2");
        ASSERT_STREQ(c->pre_reboot_labels[2], "c=3");
        ASSERT_STREQ(c->pre_reboot_labels[3], "d=4");
        ASSERT_EQ(strv_len(c->post_reboot_labels), 1);
        ASSERT_STREQ(c->post_reboot_labels[0], "y=2");
        ASSERT_EQ(strv_len(c->blocking_pod_selectors), 1);
        ASSERT_STREQ(c->blocking_pod_selectors[0], "app=three");

        /* Resetting to empty leaves NULL, the default. */
        c = config_free(c);
        ASSERT_OK(config_new(&c));
        free(path);
        path = write_at(dir, "m.conf", "[Marks]\nPreRebootLabels=a=1\nPreRebootLabels=\n");
        ASSERT_OK(config_load_file(c, path));
        ASSERT_TRUE(c->pre_reboot_labels == NULL);
        rm_rf(dir);
}

TEST(scalar_reset) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *dir = tmpdir_new(), *path = NULL, *host = hostname_lower();

        path = write_at(dir, "n.conf",
                        "[Node]\nName=custom\n"
                        "[Kubernetes]\nContext=prod\nKubeconfig=/x\n"
                        "[Lock]\nConcurrency=5\nTTLSec=1h\nName=other\n"
                        "[Drain]\nGracePeriodSec=30\nPodSelector=a=b\nForceReboot=yes\n"
                        "[Window]\nDays=mon\n"
                        "[Marks]\nPreferNoScheduleTaint=t\n"
                        "[Daemon]\nLogLevel=debug\n");
        free(write_at(dir, "n.conf.d/reset.conf",
                      "[Node]\nName=\n"
                      "[Kubernetes]\nContext=\nKubeconfig=\n"
                      "[Lock]\nConcurrency=\nTTLSec=\nName=\n"
                      "[Drain]\nGracePeriodSec=\nPodSelector=\nForceReboot=\n"
                      "[Window]\nDays=\n"
                      "[Marks]\nPreferNoScheduleTaint=\n"
                      "[Daemon]\nLogLevel=\n"));

        ASSERT_OK(config_new(&c));
        ASSERT_OK(config_load_file(c, path));
        ASSERT_STREQ(c->node_name, host);
        ASSERT_TRUE(c->context == NULL);
        ASSERT_STREQ(c->kubeconfig, "/etc/nodereboot/kubeconfig");
        ASSERT_EQ(c->concurrency, 1);
        ASSERT_EQ(c->lock_ttl_usec, 30 * USEC_PER_MINUTE);
        ASSERT_STREQ(c->lock_name, "nodereboot");
        ASSERT_EQ(c->drain_grace_period_sec, -1);
        ASSERT_TRUE(c->drain_pod_selector == NULL);
        ASSERT_FALSE(c->force_reboot);
        ASSERT_STREQ(c->window_days, "mon,tue,wed,thu,fri,sat,sun");
        ASSERT_TRUE(c->prefer_no_schedule_taint == NULL);
        ASSERT_EQ(c->log_level, LOG_INFO);
        rm_rf(dir);
}

TEST(verify) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL;
        Capture cap;

        /* 61 characters: "-0" to "-9" fit in 63, "-10" does not. */
        static const char name61[] = "a234567890123456789012345678901234567890123456789012345678901";

        ASSERT_EQ(strlen(name61), 61);
        ASSERT_OK(config_new(&c));
        ASSERT_OK(free_and_strdup(&c->lock_name, name61));
        c->concurrency = 10;
        ASSERT_OK(config_verify(c));
        c->concurrency = 11;
        capture_begin(&cap);
        ASSERT_ERROR(config_verify(c), EINVAL);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, "[Lock] Name=");
        ASSERT_CONTAINS(log, "Concurrency=11");

        /* The host name default is checked here, naming the key. */
        c->concurrency = 1;
        ASSERT_OK(free_and_strdup(&c->node_name, "under_score"));
        capture_begin(&cap);
        ASSERT_ERROR(config_verify(c), EINVAL);
        free(log);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, "[Node] Name=under_score");

        ASSERT_OK(free_and_strdup(&c->node_name, "ok"));
        c->lock_ttl_usec = 9 * USEC_PER_SEC;
        capture_begin(&cap);
        ASSERT_ERROR(config_verify(c), EINVAL);
        free(log);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, "[Lock] TTLSec=");
        c->lock_ttl_usec = 10 * USEC_PER_SEC;
        ASSERT_OK(config_verify(c));
}

TEST(lock_name_length_across_files) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *log = NULL;

        /* Parse time accepts the 61-character name; verify judges it with the final Concurrency=. */
        ASSERT_OK(load_text("[Lock]\nName=a234567890123456789012345678901234567890123456789012345678901\n"
                            "Concurrency=100\n", &c, &log, NULL));
        ASSERT_ERROR(config_verify(c), EINVAL);
}

TEST(proxy) {
        _cleanup_(config_freep) Config *c = NULL, *d = NULL, *e = NULL;
        _cleanup_free_ char *log = NULL, *log2 = NULL, *log3 = NULL;

        /* unset by default: the environment decides */
        ASSERT_OK(config_new(&c));
        ASSERT_TRUE(!c->proxy && !c->no_proxy);
        c = config_free(c);

        ASSERT_OK(load_text("[Kubernetes]\nProxy=http://u:pw@proxy.example.com:3128\n"
                            "NoProxy=localhost, 127.0.0.0/8,.cluster.local\n", &c, &log, NULL));
        ASSERT_STREQ(c->proxy, "http://u:pw@proxy.example.com:3128");
        ASSERT_STREQ(c->no_proxy, "localhost, 127.0.0.0/8,.cluster.local");

        /* an empty assignment resets to unset */
        ASSERT_OK(load_text("[Kubernetes]\nProxy=http://p:1\nProxy=\nNoProxy=*\nNoProxy=\n", &d, &log2, NULL));
        ASSERT_TRUE(!d->proxy && !d->no_proxy);

        /* a bad URL is refused without repeating it: it may hold a password */
        ASSERT_ERROR(load_text("[Kubernetes]\nProxy=ftp://u:secret-pw@proxy:21\n", &e, &log3, NULL), EINVAL);
        ASSERT_TRUE(strstr(log3, "[Kubernetes] Proxy=: expected a proxy URL"));
        ASSERT_TRUE(!strstr(log3, "secret-pw"));
}

int main(void) {
        RUN(defaults);
        RUN(empty_root_keeps_defaults);
        RUN(folders_and_dropins);
        RUN(root_prefix_with_trailing_slash);
        RUN(load_file_and_dropins);
        RUN(every_key);
        RUN(value_forms);
        RUN(bad_values);
        RUN(bad_notify_url_not_shown);
        RUN(bad_prometheus_url_not_shown);
        RUN(bad_value_keeps_old_list);
        RUN(unknown_key_warns_and_continues);
        RUN(unknown_section_fails);
        RUN(syntax_errors);
        RUN(list_semantics);
        RUN(scalar_reset);
        RUN(verify);
        RUN(lock_name_length_across_files);
        RUN(proxy);
        return 0;
}
