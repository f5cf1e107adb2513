/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base64.h"
#include "fileio.h"
#include "kubeconfig.h"
#include "string-util.h"
#include "capture.h"
#include "tests.h"

/* --- fixtures --------------------------------------------------------------------------------- */

static char *tmpdir;

static void rm_rf(const char *path) {
        _cleanup_free_ char *cmd = strdup_printf("rm -rf '%s'", path);

        ASSERT_TRUE(cmd);
        ASSERT_TRUE(startswith(path, "/tmp/test-kubeconfig-"));
        ASSERT_EQ(system(cmd), 0);
}

/* Writes text as tmpdir/name and returns the path. */
static char *write_yaml(const char *name, const char *text) {
        char *path = strjoin(tmpdir, "/", name);

        ASSERT_TRUE(path);
        ASSERT_OK(write_file_atomic(path, text, strlen(text), 0600));
        return path;
}

/* Loads text; checks the errno and that the one logged line contains every needle (NULL-terminated)
 * and, when secret is given, does not contain it. */
static void check_error(const char *text, const char *context, int expected, const char *secret, ...) {
        _cleanup_free_ char *path = write_yaml("kubeconfig", text), *log = NULL, *prefix = NULL;
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        Capture cap;
        va_list ap;
        int r;

        capture_begin(&cap);
        r = kubeconfig_load(path, context, &k);
        log = capture_end(&cap);
        if (r != -expected) {
                fprintf(stderr, "kubeconfig_load() returned %d, expected %d, for:\n%s\n", r, -expected, text);
                abort();
        }
        ASSERT_TRUE(k == NULL);

        prefix = strdup_printf("kubeconfig %s", path);
        ASSERT_TRUE(prefix);
        ASSERT_TRUE(startswith(log, prefix));
        ASSERT_EQ(strchr(log, '\n') - log + 1, (long) strlen(log));     /* exactly one line */

        va_start(ap, secret);
        for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
                ASSERT_CONTAINS(log, n);
        va_end(ap);
        if (secret)
                ASSERT_FALSE(strstr(log, secret));
}

static Kubeconfig *load_ok(const char *text, const char *context) {
        _cleanup_free_ char *path = write_yaml("kubeconfig", text);
        Kubeconfig *k = NULL;

        ASSERT_OK(kubeconfig_load(path, context, &k));
        ASSERT_TRUE(k);
        ASSERT_STREQ(k->path, path);
        return k;
}

#define HEADER "apiVersion: v1\nkind: Config\npreferences: {}\n"

/* --- tests ------------------------------------------------------------------------------------ */

TEST(token) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        k = load_ok(HEADER
                    "current-context: node-a@prod\n"
                    "clusters:\n"
                    "- name: prod\n"
                    "  cluster:\n"
                    "    server: https://api.example.com:6443/\n"
                    "    extensions: [ { name: x, extension: {} } ]\n"
                    "contexts:\n"
                    "- name: other\n"
                    "  context: { cluster: nope, user: nope }\n"
                    "- name: node-a@prod\n"
                    "  context:\n"
                    "    cluster: prod\n"
                    "    user: node-a\n"
                    "    namespace: kube-system\n"
                    "users:\n"
                    "- name: node-a\n"
                    "  user:\n"
                    "    token: \"s3cr3t-token\"\n",
                    NULL);
        ASSERT_STREQ(k->context, "node-a@prod");
        ASSERT_STREQ(k->cluster, "prod");
        ASSERT_STREQ(k->user, "node-a");
        ASSERT_STREQ(k->namespace, "kube-system");
        ASSERT_STREQ(k->server, "https://api.example.com:6443");
        ASSERT_STREQ(k->server_display, "https://api.example.com:6443");
        ASSERT_STREQ(k->token, "s3cr3t-token");
        ASSERT_TRUE(k->token_file == NULL);
        ASSERT_FALSE(k->insecure_skip_tls_verify);
        ASSERT_TRUE(k->tls_server_name == NULL);
        ASSERT_TRUE(k->ca_file == NULL && k->ca_data == NULL);
        ASSERT_TRUE(k->client_cert_file == NULL && k->client_cert_data == NULL);
        ASSERT_TRUE(k->client_key_file == NULL && k->client_key_data == NULL);
        ASSERT_TRUE(kubeconfig_free(NULL) == NULL);
}

