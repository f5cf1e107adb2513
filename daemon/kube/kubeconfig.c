/* SPDX-License-Identifier: Apache-2.0 */
#include <endian.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <yaml.h>

#include "base64.h"
#include "kubeconfig.h"
#include "log.h"
#include "parse-util.h"
#include "string-util.h"

#define KUBECONFIG_FILE_MAX (4U * 1024U * 1024U)
#define KUBECONFIG_NODES_MAX 100000U
#define KUBECONFIG_DEPTH_MAX 64U

/* The system user and group of the packaged service (sysusers.d); a credential file may belong to
 * them. */
#define NODEREBOOT_USER "nodereboot"
#define NODEREBOOT_GROUP "nodereboot"
#define CREDENTIAL_FIX "chmod 0640 %s; chgrp " NODEREBOOT_GROUP " %s"

/* The one kubeconfig being read: the file name for messages, the document and where the files it
 * names are relative to. */
typedef struct KubeconfigReader {
        const char *path;
        char *dir;
        yaml_document_t doc;
        bool have_doc;
} KubeconfigReader;

/* libyaml frees without wiping: these wipe what it holds of the file (tokens, keys) before. Its
 * scanner's short-lived internal strings are out of reach. */
static void yaml_parser_erase_and_delete(yaml_parser_t *p) {
        if (p->raw_buffer.start)
                explicit_bzero(p->raw_buffer.start, (size_t) (p->raw_buffer.end - p->raw_buffer.start));
        if (p->buffer.start)
                explicit_bzero(p->buffer.start, (size_t) (p->buffer.end - p->buffer.start));
        for (yaml_token_t *t = p->tokens.head; p->tokens.head && t < p->tokens.tail; t++)
                if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value)
                        explicit_bzero(t->data.scalar.value, t->data.scalar.length);
        yaml_parser_delete(p);
}

static void yaml_event_erase_and_delete(yaml_event_t *e) {
        if (e->type == YAML_SCALAR_EVENT && e->data.scalar.value)
                explicit_bzero(e->data.scalar.value, e->data.scalar.length);
        yaml_event_delete(e);
}

