# SPDX-License-Identifier: Apache-2.0
"""The API server misbehaving below HTTP: a TLS handshake that never completes, answers cut in the
middle of their body, a watch that sends one endless line. Each scenario ends with the node back in
service, or safely waiting for its turn: never a lost state, never two reboots, never a node left
cordoned, never a Lease left held."""

import calendar
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, hold_slot, node_requests, request_node, wait_for  # noqa: E402

LOCK_SLOT = "nodereboot-0"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
# kube-client.c: the connect timeout (it covers the TLS handshake) and a watch line's cap.
CONNECT_TIMEOUT = 10.0
WATCH_MAX_LINE_SIZE = 8 * 1024 * 1024
MiB = 1024 * 1024


# -- looking behind the API: the control port, which a TLS stall does not hold up ---------------
def objects(b, kind, namespace=None, name=None):
    q = f"/objects?kind={kind}" + (f"&namespace={namespace}" if namespace else "") + (f"&name={name}" if name else "")
    return b.api.control("GET", q)


def lease(b, slot=LOCK_SLOT):
    items = objects(b, "Lease", "kube-system", slot)
    return items[0] if items else None


def lease_holder(b, slot=LOCK_SLOT):
    obj = lease(b, slot)
    return ((obj or {}).get("spec") or {}).get("holderIdentity") or None


def cordoned(b, node):
    return bool((objects(b, "Node", None, node)[0].get("spec") or {}).get("unschedulable"))


def fault_records(b, action):
    return [rec for rule in b.api.control("GET", "/faults") if rule["action"] == action
            for rec in rule.get("records", [])]


def lease_writers(b, slot=LOCK_SLOT):
    """The holders that the daemons' successful writes of the slot named, in order, from the
    request log (a run of writes naming the same holder, renewals, counted once)."""
    out = []
    for e in b.api.request_log():
        if request_node(e) is None or e["method"] not in ("PUT", "POST") or e.get("resource") != "leases":
            continue
        if 200 <= (e["status"] or 0) < 300 and ((e.get("body") or {}).get("metadata") or {}).get("name") == slot:
            holder = ((e.get("body") or {}).get("spec") or {}).get("holderIdentity")
            if not out or out[-1] != holder:
                out.append(holder)
    return out


def rfc3339_now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def parse_time(s):
    """Epoch seconds of an RFC 3339 time in UTC, to the second."""
    return calendar.timegm(time.strptime(s.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))


