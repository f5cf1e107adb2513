/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base64.h"
#include "fileio.h"
#include "kubeconfig.h"
#include "log.h"
#include "parse-util.h"
#include "string-util.h"

#define KUBECONFIG_FILE_MAX (4U * 1024U * 1024U)
#define KUBECONFIG_NODES_MAX 100000U
#define KUBECONFIG_DEPTH_MAX 64U

/* The one kubeconfig being read: the file name for messages, the document and where the files it
 * names are relative to. */
typedef struct KubeconfigReader {
        const char *path;
        char *dir;
        yaml_document_t doc;
        bool have_doc;
} KubeconfigReader;

static void kubeconfig_reader_done(KubeconfigReader *r) {
        free(r->dir);
        if (r->have_doc)
                yaml_document_delete(&r->doc);
}

static void erase_and_free(char *p) {
        if (p) {
                explicit_bzero(p, strlen(p));
                free(p);
        }
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
        free(k->server);
        free(k->tls_server_name);
        free(k->ca_file);
        free(k->ca_data);
        free(k->client_cert_file);
        free(k->client_cert_data);
        free(k->client_key_file);
        erase_and_free_sized(k->client_key_data, k->client_key_data_size);
        erase_and_free(k->token);
        free(k->token_file);
        return mfree(k);
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
                yaml_event_delete(&event);

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

        yaml_parser_delete(&parser);
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

        yaml_parser_delete(&parser);
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

static int kubeconfig_read_server(KubeconfigReader *kr, const Entry *e, Kubeconfig *k) {
        const char *v, *host;
        size_t scheme_len, n;
        char *s;
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

        free(k->server);
        k->server = s;
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

int kubeconfig_load(const char *path, const char *context, Kubeconfig **ret) {
        _cleanup_(kubeconfig_reader_done) KubeconfigReader kr = { .path = path };
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        const yaml_node_t *root;
        const char *ctx_name, *cluster, *user;
        Entry ctx, cl, us;
        char *data = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, KUBECONFIG_FILE_MAX, &data, &size);
        if (r == -EFBIG)
                return log_error_errno(r, "kubeconfig %s: file larger than %u bytes",
                                       path, KUBECONFIG_FILE_MAX);
        if (r < 0)
                return log_error_errno(r, "kubeconfig %s: %m", path);

        /* The buffer holds tokens and keys: wipe it as soon as libyaml has its own copy. */
        r = kubeconfig_check_yaml(path, data, size);
        if (r >= 0)
                r = kubeconfig_load_document(&kr, data, size);
        erase_and_free_sized(data, size);
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