static void yaml_document_erase_and_delete(yaml_document_t *d) {
        for (yaml_node_t *n = d->nodes.start; n && n < d->nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
                        explicit_bzero(n->data.scalar.value, n->data.scalar.length);
        yaml_document_delete(d);
}

static void kubeconfig_reader_done(KubeconfigReader *r) {
        free(r->dir);
        if (r->have_doc)
                yaml_document_erase_and_delete(&r->doc);
}

static void erase_and_free_sized(char *p, size_t size) {
        if (p) {
                explicit_bzero(p, size);
                free(p);
        }
}

Kubeconfig *kubeconfig_free(Kubeconfig *k) {
        if (!k)
                return NULL;

        free(k->path);
        free(k->context);
        free(k->cluster);
        free(k->user);
        free(k->namespace);
        erase_and_free(k->server);         /* user information may hold a password */
        free(k->server_display);
        free(k->tls_server_name);
        free(k->ca_file);
        free(k->ca_data);
        free(k->client_cert_file);
        erase_and_free_sized(k->client_cert_data, k->client_cert_data_size);
        free(k->client_key_file);
        erase_and_free_sized(k->client_key_data, k->client_key_data_size);
        erase_and_free(k->token);
        free(k->token_file);
        return mfree(k);
}

/* --- credential files -------------------------------------------------------------------------- */

/* A name lookup only when the cheap answers (root, ourselves) do not settle it. */
static bool uid_is_trusted(uid_t uid) {
        const struct passwd *pw;

        if (uid == 0 || uid == geteuid())
                return true;
        pw = getpwnam(NODEREBOOT_USER);
        return pw && pw->pw_uid == uid;
}

static bool gid_is_trusted(gid_t gid) {
        const struct group *gr;

        if (gid == 0 || gid == getegid())
                return true;
        gr = getgrnam(NODEREBOOT_GROUP);
        return gr && gr->gr_gid == gid;
}

/* The kernel's POSIX ACL xattr: a version (2), then entries of tag, permissions and id, little
 * endian. With an ACL the mode's group bits are the mask, and named users and groups may read the
 * file although the mode does not show them. Sets *ret when an entry gives access to a user or
 * group that is not trusted. */
#define ACL_XATTR_VERSION 2U
#define ACL_TAG_USER 0x02U
#define ACL_TAG_GROUP 0x08U
#define ACL_TAG_MASK 0x10U
#define ACL_XATTR_MAX (4U + 8U * 1024U)

static uint32_t acl_get(const uint8_t *p, size_t size) {
        uint32_t v32 = 0;
        uint16_t v16 = 0;

        if (size == 2) {
                memcpy(&v16, p, 2);
                return le16toh(v16);
        }
        memcpy(&v32, p, 4);
        return le32toh(v32);
}

/* 1 when the file's access ACL gives a user or group other than the trusted ones some access
 * (through the mask), 0 when not or when there is no ACL, -errno when it cannot be read. */
static int acl_gives_access_to_others(int fd) {
        _cleanup_free_ uint8_t *buf = NULL;
        unsigned mask = 07;
        ssize_t n;

        n = fgetxattr(fd, "system.posix_acl_access", NULL, 0);
        if (n < 0) {
                if (errno == ENODATA || errno == EOPNOTSUPP || errno == ENOSYS)
                        return 0;
                return -errno;
        }
        if ((size_t) n > ACL_XATTR_MAX)
                return -E2BIG;
        buf = malloc((size_t) n + 1);
        if (!buf)
                return -ENOMEM;
        n = fgetxattr(fd, "system.posix_acl_access", buf, (size_t) n);
        if (n < 0)
                return -errno;
        if (n < 4 || (n - 4) % 8 != 0 || acl_get(buf, 4) != ACL_XATTR_VERSION)
                return -EBADMSG;

        for (ssize_t i = 4; i < n; i += 8)
                if (acl_get(buf + i, 2) == ACL_TAG_MASK)
                        mask = acl_get(buf + i + 2, 2) & 07;
        for (ssize_t i = 4; i < n; i += 8) {
                uint32_t tag = acl_get(buf + i, 2), perm = acl_get(buf + i + 2, 2), id = acl_get(buf + i + 4, 4);

                if ((perm & mask) == 0)
                        continue;
                if ((tag == ACL_TAG_USER && !uid_is_trusted((uid_t) id)) ||
                    (tag == ACL_TAG_GROUP && !gid_is_trusted((gid_t) id)))
                        return 1;
        }
        return 0;
}

int kubeconfig_check_access(int fd, const char *what, const char *path) {
        struct stat st;
        mode_t mode;
        int r;

        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "%s: cannot check its access mode: %m", what);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(EINVAL, "%s: not a regular file", what);
        mode = st.st_mode & 07777;

        if (!uid_is_trusted(st.st_uid))
                return log_error_errno(EPERM,
                                       "%s: owned by uid %u, who may read and change the cluster "
                                       "credential; refusing to use it. Fix: chown root %s; " CREDENTIAL_FIX,
                                       what, (unsigned) st.st_uid, path, path, path);
        if (mode & S_IRWXO)
                return log_error_errno(EPERM,
                                       "%s: mode %04o gives every user access to the cluster credential; "
                                       "refusing to use it. Fix: " CREDENTIAL_FIX,
                                       what, (unsigned) mode, path, path);
        if ((mode & S_IRWXG) && !gid_is_trusted(st.st_gid))
                return log_error_errno(EPERM,
                                       "%s: mode %04o gives the group with gid %u access to the cluster "
                                       "credential, only root and the group " NODEREBOOT_GROUP " may have it; "
                                       "refusing to use it. Fix: " CREDENTIAL_FIX,
                                       what, (unsigned) mode, (unsigned) st.st_gid, path, path);

        if (mode & S_IRWXG) {
                r = acl_gives_access_to_others(fd);
                if (r < 0) {
                        /* Not something a restart fixes: refused like any other unsafe mode. */
                        log_error_errno(r, "%s: cannot read its access ACL, refusing to use it: %m", what);
                        return -EPERM;
                }
                if (r > 0)
                        return log_error_errno(EPERM,
                                               "%s: mode %04o with an access ACL that gives other users or "
                                               "groups access to the cluster credential; refusing to use it. "
                                               "Fix: setfacl -b %s; " CREDENTIAL_FIX,
                                               what, (unsigned) mode, path, path, path);
        }
        return 0;
}

