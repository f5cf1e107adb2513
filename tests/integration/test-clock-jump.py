# SPDX-License-Identifier: Apache-2.0
"""The host's wall clock steps an hour back or forward in the middle of a cycle (an admin's
`date -s`, an NTP step after a bad RTC, a VM restored from a snapshot). The clock is really set
(clock_settime(CLOCK_REALTIME)): every process on this machine sees the jump, so meson runs this
file alone (is_parallel: false), the jumps last seconds, and the true time is put back from
CLOCK_MONOTONIC in a finally, in tearDown, at exit and on SIGTERM.

The API server of a real cluster runs on another machine whose clock does not jump: the test
server's clock (its /clock offset) is moved the opposite way at the same moment, so it stays true.
Each scenario ends with every node rebooted once and back in service, no Lease held, at most one
node cordoned at a time, and the Lease's TTL kept by the server's clock."""

import atexit
import datetime
import os
import signal
import sys
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Bench, assert_rebooted_once_and_back, max_cordoned_at_once, wait_for  # noqa: E402

HOUR = 3600.0


class WallClock:
    """CLOCK_REALTIME, stepped on purpose and always put back: the true time is the wall clock read
    at import (when it was right) plus the CLOCK_MONOTONIC time since, which no step changes."""

    def __init__(self):
        self.real0 = time.clock_gettime(time.CLOCK_REALTIME)
        self.mono0 = time.clock_gettime(time.CLOCK_MONOTONIC)
        self.offset = 0.0
        self.api = None

    def true_now(self):
        return self.real0 + (time.clock_gettime(time.CLOCK_MONOTONIC) - self.mono0)

    def step(self, offset, api):
        """The host's clock shows the true time plus offset seconds; api's clock stays true."""
        self.api = api
        # The server first: from the server's answer to our clock_settime() a request of a daemon
        # can only see the server off by the few microseconds between the two.
        api.control("POST", "/clock", {"offset": -offset})
        self.offset = offset
        time.clock_settime(time.CLOCK_REALTIME, self.true_now() + offset)

    def restore(self):
        """The true time again; safe to call at any time, any number of times."""
        if self.offset:
            time.clock_settime(time.CLOCK_REALTIME, self.true_now())
            self.offset = 0.0
            if self.api is not None:
                try:
                    self.api.control("POST", "/clock", {"offset": 0})
                except OSError:
                    pass    # the server is gone with its bench


WALL = WallClock()
atexit.register(WALL.restore)


def _restore_and_die(signum, frame):
    WALL.restore()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _restore_and_die)


