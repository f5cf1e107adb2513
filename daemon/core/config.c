/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "window.h"
#include "fileio.h"
#include "label-selector.h"
#include "log.h"
#include "notify-message.h"
#include "parse-util.h"
#include "proxy.h"
#include "regex-util.h"
#include "string-util.h"

#define CONFIG_FILE_MAX (1024U * 1024U)
#define CONFIG_DROPINS_MAX 1024U
#define LOCK_NAME_MAX 63U          /* a slot name "<Name>-<i>" must fit in this */

/* Where the configuration lives, lowest priority first. */
static const char *const config_dirs[] = {
        "/usr/lib/nodereboot/",
        "/etc/nodereboot/",
        "/run/nodereboot/",
};

typedef struct ConfigItem ConfigItem;

/* Parses value into field. An empty value means "reset": the dispatcher replaces it with the item's
 * default when there is one, so parsers only see "" for items whose default is "unset". */
typedef int (*ConfigParseFunc)(const ConfigItem *item, const char *value, void *field);

struct ConfigItem {
        const char *section;
        const char *key;
        ConfigParseFunc parse;
        size_t offset;
        const char *def;                /* default in configuration syntax; NULL: unset */
        unsigned long long min, max;    /* bounds for numbers and time spans */
        const char *expected;           /* the accepted form, for error messages */
};

/* --- Kubernetes name rules --------------------------------------------------------------------- */