def vm_hwm_kib(pid):
    """The peak resident memory of a process (VmHWM, kB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def tls_stall(b, seconds, hold=120):
    """Every TCP connection the server accepts in the next seconds hangs before the TLS handshake,
    and every connection open now is cut (so the daemon's keep-alive connections, watches included,
    are gone and each request needs a new handshake)."""
    b.api.faults([{"action": "tls-stall", "duration": seconds, "hold": hold, "cut": True}])


class CycleChecks:
    def assert_cycle_done_once(self, b, n):
        """Exactly one reboot, the node back in service, the slot free."""
        self.assertEqual(n.reboots, 1, "exactly one reboot")
        time.sleep(0.5)
        self.assertEqual(n.logind.reboot_calls(), 0, "a reboot request after the reboot")
        self.assertEqual(n.phase(), "idle")
        self.assertFalse(b.api.node(n.name)["spec"].get("unschedulable"), "node left cordoned")
        self.assertFalse(b.api.lease_holders().get(LOCK_SLOT), "lease leaked")
        self.assertLessEqual(b.max_out_of_service(), 1)


class TlsHandshakeStalls(unittest.TestCase, CycleChecks):
    """The server accepts TCP connections but never completes the TLS handshake: an overloaded
    apiserver, a load balancer that accepts and hangs, a half-dead replica. libcurl's connect
    timeout covers the TLS handshake ("the connection phase is complete when the requested TCP,
    TLS or QUIC handshakes are done", CURLOPT_CONNECTTIMEOUT(3)), so each attempt ends after
    kube-client's connect timeout at the latest, and is retried with back-off."""

    def check_stall_records(self, b):
        """Every stalled handshake was given up by the daemon, none later than the connect timeout."""
        records = [r for r in fault_records(b, "tls-stall") if r["by"] is not None]
        self.assertTrue(records, "no connection met the stall")
        print(f"stalled handshakes: {len(records)}, given up after "
              f"{sorted(r['closed_after'] for r in records)} s")
        for r in records:
            self.assertEqual(r["by"], "client", "the daemon waited on a stalled handshake until the server let go")
            self.assertLessEqual(r["closed_after"], CONNECT_TIMEOUT + 1.5)
        return records

    def test_stall_while_taking_the_lock(self):
        """A node whose reboot is required meets a hung apiserver while it looks for a slot: each
        handshake times out, is retried with back-off, and once the server answers again the node
        takes the slot and completes its cycle, once."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            tls_stall(b, 12)
            stalled_at = time.monotonic()
            n1.touch_sentinel()
            time.sleep(3)
            self.assertIn(n1.phase(), ("idle", "pending"), "the node went on without the API")
            self.assertIsNone(lease_holder(b))
            wait_for(lambda: any(r["by"] == "client" for r in fault_records(b, "tls-stall")), 15,
                     "the daemon to give up a stalled handshake")
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            print(f"cycle completed {time.monotonic() - stalled_at:.1f} s after the stall began")
            records = self.check_stall_records(b)
            # Given up at the connect timeout, not at the 30 s request timeout.
            self.assertGreaterEqual(max(r["closed_after"] for r in records), CONNECT_TIMEOUT - 1)
            self.assertEqual(lease_writers(b), ["n1", None], "the slot taken once and released once")
            self.assert_cycle_done_once(b, n1)

    def stall_mid_drain(self, b, n1, seconds):
        """Starts a cycle and stalls the server once n1 drains, holding the slot."""
        n1.start()
        n1.wait_phase("idle", 10)
        n1.touch_sentinel()
        n1.wait_phase("draining", 30)
        # "draining" is saved before the cordon is sent (write-ahead): stall once it is on the Node
        wait_for(lambda: cordoned(b, "n1"), 30, "the cordon")
        tls_stall(b, seconds)
        self.assertEqual(lease_holder(b), "n1")
        return time.monotonic() + seconds

    def test_stall_mid_drain_shorter_than_the_lease(self):
        """The apiserver hangs while the node drains, for less than the Lease's duration: renewals
        fail and are retried; the slot stays ours (nobody else writes it), and once the server
        answers the renewal goes through, the drain goes on and the cycle completes once."""
        with Bench(["n1", "n2"], config={"Lock.TTLSec": "30s"}) as b:
            n1 = b.nodes["n1"]
            ends = self.stall_mid_drain(b, n1, 15)
            wait_for(lambda: "Failed to renew lock slot" in n1.log_text(), 20, "a renewal to fail")
            self.assertEqual(n1.logind.reboot_calls(), 0, "rebooted during the stall")
            self.assertEqual(lease_holder(b), "n1")
            wait_for(lambda: time.monotonic() > ends, 20, "the stall to end")
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            self.check_stall_records(b)
            self.assertNotIn("stopping evictions", n1.log_text(), "the slot was not at risk")
            self.assertEqual(lease_writers(b), ["n1", None], "another holder wrote the slot")
            self.assert_cycle_done_once(b, n1)

    def test_stall_outlives_the_lease_nobody_takes_it(self):
        """The apiserver hangs longer than the Lease lasts while the node drains: the node stops
        evicting once its slot may be lost, and does not reboot. When the server answers again and
        the slot is still its own (nobody took it), it renews it, resumes the drain and completes
        the cycle once."""
        with Bench(["n1", "n2"], config={"Lock.TTLSec": "10s"}) as b:
            n1 = b.nodes["n1"]
            ends = self.stall_mid_drain(b, n1, 22)
            wait_for(lambda: "stopping evictions until it is renewed" in n1.log_text(), 20,
                     "the daemon to stop evicting")
            wait_for(lambda: time.monotonic() > ends, 30, "the stall to end")
            self.assertEqual(n1.logind.reboot_calls(), 0, "rebooted without a slot it could prove")
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            self.check_stall_records(b)
            self.assertIn("resuming the drain", n1.log_text())
            self.assertEqual(lease_writers(b), ["n1", None])
            self.assert_cycle_done_once(b, n1)

    def test_stall_outlives_the_lease_another_node_takes_it(self):
        """As above, but meanwhile another node reached a healthy replica and took the expired
        slot: when the server answers again, the node finds the slot taken, does not reboot, rolls
        its drain back (uncordoned) and waits in line; once the other node releases the slot it
        takes it and completes its cycle once."""
        # RetrySec: how long a node whose cycle was given up waits before it queues again.
        with Bench(["n1", "n2"], config={"Lock.TTLSec": "10s", "Reboot.RetrySec": "3s"}) as b:
            n1 = b.nodes["n1"]
            ends = self.stall_mid_drain(b, n1, 22)
            wait_for(lambda: "stopping evictions until it is renewed" in n1.log_text(), 20,
                     "the daemon to stop evicting")
            # The slot expires by the server's clock; the other node takes it (written behind the
            # API: through the replica n1 cannot reach).
            taken = lease(b)
            wait_for(lambda: b.api.control("GET", "/clock").get("now", time.time()) >
                     parse_time(taken["spec"]["renewTime"]) + taken["spec"]["leaseDurationSeconds"] + 0.5,
                     20, "the slot to expire")
            taken["spec"].update(holderIdentity="n2", leaseDurationSeconds=3600, leaseTransitions=1,
                                 acquireTime=rfc3339_now(), renewTime=rfc3339_now())
            b.api.control("POST", "/objects", taken)
            wait_for(lambda: time.monotonic() > ends, 30, "the stall to end")
            wait_for(lambda: n1.phase() == "pending" and not cordoned(b, "n1"), 40,
                     f"n1 to roll back (now {n1.phase()})")
            self.assertEqual(n1.logind.reboot_calls(), 0, "rebooted while another node held the slot")
            self.assertEqual(n1.reboots, 0)
            self.assertEqual(lease_holder(b), "n2", "n1 took the slot back from its new holder")
            self.assertRegex(n1.log_text(), r"no longer ours|not ours")
            self.check_stall_records(b)
            # The other node is done: n1's turn.
            b.api.control("DELETE", f"/objects/Lease/kube-system/{LOCK_SLOT}")
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            self.assert_cycle_done_once(b, n1)


class CutAnswers(unittest.TestCase, CycleChecks):
    """An answer cut in the middle of its body: the server sent its headers and part of the body,
    then the connection ended (a proxy or load balancer reset, an apiserver restart). For a write,
    the server applied it: the daemon cannot know, and must find out by reading again."""

    CASES = {
        # the Node read before the cordon
        "node-get": [{"method": "GET", "match": "^/api/v1/nodes/n1$"}],
        # the write that takes the slot (a free Lease exists, so the take is an update)
        "lease-take": [{"method": "PUT", "match": f"{LEASES}/{LOCK_SLOT}$"}],
        # an eviction: the pod is evicted, the answer lost
        "eviction": [{"method": "POST", "match": "/eviction$"}],
        # the drain's pod watch and the lock's Lease watch, each cut in the middle of an event line
        "watch": [{"verb": "watch", "match": "^/api/v1/pods$"},
                  {"verb": "watch", "match": f"^{LEASES}$"}],
    }

    def cycle_with_cut(self, case, rules):
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            if case == "lease-take":
                hold_slot(b, holder="n2", seconds=30)
                b.api.api("PUT", f"{LEASES}/{LOCK_SLOT}", dict(lease(b), spec={"leaseDurationSeconds": 30}),
                          expect=200)      # n2 released it: a free slot, taken with an update
            b.api.faults([dict(r, action="truncate", count=1) for r in rules])
            n1.start()
            n1.wait_phase("idle", 10)
            n1.touch_sentinel()
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            records = fault_records(b, "truncate")
            print(f"{case}: cut answers {records}")
            self.assertEqual(len(records), len(rules), "a cut did not happen")
            for r in records:
                self.assertIsNotNone(r["sent"])
                if not r["watch"]:
                    self.assertLess(r["sent"], r["length"])
            log = n1.log_text()
            self.assertNotRegex(log, r"AddressSanitizer|runtime error")
            writers = lease_writers(b)
            if case == "lease-take":
                # the cut write went through; the daemon found it, and did not take the slot twice
                self.assertIn("an earlier write of ours went through", log)
            self.assertEqual([w for w in writers if w not in ("n1", None)], [], "another holder")
            self.assertEqual(writers[-1], None, "the slot was not released last")
            self.assert_cycle_done_once(b, n1)

    def test_cut_answers(self):
        """A Node GET, the Lease update that takes the slot, an eviction and two watch streams, each
        cut once halfway: an error, a retry (a re-read, for the write), and the cycle completes
        exactly once."""
        for case, rules in self.CASES.items():
            with self.subTest(case=case):
                self.cycle_with_cut(case, rules)

    def test_cut_release(self):
        """After the reboot, every answer to a write of the slot is cut (the writes went through),
        the release's included: the node ends idle, the slot free (not leaked to its expiry), one
        reboot."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            n1.touch_sentinel()

            def on_reboot(n):
                # the renewal of the new boot, its repeats, the release
                b.api.faults([{"action": "truncate", "method": "PUT", "match": f"{LEASES}/{LOCK_SLOT}$",
                               "count": 4}])
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90, on_reboot=on_reboot)
            cut = [e for e in b.api.request_log() if e.get("fault") == "truncate"]
            print("cut writes of the slot: " + ", ".join(
                f"{e['method']} holder={((e.get('body') or {}).get('spec') or {}).get('holderIdentity')}" for e in cut))
            self.assertTrue(any(not ((e.get("body") or {}).get("spec") or {}).get("holderIdentity") for e in cut),
                            "the release was not cut")
            self.assertIsNone(lease_holder(b))
            self.assert_cycle_done_once(b, n1)


