/* SPDX-License-Identifier: Apache-2.0 */
/* The metrics: the exposition text (families, one-hot state, label escaping, kured's metric),
 * what they say about each phase of a cycle, the endpoint (GET, HEAD, 404, 405, a body dropped,
 * no timer left armed when idle) and the textfile (atomic, 0644 whatever the umask, rewritten
 * only when a value changes). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>

#include "fileio.h"
#include "metrics-exporter.h"
#include "metrics-server.h"
#include "metrics-values.h"
#include "metrics.h"
#include "parse-util.h"
#include "string-util.h"
#include "tests.h"

static const char *const states[] = { "idle", "pending", "locked" };

static MetricsValues sample(void) {
        return (MetricsValues) {
                .version = "0.2.0",
                .node = "node-\"1\"\\\n",
                .states = states,
                .n_states = ELEMENTSOF(states),
                .state = 1,
                .reboot_required = true,
                .reboots = 3,
                .cycles_failed = 1,
                .last_reboot = 1764237483 * USEC_PER_SEC + 250 * USEC_PER_MSEC,
                .lock_wait = 42 * USEC_PER_SEC + 7 * USEC_PER_MSEC,
                .drain = 0,
                .blocked = { [METRICS_BLOCK_WINDOW] = true },
        };
}

static void assert_line(const char *text, const char *line) {
        _cleanup_free_ char *needle = strjoin("\n", line, "\n");

        if (!strstr(text, needle) && !(startswith(text, line) && text[strlen(line)] == '\n')) {
                fprintf(stderr, "missing line: %s\nin:\n%s", line, text);
                abort();
        }
}

TEST(format) {
        MetricsValues v = sample();
        _cleanup_free_ char *text = NULL;

        ASSERT_OK(metrics_format(&v, &text));
        assert_line(text, "# TYPE nodereboot_info gauge");
        /* label values escaped as the format asks: \" \\ \n */
        assert_line(text, "nodereboot_info{version=\"0.2.0\",node=\"node-\\\"1\\\"\\\\\\n\"} 1");
        assert_line(text, "nodereboot_reboot_required 1");
        assert_line(text, "nodereboot_state{state=\"idle\"} 0");
        assert_line(text, "nodereboot_state{state=\"pending\"} 1");
        assert_line(text, "nodereboot_state{state=\"locked\"} 0");
        assert_line(text, "nodereboot_lock_held 0");
        assert_line(text, "# TYPE nodereboot_reboots_total counter");
        assert_line(text, "nodereboot_reboots_total 3");
        assert_line(text, "nodereboot_cycles_failed_total 1");
        assert_line(text, "nodereboot_last_reboot_timestamp_seconds 1764237483.250");
        assert_line(text, "nodereboot_lock_wait_seconds 42.007");
        assert_line(text, "nodereboot_drain_duration_seconds 0.000");
        assert_line(text, "nodereboot_reboot_blocked{reason=\"window\"} 1");
        assert_line(text, "nodereboot_reboot_blocked{reason=\"blockers\"} 0");
        assert_line(text, "nodereboot_reboot_blocked{reason=\"package_manager\"} 0");
        assert_line(text, "nodereboot_reboot_blocked{reason=\"inhibitor\"} 0");
        ASSERT_TRUE(!strstr(text, "kured_"));
        ASSERT_TRUE(endswith(text, "\n"));

        v.kured_compatible = true;
        text = mfree(text);
        ASSERT_OK(metrics_format(&v, &text));
        assert_line(text, "# TYPE kured_reboot_required gauge");
        assert_line(text, "kured_reboot_required{node=\"node-\\\"1\\\"\\\\\\n\"} 1");

        ASSERT_TRUE(!strstr(text, "nodereboot_sentinel_command_failed"));
        v.command_configured = v.command_failed = true;
        text = mfree(text);
        ASSERT_OK(metrics_format(&v, &text));
        assert_line(text, "nodereboot_sentinel_command_failed 1");

        v.state = 3;
        ASSERT_ERROR(metrics_format(&v, &text), EINVAL);
        v = sample();
        v.node = NULL;
        ASSERT_ERROR(metrics_format(&v, &text), EINVAL);
}

/* A full cycle as the state machine records it: required from the sentinel until the reboot,
 * the lock held from LOCKED to the release. */