static int open_credential(const char *path) {
        int fd;

        /* O_NONBLOCK: a FIFO in its place does not hang us; it is then refused as not regular. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

/* Reads all of fd like read_full_file(), but wipes every buffer it lets go of. */
static int read_secret_fd(int fd, size_t max_size, char **ret, size_t *ret_size) {
        char *buf = NULL;
        size_t n = 0, allocated = 0;
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        /* The size as a hint, so a file that does not change is read into one buffer. */
        if (st.st_size > 0 && (size_t) st.st_size <= max_size)
                allocated = (size_t) st.st_size + 1;
        else
                allocated = MIN(max_size + 1, (size_t) 16384);
        buf = malloc(allocated + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t k;

                if (n == allocated) {
                        size_t want = MIN(allocated * 2, max_size + 1);
                        char *t;

                        if (want <= n) {
                                r = -EFBIG;
                                goto fail;
                        }
                        t = malloc(want + 1);
                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        memcpy(t, buf, n);
                        erase_and_free_sized(buf, allocated + 1);
                        buf = t;
                        allocated = want;
                }
                k = read(fd, buf + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max_size) {
                        r = -EFBIG;
                        goto fail;
                }
        }

        buf[n] = 0;
        *ret = buf;
        *ret_size = n;
        return 0;

fail:
        erase_and_free_sized(buf, allocated + 1);
        return r;
}

int kubeconfig_read_credential(const char *path, const char *what, size_t max_size, char **ret,
                               size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        char *data;
        size_t size;
        int r;

        fd = open_credential(path);
        if (fd < 0)
                return fd;
        r = kubeconfig_check_access(fd, what, path);
        if (r < 0)
                return r;
        r = read_secret_fd(fd, max_size, &data, &size);
        if (r < 0)
                return r;
        *ret = data;
        if (ret_size)
                *ret_size = size;
        return 0;
}

/* --- YAML ------------------------------------------------------------------------------------- */

static int kubeconfig_log_yaml_error(const char *path, const yaml_parser_t *parser) {
        const char *problem = parser->problem ?: "invalid YAML";

        if (parser->error == YAML_MEMORY_ERROR)
                return log_oom();
        if (parser->error == YAML_READER_ERROR)
                return log_error_errno(EINVAL, "kubeconfig %s: byte %zu: %s", path,
                                       parser->problem_offset, problem);
        return log_error_errno(EINVAL, "kubeconfig %s:%zu:%zu: %s", path,
                               parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem);
}

/* A first pass over the events checks the syntax and bounds the size of the tree before the
 * document API builds it: 4 MiB of "[[[[" would otherwise become millions of nodes. Aliases count
 * once; the document API shares the anchored node rather than copying it. */
static int kubeconfig_check_yaml(const char *path, const char *data, size_t size) {
        yaml_parser_t parser;
        size_t nodes = 0, depth = 0;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return log_oom();
        yaml_parser_set_input_string(&parser, (const unsigned char *) data, size);

        for (bool done = false; !done;) {
                yaml_event_t event;

                if (!yaml_parser_parse(&parser, &event)) {
                        r = kubeconfig_log_yaml_error(path, &parser);
                        break;
                }

                switch (event.type) {
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        depth++;
                        nodes++;
                        break;
                case YAML_SCALAR_EVENT:
                case YAML_ALIAS_EVENT:
                        nodes++;
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        depth--;
                        break;
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                default:
                        break;
                }
                yaml_event_erase_and_delete(&event);

                if (nodes > KUBECONFIG_NODES_MAX) {
                        r = log_error_errno(EINVAL, "kubeconfig %s: too many YAML nodes (more than %u)",
                                            path, KUBECONFIG_NODES_MAX);
                        break;
                }
                if (depth > KUBECONFIG_DEPTH_MAX) {
                        r = log_error_errno(EINVAL, "kubeconfig %s: YAML nested deeper than %u levels",
                                            path, KUBECONFIG_DEPTH_MAX);
                        break;
                }
        }

        yaml_parser_erase_and_delete(&parser);
        return r;
}

static int kubeconfig_load_document(KubeconfigReader *kr, const char *data, size_t size) {
        yaml_parser_t parser;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return log_oom();
        yaml_parser_set_input_string(&parser, (const unsigned char *) data, size);

        /* Only the first document counts, as for kubectl. */
        if (!yaml_parser_load(&parser, &kr->doc))
                r = kubeconfig_log_yaml_error(kr->path, &parser);
        else
                kr->have_doc = true;

        yaml_parser_erase_and_delete(&parser);
        return r;
}

static yaml_node_t *node_get(KubeconfigReader *kr, int index) {
        return yaml_document_get_node(&kr->doc, index);
}

/* YAML's null: an empty plain scalar, "~" or "null". */
static bool node_is_null(const yaml_node_t *n) {
        const char *v;

        if (!n)
                return true;
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *) n->data.scalar.value;
        return n->data.scalar.length == 0 || streq(v, "~") || streq(v, "null") || streq(v, "Null") ||
                streq(v, "NULL");
}