class EndlessWatchLine(unittest.TestCase, CycleChecks):
    """A watch stream that sends one event line of 1 GiB, without a newline (a corrupt or hostile
    apiserver, a broken proxy): the daemon stops reading at its line cap (WATCH_MAX_LINE_SIZE in
    kube-client.c), without reading the whole line or growing its memory, says so, watches again,
    and the cycle completes."""

    def flood(self, b, n1, match, start):
        b.api.faults([{"action": "huge-line", "verb": "watch", "match": match, "count": 1, "size": 1 << 30}])
        before = vm_hwm_kib(n1.proc.pid)
        t0 = time.monotonic()
        start()
        rec = wait_for(lambda: [r for r in fault_records(b, "huge-line") if r["ended"]], 60,
                       "the endless line to end")[0]
        elapsed = time.monotonic() - t0
        after = vm_hwm_kib(n1.proc.pid)
        print(f"{match}: the server sent {rec['sent']} bytes ({rec['sent'] / MiB:.1f} MiB) of the line before "
              f"the client closed ({rec['ended']}); VmHWM {before} kB -> {after} kB "
              f"(+{(after - before) / 1024:.1f} MiB); {elapsed:.1f} s")
        self.assertEqual(rec["ended"], "client", "the daemon read the whole line")
        self.assertGreaterEqual(rec["sent"], WATCH_MAX_LINE_SIZE, "cut before the cap?")
        self.assertLess(rec["sent"], WATCH_MAX_LINE_SIZE + 32 * MiB, "read much more than the cap")
        self.assertLess(after - before, 64 * 1024, "the daemon's memory grew with the line")
        wait_for(lambda: "longer than" in n1.log_text(), 10, "the daemon to log the cut")
        self.assertRegex(n1.log_text(), r"Watch \S+: an event line longer than 8 MiB, cut off unread")
        return rec

    def watches_of(self, b, path):
        return [e for e in node_requests(b.api.request_log(), "n1") if e["verb"] == "watch" and e["path"] == path]

    def test_endless_line_on_the_lease_watch(self):
        """While the node waits for a slot another node holds, its Lease watch gets the endless
        line: it is cut at the cap, the watch starts again, and when the slot is freed the node
        takes it and completes its cycle once."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            hold_slot(b, holder="n2")
            n1.start()
            n1.wait_phase("idle", 10)
            time.sleep(1)

            def start():
                n1.touch_sentinel()
            self.flood(b, n1, f"^{LEASES}$", start)
            self.assertEqual(n1.phase(), "pending")
            wait_for(lambda: len(self.watches_of(b, LEASES)) >= 2, 30, "the Lease watch to start again")
            b.api.api("DELETE", f"{LEASES}/{LOCK_SLOT}", expect=200)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            self.assert_cycle_done_once(b, n1)

    def test_endless_line_on_the_pod_watch(self):
        """The drain's pod watch gets the endless line: it is cut at the cap, the pods are watched
        again, the drain completes and so does the cycle, once."""
        with Bench(["n1", "n2"]) as b:
            n1 = b.nodes["n1"]
            n1.start()
            n1.wait_phase("idle", 10)
            time.sleep(1)

            def start():
                n1.touch_sentinel()
            self.flood(b, n1, "^/api/v1/pods$", start)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 90)
            self.assertGreaterEqual(len(self.watches_of(b, "/api/v1/pods")), 2)
            self.assert_cycle_done_once(b, n1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