TEST(values_follow_the_cycle) {
        RebootState s;
        MetricsValues v;
        bool blocked[_METRICS_BLOCK_MAX] = { [METRICS_BLOCK_INHIBITOR] = true };

        reboot_state_init(&s);
        metrics_values_from_state(&v, &s, false, NULL, "n1", false);
        ASSERT_FALSE(v.reboot_required);
        ASSERT_FALSE(v.lock_held);
        ASSERT_STREQ(v.states[v.state], "idle");
        ASSERT_EQ(v.n_states, _REBOOT_PHASE_MAX);
        /* the sentinel is there, the cycle has not started yet */
        metrics_values_from_state(&v, &s, true, NULL, "n1", false);
        ASSERT_TRUE(v.reboot_required);

        s.phase = REBOOT_PHASE_PENDING;
        metrics_values_from_state(&v, &s, true, blocked, "n1", true);
        ASSERT_TRUE(v.reboot_required);
        ASSERT_TRUE(v.blocked[METRICS_BLOCK_INHIBITOR]);
        ASSERT_TRUE(v.kured_compatible);

        s.phase = REBOOT_PHASE_DRAINING;
        s.lease = strdup("nodereboot-0");
        metrics_values_from_state(&v, &s, true, NULL, "n1", false);
        ASSERT_TRUE(v.lock_held);
        ASSERT_STREQ(v.states[v.state], "draining");

        /* the new boot: the reboot happened, the slot still held until the node is back */
        s.phase = REBOOT_PHASE_RECOVERING;
        s.stats.reboots = 1;
        metrics_values_from_state(&v, &s, false, NULL, "n1", false);
        ASSERT_FALSE(v.reboot_required);
        ASSERT_TRUE(v.lock_held);
        ASSERT_EQ(v.reboots, 1);

        /* a rollback that ends pending still needs the reboot */
        s.phase = REBOOT_PHASE_ROLLING_BACK;
        s.rollback_to = REBOOT_PHASE_PENDING;
        metrics_values_from_state(&v, &s, false, NULL, "n1", false);
        ASSERT_TRUE(v.reboot_required);
        s.rollback_to = REBOOT_PHASE_IDLE;
        metrics_values_from_state(&v, &s, false, NULL, "n1", false);
        ASSERT_FALSE(v.reboot_required);
        reboot_state_done(&s);
}

/* ---- the endpoint ---------------------------------------------------------------------------- */

typedef struct Fetch {
        char url[128];
        const char *method;             /* NULL: GET */
        const char *body;
        long status;
        char *content_type;
        char *text;
        size_t size;
        atomic_bool done;
} Fetch;

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        Fetch *f = userdata;
        char *t = realloc(f->text, f->size + size * n + 1);

        ASSERT_TRUE(t);
        memcpy(t + f->size, p, size * n);
        f->size += size * n;
        t[f->size] = 0;
        f->text = t;
        return size * n;
}