/* The scalar's text; NULL when it is not a scalar or holds a NUL byte (a "\0" escape). */
static const char *node_scalar(const yaml_node_t *n) {
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        if (strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                return NULL;
        return (const char *) n->data.scalar.value;
}

/* The value for key in mapping m, NULL when absent or null. A key given twice: the last wins, as
 * with kubectl. */
static yaml_node_t *mapping_get(KubeconfigReader *kr, const yaml_node_t *m, const char *key) {
        yaml_node_t *found = NULL;

        if (!m || m->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
                const char *k = node_scalar(node_get(kr, p->key));

                if (k && streq(k, key))
                        found = node_get(kr, p->value);
        }
        return node_is_null(found) ? NULL : found;
}

/* An entry ("context", "cluster" or "user" with its name) for messages. */
typedef struct Entry {
        const char *kind;
        const char *name;
        const yaml_node_t *node;        /* the inner mapping, NULL when empty */
} Entry;

/* Reads a string field of an entry: *ret is NULL when absent or null (or empty). */
static int entry_get_string(KubeconfigReader *kr, const Entry *e, const char *field, const char **ret) {
        const yaml_node_t *n = mapping_get(kr, e->node, field);
        const char *v;

        if (!n) {
                *ret = NULL;
                return 0;
        }
        v = node_scalar(n);
        if (!v)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\": field \"%s\" must be a string",
                                       kr->path, e->kind, e->name, field);
        *ret = v[0] ? v : NULL;
        return 0;
}

static int entry_dup_string(KubeconfigReader *kr, const Entry *e, const char *field, char **ret) {
        const char *v;
        int r;

        r = entry_get_string(kr, e, field, &v);
        if (r < 0)
                return r;
        if (v && free_and_strdup(ret, v) < 0)
                return log_oom();
        return 0;
}

/* A file path field, made absolute against the kubeconfig's folder. */
static int entry_get_path(KubeconfigReader *kr, const Entry *e, const char *field, char **ret) {
        const char *v;
        char *p;
        int r;

        r = entry_get_string(kr, e, field, &v);
        if (r < 0 || !v)
                return r;
        if (v[0] == '/')
                p = strdup(v);
        else
                p = strjoin(kr->dir, streq(kr->dir, "/") ? "" : "/", v);
        if (!p)
                return log_oom();
        free(*ret);
        *ret = p;
        return 0;
}

/* A base64 field; the decoded data is never logged (it may be a private key). */
static int entry_get_data(KubeconfigReader *kr, const Entry *e, const char *field, char **ret,
                          size_t *ret_size) {
        const char *v;
        char *d;
        size_t n;
        int r;

        r = entry_get_string(kr, e, field, &v);
        if (r < 0 || !v)
                return r;
        r = base64_decode(v, strlen(v), &d, &n);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\": field \"%s\" is not valid base64",
                                       kr->path, e->kind, e->name, field);
        if (n == 0) {
                free(d);
                return 0;       /* empty reads as unset, as in kubectl */
        }
        *ret = d;
        *ret_size = n;
        return 0;
}

static int entry_get_bool(KubeconfigReader *kr, const Entry *e, const char *field, bool *ret) {
        const char *v;
        int r;

        r = entry_get_string(kr, e, field, &v);
        if (r < 0 || !v)
                return r;
        r = parse_boolean(v);
        if (r < 0)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\": field \"%s\" must be true or false",
                                       kr->path, e->kind, e->name, field);
        *ret = r;
        return 0;
}

static bool entry_has(KubeconfigReader *kr, const Entry *e, const char *field) {
        return mapping_get(kr, e->node, field);
}

/* Finds the entry called name in the top-level list `list` ("clusters"), whose items look like
 * { name: NAME, KIND: { ... } }. */
