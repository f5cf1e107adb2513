/* SPDX-License-Identifier: Apache-2.0 */
/* Reads a kubeconfig file (YAML, with libyaml) into the one cluster/user pair its current context
 * (or a named one) selects. Relative file paths resolve against the kubeconfig's folder, as kubectl
 * does. exec and auth-provider users are refused with an error naming the user entry. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef struct Kubeconfig {
        char *path;                     /* the file read */
        char *context;                  /* name of the context used */
        char *cluster;                  /* name of the cluster entry used */
        char *user;                     /* name of the user entry used */
        char *namespace;                /* context namespace, may be NULL */

        char *server;                   /* "https://host:port[/prefix]", no trailing slash */
        char *tls_server_name;
        bool insecure_skip_tls_verify;

        char *ca_file;                  /* absolute path, or NULL */
        char *ca_data;                  /* PEM, decoded from base64, or NULL */
        size_t ca_data_size;

        char *client_cert_file;
        char *client_cert_data;
        size_t client_cert_data_size;
        char *client_key_file;
        char *client_key_data;
        size_t client_key_data_size;

        char *token;                    /* inline token, or NULL */
        char *token_file;               /* absolute path, or NULL; re-read by the client */
} Kubeconfig;

/* Logs errors naming the file, the entry and the field ("kubeconfig /etc/x: user 'u': exec
 * plugins are not supported"), returns -ENOENT for a missing file, -EINVAL for bad content,
 * -EOPNOTSUPP for unsupported user types. context may be NULL for current-context. */
int kubeconfig_load(const char *path, const char *context, Kubeconfig **ret);
Kubeconfig *kubeconfig_free(Kubeconfig *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Kubeconfig *, kubeconfig_free);
