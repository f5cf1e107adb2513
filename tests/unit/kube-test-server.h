/* SPDX-License-Identifier: Apache-2.0 */
/* Test fixture: runs the test Kubernetes API server (tests/integration/kube-apiserver.py) as a child
 * in a fresh state folder, talks to its control API, and turns an sd-event loop until a condition
 * holds. Linked into every unit test; blocking calls are fine here, never in the daemon. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "kubeconfig.h"
#include "macro.h"
#include "time-util.h"

typedef struct KubeTestServer {
        pid_t pid;
        char *state_dir;                /* removed by kube_test_server_stop() */
        char *url;                      /* "https://127.0.0.1:PORT" */
        char *control_url;              /* "http://127.0.0.1:PORT", plain HTTP, no auth */
        char *ca_file;                  /* the cluster CA, PEM */
        char *admin_kubeconfig;         /* token auth, user "admin" */
        char *cert_kubeconfig;          /* client-certificate auth, user "admin" */
        char *admin_token;
        char *admin_cert_file;          /* from cert_kubeconfig */
        char *admin_key_file;
} KubeTestServer;

/* Whether the server script and /usr/bin/python3 exist ($SOURCE_ROOT must be set, as meson does). */
bool kube_test_server_available(void);

/* Starts the server with "--state-dir <new temporary folder>" plus extra_args (split at
 * whitespace, may be NULL: "--clock-offset 3600 --token t=user") and waits up to 15 s for its
 * ready.json. */
int kube_test_server_start(KubeTestServer **ret, const char *extra_args);
/* SIGTERM, wait (SIGKILL after 5 s), remove the state folder. Accepts NULL; returns NULL. */
KubeTestServer *kube_test_server_stop(KubeTestServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(KubeTestServer *, kube_test_server_stop);

/* Fills k with borrowed pointers into s: server URL, CA file and the admin token. Callers change
 * fields as they need (cert/key, token_file, ...); kube_client_new() copies what it uses. */
void kube_test_server_kubeconfig(const KubeTestServer *s, Kubeconfig *k);

/* A blocking request to the control API (GET /log, POST /faults, ...). json_body may be NULL.
 * Returns 0 on a 2xx status, -EIO on any other status (its body is printed to stderr), a negative
 * errno when no response arrived. ret_body (may be NULL) gets the body in either of the first two
 * cases. */
int kube_test_control(KubeTestServer *s, const char *method, const char *path, const char *json_body,
                      char **ret_body);
/* Same, with the response parsed. */
int kube_test_control_json(KubeTestServer *s, const char *method, const char *path, const char *json_body,
                           json_object **ret);

/* GET /log: the API requests the server saw, oldest first; optionally only those with this method
 * and path (exact, without the query). Returns the number, or a negative errno. */
int kube_test_count_requests(KubeTestServer *s, const char *method, const char *path);

/* Runs e until *flag is true (0) or timeout_usec passed (-ETIMEDOUT). */
int kube_test_run_until(sd_event *e, const bool *flag, usec_t timeout_usec);
/* Runs e for timeout_usec, whatever happens. */
int kube_test_run_for(sd_event *e, usec_t timeout_usec);
