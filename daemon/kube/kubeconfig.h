/* SPDX-License-Identifier: Apache-2.0 */
/* Reads a kubeconfig file (YAML, with libyaml) into the one cluster/user pair its current context
 * (or a named one) selects. Relative file paths resolve against the kubeconfig's folder, as kubectl
 * does. exec and auth-provider users are refused with an error naming the user entry. The kubeconfig
 * and the credential files it names are guarded as ssh guards a key (see kubeconfig_check_access()). */
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
        char *server_display;           /* "https://host:port" for logs: no user info, path or query */
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
 * plugins are not supported"), returns -ENOENT for a missing file, -EACCES when it cannot be read,
 * -EINVAL for bad content (also: a plain http:// server with a token or client certificate, which
 * would go over the network in clear text), -EOPNOTSUPP for unsupported user types, -EPERM when
 * the kubeconfig, its tokenFile or its client-key is open to others (kubeconfig_check_access()).
 * Errors that do not depend on each other (the modes, http:// with credentials) are all logged;
 * the first one is returned. A tokenFile or client-key that does not exist (yet) is not an error
 * here: the client reads them when it uses them. context may be NULL for current-context. */
int kubeconfig_load(const char *path, const char *context, Kubeconfig **ret);

/* The rule for credential files, checked on the open descriptor (fstat, no race with a chmod or a
 * rename): nobody but root, the owner (root, this process's user or the user nodereboot) and the
 * file's group when that is root, this process's group or the group nodereboot may have any
 * access. So 0600 and 0640 (install -m 0640 -g nodereboot) pass; any bit for others (0644, 0604,
 * 0601), group bits for another group, another owner, or a POSIX ACL entry for another user or
 * group does not. what names the file in the message ("kubeconfig /etc/x", "kubeconfig /etc/x:
 * user "u": tokenFile /t"); path is the file, for the fix. Logs the mode and the fix
 * ("chmod 0640 FILE; chgrp nodereboot FILE") and returns -EPERM; -EINVAL when not a regular file. */
int kubeconfig_check_access(int fd, const char *what, const char *path);

/* Opens a credential file (a tokenFile), checks it with kubeconfig_check_access() and reads it,
 * wiping every intermediate buffer. Does not log (but for the access check's message); -ENOENT,
 * -EACCES, -EFBIG above max_size. The result is NUL-terminated; erase it before freeing it. */
int kubeconfig_read_credential(const char *path, const char *what, size_t max_size, char **ret,
                               size_t *ret_size);
Kubeconfig *kubeconfig_free(Kubeconfig *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(Kubeconfig *, kubeconfig_free);