static bool char_is_dns(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool char_is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
static bool dns_label_is_valid_n(const char *s, size_t n) {
        if (n == 0 || n > 63)
                return false;
        if (!char_is_dns(s[0]) || !char_is_dns(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_is_dns(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool dns_label_is_valid(const char *s) {
        return dns_label_is_valid_n(s, strlen(s));
}

/* RFC 1123 subdomain: labels joined by '.', at most 253 characters. */
static bool dns_subdomain_is_valid_n(const char *s, size_t n) {
        size_t start = 0;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i <= n; i++)
                if (i == n || s[i] == '.') {
                        if (!dns_label_is_valid_n(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        return true;
}

static bool dns_subdomain_is_valid(const char *s) {
        return dns_subdomain_is_valid_n(s, strlen(s));
}

/* The name part of a qualified name, and a label value when non-empty:
 * [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters. */
static bool label_name_is_valid_n(const char *s, size_t n) {
        if (n == 0 || n > 63)
                return false;
        if (!char_is_alnum(s[0]) || !char_is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_is_alnum(s[i]) && !strchr("-_.", s[i]))
                        return false;
        return true;
}

/* A label key: an optional DNS subdomain prefix and '/', then a name. */
static bool label_key_is_valid_n(const char *s, size_t n) {
        const char *slash = memchr(s, '/', n);

        if (!slash)
                return label_name_is_valid_n(s, n);
        return dns_subdomain_is_valid_n(s, (size_t) (slash - s)) &&
                label_name_is_valid_n(slash + 1, n - (size_t) (slash - s) - 1);
}

static bool label_value_is_valid(const char *s) {
        return s[0] == 0 || label_name_is_valid_n(s, strlen(s));
}

/* "key=value" with a valid key and value; the value may be empty. */
static bool label_assignment_is_valid(const char *s) {
        const char *eq = strchr(s, '=');

        return eq && label_key_is_valid_n(s, (size_t) (eq - s)) && label_value_is_valid(eq + 1);
}

/* --- value parsers ----------------------------------------------------------------------------- */

static int config_parse_string(const ConfigItem *item, const char *value, void *field) {
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_path(const ConfigItem *item, const char *value, void *field) {
        if (value[0] != '/')
                return -EINVAL;
        return free_and_strdup(field, value);
}

/* One URL per assignment, appended; "" empties the list. Checked now, never echoed (secret). */
static int config_parse_notify_url(const ConfigItem *item, const char *value, void *field) {
        _cleanup_free_ char *post = NULL;
        char ***l = field;
        NotifyType t;
        int r;

        if (isempty(value)) {
                *l = strv_free(*l);
                return 0;
        }
        r = notify_resolve_url(value, NOTIFY_TYPE_AUTO, &t, &post);
        if (post)
                explicit_bzero(post, strlen(post));
        if (r < 0)
                return r;
        if (strv_length(*l) >= CONFIG_DROPINS_MAX)
                return -E2BIG;
        return strv_extend(l, value);
}

/* One absolute path per assignment, appended; "" empties the list. */
static int config_parse_path_append(const ConfigItem *item, const char *value, void *field) {
        char ***l = field;

        if (isempty(value)) {
                *l = strv_free(*l);
                return 0;
        }
        if (value[0] != '/')
                return -EINVAL;
        if (strv_length(*l) >= CONFIG_DROPINS_MAX)
                return -E2BIG;
        return strv_extend(l, value);
}

static int config_parse_notify_type(const ConfigItem *item, const char *value, void *field) {
        NotifyType t = notify_type_from_string(value);

        if (t < 0)
                return -EINVAL;
        *(int *) field = t;
        return 0;
}

static int config_parse_notify_events(const ConfigItem *item, const char *value, void *field) {
        _cleanup_free_ char *copy = strdup(value);
        unsigned mask = 0;
        char *state = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t,", &state); w; w = strtok_r(NULL, " \t,", &state)) {
                NotifyEvent e = notify_event_from_string(w);

                if (e < 0)
                        return -EINVAL;
                mask |= 1U << e;
        }
        *(unsigned *) field = mask;
        return 0;
}

static int config_parse_template(const ConfigItem *item, const char *value, void *field) {
        if (!isempty(value) && notify_template_check(value, NULL) < 0)
                return -EINVAL;
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

/* Split now so that --check-config finds an unterminated quote; kept as written. */
static int config_parse_command(const ConfigItem *item, const char *value, void *field) {
        _cleanup_strv_free_ char **argv = NULL;

        if (!isempty(value) && strv_split_command(value, &argv) < 0)
                return -EINVAL;
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_http_url(const ConfigItem *item, const char *value, void *field) {
        if (!isempty(value)) {
                if (!startswith(value, "http://") && !startswith(value, "https://"))
                        return -EINVAL;
                for (const char *p = value; *p; p++)
                        if ((unsigned char) *p <= ' ' || *p == 0x7f)
                                return -EINVAL;
        }
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

/* Compiled now so that --check-config finds a bad one. */
static int config_parse_regex(const ConfigItem *item, const char *value, void *field) {
        regex_t re;

        if (!isempty(value)) {
                if (regex_compile(&re, value, REG_NOSUB) < 0)
                        return -EINVAL;
                regfree(&re);
        }
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_optional_path(const ConfigItem *item, const char *value, void *field) {
        if (isempty(value))
                return free_and_strdup(field, NULL);
        return config_parse_path(item, value, field);
}

/* Checked now so that --check-config finds it; a numeric address, never looked up. */
static int config_parse_listen_address(const ConfigItem *item, const char *value, void *field) {
        struct sockaddr_storage a;
        socklen_t n;

        if (!isempty(value) && parse_socket_address(value, &a, &n) < 0)
                return -EINVAL;
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_hostname_default(char **field) {
        char buf[HOST_NAME_MAX + 1] = "";

        /* gethostname() truncates silently on some libcs; the kernel limit is HOST_NAME_MAX. */
        if (gethostname(buf, sizeof buf - 1) < 0)
                return -errno;
        for (char *p = buf; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return free_and_strdup(field, buf);
}

/* Checked now so that --check-config finds a bad URL; kept as written, credentials included. */
static int config_parse_proxy(const ConfigItem *item, const char *value, void *field) {
        if (!isempty(value) && proxy_url_normalize(value, NULL) < 0)
                return -EINVAL;
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

/* NO_PROXY syntax; entries that cannot match anything are ignored when matching, as Go does. Control
 * characters are refused: they would only be typing mistakes. */
static int config_parse_no_proxy(const ConfigItem *item, const char *value, void *field) {
        for (const char *p = value; *p; p++)
                if ((unsigned char) *p < ' ' && *p != '\t')
                        return -EINVAL;
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_node_name(const ConfigItem *item, const char *value, void *field) {
        /* The host name default is checked by config_verify(), which can say where it came from. */
        if (isempty(value))
                return config_parse_hostname_default(field);
        if (!dns_subdomain_is_valid(value))
                return -EINVAL;
        return free_and_strdup(field, value);
}

static int config_parse_dns_label(const ConfigItem *item, const char *value, void *field) {
        if (!dns_label_is_valid(value))
                return -EINVAL;
        return free_and_strdup(field, value);
}

static int config_parse_lock_name(const ConfigItem *item, const char *value, void *field) {
        /* "-0" must fit; config_verify() checks the longest slot name once Concurrency= is known. */
        if (!dns_subdomain_is_valid(value) || strlen(value) > LOCK_NAME_MAX - 2)
                return -EINVAL;
        return free_and_strdup(field, value);
}

static int config_parse_taint_key(const ConfigItem *item, const char *value, void *field) {
        const char *eq;

        /* "key" or "key=value", the same rules as labels. */
        if (!isempty(value)) {
                eq = strchr(value, '=');
                if (eq ? !label_assignment_is_valid(value) : !label_key_is_valid_n(value, strlen(value)))
                        return -EINVAL;
        }
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

static int config_parse_unsigned(const ConfigItem *item, const char *value, void *field) {
        unsigned v;

        if (parse_unsigned(value, &v) < 0 || v < item->min || v > item->max)
                return -EINVAL;
        *(unsigned *) field = v;
        return 0;
}

static int config_parse_timespan(const ConfigItem *item, const char *value, void *field) {
        usec_t v;

        if (parse_timespan(value, &v) < 0)
                return -EINVAL;
        /* max == USEC_INFINITY is how an item says it accepts "infinity". */
        if (v == USEC_INFINITY ? item->max != USEC_INFINITY : (v < item->min || v > item->max))
                return -EINVAL;
        *(usec_t *) field = v;
        return 0;
}

static int config_parse_grace_period(const ConfigItem *item, const char *value, void *field) {
        unsigned long long v;

        if (isempty(value)) {
                *(int64_t *) field = -1;
                return 0;
        }
        if (parse_uint64(value, &v) < 0 || v > INT64_MAX)
                return -EINVAL;
        *(int64_t *) field = (int64_t) v;
        return 0;
}

static int config_parse_bool(const ConfigItem *item, const char *value, void *field) {
        int r;

        r = parse_boolean(value);
        if (r < 0)
                return -EINVAL;
        *(bool *) field = r;
        return 0;
}

static int config_parse_log_level(const ConfigItem *item, const char *value, void *field) {
        int r;

        r = log_level_from_string(value);
        if (r < 0)
                return -EINVAL;
        *(int *) field = r;
        return 0;
}

static int label_selector_check(const char *value) {
        _cleanup_(label_selector_freep) LabelSelector *s = NULL;

        return label_selector_parse(value, &s);
}

static int config_parse_selector(const ConfigItem *item, const char *value, void *field) {
        int r;

        if (!isempty(value)) {
                r = label_selector_check(value);
                if (r < 0)
                        return r;
        }
        return free_and_strdup(field, isempty(value) ? NULL : value);
}

/* One selector per assignment (a selector has its own commas and spaces); "" empties the list. */
static int config_parse_selector_list(const ConfigItem *item, const char *value, void *field) {
        char ***l = field;
        int r;

        if (isempty(value)) {
                *l = strv_free(*l);
                return 0;
        }
        r = label_selector_check(value);
        if (r < 0)
                return r;
        if (strv_length(*l) >= CONFIG_DROPINS_MAX)
                return -E2BIG;
        return strv_extend(l, value);
}

/* Space-separated "k=v" items, each appended as its own list entry. */
static int config_parse_labels(const ConfigItem *item, const char *value, void *field) {
        _cleanup_strv_free_ char **add = NULL;
        _cleanup_free_ char *copy = NULL;
        char ***l = field, **t, *state = NULL;
        size_t n, m;
        int r;

        if (isempty(value)) {
                *l = strv_free(*l);
                return 0;
        }

        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t", &state); w; w = strtok_r(NULL, " \t", &state)) {
                if (!label_assignment_is_valid(w))
                        return -EINVAL;
                r = strv_extend(&add, w);
                if (r < 0)
                        return r;
        }

        /* All or nothing: a bad item leaves the list as it was. */
        n = strv_length(*l);
        m = strv_length(add);
        if (n + m > CONFIG_DROPINS_MAX)
                return -E2BIG;
        t = reallocarray(*l, n + m + 1, sizeof(char *));
        if (!t)
                return -ENOMEM;
        memcpy(t + n, add, (m + 1) * sizeof(char *));
        *l = t;
        add = mfree(add);       /* the strings belong to *l now */
        return 0;
}

/* Space-separated absolute paths; each assignment replaces the list (an empty one restores the
 * default, as for every option). */
static int config_parse_path_list(const ConfigItem *item, const char *value, void *field) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *copy = NULL;
        char *state = NULL;
        int r;

        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t", &state); w; w = strtok_r(NULL, " \t", &state)) {
                if (w[0] != '/')
                        return -EINVAL;
                if (strv_length(l) >= CONFIG_DROPINS_MAX)
                        return -E2BIG;
                r = strv_extend(&l, w);
                if (r < 0)
                        return r;
        }
        strv_free(*(char ***) field);
        *(char ***) field = TAKE_PTR(l);
        return 0;
}

#define ITEM(s, k, p, field, d, lo, hi, e) \
        { s, k, config_parse_##p, offsetof(Config, field), d, lo, hi, e }

#define REGEX_LIMITS \
        "(at most " STRINGIFY(REGEX_PATTERN_MAX) " bytes, counts up to " STRINGIFY(REGEX_INTERVAL_MAX) ", not a++++ or (x{1,100}){1,100})"

static const char timespan_expected[] = "a time span such as 90s, 15min or 1h";
#define TEMPLATE_EXPECTED \
        "a message with placeholders among %node%, %event%, %state%, %reason%, %packages%, %error%, " \
        "%waiting%, %kernel_before%, %kernel_after%, %time%, %since% (%% for a %)"

static const ConfigItem config_items[] = {
        ITEM("Node", "Name", node_name, node_name, NULL, 0, 0,
             "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)"),

        ITEM("Kubernetes", "Kubeconfig", path, kubeconfig, "/etc/nodereboot/kubeconfig", 0, 0,
             "an absolute path"),
        ITEM("Kubernetes", "Context", string, context, NULL, 0, 0, "a context name"),
        ITEM("Kubernetes", "Proxy", proxy, proxy, NULL, 0, 0,
             "a proxy URL such as http://proxy.example.com:3128 (schemes http, https, socks4, socks4a, "
             "socks5, socks5h)"),
        ITEM("Kubernetes", "NoProxy", no_proxy, no_proxy, NULL, 0, 0,
             "a comma-separated list of host names, domains, IP addresses and CIDRs, or *"),

        ITEM("Sentinel", "Path", path, sentinel_path, "/var/run/reboot-required", 0, 0,
             "an absolute path"),
        ITEM("Sentinel", "SettleSec", timespan, sentinel_settle_usec, "10s", 0, USEC_PER_HOUR,
             "a time span of at most 1h, such as 10s"),
        ITEM("Sentinel", "Command", command, sentinel_command, NULL, 0, 0,
             "a command line such as needs-restarting -r (words split at spaces, \"quotes\" and "
             "'quotes' group, no shell), or empty for none"),
        ITEM("Sentinel", "RequiredExitStatus", unsigned, sentinel_required_status, "1", 1, 255,
             "an exit status between 1 and 255"),
        ITEM("Sentinel", "RequiredOutputRegex", regex, sentinel_required_output, NULL, 0, 0,
             "a POSIX extended regular expression such as ^Reboot is required " REGEX_LIMITS),
        ITEM("Sentinel", "CommandIntervalSec", timespan, sentinel_command_interval_usec, "1h", 10 * USEC_PER_SEC,
             USEC_INFINITY - 1, "a time span of at least 10s, such as 1h"),
        ITEM("Sentinel", "CommandTimeoutSec", timespan, sentinel_command_timeout_usec, "5min", USEC_PER_SEC,
             USEC_PER_HOUR, "a time span between 1s and 1h, such as 5min"),

        ITEM("Lock", "Namespace", dns_label, lock_namespace, "kube-system", 0, 0,
             "a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)"),
        ITEM("Lock", "Name", lock_name, lock_name, "nodereboot", 0, 0,
             "a DNS-1123 subdomain of at most 61 characters (slot names are <Name>-<i>)"),
        ITEM("Lock", "Concurrency", unsigned, concurrency, "1", 1, 1000,
             "an integer between 1 and 1000"),
        ITEM("Lock", "TTLSec", timespan, lock_ttl_usec, "30min", 10 * USEC_PER_SEC,
             (usec_t) INT32_MAX * USEC_PER_SEC, "a time span of at least 10s, such as 30min"),
        ITEM("Lock", "ReleaseDelaySec", timespan, lock_release_delay_usec, "0", 0, USEC_INFINITY - 1,
             timespan_expected),
        ITEM("Lock", "RecheckSec", timespan, lock_recheck_usec, "5min", USEC_PER_SEC, USEC_INFINITY - 1,
             "a time span of at least 1s, such as 5min"),
        ITEM("Lock", "Queue", bool, lock_queue, "yes", 0, 0, "a boolean (yes or no)"),
        ITEM("Lock", "QueueNamespace", dns_label, lock_queue_namespace, "nodereboot", 0, 0,
             "a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters)"),

        ITEM("Window", "Days", string, window_days, "mon,tue,wed,thu,fri,sat,sun", 0, 0, "a list of days"),
        ITEM("Window", "StartTime", string, window_start, "00:00", 0, 0, "a time of day"),
        ITEM("Window", "EndTime", string, window_end, "23:59:59", 0, 0, "a time of day"),
        ITEM("Window", "TimeZone", string, window_time_zone, "UTC", 0, 0, "a time zone"),

        ITEM("Drain", "TimeoutSec", timespan, drain_timeout_usec, "30min", 0, USEC_INFINITY,
             "a time span such as 30min, or infinity"),
        ITEM("Drain", "GracePeriodSec", grace_period, drain_grace_period_sec, NULL, 0, 0,
             "an integer >= 0, or empty for each pod's own grace period"),
        ITEM("Drain", "ForceReboot", bool, force_reboot, "no", 0, 0, "a boolean (yes or no)"),
        ITEM("Drain", "DelaySec", timespan, drain_delay_usec, "0", 0, USEC_INFINITY - 1, timespan_expected),
        ITEM("Drain", "PodSelector", selector, drain_pod_selector, NULL, 0, 0,
             "a label selector such as app=web,tier!=db"),
        ITEM("Drain", "SkipWaitForDeleteTimeoutSec", timespan, skip_wait_for_delete_usec, "0",
             0, USEC_INFINITY - 1, timespan_expected),

        ITEM("Reboot", "MaxAttempts", unsigned, reboot_max_attempts, "3", 1, 100,
             "an integer between 1 and 100"),
        ITEM("Reboot", "TimeoutSec", timespan, reboot_timeout_usec, "10min", 0, USEC_INFINITY - 1,
             timespan_expected),
        ITEM("Reboot", "DelaySec", timespan, reboot_delay_usec, "0", 0, USEC_INFINITY - 1, timespan_expected),
        ITEM("Reboot", "RetrySec", timespan, retry_usec, "1h", 0, USEC_INFINITY - 1, timespan_expected),
        ITEM("Reboot", "LoopGuardSec", timespan, loop_guard_usec, "1h", 0, 7 * 24 * USEC_PER_HOUR,
             "a time span of at most 7d, such as 1h, or 0 for no loop guard"),

        ITEM("Recovery", "WaitForPodsSelector", selector, recovery_pod_selector, NULL, 0, 0,
             "a label selector such as app=csi-node,tier!=db, or empty for no health gate"),
        ITEM("Recovery", "TimeoutSec", timespan, recovery_timeout_usec, "10min", 0, USEC_INFINITY,
             "a time span such as 10min, or 0 or infinity for no timeout"),

        ITEM("Blockers", "PodSelector", selector_list, blocking_pod_selectors, NULL, 0, 0,
             "a label selector such as app=web,tier!=db"),
        ITEM("Blockers", "PackageManagerLocks", path_list, package_manager_locks,
             "/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock", 0, 0, "space-separated absolute paths"),
        ITEM("Blockers", "PrometheusURL", http_url, prometheus_url, NULL, 0, 0,
             "an http:// or https:// URL of a Prometheus server reachable from this host, such as http://192.0.2.10:30090"),
        ITEM("Blockers", "PrometheusCAFile", optional_path, prometheus_ca_file, NULL, 0, 0, "an absolute path"),
        ITEM("Blockers", "PrometheusBearerTokenFile", optional_path, prometheus_bearer_token_file, NULL, 0, 0,
             "an absolute path"),
        ITEM("Blockers", "PrometheusBasicAuthFile", optional_path, prometheus_basic_auth_file, NULL, 0, 0,
             "an absolute path"),
        ITEM("Blockers", "AlertFilterRegex", regex, alert_filter_regex, NULL, 0, 0,
             "a POSIX extended regular expression such as ^(Watchdog|InfoInhibitor)$ " REGEX_LIMITS),
        ITEM("Blockers", "AlertFilterMatchOnly", bool, alert_filter_match_only, "no", 0, 0, "a boolean (yes or no)"),
        ITEM("Blockers", "AlertFiringOnly", bool, alert_firing_only, "no", 0, 0, "a boolean (yes or no)"),

        ITEM("Marks", "AnnotateNodes", bool, annotate_nodes, "yes", 0, 0, "a boolean (yes or no)"),
        ITEM("Marks", "PreRebootLabels", labels, pre_reboot_labels, NULL, 0, 0,
             "space-separated key=value labels with valid Kubernetes label keys and values"),
        ITEM("Marks", "PostRebootLabels", labels, post_reboot_labels, NULL, 0, 0,
             "space-separated key=value labels with valid Kubernetes label keys and values"),
        ITEM("Marks", "PreferNoScheduleTaint", taint_key, prefer_no_schedule_taint, NULL, 0, 0,
             "a taint key, optionally with =value"),

        ITEM("Notify", "URL", notify_url, notify_urls, NULL, 0, 0,
             "a notification URL: slack://T.../B.../SECRET, teams://HOST/PATH?QUERY, https:// or http://, "
             "or slack+, teams+ or webhook+ before https:// or http://"),
        ITEM("Notify", "URLFile", path_append, notify_url_files, NULL, 0, 0, "an absolute path"),
        ITEM("Notify", "Type", notify_type, notify_type, "auto", 0, 0, "auto, slack, teams or webhook"),
        ITEM("Notify", "CAFile", optional_path, notify_ca_file, NULL, 0, 0, "an absolute path"),
        ITEM("Notify", "Events", notify_events, notify_events,
             "drain-start reboot back-in-service failed blocked-too-long", 0, 0,
             "space-separated events among drain-start, reboot, back-in-service, failed and blocked-too-long"),
        ITEM("Notify", "BlockedTooLongSec", timespan, notify_blocked_too_long_usec, "2h", 5 * USEC_PER_SEC,
             USEC_INFINITY - 1, "a time span of at least 5s, such as 2h"),
        ITEM("Notify", "TimeoutSec", timespan, notify_timeout_usec, "10s", USEC_PER_SEC, 5 * USEC_PER_MINUTE,
             "a time span between 1s and 5min"),
        ITEM("Notify", "Retries", unsigned, notify_retries, "3", 0, 10, "an integer between 0 and 10"),
        ITEM("Notify", "MessageDrainStart", template, notify_templates[NOTIFY_DRAIN_START], NULL, 0, 0, TEMPLATE_EXPECTED),
        ITEM("Notify", "MessageReboot", template, notify_templates[NOTIFY_REBOOT], NULL, 0, 0, TEMPLATE_EXPECTED),
        ITEM("Notify", "MessageBackInService", template, notify_templates[NOTIFY_BACK_IN_SERVICE], NULL, 0, 0,
             TEMPLATE_EXPECTED),
        ITEM("Notify", "MessageFailed", template, notify_templates[NOTIFY_FAILED], NULL, 0, 0, TEMPLATE_EXPECTED),
        ITEM("Notify", "MessageBlockedTooLong", template, notify_templates[NOTIFY_BLOCKED_TOO_LONG], NULL, 0, 0,
             TEMPLATE_EXPECTED),

        ITEM("Metrics", "TextfilePath", optional_path, metrics_textfile_path, NULL, 0, 0,
             "an absolute path (ending in .prom for node_exporter), or empty for none"),
        ITEM("Metrics", "ListenAddress", listen_address, metrics_listen_address, NULL, 0, 0,
             "ADDRESS:PORT with a numeric IPv4 address, or [ADDRESS]:PORT with an IPv6 one, such as "
             "127.0.0.1:9798, or empty for none"),
        ITEM("Metrics", "KuredCompatible", bool, metrics_kured_compatible, "no", 0, 0, "a boolean (yes or no)"),

        ITEM("Daemon", "LogLevel", log_level, log_level, "info", 0, 0,
             "a log level (emerg, alert, crit, err, warning, notice, info or debug)"),
};

static bool config_section_is_known(const char *section) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (streq(config_items[i].section, section))
                        return true;
        return false;
}

static const ConfigItem *config_item_find(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_items); i++)
                if (streq(config_items[i].section, section) && streq(config_items[i].key, key))
                        return &config_items[i];
        return NULL;
}

/* An empty assignment resets the value: to the item's default, or unset (or empty list). */
static int config_item_apply(Config *c, const ConfigItem *item, const char *value) {
        if (isempty(value) && item->def)
                value = item->def;
        return item->parse(item, value, (uint8_t *) c + item->offset);
}

int config_new(Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(config_items); i++) {
                r = config_item_apply(c, &config_items[i], "");
                if (r < 0)
                        return r;       /* the defaults are valid: only gethostname() or OOM fail */
        }

        *ret = TAKE_PTR(c);
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        free(c->node_name);
        free(c->kubeconfig);
        free(c->context);
        if (c->proxy)   /* may hold the proxy's password */
                explicit_bzero(c->proxy, strlen(c->proxy));
        free(c->proxy);
        free(c->no_proxy);
        free(c->sentinel_path);
        free(c->lock_namespace);
        free(c->lock_queue_namespace);
        free(c->lock_name);
        free(c->window_days);
        free(c->window_start);
        free(c->window_end);
        free(c->window_time_zone);
        free(c->drain_pod_selector);
        free(c->recovery_pod_selector);
        strv_free(c->blocking_pod_selectors);
        strv_free(c->package_manager_locks);
        strv_free(c->pre_reboot_labels);
        strv_free(c->post_reboot_labels);
        free(c->prefer_no_schedule_taint);
        free(c->sentinel_command);
        free(c->sentinel_required_output);
        free(c->prometheus_url);
        free(c->prometheus_ca_file);
        free(c->prometheus_bearer_token_file);
        free(c->prometheus_basic_auth_file);
        free(c->alert_filter_regex);
        strv_free(c->notify_urls);
        strv_free(c->notify_url_files);
        free(c->notify_ca_file);
        for (size_t i = 0; i < ELEMENTSOF(c->notify_templates); i++)
                free(c->notify_templates[i]);
        free(c->metrics_textfile_path);
        free(c->metrics_listen_address);
        return mfree(c);
}

/* --- one file ---------------------------------------------------------------------------------- */

typedef struct ConfigParser {
        Config *config;
        const char *path;
        const char *data;       /* the whole file, NUL-free */
        size_t size, pos;
        unsigned line;          /* number of the line inih holds right now */
        int r;                  /* first error; stops the reader */
        unsigned error_line;
        char *error;            /* its message, logged once inih is done: a syntax error on an earlier
                                 * line (which inih reports only at the end) is the one to show */
} ConfigParser;

static int config_parser_fail(ConfigParser *p, const char *fmt, ...) _printf_(2, 3);
static int config_parser_fail(ConfigParser *p, const char *fmt, ...) {
        va_list ap;
        int k;

        if (p->r < 0)
                return 0;
        va_start(ap, fmt);
        k = vasprintf(&p->error, fmt, ap);
        va_end(ap);
        if (k < 0) {
                p->error = NULL;
                p->r = -ENOMEM;
        } else
                p->r = -EINVAL;
        p->error_line = p->line;
        return 0;       /* what inih wants to hear from a failing handler */
}

/* Feeds inih one line at a time and counts lines, so the handler knows where it is: the installed
 * inih calls handlers without a line number. Leading whitespace is dropped, so an indented line is
 * an assignment of its own (as in systemd) rather than inih's multi-line continuation. A line longer
 * than inih's buffer is an error here instead of being split silently into two. */
static char *config_reader(char *str, int num, void *stream) {
        ConfigParser *p = stream;
        const char *start, *eol;
        size_t len;

        if (p->r < 0 || p->pos >= p->size || num < 2)
                return NULL;

        start = p->data + p->pos;
        eol = memchr(start, '\n', p->size - p->pos);
        len = eol ? (size_t) (eol - start) + 1 : p->size - p->pos;
        p->pos += len;
        p->line++;

        while (len > 0 && (*start == ' ' || *start == '\t')) {
                start++;
                len--;
        }
        if (len > (size_t) num - 1) {
                (void) config_parser_fail(p, "%s:%u: line too long (more than %d characters)",
                                          p->path, p->line, num - 2);
                return NULL;
        }

        memcpy(str, start, len);
        str[len] = 0;
        return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value) {
        ConfigParser *p = user;
        const ConfigItem *item;
        int r;

        if (isempty(section))
                return config_parser_fail(p, "%s:%u: assignment %s= outside of any [Section]",
                                          p->path, p->line, name);
        if (!config_section_is_known(section))
                return config_parser_fail(p, "%s:%u: unknown section [%s]", p->path, p->line, section);

        item = config_item_find(section, name);
        if (!item) {
                log_warning("%s:%u: unknown key [%s] %s=, ignoring", p->path, p->line, section, name);
                return 1;
        }

        r = config_item_apply(p->config, item, value);
        if (r == -ENOMEM) {
                p->r = -ENOMEM;
                return 0;
        }
        if (r == -E2BIG)
                return config_parser_fail(p, "%s:%u: [%s] %s=: too many entries (at most %u)",
                                          p->path, p->line, section, name, CONFIG_DROPINS_MAX);
        if (r < 0 && (item->parse == config_parse_proxy || item->parse == config_parse_notify_url ||
                      item->parse == config_parse_http_url))
                /* The value may hold a password: not in the journal. */
                return config_parser_fail(p, "%s:%u: [%s] %s=: expected %s",
                                          p->path, p->line, section, name, item->expected);
        if (r < 0)
                return config_parser_fail(p, "%s:%u: [%s] %s=%s: expected %s",
                                          p->path, p->line, section, name, value, item->expected);
        return 1;
}

/* Reads one file; missing_ok makes a missing file a no-op. */
static int config_parse_file(Config *c, const char *path, bool missing_ok) {
        _cleanup_free_ char *data = NULL;
        ConfigParser p = { .config = c, .path = path };
        struct stat st;
        size_t size;
        int r;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT && missing_ok)
                        return 0;
                return log_error_errno(errno, "Failed to read configuration file %s: %m", path);
        }
        if (!S_ISREG(st.st_mode)) {
                /* A drop-in linked to /dev/null masks one of the same name, as in systemd. */
                log_debug("Configuration file %s is not a regular file, ignoring.", path);
                return 0;
        }

        r = read_full_file(path, CONFIG_FILE_MAX, &data, &size);
        if (r == -EFBIG)
                return log_error_errno(EINVAL, "%s: file larger than %u bytes", path, CONFIG_FILE_MAX);
        if (r == -ENOENT && missing_ok)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to read configuration file %s: %m", path);
        if (memchr(data, 0, size))
                return log_error_errno(EINVAL, "%s: file contains a NUL byte", path);

        log_debug("Reading configuration file %s.", path);

        p.data = data;
        p.size = size;
        r = ini_parse_stream(config_reader, &p, config_handler, &p);
        if (r == -2 || p.r == -ENOMEM)
                r = log_oom();
        else if (r > 0 && (p.r >= 0 || (unsigned) r < p.error_line))
                r = log_error_errno(EINVAL, "%s:%d: cannot parse line, expected [Section] or Key=Value",
                                    path, r);
        else if (p.r < 0)
                r = log_error_errno(p.r, "%s", p.error);
        else
                r = 0;
        free(p.error);
        return r;
}

/* --- folders ----------------------------------------------------------------------------------- */

typedef struct DropIn {
        char *name;     /* the sort key */
        char *path;
} DropIn;

typedef struct DropInList {
        DropIn *items;
        size_t n;
} DropInList;

static void dropin_list_done(DropInList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].name);
                free(l->items[i].path);
        }
        l->items = mfree(l->items);
        l->n = 0;
}

static int dropin_compare(const void *a, const void *b) {
        return strcmp(((const DropIn *) a)->name, ((const DropIn *) b)->name);
}

/* Adds dir's *.conf files; a name already listed (from an earlier folder) is replaced. */
static int dropin_list_add_dir(DropInList *l, const char *dir) {
        _cleanup_close_ int fd = -EBADF;
        DIR *d;
        int r = 0;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        return 0;
                return log_error_errno(errno, "Failed to open configuration folder %s: %m", dir);
        }
        d = fdopendir(fd);
        if (!d)
                return log_error_errno(errno, "Failed to open configuration folder %s: %m", dir);
        TAKE_FD(fd);

        for (;;) {
                _cleanup_free_ char *path = NULL;
                struct dirent *de;
                size_t i;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = log_error_errno(errno, "Failed to read configuration folder %s: %m", dir);
                        break;
                }
                /* Hidden files (editor leftovers, ".#foo.conf") are skipped, as systemd does. */
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf") || de->d_type == DT_DIR)
                        continue;

                path = strjoin(dir, "/", de->d_name);
                if (!path) {
                        r = log_oom();
                        break;
                }

                for (i = 0; i < l->n; i++)
                        if (streq(l->items[i].name, de->d_name))
                                break;
                if (i < l->n) {
                        free(l->items[i].path);
                        l->items[i].path = TAKE_PTR(path);
                        continue;
                }

                if (l->n >= CONFIG_DROPINS_MAX) {
                        r = log_error_errno(E2BIG, "Too many configuration drop-ins (more than %u) in %s",
                                            CONFIG_DROPINS_MAX, dir);
                        break;
                }

                DropIn *t = reallocarray(l->items, l->n + 1, sizeof(DropIn));
                if (!t) {
                        r = log_oom();
                        break;
                }
                l->items = t;
                l->items[l->n].name = strdup(de->d_name);
                if (!l->items[l->n].name) {
                        r = log_oom();
                        break;
                }
                l->items[l->n].path = TAKE_PTR(path);
                l->n++;
        }

        closedir(d);
        return r;
}

static int config_parse_dropins(Config *c, char * const *dirs) {
        _cleanup_(dropin_list_done) DropInList l = {};
        int r;

        for (char * const *d = dirs; *d; d++) {
                r = dropin_list_add_dir(&l, *d);
                if (r < 0)
                        return r;
        }

        if (l.n > 0)
                qsort(l.items, l.n, sizeof(DropIn), dropin_compare);

        for (size_t i = 0; i < l.n; i++) {
                r = config_parse_file(c, l.items[i].path, /* missing_ok= */ true);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_load_default(Config *c, const char *root_prefix) {
        _cleanup_strv_free_ char **dropin_dirs = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(config_dirs); i++) {
                _cleanup_free_ char *main_file = NULL, *dropin_dir = NULL;

                main_file = strjoin(strempty(root_prefix), config_dirs[i], "nodereboot.conf");
                dropin_dir = strjoin(strempty(root_prefix), config_dirs[i], "nodereboot.conf.d");
                if (!main_file || !dropin_dir)
                        return log_oom();

                r = config_parse_file(c, main_file, /* missing_ok= */ true);
                if (r < 0)
                        return r;

                r = strv_push(&dropin_dirs, TAKE_PTR(dropin_dir));
                if (r < 0)
                        return log_oom();
        }

        return config_parse_dropins(c, dropin_dirs);
}

int config_load_file(Config *c, const char *path) {
        _cleanup_free_ char *dropin_dir = NULL;
        char *dirs[2] = {};
        int r;

        r = config_parse_file(c, path, /* missing_ok= */ false);
        if (r < 0)
                return r;

        dropin_dir = strjoin(path, ".d");
        if (!dropin_dir)
                return log_oom();
        dirs[0] = dropin_dir;
        return config_parse_dropins(c, dirs);
}

static unsigned decimal_digits(unsigned v) {
        unsigned n = 1;

        while (v >= 10) {
                v /= 10;
                n++;
        }
        return n;
}

int config_verify(const Config *c) {
        size_t slot_len;

        if (isempty(c->node_name))
                return log_error_errno(EINVAL, "[Node] Name= is not set and the host name is empty");
        if (!dns_subdomain_is_valid(c->node_name))
                return log_error_errno(EINVAL,
                                       "[Node] Name=%s is not a valid node name (a DNS-1123 subdomain); "
                                       "set Name= when the host name does not fit", c->node_name);

        if (isempty(c->kubeconfig) || c->kubeconfig[0] != '/')
                return log_error_errno(EINVAL, "[Kubernetes] Kubeconfig= must be an absolute path");
        if (isempty(c->sentinel_path) || c->sentinel_path[0] != '/')
                return log_error_errno(EINVAL, "[Sentinel] Path= must be an absolute path");

        if (isempty(c->lock_namespace) || !dns_label_is_valid(c->lock_namespace))
                return log_error_errno(EINVAL, "[Lock] Namespace=%s is not a valid namespace",
                                       strempty(c->lock_namespace));
        if (c->concurrency < 1 || c->concurrency > 1000)
                return log_error_errno(EINVAL, "[Lock] Concurrency=%u is not between 1 and 1000",
                                       c->concurrency);
        if (isempty(c->lock_name) || !dns_subdomain_is_valid(c->lock_name))
                return log_error_errno(EINVAL, "[Lock] Name=%s is not a valid lease name",
                                       strempty(c->lock_name));
        slot_len = strlen(c->lock_name) + 1 + decimal_digits(c->concurrency - 1);
        if (slot_len > LOCK_NAME_MAX)
                return log_error_errno(EINVAL,
                                       "[Lock] Name=%s is too long for Concurrency=%u: slot name %s-%u "
                                       "would be %zu characters, at most %u are allowed",
                                       c->lock_name, c->concurrency, c->lock_name, c->concurrency - 1,
                                       slot_len, LOCK_NAME_MAX);
        if (c->lock_ttl_usec < 10 * USEC_PER_SEC)
                return log_error_errno(EINVAL, "[Lock] TTLSec= must be at least 10s");
        if (c->lock_recheck_usec == 0)
                return log_error_errno(EINVAL, "[Lock] RecheckSec= must be greater than 0");

        if (c->reboot_max_attempts < 1 || c->reboot_max_attempts > 100)
                return log_error_errno(EINVAL, "[Reboot] MaxAttempts=%u is not between 1 and 100",
                                       c->reboot_max_attempts);

        if (isempty(c->window_days) || isempty(c->window_start) || isempty(c->window_end) ||
            isempty(c->window_time_zone))
                return log_error_errno(EINVAL,
                                       "[Window] Days=, StartTime=, EndTime= and TimeZone= must be set");
        {
                /* Parsed here too, so --check-config catches what the daemon would refuse. */
                _cleanup_(window_freep) Window *w = NULL;
                _cleanup_free_ char *error = NULL;

                if (window_new(&w, c->window_days, c->window_start, c->window_end, c->window_time_zone,
                               &error) < 0)
                        return log_error_errno(EINVAL, "[Window] %s", strna(error));
        }

        return 0;
}