TEST(token_file_and_relative_paths) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        _cleanup_free_ char *ca = NULL, *tok = NULL, *crt = NULL;

        k = load_ok(HEADER
                    "current-context: c\n"
                    "clusters:\n"
                    "- name: cl\n"
                    "  cluster:\n"
                    "    server: https://10.0.0.1\n"
                    "    certificate-authority: pki/ca.crt\n"
                    "contexts:\n"
                    "- name: c\n"
                    "  context: {cluster: cl, user: u}\n"
                    "users:\n"
                    "- name: u\n"
                    "  user:\n"
                    "    tokenFile: ./token\n"
                    "    client-certificate: ../abs-is-not-needed/client.crt\n"
                    "    client-key: /etc/pki/client.key\n",
                    NULL);
        ca = strjoin(tmpdir, "/pki/ca.crt");
        tok = strjoin(tmpdir, "/./token");
        crt = strjoin(tmpdir, "/../abs-is-not-needed/client.crt");
        ASSERT_TRUE(ca && tok && crt);
        ASSERT_STREQ(k->ca_file, ca);
        ASSERT_STREQ(k->token_file, tok);
        ASSERT_TRUE(k->token == NULL);
        ASSERT_STREQ(k->client_cert_file, crt);
        ASSERT_STREQ(k->client_key_file, "/etc/pki/client.key");
        ASSERT_STREQ(k->server, "https://10.0.0.1");
        ASSERT_TRUE(k->namespace == NULL);
}

TEST(relative_kubeconfig_path) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        _cleanup_free_ char *path = NULL, *cwd = get_current_dir_name(), *expected = NULL;

        ASSERT_TRUE(cwd);
        path = write_yaml("rel-kubeconfig",
                          "current-context: c\n"
                          "clusters: [{name: cl, cluster: {server: 'https://h', certificate-authority: ca.pem}}]\n"
                          "contexts: [{name: c, context: {cluster: cl, user: u}}]\n"
                          "users: [{name: u, user: {}}]\n");
        ASSERT_OK(chdir(tmpdir));
        ASSERT_OK(kubeconfig_load("rel-kubeconfig", NULL, &k));
        ASSERT_OK(chdir(cwd));
        expected = strjoin(tmpdir, "/ca.pem");
        ASSERT_TRUE(expected);
        ASSERT_STREQ(k->ca_file, expected);
        ASSERT_STREQ(k->path, "rel-kubeconfig");
        /* A user without credentials is anonymous, as in kubectl. */
        ASSERT_TRUE(k->token == NULL && k->token_file == NULL && k->client_cert_file == NULL);
}

TEST(inline_data) {
        static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
        static const char crt[] = "-----BEGIN CERTIFICATE-----\nMIIBcrt\n-----END CERTIFICATE-----\n";
        static const char key[] = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIkey\n-----END EC PRIVATE KEY-----\n";
        _cleanup_free_ char *ca64 = NULL, *crt64 = NULL, *key64 = NULL, *text = NULL;
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        ASSERT_OK(base64_encode(ca, strlen(ca), &ca64));
        ASSERT_OK(base64_encode(crt, strlen(crt), &crt64));
        ASSERT_OK(base64_encode(key, strlen(key), &key64));
        text = strdup_printf(HEADER
                             "current-context: c\n"
                             "clusters:\n"
                             "- name: cl\n"
                             "  cluster:\n"
                             "    server: https://h:443\n"
                             "    certificate-authority-data: %s\n"
                             "contexts:\n"
                             "- name: c\n"
                             "  context: {cluster: cl, user: u}\n"
                             "users:\n"
                             "- name: u\n"
                             "  user:\n"
                             "    client-certificate-data: %s\n"
                             "    client-key-data: >-\n"
                             "      %.20s\n"
                             "      %s\n",
                             ca64, crt64, key64, key64 + 20);
        ASSERT_TRUE(text);
        k = load_ok(text, NULL);
        ASSERT_EQ(k->ca_data_size, strlen(ca));
        ASSERT_STREQ(k->ca_data, ca);
        ASSERT_EQ(k->client_cert_data_size, strlen(crt));
        ASSERT_STREQ(k->client_cert_data, crt);
        ASSERT_EQ(k->client_key_data_size, strlen(key));
        ASSERT_STREQ(k->client_key_data, key);
        ASSERT_TRUE(k->ca_file == NULL && k->client_cert_file == NULL && k->client_key_file == NULL);
}