static void *fetch_thread(void *userdata) {
        Fetch *f = userdata;
        CURL *c = curl_easy_init();
        char *ct = NULL;

        ASSERT_TRUE(c);
        curl_easy_setopt(c, CURLOPT_URL, f->url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        if (f->method && streq(f->method, "HEAD"))
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (f->method)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
        if (f->body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body);
        ASSERT_EQ(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        f->content_type = ct ? strdup(ct) : NULL;
        curl_easy_cleanup(c);
        atomic_store(&f->done, true);
        return NULL;
}

/* Runs the loop until a client thread has its answer. */
static void fetch(sd_event *e, int port, const char *path, const char *method, const char *body, Fetch *f) {
        pthread_t t;

        *f = (Fetch) { .method = method, .body = body };
        snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", port, path);
        ASSERT_EQ(pthread_create(&t, NULL, fetch_thread, f), 0);
        for (unsigned i = 0; !atomic_load(&f->done) && i < 1000; i++)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_TRUE(atomic_load(&f->done));
}

static void fetch_done(Fetch *f) {
        free(f->text);
        free(f->content_type);
}

static int listen_on_loopback(int *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t n = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(bind(fd, (struct sockaddr *) &a, sizeof a));
        ASSERT_OK(listen(fd, 16));
        ASSERT_OK(getsockname(fd, (struct sockaddr *) &a, &n));
        *ret_port = ntohs(a.sin_port);
        return fd;
}

/* Counts the event loop's wake-ups: each sd_event_run() that dispatched something. */
static unsigned run_idle(sd_event *e, usec_t total) {
        unsigned woken = 0;
        usec_t end = now_usec(CLOCK_MONOTONIC) + total;

        while (now_usec(CLOCK_MONOTONIC) < end) {
                int r = sd_event_run(e, end - now_usec(CLOCK_MONOTONIC));
                ASSERT_OK(r);
                if (r > 0)
                        woken++;
        }
        return woken;
}

TEST(endpoint) {
        _cleanup_(metrics_server_freep) MetricsServer *s = NULL;
        sd_event *e = NULL;
        Fetch f;
        int port, fd = listen_on_loopback(&port);

        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(metrics_server_new(&s, e, NULL, 0, fd));
        ASSERT_OK(metrics_server_set_text(s, "# HELP a b\n# TYPE a gauge\na 1\n"));

        fetch(e, port, "/metrics", NULL, NULL, &f);
        ASSERT_EQ(f.status, 200);
        ASSERT_STREQ(f.content_type, METRICS_CONTENT_TYPE);
        ASSERT_STREQ(f.text, "# HELP a b\n# TYPE a gauge\na 1\n");
        fetch_done(&f);

        /* the next scrape gets the new text */
        ASSERT_OK(metrics_server_set_text(s, "a 2\n"));
        fetch(e, port, "/metrics", "HEAD", NULL, &f);
        ASSERT_EQ(f.status, 200);
        ASSERT_TRUE(!f.text);
        fetch_done(&f);
        fetch(e, port, "/metrics", NULL, NULL, &f);
        ASSERT_STREQ(f.text, "a 2\n");
        fetch_done(&f);

        fetch(e, port, "/", NULL, NULL, &f);
        ASSERT_EQ(f.status, 404);
        fetch_done(&f);
        fetch(e, port, "/metrics", "POST", "x=1", &f);
        ASSERT_EQ(f.status, 405);
        fetch_done(&f);
        fetch(e, port, "/metrics", "DELETE", NULL, &f);
        ASSERT_EQ(f.status, 405);
        fetch_done(&f);

        /* Clients gone: no timer left, the loop sleeps. First the closing of what the clients
         * left (quiet for 300 ms; a loaded machine may take a while), then nothing at all. */
        for (unsigned i = 0; i < 20 && run_idle(e, 300 * USEC_PER_MSEC) > 0; i++)
                ;
        ASSERT_EQ(run_idle(e, 1500 * USEC_PER_MSEC), 0);

        s = metrics_server_free(s);
        sd_event_unref(e);
}

TEST(endpoint_address_in_use) {
        _cleanup_(metrics_server_freep) MetricsServer *s = NULL;
        struct sockaddr_storage a;
        socklen_t n;
        sd_event *e = NULL;
        char text[64];
        int port, fd = listen_on_loopback(&port);

        ASSERT_OK(sd_event_new(&e));
        snprintf(text, sizeof text, "127.0.0.1:%d", port);
        ASSERT_OK(parse_socket_address(text, &a, &n));
        ASSERT_TRUE(metrics_server_new(&s, e, (struct sockaddr *) &a, n, -1) < 0);
        ASSERT_TRUE(!s);
        close(fd);
        /* free now: the same address works */
        ASSERT_OK(metrics_server_new(&s, e, (struct sockaddr *) &a, n, -1));
        s = metrics_server_free(s);
        sd_event_unref(e);
}

/* ---- the textfile ---------------------------------------------------------------------------- */

TEST(textfile) {
        _cleanup_(metrics_exporter_freep) MetricsExporter *x = NULL;
        char dir[] = "/tmp/test-metrics-XXXXXX";
        _cleanup_free_ char *path = NULL, *text = NULL;
        MetricsValues v = sample();
        struct stat st, st2;
        sd_event *e = NULL;
        mode_t old;

        ASSERT_TRUE(mkdtemp(dir));
        path = strjoin(dir, "/nodereboot.prom");
        ASSERT_OK(sd_event_new(&e));
        ASSERT_OK(metrics_exporter_new(&x, e, &(MetricsExporterSettings) { .textfile_path = path, .listen_fd = -1 }));

        old = umask(0077);
        metrics_exporter_update(x, &v);
        umask(old);
        ASSERT_OK(stat(path, &st));
        ASSERT_EQ(st.st_mode & 07777, 0644);
        ASSERT_OK(read_full_file(path, 65536, &text, NULL));
        assert_line(text, "nodereboot_reboots_total 3");

        /* the same values: not written again (same inode, as the rename makes a new one) */
        metrics_exporter_update(x, &v);
        ASSERT_OK(stat(path, &st2));
        ASSERT_EQ(st2.st_ino, st.st_ino);
        v.reboots = 4;
        metrics_exporter_update(x, &v);
        ASSERT_OK(stat(path, &st2));
        ASSERT_TRUE(st2.st_ino != st.st_ino);
        text = mfree(text);
        ASSERT_OK(read_full_file(path, 65536, &text, NULL));
        assert_line(text, "nodereboot_reboots_total 4");

        /* the folder goes away: logged, written again once it is back */
        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
        v.reboots = 5;
        metrics_exporter_update(x, &v);
        ASSERT_OK(mkdir(dir, 0755));
        metrics_exporter_update(x, &v);
        text = mfree(text);
        ASSERT_OK(read_full_file(path, 65536, &text, NULL));
        assert_line(text, "nodereboot_reboots_total 5");

        ASSERT_OK(unlink(path));
        ASSERT_OK(rmdir(dir));
        x = metrics_exporter_free(x);
        sd_event_unref(e);
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        RUN(format);
        RUN(values_follow_the_cycle);
        RUN(endpoint);
        RUN(endpoint_address_in_use);
        RUN(textfile);
        curl_global_cleanup();
        return 0;
}