static int kubeconfig_find_entry(KubeconfigReader *kr, const char *list, const char *kind, const char *name,
                                 Entry *ret) {
        const yaml_node_t *root = yaml_document_get_root_node(&kr->doc), *seq;
        size_t n_nodes = (size_t) (kr->doc.nodes.top - kr->doc.nodes.start);
        _cleanup_free_ bool *seen = NULL;
        const yaml_node_t *found = NULL;
        unsigned matches = 0;

        seq = mapping_get(kr, root, list);
        if (seq && seq->type != YAML_SEQUENCE_NODE)
                return log_error_errno(EINVAL, "kubeconfig %s: \"%s\" must be a list", kr->path, list);

        /* Aliases can repeat one large mapping many times in the list; each node is looked into once
         * (node indexes start at 1), so the work stays linear in the size of the file. */
        seen = calloc(n_nodes + 1, sizeof(bool));
        if (!seen)
                return log_oom();

        if (seq)
                for (yaml_node_item_t *i = seq->data.sequence.items.start;
                     i < seq->data.sequence.items.top; i++) {
                        const yaml_node_t *item = node_get(kr, *i);
                        const char *n;

                        if (!item)
                                continue;
                        if (seen[*i]) {
                                if (item == found)
                                        matches++;      /* the matching entry again, through an alias */
                                continue;
                        }
                        seen[*i] = true;

                        n = node_scalar(mapping_get(kr, item, "name"));
                        if (!n || !streq(n, name))
                                continue;
                        matches++;
                        found = item;
                }

        if (matches == 0)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\" not found in \"%s\"",
                                       kr->path, kind, name, list);
        if (matches > 1)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\" is listed %u times in \"%s\"",
                                       kr->path, kind, name, matches, list);

        *ret = (Entry) {
                .kind = kind,
                .name = name,
                .node = mapping_get(kr, found, kind),
        };
        if (ret->node && ret->node->type != YAML_MAPPING_NODE)
                return log_error_errno(EINVAL, "kubeconfig %s: %s \"%s\": field \"%s\" must be a mapping",
                                       kr->path, kind, name, kind);
        return 0;
}

/* --- the pieces ------------------------------------------------------------------------------- */

/* "scheme://host:port" of a server URL that starts with a valid scheme of scheme_len characters:
 * without user information (it may hold a password), path, query or fragment, with the default port
 * when none is given. -EINVAL when the host is empty, -ERANGE when the port is not 1..65535. */
static int server_display_new(const char *server, size_t scheme_len, char **ret) {
        const char *auth = server + scheme_len, *end, *host, *host_end, *port = NULL;
        size_t port_len;

        end = auth + strcspn(auth, "/?#");
        host = auth;
        for (const char *p = auth; p < end; p++)
                if (*p == '@')
                        host = p + 1;           /* the last '@' ends the user information */

        if (*host == '[') {
                host_end = memchr(host, ']', (size_t) (end - host));
                host_end = host_end ? host_end + 1 : end;
        } else {
                host_end = memchr(host, ':', (size_t) (end - host));
                if (!host_end)
                        host_end = end;
        }
        if (host_end == host)
                return -EINVAL;
        if (host_end < end && *host_end != ':')
                return -ERANGE;                 /* "[::1]x" */
        if (host_end < end && host_end + 1 < end) {
                unsigned long v = 0;

                port = host_end + 1;
                port_len = (size_t) (end - port);
                /* Checked here, where the kubeconfig is named, not later by whoever parses it next. */
                if (port_len > 5)
                        return -ERANGE;
                for (size_t i = 0; i < port_len; i++) {
                        if (port[i] < '0' || port[i] > '9')
                                return -ERANGE;
                        v = v * 10 + (unsigned long) (port[i] - '0');
                }
                if (v < 1 || v > 65535)
                        return -ERANGE;
        } else {
                port = scheme_len == 8 ? "443" : "80";
                port_len = strlen(port);
        }

        *ret = strdup_printf("%.*s%.*s:%.*s", (int) scheme_len, server, (int) (host_end - host), host,
                             (int) port_len, port);
        return *ret ? 0 : -ENOMEM;
}