TEST(named_context_insecure_tls_server_name) {
        static const char text[] = HEADER
                "current-context: a\n"
                "clusters:\n"
                "- name: ca\n"
                "  cluster: {server: 'https://a.example.com'}\n"
                "- name: cb\n"
                "  cluster:\n"
                "    server: HTTPS://10.1.2.3:6443/prefix//\n"
                "    insecure-skip-tls-verify: true\n"
                "    tls-server-name: kubernetes.default.svc\n"
                "contexts:\n"
                "- {name: a, context: {cluster: ca, user: ua}}\n"
                "- {name: b, context: {cluster: cb, user: ub, namespace: ns-b}}\n"
                "users:\n"
                "- {name: ua, user: {token: ta}}\n"
                "- {name: ub, user: {token: tb}}\n";
        _cleanup_(kubeconfig_freep) Kubeconfig *a = NULL, *b = NULL;

        a = load_ok(text, NULL);
        ASSERT_STREQ(a->context, "a");
        ASSERT_STREQ(a->server, "https://a.example.com");
        ASSERT_STREQ(a->token, "ta");
        ASSERT_FALSE(a->insecure_skip_tls_verify);

        b = load_ok(text, "b");
        ASSERT_STREQ(b->context, "b");
        ASSERT_STREQ(b->cluster, "cb");
        ASSERT_STREQ(b->user, "ub");
        ASSERT_STREQ(b->namespace, "ns-b");
        ASSERT_STREQ(b->server, "https://10.1.2.3:6443/prefix");
        ASSERT_TRUE(b->insecure_skip_tls_verify);
        ASSERT_STREQ(b->tls_server_name, "kubernetes.default.svc");
        ASSERT_STREQ(b->token, "tb");
}

TEST(http_server_and_nulls) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        /* http:// without credentials is accepted (a local proxy); null fields read as absent. */
        k = load_ok("current-context: c\n"
                    "clusters: [{name: cl, cluster: {server: 'http://127.0.0.1:8080', certificate-authority: ~,"
                    " insecure-skip-tls-verify: null}}]\n"
                    "contexts: [{name: c, context: {cluster: cl, user: u, namespace: }}]\n"
                    "users: [{name: u, user: {token: , exec: null}}]\n",
                    NULL);
        ASSERT_STREQ(k->server, "http://127.0.0.1:8080");
        ASSERT_STREQ(k->server_display, "http://127.0.0.1:8080");
        ASSERT_TRUE(k->token == NULL);
        ASSERT_TRUE(k->ca_file == NULL);
        ASSERT_TRUE(k->namespace == NULL);
        ASSERT_FALSE(k->insecure_skip_tls_verify);
}

#define LAUGHS                                                  \
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"                \
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"      \
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"      \
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"      \
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"      \
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"      \
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"      \
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"      \
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"

TEST(anchors_and_aliases) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        k = load_ok("current-context: c\n"
                    "clusters:\n"
                    "- name: cl\n"
                    "  cluster: &shared\n"
                    "    server: https://shared\n"
                    "- name: cl2\n"
                    "  cluster: *shared\n"
                    "contexts: [{name: c, context: {cluster: cl2, user: u}}]\n"
                    "users: [{name: u, user: {token: &tok abc}}, {name: u2, user: {token: *tok}}]\n"
                    /* A self-referencing node does not make the loader or the walk loop. */
                    "loop: &l [*l, *l]\n",
                    NULL);
        ASSERT_STREQ(k->server, "https://shared");

        /* A billion laughs is cheap: aliases share the node instead of copying it. */
        kubeconfig_free(TAKE_PTR(k));
        k = load_ok(LAUGHS
                    "current-context: c\n"
                    "clusters: [{name: cl, cluster: {server: 'https://x'}}]\n"
                    "contexts: [{name: c, context: {cluster: cl, user: u}}]\n"
                    "laughs: *i\n"
                    "users: [{name: u, user: {token: t}}]\n",
                    NULL);
        ASSERT_STREQ(k->token, "t");
        /* ... and where a string is expected, it is just a wrong type. */
        check_error(LAUGHS
                    "current-context: c\n"
                    "clusters: [{name: cl, cluster: {server: 'https://x'}}]\n"
                    "contexts: [{name: c, context: {cluster: cl, user: u}}]\n"
                    "users: [{name: u, user: {token: *i}}]\n",
                    NULL, EINVAL, NULL, "user \"u\": field \"token\" must be a string", NULL);
}

TEST(errors_file) {
        _cleanup_free_ char *missing = NULL, *log = NULL, *big = NULL, *path = NULL;
        Kubeconfig *k = NULL;
        Capture cap;

        missing = strjoin(tmpdir, "/does-not-exist");
        ASSERT_TRUE(missing);
        capture_begin(&cap);
        ASSERT_ERROR(kubeconfig_load(missing, NULL, &k), ENOENT);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, missing);
        ASSERT_TRUE(k == NULL);

        /* Over the 4 MiB cap. */
        big = malloc(4 * 1024 * 1024 + 2);
        ASSERT_TRUE(big);
        memset(big, '#', 4 * 1024 * 1024 + 1);
        big[4 * 1024 * 1024 + 1] = 0;
        path = write_yaml("big", big);
        ASSERT_ERROR(kubeconfig_load(path, NULL, &k), EFBIG);
        ASSERT_TRUE(k == NULL);
}