def write_backdated_pki(folder, age_days=30):
    """The test API server's CA and serving certificate, made as pki.py makes them but valid
    since age_days ago, in folder, before the server starts (it keeps the ones it finds).

    The bench's certificates otherwise begin the second the bench starts: a clock stepped back an
    hour makes them not yet valid, every TLS handshake fails, and the test proves nothing but
    that. A real cluster's are older than the node's last hour: kubeadm signs the serving
    certificate with the CA made with the cluster (and backdates both), so a node's clock that
    steps back an hour still sees them valid. Hence backdated, here, for this test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    os.makedirs(folder, exist_ok=True)
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=age_days)
    until = since + datetime.timedelta(days=3650)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save(key, cert, stem):
        with open(os.path.join(folder, stem + ".key"), "wb", opener=lambda p, f: os.open(p, f, 0o600)) as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(os.path.join(folder, stem + ".crt"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("nodereboot-test-ca")).issuer_name(name("nodereboot-test-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(since).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("kube-apiserver")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(since).not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    save(ca_key, ca, "ca")
    save(key, cert, "server")


class ApiServerWithOldCertificates(bench.ApiServer):
    def __init__(self, workdir, *args, **kwargs):
        write_backdated_pki(os.path.join(workdir, "apiserver"))
        super().__init__(workdir, *args, **kwargs)


def lease(b, slot="nodereboot-0"):
    status, body = b.api.api("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{slot}")
    return body if status == 200 else None


def renew_time(b, slot="nodereboot-0"):
    from apiserver.clock import parse_time  # noqa: E402 (the server's own parser)
    body = lease(b, slot)
    return parse_time(((body or {}).get("spec") or {}).get("renewTime"))


def server_now(b):
    return b.api.control("GET", "/clock")["now"]


class ClockJumps(unittest.TestCase):
    def setUp(self):
        patcher = mock.patch.object(bench, "ApiServer", ApiServerWithOldCertificates)
        patcher.start()
        self.addCleanup(patcher.stop)

    def tearDown(self):
        WALL.restore()

    def assert_renewed_on_the_servers_clock(self, b, holder, before):
        """A renewal made on the stepped clock: the Lease's renewTime is the server's now (the
        daemon writes the server's clock, estimated from its Date headers), not the host's."""
        wait_for(lambda: (renew_time(b) or 0) > before, 15, f"{holder} to renew its Lease on the stepped clock")
        renewed, now = renew_time(b), server_now(b)
        self.assertLess(abs(now - renewed), 6, f"renewTime {renewed} is not the server's clock {now}")
        self.assertEqual(lease(b)["spec"]["holderIdentity"], holder)
        self.assertEqual(lease(b)["spec"]["leaseDurationSeconds"], 10)

    def assert_back_in_service(self, b):
        time.sleep(0.5)
        for n in b.nodes.values():
            self.assertEqual(n.reboots, 1, f"{n.name} rebooted {n.reboots} times")
            self.assertEqual(n.logind.reboot_calls(), 0, f"{n.name}: a reboot request after its reboot")
            self.assertFalse(b.api.node(n.name)["spec"].get("unschedulable"), f"{n.name} left cordoned")
            self.assertNotIn("not ours any more", n.log_text())
            self.assertNotIn("lost the lock", n.log_text())
        self.assertFalse(any(b.api.lease_holders().values()), "a lease leaked")
        self.assertEqual(max_cordoned_at_once(b.api.timeline(), set(b.nodes)), 1)

    def test_clock_set_back_an_hour_while_holding_the_lock(self):
        """The wall clock steps back an hour while n1 holds the slot in its drain delay, and stays
        back while it cordons, drains and asks to reboot; n2 waits in line meanwhile. The drain
        delay is not stretched by the hour, the Lease is renewed on the server's clock (its TTL
        judged there), n2 does not take the slot, and once the clock is right again both nodes
        reboot once, one after the other."""
        config = {"Lock.TTLSec": "10s", "Drain.DelaySec": "3s"}
        with Bench(["n1", "n2"], config=config) as b:
            n1, n2 = b.nodes["n1"], b.nodes["n2"]
            b.start_all()
            n1.touch_sentinel(["linux-image-amd64"])
            n1.wait_phase("locked", 20)
            n2.touch_sentinel(["linux-image-amd64"])
            n2.wait_phase("pending", 10)
            before = renew_time(b)
            try:
                WALL.step(-HOUR, b.api)
                stepped = time.monotonic()
                self.assert_renewed_on_the_servers_clock(b, "n1", before)
                n1.wait_phase("draining", 10)
                self.assertLess(time.monotonic() - stepped, 6, "the drain delay stretched by the clock")
                wait_for(lambda: n1.logind.reboot_calls() == 1, 30, "n1's reboot request on the stepped clock")
                self.assertEqual(n2.phase(), "pending")
                self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
            finally:
                WALL.restore()          # the clock steps forward an hour, to the true time
            b.run_reboots(lambda: all(n.reboots == 1 and n.phase() == "idle" for n in (n1, n2)), 90)
            self.assert_back_in_service(b)

    def test_clock_set_forward_an_hour_while_draining_and_recovering(self):
        """The wall clock steps forward an hour while n1 is drained and about to reboot, with n2
        waiting in line: n1's Lease does not look an hour expired to anyone (n2 does not take it,
        n1 does not think it lost it), n1 reboots once; back on the true clock, then an hour ahead
        again while n1 waits for its kubelet after the reboot: it recovers, releases the slot, and
        n2 reboots once after it."""
        config = {"Lock.TTLSec": "10s", "Reboot.DelaySec": "6s"}
        with Bench(["n1", "n2"], config=config, kubelet_delay=5.0) as b:
            n1, n2 = b.nodes["n1"], b.nodes["n2"]
            b.start_all()
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: n1.phase() == "draining" and n1.state().get("drained"), 30, "n1's drain")
            n2.touch_sentinel(["linux-image-amd64"])
            n2.wait_phase("pending", 10)
            before = renew_time(b)
            try:
                WALL.step(HOUR, b.api)
                self.assert_renewed_on_the_servers_clock(b, "n1", before)
                wait_for(lambda: n1.logind.reboot_calls() == 1, 20, "n1's reboot request on the stepped clock")
                self.assertEqual(n2.phase(), "pending")
                self.assertEqual(b.api.lease_holders().get("nodereboot-0"), "n1")
            finally:
                WALL.restore()
            # The machine reboots on the true clock: the bench's kubelet reports the server's time,
            # and a real kubelet would report the host's, stepped or not, consistently with the boot.
            n1.reboot()
            n1.wait_phase("recovering", 15)
            before = renew_time(b)
            try:
                WALL.step(HOUR, b.api)
                self.assert_renewed_on_the_servers_clock(b, "n1", before)
                n1.wait_kubelet(15)
                wait_for(lambda: n1.phase() == "idle", 20, "n1 back in service on the stepped clock")
            finally:
                WALL.restore()
            # Seconds after the boot, not an hour: no "kubelet not back" alarm.
            self.assertNotIn("still not back in service", n1.log_text())
            b.run_reboots(lambda: all(n.reboots == 1 and n.phase() == "idle" for n in (n1, n2)), 90)
            self.assert_back_in_service(b)

    def test_clock_set_back_an_hour_during_the_reboot_back_off(self):
        """logind refuses the first reboot request (polkit, say) and the wall clock steps back an
        hour during the 10 s back-off, the node drained and cordoned: the request is retried after
        the back-off, not an hour later, and the node reboots once and comes back."""
        config = {"Lock.TTLSec": "10s"}
        with Bench(["n1", "n2"], config=config) as b:
            n1 = b.nodes["n1"]
            n1.logind.fail_reboots("Permission denied by test")
            n1.start()
            n1.touch_sentinel(["linux-image-amd64"])
            wait_for(lambda: "Reboot request 1 of 3 failed" in n1.log_text(), 30, "the refused reboot request")
            failed = time.monotonic()
            n1.logind.allow_reboots()
            try:
                WALL.step(-HOUR, b.api)
                wait_for(lambda: n1.logind.reboot_calls() == 2, 20, "the retried reboot request")
                self.assertLess(time.monotonic() - failed, 15, "the back-off stretched by the clock")
            finally:
                WALL.restore()
            n1.reboot()
            n1.wait_kubelet(15)
            n1.wait_phase("idle", 30)
            assert_rebooted_once_and_back(self, b, n1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