static int kubeconfig_read_server(KubeconfigReader *kr, const Entry *e, Kubeconfig *k) {
        const char *v, *host;
        size_t scheme_len, n;
        char *s, *d;
        int r;

        r = entry_get_string(kr, e, "server", &v);
        if (r < 0)
                return r;
        if (!v)
                return log_error_errno(EINVAL, "kubeconfig %s: cluster \"%s\": field \"server\" is missing",
                                       kr->path, e->name);

        if (strncasecmp(v, "https://", 8) == 0)
                scheme_len = 8;
        else if (strncasecmp(v, "http://", 7) == 0)
                scheme_len = 7;
        else if (strchr(v, '@'))
                /* not shown: user information may hold a password */
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: cluster \"%s\": server must start with https:// "
                                       "(or http://)", kr->path, e->name);
        else
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: cluster \"%s\": server \"%s\" must start with "
                                       "https:// (or http://)", kr->path, e->name, v);

        for (const char *p = v; *p; p++)
                if ((unsigned char) *p <= ' ' || *p == 0x7f)
                        return log_error_errno(EINVAL,
                                               "kubeconfig %s: cluster \"%s\": server URL contains "
                                               "whitespace or control characters", kr->path, e->name);

        host = v + scheme_len;
        if (host[0] == 0 || host[0] == '/')
                return log_error_errno(EINVAL, "kubeconfig %s: cluster \"%s\": server \"%s\" has no host",
                                       kr->path, e->name, v);

        s = strdup(v);
        if (!s)
                return log_oom();
        /* The scheme in lower case, so the client can compare it; no trailing slash. */
        for (size_t i = 0; i < scheme_len; i++)
                s[i] = (char) (s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
        n = strlen(s);
        while (n > scheme_len + 1 && s[n - 1] == '/')
                s[--n] = 0;

        r = server_display_new(s, scheme_len, &d);
        if (r < 0) {
                erase_and_free(s);
                if (r == -ENOMEM)
                        return log_oom();
                if (r == -ERANGE)
                        return log_error_errno(EINVAL, "kubeconfig %s: cluster \"%s\": server's port must be a "
                                               "number from 1 to 65535", kr->path, e->name);
                return log_error_errno(EINVAL, "kubeconfig %s: cluster \"%s\": server has no host",
                                       kr->path, e->name);
        }

        erase_and_free(k->server);
        k->server = s;
        free(k->server_display);
        k->server_display = d;
        return 0;
}

static int kubeconfig_read_cluster(KubeconfigReader *kr, const Entry *e, Kubeconfig *k) {
        int r;

        r = kubeconfig_read_server(kr, e, k);
        if (r < 0)
                return r;

        r = entry_get_path(kr, e, "certificate-authority", &k->ca_file);
        if (r < 0)
                return r;
        r = entry_get_data(kr, e, "certificate-authority-data", &k->ca_data, &k->ca_data_size);
        if (r < 0)
                return r;
        if (k->ca_file && k->ca_data)
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: cluster \"%s\": certificate-authority and "
                                       "certificate-authority-data are both set; use one",
                                       kr->path, e->name);

        r = entry_get_bool(kr, e, "insecure-skip-tls-verify", &k->insecure_skip_tls_verify);
        if (r < 0)
                return r;
        if (k->insecure_skip_tls_verify && (k->ca_file || k->ca_data))
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: cluster \"%s\": insecure-skip-tls-verify cannot be "
                                       "combined with a certificate authority", kr->path, e->name);

        return entry_dup_string(kr, e, "tls-server-name", &k->tls_server_name);
}

static int kubeconfig_read_user(KubeconfigReader *kr, const Entry *e, Kubeconfig *k) {
        static const struct {
                const char *field;
                const char *what;
        } unsupported[] = {
                { "exec",          "exec credential plugins are" },
                { "auth-provider", "auth-provider plugins are" },
                { "username",      "basic authentication (username/password) is" },
                { "password",      "basic authentication (username/password) is" },
                { "as",            "impersonation (as) is" },
                { "as-uid",        "impersonation (as-uid) is" },
                { "as-groups",     "impersonation (as-groups) is" },
                { "as-user-extra", "impersonation (as-user-extra) is" },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                if (entry_has(kr, e, unsupported[i].field))
                        return log_error_errno(EOPNOTSUPP,
                                               "kubeconfig %s: user \"%s\": %s not supported; "
                                               "use a token, tokenFile or client certificate",
                                               kr->path, e->name, unsupported[i].what);

        r = entry_dup_string(kr, e, "token", &k->token);
        if (r < 0)
                return r;
        r = entry_get_path(kr, e, "tokenFile", &k->token_file);
        if (r < 0)
                return r;

        r = entry_get_path(kr, e, "client-certificate", &k->client_cert_file);
        if (r < 0)
                return r;
        r = entry_get_data(kr, e, "client-certificate-data", &k->client_cert_data, &k->client_cert_data_size);
        if (r < 0)
                return r;
        r = entry_get_path(kr, e, "client-key", &k->client_key_file);
        if (r < 0)
                return r;
        r = entry_get_data(kr, e, "client-key-data", &k->client_key_data, &k->client_key_data_size);
        if (r < 0)
                return r;

        if (k->client_cert_file && k->client_cert_data)
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: user \"%s\": client-certificate and "
                                       "client-certificate-data are both set; use one", kr->path, e->name);
        if (k->client_key_file && k->client_key_data)
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: user \"%s\": client-key and client-key-data are both "
                                       "set; use one", kr->path, e->name);
        if ((k->client_cert_file || k->client_cert_data) && !(k->client_key_file || k->client_key_data))
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: user \"%s\": a client certificate is set but no "
                                       "client-key or client-key-data", kr->path, e->name);
        if ((k->client_key_file || k->client_key_data) && !(k->client_cert_file || k->client_cert_data))
                return log_error_errno(EINVAL,
                                       "kubeconfig %s: user \"%s\": a client key is set but no "
                                       "client-certificate or client-certificate-data", kr->path, e->name);
        return 0;
}