TEST(errors_yaml) {
        _cleanup_free_ char *many = NULL, *deep = NULL;
        size_t n;

        check_error(HEADER "current-context: a: b\n", NULL, EINVAL, NULL,
                    "kubeconfig", ":4:19: mapping values are not allowed", NULL);
        check_error("a:\n  - b\n  c: d\n", NULL, EINVAL, NULL, ":3:3: did not find expected '-' indicator", NULL);
        check_error("a: *undefined\n", NULL, EINVAL, NULL, ":1:4: found undefined alias", NULL);
        check_error("a: \xff\n", NULL, EINVAL, NULL, "invalid leading UTF-8 octet", NULL);
        check_error("", NULL, EINVAL, NULL, "file is empty", NULL);
        check_error("# only a comment\n", NULL, EINVAL, NULL, "file is empty", NULL);
        check_error("- a\n- b\n", NULL, EINVAL, NULL, "not a kubeconfig", NULL);

        /* Node count cap. */
        many = malloc(200000 * 2 + 16);
        ASSERT_TRUE(many);
        n = (size_t) sprintf(many, "a: [");
        for (size_t i = 0; i < 100001; i++)
                n += (size_t) sprintf(many + n, "1,");
        strcpy(many + n, "1]\n");
        check_error(many, NULL, EINVAL, NULL, "too many YAML nodes", NULL);

        /* Depth cap. */
        deep = malloc(2 * 1000 + 16);
        ASSERT_TRUE(deep);
        memset(deep, '[', 1000);
        memset(deep + 1000, ']', 1000);
        strcpy(deep + 2000, "\n");
        check_error(deep, NULL, EINVAL, NULL, "nested deeper than", NULL);
}

#define CL  "clusters: [{name: cl, cluster: {server: 'https://h'}}]\n"
#define CTX "contexts: [{name: c, context: {cluster: cl, user: u}}]\n"

TEST(errors_structure) {
        check_error("kind: Config\n" CL CTX "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL, NULL,
                    "no current-context", NULL);
        check_error("current-context: [x]\n" CL CTX, NULL, EINVAL, NULL, "current-context", "string", NULL);
        check_error("current-context: c\n" CL "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL, NULL,
                    "context \"c\" not found", NULL);
        check_error("current-context: c\n" CL CTX "users: [{name: u, user: {token: t}}]\n", "nope", EINVAL, NULL,
                    "context \"nope\" not found", NULL);
        check_error("current-context: c\ncontexts: {c: x}\n", NULL, EINVAL, NULL, "\"contexts\" must be a list", NULL);
        check_error("current-context: c\n" CL "contexts: [{name: c, context: {user: u}}]\n"
                    "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL, NULL,
                    "context \"c\": field \"cluster\" is missing", NULL);
        check_error("current-context: c\n" CL "contexts: [{name: c, context: {cluster: cl}}]\n"
                    "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL, NULL,
                    "context \"c\": field \"user\" is missing", NULL);
        check_error("current-context: c\n" CL "contexts: [{name: c, context: [a]}]\n", NULL, EINVAL, NULL,
                    "context \"c\": field \"context\" must be a mapping", NULL);
        check_error("current-context: c\n" CTX "users: [{name: u, user: {token: tok-never-logged}}]\n", NULL,
                    EINVAL, "tok-never-logged", "cluster \"cl\" not found", NULL);
        check_error("current-context: c\n" CL CTX "users: [{name: other, user: {token: secret-t}}]\n",
                    NULL, EINVAL, "secret-t", "user \"u\" not found", NULL);
        check_error("current-context: c\n"
                    "clusters: [{name: cl, cluster: {server: 'https://h'}}, {name: cl, cluster: {server: 'https://i'}}]\n"
                    CTX "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL,
                    NULL, "cluster \"cl\" is listed 2 times", NULL);
        /* The same entry twice through an alias is still listed twice. */
        check_error("current-context: c\n" CL "contexts: [&e {name: c, context: {cluster: cl, user: u}}, *e]\n"
                    "users: [{name: u, user: {token: t}}]\n", NULL, EINVAL,
                    NULL, "context \"c\" is listed 2 times", NULL);
}

