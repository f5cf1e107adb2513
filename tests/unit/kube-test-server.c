/* SPDX-License-Identifier: Apache-2.0 */
#include <curl/curl.h>
#include <ftw.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "fileio.h"
#include "json-util.h"
#include "kube-test-server.h"
#include "string-util.h"

#define PYTHON "/usr/bin/python3"
#define SERVER_SCRIPT "tests/integration/kube-apiserver.py"
#define READY_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define STOP_TIMEOUT_USEC (5 * USEC_PER_SEC)

extern char **environ;

static void sleep_usec(usec_t u) {
        struct timespec ts = {
                .tv_sec = (time_t) (u / USEC_PER_SEC),
                .tv_nsec = (long) (u % USEC_PER_SEC) * 1000,
        };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static char *server_script(void) {
        const char *root = getenv("SOURCE_ROOT");

        if (isempty(root))
                return NULL;
        return strjoin(root, "/", SERVER_SCRIPT);
}

bool kube_test_server_available(void) {
        _cleanup_free_ char *script = server_script();

        return script && access(script, R_OK) == 0 && access(PYTHON, X_OK) == 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

static void rm_rf(const char *dir) {
        (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int read_field(json_object *o, const char *key, char **ret) {
        const char *v = json_get_string(o, key);

        if (isempty(v))
                return -EBADMSG;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

/* "    client-certificate: /path" in the kubeconfig the server writes (its own simple layout). */
static int kubeconfig_value(const char *path, const char *key, char **ret) {
        _cleanup_free_ char *text = NULL, *k = NULL;
        char *line, *save = NULL;
        int r;

        r = read_full_file(path, 1024 * 1024, &text, NULL);
        if (r < 0)
                return r;
        k = strjoin(key, ":");
        if (!k)
                return -ENOMEM;
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *s = strstrip(line);

                if (startswith(s, k)) {
                        *ret = strdup(strstrip(s + strlen(k)));
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

static int server_read_ready(KubeTestServer *s, const char *ready_path) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_object *o = NULL;
        size_t size;
        int r;

        r = read_full_file(ready_path, 1024 * 1024, &text, &size);
        if (r < 0)
                return r;
        r = json_parse(text, size, &o);
        if (r < 0)
                return r;

        if ((r = read_field(o, "url", &s->url)) < 0 ||
            (r = read_field(o, "control_url", &s->control_url)) < 0 ||
            (r = read_field(o, "ca", &s->ca_file)) < 0 ||
            (r = read_field(o, "admin_token", &s->admin_token)) < 0)
                return r;

        s->admin_kubeconfig = strjoin(s->state_dir, "/admin.kubeconfig");
        s->cert_kubeconfig = strjoin(s->state_dir, "/admin-cert.kubeconfig");
        if (!s->admin_kubeconfig || !s->cert_kubeconfig)
                return -ENOMEM;
        r = kubeconfig_value(s->cert_kubeconfig, "client-certificate", &s->admin_cert_file);
        if (r < 0)
                return r;
        return kubeconfig_value(s->cert_kubeconfig, "client-key", &s->admin_key_file);
}

int kube_test_server_start(KubeTestServer **ret, const char *extra_args) {
        _cleanup_(kube_test_server_stopp) KubeTestServer *s = NULL;
        _cleanup_free_ char *script = NULL, *args_copy = NULL, *ready = NULL;
        _cleanup_free_ char **argv = NULL;
        const char *tmp = getenv("TMPDIR");
        size_t n = 0, allocated = 8;
        usec_t deadline;
        pid_t parent;
        int r;

        script = server_script();
        if (!script)
                return -ENOENT;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->state_dir = strjoin(isempty(tmp) ? "/tmp" : tmp, "/kube-test-XXXXXX");
        if (!s->state_dir)
                return -ENOMEM;
        if (!mkdtemp(s->state_dir)) {
                r = -errno;
                s->state_dir = mfree(s->state_dir);
                return r;
        }

        if (extra_args) {
                args_copy = strdup(extra_args);
                if (!args_copy)
                        return -ENOMEM;
                for (const char *p = extra_args; *p; p++)
                        allocated += *p == ' ';
        }
        argv = calloc(allocated + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[n++] = (char *) PYTHON;
        argv[n++] = script;
        argv[n++] = (char *) "--state-dir";
        argv[n++] = s->state_dir;
        if (args_copy) {
                char *save = NULL;

                for (char *a = strtok_r(args_copy, " \t\n", &save); a; a = strtok_r(NULL, " \t\n", &save))
                        argv[n++] = a;
        }
        argv[n] = NULL;

        /* Not posix_spawn(): the server must die with the test even when an assertion aborts it,
         * or the orphan keeps meson's output pipe open and the run hangs. Only prctl() in the
         * child can ask for that. */
        parent = getpid();
        s->pid = fork();
        if (s->pid < 0) {
                r = -errno;
                s->pid = 0;
                return r;
        }
        if (s->pid == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                execve(PYTHON, argv, environ);
                _exit(127);
        }

        ready = strjoin(s->state_dir, "/ready.json");
        if (!ready)
                return -ENOMEM;
        deadline = now_usec(CLOCK_MONOTONIC) + READY_TIMEOUT_USEC;
        for (;;) {
                int status;

                if (access(ready, F_OK) == 0) {
                        r = server_read_ready(s, ready);
                        if (r >= 0)
                                break;
                }
                if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                        fprintf(stderr, "kube-apiserver.py exited before it was ready (status %d)\n", status);
                        s->pid = 0;
                        return -ECHILD;
                }
                if (now_usec(CLOCK_MONOTONIC) > deadline) {
                        fprintf(stderr, "kube-apiserver.py was not ready within 15 s\n");
                        return -ETIMEDOUT;
                }
                sleep_usec(20 * USEC_PER_MSEC);
        }

        *ret = TAKE_PTR(s);
        return 0;
}

KubeTestServer *kube_test_server_stop(KubeTestServer *s) {
        if (!s)
                return NULL;

        if (s->pid > 0) {
                usec_t deadline = now_usec(CLOCK_MONOTONIC) + STOP_TIMEOUT_USEC;

                (void) kill(s->pid, SIGTERM);
                for (;;) {
                        pid_t p = waitpid(s->pid, NULL, WNOHANG);

                        if (p == s->pid || (p < 0 && errno != EINTR))
                                break;
                        if (now_usec(CLOCK_MONOTONIC) > deadline) {
                                (void) kill(s->pid, SIGKILL);
                                (void) waitpid(s->pid, NULL, 0);
                                break;
                        }
                        sleep_usec(10 * USEC_PER_MSEC);
                }
        }
        if (s->state_dir)
                rm_rf(s->state_dir);

        free(s->state_dir);
        free(s->url);
        free(s->control_url);
        free(s->ca_file);
        free(s->admin_kubeconfig);
        free(s->cert_kubeconfig);
        free(s->admin_token);
        free(s->admin_cert_file);
        free(s->admin_key_file);
        return mfree(s);
}

void kube_test_server_kubeconfig(const KubeTestServer *s, Kubeconfig *k) {
        *k = (Kubeconfig) {
                .server = s->url,
                .ca_file = s->ca_file,
                .token = s->admin_token,
        };
}

typedef struct Body {
        char *data;
        size_t size;
} Body;

static size_t body_write(char *p, size_t size, size_t nmemb, void *userdata) {
        Body *b = userdata;
        size_t n = size * nmemb;
        char *t;

        t = realloc(b->data, b->size + n + 1);
        if (!t)
                return 0;
        memcpy(t + b->size, p, n);
        b->data = t;
        b->size += n;
        b->data[b->size] = 0;
        return n;
}

int kube_test_control(KubeTestServer *s, const char *method, const char *path, const char *json_body,
                      char **ret_body) {
        _cleanup_free_ char *url = NULL;
        struct curl_slist *headers = NULL;
        Body body = {};
        long status = 0;
        CURLcode code;
        CURL *e;
        int r;

        url = strjoin(s->control_url, path);
        if (!url)
                return -ENOMEM;
        e = curl_easy_init();
        if (!e)
                return -ENOMEM;

        (void) curl_easy_setopt(e, CURLOPT_URL, url);
        (void) curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        (void) curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
        (void) curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_write);
        (void) curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
        if (json_body) {
                headers = curl_slist_append(headers, "Content-Type: application/json");
                (void) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
                (void) curl_easy_setopt(e, CURLOPT_POSTFIELDS, json_body);
        }

        code = curl_easy_perform(e);
        (void) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(e);
        curl_slist_free_all(headers);

        if (code != CURLE_OK) {
                fprintf(stderr, "control %s %s: %s\n", method, path, curl_easy_strerror(code));
                free(body.data);
                return -ECONNREFUSED;
        }
        r = status >= 200 && status < 300 ? 0 : -EIO;
        if (r < 0)
                fprintf(stderr, "control %s %s → %ld: %s\n", method, path, status, strempty(body.data));
        if (ret_body)
                *ret_body = body.data ? body.data : strdup("");
        else
                free(body.data);
        return r;
}

int kube_test_control_json(KubeTestServer *s, const char *method, const char *path, const char *json_body,
                           json_object **ret) {
        _cleanup_free_ char *text = NULL;
        int r, q;

        r = kube_test_control(s, method, path, json_body, &text);
        if (r < 0 && r != -EIO)
                return r;
        if (!text)
                return -ENOMEM;
        q = json_parse(text, strlen(text), ret);
        return r < 0 ? r : q;
}

int kube_test_count_requests(KubeTestServer *s, const char *method, const char *path) {
        _cleanup_json_ json_object *log = NULL;
        int r, n = 0;

        r = kube_test_control_json(s, "GET", "/log", NULL, &log);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_array_length(log); i++) {
                json_object *e = json_object_array_get_idx(log, i);

                if (method && !streq_ptr(json_get_string(e, "method"), method))
                        continue;
                if (path && !streq_ptr(json_get_string(e, "path"), path))
                        continue;
                n++;
        }
        return n;
}

int kube_test_run_until(sd_event *e, const bool *flag, usec_t timeout_usec) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + timeout_usec;

        while (!*flag) {
                usec_t n = now_usec(CLOCK_MONOTONIC);
                int r;

                if (n >= deadline)
                        return -ETIMEDOUT;
                r = sd_event_run(e, deadline - n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int kube_test_run_for(sd_event *e, usec_t timeout_usec) {
        bool never = false;
        int r;

        r = kube_test_run_until(e, &never, timeout_usec);
        return r == -ETIMEDOUT ? 0 : r;
}