/* The folder of path, made absolute, for relative paths inside the file (kubectl resolves them
 * against the kubeconfig's location). */
static int kubeconfig_dir(const char *path, char **ret) {
        _cleanup_free_ char *abs = NULL, *cwd = NULL;
        char *slash;

        if (path[0] == '/')
                abs = strdup(path);
        else {
                cwd = get_current_dir_name();
                if (!cwd)
                        return -errno;
                abs = strjoin(cwd, "/", path);
        }
        if (!abs)
                return -ENOMEM;

        slash = strrchr(abs, '/');
        if (slash == abs)
                slash[1] = 0;           /* "/kubeconfig" lives in "/" */
        else
                *slash = 0;
        *ret = TAKE_PTR(abs);
        return 0;
}

/* A tokenFile or client-key the kubeconfig names: guarded like the kubeconfig. */
static int kubeconfig_check_credential_file(const Kubeconfig *k, const char *field, const char *file) {
        _cleanup_free_ char *what = NULL;
        _cleanup_close_ int fd = -EBADF;

        what = strdup_printf("kubeconfig %s: user \"%s\": %s %s", k->path, k->user, field, file);
        if (!what)
                return log_oom();

        fd = open_credential(file);
        if (fd == -ENOENT) {
                /* A projected or rotated file may appear later; the client reads it when it needs it. */
                log_warning("%s does not exist (yet).", what);
                return 0;
        }
        if (fd == -EACCES || fd == -EPERM)
                return log_error_errno(fd, "%s: %m. Whoever uses it (the daemon runs as " NODEREBOOT_USER ") "
                                       "must be able to read it and search every folder above it: "
                                       CREDENTIAL_FIX, what, file, file);
        if (fd < 0)
                return log_error_errno(fd, "%s: %m", what);
        return kubeconfig_check_access(fd, what, file);
}

/* The checks that do not depend on each other, all logged; the first error is returned. */
static int kubeconfig_check_credentials(const Kubeconfig *k) {
        int r = 0, q;

        if (startswith(k->server, "http://") &&
            (k->token || k->token_file || k->client_cert_file || k->client_cert_data))
                r = log_error_errno(EINVAL,
                                    "kubeconfig %s: cluster \"%s\": server %s is plain http://, and user \"%s\" "
                                    "has a token or client certificate that would cross the network "
                                    "unencrypted; refusing to use it. Use https://",
                                    k->path, k->cluster, k->server_display, k->user);

        if (k->token_file) {
                q = kubeconfig_check_credential_file(k, "tokenFile", k->token_file);
                if (q < 0 && r >= 0)
                        r = q;
        }
        if (k->client_key_file) {
                q = kubeconfig_check_credential_file(k, "client-key", k->client_key_file);
                if (q < 0 && r >= 0)
                        r = q;
        }
        return r;
}