TEST(alias_repeats_are_cheap) {
        _cleanup_free_ char *text = NULL;
        size_t n = 0, size = 24000 * 16 + 50000 * 4 + 128;

        /* One mapping of 24000 keys repeated 50000 times through an alias: looking into each repeat
         * would take minutes (the test would time out); each node is looked into once. */
        text = malloc(size);
        ASSERT_TRUE(text);
        n += (size_t) snprintf(text + n, size - n, "big: &m {");
        for (unsigned i = 0; i < 24000; i++)
                n += (size_t) snprintf(text + n, size - n, "k%u: v, ", i);
        n += (size_t) snprintf(text + n, size - n, "}\ncurrent-context: c\ncontexts: [");
        for (unsigned i = 0; i < 50000; i++)
                n += (size_t) snprintf(text + n, size - n, "*m, ");
        n += (size_t) snprintf(text + n, size - n, "]\n");
        ASSERT_TRUE(n < size);
        check_error(text, NULL, EINVAL, NULL, "context \"c\" not found", NULL);
}

#define USERS(u) "current-context: c\n" CL CTX "users:\n- name: u\n  user:\n" u

TEST(errors_cluster) {
        check_error("current-context: c\nclusters: [{name: cl, cluster: {insecure-skip-tls-verify: true}}]\n"
                    CTX "users: [{name: u, user: {}}]\n", NULL, EINVAL, NULL,
                    "cluster \"cl\": field \"server\" is missing", NULL);
        check_error("current-context: c\nclusters: [{name: cl}]\n" CTX, NULL, EINVAL, NULL,
                    "cluster \"cl\": field \"server\" is missing", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'ftp://h'}}]\n" CTX,
                    NULL, EINVAL, NULL, "cluster \"cl\": server \"ftp://h\" must start with https://", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'api.example.com:6443'}}]\n"
                    CTX, NULL, EINVAL, NULL, "must start with https://", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://'}}]\n" CTX,
                    NULL, EINVAL, NULL, "has no host", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://a b'}}]\n" CTX,
                    NULL, EINVAL, NULL, "whitespace", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: [x]}}]\n" CTX,
                    NULL, EINVAL, NULL, "cluster \"cl\": field \"server\" must be a string", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://h', "
                    "certificate-authority-data: '!!notbase64'}}]\n" CTX, NULL, EINVAL, NULL,
                    "cluster \"cl\": field \"certificate-authority-data\" is not valid base64", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://h', "
                    "certificate-authority-data: Zm9v, certificate-authority: /ca}}]\n" CTX, NULL, EINVAL, NULL,
                    "cluster \"cl\": certificate-authority and certificate-authority-data are both set", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://h', "
                    "insecure-skip-tls-verify: true, certificate-authority: /ca}}]\n" CTX, NULL, EINVAL, NULL,
                    "cluster \"cl\": insecure-skip-tls-verify cannot be combined", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://h', "
                    "insecure-skip-tls-verify: maybe}}]\n" CTX, NULL, EINVAL, NULL,
                    "field \"insecure-skip-tls-verify\" must be true or false", NULL);
}

TEST(errors_user) {
        static const char key64[] = "c2VjcmV0LWtleS1ieXRlcw==";     /* "secret-key-bytes" */

        check_error(USERS("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n"),
                    NULL, EOPNOTSUPP, NULL,
                    "user \"u\": exec credential plugins are not supported; use a token, tokenFile or client "
                    "certificate", NULL);
        check_error(USERS("    auth-provider:\n      name: gcp\n"), NULL, EOPNOTSUPP, NULL,
                    "user \"u\": auth-provider plugins are not supported", NULL);
        check_error(USERS("    username: admin\n    password: hunter2\n"), NULL, EOPNOTSUPP, "hunter2",
                    "user \"u\": basic authentication (username/password) is not supported", NULL);
        check_error(USERS("    password: hunter2\n"), NULL, EOPNOTSUPP, "hunter2", "basic authentication", NULL);
        check_error(USERS("    token: tok-secret\n    as: system:admin\n"), NULL, EOPNOTSUPP, "tok-secret",
                    "user \"u\": impersonation (as) is not supported", NULL);

        check_error(USERS("    token: tok-secret\n    client-certificate: /c.crt\n"), NULL, EINVAL, "tok-secret",
                    "user \"u\": a client certificate is set but no client-key", NULL);
        check_error(USERS("    client-certificate-data: Zm9v\n"), NULL, EINVAL, NULL,
                    "a client certificate is set but no client-key", NULL);
        check_error(USERS("    client-key: /c.key\n"), NULL, EINVAL, NULL,
                    "user \"u\": a client key is set but no client-certificate", NULL);
        {
                _cleanup_free_ char *t = strdup_printf(USERS("    client-key-data: %s\n"), key64);
                ASSERT_TRUE(t);
                check_error(t, NULL, EINVAL, key64, "a client key is set but no client-certificate", NULL);
                free(t);
                /* Neither the base64 text nor the decoded key shows up in the message. */
                t = strdup_printf(USERS("    client-certificate-data: Zm9v\n    client-key-data: %s\n"
                                        "    client-key: /k\n"), key64);
                ASSERT_TRUE(t);
                check_error(t, NULL, EINVAL, "secret-key", "client-key and client-key-data are both set", NULL);
        }
        check_error(USERS("    client-certificate-data: Zm9v\n    client-certificate: /c\n    client-key: /k\n"),
                    NULL, EINVAL, NULL, "client-certificate and client-certificate-data are both set", NULL);
        check_error(USERS("    client-key-data: '%%%'\n    client-certificate: /c\n"), NULL, EINVAL, NULL,
                    "user \"u\": field \"client-key-data\" is not valid base64", NULL);
        check_error(USERS("    token: {a: b}\n"), NULL, EINVAL, NULL, "user \"u\": field \"token\" must be a string",
                    NULL);
        check_error(USERS("    token: \"a\\0b\"\n"), NULL, EINVAL, NULL, "field \"token\" must be a string", NULL);
}

