"""Certificates made with the openssl CLI: a CA kept across restarts of one state folder, the
serving certificate, and client certificates whose CN is the user name. EC P-256 keys keep
start-up fast."""

import os
import secrets
import subprocess
import tempfile
import threading

_lock = threading.Lock()


def _openssl(*args):
    r = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (args[0], r.stderr.decode(errors="replace")))


def _write_private(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class PKI:
    def __init__(self, state_dir):
        self.dir = os.path.abspath(state_dir)
        self.ca_crt = os.path.join(self.dir, "ca.crt")
        self.ca_key = os.path.join(self.dir, "ca.key")
        self.server_crt = os.path.join(self.dir, "server.crt")
        self.server_key = os.path.join(self.dir, "server.key")

    def ensure(self):
        with _lock:
            if not (os.path.exists(self.ca_crt) and os.path.exists(self.ca_key)):
                self._make_ca()
                # Everything signed by an older CA is worthless now.
                for f in os.listdir(self.dir):
                    if f.startswith(("server.", "client-")) and f.endswith((".crt", ".key")):
                        os.unlink(os.path.join(self.dir, f))
            if not (os.path.exists(self.server_crt) and os.path.exists(self.server_key)):
                self._sign(self.server_crt, self.server_key, "/CN=kube-apiserver",
                           "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                           "extendedKeyUsage=serverAuth\n"
                           "keyUsage=critical,digitalSignature,keyEncipherment\n"
                           "basicConstraints=critical,CA:FALSE\n")

    def _make_ca(self):
        key_tmp = self.ca_key + ".tmp"
        crt_tmp = self.ca_crt + ".tmp"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key_tmp, "-out", crt_tmp, "-days", "3650", "-subj", "/CN=nodereboot-test-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
        os.chmod(key_tmp, 0o600)
        os.rename(key_tmp, self.ca_key)
        os.rename(crt_tmp, self.ca_crt)

    def _sign(self, crt, key, subject, extensions):
        with tempfile.TemporaryDirectory(dir=self.dir) as tmp:
            csr = os.path.join(tmp, "req.csr")
            ext = os.path.join(tmp, "ext.cnf")
            key_tmp = os.path.join(tmp, "key.pem")
            crt_tmp = os.path.join(tmp, "crt.pem")
            with open(ext, "w") as f:
                f.write(extensions)
            _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", key_tmp, "-out", csr, "-subj", subject)
            _openssl("x509", "-req", "-in", csr, "-CA", self.ca_crt, "-CAkey", self.ca_key,
                     "-set_serial", "0x" + secrets.token_hex(16), "-days", "3650", "-sha256",
                     "-extfile", ext, "-out", crt_tmp)
            os.chmod(key_tmp, 0o600)
            os.rename(key_tmp, key)
            os.rename(crt_tmp, crt)

    def client_cert(self, user, groups=(), reuse=False):
        """Returns (cert path, key path) for a client certificate naming the user (and groups as O)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        crt = os.path.join(self.dir, "client-%s.crt" % safe)
        key = os.path.join(self.dir, "client-%s.key" % safe)
        subject = "".join("/O=" + _esc(g) for g in groups) + "/CN=" + _esc(user)
        with _lock:
            if reuse and os.path.exists(crt) and os.path.exists(key):
                return crt, key
            self._sign(crt, key, subject, "extendedKeyUsage=clientAuth\n"
                                          "keyUsage=critical,digitalSignature\n"
                                          "basicConstraints=critical,CA:FALSE\n")
        return crt, key


def _esc(s):
    return s.replace("\\", "\\\\").replace("/", "\\/").replace("=", "\\=")


def kubeconfig(server, ca, user, token=None, cert=None, key=None):
    lines = [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: test",
        "  cluster:",
        "    server: %s" % server,
        "    certificate-authority: %s" % ca,
        "users:",
        "- name: %s" % user,
        "  user:",
    ]
    if token:
        lines.append("    token: %s" % token)
    if cert:
        lines.append("    client-certificate: %s" % cert)
        lines.append("    client-key: %s" % key)
    lines += [
        "contexts:",
        "- name: test",
        "  context:",
        "    cluster: test",
        "    user: %s" % user,
        "current-context: test",
        "",
    ]
    return "\n".join(lines)


def write_atomic(path, text, private=False):
    tmp = path + ".tmp.%d" % os.getpid()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
