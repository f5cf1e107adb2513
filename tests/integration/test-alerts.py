# SPDX-License-Identifier: Apache-2.0
"""[Blockers] PrometheusURL=: a real Prometheus (Debian's package) evaluates real alerting rules
every second over a target whose samples the test sets, and the daemon asks its alerts API as
kured does. A firing alert keeps a node pending (no slot taken) until it stops; the filters
(AlertFilterRegex=, AlertFilterMatchOnly=, AlertFiringOnly=) as kured's; an unreachable
Prometheus blocks with a clear status (fail safe)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Bench, wait_for  # noqa: E402
from prometheus import Prometheus, Target, free_port  # noqa: E402

RULES = """groups:
- name: nodereboot-test
  interval: 1s
  rules:
  - alert: MaintenanceFreeze
    expr: freeze == 1
  - alert: DiskFilling
    expr: disk_filling == 1
    for: 1h
"""


class Alerts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.target = Target(freeze=0, disk_filling=0)
        cls.prom = Prometheus([cls.target.address], RULES)

    @classmethod
    def tearDownClass(cls):
        cls.prom.close()
        cls.target.close()

    def set_alerts(self, freeze, disk_filling):
        """Sets the samples and waits until Prometheus's alerts API shows what they imply."""
        self.target.values.update(freeze=freeze, disk_filling=disk_filling)
        want = {}
        if freeze:
            want["MaintenanceFreeze"] = "firing"
        if disk_filling:
            want["DiskFilling"] = "pending"        # for: 1h
        wait_for(lambda: self.prom.alerts() == want, 30, f"Prometheus's alerts to be {want}")

    def test_a_firing_alert_holds_the_reboot_until_it_stops(self):
        self.set_alerts(freeze=1, disk_filling=0)
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Blockers.PrometheusURL": self.prom.url})
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel()
            wait_for(lambda: any("reboot blocked by Prometheus alerts: MaintenanceFreeze" in s
                                 for s in n1.statuses()), 20, "n1 to say which alert blocks it")
            time.sleep(3)
            self.assertEqual(n1.phase(), "pending")
            self.assertEqual(b.api.lease_holders(), {})
            events = [e for e in b.api.get("/api/v1/namespaces/default/events")["items"]
                      if e.get("reason") == "RebootBlockedByAlerts"]
            self.assertEqual(len(events), 1, events)
            self.assertIn("MaintenanceFreeze", events[0]["message"])

            t0 = time.monotonic()
            self.set_alerts(freeze=0, disk_filling=0)
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
            print(f"the reboot went on {time.monotonic() - t0:.1f} s after the alert stopped "
                  "(the daemon asks again every 30 s while blocked)")
            self.assertIn("No Prometheus alert holds the reboot back any more", n1.log_text())

    def test_an_alert_after_the_drain_holds_the_reboot(self):
        """Clear when the slot is taken; the drained node is held by a shutdown inhibitor, and
        meanwhile an alert starts firing: when the inhibitor goes, the node asks Prometheus again
        right before the reboot (an earlier clear answer is not reused) and waits, drained,
        until the alert stops. A pending alert would not hold it there: after our own drain,
        alerts it caused are pending at first."""
        self.set_alerts(freeze=0, disk_filling=0)
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Blockers.PrometheusURL": self.prom.url})
            n1.start()
            n1.wait_phase("idle", 15)
            n1.logind.block_shutdown()
            n1.touch_sentinel()
            wait_for(lambda: any("reboot blocked by a shutdown inhibitor" in s for s in n1.statuses()), 30,
                     "n1 to be drained and held by the inhibitor")
            self.set_alerts(freeze=1, disk_filling=1)
            n1.logind.unblock_shutdown()
            wait_for(lambda: any("drained; reboot blocked by Prometheus alerts: MaintenanceFreeze;" in s
                                 for s in n1.statuses()), 30, "n1 to be held by the alert")
            time.sleep(3)
            self.assertEqual(n1.logind.reboot_calls(), 0)
            self.assertEqual(n1.phase(), "draining")
            self.set_alerts(freeze=0, disk_filling=1)       # only a pending alert left
            b.run_reboots(lambda: n1.reboots == 1 and n1.phase() == "idle", 120)
        self.set_alerts(freeze=0, disk_filling=0)

    def test_filters(self):
        """kured's filters: alerts matching AlertFilterRegex= are ignored, or with
        AlertFilterMatchOnly= only they count; AlertFiringOnly= ignores pending alerts."""
        self.set_alerts(freeze=1, disk_filling=1)
        cases = {
            # (config, blocks?, the names it says)
            "ignored": ({"Blockers.AlertFilterRegex": "^(MaintenanceFreeze|DiskFilling)$"}, None),
            "match-only": ({"Blockers.AlertFilterRegex": "Freeze", "Blockers.AlertFilterMatchOnly": "yes"},
                           "MaintenanceFreeze"),
            "pending-counts": ({"Blockers.AlertFilterRegex": "^MaintenanceFreeze$"}, "DiskFilling"),
            "firing-only": ({"Blockers.AlertFilterRegex": "^MaintenanceFreeze$", "Blockers.AlertFiringOnly": "yes"},
                            None),
        }
        with Bench(list(cases)) as b:
            for name, (config, _) in cases.items():
                n = b.nodes[name]
                n.write_config(dict(config, **{"Blockers.PrometheusURL": self.prom.url, "Lock.Concurrency": "4"}))
                n.start()
            for n in b.nodes.values():
                n.wait_phase("idle", 15)
                n.touch_sentinel()
            for name, (_, says) in cases.items():
                n = b.nodes[name]
                if says:
                    wait_for(lambda: any(f"reboot blocked by Prometheus alerts: {says}" in s for s in n.statuses()),
                             20, f"{name} to be blocked by {says}")
            b.run_reboots(lambda: all(b.nodes[k].reboots == 1 for k, (_, says) in cases.items() if not says), 120)
            for name, (_, says) in cases.items():
                self.assertEqual(b.nodes[name].reboots, 0 if says else 1, name)
        self.set_alerts(freeze=0, disk_filling=0)

    def test_an_unreachable_prometheus_blocks(self):
        """Nothing listens at PrometheusURL=: the node does not reboot and says why."""
        port = free_port()
        with Bench(["n1"]) as b:
            n1 = b.nodes["n1"]
            n1.write_config({"Blockers.PrometheusURL": f"http://127.0.0.1:{port}/prometheus"})
            n1.start()
            n1.wait_phase("idle", 15)
            n1.touch_sentinel()
            wait_for(lambda: any(f"reboot blocked: cannot ask Prometheus at http://127.0.0.1:{port} for its alerts"
                                 in s for s in n1.statuses()), 20, "n1 to say Prometheus cannot be reached")
            time.sleep(2)
            self.assertEqual(n1.phase(), "pending")
            self.assertEqual(b.api.lease_holders(), {})
            print(f"status: {n1.statuses()[-1]}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