TEST(token_and_client_certificate_together) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        /* Token and key with client certificate together are fine (kubectl allows both). */
        k = load_ok(USERS("    token: t\n    client-certificate-data: Zm9v\n    client-key-data: YmFy\n"), NULL);
        ASSERT_STREQ(k->token, "t");
        ASSERT_STREQ(k->client_cert_data, "foo");
        ASSERT_STREQ(k->client_key_data, "bar");
        ASSERT_EQ(k->client_key_data_size, 3);
}

/* --- the credential is guarded ----------------------------------------------------------------- */

#define GOOD "current-context: c\n" CL CTX "users: [{name: u, user: {token: tok-secret}}]\n"

/* Loads path; checks the errno and that the log contains every needle (NULL-terminated). */
static char *load_error(const char *path, int expected, ...) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;
        Capture cap;
        char *log;
        va_list ap;
        int r;

        capture_begin(&cap);
        r = kubeconfig_load(path, NULL, &k);
        log = capture_end(&cap);
        if (r != -expected) {
                fprintf(stderr, "kubeconfig_load(%s) returned %d, expected %d; log:\n%s\n", path, r, -expected, log);
                abort();
        }
        ASSERT_TRUE(k == NULL);
        va_start(ap, expected);
        for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
                ASSERT_CONTAINS(log, n);
        va_end(ap);
        ASSERT_FALSE(strstr(log, "tok-secret"));
        return log;
}

static void load_passes(const char *path) {
        _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

        ASSERT_OK(kubeconfig_load(path, NULL, &k));
        ASSERT_TRUE(k);
}

static char *write_file_mode(const char *name, const char *text, mode_t mode) {
        char *path = write_yaml(name, text);

        ASSERT_OK(chmod(path, mode));
        return path;
}

TEST(kubeconfig_mode) {
        static const mode_t bad[] = { 0644, 0604, 0602, 0601, 0666, 0647 };
        static const mode_t good[] = { 0600, 0640, 0660, 0400, 0440 };
        _cleanup_free_ char *path = write_yaml("kubeconfig", GOOD);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *log = NULL, *mode = strdup_printf("mode %04o", (unsigned) bad[i]),
                        *fix = strdup_printf("Fix: chmod 0640 %s; chgrp nodereboot %s", path, path),
                        *prefix = strdup_printf("kubeconfig %s: ", path);

                ASSERT_TRUE(mode && fix && prefix);
                ASSERT_OK(chmod(path, bad[i]));
                log = load_error(path, EPERM, mode, fix, "every user", NULL);
                ASSERT_TRUE(startswith(log, prefix));
                ASSERT_EQ(strchr(log, '\n') - log + 1, (long) strlen(log));     /* one line */
        }
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ASSERT_OK(chmod(path, good[i]));
                load_passes(path);
        }
}

TEST(kubeconfig_mode_reports_the_content_too) {
        _cleanup_free_ char *path = NULL, *log = NULL;
        const char *second;

        /* An open mode and an error in the content: both in one run, the mode's errno returned. */
        path = write_file_mode("kubeconfig", "current-context: c\n" CL CTX
                               "users: [{name: u, user: {exec: {command: aws}}}]\n", 0644);
        log = load_error(path, EPERM, "mode 0644", "exec credential plugins are not supported", NULL);
        second = strchr(log, '\n');
        ASSERT_TRUE(second && strstr(second, "not supported"));
}