static int kubeconfig_parse(const char *path, const char *context, const char *data, size_t size,
                            Kubeconfig **ret) {
        _cleanup_(kubeconfig_reader_done) KubeconfigReader kr = { .path = path };
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        const yaml_node_t *root;
        const char *ctx_name, *cluster, *user;
        Entry ctx, cl, us;
        int r;

        r = kubeconfig_check_yaml(path, data, size);
        if (r < 0)
                return r;
        r = kubeconfig_load_document(&kr, data, size);
        if (r < 0)
                return r;

        r = kubeconfig_dir(path, &kr.dir);
        if (r < 0)
                return log_error_errno(r, "kubeconfig %s: cannot determine its folder: %m", path);

        root = yaml_document_get_root_node(&kr.doc);
        if (!root || node_is_null(root))
                return log_error_errno(EINVAL, "kubeconfig %s: file is empty", path);
        if (root->type != YAML_MAPPING_NODE)
                return log_error_errno(EINVAL, "kubeconfig %s: not a kubeconfig (top level is not a mapping)",
                                       path);

        if (context)
                ctx_name = context;
        else {
                const yaml_node_t *n = mapping_get(&kr, root, "current-context");

                ctx_name = node_scalar(n);
                if (n && !ctx_name)
                        return log_error_errno(EINVAL, "kubeconfig %s: \"current-context\" must be a string",
                                               path);
                if (isempty(ctx_name))
                        return log_error_errno(EINVAL,
                                               "kubeconfig %s: no current-context set; set one or name a "
                                               "context with Context=", path);
        }

        r = kubeconfig_find_entry(&kr, "contexts", "context", ctx_name, &ctx);
        if (r < 0)
                return r;
        r = entry_get_string(&kr, &ctx, "cluster", &cluster);
        if (r < 0)
                return r;
        if (!cluster)
                return log_error_errno(EINVAL, "kubeconfig %s: context \"%s\": field \"cluster\" is missing",
                                       path, ctx_name);
        r = entry_get_string(&kr, &ctx, "user", &user);
        if (r < 0)
                return r;
        if (!user)
                return log_error_errno(EINVAL, "kubeconfig %s: context \"%s\": field \"user\" is missing",
                                       path, ctx_name);

        k = calloc(1, sizeof(Kubeconfig));
        if (!k)
                return log_oom();
        k->path = strdup(path);
        k->context = strdup(ctx_name);
        k->cluster = strdup(cluster);
        k->user = strdup(user);
        if (!k->path || !k->context || !k->cluster || !k->user)
                return log_oom();
        r = entry_dup_string(&kr, &ctx, "namespace", &k->namespace);
        if (r < 0)
                return r;

        r = kubeconfig_find_entry(&kr, "clusters", "cluster", cluster, &cl);
        if (r < 0)
                return r;
        r = kubeconfig_read_cluster(&kr, &cl, k);
        if (r < 0)
                return r;

        r = kubeconfig_find_entry(&kr, "users", "user", user, &us);
        if (r < 0)
                return r;
        r = kubeconfig_read_user(&kr, &us, k);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(k);
        return 0;
}

int kubeconfig_load(const char *path, const char *context, Kubeconfig **ret) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        _cleanup_free_ char *what = NULL;
        _cleanup_close_ int fd = -EBADF;
        char *data = NULL;
        size_t size = 0;
        int r, q;

        fd = open_credential(path);
        if (fd == -EACCES || fd == -EPERM)
                /* Installed 0600 root:root, say, for a daemon that runs as nodereboot. */
                return log_error_errno(fd, "kubeconfig %s: %m. Whoever uses it (the daemon runs as "
                                       NODEREBOOT_USER ") must be able to read it and search every folder "
                                       "above it: " CREDENTIAL_FIX, path, path, path);
        if (fd < 0)
                return log_error_errno(fd, "kubeconfig %s: %m", path);

        what = strdup_printf("kubeconfig %s", path);
        if (!what)
                return log_oom();
        r = kubeconfig_check_access(fd, what, path);
        if (r == -EINVAL)
                return r;       /* not a file: nothing to read */
        /* An unsafe mode is reported, and the content still checked, so that one run shows all. */

        q = read_secret_fd(fd, KUBECONFIG_FILE_MAX, &data, &size);
        if (q == -EFBIG)
                return log_error_errno(q, "kubeconfig %s: file larger than %u bytes", path, KUBECONFIG_FILE_MAX);
        if (q < 0)
                return log_error_errno(q, "kubeconfig %s: %m", path);

        /* The buffer holds tokens and keys: wipe it as soon as libyaml has its own copy. */
        q = kubeconfig_parse(path, context, data, size, &k);
        erase_and_free_sized(data, size);
        if (q < 0)
                return r < 0 ? r : q;

        q = kubeconfig_check_credentials(k);
        if (r < 0)
                return r;
        if (q < 0)
                return q;

        *ret = TAKE_PTR(k);
        return 0;
}