TEST(kubeconfig_owner_and_group) {
        _cleanup_free_ char *path = write_yaml("kubeconfig", GOOD), *log = NULL;

        if (geteuid() != 0) {
                fprintf(stderr, "    (skipped: needs root to give the file away)\n");
                return;
        }
        /* group bits for a group other than root or nodereboot */
        ASSERT_OK(chown(path, 0, 65534));
        ASSERT_OK(chmod(path, 0640));
        log = load_error(path, EPERM, "mode 0640", "gid 65534", "chgrp nodereboot", NULL);
        /* ... while without group bits the group does not matter */
        ASSERT_OK(chmod(path, 0600));
        load_passes(path);

        /* owned by another user */
        free(log);
        ASSERT_OK(chown(path, 65534, 0));
        log = load_error(path, EPERM, "owned by uid 65534", "chown root", NULL);
        ASSERT_OK(chown(path, 0, 0));
        load_passes(path);
}

/* A POSIX ACL (its xattr as the kernel stores it) that gives the user 65534 read access. */
TEST(kubeconfig_acl) {
        _cleanup_free_ char *path = write_yaml("kubeconfig", GOOD), *log = NULL;
        struct { uint16_t tag, perm; uint32_t id; } entries[] = {
                { 0x01, 06, UINT32_MAX },       /* owner rw- */
                { 0x02, 04, 65534 },            /* user 65534 r-- */
                { 0x04, 00, UINT32_MAX },       /* owning group --- */
                { 0x10, 04, UINT32_MAX },       /* mask r-- */
                { 0x20, 00, UINT32_MAX },       /* other --- */
        };
        uint8_t buf[4 + sizeof entries];
        uint32_t version = 2;

        memcpy(buf, &version, 4);               /* little endian, as the tests run on x86-64 and arm64 */
        memcpy(buf + 4, entries, sizeof entries);
        if (setxattr(path, "system.posix_acl_access", buf, sizeof buf, 0) < 0) {
                ASSERT_TRUE(errno == EOPNOTSUPP || errno == EPERM);
                fprintf(stderr, "    (skipped: no POSIX ACLs in %s)\n", tmpdir);
                return;
        }
        log = load_error(path, EPERM, "access ACL", "setfacl -b", NULL);
        ASSERT_OK(removexattr(path, "system.posix_acl_access"));
        ASSERT_OK(chmod(path, 0640));
        load_passes(path);
}

TEST(kubeconfig_not_a_file) {
        _cleanup_free_ char *dir = strjoin(tmpdir, "/a-folder"), *log = NULL;

        ASSERT_TRUE(dir);
        ASSERT_OK(mkdir(dir, 0700));
        log = load_error(dir, EINVAL, "not a regular file", NULL);
}

TEST(token_file_and_key_modes) {
        static const char crt64[] = "Zm9v";
        _cleanup_free_ char *tok = write_file_mode("token", "tok-secret\n", 0644),
                *key = write_file_mode("client.key", "-----BEGIN EC PRIVATE KEY-----\n", 0604),
                *text = NULL, *path = NULL, *log = NULL, *tok_msg = NULL, *key_msg = NULL;
        const char *second;

        /* Both, each named with its mode and the fix; the tokenFile's error comes first. */
        text = strdup_printf("current-context: c\n" CL CTX
                             "users: [{name: u, user: {tokenFile: token, client-certificate-data: %s, "
                             "client-key: client.key}}]\n", crt64);
        ASSERT_TRUE(text);
        path = write_yaml("kubeconfig", text);
        tok_msg = strdup_printf("user \"u\": tokenFile %s: mode 0644 gives every user access to the cluster "
                                "credential; refusing to use it. Fix: chmod 0640 %s; chgrp nodereboot %s",
                                tok, tok, tok);
        key_msg = strdup_printf("user \"u\": client-key %s: mode 0604", key);
        ASSERT_TRUE(tok_msg && key_msg);
        log = load_error(path, EPERM, tok_msg, key_msg, NULL);
        second = strchr(log, '\n');
        ASSERT_TRUE(second && strstr(second, key_msg));

        ASSERT_OK(chmod(tok, 0640));
        free(log);
        log = load_error(path, EPERM, key_msg, NULL);
        ASSERT_FALSE(strstr(log, "tokenFile"));
        ASSERT_OK(chmod(key, 0600));
        load_passes(path);
}

TEST(http_with_credentials_refused) {
        static const char *const users[] = {
                "{token: tok-secret}",
                "{tokenFile: /nonexistent/token}",
                "{client-certificate-data: Zm9v, client-key-data: YmFy}",
        };

        for (size_t i = 0; i < ELEMENTSOF(users); i++) {
                _cleanup_free_ char *text = strdup_printf(
                        "current-context: c\n"
                        "clusters: [{name: cl, cluster: {server: 'http://admin:hunter2@10.0.0.1:8080/api?x=1'}}]\n"
                        CTX "users: [{name: u, user: %s}]\n", users[i]);
                _cleanup_free_ char *path = NULL, *log = NULL;

                ASSERT_TRUE(text);
                path = write_yaml("kubeconfig", text);
                log = load_error(path, EINVAL, "cluster \"cl\": server http://10.0.0.1:8080 is plain http://",
                                 "user \"u\"", "Use https://", NULL);
                ASSERT_FALSE(strstr(log, "hunter2"));
                ASSERT_FALSE(strstr(log, "/api"));
        }
}

TEST(server_display) {
        static const struct {
                const char *server, *display;
        } cases[] = {
                { "https://api.example.com:6443/", "https://api.example.com:6443" },
                { "https://api.example.com", "https://api.example.com:443" },
                { "HTTPS://user:pass@h:6443/prefix?q=1#f", "https://h:6443" },
                { "https://a@b@h/x", "https://h:443" },
                { "https://[fd00::1]:6443/x", "https://[fd00::1]:6443" },
                { "https://[fd00::1]", "https://[fd00::1]:443" },
                { "http://10.0.0.1", "http://10.0.0.1:80" },
                { "https://h:/x", "https://h:443" },
                { "https://h?token=secret", "https://h:443" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = strdup_printf(
                        "current-context: c\n"
                        "clusters: [{name: cl, cluster: {server: '%s'}}]\n"
                        CTX "users: [{name: u, user: {}}]\n", cases[i].server);
                _cleanup_(kubeconfig_freep) Kubeconfig *k = NULL;

                ASSERT_TRUE(text);
                k = load_ok(text, NULL);
                ASSERT_STREQ(k->server_display, cases[i].display);
        }
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://user:pw@/x'}}]\n" CTX,
                    NULL, EINVAL, "pw", "server has no host", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'ftp://user:pw@h'}}]\n" CTX,
                    NULL, EINVAL, "pw", "must start with https://", NULL);
        /* a bad port is the kubeconfig's fault, said where the kubeconfig is named */
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://127.0.0.1:6443abc'}}]\n"
                    CTX, NULL, EINVAL, NULL, "port must be a number from 1 to 65535", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://h:70000'}}]\n" CTX,
                    NULL, EINVAL, NULL, "port must be", NULL);
        check_error("current-context: c\nclusters: [{name: cl, cluster: {server: 'https://[::1]x:1'}}]\n" CTX,
                    NULL, EINVAL, NULL, "port must be", NULL);
}

TEST(read_credential) {
        _cleanup_free_ char *tok = write_file_mode("token2", "tok-secret\n", 0640), *data = NULL, *log = NULL;
        size_t size;
        Capture cap;

        ASSERT_OK(kubeconfig_read_credential(tok, "token file", 4096, &data, &size));
        ASSERT_STREQ(data, "tok-secret\n");
        ASSERT_EQ(size, strlen("tok-secret\n"));
        ASSERT_ERROR(kubeconfig_read_credential(tok, "token file", 4, &data, &size), EFBIG);

        ASSERT_OK(chmod(tok, 0644));
        capture_begin(&cap);
        ASSERT_ERROR(kubeconfig_read_credential(tok, "token file", 4096, &data, &size), EPERM);
        log = capture_end(&cap);
        ASSERT_CONTAINS(log, "token file: mode 0644");
        ASSERT_STREQ(data, "tok-secret\n");     /* untouched on failure */
}

int main(void) {
        tmpdir = strdup("/tmp/test-kubeconfig-XXXXXX");
        ASSERT_TRUE(tmpdir);
        ASSERT_TRUE(mkdtemp(tmpdir));

        RUN(token);
        RUN(token_file_and_relative_paths);
        RUN(relative_kubeconfig_path);
        RUN(inline_data);
        RUN(named_context_insecure_tls_server_name);
        RUN(http_server_and_nulls);
        RUN(anchors_and_aliases);
        RUN(errors_file);
        RUN(errors_yaml);
        RUN(errors_structure);
        RUN(alias_repeats_are_cheap);
        RUN(errors_cluster);
        RUN(errors_user);
        RUN(token_and_client_certificate_together);
        RUN(kubeconfig_mode);
        RUN(kubeconfig_mode_reports_the_content_too);
        RUN(kubeconfig_owner_and_group);
        RUN(kubeconfig_acl);
        RUN(kubeconfig_not_a_file);
        RUN(token_file_and_key_modes);
        RUN(http_with_credentials_refused);
        RUN(server_display);
        RUN(read_credential);

        rm_rf(tmpdir);
        free(tmpdir);
        return 0;
}
